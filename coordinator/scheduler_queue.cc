// Scheduler bookkeeping: the ready/backoff/lease queues, eligibility, task
// assignments, progress, conditions and worker gauges.
#include "coordinator/scheduler.h"

#include <algorithm>
#include <functional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/status.h"
#include "coordinator/planner.h"
#include "coordinator/retry_policy.h"
#include "coordinator/scheduler_internal.h"

namespace vptq::coordinator {

using scheduler_internal::IsTerminal;
using scheduler_internal::KindIndex;
using scheduler_internal::KindName;
using scheduler_internal::kNumKinds;
using scheduler_internal::PhaseName;
using scheduler_internal::SetCondition;
using scheduler_internal::SetStatusProto;
using scheduler_internal::TaskFinished;

Scheduler::TaskNode* Scheduler::FindTaskLocked(absl::string_view task_id) const {
  auto it = tasks_.find(task_id);
  return it == tasks_.end() ? nullptr : it->second;
}

Scheduler::JobNode* Scheduler::FindJobLocked(absl::string_view job_id) const {
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : it->second.get();
}

void Scheduler::EnqueueLocked(TaskNode* t, absl::Time now) {
  if (t->rec.not_before_unix_ms() > ToUnixMs(now)) {
    delayed_.insert({t->rec.not_before_unix_ms(), t});
    t->delayed = true;
  } else {
    ready_.insert(ReadyKey{-t->job->rec.job().spec().priority(), t->job->rec.submit_seq(),
                           t->rec.order(), t});
    t->queued = true;
  }
  if (t->rec.excluded_workers_size() > 0) excluded_.insert(t);
}

void Scheduler::DequeueLocked(TaskNode* t) {
  if (t->queued) {
    ready_.erase(ReadyKey{-t->job->rec.job().spec().priority(), t->job->rec.submit_seq(),
                          t->rec.order(), t});
    t->queued = false;
  }
  if (t->delayed) {
    delayed_.erase({t->rec.not_before_unix_ms(), t});
    t->delayed = false;
  }
  excluded_.erase(t);
}

void Scheduler::ReleaseLeaseLocked(TaskNode* t) {
  if (!t->leased) return;
  leases_.erase({t->rec.lease_deadline_unix_ms(), t});
  t->leased = false;
  t->job->running--;
  auto it = workers_.find(t->rec.worker_id());
  if (it != workers_.end() && it->second.leases > 0) it->second.leases--;
  t->rec.set_lease_deadline_unix_ms(0);
}

void Scheduler::PromoteDueLocked(absl::Time now) {
  const int64_t now_ms = ToUnixMs(now);
  bool promoted = false;
  while (!delayed_.empty() && delayed_.begin()->first <= now_ms) {
    TaskNode* t = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    t->delayed = false;
    ready_.insert(ReadyKey{-t->job->rec.job().spec().priority(), t->job->rec.submit_seq(),
                           t->rec.order(), t});
    t->queued = true;
    promoted = true;
  }
  if (promoted) work_cv_.SignalAll();
}

void Scheduler::TouchWorkerLocked(absl::string_view worker_id, absl::Time now) {
  if (worker_id.empty()) return;
  workers_[worker_id].last_seen = now;
}

void Scheduler::UnloadJobLocked(JobNode* job) {
  for (auto& node : job->tasks) {
    DequeueLocked(node.get());
    ReleaseLeaseLocked(node.get());
    tasks_.erase(node->rec.task_id());
  }
  job->tasks.clear();
  job->loaded = false;
}

v1::Progress Scheduler::ProgressLocked(const JobNode* job, absl::Time now) const {
  if (!job->loaded) return job->rec.job().progress();
  v1::Progress p;
  p.set_tasks_total(static_cast<int32_t>(job->tasks.size()));
  p.set_tasks_done(job->done);
  p.set_tasks_running(job->running);
  p.set_linears_total(job->linears_total);
  p.set_linears_done(job->linears_done);
  p.set_retries(job->retries);
  std::string stage = "done";
  for (v1::TaskKind k : {v1::TASK_KIND_HESSIAN, v1::TASK_KIND_REDUCE, v1::TASK_KIND_QUANTIZE,
                         v1::TASK_KIND_ASSEMBLE, v1::TASK_KIND_EVAL}) {
    if (job->remaining[KindIndex(k)] > 0) {
      stage = std::string(KindName(k));
      break;
    }
  }
  p.set_stage(stage);
  const double fraction = job->cost_total > 0 ? job->cost_done / job->cost_total : 0.0;
  p.set_fraction_done(std::clamp(fraction, 0.0, 1.0));
  int64_t eta = -1;
  if (job->phase() == v1::JOB_PHASE_SUCCEEDED) {
    eta = 0;
  } else if (job->phase() == v1::JOB_PHASE_RUNNING && job->cost_done > 0 &&
             job->rec.job().start_unix_ms() > 0) {
    const double elapsed = absl::ToDoubleSeconds(now - FromUnixMs(job->rec.job().start_unix_ms()));
    eta = static_cast<int64_t>(elapsed * (job->cost_total - job->cost_done) / job->cost_done + 0.5);
  }
  p.set_eta_seconds(eta);
  return p;
}

void Scheduler::UpdateConditionsLocked(JobNode* job, absl::Time now) {
  v1::Job* j = job->rec.mutable_job();
  struct StageCondition {
    v1::TaskKind kind;
    const char* type;
  };
  for (const StageCondition& c :
       {StageCondition{v1::TASK_KIND_REDUCE, "HessiansReady"},
        StageCondition{v1::TASK_KIND_QUANTIZE, "Quantized"},
        StageCondition{v1::TASK_KIND_ASSEMBLE, "Assembled"},
        StageCondition{v1::TASK_KIND_EVAL, "Evaluated"}}) {
    const int k = KindIndex(c.kind);
    bool already = false;
    for (const auto& existing : j->conditions()) {
      already |= existing.type() == c.type && existing.status();
    }
    if (!already && job->total[k] > 0 && job->remaining[k] == 0) {
      // Only tasks that succeeded count: a cancelled stage is not "ready".
      bool all_ok = true;
      for (auto& node : job->tasks) {
        if (node->rec.kind() == c.kind && node->rec.state() != v1::TASK_STATE_SUCCEEDED) {
          all_ok = false;
          break;
        }
      }
      if (all_ok) SetCondition(j, c.type, true, "Done", "", now);
    }
  }
}

std::string Scheduler::NewLeaseIdLocked() {
  return absl::StrFormat("%016x", rng_());
}

bool Scheduler::EligibleLocked(const TaskNode* t, absl::string_view worker_id,
                               const v1::WorkerCapabilities& caps) const {
  const v1::TaskRequirements& req = t->rec.requirements();
  if (!caps.task_kinds().empty() &&
      std::find(caps.task_kinds().begin(), caps.task_kinds().end(), t->rec.kind()) ==
          caps.task_kinds().end()) {
    return false;
  }
  if (req.device_kind() != v1::DEVICE_KIND_UNSPECIFIED && caps.device_kind() != req.device_kind()) {
    return false;
  }
  if (caps.device_memory_bytes() > 0 &&
      req.min_device_memory_bytes() > caps.device_memory_bytes()) {
    return false;
  }
  if (caps.host_memory_bytes() > 0 && req.min_host_memory_bytes() > caps.host_memory_bytes()) {
    return false;
  }
  for (const auto& w : t->rec.excluded_workers()) {
    if (w == worker_id) return false;
  }
  return true;
}

v1::TaskAssignment Scheduler::AssignmentLocked(const TaskNode* t) const {
  v1::TaskAssignment a;
  a.set_task_id(t->rec.task_id());
  a.set_job_id(t->rec.job_id());
  a.set_name(t->rec.name());
  a.set_kind(t->rec.kind());
  a.set_attempt(t->rec.attempt());
  a.set_lease_id(t->rec.lease_id());
  a.set_lease_deadline_unix_ms(t->rec.lease_deadline_unix_ms());
  a.set_heartbeat_interval_ms(absl::ToInt64Milliseconds(options_.lease) / 3);
  *a.mutable_spec() = t->job->rec.job().spec();
  *a.mutable_payload() = t->rec.payload();
  *a.mutable_required_outputs() = t->rec.required_outputs();
  for (int i = 0; i < t->rec.deps_size(); ++i) {
    const v1::TaskDependency& dep = t->rec.deps(i);
    const TaskNode* p = t->producers[i];
    bool found = false;
    for (const v1::ArtifactRef& out : p->rec.outputs()) {
      if (dep.output().empty()) {
        v1::TaskInput* in = a.add_inputs();
        in->set_name(dep.input_name() + out.name());
        *in->mutable_artifact() = out;
        found = true;
      } else if (out.name() == dep.output()) {
        v1::TaskInput* in = a.add_inputs();
        in->set_name(dep.input_name());
        *in->mutable_artifact() = out;
        found = true;
        break;
      }
    }
    if (!found) {
      log::Warn("task input missing from its producer's outputs",
                {{"task", t->rec.task_id()}, {"producer", p->rec.task_id()},
                 {"output", dep.output()}});
    }
  }
  return a;
}

void Scheduler::ReportGaugesLocked(absl::Time now) {
  int64_t active = 0, idle = 0, lost = 0;
  const absl::Duration live = 3 * options_.lease;
  for (auto it = workers_.begin(); it != workers_.end();) {
    const WorkerInfo& w = it->second;
    if (w.leases > 0) {
      ++active;
    } else if (now - w.last_seen <= live) {
      ++idle;
    } else if (now - w.last_seen <= absl::Hours(1)) {
      ++lost;
    } else {
      workers_.erase(it++);
      continue;
    }
    ++it;
  }
  if (observer_ != nullptr) {
    observer_->OnWorkers(active, idle, lost);
    observer_->OnQueueDepth(static_cast<int64_t>(ready_.size() + delayed_.size()));
    observer_->OnArtifactBytes(artifact_bytes_);
  }
}

}  // namespace vptq::coordinator
