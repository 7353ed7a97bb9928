// `vptqctl eval --model ORIG --quantized OUT --text FILE...`: the EVAL task
// run here on a packed checkpoint as written (worker/pipeline/eval_task.h).
#include <memory>

#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "cli/exit_codes.h"
#include "cli/local_commands.h"
#include "cli/output_format.h"
#include "cli/quality_format.h"
#include "common/hf_config.h"
#include "worker/pipeline/calibration.h"
#include "worker/pipeline/eval_task.h"

namespace vptq::cli {
namespace {

struct EvalFlags {
  std::string model, quantized, format, device = "cpu";
  std::vector<std::string> text;
  int num_sequences = 32;
  int sequence_length = 0;
  uint64_t seed = 0;
  int threads = 0;
};

int RunEval(CliContext& ctx, const EvalFlags& f) {
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(f.format);
  if (!format.ok()) return ctx.Fail("eval", format.status());
  absl::StatusOr<HfModelConfig> config = ReadHfConfig(f.model);
  if (!config.ok()) return ctx.Fail(absl::StrCat("reading --model ", f.model), config.status());
  if (f.threads > 0) at::set_num_threads(f.threads);
  pipeline::EvalTaskInput in;
  in.model_dir = f.model;
  in.checkpoint_dir = f.quantized;
  in.options.text.paths = f.text;
  in.options.text.num_sequences = f.num_sequences;
  in.options.text.sequence_length =
      f.sequence_length > 0 ? f.sequence_length
                            : pipeline::DefaultSequenceLength(config->max_position_embeddings);
  in.options.text.seed = f.seed;
  in.options.text.allow_fewer = true;
  in.options.compute.device = f.device;
  absl::StatusOr<pipeline::QualityReport> r = pipeline::RunEvalTask(in);
  if (!r.ok()) return ctx.Fail(absl::StrCat("evaluating ", f.quantized), r.status());
  if (*format == OutputFormat::kJson) {
    ctx.io.out << pipeline::QualityReportToJson(*r).dump(2) << "\n";
  } else {
    ctx.io.out << f.quantized << " against " << f.model << ":\n";
    PrintQualityReport(ctx.io.out, *r);
  }
  return kExitOk;
}

}  // namespace

void AddEvalCommand(CLI::App& app, CliContext& ctx) {
  auto f = std::make_shared<EvalFlags>();
  CLI::App* sub = app.add_subcommand(
      "eval", "Perplexity, KL and top-1 of a packed checkpoint against its original model");
  sub->add_option("--model", f->model, "the original HF model directory")->required();
  sub->add_option("--quantized", f->quantized, "the packed checkpoint directory")->required();
  sub->add_option("--text", f->text, "held-out text files or directories")->required();
  sub->add_option("--num-sequences", f->num_sequences, "sequences to score (fewer if the text is short)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--sequence-length", f->sequence_length,
                  "tokens per sequence; default min(512, max_position_embeddings)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--seed", f->seed, "which windows of the text are drawn");
  sub->add_option("--threads", f->threads, "libtorch threads; 0 = libtorch's default")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--device", f->device, "cpu, cuda, cuda:N")->capture_default_str();
  sub->add_option("-o,--output-format", f->format, "table (default) or json");
  ctx.Register(sub, [&ctx, f] { return RunEval(ctx, *f); });
}

}  // namespace vptq::cli
