// Scheduler: the coordinator's state machine for jobs and tasks — the ready
// queue, leases, heartbeats, retries, cancellation and the job event log —
// written through to a JobStore.
//
// Contract:
//  - Every state change is one JobStore::Apply holding the changed job and
//    task records and the job's new events (sequence numbers 1, 2, ... with
//    no gaps), applied in order under the lock. Completions, failures,
//    submissions and cancellations are made durable (JobStore::Sync, outside
//    the lock, so concurrent callers share an fsync) before the call
//    returns; lease grants and heartbeats are not waited for (losing one to
//    a machine crash only means a lease is retried).
//  - If Apply fails, the in-memory state is rebuilt from the store (so it
//    never runs ahead of what is durable) and the call returns UNAVAILABLE.
//  - Ready tasks are handed out by job priority (higher first), then job age
//    (older first), then plan order (largest linears first). A task goes
//    only to a worker whose capabilities meet its requirements (device kind,
//    device and host memory when the worker reports them, task kinds), and
//    never to a worker it is excluded from after RESOURCE_EXHAUSTED there.
//  - A lease lasts `lease`; Heartbeat extends it; Tick() expires stale ones.
//    Failed attempts are classified by retry_policy.h; at most
//    `max_attempts` counted attempts, then the task and its job fail.
//  - CancelJob marks every unfinished task CANCELLED; a worker still running
//    one learns it from Heartbeat (cancelled = true).
//  - Artifacts a finished consumer no longer needs (Hessian partials, per-
//    linear results) are deleted in the consumer's completion batch unless
//    keep_intermediate_artifacts; job outputs (ASSEMBLE) are kept.
//  - A finished job's tasks are dropped from memory (read from the store on
//    demand), so memory grows with running work, not with history.
//  - Thread-safe: one mutex guards everything; store writes happen under it.
//    Observer callbacks run under it too.
//  - Time comes from the Clock, so tests drive expiry and backoff with a
//    FakeClock and explicit Tick() calls. Only LeaseWait/WaitForEvents
//    block, on real time.
//
//   Scheduler s(&store, &clock, SchedulerOptions{});
//   VPTQ_RETURN_IF_ERROR(s.Recover());
//   VPTQ_ASSIGN_OR_RETURN(v1::Job job, s.AddJob(record, std::move(tasks)));
//   VPTQ_ASSIGN_OR_RETURN(auto task, s.Lease("w1", caps));   // optional
//   ... s.Heartbeat / s.Complete / s.Fail ...
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/clock.h"
#include "coordinator/job_store.h"
#include "vptq/v1/coordinator.pb.h"
#include "vptq/v1/store.pb.h"

namespace vptq::coordinator {

struct SchedulerOptions {
  absl::Duration lease = absl::Seconds(30);
  int max_attempts = 5;
  absl::Duration backoff_initial = absl::Seconds(1);
  absl::Duration backoff_max = absl::Minutes(5);
  bool keep_intermediate_artifacts = false;
  // TakeReclaimRequest says yes once this many artifact bytes were deleted
  // since the last yes, and at least as many as are still live: reclaiming
  // rewrites the live data, so it then costs no more than it frees.
  int64_t reclaim_after_bytes = int64_t{1} << 30;
};

// Metrics hooks. Called with the scheduler's lock held: keep them cheap and
// never call back into the scheduler.
class SchedulerObserver {
 public:
  virtual ~SchedulerObserver() = default;
  virtual void OnJobFinished(v1::JobPhase phase) {}
  // outcome: "succeeded", "failed", "cancelled", "retried".
  virtual void OnTaskFinished(v1::TaskKind kind, absl::string_view outcome, double run_seconds) {}
  virtual void OnTaskRetry(absl::string_view reason) {}
  virtual void OnQueueDepth(int64_t ready_tasks) {}
  virtual void OnArtifactBytes(int64_t bytes) {}
  virtual void OnWorkers(int64_t active, int64_t idle, int64_t lost) {}
};

// What CompleteTask needs to know before it accepts an upload.
struct LeaseInfo {
  std::string job_id;
  int32_t attempt = 0;
  std::vector<std::string> required_outputs;
  bool already_completed = false;  // this lease completed it before (a retry)
};

struct CompleteResult {
  std::vector<v1::ArtifactRef> outputs;
  bool duplicate = false;  // the task was already completed under this lease
};

struct JobPage {
  std::vector<v1::Job> jobs;
  std::string next_page_token;
};

// The public view of a task record.
v1::TaskStatus TaskStatusFromRecord(const v1::TaskRecord& record);

class Scheduler {
 public:
  Scheduler(JobStore* store, Clock* clock, SchedulerOptions options,
            SchedulerObserver* observer = nullptr);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Loads every job from the store, expires leases whose deadline has
  // passed, resumes the rest (live leases are kept: their workers may still
  // complete them) and appends JOB_RESUMED to every unfinished job. Call
  // once, before anything else.
  absl::Status Recover();

  // ---- jobs ----
  // `job` has job_id, spec, create time (and request_id) set; `tasks` come
  // from PlanJob. Sets the submission order and writes JOB_SUBMITTED.
  absl::StatusOr<v1::Job> AddJob(v1::JobRecord job, std::vector<v1::TaskRecord> tasks);
  absl::StatusOr<v1::Job> CancelJob(absl::string_view job_id, absl::string_view reason);
  absl::StatusOr<v1::Job> GetJob(absl::string_view job_id) const;
  absl::StatusOr<std::vector<v1::TaskStatus>> GetTasks(absl::string_view job_id) const;
  // Newest first; page_token from a previous page.
  absl::StatusOr<JobPage> ListJobs(int page_size, absl::string_view page_token,
                                   const std::vector<v1::JobPhase>& phases) const;
  std::optional<std::string> JobForRequest(absl::string_view request_id) const;

  // ---- workers ----
  // The best eligible ready task, or nullopt.
  absl::StatusOr<std::optional<v1::TaskAssignment>> Lease(absl::string_view worker_id,
                                                          const v1::WorkerCapabilities& caps);
  // Lease, waiting up to `max_wait` (real time) for work to appear.
  absl::StatusOr<std::optional<v1::TaskAssignment>> LeaseWait(absl::string_view worker_id,
                                                              const v1::WorkerCapabilities& caps,
                                                              absl::Duration max_wait);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(absl::string_view worker_id,
                                                  absl::string_view task_id,
                                                  absl::string_view lease_id,
                                                  double fraction_done = 0);
  // ABORTED when the lease is not (or no longer) this worker's.
  absl::StatusOr<LeaseInfo> CheckLease(absl::string_view worker_id, absl::string_view task_id,
                                       absl::string_view lease_id) const;
  // `outputs`: staged artifacts to commit with the task; `chunks`: their
  // chunks that are not staged yet (ArtifactWriter::TakeTail), written by
  // the same commit. INVALID_ARGUMENT when a required output is missing or a
  // name repeats (the lease stands).
  absl::StatusOr<CompleteResult> Complete(absl::string_view worker_id, absl::string_view task_id,
                                          absl::string_view lease_id,
                                          std::vector<v1::ArtifactMeta> outputs,
                                          const std::map<std::string, double>& metrics,
                                          std::vector<ArtifactChunk> chunks = {});
  // Returns whether the task will run again.
  absl::StatusOr<bool> Fail(absl::string_view worker_id, absl::string_view task_id,
                            absl::string_view lease_id, const absl::Status& status);
  // Expires stale leases, releases due backoffs, refreshes worker gauges.
  void Tick();

  // ---- events ----
  // Waits up to `timeout` (real time) until the job has an event after
  // `after_sequence`. False when it timed out, the job is unknown, or after
  // Shutdown().
  bool WaitForEvents(absl::string_view job_id, int64_t after_sequence, absl::Duration timeout);
  // Wakes every waiter; later waits return at once.
  void Shutdown();

  int64_t ready_depth() const;
  int64_t artifact_bytes() const;
  // True (once) when enough artifact data was deleted that the store should
  // reclaim the disk space (JobStore::ReclaimSpace); see SchedulerOptions.
  bool TakeReclaimRequest();
  const SchedulerOptions& options() const { return options_; }

 private:
  struct JobNode;
  struct TaskNode;
  struct WorkerInfo {
    absl::Time last_seen;
    int leases = 0;
  };
  struct ReadyKey {
    int32_t neg_priority;
    int64_t submit_seq;
    int64_t order;
    TaskNode* node;
    bool operator<(const ReadyKey& o) const {
      if (neg_priority != o.neg_priority) return neg_priority < o.neg_priority;
      if (submit_seq != o.submit_seq) return submit_seq < o.submit_seq;
      return order < o.order;
    }
  };
  class Batch;

  absl::Status LoadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RecoverLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TickLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::Job> AddJobLocked(v1::JobRecord job, std::vector<v1::TaskRecord> tasks)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::Job> CancelJobLocked(absl::string_view job_id, absl::string_view reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<CompleteResult> CompleteLocked(absl::string_view worker_id,
                                                absl::string_view task_id,
                                                absl::string_view lease_id,
                                                std::vector<v1::ArtifactMeta> outputs,
                                                const std::map<std::string, double>& metrics,
                                                std::vector<ArtifactChunk> chunks)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<bool> FailLocked(absl::string_view worker_id, absl::string_view task_id,
                                  absl::string_view lease_id, const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs `locked` under the lock, then syncs the store if it committed a
  // change that must be durable before the caller hears back.
  template <typename T>
  T Durable(const std::function<T()>& locked);
  // Syncs the store unless a concurrent sync already covered apply number
  // `target` (0: nothing to sync).
  absl::Status SyncIfPending(int64_t target);
  absl::Status CommitLocked(Batch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ClearLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status BuildJobLocked(JobNode* job, std::vector<v1::TaskRecord> tasks)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  TaskNode* FindTaskLocked(absl::string_view task_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  JobNode* FindJobLocked(absl::string_view job_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<TaskNode*> LeasedTaskLocked(absl::string_view worker_id, absl::string_view task_id,
                                             absl::string_view lease_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void EnqueueLocked(TaskNode* t, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DequeueLocked(TaskNode* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseLeaseLocked(TaskNode* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PromoteDueLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool EligibleLocked(const TaskNode* t, absl::string_view worker_id,
                      const v1::WorkerCapabilities& caps) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::optional<v1::TaskAssignment>> LeaseLocked(
      absl::string_view worker_id, const v1::WorkerCapabilities& caps)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // A counted or uncounted failed attempt; the task is queued again or the
  // job fails. Returns whether the task will run again.
  bool RetryOrFailLocked(Batch& batch, TaskNode* t, const absl::Status& status,
                         absl::string_view worker_id, absl::Time now,
                         absl::string_view reason_override) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends an event (next sequence number, progress after the change).
  void Emit(Batch& batch, JobNode* job, v1::JobEvent event, const TaskNode* t, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishJobLocked(Batch& batch, JobNode* job, v1::JobPhase phase, const absl::Status& error,
                       absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CollectGarbageLocked(Batch& batch, TaskNode* consumer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DeleteArtifactLocked(Batch& batch, const v1::ArtifactRef& ref)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnloadJobLocked(JobNode* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::Progress ProgressLocked(const JobNode* job, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateConditionsLocked(JobNode* job, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TouchWorkerLocked(absl::string_view worker_id, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReportGaugesLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::TaskAssignment AssignmentLocked(const TaskNode* t) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NewLeaseIdLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  JobStore* const store_;
  Clock* const clock_;
  const SchedulerOptions options_;
  SchedulerObserver* const observer_;

  mutable absl::Mutex mu_;
  absl::CondVar work_cv_;    // ready tasks appeared
  absl::CondVar events_cv_;  // events were committed
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  // Apply number of the latest change this thread must sync (0: none).
  int64_t pending_sync_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<int64_t> applied_seq_{0};  // Applys so far
  absl::Mutex sync_mu_ ABSL_ACQUIRED_AFTER(mu_);
  int64_t synced_seq_ ABSL_GUARDED_BY(sync_mu_) = 0;
  absl::flat_hash_map<std::string, std::unique_ptr<JobNode>> jobs_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, TaskNode*> tasks_ ABSL_GUARDED_BY(mu_);  // unfinished jobs
  absl::flat_hash_map<std::string, std::string> request_ids_ ABSL_GUARDED_BY(mu_);
  std::set<ReadyKey> ready_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<int64_t, TaskNode*>> delayed_ ABSL_GUARDED_BY(mu_);  // (not_before ms, t)
  std::set<std::pair<int64_t, TaskNode*>> leases_ ABSL_GUARDED_BY(mu_);   // (deadline ms, t)
  std::set<TaskNode*> excluded_ ABSL_GUARDED_BY(mu_);  // ready tasks with excluded workers
  absl::flat_hash_map<std::string, WorkerInfo> workers_ ABSL_GUARDED_BY(mu_);
  int64_t max_submit_seq_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t artifact_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t deleted_since_reclaim_ ABSL_GUARDED_BY(mu_) = 0;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vptq::coordinator
