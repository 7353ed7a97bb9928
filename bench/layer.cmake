# `layer` benchmark: VPTQ vs GPTQ-scalar vs RTN on a synthetic 4096x4096
# linear (bench/run layer).
add_executable(layer_benchmark ${CMAKE_CURRENT_SOURCE_DIR}/layer_benchmark.cc)
target_include_directories(layer_benchmark PRIVATE ${PROJECT_SOURCE_DIR}
                                                   ${PROJECT_BINARY_DIR})
target_compile_options(layer_benchmark PRIVATE ${VPTQ_WARNINGS})
target_link_libraries(layer_benchmark PRIVATE vptq_engine vptq_common
                                              CLI11::CLI11 nlohmann_json::nlohmann_json)
vptq_use_torch(layer_benchmark)
