#include "worker/quant/kmeans.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <limits>
#include <vector>

#include "common/status.h"
#include "common/status_matchers.h"

namespace vptq::quant {
namespace {

using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

// Planted blobs: noise 0.05 per coordinate over 300 points per blob puts
// the weighted mean within ~0.01 of the centre; 0.05 leaves margin.
constexpr double kPlantedTol = 0.05;
// Inertias and means computed in fp32 vs fp64 differ by rounding only.
constexpr double kInertiaRelTol = 1e-5;
constexpr double kCentroidTol = 1e-5;

class WeightedKMeansTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { torch::set_num_threads(2); }
  // Parameter: fast CPU kernels (true) or the LibTorch reference path.
  bool fast() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Paths, WeightedKMeansTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Fast" : "Reference"; });

struct Blobs {
  torch::Tensor centres;  // (k, v)
  torch::Tensor x;        // (k * per, v)
  torch::Tensor w;        // (k * per,)
};

// k centres on distinct corners of a hypercube of side 4 (pairwise distance
// >= 4), `per` points around each with N(0, 0.05²) noise, weights in [0.5, 2).
Blobs MakeBlobs(int64_t k, int64_t v, int64_t per, uint64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor centres = torch::empty({k, v});
  for (int64_t j = 0; j < k; ++j) {
    for (int64_t d = 0; d < v; ++d) centres[j][d] = ((j >> d) & 1) ? 4.0f : 0.0f;
  }
  const torch::Tensor x =
      centres.repeat_interleave(per, 0) + 0.05 * torch::randn({k * per, v});
  const torch::Tensor w = 0.5 + 1.5 * torch::rand({k * per});
  return {centres, x, w};
}

// Largest distance from a planted centre to its nearest found centroid.
double WorstRecovery(const torch::Tensor& planted, const torch::Tensor& found) {
  return torch::cdist(planted, found).amin(1).max().item<double>();
}

TEST_P(WeightedKMeansTest, RecoversPlantedCentres) {
  const Blobs b = MakeBlobs(/*k=*/8, /*v=*/4, /*per=*/300, /*seed=*/1);
  VPTQ_ASSERT_OK_AND_ASSIGN(
      KMeansResult r,
      WeightedKMeans(b.x, b.w, {.k = 8, .iters = 50, .seed = 3, .fast_kernel = fast()}));
  EXPECT_LE(WorstRecovery(b.centres, r.centroids), kPlantedTol);
  EXPECT_EQ(r.centroids.sizes(), (std::vector<int64_t>{8, 4}));
  EXPECT_EQ(r.assignment.sizes(), (std::vector<int64_t>{2400}));
  EXPECT_GE(r.iterations, 1);
  EXPECT_LT(r.iterations, 50);  // converged (tol) long before the cap
}

TEST_P(WeightedKMeansTest, InertiaIsThatOfTheReturnedCentroids) {
  const Blobs b = MakeBlobs(8, 3, 100, 2);
  for (int iters : {0, 1, 3, 100}) {
    VPTQ_ASSERT_OK_AND_ASSIGN(
        KMeansResult r, WeightedKMeans(b.x, b.w, {.k = 6, .iters = iters, .seed = 1,
                                                  .fast_kernel = fast()}));
    VPTQ_ASSERT_OK_AND_ASSIGN(double inertia, WeightedInertia(b.x, b.w, r.centroids));
    EXPECT_NEAR(r.inertia, inertia, kInertiaRelTol * inertia) << "iters=" << iters;
    EXPECT_TRUE(torch::equal(r.assignment, AssignNearestRef(b.x, r.centroids)))
        << "iters=" << iters;
    EXPECT_LE(r.iterations, iters);
  }
}

// Six weighted points, k = 2: compare with the best of all 2^6 partitions
// (each cluster at its weighted mean). The weights move the optimum: with
// unit weights, row 4 would join rows 1-3.
TEST_P(WeightedKMeansTest, TinyCaseMatchesBruteForceOptimum) {
  const std::vector<std::vector<double>> pts = {{0, 3},   {3.5, 3}, {3.5, 2},
                                                {3.5, 2.5}, {2.5, 3.5}, {1.5, 3.5}};
  const std::vector<double> wts = {1, 9, 8, 6, 2, 7};
  double best = std::numeric_limits<double>::infinity();
  int best_mask = 0;
  for (int mask = 1; mask < (1 << 6) - 1; ++mask) {
    double total = 0;
    for (int side = 0; side < 2; ++side) {
      double sw = 0, sx = 0, sy = 0;
      for (int i = 0; i < 6; ++i) {
        if (((mask >> i) & 1) != side) continue;
        sw += wts[i];
        sx += wts[i] * pts[i][0];
        sy += wts[i] * pts[i][1];
      }
      for (int i = 0; i < 6; ++i) {
        if (((mask >> i) & 1) != side) continue;
        total += wts[i] * (std::pow(pts[i][0] - sx / sw, 2) + std::pow(pts[i][1] - sy / sw, 2));
      }
    }
    if (total < best) {
      best = total;
      best_mask = mask;
    }
  }
  ASSERT_TRUE(best_mask == 0b110001 || best_mask == 0b001110) << best_mask;
  torch::Tensor x = torch::empty({6, 2});
  for (int i = 0; i < 6; ++i) {
    x[i][0] = pts[i][0];
    x[i][1] = pts[i][1];
  }
  const torch::Tensor w = torch::tensor(std::vector<float>(wts.begin(), wts.end()));
  auto expect_optimal = [&](const KMeansResult& r, const std::string& what) {
    EXPECT_NEAR(r.inertia, best, kInertiaRelTol * best) << what;
    int mask = 0;
    for (int i = 0; i < 6; ++i) mask |= (r.assignment[i].item<int64_t>() == 1) << i;
    EXPECT_TRUE(mask == best_mask || mask == (0b111111 ^ best_mask)) << what;
  };
  for (uint64_t seed = 0; seed < 8; ++seed) {
    VPTQ_ASSERT_OK_AND_ASSIGN(
        KMeansResult r,
        WeightedKMeans(x, w, {.k = 2, .iters = 100, .seed = seed, .fast_kernel = fast()}));
    expect_optimal(r, "seed " + std::to_string(seed));
  }
  // Every possible pair of seeds ends at the optimum too.
  for (int i = 0; i < 6; ++i) {
    for (int j = i + 1; j < 6; ++j) {
      VPTQ_ASSERT_OK_AND_ASSIGN(
          KMeansResult r, WeightedKMeans(x, w, {.k = 2, .iters = 100, .fast_kernel = fast(),
                                                .init_centroids = torch::stack({x[i], x[j]})}));
      expect_optimal(r, "init rows " + std::to_string(i) + "," + std::to_string(j));
    }
  }
}

TEST_P(WeightedKMeansTest, SingleClusterIsTheWeightedMean) {
  torch::manual_seed(4);
  const torch::Tensor x = torch::randn({500, 6});
  const torch::Tensor w = torch::rand({500}).pow(4);  // skewed
  VPTQ_ASSERT_OK_AND_ASSIGN(
      KMeansResult r, WeightedKMeans(x, w, {.k = 1, .iters = 5, .fast_kernel = fast()}));
  const torch::Tensor mean = (x * w.unsqueeze(1)).sum(0) / w.sum();
  EXPECT_LE((r.centroids[0] - mean).abs().max().item<double>(), kCentroidTol);
  // ... which is far from the unweighted mean here.
  EXPECT_GE((mean - x.mean(0)).abs().max().item<double>(), 0.05);
}

// Two blobs; making one point of blob A heavy pulls A's centroid onto it.
TEST_P(WeightedKMeansTest, HeavyPointsPullCentroids) {
  const Blobs b = MakeBlobs(2, 2, 200, 5);
  const torch::Tensor x = b.x.clone();
  x[0] = torch::tensor({0.5f, 0.5f});  // blob at (0, 0), off its centre
  const torch::Tensor uniform = torch::ones({400});
  torch::Tensor heavy = uniform.clone();
  heavy[0] = 10000;
  const KMeansOptions opt{.k = 2, .iters = 50, .seed = 1, .fast_kernel = fast()};
  VPTQ_ASSERT_OK_AND_ASSIGN(KMeansResult plain, WeightedKMeans(x, uniform, opt));
  VPTQ_ASSERT_OK_AND_ASSIGN(KMeansResult weighted, WeightedKMeans(x, heavy, opt));
  auto dist_to_heavy = [&](const KMeansResult& r) {
    return (r.centroids - x[0]).square().sum(1).sqrt().min().item<double>();
  };
  EXPECT_GE(dist_to_heavy(plain), 0.6);  // ~0.7: near (0, 0)
  // 10000 / 10199 of the way there: ~0.014 away.
  EXPECT_LE(dist_to_heavy(weighted), 0.05);
}

TEST_P(WeightedKMeansTest, SameSeedSameResult) {
  const Blobs b = MakeBlobs(16, 5, 60, 6);
  const torch::Tensor x = b.x + 0.5 * torch::randn_like(b.x);  // overlapping blobs
  const KMeansOptions opt{.k = 24, .iters = 20, .seed = 9, .seed_sample = 500,
                          .fast_kernel = fast()};
  VPTQ_ASSERT_OK_AND_ASSIGN(KMeansResult a, WeightedKMeans(x, b.w, opt));
  VPTQ_ASSERT_OK_AND_ASSIGN(KMeansResult again, WeightedKMeans(x, b.w, opt));
  EXPECT_TRUE(torch::equal(a.centroids, again.centroids));
  EXPECT_TRUE(torch::equal(a.assignment, again.assignment));
  EXPECT_EQ(a.inertia, again.inertia);
  torch::set_num_threads(1);
  VPTQ_ASSERT_OK_AND_ASSIGN(KMeansResult one_thread, WeightedKMeans(x, b.w, opt));
  EXPECT_TRUE(torch::equal(a.centroids, one_thread.centroids));
  KMeansOptions other = opt;
  other.seed = 10;
  VPTQ_ASSERT_OK_AND_ASSIGN(KMeansResult b2, WeightedKMeans(x, b.w, other));
  EXPECT_FALSE(torch::equal(a.centroids, b2.centroids));
}

// A centroid far from every point gets no points; the update moves it onto
// the point with the largest weighted error.
TEST_P(WeightedKMeansTest, EmptyClusterIsReseededAtLargestWeightedError) {
  const torch::Tensor x = torch::tensor({{0.f, 0.f}, {1.f, 0.f}, {0.f, 1.f}, {2.f, 2.f}, {-1.f, 0.f}});
  const torch::Tensor w = torch::tensor({1.f, 1.f, 1.f, 0.1f, 3.f});
  // Centroid 0 at the origin owns everything; errors w·‖x‖² = 0, 1, 1, 0.8, 3.
  const torch::Tensor init = torch::tensor({{0.f, 0.f}, {100.f, 100.f}, {-100.f, 50.f}});
  VPTQ_ASSERT_OK_AND_ASSIGN(
      KMeansResult r, WeightedKMeans(x, w, {.k = 3, .iters = 1, .fast_kernel = fast(),
                                            .init_centroids = init}));
  EXPECT_EQ(r.iterations, 1);
  // Largest error: row 4 (3), then rows 1 and 2 tie at 1: the lower row wins.
  EXPECT_TRUE(torch::equal(r.centroids[1], x[4])) << r.centroids;
  EXPECT_TRUE(torch::equal(r.centroids[2], x[1])) << r.centroids;
  // Later iterations leave no cluster empty.
  VPTQ_ASSERT_OK_AND_ASSIGN(
      KMeansResult done, WeightedKMeans(x, w, {.k = 3, .iters = 20, .fast_kernel = fast(),
                                               .init_centroids = init}));
  EXPECT_EQ(torch::bincount(done.assignment, {}, 3).min().item<int64_t>() >= 1, true);
}

TEST_P(WeightedKMeansTest, ZeroWeightRowsAreNeverSeeds) {
  torch::manual_seed(7);
  const torch::Tensor x = torch::randn({3000, 4});
  torch::Tensor w = torch::rand({3000}) + 0.1;
  w.slice(0, 0, 1500) = 0;
  VPTQ_ASSERT_OK_AND_ASSIGN(
      torch::Tensor seeds, WeightedKMeansPlusPlus(x, w, {.k = 50, .seed = 2, .seed_sample = 1000,
                                                         .fast_kernel = fast()}));
  ASSERT_EQ(seeds.sizes(), (std::vector<int64_t>{50, 4}));
  // Each seed is a row of x with positive weight.
  const torch::Tensor d = (seeds.unsqueeze(1) - x.unsqueeze(0)).square().sum(2);
  const torch::Tensor rows = d.argmin(1);
  EXPECT_EQ(d.amin(1).max().item<float>(), 0.0f);
  EXPECT_TRUE((rows >= 1500).all().item<bool>()) << rows;
  EXPECT_EQ(std::get<0>(torch::_unique(rows)).numel(), 50);  // distinct
}

TEST_P(WeightedKMeansTest, AllZeroWeightsStillRun) {
  torch::manual_seed(8);
  const torch::Tensor x = torch::randn({100, 3});
  VPTQ_ASSERT_OK_AND_ASSIGN(
      KMeansResult r,
      WeightedKMeans(x, torch::zeros({100}), {.k = 5, .iters = 10, .fast_kernel = fast()}));
  EXPECT_EQ(r.inertia, 0.0);
  EXPECT_TRUE(torch::isfinite(r.centroids).all().item<bool>());
}

// Integer data: both seedings sum exactly, so they pick the same rows.
TEST(WeightedKMeansPathsTest, FastAndReferenceSeedingPickTheSameRows) {
  torch::set_num_threads(2);
  torch::manual_seed(9);
  const torch::Tensor x = torch::randint(-20, 21, {6000, 8}).to(torch::kFloat);
  const torch::Tensor w = torch::randint(0, 4, {6000}).to(torch::kFloat);
  KMeansOptions opt{.k = 64, .seed = 5, .seed_sample = 5000};
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor fast, WeightedKMeansPlusPlus(x, w, opt));
  opt.fast_kernel = false;
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor ref, WeightedKMeansPlusPlus(x, w, opt));
  EXPECT_TRUE(torch::equal(fast, ref));
}

// Integer data: one Lloyd step from the same start gives the same
// assignment, so the fp64 updates agree to rounding.
TEST(WeightedKMeansPathsTest, FastAndReferenceUpdateAgree) {
  torch::set_num_threads(2);
  torch::manual_seed(10);
  const torch::Tensor x = torch::randint(-20, 21, {5000, 6}).to(torch::kFloat);
  const torch::Tensor w = torch::rand({5000});
  const torch::Tensor init = torch::randint(-20, 21, {40, 6}).to(torch::kFloat);
  KMeansOptions opt{.k = 40, .iters = 1, .init_centroids = init};
  VPTQ_ASSERT_OK_AND_ASSIGN(KMeansResult fast, WeightedKMeans(x, w, opt));
  opt.fast_kernel = false;
  VPTQ_ASSERT_OK_AND_ASSIGN(KMeansResult ref, WeightedKMeans(x, w, opt));
  EXPECT_LE((fast.centroids - ref.centroids).abs().max().item<double>(), kCentroidTol);
  EXPECT_NEAR(fast.inertia, ref.inertia, kInertiaRelTol * ref.inertia);
}

TEST(WeightedKMeansErrorsTest, BadInputsAreInvalidArgument) {
  const torch::Tensor x = torch::randn({20, 4});
  const torch::Tensor w = torch::ones({20});
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  auto run = [](const torch::Tensor& xx, const torch::Tensor& ww, KMeansOptions o) {
    return WeightedKMeans(xx, ww, o).status();
  };
  EXPECT_THAT(run(x, w, {.k = 4}), IsOk());
  EXPECT_THAT(run(x, w, {.k = 0}), StatusIs(kInvalid, HasSubstr("k = 0")));
  EXPECT_THAT(run(x, w, {.k = 21}), StatusIs(kInvalid, HasSubstr("n = 20")));
  torch::Tensor nan_x = x.clone();
  nan_x[3][1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT(run(nan_x, w, {.k = 4}), StatusIs(kInvalid, HasSubstr("x contains NaN")));
  torch::Tensor inf_x = x.clone();
  inf_x[0][0] = -std::numeric_limits<float>::infinity();
  EXPECT_THAT(run(inf_x, w, {.k = 4}), StatusIs(kInvalid, HasSubstr("x contains NaN or Inf")));
  torch::Tensor inf_w = w.clone();
  inf_w[5] = std::numeric_limits<float>::infinity();
  EXPECT_THAT(run(x, inf_w, {.k = 4}), StatusIs(kInvalid, HasSubstr("w contains NaN")));
  torch::Tensor neg_w = w.clone();
  neg_w[7] = -0.5;
  EXPECT_THAT(run(x, neg_w, {.k = 4}), StatusIs(kInvalid, HasSubstr("negative")));
  EXPECT_THAT(run(x, torch::ones({19}), {.k = 4}), StatusIs(kInvalid, HasSubstr("w must be (n,)")));
  EXPECT_THAT(run(x, torch::ones({20, 1}), {.k = 4}), StatusIs(kInvalid, HasSubstr("w must be (n,)")));
  EXPECT_THAT(run(torch::randn({20}), w, {.k = 4}), StatusIs(kInvalid, HasSubstr("(n, v)")));
  EXPECT_THAT(run(torch::empty({0, 4}), torch::ones({0}), {.k = 1}),
              StatusIs(kInvalid, HasSubstr("non-empty")));
  EXPECT_THAT(run(torch::ones({20, 4}, torch::kLong), w, {.k = 4}),
              StatusIs(kInvalid, HasSubstr("floating")));
  EXPECT_THAT(run(x, torch::ones({20}, torch::kInt), {.k = 4}),
              StatusIs(kInvalid, HasSubstr("floating")));
  EXPECT_THAT(run(x, w, {.k = 4, .iters = -1}), StatusIs(kInvalid, HasSubstr("iters")));
  EXPECT_THAT(run(x, w, {.k = 4, .tol = std::nan("")}), StatusIs(kInvalid, HasSubstr("tol")));
  EXPECT_THAT(run(x, w, {.k = 4, .seed_sample = 3}), StatusIs(kInvalid, HasSubstr("seed_sample")));
  EXPECT_THAT(run(x, w, {.k = 4, .memory_budget_bytes = 0}),
              StatusIs(kInvalid, HasSubstr("memory_budget_bytes")));
  EXPECT_THAT(run(x, w, {.k = 4, .init_centroids = torch::zeros({3, 4})}),
              StatusIs(kInvalid, HasSubstr("init_centroids")));
  EXPECT_THAT(run(x, w, {.k = 4, .init_centroids = torch::full({4, 4}, NAN)}),
              StatusIs(kInvalid, HasSubstr("init_centroids contains NaN")));
  EXPECT_THAT(WeightedKMeansPlusPlus(x, neg_w, {.k = 4}), StatusIs(kInvalid, HasSubstr("negative")));
  EXPECT_THAT(WeightedKMeansPlusPlus(x, w, {.k = 40}), StatusIs(kInvalid, HasSubstr("k = 40")));
  EXPECT_THAT(WeightedInertia(x, w, torch::zeros({3, 5})), StatusIs(kInvalid, HasSubstr("centroids")));
  EXPECT_THAT(WeightedInertia(nan_x, w, torch::zeros({3, 4})), StatusIs(kInvalid, HasSubstr("NaN")));
}

}  // namespace
}  // namespace vptq::quant
