#include "common/file_util.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/status_matchers.h"

namespace vptq {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

class FileUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "vptq_fu_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string Path(std::string_view name) const {
    return dir_ + "/" + std::string(name);
  }
  std::vector<std::string> Entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::string dir_;
};

TEST_F(FileUtilTest, WriteThenReadAndOverwrite) {
  const std::string path = Path("a.txt");
  ASSERT_THAT(WriteFileAtomic(path, "first"), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string got, ReadFile(path));
  EXPECT_EQ(got, "first");
  const std::string binary("x\0y\xff", 4);
  ASSERT_THAT(WriteFileAtomic(path, binary), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(got, ReadFile(path));
  EXPECT_EQ(got, binary);
  ASSERT_THAT(WriteFileAtomic(path, ""), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(got, ReadFile(path));
  EXPECT_EQ(got, "");
  EXPECT_THAT(Entries(), ElementsAre("a.txt"));  // no temp files left
}

TEST_F(FileUtilTest, PublishedFileHasUmaskPermissions) {
  const mode_t mask = ::umask(022);
  ::umask(mask);
  const std::string path = Path("perm");
  ASSERT_THAT(WriteFileAtomic(path, "x"), IsOk());
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0666 & ~mask);
}

TEST_F(FileUtilTest, ReadFileErrorsNameThePath) {
  EXPECT_THAT(ReadFile(Path("missing")),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("open"), HasSubstr(Path("missing")))));
  EXPECT_THAT(ReadFile(dir_), StatusIs(absl::StatusCode::kFailedPrecondition,
                                       HasSubstr(dir_)));
}

TEST_F(FileUtilTest, WriteIntoMissingDirectoryNamesPathAndLeavesNothing) {
  const std::string path = Path("nope/a.txt");
  EXPECT_THAT(WriteFileAtomic(path, "x"),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("writing '" + path + "'"))));
  EXPECT_THAT(Entries(), IsEmpty());
}

TEST_F(FileUtilTest, FailedRenameRemovesTempFile) {
  const std::string path = Path("target");
  ASSERT_TRUE(fs::create_directory(path));
  fs::create_directory(path + "/child");  // non-empty: rename must fail
  const absl::Status s = WriteFileAtomic(path, "content");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()),
              AllOf(HasSubstr("writing '" + path + "'"), HasSubstr("rename")));
  EXPECT_THAT(Entries(), ElementsAre("target"));
}

TEST_F(FileUtilTest, WriteFailureMidStreamKeepsOldFile) {
  const std::string path = Path("model.bin");
  ASSERT_THAT(WriteFileAtomic(path, "old"), IsOk());
  struct rlimit saved;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  absl::Status s;
  {
    auto writer = AtomicFileWriter::Create(path);
    ASSERT_THAT(writer, IsOk());
    s = writer->Append(std::string(3000, 'a'));
    EXPECT_THAT(s, IsOk());
    s = writer->Append(std::string(3000, 'b'));  // crosses the limit
    EXPECT_FALSE(fs::exists(writer->temp_path()));  // cleaned up at once
    // The writer is spent: later calls repeat the error.
    EXPECT_EQ(writer->Append("c"), s);
    EXPECT_EQ(writer->Commit(), s);
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()),
              AllOf(HasSubstr("writing '" + path + "'"), HasSubstr("write")));
  EXPECT_THAT(Entries(), ElementsAre("model.bin"));
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string still, ReadFile(path));
  EXPECT_EQ(still, "old");
}

TEST_F(FileUtilTest, WriterDroppedWithoutCommitLeavesNothing) {
  const std::string path = Path("dropped");
  std::string temp;
  {
    VPTQ_ASSERT_OK_AND_ASSIGN(AtomicFileWriter w, AtomicFileWriter::Create(path));
    temp = w.temp_path();
    EXPECT_THAT(temp, StartsWith(path + ".tmp."));
    ASSERT_THAT(w.Append("partial"), IsOk());
    EXPECT_TRUE(fs::exists(temp));
    EXPECT_FALSE(fs::exists(path));  // nothing visible before Commit
  }
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_THAT(Entries(), IsEmpty());
}

TEST_F(FileUtilTest, StreamedWriteWithMovedWriter) {
  const std::string path = Path("streamed");
  VPTQ_ASSERT_OK_AND_ASSIGN(AtomicFileWriter a, AtomicFileWriter::Create(path));
  ASSERT_THAT(a.Append("he"), IsOk());
  AtomicFileWriter b = std::move(a);
  ASSERT_THAT(b.Append("llo"), IsOk());
  ASSERT_THAT(b.Commit(), IsOk());
  EXPECT_THAT(b.Commit(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(b.Append("x"), StatusIs(absl::StatusCode::kFailedPrecondition));
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string got, ReadFile(path));
  EXPECT_EQ(got, "hello");
  EXPECT_THAT(Entries(), ElementsAre("streamed"));
}

TEST_F(FileUtilTest, TempNamesAreUnique) {
  VPTQ_ASSERT_OK_AND_ASSIGN(AtomicFileWriter a, AtomicFileWriter::Create(Path("f")));
  VPTQ_ASSERT_OK_AND_ASSIGN(AtomicFileWriter b, AtomicFileWriter::Create(Path("f")));
  EXPECT_NE(a.temp_path(), b.temp_path());
}

TEST_F(FileUtilTest, SyncDirAndDirName) {
  EXPECT_THAT(SyncDir(dir_), IsOk());
  EXPECT_THAT(SyncDir(Path("missing")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(Path("missing"))));
  EXPECT_EQ(DirName("/a/b/c.txt"), "/a/b");
  EXPECT_EQ(DirName("c.txt"), ".");
  EXPECT_EQ(DirName("/c.txt"), "/");
  EXPECT_EQ(DirName("rel/c.txt"), "rel");
}

TEST(FileUtilStandaloneTest, EmptyPathIsInvalid) {
  EXPECT_THAT(WriteFileAtomic("", "x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace vptq
