// Row-wise f32 ops over the innermost dim: RMS_NORM, LAYER_NORM, SOFTMAX (scale + broadcast
// mask) and SUM/MEAN/MAX. One 256-thread block a row.
//
// Batch invariance: a row's sums run in one fixed order that depends only on its length (thread
// t sums elements t, t + 256, ... in order; warps reduce by butterfly; warp 0 adds the eight
// warp sums by butterfly), never on how many rows the call has.
#include <cfloat>

#include "backends/cuda/fuse_math.cuh"

namespace tessera::cuda {
namespace {

constexpr int kThreads = kRmsThreads;  // RMS_NORM's reduction shape (fuse_math.cuh)

// The block's sum of v (every thread passes its partial); all threads get the result.
__device__ float BlockSum(float v, float* red) {
  v = WarpSum(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // `red` may still be read from a previous call
  if (lane == 0) red[warp] = v;
  __syncthreads();
  return RmsCombineWarps(lane < kThreads / 32 ? red[lane] : 0.0f);
}

__device__ float BlockMax(float v, float* red) {
  v = WarpMax(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float t = lane < kThreads / 32 ? red[lane] : -INFINITY;
  return WarpMax(t);
}

// RMS_NORM of a row of at most kCachedRow elements with the row and the weight held in
// registers: every load is issued before the first use (one memory round trip instead of three
// dependent ones), and the arithmetic is RowKernel's: thread t sums elements t, t + 256, ... in
// order, the same BlockSum, the same y = x * r * (w + woff).
constexpr int kCachePer = 16;
constexpr int64_t kCachedRow = kCachePer * kThreads;

__device__ __forceinline__ void RmsNormCached(const RowParams& p, const float* x, float* out) {
  __shared__ float red[kThreads / 32];
  const int tid = threadIdx.x;
  const int64_t n = p.n;
  float xs[kCachePer], ws[kCachePer];
#pragma unroll
  for (int j = 0; j < kCachePer; ++j) {
    const int64_t i = tid + int64_t{j} * kThreads;
    xs[j] = i < n ? x[i * p.sx] : 0.0f;
    ws[j] = (i < n && p.weight != nullptr) ? p.weight[i] : 0.0f;
  }
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < kCachePer; ++j)
    if (tid + int64_t{j} * kThreads < n) ss = RmsAccum(ss, xs[j]);
  ss = BlockSum(ss, red);
  const float r = RmsInvScale(ss, n, p.eps);
#pragma unroll
  for (int j = 0; j < kCachePer; ++j) {
    const int64_t i = tid + int64_t{j} * kThreads;
    if (i >= n) continue;
    out[i * p.so] = RmsApply(xs[j], r, p.weight != nullptr, ws[j], p.woff);
  }
}

__global__ void __launch_bounds__(kThreads) RowKernel(RowParams p) {
  GridDepWait();
  AllowDependents();
  __shared__ float red[kThreads / 32];
  const int64_t row = blockIdx.x;
  const float* x = reinterpret_cast<const float*>(p.x + WalkOffset(p.rows, 0, row));
  float* out = reinterpret_cast<float*>(p.out + WalkOffset(p.rows, 1, row));
  const int64_t n = p.n;
  const int tid = threadIdx.x;
  switch (p.op) {
    case TSR_OP_RMS_NORM: {
      if (n <= kCachedRow) {  // decode rows: one round trip for x and the weight, same sums
        RmsNormCached(p, x, out);
        return;
      }
      const float ss = BlockSum(RmsThreadPartial(x, p.sx, n, tid), red);
      const float r = RmsInvScale(ss, n, p.eps);
      for (int64_t i = tid; i < n; i += kThreads) {
        const bool has_w = p.weight != nullptr;
        out[i * p.so] = RmsApply(x[i * p.sx], r, has_w, has_w ? p.weight[i] : 0.0f, p.woff);
      }
      return;
    }
    case TSR_OP_LAYER_NORM: {
      float s = 0.0f;
      for (int64_t i = tid; i < n; i += kThreads) s += x[i * p.sx];
      const float mean = BlockSum(s, red) / static_cast<float>(n);
      float v = 0.0f;
      for (int64_t i = tid; i < n; i += kThreads) {
        const float d = x[i * p.sx] - mean;
        v = fmaf(d, d, v);
      }
      const float var = BlockSum(v, red) / static_cast<float>(n);
      const float r = 1.0f / sqrtf(var + p.eps);
      for (int64_t i = tid; i < n; i += kThreads) {
        float y = (x[i * p.sx] - mean) * r;
        if (p.weight != nullptr) y *= p.weight[i];
        if (p.bias != nullptr) y += p.bias[i];
        out[i * p.so] = y;
      }
      return;
    }
    case TSR_OP_SOFTMAX: {
      const float* m = p.mask != nullptr
                           ? reinterpret_cast<const float*>(p.mask + WalkOffset(p.rows, 2, row))
                           : nullptr;
      auto logit = [&](int64_t i) {
        return x[i * p.sx] * p.scale + (m != nullptr ? m[i * p.sm] : 0.0f);
      };
      float mx = -INFINITY;
      for (int64_t i = tid; i < n; i += kThreads) mx = fmaxf(mx, logit(i));
      mx = BlockMax(mx, red);
      if (!(mx > -INFINITY)) {  // every logit masked: the row is all zero
        for (int64_t i = tid; i < n; i += kThreads) out[i * p.so] = 0.0f;
        return;
      }
      float s = 0.0f;
      for (int64_t i = tid; i < n; i += kThreads) s += expf(logit(i) - mx);
      const float inv = 1.0f / BlockSum(s, red);
      for (int64_t i = tid; i < n; i += kThreads) out[i * p.so] = expf(logit(i) - mx) * inv;
      return;
    }
    case TSR_OP_MAX: {
      float mx = -INFINITY;
      for (int64_t i = tid; i < n; i += kThreads) mx = fmaxf(mx, x[i * p.sx]);
      mx = BlockMax(mx, red);
      if (tid == 0) out[0] = mx;
      return;
    }
    default: {  // SUM, MEAN
      float s = 0.0f;
      for (int64_t i = tid; i < n; i += kThreads) s += x[i * p.sx];
      s = BlockSum(s, red);
      if (tid == 0) out[0] = p.op == TSR_OP_MEAN ? s / static_cast<float>(n) : s;
      return;
    }
  }
}

}  // namespace

cudaError_t LaunchRowOp(const RowParams& p, cudaStream_t stream) {
  const int64_t rows = p.rows.numel;
  if (rows == 0) return cudaSuccess;
  // One block a row; gridDim.x allows 2^31 - 1 blocks.
  LaunchK(RowKernel, static_cast<unsigned>(rows), kThreads, 0, stream, p);
  return cudaGetLastError();
}

}  // namespace tessera::cuda
