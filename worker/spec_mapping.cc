#include "worker/spec_mapping.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "coordinator/spec_validation.h"

namespace vptq::worker {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("spec field '", field, "' ", why));
}

}  // namespace

absl::StatusOr<pipeline::TextSetOptions> CalibrationFromSpec(const v1::CalibrationSpec& spec) {
  if (spec.text_paths().empty()) {
    return Invalid("calibration.text_paths", "needs at least one text file or directory");
  }
  if (spec.num_sequences() < 0) return Invalid("calibration.num_sequences", "must be >= 0");
  if (spec.sequence_length() < 0 || spec.sequence_length() == 1) {
    return Invalid("calibration.sequence_length", "must be 0 (default) or >= 2");
  }
  pipeline::TextSetOptions o;
  o.paths.assign(spec.text_paths().begin(), spec.text_paths().end());
  o.num_sequences =
      spec.num_sequences() != 0 ? spec.num_sequences() : coordinator::kDefaultNumSequences;
  o.sequence_length =
      spec.sequence_length() != 0 ? spec.sequence_length() : coordinator::kDefaultSequenceLength;
  o.seed = spec.seed();
  o.allow_fewer = false;
  return o;
}

absl::StatusOr<pipeline::QuantSettings> QuantSettingsFromSpec(const v1::QuantOptions& spec) {
  struct NonNegative {
    const char* field;
    double value;
  };
  for (const NonNegative& f : {NonNegative{"quant.bits", double(spec.bits())},
                               NonNegative{"quant.vector_len", double(spec.vector_len())},
                               NonNegative{"quant.num_centroids", double(spec.num_centroids())},
                               NonNegative{"quant.num_res_centroids",
                                           double(spec.num_res_centroids())},
                               NonNegative{"quant.group_num", double(spec.group_num())},
                               NonNegative{"quant.outlier_fraction", spec.outlier_fraction()},
                               NonNegative{"quant.outlier_vector_len",
                                           double(spec.outlier_vector_len())},
                               NonNegative{"quant.outlier_num_centroids",
                                           double(spec.outlier_num_centroids())},
                               NonNegative{"quant.kmeans_iters", double(spec.kmeans_iters())},
                               NonNegative{"quant.refine_iters", double(spec.refine_iters())},
                               NonNegative{"quant.damp", spec.damp()},
                               NonNegative{"quant.block_size", double(spec.block_size())}}) {
    if (!(f.value >= 0)) return Invalid(f.field, "must be >= 0 (0 = default)");
  }
  pipeline::QuantSettings s;
  s.bits = spec.bits();
  s.vector_len = spec.vector_len();
  s.num_centroids = spec.num_centroids();
  s.num_res_centroids = spec.num_res_centroids();
  s.group_num = spec.group_num();
  s.outlier_fraction = spec.outlier_fraction();
  s.outlier_vector_len = spec.outlier_vector_len();
  s.outlier_num_centroids = spec.outlier_num_centroids();
  if (spec.has_enable_perm()) s.enable_perm = spec.enable_perm();
  if (spec.has_enable_norm()) s.enable_norm = spec.enable_norm();
  s.seed = spec.seed();
  s.kmeans_iters = spec.kmeans_iters();
  s.refine_iters = spec.refine_iters();
  s.damp = spec.damp();
  s.block_size = spec.block_size();
  s.output_dtype = spec.output_dtype();
  s.kmeans_max_vectors = spec.kmeans_max_vectors();
  if (!s.output_dtype.empty()) {
    absl::StatusOr<torch::ScalarType> dt = pipeline::ParseOutputDType(s.output_dtype);
    if (!dt.ok()) {
      return Invalid("quant.output_dtype",
                     "must be \"fp16\", \"bf16\", \"fp32\" or empty (the model's dtype)");
    }
  }
  return s;
}

absl::StatusOr<pipeline::EvalOptions> EvalOptionsFromSpec(const v1::EvalSpec& spec,
                                                          const v1::CalibrationSpec& calibration) {
  if (spec.text_paths().empty()) {
    return Invalid("eval.text_paths", "needs at least one file (or drop the eval block)");
  }
  if (spec.max_sequences() < 0) return Invalid("eval.max_sequences", "must be >= 0");
  if (spec.sequence_length() < 0 || spec.sequence_length() == 1) {
    return Invalid("eval.sequence_length", "must be 0 (default) or >= 2");
  }
  pipeline::EvalOptions o;
  o.text.paths.assign(spec.text_paths().begin(), spec.text_paths().end());
  if (spec.sequence_length() != 0) {
    o.text.sequence_length = spec.sequence_length();
  } else if (calibration.sequence_length() > 0) {
    o.text.sequence_length = calibration.sequence_length();
  } else {
    o.text.sequence_length = coordinator::kDefaultSequenceLength;
  }
  o.text.num_sequences =
      spec.max_sequences() != 0 ? spec.max_sequences() : coordinator::kDefaultEvalSequences;
  o.text.seed = 0;
  o.text.allow_fewer = true;
  return o;
}

int64_t NumShardsFromSpec(const v1::CalibrationSpec& spec) {
  if (spec.num_shards() > 0) return spec.num_shards();
  const int64_t n =
      spec.num_sequences() > 0 ? spec.num_sequences() : coordinator::kDefaultNumSequences;
  return std::clamp<int64_t>((n + 15) / 16, 1, coordinator::kMaxShards);
}

}  // namespace vptq::worker
