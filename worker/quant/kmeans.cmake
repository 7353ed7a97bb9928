# Hessian-weighted k-means (DESIGN.md §2 step 5) and its fused CPU
# nearest-centroid kernel (AVX-512 / AVX2 / scalar, chosen at run time).
vptq_library(vptq_kmeans TORCH
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/kmeans.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/assign_nearest.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/assign_nearest_cpu.cc
  DEPS vptq_common)

file(GLOB VPTQ_KMEANS_TESTS CONFIGURE_DEPENDS
  ${CMAKE_CURRENT_SOURCE_DIR}/kmeans_test.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/kmeans_*_test.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/assign_*_test.cc)
vptq_test(quant_kmeans_test TORCH
  SOURCES ${VPTQ_KMEANS_TESTS}
  DEPS vptq_kmeans
  LABELS unit TIMEOUT 120)
