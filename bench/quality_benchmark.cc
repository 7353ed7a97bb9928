// quality benchmark (issue 3 §4): stories15M quantized by VPTQ at --bits
// 2, 3, 4 against GPTQ-scalar and RTN at the same bits and the full-precision
// model, calibrated on the SOTU speeches and evaluated on Moby Dick.
//
//   build/bench/quality_benchmark [--bits 2,3,4 --methods fp,vptq,gptq,rtn
//       --calib-sequences 128 --seq-len 256 --eval-sequences 64
//       --kmeans-iters 25 --threads 2 --work-dir DIR]
//
// One JSON object per row on stdout ("bench":"quality", method, bits_target,
// bpw, ppl, kl, top1, seconds, peak_rss_mb, ...); progress on stderr.
//  - vptq: the pipeline's task functions (local_runner.h) with bits -> per
//    layer options (ChooseOptionsForBits), fp16 codebooks and fp16 copies of
//    the other tensors; evaluated from the packed files written to disk. The
//    2-bit row runs the whole job (calibration, Hessians, quantize, assemble,
//    write, eval: job_seconds); the 3- and 4-bit rows reuse its Hessians and
//    add the Hessian stage's time to `seconds`.
//  - gptq / rtn: quant/scalar_baselines.h with group size 128 (fp16 scale and
//    zero), the same finalized Hessians, evaluated through a dense weight
//    override; `seconds` = Hessian stage (gptq only) + quantization.
//  - fp: the original against itself (kl 0, top1 1): the perplexity baseline.
// bpw: bits per weight of the decoder linears, codebooks/scales included
// (DESIGN §2); bpw_file: the whole model including embeddings and lm_head
// (the real file for vptq; 16-bit non-linear tensors for the scalar rows).
// peak_rss_mb: the process's peak resident set during the row (VmHWM after
// resetting it through /proc/self/clear_refs). Quality figures are
// deterministic, so each row runs once.
#include <torch/torch.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "common/status.h"
#include "worker/model/default_model.h"
#include "worker/model/llama_model.h"
#include "worker/model/model_reader.h"
#include "worker/pipeline/checkpoint_dir.h"
#include "worker/pipeline/eval_task.h"
#include "worker/pipeline/hessian_blob.h"
#include "worker/pipeline/local_runner.h"
#include "worker/quant/hessian.h"
#include "worker/quant/scalar_baselines.h"

namespace {

namespace fs = std::filesystem;
using namespace vptq;           // NOLINT
using namespace vptq::pipeline;  // NOLINT

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void ResetPeakRss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
}

double PeakRssMb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream in(line.substr(6));
      double kb = 0;
      in >> kb;
      return kb / 1024.0;
    }
  }
  return 0;
}

void Emit(nlohmann::ordered_json row) {
  std::cout << row.dump() << std::endl;
}

nlohmann::ordered_json Row(const std::string& method, int bits, double bpw, double bpw_file,
                           const QualityReport& q, double seconds, double eval_seconds) {
  nlohmann::ordered_json j;
  j["bench"] = "quality";
  j["model"] = "stories15M";
  j["method"] = method;
  j["bits_target"] = bits;
  j["bpw"] = bpw;
  j["bpw_file"] = bpw_file;
  j["ppl"] = q.perplexity;
  j["ppl_fp"] = q.perplexity_original;
  j["kl"] = q.kl_divergence;
  j["top1"] = q.top1_agreement;
  j["seconds"] = seconds;
  j["eval_seconds"] = eval_seconds;
  j["peak_rss_mb"] = PeakRssMb();
  j["eval_tokens"] = q.tokens;
  return j;
}

int Fail(const absl::Status& s) {
  std::cerr << "quality_benchmark: " << s.ToString() << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"VPTQ vs GPTQ/RTN quality on stories15M"};
  std::string bits_arg = "2,3,4", methods_arg = "fp,vptq,gptq,rtn", work_dir;
  int64_t calib_sequences = 128, seq_len = 256, eval_sequences = 64;
  int kmeans_iters = 0, threads = 2;
  app.add_option("--bits", bits_arg, "comma-separated bit targets");
  app.add_option("--methods", methods_arg, "comma-separated: fp, vptq, gptq, rtn");
  app.add_option("--calib-sequences", calib_sequences);
  app.add_option("--seq-len", seq_len);
  app.add_option("--eval-sequences", eval_sequences);
  app.add_option("--kmeans-iters", kmeans_iters, "0 = the pipeline default");
  app.add_option("--threads", threads);
  app.add_option("--work-dir", work_dir, "where checkpoints go (default: a temp dir)");
  CLI11_PARSE(app, argc, argv);
  torch::set_num_threads(threads);
  InitLogging({.level = "warn", .json = true});

  std::vector<int> bits;
  for (absl::string_view b : absl::StrSplit(bits_arg, ',')) bits.push_back(std::stoi(std::string(b)));
  std::set<std::string> methods;
  for (absl::string_view m : absl::StrSplit(methods_arg, ',')) methods.insert(std::string(m));

  const std::string src = model::SourceDir();
  absl::StatusOr<std::string> model_dir = model::EnsureStories15M(src);
  if (!model_dir.ok()) return Fail(model_dir.status());
  const std::string npm = src + "/third_party/npm/node_modules/@stdlib";
  if (work_dir.empty()) {
    work_dir = (fs::temp_directory_path() / ("vptq_quality_" + std::to_string(::getpid()))).string();
  }
  fs::create_directories(work_dir);

  LocalJob base;
  base.model_dir = *model_dir;
  base.calibration.paths = {npm + "/datasets-sotu/data"};
  base.calibration.num_sequences = calib_sequences;
  base.calibration.sequence_length = seq_len;
  base.num_shards = 1;
  base.quant.output_dtype = "fp16";
  base.quant.kmeans_iters = kmeans_iters;
  EvalOptions eval;
  eval.text.paths = {npm + "/datasets-moby-dick/data/data.txt"};
  eval.text.num_sequences = eval_sequences;
  eval.text.sequence_length = seq_len;
  eval.text.allow_fewer = true;
  base.eval = eval;
  base.progress = [](const LocalProgress& p) {
    if (p.stage == "quantize" && p.done % 7 != 0) return;
    std::cerr << "  " << p.stage << " " << p.done << "/" << p.total << " " << p.item << "\n";
  };

  absl::StatusOr<std::unique_ptr<model::ModelReader>> reader = model::ModelReader::Open(*model_dir);
  if (!reader.ok()) return Fail(reader.status());
  const ModelLayout& layout = (*reader)->layout();
  int64_t params = 0, linear_params = 0;
  for (const auto& [n, info] : layout.weights.tensors) params += info.numel();
  for (const LinearSpec& l : layout.linears) linear_params += l.out_features * l.in_features;
  absl::StatusOr<TokenSequences> eval_seqs = BuildTokenSequences(*model_dir, eval.text);
  if (!eval_seqs.ok()) return Fail(eval_seqs.status());
  ReaderEvalModel original(**reader, nullptr, torch::kCPU);

  if (methods.count("fp")) {
    ResetPeakRss();
    std::cerr << "fp\n";
    absl::StatusOr<QualityReport> q = CompareModels(original, original, *eval_seqs, eval.compute);
    if (!q.ok()) return Fail(q.status());
    Emit(Row("fp", 32, 32, 32, *q, 0, q->seconds));
  }

  // Hessians: from the first VPTQ job, or on their own when VPTQ is not run.
  BlobMap hessians;
  double hessian_seconds = 0;
  auto ensure_hessians = [&]() -> absl::Status {
    if (!hessians.empty()) return absl::OkStatus();
    LocalJobResult r;
    const double t0 = Now();
    VPTQ_ASSIGN_OR_RETURN(hessians, RunHessianStages(base, &r));
    hessian_seconds = Now() - t0;
    return absl::OkStatus();
  };

  if (methods.count("vptq")) {
    for (int b : bits) {
      ResetPeakRss();
      std::cerr << "vptq " << b << " bits\n";
      LocalJob job = base;
      job.quant.bits = b;
      job.output_dir = work_dir + "/stories15M-vptq-" + std::to_string(b) + "bit";
      fs::remove_all(job.output_dir);
      nlohmann::ordered_json row;
      if (hessians.empty()) {
        const double t0 = Now();
        absl::StatusOr<LocalJobResult> r = RunLocalJob(job);
        if (!r.ok()) return Fail(r.status());
        const double total = Now() - t0;
        hessians = r->hessians;
        hessian_seconds = r->seconds.hessian + r->seconds.reduce;
        const double seconds = total - r->seconds.eval;
        row = Row("vptq", b, r->quality->bpw_linears, r->quality->bpw_file, *r->quality, seconds,
                  r->seconds.eval);
        row["job_seconds"] = total;  // the whole job, evaluation included
        row["stage_seconds"] = {{"hessian", r->seconds.hessian}, {"reduce", r->seconds.reduce},
                                {"quantize", r->seconds.quantize},
                                {"assemble", r->seconds.assemble}, {"write", r->seconds.write}};
        row["mean_proxy_loss"] = r->checkpoint.stats.mean_proxy_loss;
      } else {
        LocalJobResult r;
        const double t0 = Now();
        absl::StatusOr<BlobMap> quantized = RunQuantizeStage(job, hessians, &r);
        if (!quantized.ok()) return Fail(quantized.status());
        AssembleTaskInput ai{job.model_dir, *quantized, job.assemble};
        ai.options.output_dtype = job.quant.output_dtype;
        absl::StatusOr<AssembleTaskOutput> a = RunAssembleTask(ai);
        if (!a.ok()) return Fail(a.status());
        absl::Status w = WriteCheckpointDir(a->files, job.output_dir);
        if (!w.ok()) return Fail(w);
        const double seconds = hessian_seconds + (Now() - t0);
        const double e0 = Now();
        absl::StatusOr<QualityReport> q =
            RunEvalTask({job.model_dir, job.output_dir, {}, *job.eval});
        if (!q.ok()) return Fail(q.status());
        row = Row("vptq", b, q->bpw_linears, q->bpw_file, *q, seconds, Now() - e0);
        row["mean_proxy_loss"] = a->stats.mean_proxy_loss;
      }
      Emit(row);
    }
  }

  for (const std::string method : {"gptq", "rtn"}) {
    if (!methods.count(method)) continue;
    absl::Status hs = ensure_hessians();  // RTN's proxy losses use them too
    if (!hs.ok()) return Fail(hs);
    for (int b : bits) {
      ResetPeakRss();
      std::cerr << method << " " << b << " bits\n";
      const double t0 = Now();
      std::map<std::string, torch::Tensor> dense;
      double bits_sum = 0;
      for (const LinearSpec& l : layout.linears) {
        absl::StatusOr<DecodedHessian> h =
            DecodeFinalizedHessian(hessians.at(LinearInputKey(l)), l.name);
        if (!h.ok()) return Fail(h.status());
        absl::StatusOr<torch::Tensor> w = (*reader)->Load(l.name + ".weight");
        if (!w.ok()) return Fail(w.status());
        quant::ScalarQuantOptions o;
        o.bits = b;
        o.group_size = 128;
        const torch::Tensor wz = quant::ZeroDeadColumns(*w, h->hessian.dead_columns);
        absl::StatusOr<quant::ScalarQuantResult> r =
            method == "gptq" ? quant::QuantizeGptq(wz, h->hessian.h, o)
                             : quant::QuantizeRtn(wz, h->hessian.h, o);
        if (!r.ok()) return Fail(r.status());
        bits_sum += r->stats.bits_per_weight * static_cast<double>(l.out_features * l.in_features);
        dense[l.name] = r->weight;
      }
      const double seconds = (method == "gptq" ? hessian_seconds : 0) + (Now() - t0);
      ReaderEvalModel candidate(**reader, model::OverrideFromMap(dense), torch::kCPU);
      absl::StatusOr<QualityReport> q =
          CompareModels(original, candidate, *eval_seqs, eval.compute);
      if (!q.ok()) return Fail(q.status());
      const double bpw = bits_sum / static_cast<double>(linear_params);
      const double bpw_file =
          (bits_sum + 16.0 * static_cast<double>(params - linear_params)) /
          static_cast<double>(params);
      Emit(Row(method, b, bpw, bpw_file, *q, seconds, q->seconds));
    }
  }
  return 0;
}
