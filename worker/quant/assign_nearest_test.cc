// The fused nearest-centroid kernel (every instruction set this machine
// supports) against the LibTorch reference.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "worker/quant/assign_nearest_cpu.h"
#include "worker/quant/kmeans.h"

namespace vptq::quant {
namespace {

// Float data: fast and reference scores round differently, so a choice may
// differ only where the two best distances are this close (relative to the
// magnitudes summed).
constexpr double kScoreRelTol = 1e-5;

class AssignNearestTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::set_num_threads(2); }
};

std::vector<CpuIsa> SupportedIsas() {
  std::vector<CpuIsa> isas;
  for (CpuIsa isa : {CpuIsa::kScalar, CpuIsa::kAvx2, CpuIsa::kAvx512}) {
    if (CpuIsaSupported(isa)) isas.push_back(isa);
  }
  return isas;
}

torch::Tensor RunKernel(const torch::Tensor& x, const torch::Tensor& c, CpuIsa isa) {
  const CentroidTable table(c.data_ptr<float>(), c.size(0), static_cast<int>(c.size(1)));
  torch::Tensor out = torch::full({x.size(0)}, -1, torch::kLong);
  AssignNearestCpuRows(table, x.data_ptr<float>(), 0, x.size(0), out.data_ptr<int64_t>(),
                       nullptr, isa);
  return out;
}

// Small integers: every score is exact in float32 whatever the summation
// order, so fast and reference must agree exactly, ties (many here) included.
TEST_F(AssignNearestTest, IntegerDataMatchesReferenceExactlyIncludingTies) {
  torch::manual_seed(11);
  for (int v : {1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16}) {
    for (int64_t k : {1, 7, 37, 129}) {
      const int64_t n = 1000 + 13;  // not a multiple of any tile
      const torch::Tensor x = torch::randint(-4, 5, {n, v}).to(torch::kFloat);
      const torch::Tensor c = torch::randint(-4, 5, {k, v}).to(torch::kFloat);
      const torch::Tensor ref = AssignNearestRef(x, c);
      ASSERT_TRUE(ref.defined());
      for (CpuIsa isa : SupportedIsas()) {
        EXPECT_TRUE(torch::equal(RunKernel(x, c, isa), ref))
            << "isa=" << CpuIsaName(isa) << " v=" << v << " k=" << k;
      }
      EXPECT_TRUE(torch::equal(AssignNearest(x, c), ref)) << "v=" << v << " k=" << k;
    }
  }
}

TEST_F(AssignNearestTest, DuplicateCentroidsPickTheLowestIndex) {
  const torch::Tensor c = torch::tensor({{5.f, 5.f}, {1.f, 1.f}, {1.f, 1.f}, {1.f, 1.f}});
  const torch::Tensor x = torch::tensor({1.f, 1.f}).repeat({40, 1});
  for (CpuIsa isa : SupportedIsas()) {
    EXPECT_TRUE(torch::equal(RunKernel(x, c, isa), torch::ones({40}, torch::kLong)))
        << CpuIsaName(isa);
  }
  EXPECT_TRUE(torch::equal(AssignNearestRef(x, c), torch::ones({40}, torch::kLong)));
}

// Gaussian data: wherever the choices differ, the two centroids must be
// equally near up to kScoreRelTol (a rounding tie, not a wrong answer).
TEST_F(AssignNearestTest, FloatDataAgreesUpToRoundingTies) {
  torch::manual_seed(12);
  for (int v : {2, 4, 6, 8, 12, 16}) {
    for (int64_t k : {33, 255, 1023}) {
      const int64_t n = 2000 + 7;
      const torch::Tensor x = torch::randn({n, v});
      const torch::Tensor c = torch::randn({k, v});
      const torch::Tensor ref = AssignNearestRef(x, c);
      // Exact squared distances in fp64.
      const torch::Tensor d = torch::cdist(x.to(torch::kDouble), c.to(torch::kDouble)).square();
      const torch::Tensor scale = x.to(torch::kDouble).square().sum(1) +
                                  c.to(torch::kDouble).square().sum(1).max();
      for (CpuIsa isa : SupportedIsas()) {
        const torch::Tensor fast = RunKernel(x, c, isa);
        const torch::Tensor gap = (d.gather(1, fast.unsqueeze(1)) - d.gather(1, ref.unsqueeze(1)))
                                      .squeeze(1)
                                      .abs();
        EXPECT_LE((gap / scale).max().item<double>(), kScoreRelTol)
            << "isa=" << CpuIsaName(isa) << " v=" << v << " k=" << k;
        // Rounding ties are rare: nearly every choice is identical.
        EXPECT_GE(fast.eq(ref).to(torch::kDouble).mean().item<double>(), 0.999)
            << "isa=" << CpuIsaName(isa) << " v=" << v << " k=" << k;
      }
    }
  }
}

TEST_F(AssignNearestTest, ScoreIsNormMinusTwiceDot) {
  torch::manual_seed(13);
  const torch::Tensor x = torch::randint(-4, 5, {50, 6}).to(torch::kFloat);
  const torch::Tensor c = torch::randint(-4, 5, {9, 6}).to(torch::kFloat);
  const CentroidTable table(c.data_ptr<float>(), 9, 6);
  const torch::Tensor expected = (c.square().sum(1).unsqueeze(0) - 2 * x.mm(c.t())).amin(1);
  for (CpuIsa isa : SupportedIsas()) {
    std::vector<int64_t> index(50);
    std::vector<float> score(50);
    AssignNearestCpuRows(table, x.data_ptr<float>(), 0, 50, index.data(), score.data(), isa);
    EXPECT_TRUE(torch::equal(torch::tensor(score), expected)) << CpuIsaName(isa);
  }
}

TEST_F(AssignNearestTest, RowRangeWritesOnlyThatRange) {
  torch::manual_seed(14);
  const torch::Tensor x = torch::randn({100, 8});
  const torch::Tensor c = torch::randn({20, 8});
  const CentroidTable table(c.data_ptr<float>(), 20, 8);
  const torch::Tensor ref = AssignNearestRef(x, c);
  for (CpuIsa isa : SupportedIsas()) {
    std::vector<int64_t> index(100, -7);
    AssignNearestCpuRows(table, x.data_ptr<float>(), 30, 61, index.data(), nullptr, isa);
    for (int64_t i = 0; i < 100; ++i) {
      if (i >= 30 && i < 61) {
        EXPECT_EQ(index[i], ref[i].item<int64_t>()) << CpuIsaName(isa) << " row " << i;
      } else {
        EXPECT_EQ(index[i], -7) << CpuIsaName(isa) << " row " << i;
      }
    }
  }
}

TEST_F(AssignNearestTest, LongVectorsAndOtherDtypesUseTheReference) {
  torch::manual_seed(15);
  const torch::Tensor x = torch::randint(-4, 5, {300, 20}).to(torch::kFloat);
  const torch::Tensor c = torch::randint(-4, 5, {17, 20}).to(torch::kFloat);
  EXPECT_TRUE(torch::equal(AssignNearest(x, c), AssignNearestRef(x, c)));
  EXPECT_TRUE(torch::equal(AssignNearest(x.to(torch::kDouble), c.to(torch::kDouble)),
                           AssignNearestRef(x, c)));
}

TEST_F(AssignNearestTest, TinyMemoryBudgetStillTilesCorrectly) {
  torch::manual_seed(16);
  const torch::Tensor x = torch::randint(-4, 5, {257, 4}).to(torch::kFloat);
  const torch::Tensor c = torch::randint(-4, 5, {31, 4}).to(torch::kFloat);
  // 1 byte: one row per tile.
  EXPECT_TRUE(torch::equal(AssignNearestRef(x, c, /*memory_budget_bytes=*/1), AssignNearestRef(x, c)));
}

TEST_F(AssignNearestTest, ShapeMismatchGivesUndefinedTensor) {
  const torch::Tensor x = torch::zeros({10, 4});
  EXPECT_FALSE(AssignNearest(x, torch::zeros({3, 5})).defined());
  EXPECT_FALSE(AssignNearestRef(x, torch::zeros({3, 5})).defined());
  EXPECT_FALSE(AssignNearest(torch::zeros({10}), torch::zeros({3, 1})).defined());
  EXPECT_FALSE(AssignNearest(x, torch::zeros({0, 4})).defined());
}

}  // namespace
}  // namespace vptq::quant
