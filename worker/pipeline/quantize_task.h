// QUANTIZE task (DESIGN.md §1 step 3, §2): one decoder linear, quantized
// with VPTQ against its input group's finalized Hessian, packed into the
// checkpoint's tensors.
//
// Input (vptq.v1.QuantizeTask + the job's QuantOptions):
//   model_dir     JobSpec.model.path; W (and its bias) are read from it
//   linear        QuantizeTask.linear, e.g. "model.layers.3.mlp.down_proj"
//   hessian       the "hessian" artifact of QuantizeTask.group (REDUCE output)
//   quant         QuantSettings (quant_settings.h: bits -> per-shape options)
//   device        torch device to run on
// Output: the "quantized" artifact (quantized_blob.h) and its stats; the
// metrics the coordinator reads (vptq.v1.TaskSummary) are in Metrics().
//
// Contract: the tensors are a pure function of (W, H, settings) at a given
// thread count. Dead columns of H have their weights zeroed first. Errors:
// NOT_FOUND for a linear the model does not have; INVALID_ARGUMENT for a
// Hessian whose dimension is not the linear's in_features, a corrupt
// Hessian, options that do not fit the shape (naming the option); the
// engine's FAILED_PRECONDITION when H is not positive definite.
// Cost: the engine's (see vptq_quantizer.h) plus loading one weight.
//
//   VPTQ_ASSIGN_OR_RETURN(QuantizeTaskOutput q, RunQuantizeTask(
//       {.model_dir = dir, .linear = "model.layers.0.mlp.up_proj",
//        .hessian = blobs.at("hessian"), .quant = settings}));
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "worker/pipeline/quant_settings.h"
#include "worker/pipeline/quantized_blob.h"

namespace vptq::pipeline {

struct QuantizeTaskInput {
  std::string model_dir;
  std::string linear;
  std::string hessian;  // bytes
  QuantSettings quant;
  std::string device = "cpu";
};

struct QuantizeTaskOutput {
  std::string blob;  // the "quantized" artifact
  LinearQuantStats stats;
  // "proxy_loss", "bits_per_weight", "seconds".
  std::map<std::string, double> Metrics() const;
};

absl::StatusOr<QuantizeTaskOutput> RunQuantizeTask(const QuantizeTaskInput& input);

}  // namespace vptq::pipeline
