#include "worker/model/tokenizer_normalizer.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "worker/model/tokenizer_json.h"
#include "worker/model/tokenizer_pattern.h"
#include "worker/model/tokenizer_utf8.h"

namespace vptq::tokenizer {
namespace {

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  std::string Normalize(std::string text) const override {
    for (const auto& step : steps_) text = step->Normalize(std::move(text));
    return text;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

// Prepends only to non-empty text, as HF's Prepend does.
class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string Normalize(std::string text) const override {
    if (text.empty()) return text;
    return prefix_ + text;
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(SplitPattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::string Normalize(std::string text) const override {
    return pattern_.ReplaceAll(text, content_);
  }

 private:
  SplitPattern pattern_;
  std::string content_;
};

// Unicode normalization forms via ICU (instances are process-wide singletons
// owned by ICU and thread-safe).
class UnicodeFormNormalizer final : public Normalizer {
 public:
  explicit UnicodeFormNormalizer(const icu::Normalizer2* form) : form_(form) {}
  std::string Normalize(std::string text) const override {
    UErrorCode status = U_ZERO_ERROR;
    const icu::UnicodeString in = icu::UnicodeString::fromUTF8(text);
    if (form_->isNormalized(in, status) && U_SUCCESS(status)) return text;
    status = U_ZERO_ERROR;
    const icu::UnicodeString out = form_->normalize(in, status);
    if (U_FAILURE(status)) return text;
    std::string result;
    out.toUTF8String(result);
    return result;
  }

 private:
  const icu::Normalizer2* form_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  std::string Normalize(std::string text) const override {
    icu::UnicodeString s = icu::UnicodeString::fromUTF8(text);
    s.toLower(icu::Locale::getRoot());
    std::string out;
    s.toUTF8String(out);
    return out;
  }
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  std::string Normalize(std::string text) const override {
    size_t begin = 0, end = text.size();
    if (left_) {
      while (begin < end && IsUnicodeWhitespace(DecodeUtf8At(text, begin))) {
        begin += Utf8CharLength(text, begin);
      }
    }
    if (right_) {
      while (end > begin) {
        size_t last = end - 1;
        while (last > begin && (static_cast<unsigned char>(text[last]) & 0xC0) == 0x80) {
          --last;
        }
        if (!IsUnicodeWhitespace(DecodeUtf8At(text, last))) break;
        end = last;
      }
    }
    return text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

absl::StatusOr<std::unique_ptr<Normalizer>> UnicodeForm(
    const icu::Normalizer2* (*get)(UErrorCode&), absl::string_view name) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* form = get(status);
  if (U_FAILURE(status) || form == nullptr) {
    return absl::InternalError(
        absl::StrCat("ICU has no ", name, " data: ", u_errorName(status)));
  }
  return std::make_unique<UnicodeFormNormalizer>(form);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Normalizer>> NormalizerFromJson(
    const nlohmann::json& j, absl::string_view where) {
  if (j.is_null()) return std::unique_ptr<Normalizer>();
  VPTQ_ASSIGN_OR_RETURN(const std::string type, ComponentType(j, where));
  if (type == "Sequence") {
    auto it = j.find("normalizers");
    if (it == j.end() || !it->is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": Sequence needs an array 'normalizers'"));
    }
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < it->size(); ++i) {
      VPTQ_ASSIGN_OR_RETURN(
          auto step,
          NormalizerFromJson((*it)[i], absl::StrCat(where, ".normalizers[", i, "]")));
      if (step) steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  if (type == "Prepend") {
    VPTQ_ASSIGN_OR_RETURN(std::string prefix, GetString(j, "prepend", where));
    return std::make_unique<PrependNormalizer>(std::move(prefix));
  }
  if (type == "Replace") {
    auto it = j.find("pattern");
    if (it == j.end()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": Replace needs 'pattern'"));
    }
    VPTQ_ASSIGN_OR_RETURN(SplitPattern pattern,
                          SplitPattern::FromJson(*it, absl::StrCat(where, ".pattern")));
    VPTQ_ASSIGN_OR_RETURN(std::string content, GetString(j, "content", where));
    return std::make_unique<ReplaceNormalizer>(std::move(pattern), std::move(content));
  }
  if (type == "NFC") return UnicodeForm(&icu::Normalizer2::getNFCInstance, type);
  if (type == "NFD") return UnicodeForm(&icu::Normalizer2::getNFDInstance, type);
  if (type == "NFKC") return UnicodeForm(&icu::Normalizer2::getNFKCInstance, type);
  if (type == "NFKD") return UnicodeForm(&icu::Normalizer2::getNFKDInstance, type);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Strip") {
    VPTQ_ASSIGN_OR_RETURN(bool left, GetBoolOr(j, "strip_left", where, true));
    VPTQ_ASSIGN_OR_RETURN(bool right, GetBoolOr(j, "strip_right", where, true));
    return std::make_unique<StripNormalizer>(left, right);
  }
  return UnsupportedType("normalizer", type,
                         "Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, "
                         "Lowercase, Strip");
}

}  // namespace vptq::tokenizer
