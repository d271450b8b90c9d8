// The portable kernel program (kernels/tessera_kernels.cl with kernels/params.h prepended), the
// kernels it defines, and the SPIR-V form of the same program where the build made one. Shared by
// the OpenCL plugin (which builds the source at run time) and the Level Zero plugin (which loads
// the SPIR-V compiled at build time by clang + llvm-spirv).
#ifndef TESSERA_BACKENDS_OPENCL_KERNEL_SOURCE_H_
#define TESSERA_BACKENDS_OPENCL_KERNEL_SOURCE_H_

#include <cstdint>

namespace tessera::gpu {

// NUL-terminated OpenCL C 1.2 source; kKernelSourceSize excludes the NUL.
extern const char kKernelSource[];
extern const unsigned long kKernelSourceSize;

// SPIR-V module of the same source, compiled at build time (clang -target spir64 + llvm-spirv),
// and that module translated back to SPIR (LLVM bitcode, spir64) for OpenCL drivers that take
// cl_khr_spir but not SPIR-V. Both empty (size 0) when the build had no SPIR-V toolchain.
extern const unsigned char kKernelSpirv[];
extern const unsigned long kKernelSpirvSize;
extern const unsigned char kKernelSpirBitcode[];
extern const unsigned long kKernelSpirBitcodeSize;

// Every kernel of the program; KernelName() is its OpenCL C name.
enum class Kernel : int {
  kElementwise,
  kRows,
  kMatmul,
  kRope,
  kAttention,
  kConvert,
  kQuantRows,
  kGetRows,
  kKvWrite,
  kConv,
  kCount
};

inline const char* KernelName(Kernel k) {
  static const char* const kNames[] = {
      "tsr_elementwise", "tsr_rows",       "tsr_matmul",   "tsr_rope",     "tsr_attention",
      "tsr_convert",     "tsr_quant_rows", "tsr_get_rows", "tsr_kv_write", "tsr_conv"};
  return kNames[static_cast<int>(k)];
}

// 64-bit FNV-1a, for cache keys.
inline uint64_t Fnv1a64(const void* data, uint64_t size, uint64_t h = 1469598103934665603ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (uint64_t i = 0; i < size; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

}  // namespace tessera::gpu

#endif  // TESSERA_BACKENDS_OPENCL_KERNEL_SOURCE_H_
