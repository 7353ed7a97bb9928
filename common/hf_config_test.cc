#include "common/hf_config.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "common/status_matchers.h"

namespace vptq {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

struct FakeTensor {
  std::string name;
  std::string dtype;  // "F32", "BF16", ...
  std::vector<int64_t> shape;
};

int64_t ElementSize(const std::string& dtype) {
  return dtype == "F32" ? 4 : dtype == "I8" ? 1 : 2;
}

// Writes a valid safetensors header and extends the file to its full size
// without writing data (a sparse file): headers are all the layout reads.
void WriteHeaderOnly(const fs::path& path, const std::vector<FakeTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  int64_t offset = 0;
  for (const FakeTensor& t : tensors) {
    int64_t n = ElementSize(t.dtype);
    for (int64_t d : t.shape) n *= d;
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');
  std::ofstream out(path, std::ios::binary);
  uint64_t len = text.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(8 + text.size() + offset)), 0);
}

nlohmann::json LlamaConfigJson(int64_t d, int64_t inter, int64_t layers, int64_t heads,
                               int64_t kv_heads, int64_t vocab) {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"hidden_size", d},
          {"intermediate_size", inter},
          {"num_hidden_layers", layers},
          {"num_attention_heads", heads},
          {"num_key_value_heads", kv_heads},
          {"vocab_size", vocab},
          {"max_position_embeddings", 4096},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 500000.0},
          {"hidden_act", "silu"},
          {"tie_word_embeddings", false},
          {"torch_dtype", "bfloat16"},
          {"bos_token_id", 1},
          {"eos_token_id", 2}};
}

// Tensors of a Llama-family model with the given config, in `dtype`.
std::vector<FakeTensor> ModelTensors(const HfModelConfig& c, const std::string& dtype,
                                     int64_t first_layer, int64_t end_layer, bool with_globals) {
  std::vector<FakeTensor> t;
  const int64_t d = c.hidden_size, q = c.q_out_features(), kv = c.kv_out_features();
  const int64_t inter = c.intermediate_size;
  if (with_globals) {
    t.push_back({"model.embed_tokens.weight", dtype, {c.vocab_size, d}});
    t.push_back({"model.norm.weight", dtype, {d}});
    if (!c.tie_word_embeddings) t.push_back({"lm_head.weight", dtype, {c.vocab_size, d}});
  }
  for (int64_t l = first_layer; l < end_layer; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    t.push_back({p + "input_layernorm.weight", dtype, {d}});
    t.push_back({p + "post_attention_layernorm.weight", dtype, {d}});
    t.push_back({p + "self_attn.q_proj.weight", dtype, {q, d}});
    t.push_back({p + "self_attn.k_proj.weight", dtype, {kv, d}});
    t.push_back({p + "self_attn.v_proj.weight", dtype, {kv, d}});
    t.push_back({p + "self_attn.o_proj.weight", dtype, {d, q}});
    if (c.qkv_bias) {
      t.push_back({p + "self_attn.q_proj.bias", dtype, {q}});
      t.push_back({p + "self_attn.k_proj.bias", dtype, {kv}});
      t.push_back({p + "self_attn.v_proj.bias", dtype, {kv}});
    }
    t.push_back({p + "mlp.gate_proj.weight", dtype, {inter, d}});
    t.push_back({p + "mlp.up_proj.weight", dtype, {inter, d}});
    t.push_back({p + "mlp.down_proj.weight", dtype, {d, inter}});
  }
  return t;
}

class HfConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::path(::testing::TempDir()) / absl::StrCat("hf_config_test_", rd(), "_", ::getpid());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void WriteConfig(const nlohmann::json& j) {
    std::ofstream(dir_ / "config.json") << j.dump(2);
  }
  fs::path dir_;
};

TEST(ParseHfConfig, LlamaFieldsAndDefaults) {
  nlohmann::json j = LlamaConfigJson(4096, 11008, 32, 32, 32, 32000);
  j.erase("num_key_value_heads");
  j.erase("rope_theta");
  j.erase("rms_norm_eps");
  VPTQ_ASSERT_OK_AND_ASSIGN(HfModelConfig c, ParseHfConfig(j.dump()));
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.intermediate_size, 11008);
  EXPECT_EQ(c.num_hidden_layers, 32);
  EXPECT_EQ(c.num_key_value_heads, 32);  // defaults to the head count
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_EQ(c.rope_scaling.type, "default");
  ASSERT_TRUE(c.bos_token_id.has_value());
  EXPECT_EQ(*c.bos_token_id, 1);
  EXPECT_THAT(c.eos_token_ids, ::testing::ElementsAre(2));
}

TEST(ParseHfConfig, Llama3GqaRopeScalingAndEosList) {
  nlohmann::json j = LlamaConfigJson(8192, 28672, 80, 64, 8, 128256);
  j["eos_token_id"] = {128001, 128008, 128009};
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  j.erase("torch_dtype");
  j["dtype"] = "bfloat16";  // newer transformers spell it so
  VPTQ_ASSERT_OK_AND_ASSIGN(HfModelConfig c, ParseHfConfig(j.dump()));
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.kv_out_features(), 1024);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_THAT(c.eos_token_ids, ::testing::ElementsAre(128001, 128008, 128009));
  EXPECT_EQ(c.torch_dtype, "bfloat16");
}

TEST(ParseHfConfig, Qwen2HasQkvBiasAndOptionalWindow) {
  nlohmann::json j = LlamaConfigJson(896, 4864, 24, 14, 2, 151936);
  j["architectures"] = {"Qwen2ForCausalLM"};
  j["sliding_window"] = 32768;
  j["use_sliding_window"] = false;
  j["tie_word_embeddings"] = true;
  VPTQ_ASSERT_OK_AND_ASSIGN(HfModelConfig c, ParseHfConfig(j.dump()));
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.sliding_window.has_value());
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.head_dim, 64);

  j["use_sliding_window"] = true;
  VPTQ_ASSERT_OK_AND_ASSIGN(HfModelConfig windowed, ParseHfConfig(j.dump()));
  EXPECT_EQ(windowed.sliding_window.value_or(0), 32768);
}

TEST(ParseHfConfig, MistralSlidingWindowAndExplicitHeadDim) {
  nlohmann::json j = LlamaConfigJson(5120, 14336, 40, 32, 8, 131072);
  j["architectures"] = {"MistralForCausalLM"};
  j["head_dim"] = 128;  // 5120 / 32 = 160: head_dim is independent here
  j["sliding_window"] = 4096;
  VPTQ_ASSERT_OK_AND_ASSIGN(HfModelConfig c, ParseHfConfig(j.dump()));
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.q_out_features(), 4096);
  EXPECT_EQ(c.sliding_window.value_or(0), 4096);
}

TEST(ParseHfConfig, UnsupportedArchitectureIsFailedPreconditionNamingIt) {
  nlohmann::json j = LlamaConfigJson(768, 3072, 12, 12, 12, 50257);
  j["architectures"] = {"GPT2LMHeadModel"};
  EXPECT_THAT(ParseHfConfig(j.dump()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("GPT2LMHeadModel")));
  j["architectures"] = {"LlamaForCausalLM"};
  j["hidden_act"] = "gelu";
  EXPECT_THAT(ParseHfConfig(j.dump()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("gelu")));
  j["hidden_act"] = "silu";
  j["torch_dtype"] = "float8_e4m3fn";
  EXPECT_THAT(ParseHfConfig(j.dump()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("float8_e4m3fn")));
}

TEST(ParseHfConfig, MalformedInputsAreInvalidArgumentNamingTheField) {
  EXPECT_THAT(ParseHfConfig("{not json", "x/config.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x/config.json")));
  EXPECT_THAT(ParseHfConfig("[1, 2]"), StatusIs(absl::StatusCode::kInvalidArgument));
  nlohmann::json base = LlamaConfigJson(64, 128, 2, 4, 2, 100);

  nlohmann::json j = base;
  j.erase("architectures");
  EXPECT_THAT(ParseHfConfig(j.dump()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("architectures")));
  j = base;
  j.erase("hidden_size");
  EXPECT_THAT(ParseHfConfig(j.dump()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hidden_size")));
  j = base;
  j["num_hidden_layers"] = "2";
  EXPECT_THAT(ParseHfConfig(j.dump()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_hidden_layers")));
  j = base;
  j["num_key_value_heads"] = 3;  // does not divide 4 heads
  EXPECT_THAT(ParseHfConfig(j.dump()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_key_value_heads")));
  j = base;
  j["vocab_size"] = -5;
  EXPECT_THAT(ParseHfConfig(j.dump()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vocab_size")));
  j = base;
  j["rms_norm_eps"] = 0.0;
  EXPECT_THAT(ParseHfConfig(j.dump()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rms_norm_eps")));
  j = base;
  j["tie_word_embeddings"] = 1;
  EXPECT_THAT(ParseHfConfig(j.dump()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tie_word_embeddings")));
  j = base;
  j["hidden_size"] = 66;  // not a multiple of 4 heads, no head_dim
  EXPECT_THAT(ParseHfConfig(j.dump()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hidden_size")));
}

TEST(LinearNames, KeysShareInputsAsTheForwardDoes) {
  EXPECT_EQ(LinearName(3, LinearKind::kQ), "model.layers.3.self_attn.q_proj");
  EXPECT_EQ(LinearName(0, LinearKind::kDown), "model.layers.0.mlp.down_proj");
  EXPECT_EQ(InputOf(LinearKind::kQ), InputOf(LinearKind::kV));
  EXPECT_EQ(InputOf(LinearKind::kGate), InputOf(LinearKind::kUp));
  EXPECT_NE(InputOf(LinearKind::kO), InputOf(LinearKind::kQ));
  EXPECT_NE(InputOf(LinearKind::kDown), InputOf(LinearKind::kUp));
  EXPECT_EQ(LinearInputKey(3, LinearInput::kAttnIn), "model.layers.3.qkv");
  EXPECT_EQ(LinearInputKey(3, LinearInput::kMlpAct), "model.layers.3.down");
}

TEST_F(HfConfigTest, ReadsSingleFileLayoutAndListsLinears) {
  nlohmann::json j = LlamaConfigJson(64, 160, 2, 4, 2, 100);
  j["torch_dtype"] = "float16";
  WriteConfig(j);
  VPTQ_ASSERT_OK_AND_ASSIGN(HfModelConfig c, ParseHfConfig(j.dump()));
  WriteHeaderOnly(dir_ / "model.safetensors", ModelTensors(c, "F16", 0, 2, true));

  VPTQ_ASSERT_OK_AND_ASSIGN(ModelLayout m, ReadModelLayout(dir_.string()));
  EXPECT_FALSE(m.weights.sharded);
  EXPECT_EQ(m.dtype, DType::kF16);
  ASSERT_EQ(m.linears.size(), 14u);
  const LinearSpec& k = m.linears[1];
  EXPECT_EQ(k.name, "model.layers.0.self_attn.k_proj");
  EXPECT_EQ(k.out_features, 32);  // 2 kv heads x 16
  EXPECT_EQ(k.in_features, 64);
  EXPECT_EQ(LinearInputKey(k), "model.layers.0.qkv");
  const LinearSpec* down = m.FindLinear("model.layers.1.mlp.down_proj");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->out_features, 64);
  EXPECT_EQ(down->in_features, 160);
  EXPECT_EQ(m.LayerLinears(1).size(), 7u);
  EXPECT_EQ(m.lm_head_tensor(), "lm_head.weight");
  // 2 x (embed + lm_head) + norms + 2 layers of linears, 2 bytes each.
  const int64_t params = 2 * 100 * 64 + 64 + 2 * (2 * 64 + 64 * 64 * 2 + 32 * 64 * 2 + 3 * 160 * 64);
  EXPECT_EQ(m.weights.total_bytes(), 2 * params);
}

TEST_F(HfConfigTest, TiedEmbeddingsNeedNoLmHead) {
  nlohmann::json j = LlamaConfigJson(32, 64, 1, 2, 2, 50);
  j["tie_word_embeddings"] = true;
  WriteConfig(j);
  VPTQ_ASSERT_OK_AND_ASSIGN(HfModelConfig c, ParseHfConfig(j.dump()));
  WriteHeaderOnly(dir_ / "model.safetensors", ModelTensors(c, "F32", 0, 1, true));
  VPTQ_ASSERT_OK_AND_ASSIGN(ModelLayout m, ReadModelLayout(dir_.string()));
  EXPECT_EQ(m.lm_head_tensor(), "model.embed_tokens.weight");
}

TEST_F(HfConfigTest, Qwen2BiasesAreRequired) {
  nlohmann::json j = LlamaConfigJson(32, 64, 1, 4, 2, 50);
  j["architectures"] = {"Qwen2ForCausalLM"};
  WriteConfig(j);
  VPTQ_ASSERT_OK_AND_ASSIGN(HfModelConfig c, ParseHfConfig(j.dump()));
  WriteHeaderOnly(dir_ / "model.safetensors", ModelTensors(c, "BF16", 0, 1, true));
  VPTQ_ASSERT_OK_AND_ASSIGN(ModelLayout m, ReadModelLayout(dir_.string()));
  EXPECT_TRUE(m.linears[0].has_bias);   // q
  EXPECT_TRUE(m.linears[2].has_bias);   // v
  EXPECT_FALSE(m.linears[3].has_bias);  // o
  EXPECT_FALSE(m.linears[6].has_bias);  // down

  c.qkv_bias = false;  // weights without biases
  WriteHeaderOnly(dir_ / "model.safetensors", ModelTensors(c, "BF16", 0, 1, true));
  EXPECT_THAT(ReadModelLayout(dir_.string()),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("model.layers.0.self_attn.q_proj.bias")));
}

TEST_F(HfConfigTest, UnexpectedBiasIsRejected) {
  nlohmann::json j = LlamaConfigJson(32, 64, 1, 4, 2, 50);
  WriteConfig(j);
  VPTQ_ASSERT_OK_AND_ASSIGN(HfModelConfig c, ParseHfConfig(j.dump()));
  c.qkv_bias = true;  // a Llama config without attention_bias, weights with q/k/v biases
  WriteHeaderOnly(dir_ / "model.safetensors", ModelTensors(c, "F32", 0, 1, true));
  EXPECT_THAT(ReadModelLayout(dir_.string()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("q_proj.bias")));
}

TEST_F(HfConfigTest, MissingAndMisshapenTensorsNameTensorAndFile) {
  nlohmann::json j = LlamaConfigJson(32, 64, 2, 4, 2, 50);
  WriteConfig(j);
  VPTQ_ASSERT_OK_AND_ASSIGN(HfModelConfig c, ParseHfConfig(j.dump()));
  std::vector<FakeTensor> tensors = ModelTensors(c, "F32", 0, 2, true);

  std::vector<FakeTensor> missing = tensors;
  std::erase_if(missing, [](const FakeTensor& t) { return t.name == "model.layers.1.mlp.up_proj.weight"; });
  WriteHeaderOnly(dir_ / "model.safetensors", missing);
  EXPECT_THAT(ReadModelLayout(dir_.string()),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("model.layers.1.mlp.up_proj.weight")));

  std::vector<FakeTensor> wrong = tensors;
  for (FakeTensor& t : wrong) {
    if (t.name == "model.layers.0.self_attn.k_proj.weight") t.shape = {32, 32};
  }
  WriteHeaderOnly(dir_ / "model.safetensors", wrong);
  EXPECT_THAT(ReadModelLayout(dir_.string()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("model.layers.0.self_attn.k_proj.weight"),
                                        HasSubstr("model.safetensors"), HasSubstr("[16, 32]"))));

  std::vector<FakeTensor> int8 = tensors;
  int8[0].dtype = "I8";
  WriteHeaderOnly(dir_ / "model.safetensors", int8);
  EXPECT_FALSE(ReadModelLayout(dir_.string()).ok());
}

TEST_F(HfConfigTest, MissingFilesAreNotFound) {
  EXPECT_THAT(ReadModelLayout(dir_.string()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("config.json")));
  WriteConfig(LlamaConfigJson(32, 64, 1, 2, 2, 50));
  EXPECT_THAT(ReadModelLayout(dir_.string()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("model.safetensors")));
}

TEST_F(HfConfigTest, CorruptHeaderIsAnError) {
  WriteConfig(LlamaConfigJson(32, 64, 1, 2, 2, 50));
  std::ofstream(dir_ / "model.safetensors") << "this is not a safetensors file at all";
  auto layout = ReadModelLayout(dir_.string());
  ASSERT_FALSE(layout.ok());
  EXPECT_THAT(std::string(layout.status().message()), HasSubstr("model.safetensors"));
}

TEST_F(HfConfigTest, ShardIndexMustAgreeWithShardsAndStayInside) {
  nlohmann::json j = LlamaConfigJson(32, 64, 2, 4, 2, 50);
  WriteConfig(j);
  VPTQ_ASSERT_OK_AND_ASSIGN(HfModelConfig c, ParseHfConfig(j.dump()));
  const std::string s1 = "model-00001-of-00002.safetensors";
  const std::string s2 = "model-00002-of-00002.safetensors";
  auto part1 = ModelTensors(c, "BF16", 0, 1, true);
  auto part2 = ModelTensors(c, "BF16", 1, 2, false);
  WriteHeaderOnly(dir_ / s1, part1);
  WriteHeaderOnly(dir_ / s2, part2);
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  for (const auto& t : part1) index["weight_map"][t.name] = s1;
  for (const auto& t : part2) index["weight_map"][t.name] = s2;
  std::ofstream(dir_ / "model.safetensors.index.json") << index.dump();

  VPTQ_ASSERT_OK_AND_ASSIGN(ModelLayout m, ReadModelLayout(dir_.string()));
  EXPECT_TRUE(m.weights.sharded);
  EXPECT_THAT(m.weights.files, ::testing::ElementsAre(s1, s2));
  EXPECT_EQ(m.weights.Find("model.layers.1.mlp.down_proj.weight")->file, s2);
  EXPECT_EQ(m.linears.size(), 14u);

  nlohmann::json lying = index;
  lying["weight_map"]["model.layers.1.mlp.down_proj.weight"] = s1;
  std::ofstream(dir_ / "model.safetensors.index.json") << lying.dump();
  EXPECT_THAT(ReadModelLayout(dir_.string()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("model.layers.1.mlp.down_proj.weight")));

  nlohmann::json escaping = index;
  escaping["weight_map"]["model.norm.weight"] = "../../etc/passwd";
  std::ofstream(dir_ / "model.safetensors.index.json") << escaping.dump();
  EXPECT_THAT(ReadModelLayout(dir_.string()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("../../etc/passwd")));

  fs::remove(dir_ / s2);
  std::ofstream(dir_ / "model.safetensors.index.json") << index.dump();
  EXPECT_THAT(ReadModelLayout(dir_.string()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(s2)));

  std::ofstream(dir_ / "model.safetensors.index.json") << "{\"weight_map\": 3}";
  EXPECT_THAT(ReadModelLayout(dir_.string()), StatusIs(absl::StatusCode::kInvalidArgument));
}

// A Llama-2-70B-shaped folder (15 sparse shards, ~138 GB of bf16 weights) is
// planned from headers alone.
TEST_F(HfConfigTest, Plans70BFromHeadersOnly) {
  nlohmann::json j = LlamaConfigJson(8192, 28672, 80, 64, 8, 32000);
  WriteConfig(j);
  VPTQ_ASSERT_OK_AND_ASSIGN(HfModelConfig c, ParseHfConfig(j.dump()));
  constexpr int kShards = 15;
  nlohmann::json index = {{"weight_map", nlohmann::json::object()}};
  for (int s = 0; s < kShards; ++s) {
    const std::string name = absl::StrFormat("model-%05d-of-%05d.safetensors", s + 1, kShards);
    auto part = ModelTensors(c, "BF16", 80 * s / kShards, 80 * (s + 1) / kShards, s == 0);
    WriteHeaderOnly(dir_ / name, part);
    for (const auto& t : part) index["weight_map"][t.name] = name;
  }
  std::ofstream(dir_ / "model.safetensors.index.json") << index.dump();

  VPTQ_ASSERT_OK_AND_ASSIGN(ModelLayout m, ReadModelLayout(dir_.string()));
  EXPECT_EQ(m.linears.size(), 80u * 7u);
  EXPECT_EQ(m.weights.files.size(), static_cast<size_t>(kShards));
  EXPECT_GT(m.weights.total_bytes(), 130'000'000'000LL);
  const LinearSpec* k = m.FindLinear("model.layers.79.self_attn.k_proj");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->out_features, 1024);
  EXPECT_EQ(k->in_features, 8192);
  EXPECT_EQ(k->dtype, DType::kBF16);
}

}  // namespace
}  // namespace vptq
