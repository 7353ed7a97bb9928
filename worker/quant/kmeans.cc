// Weighted k-means: validation, k-means++ seeding, Lloyd loop. Two paths
// with the same contract (kmeans.h): fused C++ loops for CPU float32 and the
// device-agnostic LibTorch reference.
#include "worker/quant/kmeans.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/quant/assign_nearest_cpu.h"

namespace vptq::quant {
namespace {

// Points per chunk of the seeding pass: the unit of parallel work and of
// the fp64 partial sums the sampler walks (fixed, so picks do not depend on
// the thread count).
constexpr int64_t kSeedChunk = 4096;

// SplitMix64: the same stream on every platform and standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  int64_t Below(int64_t n) {
    return std::min<int64_t>(n - 1, static_cast<int64_t>(Uniform() * n));
  }

 private:
  uint64_t state_;
};

std::string ShapeString(const torch::Tensor& t) {
  std::string s = "(";
  for (int64_t d = 0; d < t.dim(); ++d) absl::StrAppend(&s, d ? ", " : "", t.size(d));
  return s + ")";
}

bool AllFinite(const torch::Tensor& t) { return torch::isfinite(t).all().item<bool>(); }

absl::Status ValidateData(const torch::Tensor& x, const torch::Tensor& w) {
  if (!x.defined() || x.dim() != 2 || x.size(0) < 1 || x.size(1) < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "k-means: x must be a non-empty (n, v) matrix, got ",
        x.defined() ? ShapeString(x) : "an undefined tensor"));
  }
  if (!x.is_floating_point()) {
    return absl::InvalidArgumentError("k-means: x must be floating point (float32)");
  }
  if (!w.defined() || w.dim() != 1 || w.size(0) != x.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "k-means: w must be (n,) = (", x.size(0), ",) to match x ", ShapeString(x),
        ", got ", w.defined() ? ShapeString(w) : "an undefined tensor"));
  }
  if (!w.is_floating_point()) {
    return absl::InvalidArgumentError("k-means: w must be floating point (float32)");
  }
  if (w.device() != x.device()) {
    return absl::InvalidArgumentError("k-means: x and w must be on the same device");
  }
  if (!AllFinite(x)) {
    return absl::InvalidArgumentError("k-means: x contains NaN or Inf; clean the input vectors");
  }
  if (!AllFinite(w)) {
    return absl::InvalidArgumentError("k-means: w contains NaN or Inf; clean the weights");
  }
  if ((w < 0).any().item<bool>()) {
    return absl::InvalidArgumentError(
        "k-means: w has negative entries; weights (diag of the Hessian) must be >= 0");
  }
  return absl::OkStatus();
}

absl::Status ValidateOptions(int64_t n, const KMeansOptions& o) {
  if (o.k < 1 || o.k > n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "k-means: k = ", o.k, " must be in [1, n] with n = ", n,
        " vectors; lower k or give more vectors"));
  }
  if (o.iters < 0) {
    return absl::InvalidArgumentError(absl::StrCat("k-means: iters = ", o.iters, " must be >= 0"));
  }
  if (!(o.tol >= 0) || !std::isfinite(o.tol)) {
    return absl::InvalidArgumentError(absl::StrCat("k-means: tol = ", o.tol, " must be finite and >= 0"));
  }
  if (o.seed_sample < o.k) {
    return absl::InvalidArgumentError(absl::StrCat(
        "k-means: seed_sample = ", o.seed_sample, " must be >= k = ", o.k));
  }
  if (o.memory_budget_bytes < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "k-means: memory_budget_bytes = ", o.memory_budget_bytes, " must be positive"));
  }
  return absl::OkStatus();
}

absl::Status ValidateCentroids(const torch::Tensor& c, const torch::Tensor& x,
                               int64_t k, const char* name) {
  if (!c.defined() || c.dim() != 2 || c.size(0) != k || c.size(1) != x.size(1) ||
      !c.is_floating_point()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "k-means: ", name, " must be a floating (k, v) = (", k, ", ", x.size(1),
        ") matrix, got ", c.defined() ? ShapeString(c) : "an undefined tensor"));
  }
  if (c.device() != x.device()) {
    return absl::InvalidArgumentError(absl::StrCat("k-means: ", name, " must be on the device of x"));
  }
  if (!AllFinite(c)) {
    return absl::InvalidArgumentError(absl::StrCat("k-means: ", name, " contains NaN or Inf"));
  }
  return absl::OkStatus();
}

bool UseCpuKernels(const torch::Tensor& x, const KMeansOptions& o) {
  return o.fast_kernel && x.device().is_cpu();
}

// Rows used for seeding: all of them, or `sample` distinct rows (Floyd's
// algorithm), ascending.
std::vector<int64_t> SampleRows(int64_t n, int64_t sample, Rng& rng) {
  std::vector<int64_t> rows;
  if (n <= sample) {
    rows.resize(n);
    for (int64_t i = 0; i < n; ++i) rows[i] = i;
    return rows;
  }
  std::vector<bool> taken(n, false);
  for (int64_t j = n - sample; j < n; ++j) {
    const int64_t t = rng.Below(j + 1);
    taken[taken[t] ? j : t] = true;
  }
  rows.reserve(sample);
  for (int64_t i = 0; i < n; ++i) {
    if (taken[i]) rows.push_back(i);
  }
  return rows;
}

// ------------------------------------------------------------- seeding ----

// New centre c for one chunk of the (padded) sample: min_dist = min(min_dist,
// ||x - c||^2); returns sum of w * min_dist in fp64. The fixed trip count lets
// the compiler vectorise; one clone per instruction set, picked at load time.
__attribute__((target_clones("avx512f", "avx2", "default"))) double SeedChunkUpdate(
    const float* xs, int64_t stride, int v, const float* centre, const float* w,
    float* min_dist) {
  float dist[kSeedChunk];
  for (int64_t i = 0; i < kSeedChunk; ++i) dist[i] = 0.0f;
  for (int d = 0; d < v; ++d) {
    const float* xd = xs + d * stride;
    const float cd = centre[d];
    for (int64_t i = 0; i < kSeedChunk; ++i) {
      const float diff = xd[i] - cd;
      dist[i] += diff * diff;
    }
  }
  // Eight fp64 lanes of partial sums (GCC vector extension: one zmm on
  // AVX-512), in a fixed order.
  using F8 = float __attribute__((vector_size(32)));
  using D8 = double __attribute__((vector_size(64)));
  D8 part = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < kSeedChunk; i += 8) {
    F8 md, di, wi;
    std::memcpy(&md, min_dist + i, sizeof(F8));
    std::memcpy(&di, dist + i, sizeof(F8));
    std::memcpy(&wi, w + i, sizeof(F8));
    md = di < md ? di : md;
    std::memcpy(min_dist + i, &md, sizeof(F8));
    part += __builtin_convertvector(wi, D8) * __builtin_convertvector(md, D8);
  }
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

// k-means++ over the sample, CPU: one fused pass per new centre updates
// min-distances chunk by chunk and leaves per-chunk fp64 sums for the sampler.
std::vector<int64_t> SeedCpu(const float* x, const float* w, int v, int64_t k,
                             const std::vector<int64_t>& rows, Rng& rng) {
  const int64_t s = static_cast<int64_t>(rows.size());
  const int64_t chunks = (s + kSeedChunk - 1) / kSeedChunk;
  // Padded to whole chunks; padding has weight 0 and distance 0, so it adds
  // nothing and is never picked.
  const int64_t stride = chunks * kSeedChunk;
  std::vector<float> xs(stride * v, 0.0f);  // SoA: xs[d * stride + i]
  std::vector<float> ws(stride, 0.0f);
  std::vector<float> min_dist(stride, 0.0f);
  for (int64_t i = 0; i < s; ++i) {
    ws[i] = w[rows[i]];
    min_dist[i] = std::numeric_limits<float>::infinity();
    for (int d = 0; d < v; ++d) xs[d * stride + i] = x[rows[i] * v + d];
  }
  std::vector<double> chunk_sum(chunks);
  std::vector<int64_t> picked;
  picked.reserve(k);

  // Picks i with probability ∝ p(i) = ws[i] (first centre) or ws·min_dist.
  auto pick = [&](bool first) -> int64_t {
    const double u = rng.Uniform();
    double total = 0;
    for (double cs : chunk_sum) total += cs;
    if (!(total > 0)) return std::min<int64_t>(s - 1, static_cast<int64_t>(u * s));
    // First i whose running sum exceeds r; whole chunks are skipped by
    // their partial sums.
    const double r = u * total;
    double acc = 0;
    for (int64_t ch = 0; ch < chunks; ++ch) {
      if (acc + chunk_sum[ch] <= r) {
        acc += chunk_sum[ch];
        continue;
      }
      const int64_t end = std::min(s, (ch + 1) * kSeedChunk);
      for (int64_t i = ch * kSeedChunk; i < end; ++i) {
        acc += first ? double{ws[i]} : double{ws[i]} * min_dist[i];
        if (acc > r) return i;
      }
    }
    // Rounding: fall back to the last row with positive probability.
    for (int64_t i = s - 1; i >= 0; --i) {
      const double p = first ? double{ws[i]} : double{ws[i]} * min_dist[i];
      if (p > 0) return i;
    }
    return s - 1;
  };

  for (int64_t ch = 0; ch < chunks; ++ch) {
    double sum = 0;
    for (int64_t i = ch * kSeedChunk; i < (ch + 1) * kSeedChunk; ++i) sum += ws[i];
    chunk_sum[ch] = sum;
  }
  picked.push_back(pick(/*first=*/true));
  std::vector<float> centre(v);
  while (static_cast<int64_t>(picked.size()) < k) {
    for (int d = 0; d < v; ++d) centre[d] = xs[d * stride + picked.back()];
    at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
      for (int64_t ch = b; ch < e; ++ch) {
        const int64_t lo = ch * kSeedChunk;
        chunk_sum[ch] = SeedChunkUpdate(xs.data() + lo, stride, v, centre.data(),
                                        ws.data() + lo, min_dist.data() + lo);
      }
    });
    picked.push_back(pick(/*first=*/false));
  }
  for (int64_t& p : picked) p = rows[p];
  return picked;
}

// k-means++ over the sample with LibTorch ops (any device). Makes the same
// picks as SeedCpu whenever both sum exactly (e.g. integer-valued data).
std::vector<int64_t> SeedTorch(const torch::Tensor& x, const torch::Tensor& w, int64_t k,
                               const std::vector<int64_t>& rows, Rng& rng) {
  const int64_t s = static_cast<int64_t>(rows.size());
  const torch::Tensor idx = torch::tensor(rows, torch::kLong).to(x.device());
  const torch::Tensor xs = x.index_select(0, idx);
  const torch::Tensor ws = w.index_select(0, idx).to(torch::kDouble);
  torch::Tensor min_dist;
  std::vector<int64_t> picked;
  picked.reserve(k);
  auto pick = [&](const torch::Tensor& p) -> int64_t {
    const double u = rng.Uniform();
    const torch::Tensor cum = p.cumsum(0);
    const double total = cum[s - 1].item<double>();
    if (!(total > 0)) return std::min<int64_t>(s - 1, static_cast<int64_t>(u * s));
    const torch::Tensor r = torch::full({1}, u * total, cum.options());
    int64_t i = torch::searchsorted(cum, r, /*out_int32=*/false, /*right=*/true).item<int64_t>();
    if (i >= s) i = torch::nonzero(p > 0).max().item<int64_t>();
    return i;
  };
  picked.push_back(pick(ws));
  while (static_cast<int64_t>(picked.size()) < k) {
    const torch::Tensor d = (xs - xs[picked.back()]).square().sum(1);
    min_dist = min_dist.defined() ? torch::minimum(min_dist, d) : d;
    picked.push_back(pick(ws * min_dist.to(torch::kDouble)));
  }
  for (int64_t& p : picked) p = rows[p];
  return picked;
}

torch::Tensor Seed(const torch::Tensor& x, const torch::Tensor& w, const KMeansOptions& o) {
  Rng rng(o.seed);
  const std::vector<int64_t> rows = SampleRows(x.size(0), o.seed_sample, rng);
  const std::vector<int64_t> picked =
      UseCpuKernels(x, o)
          ? SeedCpu(x.data_ptr<float>(), w.data_ptr<float>(), static_cast<int>(x.size(1)),
                    o.k, rows, rng)
          : SeedTorch(x, w, o.k, rows, rng);
  return x.index_select(0, torch::tensor(picked, torch::kLong).to(x.device())).clone();
}

// -------------------------------------------------------------- update ----

struct UpdateResult {
  double inertia = 0;        // of the centroids and assignment given
  torch::Tensor centroids;   // weighted means, empty clusters reseeded
};

// Moves each empty cluster (zero total weight) onto a distinct vector with
// the largest weighted error (ties: lowest row); clusters left over when
// fewer vectors have positive error keep their centroid.
std::vector<std::pair<int64_t, int64_t>> PickReseeds(const std::vector<int64_t>& empty,
                                                     const double* err, int64_t n) {
  std::vector<std::pair<int64_t, int64_t>> moves;
  if (empty.empty()) return moves;
  std::vector<int64_t> cand;
  for (int64_t i = 0; i < n; ++i) {
    if (err[i] > 0) cand.push_back(i);
  }
  const int64_t m = std::min<int64_t>(empty.size(), cand.size());
  auto larger = [&](int64_t a, int64_t b) { return err[a] > err[b] || (err[a] == err[b] && a < b); };
  std::partial_sort(cand.begin(), cand.begin() + m, cand.end(), larger);
  for (int64_t q = 0; q < m; ++q) moves.emplace_back(empty[q], cand[q]);
  return moves;
}

// One fused fp64 pass: per-cluster weighted sums, each vector's weighted
// error (for the inertia and for reseeding).
UpdateResult UpdateCpu(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& c,
                       const torch::Tensor& assignment, bool want_centroids) {
  const int64_t n = x.size(0);
  const int v = static_cast<int>(x.size(1));
  const int64_t k = c.size(0);
  const float* xp = x.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  const float* cp = c.data_ptr<float>();
  const int64_t* ap = assignment.data_ptr<int64_t>();
  std::vector<double> sums(want_centroids ? k * v : 0);
  std::vector<double> wsum(want_centroids ? k : 0);
  std::vector<double> err(n);
  UpdateResult out;
  double inertia = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = xp + i * v;
    const int64_t a = ap[i];
    const float* ca = cp + a * v;
    float e = 0;
    for (int d = 0; d < v; ++d) {
      const float diff = xi[d] - ca[d];
      e += diff * diff;
    }
    const double wi = wp[i];
    err[i] = wi * e;
    inertia += err[i];
    if (want_centroids) {
      wsum[a] += wi;
      double* sa = sums.data() + a * v;
      for (int d = 0; d < v; ++d) sa[d] += wi * xi[d];
    }
  }
  out.inertia = inertia;
  if (!want_centroids) return out;
  out.centroids = c.clone();
  float* op = out.centroids.data_ptr<float>();
  std::vector<int64_t> empty;
  for (int64_t j = 0; j < k; ++j) {
    if (wsum[j] > 0) {
      for (int d = 0; d < v; ++d) op[j * v + d] = static_cast<float>(sums[j * v + d] / wsum[j]);
    } else {
      empty.push_back(j);
    }
  }
  for (const auto& [j, i] : PickReseeds(empty, err.data(), n)) {
    std::copy(xp + i * v, xp + (i + 1) * v, op + j * v);
  }
  return out;
}

// The same update with LibTorch ops. Segment sums come from a stable sort by
// cluster and an fp64 cumsum (no atomics, so deterministic on any device).
UpdateResult UpdateTorch(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& c,
                         const torch::Tensor& assignment, bool want_centroids) {
  const int64_t k = c.size(0);
  const int64_t v = x.size(1);
  const torch::Tensor err =
      w.to(torch::kDouble) * (x - c.index_select(0, assignment)).square().sum(1).to(torch::kDouble);
  UpdateResult out;
  out.inertia = err.sum().item<double>();
  if (!want_centroids) return out;
  const auto [sorted, order] =
      assignment.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false);
  const torch::Tensor wd = w.to(torch::kDouble).index_select(0, order);
  const torch::Tensor rows = torch::cat(
      {x.to(torch::kDouble).index_select(0, order) * wd.unsqueeze(1), wd.unsqueeze(1)}, 1);
  const torch::Tensor cum =
      torch::cat({torch::zeros({1, v + 1}, rows.options()), rows.cumsum(0)}, 0);
  // ends[j] = number of vectors in clusters <= j.
  const torch::Tensor ends = torch::searchsorted(
      sorted, torch::arange(k, sorted.options()), /*out_int32=*/false, /*right=*/true);
  const torch::Tensor starts = torch::cat({torch::zeros({1}, ends.options()), ends.slice(0, 0, k - 1)});
  const torch::Tensor seg = cum.index_select(0, ends) - cum.index_select(0, starts);
  const torch::Tensor wsum = seg.select(1, v);
  const torch::Tensor nonempty = wsum > 0;
  const torch::Tensor means =
      (seg.slice(1, 0, v) / wsum.clamp_min(std::numeric_limits<double>::min()).unsqueeze(1))
          .to(torch::kFloat);
  out.centroids = torch::where(nonempty.unsqueeze(1), means, c.to(torch::kFloat));
  const torch::Tensor empty_t = torch::nonzero(~nonempty).flatten().cpu();
  if (empty_t.numel() > 0) {
    const torch::Tensor err_cpu = err.cpu().contiguous();
    std::vector<int64_t> empty(empty_t.data_ptr<int64_t>(),
                               empty_t.data_ptr<int64_t>() + empty_t.numel());
    for (const auto& [j, i] : PickReseeds(empty, err_cpu.data_ptr<double>(), x.size(0))) {
      out.centroids[j].copy_(x[i]);
    }
  }
  return out;
}

UpdateResult Update(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& c,
                    const torch::Tensor& assignment, bool want_centroids, bool cpu) {
  return cpu ? UpdateCpu(x, w, c, assignment, want_centroids)
             : UpdateTorch(x, w, c, assignment, want_centroids);
}

torch::Tensor Assign(const torch::Tensor& x, const torch::Tensor& c, const KMeansOptions& o) {
  return UseCpuKernels(x, o) ? AssignNearest(x, c, o.memory_budget_bytes)
                             : AssignNearestRef(x, c, o.memory_budget_bytes);
}

absl::StatusOr<KMeansResult> RunLloyd(const torch::Tensor& x, const torch::Tensor& w,
                                      torch::Tensor c, const KMeansOptions& o) {
  const bool cpu = UseCpuKernels(x, o);
  KMeansResult result;
  double previous = std::numeric_limits<double>::infinity();
  for (int it = 0; it < o.iters; ++it) {
    const torch::Tensor a = Assign(x, c, o);
    if (!a.defined()) return absl::InternalError("k-means: assignment failed");
    UpdateResult u = Update(x, w, c, a, /*want_centroids=*/true, cpu);
    if (it > 0 && previous - u.inertia <= o.tol * previous) {
      // Converged: (c, a) is consistent; skip the final assignment.
      return KMeansResult{c, a, u.inertia, it};
    }
    previous = u.inertia;
    c = std::move(u.centroids);
    result.iterations = it + 1;
  }
  result.assignment = Assign(x, c, o);
  if (!result.assignment.defined()) return absl::InternalError("k-means: assignment failed");
  result.inertia = Update(x, w, c, result.assignment, /*want_centroids=*/false, cpu).inertia;
  result.centroids = std::move(c);
  return result;
}

// Runs `body` with validated float32 contiguous copies of x and w, turning
// LibTorch exceptions into a Status.
template <typename T, typename Body>
absl::StatusOr<T> WithInputs(const torch::Tensor& x, const torch::Tensor& w, Body body) {
  try {
    torch::NoGradGuard no_grad;
    VPTQ_RETURN_IF_ERROR(ValidateData(x, w));
    return body(x.to(torch::kFloat).contiguous(), w.to(torch::kFloat).contiguous());
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("k-means: ", e.what()));
  }
}

}  // namespace

absl::StatusOr<torch::Tensor> WeightedKMeansPlusPlus(const torch::Tensor& x,
                                                     const torch::Tensor& w,
                                                     const KMeansOptions& options) {
  return WithInputs<torch::Tensor>(
      x, w, [&](const torch::Tensor& xf, const torch::Tensor& wf) -> absl::StatusOr<torch::Tensor> {
        VPTQ_RETURN_IF_ERROR(ValidateOptions(xf.size(0), options));
        return Seed(xf, wf, options);
      });
}

absl::StatusOr<KMeansResult> WeightedKMeans(const torch::Tensor& x, const torch::Tensor& w,
                                            const KMeansOptions& options) {
  return WithInputs<KMeansResult>(
      x, w, [&](const torch::Tensor& xf, const torch::Tensor& wf) -> absl::StatusOr<KMeansResult> {
        VPTQ_RETURN_IF_ERROR(ValidateOptions(xf.size(0), options));
        torch::Tensor c;
        if (options.init_centroids.defined()) {
          VPTQ_RETURN_IF_ERROR(ValidateCentroids(options.init_centroids, xf, options.k,
                                                 "init_centroids"));
          c = options.init_centroids.to(torch::kFloat).contiguous().clone();
        } else {
          c = Seed(xf, wf, options);
        }
        return RunLloyd(xf, wf, std::move(c), options);
      });
}

absl::StatusOr<double> WeightedInertia(const torch::Tensor& x, const torch::Tensor& w,
                                       const torch::Tensor& centroids,
                                       int64_t memory_budget_bytes) {
  return WithInputs<double>(
      x, w, [&](const torch::Tensor& xf, const torch::Tensor& wf) -> absl::StatusOr<double> {
        const int64_t k = centroids.defined() && centroids.dim() == 2 ? centroids.size(0) : 0;
        VPTQ_RETURN_IF_ERROR(ValidateCentroids(centroids, xf, std::max<int64_t>(k, 1), "centroids"));
        const torch::Tensor c = centroids.to(torch::kFloat).contiguous();
        const torch::Tensor a = AssignNearest(xf, c, memory_budget_bytes);
        if (!a.defined()) return absl::InternalError("k-means: assignment failed");
        return Update(xf, wf, c, a, /*want_centroids=*/false, xf.device().is_cpu()).inertia;
      });
}

}  // namespace vptq::quant
