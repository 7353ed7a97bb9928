// How a worker talks to its coordinator: the five WorkerService calls of
// proto/vptq/v1/coordinator.proto behind one interface, so the same worker
// loop runs against a remote coordinator over gRPC (GrpcWorkerTransport, the
// `vptq-worker` process) or an in-process one (InProcessWorkerTransport, the
// embedded `vptqctl quantize`). Only the transport differs.
//
// Errors are the coordinator's codes as absl::Status (UNAVAILABLE when it is
// unreachable or draining, ABORTED when the lease is gone, DATA_LOSS for a
// corrupted upload, ...).
//
// Thread-safe: the worker loop calls Heartbeat from another thread while a
// task runs.
//
//   auto transport = MakeInProcessWorkerTransport(coordinator.get());
//   VPTQ_ASSIGN_OR_RETURN(v1::LeaseTaskResponse lease, transport->LeaseTask(req));
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "vptq/v1/coordinator.pb.h"

namespace vptq::coordinator {
class Coordinator;
}

namespace vptq::worker {

class WorkerTransport {
 public:
  virtual ~WorkerTransport() = default;

  virtual absl::StatusOr<v1::LeaseTaskResponse> LeaseTask(const v1::LeaseTaskRequest& request) = 0;
  virtual absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) = 0;
  // Calls `on_message` for each message of the stream, in order; a false
  // return stops the stream (CANCELLED).
  virtual absl::Status FetchArtifact(
      const v1::DownloadArtifactRequest& request,
      const std::function<bool(const v1::ArtifactStreamResponse&)>& on_message) = 0;
  // Sends `messages` as one CompleteTask client stream.
  virtual absl::StatusOr<v1::CompleteTaskResponse> CompleteTask(
      const std::vector<v1::CompleteTaskRequest>& messages) = 0;
  virtual absl::StatusOr<v1::FailTaskResponse> FailTask(const v1::FailTaskRequest& request) = 0;
};

// Calls the coordinator's methods directly. `coordinator` outlives the
// transport.
std::unique_ptr<WorkerTransport> MakeInProcessWorkerTransport(coordinator::Coordinator* coordinator);

}  // namespace vptq::worker
