// A connection to the coordinator's ClientService from vptqctl's global
// flags: the channel (TLS when --ca-file is given), the stub, and contexts
// that carry the bearer token.
//
//   VPTQ_ASSIGN_OR_RETURN(ClientConnection c, ConnectToCoordinator(ctx.flags));
//   auto call = c.UnaryContext();
//   absl::Status s = FromGrpcStatus(c.stub->GetJob(call.get(), request, &response));
//
// Errors: INVALID_ARGUMENT for an empty address, NOT_FOUND / INVALID_ARGUMENT
// for an unreadable CA file. Nothing connects until the first call. A
// connection may be used from several threads (gRPC stubs are thread-safe).
#pragma once

#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/cli_app.h"
#include "cli/job_source.h"
#include "vptq/v1/coordinator.grpc.pb.h"

namespace vptq::cli {

struct ClientConnection {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::ClientService::Stub> stub;
  std::unique_ptr<JobSource> source;
  std::string token;
  absl::Duration call_timeout = absl::Seconds(30);

  // Token + call timeout; waits for the channel to connect (rides out a
  // coordinator restart) until the timeout.
  std::unique_ptr<grpc::ClientContext> UnaryContext() const;
};

absl::StatusOr<ClientConnection> ConnectToCoordinator(const GlobalFlags& flags);

}  // namespace vptq::cli
