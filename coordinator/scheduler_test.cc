// Scheduler behaviour with a fake clock: leases, heartbeats, retries and
// backoff, retry classes, capability gating, priorities, cancellation,
// garbage collection, store failures and recovery. Nothing here sleeps.
#include "coordinator/scheduler.h"

#include <map>
#include <memory>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status.h"
#include "common/status_matchers.h"
#include "coordinator/artifact_writer.h"
#include "coordinator/memory_job_store.h"
#include "coordinator/planner.h"
#include "coordinator/retry_policy.h"

namespace vptq::coordinator {
namespace {

using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  // A new scheduler over the same committed data: a coordinator restart.
  void Reopen() {
    scheduler_.reset();
    store_ = std::make_unique<MemoryJobStore>(data_);
    scheduler_ = std::make_unique<Scheduler>(store_.get(), &clock_, options_);
    ASSERT_THAT(scheduler_->Recover(), IsOk());
  }

  void AddJob(const std::string& id, int priority = 0, int shards = 1,
              v1::DeviceKind device = v1::DEVICE_KIND_UNSPECIFIED, bool eval = false) {
    PlanModel model = LlamaShapedModel({1, 8, 16, 2, 2, 32});
    PlanOptions plan;
    plan.num_shards = shards;
    plan.num_sequences = 2 * shards;
    plan.sequence_length = 16;
    plan.eval = eval;
    plan.heavy_device = device;
    auto tasks = PlanJob(id, model, plan);
    ASSERT_THAT(tasks, IsOk());
    v1::JobRecord record;
    record.mutable_job()->set_job_id(id);
    record.mutable_job()->mutable_spec()->set_priority(priority);
    ASSERT_THAT(scheduler_->AddJob(record, *std::move(tasks)), IsOk());
  }

  static v1::WorkerCapabilities Cpu() {
    v1::WorkerCapabilities c;
    c.set_device_kind(v1::DEVICE_KIND_CPU);
    c.set_device_count(1);
    return c;
  }

  std::optional<v1::TaskAssignment> Lease(const std::string& worker,
                                          const v1::WorkerCapabilities& caps = Cpu()) {
    auto r = scheduler_->Lease(worker, caps);
    EXPECT_THAT(r, IsOk());
    return r.ok() ? *r : std::nullopt;
  }

  // Stages every required output of `t` and completes it.
  absl::StatusOr<CompleteResult> Complete(const std::string& worker, const v1::TaskAssignment& t,
                                          std::map<std::string, double> metrics = {}) {
    std::vector<std::string> names(t.required_outputs().begin(), t.required_outputs().end());
    if (t.kind() == v1::TASK_KIND_ASSEMBLE) names.push_back("model.safetensors");
    std::vector<v1::ArtifactMeta> metas;
    for (const auto& name : names) {
      const std::string data = "data of " + name;
      ArtifactWriter w(store_.get(), absl::StrCat(t.task_id(), "/", t.lease_id(), "/", name), 8);
      VPTQ_RETURN_IF_ERROR(w.Begin());
      VPTQ_RETURN_IF_ERROR(w.Write(data));
      VPTQ_ASSIGN_OR_RETURN(v1::ArtifactMeta meta, w.Finish(Sha256Hex(data), data.size()));
      meta.mutable_ref()->set_name(name);
      meta.set_job_id(t.job_id());
      meta.set_task_id(t.task_id());
      metas.push_back(meta);
    }
    return scheduler_->Complete(worker, t.task_id(), t.lease_id(), metas, metrics);
  }

  // Leases and completes until nothing is left; returns task names in order.
  std::vector<std::string> RunToEnd(const std::string& worker) {
    std::vector<std::string> names;
    while (auto t = Lease(worker)) {
      names.push_back(t->name());
      EXPECT_THAT(Complete(worker, *t), IsOk());
    }
    return names;
  }

  std::vector<v1::JobEvent> Events(const std::string& job) {
    auto e = store_->ReadEvents(job, 0, 1 << 20);
    EXPECT_THAT(e, IsOk());
    return e.ok() ? *e : std::vector<v1::JobEvent>{};
  }

  v1::TaskStatus TaskNamed(const std::string& job, const std::string& name) {
    auto tasks = scheduler_->GetTasks(job);
    EXPECT_THAT(tasks, IsOk());
    for (const auto& t : *tasks) {
      if (t.name() == name) return t;
    }
    ADD_FAILURE() << "no task " << name;
    return {};
  }

  v1::JobPhase Phase(const std::string& job) {
    auto j = scheduler_->GetJob(job);
    EXPECT_THAT(j, IsOk());
    return j.ok() ? j->phase() : v1::JOB_PHASE_UNSPECIFIED;
  }

  static SchedulerOptions TestOptions() {
    SchedulerOptions o;
    o.lease = absl::Seconds(30);
    o.max_attempts = 3;
    o.backoff_initial = absl::Seconds(1);
    o.backoff_max = absl::Seconds(8);
    return o;
  }

  SchedulerOptions options_ = TestOptions();
  FakeClock clock_;
  std::shared_ptr<MemoryJobStore::Data> data_ = std::make_shared<MemoryJobStore::Data>();
  std::unique_ptr<MemoryJobStore> store_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(SchedulerTest, RunsAJobToTheEndInDependencyOrder) {
  AddJob("job-a", 0, /*shards=*/2, v1::DEVICE_KIND_UNSPECIFIED, /*eval=*/true);
  EXPECT_EQ(Phase("job-a"), v1::JOB_PHASE_PENDING);
  std::vector<std::string> order = RunToEnd("w1");
  ASSERT_EQ(order.size(), 2u + 4 + 7 + 1 + 1);
  EXPECT_EQ(order[0], "hessian/shard-00000");
  EXPECT_EQ(order[2], "reduce/model.layers.0.qkv");
  EXPECT_EQ(order[6], "quantize/model.layers.0.mlp.gate_proj");  // largest first
  EXPECT_EQ(order[13], "assemble");
  EXPECT_EQ(order[14], "eval");
  VPTQ_ASSERT_OK_AND_ASSIGN(v1::Job job, scheduler_->GetJob("job-a"));
  EXPECT_EQ(job.phase(), v1::JOB_PHASE_SUCCEEDED);
  EXPECT_EQ(job.progress().tasks_done(), 15);
  EXPECT_EQ(job.progress().linears_done(), 7);
  EXPECT_EQ(job.progress().stage(), "done");
  EXPECT_DOUBLE_EQ(job.progress().fraction_done(), 1.0);
  ASSERT_EQ(job.outputs_size(), 2);
  EXPECT_EQ(job.outputs(0).path(), "config.json");
  std::set<std::string> conditions;
  for (const auto& c : job.conditions()) {
    if (c.status()) conditions.insert(c.type());
  }
  EXPECT_EQ(conditions, (std::set<std::string>{"Planned", "HessiansReady", "Quantized",
                                                "Assembled", "Evaluated"}));

  // Events: 1..N without gaps, terminal last.
  auto events = Events("job-a");
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].sequence(), int64_t(i) + 1);
  EXPECT_EQ(events.front().type(), v1::EVENT_TYPE_JOB_SUBMITTED);
  EXPECT_EQ(events[1].type(), v1::EVENT_TYPE_JOB_STARTED);
  EXPECT_EQ(events.back().type(), v1::EVENT_TYPE_JOB_SUCCEEDED);
  EXPECT_EQ(job.last_event_sequence(), events.back().sequence());

  // Intermediates were collected as their consumers finished; the
  // checkpoint (and the eval's outputs) remain.
  VPTQ_ASSERT_OK_AND_ASSIGN(auto artifacts, store_->ListArtifacts());
  std::set<std::string> names;
  for (const auto& a : artifacts) names.insert(a.ref().name());
  EXPECT_EQ(names, (std::set<std::string>{"config.json", "model.safetensors"}));
  EXPECT_EQ(scheduler_->artifact_bytes(),
            int64_t(std::string("data of config.json").size() +
                    std::string("data of model.safetensors").size()));

  // A finished job's tasks are served from the store.
  VPTQ_ASSERT_OK_AND_ASSIGN(auto tasks, scheduler_->GetTasks("job-a"));
  ASSERT_EQ(tasks.size(), 15u);
  for (const auto& t : tasks) EXPECT_EQ(t.state(), v1::TASK_STATE_SUCCEEDED);
}

TEST_F(SchedulerTest, AsksToReclaimSpaceOnceDeletionsOutweighLiveData) {
  options_.reclaim_after_bytes = 1;
  Reopen();
  AddJob("job-a", 0, /*shards=*/2);
  EXPECT_FALSE(scheduler_->TakeReclaimRequest());  // nothing deleted yet
  auto first = Lease("w1");
  ASSERT_TRUE(first.has_value());
  ASSERT_THAT(Complete("w1", *first), IsOk());
  EXPECT_FALSE(scheduler_->TakeReclaimRequest());  // a live shard, nothing dead
  RunToEnd("w1");
  ASSERT_EQ(Phase("job-a"), v1::JOB_PHASE_SUCCEEDED);
  EXPECT_TRUE(scheduler_->TakeReclaimRequest());   // every intermediate is dead
  EXPECT_FALSE(scheduler_->TakeReclaimRequest());  // answered once

  // Below the byte threshold nothing is asked for.
  options_.reclaim_after_bytes = int64_t{1} << 20;
  Reopen();
  AddJob("job-b", 0, /*shards=*/2);
  RunToEnd("w1");
  ASSERT_EQ(Phase("job-b"), v1::JOB_PHASE_SUCCEEDED);
  EXPECT_FALSE(scheduler_->TakeReclaimRequest());
}

TEST_F(SchedulerTest, InputsAreTheProducersOutputs) {
  AddJob("job-a", 0, 2);
  auto h0 = Lease("w1");
  auto h1 = Lease("w1");
  ASSERT_TRUE(h0 && h1);
  EXPECT_FALSE(Lease("w1").has_value());  // REDUCE waits for both shards
  ASSERT_THAT(Complete("w1", *h0), IsOk());
  EXPECT_FALSE(Lease("w1").has_value());
  ASSERT_THAT(Complete("w1", *h1), IsOk());
  auto reduce = Lease("w1");
  ASSERT_TRUE(reduce);
  EXPECT_EQ(reduce->kind(), v1::TASK_KIND_REDUCE);
  ASSERT_EQ(reduce->inputs_size(), 2);
  EXPECT_EQ(reduce->inputs(0).name(), "shard-00000");
  EXPECT_EQ(reduce->inputs(1).name(), "shard-00001");
  EXPECT_EQ(reduce->inputs(1).artifact().name(), "hessian/model.layers.0.qkv");
  EXPECT_EQ(reduce->inputs(1).artifact().sha256(), Sha256Hex("data of hessian/model.layers.0.qkv"));
  EXPECT_EQ(reduce->heartbeat_interval_ms(), 10000);
  // The shard partials for this group are deleted once its REDUCE is done.
  const std::string partial = reduce->inputs(0).artifact().artifact_id();
  EXPECT_THAT(store_->GetArtifact(partial), IsOk());
  ASSERT_THAT(Complete("w1", *reduce), IsOk());
  EXPECT_THAT(store_->GetArtifact(partial).status(), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(SchedulerTest, LeaseExpiryReturnsTheTaskAfterBackoff) {
  AddJob("job-a");
  auto t = Lease("w1");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->attempt(), 1);
  clock_.Advance(absl::Seconds(29));
  scheduler_->Tick();
  EXPECT_FALSE(Lease("w2").has_value());  // still leased
  clock_.Advance(absl::Seconds(2));
  scheduler_->Tick();
  v1::TaskStatus st = TaskNamed("job-a", t->name());
  EXPECT_EQ(st.state(), v1::TASK_STATE_READY);
  EXPECT_EQ(st.failures(), 1);
  EXPECT_EQ(st.not_before_unix_ms(), ToUnixMs(clock_.Now() + absl::Seconds(1)));
  EXPECT_FALSE(Lease("w2").has_value());  // in backoff
  clock_.Advance(absl::Seconds(1));
  auto again = Lease("w2");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->task_id(), t->task_id());
  EXPECT_EQ(again->attempt(), 2);
  // The old lease is dead for every call.
  EXPECT_THAT(scheduler_->Heartbeat("w1", t->task_id(), t->lease_id()),
              StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(Complete("w1", *t), StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(scheduler_->Fail("w1", t->task_id(), t->lease_id(), absl::InternalError("x")),
              StatusIs(absl::StatusCode::kAborted));
  bool saw_retry = false;
  for (const auto& e : Events("job-a")) {
    if (e.type() == v1::EVENT_TYPE_TASK_RETRYING) {
      saw_retry = true;
      EXPECT_EQ(e.reason(), "lease_expired");
      EXPECT_EQ(e.worker_id(), "w1");
    }
  }
  EXPECT_TRUE(saw_retry);
  EXPECT_THAT(Complete("w2", *again), IsOk());
}

TEST_F(SchedulerTest, HeartbeatExtendsTheLease) {
  AddJob("job-a");
  auto t = Lease("w1");
  ASSERT_TRUE(t);
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Seconds(20));
    VPTQ_ASSERT_OK_AND_ASSIGN(auto hb, scheduler_->Heartbeat("w1", t->task_id(), t->lease_id()));
    EXPECT_EQ(hb.lease_deadline_unix_ms(), ToUnixMs(clock_.Now() + absl::Seconds(30)));
    EXPECT_FALSE(hb.cancelled());
    scheduler_->Tick();
  }
  EXPECT_EQ(TaskNamed("job-a", t->name()).state(), v1::TASK_STATE_LEASED);
  // Another worker cannot heartbeat someone else's lease.
  EXPECT_THAT(scheduler_->Heartbeat("w2", t->task_id(), t->lease_id()),
              StatusIs(absl::StatusCode::kAborted));
  clock_.Advance(absl::Seconds(31));
  scheduler_->Tick();
  EXPECT_EQ(TaskNamed("job-a", t->name()).state(), v1::TASK_STATE_READY);
}

TEST_F(SchedulerTest, AttemptsAreBoundedWithGrowingBackoff) {
  AddJob("job-a");
  std::vector<absl::Duration> waits;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto t = Lease("w1");
    ASSERT_TRUE(t) << attempt;
    EXPECT_EQ(t->attempt(), attempt);
    VPTQ_ASSERT_OK_AND_ASSIGN(
        bool retry, scheduler_->Fail("w1", t->task_id(), t->lease_id(),
                                     absl::UnavailableError("cannot reach the model store")));
    EXPECT_EQ(retry, attempt < 3);
    if (attempt < 3) {
      v1::TaskStatus st = TaskNamed("job-a", t->name());
      waits.push_back(FromUnixMs(st.not_before_unix_ms()) - clock_.Now());
      clock_.Advance(waits.back() - absl::Milliseconds(1));
      EXPECT_FALSE(Lease("w1").has_value());
      clock_.Advance(absl::Milliseconds(1));
    }
  }
  EXPECT_EQ(waits, (std::vector<absl::Duration>{absl::Seconds(1), absl::Seconds(2)}));
  VPTQ_ASSERT_OK_AND_ASSIGN(v1::Job job, scheduler_->GetJob("job-a"));
  EXPECT_EQ(job.phase(), v1::JOB_PHASE_FAILED);
  EXPECT_EQ(job.error().code(), static_cast<int>(absl::StatusCode::kUnavailable));
  EXPECT_THAT(job.error().message(), HasSubstr("after 3 attempts"));
  EXPECT_FALSE(Lease("w1").has_value());
  EXPECT_EQ(Events("job-a").back().type(), v1::EVENT_TYPE_JOB_FAILED);
}

TEST(BackoffTest, DoublesUpToTheCap) {
  EXPECT_EQ(BackoffDelay(0, absl::Seconds(1), absl::Seconds(10)), absl::ZeroDuration());
  EXPECT_EQ(BackoffDelay(1, absl::Seconds(1), absl::Seconds(10)), absl::Seconds(1));
  EXPECT_EQ(BackoffDelay(4, absl::Seconds(1), absl::Seconds(10)), absl::Seconds(8));
  EXPECT_EQ(BackoffDelay(5, absl::Seconds(1), absl::Seconds(10)), absl::Seconds(10));
  EXPECT_EQ(BackoffDelay(60, absl::Seconds(1), absl::Seconds(10)), absl::Seconds(10));
}

TEST_F(SchedulerTest, ResourceExhaustedRetriesElsewhereAtOnce) {
  AddJob("job-a");
  auto t = Lease("w1");
  ASSERT_TRUE(t);
  VPTQ_ASSERT_OK_AND_ASSIGN(bool retry, scheduler_->Fail("w1", t->task_id(), t->lease_id(),
                                                         absl::ResourceExhaustedError("OOM")));
  EXPECT_TRUE(retry);
  EXPECT_FALSE(Lease("w1").has_value());
  auto again = Lease("w2");  // at once, no backoff
  ASSERT_TRUE(again);
  EXPECT_EQ(again->task_id(), t->task_id());
  VPTQ_ASSERT_OK_AND_ASSIGN(retry, scheduler_->Fail("w2", again->task_id(), again->lease_id(),
                                                    absl::ResourceExhaustedError("OOM")));
  EXPECT_FALSE(Lease("w1").has_value());
  EXPECT_FALSE(Lease("w2").has_value());
  auto third = Lease("w3");
  ASSERT_TRUE(third);
  EXPECT_EQ(third->task_id(), t->task_id());
}

TEST_F(SchedulerTest, ExclusionIsLiftedWhenEveryLiveWorkerIsExcluded) {
  options_.max_attempts = 10;
  Reopen();
  AddJob("job-a");
  auto t = Lease("w1");
  ASSERT_TRUE(t);
  ASSERT_THAT(scheduler_->Fail("w1", t->task_id(), t->lease_id(), absl::ResourceExhaustedError("OOM")),
              IsOk());
  EXPECT_FALSE(Lease("w1").has_value());
  scheduler_->Tick();  // w1 is the only live worker and it is excluded
  auto again = Lease("w1");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->task_id(), t->task_id());
}

TEST_F(SchedulerTest, BadInputFailsTheJobAtOnce) {
  for (auto code : {absl::StatusCode::kInvalidArgument, absl::StatusCode::kFailedPrecondition}) {
    const std::string id = absl::StrCat("job-", static_cast<int>(code));
    AddJob(id, 0, 2);
    auto t = Lease("w1");
    auto other = Lease("w2");
    ASSERT_TRUE(t && other);
    VPTQ_ASSERT_OK_AND_ASSIGN(bool retry,
                              scheduler_->Fail("w1", t->task_id(), t->lease_id(),
                                               absl::Status(code, "tensor 'x' has NaNs")));
    EXPECT_FALSE(retry);
    VPTQ_ASSERT_OK_AND_ASSIGN(v1::Job job, scheduler_->GetJob(id));
    EXPECT_EQ(job.phase(), v1::JOB_PHASE_FAILED);
    EXPECT_EQ(job.error().code(), static_cast<int>(code));
    EXPECT_THAT(job.error().message(), HasSubstr("tensor 'x' has NaNs"));
    // The other running task learns it from its heartbeat.
    VPTQ_ASSERT_OK_AND_ASSIGN(auto hb,
                              scheduler_->Heartbeat("w2", other->task_id(), other->lease_id()));
    EXPECT_TRUE(hb.cancelled());
    EXPECT_FALSE(Lease("w3").has_value());
  }
}

TEST_F(SchedulerTest, AbortedRetriesWithBackoffAndReturnedLeaseDoesNotCount) {
  AddJob("job-a");
  auto t = Lease("w1");
  ASSERT_TRUE(t);
  ASSERT_THAT(scheduler_->Fail("w1", t->task_id(), t->lease_id(), absl::CancelledError("SIGTERM")),
              IsOk());
  v1::TaskStatus st = TaskNamed("job-a", t->name());
  EXPECT_EQ(st.failures(), 0);
  auto back = Lease("w1");  // at once, same worker allowed
  ASSERT_TRUE(back);
  ASSERT_THAT(scheduler_->Fail("w1", back->task_id(), back->lease_id(), absl::AbortedError("x")),
              IsOk());
  EXPECT_EQ(TaskNamed("job-a", t->name()).failures(), 1);
  EXPECT_FALSE(Lease("w1").has_value());
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(Lease("w1").has_value());
  std::vector<std::string> reasons;
  for (const auto& e : Events("job-a")) {
    if (e.type() == v1::EVENT_TYPE_TASK_RETRYING) reasons.push_back(e.reason());
  }
  EXPECT_EQ(reasons, (std::vector<std::string>{"worker_returned", "aborted"}));
}

TEST_F(SchedulerTest, CapabilitiesGateTasks) {
  AddJob("job-gpu", 0, 1, v1::DEVICE_KIND_CUDA);
  EXPECT_FALSE(Lease("cpu-1", Cpu()).has_value());
  v1::WorkerCapabilities small;
  small.set_device_kind(v1::DEVICE_KIND_CUDA);
  small.set_device_memory_bytes(1 << 20);  // 1 MiB: below the HESSIAN estimate
  EXPECT_FALSE(Lease("gpu-small", small).has_value());
  v1::WorkerCapabilities reducer;
  reducer.set_device_kind(v1::DEVICE_KIND_CUDA);
  reducer.add_task_kinds(v1::TASK_KIND_REDUCE);
  EXPECT_FALSE(Lease("gpu-reducer", reducer).has_value());
  v1::WorkerCapabilities gpu;
  gpu.set_device_kind(v1::DEVICE_KIND_CUDA);
  gpu.set_device_memory_bytes(int64_t{80} << 30);
  auto t = Lease("gpu-1", gpu);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->kind(), v1::TASK_KIND_HESSIAN);
  ASSERT_THAT(Complete("gpu-1", *t), IsOk());
  // REDUCE runs anywhere: the CPU worker and the REDUCE-only worker get work.
  auto r1 = Lease("cpu-1", Cpu());
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->kind(), v1::TASK_KIND_REDUCE);
  auto r2 = Lease("gpu-reducer", reducer);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->kind(), v1::TASK_KIND_REDUCE);
}

TEST_F(SchedulerTest, PriorityThenAge) {
  AddJob("job-old-low", 0);
  clock_.Advance(absl::Seconds(1));
  AddJob("job-high-1", 5);
  clock_.Advance(absl::Seconds(1));
  AddJob("job-high-2", 5);
  std::vector<std::string> jobs;
  for (int i = 0; i < 3; ++i) {
    auto t = Lease("w1");
    ASSERT_TRUE(t);
    jobs.push_back(t->job_id());
  }
  EXPECT_EQ(jobs, (std::vector<std::string>{"job-high-1", "job-high-2", "job-old-low"}));
  VPTQ_ASSERT_OK_AND_ASSIGN(JobPage page, scheduler_->ListJobs(2, "", {}));
  ASSERT_EQ(page.jobs.size(), 2u);
  EXPECT_EQ(page.jobs[0].job_id(), "job-high-2");  // newest first
  VPTQ_ASSERT_OK_AND_ASSIGN(JobPage next, scheduler_->ListJobs(2, page.next_page_token, {}));
  ASSERT_EQ(next.jobs.size(), 1u);
  EXPECT_EQ(next.jobs[0].job_id(), "job-old-low");
  EXPECT_TRUE(next.next_page_token.empty());
  VPTQ_ASSERT_OK_AND_ASSIGN(JobPage running,
                            scheduler_->ListJobs(10, "", {v1::JOB_PHASE_RUNNING}));
  EXPECT_EQ(running.jobs.size(), 3u);
}

TEST_F(SchedulerTest, CancellationReachesRunningTasks) {
  AddJob("job-a", 0, 2);
  auto t = Lease("w1");
  ASSERT_TRUE(t);
  VPTQ_ASSERT_OK_AND_ASSIGN(v1::Job job, scheduler_->CancelJob("job-a", "user changed their mind"));
  EXPECT_EQ(job.phase(), v1::JOB_PHASE_CANCELLED);
  EXPECT_EQ(job.error().code(), static_cast<int>(absl::StatusCode::kCancelled));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto hb, scheduler_->Heartbeat("w1", t->task_id(), t->lease_id()));
  EXPECT_TRUE(hb.cancelled());
  EXPECT_THAT(Complete("w1", *t), StatusIs(absl::StatusCode::kAborted));
  VPTQ_ASSERT_OK_AND_ASSIGN(bool retry, scheduler_->Fail("w1", t->task_id(), t->lease_id(),
                                                         absl::CancelledError("stopped")));
  EXPECT_FALSE(retry);
  EXPECT_FALSE(Lease("w2").has_value());
  VPTQ_ASSERT_OK_AND_ASSIGN(auto tasks, scheduler_->GetTasks("job-a"));
  for (const auto& task : tasks) EXPECT_EQ(task.state(), v1::TASK_STATE_CANCELLED);
  EXPECT_THAT(scheduler_->CancelJob("job-a", ""), IsOk());  // idempotent
  EXPECT_EQ(Events("job-a").back().type(), v1::EVENT_TYPE_JOB_CANCELLED);
  // Staged outputs of the cancelled attempt never became visible.
  VPTQ_ASSERT_OK_AND_ASSIGN(auto artifacts, store_->ListArtifacts());
  EXPECT_TRUE(artifacts.empty());

  AddJob("job-b");
  RunToEnd("w1");
  EXPECT_THAT(scheduler_->CancelJob("job-b", ""),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(scheduler_->CancelJob("job-nope", ""), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(SchedulerTest, CompletionNeedsEveryRequiredOutput) {
  AddJob("job-a");
  auto t = Lease("w1");
  ASSERT_TRUE(t);
  EXPECT_THAT(scheduler_->Complete("w1", t->task_id(), t->lease_id(), {}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("required output")));
  EXPECT_EQ(TaskNamed("job-a", t->name()).state(), v1::TASK_STATE_LEASED);  // the lease stands
  VPTQ_ASSERT_OK_AND_ASSIGN(CompleteResult first, Complete("w1", *t));
  EXPECT_FALSE(first.duplicate);
  // A retried CompleteTask under the same lease is answered, not re-applied.
  VPTQ_ASSERT_OK_AND_ASSIGN(CompleteResult again,
                            scheduler_->Complete("w1", t->task_id(), t->lease_id(), {}, {}));
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.outputs.size(), first.outputs.size());
}

TEST_F(SchedulerTest, StoreFailureLeavesTheDurableStateInCharge) {
  AddJob("job-a");
  auto t = Lease("w1");
  ASSERT_TRUE(t);
  store_->FailNextApply(absl::UnavailableError("disk full"));
  EXPECT_THAT(Complete("w1", *t), StatusIs(absl::StatusCode::kUnavailable));
  // Memory was rebuilt from the store: the task is still leased to w1.
  EXPECT_EQ(TaskNamed("job-a", t->name()).state(), v1::TASK_STATE_LEASED);
  EXPECT_THAT(Complete("w1", *t), IsOk());
  store_->FailNextApply(absl::UnavailableError("disk full"));
  EXPECT_THAT(scheduler_->Lease("w1", Cpu()).status(), StatusIs(absl::StatusCode::kUnavailable));
  auto events = Events("job-a");
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].sequence(), int64_t(i) + 1);
  EXPECT_TRUE(Lease("w1").has_value());
}

TEST_F(SchedulerTest, RecoveryResumesWithoutRerunningFinishedTasks) {
  AddJob("job-a", 0, 2);
  // Both shards and two REDUCEs done; one REDUCE leased with a live lease,
  // one with a lease that goes stale while the coordinator is down.
  for (int i = 0; i < 2; ++i) {
    auto t = Lease("w1");
    ASSERT_TRUE(t);
    ASSERT_THAT(Complete("w1", *t), IsOk());
  }
  std::set<std::string> done;
  for (int i = 0; i < 2; ++i) {
    auto t = Lease("w1");
    ASSERT_TRUE(t);
    ASSERT_THAT(Complete("w1", *t), IsOk());
    done.insert(t->task_id());
  }
  auto stale = Lease("w-dead");
  ASSERT_TRUE(stale);
  clock_.Advance(absl::Seconds(20));
  auto live = Lease("w-live");
  ASSERT_TRUE(live);

  // Crash: drop the scheduler without any shutdown step; 15 s pass.
  clock_.Advance(absl::Seconds(15));
  Reopen();

  EXPECT_EQ(TaskNamed("job-a", stale->name()).state(), v1::TASK_STATE_READY);
  EXPECT_EQ(TaskNamed("job-a", live->name()).state(), v1::TASK_STATE_LEASED);
  VPTQ_ASSERT_OK_AND_ASSIGN(auto hb,
                            scheduler_->Heartbeat("w-live", live->task_id(), live->lease_id()));
  EXPECT_FALSE(hb.cancelled());
  ASSERT_THAT(Complete("w-live", *live), IsOk());
  done.insert(live->task_id());
  const int64_t resumed_at = Events("job-a").back().sequence();

  // Run the rest (past the expired lease's backoff): no task finished
  // before the restart is leased again.
  clock_.Advance(absl::Seconds(1));
  while (auto t = Lease("w2")) {
    EXPECT_FALSE(done.count(t->task_id())) << t->name() << " ran again";
    ASSERT_THAT(Complete("w2", *t), IsOk());
  }
  EXPECT_EQ(Phase("job-a"), v1::JOB_PHASE_SUCCEEDED);
  auto events = Events("job-a");
  bool resumed = false;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].sequence(), int64_t(i) + 1);
    if (events[i].type() == v1::EVENT_TYPE_JOB_RESUMED) {
      resumed = true;
      EXPECT_THAT(events[i].message(), HasSubstr("1 live leases kept, 1 stale leases expired"));
    }
  }
  EXPECT_TRUE(resumed);
  EXPECT_GT(events.back().sequence(), resumed_at);
}

TEST_F(SchedulerTest, WaitForEventsWakesOnNewEvents) {
  AddJob("job-a");
  const int64_t last = Events("job-a").back().sequence();
  EXPECT_TRUE(scheduler_->WaitForEvents("job-a", last - 1, absl::ZeroDuration()));
  EXPECT_FALSE(scheduler_->WaitForEvents("job-a", last, absl::Milliseconds(1)));
  EXPECT_FALSE(scheduler_->WaitForEvents("job-nope", 0, absl::Milliseconds(1)));
  ASSERT_TRUE(Lease("w1").has_value());
  EXPECT_TRUE(scheduler_->WaitForEvents("job-a", last, absl::Milliseconds(1)));
  scheduler_->Shutdown();
  EXPECT_FALSE(scheduler_->WaitForEvents("job-a", 0, absl::Seconds(10)));
}

TEST(RetryPolicyTest, CodesDecide) {
  EXPECT_EQ(ClassifyFailure(absl::StatusCode::kUnavailable).retry_class, RetryClass::kRetry);
  EXPECT_EQ(ClassifyFailure(absl::StatusCode::kAborted).retry_class, RetryClass::kRetry);
  EXPECT_EQ(ClassifyFailure(absl::StatusCode::kResourceExhausted).retry_class,
            RetryClass::kRetryElsewhere);
  EXPECT_EQ(ClassifyFailure(absl::StatusCode::kInvalidArgument).retry_class, RetryClass::kFatal);
  EXPECT_EQ(ClassifyFailure(absl::StatusCode::kFailedPrecondition).retry_class,
            RetryClass::kFatal);
  EXPECT_EQ(ClassifyFailure(absl::StatusCode::kCancelled).retry_class, RetryClass::kReturned);
  EXPECT_EQ(ClassifyFailure(absl::StatusCode::kInternal).reason, "internal");
}

}  // namespace
}  // namespace vptq::coordinator
