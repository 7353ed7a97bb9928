// Synthetic linear layers with heavy-tailed weights and correlated inputs.
#include "worker/quant/synthetic.h"

#include <algorithm>
#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/quant/engine_util.h"
#include "worker/quant/hessian.h"

namespace vptq::quant {
namespace {

const auto kF32 = torch::TensorOptions().dtype(torch::kFloat32);
const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

// Student-t with integer dof, scaled to unit variance: z / sqrt(χ²/dof).
torch::Tensor StudentT(int64_t m, int64_t n, int dof, at::Generator& gen) {
  torch::Tensor z = torch::randn({m, n}, gen, kF32);
  torch::Tensor chi2 = torch::zeros({m, n}, kF32);
  for (int k = 0; k < dof; ++k) {
    torch::Tensor g = torch::randn({m, n}, gen, kF32);
    chi2.addcmul_(g, g);
  }
  const double unit_var = std::sqrt((dof - 2.0) / dof);
  return z / torch::sqrt(chi2 / dof) * unit_var;
}

torch::Tensor LogNormal(int64_t n, double sigma, at::Generator& gen,
                        const torch::TensorOptions& opt) {
  return torch::exp(torch::randn({n}, gen, opt) * sigma);
}

}  // namespace

absl::StatusOr<SyntheticLinear> MakeSyntheticLinear(const SyntheticOptions& o) {
  const int64_t m = o.out_features, n = o.in_features;
  if (m < 1 || n < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "synthetic linear: sizes ", m, "x", n, " must be positive"));
  }
  if (o.rank < 0 || o.student_t_dof < 3 || !(o.low_rank_share >= 0) ||
      o.low_rank_share > 1 || o.tokens < 0) {
    return absl::InvalidArgumentError(
        "synthetic linear: need rank >= 0, student_t_dof >= 3, "
        "low_rank_share in [0, 1], tokens >= 0");
  }
  const int64_t n_out =
      o.outlier_channels < 0 ? std::max<int64_t>(1, n / 512) : o.outlier_channels;
  if (n_out > n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "synthetic linear: outlier_channels ", n_out, " exceeds N = ", n));
  }
  return internal::GuardTorch(
      "synthetic linear", [&]() -> absl::StatusOr<SyntheticLinear> {
        at::Generator gen = at::detail::createCPUGenerator(o.seed);
        SyntheticLinear s;
        // Weights.
        torch::Tensor t = StudentT(m, n, o.student_t_dof, gen);
        torch::Tensor r = LogNormal(m, o.out_scale_sigma, gen, kF32);
        torch::Tensor c = LogNormal(n, o.in_scale_sigma, gen, kF32);
        s.weight = t * r.unsqueeze(1) * c.unsqueeze(0) * o.weight_std;

        // Input statistics.
        const int64_t rank = o.low_rank_share > 0 ? o.rank : 0;
        torch::Tensor a = LogNormal(n, o.channel_sigma, gen, kF64);
        torch::Tensor chosen =
            torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kInt64))
                .narrow(0, 0, n_out);
        chosen = std::get<0>(chosen.sort());
        torch::Tensor boost = torch::exp(
            std::log(o.outlier_min) +
            torch::rand({n_out}, gen, kF64) *
                (std::log(o.outlier_max) - std::log(o.outlier_min)));
        a.index_put_({chosen}, a.index({chosen}) * boost);
        s.outlier_channels.assign(chosen.data_ptr<int64_t>(),
                                  chosen.data_ptr<int64_t>() + n_out);
        torch::Tensor factors =
            rank > 0 ? torch::randn({n, rank}, gen, kF64) *
                           std::sqrt(o.low_rank_share / static_cast<double>(rank))
                     : torch::zeros({n, 0}, kF64);
        torch::Tensor mu = torch::randn({n}, gen, kF64) * o.mean_scale;
        const double noise = std::sqrt(1.0 - o.low_rank_share);

        torch::Tensor h;
        if (o.tokens == 0) {
          torch::Tensor cov = factors.mm(factors.t()) + torch::outer(mu, mu);
          cov.diagonal().add_(noise * noise);
          h = cov * torch::outer(a, a);
        } else {
          HessianAccumulator acc(n);
          const int64_t batch = 2048;
          torch::Tensor a32 = a.to(torch::kFloat32);
          torch::Tensor f32 = factors.to(torch::kFloat32);
          torch::Tensor mu32 = mu.to(torch::kFloat32);
          for (int64_t done = 0; done < o.tokens; done += batch) {
            const int64_t tb = std::min(batch, o.tokens - done);
            torch::Tensor z = torch::randn({tb, rank}, gen, kF32);
            torch::Tensor eps = torch::randn({tb, n}, gen, kF32);
            torch::Tensor x = (z.mm(f32.t()) + eps * noise + mu32) * a32;
            VPTQ_RETURN_IF_ERROR(acc.Add(x));
          }
          h = acc.Sum() / static_cast<double>(acc.tokens());
        }
        VPTQ_ASSIGN_OR_RETURN(FinalizedHessian fh,
                              FinalizeHessian(h, {.damp = o.damp}));
        s.hessian = fh.h;
        return s;
      });
}

}  // namespace vptq::quant
