// QuantizeLinear: the VPTQ pipeline of DESIGN.md §2 for one linear.
#include "worker/quant/vptq_quantizer.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "worker/quant/column_vq.h"
#include "worker/quant/engine_util.h"
#include "worker/quant/kmeans.h"
#include "worker/quant/proxy_loss.h"
#include "worker/quant/second_order.h"

namespace vptq::quant {
namespace {

using internal::CeilDiv;
using internal::Stopwatch;

// A run of columns (in permuted order) sharing one codebook.
struct Partition {
  int64_t begin = 0;
  int64_t cols = 0;
  int64_t v = 0;
  int64_t k = 0;
  int64_t k_r = 0;  // 0 for outliers and without residual VQ
  bool outlier = false;
};

struct Codebook {
  torch::Tensor c;  // (K, v) float32, rounded to the storage dtype
  torch::Tensor r;  // (K_r, v) or undefined
};

struct PassCodes {
  SecondOrderResult pass;
  std::vector<torch::Tensor> idx;      // per partition (cols, ceil(M/v))
  std::vector<torch::Tensor> res_idx;  // same, only for residual partitions
};

// Everything one QuantizeLinear call shares between its stages.
struct Context {
  explicit Context(const VptqOptions& options) : o(options) {}
  const VptqOptions& o;
  int64_t m = 0, n = 0;
  QuantLayout layout;
  std::vector<Partition> parts;
  std::vector<int> part_of_col;  // partition of each permuted column
  torch::Tensor wn;     // (M, N) float32, permuted and normalised
  torch::Tensor wn_t;   // (N, M) contiguous
  torch::Tensor hdiag;  // (N,) float32, diag of H̃
  InverseCholesky u;
  torch::Tensor perm;   // (N,) int64
  torch::Tensor scale;  // (N,) float32, permuted order
  torch::Tensor bias;   // (N,) float32, permuted order
};

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

torch::Tensor RoundToStorage(const torch::Tensor& t, torch::ScalarType dtype) {
  torch::Tensor f = t.to(torch::kFloat32);
  return dtype == torch::kFloat ? f : f.to(dtype).to(torch::kFloat32);
}

int ElementBits(torch::ScalarType dtype) {
  return dtype == torch::kFloat ? 32 : 16;
}

std::vector<Partition> MakePartitions(const QuantLayout& l) {
  std::vector<Partition> parts;
  if (l.outlier_size > 0) {
    parts.push_back({0, l.outlier_size, l.outlier_vector_len,
                     l.outlier_num_centroids, 0, true});
  }
  for (int64_t g = 0; g < l.group_num; ++g) {
    parts.push_back({l.outlier_size + g * l.group_size, l.group_size,
                     l.vector_len, l.num_centroids, l.num_res_centroids, false});
  }
  return parts;
}

// Hessian weight of every vector of a partition: H̃_jj of its column.
torch::Tensor VectorWeights(const Context& ctx, const Partition& p) {
  return ctx.hdiag.narrow(0, p.begin, p.cols)
      .repeat_interleave(CeilDiv(ctx.m, p.v));
}

// Weighted k-means on (a seeded sample of) the vectors x.
absl::StatusOr<torch::Tensor> FitCodebook(const torch::Tensor& x,
                                          const torch::Tensor& weights,
                                          int64_t k, uint64_t seed,
                                          const VptqOptions& o, int* iterations) {
  torch::Tensor xs = x, ws = weights;
  if (o.kmeans_max_vectors > 0 && x.size(0) > o.kmeans_max_vectors) {
    const int64_t keep = std::max(o.kmeans_max_vectors, k);
    at::Generator gen = at::detail::createCPUGenerator(SplitMix64(seed));
    torch::Tensor pick =
        std::get<0>(torch::randperm(x.size(0), gen,
                                    torch::TensorOptions().dtype(torch::kInt64))
                        .narrow(0, 0, keep)
                        .sort())
            .to(x.device());
    xs = x.index_select(0, pick);
    ws = weights.index_select(0, pick);
  }
  KMeansOptions ko;
  ko.k = k;
  ko.iters = o.kmeans_iters;
  ko.tol = o.kmeans_tol;
  ko.seed = seed;
  VPTQ_ASSIGN_OR_RETURN(KMeansResult r, WeightedKMeans(xs, ws, ko));
  *iterations += r.iterations;
  return RoundToStorage(r.centroids, o.storage_dtype);
}

absl::StatusOr<PassCodes> RunPass(const Context& ctx,
                                  const std::vector<Codebook>& books,
                                  bool use_residual) {
  std::vector<internal::ColumnVectorQuantizer> quantizers;
  PassCodes codes;
  const auto i64 = ctx.wn.options().dtype(torch::kInt64);
  for (size_t p = 0; p < ctx.parts.size(); ++p) {
    const Partition& part = ctx.parts[p];
    const bool res = use_residual && part.k_r > 0;
    quantizers.emplace_back(books[p].c, res ? books[p].r : torch::Tensor(),
                            ctx.m);
    const int64_t rows = CeilDiv(ctx.m, part.v);
    codes.idx.push_back(torch::empty({part.cols, rows}, i64));
    codes.res_idx.push_back(res ? torch::empty({part.cols, rows}, i64)
                                : torch::Tensor());
  }
  ColumnQuantizeFn quantize = [&](int64_t col, int64_t /*block_end*/,
                                  const torch::Tensor& work) {
    const int p = ctx.part_of_col[col];
    const int64_t local = col - ctx.parts[p].begin;
    internal::ColumnCodes c = quantizers[p].Quantize(work[col]);
    codes.idx[p][local].copy_(c.idx);
    if (c.res_idx.defined()) codes.res_idx[p][local].copy_(c.res_idx);
    return c.q;
  };
  SecondOrderOptions so;
  so.block_size = ctx.o.block_size;
  so.error_feedback = ctx.o.error_feedback;
  VPTQ_ASSIGN_OR_RETURN(codes.pass,
                        RunSecondOrderPass(ctx.wn, ctx.u.u, quantize, so));
  return codes;
}

QuantizedLinear BuildQuantized(const Context& ctx,
                               const std::vector<Codebook>& books,
                               const PassCodes& codes) {
  QuantizedLinear q;
  q.layout = ctx.layout;
  std::vector<torch::Tensor> cs, rs, is, ris;
  for (size_t p = 0; p < ctx.parts.size(); ++p) {
    if (ctx.parts[p].outlier) {
      q.outlier_centroids = books[p].c;
      q.outlier_indices = codes.idx[p].t().contiguous();
      continue;
    }
    cs.push_back(books[p].c);
    is.push_back(codes.idx[p].t());
    if (ctx.parts[p].k_r > 0) {
      rs.push_back(books[p].r);
      ris.push_back(codes.res_idx[p].t());
    }
  }
  q.centroids = torch::stack(cs);
  q.indices = torch::stack(is).contiguous();
  if (!rs.empty()) {
    q.res_centroids = torch::stack(rs);
    q.res_indices = torch::stack(ris).contiguous();
  }
  q.perm = ctx.perm;
  // Stored per original column: scale[perm[j]] = s_j.
  q.scale = torch::empty_like(ctx.scale).index_copy_(0, ctx.perm, ctx.scale);
  q.bias_norm = torch::empty_like(ctx.bias).index_copy_(0, ctx.perm, ctx.bias);
  return q;
}

struct Evaluated {
  QuantizedLinear q;
  torch::Tensor reconstruction;
  double loss = 0;
};

absl::StatusOr<Evaluated> Evaluate(const Context& ctx, const ProxyLoss& loss,
                                   const std::vector<Codebook>& books,
                                   const PassCodes& codes) {
  Evaluated e;
  e.q = BuildQuantized(ctx, books, codes);
  absl::StatusOr<torch::Tensor> rec = DequantizeChecked(e.q);
  if (!rec.ok()) {
    return absl::InternalError(absl::StrCat(
        "VPTQ built a quantized linear that Dequantize rejects: ",
        rec.status().message()));
  }
  e.reconstruction = *std::move(rec);
  e.loss = loss.Relative(e.reconstruction);
  return e;
}

// Refinement: indices fixed, centroids refit as H̃-weighted means of the
// vectors (as the pass saw them) that use them.
std::vector<Codebook> RefitBooks(const Context& ctx,
                                 const std::vector<Codebook>& books,
                                 const PassCodes& codes) {
  torch::Tensor updated_t = codes.pass.updated.t();
  std::vector<Codebook> out = books;
  for (size_t p = 0; p < ctx.parts.size(); ++p) {
    const Partition& part = ctx.parts[p];
    torch::Tensor targets = internal::ColumnsToVectors(
        updated_t.narrow(0, part.begin, part.cols), part.v);
    torch::Tensor weights =
        VectorWeights(ctx, part).unsqueeze(1) *
        internal::PaddingMask(part.cols, ctx.m, part.v, targets);
    torch::Tensor idx = codes.idx[p].reshape({-1});
    if (part.k_r > 0) {
      torch::Tensor j = codes.res_idx[p].reshape({-1});
      out[p].c = RoundToStorage(
          internal::RefitCentroids(targets - books[p].r.index_select(0, j), idx,
                                   weights, books[p].c),
          ctx.o.storage_dtype);
      out[p].r = RoundToStorage(
          internal::RefitCentroids(targets - out[p].c.index_select(0, idx), j,
                                   weights, books[p].r),
          ctx.o.storage_dtype);
    } else {
      out[p].c = RoundToStorage(
          internal::RefitCentroids(targets, idx, weights, books[p].c),
          ctx.o.storage_dtype);
    }
  }
  return out;
}

absl::StatusOr<VptqResult> QuantizeImpl(const torch::Tensor& w,
                                        const torch::Tensor& h,
                                        const VptqOptions& o) {
  Stopwatch total;
  VptqResult result;
  VptqStageSeconds& sec = result.stats.seconds;
  if (!internal::AllFinite(w)) {
    return absl::InvalidArgumentError(
        "VPTQ: the weight contains NaN or Inf; fix the checkpoint");
  }
  if (!internal::AllFinite(h)) {
    return absl::InvalidArgumentError(
        "VPTQ: the Hessian contains NaN or Inf; recompute it");
  }
  Context ctx(o);
  ctx.m = w.size(0);
  ctx.n = w.size(1);
  ctx.layout = LayoutFor(o, ctx.m, ctx.n);
  if (absl::Status s = ctx.layout.Validate(); !s.ok()) {
    return Annotate(s, "VPTQ options give an invalid layout");
  }
  ctx.parts = MakePartitions(ctx.layout);
  ctx.part_of_col.resize(ctx.n);
  for (size_t p = 0; p < ctx.parts.size(); ++p) {
    for (int64_t c = 0; c < ctx.parts[p].cols; ++c) {
      ctx.part_of_col[ctx.parts[p].begin + c] = static_cast<int>(p);
    }
  }

  // 1. Act-order permutation.
  Stopwatch clock;
  torch::Tensor w32 = w.to(torch::kFloat32);
  torch::Tensor h64 = h.to(w.device(), torch::kFloat64);
  ctx.perm = o.enable_perm
                 ? std::get<1>(torch::sort(h64.diagonal(), /*stable=*/true,
                                           /*dim=*/0, /*descending=*/true))
                 : torch::arange(ctx.n, w32.options().dtype(torch::kInt64));
  torch::Tensor wp = w32.index_select(1, ctx.perm);
  torch::Tensor hp = h64.index_select(0, ctx.perm).index_select(1, ctx.perm);
  sec.perm = clock.Seconds();

  // 2. Min-max normalisation; the loss is then weighted by H̃ = S·H·S.
  clock = Stopwatch();
  torch::Tensor ht;
  if (o.enable_norm) {
    torch::Tensor lo = wp.amin(0);
    torch::Tensor s = RoundToStorage(wp.amax(0) - lo, o.storage_dtype);
    ctx.scale = torch::where(s == 0, torch::ones_like(s), s);
    ctx.bias = RoundToStorage(lo, o.storage_dtype);
    ctx.wn = (wp - ctx.bias) / ctx.scale;
    torch::Tensor s64 = ctx.scale.to(torch::kFloat64);
    ht = hp * torch::outer(s64, s64);
  } else {
    ctx.scale = torch::ones({ctx.n}, w32.options());
    ctx.bias = torch::zeros({ctx.n}, w32.options());
    ctx.wn = wp;
    ht = hp;
  }
  ctx.wn_t = ctx.wn.t().contiguous();
  sec.norm = clock.Seconds();

  // Inverse Cholesky of H̃ (counted in the pass stage). Any extra damping
  // it needs is part of H̃ from here on, k-means weights included.
  clock = Stopwatch();
  VPTQ_ASSIGN_OR_RETURN(ctx.u, UpperCholeskyOfInverse(ht, o.damping));
  result.stats.damping_added = ctx.u.extra_damping;
  ctx.hdiag = (ht.diagonal() + ctx.u.extra_damping)
                  .to(torch::kFloat32)
                  .contiguous();
  ht = torch::Tensor();
  hp = torch::Tensor();
  sec.pass = clock.Seconds();

  // 3. Hessian-weighted k-means per codebook.
  clock = Stopwatch();
  std::vector<Codebook> books(ctx.parts.size());
  int group = 0;
  for (size_t p = 0; p < ctx.parts.size(); ++p) {
    const Partition& part = ctx.parts[p];
    torch::Tensor fixed =
        part.outlier ? o.init_outlier_centroids
                     : (o.init_centroids.defined() ? o.init_centroids[group]
                                                   : torch::Tensor());
    if (fixed.defined()) {
      books[p].c = RoundToStorage(fixed.to(w.device()), o.storage_dtype);
    } else {
      torch::Tensor x = internal::ColumnsToVectors(
          ctx.wn_t.narrow(0, part.begin, part.cols), part.v);
      VPTQ_ASSIGN_OR_RETURN(
          books[p].c,
          FitCodebook(x, VectorWeights(ctx, part), part.k,
                      SplitMix64(o.seed * 0x100 + 2 * p), o,
                      &result.stats.kmeans_iterations));
    }
    if (!part.outlier) ++group;
  }
  sec.kmeans = clock.Seconds();

  // 4. The second-order pass with the main codebooks.
  clock = Stopwatch();
  VPTQ_ASSIGN_OR_RETURN(PassCodes codes, RunPass(ctx, books, false));
  sec.pass += clock.Seconds();

  // 5. Residual VQ: fit on the first pass's errors, rerun from W̃.
  if (o.num_res_centroids > 0) {
    clock = Stopwatch();
    torch::Tensor err_t = (codes.pass.updated - codes.pass.quantized).t();
    group = 0;
    for (size_t p = 0; p < ctx.parts.size(); ++p) {
      const Partition& part = ctx.parts[p];
      if (part.outlier) continue;
      if (o.init_res_centroids.defined()) {
        books[p].r = RoundToStorage(o.init_res_centroids[group].to(w.device()),
                                    o.storage_dtype);
      } else {
        torch::Tensor x = internal::ColumnsToVectors(
            err_t.narrow(0, part.begin, part.cols), part.v);
        VPTQ_ASSIGN_OR_RETURN(
            books[p].r,
            FitCodebook(x, VectorWeights(ctx, part), part.k_r,
                        SplitMix64(o.seed * 0x100 + 2 * p + 1), o,
                        &result.stats.kmeans_iterations));
      }
      ++group;
    }
    err_t = torch::Tensor();
    VPTQ_ASSIGN_OR_RETURN(codes, RunPass(ctx, books, true));
    sec.residual = clock.Seconds();
  }

  VPTQ_ASSIGN_OR_RETURN(ProxyLoss loss, ProxyLoss::Create(w32, h64));
  VPTQ_ASSIGN_OR_RETURN(Evaluated best, Evaluate(ctx, loss, books, codes));
  result.stats.proxy_loss_before_refine = best.loss;

  // 6. Optional refinement, kept only while the proxy loss falls.
  clock = Stopwatch();
  for (int round = 0; round < o.refine_iters; ++round) {
    std::vector<Codebook> refit = RefitBooks(ctx, books, codes);
    VPTQ_ASSIGN_OR_RETURN(PassCodes next,
                          RunPass(ctx, refit, o.num_res_centroids > 0));
    VPTQ_ASSIGN_OR_RETURN(Evaluated cand, Evaluate(ctx, loss, refit, next));
    vptq::log::Debug("VPTQ refinement round",
                     {{"stage", "refine"}, {"round", round + 1},
                      {"proxy_loss", cand.loss}, {"previous", best.loss}});
    if (!(cand.loss < best.loss)) break;
    best = std::move(cand);
    books = std::move(refit);
    codes = std::move(next);
    ++result.stats.refine_rounds_accepted;
  }
  sec.refine = clock.Seconds();

  result.quantized = std::move(best.q);
  result.reconstruction = std::move(best.reconstruction);
  result.stats.proxy_loss = best.loss;
  result.stats.bits_per_weight =
      ctx.layout.BitsPerWeight(ElementBits(o.storage_dtype));
  sec.total = total.Seconds();
  return result;
}

}  // namespace

absl::StatusOr<VptqResult> QuantizeLinear(const torch::Tensor& w,
                                          const torch::Tensor& h,
                                          const VptqOptions& options) {
  if (!w.defined() || w.dim() != 2 || !w.is_floating_point()) {
    return absl::InvalidArgumentError(
        "VPTQ: the weight must be a floating (M, N) matrix (out_features, "
        "in_features)");
  }
  if (!h.defined() || h.dim() != 2 || h.size(0) != w.size(1) ||
      h.size(1) != w.size(1) || !h.is_floating_point()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VPTQ: the Hessian must be a floating (N, N) = (", w.size(1), ", ",
        w.size(1), ") matrix to match the weight's in_features, got ",
        h.defined() ? absl::StrCat(h.dim(), "-d ", h.numel(), " elements")
                    : std::string("undefined")));
  }
  VPTQ_RETURN_IF_ERROR(ValidateVptqOptions(options, w.size(0), w.size(1)));
  return internal::GuardTorch("VPTQ quantize", [&]() {
    return QuantizeImpl(w, h, options);
  });
}

}  // namespace vptq::quant
