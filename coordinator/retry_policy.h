// What a failed attempt means for its task, by status code (STYLE.md "codes
// decide retries"):
//   UNAVAILABLE          retry after backoff (a dependency was away)
//   ABORTED              retry the task after backoff (e.g. lease lost)
//   RESOURCE_EXHAUSTED   retry at once on another worker (OOM here)
//   INVALID_ARGUMENT,
//   FAILED_PRECONDITION  never retry: the job fails and the user is told
//   CANCELLED            the worker gave the task back: requeue at once,
//                        no attempt counted
//   anything else        retry after backoff (counts as "internal")
// Lease expiry is a retry after backoff with reason "lease_expired".
// Every counted attempt moves the task towards max_attempts.
#pragma once


#include "absl/strings/string_view.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace vptq::coordinator {

enum class RetryClass {
  kRetry,           // same or any worker, after backoff
  kRetryElsewhere,  // not on the worker that failed, at once
  kReturned,        // given back: at once, attempt not counted
  kFatal,           // fail the task and its job
};

struct RetryDecision {
  RetryClass retry_class;
  absl::string_view reason;  // label for vptq_task_retries_total{reason}
};

RetryDecision ClassifyFailure(absl::StatusCode code);

// initial * 2^(failures-1), capped at max; zero for failures <= 0.
absl::Duration BackoffDelay(int failures, absl::Duration initial, absl::Duration max);

}  // namespace vptq::coordinator
