// AssignNearest (fused CPU kernel) and AssignNearestRef (LibTorch reference),
// declared in kmeans.h.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <exception>

#include "worker/quant/assign_nearest_cpu.h"
#include "worker/quant/kmeans.h"

namespace vptq::quant {
namespace {

// Vectors per parallel task: enough that a task's centroid sweep amortises
// the dispatch, small enough to balance two threads on a few thousand rows.
constexpr int64_t kAssignGrain = 256;

bool ShapesMatch(const torch::Tensor& x, const torch::Tensor& c) {
  return x.defined() && c.defined() && x.dim() == 2 && c.dim() == 2 &&
         x.size(1) == c.size(1) && c.size(0) >= 1 && x.size(1) >= 1 &&
         x.device() == c.device() && x.is_floating_point() &&
         c.is_floating_point();
}

}  // namespace

torch::Tensor AssignNearestRef(const torch::Tensor& x, const torch::Tensor& c,
                               int64_t memory_budget_bytes) {
  if (!ShapesMatch(x, c)) return {};
  try {
    torch::NoGradGuard no_grad;
    const torch::Tensor xf = x.to(torch::kFloat);
    const torch::Tensor cf = c.to(torch::kFloat);
    const int64_t n = xf.size(0);
    const int64_t k = cf.size(0);
    const torch::Tensor norms = cf.square().sum(1);
    const torch::Tensor ct = cf.t();
    // One tile holds rows × k scores plus the same again for temporaries.
    // (Smaller, cache-sized tiles measured slower on CPU here: addmm with
    // an inner dimension of v is dominated by writing the scores.)
    const int64_t rows = std::max<int64_t>(1, memory_budget_bytes / (2 * 4 * k));
    torch::Tensor out = torch::empty({n}, xf.options().dtype(torch::kLong));
    for (int64_t begin = 0; begin < n; begin += rows) {
      const int64_t end = std::min(n, begin + rows);
      // ‖c‖² − 2 x·c: ‖x‖² does not change the argmin.
      const torch::Tensor scores =
          torch::addmm(norms, xf.slice(0, begin, end), ct, /*beta=*/1, /*alpha=*/-2);
      out.slice(0, begin, end).copy_(scores.argmin(1));
    }
    return out;
  } catch (const std::exception&) {
    return {};
  }
}

torch::Tensor AssignNearest(const torch::Tensor& x, const torch::Tensor& c,
                            int64_t memory_budget_bytes) {
  if (!ShapesMatch(x, c)) return {};
  const int64_t v = x.size(1);
  if (!x.device().is_cpu() || x.scalar_type() != torch::kFloat ||
      c.scalar_type() != torch::kFloat || v > kFusedAssignMaxDim) {
    return AssignNearestRef(x, c, memory_budget_bytes);
  }
  try {
    const torch::Tensor xc = x.contiguous();
    const torch::Tensor cc = c.contiguous();
    const int64_t n = xc.size(0);
    const CentroidTable table(cc.data_ptr<float>(), cc.size(0), static_cast<int>(v));
    torch::Tensor out = torch::empty({n}, xc.options().dtype(torch::kLong));
    const float* xp = xc.data_ptr<float>();
    int64_t* op = out.data_ptr<int64_t>();
    const CpuIsa isa = BestCpuIsa();
    at::parallel_for(0, n, kAssignGrain, [&](int64_t begin, int64_t end) {
      AssignNearestCpuRows(table, xp, begin, end, op, nullptr, isa);
    });
    return out;
  } catch (const std::exception&) {
    return {};
  }
}

}  // namespace vptq::quant
