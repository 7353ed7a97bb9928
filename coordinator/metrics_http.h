// Serves a MetricsRegistry on GET /metrics (Prometheus text format 0.0.4)
// over HTTP with civetweb. Anything else is 404.
//
//   VPTQ_ASSIGN_OR_RETURN(auto http, MetricsHttpServer::Start("127.0.0.1:9090", &registry));
//   int port = http->port();   // the bound port (useful with ":0"-style "127.0.0.1:0")
//
// Start returns once the socket is bound (UNAVAILABLE when it cannot be).
// The registry must outlive the server. Destroying the server stops it;
// requests run on civetweb's threads.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/metrics.h"

struct mg_context;

namespace vptq {

class MetricsHttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& listen,
                                                                  const MetricsRegistry* registry);
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const { return port_; }
  const MetricsRegistry* registry() const { return registry_; }

 private:
  MetricsHttpServer() = default;
  mg_context* ctx_ = nullptr;
  const MetricsRegistry* registry_ = nullptr;
  int port_ = 0;
};

}  // namespace vptq
