#include "worker/quant/vptq_quantizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include <torch/torch.h>

#include "common/status_matchers.h"
#include "worker/quant/proxy_loss.h"
#include "worker/quant/synthetic.h"

namespace vptq::quant {
namespace {

using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

class VptqQuantizerTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::set_num_threads(2); }

  static SyntheticLinear Layer(int64_t m, int64_t n, uint64_t seed) {
    auto s = MakeSyntheticLinear(
        {.out_features = m, .in_features = n, .seed = seed});
    EXPECT_THAT(s, IsOk());
    return *s;
  }

  static VptqOptions Small() {
    VptqOptions o;
    o.vector_len = 4;
    o.num_centroids = 32;
    o.kmeans_iters = 10;
    o.seed = 5;
    return o;
  }

  static VptqResult Run(const torch::Tensor& w, const torch::Tensor& h,
                        const VptqOptions& o) {
    auto r = QuantizeLinear(w, h, o);
    EXPECT_THAT(r, IsOk());
    return r.ok() ? *std::move(r) : VptqResult{};
  }
};

// Nearest centroid of every v-chunk of every column, comparing only the
// real rows of a padded last chunk: the plain VQ the pass reduces to.
torch::Tensor BruteForceVq(const torch::Tensor& w, const torch::Tensor& c) {
  const int64_t m = w.size(0), v = c.size(1);
  torch::Tensor out = torch::empty_like(w);
  for (int64_t r = 0; r < m; r += v) {
    const int64_t len = std::min(v, m - r);
    torch::Tensor x = w.narrow(0, r, len).t().to(torch::kFloat64);  // (N, len)
    torch::Tensor cc = c.narrow(1, 0, len).to(torch::kFloat64);
    torch::Tensor d = torch::cdist(x, cc);
    torch::Tensor idx = d.argmin(1);
    out.narrow(0, r, len).copy_(c.narrow(1, 0, len).index_select(0, idx).t());
  }
  return out;
}

TEST_F(VptqQuantizerTest, IdentityHessianEqualsNearestCentroidVq) {
  torch::manual_seed(1);
  const int64_t m = 66, n = 40;  // 66 = 16·4 + 2: a padded last vector
  torch::Tensor w = torch::randn({m, n});
  torch::Tensor c = torch::randn({1, 32, 4}).to(torch::kHalf).to(torch::kFloat);
  for (bool perm : {false, true}) {
    VptqOptions o = Small();
    o.enable_perm = perm;
    o.init_centroids = c;
    VptqResult r = Run(w, torch::eye(n), o);
    EXPECT_TRUE(torch::equal(r.reconstruction, BruteForceVq(w, c[0])))
        << "perm " << perm;
  }
}

TEST_F(VptqQuantizerTest, FeedbackLowersLossOnCorrelatedHessian) {
  SyntheticLinear s = Layer(64, 128, 2);
  VptqOptions o = Small();
  VptqResult with = Run(s.weight, s.hessian, o);
  o.error_feedback = false;
  VptqResult without = Run(s.weight, s.hessian, o);
  constexpr double kMaxRatio = 0.8;
  EXPECT_LT(with.stats.proxy_loss, kMaxRatio * without.stats.proxy_loss)
      << with.stats.proxy_loss << " vs " << without.stats.proxy_loss;
}

TEST_F(VptqQuantizerTest, ProxyLossInvariantToPermWithFixedCodebook) {
  // A diagonal Hessian with distinct entries: perm reorders every column,
  // but each column's quantization is independent of the order, so with a
  // fixed codebook the stored model must be the same one. Any slip in
  // permuting, un-permuting or the stored perm/scale shows up here.
  torch::manual_seed(3);
  const int64_t m = 32, n = 48;
  torch::Tensor w = torch::randn({m, n});
  torch::Tensor h = torch::diag(torch::rand({n}, torch::kFloat64) * 5 + 0.1);
  VptqOptions o = Small();
  o.init_centroids = torch::randn({1, 32, 4});
  o.enable_perm = false;
  VptqResult off = Run(w, h, o);
  o.enable_perm = true;
  VptqResult on = Run(w, h, o);
  EXPECT_FALSE(torch::equal(on.quantized.perm, off.quantized.perm));
  EXPECT_TRUE(torch::equal(on.reconstruction, off.reconstruction));
  constexpr double kRelTol = 1e-6;  // float32 GEMM order in the loss only
  EXPECT_NEAR(on.stats.proxy_loss, off.stats.proxy_loss,
              kRelTol * off.stats.proxy_loss);
}

TEST_F(VptqQuantizerTest, ProxyLossStatisticallyInvariantToPerm) {
  // With a correlated Hessian and k-means codebooks the order changes the
  // error feedback and the k-means sample, so the loss is only invariant in
  // aggregate: over seeds, perm on stays within [0.7, 1.05] of perm off
  // (act-order helps by ~15% here and must not hurt), while a bookkeeping
  // error (wrong un-permute, perm/scale indexed by the wrong order) would
  // cost orders of magnitude.
  double sum_on = 0, sum_off = 0;
  for (uint64_t seed : {11, 12, 13}) {
    SyntheticLinear s = Layer(48, 96, seed);
    VptqOptions o = Small();
    o.enable_perm = true;
    sum_on += Run(s.weight, s.hessian, o).stats.proxy_loss;
    o.enable_perm = false;
    sum_off += Run(s.weight, s.hessian, o).stats.proxy_loss;
  }
  constexpr double kMinRatio = 0.7, kMaxRatio = 1.05;
  EXPECT_GT(sum_on / sum_off, kMinRatio) << sum_on << " vs " << sum_off;
  EXPECT_LT(sum_on / sum_off, kMaxRatio) << sum_on << " vs " << sum_off;
}

TEST_F(VptqQuantizerTest, ResidualVqLowersLossAtSameK) {
  SyntheticLinear s = Layer(64, 128, 4);
  VptqOptions o = Small();
  o.num_centroids = 16;
  VptqResult plain = Run(s.weight, s.hessian, o);
  o.num_res_centroids = 16;
  VptqResult residual = Run(s.weight, s.hessian, o);
  EXPECT_LT(residual.stats.proxy_loss, 0.8 * plain.stats.proxy_loss)
      << residual.stats.proxy_loss << " vs " << plain.stats.proxy_loss;
  ASSERT_TRUE(residual.quantized.res_centroids.defined());
  EXPECT_EQ(residual.quantized.res_centroids.sizes(),
            torch::IntArrayRef({1, 16, 4}));
  EXPECT_EQ(residual.quantized.res_indices.sizes(),
            residual.quantized.indices.sizes());
  EXPECT_GT(residual.stats.seconds.residual, 0);
}

// Every v-chunk of the given original columns of `rec` is a row of `book`.
bool ColumnsUseCodebook(const torch::Tensor& rec, const torch::Tensor& cols,
                        const torch::Tensor& book) {
  const int64_t v = book.size(1), m = rec.size(0);
  torch::Tensor x = rec.index_select(1, cols).t();  // (C, M)
  for (int64_t r = 0; r + v <= m; r += v) {
    torch::Tensor chunk = x.narrow(1, r, v);  // (C, v)
    torch::Tensor d = torch::cdist(chunk, book);
    if (std::get<0>(d.min(1)).max().item<double>() != 0.0) return false;
  }
  return true;
}

TEST_F(VptqQuantizerTest, OutlierColumnsUseTheirOwnCodebook) {
  SyntheticLinear s = Layer(32, 100, 5);
  VptqOptions o = Small();
  o.num_centroids = 16;
  o.group_num = 4;
  o.outlier_fraction = 0.05;
  o.outlier_vector_len = 2;
  o.outlier_num_centroids = 64;
  VptqResult r = Run(s.weight, s.hessian, o);
  const QuantLayout& l = r.quantized.layout;
  EXPECT_EQ(l.outlier_size, 5 + 95 % 4);
  EXPECT_EQ(l.group_size, 23);
  ASSERT_TRUE(r.quantized.outlier_centroids.defined());
  EXPECT_EQ(r.quantized.outlier_centroids.sizes(), torch::IntArrayRef({64, 2}));
  EXPECT_EQ(r.quantized.outlier_indices.sizes(), torch::IntArrayRef({16, 8}));
  EXPECT_EQ(r.quantized.indices.sizes(), torch::IntArrayRef({4, 8, 23}));
  // With perm on, the outlier columns are the ones with the largest H_jj.
  torch::Tensor outlier_cols = r.quantized.perm.narrow(0, 0, l.outlier_size);
  torch::Tensor top = std::get<1>(s.hessian.diagonal().topk(l.outlier_size));
  EXPECT_TRUE(torch::equal(std::get<0>(outlier_cols.sort()),
                           std::get<0>(top.sort())));
  EXPECT_TRUE(ColumnsUseCodebook(r.reconstruction, outlier_cols,
                                 r.quantized.outlier_centroids));
  for (int64_t g = 0; g < 4; ++g) {
    torch::Tensor cols = r.quantized.perm.narrow(0, l.outlier_size + g * 23, 23);
    EXPECT_TRUE(ColumnsUseCodebook(r.reconstruction, cols,
                                   r.quantized.centroids[g]))
        << "group " << g;
  }
  // Groups fit their own codebooks.
  EXPECT_FALSE(torch::equal(r.quantized.centroids[0], r.quantized.centroids[1]));
  EXPECT_LT(r.stats.proxy_loss, 0.5);
  EXPECT_DOUBLE_EQ(r.stats.bits_per_weight, l.BitsPerWeight(16));
}

TEST_F(VptqQuantizerTest, GroupsWithResidualPath) {
  SyntheticLinear s = Layer(48, 96, 6);
  VptqOptions o = Small();
  o.num_centroids = 16;
  o.num_res_centroids = 16;
  o.group_num = 3;
  VptqResult r = Run(s.weight, s.hessian, o);
  EXPECT_EQ(r.quantized.centroids.sizes(), torch::IntArrayRef({3, 16, 4}));
  EXPECT_EQ(r.quantized.res_centroids.sizes(), torch::IntArrayRef({3, 16, 4}));
  EXPECT_EQ(r.quantized.indices.sizes(), torch::IntArrayRef({3, 12, 32}));
  EXPECT_FALSE(r.quantized.outlier_centroids.defined());
  VptqResult one_group = Run(s.weight, s.hessian, [&] {
    VptqOptions g1 = o;
    g1.group_num = 1;
    return g1;
  }());
  // Three codebooks fit their columns at least as well as one, up to k-means
  // noise.
  constexpr double kNoise = 1.1;
  EXPECT_LT(r.stats.proxy_loss, kNoise * one_group.stats.proxy_loss);
}

TEST_F(VptqQuantizerTest, RefinementNeverIncreasesLoss) {
  for (bool residual : {false, true}) {
    SyntheticLinear s = Layer(64, 128, 7);
    VptqOptions o = Small();
    o.num_res_centroids = residual ? 8 : 0;
    VptqResult base = Run(s.weight, s.hessian, o);
    o.refine_iters = 3;
    VptqResult refined = Run(s.weight, s.hessian, o);
    EXPECT_LE(refined.stats.proxy_loss, base.stats.proxy_loss);
    EXPECT_EQ(refined.stats.proxy_loss_before_refine, base.stats.proxy_loss);
    if (refined.stats.refine_rounds_accepted > 0) {
      EXPECT_LT(refined.stats.proxy_loss, base.stats.proxy_loss);
    }
    auto direct = RelativeProxyLoss(s.weight, refined.reconstruction, s.hessian);
    ASSERT_THAT(direct, IsOk());
    EXPECT_DOUBLE_EQ(*direct, refined.stats.proxy_loss);
  }
}

TEST_F(VptqQuantizerTest, NormWeightsTheLossByScaledHessian) {
  // Columns with very different ranges, so S = diag(s) matters.
  SyntheticLinear s = Layer(48, 64, 8);
  torch::Tensor w =
      s.weight * torch::logspace(-2, 1, 64).unsqueeze(0).to(torch::kFloat);
  VptqOptions o = Small();
  o.enable_perm = false;
  o.enable_norm = true;
  VptqResult normed = Run(w, s.hessian, o);

  // The same normalisation by hand: W̃ = (W − b)/s with s, b as stored (fp16).
  torch::Tensor lo = w.amin(0);
  torch::Tensor scale = (w.amax(0) - lo).to(torch::kHalf).to(torch::kFloat);
  torch::Tensor bias = lo.to(torch::kHalf).to(torch::kFloat);
  EXPECT_TRUE(torch::equal(normed.quantized.scale, scale));
  EXPECT_TRUE(torch::equal(normed.quantized.bias_norm, bias));
  torch::Tensor wn = (w - bias) / scale;
  torch::Tensor s64 = scale.to(torch::kFloat64);
  torch::Tensor h_tilde = s.hessian * torch::outer(s64, s64);

  // Quantizing W̃ under H̃ without norm is, by definition, the same run.
  VptqOptions plain = o;
  plain.enable_norm = false;
  VptqResult manual = Run(wn, h_tilde, plain);
  EXPECT_TRUE(torch::equal(normed.quantized.indices, manual.quantized.indices));
  EXPECT_TRUE(
      torch::equal(normed.quantized.centroids, manual.quantized.centroids));
  constexpr double kTol = 1e-6;
  EXPECT_TRUE(torch::allclose(normed.reconstruction,
                              manual.reconstruction * scale + bias, kTol, kTol));

  // With the unscaled H (the reference code's mistake) the codes differ.
  VptqResult unscaled = Run(wn, s.hessian, plain);
  EXPECT_FALSE(
      torch::equal(normed.quantized.indices, unscaled.quantized.indices));
}

TEST_F(VptqQuantizerTest, PackedModelIsExactlyTheReconstruction) {
  SyntheticLinear s = Layer(50, 96, 9);
  std::vector<VptqOptions> configs;
  configs.push_back(Small());
  VptqOptions res = Small();
  res.num_res_centroids = 16;
  res.enable_norm = true;
  configs.push_back(res);
  VptqOptions out = Small();
  out.vector_len = 6;
  out.num_centroids = 16;
  out.num_res_centroids = 16;
  out.group_num = 2;
  out.outlier_fraction = 0.1;
  out.outlier_vector_len = 2;
  out.outlier_num_centroids = 32;
  configs.push_back(out);
  VptqOptions bf16 = Small();
  bf16.storage_dtype = torch::kBFloat16;
  bf16.enable_norm = true;
  configs.push_back(bf16);
  for (size_t i = 0; i < configs.size(); ++i) {
    VptqResult r = Run(s.weight, s.hessian, configs[i]);
    auto packed = PackChecked(r.quantized, configs[i].storage_dtype);
    ASSERT_THAT(packed, IsOk()) << "config " << i;
    auto back = Unpack(*packed, r.quantized.layout);
    ASSERT_THAT(back, IsOk()) << "config " << i;
    torch::Tensor rebuilt = Dequantize(*back);
    ASSERT_TRUE(rebuilt.defined());
    EXPECT_TRUE(torch::equal(rebuilt, r.reconstruction)) << "config " << i;
    EXPECT_TRUE(torch::equal(Dequantize(r.quantized), r.reconstruction));
  }
}

TEST_F(VptqQuantizerTest, DeterministicForASeed) {
  SyntheticLinear s = Layer(40, 64, 10);
  VptqOptions o = Small();
  o.num_res_centroids = 8;
  o.refine_iters = 1;
  VptqResult a = Run(s.weight, s.hessian, o);
  VptqResult b = Run(s.weight, s.hessian, o);
  EXPECT_TRUE(torch::equal(a.reconstruction, b.reconstruction));
  EXPECT_TRUE(torch::equal(a.quantized.indices, b.quantized.indices));
  EXPECT_TRUE(torch::equal(a.quantized.res_indices, b.quantized.res_indices));
  EXPECT_TRUE(torch::equal(a.quantized.centroids, b.quantized.centroids));
  EXPECT_EQ(a.stats.proxy_loss, b.stats.proxy_loss);
  o.seed = 6;
  VptqResult c = Run(s.weight, s.hessian, o);
  EXPECT_FALSE(torch::equal(a.quantized.centroids, c.quantized.centroids));
}

TEST_F(VptqQuantizerTest, BadInputsAreInvalidArgument) {
  torch::Tensor w = torch::randn({16, 32});
  torch::Tensor h = torch::eye(32);
  auto invalid = [&](const torch::Tensor& ww, const torch::Tensor& hh,
                     const VptqOptions& o, const char* what) {
    EXPECT_THAT(QuantizeLinear(ww, hh, o),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(what)))
        << what;
  };
  VptqOptions o = Small();
  o.num_centroids = 48;
  invalid(w, h, o, "power of two");
  o = Small();
  o.num_res_centroids = 5;
  invalid(w, h, o, "power of two");
  o = Small();
  o.vector_len = 0;
  invalid(w, h, o, "vector_len");
  o = Small();
  o.num_centroids = 256;  // 4 vectors x 32 columns = 128
  invalid(w, h, o, "exceeds the 128 vectors");
  o = Small();
  o.num_res_centroids = 64;
  invalid(w, h, o, "K_r <= K");
  torch::Tensor nan_w = w.clone();
  nan_w[3][4] = NAN;
  invalid(nan_w, h, Small(), "weight contains NaN");
  torch::Tensor inf_h = h.clone();
  inf_h[1][2] = INFINITY;
  invalid(w, inf_h, Small(), "Hessian contains NaN or Inf");
  invalid(w, torch::eye(31), Small(), "(N, N) = (32, 32)");
  invalid(w.flatten(), h, Small(), "(M, N)");
  EXPECT_THAT(ValidateVptqOptions(Small(), 16, 70000),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("65535")));
}

TEST_F(VptqQuantizerTest, NotPositiveDefiniteHessian) {
  torch::manual_seed(12);
  torch::Tensor w = torch::randn({16, 32});
  torch::Tensor h = torch::eye(32, torch::kFloat64);
  h[7][7] = -0.05;  // a little extra damping fixes it
  auto fixed = QuantizeLinear(w, h, Small());
  ASSERT_THAT(fixed, IsOk());
  EXPECT_GT(fixed->stats.damping_added, 0);
  h[7][7] = -1000;  // no amount of the allowed damping does
  EXPECT_THAT(QuantizeLinear(w, h, Small()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("not positive definite")));
}

TEST_F(VptqQuantizerTest, StatsAreFilled) {
  SyntheticLinear s = Layer(32, 64, 13);
  VptqResult r = Run(s.weight, s.hessian, Small());
  EXPECT_GT(r.stats.kmeans_iterations, 0);
  EXPECT_GT(r.stats.seconds.total, 0);
  EXPECT_GE(r.stats.seconds.total, r.stats.seconds.kmeans + r.stats.seconds.pass);
  EXPECT_EQ(r.stats.seconds.residual, 0);
  EXPECT_DOUBLE_EQ(r.stats.bits_per_weight,
                   LayoutFor(Small(), 32, 64).BitsPerWeight(16));
  EXPECT_GT(r.stats.proxy_loss, 0);
  EXPECT_LT(r.stats.proxy_loss, 1);
}

}  // namespace
}  // namespace vptq::quant
