#include "worker/pipeline/quantize_task.h"

#include <exception>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status.h"
#include "worker/model/model_reader.h"
#include "worker/pipeline/compute_options.h"
#include "worker/pipeline/hessian_blob.h"
#include "worker/quant/tensor_io.h"
#include "worker/quant/vptq_quantizer.h"

namespace vptq::pipeline {

std::map<std::string, double> QuantizeTaskOutput::Metrics() const {
  return {{"proxy_loss", stats.proxy_loss},
          {"bits_per_weight", stats.bits_per_weight},
          {"seconds", stats.task_seconds}};
}

absl::StatusOr<QuantizeTaskOutput> RunQuantizeTask(const QuantizeTaskInput& input) {
  const absl::Time start = absl::Now();
  VPTQ_ASSIGN_OR_RETURN(torch::Device device, ParseDevice(input.device));
  VPTQ_ASSIGN_OR_RETURN(auto reader, model::ModelReader::Open(input.model_dir));
  const ModelLayout& layout = reader->layout();
  const LinearSpec* spec = layout.FindLinear(input.linear);
  if (spec == nullptr) {
    return absl::NotFoundError(absl::StrCat("linear ", input.linear, " is not a decoder linear of ",
                                            input.model_dir));
  }
  const int64_t m = spec->out_features, n = spec->in_features;
  VPTQ_ASSIGN_OR_RETURN(DecodedHessian h,
                        DecodeFinalizedHessian(input.hessian, input.linear + " hessian"));
  if (h.hessian.h.size(0) != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the Hessian given for ", input.linear, " is ", h.hessian.h.size(0), "x",
        h.hessian.h.size(0), " but the linear has ", n,
        " inputs; the task was given another group's Hessian"));
  }
  VPTQ_ASSIGN_OR_RETURN(torch::ScalarType storage, ResolveOutputDType(input.quant, spec->dtype));
  VPTQ_ASSIGN_OR_RETURN(quant::VptqOptions options,
                        ResolveVptqOptions(input.quant, input.linear, m, n, storage));
  VPTQ_ASSIGN_OR_RETURN(torch::Tensor w,
                        reader->Load(input.linear + ".weight", {m, n}, torch::kFloat));
  torch::Tensor bias;
  if (spec->has_bias) {
    VPTQ_ASSIGN_OR_RETURN(bias, reader->Load(input.linear + ".bias", {m}, torch::kFloat));
  }

  std::map<std::string, torch::Tensor> packed;
  quant::VptqResult r;
  try {
    w = quant::ZeroDeadColumns(w, h.hessian.dead_columns).to(device);
    absl::StatusOr<quant::VptqResult> q =
        quant::QuantizeLinear(w, h.hessian.h.to(device), options);
    if (!q.ok()) return Annotate(q.status(), "quantizing ", input.linear);
    r = *std::move(q);
    if (bias.defined()) {
      r.quantized.layout.has_bias = true;
      r.quantized.bias = bias;
    }
    absl::StatusOr<std::map<std::string, torch::Tensor>> p =
        quant::PackChecked(r.quantized, storage);
    if (!p.ok()) return Annotate(p.status(), "packing ", input.linear);
    packed = *std::move(p);
  } catch (const std::exception& e) {
    return absl::ResourceExhaustedError(absl::StrCat("quantizing ", input.linear, ": ", e.what()));
  }

  const quant::QuantLayout& ql = r.quantized.layout;
  const int element_bits = storage == torch::kFloat ? 32 : 16;
  QuantizeTaskOutput out;
  LinearQuantStats& s = out.stats;
  s.linear = input.linear;
  s.out_features = m;
  s.in_features = n;
  s.vector_len = ql.vector_len;
  s.num_centroids = ql.num_centroids;
  s.num_res_centroids = ql.num_res_centroids;
  s.group_num = ql.group_num;
  s.outlier_size = ql.outlier_size;
  VPTQ_ASSIGN_OR_RETURN(DType sd, quant::FromTorchDType(storage));
  s.storage_dtype = std::string(DTypeName(sd));
  s.proxy_loss = r.stats.proxy_loss;
  s.proxy_loss_before_refine = r.stats.proxy_loss_before_refine;
  s.bits_per_weight = ql.BitsPerWeight(element_bits);
  s.stored_bits_per_weight = ql.StoredBitsPerWeight(element_bits);
  s.seconds = r.stats.seconds;
  s.kmeans_iterations = r.stats.kmeans_iterations;
  s.damping_added = r.stats.damping_added;
  s.hessian_tokens = h.hessian.tokens;
  s.dead_columns = static_cast<int64_t>(h.hessian.dead_columns.size());
  s.task_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  VPTQ_ASSIGN_OR_RETURN(out.blob, EncodeQuantizedBlob(input.linear, ql, packed, s));
  log::Info("linear quantized", {{"stage", "quantize"},
                                 {"layer", spec->layer},
                                 {"linear", input.linear},
                                 {"proxy_loss", s.proxy_loss},
                                 {"bpw", s.bits_per_weight},
                                 {"seconds", s.task_seconds}});
  return out;
}

}  // namespace vptq::pipeline
