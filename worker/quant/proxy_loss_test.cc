#include "worker/quant/proxy_loss.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "common/status_matchers.h"

namespace vptq::quant {
namespace {

using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

TEST(ProxyLossTest, MatchesTheDefinitionByHand) {
  // ΔW = [0, 1]: ΔW H ΔWᵀ = H_11 = 3; W H Wᵀ = 2 + 2·(1·2·1) + 4·3 = 18.
  torch::Tensor w = torch::tensor({{1.f, 2.f}});
  torch::Tensor w_hat = torch::tensor({{1.f, 1.f}});
  torch::Tensor h = torch::tensor({{2.0, 1.0}, {1.0, 3.0}}, torch::kFloat64);
  auto loss = RelativeProxyLoss(w, w_hat, h);
  ASSERT_THAT(loss, IsOk());
  EXPECT_DOUBLE_EQ(*loss, 3.0 / 18.0);
  auto p = ProxyLoss::Create(w, h);
  ASSERT_THAT(p, IsOk());
  EXPECT_DOUBLE_EQ(p->reference(), 18.0);
  EXPECT_DOUBLE_EQ(p->Relative(w), 0.0);
}

TEST(ProxyLossTest, ShapeMismatchIsInvalidArgument) {
  torch::Tensor w = torch::zeros({3, 4});
  EXPECT_THAT(RelativeProxyLoss(w, w, torch::eye(3)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(RelativeProxyLoss(w, torch::zeros({3, 5}), torch::eye(4)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace vptq::quant
