// Unit tests of the tokenizer stages on hand-made inputs: UTF-8 handling,
// patterns, split behaviours, normalizers, pre-tokenizers, decoders and the
// added-token splitter. Expected values follow HF tokenizers' documented
// behaviour (several are the examples of its own test-suite).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/status_matchers.h"
#include "nlohmann/json.hpp"
#include "worker/model/tokenizer_added_tokens.h"
#include "worker/model/tokenizer_byte_level.h"
#include "worker/model/tokenizer_decoder.h"
#include "worker/model/tokenizer_normalizer.h"
#include "worker/model/tokenizer_pattern.h"
#include "worker/model/tokenizer_pre_tokenizer.h"
#include "worker/model/tokenizer_utf8.h"

namespace vptq::tokenizer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using vptq::testing::IsOk;
using vptq::testing::StatusIs;
using json = nlohmann::json;

const std::string kRep = "\xE2\x96\x81";  // ▁
const std::string kFffd(kReplacementChar);

std::vector<std::string> Texts(const std::vector<PreToken>& pieces) {
  std::vector<std::string> out;
  for (const PreToken& p : pieces) out.push_back(p.text);
  return out;
}

std::vector<std::string> PreTokenize(const json& config, const std::string& text,
                                     bool at_origin = true) {
  auto p = PreTokenizerFromJson(config, "pre_tokenizer");
  EXPECT_THAT(p, IsOk());
  if (!p.ok()) return {};
  std::vector<PreToken> pieces = {{text, at_origin}};
  (*p)->PreTokenize(&pieces);
  return Texts(pieces);
}

std::string Normalize(const json& config, const std::string& text) {
  auto n = NormalizerFromJson(config, "normalizer");
  EXPECT_THAT(n, IsOk());
  return n.ok() ? (*n)->Normalize(text) : "";
}

std::string Decode(const json& config, std::vector<std::string> tokens) {
  auto d = DecoderFromJson(config, "decoder");
  EXPECT_THAT(d, IsOk());
  return d.ok() ? DecodeTokens(d->get(), std::move(tokens)) : "";
}

TEST(TokenizerUtf8Test, SanitizeReplacesMaximalInvalidSubparts) {
  EXPECT_EQ(SanitizeUtf8("plain"), "plain");
  EXPECT_EQ(SanitizeUtf8("a\xFF" "b"), "a" + kFffd + "b");
  // A truncated 3-byte sequence is one maximal subpart.
  EXPECT_EQ(SanitizeUtf8("x\xE2\x82"), "x" + kFffd);
  // Surrogates (ED A0 80) are not a prefix of any valid sequence: 3 subparts.
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), kFffd + kFffd + kFffd);
  // Overlong encoding of '/'.
  EXPECT_EQ(SanitizeUtf8("\xC0\xAF"), kFffd + kFffd);
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\xA6\x99"));  // 🦙
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
}

TEST(TokenizerUtf8Test, WhitespaceIsTheUnicodeProperty) {
  for (char32_t c : {U'\t', U'\n', U'\v', U'\f', U'\r', U' ', U'\u0085', U'\u00A0',
                     U'\u2009', U'\u3000'}) {
    EXPECT_TRUE(IsUnicodeWhitespace(c)) << static_cast<uint32_t>(c);
  }
  for (char32_t c : {U'a', U'\u200B', U'\uFEFF', U'_'}) {
    EXPECT_FALSE(IsUnicodeWhitespace(c)) << static_cast<uint32_t>(c);
  }
}

TEST(TokenizerByteLevelTest, MapIsReversibleOverAllBytes) {
  EXPECT_EQ(ByteLevelEncode(" "), "\xC4\xA0");   // Ġ
  EXPECT_EQ(ByteLevelEncode("\n"), "\xC4\x8A");  // Ċ
  EXPECT_EQ(ByteLevelEncode("az~"), "az~");
  for (int b = 0; b < 256; ++b) {
    const std::string_view c = ByteLevelChar(static_cast<uint8_t>(b));
    ASSERT_TRUE(IsValidUtf8(c));
    EXPECT_EQ(ByteLevelDecodeChar(DecodeUtf8At(c, 0)), b);
  }
  EXPECT_FALSE(ByteLevelDecodeChar(U'\u4E16').has_value());
}

TEST(TokenizerPatternTest, RegexUsesOnigurumaWhitespace) {
  EXPECT_EQ(OnigurumaToIcuRegex(R"(\s+(?!\S)|[^\s\p{L}]|\\s)"),
            R"(\p{White_Space}+(?!\P{White_Space})|[^\p{White_Space}\p{L}]|\\s)");
  VPTQ_ASSERT_OK_AND_ASSIGN(SplitPattern p, SplitPattern::Regex(R"(\s+)"));
  // U+000B and U+0085 are White_Space (ICU's own \s leaves them out).
  const std::string text = "a\x0B" "b\xC2\x85" "c";
  EXPECT_THAT(p.FindAll(text), ElementsAre(std::pair<size_t, size_t>{1, 2},
                                           std::pair<size_t, size_t>{3, 5}));
}

TEST(TokenizerPatternTest, MatchesAreUtf8ByteRangesAcrossSurrogatePairs) {
  VPTQ_ASSERT_OK_AND_ASSIGN(SplitPattern p, SplitPattern::Regex(R"(\p{N}{1,3})"));
  // 𝟙 (U+1D7D9, 4 UTF-8 bytes, 2 UTF-16 units) is a decimal digit.
  const std::string text = "x\xF0\x9D\x9F\x99" "12345";
  EXPECT_THAT(p.FindAll(text), ElementsAre(std::pair<size_t, size_t>{1, 7},
                                           std::pair<size_t, size_t>{7, 10}));
  EXPECT_EQ(SplitPattern::Literal("--").ReplaceAll("a--b----c", "+"), "a+b++c");
}

TEST(TokenizerPatternTest, BadPatternsAreInvalidArgument) {
  EXPECT_THAT(SplitPattern::Regex("(unclosed"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("(unclosed")));
  EXPECT_THAT(SplitPattern::FromJson(json{{"Glob", "*"}}, "x.pattern"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x.pattern")));
}

// HF's example "the-final--countdown" split on "-".
TEST(TokenizerSplitTest, AllBehaviours) {
  const PreToken piece{"the-final--countdown", true};
  const auto matches = SplitPattern::Literal("-").FindAll(piece.text);
  auto split = [&](SplitBehavior b, bool invert = false) {
    std::vector<PreToken> out;
    SplitPiece(piece, matches, b, invert, &out);
    return Texts(out);
  };
  EXPECT_THAT(split(SplitBehavior::kRemoved), ElementsAre("the", "final", "countdown"));
  EXPECT_THAT(split(SplitBehavior::kIsolated),
              ElementsAre("the", "-", "final", "-", "-", "countdown"));
  EXPECT_THAT(split(SplitBehavior::kMergedWithPrevious),
              ElementsAre("the-", "final-", "-", "countdown"));
  EXPECT_THAT(split(SplitBehavior::kMergedWithNext),
              ElementsAre("the", "-final", "-", "-countdown"));
  EXPECT_THAT(split(SplitBehavior::kContiguous),
              ElementsAre("the", "-", "final", "--", "countdown"));
  EXPECT_THAT(split(SplitBehavior::kRemoved, /*invert=*/true), ElementsAre("-", "-", "-"));
  std::vector<PreToken> out;
  SplitPiece(piece, matches, SplitBehavior::kIsolated, false, &out);
  EXPECT_TRUE(out[0].at_origin);
  EXPECT_FALSE(out[1].at_origin);
}

TEST(TokenizerPreTokenizerTest, ByteLevelWithGpt2Regex) {
  const json config = {{"type", "ByteLevel"}, {"add_prefix_space", false},
                       {"trim_offsets", true}, {"use_regex", true}};
  EXPECT_THAT(PreTokenize(config, "Hello my friend, how is your day going?"),
              ElementsAre("Hello", "\xC4\xA0my", "\xC4\xA0" "friend", ",", "\xC4\xA0how",
                          "\xC4\xA0is", "\xC4\xA0your", "\xC4\xA0" "day",
                          "\xC4\xA0going", "?"));
  EXPECT_THAT(PreTokenize(config, "Hello there       dear"),
              ElementsAre("Hello", "\xC4\xA0there",
                          "\xC4\xA0\xC4\xA0\xC4\xA0\xC4\xA0\xC4\xA0\xC4\xA0",
                          "\xC4\xA0" "dear"));
  json prefixed = config;
  prefixed["add_prefix_space"] = true;
  EXPECT_THAT(PreTokenize(prefixed, "Hi"), ElementsAre("\xC4\xA0Hi"));
}

TEST(TokenizerPreTokenizerTest, Llama3SplitThenByteLevel) {
  const json config = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"},
         {"pattern",
          {{"Regex",
            R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
         {"behavior", "Isolated"},
         {"invert", false}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  EXPECT_THAT(PreTokenize(config, "I'M 12345 ok!!\n\n  x"),
              ElementsAre("I", "'M", "\xC4\xA0", "123", "45", "\xC4\xA0ok", "!!\xC4\x8A\xC4\x8A",
                          "\xC4\xA0", "\xC4\xA0x"));
}

TEST(TokenizerPreTokenizerTest, MetaspacePrependSchemes) {
  const json always = {{"type", "Metaspace"}, {"replacement", kRep},
                       {"prepend_scheme", "always"}, {"split", true}};
  EXPECT_THAT(PreTokenize(always, "Hey   friend!"),
              ElementsAre(kRep + "Hey", kRep, kRep, kRep + "friend!"));
  const json first = {{"type", "Metaspace"}, {"replacement", kRep},
                      {"prepend_scheme", "first"}, {"split", false}};
  EXPECT_THAT(PreTokenize(first, "a b", /*at_origin=*/true), ElementsAre(kRep + "a" + kRep + "b"));
  EXPECT_THAT(PreTokenize(first, "a b", /*at_origin=*/false), ElementsAre("a" + kRep + "b"));
  // Older files: add_prefix_space instead of prepend_scheme.
  const json legacy = {{"type", "Metaspace"}, {"replacement", kRep},
                       {"add_prefix_space", false}};
  EXPECT_THAT(PreTokenize(legacy, "x y"), ElementsAre("x", kRep + "y"));
}

TEST(TokenizerPreTokenizerTest, DigitsAndWhitespace) {
  EXPECT_THAT(PreTokenize({{"type", "Digits"}, {"individual_digits", true}}, "a12b"),
              ElementsAre("a", "1", "2", "b"));
  EXPECT_THAT(PreTokenize({{"type", "Digits"}, {"individual_digits", false}}, "a12b"),
              ElementsAre("a", "12", "b"));
  EXPECT_THAT(PreTokenize({{"type", "WhitespaceSplit"}}, " a\tbc  d "),
              ElementsAre("a", "bc", "d"));
  EXPECT_THAT(PreTokenize({{"type", "Whitespace"}}, "Hey friend!  How?"),
              ElementsAre("Hey", "friend", "!", "How", "?"));
}

TEST(TokenizerPreTokenizerTest, UnknownTypeIsFailedPrecondition) {
  EXPECT_THAT(PreTokenizerFromJson(json{{"type", "BertPreTokenizer"}}, "pre_tokenizer"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("BertPreTokenizer")));
  EXPECT_THAT(PreTokenizerFromJson(json{{"type", "Split"}, {"pattern", {{"String", "x"}}},
                                        {"behavior", "Sideways"}},
                                   "pre_tokenizer"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Sideways")));
  EXPECT_THAT(PreTokenizerFromJson(json{{"pretokenizers", json::array()}}, "pre_tokenizer"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'type'")));
}

TEST(TokenizerNormalizerTest, Llama2PrependAndReplace) {
  const json config = {
      {"type", "Sequence"},
      {"normalizers",
       {{{"type", "Prepend"}, {"prepend", kRep}},
        {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kRep}}}}};
  EXPECT_EQ(Normalize(config, "Hey  you"), kRep + "Hey" + kRep + kRep + "you");
  EXPECT_EQ(Normalize(config, ""), "");  // Prepend leaves empty text alone
}

TEST(TokenizerNormalizerTest, UnicodeFormsCaseAndStrip) {
  EXPECT_EQ(Normalize({{"type", "NFC"}}, "e\xCC\x81"), "\xC3\xA9");      // é
  EXPECT_EQ(Normalize({{"type", "NFD"}}, "\xC3\xA9"), "e\xCC\x81");
  EXPECT_EQ(Normalize({{"type", "NFKC"}}, "\xEF\xAC\x81"), "fi");        // ﬁ ligature
  EXPECT_EQ(Normalize({{"type", "NFKD"}}, "\xC2\xBD"), "1\xE2\x81\x84" "2");  // ½
  EXPECT_EQ(Normalize({{"type", "Lowercase"}}, "HeLLo \xC3\x89T\xC3\x89"),
            "hello \xC3\xA9t\xC3\xA9");
  EXPECT_EQ(Normalize({{"type", "Strip"}, {"strip_left", true}, {"strip_right", false}},
                      " \t x \n"),
            "x \n");
  EXPECT_EQ(Normalize({{"type", "Strip"}}, "\xE3\x80\x80x\xC2\xA0"), "x");
  EXPECT_EQ(Normalize({{"type", "Replace"}, {"pattern", {{"Regex", " {2,}"}}}, {"content", "$1"}},
                      "a   b"),
            "a$1b");  // content is literal
}

TEST(TokenizerNormalizerTest, UnknownTypeIsFailedPrecondition) {
  EXPECT_THAT(NormalizerFromJson(json{{"type", "BertNormalizer"}}, "normalizer"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("BertNormalizer")));
  EXPECT_THAT(NormalizerFromJson(json{{"type", "Prepend"}}, "normalizer"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("prepend")));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto none, NormalizerFromJson(json(), "normalizer"));
  EXPECT_EQ(none, nullptr);
}

TEST(TokenizerDecoderTest, Llama2Chain) {
  const json config = {
      {"type", "Sequence"},
      {"decoders",
       {{{"type", "Replace"}, {"pattern", {{"String", kRep}}}, {"content", " "}},
        {{"type", "ByteFallback"}},
        {{"type", "Fuse"}},
        {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
  EXPECT_EQ(Decode(config, {kRep + "Hello", kRep, "<0x0A>", "<0xE4>", "<0xB8>", "<0x96>"}),
            "Hello \n\xE4\xB8\x96");
  // An invalid byte run becomes one U+FFFD per byte.
  EXPECT_EQ(Decode(config, {"a", "<0xE4>", "<0xB8>", "b"}), "a" + kFffd + kFffd + "b");
  // Only one leading space is stripped.
  EXPECT_EQ(Decode(config, {kRep + kRep + kRep + "x"}), "  x");
}

TEST(TokenizerDecoderTest, MetaspaceDropsReplacementsOfTheFirstToken) {
  const json config = {{"type", "Metaspace"}, {"replacement", kRep},
                       {"prepend_scheme", "first"}, {"split", false}};
  EXPECT_EQ(Decode(config, {kRep + "Hey", kRep + "friend!"}), "Hey friend!");
  const json never = {{"type", "Metaspace"}, {"replacement", kRep}, {"prepend_scheme", "never"}};
  EXPECT_EQ(Decode(never, {kRep + "Hey"}), " Hey");
}

TEST(TokenizerDecoderTest, ByteLevelAndNoDecoder) {
  EXPECT_EQ(Decode({{"type", "ByteLevel"}}, {"Hello", "\xC4\xA0there", "\xC4\x8A"}),
            "Hello there\n");
  // UTF-8 split across tokens is joined before decoding; broken UTF-8 is
  // lossy; a token with characters outside the map keeps its own bytes.
  EXPECT_EQ(Decode({{"type", "ByteLevel"}},
                   {ByteLevelEncode("\xE4"), ByteLevelEncode("\xB8\x96")}),
            "\xE4\xB8\x96");
  EXPECT_EQ(Decode({{"type", "ByteLevel"}}, {ByteLevelEncode("\xE4\xB8"), "x"}), kFffd + "x");
  EXPECT_EQ(Decode({{"type", "ByteLevel"}}, {"\xE4\xB8\x96", "\xC4\xA0!"}), "\xE4\xB8\x96 !");
  EXPECT_EQ(DecodeTokens(nullptr, {"a", "b"}), "a b");
  EXPECT_THAT(DecoderFromJson(json{{"type", "CTC"}}, "decoder"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("CTC")));
}

TEST(TokenizerAddedTokensTest, LeftmostLongestWithStripAndSingleWord) {
  auto token = [](int32_t id, std::string content) {
    AddedToken t;
    t.id = id;
    t.content = std::move(content);
    return t;
  };
  AddedToken strip = token(12, "[M]");
  strip.lstrip = strip.rstrip = true;
  AddedToken word = token(13, "cat");
  word.single_word = true;
  AddedTokenSplitter splitter({token(10, "<s>"), token(11, "<s><s>"), strip, word});
  auto show = [&](const std::string& text) {
    std::vector<std::string> out;
    for (const TextSegment& s : splitter.Split(text)) {
      out.push_back(s.token_id ? absl::StrCat("#", *s.token_id) : std::string(s.text));
    }
    return out;
  };
  EXPECT_THAT(show("a<s><s><s>b"), ElementsAre("a", "#11", "#10", "b"));
  EXPECT_THAT(show("x  [M]  y"), ElementsAre("x", "#12", "y"));
  EXPECT_THAT(show("cat concat cat_ cat."), ElementsAre("#13", " concat cat_ ", "#13", "."));
  EXPECT_THAT(show(""), ElementsAre());
  const auto segments = splitter.Split("ab<s>");
  ASSERT_EQ(segments.size(), 2u);
  EXPECT_EQ(segments[1].offset, 2u);
}

}  // namespace
}  // namespace vptq::tokenizer
