// JobStore on RocksDB. Column families:
//   jobs       job_id                          -> JobRecord
//   tasks      job_id \0 index (u32 BE)        -> TaskRecord
//   events     job_id \0 sequence (u64 BE)     -> JobEvent
//   artifacts  "m" id                          -> ArtifactMeta
//              "s" id                          -> staging marker
//              "c" id \0 chunk index (u64 BE)  -> chunk bytes
// The artifacts family has integrated BlobDB on (enable_blob_files), so large
// chunks live in blob files and do not churn the LSM tree. One Mutation is
// one WriteBatch; Mutation::sync fsyncs the WAL. Deleted chunks become blob
// garbage: background compactions collect some of it, ReclaimSpace all.
//
//   VPTQ_ASSIGN_OR_RETURN(auto store, RocksJobStore::Open("/var/lib/vptq/store"));
//
// Opening creates the database if missing. Thread-safe (RocksDB is). Closing
// = destroying the object (flushes nothing extra: the WAL is the durability).
#pragma once

#include "absl/strings/string_view.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/job_store.h"

namespace rocksdb {
class DB;
class Status;
class Env;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace vptq::coordinator {

struct RocksStoreOptions {
  // false: never fsync (benchmarks, tests on tmpfs); Mutation::sync ignored.
  bool allow_sync = true;
  // Values at least this large go to blob files.
  uint64_t min_blob_size = 4096;
  // Tests inject file-system faults through this; null: the default Env.
  rocksdb::Env* env = nullptr;
};

class RocksJobStore : public JobStore {
 public:
  static absl::StatusOr<std::unique_ptr<RocksJobStore>> Open(const std::string& path,
                                                             RocksStoreOptions options = {});
  ~RocksJobStore() override;

  absl::Status Apply(const Mutation& m) override;
  absl::Status Sync() override;
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
  // Flushes every family (so no old WAL file is pinned) and compacts the
  // artifacts family with forced blob garbage collection.
  absl::Status ReclaimSpace() override;
  absl::Status CheckWritable() override;

 private:
  RocksJobStore() = default;
  // FromRocks for the result of a write; remembers whether it failed.
  absl::Status Written(const rocksdb::Status& s, absl::string_view what);

  std::string path_;
  RocksStoreOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::atomic<bool> write_failed_{false};
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // default, jobs, tasks, events, artifacts
  rocksdb::ColumnFamilyHandle* jobs_ = nullptr;
  rocksdb::ColumnFamilyHandle* tasks_ = nullptr;
  rocksdb::ColumnFamilyHandle* events_ = nullptr;
  rocksdb::ColumnFamilyHandle* artifacts_ = nullptr;
};

}  // namespace vptq::coordinator
