#include "coordinator/grpc_channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/status.h"

namespace vptq::coordinator {
namespace {

// Room for whole checkpoint chunks and large job listings.
constexpr int kMaxMessageBytes = 64 << 20;

absl::StatusOr<std::string> ReadPem(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFile(path);
  if (!pem.ok()) return Annotate(pem.status(), "CA certificate file");
  if (pem->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("CA certificate file ", path, " holds no PEM certificate"));
  }
  return pem;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeCoordinatorChannel(const ChannelOptions& options) {
  if (options.address.empty()) {
    return absl::InvalidArgumentError("no coordinator address (host:port) given");
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // Reconnect quickly after a coordinator restart.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  if (options.ca_path.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    auto pem = ReadPem(options.ca_path);
    if (!pem.ok()) return pem.status();
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = *pem;
    creds = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
  }
  return grpc::CreateCustomChannel(options.address, creds, args);
}

std::unique_ptr<grpc::ClientContext> MakeCallContext(const std::string& token,
                                                     absl::Duration timeout,
                                                     bool wait_for_ready) {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  if (timeout != absl::InfiniteDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
  context->set_wait_for_ready(wait_for_ready);
  return context;
}

}  // namespace vptq::coordinator
