// The patterns of tokenizer.json (Split pre-tokenizer, Replace normalizer and
// decoder): {"String": "literal"} or {"Regex": "..."}. Regexes use HF
// tokenizers' Oniguruma syntax; they run on ICU's regex engine, with `\s` and
// `\S` mapped to the Unicode White_Space property as Oniguruma defines them
// (ICU's own `\s` leaves out U+000B and U+0085).
//
//   VPTQ_ASSIGN_OR_RETURN(SplitPattern p, SplitPattern::Regex(R"(\p{N}{1,3})"));
//   for (auto [begin, end] : p.FindAll("in 1851")) ...  // {3, 7}
//
// Thread safety: a compiled pattern is immutable and may be shared; FindAll
// makes its own matcher per call. Cost: compile once per tokenizer load;
// FindAll is linear in the text for the patterns tokenizers use (leftmost,
// non-overlapping matches, backtracking as in Oniguruma).
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

class SplitPattern {
 public:
  // `where` names the JSON location for error messages.
  static absl::StatusOr<SplitPattern> FromJson(const nlohmann::json& j,
                                               absl::string_view where);
  static SplitPattern Literal(std::string literal);
  static absl::StatusOr<SplitPattern> Regex(std::string_view oniguruma_regex);

  // Non-empty, non-overlapping matches of `text` (valid UTF-8), left to
  // right, as byte ranges [begin, end).
  std::vector<std::pair<size_t, size_t>> FindAll(std::string_view text) const;

  // Replaces every match by `content` (taken literally).
  std::string ReplaceAll(std::string_view text, std::string_view content) const;

 private:
  struct CompiledRegex;
  SplitPattern() = default;

  std::string literal_;
  std::shared_ptr<const CompiledRegex> regex_;  // null for a literal
};

// Rewrites Oniguruma-only escapes for ICU (`\s` -> `\p{White_Space}`,
// `\S` -> `\P{White_Space}`), leaving everything else as written.
std::string OnigurumaToIcuRegex(std::string_view pattern);

}  // namespace vptq::tokenizer
