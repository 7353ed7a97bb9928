// Crash-safe file writing. WriteFileAtomic writes to "<path>.tmp.<random>",
// fsyncs it, renames over `path` and fsyncs the directory, so a reader sees
// either the old file or the whole new one. A failed write (ENOSPC, EIO)
// leaves no temp file behind and returns an error naming the path.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vptq {

absl::Status WriteFileAtomic(const std::string& path, std::string_view content);
absl::StatusOr<std::string> ReadFile(const std::string& path);
// fsync a directory (after creating/renaming entries in it).
absl::Status SyncDir(const std::string& dir);

}  // namespace vptq
