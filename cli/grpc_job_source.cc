// JobSource over the coordinator's ClientService (gRPC).
#include <grpcpp/grpcpp.h>

#include "cli/job_source.h"
#include "coordinator/grpc_channel.h"
#include "coordinator/grpc_status.h"
#include "vptq/v1/coordinator.grpc.pb.h"

namespace vptq::cli {
namespace {

using coordinator::FromGrpcStatus;
using coordinator::MakeCallContext;

class GrpcJobSource final : public JobSource {
 public:
  GrpcJobSource(std::shared_ptr<grpc::Channel> channel, std::string token,
                absl::Duration call_timeout)
      : stub_(v1::ClientService::NewStub(channel)),
        token_(std::move(token)),
        call_timeout_(call_timeout) {}

  absl::Status WatchJob(const std::string& job_id, int64_t after_sequence, absl::Time deadline,
                        const std::function<bool(const v1::JobEvent&)>& on_event) override {
    auto ctx = StreamContext(deadline);
    v1::WatchJobRequest request;
    request.set_job_id(job_id);
    request.set_after_sequence(after_sequence);
    auto reader = stub_->WatchJob(ctx.get(), request);
    v1::WatchJobResponse response;
    while (reader->Read(&response)) {
      if (!on_event(response.event())) {
        ctx->TryCancel();
        reader->Finish().IgnoreError();
        return absl::CancelledError("stopped watching");
      }
    }
    return FromGrpcStatus(reader->Finish());
  }

  absl::StatusOr<v1::GetJobResponse> GetJob(const std::string& job_id,
                                            bool include_tasks) override {
    auto ctx = MakeCallContext(token_, call_timeout_, /*wait_for_ready=*/true);
    v1::GetJobRequest request;
    request.set_job_id(job_id);
    request.set_include_tasks(include_tasks);
    v1::GetJobResponse response;
    absl::Status s = FromGrpcStatus(stub_->GetJob(ctx.get(), request, &response));
    if (!s.ok()) return s;
    return response;
  }

  absl::Status DownloadArtifact(
      const std::string& job_id, const std::string& artifact_id, int64_t offset,
      absl::Time deadline,
      const std::function<bool(const v1::ArtifactStreamResponse&)>& on_message) override {
    auto ctx = StreamContext(deadline);
    v1::DownloadArtifactRequest request;
    request.set_job_id(job_id);
    request.set_artifact_id(artifact_id);
    request.set_offset(offset);
    auto reader = stub_->DownloadArtifact(ctx.get(), request);
    v1::ArtifactStreamResponse message;
    while (reader->Read(&message)) {
      if (!on_message(message)) {
        ctx->TryCancel();
        reader->Finish().IgnoreError();
        return absl::CancelledError("stopped downloading");
      }
    }
    return FromGrpcStatus(reader->Finish());
  }

 private:
  std::unique_ptr<grpc::ClientContext> StreamContext(absl::Time deadline) const {
    return MakeCallContext(token_,
                           deadline == absl::InfiniteFuture() ? absl::InfiniteDuration()
                                                              : deadline - absl::Now(),
                           /*wait_for_ready=*/false);
  }

  std::unique_ptr<v1::ClientService::Stub> stub_;
  const std::string token_;
  const absl::Duration call_timeout_;
};

}  // namespace

std::unique_ptr<JobSource> MakeGrpcJobSource(std::shared_ptr<grpc::Channel> channel,
                                             std::string token, absl::Duration call_timeout) {
  return std::make_unique<GrpcJobSource>(std::move(channel), std::move(token), call_timeout);
}

}  // namespace vptq::cli
