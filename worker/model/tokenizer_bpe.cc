#include "worker/model/tokenizer_bpe.h"

#include <queue>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "worker/model/tokenizer_json.h"
#include "worker/model/tokenizer_utf8.h"

namespace vptq::tokenizer {

// Words longer than this are not cached (as HF's MAX_LENGTH): they are rare
// and would make the cache large.
constexpr size_t kMaxCachedWordBytes = 256;

const std::vector<int32_t>* BpeWordCache::Find(std::string_view word) const {
  auto it = entries_.find(Sv(word));
  return it == entries_.end() ? nullptr : &it->second;
}

void BpeWordCache::Insert(std::string_view word, std::vector<int32_t> ids) {
  if (word.size() > kMaxCachedWordBytes || entries_.size() >= max_entries_) return;
  entries_.try_emplace(std::string(word), std::move(ids));
}

absl::StatusOr<BpeModel> BpeModel::Create(
    const std::vector<std::pair<std::string, int32_t>>& vocab,
    const std::vector<std::pair<std::string, std::string>>& merges,
    Options options) {
  BpeModel m;
  m.options_ = std::move(options);
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab) {
    if (id < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("vocab: token '", token, "' has negative id ", id));
    }
    max_id = std::max(max_id, id);
  }
  m.id_to_token_.resize(static_cast<size_t>(max_id + 1));
  m.has_id_.assign(static_cast<size_t>(max_id + 1), false);
  m.token_to_id_.reserve(vocab.size());
  for (const auto& [token, id] : vocab) {
    if (!m.token_to_id_.emplace(token, id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("vocab: token '", token, "' appears twice"));
    }
    m.id_to_token_[id] = token;
    m.has_id_[id] = true;
  }
  if (m.options_.unk_token) {
    // HF fails only when an unknown character shows up; here such characters
    // are then dropped, as with no unk token.
    m.unk_id_ = m.TokenToId(*m.options_.unk_token);
  }
  m.byte_ids_.assign(256, -1);
  for (int b = 0; b < 256; ++b) {
    if (auto id = m.TokenToId(absl::StrFormat("<0x%02X>", b))) m.byte_ids_[b] = *id;
  }
  const std::string& prefix = m.options_.continuing_subword_prefix;
  m.merges_.reserve(merges.size());
  m.in_some_merge_.assign(m.id_to_token_.size(), false);
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    auto left_id = m.TokenToId(left);
    auto right_id = m.TokenToId(right);
    std::string_view right_body = right;
    if (!prefix.empty() && right_body.substr(0, prefix.size()) == prefix) {
      right_body.remove_prefix(prefix.size());
    }
    auto new_id = m.TokenToId(absl::StrCat(left, Sv(right_body)));
    if (!left_id || !right_id || !new_id) {
      return absl::InvalidArgumentError(absl::StrCat(
          "merges[", rank, "] '", left, " ", right, "': ",
          !left_id ? "left part" : !right_id ? "right part" : "merged token",
          " is not in the vocabulary"));
    }
    m.in_some_merge_[*left_id] = true;
    m.in_some_merge_[*right_id] = true;
    // A repeated pair keeps its last rank, as HF's map does.
    m.merges_.insert_or_assign(PairKey(*left_id, *right_id),
                               BpeMerge{static_cast<int32_t>(rank), *new_id});
  }
  return m;
}

absl::StatusOr<BpeModel> BpeModel::FromJson(const nlohmann::json& model,
                                            absl::string_view where) {
  VPTQ_ASSIGN_OR_RETURN(std::string type, ComponentType(model, where));
  if (type != "BPE") {
    return UnsupportedType("model", type, "BPE");
  }
  if (auto it = model.find("dropout");
      it != model.end() && !it->is_null() &&
      !(it->is_number() && it->get<double>() == 0.0)) {
    return absl::FailedPreconditionError(absl::StrCat(
        where, ".dropout: BPE dropout makes encoding random; set it to null"));
  }
  Options options;
  VPTQ_ASSIGN_OR_RETURN(options.unk_token, GetOptionalString(model, "unk_token", where));
  VPTQ_ASSIGN_OR_RETURN(options.byte_fallback,
                        GetBoolOr(model, "byte_fallback", where, false));
  VPTQ_ASSIGN_OR_RETURN(options.fuse_unk, GetBoolOr(model, "fuse_unk", where, false));
  VPTQ_ASSIGN_OR_RETURN(options.ignore_merges,
                        GetBoolOr(model, "ignore_merges", where, false));
  VPTQ_ASSIGN_OR_RETURN(options.continuing_subword_prefix,
                        GetStringOr(model, "continuing_subword_prefix", where, ""));
  VPTQ_ASSIGN_OR_RETURN(options.end_of_word_suffix,
                        GetStringOr(model, "end_of_word_suffix", where, ""));

  auto vocab_it = model.find("vocab");
  if (vocab_it == model.end() || !vocab_it->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".vocab: expected an object {token: id}"));
  }
  std::vector<std::pair<std::string, int32_t>> vocab;
  vocab.reserve(vocab_it->size());
  for (auto it = vocab_it->begin(); it != vocab_it->end(); ++it) {
    if (!it.value().is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".vocab['", it.key(), "']: expected an integer id"));
    }
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id > (int64_t{1} << 30)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".vocab['", it.key(), "']: id ", id, " out of range"));
    }
    vocab.emplace_back(it.key(), static_cast<int32_t>(id));
  }

  std::vector<std::pair<std::string, std::string>> merges;
  if (auto merges_it = model.find("merges");
      merges_it != model.end() && !merges_it->is_null()) {
    if (!merges_it->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".merges: expected an array"));
    }
    merges.reserve(merges_it->size());
    for (size_t i = 0; i < merges_it->size(); ++i) {
      const nlohmann::json& m = (*merges_it)[i];
      if (m.is_string()) {
        const std::string& s = m.get_ref<const std::string&>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
          return absl::InvalidArgumentError(absl::StrCat(
              where, ".merges[", i, "]: expected \"left right\", got '", s, "'"));
        }
        merges.emplace_back(s.substr(0, space), s.substr(space + 1));
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ".merges[", i, "]: expected a string or a pair of strings"));
      }
    }
  }
  auto created = Create(vocab, merges, std::move(options));
  if (!created.ok()) return Annotate(created.status(), where);
  return created;
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  auto it = token_to_id_.find(Sv(token));
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !has_id_[id]) {
    return nullptr;
  }
  return &id_to_token_[id];
}

const BpeMerge* BpeModel::FindMerge(int32_t left, int32_t right) const {
  auto it = merges_.find(PairKey(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

std::vector<int32_t> BpeModel::InitialSymbols(std::string_view word) const {
  std::vector<int32_t> symbols;
  symbols.reserve(word.size());
  int32_t pending_unk = -1;  // an unk waiting to be fused or flushed; -1: none
  std::string piece;
  for (size_t i = 0; i < word.size();) {
    const size_t len = Utf8CharLength(word, i);
    const std::string_view ch = word.substr(i, std::min(len, word.size() - i));
    const bool first = i == 0;
    i += len;
    const bool last = i >= word.size();
    std::string_view lookup = ch;
    if ((!first && !options_.continuing_subword_prefix.empty()) ||
        (last && !options_.end_of_word_suffix.empty())) {
      piece.clear();
      if (!first) piece.append(options_.continuing_subword_prefix);
      piece.append(ch);
      if (last) piece.append(options_.end_of_word_suffix);
      lookup = piece;
    }
    const std::optional<int32_t> id = TokenToId(lookup);
    if (id) {
      if (pending_unk >= 0) symbols.push_back(pending_unk);
      pending_unk = -1;
      symbols.push_back(*id);
      continue;
    }
    if (options_.byte_fallback) {
      const std::string_view bytes = lookup;
      bool all_bytes = true;
      for (char c : bytes) all_bytes &= byte_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all_bytes) {
        // Like HF, byte tokens go in without flushing a pending unk first.
        for (char c : bytes) symbols.push_back(byte_ids_[static_cast<unsigned char>(c)]);
        continue;
      }
    }
    if (unk_id_) {
      if (pending_unk >= 0 && !options_.fuse_unk) symbols.push_back(pending_unk);
      pending_unk = *unk_id_;
    }
  }
  if (pending_unk >= 0) symbols.push_back(pending_unk);
  return symbols;
}

void BpeModel::Encode(std::string_view word, BpeWordCache* cache,
                      std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    if (auto id = TokenToId(word)) {
      out->push_back(*id);
      return;
    }
  }
  if (cache != nullptr) {
    if (const std::vector<int32_t>* hit = cache->Find(word)) {
      out->insert(out->end(), hit->begin(), hit->end());
      return;
    }
  }
  std::vector<int32_t> ids;
  MergeSymbols(InitialSymbols(word), &ids);
  out->insert(out->end(), ids.begin(), ids.end());
  if (cache != nullptr) cache->Insert(word, std::move(ids));
}

void BpeModel::MergeSymbols(const std::vector<int32_t>& symbols,
                            std::vector<int32_t>* out) const {
  auto is_barrier = [&](int32_t id) {
    return static_cast<size_t>(id) >= in_some_merge_.size() || !in_some_merge_[id];
  };
  size_t begin = 0;
  for (size_t i = 0; i <= symbols.size(); ++i) {
    if (i < symbols.size() && !is_barrier(symbols[i])) continue;
    if (i > begin) {
      const std::vector<int32_t> part = ApplyMerges(
          *this, std::vector<int32_t>(symbols.begin() + static_cast<std::ptrdiff_t>(begin),
                                      symbols.begin() + static_cast<std::ptrdiff_t>(i)));
      out->insert(out->end(), part.begin(), part.end());
    }
    if (i < symbols.size()) out->push_back(symbols[i]);
    begin = i + 1;
  }
}

std::vector<int32_t> ApplyMerges(const BpeModel& model, std::vector<int32_t> symbols) {
  const int n = static_cast<int>(symbols.size());
  if (n < 2) return symbols;
  struct Symbol {
    int32_t id;
    int prev, next;  // -1 / n at the ends
    bool removed;
  };
  std::vector<Symbol> sym(n);
  for (int i = 0; i < n; ++i) sym[i] = Symbol{symbols[i], i - 1, i + 1, false};

  struct Candidate {
    int32_t rank;
    int pos;  // index of the left symbol
    int32_t new_id;
    // std::priority_queue is a max-heap: "less" means lower priority.
    bool operator<(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<Candidate> initial;
  initial.reserve(n);
  for (int i = 0; i + 1 < n; ++i) {
    if (const BpeMerge* m = model.FindMerge(sym[i].id, sym[i + 1].id)) {
      initial.push_back({m->rank, i, m->new_id});
    }
  }
  std::priority_queue<Candidate> queue(std::less<Candidate>(), std::move(initial));
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = sym[top.pos];
    if (left.removed || left.next >= n) continue;
    Symbol& right = sym[left.next];
    // Skip entries that no longer describe the current pair.
    const BpeMerge* current = model.FindMerge(left.id, right.id);
    if (current == nullptr || current->new_id != top.new_id) continue;

    left.id = top.new_id;
    right.removed = true;
    left.next = right.next;
    if (right.next < n) sym[right.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const BpeMerge* m = model.FindMerge(sym[left.prev].id, left.id)) {
        queue.push({m->rank, left.prev, m->new_id});
      }
    }
    if (left.next < n) {
      if (const BpeMerge* m = model.FindMerge(left.id, sym[left.next].id)) {
        queue.push({m->rank, top.pos, m->new_id});
      }
    }
  }
  std::vector<int32_t> out;
  out.reserve(n);
  for (int i = 0; i < n; i = sym[i].next) out.push_back(sym[i].id);
  return out;
}

std::vector<int32_t> ApplyMergesReference(const BpeModel& model,
                                          std::vector<int32_t> symbols) {
  while (symbols.size() >= 2) {
    size_t best = symbols.size();
    const BpeMerge* best_merge = nullptr;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      const BpeMerge* m = model.FindMerge(symbols[i], symbols[i + 1]);
      if (m != nullptr && (best_merge == nullptr || m->rank < best_merge->rank)) {
        best = i;
        best_merge = m;
      }
    }
    if (best_merge == nullptr) break;
    symbols[best] = best_merge->new_id;
    symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
  return symbols;
}

}  // namespace vptq::tokenizer
