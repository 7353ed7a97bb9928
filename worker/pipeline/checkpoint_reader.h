// Reads a packed VPTQ checkpoint (DESIGN.md §3) as written: config.json with
// its quantization_config, model.safetensors or shards with an index. Dense
// tensors are read as stored; quantized linears are Unpack()ed against their
// config_for_layers entry (LayoutFromConfig) and Dequantize()d, exactly as
// the stock loader rebuilds them. Used by EVAL, so that quality is measured
// on the files, not on in-memory weights.
//
// Contract:
//  - Open*/From* parse config.json (Llama-family only, FAILED_PRECONDITION
//    otherwise), every config_for_layers entry (INVALID_ARGUMENT naming the
//    linear when a key is missing/extra, or when its shape is not the one
//    config.json implies: shape/config mismatch) and every safetensors
//    header; tensor bytes are read only when asked for.
//  - OpenDir maps the files; FromFiles keeps the given bytes (names as in
//    the directory, optionally prefixed "checkpoint/").
//  - Load errors: NOT_FOUND naming a missing tensor, INVALID_ARGUMENT for a
//    wrong shape/dtype or corrupt packed tensors.
//  - Immutable after opening; loads are const and thread-safe.
//
//   VPTQ_ASSIGN_OR_RETURN(auto ckpt, CheckpointReader::OpenDir(out_dir));
//   VPTQ_ASSIGN_OR_RETURN(LinearWeights w, ckpt->LoadLinear("model.layers.0.mlp.up_proj"));
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "common/hf_config.h"
#include "common/safetensors.h"
#include "worker/pipeline/artifact_names.h"
#include "worker/quant/quantized_linear.h"

namespace vptq::pipeline {

struct LinearWeights {
  torch::Tensor weight;  // (M, N) float32
  torch::Tensor bias;    // (M,) float32 or undefined
};

class CheckpointReader {
 public:
  static absl::StatusOr<std::unique_ptr<CheckpointReader>> OpenDir(const std::string& dir);
  static absl::StatusOr<std::unique_ptr<CheckpointReader>> FromFiles(BlobMap files);

  const HfModelConfig& config() const { return config_; }
  // config_for_layers, parsed.
  const std::map<std::string, quant::QuantLayout>& quantized() const { return quantized_; }
  // A stored tensor as `dtype` (floats only).
  absl::StatusOr<torch::Tensor> LoadTensor(const std::string& name,
                                           const std::vector<int64_t>& shape,
                                           torch::ScalarType dtype = torch::kFloat) const;
  // Dense weight of a linear (without ".weight"): dequantized when it is in
  // config_for_layers, else the stored "<name>.weight"; its bias when
  // `with_bias`.
  absl::StatusOr<LinearWeights> LoadLinear(const std::string& name, int64_t out_features,
                                           int64_t in_features, bool with_bias) const;

  // Sum of every tensor's data bytes.
  int64_t tensor_bytes() const;
  // Data bytes of the tensors under "<linear>." (packed) or "<linear>.weight".
  int64_t LinearBytes(const std::string& linear) const;
  // Storage bits of the codebooks (16 or 32), from the first quantized linear.
  int element_bits() const { return element_bits_; }

 private:
  CheckpointReader() = default;
  absl::Status Init(const std::string& source, const std::string& config_text);
  const TensorView* Find(const std::string& name) const;

  std::string source_;
  BlobMap owned_;  // FromFiles: the bytes the files view
  std::map<std::string, std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> tensors_;
  HfModelConfig config_;
  std::map<std::string, quant::QuantLayout> quantized_;
  int element_bits_ = 16;
};

}  // namespace vptq::pipeline
