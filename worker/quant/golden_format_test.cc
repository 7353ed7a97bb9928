// The packed format against the golden vectors in testdata/vptq_format/ (see
// its README), which encode the stock loader's reading: unpack + dequantize
// reproduces the loader's dense weight bit for bit, pack of the debug codes
// reproduces the packed tensors exactly, and the config entry matches key for
// key.
#include <cstdlib>
#include <map>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/file_util.h"
#include "common/status.h"
#include "common/status_matchers.h"
#include "worker/quant/quantized_linear.h"
#include "worker/quant/tensor_io.h"

namespace vptq::quant {
namespace {

namespace names = packed_names;

constexpr char kLinear[] = "model.layers.0.mlp.down_proj";

std::string CaseDir(const std::string& name) {
  const char* root = std::getenv("VPTQ_SOURCE_DIR");
  return std::string(root != nullptr ? root : ".") + "/testdata/vptq_format/" +
         name;
}

struct Golden {
  nlohmann::ordered_json entry;                   // config_for_layers[kLinear]
  std::map<std::string, torch::Tensor> packed;    // suffix -> tensor, as stored
  std::map<std::string, torch::Tensor> expected;  // weight and debug codes
};

absl::StatusOr<Golden> LoadGolden(const std::string& name) {
  Golden g;
  const std::string dir = CaseDir(name);
  VPTQ_ASSIGN_OR_RETURN(std::string config, ReadFile(dir + "/packed/config.json"));
  const auto json = nlohmann::ordered_json::parse(config);
  g.entry = json.at("quantization_config").at("config_for_layers").at(kLinear);
  if (json.at("quantization_config").at("quant_method") != "vptq") {
    return absl::InvalidArgumentError("golden config is not vptq");
  }
  VPTQ_ASSIGN_OR_RETURN(auto file,
                        SafetensorsFile::Open(dir + "/packed/model.safetensors"));
  VPTQ_ASSIGN_OR_RETURN(g.packed, ReadTensors(*file, std::string(kLinear) + "."));
  if (g.packed.size() != file->tensors().size()) {
    return absl::InvalidArgumentError("golden file has foreign tensors");
  }
  VPTQ_ASSIGN_OR_RETURN(g.expected, ReadSafetensors(dir + "/expected.safetensors"));
  return g;
}

class GoldenFormatTest : public ::testing::TestWithParam<const char*> {};

TEST_P(GoldenFormatTest, ConfigEntryMatchesKeyForKey) {
  VPTQ_ASSERT_OK_AND_ASSIGN(Golden g, LoadGolden(GetParam()));
  VPTQ_ASSERT_OK_AND_ASSIGN(QuantLayout layout,
                            LayoutFromConfig(nlohmann::json(g.entry)));
  // dump() of ordered JSON compares keys, their order and every value.
  EXPECT_EQ(LayoutToConfig(layout).dump(), g.entry.dump());
}

TEST_P(GoldenFormatTest, UnpackAndDequantizeReproduceTheLoader) {
  VPTQ_ASSERT_OK_AND_ASSIGN(Golden g, LoadGolden(GetParam()));
  VPTQ_ASSERT_OK_AND_ASSIGN(QuantLayout layout,
                            LayoutFromConfig(nlohmann::json(g.entry)));
  VPTQ_ASSERT_OK_AND_ASSIGN(QuantizedLinear q, Unpack(g.packed, layout));

  EXPECT_TRUE(q.indices.equal(g.expected.at("debug.indices").to(torch::kLong)));
  if (layout.num_res_centroids > 0) {
    EXPECT_TRUE(
        q.res_indices.equal(g.expected.at("debug.res_indices").to(torch::kLong)));
  }
  if (layout.outlier_size > 0) {
    EXPECT_TRUE(q.outlier_indices.equal(
        g.expected.at("debug.outlier_indices").to(torch::kLong).squeeze(0)));
  }

  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor w, DequantizeChecked(q));
  const torch::Tensor& want = g.expected.at(std::string(kLinear) + ".weight");
  ASSERT_EQ(w.sizes(), want.sizes());
  ASSERT_EQ(w.scalar_type(), torch::kFloat);
  // Bit for bit, not just value-equal.
  EXPECT_TRUE(w.view(torch::kInt).equal(want.view(torch::kInt)))
      << "max |diff| " << (w - want).abs().max().item<double>();
}

TEST_P(GoldenFormatTest, PackOfDebugCodesReproducesThePackedTensors) {
  VPTQ_ASSERT_OK_AND_ASSIGN(Golden g, LoadGolden(GetParam()));
  VPTQ_ASSERT_OK_AND_ASSIGN(QuantLayout layout,
                            LayoutFromConfig(nlohmann::json(g.entry)));
  const int64_t gn = layout.group_num;
  const int64_t v = layout.vector_len;
  // Built from the debug codes and the stored codebooks, not from Unpack.
  QuantizedLinear q;
  q.layout = layout;
  q.centroids = g.packed.at(names::kCentroids).to(torch::kFloat).view(
      {gn, layout.num_centroids, v});
  q.indices = g.expected.at("debug.indices").to(torch::kLong);
  if (layout.num_res_centroids > 0) {
    q.res_centroids = g.packed.at(names::kResCentroids).to(torch::kFloat).view(
        {gn, layout.num_res_centroids, v});
    q.res_indices = g.expected.at("debug.res_indices").to(torch::kLong);
  }
  if (layout.outlier_size > 0) {
    q.outlier_centroids = g.packed.at(names::kOutlierCentroids)
                              .to(torch::kFloat)
                              .view({layout.outlier_num_centroids,
                                     layout.outlier_vector_len});
    q.outlier_indices =
        g.expected.at("debug.outlier_indices").to(torch::kLong).squeeze(0);
  }
  q.perm = g.packed.at(names::kPerm).to(torch::kLong).bitwise_and(0xFFFF);
  if (!layout.enable_perm) {
    ASSERT_TRUE(q.perm.equal(torch::arange(layout.in_features, torch::kLong)));
  }
  q.scale = g.packed.at(names::kWeightScale).to(torch::kFloat);
  q.bias_norm = g.packed.at(names::kWeightBias).to(torch::kFloat);

  VPTQ_ASSERT_OK_AND_ASSIGN(auto packed, PackChecked(q, torch::kHalf));
  ASSERT_EQ(packed.size(), g.packed.size());
  int64_t stored_bytes = 0;
  for (const auto& [name, want] : g.packed) {
    ASSERT_TRUE(packed.contains(name)) << name;
    const torch::Tensor& got = packed.at(name);
    EXPECT_EQ(got.scalar_type(), want.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), want.sizes()) << name;
    EXPECT_TRUE(got.equal(want)) << name;
    stored_bytes += static_cast<int64_t>(want.nbytes());
  }
  // StoredBitsPerWeight counts exactly what the stock files hold.
  EXPECT_DOUBLE_EQ(layout.StoredBitsPerWeight(16) * layout.out_features *
                       layout.in_features,
                   8.0 * static_cast<double>(stored_bytes));
}

TEST_P(GoldenFormatTest, RepackedFileHoldsTheSameTensors) {
  VPTQ_ASSERT_OK_AND_ASSIGN(Golden g, LoadGolden(GetParam()));
  VPTQ_ASSERT_OK_AND_ASSIGN(QuantLayout layout,
                            LayoutFromConfig(nlohmann::json(g.entry)));
  VPTQ_ASSERT_OK_AND_ASSIGN(QuantizedLinear q, Unpack(g.packed, layout));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto packed, PackChecked(q, torch::kHalf));
  SafetensorsWriter writer;
  for (const auto& [name, t] : packed) {
    ASSERT_THAT(AddTensor(writer, std::string(kLinear) + "." + name, t),
                ::vptq::testing::IsOk());
  }
  const std::string bytes = writer.Serialize();
  VPTQ_ASSERT_OK_AND_ASSIGN(
      auto file, SafetensorsFile::FromBuffer(absl::MakeConstSpan(
                     reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto reread, ReadTensors(*file, std::string(kLinear) + "."));
  ASSERT_EQ(reread.size(), g.packed.size());
  for (const auto& [name, want] : g.packed) {
    ASSERT_TRUE(reread.contains(name)) << name;
    EXPECT_EQ(reread.at(name).scalar_type(), want.scalar_type()) << name;
    EXPECT_TRUE(reread.at(name).equal(want)) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(AllCases, GoldenFormatTest,
                         ::testing::Values("plain_12bit", "residual_groups_perm",
                                           "everything"));

}  // namespace
}  // namespace vptq::quant
