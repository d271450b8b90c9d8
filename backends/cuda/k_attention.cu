// Dense varlen ATTENTION and PAGED_ATTENTION (causal, sliding window, soft-cap, GQA), f32
// arithmetic over f32/f16/bf16 K/V.
//
// One 128-thread block a (query, q head). Warp w takes the visible keys lo + w, lo + w + 4, ...
// with its own online-softmax state (one max/rescale a key); the four states are merged in warp
// order at the end. Each score is one dot product: lane l sums dims l, l + 32, ... in order, then
// a butterfly sum. Everything depends only on the query, its keys and the head: not on the other
// sequences in the call, and not on whether the keys come from packed k/v or the paged cache
// (both go through KeyRow()). Batch-invariant by construction.
//
// This is the correct baseline, not yet the fast path: a flash-style tensor-core prefill and a
// split-K paged decode that reads each KV head once per GQA group are the next steps.
#include "backends/cuda/dev_common.cuh"

namespace tessera::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kPer = kAttnMaxHeadDim / 32;  // dims a lane holds

struct SeqInfo {
  int64_t s = 0, q_first = 0, q_len = 0, k_len = 0, k_first = 0;
  bool ok = false;
};

__device__ SeqInfo FindSequence(const AttnParams& p, int64_t t) {
  SeqInfo r;
  if (p.S <= 0) return r;
  // The last s with cu_q[s] <= t: cu_q is non-decreasing, so a binary search.
  int64_t lo = 0, hi = p.S;  // answer in [0, S)
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    if (p.cu_q[mid] <= t)
      lo = mid;
    else
      hi = mid;
  }
  r.s = lo;
  r.q_first = p.cu_q[lo];
  r.q_len = p.cu_q[lo + 1] - r.q_first;
  if (t < r.q_first || t >= r.q_first + r.q_len) return r;
  if (p.paged) {
    r.k_len = p.kv_lens[lo];
    if (r.k_len < 0 || r.k_len > p.max_blocks * p.block_size) return r;
  } else {
    r.k_first = p.cu_k[lo];
    r.k_len = p.cu_k[lo + 1] - r.k_first;
    if (r.k_first < 0 || r.k_len < 0 || r.k_first + r.k_len > p.n_kv_rows) return r;
  }
  r.ok = true;
  return r;
}

// Byte offset of token j's row (before the head offset) in the K (is_v = false) or V cache;
// -1 if the block table points outside the cache.
__device__ __forceinline__ int64_t KeyRow(const AttnParams& p, const SeqInfo& si, int64_t j,
                                          bool is_v) {
  const int64_t tok = is_v ? p.v_tok : p.k_tok;
  if (!p.paged) return (si.k_first + j) * tok;
  const int32_t blk = p.table[si.s * p.table_row + j / p.block_size];
  if (blk < 0 || blk >= p.n_blocks) return -1;
  return blk * (is_v ? p.v_block : p.k_block) + (j % p.block_size) * tok;
}

__global__ void __launch_bounds__(kWarps * 32) AttnKernel(AttnParams p) {
  __shared__ float sm_m[kWarps], sm_l[kWarps];
  __shared__ float sm_acc[kWarps][kAttnMaxHeadDim];
  const int64_t t = blockIdx.x / p.Hq, h = blockIdx.x % p.Hq;
  const int64_t hk = h / (p.Hq / p.Hkv);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const SeqInfo si = FindSequence(p, t);
  auto* out = reinterpret_cast<float*>(p.out + t * p.o_tok + h * p.o_head);
  if (!si.ok) {
    if (threadIdx.x == 0) SetDeviceError(p.err, kErrBadSeqlens);
    for (int64_t d = threadIdx.x; d < p.Dv; d += blockDim.x) out[d] = 0.0f;
    return;
  }
  const int64_t pos = si.k_len - si.q_len + (t - si.q_first);
  const int64_t hi = p.causal ? min(si.k_len, pos + 1) : si.k_len;
  const int64_t lo = (p.window > 0 && pos - p.window + 1 > 0) ? pos - p.window + 1 : 0;
  const int es = p.kv_dtype == TSR_DTYPE_F32 ? 4 : 2;

  const auto* q = reinterpret_cast<const float*>(p.q + t * p.q_tok + h * p.q_head);
  float qv[kPer], acc[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int64_t d = lane + 32 * i;
    qv[i] = d < p.D ? q[d] : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int64_t j = lo + warp; j < hi; j += kWarps) {
    const int64_t kr = KeyRow(p, si, j, false), vr = KeyRow(p, si, j, true);
    if (kr < 0 || vr < 0) {
      if (lane == 0) SetDeviceError(p.err, kErrBadBlockTable);
      continue;
    }
    const uint8_t* krow = p.k + kr + hk * p.k_head;
    float part = 0.0f;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int64_t d = lane + 32 * i;
      if (d < p.D) part = fmaf(qv[i], LoadFloat(krow + d * es, p.kv_dtype), part);
    }
    float x = WarpSum(part) * p.scale;
    if (p.softcap > 0.0f) x = p.softcap * tanhf(x / p.softcap);
    const uint8_t* vrow = p.v + vr + hk * p.v_head;
    float w;
    if (x > m) {
      const float corr = m == -INFINITY ? 0.0f : expf(m - x);
      l = l * corr + 1.0f;
#pragma unroll
      for (int i = 0; i < kPer; ++i) acc[i] *= corr;
      m = x;
      w = 1.0f;
    } else {
      w = expf(x - m);
      l += w;
    }
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int64_t d = lane + 32 * i;
      if (d < p.Dv) acc[i] = fmaf(w, LoadFloat(vrow + d * es, p.kv_dtype), acc[i]);
    }
  }
  if (lane == 0) {
    sm_m[warp] = m;
    sm_l[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int64_t d = lane + 32 * i;
    if (d < p.Dv) sm_acc[warp][d] = acc[i];
  }
  __syncthreads();
  float mx = -INFINITY;
  for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, sm_m[w]);
  float f[kWarps], total = 0.0f;
  for (int w = 0; w < kWarps; ++w) {
    f[w] = sm_m[w] == -INFINITY ? 0.0f : expf(sm_m[w] - mx);
    total += sm_l[w] * f[w];
  }
  const float inv = total > 0.0f ? 1.0f / total : 0.0f;
  for (int64_t d = threadIdx.x; d < p.Dv; d += blockDim.x) {
    float s = 0.0f;
    for (int w = 0; w < kWarps; ++w) s = fmaf(sm_acc[w][d], f[w], s);
    out[d] = s * inv;
  }
}

}  // namespace

cudaError_t LaunchAttention(const AttnParams& p, cudaStream_t stream) {
  const int64_t blocks = p.T * p.Hq;
  if (blocks == 0) return cudaSuccess;
  AttnKernel<<<static_cast<unsigned>(blocks), kWarps * 32, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace tessera::cuda
