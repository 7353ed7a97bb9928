// Names of the byte blobs the pipeline's tasks exchange, as the coordinator's
// artifact store and proto/vptq/v1/task.proto name them:
//
//   HESSIAN  -> "hessian/<group>"   one per distinct linear input of every layer
//   REDUCE   <- "shard-00000", ...  that group's partial from each shard
//            -> "hessian"           the finalized Hessian (hessian_blob.h)
//   QUANTIZE <- "hessian"           -> "quantized" (quantized_blob.h)
//   ASSEMBLE <- "<linear name>"     -> "<checkpoint file name>" ("config.json", ...)
//   EVAL     <- "checkpoint/<checkpoint file name>"
//
// <group> is common/hf_config.h LinearInputKey(): "model.layers.3.qkv",
// "model.layers.3.o", "model.layers.3.gate_up", "model.layers.3.down".
// Header-only; plain string helpers.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/strings/str_format.h"

namespace vptq::pipeline {

// Every task input and output: artifact name -> bytes. Ordered, so that code
// walking it is deterministic.
using BlobMap = std::map<std::string, std::string>;

inline constexpr std::string_view kHessianPrefix = "hessian/";
inline constexpr std::string_view kReduceOutput = "hessian";
inline constexpr std::string_view kQuantizeOutput = "quantized";
inline constexpr std::string_view kCheckpointPrefix = "checkpoint/";

inline std::string HessianOutputName(std::string_view group) {
  return std::string(kHessianPrefix) + std::string(group);
}
inline std::string ReduceInputName(int64_t shard) {
  return absl::StrFormat("shard-%05d", shard);
}
inline std::string CheckpointInputName(std::string_view file) {
  return std::string(kCheckpointPrefix) + std::string(file);
}

}  // namespace vptq::pipeline
