#include "worker/model/tokenizer.h"

#include <sys/stat.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "worker/model/tokenizer_added_tokens.h"
#include "worker/model/tokenizer_bpe.h"
#include "worker/model/tokenizer_decoder.h"
#include "worker/model/tokenizer_json.h"
#include "worker/model/tokenizer_normalizer.h"
#include "worker/model/tokenizer_pre_tokenizer.h"
#include "worker/model/tokenizer_utf8.h"

namespace vptq {
namespace {

using tokenizer::AddedToken;

absl::StatusOr<nlohmann::json> ParseJson(std::string_view text, std::string_view source) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed JSON in '", tokenizer::Sv(source), "': ", e.what()));
  }
}

absl::StatusOr<std::vector<AddedToken>> ParseAddedTokens(const nlohmann::json& root) {
  std::vector<AddedToken> tokens;
  auto it = root.find("added_tokens");
  if (it == root.end() || it->is_null()) return tokens;
  if (!it->is_array()) {
    return absl::InvalidArgumentError("added_tokens: expected an array");
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const nlohmann::json& t = (*it)[i];
    const std::string where = absl::StrCat("added_tokens[", i, "]");
    AddedToken token;
    VPTQ_ASSIGN_OR_RETURN(const int64_t id, tokenizer::GetIntOr(t, "id", where, -1));
    if (id < 0 || id > (int64_t{1} << 30)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": missing or out-of-range 'id'"));
    }
    token.id = static_cast<int32_t>(id);
    VPTQ_ASSIGN_OR_RETURN(token.content, tokenizer::GetString(t, "content", where));
    VPTQ_ASSIGN_OR_RETURN(token.single_word,
                          tokenizer::GetBoolOr(t, "single_word", where, false));
    VPTQ_ASSIGN_OR_RETURN(token.lstrip, tokenizer::GetBoolOr(t, "lstrip", where, false));
    VPTQ_ASSIGN_OR_RETURN(token.rstrip, tokenizer::GetBoolOr(t, "rstrip", where, false));
    VPTQ_ASSIGN_OR_RETURN(token.normalized,
                          tokenizer::GetBoolOr(t, "normalized", where, false));
    VPTQ_ASSIGN_OR_RETURN(token.special, tokenizer::GetBoolOr(t, "special", where, false));
    tokens.push_back(std::move(token));
  }
  return tokens;
}

// A bos_token / eos_token field of tokenizer_config.json: "text",
// {"content": "text", ...} or null (the model has none).
struct ConfiguredToken {
  bool specified = false;
  std::optional<std::string> content;
};

ConfiguredToken ConfigToken(const nlohmann::json& config, const char* key) {
  ConfiguredToken out;
  if (!config.is_object()) return out;
  auto it = config.find(key);
  if (it == config.end()) return out;
  out.specified = true;
  if (it->is_string()) {
    out.content = it->get<std::string>();
  } else if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) out.content = c->get<std::string>();
  }
  return out;
}

// The first special token of a TemplateProcessing "single" template (the
// bos the HF post-processor adds), searching Sequence post-processors too.
std::optional<int32_t> TemplateBos(const nlohmann::json& post) {
  if (!post.is_object()) return std::nullopt;
  const std::string type = post.value("type", "");
  if (type == "Sequence") {
    auto it = post.find("processors");
    if (it == post.end() || !it->is_array()) return std::nullopt;
    for (const auto& p : *it) {
      if (auto id = TemplateBos(p)) return id;
    }
    return std::nullopt;
  }
  if (type != "TemplateProcessing") return std::nullopt;
  auto single = post.find("single");
  auto specials = post.find("special_tokens");
  if (single == post.end() || !single->is_array() || single->empty() ||
      specials == post.end() || !specials->is_object()) {
    return std::nullopt;
  }
  const nlohmann::json& first = (*single)[0];
  if (!first.is_object() || !first.contains("SpecialToken")) return std::nullopt;
  const nlohmann::json& st = first["SpecialToken"];
  if (!st.is_object() || !st.contains("id") || !st["id"].is_string()) return std::nullopt;
  auto entry = specials->find(st["id"].get<std::string>());
  if (entry == specials->end() || !entry->is_object()) return std::nullopt;
  auto ids = entry->find("ids");
  if (ids == entry->end() || !ids->is_array() || ids->empty() ||
      !(*ids)[0].is_number_integer()) {
    return std::nullopt;
  }
  return (*ids)[0].get<int32_t>();
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJsonFile(const std::string& path) {
  VPTQ_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::string config_text;
  const std::string config_path = DirName(path) + "/tokenizer_config.json";
  if (FileExists(config_path)) {
    VPTQ_ASSIGN_OR_RETURN(config_text, ReadFile(config_path));
    auto config = ParseJson(config_text, config_path);
    if (!config.ok()) return config.status();
  }
  return FromJsonString(text, path, config_text);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJsonString(
    std::string_view tokenizer_json, std::string_view source,
    std::string_view tokenizer_config_json) {
  VPTQ_ASSIGN_OR_RETURN(const nlohmann::json root, ParseJson(tokenizer_json, source));
  nlohmann::json config;
  if (!tokenizer_config_json.empty()) {
    const std::string config_source =
        absl::StrCat("tokenizer_config.json beside ", tokenizer::Sv(source));
    VPTQ_ASSIGN_OR_RETURN(config, ParseJson(tokenizer_config_json, config_source));
  }
  auto in_file = [&](const absl::Status& s) {
    return Annotate(s, "tokenizer '", tokenizer::Sv(source), "'");
  };
  if (!root.is_object()) {
    return in_file(absl::InvalidArgumentError("expected a JSON object at the top level"));
  }
  auto tok = std::unique_ptr<Tokenizer>(new Tokenizer());

  auto model_it = root.find("model");
  if (model_it == root.end()) {
    return in_file(absl::InvalidArgumentError("missing 'model'"));
  }
  auto model = tokenizer::BpeModel::FromJson(*model_it, "model");
  if (!model.ok()) return in_file(model.status());
  tok->model_ = std::make_unique<tokenizer::BpeModel>(*std::move(model));

  const nlohmann::json null_json;
  auto field = [&](const char* key) -> const nlohmann::json& {
    auto it = root.find(key);
    return it == root.end() ? null_json : *it;
  };
  auto normalizer = tokenizer::NormalizerFromJson(field("normalizer"), "normalizer");
  if (!normalizer.ok()) return in_file(normalizer.status());
  tok->normalizer_ = *std::move(normalizer);
  auto pre = tokenizer::PreTokenizerFromJson(field("pre_tokenizer"), "pre_tokenizer");
  if (!pre.ok()) return in_file(pre.status());
  tok->pre_tokenizer_ = *std::move(pre);
  auto decoder = tokenizer::DecoderFromJson(field("decoder"), "decoder");
  if (!decoder.ok()) return in_file(decoder.status());
  tok->decoder_ = *std::move(decoder);

  auto added = ParseAddedTokens(root);
  if (!added.ok()) return in_file(added.status());
  tok->added_ = std::make_unique<tokenizer::AddedTokenSplitter>(*std::move(added));
  tok->vocab_size_ = tok->model_->id_limit();
  for (const AddedToken& t : tok->added_->tokens()) {
    tok->added_by_id_[t.id] = &t;
    tok->added_by_content_.emplace(t.content, t.id);
    tok->vocab_size_ = std::max(tok->vocab_size_, t.id + 1);
  }

  // bos / eos: tokenizer_config.json, then the post-processor, then names.
  auto resolve = [&](const char* key, std::initializer_list<const char*> names,
                     std::optional<int32_t> from_template) -> std::optional<int32_t> {
    const ConfiguredToken configured = ConfigToken(config, key);
    if (configured.specified) {
      if (!configured.content) return std::nullopt;
      if (auto id = tok->TokenToId(*configured.content)) return id;
    }
    if (from_template) return from_template;
    for (const char* name : names) {
      if (auto id = tok->TokenToId(name)) return id;
    }
    return std::nullopt;
  };
  tok->bos_id_ = resolve("bos_token", {"<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>"},
                         TemplateBos(field("post_processor")));
  tok->eos_id_ = resolve("eos_token", {"</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>"},
                         std::nullopt);
  return tok;
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  if (add_bos && bos_id_) ids.push_back(*bos_id_);
  std::string sanitized;
  if (!tokenizer::IsValidUtf8(text)) {
    sanitized = tokenizer::SanitizeUtf8(text);
    text = sanitized;
  }
  tokenizer::BpeWordCache cache;
  std::vector<tokenizer::PreToken> pieces;
  for (const tokenizer::TextSegment& segment : added_->Split(text)) {
    if (segment.token_id) {
      ids.push_back(*segment.token_id);
      continue;
    }
    std::string normalized = normalizer_ ? normalizer_->Normalize(std::string(segment.text))
                                         : std::string(segment.text);
    if (normalized.empty()) continue;
    pieces.clear();
    pieces.push_back({std::move(normalized), segment.offset == 0});
    if (pre_tokenizer_) pre_tokenizer_->PreTokenize(&pieces);
    for (const tokenizer::PreToken& piece : pieces) model_->Encode(piece.text, &cache, &ids);
  }
  return ids;
}

std::string Tokenizer::Decode(absl::Span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (auto it = added_by_id_.find(id); it != added_by_id_.end()) {
      if (skip_special_tokens && it->second->special) continue;
      tokens.push_back(it->second->content);
    } else if (const std::string* t = model_->IdToToken(id)) {
      tokens.push_back(*t);
    }
  }
  return tokenizer::DecodeTokens(decoder_.get(), std::move(tokens));
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (auto it = added_by_content_.find(tokenizer::Sv(token)); it != added_by_content_.end()) {
    return it->second;
  }
  return model_->TokenToId(token);
}

std::optional<std::string> Tokenizer::IdToToken(int32_t id) const {
  if (auto it = added_by_id_.find(id); it != added_by_id_.end()) return it->second->content;
  if (const std::string* t = model_->IdToToken(id)) return *t;
  return std::nullopt;
}

bool Tokenizer::IsSpecial(int32_t id) const {
  auto it = added_by_id_.find(id);
  return it != added_by_id_.end() && it->second->special;
}

}  // namespace vptq
