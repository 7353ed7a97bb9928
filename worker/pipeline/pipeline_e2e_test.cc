// The pipeline on the real default model (stories15M, DESIGN.md §6):
// calibration text from the SOTU speeches, evaluation on Moby Dick, a 2-bit
// job end to end, resumed after losing some task outputs.
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/file_util.h"
#include "common/status.h"
#include "common/status_matchers.h"
#include "worker/model/default_model.h"
#include "worker/model/llama_model.h"
#include "worker/model/model_reader.h"
#include "worker/model/model_test_util.h"
#include "worker/model/tokenizer.h"
#include "worker/pipeline/checkpoint_dir.h"
#include "worker/pipeline/eval_task.h"
#include "worker/pipeline/hessian_blob.h"
#include "worker/quant/scalar_baselines.h"
#include "worker/pipeline/local_runner.h"

namespace vptq::pipeline {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

std::string NpmData(const std::string& package) {
  return (fs::path(model::SourceDir()) / "third_party/npm/node_modules/@stdlib" / package / "data")
      .string();
}

class PipelineE2ETest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { torch::set_num_threads(2); }
  void SetUp() override {
    absl::StatusOr<std::string> dir = model::EnsureStories15M();
    ASSERT_THAT(dir, IsOk());
    model_dir_ = *dir;
  }
  std::string model_dir_;
  model::testing::ScratchDir scratch_{"pipeline_e2e"};
};

TEST_F(PipelineE2ETest, CalibrationSequencesAreBosPlusRealText) {
  TextSetOptions o;
  o.paths = {NpmData("datasets-sotu")};
  o.num_sequences = 8;
  o.sequence_length = 64;
  o.seed = 3;
  VPTQ_ASSERT_OK_AND_ASSIGN(TokenSequences s, BuildTokenSequences(model_dir_, o));
  ASSERT_EQ(s.count(), 8);
  VPTQ_ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromJsonFile(model_dir_ + "/tokenizer.json"));
  std::string corpus;
  VPTQ_ASSERT_OK_AND_ASSIGN(std::vector<std::string> files, ListTextFiles(o.paths));
  EXPECT_EQ(files.size(), 233u);  // the .txt speeches, not the .json copies
  for (const std::string& f : files) corpus += *ReadFile(f);
  for (int64_t i = 0; i < s.count(); ++i) {
    EXPECT_EQ(s.Row(i)[0], 1);  // <s>
    std::string text = tok->Decode(s.Row(i).subspan(1));
    text = text.substr(text.find_first_not_of(' '));
    EXPECT_NE(corpus.find(text.substr(0, 30)), std::string::npos) << text;
  }
  // Asking for more than the speeches hold is a clear error.
  o.num_sequences = 100000;
  o.sequence_length = 256;
  EXPECT_THAT(BuildTokenSequences(model_dir_, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tokens")));
}

TEST_F(PipelineE2ETest, TwoBitJobEndToEndAndResumed) {
  LocalJob job;
  job.model_dir = model_dir_;
  job.calibration.paths = {NpmData("datasets-sotu")};
  job.calibration.num_sequences = 16;
  job.calibration.sequence_length = 128;
  job.num_shards = 2;
  job.quant.bits = 2;
  job.quant.output_dtype = "fp16";
  job.quant.kmeans_iters = 8;
  EvalOptions eval;
  eval.text.paths = {NpmData("datasets-moby-dick") + "/data.txt"};
  eval.text.num_sequences = 4;
  eval.text.sequence_length = 128;
  job.eval = eval;
  job.output_dir = scratch_.Sub("stories15M-2bit");
  job.state_dir = scratch_.Sub("state");
  VPTQ_ASSERT_OK_AND_ASSIGN(LocalJobResult r, RunLocalJob(job));

  ASSERT_TRUE(r.quality.has_value());
  const QualityReport& q = *r.quality;
  EXPECT_EQ(q.quantized_linears, 42);
  EXPECT_LE(q.bpw_linears, 2.0);
  EXPECT_GT(q.bpw_linears, 1.0);
  EXPECT_GT(q.kl_divergence, 0);
  EXPECT_TRUE(std::isfinite(q.perplexity));
  EXPECT_GT(q.top1_agreement, 0.1);
  EXPECT_GT(q.perplexity_original, 10);

  // Round-to-nearest at 2 bits (group 128, more bits per weight than VPTQ
  // here) on the same evaluation sequences does worse.
  VPTQ_ASSERT_OK_AND_ASSIGN(auto reader, model::ModelReader::Open(model_dir_));
  std::map<std::string, torch::Tensor> rtn;
  for (const LinearSpec& l : reader->layout().linears) {
    VPTQ_ASSERT_OK_AND_ASSIGN(DecodedHessian h,
                              DecodeFinalizedHessian(r.hessians.at(LinearInputKey(l)), l.name));
    VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor w, reader->Load(l.name + ".weight"));
    quant::ScalarQuantOptions o;
    o.bits = 2;
    VPTQ_ASSERT_OK_AND_ASSIGN(quant::ScalarQuantResult s, quant::QuantizeRtn(w, h.hessian.h, o));
    rtn[l.name] = s.weight;
  }
  TextSetOptions text = eval.text;
  text.allow_fewer = true;
  VPTQ_ASSERT_OK_AND_ASSIGN(TokenSequences seqs, BuildTokenSequences(model_dir_, text));
  ReaderEvalModel original(*reader, nullptr, torch::kCPU);
  ReaderEvalModel rounded(*reader, model::OverrideFromMap(rtn), torch::kCPU);
  VPTQ_ASSERT_OK_AND_ASSIGN(QualityReport rq, CompareModels(original, rounded, seqs, {}));
  EXPECT_EQ(rq.perplexity_original, q.perplexity_original);
  EXPECT_LT(q.kl_divergence, rq.kl_divergence);
  EXPECT_LT(q.perplexity, rq.perplexity);

  VPTQ_ASSERT_OK_AND_ASSIGN(BlobMap written, ReadCheckpointDir(job.output_dir));
  EXPECT_EQ(written, r.checkpoint.files);
  EXPECT_EQ(written.at("tokenizer.json"), *ReadFile(model_dir_ + "/tokenizer.json"));
  const auto config = nlohmann::json::parse(written.at("config.json"));
  EXPECT_EQ(config["quantization_config"]["config_for_layers"].size(), 42u);
  EXPECT_EQ(config["architectures"][0], "LlamaForCausalLM");

  // Lose two linears' outputs: the rerun redoes only those, same bytes,
  // and the finished output directory is left as it is.
  fs::remove_all(job.state_dir + "/quantize%2Fmodel.layers.5.mlp.down_proj");
  fs::remove_all(job.state_dir + "/quantize%2Fmodel.layers.0.self_attn.q_proj");
  job.eval.reset();
  VPTQ_ASSERT_OK_AND_ASSIGN(LocalJobResult again, RunLocalJob(job));
  EXPECT_EQ(again.tasks_run, 2);
  EXPECT_EQ(again.checkpoint.files, r.checkpoint.files);
}

}  // namespace
}  // namespace vptq::pipeline
