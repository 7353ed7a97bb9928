// gRPC front of the Coordinator: ClientService and WorkerService as thin
// wrappers that check the bearer token (auth.h), call the engine and map
// absl::Status to grpc::Status.
//
// The services exist before the engine does: the server starts (health
// NOT_SERVING) while the store is recovered, and every RPC is UNAVAILABLE
// ("recovering") until CoordinatorSlot::Set hands the engine over.
//
//   CoordinatorSlot slot;
//   ClientServiceImpl clients(&slot, tokens);
//   WorkerServiceImpl workers(&slot, tokens);
//   builder.RegisterService(&clients); builder.RegisterService(&workers);
//   auto server = builder.BuildAndStart();
//   slot.Set(coordinator.get());          // after recovery
//   ...
//   slot.Set(nullptr);                    // before the engine is destroyed
//
// Thread-safe; the slot's engine must outlive the calls made through it
// (shut the server down before destroying the engine).
#pragma once

#include <atomic>
#include <memory>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_context.h>

#include "absl/status/statusor.h"
#include "coordinator/auth.h"
#include "coordinator/coordinator.h"
#include "vptq/v1/config.pb.h"
#include "vptq/v1/coordinator.grpc.pb.h"

namespace vptq::coordinator {

class CoordinatorSlot {
 public:
  void Set(Coordinator* c) { coordinator_.store(c); }
  Coordinator* Get() const { return coordinator_.load(); }

 private:
  std::atomic<Coordinator*> coordinator_{nullptr};
};

class ClientServiceImpl final : public v1::ClientService::Service {
 public:
  ClientServiceImpl(const CoordinatorSlot* slot, AuthTokens tokens)
      : slot_(slot), tokens_(std::move(tokens)) {}

  grpc::Status SubmitJob(grpc::ServerContext* ctx, const v1::SubmitJobRequest* req,
                         v1::SubmitJobResponse* resp) override;
  grpc::Status GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* req,
                      v1::GetJobResponse* resp) override;
  grpc::Status ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* req,
                        v1::ListJobsResponse* resp) override;
  grpc::Status CancelJob(grpc::ServerContext* ctx, const v1::CancelJobRequest* req,
                         v1::CancelJobResponse* resp) override;
  grpc::Status WatchJob(grpc::ServerContext* ctx, const v1::WatchJobRequest* req,
                        grpc::ServerWriter<v1::WatchJobResponse>* writer) override;
  grpc::Status DownloadArtifact(grpc::ServerContext* ctx, const v1::DownloadArtifactRequest* req,
                                grpc::ServerWriter<v1::ArtifactStreamResponse>* writer) override;

 private:
  absl::StatusOr<Coordinator*> Enter(grpc::ServerContext* ctx) const;
  const CoordinatorSlot* slot_;
  const AuthTokens tokens_;
};

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  WorkerServiceImpl(const CoordinatorSlot* slot, AuthTokens tokens)
      : slot_(slot), tokens_(std::move(tokens)) {}

  grpc::Status LeaseTask(grpc::ServerContext* ctx, const v1::LeaseTaskRequest* req,
                         v1::LeaseTaskResponse* resp) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* req,
                         v1::HeartbeatResponse* resp) override;
  grpc::Status FetchArtifact(grpc::ServerContext* ctx, const v1::DownloadArtifactRequest* req,
                             grpc::ServerWriter<v1::ArtifactStreamResponse>* writer) override;
  grpc::Status CompleteTask(grpc::ServerContext* ctx,
                            grpc::ServerReader<v1::CompleteTaskRequest>* reader,
                            v1::CompleteTaskResponse* resp) override;
  grpc::Status FailTask(grpc::ServerContext* ctx, const v1::FailTaskRequest* req,
                        v1::FailTaskResponse* resp) override;

 private:
  absl::StatusOr<Coordinator*> Enter(grpc::ServerContext* ctx) const;
  const CoordinatorSlot* slot_;
  const AuthTokens tokens_;
};

// Insecure credentials without TLS config; TLS (and client-certificate
// checking with client_ca_path) otherwise. FAILED_PRECONDITION when a file
// cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const v1::TlsConfig& tls);

// Largest message the services accept (result chunks are <= 1 MiB).
inline constexpr int kMaxReceiveMessageBytes = 16 << 20;

}  // namespace vptq::coordinator
