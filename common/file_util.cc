#include "common/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"

namespace vptq {
namespace {

// Debian's Abseil has its own string_view type.
absl::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }

// "<path>.tmp.<16 hex>"; random so that concurrent writers never share one.
std::string TempPathFor(const std::string& path) {
  std::random_device rd;
  const uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return absl::StrFormat("%s.tmp.%016x", path, r);
}

absl::Status WriteAll(int fd, std::string_view bytes, std::string_view path) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    // Linux writes at most ~2 GiB per call; the loop handles short writes.
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write", path);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ErrnoStatus(int errno_value, std::string_view operation,
                         std::string_view path) {
  return absl::ErrnoToStatus(errno_value,
                             absl::StrCat(Sv(operation), " '", Sv(path), "'"));
}

std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open directory", dir);
  int rc;
  do {
    rc = ::fsync(fd);
  } while (rc != 0 && errno == EINTR);
  const int err = errno;
  ::close(fd);
  // Some filesystems cannot fsync a directory; their renames are durable
  // anyway or not at all, so there is nothing better to do.
  if (rc != 0 && err != EINVAL && err != ENOTSUP) {
    return ErrnoStatus(err, "fsync directory", dir);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return ErrnoStatus(EISDIR, "read", path);
  }
  std::string out;
  if (st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return ErrnoStatus(err, "read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

absl::Status WriteFileAtomic(const std::string& path,
                             std::string_view content) {
  VPTQ_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::Create(path));
  VPTQ_RETURN_IF_ERROR(out.Append(content));
  return out.Commit();
}

// --- AtomicFileWriter --------------------------------------------------------

absl::StatusOr<AtomicFileWriter> AtomicFileWriter::Create(
    const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("empty output path");
  for (int attempt = 0;; ++attempt) {
    std::string temp = TempPathFor(path);
    // 0666 & ~umask: the published file gets the usual permissions.
    const int fd = ::open(temp.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return AtomicFileWriter(path, std::move(temp), fd);
    if (errno == EEXIST && attempt < 8) continue;
    return Annotate(ErrnoStatus(errno, "create temp file", temp),
                    "writing '", path, "'");
  }
}

AtomicFileWriter::AtomicFileWriter(std::string path, std::string temp_path,
                                   int fd)
    : path_(std::move(path)), temp_path_(std::move(temp_path)), fd_(fd) {}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : path_(std::move(other.path_)),
      temp_path_(std::move(other.temp_path_)),
      fd_(std::exchange(other.fd_, -1)),
      error_(std::move(other.error_)) {}

AtomicFileWriter& AtomicFileWriter::operator=(
    AtomicFileWriter&& other) noexcept {
  if (this != &other) {
    Discard();
    path_ = std::move(other.path_);
    temp_path_ = std::move(other.temp_path_);
    fd_ = std::exchange(other.fd_, -1);
    error_ = std::move(other.error_);
  }
  return *this;
}

AtomicFileWriter::~AtomicFileWriter() { Discard(); }

void AtomicFileWriter::Discard() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  ::unlink(temp_path_.c_str());
}

absl::Status AtomicFileWriter::Fail(absl::Status status) {
  Discard();
  error_ = Annotate(status, "writing '", path_, "'");
  return error_;
}

absl::Status AtomicFileWriter::Append(std::string_view bytes) {
  if (!error_.ok()) return error_;
  if (fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("writing '", path_, "': Append after Commit"));
  }
  absl::Status s = WriteAll(fd_, bytes, temp_path_);
  if (!s.ok()) return Fail(std::move(s));
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::Commit() {
  if (!error_.ok()) return error_;
  if (fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("writing '", path_, "': Commit called twice"));
  }
  int rc;
  do {
    rc = ::fsync(fd_);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return Fail(ErrnoStatus(errno, "fsync", temp_path_));
  // close() can report a delayed write error (NFS); treat it as one.
  rc = ::close(fd_);
  const int close_errno = errno;
  fd_ = -1;
  if (rc != 0 && close_errno != EINTR) {
    ::unlink(temp_path_.c_str());
    error_ = Annotate(ErrnoStatus(close_errno, "close", temp_path_),
                      "writing '", path_, "'");
    return error_;
  }
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp_path_.c_str());
    error_ = Annotate(ErrnoStatus(err, "rename onto", path_), "writing '",
                      path_, "'");
    return error_;
  }
  // The data is safe in the file; the rename itself is durable only once the
  // directory is synced.
  return SyncDir(DirName(path_));
}

}  // namespace vptq
