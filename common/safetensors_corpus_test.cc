// Feeds every file of the fuzz corpus (tests/fuzz/corpus) through the parser
// in the normal build, so inputs the fuzzer once found keep being checked.
// Naming: ok_* must parse and survive a write/read round trip; bad_* must be
// INVALID_ARGUMENT naming the file; anything else (fuzzer finds) may go
// either way but never crash or return another code.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/safetensors.h"
#include "common/status.h"
#include "common/status_matchers.h"

namespace vptq {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

std::string CorpusDir() {
  const char* src = std::getenv("VPTQ_SOURCE_DIR");
  return std::string(src ? src : ".") + "/tests/fuzz/corpus";
}

void ExpectRoundTrip(const SafetensorsFile& file) {
  SafetensorsWriter w;
  for (const TensorView& t : file.tensors()) {
    ASSERT_THAT(w.Add(t.name, t.dtype, t.shape, t.data), IsOk()) << t.name;
  }
  for (const auto& [k, v] : file.metadata()) w.SetMetadata(k, v);
  const std::string raw = w.Serialize();
  auto again = SafetensorsFile::FromBuffer(
      {reinterpret_cast<const uint8_t*>(raw.data()), raw.size()}, "rewritten");
  ASSERT_THAT(again, IsOk());
  ASSERT_EQ((*again)->tensors().size(), file.tensors().size());
  for (const TensorView& t : file.tensors()) {
    const TensorView* u = (*again)->Find(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    EXPECT_EQ(u->dtype, t.dtype);
    EXPECT_EQ(u->shape, t.shape);
    EXPECT_TRUE(std::equal(u->data.begin(), u->data.end(), t.data.begin(),
                           t.data.end()))
        << t.name;
  }
  EXPECT_EQ((*again)->metadata(), file.metadata());
}

TEST(SafetensorsCorpusTest, EveryCorpusFileBehaves) {
  int ok_files = 0, bad_files = 0, other_files = 0;
  for (const auto& entry : fs::directory_iterator(CorpusDir())) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    SCOPED_TRACE(name);
    VPTQ_ASSERT_OK_AND_ASSIGN(std::string raw, ReadFile(entry.path().string()));
    // An exact-size heap copy, so a read past the end is caught by ASan
    // builds and is never masked by bytes that happen to follow.
    std::vector<uint8_t> bytes(raw.begin(), raw.end());
    auto parsed = SafetensorsFile::FromBuffer(bytes, name);
    if (name.rfind("ok_", 0) == 0) {
      ++ok_files;
      ASSERT_THAT(parsed, IsOk());
      ExpectRoundTrip(**parsed);
    } else if (name.rfind("bad_", 0) == 0) {
      ++bad_files;
      EXPECT_THAT(parsed, StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr(name + ": ")));
    } else {
      ++other_files;
      if (parsed.ok()) {
        ExpectRoundTrip(**parsed);
      } else {
        EXPECT_THAT(parsed, StatusIs(absl::StatusCode::kInvalidArgument));
      }
    }
  }
  // Guards against a wrong corpus path silently testing nothing.
  EXPECT_GE(ok_files, 5);
  EXPECT_GE(bad_files, 15);
  RecordProperty("corpus_files", ok_files + bad_files + other_files);
}

}  // namespace
}  // namespace vptq
