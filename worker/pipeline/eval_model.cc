#include "worker/pipeline/eval_model.h"

#include <exception>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/model/llama_model.h"
#include "worker/model/llama_ops.h"

namespace vptq::pipeline {
namespace {

absl::Status TorchFailure(const std::exception& e, const std::string& what) {
  return absl::ResourceExhaustedError(absl::StrCat(what, ": ", e.what()));
}

}  // namespace

torch::Tensor OutputHeadWeights::Logits(const torch::Tensor& hidden) const {
  return torch::linear(model::RmsNorm(hidden.to(torch::kFloat), norm, eps), lm_head);
}

ReaderEvalModel::ReaderEvalModel(const model::ModelReader& reader,
                                 model::WeightOverride override, torch::Device device)
    : reader_(reader) {
  options_.dtype = torch::kFloat;
  options_.device = device;
  options_.weight_override = std::move(override);
}

absl::StatusOr<torch::Tensor> ReaderEvalModel::Embed(const torch::Tensor& ids) const {
  return model::EmbedTokens(reader_, ids, options_);
}

absl::StatusOr<model::DecoderLayer> ReaderEvalModel::Layer(int64_t layer) const {
  return model::DecoderLayer::Load(reader_, layer, options_);
}

absl::StatusOr<OutputHeadWeights> ReaderEvalModel::Head() const {
  const HfModelConfig& c = reader_.config();
  OutputHeadWeights h;
  h.eps = c.rms_norm_eps;
  VPTQ_ASSIGN_OR_RETURN(h.norm, reader_.Load("model.norm.weight", {c.hidden_size}));
  std::optional<torch::Tensor> head;
  if (options_.weight_override) {
    auto r = options_.weight_override("lm_head");
    if (!r.ok()) return Annotate(r.status(), "weight override for lm_head");
    head = *std::move(r);
  }
  if (head) {
    h.lm_head = head->to(torch::kFloat);
  } else {
    VPTQ_ASSIGN_OR_RETURN(h.lm_head, reader_.Load(reader_.layout().lm_head_tensor(),
                                                  {c.vocab_size, c.hidden_size}));
  }
  try {
    h.norm = h.norm.to(options_.device);
    h.lm_head = h.lm_head.to(options_.device);
  } catch (const std::exception& e) {
    return TorchFailure(e, "output head");
  }
  return h;
}

absl::StatusOr<torch::Tensor> CheckpointEvalModel::Embed(const torch::Tensor& ids) const {
  const HfModelConfig& c = ckpt_.config();
  VPTQ_RETURN_IF_ERROR(model::CheckTokenIds(ids, c));
  VPTQ_ASSIGN_OR_RETURN(torch::Tensor table,
                        ckpt_.LoadTensor("model.embed_tokens.weight",
                                         {c.vocab_size, c.hidden_size}));
  try {
    return table.index_select(0, ids.reshape({-1}).to(torch::kCPU))
        .view({ids.size(0), ids.size(1), c.hidden_size})
        .to(device_);
  } catch (const std::exception& e) {
    return TorchFailure(e, "embedding lookup");
  }
}

absl::StatusOr<model::DecoderLayer> CheckpointEvalModel::Layer(int64_t layer) const {
  const HfModelConfig& c = ckpt_.config();
  if (layer < 0 || layer >= c.num_hidden_layers) {
    return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " is out of range"));
  }
  const std::string prefix = absl::StrCat("model.layers.", layer, ".");
  model::DecoderLayerWeights w;
  VPTQ_ASSIGN_OR_RETURN(w.input_norm,
                        ckpt_.LoadTensor(prefix + "input_layernorm.weight", {c.hidden_size}));
  VPTQ_ASSIGN_OR_RETURN(w.post_attention_norm, ckpt_.LoadTensor(prefix +
                                                                    "post_attention_layernorm.weight",
                                                                {c.hidden_size}));
  for (LinearKind kind : kAllLinearKinds) {
    const auto [m, n] = LinearShape(c, kind);
    VPTQ_ASSIGN_OR_RETURN(LinearWeights lw,
                          ckpt_.LoadLinear(LinearName(layer, kind), m, n, LinearHasBias(c, kind)));
    w.weight[static_cast<size_t>(kind)] = std::move(lw.weight);
    w.bias[static_cast<size_t>(kind)] = std::move(lw.bias);
  }
  try {
    auto to = [&](torch::Tensor& t) {
      if (t.defined()) t = t.to(device_, torch::kFloat).contiguous();
    };
    to(w.input_norm);
    to(w.post_attention_norm);
    for (auto& t : w.weight) to(t);
    for (auto& t : w.bias) to(t);
  } catch (const std::exception& e) {
    return TorchFailure(e, absl::StrCat("moving layer ", layer));
  }
  return model::DecoderLayer::FromWeights(c, layer, std::move(w));
}

absl::StatusOr<OutputHeadWeights> CheckpointEvalModel::Head() const {
  const HfModelConfig& c = ckpt_.config();
  OutputHeadWeights h;
  h.eps = c.rms_norm_eps;
  VPTQ_ASSIGN_OR_RETURN(h.norm, ckpt_.LoadTensor("model.norm.weight", {c.hidden_size}));
  if (ckpt_.quantized().count("lm_head") > 0) {
    VPTQ_ASSIGN_OR_RETURN(LinearWeights lw,
                          ckpt_.LoadLinear("lm_head", c.vocab_size, c.hidden_size, false));
    h.lm_head = std::move(lw.weight);
  } else {
    absl::StatusOr<torch::Tensor> head =
        ckpt_.LoadTensor("lm_head.weight", {c.vocab_size, c.hidden_size});
    if (!head.ok() && absl::IsNotFound(head.status()) && c.tie_word_embeddings) {
      head = ckpt_.LoadTensor("model.embed_tokens.weight", {c.vocab_size, c.hidden_size});
    }
    if (!head.ok()) return head.status();
    h.lm_head = *std::move(head);
  }
  try {
    h.norm = h.norm.to(device_);
    h.lm_head = h.lm_head.to(device_);
  } catch (const std::exception& e) {
    return TorchFailure(e, "output head");
  }
  return h;
}

}  // namespace vptq::pipeline
