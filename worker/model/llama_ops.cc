#include "worker/model/llama_ops.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "worker/model/torch_error.h"

namespace vptq::model {

torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  const torch::Tensor xf = x.to(torch::kFloat);
  const torch::Tensor inv_rms = torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * (xf * inv_rms).to(x.scalar_type());
}

torch::Tensor SwiGlu(const torch::Tensor& gate, const torch::Tensor& up) {
  return torch::silu(gate) * up;
}

absl::StatusOr<torch::Tensor> RotaryEmbedding::InverseFrequencies(const HfModelConfig& config) {
  const int64_t half = config.head_dim / 2;
  torch::Tensor inv = torch::empty({half}, torch::kDouble);
  auto a = inv.accessor<double, 1>();
  const RopeScaling& rs = config.rope_scaling;
  const bool plain = rs.type == "default";
  if (!plain && rs.type != "linear" && rs.type != "llama3") {
    return absl::FailedPreconditionError(absl::StrCat(
        "rope_scaling type '", rs.type,
        "' is not supported by the Llama-family forward (default, linear, llama3)"));
  }
  if (rs.type == "llama3" && (rs.original_max_position_embeddings <= 0 ||
                              rs.high_freq_factor <= rs.low_freq_factor)) {
    return absl::InvalidArgumentError(
        "rope_scaling llama3 needs original_max_position_embeddings > 0 and "
        "high_freq_factor > low_freq_factor");
  }
  for (int64_t i = 0; i < half; ++i) {
    double f = 1.0 / std::pow(config.rope_theta,
                              static_cast<double>(2 * i) / static_cast<double>(config.head_dim));
    if (rs.type == "linear") {
      f /= rs.factor;
    } else if (rs.type == "llama3") {
      // transformers' _compute_llama3_parameters: long wavelengths are scaled
      // by `factor`, short ones kept, the band between interpolated.
      const double old_len = static_cast<double>(rs.original_max_position_embeddings);
      const double low_wavelen = old_len / rs.low_freq_factor;
      const double high_wavelen = old_len / rs.high_freq_factor;
      const double wavelen = 2.0 * M_PI / f;
      if (wavelen > low_wavelen) {
        f /= rs.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth =
            (old_len / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
        f = (1.0 - smooth) * f / rs.factor + smooth * f;
      }
    }
    a[i] = f;
  }
  return inv;
}

absl::StatusOr<RotaryEmbedding> RotaryEmbedding::Create(const HfModelConfig& config,
                                                        int64_t max_positions,
                                                        torch::Device device) {
  if (max_positions <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_positions must be > 0, got ", max_positions));
  }
  auto inv = InverseFrequencies(config);
  if (!inv.ok()) return inv.status();
  try {
    // Angles in float64: position * frequency loses digits in float32 at
    // long contexts.
    const torch::Tensor pos = torch::arange(max_positions, torch::kDouble);
    const torch::Tensor freqs = torch::outer(pos, *inv);
    const torch::Tensor angles = torch::cat({freqs, freqs}, -1);
    RotaryEmbedding r;
    r.cos_ = angles.cos().to(torch::kFloat).to(device);
    r.sin_ = angles.sin().to(torch::kFloat).to(device);
    return r;
  } catch (const std::exception& e) {
    return TorchError(e, "building rotary tables");
  }
}

torch::Tensor RotaryEmbedding::Apply(const torch::Tensor& x) const {
  const int64_t len = x.size(-2);
  TORCH_CHECK(len <= cos_.size(0), "rotary tables cover ", cos_.size(0), " positions, got ", len);
  TORCH_CHECK(x.size(-1) == cos_.size(1), "head_dim ", x.size(-1), " != rotary dim ",
              cos_.size(1));
  const torch::Tensor c = cos_.slice(0, 0, len).to(x.scalar_type());
  const torch::Tensor s = sin_.slice(0, 0, len).to(x.scalar_type());
  const int64_t half = x.size(-1) / 2;
  const torch::Tensor rotated = torch::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
  return x * c + rotated * s;
}

namespace {

// allowed[i, j] for query positions [q0, q1) and key positions [k0, k1).
torch::Tensor AllowedMask(int64_t q0, int64_t q1, int64_t k0, int64_t k1,
                          std::optional<int64_t> window, torch::Device device) {
  const auto opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  const torch::Tensor i = torch::arange(q0, q1, opts).unsqueeze(1);
  const torch::Tensor j = torch::arange(k0, k1, opts).unsqueeze(0);
  torch::Tensor allowed = j <= i;
  if (window) allowed = allowed & ((i - j) < *window);
  return allowed;
}

void CheckAttentionShapes(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention wants 4-D q, k, v");
  TORCH_CHECK(k.sizes() == v.sizes(), "k and v shapes differ");
  TORCH_CHECK(q.size(0) == k.size(0) && q.size(2) == k.size(2) && q.size(3) == k.size(3),
              "q ", q.sizes(), " and k ", k.sizes(), " disagree");
  TORCH_CHECK(k.size(1) > 0 && q.size(1) % k.size(1) == 0, "heads ", q.size(1),
              " not a multiple of kv heads ", k.size(1));
}

}  // namespace

torch::Tensor CausalAttentionReference(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v,
                                       std::optional<int64_t> sliding_window) {
  CheckAttentionShapes(q, k, v);
  const int64_t groups = q.size(1) / k.size(1);
  const int64_t len = q.size(2);
  const torch::Tensor kr = k.repeat_interleave(groups, 1);
  const torch::Tensor vr = v.repeat_interleave(groups, 1);
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(3)));
  torch::Tensor scores = torch::matmul(q, kr.transpose(-1, -2)).to(torch::kFloat) * scale;
  const torch::Tensor allowed = AllowedMask(0, len, 0, len, sliding_window, q.device());
  scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
  const torch::Tensor probs = torch::softmax(scores, -1).to(q.scalar_type());
  return torch::matmul(probs, vr);
}

torch::Tensor CausalAttention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, std::optional<int64_t> sliding_window,
                              int64_t max_score_elements) {
  CheckAttentionShapes(q, k, v);
  const int64_t batch = q.size(0), heads = q.size(1), len = q.size(2), dim = q.size(3);
  const int64_t kv_heads = k.size(1), groups = heads / kv_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(dim));
  const int64_t per_row = std::max<int64_t>(1, batch * heads * len);
  const int64_t block = std::clamp<int64_t>(max_score_elements / per_row, 1, std::max<int64_t>(len, 1));

  // Query head h = kv * groups + g reads K/V head kv: group the query heads
  // instead of repeating K/V.
  const torch::Tensor qg = q.reshape({batch, kv_heads, groups, len, dim});
  torch::Tensor out = torch::empty_like(qg);
  for (int64_t q0 = 0; q0 < len; q0 += block) {
    const int64_t q1 = std::min(len, q0 + block), rows = q1 - q0;
    const int64_t k0 = sliding_window ? std::max<int64_t>(0, q0 - *sliding_window + 1) : 0;
    const int64_t cols = q1 - k0;
    const torch::Tensor kb = k.slice(2, k0, q1);
    const torch::Tensor vb = v.slice(2, k0, q1);
    const torch::Tensor qb = qg.slice(3, q0, q1).reshape({batch, kv_heads, groups * rows, dim});
    torch::Tensor scores =
        (torch::matmul(qb, kb.transpose(-1, -2)).to(torch::kFloat) * scale)
            .view({batch, kv_heads, groups, rows, cols});
    const torch::Tensor allowed = AllowedMask(q0, q1, k0, q1, sliding_window, q.device());
    scores.masked_fill_(allowed.logical_not(), -std::numeric_limits<float>::infinity());
    const torch::Tensor probs = torch::softmax(scores, -1).to(q.scalar_type());
    out.slice(3, q0, q1).copy_(
        torch::matmul(probs.view({batch, kv_heads, groups * rows, cols}), vb)
            .view({batch, kv_heads, groups, rows, dim}));
  }
  return out.view({batch, heads, len, dim});
}

}  // namespace vptq::model
