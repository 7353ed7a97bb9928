# The quantization engine (DESIGN.md §1 step 2, §2): Hessian accumulation,
# the second-order pass, VPTQ, the scalar baselines and synthetic layers.
vptq_library(vptq_engine TORCH
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/hessian.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/second_order.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/proxy_loss.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/column_vq.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/vptq_options.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/vptq_quantizer.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/scalar_baselines.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/synthetic.cc
  DEPS vptq_kmeans vptq_pack vptq_common)

vptq_test(quant_engine_test TORCH
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/hessian_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/second_order_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/proxy_loss_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/column_vq_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/vptq_options_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/vptq_quantizer_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/scalar_baselines_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/synthetic_test.cc
  DEPS vptq_engine
  LABELS unit
  TIMEOUT 300)
