// The whole Llama-family forward, streamed layer by layer: embeddings, then
// every sequence through layer 0, then through layer 1, ..., keeping one
// decoder layer's weights in memory at a time; then the final norm and
// lm_head. Calibration uses the hook (linear inputs for Hessians); evaluation
// of a quantized model uses weight_override (dequantized dense weights).
//
// Contract:
//  - Token ids are int64 (batch, L), 0 <= id < vocab_size, L <=
//    max_position_embeddings; every row starts at position 0, no padding.
//  - Peak memory: one layer's weights + hidden states (batch, L, d) + the
//    activations of `max_batch` sequences inside a layer.
//  - Deterministic for a given device, dtype and thread count.
//  - Errors: INVALID_ARGUMENT for bad ids/shapes, RESOURCE_EXHAUSTED when an
//    allocation fails, the reader's codes for missing/corrupt tensors, and
//    whatever a hook or override returns. Never throws.
//
//   VPTQ_ASSIGN_OR_RETURN(auto reader, ModelReader::Open(dir));
//   ForwardOptions opts;
//   opts.weight_override = OverrideFromMap(dequantized);   // optional
//   VPTQ_ASSIGN_OR_RETURN(torch::Tensor logits, ForwardLogits(*reader, ids, opts));
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "worker/model/decoder_layer.h"
#include "worker/model/model_reader.h"

namespace vptq::model {

struct ForwardOptions : LoadOptions {
  LinearInputHook hook;  // optional: each layer's linear inputs, in order
  int64_t max_batch = 0;  // sequences per chunk inside a layer; 0 = all at once
};

absl::Status CheckTokenIds(const torch::Tensor& ids, const HfModelConfig& config);

// (batch, L) ids -> (batch, L, hidden_size) in options.dtype on options.device.
absl::StatusOr<torch::Tensor> EmbedTokens(const ModelReader& reader, const torch::Tensor& ids,
                                          const LoadOptions& options);

// Runs `hidden` through layers [begin, end) (end = -1: all), loading each
// layer only while it runs.
absl::StatusOr<torch::Tensor> RunDecoderLayers(const ModelReader& reader, torch::Tensor hidden,
                                               const ForwardOptions& options, int64_t begin = 0,
                                               int64_t end = -1);

// Final RMSNorm + lm_head (the embeddings when tied). weight_override is
// asked for "lm_head".
class OutputHead {
 public:
  static absl::StatusOr<OutputHead> Load(const ModelReader& reader, const LoadOptions& options);
  // (batch, L, d) -> float32 logits (batch, L, vocab_size). Call it on slices
  // of the hidden states to bound memory for large vocabularies.
  absl::StatusOr<torch::Tensor> Logits(const torch::Tensor& hidden) const;

 private:
  OutputHead(torch::Tensor norm, torch::Tensor lm_head, double eps)
      : norm_(std::move(norm)), lm_head_(std::move(lm_head)), eps_(eps) {}
  torch::Tensor norm_, lm_head_;
  double eps_;
};

// Embeddings -> all layers -> logits (batch, L, vocab_size), float32.
absl::StatusOr<torch::Tensor> ForwardLogits(const ModelReader& reader, const torch::Tensor& ids,
                                            const ForwardOptions& options);

// An override serving dense weights by linear name (without ".weight");
// names not in the map keep the stored weight. The map is copied.
WeightOverride OverrideFromMap(std::map<std::string, torch::Tensor> weights);

}  // namespace vptq::model
