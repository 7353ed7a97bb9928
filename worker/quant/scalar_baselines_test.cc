#include "worker/quant/scalar_baselines.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include <torch/torch.h>

#include "common/status_matchers.h"
#include "worker/quant/proxy_loss.h"
#include "worker/quant/synthetic.h"

namespace vptq::quant {
namespace {

using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

class ScalarBaselinesTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::set_num_threads(2); }
};

TEST_F(ScalarBaselinesTest, RtnReproducesGridValuesAndBoundsError) {
  // Row 0 lies on a 2-bit grid {0, 1, 2, 3}: reproduced exactly. Row 1 is
  // constant: reproduced exactly. Row 2 is arbitrary: error <= scale / 2.
  torch::Tensor w = torch::tensor({{0.f, 1.f, 2.f, 3.f, 3.f, 0.f, 1.f, 2.f},
                                   {-.5f, -.5f, -.5f, -.5f, -.5f, -.5f, -.5f, -.5f},
                                   {.1f, -.7f, .35f, .9f, -.2f, .05f, .6f, -.4f}});
  auto r = QuantizeRtn(w, torch::eye(8), {.bits = 2, .group_size = 8});
  ASSERT_THAT(r, IsOk());
  EXPECT_TRUE(torch::equal(r->weight[0], w[0]));
  EXPECT_TRUE(torch::equal(r->weight[1], w[1]));
  const double scale = (0.9 + 0.7) / 3;
  constexpr double kSlack = 1e-3;  // fp16 rounding of scale
  EXPECT_LE((r->weight[2] - w[2]).abs().max().item<double>(),
            scale / 2 + kSlack);
  EXPECT_GT(r->stats.proxy_loss, 0);
}

TEST_F(ScalarBaselinesTest, BitsAreCountedHonestly) {
  EXPECT_DOUBLE_EQ(ScalarBitsPerWeight(4096, 4096, 3, 128, false), 3.25);
  EXPECT_DOUBLE_EQ(ScalarBitsPerWeight(4096, 4096, 2, 128, true),
                   2.25 + 32.0 / 4096);
  // A partial last group still stores its scale and zero.
  EXPECT_DOUBLE_EQ(ScalarBitsPerWeight(10, 200, 4, 128, false),
                   4 + 2 * 16 * 2 / 200.0);
  torch::Tensor w = torch::randn({16, 256});
  auto rtn = QuantizeRtn(w, torch::eye(256), {.bits = 3});
  auto gptq = QuantizeGptq(w, torch::eye(256), {.bits = 3});
  ASSERT_THAT(rtn, IsOk());
  ASSERT_THAT(gptq, IsOk());
  EXPECT_DOUBLE_EQ(rtn->stats.bits_per_weight, 3.25);
  EXPECT_DOUBLE_EQ(gptq->stats.bits_per_weight, 3.25 + 32.0 / 16);
}

TEST_F(ScalarBaselinesTest, GptqWithIdentityHessianIsRtn) {
  torch::manual_seed(1);
  torch::Tensor w = torch::randn({24, 300});
  for (bool act_order : {false, true}) {
    auto rtn = QuantizeRtn(w, torch::eye(300), {.bits = 3});
    auto gptq = QuantizeGptq(w, torch::eye(300),
                             {.bits = 3, .act_order = act_order});
    ASSERT_THAT(rtn, IsOk());
    ASSERT_THAT(gptq, IsOk());
    EXPECT_TRUE(torch::equal(rtn->weight, gptq->weight));
  }
}

TEST_F(ScalarBaselinesTest, GptqBeatsRtnAtThreeBitsOnCorrelatedHessian) {
  auto s = MakeSyntheticLinear({.out_features = 64, .in_features = 256,
                                .seed = 11});
  ASSERT_THAT(s, IsOk());
  auto rtn = QuantizeRtn(s->weight, s->hessian, {.bits = 3});
  auto gptq = QuantizeGptq(s->weight, s->hessian, {.bits = 3});
  ASSERT_THAT(rtn, IsOk());
  ASSERT_THAT(gptq, IsOk());
  constexpr double kMaxRatio = 0.8;
  EXPECT_LT(gptq->stats.proxy_loss, kMaxRatio * rtn->stats.proxy_loss)
      << gptq->stats.proxy_loss << " vs " << rtn->stats.proxy_loss;
  // The reported loss is the shared definition.
  auto direct = RelativeProxyLoss(s->weight, gptq->weight, s->hessian);
  ASSERT_THAT(direct, IsOk());
  EXPECT_DOUBLE_EQ(*direct, gptq->stats.proxy_loss);
  // More bits, less loss.
  auto gptq4 = QuantizeGptq(s->weight, s->hessian, {.bits = 4});
  ASSERT_THAT(gptq4, IsOk());
  EXPECT_LT(gptq4->stats.proxy_loss, gptq->stats.proxy_loss);
}

TEST_F(ScalarBaselinesTest, BadOptions) {
  torch::Tensor w = torch::zeros({4, 8});
  torch::Tensor h = torch::eye(8);
  EXPECT_THAT(QuantizeRtn(w, h, {.bits = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bits")));
  EXPECT_THAT(QuantizeGptq(w, h, {.bits = 9}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bits")));
  EXPECT_THAT(QuantizeRtn(w, h, {.group_size = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("group_size")));
  EXPECT_THAT(QuantizeGptq(w, h, {.group_size = 128, .block_size = 100}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("block_size")));
  EXPECT_THAT(QuantizeGptq(w, torch::eye(7), {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("Hessian")));
  torch::Tensor bad = w.clone();
  bad[0][0] = INFINITY;
  EXPECT_THAT(QuantizeRtn(bad, h, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NaN")));
  torch::Tensor not_pd = torch::eye(8);
  not_pd[2][2] = -1000;
  EXPECT_THAT(QuantizeGptq(w, not_pd, {}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace vptq::quant
