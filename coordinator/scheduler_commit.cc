// Scheduler: turning state changes into store writes and events; job endings,
// retries and garbage collection.
#include "coordinator/scheduler.h"

#include <algorithm>
#include <functional>

#include "absl/container/flat_hash_set.h"
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

void Scheduler::Emit(Batch& b, JobNode* job, v1::JobEvent e, const TaskNode* t,
                     absl::Time now) {
  e.set_job_id(job->rec.job().job_id());
  e.set_sequence(++job->last_seq);
  e.set_time_unix_ms(ToUnixMs(now));
  e.set_phase(job->phase());
  if (t != nullptr) {
    e.set_task_id(t->rec.task_id());
    e.set_task_name(t->rec.name());
    e.set_task_kind(t->rec.kind());
    e.set_attempt(t->rec.attempt());
    if (e.worker_id().empty()) e.set_worker_id(t->rec.worker_id());
  }
  job->rec.mutable_job()->set_last_event_sequence(job->last_seq);
  *e.mutable_progress() = ProgressLocked(job, now);
  b.m.events.push_back(std::move(e));
  b.Job(job);
}

absl::Status Scheduler::CommitLocked(Batch& b) {
  const absl::Time now = clock_->Now();
  for (JobNode* j : b.jobs_) {
    *j->rec.mutable_job()->mutable_progress() = ProgressLocked(j, now);
    b.m.put_jobs.push_back(j->rec);
  }
  for (TaskNode* t : b.tasks_) b.m.put_tasks.push_back(t->rec);
  if (b.m.empty()) return absl::OkStatus();
  const bool sync = b.m.sync;
  b.m.sync = false;  // synced by the caller once the lock is released
  absl::Status s = store_->Apply(b.m);
  if (!s.ok()) {
    log::Error("store write failed; reloading state from the store",
               {{"error", std::string(s.message())}});
    absl::Status reload = LoadLocked();
    if (!reload.ok()) {
      log::Error("reloading from the store failed", {{"error", std::string(reload.message())}});
    }
    work_cv_.SignalAll();
    events_cv_.SignalAll();
    return absl::UnavailableError(absl::StrCat("store write failed: ", s.message()));
  }
  const int64_t seq = applied_seq_.fetch_add(1) + 1;
  if (sync) pending_sync_ = seq;
  for (const auto& a : b.m.commit_artifacts) artifact_bytes_ += a.ref().size_bytes();
  for (const auto& a : b.m.delete_artifacts) {
    artifact_bytes_ -= a.ref().size_bytes();
    deleted_since_reclaim_ += a.ref().size_bytes();
  }
  for (JobNode* j : b.finished) UnloadJobLocked(j);
  if (!b.m.events.empty()) events_cv_.SignalAll();
  if (b.signal_work) work_cv_.SignalAll();
  for (auto& fn : b.after_) fn();
  if (observer_ != nullptr) {
    observer_->OnQueueDepth(static_cast<int64_t>(ready_.size() + delayed_.size()));
    if (!b.m.commit_artifacts.empty() || !b.m.delete_artifacts.empty()) {
      observer_->OnArtifactBytes(artifact_bytes_);
    }
  }
  return absl::OkStatus();
}

void Scheduler::FinishJobLocked(Batch& b, JobNode* job, v1::JobPhase phase,
                                const absl::Status& error, absl::Time now) {
  for (auto& node : job->tasks) {
    TaskNode* t = node.get();
    if (TaskFinished(t->rec.state())) continue;
    DequeueLocked(t);
    ReleaseLeaseLocked(t);  // keeps lease_id/worker_id: Heartbeat answers "cancelled"
    t->rec.set_state(v1::TASK_STATE_CANCELLED);
    job->remaining[KindIndex(t->rec.kind())]--;
    b.Task(t);
    const v1::TaskKind kind = t->rec.kind();
    b.After([this, kind] {
      if (observer_ != nullptr) observer_->OnTaskFinished(kind, "cancelled", 0);
    });
  }
  v1::Job* j = job->rec.mutable_job();
  j->set_phase(phase);
  j->set_end_unix_ms(ToUnixMs(now));
  if (!error.ok()) SetStatusProto(j->mutable_error(), error);
  if (phase != v1::JOB_PHASE_SUCCEEDED && !options_.keep_intermediate_artifacts) {
    for (auto& node : job->tasks) {
      if (node->rec.keep_outputs()) continue;
      for (const auto& out : node->rec.outputs()) DeleteArtifactLocked(b, out);
    }
  }
  UpdateConditionsLocked(job, now);
  v1::JobEvent e;
  e.set_type(phase == v1::JOB_PHASE_SUCCEEDED ? v1::EVENT_TYPE_JOB_SUCCEEDED
             : phase == v1::JOB_PHASE_FAILED  ? v1::EVENT_TYPE_JOB_FAILED
                                              : v1::EVENT_TYPE_JOB_CANCELLED);
  if (!error.ok()) {
    SetStatusProto(e.mutable_status(), error);
    e.set_message(std::string(error.message()));
  }
  Emit(b, job, std::move(e), nullptr, now);
  b.m.sync = true;
  b.finished.push_back(job);
  b.After([this, phase] {
    if (observer_ != nullptr) observer_->OnJobFinished(phase);
  });
  log::Info("job finished", {{"job", j->job_id()}, {"phase", std::string(PhaseName(phase))},
                             {"error", std::string(error.message())}});
}

// State changes are written (in order) under the lock without waiting for
// the disk; the WAL is then synced outside the lock before the caller hears
// back, so concurrent completions share one fsync (group commit). A crash
// can only lose a suffix of the history, never a change a caller was told
// about.
absl::Status Scheduler::SyncIfPending(int64_t target) {
  if (target <= 0) return absl::OkStatus();
  absl::MutexLock lock(&sync_mu_);
  if (synced_seq_ >= target) return absl::OkStatus();  // a concurrent sync covered it
  const int64_t upto = applied_seq_.load();
  absl::Status s = store_->Sync();
  if (!s.ok()) {
    log::Error("store sync failed", {{"error", std::string(s.message())}});
    return absl::UnavailableError(absl::StrCat("store sync failed: ", s.message()));
  }
  synced_seq_ = upto;
  return absl::OkStatus();
}

bool Scheduler::RetryOrFailLocked(Batch& b, TaskNode* t, const absl::Status& status,
                                  absl::string_view worker_id, absl::Time now,
                                  absl::string_view reason_override) {
  JobNode* job = t->job;
  RetryDecision d = ClassifyFailure(status.code());
  const std::string reason(reason_override.empty() ? d.reason : reason_override);
  SetStatusProto(t->rec.mutable_last_error(), status);
  b.Task(t);
  const v1::TaskKind kind = t->rec.kind();
  const double run_seconds =
      absl::ToDoubleSeconds(now - FromUnixMs(t->rec.lease_start_unix_ms()));

  bool fatal = d.retry_class == RetryClass::kFatal;
  absl::Status job_error = absl::Status(
      status.code(), absl::StrCat("task ", t->rec.name(), " failed: ", status.message()));
  if (d.retry_class == RetryClass::kRetry || d.retry_class == RetryClass::kRetryElsewhere) {
    t->rec.set_failures(t->rec.failures() + 1);
    job->retries++;
    if (t->rec.failures() >= options_.max_attempts) {
      fatal = true;
      job_error = absl::Status(status.code(),
                               absl::StrCat("task ", t->rec.name(), " failed after ",
                                            t->rec.failures(), " attempts; last error (", reason,
                                            "): ", status.message()));
    }
  }
  if (fatal) {
    t->rec.set_state(v1::TASK_STATE_FAILED);
    job->remaining[KindIndex(kind)]--;
    v1::JobEvent e;
    e.set_type(v1::EVENT_TYPE_TASK_FAILED);
    SetStatusProto(e.mutable_status(), status);
    e.set_reason(reason);
    e.set_worker_id(std::string(worker_id));
    Emit(b, job, std::move(e), t, now);
    b.After([this, kind, run_seconds] {
      if (observer_ != nullptr) observer_->OnTaskFinished(kind, "failed", run_seconds);
    });
    FinishJobLocked(b, job, v1::JOB_PHASE_FAILED, job_error, now);
    return false;
  }

  absl::Time not_before = now;
  if (d.retry_class == RetryClass::kRetry) {
    not_before = now + BackoffDelay(t->rec.failures(), options_.backoff_initial,
                                    options_.backoff_max);
  } else if (d.retry_class == RetryClass::kRetryElsewhere) {
    if (std::find(t->rec.excluded_workers().begin(), t->rec.excluded_workers().end(),
                  worker_id) == t->rec.excluded_workers().end()) {
      t->rec.add_excluded_workers(std::string(worker_id));
    }
  }
  t->rec.set_not_before_unix_ms(not_before > now ? ToUnixMs(not_before) : 0);
  t->rec.set_state(v1::TASK_STATE_READY);
  EnqueueLocked(t, now);
  b.signal_work = true;
  v1::JobEvent e;
  e.set_type(v1::EVENT_TYPE_TASK_RETRYING);
  SetStatusProto(e.mutable_status(), status);
  e.set_reason(reason);
  e.set_worker_id(std::string(worker_id));
  if (not_before > now) {
    e.set_message(absl::StrCat("retry after ", absl::FormatDuration(not_before - now)));
  }
  Emit(b, job, std::move(e), t, now);
  b.After([this, kind, run_seconds, reason] {
    if (observer_ == nullptr) return;
    observer_->OnTaskFinished(kind, "retried", run_seconds);
    observer_->OnTaskRetry(reason);
  });
  log::Warn("task attempt failed; retrying",
            {{"job", t->rec.job_id()}, {"task", t->rec.name()}, {"attempt", t->rec.attempt()},
             {"worker", std::string(worker_id)}, {"reason", reason},
             {"error", std::string(status.message())}});
  return true;
}

void Scheduler::DeleteArtifactLocked(Batch& b, const v1::ArtifactRef& ref) {
  if (!b.deleting.insert(ref.artifact_id()).second) return;
  auto meta = store_->GetArtifact(ref.artifact_id());
  if (!meta.ok()) {
    if (!absl::IsNotFound(meta.status())) {
      log::Warn("cannot look up artifact to delete",
                {{"artifact", ref.artifact_id()}, {"error", std::string(meta.status().message())}});
    }
    return;
  }
  b.m.delete_artifacts.push_back(*std::move(meta));
}

// `consumer` just SUCCEEDED: its reads are done. O(its dependencies, plus
// the outputs of producers it read whole).
void Scheduler::CollectGarbageLocked(Batch& b, TaskNode* consumer) {
  const int n = consumer->rec.deps_size();
  for (int i = 0; i < n; ++i) {
    const std::string& output = consumer->rec.deps(i).output();
    TaskNode* p = consumer->producers[i];
    if (output.empty()) {
      p->whole_uses--;
    } else {
      p->output_uses[output]--;
    }
  }
  if (options_.keep_intermediate_artifacts) return;
  const auto unused = [](const TaskNode* p, const std::string& name) {
    auto it = p->output_uses.find(name);
    return p->whole_uses == 0 && (it == p->output_uses.end() || it->second == 0);
  };
  absl::flat_hash_set<const v1::ArtifactRef*> deleted;
  for (int i = 0; i < n; ++i) {
    const std::string& output = consumer->rec.deps(i).output();
    TaskNode* p = consumer->producers[i];
    if (p->rec.keep_outputs()) continue;
    for (const v1::ArtifactRef& out : p->rec.outputs()) {
      if (!output.empty() && out.name() != output) continue;
      if (unused(p, out.name()) && deleted.insert(&out).second) DeleteArtifactLocked(b, out);
    }
  }
}

}  // namespace vptq::coordinator
