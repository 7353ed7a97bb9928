#include "worker/quant/synthetic.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "common/status_matchers.h"

namespace vptq::quant {
namespace {

using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

TEST(SyntheticTest, DeterministicForASeed) {
  SyntheticOptions o{.out_features = 48, .in_features = 64, .seed = 9};
  auto a = MakeSyntheticLinear(o);
  auto b = MakeSyntheticLinear(o);
  o.seed = 10;
  auto c = MakeSyntheticLinear(o);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  ASSERT_THAT(c, IsOk());
  EXPECT_TRUE(torch::equal(a->weight, b->weight));
  EXPECT_TRUE(torch::equal(a->hessian, b->hessian));
  EXPECT_EQ(a->outlier_channels, b->outlier_channels);
  EXPECT_FALSE(torch::equal(a->weight, c->weight));
}

TEST(SyntheticTest, RealisticStatistics) {
  auto s = MakeSyntheticLinear({.out_features = 256, .in_features = 512,
                                .seed = 1});
  ASSERT_THAT(s, IsOk());
  const torch::Tensor& h = s->hessian;
  // Finalized: symmetric, mean diagonal 1 + λ, positive definite.
  EXPECT_TRUE(torch::allclose(h, h.t()));
  EXPECT_NEAR(h.diagonal().mean().item<double>(), 1.01, 1e-9);
  EXPECT_GT(torch::linalg_eigvalsh(h).min().item<double>(), 0.0);
  // One outlier channel per 512 inputs, 10-100x the magnitude, so its H_jj
  // is far above the median.
  ASSERT_EQ(s->outlier_channels.size(), 1u);
  const double median = h.diagonal().median().item<double>();
  EXPECT_GT(h[s->outlier_channels[0]][s->outlier_channels[0]].item<double>(),
            10 * median);
  // Correlated features: strong off-diagonal mass.
  torch::Tensor d = h.diagonal().sqrt();
  torch::Tensor corr = h / torch::outer(d, d);
  corr.diagonal().zero_();
  EXPECT_GT(corr.abs().mean().item<double>(), 0.05);
  // Heavy tails: excess kurtosis of the row/column-normalised weights.
  torch::Tensor w = s->weight.to(torch::kFloat64);
  torch::Tensor z = w / w.std();
  const double kurtosis = (z.pow(4)).mean().item<double>() /
                          std::pow((z.pow(2)).mean().item<double>(), 2);
  EXPECT_GT(kurtosis, 4.0);
}

TEST(SyntheticTest, SampledHessianApproachesAnalytic) {
  SyntheticOptions o{.out_features = 4, .in_features = 32, .seed = 2};
  auto analytic = MakeSyntheticLinear(o);
  o.tokens = 40000;
  auto sampled = MakeSyntheticLinear(o);
  ASSERT_THAT(analytic, IsOk());
  ASSERT_THAT(sampled, IsOk());
  EXPECT_TRUE(torch::equal(analytic->weight, sampled->weight));
  const double rel = (sampled->hessian - analytic->hessian).norm().item<double>() /
                     analytic->hessian.norm().item<double>();
  constexpr double kSamplingTol = 0.05;  // ~sqrt(N / tokens) scale
  EXPECT_LT(rel, kSamplingTol);
}

TEST(SyntheticTest, BadOptions) {
  EXPECT_THAT(MakeSyntheticLinear({.out_features = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MakeSyntheticLinear({.student_t_dof = 2}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MakeSyntheticLinear({.in_features = 4, .outlier_channels = 5}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace vptq::quant
