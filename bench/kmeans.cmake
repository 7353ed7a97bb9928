# kmeans benchmark (issue 2 §4): build/bench/kmeans_benchmark, run by
# `bench/run kmeans`. Compares against faiss (libfaiss-dev, installed by
# scripts/setup.sh); without faiss the benchmark is skipped.
find_package(OpenMP QUIET)
find_package(faiss CONFIG QUIET)
if(TARGET faiss AND TARGET OpenMP::OpenMP_CXX AND TARGET vptq_kmeans)
  add_executable(kmeans_benchmark ${CMAKE_CURRENT_SOURCE_DIR}/kmeans_benchmark.cc)
  target_include_directories(kmeans_benchmark PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_options(kmeans_benchmark PRIVATE ${VPTQ_WARNINGS})
  # faiss links the OpenMP runtime; the benchmark itself only calls
  # omp_set_num_threads, so it compiles without -fopenmp (which would defeat
  # the shared torch precompiled header).
  target_link_libraries(kmeans_benchmark PRIVATE vptq_kmeans faiss
                        CLI11::CLI11 nlohmann_json::nlohmann_json)
  vptq_use_torch(kmeans_benchmark)
else()
  message(WARNING "faiss or OpenMP not found: bench/kmeans_benchmark is not built "
                  "(install libfaiss-dev)")
endif()
