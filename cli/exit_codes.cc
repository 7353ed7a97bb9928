#include "cli/exit_codes.h"

namespace vptq::cli {

int ExitCodeForStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kOutOfRange:
      return kExitUsage;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnreachable;
    case absl::StatusCode::kCancelled:
      return kExitCancelled;
    default:
      return kExitFailed;
  }
}

int ExitCodeForPhase(v1::JobPhase phase) {
  switch (phase) {
    case v1::JOB_PHASE_SUCCEEDED:
      return kExitOk;
    case v1::JOB_PHASE_FAILED:
      return kExitFailed;
    case v1::JOB_PHASE_CANCELLED:
      return kExitCancelled;
    default:
      return kExitUnreachable;
  }
}

bool IsTerminalPhase(v1::JobPhase phase) {
  return phase == v1::JOB_PHASE_SUCCEEDED || phase == v1::JOB_PHASE_FAILED ||
         phase == v1::JOB_PHASE_CANCELLED;
}

}  // namespace vptq::cli
