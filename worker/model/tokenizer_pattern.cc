#include "worker/model/tokenizer_pattern.h"

#include <unicode/parseerr.h>
#include <unicode/regex.h>
#include <unicode/unistr.h>
#include <unicode/utypes.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "worker/model/tokenizer_json.h"
#include "worker/model/tokenizer_utf8.h"

namespace vptq::tokenizer {

struct SplitPattern::CompiledRegex {
  std::unique_ptr<icu::RegexPattern> pattern;
};

std::string OnigurumaToIcuRegex(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 32);
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[i + 1];
      if (next == 's') {
        out.append("\\p{White_Space}");
      } else if (next == 'S') {
        out.append("\\P{White_Space}");
      } else {
        out.push_back(c);
        out.push_back(next);
      }
      ++i;
      continue;
    }
    out.push_back(c);
  }
  return out;
}

SplitPattern SplitPattern::Literal(std::string literal) {
  SplitPattern p;
  p.literal_ = std::move(literal);
  return p;
}

absl::StatusOr<SplitPattern> SplitPattern::Regex(std::string_view oniguruma_regex) {
  const std::string icu_regex = OnigurumaToIcuRegex(oniguruma_regex);
  UParseError parse_error{};
  UErrorCode status = U_ZERO_ERROR;
  std::unique_ptr<icu::RegexPattern> compiled(icu::RegexPattern::compile(
      icu::UnicodeString::fromUTF8(icu_regex), 0, parse_error, status));
  if (U_FAILURE(status) || compiled == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot compile regex '", Sv(oniguruma_regex), "': ", u_errorName(status),
        " near character ", parse_error.offset));
  }
  SplitPattern p;
  auto regex = std::make_shared<CompiledRegex>();
  regex->pattern = std::move(compiled);
  p.regex_ = std::move(regex);
  return p;
}

absl::StatusOr<SplitPattern> SplitPattern::FromJson(const nlohmann::json& j,
                                                    absl::string_view where) {
  if (j.is_object() && j.size() == 1) {
    if (auto it = j.find("String"); it != j.end() && it->is_string()) {
      return Literal(it->get<std::string>());
    }
    if (auto it = j.find("Regex"); it != j.end() && it->is_string()) {
      auto p = Regex(it->get<std::string>());
      if (!p.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": ", p.status().message()));
      }
      return p;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      where, ": expected {\"String\": ...} or {\"Regex\": ...}, got ",
      j.dump().substr(0, 200)));
}

std::vector<std::pair<size_t, size_t>> SplitPattern::FindAll(
    std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> matches;
  if (text.empty()) return matches;
  if (!regex_) {
    if (literal_.empty()) return matches;
    for (size_t pos = text.find(literal_); pos != std::string_view::npos;
         pos = text.find(literal_, pos + literal_.size())) {
      matches.emplace_back(pos, pos + literal_.size());
    }
    return matches;
  }
  // ICU matches on UTF-16; keep the byte offset of every UTF-16 unit so the
  // matches come back as byte ranges of the UTF-8 input.
  icu::UnicodeString utf16;
  std::vector<uint32_t> byte_offset;
  byte_offset.reserve(text.size() + 1);
  for (size_t i = 0; i < text.size();) {
    const size_t len = Utf8CharLength(text, i);
    const char32_t cp = DecodeUtf8At(text, i);
    utf16.append(static_cast<UChar32>(cp));
    byte_offset.push_back(static_cast<uint32_t>(i));
    if (cp >= 0x10000) byte_offset.push_back(static_cast<uint32_t>(i));
    i += len;
  }
  byte_offset.push_back(static_cast<uint32_t>(text.size()));

  UErrorCode status = U_ZERO_ERROR;
  std::unique_ptr<icu::RegexMatcher> matcher(regex_->pattern->matcher(utf16, status));
  if (U_FAILURE(status)) return matches;
  // No backtracking stack limit: long whitespace runs under `\s+(?!\S)` must
  // not fail on a fixed stack size.
  matcher->setStackLimit(0, status);
  status = U_ZERO_ERROR;
  while (matcher->find(status) && U_SUCCESS(status)) {
    const int32_t begin = matcher->start(status);
    const int32_t end = matcher->end(status);
    if (U_FAILURE(status)) break;
    if (end > begin) matches.emplace_back(byte_offset[begin], byte_offset[end]);
  }
  return matches;
}

std::string SplitPattern::ReplaceAll(std::string_view text,
                                     std::string_view content) const {
  std::string out;
  out.reserve(text.size());
  size_t prev = 0;
  for (const auto& [begin, end] : FindAll(text)) {
    out.append(text.substr(prev, begin - prev));
    out.append(content);
    prev = end;
  }
  out.append(text.substr(prev));
  return out;
}

}  // namespace vptq::tokenizer
