#include "cli/checkpoint_marker.h"

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/download.h"
#include "cli/output_format.h"
#include "common/file_util.h"

namespace vptq::cli {
namespace {

namespace fs = std::filesystem;

absl::Status CheckName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos || name == kCheckpointMarkerName ||
      name == kStagingMarkerName || absl::EndsWith(name, ".part")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the job's output '", name, "' is not a plain file name this client can write"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status OutputsByName(const v1::Job& job, std::map<std::string, v1::OutputFile>* out) {
  out->clear();
  if (job.outputs().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job.job_id(), " has no checkpoint yet (phase ", PhaseName(job.phase()),
        job.progress().stage().empty() ? "" : absl::StrCat(", stage ", job.progress().stage()),
        ")"));
  }
  for (const v1::OutputFile& f : job.outputs()) {
    if (absl::Status s = CheckName(f.path()); !s.ok()) return s;
    if (!out->emplace(f.path(), f).second) {
      return absl::InvalidArgumentError(absl::StrCat("the job lists output '", f.path(), "' twice"));
    }
  }
  return absl::OkStatus();
}

nlohmann::ordered_json MarkerForOutputs(const std::map<std::string, v1::OutputFile>& files) {
  nlohmann::ordered_json list = nlohmann::ordered_json::object();
  for (const auto& [name, f] : files) {
    list[name] = {{"size", static_cast<uint64_t>(f.artifact().size_bytes())},
                  {"sha256", f.artifact().sha256()}};
  }
  nlohmann::ordered_json m;
  m["format"] = kCheckpointMarkerFormat;
  m["version"] = 1;
  m["files"] = list;
  return m;
}

std::string MarkerText(const nlohmann::ordered_json& marker) { return marker.dump(2) + "\n"; }

DirState InspectOutputDir(const std::string& dir, nlohmann::ordered_json* marker) {
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(dir, ec);
  if (!fs::exists(st)) return DirState::kAbsent;
  if (!fs::is_directory(st)) return DirState::kNotDir;
  absl::StatusOr<std::string> text = ReadFile((fs::path(dir) / kCheckpointMarkerName).string());
  if (text.ok()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::parse(*text, nullptr, false);
    if (!m.is_discarded() && m.is_object() && m.contains("format") &&
        m["format"] == kCheckpointMarkerFormat && m.contains("files") && m["files"].is_object()) {
      if (marker != nullptr) *marker = std::move(m);
      return DirState::kCheckpoint;
    }
  }
  return fs::is_empty(dir, ec) && !ec ? DirState::kEmpty : DirState::kForeign;
}

bool HoldsSameCheckpoint(const std::string& dir, const nlohmann::ordered_json& on_disk,
                         const nlohmann::ordered_json& wanted) {
  if (on_disk["files"] != wanted["files"]) return false;
  for (const auto& [name, entry] : wanted["files"].items()) {
    std::error_code ec;
    const auto size = fs::file_size(fs::path(dir) / name, ec);
    if (ec || size != entry["size"].get<uint64_t>()) return false;
  }
  return true;
}

}  // namespace vptq::cli
