// PTX building blocks shared by the bf16 matmul kernels (k_matmul_bf16.cu: GEMV and the older
// GEMM tiles; k_gemm_bf16.cu: the tiled GEMMs): the m16n8k16 bf16 mma and cp.async.
#ifndef TESSERA_BACKENDS_CUDA_MMA_COMMON_CUH_
#define TESSERA_BACKENDS_CUDA_MMA_COMMON_CUH_

#include <cstdint>

namespace tessera::cuda {

// D = A * B + D on one m16n8k16 tile, bf16 inputs, fp32 accumulation. `volatile` pins the
// instruction where it is written.
__device__ __forceinline__ void Mma(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                    uint32_t a3, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// The same instruction without `volatile`: the compiler may interleave mma steps of different
// accumulators (each accumulator's own sequence is fixed by its data dependence).
__device__ __forceinline__ void MmaFree(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                        uint32_t a3, uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t Word(const uint4& v, int i) {
  return i == 0 ? v.x : (i == 1 ? v.y : (i == 2 ? v.z : v.w));
}

// 16 bytes global -> shared, of which `bytes` (0 or 16) are read; the rest is zero-filled.
__device__ __forceinline__ void CpAsync16(void* smem, const void* gmem, int bytes) {
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void CpAsyncCommit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
template <int N>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

}  // namespace tessera::cuda

#endif  // TESSERA_BACKENDS_CUDA_MMA_COMMON_CUH_
