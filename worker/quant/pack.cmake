# Packed checkpoint format (DESIGN.md §3): index packing, pack/unpack,
# reference dequantisation, config entries, torch <-> safetensors adapters.
vptq_library(vptq_pack TORCH
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/quant_layout.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/layout_config.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/index_packing.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/tensor_checks.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/quantized_linear_validate.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/pack.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/unpack.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/dequantize.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/tensor_io.cc
  DEPS vptq_common)

vptq_test(quant_pack_test TORCH
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/index_packing_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/quantized_linear_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/golden_format_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/tensor_io_test.cc
  DEPS vptq_pack
  LABELS unit
  TIMEOUT 60)
