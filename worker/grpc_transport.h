// WorkerTransport over gRPC: the `vptq-worker` process's connection to a
// remote coordinator's WorkerService (proto/vptq/v1/coordinator.proto).
// Every call carries the worker bearer token and a deadline; gRPC status
// codes come back as the same absl codes (FromGrpcStatus), so an unreachable
// or restarting coordinator is UNAVAILABLE and the worker loop retries it.
//
// Deadlines: LeaseTask its long-poll (max_wait_ms) + kGrpcCallSlack;
// Heartbeat and FailTask kGrpcCallSlack; FetchArtifact and CompleteTask
// kGrpcStreamTimeout (a stalled fetch is resumed by offset).
//
//   coordinator::ChannelOptions o{.address = "coord:50051", .token = token};
//   VPTQ_ASSIGN_OR_RETURN(auto transport, MakeGrpcWorkerTransport(o));
//   WorkerLoop loop(transport.get(), {.worker_id = "host-1/cpu"});
//
// Thread-safe (one channel, one stub; calls may run concurrently).
#pragma once

#include <memory>
#include <string>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/grpc_channel.h"
#include "worker/worker_transport.h"

namespace vptq::worker {

inline constexpr absl::Duration kGrpcCallSlack = absl::Seconds(30);
inline constexpr absl::Duration kGrpcStreamTimeout = absl::Minutes(30);

// INVALID_ARGUMENT / NOT_FOUND from MakeCoordinatorChannel (no address, an
// unreadable CA file). Connects lazily.
absl::StatusOr<std::unique_ptr<WorkerTransport>> MakeGrpcWorkerTransport(
    const coordinator::ChannelOptions& options);

// Over an existing channel (tests, a shared channel).
std::unique_ptr<WorkerTransport> MakeGrpcWorkerTransport(std::shared_ptr<grpc::Channel> channel,
                                                         std::string token);

}  // namespace vptq::worker
