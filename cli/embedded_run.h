// The embedded run behind `vptqctl quantize`: the cluster's own code in one
// process. An in-process coordinator::Coordinator over a RocksJobStore in
// the state directory plans the job (SubmitJob, idempotent through the
// spec-derived request id), N worker::WorkerLoop threads run its tasks
// through worker::MakeInProcessWorkerTransport, progress comes from
// WatchJob, and the checkpoint is then downloaded from the store into the
// output directory (download.h: atomic, verified).
//
// Resuming: killed at any point and run again with the same plan, it finds
// the same job in the state directory, gives back the leases the dead
// process held (FailTask CANCELLED: queued again without counting an
// attempt), runs what is left, and writes a byte-identical checkpoint (task
// outputs are deterministic for a device and thread count). A job that
// already succeeded is only downloaded (a no-op when the output already
// holds it). A job that failed or was cancelled before is started afresh
// under the next request id ("<id>-2", ...).
//
// Errors: FAILED_PRECONDITION for an output or state directory that is not
// ours (nothing written), the state store's errors (another process holding
// its lock), SubmitJob's codes for a bad spec, CANCELLED when `stop` turned
// true (the running tasks are given back; a rerun resumes). A job that
// FAILED or was CANCELLED is a result, not an error (result.job.phase).
//
//   EmbeddedRunOptions o{.plan = plan, .threads = 2};
//   VPTQ_ASSIGN_OR_RETURN(EmbeddedRunResult r, RunEmbeddedJob(o));
//   if (r.job.phase() == v1::JOB_PHASE_SUCCEEDED) ...
//
// Blocks the calling thread; callbacks run on it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/download.h"
#include "cli/quantize_spec.h"
#include "vptq/v1/job.pb.h"

namespace vptq::cli {

// Worker ids of the embedded run ("vptqctl-quantize/0", ...).
inline constexpr char kEmbeddedWorkerPrefix[] = "vptqctl-quantize/";

struct EmbeddedRunOptions {
  QuantizePlan plan;
  int threads = 1;        // worker loops (tasks at once)
  int torch_threads = 1;  // intra-op threads per task
  std::string device = "cpu";
  absl::Duration lease_wait = absl::Milliseconds(500);
  std::function<bool()> stop;                                // optional
  std::function<void(const v1::JobEvent&)> on_event;         // optional
  std::function<void(const std::string&)> on_note;          // optional
};

struct EmbeddedRunResult {
  v1::Job job;                    // as it ended
  bool resumed = false;           // the job was found in the state directory
  int64_t tasks_done_before = 0;  // finished by earlier runs
  int leases_returned = 0;        // leases of a previous process given back
  DownloadResult download;        // when the job succeeded
};

absl::StatusOr<EmbeddedRunResult> RunEmbeddedJob(const EmbeddedRunOptions& options);

// OK when `dir` is absent, empty, or a RocksDB directory (has CURRENT);
// FAILED_PRECONDITION naming it otherwise.
absl::Status CheckStateDirUsable(const std::string& dir);

}  // namespace vptq::cli
