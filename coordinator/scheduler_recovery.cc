// Scheduler: loading state from the store and resuming after a restart.
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

void Scheduler::ClearLocked() {
  ready_.clear();
  delayed_.clear();
  leases_.clear();
  excluded_.clear();
  tasks_.clear();
  jobs_.clear();
  request_ids_.clear();
  for (auto& [id, w] : workers_) w.leases = 0;
  max_submit_seq_ = 0;
  artifact_bytes_ = 0;
}

absl::Status Scheduler::BuildJobLocked(JobNode* job, std::vector<v1::TaskRecord> tasks) {
  std::sort(tasks.begin(), tasks.end(),
            [](const auto& a, const auto& b) { return a.index() < b.index(); });
  absl::flat_hash_map<std::string, TaskNode*> by_id;
  std::vector<std::unique_ptr<TaskNode>> nodes;
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i].index() != static_cast<int>(i) || tasks[i].job_id() != job->rec.job().job_id()) {
      return absl::InvalidArgumentError(absl::StrCat("task ", tasks[i].task_id(),
                                                     " has index ", tasks[i].index(),
                                                     " / job ", tasks[i].job_id(),
                                                     "; expected ", i, " / ",
                                                     job->rec.job().job_id()));
    }
    auto node = std::make_unique<TaskNode>();
    node->rec = std::move(tasks[i]);
    node->job = job;
    if (!by_id.emplace(node->rec.task_id(), node.get()).second) {
      return absl::InvalidArgumentError(absl::StrCat("task id ", node->rec.task_id(), " repeats"));
    }
    nodes.push_back(std::move(node));
  }
  for (auto& node : nodes) {
    for (const auto& dep : node->rec.deps()) {
      auto it = by_id.find(dep.task_id());
      if (it == by_id.end() || it->second->rec.index() >= node->rec.index()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "task ", node->rec.task_id(), " depends on ", dep.task_id(),
            ", which is not an earlier task of the job"));
      }
      TaskNode* p = it->second;
      node->producers.push_back(p);
      if (p->consumers.empty() || p->consumers.back() != node.get()) {
        p->consumers.push_back(node.get());
      }
    }
  }

  // Validated: register.
  const absl::Time now = clock_->Now();
  job->tasks = std::move(nodes);
  job->loaded = true;
  for (auto& node : job->tasks) {
    TaskNode* t = node.get();
    const int k = KindIndex(t->rec.kind());
    job->cost_total += t->rec.cost();
    job->total[k]++;
    if (t->rec.linear()) job->linears_total++;
    tasks_[t->rec.task_id()] = t;
    if (TaskFinished(t->rec.state())) {
      if (t->rec.state() == v1::TASK_STATE_SUCCEEDED) {
        job->done++;
        job->cost_done += t->rec.cost();
        if (t->rec.linear()) job->linears_done++;
        auto it = t->rec.metrics().find("proxy_loss");
        if (t->rec.kind() == v1::TASK_KIND_QUANTIZE && it != t->rec.metrics().end()) {
          job->proxy_sum += it->second;
          job->proxy_max = std::max(job->proxy_max, it->second);
          job->proxy_n++;
        }
      }
    } else {
      job->remaining[k]++;
    }
    job->retries += t->rec.failures();
  }
  for (auto& node : job->tasks) {
    TaskNode* t = node.get();
    if (t->rec.state() != v1::TASK_STATE_SUCCEEDED) {
      for (int i = 0; i < t->rec.deps_size(); ++i) {
        const std::string& output = t->rec.deps(i).output();
        if (output.empty()) {
          t->producers[i]->whole_uses++;
        } else {
          t->producers[i]->output_uses[output]++;
        }
      }
    }
    if (TaskFinished(t->rec.state())) continue;
    for (TaskNode* p : t->producers) {
      if (p->rec.state() != v1::TASK_STATE_SUCCEEDED) t->pending++;
    }
    if (t->rec.state() == v1::TASK_STATE_LEASED) {
      t->leased = true;
      leases_.insert({t->rec.lease_deadline_unix_ms(), t});
      job->running++;
      WorkerInfo& w = workers_[t->rec.worker_id()];
      w.leases++;
      if (w.last_seen == absl::Time()) w.last_seen = now;
    } else if (t->pending == 0) {
      t->rec.set_state(v1::TASK_STATE_READY);
      EnqueueLocked(t, now);
    } else {
      t->rec.set_state(v1::TASK_STATE_BLOCKED);
    }
  }
  return absl::OkStatus();
}

absl::Status Scheduler::LoadLocked() {
  ClearLocked();
  VPTQ_ASSIGN_OR_RETURN(std::vector<v1::JobRecord> records, store_->LoadJobs());
  for (auto& rec : records) {
    auto job = std::make_unique<JobNode>();
    job->rec = std::move(rec);
    job->last_seq = job->rec.job().last_event_sequence();
    max_submit_seq_ = std::max(max_submit_seq_, job->rec.submit_seq());
    const std::string id = job->rec.job().job_id();
    if (!job->rec.job().request_id().empty()) request_ids_[job->rec.job().request_id()] = id;
    if (!job->terminal()) {
      VPTQ_ASSIGN_OR_RETURN(std::vector<v1::TaskRecord> tasks, store_->LoadTasks(id));
      VPTQ_RETURN_IF_ERROR(Annotate(BuildJobLocked(job.get(), std::move(tasks)), "job ", id));
    }
    jobs_[id] = std::move(job);
  }
  VPTQ_ASSIGN_OR_RETURN(std::vector<v1::ArtifactMeta> artifacts, store_->ListArtifacts());
  for (const auto& a : artifacts) artifact_bytes_ += a.ref().size_bytes();
  return absl::OkStatus();
}

absl::Status Scheduler::Recover() {
  int64_t pending = 0;
  absl::Status s;
  {
    absl::MutexLock lock(&mu_);
    s = RecoverLocked();
    pending = pending_sync_;
    pending_sync_ = 0;
  }
  VPTQ_RETURN_IF_ERROR(s);
  return SyncIfPending(pending);
}

absl::Status Scheduler::RecoverLocked() {
  VPTQ_RETURN_IF_ERROR(LoadLocked());
  const absl::Time now = clock_->Now();
  std::vector<std::string> active;
  for (const auto& [id, job] : jobs_) {
    if (!job->terminal()) active.push_back(id);
  }
  std::sort(active.begin(), active.end());
  for (const std::string& id : active) {
    JobNode* job = FindJobLocked(id);
    if (job == nullptr) continue;
    Batch b;
    int kept = 0, expired = 0;
    for (auto& node : job->tasks) {
      TaskNode* t = node.get();
      if (job->terminal() || !t->leased) continue;
      if (t->rec.lease_deadline_unix_ms() > ToUnixMs(now)) {
        ++kept;
        continue;
      }
      ++expired;
      const std::string worker = t->rec.worker_id();
      ReleaseLeaseLocked(t);
      b.Task(t);
      RetryOrFailLocked(b, t,
                        absl::AbortedError(absl::StrCat("lease of worker ", worker,
                                                        " expired while the coordinator was "
                                                        "down")),
                        worker, now, "lease_expired");
    }
    if (!job->terminal()) {
      if (job->done == static_cast<int>(job->tasks.size())) {
        FinishJobLocked(b, job, v1::JOB_PHASE_SUCCEEDED, absl::OkStatus(), now);
      } else {
        v1::JobEvent e;
        e.set_type(v1::EVENT_TYPE_JOB_RESUMED);
        e.set_message(absl::StrCat("coordinator restarted: ", kept, " live leases kept, ",
                                   expired, " stale leases expired"));
        Emit(b, job, std::move(e), nullptr, now);
      }
    }
    VPTQ_RETURN_IF_ERROR(CommitLocked(b));
    log::Info("job resumed", {{"job", id}, {"leases_kept", kept}, {"leases_expired", expired}});
  }
  ReportGaugesLocked(now);
  return absl::OkStatus();
}

}  // namespace vptq::coordinator
