// The building blocks of a Llama-family decoder, as HF transformers computes
// them: RMSNorm, rotary position embeddings in the half-split convention,
// causal grouped-query attention, SwiGLU. Device-agnostic torch ops; inputs
// stay on their device and dtype (normalisation and softmax run in float32,
// as transformers does, then cast back).
//
// CausalAttention is the memory-bounded path (query blocks, no repeated K/V);
// CausalAttentionReference is the plain formula beside it, and tests compare
// them.
//
//   VPTQ_ASSIGN_OR_RETURN(RotaryEmbedding rope,
//       RotaryEmbedding::Create(config, /*max_positions=*/L, device));
//   q = rope.Apply(q);                                // (B, H, L, head_dim)
//   torch::Tensor a = CausalAttention(q, k, v, std::nullopt);
#pragma once

#include <cstdint>
#include <optional>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "common/hf_config.h"

namespace vptq::model {

// weight * x / sqrt(mean(x^2) + eps) over the last dimension.
torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// silu(gate) * up.
torch::Tensor SwiGlu(const torch::Tensor& gate, const torch::Tensor& up);

// cos/sin tables for positions [0, max_positions). Immutable after Create();
// safe to share between threads.
class RotaryEmbedding {
 public:
  // FAILED_PRECONDITION for rope_scaling types other than default, linear and
  // llama3.
  static absl::StatusOr<RotaryEmbedding> Create(const HfModelConfig& config,
                                                int64_t max_positions,
                                                torch::Device device = torch::kCPU);
  // The per-pair inverse frequencies (head_dim / 2), float64, after scaling.
  static absl::StatusOr<torch::Tensor> InverseFrequencies(const HfModelConfig& config);

  // Rotates x (B, heads, L, head_dim) for positions 0..L-1 (L <= max_positions):
  // x * cos + rotate_half(x) * sin, with pairs (i, i + head_dim/2).
  torch::Tensor Apply(const torch::Tensor& x) const;

  int64_t max_positions() const { return cos_.size(0); }
  const torch::Tensor& cos() const { return cos_; }  // (max_positions, head_dim) float32
  const torch::Tensor& sin() const { return sin_; }

 private:
  torch::Tensor cos_, sin_;
};

// Causal scaled-dot-product attention with grouped K/V heads.
// q: (B, H, L, D); k, v: (B, KV, L, D) with H % KV == 0 (query head h reads
// K/V head h / (H / KV)). Position i attends to j <= i (and i - j < window
// when a sliding window is given). Returns (B, H, L, D) in q's dtype.
torch::Tensor CausalAttentionReference(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v,
                                       std::optional<int64_t> sliding_window);
// Same result; processes query blocks so that no more than about
// `max_score_elements` attention scores exist at once, and reads only the
// keys a block can see.
torch::Tensor CausalAttention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, std::optional<int64_t> sliding_window,
                              int64_t max_score_elements = int64_t{1} << 24);

}  // namespace vptq::model
