// Test helpers for cli/: a coordinator over a RocksDB store in a temp dir,
// served on 127.0.0.1 and restartable on the same port (what a client sees
// when the coordinator is redeployed); a thread-safe string stream; and
// shortcuts to drive a job's tasks without real workers.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cli/cli_app.h"
#include "common/status.h"
#include "common/status_matchers.h"
#include "coordinator/coordinator.h"
#include "coordinator/grpc_services.h"
#include "coordinator/rocks_job_store.h"
#include "coordinator/sim_workers.h"
#include "coordinator/test_util.h"

namespace vptq::cli::testing {

namespace fs = std::filesystem;
using ::vptq::testing::IsOk;

inline constexpr char kClientToken[] = "cli-client-token-0123456789";
inline constexpr char kWorkerToken[] = "cli-worker-token-0123456789";

// A std::ostream whose contents another thread may read while it is written.
class SyncStream : public std::ostream {
 public:
  SyncStream() : std::ostream(&buf_) {}
  std::string str() const { return buf_.str(); }
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    for (absl::string_view l : absl::StrSplit(str(), '\n', absl::SkipEmpty())) {
      out.emplace_back(l);
    }
    return out;
  }

 private:
  class Buf : public std::stringbuf {
   public:
    std::string str() const {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      return std::stringbuf::str();
    }

   protected:
    int_type overflow(int_type c) override {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      return std::stringbuf::overflow(c);
    }
    std::streamsize xsputn(const char* s, std::streamsize n) override {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      return std::stringbuf::xsputn(s, n);
    }

   private:
    mutable std::recursive_mutex mu_;  // xsputn calls overflow
  };
  Buf buf_;
};

// Waits (real time, polling) until `cond` holds; false after `timeout`.
inline bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time until = absl::Now() + timeout;
  while (!cond()) {
    if (absl::Now() > until) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

// A coordinator served over gRPC; Stop() + Start() is a restart on the same
// port with the same store.
class TestServer {
 public:
  explicit TestServer(std::string store_dir) : store_dir_(std::move(store_dir)) {}
  ~TestServer() { Stop(); }

  v1::CoordinatorConfig& config() { return config_; }

  absl::Status Start() {
    VPTQ_ASSIGN_OR_RETURN(auto store, coordinator::RocksJobStore::Open(
                                          store_dir_, coordinator::RocksStoreOptions{.allow_sync = false}));
    coordinator::CoordinatorOptions o;
    o.config = config_;
    o.tick_interval = absl::Milliseconds(20);
    VPTQ_ASSIGN_OR_RETURN(coordinator_, coordinator::Coordinator::Open(std::move(store), o));
    slot_.Set(coordinator_.get());
    clients_ = std::make_unique<coordinator::ClientServiceImpl>(
        &slot_, coordinator::AuthTokens{kClientToken, kWorkerToken, false});
    grpc::ServerBuilder b;
    b.AddListeningPort(absl::StrCat("127.0.0.1:", port_), grpc::InsecureServerCredentials(),
                       &port_);
    b.SetMaxReceiveMessageSize(coordinator::kMaxReceiveMessageBytes);
    b.RegisterService(clients_.get());
    server_ = b.BuildAndStart();
    if (server_ == nullptr || port_ == 0) return absl::UnavailableError("cannot listen");
    return absl::OkStatus();
  }

  // As the coordinator's main does on SIGTERM: watches end UNAVAILABLE.
  void Stop() {
    if (server_ == nullptr) return;
    coordinator_->BeginDrain();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_->Wait();
    server_.reset();
    slot_.Set(nullptr);
    coordinator_.reset();
  }

  coordinator::Coordinator& coordinator() { return *coordinator_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  std::string store_dir_;
  v1::CoordinatorConfig config_;
  coordinator::CoordinatorSlot slot_;
  std::unique_ptr<coordinator::Coordinator> coordinator_;
  std::unique_ptr<coordinator::ClientServiceImpl> clients_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// A temp dir with a tiny model and calibration text, a server over a store
// in it, and vptqctl runs against that server.
class CliServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::canonical(coordinator::MakeTempDir("cli")).string();
    fs::create_directories(base_ + "/models/tiny");
    ASSERT_THAT(coordinator::WriteTinyLlama(base_ + "/models/tiny"), IsOk());
    ASSERT_THAT(coordinator::WriteTestFile(base_ + "/models/cal.txt", "text"), IsOk());
    server_ = std::make_unique<TestServer>(base_ + "/store");
    server_->config().add_input_roots(base_ + "/models");
    ASSERT_THAT(server_->Start(), IsOk());
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(base_);
  }

  // A valid spec file's text (2 layers: 1 + 8 + 14 + 1 tasks).
  std::string SpecText() const {
    return absl::StrCat("name: \"tiny-2bit\"\nmodel { path: \"", base_,
                        "/models/tiny\" }\ncalibration {\n  text_paths: \"", base_,
                        "/models/cal.txt\"\n  num_sequences: 2\n  num_shards: 1\n}\n"
                        "quant { bits: 2 }\n");
  }

  std::string WriteSpec(const std::string& name, const std::string& text) {
    const std::string path = base_ + "/" + name;
    EXPECT_THAT(coordinator::WriteTestFile(path, text), IsOk());
    return path;
  }

  // Runs vptqctl with the connection flags of this server prepended.
  int Run(std::vector<std::string> args, std::ostream& out, std::ostream& err,
          std::function<bool()> interrupted = nullptr) {
    std::vector<std::string> full = {"vptqctl", "--coordinator", server_->address(), "--token",
                                     kClientToken, "--call-timeout", "5"};
    full.insert(full.end(), args.begin(), args.end());
    return RunVptqctl(full, CliIo{out, err}, {}, std::move(interrupted));
  }
  struct Output {
    int code;
    std::string out, err;
  };
  Output Run(std::vector<std::string> args) {
    std::ostringstream out, err;
    const int code = Run(std::move(args), out, err);
    return {code, out.str(), err.str()};
  }

  std::string Submit(const std::string& request_id = "") {
    v1::SubmitJobRequest req;
    req.mutable_spec()->mutable_model()->set_path(base_ + "/models/tiny");
    req.mutable_spec()->mutable_calibration()->add_text_paths(base_ + "/models/cal.txt");
    req.mutable_spec()->mutable_calibration()->set_num_sequences(2);
    req.mutable_spec()->mutable_calibration()->set_num_shards(1);
    req.mutable_spec()->mutable_quant()->set_bits(2);
    req.set_request_id(request_id);
    auto r = server_->coordinator().SubmitJob(req);
    EXPECT_THAT(r, IsOk());
    return r.ok() ? r->job_id() : "";
  }

  // Leases and completes up to `n` tasks with placeholder outputs (the
  // checkpoint files of ASSEMBLE `bytes` long); returns how many were
  // completed.
  int CompleteTasks(int n, int64_t bytes = 16) {
    int done = 0;
    while (done < n) {
      v1::LeaseTaskRequest lease;
      lease.set_worker_id("test-worker");
      lease.mutable_capabilities()->set_device_kind(v1::DEVICE_KIND_CPU);
      auto got = server_->coordinator().LeaseTask(lease);
      if (!got.ok() || !got->has_task()) break;
      EXPECT_THAT(coordinator::CompleteWithPlaceholders(server_->coordinator(), "test-worker",
                                                        got->task(),
                                                        got->task().kind() == v1::TASK_KIND_ASSEMBLE ? bytes : 16),
                  IsOk());
      ++done;
    }
    return done;
  }
  int CompleteAll(int64_t bytes = 16) { return CompleteTasks(1 << 20, bytes); }

  v1::Job GetJob(const std::string& id) {
    v1::GetJobRequest req;
    req.set_job_id(id);
    auto r = server_->coordinator().GetJob(req);
    EXPECT_THAT(r, IsOk());
    return r.ok() ? r->job() : v1::Job();
  }

  std::string base_;
  std::unique_ptr<TestServer> server_;
};

}  // namespace vptq::cli::testing
