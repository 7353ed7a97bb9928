// The worker loop (proto/vptq/v1/coordinator.proto, "The worker loop"):
// lease a task, heartbeat it from a second thread, fetch its inputs (verify
// SHA-256, resume by offset), run it with the task runner on one device,
// upload the outputs (CompleteTask, resent on DATA_LOSS) or report the
// failure with the code that says what should happen (OOM ->
// RESOURCE_EXHAUSTED). A cancelled job stops the task (FailTask CANCELLED);
// a lost lease (ABORTED) stops it without a report. UNAVAILABLE from the
// coordinator is retried with capped exponential backoff and jitter.
//
// One WorkerLoop drives one device; a worker process runs one per device
// (`--devices cpu` or `cuda:0,cuda:1`), each with its own worker_id.
//
// Stop(): no new leases; a running task is given back (FailTask CANCELLED,
// queued again without counting an attempt) unless `finish_running` is set,
// then Run() returns.
//
//   WorkerLoopOptions options{.worker_id = "host-1/cpu", .device = "cpu"};
//   WorkerLoop loop(transport.get(), options);
//   std::thread t([&] { loop.Run(); });
//   ...
//   loop.Stop();
//   t.join();
//
// Details of the contract:
//  - The task runs on a compute thread of its own while the loop thread
//    waits for it, for the job's cancellation (Heartbeat cancelled=true),
//    for a lost lease or for Stop(). So a cancellation, a lost lease or a
//    Stop() is acted on (reported) at once even though a pipeline stage
//    cannot be interrupted: the runner sees `cancelled()` turn true and its
//    result is dropped. Before the next lease the loop waits for that
//    compute thread (one task per device at a time); after Stop() it does
//    not — Run() returns, computing() stays true until the thread ends, and
//    the destructor joins it.
//  - Heartbeats every TaskAssignment.heartbeat_interval_ms (or
//    default_heartbeat_interval when 0) from lease until CompleteTask /
//    FailTask returned, with the runner's progress; UNAVAILABLE heartbeats
//    are retried sooner with backoff; ABORTED or NOT_FOUND = lease lost.
//  - Inputs: every TaskAssignment.inputs entry is fetched whole and checked
//    against ArtifactRef.size_bytes and sha256; a broken stream
//    (UNAVAILABLE, DEADLINE_EXCEEDED) resumes at the received offset; a
//    checksum mismatch refetches from 0 (kMaxChecksumRetries times, then
//    FailTask DATA_LOSS).
//  - CompleteTask is resent on DATA_LOSS up to max_complete_attempts sends
//    in all (then FailTask DATA_LOSS), retried with backoff on UNAVAILABLE
//    while the lease stands; ABORTED = lease lost. A result the coordinator
//    rejects otherwise (e.g. INVALID_ARGUMENT, a required output missing)
//    is reported as FailTask INTERNAL, so it is retried a bounded number of
//    times.
//  - FailTask carries the runner's code (CANCELLED for a task given back).
//  - LeaseTask errors: UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, INTERNAL,
//    UNKNOWN and RESOURCE_EXHAUSTED are retried with backoff forever (a
//    coordinator restart must not kill the worker); any other code
//    (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT, ...) ends Run()
//    with that error.
//  - A LeaseTask long-poll in flight is not interrupted: Stop() takes
//    effect within `lease_wait`.
//  - Determinism: every task runs with `torch_threads` threads (see
//    task_runner.h for why results depend on it).
// Thread-safety: Run() on one thread; Stop(), stats() and computing() from
// any.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "vptq/v1/common.pb.h"
#include "worker/task_runner.h"
#include "worker/worker_transport.h"

namespace vptq::worker {

// Signature of RunTask (task_runner.h); tests substitute their own.
using TaskRunnerFn = std::function<absl::StatusOr<TaskResult>(
    const v1::TaskAssignment&, const std::map<std::string, std::string>&,
    const TaskRunOptions&)>;

inline constexpr int kMaxChecksumRetries = 2;

struct WorkerLoopOptions {
  std::string worker_id;                 // unique in the cluster, stable for the process
  std::string device = "cpu";            // torch device string
  v1::WorkerCapabilities capabilities;   // filled from `device` when empty
  int torch_threads = 0;                 // 0: leave as is
  absl::Duration lease_wait = absl::Seconds(5);        // LeaseTask long-poll
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(10);
  // Return from Run() once this many tasks were reported (tests); 0 = never.
  int64_t max_tasks = 0;
  // Return from Run() when true (polled between leases), e.g. "my job ended".
  std::function<bool()> should_exit;
  // The task runner; empty = RunTask.
  TaskRunnerFn runner;
  // Sends of one result in all when the coordinator answers DATA_LOSS.
  int max_complete_attempts = 4;
  // Heartbeat period when the assignment gives none.
  absl::Duration default_heartbeat_interval = absl::Seconds(10);
  // Bytes per CompleteTask chunk message.
  int64_t upload_chunk_bytes = int64_t{1} << 20;
};

struct WorkerLoopStats {
  int64_t completed = 0;
  int64_t failed = 0;      // reported with FailTask (any code but CANCELLED)
  int64_t given_back = 0;  // FailTask CANCELLED (stop or job cancelled)
  int64_t lost_leases = 0;
};

class WorkerLoop {
 public:
  WorkerLoop(WorkerTransport* transport, WorkerLoopOptions options);
  ~WorkerLoop();  // joins a compute thread still running
  WorkerLoop(const WorkerLoop&) = delete;
  WorkerLoop& operator=(const WorkerLoop&) = delete;

  // Runs until Stop(), should_exit or max_tasks. OK, or the error that made
  // the loop give up (never for UNAVAILABLE, which is retried).
  absl::Status Run();
  void Stop(bool finish_running = false);
  WorkerLoopStats stats() const;
  // True while a task's compute thread runs (after Stop(): one whose result
  // was dropped).
  bool computing() const;

 private:
  struct Attempt;
  enum class Outcome { kCompleted, kFailed, kGivenBack, kLost };

  Outcome HandleTask(const v1::TaskAssignment& task);
  absl::StatusOr<std::map<std::string, std::string>> FetchInputs(const v1::TaskAssignment& task,
                                                                 Attempt& attempt);
  absl::StatusOr<std::string> FetchOne(const v1::TaskAssignment& task, const v1::TaskInput& input,
                                       Attempt& attempt);
  // Starts the compute thread and waits for it or for an interruption.
  // nullopt: interrupted (cancelled, lost or stopped) before it finished.
  std::optional<absl::StatusOr<TaskResult>> Compute(
      const v1::TaskAssignment& task, std::map<std::string, std::string> inputs,
      const std::shared_ptr<Attempt>& attempt);
  Outcome Upload(const v1::TaskAssignment& task, TaskResult result, Attempt& attempt);
  Outcome ReportFailure(const v1::TaskAssignment& task, const absl::Status& status,
                        Attempt& attempt);
  void HeartbeatLoop(const v1::TaskAssignment& task, std::shared_ptr<Attempt> attempt);
  // Interruptible sleep; false when Stop() ended it.
  bool Sleep(absl::Duration d);
  // The task should be abandoned (job cancelled, lease lost, or stopped
  // without finish_running).
  bool Interrupted(const Attempt& attempt) const;
  bool Stopping() const { return stop_.load() && !finish_running_.load(); }
  void JoinCompute();

  WorkerTransport* transport_;
  WorkerLoopOptions options_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finish_running_{false};
  std::atomic<int64_t> completed_{0}, failed_{0}, given_back_{0}, lost_leases_{0};

  mutable std::mutex mu_;       // guards the fields below and Attempt::done/result
  std::condition_variable cv_;  // Stop(), attempt flags, compute done
  std::thread compute_;
  bool compute_running_ = false;
};

}  // namespace vptq::worker
