// vptqctl-local: vptqctl with the commands that run the engine in this
// process (LibTorch): quantize, eval, convert-llama2c, plus every client
// command. `vptqctl` hands those three commands to it (hand_off.h); it can
// also be run directly.
//
//   vptqctl-local quantize --model models/stories15M-hf --bits 2 --output out/s15m-2bit
#include "cli/local_commands.h"
#include "cli/process_main.h"

int main(int argc, char** argv) {
  return vptq::cli::VptqctlMain(
      argc, argv, [](const std::vector<std::string>&) { return vptq::cli::LocalCommands(); });
}
