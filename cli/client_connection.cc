#include "cli/client_connection.h"

#include "coordinator/grpc_channel.h"

namespace vptq::cli {

std::unique_ptr<grpc::ClientContext> ClientConnection::UnaryContext() const {
  return coordinator::MakeCallContext(token, call_timeout, /*wait_for_ready=*/true);
}

absl::StatusOr<ClientConnection> ConnectToCoordinator(const GlobalFlags& flags) {
  coordinator::ChannelOptions options;
  options.address = flags.coordinator;
  options.ca_path = flags.ca_file;
  options.token = flags.token;
  options.tls_server_name = flags.tls_server_name;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      coordinator::MakeCoordinatorChannel(options);
  if (!channel.ok()) return channel.status();
  ClientConnection c;
  c.channel = *channel;
  c.stub = v1::ClientService::NewStub(c.channel);
  c.token = flags.token;
  c.call_timeout = absl::Seconds(flags.call_timeout_seconds);
  c.source = MakeGrpcJobSource(c.channel, c.token, c.call_timeout);
  return c;
}

}  // namespace vptq::cli
