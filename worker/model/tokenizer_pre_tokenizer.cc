#include "worker/model/tokenizer_pre_tokenizer.h"

#include <unicode/uchar.h>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "worker/model/tokenizer_byte_level.h"
#include "worker/model/tokenizer_json.h"
#include "worker/model/tokenizer_pattern.h"
#include "worker/model/tokenizer_utf8.h"

namespace vptq::tokenizer {

void SplitPiece(const PreToken& piece,
                const std::vector<std::pair<size_t, size_t>>& matches,
                SplitBehavior behavior, bool invert, std::vector<PreToken>* out) {
  struct Range {
    size_t begin, end;
    bool is_match;
  };
  const std::string& text = piece.text;
  // Matches and the gaps between them, covering the whole text.
  std::vector<Range> ranges;
  ranges.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (const auto& [begin, end] : matches) {
    if (begin > prev) ranges.push_back({prev, begin, invert});
    ranges.push_back({begin, end, !invert});
    prev = end;
  }
  if (prev < text.size()) ranges.push_back({prev, text.size(), invert});

  std::vector<std::pair<size_t, size_t>> kept;
  kept.reserve(ranges.size());
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const Range& r : ranges) {
        if (!r.is_match) kept.emplace_back(r.begin, r.end);
      }
      break;
    case SplitBehavior::kIsolated:
      for (const Range& r : ranges) kept.emplace_back(r.begin, r.end);
      break;
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Range& r : ranges) {
        if (r.is_match && !previous_match && !kept.empty()) {
          kept.back().second = r.end;
        } else {
          kept.emplace_back(r.begin, r.end);
        }
        previous_match = r.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;  // walking right to left
      for (auto it = ranges.rbegin(); it != ranges.rend(); ++it) {
        if (it->is_match && !previous_match && !kept.empty()) {
          kept.back().first = it->begin;
        } else {
          kept.emplace_back(it->begin, it->end);
        }
        previous_match = it->is_match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    }
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Range& r : ranges) {
        if (r.is_match == previous_match && !kept.empty()) {
          kept.back().second = r.end;
        } else {
          kept.emplace_back(r.begin, r.end);
        }
        previous_match = r.is_match;
      }
      break;
    }
  }
  for (const auto& [begin, end] : kept) {
    if (end <= begin) continue;
    out->push_back(PreToken{text.substr(begin, end - begin),
                            piece.at_origin && begin == 0});
  }
}

namespace {

// Applies `split` to every piece.
template <typename SplitOne>
void ForEachPiece(std::vector<PreToken>* pieces, SplitOne split) {
  std::vector<PreToken> out;
  out.reserve(pieces->size() * 2);
  for (const PreToken& piece : *pieces) split(piece, &out);
  *pieces = std::move(out);
}

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  void PreTokenize(std::vector<PreToken>* pieces) const override {
    for (const auto& step : steps_) step->PreTokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(SplitPattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void PreTokenize(std::vector<PreToken>* pieces) const override {
    ForEachPiece(pieces, [&](const PreToken& piece, std::vector<PreToken>* out) {
      SplitPiece(piece, pattern_.FindAll(piece.text), behavior_, invert_, out);
    });
  }

 private:
  SplitPattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

// GPT-2's pattern, used when ByteLevel has use_regex.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::optional<SplitPattern> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}
  void PreTokenize(std::vector<PreToken>* pieces) const override {
    ForEachPiece(pieces, [&](const PreToken& piece, std::vector<PreToken>* out) {
      PreToken p = piece;
      if (add_prefix_space_ && (p.text.empty() || p.text[0] != ' ')) {
        p.text.insert(0, 1, ' ');
      }
      const size_t first = out->size();
      if (regex_) {
        SplitPiece(p, regex_->FindAll(p.text), SplitBehavior::kIsolated, false, out);
      } else if (!p.text.empty()) {
        out->push_back(std::move(p));
      }
      for (size_t i = first; i < out->size(); ++i) {
        (*out)[i].text = ByteLevelEncode((*out)[i].text);
      }
    });
  }

 private:
  bool add_prefix_space_;
  std::optional<SplitPattern> regex_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)),
        space_(SplitPattern::Literal(" ")),
        replacement_pattern_(SplitPattern::Literal(replacement_)),
        scheme_(scheme),
        split_(split) {}
  void PreTokenize(std::vector<PreToken>* pieces) const override {
    ForEachPiece(pieces, [&](const PreToken& piece, std::vector<PreToken>* out) {
      PreToken p{space_.ReplaceAll(piece.text, replacement_), piece.at_origin};
      const bool starts_with_replacement = p.text.rfind(replacement_, 0) == 0;
      if (!starts_with_replacement &&
          (scheme_ == PrependScheme::kAlways ||
           (scheme_ == PrependScheme::kFirst && p.at_origin))) {
        p.text.insert(0, replacement_);
      }
      if (split_) {
        SplitPiece(p, replacement_pattern_.FindAll(p.text),
                   SplitBehavior::kMergedWithNext, false, out);
      } else if (!p.text.empty()) {
        out->push_back(std::move(p));
      }
    });
  }

 private:
  std::string replacement_;
  SplitPattern space_;
  SplitPattern replacement_pattern_;
  PrependScheme scheme_;
  bool split_;
};

// Rust's char::is_numeric: general categories Nd, Nl, No.
bool IsNumeric(char32_t cp) {
  switch (u_charType(static_cast<UChar32>(cp))) {
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      return true;
    default:
      return false;
  }
}

// Splits on characters matching `is_delimiter` (one match per character).
template <typename Predicate>
std::vector<std::pair<size_t, size_t>> CharMatches(std::string_view text,
                                                   Predicate is_delimiter) {
  std::vector<std::pair<size_t, size_t>> matches;
  for (size_t i = 0; i < text.size();) {
    const size_t len = Utf8CharLength(text, i);
    if (is_delimiter(DecodeUtf8At(text, i))) matches.emplace_back(i, i + len);
    i += len;
  }
  return matches;
}

class DigitsPreTokenizer final : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual) : individual_(individual) {}
  void PreTokenize(std::vector<PreToken>* pieces) const override {
    ForEachPiece(pieces, [&](const PreToken& piece, std::vector<PreToken>* out) {
      SplitPiece(piece, CharMatches(piece.text, IsNumeric),
                 individual_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous,
                 false, out);
    });
  }

 private:
  bool individual_;
};

class WhitespaceSplitPreTokenizer final : public PreTokenizer {
 public:
  void PreTokenize(std::vector<PreToken>* pieces) const override {
    ForEachPiece(pieces, [&](const PreToken& piece, std::vector<PreToken>* out) {
      SplitPiece(piece, CharMatches(piece.text, IsUnicodeWhitespace),
                 SplitBehavior::kRemoved, false, out);
    });
  }
};

absl::StatusOr<SplitBehavior> ParseBehavior(const nlohmann::json& j,
                                            absl::string_view where) {
  VPTQ_ASSIGN_OR_RETURN(const std::string b, GetString(j, "behavior", where));
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  return absl::InvalidArgumentError(absl::StrCat(
      where, ".behavior: unknown split behavior '", b,
      "' (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or "
      "Contiguous)"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizerFromJson(
    const nlohmann::json& j, absl::string_view where) {
  if (j.is_null()) return std::unique_ptr<PreTokenizer>();
  VPTQ_ASSIGN_OR_RETURN(const std::string type, ComponentType(j, where));
  if (type == "Sequence") {
    auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": Sequence needs an array 'pretokenizers'"));
    }
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < it->size(); ++i) {
      VPTQ_ASSIGN_OR_RETURN(
          auto step, PreTokenizerFromJson(
                         (*it)[i], absl::StrCat(where, ".pretokenizers[", i, "]")));
      if (step) steps.push_back(std::move(step));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  if (type == "Split") {
    auto it = j.find("pattern");
    if (it == j.end()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": Split needs 'pattern'"));
    }
    VPTQ_ASSIGN_OR_RETURN(SplitPattern pattern,
                          SplitPattern::FromJson(*it, absl::StrCat(where, ".pattern")));
    VPTQ_ASSIGN_OR_RETURN(SplitBehavior behavior, ParseBehavior(j, where));
    VPTQ_ASSIGN_OR_RETURN(bool invert, GetBoolOr(j, "invert", where, false));
    return std::make_unique<SplitPreTokenizer>(std::move(pattern), behavior, invert);
  }
  if (type == "ByteLevel") {
    VPTQ_ASSIGN_OR_RETURN(bool add_prefix_space,
                          GetBoolOr(j, "add_prefix_space", where, true));
    VPTQ_ASSIGN_OR_RETURN(bool use_regex, GetBoolOr(j, "use_regex", where, true));
    std::optional<SplitPattern> regex;
    if (use_regex) {
      VPTQ_ASSIGN_OR_RETURN(regex, SplitPattern::Regex(kGpt2Pattern));
    }
    return std::make_unique<ByteLevelPreTokenizer>(add_prefix_space, std::move(regex));
  }
  if (type == "Metaspace") {
    VPTQ_ASSIGN_OR_RETURN(std::string replacement,
                          GetSingleChar(j, "replacement", where, "\xE2\x96\x81"));
    PrependScheme scheme = PrependScheme::kAlways;
    VPTQ_ASSIGN_OR_RETURN(std::optional<std::string> scheme_name,
                          GetOptionalString(j, "prepend_scheme", where));
    if (scheme_name) {
      if (*scheme_name == "always") {
        scheme = PrependScheme::kAlways;
      } else if (*scheme_name == "first") {
        scheme = PrependScheme::kFirst;
      } else if (*scheme_name == "never") {
        scheme = PrependScheme::kNever;
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ".prepend_scheme: unknown value '", *scheme_name,
            "' (expected always, first or never)"));
      }
    } else {
      // Files older than prepend_scheme say add_prefix_space instead.
      VPTQ_ASSIGN_OR_RETURN(bool add_prefix_space,
                            GetBoolOr(j, "add_prefix_space", where, true));
      scheme = add_prefix_space ? PrependScheme::kAlways : PrependScheme::kNever;
    }
    VPTQ_ASSIGN_OR_RETURN(bool split, GetBoolOr(j, "split", where, true));
    return std::make_unique<MetaspacePreTokenizer>(std::move(replacement), scheme, split);
  }
  if (type == "Digits") {
    VPTQ_ASSIGN_OR_RETURN(bool individual,
                          GetBoolOr(j, "individual_digits", where, false));
    return std::make_unique<DigitsPreTokenizer>(individual);
  }
  if (type == "Whitespace") {
    // HF: the matches of \w+|[^\w\s]+ are the pieces; whitespace is dropped.
    VPTQ_ASSIGN_OR_RETURN(SplitPattern words, SplitPattern::Regex(R"(\w+|[^\w\s]+)"));
    return std::make_unique<SplitPreTokenizer>(std::move(words),
                                               SplitBehavior::kRemoved,
                                               /*invert=*/true);
  }
  if (type == "WhitespaceSplit") {
    return std::make_unique<WhitespaceSplitPreTokenizer>();
  }
  return UnsupportedType("pre_tokenizer", type,
                         "Sequence, Split, ByteLevel, Metaspace, Digits, "
                         "Whitespace, WhitespaceSplit");
}

}  // namespace vptq::tokenizer
