#include "coordinator/rocks_job_store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status.h"

namespace vptq::coordinator {
namespace {

constexpr char kSchemaKey[] = "schema_version";
constexpr char kSchemaVersion[] = "1";
constexpr char kWriteProbeKey[] = "write_probe";  // CheckWritable's scratch key

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat("store: ", what, ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  // Callers retry UNAVAILABLE later, which is what a full disk needs.
  if (s.IsNoSpace()) {
    return absl::UnavailableError(absl::StrCat("store: ", what, ": disk full: ", s.ToString()));
  }
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain() || s.IsIncomplete()) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}

void AppendBE(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string JobPrefix(absl::string_view job_id) {
  std::string k(job_id);
  k.push_back('\0');
  return k;
}

std::string TaskKey(absl::string_view job_id, int index) {
  std::string k = JobPrefix(job_id);
  AppendBE(&k, static_cast<uint32_t>(index), 4);
  return k;
}

std::string EventKey(absl::string_view job_id, int64_t seq) {
  std::string k = JobPrefix(job_id);
  AppendBE(&k, static_cast<uint64_t>(seq), 8);
  return k;
}

std::string MetaKey(absl::string_view id) { return absl::StrCat("m", id); }
std::string StagedKey(absl::string_view id) { return absl::StrCat("s", id); }
std::string ChunkPrefix(absl::string_view id) {
  std::string k = absl::StrCat("c", id);
  k.push_back('\0');
  return k;
}
std::string ChunkKey(absl::string_view id, int64_t index) {
  std::string k = ChunkPrefix(id);
  AppendBE(&k, static_cast<uint64_t>(index), 8);
  return k;
}
// Smallest key greater than every key with this prefix.
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty() && static_cast<uint8_t>(prefix.back()) == 0xff) prefix.pop_back();
  if (!prefix.empty()) prefix.back() = static_cast<char>(static_cast<uint8_t>(prefix.back()) + 1);
  return prefix;
}

absl::Status CheckId(absl::string_view id) {
  if (id.empty() || id.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("artifact id must be non-empty and contain no NUL byte");
  }
  return absl::OkStatus();
}

template <typename Proto>
absl::Status ParseValue(const rocksdb::Slice& value, Proto* out, absl::string_view what) {
  if (!out->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(absl::StrCat("store: cannot parse ", what));
  }
  return absl::OkStatus();
}

// Calls fn(key, value) for every key in [begin, end); fn returns false to stop.
template <typename Fn>
absl::Status Scan(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const std::string& begin,
                  const std::string& end, Fn fn) {
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper(end);
  if (!end.empty()) ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf));
  for (it->Seek(begin); it->Valid(); it->Next()) {
    absl::Status s = fn(it->key(), it->value());
    if (!s.ok()) {
      if (absl::IsCancelled(s)) break;  // the callback's "stop"
      return s;
    }
  }
  return FromRocks(it->status(), "scan");
}

}  // namespace

absl::StatusOr<std::unique_ptr<RocksJobStore>> RocksJobStore::Open(const std::string& path,
                                                                   RocksStoreOptions options) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  if (options.env != nullptr) db_options.env = options.env;
  db_options.keep_log_file_num = 5;
  // The artifact chunks pass through the WAL; a WAL file is only deleted
  // once every family has flushed what it holds, and the small families
  // (jobs, tasks, events) rarely fill a memtable. This makes RocksDB flush
  // them once the WALs pass 256 MiB instead of keeping every chunk twice.
  db_options.max_total_wal_size = 256ull << 20;

  rocksdb::ColumnFamilyOptions plain;
  rocksdb::ColumnFamilyOptions blobs;
  blobs.enable_blob_files = true;
  blobs.min_blob_size = options.min_blob_size;
  blobs.blob_file_size = 256ull << 20;
  blobs.enable_blob_garbage_collection = true;
  // Hessians die in bulk once a layer is quantized: when half the data in
  // the oldest blob files is dead, compact them without waiting for the LSM.
  blobs.blob_garbage_collection_force_threshold = 0.5;
  blobs.blob_compression_type = rocksdb::kNoCompression;  // fp Hessians do not compress
  blobs.write_buffer_size = 64ull << 20;

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, plain},
      {"jobs", plain},
      {"tasks", plain},
      {"events", plain},
      {"artifacts", blobs},
  };
  std::unique_ptr<RocksJobStore> store(new RocksJobStore());
  store->path_ = path;
  store->options_ = options;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, path, cfs, &store->handles_, &db);
  if (!s.ok()) return Annotate(FromRocks(s, "open"), "opening store at ", path);
  store->db_.reset(db);
  store->jobs_ = store->handles_[1];
  store->tasks_ = store->handles_[2];
  store->events_ = store->handles_[3];
  store->artifacts_ = store->handles_[4];

  std::string version;
  s = db->Get(rocksdb::ReadOptions(), store->handles_[0], kSchemaKey, &version);
  if (s.IsNotFound()) {
    rocksdb::WriteOptions wo;
    wo.sync = options.allow_sync;
    VPTQ_RETURN_IF_ERROR(
        FromRocks(db->Put(wo, store->handles_[0], kSchemaKey, kSchemaVersion), "schema"));
  } else if (!s.ok()) {
    return FromRocks(s, "schema");
  } else if (version != kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat("store at ", path, " has schema version ",
                                                      version, "; this build reads ",
                                                      kSchemaVersion));
  }
  return store;
}

RocksJobStore::~RocksJobStore() {
  if (!db_) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  db_->Close().PermitUncheckedError();
}

absl::Status RocksJobStore::Apply(const Mutation& m) {
  rocksdb::WriteBatch batch;
  std::string buf;
  auto put = [&](rocksdb::ColumnFamilyHandle* cf, const std::string& key,
                 const google::protobuf::MessageLite& msg) -> absl::Status {
    buf.clear();
    if (!msg.SerializeToString(&buf)) return absl::InternalError("store: serialize failed");
    return FromRocks(batch.Put(cf, key, buf), "batch put");
  };
  for (const auto& j : m.put_jobs) VPTQ_RETURN_IF_ERROR(put(jobs_, j.job().job_id(), j));
  for (const auto& t : m.put_tasks) {
    VPTQ_RETURN_IF_ERROR(put(tasks_, TaskKey(t.job_id(), t.index()), t));
  }
  for (const auto& e : m.events) {
    VPTQ_RETURN_IF_ERROR(put(events_, EventKey(e.job_id(), e.sequence()), e));
  }
  for (const auto& c : m.put_chunks) {
    VPTQ_RETURN_IF_ERROR(CheckId(c.artifact_id));
    VPTQ_RETURN_IF_ERROR(FromRocks(
        batch.Put(artifacts_, ChunkKey(c.artifact_id, c.index),
                  rocksdb::Slice(c.bytes.data(), c.bytes.size())),
        "batch put"));
  }
  for (const auto& a : m.commit_artifacts) {
    VPTQ_RETURN_IF_ERROR(CheckId(a.ref().artifact_id()));
    VPTQ_RETURN_IF_ERROR(put(artifacts_, MetaKey(a.ref().artifact_id()), a));
    VPTQ_RETURN_IF_ERROR(
        FromRocks(batch.Delete(artifacts_, StagedKey(a.ref().artifact_id())), "batch delete"));
  }
  for (const auto& a : m.delete_artifacts) {
    const std::string& id = a.ref().artifact_id();
    VPTQ_RETURN_IF_ERROR(CheckId(id));
    VPTQ_RETURN_IF_ERROR(FromRocks(batch.Delete(artifacts_, MetaKey(id)), "batch delete"));
    for (int64_t i = 0; i < a.num_chunks(); ++i) {
      VPTQ_RETURN_IF_ERROR(FromRocks(batch.Delete(artifacts_, ChunkKey(id, i)), "batch delete"));
    }
  }
  rocksdb::WriteOptions wo;
  wo.sync = m.sync && options_.allow_sync;
  return Written(db_->Write(wo, &batch), "write");
}

absl::Status RocksJobStore::Written(const rocksdb::Status& s, absl::string_view what) {
  write_failed_.store(!s.ok());
  return FromRocks(s, what);
}

absl::Status RocksJobStore::CheckWritable() {
  if (!write_failed_.load()) return absl::OkStatus();
  return Written(db_->Put(rocksdb::WriteOptions(), handles_[0], kWriteProbeKey,
                          absl::StrCat(absl::ToUnixMillis(absl::Now()))),
                 "write probe");
}

absl::Status RocksJobStore::Sync() {
  if (!options_.allow_sync) return absl::OkStatus();
  return Written(db_->SyncWAL(), "sync");
}

absl::StatusOr<std::vector<v1::JobRecord>> RocksJobStore::LoadJobs() {
  std::vector<v1::JobRecord> out;
  VPTQ_RETURN_IF_ERROR(Scan(db_.get(), jobs_, "", "", [&](auto, const rocksdb::Slice& v) {
    out.emplace_back();
    return ParseValue(v, &out.back(), "job record");
  }));
  return out;
}

absl::StatusOr<std::vector<v1::TaskRecord>> RocksJobStore::LoadTasks(absl::string_view job_id) {
  std::vector<v1::TaskRecord> out;
  const std::string prefix = JobPrefix(job_id);
  VPTQ_RETURN_IF_ERROR(
      Scan(db_.get(), tasks_, prefix, PrefixEnd(prefix), [&](auto, const rocksdb::Slice& v) {
        out.emplace_back();
        return ParseValue(v, &out.back(), "task record");
      }));
  return out;
}

absl::StatusOr<std::vector<v1::JobEvent>> RocksJobStore::ReadEvents(absl::string_view job_id,
                                                                    int64_t after_sequence,
                                                                    int max_events) {
  std::vector<v1::JobEvent> out;
  if (max_events <= 0) return out;
  const std::string prefix = JobPrefix(job_id);
  VPTQ_RETURN_IF_ERROR(Scan(db_.get(), events_, EventKey(job_id, after_sequence + 1),
                            PrefixEnd(prefix), [&](auto, const rocksdb::Slice& v) {
                              out.emplace_back();
                              VPTQ_RETURN_IF_ERROR(ParseValue(v, &out.back(), "event"));
                              if (static_cast<int>(out.size()) >= max_events) {
                                return absl::CancelledError();  // enough
                              }
                              return absl::OkStatus();
                            }));
  return out;
}

absl::Status RocksJobStore::BeginArtifact(absl::string_view artifact_id) {
  VPTQ_RETURN_IF_ERROR(CheckId(artifact_id));
  std::string ignored;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), artifacts_, MetaKey(artifact_id), &ignored);
  if (s.ok()) {
    return absl::AlreadyExistsError(absl::StrCat("artifact ", artifact_id, " is already committed"));
  }
  if (!s.IsNotFound()) return FromRocks(s, "begin artifact");
  // The staged marker is written with chunk 0 (one WAL write, not two):
  // an upload that dies before its first chunk leaves nothing to clean up.
  return absl::OkStatus();
}

absl::Status RocksJobStore::PutArtifactChunk(absl::string_view artifact_id, int64_t index,
                                             absl::string_view bytes) {
  VPTQ_RETURN_IF_ERROR(CheckId(artifact_id));
  const rocksdb::Slice value(bytes.data(), bytes.size());
  if (index != 0) {
    return Written(db_->Put(rocksdb::WriteOptions(), artifacts_, ChunkKey(artifact_id, index), value),
                     "put chunk");
  }
  rocksdb::WriteBatch batch;
  VPTQ_RETURN_IF_ERROR(FromRocks(batch.Put(artifacts_, StagedKey(artifact_id), ""), "put chunk"));
  VPTQ_RETURN_IF_ERROR(FromRocks(batch.Put(artifacts_, ChunkKey(artifact_id, 0), value), "put chunk"));
  return Written(db_->Write(rocksdb::WriteOptions(), &batch), "put chunk");
}

absl::Status RocksJobStore::AbortArtifact(absl::string_view artifact_id, int64_t num_chunks_hint) {
  VPTQ_RETURN_IF_ERROR(CheckId(artifact_id));
  std::string ignored;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), artifacts_, MetaKey(artifact_id), &ignored);
  if (s.ok()) return absl::OkStatus();  // committed: not ours to drop
  rocksdb::WriteBatch batch;
  if (num_chunks_hint >= 0) {
    for (int64_t i = 0; i < num_chunks_hint; ++i) {
      VPTQ_RETURN_IF_ERROR(
          FromRocks(batch.Delete(artifacts_, ChunkKey(artifact_id, i)), "abort artifact"));
    }
  } else {
    const std::string prefix = ChunkPrefix(artifact_id);
    VPTQ_RETURN_IF_ERROR(
        FromRocks(batch.DeleteRange(artifacts_, prefix, PrefixEnd(prefix)), "abort artifact"));
  }
  VPTQ_RETURN_IF_ERROR(
      FromRocks(batch.Delete(artifacts_, StagedKey(artifact_id)), "abort artifact"));
  return Written(db_->Write(rocksdb::WriteOptions(), &batch), "abort artifact");
}

absl::StatusOr<v1::ArtifactMeta> RocksJobStore::GetArtifact(absl::string_view artifact_id) {
  VPTQ_RETURN_IF_ERROR(CheckId(artifact_id));
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), artifacts_, MetaKey(artifact_id), &value);
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat("no artifact ", artifact_id));
  VPTQ_RETURN_IF_ERROR(FromRocks(s, "get artifact"));
  v1::ArtifactMeta meta;
  VPTQ_RETURN_IF_ERROR(ParseValue(value, &meta, "artifact meta"));
  return meta;
}

absl::StatusOr<std::string> RocksJobStore::ReadArtifactChunk(absl::string_view artifact_id,
                                                             int64_t index) {
  VPTQ_RETURN_IF_ERROR(CheckId(artifact_id));
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), artifacts_, ChunkKey(artifact_id, index), &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("artifact ", artifact_id, " has no chunk ", index));
  }
  VPTQ_RETURN_IF_ERROR(FromRocks(s, "read chunk"));
  return value;
}

absl::StatusOr<std::vector<v1::ArtifactMeta>> RocksJobStore::ListArtifacts() {
  std::vector<v1::ArtifactMeta> out;
  VPTQ_RETURN_IF_ERROR(
      Scan(db_.get(), artifacts_, "m", "n", [&](auto, const rocksdb::Slice& v) {
        out.emplace_back();
        return ParseValue(v, &out.back(), "artifact meta");
      }));
  return out;
}

absl::StatusOr<std::vector<std::string>> RocksJobStore::ListStagedArtifacts() {
  std::vector<std::string> out;
  VPTQ_RETURN_IF_ERROR(
      Scan(db_.get(), artifacts_, "s", "t", [&](const rocksdb::Slice& k, auto) {
        out.emplace_back(k.data() + 1, k.size() - 1);
        return absl::OkStatus();
      }));
  return out;
}

absl::Status RocksJobStore::ReclaimSpace() {
  rocksdb::FlushOptions flush;
  flush.wait = true;
  VPTQ_RETURN_IF_ERROR(FromRocks(db_->Flush(flush, handles_), "flush before reclaiming space"));
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  compact.blob_garbage_collection_policy = rocksdb::BlobGarbageCollectionPolicy::kForce;
  compact.blob_garbage_collection_age_cutoff = 1.0;  // every blob file, not just the oldest
  return FromRocks(db_->CompactRange(compact, artifacts_, nullptr, nullptr),
                   "compacting artifacts");
}

}  // namespace vptq::coordinator
