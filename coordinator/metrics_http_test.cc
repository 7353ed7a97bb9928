#include "coordinator/metrics_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status.h"
#include "common/status_matchers.h"

namespace vptq {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// One HTTP/1.0 request on a fresh connection; returns the whole response.
std::string HttpGet(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  (void)!::write(fd, request.data(), request.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

TEST(MetricsHttpTest, ServesTheRegistry) {
  MetricsRegistry registry;
  VPTQ_ASSERT_OK_AND_ASSIGN(auto* c, registry.AddCounter("vptq_test_total", "Test.", {"k"}));
  c->Labels({"v"}).Increment(3);
  VPTQ_ASSERT_OK_AND_ASSIGN(auto server, MetricsHttpServer::Start("127.0.0.1:0", &registry));
  ASSERT_GT(server->port(), 0);
  std::string resp = HttpGet(server->port(), "GET /metrics HTTP/1.0\r\n\r\n");
  EXPECT_THAT(resp, StartsWith("HTTP/1.0 200"));
  EXPECT_THAT(resp, HasSubstr("Content-Type: text/plain; version=0.0.4; charset=utf-8"));
  EXPECT_THAT(resp, HasSubstr("\r\n\r\n# HELP vptq_test_total Test.\n# TYPE vptq_test_total counter\n"
                              "vptq_test_total{k=\"v\"} 3\n"));
  c->Labels({"v"}).Increment();
  EXPECT_THAT(HttpGet(server->port(), "GET /metrics HTTP/1.0\r\n\r\n"),
              HasSubstr("vptq_test_total{k=\"v\"} 4\n"));
  EXPECT_THAT(HttpGet(server->port(), "GET /other HTTP/1.0\r\n\r\n"), StartsWith("HTTP/1.0 404"));
  EXPECT_THAT(HttpGet(server->port(), "POST /metrics HTTP/1.0\r\n\r\n"),
              StartsWith("HTTP/1.0 405"));
}

TEST(MetricsHttpTest, BusyPortIsUnavailable) {
  MetricsRegistry registry;
  VPTQ_ASSERT_OK_AND_ASSIGN(auto first, MetricsHttpServer::Start("127.0.0.1:0", &registry));
  auto second =
      MetricsHttpServer::Start("127.0.0.1:" + std::to_string(first->port()), &registry);
  EXPECT_THAT(second.status(), ::vptq::testing::StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace vptq
