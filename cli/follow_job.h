// Following a job's event stream to its end, across coordinator restarts
// and broken connections: what `vptqctl watch`, `submit --wait` and the
// embedded `quantize` run.
//
// Contract:
//  - Every event is delivered once, in sequence order, with no gaps: a
//    reconnect asks for events after the last sequence delivered; an event
//    at or below it is dropped; a jump (a gap) makes it ask again.
//  - A stream that ends UNAVAILABLE, CANCELLED (by the server), ABORTED,
//    INTERNAL, UNKNOWN or RESOURCE_EXHAUSTED is reopened with capped
//    exponential backoff; `max_unreachable` of failures in a row (with no
//    event and no stream that lasted) gives up with UNAVAILABLE.
//  - Result.status is OK once the terminal event was seen (Result.phase is
//    the job's final phase: the exit code comes from it, never from how the
//    stream ended); DEADLINE_EXCEEDED when `timeout` passed; CANCELLED when
//    `stop` turned true; otherwise the error that is not worth retrying
//    (NOT_FOUND for an unknown job, UNAUTHENTICATED, ...).
//  - Blocks the calling thread; callbacks run on it.
//
//   FollowOptions o;
//   o.on_event = [&](const v1::JobEvent& e) { display.OnEvent(e); };
//   FollowResult r = FollowJob(*source, job_id, o);
//   return r.status.ok() ? ExitCodeForPhase(r.phase) : ExitCodeForStatus(r.status);
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "cli/job_source.h"
#include "vptq/v1/job.pb.h"

namespace vptq::cli {

struct FollowOptions {
  int64_t after_sequence = 0;                               // resume point
  absl::Duration timeout = absl::InfiniteDuration();       // whole follow
  absl::Duration max_unreachable = absl::Minutes(5);
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(10);
  std::function<void(const v1::JobEvent&)> on_event;       // optional
  std::function<void(const std::string&)> on_note;         // reconnect messages; optional
  std::function<bool()> stop;                               // optional
};

struct FollowResult {
  absl::Status status;
  v1::JobPhase phase = v1::JOB_PHASE_UNSPECIFIED;  // after the last event seen
  int64_t last_sequence = 0;
  int reconnects = 0;
};

FollowResult FollowJob(JobSource& source, const std::string& job_id,
                       const FollowOptions& options);

// Whether a stream that ended with `status` is worth reopening.
bool IsRetryableStreamError(const absl::Status& status);

// Exit code of a follow: the phase's when it finished, else the status's.
int FollowExitCode(const FollowResult& result);

}  // namespace vptq::cli
