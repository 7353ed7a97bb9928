// `vptqctl quantize` flags -> JobSpec, request id and path roots.
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/quantize_spec.h"
#include "common/file_util.h"
#include "common/status_matchers.h"
#include "coordinator/test_util.h"

namespace vptq::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

class QuantizeSpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::canonical(coordinator::MakeTempDir("qspec")).string();
    fs::create_directories(base_ + "/m");
    fs::create_directories(base_ + "/text");
    ASSERT_THAT(WriteFileAtomic(base_ + "/m/config.json",
                                R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                                    "hidden_size": 8, "intermediate_size": 16,
                                    "num_hidden_layers": 1, "num_attention_heads": 2,
                                    "vocab_size": 32, "max_position_embeddings": 256,
                                    "hidden_act": "silu", "torch_dtype": "float32"})"),
                IsOk());
    ASSERT_THAT(WriteFileAtomic(base_ + "/text/a.txt", "words"), IsOk());
    ASSERT_THAT(WriteFileAtomic(base_ + "/eval.txt", "words"), IsOk());
  }
  void TearDown() override { fs::remove_all(base_); }

  QuantizeFlags Flags() const {
    QuantizeFlags f;
    f.model = base_ + "/m";
    f.output = base_ + "/out/m-2bit";
    f.calibration = {base_ + "/text"};
    return f;
  }

  std::string base_;
};

TEST_F(QuantizeSpecTest, DefaultsForASmallModel) {
  auto plan = PlanQuantize(Flags(), base_);
  ASSERT_THAT(plan, IsOk());
  const v1::JobSpec& s = plan->spec;
  EXPECT_EQ(s.name(), "m-2bit");
  EXPECT_EQ(s.model().path(), base_ + "/m");
  EXPECT_EQ(s.calibration().sequence_length(), 256);  // max_position_embeddings
  EXPECT_EQ(s.calibration().num_sequences(), 128);
  EXPECT_EQ(s.calibration().num_shards(), 8);
  EXPECT_EQ(s.quant().bits(), 2);
  EXPECT_EQ(s.quant().output_dtype(), "");  // the coordinator picks fp16 for fp32
  EXPECT_FALSE(s.has_eval());
  EXPECT_EQ(plan->output_dir, base_ + "/out/m-2bit");
  EXPECT_EQ(plan->state_dir, base_ + "/out/m-2bit.vptq-state");
  EXPECT_THAT(plan->input_roots, ::testing::UnorderedElementsAre(base_ + "/m", base_ + "/text"));
}

TEST_F(QuantizeSpecTest, RequestIdFollowsTheSpecOnly) {
  QuantizeFlags f = Flags();
  auto a = PlanQuantize(f, base_);
  ASSERT_THAT(a, IsOk());
  // Same job from another working directory with relative paths, other
  // thread counts: the same id.
  const fs::path cwd = fs::current_path();
  fs::current_path(base_);
  QuantizeFlags rel = f;
  rel.model = "m";
  rel.calibration = {"./text/"};
  rel.output = "out/m-2bit";
  rel.threads = 3;
  auto b = PlanQuantize(rel, base_);
  fs::current_path(cwd);
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(a->request_id, b->request_id);
  // Any setting that changes the result changes the id.
  f.bits = 3;
  auto c = PlanQuantize(f, base_);
  ASSERT_THAT(c, IsOk());
  EXPECT_NE(a->request_id, c->request_id);
  f = Flags();
  f.eval_text = {base_ + "/eval.txt"};
  auto d = PlanQuantize(f, base_);
  ASSERT_THAT(d, IsOk());
  EXPECT_NE(a->request_id, d->request_id);
  EXPECT_EQ(d->spec.eval().sequence_length(), 256);
  EXPECT_EQ(d->spec.eval().max_sequences(), 32);
  EXPECT_THAT(d->input_roots, ::testing::Contains(base_));
  EXPECT_EQ(AttemptRequestId(a->request_id, 1), a->request_id);
  EXPECT_EQ(AttemptRequestId(a->request_id, 2), a->request_id + "-2");
}

TEST_F(QuantizeSpecTest, BadFlagsAreNamed) {
  QuantizeFlags f = Flags();
  f.model = base_ + "/nope";
  EXPECT_THAT(PlanQuantize(f, base_), StatusIs(absl::StatusCode::kNotFound, HasSubstr("--model")));
  f = Flags();
  f.calibration = {base_ + "/missing.txt"};
  EXPECT_THAT(PlanQuantize(f, base_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("--calibration")));
  f = Flags();
  f.calibration.clear();  // no default text under this source dir
  EXPECT_THAT(PlanQuantize(f, base_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--calibration is required")));
  f = Flags();
  f.bits = 7;
  EXPECT_THAT(PlanQuantize(f, base_), StatusIs(absl::StatusCode::kInvalidArgument));
  f = Flags();
  f.output.clear();
  EXPECT_THAT(PlanQuantize(f, base_), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace vptq::cli
