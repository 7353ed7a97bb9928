// Torch <-> safetensors adapters: every dtype round-trips byte for byte,
// floats convert on request, prefixes strip, bad inputs are errors.
#include <cstdint>
#include <map>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/status.h"
#include "common/status_matchers.h"
#include "worker/quant/tensor_io.h"

namespace vptq::quant {
namespace {

using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

absl::StatusOr<std::unique_ptr<SafetensorsFile>> Parse(const std::string& bytes) {
  return SafetensorsFile::FromBuffer(absl::MakeConstSpan(
      reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

TEST(TensorIoTest, DTypeMappingIsMutualInverse) {
  for (DType d : {DType::kF32, DType::kF16, DType::kBF16, DType::kI64,
                  DType::kI32, DType::kI16, DType::kU8}) {
    VPTQ_ASSERT_OK_AND_ASSIGN(DType back, FromTorchDType(ToTorchDType(d)));
    EXPECT_EQ(back, d) << DTypeName(d);
  }
  EXPECT_THAT(FromTorchDType(torch::kBool),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FromTorchDType(torch::kDouble),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TensorIoTest, EveryDtypeRoundTripsExactly) {
  torch::manual_seed(3);
  const std::map<std::string, torch::Tensor> tensors = {
      {"f32", torch::randn({3, 5})},
      {"f16", torch::randn({4, 2}).to(torch::kHalf)},
      {"bf16", torch::randn({7}).to(torch::kBFloat16)},
      {"i64", torch::randint(-1000000, 1000000, {2, 3}, torch::kLong)},
      {"i32", torch::tensor({int32_t{-1}, INT32_MIN, INT32_MAX}, torch::kInt)},
      {"i16", torch::tensor({int16_t{-1}, int16_t{-32768}, int16_t{12}}, torch::kShort)},
      {"u8", torch::tensor({0, 255, 7}, torch::kByte)},
      {"empty", torch::zeros({0, 4})},
  };
  SafetensorsWriter writer;
  for (const auto& [name, t] : tensors) {
    ASSERT_THAT(AddTensor(writer, name, t), IsOk()) << name;
  }
  VPTQ_ASSERT_OK_AND_ASSIGN(auto file, Parse(writer.Serialize()));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto back, ReadTensors(*file));
  ASSERT_EQ(back.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    ASSERT_TRUE(back.contains(name)) << name;
    EXPECT_EQ(back.at(name).scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(back.at(name).sizes(), t.sizes()) << name;
    EXPECT_TRUE(back.at(name).equal(t)) << name;
  }
}

TEST(TensorIoTest, FloatsConvertToTheRequestedDtypeIntegersDoNot) {
  const torch::Tensor half = torch::tensor({1.5f, -2.25f, 65504.f}).to(torch::kHalf);
  const torch::Tensor bf = torch::tensor({3.0f, 1e30f}).to(torch::kBFloat16);
  const torch::Tensor ints = torch::tensor({1, 2}, torch::kShort);
  SafetensorsWriter writer;
  ASSERT_THAT(AddTensor(writer, "h", half), IsOk());
  ASSERT_THAT(AddTensor(writer, "b", bf), IsOk());
  ASSERT_THAT(AddTensor(writer, "i", ints), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(auto file, Parse(writer.Serialize()));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto back, ReadTensors(*file, "", torch::kFloat));
  EXPECT_EQ(back.at("h").scalar_type(), torch::kFloat);
  EXPECT_TRUE(back.at("h").equal(half.to(torch::kFloat)));
  EXPECT_EQ(back.at("b").scalar_type(), torch::kFloat);
  EXPECT_TRUE(back.at("b").equal(bf.to(torch::kFloat)));
  EXPECT_EQ(back.at("i").scalar_type(), torch::kShort);

  const TensorView* view = file->Find("h");
  ASSERT_NE(view, nullptr);
  EXPECT_THAT(ToTensor(*view, torch::kInt),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not a floating type")));
}

TEST(TensorIoTest, NonContiguousTensorsAreWrittenInLogicalOrder) {
  const torch::Tensor base = torch::arange(12, torch::kFloat).view({3, 4});
  const torch::Tensor transposed = base.t();
  ASSERT_FALSE(transposed.is_contiguous());
  SafetensorsWriter writer;
  ASSERT_THAT(AddTensor(writer, "t", transposed), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(auto file, Parse(writer.Serialize()));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto back, ReadTensors(*file));
  EXPECT_TRUE(back.at("t").equal(transposed));
}

TEST(TensorIoTest, PrefixSelectsAndStrips) {
  SafetensorsWriter writer;
  ASSERT_THAT(AddTensor(writer, "a.b.indices", torch::zeros({2}, torch::kInt)), IsOk());
  ASSERT_THAT(AddTensor(writer, "a.b.perm", torch::zeros({3}, torch::kShort)), IsOk());
  ASSERT_THAT(AddTensor(writer, "a.c.perm", torch::zeros({4}, torch::kShort)), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(auto file, Parse(writer.Serialize()));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto back, ReadTensors(*file, "a.b."));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back.at("indices").numel(), 2);
  EXPECT_EQ(back.at("perm").numel(), 3);
}

TEST(TensorIoTest, BadInputsAreErrorsNamingTheTensor) {
  SafetensorsWriter writer;
  EXPECT_THAT(AddTensor(writer, "flags", torch::ones({2}, torch::kBool)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'flags'")));
  EXPECT_THAT(AddTensor(writer, "none", torch::Tensor()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'none'")));
  ASSERT_THAT(AddTensor(writer, "x", torch::zeros({1})), IsOk());
  EXPECT_THAT(AddTensor(writer, "x", torch::zeros({1})),
              StatusIs(absl::StatusCode::kInvalidArgument));

  // A view whose byte count disagrees with its shape (as a buggy caller might
  // build by hand) is refused, not read past its end.
  const std::vector<uint8_t> bytes(6, 0);
  TensorView lying{.name = "w", .dtype = DType::kF32, .shape = {2},
                   .data = absl::MakeConstSpan(bytes)};
  EXPECT_THAT(ToTensor(lying),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'w'")));

  EXPECT_THAT(ReadSafetensors("/nonexistent/dir/model.safetensors"),
              ::testing::Not(IsOk()));
}

}  // namespace
}  // namespace vptq::quant
