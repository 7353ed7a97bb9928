// Vector quantization of whole columns (DESIGN.md §2 step 3): a vector is v
// consecutive rows of one column, so a column of M rows holds ceil(M/v)
// vectors, the last one zero-padded when v does not divide M. Internal to
// the VPTQ quantizer.
//
// Nearest-centroid search for the padded last vector compares only its real
// entries (the padded rows are dropped on dequantisation, so they must not
// steer the choice). With a residual codebook the choice is two-stage
// (DESIGN.md §2 step 7): i = argmin ‖w − C_i‖, then j = argmin ‖w − C_i − R_j‖.
//
// Thread safety: ColumnVectorQuantizer is immutable after construction.
// Cost per column: one ceil(M/v)×K (and ×K_r) nearest-centroid search
// through AssignNearest (kmeans.h).
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace vptq::quant::internal {

// Columns given as rows of cols_t (C, M) -> (C·ceil(M/v), v) vectors, column
// by column, zero-padded.
torch::Tensor ColumnsToVectors(const torch::Tensor& cols_t, int64_t v);

// (C·ceil(M/v), v) float mask on the device of `like`: 1 on real rows, 0 on
// the padding of each column's last vector.
torch::Tensor PaddingMask(int64_t cols, int64_t m, int64_t v,
                          const torch::Tensor& like);

struct ColumnCodes {
  torch::Tensor q;        // (M,) float32 quantized column
  torch::Tensor idx;      // (ceil(M/v),) int64
  torch::Tensor res_idx;  // (ceil(M/v),) int64, undefined without residual
};

class ColumnVectorQuantizer {
 public:
  // centroids (K, v) and optional res_centroids (K_r, v), float32, on the
  // device the columns will be on; m = rows of a column.
  ColumnVectorQuantizer(torch::Tensor centroids, torch::Tensor res_centroids,
                        int64_t m);

  ColumnCodes Quantize(const torch::Tensor& column) const;

 private:
  torch::Tensor c_, r_;            // full codebooks
  torch::Tensor c_head_, r_head_;  // first m % v entries, for the last vector
  int64_t m_, v_, full_, rem_;
};

// Refinement step (DESIGN.md §2 step 8): with assignments fixed, each
// centroid becomes the weighted mean of the targets assigned to it, per
// coordinate (weights (n, v) carry the Hessian weight times the padding
// mask). Centroids nothing is assigned to keep their old value.
torch::Tensor RefitCentroids(const torch::Tensor& targets,
                             const torch::Tensor& assignment,
                             const torch::Tensor& weights,
                             const torch::Tensor& old_centroids);

}  // namespace vptq::quant::internal
