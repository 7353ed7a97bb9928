// What a job asks of the quantizer, as plain values (vptq.v1.QuantOptions
// field for field), and its resolution into the engine's VptqOptions for one
// linear's shape.
//
// Mapping from the proto: every QuantOptions field has the member of the
// same name; proto zeros mean "default" exactly as here; `optional bool`
// fields map to std::optional<bool>. `kmeans_max_vectors` has no proto field
// yet (0 = the pipeline default below).
//
// Resolution (ResolveVptqOptions), in order:
//  1. bits > 0: quant::ChooseOptionsForBits(bits, M, N, element bits of the
//     output dtype) picks v, K, K_r for this shape so that the total bits
//     per weight (codebooks, scale and bias included) is <= bits;
//     bits == 0: the engine's VptqOptions defaults (v = 6, K = 4096).
//  2. Every explicit (non-zero / set) field then overrides.
//  3. Pipeline defaults: kmeans_iters = kDefaultKmeansIters, k-means trained
//     on at most kDefaultKmeansMaxVectors vectors, seed mixed with the linear
//     name (so linears differ but reruns repeat), codebooks stored in the
//     output dtype.
//  4. quant::ValidateVptqOptions; INVALID_ARGUMENT names the option.
//
//   QuantSettings s; s.bits = 2;
//   VPTQ_ASSIGN_OR_RETURN(torch::ScalarType dt, ResolveOutputDType(s, DType::kF32));
//   VPTQ_ASSIGN_OR_RETURN(quant::VptqOptions o,
//       ResolveVptqOptions(s, "model.layers.0.mlp.up_proj", 768, 288, dt));
//
// Thread safety: plain data and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "common/safetensors.h"
#include "worker/quant/vptq_options.h"

namespace vptq::pipeline {

// k-means defaults sized for the models the pipeline sees most: enough
// iterations to converge on small layers, a vector cap that keeps large
// layers' codebook fits bounded (a 4096x4096 layer at v = 6 has 2.8M vectors).
inline constexpr int kDefaultKmeansIters = 25;
inline constexpr int64_t kDefaultKmeansMaxVectors = 1 << 18;
inline constexpr double kDefaultDamp = 0.01;

struct QuantSettings {
  int bits = 0;  // 2, 3 or 4 (any positive target is accepted); 0 = explicit
  int64_t vector_len = 0;
  int64_t num_centroids = 0;
  int64_t num_res_centroids = 0;
  int64_t group_num = 0;
  double outlier_fraction = 0;
  int64_t outlier_vector_len = 0;
  int64_t outlier_num_centroids = 0;
  std::optional<bool> enable_perm;
  std::optional<bool> enable_norm;
  uint64_t seed = 0;
  int kmeans_iters = 0;
  int refine_iters = 0;
  double damp = 0;  // λ of the Hessian finalization; 0 = kDefaultDamp
  int64_t block_size = 0;
  std::string output_dtype;  // "fp16" | "bf16" | "fp32" | "" (model's dtype)
  int64_t kmeans_max_vectors = 0;  // 0 = kDefaultKmeansMaxVectors; < 0 = all
};

// λ to finalize Hessians with (damp, or the default).
double EffectiveDamp(const QuantSettings& settings);

// The dtype packed codebooks, scale/bias and the copied unquantized tensors
// are written in: output_dtype, or `model_dtype` when empty.
// INVALID_ARGUMENT for an unknown name or a non-float model dtype.
absl::StatusOr<torch::ScalarType> ResolveOutputDType(const QuantSettings& settings,
                                                     DType model_dtype);
// "fp16" -> kHalf, "bf16" -> kBFloat16, "fp32" -> kFloat (also the long
// names "float16", "bfloat16", "float32").
absl::StatusOr<torch::ScalarType> ParseOutputDType(std::string_view name);

// Seed used for one linear: the job seed mixed with the linear's name
// (FNV-1a then SplitMix64), stable across platforms.
uint64_t LinearSeed(uint64_t job_seed, std::string_view linear_name);

absl::StatusOr<quant::VptqOptions> ResolveVptqOptions(const QuantSettings& settings,
                                                      std::string_view linear_name,
                                                      int64_t out_features,
                                                      int64_t in_features,
                                                      torch::ScalarType storage_dtype);

}  // namespace vptq::pipeline
