// Scalar baselines VPTQ is measured against, with the same proxy loss:
//  - RTN: asymmetric min-max rounding per output row and group of
//    `group_size` consecutive input columns.
//  - GPTQ-scalar: the same uniform asymmetric grid, quantized column by
//    column through the shared second-order pass (second_order.h) with
//    act-order; a group's grid (per row) is computed from the error-updated
//    weights when the pass reaches the group's first column, as GPTQ does.
//    With act-order the groups are runs of `group_size` columns in permuted
//    order.
//
// Grid: scale s = (max − min)/(2^b − 1) and zero z = round(−min/s), both
// rounded to `param_dtype` (they are stored that way), q = clamp(round(w/s)
// + z, 0, 2^b − 1), ŵ = (q − z)·s. A constant group uses s = |value| (or 1
// for 0), which reproduces the value exactly.
//
// Bits per weight, counted honestly (ScalarBitsPerWeight):
//   b                                     the codes
//   + 2·param_bits·ceil(N/group_size)/N   one scale and one zero per row and
//                                         group (fp16: 32/128 = 0.25)
//   + 32/M  (GPTQ with act-order only)    the int32 group index (g_idx) per
//                                         input column that act-order needs
//
// Thread safety: pure functions. Cost: RTN O(M·N); GPTQ O(M·N²) plus a
// Cholesky of H.
//
//   ScalarQuantOptions opt{.bits = 3};
//   VPTQ_ASSIGN_OR_RETURN(ScalarQuantResult r, QuantizeGptq(w, h, opt));
//   // r.weight is the dequantized (M, N) float32 weight
#pragma once

#include <cstdint>

#include <torch/types.h>

#include "absl/status/statusor.h"

namespace vptq::quant {

struct ScalarQuantOptions {
  int bits = 4;               // 1..8
  int64_t group_size = 128;   // input columns per (scale, zero)
  bool act_order = true;      // GPTQ only: columns by diag H descending
  int64_t block_size = 128;   // GPTQ lazy block; a multiple of group_size
  double damp_first_factor = 1e-3;  // extra damping if H is not PD
  torch::ScalarType param_dtype = torch::kHalf;  // scale/zero storage
};

struct ScalarQuantStats {
  double proxy_loss = 0;       // relative, original domain
  double bits_per_weight = 0;  // as in the header comment
  double seconds = 0;          // quantization only (not the proxy loss)
  double damping_added = 0;    // extra diagonal added to H (GPTQ)
};

struct ScalarQuantResult {
  torch::Tensor weight;  // (M, N) float32, dequantized
  ScalarQuantStats stats;
};

// w: (M, N), h: (N, N) finalized Hessian (only for the proxy loss in RTN).
// INVALID_ARGUMENT on bits outside 1..8, group_size < 1, block_size not a
// multiple of group_size, shape mismatch or NaN/Inf; FAILED_PRECONDITION
// when H cannot be made positive definite (GPTQ).
absl::StatusOr<ScalarQuantResult> QuantizeRtn(const torch::Tensor& w,
                                              const torch::Tensor& h,
                                              const ScalarQuantOptions& options);
absl::StatusOr<ScalarQuantResult> QuantizeGptq(
    const torch::Tensor& w, const torch::Tensor& h,
    const ScalarQuantOptions& options);

double ScalarBitsPerWeight(int64_t m, int64_t n, int bits, int64_t group_size,
                           bool act_order_index, int param_bits = 16);

}  // namespace vptq::quant
