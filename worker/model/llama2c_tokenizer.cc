#include "worker/model/llama2c_tokenizer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_replace.h"
#include "common/file_util.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "worker/model/tokenizer_json.h"
#include "worker/model/tokenizer_utf8.h"

namespace vptq {
namespace {

constexpr std::string_view kSpacePiece = "\xE2\x96\x81";  // "▁"
constexpr int kFirstByteToken = 3;
constexpr int kNumByteTokens = 256;
constexpr int kFirstRegularToken = kFirstByteToken + kNumByteTokens;  // 259

struct Piece {
  std::string text;
  float score;
};

template <typename T>
bool ReadLittleEndian(std::string_view bytes, size_t* pos, T* out) {
  if (bytes.size() - *pos < sizeof(T)) return false;
  std::memcpy(out, bytes.data() + *pos, sizeof(T));  // x86/ARM: little endian
  *pos += sizeof(T);
  return true;
}

absl::StatusOr<std::vector<Piece>> ParsePieces(std::string_view bin) {
  size_t pos = 0;
  int32_t max_token_length = 0;
  if (!ReadLittleEndian(bin, &pos, &max_token_length) || max_token_length <= 0) {
    return absl::InvalidArgumentError(
        "tokenizer.bin: missing or non-positive max_token_length header");
  }
  std::vector<Piece> pieces;
  while (pos < bin.size()) {
    const size_t id = pieces.size();
    float score = 0;
    int32_t len = 0;
    if (!ReadLittleEndian(bin, &pos, &score) || !ReadLittleEndian(bin, &pos, &len)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tokenizer.bin: truncated header of token ", id, " at byte ", pos));
    }
    if (len < 0 || len > max_token_length || bin.size() - pos < static_cast<size_t>(len)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tokenizer.bin: token ", id, " has length ", len, " (max_token_length ",
          max_token_length, ", ", bin.size() - pos, " bytes left)"));
    }
    if (!std::isfinite(score)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tokenizer.bin: token ", id, " has a non-finite score"));
    }
    pieces.push_back({std::string(bin.substr(pos, len)), score});
    pos += len;
  }
  if (pieces.size() < static_cast<size_t>(kFirstRegularToken)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokenizer.bin: ", pieces.size(), " tokens; a SentencePiece Llama tokenizer "
        "has <unk>, <s>, </s>, 256 byte tokens and its pieces"));
  }
  return pieces;
}

// Restores SentencePiece's piece strings from llama2.c's export.
absl::Status RestorePieces(std::vector<Piece>* pieces) {
  (*pieces)[0] = {"<unk>", 0.0f};
  (*pieces)[1] = {"<s>", 0.0f};
  (*pieces)[2] = {"</s>", 0.0f};
  for (int b = 0; b < kNumByteTokens; ++b) {
    Piece& p = (*pieces)[kFirstByteToken + b];
    std::string latin1;
    tokenizer::AppendUtf8(static_cast<char32_t>(b), &latin1);
    const std::string hex = absl::StrFormat("<0x%02X>", b);
    if (p.text != latin1 && p.text != hex) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tokenizer.bin: token ", kFirstByteToken + b, " should be the byte-fallback "
          "token for 0x", absl::StrFormat("%02X", b), " but holds '",
          absl::CHexEscape(p.text), "' (is this a Llama SentencePiece tokenizer?)"));
    }
    p.text = hex;
    p.score = 0.0f;
  }
  for (size_t id = kFirstRegularToken; id < pieces->size(); ++id) {
    Piece& p = (*pieces)[id];
    if (p.text.empty() || !tokenizer::IsValidUtf8(p.text)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tokenizer.bin: token ", id, " is empty or not valid UTF-8: '",
          absl::CHexEscape(p.text), "'"));
    }
    p.text = absl::StrReplaceAll(p.text, {{" ", tokenizer::Sv(kSpacePiece)}});
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> Llama2cTokenizerJsonFromBytes(std::string_view tokenizer_bin) {
  VPTQ_ASSIGN_OR_RETURN(std::vector<Piece> pieces, ParsePieces(tokenizer_bin));
  VPTQ_RETURN_IF_ERROR(RestorePieces(&pieces));

  absl::flat_hash_map<std::string_view, int32_t> ids;
  ids.reserve(pieces.size());
  for (size_t id = 0; id < pieces.size(); ++id) {
    if (!ids.emplace(pieces[id].text, static_cast<int32_t>(id)).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tokenizer.bin: piece '", pieces[id].text, "' appears twice (ids ",
          ids[pieces[id].text], " and ", id, ")"));
    }
  }

  // Every split of a scored piece into two vocabulary pieces is a merge.
  struct Merge {
    float score;
    int32_t left, right;
  };
  std::vector<Merge> merges;
  for (const Piece& p : pieces) {
    if (p.score == 0.0f) continue;  // special and byte tokens
    for (size_t cut = 1; cut < p.text.size(); ++cut) {
      if ((static_cast<unsigned char>(p.text[cut]) & 0xC0) == 0x80) continue;
      auto left = ids.find(std::string_view(p.text).substr(0, cut));
      auto right = ids.find(std::string_view(p.text).substr(cut));
      if (left != ids.end() && right != ids.end()) {
        merges.push_back({p.score, left->second, right->second});
      }
    }
  }
  std::sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) {
    return std::tie(b.score, a.left, a.right) < std::tie(a.score, b.left, b.right);
  });

  using ojson = nlohmann::ordered_json;
  ojson vocab = ojson::object();
  for (size_t id = 0; id < pieces.size(); ++id) vocab[pieces[id].text] = id;
  ojson merge_list = ojson::array();
  for (const Merge& m : merges) {
    merge_list.push_back(absl::StrCat(pieces[m.left].text, " ", pieces[m.right].text));
  }
  auto special = [](int id, const char* content) {
    return ojson{{"id", id},          {"content", content}, {"single_word", false},
                 {"lstrip", false},   {"rstrip", false},    {"normalized", false},
                 {"special", true}};
  };
  auto string_pattern = [](std::string_view s) { return ojson{{"String", s}}; };
  ojson root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  root["added_tokens"] = ojson::array({special(0, "<unk>"), special(1, "<s>"),
                                       special(2, "</s>")});
  root["normalizer"] = {
      {"type", "Sequence"},
      {"normalizers",
       ojson::array({ojson{{"type", "Prepend"}, {"prepend", kSpacePiece}},
                     ojson{{"type", "Replace"},
                           {"pattern", string_pattern(" ")},
                           {"content", kSpacePiece}}})}};
  root["pre_tokenizer"] = nullptr;
  auto special_ref = [](int type_id) {
    return ojson{{"SpecialToken", {{"id", "<s>"}, {"type_id", type_id}}}};
  };
  auto sequence_ref = [](const char* id, int type_id) {
    return ojson{{"Sequence", {{"id", id}, {"type_id", type_id}}}};
  };
  root["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", ojson::array({special_ref(0), sequence_ref("A", 0)})},
      {"pair", ojson::array({special_ref(0), sequence_ref("A", 0), special_ref(1),
                             sequence_ref("B", 1)})},
      {"special_tokens",
       {{"<s>", {{"id", "<s>"}, {"ids", ojson::array({1})},
                 {"tokens", ojson::array({"<s>"})}}}}}};
  root["decoder"] = {
      {"type", "Sequence"},
      {"decoders",
       ojson::array({ojson{{"type", "Replace"},
                           {"pattern", string_pattern(kSpacePiece)},
                           {"content", " "}},
                     ojson{{"type", "ByteFallback"}}, ojson{{"type", "Fuse"}},
                     ojson{{"type", "Strip"}, {"content", " "}, {"start", 1},
                           {"stop", 0}}})}};
  root["model"] = {{"type", "BPE"},
                   {"dropout", nullptr},
                   {"unk_token", "<unk>"},
                   {"continuing_subword_prefix", nullptr},
                   {"end_of_word_suffix", nullptr},
                   {"fuse_unk", true},
                   {"byte_fallback", true},
                   {"vocab", std::move(vocab)},
                   {"merges", std::move(merge_list)}};
  try {
    return root.dump(1);
  } catch (const nlohmann::json::exception& e) {
    return absl::InternalError(absl::StrCat("serializing tokenizer.json: ", e.what()));
  }
}

absl::Status WriteLlama2cTokenizerJsonFromBytes(std::string_view tokenizer_bin,
                                                const std::string& out_json_path) {
  VPTQ_ASSIGN_OR_RETURN(std::string json, Llama2cTokenizerJsonFromBytes(tokenizer_bin));
  return WriteFileAtomic(out_json_path, json);
}

absl::Status WriteLlama2cTokenizerJson(const std::string& tokenizer_bin_path,
                                       const std::string& out_json_path) {
  VPTQ_ASSIGN_OR_RETURN(std::string bin, ReadFile(tokenizer_bin_path));
  auto json = Llama2cTokenizerJsonFromBytes(bin);
  if (!json.ok()) return Annotate(json.status(), "converting '", tokenizer_bin_path, "'");
  return WriteFileAtomic(out_json_path, *json);
}

}  // namespace vptq
