#include "worker/pipeline/eval_task.h"

#include <cmath>
#include <exception>
#include <memory>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status.h"
#include "worker/model/llama_ops.h"
#include "worker/model/model_reader.h"
#include "worker/pipeline/checkpoint_reader.h"

namespace vptq::pipeline {
namespace {

// Running sums over scored positions.
struct Scores {
  double nll_reference = 0;
  double nll_candidate = 0;
  double kl = 0;
  int64_t agree = 0;
  int64_t tokens = 0;

  // logits (T, V) float32 of both models, targets (T) int64.
  void Add(const torch::Tensor& lr, const torch::Tensor& lc, const torch::Tensor& targets) {
    const torch::Tensor pr = torch::log_softmax(lr, -1);
    const torch::Tensor pc = torch::log_softmax(lc, -1);
    const torch::Tensor t = targets.unsqueeze(-1);
    nll_reference -= pr.gather(-1, t).to(torch::kDouble).sum().item<double>();
    nll_candidate -= pc.gather(-1, t).to(torch::kDouble).sum().item<double>();
    kl += (pr.exp() * (pr - pc)).sum(-1).to(torch::kDouble).sum().item<double>();
    agree += lr.argmax(-1).eq(lc.argmax(-1)).sum().item<int64_t>();
    tokens += targets.numel();
  }

  void Fill(QualityReport& r) const {
    const double n = static_cast<double>(std::max<int64_t>(1, tokens));
    r.tokens = tokens;
    r.perplexity_original = std::exp(nll_reference / n);
    r.perplexity = std::exp(nll_candidate / n);
    r.kl_divergence = kl / n;
    r.top1_agreement = static_cast<double>(agree) / n;
  }
};

absl::StatusOr<torch::Tensor> RunLayer(const model::DecoderLayer& layer, const torch::Tensor& h,
                                       const model::RotaryEmbedding& rope, int64_t max_batch) {
  const int64_t n = h.size(0);
  const int64_t chunk = max_batch > 0 ? std::min(max_batch, n) : n;
  std::vector<torch::Tensor> parts;
  for (int64_t b = 0; b < n; b += chunk) {
    VPTQ_ASSIGN_OR_RETURN(torch::Tensor out,
                          layer.Forward(h.slice(0, b, std::min(n, b + chunk)), rope));
    parts.push_back(std::move(out));
  }
  return parts.size() == 1 ? parts[0] : torch::cat(parts, 0);
}

absl::Status SameShape(const HfModelConfig& a, const HfModelConfig& b) {
  if (a.hidden_size != b.hidden_size || a.intermediate_size != b.intermediate_size ||
      a.num_hidden_layers != b.num_hidden_layers || a.vocab_size != b.vocab_size ||
      a.num_attention_heads != b.num_attention_heads ||
      a.num_key_value_heads != b.num_key_value_heads || a.head_dim != b.head_dim) {
    return absl::InvalidArgumentError(
        "the quantized checkpoint's config.json describes another model shape than the "
        "original (hidden size, layers, heads or vocabulary differ)");
  }
  return absl::OkStatus();
}

}  // namespace

QualityReport ScoreLogitsReference(const torch::Tensor& logits_reference,
                                   const torch::Tensor& logits_candidate,
                                   const torch::Tensor& ids) {
  const int64_t v = logits_reference.size(-1);
  Scores s;
  s.Add(logits_reference.slice(1, 0, -1).reshape({-1, v}).to(torch::kFloat),
        logits_candidate.slice(1, 0, -1).reshape({-1, v}).to(torch::kFloat),
        ids.slice(1, 1).reshape({-1}).to(torch::kLong));
  QualityReport r;
  r.sequences = ids.size(0);
  r.sequence_length = ids.size(1);
  s.Fill(r);
  return r;
}

absl::StatusOr<QualityReport> CompareModels(const EvalModel& reference,
                                            const EvalModel& candidate,
                                            const TokenSequences& seqs,
                                            const ComputeOptions& compute,
                                            int64_t logits_budget) {
  const absl::Time start = absl::Now();
  const HfModelConfig& c = reference.config();
  VPTQ_RETURN_IF_ERROR(SameShape(c, candidate.config()));
  if (seqs.count() < 1 || seqs.sequence_length < 2) {
    return absl::InvalidArgumentError("evaluation needs at least one sequence of 2+ tokens");
  }
  VPTQ_ASSIGN_OR_RETURN(torch::Device device, ParseDevice(compute.device));
  QualityReport report;
  report.sequences = seqs.count();
  report.sequence_length = seqs.sequence_length;
  try {
    const torch::Tensor ids = torch::from_blob(const_cast<int32_t*>(seqs.ids.data()),
                                               {seqs.count(), seqs.sequence_length}, torch::kInt)
                                  .to(torch::kLong);
    VPTQ_ASSIGN_OR_RETURN(model::RotaryEmbedding rope,
                          model::RotaryEmbedding::Create(c, seqs.sequence_length, device));
    VPTQ_ASSIGN_OR_RETURN(torch::Tensor hr, reference.Embed(ids));
    VPTQ_ASSIGN_OR_RETURN(torch::Tensor hc, candidate.Embed(ids));
    for (int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
      {
        VPTQ_ASSIGN_OR_RETURN(model::DecoderLayer l, reference.Layer(layer));
        VPTQ_ASSIGN_OR_RETURN(hr, RunLayer(l, hr, rope, compute.max_batch));
      }
      {
        VPTQ_ASSIGN_OR_RETURN(model::DecoderLayer l, candidate.Layer(layer));
        VPTQ_ASSIGN_OR_RETURN(hc, RunLayer(l, hc, rope, compute.max_batch));
      }
      log::Debug("eval layer done", {{"stage", "eval"}, {"layer", layer}});
    }
    VPTQ_ASSIGN_OR_RETURN(OutputHeadWeights head_r, reference.Head());
    VPTQ_ASSIGN_OR_RETURN(OutputHeadWeights head_c, candidate.Head());
    const int64_t d = c.hidden_size;
    const torch::Tensor xr = hr.slice(1, 0, -1).reshape({-1, d});
    const torch::Tensor xc = hc.slice(1, 0, -1).reshape({-1, d});
    const torch::Tensor targets = ids.slice(1, 1).reshape({-1}).to(device);
    const int64_t rows = std::max<int64_t>(1, logits_budget / std::max<int64_t>(1, c.vocab_size));
    Scores s;
    for (int64_t b = 0; b < xr.size(0); b += rows) {
      const int64_t e = std::min(xr.size(0), b + rows);
      s.Add(head_r.Logits(xr.slice(0, b, e)), head_c.Logits(xc.slice(0, b, e)),
            targets.slice(0, b, e));
    }
    s.Fill(report);
  } catch (const std::exception& e) {
    return absl::ResourceExhaustedError(absl::StrCat("evaluation: ", e.what()));
  }
  report.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return report;
}

absl::StatusOr<QualityReport> RunEvalTask(const EvalTaskInput& input) {
  const absl::Time start = absl::Now();
  VPTQ_ASSIGN_OR_RETURN(torch::Device device, ParseDevice(input.options.compute.device));
  VPTQ_ASSIGN_OR_RETURN(auto reader, model::ModelReader::Open(input.model_dir));
  std::unique_ptr<CheckpointReader> ckpt;
  if (!input.checkpoint_dir.empty()) {
    VPTQ_ASSIGN_OR_RETURN(ckpt, CheckpointReader::OpenDir(input.checkpoint_dir));
  } else {
    VPTQ_ASSIGN_OR_RETURN(ckpt, CheckpointReader::FromFiles(input.checkpoint_files));
  }
  TextSetOptions text = input.options.text;
  text.allow_fewer = true;
  VPTQ_ASSIGN_OR_RETURN(TokenSequences seqs, BuildTokenSequences(input.model_dir, text));

  ReaderEvalModel original(*reader, nullptr, device);
  CheckpointEvalModel quantized(*ckpt, device);
  VPTQ_ASSIGN_OR_RETURN(QualityReport r, CompareModels(original, quantized, seqs,
                                                       input.options.compute,
                                                       input.options.logits_budget));
  const ModelLayout& layout = reader->layout();
  double bits = 0, stored_bits = 0, mn_total = 0;
  for (const LinearSpec& l : layout.linears) {
    const double mn = static_cast<double>(l.out_features) * static_cast<double>(l.in_features);
    mn_total += mn;
    const double stored = 8.0 * static_cast<double>(ckpt->LinearBytes(l.name));
    stored_bits += stored;
    auto q = ckpt->quantized().find(l.name);
    bits += q == ckpt->quantized().end() ? stored : mn * q->second.BitsPerWeight(ckpt->element_bits());
  }
  r.quantized_linears = static_cast<int64_t>(ckpt->quantized().size());
  r.bpw_linears = bits / std::max(1.0, mn_total);
  r.bpw_linears_stored = stored_bits / std::max(1.0, mn_total);
  r.model_params = 0;
  for (const auto& [name, info] : layout.weights.tensors) r.model_params += info.numel();
  r.checkpoint_tensor_bytes = ckpt->tensor_bytes();
  r.bpw_file = 8.0 * static_cast<double>(r.checkpoint_tensor_bytes) /
               static_cast<double>(std::max<int64_t>(1, r.model_params));
  r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  log::Info("evaluation done", {{"stage", "eval"},
                                {"perplexity", r.perplexity},
                                {"perplexity_original", r.perplexity_original},
                                {"kl", r.kl_divergence},
                                {"top1", r.top1_agreement},
                                {"bpw_file", r.bpw_file},
                                {"seconds", r.seconds}});
  return r;
}

}  // namespace vptq::pipeline
