#include "worker/pipeline/checkpoint_dir.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <optional>
#include <random>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "common/status.h"

namespace vptq::pipeline {
namespace {

namespace fs = std::filesystem;

nlohmann::ordered_json MarkerFor(const BlobMap& files) {
  nlohmann::ordered_json list = nlohmann::ordered_json::object();
  for (const auto& [name, bytes] : files) {
    list[name] = {{"size", bytes.size()}, {"sha256", Sha256Hex(bytes)}};
  }
  nlohmann::ordered_json m;
  m["format"] = kCheckpointMarkerFormat;
  m["version"] = 1;
  m["files"] = list;
  return m;
}

// The marker in `dir`, or nullopt when there is none or it is not ours.
std::optional<nlohmann::ordered_json> ReadMarker(const std::string& dir) {
  absl::StatusOr<std::string> text = ReadFile((fs::path(dir) / kCheckpointMarker).string());
  if (!text.ok()) return std::nullopt;
  nlohmann::ordered_json m = nlohmann::ordered_json::parse(*text, nullptr, false);
  if (m.is_discarded() || !m.is_object() || !m.contains("format") ||
      m["format"] != kCheckpointMarkerFormat || !m.contains("files") || !m["files"].is_object()) {
    return std::nullopt;
  }
  return m;
}

bool SameContent(const std::string& dir, const nlohmann::ordered_json& on_disk,
                 const nlohmann::ordered_json& wanted) {
  if (on_disk["files"] != wanted["files"]) return false;
  for (const auto& [name, entry] : wanted["files"].items()) {
    std::error_code ec;
    const auto size = fs::file_size(fs::path(dir) / name, ec);
    if (ec || size != entry["size"].get<uint64_t>()) return false;
  }
  return true;
}

std::string RandomSuffix() {
  std::random_device rd;
  return absl::StrFormat("%06x", rd() & 0xffffff);
}

}  // namespace

absl::Status CheckCheckpointFileName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos || name == kCheckpointMarker) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint file name '", name, "' is not a plain file name (no '/', not '.', '..' or ",
        kCheckpointMarker, ")"));
  }
  return absl::OkStatus();
}

absl::Status WriteCheckpointDir(const BlobMap& files, const std::string& out_dir_in) {
  if (out_dir_in.empty()) return absl::InvalidArgumentError("output directory is empty");
  for (const auto& [name, bytes] : files) VPTQ_RETURN_IF_ERROR(CheckCheckpointFileName(name));
  const fs::path out = fs::path(out_dir_in).lexically_normal();
  const std::string out_dir =
      out.has_filename() ? out.string() : out.parent_path().string();  // drop a trailing '/'
  const nlohmann::ordered_json marker = MarkerFor(files);

  std::error_code ec;
  bool replace = false;
  const fs::file_status st = fs::symlink_status(out_dir, ec);
  if (fs::exists(st)) {
    if (!fs::is_directory(st)) {
      return absl::FailedPreconditionError(absl::StrCat(
          out_dir, " exists and is not a directory; choose another output directory"));
    }
    std::optional<nlohmann::ordered_json> existing = ReadMarker(out_dir);
    if (existing) {
      if (SameContent(out_dir, *existing, marker)) return absl::OkStatus();
      replace = true;
    } else if (!fs::is_empty(out_dir, ec)) {
      return absl::FailedPreconditionError(absl::StrCat(
          out_dir, " exists and does not hold a checkpoint written by vptq (no ",
          kCheckpointMarker, "); nothing was written. Choose another output directory "
          "or remove it"));
    }
  }
  const fs::path parent = fs::path(out_dir).parent_path().empty()
                              ? fs::path(".")
                              : fs::path(out_dir).parent_path();
  fs::create_directories(parent, ec);
  if (ec) return ErrnoStatus(ec.value(), "create directory", parent.string());

  const std::string tmp = absl::StrCat(out_dir, ".tmp-", RandomSuffix());
  if (::mkdir(tmp.c_str(), 0755) != 0) return ErrnoStatus(errno, "mkdir", tmp);
  auto fail = [&](absl::Status s) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    return s;
  };
  for (const auto& [name, bytes] : files) {
    absl::Status s = WriteFileAtomic((fs::path(tmp) / name).string(), bytes);
    if (!s.ok()) return fail(s);
  }
  absl::Status s = WriteFileAtomic((fs::path(tmp) / kCheckpointMarker).string(),
                                   marker.dump(2) + "\n");
  if (!s.ok()) return fail(s);
  s = SyncDir(tmp);
  if (!s.ok()) return fail(s);

  if (replace) {
    // Swap atomically: `out` is always either the old or the new checkpoint.
    if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, out_dir.c_str(), RENAME_EXCHANGE) == 0) {
      std::error_code ignored;
      fs::remove_all(tmp, ignored);  // now the old checkpoint
    } else {
      const std::string old = absl::StrCat(out_dir, ".old-", RandomSuffix());
      if (::rename(out_dir.c_str(), old.c_str()) != 0) {
        return fail(ErrnoStatus(errno, "rename", out_dir));
      }
      if (::rename(tmp.c_str(), out_dir.c_str()) != 0) {
        const int err = errno;
        (void)::rename(old.c_str(), out_dir.c_str());
        return fail(ErrnoStatus(err, "rename", tmp));
      }
      std::error_code ignored;
      fs::remove_all(old, ignored);
    }
  } else if (::rename(tmp.c_str(), out_dir.c_str()) != 0) {
    // rename(2) replaces an empty directory; ENOTEMPTY/EEXIST means someone
    // filled it meanwhile.
    const int err = errno;
    if (err == ENOTEMPTY || err == EEXIST) {
      return fail(absl::FailedPreconditionError(
          absl::StrCat(out_dir, " was filled by someone else while the checkpoint was written")));
    }
    return fail(ErrnoStatus(err, "rename", tmp));
  }
  return SyncDir(parent.string());
}

absl::StatusOr<BlobMap> ReadCheckpointDir(const std::string& dir) {
  std::optional<nlohmann::ordered_json> marker = ReadMarker(dir);
  if (!marker) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, " does not hold a checkpoint written by vptq (no valid ", kCheckpointMarker, ")"));
  }
  BlobMap files;
  for (const auto& [name, entry] : (*marker)["files"].items()) {
    VPTQ_RETURN_IF_ERROR(CheckCheckpointFileName(name));
    absl::StatusOr<std::string> bytes = ReadFile((fs::path(dir) / name).string());
    if (!bytes.ok()) {
      return absl::DataLossError(absl::StrCat(dir, "/", name, ": ", bytes.status().message()));
    }
    if (bytes->size() != entry.value("size", uint64_t{0}) ||
        Sha256Hex(*bytes) != entry.value("sha256", std::string())) {
      return absl::DataLossError(
          absl::StrCat(dir, "/", name, " does not match the size/sha256 its marker records"));
    }
    files[name] = *std::move(bytes);
  }
  return files;
}

}  // namespace vptq::pipeline
