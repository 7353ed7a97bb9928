// Lazy-block second-order pass and the inverse-Cholesky factor it needs.
#include "worker/quant/second_order.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "worker/quant/engine_util.h"

namespace vptq::quant {
namespace {

absl::Status CheckPassArgs(const torch::Tensor& w, const torch::Tensor& u) {
  if (!w.defined() || w.dim() != 2 || !w.is_floating_point()) {
    return absl::InvalidArgumentError(
        "second-order pass: weight must be a floating (M, N) matrix");
  }
  if (!u.defined() || u.dim() != 2 || u.size(0) != w.size(1) ||
      u.size(1) != w.size(1) || !u.is_floating_point()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "second-order pass: U must be (N, N) = (", w.size(1), ", ", w.size(1),
        ") to match the weight's columns"));
  }
  return absl::OkStatus();
}

// column -= Σ_k err[k] · U[first + k, col] over the k = err.size(0) pending
// errors of the current block. CPU: a plain loop (the per-column volume is
// small, and a threaded BLAS call per column costs more in wake-ups than it
// saves); other devices: one addmv.
void SubtractPendingErrors(torch::Tensor column, const torch::Tensor& err,
                           const torch::Tensor& ut, int64_t first,
                           int64_t col) {
  const int64_t k = err.size(0);
  if (!column.is_cpu()) {
    column.addmv_(err.t(), ut.narrow(0, first, k).select(1, col),
                  /*beta=*/1, /*alpha=*/-1);
    return;
  }
  const int64_t m = column.size(0);
  const int64_t n = ut.size(1);
  float* w = column.data_ptr<float>();
  const float* e = err.data_ptr<float>();
  const float* u = ut.data_ptr<float>();
  for (int64_t j = 0; j < k; ++j) {
    const float c = u[(first + j) * n + col];
    if (c == 0.0f) continue;
    const float* ej = e + j * m;
    for (int64_t r = 0; r < m; ++r) w[r] -= c * ej[r];
  }
}

// Diagonal of U as host doubles (read once per column, so keep it on CPU).
std::vector<double> HostDiagonal(const torch::Tensor& u) {
  torch::Tensor d = u.diagonal().to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(d.data_ptr<double>(),
                             d.data_ptr<double>() + d.numel());
}

}  // namespace

absl::StatusOr<InverseCholesky> UpperCholeskyOfInverse(
    const torch::Tensor& h, const DampingOptions& options) {
  if (!h.defined() || h.dim() != 2 || h.size(0) != h.size(1) ||
      !h.is_floating_point()) {
    return absl::InvalidArgumentError(
        "inverse Cholesky: the Hessian must be a square floating matrix");
  }
  return internal::GuardTorch(
      "inverse Cholesky", [&]() -> absl::StatusOr<InverseCholesky> {
        torch::Tensor h64 = h.to(torch::kFloat64);
        if (!internal::AllFinite(h64)) {
          return absl::InvalidArgumentError(
              "inverse Cholesky: the Hessian contains NaN or Inf");
        }
        const double mean_diag = h64.diagonal().mean().item<double>();
        if (!(mean_diag > 0)) {
          return absl::FailedPreconditionError(absl::StrCat(
              "the Hessian's mean diagonal is ", mean_diag,
              ", so it is not positive definite and damping cannot fix it; "
              "check that it was computed as Σ xxᵀ and finalized"));
        }
        torch::Tensor eye = torch::eye(h64.size(0), h64.options());
        double factor = 0;
        for (int step = 0; step <= options.max_steps; ++step) {
          if (step > 0) {
            factor = step == 1 ? options.first_factor : factor * options.growth;
          }
          const double extra = factor * mean_diag;
          torch::Tensor hd = extra > 0 ? h64 + extra * eye : h64;
          auto [l, info] = torch::linalg_cholesky_ex(hd, /*upper=*/false,
                                                     /*check_errors=*/false);
          if (info.item<int64_t>() == 0) {
            torch::Tensor hinv = torch::cholesky_inverse(l, /*upper=*/false);
            auto [u, info2] = torch::linalg_cholesky_ex(
                hinv, /*upper=*/true, /*check_errors=*/false);
            if (info2.item<int64_t>() == 0 && internal::AllFinite(u)) {
              return InverseCholesky{u, extra, step};
            }
          }
          if (step < options.max_steps) {
            const double next =
                (step == 0 ? options.first_factor : factor * options.growth) *
                mean_diag;
            vptq::log::Warn(
                "Hessian not positive definite; adding damping",
                {{"stage", "cholesky"}, {"extra_damping", next},
                 {"mean_diag", mean_diag}, {"attempt", step + 1}});
          }
        }
        return absl::FailedPreconditionError(absl::StrCat(
            "the Hessian is not positive definite even with ", factor,
            "·mean(diag) = ", factor * mean_diag,
            " added to its diagonal; check the calibration data (too few "
            "tokens, NaNs upstream) or raise the finalize damping"));
      });
}

absl::StatusOr<SecondOrderResult> RunSecondOrderPass(
    const torch::Tensor& w, const torch::Tensor& u,
    const ColumnQuantizeFn& quantize, const SecondOrderOptions& options) {
  VPTQ_RETURN_IF_ERROR(CheckPassArgs(w, u));
  if (options.block_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "second-order pass: block_size is ", options.block_size,
        "; use at least 1 (128 is the default)"));
  }
  return internal::GuardTorch(
      "second-order pass", [&]() -> absl::StatusOr<SecondOrderResult> {
        const int64_t n_cols = w.size(1);
        // Transposed so that a column is one contiguous row.
        torch::Tensor wt = w.to(torch::kFloat32).t().contiguous();
        torch::Tensor ut = u.to(wt.device(), torch::kFloat32).contiguous();
        const std::vector<double> diag = HostDiagonal(u);
        torch::Tensor qt = torch::empty_like(wt);
        for (int64_t i = 0; i < n_cols; i += options.block_size) {
          const int64_t end = std::min(i + options.block_size, n_cols);
          const int64_t nb = end - i;
          torch::Tensor err = torch::empty({nb, wt.size(1)}, wt.options());
          for (int64_t n = i; n < end; ++n) {
            // Left-looking: column n takes the errors of the block's earlier
            // columns just before it is quantized (one pass over the pending
            // errors per column, no per-column BLAS call).
            if (options.error_feedback && n > i) {
              SubtractPendingErrors(wt[n], err.narrow(0, 0, n - i), ut, i, n);
            }
            torch::Tensor q = quantize(n, end, wt);
            qt[n].copy_(q);
            if (!options.error_feedback) continue;
            torch::Tensor e = err[n - i];
            torch::sub_out(e, wt[n], q);
            e.div_(diag[n]);
          }
          if (options.error_feedback && end < n_cols) {
            torch::Tensor u_block =
                ut.narrow(0, i, nb).narrow(1, end, n_cols - end);
            wt.narrow(0, end, n_cols - end)
                .addmm_(u_block.t(), err, /*beta=*/1, /*alpha=*/-1);
          }
        }
        return SecondOrderResult{qt.t().contiguous(), wt.t().contiguous()};
      });
}

absl::StatusOr<SecondOrderResult> RunSecondOrderPassRef(
    const torch::Tensor& w, const torch::Tensor& u,
    const ColumnQuantizeFn& quantize, bool error_feedback) {
  VPTQ_RETURN_IF_ERROR(CheckPassArgs(w, u));
  return internal::GuardTorch(
      "second-order pass (reference)",
      [&]() -> absl::StatusOr<SecondOrderResult> {
        const int64_t n_cols = w.size(1);
        torch::Tensor wt = w.to(torch::kFloat32).t().contiguous();
        torch::Tensor ut = u.to(wt.device(), torch::kFloat32);
        torch::Tensor qt = torch::empty_like(wt);
        for (int64_t n = 0; n < n_cols; ++n) {
          torch::Tensor q = quantize(n, n_cols, wt);
          qt[n].copy_(q);
          if (!error_feedback || n + 1 == n_cols) continue;
          torch::Tensor e = (wt[n] - q) / ut[n][n];
          wt.narrow(0, n + 1, n_cols - n - 1) -=
              torch::outer(ut[n].narrow(0, n + 1, n_cols - n - 1), e);
        }
        return SecondOrderResult{qt.t().contiguous(), wt.t().contiguous()};
      });
}

}  // namespace vptq::quant
