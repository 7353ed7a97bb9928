// Decoders of tokenizer.json ("decoder" field): turn token strings back into
// text. Supported types: Sequence, ByteLevel, Metaspace, Replace,
// ByteFallback, Fuse, Strip — what Llama-2 (Replace, ByteFallback, Fuse,
// Strip), Mistral (Metaspace, ByteFallback, Fuse) and Llama-3/Qwen2
// (ByteLevel) use. Semantics follow HF tokenizers' decode_chain: each step
// maps the list of token strings to a new list; the results are concatenated.
//
//   VPTQ_ASSIGN_OR_RETURN(auto d, DecoderFromJson(root["decoder"], "decoder"));
//   std::string text = DecodeTokens(d.get(), {"▁Hello", "▁world"});
//
// Thread safety: immutable, const methods. Cost: linear in the output.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

namespace vptq::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const = 0;
};

// null JSON gives a null pointer. Unknown types are FAILED_PRECONDITION.
absl::StatusOr<std::unique_ptr<Decoder>> DecoderFromJson(const nlohmann::json& j,
                                                         absl::string_view where);

// Runs `decoder` and concatenates; without a decoder, tokens are joined with
// single spaces (HF's behaviour).
std::string DecodeTokens(const Decoder* decoder, std::vector<std::string> tokens);

}  // namespace vptq::tokenizer
