// Device-side helpers shared by the k_*.cu files: dtype decode/encode (bit-exact with the CPU
// reference's convert.h), broadcast walks and launch-geometry helpers.
#ifndef TESSERA_BACKENDS_CUDA_DEV_COMMON_CUH_
#define TESSERA_BACKENDS_CUDA_DEV_COMMON_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "backends/cuda/launch.h"
#include "tessera/quant_formats.h"

namespace tessera::cuda {

__device__ __forceinline__ uint16_t LoadU16(const uint8_t* p) {
  // Quantized blocks are byte-aligned only.
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

__device__ __forceinline__ float F16Bits(uint16_t h) {
  return __half2float(__ushort_as_half(h));
}
__device__ __forceinline__ float Bf16Bits(uint16_t b) {
  return __uint_as_float(static_cast<uint32_t>(b) << 16);
}
// Round-to-nearest-even like the reference (overflow to inf, NaN stays NaN).
__device__ __forceinline__ uint16_t F32ToF16Bits(float f) {
  return __half_as_ushort(__float2half_rn(f));
}
__device__ __forceinline__ uint16_t F32ToBf16Bits(float f) {
  const uint32_t x = __float_as_uint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
// f stored at p as dtype t (f32 / f16 / bf16; other dtypes: nothing written).
__device__ __forceinline__ void WriteFloat(float f, uint8_t* p, int t) {
  switch (t) {
    case TSR_DTYPE_F32: *reinterpret_cast<float*>(p) = f; return;
    case TSR_DTYPE_F16: *reinterpret_cast<uint16_t*>(p) = F32ToF16Bits(f); return;
    case TSR_DTYPE_BF16: *reinterpret_cast<uint16_t*>(p) = F32ToBf16Bits(f); return;
    default: return;
  }
}

__device__ __forceinline__ int64_t BlockBytesDev(int dt) {
  return dt == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
}

// Value k of a quantized row (k-th value, blocks of 32).
__device__ __forceinline__ float DequantAt(const uint8_t* row, int dt, int64_t k) {
  const int64_t b = k / TSR_QBLOCK;
  const int i = static_cast<int>(k % TSR_QBLOCK);
  if (dt == TSR_DTYPE_Q8_B32) {
    const uint8_t* blk = row + b * TSR_BLOCK_Q8_BYTES;
    return F16Bits(LoadU16(blk)) * static_cast<float>(static_cast<int8_t>(blk[2 + i]));
  }
  const uint8_t* blk = row + b * TSR_BLOCK_Q4_BYTES;
  const uint8_t byte = blk[2 + (i & 15)];
  const int nib = i < 16 ? (byte & 0x0f) : (byte >> 4);
  return F16Bits(LoadU16(blk)) * static_cast<float>(nib - 8);
}

// A float element of a plain float dtype at p.
__device__ __forceinline__ float LoadFloat(const uint8_t* p, int dt) {
  switch (dt) {
    case TSR_DTYPE_F16: return F16Bits(*reinterpret_cast<const uint16_t*>(p));
    case TSR_DTYPE_BF16: return Bf16Bits(*reinterpret_cast<const uint16_t*>(p));
    default: return *reinterpret_cast<const float*>(p);
  }
}

// Element k of a weight row in any matmul dtype (plain dtypes: contiguous row).
__device__ __forceinline__ float WeightAt(const uint8_t* row, int dt, int64_t k) {
  switch (dt) {
    case TSR_DTYPE_F32: return reinterpret_cast<const float*>(row)[k];
    case TSR_DTYPE_F16: return F16Bits(reinterpret_cast<const uint16_t*>(row)[k]);
    case TSR_DTYPE_BF16: return Bf16Bits(reinterpret_cast<const uint16_t*>(row)[k]);
    default: return DequantAt(row, dt, k);
  }
}

// Byte offset of flat index i (row-major over walk.ne) in tensor k of the walk.
__device__ __forceinline__ int64_t WalkOffset(const Walk3& w, int k, int64_t i) {
  int64_t off = 0;
  for (int d = w.ndim - 1; d >= 0; --d) {
    const int64_t ne = w.ne[d];
    const int64_t q = i / ne;
    off += (i - q * ne) * w.s[k][d];
    i = q;
  }
  return off;
}

__device__ __forceinline__ void SetDeviceError(int* err, int bit) {
  if (err != nullptr) atomicOr(err, bit);
}

// Butterfly sum over the warp: every lane ends with the same bits (each step adds a commutative
// pair), and the association order depends on nothing but the lane layout.
__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int m = 16; m >= 1; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}
__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int m = 16; m >= 1; m >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, m));
  return v;
}

// Waits until the grid before this one (when this grid was launched with programmatic dependent
// launch) has finished and its writes are visible; returns at once for a normal launch. Every
// kernel calls it before touching memory another kernel may have written.
__device__ __forceinline__ void GridDepWait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

// Lets a kernel launched after this one with programmatic dependent launch (the streaming GEMV)
// start its prologue now; it still waits (griddepcontrol.wait) for this grid to finish before
// touching anything this grid writes. A no-op for normally launched successors.
__device__ __forceinline__ void AllowDependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// Launches kernel<<<grid, block, smem, stream>>>(args...) in clusters of `cluster_x` blocks along x
// (1: no cluster attribute), with programmatic dependent launch when PdlLaunches() (launch.h):
// the kernel's blocks may then start while the previous kernel drains, and wait in
// GridDepWait() for its results.
template <class... KArgs, class... Args>
cudaError_t LaunchClusterK(unsigned cluster_x, void (*kernel)(KArgs...), dim3 grid, dim3 block,
                           size_t smem, cudaStream_t stream, Args... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[2];
  unsigned n = 0;
  if (cluster_x > 1) {
    attr[n].id = cudaLaunchAttributeClusterDimension;
    attr[n].val.clusterDim.x = cluster_x, attr[n].val.clusterDim.y = 1;
    attr[n].val.clusterDim.z = 1;
    ++n;
  }
  if (PdlLaunches()) {
    attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[n].val.programmaticStreamSerializationAllowed = 1;
    ++n;
  }
  cfg.attrs = attr;
  cfg.numAttrs = n;
  return cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(args)...);
}

// LaunchClusterK without clusters.
template <class... KArgs, class... Args>
cudaError_t LaunchK(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem,
                    cudaStream_t stream, Args... args) {
  return LaunchClusterK(1, kernel, grid, block, smem, stream, args...);
}

// sm_90 (TMA rings): spins until the phase of parity `parity` of the shared-memory mbarrier at
// `bar` (a shared::cta address) has completed.
__device__ __forceinline__ void MbarWait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred p;\nMBAR_WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
      "@!p bra MBAR_WAIT;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}

inline unsigned GridFor(int64_t n, int threads, int64_t cap = 65535LL * 16) {
  int64_t g = (n + threads - 1) / threads;
  if (g < 1) g = 1;
  return static_cast<unsigned>(g < cap ? g : cap);
}

}  // namespace tessera::cuda

#endif  // TESSERA_BACKENDS_CUDA_DEV_COMMON_CUH_
