#include "worker/model/tokenizer_added_tokens.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <utility>

#include "worker/model/tokenizer_utf8.h"

namespace vptq::tokenizer {
namespace {

// Unicode \w as Rust's regex crate defines it (HF's single_word test).
bool IsWordChar(char32_t cp) {
  const auto c = static_cast<UChar32>(cp);
  if (u_hasBinaryProperty(c, UCHAR_ALPHABETIC)) return true;
  switch (u_charType(c)) {
    case U_NON_SPACING_MARK:
    case U_ENCLOSING_MARK:
    case U_COMBINING_SPACING_MARK:
    case U_DECIMAL_DIGIT_NUMBER:
    case U_CONNECTOR_PUNCTUATION:
      return true;
    default:
      return cp == 0x200C || cp == 0x200D;
  }
}

// Start of the character that ends at `end` (exclusive).
size_t PrevCharStart(std::string_view s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

}  // namespace

AddedTokenSplitter::AddedTokenSplitter(std::vector<AddedToken> tokens)
    : tokens_(std::move(tokens)) {
  for (int i = 0; i < static_cast<int>(tokens_.size()); ++i) {
    if (tokens_[i].content.empty()) continue;
    by_first_byte_[static_cast<unsigned char>(tokens_[i].content[0])].push_back(i);
  }
  for (auto& list : by_first_byte_) {
    std::stable_sort(list.begin(), list.end(), [&](int a, int b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
  }
}

int AddedTokenSplitter::LongestMatchAt(std::string_view text, size_t pos) const {
  for (int i : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
    const std::string& c = tokens_[i].content;
    if (text.compare(pos, c.size(), c) == 0) return i;
  }
  return -1;
}

std::vector<TextSegment> AddedTokenSplitter::Split(std::string_view text) const {
  std::vector<TextSegment> segments;
  size_t emitted = 0;  // end of the last segment pushed
  size_t pos = 0;
  while (pos < text.size()) {
    const int match = LongestMatchAt(text, pos);
    if (match < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[match];
    size_t start = pos;
    size_t stop = pos + token.content.size();
    pos = stop;  // matches never overlap, kept or not
    if (token.single_word) {
      const bool word_before =
          start > 0 && IsWordChar(DecodeUtf8At(text, PrevCharStart(text, start)));
      const bool word_after = stop < text.size() && IsWordChar(DecodeUtf8At(text, stop));
      if (word_before || word_after) continue;
    }
    if (token.lstrip) {
      while (start > emitted) {
        const size_t prev = PrevCharStart(text, start);
        if (!IsUnicodeWhitespace(DecodeUtf8At(text, prev))) break;
        start = prev;
      }
    }
    if (token.rstrip) {
      while (stop < text.size() && IsUnicodeWhitespace(DecodeUtf8At(text, stop))) {
        stop += Utf8CharLength(text, stop);
      }
      pos = stop;
    }
    if (start > emitted) {
      segments.push_back({text.substr(emitted, start - emitted), std::nullopt, emitted});
    }
    segments.push_back({text.substr(start, stop - start), token.id, start});
    emitted = stop;
  }
  if (emitted < text.size()) {
    segments.push_back({text.substr(emitted), std::nullopt, emitted});
  }
  return segments;
}

}  // namespace vptq::tokenizer
