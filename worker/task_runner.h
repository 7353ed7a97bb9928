// Runs one leased task: maps a vptq.v1.TaskAssignment (payload + the job's
// resolved JobSpec) and its fetched inputs onto the worker/pipeline task
// functions, and returns the outputs the coordinator expects
// (proto/vptq/v1/task.proto names them) plus the TaskSummary metrics.
//
// The embedded `vptqctl quantize` and the `vptq-worker` process both use
// this, so the same spec gives byte-identical outputs either way.
//
// Errors are the pipeline's codes (INVALID_ARGUMENT / FAILED_PRECONDITION /
// NOT_FOUND for bad input, RESOURCE_EXHAUSTED when memory runs out —
// including a c10 out-of-memory error — so the coordinator retries it
// elsewhere). `cancelled` is polled between stages; when it turns true the
// result is CANCELLED.
//
//   VPTQ_ASSIGN_OR_RETURN(TaskResult r, RunTask(assignment, inputs, {.device = "cpu"}));
#pragma once

#include <exception>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "vptq/v1/task.pb.h"

namespace vptq::worker {

struct TaskRunOptions {
  std::string device = "cpu";
  // libtorch intra-op threads for this task on the calling thread (restored
  // afterwards); 0 leaves the count as it is. See "Determinism" above.
  int torch_threads = 0;
  std::function<bool()> cancelled;                        // optional
  std::function<void(double, const std::string&)> progress;  // fraction, stage; optional
};

struct TaskResult {
  std::map<std::string, std::string> outputs;  // output name -> bytes
  std::map<std::string, double> metrics;       // TaskSummary.metrics
};

absl::StatusOr<TaskResult> RunTask(const v1::TaskAssignment& task,
                                   const std::map<std::string, std::string>& inputs,
                                   const TaskRunOptions& options);

// An exception that escaped a pipeline function, as a Status: allocation
// failures (c10::OutOfMemoryError, std::bad_alloc, a c10::Error saying "out
// of memory") are RESOURCE_EXHAUSTED, anything else INTERNAL. The message is
// `context` and the exception's first line.
absl::Status StatusFromTaskException(const std::exception& e, std::string_view context);

}  // namespace vptq::worker
