// ArtifactWriter: stages one uploaded blob in the JobStore, re-chunked to the
// store's chunk size and hashed on the fly, so a multi-GB Hessian never sits
// in memory whole.
//
// Contract: Begin, Write*, then Finish (checks the declared size and SHA-256;
// DATA_LOSS on a mismatch) or Abort. The returned meta must be committed in a
// Mutation (commit_artifacts, plus TakeTail() in put_chunks) to become
// visible; until then, or after Abort, readers see nothing. The last chunk,
// when at most kMaxTailBytes, is not staged but handed to the commit: a small
// output costs the store one write, not two. Not thread-safe (one upload
// stream owns it).
//
//   ArtifactWriter w(store, id, /*chunk_bytes=*/1 << 20);
//   VPTQ_RETURN_IF_ERROR(w.Begin());
//   VPTQ_RETURN_IF_ERROR(w.Write(bytes));
//   VPTQ_ASSIGN_OR_RETURN(v1::ArtifactMeta meta, w.Finish(sha256_hex, size));
//   m.commit_artifacts.push_back(meta);
//   if (auto tail = w.TakeTail()) m.put_chunks.push_back(*std::move(tail));
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/sha256.h"
#include "coordinator/job_store.h"

namespace vptq::coordinator {

class ArtifactWriter {
 public:
  ArtifactWriter(JobStore* store, std::string artifact_id, int64_t chunk_bytes);

  absl::Status Begin();
  // INVALID_ARGUMENT once more than `size_limit` bytes arrive (-1: none).
  absl::Status Write(absl::string_view bytes, int64_t size_limit = -1);
  absl::StatusOr<v1::ArtifactMeta> Finish(absl::string_view expected_sha256,
                                          int64_t expected_size);
  // After Finish: the last chunk when it was kept for the commit.
  std::optional<ArtifactChunk> TakeTail();
  // Drops what was staged; safe to call at any point, also after Finish.
  void Abort();

  static constexpr int64_t kMaxTailBytes = 64 << 10;

  const std::string& artifact_id() const { return artifact_id_; }
  int64_t bytes_written() const { return size_; }

 private:
  absl::Status FlushChunk();

  JobStore* store_;
  std::string artifact_id_;
  int64_t chunk_bytes_;
  std::string buffer_;
  Sha256 sha_;
  int64_t size_ = 0;
  int64_t chunks_ = 0;  // in all, the tail included
  int64_t staged_ = 0;  // written to the store
  std::optional<ArtifactChunk> tail_;
  bool begun_ = false;
};

}  // namespace vptq::coordinator
