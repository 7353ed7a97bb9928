// `vptqctl watch JOB`.
#include "cli/watch_command.h"

#include <memory>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "cli/client_connection.h"
#include "cli/exit_codes.h"
#include "cli/follow_job.h"
#include "cli/job_format.h"
#include "cli/progress_bar.h"

namespace vptq::cli {
namespace {

absl::Duration Seconds(double s) {
  return s > 0 ? absl::Seconds(s) : absl::InfiniteDuration();
}

// The closing lines: what happened and what to run next.
void PrintOutcome(CliContext& ctx, JobSource& source, const std::string& job_id,
                  const FollowResult& r) {
  std::ostream& out = ctx.io.out;
  absl::StatusOr<v1::GetJobResponse> got = source.GetJob(job_id, false);
  const v1::Job* job = got.ok() ? &got->job() : nullptr;
  switch (r.phase) {
    case v1::JOB_PHASE_SUCCEEDED: {
      out << "job " << job_id << " succeeded";
      if (job != nullptr && job->end_unix_ms() > 0) {
        out << " in " << FormatDuration((job->end_unix_ms() - job->create_unix_ms()) / 1000);
      }
      out << "\n";
      if (job != nullptr && !QualitySummary(job->quality()).empty()) {
        out << "  " << QualitySummary(job->quality()) << "\n";
      }
      out << "next:\n  vptqctl download " << job_id << " --output DIR\n";
      break;
    }
    case v1::JOB_PHASE_FAILED:
      out << "job " << job_id << " failed";
      if (job != nullptr && job->error().code() != 0) out << ": " << job->error().message();
      out << "\n  details: vptqctl get " << job_id << " --tasks\n";
      break;
    case v1::JOB_PHASE_CANCELLED:
      out << "job " << job_id << " was cancelled";
      if (job != nullptr && !job->error().message().empty()) out << ": " << job->error().message();
      out << "\n";
      break;
    default:
      break;
  }
}

}  // namespace

void AddWatchFlags(CLI::App* sub, WatchFlags* flags) {
  sub->add_option("--timeout", flags->timeout_seconds,
                  "give up (exit 4) after this many seconds; 0 = no limit")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--max-unreachable", flags->max_unreachable_seconds,
                  "give up (exit 4) after the coordinator was unreachable this long")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

int WatchAndReport(CliContext& ctx, JobSource& source, const std::string& job_id,
                   const WatchFlags& flags, OutputFormat format) {
  const bool json = format == OutputFormat::kJson;
  ProgressDisplay display(ctx.io.out, ctx.io.out_tty, ctx.io.width);
  FollowOptions o;
  o.after_sequence = flags.after_sequence;
  o.timeout = Seconds(flags.timeout_seconds);
  o.max_unreachable = absl::Seconds(flags.max_unreachable_seconds);
  o.stop = ctx.interrupted;
  o.on_event = [&](const v1::JobEvent& e) {
    if (json) {
      ctx.io.out << ProtoToJson(e, /*pretty=*/false) << "\n" << std::flush;
    } else {
      display.OnEvent(e);
    }
  };
  o.on_note = [&](const std::string& line) {
    if (json) {
      ctx.io.err << "vptqctl: " << line << "\n";
    } else {
      display.Note(line);
    }
  };
  const FollowResult r = FollowJob(source, job_id, o);
  display.Finish();
  if (!r.status.ok()) {
    if (absl::IsCancelled(r.status)) {
      ctx.io.err << "vptqctl: stopped watching " << job_id << " at event #" << r.last_sequence
                 << "; resume with: vptqctl watch " << job_id << "\n";
      return kExitInterrupted;
    }
    return ctx.Fail(absl::StrCat("watching ", job_id), r.status);
  }
  if (!json) PrintOutcome(ctx, source, job_id, r);
  return FollowExitCode(r);
}

void AddWatchCommand(CLI::App& app, CliContext& ctx) {
  struct Flags {
    std::string job_id;
    std::string format;
    WatchFlags watch;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand(
      "watch", "Follow a job until it ends; the exit code says how it ended");
  sub->add_option("job", f->job_id, "job id")->required();
  sub->add_option("-o,--output-format", f->format, "table or json (one event a line)");
  sub->add_option("--after", f->watch.after_sequence, "start after this event sequence number")
      ->check(CLI::NonNegativeNumber);
  AddWatchFlags(sub, &f->watch);
  ctx.Register(sub, [&ctx, f]() -> int {
    absl::StatusOr<OutputFormat> format = ParseOutputFormat(f->format);
    if (!format.ok()) return ctx.Fail("watch", format.status());
    absl::StatusOr<ClientConnection> c = ConnectToCoordinator(ctx.flags);
    if (!c.ok()) return ctx.Fail("connecting", c.status());
    return WatchAndReport(ctx, *c->source, f->job_id, f->watch, *format);
  });
}

}  // namespace vptq::cli
