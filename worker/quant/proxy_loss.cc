// Relative proxy loss tr(ΔW H ΔWᵀ) / tr(W H Wᵀ).
#include "worker/quant/proxy_loss.h"

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/quant/engine_util.h"

namespace vptq::quant {

absl::StatusOr<ProxyLoss> ProxyLoss::Create(const torch::Tensor& w,
                                            const torch::Tensor& h) {
  if (!w.defined() || !h.defined() || w.dim() != 2 || h.dim() != 2 ||
      h.size(0) != w.size(1) || h.size(1) != w.size(1)) {
    return absl::InvalidArgumentError(
        "proxy loss: expected W (M, N) and H (N, N) with matching N");
  }
  return internal::GuardTorch("proxy loss", [&]() -> absl::StatusOr<ProxyLoss> {
    ProxyLoss p;
    p.w_ = w.to(torch::kFloat32);
    p.h_ = h.to(w.device(), torch::kFloat32);
    p.reference_ = p.Quadratic(p.w_);
    return p;
  });
}

double ProxyLoss::Quadratic(const torch::Tensor& d) const {
  return (d.mm(h_) * d).sum(torch::kFloat64).item<double>();
}

double ProxyLoss::Relative(const torch::Tensor& w_hat) const {
  const double num = Quadratic(w_ - w_hat.to(w_.device(), torch::kFloat32));
  return reference_ > 0 ? num / reference_ : num;
}

absl::StatusOr<double> RelativeProxyLoss(const torch::Tensor& w,
                                         const torch::Tensor& w_hat,
                                         const torch::Tensor& h) {
  VPTQ_ASSIGN_OR_RETURN(ProxyLoss p, ProxyLoss::Create(w, h));
  if (!w_hat.defined() || !w_hat.sizes().equals(w.sizes())) {
    return absl::InvalidArgumentError(
        "proxy loss: the reconstruction must have the weight's shape");
  }
  return internal::GuardTorch("proxy loss", [&]() -> absl::StatusOr<double> {
    return p.Relative(w_hat);
  });
}

}  // namespace vptq::quant
