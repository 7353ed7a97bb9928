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
//  - Packed tensors (keys are suffixes of "NAME."):
//      centroids.weight          (G, K*v)            float dtype
//      res_centroids.weight      (G, K_r*v)          only if K_r > 0
//      outlier_centroids.weight  (1, K0*v0)          only if outlier_size > 0
//      indices                   (G, ceil(M/v), ceil(group_size*(b+b_r)/32)) int32
//      outlier_indices           (1, ceil(M/v0), outlier_size) int16 (uint16 bits)
//      perm                      (N,) int16 (uint16 bits); always written,
//                                except with perm off and N > 65535
//      weight_scale, weight_bias (N,) float dtype (1 and 0 when norm is off)
//      bias                      (M,) float dtype, only if has_bias
//    Centroid tensors carry no padding; index rows are padded to whole words
//    with zero bits.
//
// Thread safety: every function is pure (no shared state); call from any
// thread. Cost: O(M*N) time and memory; the index bit loops run on CPU (over
// rows in parallel), Dequantize runs on the device of q.centroids.
//
//   VPTQ_RETURN_IF_ERROR(q.layout.Validate());
//   VPTQ_ASSIGN_OR_RETURN(auto packed, PackChecked(q, torch::kHalf));
//   VPTQ_ASSIGN_OR_RETURN(QuantizedLinear back, Unpack(packed, q.layout));
//   torch::Tensor w = Dequantize(back);  // (M, N) float32
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vptq::quant {

// Suffixes of the packed tensors (keys of Pack's map; "NAME." + suffix in a
// checkpoint).
namespace packed_names {
inline constexpr char kCentroids[] = "centroids.weight";
inline constexpr char kResCentroids[] = "res_centroids.weight";
inline constexpr char kOutlierCentroids[] = "outlier_centroids.weight";
inline constexpr char kIndices[] = "indices";
inline constexpr char kOutlierIndices[] = "outlier_indices";
inline constexpr char kPerm[] = "perm";
inline constexpr char kWeightScale[] = "weight_scale";
inline constexpr char kWeightBias[] = "weight_bias";
inline constexpr char kBias[] = "bias";
}  // namespace packed_names

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
  int64_t vector_rows() const;          // ceil(M / v)
  int64_t outlier_vector_rows() const;  // ceil(M / v0), 0 without outliers
  int64_t packed_words_per_row() const; // ceil(group_size * (b + b_r) / 32)
  // Honest total bits per weight of this layout (DESIGN.md §2), given the
  // width of a stored codebook/scale element (16 for fp16/bf16):
  //   (N-os)/N*(b+b_r)/v + os/N*log2(K0)/v0
  //   + element_bits*(v*G*(K+K_r) + v0*K0)/(M*N) + 2*element_bits/M.
  double BitsPerWeight(int element_bits = 16) const;
  // Bits the packed tensors really take per weight: index words with their
  // row and word padding, outlier indices at 16 bits, perm at 16 bits a
  // column, codebooks, scale and bias. Excludes the linear's own `bias`,
  // which the unquantized layer carries too.
  double StoredBitsPerWeight(int element_bits = 16) const;
  // INVALID_ARGUMENT naming the field and saying what to change.
  absl::Status Validate() const;
};

struct QuantizedLinear {
  QuantLayout layout;
  torch::Tensor centroids;          // (G, K, v) float32
  torch::Tensor res_centroids;      // (G, K_r, v) float32, or undefined
  torch::Tensor outlier_centroids;  // (K0, v0) float32, or undefined
  torch::Tensor indices;            // (G, ceil(M/v), group_size) int64
  torch::Tensor res_indices;        // same shape, or undefined
  torch::Tensor outlier_indices;    // (ceil(M/v0), outlier_size) int64, or undefined
  torch::Tensor perm;               // (N,) int64; undefined = identity (perm off only)
  torch::Tensor scale;              // (N,) float32, per original column
  torch::Tensor bias_norm;          // (N,) float32, per original column
  torch::Tensor bias;               // (M,) float32, or undefined
};

// Checks q against its layout: layout valid, every tensor present exactly when
// the layout needs it, shapes, integer/floating dtypes, indices in range, perm
// a permutation of [0, N) (the identity, or undefined, when perm is off),
// finite floats. With norm off, scale/bias_norm may be undefined (1 and 0).
// INVALID_ARGUMENT naming the tensor.
absl::Status ValidateQuantizedLinear(const QuantizedLinear& q);

// Packed tensors keyed by suffix ("centroids.weight", "indices", "perm", ...),
// floats in `dtype` (kHalf / kBFloat16 / kFloat); CPU, contiguous.
// PackChecked: INVALID_ARGUMENT when q fails ValidateQuantizedLinear, `dtype`
// is not a float type, or a value overflows `dtype`.
// Pack: the same, but returns an empty map on error (call PackChecked for the
// reason).
absl::StatusOr<std::map<std::string, torch::Tensor>> PackChecked(
    const QuantizedLinear& q, torch::ScalarType dtype);
std::map<std::string, torch::Tensor> Pack(const QuantizedLinear& q,
                                          torch::ScalarType dtype);
// Inverse of Pack: INVALID_ARGUMENT naming the tensor on a missing or
// unexpected tensor, a wrong dtype or shape, an index out of range, a perm
// that is not a permutation, or a non-finite float. Tensors may be on any
// device; the result is on CPU, floats as float32. With perm off the stored
// perm (optional) is ignored, as the stock loader does, and q.perm is the
// identity.
absl::StatusOr<QuantizedLinear> Unpack(
    const std::map<std::string, torch::Tensor>& packed, const QuantLayout& layout);

// Dense (M, N) float32 weight, exactly as the stock loader rebuilds it
// (in float32: C + R, padded rows dropped, outlier columns first, columns
// un-permuted, then * scale, then + bias_norm per original column).
// DequantizeChecked: INVALID_ARGUMENT when q fails ValidateQuantizedLinear.
// Dequantize: the same, undefined tensor on error.
absl::StatusOr<torch::Tensor> DequantizeChecked(const QuantizedLinear& q);
torch::Tensor Dequantize(const QuantizedLinear& q);

// Bit packing of one code stream per row (DESIGN.md §3): codes (R, C) of any
// integer dtype with values in [0, 2^bits), 1 <= bits <= 32
// -> (R, ceil(C*bits/32)) int32 holding uint32 bits, LSB first, code c at
// stream bit c*bits, zero padding. Returns an undefined tensor when a
// precondition fails.
torch::Tensor PackIndexRows(const torch::Tensor& codes, int bits);
// Inverse: words (R, W) int32 with W == ceil(cols*bits/32) -> (R, cols) int64.
// Padding bits are ignored. Undefined tensor when a precondition fails.
torch::Tensor UnpackIndexRows(const torch::Tensor& words, int64_t cols, int bits);

// config_for_layers entry (exactly the stock keys, in the stock order) and
// back. LayoutFromConfig: INVALID_ARGUMENT naming the key on a missing, extra
// or mistyped key, indices_as_float true, is_indice_packed false, or a layout
// that fails Validate.
nlohmann::ordered_json LayoutToConfig(const QuantLayout& layout);
absl::StatusOr<QuantLayout> LayoutFromConfig(const nlohmann::json& entry);

}  // namespace vptq::quant
