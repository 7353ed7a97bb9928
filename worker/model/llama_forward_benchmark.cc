// Forward-pass speed on the default model (stories15M): one JSON line per
// case on stdout, medians over repeats.
//   llama_forward_benchmark [--len 256] [--batch 1] [--repeats 5] [--threads 2]
// Cases: "streamed" (ForwardLogits: every layer loaded from disk per call, as
// calibration and eval run) and "resident" (layers kept in memory: compute
// only); the ratio between them is the loading overhead.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/logging.h"
#include "worker/model/default_model.h"
#include "worker/model/llama_model.h"

namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <typename F>
std::vector<double> Time(int repeats, F&& f) {
  std::vector<double> s;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!f()) std::exit(1);
    s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t len = 256, batch = 1;
  int repeats = 5, threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const long v = std::strtol(argv[i + 1], nullptr, 10);
    if (a == "--len") len = v;
    else if (a == "--batch") batch = v;
    else if (a == "--repeats") repeats = static_cast<int>(v);
    else if (a == "--threads") threads = static_cast<int>(v);
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  vptq::InitLogging({.level = "warn"});
  torch::set_num_threads(threads);
  using namespace vptq::model;
  auto dir = EnsureStories15M();
  if (!dir.ok()) {
    std::fprintf(stderr, "%s\n", dir.status().ToString().c_str());
    return 1;
  }
  auto reader = ModelReader::Open(*dir);
  if (!reader.ok()) {
    std::fprintf(stderr, "%s\n", reader.status().ToString().c_str());
    return 1;
  }
  const vptq::HfModelConfig& c = (*reader)->config();
  torch::manual_seed(0);
  const torch::Tensor ids = torch::randint(0, c.vocab_size, {batch, len}, torch::kLong);

  auto emit = [&](const char* mode, const std::vector<double>& s) {
    nlohmann::json j = {{"bench", "llama_forward"}, {"model", "stories15M"}, {"mode", mode},
                        {"batch", batch}, {"len", len}, {"threads", threads},
                        {"repeats", repeats}, {"seconds_median", Median(s)},
                        {"tokens_per_second", batch * len / Median(s)}};
    std::printf("%s\n", j.dump().c_str());
    return Median(s);
  };

  const double streamed = emit("streamed", Time(repeats, [&] {
    auto r = ForwardLogits(**reader, ids, {});
    if (!r.ok()) std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
    return r.ok();
  }));

  std::vector<DecoderLayer> layers;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) layers.push_back(*DecoderLayer::Load(**reader, l, {}));
  const auto head = OutputHead::Load(**reader, {});
  const auto rope = RotaryEmbedding::Create(c, len);
  const torch::Tensor embedded = *EmbedTokens(**reader, ids, {});
  const double resident = emit("resident", Time(repeats, [&] {
    torch::Tensor h = embedded;
    for (const DecoderLayer& layer : layers) {
      auto r = layer.Forward(h, *rope);
      if (!r.ok()) return false;
      h = *r;
    }
    return head->Logits(h).ok();
  }));
  std::printf("%s\n", nlohmann::json({{"bench", "llama_forward"}, {"mode", "ratio"},
                                      {"streamed_over_resident", streamed / resident}})
                          .dump()
                          .c_str());
  return 0;
}
