// Deterministic, realistic stand-ins for one linear layer and its Hessian,
// for tests and benchmarks (real quality claims come from real models).
//
// Weights: W_ij = t_ij · r_i · c_j · weight_std, with t Student-t (heavy
// tails, unit variance), r and c log-normal per-output and per-input scales.
// Inputs: x = a ⊙ (A z + sqrt(1 − low_rank_share)·ε + μ), with A (N, rank)
// Gaussian factors carrying `low_rank_share` of the variance (correlated
// features), ε white noise, μ a small mean, and per-channel magnitudes a
// (log-normal, with `outlier_channels` channels 10–100× larger).
// H = E[xxᵀ] either analytically (tokens == 0: a diag(AAᵀ + (1−s)I + μμᵀ)
// a) or from `tokens` sampled inputs through HessianAccumulator; then
// finalized (normalised, damped) as DESIGN.md §1 step 2 says.
//
// Deterministic for a seed (own CPU generator, independent of thread count).
// Cost: O(M·N) for W, O(N²·rank) analytic or O(tokens·N²) sampled.
//
//   VPTQ_ASSIGN_OR_RETURN(SyntheticLinear s,
//       MakeSyntheticLinear({.out_features = 4096, .in_features = 4096}));
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "absl/status/statusor.h"

namespace vptq::quant {

struct SyntheticOptions {
  int64_t out_features = 256;
  int64_t in_features = 256;
  uint64_t seed = 0;
  int student_t_dof = 4;          // integer degrees of freedom (>= 3)
  double out_scale_sigma = 0.3;   // log-normal σ of per-row weight scales
  double in_scale_sigma = 0.3;    // log-normal σ of per-column weight scales
  double weight_std = 0.02;
  int64_t rank = 32;              // low-rank factors of the input covariance
  double low_rank_share = 0.7;    // variance share of the low-rank part
  double channel_sigma = 0.5;     // log-normal σ of input channel magnitudes
  double mean_scale = 0.2;        // size of the input mean μ
  int64_t outlier_channels = -1;  // -1: max(1, N/512)
  double outlier_min = 10;        // outlier magnitude, log-uniform in
  double outlier_max = 100;       //   [min, max]
  int64_t tokens = 0;             // 0: analytic H
  double damp = 0.01;
};

struct SyntheticLinear {
  torch::Tensor weight;   // (M, N) float32
  torch::Tensor hessian;  // (N, N) float64, finalized
  std::vector<int64_t> outlier_channels;
};

// INVALID_ARGUMENT on non-positive sizes, rank < 0, dof < 3, share outside
// [0, 1], or outlier_channels > N.
absl::StatusOr<SyntheticLinear> MakeSyntheticLinear(const SyntheticOptions& o);

}  // namespace vptq::quant
