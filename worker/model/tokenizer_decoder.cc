#include "worker/model/tokenizer_decoder.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "worker/model/tokenizer_byte_level.h"
#include "worker/model/tokenizer_json.h"
#include "worker/model/tokenizer_pattern.h"
#include "worker/model/tokenizer_utf8.h"

namespace vptq::tokenizer {
namespace {

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
      : steps_(std::move(steps)) {}
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    for (const auto& step : steps_) tokens = step->DecodeChain(std::move(tokens));
    return tokens;
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

// All tokens to bytes through the byte-level map (a token with a character
// outside the map contributes its own UTF-8 bytes), then lossy UTF-8.
class ByteLevelDecoder final : public Decoder {
 public:
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    std::string bytes;
    std::string token_bytes;
    for (const std::string& token : tokens) {
      token_bytes.clear();
      bool all_mapped = true;
      for (size_t i = 0; i < token.size(); i += Utf8CharLength(token, i)) {
        const auto b = ByteLevelDecodeChar(DecodeUtf8At(token, i));
        if (!b) {
          all_mapped = false;
          break;
        }
        token_bytes.push_back(static_cast<char>(*b));
      }
      bytes.append(all_mapped ? token_bytes : token);
    }
    return {SanitizeUtf8(bytes)};
  }
};

// Replacement characters become spaces; in the first token they are dropped
// unless the prefix scheme is "never" (as HF's Metaspace decoder does).
class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first)
      : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      for (size_t pos = 0; pos < t.size();) {
        if (t.compare(pos, replacement_.size(), replacement_) == 0) {
          if (!(i == 0 && strip_first_)) out.push_back(' ');
          pos += replacement_.size();
        } else {
          out.push_back(t[pos++]);
        }
      }
      tokens[i] = std::move(out);
    }
    return tokens;
  }

 private:
  std::string replacement_;
  bool strip_first_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(SplitPattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    for (std::string& t : tokens) t = pattern_.ReplaceAll(t, content_);
    return tokens;
  }

 private:
  SplitPattern pattern_;
  std::string content_;
};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Runs of <0xNN> tokens become the text of their bytes; a run that is not
// valid UTF-8 becomes one U+FFFD per byte (HF's ByteFallback).
class ByteFallbackDecoder final : public Decoder {
 public:
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (IsValidUtf8(pending)) {
        out.push_back(std::move(pending));
      } else {
        for (size_t i = 0; i < pending.size(); ++i) out.emplace_back(kReplacementChar);
      }
      pending.clear();
    };
    for (std::string& t : tokens) {
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
          HexValue(t[3]) >= 0 && HexValue(t[4]) >= 0) {
        pending.push_back(static_cast<char>(HexValue(t[3]) * 16 + HexValue(t[4])));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    return out;
  }
};

class FuseDecoder final : public Decoder {
 public:
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    return {absl::StrJoin(tokens, "")};
  }
};

// Removes up to `start` leading and `stop` trailing copies of `content`
// from every token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, int64_t start, int64_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    const size_t n = content_.size();
    for (std::string& t : tokens) {
      size_t begin = 0, end = t.size();
      for (int64_t k = 0; k < start_ && end - begin >= n &&
                          t.compare(begin, n, content_) == 0;
           ++k) {
        begin += n;
      }
      for (int64_t k = 0; k < stop_ && end - begin >= n &&
                          t.compare(end - n, n, content_) == 0;
           ++k) {
        end -= n;
      }
      t = t.substr(begin, end - begin);
    }
    return tokens;
  }

 private:
  std::string content_;
  int64_t start_, stop_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Decoder>> DecoderFromJson(const nlohmann::json& j,
                                                         absl::string_view where) {
  if (j.is_null()) return std::unique_ptr<Decoder>();
  VPTQ_ASSIGN_OR_RETURN(const std::string type, ComponentType(j, where));
  if (type == "Sequence") {
    auto it = j.find("decoders");
    if (it == j.end() || !it->is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": Sequence needs an array 'decoders'"));
    }
    std::vector<std::unique_ptr<Decoder>> steps;
    for (size_t i = 0; i < it->size(); ++i) {
      VPTQ_ASSIGN_OR_RETURN(
          auto step, DecoderFromJson((*it)[i], absl::StrCat(where, ".decoders[", i, "]")));
      if (step) steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    VPTQ_ASSIGN_OR_RETURN(std::string replacement,
                          GetSingleChar(j, "replacement", where, "\xE2\x96\x81"));
    bool strip_first = true;
    VPTQ_ASSIGN_OR_RETURN(std::optional<std::string> scheme,
                          GetOptionalString(j, "prepend_scheme", where));
    if (scheme) {
      strip_first = *scheme != "never";
    } else {
      VPTQ_ASSIGN_OR_RETURN(strip_first, GetBoolOr(j, "add_prefix_space", where, true));
    }
    return std::make_unique<MetaspaceDecoder>(std::move(replacement), strip_first);
  }
  if (type == "Replace") {
    auto it = j.find("pattern");
    if (it == j.end()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": Replace needs 'pattern'"));
    }
    VPTQ_ASSIGN_OR_RETURN(SplitPattern pattern,
                          SplitPattern::FromJson(*it, absl::StrCat(where, ".pattern")));
    VPTQ_ASSIGN_OR_RETURN(std::string content, GetString(j, "content", where));
    return std::make_unique<ReplaceDecoder>(std::move(pattern), std::move(content));
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    VPTQ_ASSIGN_OR_RETURN(std::string content, GetSingleChar(j, "content", where, " "));
    VPTQ_ASSIGN_OR_RETURN(int64_t start, GetIntOr(j, "start", where, 0));
    VPTQ_ASSIGN_OR_RETURN(int64_t stop, GetIntOr(j, "stop", where, 0));
    return std::make_unique<StripDecoder>(std::move(content), start, stop);
  }
  return UnsupportedType("decoder", type,
                         "Sequence, ByteLevel, Metaspace, Replace, ByteFallback, "
                         "Fuse, Strip");
}

std::string DecodeTokens(const Decoder* decoder, std::vector<std::string> tokens) {
  if (decoder == nullptr) return absl::StrJoin(tokens, " ");
  return absl::StrJoin(decoder->DecodeChain(std::move(tokens)), "");
}

}  // namespace vptq::tokenizer
