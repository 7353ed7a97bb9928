// What an HF model directory holds, read without touching tensor data:
// config.json (Llama-family architectures only) and the safetensors layout
// (one model.safetensors, or shards listed by model.safetensors.index.json),
// from which the decoder linears to quantize are listed with their shapes and
// shared inputs. Torch-free: the coordinator plans jobs with it.
//
// Contract: ReadModelLayout() opens config.json and every safetensors header
// (headers only; tensor bytes are never read, so a 70B model is planned in
// milliseconds on a laptop) and checks that every tensor the Llama forward
// needs is present with the shape config.json implies. Errors:
//   FAILED_PRECONDITION  architecture other than Llama/Mistral/Qwen2, an
//                        unsupported activation or tensor dtype;
//   INVALID_ARGUMENT     malformed config.json or index, a shape that does not
//                        match config.json, a shard name escaping the folder;
//   NOT_FOUND            config.json, a shard or a required tensor missing.
// Each message names the field, tensor and file. The result is a plain value,
// safe to copy and share between threads.
//
//   VPTQ_ASSIGN_OR_RETURN(ModelLayout m, ReadModelLayout("/models/llama-7b"));
//   for (const LinearSpec& l : m.linears)   // 7 per layer, in forward order
//     Plan(l.name, l.out_features, l.in_features, LinearInputKey(l));
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/safetensors.h"

namespace vptq {

// Rope scaling as config.json writes it; type "default" when absent.
struct RopeScaling {
  std::string type = "default";  // default | linear | llama3 (others rejected by the forward)
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 0;
};

struct HfModelConfig {
  std::string architecture;  // e.g. "LlamaForCausalLM"
  std::string model_type;    // e.g. "llama"
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // = num_attention_heads when absent
  int64_t head_dim = 0;             // = hidden_size / num_attention_heads when absent
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v/o biases (Llama "attention_bias")
  bool qkv_bias = false;        // q/k/v biases only (Qwen2)
  bool mlp_bias = false;        // gate/up/down biases (Llama "mlp_bias")
  std::optional<int64_t> sliding_window;  // Mistral / Qwen2 with use_sliding_window
  std::string torch_dtype;                // "float32" | "float16" | "bfloat16" | "" (absent)
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // a list in Llama-3 configs

  int64_t q_out_features() const { return num_attention_heads * head_dim; }
  int64_t kv_out_features() const { return num_key_value_heads * head_dim; }
};

// Architectures the Llama-family forward implements.
bool IsSupportedArchitecture(std::string_view architecture);

// Parses the text of a config.json; `source` names it in errors.
absl::StatusOr<HfModelConfig> ParseHfConfig(std::string_view json_text,
                                            std::string_view source = "config.json");
// Reads <model_dir>/config.json.
absl::StatusOr<HfModelConfig> ReadHfConfig(const std::string& model_dir);

// One stored tensor: where it lives and what it is.
struct WeightInfo {
  std::string name;
  std::string file;  // shard file name relative to the model directory
  DType dtype;
  std::vector<int64_t> shape;
  int64_t numel() const;
  int64_t nbytes() const;
};

// Every tensor in a model directory, by name (headers only).
struct WeightLayout {
  std::vector<std::string> files;             // shard names, index order
  std::map<std::string, WeightInfo> tensors;  // by tensor name
  bool sharded = false;                       // via model.safetensors.index.json

  const WeightInfo* Find(std::string_view name) const;
  int64_t total_bytes() const;
};

// Reads model.safetensors, or the shards named in model.safetensors.index.json
// (the single file wins when both exist, as transformers does).
absl::StatusOr<WeightLayout> ReadWeightLayout(const std::string& model_dir);

// The seven decoder linears, in forward order within a layer.
enum class LinearKind { kQ, kK, kV, kO, kGate, kUp, kDown };
inline constexpr LinearKind kAllLinearKinds[] = {
    LinearKind::kQ,    LinearKind::kK,  LinearKind::kV,   LinearKind::kO,
    LinearKind::kGate, LinearKind::kUp, LinearKind::kDown};

// The distinct inputs of a layer's linears: q/k/v read the same normed hidden
// state, gate/up the same post-attention normed state; o and down their own.
// One Hessian per (layer, LinearInput).
enum class LinearInput { kAttnIn, kAttnOut, kMlpIn, kMlpAct };
inline constexpr LinearInput kAllLinearInputs[] = {
    LinearInput::kAttnIn, LinearInput::kAttnOut, LinearInput::kMlpIn,
    LinearInput::kMlpAct};

// "self_attn.q_proj", ..., "mlp.down_proj".
std::string_view LinearSuffix(LinearKind kind);
LinearInput InputOf(LinearKind kind);
// "q_proj+k_proj+v_proj" style short names: "qkv", "o", "gate_up", "down".
std::string_view LinearInputName(LinearInput input);
// "model.layers.<layer>.<suffix>" (no ".weight").
std::string LinearName(int64_t layer, LinearKind kind);

// (out_features, in_features) of a decoder linear under `config`.
std::pair<int64_t, int64_t> LinearShape(const HfModelConfig& config, LinearKind kind);
// Whether `config`'s architecture gives the linear a bias.
bool LinearHasBias(const HfModelConfig& config, LinearKind kind);

struct LinearSpec {
  std::string name;  // "model.layers.3.self_attn.q_proj"
  int64_t layer = 0;
  LinearKind kind = LinearKind::kQ;
  int64_t out_features = 0;  // M: rows of the weight
  int64_t in_features = 0;   // N: columns
  bool has_bias = false;
  DType dtype = DType::kF32;  // of the stored weight
  LinearInput input() const { return InputOf(kind); }
};

// Key of the Hessian a linear uses, shared by linears that read one input:
// "model.layers.3.qkv", "model.layers.3.o", "model.layers.3.gate_up",
// "model.layers.3.down".
std::string LinearInputKey(int64_t layer, LinearInput input);
std::string LinearInputKey(const LinearSpec& spec);

struct ModelLayout {
  std::string dir;
  HfModelConfig config;
  WeightLayout weights;
  std::vector<LinearSpec> linears;  // layer-major, kAllLinearKinds order
  DType dtype = DType::kF32;        // of the decoder weights

  // Linears of one layer (7 entries) in forward order.
  std::vector<const LinearSpec*> LayerLinears(int64_t layer) const;
  const LinearSpec* FindLinear(std::string_view name) const;
  // "lm_head.weight", or "model.embed_tokens.weight" when tied and absent.
  std::string lm_head_tensor() const;
};

// Config + weights + the validated list of decoder linears.
absl::StatusOr<ModelLayout> ReadModelLayout(const std::string& model_dir);

// Checks `weights` against `config` (every tensor present, shapes, dtypes)
// and lists the linears; used by ReadModelLayout, exposed for tests.
absl::StatusOr<ModelLayout> BuildModelLayout(std::string dir, HfModelConfig config,
                                             WeightLayout weights);

}  // namespace vptq
