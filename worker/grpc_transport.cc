#include "worker/grpc_transport.h"

#include <grpcpp/client_context.h>

#include "coordinator/grpc_status.h"
#include "vptq/v1/coordinator.grpc.pb.h"

namespace vptq::worker {
namespace {

using coordinator::FromGrpcStatus;
using coordinator::MakeCallContext;

class GrpcWorkerTransport final : public WorkerTransport {
 public:
  GrpcWorkerTransport(std::shared_ptr<grpc::Channel> channel, std::string token)
      : channel_(std::move(channel)),
        stub_(v1::WorkerService::NewStub(channel_)),
        token_(std::move(token)) {}

  absl::StatusOr<v1::LeaseTaskResponse> LeaseTask(const v1::LeaseTaskRequest& request) override {
    auto ctx = MakeCallContext(token_, absl::Milliseconds(request.max_wait_ms()) + kGrpcCallSlack);
    v1::LeaseTaskResponse response;
    absl::Status s = FromGrpcStatus(stub_->LeaseTask(ctx.get(), request, &response));
    if (!s.ok()) return s;
    return response;
  }

  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) override {
    auto ctx = MakeCallContext(token_, kGrpcCallSlack);
    v1::HeartbeatResponse response;
    absl::Status s = FromGrpcStatus(stub_->Heartbeat(ctx.get(), request, &response));
    if (!s.ok()) return s;
    return response;
  }

  absl::Status FetchArtifact(
      const v1::DownloadArtifactRequest& request,
      const std::function<bool(const v1::ArtifactStreamResponse&)>& on_message) override {
    auto ctx = MakeCallContext(token_, kGrpcStreamTimeout);
    std::unique_ptr<grpc::ClientReader<v1::ArtifactStreamResponse>> reader =
        stub_->FetchArtifact(ctx.get(), request);
    v1::ArtifactStreamResponse message;
    bool stopped = false;
    while (reader->Read(&message)) {
      if (!on_message(message)) {
        stopped = true;
        ctx->TryCancel();
        break;
      }
    }
    if (stopped) {
      while (reader->Read(&message)) {
      }
      (void)reader->Finish();
      return absl::CancelledError("the artifact stream was stopped by the receiver");
    }
    return FromGrpcStatus(reader->Finish());
  }

  absl::StatusOr<v1::CompleteTaskResponse> CompleteTask(
      const std::vector<v1::CompleteTaskRequest>& messages) override {
    auto ctx = MakeCallContext(token_, kGrpcStreamTimeout);
    v1::CompleteTaskResponse response;
    std::unique_ptr<grpc::ClientWriter<v1::CompleteTaskRequest>> writer =
        stub_->CompleteTask(ctx.get(), &response);
    for (const v1::CompleteTaskRequest& m : messages) {
      if (!writer->Write(m)) break;  // the stream is broken; Finish says why
    }
    writer->WritesDone();
    absl::Status s = FromGrpcStatus(writer->Finish());
    if (!s.ok()) return s;
    return response;
  }

  absl::StatusOr<v1::FailTaskResponse> FailTask(const v1::FailTaskRequest& request) override {
    auto ctx = MakeCallContext(token_, kGrpcCallSlack);
    v1::FailTaskResponse response;
    absl::Status s = FromGrpcStatus(stub_->FailTask(ctx.get(), request, &response));
    if (!s.ok()) return s;
    return response;
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  const std::string token_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<WorkerTransport>> MakeGrpcWorkerTransport(
    const coordinator::ChannelOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      coordinator::MakeCoordinatorChannel(options);
  if (!channel.ok()) return channel.status();
  return MakeGrpcWorkerTransport(*std::move(channel), options.token);
}

std::unique_ptr<WorkerTransport> MakeGrpcWorkerTransport(std::shared_ptr<grpc::Channel> channel,
                                                         std::string token) {
  return std::make_unique<GrpcWorkerTransport>(std::move(channel), std::move(token));
}

}  // namespace vptq::worker
