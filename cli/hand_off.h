// The commands that run the engine in this process (quantize, eval,
// convert-llama2c) live in `vptqctl-local`, which links LibTorch; `vptqctl`
// itself stays torch-free and starts in milliseconds. HandOffCommands()
// registers those commands in `vptqctl` so they show in --help, and running
// one replaces the process (execv) with `vptqctl-local` and the same
// arguments, so flags, --help, signals and exit codes are the local
// binary's own.
//
//   return RunVptqctl(args, io, HandOffCommands(args, SiblingBinary("vptqctl-local")));
#pragma once

#include <string>
#include <vector>

#include "cli/cli_app.h"

namespace vptq::cli {

// `name` in the directory of the running executable (/proc/self/exe).
std::string SiblingBinary(const std::string& name);

// `args` are the process's own (argv); `local_binary` the path to exec.
// When exec fails the command prints why and returns kExitUsage.
std::vector<CommandAdder> HandOffCommands(std::vector<std::string> args,
                                          std::string local_binary);

}  // namespace vptq::cli
