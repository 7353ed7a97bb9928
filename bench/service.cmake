# Service benchmarks (torch-free). Included from bench/CMakeLists.txt.
add_executable(service_scheduler_benchmark
  ${PROJECT_SOURCE_DIR}/bench/service_scheduler_benchmark.cc)
target_include_directories(service_scheduler_benchmark PRIVATE
  ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
target_compile_options(service_scheduler_benchmark PRIVATE ${VPTQ_WARNINGS})
target_link_libraries(service_scheduler_benchmark PRIVATE vptq_coordinator CLI11::CLI11)
