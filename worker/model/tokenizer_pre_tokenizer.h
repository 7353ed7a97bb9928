// Pre-tokenizers of tokenizer.json ("pre_tokenizer" field): they cut
// normalized text into the pieces ("words") that the model encodes one by
// one. Supported types: Sequence, Split (regex or literal, all five split
// behaviours, invert), ByteLevel, Metaspace, Digits, Whitespace,
// WhitespaceSplit. Llama-3 and Qwen2 use Sequence[Split(regex), ByteLevel];
// newer Llama-2/Mistral files use Metaspace.
//
//   VPTQ_ASSIGN_OR_RETURN(auto p, PreTokenizerFromJson(root["pre_tokenizer"], "pre_tokenizer"));
//   std::vector<PreToken> pieces = {{"Hello world", /*at_origin=*/true}};
//   p->PreTokenize(&pieces);   // {"Hello", "Ġworld"} for Llama-3
//
// Thread safety: immutable; PreTokenize is const and safe concurrently.
// Cost: linear in the text (one regex pass per Split).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

namespace vptq::tokenizer {

struct PreToken {
  std::string text;
  // True when the piece starts at offset 0 of the caller's input (Metaspace's
  // prepend_scheme "first" adds its prefix only there).
  bool at_origin = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces every piece by its splits, in order; empty pieces are dropped.
  virtual void PreTokenize(std::vector<PreToken>* pieces) const = 0;
};

// How matches of a split pattern become pieces (HF SplitDelimiterBehavior).
enum class SplitBehavior {
  kRemoved,             // matches dropped, text between kept
  kIsolated,            // matches are pieces of their own
  kMergedWithPrevious,  // a match joins the piece before it
  kMergedWithNext,      // a match joins the piece after it
  kContiguous,          // consecutive matches form one piece
};

// Splits `piece` at `matches` (sorted, non-overlapping byte ranges) and
// appends the non-empty results to `out`. `invert` swaps matches and gaps.
void SplitPiece(const PreToken& piece,
                const std::vector<std::pair<size_t, size_t>>& matches,
                SplitBehavior behavior, bool invert, std::vector<PreToken>* out);

// null JSON gives a null pointer (the whole normalized text is one piece).
// Unknown types are FAILED_PRECONDITION naming the type.
absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizerFromJson(
    const nlohmann::json& j, absl::string_view where);

}  // namespace vptq::tokenizer
