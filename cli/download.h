// Downloading a job's packed checkpoint (Job.outputs) into an HF-format
// directory: `vptqctl download` over gRPC, and the last step of the
// embedded `vptqctl quantize` from its local store.
//
// Contract (DownloadCheckpoint(source, job, out)):
//  - Files are fetched into a staging directory "<out>.vptq-download" beside
//    `out`, each into "<name>.part" and renamed to "<name>" once its size and
//    SHA-256 match the job's ArtifactRef. The staging directory survives an
//    interruption (Ctrl-C, kill -9, a lost connection): the next run reuses
//    finished files and continues a ".part" from its length.
//  - A stream that breaks (UNAVAILABLE, ...) is reopened from the bytes
//    received so far, with backoff, up to `max_attempts` times per file.
//  - A SHA-256 mismatch (a corrupt partial file, a bad transfer) discards
//    the file and fetches it again from offset 0, once; a second mismatch is
//    DATA_LOSS naming the file and both hashes, and nothing is published.
//  - When every file is in, the checkpoint marker (vptq_checkpoint.json:
//    format "vptq-packed-checkpoint", each file's size and sha256, the same
//    marker the pipeline's WriteCheckpointDir writes) is added, the staging
//    directory is fsynced and renamed to `out` (swapped atomically with
//    renameat2 when `out` holds another of our checkpoints), so `out` is
//    always absent, the old checkpoint or the whole new one.
//  - `out` holding exactly these files under our marker: nothing is fetched
//    (result.unchanged). `out` existing without our marker (user files,
//    another model) or not a directory: FAILED_PRECONDITION naming it,
//    nothing written. An empty directory is replaced.
//  - A job without outputs is FAILED_PRECONDITION; output names that are not
//    plain file names are INVALID_ARGUMENT.
//
//   VPTQ_ASSIGN_OR_RETURN(v1::GetJobResponse got, source->GetJob(job_id, false));
//   VPTQ_ASSIGN_OR_RETURN(DownloadResult r, DownloadCheckpoint(*source, got.job(), "/out/m"));
//
// Not thread-safe per output directory (one download into one `out` at a
// time); separate directories may be downloaded concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/job_source.h"
#include "vptq/v1/job.pb.h"

namespace vptq::cli {

inline constexpr char kCheckpointMarkerName[] = "vptq_checkpoint.json";
inline constexpr char kCheckpointMarkerFormat[] = "vptq-packed-checkpoint";
inline constexpr char kStagingSuffix[] = ".vptq-download";
inline constexpr char kStagingMarkerName[] = ".vptq-download.json";

struct DownloadOptions {
  int max_attempts = 8;  // streams opened per file
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(10);
  absl::Duration timeout = absl::InfiniteDuration();  // whole download
  std::function<void(const std::string&)> on_note;    // resumes, retries; optional
  // After each chunk: file name, bytes of it so far, its size.
  std::function<void(const std::string&, int64_t, int64_t)> on_progress;
};

struct DownloadResult {
  bool unchanged = false;        // `out` already held exactly this checkpoint
  int64_t bytes_fetched = 0;     // received over the source in this run
  int64_t bytes_reused = 0;      // taken from the staging directory of an earlier run
  int resumes = 0;               // streams reopened at an offset > 0
  int checksum_mismatches = 0;   // files fetched again after a SHA-256 mismatch
  std::vector<std::string> files;  // names, sorted
};

absl::StatusOr<DownloadResult> DownloadCheckpoint(JobSource& source, const v1::Job& job,
                                                  const std::string& out_dir,
                                                  const DownloadOptions& options = {});

// What `out_dir` holds, for callers that check before starting long work:
// OK when it is absent, empty or one of our checkpoints; FAILED_PRECONDITION
// (naming it) otherwise.
absl::Status CheckOutputDirUsable(const std::string& out_dir);

}  // namespace vptq::cli
