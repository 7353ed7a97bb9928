// The marker file that makes a directory "a checkpoint written by vptq"
// (vptq_checkpoint.json), as the pipeline's WriteCheckpointDir writes it:
//
//   {"format": "vptq-packed-checkpoint", "version": 1,
//    "files": {"config.json": {"size": 1234, "sha256": "..."}, ...}}
//
// (files in name order, dumped with two-space indent and a final newline),
// built here from a job's ArtifactRefs so that `vptqctl download` and the
// pipeline write byte-identical directories, and each recognises the
// other's output as its own. Torch-free; pure functions apart from reads.
//
//   nlohmann::ordered_json m = MarkerForOutputs(job.outputs());
//   switch (InspectOutputDir(dir, &on_disk)) { ... }
#pragma once

#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "vptq/v1/job.pb.h"

namespace vptq::cli {

// Output files by name (sorted), each name checked: a plain file name, not
// the marker, not a staging name. INVALID_ARGUMENT naming the bad one;
// FAILED_PRECONDITION when the job has no outputs.
absl::Status OutputsByName(const v1::Job& job, std::map<std::string, v1::OutputFile>* out);

nlohmann::ordered_json MarkerForOutputs(const std::map<std::string, v1::OutputFile>& files);

// The text written to vptq_checkpoint.json.
std::string MarkerText(const nlohmann::ordered_json& marker);

enum class DirState {
  kAbsent,      // nothing there
  kEmpty,       // an empty directory
  kCheckpoint,  // a directory with our marker
  kForeign,     // a non-empty directory without our marker
  kNotDir,      // a file, a symlink, ...
};

// What `dir` is; for kCheckpoint `marker` (optional) receives the marker.
DirState InspectOutputDir(const std::string& dir, nlohmann::ordered_json* marker = nullptr);

// True when `dir` (a kCheckpoint) holds exactly the files of `wanted` (same
// marker entries, sizes on disk matching).
bool HoldsSameCheckpoint(const std::string& dir, const nlohmann::ordered_json& on_disk,
                         const nlohmann::ordered_json& wanted);

}  // namespace vptq::cli
