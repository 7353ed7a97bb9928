// BPE model tests: HF semantics on small vocabularies (merge order, unk
// fusing, byte fallback, subword prefixes, ignore_merges, load errors), and
// the fast merge loop (ApplyMerges) against the plain reference
// (ApplyMergesReference) on synthetic words and on real vocabularies.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "common/file_util.h"
#include "common/status.h"
#include "common/status_matchers.h"
#include "nlohmann/json.hpp"
#include "worker/model/llama2c_tokenizer.h"
#include "worker/model/tokenizer_bpe.h"
#include "worker/model/tokenizer_pre_tokenizer.h"
#include "worker/model/tokenizer_test_util.h"

namespace vptq::tokenizer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using vptq::testing::StatusIs;
using json = nlohmann::json;

std::vector<std::pair<std::string, int32_t>> Vocab(const std::vector<std::string>& tokens) {
  std::vector<std::pair<std::string, int32_t>> v;
  for (size_t i = 0; i < tokens.size(); ++i) v.emplace_back(tokens[i], static_cast<int32_t>(i));
  return v;
}

// Options with the given fields set (designated initializers would trip
// -Wmissing-field-initializers).
BpeModel::Options Opts(std::optional<std::string> unk, bool fuse_unk = false,
                       bool byte_fallback = false, bool ignore_merges = false,
                       std::string prefix = "") {
  BpeModel::Options o;
  o.unk_token = std::move(unk);
  o.fuse_unk = fuse_unk;
  o.byte_fallback = byte_fallback;
  o.ignore_merges = ignore_merges;
  o.continuing_subword_prefix = std::move(prefix);
  return o;
}

std::vector<int32_t> Encode(const BpeModel& m, const std::string& word) {
  std::vector<int32_t> ids;
  m.Encode(word, nullptr, &ids);
  return ids;
}

// HF's own example: "unrelated" merges all the way up.
TEST(BpeModelTest, MergesByRank) {
  VPTQ_ASSERT_OK_AND_ASSIGN(
      BpeModel m,
      BpeModel::Create(Vocab({"u", "n", "r", "e", "l", "a", "t", "d", "re", "at", "ed", "un",
                              "ated", "rel", "related", "unrelated"}),
                       {{"r", "e"}, {"a", "t"}, {"e", "d"}, {"u", "n"}, {"at", "ed"},
                        {"re", "l"}, {"rel", "ated"}, {"un", "related"}},
                       {}));
  EXPECT_THAT(Encode(m, "unrelated"), ElementsAre(15));
  EXPECT_THAT(Encode(m, "ate"), ElementsAre(9, 3));
  EXPECT_EQ(m.num_merges(), 8u);
}

TEST(BpeModelTest, EqualRanksMergeLeftmostFirst) {
  VPTQ_ASSERT_OK_AND_ASSIGN(
      BpeModel m, BpeModel::Create(Vocab({"a", "aa"}), {{"a", "a"}}, {}));
  // "aaa" -> "aa" + "a", not "a" + "aa".
  EXPECT_THAT(Encode(m, "aaa"), ElementsAre(1, 0));
  EXPECT_THAT(Encode(m, "aaaaa"), ElementsAre(1, 1, 0));
}

TEST(BpeModelTest, UnknownCharactersFuseOnlyWithFuseUnk) {
  const auto vocab = Vocab({"<unk>", "a", "b"});
  VPTQ_ASSERT_OK_AND_ASSIGN(BpeModel plain,
                            BpeModel::Create(vocab, {}, Opts("<unk>")));
  EXPECT_THAT(Encode(plain, "accb"), ElementsAre(1, 0, 0, 2));
  VPTQ_ASSERT_OK_AND_ASSIGN(
      BpeModel fused, BpeModel::Create(vocab, {}, Opts("<unk>", /*fuse_unk=*/true)));
  EXPECT_THAT(Encode(fused, "accb"), ElementsAre(1, 0, 2));
  // Without an unk token unknown characters are dropped.
  VPTQ_ASSERT_OK_AND_ASSIGN(BpeModel none, BpeModel::Create(vocab, {}, {}));
  EXPECT_THAT(Encode(none, "acb"), ElementsAre(1, 2));
}

TEST(BpeModelTest, ByteFallbackUsesByteTokensWhenAllExist) {
  VPTQ_ASSERT_OK_AND_ASSIGN(
      BpeModel m, BpeModel::Create(Vocab({"<unk>", "<0x61>", "<0xC3>", "<0xA9>", "x"}), {},
                                   Opts("<unk>", /*fuse_unk=*/false, /*byte_fallback=*/true)));
  EXPECT_THAT(Encode(m, "a"), ElementsAre(1));
  EXPECT_THAT(Encode(m, "\xC3\xA9x"), ElementsAre(2, 3, 4));  // é
  EXPECT_THAT(Encode(m, "c"), ElementsAre(0));                // no <0x63>
}

TEST(BpeModelTest, ContinuingSubwordPrefixAndIgnoreMerges) {
  VPTQ_ASSERT_OK_AND_ASSIGN(
      BpeModel m, BpeModel::Create(Vocab({"a", "##b", "##c", "ab", "abc"}),
                                   {{"a", "##b"}, {"ab", "##c"}},
                                   Opts("[UNK]", false, false, false, /*prefix=*/"##")));
  EXPECT_THAT(Encode(m, "ab"), ElementsAre(3));
  EXPECT_THAT(Encode(m, "abc"), ElementsAre(4));

  // "xyz" is in the vocabulary but no merges lead to it.
  const auto vocab = Vocab({"x", "y", "z", "xy", "xyz"});
  VPTQ_ASSERT_OK_AND_ASSIGN(BpeModel merging, BpeModel::Create(vocab, {{"x", "y"}}, {}));
  EXPECT_THAT(Encode(merging, "xyz"), ElementsAre(3, 2));
  VPTQ_ASSERT_OK_AND_ASSIGN(
      BpeModel whole,
      BpeModel::Create(vocab, {{"x", "y"}}, Opts(std::nullopt, false, false, /*ignore=*/true)));
  EXPECT_THAT(Encode(whole, "xyz"), ElementsAre(4));
}

TEST(BpeModelTest, CacheGivesSameIds) {
  VPTQ_ASSERT_OK_AND_ASSIGN(BpeModel m,
                            BpeModel::Create(Vocab({"a", "b", "ab"}), {{"a", "b"}}, {}));
  BpeWordCache cache;
  std::vector<int32_t> ids;
  m.Encode("abab", &cache, &ids);
  m.Encode("abab", &cache, &ids);
  EXPECT_THAT(ids, ElementsAre(2, 2, 2, 2));
  ASSERT_NE(cache.Find("abab"), nullptr);
}

TEST(BpeModelTest, LoadErrorsNameTheProblem) {
  EXPECT_THAT(BpeModel::Create(Vocab({"a", "b"}), {{"a", "b"}}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("merges[0] 'a b': merged token")));
  EXPECT_THAT(BpeModel::Create(Vocab({"a", "ab"}), {{"a", "b"}}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("right part")));
  const json base = {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}},
                     {"merges", {"a b"}}};
  EXPECT_TRUE(BpeModel::FromJson(base, "model").ok());
  json pairs = base;
  pairs["merges"] = json::array({json::array({"a", "b"})});
  VPTQ_ASSERT_OK_AND_ASSIGN(BpeModel from_pairs, BpeModel::FromJson(pairs, "model"));
  EXPECT_THAT(Encode(from_pairs, "ab"), ElementsAre(2));
  json bad_merge = base;
  bad_merge["merges"] = {"a b c"};
  EXPECT_THAT(BpeModel::FromJson(bad_merge, "model"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model.merges[0]")));
  json dropout = base;
  dropout["dropout"] = 0.1;
  EXPECT_THAT(BpeModel::FromJson(dropout, "model"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("dropout")));
  json unigram = base;
  unigram["type"] = "Unigram";
  EXPECT_THAT(BpeModel::FromJson(unigram, "model"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("Unigram")));
  json bad_vocab = base;
  bad_vocab["vocab"]["a"] = "zero";
  EXPECT_THAT(BpeModel::FromJson(bad_vocab, "model"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vocab['a']")));
}

// ApplyMerges and ApplyMergesReference must agree exactly (ids are integers:
// the tolerance is zero).
void ExpectSameAsReference(const BpeModel& m, const std::vector<std::string>& words,
                           size_t* compared) {
  for (const std::string& w : words) {
    const std::vector<int32_t> symbols = m.InitialSymbols(w);
    const std::vector<int32_t> reference = ApplyMergesReference(m, symbols);
    ASSERT_EQ(ApplyMerges(m, symbols), reference) << "word: " << w;
    std::vector<int32_t> split_at_barriers;
    m.MergeSymbols(symbols, &split_at_barriers);
    ASSERT_EQ(split_at_barriers, reference) << "word: " << w;
    ++*compared;
  }
}

// Every string of length 2..4 over {a,b,c} is a token, with merges in a
// shuffled order: many overlapping candidates and rank ties per position.
TEST(BpeMergeTest, FastMatchesReferenceOnSyntheticVocabulary) {
  std::vector<std::string> tokens = {"a", "b", "c"};
  for (size_t len = 2; len <= 4; ++len) {
    std::vector<std::string> next;
    for (const std::string& t : tokens) {
      if (t.size() == len - 1) {
        for (char c : {'a', 'b', 'c'}) next.push_back(t + c);
      }
    }
    tokens.insert(tokens.end(), next.begin(), next.end());
  }
  absl::flat_hash_set<std::string> vocab_set(tokens.begin(), tokens.end());
  std::vector<std::pair<std::string, std::string>> merges;
  for (const std::string& t : tokens) {
    for (size_t cut = 1; cut < t.size(); ++cut) {
      if (vocab_set.contains(t.substr(0, cut)) && vocab_set.contains(t.substr(cut))) {
        merges.emplace_back(t.substr(0, cut), t.substr(cut));
      }
    }
  }
  std::mt19937 rng(1234);
  std::shuffle(merges.begin(), merges.end(), rng);
  VPTQ_ASSERT_OK_AND_ASSIGN(BpeModel m, BpeModel::Create(Vocab(tokens), merges, {}));
  std::vector<std::string> words;
  std::uniform_int_distribution<int> len(1, 60), letter(0, 2);
  for (int i = 0; i < 3000; ++i) {
    std::string w;
    for (int k = len(rng); k > 0; --k) w.push_back(static_cast<char>('a' + letter(rng)));
    words.push_back(w);
  }
  size_t compared = 0;
  ExpectSameAsReference(m, words, &compared);
  EXPECT_EQ(compared, words.size());
}

// Real merges: Llama-3's vocabulary on the pre-tokens of Moby Dick's first
// 200 KB, and the Llama-2 (stories15M) vocabulary on whole paragraphs, which
// SentencePiece-style BPE merges as single words.
TEST(BpeMergeTest, FastMatchesReferenceOnRealVocabularies) {
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string novel, tokenizer_testing::MobyDickText());
  const std::string text = novel.substr(0, 200000);
  size_t compared = 0;
  {
    VPTQ_ASSERT_OK_AND_ASSIGN(std::string file,
                              ReadFile(tokenizer_testing::Llama3TokenizerJsonPath()));
    const json root = json::parse(file);
    VPTQ_ASSERT_OK_AND_ASSIGN(BpeModel m, BpeModel::FromJson(root["model"], "model"));
    VPTQ_ASSERT_OK_AND_ASSIGN(auto pre,
                              PreTokenizerFromJson(root["pre_tokenizer"], "pre_tokenizer"));
    std::vector<PreToken> pieces = {{text, true}};
    pre->PreTokenize(&pieces);
    absl::flat_hash_set<std::string> seen;
    std::vector<std::string> words;
    for (const PreToken& p : pieces) {
      if (seen.insert(p.text).second) words.push_back(p.text);
    }
    ASSERT_GT(words.size(), 5000u);
    ExpectSameAsReference(m, words, &compared);
  }
  {
    VPTQ_ASSERT_OK_AND_ASSIGN(std::string bin, tokenizer_testing::Llama2cTokenizerBin());
    VPTQ_ASSERT_OK_AND_ASSIGN(std::string file, Llama2cTokenizerJsonFromBytes(bin));
    const json root = json::parse(file);
    VPTQ_ASSERT_OK_AND_ASSIGN(BpeModel m, BpeModel::FromJson(root["model"], "model"));
    std::vector<std::string> paragraphs;
    const std::string space = "\xE2\x96\x81";
    for (size_t begin = 0; begin < text.size() && paragraphs.size() < 40;) {
      size_t end = text.find("\n\n", begin);
      if (end == std::string::npos) end = text.size();
      std::string p = space;
      for (char c : text.substr(begin, end - begin)) {
        if (c == ' ') {
          p += space;
        } else {
          p += c;
        }
      }
      paragraphs.push_back(p);
      begin = end + 2;
    }
    ExpectSameAsReference(m, paragraphs, &compared);
  }
  std::cout << "[bpe] fast and reference merges agree on " << compared << " words\n";
}

}  // namespace
}  // namespace vptq::tokenizer
