// WorkerTransport over a Coordinator in the same process (the embedded
// `vptqctl quantize`): each call is the Coordinator method of the same name.
#include "coordinator/coordinator.h"
#include "worker/worker_transport.h"

namespace vptq::worker {
namespace {

class InProcessWorkerTransport final : public WorkerTransport {
 public:
  explicit InProcessWorkerTransport(coordinator::Coordinator* coordinator)
      : coordinator_(coordinator) {}

  absl::StatusOr<v1::LeaseTaskResponse> LeaseTask(const v1::LeaseTaskRequest& request) override {
    return coordinator_->LeaseTask(request);
  }
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) override {
    return coordinator_->Heartbeat(request);
  }
  absl::Status FetchArtifact(
      const v1::DownloadArtifactRequest& request,
      const std::function<bool(const v1::ArtifactStreamResponse&)>& on_message) override {
    return coordinator_->FetchArtifact(request, on_message);
  }
  absl::StatusOr<v1::CompleteTaskResponse> CompleteTask(
      const std::vector<v1::CompleteTaskRequest>& messages) override {
    size_t next = 0;
    return coordinator_->CompleteTask([&](v1::CompleteTaskRequest* out) {
      if (next >= messages.size()) return false;
      *out = messages[next++];
      return true;
    });
  }
  absl::StatusOr<v1::FailTaskResponse> FailTask(const v1::FailTaskRequest& request) override {
    return coordinator_->FailTask(request);
  }

 private:
  coordinator::Coordinator* const coordinator_;
};

}  // namespace

std::unique_ptr<WorkerTransport> MakeInProcessWorkerTransport(coordinator::Coordinator* coordinator) {
  return std::make_unique<InProcessWorkerTransport>(coordinator);
}

}  // namespace vptq::worker
