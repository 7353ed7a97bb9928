// Test helpers for worker/model: small random HF models written to disk, a
// scratch folder, and a plain token-by-token Llama forward in float64 (the
// reference the batched forward is compared with).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "common/hf_config.h"
#include "common/safetensors.h"

namespace vptq::model::testing {

// A fresh folder under the test temp dir, removed on destruction.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct SyntheticModelOptions {
  std::string architecture = "LlamaForCausalLM";
  int64_t hidden = 32;
  int64_t intermediate = 48;
  int64_t layers = 2;
  int64_t heads = 4;
  int64_t kv_heads = 2;
  int64_t vocab = 64;
  int64_t max_positions = 64;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-5;
  bool tie_embeddings = false;
  bool attention_bias = false;  // Llama attention_bias (q/k/v/o)
  std::optional<int64_t> sliding_window;  // written for Mistral
  DType dtype = DType::kF32;
  int shards = 1;  // > 1 writes model-0000i-of-0000n + index
  uint64_t seed = 1;
};

struct SyntheticModel {
  HfModelConfig config;
  // Every stored tensor, float32, as rounded to the stored dtype.
  std::map<std::string, torch::Tensor> tensors;
};

// Writes config.json and safetensors with random weights into `dir`.
absl::StatusOr<SyntheticModel> WriteSyntheticModel(const std::string& dir,
                                                   const SyntheticModelOptions& options);

// Logits (L, vocab) in float64 for one sequence, computed position by
// position with a KV cache and explicit loops over heads, straight from the
// HF definition (half-split rotary pairs).
torch::Tensor NaiveLogits(const HfModelConfig& config,
                          const std::map<std::string, torch::Tensor>& tensors,
                          const std::vector<int64_t>& ids);

// Deterministic token ids (batch, L) in [0, vocab).
torch::Tensor RandomIds(int64_t batch, int64_t len, int64_t vocab, uint64_t seed);

// Bytes of `t` (contiguous CPU) for SafetensorsWriter::Add.
absl::Span<const uint8_t> Bytes(const torch::Tensor& t);

}  // namespace vptq::model::testing
