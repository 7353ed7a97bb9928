// `vptqctl quantize`: the project's main job, run here (embedded_run.h).
#include <csignal>
#include <filesystem>
#include <memory>
#include <thread>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "cli/embedded_run.h"
#include "cli/exit_codes.h"
#include "cli/local_commands.h"
#include "cli/output_format.h"
#include "cli/progress_bar.h"
#include "cli/quality_format.h"
#include "worker/model/default_model.h"

namespace vptq::cli {
namespace {

namespace fs = std::filesystem;

volatile std::sig_atomic_t g_signals = 0;
extern "C" void OnQuantizeSignal(int) {
  // The first signal asks for a clean stop (running tasks are given back);
  // a second one ends the process at once (a rerun still resumes).
  g_signals = g_signals + 1;
  if (g_signals >= 2) std::_Exit(kExitInterrupted);
}

// Installs the handlers for the command's lifetime.
class SignalScope {
 public:
  SignalScope() {
    g_signals = 0;
    old_int_ = std::signal(SIGINT, OnQuantizeSignal);
    old_term_ = std::signal(SIGTERM, OnQuantizeSignal);
  }
  ~SignalScope() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};

int64_t DirBytes(const std::string& dir) {
  int64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) total += static_cast<int64_t>(it->file_size(ec));
  }
  return total;
}

struct Flags {
  QuantizeFlags q;
  std::string format;
  bool no_perm = false, norm = false;
};

int RunQuantize(CliContext& ctx, Flags& f) {
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(f.format);
  if (!format.ok()) return ctx.Fail("quantize", format.status());
  if (f.no_perm) f.q.enable_perm = false;
  if (f.norm) f.q.enable_norm = true;
  absl::StatusOr<QuantizePlan> plan = PlanQuantize(f.q, model::SourceDir());
  if (!plan.ok()) return ctx.Fail("quantize", plan.status());
  for (const std::string& w : plan->warnings) ctx.io.err << "vptqctl: warning: " << w << "\n";

  SignalScope signals;
  EmbeddedRunOptions o;
  o.plan = *plan;
  o.threads = f.q.threads > 0
                  ? f.q.threads
                  : std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, 4);
  o.torch_threads = f.q.torch_threads;
  o.device = f.q.device;
  o.stop = [&ctx] { return g_signals > 0 || ctx.interrupted(); };
  ProgressDisplay display(ctx.io.err, ctx.io.err_tty, ctx.io.width);
  o.on_event = [&](const v1::JobEvent& e) { display.OnEvent(e); };
  o.on_note = [&](const std::string& line) { display.Note(absl::StrCat("vptqctl: ", line)); };
  ctx.io.err << "vptqctl: quantizing " << plan->spec.model().path() << " into "
             << plan->output_dir << " with " << o.threads << " worker thread"
             << (o.threads == 1 ? "" : "s") << " (state in " << plan->state_dir << ")\n";
  absl::StatusOr<EmbeddedRunResult> r = RunEmbeddedJob(o);
  display.Finish();
  if (!r.ok()) {
    if (absl::IsCancelled(r.status())) {
      ctx.io.err << "vptqctl: interrupted; finished tasks are kept in " << plan->state_dir
                 << ". Run the same command again to resume.\n";
      return kExitInterrupted;
    }
    return ctx.Fail("quantize", r.status());
  }
  const v1::Job& job = r->job;
  if (*format == OutputFormat::kJson) {
    ctx.io.out << ProtoToJson(job) << "\n";
    return ExitCodeForPhase(job.phase());
  }
  if (r->resumed) {
    ctx.io.out << "resumed job " << job.job_id() << " (" << r->tasks_done_before << " of "
               << job.progress().tasks_total() << " tasks were already done";
    if (r->leases_returned > 0) ctx.io.out << "; " << r->leases_returned << " interrupted tasks rerun";
    ctx.io.out << ")\n";
  }
  if (job.phase() != v1::JOB_PHASE_SUCCEEDED) {
    ctx.io.out << "job " << job.job_id() << " " << PhaseName(job.phase());
    if (!job.error().message().empty()) ctx.io.out << ": " << job.error().message();
    ctx.io.out << "\n";
    return ExitCodeForPhase(job.phase());
  }
  int64_t total = 0;
  for (const auto& out : job.outputs()) total += out.artifact().size_bytes();
  if (r->download.unchanged) {
    ctx.io.out << plan->output_dir << " already holds this checkpoint (" << job.outputs_size()
               << " files, " << FormatBytes(total) << ")\n";
  } else {
    ctx.io.out << "wrote " << plan->output_dir << " (" << job.outputs_size() << " files, "
               << FormatBytes(total) << ")\n";
  }
  PrintJobQuality(ctx.io.out, job.quality());
  ctx.io.out << "state kept in " << plan->state_dir << " (" << FormatBytes(DirBytes(plan->state_dir))
             << "): a rerun with the same arguments is a no-op; remove it to free the space\n";
  return kExitOk;
}

}  // namespace

void AddQuantizeCommand(CLI::App& app, CliContext& ctx) {
  auto f = std::make_shared<Flags>();
  QuantizeFlags& q = f->q;
  CLI::App* sub = app.add_subcommand(
      "quantize",
      "Quantize a model here: the cluster's planner, workers and store in one process "
      "(resumable: rerun the same command after an interruption)");
  sub->add_option("--model", q.model, "HF model directory")->required();
  sub->add_option("--bits", q.bits, "bits per weight budget: 2, 3 or 4 (0: explicit options only)")
      ->capture_default_str();
  sub->add_option("--output", q.output, "checkpoint directory to create")->required();
  sub->add_option("--calibration", q.calibration,
                  "calibration text files or directories (default: the SOTU speeches)");
  sub->add_option("--eval-text", q.eval_text,
                  "held-out text: report perplexity, KL and top-1 against the original");
  sub->add_option("--state-dir", q.state_dir, "resumable job state (default: OUTPUT.vptq-state)");
  sub->add_option("--threads", q.threads, "tasks run at once (default min(4, cores))")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--torch-threads", q.torch_threads,
                  "libtorch threads per task (results are reproducible for a given count)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--device", q.device, "cpu, cuda, cuda:N")->capture_default_str();
  sub->add_option("--name", q.name, "job name (default: the output directory's name)");
  auto* quant = sub->add_option_group("quantizer", "explicit options (override --bits' choice)");
  quant->add_option("--vector-len", q.vector_len, "v");
  quant->add_option("--num-centroids", q.num_centroids, "K (power of two)");
  quant->add_option("--num-res-centroids", q.num_res_centroids, "K_r (power of two; 0 = none)");
  quant->add_option("--group-num", q.group_num, "codebook groups G");
  quant->add_option("--outlier-fraction", q.outlier_fraction, "p in [0, 0.5)");
  quant->add_option("--outlier-vector-len", q.outlier_vector_len, "v0");
  quant->add_option("--outlier-num-centroids", q.outlier_num_centroids, "K0");
  quant->add_option("--seed", q.seed, "k-means seed");
  quant->add_option("--kmeans-iters", q.kmeans_iters, "0 = the engine's default");
  quant->add_option("--refine-iters", q.refine_iters, "centroid refinement passes");
  quant->add_option("--damp", q.damp, "Hessian damping lambda (default 0.01)");
  quant->add_option("--output-dtype", q.output_dtype, "fp16, bf16 or fp32");
  quant->add_flag("--no-perm", f->no_perm, "no act-order permutation");
  quant->add_flag("--norm", f->norm, "per-column normalisation");
  auto* data = sub->add_option_group("data", "calibration and evaluation sets");
  data->add_option("--num-sequences", q.num_sequences, "calibration sequences (default 128)");
  data->add_option("--sequence-length", q.sequence_length,
                   "tokens per sequence (default min(512, max_position_embeddings))");
  data->add_option("--num-shards", q.num_shards, "HESSIAN tasks (default ceil(sequences/16))");
  data->add_option("--calibration-seed", q.calibration_seed, "which windows are drawn");
  data->add_option("--eval-sequences", q.eval_sequences, "evaluation sequences (default 32)");
  sub->add_option("-o,--output-format", f->format, "table (default) or json (the final Job)");
  ctx.Register(sub, [&ctx, f] { return RunQuantize(ctx, *f); });
}

}  // namespace vptq::cli
