# Tokenizers (HF tokenizer.json) and the llama2.c tokenizer converter.
# Torch-free. Regex classes (\p{L}, \p{N}) and Unicode normalization come
# from ICU (Debian: libicu-dev).
find_package(ICU REQUIRED COMPONENTS uc i18n)

vptq_library(vptq_tokenizer
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_added_tokens.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_bpe.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_byte_level.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_decoder.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_json.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_normalizer.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_pattern.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_pre_tokenizer.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_utf8.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/llama2c_tokenizer.cc
  DEPS vptq_common nlohmann_json::nlohmann_json absl::flat_hash_map absl::strings
       absl::str_format absl::span absl::status absl::statusor ${ICU_LIBRARIES})
target_include_directories(vptq_tokenizer SYSTEM PUBLIC ${ICU_INCLUDE_DIRS})

# Unit tests plus exact-id comparisons with the npm reference encoders run
# under node (tests/reference/*.mjs).
vptq_test(tokenizer_test
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_bpe_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_components_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_reference_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/llama2c_tokenizer_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_test_util.cc
  DEPS vptq_tokenizer
  LABELS integration
  # The node references encode all of Moby Dick twice (~1 min on 2 cores).
  TIMEOUT 600)

# Speed on Moby Dick (JSON lines); lands in build/bench/ so that
# `bench/run tokenizer` finds it.
add_executable(tokenizer_benchmark ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_benchmark.cc)
target_link_libraries(tokenizer_benchmark PRIVATE vptq_tokenizer)
target_compile_options(tokenizer_benchmark PRIVATE ${VPTQ_WARNINGS})
target_compile_definitions(tokenizer_benchmark PRIVATE
  VPTQ_TOKENIZER_BENCH_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
set_target_properties(tokenizer_benchmark PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bench)
