// Text <-> token ids for the models the service quantizes, read from an HF
// `tokenizer.json` and producing the same ids as HF tokenizers. Two families
// are covered (and checked against reference encoders in tests):
//   - SentencePiece-style BPE with byte fallback (Llama-2, Mistral, the
//     converted stories15M): Prepend/Replace normalizer or Metaspace
//     pre-tokenizer, <0xNN> tokens for characters outside the vocabulary;
//   - byte-level BPE (Llama-3, Qwen2): a Split regex pre-tokenizer (Unicode
//     classes \p{L}, \p{N}, run on ICU), the GPT-2 byte map, ignore_merges.
// The pipeline is HF's: added tokens are cut out first, each remaining piece
// is normalized, pre-tokenized and BPE-encoded. Components outside the
// supported set make loading fail with FAILED_PRECONDITION naming the type.
//
//   VPTQ_ASSIGN_OR_RETURN(auto tok, Tokenizer::FromJsonFile(dir + "/tokenizer.json"));
//   std::vector<int32_t> ids = tok->Encode("Call me Ishmael.", /*add_bos=*/true);
//   std::string text = tok->Decode(ids, /*skip_special_tokens=*/true);
//
// bos/eos: from `tokenizer_config.json` beside the file when it exists
// (bos_token / eos_token, null meaning none), else from the post-processor
// template, else from the usual names (<s>, <|begin_of_text|>, </s>, ...).
//
// Thread safety: immutable after loading; Encode/Decode are const and may run
// concurrently. Cost (bench/run tokenizer, this 2-core machine): loading
// Llama-3's 9 MB file ~0.6 s; Encode is O(n log n) in the text length, with
// merges of repeated words cached per call — Moby Dick (1.2 MB) in ~0.17 s
// with either family.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace vptq {
namespace tokenizer {
class AddedTokenSplitter;
class BpeModel;
class Decoder;
class Normalizer;
class PreTokenizer;
struct AddedToken;
}  // namespace tokenizer

class Tokenizer {
 public:
  // Reads `path` (and `tokenizer_config.json` in the same directory, if any).
  // Missing file: NOT_FOUND; malformed JSON or fields: INVALID_ARGUMENT naming
  // the file; unsupported component types: FAILED_PRECONDITION naming them.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJsonFile(const std::string& path);

  // Same, from memory. `source` names the text in error messages;
  // `tokenizer_config_json` may be empty.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJsonString(
      std::string_view tokenizer_json, std::string_view source,
      std::string_view tokenizer_config_json = "");

  // Token ids of `text`; with add_bos, bos_id() first (when there is one).
  // Invalid UTF-8 in `text` is read as U+FFFD. Added tokens written in the
  // text (e.g. "<|eot_id|>") become their ids, as in HF.
  std::vector<int32_t> Encode(std::string_view text, bool add_bos) const;

  // Text of `ids` through the decoder of tokenizer.json (no clean-up of
  // spaces before punctuation). Ids outside the vocabulary are skipped.
  std::string Decode(absl::Span<const int32_t> ids, bool skip_special_tokens = false) const;

  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  // One past the largest id (model vocabulary and added tokens): the size of
  // an embedding table for this tokenizer.
  int32_t vocab_size() const { return vocab_size_; }

  std::optional<int32_t> TokenToId(std::string_view token) const;
  // Empty when no token has this id.
  std::optional<std::string> IdToToken(int32_t id) const;
  bool IsSpecial(int32_t id) const;

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

 private:
  Tokenizer();

  std::unique_ptr<tokenizer::Normalizer> normalizer_;
  std::unique_ptr<tokenizer::PreTokenizer> pre_tokenizer_;
  std::unique_ptr<tokenizer::BpeModel> model_;
  std::unique_ptr<tokenizer::Decoder> decoder_;
  std::unique_ptr<tokenizer::AddedTokenSplitter> added_;
  absl::flat_hash_map<int32_t, const tokenizer::AddedToken*> added_by_id_;
  absl::flat_hash_map<std::string, int32_t> added_by_content_;
  std::optional<int32_t> bos_id_;
  std::optional<int32_t> eos_id_;
  int32_t vocab_size_ = 0;
};

}  // namespace vptq
