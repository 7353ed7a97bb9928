#include "coordinator/coordinator_metrics.h"

#include "common/status.h"

namespace vptq::coordinator {

std::vector<double> TaskDurationBuckets() {
  return {1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 57600};
}

std::string TaskKindLabel(v1::TaskKind kind) {
  switch (kind) {
    case v1::TASK_KIND_HESSIAN: return "hessian";
    case v1::TASK_KIND_REDUCE: return "reduce";
    case v1::TASK_KIND_QUANTIZE: return "quantize";
    case v1::TASK_KIND_ASSEMBLE: return "assemble";
    case v1::TASK_KIND_EVAL: return "eval";
    default: return "unspecified";
  }
}

absl::StatusOr<std::unique_ptr<CoordinatorMetrics>> CoordinatorMetrics::Create(
    MetricsRegistry* r, const std::string& version) {
  std::unique_ptr<CoordinatorMetrics> m(new CoordinatorMetrics());
  VPTQ_ASSIGN_OR_RETURN(m->jobs_, r->AddCounter("vptq_jobs_total", "Jobs that ended, by outcome.",
                                                {"outcome"}));
  VPTQ_ASSIGN_OR_RETURN(m->tasks_, r->AddCounter("vptq_tasks_total",
                                                 "Task attempts that ended, by kind and outcome.",
                                                 {"kind", "outcome"}));
  VPTQ_ASSIGN_OR_RETURN(m->duration_,
                        r->AddHistogram("vptq_task_duration_seconds",
                                        "Run time of successful task attempts, lease to result.",
                                        {"kind"}, TaskDurationBuckets()));
  VPTQ_ASSIGN_OR_RETURN(m->queue_depth_,
                        r->AddGauge("vptq_task_queue_depth", "Tasks ready to run or in backoff."));
  VPTQ_ASSIGN_OR_RETURN(m->retries_, r->AddCounter("vptq_task_retries_total",
                                                   "Failed task attempts that were retried.",
                                                   {"reason"}));
  VPTQ_ASSIGN_OR_RETURN(m->artifact_bytes_,
                        r->AddGauge("vptq_artifact_store_bytes",
                                    "Bytes of committed artifacts in the store."));
  VPTQ_ASSIGN_OR_RETURN(m->workers_, r->AddGauge("vptq_workers", "Workers seen, by state.",
                                                 {"state"}));
  VPTQ_ASSIGN_OR_RETURN(m->build_info_,
                        r->AddGauge("vptq_build_info", "Build of this coordinator.", {"version"}));
  m->build_info_->Labels({version}).Set(1);
  for (const char* o : {"succeeded", "failed", "cancelled"}) m->jobs_->Labels({o});
  for (const char* s : {"active", "idle", "lost"}) m->workers_->Labels({s});
  return m;
}

void CoordinatorMetrics::OnJobFinished(v1::JobPhase phase) {
  const char* outcome = phase == v1::JOB_PHASE_SUCCEEDED ? "succeeded"
                        : phase == v1::JOB_PHASE_FAILED  ? "failed"
                                                         : "cancelled";
  jobs_->Labels({outcome}).Increment();
}

void CoordinatorMetrics::OnTaskFinished(v1::TaskKind kind, absl::string_view outcome,
                                        double run_seconds) {
  const std::string k = TaskKindLabel(kind);
  tasks_->Labels({k, std::string(outcome)}).Increment();
  if (outcome == "succeeded") duration_->Labels({k}).Observe(run_seconds);
}

void CoordinatorMetrics::OnTaskRetry(absl::string_view reason) {
  retries_->Labels({std::string(reason)}).Increment();
}

void CoordinatorMetrics::OnQueueDepth(int64_t ready_tasks) {
  queue_depth_->Labels({}).Set(static_cast<double>(ready_tasks));
}

void CoordinatorMetrics::OnArtifactBytes(int64_t bytes) {
  artifact_bytes_->Labels({}).Set(static_cast<double>(bytes));
}

void CoordinatorMetrics::OnWorkers(int64_t active, int64_t idle, int64_t lost) {
  workers_->Labels({"active"}).Set(static_cast<double>(active));
  workers_->Labels({"idle"}).Set(static_cast<double>(idle));
  workers_->Labels({"lost"}).Set(static_cast<double>(lost));
}

}  // namespace vptq::coordinator
