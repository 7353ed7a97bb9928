// REDUCE task (DESIGN.md §1 step 2): merges the shard partials of one
// linear input group and finalizes them into the Hessian the quantizer uses:
// H = S/n, H /= mean(diag H), H += λ·I, dead columns H_jj = 1.
//
// Input (vptq.v1.ReduceTask + QuantOptions.damp):
//   shards   "shard-00000", ... -> HessianAccumulator::Serialize() bytes
//            (each HESSIAN task's "hessian/<group>" output)
//   group    ReduceTask.group, for messages
//   dim      ReduceTask.dim; 0 = take it from the first shard
//   damp     λ (EffectiveDamp of the job's QuantSettings)
// Output: the "hessian" artifact, EncodeFinalizedHessian bytes.
//
// Contract: the result does not depend on the order the shards arrive in:
// they are merged in name order, and the accumulator's double-double sums
// make the merge exact in any grouping. Errors: INVALID_ARGUMENT for no
// shards, a corrupt partial or a dimension mismatch (naming the shard);
// FAILED_PRECONDITION when no tokens were seen or every column is dead.
// Cost: O(shards · N²). Thread safety: pure function.
//
//   VPTQ_ASSIGN_OR_RETURN(std::string h,
//       RunReduceTask({.group = "model.layers.0.qkv", .shards = partials}));
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "worker/pipeline/artifact_names.h"
#include "worker/pipeline/quant_settings.h"

namespace vptq::pipeline {

struct ReduceTaskInput {
  std::string group;
  BlobMap shards;
  int64_t dim = 0;
  double damp = kDefaultDamp;
};

absl::StatusOr<std::string> RunReduceTask(const ReduceTaskInput& input);

}  // namespace vptq::pipeline
