// main() of vptqctl and vptqctl-local: the process's streams and terminal,
// Abseil's mutexes in release mode, then RunVptqctl with `extra` commands
// (made from the process's arguments).
//
//   int main(int argc, char** argv) { return VptqctlMain(argc, argv, MakeExtra); }
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cli/cli_app.h"

namespace vptq::cli {

int VptqctlMain(
    int argc, char** argv,
    const std::function<std::vector<CommandAdder>(const std::vector<std::string>& args)>& extra);

}  // namespace vptq::cli
