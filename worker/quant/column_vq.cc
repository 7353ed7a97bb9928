// Column-wise vector quantization helpers for the VPTQ pass.
#include "worker/quant/column_vq.h"

#include <utility>
#include <vector>

#include <torch/torch.h>

#include "worker/quant/engine_util.h"
#include "worker/quant/kmeans.h"

namespace vptq::quant::internal {

torch::Tensor ColumnsToVectors(const torch::Tensor& cols_t, int64_t v) {
  const int64_t c = cols_t.size(0), m = cols_t.size(1);
  const int64_t rows = CeilDiv(m, v);
  torch::Tensor x = cols_t.to(torch::kFloat32);
  if (rows * v != m) {
    x = torch::constant_pad_nd(x, {0, rows * v - m}, 0);
  }
  return x.reshape({c * rows, v}).contiguous();
}

torch::Tensor PaddingMask(int64_t cols, int64_t m, int64_t v,
                          const torch::Tensor& like) {
  const int64_t rows = CeilDiv(m, v);
  torch::Tensor one = torch::ones({rows * v}, like.options().dtype(torch::kFloat32));
  one.narrow(0, m, rows * v - m).zero_();
  return one.view({1, rows, v}).expand({cols, rows, v}).reshape({cols * rows, v});
}

ColumnVectorQuantizer::ColumnVectorQuantizer(torch::Tensor centroids,
                                             torch::Tensor res_centroids,
                                             int64_t m)
    : c_(centroids.to(torch::kFloat32).contiguous()),
      m_(m),
      v_(centroids.size(1)),
      full_(m / centroids.size(1)),
      rem_(m % centroids.size(1)) {
  if (res_centroids.defined()) {
    r_ = res_centroids.to(torch::kFloat32).contiguous();
  }
  if (rem_ > 0) {
    c_head_ = c_.narrow(1, 0, rem_).contiguous();
    if (r_.defined()) r_head_ = r_.narrow(1, 0, rem_).contiguous();
  }
}

ColumnCodes ColumnVectorQuantizer::Quantize(const torch::Tensor& column) const {
  // Two-stage nearest search on (n, d) vectors against (c, r) of width d.
  auto search = [](const torch::Tensor& x, const torch::Tensor& c,
                   const torch::Tensor& r, ColumnCodes& out) {
    out.idx = AssignNearest(x, c);
    torch::Tensor q = c.index_select(0, out.idx);
    if (r.defined()) {
      out.res_idx = AssignNearest((x - q).contiguous(), r);
      q = q + r.index_select(0, out.res_idx);
    }
    out.q = q.reshape({-1});
  };
  torch::Tensor col = column.to(torch::kFloat32);
  ColumnCodes full, tail;
  if (full_ > 0) {
    search(col.narrow(0, 0, full_ * v_).view({full_, v_}), c_, r_, full);
  }
  if (rem_ == 0) return full;
  search(col.narrow(0, full_ * v_, rem_).view({1, rem_}).contiguous(), c_head_,
         r_head_, tail);
  if (full_ == 0) return tail;
  ColumnCodes out;
  out.q = torch::cat({full.q, tail.q});
  out.idx = torch::cat({full.idx, tail.idx});
  if (r_.defined()) out.res_idx = torch::cat({full.res_idx, tail.res_idx});
  return out;
}

torch::Tensor RefitCentroids(const torch::Tensor& targets,
                             const torch::Tensor& assignment,
                             const torch::Tensor& weights,
                             const torch::Tensor& old_centroids) {
  torch::Tensor sums = torch::zeros_like(old_centroids);
  torch::Tensor mass = torch::zeros_like(old_centroids);
  sums.index_add_(0, assignment, weights * targets);
  mass.index_add_(0, assignment, weights);
  return torch::where(mass > 0, sums / mass.clamp_min(1e-30), old_centroids);
}

}  // namespace vptq::quant::internal
