// Following a job to its end for `vptqctl watch` and `submit --wait`: events
// shown as a progress line (terminal) or log lines (otherwise), or as JSON
// lines with -o json (one vptq.v1.JobEvent a line); then a summary of the
// final state and the exit code taken from it (exit_codes.h).
//
//   WatchFlags flags{.timeout_seconds = 600};
//   return WatchAndReport(ctx, *connection.source, job_id, flags, OutputFormat::kTable);
//
// Blocks; reconnects as follow_job.h describes.
#pragma once

#include <cstdint>
#include <string>

#include "cli/cli_app.h"
#include "cli/job_source.h"
#include "cli/output_format.h"

namespace CLI {
class App;
}

namespace vptq::cli {

struct WatchFlags {
  double timeout_seconds = 0;             // 0: wait for as long as it takes
  double max_unreachable_seconds = 300;   // give up reconnecting after this
  int64_t after_sequence = 0;
};

// Adds --timeout and --max-unreachable to a subcommand.
void AddWatchFlags(CLI::App* sub, WatchFlags* flags);

int WatchAndReport(CliContext& ctx, JobSource& source, const std::string& job_id,
                   const WatchFlags& flags, OutputFormat format);

}  // namespace vptq::cli
