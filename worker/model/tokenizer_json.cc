#include "worker/model/tokenizer_json.h"

#include "worker/model/tokenizer_utf8.h"

namespace vptq::tokenizer {
namespace {

const nlohmann::json* Find(const nlohmann::json& j, absl::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(std::string(key.data(), key.size()));
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::Status WrongType(absl::string_view key, absl::string_view where,
                       absl::string_view expected, const nlohmann::json& got) {
  return absl::InvalidArgumentError(absl::StrCat(
      where, ".", key, ": expected ", expected, ", got ", got.type_name()));
}

}  // namespace

absl::StatusOr<std::string> ComponentType(const nlohmann::json& j,
                                          absl::string_view where) {
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": expected an object, got ", j.type_name()));
  }
  const nlohmann::json* t = Find(j, "type");
  if (t == nullptr || !t->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": missing string field 'type'"));
  }
  return t->get<std::string>();
}

absl::StatusOr<std::string> GetString(const nlohmann::json& j, absl::string_view key,
                                      absl::string_view where) {
  const nlohmann::json* v = Find(j, key);
  if (v == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": missing string field '", key, "'"));
  }
  if (!v->is_string()) return WrongType(key, where, "a string", *v);
  return v->get<std::string>();
}

absl::StatusOr<std::string> GetStringOr(const nlohmann::json& j, absl::string_view key,
                                        absl::string_view where,
                                        absl::string_view fallback) {
  const nlohmann::json* v = Find(j, key);
  if (v == nullptr) return std::string(fallback.data(), fallback.size());
  if (!v->is_string()) return WrongType(key, where, "a string", *v);
  return v->get<std::string>();
}

absl::StatusOr<bool> GetBoolOr(const nlohmann::json& j, absl::string_view key,
                               absl::string_view where, bool fallback) {
  const nlohmann::json* v = Find(j, key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) return WrongType(key, where, "a boolean", *v);
  return v->get<bool>();
}

absl::StatusOr<int64_t> GetIntOr(const nlohmann::json& j, absl::string_view key,
                                 absl::string_view where, int64_t fallback) {
  const nlohmann::json* v = Find(j, key);
  if (v == nullptr) return fallback;
  if (!v->is_number_integer()) return WrongType(key, where, "an integer", *v);
  return v->get<int64_t>();
}

absl::StatusOr<std::optional<std::string>> GetOptionalString(
    const nlohmann::json& j, absl::string_view key, absl::string_view where) {
  const nlohmann::json* v = Find(j, key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) return WrongType(key, where, "a string or null", *v);
  return std::optional<std::string>(v->get<std::string>());
}

absl::StatusOr<std::string> GetSingleChar(const nlohmann::json& j,
                                          absl::string_view key,
                                          absl::string_view where,
                                          absl::string_view fallback) {
  auto s = GetStringOr(j, key, where, fallback);
  if (!s.ok()) return s.status();
  if (s->empty() || !IsValidUtf8(*s) || Utf8CharLength(*s, 0) != s->size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ".", key, ": expected exactly one character, got '", *s, "'"));
  }
  return s;
}

}  // namespace vptq::tokenizer
