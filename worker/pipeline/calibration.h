// Calibration and evaluation data: text or pre-tokenized files -> token
// sequences of a fixed length, drawn deterministically from a seed.
// Torch-free (the tokenizer is).
//
// Inputs (TextSetOptions::paths, vptq.v1.CalibrationSpec.text_paths /
// EvalSpec.text_paths): files, or directories whose regular files with a
// supported suffix are read in byte-wise name order (not recursively):
//   *.txt          UTF-8 text, tokenized with <model_dir>/tokenizer.json
//   *.tokens       pre-tokenized: raw little-endian int32 token ids
//   *.tokens.json  pre-tokenized: a JSON array of arrays of token ids
// Each text file, each .tokens file and each inner JSON array is one
// document. Pre-tokenized ids are what Tokenizer::Encode(text, add_bos =
// false) gives (no BOS); they must lie in [0, vocab_size) of config.json.
// A file named explicitly may have any other suffix and is read as text.
//
// Drawing sequences of L tokens (BuildTokenSequences), b = 1 when the model
// has a BOS token (the tokenizer's, else config.json's bos_token_id), else 0:
//  1. the files are put in a seeded order (Fisher-Yates on SplitMix64);
//  2. their documents are tokenized in that order and concatenated into one
//     stream
//     until it holds kOversample × n × (L − b) tokens or the documents run
//     out (so a large corpus is only partly tokenized);
//  3. the stream is cut into W = floor(T / (L − b)) non-overlapping windows
//     and n distinct windows are chosen with the seed, kept in stream order;
//  4. each sequence is [BOS] + window.
// Fewer than n windows: INVALID_ARGUMENT saying how many tokens were found
// and how many are needed, unless allow_fewer (evaluation), which takes
// every window there is (at least one).
//
// Shards (vptq.v1.HessianTask): shard s of S gets sequences
// [s·n/S, (s+1)·n/S) of the whole set (ShardRange).
//
//   TextSetOptions o{.paths = {"data/sotu"}, .num_sequences = 128,
//                    .sequence_length = 256, .seed = 0};
//   VPTQ_ASSIGN_OR_RETURN(TokenSequences seqs, BuildTokenSequences(model_dir, o));
//
// Cost: dominated by tokenization of about kOversample × n × L tokens.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace vptq::pipeline {

inline constexpr int64_t kOversample = 4;

struct TextSetOptions {
  std::vector<std::string> paths;
  int64_t num_sequences = 128;
  int64_t sequence_length = 256;  // tokens per sequence, BOS included
  uint64_t seed = 0;
  bool allow_fewer = false;
};

// n sequences of L token ids each, row-major.
struct TokenSequences {
  int64_t sequence_length = 0;
  std::vector<int32_t> ids;   // count() * sequence_length
  int64_t stream_tokens = 0;  // tokens in the stream the windows came from
  int64_t documents_read = 0;

  int64_t count() const {
    return sequence_length > 0 ? static_cast<int64_t>(ids.size()) / sequence_length : 0;
  }
  absl::Span<const int32_t> Row(int64_t i) const {
    return absl::MakeConstSpan(ids).subspan(static_cast<size_t>(i * sequence_length),
                                            static_cast<size_t>(sequence_length));
  }
  // Rows [begin, end) as a new set.
  TokenSequences Slice(int64_t begin, int64_t end) const;
};

// The files `paths` expands to, in reading order. INVALID_ARGUMENT when a
// path does not exist or nothing readable is found (naming the suffixes).
absl::StatusOr<std::vector<std::string>> ListTextFiles(const std::vector<std::string>& paths);

// Reads a pre-tokenized file (.tokens / .tokens.json) into documents.
absl::StatusOr<std::vector<std::vector<int32_t>>> ReadTokenFile(const std::string& path);

// Writes ids as a raw .tokens file (little-endian int32), atomically.
absl::Status WriteTokenFile(const std::string& path, absl::Span<const int32_t> ids);

absl::StatusOr<TokenSequences> BuildTokenSequences(const std::string& model_dir,
                                                   const TextSetOptions& options);

// [s·n/S, (s+1)·n/S).
std::pair<int64_t, int64_t> ShardRange(int64_t n, int64_t shard, int64_t num_shards);

// Default L for a model: min(512, max_position_embeddings).
int64_t DefaultSequenceLength(int64_t max_position_embeddings);

}  // namespace vptq::pipeline
