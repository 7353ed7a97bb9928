#include "worker/pipeline/checkpoint_dir.h"

#include <sys/stat.h>

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/file_util.h"
#include "common/status.h"
#include "common/status_matchers.h"
#include "worker/model/model_test_util.h"

namespace vptq::pipeline {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

std::vector<std::string> Listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

ino_t Inode(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_ino;
}

class CheckpointDirTest : public ::testing::Test {
 protected:
  model::testing::ScratchDir scratch_{"ckptdir"};
  BlobMap files_{{"config.json", "{}\n"}, {"model.safetensors", std::string(100, 'x')}};
};

TEST_F(CheckpointDirTest, WritesFilesAndMarkerAndReadsThemBack) {
  const std::string out = scratch_.Sub("a/b/out");  // parents created
  ASSERT_THAT(WriteCheckpointDir(files_, out), IsOk());
  EXPECT_EQ(Listing(out), (std::vector<std::string>{"config.json", "model.safetensors",
                                                    kCheckpointMarker}));
  EXPECT_EQ(Listing(scratch_.Sub("a/b")), std::vector<std::string>{"out"});  // no temp left
  VPTQ_ASSERT_OK_AND_ASSIGN(BlobMap back, ReadCheckpointDir(out));
  EXPECT_EQ(back, files_);
}

TEST_F(CheckpointDirTest, SameContentIsANoOpAndOtherContentReplacesTheWhole) {
  const std::string out = scratch_.Sub("out");
  ASSERT_THAT(WriteCheckpointDir(files_, out), IsOk());
  const ino_t before = Inode(out + "/config.json");
  ASSERT_THAT(WriteCheckpointDir(files_, out), IsOk());
  EXPECT_EQ(Inode(out + "/config.json"), before);  // nothing rewritten

  BlobMap sharded{{"config.json", "{\"x\": 1}\n"}, {"model-00001-of-00001.safetensors", "y"}};
  ASSERT_THAT(WriteCheckpointDir(sharded, out), IsOk());
  EXPECT_EQ(Listing(out), (std::vector<std::string>{"config.json",
                                                    "model-00001-of-00001.safetensors",
                                                    kCheckpointMarker}));
  VPTQ_ASSERT_OK_AND_ASSIGN(BlobMap back, ReadCheckpointDir(out));
  EXPECT_EQ(back, sharded);
  EXPECT_EQ(Listing(scratch_.path()), std::vector<std::string>{"out"});
}

TEST_F(CheckpointDirTest, RefusesDirectoriesThatAreNotOurs) {
  const std::string out = scratch_.Sub("theirs");
  fs::create_directories(out);
  ASSERT_THAT(WriteFileAtomic(out + "/config.json", "their model"), IsOk());
  EXPECT_THAT(WriteCheckpointDir(files_, out),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(kCheckpointMarker)));
  EXPECT_EQ(Listing(out), std::vector<std::string>{"config.json"});
  EXPECT_EQ(*ReadFile(out + "/config.json"), "their model");
  EXPECT_EQ(Listing(scratch_.path()), std::vector<std::string>{"theirs"});

  ASSERT_THAT(WriteFileAtomic(scratch_.Sub("file"), "x"), IsOk());
  EXPECT_THAT(WriteCheckpointDir(files_, scratch_.Sub("file")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a directory")));

  const std::string empty = scratch_.Sub("empty");
  fs::create_directories(empty);
  EXPECT_THAT(WriteCheckpointDir(files_, empty), IsOk());
}

TEST_F(CheckpointDirTest, BadNamesAndTamperedFiles) {
  for (const std::string bad : {"../x", "a/b", "", ".", kCheckpointMarker}) {
    EXPECT_THAT(WriteCheckpointDir({{bad, "x"}}, scratch_.Sub("o")),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
  EXPECT_FALSE(fs::exists(scratch_.Sub("o")));
  const std::string out = scratch_.Sub("out");
  ASSERT_THAT(WriteCheckpointDir(files_, out), IsOk());
  ASSERT_THAT(WriteFileAtomic(out + "/model.safetensors", std::string(100, 'z')), IsOk());
  EXPECT_THAT(ReadCheckpointDir(out), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(ReadCheckpointDir(scratch_.path()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace vptq::pipeline
