// In-memory JobStore for unit tests. The committed state lives in a shared
// Data object: a second MemoryJobStore over the same Data is a "reopen"
// after a crash (staged uploads survive as staged, as on disk).
//
//   auto data = std::make_shared<MemoryJobStore::Data>();
//   auto store = std::make_unique<MemoryJobStore>(data);
//   ...                                  // crash: drop everything but `data`
//   auto reopened = std::make_unique<MemoryJobStore>(data);
//
// FailNextApply injects a store error. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/job_store.h"

namespace vptq::coordinator {

class MemoryJobStore : public JobStore {
 public:
  struct Data {
    absl::Mutex mu;
    std::map<std::string, v1::JobRecord> jobs ABSL_GUARDED_BY(mu);
    std::map<std::pair<std::string, int>, v1::TaskRecord> tasks ABSL_GUARDED_BY(mu);
    std::map<std::pair<std::string, int64_t>, v1::JobEvent> events ABSL_GUARDED_BY(mu);
    std::map<std::string, v1::ArtifactMeta> artifacts ABSL_GUARDED_BY(mu);
    std::map<std::pair<std::string, int64_t>, std::string> chunks ABSL_GUARDED_BY(mu);
    std::map<std::string, bool> staged ABSL_GUARDED_BY(mu);
    int64_t applies ABSL_GUARDED_BY(mu) = 0;
  };

  MemoryJobStore() : data_(std::make_shared<Data>()) {}
  explicit MemoryJobStore(std::shared_ptr<Data> data) : data_(std::move(data)) {}

  std::shared_ptr<Data> data() const { return data_; }
  // The next Apply returns `status` and changes nothing.
  void FailNextApply(absl::Status status);
  int64_t applies() const;

  absl::Status Apply(const Mutation& m) override;
  absl::StatusOr<std::vector<v1::JobRecord>> LoadJobs() override;
  absl::StatusOr<std::vector<v1::TaskRecord>> LoadTasks(absl::string_view job_id) override;
  absl::StatusOr<std::vector<v1::JobEvent>> ReadEvents(absl::string_view job_id,
                                                       int64_t after_sequence,
                                                       int max_events) override;
  absl::Status BeginArtifact(absl::string_view artifact_id) override;
  absl::Status PutArtifactChunk(absl::string_view artifact_id, int64_t index,
                                absl::string_view bytes) override;
  absl::Status AbortArtifact(absl::string_view artifact_id, int64_t num_chunks_hint) override;
  absl::StatusOr<v1::ArtifactMeta> GetArtifact(absl::string_view artifact_id) override;
  absl::StatusOr<std::string> ReadArtifactChunk(absl::string_view artifact_id,
                                                int64_t index) override;
  absl::StatusOr<std::vector<v1::ArtifactMeta>> ListArtifacts() override;
  absl::StatusOr<std::vector<std::string>> ListStagedArtifacts() override;

 private:
  void DropChunks(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(data_->mu);

  std::shared_ptr<Data> data_;
  mutable absl::Mutex fail_mu_;
  absl::Status fail_next_ ABSL_GUARDED_BY(fail_mu_);
};

}  // namespace vptq::coordinator
