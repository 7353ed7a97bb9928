#include "coordinator/artifact_writer.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace vptq::coordinator {

ArtifactWriter::ArtifactWriter(JobStore* store, std::string artifact_id, int64_t chunk_bytes)
    : store_(store), artifact_id_(std::move(artifact_id)), chunk_bytes_(std::max<int64_t>(chunk_bytes, 1)) {}

absl::Status ArtifactWriter::Begin() {
  VPTQ_RETURN_IF_ERROR(store_->BeginArtifact(artifact_id_));
  begun_ = true;
  return absl::OkStatus();
}

absl::Status ArtifactWriter::FlushChunk() {
  VPTQ_RETURN_IF_ERROR(store_->PutArtifactChunk(artifact_id_, chunks_, buffer_));
  ++chunks_;
  ++staged_;
  buffer_.clear();
  return absl::OkStatus();
}

absl::Status ArtifactWriter::Write(absl::string_view bytes, int64_t size_limit) {
  if (size_limit >= 0 && size_ + static_cast<int64_t>(bytes.size()) > size_limit) {
    return absl::InvalidArgumentError(absl::StrCat("artifact ", artifact_id_, " got more than the ",
                                                   size_limit, " bytes its output_begin declared"));
  }
  sha_.Update(bytes.data(), bytes.size());
  size_ += static_cast<int64_t>(bytes.size());
  while (!bytes.empty()) {
    // A full chunk is staged only once more bytes follow: the last one may
    // go with the commit (Finish).
    if (static_cast<int64_t>(buffer_.size()) == chunk_bytes_) VPTQ_RETURN_IF_ERROR(FlushChunk());
    const size_t room = static_cast<size_t>(chunk_bytes_) - buffer_.size();
    const size_t take = std::min(room, bytes.size());
    buffer_.append(bytes.data(), take);
    bytes.remove_prefix(take);
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ArtifactMeta> ArtifactWriter::Finish(absl::string_view expected_sha256,
                                                        int64_t expected_size) {
  if (static_cast<int64_t>(buffer_.size()) > kMaxTailBytes) {
    VPTQ_RETURN_IF_ERROR(FlushChunk());
  } else if (!buffer_.empty()) {
    tail_ = ArtifactChunk{artifact_id_, chunks_++, std::move(buffer_)};
    buffer_.clear();
  }
  const std::string got = sha_.HexDigest();
  if (expected_size >= 0 && size_ != expected_size) {
    return absl::DataLossError(absl::StrCat("artifact ", artifact_id_, ": received ", size_,
                                            " bytes, the upload declared ", expected_size));
  }
  if (absl::AsciiStrToLower(expected_sha256) != got) {
    return absl::DataLossError(absl::StrCat("artifact ", artifact_id_, ": SHA-256 mismatch (sent ",
                                            expected_sha256, ", received data hashes to ", got,
                                            "); resend the result"));
  }
  v1::ArtifactMeta meta;
  meta.mutable_ref()->set_artifact_id(artifact_id_);
  meta.mutable_ref()->set_size_bytes(size_);
  meta.mutable_ref()->set_sha256(got);
  meta.set_chunk_bytes(chunk_bytes_);
  meta.set_num_chunks(chunks_);
  return meta;
}

std::optional<ArtifactChunk> ArtifactWriter::TakeTail() {
  std::optional<ArtifactChunk> t = std::move(tail_);
  tail_.reset();
  return t;
}

void ArtifactWriter::Abort() {
  if (!begun_) return;
  tail_.reset();
  if (staged_ == 0) {  // the store lists an upload from its first chunk on
    begun_ = false;
    return;
  }
  absl::Status s = store_->AbortArtifact(artifact_id_, staged_);
  (void)s;  // best effort: recovery drops what is still staged
  begun_ = false;
}

}  // namespace vptq::coordinator
