#include "worker/model/llama_model.h"

#include <exception>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "worker/model/torch_error.h"

namespace vptq::model {

absl::Status CheckTokenIds(const torch::Tensor& ids, const HfModelConfig& config) {
  if (!ids.defined() || ids.dim() != 2 || ids.scalar_type() != torch::kLong) {
    return absl::InvalidArgumentError("token ids must be an int64 tensor of shape (batch, L)");
  }
  if (ids.size(0) == 0 || ids.size(1) == 0) {
    return absl::InvalidArgumentError("token ids are empty");
  }
  if (ids.size(1) > config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sequence length ", ids.size(1), " exceeds max_position_embeddings (",
        config.max_position_embeddings, ") of the model"));
  }
  const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
  if (lo < 0 || hi >= config.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat("token id ", lo < 0 ? lo : hi,
                                                   " is outside the vocabulary [0, ",
                                                   config.vocab_size, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<torch::Tensor> EmbedTokens(const ModelReader& reader, const torch::Tensor& ids,
                                          const LoadOptions& options) {
  const HfModelConfig& c = reader.config();
  VPTQ_RETURN_IF_ERROR(CheckTokenIds(ids, c));
  VPTQ_ASSIGN_OR_RETURN(torch::Tensor table, reader.Load("model.embed_tokens.weight",
                                                         {c.vocab_size, c.hidden_size},
                                                         options.dtype));
  try {
    const torch::Tensor flat = ids.reshape({-1}).to(torch::kCPU);
    return table.index_select(0, flat)
        .view({ids.size(0), ids.size(1), c.hidden_size})
        .to(options.device);
  } catch (const std::exception& e) {
    return TorchError(e, "embedding lookup");
  }
}

absl::StatusOr<torch::Tensor> RunDecoderLayers(const ModelReader& reader, torch::Tensor hidden,
                                               const ForwardOptions& options, int64_t begin,
                                               int64_t end) {
  const HfModelConfig& c = reader.config();
  if (end < 0) end = c.num_hidden_layers;
  if (begin < 0 || begin > end || end > c.num_hidden_layers) {
    return absl::InvalidArgumentError(absl::StrCat("layer range [", begin, ", ", end,
                                                   ") is outside [0, ", c.num_hidden_layers, ")"));
  }
  if (!hidden.defined() || hidden.dim() != 3) {
    return absl::InvalidArgumentError("hidden states must be (batch, L, hidden_size)");
  }
  VPTQ_ASSIGN_OR_RETURN(RotaryEmbedding rope,
                        RotaryEmbedding::Create(c, hidden.size(1), options.device));
  const int64_t batch = hidden.size(0);
  const int64_t chunk = options.max_batch > 0 ? std::min(options.max_batch, batch) : batch;
  for (int64_t layer = begin; layer < end; ++layer) {
    VPTQ_ASSIGN_OR_RETURN(DecoderLayer decoder, DecoderLayer::Load(reader, layer, options));
    if (chunk == batch) {
      VPTQ_ASSIGN_OR_RETURN(hidden, decoder.Forward(hidden, rope, options.hook));
    } else {
      std::vector<torch::Tensor> parts;
      for (int64_t b = 0; b < batch; b += chunk) {
        VPTQ_ASSIGN_OR_RETURN(
            torch::Tensor out,
            decoder.Forward(hidden.slice(0, b, std::min(batch, b + chunk)), rope, options.hook));
        parts.push_back(std::move(out));
      }
      try {
        hidden = torch::cat(parts, 0);
      } catch (const std::exception& e) {
        return TorchError(e, absl::StrCat("layer ", layer, " output"));
      }
    }
    log::Debug("decoder layer done", {{"layer", layer}, {"stage", "forward"}});
  }
  return hidden;
}

absl::StatusOr<OutputHead> OutputHead::Load(const ModelReader& reader,
                                            const LoadOptions& options) {
  const HfModelConfig& c = reader.config();
  VPTQ_ASSIGN_OR_RETURN(torch::Tensor norm,
                        reader.Load("model.norm.weight", {c.hidden_size}, options.dtype));
  std::optional<torch::Tensor> head;
  if (options.weight_override) {
    auto r = options.weight_override("lm_head");
    if (!r.ok()) return Annotate(r.status(), "weight override for lm_head");
    head = *std::move(r);
    if (head && (head->dim() != 2 || head->size(0) != c.vocab_size ||
                 head->size(1) != c.hidden_size)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "override for lm_head must be (", c.vocab_size, ", ", c.hidden_size, ")"));
    }
  }
  if (!head) {
    VPTQ_ASSIGN_OR_RETURN(head, reader.Load(reader.layout().lm_head_tensor(),
                                            {c.vocab_size, c.hidden_size}, options.dtype));
  }
  try {
    return OutputHead(norm.to(options.device), head->to(options.device, options.dtype),
                      c.rms_norm_eps);
  } catch (const std::exception& e) {
    return TorchError(e, "loading the output head");
  }
}

absl::StatusOr<torch::Tensor> OutputHead::Logits(const torch::Tensor& hidden) const {
  if (!hidden.defined() || hidden.dim() != 3 || hidden.size(2) != norm_.size(0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("hidden states must be (batch, L, ", norm_.size(0), ")"));
  }
  try {
    const torch::Tensor x = RmsNorm(hidden.to(norm_.scalar_type()), norm_, eps_);
    return torch::linear(x, lm_head_).to(torch::kFloat);
  } catch (const std::exception& e) {
    return TorchError(e, "lm_head");
  }
}

absl::StatusOr<torch::Tensor> ForwardLogits(const ModelReader& reader, const torch::Tensor& ids,
                                            const ForwardOptions& options) {
  VPTQ_ASSIGN_OR_RETURN(torch::Tensor hidden, EmbedTokens(reader, ids, options));
  VPTQ_ASSIGN_OR_RETURN(hidden, RunDecoderLayers(reader, std::move(hidden), options));
  VPTQ_ASSIGN_OR_RETURN(OutputHead head, OutputHead::Load(reader, options));
  return head.Logits(hidden);
}

WeightOverride OverrideFromMap(std::map<std::string, torch::Tensor> weights) {
  return [weights = std::move(weights)](
             const std::string& name) -> absl::StatusOr<std::optional<torch::Tensor>> {
    auto it = weights.find(name);
    if (it == weights.end()) return std::optional<torch::Tensor>();
    return std::optional<torch::Tensor>(it->second);
  };
}

}  // namespace vptq::model
