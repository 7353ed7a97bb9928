#include "worker/model/llama_model.h"

#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/status.h"
#include "common/status_matchers.h"
#include "worker/model/model_test_util.h"

namespace vptq::model {
namespace {

using ::testing::HasSubstr;
using ::vptq::testing::StatusIs;
using testing::NaiveLogits;
using testing::RandomIds;
using testing::ScratchDir;
using testing::SyntheticModel;
using testing::SyntheticModelOptions;
using testing::WriteSyntheticModel;

// Batched float32 forward vs the float64 token-by-token reference, on logits
// of magnitude ~1-10.
constexpr double kLogitTolerance = 1e-4;

double MaxDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// Our forward on `ids` (batch, L) against the reference row by row.
void ExpectMatchesNaive(const std::string& dir, const SyntheticModel& m, const torch::Tensor& ids,
                        const ForwardOptions& options = {}) {
  VPTQ_ASSERT_OK_AND_ASSIGN(auto reader, ModelReader::Open(dir));
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor logits, ForwardLogits(*reader, ids, options));
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{ids.size(0), ids.size(1), m.config.vocab_size}));
  EXPECT_EQ(logits.scalar_type(), torch::kFloat);
  for (int64_t b = 0; b < ids.size(0); ++b) {
    const torch::Tensor row = ids[b].contiguous();
    std::vector<int64_t> v(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
    EXPECT_LT(MaxDiff(logits[b], NaiveLogits(m.config, m.tensors, v)), kLogitTolerance)
        << "sequence " << b;
  }
}

class LlamaModelTest : public ::testing::Test {
 protected:
  // One thread: on a busy 2-core machine OpenMP spinning makes small
  // elementwise ops 100x slower with two.
  void SetUp() override { torch::set_num_threads(1); }
};

TEST_F(LlamaModelTest, LlamaGqaMatchesReference) {
  ScratchDir dir("llama_gqa");
  SyntheticModelOptions o;  // 4 heads over 2 kv heads
  VPTQ_ASSERT_OK_AND_ASSIGN(SyntheticModel m, WriteSyntheticModel(dir.path(), o));
  ExpectMatchesNaive(dir.path(), m, RandomIds(3, 17, o.vocab, 1));
}

TEST_F(LlamaModelTest, TiedMultiHeadModelMatchesReference) {
  ScratchDir dir("llama_tied");
  SyntheticModelOptions o;
  o.kv_heads = 4;
  o.tie_embeddings = true;
  o.layers = 3;
  VPTQ_ASSERT_OK_AND_ASSIGN(SyntheticModel m, WriteSyntheticModel(dir.path(), o));
  ExpectMatchesNaive(dir.path(), m, RandomIds(2, 20, o.vocab, 2));
}

TEST_F(LlamaModelTest, Qwen2BiasesMatchReference) {
  ScratchDir dir("qwen2");
  SyntheticModelOptions o;
  o.architecture = "Qwen2ForCausalLM";
  o.heads = 8;
  o.kv_heads = 2;
  o.hidden = 64;
  o.rope_theta = 1000000.0;
  VPTQ_ASSERT_OK_AND_ASSIGN(SyntheticModel m, WriteSyntheticModel(dir.path(), o));
  ASSERT_TRUE(m.config.qkv_bias);
  ASSERT_EQ(m.tensors.count("model.layers.0.self_attn.k_proj.bias"), 1u);
  ExpectMatchesNaive(dir.path(), m, RandomIds(2, 12, o.vocab, 3));
}

TEST_F(LlamaModelTest, LlamaAttentionBiasAndMistralWindowMatchReference) {
  {
    ScratchDir dir("llama_bias");
    SyntheticModelOptions o;
    o.attention_bias = true;
    VPTQ_ASSERT_OK_AND_ASSIGN(SyntheticModel m, WriteSyntheticModel(dir.path(), o));
    ASSERT_EQ(m.tensors.count("model.layers.1.self_attn.o_proj.bias"), 1u);
    ExpectMatchesNaive(dir.path(), m, RandomIds(1, 9, o.vocab, 4));
  }
  {
    ScratchDir dir("mistral");
    SyntheticModelOptions o;
    o.architecture = "MistralForCausalLM";
    o.sliding_window = 5;  // shorter than the sequence, so it matters
    VPTQ_ASSERT_OK_AND_ASSIGN(SyntheticModel m, WriteSyntheticModel(dir.path(), o));
    ExpectMatchesNaive(dir.path(), m, RandomIds(2, 16, o.vocab, 5));
  }
}

TEST_F(LlamaModelTest, ShardedBf16ModelRunsInFloat32) {
  ScratchDir dir("bf16");
  SyntheticModelOptions o;
  o.dtype = DType::kBF16;
  o.shards = 2;
  VPTQ_ASSERT_OK_AND_ASSIGN(SyntheticModel m, WriteSyntheticModel(dir.path(), o));
  ExpectMatchesNaive(dir.path(), m, RandomIds(2, 10, o.vocab, 6));
}

TEST_F(LlamaModelTest, ChunkedBatchesAndStreamingPiecesAgree) {
  ScratchDir dir("chunks");
  SyntheticModelOptions o;
  o.layers = 3;
  VPTQ_ASSERT_OK_AND_ASSIGN(SyntheticModel m, WriteSyntheticModel(dir.path(), o));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto reader, ModelReader::Open(dir.path()));
  const torch::Tensor ids = RandomIds(5, 11, o.vocab, 7);
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor whole, ForwardLogits(*reader, ids, {}));
  ForwardOptions chunked;
  chunked.max_batch = 2;
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor parts, ForwardLogits(*reader, ids, chunked));
  EXPECT_LT(MaxDiff(whole, parts), 1e-5);

  // Layers run in two calls, as a Hessian task resuming at a layer would.
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor h, EmbedTokens(*reader, ids, {}));
  VPTQ_ASSERT_OK_AND_ASSIGN(h, RunDecoderLayers(*reader, h, {}, 0, 1));
  VPTQ_ASSERT_OK_AND_ASSIGN(h, RunDecoderLayers(*reader, h, {}, 1, 3));
  VPTQ_ASSERT_OK_AND_ASSIGN(OutputHead head, OutputHead::Load(*reader, {}));
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor logits, head.Logits(h));
  EXPECT_LT(MaxDiff(whole, logits), 1e-5);
  EXPECT_THAT(RunDecoderLayers(*reader, h, {}, 2, 4), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(LlamaModelTest, HookSeesEachDistinctLinearInputOnceInOrder) {
  ScratchDir dir("hook");
  SyntheticModelOptions o;
  VPTQ_ASSERT_OK_AND_ASSIGN(SyntheticModel m, WriteSyntheticModel(dir.path(), o));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto reader, ModelReader::Open(dir.path()));
  const torch::Tensor ids = RandomIds(2, 7, o.vocab, 8);
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor embedded, EmbedTokens(*reader, ids, {}));

  std::vector<std::pair<int64_t, LinearInput>> order;
  std::map<LinearInput, torch::Tensor> layer0;
  ForwardOptions opts;
  opts.hook = [&](int64_t layer, LinearInput input, const torch::Tensor& x) {
    order.emplace_back(layer, input);
    if (layer == 0) layer0[input] = x.clone();
    return absl::OkStatus();
  };
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor out, RunDecoderLayers(*reader, embedded, opts, 0, 1));
  const std::vector<std::pair<int64_t, LinearInput>> expected = {
      {0, LinearInput::kAttnIn}, {0, LinearInput::kAttnOut},
      {0, LinearInput::kMlpIn}, {0, LinearInput::kMlpAct}};
  EXPECT_EQ(order, expected);

  const HfModelConfig& c = m.config;
  EXPECT_EQ(layer0[LinearInput::kAttnIn].sizes(), (std::vector<int64_t>{2, 7, c.hidden_size}));
  EXPECT_EQ(layer0[LinearInput::kAttnOut].sizes(),
            (std::vector<int64_t>{2, 7, c.q_out_features()}));
  EXPECT_EQ(layer0[LinearInput::kMlpAct].sizes(),
            (std::vector<int64_t>{2, 7, c.intermediate_size}));
  // The inputs are the ones the layer really multiplies: rebuild its output
  // from them.
  auto W = [&](const std::string& s) { return m.tensors.at("model.layers.0." + s + ".weight"); };
  const torch::Tensor attn_in_expected =
      RmsNorm(embedded, m.tensors.at("model.layers.0.input_layernorm.weight"), c.rms_norm_eps);
  EXPECT_LT(MaxDiff(layer0[LinearInput::kAttnIn], attn_in_expected), 1e-6);
  const torch::Tensor h = embedded + torch::linear(layer0[LinearInput::kAttnOut], W("self_attn.o_proj"));
  EXPECT_LT(MaxDiff(layer0[LinearInput::kMlpIn],
                    RmsNorm(h, m.tensors.at("model.layers.0.post_attention_layernorm.weight"),
                            c.rms_norm_eps)),
            1e-5);
  const torch::Tensor mlp_in = layer0[LinearInput::kMlpIn];
  EXPECT_LT(MaxDiff(layer0[LinearInput::kMlpAct],
                    SwiGlu(torch::linear(mlp_in, W("mlp.gate_proj")),
                           torch::linear(mlp_in, W("mlp.up_proj")))),
            1e-5);
  EXPECT_LT(MaxDiff(out, h + torch::linear(layer0[LinearInput::kMlpAct], W("mlp.down_proj"))),
            1e-5);

  // A failing hook stops the forward with its own status.
  opts.hook = [](int64_t layer, LinearInput input, const torch::Tensor&) {
    if (input == LinearInput::kMlpIn) return absl::ResourceExhaustedError("hessian store full");
    return absl::OkStatus();
  };
  EXPECT_THAT(RunDecoderLayers(*reader, embedded, opts),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("hessian store full")));
}

TEST_F(LlamaModelTest, WeightOverrideReplacesDenseWeights) {
  ScratchDir dir("override");
  SyntheticModelOptions o;
  VPTQ_ASSERT_OK_AND_ASSIGN(SyntheticModel m, WriteSyntheticModel(dir.path(), o));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto reader, ModelReader::Open(dir.path()));
  const torch::Tensor ids = RandomIds(2, 9, o.vocab, 9);
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor base, ForwardLogits(*reader, ids, {}));

  // Serving the stored weights back changes nothing.
  ForwardOptions same;
  same.weight_override = OverrideFromMap(
      {{"model.layers.1.mlp.up_proj", m.tensors.at("model.layers.1.mlp.up_proj.weight")}});
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor again, ForwardLogits(*reader, ids, same));
  EXPECT_TRUE(torch::equal(base, again));

  // A perturbed weight gives what the reference gives with that weight.
  SyntheticModel changed = m;
  torch::Tensor w = m.tensors.at("model.layers.0.self_attn.v_proj.weight") * 0.5;
  changed.tensors["model.layers.0.self_attn.v_proj.weight"] = w;
  torch::Tensor head = m.tensors.at("lm_head.weight").flip(0);
  changed.tensors["lm_head.weight"] = head;
  ForwardOptions replaced;
  replaced.weight_override =
      OverrideFromMap({{"model.layers.0.self_attn.v_proj", w}, {"lm_head", head}});
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor logits, ForwardLogits(*reader, ids, replaced));
  EXPECT_GT(MaxDiff(logits, base), 0.1);
  std::vector<int64_t> row(ids[0].data_ptr<int64_t>(), ids[0].data_ptr<int64_t>() + ids.size(1));
  EXPECT_LT(MaxDiff(logits[0], NaiveLogits(m.config, changed.tensors, row)), kLogitTolerance);

  ForwardOptions bad;
  bad.weight_override = OverrideFromMap({{"model.layers.0.mlp.down_proj", torch::zeros({3, 3})}});
  EXPECT_THAT(ForwardLogits(*reader, ids, bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model.layers.0.mlp.down_proj")));
  ForwardOptions failing;
  failing.weight_override =
      [](const std::string& name) -> absl::StatusOr<std::optional<torch::Tensor>> {
    return absl::NotFoundError("no packed linear " + name);
  };
  EXPECT_THAT(ForwardLogits(*reader, ids, failing), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(LlamaModelTest, DecoderLayerReplaceWeightChecksShape) {
  ScratchDir dir("replace");
  VPTQ_ASSERT_OK_AND_ASSIGN(SyntheticModel m, WriteSyntheticModel(dir.path(), {}));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto reader, ModelReader::Open(dir.path()));
  VPTQ_ASSERT_OK_AND_ASSIGN(DecoderLayer layer, DecoderLayer::Load(*reader, 1, {}));
  EXPECT_THAT(layer.ReplaceWeight(LinearKind::kK, torch::zeros({32, 32})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("k_proj")));
  ASSERT_THAT(layer.ReplaceWeight(LinearKind::kK, torch::zeros({16, 32}, torch::kDouble)),
              ::vptq::testing::IsOk());
  EXPECT_EQ(layer.weights().W(LinearKind::kK).scalar_type(), torch::kFloat);
  EXPECT_EQ(layer.weights().W(LinearKind::kK).abs().sum().item<double>(), 0.0);
  EXPECT_THAT(DecoderLayer::Load(*reader, 2, {}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(LlamaModelTest, BadTokenIdsAreRejected) {
  ScratchDir dir("ids");
  SyntheticModelOptions o;
  VPTQ_ASSERT_OK_AND_ASSIGN(SyntheticModel m, WriteSyntheticModel(dir.path(), o));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto reader, ModelReader::Open(dir.path()));
  EXPECT_THAT(ForwardLogits(*reader, torch::full({1, 4}, o.vocab, torch::kLong), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vocabulary")));
  EXPECT_THAT(ForwardLogits(*reader, torch::full({1, 4}, -1, torch::kLong), {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ForwardLogits(*reader, torch::zeros({1, 4}, torch::kInt), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("int64")));
  EXPECT_THAT(ForwardLogits(*reader, torch::zeros({4}, torch::kLong), {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ForwardLogits(*reader, torch::zeros({1, o.max_positions + 1}, torch::kLong), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_position_embeddings")));
}

TEST_F(LlamaModelTest, NanWeightsPropagateRatherThanCrash) {
  ScratchDir dir("nan");
  SyntheticModelOptions o;
  VPTQ_ASSERT_OK_AND_ASSIGN(SyntheticModel m, WriteSyntheticModel(dir.path(), o));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto reader, ModelReader::Open(dir.path()));
  ForwardOptions opts;
  opts.weight_override = OverrideFromMap(
      {{"model.layers.0.mlp.up_proj", torch::full({o.intermediate, o.hidden}, NAN)}});
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor logits,
                            ForwardLogits(*reader, RandomIds(1, 4, o.vocab, 10), opts));
  EXPECT_TRUE(logits.isnan().any().item<bool>());
}

}  // namespace
}  // namespace vptq::model
