// Simulated workers for scheduler benchmarks and tests: in-process threads
// that run the real worker protocol against a Coordinator (LeaseTask, then
// CompleteTask with placeholder outputs) and finish every task at once, so
// what is measured is the coordinator alone: planning, queueing, leases,
// store writes, events.
//
//   SimWorkerOptions opt;
//   opt.workers = 64;
//   SimWorkerStats stats = RunSimulatedWorkers(*coordinator, opt, [&] {
//     return JobFinished(*coordinator, job_id);
//   });
//   double tasks_per_s = stats.tasks_completed / stats.seconds;
//
// Thread-safe with respect to the coordinator; blocks until `done()` is true
// (polled between tasks) or `max_runtime` passes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "coordinator/coordinator.h"

namespace vptq::coordinator {

struct SimWorkerOptions {
  int workers = 64;
  v1::WorkerCapabilities capabilities;  // default: CPU, 1 device, memory unknown
  int64_t output_bytes = 16;            // per placeholder output
  absl::Duration max_runtime = absl::Minutes(10);
  std::string worker_prefix = "sim-worker-";
};

struct SimWorkerStats {
  int64_t tasks_completed = 0;
  int64_t empty_leases = 0;   // LeaseTask calls that found nothing
  int64_t errors = 0;         // calls that returned an error
  double seconds = 0;         // wall time of the whole run
};

SimWorkerStats RunSimulatedWorkers(Coordinator& coordinator, const SimWorkerOptions& options,
                                   const std::function<bool()>& done);

// Completes one leased task with `bytes`-byte placeholder outputs (every
// required output; "config.json" and "model.safetensors" for ASSEMBLE).
absl::Status CompleteWithPlaceholders(Coordinator& coordinator, const std::string& worker_id,
                                      const v1::TaskAssignment& task, int64_t bytes);

// True once the job is SUCCEEDED, FAILED or CANCELLED (or unknown).
bool JobFinished(Coordinator& coordinator, const std::string& job_id);

}  // namespace vptq::coordinator
