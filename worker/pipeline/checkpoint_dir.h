// Writing a checkpoint (file name -> bytes) into a directory so that a crash
// never leaves a half checkpoint that looks complete, and never touches a
// directory that is not ours.
//
// WriteCheckpointDir(files, out):
//  - names must be plain file names (no '/', not "." or "..", not the
//    marker's name): INVALID_ARGUMENT otherwise;
//  - everything is written into "<out>.tmp-XXXXXX" beside `out` (each file
//    fsynced), then the marker kCheckpointMarker (format, version, each
//    file's size and sha256) last, the directory is fsynced and renamed to
//    `out` (exchanged atomically with renameat2 when `out` already holds
//    one of our checkpoints), and the parent is fsynced;
//  - `out` missing or an empty directory: created;
//  - `out` holding our marker with exactly these files (same names, sizes,
//    hashes): nothing is written (a rerun of a finished job is a no-op);
//  - `out` holding our marker with other content: replaced as a whole;
//  - `out` existing without our marker (another model, user files) or not a
//    directory: FAILED_PRECONDITION naming it, nothing written or removed.
// On failure the temp directory is removed. Missing parents are created.
// A crash can leave a "<out>.tmp-*" directory behind (never `out` itself).
//
// ReadCheckpointDir(dir): the files listed by the marker, read back and
// checked against it (FAILED_PRECONDITION when there is no marker,
// DATA_LOSS when a file is missing or its size or hash differs).
//
//   VPTQ_RETURN_IF_ERROR(WriteCheckpointDir(assembled.files, "/out/llama-2bit"));
//
// Thread safety: two writers racing on one `out` each leave a complete
// checkpoint; the last rename wins. Cost: one write + fsync of every byte,
// one SHA-256 pass.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/pipeline/artifact_names.h"

namespace vptq::pipeline {

inline constexpr char kCheckpointMarker[] = "vptq_checkpoint.json";
inline constexpr char kCheckpointMarkerFormat[] = "vptq-packed-checkpoint";

[[nodiscard]] absl::Status WriteCheckpointDir(const BlobMap& files, const std::string& out_dir);

absl::StatusOr<BlobMap> ReadCheckpointDir(const std::string& dir);

// INVALID_ARGUMENT unless `name` is a plain file name usable in a
// checkpoint directory.
absl::Status CheckCheckpointFileName(const std::string& name);

}  // namespace vptq::pipeline
