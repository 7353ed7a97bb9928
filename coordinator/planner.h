// Planner: turns one job into its task graph (DESIGN.md §1).
//
//   HESSIAN(shard 0..S-1) ──► REDUCE(per distinct linear input) ──► QUANTIZE(per linear)
//                                                                 ──► ASSEMBLE ──► EVAL?
//
//  - One HESSIAN task per calibration shard; each outputs the partial sums of
//    every input group ("hessian/<group>").
//  - One REDUCE per (layer, distinct input): q/k/v share one, gate/up share
//    one, o and down have their own. It depends on every shard.
//  - One QUANTIZE per linear, depending only on its group's REDUCE; ordered
//    largest (M·N) first so the long poles start early.
//  - One ASSEMBLE over every QUANTIZE; one EVAL after it when asked for.
//
// The planner is a pure function of its inputs (deterministic task ids and
// order) and knows nothing of files: PlanModel is filled from an HF model
// directory (PlanModelFromLayout) or synthesised from a shape
// (LlamaShapedModel, for benchmarks and tests).
//
//   VPTQ_ASSIGN_OR_RETURN(ModelLayout layout, ReadModelLayout(dir));
//   PlanModel model = PlanModelFromLayout(layout);
//   VPTQ_ASSIGN_OR_RETURN(auto tasks, PlanJob("job-1", model, {.num_shards = 4}));
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"
#include "common/hf_config.h"
#include "vptq/v1/store.pb.h"

namespace vptq::coordinator {

struct PlanLinear {
  std::string name;   // "model.layers.3.mlp.down_proj"
  int64_t layer = 0;
  int64_t out_features = 0;  // M
  int64_t in_features = 0;   // N
  bool has_bias = false;
  std::string group;  // Hessian key shared by linears reading one input
};

struct PlanModel {
  std::vector<PlanLinear> linears;  // model order (layer-major)
  int64_t num_layers = 0;
  int64_t hidden_size = 0;
  int64_t total_params = 0;         // whole model, for cost and memory estimates
  int64_t bytes_per_param = 4;      // of the stored weights
};

PlanModel PlanModelFromLayout(const ModelLayout& layout);

// A Llama-family shape without files (random-weight benchmarks).
struct LlamaShape {
  int64_t num_layers = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t vocab_size = 32000;

  static LlamaShape Stories15M() { return {6, 288, 768, 6, 6, 32000}; }
  static LlamaShape Llama7B() { return {32, 4096, 11008, 32, 32, 32000}; }
  static LlamaShape Llama70B() { return {80, 8192, 28672, 64, 8, 128256}; }
  static LlamaShape Llama405B() { return {126, 16384, 53248, 128, 8, 128256}; }
};
PlanModel LlamaShapedModel(const LlamaShape& shape);

struct PlanOptions {
  int num_shards = 1;          // HESSIAN tasks
  int64_t num_sequences = 1;   // calibration sequences, split over shards
  int64_t sequence_length = 512;
  bool eval = false;
  // Device kind for HESSIAN, QUANTIZE and EVAL (REDUCE and ASSEMBLE run on
  // any worker).
  v1::DeviceKind heavy_device = v1::DEVICE_KIND_UNSPECIFIED;
};

// Task ids are "<job_id>/<index, 5 digits>"; index = scheduling order within
// the job. INVALID_ARGUMENT for an empty model, a linear without a group,
// num_shards outside [1, num_sequences].
absl::StatusOr<std::vector<v1::TaskRecord>> PlanJob(const std::string& job_id,
                                                    const PlanModel& model,
                                                    const PlanOptions& options);

// "<job_id>/<index>" and back.
std::string TaskId(const std::string& job_id, int index);
// The job id part of a task id ("" when malformed).
std::string JobIdOfTask(absl::string_view task_id);
// Artifact names (see proto/vptq/v1/task.proto).
std::string HessianOutputName(absl::string_view group);  // "hessian/<group>"
std::string ShardInputName(int shard);                  // "shard-00003"

}  // namespace vptq::coordinator
