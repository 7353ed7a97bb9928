// HESSIAN task (DESIGN.md §1 step 2): one calibration shard through the
// full-precision model, one decoder layer in memory at a time, summing
// S = Σ x xᵀ (fp64, quant::HessianAccumulator) and the token count for every
// distinct linear input of every layer.
//
// Input (vptq.v1.HessianTask + the job's CalibrationSpec):
//   model_dir            JobSpec.model.path
//   calibration          CalibrationSpec (text_paths, num_sequences,
//                        sequence_length, seed): the WHOLE set; the shard
//                        is cut from it with ShardRange, so
//                        HessianTask.first_sequence/num_sequences are
//                        [shard·n/S, (shard+1)·n/S)
//   shard, num_shards    HessianTask.shard / num_shards
// Output: BlobMap with "hessian/<group>" (artifact_names.h) for every layer
// and every LinearInput, each HessianAccumulator::Serialize() bytes. An
// empty shard (S > n) outputs zero sums.
//
// Contract: deterministic for given inputs, device and thread count. The
// forward runs in float32 on options.compute.device. Errors: the
// calibration's (INVALID_ARGUMENT for too little text), the model's
// (NOT_FOUND / INVALID_ARGUMENT / FAILED_PRECONDITION naming the tensor or
// architecture), RESOURCE_EXHAUSTED when memory runs out.
// Memory: one layer's weights, hidden states (n_shard, L, d) and the four
// accumulators of one layer (2 · 8 · N² bytes each); earlier layers'
// accumulators are serialized as soon as the layer is done.
//
//   HessianTaskInput in{.model_dir = dir, .calibration = calib, .shard = 0,
//                       .num_shards = 2};
//   VPTQ_ASSIGN_OR_RETURN(BlobMap out, RunHessianTask(in));
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "worker/pipeline/artifact_names.h"
#include "worker/pipeline/calibration.h"
#include "worker/pipeline/compute_options.h"

namespace vptq::pipeline {

struct HessianTaskInput {
  std::string model_dir;
  TextSetOptions calibration;
  int64_t shard = 0;
  int64_t num_shards = 1;
  ComputeOptions compute;
};

absl::StatusOr<BlobMap> RunHessianTask(const HessianTaskInput& input);

// The groups a model's Hessian tasks output, layer-major, in LinearInput
// order ("model.layers.0.qkv", "model.layers.0.o", ...).
std::vector<std::string> HessianGroups(int64_t num_layers);

}  // namespace vptq::pipeline
