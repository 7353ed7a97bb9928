#include "coordinator/retry_policy.h"

#include <algorithm>

namespace vptq::coordinator {

RetryDecision ClassifyFailure(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
      return {RetryClass::kRetry, "unavailable"};
    case absl::StatusCode::kAborted:
      return {RetryClass::kRetry, "aborted"};
    case absl::StatusCode::kResourceExhausted:
      return {RetryClass::kRetryElsewhere, "resource_exhausted"};
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
      return {RetryClass::kFatal, "bad_input"};
    case absl::StatusCode::kCancelled:
      return {RetryClass::kReturned, "worker_returned"};
    default:
      return {RetryClass::kRetry, "internal"};
  }
}

absl::Duration BackoffDelay(int failures, absl::Duration initial, absl::Duration max) {
  if (failures <= 0) return absl::ZeroDuration();
  absl::Duration d = initial;
  for (int i = 1; i < failures && d < max; ++i) d *= 2;
  return std::min(d, max);
}

}  // namespace vptq::coordinator
