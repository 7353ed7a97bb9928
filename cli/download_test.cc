// download: the HF directory written atomically and verified, resuming from
// a partial file and a broken stream, SHA-256 mismatches caught, and
// directories that are not ours left alone.
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/cli_test_util.h"
#include "cli/download.h"
#include "cli/exit_codes.h"
#include "common/file_util.h"
#include "common/sha256.h"

namespace vptq::cli::testing {
namespace {

using ::testing::HasSubstr;
using ::vptq::testing::StatusIs;

// Wraps a source: breaks the first stream of each of the next `breaks`
// artifacts after `break_after` bytes, or flips a byte of every chunk
// (`corrupt`).
class FlakySource : public JobSource {
 public:
  explicit FlakySource(JobSource* inner) : inner_(inner) {}
  int breaks = 0;
  int64_t break_after = 0;
  bool corrupt = false;
  std::vector<int64_t> offsets;  // of every DownloadArtifact call

  absl::Status WatchJob(const std::string& j, int64_t a, absl::Time d,
                        const std::function<bool(const v1::JobEvent&)>& f) override {
    return inner_->WatchJob(j, a, d, f);
  }
  absl::StatusOr<v1::GetJobResponse> GetJob(const std::string& j, bool t) override {
    return inner_->GetJob(j, t);
  }
  absl::Status DownloadArtifact(
      const std::string& job, const std::string& artifact, int64_t offset, absl::Time deadline,
      const std::function<bool(const v1::ArtifactStreamResponse&)>& on_message) override {
    offsets.push_back(offset);
    int64_t sent = 0;
    bool broke = false;
    const bool may_break = breaks > 0 && broken_.insert(artifact).second;
    absl::Status s = inner_->DownloadArtifact(
        job, artifact, offset, deadline, [&](const v1::ArtifactStreamResponse& m) {
          if (!m.has_chunk()) return on_message(m);
          v1::ArtifactStreamResponse copy = m;
          if (may_break && sent + static_cast<int64_t>(m.chunk().data().size()) > break_after) {
            copy.mutable_chunk()->mutable_data()->resize(break_after - sent);
            broke = true;
          }
          if (corrupt && !copy.chunk().data().empty()) (*copy.mutable_chunk()->mutable_data())[0] ^= 1;
          sent += static_cast<int64_t>(copy.chunk().data().size());
          if (!copy.chunk().data().empty() && !on_message(copy)) return false;
          return !broke;
        });
    if (broke) {
      --breaks;
      return absl::UnavailableError("connection reset by peer");
    }
    return s;
  }

 private:
  JobSource* inner_;
  std::set<std::string> broken_;
};

class DownloadTest : public CliServerTest {
 protected:
  void SetUp() override {
    CliServerTest::SetUp();
    job_id_ = Submit("dl");
    CompleteAll(kBytes);
    job_ = GetJob(job_id_);
    ASSERT_EQ(job_.phase(), v1::JOB_PHASE_SUCCEEDED);
    ASSERT_EQ(job_.outputs_size(), 2);
    local_ = MakeLocalJobSource(&server_->coordinator());
  }

  // The bytes of an output as the store holds them.
  std::string Stored(const std::string& name) {
    for (const auto& f : job_.outputs()) {
      if (f.path() != name) continue;
      std::string data;
      v1::DownloadArtifactRequest req;
      req.set_job_id(job_id_);
      req.set_artifact_id(f.artifact().artifact_id());
      EXPECT_THAT(server_->coordinator().DownloadArtifact(req,
                                                          [&](const v1::ArtifactStreamResponse& m) {
                                                            if (m.has_chunk()) data += m.chunk().data();
                                                            return true;
                                                          }),
                  IsOk());
      return data;
    }
    return "";
  }

  void ExpectCheckpoint(const std::string& dir) {
    for (const char* name : {"config.json", "model.safetensors"}) {
      auto got = ReadFile(dir + "/" + name);
      ASSERT_THAT(got, IsOk());
      EXPECT_TRUE(*got == Stored(name)) << name;
    }
    EXPECT_TRUE(fs::exists(dir + "/" + kCheckpointMarkerName));
    EXPECT_FALSE(fs::exists(dir + kStagingSuffix));
  }

  // 2.5 MiB: three 1 MiB stream chunks per file.
  static constexpr int64_t kBytes = (5 << 20) / 2;
  std::string job_id_;
  v1::Job job_;
  std::unique_ptr<JobSource> local_;
};

TEST_F(DownloadTest, WritesTheCheckpointOnceAndThenIsANoOp) {
  const std::string out = base_ + "/out/tiny";
  Output r = Run({"download", job_id_, "--output", out});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("downloaded 2 files"));
  ExpectCheckpoint(out);
  // The marker lists every file with its size and hash (the pipeline's format).
  auto marker = nlohmann::json::parse(*ReadFile(out + "/" + kCheckpointMarkerName));
  EXPECT_EQ(marker["format"], "vptq-packed-checkpoint");
  EXPECT_EQ(marker["files"]["model.safetensors"]["sha256"], Sha256Hex(Stored("model.safetensors")));

  const auto before = fs::last_write_time(out + "/model.safetensors");
  r = Run({"download", job_id_, "--output", out});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("already holds this checkpoint"));
  EXPECT_EQ(fs::last_write_time(out + "/model.safetensors"), before);
}

TEST_F(DownloadTest, ResumesABrokenStreamFromItsOffset) {
  FlakySource flaky(local_.get());
  flaky.breaks = 2;
  flaky.break_after = 1 << 20;
  DownloadOptions o;
  o.initial_backoff = absl::Milliseconds(1);
  auto r = DownloadCheckpoint(flaky, job_, base_ + "/out", o);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->resumes, 2);
  EXPECT_EQ(r->bytes_fetched, 2 * kBytes);  // nothing fetched twice
  EXPECT_EQ(r->checksum_mismatches, 0);
  EXPECT_THAT(flaky.offsets, ::testing::ElementsAre(0, 1 << 20, 0, 1 << 20));
  ExpectCheckpoint(base_ + "/out");
}

TEST_F(DownloadTest, ResumesFromATruncatedPartialFileOfAnEarlierRun) {
  const std::string out = base_ + "/out";
  // An earlier run that died mid-file: the stream breaks and it gives up.
  FlakySource flaky(local_.get());
  flaky.breaks = 1;
  flaky.break_after = 1 << 20;
  DownloadOptions once;
  once.max_attempts = 1;
  EXPECT_THAT(DownloadCheckpoint(flaky, job_, out, once), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_FALSE(fs::exists(out));  // nothing published
  const std::string part = out + kStagingSuffix + "/config.json.part";
  ASSERT_EQ(fs::file_size(part), uint64_t{1} << 20);
  fs::resize_file(part, 300000);  // and the partial file lost its tail

  FlakySource counting(local_.get());
  auto r = DownloadCheckpoint(counting, job_, out);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->bytes_reused, 300000);
  EXPECT_EQ(r->bytes_fetched, 2 * kBytes - 300000);
  EXPECT_EQ(counting.offsets.front(), 300000);
  ExpectCheckpoint(out);
}

TEST_F(DownloadTest, CatchesShaMismatches) {
  const std::string out = base_ + "/out";
  // A partial file whose bytes are wrong: caught by the whole-file hash,
  // fetched again from the start.
  const std::string staging = out + kStagingSuffix;
  fs::create_directories(staging);
  std::string wrong = Stored("config.json").substr(0, 5000);
  wrong[10] ^= 0x40;
  ASSERT_THAT(WriteFileAtomic(staging + "/config.json.part", wrong), IsOk());
  ASSERT_THAT(WriteFileAtomic(staging + "/" + kStagingMarkerName,
                              R"({"format": "vptq-download-staging", "files": {}})"),
              IsOk());
  std::vector<std::string> notes;
  DownloadOptions o;
  o.on_note = [&](const std::string& n) { notes.push_back(n); };
  auto r = DownloadCheckpoint(*local_, job_, out, o);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->checksum_mismatches, 1);
  ASSERT_FALSE(notes.empty());
  EXPECT_THAT(notes.back(), HasSubstr("SHA-256 mismatch"));
  ExpectCheckpoint(out);

  // A source that corrupts every transfer: DATA_LOSS, nothing published.
  FlakySource corrupting(local_.get());
  corrupting.corrupt = true;
  const std::string out2 = base_ + "/out2";
  auto bad = DownloadCheckpoint(corrupting, job_, out2);
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(bad.status().message(), HasSubstr("config.json"));
  EXPECT_FALSE(fs::exists(out2));
  EXPECT_EQ(ExitCodeForStatus(bad.status()), kExitFailed);
}

TEST_F(DownloadTest, LeavesDirectoriesThatAreNotOursAlone) {
  const std::string out = base_ + "/mine";
  fs::create_directories(out);
  ASSERT_THAT(WriteFileAtomic(out + "/notes.txt", "keep me"), IsOk());
  Output r = Run({"download", job_id_, "--output", out});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("does not hold a checkpoint written by vptq"));
  EXPECT_EQ(*ReadFile(out + "/notes.txt"), "keep me");
  EXPECT_FALSE(fs::exists(out + "/config.json"));
  EXPECT_FALSE(fs::exists(out + kStagingSuffix));

  ASSERT_THAT(WriteFileAtomic(base_ + "/file", "x"), IsOk());
  EXPECT_EQ(Run({"download", job_id_, "--output", base_ + "/file"}).code, kExitUsage);

  // An empty directory is fine; so is replacing a checkpoint of ours.
  fs::create_directories(base_ + "/empty");
  EXPECT_EQ(Run({"download", job_id_, "--output", base_ + "/empty"}).code, kExitOk);
  ExpectCheckpoint(base_ + "/empty");
  ASSERT_THAT(WriteFileAtomic(base_ + "/empty/" + kCheckpointMarkerName,
                              R"({"format": "vptq-packed-checkpoint", "version": 1, "files": {}})"),
              IsOk());
  EXPECT_EQ(Run({"download", job_id_, "--output", base_ + "/empty"}).code, kExitOk);
  ExpectCheckpoint(base_ + "/empty");

  // A job without a checkpoint yet.
  const std::string pending = Submit("pending");
  r = Run({"download", pending, "--output", base_ + "/p"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("has no checkpoint yet"));
}

}  // namespace
}  // namespace vptq::cli::testing
