// vptqctl: the VPTQ quantization service's command line. See cli_app.h for
// the commands and exit_codes.h for what the exit codes mean. Torch-free:
// quantize, eval and convert-llama2c are handed to vptqctl-local (hand_off.h).
//
//   vptqctl submit job.textproto --wait
//   vptqctl quantize --model models/stories15M-hf --bits 2 --output out/s15m-2bit
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "cli/cli_app.h"
#include "cli/hand_off.h"
#include "cli/progress_bar.h"

int main(int argc, char** argv) {
  // Debian's Abseil is built without NDEBUG, which leaves Mutex deadlock
  // detection (a lock-order graph updated on every Lock) on. Tests keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<std::string> args(argv, argv + argc);
  vptq::cli::CliIo io{std::cout, std::cerr};
  io.out_tty = ::isatty(STDOUT_FILENO) == 1;
  io.err_tty = ::isatty(STDERR_FILENO) == 1;
  io.width = vptq::cli::TerminalWidth(io.out_tty ? STDOUT_FILENO : STDERR_FILENO);
  return vptq::cli::RunVptqctl(
      args, io,
      vptq::cli::HandOffCommands(args, vptq::cli::SiblingBinary("vptqctl-local")));
}
