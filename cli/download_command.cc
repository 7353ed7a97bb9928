// `vptqctl download JOB --output DIR`.
#include <memory>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/cli_app.h"
#include "cli/client_connection.h"
#include "cli/download.h"
#include "cli/exit_codes.h"
#include "cli/output_format.h"

namespace vptq::cli {
namespace {

int RunDownload(CliContext& ctx, const std::string& job_id, const std::string& out_dir,
                double timeout_seconds) {
  absl::StatusOr<ClientConnection> c = ConnectToCoordinator(ctx.flags);
  if (!c.ok()) return ctx.Fail("connecting", c.status());
  absl::StatusOr<v1::GetJobResponse> got = c->source->GetJob(job_id, false);
  if (!got.ok()) return ctx.Fail(absl::StrCat("getting job ", job_id), got.status());
  const v1::Job& job = got->job();
  if (job.phase() != v1::JOB_PHASE_SUCCEEDED && !job.outputs().empty()) {
    ctx.io.err << "vptqctl: note: job " << job_id << " is " << PhaseName(job.phase())
               << "; downloading the checkpoint it assembled\n";
  }
  DownloadOptions options;
  if (timeout_seconds > 0) options.timeout = absl::Seconds(timeout_seconds);
  options.on_note = [&](const std::string& line) {
    if (ctx.io.err_tty) ctx.io.err << "\r\x1b[K";
    ctx.io.err << "vptqctl: " << line << "\n";
  };
  if (ctx.io.err_tty) {
    options.on_progress = [&](const std::string& name, int64_t have, int64_t size) {
      ctx.io.err << "\r" << name << "  " << FormatBytes(have) << " / " << FormatBytes(size)
                 << "\x1b[K" << std::flush;
    };
  }
  absl::StatusOr<DownloadResult> r = DownloadCheckpoint(*c->source, job, out_dir, options);
  if (ctx.io.err_tty) ctx.io.err << "\r\x1b[K" << std::flush;
  if (!r.ok()) return ctx.Fail(absl::StrCat("downloading job ", job_id), r.status());
  int64_t total = 0;
  for (const auto& f : job.outputs()) total += f.artifact().size_bytes();
  if (r->unchanged) {
    ctx.io.out << out_dir << " already holds this checkpoint (" << r->files.size() << " files, "
               << FormatBytes(total) << ")\n";
    return kExitOk;
  }
  ctx.io.out << "downloaded " << r->files.size() << " files (" << FormatBytes(total) << ") into "
             << out_dir;
  if (r->bytes_reused > 0) ctx.io.out << "; " << FormatBytes(r->bytes_reused) << " reused from an earlier attempt";
  ctx.io.out << "\n";
  return kExitOk;
}

}  // namespace

void AddDownloadCommand(CLI::App& app, CliContext& ctx) {
  struct Flags {
    std::string job_id, output;
    double timeout = 0;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand(
      "download", "Download a job's packed checkpoint into a directory (resumable, verified)");
  sub->add_option("job", f->job_id, "job id")->required();
  sub->add_option("--output", f->output, "directory to create (HF format)")->required();
  sub->add_option("--timeout", f->timeout, "give up (exit 4) after this many seconds; 0 = none")
      ->check(CLI::NonNegativeNumber);
  ctx.Register(sub, [&ctx, f] { return RunDownload(ctx, f->job_id, f->output, f->timeout); });
}

}  // namespace vptq::cli
