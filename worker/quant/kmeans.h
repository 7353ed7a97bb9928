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
//
// Details:
//  - Seeding sample: `seed_sample` rows drawn uniformly without replacement
//    (all rows when n <= seed_sample), then k-means++ picks each next centre
//    with probability ∝ w_i·D(x_i)² (the first ∝ w_i). Rows of weight 0 are
//    never picked unless every candidate has w·D² = 0 (then uniformly).
//  - Stopping: after each assignment the exact inertia of the current
//    centroids is known; the loop stops when it fell by <= tol relative to
//    the previous one (tol = 0: only when an iteration stops improving), or
//    after `iters` centroid updates. The returned assignment and inertia are
//    always those of the returned centroids.
//  - Paths: CPU float32 with fast_kernel = true runs fused C++ loops (the
//    register-blocked assignment kernel of assign_nearest_cpu.h, a one-pass
//    fp64 weighted update, a chunked k-means++). Every other case (CUDA, or
//    fast_kernel = false) runs the device-agnostic LibTorch reference: tiled
//    addmm + argmin, stable sort + fp64 cumsum segment sums (deterministic on
//    CUDA too), cumsum + searchsorted sampling.
//  - Cost per iteration: 2·n·k·v flops for assignment plus O(n·v) for the
//    update; seeding costs O(seed_sample·k·v). Scratch: O((n + k)·v) plus,
//    on the reference path, at most memory_budget_bytes of score tiles.
//  - Thread safety: pure functions; concurrent calls are safe. CPU work uses
//    LibTorch's intra-op pool (at::parallel_for); results do not depend on
//    how many threads it has.
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
  bool fast_kernel = true;  // false: LibTorch reference path (see above)
  // Defined: (k, v) starting centroids used instead of k-means++ seeding.
  torch::Tensor init_centroids = {};
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

// The k-means++ seeding of WeightedKMeans alone (uses options.k, seed,
// seed_sample, fast_kernel): (k, v) float32 rows of x, same validation.
absl::StatusOr<torch::Tensor> WeightedKMeansPlusPlus(
    const torch::Tensor& x, const torch::Tensor& w, const KMeansOptions& options);

// sum_i w_i min_j ||x_i - c_j||^2, summed in fp64 (assignment by
// AssignNearest; each vector's distance to its centroid is recomputed as
// ||x - c||^2, not taken from the ||c||^2 - 2x.c expansion, which cancels).
// Same validation as WeightedKMeans. The benchmark scores faiss with it too.
absl::StatusOr<double> WeightedInertia(
    const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& centroids,
    int64_t memory_budget_bytes = int64_t{256} << 20);

// Nearest centroid of each row of x (ties: lowest index). Returns (n,) int64.
// The fast path is a fused, register-blocked distance+argmin kernel on CPU;
// AssignNearestRef is the plain LibTorch reference it is tested against.
// x (n, v) and c (k, v) floating, same device; the fused kernel runs for CPU
// float32 with v <= 16, otherwise AssignNearest is AssignNearestRef. These
// are low-level (callers validate user input first): a shape or device
// mismatch returns an undefined tensor.
torch::Tensor AssignNearest(const torch::Tensor& x, const torch::Tensor& c,
                            int64_t memory_budget_bytes = int64_t{256} << 20);
torch::Tensor AssignNearestRef(const torch::Tensor& x, const torch::Tensor& c,
                               int64_t memory_budget_bytes = int64_t{256} << 20);

}  // namespace vptq::quant
