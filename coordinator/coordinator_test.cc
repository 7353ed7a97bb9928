// The engine end to end, in-process: submission checks, result uploads,
// downloads, watches, draining, metrics and recovery on RocksDB.
#include "coordinator/coordinator.h"

#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/metrics.h"
#include "common/sha256.h"
#include "common/status.h"
#include "common/status_matchers.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/memory_job_store.h"
#include "coordinator/rocks_job_store.h"
#include "coordinator/sim_workers.h"
#include "coordinator/test_util.h"

namespace vptq::coordinator {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::canonical(MakeTempDir("coord")).string();
    fs::create_directories(base_ + "/models/tiny");
    fs::create_directories(base_ + "/models/empty");
    fs::create_directories(base_ + "/data");
    fs::create_directories(base_ + "/out");
    fs::create_directories(base_ + "/secret");
    ASSERT_THAT(WriteTinyLlama(base_ + "/models/tiny"), IsOk());
    ASSERT_THAT(WriteTinyLlama(base_ + "/secret"), IsOk());
    ASSERT_THAT(WriteTestFile(base_ + "/data/cal.txt", "call me ishmael"), IsOk());
    fs::create_symlink(base_ + "/secret", base_ + "/models/link");
    config_.add_input_roots(base_ + "/models");
    config_.add_input_roots(base_ + "/data");
    config_.add_output_roots(base_ + "/out");
    config_.set_lease_seconds(30);
    config_.set_max_attempts(3);
    config_.set_artifact_chunk_bytes(4096);
    Open(std::make_unique<MemoryJobStore>(memory_));
  }
  void TearDown() override {
    coordinator_.reset();
    fs::remove_all(base_);
  }

  void Open(std::unique_ptr<JobStore> store) {
    coordinator_.reset();
    CoordinatorOptions o;
    o.config = config_;
    o.clock = &clock_;
    o.run_ticker = false;
    o.observer = observer_;
    auto c = Coordinator::Open(std::move(store), o);
    ASSERT_THAT(c, IsOk());
    coordinator_ = std::move(*c);
  }

  v1::JobSpec Spec() {
    v1::JobSpec s;
    s.mutable_model()->set_path(base_ + "/models/tiny");
    s.mutable_calibration()->add_text_paths(base_ + "/data/cal.txt");
    s.mutable_calibration()->set_num_sequences(4);
    s.mutable_calibration()->set_num_shards(2);
    s.mutable_quant()->set_bits(2);
    return s;
  }

  absl::StatusOr<std::string> Submit(const v1::JobSpec& spec, const std::string& request_id = "") {
    v1::SubmitJobRequest req;
    *req.mutable_spec() = spec;
    req.set_request_id(request_id);
    VPTQ_ASSIGN_OR_RETURN(auto resp, coordinator_->SubmitJob(req));
    return resp.job_id();
  }

  std::optional<v1::TaskAssignment> Lease(const std::string& worker) {
    v1::LeaseTaskRequest req;
    req.set_worker_id(worker);
    req.mutable_capabilities()->set_device_kind(v1::DEVICE_KIND_CPU);
    auto r = coordinator_->LeaseTask(req);
    EXPECT_THAT(r, IsOk());
    if (!r.ok() || !r->has_task()) return std::nullopt;
    return r->task();
  }

  int RunAll(const std::string& worker) {
    int n = 0;
    while (auto t = Lease(worker)) {
      EXPECT_THAT(CompleteWithPlaceholders(*coordinator_, worker, *t, 100), IsOk());
      ++n;
    }
    return n;
  }

  v1::Job GetJob(const std::string& id, bool tasks = false, v1::GetJobResponse* out = nullptr) {
    v1::GetJobRequest req;
    req.set_job_id(id);
    req.set_include_tasks(tasks);
    auto r = coordinator_->GetJob(req);
    EXPECT_THAT(r, IsOk());
    if (out != nullptr && r.ok()) *out = *r;
    return r.ok() ? r->job() : v1::Job();
  }

  std::vector<v1::JobEvent> Watch(const std::string& id, int64_t after, absl::Status* status) {
    std::vector<v1::JobEvent> events;
    v1::WatchJobRequest req;
    req.set_job_id(id);
    req.set_after_sequence(after);
    *status = coordinator_->WatchJob(req, [&](const v1::WatchJobResponse& r) {
      events.push_back(r.event());
      return true;
    });
    return events;
  }

  absl::StatusOr<std::string> Download(const std::string& job, const std::string& artifact,
                                       int64_t offset, v1::ArtifactRef* info = nullptr) {
    v1::DownloadArtifactRequest req;
    req.set_job_id(job);
    req.set_artifact_id(artifact);
    req.set_offset(offset);
    std::string data;
    int64_t expect = offset;
    absl::Status s = coordinator_->DownloadArtifact(req, [&](const v1::ArtifactStreamResponse& r) {
      if (r.has_info() && info != nullptr) *info = r.info();
      if (r.has_chunk()) {
        EXPECT_EQ(r.chunk().offset(), expect);
        expect += static_cast<int64_t>(r.chunk().data().size());
        EXPECT_LE(r.chunk().data().size(), static_cast<size_t>(kStreamChunkBytes));
        data += r.chunk().data();
      }
      return true;
    });
    if (!s.ok()) return s;
    return data;
  }

  std::string base_;
  v1::CoordinatorConfig config_;
  FakeClock clock_;
  SchedulerObserver* observer_ = nullptr;
  std::shared_ptr<MemoryJobStore::Data> memory_ = std::make_shared<MemoryJobStore::Data>();
  std::unique_ptr<Coordinator> coordinator_;
};

TEST_F(CoordinatorTest, SubmitPlansAndStoresTheResolvedSpec) {
  v1::JobSpec spec = Spec();
  spec.mutable_model()->set_path(base_ + "/models/./tiny/");
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string id, Submit(spec));
  v1::GetJobResponse resp;
  v1::Job job = GetJob(id, true, &resp);
  EXPECT_EQ(job.phase(), v1::JOB_PHASE_PENDING);
  EXPECT_EQ(job.spec().model().path(), base_ + "/models/tiny");
  EXPECT_EQ(job.spec().name(), "tiny-vptq");
  EXPECT_TRUE(job.spec().quant().enable_perm());
  EXPECT_EQ(job.spec().quant().output_dtype(), "fp16");  // fp32 model, no dtype asked
  EXPECT_EQ(resp.tasks_size(), 2 + 8 + 14 + 1);  // 2 shards, 4 groups x 2 layers, 14 linears
  EXPECT_EQ(job.progress().tasks_total(), 25);
  EXPECT_EQ(job.progress().linears_total(), 14);
  EXPECT_EQ(job.progress().stage(), "hessian");
  EXPECT_EQ(job.progress().eta_seconds(), -1);

  spec.mutable_quant()->set_output_dtype("bf16");  // an explicit dtype is kept
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string id2, Submit(spec));
  EXPECT_EQ(GetJob(id2, false, &resp).spec().quant().output_dtype(), "bf16");
}

TEST_F(CoordinatorTest, BadSpecsGetTheRightCode) {
  v1::JobSpec no_model = Spec();
  no_model.mutable_model()->clear_path();
  EXPECT_THAT(Submit(no_model), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model.path")));
  v1::JobSpec bits = Spec();
  bits.mutable_quant()->set_bits(5);
  EXPECT_THAT(Submit(bits), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("quant.bits")));
  v1::JobSpec vlen = Spec();
  vlen.mutable_quant()->set_vector_len(40);
  EXPECT_THAT(Submit(vlen),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("quant.vector_len")));
  v1::JobSpec shards = Spec();
  shards.mutable_calibration()->set_num_shards(9);
  EXPECT_THAT(Submit(shards), StatusIs(absl::StatusCode::kInvalidArgument));
  v1::JobSpec missing = Spec();
  missing.mutable_model()->set_path(base_ + "/models/nope");
  EXPECT_THAT(Submit(missing), StatusIs(absl::StatusCode::kNotFound));
  v1::JobSpec empty = Spec();
  empty.mutable_model()->set_path(base_ + "/models/empty");
  EXPECT_THAT(Submit(empty), StatusIs(absl::StatusCode::kNotFound, HasSubstr("config.json")));
  v1::JobSpec dotdot = Spec();
  dotdot.mutable_model()->set_path(base_ + "/models/../secret");
  EXPECT_THAT(Submit(dotdot), StatusIs(absl::StatusCode::kPermissionDenied));
  v1::JobSpec symlink = Spec();
  symlink.mutable_model()->set_path(base_ + "/models/link");
  EXPECT_THAT(Submit(symlink), StatusIs(absl::StatusCode::kPermissionDenied));
  v1::JobSpec text = Spec();
  text.mutable_calibration()->set_text_paths(0, "/etc/passwd");
  EXPECT_THAT(Submit(text), StatusIs(absl::StatusCode::kPermissionDenied));
  v1::JobSpec out = Spec();
  out.set_output_dir(base_ + "/secret/out");
  EXPECT_THAT(Submit(out), StatusIs(absl::StatusCode::kPermissionDenied));
  out.set_output_dir(base_ + "/out/run1");
  EXPECT_THAT(Submit(out), IsOk());
  // Nothing was stored for the rejected specs.
  v1::ListJobsResponse list = *coordinator_->ListJobs({});
  EXPECT_EQ(list.jobs_size(), 1);
}

TEST_F(CoordinatorTest, SubmitIsIdempotentPerRequestIdAndWarnsOutsideTheKernels) {
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string a, Submit(Spec(), "req-1"));
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string b, Submit(Spec(), "req-1"));
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string c, Submit(Spec(), "req-2"));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  v1::JobSpec odd = Spec();
  odd.mutable_quant()->set_bits(0);
  odd.mutable_quant()->set_vector_len(5);
  odd.mutable_quant()->set_num_centroids(64);
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string d, Submit(odd));
  v1::Job job = GetJob(d);
  ASSERT_EQ(job.warnings_size(), 2);  // 6 index bits, v = 5
  bool flagged = false;
  for (const auto& cond : job.conditions()) {
    flagged |= cond.type() == "OutsideKernelEnvelope" && cond.status();
  }
  EXPECT_TRUE(flagged);
}

TEST_F(CoordinatorTest, CompleteTaskVerifiesEveryOutput) {
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string id, Submit(Spec()));
  auto t = Lease("w1");
  ASSERT_TRUE(t);
  std::vector<std::pair<std::string, std::string>> outputs;
  for (const auto& name : t->required_outputs()) {
    outputs.emplace_back(name, std::string(10000 + outputs.size(), static_cast<char>('a' + outputs.size())));
  }
  auto good = MakeCompleteTaskStream("w1", *t, outputs, {{"seconds", 1.5}}, 3000);

  auto corrupt = good;
  for (auto& m : corrupt) {
    if (m.has_chunk()) {
      m.mutable_chunk()->at(7) ^= 1;  // one flipped bit in transit
      break;
    }
  }
  EXPECT_THAT(coordinator_->CompleteTask(ReadFromVector(corrupt)),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("SHA-256")));
  auto truncated = good;
  truncated.pop_back();  // no summary: the stream broke
  EXPECT_THAT(coordinator_->CompleteTask(ReadFromVector(truncated)),
              StatusIs(absl::StatusCode::kDataLoss));
  auto too_long = good;
  v1::CompleteTaskRequest extra;
  extra.set_chunk("x");
  too_long.insert(too_long.begin() + 3, extra);
  EXPECT_THAT(coordinator_->CompleteTask(ReadFromVector(too_long)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto headless = good;
  headless.erase(headless.begin());
  EXPECT_THAT(coordinator_->CompleteTask(ReadFromVector(headless)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto missing = MakeCompleteTaskStream("w1", *t, {outputs[0]}, {});
  EXPECT_THAT(coordinator_->CompleteTask(ReadFromVector(missing)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("required output")));
  auto wrong_worker = MakeCompleteTaskStream("w2", *t, outputs, {});
  EXPECT_THAT(coordinator_->CompleteTask(ReadFromVector(wrong_worker)),
              StatusIs(absl::StatusCode::kAborted));
  // None of the failed uploads left anything behind, and the lease stands.
  VPTQ_ASSERT_OK_AND_ASSIGN(auto staged, coordinator_->store().ListStagedArtifacts());
  EXPECT_TRUE(staged.empty());
  VPTQ_ASSERT_OK_AND_ASSIGN(auto committed, coordinator_->store().ListArtifacts());
  EXPECT_TRUE(committed.empty());

  VPTQ_ASSERT_OK_AND_ASSIGN(auto resp, coordinator_->CompleteTask(ReadFromVector(good)));
  ASSERT_EQ(resp.outputs_size(), static_cast<int>(outputs.size()));
  // A resend after a lost response is answered with the same outputs.
  VPTQ_ASSERT_OK_AND_ASSIGN(auto again, coordinator_->CompleteTask(ReadFromVector(good)));
  EXPECT_EQ(again.outputs(0).artifact_id(), resp.outputs(0).artifact_id());

  // What a consumer fetches is byte-identical, from any offset.
  const v1::ArtifactRef& ref = resp.outputs(1);
  EXPECT_EQ(ref.sha256(), Sha256Hex(outputs[1].second));
  v1::DownloadArtifactRequest fetch;
  fetch.set_artifact_id(ref.artifact_id());
  fetch.set_offset(4097);
  std::string data;
  ASSERT_THAT(coordinator_->FetchArtifact(fetch, [&](const v1::ArtifactStreamResponse& r) {
    if (r.has_chunk()) data += r.chunk().data();
    return true;
  }), IsOk());
  EXPECT_EQ(data, outputs[1].second.substr(4097));
}

TEST_F(CoordinatorTest, DownloadResumesAndChecksOwnership) {
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string id, Submit(Spec()));
  EXPECT_EQ(RunAll("w1"), 25);
  v1::Job job = GetJob(id);
  ASSERT_EQ(job.phase(), v1::JOB_PHASE_SUCCEEDED);
  ASSERT_EQ(job.outputs_size(), 2);
  const v1::ArtifactRef& ref = job.outputs(0).artifact();
  v1::ArtifactRef info;
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string all, Download(id, ref.artifact_id(), 0, &info));
  EXPECT_EQ(info.sha256(), ref.sha256());
  EXPECT_EQ(Sha256Hex(all), ref.sha256());
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string tail, Download(id, ref.artifact_id(), 37));
  EXPECT_EQ(all.substr(0, 37) + tail, all);
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string none, Download(id, ref.artifact_id(), all.size()));
  EXPECT_TRUE(none.empty());
  EXPECT_THAT(Download(id, ref.artifact_id(), all.size() + 1),
              StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(Download("job-other", ref.artifact_id(), 0), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Download(id, "no-such-artifact", 0), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(CoordinatorTest, WatchIsGapFreeResumableAndEnds) {
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string id, Submit(Spec()));
  absl::Status watch_status;
  std::vector<v1::JobEvent> live;
  std::thread watcher([&] { live = Watch(id, 0, &watch_status); });
  SimWorkerOptions opt;
  opt.workers = 4;
  SimWorkerStats stats =
      RunSimulatedWorkers(*coordinator_, opt, [&] { return JobFinished(*coordinator_, id); });
  watcher.join();
  EXPECT_EQ(stats.tasks_completed, 25);
  EXPECT_EQ(stats.errors, 0);
  ASSERT_THAT(watch_status, IsOk());
  ASSERT_FALSE(live.empty());
  for (size_t i = 0; i < live.size(); ++i) EXPECT_EQ(live[i].sequence(), int64_t(i) + 1);
  EXPECT_EQ(live.back().type(), v1::EVENT_TYPE_JOB_SUCCEEDED);
  EXPECT_EQ(live.back().progress().tasks_done(), 25);

  absl::Status s;
  auto resumed = Watch(id, 5, &s);
  ASSERT_THAT(s, IsOk());
  ASSERT_EQ(resumed.size(), live.size() - 5);
  EXPECT_EQ(resumed.front().sequence(), 6);
  auto after_end = Watch(id, live.back().sequence(), &s);
  EXPECT_THAT(s, IsOk());
  EXPECT_TRUE(after_end.empty());
  Watch("job-nope", 0, &s);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(CoordinatorTest, DrainRefusesNewWorkAndEndsWatches) {
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string id, Submit(Spec()));
  auto t = Lease("w1");
  ASSERT_TRUE(t);
  coordinator_->BeginDrain();
  v1::LeaseTaskRequest lease;
  lease.set_worker_id("w2");
  EXPECT_THAT(coordinator_->LeaseTask(lease), StatusIs(absl::StatusCode::kUnavailable));
  v1::SubmitJobRequest submit;
  *submit.mutable_spec() = Spec();
  EXPECT_THAT(coordinator_->SubmitJob(submit), StatusIs(absl::StatusCode::kUnavailable));
  absl::Status s;
  auto events = Watch(id, 0, &s);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("after_sequence=")));
  EXPECT_FALSE(events.empty());
  // Running work can still report.
  v1::HeartbeatRequest hb;
  hb.set_worker_id("w1");
  hb.set_task_id(t->task_id());
  hb.set_lease_id(t->lease_id());
  EXPECT_THAT(coordinator_->Heartbeat(hb), IsOk());
  EXPECT_THAT(CompleteWithPlaceholders(*coordinator_, "w1", *t, 10), IsOk());
}

TEST_F(CoordinatorTest, MetricsCountOutcomesAndRetries) {
  MetricsRegistry registry;
  VPTQ_ASSERT_OK_AND_ASSIGN(auto metrics, CoordinatorMetrics::Create(&registry, "1.2.3"));
  observer_ = metrics.get();
  Open(std::make_unique<MemoryJobStore>());
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string id, Submit(Spec()));
  auto t = Lease("w1");
  ASSERT_TRUE(t);
  v1::FailTaskRequest fail;
  fail.set_worker_id("w1");
  fail.set_task_id(t->task_id());
  fail.set_lease_id(t->lease_id());
  fail.mutable_status()->set_code(static_cast<int>(absl::StatusCode::kUnavailable));
  fail.mutable_status()->set_message("flaky disk");
  VPTQ_ASSERT_OK_AND_ASSIGN(auto failed, coordinator_->FailTask(fail));
  EXPECT_TRUE(failed.will_retry());
  fail.mutable_status()->set_code(0);
  EXPECT_THAT(coordinator_->FailTask(fail), StatusIs(absl::StatusCode::kInvalidArgument));
  clock_.Advance(absl::Seconds(5));
  EXPECT_EQ(RunAll("w1"), 25);
  coordinator_->Tick();
  EXPECT_EQ(GetJob(id).phase(), v1::JOB_PHASE_SUCCEEDED);
  const std::string text = registry.RenderText();
  EXPECT_THAT(text, HasSubstr("vptq_jobs_total{outcome=\"succeeded\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("vptq_jobs_total{outcome=\"failed\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("vptq_tasks_total{kind=\"quantize\",outcome=\"succeeded\"} 14\n"));
  EXPECT_THAT(text, HasSubstr("vptq_tasks_total{kind=\"hessian\",outcome=\"retried\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("vptq_task_retries_total{reason=\"unavailable\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("vptq_task_duration_seconds_count{kind=\"reduce\"} 8\n"));
  EXPECT_THAT(text, HasSubstr("vptq_task_duration_seconds_bucket{kind=\"reduce\",le=\"57600\"} 8\n"));
  EXPECT_THAT(text, HasSubstr("vptq_task_queue_depth 0\n"));
  EXPECT_THAT(text, HasSubstr("vptq_workers{state=\"idle\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("vptq_build_info{version=\"1.2.3\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("vptq_artifact_store_bytes 200\n"));  // config.json + weights
  coordinator_.reset();
}

TEST_F(CoordinatorTest, RecoversOnRocksDbWithoutRerunningFinishedTasks) {
  const std::string db = base_ + "/db";
  {
    auto store = RocksJobStore::Open(db);
    ASSERT_THAT(store, IsOk());
    Open(std::move(*store));
  }
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string id, Submit(Spec()));
  std::set<std::string> finished;
  for (int i = 0; i < 12; ++i) {
    auto t = Lease("w1");
    ASSERT_TRUE(t);
    ASSERT_THAT(CompleteWithPlaceholders(*coordinator_, "w1", *t, 100), IsOk());
    finished.insert(t->task_id());
  }
  auto in_flight = Lease("w1");
  ASSERT_TRUE(in_flight);
  // An upload interrupted by the crash.
  ASSERT_THAT(coordinator_->store().BeginArtifact(in_flight->task_id() + "/crash/0"), IsOk());
  ASSERT_THAT(coordinator_->store().PutArtifactChunk(in_flight->task_id() + "/crash/0", 0, "x"),
              IsOk());
  clock_.Advance(absl::Seconds(45));  // the in-flight lease is stale by restart time
  coordinator_.reset();               // "kill -9": no state change on the way down

  {
    auto store = RocksJobStore::Open(db);
    ASSERT_THAT(store, IsOk());
    Open(std::move(*store));
  }
  VPTQ_ASSERT_OK_AND_ASSIGN(auto staged, coordinator_->store().ListStagedArtifacts());
  EXPECT_TRUE(staged.empty());
  v1::Job job = GetJob(id);
  EXPECT_EQ(job.phase(), v1::JOB_PHASE_RUNNING);
  EXPECT_EQ(job.progress().tasks_done(), 12);
  clock_.Advance(absl::Seconds(1));  // past the backoff of the expired lease
  while (auto t = Lease("w2")) {
    EXPECT_FALSE(finished.count(t->task_id())) << t->name() << " ran again";
    ASSERT_THAT(CompleteWithPlaceholders(*coordinator_, "w2", *t, 100), IsOk());
  }
  job = GetJob(id);
  EXPECT_EQ(job.phase(), v1::JOB_PHASE_SUCCEEDED);
  absl::Status s;
  auto events = Watch(id, 0, &s);
  ASSERT_THAT(s, IsOk());
  std::map<std::string, int> succeeded;
  bool resumed = false;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].sequence(), int64_t(i) + 1);
    if (events[i].type() == v1::EVENT_TYPE_TASK_SUCCEEDED) succeeded[events[i].task_id()]++;
    if (events[i].type() == v1::EVENT_TYPE_JOB_RESUMED) resumed = true;
    if (resumed && events[i].type() == v1::EVENT_TYPE_TASK_LEASED) {
      EXPECT_FALSE(finished.count(events[i].task_id()));
    }
  }
  EXPECT_TRUE(resumed);
  EXPECT_EQ(succeeded.size(), 25u);
  for (const auto& [task, n] : succeeded) EXPECT_EQ(n, 1) << task;
  // The store's own bookkeeping is consistent after reopening.
  VPTQ_ASSERT_OK_AND_ASSIGN(auto artifacts, coordinator_->store().ListArtifacts());
  EXPECT_EQ(artifacts.size(), 2u);
  coordinator_.reset();
}

TEST_F(CoordinatorTest, ManyJobsManyWatchersNothingLost) {
  constexpr int kJobs = 6;
  std::vector<std::string> ids;
  for (int i = 0; i < kJobs; ++i) {
    v1::JobSpec spec = Spec();
    spec.set_priority(i % 3);
    VPTQ_ASSERT_OK_AND_ASSIGN(std::string id, Submit(spec));
    ids.push_back(id);
  }
  std::vector<std::vector<v1::JobEvent>> seen(kJobs);
  std::vector<absl::Status> statuses(kJobs);
  std::vector<std::thread> watchers;
  for (int i = 0; i < kJobs; ++i) {
    watchers.emplace_back([&, i] { seen[i] = Watch(ids[i], 0, &statuses[i]); });
  }
  SimWorkerOptions opt;
  opt.workers = 8;
  SimWorkerStats stats = RunSimulatedWorkers(*coordinator_, opt, [&] {
    for (const auto& id : ids) {
      if (!JobFinished(*coordinator_, id)) return false;
    }
    return true;
  });
  for (auto& w : watchers) w.join();
  EXPECT_EQ(stats.tasks_completed, 25 * kJobs);
  EXPECT_EQ(stats.errors, 0);
  for (int i = 0; i < kJobs; ++i) {
    ASSERT_THAT(statuses[i], IsOk());
    EXPECT_EQ(GetJob(ids[i]).phase(), v1::JOB_PHASE_SUCCEEDED);
    ASSERT_FALSE(seen[i].empty());
    for (size_t k = 0; k < seen[i].size(); ++k) EXPECT_EQ(seen[i][k].sequence(), int64_t(k) + 1);
    EXPECT_EQ(seen[i].back().type(), v1::EVENT_TYPE_JOB_SUCCEEDED);
  }
}

TEST(CompleteTaskStreamTest, ShapesTheMessages) {
  v1::TaskAssignment t;
  t.set_task_id("job/00001");
  t.set_lease_id("L");
  auto msgs = MakeCompleteTaskStream("w", t, {{"a", "12345"}, {"b", ""}}, {{"k", 2}}, 2);
  ASSERT_EQ(msgs.size(), 1u + (1 + 3 + 1) + (1 + 0 + 1) + 1);
  EXPECT_EQ(msgs[0].header().lease_id(), "L");
  EXPECT_EQ(msgs[1].output_begin().size_bytes(), 5);
  EXPECT_EQ(msgs[4].chunk(), "5");
  EXPECT_EQ(msgs[5].output_end().sha256(), Sha256Hex("12345"));
  EXPECT_EQ(msgs.back().summary().metrics().at("k"), 2);
}

}  // namespace
}  // namespace vptq::coordinator
