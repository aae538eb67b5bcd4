# Shared build settings for every Horizon-MQ target.

add_library(hmq_warnings INTERFACE)
target_compile_options(hmq_warnings INTERFACE -Wall -Wextra -Wpedantic)
if(HMQ_WERROR)
  target_compile_options(hmq_warnings INTERFACE -Werror)
endif()
# One section per function and data object, so that an executable linked with --gc-sections
# (hmq-agent) keeps only the code it uses.
add_compile_options(-ffunction-sections -fdata-sections)
# libFuzzer steers by coverage, so the code under test (core, components), not only the
# *_fuzz.cc file, must carry the coverage hooks; -fsanitize=fuzzer is linked into the fuzzers
# alone (tests/fuzz/CMakeLists.txt). Use a separate build directory for this.
if(HMQ_BUILD_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
if(HMQ_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()

# Every target includes from the repository root: "core/wire/codec.h", and generated schema
# headers as "schema/message_generated.h".
set(HMQ_ROOT ${CMAKE_SOURCE_DIR})
set(HMQ_GENERATED_DIR ${CMAKE_BINARY_DIR}/generated)

# hmq_library(NAME name SOURCES ... DEPS ...): a static library hmq_<name> aliased hmq::<name>.
function(hmq_library)
  cmake_parse_arguments(A "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_library(hmq_${A_NAME} STATIC ${A_SOURCES})
  add_library(hmq::${A_NAME} ALIAS hmq_${A_NAME})
  target_include_directories(hmq_${A_NAME} PUBLIC ${HMQ_ROOT} ${HMQ_GENERATED_DIR})
  target_link_libraries(hmq_${A_NAME} PUBLIC ${A_DEPS} PRIVATE hmq_warnings)
endfunction()

# hmq_executable(NAME name SOURCES ... DEPS ...): a thin binary.
function(hmq_executable)
  cmake_parse_arguments(A "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_executable(${A_NAME} ${A_SOURCES})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS} hmq_warnings)
endfunction()
