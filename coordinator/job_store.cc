#include "coordinator/job_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace vptq::coordinator {

absl::StatusOr<std::string> ReadArtifactRange(JobStore& store, const v1::ArtifactMeta& meta,
                                              int64_t offset, int64_t max_bytes) {
  const int64_t size = meta.ref().size_bytes();
  if (offset < 0 || offset > size) {
    return absl::OutOfRangeError(absl::StrCat("offset ", offset, " is outside artifact ",
                                              meta.ref().artifact_id(), " of ", size, " bytes"));
  }
  std::string out;
  const int64_t end = std::min(size, offset + std::max<int64_t>(max_bytes, 0));
  const int64_t chunk_bytes = meta.chunk_bytes();
  if (chunk_bytes <= 0) {
    return absl::DataLossError(
        absl::StrCat("artifact ", meta.ref().artifact_id(), " has chunk size ", chunk_bytes));
  }
  int64_t pos = offset;
  while (pos < end) {
    const int64_t index = pos / chunk_bytes;
    VPTQ_ASSIGN_OR_RETURN(std::string chunk,
                          store.ReadArtifactChunk(meta.ref().artifact_id(), index));
    const int64_t chunk_start = index * chunk_bytes;
    const int64_t expected =
        std::min(chunk_bytes, size - chunk_start);
    if (static_cast<int64_t>(chunk.size()) != expected) {
      return absl::DataLossError(absl::StrCat("artifact ", meta.ref().artifact_id(), " chunk ",
                                              index, " has ", chunk.size(), " bytes, expected ",
                                              expected));
    }
    const int64_t from = pos - chunk_start;
    const int64_t take = std::min<int64_t>(expected - from, end - pos);
    out.append(chunk, from, take);
    pos += take;
  }
  return out;
}

}  // namespace vptq::coordinator
