// QuantLayout validation and bit accounting, config entries, Pack/Unpack
// round trips, Dequantize semantics on a hand-computed case, error paths.
#include <cmath>
#include <map>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/status.h"
#include "common/status_matchers.h"
#include "worker/quant/quantized_linear.h"

namespace vptq::quant {
namespace {

using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;
namespace names = packed_names;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

// Largest |difference| allowed between Dequantize of a q and of its packed
// round trip: none, since codebooks are fp16-representable.
constexpr double kBitExact = 0.0;

QuantLayout SmallLayout() {
  QuantLayout l;
  l.out_features = 29;  // not a multiple of v: one padded row
  l.in_features = 40;
  l.vector_len = 6;
  l.num_centroids = 64;
  l.num_res_centroids = 8;
  l.group_num = 2;
  l.group_size = 16;
  l.outlier_size = 8;
  l.outlier_vector_len = 4;
  l.outlier_num_centroids = 16;
  l.enable_perm = true;
  l.has_bias = true;
  return l;
}

// Float32 values that survive a round trip through float16.
torch::Tensor HalfExact(std::vector<int64_t> shape) {
  return torch::randn(shape).to(torch::kHalf).to(torch::kFloat);
}

// A random QuantizedLinear of layout `l` (all tensors present as needed).
QuantizedLinear RandomQ(const QuantLayout& l, uint64_t seed) {
  torch::manual_seed(seed);
  QuantizedLinear q;
  q.layout = l;
  const int64_t g = l.group_num;
  const int64_t rows = l.vector_rows();
  q.centroids = HalfExact({g, l.num_centroids, l.vector_len});
  q.indices = torch::randint(l.num_centroids, {g, rows, l.group_size}, torch::kLong);
  if (l.num_res_centroids > 0) {
    q.res_centroids = HalfExact({g, l.num_res_centroids, l.vector_len});
    q.res_indices =
        torch::randint(l.num_res_centroids, {g, rows, l.group_size}, torch::kLong);
  }
  if (l.outlier_size > 0) {
    q.outlier_centroids =
        HalfExact({l.outlier_num_centroids, l.outlier_vector_len});
    q.outlier_indices = torch::randint(
        l.outlier_num_centroids, {l.outlier_vector_rows(), l.outlier_size},
        torch::kLong);
  }
  q.perm = l.enable_perm ? torch::randperm(l.in_features, torch::kLong)
                         : torch::arange(l.in_features, torch::kLong);
  q.scale = torch::rand({l.in_features}).add(0.5).to(torch::kHalf).to(torch::kFloat);
  q.bias_norm = HalfExact({l.in_features}).mul(0.1).to(torch::kHalf).to(torch::kFloat);
  if (l.has_bias) q.bias = HalfExact({l.out_features});
  return q;
}

void ExpectSameQ(const QuantizedLinear& a, const QuantizedLinear& b) {
  auto same = [](const torch::Tensor& x, const torch::Tensor& y, const char* n) {
    ASSERT_EQ(x.defined(), y.defined()) << n;
    if (x.defined()) {
      EXPECT_TRUE(x.to(y.scalar_type()).equal(y)) << n;
    }
  };
  same(a.centroids, b.centroids, "centroids");
  same(a.res_centroids, b.res_centroids, "res_centroids");
  same(a.outlier_centroids, b.outlier_centroids, "outlier_centroids");
  same(a.indices, b.indices, "indices");
  same(a.res_indices, b.res_indices, "res_indices");
  same(a.outlier_indices, b.outlier_indices, "outlier_indices");
  same(a.perm, b.perm, "perm");
  same(a.scale, b.scale, "scale");
  same(a.bias_norm, b.bias_norm, "bias_norm");
  same(a.bias, b.bias, "bias");
}

// ---------------------------------------------------------------- layout

TEST(QuantLayoutTest, DerivedSizes) {
  const QuantLayout l = SmallLayout();
  EXPECT_EQ(l.index_bits(), 6);
  EXPECT_EQ(l.res_index_bits(), 3);
  EXPECT_EQ(l.vector_rows(), 5);          // ceil(29 / 6)
  EXPECT_EQ(l.outlier_vector_rows(), 8);  // ceil(29 / 4)
  EXPECT_EQ(l.packed_words_per_row(), 5); // ceil(16 * 9 / 32)
  EXPECT_THAT(l.Validate(), IsOk());
}

TEST(QuantLayoutTest, BitsPerWeightFollowsTheDesignFormula) {
  // Paper 2-bit preset on 4096x4096: 12/6 index bits + 16*6*4096/4096^2
  // codebook + 32/4096 scale/bias = 2 + 0.0234375 + 0.0078125.
  QuantLayout two_bit;
  two_bit.out_features = 4096;
  two_bit.in_features = 4096;
  two_bit.vector_len = 6;
  two_bit.num_centroids = 4096;
  two_bit.group_size = 4096;
  EXPECT_DOUBLE_EQ(two_bit.BitsPerWeight(16), 2.03125);
  // bf16/fp16 vs fp32 codebooks: codebook and scale terms double.
  EXPECT_DOUBLE_EQ(two_bit.BitsPerWeight(32), 2.0 + 0.046875 + 0.015625);

  // Outliers + residual + groups: 40 outlier columns (v0=4, K0=8192), 4 groups
  // of 1014 columns (v=12, K=K_r=4096):
  //   4056/4096*24/12 + 40/4096*13/4 + 16*(12*4*8192 + 4*8192)/4096^2 + 32/4096
  QuantLayout outliers = two_bit;
  outliers.vector_len = 12;
  outliers.num_res_centroids = 4096;
  outliers.group_num = 4;
  outliers.group_size = 1014;
  outliers.outlier_size = 40;
  outliers.outlier_vector_len = 4;
  outliers.outlier_num_centroids = 8192;
  ASSERT_THAT(outliers.Validate(), IsOk());
  EXPECT_DOUBLE_EQ(outliers.BitsPerWeight(16),
                   1.98046875 + 0.03173828125 + 0.40625 + 0.0078125);
}

TEST(QuantLayoutTest, StoredBitsCountPaddingAndPerm) {
  const QuantLayout l = SmallLayout();
  // indices 2*5*5 words, codebooks 16*(2*6*(64+8) + 4*16), outlier indices
  // 8*8 uint16, perm 40 uint16, scale+bias 2*40 fp16.
  const double bits = 32.0 * 50 + 16.0 * (864 + 64) + 16.0 * 64 + 16.0 * 40 +
                      32.0 * 40;
  EXPECT_DOUBLE_EQ(l.StoredBitsPerWeight(16), bits / (29 * 40));
  EXPECT_GT(l.StoredBitsPerWeight(16), l.BitsPerWeight(16));
}

struct BadLayoutCase {
  const char* name;
  void (*mutate)(QuantLayout&);
  const char* message;
};

TEST(QuantLayoutTest, RejectsBadLayoutsSayingWhatToChange) {
  const BadLayoutCase cases[] = {
      {"zero rows", [](QuantLayout& l) { l.out_features = 0; }, "at least 1"},
      {"v < 1", [](QuantLayout& l) { l.vector_len = 0; }, "vector_len is 0"},
      {"K not pow2", [](QuantLayout& l) { l.num_centroids = 48; },
       "num_centroids is 48; use a power of two"},
      {"K too big", [](QuantLayout& l) { l.num_centroids = 131072; },
       "power of two from 2 to 65536"},
      {"K = 1", [](QuantLayout& l) { l.num_centroids = 1; }, "num_centroids is 1"},
      {"K_r not pow2", [](QuantLayout& l) { l.num_res_centroids = 6; },
       "num_res_centroids is 6"},
      {"res bits > index bits",
       [](QuantLayout& l) { l.num_res_centroids = 128; },
       "use num_res_centroids <= num_centroids"},
      {"groups do not add up", [](QuantLayout& l) { l.group_size = 15; },
       "must cover every input column once"},
      {"no groups", [](QuantLayout& l) { l.group_num = 0; }, "group_num (0)"},
      {"K0 not pow2", [](QuantLayout& l) { l.outlier_num_centroids = 12; },
       "outlier_num_centroids is 12"},
      {"v0 = 1 (stock loader drops outliers)",
       [](QuantLayout& l) { l.outlier_vector_len = 1; },
       "outlier_vector_len >= 2"},
      {"outlier codebook without outliers",
       [](QuantLayout& l) {
         l.outlier_size = 0;
         l.group_size = 20;
       },
       "set both to 0"},
      {"negative outliers", [](QuantLayout& l) { l.outlier_size = -8; },
       "outlier_size is -8"},
      {"perm with N > 65535",
       [](QuantLayout& l) {
         l.in_features = 65536 + 8;
         l.group_size = 32768;
       },
       "at most 65535 input columns"},
  };
  for (const BadLayoutCase& c : cases) {
    QuantLayout l = SmallLayout();
    c.mutate(l);
    EXPECT_THAT(l.Validate(), StatusIs(kInvalid, HasSubstr(c.message))) << c.name;
  }
  // Without perm, wide layers are fine.
  QuantLayout wide = SmallLayout();
  wide.in_features = 65536 + 8;
  wide.group_size = 32768;
  wide.enable_perm = false;
  EXPECT_THAT(wide.Validate(), IsOk());
}

// ---------------------------------------------------------------- config

TEST(LayoutConfigTest, StockKeysInStockOrder) {
  const nlohmann::ordered_json e = LayoutToConfig(SmallLayout());
  std::vector<std::string> keys;
  for (const auto& [k, v] : e.items()) keys.push_back(k);
  EXPECT_THAT(keys, ::testing::ElementsAre(
                        "in_features", "out_features", "vector_lens",
                        "num_centroids", "num_res_centroids", "group_num",
                        "group_size", "outlier_size", "indices_as_float",
                        "enable_norm", "enable_perm", "is_indice_packed", "bias"));
  EXPECT_EQ(e["vector_lens"].dump(), "[4,6]");
  EXPECT_EQ(e["num_centroids"].dump(), "[16,64]");
  EXPECT_EQ(e["num_res_centroids"].dump(), "[-1,8]");
  EXPECT_EQ(e["bias"], true);
  EXPECT_EQ(e["indices_as_float"], false);
  EXPECT_EQ(e["is_indice_packed"], true);

  QuantLayout plain = SmallLayout();
  plain.num_res_centroids = 0;
  plain.outlier_size = 0;
  plain.outlier_vector_len = 0;
  plain.outlier_num_centroids = 0;
  plain.group_size = 20;
  const nlohmann::ordered_json p = LayoutToConfig(plain);
  EXPECT_EQ(p["vector_lens"].dump(), "[-1,6]");
  EXPECT_EQ(p["num_centroids"].dump(), "[-1,64]");
  EXPECT_EQ(p["num_res_centroids"].dump(), "[-1,-1]");
}

bool SameLayout(const QuantLayout& a, const QuantLayout& b) {
  return a.out_features == b.out_features && a.in_features == b.in_features &&
         a.vector_len == b.vector_len && a.num_centroids == b.num_centroids &&
         a.num_res_centroids == b.num_res_centroids &&
         a.group_num == b.group_num && a.group_size == b.group_size &&
         a.outlier_size == b.outlier_size &&
         a.outlier_vector_len == b.outlier_vector_len &&
         a.outlier_num_centroids == b.outlier_num_centroids &&
         a.enable_perm == b.enable_perm && a.enable_norm == b.enable_norm &&
         a.has_bias == b.has_bias;
}

TEST(LayoutConfigTest, RoundTrips) {
  QuantLayout a = SmallLayout();
  QuantLayout b = SmallLayout();
  b.num_res_centroids = 0;
  b.outlier_size = 0;
  b.outlier_vector_len = 0;
  b.outlier_num_centroids = 0;
  b.group_size = 20;
  b.enable_perm = false;
  b.has_bias = false;
  for (const QuantLayout& l : {a, b}) {
    VPTQ_ASSERT_OK_AND_ASSIGN(QuantLayout back,
                              LayoutFromConfig(nlohmann::json(LayoutToConfig(l))));
    EXPECT_TRUE(SameLayout(back, l));
  }
}

TEST(LayoutConfigTest, RejectsMissingExtraAndMistypedKeys) {
  const nlohmann::json good = LayoutToConfig(SmallLayout());
  ASSERT_THAT(LayoutFromConfig(good), IsOk());

  nlohmann::json missing = good;
  missing.erase("group_size");
  EXPECT_THAT(LayoutFromConfig(missing),
              StatusIs(kInvalid, HasSubstr("'group_size' is missing")));

  nlohmann::json extra = good;
  extra["vector_quant_dim"] = "out";
  EXPECT_THAT(LayoutFromConfig(extra),
              StatusIs(kInvalid, HasSubstr("'vector_quant_dim' is not a stock key")));

  nlohmann::json mistyped = good;
  mistyped["group_num"] = "2";
  EXPECT_THAT(LayoutFromConfig(mistyped),
              StatusIs(kInvalid, HasSubstr("'group_num' must be an integer")));

  nlohmann::json short_pair = good;
  short_pair["vector_lens"] = {6};
  EXPECT_THAT(LayoutFromConfig(short_pair),
              StatusIs(kInvalid, HasSubstr("'vector_lens' must be a list of two")));

  nlohmann::json as_float = good;
  as_float["indices_as_float"] = true;
  EXPECT_THAT(LayoutFromConfig(as_float),
              StatusIs(kInvalid, HasSubstr("indices_as_float")));

  nlohmann::json unpacked = good;
  unpacked["is_indice_packed"] = false;
  EXPECT_THAT(LayoutFromConfig(unpacked),
              StatusIs(kInvalid, HasSubstr("is_indice_packed")));

  nlohmann::json outlier_res = good;
  outlier_res["num_res_centroids"] = {8, 8};
  EXPECT_THAT(LayoutFromConfig(outlier_res),
              StatusIs(kInvalid, HasSubstr("outliers have no residual")));

  nlohmann::json stray_outlier = good;
  stray_outlier["outlier_size"] = 0;
  stray_outlier["group_size"] = 20;
  EXPECT_THAT(LayoutFromConfig(stray_outlier),
              StatusIs(kInvalid, HasSubstr("write -1 for both")));

  nlohmann::json bad_k = good;
  bad_k["num_centroids"] = {16, 100};
  EXPECT_THAT(LayoutFromConfig(bad_k),
              StatusIs(kInvalid, HasSubstr("num_centroids is 100")));

  EXPECT_THAT(LayoutFromConfig(nlohmann::json::array()),
              StatusIs(kInvalid, HasSubstr("must be an object")));
}

TEST(LayoutConfigTest, NormOffInTheFileMeansNoNorm) {
  nlohmann::json e = LayoutToConfig(SmallLayout());
  e["enable_norm"] = false;
  VPTQ_ASSERT_OK_AND_ASSIGN(QuantLayout l, LayoutFromConfig(e));
  EXPECT_FALSE(l.enable_norm);
  // Written back, norm is always on (scale 1, bias 0 are stored).
  EXPECT_EQ(LayoutToConfig(l)["enable_norm"], true);
}

// ---------------------------------------------------------------- dequantize

TEST(DequantizeTest, HandComputedSmallCase) {
  // M=3, N=3: stored column 0 is an outlier column (v0=2, K0=2), columns 1-2
  // one group (v=2, K=4, K_r=2); rows padded 3 -> 4; perm = [2, 0, 1].
  QuantizedLinear q;
  QuantLayout& l = q.layout;
  l.out_features = 3;
  l.in_features = 3;
  l.vector_len = 2;
  l.num_centroids = 4;
  l.num_res_centroids = 2;
  l.group_num = 1;
  l.group_size = 2;
  l.outlier_size = 1;
  l.outlier_vector_len = 2;
  l.outlier_num_centroids = 2;
  // C[k] = {10k+1, 10k+2}; R[j] = {0.25(j+1), 0.5(j+1)}.
  q.centroids = torch::tensor({1.f, 2.f, 11.f, 12.f, 21.f, 22.f, 31.f, 32.f})
                    .view({1, 4, 2});
  q.res_centroids = torch::tensor({0.25f, 0.5f, 0.5f, 1.f}).view({1, 2, 2});
  q.indices = torch::tensor({3, 0, 1, 2}, torch::kLong).view({1, 2, 2});
  q.res_indices = torch::tensor({1, 0, 0, 1}, torch::kLong).view({1, 2, 2});
  q.outlier_centroids = torch::tensor({-1.f, -2.f, -3.f, -4.f}).view({2, 2});
  q.outlier_indices = torch::tensor({1, 0}, torch::kLong).view({2, 1});
  q.perm = torch::tensor({2, 0, 1}, torch::kLong);
  q.scale = torch::tensor({1.f, 2.f, 4.f});      // per original column
  q.bias_norm = torch::tensor({0.f, 10.f, 100.f});
  // Stored Wp (rows 0..2, padded row 3 dropped):
  //   col 0: C0[1] = {-3, -4}, C0[0] = {-1}          -> [-3, -4, -1]
  //   col 1: C[3]+R[1] = {31.5, 33}, C[1]+R[0] = 11.25 -> [31.5, 33, 11.25]
  //   col 2: C[0]+R[0] = {1.25, 2.5}, C[2]+R[1] = 21.5 -> [1.25, 2.5, 21.5]
  // W[:, perm[j]] = Wp[:, j] * scale[perm[j]] + bias[perm[j]]:
  //   W[:, 2] = [-3, -4, -1] * 4 + 100, W[:, 0] = col 1, W[:, 1] = col 2 * 2 + 10.
  const torch::Tensor expected =
      torch::tensor({31.5f, 12.5f, 88.f, 33.f, 15.f, 84.f, 11.25f, 53.f, 96.f})
          .view({3, 3});
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor w, DequantizeChecked(q));
  EXPECT_EQ(w.scalar_type(), torch::kFloat);
  EXPECT_TRUE(w.equal(expected)) << w;
}

TEST(DequantizeTest, NormAndPermOffUseStoredOrder) {
  QuantLayout l = SmallLayout();
  l.enable_perm = false;
  l.enable_norm = false;
  QuantizedLinear q = RandomQ(l, 5);
  q.scale = torch::Tensor();
  q.bias_norm = torch::Tensor();
  q.perm = torch::Tensor();
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor w, DequantizeChecked(q));
  // Stored column 8 (first group column), row 7 = vector-row 1, element 1.
  const int64_t idx = q.indices[0][1][0].item<int64_t>();
  const int64_t res = q.res_indices[0][1][0].item<int64_t>();
  const float expect =
      q.centroids[0][idx][1].item<float>() + q.res_centroids[0][res][1].item<float>();
  EXPECT_EQ(w[7][8].item<float>(), expect);
}

TEST(DequantizeTest, InvalidInputGivesErrorNotCrash) {
  QuantizedLinear q = RandomQ(SmallLayout(), 1);
  q.indices[0][0][0] = 64;  // K = 64
  EXPECT_THAT(DequantizeChecked(q), StatusIs(kInvalid, HasSubstr("'indices'")));
  EXPECT_FALSE(Dequantize(q).defined());
}

// ---------------------------------------------------------------- pack

TEST(PackTest, TensorNamesShapesAndDtypes) {
  const QuantLayout l = SmallLayout();
  VPTQ_ASSERT_OK_AND_ASSIGN(auto packed, PackChecked(RandomQ(l, 2), torch::kHalf));
  struct Want {
    const char* name;
    std::vector<int64_t> shape;
    torch::ScalarType dtype;
  };
  const Want want[] = {
      {names::kCentroids, {2, 64 * 6}, torch::kHalf},
      {names::kResCentroids, {2, 8 * 6}, torch::kHalf},
      {names::kOutlierCentroids, {1, 16 * 4}, torch::kHalf},
      {names::kIndices, {2, 5, 5}, torch::kInt},
      {names::kOutlierIndices, {1, 8, 8}, torch::kShort},
      {names::kPerm, {40}, torch::kShort},
      {names::kWeightScale, {40}, torch::kHalf},
      {names::kWeightBias, {40}, torch::kHalf},
      {names::kBias, {29}, torch::kHalf},
  };
  EXPECT_EQ(packed.size(), std::size(want));
  for (const Want& w : want) {
    ASSERT_TRUE(packed.contains(w.name)) << w.name;
    EXPECT_EQ(packed[w.name].sizes(), torch::IntArrayRef(w.shape)) << w.name;
    EXPECT_EQ(packed[w.name].scalar_type(), w.dtype) << w.name;
    EXPECT_TRUE(packed[w.name].is_contiguous()) << w.name;
  }
}

TEST(PackTest, ResidualCodeIsHandWritten) {
  // b = 12, b_r = 4: code = idx | res << 12, 16 bits a code, two per word.
  QuantizedLinear q;
  QuantLayout& l = q.layout;
  l.out_features = 2;
  l.in_features = 3;
  l.vector_len = 2;
  l.num_centroids = 4096;
  l.num_res_centroids = 16;
  l.group_size = 3;
  l.enable_perm = false;
  q.centroids = torch::zeros({1, 4096, 2});
  q.res_centroids = torch::zeros({1, 16, 2});
  q.indices = torch::tensor({0x0AB, 0xFFF, 0x123}, torch::kLong).view({1, 1, 3});
  q.res_indices = torch::tensor({0x5, 0xA, 0x0}, torch::kLong).view({1, 1, 3});
  q.scale = torch::ones({3});
  q.bias_norm = torch::zeros({3});
  VPTQ_ASSERT_OK_AND_ASSIGN(auto packed, PackChecked(q, torch::kHalf));
  const torch::Tensor& words = packed.at(names::kIndices);
  ASSERT_EQ(words.sizes(), torch::IntArrayRef({1, 1, 2}));
  // codes 0x50AB, 0xAFFF, 0x0123 -> word 0 = 0xAFFF'50AB, word 1 = 0x0123.
  EXPECT_EQ(words[0][0][0].item<int32_t>(), static_cast<int32_t>(0xAFFF50ABu));
  EXPECT_EQ(words[0][0][1].item<int32_t>(), 0x00000123);
  // Perm off still writes the identity.
  EXPECT_TRUE(packed.at(names::kPerm).equal(torch::arange(3, torch::kShort)));
  VPTQ_ASSERT_OK_AND_ASSIGN(QuantizedLinear back, Unpack(packed, l));
  EXPECT_TRUE(back.indices.equal(q.indices));
  EXPECT_TRUE(back.res_indices.equal(q.res_indices));
}

TEST(PackTest, UnpackInvertsPackForEveryValidWidth) {
  // Index widths 1-16 with residual widths 0..b (the layout needs b_r <= b).
  for (int b = 1; b <= 16; ++b) {
    for (int br = 0; br <= b; ++br) {
      QuantLayout l;
      l.out_features = 7;
      l.in_features = 5;
      l.vector_len = 3;
      l.num_centroids = int64_t{1} << b;
      l.num_res_centroids = br > 0 ? int64_t{1} << br : 0;
      l.group_num = 1;
      l.group_size = 5;
      const QuantizedLinear q = RandomQ(l, static_cast<uint64_t>(b * 17 + br));
      VPTQ_ASSERT_OK_AND_ASSIGN(auto packed, PackChecked(q, torch::kHalf));
      EXPECT_EQ(packed.at(names::kIndices).size(2), (5 * (b + br) + 31) / 32);
      VPTQ_ASSERT_OK_AND_ASSIGN(QuantizedLinear back, Unpack(packed, l));
      ExpectSameQ(back, q);
      if (::testing::Test::HasFailure()) {
        FAIL() << "b=" << b << " br=" << br;
      }
    }
  }
}

TEST(PackTest, DequantizeOfRoundTripIsBitExact) {
  QuantLayout no_outlier = SmallLayout();
  no_outlier.outlier_size = 0;
  no_outlier.outlier_vector_len = 0;
  no_outlier.outlier_num_centroids = 0;
  no_outlier.group_size = 20;
  QuantLayout big_k = SmallLayout();
  big_k.num_centroids = 65536;
  big_k.num_res_centroids = 65536;  // T = 32 bits
  big_k.group_num = 1;
  big_k.group_size = 32;
  big_k.vector_len = 2;
  for (const QuantLayout& l : {SmallLayout(), no_outlier, big_k}) {
    for (uint64_t seed : {1, 2, 3}) {
      const QuantizedLinear q = RandomQ(l, seed);
      for (torch::ScalarType dtype : {torch::kHalf, torch::kFloat}) {
        VPTQ_ASSERT_OK_AND_ASSIGN(auto packed, PackChecked(q, dtype));
        VPTQ_ASSERT_OK_AND_ASSIGN(QuantizedLinear back, Unpack(packed, l));
        VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor w0, DequantizeChecked(q));
        VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor w1, DequantizeChecked(back));
        EXPECT_TRUE(w0.equal(w1));
        EXPECT_LE((w0 - w1).abs().max().item<double>(), kBitExact);
      }
    }
  }
}

TEST(PackTest, BFloat16CodebooksRoundTripAtBFloat16Precision) {
  QuantizedLinear q = RandomQ(SmallLayout(), 9);
  VPTQ_ASSERT_OK_AND_ASSIGN(auto packed, PackChecked(q, torch::kBFloat16));
  EXPECT_EQ(packed.at(names::kCentroids).scalar_type(), torch::kBFloat16);
  VPTQ_ASSERT_OK_AND_ASSIGN(QuantizedLinear back, Unpack(packed, q.layout));
  EXPECT_TRUE(back.centroids.equal(
      q.centroids.to(torch::kBFloat16).to(torch::kFloat)));
}

TEST(PackTest, NormOffWritesOnesAndZeros) {
  QuantLayout l = SmallLayout();
  l.enable_norm = false;
  QuantizedLinear q = RandomQ(l, 4);
  q.scale = torch::Tensor();
  q.bias_norm = torch::Tensor();
  VPTQ_ASSERT_OK_AND_ASSIGN(auto packed, PackChecked(q, torch::kHalf));
  EXPECT_TRUE(packed.at(names::kWeightScale).equal(torch::ones({40}, torch::kHalf)));
  EXPECT_TRUE(packed.at(names::kWeightBias).equal(torch::zeros({40}, torch::kHalf)));
  // The file says norm on (stock convention); dequantisation is unchanged.
  VPTQ_ASSERT_OK_AND_ASSIGN(
      QuantLayout file_layout,
      LayoutFromConfig(nlohmann::json(LayoutToConfig(l))));
  EXPECT_TRUE(file_layout.enable_norm);
  VPTQ_ASSERT_OK_AND_ASSIGN(QuantizedLinear back, Unpack(packed, file_layout));
  EXPECT_TRUE(Dequantize(back).equal(Dequantize(q)));

  q.scale = torch::full({40}, 2.0f);
  EXPECT_THAT(PackChecked(q, torch::kHalf),
              StatusIs(kInvalid, HasSubstr("enable_norm is false")));
}

TEST(PackTest, RejectsInconsistentQuantizedLinear) {
  const QuantizedLinear good = RandomQ(SmallLayout(), 3);
  ASSERT_THAT(PackChecked(good, torch::kHalf), IsOk());
  struct Case {
    const char* name;
    void (*mutate)(QuantizedLinear&);
    const char* message;
  };
  const Case cases[] = {
      {"index out of range", [](QuantizedLinear& q) { q.indices[1][4][15] = 64; },
       "64]; they must lie in [0, 64)"},
      {"res index out of range",
       [](QuantizedLinear& q) { q.res_indices[0][0][0] = -1; }, "'res_indices'"},
      {"outlier index out of range",
       [](QuantizedLinear& q) { q.outlier_indices[0][0] = 16; },
       "'outlier_indices'"},
      {"missing centroids", [](QuantizedLinear& q) { q.centroids = torch::Tensor(); },
       "'centroids' is missing"},
      {"wrong centroid shape",
       [](QuantizedLinear& q) { q.centroids = torch::zeros({2, 64, 4}); },
       "'centroids' has shape (2, 64, 4); the layout needs (2, 64, 6)"},
      {"float indices",
       [](QuantizedLinear& q) { q.indices = q.indices.to(torch::kFloat); },
       "expected an integer type"},
      {"NaN centroid",
       [](QuantizedLinear& q) { q.centroids[0][0][0] = std::nanf(""); },
       "NaN or Inf"},
      {"perm repeats", [](QuantizedLinear& q) { q.perm[0] = q.perm[1].item<int64_t>(); },
       "not a permutation"},
      {"residual without K_r",
       [](QuantizedLinear& q) {
         q.layout.num_res_centroids = 0;
       },
       "'res_centroids' is set but num_res_centroids is 0"},
      {"bias missing", [](QuantizedLinear& q) { q.bias = torch::Tensor(); }, "'bias' is missing"},
      {"bad layout", [](QuantizedLinear& q) { q.layout.vector_len = 0; },
       "vector_len is 0"},
  };
  for (const Case& c : cases) {
    QuantizedLinear q = good;
    // Deep copies, so a case's in-place edit does not leak into the next.
    q.centroids = good.centroids.clone();
    q.indices = good.indices.clone();
    q.res_indices = good.res_indices.clone();
    q.outlier_indices = good.outlier_indices.clone();
    q.perm = good.perm.clone();
    c.mutate(q);
    EXPECT_THAT(PackChecked(q, torch::kHalf), StatusIs(kInvalid, HasSubstr(c.message)))
        << c.name;
  }
  // The unchecked entry point returns nothing (and logs the reason).
  QuantizedLinear bad = good;
  bad.layout.vector_len = 0;
  EXPECT_TRUE(Pack(bad, torch::kHalf).empty());
  EXPECT_FALSE(Pack(good, torch::kHalf).empty());
}

TEST(PackTest, RejectsNonFloatDtypeAndFloat16Overflow) {
  QuantizedLinear q = RandomQ(SmallLayout(), 6);
  EXPECT_THAT(PackChecked(q, torch::kInt),
              StatusIs(kInvalid, HasSubstr("not a checkpoint float type")));
  q.centroids = q.centroids.clone();
  q.centroids[1][3][2] = 1e6f;
  EXPECT_THAT(PackChecked(q, torch::kHalf),
              StatusIs(kInvalid, HasSubstr("'centroids.weight' has values beyond")));
  EXPECT_THAT(PackChecked(q, torch::kFloat), IsOk());
}

// ---------------------------------------------------------------- unpack

TEST(UnpackTest, RejectsBadPackedTensorsNamingThem) {
  const QuantLayout l = SmallLayout();
  VPTQ_ASSERT_OK_AND_ASSIGN(const auto good, PackChecked(RandomQ(l, 8), torch::kHalf));
  ASSERT_THAT(Unpack(good, l), IsOk());
  using Map = std::map<std::string, torch::Tensor>;
  struct Case {
    const char* name;
    void (*mutate)(Map&);
    const char* message;
  };
  const Case cases[] = {
      {"missing", [](Map& m) { m.erase(names::kResCentroids); },
       "'res_centroids.weight' is missing"},
      {"unexpected", [](Map& m) { m["weight"] = torch::zeros({29, 40}); },
       "'weight' is not part of this layout"},
      {"wrong shape",
       [](Map& m) { m[names::kIndices] = torch::zeros({2, 5, 4}, torch::kInt); },
       "'indices' has shape (2, 5, 4); the layout needs (2, 5, 5)"},
      {"wrong index dtype",
       [](Map& m) { m[names::kIndices] = m[names::kIndices].to(torch::kLong); },
       "'indices' has dtype Long; expected Int"},
      {"wrong perm dtype",
       [](Map& m) { m[names::kPerm] = m[names::kPerm].to(torch::kInt); },
       "'perm' has dtype Int; expected Short"},
      {"outlier index >= K0",
       [](Map& m) {
         m[names::kOutlierIndices] = m[names::kOutlierIndices].clone();
         m[names::kOutlierIndices][0][3][2] = 20;
       },
       "20]; they must lie in [0, 16)"},
      {"perm not a permutation",
       [](Map& m) { m[names::kPerm] = torch::zeros({40}, torch::kShort); },
       "'perm' is not a permutation"},
      {"NaN centroid",
       [](Map& m) {
         m[names::kCentroids] = m[names::kCentroids].clone();
         m[names::kCentroids][1][7] = std::nanf("");
       },
       "'centroids.weight' holds NaN"},
      {"integer centroids",
       [](Map& m) { m[names::kCentroids] = m[names::kCentroids].to(torch::kInt); },
       "'centroids.weight' has dtype Int"},
      {"undefined tensor", [](Map& m) { m[names::kBias] = torch::Tensor(); },
       "'bias' is an undefined tensor"},
  };
  for (const Case& c : cases) {
    Map m = good;
    c.mutate(m);
    EXPECT_THAT(Unpack(m, l), StatusIs(kInvalid, HasSubstr(c.message))) << c.name;
  }
  QuantLayout bad = l;
  bad.num_centroids = 3;
  EXPECT_THAT(Unpack(good, bad), StatusIs(kInvalid, HasSubstr("num_centroids is 3")));
}

TEST(UnpackTest, PermOffIgnoresTheStoredPerm) {
  QuantLayout l = SmallLayout();
  l.enable_perm = false;
  VPTQ_ASSERT_OK_AND_ASSIGN(auto packed, PackChecked(RandomQ(l, 12), torch::kHalf));
  packed[names::kPerm] = torch::randperm(40, torch::kLong).to(torch::kShort);
  VPTQ_ASSERT_OK_AND_ASSIGN(QuantizedLinear q, Unpack(packed, l));
  EXPECT_TRUE(q.perm.equal(torch::arange(40, torch::kLong)));
  packed.erase(names::kPerm);
  EXPECT_THAT(Unpack(packed, l), IsOk());
}

TEST(UnpackTest, UpperHalfOfUint16IndicesReadsUnsigned) {
  // K0 = 65536: index 40000 is stored as int16 -25536 and must come back.
  QuantLayout l = SmallLayout();
  l.outlier_num_centroids = 65536;
  l.outlier_vector_len = 2;
  QuantizedLinear q = RandomQ(l, 13);
  q.outlier_indices[0][0] = 40000;
  q.outlier_indices[1][1] = 65535;
  VPTQ_ASSERT_OK_AND_ASSIGN(auto packed, PackChecked(q, torch::kHalf));
  EXPECT_EQ(packed.at(names::kOutlierIndices)[0][0][0].item<int16_t>(), -25536);
  EXPECT_EQ(packed.at(names::kOutlierIndices)[0][1][1].item<int16_t>(), -1);
  VPTQ_ASSERT_OK_AND_ASSIGN(QuantizedLinear back, Unpack(packed, l));
  EXPECT_EQ(back.outlier_indices[0][0].item<int64_t>(), 40000);
  EXPECT_EQ(back.outlier_indices[1][1].item<int64_t>(), 65535);
}

}  // namespace
}  // namespace vptq::quant
