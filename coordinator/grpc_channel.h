// The client side of a connection to the coordinator, shared by vptqctl and
// vptq-worker: a channel (TLS when a CA file is given, plaintext otherwise)
// and the per-call context carrying `authorization: Bearer <token>` and a
// deadline.
//
//   ChannelOptions o{.address = "127.0.0.1:50051", .ca_path = ca, .token = tok};
//   VPTQ_ASSIGN_OR_RETURN(auto channel, MakeCoordinatorChannel(o));
//   auto stub = v1::ClientService::NewStub(channel);
//   auto ctx = MakeCallContext(o.token, absl::Seconds(10));
//   absl::Status s = FromGrpcStatus(stub->GetJob(ctx.get(), request, &response));
#pragma once

#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vptq::coordinator {

struct ChannelOptions {
  std::string address;        // host:port
  std::string ca_path;        // PEM root certificates; empty = plaintext
  std::string token;          // bearer token; empty = none sent
  std::string tls_server_name;  // override the name checked in the certificate
};

// INVALID_ARGUMENT for an empty address or a CA file with no PEM
// certificate; the read error (NOT_FOUND, PERMISSION_DENIED, ...) naming the
// file when it cannot be read. Does not connect (gRPC connects lazily).
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeCoordinatorChannel(const ChannelOptions& options);

// A context with the bearer token and a deadline (`timeout` of
// absl::InfiniteDuration() sets none). wait_for_ready lets calls ride out a
// coordinator restart until the deadline.
std::unique_ptr<grpc::ClientContext> MakeCallContext(const std::string& token,
                                                     absl::Duration timeout,
                                                     bool wait_for_ready = false);

}  // namespace vptq::coordinator
