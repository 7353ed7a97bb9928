// PackIndexRows / UnpackIndexRows against hand-written words and a bit-by-bit
// reference of DESIGN.md §3, for every index width 1-16 with every residual
// width 0-16.
#include <cstdint>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "worker/quant/quantized_linear.h"

namespace vptq::quant {
namespace {

using ::testing::ElementsAreArray;

// uint32 bit patterns as the int32 values the tensor holds.
std::vector<int32_t> Words(std::initializer_list<uint32_t> w) {
  std::vector<int32_t> out;
  for (uint32_t x : w) out.push_back(static_cast<int32_t>(x));
  return out;
}

std::vector<int32_t> Row(const torch::Tensor& words, int64_t r) {
  torch::Tensor row = words[r].contiguous();
  return {row.data_ptr<int32_t>(), row.data_ptr<int32_t>() + row.numel()};
}

// The spec, one bit at a time: bit t of code c lands at stream bit c*T + t.
std::vector<uint32_t> RefPackRow(const std::vector<uint64_t>& codes, int bits) {
  std::vector<uint32_t> words((codes.size() * bits + 31) / 32, 0);
  for (size_t c = 0; c < codes.size(); ++c) {
    for (int t = 0; t < bits; ++t) {
      if ((codes[c] >> t) & 1) {
        const size_t p = c * bits + t;
        words[p / 32] |= uint32_t{1} << (p % 32);
      }
    }
  }
  return words;
}

TEST(IndexPackingTest, ThreeBitHandWritten) {
  // 11 codes x 3 bits = 33 bits: the last code straddles the word boundary
  // and sets the sign bit of word 0.
  //   bits 31..0 of word 0: 1011 1111 1000 1011 0001 0001 1101 1101
  //   code 10 = 0b110: bit 30 = 0, bit 31 = 1, word 1 bit 0 = 1.
  torch::Tensor codes =
      torch::tensor({5, 3, 7, 0, 1, 6, 2, 4, 7, 7, 6}, torch::kLong).view({1, 11});
  torch::Tensor words = PackIndexRows(codes, 3);
  ASSERT_TRUE(words.defined());
  EXPECT_EQ(words.scalar_type(), torch::kInt);
  EXPECT_EQ(words.sizes(), torch::IntArrayRef({1, 2}));
  EXPECT_THAT(Row(words, 0), ElementsAreArray(Words({0xBF8B11DD, 0x00000001})));
  EXPECT_TRUE(UnpackIndexRows(words, 11, 3).equal(codes));
}

TEST(IndexPackingTest, TwelveBitHandWritten) {
  // Three 12-bit codes = 36 bits: word 0 holds codes 0, 1 and the low byte of
  // code 2; word 1 its high nibble.
  torch::Tensor codes =
      torch::tensor({0xABC, 0x123, 0xFFF, 0x001, 0x800, 0x7FF}, torch::kLong)
          .view({2, 3});
  torch::Tensor words = PackIndexRows(codes, 12);
  ASSERT_TRUE(words.defined());
  EXPECT_EQ(words.sizes(), torch::IntArrayRef({2, 2}));
  EXPECT_THAT(Row(words, 0), ElementsAreArray(Words({0xFF123ABC, 0x0000000F})));
  EXPECT_THAT(Row(words, 1), ElementsAreArray(Words({0xFF800001, 0x00000007})));
  EXPECT_TRUE(UnpackIndexRows(words, 3, 12).equal(codes));
}

TEST(IndexPackingTest, ThirtyTwoBitCodesUseTheSignBit) {
  torch::Tensor codes =
      torch::tensor({int64_t{0xFFFFFFFF}, int64_t{0x80000000}, int64_t{1}},
                    torch::kLong)
          .view({1, 3});
  torch::Tensor words = PackIndexRows(codes, 32);
  ASSERT_TRUE(words.defined());
  EXPECT_THAT(Row(words, 0),
              ElementsAreArray(Words({0xFFFFFFFF, 0x80000000, 0x00000001})));
  EXPECT_TRUE(UnpackIndexRows(words, 3, 32).equal(codes));
}

TEST(IndexPackingTest, EveryIndexAndResidualWidthMatchesBitReference) {
  torch::manual_seed(11);
  for (int b = 1; b <= 16; ++b) {
    for (int br = 0; br <= 16; ++br) {
      const int bits = b + br;
      const int64_t rows = 3;
      const int64_t cols = 37;  // odd, so rows end mid-word for most widths
      torch::Tensor idx = torch::randint(int64_t{1} << b, {rows, cols}, torch::kLong);
      torch::Tensor res = br > 0 ? torch::randint(int64_t{1} << br, {rows, cols},
                                                  torch::kLong)
                                 : torch::zeros({rows, cols}, torch::kLong);
      // Force the extreme codes in: all ones and zero.
      idx[0][0] = (int64_t{1} << b) - 1;
      res[0][0] = br > 0 ? (int64_t{1} << br) - 1 : 0;
      idx[1][1] = 0;
      res[1][1] = 0;
      torch::Tensor codes = idx.bitwise_or(res * (int64_t{1} << b));
      torch::Tensor words = PackIndexRows(codes, bits);
      ASSERT_TRUE(words.defined()) << "b=" << b << " br=" << br;
      ASSERT_EQ(words.size(1), (cols * bits + 31) / 32);
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<uint64_t> row;
        for (int64_t c = 0; c < cols; ++c) {
          row.push_back(static_cast<uint64_t>(codes[r][c].item<int64_t>()));
        }
        std::vector<int32_t> expected;
        for (uint32_t w : RefPackRow(row, bits)) {
          expected.push_back(static_cast<int32_t>(w));
        }
        ASSERT_THAT(Row(words, r), ElementsAreArray(expected))
            << "b=" << b << " br=" << br << " row " << r;
      }
      torch::Tensor back = UnpackIndexRows(words, cols, bits);
      ASSERT_TRUE(back.defined());
      ASSERT_TRUE(back.equal(codes)) << "b=" << b << " br=" << br;
      ASSERT_TRUE(back.bitwise_and((int64_t{1} << b) - 1).equal(idx));
      ASSERT_TRUE(back.div(int64_t{1} << b, "floor").equal(res));
    }
  }
}

TEST(IndexPackingTest, PaddingBitsAreZeroAndIgnoredOnUnpack) {
  torch::Tensor codes = torch::full({1, 5}, 7, torch::kLong);  // 15 bits
  torch::Tensor words = PackIndexRows(codes, 3);
  EXPECT_THAT(Row(words, 0), ElementsAreArray(Words({0x00007FFF})));
  words[0][0] = static_cast<int32_t>(0xFFFFFFFFu);  // garbage in the padding
  EXPECT_TRUE(UnpackIndexRows(words, 5, 3).equal(codes));
}

TEST(IndexPackingTest, AcceptsAnyIntegerCodeDtype) {
  torch::Tensor codes = torch::tensor({1, 2, 3}, torch::kShort).view({1, 3});
  torch::Tensor words = PackIndexRows(codes, 2);
  ASSERT_TRUE(words.defined());
  EXPECT_THAT(Row(words, 0), ElementsAreArray(Words({0b111001})));
}

TEST(IndexPackingTest, EmptyRowsAndColumns) {
  torch::Tensor none = PackIndexRows(torch::zeros({0, 4}, torch::kLong), 5);
  ASSERT_TRUE(none.defined());
  EXPECT_EQ(none.sizes(), torch::IntArrayRef({0, 1}));
  torch::Tensor empty_rows = PackIndexRows(torch::zeros({2, 0}, torch::kLong), 5);
  ASSERT_TRUE(empty_rows.defined());
  EXPECT_EQ(empty_rows.sizes(), torch::IntArrayRef({2, 0}));
}

TEST(IndexPackingTest, RejectsBrokenPreconditions) {
  const torch::Tensor ok = torch::zeros({2, 4}, torch::kLong);
  EXPECT_FALSE(PackIndexRows(ok, 0).defined());
  EXPECT_FALSE(PackIndexRows(ok, 33).defined());
  EXPECT_FALSE(PackIndexRows(torch::zeros({4}, torch::kLong), 3).defined());
  EXPECT_FALSE(PackIndexRows(torch::zeros({2, 4}, torch::kFloat), 3).defined());
  EXPECT_FALSE(PackIndexRows(torch::Tensor(), 3).defined());
  EXPECT_FALSE(PackIndexRows(torch::full({2, 4}, 8, torch::kLong), 3).defined());
  EXPECT_FALSE(PackIndexRows(torch::full({2, 4}, -1, torch::kLong), 3).defined());

  const torch::Tensor words = torch::zeros({2, 1}, torch::kInt);  // 4 x 3 bits
  EXPECT_TRUE(UnpackIndexRows(words, 4, 3).defined());
  EXPECT_FALSE(UnpackIndexRows(words, 11, 3).defined());  // needs 2 words
  EXPECT_FALSE(UnpackIndexRows(words.to(torch::kLong), 4, 3).defined());
  EXPECT_FALSE(UnpackIndexRows(words, 4, 0).defined());
  EXPECT_FALSE(UnpackIndexRows(words, -1, 3).defined());
}

}  // namespace
}  // namespace vptq::quant
