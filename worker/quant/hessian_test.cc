#include "worker/quant/hessian.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <torch/torch.h>

#include "common/status_matchers.h"

namespace vptq::quant {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

std::vector<torch::Tensor> RandomBatches(int count, int64_t tokens, int64_t n,
                                         uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<torch::Tensor> out;
  for (int i = 0; i < count; ++i) {
    // Mixed magnitudes so that fp64 sums really round.
    out.push_back(torch::randn({tokens, n}) *
                  torch::exp(torch::randn({1, n}) * 2));
  }
  return out;
}

HessianAccumulator Accumulate(const std::vector<torch::Tensor>& batches,
                              const std::vector<int>& order, int64_t n) {
  HessianAccumulator acc(n);
  for (int i : order) EXPECT_THAT(acc.Add(batches[i]), IsOk());
  return acc;
}

bool BitEqual(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sizes() == b.sizes() && torch::equal(a, b);
}

TEST(HessianAccumulatorTest, ShardMergeEqualsOnePassBitForBit) {
  const int64_t n = 24;
  auto batches = RandomBatches(8, 37, n, 1);
  HessianAccumulator one = Accumulate(batches, {0, 1, 2, 3, 4, 5, 6, 7}, n);
  HessianAccumulator reversed =
      Accumulate(batches, {7, 6, 5, 4, 3, 2, 1, 0}, n);
  HessianAccumulator a = Accumulate(batches, {0, 1, 2}, n);
  HessianAccumulator b = Accumulate(batches, {3, 4}, n);
  HessianAccumulator c = Accumulate(batches, {5, 6, 7}, n);

  HessianAccumulator abc(n), cab(n), b_ca(n), ca(n);
  for (auto* s : {&a, &b, &c}) ASSERT_THAT(abc.Merge(*s), IsOk());
  for (auto* s : {&c, &a, &b}) ASSERT_THAT(cab.Merge(*s), IsOk());
  ASSERT_THAT(ca.Merge(c), IsOk());
  ASSERT_THAT(ca.Merge(a), IsOk());
  ASSERT_THAT(b_ca.Merge(b), IsOk());
  ASSERT_THAT(b_ca.Merge(ca), IsOk());

  const torch::Tensor s = one.Sum();
  EXPECT_TRUE(BitEqual(s, reversed.Sum()));
  EXPECT_TRUE(BitEqual(s, abc.Sum()));
  EXPECT_TRUE(BitEqual(s, cab.Sum()));
  EXPECT_TRUE(BitEqual(s, b_ca.Sum()));
  EXPECT_EQ(abc.tokens(), 8 * 37);
  EXPECT_EQ(b_ca.tokens(), 8 * 37);

  // Finalized Hessians are bit-identical too.
  auto h1 = one.Finalize({});
  auto h2 = b_ca.Finalize({});
  ASSERT_THAT(h1, IsOk());
  ASSERT_THAT(h2, IsOk());
  EXPECT_TRUE(BitEqual(h1->h, h2->h));

  // And the sum is right: compare with one fp64 GEMM over all tokens.
  torch::Tensor all = torch::cat(batches).to(torch::kFloat64);
  constexpr double kRelTol = 1e-12;
  EXPECT_LT((s - all.t().mm(all)).abs().max().item<double>(),
            kRelTol * s.abs().max().item<double>());
  EXPECT_TRUE(BitEqual(s, s.t()));  // exactly symmetric
}

TEST(HessianAccumulatorTest, IntegerInputsSumExactly) {
  const int64_t n = 8;
  torch::manual_seed(3);
  HessianAccumulator acc(n);
  torch::Tensor all = torch::randint(-50, 50, {300, n}, torch::kInt64);
  for (int i = 0; i < 3; ++i) {
    ASSERT_THAT(acc.Add(all.narrow(0, i * 100, 100).to(torch::kFloat16)),
                IsOk());
  }
  torch::Tensor exact = all.t().mm(all).to(torch::kFloat64);
  EXPECT_TRUE(BitEqual(acc.Sum(), exact));
  EXPECT_EQ(acc.tokens(), 300);
}

TEST(HessianAccumulatorTest, AnyFloatDtypeAndLeadingDims) {
  const int64_t n = 6;
  torch::manual_seed(4);
  torch::Tensor x = torch::randn({2, 5, n}).to(torch::kBFloat16);
  HessianAccumulator a(n), b(n);
  ASSERT_THAT(a.Add(x), IsOk());
  ASSERT_THAT(b.Add(x.to(torch::kFloat32).reshape({10, n})), IsOk());
  EXPECT_TRUE(BitEqual(a.Sum(), b.Sum()));
  EXPECT_EQ(a.tokens(), 10);
}

TEST(HessianAccumulatorTest, RejectsBadInputs) {
  HessianAccumulator acc(4);
  EXPECT_THAT(acc.Add(torch::zeros({3, 5})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("(..., 4)")));
  EXPECT_THAT(acc.Add(torch::zeros({3, 4}, torch::kInt32)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  torch::Tensor nan = torch::zeros({3, 4});
  nan[1][2] = std::nan("");
  EXPECT_THAT(acc.Add(nan), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("NaN")));
  HessianAccumulator other(5);
  EXPECT_THAT(acc.Merge(other), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(acc.tokens(), 0);
  EXPECT_THAT(acc.Finalize({}), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(HessianAccumulatorTest, FinalizeNormalisesDampsAndMarksDeadColumns) {
  const int64_t n = 5;
  torch::manual_seed(5);
  torch::Tensor x = torch::randn({40, n}, torch::kFloat64);
  x.select(1, 3).zero_();  // column 3 never sees input
  HessianAccumulator acc(n);
  ASSERT_THAT(acc.Add(x), IsOk());
  auto h = acc.Finalize({.damp = 0.05});
  ASSERT_THAT(h, IsOk());
  EXPECT_THAT(h->dead_columns, ElementsAre(3));
  EXPECT_EQ(h->tokens, 40);

  torch::Tensor expected = x.t().mm(x) / 40.0;
  expected = expected / expected.diagonal().mean();
  expected.diagonal().add_(0.05);
  expected[3][3] = 1.0;
  constexpr double kTol = 1e-12;
  EXPECT_TRUE(torch::allclose(h->h, expected, kTol, kTol));
  EXPECT_EQ(h->h[3][3].item<double>(), 1.0);
  EXPECT_EQ(h->h.select(0, 3).abs().sum().item<double>(), 1.0);

  torch::Tensor w = torch::ones({2, n});
  torch::Tensor wz = ZeroDeadColumns(w, h->dead_columns);
  EXPECT_EQ(wz.select(1, 3).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(wz.sum().item<double>(), 2.0 * (n - 1));
}

TEST(HessianAccumulatorTest, FinalizeRejectsAllDeadAndNegativeDamp) {
  HessianAccumulator acc(3);
  ASSERT_THAT(acc.Add(torch::zeros({4, 3})), IsOk());
  EXPECT_THAT(acc.Finalize({}), StatusIs(absl::StatusCode::kFailedPrecondition,
                                         HasSubstr("dead")));
  EXPECT_THAT(FinalizeHessian(torch::eye(3), {.damp = -1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("damp")));
  EXPECT_THAT(FinalizeHessian(torch::zeros({3, 4}), {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(HessianAccumulatorTest, SerializeRoundTripsAndKeepsMergeExact) {
  const int64_t n = 10;
  auto batches = RandomBatches(4, 20, n, 7);
  HessianAccumulator a = Accumulate(batches, {0, 1}, n);
  HessianAccumulator b = Accumulate(batches, {2, 3}, n);
  auto a2 = HessianAccumulator::Deserialize(a.Serialize());
  auto b2 = HessianAccumulator::Deserialize(b.Serialize());
  ASSERT_THAT(a2, IsOk());
  ASSERT_THAT(b2, IsOk());
  EXPECT_EQ(a2->n_features(), n);
  EXPECT_EQ(a2->tokens(), 40);
  EXPECT_TRUE(BitEqual(a2->Sum(), a.Sum()));
  // Merging deserialized shards equals merging the originals and one pass.
  ASSERT_THAT(b2->Merge(*a2), IsOk());
  HessianAccumulator one = Accumulate(batches, {0, 1, 2, 3}, n);
  EXPECT_TRUE(BitEqual(b2->Sum(), one.Sum()));
  EXPECT_EQ(b2->Serialize().size(), one.Serialize().size());
}

TEST(HessianAccumulatorTest, CorruptBytesAreInvalidArgument) {
  HessianAccumulator acc(6);
  ASSERT_THAT(acc.Add(torch::randn({9, 6})), IsOk());
  const std::string good = acc.Serialize();
  ASSERT_THAT(HessianAccumulator::Deserialize(good), IsOk());

  auto expect_bad = [](const std::string& bytes, const char* why) {
    EXPECT_THAT(HessianAccumulator::Deserialize(bytes),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(why)))
        << why;
  };
  expect_bad("", "too short");
  expect_bad(good.substr(0, good.size() - 1), "length");
  expect_bad(good + std::string(8, '\0'), "length");
  std::string magic = good;
  magic[0] = 'X';
  expect_bad(magic, "magic");
  std::string version = good;
  version[8] = 2;
  expect_bad(version, "version");
  std::string count = good;
  count[16] = 7;  // N = 7 no longer matches the element count
  expect_bad(count, "count");
  for (size_t pos : {size_t{45}, good.size() / 2, good.size() - 9}) {
    std::string flipped = good;
    flipped[pos] ^= 0x10;
    expect_bad(flipped, "checksum");
  }
}

}  // namespace
}  // namespace vptq::quant
