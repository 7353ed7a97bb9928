#include "worker/quant/assign_nearest_cpu.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <utility>

namespace vptq::quant {
namespace {

// Vectors handled per register: one vector per SIMD lane, R registers per
// tile. R grows as v shrinks, so that V·R registers of vector data, R
// accumulators, R running minima and R running indices fit the register file
// (32 zmm / 16 ymm) and each broadcast centroid value feeds R FMAs.
constexpr int RowsAvx512(int v) { return v <= 2 ? 4 : v <= 5 ? 3 : v <= 10 ? 2 : 1; }
constexpr int RowsAvx2(int v) { return v <= 4 ? 2 : 1; }

using RowsFn = void (*)(const CentroidTable&, const float*, int64_t, int64_t,
                        int64_t*, float*);

// Copies up to `rows` vectors of x into `buf` transposed (buf[d*stride + i]),
// zero-padding the tail so every lane holds a valid (ignored) vector.
template <int V>
inline void TransposeTile(const float* x, int64_t rows, int stride, float* buf) {
  for (int64_t i = 0; i < rows; ++i) {
    for (int d = 0; d < V; ++d) buf[d * stride + i] = x[i * V + d];
  }
  for (int64_t i = rows; i < stride; ++i) {
    for (int d = 0; d < V; ++d) buf[d * stride + i] = 0.0f;
  }
}

inline void StoreTile(const int32_t* best, const float* best_score, int64_t rows,
                      int64_t* index, float* score) {
  for (int64_t i = 0; i < rows; ++i) index[i] = best[i];
  if (score != nullptr) std::memcpy(score, best_score, rows * sizeof(float));
}

// ---------------------------------------------------------------- AVX-512 --

template <int V>
__attribute__((target("avx512f,avx2,fma"))) void AssignRowsAvx512(
    const CentroidTable& table, const float* x, int64_t begin, int64_t end,
    int64_t* index, float* score) {
  constexpr int R = RowsAvx512(V);
  constexpr int kTile = 16 * R;
  const int64_t k = table.k();
  const float* const t0 = table.data();
  alignas(64) float buf[V * kTile];
  alignas(64) int32_t best[kTile];
  alignas(64) float best_score[kTile];

  for (int64_t row = begin; row < end; row += kTile) {
    const int64_t rows = std::min<int64_t>(kTile, end - row);
    TransposeTile<V>(x + row * V, rows, kTile, buf);
    __m512 xv[R][V];
    __m512 min_score[R];
    __m512i min_index[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int d = 0; d < V; ++d) xv[r][d] = _mm512_load_ps(buf + d * kTile + 16 * r);
      min_score[r] = _mm512_set1_ps(std::numeric_limits<float>::infinity());
      min_index[r] = _mm512_setzero_si512();
    }
    const float* t = t0;
    for (int64_t j = 0; j < k; ++j, t += V + 1) {
      // Two dependency chains (even / odd dimensions) halve the FMA latency
      // each centroid waits for.
      __m512 even[R];
      __m512 odd[R];
      const __m512 norm = _mm512_set1_ps(t[0]);
      const __m512 c0 = _mm512_set1_ps(t[1]);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) even[r] = _mm512_fmadd_ps(xv[r][0], c0, norm);
      if constexpr (V > 1) {
        const __m512 c1 = _mm512_set1_ps(t[2]);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) odd[r] = _mm512_mul_ps(xv[r][1], c1);
      }
#pragma GCC unroll 16
      for (int d = 2; d < V; ++d) {
        const __m512 cd = _mm512_set1_ps(t[1 + d]);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          if (d % 2 == 0) {
            even[r] = _mm512_fmadd_ps(xv[r][d], cd, even[r]);
          } else {
            odd[r] = _mm512_fmadd_ps(xv[r][d], cd, odd[r]);
          }
        }
      }
      const __m512i jv = _mm512_set1_epi32(static_cast<int32_t>(j));
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m512 s = V > 1 ? _mm512_add_ps(even[r], odd[r]) : even[r];
        // Strictly less: an equal score later in the sweep keeps the lower
        // index.
        const __mmask16 better = _mm512_cmp_ps_mask(s, min_score[r], _CMP_LT_OQ);
        min_score[r] = _mm512_mask_mov_ps(min_score[r], better, s);
        min_index[r] = _mm512_mask_mov_epi32(min_index[r], better, jv);
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      _mm512_store_ps(best_score + 16 * r, min_score[r]);
      _mm512_store_si512(reinterpret_cast<__m512i*>(best + 16 * r), min_index[r]);
    }
    StoreTile(best, best_score, rows, index + row, score ? score + row : nullptr);
  }
}

// ------------------------------------------------------------------- AVX2 --

template <int V>
__attribute__((target("avx2,fma"))) void AssignRowsAvx2(
    const CentroidTable& table, const float* x, int64_t begin, int64_t end,
    int64_t* index, float* score) {
  constexpr int R = RowsAvx2(V);
  constexpr int kTile = 8 * R;
  const int64_t k = table.k();
  const float* const t0 = table.data();
  alignas(32) float buf[V * kTile];
  alignas(32) int32_t best[kTile];
  alignas(32) float best_score[kTile];

  for (int64_t row = begin; row < end; row += kTile) {
    const int64_t rows = std::min<int64_t>(kTile, end - row);
    TransposeTile<V>(x + row * V, rows, kTile, buf);
    __m256 xv[R][V];
    __m256 min_score[R];
    __m256 min_index[R];  // int32 bits, blended as floats
#pragma GCC unroll 2
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int d = 0; d < V; ++d) xv[r][d] = _mm256_load_ps(buf + d * kTile + 8 * r);
      min_score[r] = _mm256_set1_ps(std::numeric_limits<float>::infinity());
      min_index[r] = _mm256_setzero_ps();
    }
    const float* t = t0;
    for (int64_t j = 0; j < k; ++j, t += V + 1) {
      __m256 even[R];
      __m256 odd[R];
      const __m256 norm = _mm256_set1_ps(t[0]);
      const __m256 c0 = _mm256_set1_ps(t[1]);
#pragma GCC unroll 2
      for (int r = 0; r < R; ++r) even[r] = _mm256_fmadd_ps(xv[r][0], c0, norm);
      if constexpr (V > 1) {
        const __m256 c1 = _mm256_set1_ps(t[2]);
#pragma GCC unroll 2
        for (int r = 0; r < R; ++r) odd[r] = _mm256_mul_ps(xv[r][1], c1);
      }
#pragma GCC unroll 16
      for (int d = 2; d < V; ++d) {
        const __m256 cd = _mm256_set1_ps(t[1 + d]);
#pragma GCC unroll 2
        for (int r = 0; r < R; ++r) {
          if (d % 2 == 0) {
            even[r] = _mm256_fmadd_ps(xv[r][d], cd, even[r]);
          } else {
            odd[r] = _mm256_fmadd_ps(xv[r][d], cd, odd[r]);
          }
        }
      }
      const __m256 jv = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int32_t>(j)));
#pragma GCC unroll 2
      for (int r = 0; r < R; ++r) {
        const __m256 s = V > 1 ? _mm256_add_ps(even[r], odd[r]) : even[r];
        const __m256 better = _mm256_cmp_ps(s, min_score[r], _CMP_LT_OQ);
        min_score[r] = _mm256_blendv_ps(min_score[r], s, better);
        min_index[r] = _mm256_blendv_ps(min_index[r], jv, better);
      }
    }
#pragma GCC unroll 2
    for (int r = 0; r < R; ++r) {
      _mm256_store_ps(best_score + 8 * r, min_score[r]);
      _mm256_store_ps(reinterpret_cast<float*>(best + 8 * r), min_index[r]);
    }
    StoreTile(best, best_score, rows, index + row, score ? score + row : nullptr);
  }
}

// ----------------------------------------------------------------- scalar --

void AssignRowsScalar(const CentroidTable& table, const float* x, int64_t begin,
                      int64_t end, int64_t* index, float* score) {
  const int v = table.v();
  const int64_t k = table.k();
  for (int64_t i = begin; i < end; ++i) {
    const float* xi = x + i * v;
    float best = std::numeric_limits<float>::infinity();
    int64_t best_j = 0;
    const float* t = table.data();
    for (int64_t j = 0; j < k; ++j, t += v + 1) {
      float s = t[0];
      for (int d = 0; d < v; ++d) s += xi[d] * t[1 + d];
      if (s < best) {
        best = s;
        best_j = j;
      }
    }
    index[i] = best_j;
    if (score != nullptr) score[i] = best;
  }
}

// One instantiation per vector length 1..kFusedAssignMaxDim.
template <size_t... I>
constexpr std::array<RowsFn, sizeof...(I)> Avx512Table(std::index_sequence<I...>) {
  return {&AssignRowsAvx512<static_cast<int>(I) + 1>...};
}
template <size_t... I>
constexpr std::array<RowsFn, sizeof...(I)> Avx2Table(std::index_sequence<I...>) {
  return {&AssignRowsAvx2<static_cast<int>(I) + 1>...};
}
constexpr auto kAvx512Rows = Avx512Table(std::make_index_sequence<kFusedAssignMaxDim>());
constexpr auto kAvx2Rows = Avx2Table(std::make_index_sequence<kFusedAssignMaxDim>());

}  // namespace

std::string_view CpuIsaName(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAvx512:
      return "avx512";
    case CpuIsa::kAvx2:
      return "avx2";
    case CpuIsa::kScalar:
      break;
  }
  return "scalar";
}

bool CpuIsaSupported(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAvx512:
      return __builtin_cpu_supports("avx512f");
    case CpuIsa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CpuIsa::kScalar:
      break;
  }
  return true;
}

CpuIsa BestCpuIsa() {
  static const CpuIsa best = CpuIsaSupported(CpuIsa::kAvx512) ? CpuIsa::kAvx512
                             : CpuIsaSupported(CpuIsa::kAvx2) ? CpuIsa::kAvx2
                                                              : CpuIsa::kScalar;
  return best;
}

CentroidTable::CentroidTable(const float* c, int64_t k, int v)
    : k_(k), v_(v), table_(static_cast<size_t>(k) * (v + 1)) {
  for (int64_t j = 0; j < k; ++j) {
    const float* cj = c + j * v;
    float* t = table_.data() + j * (v + 1);
    float norm = 0.0f;
    for (int d = 0; d < v; ++d) {
      norm += cj[d] * cj[d];
      t[1 + d] = -2.0f * cj[d];  // exact: a power-of-two scale
    }
    t[0] = norm;
  }
}

void AssignNearestCpuRows(const CentroidTable& table, const float* x,
                          int64_t begin, int64_t end, int64_t* index,
                          float* score, CpuIsa isa) {
  if (begin >= end) return;
  const int v = table.v();
  // SIMD lanes carry int32 indices.
  const bool simd_ok = v >= 1 && v <= kFusedAssignMaxDim &&
                       table.k() <= std::numeric_limits<int32_t>::max() &&
                       CpuIsaSupported(isa);
  if (simd_ok && isa == CpuIsa::kAvx512) {
    kAvx512Rows[v - 1](table, x, begin, end, index, score);
  } else if (simd_ok && isa == CpuIsa::kAvx2) {
    kAvx2Rows[v - 1](table, x, begin, end, index, score);
  } else {
    AssignRowsScalar(table, x, begin, end, index, score);
  }
}

}  // namespace vptq::quant
