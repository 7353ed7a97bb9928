// llama2.c tokenizer.bin -> tokenizer.json: the merge derivation on a small
// hand-built file, error paths, atomic writing, and on stories15M's real
// tokenizer.bin an exact comparison of vocabulary and merges with Llama-2's
// own data as embedded in llama-tokenizer-js (exported by a node script).
#include "worker/model/llama2c_tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/status.h"
#include "common/status_matchers.h"
#include "nlohmann/json.hpp"
#include "worker/model/tokenizer.h"
#include "worker/model/tokenizer_test_util.h"

namespace vptq {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::IsOk;
using testing::StatusIs;
using tokenizer_testing::TempDir;
using json = nlohmann::json;

const std::string kRep = "\xE2\x96\x81";  // ▁

template <typename T>
void Append(std::string* out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out->append(buf, sizeof(T));
}

// A tokenizer.bin as llama2.c's export writes it: <unk>, "\n<s>\n",
// "\n</s>\n", 256 byte tokens as Latin-1 characters, then `pieces` (spaces
// for "▁").
std::string TokenizerBin(const std::vector<std::pair<std::string, float>>& pieces) {
  std::string bin;
  Append<int32_t>(&bin, 16);
  auto token = [&](const std::string& text, float score) {
    Append<float>(&bin, score);
    Append<int32_t>(&bin, static_cast<int32_t>(text.size()));
    bin += text;
  };
  token("<unk>", 0);
  token("\n<s>\n", 0);
  token("\n</s>\n", 0);
  for (int b = 0; b < 256; ++b) {
    std::string latin1;
    if (b < 0x80) {
      latin1.push_back(static_cast<char>(b));
    } else {
      latin1.push_back(static_cast<char>(0xC0 | (b >> 6)));
      latin1.push_back(static_cast<char>(0x80 | (b & 0x3F)));
    }
    token(latin1, 0);
  }
  for (const auto& [text, score] : pieces) token(text, score);
  return bin;
}

TEST(Llama2cTokenizerTest, MergesFollowScoresThenIds) {
  // ids: 259 "  " (-1e9), 260 " t" (-1), 261 "he" (-2), 262 " the" (-3),
  // 263 " " (-4), 264 "t" (-5), 265 "h" (-6), 266 "e" (-7), 267 " th" (-8).
  const std::string bin = TokenizerBin({{"  ", -1e9f}, {" t", -1}, {"he", -2}, {" the", -3},
                                        {" ", -4}, {"t", -5}, {"h", -6}, {"e", -7},
                                        {" th", -8}});
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string text, Llama2cTokenizerJsonFromBytes(bin));
  const json j = json::parse(text);
  EXPECT_EQ(j["model"]["vocab"][kRep + "the"], 262);
  EXPECT_EQ(j["model"]["vocab"]["<0x0A>"], 3 + 10);
  EXPECT_EQ(j["model"]["vocab"]["<0xFF>"], 258);
  EXPECT_EQ(j["model"]["vocab"]["<s>"], 1);
  // Highest score first. "▁the" splits into pieces two ways, kept in order
  // of the left part's id: "▁t"(260)+"he", then "▁th"(267)+"e". "▁▁" has the
  // lowest score and comes last.
  EXPECT_THAT(j["model"]["merges"].get<std::vector<std::string>>(),
              ElementsAre(kRep + " t", "h e", kRep + "t he", kRep + "th e", kRep + "t h",
                          kRep + " " + kRep));
  EXPECT_EQ(j["normalizer"]["type"], "Sequence");
  EXPECT_EQ(j["model"]["byte_fallback"], true);

  VPTQ_ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromJsonString(text, "mini"));
  EXPECT_THAT(tok->Encode("the\n", true), ElementsAre(1, 262, 3 + 10));
  EXPECT_EQ(tok->Decode(tok->Encode("  the the", false)), "  the the");
}

TEST(Llama2cTokenizerTest, BadInputIsInvalidArgument) {
  EXPECT_THAT(Llama2cTokenizerJsonFromBytes(""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_token_length")));
  const std::string good = TokenizerBin({{"ab", -1}});
  EXPECT_THAT(Llama2cTokenizerJsonFromBytes(good.substr(0, good.size() - 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("token 259")));
  EXPECT_THAT(Llama2cTokenizerJsonFromBytes(good.substr(0, 100)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Fewer tokens than <unk>, <s>, </s> and the 256 bytes.
  std::string tiny;
  Append<int32_t>(&tiny, 8);
  EXPECT_THAT(Llama2cTokenizerJsonFromBytes(tiny),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("0 tokens")));
  // A byte token that does not hold its byte (e.g. a wrong offset).
  std::string wrong_byte = TokenizerBin({{"ab", -1}});
  const size_t first_byte_token = 4 + (8 + 5) + (8 + 5) + (8 + 6);
  wrong_byte[first_byte_token + 8] = 'Z';  // token 3 should be 0x00
  EXPECT_THAT(Llama2cTokenizerJsonFromBytes(wrong_byte),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("token 3")));
  EXPECT_THAT(Llama2cTokenizerJsonFromBytes(TokenizerBin({{"ab", -1}, {"\xFF", -2}})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("token 260")));
  EXPECT_THAT(Llama2cTokenizerJsonFromBytes(TokenizerBin({{"ab", -1}, {"ab", -2}})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("appears twice")));
}

TEST(Llama2cTokenizerTest, WritesAtomicallyFromFile) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string bin_path = dir.path() + "/tokenizer.bin";
  const std::string out = dir.path() + "/tokenizer.json";
  ASSERT_THAT(WriteFileAtomic(bin_path, TokenizerBin({{" a", -1}})), IsOk());
  ASSERT_THAT(WriteFileAtomic(out, "old content"), IsOk());
  ASSERT_THAT(WriteLlama2cTokenizerJson(bin_path, out), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromJsonFile(out));
  EXPECT_EQ(tok->vocab_size(), 260);
  // A failed conversion leaves the previous file untouched.
  ASSERT_THAT(WriteFileAtomic(bin_path, "xx"), IsOk());
  EXPECT_THAT(WriteLlama2cTokenizerJson(bin_path, out),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(bin_path)));
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string still, ReadFile(out));
  EXPECT_THAT(still, HasSubstr("\"merges\""));
  EXPECT_THAT(WriteLlama2cTokenizerJson(dir.path() + "/nope.bin", out),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_FALSE(WriteLlama2cTokenizerJsonFromBytes(TokenizerBin({}),
                                                  dir.path() + "/no/such/dir/t.json")
                   .ok());
}

// stories15M's tokenizer.bin converts to exactly Llama-2's vocabulary and
// merges list (as llama-tokenizer-js embeds them).
TEST(Llama2cTokenizerTest, StoriesMatchesLlama2TokenizerData) {
  VPTQ_REQUIRE_NODE();
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string bin, tokenizer_testing::Llama2cTokenizerBin());
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string ours_text, Llama2cTokenizerJsonFromBytes(bin));
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string ref_path = dir.path() + "/tokenizer.json";
  ASSERT_THAT(tokenizer_testing::RunNodeScript("llama2_tokenizer_json.mjs", {ref_path},
                                               dir.path()),
              IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string ref_text, ReadFile(ref_path));
  const json ours = json::parse(ours_text);
  const json ref = json::parse(ref_text);
  EXPECT_EQ(ours["model"]["vocab"].size(), 32000u);
  EXPECT_EQ(ours["model"]["vocab"], ref["model"]["vocab"]);
  const auto ours_merges = ours["model"]["merges"].get<std::vector<std::string>>();
  const auto ref_merges = ref["model"]["merges"].get<std::vector<std::string>>();
  EXPECT_EQ(ours_merges.size(), ref_merges.size());
  size_t first_diff = 0;
  while (first_diff < ours_merges.size() && first_diff < ref_merges.size() &&
         ours_merges[first_diff] == ref_merges[first_diff]) {
    ++first_diff;
  }
  EXPECT_EQ(first_diff, ref_merges.size()) << "merges differ from index " << first_diff;
  for (const char* field : {"normalizer", "pre_tokenizer", "decoder", "added_tokens"}) {
    EXPECT_EQ(ours[field], ref[field]) << field;
  }
  std::cout << "[llama2c] vocabulary " << ours["model"]["vocab"].size() << ", merges "
            << ours_merges.size() << " identical to Llama-2's\n";
}

}  // namespace
}  // namespace vptq
