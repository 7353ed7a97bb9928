// Hessian-weighted k-means (DESIGN.md §2 step 5).
//
// Contract:
//  - x: (n, v) float32, w: (n,) float32 >= 0, on any device (CPU or CUDA);
//    results are on the same device.
//  - Weighted k-means++ seeding on a weighted sample of at most
//    `seed_sample` vectors, then Lloyd iterations: assignment by nearest
//    centroid (tiled so the n x K distance matrix is never whole; at most
//    `memory_budget_bytes` of scratch), weighted centroid update, empty
//    clusters reseeded from the points with the largest weighted error.
//    Stops when the relative inertia change < tol or after `iters`.
//  - Deterministic for a given seed and thread count.
//  - INVALID_ARGUMENT for k < 1, k > n, NaN/Inf in x or w, negative weights,
//    shape mismatch.
//
//   KMeansOptions opt{.k = 4096, .iters = 10, .seed = 7};
//   VPTQ_ASSIGN_OR_RETURN(KMeansResult r, WeightedKMeans(x, w, opt));
#pragma once

#include <cstdint>

#include <torch/types.h>

#include "absl/status/statusor.h"

namespace vptq::quant {

struct KMeansOptions {
  int64_t k = 256;
  int iters = 100;
  double tol = 1e-6;
  uint64_t seed = 0;
  int64_t seed_sample = 1 << 18;
  int64_t memory_budget_bytes = int64_t{256} << 20;
  bool fast_kernel = true;  // false: LibTorch reference assignment
};

struct KMeansResult {
  torch::Tensor centroids;   // (k, v) float32
  torch::Tensor assignment;  // (n,) int64
  double inertia = 0;        // sum_i w_i ||x_i - c_{a_i}||^2
  int iterations = 0;
};

absl::StatusOr<KMeansResult> WeightedKMeans(const torch::Tensor& x,
                                            const torch::Tensor& w,
                                            const KMeansOptions& options);

// Nearest centroid of each row of x (ties: lowest index). Returns (n,) int64.
// The fast path is a fused, register-blocked distance+argmin kernel on CPU;
// AssignNearestRef is the plain LibTorch reference it is tested against.
torch::Tensor AssignNearest(const torch::Tensor& x, const torch::Tensor& c,
                            int64_t memory_budget_bytes = int64_t{256} << 20);
torch::Tensor AssignNearestRef(const torch::Tensor& x, const torch::Tensor& c,
                               int64_t memory_budget_bytes = int64_t{256} << 20);

}  // namespace vptq::quant
