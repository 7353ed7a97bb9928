// Crash-safe file writing and plain file reading.
//
// WriteFileAtomic / AtomicFileWriter write to "<path>.tmp.<random>" beside the
// target, fsync it, rename it over `path` and fsync the directory, so a reader
// (or a machine that lost power) sees either the old file or the whole new
// one. A failed write (ENOSPC, EIO, a missing or read-only directory, a
// directory in the way) leaves no temp file behind and returns an error that
// names the path. Error codes follow errno (absl::ErrnoToStatus): ENOENT ->
// NOT_FOUND, EACCES -> PERMISSION_DENIED, ENOSPC -> RESOURCE_EXHAUSTED, ...
//
// Thread safety: the free functions are thread-safe; one AtomicFileWriter
// belongs to one thread at a time. Two writers racing on the same path both
// succeed and the last rename wins.
//
//   VPTQ_RETURN_IF_ERROR(WriteFileAtomic("/out/config.json", json_text));
//
//   VPTQ_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::Create(path));
//   VPTQ_RETURN_IF_ERROR(out.Append(header));   // stream large content
//   VPTQ_RETURN_IF_ERROR(out.Append(payload));
//   VPTQ_RETURN_IF_ERROR(out.Commit());         // temp file gone either way
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vptq {

[[nodiscard]] absl::Status WriteFileAtomic(const std::string& path,
                                           std::string_view content);

// Whole file into memory. NOT_FOUND / PERMISSION_DENIED / ... naming the path.
[[nodiscard]] absl::StatusOr<std::string> ReadFile(const std::string& path);

// fsync a directory (after creating/renaming entries in it).
[[nodiscard]] absl::Status SyncDir(const std::string& dir);

// The directory part of `path` ("." when it has none, "/" for "/x").
std::string DirName(const std::string& path);

// errno as a Status whose message says what failed on which path:
//   "open '/a/b.tmp.x1': No such file or directory".
absl::Status ErrnoStatus(int errno_value, std::string_view operation,
                         std::string_view path);

// Streams content into a temp file beside `path`; Commit() publishes it.
// Destroying the writer without a successful Commit() removes the temp file.
class AtomicFileWriter {
 public:
  [[nodiscard]] static absl::StatusOr<AtomicFileWriter> Create(
      const std::string& path);

  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();

  // Appends bytes (retrying short writes and EINTR). After an error the
  // writer is spent: the temp file is removed and Commit() repeats the error.
  [[nodiscard]] absl::Status Append(std::string_view bytes);
  // fsync, rename over the target, fsync the directory. Once.
  [[nodiscard]] absl::Status Commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  AtomicFileWriter(std::string path, std::string temp_path, int fd);
  absl::Status Fail(absl::Status status);  // cleans up, remembers `status`
  void Discard();                          // close + unlink the temp file

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  absl::Status error_;
};

}  // namespace vptq
