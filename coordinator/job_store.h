// JobStore: the coordinator's durable state, as a narrow domain interface
// (jobs, tasks, artifacts, events) with a RocksDB implementation
// (rocks_job_store.h) and an in-memory one for unit tests
// (memory_job_store.h).
//
// Contract:
//  - Apply(m) is atomic: after a crash either all of `m` is visible or none
//    of it. Every coordinator state change is exactly one Apply. With
//    m.sync the change is on disk when Apply returns (RocksDB: WAL fsync).
//  - Artifacts are chunked blobs. An upload first stages chunks
//    (BeginArtifact, PutArtifactChunk) which no reader sees (a staged upload
//    is listed from its first chunk on); the Apply that
//    lists the artifact in `commit_artifacts` makes it visible together with
//    the task state change that produced it. AbortArtifact drops a staged
//    upload; ListStagedArtifacts finds uploads a crash interrupted.
//  - Events of a job have sequence numbers 1, 2, 3, ... with no gaps; the
//    job record written in the same Apply carries the last one.
//  - The coordinator is the only writer. Implementations are thread-safe;
//    readers see only whole Applys.
//  - Costs: Apply is one write batch (plus an fsync when sync). Loads are
//    prefix scans; artifact chunk reads are point lookups.
//
//   Mutation m;
//   m.put_tasks.push_back(task);
//   m.events.push_back(event);
//   m.put_jobs.push_back(job);
//   VPTQ_RETURN_IF_ERROR(store->Apply(m));
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "vptq/v1/store.pb.h"

namespace vptq::coordinator {

// One chunk of an artifact, written by the Apply that commits it (a small
// upload's only chunk: one write instead of two).
struct ArtifactChunk {
  std::string artifact_id;
  int64_t index = 0;
  std::string bytes;
};

struct Mutation {
  std::vector<v1::JobRecord> put_jobs;
  std::vector<v1::TaskRecord> put_tasks;
  std::vector<v1::JobEvent> events;
  // Staged artifacts made visible (meta written, staging marker cleared),
  // with chunks that were not staged before.
  std::vector<v1::ArtifactMeta> commit_artifacts;
  std::vector<ArtifactChunk> put_chunks;
  // Committed artifacts removed (meta and chunks).
  std::vector<v1::ArtifactMeta> delete_artifacts;
  bool sync = true;

  bool empty() const {
    return put_jobs.empty() && put_tasks.empty() && events.empty() &&
           commit_artifacts.empty() && put_chunks.empty() && delete_artifacts.empty();
  }
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  [[nodiscard]] virtual absl::Status Apply(const Mutation& m) = 0;
  // Makes every Apply so far durable (RocksDB: fsync the WAL). Lets a caller
  // apply with sync = false under its own lock and pay for the disk flush
  // after releasing it, shared with concurrent callers (group commit).
  [[nodiscard]] virtual absl::Status Sync() { return absl::OkStatus(); }

  // Every job record, in no particular order.
  virtual absl::StatusOr<std::vector<v1::JobRecord>> LoadJobs() = 0;
  // The job's tasks in plan (index) order; empty for an unknown job.
  virtual absl::StatusOr<std::vector<v1::TaskRecord>> LoadTasks(absl::string_view job_id) = 0;
  // Events with sequence > after_sequence, ascending, at most max_events.
  virtual absl::StatusOr<std::vector<v1::JobEvent>> ReadEvents(absl::string_view job_id,
                                                               int64_t after_sequence,
                                                               int max_events) = 0;

  // Artifacts. Ids are opaque strings without NUL bytes.
  [[nodiscard]] virtual absl::Status BeginArtifact(absl::string_view artifact_id) = 0;
  [[nodiscard]] virtual absl::Status PutArtifactChunk(absl::string_view artifact_id,
                                                      int64_t index, absl::string_view bytes) = 0;
  // Drops a staged upload of which `num_chunks_hint` chunks may exist (-1:
  // unknown, drop every chunk under the id).
  [[nodiscard]] virtual absl::Status AbortArtifact(absl::string_view artifact_id,
                                                   int64_t num_chunks_hint) = 0;
  // NOT_FOUND unless committed.
  virtual absl::StatusOr<v1::ArtifactMeta> GetArtifact(absl::string_view artifact_id) = 0;
  virtual absl::StatusOr<std::string> ReadArtifactChunk(absl::string_view artifact_id,
                                                        int64_t index) = 0;
  virtual absl::StatusOr<std::vector<v1::ArtifactMeta>> ListArtifacts() = 0;
  virtual absl::StatusOr<std::vector<std::string>> ListStagedArtifacts() = 0;

  // Gives the disk space of deleted artifacts back to the file system. A
  // delete only marks data dead; without this a long-running store keeps
  // every Hessian it ever held. Slow (rewrites the live artifact data):
  // call it off the scheduler's lock. Writers may run concurrently.
  [[nodiscard]] virtual absl::Status ReclaimSpace() { return absl::OkStatus(); }

  // OK unless a write failed and none has succeeded since; then it tries a
  // tiny write and returns its error. A full disk heals by itself once space
  // is freed; some I/O errors leave the store read-only until it is opened
  // again, which is what the coordinator's health (and so a restart by the
  // orchestrator) is driven by.
  [[nodiscard]] virtual absl::Status CheckWritable() { return absl::OkStatus(); }
};

// Reads bytes [offset, offset + max_bytes) of a committed artifact (fewer at
// the end). OUT_OF_RANGE when offset > size.
absl::StatusOr<std::string> ReadArtifactRange(JobStore& store, const v1::ArtifactMeta& meta,
                                              int64_t offset, int64_t max_bytes);

}  // namespace vptq::coordinator
