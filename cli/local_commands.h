// The commands that run the engine in this process and so need LibTorch:
//   quantize         the whole job here: embedded coordinator + workers
//                    (only when the build has the worker library)
//   eval             quality of a packed checkpoint against its original
//   convert-llama2c  a llama2.c model.bin + tokenizer.bin -> HF folder
// Kept out of the client commands' library so that those stay torch-free.
//
//   return RunVptqctl(args, io, LocalCommands());
#pragma once

#include <vector>

#include "cli/cli_app.h"

namespace vptq::cli {

std::vector<CommandAdder> LocalCommands();

void AddEvalCommand(CLI::App& app, CliContext& ctx);
void AddConvertCommand(CLI::App& app, CliContext& ctx);
void AddQuantizeCommand(CLI::App& app, CliContext& ctx);

}  // namespace vptq::cli
