#include "coordinator/sim_workers.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"

namespace vptq::coordinator {

absl::Status CompleteWithPlaceholders(Coordinator& coordinator, const std::string& worker_id,
                                      const v1::TaskAssignment& task, int64_t bytes) {
  std::vector<std::pair<std::string, std::string>> outputs;
  for (const auto& name : task.required_outputs()) {
    outputs.emplace_back(name, std::string(static_cast<size_t>(bytes), 'x'));
  }
  if (task.kind() == v1::TASK_KIND_ASSEMBLE) {
    outputs.emplace_back("model.safetensors", std::string(static_cast<size_t>(bytes), 'w'));
  }
  std::map<std::string, double> metrics;
  if (task.kind() == v1::TASK_KIND_QUANTIZE) metrics["proxy_loss"] = 0.01;
  auto r = coordinator.CompleteTask(
      ReadFromVector(MakeCompleteTaskStream(worker_id, task, outputs, metrics)));
  return r.status();
}

bool JobFinished(Coordinator& coordinator, const std::string& job_id) {
  v1::GetJobRequest req;
  req.set_job_id(job_id);
  auto r = coordinator.GetJob(req);
  if (!r.ok()) return true;
  const auto p = r->job().phase();
  return p == v1::JOB_PHASE_SUCCEEDED || p == v1::JOB_PHASE_FAILED ||
         p == v1::JOB_PHASE_CANCELLED;
}

SimWorkerStats RunSimulatedWorkers(Coordinator& coordinator, const SimWorkerOptions& options,
                                   const std::function<bool()>& done) {
  std::atomic<int64_t> completed{0}, empty{0}, errors{0};
  std::atomic<bool> stop{false};
  v1::WorkerCapabilities caps = options.capabilities;
  if (caps.device_kind() == v1::DEVICE_KIND_UNSPECIFIED) {
    caps.set_device_kind(v1::DEVICE_KIND_CPU);
    caps.set_device_count(1);
  }
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + options.max_runtime;
  std::vector<std::thread> threads;
  for (int i = 0; i < options.workers; ++i) {
    threads.emplace_back([&, i] {
      const std::string id = absl::StrCat(options.worker_prefix, i);
      v1::LeaseTaskRequest req;
      req.set_worker_id(id);
      *req.mutable_capabilities() = caps;
      while (!stop.load() && absl::Now() < deadline) {
        auto lease = coordinator.LeaseTask(req);
        if (!lease.ok()) {
          errors++;
          log::Error("simulated lease failed", {{"error", lease.status().ToString()}});
          absl::SleepFor(absl::Milliseconds(1));
          continue;
        }
        if (!lease->has_task()) {
          empty++;
          if (done()) break;
          absl::SleepFor(absl::Microseconds(200));
          continue;
        }
        const absl::Status s =
            CompleteWithPlaceholders(coordinator, id, lease->task(), options.output_bytes);
        if (s.ok()) {
          completed++;
        } else {
          errors++;
          log::Error("simulated completion failed",
                     {{"task", lease->task().task_id()}, {"error", s.ToString()}});
        }
      }
      stop.store(true);
    });
  }
  for (auto& t : threads) t.join();
  SimWorkerStats stats;
  stats.tasks_completed = completed.load();
  stats.empty_leases = empty.load();
  stats.errors = errors.load();
  stats.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return stats;
}

}  // namespace vptq::coordinator
