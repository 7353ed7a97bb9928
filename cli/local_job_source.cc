// JobSource over a Coordinator in the same process (`vptqctl quantize`).
#include "cli/job_source.h"
#include "coordinator/coordinator.h"

namespace vptq::cli {
namespace {

class LocalJobSource final : public JobSource {
 public:
  LocalJobSource(coordinator::Coordinator* coordinator, std::function<bool()> stop)
      : coordinator_(coordinator), stop_(std::move(stop)) {}

  absl::Status WatchJob(const std::string& job_id, int64_t after_sequence, absl::Time deadline,
                        const std::function<bool(const v1::JobEvent&)>& on_event) override {
    v1::WatchJobRequest request;
    request.set_job_id(job_id);
    request.set_after_sequence(after_sequence);
    bool timed_out = false;
    absl::Status s = coordinator_->WatchJob(
        request, [&](const v1::WatchJobResponse& r) { return on_event(r.event()); },
        [&] {
          if (absl::Now() >= deadline) timed_out = true;
          return timed_out || (stop_ && stop_());
        });
    if (timed_out && absl::IsCancelled(s)) {
      return absl::DeadlineExceededError("watch deadline passed");
    }
    return s;
  }

  absl::StatusOr<v1::GetJobResponse> GetJob(const std::string& job_id,
                                            bool include_tasks) override {
    v1::GetJobRequest request;
    request.set_job_id(job_id);
    request.set_include_tasks(include_tasks);
    return coordinator_->GetJob(request);
  }

  absl::Status DownloadArtifact(
      const std::string& job_id, const std::string& artifact_id, int64_t offset,
      absl::Time deadline,
      const std::function<bool(const v1::ArtifactStreamResponse&)>& on_message) override {
    v1::DownloadArtifactRequest request;
    request.set_job_id(job_id);
    request.set_artifact_id(artifact_id);
    request.set_offset(offset);
    return coordinator_->DownloadArtifact(request, on_message);
  }

 private:
  coordinator::Coordinator* const coordinator_;
  const std::function<bool()> stop_;
};

}  // namespace

std::unique_ptr<JobSource> MakeLocalJobSource(coordinator::Coordinator* coordinator,
                                              std::function<bool()> stop) {
  return std::make_unique<LocalJobSource>(coordinator, std::move(stop));
}

}  // namespace vptq::cli
