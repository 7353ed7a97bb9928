#include "cli/download.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/checkpoint_marker.h"
#include "cli/follow_job.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "common/status.h"

namespace vptq::cli {
namespace {

namespace fs = std::filesystem;

constexpr char kStagingFormat[] = "vptq-download-staging";

std::string Join(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

int64_t FileSize(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  return static_cast<int64_t>(st.st_size);
}

// Hashes the first `bytes` of `path` into `hash`.
absl::Status HashPrefix(const std::string& path, int64_t bytes, Sha256* hash) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  std::string buffer(1 << 20, '\0');
  int64_t left = bytes;
  while (left > 0) {
    const ssize_t n = ::read(fd, buffer.data(), std::min<int64_t>(left, buffer.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      return ErrnoStatus(err, "read", path);
    }
    hash->Update(buffer.data(), static_cast<size_t>(n));
    left -= n;
  }
  ::close(fd);
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "write", path);
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Closes a descriptor on every path out.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

class Downloader {
 public:
  Downloader(JobSource& source, const v1::Job& job, const DownloadOptions& options,
             DownloadResult* result)
      : source_(source),
        job_(job),
        options_(options),
        result_(result),
        deadline_(options.timeout == absl::InfiniteDuration() ? absl::InfiniteFuture()
                                                              : absl::Now() + options.timeout) {}

  // Brings <staging>/<name> to the artifact's bytes (see download.h).
  absl::Status FetchFile(const std::string& staging, const std::string& name,
                         const v1::ArtifactRef& ref) {
    const std::string final_path = Join(staging, name);
    const std::string part = final_path + ".part";
    const int64_t size = ref.size_bytes();
    if (FileSize(final_path) == size) {
      absl::StatusOr<std::string> sha = Sha256File(final_path);
      if (sha.ok() && *sha == ref.sha256()) {
        result_->bytes_reused += size;
        return absl::OkStatus();
      }
    }
    std::error_code ignored;
    fs::remove(final_path, ignored);
    for (int pass = 0; pass < 2; ++pass) {
      int64_t have = std::max<int64_t>(FileSize(part), 0);
      if (have > size) {
        fs::remove(part, ignored);
        have = 0;
      }
      Fd out;
      out.fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (out.fd < 0) return ErrnoStatus(errno, "open", part);
      if (::lseek(out.fd, have, SEEK_SET) < 0) return ErrnoStatus(errno, "seek", part);
      Sha256 hash;
      VPTQ_RETURN_IF_ERROR(HashPrefix(part, have, &hash));
      if (have > 0) {
        result_->bytes_reused += have;
        Note(absl::StrCat(name, ": resuming a partial download at ", have, " of ", size,
                          " bytes"));
      }
      VPTQ_RETURN_IF_ERROR(Stream(name, ref, part, out.fd, &have, &hash));
      if (::fsync(out.fd) != 0) return ErrnoStatus(errno, "fsync", part);
      const std::string got = hash.HexDigest();
      if (got == ref.sha256()) {
        if (::rename(part.c_str(), final_path.c_str()) != 0) {
          return ErrnoStatus(errno, "rename", part);
        }
        return absl::OkStatus();
      }
      ++result_->checksum_mismatches;
      fs::remove(part, ignored);
      if (pass == 0) {
        Note(absl::StrCat(name, ": SHA-256 mismatch (expected ", ref.sha256(), ", got ", got,
                          "); fetching it again from the start"));
        continue;
      }
      return absl::DataLossError(absl::StrCat(
          "SHA-256 mismatch for ", name, " of job ", job_.job_id(), " after fetching it twice: expected ",
          ref.sha256(), ", got ", got, "; nothing was written"));
    }
    return absl::InternalError("unreachable");
  }

 private:
  // Streams [have, size) into fd, reopening the stream at the current offset
  // when it breaks.
  absl::Status Stream(const std::string& name, const v1::ArtifactRef& ref, const std::string& part,
                      int fd, int64_t* have, Sha256* hash) {
    const int64_t size = ref.size_bytes();
    absl::Duration backoff = options_.initial_backoff;
    for (int attempt = 1; *have < size; ++attempt) {
      if (attempt > 1 || *have > 0) ++result_->resumes;
      absl::Status local;  // an error of ours: stops the stream, not retried
      absl::Status stream_error;  // a bad stream: retried
      const int64_t before = *have;
      absl::Status s = source_.DownloadArtifact(
          job_.job_id(), ref.artifact_id(), *have, deadline_,
          [&](const v1::ArtifactStreamResponse& m) {
            if (m.has_info()) {
              if (m.info().size_bytes() != size || m.info().sha256() != ref.sha256()) {
                local = absl::FailedPreconditionError(absl::StrCat(
                    "artifact ", ref.artifact_id(), " (", name, ") is not the one the job lists: ",
                    m.info().size_bytes(), " bytes, sha256 ", m.info().sha256()));
                return false;
              }
              return true;
            }
            if (!m.has_chunk()) return true;
            if (m.chunk().offset() != *have ||
                *have + static_cast<int64_t>(m.chunk().data().size()) > size) {
              stream_error = absl::DataLossError(absl::StrCat(
                  "chunk at offset ", m.chunk().offset(), " while ", *have, " bytes were expected"));
              return false;
            }
            local = WriteAll(fd, m.chunk().data(), part);
            if (!local.ok()) return false;
            hash->Update(m.chunk().data());
            *have += static_cast<int64_t>(m.chunk().data().size());
            result_->bytes_fetched += static_cast<int64_t>(m.chunk().data().size());
            if (options_.on_progress) options_.on_progress(name, *have, size);
            return true;
          });
      if (!local.ok()) return local;
      if (*have >= size) return absl::OkStatus();
      if (!stream_error.ok()) s = stream_error;
      if (s.ok()) s = absl::UnavailableError(absl::StrCat("the stream ended at ", *have, " of ", size, " bytes"));
      if (!IsRetryableStreamError(s) && !absl::IsDataLoss(s)) {
        return Annotate(s, "downloading ", name);
      }
      if (*have > before) backoff = options_.initial_backoff;  // progress: not a failing server
      if (attempt >= options_.max_attempts) {
        return Annotate(s, "downloading ", name, " failed ", attempt, " times in a row");
      }
      if (absl::Now() + backoff >= deadline_) {
        return absl::DeadlineExceededError(absl::StrCat("download timed out in ", name));
      }
      Note(absl::StrCat(name, ": stream interrupted at ", *have, " of ", size, " bytes (",
                        s.message(), "); resuming in ", absl::FormatDuration(backoff)));
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
    return absl::OkStatus();
  }

  void Note(const std::string& line) {
    if (options_.on_note) options_.on_note(line);
  }

  JobSource& source_;
  const v1::Job& job_;
  const DownloadOptions& options_;
  DownloadResult* result_;
  const absl::Time deadline_;
};

nlohmann::ordered_json StagingMarker(const v1::Job& job,
                                     const std::map<std::string, v1::OutputFile>& files) {
  nlohmann::ordered_json list = nlohmann::ordered_json::object();
  for (const auto& [name, f] : files) {
    list[name] = {{"artifact_id", f.artifact().artifact_id()},
                  {"size", f.artifact().size_bytes()},
                  {"sha256", f.artifact().sha256()}};
  }
  nlohmann::ordered_json m;
  m["format"] = kStagingFormat;
  m["job_id"] = job.job_id();
  m["files"] = list;
  return m;
}

// Makes `staging` ready: created (with parents) when missing; reused when it
// is ours, with files that belong to no wanted output (or to an older
// version of one) removed; refused otherwise.
absl::Status PrepareStaging(const std::string& staging, const v1::Job& job,
                            const std::map<std::string, v1::OutputFile>& files) {
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(staging, ec);
  if (fs::exists(st)) {
    if (!fs::is_directory(st)) {
      return absl::FailedPreconditionError(absl::StrCat(
          staging, " exists and is not a directory; remove it to download here"));
    }
    nlohmann::ordered_json previous;
    absl::StatusOr<std::string> text = ReadFile(Join(staging, kStagingMarkerName));
    if (text.ok()) previous = nlohmann::ordered_json::parse(*text, nullptr, false);
    const bool staging_ours = text.ok() && previous.is_object() &&
                              previous.value("format", "") == kStagingFormat;
    const bool finished_ours = InspectOutputDir(staging) == DirState::kCheckpoint;
    if (!staging_ours && !finished_ours && !fs::is_empty(staging, ec)) {
      return absl::FailedPreconditionError(absl::StrCat(
          staging, " exists and was not made by vptqctl download; remove it to download here"));
    }
    std::vector<fs::path> entries;
    for (const auto& entry : fs::directory_iterator(staging, ec)) entries.push_back(entry.path());
    for (const fs::path& path : entries) {
      const std::string name = path.filename().string();
      if (name == kStagingMarkerName) continue;
      std::string base = name;
      if (absl::EndsWith(base, ".part")) base.resize(base.size() - 5);
      auto it = files.find(base);
      bool keep = it != files.end();
      if (keep && staging_ours && previous["files"].is_object() &&
          previous["files"].contains(base)) {
        keep = previous["files"][base].value("sha256", "") == it->second.artifact().sha256();
      }
      if (!keep) fs::remove_all(path, ec);
    }
  } else {
    fs::create_directories(staging, ec);
    if (ec) return ErrnoStatus(ec.value(), "create directory", staging);
  }
  return WriteFileAtomic(Join(staging, kStagingMarkerName), StagingMarker(job, files).dump(2));
}

// Renames `staging` to `out` (exchanging with our old checkpoint when
// `replace`).
absl::Status Publish(const std::string& staging, const std::string& out, bool replace) {
  if (replace) {
    if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, out.c_str(), RENAME_EXCHANGE) != 0) {
      return ErrnoStatus(errno, "exchange", out);
    }
    std::error_code ignored;
    fs::remove_all(staging, ignored);  // now the previous checkpoint
  } else if (::rename(staging.c_str(), out.c_str()) != 0) {
    const int err = errno;
    if (err == ENOTEMPTY || err == EEXIST) {
      return absl::FailedPreconditionError(
          absl::StrCat(out, " was filled by someone else during the download; the checkpoint "
                            "is complete in ", staging));
    }
    return ErrnoStatus(err, "rename", staging);
  }
  return SyncDir(DirName(out));
}

std::string NormalizeDir(const std::string& dir) {
  const fs::path p = fs::path(dir).lexically_normal();
  return p.has_filename() ? p.string() : p.parent_path().string();
}

}  // namespace

absl::Status CheckOutputDirUsable(const std::string& out_dir) {
  switch (InspectOutputDir(NormalizeDir(out_dir))) {
    case DirState::kNotDir:
      return absl::FailedPreconditionError(
          absl::StrCat(out_dir, " exists and is not a directory; choose another output directory"));
    case DirState::kForeign:
      return absl::FailedPreconditionError(absl::StrCat(
          out_dir, " exists and does not hold a checkpoint written by vptq (no ",
          kCheckpointMarkerName, "); nothing was written. Choose another output directory or "
          "remove it"));
    default:
      return absl::OkStatus();
  }
}

absl::StatusOr<DownloadResult> DownloadCheckpoint(JobSource& source, const v1::Job& job,
                                                  const std::string& out_dir_in,
                                                  const DownloadOptions& options) {
  if (out_dir_in.empty()) return absl::InvalidArgumentError("no output directory given");
  const std::string out_dir = NormalizeDir(out_dir_in);
  std::map<std::string, v1::OutputFile> files;
  VPTQ_RETURN_IF_ERROR(OutputsByName(job, &files));
  DownloadResult result;
  for (const auto& [name, f] : files) result.files.push_back(name);
  const nlohmann::ordered_json marker = MarkerForOutputs(files);

  VPTQ_RETURN_IF_ERROR(CheckOutputDirUsable(out_dir));
  nlohmann::ordered_json on_disk;
  const DirState state = InspectOutputDir(out_dir, &on_disk);
  if (state == DirState::kCheckpoint && HoldsSameCheckpoint(out_dir, on_disk, marker)) {
    result.unchanged = true;
    return result;
  }

  const std::string staging = out_dir + kStagingSuffix;
  VPTQ_RETURN_IF_ERROR(PrepareStaging(staging, job, files));
  Downloader downloader(source, job, options, &result);
  for (const auto& [name, f] : files) {
    VPTQ_RETURN_IF_ERROR(downloader.FetchFile(staging, name, f.artifact()));
  }
  VPTQ_RETURN_IF_ERROR(WriteFileAtomic(Join(staging, kCheckpointMarkerName), MarkerText(marker)));
  std::error_code ec;
  fs::remove(Join(staging, kStagingMarkerName), ec);
  VPTQ_RETURN_IF_ERROR(SyncDir(staging));
  // `out` may have changed while we fetched; look again just before the rename.
  VPTQ_RETURN_IF_ERROR(CheckOutputDirUsable(out_dir));
  VPTQ_RETURN_IF_ERROR(
      Publish(staging, out_dir, InspectOutputDir(out_dir) == DirState::kCheckpoint));
  return result;
}

}  // namespace vptq::cli
