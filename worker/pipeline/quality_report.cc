#include "worker/pipeline/quality_report.h"

#include <exception>

#include "absl/strings/str_cat.h"

namespace vptq::pipeline {

std::map<std::string, double> QualityReport::Metrics() const {
  return {{"perplexity", perplexity},
          {"perplexity_original", perplexity_original},
          {"kl_divergence", kl_divergence},
          {"top1_agreement", top1_agreement},
          {"bits_per_weight", bpw_file}};
}

nlohmann::ordered_json QualityReportToJson(const QualityReport& r) {
  nlohmann::ordered_json j;
  j["sequences"] = r.sequences;
  j["sequence_length"] = r.sequence_length;
  j["tokens"] = r.tokens;
  j["perplexity_original"] = r.perplexity_original;
  j["perplexity"] = r.perplexity;
  j["kl_divergence"] = r.kl_divergence;
  j["top1_agreement"] = r.top1_agreement;
  j["bpw_linears"] = r.bpw_linears;
  j["bpw_linears_stored"] = r.bpw_linears_stored;
  j["bpw_file"] = r.bpw_file;
  j["quantized_linears"] = r.quantized_linears;
  j["checkpoint_tensor_bytes"] = r.checkpoint_tensor_bytes;
  j["model_params"] = r.model_params;
  j["seconds"] = r.seconds;
  return j;
}

absl::StatusOr<QualityReport> QualityReportFromJson(const nlohmann::json& j) {
  try {
    QualityReport r;
    r.sequences = j.at("sequences").get<int64_t>();
    r.sequence_length = j.at("sequence_length").get<int64_t>();
    r.tokens = j.at("tokens").get<int64_t>();
    r.perplexity_original = j.at("perplexity_original").get<double>();
    r.perplexity = j.at("perplexity").get<double>();
    r.kl_divergence = j.at("kl_divergence").get<double>();
    r.top1_agreement = j.at("top1_agreement").get<double>();
    r.bpw_linears = j.at("bpw_linears").get<double>();
    r.bpw_linears_stored = j.at("bpw_linears_stored").get<double>();
    r.bpw_file = j.at("bpw_file").get<double>();
    r.quantized_linears = j.at("quantized_linears").get<int64_t>();
    r.checkpoint_tensor_bytes = j.at("checkpoint_tensor_bytes").get<int64_t>();
    r.model_params = j.at("model_params").get<int64_t>();
    r.seconds = j.at("seconds").get<double>();
    return r;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("quality report JSON: ", e.what()));
  }
}

}  // namespace vptq::pipeline
