#include "coordinator/memory_job_store.h"

#include "absl/strings/str_cat.h"

namespace vptq::coordinator {

void MemoryJobStore::FailNextApply(absl::Status status) {
  absl::MutexLock lock(&fail_mu_);
  fail_next_ = std::move(status);
}

int64_t MemoryJobStore::applies() const {
  absl::MutexLock lock(&data_->mu);
  return data_->applies;
}

void MemoryJobStore::DropChunks(const std::string& id) {
  auto it = data_->chunks.lower_bound({id, 0});
  while (it != data_->chunks.end() && it->first.first == id) it = data_->chunks.erase(it);
}

absl::Status MemoryJobStore::Apply(const Mutation& m) {
  {
    absl::MutexLock lock(&fail_mu_);
    if (!fail_next_.ok()) {
      absl::Status s = std::move(fail_next_);
      fail_next_ = absl::OkStatus();
      return s;
    }
  }
  absl::MutexLock lock(&data_->mu);
  for (const auto& j : m.put_jobs) data_->jobs[j.job().job_id()] = j;
  for (const auto& t : m.put_tasks) data_->tasks[{t.job_id(), t.index()}] = t;
  for (const auto& e : m.events) data_->events[{e.job_id(), e.sequence()}] = e;
  for (const auto& c : m.put_chunks) data_->chunks[{c.artifact_id, c.index}] = c.bytes;
  for (const auto& a : m.commit_artifacts) {
    data_->artifacts[a.ref().artifact_id()] = a;
    data_->staged.erase(a.ref().artifact_id());
  }
  for (const auto& a : m.delete_artifacts) {
    data_->artifacts.erase(a.ref().artifact_id());
    DropChunks(a.ref().artifact_id());
  }
  ++data_->applies;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::JobRecord>> MemoryJobStore::LoadJobs() {
  absl::MutexLock lock(&data_->mu);
  std::vector<v1::JobRecord> out;
  for (const auto& [id, j] : data_->jobs) out.push_back(j);
  return out;
}

absl::StatusOr<std::vector<v1::TaskRecord>> MemoryJobStore::LoadTasks(absl::string_view job_id) {
  absl::MutexLock lock(&data_->mu);
  std::vector<v1::TaskRecord> out;
  const std::string id(job_id);
  for (auto it = data_->tasks.lower_bound({id, 0});
       it != data_->tasks.end() && it->first.first == id; ++it) {
    out.push_back(it->second);
  }
  return out;
}

absl::StatusOr<std::vector<v1::JobEvent>> MemoryJobStore::ReadEvents(absl::string_view job_id,
                                                                     int64_t after_sequence,
                                                                     int max_events) {
  absl::MutexLock lock(&data_->mu);
  std::vector<v1::JobEvent> out;
  const std::string id(job_id);
  for (auto it = data_->events.upper_bound({id, after_sequence});
       it != data_->events.end() && it->first.first == id &&
       static_cast<int>(out.size()) < max_events;
       ++it) {
    out.push_back(it->second);
  }
  return out;
}

absl::Status MemoryJobStore::BeginArtifact(absl::string_view artifact_id) {
  absl::MutexLock lock(&data_->mu);
  const std::string id(artifact_id);
  if (data_->artifacts.count(id)) {
    return absl::AlreadyExistsError(absl::StrCat("artifact ", id, " is already committed"));
  }
  DropChunks(id);
  return absl::OkStatus();  // staged from its first chunk on, as in RocksJobStore
}

absl::Status MemoryJobStore::PutArtifactChunk(absl::string_view artifact_id, int64_t index,
                                              absl::string_view bytes) {
  absl::MutexLock lock(&data_->mu);
  data_->staged[std::string(artifact_id)] = true;
  data_->chunks[{std::string(artifact_id), index}] = std::string(bytes);
  return absl::OkStatus();
}

absl::Status MemoryJobStore::AbortArtifact(absl::string_view artifact_id, int64_t) {
  absl::MutexLock lock(&data_->mu);
  const std::string id(artifact_id);
  if (data_->artifacts.count(id)) return absl::OkStatus();  // committed: not ours to drop
  data_->staged.erase(id);
  DropChunks(id);
  return absl::OkStatus();
}

absl::StatusOr<v1::ArtifactMeta> MemoryJobStore::GetArtifact(absl::string_view artifact_id) {
  absl::MutexLock lock(&data_->mu);
  auto it = data_->artifacts.find(std::string(artifact_id));
  if (it == data_->artifacts.end()) {
    return absl::NotFoundError(absl::StrCat("no artifact ", artifact_id));
  }
  return it->second;
}

absl::StatusOr<std::string> MemoryJobStore::ReadArtifactChunk(absl::string_view artifact_id,
                                                              int64_t index) {
  absl::MutexLock lock(&data_->mu);
  auto it = data_->chunks.find({std::string(artifact_id), index});
  if (it == data_->chunks.end()) {
    return absl::NotFoundError(absl::StrCat("artifact ", artifact_id, " has no chunk ", index));
  }
  return it->second;
}

absl::StatusOr<std::vector<v1::ArtifactMeta>> MemoryJobStore::ListArtifacts() {
  absl::MutexLock lock(&data_->mu);
  std::vector<v1::ArtifactMeta> out;
  for (const auto& [id, a] : data_->artifacts) out.push_back(a);
  return out;
}

absl::StatusOr<std::vector<std::string>> MemoryJobStore::ListStagedArtifacts() {
  absl::MutexLock lock(&data_->mu);
  std::vector<std::string> out;
  for (const auto& [id, unused] : data_->staged) out.push_back(id);
  return out;
}

}  // namespace vptq::coordinator
