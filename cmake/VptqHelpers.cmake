# Small helpers shared by every folder: one place decides warnings, labels and
# timeouts so that each CMakeLists.txt stays a list of sources.

set(VPTQ_WARNINGS -Wall -Wextra -Wno-unused-parameter)
# GCC 12 at -O3 reports -Wrestrict inside libstdc++'s own string concatenation
# ("#" + std::to_string(n)): a known false positive (GCC bug 105329).
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  list(APPEND VPTQ_WARNINGS -Wno-restrict)
endif()
if(VPTQ_WERROR)
  list(APPEND VPTQ_WARNINGS -Werror)
endif()

# vptq_library(name SOURCES ... DEPS ... [TORCH])
function(vptq_library name)
  cmake_parse_arguments(ARG "TORCH" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_compile_options(${name} PRIVATE ${VPTQ_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  if(ARG_TORCH)
    vptq_use_torch(${name})
  endif()
endfunction()

# Torch headers are slow to parse: every torch-using target shares one
# precompiled header.
function(vptq_use_torch name)
  target_link_libraries(${name} PUBLIC ${TORCH_LIBRARIES})
  target_compile_options(${name} PRIVATE ${TORCH_CXX_FLAGS} -pthread)
  if(TARGET vptq_torch_pch)
    target_precompile_headers(${name} REUSE_FROM vptq_torch_pch)
  endif()
endfunction()

# vptq_test(name SOURCES ... DEPS ... LABELS ... [TIMEOUT s] [TORCH])
# One binary and one ctest entry per call: libtorch binaries cost ~0.4 s to
# start, so tests are grouped into few binaries rather than one per case.
function(vptq_test name)
  cmake_parse_arguments(ARG "TORCH" "TIMEOUT" "SOURCES;DEPS;LABELS;ARGS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_compile_options(${name} PRIVATE ${VPTQ_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} vptq_test_main GTest::gmock)
  if(ARG_TORCH)
    vptq_use_torch(${name})
  endif()
  add_test(NAME ${name} COMMAND ${name} ${ARG_ARGS}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}"
      ENVIRONMENT "VPTQ_SOURCE_DIR=${PROJECT_SOURCE_DIR};VPTQ_BUILD_DIR=${PROJECT_BINARY_DIR}")
endfunction()
