// RTN and GPTQ-scalar baselines.
#include "worker/quant/scalar_baselines.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/quant/engine_util.h"
#include "worker/quant/proxy_loss.h"
#include "worker/quant/second_order.h"

namespace vptq::quant {
namespace {

struct Grid {
  torch::Tensor scale;  // float32, already rounded to the storage dtype
  torch::Tensor zero;
};

// Asymmetric min-max grid from per-row extremes (any broadcastable shape).
Grid MakeGrid(const torch::Tensor& xmin, const torch::Tensor& xmax, int bits,
              torch::ScalarType dtype) {
  const double maxq = std::ldexp(1.0, bits) - 1;
  torch::Tensor scale = (xmax - xmin) / maxq;
  // A constant group: s = |value| (1 for 0) reproduces it exactly.
  torch::Tensor constant_scale =
      torch::where(xmin == 0, torch::ones_like(xmin), xmin.abs());
  scale = torch::where(scale == 0, constant_scale, scale);
  const double tiny = dtype == torch::kHalf ? std::ldexp(1.0, -24) : 1e-38;
  scale = scale.to(dtype).to(torch::kFloat32).clamp_min(tiny);
  torch::Tensor zero =
      torch::round(-xmin / scale).to(dtype).to(torch::kFloat32);
  return {scale, zero};
}

torch::Tensor ApplyGrid(const torch::Tensor& x, const Grid& g, int bits) {
  const double maxq = std::ldexp(1.0, bits) - 1;
  torch::Tensor q = torch::clamp(torch::round(x / g.scale) + g.zero, 0, maxq);
  return (q - g.zero) * g.scale;
}

absl::Status CheckArgs(const torch::Tensor& w, const torch::Tensor& h,
                       const ScalarQuantOptions& o, const char* method) {
  auto bad = [&](const std::string& msg) {
    return absl::InvalidArgumentError(absl::StrCat(method, ": ", msg));
  };
  if (o.bits < 1 || o.bits > 8) {
    return bad(absl::StrCat("bits is ", o.bits, "; use 1 to 8"));
  }
  if (o.group_size < 1) {
    return bad(absl::StrCat("group_size is ", o.group_size,
                            "; use at least 1 (128 is usual)"));
  }
  if (o.block_size < 1 || o.block_size % o.group_size != 0) {
    return bad(absl::StrCat("block_size ", o.block_size,
                            " is not a positive multiple of group_size ",
                            o.group_size, "; use e.g. block_size = group_size"));
  }
  if (!w.defined() || w.dim() != 2 || !w.is_floating_point()) {
    return bad("weight must be a floating (M, N) matrix");
  }
  if (!h.defined() || h.dim() != 2 || h.size(0) != w.size(1) ||
      h.size(1) != w.size(1) || !h.is_floating_point()) {
    return bad(absl::StrCat("Hessian must be (N, N) = (", w.size(1), ", ",
                            w.size(1), ") floating"));
  }
  if (!internal::AllFinite(w)) return bad("weight contains NaN or Inf");
  if (!internal::AllFinite(h)) return bad("Hessian contains NaN or Inf");
  if (o.param_dtype != torch::kHalf && o.param_dtype != torch::kBFloat16 &&
      o.param_dtype != torch::kFloat) {
    return bad("param_dtype must be float16, bfloat16 or float32");
  }
  return absl::OkStatus();
}

int ParamBits(torch::ScalarType t) { return t == torch::kFloat ? 32 : 16; }

}  // namespace

double ScalarBitsPerWeight(int64_t m, int64_t n, int bits, int64_t group_size,
                           bool act_order_index, int param_bits) {
  const double groups = static_cast<double>(internal::CeilDiv(n, group_size));
  double bpw = bits + 2.0 * param_bits * groups / static_cast<double>(n);
  if (act_order_index) bpw += 32.0 / static_cast<double>(m);
  return bpw;
}

absl::StatusOr<ScalarQuantResult> QuantizeRtn(const torch::Tensor& w,
                                              const torch::Tensor& h,
                                              const ScalarQuantOptions& o) {
  VPTQ_RETURN_IF_ERROR(CheckArgs(w, h, o, "RTN"));
  return internal::GuardTorch("RTN", [&]() -> absl::StatusOr<ScalarQuantResult> {
    internal::Stopwatch clock;
    torch::Tensor w32 = w.to(torch::kFloat32);
    const int64_t n = w32.size(1);
    torch::Tensor out = torch::empty_like(w32);
    for (int64_t c = 0; c < n; c += o.group_size) {
      const int64_t len = std::min(o.group_size, n - c);
      torch::Tensor x = w32.narrow(1, c, len);
      Grid g = MakeGrid(std::get<0>(x.min(1, true)), std::get<0>(x.max(1, true)),
                        o.bits, o.param_dtype);
      out.narrow(1, c, len).copy_(ApplyGrid(x, g, o.bits));
    }
    ScalarQuantResult r;
    r.stats.seconds = clock.Seconds();
    r.weight = out;
    VPTQ_ASSIGN_OR_RETURN(r.stats.proxy_loss, RelativeProxyLoss(w32, out, h));
    r.stats.bits_per_weight = ScalarBitsPerWeight(
        w32.size(0), n, o.bits, o.group_size, false, ParamBits(o.param_dtype));
    return r;
  });
}

absl::StatusOr<ScalarQuantResult> QuantizeGptq(const torch::Tensor& w,
                                               const torch::Tensor& h,
                                               const ScalarQuantOptions& o) {
  VPTQ_RETURN_IF_ERROR(CheckArgs(w, h, o, "GPTQ"));
  return internal::GuardTorch(
      "GPTQ", [&]() -> absl::StatusOr<ScalarQuantResult> {
        internal::Stopwatch clock;
        torch::Tensor w32 = w.to(torch::kFloat32);
        torch::Tensor h64 = h.to(w32.device(), torch::kFloat64);
        const int64_t n = w32.size(1);
        torch::Tensor perm =
            o.act_order
                ? std::get<1>(torch::sort(h64.diagonal(), /*stable=*/true,
                                          /*dim=*/0, /*descending=*/true))
                : torch::arange(n, torch::TensorOptions()
                                       .dtype(torch::kInt64)
                                       .device(w32.device()));
        torch::Tensor wp = w32.index_select(1, perm);
        torch::Tensor hp = h64.index_select(0, perm).index_select(1, perm);
        VPTQ_ASSIGN_OR_RETURN(
            InverseCholesky u,
            UpperCholeskyOfInverse(
                hp, DampingOptions{.first_factor = o.damp_first_factor}));

        Grid grid;
        ColumnQuantizeFn quantize = [&](int64_t col, int64_t /*block_end*/,
                                        const torch::Tensor& work) {
          if (col % o.group_size == 0) {
            // The group's grid from its current (error-updated) columns.
            const int64_t len = std::min(o.group_size, n - col);
            torch::Tensor g = work.narrow(0, col, len);
            grid = MakeGrid(std::get<0>(g.min(0)), std::get<0>(g.max(0)),
                            o.bits, o.param_dtype);
          }
          return ApplyGrid(work[col], grid, o.bits);
        };
        VPTQ_ASSIGN_OR_RETURN(
            SecondOrderResult pass,
            RunSecondOrderPass(wp, u.u, quantize,
                               SecondOrderOptions{.block_size = o.block_size}));
        torch::Tensor out = torch::empty_like(w32);
        out.index_copy_(1, perm, pass.quantized);

        ScalarQuantResult r;
        r.stats.seconds = clock.Seconds();
        r.stats.damping_added = u.extra_damping;
        r.weight = out;
        VPTQ_ASSIGN_OR_RETURN(r.stats.proxy_loss,
                              RelativeProxyLoss(w32, out, h));
        r.stats.bits_per_weight =
            ScalarBitsPerWeight(w32.size(0), n, o.bits, o.group_size,
                                o.act_order, ParamBits(o.param_dtype));
        return r;
      });
}

}  // namespace vptq::quant
