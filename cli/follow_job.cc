#include "cli/follow_job.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/exit_codes.h"
#include "cli/output_format.h"

namespace vptq::cli {
namespace {

bool IsTerminalEvent(v1::EventType type) {
  return type == v1::EVENT_TYPE_JOB_SUCCEEDED || type == v1::EVENT_TYPE_JOB_FAILED ||
         type == v1::EVENT_TYPE_JOB_CANCELLED;
}

// Sleeps `d`, waking early for `stop` or the deadline. False when stopped.
bool Pause(absl::Duration d, absl::Time deadline, const std::function<bool()>& stop) {
  const absl::Time until = std::min(absl::Now() + d, deadline);
  while (absl::Now() < until) {
    if (stop && stop()) return false;
    absl::SleepFor(std::min(absl::Milliseconds(50), until - absl::Now()));
  }
  return !(stop && stop());
}

std::string Seconds(absl::Duration d) {
  return absl::StrCat(absl::ToDoubleSeconds(absl::Trunc(d, absl::Milliseconds(100))), "s");
}

}  // namespace

bool IsRetryableStreamError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
}

int FollowExitCode(const FollowResult& result) {
  if (result.status.ok()) return ExitCodeForPhase(result.phase);
  return ExitCodeForStatus(result.status);
}

FollowResult FollowJob(JobSource& source, const std::string& job_id,
                       const FollowOptions& options) {
  FollowResult result;
  result.last_sequence = options.after_sequence;
  const absl::Time start = absl::Now();
  const absl::Time deadline = options.timeout == absl::InfiniteDuration()
                                  ? absl::InfiniteFuture()
                                  : start + options.timeout;
  auto note = [&](const std::string& line) {
    if (options.on_note) options.on_note(line);
  };
  auto stopped = [&] { return options.stop && options.stop(); };
  auto timed_out = [&] {
    return absl::DeadlineExceededError(absl::StrCat(
        "timed out after ", Seconds(absl::Now() - start), " waiting for job ", job_id,
        " (phase ", PhaseName(result.phase), ", last event #", result.last_sequence, ")"));
  };

  absl::Duration backoff = options.initial_backoff;
  absl::Time failing_since = absl::InfiniteFuture();  // first failure of the current run
  while (true) {
    if (stopped()) {
      result.status = absl::CancelledError("interrupted");
      return result;
    }
    if (absl::Now() >= deadline) {
      result.status = timed_out();
      return result;
    }
    bool terminal = false, gap = false, got_event = false;
    const absl::Time opened = absl::Now();
    absl::Status s = source.WatchJob(
        job_id, result.last_sequence, deadline, [&](const v1::JobEvent& e) {
          if (e.sequence() <= result.last_sequence) return true;  // already delivered
          if (e.sequence() != result.last_sequence + 1) {
            gap = true;
            return false;
          }
          got_event = true;
          result.last_sequence = e.sequence();
          result.phase = e.phase();
          if (options.on_event) options.on_event(e);
          if (IsTerminalEvent(e.type())) {
            terminal = true;
            return false;
          }
          return !stopped();
        });
    if (terminal) {
      result.status = absl::OkStatus();
      return result;
    }
    if (got_event || absl::Now() - opened > absl::Seconds(2)) {
      backoff = options.initial_backoff;  // the stream was healthy for a while
      failing_since = absl::InfiniteFuture();
    }
    if (gap) {
      note(absl::StrCat("events after #", result.last_sequence,
                        " arrived out of order; asking again"));
      ++result.reconnects;
      continue;
    }
    if (stopped()) {
      result.status = absl::CancelledError("interrupted");
      return result;
    }
    if (absl::IsDeadlineExceeded(s) || absl::Now() >= deadline) {
      result.status = timed_out();
      return result;
    }
    if (s.ok()) {
      // The stream ended without a terminal event: ask the job itself.
      absl::StatusOr<v1::GetJobResponse> got = source.GetJob(job_id, false);
      if (got.ok() && IsTerminalPhase(got->job().phase()) &&
          got->job().last_event_sequence() <= result.last_sequence) {
        result.phase = got->job().phase();
        result.status = absl::OkStatus();
        return result;
      }
      s = got.ok() ? absl::UnavailableError("the event stream ended early") : got.status();
    }
    if (!IsRetryableStreamError(s)) {
      result.status = s;
      return result;
    }
    const absl::Time now = absl::Now();
    if (failing_since == absl::InfiniteFuture()) failing_since = now;
    if (now - failing_since > options.max_unreachable) {
      result.status = absl::UnavailableError(
          absl::StrCat("coordinator unreachable for ", Seconds(now - failing_since),
                       " (last error: ", s.message(), ")"));
      return result;
    }
    note(absl::StrCat("connection lost (", absl::StatusCodeToString(s.code()), ": ",
                      s.message(), "); reconnecting in ", Seconds(backoff),
                      " from event #", result.last_sequence));
    ++result.reconnects;
    if (!Pause(backoff, deadline, options.stop)) {
      result.status = absl::CancelledError("interrupted");
      return result;
    }
    backoff = std::min(backoff * 2, options.max_backoff);
  }
}

}  // namespace vptq::cli
