#include "worker/model/model_reader.h"

#include <filesystem>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/status.h"
#include "common/status_matchers.h"
#include "worker/model/model_test_util.h"

namespace vptq::model {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::vptq::testing::StatusIs;
using testing::ScratchDir;
using testing::SyntheticModel;
using testing::SyntheticModelOptions;
using testing::WriteSyntheticModel;

TEST(ModelReader, LoadsEveryStoredDtypeExactly) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    ScratchDir dir("reader_dtype");
    SyntheticModelOptions o;
    o.dtype = dtype;
    VPTQ_ASSERT_OK_AND_ASSIGN(SyntheticModel m, WriteSyntheticModel(dir.path(), o));
    VPTQ_ASSERT_OK_AND_ASSIGN(auto reader, ModelReader::Open(dir.path()));
    EXPECT_EQ(reader->layout().dtype, dtype);
    for (const auto& [name, expected] : m.tensors) {
      VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor t, reader->Load(name, torch::kFloat));
      EXPECT_EQ(t.scalar_type(), torch::kFloat);
      // The fixture holds the values as rounded to the stored dtype, so the
      // conversion to float32 is exact.
      EXPECT_TRUE(torch::equal(t, expected)) << name << " as " << DTypeName(dtype);
    }
    VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor half,
                              reader->Load("model.layers.1.mlp.up_proj.weight", torch::kBFloat16));
    EXPECT_EQ(half.scalar_type(), torch::kBFloat16);
    VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor dbl,
                              reader->Load("model.norm.weight", torch::kDouble));
    EXPECT_TRUE(torch::equal(dbl, m.tensors.at("model.norm.weight").to(torch::kDouble)));
  }
}

TEST(ModelReader, ReadsShardedFolders) {
  ScratchDir dir("reader_sharded");
  SyntheticModelOptions o;
  o.layers = 4;
  o.shards = 3;
  o.dtype = DType::kBF16;
  VPTQ_ASSERT_OK_AND_ASSIGN(SyntheticModel m, WriteSyntheticModel(dir.path(), o));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto reader, ModelReader::Open(dir.path()));
  EXPECT_TRUE(reader->layout().weights.sharded);
  EXPECT_EQ(reader->layout().weights.files.size(), 3u);
  EXPECT_EQ(reader->layout().weights.Find("model.layers.3.mlp.down_proj.weight")->file,
            "model-00003-of-00003.safetensors");
  for (const auto& [name, expected] : m.tensors) {
    VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor t, reader->Load(name));
    EXPECT_TRUE(torch::equal(t, expected)) << name;
  }
}

TEST(ModelReader, MissingTensorAndShapeMismatchNameTensorAndFile) {
  ScratchDir dir("reader_errors");
  VPTQ_ASSERT_OK_AND_ASSIGN(SyntheticModel m, WriteSyntheticModel(dir.path(), {}));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto reader, ModelReader::Open(dir.path()));
  EXPECT_THAT(reader->Load("model.layers.9.mlp.up_proj.weight"),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("model.layers.9.mlp.up_proj.weight"),
                             HasSubstr(dir.path()))));
  EXPECT_THAT(reader->Load("model.layers.0.mlp.up_proj.weight", {48, 33}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("model.layers.0.mlp.up_proj.weight"),
                             HasSubstr("model.safetensors"), HasSubstr("[48, 32]"))));
  EXPECT_THAT(reader->Load("model.norm.weight", torch::kLong),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model.norm.weight")));
}

TEST(ModelReader, NoticesAFileReplacedAfterOpen) {
  ScratchDir dir("reader_changed");
  VPTQ_ASSERT_OK_AND_ASSIGN(SyntheticModel m, WriteSyntheticModel(dir.path(), {}));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto reader, ModelReader::Open(dir.path()));
  // Same names, different shapes: a model swapped under a running job.
  SyntheticModelOptions other;
  other.intermediate = 40;
  ASSERT_TRUE(WriteSyntheticModel(dir.path(), other).ok());
  EXPECT_THAT(reader->Load("model.layers.0.mlp.up_proj.weight"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("changed")));
  reader->CloseFiles();
}

TEST(ModelReader, CorruptShardIsAnErrorNotACrash) {
  ScratchDir dir("reader_corrupt");
  VPTQ_ASSERT_OK_AND_ASSIGN(SyntheticModel m, WriteSyntheticModel(dir.path(), {}));
  const std::string path = dir.Sub("model.safetensors");
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  auto reader = ModelReader::Open(dir.path());
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(std::string(reader.status().message()), HasSubstr("model.safetensors"));
}

TEST(ModelReader, ConcurrentLoadsAgree) {
  ScratchDir dir("reader_threads");
  SyntheticModelOptions o;
  o.shards = 2;
  VPTQ_ASSERT_OK_AND_ASSIGN(SyntheticModel m, WriteSyntheticModel(dir.path(), o));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto reader, ModelReader::Open(dir.path()));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (const auto& [name, expected] : m.tensors) {
        auto got = reader->Load(name);
        if (!got.ok() || !torch::equal(*got, expected)) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(ViewToTensor, RejectsIntegerTensors) {
  const std::vector<uint8_t> bytes(8, 0);
  TensorView view{"ids", DType::kI32, {2}, absl::MakeConstSpan(bytes)};
  EXPECT_THAT(ViewToTensor(view, torch::kFloat),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ids")));
}

}  // namespace
}  // namespace vptq::model
