#include "cli/cli_app.h"

#include <algorithm>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "cli/exit_codes.h"
#include "common/logging.h"

#ifndef VPTQ_VERSION
#define VPTQ_VERSION "dev"
#endif

namespace vptq::cli {

int CliContext::Fail(const std::string& what, const absl::Status& status) {
  // The code name is part of the line: scripts and people grep for it.
  io.err << "vptqctl: " << what << ": " << absl::StatusCodeToString(status.code()) << ": "
         << status.message() << "\n";
  if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) {
    io.err << "  (is the coordinator running at " << flags.coordinator
           << "? set --coordinator or VPTQ_COORDINATOR)\n";
  } else if (absl::IsUnauthenticated(status)) {
    io.err << "  (pass the client token with --token or VPTQ_TOKEN)\n";
  }
  return ExitCodeForStatus(status);
}

int RunVptqctl(const std::vector<std::string>& args, CliIo io,
               const std::vector<CommandAdder>& extra, std::function<bool()> interrupted) {
  CliContext ctx(io);
  if (interrupted) ctx.interrupted = std::move(interrupted);
  CLI::App app{"vptqctl: submit, follow and download VPTQ quantization jobs, or run one here"};
  app.name(args.empty() ? "vptqctl" : args[0]);
  app.set_version_flag("--version", VPTQ_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--coordinator", ctx.flags.coordinator, "coordinator address host:port")
      ->envname("VPTQ_COORDINATOR")
      ->capture_default_str();
  app.add_option("--token", ctx.flags.token, "client bearer token")->envname("VPTQ_TOKEN");
  app.add_option("--ca-file", ctx.flags.ca_file, "PEM CA certificate: use TLS")
      ->envname("VPTQ_CA_FILE");
  app.add_option("--tls-server-name", ctx.flags.tls_server_name,
                 "name to check in the server certificate");
  app.add_option("--call-timeout", ctx.flags.call_timeout_seconds,
                 "seconds a single call waits for the coordinator")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--log-level", ctx.flags.log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
  app.footer(
      "Exit codes: 0 succeeded, 1 failed, 2 cancelled, 3 bad usage or spec, "
      "4 coordinator unreachable or timeout.");

  AddSubmitCommand(app, ctx);
  AddGetCommand(app, ctx);
  AddListCommand(app, ctx);
  AddWatchCommand(app, ctx);
  AddCancelCommand(app, ctx);
  AddDownloadCommand(app, ctx);
  for (const CommandAdder& add : extra) add(app, ctx);

  // CLI11 wants argv order without the program name.
  std::vector<std::string> reversed(args.size() > 1 ? args.begin() + 1 : args.end(), args.end());
  std::reverse(reversed.begin(), reversed.end());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e, io.out, io.err);
    return code == static_cast<int>(CLI::ExitCodes::Success) ? kExitOk : kExitUsage;
  }
  InitLogging(LogOptions{.level = ctx.flags.log_level, .json = false});
  for (auto& [sub, run] : ctx.commands) {
    if (sub->parsed()) ctx.exit_code = run();
  }
  return ctx.exit_code;
}

}  // namespace vptq::cli
