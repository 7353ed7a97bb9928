// Fused nearest-centroid kernel for CPU float32 (the fast path behind
// AssignNearest in kmeans.h). Torch-free.
//
// For each row x_i it returns argmin_j (‖c_j‖² − 2 x_i·c_j) (ties: lowest j)
// and that score; adding ‖x_i‖² gives the squared distance. Distances and the
// argmin are computed together in registers: vectors sit in SIMD lanes (16
// per AVX-512 register, 8 per AVX2 register), each centroid is broadcast, so
// the n×K distance matrix never exists, not even as a tile.
//
// The centroid table is prepared once per set of centroids (one row
// [‖c_j‖², −2c_j0, …, −2c_j(v−1)] per centroid) and is read-only afterwards:
// any number of threads may call AssignNearestCpuRows on disjoint row ranges.
// Cost: 2·v·K flops per row, K·(v+1)·4 bytes of table.
//
// The instruction set is chosen at run time (__builtin_cpu_supports), so one
// binary runs on machines with or without AVX-512 / AVX2.
//
//   CentroidTable table(c_ptr, k, v);
//   AssignNearestCpuRows(table, x_ptr, 0, n, index_out, score_out,
//                        BestCpuIsa());
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace vptq::quant {

// Largest vector length the fused kernel handles; longer vectors make the
// plain GEMM path compute-bound, so AssignNearest uses it instead.
inline constexpr int kFusedAssignMaxDim = 16;

enum class CpuIsa { kScalar, kAvx2, kAvx512 };

std::string_view CpuIsaName(CpuIsa isa);
bool CpuIsaSupported(CpuIsa isa);
// The fastest supported instruction set (AVX-512 > AVX2+FMA > scalar).
CpuIsa BestCpuIsa();

class CentroidTable {
 public:
  // c: (k, v) row-major float32; 1 <= v <= kFusedAssignMaxDim, k >= 1.
  CentroidTable(const float* c, int64_t k, int v);

  int64_t k() const { return k_; }
  int v() const { return v_; }
  // Row j: [‖c_j‖², −2c_j0, …, −2c_j(v−1)], stride v + 1.
  const float* data() const { return table_.data(); }

 private:
  int64_t k_;
  int v_;
  std::vector<float> table_;
};

// Rows [begin, end) of x (row-major, table.v() floats per row). Writes
// index[i] and score[i] (score may be null) for those rows only.
void AssignNearestCpuRows(const CentroidTable& table, const float* x,
                          int64_t begin, int64_t end, int64_t* index,
                          float* score, CpuIsa isa);

}  // namespace vptq::quant
