#include "worker/pipeline/calibration.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/hf_config.h"
#include "common/status.h"
#include "worker/model/tokenizer.h"

namespace vptq::pipeline {
namespace {

namespace fs = std::filesystem;

constexpr char kSuffixes[] = "*.txt, *.tokens or *.tokens.json";

bool IsTokensJson(const std::string& path) { return absl::EndsWith(path, ".tokens.json"); }
bool IsTokens(const std::string& path) { return absl::EndsWith(path, ".tokens"); }
bool IsSupported(const std::string& path) {
  return absl::EndsWith(path, ".txt") || IsTokens(path) || IsTokensJson(path);
}

// SplitMix64: tiny, fully specified, so draws repeat on every platform.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound), bound > 0 (rejection sampling, no modulo bias).
  uint64_t Below(uint64_t bound) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do {
      x = Next();
    } while (x >= limit);
    return x % bound;
  }

 private:
  uint64_t state_;
};

absl::Status CheckIds(const std::vector<int32_t>& ids, int64_t vocab, const std::string& path) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": token id ", ids[i], " at position ",
                                                     i, " is outside the vocabulary [0, ", vocab,
                                                     ") of the model"));
    }
  }
  return absl::OkStatus();
}

// Loads the tokenizer on first use: pre-tokenized sets never need it.
class LazyTokenizer {
 public:
  explicit LazyTokenizer(std::string model_dir) : model_dir_(std::move(model_dir)) {}
  absl::StatusOr<const Tokenizer*> Get() {
    if (!tokenizer_) {
      const std::string path = model_dir_ + "/tokenizer.json";
      absl::StatusOr<std::unique_ptr<Tokenizer>> t = Tokenizer::FromJsonFile(path);
      if (!t.ok()) {
        return Annotate(t.status(), "text calibration/eval data needs the model's tokenizer");
      }
      tokenizer_ = *std::move(t);
    }
    return tokenizer_.get();
  }
  bool HasTokenizerFile() const {
    std::error_code ec;
    return fs::exists(model_dir_ + "/tokenizer.json", ec);
  }

 private:
  std::string model_dir_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

}  // namespace

TokenSequences TokenSequences::Slice(int64_t begin, int64_t end) const {
  TokenSequences out;
  out.sequence_length = sequence_length;
  out.stream_tokens = stream_tokens;
  out.documents_read = documents_read;
  begin = std::clamp<int64_t>(begin, 0, count());
  end = std::clamp<int64_t>(end, begin, count());
  out.ids.assign(ids.begin() + begin * sequence_length, ids.begin() + end * sequence_length);
  return out;
}

absl::StatusOr<std::vector<std::string>> ListTextFiles(const std::vector<std::string>& paths) {
  if (paths.empty()) {
    return absl::InvalidArgumentError("no text paths given (text_paths is empty)");
  }
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    std::error_code ec;
    const fs::file_status st = fs::status(p, ec);
    if (ec || !fs::exists(st)) {
      return absl::InvalidArgumentError(absl::StrCat("text path ", p, " does not exist"));
    }
    if (fs::is_directory(st)) {
      std::vector<std::string> found;
      for (const fs::directory_entry& e : fs::directory_iterator(p, ec)) {
        const std::string name = e.path().filename().string();
        if (name.empty() || name[0] == '.') continue;
        std::error_code ec2;
        if (!e.is_regular_file(ec2) || !IsSupported(name)) continue;
        found.push_back(e.path().string());
      }
      if (ec) return ErrnoStatus(ec.value(), "list directory", p);
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(st)) {
      files.push_back(p);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("text path ", p, " is neither a regular file nor a directory"));
    }
  }
  if (files.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no ", kSuffixes, " files found in the text paths (first: ", paths.front(),
                     ")"));
  }
  return files;
}

absl::StatusOr<std::vector<std::vector<int32_t>>> ReadTokenFile(const std::string& path) {
  VPTQ_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  std::vector<std::vector<int32_t>> docs;
  if (IsTokensJson(path)) {
    nlohmann::json j = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": expected a JSON array of arrays of token ids"));
    }
    for (size_t d = 0; d < j.size(); ++d) {
      if (!j[d].is_array()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": element ", d, " is not an array of token ids"));
      }
      std::vector<int32_t> doc;
      doc.reserve(j[d].size());
      for (size_t i = 0; i < j[d].size(); ++i) {
        const nlohmann::json& v = j[d][i];
        if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
          return absl::InvalidArgumentError(absl::StrCat(
              path, ": document ", d, " position ", i, " is not a non-negative int32 token id"));
        }
        doc.push_back(static_cast<int32_t>(v.get<int64_t>()));
      }
      docs.push_back(std::move(doc));
    }
    return docs;
  }
  if (bytes.size() % 4 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": a .tokens file holds little-endian int32 ids, but its size (", bytes.size(),
        " bytes) is not a multiple of 4"));
  }
  std::vector<int32_t> ids(bytes.size() / 4);
  if (!ids.empty()) std::memcpy(ids.data(), bytes.data(), bytes.size());
  docs.push_back(std::move(ids));
  return docs;
}

absl::Status WriteTokenFile(const std::string& path, absl::Span<const int32_t> ids) {
  return WriteFileAtomic(
      path, std::string_view(reinterpret_cast<const char*>(ids.data()), ids.size() * 4));
}

absl::StatusOr<TokenSequences> BuildTokenSequences(const std::string& model_dir,
                                                   const TextSetOptions& o) {
  if (o.num_sequences < 1 || o.sequence_length < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "need at least 1 sequence of at least 2 tokens (got num_sequences ", o.num_sequences,
        ", sequence_length ", o.sequence_length, ")"));
  }
  VPTQ_ASSIGN_OR_RETURN(HfModelConfig config, ReadHfConfig(model_dir));
  if (o.sequence_length > config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sequence_length ", o.sequence_length, " exceeds the model's max_position_embeddings (",
        config.max_position_embeddings, "); use at most that"));
  }
  VPTQ_ASSIGN_OR_RETURN(std::vector<std::string> files, ListTextFiles(o.paths));

  LazyTokenizer tokenizer(model_dir);
  std::optional<int32_t> bos;
  if (tokenizer.HasTokenizerFile()) {
    VPTQ_ASSIGN_OR_RETURN(const Tokenizer* t, tokenizer.Get());
    bos = t->bos_id();
  } else if (config.bos_token_id) {
    bos = static_cast<int32_t>(*config.bos_token_id);
  }
  const int64_t b = bos ? 1 : 0;
  const int64_t window = o.sequence_length - b;

  SplitMix64 rng(o.seed);
  for (size_t i = files.size(); i > 1; --i) {
    std::swap(files[i - 1], files[rng.Below(i)]);
  }

  const int64_t want = kOversample * o.num_sequences * window;
  std::vector<int32_t> stream;
  int64_t docs_read = 0;
  for (const std::string& f : files) {
    if (static_cast<int64_t>(stream.size()) >= want) break;
    if (IsTokens(f) || IsTokensJson(f)) {
      VPTQ_ASSIGN_OR_RETURN(auto docs, ReadTokenFile(f));
      for (const auto& d : docs) {
        VPTQ_RETURN_IF_ERROR(CheckIds(d, config.vocab_size, f));
        stream.insert(stream.end(), d.begin(), d.end());
        ++docs_read;
      }
    } else {
      VPTQ_ASSIGN_OR_RETURN(std::string text, ReadFile(f));
      VPTQ_ASSIGN_OR_RETURN(const Tokenizer* t, tokenizer.Get());
      std::vector<int32_t> ids = t->Encode(text, /*add_bos=*/false);
      VPTQ_RETURN_IF_ERROR(CheckIds(ids, config.vocab_size, f));
      stream.insert(stream.end(), ids.begin(), ids.end());
      ++docs_read;
    }
  }

  const int64_t total = static_cast<int64_t>(stream.size());
  const int64_t windows = total / window;
  int64_t n = o.num_sequences;
  if (windows < n) {
    if (!o.allow_fewer || windows < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the text holds ", total, " tokens (", files.size(), " files: ", files.front(),
          files.size() > 1 ? ", ..." : "", "); ", n, " sequences of ", o.sequence_length,
          " tokens need ", n * window, b ? " (plus a BOS each)" : "",
          "; add text or lower num_sequences / sequence_length"));
    }
    n = windows;
  }

  // Partial Fisher-Yates over window indices: the first n are the draw.
  std::vector<int64_t> order(static_cast<size_t>(windows));
  for (int64_t i = 0; i < windows; ++i) order[static_cast<size_t>(i)] = i;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = i + static_cast<int64_t>(rng.Below(static_cast<uint64_t>(windows - i)));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  order.resize(static_cast<size_t>(n));
  std::sort(order.begin(), order.end());

  TokenSequences out;
  out.sequence_length = o.sequence_length;
  out.stream_tokens = total;
  out.documents_read = docs_read;
  out.ids.reserve(static_cast<size_t>(n * o.sequence_length));
  for (int64_t w : order) {
    if (bos) out.ids.push_back(*bos);
    const auto begin = stream.begin() + w * window;
    out.ids.insert(out.ids.end(), begin, begin + window);
  }
  return out;
}

std::pair<int64_t, int64_t> ShardRange(int64_t n, int64_t shard, int64_t num_shards) {
  if (num_shards < 1 || shard < 0 || shard >= num_shards) return {0, 0};
  return {shard * n / num_shards, (shard + 1) * n / num_shards};
}

int64_t DefaultSequenceLength(int64_t max_position_embeddings) {
  return std::min<int64_t>(512, max_position_embeddings > 0 ? max_position_embeddings : 512);
}

}  // namespace vptq::pipeline
