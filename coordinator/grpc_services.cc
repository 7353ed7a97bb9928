#include "coordinator/grpc_services.h"

#include <grpcpp/security/server_credentials.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "coordinator/grpc_status.h"

namespace vptq::coordinator {
namespace {

absl::string_view AuthorizationHeader(const grpc::ServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return {};
  return absl::string_view(it->second.data(), it->second.size());
}

absl::StatusOr<Coordinator*> EnterAs(const grpc::ServerContext* ctx, const CoordinatorSlot* slot,
                                     const AuthTokens& tokens, Caller caller) {
  if (absl::Status s = Authorize(AuthorizationHeader(ctx), caller, tokens); !s.ok()) return s;
  Coordinator* c = slot->Get();
  if (c == nullptr) return absl::UnavailableError("coordinator is recovering; retry shortly");
  return c;
}

template <typename Resp>
grpc::Status Unary(absl::StatusOr<Coordinator*> c,
                   const std::function<absl::StatusOr<Resp>(Coordinator*)>& call, Resp* out) {
  if (!c.ok()) return ToGrpcStatus(c.status());
  absl::StatusOr<Resp> r = call(*c);
  if (!r.ok()) return ToGrpcStatus(r.status());
  *out = std::move(*r);
  return grpc::Status::OK;
}

absl::StatusOr<std::string> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::FailedPreconditionError(absl::StrCat("cannot read '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::StatusOr<Coordinator*> ClientServiceImpl::Enter(grpc::ServerContext* ctx) const {
  return EnterAs(ctx, slot_, tokens_, Caller::kClient);
}

absl::StatusOr<Coordinator*> WorkerServiceImpl::Enter(grpc::ServerContext* ctx) const {
  return EnterAs(ctx, slot_, tokens_, Caller::kWorker);
}

grpc::Status ClientServiceImpl::SubmitJob(grpc::ServerContext* ctx, const v1::SubmitJobRequest* req,
                                          v1::SubmitJobResponse* resp) {
  return Unary<v1::SubmitJobResponse>(
      Enter(ctx), [&](Coordinator* c) { return c->SubmitJob(*req); }, resp);
}

grpc::Status ClientServiceImpl::GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* req,
                                       v1::GetJobResponse* resp) {
  return Unary<v1::GetJobResponse>(
      Enter(ctx), [&](Coordinator* c) { return c->GetJob(*req); }, resp);
}

grpc::Status ClientServiceImpl::ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* req,
                                         v1::ListJobsResponse* resp) {
  return Unary<v1::ListJobsResponse>(
      Enter(ctx), [&](Coordinator* c) { return c->ListJobs(*req); }, resp);
}

grpc::Status ClientServiceImpl::CancelJob(grpc::ServerContext* ctx, const v1::CancelJobRequest* req,
                                          v1::CancelJobResponse* resp) {
  return Unary<v1::CancelJobResponse>(
      Enter(ctx), [&](Coordinator* c) { return c->CancelJob(*req); }, resp);
}

grpc::Status ClientServiceImpl::WatchJob(grpc::ServerContext* ctx, const v1::WatchJobRequest* req,
                                         grpc::ServerWriter<v1::WatchJobResponse>* writer) {
  auto c = Enter(ctx);
  if (!c.ok()) return ToGrpcStatus(c.status());
  return ToGrpcStatus((*c)->WatchJob(
      *req, [&](const v1::WatchJobResponse& r) { return writer->Write(r); },
      [&] { return ctx->IsCancelled(); }));
}

grpc::Status ClientServiceImpl::DownloadArtifact(
    grpc::ServerContext* ctx, const v1::DownloadArtifactRequest* req,
    grpc::ServerWriter<v1::ArtifactStreamResponse>* writer) {
  auto c = Enter(ctx);
  if (!c.ok()) return ToGrpcStatus(c.status());
  return ToGrpcStatus((*c)->DownloadArtifact(
      *req, [&](const v1::ArtifactStreamResponse& r) { return writer->Write(r); }));
}

grpc::Status WorkerServiceImpl::LeaseTask(grpc::ServerContext* ctx, const v1::LeaseTaskRequest* req,
                                          v1::LeaseTaskResponse* resp) {
  return Unary<v1::LeaseTaskResponse>(
      Enter(ctx), [&](Coordinator* c) { return c->LeaseTask(*req); }, resp);
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* req,
                                          v1::HeartbeatResponse* resp) {
  return Unary<v1::HeartbeatResponse>(
      Enter(ctx), [&](Coordinator* c) { return c->Heartbeat(*req); }, resp);
}

grpc::Status WorkerServiceImpl::FetchArtifact(
    grpc::ServerContext* ctx, const v1::DownloadArtifactRequest* req,
    grpc::ServerWriter<v1::ArtifactStreamResponse>* writer) {
  auto c = Enter(ctx);
  if (!c.ok()) return ToGrpcStatus(c.status());
  return ToGrpcStatus((*c)->FetchArtifact(
      *req, [&](const v1::ArtifactStreamResponse& r) { return writer->Write(r); }));
}

grpc::Status WorkerServiceImpl::CompleteTask(grpc::ServerContext* ctx,
                                             grpc::ServerReader<v1::CompleteTaskRequest>* reader,
                                             v1::CompleteTaskResponse* resp) {
  return Unary<v1::CompleteTaskResponse>(
      Enter(ctx),
      [&](Coordinator* c) {
        return c->CompleteTask([&](v1::CompleteTaskRequest* m) {
          return !ctx->IsCancelled() && reader->Read(m);
        });
      },
      resp);
}

grpc::Status WorkerServiceImpl::FailTask(grpc::ServerContext* ctx, const v1::FailTaskRequest* req,
                                         v1::FailTaskResponse* resp) {
  return Unary<v1::FailTaskResponse>(
      Enter(ctx), [&](Coordinator* c) { return c->FailTask(*req); }, resp);
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const v1::TlsConfig& tls) {
  if (tls.cert_path().empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions opts(
      tls.client_ca_path().empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                   : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  auto cert = ReadAll(tls.cert_path());
  if (!cert.ok()) return cert.status();
  auto key = ReadAll(tls.key_path());
  if (!key.ok()) return key.status();
  pair.cert_chain = *cert;
  pair.private_key = *key;
  opts.pem_key_cert_pairs.push_back(pair);
  if (!tls.client_ca_path().empty()) {
    auto ca = ReadAll(tls.client_ca_path());
    if (!ca.ok()) return ca.status();
    opts.pem_root_certs = *ca;
  }
  return grpc::SslServerCredentials(opts);
}

}  // namespace vptq::coordinator
