// Scheduler: the public operations (jobs, leases, completions, failures,
// ticks, waits). See scheduler.h for the contract.
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

v1::TaskStatus TaskStatusFromRecord(const v1::TaskRecord& r) {
  v1::TaskStatus s;
  s.set_task_id(r.task_id());
  s.set_name(r.name());
  s.set_kind(r.kind());
  s.set_state(r.state());
  s.set_attempt(r.attempt());
  s.set_failures(r.failures());
  s.set_worker_id(r.worker_id());
  s.set_lease_deadline_unix_ms(r.lease_deadline_unix_ms());
  s.set_not_before_unix_ms(r.not_before_unix_ms());
  *s.mutable_last_error() = r.last_error();
  s.set_run_seconds(r.run_seconds());
  *s.mutable_outputs() = r.outputs();
  *s.mutable_metrics() = r.metrics();
  return s;
}

Scheduler::Scheduler(JobStore* store, Clock* clock, SchedulerOptions options,
                     SchedulerObserver* observer)
    : store_(store),
      clock_(clock),
      options_(options),
      observer_(observer),
      rng_(std::random_device{}()) {}

Scheduler::~Scheduler() {
  Shutdown();
  absl::MutexLock lock(&mu_);
  ClearLocked();
}

absl::StatusOr<v1::Job> Scheduler::AddJobLocked(v1::JobRecord rec, std::vector<v1::TaskRecord> tasks) {
    const std::string id = rec.job().job_id();
  if (id.empty()) return absl::InvalidArgumentError("job id is empty");
  if (jobs_.contains(id)) return absl::AlreadyExistsError(absl::StrCat("job ", id, " exists"));
  if (tasks.empty()) return absl::InvalidArgumentError("a job needs at least one task");
  const absl::Time now = clock_->Now();
  auto job = std::make_unique<JobNode>();
  job->rec = std::move(rec);
  job->rec.set_submit_seq(max_submit_seq_ + 1);
  job->rec.set_num_tasks(static_cast<int32_t>(tasks.size()));
  v1::Job* j = job->rec.mutable_job();
  j->set_phase(v1::JOB_PHASE_PENDING);
  if (j->create_unix_ms() == 0) j->set_create_unix_ms(ToUnixMs(now));
  SetCondition(j, "Planned", true, "Planned", absl::StrCat(tasks.size(), " tasks"), now);
  VPTQ_RETURN_IF_ERROR(BuildJobLocked(job.get(), std::move(tasks)));
  max_submit_seq_ = job->rec.submit_seq();
  JobNode* node = job.get();
  jobs_[id] = std::move(job);
  if (!node->rec.job().request_id().empty()) request_ids_[node->rec.job().request_id()] = id;

  Batch b;
  for (auto& t : node->tasks) b.Task(t.get());
  v1::JobEvent e;
  e.set_type(v1::EVENT_TYPE_JOB_SUBMITTED);
  e.set_message(absl::StrCat("planned ", node->tasks.size(), " tasks"));
  Emit(b, node, std::move(e), nullptr, now);
  b.signal_work = true;
  VPTQ_RETURN_IF_ERROR(CommitLocked(b));
  log::Info("job submitted", {{"job", id}, {"tasks", node->tasks.size()}});
  v1::Job view = node->rec.job();
  *view.mutable_progress() = ProgressLocked(node, now);
  return view;
}

absl::StatusOr<v1::Job> Scheduler::CancelJobLocked(absl::string_view job_id, absl::string_view reason) {
    JobNode* job = FindJobLocked(job_id);
  if (job == nullptr) return absl::NotFoundError(absl::StrCat("no job ", job_id));
  if (job->phase() == v1::JOB_PHASE_CANCELLED) return job->rec.job();
  if (job->terminal()) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " already ", PhaseName(job->phase()), "; nothing to cancel"));
  }
  const absl::Time now = clock_->Now();
  Batch b;
  FinishJobLocked(b, job, v1::JOB_PHASE_CANCELLED,
                  absl::CancelledError(reason.empty() ? "cancelled by the client" : reason), now);
  const std::string id(job_id);
  VPTQ_RETURN_IF_ERROR(CommitLocked(b));
  log::Info("job cancelled", {{"job", id}});
  return FindJobLocked(id)->rec.job();
}

absl::StatusOr<v1::Job> Scheduler::GetJob(absl::string_view job_id) const {
  absl::MutexLock lock(&mu_);
  JobNode* job = FindJobLocked(job_id);
  if (job == nullptr) return absl::NotFoundError(absl::StrCat("no job ", job_id));
  v1::Job view = job->rec.job();
  *view.mutable_progress() = ProgressLocked(job, clock_->Now());
  return view;
}

absl::StatusOr<std::vector<v1::TaskStatus>> Scheduler::GetTasks(absl::string_view job_id) const {
  {
    absl::MutexLock lock(&mu_);
    JobNode* job = FindJobLocked(job_id);
    if (job == nullptr) return absl::NotFoundError(absl::StrCat("no job ", job_id));
    if (job->loaded) {
      std::vector<v1::TaskStatus> out;
      out.reserve(job->tasks.size());
      for (const auto& t : job->tasks) out.push_back(TaskStatusFromRecord(t->rec));
      return out;
    }
  }
  // A finished job: its records in the store are final.
  VPTQ_ASSIGN_OR_RETURN(std::vector<v1::TaskRecord> records, store_->LoadTasks(job_id));
  std::vector<v1::TaskStatus> out;
  out.reserve(records.size());
  for (const auto& r : records) out.push_back(TaskStatusFromRecord(r));
  return out;
}

absl::StatusOr<JobPage> Scheduler::ListJobs(int page_size, absl::string_view page_token,
                                            const std::vector<v1::JobPhase>& phases) const {
  if (page_size <= 0) page_size = 100;
  page_size = std::min(page_size, 1000);
  int64_t before = INT64_MAX;
  if (!page_token.empty() && !absl::SimpleAtoi(page_token, &before)) {
    return absl::InvalidArgumentError(absl::StrCat("page_token '", page_token, "' is not valid"));
  }
  absl::MutexLock lock(&mu_);
  std::vector<const JobNode*> matching;
  for (const auto& [id, job] : jobs_) {
    if (job->rec.submit_seq() >= before) continue;
    if (!phases.empty() &&
        std::find(phases.begin(), phases.end(), job->phase()) == phases.end()) {
      continue;
    }
    matching.push_back(job.get());
  }
  std::sort(matching.begin(), matching.end(), [](const JobNode* a, const JobNode* b) {
    return a->rec.submit_seq() > b->rec.submit_seq();
  });
  JobPage page;
  const absl::Time now = clock_->Now();
  for (const JobNode* job : matching) {
    if (static_cast<int>(page.jobs.size()) == page_size) {
      page.next_page_token = absl::StrCat(matching[page_size - 1]->rec.submit_seq());
      break;
    }
    v1::Job view = job->rec.job();
    *view.mutable_progress() = ProgressLocked(job, now);
    page.jobs.push_back(std::move(view));
  }
  return page;
}

std::optional<std::string> Scheduler::JobForRequest(absl::string_view request_id) const {
  absl::MutexLock lock(&mu_);
  auto it = request_ids_.find(request_id);
  if (it == request_ids_.end()) return std::nullopt;
  return it->second;
}

template <typename T>
T Scheduler::Durable(const std::function<T()>& locked) {
  int64_t pending = 0;
  T result = [&] {
    absl::MutexLock lock(&mu_);
    T r = locked();
    pending = pending_sync_;
    pending_sync_ = 0;
    return r;
  }();
  if (absl::Status s = SyncIfPending(pending); !s.ok()) return s;
  return result;
}

absl::StatusOr<v1::Job> Scheduler::AddJob(v1::JobRecord job, std::vector<v1::TaskRecord> tasks) {
  return Durable<absl::StatusOr<v1::Job>>(
      [&] { return AddJobLocked(std::move(job), std::move(tasks)); });
}

absl::StatusOr<v1::Job> Scheduler::CancelJob(absl::string_view job_id, absl::string_view reason) {
  return Durable<absl::StatusOr<v1::Job>>([&] { return CancelJobLocked(job_id, reason); });
}

absl::StatusOr<CompleteResult> Scheduler::Complete(absl::string_view worker_id,
                                                   absl::string_view task_id,
                                                   absl::string_view lease_id,
                                                   std::vector<v1::ArtifactMeta> outputs,
                                                   const std::map<std::string, double>& metrics,
                                                   std::vector<ArtifactChunk> chunks) {
  return Durable<absl::StatusOr<CompleteResult>>([&] {
    return CompleteLocked(worker_id, task_id, lease_id, std::move(outputs), metrics,
                          std::move(chunks));
  });
}

absl::StatusOr<bool> Scheduler::Fail(absl::string_view worker_id, absl::string_view task_id,
                                     absl::string_view lease_id, const absl::Status& status) {
  return Durable<absl::StatusOr<bool>>(
      [&] { return FailLocked(worker_id, task_id, lease_id, status); });
}

absl::StatusOr<std::optional<v1::TaskAssignment>> Scheduler::Lease(
    absl::string_view worker_id, const v1::WorkerCapabilities& caps) {
  absl::MutexLock lock(&mu_);
  return LeaseLocked(worker_id, caps);
}

absl::StatusOr<std::optional<v1::TaskAssignment>> Scheduler::LeaseWait(
    absl::string_view worker_id, const v1::WorkerCapabilities& caps, absl::Duration max_wait) {
  absl::MutexLock lock(&mu_);
  const absl::Time deadline = absl::Now() + max_wait;
  while (true) {
    if (shutdown_) return std::optional<v1::TaskAssignment>();
    auto r = LeaseLocked(worker_id, caps);
    if (!r.ok() || r->has_value()) return r;
    const absl::Time now = absl::Now();
    if (now >= deadline) return r;
    // Wake at least every 250 ms so backoffs that fall due are seen.
    work_cv_.WaitWithTimeout(&mu_, std::min(deadline - now, absl::Milliseconds(250)));
  }
}

absl::StatusOr<std::optional<v1::TaskAssignment>> Scheduler::LeaseLocked(
    absl::string_view worker_id, const v1::WorkerCapabilities& caps) {
  if (worker_id.empty()) return absl::InvalidArgumentError("worker_id is required");
  const absl::Time now = clock_->Now();
  TouchWorkerLocked(worker_id, now);
  PromoteDueLocked(now);
  TaskNode* t = nullptr;
  for (const ReadyKey& key : ready_) {
    if (EligibleLocked(key.node, worker_id, caps)) {
      t = key.node;
      break;
    }
  }
  if (t == nullptr) return std::optional<v1::TaskAssignment>();
  DequeueLocked(t);
  JobNode* job = t->job;
  t->rec.set_attempt(t->rec.attempt() + 1);
  t->rec.set_lease_id(NewLeaseIdLocked());
  t->rec.set_worker_id(std::string(worker_id));
  t->rec.set_lease_start_unix_ms(ToUnixMs(now));
  t->rec.set_lease_deadline_unix_ms(ToUnixMs(now + options_.lease));
  t->rec.set_not_before_unix_ms(0);
  t->rec.set_state(v1::TASK_STATE_LEASED);
  t->leased = true;
  t->fraction_done = 0;
  leases_.insert({t->rec.lease_deadline_unix_ms(), t});
  job->running++;
  workers_[worker_id].leases++;

  Batch b;
  b.Task(t);
  if (job->phase() == v1::JOB_PHASE_PENDING) {
    job->rec.mutable_job()->set_phase(v1::JOB_PHASE_RUNNING);
    job->rec.mutable_job()->set_start_unix_ms(ToUnixMs(now));
    v1::JobEvent started;
    started.set_type(v1::EVENT_TYPE_JOB_STARTED);
    Emit(b, job, std::move(started), nullptr, now);
  }
  v1::JobEvent e;
  e.set_type(v1::EVENT_TYPE_TASK_LEASED);
  Emit(b, job, std::move(e), t, now);
  b.m.sync = false;
  VPTQ_RETURN_IF_ERROR(CommitLocked(b));
  return std::optional<v1::TaskAssignment>(AssignmentLocked(t));
}

absl::StatusOr<Scheduler::TaskNode*> Scheduler::LeasedTaskLocked(absl::string_view worker_id,
                                                                 absl::string_view task_id,
                                                                 absl::string_view lease_id) const {
  TaskNode* t = FindTaskLocked(task_id);
  if (t == nullptr) {
    JobNode* job = FindJobLocked(JobIdOfTask(task_id));
    if (job != nullptr && job->terminal()) {
      return absl::AbortedError(absl::StrCat("job ", job->rec.job().job_id(), " is ",
                                             PhaseName(job->phase()), "; stop task ", task_id));
    }
    return absl::NotFoundError(absl::StrCat("no task ", task_id));
  }
  if (lease_id.empty() || t->rec.lease_id() != lease_id || t->rec.worker_id() != worker_id) {
    return absl::AbortedError(absl::StrCat("lease ", lease_id, " of worker ", worker_id,
                                           " on task ", t->rec.name(),
                                           " is no longer valid (expired or re-leased)"));
  }
  return t;
}

absl::StatusOr<v1::HeartbeatResponse> Scheduler::Heartbeat(absl::string_view worker_id,
                                                           absl::string_view task_id,
                                                           absl::string_view lease_id,
                                                           double fraction_done) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  TouchWorkerLocked(worker_id, now);
  v1::HeartbeatResponse resp;
  TaskNode* t = FindTaskLocked(task_id);
  if (t == nullptr) {
    JobNode* job = FindJobLocked(JobIdOfTask(task_id));
    if (job != nullptr && (job->phase() == v1::JOB_PHASE_CANCELLED ||
                           job->phase() == v1::JOB_PHASE_FAILED)) {
      resp.set_cancelled(true);
      return resp;
    }
  }
  VPTQ_ASSIGN_OR_RETURN(t, LeasedTaskLocked(worker_id, task_id, lease_id));
  if (t->rec.state() == v1::TASK_STATE_CANCELLED) {
    resp.set_cancelled(true);
    return resp;
  }
  if (t->rec.state() != v1::TASK_STATE_LEASED) {
    return absl::AbortedError(absl::StrCat("task ", t->rec.name(), " is no longer leased"));
  }
  leases_.erase({t->rec.lease_deadline_unix_ms(), t});
  t->rec.set_lease_deadline_unix_ms(ToUnixMs(now + options_.lease));
  leases_.insert({t->rec.lease_deadline_unix_ms(), t});
  t->fraction_done = fraction_done;
  Batch b;
  b.Task(t);
  b.m.sync = false;
  const int64_t deadline = t->rec.lease_deadline_unix_ms();
  VPTQ_RETURN_IF_ERROR(CommitLocked(b));
  resp.set_lease_deadline_unix_ms(deadline);
  return resp;
}

absl::StatusOr<LeaseInfo> Scheduler::CheckLease(absl::string_view worker_id,
                                                absl::string_view task_id,
                                                absl::string_view lease_id) const {
  absl::MutexLock lock(&mu_);
  VPTQ_ASSIGN_OR_RETURN(TaskNode * t, LeasedTaskLocked(worker_id, task_id, lease_id));
  LeaseInfo info;
  info.job_id = t->rec.job_id();
  info.attempt = t->rec.attempt();
  info.required_outputs.assign(t->rec.required_outputs().begin(),
                               t->rec.required_outputs().end());
  if (t->rec.state() == v1::TASK_STATE_SUCCEEDED) {
    info.already_completed = true;
  } else if (t->rec.state() != v1::TASK_STATE_LEASED) {
    return absl::AbortedError(absl::StrCat("task ", t->rec.name(), " is no longer leased"));
  }
  return info;
}

absl::StatusOr<CompleteResult> Scheduler::CompleteLocked(absl::string_view worker_id,
                                                   absl::string_view task_id,
                                                   absl::string_view lease_id,
                                                   std::vector<v1::ArtifactMeta> outputs,
                                                   const std::map<std::string, double>& metrics,
                                                   std::vector<ArtifactChunk> chunks) {
    const absl::Time now = clock_->Now();
  TouchWorkerLocked(worker_id, now);
  VPTQ_ASSIGN_OR_RETURN(TaskNode * t, LeasedTaskLocked(worker_id, task_id, lease_id));
  CompleteResult result;
  if (t->rec.state() == v1::TASK_STATE_SUCCEEDED) {
    result.duplicate = true;
    result.outputs.assign(t->rec.outputs().begin(), t->rec.outputs().end());
    return result;
  }
  if (t->rec.state() != v1::TASK_STATE_LEASED) {
    return absl::AbortedError(absl::StrCat("task ", t->rec.name(), " is no longer leased"));
  }
  std::set<std::string> names;
  for (const auto& o : outputs) {
    if (!names.insert(o.ref().name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("task ", t->rec.name(), ": output '", o.ref().name(), "' sent twice"));
    }
  }
  for (const auto& r : t->rec.required_outputs()) {
    if (!names.count(r)) {
      return absl::InvalidArgumentError(
          absl::StrCat("task ", t->rec.name(), ": required output '", r, "' is missing"));
    }
  }

  JobNode* job = t->job;
  Batch b;
  ReleaseLeaseLocked(t);
  t->rec.set_state(v1::TASK_STATE_SUCCEEDED);
  t->rec.clear_outputs();
  for (auto& o : outputs) *t->rec.add_outputs() = o.ref();
  for (const auto& [k, v] : metrics) (*t->rec.mutable_metrics())[k] = v;
  const double run_seconds =
      absl::ToDoubleSeconds(now - FromUnixMs(t->rec.lease_start_unix_ms()));
  t->rec.set_run_seconds(run_seconds);
  t->rec.set_finish_unix_ms(ToUnixMs(now));
  t->rec.clear_last_error();
  b.Task(t);
  b.m.commit_artifacts = std::move(outputs);
  b.m.put_chunks = std::move(chunks);

  job->done++;
  job->cost_done += t->rec.cost();
  job->remaining[KindIndex(t->rec.kind())]--;
  if (t->rec.linear()) job->linears_done++;
  v1::Job* j = job->rec.mutable_job();
  v1::Quality* q = j->mutable_quality();
  auto metric = [&](const char* key, double* out) {
    auto it = metrics.find(key);
    if (it == metrics.end()) return false;
    *out = it->second;
    return true;
  };
  double v = 0;
  switch (t->rec.kind()) {
    case v1::TASK_KIND_QUANTIZE:
      if (metric("proxy_loss", &v)) {
        job->proxy_sum += v;
        job->proxy_max = std::max(job->proxy_max, v);
        job->proxy_n++;
        q->set_mean_proxy_loss(job->proxy_sum / job->proxy_n);
        q->set_max_proxy_loss(job->proxy_max);
      }
      break;
    case v1::TASK_KIND_ASSEMBLE:
      if (metric("bits_per_weight", &v)) q->set_bits_per_weight(v);
      if (metric("bits_per_weight_linears", &v)) q->set_bits_per_weight_linears(v);
      j->clear_outputs();
      for (const auto& o : t->rec.outputs()) {
        v1::OutputFile* f = j->add_outputs();
        f->set_path(o.name());
        *f->mutable_artifact() = o;
      }
      break;
    case v1::TASK_KIND_EVAL:
      if (metric("perplexity", &v)) q->set_perplexity(v);
      if (metric("perplexity_original", &v)) q->set_perplexity_original(v);
      if (metric("kl_divergence", &v)) q->set_kl_divergence(v);
      if (metric("top1_agreement", &v)) q->set_top1_agreement(v);
      q->set_evaluated(true);
      break;
    default:
      break;
  }

  for (TaskNode* c : t->consumers) {
    if (--c->pending == 0 && c->rec.state() == v1::TASK_STATE_BLOCKED) {
      c->rec.set_state(v1::TASK_STATE_READY);
      EnqueueLocked(c, now);
      b.signal_work = true;
    }
  }
  CollectGarbageLocked(b, t);
  UpdateConditionsLocked(job, now);
  v1::JobEvent e;
  e.set_type(v1::EVENT_TYPE_TASK_SUCCEEDED);
  Emit(b, job, std::move(e), t, now);
  if (job->done == static_cast<int>(job->tasks.size())) {
    FinishJobLocked(b, job, v1::JOB_PHASE_SUCCEEDED, absl::OkStatus(), now);
  }
  b.m.sync = true;
  const v1::TaskKind kind = t->rec.kind();
  b.After([this, kind, run_seconds] {
    if (observer_ != nullptr) observer_->OnTaskFinished(kind, "succeeded", run_seconds);
  });
  result.outputs.assign(t->rec.outputs().begin(), t->rec.outputs().end());
  VPTQ_RETURN_IF_ERROR(CommitLocked(b));
  return result;
}

absl::StatusOr<bool> Scheduler::FailLocked(absl::string_view worker_id, absl::string_view task_id,
                                     absl::string_view lease_id, const absl::Status& status) {
  if (status.ok()) {
    return absl::InvalidArgumentError("FailTask needs a non-OK status code");
  }
    const absl::Time now = clock_->Now();
  TouchWorkerLocked(worker_id, now);
  TaskNode* t = FindTaskLocked(task_id);
  if (t == nullptr) {
    JobNode* job = FindJobLocked(JobIdOfTask(task_id));
    if (job != nullptr && job->terminal()) return false;  // acknowledged: nothing to retry
  }
  VPTQ_ASSIGN_OR_RETURN(t, LeasedTaskLocked(worker_id, task_id, lease_id));
  if (t->rec.state() == v1::TASK_STATE_CANCELLED) return false;
  if (t->rec.state() != v1::TASK_STATE_LEASED) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", t->rec.name(), " is not leased (already finished)"));
  }
  Batch b;
  ReleaseLeaseLocked(t);
  const bool will_retry = RetryOrFailLocked(b, t, status, worker_id, now, "");
  b.m.sync = true;
  VPTQ_RETURN_IF_ERROR(CommitLocked(b));
  return will_retry;
}

void Scheduler::Tick() {
  int64_t pending = 0;
  {
    absl::MutexLock lock(&mu_);
    TickLocked();
    pending = pending_sync_;
    pending_sync_ = 0;
  }
  SyncIfPending(pending).IgnoreError();  // logged; the next commit retries the sync
}

void Scheduler::TickLocked() {
  const absl::Time now = clock_->Now();
  const int64_t now_ms = ToUnixMs(now);
  while (!leases_.empty() && leases_.begin()->first <= now_ms) {
    TaskNode* t = leases_.begin()->second;
    const std::string worker = t->rec.worker_id();
    Batch b;
    ReleaseLeaseLocked(t);
    RetryOrFailLocked(b, t,
                      absl::AbortedError(absl::StrCat("lease expired: worker ", worker,
                                                      " sent no heartbeat within ",
                                                      absl::FormatDuration(options_.lease))),
                      worker, now, "lease_expired");
    b.m.sync = true;
    if (!CommitLocked(b).ok()) break;  // state was reloaded; the next Tick retries
  }
  PromoteDueLocked(now);
  // A task excluded from every live worker would starve: let it run anywhere.
  if (!excluded_.empty()) {
    std::vector<std::string> live;
    for (const auto& [id, w] : workers_) {
      if (now - w.last_seen <= 3 * options_.lease) live.push_back(id);
    }
    for (TaskNode* t : excluded_) {
      bool all = !live.empty();
      for (const auto& w : live) {
        if (std::find(t->rec.excluded_workers().begin(), t->rec.excluded_workers().end(), w) ==
            t->rec.excluded_workers().end()) {
          all = false;
          break;
        }
      }
      if (all) t->rec.clear_excluded_workers();
    }
    for (auto it = excluded_.begin(); it != excluded_.end();) {
      if ((*it)->rec.excluded_workers_size() == 0) {
        it = excluded_.erase(it);
        work_cv_.SignalAll();
      } else {
        ++it;
      }
    }
  }
  ReportGaugesLocked(now);
}

bool Scheduler::WaitForEvents(absl::string_view job_id, int64_t after_sequence,
                              absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (shutdown_) return false;
    JobNode* job = FindJobLocked(job_id);
    if (job == nullptr) return false;
    if (job->last_seq > after_sequence) return true;
    if (events_cv_.WaitWithDeadline(&mu_, deadline)) {
      job = FindJobLocked(job_id);
      return job != nullptr && job->last_seq > after_sequence;
    }
  }
}

void Scheduler::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
  work_cv_.SignalAll();
  events_cv_.SignalAll();
}

int64_t Scheduler::ready_depth() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(ready_.size() + delayed_.size());
}

int64_t Scheduler::artifact_bytes() const {
  absl::MutexLock lock(&mu_);
  return artifact_bytes_;
}

bool Scheduler::TakeReclaimRequest() {
  absl::MutexLock lock(&mu_);
  if (deleted_since_reclaim_ < std::max(options_.reclaim_after_bytes, artifact_bytes_)) {
    return false;
  }
  deleted_since_reclaim_ = 0;
  return true;
}

}  // namespace vptq::coordinator
