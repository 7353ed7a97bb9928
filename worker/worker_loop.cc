#include "worker/worker_loop.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/sha256.h"
#include "common/status.h"
#include "coordinator/coordinator.h"
#include "worker/device_caps.h"

namespace vptq::worker {
namespace {

// Consecutive connection failures of one input fetch without a new byte
// before the task is reported UNAVAILABLE (about five minutes at the cap).
constexpr int kMaxFetchStalls = 30;
// FailTask tries while the coordinator is away (fewer when stopping).
constexpr int kMaxFailTries = 30;
constexpr int kMaxFailTriesStopping = 3;
constexpr size_t kMaxStatusMessageBytes = 4096;

// The connection to the coordinator broke; the call may be repeated.
bool IsConnectionError(absl::StatusCode c) {
  return c == absl::StatusCode::kUnavailable || c == absl::StatusCode::kDeadlineExceeded;
}

// LeaseTask errors worth waiting out.
bool IsTransientLeaseError(absl::StatusCode c) {
  switch (c) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
}

// Capped exponential backoff with jitter: min·2^k, capped at max, times a
// uniform factor in [0.5, 1].
class Backoff {
 public:
  Backoff(absl::Duration min, absl::Duration max)
      : min_(std::max(min, absl::Milliseconds(1))),
        max_(std::max(max, min_)),
        rng_(std::random_device{}()) {}
  absl::Duration Next() {
    absl::Duration d = min_;
    for (int i = 0; i < attempt_ && d < max_; ++i) d *= 2;
    d = std::min(d, max_);
    ++attempt_;
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    return d * jitter(rng_);
  }
  void Reset() { attempt_ = 0; }

 private:
  absl::Duration min_, max_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

nlohmann::json TaskFields(const std::string& worker, const v1::TaskAssignment& task) {
  return {{"worker", worker},
          {"job", task.job_id()},
          {"task", task.task_id()},
          {"name", task.name()},
          {"stage", v1::TaskKind_Name(task.kind())},
          {"attempt", task.attempt()}};
}

}  // namespace

struct WorkerLoop::Attempt {
  std::atomic<bool> job_cancelled{false};
  std::atomic<bool> lease_lost{false};
  std::atomic<bool> reported{false};  // CompleteTask / FailTask returned: stop heartbeats
  std::atomic<double> fraction{0};
  std::mutex stage_mu;
  std::string stage = "fetch";
  // Guarded by WorkerLoop::mu_.
  bool done = false;
  std::optional<absl::StatusOr<TaskResult>> result;
  // Where the time went, for the "task completed" line (HandleTask's thread).
  absl::Duration fetch_time, compute_time;
  int64_t input_bytes = 0;

  void SetStage(double f, const std::string& s) {
    fraction.store(f);
    std::lock_guard<std::mutex> lock(stage_mu);
    stage = s;
  }
  std::string Stage() {
    std::lock_guard<std::mutex> lock(stage_mu);
    return stage;
  }
};

WorkerLoop::WorkerLoop(WorkerTransport* transport, WorkerLoopOptions options)
    : transport_(transport), options_(std::move(options)) {}

WorkerLoop::~WorkerLoop() { JoinCompute(); }

void WorkerLoop::Stop(bool finish_running) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    finish_running_.store(finish_running);
    stop_.store(true);
  }
  cv_.notify_all();
}

WorkerLoopStats WorkerLoop::stats() const {
  WorkerLoopStats s;
  s.completed = completed_.load();
  s.failed = failed_.load();
  s.given_back = given_back_.load();
  s.lost_leases = lost_leases_.load();
  return s;
}

bool WorkerLoop::computing() const {
  std::lock_guard<std::mutex> lock(mu_);
  return compute_running_;
}

bool WorkerLoop::Sleep(absl::Duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, absl::ToChronoMilliseconds(std::max(d, absl::ZeroDuration())),
                       [&] { return stop_.load(); });
}

bool WorkerLoop::Interrupted(const Attempt& attempt) const {
  return attempt.job_cancelled.load() || attempt.lease_lost.load() || Stopping();
}

void WorkerLoop::JoinCompute() {
  if (compute_.joinable()) compute_.join();
}

absl::Status WorkerLoop::Run() {
  if (options_.worker_id.empty()) return absl::InvalidArgumentError("worker_id is required");
  if (options_.capabilities.device_kind() == v1::DEVICE_KIND_UNSPECIFIED) {
    VPTQ_ASSIGN_OR_RETURN(v1::WorkerCapabilities caps, DeviceCapabilities(options_.device));
    *caps.mutable_task_kinds() = options_.capabilities.task_kinds();
    options_.capabilities = std::move(caps);
  }
  if (options_.capabilities.version().empty()) options_.capabilities.set_version(WorkerVersion());
  if (!options_.runner) options_.runner = RunTask;

  log::Info("worker loop started",
            {{"worker", options_.worker_id},
             {"device", options_.device},
             {"device_kind", v1::DeviceKind_Name(options_.capabilities.device_kind())},
             {"torch_threads", options_.torch_threads}});
  Backoff backoff(options_.min_backoff, options_.max_backoff);
  int64_t handled = 0;
  while (!stop_.load()) {
    if (options_.should_exit && options_.should_exit()) break;
    if (options_.max_tasks > 0 && handled >= options_.max_tasks) break;
    v1::LeaseTaskRequest request;
    request.set_worker_id(options_.worker_id);
    *request.mutable_capabilities() = options_.capabilities;
    request.set_max_wait_ms(absl::ToInt64Milliseconds(options_.lease_wait));
    absl::StatusOr<v1::LeaseTaskResponse> lease = transport_->LeaseTask(request);
    if (!lease.ok()) {
      if (!IsTransientLeaseError(lease.status().code())) {
        log::Error("worker loop gives up",
                   {{"worker", options_.worker_id}, {"error", lease.status().ToString()}});
        return lease.status();
      }
      const absl::Duration wait = backoff.Next();
      log::Warn("lease failed; retrying", {{"worker", options_.worker_id},
                                           {"error", lease.status().ToString()},
                                           {"retry_in_ms", absl::ToInt64Milliseconds(wait)}});
      Sleep(wait);
      continue;
    }
    backoff.Reset();
    if (!lease->has_task()) {
      if (lease->retry_after_ms() > 0) {
        Sleep(std::min(absl::Milliseconds(lease->retry_after_ms()), options_.max_backoff));
      }
      continue;
    }
    const Outcome outcome = HandleTask(lease->task());
    ++handled;
    switch (outcome) {
      case Outcome::kCompleted: ++completed_; break;
      case Outcome::kFailed: ++failed_; break;
      case Outcome::kGivenBack: ++given_back_; break;
      case Outcome::kLost: ++lost_leases_; break;
    }
  }
  const WorkerLoopStats s = stats();
  log::Info("worker loop stopped", {{"worker", options_.worker_id},
                                    {"completed", s.completed},
                                    {"failed", s.failed},
                                    {"given_back", s.given_back},
                                    {"lost_leases", s.lost_leases}});
  return absl::OkStatus();
}

WorkerLoop::Outcome WorkerLoop::HandleTask(const v1::TaskAssignment& task) {
  auto attempt = std::make_shared<Attempt>();
  const absl::Time start = absl::Now();
  log::Info("task leased", TaskFields(options_.worker_id, task));
  std::thread heartbeat([this, task, attempt] { HeartbeatLoop(task, attempt); });

  Outcome outcome;
  const auto give_back_or_lose = [&](const char* why) {
    if (attempt->lease_lost.load()) return Outcome::kLost;
    return ReportFailure(task, absl::CancelledError(why), *attempt);
  };
  const auto interruption = [&] {
    if (attempt->job_cancelled.load()) return "the job was cancelled";
    return "the worker is stopping";
  };
  absl::StatusOr<std::map<std::string, std::string>> inputs = FetchInputs(task, *attempt);
  attempt->fetch_time = absl::Now() - start;
  if (inputs.ok()) {
    for (const auto& [name, bytes] : *inputs) attempt->input_bytes += static_cast<int64_t>(bytes.size());
  }
  if (!inputs.ok()) {
    outcome = Interrupted(*attempt) ? give_back_or_lose(interruption())
                                    : ReportFailure(task, inputs.status(), *attempt);
  } else {
    const absl::Time compute_start = absl::Now();
    std::optional<absl::StatusOr<TaskResult>> result =
        Compute(task, *std::move(inputs), attempt);
    attempt->compute_time = absl::Now() - compute_start;
    if (!result.has_value()) {
      outcome = give_back_or_lose(interruption());
    } else if (attempt->lease_lost.load()) {
      outcome = Outcome::kLost;
    } else if (!result->ok()) {
      outcome = ReportFailure(task, result->status(), *attempt);
    } else {
      outcome = Upload(task, **std::move(result), *attempt);
    }
  }
  if (outcome == Outcome::kLost) {
    log::Warn("lease lost; task dropped", TaskFields(options_.worker_id, task));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    attempt->reported.store(true);
  }
  cv_.notify_all();
  heartbeat.join();
  // One task per device: a dropped computation must end before the next
  // lease. Not after Stop(): Run() returns and the destructor joins it.
  if (!stop_.load()) JoinCompute();
  nlohmann::json fields = TaskFields(options_.worker_id, task);
  fields["seconds"] = absl::ToDoubleSeconds(absl::Now() - start);
  log::Debug("task handled", fields);
  return outcome;
}

void WorkerLoop::HeartbeatLoop(const v1::TaskAssignment& task, std::shared_ptr<Attempt> attempt) {
  const absl::Duration interval = task.heartbeat_interval_ms() > 0
                                      ? absl::Milliseconds(task.heartbeat_interval_ms())
                                      : options_.default_heartbeat_interval;
  Backoff backoff(options_.min_backoff, interval);
  absl::Duration wait = interval;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, absl::ToChronoMilliseconds(wait),
                       [&] { return attempt->reported.load() || attempt->lease_lost.load(); })) {
        return;
      }
    }
    v1::HeartbeatRequest request;
    request.set_worker_id(options_.worker_id);
    request.set_task_id(task.task_id());
    request.set_lease_id(task.lease_id());
    request.set_fraction_done(attempt->fraction.load());
    request.set_stage(attempt->Stage());
    absl::StatusOr<v1::HeartbeatResponse> r = transport_->Heartbeat(request);
    if (r.ok()) {
      backoff.Reset();
      wait = interval;
      if (r->cancelled() && !attempt->job_cancelled.load()) {
        log::Info("job cancelled; stopping the task", TaskFields(options_.worker_id, task));
        {
          std::lock_guard<std::mutex> lock(mu_);
          attempt->job_cancelled.store(true);
        }
        cv_.notify_all();
      }
      continue;
    }
    const absl::StatusCode code = r.status().code();
    if (code == absl::StatusCode::kAborted || code == absl::StatusCode::kNotFound) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        attempt->lease_lost.store(true);
      }
      cv_.notify_all();
      return;
    }
    wait = std::min(backoff.Next(), interval);
    nlohmann::json fields = TaskFields(options_.worker_id, task);
    fields["error"] = r.status().ToString();
    log::Warn("heartbeat failed; retrying", fields);
  }
}

absl::StatusOr<std::map<std::string, std::string>> WorkerLoop::FetchInputs(
    const v1::TaskAssignment& task, Attempt& attempt) {
  std::map<std::string, std::string> inputs;
  const int n = task.inputs_size();
  for (int i = 0; i < n; ++i) {
    attempt.SetStage(0, absl::StrCat("fetch ", i + 1, "/", n));
    const v1::TaskInput& input = task.inputs(i);
    VPTQ_ASSIGN_OR_RETURN(std::string bytes, FetchOne(task, input, attempt));
    inputs[input.name()] = std::move(bytes);
  }
  return inputs;
}

absl::StatusOr<std::string> WorkerLoop::FetchOne(const v1::TaskAssignment& task,
                                                 const v1::TaskInput& input, Attempt& attempt) {
  const v1::ArtifactRef& ref = input.artifact();
  const auto describe = [&] {
    return absl::StrCat("input '", input.name(), "' (artifact ", ref.artifact_id(), ")");
  };
  std::string data;
  if (ref.size_bytes() > 0) data.reserve(static_cast<size_t>(ref.size_bytes()));
  Backoff backoff(options_.min_backoff, options_.max_backoff);
  int bad_downloads = 0;
  int stalls = 0;
  while (true) {
    if (Interrupted(attempt)) return absl::CancelledError(absl::StrCat("fetching ", describe()));
    v1::DownloadArtifactRequest request;
    request.set_job_id(task.job_id());
    request.set_artifact_id(ref.artifact_id());
    request.set_offset(static_cast<int64_t>(data.size()));
    const size_t before = data.size();
    bool broken = false;  // a chunk out of place or past the end
    absl::Status s = transport_->FetchArtifact(request, [&](const v1::ArtifactStreamResponse& m) {
      if (Interrupted(attempt)) return false;
      if (!m.has_chunk()) return true;
      if (m.chunk().offset() != static_cast<int64_t>(data.size())) {
        broken = true;
        return false;
      }
      data.append(m.chunk().data());
      if (static_cast<int64_t>(data.size()) > ref.size_bytes()) {
        broken = true;
        return false;
      }
      return true;
    });
    if (Interrupted(attempt)) return absl::CancelledError(absl::StrCat("fetching ", describe()));
    if (s.ok() || broken) {
      if (!broken && static_cast<int64_t>(data.size()) == ref.size_bytes() &&
          Sha256Hex(data) == ref.sha256()) {
        return data;
      }
      if (++bad_downloads > kMaxChecksumRetries) {
        return absl::DataLossError(absl::StrCat(
            describe(), " does not match its size ", ref.size_bytes(), " and sha256 ",
            ref.sha256(), " after ", bad_downloads, " downloads"));
      }
      nlohmann::json fields = TaskFields(options_.worker_id, task);
      fields["input"] = input.name();
      fields["bytes"] = data.size();
      log::Warn("input failed its checksum; fetching it again", fields);
      data.clear();
      continue;
    }
    if (!IsConnectionError(s.code())) return Annotate(s, "fetching ", describe());
    if (data.size() > before) {
      stalls = 0;
      backoff.Reset();
    }
    if (++stalls > kMaxFetchStalls) {
      return Annotate(s, "fetching ", describe(), " (", stalls, " tries without progress)");
    }
    const absl::Duration wait = backoff.Next();
    nlohmann::json fields = TaskFields(options_.worker_id, task);
    fields["input"] = input.name();
    fields["offset"] = data.size();
    fields["error"] = s.ToString();
    log::Warn("fetch interrupted; resuming", fields);
    Sleep(wait);
  }
}

std::optional<absl::StatusOr<TaskResult>> WorkerLoop::Compute(
    const v1::TaskAssignment& task, std::map<std::string, std::string> inputs,
    const std::shared_ptr<Attempt>& attempt) {
  JoinCompute();
  TaskRunOptions run;
  run.device = options_.device;
  run.torch_threads = options_.torch_threads;
  Attempt* a = attempt.get();
  run.cancelled = [this, a] { return Interrupted(*a); };
  run.progress = [a](double fraction, const std::string& stage) { a->SetStage(fraction, stage); };
  attempt->SetStage(0, "run");
  {
    std::lock_guard<std::mutex> lock(mu_);
    compute_running_ = true;
  }
  compute_ = std::thread([this, task, inputs = std::move(inputs), attempt, run,
                          runner = options_.runner]() mutable {
    absl::StatusOr<TaskResult> r = absl::InternalError("the task runner did not return");
    try {
      r = runner(task, inputs, run);
    } catch (const std::exception& e) {
      r = absl::InternalError(absl::StrCat("task runner: ", e.what()));
    }
    inputs.clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      attempt->result = std::move(r);
      attempt->done = true;
      compute_running_ = false;
    }
    cv_.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return attempt->done || Interrupted(*attempt); });
  if (!attempt->done) return std::nullopt;
  std::optional<absl::StatusOr<TaskResult>> result = std::move(attempt->result);
  lock.unlock();
  JoinCompute();
  return result;
}

WorkerLoop::Outcome WorkerLoop::Upload(const v1::TaskAssignment& task, TaskResult result,
                                       Attempt& attempt) {
  attempt.SetStage(1, "upload");
  const absl::Time upload_start = absl::Now();
  int64_t output_bytes = 0;
  std::vector<v1::CompleteTaskRequest> messages;
  {
    std::vector<std::pair<std::string, std::string>> outputs;
    for (auto& [name, bytes] : result.outputs) {
      output_bytes += static_cast<int64_t>(bytes.size());
      outputs.emplace_back(name, std::move(bytes));
    }
    result.outputs.clear();
    messages = coordinator::MakeCompleteTaskStream(options_.worker_id, task, outputs,
                                                   result.metrics, options_.upload_chunk_bytes);
  }
  Backoff backoff(options_.min_backoff, options_.max_backoff);
  int sends = 0;
  while (true) {
    if (attempt.lease_lost.load()) return Outcome::kLost;
    if (attempt.job_cancelled.load()) {
      return ReportFailure(task, absl::CancelledError("the job was cancelled"), attempt);
    }
    ++sends;
    absl::StatusOr<v1::CompleteTaskResponse> r = transport_->CompleteTask(messages);
    if (r.ok()) {
      nlohmann::json fields = TaskFields(options_.worker_id, task);
      fields["outputs"] = r->outputs_size();
      fields["sends"] = sends;
      fields["input_bytes"] = attempt.input_bytes;
      fields["output_bytes"] = output_bytes;
      fields["fetch_seconds"] = absl::ToDoubleSeconds(attempt.fetch_time);
      fields["compute_seconds"] = absl::ToDoubleSeconds(attempt.compute_time);
      fields["upload_seconds"] = absl::ToDoubleSeconds(absl::Now() - upload_start);
      log::Info("task completed", fields);
      return Outcome::kCompleted;
    }
    const absl::StatusCode code = r.status().code();
    nlohmann::json fields = TaskFields(options_.worker_id, task);
    fields["error"] = r.status().ToString();
    fields["sends"] = sends;
    if (code == absl::StatusCode::kDataLoss) {
      if (sends >= options_.max_complete_attempts) {
        return ReportFailure(task,
                             absl::DataLossError(absl::StrCat(
                                 "the result upload was corrupted ", sends,
                                 " times; last: ", r.status().message())),
                             attempt);
      }
      log::Warn("result upload corrupted; sending it again", fields);
      continue;
    }
    if (code == absl::StatusCode::kAborted) {
      attempt.lease_lost.store(true);
      return Outcome::kLost;
    }
    if (IsConnectionError(code)) {
      if (Stopping()) {
        return ReportFailure(task, absl::CancelledError("the worker is stopping"), attempt);
      }
      log::Warn("result upload failed; retrying", fields);
      Sleep(backoff.Next());
      continue;
    }
    return ReportFailure(
        task,
        absl::InternalError(absl::StrCat("the coordinator rejected the result: ",
                                         r.status().ToString())),
        attempt);
  }
}

WorkerLoop::Outcome WorkerLoop::ReportFailure(const v1::TaskAssignment& task,
                                              const absl::Status& status, Attempt& attempt) {
  const absl::Status s =
      status.ok() ? absl::InternalError("the task failed without an error") : status;
  v1::FailTaskRequest request;
  request.set_worker_id(options_.worker_id);
  request.set_task_id(task.task_id());
  request.set_lease_id(task.lease_id());
  request.mutable_status()->set_code(static_cast<int32_t>(s.code()));
  request.mutable_status()->set_message(
      std::string(s.message().substr(0, kMaxStatusMessageBytes)));
  const bool give_back = s.code() == absl::StatusCode::kCancelled;
  Backoff backoff(options_.min_backoff, options_.max_backoff);
  nlohmann::json fields = TaskFields(options_.worker_id, task);
  fields["error"] = s.ToString();
  for (int tries = 1;; ++tries) {
    absl::StatusOr<v1::FailTaskResponse> r = transport_->FailTask(request);
    if (r.ok()) {
      fields["will_retry"] = r->will_retry();
      if (give_back) {
        log::Info("task given back", fields);
      } else {
        log::Warn("task failed", fields);
      }
      return give_back ? Outcome::kGivenBack : Outcome::kFailed;
    }
    const absl::StatusCode code = r.status().code();
    if (code == absl::StatusCode::kAborted || code == absl::StatusCode::kNotFound) {
      attempt.lease_lost.store(true);
      return Outcome::kLost;
    }
    const int max_tries = stop_.load() ? kMaxFailTriesStopping : kMaxFailTries;
    if (!IsConnectionError(code) || tries >= max_tries || attempt.lease_lost.load()) {
      fields["report_error"] = r.status().ToString();
      log::Error("could not report the task's failure; its lease will expire", fields);
      return Outcome::kLost;
    }
    Sleep(backoff.Next());
  }
}

}  // namespace vptq::worker
