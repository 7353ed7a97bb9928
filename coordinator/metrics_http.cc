#include "coordinator/metrics_http.h"

#include <civetweb.h>

#include "absl/strings/str_cat.h"

namespace vptq {
namespace {

int HandleMetrics(struct mg_connection* conn, void* data) {
  const auto* self = static_cast<const MetricsHttpServer*>(data);
  const struct mg_request_info* info = mg_get_request_info(conn);
  if (info == nullptr || (std::string(info->request_method) != "GET" &&
                          std::string(info->request_method) != "HEAD")) {
    mg_send_http_error(conn, 405, "%s", "only GET /metrics");
    return 405;
  }
  const std::string body = self->registry()->RenderText();
  mg_send_http_ok(conn, "text/plain; version=0.0.4; charset=utf-8",
                  static_cast<long long>(body.size()));
  if (std::string(info->request_method) == "GET") {
    mg_write(conn, body.data(), body.size());
  }
  return 200;
}

int QuietLog(const struct mg_connection*, const char*) { return 1; }

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen, const MetricsRegistry* registry) {
  static const unsigned kInit = mg_init_library(0);
  (void)kInit;
  std::unique_ptr<MetricsHttpServer> s(new MetricsHttpServer());
  s->registry_ = registry;
  const char* options[] = {"listening_ports", listen.c_str(), "num_threads", "2",
                           "request_timeout_ms", "10000", nullptr};
  struct mg_callbacks callbacks = {};
  callbacks.log_message = QuietLog;
  s->ctx_ = mg_start(&callbacks, s.get(), options);
  if (s->ctx_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve /metrics on '", listen, "' (address in use or invalid)"));
  }
  mg_set_request_handler(s->ctx_, "/metrics$", HandleMetrics, s.get());
  struct mg_server_port ports[4] = {};
  int n = mg_get_server_ports(s->ctx_, 4, ports);
  if (n > 0) s->port_ = ports[0].port;
  return s;
}

MetricsHttpServer::~MetricsHttpServer() {
  if (ctx_ != nullptr) mg_stop(ctx_);
}

}  // namespace vptq
