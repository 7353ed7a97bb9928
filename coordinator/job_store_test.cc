// JobStore contract, run against the in-memory and the RocksDB store. Each
// test writes, "reopens" (a new store object over the same data / directory)
// and checks that exactly the committed state is there.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "common/status_matchers.h"
#include "common/sha256.h"
#include "coordinator/artifact_writer.h"
#include "coordinator/memory_job_store.h"
#include "coordinator/rocks_job_store.h"
#include "coordinator/test_util.h"

namespace vptq::coordinator {
namespace {

using ::testing::ElementsAre;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

// Opens the same underlying store again and again.
class StoreFactory {
 public:
  virtual ~StoreFactory() = default;
  virtual std::unique_ptr<JobStore> Open() = 0;
};

class MemoryFactory : public StoreFactory {
 public:
  std::unique_ptr<JobStore> Open() override { return std::make_unique<MemoryJobStore>(data_); }

 private:
  std::shared_ptr<MemoryJobStore::Data> data_ = std::make_shared<MemoryJobStore::Data>();
};

class RocksFactory : public StoreFactory {
 public:
  RocksFactory() : dir_(MakeTempDir("rocks_store")) {}
  ~RocksFactory() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<JobStore> Open() override {
    RocksStoreOptions options;
    options.allow_sync = false;
    auto s = RocksJobStore::Open(dir_ + "/db", options);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

 private:
  std::string dir_;
};

class JobStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "memory") {
      factory_ = std::make_unique<MemoryFactory>();
    } else {
      factory_ = std::make_unique<RocksFactory>();
    }
  }
  std::unique_ptr<StoreFactory> factory_;
};

v1::JobRecord Job(const std::string& id, int64_t seq) {
  v1::JobRecord r;
  r.mutable_job()->set_job_id(id);
  r.set_submit_seq(seq);
  return r;
}

v1::TaskRecord Task(const std::string& job, int index, v1::TaskState state) {
  v1::TaskRecord t;
  t.set_job_id(job);
  t.set_index(index);
  t.set_task_id(job + "/" + std::to_string(index));
  t.set_state(state);
  return t;
}

v1::JobEvent Event(const std::string& job, int64_t seq) {
  v1::JobEvent e;
  e.set_job_id(job);
  e.set_sequence(seq);
  e.set_type(v1::EVENT_TYPE_TASK_LEASED);
  return e;
}

TEST_P(JobStoreTest, MutationsSurviveReopen) {
  {
    auto store = factory_->Open();
    Mutation m;
    m.put_jobs = {Job("job-a", 1), Job("job-b", 2)};
    m.put_tasks = {Task("job-a", 0, v1::TASK_STATE_READY), Task("job-a", 1, v1::TASK_STATE_BLOCKED),
                   Task("job-b", 0, v1::TASK_STATE_READY)};
    m.events = {Event("job-a", 1), Event("job-a", 2), Event("job-b", 1)};
    ASSERT_THAT(store->Apply(m), IsOk());
    Mutation m2;
    m2.put_tasks = {Task("job-a", 1, v1::TASK_STATE_SUCCEEDED)};
    m2.events = {Event("job-a", 3)};
    ASSERT_THAT(store->Apply(m2), IsOk());
  }
  auto store = factory_->Open();
  VPTQ_ASSERT_OK_AND_ASSIGN(auto jobs, store->LoadJobs());
  ASSERT_EQ(jobs.size(), 2u);
  VPTQ_ASSERT_OK_AND_ASSIGN(auto tasks, store->LoadTasks("job-a"));
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks[0].index(), 0);
  EXPECT_EQ(tasks[1].state(), v1::TASK_STATE_SUCCEEDED);
  VPTQ_ASSERT_OK_AND_ASSIGN(auto none, store->LoadTasks("job-"));
  EXPECT_TRUE(none.empty());  // prefix of a job id is not that job

  VPTQ_ASSERT_OK_AND_ASSIGN(auto events, store->ReadEvents("job-a", 0, 100));
  std::vector<int64_t> seqs;
  for (const auto& e : events) seqs.push_back(e.sequence());
  EXPECT_THAT(seqs, ElementsAre(1, 2, 3));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto tail, store->ReadEvents("job-a", 1, 1));
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0].sequence(), 2);
  VPTQ_ASSERT_OK_AND_ASSIGN(auto b_events, store->ReadEvents("job-b", 0, 100));
  EXPECT_EQ(b_events.size(), 1u);
}

TEST_P(JobStoreTest, ManyTasksKeepIndexOrder) {
  auto store = factory_->Open();
  Mutation m;
  m.put_jobs = {Job("j", 1)};
  for (int i = 299; i >= 0; --i) m.put_tasks.push_back(Task("j", i, v1::TASK_STATE_READY));
  ASSERT_THAT(store->Apply(m), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(auto tasks, store->LoadTasks("j"));
  ASSERT_EQ(tasks.size(), 300u);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(tasks[i].index(), i);
}

TEST_P(JobStoreTest, StagedArtifactsAreInvisibleUntilCommitted) {
  v1::ArtifactMeta meta;
  meta.mutable_ref()->set_artifact_id("job-a/00001/u1/0");
  meta.mutable_ref()->set_name("hessian");
  meta.mutable_ref()->set_size_bytes(10);
  meta.set_chunk_bytes(4);
  meta.set_num_chunks(3);
  {
    auto store = factory_->Open();
    ASSERT_THAT(store->BeginArtifact("job-a/00001/u1/0"), IsOk());
    ASSERT_THAT(store->PutArtifactChunk("job-a/00001/u1/0", 0, "0123"), IsOk());
    ASSERT_THAT(store->PutArtifactChunk("job-a/00001/u1/0", 1, "4567"), IsOk());
    ASSERT_THAT(store->PutArtifactChunk("job-a/00001/u1/0", 2, "89"), IsOk());
    EXPECT_THAT(store->GetArtifact("job-a/00001/u1/0").status(),
                StatusIs(absl::StatusCode::kNotFound));
    VPTQ_ASSERT_OK_AND_ASSIGN(auto staged, store->ListStagedArtifacts());
    EXPECT_THAT(staged, ElementsAre("job-a/00001/u1/0"));

    // A second upload that is abandoned.
    ASSERT_THAT(store->BeginArtifact("job-a/00001/u2/0"), IsOk());
    ASSERT_THAT(store->PutArtifactChunk("job-a/00001/u2/0", 0, "xx"), IsOk());
  }
  {
    auto store = factory_->Open();  // "crash" before commit: both still staged
    VPTQ_ASSERT_OK_AND_ASSIGN(auto staged, store->ListStagedArtifacts());
    EXPECT_EQ(staged.size(), 2u);
    Mutation m;
    m.commit_artifacts = {meta};
    ASSERT_THAT(store->Apply(m), IsOk());
    ASSERT_THAT(store->AbortArtifact("job-a/00001/u2/0", -1), IsOk());
    EXPECT_THAT(store->BeginArtifact("job-a/00001/u1/0"),
                StatusIs(absl::StatusCode::kAlreadyExists));
  }
  auto store = factory_->Open();
  VPTQ_ASSERT_OK_AND_ASSIGN(auto staged, store->ListStagedArtifacts());
  EXPECT_TRUE(staged.empty());
  EXPECT_THAT(store->ReadArtifactChunk("job-a/00001/u2/0", 0).status(),
              StatusIs(absl::StatusCode::kNotFound));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto got, store->GetArtifact("job-a/00001/u1/0"));
  EXPECT_EQ(got.ref().size_bytes(), 10);
  VPTQ_ASSERT_OK_AND_ASSIGN(auto all, ReadArtifactRange(*store, got, 0, 100));
  EXPECT_EQ(all, "0123456789");
  VPTQ_ASSERT_OK_AND_ASSIGN(auto mid, ReadArtifactRange(*store, got, 3, 5));
  EXPECT_EQ(mid, "34567");
  VPTQ_ASSERT_OK_AND_ASSIGN(auto end, ReadArtifactRange(*store, got, 10, 5));
  EXPECT_EQ(end, "");
  EXPECT_THAT(ReadArtifactRange(*store, got, 11, 5).status(),
              StatusIs(absl::StatusCode::kOutOfRange));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto listed, store->ListArtifacts());
  EXPECT_EQ(listed.size(), 1u);

  Mutation del;
  del.delete_artifacts = {got};
  ASSERT_THAT(store->Apply(del), IsOk());
  EXPECT_THAT(store->GetArtifact("job-a/00001/u1/0").status(),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store->ReadArtifactChunk("job-a/00001/u1/0", 0).status(),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(JobStoreTest, ShortChunkIsDataLoss) {
  auto store = factory_->Open();
  ASSERT_THAT(store->BeginArtifact("x"), IsOk());
  ASSERT_THAT(store->PutArtifactChunk("x", 0, "abc"), IsOk());  // meta claims 4 bytes
  v1::ArtifactMeta meta;
  meta.mutable_ref()->set_artifact_id("x");
  meta.mutable_ref()->set_size_bytes(4);
  meta.set_chunk_bytes(4);
  meta.set_num_chunks(1);
  Mutation m;
  m.commit_artifacts = {meta};
  ASSERT_THAT(store->Apply(m), IsOk());
  EXPECT_THAT(ReadArtifactRange(*store, meta, 0, 4).status(),
              StatusIs(absl::StatusCode::kDataLoss));
}

// ArtifactWriter over each store: a small output's only chunk is not staged
// but written by the commit; a large one is staged except its small tail;
// an abandoned upload leaves nothing behind.
TEST_P(JobStoreTest, WriterKeepsTheLastSmallChunkForTheCommit) {
  auto store = factory_->Open();
  const std::string small(100, 's');
  const std::string large(2 * ArtifactWriter::kMaxTailBytes + 10, 'L');
  Mutation m;
  for (const auto& [id, data, staged_chunks] :
       {std::tuple{"job-a/00001/u/0", small, 0}, std::tuple{"job-a/00001/u/1", large, 2}}) {
    ArtifactWriter w(store.get(), id, ArtifactWriter::kMaxTailBytes);
    ASSERT_THAT(w.Begin(), IsOk());
    ASSERT_THAT(w.Write(data), IsOk());
    VPTQ_ASSERT_OK_AND_ASSIGN(v1::ArtifactMeta meta, w.Finish(Sha256Hex(data), data.size()));
    EXPECT_EQ(meta.num_chunks(), staged_chunks + 1);
    std::optional<ArtifactChunk> tail = w.TakeTail();
    ASSERT_TRUE(tail.has_value()) << id;
    EXPECT_EQ(tail->index, staged_chunks);
    for (int i = 0; i < staged_chunks; ++i) EXPECT_THAT(store->ReadArtifactChunk(id, i), IsOk());
    EXPECT_FALSE(store->ReadArtifactChunk(id, staged_chunks).ok());  // not yet written
    m.commit_artifacts.push_back(meta);
    m.put_chunks.push_back(*std::move(tail));
  }
  VPTQ_ASSERT_OK_AND_ASSIGN(auto staged, store->ListStagedArtifacts());
  EXPECT_THAT(staged, ElementsAre("job-a/00001/u/1"));  // the small one never was
  ASSERT_THAT(store->Apply(m), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(staged, store->ListStagedArtifacts());
  EXPECT_TRUE(staged.empty());
  VPTQ_ASSERT_OK_AND_ASSIGN(auto meta0, store->GetArtifact("job-a/00001/u/0"));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto got0, ReadArtifactRange(*store, meta0, 0, 1 << 20));
  EXPECT_EQ(got0, small);
  VPTQ_ASSERT_OK_AND_ASSIGN(auto meta1, store->GetArtifact("job-a/00001/u/1"));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto got1, ReadArtifactRange(*store, meta1, 0, 1 << 20));
  EXPECT_TRUE(got1 == large);

  // Abandoned after Finish: the staged chunks go, the tail was never written.
  ArtifactWriter w(store.get(), "job-a/00002/u/0", ArtifactWriter::kMaxTailBytes);
  ASSERT_THAT(w.Begin(), IsOk());
  ASSERT_THAT(w.Write(large), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(v1::ArtifactMeta meta, w.Finish(Sha256Hex(large), large.size()));
  w.Abort();
  VPTQ_ASSERT_OK_AND_ASSIGN(staged, store->ListStagedArtifacts());
  EXPECT_TRUE(staged.empty());
  for (int i = 0; i < meta.num_chunks(); ++i) {
    EXPECT_FALSE(store->ReadArtifactChunk("job-a/00002/u/0", i).ok()) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, JobStoreTest, ::testing::Values("memory", "rocksdb"),
                         [](const auto& info) { return info.param; });

TEST(RocksJobStoreTest, OpenFailsCleanlyOnAFile) {
  std::string dir = MakeTempDir("rocks_bad");
  std::string file = dir + "/not_a_dir";
  ASSERT_THAT(WriteTestFile(file, "x"), IsOk());
  EXPECT_FALSE(RocksJobStore::Open(file).ok());
  std::filesystem::remove_all(dir);
}

int64_t DirBytes(const std::string& dir) {
  int64_t total = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += static_cast<int64_t>(e.file_size());
  }
  return total;
}

// Uploads `chunks` chunks of `chunk_bytes` pseudo-random bytes through an
// ArtifactWriter and commits them; `content` (optional) receives the bytes.
v1::ArtifactMeta PutArtifact(JobStore& store, const std::string& id, int chunks,
                             int chunk_bytes, std::string* content = nullptr) {
  std::string bytes(static_cast<size_t>(chunks) * chunk_bytes, '\0');
  uint32_t x = static_cast<uint32_t>(std::hash<std::string>{}(id));
  for (char& b : bytes) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<char>(x >> 24);
  }
  ArtifactWriter w(&store, id, chunk_bytes);
  EXPECT_THAT(w.Begin(), IsOk());
  EXPECT_THAT(w.Write(bytes), IsOk());
  absl::StatusOr<v1::ArtifactMeta> meta = w.Finish(Sha256Hex(bytes), bytes.size());
  EXPECT_THAT(meta, IsOk());
  Mutation m;
  m.commit_artifacts = {*meta};
  if (auto tail = w.TakeTail()) m.put_chunks.push_back(*std::move(tail));
  EXPECT_THAT(store.Apply(m), IsOk());
  if (content != nullptr) *content = std::move(bytes);
  return *meta;
}

TEST(RocksJobStoreTest, ReclaimSpaceGivesDeletedArtifactsBackToTheDisk) {
  const std::string dir = MakeTempDir("rocks_reclaim");
  RocksStoreOptions options;
  options.allow_sync = false;
  constexpr int kChunk = 1 << 20;
  std::string kept;
  {
    VPTQ_ASSERT_OK_AND_ASSIGN(auto store, RocksJobStore::Open(dir + "/db", options));
    std::vector<v1::ArtifactMeta> dead;
    for (int i = 0; i < 6; ++i) {
      dead.push_back(PutArtifact(*store, absl::StrCat("job/0000", i, "/h/0"), 8, kChunk));
    }
    PutArtifact(*store, "job/00009/out/0", 2, kChunk, &kept);
    Mutation del;
    del.delete_artifacts = dead;
    ASSERT_THAT(store->Apply(del), IsOk());
    // Deleting only marks the data dead: the 48 MiB are still on disk.
    const int64_t before = DirBytes(dir);
    EXPECT_GE(before, 48 * kChunk);

    ASSERT_THAT(store->ReclaimSpace(), IsOk());
    const int64_t after = DirBytes(dir);
    EXPECT_LT(after, 2 * kChunk + 4 * kChunk) << "before " << before;
    VPTQ_ASSERT_OK_AND_ASSIGN(auto got, store->GetArtifact("job/00009/out/0"));
    VPTQ_ASSERT_OK_AND_ASSIGN(auto bytes, ReadArtifactRange(*store, got, 0, 2 * kChunk));
    EXPECT_TRUE(bytes == kept);
    EXPECT_THAT(store->GetArtifact("job/00000/h/0").status(),
                StatusIs(absl::StatusCode::kNotFound));
  }
  // The compacted store reopens with the live artifact intact.
  VPTQ_ASSERT_OK_AND_ASSIGN(auto store, RocksJobStore::Open(dir + "/db", options));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto got, store->GetArtifact("job/00009/out/0"));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto bytes, ReadArtifactRange(*store, got, 0, 2 * kChunk));
  EXPECT_TRUE(bytes == kept);
  VPTQ_ASSERT_OK_AND_ASSIGN(auto listed, store->ListArtifacts());
  EXPECT_EQ(listed.size(), 1u);
  std::filesystem::remove_all(dir);
}

// A file system whose disk fills up or breaks on demand: appends fail with
// ENOSPC's status while `full` is set, with a plain I/O error (EIO) while
// `broken` is.
class FillableFs : public rocksdb::FileSystemWrapper {
 public:
  explicit FillableFs(std::shared_ptr<rocksdb::FileSystem> base)
      : rocksdb::FileSystemWrapper(std::move(base)) {}
  const char* Name() const override { return "FillableFs"; }
  std::atomic<bool> full{false};
  std::atomic<bool> broken{false};

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewWritableFile(f, o, r, dbg);
    if (s.ok()) *r = std::make_unique<File>(std::move(*r), this);
    return s;
  }

 private:
  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> f, const FillableFs* fs)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(f)), fs_(fs) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
      if (rocksdb::IOStatus e = Fault(); !e.ok()) return e;
      return target()->Append(data, o, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& v,
                             rocksdb::IODebugContext* dbg) override {
      if (rocksdb::IOStatus e = Fault(); !e.ok()) return e;
      return target()->Append(data, o, v, dbg);
    }

   private:
    rocksdb::IOStatus Fault() const {
      if (fs_->full.load()) return rocksdb::IOStatus::NoSpace("No space left on device");
      if (fs_->broken.load()) return rocksdb::IOStatus::IOError("Input/output error");
      return rocksdb::IOStatus::OK();
    }
    const FillableFs* fs_;
  };
};

// A RocksDB store in a fresh directory on a FillableFs.
class FaultyDiskTest : public ::testing::Test {
 protected:
  FaultyDiskTest() : dir_(MakeTempDir("rocks_faulty")) {
    options_.allow_sync = false;
    options_.env = env_.get();
  }
  ~FaultyDiskTest() override { std::filesystem::remove_all(dir_); }
  absl::StatusOr<std::unique_ptr<RocksJobStore>> Open() {
    return RocksJobStore::Open(dir_ + "/db", options_);
  }

  const std::string dir_;
  const std::shared_ptr<FillableFs> fs_ =
      std::make_shared<FillableFs>(rocksdb::FileSystem::Default());
  const std::unique_ptr<rocksdb::Env> env_ = rocksdb::NewCompositeEnv(fs_);
  RocksStoreOptions options_;
};

TEST_F(FaultyDiskTest, AFullDiskFailsWritesUntilThereIsRoomAgain) {
  std::string kept;
  {
    VPTQ_ASSERT_OK_AND_ASSIGN(auto store, Open());
    PutArtifact(*store, "job/00001/h/0", 2, 1 << 16, &kept);

    fs_->full = true;
    ASSERT_THAT(store->BeginArtifact("job/00002/h/0"), IsOk());
    EXPECT_THAT(store->PutArtifactChunk("job/00002/h/0", 0, std::string(1 << 16, 'x')),
                StatusIs(absl::StatusCode::kUnavailable, ::testing::HasSubstr("disk full")));
    Mutation m;
    m.put_jobs = {Job("j", 1)};
    EXPECT_THAT(store->Apply(m), StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_THAT(store->Apply(m), StatusIs(absl::StatusCode::kUnavailable));  // still full
    EXPECT_THAT(store->CheckWritable(), StatusIs(absl::StatusCode::kUnavailable));

    // Space freed: writes work again without a restart (RocksDB's own
    // recovery polls the free space and resumes within seconds).
    fs_->full = false;
    const auto start = std::chrono::steady_clock::now();
    absl::Status s = store->Apply(m);
    while (!s.ok() && std::chrono::steady_clock::now() - start < std::chrono::seconds(60)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      s = store->Apply(m);
    }
    EXPECT_THAT(s, IsOk());
    EXPECT_THAT(store->CheckWritable(), IsOk());
    VPTQ_ASSERT_OK_AND_ASSIGN(auto jobs, store->LoadJobs());
    EXPECT_EQ(jobs.size(), 1u);
  }
  // What was written before and after the full disk survives a reopen; the
  // upload that hit it was never committed.
  VPTQ_ASSERT_OK_AND_ASSIGN(auto store, Open());
  VPTQ_ASSERT_OK_AND_ASSIGN(auto jobs, store->LoadJobs());
  EXPECT_EQ(jobs.size(), 1u);
  VPTQ_ASSERT_OK_AND_ASSIGN(auto got, store->GetArtifact("job/00001/h/0"));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto bytes, ReadArtifactRange(*store, got, 0, 1 << 17));
  EXPECT_TRUE(bytes == kept);
  EXPECT_THAT(store->GetArtifact("job/00002/h/0").status(), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(FaultyDiskTest, AnIoErrorLeavesTheStoreUnwritableUntilReopened) {
  Mutation m;
  m.put_jobs = {Job("j", 1)};
  {
    VPTQ_ASSERT_OK_AND_ASSIGN(auto store, Open());
    EXPECT_THAT(store->CheckWritable(), IsOk());
    fs_->broken = true;
    EXPECT_THAT(store->Apply(m), StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_THAT(store->CheckWritable(), StatusIs(absl::StatusCode::kUnavailable));
    fs_->broken = false;
    // Unlike a full disk, RocksDB does not resume after this by itself.
    absl::SleepFor(absl::Seconds(1));
    EXPECT_THAT(store->CheckWritable(), StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_THAT(store->Apply(m), StatusIs(absl::StatusCode::kUnavailable));
  }
  // Opened again (a coordinator restart) it takes writes; the failed ones
  // are not there.
  VPTQ_ASSERT_OK_AND_ASSIGN(auto store, Open());
  VPTQ_ASSERT_OK_AND_ASSIGN(auto before, store->LoadJobs());
  EXPECT_TRUE(before.empty());
  EXPECT_THAT(store->CheckWritable(), IsOk());
  EXPECT_THAT(store->Apply(m), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(auto jobs, store->LoadJobs());
  EXPECT_EQ(jobs.size(), 1u);
}

TEST(MemoryJobStoreTest, InjectedFailureChangesNothing) {
  MemoryJobStore store;
  store.FailNextApply(absl::UnavailableError("disk on fire"));
  Mutation m;
  m.put_jobs = {Job("j", 1)};
  EXPECT_THAT(store.Apply(m), StatusIs(absl::StatusCode::kUnavailable));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto jobs, store.LoadJobs());
  EXPECT_TRUE(jobs.empty());
  EXPECT_THAT(store.Apply(m), IsOk());
}

}  // namespace
}  // namespace vptq::coordinator
