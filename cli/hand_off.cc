#include "cli/hand_off.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include <CLI/CLI.hpp>

#include "cli/exit_codes.h"

namespace vptq::cli {
namespace {

struct HandOff {
  const char* name;
  const char* description;
};

constexpr HandOff kHandOffs[] = {
    {"quantize",
     "Quantize a model here: the cluster's planner, workers and store in one process, "
     "resumable (runs vptqctl-local)"},
    {"eval",
     "Perplexity, KL and top-1 of a packed checkpoint against its original model "
     "(runs vptqctl-local)"},
    {"convert-llama2c",
     "Convert a llama2.c checkpoint and tokenizer into an HF model folder (runs vptqctl-local)"},
};

}  // namespace

std::string SiblingBinary(const std::string& name) {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return name;  // left to PATH lookup by the caller's error message
  return (self.parent_path() / name).string();
}

std::vector<CommandAdder> HandOffCommands(std::vector<std::string> args,
                                          std::string local_binary) {
  std::vector<CommandAdder> adders;
  for (const HandOff& h : kHandOffs) {
    adders.push_back([h, args, local_binary](CLI::App& app, CliContext& ctx) {
      CLI::App* sub = app.add_subcommand(h.name, h.description);
      // Everything after the command, --help included, is the local binary's.
      sub->prefix_command();
      sub->set_help_flag();
      sub->allow_extras();
      sub->fallthrough(false);
      ctx.Register(sub, [h, args, local_binary, &ctx] {
        std::vector<char*> argv;
        for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ctx.io.out.flush();
        ctx.io.err.flush();
        ::execv(local_binary.c_str(), argv.data());
        const int err = errno;  // execv returns only on failure
        ctx.io.err << "vptqctl: " << h.name << ": cannot run " << local_binary << ": "
                   << std::strerror(err) << " (this command needs vptqctl-local, built and "
                   << "installed next to vptqctl)\n";
        return kExitUsage;
      });
    });
  }
  return adders;
}

}  // namespace vptq::cli
