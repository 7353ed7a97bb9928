// The coordinator's Prometheus metrics (DESIGN.md §5), fed by the scheduler
// through SchedulerObserver:
//   vptq_jobs_total{outcome}              jobs that ended: succeeded|failed|cancelled
//   vptq_tasks_total{kind,outcome}        attempts that ended: succeeded|failed|retried|cancelled
//   vptq_task_duration_seconds{kind}      run time of successful attempts (1 s .. 16 h buckets)
//   vptq_task_queue_depth                 tasks ready or in backoff
//   vptq_task_retries_total{reason}       lease_expired|unavailable|aborted|resource_exhausted|
//                                         internal|worker_returned
//   vptq_artifact_store_bytes             committed artifact bytes in the store
//   vptq_workers{state}                   active (holds a lease) | idle | lost (silent > 3 leases)
//   vptq_build_info{version}              1
// No job ids in labels: per-job progress is WatchJob's. Thread-safe.
//
//   MetricsRegistry registry;
//   VPTQ_ASSIGN_OR_RETURN(auto metrics, CoordinatorMetrics::Create(&registry, "0.1.0"));
//   options.observer = metrics.get();
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "coordinator/scheduler.h"

namespace vptq::coordinator {

// 1 s, 2 s, 5 s, 10 s, 30 s, 1 min, 2 min, 5 min, 10 min, 20 min, 30 min,
// 1 h, 2 h, 4 h, 8 h, 16 h.
std::vector<double> TaskDurationBuckets();

class CoordinatorMetrics : public SchedulerObserver {
 public:
  static absl::StatusOr<std::unique_ptr<CoordinatorMetrics>> Create(MetricsRegistry* registry,
                                                                    const std::string& version);

  void OnJobFinished(v1::JobPhase phase) override;
  void OnTaskFinished(v1::TaskKind kind, absl::string_view outcome, double run_seconds) override;
  void OnTaskRetry(absl::string_view reason) override;
  void OnQueueDepth(int64_t ready_tasks) override;
  void OnArtifactBytes(int64_t bytes) override;
  void OnWorkers(int64_t active, int64_t idle, int64_t lost) override;

 private:
  CoordinatorMetrics() = default;
  Family<Counter>* jobs_ = nullptr;
  Family<Counter>* tasks_ = nullptr;
  Family<Histogram>* duration_ = nullptr;
  Family<Gauge>* queue_depth_ = nullptr;
  Family<Counter>* retries_ = nullptr;
  Family<Gauge>* artifact_bytes_ = nullptr;
  Family<Gauge>* workers_ = nullptr;
  Family<Gauge>* build_info_ = nullptr;
};

// "hessian", "reduce", "quantize", "assemble", "eval".
std::string TaskKindLabel(v1::TaskKind kind);

}  // namespace vptq::coordinator
