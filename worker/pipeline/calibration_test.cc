#include "worker/pipeline/calibration.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/file_util.h"
#include "worker/pipeline/pipeline_test_util.h"

namespace vptq::pipeline {
namespace {

using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;
using testing::StreamIds;

class CalibrationTest : public testing::SyntheticPipelineTest {};

// Whether `needle` occurs as a contiguous run in `hay`.
bool Contains(const std::vector<int32_t>& hay, absl::Span<const int32_t> needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

TEST_F(CalibrationTest, DrawsDistinctWindowsOfTheStreamDeterministically) {
  const std::vector<int32_t> stream = StreamIds(4000, 64, 3);
  VPTQ_ASSERT_OK_AND_ASSIGN(TokenSequences a, BuildTokenSequences(model_dir(), Calibration()));
  VPTQ_ASSERT_OK_AND_ASSIGN(TokenSequences b, BuildTokenSequences(model_dir(), Calibration()));
  ASSERT_EQ(a.count(), 12);
  EXPECT_EQ(a.sequence_length, 32);
  EXPECT_EQ(a.ids, b.ids);  // same seed, same draw
  EXPECT_EQ(a.stream_tokens, 4000);
  std::set<std::vector<int32_t>> rows;
  for (int64_t i = 0; i < a.count(); ++i) {
    EXPECT_TRUE(Contains(stream, a.Row(i))) << "row " << i;  // no BOS: config has none
    rows.insert(std::vector<int32_t>(a.Row(i).begin(), a.Row(i).end()));
  }
  EXPECT_EQ(rows.size(), 12u);

  TextSetOptions other = Calibration();
  other.seed = 2;
  VPTQ_ASSERT_OK_AND_ASSIGN(TokenSequences c, BuildTokenSequences(model_dir(), other));
  EXPECT_NE(a.ids, c.ids);
}

TEST_F(CalibrationTest, PrependsBosWhenTheModelHasOne) {
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string text, ReadFile(model_dir() + "/config.json"));
  nlohmann::json config = nlohmann::json::parse(text);
  config["bos_token_id"] = 5;
  ASSERT_THAT(WriteFileAtomic(model_dir() + "/config.json", config.dump()), IsOk());
  const std::vector<int32_t> stream = StreamIds(4000, 64, 3);
  VPTQ_ASSERT_OK_AND_ASSIGN(TokenSequences s, BuildTokenSequences(model_dir(), Calibration()));
  ASSERT_EQ(s.count(), 12);
  for (int64_t i = 0; i < s.count(); ++i) {
    EXPECT_EQ(s.Row(i)[0], 5);
    EXPECT_TRUE(Contains(stream, s.Row(i).subspan(1)));
  }
}

TEST_F(CalibrationTest, TooLittleTextSaysHowManyTokensWereFoundAndNeeded) {
  TextSetOptions o = Calibration();
  o.num_sequences = 200;  // 200 * 32 = 6400 > 4000
  EXPECT_THAT(BuildTokenSequences(model_dir(), o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("4000 tokens"), HasSubstr("need 6400"))));
  ASSERT_THAT(WriteTokenFile(scratch_.Sub("empty.tokens"), {}), IsOk());
  o.paths = {scratch_.Sub("empty.tokens")};
  EXPECT_THAT(BuildTokenSequences(model_dir(), o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("holds 0 tokens")));
}

TEST_F(CalibrationTest, AllowFewerTakesWhatThereIs) {
  TextSetOptions o = Calibration();
  o.num_sequences = 1000;
  o.allow_fewer = true;
  VPTQ_ASSERT_OK_AND_ASSIGN(TokenSequences s, BuildTokenSequences(model_dir(), o));
  EXPECT_EQ(s.count(), 4000 / 32);
}

TEST_F(CalibrationTest, ReadsDirectoriesInNameOrderAndJsonDocuments) {
  const std::string dir = scratch_.Sub("texts");
  std::filesystem::create_directories(dir);
  ASSERT_THAT(WriteTokenFile(dir + "/b.tokens", {1, 2, 3}), IsOk());
  ASSERT_THAT(WriteFileAtomic(dir + "/a.tokens.json", "[[4, 5], [6]]"), IsOk());
  ASSERT_THAT(WriteFileAtomic(dir + "/notes.md", "ignored"), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(std::vector<std::string> files, ListTextFiles({dir}));
  ASSERT_EQ(files.size(), 2u);
  EXPECT_THAT(files[0], HasSubstr("a.tokens.json"));
  EXPECT_THAT(files[1], HasSubstr("b.tokens"));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto docs, ReadTokenFile(files[0]));
  EXPECT_EQ(docs, (std::vector<std::vector<int32_t>>{{4, 5}, {6}}));

  TextSetOptions o;
  o.paths = {dir};
  o.num_sequences = 3;
  o.sequence_length = 2;
  VPTQ_ASSERT_OK_AND_ASSIGN(TokenSequences s, BuildTokenSequences(model_dir(), o));
  EXPECT_EQ(s.stream_tokens, 6);
  EXPECT_EQ(s.documents_read, 3);
  EXPECT_EQ(s.count(), 3);
}

TEST_F(CalibrationTest, BadInputsAreClearErrors) {
  TextSetOptions o = Calibration();
  o.paths = {scratch_.Sub("missing.txt")};
  EXPECT_THAT(BuildTokenSequences(model_dir(), o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not exist")));
  o.paths = {};
  EXPECT_THAT(BuildTokenSequences(model_dir(), o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no text paths")));

  const std::string empty_dir = scratch_.Sub("nothing");
  std::filesystem::create_directories(empty_dir);
  o.paths = {empty_dir};
  EXPECT_THAT(BuildTokenSequences(model_dir(), o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("*.txt")));

  ASSERT_THAT(WriteTokenFile(scratch_.Sub("big.tokens"), {1, 2, 64, 3}), IsOk());
  o.paths = {scratch_.Sub("big.tokens")};
  EXPECT_THAT(BuildTokenSequences(model_dir(), o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside the vocabulary")));

  ASSERT_THAT(WriteFileAtomic(scratch_.Sub("odd.tokens"), "12345"), IsOk());
  o.paths = {scratch_.Sub("odd.tokens")};
  EXPECT_THAT(BuildTokenSequences(model_dir(), o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("multiple of 4")));

  ASSERT_THAT(WriteFileAtomic(scratch_.Sub("bad.tokens.json"), "[[1, \"x\"]]"), IsOk());
  o.paths = {scratch_.Sub("bad.tokens.json")};
  EXPECT_THAT(BuildTokenSequences(model_dir(), o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("document 0 position 1")));

  // Text needs the tokenizer, which the synthetic model does not have.
  ASSERT_THAT(WriteFileAtomic(scratch_.Sub("t.txt"), "hello"), IsOk());
  o.paths = {scratch_.Sub("t.txt")};
  EXPECT_THAT(BuildTokenSequences(model_dir(), o),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("tokenizer")));

  o = Calibration();
  o.sequence_length = 65;  // max_position_embeddings is 64
  EXPECT_THAT(BuildTokenSequences(model_dir(), o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_position_embeddings")));
}

TEST(ShardRangeTest, ShardsCoverEverySequenceOnce) {
  for (int64_t n : {0, 1, 7, 128}) {
    for (int64_t shards : {1, 2, 3, 16}) {
      int64_t next = 0;
      for (int64_t s = 0; s < shards; ++s) {
        const auto [b, e] = ShardRange(n, s, shards);
        EXPECT_EQ(b, next);
        EXPECT_GE(e, b);
        next = e;
      }
      EXPECT_EQ(next, n);
    }
  }
  EXPECT_EQ(ShardRange(10, 3, 2), std::make_pair(int64_t{0}, int64_t{0}));
}

}  // namespace
}  // namespace vptq::pipeline
