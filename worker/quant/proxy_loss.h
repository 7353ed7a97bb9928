// The proxy loss every quantizer and benchmark reports (DESIGN.md §2 step 9):
//   tr(ΔW H ΔWᵀ) / tr(W H Wᵀ),  ΔW = W − Ŵ,
// relative, in the original (unpermuted, unnormalised) domain, with the
// finalized Hessian H the quantizer was given.
//
// Computed with one float32 (M, N)×(N, N) GEMM per evaluation and float64
// reductions (relative error ~1e-6, far below any difference we compare).
// Thread safety: const methods are safe to call concurrently.
//
//   VPTQ_ASSIGN_OR_RETURN(ProxyLoss loss, ProxyLoss::Create(w, h));
//   double rel = loss.Relative(w_hat);
#pragma once

#include <torch/types.h>

#include "absl/status/statusor.h"

namespace vptq::quant {

class ProxyLoss {
 public:
  // w: (M, N), h: (N, N), any float dtypes, same device. INVALID_ARGUMENT on
  // shapes that do not match.
  static absl::StatusOr<ProxyLoss> Create(const torch::Tensor& w,
                                          const torch::Tensor& h);

  // Relative loss of w_hat (M, N). w_hat must have w's shape (checked by the
  // caller; a mismatch throws inside torch).
  double Relative(const torch::Tensor& w_hat) const;
  // tr(W H Wᵀ), the denominator.
  double reference() const { return reference_; }

 private:
  ProxyLoss() = default;
  double Quadratic(const torch::Tensor& d) const;

  torch::Tensor w_;  // float32
  torch::Tensor h_;  // float32
  double reference_ = 0;
};

// One-shot convenience: INVALID_ARGUMENT on mismatched shapes.
absl::StatusOr<double> RelativeProxyLoss(const torch::Tensor& w,
                                         const torch::Tensor& w_hat,
                                         const torch::Tensor& h);

}  // namespace vptq::quant
