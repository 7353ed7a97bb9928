#include "worker/task_runner.h"

#include <exception>
#include <new>
#include <set>
#include <string_view>
#include <utility>

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/pipeline/assemble_task.h"
#include "worker/pipeline/checkpoint_dir.h"
#include "worker/pipeline/eval_task.h"
#include "worker/pipeline/hessian_task.h"
#include "worker/pipeline/quality_report.h"
#include "worker/pipeline/quantize_task.h"
#include "worker/pipeline/reduce_task.h"
#include "worker/spec_mapping.h"
#include "worker/torch_threads.h"

namespace vptq::worker {
namespace {

using pipeline::BlobMap;

// The checkpoint file EVAL uploads beside its metrics.
constexpr char kEvalReportName[] = "eval.json";

const char* KindName(v1::TaskPayload::KindCase kind) {
  switch (kind) {
    case v1::TaskPayload::kHessian: return "HESSIAN";
    case v1::TaskPayload::kReduce: return "REDUCE";
    case v1::TaskPayload::kQuantize: return "QUANTIZE";
    case v1::TaskPayload::kAssemble: return "ASSEMBLE";
    case v1::TaskPayload::kEval: return "EVAL";
    default: return "UNKNOWN";
  }
}

class Runner {
 public:
  Runner(const v1::TaskAssignment& task, const std::map<std::string, std::string>& inputs,
         const TaskRunOptions& options)
      : task_(task), spec_(task.spec()), inputs_(inputs), options_(options) {}

  absl::StatusOr<TaskResult> Run() {
    if (spec_.model().path().empty()) {
      return absl::InvalidArgumentError("the task's spec has no model.path");
    }
    switch (task_.payload().kind_case()) {
      case v1::TaskPayload::kHessian: return Hessian();
      case v1::TaskPayload::kReduce: return Reduce();
      case v1::TaskPayload::kQuantize: return Quantize();
      case v1::TaskPayload::kAssemble: return Assemble();
      case v1::TaskPayload::kEval: return Eval();
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("task ", task_.task_id(), " has no payload this worker knows"));
    }
  }

  bool Cancelled() const { return options_.cancelled && options_.cancelled(); }
  void Progress(double fraction, const std::string& stage) const {
    if (options_.progress) options_.progress(fraction, stage);
  }

 private:
  const std::string& model_dir() const { return spec_.model().path(); }

  absl::Status CheckNotCancelled() const {
    if (Cancelled()) return absl::CancelledError("the task was cancelled");
    return absl::OkStatus();
  }

  absl::StatusOr<TaskResult> Hessian() {
    const v1::HessianTask& h = task_.payload().hessian();
    VPTQ_ASSIGN_OR_RETURN(pipeline::TextSetOptions calibration,
                          CalibrationFromSpec(spec_.calibration()));
    if (h.num_shards() < 1 || h.shard() < 0 || h.shard() >= h.num_shards()) {
      return absl::InvalidArgumentError(
          absl::StrCat("HESSIAN shard ", h.shard(), " is outside [0, ", h.num_shards(), ")"));
    }
    // The planner's split and the pipeline's must agree, or shards would
    // overlap or leave sequences out.
    const auto [first, last] =
        pipeline::ShardRange(calibration.num_sequences, h.shard(), h.num_shards());
    if ((h.first_sequence() != 0 || h.num_sequences() != 0) &&
        (h.first_sequence() != first || h.num_sequences() != last - first)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "HESSIAN shard ", h.shard(), " was planned for sequences [", h.first_sequence(), ", ",
          h.first_sequence() + h.num_sequences(), ") but the spec's ",
          calibration.num_sequences, " sequences in ", h.num_shards(), " shards give [", first,
          ", ", last, ")"));
    }
    pipeline::HessianTaskInput in;
    in.model_dir = model_dir();
    in.calibration = calibration;
    in.shard = h.shard();
    in.num_shards = h.num_shards();
    in.compute.device = options_.device;
    VPTQ_ASSIGN_OR_RETURN(BlobMap all, pipeline::RunHessianTask(in));

    std::set<std::string> wanted(task_.required_outputs().begin(),
                                 task_.required_outputs().end());
    for (const std::string& g : h.groups()) wanted.insert(pipeline::HessianOutputName(g));
    TaskResult result;
    if (wanted.empty()) {
      result.outputs = std::move(all);
      return result;
    }
    for (const std::string& name : wanted) {
      auto it = all.find(name);
      if (it == all.end()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "HESSIAN shard ", h.shard(), " was asked for '", name, "' but the model at ",
            model_dir(), " has no such input group; was the job planned for another model?"));
      }
      result.outputs.emplace(name, std::move(it->second));
    }
    return result;
  }

  absl::StatusOr<TaskResult> Reduce() {
    const v1::ReduceTask& r = task_.payload().reduce();
    VPTQ_ASSIGN_OR_RETURN(pipeline::QuantSettings quant, QuantSettingsFromSpec(spec_.quant()));
    pipeline::ReduceTaskInput in;
    in.group = r.group();
    in.dim = r.dim();
    in.damp = pipeline::EffectiveDamp(quant);
    for (const auto& [name, bytes] : inputs_) {
      if (absl::StartsWith(name, "shard-")) in.shards.emplace(name, bytes);
    }
    VPTQ_ASSIGN_OR_RETURN(std::string hessian, pipeline::RunReduceTask(in));
    TaskResult result;
    result.outputs.emplace(std::string(pipeline::kReduceOutput), std::move(hessian));
    return result;
  }

  absl::StatusOr<TaskResult> Quantize() {
    const v1::QuantizeTask& q = task_.payload().quantize();
    VPTQ_ASSIGN_OR_RETURN(pipeline::QuantSettings quant, QuantSettingsFromSpec(spec_.quant()));
    auto h = inputs_.find(std::string(pipeline::kReduceOutput));
    if (h == inputs_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("QUANTIZE ", q.linear(), " was given no '",
                       std::string(pipeline::kReduceOutput), "' input"));
    }
    pipeline::QuantizeTaskInput in;
    in.model_dir = model_dir();
    in.linear = q.linear();
    in.hessian = h->second;
    in.quant = quant;
    in.device = options_.device;
    VPTQ_ASSIGN_OR_RETURN(pipeline::QuantizeTaskOutput out, pipeline::RunQuantizeTask(in));
    if ((q.out_features() != 0 && q.out_features() != out.stats.out_features) ||
        (q.in_features() != 0 && q.in_features() != out.stats.in_features)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "QUANTIZE ", q.linear(), " was planned as ", q.out_features(), "x", q.in_features(),
          " but the model at ", model_dir(), " has it ", out.stats.out_features, "x",
          out.stats.in_features));
    }
    TaskResult result;
    result.metrics = out.Metrics();
    result.outputs.emplace(std::string(pipeline::kQuantizeOutput), std::move(out.blob));
    return result;
  }

  absl::StatusOr<TaskResult> Assemble() {
    const v1::AssembleTask& a = task_.payload().assemble();
    VPTQ_ASSIGN_OR_RETURN(pipeline::QuantSettings quant, QuantSettingsFromSpec(spec_.quant()));
    pipeline::AssembleTaskInput in;
    in.model_dir = model_dir();
    in.options.output_dtype = quant.output_dtype;
    if (a.linears().empty()) {
      in.quantized = BlobMap(inputs_.begin(), inputs_.end());
    }
    for (const std::string& linear : a.linears()) {
      auto it = inputs_.find(linear);
      if (it == inputs_.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("ASSEMBLE was given no input for linear ", linear));
      }
      in.quantized.emplace(linear, it->second);
    }
    VPTQ_ASSIGN_OR_RETURN(pipeline::AssembleTaskOutput out, pipeline::RunAssembleTask(in));
    in.quantized.clear();
    if (!spec_.output_dir().empty()) {
      VPTQ_RETURN_IF_ERROR(CheckNotCancelled());
      Progress(0.9, "write");
      absl::Status written = pipeline::WriteCheckpointDir(out.files, spec_.output_dir());
      if (!written.ok()) {
        return Annotate(written, "writing the checkpoint to ", spec_.output_dir());
      }
    }
    TaskResult result;
    result.metrics = out.Metrics();
    result.outputs = std::move(out.files);
    return result;
  }

  absl::StatusOr<TaskResult> Eval() {
    if (!spec_.has_eval()) {
      return absl::FailedPreconditionError("EVAL task for a job whose spec has no eval block");
    }
    VPTQ_ASSIGN_OR_RETURN(pipeline::EvalOptions options,
                          EvalOptionsFromSpec(spec_.eval(), spec_.calibration()));
    options.compute.device = options_.device;
    pipeline::EvalTaskInput in;
    in.model_dir = model_dir();
    in.options = options;
    for (const auto& [name, bytes] : inputs_) {
      if (name.rfind(pipeline::kCheckpointPrefix, 0) == 0) in.checkpoint_files.emplace(name, bytes);
    }
    if (in.checkpoint_files.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "EVAL was given no '", std::string(pipeline::kCheckpointPrefix), "<file>' inputs"));
    }
    VPTQ_ASSIGN_OR_RETURN(pipeline::QualityReport report, pipeline::RunEvalTask(in));
    TaskResult result;
    result.metrics = report.Metrics();
    result.outputs.emplace(kEvalReportName, pipeline::QualityReportToJson(report).dump(2) + "\n");
    return result;
  }

  const v1::TaskAssignment& task_;
  const v1::JobSpec& spec_;
  const std::map<std::string, std::string>& inputs_;
  const TaskRunOptions& options_;
};

bool SaysOutOfMemory(std::string_view what) {
  return what.find("out of memory") != std::string_view::npos ||
         what.find("can't allocate memory") != std::string_view::npos ||
         what.find("Cannot allocate memory") != std::string_view::npos;
}

std::string FirstLine(const char* what) {
  std::string s(what);
  return s.substr(0, s.find('\n'));
}

}  // namespace

absl::Status StatusFromTaskException(const std::exception& e, std::string_view context) {
  const std::string message = absl::StrCat(std::string(context), ": ", FirstLine(e.what()));
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) != nullptr ||
      dynamic_cast<const std::bad_alloc*>(&e) != nullptr || SaysOutOfMemory(e.what())) {
    return absl::ResourceExhaustedError(message);
  }
  return absl::InternalError(message);
}

absl::StatusOr<TaskResult> RunTask(const v1::TaskAssignment& task,
                                   const std::map<std::string, std::string>& inputs,
                                   const TaskRunOptions& options) {
  Runner runner(task, inputs, options);
  const std::string what =
      absl::StrCat(KindName(task.payload().kind_case()), " task ", task.task_id());
  if (runner.Cancelled()) return absl::CancelledError(absl::StrCat(what, " was cancelled"));
  TorchThreadsScope threads(options.torch_threads);
  runner.Progress(0, "run");
  absl::StatusOr<TaskResult> result;
  try {
    result = runner.Run();
  } catch (const std::exception& e) {
    return StatusFromTaskException(e, what);
  }
  if (!result.ok()) return Annotate(result.status(), what);
  if (runner.Cancelled()) return absl::CancelledError(absl::StrCat(what, " was cancelled"));
  runner.Progress(1, "done");
  return result;
}

}  // namespace vptq::worker
