# The portable kernels both OpenCL-C plugins share, included by backends/opencl and
# backends/level-zero (whichever comes first defines the targets):
#   tessera_gpu_ops     static: the op layer (gpu_ops.cc), the program cache and the embedded
#                       OpenCL C source (kernels/ with params.h prepended, as one string)
#   tessera_gpu_spirv   static: the same source compiled to SPIR-V at build time (clang -target
#                       spir64 + llvm-spirv), as bytes, plus that SPIR-V translated back to SPIR
#                       bitcode; empty (size 0) unless both tools are found (TESSERA_GPU_SPIRV_FOUND)
include_guard(GLOBAL)
# (TESSERA_GPU_SPIRV_FOUND is a cache entry so that the second includer, which returns at the
# guard, sees it too.)
set(_gk_dir ${CMAKE_CURRENT_LIST_DIR}/..)
set(_gk_out ${CMAKE_BINARY_DIR}/gpu_kernels)
set(_gk_inputs ${_gk_dir}/kernels/params.h ${_gk_dir}/kernels/tessera_kernels.cl)

add_custom_command(
  OUTPUT ${_gk_out}/tessera_kernels_full.cl ${_gk_out}/kernel_source.cc
  COMMAND ${CMAKE_COMMAND} -DMODE=source "-DIN=${_gk_inputs}"
          -DCL_OUT=${_gk_out}/tessera_kernels_full.cl -DCC_OUT=${_gk_out}/kernel_source.cc
          -P ${_gk_dir}/cmake/embed.cmake
  DEPENDS ${_gk_inputs} ${_gk_dir}/cmake/embed.cmake
  COMMENT "Embedding the OpenCL C kernels"
  VERBATIM)
file(MAKE_DIRECTORY ${_gk_out})

add_library(tessera_gpu_ops STATIC
  ${_gk_dir}/gpu_ops.cc
  ${_gk_dir}/program_cache.cc
  ${_gk_out}/kernel_source.cc)
tessera_target_defaults(tessera_gpu_ops)
target_include_directories(tessera_gpu_ops PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(tessera_gpu_ops PUBLIC tessera_backend_common tessera_base)
set_target_properties(tessera_gpu_ops PROPERTIES
  POSITION_INDEPENDENT_CODE ON
  CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)

# SPIR-V: llvm-spirv reads the bitcode of its own LLVM major, so pair it with that clang
# (Debian 12: llvm-spirv-14 with clang-14). -O0 without optnone: llvm-spirv 14 rejects the odd
# integer widths LLVM's optimizer introduces, and every SPIR-V consumer optimizes anyway.
find_program(TESSERA_LLVM_SPIRV NAMES llvm-spirv-14 llvm-spirv)
find_program(TESSERA_SPIRV_CLANG NAMES clang-14 clang)
set(TESSERA_GPU_SPIRV_FOUND OFF CACHE INTERNAL "SPIR-V kernels are built")
if(TESSERA_LLVM_SPIRV AND TESSERA_SPIRV_CLANG)
  set(TESSERA_GPU_SPIRV_FOUND ON CACHE INTERNAL "SPIR-V kernels are built")
  add_custom_command(
    OUTPUT ${_gk_out}/tessera_kernels.spv
    COMMAND ${TESSERA_SPIRV_CLANG} -x cl -cl-std=CL1.2 -target spir64
            -Xclang -finclude-default-header -O0 -Xclang -disable-O0-optnone
            -emit-llvm -c ${_gk_out}/tessera_kernels_full.cl -o ${_gk_out}/tessera_kernels.bc
    COMMAND ${TESSERA_LLVM_SPIRV} ${_gk_out}/tessera_kernels.bc -o ${_gk_out}/tessera_kernels.spv
    DEPENDS ${_gk_out}/tessera_kernels_full.cl
    COMMENT "Compiling the OpenCL C kernels to SPIR-V"
    VERBATIM)
  # The SPIR-V translated back to LLVM bitcode (spir64): how drivers without SPIR-V input but
  # with cl_khr_spir (Debian's pocl) still run exactly what the SPIR-V says (program=spirv).
  add_custom_command(
    OUTPUT ${_gk_out}/tessera_kernels_from_spirv.bc
    COMMAND ${TESSERA_LLVM_SPIRV} -r ${_gk_out}/tessera_kernels.spv
            -o ${_gk_out}/tessera_kernels_from_spirv.bc
    DEPENDS ${_gk_out}/tessera_kernels.spv
    COMMENT "Translating the SPIR-V kernels back to SPIR bitcode"
    VERBATIM)
  foreach(pair "kernel_spirv;tessera_kernels.spv;kKernelSpirv"
               "kernel_spir_bc;tessera_kernels_from_spirv.bc;kKernelSpirBitcode")
    list(GET pair 0 cc)
    list(GET pair 1 in)
    list(GET pair 2 sym)
    add_custom_command(
      OUTPUT ${_gk_out}/${cc}.cc
      COMMAND ${CMAKE_COMMAND} -DMODE=binary -DIN=${_gk_out}/${in}
              -DCC_OUT=${_gk_out}/${cc}.cc -DSYMBOL=${sym} -P ${_gk_dir}/cmake/embed.cmake
      DEPENDS ${_gk_out}/${in} ${_gk_dir}/cmake/embed.cmake
      COMMENT "Embedding ${in}"
      VERBATIM)
  endforeach()
  add_library(tessera_gpu_spirv STATIC ${_gk_out}/kernel_spirv.cc ${_gk_out}/kernel_spir_bc.cc)
  tessera_summary("  portable kernels: SPIR-V built with ${TESSERA_SPIRV_CLANG} + ${TESSERA_LLVM_SPIRV}")
else()
  # No SPIR-V toolchain: empty modules; the Level Zero plugin then reports why it has no device.
  file(WRITE ${_gk_out}/no_spirv.cc "namespace tessera::gpu {\n"
    "extern const unsigned char kKernelSpirv[] = {0};\nextern const unsigned long kKernelSpirvSize = 0;\n"
    "extern const unsigned char kKernelSpirBitcode[] = {0};\n"
    "extern const unsigned long kKernelSpirBitcodeSize = 0;\n}\n")
  add_library(tessera_gpu_spirv STATIC ${_gk_out}/no_spirv.cc)
  tessera_summary("  portable kernels: no SPIR-V (llvm-spirv-14 and clang-14 not both found)")
endif()
set_target_properties(tessera_gpu_spirv PROPERTIES
  POSITION_INDEPENDENT_CODE ON CXX_VISIBILITY_PRESET hidden)
