// vptqctl's command line: CLI11 subcommands sharing the connection flags
// (--coordinator / --token / --ca-file, or VPTQ_COORDINATOR / VPTQ_TOKEN /
// VPTQ_CA_FILE), output streams and the exit code (exit_codes.h).
//
// RunVptqctl is main() without the process: tests run commands in-process
// with string streams. Commands that need LibTorch (quantize, eval,
// convert-llama2c) are added by the caller through `extra`, so this library
// stays torch-free.
//
//   std::ostringstream out, err;
//   int code = RunVptqctl({"vptqctl", "get", job_id, "-o", "json",
//                          "--coordinator", addr}, CliIo{out, err});
//
// Errors: a bad flag or argument prints the problem and `--help`'s hint and
// returns 3; each command prints "vptqctl: <what>: <why>" on err for its
// failures. Not thread-safe per context; separate calls may run
// concurrently (the environment is only read).
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace CLI {
class App;
}

namespace vptq::cli {

struct CliIo {
  std::ostream& out;
  std::ostream& err;
  bool out_tty = false;  // redraw progress in place on `out`
  bool err_tty = false;  // ... on `err`
  int width = 80;        // terminal columns
};

struct GlobalFlags {
  std::string coordinator = "127.0.0.1:50051";
  std::string token;
  std::string ca_file;
  std::string tls_server_name;
  double call_timeout_seconds = 30;  // unary calls wait this long for the coordinator
  std::string log_level = "warn";
};

struct CliContext {
  explicit CliContext(CliIo io_in) : io(io_in) {}
  CliIo io;
  GlobalFlags flags;
  int exit_code = 0;
  // Polled by commands that run long (tests stop them with it; `quantize`
  // adds its own SIGINT/SIGTERM flag).
  std::function<bool()> interrupted = [] { return false; };

  // Makes `run` the body of subcommand `sub` (run after a successful parse,
  // when `sub` was chosen); its return value is the exit code.
  void Register(CLI::App* sub, std::function<int()> run) {
    commands.emplace_back(sub, std::move(run));
  }
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands;

  // Prints "vptqctl: <what>: <status message>" (plus a hint for an
  // unreachable coordinator) and returns ExitCodeForStatus(status).
  int Fail(const std::string& what, const absl::Status& status);
};

using CommandAdder = std::function<void(CLI::App& app, CliContext& ctx)>;

int RunVptqctl(const std::vector<std::string>& args, CliIo io,
               const std::vector<CommandAdder>& extra = {},
               std::function<bool()> interrupted = nullptr);


// The client commands (client_commands.cc, watch_command.cc,
// download_command.cc), added by RunVptqctl.
void AddSubmitCommand(CLI::App& app, CliContext& ctx);
void AddGetCommand(CLI::App& app, CliContext& ctx);
void AddListCommand(CLI::App& app, CliContext& ctx);
void AddCancelCommand(CLI::App& app, CliContext& ctx);
void AddWatchCommand(CLI::App& app, CliContext& ctx);
void AddDownloadCommand(CLI::App& app, CliContext& ctx);

}  // namespace vptq::cli
