#include "worker/quant/second_order.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "common/status_matchers.h"
#include "worker/quant/proxy_loss.h"
#include "worker/quant/synthetic.h"

namespace vptq::quant {
namespace {

using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

class SecondOrderTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::set_num_threads(2); }
};

// Uniform scalar grid with step `step`: a simple column quantizer.
ColumnQuantizeFn RoundToGrid(double step) {
  return [step](int64_t col, int64_t, const torch::Tensor& work) {
    return torch::round(work[col] / step) * step;
  };
}

SyntheticLinear Correlated(int64_t m, int64_t n, uint64_t seed) {
  auto s = MakeSyntheticLinear({.out_features = m, .in_features = n,
                                .seed = seed, .rank = 8,
                                .low_rank_share = 0.9});
  EXPECT_THAT(s, IsOk());
  return *s;
}

TEST_F(SecondOrderTest, InverseCholeskyFactorsTheInverse) {
  SyntheticLinear s = Correlated(8, 40, 1);
  auto u = UpperCholeskyOfInverse(s.hessian, {});
  ASSERT_THAT(u, IsOk());
  EXPECT_EQ(u->extra_damping, 0.0);
  EXPECT_EQ(u->damping_steps, 0);
  EXPECT_TRUE(torch::equal(u->u, u->u.triu()));
  torch::Tensor inv = torch::inverse(s.hessian);
  constexpr double kTol = 1e-8;
  EXPECT_TRUE(torch::allclose(u->u.t().mm(u->u), inv, kTol, kTol));
}

TEST_F(SecondOrderTest, NotPositiveDefiniteGetsMoreDampingThenFails) {
  // Slightly indefinite: rescued by one of the extra damping steps.
  torch::Tensor h = torch::eye(16, torch::kFloat64);
  h[5][5] = -0.05;
  auto u = UpperCholeskyOfInverse(h, {});
  ASSERT_THAT(u, IsOk());
  EXPECT_GT(u->extra_damping, 0.05);
  EXPECT_GE(u->damping_steps, 1);

  // Far from definite: FAILED_PRECONDITION after the last step.
  h[5][5] = -500.0;
  EXPECT_THAT(UpperCholeskyOfInverse(h, {}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("not positive definite")));
  EXPECT_THAT(UpperCholeskyOfInverse(-torch::eye(4), {}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  torch::Tensor nan = torch::eye(4);
  nan[0][1] = std::nan("");
  EXPECT_THAT(UpperCholeskyOfInverse(nan, {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(UpperCholeskyOfInverse(torch::ones({3, 4}), {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SecondOrderTest, IdentityHessianIsPlainRounding) {
  torch::manual_seed(2);
  torch::Tensor w = torch::randn({12, 50});
  auto u = UpperCholeskyOfInverse(torch::eye(50), {});
  ASSERT_THAT(u, IsOk());
  auto r = RunSecondOrderPass(w, u->u, RoundToGrid(0.5), {.block_size = 16});
  ASSERT_THAT(r, IsOk());
  EXPECT_TRUE(torch::equal(r->quantized, torch::round(w / 0.5) * 0.5));
  EXPECT_TRUE(torch::equal(r->updated, w));
}

TEST_F(SecondOrderTest, FeedbackLowersProxyLossOnCorrelatedHessian) {
  SyntheticLinear s = Correlated(32, 96, 3);
  auto u = UpperCholeskyOfInverse(s.hessian, {});
  ASSERT_THAT(u, IsOk());
  const double step = 0.02;  // ~1.5 weight std: a coarse grid
  auto with = RunSecondOrderPass(s.weight, u->u, RoundToGrid(step), {});
  auto without = RunSecondOrderPass(s.weight, u->u, RoundToGrid(step),
                                    {.error_feedback = false});
  ASSERT_THAT(with, IsOk());
  ASSERT_THAT(without, IsOk());
  auto loss_with = RelativeProxyLoss(s.weight, with->quantized, s.hessian);
  auto loss_without =
      RelativeProxyLoss(s.weight, without->quantized, s.hessian);
  ASSERT_THAT(loss_with, IsOk());
  ASSERT_THAT(loss_without, IsOk());
  // GPTQ-style feedback should remove a large part of the loss here.
  constexpr double kMaxRatio = 0.7;
  EXPECT_LT(*loss_with, kMaxRatio * *loss_without)
      << *loss_with << " vs " << *loss_without;
}

TEST_F(SecondOrderTest, LazyBlocksMatchPlainReference) {
  SyntheticLinear s = Correlated(16, 70, 4);
  auto u = UpperCholeskyOfInverse(s.hessian, {});
  ASSERT_THAT(u, IsOk());
  // A continuous "quantizer": both passes must agree up to float32 rounding
  // of the differently ordered updates.
  ColumnQuantizeFn shrink = [](int64_t col, int64_t, const torch::Tensor& w) {
    return w[col] * 0.5;
  };
  auto ref = RunSecondOrderPassRef(s.weight, u->u, shrink);
  ASSERT_THAT(ref, IsOk());
  constexpr double kTol = 1e-5;
  for (int64_t block : {1, 7, 32, 128}) {
    auto fast = RunSecondOrderPass(s.weight, u->u, shrink,
                                   {.block_size = block});
    ASSERT_THAT(fast, IsOk());
    EXPECT_TRUE(torch::allclose(fast->quantized, ref->quantized, kTol, kTol))
        << "block " << block;
    EXPECT_TRUE(torch::allclose(fast->updated, ref->updated, kTol, kTol));
  }
  // With real rounding, ties may flip on a few entries only.
  auto ref_round = RunSecondOrderPassRef(s.weight, u->u, RoundToGrid(0.01));
  auto fast_round = RunSecondOrderPass(s.weight, u->u, RoundToGrid(0.01), {});
  ASSERT_THAT(ref_round, IsOk());
  ASSERT_THAT(fast_round, IsOk());
  const double same =
      (ref_round->quantized == fast_round->quantized).to(torch::kFloat64)
          .mean().item<double>();
  constexpr double kMinSame = 0.99;
  EXPECT_GE(same, kMinSame);
}

TEST_F(SecondOrderTest, BadArguments) {
  torch::Tensor w = torch::zeros({4, 8});
  EXPECT_THAT(RunSecondOrderPass(w, torch::eye(7), RoundToGrid(1), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("U")));
  EXPECT_THAT(RunSecondOrderPass(w, torch::eye(8), RoundToGrid(1),
                                 {.block_size = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("block_size")));
  EXPECT_THAT(RunSecondOrderPass(torch::zeros({8}), torch::eye(8),
                                 RoundToGrid(1), {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace vptq::quant
