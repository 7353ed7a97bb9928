// A sequential, in-process driver of the pipeline's tasks: runs HESSIAN
// (every shard) -> REDUCE (every input group) -> QUANTIZE (every decoder
// linear, largest first) -> ASSEMBLE -> EVAL on the calling thread, in graph
// order, with the same task functions the distributed workers run, handing
// blobs from one to the next in memory. Tests and the quality benchmark use
// it; `vptqctl quantize` goes through the coordinator's planner instead.
//
// Resumability: with `state_dir` set, every task output is also written
// there (atomically) and a rerun reuses the outputs it finds, so a killed
// run continues from the finished tasks and writes a byte-identical
// checkpoint. The directory records the job (job.json); a state_dir of
// another job is FAILED_PRECONDITION. A stored output that fails to parse
// is recomputed.
//
// Contract: deterministic (same inputs, seed and thread count ->
// byte-identical checkpoint files). Errors are the tasks', annotated with
// the task. Not thread-safe per job; separate jobs may run concurrently.
//
//   LocalJob job;
//   job.model_dir = dir;
//   job.calibration.paths = {"sotu/data"};
//   job.quant.bits = 2;
//   job.output_dir = "/tmp/out";
//   VPTQ_ASSIGN_OR_RETURN(LocalJobResult r, RunLocalJob(job));
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "worker/pipeline/artifact_names.h"
#include "worker/pipeline/assemble_task.h"
#include "worker/pipeline/calibration.h"
#include "worker/pipeline/compute_options.h"
#include "worker/pipeline/eval_task.h"
#include "worker/pipeline/quality_report.h"
#include "worker/pipeline/quant_settings.h"
#include "worker/pipeline/quantized_blob.h"

namespace vptq::pipeline {

struct LocalProgress {
  std::string stage;  // "hessian", "reduce", "quantize", "assemble", "write", "eval"
  int64_t done = 0;
  int64_t total = 0;
  std::string item;  // the task just finished
};

struct LocalJob {
  std::string model_dir;
  TextSetOptions calibration;
  int64_t num_shards = 1;
  QuantSettings quant;
  AssembleOptions assemble;  // output_dtype is taken from quant
  std::optional<EvalOptions> eval;
  ComputeOptions compute;
  std::string output_dir;  // optional: WriteCheckpointDir
  std::string state_dir;   // optional: resumable task outputs
  std::function<void(const LocalProgress&)> progress;  // optional
};

struct LocalStageSeconds {
  double hessian = 0;   // calibration forward + accumulation, all shards
  double reduce = 0;
  double quantize = 0;
  double assemble = 0;
  double write = 0;
  double eval = 0;
  double total = 0;
};

struct LocalJobResult {
  BlobMap hessians;                               // group -> finalized H blob
  BlobMap quantized;                              // linear -> "quantized" blob
  std::map<std::string, LinearQuantStats> linears;
  AssembleTaskOutput checkpoint;
  std::optional<QualityReport> quality;
  LocalStageSeconds seconds;
  int64_t tasks_run = 0;
  int64_t tasks_reused = 0;  // outputs found in state_dir
};

// Each stage on its own (the benchmark reuses Hessians across settings).
absl::StatusOr<BlobMap> RunHessianStages(const LocalJob& job, LocalJobResult* result);
absl::StatusOr<BlobMap> RunQuantizeStage(const LocalJob& job, const BlobMap& hessians,
                                         LocalJobResult* result);

absl::StatusOr<LocalJobResult> RunLocalJob(const LocalJob& job);

}  // namespace vptq::pipeline
