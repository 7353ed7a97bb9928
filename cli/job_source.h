// Where vptqctl reads a job from: the calls `watch` and `download` need,
// behind one interface so the same follow/download code runs against a
// remote coordinator over gRPC (MakeGrpcJobSource, the client commands) and
// an in-process one (MakeLocalJobSource, the embedded `vptqctl quantize`).
//
// Errors are the coordinator's codes as absl::Status: UNAVAILABLE when it is
// unreachable or draining, NOT_FOUND for an unknown job or artifact,
// DEADLINE_EXCEEDED when `deadline` passed, CANCELLED when the callback
// returned false (or the server dropped the stream).
//
// Thread-safe: calls may run concurrently.
//
//   std::unique_ptr<JobSource> source = MakeGrpcJobSource(channel, token, absl::Seconds(30));
//   absl::Status s = source->WatchJob(job_id, /*after_sequence=*/0, absl::InfiniteFuture(),
//                                     [&](const v1::JobEvent& e) { ...; return true; });
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "vptq/v1/coordinator.pb.h"

namespace vptq::coordinator {
class Coordinator;
}

namespace vptq::cli {

class JobSource {
 public:
  virtual ~JobSource() = default;

  // Events with sequence > after_sequence, in order, until the job's terminal
  // event (then OK), an error, or `on_event` returning false (CANCELLED).
  virtual absl::Status WatchJob(const std::string& job_id, int64_t after_sequence,
                                absl::Time deadline,
                                const std::function<bool(const v1::JobEvent&)>& on_event) = 0;

  virtual absl::StatusOr<v1::GetJobResponse> GetJob(const std::string& job_id,
                                                    bool include_tasks) = 0;

  // The artifact's stream from `offset`: `info` first, then chunks in order.
  virtual absl::Status DownloadArtifact(
      const std::string& job_id, const std::string& artifact_id, int64_t offset,
      absl::Time deadline,
      const std::function<bool(const v1::ArtifactStreamResponse&)>& on_message) = 0;
};

// Over ClientService. `call_timeout` bounds unary calls (GetJob), which wait
// for the channel to become ready; streams are bounded by their `deadline`
// and fail fast (UNAVAILABLE) when the coordinator cannot be reached, so
// that the caller decides how to back off.
std::unique_ptr<JobSource> MakeGrpcJobSource(std::shared_ptr<grpc::Channel> channel,
                                             std::string token, absl::Duration call_timeout);

// Calls the Coordinator's methods directly; `coordinator` outlives the
// source. `stop` (optional) is polled while a watch waits for events: when
// it turns true the watch returns CANCELLED.
std::unique_ptr<JobSource> MakeLocalJobSource(coordinator::Coordinator* coordinator,
                                              std::function<bool()> stop = nullptr);

}  // namespace vptq::cli
