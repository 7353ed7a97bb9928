// vptqctl: the VPTQ quantization service's command line. See cli_app.h for
// the commands and exit_codes.h for what the exit codes mean. Torch-free:
// quantize, eval and convert-llama2c are handed to vptqctl-local (hand_off.h).
//
//   vptqctl submit job.textproto --wait
//   vptqctl quantize --model models/stories15M-hf --bits 2 --output out/s15m-2bit
#include "cli/hand_off.h"
#include "cli/process_main.h"

int main(int argc, char** argv) {
  return vptq::cli::VptqctlMain(argc, argv, [](const std::vector<std::string>& args) {
    return vptq::cli::HandOffCommands(args, vptq::cli::SiblingBinary("vptqctl-local"));
  });
}
