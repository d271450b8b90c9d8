// ARGMAX over the innermost dim (k_argmax.h). One 512-thread block a row.
//
// Every thread keeps (best value, its first index) over the elements it reads, replacing them
// only with a strictly larger value (NaN compares false, so it never gets in; nor does -inf).
// Threads are merged by warp shuffles and then across warps with the rule "larger value, then
// lower index", which is associative and commutative, so the result is exact and the same for
// any thread count, load width or split: the lowest index of the row's maximum, or 0 when no
// value is above -inf. Contiguous rows are read with 16-byte loads (a scalar head up to the
// first 16-byte boundary, four float4 loads in flight per thread, a scalar tail).
#include <climits>

#include "backends/cuda/dev_common.cuh"
#include "backends/cuda/k_argmax.h"

namespace tessera::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kUnroll = 4;          // float4 loads in flight per thread
constexpr int32_t kNone = INT_MAX;  // no value above -inf seen yet

struct Best {
  float v;
  int32_t i;
};

__device__ __forceinline__ void Consider(Best& b, float v, int32_t i) {
  if (v > b.v) {  // the caller visits its indices in increasing order: ties keep the first
    b.v = v;
    b.i = i;
  }
}

// Larger value wins; on equal values the lower index (both sides are never NaN).
__device__ __forceinline__ void Merge(Best& b, float v, int32_t i) {
  if (v > b.v || (v == b.v && i < b.i)) {
    b.v = v;
    b.i = i;
  }
}

__device__ __forceinline__ Best WarpBest(Best b) {
#pragma unroll
  for (int m = 16; m >= 1; m >>= 1) {
    const float v = __shfl_xor_sync(0xffffffffu, b.v, m);
    const int32_t i = __shfl_xor_sync(0xffffffffu, b.i, m);
    Merge(b, v, i);
  }
  return b;
}

// This thread's best over a contiguous row of n floats.
__device__ Best ContiguousBest(const float* x, int64_t n) {
  Best b{-INFINITY, kNone};
  const int tid = threadIdx.x;
  // Elements before the first 16-byte boundary, then whole float4s, then the tail.
  const int64_t misalign = static_cast<int64_t>((16 - (reinterpret_cast<uintptr_t>(x) & 15)) & 15);
  const int64_t head = misalign / 4 < n ? misalign / 4 : n;
  if (tid < head) Consider(b, x[tid], tid);
  const float4* body = reinterpret_cast<const float4*>(x + head);
  const int64_t n4 = (n - head) / 4;
  int64_t c = tid;
  for (; c + (kUnroll - 1) * kThreads < n4; c += kUnroll * kThreads) {
    float4 q[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) q[u] = __ldg(body + c + u * kThreads);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int32_t i = static_cast<int32_t>(head + 4 * (c + u * kThreads));
      Consider(b, q[u].x, i);
      Consider(b, q[u].y, i + 1);
      Consider(b, q[u].z, i + 2);
      Consider(b, q[u].w, i + 3);
    }
  }
  for (; c < n4; c += kThreads) {
    const float4 q = __ldg(body + c);
    const int32_t i = static_cast<int32_t>(head + 4 * c);
    Consider(b, q.x, i);
    Consider(b, q.y, i + 1);
    Consider(b, q.z, i + 2);
    Consider(b, q.w, i + 3);
  }
  const int64_t tail = head + 4 * n4;
  if (tail + tid < n) Consider(b, x[tail + tid], static_cast<int32_t>(tail + tid));
  return b;
}

__global__ void __launch_bounds__(kThreads) ArgmaxKernel(ArgmaxParams p) {
  GridDepWait();
  AllowDependents();
  __shared__ float red_v[kThreads / 32];
  __shared__ int32_t red_i[kThreads / 32];
  const int64_t row = blockIdx.x;
  const float* x = reinterpret_cast<const float*>(p.x + WalkOffset(p.rows, 0, row));
  Best b{-INFINITY, kNone};
  if (p.sx == 1 && (reinterpret_cast<uintptr_t>(x) & 3) == 0) {
    b = ContiguousBest(x, p.n);
  } else {
    for (int64_t i = threadIdx.x; i < p.n; i += kThreads)
      Consider(b, x[i * p.sx], static_cast<int32_t>(i));
  }
  b = WarpBest(b);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    red_v[warp] = b.v;
    red_i[warp] = b.i;
  }
  __syncthreads();
  if (warp != 0) return;
  b = lane < kThreads / 32 ? Best{red_v[lane], red_i[lane]} : Best{-INFINITY, kNone};
  b = WarpBest(b);
  if (lane == 0) {
    int32_t* out = reinterpret_cast<int32_t*>(p.out + WalkOffset(p.rows, 1, row));
    *out = b.v > -INFINITY ? b.i : 0;
  }
}

}  // namespace

cudaError_t LaunchArgmax(const ArgmaxParams& p, cudaStream_t stream) {
  const int64_t rows = p.rows.numel;
  if (rows == 0 || p.n == 0) return cudaSuccess;
  // One block a row; gridDim.x allows 2^31 - 1 blocks.
  return LaunchK(ArgmaxKernel, static_cast<unsigned>(rows), kThreads, 0, stream, p);
}

}  // namespace tessera::cuda
