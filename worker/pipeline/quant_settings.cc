#include "worker/pipeline/quant_settings.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace vptq::pipeline {

double EffectiveDamp(const QuantSettings& settings) {
  return settings.damp > 0 ? settings.damp : kDefaultDamp;
}

absl::StatusOr<torch::ScalarType> ParseOutputDType(std::string_view name_view) {
  const std::string name(name_view);
  if (name == "fp16" || name == "float16") return torch::kHalf;
  if (name == "bf16" || name == "bfloat16") return torch::kBFloat16;
  if (name == "fp32" || name == "float32") return torch::kFloat;
  return absl::InvalidArgumentError(absl::StrCat(
      "output_dtype '", name, "' is not supported; use fp16, bf16, fp32 or leave it empty "
      "for the model's dtype"));
}

absl::StatusOr<torch::ScalarType> ResolveOutputDType(const QuantSettings& settings,
                                                     DType model_dtype) {
  if (!settings.output_dtype.empty()) return ParseOutputDType(settings.output_dtype);
  switch (model_dtype) {
    case DType::kF32: return torch::kFloat;
    case DType::kF16: return torch::kHalf;
    case DType::kBF16: return torch::kBFloat16;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "the model's decoder weights are ", std::string(DTypeName(model_dtype)),
          "; only F32, F16 and BF16 models can be quantized"));
  }
}

uint64_t LinearSeed(uint64_t job_seed, std::string_view linear_name) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a offset basis
  for (char c : linear_name) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  uint64_t z = h ^ (job_seed + 0x9e3779b97f4a7c15ull);  // SplitMix64 finalizer
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

absl::StatusOr<quant::VptqOptions> ResolveVptqOptions(const QuantSettings& s,
                                                      std::string_view linear_name_view,
                                                      int64_t m, int64_t n,
                                                      torch::ScalarType storage_dtype) {
  const std::string linear_name(linear_name_view);
  if (s.bits < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bits must be 2, 3 or 4 (or 0 for explicit options), got ", s.bits));
  }
  if (storage_dtype != torch::kHalf && storage_dtype != torch::kBFloat16 &&
      storage_dtype != torch::kFloat) {
    return absl::InvalidArgumentError("codebooks can only be stored as fp16, bf16 or fp32");
  }
  const int element_bits = storage_dtype == torch::kFloat ? 32 : 16;
  quant::VptqOptions o;
  if (s.bits > 0) {
    absl::StatusOr<quant::VptqOptions> chosen =
        quant::ChooseOptionsForBits(static_cast<double>(s.bits), m, n, element_bits);
    if (!chosen.ok()) {
      return Annotate(chosen.status(), "--bits ", s.bits, " for ", linear_name);
    }
    o = *std::move(chosen);
  }
  if (s.vector_len > 0) o.vector_len = s.vector_len;
  if (s.num_centroids > 0) o.num_centroids = s.num_centroids;
  if (s.num_res_centroids > 0) o.num_res_centroids = s.num_res_centroids;
  if (s.group_num > 0) o.group_num = s.group_num;
  if (s.outlier_fraction > 0) o.outlier_fraction = s.outlier_fraction;
  if (s.outlier_vector_len > 0) o.outlier_vector_len = s.outlier_vector_len;
  if (s.outlier_num_centroids > 0) o.outlier_num_centroids = s.outlier_num_centroids;
  if (s.enable_perm) o.enable_perm = *s.enable_perm;
  if (s.enable_norm) o.enable_norm = *s.enable_norm;
  if (s.block_size > 0) o.block_size = s.block_size;
  o.kmeans_iters = s.kmeans_iters > 0 ? s.kmeans_iters : kDefaultKmeansIters;
  o.kmeans_max_vectors = s.kmeans_max_vectors == 0  ? kDefaultKmeansMaxVectors
                         : s.kmeans_max_vectors < 0 ? 0
                                                    : s.kmeans_max_vectors;
  o.refine_iters = s.refine_iters;
  o.seed = LinearSeed(s.seed, linear_name);
  o.storage_dtype = storage_dtype;
  absl::Status valid = quant::ValidateVptqOptions(o, m, n);
  if (!valid.ok()) {
    return Annotate(valid, "options for ", linear_name, " (", m, "x", n, ")");
  }
  return o;
}

}  // namespace vptq::pipeline
