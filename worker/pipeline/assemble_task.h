// ASSEMBLE task (DESIGN.md §1 step 4, §3): the packed checkpoint, as a map
// file name -> bytes, from every linear's "quantized" artifact and the
// original model directory.
//
// Input (vptq.v1.AssembleTask + QuantOptions.output_dtype):
//   model_dir   JobSpec.model.path
//   quantized   linear name -> its QUANTIZE output (AssembleTask.linears;
//               linears absent here stay dense, copied like lm_head)
//   options     max_shard_bytes, output_dtype
// Output files (become the job's outputs; write them with
// WriteCheckpointDir):
//   model.safetensors, or model-0000i-of-0000n.safetensors +
//     model.safetensors.index.json when the tensor data exceeds
//     max_shard_bytes: every quantized linear's packed tensors plus every
//     other tensor of the model (embeddings, norms, lm_head, dense linears)
//     in its stored dtype, or converted to output_dtype when one is given;
//     metadata {"format": "pt"} as transformers expects.
//   config.json: the original, key order kept, plus
//     "quantization_config": {"quant_method": "vptq",
//                             "config_for_layers": {name: LayoutToConfig},
//                             "shared_layer_config": {},
//                             "modules_to_not_convert": [unquantized linears]}
//     and "torch_dtype" set to output_dtype when that changes the dtype.
//   the tokenizer and generation files present in model_dir
//     (kCopiedModelFiles).
//
// Contract: byte-deterministic (tensors in name order, shards filled in
// model order, JSON with a fixed key order; no timings). Errors:
// INVALID_ARGUMENT for a corrupt artifact, an artifact holding another
// linear, a linear the model does not have, a layout whose shape or bias
// does not match the model (shape/config mismatch), artifacts in another
// dtype than the output dtype; FAILED_PRECONDITION for a model that is
// already quantized or an unsupported dtype; the model reader's codes for
// missing/corrupt model files. Each message names the linear or file.
// Memory: the whole checkpoint is built in memory (the artifacts plus the
// output), about twice its size. Thread safety: pure function.
//
//   VPTQ_ASSIGN_OR_RETURN(AssembleTaskOutput a,
//       RunAssembleTask({.model_dir = dir, .quantized = blobs}));
//   VPTQ_RETURN_IF_ERROR(WriteCheckpointDir(a.files, "/out/model-vptq"));
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "worker/pipeline/artifact_names.h"

namespace vptq::pipeline {

// Files copied verbatim from the model directory when present.
inline constexpr const char* kCopiedModelFiles[] = {
    "tokenizer.json",      "tokenizer_config.json", "tokenizer.model",
    "special_tokens_map.json", "added_tokens.json", "vocab.json",
    "merges.txt",          "generation_config.json", "chat_template.json",
    "chat_template.jinja"};

inline constexpr int64_t kDefaultMaxShardBytes = 5'000'000'000;

struct AssembleOptions {
  int64_t max_shard_bytes = kDefaultMaxShardBytes;  // tensor data per file
  std::string output_dtype;                         // QuantSettings::output_dtype
};

struct AssembleTaskInput {
  std::string model_dir;
  BlobMap quantized;
  AssembleOptions options;
};

// Sizes and bit counts of the checkpoint.
struct CheckpointStats {
  int64_t quantized_linears = 0;
  int64_t dense_linears = 0;        // decoder linears left unquantized
  int64_t model_params = 0;         // elements of every tensor of the original model
  int64_t linear_params = 0;        // Σ M·N over the decoder linears
  int64_t tensor_bytes = 0;         // tensor data in the checkpoint
  double bpw_linears = 0;           // DESIGN §2 count over the decoder linears
  double bpw_linears_stored = 0;    // bytes the decoder linears' tensors take
  double bpw_file = 0;              // 8 · tensor_bytes / model_params
  double mean_proxy_loss = 0;
  double max_proxy_loss = 0;
};

struct AssembleTaskOutput {
  BlobMap files;
  CheckpointStats stats;
  // "bits_per_weight" (whole model), "mean_proxy_loss", "max_proxy_loss".
  std::map<std::string, double> Metrics() const;
};

absl::StatusOr<AssembleTaskOutput> RunAssembleTask(const AssembleTaskInput& input);

// "model.layers.10.mlp.up_proj" sorts after "model.layers.9...": digit runs
// compare by value. The order tensors are assigned to shards in.
bool ModelOrderLess(const std::string& a, const std::string& b);

}  // namespace vptq::pipeline
