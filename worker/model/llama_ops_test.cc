#include "worker/model/llama_ops.h"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/status.h"
#include "common/status_matchers.h"

namespace vptq::model {
namespace {

using ::testing::HasSubstr;
using ::vptq::testing::StatusIs;

// float32 ops against float64 loops on O(1) values.
constexpr double kFloatTolerance = 1e-5;

HfModelConfig SmallConfig(int64_t head_dim = 8) {
  HfModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.hidden_size = 4 * head_dim;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = head_dim;
  c.rope_theta = 10000.0;
  return c;
}

double MaxDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

TEST(RmsNorm, MatchesTheFormula) {
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({2, 3, 16});
  const torch::Tensor w = torch::randn({16});
  const torch::Tensor y = RmsNorm(x, w, 1e-5);
  auto xa = x.to(torch::kDouble);
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t t = 0; t < 3; ++t) {
      double ss = 0;
      for (int64_t i = 0; i < 16; ++i) ss += std::pow(xa[b][t][i].item<double>(), 2);
      const double inv = 1.0 / std::sqrt(ss / 16 + 1e-5);
      for (int64_t i = 0; i < 16; ++i) {
        EXPECT_NEAR(y[b][t][i].item<double>(),
                    w[i].item<double>() * xa[b][t][i].item<double>() * inv, kFloatTolerance);
      }
    }
  }
  // bf16 in, bf16 out; the statistics are computed in float32.
  EXPECT_EQ(RmsNorm(x.to(torch::kBFloat16), w.to(torch::kBFloat16), 1e-5).scalar_type(),
            torch::kBFloat16);
}

TEST(RotaryEmbedding, RotatesHalfSplitPairsByPositionTimesFrequency) {
  const HfModelConfig c = SmallConfig();
  VPTQ_ASSERT_OK_AND_ASSIGN(RotaryEmbedding rope, RotaryEmbedding::Create(c, 32));
  torch::manual_seed(4);
  const torch::Tensor x = torch::randn({2, 3, 32, 8});
  const torch::Tensor y = rope.Apply(x);
  const auto xa = x.accessor<float, 4>();
  const auto ya = y.accessor<float, 4>();
  for (int64_t pos : {0, 1, 7, 31}) {
    for (int64_t i = 0; i < 4; ++i) {
      const double angle = pos * std::pow(10000.0, -2.0 * i / 8);
      const double a = xa[1][2][pos][i], b = xa[1][2][pos][i + 4];
      EXPECT_NEAR(ya[1][2][pos][i], a * std::cos(angle) - b * std::sin(angle), kFloatTolerance);
      EXPECT_NEAR(ya[1][2][pos][i + 4], b * std::cos(angle) + a * std::sin(angle),
                  kFloatTolerance);
    }
  }
  EXPECT_TRUE(torch::allclose(y.select(2, 0), x.select(2, 0)));  // position 0: identity
  // A rotation keeps norms.
  EXPECT_LT(MaxDiff(y.norm(2, -1), x.norm(2, -1)), 1e-4);
}

TEST(RotaryEmbedding, ScalingVariants) {
  HfModelConfig c = SmallConfig(128);
  c.rope_theta = 500000.0;
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor plain, RotaryEmbedding::InverseFrequencies(c));
  c.rope_scaling.type = "linear";
  c.rope_scaling.factor = 4.0;
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor linear, RotaryEmbedding::InverseFrequencies(c));
  EXPECT_LT(MaxDiff(linear, plain / 4.0), 1e-15);

  c.rope_scaling = {"llama3", 8.0, 1.0, 4.0, 8192};
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor llama3, RotaryEmbedding::InverseFrequencies(c));
  const auto p = plain.accessor<double, 1>();
  const auto s = llama3.accessor<double, 1>();
  int kept = 0, scaled = 0, blended = 0;
  for (int64_t i = 0; i < 64; ++i) {
    const double wavelen = 2 * M_PI / p[i];
    if (wavelen < 8192.0 / 4.0) {
      EXPECT_DOUBLE_EQ(s[i], p[i]);  // high frequencies untouched
      ++kept;
    } else if (wavelen > 8192.0) {
      EXPECT_DOUBLE_EQ(s[i], p[i] / 8.0);  // low frequencies scaled by factor
      ++scaled;
    } else {
      EXPECT_GT(s[i], p[i] / 8.0);  // in between, interpolated
      EXPECT_LT(s[i], p[i]);
      ++blended;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(scaled, 0);
  EXPECT_GT(blended, 0);

  c.rope_scaling.type = "yarn";
  EXPECT_THAT(RotaryEmbedding::InverseFrequencies(c),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("yarn")));
  EXPECT_THAT(RotaryEmbedding::Create(c, 8), StatusIs(absl::StatusCode::kFailedPrecondition));
}

// Attention from the definition: float64 loops, one query at a time.
torch::Tensor AttentionByLoops(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, std::optional<int64_t> window) {
  const int64_t B = q.size(0), H = q.size(1), L = q.size(2), D = q.size(3);
  const int64_t group = H / k.size(1);
  const torch::Tensor qd = q.to(torch::kDouble), kd = k.to(torch::kDouble), vd = v.to(torch::kDouble);
  torch::Tensor out = torch::zeros({B, H, L, D}, torch::kDouble);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t i = 0; i < L; ++i) {
        std::vector<double> w;
        std::vector<int64_t> js;
        for (int64_t j = 0; j <= i; ++j) {
          if (window && i - j >= *window) continue;
          w.push_back(torch::dot(qd[b][h][i], kd[b][h / group][j]).item<double>() / std::sqrt(D));
          js.push_back(j);
        }
        double mx = -1e300, sum = 0;
        for (double x : w) mx = std::max(mx, x);
        for (double& x : w) sum += (x = std::exp(x - mx));
        for (size_t n = 0; n < js.size(); ++n) out[b][h][i] += (w[n] / sum) * vd[b][h / group][js[n]];
      }
    }
  }
  return out;
}

TEST(CausalAttention, ReferenceMatchesTheDefinition) {
  torch::manual_seed(5);
  const torch::Tensor q = torch::randn({2, 6, 9, 4});
  const torch::Tensor k = torch::randn({2, 3, 9, 4});
  const torch::Tensor v = torch::randn({2, 3, 9, 4});
  for (std::optional<int64_t> window : {std::optional<int64_t>(), std::optional<int64_t>(3)}) {
    EXPECT_LT(MaxDiff(CausalAttentionReference(q, k, v, window), AttentionByLoops(q, k, v, window)),
              kFloatTolerance);
  }
}

TEST(CausalAttention, BlockedPathMatchesReference) {
  torch::manual_seed(6);
  const torch::Tensor q = torch::randn({3, 8, 37, 16});
  const torch::Tensor k = torch::randn({3, 2, 37, 16});
  const torch::Tensor v = torch::randn({3, 2, 37, 16});
  for (std::optional<int64_t> window : {std::optional<int64_t>(), std::optional<int64_t>(5),
                                        std::optional<int64_t>(100)}) {
    const torch::Tensor ref = CausalAttentionReference(q, k, v, window);
    // Budgets from one query row per block up to everything at once.
    for (int64_t budget : {int64_t{1}, int64_t{3 * 8 * 37 * 7}, int64_t{1} << 30}) {
      EXPECT_LT(MaxDiff(CausalAttention(q, k, v, window, budget), ref), kFloatTolerance)
          << "budget " << budget;
    }
  }
}

TEST(CausalAttention, FutureTokensDoNotLeak) {
  torch::manual_seed(7);
  torch::Tensor q = torch::randn({1, 4, 12, 8});
  torch::Tensor k = torch::randn({1, 2, 12, 8});
  torch::Tensor v = torch::randn({1, 2, 12, 8});
  const torch::Tensor before = CausalAttention(q, k, v, std::nullopt);
  k.slice(2, 6).normal_();
  v.slice(2, 6).normal_();
  q.slice(2, 6).normal_();
  const torch::Tensor after = CausalAttention(q, k, v, std::nullopt);
  EXPECT_LT(MaxDiff(before.slice(2, 0, 6), after.slice(2, 0, 6)), 1e-7);
  EXPECT_FALSE(torch::allclose(before.slice(2, 6), after.slice(2, 6)));
}

TEST(SwiGlu, IsSiluTimesUp) {
  const torch::Tensor g = torch::tensor({-2.0f, 0.0f, 1.5f});
  const torch::Tensor u = torch::tensor({3.0f, 4.0f, -1.0f});
  const torch::Tensor y = SwiGlu(g, u);
  for (int i = 0; i < 3; ++i) {
    const double gi = g[i].item<double>();
    EXPECT_NEAR(y[i].item<double>(), gi / (1 + std::exp(-gi)) * u[i].item<double>(), 1e-6);
  }
}

}  // namespace
}  // namespace vptq::model
