// vptq-e2e-corrupt-upload: a worker whose upload is corrupted in transit, for
// the end-to-end bad-input test (tests/e2e/test_bad_input.py). It leases one
// task from a coordinator over gRPC, builds the CompleteTask stream for
// placeholder outputs with their true SHA-256, flips one bit of the first
// chunk and sends it. Prints the coordinator's answer ("CODE: message") and
// the leased task id, and exits 0 only when the answer is DATA_LOSS.
//
//   vptq-e2e-corrupt-upload --coordinator 127.0.0.1:50051 --token T --worker-id liar
#include <iostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "coordinator/coordinator.h"
#include "worker/grpc_transport.h"

namespace {

int Run(const std::string& address, const std::string& token, const std::string& worker_id,
        int wait_seconds) {
  vptq::coordinator::ChannelOptions channel;
  channel.address = address;
  channel.token = token;
  auto transport = vptq::worker::MakeGrpcWorkerTransport(channel);
  if (!transport.ok()) {
    std::cerr << "corrupt-upload: " << transport.status() << "\n";
    return 3;
  }
  vptq::v1::LeaseTaskRequest lease;
  lease.set_worker_id(worker_id);
  lease.mutable_capabilities()->set_device_kind(vptq::v1::DEVICE_KIND_CPU);
  lease.mutable_capabilities()->set_device_count(1);
  lease.set_max_wait_ms(1000);
  const absl::Time deadline = absl::Now() + absl::Seconds(wait_seconds);
  vptq::v1::TaskAssignment task;
  while (true) {
    auto r = (*transport)->LeaseTask(lease);
    if (r.ok() && r->has_task()) {
      task = r->task();
      break;
    }
    if (absl::Now() > deadline) {
      std::cerr << "corrupt-upload: no task leased within " << wait_seconds << " s"
                << (r.ok() ? "" : ": " + r.status().ToString()) << "\n";
      return 4;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::vector<std::pair<std::string, std::string>> outputs;
  for (const std::string& name : task.required_outputs()) {
    outputs.emplace_back(name, std::string(5000, 'v'));
  }
  std::vector<vptq::v1::CompleteTaskRequest> stream =
      vptq::coordinator::MakeCompleteTaskStream(worker_id, task, outputs, {});
  bool flipped = false;
  for (auto& m : stream) {
    if (m.has_chunk() && !m.chunk().empty()) {
      (*m.mutable_chunk())[m.chunk().size() / 2] ^= 1;
      flipped = true;
      break;
    }
  }
  if (!flipped) {
    std::cerr << "corrupt-upload: task " << task.task_id() << " has no output to corrupt\n";
    return 5;
  }
  auto done = (*transport)->CompleteTask(stream);
  const absl::Status s = done.ok() ? absl::OkStatus() : done.status();
  std::cout << "task " << task.task_id() << "\n"
            << absl::StatusCodeToString(s.code()) << ": " << s.message() << "\n";
  return s.code() == absl::StatusCode::kDataLoss ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Lease one task and complete it with a corrupted upload"};
  std::string address, token, worker_id = "corrupt-upload/cpu";
  int wait_seconds = 60;
  app.add_option("--coordinator", address, "host:port")->required();
  app.add_option("--token", token, "worker bearer token")->required();
  app.add_option("--worker-id", worker_id, "worker id to lease as");
  app.add_option("--wait", wait_seconds, "seconds to wait for a task");
  CLI11_PARSE(app, argc, argv);
  return Run(address, token, worker_id, wait_seconds);
}
