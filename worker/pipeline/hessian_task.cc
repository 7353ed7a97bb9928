#include "worker/pipeline/hessian_task.h"

#include <array>
#include <exception>
#include <memory>
#include <optional>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status.h"
#include "worker/model/llama_model.h"
#include "worker/model/model_reader.h"
#include "worker/quant/hessian.h"

namespace vptq::pipeline {
namespace {

int64_t InputFeatures(const HfModelConfig& c, LinearInput input) {
  switch (input) {
    case LinearInput::kAttnIn: return c.hidden_size;
    case LinearInput::kAttnOut: return c.q_out_features();
    case LinearInput::kMlpIn: return c.hidden_size;
    case LinearInput::kMlpAct: return c.intermediate_size;
  }
  return 0;
}

}  // namespace

std::vector<std::string> HessianGroups(int64_t num_layers) {
  std::vector<std::string> groups;
  for (int64_t l = 0; l < num_layers; ++l) {
    for (LinearInput in : kAllLinearInputs) groups.push_back(LinearInputKey(l, in));
  }
  return groups;
}

absl::StatusOr<BlobMap> RunHessianTask(const HessianTaskInput& input) {
  const absl::Time start = absl::Now();
  if (input.num_shards < 1 || input.shard < 0 || input.shard >= input.num_shards) {
    return absl::InvalidArgumentError(absl::StrCat("shard ", input.shard, " is outside [0, ",
                                                   input.num_shards, ")"));
  }
  VPTQ_ASSIGN_OR_RETURN(torch::Device device, ParseDevice(input.compute.device));
  VPTQ_ASSIGN_OR_RETURN(auto reader, model::ModelReader::Open(input.model_dir));
  const HfModelConfig& config = reader->config();
  VPTQ_ASSIGN_OR_RETURN(TokenSequences all,
                        BuildTokenSequences(input.model_dir, input.calibration));
  const auto [first, last] = ShardRange(all.count(), input.shard, input.num_shards);
  const TokenSequences seqs = all.Slice(first, last);

  BlobMap out;
  const int64_t layers = config.num_hidden_layers;
  if (seqs.count() == 0) {
    for (int64_t l = 0; l < layers; ++l) {
      for (LinearInput in : kAllLinearInputs) {
        out[HessianOutputName(LinearInputKey(l, in))] =
            quant::HessianAccumulator(InputFeatures(config, in)).Serialize();
      }
    }
    return out;
  }

  torch::Tensor ids;
  try {
    ids = torch::from_blob(const_cast<int32_t*>(seqs.ids.data()),
                           {seqs.count(), seqs.sequence_length}, torch::kInt)
              .to(torch::kLong);
  } catch (const std::exception& e) {
    return absl::ResourceExhaustedError(absl::StrCat("calibration ids: ", e.what()));
  }

  model::ForwardOptions fwd;
  fwd.dtype = torch::kFloat;
  fwd.device = device;
  fwd.max_batch = input.compute.max_batch;
  VPTQ_ASSIGN_OR_RETURN(torch::Tensor hidden, model::EmbedTokens(*reader, ids, fwd));

  for (int64_t layer = 0; layer < layers; ++layer) {
    std::array<std::optional<quant::HessianAccumulator>, 4> acc;
    for (LinearInput in : kAllLinearInputs) {
      acc[static_cast<size_t>(in)].emplace(InputFeatures(config, in), device);
    }
    fwd.hook = [&](int64_t l, LinearInput in, const torch::Tensor& x) -> absl::Status {
      if (l != layer) {
        return absl::InternalError(absl::StrCat("hook called for layer ", l, " inside ", layer));
      }
      return Annotate(acc[static_cast<size_t>(in)]->Add(x), LinearInputKey(l, in));
    };
    VPTQ_ASSIGN_OR_RETURN(hidden, model::RunDecoderLayers(*reader, hidden, fwd, layer, layer + 1));
    for (LinearInput in : kAllLinearInputs) {
      out[HessianOutputName(LinearInputKey(layer, in))] =
          acc[static_cast<size_t>(in)]->Serialize();
    }
    log::Debug("hessian layer done",
               {{"stage", "hessian"}, {"layer", layer}, {"shard", input.shard}});
  }
  log::Info("hessian shard done",
            {{"stage", "hessian"},
             {"shard", input.shard},
             {"sequences", seqs.count()},
             {"tokens", seqs.count() * seqs.sequence_length},
             {"seconds", absl::ToDoubleSeconds(absl::Now() - start)}});
  return out;
}

}  // namespace vptq::pipeline
