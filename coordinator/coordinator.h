// Coordinator: the service engine. Its methods mirror the RPCs of
// proto/vptq/v1/coordinator.proto one to one, so the gRPC services
// (grpc_services.h) are thin wrappers and an embedded run (`vptqctl
// quantize`) calls the very same methods in-process, with no gRPC.
//
// Lifecycle:
//   Open(store, options)  drops uploads a crash interrupted, recovers every
//                         job (stale leases expired, live ones kept so their
//                         workers can finish), starts the ticker thread
//                         and the reclaimer (gives the disk space of deleted
//                         artifacts back when SchedulerOptions say it is due).
//   BeginDrain()          no new jobs or leases (UNAVAILABLE); open watches
//                         end UNAVAILABLE; heartbeats, completions and
//                         failures are still accepted.
//   destructor            drains, stops the ticker, closes the store.
//
// The worker loop (also in the proto comments):
//   1. LeaseTask(worker_id, capabilities[, max_wait_ms]) -> TaskAssignment.
//   2. Heartbeat every heartbeat_interval_ms (lease/3) until the task is
//      reported; cancelled=true -> stop, FailTask(CANCELLED); ABORTED -> the
//      lease is gone, stop without reporting.
//   3. FetchArtifact each TaskAssignment.inputs entry (resume from an offset,
//      verify ArtifactRef.sha256).
//   4. Run it; then CompleteTask: header, per output begin / chunk... / end
//      (SHA-256), then a summary — or FailTask with the code that says what
//      should happen (retry_policy.h).
//
// Streaming methods take callbacks shaped like gRPC's reader/writer:
// `write` returns false when the receiver is gone; `read` returns false at
// the end of the stream.
//
// Thread-safe: every method may be called concurrently.
//
//   auto store = RocksJobStore::Open(dir);
//   CoordinatorOptions options;
//   options.config = config;                     // see config.h
//   VPTQ_ASSIGN_OR_RETURN(auto c, Coordinator::Open(std::move(*store), options));
//   VPTQ_ASSIGN_OR_RETURN(auto submitted, c->SubmitJob(request));
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/clock.h"
#include "coordinator/job_store.h"
#include "coordinator/path_policy.h"
#include "coordinator/planner.h"
#include "coordinator/scheduler.h"
#include "vptq/v1/config.pb.h"
#include "vptq/v1/coordinator.pb.h"

namespace vptq::coordinator {

// Largest `data` / `chunk` payload the coordinator sends in one stream message.
inline constexpr int64_t kStreamChunkBytes = int64_t{1} << 20;

struct CoordinatorOptions {
  v1::CoordinatorConfig config;          // Open applies defaults and validates (config.h)
  Clock* clock = RealClock();
  SchedulerObserver* observer = nullptr;  // e.g. CoordinatorMetrics; outlives the coordinator
  bool run_ticker = true;                 // false: the caller drives Tick() (tests)
  absl::Duration tick_interval = absl::Milliseconds(200);
};

class Coordinator {
 public:
  static absl::StatusOr<std::unique_ptr<Coordinator>> Open(std::unique_ptr<JobStore> store,
                                                           CoordinatorOptions options);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // ---- ClientService ----
  absl::StatusOr<v1::SubmitJobResponse> SubmitJob(const v1::SubmitJobRequest& request);
  // SubmitJob for a caller that already knows the model's shape (benchmarks,
  // tests, an embedded run that planned itself): the spec is checked and
  // defaulted but its paths are taken as they are and no file is read.
  absl::StatusOr<v1::SubmitJobResponse> SubmitPlannedJob(const v1::SubmitJobRequest& request,
                                                         const PlanModel& model);
  absl::StatusOr<v1::GetJobResponse> GetJob(const v1::GetJobRequest& request);
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request);
  absl::StatusOr<v1::CancelJobResponse> CancelJob(const v1::CancelJobRequest& request);
  // Returns OK after the job's terminal event was written, CANCELLED when the
  // client went away (`write` false or `cancelled()` true), UNAVAILABLE when
  // draining.
  absl::Status WatchJob(const v1::WatchJobRequest& request,
                        const std::function<bool(const v1::WatchJobResponse&)>& write,
                        const std::function<bool()>& cancelled = nullptr);
  absl::Status DownloadArtifact(const v1::DownloadArtifactRequest& request,
                                const std::function<bool(const v1::ArtifactStreamResponse&)>& write);

  // ---- WorkerService ----
  absl::StatusOr<v1::LeaseTaskResponse> LeaseTask(const v1::LeaseTaskRequest& request);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request);
  absl::Status FetchArtifact(const v1::DownloadArtifactRequest& request,
                             const std::function<bool(const v1::ArtifactStreamResponse&)>& write);
  absl::StatusOr<v1::CompleteTaskResponse> CompleteTask(
      const std::function<bool(v1::CompleteTaskRequest*)>& read);
  absl::StatusOr<v1::FailTaskResponse> FailTask(const v1::FailTaskRequest& request);

  // ---- lifecycle ----
  void BeginDrain();
  bool draining() const { return draining_.load(); }
  void Tick() { scheduler_->Tick(); }
  // JobStore::ReclaimSpace, timed and logged. The reclaimer thread calls it
  // when due; an embedded run calls it when its job has ended.
  absl::Status ReclaimSpace();
  Scheduler& scheduler() { return *scheduler_; }
  JobStore& store() { return *store_; }
  const v1::CoordinatorConfig& config() const { return options_.config; }

 private:
  Coordinator(std::unique_ptr<JobStore> store, CoordinatorOptions options, PathPolicy paths);
  absl::StatusOr<v1::SubmitJobResponse> SubmitNormalized(const v1::SubmitJobRequest& request,
                                                         v1::JobSpec spec,
                                                         std::vector<std::string> warnings,
                                                         const PlanModel& model);
  absl::Status StreamArtifact(const v1::ArtifactMeta& meta, int64_t offset,
                              const std::function<bool(const v1::ArtifactStreamResponse&)>& write);
  std::string NewJobId();
  void TickerLoop();
  void ReclaimLoop();
  // Waits up to `timeout` for the stop signal; true when stopping.
  bool WaitForStop(absl::Duration timeout);

  const CoordinatorOptions options_;
  const PathPolicy paths_;
  std::unique_ptr<JobStore> store_;       // destroyed after the scheduler
  std::unique_ptr<Scheduler> scheduler_;
  std::atomic<bool> draining_{false};

  absl::Mutex submit_mu_;  // request_id check + add is one step

  absl::Mutex mu_;
  std::set<std::string> uploads_ ABSL_GUARDED_BY(mu_);  // leases with a CompleteTask in flight
  bool stop_ticker_ ABSL_GUARDED_BY(mu_) = false;
  absl::CondVar ticker_cv_;
  std::thread ticker_;
  std::thread reclaimer_;
};

// The message sequence of one CompleteTask call for in-memory outputs, in
// `chunk_bytes` pieces: header, (begin, chunk..., end) per output, summary.
std::vector<v1::CompleteTaskRequest> MakeCompleteTaskStream(
    const std::string& worker_id, const v1::TaskAssignment& task,
    const std::vector<std::pair<std::string, std::string>>& outputs,
    const std::map<std::string, double>& metrics, int64_t chunk_bytes = kStreamChunkBytes);

// Feeds a message vector to Coordinator::CompleteTask.
std::function<bool(v1::CompleteTaskRequest*)> ReadFromVector(
    std::vector<v1::CompleteTaskRequest> messages);

}  // namespace vptq::coordinator
