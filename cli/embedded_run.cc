#include "cli/embedded_run.h"

#include <atomic>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/exit_codes.h"
#include "cli/follow_job.h"
#include "cli/job_source.h"
#include "common/status.h"
#include "coordinator/config.h"
#include "coordinator/coordinator.h"
#include "coordinator/grpc_status.h"
#include "coordinator/rocks_job_store.h"
#include "worker/worker_loop.h"
#include "worker/worker_transport.h"

namespace vptq::cli {
namespace {

namespace fs = std::filesystem;

bool Stopped(const EmbeddedRunOptions& o) { return o.stop && o.stop(); }

void Note(const EmbeddedRunOptions& o, const std::string& line) {
  if (o.on_note) o.on_note(line);
}

absl::StatusOr<std::unique_ptr<coordinator::Coordinator>> OpenCoordinator(const QuantizePlan& plan) {
  std::error_code ec;
  fs::create_directories(fs::path(plan.state_dir).parent_path(), ec);
  absl::StatusOr<std::unique_ptr<coordinator::RocksJobStore>> store =
      coordinator::RocksJobStore::Open(plan.state_dir);
  if (!store.ok()) {
    const bool locked = absl::StrContains(store.status().message(), "lock");
    return absl::Status(
        locked ? absl::StatusCode::kFailedPrecondition : store.status().code(),
        absl::StrCat("cannot open the state directory ", plan.state_dir,
                     locked ? " (another vptqctl quantize is using it)" : "", ": ",
                     store.status().message()));
  }
  coordinator::CoordinatorOptions options;
  for (const std::string& root : plan.input_roots) options.config.add_input_roots(root);
  options.config.set_allow_unauthenticated(true);
  options.config.set_lease_poll_max_ms(500);
  coordinator::ApplyConfigDefaults(&options.config);
  VPTQ_RETURN_IF_ERROR(coordinator::ValidateCoordinatorConfig(options.config));
  return coordinator::Coordinator::Open(std::move(*store), options);
}

// The job for this plan: the one an earlier run submitted, or a new one.
absl::StatusOr<v1::Job> SubmitOrFind(coordinator::Coordinator& c, const EmbeddedRunOptions& o,
                                     EmbeddedRunResult* result) {
  for (int attempt = 1; attempt < 1000; ++attempt) {
    v1::SubmitJobRequest request;
    *request.mutable_spec() = o.plan.spec;
    request.set_request_id(AttemptRequestId(o.plan.request_id, attempt));
    const bool existed = c.scheduler().JobForRequest(request.request_id()).has_value();
    VPTQ_ASSIGN_OR_RETURN(v1::SubmitJobResponse submitted, c.SubmitJob(request));
    v1::Job job = submitted.job();
    if (existed && (job.phase() == v1::JOB_PHASE_FAILED || job.phase() == v1::JOB_PHASE_CANCELLED)) {
      Note(o, absl::StrCat("an earlier run of this job (", job.job_id(), ") ended ",
                           v1::JobPhase_Name(job.phase()), ": ", job.error().message(),
                           "; starting it again"));
      continue;
    }
    result->resumed = existed;
    result->tasks_done_before = existed ? job.progress().tasks_done() : 0;
    if (existed) {
      Note(o, absl::StrCat("resuming job ", job.job_id(), ": ", job.progress().tasks_done(), " of ",
                           job.progress().tasks_total(), " tasks already done"));
    }
    return job;
  }
  return absl::ResourceExhaustedError("too many failed attempts at this job in the state directory");
}

// Leases held by the embedded workers of a process that died (kill -9):
// nobody will finish them, so they are given back at once instead of
// waiting for them to expire.
int ReturnOrphanedLeases(coordinator::Coordinator& c, const std::string& job_id) {
  absl::StatusOr<std::vector<v1::TaskRecord>> tasks = c.store().LoadTasks(job_id);
  if (!tasks.ok()) return 0;
  int returned = 0;
  for (const v1::TaskRecord& t : *tasks) {
    if (t.state() != v1::TASK_STATE_LEASED || !absl::StartsWith(t.worker_id(), kEmbeddedWorkerPrefix)) {
      continue;
    }
    v1::FailTaskRequest fail;
    fail.set_worker_id(t.worker_id());
    fail.set_task_id(t.task_id());
    fail.set_lease_id(t.lease_id());
    *fail.mutable_status() = coordinator::ToStatusProto(
        absl::CancelledError("the vptqctl quantize run that held this task ended"));
    if (c.FailTask(fail).ok()) ++returned;
  }
  return returned;
}

// Runs the worker loops while following the job to its end.
absl::Status RunToEnd(coordinator::Coordinator& c, JobSource& source, const std::string& job_id,
                      const EmbeddedRunOptions& o) {
  const int n = std::max(1, o.threads);
  std::atomic<bool> finished{false};
  std::atomic<int> running{n};
  std::vector<absl::Status> loop_status(n);
  std::vector<std::unique_ptr<worker::WorkerTransport>> transports;
  std::vector<std::unique_ptr<worker::WorkerLoop>> loops;
  for (int i = 0; i < n; ++i) {
    transports.push_back(worker::MakeInProcessWorkerTransport(&c));
    worker::WorkerLoopOptions w;
    w.worker_id = absl::StrCat(kEmbeddedWorkerPrefix, i);
    w.device = o.device;
    w.torch_threads = o.torch_threads;
    w.lease_wait = o.lease_wait;
    w.max_backoff = absl::Seconds(2);
    w.should_exit = [&finished] { return finished.load(); };
    loops.push_back(std::make_unique<worker::WorkerLoop>(transports.back().get(), w));
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      loop_status[i] = loops[i]->Run();
      running.fetch_sub(1);
    });
  }
  FollowOptions f;
  f.on_event = o.on_event;
  f.on_note = o.on_note;
  f.stop = [&] { return Stopped(o) || running.load() == 0; };
  f.initial_backoff = absl::Milliseconds(100);
  FollowResult r = FollowJob(source, job_id, f);
  finished = true;
  for (auto& loop : loops) loop->Stop(/*finish_running=*/false);
  for (auto& t : threads) t.join();
  if (r.status.ok()) return absl::OkStatus();
  if (Stopped(o)) return absl::CancelledError("interrupted; run the same command again to resume");
  for (const absl::Status& s : loop_status) {
    if (!s.ok()) return Annotate(s, "the embedded workers stopped");
  }
  if (running.load() == 0) return absl::InternalError("the embedded workers stopped");
  return r.status;
}

}  // namespace

absl::Status CheckStateDirUsable(const std::string& dir) {
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(dir, ec);
  if (!fs::exists(st)) return absl::OkStatus();
  if (!fs::is_directory(st)) {
    return absl::FailedPreconditionError(
        absl::StrCat("state directory ", dir, " exists and is not a directory"));
  }
  if (fs::is_empty(dir, ec) || fs::exists(fs::path(dir) / "CURRENT", ec)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "state directory ", dir, " exists and is not a vptqctl state store; choose another "
      "--state-dir or remove it"));
}

absl::StatusOr<EmbeddedRunResult> RunEmbeddedJob(const EmbeddedRunOptions& o) {
  // Checked before any work, so a foreign directory costs nothing.
  VPTQ_RETURN_IF_ERROR(CheckOutputDirUsable(o.plan.output_dir));
  VPTQ_RETURN_IF_ERROR(CheckStateDirUsable(o.plan.state_dir));
  EmbeddedRunResult result;
  VPTQ_ASSIGN_OR_RETURN(std::unique_ptr<coordinator::Coordinator> c, OpenCoordinator(o.plan));
  VPTQ_ASSIGN_OR_RETURN(v1::Job job, SubmitOrFind(*c, o, &result));
  const std::string job_id = job.job_id();
  result.leases_returned = ReturnOrphanedLeases(*c, job_id);
  std::unique_ptr<JobSource> source = MakeLocalJobSource(c.get(), o.stop);
  if (!IsTerminalPhase(job.phase())) {
    VPTQ_RETURN_IF_ERROR(RunToEnd(*c, *source, job_id, o));
  }
  VPTQ_ASSIGN_OR_RETURN(v1::GetJobResponse got, source->GetJob(job_id, false));
  result.job = got.job();
  if (IsTerminalPhase(result.job.phase())) {
    // The Hessians and packed linears are deleted by now, but their bytes
    // stay on disk until the store compacts; the state directory keeps only
    // the job record and its outputs after this.
    absl::Status reclaimed = c->ReclaimSpace();
    if (!reclaimed.ok()) {
      Note(o, absl::StrCat("warning: could not compact the state directory: ",
                           reclaimed.message()));
    }
  }
  if (result.job.phase() == v1::JOB_PHASE_SUCCEEDED) {
    DownloadOptions d;
    d.on_note = o.on_note;
    VPTQ_ASSIGN_OR_RETURN(result.download,
                          DownloadCheckpoint(*source, result.job, o.plan.output_dir, d));
  }
  return result;
}

}  // namespace vptq::cli
