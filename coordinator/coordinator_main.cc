// vptq-coordinator: plans jobs, hands tasks to workers, keeps state in
// RocksDB, serves ClientService + WorkerService (gRPC), grpc.health.v1,
// reflection, and /metrics.
//
//   VPTQ_CLIENT_TOKEN=... VPTQ_WORKER_TOKEN=... vptq-coordinator
//       --listen 0.0.0.0:50051 --store /var/lib/vptq
//       --config /etc/vptq/coordinator.textproto --metrics_listen 0.0.0.0:9090
//
// Lifecycle: health NOT_SERVING while the store is recovered, SERVING after,
// NOT_SERVING while the store does not take writes (checked every 5 s).
// SIGTERM/SIGINT only set a flag; the main loop then sets NOT_SERVING, drains
// (no new leases/jobs, watches end UNAVAILABLE so clients reconnect), shuts
// the server down with the drain deadline, closes the store, and stops
// /metrics last. Exit codes: 0 clean, 2 bad flags/config, 1 runtime failure.
#include "absl/synchronization/mutex.h"
#include <csignal>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "coordinator/config.h"
#include "coordinator/coordinator.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/grpc_services.h"
#include "coordinator/metrics_http.h"
#include "coordinator/rocks_job_store.h"

#ifndef VPTQ_VERSION
#define VPTQ_VERSION "dev"
#endif

namespace {

volatile std::sig_atomic_t g_stop = 0;
extern "C" void OnSignal(int) { g_stop = 1; }

void SetHealth(grpc::Server* server, bool serving) {
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus(serving);  // every service, and ""
}

int Fail(int code, const std::string& what, const absl::Status& s) {
  vptq::log::Error(what, {{"error", s.ToString()}});
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil is built without NDEBUG, which leaves Mutex deadlock
  // detection (a lock-order graph updated on every Lock) on. Tests keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  using namespace vptq::coordinator;  // NOLINT
  CLI::App app{"vptq-coordinator: the VPTQ quantization service's coordinator"};
  std::string listen = "127.0.0.1:50051";
  std::string store_path;
  std::string config_path;
  std::string metrics_listen = "127.0.0.1:9090";
  std::string log_level = "info";
  app.add_option("--listen", listen, "gRPC address (host:port)");
  app.add_option("--store", store_path, "RocksDB directory (created if missing)")->required();
  app.add_option("--config", config_path, "CoordinatorConfig text proto")->required();
  app.add_option("--metrics_listen", metrics_listen,
                 "HTTP address for /metrics (empty: no metrics server)");
  app.add_option("--log_level", log_level, "trace|debug|info|warn|error");
  CLI11_PARSE(app, argc, argv);
  vptq::LogOptions log_options;
  log_options.level = log_level;
  vptq::InitLogging(log_options);

  vptq::v1::CoordinatorConfig config;
  if (auto s = LoadCoordinatorConfig(config_path, &config); !s.ok()) {
    return Fail(2, "invalid configuration", s);
  }
  auto tokens = TokensFromEnv(config);
  if (!tokens.ok()) return Fail(2, "invalid tokens", tokens.status());
  auto creds = MakeServerCredentials(config.tls());
  if (!creds.ok()) return Fail(2, "invalid TLS configuration", creds.status());

  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);

  // Metrics first (and stopped last) so the whole life is observable.
  vptq::MetricsRegistry registry;
  auto metrics = CoordinatorMetrics::Create(&registry, VPTQ_VERSION);
  if (!metrics.ok()) return Fail(1, "metrics", metrics.status());
  std::unique_ptr<vptq::MetricsHttpServer> http;
  if (!metrics_listen.empty()) {
    auto started = vptq::MetricsHttpServer::Start(metrics_listen, &registry);
    if (!started.ok()) return Fail(1, "metrics server", started.status());
    http = std::move(*started);
  }

  CoordinatorSlot slot;
  ClientServiceImpl client_service(&slot, *tokens);
  WorkerServiceImpl worker_service(&slot, *tokens);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, *creds, &port);
  builder.SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);
  builder.RegisterService(&client_service);
  builder.RegisterService(&worker_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return Fail(1, "cannot listen", absl::UnavailableError(listen));
  }
  SetHealth(server.get(), false);
  vptq::log::Info("listening", {{"grpc", listen},
                               {"port", port},
                               {"metrics", metrics_listen},
                               {"tls", !config.tls().cert_path().empty()},
                               {"version", VPTQ_VERSION}});

  auto store = RocksJobStore::Open(store_path);
  if (!store.ok()) {
    server->Shutdown();
    return Fail(1, "cannot open store", store.status());
  }
  CoordinatorOptions options;
  options.config = config;
  options.observer = metrics->get();
  auto coordinator = Coordinator::Open(std::move(*store), options);
  if (!coordinator.ok()) {
    server->Shutdown();
    return Fail(1, "recovery failed", coordinator.status());
  }
  slot.Set(coordinator->get());
  SetHealth(server.get(), true);
  vptq::log::Info("serving", {{"port", port}});

  // A store that stopped taking writes (an I/O error RocksDB cannot resume
  // from) makes health NOT_SERVING, so the liveness probe restarts the
  // coordinator and recovery reopens the store; a full disk heals in place.
  bool writable = true;
  for (int tick = 0; !g_stop; ++tick) {
    absl::SleepFor(absl::Milliseconds(100));
    if (tick % 50 != 0) continue;
    const absl::Status s = (*coordinator)->store().CheckWritable();
    if (s.ok() == writable) continue;
    writable = s.ok();
    SetHealth(server.get(), writable);
    if (writable) {
      vptq::log::Info("store takes writes again; serving");
    } else {
      vptq::log::Error("store does not take writes; health NOT_SERVING",
                       {{"error", std::string(s.message())}});
    }
  }

  const absl::Duration drain = absl::Seconds(config.drain_seconds());
  vptq::log::Info("shutting down", {{"drain_seconds", config.drain_seconds()}});
  SetHealth(server.get(), false);
  (*coordinator)->BeginDrain();
  server->Shutdown(absl::ToChronoTime(absl::Now() + drain));
  server->Wait();
  slot.Set(nullptr);
  vptq::log::Info("grpc server stopped");
  coordinator->reset();  // closes the store
  vptq::log::Info("store closed");
  http.reset();          // metrics last
  vptq::log::Info("stopped");
  return 0;
}
