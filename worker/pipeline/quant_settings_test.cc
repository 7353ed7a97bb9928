#include "worker/pipeline/quant_settings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status.h"
#include "common/status_matchers.h"

namespace vptq::pipeline {
namespace {

using ::testing::HasSubstr;
using ::vptq::testing::StatusIs;

TEST(QuantSettingsTest, BitsChooseOptionsPerShapeAndExplicitFieldsOverride) {
  QuantSettings s;
  s.bits = 3;
  for (auto [m, n] : {std::pair<int64_t, int64_t>{288, 288}, {768, 288}, {288, 768}}) {
    VPTQ_ASSERT_OK_AND_ASSIGN(quant::VptqOptions o,
                              ResolveVptqOptions(s, "x", m, n, torch::kHalf));
    VPTQ_ASSERT_OK_AND_ASSIGN(quant::VptqOptions chosen,
                              quant::ChooseOptionsForBits(3.0, m, n, 16));
    EXPECT_EQ(o.vector_len, chosen.vector_len);
    EXPECT_EQ(o.num_centroids, chosen.num_centroids);
    EXPECT_EQ(o.num_res_centroids, chosen.num_res_centroids);
    EXPECT_LE(quant::LayoutFor(o, m, n).BitsPerWeight(16), 3.0);
    EXPECT_EQ(o.kmeans_iters, kDefaultKmeansIters);
    EXPECT_EQ(o.storage_dtype, torch::kHalf);
  }
  s.vector_len = 4;
  s.num_centroids = 256;
  s.num_res_centroids = 0;
  s.enable_perm = false;
  s.kmeans_iters = 3;
  VPTQ_ASSERT_OK_AND_ASSIGN(quant::VptqOptions o,
                            ResolveVptqOptions(s, "x", 288, 288, torch::kFloat));
  EXPECT_EQ(o.vector_len, 4);
  EXPECT_EQ(o.num_centroids, 256);
  EXPECT_FALSE(o.enable_perm);
  EXPECT_EQ(o.kmeans_iters, 3);
}

TEST(QuantSettingsTest, SeedsDifferPerLinearAndRepeat) {
  EXPECT_EQ(LinearSeed(1, "a"), LinearSeed(1, "a"));
  EXPECT_NE(LinearSeed(1, "a"), LinearSeed(1, "b"));
  EXPECT_NE(LinearSeed(1, "a"), LinearSeed(2, "a"));
}

TEST(QuantSettingsTest, BadSettingsNameTheProblem) {
  QuantSettings s;
  s.bits = 1;  // nothing fits 1 bit on a 32x32 layer with its codebook
  EXPECT_THAT(ResolveVptqOptions(s, "model.layers.0.mlp.up_proj", 32, 32, torch::kHalf),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("model.layers.0.mlp.up_proj")));
  s.bits = 0;
  s.vector_len = 4;
  s.num_centroids = 100;  // not a power of two
  EXPECT_THAT(ResolveVptqOptions(s, "lin", 64, 64, torch::kHalf),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lin")));
  EXPECT_THAT(ParseOutputDType("int8"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fp16")));
  QuantSettings d;
  EXPECT_EQ(*ResolveOutputDType(d, DType::kBF16), torch::kBFloat16);
  d.output_dtype = "fp16";
  EXPECT_EQ(*ResolveOutputDType(d, DType::kF32), torch::kHalf);
  EXPECT_THAT(ResolveOutputDType(QuantSettings{}, DType::kI32),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(EffectiveDamp(QuantSettings{}), kDefaultDamp);
}

}  // namespace
}  // namespace vptq::pipeline
