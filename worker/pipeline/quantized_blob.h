// The QUANTIZE output ("quantized" artifact): one linear's packed tensors,
// exactly as they go into the checkpoint, plus what ASSEMBLE and the job
// report need about them. A safetensors file:
//   tensors   "<linear>.centroids.weight", "<linear>.indices", ... (the
//             quantized_linear.h Pack() map under the linear's name, floats
//             in the output dtype)
//   metadata  "vptq.format"  "quantized-linear/1"
//             "vptq.linear"  the linear's name
//             "vptq.layout"  its config_for_layers entry (LayoutToConfig) as JSON
//             "vptq.stats"   LinearQuantStats as JSON (timings: not deterministic)
// The tensor bytes are deterministic for given inputs; the stats' seconds
// are not, which is why ASSEMBLE copies tensors and never metadata.
//
//   std::string blob = EncodeQuantizedBlob(name, layout, packed, stats);
//   VPTQ_ASSIGN_OR_RETURN(ParsedQuantizedBlob p, ParseQuantizedBlob(blob, name));
//
// Thread safety: pure functions; a ParsedQuantizedBlob borrows the bytes it
// was parsed from (keep them alive) and is immutable.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "absl/status/statusor.h"
#include "common/safetensors.h"
#include "worker/quant/quantized_linear.h"
#include "worker/quant/vptq_quantizer.h"

namespace vptq::pipeline {

inline constexpr char kQuantizedBlobFormat[] = "quantized-linear/1";

struct LinearQuantStats {
  std::string linear;
  int64_t out_features = 0;
  int64_t in_features = 0;
  // Resolved options (what bits / explicit settings became for this shape).
  int64_t vector_len = 0, num_centroids = 0, num_res_centroids = 0, group_num = 0;
  int64_t outlier_size = 0;
  std::string storage_dtype;  // "F16", "BF16", "F32"
  double proxy_loss = 0;
  double proxy_loss_before_refine = 0;
  double bits_per_weight = 0;         // QuantLayout::BitsPerWeight (DESIGN §2 count)
  double stored_bits_per_weight = 0;  // QuantLayout::StoredBitsPerWeight
  quant::VptqStageSeconds seconds;    // engine stages
  double task_seconds = 0;            // whole task: load, quantize, pack
  int kmeans_iterations = 0;
  double damping_added = 0;
  int64_t hessian_tokens = 0;
  int64_t dead_columns = 0;
};

nlohmann::ordered_json StatsToJson(const LinearQuantStats& s);
absl::StatusOr<LinearQuantStats> StatsFromJson(const nlohmann::json& j);

// packed: Pack() output (suffix -> tensor).
absl::StatusOr<std::string> EncodeQuantizedBlob(const std::string& linear,
                                                const quant::QuantLayout& layout,
                                                const std::map<std::string, torch::Tensor>& packed,
                                                const LinearQuantStats& stats);

struct ParsedQuantizedBlob {
  std::string linear;
  quant::QuantLayout layout;
  nlohmann::ordered_json layout_config;  // the entry as stored
  LinearQuantStats stats;
  std::unique_ptr<SafetensorsFile> file;  // views into the caller's bytes

  // Packed tensors keyed by suffix (for quant::Unpack), floats as stored.
  absl::StatusOr<std::map<std::string, torch::Tensor>> PackedTensors() const;
};

// INVALID_ARGUMENT naming `source` for bytes that are not a quantized-linear
// blob: bad safetensors, missing/unknown metadata, a layout that fails
// LayoutFromConfig, or a tensor not under "<linear>.". Does not unpack (see
// ValidateQuantizedBlob).
absl::StatusOr<ParsedQuantizedBlob> ParseQuantizedBlob(std::string_view bytes,
                                                       std::string_view source);

// Unpacks the tensors against the layout (quant::Unpack: every tensor
// present with the right dtype and shape, indices in range, perm a
// permutation, finite floats). INVALID_ARGUMENT naming the linear.
absl::Status ValidateQuantizedBlob(const ParsedQuantizedBlob& blob);

}  // namespace vptq::pipeline
