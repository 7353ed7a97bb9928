// The BPE model of tokenizer.json ("model": {"type": "BPE", ...}) with the
// semantics of HF tokenizers: a word starts as one symbol per character
// (characters missing from the vocabulary become <0xNN> byte tokens when
// byte_fallback is on, else the unk token, fused when fuse_unk), then adjacent
// pairs are merged lowest merge rank first, leftmost first among equal ranks.
// With ignore_merges (Llama-3) a word that is itself in the vocabulary is
// emitted whole.
//
//   VPTQ_ASSIGN_OR_RETURN(BpeModel bpe, BpeModel::FromJson(root["model"], "model"));
//   BpeWordCache cache;
//   std::vector<int32_t> ids;
//   bpe.Encode("Ġhello", &cache, &ids);
//
// Merging has two implementations: ApplyMerges (priority queue over a linked
// list, O(n log n) in the word length; what Encode uses) and
// ApplyMergesReference (rescan for the best pair after every merge, O(n^2)),
// kept to check the fast one. Thread safety: a BpeModel is immutable and may
// be shared; a BpeWordCache belongs to one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

namespace vptq::tokenizer {

struct BpeMerge {
  int32_t rank;    // position in the merges list; lower merges first
  int32_t new_id;  // id of the merged token
};

// Results per distinct word, so repeated words in long texts are merged once.
class BpeWordCache {
 public:
  explicit BpeWordCache(size_t max_entries = 1 << 18) : max_entries_(max_entries) {}
  const std::vector<int32_t>* Find(std::string_view word) const;
  void Insert(std::string_view word, std::vector<int32_t> ids);

 private:
  size_t max_entries_;
  absl::flat_hash_map<std::string, std::vector<int32_t>> entries_;
};

class BpeModel {
 public:
  struct Options {
    std::optional<std::string> unk_token;
    bool byte_fallback = false;
    bool fuse_unk = false;
    bool ignore_merges = false;
    std::string continuing_subword_prefix;
    std::string end_of_word_suffix;
  };

  // Reads {"type": "BPE", "vocab": {...}, "merges": [...], ...}; merges may
  // be "left right" strings or ["left", "right"] pairs. Dropout other than
  // null/0 is FAILED_PRECONDITION (it makes encoding random).
  static absl::StatusOr<BpeModel> FromJson(const nlohmann::json& model,
                                           absl::string_view where);
  // `merges` in rank order. Every merge's parts and result must be in `vocab`.
  static absl::StatusOr<BpeModel> Create(
      const std::vector<std::pair<std::string, int32_t>>& vocab,
      const std::vector<std::pair<std::string, std::string>>& merges,
      Options options);

  // Appends the ids of one pre-token (non-empty pieces only produce ids).
  void Encode(std::string_view word, BpeWordCache* cache,
              std::vector<int32_t>* out) const;

  // The symbols a word starts from, before any merge.
  std::vector<int32_t> InitialSymbols(std::string_view word) const;
  // Appends the merged form of `symbols`. Same result as ApplyMerges, but a
  // symbol that takes part in no merge (e.g. Llama's <0x0A>) can never join
  // its neighbours, so the parts between such symbols are merged separately:
  // a 1.2 MB text that SentencePiece-style BPE sees as one word becomes many
  // small heaps instead of one large one.
  void MergeSymbols(const std::vector<int32_t>& symbols, std::vector<int32_t>* out) const;
  const BpeMerge* FindMerge(int32_t left, int32_t right) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  // nullptr when the model has no token with this id.
  const std::string* IdToToken(int32_t id) const;
  // One past the largest id of the model's vocabulary.
  int32_t id_limit() const { return static_cast<int32_t>(id_to_token_.size()); }
  size_t num_merges() const { return merges_.size(); }

 private:
  BpeModel() = default;
  static uint64_t PairKey(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }

  Options options_;
  std::optional<int32_t> unk_id_;
  absl::flat_hash_map<std::string, int32_t> token_to_id_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  absl::flat_hash_map<uint64_t, BpeMerge> merges_;
  std::vector<int32_t> byte_ids_;  // <0xNN> token ids, -1 where missing
  std::vector<bool> in_some_merge_;  // by id: appears in a merge pair
};

// O(n log n): HF tokenizers' Word::merge_all (a min-heap of (rank, position)
// candidate pairs over a linked list of symbols).
std::vector<int32_t> ApplyMerges(const BpeModel& model, std::vector<int32_t> symbols);

// O(n^2) reference: repeatedly merges the lowest-rank adjacent pair,
// leftmost on ties, until no pair has a merge.
std::vector<int32_t> ApplyMergesReference(const BpeModel& model,
                                          std::vector<int32_t> symbols);

}  // namespace vptq::tokenizer
