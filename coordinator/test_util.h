// Helpers shared by the coordinator's tests.
#pragma once

#include <stdlib.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/safetensors.h"

namespace vptq::coordinator {

// A fresh directory under $TMPDIR (or /tmp); the caller removes it.
inline std::string MakeTempDir(absl::string_view prefix) {
  const char* tmp = getenv("TMPDIR");
  std::string templ = absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp", "/", prefix, ".XXXXXX");
  char* made = mkdtemp(templ.data());
  return made == nullptr ? std::string() : std::string(made);
}

inline absl::Status WriteTestFile(const std::string& path, absl::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

inline std::string ReadTestFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A zero-weight Llama checkpoint (config.json + model.safetensors, fp32) in
// `dir`: enough for ReadModelLayout and the planner.
inline absl::Status WriteTinyLlama(const std::string& dir, int layers = 2, int hidden = 8,
                                   int intermediate = 16, int heads = 2, int vocab = 32) {
  absl::Status s = WriteTestFile(
      dir + "/config.json",
      absl::StrCat(R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama",)",
                   R"("hidden_size": )", hidden, R"(, "intermediate_size": )", intermediate,
                   R"(, "num_hidden_layers": )", layers, R"(, "num_attention_heads": )", heads,
                   R"(, "num_key_value_heads": )", heads, R"(, "vocab_size": )", vocab,
                   R"(, "hidden_act": "silu", "torch_dtype": "float32"})"));
  if (!s.ok()) return s;
  SafetensorsWriter w;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<uint8_t> bytes(static_cast<size_t>(n) * 4, 0);
    return w.Add(name, DType::kF32, std::move(shape), bytes);
  };
  const int64_t h = hidden, m = intermediate, v = vocab;
  for (auto st : {add("model.embed_tokens.weight", {v, h}), add("model.norm.weight", {h}),
                  add("lm_head.weight", {v, h})}) {
    if (!st.ok()) return st;
  }
  for (int l = 0; l < layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    for (auto st : {add(p + "input_layernorm.weight", {h}),
                    add(p + "post_attention_layernorm.weight", {h}),
                    add(p + "self_attn.q_proj.weight", {h, h}),
                    add(p + "self_attn.k_proj.weight", {h, h}),
                    add(p + "self_attn.v_proj.weight", {h, h}),
                    add(p + "self_attn.o_proj.weight", {h, h}),
                    add(p + "mlp.gate_proj.weight", {m, h}), add(p + "mlp.up_proj.weight", {m, h}),
                    add(p + "mlp.down_proj.weight", {h, m})}) {
      if (!st.ok()) return st;
    }
  }
  return w.WriteAtomic(dir + "/model.safetensors");
}

}  // namespace vptq::coordinator
