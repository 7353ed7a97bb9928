// The vptq-coordinator binary as a process: health NOT_SERVING -> SERVING,
// authenticated RPCs, /metrics, SIGTERM drains and
// exits 0, a bad config exits 2.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/support/byte_buffer.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "coordinator/test_util.h"
#include "vptq/v1/coordinator.grpc.pb.h"

namespace vptq::coordinator {
namespace {

namespace fs = std::filesystem;

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string Binary() {
  const char* b = std::getenv("VPTQ_BUILD_DIR");
  return absl::StrCat(b != nullptr ? b : "build", "/vptq-coordinator");
}

pid_t Spawn(const std::vector<std::string>& args, bool with_tokens) {
  pid_t pid = fork();
  if (pid == 0) {
    if (with_tokens) {
      setenv("VPTQ_CLIENT_TOKEN", "client-token-for-main-test", 1);
      setenv("VPTQ_WORKER_TOKEN", "worker-token-for-main-test", 1);
    }
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// grpc.health.v1.Health/Check for service "": 1 SERVING, 2 NOT_SERVING,
// -1 no answer.
int HealthStatus(const std::string& target) {
  // A fresh channel each time: a channel that saw "connection refused"
  // waits out a reconnect backoff before it tries again.
  auto ch = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::Slice empty;
  grpc::ByteBuffer request(&empty, 1), response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  grpc::internal::RpcMethod method("/grpc.health.v1.Health/Check",
                                   grpc::internal::RpcMethod::NORMAL_RPC);
  grpc::Status s = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
      ch.get(), method, &ctx, request, &response);
  if (!s.ok()) return -1;
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return -1;
  std::string bytes;
  for (const auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  // HealthCheckResponse{status = 1 (varint field 1)}.
  if (bytes.size() == 2 && bytes[0] == 0x08) return bytes[1];
  return bytes.empty() ? 0 : -1;
}

std::string HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  std::string req = "GET " + path + " HTTP/1.0\r\n\r\n";
  (void)!::write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

int WaitExit(pid_t pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

class CoordinatorMainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(Binary())) GTEST_SKIP() << Binary() << " is not built";
    dir_ = fs::canonical(MakeTempDir("coord_main")).string();
    fs::create_directories(dir_ + "/models");
    ASSERT_TRUE(WriteTestFile(dir_ + "/config.textproto",
                              absl::StrCat("input_roots: \"", dir_, "/models\"\n"
                                           "drain_seconds: 5\n"))
                    .ok());
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string dir_;
};

TEST_F(CoordinatorMainTest, ServesHealthMetricsAndDrainsOnSigterm) {
  const int port = FreePort(), metrics_port = FreePort();
  pid_t pid = Spawn({Binary(), "--listen", absl::StrCat("127.0.0.1:", port), "--store",
                     dir_ + "/store", "--config", dir_ + "/config.textproto", "--metrics_listen",
                     absl::StrCat("127.0.0.1:", metrics_port), "--log_level", "warn"},
                    /*with_tokens=*/true);
  ASSERT_GT(pid, 0);
  const std::string target = absl::StrCat("127.0.0.1:", port);
  int health = -1;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline && (health = HealthStatus(target)) != 1) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(health, 1) << "never became SERVING";

  {
    // Closed before SIGTERM: an idle client notices the server's GOAWAY only
    // at its next poll (up to 5 s), which would stretch the drain.
    auto ch = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
    auto client = v1::ClientService::NewStub(ch);
    v1::ListJobsResponse list;
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer client-token-for-main-test");
    EXPECT_TRUE(client->ListJobs(&ctx, v1::ListJobsRequest(), &list).ok());
    grpc::ClientContext bad;
    bad.AddMetadata("authorization", "Bearer worker-token-for-main-test");
    EXPECT_EQ(client->ListJobs(&bad, v1::ListJobsRequest(), &list).error_code(),
              grpc::PERMISSION_DENIED);
  }
  const std::string metrics = HttpGet(metrics_port, "/metrics");
  EXPECT_THAT(metrics, ::testing::HasSubstr("vptq_build_info{version="));
  EXPECT_THAT(metrics, ::testing::HasSubstr("# TYPE vptq_task_duration_seconds histogram"));

  ASSERT_EQ(kill(pid, SIGTERM), 0);
  EXPECT_EQ(WaitExit(pid, absl::Seconds(30)), 0);
  EXPECT_TRUE(fs::exists(dir_ + "/store/CURRENT"));  // the RocksDB store was created
}

TEST_F(CoordinatorMainTest, BadConfigOrMissingTokensExitTwo) {
  ASSERT_TRUE(WriteTestFile(dir_ + "/bad.textproto", "lease_seconds: oops").ok());
  pid_t pid = Spawn({Binary(), "--store", dir_ + "/s", "--config", dir_ + "/bad.textproto",
                     "--metrics_listen", "", "--log_level", "off"},
                    true);
  EXPECT_EQ(WaitExit(pid, absl::Seconds(20)), 2);
  unsetenv("VPTQ_CLIENT_TOKEN");
  unsetenv("VPTQ_WORKER_TOKEN");
  pid = Spawn({Binary(), "--store", dir_ + "/s", "--config", dir_ + "/config.textproto",
               "--metrics_listen", "", "--log_level", "off"},
              false);
  EXPECT_EQ(WaitExit(pid, absl::Seconds(20)), 2);
}

}  // namespace
}  // namespace vptq::coordinator
