// One side of a quality comparison, served a piece at a time so that the
// evaluation streams the model: embeddings, one decoder layer, the output
// head. Two sources:
//  - ReaderEvalModel: an HF model directory (the original), optionally with a
//    WeightOverride serving dense replacement weights (the scalar baselines);
//  - CheckpointEvalModel: a packed checkpoint as written (checkpoint_reader.h),
//    quantized linears dequantized from their packed tensors.
// Everything comes back in float32 on the model's device.
//
// Thread safety: a model is used by one thread at a time (loads are const
// but a model may cache). Cost: Layer() loads (and, for checkpoints,
// unpacks and dequantizes) one layer's weights.
//
//   ReaderEvalModel orig(*reader, nullptr, torch::kCPU);
//   VPTQ_ASSIGN_OR_RETURN(model::DecoderLayer l0, orig.Layer(0));
#pragma once

#include <cstdint>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "common/hf_config.h"
#include "worker/model/decoder_layer.h"
#include "worker/model/model_reader.h"
#include "worker/pipeline/checkpoint_reader.h"

namespace vptq::pipeline {

struct OutputHeadWeights {
  torch::Tensor norm;     // (d)
  torch::Tensor lm_head;  // (vocab, d)
  double eps = 1e-6;
  // RMSNorm then lm_head: (..., d) -> float32 (..., vocab).
  torch::Tensor Logits(const torch::Tensor& hidden) const;
};

class EvalModel {
 public:
  virtual ~EvalModel() = default;
  virtual const HfModelConfig& config() const = 0;
  virtual torch::Device device() const = 0;
  // (batch, L) int64 ids -> (batch, L, d) float32.
  virtual absl::StatusOr<torch::Tensor> Embed(const torch::Tensor& ids) const = 0;
  virtual absl::StatusOr<model::DecoderLayer> Layer(int64_t layer) const = 0;
  virtual absl::StatusOr<OutputHeadWeights> Head() const = 0;
};

class ReaderEvalModel : public EvalModel {
 public:
  // `reader` must outlive this object; `override` may be empty.
  ReaderEvalModel(const model::ModelReader& reader, model::WeightOverride override,
                  torch::Device device);
  const HfModelConfig& config() const override { return reader_.config(); }
  torch::Device device() const override { return options_.device; }
  absl::StatusOr<torch::Tensor> Embed(const torch::Tensor& ids) const override;
  absl::StatusOr<model::DecoderLayer> Layer(int64_t layer) const override;
  absl::StatusOr<OutputHeadWeights> Head() const override;

 private:
  const model::ModelReader& reader_;
  model::LoadOptions options_;
};

class CheckpointEvalModel : public EvalModel {
 public:
  // `checkpoint` must outlive this object.
  CheckpointEvalModel(const CheckpointReader& checkpoint, torch::Device device)
      : ckpt_(checkpoint), device_(device) {}
  const HfModelConfig& config() const override { return ckpt_.config(); }
  torch::Device device() const override { return device_; }
  absl::StatusOr<torch::Tensor> Embed(const torch::Tensor& ids) const override;
  absl::StatusOr<model::DecoderLayer> Layer(int64_t layer) const override;
  absl::StatusOr<OutputHeadWeights> Head() const override;

 private:
  const CheckpointReader& ckpt_;
  torch::Device device_;
};

}  // namespace vptq::pipeline
