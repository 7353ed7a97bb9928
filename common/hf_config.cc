#include "common/hf_config.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "common/status.h"

namespace vptq {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kSupportedArchitectures[] = {
    "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"};

absl::Status FieldError(const std::string& source, const std::string& field,
                        const std::string& what) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": field '", field, "' ", what));
}

// Reads an integer field; absent (or null) gives `fallback`, or an error when
// there is none.
absl::StatusOr<int64_t> GetInt(const json& j, const std::string& source,
                               const std::string& field,
                               std::optional<int64_t> fallback = std::nullopt) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    if (fallback) return *fallback;
    return FieldError(source, field, "is required");
  }
  if (!it->is_number_integer()) {
    return FieldError(source, field, absl::StrCat("must be an integer, got ", it->dump()));
  }
  return it->get<int64_t>();
}

absl::StatusOr<int64_t> GetPositiveInt(const json& j, const std::string& source,
                                       const std::string& field,
                                       std::optional<int64_t> fallback = std::nullopt) {
  VPTQ_ASSIGN_OR_RETURN(int64_t v, GetInt(j, source, field, fallback));
  if (v <= 0) return FieldError(source, field, absl::StrCat("must be > 0, got ", v));
  return v;
}

absl::StatusOr<double> GetPositiveDouble(const json& j, const std::string& source,
                                         const std::string& field, double fallback) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) {
    return FieldError(source, field, absl::StrCat("must be a number, got ", it->dump()));
  }
  double v = it->get<double>();
  if (!(v > 0)) return FieldError(source, field, absl::StrCat("must be > 0, got ", v));
  return v;
}

absl::StatusOr<bool> GetBool(const json& j, const std::string& source,
                             const std::string& field, bool fallback) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    return FieldError(source, field, absl::StrCat("must be true or false, got ", it->dump()));
  }
  return it->get<bool>();
}

absl::StatusOr<std::string> GetString(const json& j, const std::string& source,
                                      const std::string& field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return FieldError(source, field, absl::StrCat("must be a string, got ", it->dump()));
  }
  return it->get<std::string>();
}

absl::StatusOr<RopeScaling> ParseRopeScaling(const json& j, const std::string& source) {
  RopeScaling r;
  auto it = j.find("rope_scaling");
  if (it == j.end() || it->is_null()) return r;
  if (!it->is_object()) return FieldError(source, "rope_scaling", "must be an object or null");
  const json& s = *it;
  VPTQ_ASSIGN_OR_RETURN(std::string type, GetString(s, source, "rope_type"));
  if (type.empty()) {
    VPTQ_ASSIGN_OR_RETURN(type, GetString(s, source, "type"));
  }
  if (type.empty()) return FieldError(source, "rope_scaling.rope_type", "is required");
  r.type = type;
  VPTQ_ASSIGN_OR_RETURN(r.factor, GetPositiveDouble(s, source, "factor", 1.0));
  VPTQ_ASSIGN_OR_RETURN(r.low_freq_factor, GetPositiveDouble(s, source, "low_freq_factor", 1.0));
  VPTQ_ASSIGN_OR_RETURN(r.high_freq_factor, GetPositiveDouble(s, source, "high_freq_factor", 4.0));
  VPTQ_ASSIGN_OR_RETURN(r.original_max_position_embeddings,
                        GetInt(s, source, "original_max_position_embeddings", 0));
  return r;
}

absl::StatusOr<std::vector<int64_t>> GetIdList(const json& j, const std::string& source,
                                               const std::string& field) {
  std::vector<int64_t> ids;
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return ids;
  if (it->is_number_integer()) {
    ids.push_back(it->get<int64_t>());
    return ids;
  }
  if (it->is_array()) {
    for (const json& v : *it) {
      if (!v.is_number_integer()) return FieldError(source, field, "must hold integers");
      ids.push_back(v.get<int64_t>());
    }
    return ids;
  }
  return FieldError(source, field, "must be an integer or a list of integers");
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// Shard names come from a file the user gave us: keep them inside the folder.
absl::Status CheckShardName(const std::string& name, const std::string& source) {
  if (name.empty() || name == "." || name == ".." ||
      name.find('/') != std::string::npos ||
      name.find('\\') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": shard file name '", name, "' must be a plain file name inside the model folder"));
  }
  return absl::OkStatus();
}

absl::Status AddShard(const std::string& dir, const std::string& file, WeightLayout& layout) {
  const std::string path = (fs::path(dir) / file).string();
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat("safetensors file ", path, " does not exist"));
  }
  auto opened = SafetensorsFile::Open(path);
  if (!opened.ok()) return Annotate(opened.status(), "reading ", path);
  for (const TensorView& t : (*opened)->tensors()) {
    WeightInfo info{t.name, file, t.dtype, t.shape};
    auto [it, inserted] = layout.tensors.emplace(t.name, std::move(info));
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", t.name, "' is stored twice: in ", it->second.file, " and in ", file));
    }
  }
  layout.files.push_back(file);
  return absl::OkStatus();
}

absl::Status CheckTensor(const WeightLayout& weights, const std::string& dir,
                         const std::string& name, const std::vector<int64_t>& shape,
                         const std::string& why) {
  const WeightInfo* w = weights.Find(name);
  if (w == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "tensor '", name, "' is missing from the weights in ", dir, " (",
        absl::StrJoin(weights.files, ", "), "); ", why));
  }
  if (w->shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", name, "' in ", dir, "/", w->file, " has shape ", ShapeString(w->shape),
        " but config.json implies ", ShapeString(shape), " (", why, ")"));
  }
  if (w->dtype != DType::kF32 && w->dtype != DType::kF16 && w->dtype != DType::kBF16) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tensor '", name, "' in ", dir, "/", w->file, " has dtype ", std::string(DTypeName(w->dtype)),
        "; only F32, F16 and BF16 weights are supported"));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsSupportedArchitecture(std::string_view architecture) {
  return std::find(std::begin(kSupportedArchitectures), std::end(kSupportedArchitectures),
                   architecture) != std::end(kSupportedArchitectures);
}

absl::StatusOr<HfModelConfig> ParseHfConfig(std::string_view json_text,
                                            std::string_view source_name) {
  const std::string source(source_name);
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, " is not a JSON object"));
  }
  HfModelConfig c;
  auto arch = j.find("architectures");
  if (arch == j.end() || !arch->is_array() || arch->empty() || !(*arch)[0].is_string()) {
    return FieldError(source, "architectures",
                      "must be a non-empty list of names such as [\"LlamaForCausalLM\"]");
  }
  c.architecture = (*arch)[0].get<std::string>();
  if (arch->size() != 1 || !IsSupportedArchitecture(c.architecture)) {
    return absl::FailedPreconditionError(absl::StrCat(
        source, ": architecture ", arch->dump(), " is not supported; supported: ",
        absl::StrJoin(kSupportedArchitectures, ", ")));
  }
  VPTQ_ASSIGN_OR_RETURN(c.model_type, GetString(j, source, "model_type"));
  VPTQ_ASSIGN_OR_RETURN(c.hidden_size, GetPositiveInt(j, source, "hidden_size"));
  VPTQ_ASSIGN_OR_RETURN(c.intermediate_size, GetPositiveInt(j, source, "intermediate_size"));
  VPTQ_ASSIGN_OR_RETURN(c.num_hidden_layers, GetPositiveInt(j, source, "num_hidden_layers"));
  VPTQ_ASSIGN_OR_RETURN(c.num_attention_heads, GetPositiveInt(j, source, "num_attention_heads"));
  VPTQ_ASSIGN_OR_RETURN(c.num_key_value_heads,
                        GetPositiveInt(j, source, "num_key_value_heads", c.num_attention_heads));
  VPTQ_ASSIGN_OR_RETURN(c.vocab_size, GetPositiveInt(j, source, "vocab_size"));
  VPTQ_ASSIGN_OR_RETURN(c.max_position_embeddings,
                        GetPositiveInt(j, source, "max_position_embeddings", 2048));
  if (c.hidden_size % c.num_attention_heads != 0 && j.find("head_dim") == j.end()) {
    return FieldError(source, "hidden_size",
                      absl::StrCat("(", c.hidden_size, ") must be a multiple of num_attention_heads (",
                                   c.num_attention_heads, ") unless head_dim is given"));
  }
  VPTQ_ASSIGN_OR_RETURN(c.head_dim, GetPositiveInt(j, source, "head_dim",
                                                   c.hidden_size / c.num_attention_heads));
  if (c.head_dim % 2 != 0) {
    return FieldError(source, "head_dim", absl::StrCat("must be even for rotary embeddings, got ", c.head_dim));
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return FieldError(source, "num_key_value_heads",
                      absl::StrCat("(", c.num_key_value_heads, ") must divide num_attention_heads (",
                                   c.num_attention_heads, ")"));
  }
  VPTQ_ASSIGN_OR_RETURN(c.rms_norm_eps, GetPositiveDouble(j, source, "rms_norm_eps", 1e-6));
  VPTQ_ASSIGN_OR_RETURN(c.rope_theta, GetPositiveDouble(j, source, "rope_theta", 10000.0));
  VPTQ_ASSIGN_OR_RETURN(c.rope_scaling, ParseRopeScaling(j, source));
  VPTQ_ASSIGN_OR_RETURN(c.tie_word_embeddings, GetBool(j, source, "tie_word_embeddings", false));
  VPTQ_ASSIGN_OR_RETURN(c.attention_bias, GetBool(j, source, "attention_bias", false));
  VPTQ_ASSIGN_OR_RETURN(c.mlp_bias, GetBool(j, source, "mlp_bias", false));
  c.qkv_bias = c.architecture == "Qwen2ForCausalLM";

  VPTQ_ASSIGN_OR_RETURN(std::string act, GetString(j, source, "hidden_act"));
  if (!act.empty() && act != "silu") {
    return absl::FailedPreconditionError(absl::StrCat(
        source, ": hidden_act '", act, "' is not supported; the Llama-family forward uses silu"));
  }
  bool use_window = true;
  if (c.architecture == "Qwen2ForCausalLM") {
    VPTQ_ASSIGN_OR_RETURN(use_window, GetBool(j, source, "use_sliding_window", false));
  }
  auto sw = j.find("sliding_window");
  if (use_window && sw != j.end() && !sw->is_null()) {
    VPTQ_ASSIGN_OR_RETURN(int64_t w, GetPositiveInt(j, source, "sliding_window"));
    c.sliding_window = w;
  }

  VPTQ_ASSIGN_OR_RETURN(c.torch_dtype, GetString(j, source, "torch_dtype"));
  if (c.torch_dtype.empty()) {
    VPTQ_ASSIGN_OR_RETURN(c.torch_dtype, GetString(j, source, "dtype"));
  }
  if (!c.torch_dtype.empty() && c.torch_dtype != "float32" && c.torch_dtype != "float16" &&
      c.torch_dtype != "bfloat16") {
    return absl::FailedPreconditionError(absl::StrCat(
        source, ": torch_dtype '", c.torch_dtype, "' is not supported (float32, float16, bfloat16)"));
  }
  auto bos = j.find("bos_token_id");
  if (bos != j.end() && !bos->is_null()) {
    VPTQ_ASSIGN_OR_RETURN(int64_t b, GetInt(j, source, "bos_token_id"));
    c.bos_token_id = b;
  }
  VPTQ_ASSIGN_OR_RETURN(c.eos_token_ids, GetIdList(j, source, "eos_token_id"));
  return c;
}

absl::StatusOr<HfModelConfig> ReadHfConfig(const std::string& model_dir) {
  const std::string path = (fs::path(model_dir) / "config.json").string();
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, " does not exist; is ", model_dir,
                                            " an HF model folder?"));
  }
  VPTQ_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParseHfConfig(text, path);
}

int64_t WeightInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t WeightInfo::nbytes() const { return numel() * static_cast<int64_t>(DTypeSize(dtype)); }

const WeightInfo* WeightLayout::Find(std::string_view name) const {
  auto it = tensors.find(std::string(name));
  return it == tensors.end() ? nullptr : &it->second;
}

int64_t WeightLayout::total_bytes() const {
  int64_t total = 0;
  for (const auto& [name, info] : tensors) total += info.nbytes();
  return total;
}

absl::StatusOr<WeightLayout> ReadWeightLayout(const std::string& model_dir) {
  WeightLayout layout;
  std::error_code ec;
  const fs::path dir(model_dir);
  if (fs::exists(dir / "model.safetensors", ec)) {
    VPTQ_RETURN_IF_ERROR(AddShard(model_dir, "model.safetensors", layout));
    return layout;
  }
  const std::string index_path = (dir / "model.safetensors.index.json").string();
  if (!fs::exists(index_path, ec)) {
    return absl::NotFoundError(absl::StrCat(
        model_dir, " holds neither model.safetensors nor model.safetensors.index.json"));
  }
  VPTQ_ASSIGN_OR_RETURN(std::string text, ReadFile(index_path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto map = j.is_object() ? j.find("weight_map") : j.end();
  if (j.is_discarded() || !j.is_object() || map == j.end() || !map->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(index_path, " must be a JSON object with a \"weight_map\" object"));
  }
  std::vector<std::string> files;
  std::set<std::string> seen;
  for (auto it = map->begin(); it != map->end(); ++it) {
    if (!it.value().is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(
          index_path, ": weight_map entry '", it.key(), "' must name a file"));
    }
    std::string file = it.value().get<std::string>();
    VPTQ_RETURN_IF_ERROR(CheckShardName(file, index_path));
    if (seen.insert(file).second) files.push_back(file);
  }
  if (files.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": weight_map is empty"));
  }
  std::sort(files.begin(), files.end());
  layout.sharded = true;
  for (const std::string& file : files) {
    VPTQ_RETURN_IF_ERROR(AddShard(model_dir, file, layout));
  }
  // The index must agree with the shards it names.
  for (auto it = map->begin(); it != map->end(); ++it) {
    const WeightInfo* w = layout.Find(it.key());
    const std::string file = it.value().get<std::string>();
    if (w == nullptr || w->file != file) {
      return absl::InvalidArgumentError(absl::StrCat(
          index_path, " maps tensor '", it.key(), "' to ", file, ", but ",
          w == nullptr ? "no shard holds it" : absl::StrCat("it is in ", w->file)));
    }
  }
  return layout;
}

std::string_view LinearSuffix(LinearKind kind) {
  switch (kind) {
    case LinearKind::kQ: return "self_attn.q_proj";
    case LinearKind::kK: return "self_attn.k_proj";
    case LinearKind::kV: return "self_attn.v_proj";
    case LinearKind::kO: return "self_attn.o_proj";
    case LinearKind::kGate: return "mlp.gate_proj";
    case LinearKind::kUp: return "mlp.up_proj";
    case LinearKind::kDown: return "mlp.down_proj";
  }
  return "";
}

LinearInput InputOf(LinearKind kind) {
  switch (kind) {
    case LinearKind::kQ:
    case LinearKind::kK:
    case LinearKind::kV: return LinearInput::kAttnIn;
    case LinearKind::kO: return LinearInput::kAttnOut;
    case LinearKind::kGate:
    case LinearKind::kUp: return LinearInput::kMlpIn;
    case LinearKind::kDown: return LinearInput::kMlpAct;
  }
  return LinearInput::kAttnIn;
}

std::string_view LinearInputName(LinearInput input) {
  switch (input) {
    case LinearInput::kAttnIn: return "qkv";
    case LinearInput::kAttnOut: return "o";
    case LinearInput::kMlpIn: return "gate_up";
    case LinearInput::kMlpAct: return "down";
  }
  return "";
}

std::string LinearName(int64_t layer, LinearKind kind) {
  return absl::StrCat("model.layers.", layer, ".", std::string(LinearSuffix(kind)));
}

std::pair<int64_t, int64_t> LinearShape(const HfModelConfig& c, LinearKind kind) {
  const int64_t d = c.hidden_size;
  switch (kind) {
    case LinearKind::kQ: return {c.q_out_features(), d};
    case LinearKind::kK:
    case LinearKind::kV: return {c.kv_out_features(), d};
    case LinearKind::kO: return {d, c.q_out_features()};
    case LinearKind::kGate:
    case LinearKind::kUp: return {c.intermediate_size, d};
    case LinearKind::kDown: return {d, c.intermediate_size};
  }
  return {0, 0};
}

bool LinearHasBias(const HfModelConfig& c, LinearKind kind) {
  switch (InputOf(kind)) {
    case LinearInput::kAttnIn: return c.attention_bias || c.qkv_bias;
    case LinearInput::kAttnOut: return c.attention_bias;
    case LinearInput::kMlpIn:
    case LinearInput::kMlpAct: return c.mlp_bias;
  }
  return false;
}

std::string LinearInputKey(int64_t layer, LinearInput input) {
  return absl::StrCat("model.layers.", layer, ".", std::string(LinearInputName(input)));
}

std::string LinearInputKey(const LinearSpec& spec) {
  return LinearInputKey(spec.layer, spec.input());
}

std::vector<const LinearSpec*> ModelLayout::LayerLinears(int64_t layer) const {
  std::vector<const LinearSpec*> out;
  for (const LinearSpec& l : linears) {
    if (l.layer == layer) out.push_back(&l);
  }
  return out;
}

const LinearSpec* ModelLayout::FindLinear(std::string_view name) const {
  for (const LinearSpec& l : linears) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

std::string ModelLayout::lm_head_tensor() const {
  if (weights.Find("lm_head.weight") != nullptr || !config.tie_word_embeddings) {
    return "lm_head.weight";
  }
  return "model.embed_tokens.weight";
}

absl::StatusOr<ModelLayout> BuildModelLayout(std::string dir, HfModelConfig config,
                                             WeightLayout weights) {
  ModelLayout m;
  m.dir = std::move(dir);
  m.config = std::move(config);
  m.weights = std::move(weights);
  const HfModelConfig& c = m.config;
  const int64_t d = c.hidden_size;
  VPTQ_RETURN_IF_ERROR(CheckTensor(m.weights, m.dir, "model.embed_tokens.weight",
                                   {c.vocab_size, d}, "token embeddings (vocab_size, hidden_size)"));
  VPTQ_RETURN_IF_ERROR(CheckTensor(m.weights, m.dir, "model.norm.weight", {d}, "final RMSNorm"));
  if (m.weights.Find("lm_head.weight") != nullptr || !c.tie_word_embeddings) {
    VPTQ_RETURN_IF_ERROR(CheckTensor(m.weights, m.dir, "lm_head.weight", {c.vocab_size, d},
                                     "untied output projection; set tie_word_embeddings "
                                     "if the embeddings are shared"));
  }
  std::optional<DType> dtype;
  for (int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
    const std::string prefix = absl::StrCat("model.layers.", layer, ".");
    VPTQ_RETURN_IF_ERROR(CheckTensor(m.weights, m.dir, prefix + "input_layernorm.weight", {d},
                                     "attention RMSNorm"));
    VPTQ_RETURN_IF_ERROR(CheckTensor(m.weights, m.dir, prefix + "post_attention_layernorm.weight",
                                     {d}, "MLP RMSNorm"));
    for (LinearKind kind : kAllLinearKinds) {
      LinearSpec s;
      s.name = LinearName(layer, kind);
      s.layer = layer;
      s.kind = kind;
      std::tie(s.out_features, s.in_features) = LinearShape(c, kind);
      s.has_bias = LinearHasBias(c, kind);
      VPTQ_RETURN_IF_ERROR(CheckTensor(m.weights, m.dir, s.name + ".weight",
                                       {s.out_features, s.in_features}, "decoder linear"));
      if (s.has_bias) {
        VPTQ_RETURN_IF_ERROR(CheckTensor(m.weights, m.dir, s.name + ".bias", {s.out_features},
                                         "bias implied by the architecture / config.json"));
      } else if (const WeightInfo* b = m.weights.Find(s.name + ".bias"); b != nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor '", b->name, "' in ", m.dir, "/", b->file, " is a bias that ", c.architecture,
            " with this config.json does not use (attention_bias / mlp_bias); fix config.json"));
      }
      s.dtype = m.weights.Find(s.name + ".weight")->dtype;
      if (!dtype) dtype = s.dtype;
      m.linears.push_back(std::move(s));
    }
  }
  m.dtype = dtype.value_or(m.weights.Find("model.embed_tokens.weight")->dtype);
  return m;
}

absl::StatusOr<ModelLayout> ReadModelLayout(const std::string& model_dir) {
  VPTQ_ASSIGN_OR_RETURN(HfModelConfig config, ReadHfConfig(model_dir));
  VPTQ_ASSIGN_OR_RETURN(WeightLayout weights, ReadWeightLayout(model_dir));
  return BuildModelLayout(model_dir, std::move(config), std::move(weights));
}

}  // namespace vptq
