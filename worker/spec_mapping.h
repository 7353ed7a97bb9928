// JobSpec (proto/vptq/v1/job.proto) -> the pipeline's plain option structs,
// so that a worker and `vptqctl quantize` read a spec the same way:
//
//   CalibrationSpec -> pipeline::TextSetOptions   (HESSIAN)
//   QuantOptions    -> pipeline::QuantSettings    (REDUCE damp, QUANTIZE, ASSEMBLE dtype)
//   EvalSpec        -> pipeline::EvalOptions      (EVAL)
//
// Defaults are the proto comments' and the very values the coordinator's
// NormalizeJobSpec (coordinator/spec_validation.h) writes into a stored spec,
// so a normalized spec maps to the same structs as the raw one:
//   calibration.num_sequences 0 -> 128, sequence_length 0 -> 512, seed as is;
//   eval.sequence_length 0 -> the calibration's (after its default),
//   eval.max_sequences 0 -> 32 (a short text may give fewer: allow_fewer);
//   quant: field for field; zeros stay zero and mean "the pipeline's default"
//   (damp 0.01, block 128, perm on, norm off: quant_settings.h), which is
//   what the coordinator fills in explicitly.
//
// Errors: INVALID_ARGUMENT naming the spec field (no text paths, negative
// counts, an unknown output_dtype). Pure functions; thread-safe.
//
//   VPTQ_ASSIGN_OR_RETURN(pipeline::QuantSettings q, QuantSettingsFromSpec(spec.quant()));
#pragma once

#include "absl/status/statusor.h"
#include "vptq/v1/job.pb.h"
#include "worker/pipeline/calibration.h"
#include "worker/pipeline/eval_task.h"
#include "worker/pipeline/quant_settings.h"

namespace vptq::worker {

absl::StatusOr<pipeline::TextSetOptions> CalibrationFromSpec(const v1::CalibrationSpec& spec);

absl::StatusOr<pipeline::QuantSettings> QuantSettingsFromSpec(const v1::QuantOptions& spec);

// `calibration` supplies the default sequence length.
absl::StatusOr<pipeline::EvalOptions> EvalOptionsFromSpec(const v1::EvalSpec& spec,
                                                          const v1::CalibrationSpec& calibration);

// The HESSIAN shard count a spec asks for: num_shards, or the coordinator's
// default ceil(num_sequences / 16) clamped to [1, 64].
int64_t NumShardsFromSpec(const v1::CalibrationSpec& spec);

}  // namespace vptq::worker
