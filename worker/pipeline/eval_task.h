// EVAL task (DESIGN.md §1 step 5, issue 3 §4): perplexity of the original
// and of the packed model, mean per-token KL(original ‖ quantized), top-1
// agreement and bits per weight, over held-out sequences. The quantized side
// runs from the packed files as written (CheckpointReader: unpack +
// dequantize per linear).
//
// Input (vptq.v1.EvalTask + the job's EvalSpec):
//   model_dir          JobSpec.model.path (the original)
//   checkpoint_dir     a packed checkpoint directory, or
//   checkpoint_files   the ASSEMBLE outputs ("checkpoint/<file>" artifacts,
//                      the prefix optional)
//   options.text       EvalSpec: text_paths, sequence_length,
//                      max_sequences -> num_sequences (allow_fewer is set:
//                      a short text gives fewer sequences, at least one)
// Output: QualityReport (Metrics() for TaskSummary.metrics; JSON for an
// "eval.json" output).
//
// Streaming (CompareModels): every sequence runs through layer i of the
// original, then of the quantized model, with one layer's weights in memory
// at a time; logits are computed for at most `logits_budget` elements per
// model at once. Peak memory: two hidden-state tensors (n, L, d) + one
// layer + 2 · logits_budget floats (× ~3 for the softmax temporaries).
// Scored positions: every next-token prediction, 0..L−2 of each sequence.
//
// Errors: the text set's INVALID_ARGUMENT, the readers' codes (missing or
// corrupt files, shape/config mismatch naming the linear), INVALID_ARGUMENT
// when the checkpoint's config is not the original's model shape.
// Deterministic for a given device and thread count.
//
//   EvalTaskInput in{.model_dir = orig, .checkpoint_dir = out};
//   in.options.text.paths = {"moby-dick/data.txt"};
//   VPTQ_ASSIGN_OR_RETURN(QualityReport q, RunEvalTask(in));
#pragma once

#include <cstdint>
#include <string>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "worker/pipeline/artifact_names.h"
#include "worker/pipeline/calibration.h"
#include "worker/pipeline/compute_options.h"
#include "worker/pipeline/eval_model.h"
#include "worker/pipeline/quality_report.h"

namespace vptq::pipeline {

struct EvalOptions {
  TextSetOptions text;  // num_sequences = EvalSpec.max_sequences (default 32)
  ComputeOptions compute;
  int64_t logits_budget = int64_t{1} << 24;
};

struct EvalTaskInput {
  std::string model_dir;
  std::string checkpoint_dir;
  BlobMap checkpoint_files;
  EvalOptions options;
};

absl::StatusOr<QualityReport> RunEvalTask(const EvalTaskInput& input);

// The comparison itself: fills sequences, tokens, perplexities, KL, top-1
// and seconds (bits are the caller's).
absl::StatusOr<QualityReport> CompareModels(const EvalModel& reference,
                                            const EvalModel& candidate,
                                            const TokenSequences& sequences,
                                            const ComputeOptions& compute,
                                            int64_t logits_budget = int64_t{1} << 24);

// Plain reference for the figures: full logits (n, L, vocab) of both models
// at once and ids (n, L); same scoring. Tests compare CompareModels with it.
QualityReport ScoreLogitsReference(const torch::Tensor& logits_reference,
                                   const torch::Tensor& logits_candidate,
                                   const torch::Tensor& ids);

}  // namespace vptq::pipeline
