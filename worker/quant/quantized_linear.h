// The quantized form of one linear layer, logical (unpacked) and packed as
// the stock `vptq` loader reads it (DESIGN.md §3).
//
// Conventions (checked against testdata/vptq_format/):
//  - M = out_features, N = in_features; stored column j holds original column
//    perm[j]; the first `outlier_size` stored columns use the outlier codebook,
//    the rest are G groups of `group_size` columns.
//  - A vector is v consecutive rows of one stored column; rows are padded to a
//    multiple of v (padded rows are dropped on dequantisation).
//  - scale/bias_norm are indexed by original column:
//      W[:, perm[j]] = Wp[:, j] * scale[perm[j]] + bias_norm[perm[j]].
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "absl/status/statusor.h"

namespace vptq::quant {

struct QuantLayout {
  int64_t out_features = 0;  // M
  int64_t in_features = 0;   // N
  int64_t vector_len = 0;    // v
  int64_t num_centroids = 0;       // K (power of two)
  int64_t num_res_centroids = 0;   // K_r (power of two) or 0 = none
  int64_t group_num = 1;           // G
  int64_t group_size = 0;          // columns per group; G*group_size + outlier_size == N
  int64_t outlier_size = 0;        // columns with the outlier codebook
  int64_t outlier_vector_len = 0;  // v0 (0 without outliers)
  int64_t outlier_num_centroids = 0;  // K0 (0 without outliers)
  bool enable_perm = true;
  bool enable_norm = true;  // always true in the file; false = scale 1, bias 0
  bool has_bias = false;

  int index_bits() const;      // log2 K
  int res_index_bits() const;  // log2 K_r, 0 without residual
  // Honest total bits per weight of this layout (DESIGN.md §2), given the
  // width of a stored codebook/scale element (16 for fp16/bf16).
  double BitsPerWeight(int element_bits = 16) const;
  absl::Status Validate() const;  // INVALID_ARGUMENT naming the field
};

struct QuantizedLinear {
  QuantLayout layout;
  torch::Tensor centroids;          // (G, K, v) float32
  torch::Tensor res_centroids;      // (G, K_r, v) float32, or undefined
  torch::Tensor outlier_centroids;  // (K0, v0) float32, or undefined
  torch::Tensor indices;            // (G, ceil(M/v), group_size) int64
  torch::Tensor res_indices;        // same shape, or undefined
  torch::Tensor outlier_indices;    // (ceil(M/v0), outlier_size) int64, or undefined
  torch::Tensor perm;               // (N,) int64
  torch::Tensor scale;              // (N,) float32, per original column
  torch::Tensor bias_norm;          // (N,) float32, per original column
  torch::Tensor bias;               // (M,) float32, or undefined
};

// Packed tensors keyed by suffix ("centroids.weight", "indices", "perm", ...),
// floats in `dtype` (kHalf / kBFloat16 / kFloat).
std::map<std::string, torch::Tensor> Pack(const QuantizedLinear& q,
                                          torch::ScalarType dtype);
// Inverse of Pack: INVALID_ARGUMENT naming the tensor on a missing tensor or
// a shape that does not fit the layout.
absl::StatusOr<QuantizedLinear> Unpack(
    const std::map<std::string, torch::Tensor>& packed, const QuantLayout& layout);

// Dense (M, N) float32 weight, exactly as the stock loader rebuilds it.
torch::Tensor Dequantize(const QuantizedLinear& q);

// Bit packing of one code stream per row (DESIGN.md §3): codes (R, C) int64
// with values < 2^bits -> (R, ceil(C*bits/32)) int32, LSB first.
torch::Tensor PackIndexRows(const torch::Tensor& codes, int bits);
torch::Tensor UnpackIndexRows(const torch::Tensor& words, int64_t cols, int bits);

// config_for_layers entry (exactly the stock keys) and back.
nlohmann::ordered_json LayoutToConfig(const QuantLayout& layout);
absl::StatusOr<QuantLayout> LayoutFromConfig(const nlohmann::json& entry);

}  // namespace vptq::quant
