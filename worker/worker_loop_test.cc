// The worker loop against a scripted transport: UNAVAILABLE retried,
// fetches resumed by offset and checked by SHA-256, DATA_LOSS resent,
// cancellation / lost lease / Stop() while a task runs, and runner errors
// reported with their code.
#include "worker/worker_loop.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status_matchers.h"

namespace vptq::worker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

constexpr auto kWait = std::chrono::seconds(30);

// Scripted WorkerService. Configure before Run(); read records after, or
// wait for them with WaitUntil.
class FakeTransport : public WorkerTransport {
 public:
  // ---- script ----
  int lease_unavailable = 0;      // first LeaseTask calls answer UNAVAILABLE
  absl::Status lease_error;       // then, when not OK, every LeaseTask answers it
  std::deque<v1::TaskAssignment> tasks;
  std::map<std::string, std::string> artifacts;  // artifact id -> bytes
  int64_t chunk_bytes = 4;
  int64_t fetch_break_at = -1;    // the first fetch breaks (UNAVAILABLE) after this many bytes
  int corrupt_fetches = 0;        // first whole fetches deliver a flipped byte
  bool heartbeat_cancelled = false;
  absl::StatusCode heartbeat_code = absl::StatusCode::kOk;
  int complete_data_loss = 0;     // first CompleteTask calls answer DATA_LOSS
  int complete_unavailable = 0;   // then these answer UNAVAILABLE

  // ---- records ----
  int lease_calls = 0;
  std::vector<v1::LeaseTaskRequest> lease_requests;
  std::vector<v1::HeartbeatRequest> heartbeats;
  std::vector<v1::DownloadArtifactRequest> fetches;
  std::vector<std::vector<v1::CompleteTaskRequest>> completes;
  std::vector<v1::FailTaskRequest> fails;

  absl::StatusOr<v1::LeaseTaskResponse> LeaseTask(const v1::LeaseTaskRequest& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++lease_calls;
    lease_requests.push_back(request);
    cv_.notify_all();
    if (lease_calls <= lease_unavailable) return absl::UnavailableError("coordinator restarting");
    if (!lease_error.ok()) return lease_error;
    v1::LeaseTaskResponse r;
    if (tasks.empty()) {
      r.set_retry_after_ms(1);
      return r;
    }
    *r.mutable_task() = tasks.front();
    tasks.pop_front();
    return r;
  }

  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    heartbeats.push_back(request);
    cv_.notify_all();
    if (heartbeat_code != absl::StatusCode::kOk) return absl::Status(heartbeat_code, "scripted");
    v1::HeartbeatResponse r;
    r.set_cancelled(heartbeat_cancelled);
    return r;
  }

  absl::Status FetchArtifact(
      const v1::DownloadArtifactRequest& request,
      const std::function<bool(const v1::ArtifactStreamResponse&)>& on_message) override {
    std::string data;
    int64_t break_at = -1;
    {
      std::lock_guard<std::mutex> lock(mu_);
      fetches.push_back(request);
      auto it = artifacts.find(request.artifact_id());
      if (it == artifacts.end()) return absl::NotFoundError("no such artifact");
      data = it->second;
      if (request.offset() == 0 && corrupt_fetches > 0 && !data.empty()) {
        --corrupt_fetches;
        data[data.size() / 2] ^= 0x5a;
      }
      break_at = fetch_break_at;
      fetch_break_at = -1;  // only the first fetch breaks
    }
    v1::ArtifactStreamResponse info;
    info.mutable_info()->set_artifact_id(request.artifact_id());
    info.mutable_info()->set_size_bytes(static_cast<int64_t>(data.size()));
    if (!on_message(info)) return absl::CancelledError("receiver stopped");
    for (int64_t off = request.offset(); off < static_cast<int64_t>(data.size());
         off += chunk_bytes) {
      if (break_at >= 0 && off >= break_at) return absl::UnavailableError("connection reset");
      v1::ArtifactStreamResponse m;
      m.mutable_chunk()->set_offset(off);
      m.mutable_chunk()->set_data(data.substr(static_cast<size_t>(off),
                                              static_cast<size_t>(chunk_bytes)));
      if (!on_message(m)) return absl::CancelledError("receiver stopped");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<v1::CompleteTaskResponse> CompleteTask(
      const std::vector<v1::CompleteTaskRequest>& messages) override {
    std::lock_guard<std::mutex> lock(mu_);
    completes.push_back(messages);
    cv_.notify_all();
    if (complete_data_loss > 0) {
      --complete_data_loss;
      return absl::DataLossError("chunk checksum mismatch");
    }
    if (complete_unavailable > 0) {
      --complete_unavailable;
      return absl::UnavailableError("coordinator restarting");
    }
    return v1::CompleteTaskResponse();
  }

  absl::StatusOr<v1::FailTaskResponse> FailTask(const v1::FailTaskRequest& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    fails.push_back(request);
    cv_.notify_all();
    v1::FailTaskResponse r;
    r.set_will_retry(true);
    return r;
  }

  bool WaitUntil(const std::function<bool()>& done) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWait, done);
  }
  std::unique_lock<std::mutex> Lock() { return std::unique_lock<std::mutex>(mu_); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

v1::TaskAssignment Task(const std::string& id, std::vector<v1::TaskInput> inputs = {}) {
  v1::TaskAssignment t;
  t.set_task_id(id);
  t.set_job_id("job-1");
  t.set_name("quantize/" + id);
  t.set_kind(v1::TASK_KIND_QUANTIZE);
  t.set_attempt(1);
  t.set_lease_id("lease-" + id);
  t.set_heartbeat_interval_ms(2);
  for (auto& i : inputs) *t.add_inputs() = std::move(i);
  return t;
}

v1::TaskInput Input(const std::string& name, const std::string& id, const std::string& bytes) {
  v1::TaskInput in;
  in.set_name(name);
  in.mutable_artifact()->set_artifact_id(id);
  in.mutable_artifact()->set_name(name);
  in.mutable_artifact()->set_size_bytes(static_cast<int64_t>(bytes.size()));
  in.mutable_artifact()->set_sha256(Sha256Hex(bytes));
  return in;
}

// Outputs of one CompleteTask stream, each checked against its OutputEnd.
std::map<std::string, std::string> Decode(const std::vector<v1::CompleteTaskRequest>& messages) {
  std::map<std::string, std::string> out;
  std::string name;
  for (const auto& m : messages) {
    if (m.has_output_begin()) name = m.output_begin().name();
    if (m.part_case() == v1::CompleteTaskRequest::kChunk) out[name] += m.chunk();
    if (m.has_output_end()) {
      out.try_emplace(name);
      EXPECT_EQ(m.output_end().sha256(), Sha256Hex(out[name])) << name;
    }
  }
  return out;
}

// Echoes the inputs (name order, concatenated) as output "out".
absl::StatusOr<TaskResult> Echo(const v1::TaskAssignment&,
                                const std::map<std::string, std::string>& inputs,
                                const TaskRunOptions&) {
  TaskResult r;
  for (const auto& [name, bytes] : inputs) r.outputs["out"] += bytes;
  r.outputs.try_emplace("out");
  r.metrics["proxy_loss"] = 0.5;
  return r;
}

// A runner that says it started, then runs until cancelled() is true.
struct BlockingRunner {
  std::mutex mu;
  std::condition_variable cv;
  bool started = false;

  TaskRunnerFn Fn() {
    return [this](const v1::TaskAssignment&, const std::map<std::string, std::string>&,
                  const TaskRunOptions& o) -> absl::StatusOr<TaskResult> {
      {
        std::lock_guard<std::mutex> lock(mu);
        started = true;
      }
      cv.notify_all();
      // Like a pipeline polling between stages.
      const auto deadline = std::chrono::steady_clock::now() + kWait;
      while (!o.cancelled()) {
        if (std::chrono::steady_clock::now() > deadline) {
          return absl::InternalError("never cancelled");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      return absl::CancelledError("cancelled");
    };
  }
  bool WaitStarted() {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, kWait, [&] { return started; });
  }
};

WorkerLoopOptions Options() {
  WorkerLoopOptions o;
  o.worker_id = "test-worker/cpu";
  o.device = "cpu";
  o.lease_wait = absl::ZeroDuration();
  o.min_backoff = absl::Milliseconds(1);
  o.max_backoff = absl::Milliseconds(4);
  o.runner = Echo;
  return o;
}

TEST(WorkerLoopTest, RetriesUnavailableAndResumesAFetchByOffset) {
  FakeTransport t;
  const std::string bytes = "0123456789abcdefghijklmnopqrstuvwxyzABCD";
  t.artifacts["a1"] = bytes;
  t.lease_unavailable = 3;
  t.fetch_break_at = 12;
  t.tasks.push_back(Task("t1", {Input("hessian", "a1", bytes)}));
  WorkerLoopOptions o = Options();
  o.max_tasks = 1;
  WorkerLoop loop(&t, o);
  ASSERT_THAT(loop.Run(), IsOk());

  EXPECT_EQ(t.lease_calls, 4);
  ASSERT_EQ(t.fetches.size(), 2u);
  EXPECT_EQ(t.fetches[0].offset(), 0);
  EXPECT_EQ(t.fetches[1].offset(), 12);
  EXPECT_EQ(t.fetches[1].job_id(), "job-1");
  ASSERT_EQ(t.completes.size(), 1u);
  EXPECT_EQ(t.completes[0].front().header().worker_id(), "test-worker/cpu");
  EXPECT_EQ(t.completes[0].front().header().lease_id(), "lease-t1");
  EXPECT_EQ(Decode(t.completes[0]).at("out"), bytes);
  EXPECT_EQ(t.completes[0].back().summary().metrics().at("proxy_loss"), 0.5);
  EXPECT_TRUE(t.fails.empty());
  EXPECT_EQ(loop.stats().completed, 1);
  // Capabilities come from the device.
  const v1::WorkerCapabilities& caps = t.lease_requests.back().capabilities();
  EXPECT_EQ(caps.device_kind(), v1::DEVICE_KIND_CPU);
  EXPECT_EQ(caps.device_count(), 1);
  EXPECT_GT(caps.host_memory_bytes(), 0);
  EXPECT_FALSE(caps.version().empty());
}

TEST(WorkerLoopTest, AChecksumMismatchIsFetchedAgainThenFailsDataLoss) {
  FakeTransport t;
  const std::string bytes(100, 'h');
  t.artifacts["a1"] = bytes;
  t.corrupt_fetches = 1;
  t.tasks.push_back(Task("t1", {Input("hessian", "a1", bytes)}));
  WorkerLoopOptions o = Options();
  o.max_tasks = 1;
  {
    WorkerLoop loop(&t, o);
    ASSERT_THAT(loop.Run(), IsOk());
    EXPECT_EQ(loop.stats().completed, 1);
  }
  ASSERT_EQ(t.fetches.size(), 2u);
  EXPECT_EQ(t.fetches[1].offset(), 0);
  EXPECT_EQ(Decode(t.completes.at(0)).at("out"), bytes);

  FakeTransport bad;
  bad.artifacts["a1"] = bytes;
  bad.corrupt_fetches = 100;
  bad.tasks.push_back(Task("t2", {Input("hessian", "a1", bytes)}));
  WorkerLoop loop(&bad, o);
  ASSERT_THAT(loop.Run(), IsOk());
  EXPECT_EQ(bad.fetches.size(), static_cast<size_t>(1 + kMaxChecksumRetries));
  ASSERT_EQ(bad.fails.size(), 1u);
  EXPECT_EQ(bad.fails[0].status().code(), static_cast<int>(absl::StatusCode::kDataLoss));
  EXPECT_TRUE(bad.completes.empty());
  EXPECT_EQ(loop.stats().failed, 1);
}

TEST(WorkerLoopTest, DataLossIsResentThenSucceeds) {
  FakeTransport t;
  t.complete_data_loss = 1;
  t.complete_unavailable = 1;
  t.tasks.push_back(Task("t1"));
  WorkerLoopOptions o = Options();
  o.max_tasks = 1;
  o.upload_chunk_bytes = 3;
  o.runner = [](const v1::TaskAssignment&, const std::map<std::string, std::string>&,
                const TaskRunOptions&) -> absl::StatusOr<TaskResult> {
    TaskResult r;
    r.outputs["config.json"] = "{\"a\": 1}";
    r.outputs["model.safetensors"] = std::string(10, 'w');
    return r;
  };
  WorkerLoop loop(&t, o);
  ASSERT_THAT(loop.Run(), IsOk());
  ASSERT_EQ(t.completes.size(), 3u);  // DATA_LOSS, UNAVAILABLE, OK
  EXPECT_EQ(t.completes[0].size(), t.completes[2].size());
  for (size_t i = 0; i < t.completes[0].size(); ++i) {
    EXPECT_EQ(t.completes[0][i].SerializeAsString(), t.completes[2][i].SerializeAsString());
  }
  const auto outputs = Decode(t.completes[2]);
  EXPECT_EQ(outputs.at("config.json"), "{\"a\": 1}");
  EXPECT_EQ(outputs.at("model.safetensors"), std::string(10, 'w'));
  EXPECT_TRUE(t.fails.empty());
  EXPECT_EQ(loop.stats().completed, 1);
}

TEST(WorkerLoopTest, DataLossTooOftenIsReported) {
  FakeTransport t;
  t.complete_data_loss = 100;
  t.tasks.push_back(Task("t1"));
  WorkerLoopOptions o = Options();
  o.max_tasks = 1;
  o.max_complete_attempts = 3;
  WorkerLoop loop(&t, o);
  ASSERT_THAT(loop.Run(), IsOk());
  EXPECT_EQ(t.completes.size(), 3u);
  ASSERT_EQ(t.fails.size(), 1u);
  EXPECT_EQ(t.fails[0].status().code(), static_cast<int>(absl::StatusCode::kDataLoss));
}

TEST(WorkerLoopTest, ACancelledJobStopsTheTaskAndGivesItBack) {
  FakeTransport t;
  t.heartbeat_cancelled = true;
  t.tasks.push_back(Task("t1"));
  BlockingRunner runner;
  WorkerLoopOptions o = Options();
  o.max_tasks = 1;
  o.runner = runner.Fn();
  WorkerLoop loop(&t, o);
  ASSERT_THAT(loop.Run(), IsOk());
  ASSERT_EQ(t.fails.size(), 1u);
  EXPECT_EQ(t.fails[0].status().code(), static_cast<int>(absl::StatusCode::kCancelled));
  EXPECT_EQ(t.fails[0].lease_id(), "lease-t1");
  EXPECT_TRUE(t.completes.empty());
  ASSERT_FALSE(t.heartbeats.empty());
  EXPECT_EQ(t.heartbeats[0].task_id(), "t1");
  EXPECT_EQ(t.heartbeats[0].lease_id(), "lease-t1");
  EXPECT_EQ(loop.stats().given_back, 1);
  EXPECT_EQ(loop.stats().failed, 0);
}

TEST(WorkerLoopTest, ALostLeaseDropsTheTaskWithoutAReport) {
  FakeTransport t;
  t.heartbeat_code = absl::StatusCode::kAborted;
  t.tasks.push_back(Task("t1"));
  BlockingRunner runner;
  WorkerLoopOptions o = Options();
  o.max_tasks = 1;
  o.runner = runner.Fn();
  WorkerLoop loop(&t, o);
  ASSERT_THAT(loop.Run(), IsOk());
  EXPECT_TRUE(t.fails.empty());
  EXPECT_TRUE(t.completes.empty());
  EXPECT_EQ(loop.stats().lost_leases, 1);
}

TEST(WorkerLoopTest, StopWhileRunningGivesTheTaskBack) {
  FakeTransport t;
  t.tasks.push_back(Task("t1"));
  BlockingRunner runner;
  WorkerLoopOptions o = Options();
  o.runner = runner.Fn();
  WorkerLoop loop(&t, o);
  absl::Status result = absl::UnknownError("not run");
  std::thread th([&] { result = loop.Run(); });
  ASSERT_TRUE(runner.WaitStarted());
  loop.Stop();
  th.join();
  EXPECT_THAT(result, IsOk());
  ASSERT_EQ(t.fails.size(), 1u);
  EXPECT_EQ(t.fails[0].status().code(), static_cast<int>(absl::StatusCode::kCancelled));
  EXPECT_TRUE(t.completes.empty());
  EXPECT_EQ(loop.stats().given_back, 1);
}

TEST(WorkerLoopTest, StopWithFinishRunningCompletesTheTask) {
  FakeTransport t;
  t.tasks.push_back(Task("t1"));
  t.tasks.push_back(Task("t2"));
  std::mutex mu;
  std::condition_variable cv;
  bool started = false, release = false;
  WorkerLoopOptions o = Options();
  o.runner = [&](const v1::TaskAssignment& a, const std::map<std::string, std::string>& in,
                 const TaskRunOptions& ro) {
    std::unique_lock<std::mutex> lock(mu);
    started = true;
    cv.notify_all();
    cv.wait_for(lock, kWait, [&] { return release; });
    return Echo(a, in, ro);
  };
  WorkerLoop loop(&t, o);
  std::thread th([&] { EXPECT_THAT(loop.Run(), IsOk()); });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kWait, [&] { return started; }));
  }
  loop.Stop(/*finish_running=*/true);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  th.join();
  EXPECT_EQ(t.completes.size(), 1u);  // t1 finished; t2 never leased
  EXPECT_TRUE(t.fails.empty());
  EXPECT_EQ(t.tasks.size(), 1u);
  EXPECT_EQ(loop.stats().completed, 1);
}

TEST(WorkerLoopTest, RunnerErrorsAreReportedWithTheirCode) {
  for (absl::StatusCode code : {absl::StatusCode::kInvalidArgument,
                                absl::StatusCode::kResourceExhausted,
                                absl::StatusCode::kFailedPrecondition}) {
    FakeTransport t;
    t.tasks.push_back(Task("t1"));
    WorkerLoopOptions o = Options();
    o.max_tasks = 1;
    o.runner = [code](const v1::TaskAssignment&, const std::map<std::string, std::string>&,
                      const TaskRunOptions&) -> absl::StatusOr<TaskResult> {
      return absl::Status(code, "linear model.layers.0.mlp.up_proj: bad options");
    };
    WorkerLoop loop(&t, o);
    ASSERT_THAT(loop.Run(), IsOk());
    ASSERT_EQ(t.fails.size(), 1u);
    EXPECT_EQ(t.fails[0].status().code(), static_cast<int>(code));
    EXPECT_THAT(t.fails[0].status().message(), HasSubstr("bad options"));
    EXPECT_EQ(t.fails[0].worker_id(), "test-worker/cpu");
    EXPECT_EQ(loop.stats().failed, 1);
  }
}

TEST(WorkerLoopTest, ARefusedTokenEndsRun) {
  FakeTransport t;
  t.lease_error = absl::PermissionDeniedError("client token on the worker service");
  WorkerLoop loop(&t, Options());
  EXPECT_THAT(loop.Run(), StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(WorkerLoopTest, StopEndsRunWhileTheCoordinatorIsAway) {
  FakeTransport t;
  t.lease_unavailable = 1 << 30;
  WorkerLoop loop(&t, Options());
  absl::Status result = absl::UnknownError("not run");
  std::thread th([&] { result = loop.Run(); });
  ASSERT_TRUE(t.WaitUntil([&] { return t.lease_calls >= 5; }));
  loop.Stop();
  th.join();
  EXPECT_THAT(result, IsOk());
}

TEST(WorkerLoopTest, ShouldExitEndsRunBetweenLeases) {
  FakeTransport t;
  std::atomic<int> polls{0};
  WorkerLoopOptions o = Options();
  o.should_exit = [&] { return ++polls > 3; };
  WorkerLoop loop(&t, o);
  EXPECT_THAT(loop.Run(), IsOk());
  EXPECT_EQ(t.lease_calls, 3);
}

}  // namespace
}  // namespace vptq::worker
