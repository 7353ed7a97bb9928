// vptqctl's exit codes (STYLE.md "How the CLI behaves"), and how a Status or
// a job's final phase maps onto them. Scripts branch on these, so they never
// change meaning:
//
//   0  success (for watch/--wait/quantize: the job SUCCEEDED)
//   1  the job FAILED, or a runtime error (corrupt download, I/O error, ...)
//   2  the job was CANCELLED
//   3  bad usage or spec: unknown flag, malformed spec file, unknown job,
//      refused path, an output directory that is not ours, ...
//   4  the coordinator is unreachable, or a --timeout passed
//   130 interrupted (Ctrl-C) while following or running a job; rerun to resume
//
//   return ExitCodeForStatus(status);            // 0 for OK
//   return ExitCodeForPhase(job.phase());        // terminal phases only
//
// Pure functions; thread-safe.
#pragma once

#include "absl/status/status.h"
#include "vptq/v1/job.pb.h"

namespace vptq::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitCancelled = 2;
inline constexpr int kExitUsage = 3;
inline constexpr int kExitUnreachable = 4;
inline constexpr int kExitInterrupted = 130;

// OK -> 0; INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION,
// PERMISSION_DENIED, UNAUTHENTICATED, OUT_OF_RANGE -> 3; UNAVAILABLE,
// DEADLINE_EXCEEDED -> 4; CANCELLED -> 2; anything else -> 1.
int ExitCodeForStatus(const absl::Status& status);

// SUCCEEDED -> 0, FAILED -> 1, CANCELLED -> 2; a phase that is not terminal
// -> 4 (the caller gave up waiting).
int ExitCodeForPhase(v1::JobPhase phase);

bool IsTerminalPhase(v1::JobPhase phase);

}  // namespace vptq::cli
