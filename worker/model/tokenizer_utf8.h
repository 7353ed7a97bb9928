// UTF-8 helpers shared by the tokenizer stages. Tokenizers work on valid
// UTF-8; text from files may not be, so invalid bytes are replaced the way
// Rust's String::from_utf8_lossy and the WHATWG TextDecoder do (one U+FFFD per
// maximal invalid subpart), which is also what HF tokenizers' decoders emit.
//
//   std::string clean = vptq::tokenizer::SanitizeUtf8(bytes);
//   for (size_t i = 0; i < clean.size(); i += Utf8CharLength(clean, i)) ...
//
// All functions are pure and thread-safe; cost is linear in the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace vptq::tokenizer {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Length in bytes of the valid UTF-8 sequence starting at `pos`, or 0 when
// the bytes there are not a complete, valid sequence.
size_t ValidUtf8SequenceLength(std::string_view s, size_t pos);

// Length of the character at `pos` of a string known to be valid UTF-8
// (from its lead byte alone).
inline size_t Utf8CharLength(std::string_view s, size_t pos) {
  const auto b = static_cast<unsigned char>(s[pos]);
  if (b < 0x80) return 1;
  if (b < 0xE0) return 2;
  if (b < 0xF0) return 3;
  return 4;
}

// Code point of the (valid) character at `pos`.
char32_t DecodeUtf8At(std::string_view s, size_t pos);

// Appends the UTF-8 encoding of `cp` (must be a Unicode scalar value).
void AppendUtf8(char32_t cp, std::string* out);

// True when `s` is entirely valid UTF-8.
bool IsValidUtf8(std::string_view s);

// Copy of `s` with each maximal invalid subpart replaced by U+FFFD.
std::string SanitizeUtf8(std::string_view s);

// Unicode White_Space property (what HF tokenizers' Rust char::is_whitespace
// and its regex `\s` test).
bool IsUnicodeWhitespace(char32_t cp);

}  // namespace vptq::tokenizer
