// Options of the VPTQ quantizer (DESIGN.md §2), their validation, the paper
// presets, a chooser that fits a bits-per-weight budget, and the stock CUDA
// kernel envelope check.
//
//   VptqOptions o = PresetOptions(VptqPreset::k2Bit);     // v=6, K=4096
//   VPTQ_RETURN_IF_ERROR(ValidateVptqOptions(o, m, n));
//   VPTQ_ASSIGN_OR_RETURN(VptqOptions fit, ChooseOptionsForBits(2.1, m, n, 16));
//
// Thread safety: plain data and pure functions.
#pragma once

#include <cstdint>
#include <string>

#include <torch/types.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/quant/quantized_linear.h"
#include "worker/quant/second_order.h"

namespace vptq::quant {

struct VptqOptions {
  // Main codebooks: G groups of columns, each with K centroids of length v
  // and, with K_r > 0, K_r residual centroids.
  int64_t vector_len = 6;          // v
  int64_t num_centroids = 4096;    // K, power of two, <= 65536
  int64_t num_res_centroids = 0;   // K_r, 0 = no residual VQ
  int64_t group_num = 1;           // G
  // Outlier columns: the first ceil(p·N) columns (in permuted order) plus
  // (N − ceil(p·N)) mod G more get their own codebook (v0, K0).
  double outlier_fraction = 0;         // p in [0, 1)
  int64_t outlier_vector_len = 4;      // v0 (>= 2, as the stock loader needs)
  int64_t outlier_num_centroids = 8192;  // K0

  bool enable_perm = true;   // act-order by diag H
  bool enable_norm = false;  // per-column min-max; off until measured better

  // Second-order pass.
  int64_t block_size = 128;
  bool error_feedback = true;  // false: plain nearest-centroid VQ (ablation)
  DampingOptions damping;

  // Hessian-weighted k-means.
  int kmeans_iters = 25;
  double kmeans_tol = 1e-4;
  // Train each codebook on at most this many vectors (a seeded uniform
  // sample, keeping their Hessian weights); 0 = all vectors.
  int64_t kmeans_max_vectors = 0;
  uint64_t seed = 0;

  // Centroid refinement rounds after the pass (0 = off); stops early when
  // the proxy loss stops falling.
  int refine_iters = 0;

  // dtype the codebooks, scale and bias are stored in (fp16, bf16 or fp32).
  // Codebooks are rounded to it before the final assignment pass, so the
  // result is exactly what the packed checkpoint holds.
  torch::ScalarType storage_dtype = torch::kHalf;

  // Optional fixed codebooks (skip k-means for that codebook), e.g. shared
  // across linears: (G, K, v), (G, K_r, v), (K0, v0) float.
  torch::Tensor init_centroids;
  torch::Tensor init_res_centroids;
  torch::Tensor init_outlier_centroids;
};

enum class VptqPreset {
  k2Bit,          // v=6, K=4096
  k2BitOutliers,  // p=1%, v0=4, K0=8192; v=12, K=4096, K_r=4096, G=4
  k3Bit,          // v=8, K=65536, K_r=256
  k4Bit,          // v=6, K=65536, K_r=256
};
// The paper's settings (index bits only; codebooks and scale/bias add to
// them, see QuantLayout::BitsPerWeight).
VptqOptions PresetOptions(VptqPreset preset);

// Number of outlier columns for N inputs (DESIGN.md §2 step 4).
int64_t OutlierColumns(const VptqOptions& o, int64_t n);

// The layout these options give an (M, N) linear.
QuantLayout LayoutFor(const VptqOptions& o, int64_t m, int64_t n);

// INVALID_ARGUMENT naming the option and saying what to change: K or K_r
// not a power of two, v < 1, K larger than the vectors of a group, N > 65535
// with perm, residual bits > index bits, bad outlier settings, groups that
// do not fit, bad pass/k-means settings, fixed codebooks of the wrong shape.
absl::Status ValidateVptqOptions(const VptqOptions& o, int64_t m, int64_t n);

// Picks v, K, K_r (G = 1, no outliers) so that the total bits per weight
// (codebooks and scale/bias included, `element_bits` per stored element)
// is at most `target_bpw`, among the stock-kernel settings (index bits
// {4,8,10,12..16}, residual bits {0,2..12,15,16} <= index bits, v in
// {2,4,6,8,10,12,16}) with at least 32 training vectors per centroid.
// Preference: the most index bits per weight; then v closest to the
// paper's v for the nearest bit level (8 for targets in [2.5, 3.5), else 6;
// larger v on a tie); then fewer residual bits; then the smaller codebook.
// So a 4096×4096 layer at 2.1 bits gets the paper's v=6, K=4096 and a
// 288×288 layer at 2.35 bits gets v=4, K=256. INVALID_ARGUMENT when nothing
// fits (the message gives the smallest reachable total).
absl::StatusOr<VptqOptions> ChooseOptionsForBits(double target_bpw, int64_t m,
                                                 int64_t n, int element_bits);

// True when the stock `vptq` CUDA kernels support the layout; otherwise
// false with the reason in *why (may be null).
bool InStockKernelEnvelope(const QuantLayout& layout, std::string* why);

}  // namespace vptq::quant
