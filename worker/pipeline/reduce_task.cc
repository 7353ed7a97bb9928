#include "worker/pipeline/reduce_task.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/pipeline/hessian_blob.h"
#include "worker/quant/hessian.h"

namespace vptq::pipeline {

absl::StatusOr<std::string> RunReduceTask(const ReduceTaskInput& input) {
  if (input.shards.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("reduce of ", input.group, " got no shard partials"));
  }
  std::optional<quant::HessianAccumulator> total;
  for (const auto& [name, bytes] : input.shards) {  // name order: deterministic
    absl::StatusOr<quant::HessianAccumulator> part =
        quant::HessianAccumulator::Deserialize(bytes);
    if (!part.ok()) return Annotate(part.status(), input.group, " partial ", name);
    const int64_t want = input.dim > 0 ? input.dim : total ? total->n_features() : part->n_features();
    if (part->n_features() != want) {
      return absl::InvalidArgumentError(absl::StrCat(input.group, " partial ", name, " has ",
                                                     part->n_features(), " features, expected ",
                                                     want));
    }
    if (!total) {
      total = *std::move(part);
    } else {
      VPTQ_RETURN_IF_ERROR(Annotate(total->Merge(*part), input.group, " partial ", name));
    }
  }
  quant::HessianFinalizeOptions fo;
  fo.damp = input.damp;
  absl::StatusOr<quant::FinalizedHessian> h = total->Finalize(fo);
  if (!h.ok()) return Annotate(h.status(), "finalizing the Hessian of ", input.group);
  return EncodeFinalizedHessian(*h, input.damp);
}

}  // namespace vptq::pipeline
