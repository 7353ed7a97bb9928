// Checks a JobSpec, fills its defaults and resolves its paths, so the stored
// spec is exactly what workers run.
//
// Contract:
//  - NormalizeJobSpec: field checks and defaults only (no filesystem).
//    INVALID_ARGUMENT naming the field and the allowed values. Specs that
//    leave the stock CUDA kernels' envelope (DESIGN.md §3) are accepted with
//    a warning.
//  - ResolveJobSpecPaths: model path, calibration and eval text through the
//    input roots, output_dir through the output roots (path_policy.h codes).
//  - Pure functions; thread-safe.
//
//   std::vector<std::string> warnings;
//   VPTQ_RETURN_IF_ERROR(NormalizeJobSpec(&spec, &warnings));
//   VPTQ_RETURN_IF_ERROR(ResolveJobSpecPaths(&spec, policy));
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "coordinator/path_policy.h"
#include "vptq/v1/job.pb.h"

namespace vptq::coordinator {

inline constexpr int kDefaultNumSequences = 128;
inline constexpr int kDefaultSequenceLength = 512;
inline constexpr int kDefaultEvalSequences = 32;
inline constexpr int kMaxShards = 64;

absl::Status NormalizeJobSpec(v1::JobSpec* spec, std::vector<std::string>* warnings);
absl::Status ResolveJobSpecPaths(v1::JobSpec* spec, const PathPolicy& paths);

}  // namespace vptq::coordinator
