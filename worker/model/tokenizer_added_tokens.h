// The "added_tokens" of tokenizer.json (special tokens such as <s> or
// <|eot_id|>, and user-added words). HF tokenizers cuts them out of the text
// before normalization, so "<|begin_of_text|>Hi" encodes the marker as its
// own id. Matching is leftmost-longest over all added tokens; lstrip/rstrip
// swallow whitespace next to a match and single_word drops matches inside a
// word, as in HF. One deviation: tokens flagged "normalized" are matched on
// the raw text rather than on the normalized text (the Llama, Mistral and
// Qwen files flag none of their special tokens so).
//
//   AddedTokenSplitter splitter(tokens);
//   for (const TextSegment& s : splitter.Split(text))
//     s.token_id ? emit(*s.token_id) : encode(s.text);
//
// Thread safety: immutable after construction. Cost: O(text length x tokens
// sharing a first byte) — special tokens start with '<', so plain prose is a
// single table lookup per byte.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vptq::tokenizer {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

struct TextSegment {
  std::string_view text;           // the input bytes this segment covers
  std::optional<int32_t> token_id; // set when the segment is an added token
  size_t offset = 0;               // byte offset of `text` in the input
};

class AddedTokenSplitter {
 public:
  explicit AddedTokenSplitter(std::vector<AddedToken> tokens);

  // Segments covering `text` (valid UTF-8) in order; empty for empty text.
  std::vector<TextSegment> Split(std::string_view text) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // Longest token matching at `pos`, or -1.
  int LongestMatchAt(std::string_view text, size_t pos) const;

  std::vector<AddedToken> tokens_;
  // Token indices by first byte, longest content first.
  std::array<std::vector<int>, 256> by_first_byte_;
};

}  // namespace vptq::tokenizer
