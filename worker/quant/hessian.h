// Hessian statistics of one linear's input (DESIGN.md §1 step 2).
//
// HessianAccumulator sums S = Σ x xᵀ and the token count over batches of
// inputs. Partial accumulators (one per calibration shard) are merged with
// Merge, stored with Serialize and turned into the normalised, damped
// Hessian the quantizer uses with Finalize.
//
// Exactness: every batch contributes P = XᵀX computed in fp64 (X widened to
// fp64 first, so for fp16/bf16/fp32 inputs every product x_i·x_j is exact and
// only the sum over the batch's tokens rounds). The running sum is carried as
// an unevaluated double-double pair (hi, lo; ~106 significant bits) updated
// with error-free TwoSum, so adding the same batches in any order, or merging
// shards of them in any grouping, gives the same S = hi + lo rounded to fp64
// except when the exact sum lies within ~2⁻¹⁰⁰ (relative to the summed
// magnitudes) of a rounding midpoint. S is kept exactly symmetric (the upper
// triangle of each batch product is mirrored).
//
// Device: the sums live on the device given at construction; batches on
// another device are copied there. Serialize/Deserialize go through CPU.
//
// Thread safety: none; one accumulator per thread (merge them afterwards).
// Cost: Add is one (tokens × N)ᵀ(tokens × N) fp64 GEMM plus O(N²)
// elementwise work; memory 2·N²·8 bytes.
//
//   HessianAccumulator acc(/*n_features=*/4096);
//   for (const torch::Tensor& x : batches) VPTQ_RETURN_IF_ERROR(acc.Add(x));
//   VPTQ_RETURN_IF_ERROR(total.Merge(acc));            // shards
//   VPTQ_ASSIGN_OR_RETURN(FinalizedHessian h, total.Finalize({}));
//   torch::Tensor w = ZeroDeadColumns(weight, h.dead_columns);
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <torch/types.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vptq::quant {

struct HessianFinalizeOptions {
  double damp = 0.01;  // λ added to the diagonal after normalisation
};

struct FinalizedHessian {
  // (N, N) float64 on the accumulator's device:
  // H = S/n, H /= mean(diag H), H += λI, then H_jj = 1 for dead columns.
  torch::Tensor h;
  // Columns whose inputs were always zero (S_jj == 0), ascending. Their
  // weight columns should be zeroed (ZeroDeadColumns) before quantizing.
  std::vector<int64_t> dead_columns;
  int64_t tokens = 0;
};

class HessianAccumulator {
 public:
  explicit HessianAccumulator(int64_t n_features,
                              torch::Device device = torch::kCPU);

  // x: (..., N) of any floating dtype on any device; every leading index is
  // a token. INVALID_ARGUMENT on a wrong last dimension, a non-float dtype or
  // NaN/Inf.
  [[nodiscard]] absl::Status Add(const torch::Tensor& x);
  // Adds another accumulator's sums (same N). Exact as described above.
  [[nodiscard]] absl::Status Merge(const HessianAccumulator& other);

  // FAILED_PRECONDITION when no tokens were added or every column is dead;
  // INVALID_ARGUMENT for a negative damp.
  absl::StatusOr<FinalizedHessian> Finalize(
      const HessianFinalizeOptions& options) const;

  // S rounded to fp64, (N, N), exactly symmetric.
  torch::Tensor Sum() const;
  int64_t n_features() const { return n_; }
  int64_t tokens() const { return tokens_; }
  torch::Device device() const { return hi_.device(); }

  // Versioned little-endian bytes: magic, version, N, tokens, the upper
  // triangles of hi and lo, and a checksum.
  std::string Serialize() const;
  // INVALID_ARGUMENT on bad magic, unknown version, wrong length, a checksum
  // mismatch or non-finite sums.
  static absl::StatusOr<HessianAccumulator> Deserialize(
      std::string_view bytes, torch::Device device = torch::kCPU);

 private:
  void AddProduct(const torch::Tensor& p_hi, const torch::Tensor& p_lo);

  int64_t n_;
  int64_t tokens_ = 0;
  torch::Tensor hi_;  // (N, N) float64
  torch::Tensor lo_;  // (N, N) float64
};

// Finalize for an already averaged covariance-like matrix (S/n): normalise by
// the mean diagonal, damp, mark dead columns. Shared by the accumulator and
// generators that build H analytically. `h` is (N, N), any float dtype.
absl::StatusOr<FinalizedHessian> FinalizeHessian(
    const torch::Tensor& h, const HessianFinalizeOptions& options);

// Copy of weight (M, N) with the given columns set to zero.
torch::Tensor ZeroDeadColumns(const torch::Tensor& weight,
                              const std::vector<int64_t>& dead_columns);

}  // namespace vptq::quant
