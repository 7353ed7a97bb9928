#include "worker/pipeline/hessian_blob.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/status.h"
#include "common/status_matchers.h"
#include "worker/pipeline/reduce_task.h"

namespace vptq::pipeline {
namespace {

using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

quant::FinalizedHessian RandomHessian(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  const torch::Tensor x = torch::randn({4 * n, n}, torch::kDouble);
  quant::FinalizedHessian h;
  const torch::Tensor a = x.t().mm(x) / (4 * n) + torch::eye(n, torch::kDouble);
  h.h = (a + a.t()) / 2;  // exactly symmetric, as finalized Hessians are
  h.dead_columns = {1, 3};
  h.tokens = 4 * n;
  return h;
}

TEST(HessianBlobTest, RoundTripsExactly) {
  const quant::FinalizedHessian h = RandomHessian(9, 1);
  const std::string bytes = EncodeFinalizedHessian(h, 0.02);
  VPTQ_ASSERT_OK_AND_ASSIGN(DecodedHessian d, DecodeFinalizedHessian(bytes, "h"));
  EXPECT_TRUE(torch::equal(d.hessian.h, h.h));
  EXPECT_EQ(d.hessian.dead_columns, h.dead_columns);
  EXPECT_EQ(d.hessian.tokens, h.tokens);
  EXPECT_EQ(d.damp, 0.02);
  EXPECT_EQ(EncodeFinalizedHessian(d.hessian, d.damp), bytes);
}

TEST(HessianBlobTest, CorruptBytesAreRejected) {
  const std::string bytes = EncodeFinalizedHessian(RandomHessian(5, 2), 0.01);
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 1;
  EXPECT_THAT(DecodeFinalizedHessian(flipped, "group g"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("group g"), HasSubstr("checksum"))));
  EXPECT_THAT(DecodeFinalizedHessian(bytes.substr(0, bytes.size() - 1), "g"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeFinalizedHessian("", "g"), StatusIs(absl::StatusCode::kInvalidArgument));
  std::string magic = bytes;
  magic[0] = 'X';
  EXPECT_THAT(DecodeFinalizedHessian(magic, "g"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("magic")));
  // A partial (accumulator) blob is not a finalized Hessian.
  quant::HessianAccumulator acc(5);
  EXPECT_THAT(DecodeFinalizedHessian(acc.Serialize(), "g"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

class ReduceTaskTest : public ::testing::Test {
 protected:
  // Partials of two shards of the same token batches, and the one-shot sum.
  void SetUp() override {
    torch::manual_seed(5);
    for (int i = 0; i < 3; ++i) batches_.push_back(torch::randn({17, 6}));
    quant::HessianAccumulator a(6), b(6);
    ASSERT_THAT(a.Add(batches_[0]), IsOk());
    ASSERT_THAT(b.Add(batches_[1]), IsOk());
    ASSERT_THAT(b.Add(batches_[2]), IsOk());
    part_a_ = a.Serialize();
    part_b_ = b.Serialize();
  }
  std::vector<torch::Tensor> batches_;
  std::string part_a_, part_b_;
};

TEST_F(ReduceTaskTest, MergesShardsIndependentlyOfOrder) {
  ReduceTaskInput in{"model.layers.0.qkv", {{"shard-00000", part_a_}, {"shard-00001", part_b_}}};
  ReduceTaskInput swapped{"model.layers.0.qkv",
                          {{"shard-00000", part_b_}, {"shard-00001", part_a_}}};
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string h1, RunReduceTask(in));
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string h2, RunReduceTask(swapped));
  EXPECT_EQ(h1, h2);

  // Reference: one accumulator over every batch, finalized the same way.
  quant::HessianAccumulator all(6);
  for (const auto& x : batches_) ASSERT_THAT(all.Add(x), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(quant::FinalizedHessian ref, all.Finalize({}));
  VPTQ_ASSERT_OK_AND_ASSIGN(DecodedHessian got, DecodeFinalizedHessian(h1, "h"));
  EXPECT_TRUE(torch::allclose(got.hessian.h, ref.h, /*rtol=*/1e-14, /*atol=*/1e-14));
  EXPECT_EQ(got.hessian.tokens, 51);
  EXPECT_EQ(got.damp, kDefaultDamp);
}

TEST_F(ReduceTaskTest, BadPartialsAreNamed) {
  ReduceTaskInput none{"g", {}};
  EXPECT_THAT(RunReduceTask(none), StatusIs(absl::StatusCode::kInvalidArgument));
  ReduceTaskInput corrupt{"g", {{"shard-00000", part_a_}, {"shard-00001", "garbage"}}};
  EXPECT_THAT(RunReduceTask(corrupt),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("shard-00001")));
  quant::HessianAccumulator other(7);
  ASSERT_THAT(other.Add(torch::randn({3, 7})), IsOk());
  ReduceTaskInput mismatch{"g", {{"shard-00000", part_a_}, {"shard-00001", other.Serialize()}}};
  EXPECT_THAT(RunReduceTask(mismatch),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("7 features")));
  ReduceTaskInput empty{"g", {{"shard-00000", quant::HessianAccumulator(6).Serialize()}}};
  EXPECT_THAT(RunReduceTask(empty), StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace vptq::pipeline
