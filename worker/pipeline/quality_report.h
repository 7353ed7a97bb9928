// What an evaluation measured (issue 3 §4), as a plain struct and as JSON.
// Maps onto vptq.v1.Quality / the EVAL TaskSummary.metrics keys through
// Metrics(): perplexity, perplexity_original, kl_divergence, top1_agreement,
// bits_per_weight (whole file).
//
//   nlohmann::ordered_json j = QualityReportToJson(report);
//   std::cout << j.dump() << "\n";
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace vptq::pipeline {

struct QualityReport {
  int64_t sequences = 0;
  int64_t sequence_length = 0;
  int64_t tokens = 0;  // next-token predictions scored (sequences × (L − 1))
  double perplexity_original = 0;
  double perplexity = 0;        // of the quantized model
  double kl_divergence = 0;     // mean per token of KL(original ‖ quantized), nats
  double top1_agreement = 0;    // fraction of tokens where both argmaxes agree
  // Bits per weight: the decoder linears (DESIGN §2 count, dense ones at
  // their dtype's width), the bytes they take, and the whole file (every
  // tensor's bytes over the original model's element count, so embeddings
  // and lm_head are included).
  double bpw_linears = 0;
  double bpw_linears_stored = 0;
  double bpw_file = 0;
  int64_t quantized_linears = 0;
  int64_t checkpoint_tensor_bytes = 0;
  int64_t model_params = 0;
  double seconds = 0;

  std::map<std::string, double> Metrics() const;
};

nlohmann::ordered_json QualityReportToJson(const QualityReport& r);
absl::StatusOr<QualityReport> QualityReportFromJson(const nlohmann::json& j);

}  // namespace vptq::pipeline
