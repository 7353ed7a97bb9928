// Tokenizer (tokenizer.json as a whole): loading errors, bos/eos discovery,
// added tokens in text, invalid UTF-8, decoding options, concurrency; and
// properties of the real Llama-3 and stories15M (Llama-2) tokenizers.
#include "worker/model/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "common/file_util.h"
#include "common/status.h"
#include "common/status_matchers.h"
#include "nlohmann/json.hpp"
#include "worker/model/llama2c_tokenizer.h"
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

// A tiny Llama-2-style tokenizer: Prepend/Replace normalizer, byte fallback.
json TinyLlamaJson() {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  const std::vector<std::string> pieces = {kRep, "h", "i", kRep + "h", kRep + "hi", "!"};
  for (size_t i = 0; i < pieces.size(); ++i) vocab[pieces[i]] = 259 + static_cast<int>(i);
  auto special = [](int id, const char* content) {
    return json{{"id", id}, {"content", content}, {"special", true}, {"normalized", false}};
  };
  return {
      {"version", "1.0"},
      {"added_tokens", {special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")}},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "Prepend"}, {"prepend", kRep}},
          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kRep}}}}}},
      {"pre_tokenizer", nullptr},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                    {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         {{{"type", "Replace"}, {"pattern", {{"String", kRep}}}, {"content", " "}},
          {{"type", "ByteFallback"}},
          {{"type", "Fuse"}},
          {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"model",
       {{"type", "BPE"},
        {"unk_token", "<unk>"},
        {"byte_fallback", true},
        {"fuse_unk", true},
        {"vocab", vocab},
        {"merges", {kRep + " h", kRep + "h i"}}}}};
}

std::unique_ptr<Tokenizer> Load(const json& j, const std::string& config = "") {
  auto t = Tokenizer::FromJsonString(j.dump(), "tiny.json", config);
  EXPECT_THAT(t, IsOk());
  return t.ok() ? *std::move(t) : nullptr;
}

TEST(TokenizerTest, TinyLlamaEncodeDecode) {
  auto tok = Load(TinyLlamaJson());
  ASSERT_NE(tok, nullptr);
  // "▁hi" (263) "▁hi" "!" ; "\n" falls back to <0x0A> (13).
  EXPECT_THAT(tok->Encode("hi hi!\n", false), ElementsAre(263, 263, 264, 13));
  EXPECT_THAT(tok->Encode("hi", true), ElementsAre(1, 263));
  EXPECT_THAT(tok->Encode("", false), ElementsAre());
  // The Strip decoder removes one leading space of the whole text only.
  EXPECT_EQ(tok->Decode({1, 263, 263, 264, 13}), "<s> hi hi!\n");
  EXPECT_EQ(tok->Decode({1, 263, 263, 264, 13}, /*skip_special_tokens=*/true), "hi hi!\n");
  // Ids outside the vocabulary are skipped, as HF does.
  EXPECT_EQ(tok->Decode({263, 99999, -5, 264}), "hi!");
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->vocab_size(), 265);
  EXPECT_EQ(tok->TokenToId(kRep + "hi"), 263);
  EXPECT_EQ(tok->IdToToken(13), "<0x0A>");
  EXPECT_FALSE(tok->IdToToken(265).has_value());
  EXPECT_TRUE(tok->IsSpecial(2));
  EXPECT_FALSE(tok->IsSpecial(263));
}

TEST(TokenizerTest, AddedTokensInTextSplitBeforeNormalization) {
  auto tok = Load(TinyLlamaJson());
  ASSERT_NE(tok, nullptr);
  // Each piece between added tokens is normalized on its own (HF's legacy
  // Llama behaviour: both "hi" get the "▁" prefix).
  EXPECT_THAT(tok->Encode("hi<s>hi</s>", false), ElementsAre(263, 1, 263, 2));
}

TEST(TokenizerTest, InvalidUtf8IsReadAsReplacementCharacter) {
  auto tok = Load(TinyLlamaJson());
  ASSERT_NE(tok, nullptr);
  // U+FFFD = EF BF BD through byte fallback.
  EXPECT_EQ(tok->Encode("hi\xFF", false), tok->Encode("hi\xEF\xBF\xBD", false));
  EXPECT_THAT(tok->Encode("\xFF", false), ElementsAre(259, 3 + 0xEF, 3 + 0xBF, 3 + 0xBD));
}

TEST(TokenizerTest, BosEosFromConfigTemplateOrNames) {
  json j = TinyLlamaJson();
  // tokenizer_config.json wins; {"content": ...} objects are accepted.
  auto from_config =
      Load(j, R"({"bos_token": {"content": "</s>"}, "eos_token": "<unk>"})");
  ASSERT_NE(from_config, nullptr);
  EXPECT_EQ(from_config->bos_id(), 2);
  EXPECT_EQ(from_config->eos_id(), 0);
  // null in the config means the model has none.
  auto none = Load(j, R"({"bos_token": null})");
  ASSERT_NE(none, nullptr);
  EXPECT_FALSE(none->bos_id().has_value());
  EXPECT_THAT(none->Encode("hi", /*add_bos=*/true), ElementsAre(263));
  // Without a template, the usual names.
  j["post_processor"] = nullptr;
  auto by_name = Load(j);
  ASSERT_NE(by_name, nullptr);
  EXPECT_EQ(by_name->bos_id(), 1);
}

TEST(TokenizerTest, UnsupportedComponentsAreFailedPreconditionNamingTheType) {
  const std::vector<std::pair<std::string, json>> cases = {
      {"normalizer", {{"type", "BertNormalizer"}}},
      {"pre_tokenizer", {{"type", "UnicodeScripts"}}},
      {"decoder", {{"type", "WordPiece"}}},
      {"model", {{"type", "Unigram"}, {"vocab", json::array()}}},
  };
  for (const auto& [field, value] : cases) {
    json j = TinyLlamaJson();
    j[field] = value;
    EXPECT_THAT(Tokenizer::FromJsonString(j.dump(), "odd.json"),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         HasSubstr(value["type"].get<std::string>())))
        << field;
  }
}

TEST(TokenizerTest, MalformedContentIsInvalidArgument) {
  json no_model = TinyLlamaJson();
  no_model.erase("model");
  EXPECT_THAT(Tokenizer::FromJsonString(no_model.dump(), "a.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'model'")));
  json bad_merge = TinyLlamaJson();
  bad_merge["model"]["merges"].push_back("q z");
  EXPECT_THAT(Tokenizer::FromJsonString(bad_merge.dump(), "b.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("merges[2]")));
  json bad_regex = TinyLlamaJson();
  bad_regex["pre_tokenizer"] = {{"type", "Split"},
                                {"pattern", {{"Regex", "[unclosed"}}},
                                {"behavior", "Isolated"}};
  EXPECT_THAT(Tokenizer::FromJsonString(bad_regex.dump(), "c.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[unclosed")));
  json bad_added = TinyLlamaJson();
  bad_added["added_tokens"][0].erase("content");
  EXPECT_THAT(Tokenizer::FromJsonString(bad_added.dump(), "d.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("added_tokens[0]")));
  EXPECT_THAT(Tokenizer::FromJsonString("[1, 2]", "e.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("e.json")));
}

TEST(TokenizerTest, FileErrorsNameTheFile) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string missing = dir.path() + "/missing/tokenizer.json";
  EXPECT_THAT(Tokenizer::FromJsonFile(missing),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(missing)));

  const std::string broken = dir.path() + "/tokenizer.json";
  ASSERT_THAT(WriteFileAtomic(broken, "{\"model\": {\"type\": \"BPE\", "), IsOk());
  EXPECT_THAT(Tokenizer::FromJsonFile(broken),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("malformed JSON"), HasSubstr(broken))));

  ASSERT_THAT(WriteFileAtomic(broken, TinyLlamaJson().dump()), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(auto ok, Tokenizer::FromJsonFile(broken));
  EXPECT_EQ(ok->bos_id(), 1);
  // A broken tokenizer_config.json beside it is reported, not ignored.
  const std::string config = dir.path() + "/tokenizer_config.json";
  ASSERT_THAT(WriteFileAtomic(config, "{bos"), IsOk());
  EXPECT_THAT(Tokenizer::FromJsonFile(broken),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(config)));
  ASSERT_THAT(WriteFileAtomic(config, R"({"bos_token": "</s>"})"), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(auto configured, Tokenizer::FromJsonFile(broken));
  EXPECT_EQ(configured->bos_id(), 2);
}

TEST(TokenizerTest, Llama3Properties) {
  VPTQ_ASSERT_OK_AND_ASSIGN(auto tok,
                            Tokenizer::FromJsonFile(tokenizer_testing::Llama3TokenizerJsonPath()));
  EXPECT_EQ(tok->bos_id(), tok->TokenToId("<|begin_of_text|>"));
  EXPECT_EQ(tok->eos_id(), tok->TokenToId("<|end_of_text|>"));
  EXPECT_EQ(tok->vocab_size(), 128256);  // 128000 BPE tokens + 256 special
  const std::string text = "Hello<|eot_id|> world";
  const std::vector<int32_t> plain = tok->Encode(text, false);
  std::vector<int32_t> with_bos = tok->Encode(text, true);
  ASSERT_EQ(with_bos.size(), plain.size() + 1);
  EXPECT_EQ(with_bos[0], *tok->bos_id());
  EXPECT_EQ(std::vector<int32_t>(with_bos.begin() + 1, with_bos.end()), plain);
  EXPECT_NE(std::find(plain.begin(), plain.end(), *tok->TokenToId("<|eot_id|>")), plain.end());
  EXPECT_EQ(tok->Decode(plain, /*skip_special_tokens=*/true), "Hello world");
}

TEST(TokenizerTest, StoriesTokenizerProperties) {
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string bin, tokenizer_testing::Llama2cTokenizerBin());
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string json_text, Llama2cTokenizerJsonFromBytes(bin));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromJsonString(json_text, "stories15M"));
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->IdToToken(13), "<0x0A>");
  const std::vector<int32_t> ids = tok->Encode("Once upon a time", true);
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(tok->Decode(ids, /*skip_special_tokens=*/true), "Once upon a time");
}

TEST(TokenizerTest, ConcurrentEncodeGivesSameIds) {
  VPTQ_ASSERT_OK_AND_ASSIGN(auto tok,
                            Tokenizer::FromJsonFile(tokenizer_testing::Llama3TokenizerJsonPath()));
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string novel, tokenizer_testing::MobyDickText());
  const std::string text = novel.substr(0, 50000);
  const std::vector<int32_t> expected = tok->Encode(text, true);
  std::vector<std::vector<int32_t>> results(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = tok->Encode(text, true); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) EXPECT_EQ(r, expected);
}

}  // namespace
}  // namespace vptq
