// Normalizers of tokenizer.json ("normalizer" field), applied to each piece
// of text between added tokens before pre-tokenization, as HF tokenizers does.
// Supported types: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD,
// Lowercase, Strip. Llama-2 uses Sequence[Prepend("▁"), Replace(" ", "▁")];
// Qwen2 uses NFC; Llama-3 has none.
//
//   VPTQ_ASSIGN_OR_RETURN(auto n, NormalizerFromJson(root["normalizer"], "normalizer"));
//   std::string s = n ? n->Normalize("hello world") : "hello world";
//
// Thread safety: immutable after construction; Normalize is const and safe
// to call concurrently. Cost: linear in the text.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

namespace vptq::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // `text` is valid UTF-8; so is the result.
  virtual std::string Normalize(std::string text) const = 0;
};

// null JSON gives a null pointer (no normalization). Unknown types are
// FAILED_PRECONDITION naming the type; malformed fields INVALID_ARGUMENT.
absl::StatusOr<std::unique_ptr<Normalizer>> NormalizerFromJson(
    const nlohmann::json& j, absl::string_view where);

}  // namespace vptq::tokenizer
