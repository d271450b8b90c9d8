// Arithmetic shared by an op's own kernel and the decode GEMV prologue that fuses it
// (k_norm.cu / k_elementwise.cu and k_matmul_bf16.cu): RMS_NORM's sum of squares, scale and
// weight multiply, and SWIGLU's gate. Both sides call these functions, so a fused launch computes
// the same bits as the op's kernel followed by the GEMV (batch invariance: a decode row fused
// here must equal the same row in an unfused prefill batch).
#ifndef TESSERA_BACKENDS_CUDA_FUSE_MATH_CUH_
#define TESSERA_BACKENDS_CUDA_FUSE_MATH_CUH_

#include "backends/cuda/dev_common.cuh"

namespace tessera::cuda {

// RMS_NORM's canonical reduction of a row of n elements: 256 "threads" (kRmsThreads); thread t
// sums x[t]^2, x[t + 256]^2, ... with one fmaf chain from 0; the 8 warps of 32 consecutive
// threads reduce by butterfly (WarpSum); then the 8 warp sums, held by lanes 0..7 of one warp
// (0 elsewhere), reduce by butterfly again. k_norm.cu runs it as one 256-thread block; the GEMV
// prologue runs the same sums with any number of warps (a warp takes one warp's 32 threads).
constexpr int kRmsThreads = 256;
constexpr int kRmsWarps = kRmsThreads / 32;

__device__ __forceinline__ float RmsAccum(float ss, float x) {
  return fmaf(x, x, ss);
}

// Thread t's partial sum (elements t, t + 256, ... of x, element stride sx). Loads go 8 at a time
// ahead of their adds (one memory round trip per 8, not per element); the adds stay in order.
__device__ __forceinline__ float RmsThreadPartial(const float* x, int64_t sx, int64_t n, int t) {
  constexpr int kBatch = 8;
  float ss = 0.0f;
  for (int64_t i0 = t; i0 < n; i0 += kBatch * kRmsThreads) {
    float v[kBatch];
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int64_t i = i0 + int64_t{j} * kRmsThreads;
      v[j] = i < n ? x[i * sx] : 0.0f;
    }
#pragma unroll
    for (int j = 0; j < kBatch; ++j)
      if (i0 + int64_t{j} * kRmsThreads < n) ss = RmsAccum(ss, v[j]);
  }
  return ss;
}

// The last step: lane l < 8 passes warp l's sum; every lane gets the row's sum of squares.
__device__ __forceinline__ float RmsCombineWarps(float warp_sum_or_zero) {
  return WarpSum(warp_sum_or_zero);
}

__device__ __forceinline__ float RmsInvScale(float ss, int64_t n, float eps) {
  return 1.0f / sqrtf(ss / static_cast<float>(n) + eps);
}

// Products are written __fmul_rn (rounded, never contracted into an fma): the GEMV splits its
// x with a subtraction right after (SplitPack), which nvcc could otherwise fuse with the last
// multiply there but not in the op's own kernel (that stores it). The op kernels round every
// product anyway, so these are the bits they always computed.

// y = x * r, then times (weight + woff) when the norm has a weight.
__device__ __forceinline__ float RmsApply(float x, float r, bool has_weight, float w, float woff) {
  float y = __fmul_rn(x, r);
  if (has_weight) y = __fmul_rn(y, __fadd_rn(w, woff));
  return y;
}

__device__ __forceinline__ float SigmoidF(float x) {
  // exp overflows past 88; 1 / (1 + inf) = 0 is the right limit.
  return 1.0f / (1.0f + expf(-x));
}

// SWIGLU(gate, up) = silu(gate) * up, multiplied left to right.
__device__ __forceinline__ float SwiGluF(float a, float b) {
  return __fmul_rn(__fmul_rn(a, SigmoidF(a)), b);
}

}  // namespace tessera::cuda

#endif  // TESSERA_BACKENDS_CUDA_FUSE_MATH_CUH_
