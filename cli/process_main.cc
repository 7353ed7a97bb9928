#include "cli/process_main.h"

#include <unistd.h>

#include <iostream>

#include "absl/synchronization/mutex.h"
#include "cli/progress_bar.h"

namespace vptq::cli {

int VptqctlMain(
    int argc, char** argv,
    const std::function<std::vector<CommandAdder>(const std::vector<std::string>& args)>& extra) {
  // Debian's Abseil is built without NDEBUG, which leaves Mutex deadlock
  // detection (a lock-order graph updated on every Lock) on. Tests keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<std::string> args(argv, argv + argc);
  CliIo io{std::cout, std::cerr};
  io.out_tty = ::isatty(STDOUT_FILENO) == 1;
  io.err_tty = ::isatty(STDERR_FILENO) == 1;
  io.width = TerminalWidth(io.out_tty ? STDOUT_FILENO : STDERR_FILENO);
  return RunVptqctl(args, io, extra(args));
}

}  // namespace vptq::cli
