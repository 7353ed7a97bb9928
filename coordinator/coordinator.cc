#include "coordinator/coordinator.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/hf_config.h"
#include "common/logging.h"
#include "common/sha256.h"
#include "common/status.h"
#include "coordinator/artifact_writer.h"
#include "coordinator/config.h"
#include "coordinator/spec_validation.h"

namespace vptq::coordinator {
namespace {

bool IsTerminalEvent(v1::EventType t) {
  return t == v1::EVENT_TYPE_JOB_SUCCEEDED || t == v1::EVENT_TYPE_JOB_FAILED ||
         t == v1::EVENT_TYPE_JOB_CANCELLED;
}

bool IsTerminalPhase(v1::JobPhase p) {
  return p == v1::JOB_PHASE_SUCCEEDED || p == v1::JOB_PHASE_FAILED ||
         p == v1::JOB_PHASE_CANCELLED;
}

std::string RandomHex(int digits) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::string out;
  while (static_cast<int>(out.size()) < digits) out += absl::StrFormat("%016x", rng());
  return out.substr(0, digits);
}

absl::Status CheckOutputName(absl::string_view name) {
  if (name.empty() || name.size() > 1024 || name.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("output names must be 1-1024 bytes without NUL");
  }
  return absl::OkStatus();
}

}  // namespace

Coordinator::Coordinator(std::unique_ptr<JobStore> store, CoordinatorOptions options,
                         PathPolicy paths)
    : options_(std::move(options)), paths_(std::move(paths)), store_(std::move(store)) {}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Open(std::unique_ptr<JobStore> store,
                                                               CoordinatorOptions options) {
  ApplyConfigDefaults(&options.config);
  VPTQ_RETURN_IF_ERROR(ValidateCoordinatorConfig(options.config));
  std::vector<std::string> in(options.config.input_roots().begin(),
                              options.config.input_roots().end());
  std::vector<std::string> out(options.config.output_roots().begin(),
                               options.config.output_roots().end());
  VPTQ_ASSIGN_OR_RETURN(PathPolicy paths, PathPolicy::Create(in, out));
  if (options.clock == nullptr) options.clock = RealClock();
  std::unique_ptr<Coordinator> c(new Coordinator(std::move(store), options, std::move(paths)));

  // Uploads a crash interrupted are garbage: no task state refers to them.
  VPTQ_ASSIGN_OR_RETURN(std::vector<std::string> staged, c->store_->ListStagedArtifacts());
  for (const std::string& id : staged) {
    VPTQ_RETURN_IF_ERROR(c->store_->AbortArtifact(id, -1));
  }
  c->scheduler_ = std::make_unique<Scheduler>(c->store_.get(), c->options_.clock,
                                              SchedulerOptionsFromConfig(c->options_.config),
                                              c->options_.observer);
  VPTQ_RETURN_IF_ERROR(c->scheduler_->Recover());
  if (c->options_.run_ticker) {
    c->ticker_ = std::thread([p = c.get()] { p->TickerLoop(); });
    c->reclaimer_ = std::thread([p = c.get()] { p->ReclaimLoop(); });
  }
  log::Info("coordinator recovered", {{"staged_uploads_dropped", staged.size()}});
  return c;
}

Coordinator::~Coordinator() {
  BeginDrain();
  {
    absl::MutexLock lock(&mu_);
    stop_ticker_ = true;
    ticker_cv_.SignalAll();
  }
  if (ticker_.joinable()) ticker_.join();
  if (reclaimer_.joinable()) reclaimer_.join();
  scheduler_.reset();
  store_.reset();
}

bool Coordinator::WaitForStop(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  if (stop_ticker_) return true;
  ticker_cv_.WaitWithTimeout(&mu_, timeout);
  return stop_ticker_;
}

void Coordinator::TickerLoop() {
  while (!WaitForStop(options_.tick_interval)) scheduler_->Tick();
}

void Coordinator::ReclaimLoop() {
  // Its own thread: a compaction takes seconds and must not hold up leases.
  while (!WaitForStop(5 * options_.tick_interval)) {
    if (!scheduler_->TakeReclaimRequest()) continue;
    absl::Status s = ReclaimSpace();
    if (!s.ok()) log::Warn("reclaiming store space failed", {{"error", std::string(s.message())}});
  }
}

absl::Status Coordinator::ReclaimSpace() {
  const absl::Time start = absl::Now();
  absl::Status s = store_->ReclaimSpace();
  if (s.ok()) {
    log::Info("store space reclaimed",
              {{"seconds", absl::ToDoubleSeconds(absl::Now() - start)},
               {"live_artifact_bytes", scheduler_->artifact_bytes()}});
  }
  return s;
}

void Coordinator::BeginDrain() {
  if (draining_.exchange(true)) return;
  if (scheduler_) scheduler_->Shutdown();
  log::Info("coordinator draining");
}

std::string Coordinator::NewJobId() {
  return absl::StrCat("job-", absl::FormatTime("%Y%m%d-%H%M%S", options_.clock->Now(),
                                               absl::UTCTimeZone()),
                      "-", RandomHex(6));
}

// ------------------------------------------------------------------ client --

absl::StatusOr<v1::SubmitJobResponse> Coordinator::SubmitJob(const v1::SubmitJobRequest& request) {
  if (draining()) return absl::UnavailableError("coordinator is shutting down; submit again later");
  v1::JobSpec spec = request.spec();
  std::vector<std::string> warnings;
  VPTQ_RETURN_IF_ERROR(NormalizeJobSpec(&spec, &warnings));
  VPTQ_RETURN_IF_ERROR(ResolveJobSpecPaths(&spec, paths_));
  auto layout = ReadModelLayout(spec.model().path());
  if (!layout.ok()) return Annotate(layout.status(), "model '", spec.model().path(), "'");
  // The stock kernels take fp16: an fp32 model is written in fp16 unless the
  // spec names a dtype. Resolved here, once, so the embedded and the cluster
  // paths store the same spec and write the same bytes.
  if (spec.quant().output_dtype().empty() && layout->dtype == DType::kF32) {
    spec.mutable_quant()->set_output_dtype("fp16");
  }
  return SubmitNormalized(request, std::move(spec), std::move(warnings),
                          PlanModelFromLayout(*layout));
}

absl::StatusOr<v1::SubmitJobResponse> Coordinator::SubmitPlannedJob(
    const v1::SubmitJobRequest& request, const PlanModel& model) {
  if (draining()) return absl::UnavailableError("coordinator is shutting down; submit again later");
  v1::JobSpec spec = request.spec();
  std::vector<std::string> warnings;
  VPTQ_RETURN_IF_ERROR(NormalizeJobSpec(&spec, &warnings));
  return SubmitNormalized(request, std::move(spec), std::move(warnings), model);
}

absl::StatusOr<v1::SubmitJobResponse> Coordinator::SubmitNormalized(
    const v1::SubmitJobRequest& request, v1::JobSpec spec, std::vector<std::string> warnings,
    const PlanModel& model) {
  absl::MutexLock lock(&submit_mu_);
  if (!request.request_id().empty()) {
    if (auto existing = scheduler_->JobForRequest(request.request_id())) {
      VPTQ_ASSIGN_OR_RETURN(v1::Job job, scheduler_->GetJob(*existing));
      v1::SubmitJobResponse resp;
      resp.set_job_id(job.job_id());
      *resp.mutable_job() = std::move(job);
      return resp;
    }
  }
  const std::string job_id = NewJobId();
  PlanOptions plan;
  plan.num_shards = spec.calibration().num_shards();
  plan.num_sequences = spec.calibration().num_sequences();
  plan.sequence_length = spec.calibration().sequence_length();
  plan.eval = spec.has_eval();
  plan.heavy_device = spec.device_kind();
  VPTQ_ASSIGN_OR_RETURN(std::vector<v1::TaskRecord> tasks, PlanJob(job_id, model, plan));

  v1::JobRecord record;
  v1::Job* job = record.mutable_job();
  job->set_job_id(job_id);
  *job->mutable_spec() = std::move(spec);
  job->set_create_unix_ms(ToUnixMs(options_.clock->Now()));
  job->set_request_id(request.request_id());
  for (auto& w : warnings) job->add_warnings(std::move(w));
  if (job->warnings_size() > 0) {
    v1::Condition* c = job->add_conditions();
    c->set_type("OutsideKernelEnvelope");
    c->set_status(true);
    c->set_reason("SpecOutsideStockKernels");
    c->set_message(job->warnings(0));
    c->set_last_transition_unix_ms(job->create_unix_ms());
  }
  VPTQ_ASSIGN_OR_RETURN(v1::Job added, scheduler_->AddJob(std::move(record), std::move(tasks)));
  v1::SubmitJobResponse resp;
  resp.set_job_id(job_id);
  *resp.mutable_job() = std::move(added);
  return resp;
}

absl::StatusOr<v1::GetJobResponse> Coordinator::GetJob(const v1::GetJobRequest& request) {
  if (request.job_id().empty()) return absl::InvalidArgumentError("job_id is required");
  v1::GetJobResponse resp;
  VPTQ_ASSIGN_OR_RETURN(*resp.mutable_job(), scheduler_->GetJob(request.job_id()));
  if (request.include_tasks()) {
    VPTQ_ASSIGN_OR_RETURN(std::vector<v1::TaskStatus> tasks,
                          scheduler_->GetTasks(request.job_id()));
    for (auto& t : tasks) *resp.add_tasks() = std::move(t);
  }
  return resp;
}

absl::StatusOr<v1::ListJobsResponse> Coordinator::ListJobs(const v1::ListJobsRequest& request) {
  std::vector<v1::JobPhase> phases;
  for (int p : request.phases()) phases.push_back(static_cast<v1::JobPhase>(p));
  VPTQ_ASSIGN_OR_RETURN(JobPage page,
                        scheduler_->ListJobs(request.page_size(), request.page_token(), phases));
  v1::ListJobsResponse resp;
  for (auto& j : page.jobs) *resp.add_jobs() = std::move(j);
  resp.set_next_page_token(page.next_page_token);
  return resp;
}

absl::StatusOr<v1::CancelJobResponse> Coordinator::CancelJob(const v1::CancelJobRequest& request) {
  if (request.job_id().empty()) return absl::InvalidArgumentError("job_id is required");
  v1::CancelJobResponse resp;
  VPTQ_ASSIGN_OR_RETURN(*resp.mutable_job(),
                        scheduler_->CancelJob(request.job_id(), request.reason()));
  return resp;
}

absl::Status Coordinator::WatchJob(const v1::WatchJobRequest& request,
                                   const std::function<bool(const v1::WatchJobResponse&)>& write,
                                   const std::function<bool()>& cancelled) {
  if (request.job_id().empty()) return absl::InvalidArgumentError("job_id is required");
  if (request.after_sequence() < 0) {
    return absl::InvalidArgumentError("after_sequence must be >= 0");
  }
  int64_t after = request.after_sequence();
  while (true) {
    VPTQ_ASSIGN_OR_RETURN(v1::Job job, scheduler_->GetJob(request.job_id()));
    VPTQ_ASSIGN_OR_RETURN(std::vector<v1::JobEvent> events,
                          store_->ReadEvents(request.job_id(), after, 256));
    for (auto& e : events) {
      v1::WatchJobResponse resp;
      const bool terminal = IsTerminalEvent(e.type());
      after = e.sequence();
      *resp.mutable_event() = std::move(e);
      if (!write(resp)) return absl::CancelledError("watcher went away");
      if (terminal) return absl::OkStatus();
    }
    if (!events.empty()) continue;
    if (IsTerminalPhase(job.phase()) && after >= job.last_event_sequence()) {
      return absl::OkStatus();
    }
    if (draining()) {
      return absl::UnavailableError(absl::StrCat(
          "coordinator is shutting down; watch again with after_sequence=", after));
    }
    if (cancelled && cancelled()) return absl::CancelledError("watcher went away");
    scheduler_->WaitForEvents(request.job_id(), after, absl::Seconds(1));
  }
}

absl::Status Coordinator::StreamArtifact(
    const v1::ArtifactMeta& meta, int64_t offset,
    const std::function<bool(const v1::ArtifactStreamResponse&)>& write) {
  const int64_t size = meta.ref().size_bytes();
  if (offset < 0 || offset > size) {
    return absl::OutOfRangeError(absl::StrCat("offset ", offset, " is outside artifact ",
                                              meta.ref().artifact_id(), " of ", size, " bytes"));
  }
  v1::ArtifactStreamResponse info;
  *info.mutable_info() = meta.ref();
  if (!write(info)) return absl::CancelledError("receiver went away");
  while (offset < size) {
    VPTQ_ASSIGN_OR_RETURN(std::string bytes,
                          ReadArtifactRange(*store_, meta, offset, kStreamChunkBytes));
    if (bytes.empty()) return absl::DataLossError("artifact ended early");
    v1::ArtifactStreamResponse chunk;
    chunk.mutable_chunk()->set_offset(offset);
    offset += static_cast<int64_t>(bytes.size());
    chunk.mutable_chunk()->set_data(std::move(bytes));
    if (!write(chunk)) return absl::CancelledError("receiver went away");
  }
  return absl::OkStatus();
}

absl::Status Coordinator::DownloadArtifact(
    const v1::DownloadArtifactRequest& request,
    const std::function<bool(const v1::ArtifactStreamResponse&)>& write) {
  if (request.job_id().empty() || request.artifact_id().empty()) {
    return absl::InvalidArgumentError("job_id and artifact_id are required");
  }
  auto meta = store_->GetArtifact(request.artifact_id());
  if (!meta.ok() || meta->job_id() != request.job_id()) {
    return absl::NotFoundError(absl::StrCat("job ", request.job_id(), " has no artifact ",
                                            request.artifact_id()));
  }
  return StreamArtifact(*meta, request.offset(), write);
}

// ------------------------------------------------------------------ worker --

absl::StatusOr<v1::LeaseTaskResponse> Coordinator::LeaseTask(const v1::LeaseTaskRequest& request) {
  if (draining()) return absl::UnavailableError("coordinator is shutting down; lease again later");
  const int64_t wait_ms =
      std::clamp<int64_t>(request.max_wait_ms(), 0, options_.config.lease_poll_max_ms());
  VPTQ_ASSIGN_OR_RETURN(std::optional<v1::TaskAssignment> task,
                        wait_ms > 0 ? scheduler_->LeaseWait(request.worker_id(),
                                                            request.capabilities(),
                                                            absl::Milliseconds(wait_ms))
                                    : scheduler_->Lease(request.worker_id(),
                                                        request.capabilities()));
  v1::LeaseTaskResponse resp;
  if (task.has_value()) {
    *resp.mutable_task() = std::move(*task);
  } else {
    if (draining()) return absl::UnavailableError("coordinator is shutting down; lease again later");
    resp.set_retry_after_ms(wait_ms > 0 ? 0 : 1000);
  }
  return resp;
}

absl::StatusOr<v1::HeartbeatResponse> Coordinator::Heartbeat(const v1::HeartbeatRequest& request) {
  return scheduler_->Heartbeat(request.worker_id(), request.task_id(), request.lease_id(),
                               request.fraction_done());
}

absl::Status Coordinator::FetchArtifact(
    const v1::DownloadArtifactRequest& request,
    const std::function<bool(const v1::ArtifactStreamResponse&)>& write) {
  if (request.artifact_id().empty()) return absl::InvalidArgumentError("artifact_id is required");
  auto meta = store_->GetArtifact(request.artifact_id());
  if (!meta.ok()) return meta.status();
  if (!request.job_id().empty() && meta->job_id() != request.job_id()) {
    return absl::NotFoundError(absl::StrCat("job ", request.job_id(), " has no artifact ",
                                            request.artifact_id()));
  }
  return StreamArtifact(*meta, request.offset(), write);
}

absl::StatusOr<v1::FailTaskResponse> Coordinator::FailTask(const v1::FailTaskRequest& request) {
  const int code = request.status().code();
  if (code <= 0 || code > 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("status.code ", code, " is not a failure code (1..16)"));
  }
  VPTQ_ASSIGN_OR_RETURN(
      bool will_retry,
      scheduler_->Fail(request.worker_id(), request.task_id(), request.lease_id(),
                       absl::Status(static_cast<absl::StatusCode>(code), request.status().message())));
  v1::FailTaskResponse resp;
  resp.set_will_retry(will_retry);
  return resp;
}

absl::StatusOr<v1::CompleteTaskResponse> Coordinator::CompleteTask(
    const std::function<bool(v1::CompleteTaskRequest*)>& read) {
  v1::CompleteTaskRequest msg;
  if (!read(&msg) || !msg.has_header()) {
    return absl::InvalidArgumentError("CompleteTask must start with a header message");
  }
  const v1::CompleteTaskHeader header = msg.header();
  VPTQ_ASSIGN_OR_RETURN(LeaseInfo lease,
                        scheduler_->CheckLease(header.worker_id(), header.task_id(),
                                               header.lease_id()));
  {
    absl::MutexLock lock(&mu_);
    if (!uploads_.insert(header.lease_id()).second) {
      return absl::AbortedError("another CompleteTask for this lease is in progress");
    }
  }
  std::vector<std::unique_ptr<ArtifactWriter>> staged;
  std::vector<v1::ArtifactMeta> metas;
  std::vector<ArtifactChunk> tails;  // written by the commit
  bool committed = false;
  auto cleanup = [&] {
    if (!committed) {
      for (auto& w : staged) w->Abort();
    }
    absl::MutexLock lock(&mu_);
    uploads_.erase(header.lease_id());
  };
  struct Cleanup {
    std::function<void()> fn;
    ~Cleanup() { fn(); }
  } guard{cleanup};

  const std::string upload_id = RandomHex(8);
  const int64_t chunk_bytes = options_.config.artifact_chunk_bytes();
  std::map<std::string, double> metrics;
  std::set<std::string> names;
  ArtifactWriter* current = nullptr;
  std::string current_name;
  int64_t current_size = -1;
  bool got_summary = false;
  while (read(&msg)) {
    if (got_summary) return absl::InvalidArgumentError("nothing may follow the summary");
    switch (msg.part_case()) {
      case v1::CompleteTaskRequest::kOutputBegin: {
        if (current != nullptr) {
          return absl::InvalidArgumentError(
              absl::StrCat("output '", current_name, "' began before the previous one ended"));
        }
        const auto& b = msg.output_begin();
        VPTQ_RETURN_IF_ERROR(CheckOutputName(b.name()));
        if (!names.insert(b.name()).second) {
          return absl::InvalidArgumentError(absl::StrCat("output '", b.name(), "' sent twice"));
        }
        if (b.size_bytes() < 0) return absl::InvalidArgumentError("size_bytes must be >= 0");
        staged.push_back(std::make_unique<ArtifactWriter>(
            store_.get(), absl::StrCat(header.task_id(), "/", upload_id, "/", staged.size()),
            chunk_bytes));
        current = staged.back().get();
        current_name = b.name();
        current_size = b.size_bytes();
        VPTQ_RETURN_IF_ERROR(current->Begin());
        break;
      }
      case v1::CompleteTaskRequest::kChunk:
        if (current == nullptr) return absl::InvalidArgumentError("chunk outside an output");
        VPTQ_RETURN_IF_ERROR(current->Write(msg.chunk(), current_size));
        break;
      case v1::CompleteTaskRequest::kOutputEnd: {
        if (current == nullptr) return absl::InvalidArgumentError("output_end without output_begin");
        VPTQ_ASSIGN_OR_RETURN(v1::ArtifactMeta meta,
                              current->Finish(msg.output_end().sha256(), current_size));
        meta.mutable_ref()->set_name(current_name);
        meta.set_job_id(lease.job_id);
        meta.set_task_id(header.task_id());
        meta.set_create_unix_ms(ToUnixMs(options_.clock->Now()));
        metas.push_back(std::move(meta));
        if (std::optional<ArtifactChunk> tail = current->TakeTail()) tails.push_back(*std::move(tail));
        current = nullptr;
        break;
      }
      case v1::CompleteTaskRequest::kSummary:
        for (const auto& [k, v] : msg.summary().metrics()) metrics[k] = v;
        got_summary = true;
        break;
      case v1::CompleteTaskRequest::kHeader:
        return absl::InvalidArgumentError("header sent twice");
      default:
        return absl::InvalidArgumentError("empty CompleteTask message");
    }
  }
  if (current != nullptr) {
    return absl::DataLossError(
        absl::StrCat("stream ended inside output '", current_name, "'; resend the result"));
  }
  if (!got_summary) {
    return absl::DataLossError("stream ended before the summary; resend the result");
  }
  VPTQ_ASSIGN_OR_RETURN(CompleteResult result,
                        scheduler_->Complete(header.worker_id(), header.task_id(),
                                             header.lease_id(), metas, metrics,
                                             std::move(tails)));
  committed = !result.duplicate;
  v1::CompleteTaskResponse resp;
  for (auto& r : result.outputs) *resp.add_outputs() = std::move(r);
  return resp;
}

// ------------------------------------------------------------------ helpers --

std::vector<v1::CompleteTaskRequest> MakeCompleteTaskStream(
    const std::string& worker_id, const v1::TaskAssignment& task,
    const std::vector<std::pair<std::string, std::string>>& outputs,
    const std::map<std::string, double>& metrics, int64_t chunk_bytes) {
  std::vector<v1::CompleteTaskRequest> out;
  v1::CompleteTaskRequest m;
  m.mutable_header()->set_worker_id(worker_id);
  m.mutable_header()->set_task_id(task.task_id());
  m.mutable_header()->set_lease_id(task.lease_id());
  out.push_back(m);
  chunk_bytes = std::max<int64_t>(chunk_bytes, 1);
  for (const auto& [name, bytes] : outputs) {
    m.Clear();
    m.mutable_output_begin()->set_name(name);
    m.mutable_output_begin()->set_size_bytes(static_cast<int64_t>(bytes.size()));
    out.push_back(m);
    for (size_t off = 0; off < bytes.size(); off += static_cast<size_t>(chunk_bytes)) {
      m.Clear();
      m.set_chunk(bytes.substr(off, static_cast<size_t>(chunk_bytes)));
      out.push_back(m);
    }
    m.Clear();
    m.mutable_output_end()->set_sha256(Sha256Hex(bytes));
    out.push_back(m);
  }
  m.Clear();
  for (const auto& [k, v] : metrics) (*m.mutable_summary()->mutable_metrics())[k] = v;
  m.mutable_summary();
  out.push_back(m);
  return out;
}

std::function<bool(v1::CompleteTaskRequest*)> ReadFromVector(
    std::vector<v1::CompleteTaskRequest> messages) {
  auto data = std::make_shared<std::vector<v1::CompleteTaskRequest>>(std::move(messages));
  auto next = std::make_shared<size_t>(0);
  return [data, next](v1::CompleteTaskRequest* out) {
    if (*next >= data->size()) return false;
    *out = (*data)[(*next)++];
    return true;
  };
}

}  // namespace vptq::coordinator
