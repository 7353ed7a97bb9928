// vptq-worker: leases tasks from a coordinator and runs them, one worker
// loop per device (worker_loop.h).
//
//   VPTQ_WORKER_TOKEN=... vptq-worker --coordinator coord:50051 --devices cuda:0,cuda:1
//   vptq-worker --coordinator 127.0.0.1:50051 --devices cpu --threads 8
//
// Each device's loop has worker id "<worker-id>/<device>". SIGTERM/SIGINT
// only set a flag; a watcher thread then stops every loop (a running task is
// given back with FailTask CANCELLED, so it is queued again without
// counting an attempt) and the process exits 0. A computation the loop
// dropped is not waited for. Exit codes: 0 stopped cleanly, 2 bad flags, 1 a
// loop gave up (e.g. the token was refused).
#include "absl/synchronization/mutex.h"
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <ATen/Parallel.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "coordinator/grpc_channel.h"
#include "coordinator/metrics_http.h"
#include "worker/device_caps.h"
#include "worker/grpc_transport.h"
#include "worker/worker_loop.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
extern "C" void OnSignal(int) { g_stop = 1; }

std::string DefaultWorkerId() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof(host), "worker");
  }
  return absl::StrCat(host, "-", getpid());
}

int Usage(const std::string& message) {
  std::fprintf(stderr, "vptq-worker: %s\n", message.c_str());
  return 2;
}

// Worker-side figures for /metrics, refreshed from the loops' stats.
struct WorkerMetrics {
  vptq::Family<vptq::Gauge>* tasks = nullptr;
  vptq::Family<vptq::Gauge>* busy = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil is built without NDEBUG, which leaves Mutex deadlock
  // detection (a lock-order graph updated on every Lock) on. Tests keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  using vptq::worker::WorkerLoop;
  CLI::App app{"vptq-worker: runs VPTQ quantization tasks leased from a coordinator"};
  std::string coordinator_address;
  std::string token;
  std::string ca_file;
  std::string tls_server_name;
  std::string devices = "cpu";
  int threads = 0;
  std::string worker_id;
  std::string metrics_listen;
  std::string log_level = "info";
  int lease_wait_ms = 5000;
  app.add_option("--coordinator", coordinator_address, "coordinator address host:port")
      ->envname("VPTQ_COORDINATOR");
  app.add_option("--token", token, "worker bearer token")->envname("VPTQ_WORKER_TOKEN");
  app.add_option("--ca-file", ca_file, "PEM CA certificates: use TLS (plaintext without)");
  app.add_option("--tls-server-name", tls_server_name,
                 "name to check in the coordinator's certificate (default: the host)");
  app.add_option("--devices", devices, "cpu, or CUDA devices such as cuda:0,cuda:1 (one loop each)");
  app.add_option("--threads", threads, "libtorch intra-op threads per task (0: libtorch's default)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--worker-id", worker_id, "worker id prefix (default: hostname-pid)");
  app.add_option("--metrics-listen", metrics_listen,
                 "HTTP address for /metrics, e.g. 0.0.0.0:9091 (default: none)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  app.add_option("--lease-wait-ms", lease_wait_ms, "LeaseTask long-poll in milliseconds")
      ->check(CLI::Range(0, 600000));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help (rc 0) or the error
    return rc == 0 ? 0 : 2;
  }

  vptq::InitLogging(vptq::LogOptions{.level = log_level});
  if (coordinator_address.empty()) {
    return Usage("--coordinator (or VPTQ_COORDINATOR) is required: the coordinator's host:port");
  }
  auto device_list = vptq::worker::ParseDeviceList(devices);
  if (!device_list.ok()) return Usage(std::string(device_list.status().message()));
  std::vector<vptq::v1::WorkerCapabilities> caps;
  for (const std::string& d : *device_list) {
    auto c = vptq::worker::DeviceCapabilities(d);
    if (!c.ok()) return Usage(std::string(c.status().message()));
    caps.push_back(*std::move(c));
  }
  if (worker_id.empty()) worker_id = DefaultWorkerId();

  vptq::coordinator::ChannelOptions channel;
  channel.address = coordinator_address;
  channel.ca_path = ca_file;
  channel.token = token;
  channel.tls_server_name = tls_server_name;
  auto transport = vptq::worker::MakeGrpcWorkerTransport(channel);
  if (!transport.ok()) return Usage(std::string(transport.status().message()));

  if (threads > 0) at::set_num_threads(threads);

  vptq::MetricsRegistry registry;
  WorkerMetrics metrics;
  std::unique_ptr<vptq::MetricsHttpServer> http;
  if (!metrics_listen.empty()) {
    auto tasks = registry.AddGauge("vptq_worker_tasks", "Tasks this process handled, by outcome.",
                                   {"device", "outcome"});
    auto busy = registry.AddGauge("vptq_worker_busy", "1 while the device runs a task.",
                                  {"device"});
    auto info = registry.AddGauge("vptq_build_info", "Build version.", {"version"});
    if (!tasks.ok() || !busy.ok() || !info.ok()) return Usage("cannot register metrics");
    metrics.tasks = *tasks;
    metrics.busy = *busy;
    (*info)->Labels({vptq::worker::WorkerVersion()}).Set(1);
    auto started = vptq::MetricsHttpServer::Start(metrics_listen, &registry);
    if (!started.ok()) {
      vptq::log::Error("metrics server", {{"error", started.status().ToString()}});
      return 1;
    }
    http = std::move(*started);
  }

  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);

  const size_t n = device_list->size();
  std::vector<std::unique_ptr<WorkerLoop>> loops;
  for (size_t i = 0; i < n; ++i) {
    vptq::worker::WorkerLoopOptions o;
    o.worker_id = absl::StrCat(worker_id, "/", (*device_list)[i]);
    o.device = (*device_list)[i];
    o.capabilities = caps[i];
    o.torch_threads = threads;
    o.lease_wait = absl::Milliseconds(lease_wait_ms);
    loops.push_back(std::make_unique<WorkerLoop>(transport->get(), std::move(o)));
  }
  vptq::log::Info("worker started", {{"coordinator", coordinator_address},
                                     {"devices", devices},
                                     {"worker_id", worker_id},
                                     {"threads", threads},
                                     {"tls", !ca_file.empty()},
                                     {"version", vptq::worker::WorkerVersion()}});

  std::vector<absl::Status> results(n);
  std::atomic<size_t> finished{0};
  std::vector<std::thread> threads_of_loops;
  for (size_t i = 0; i < n; ++i) {
    threads_of_loops.emplace_back([&, i] {
      results[i] = loops[i]->Run();
      if (!results[i].ok()) g_stop = 1;  // one loop giving up stops the process
      ++finished;
    });
  }
  // The watcher: turns the signal flag into Stop() calls, refreshes metrics.
  std::thread watcher([&] {
    bool stopped = false;
    while (finished.load() < n) {
      if (g_stop && !stopped) {
        vptq::log::Info("stopping: running tasks are given back");
        for (auto& loop : loops) loop->Stop();
        stopped = true;
      }
      if (metrics.tasks != nullptr) {
        for (size_t i = 0; i < n; ++i) {
          const auto s = loops[i]->stats();
          const std::string& d = (*device_list)[i];
          metrics.tasks->Labels({d, "completed"}).Set(static_cast<double>(s.completed));
          metrics.tasks->Labels({d, "failed"}).Set(static_cast<double>(s.failed));
          metrics.tasks->Labels({d, "given_back"}).Set(static_cast<double>(s.given_back));
          metrics.tasks->Labels({d, "lost_lease"}).Set(static_cast<double>(s.lost_leases));
          metrics.busy->Labels({d}).Set(loops[i]->computing() ? 1 : 0);
        }
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
  });
  for (auto& t : threads_of_loops) t.join();
  watcher.join();

  int code = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!results[i].ok()) {
      vptq::log::Error("worker loop failed", {{"device", (*device_list)[i]},
                                              {"error", results[i].ToString()}});
      code = 1;
    }
  }
  http.reset();
  bool dropped = false;
  for (auto& loop : loops) dropped = dropped || loop->computing();
  vptq::log::Info("worker stopped", {{"exit_code", code}, {"dropped_computation", dropped}});
  if (dropped) {
    // A given-back task's computation cannot be interrupted mid-stage; its
    // result is unwanted, so do not wait for it.
    std::fflush(stderr);
    std::_Exit(code);
  }
  return code;
}
