#include "worker/model/decoder_layer.h"

#include <exception>
#include <utility>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "worker/model/torch_error.h"

namespace vptq::model {
namespace {

std::string ShapeString(c10::IntArrayRef shape) {
  return absl::StrCat("[", absl::StrJoin(shape.begin(), shape.end(), ", "), "]");
}

absl::Status CheckShape(const torch::Tensor& t, std::vector<int64_t> shape,
                        const std::string& what) {
  if (!t.defined()) return absl::InvalidArgumentError(absl::StrCat(what, " is missing"));
  if (t.sizes() != c10::IntArrayRef(shape)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " has shape ", ShapeString(t.sizes()),
                                                   ", expected ", ShapeString(shape)));
  }
  return absl::OkStatus();
}

torch::Tensor Linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  return b.defined() ? torch::linear(x, w, b) : torch::linear(x, w);
}

}  // namespace

absl::StatusOr<DecoderLayer> DecoderLayer::Load(const ModelReader& reader, int64_t layer,
                                                const LoadOptions& options) {
  const HfModelConfig& c = reader.config();
  if (layer < 0 || layer >= c.num_hidden_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer ", layer, " is out of range [0, ", c.num_hidden_layers, ")"));
  }
  const std::string prefix = absl::StrCat("model.layers.", layer, ".");
  const int64_t d = c.hidden_size;
  DecoderLayerWeights w;
  VPTQ_ASSIGN_OR_RETURN(w.input_norm,
                        reader.Load(prefix + "input_layernorm.weight", {d}, options.dtype));
  VPTQ_ASSIGN_OR_RETURN(w.post_attention_norm,
                        reader.Load(prefix + "post_attention_layernorm.weight", {d}, options.dtype));
  for (LinearKind kind : kAllLinearKinds) {
    const std::string name = LinearName(layer, kind);
    const auto [out, in] = LinearShape(c, kind);
    std::optional<torch::Tensor> replaced;
    if (options.weight_override) {
      auto r = options.weight_override(name);
      if (!r.ok()) return Annotate(r.status(), "weight override for ", name);
      replaced = *std::move(r);
    }
    const size_t k = static_cast<size_t>(kind);
    if (replaced) {
      VPTQ_RETURN_IF_ERROR(CheckShape(*replaced, {out, in}, absl::StrCat("override for ", name)));
      w.weight[k] = *replaced;
    } else {
      VPTQ_ASSIGN_OR_RETURN(w.weight[k], reader.Load(name + ".weight", {out, in}, options.dtype));
    }
    if (LinearHasBias(c, kind)) {
      VPTQ_ASSIGN_OR_RETURN(w.bias[k], reader.Load(name + ".bias", {out}, options.dtype));
    }
  }
  try {
    auto to = [&](torch::Tensor& t) {
      if (t.defined()) t = t.to(options.device, options.dtype).contiguous();
    };
    to(w.input_norm);
    to(w.post_attention_norm);
    for (auto& t : w.weight) to(t);
    for (auto& t : w.bias) to(t);
  } catch (const std::exception& e) {
    return TorchError(e, absl::StrCat("moving layer ", layer, " to ", options.device.str()));
  }
  return FromWeights(c, layer, std::move(w));
}

absl::StatusOr<DecoderLayer> DecoderLayer::FromWeights(const HfModelConfig& config,
                                                       int64_t layer,
                                                       DecoderLayerWeights weights) {
  DecoderLayer l(config, layer, std::move(weights));
  VPTQ_RETURN_IF_ERROR(l.CheckWeights());
  return l;
}

absl::Status DecoderLayer::CheckWeights() const {
  const int64_t d = config_.hidden_size;
  VPTQ_RETURN_IF_ERROR(CheckShape(w_.input_norm, {d}, "input_layernorm"));
  VPTQ_RETURN_IF_ERROR(CheckShape(w_.post_attention_norm, {d}, "post_attention_layernorm"));
  for (LinearKind kind : kAllLinearKinds) {
    const auto [out, in] = LinearShape(config_, kind);
    const std::string name = LinearName(layer_, kind);
    VPTQ_RETURN_IF_ERROR(CheckShape(w_.W(kind), {out, in}, name + ".weight"));
    if (LinearHasBias(config_, kind)) {
      VPTQ_RETURN_IF_ERROR(CheckShape(w_.B(kind), {out}, name + ".bias"));
    } else if (w_.B(kind).defined()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ".bias is given but ", config_.architecture,
                       " with this config has no bias there"));
    }
  }
  return absl::OkStatus();
}

absl::Status DecoderLayer::ReplaceWeight(LinearKind kind, const torch::Tensor& weight) {
  const auto [out, in] = LinearShape(config_, kind);
  const std::string name = LinearName(layer_, kind) + ".weight";
  VPTQ_RETURN_IF_ERROR(CheckShape(weight, {out, in}, absl::StrCat("replacement for ", name)));
  torch::Tensor& dst = w_.W(kind);
  try {
    dst = weight.to(dst.device(), dst.scalar_type()).contiguous();
  } catch (const std::exception& e) {
    return TorchError(e, absl::StrCat("replacing ", name));
  }
  return absl::OkStatus();
}

absl::StatusOr<torch::Tensor> DecoderLayer::Forward(const torch::Tensor& hidden,
                                                    const RotaryEmbedding& rope,
                                                    const LinearInputHook& hook) const {
  const HfModelConfig& c = config_;
  if (!hidden.defined() || hidden.dim() != 3 || hidden.size(2) != c.hidden_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "layer ", layer_, ": hidden states must be (batch, L, ", c.hidden_size, "), got ",
        hidden.defined() ? ShapeString(hidden.sizes()) : "undefined"));
  }
  if (hidden.size(1) > rope.max_positions()) {
    return absl::InvalidArgumentError(absl::StrCat("layer ", layer_, ": sequence length ",
                                                   hidden.size(1), " exceeds the rotary tables (",
                                                   rope.max_positions(), ")"));
  }
  auto call_hook = [&](LinearInput input, const torch::Tensor& x) -> absl::Status {
    if (!hook) return absl::OkStatus();
    return hook(layer_, input, x);
  };
  try {
    const int64_t batch = hidden.size(0), len = hidden.size(1), hd = c.head_dim;
    const torch::Tensor x = hidden.to(w_.input_norm.scalar_type());

    const torch::Tensor attn_in = RmsNorm(x, w_.input_norm, c.rms_norm_eps);
    VPTQ_RETURN_IF_ERROR(call_hook(LinearInput::kAttnIn, attn_in));
    auto heads = [&](LinearKind kind, int64_t n) {
      return Linear(attn_in, w_.W(kind), w_.B(kind)).view({batch, len, n, hd}).transpose(1, 2);
    };
    const torch::Tensor q = rope.Apply(heads(LinearKind::kQ, c.num_attention_heads));
    const torch::Tensor k = rope.Apply(heads(LinearKind::kK, c.num_key_value_heads));
    const torch::Tensor v = heads(LinearKind::kV, c.num_key_value_heads);
    const torch::Tensor attn_out = CausalAttention(q, k, v, c.sliding_window)
                                       .transpose(1, 2)
                                       .reshape({batch, len, c.num_attention_heads * hd});
    VPTQ_RETURN_IF_ERROR(call_hook(LinearInput::kAttnOut, attn_out));
    const torch::Tensor h = x + Linear(attn_out, w_.W(LinearKind::kO), w_.B(LinearKind::kO));

    const torch::Tensor mlp_in = RmsNorm(h, w_.post_attention_norm, c.rms_norm_eps);
    VPTQ_RETURN_IF_ERROR(call_hook(LinearInput::kMlpIn, mlp_in));
    const torch::Tensor act =
        SwiGlu(Linear(mlp_in, w_.W(LinearKind::kGate), w_.B(LinearKind::kGate)),
               Linear(mlp_in, w_.W(LinearKind::kUp), w_.B(LinearKind::kUp)));
    VPTQ_RETURN_IF_ERROR(call_hook(LinearInput::kMlpAct, act));
    return h + Linear(act, w_.W(LinearKind::kDown), w_.B(LinearKind::kDown));
  } catch (const std::exception& e) {
    return TorchError(e, absl::StrCat("layer ", layer_, " forward"));
  }
}

}  // namespace vptq::model
