// One Llama-family decoder layer (pre-norm attention + SwiGLU MLP with
// residuals), loaded on its own from a ModelReader so that a forward pass
// streams the model one layer at a time.
//
// Contract:
//  - Load() reads the layer's 9 (or, with biases, up to 16) tensors in the
//    requested dtype onto the requested device; a WeightOverride can replace
//    any linear's weight (e.g. a dequantized one), shape-checked.
//  - Forward() takes hidden states (batch, L, hidden_size) in the layer's
//    dtype and returns the layer output. The hook, when given, sees each
//    distinct linear input once, in forward order: kAttnIn (the normed input
//    q/k/v share), kAttnOut (o_proj's input), kMlpIn (gate/up's shared
//    input), kMlpAct (down_proj's input), each (batch, L, in_features). A
//    hook error stops the forward and is returned.
//  - Every sequence in the batch has positions 0..L-1 and no padding.
//  - Forward() is const and thread-compatible; torch errors come back as
//    INVALID_ARGUMENT, never as exceptions.
//
//   VPTQ_ASSIGN_OR_RETURN(DecoderLayer layer, DecoderLayer::Load(reader, 3, {}));
//   VPTQ_ASSIGN_OR_RETURN(hidden, layer.Forward(hidden, rope,
//       [&](int64_t l, LinearInput in, const torch::Tensor& x) {
//         return hessians.Add(LinearInputKey(l, in), x);
//       }));
#pragma once

#include <array>
#include <functional>
#include <optional>
#include <string>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "common/hf_config.h"
#include "worker/model/llama_ops.h"
#include "worker/model/model_reader.h"

namespace vptq::model {

// Receives a linear input during a forward: (batch, L, in_features), valid
// only during the call (clone to keep it).
using LinearInputHook =
    std::function<absl::Status(int64_t layer, LinearInput input, const torch::Tensor& x)>;

// Asked once per linear as its layer loads, with the linear's name without
// ".weight" ("model.layers.3.mlp.up_proj", or "lm_head"); returns a weight to
// use instead of the stored one, or nullopt to keep the stored one.
using WeightOverride =
    std::function<absl::StatusOr<std::optional<torch::Tensor>>(const std::string& linear_name)>;

struct LoadOptions {
  torch::ScalarType dtype = torch::kFloat;  // weights and compute
  torch::Device device = torch::kCPU;
  WeightOverride weight_override;  // optional
};

struct DecoderLayerWeights {
  torch::Tensor input_norm;           // (d)
  torch::Tensor post_attention_norm;  // (d)
  // Indexed by LinearKind: (out_features, in_features); bias (out_features) or undefined.
  std::array<torch::Tensor, 7> weight;
  std::array<torch::Tensor, 7> bias;

  torch::Tensor& W(LinearKind kind) { return weight[static_cast<size_t>(kind)]; }
  const torch::Tensor& W(LinearKind kind) const { return weight[static_cast<size_t>(kind)]; }
  const torch::Tensor& B(LinearKind kind) const { return bias[static_cast<size_t>(kind)]; }
};

class DecoderLayer {
 public:
  static absl::StatusOr<DecoderLayer> Load(const ModelReader& reader, int64_t layer,
                                           const LoadOptions& options);
  // From tensors already in memory (tests, synthetic models); shapes checked.
  static absl::StatusOr<DecoderLayer> FromWeights(const HfModelConfig& config, int64_t layer,
                                                  DecoderLayerWeights weights);

  absl::StatusOr<torch::Tensor> Forward(const torch::Tensor& hidden, const RotaryEmbedding& rope,
                                        const LinearInputHook& hook = nullptr) const;

  // Replaces one linear's weight (same shape, converted to the layer's dtype
  // and device).
  absl::Status ReplaceWeight(LinearKind kind, const torch::Tensor& weight);

  int64_t index() const { return layer_; }
  const DecoderLayerWeights& weights() const { return w_; }

 private:
  DecoderLayer(const HfModelConfig& config, int64_t layer, DecoderLayerWeights w)
      : config_(config), layer_(layer), w_(std::move(w)) {}
  absl::Status CheckWeights() const;

  HfModelConfig config_;
  int64_t layer_;
  DecoderLayerWeights w_;
};

}  // namespace vptq::model
