#include "worker/model/model_test_util.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_util.h"
#include "common/status.h"

namespace vptq::model::testing {

namespace fs = std::filesystem;

ScratchDir::ScratchDir(const std::string& tag) {
  std::random_device rd;
  path_ = (fs::path(::testing::TempDir()) /
           absl::StrCat("vptq_", tag, "_", ::getpid(), "_", rd()))
              .string();
  fs::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

absl::Span<const uint8_t> Bytes(const torch::Tensor& t) {
  return absl::MakeConstSpan(static_cast<const uint8_t*>(t.data_ptr()),
                             static_cast<size_t>(t.nbytes()));
}

namespace {

torch::ScalarType TorchType(DType d) {
  switch (d) {
    case DType::kF16: return torch::kHalf;
    case DType::kBF16: return torch::kBFloat16;
    default: return torch::kFloat;
  }
}

}  // namespace

absl::StatusOr<SyntheticModel> WriteSyntheticModel(const std::string& dir,
                                                   const SyntheticModelOptions& o) {
  fs::create_directories(dir);
  nlohmann::json config = {{"architectures", {o.architecture}},
                           {"hidden_size", o.hidden},
                           {"intermediate_size", o.intermediate},
                           {"num_hidden_layers", o.layers},
                           {"num_attention_heads", o.heads},
                           {"num_key_value_heads", o.kv_heads},
                           {"vocab_size", o.vocab},
                           {"max_position_embeddings", o.max_positions},
                           {"rope_theta", o.rope_theta},
                           {"rms_norm_eps", o.rms_norm_eps},
                           {"hidden_act", "silu"},
                           {"tie_word_embeddings", o.tie_embeddings},
                           {"attention_bias", o.attention_bias},
                           {"torch_dtype", o.dtype == DType::kF16    ? "float16"
                                           : o.dtype == DType::kBF16 ? "bfloat16"
                                                                     : "float32"}};
  if (o.sliding_window) config["sliding_window"] = *o.sliding_window;
  if (o.architecture == "Qwen2ForCausalLM" && o.sliding_window) {
    config["use_sliding_window"] = true;
  }
  VPTQ_RETURN_IF_ERROR(WriteFileAtomic(dir + "/config.json", config.dump(2)));
  SyntheticModel m;
  VPTQ_ASSIGN_OR_RETURN(m.config, ParseHfConfig(config.dump()));
  const HfModelConfig& c = m.config;

  torch::manual_seed(o.seed);
  auto add = [&](const std::string& name, std::vector<int64_t> shape, double scale,
                 double offset = 0.0) {
    torch::Tensor t = torch::randn(shape, torch::kFloat) * scale + offset;
    m.tensors[name] = t.to(TorchType(o.dtype)).to(torch::kFloat);  // as stored
  };
  const int64_t d = c.hidden_size;
  add("model.embed_tokens.weight", {c.vocab_size, d}, 1.0);
  add("model.norm.weight", {d}, 0.1, 1.0);
  if (!c.tie_word_embeddings) add("lm_head.weight", {c.vocab_size, d}, 1.0 / std::sqrt(d));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    add(p + "input_layernorm.weight", {d}, 0.1, 1.0);
    add(p + "post_attention_layernorm.weight", {d}, 0.1, 1.0);
    for (LinearKind kind : kAllLinearKinds) {
      const auto [out, in] = LinearShape(c, kind);
      const std::string name = LinearName(l, kind);
      add(name + ".weight", {out, in}, 1.0 / std::sqrt(static_cast<double>(in)));
      if (LinearHasBias(c, kind)) add(name + ".bias", {out}, 0.1);
    }
  }

  // Layer-major split into shards; globals in the first.
  std::vector<SafetensorsWriter> writers(static_cast<size_t>(o.shards));
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  for (const auto& [name, t] : m.tensors) {
    int shard = 0;
    if (o.shards > 1 && name.rfind("model.layers.", 0) == 0) {
      const int64_t layer = std::stoll(name.substr(13));
      shard = static_cast<int>(layer * o.shards / c.num_hidden_layers);
    }
    const torch::Tensor stored = t.to(TorchType(o.dtype)).contiguous();
    std::vector<int64_t> shape(stored.sizes().begin(), stored.sizes().end());
    VPTQ_RETURN_IF_ERROR(writers[static_cast<size_t>(shard)].Add(name, o.dtype, shape, Bytes(stored)));
    index["weight_map"][name] =
        absl::StrFormat("model-%05d-of-%05d.safetensors", shard + 1, o.shards);
  }
  if (o.shards == 1) {
    VPTQ_RETURN_IF_ERROR(writers[0].WriteAtomic(dir + "/model.safetensors"));
  } else {
    for (int s = 0; s < o.shards; ++s) {
      VPTQ_RETURN_IF_ERROR(writers[static_cast<size_t>(s)].WriteAtomic(
          absl::StrFormat("%s/model-%05d-of-%05d.safetensors", dir, s + 1, o.shards)));
    }
    VPTQ_RETURN_IF_ERROR(
        WriteFileAtomic(dir + "/model.safetensors.index.json", index.dump(2)));
  }
  return m;
}

namespace {

torch::Tensor RmsNormRef(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  return w * x / std::sqrt(x.pow(2).mean().item<double>() + eps);
}

// Half-split rotation of one head vector at `pos`.
torch::Tensor RotateRef(const torch::Tensor& x, int64_t pos, double theta) {
  const int64_t hd = x.size(0), half = hd / 2;
  torch::Tensor out = x.clone();
  auto in = x.accessor<double, 1>();
  auto o = out.accessor<double, 1>();
  for (int64_t i = 0; i < half; ++i) {
    const double angle = static_cast<double>(pos) * std::pow(theta, -2.0 * i / hd);
    const double c = std::cos(angle), s = std::sin(angle);
    o[i] = in[i] * c - in[i + half] * s;
    o[i + half] = in[i + half] * c + in[i] * s;
  }
  return out;
}

}  // namespace

torch::Tensor NaiveLogits(const HfModelConfig& c,
                          const std::map<std::string, torch::Tensor>& tensors,
                          const std::vector<int64_t>& ids) {
  auto W = [&](const std::string& name) { return tensors.at(name).to(torch::kDouble); };
  auto has = [&](const std::string& name) { return tensors.count(name) > 0; };
  auto linear = [&](const std::string& name, const torch::Tensor& x) {
    torch::Tensor y = torch::mv(W(name + ".weight"), x);
    if (has(name + ".bias")) y = y + W(name + ".bias");
    return y;
  };
  const int64_t len = static_cast<int64_t>(ids.size()), hd = c.head_dim;
  const int64_t heads = c.num_attention_heads, kv_heads = c.num_key_value_heads;
  const int64_t group = heads / kv_heads;
  const torch::Tensor emb = W("model.embed_tokens.weight");
  const torch::Tensor head =
      has("lm_head.weight") ? W("lm_head.weight") : emb;
  std::vector<std::vector<torch::Tensor>> kcache(c.num_hidden_layers), vcache(c.num_hidden_layers);
  torch::Tensor logits = torch::empty({len, c.vocab_size}, torch::kDouble);
  for (int64_t pos = 0; pos < len; ++pos) {
    torch::Tensor x = emb[ids[pos]].clone();
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      const std::string p = absl::StrCat("model.layers.", l, ".");
      const torch::Tensor xn = RmsNormRef(x, W(p + "input_layernorm.weight"), c.rms_norm_eps);
      const torch::Tensor q = linear(p + "self_attn.q_proj", xn);
      torch::Tensor k = linear(p + "self_attn.k_proj", xn);
      const torch::Tensor v = linear(p + "self_attn.v_proj", xn);
      for (int64_t h = 0; h < kv_heads; ++h) {
        k.slice(0, h * hd, (h + 1) * hd).copy_(RotateRef(k.slice(0, h * hd, (h + 1) * hd).clone(), pos, c.rope_theta));
      }
      kcache[l].push_back(k);
      vcache[l].push_back(v);
      torch::Tensor att = torch::zeros({heads * hd}, torch::kDouble);
      for (int64_t h = 0; h < heads; ++h) {
        const torch::Tensor qh = RotateRef(q.slice(0, h * hd, (h + 1) * hd).clone(), pos, c.rope_theta);
        const int64_t kvh = h / group;
        std::vector<double> scores;
        std::vector<int64_t> seen;
        for (int64_t t = 0; t <= pos; ++t) {
          if (c.sliding_window && pos - t >= *c.sliding_window) continue;
          scores.push_back(torch::dot(qh, kcache[l][t].slice(0, kvh * hd, (kvh + 1) * hd)).item<double>() /
                           std::sqrt(static_cast<double>(hd)));
          seen.push_back(t);
        }
        double mx = -1e300, sum = 0;
        for (double s : scores) mx = std::max(mx, s);
        for (double& s : scores) sum += (s = std::exp(s - mx));
        for (size_t i = 0; i < seen.size(); ++i) {
          att.slice(0, h * hd, (h + 1) * hd) +=
              (scores[i] / sum) * vcache[l][seen[i]].slice(0, kvh * hd, (kvh + 1) * hd);
        }
      }
      x = x + linear(p + "self_attn.o_proj", att);
      const torch::Tensor mn =
          RmsNormRef(x, W(p + "post_attention_layernorm.weight"), c.rms_norm_eps);
      const torch::Tensor g = linear(p + "mlp.gate_proj", mn);
      const torch::Tensor u = linear(p + "mlp.up_proj", mn);
      x = x + linear(p + "mlp.down_proj", g * torch::sigmoid(g) * u);
    }
    logits[pos] = torch::mv(head, RmsNormRef(x, W("model.norm.weight"), c.rms_norm_eps));
  }
  return logits;
}

torch::Tensor RandomIds(int64_t batch, int64_t len, int64_t vocab, uint64_t seed) {
  torch::Generator gen = at::detail::createCPUGenerator(seed);
  return torch::randint(0, vocab, {batch, len}, gen, torch::kLong);
}

}  // namespace vptq::model::testing
