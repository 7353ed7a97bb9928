// The channel-independent second-order pass (DESIGN.md §2 step 6), shared by
// VPTQ and GPTQ-scalar: columns are quantized one at a time (a whole column
// before its error is fed forward) and the scaled error is pushed onto the
// columns not yet quantized, in lazy blocks of B columns.
//
// With U the upper Cholesky factor of H⁻¹ (UᵀU = H⁻¹):
//   for each block [i, i+B):
//     for n in block:
//       q_n = quantize(current column n)
//       e_n = (w_n − q_n) / U[n,n]
//       W[:, n+1:i+B] −= e_n · U[n, n+1:i+B]
//     W[:, i+B:] −= E_block · U[i:i+B, i+B:]
// The in-block update is applied left-looking (column n subtracts
// Σ_{k<n} e_k U[k,n] just before it is quantized), which is the same
// arithmetic reordered.
// Rows never mix, so padded rows (a multiple of v) cannot disturb real ones.
//
// Device-agnostic: everything runs on the device of W. Thread safety: pure
// functions; the quantize callback is called from the calling thread in
// column order. Cost: O(M·N²) for the feedback (one GEMM per block) plus
// the callbacks.
//
//   VPTQ_ASSIGN_OR_RETURN(InverseCholesky u, UpperCholeskyOfInverse(h, {}));
//   VPTQ_ASSIGN_OR_RETURN(SecondOrderResult r,
//       RunSecondOrderPass(w, u.u, my_column_quantizer, {}));
#pragma once

#include <cstdint>
#include <functional>

#include <torch/types.h>

#include "absl/status/statusor.h"

namespace vptq::quant {

struct DampingOptions {
  // When chol(H) fails, retry with H + f·mean(diag H)·I for each f, in order;
  // each retry is logged with vptq::log::Warn. After the last,
  // FAILED_PRECONDITION.
  double first_factor = 1e-3;
  double growth = 10.0;
  int max_steps = 5;  // 1e-3, 1e-2, 1e-1, 1, 10
};

struct InverseCholesky {
  torch::Tensor u;           // (N, N) float64, upper, UᵀU = (H + extra·I)⁻¹
  double extra_damping = 0;  // absolute amount added to the diagonal
  int damping_steps = 0;
};

// U = chol(cholesky_inverse(chol(H)), upper). H: (N, N) floating, symmetric.
// INVALID_ARGUMENT on a bad shape or NaN/Inf; FAILED_PRECONDITION when H is
// not positive definite even after the extra damping (message says so and
// what to do).
absl::StatusOr<InverseCholesky> UpperCholeskyOfInverse(
    const torch::Tensor& h, const DampingOptions& options);

// Quantizes one column. `col` is the column index (in the pass's order);
// `work` is the pass's transposed working weight (N, M), float32,
// contiguous: row `col` is the current column with every earlier error fed
// to it; the other rows of [col, block_end) hold the errors of earlier
// blocks only (the lazy-block state GPTQ also reads its group grid from).
// Returns (M,) quantized values on work's device, float32.
using ColumnQuantizeFn = std::function<torch::Tensor(
    int64_t col, int64_t block_end, const torch::Tensor& work)>;

struct SecondOrderOptions {
  int64_t block_size = 128;
  // false: no error feedback at all (each column quantized as it is); the
  // baseline the pass is measured against.
  bool error_feedback = true;
};

struct SecondOrderResult {
  torch::Tensor quantized;  // (M, N) float32, the callback's outputs
  // (M, N) float32: each column as the callback saw it (after the errors of
  // the earlier columns were fed to it). VPTQ fits residual codebooks and
  // refines centroids on these.
  torch::Tensor updated;
};

// w: (M, N) float (any float dtype, converted to float32), u: (N, N) upper
// factor from UpperCholeskyOfInverse (any float dtype). INVALID_ARGUMENT on
// shape mismatch or block_size < 1.
absl::StatusOr<SecondOrderResult> RunSecondOrderPass(
    const torch::Tensor& w, const torch::Tensor& u,
    const ColumnQuantizeFn& quantize, const SecondOrderOptions& options);

// Plain reference: after every column, the error is fed to all later columns
// at once (no lazy blocks). Same contract; O(M·N²) rank-1 updates, slow.
absl::StatusOr<SecondOrderResult> RunSecondOrderPassRef(
    const torch::Tensor& w, const torch::Tensor& u,
    const ColumnQuantizeFn& quantize, bool error_feedback = true);

}  // namespace vptq::quant
