// `vptqctl submit | get | list | cancel`: one ClientService call each.
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "cli/cli_app.h"
#include "cli/client_connection.h"
#include "cli/exit_codes.h"
#include "cli/job_format.h"
#include "cli/output_format.h"
#include "cli/watch_command.h"
#include "coordinator/grpc_status.h"
#include "coordinator/spec_validation.h"
#include "coordinator/text_proto.h"

namespace vptq::cli {
namespace {

using coordinator::FromGrpcStatus;

std::string RandomRequestId() {
  std::random_device rd;
  return absl::StrFormat("vptqctl-%08x%08x", rd(), rd());
}

// Connects and parses -o; on failure prints and returns the exit code.
struct Prepared {
  absl::StatusOr<ClientConnection> connection;
  OutputFormat format = OutputFormat::kTable;
  int exit_code = 0;
};
Prepared Prepare(CliContext& ctx, const std::string& command, const std::string& format_flag) {
  Prepared p;
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(format_flag);
  if (!format.ok()) {
    p.exit_code = ctx.Fail(command, format.status());
    return p;
  }
  p.format = *format;
  p.connection = ConnectToCoordinator(ctx.flags);
  if (!p.connection.ok()) p.exit_code = ctx.Fail("connecting", p.connection.status());
  return p;
}

int RunSubmit(CliContext& ctx, const std::string& spec_path, const std::string& request_id_flag,
              bool wait, const WatchFlags& watch, const std::string& format_flag) {
  // The spec is checked here first, so a typo fails fast even offline.
  v1::SubmitJobRequest request;
  if (absl::Status s = coordinator::ReadTextProtoFile(spec_path, request.mutable_spec()); !s.ok()) {
    return ctx.Fail(absl::StrCat("reading job spec ", spec_path), s);
  }
  v1::JobSpec normalized = request.spec();
  std::vector<std::string> warnings;
  if (absl::Status s = coordinator::NormalizeJobSpec(&normalized, &warnings); !s.ok()) {
    return ctx.Fail(absl::StrCat("job spec ", spec_path), s);
  }
  request.set_request_id(request_id_flag.empty() ? RandomRequestId() : request_id_flag);

  Prepared p = Prepare(ctx, "submit", format_flag);
  if (p.exit_code != 0) return p.exit_code;
  const ClientConnection& c = *p.connection;
  v1::SubmitJobResponse response;
  auto call = c.UnaryContext();
  if (absl::Status s = FromGrpcStatus(c.stub->SubmitJob(call.get(), request, &response));
      !s.ok()) {
    return ctx.Fail(absl::StrCat("submitting ", spec_path), s);
  }
  const std::string& id = response.job_id();
  if (p.format == OutputFormat::kJson) {
    // With --wait the events follow as JSON lines, so this is one line too.
    ctx.io.out << ProtoToJson(response, /*pretty=*/!wait) << "\n";
  } else {
    const v1::Job& job = response.job();
    ctx.io.out << "submitted job " << id << " (" << job.spec().name() << "): "
               << job.progress().tasks_total() << " tasks, " << job.progress().linears_total()
               << " linears to quantize\n";
    for (const std::string& w : job.warnings()) ctx.io.out << "warning: " << w << "\n";
    if (!wait) {
      ctx.io.out << "next:\n"
                 << "  vptqctl watch " << id << "\n"
                 << "  vptqctl get " << id << " --tasks\n"
                 << "  vptqctl download " << id << " --output DIR\n";
    }
  }
  ctx.io.out << std::flush;
  if (!wait) return kExitOk;
  return WatchAndReport(ctx, *c.source, id, watch, p.format);
}

int RunGet(CliContext& ctx, const std::string& job_id, bool tasks, const std::string& format_flag) {
  Prepared p = Prepare(ctx, "get", format_flag);
  if (p.exit_code != 0) return p.exit_code;
  absl::StatusOr<v1::GetJobResponse> got = p.connection->source->GetJob(job_id, tasks);
  if (!got.ok()) return ctx.Fail(absl::StrCat("getting job ", job_id), got.status());
  if (p.format == OutputFormat::kJson) {
    ctx.io.out << ProtoToJson(*got) << "\n";
    return kExitOk;
  }
  PrintJob(ctx.io.out, got->job());
  if (tasks) {
    ctx.io.out << "\n";
    PrintTasks(ctx.io.out, got->tasks());
  }
  return kExitOk;
}

int RunList(CliContext& ctx, const std::vector<std::string>& phase_words, int limit,
            const std::string& format_flag) {
  v1::ListJobsRequest request;
  for (const std::string& w : phase_words) {
    absl::StatusOr<v1::JobPhase> phase = ParsePhase(w);
    if (!phase.ok()) return ctx.Fail("list", phase.status());
    request.add_phases(*phase);
  }
  Prepared p = Prepare(ctx, "list", format_flag);
  if (p.exit_code != 0) return p.exit_code;
  const ClientConnection& c = *p.connection;
  v1::ListJobsResponse all;
  while (all.jobs_size() < limit) {
    request.set_page_size(std::min(1000, limit - all.jobs_size()));
    v1::ListJobsResponse page;
    auto call = c.UnaryContext();
    if (absl::Status s = FromGrpcStatus(c.stub->ListJobs(call.get(), request, &page)); !s.ok()) {
      return ctx.Fail("listing jobs", s);
    }
    for (auto& j : *page.mutable_jobs()) *all.add_jobs() = std::move(j);
    all.set_next_page_token(page.next_page_token());
    if (page.next_page_token().empty()) break;
    request.set_page_token(page.next_page_token());
  }
  if (p.format == OutputFormat::kJson) {
    ctx.io.out << ProtoToJson(all) << "\n";
    return kExitOk;
  }
  if (all.jobs().empty()) {
    ctx.io.out << "no jobs\n";
    return kExitOk;
  }
  PrintJobList(ctx.io.out, all.jobs(), absl::Now());
  if (!all.next_page_token().empty()) {
    ctx.io.out << "(more jobs: raise --limit)\n";
  }
  return kExitOk;
}

int RunCancel(CliContext& ctx, const std::string& job_id, const std::string& reason,
              const std::string& format_flag) {
  Prepared p = Prepare(ctx, "cancel", format_flag);
  if (p.exit_code != 0) return p.exit_code;
  const ClientConnection& c = *p.connection;
  v1::CancelJobRequest request;
  request.set_job_id(job_id);
  request.set_reason(reason);
  v1::CancelJobResponse response;
  auto call = c.UnaryContext();
  if (absl::Status s = FromGrpcStatus(c.stub->CancelJob(call.get(), request, &response));
      !s.ok()) {
    return ctx.Fail(absl::StrCat("cancelling ", job_id), s);
  }
  if (p.format == OutputFormat::kJson) {
    ctx.io.out << ProtoToJson(response) << "\n";
  } else {
    ctx.io.out << "job " << job_id << " is " << PhaseName(response.job().phase()) << "\n";
  }
  return kExitOk;
}

void AddFormatFlag(CLI::App* sub, std::string* format) {
  sub->add_option("-o,--output-format", *format, "table (default) or json");
}

}  // namespace

void AddSubmitCommand(CLI::App& app, CliContext& ctx) {
  struct Flags {
    std::string spec, request_id, format;
    bool wait = false;
    WatchFlags watch;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand("submit", "Submit a job spec (text proto) to the coordinator");
  sub->add_option("spec", f->spec, "JobSpec text-proto file")->required();
  sub->add_flag("--wait", f->wait, "follow the job until it ends (like watch)");
  sub->add_option("--request-id", f->request_id,
                  "idempotency key: resubmitting with it returns the first job");
  AddFormatFlag(sub, &f->format);
  AddWatchFlags(sub, &f->watch);
  ctx.Register(sub, [&ctx, f] {
    return RunSubmit(ctx, f->spec, f->request_id, f->wait, f->watch, f->format);
  });
}

void AddGetCommand(CLI::App& app, CliContext& ctx) {
  struct Flags {
    std::string job_id, format;
    bool tasks = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand("get", "Show one job");
  sub->add_option("job", f->job_id, "job id")->required();
  sub->add_flag("--tasks", f->tasks, "list its tasks too");
  AddFormatFlag(sub, &f->format);
  ctx.Register(sub, [&ctx, f] { return RunGet(ctx, f->job_id, f->tasks, f->format); });
}

void AddListCommand(CLI::App& app, CliContext& ctx) {
  struct Flags {
    std::vector<std::string> phases;
    int limit = 100;
    std::string format;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand("list", "List jobs, newest first");
  sub->add_option("--phase", f->phases,
                  "only these phases: pending, running, succeeded, failed, cancelled")
      ->delimiter(',');
  sub->add_option("--limit", f->limit, "at most this many jobs")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  AddFormatFlag(sub, &f->format);
  ctx.Register(sub, [&ctx, f] { return RunList(ctx, f->phases, f->limit, f->format); });
}

void AddCancelCommand(CLI::App& app, CliContext& ctx) {
  struct Flags {
    std::string job_id, reason, format;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand("cancel", "Cancel a job");
  sub->add_option("job", f->job_id, "job id")->required();
  sub->add_option("--reason", f->reason, "recorded with the job");
  AddFormatFlag(sub, &f->format);
  ctx.Register(sub, [&ctx, f] { return RunCancel(ctx, f->job_id, f->reason, f->format); });
}

}  // namespace vptq::cli
