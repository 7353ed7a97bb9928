// VptqOptions: presets, validation, layout, the bits chooser, the stock
// kernel envelope.
#include "worker/quant/vptq_options.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/quant/engine_util.h"

namespace vptq::quant {
namespace {

using internal::CeilDiv;
using internal::IsPowerOfTwo;
using internal::Log2Exact;

constexpr int64_t kMaxCentroids = 65536;
constexpr int64_t kMaxPermColumns = 65535;
constexpr int64_t kMinVectorsPerCentroid = 32;

constexpr std::array<int, 8> kStockIndexBits = {4, 8, 10, 12, 13, 14, 15, 16};
constexpr std::array<int, 14> kStockResBits = {0, 2, 3, 4, 5, 6, 7, 8,
                                               9, 10, 11, 12, 15, 16};
constexpr std::array<int, 7> kStockVectorLens = {2, 4, 6, 8, 10, 12, 16};

template <typename C>
bool Contains(const C& c, int64_t x) {
  return std::find(c.begin(), c.end(), x) != c.end();
}

absl::Status Bad(const std::string& msg) {
  return absl::InvalidArgumentError(absl::StrCat("VPTQ options: ", msg));
}

// A centroid count: power of two in [2, 65536].
absl::Status CheckCentroids(const char* name, int64_t k,
                            const char* alternative = "") {
  if (!IsPowerOfTwo(k) || k < 2 || k > kMaxCentroids) {
    int64_t lower = 1;
    while (lower * 2 <= std::max<int64_t>(k, 2)) lower *= 2;
    lower = std::clamp<int64_t>(lower, 2, kMaxCentroids);
    return Bad(absl::StrCat(name, " is ", k,
                            "; it must be a power of two from 2 to 65536 "
                            "(e.g. ",
                            lower, ")", alternative));
  }
  return absl::OkStatus();
}

absl::Status CheckCodebookShape(const char* name, const torch::Tensor& t,
                                std::vector<int64_t> shape) {
  if (!t.defined()) return absl::OkStatus();
  if (!t.is_floating_point() || !t.sizes().equals(shape)) {
    return Bad(absl::StrCat(name, " has shape (", absl::StrJoin(t.sizes(), ", "),
                            ") but the options need a float tensor of shape (",
                            absl::StrJoin(shape, ", "),
                            "); pass a codebook of that shape or none"));
  }
  if (!internal::AllFinite(t)) {
    return Bad(absl::StrCat(name, " contains NaN or Inf"));
  }
  return absl::OkStatus();
}

}  // namespace

VptqOptions PresetOptions(VptqPreset preset) {
  VptqOptions o;
  switch (preset) {
    case VptqPreset::k2Bit:
      o.vector_len = 6;
      o.num_centroids = 4096;
      break;
    case VptqPreset::k2BitOutliers:
      o.outlier_fraction = 0.01;
      o.outlier_vector_len = 4;
      o.outlier_num_centroids = 8192;
      o.vector_len = 12;
      o.num_centroids = 4096;
      o.num_res_centroids = 4096;
      o.group_num = 4;
      break;
    case VptqPreset::k3Bit:
      o.vector_len = 8;
      o.num_centroids = 65536;
      o.num_res_centroids = 256;
      break;
    case VptqPreset::k4Bit:
      o.vector_len = 6;
      o.num_centroids = 65536;
      o.num_res_centroids = 256;
      break;
  }
  return o;
}

int64_t OutlierColumns(const VptqOptions& o, int64_t n) {
  const double exact = o.outlier_fraction * static_cast<double>(n);
  // ceil(p·N), robust to p·N landing a hair above an integer.
  const double nearest = std::round(exact);
  int64_t base = std::abs(exact - nearest) < 1e-9
                     ? static_cast<int64_t>(nearest)
                     : static_cast<int64_t>(std::ceil(exact));
  base = std::clamp<int64_t>(base, 0, n);
  const int64_t g = std::max<int64_t>(o.group_num, 1);
  return base + (n - base) % g;
}

QuantLayout LayoutFor(const VptqOptions& o, int64_t m, int64_t n) {
  QuantLayout l;
  l.out_features = m;
  l.in_features = n;
  l.vector_len = o.vector_len;
  l.num_centroids = o.num_centroids;
  l.num_res_centroids = o.num_res_centroids;
  l.group_num = o.group_num;
  l.outlier_size = OutlierColumns(o, n);
  l.group_size = o.group_num > 0 ? (n - l.outlier_size) / o.group_num : 0;
  if (l.outlier_size > 0) {
    l.outlier_vector_len = o.outlier_vector_len;
    l.outlier_num_centroids = o.outlier_num_centroids;
  }
  l.enable_perm = o.enable_perm;
  l.enable_norm = o.enable_norm;
  return l;
}

absl::Status ValidateVptqOptions(const VptqOptions& o, int64_t m, int64_t n) {
  if (m < 1 || n < 1) {
    return Bad(absl::StrCat("the weight is ", m, "x", n,
                            "; it needs at least one row and one column"));
  }
  if (o.vector_len < 1) {
    return Bad(absl::StrCat("vector_len (v) is ", o.vector_len,
                            "; use a vector length of at least 1 (6 is the "
                            "2-bit preset)"));
  }
  if (auto s = CheckCentroids("num_centroids (K)", o.num_centroids); !s.ok()) {
    return s;
  }
  if (o.num_res_centroids != 0) {
    if (auto s = CheckCentroids("num_res_centroids (K_r)", o.num_res_centroids,
                                ", or 0 for no residual codebook");
        !s.ok()) {
      return s;
    }
    if (o.num_res_centroids > o.num_centroids) {
      return Bad(absl::StrCat(
          "num_res_centroids (K_r = ", o.num_res_centroids, ", ",
          Log2Exact(o.num_res_centroids), " bits) has more bits than "
          "num_centroids (K = ", o.num_centroids, ", ",
          Log2Exact(o.num_centroids),
          " bits); the stock loader masks residual indices to the index "
          "width, so use K_r <= K"));
    }
  }
  if (o.group_num < 1) {
    return Bad(absl::StrCat("group_num (G) is ", o.group_num,
                            "; use at least 1"));
  }
  if (!(o.outlier_fraction >= 0) || o.outlier_fraction >= 1) {
    return Bad(absl::StrCat("outlier_fraction (p) is ", o.outlier_fraction,
                            "; use a fraction in [0, 1), e.g. 0.01"));
  }
  if (o.enable_perm && n > kMaxPermColumns) {
    return Bad(absl::StrCat("in_features N = ", n, " exceeds 65535, the "
                            "largest the uint16 perm can index; set "
                            "enable_perm = false for this linear"));
  }
  if (o.block_size < 1) {
    return Bad(absl::StrCat("block_size is ", o.block_size,
                            "; use at least 1 (128 is the default)"));
  }
  if (o.kmeans_iters < 1 || !(o.kmeans_tol >= 0) || o.kmeans_max_vectors < 0) {
    return Bad("kmeans_iters must be >= 1, kmeans_tol >= 0 and "
               "kmeans_max_vectors >= 0 (0 = all vectors)");
  }
  if (o.refine_iters < 0) {
    return Bad(absl::StrCat("refine_iters is ", o.refine_iters,
                            "; use 0 (off) or more rounds"));
  }
  if (o.storage_dtype != torch::kHalf && o.storage_dtype != torch::kBFloat16 &&
      o.storage_dtype != torch::kFloat) {
    return Bad("storage_dtype must be float16, bfloat16 or float32 (the "
               "model dtype the codebooks are stored in)");
  }
  const int64_t outliers = OutlierColumns(o, n);
  const int64_t group_size = (n - outliers) / o.group_num;
  if (group_size < 1) {
    return Bad(absl::StrCat("after ", outliers, " outlier columns, the ",
                            n - outliers, " remaining columns cannot form ",
                            o.group_num, " groups; lower group_num (G) or "
                            "outlier_fraction (p)"));
  }
  const int64_t group_vectors = CeilDiv(m, o.vector_len) * group_size;
  if (o.num_centroids > group_vectors) {
    return Bad(absl::StrCat(
        "num_centroids K = ", o.num_centroids, " exceeds the ", group_vectors,
        " vectors of each group (ceil(M/v)·group_size = ", CeilDiv(m, o.vector_len),
        "·", group_size, "); lower K or v, or use fewer groups"));
  }
  if (o.num_res_centroids > group_vectors) {
    return Bad(absl::StrCat("num_res_centroids K_r = ", o.num_res_centroids,
                            " exceeds the ", group_vectors,
                            " vectors of each group; lower K_r"));
  }
  if (outliers > 0) {
    if (o.outlier_vector_len < 2) {
      return Bad(absl::StrCat(
          "outlier_vector_len (v0) is ", o.outlier_vector_len, " with ",
          outliers, " outlier columns; the stock loader needs v0 >= 2",
          o.outlier_fraction == 0
              ? absl::StrCat(" (the outlier columns absorb N mod G = ", n, " mod ",
                             o.group_num, "; or pick G dividing N)")
              : ""));
    }
    if (auto s = CheckCentroids("outlier_num_centroids (K0)",
                                o.outlier_num_centroids);
        !s.ok()) {
      return s;
    }
    const int64_t outlier_vectors = CeilDiv(m, o.outlier_vector_len) * outliers;
    if (o.outlier_num_centroids > outlier_vectors) {
      return Bad(absl::StrCat(
          "outlier_num_centroids K0 = ", o.outlier_num_centroids,
          " exceeds the ", outlier_vectors, " vectors of the ", outliers,
          " outlier columns; lower K0 or v0, or raise outlier_fraction",
          o.outlier_fraction == 0
              ? absl::StrCat(" (the outlier columns absorb N mod G = ", n,
                             " mod ", o.group_num,
                             "; or pick G dividing N)")
              : ""));
    }
  }
  if (auto s = CheckCodebookShape("init_centroids", o.init_centroids,
                                  {o.group_num, o.num_centroids, o.vector_len});
      !s.ok()) {
    return s;
  }
  if (o.init_res_centroids.defined() && o.num_res_centroids == 0) {
    return Bad("init_res_centroids given but num_res_centroids is 0");
  }
  if (auto s = CheckCodebookShape(
          "init_res_centroids", o.init_res_centroids,
          {o.group_num, o.num_res_centroids, o.vector_len});
      !s.ok()) {
    return s;
  }
  if (o.init_outlier_centroids.defined() && outliers == 0) {
    return Bad("init_outlier_centroids given but there are no outlier columns");
  }
  if (auto s = CheckCodebookShape(
          "init_outlier_centroids", o.init_outlier_centroids,
          {o.outlier_num_centroids, o.outlier_vector_len});
      !s.ok()) {
    return s;
  }
  return absl::OkStatus();
}

bool InStockKernelEnvelope(const QuantLayout& l, std::string* why) {
  std::vector<std::string> reasons;
  if (!Contains(kStockVectorLens, l.vector_len)) {
    reasons.push_back(absl::StrCat("vector_len ", l.vector_len,
                                   " not in {2,4,6,8,10,12,16}"));
  }
  if (!Contains(kStockIndexBits, l.index_bits())) {
    reasons.push_back(absl::StrCat("index bits ", l.index_bits(),
                                   " not in {4,8,10,12,13,14,15,16}"));
  }
  if (!Contains(kStockResBits, l.res_index_bits())) {
    reasons.push_back(absl::StrCat("residual bits ", l.res_index_bits(),
                                   " not in {0,2..12,15,16}"));
  }
  if (l.group_num > 1 && l.num_centroids != l.num_res_centroids) {
    reasons.push_back(absl::StrCat("group_num ", l.group_num,
                                   " > 1 needs num_centroids == "
                                   "num_res_centroids (",
                                   l.num_centroids, " vs ",
                                   l.num_res_centroids, ")"));
  }
  if (l.outlier_size > 0) {
    if (!Contains(kStockVectorLens, l.outlier_vector_len)) {
      reasons.push_back(absl::StrCat("outlier vector_len ",
                                     l.outlier_vector_len,
                                     " not in {2,4,6,8,10,12,16}"));
    }
    const int b0 = Log2Exact(l.outlier_num_centroids);
    if (!Contains(kStockIndexBits, b0)) {
      reasons.push_back(absl::StrCat("outlier index bits ", b0,
                                     " not in {4,8,10,12,13,14,15,16}"));
    }
  }
  if (why != nullptr) *why = absl::StrJoin(reasons, "; ");
  return reasons.empty();
}

absl::StatusOr<VptqOptions> ChooseOptionsForBits(double target_bpw, int64_t m,
                                                 int64_t n, int element_bits) {
  if (m < 1 || n < 1 || !(target_bpw > 0) || element_bits < 1) {
    return Bad(absl::StrCat("ChooseOptionsForBits needs positive sizes (got ",
                            m, "x", n, "), target_bpw > 0 (got ", target_bpw,
                            ") and element_bits >= 1"));
  }
  const long level = std::lround(target_bpw);
  const int64_t paper_v = level == 3 ? 8 : 6;

  struct Candidate {
    VptqOptions options;
    double rate = 0;   // index bits per weight
    double total = 0;  // with codebooks, scale and bias
  };
  std::optional<Candidate> best;
  double smallest_total = std::numeric_limits<double>::infinity();
  auto better = [&](const Candidate& a, const Candidate& b) {
    if (std::abs(a.rate - b.rate) > 1e-9) return a.rate > b.rate;
    const int64_t da = std::abs(a.options.vector_len - paper_v);
    const int64_t db = std::abs(b.options.vector_len - paper_v);
    if (da != db) return da < db;
    if (a.options.vector_len != b.options.vector_len) {
      return a.options.vector_len > b.options.vector_len;
    }
    if (a.options.num_res_centroids != b.options.num_res_centroids) {
      return a.options.num_res_centroids < b.options.num_res_centroids;
    }
    return a.total < b.total;
  };
  for (int v : kStockVectorLens) {
    const int64_t vectors = CeilDiv(m, v) * n;
    for (int b : kStockIndexBits) {
      for (int br : kStockResBits) {
        if (br > b) continue;
        VptqOptions o;
        o.vector_len = v;
        o.num_centroids = int64_t{1} << b;
        o.num_res_centroids = br > 0 ? int64_t{1} << br : 0;
        const double total = LayoutFor(o, m, n).BitsPerWeight(element_bits);
        smallest_total = std::min(smallest_total, total);
        if (total > target_bpw) continue;
        if (o.num_centroids * kMinVectorsPerCentroid > vectors) continue;
        Candidate c{o, static_cast<double>(b + br) / v, total};
        if (!best || better(c, *best)) best = c;
      }
    }
  }
  if (!best) {
    return Bad(absl::StrCat(
        "no stock-kernel layout for a ", m, "x", n, " linear fits ", target_bpw,
        " bits per weight (codebooks and scale/bias included; the smallest "
        "total is ",
        smallest_total, "); raise the target or leave this linear unquantized"));
  }
  return best->options;
}

}  // namespace vptq::quant
