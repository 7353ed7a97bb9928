#include "worker/quant/vptq_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "common/status_matchers.h"

namespace vptq::quant {
namespace {

using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

VptqOptions Small() {
  VptqOptions o;
  o.vector_len = 4;
  o.num_centroids = 16;
  return o;
}

void ExpectInvalid(const VptqOptions& o, int64_t m, int64_t n,
                   const std::string& what) {
  EXPECT_THAT(ValidateVptqOptions(o, m, n),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(what)))
      << what;
}

TEST(VptqOptionsTest, EveryBadOptionSaysWhatToChange) {
  EXPECT_THAT(ValidateVptqOptions(Small(), 64, 64), IsOk());
  VptqOptions o = Small();
  o.num_centroids = 100;
  ExpectInvalid(o, 64, 64, "num_centroids (K) is 100; it must be a power of two");
  o = Small();
  o.num_centroids = 1;
  ExpectInvalid(o, 64, 64, "power of two");
  o = Small();
  o.num_res_centroids = 12;
  ExpectInvalid(o, 64, 64, "or 0 for no residual");
  o = Small();
  o.vector_len = 0;
  ExpectInvalid(o, 64, 64, "vector_len (v) is 0");
  o = Small();
  o.num_centroids = 1024;  // 16 rows/4 = 4 vectors x 64 columns = 256
  ExpectInvalid(o, 16, 64, "exceeds the 256 vectors");
  o = Small();
  ExpectInvalid(o, 4, 70000, "enable_perm = false");
  o.enable_perm = false;
  EXPECT_THAT(ValidateVptqOptions(o, 4, 70000), IsOk());
  o = Small();
  o.num_res_centroids = 32;
  ExpectInvalid(o, 64, 64, "use K_r <= K");
  o = Small();
  o.group_num = 0;
  ExpectInvalid(o, 64, 64, "group_num");
  o = Small();
  o.outlier_fraction = 1.0;
  ExpectInvalid(o, 64, 64, "outlier_fraction");
  o = Small();
  o.outlier_fraction = 0.1;
  o.outlier_num_centroids = 4096;  // 7 columns x 16 vectors
  ExpectInvalid(o, 64, 64, "outlier_num_centroids K0 = 4096 exceeds");
  o.outlier_num_centroids = 16;
  o.outlier_vector_len = 1;
  ExpectInvalid(o, 64, 64, "v0 >= 2");
  o = Small();
  o.group_num = 3;  // 64 mod 3 = 1 column goes to the outlier codebook
  o.outlier_num_centroids = 8;
  EXPECT_THAT(ValidateVptqOptions(o, 64, 64), IsOk());
  o.outlier_num_centroids = 8192;
  ExpectInvalid(o, 64, 64, "N mod G");
  o = Small();
  o.block_size = 0;
  ExpectInvalid(o, 64, 64, "block_size");
  o = Small();
  o.kmeans_iters = 0;
  ExpectInvalid(o, 64, 64, "kmeans_iters");
  o = Small();
  o.storage_dtype = torch::kInt8;
  ExpectInvalid(o, 64, 64, "storage_dtype");
  o = Small();
  o.init_centroids = torch::zeros({1, 8, 4});
  ExpectInvalid(o, 64, 64, "init_centroids has shape (1, 8, 4)");
  ExpectInvalid(Small(), 0, 64, "at least one row");
}

TEST(VptqOptionsTest, OutlierColumnsAbsorbGroupRemainder) {
  VptqOptions o = Small();
  o.outlier_fraction = 0.05;
  o.group_num = 4;
  EXPECT_EQ(OutlierColumns(o, 100), 5 + 95 % 4);
  QuantLayout l = LayoutFor(o, 32, 100);
  EXPECT_EQ(l.outlier_size, 8);
  EXPECT_EQ(l.group_size, 23);
  EXPECT_EQ(l.outlier_vector_len, 4);
  EXPECT_THAT(l.Validate(), IsOk());
  o.outlier_fraction = 0.25;  // exactly 25 of 100, not 26
  o.group_num = 1;
  EXPECT_EQ(OutlierColumns(o, 100), 25);
  o.outlier_fraction = 0.01;
  EXPECT_EQ(OutlierColumns(o, 4096), 41);
}

TEST(VptqOptionsTest, PresetsAreThePapers) {
  VptqOptions two = PresetOptions(VptqPreset::k2Bit);
  EXPECT_EQ(two.vector_len, 6);
  EXPECT_EQ(two.num_centroids, 4096);
  EXPECT_EQ(two.num_res_centroids, 0);
  VptqOptions three = PresetOptions(VptqPreset::k3Bit);
  EXPECT_EQ(three.vector_len, 8);
  EXPECT_EQ(three.num_centroids, 65536);
  EXPECT_EQ(three.num_res_centroids, 256);
  VptqOptions four = PresetOptions(VptqPreset::k4Bit);
  EXPECT_EQ(four.vector_len, 6);
  EXPECT_EQ(four.num_res_centroids, 256);
  VptqOptions out = PresetOptions(VptqPreset::k2BitOutliers);
  EXPECT_EQ(out.group_num, 4);
  EXPECT_EQ(out.num_res_centroids, out.num_centroids);
  QuantLayout l = LayoutFor(out, 4096, 4096);
  EXPECT_THAT(l.Validate(), IsOk());
  std::string why;
  EXPECT_TRUE(InStockKernelEnvelope(l, &why)) << why;
}

TEST(VptqOptionsTest, ChooseOptionsForBitsFitsTheBudget) {
  // Large layer at 2.1 bits: the paper's v=6, K=4096 (2.03 bpw).
  auto two = ChooseOptionsForBits(2.1, 4096, 4096, 16);
  ASSERT_THAT(two, IsOk());
  EXPECT_EQ(two->vector_len, 6);
  EXPECT_EQ(two->num_centroids, 4096);
  EXPECT_EQ(two->num_res_centroids, 0);
  EXPECT_LE(LayoutFor(*two, 4096, 4096).BitsPerWeight(16), 2.1);

  // A small layer: small v and K, since the codebook must not dominate.
  auto small = ChooseOptionsForBits(2.35, 288, 288, 16);
  ASSERT_THAT(small, IsOk());
  EXPECT_EQ(small->vector_len, 4);
  EXPECT_EQ(small->num_centroids, 256);
  EXPECT_EQ(small->num_res_centroids, 0);

  // 3 bits: the paper's v=8 with a residual codebook, shrunk to fit.
  auto three = ChooseOptionsForBits(3.1, 4096, 4096, 16);
  ASSERT_THAT(three, IsOk());
  EXPECT_EQ(three->vector_len, 8);
  QuantLayout l3 = LayoutFor(*three, 4096, 4096);
  EXPECT_EQ(l3.index_bits() + l3.res_index_bits(), 24);
  EXPECT_LE(l3.BitsPerWeight(16), 3.1);

  for (double target : {1.5, 2.0, 2.5, 3.0, 4.0, 4.1, 6.0}) {
    for (auto [m, n] : {std::pair<int64_t, int64_t>{4096, 4096},
                        {288, 768}, {11008, 4096}, {288, 288}}) {
      auto o = ChooseOptionsForBits(target, m, n, 16);
      if (!o.ok()) continue;  // tiny budgets may not fit small layers
      QuantLayout l = LayoutFor(*o, m, n);
      EXPECT_LE(l.BitsPerWeight(16), target) << m << "x" << n << " " << target;
      EXPECT_THAT(ValidateVptqOptions(*o, m, n), IsOk());
      std::string why;
      EXPECT_TRUE(InStockKernelEnvelope(l, &why)) << why;
    }
  }
  EXPECT_THAT(ChooseOptionsForBits(0.1, 288, 288, 16),  // scale+bias: 0.11
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("smallest total")));
  EXPECT_THAT(ChooseOptionsForBits(2, 0, 288, 16),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(VptqOptionsTest, StockKernelEnvelope) {
  VptqOptions o = Small();
  std::string why;
  EXPECT_TRUE(InStockKernelEnvelope(LayoutFor(o, 64, 64), &why));
  EXPECT_EQ(why, "");
  o.vector_len = 5;
  o.num_centroids = 64;  // 6 index bits
  EXPECT_FALSE(InStockKernelEnvelope(LayoutFor(o, 64, 64), &why));
  EXPECT_THAT(why, HasSubstr("vector_len 5"));
  EXPECT_THAT(why, HasSubstr("index bits 6"));
  o = Small();
  o.group_num = 2;
  o.num_res_centroids = 8;
  EXPECT_FALSE(InStockKernelEnvelope(LayoutFor(o, 64, 64), &why));
  EXPECT_THAT(why, HasSubstr("num_centroids == num_res_centroids"));
  o.num_res_centroids = 16;
  EXPECT_TRUE(InStockKernelEnvelope(LayoutFor(o, 64, 64), nullptr));
}

}  // namespace
}  // namespace vptq::quant
