// Scheduler throughput: plan a Llama-shaped job (7B / 70B / 405B shapes:
// Hessian shards + REDUCE per input + QUANTIZE per linear + ASSEMBLE) and
// let N simulated in-process workers complete every task at once, so the
// coordinator (queueing, leases, store writes, events) is all that is timed.
//
// One JSON line per shape on stdout:
//   {"bench":"scheduler","shape":"70b","tasks":897,"workers":64,"store":"rocksdb",
//    "tasks_per_s":...,"tasks_per_s_runs":[...],"peak_rss_mb":...}
// tasks_per_s is the median over --repeats runs. Each shape runs in its own
// child process so peak_rss_mb (ru_maxrss: coordinator + simulated workers +
// store) is that shape's alone.
//
//   bench/run service_scheduler --shape all --workers 64
#include "absl/synchronization/mutex.h"
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "coordinator/coordinator.h"
#include "coordinator/memory_job_store.h"
#include "coordinator/rocks_job_store.h"
#include "coordinator/sim_workers.h"

namespace {

using namespace vptq::coordinator;  // NOLINT

struct Shape {
  std::string name;
  LlamaShape dims;
};

const std::vector<Shape>& Shapes() {
  static const std::vector<Shape> shapes = {{"7b", LlamaShape::Llama7B()},
                                            {"70b", LlamaShape::Llama70B()},
                                            {"405b", LlamaShape::Llama405B()}};
  return shapes;
}

double PeakRssMb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // KiB on Linux
}

struct RunResult {
  int64_t tasks = 0;
  double tasks_per_s = 0;
  bool ok = false;
};

RunResult RunOnce(const Shape& shape, int workers, const std::string& store_kind, bool sync,
                  const std::string& dir, int shards) {
  RunResult out;
  std::unique_ptr<JobStore> store;
  if (store_kind == "memory") {
    store = std::make_unique<MemoryJobStore>();
  } else {
    RocksStoreOptions o;
    o.allow_sync = sync;
    auto s = RocksJobStore::Open(dir, o);
    if (!s.ok()) {
      std::cerr << "store: " << s.status() << "\n";
      return out;
    }
    store = std::move(*s);
  }
  CoordinatorOptions options;
  options.config.add_input_roots("/");
  auto coordinator = Coordinator::Open(std::move(store), options);
  if (!coordinator.ok()) {
    std::cerr << "open: " << coordinator.status() << "\n";
    return out;
  }
  Coordinator& c = **coordinator;
  vptq::v1::SubmitJobRequest req;
  vptq::v1::JobSpec* spec = req.mutable_spec();
  spec->set_name("bench-" + shape.name);
  spec->mutable_model()->set_path("/bench/" + shape.name);
  spec->mutable_calibration()->add_text_paths("/bench/text");
  spec->mutable_calibration()->set_num_sequences(shards * 16);
  spec->mutable_calibration()->set_num_shards(shards);
  spec->mutable_quant()->set_bits(2);
  auto submitted = c.SubmitPlannedJob(req, LlamaShapedModel(shape.dims));
  if (!submitted.ok()) {
    std::cerr << "submit: " << submitted.status() << "\n";
    return out;
  }
  const std::string job_id = submitted->job_id();
  SimWorkerOptions sim;
  sim.workers = workers;
  SimWorkerStats stats = RunSimulatedWorkers(c, sim, [&] { return JobFinished(c, job_id); });
  vptq::v1::GetJobRequest get;
  get.set_job_id(job_id);
  auto job = c.GetJob(get);
  out.ok = job.ok() && job->job().phase() == vptq::v1::JOB_PHASE_SUCCEEDED && stats.errors == 0;
  if (!out.ok) {
    std::cerr << "job did not succeed (errors " << stats.errors << ")\n";
  }
  out.tasks = stats.tasks_completed;
  out.tasks_per_s = stats.seconds > 0 ? static_cast<double>(stats.tasks_completed) / stats.seconds : 0;
  return out;
}

int RunShape(const Shape& shape, int workers, int repeats, const std::string& store_kind,
             bool sync, int shards) {
  std::vector<double> rates;
  int64_t tasks = 0;
  for (int r = 0; r < repeats; ++r) {
    const std::string dir =
        (std::filesystem::temp_directory_path() /
         ("vptq_sched_bench." + std::to_string(getpid()) + "." + std::to_string(r)))
            .string();
    std::filesystem::remove_all(dir);
    RunResult res = RunOnce(shape, workers, store_kind, sync, dir, shards);
    std::filesystem::remove_all(dir);
    if (!res.ok) return 1;
    tasks = res.tasks;
    rates.push_back(res.tasks_per_s);
    std::cerr << "scheduler " << shape.name << " run " << r + 1 << "/" << repeats << ": "
              << res.tasks_per_s << " tasks/s\n";
  }
  std::vector<double> sorted = rates;
  std::sort(sorted.begin(), sorted.end());
  nlohmann::ordered_json line;
  line["bench"] = "scheduler";
  line["shape"] = shape.name;
  line["tasks"] = tasks;
  line["workers"] = workers;
  line["store"] = store_kind;
  line["sync"] = sync;
  line["hessian_shards"] = shards;
  line["tasks_per_s"] = sorted[sorted.size() / 2];
  line["tasks_per_s_runs"] = rates;
  line["peak_rss_mb"] = PeakRssMb();
  std::cout << line.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil is built without NDEBUG, which leaves Mutex deadlock
  // detection (a lock-order graph updated on every Lock) on. Tests keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{"Coordinator scheduling throughput with simulated workers"};
  std::string shape = "all";
  int workers = 64, repeats = 3, shards = 8;
  std::string store = "rocksdb";
  bool sync = true;
  app.add_option("--shape", shape, "7b | 70b | 405b | all");
  app.add_option("--workers", workers, "simulated workers");
  app.add_option("--repeats", repeats, "runs per shape (median reported)");
  app.add_option("--store", store, "rocksdb | memory");
  app.add_option("--sync", sync, "fsync completions (as the service does)");
  app.add_option("--shards", shards, "Hessian shards per job");
  CLI11_PARSE(app, argc, argv);
  vptq::LogOptions log_options;
  log_options.level = "error";
  vptq::InitLogging(log_options);

  if (shape != "all") {
    for (const Shape& s : Shapes()) {
      if (s.name == shape) return RunShape(s, workers, repeats, store, sync, shards);
    }
    std::cerr << "unknown shape " << shape << "\n";
    return 3;
  }
  // One child per shape: each reports its own peak RSS.
  int rc = 0;
  for (const Shape& s : Shapes()) {
    pid_t pid = fork();
    if (pid == 0) _exit(RunShape(s, workers, repeats, store, sync, shards));
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
  }
  return rc;
}
