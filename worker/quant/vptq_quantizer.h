// VPTQ for one linear layer (DESIGN.md §2): act-order permutation, optional
// min-max normalisation (loss weighted by H̃ = S·H·S), outlier columns and G
// column groups with their own Hessian-weighted k-means codebooks, the
// channel-independent second-order pass, residual VQ, optional centroid
// refinement, reconstruction.
//
// Contract:
//  - w: (M, N) float weight, h: (N, N) finalized Hessian (hessian.h), any
//    float dtypes, same device; everything runs on that device.
//  - Codebooks, scale and bias are rounded to options.storage_dtype before
//    the final assignment pass, so `quantized` is exactly what
//    Unpack(Pack(quantized, storage_dtype)) returns and `reconstruction` ==
//    Dequantize(quantized) bit for bit; the proxy loss is that of the stored
//    model: tr(ΔW H ΔWᵀ)/tr(W H Wᵀ), original domain (proxy_loss.h).
//  - Deterministic for options.seed at a given thread count.
//  - INVALID_ARGUMENT for bad options (ValidateVptqOptions), shape mismatch,
//    NaN/Inf in w or h; FAILED_PRECONDITION when H̃ is not positive definite
//    even after the extra damping (DampingOptions; each step logged).
//
// Thread safety: QuantizeLinear is reentrant (no shared state); torch
// intra-op threads do the parallel work. Cost: dominated by k-means
// (iters × vectors × K × v) and the pass (N columns × ceil(M/v) × K × v,
// twice with residual VQ, once more per refinement round) plus O(M·N²) for
// error feedback and the proxy loss.
//
//   VptqOptions o = PresetOptions(VptqPreset::k2Bit);
//   VPTQ_ASSIGN_OR_RETURN(VptqResult r, QuantizeLinear(w, h.h, o));
//   auto packed = Pack(r.quantized, torch::kHalf);
#pragma once

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "worker/quant/quantized_linear.h"
#include "worker/quant/vptq_options.h"

namespace vptq::quant {

struct VptqStageSeconds {
  double perm = 0;      // act-order sort and permutation
  double norm = 0;      // min-max normalisation and H̃
  double kmeans = 0;    // main and outlier codebooks
  double pass = 0;      // inverse Cholesky + the first second-order pass
  double residual = 0;  // residual k-means + the second pass
  double refine = 0;    // all refinement rounds
  double total = 0;     // everything, including reconstruction and loss
};

struct VptqStats {
  double proxy_loss = 0;               // final, of the stored model
  double proxy_loss_before_refine = 0; // == proxy_loss when refine is off
  double bits_per_weight = 0;          // QuantLayout::BitsPerWeight
  VptqStageSeconds seconds;
  int kmeans_iterations = 0;           // summed over every codebook fitted
  double damping_added = 0;            // extra diagonal added to H̃
  int refine_rounds_accepted = 0;
};

struct VptqResult {
  QuantizedLinear quantized;    // on the input's device
  torch::Tensor reconstruction; // (M, N) float32 == Dequantize(quantized)
  VptqStats stats;
};

absl::StatusOr<VptqResult> QuantizeLinear(const torch::Tensor& w,
                                          const torch::Tensor& h,
                                          const VptqOptions& options);

// The same with options bound once (e.g. one per job).
class VptqQuantizer {
 public:
  explicit VptqQuantizer(VptqOptions options) : options_(std::move(options)) {}
  absl::StatusOr<VptqResult> Quantize(const torch::Tensor& w,
                                      const torch::Tensor& h) const {
    return QuantizeLinear(w, h, options_);
  }
  const VptqOptions& options() const { return options_; }

 private:
  VptqOptions options_;
};

}  // namespace vptq::quant
