#include "worker/quant/column_vq.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <torch/torch.h>

namespace vptq::quant::internal {
namespace {

// Plain two-stage search over the real entries of one chunk.
std::pair<int64_t, int64_t> BruteForce(const torch::Tensor& x,
                                       const torch::Tensor& c,
                                       const torch::Tensor& r) {
  const int64_t d = x.size(0);
  auto nearest = [&](const torch::Tensor& y, const torch::Tensor& book) {
    torch::Tensor dist =
        (book.narrow(1, 0, d) - y.unsqueeze(0)).pow(2).sum(1);
    return dist.argmin().item<int64_t>();
  };
  const int64_t i = nearest(x, c);
  const int64_t j = nearest(x - c[i].narrow(0, 0, d), r);
  return {i, j};
}

TEST(ColumnVqTest, TwoStageSearchMatchesBruteForceIncludingPaddedTail) {
  torch::manual_seed(1);
  const int64_t m = 18, v = 4;  // 4 full chunks and a 2-row tail
  torch::Tensor c = torch::randn({16, v});
  torch::Tensor r = torch::randn({8, v}) * 0.3;
  ColumnVectorQuantizer q(c, r, m);
  for (int trial = 0; trial < 20; ++trial) {
    torch::Tensor col = torch::randn({m});
    ColumnCodes codes = q.Quantize(col);
    ASSERT_EQ(codes.q.size(0), m);
    ASSERT_EQ(codes.idx.size(0), 5);
    for (int64_t k = 0; k < 5; ++k) {
      const int64_t len = std::min(v, m - k * v);
      auto [i, j] = BruteForce(col.narrow(0, k * v, len), c, r);
      EXPECT_EQ(codes.idx[k].item<int64_t>(), i);
      EXPECT_EQ(codes.res_idx[k].item<int64_t>(), j);
      EXPECT_TRUE(torch::equal(codes.q.narrow(0, k * v, len),
                               (c[i] + r[j]).narrow(0, 0, len)));
    }
  }
}

TEST(ColumnVqTest, VectorsAndPaddingMask) {
  torch::Tensor cols = torch::arange(10, torch::kFloat).view({2, 5});
  torch::Tensor x = ColumnsToVectors(cols, 3);  // 2 columns x 2 vectors
  EXPECT_TRUE(torch::equal(
      x, torch::tensor({{0.f, 1.f, 2.f}, {3.f, 4.f, 0.f},
                        {5.f, 6.f, 7.f}, {8.f, 9.f, 0.f}})));
  torch::Tensor mask = PaddingMask(2, 5, 3, x);
  EXPECT_TRUE(torch::equal(
      mask, torch::tensor({{1.f, 1.f, 1.f}, {1.f, 1.f, 0.f},
                           {1.f, 1.f, 1.f}, {1.f, 1.f, 0.f}})));
}

TEST(ColumnVqTest, RefitIsTheWeightedMeanAndKeepsUnusedCentroids) {
  torch::Tensor targets = torch::tensor({{1.f, 0.f}, {3.f, 2.f}, {5.f, 5.f}});
  torch::Tensor assignment = torch::tensor({0, 0, 2}, torch::kInt64);
  torch::Tensor weights = torch::tensor({{1.f, 1.f}, {3.f, 0.f}, {2.f, 2.f}});
  torch::Tensor old = torch::full({3, 2}, -7.f);
  torch::Tensor c = RefitCentroids(targets, assignment, weights, old);
  // Centroid 0: dim 0 (1·1 + 3·3)/4 = 2.5; dim 1 only the first target: 0.
  EXPECT_TRUE(torch::equal(
      c, torch::tensor({{2.5f, 0.f}, {-7.f, -7.f}, {5.f, 5.f}})));
}

}  // namespace
}  // namespace vptq::quant::internal
