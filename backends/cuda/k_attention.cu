// Dense varlen ATTENTION and PAGED_ATTENTION (causal, sliding window, soft-cap, GQA), f32
// arithmetic over f32/f16/bf16 K/V.
//
// Canonical order (flash style, fixed by the keys alone). A row is one (query, q head). Its
// visible keys [lo, hi) are cut at absolute key indices that are multiples of kBK = 64 into
// chunks. For each non-empty chunk, in key order:
//   - score s_j = (sum over d = 0, 1, ... of q[d] * k_j[d], one fmaf chain) * scale, then the
//     soft-cap;
//   - m_c = max of the chunk's scores, p_j = expf(s_j - m_c), l_c = p sum in key order,
//     acc_c[d] = fmaf chain of p_j * v_j[d] in key order;
//   - merged into the running state in chunk order: the first chunk is taken as is, later ones
//     as m' = max(m, m_c), a = expf(m - m'), b = expf(m_c - m'), l = fmaf(l_c, b, l * a),
//     acc[d] = fmaf(acc_c[d], b, acc[d] * a).
// out[d] = acc[d] * (1 / l) (0 when no key is visible). A row's bits depend only on its query,
// its keys and the head: not on the other rows of its tile, the tile size, the other sequences
// of the call, or whether the keys come from packed k/v or the paged cache (KeyRow()).
//
// One kernel: a block runs a tile of consecutive queries of one q head (32 for prefill, 1 for
// decode-sized calls, chosen by T only), staging each K/V chunk in shared memory once for the
// whole tile. Prefill and decode run the same per-row arithmetic, so they give identical bits
// (checked in bench_cuda_kernels).
//
// SIMT f32 rather than tensor cores: the conformance tolerance (2e-5) rules out tf32/bf16
// products. Next: split-K decode across blocks for long contexts, one K/V read per GQA group.
#include <atomic>

#include "backends/cuda/dev_common.cuh"

namespace tessera::cuda {
namespace {

constexpr int kBQ = 32;        // rows of a prefill tile
constexpr int kBK = 64;        // keys of a chunk
constexpr int kThreads = 256;  // 8 a row in the softmax/PV phase; 2x4 scores each in the QK phase

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

// Shared-memory geometry for head dims D (q/k) and Dv: rows padded to float4 and to an odd
// number of float4s, so the QK phase's 16-byte loads are conflict-free.
struct Geometry {
  int ld = 0;   // q/k row stride (floats)
  int ldv = 0;  // v row stride (floats)
  __host__ __device__ static Geometry For(int64_t D, int64_t Dv) {
    Geometry g;
    const int d4 = static_cast<int>((D + 3) / 4);
    g.ld = 4 * (d4 % 2 == 1 ? d4 : d4 + 1);
    g.ldv = static_cast<int>((Dv + 3) / 4) * 4;
    return g;
  }
  __host__ __device__ int64_t Floats() const {
    return int64_t(kBQ) * ld + int64_t(kBK) * ld + int64_t(kBK) * ldv + kBQ * (kBK + 1);
  }
};

__device__ __forceinline__ void VisibleRange(const AttnParams& p, const SeqInfo& si, int64_t t,
                                             int64_t* lo, int64_t* hi) {
  const int64_t pos = si.k_len - si.q_len + (t - si.q_first);
  *hi = p.causal ? min(si.k_len, pos + 1) : si.k_len;
  *lo = (p.window > 0 && pos - p.window + 1 > 0) ? pos - p.window + 1 : 0;
}

// Stages keys [j0, j1) (at most kBK) of head hk: K into ks, V into vs, the padding columns
// zeroed. The rows' cache offsets (block-table lookups) are resolved first, one row a lane, so
// the element loads that follow depend on nothing and stay in flight together; then a warp
// copies a row at a time, lanes along d. A block-table entry outside the cache zero-fills its
// row.
__device__ void LoadChunkKV(const AttnParams& p, const SeqInfo& si, int64_t hk, int64_t c0,
                            int64_t j0, int64_t j1, const Geometry& geo, float* ks, float* vs) {
  const int es = p.kv_dtype == TSR_DTYPE_F32 ? 4 : 2;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
  // Lane i of warp w resolves row j0 + w + nw * i (nw * 32 >= kBK rows).
  const int64_t jr = j0 + warp + int64_t(nw) * lane;
  int64_t kr_l = -1, vr_l = -1;
  if (jr < j1) {
    kr_l = KeyRow(p, si, jr, false);
    vr_l = KeyRow(p, si, jr, true);
    if (kr_l < 0 || vr_l < 0) SetDeviceError(p.err, kErrBadBlockTable);
  }
#pragma unroll 4
  for (int i = 0; i < 32; ++i) {
    const int64_t j = j0 + warp + int64_t(nw) * i;
    if (j >= j1) break;  // uniform across the warp
    const int64_t kr = __shfl_sync(0xffffffffu, kr_l, i), vr = __shfl_sync(0xffffffffu, vr_l, i);
    float* krow = ks + (j - c0) * geo.ld;
    float* vrow = vs + (j - c0) * geo.ldv;
    const uint8_t* kg = p.k + kr + hk * p.k_head;
    const uint8_t* vg = p.v + vr + hk * p.v_head;
    for (int64_t d = lane; d < geo.ld; d += 32)
      krow[d] = (kr >= 0 && d < p.D) ? LoadFloat(kg + d * es, p.kv_dtype) : 0.0f;
    for (int64_t d = lane; d < geo.ldv; d += 32)
      vrow[d] = (vr >= 0 && d < p.Dv) ? LoadFloat(vg + d * es, p.kv_dtype) : 0.0f;
  }
}

// Scores of the tile's live rows x the chunk's 64 keys into sc (row stride kBK + 1): thread
// (rg, kg) computes rows rg + 16a x keys kg + 16b, each score one fmaf chain over d in order
// (the zero padding past D adds exact zeros).
__device__ __forceinline__ void ChunkScores(const AttnParams& p, const Geometry& geo, int rows,
                                            const float* qs, const float* ks, float* sc) {
  const int rg = threadIdx.x / 16, kg = threadIdx.x % 16;
  if (rg >= rows) return;
  const bool two = rg + 16 < rows;
  float s[2][4];
#pragma unroll
  for (int a = 0; a < 2; ++a)
#pragma unroll
    for (int b = 0; b < 4; ++b) s[a][b] = 0.0f;
  const int n4 = static_cast<int>((p.D + 3) / 4);
  for (int d4 = 0; d4 < n4; ++d4) {
    float4 qa[2], kb[4];
    qa[0] = reinterpret_cast<const float4*>(qs + rg * geo.ld)[d4];
    qa[1] = two ? reinterpret_cast<const float4*>(qs + (rg + 16) * geo.ld)[d4] : qa[0];
#pragma unroll
    for (int b = 0; b < 4; ++b)
      kb[b] = reinterpret_cast<const float4*>(ks + (kg + 16 * b) * geo.ld)[d4];
#pragma unroll
    for (int a = 0; a < 2; ++a) {
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        s[a][b] = fmaf(qa[a].x, kb[b].x, s[a][b]);
        s[a][b] = fmaf(qa[a].y, kb[b].y, s[a][b]);
        s[a][b] = fmaf(qa[a].z, kb[b].z, s[a][b]);
        s[a][b] = fmaf(qa[a].w, kb[b].w, s[a][b]);
      }
    }
  }
#pragma unroll
  for (int a = 0; a < 2; ++a) {
    if (a == 1 && !two) break;
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      float x = s[a][b] * p.scale;
      if (p.softcap > 0.0f) x = p.softcap * tanhf(x / p.softcap);
      sc[(rg + 16 * a) * (kBK + 1) + kg + 16 * b] = x;
    }
  }
}

// One tile: rows t0 .. t0 + rows - 1 of q head h, all in sequence `si`. V4 = float4 groups of V
// a thread holds (8 threads a row).
template <int V4>
__device__ void RunTile(const AttnParams& p, const SeqInfo& si, int64_t t0, int rows, int64_t h,
                        float* smem) {
  const Geometry geo = Geometry::For(p.D, p.Dv);
  float* qs = smem;                // [kBQ][ld]
  float* ks = qs + kBQ * geo.ld;   // [kBK][ld]
  float* vs = ks + kBK * geo.ld;   // [kBK][ldv]
  float* sc = vs + kBK * geo.ldv;  // [kBQ][kBK + 1]
  const int64_t hk = h / (p.Hq / p.Hkv);
  const int r = threadIdx.x / 8, dg = threadIdx.x % 8;
  const bool live = r < rows;
  const int64_t t = t0 + r;
  int64_t lo = 0, hi = 0;
  if (live) VisibleRange(p, si, t, &lo, &hi);
  // The tile's key span: the union of its rows' ranges (every thread computes the same).
  int64_t kmin = int64_t{1} << 62, kmax = 0;
  for (int i = 0; i < rows; ++i) {
    int64_t l2, h2;
    VisibleRange(p, si, t0 + i, &l2, &h2);
    if (h2 > l2) kmin = min(kmin, l2), kmax = max(kmax, h2);
  }
  __syncthreads();  // the previous tile is done with shared memory
  for (int i = threadIdx.x / 32; i < rows; i += blockDim.x / 32) {
    const auto* q = reinterpret_cast<const float*>(p.q + (t0 + i) * p.q_tok + h * p.q_head);
    for (int64_t d = threadIdx.x % 32; d < geo.ld; d += 32)
      qs[i * geo.ld + d] = d < p.D ? q[d] : 0.0f;
  }
  float4 acc[V4], accc[V4];
#pragma unroll
  for (int i = 0; i < V4; ++i) acc[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  float m = 0.0f, l = 0.0f;
  bool started = false;
  for (int64_t c0 = kmin / kBK * kBK; c0 < kmax; c0 += kBK) {
    __syncthreads();  // the previous chunk's K/V/scores are consumed
    LoadChunkKV(p, si, hk, c0, max(c0, kmin), min(c0 + kBK, kmax), geo, ks, vs);
    __syncthreads();
    ChunkScores(p, geo, rows, qs, ks, sc);
    __syncthreads();
    const int64_t jl = max(lo, c0), jh = min(hi, c0 + kBK);
    const bool any = live && jl < jh;  // uniform across a row's 8 lanes
    float* srow = sc + r * (kBK + 1);
    // Chunk max (exact in any order), then p_j in place, 8 keys a lane.
    float mc = -INFINITY;
    if (any)
      for (int64_t j = jl + dg; j < jh; j += 8) mc = fmaxf(mc, srow[j - c0]);
#pragma unroll
    for (int o = 4; o >= 1; o >>= 1) mc = fmaxf(mc, __shfl_xor_sync(0xffffffffu, mc, o));
    if (any)
      for (int64_t j = jl + dg; j < jh; j += 8) srow[j - c0] = expf(srow[j - c0] - mc);
    __syncwarp();
    if (!any) continue;
    float lc = 0.0f;
#pragma unroll
    for (int i = 0; i < V4; ++i) accc[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (int64_t j = jl; j < jh; ++j) {
      const float pj = srow[j - c0];
      lc += pj;
      const float4* vrow = reinterpret_cast<const float4*>(vs + (j - c0) * geo.ldv);
#pragma unroll
      for (int i = 0; i < V4; ++i) {
        const float4 v = vrow[dg + 8 * i];
        accc[i].x = fmaf(pj, v.x, accc[i].x);
        accc[i].y = fmaf(pj, v.y, accc[i].y);
        accc[i].z = fmaf(pj, v.z, accc[i].z);
        accc[i].w = fmaf(pj, v.w, accc[i].w);
      }
    }
    if (!started) {
      m = mc, l = lc, started = true;
#pragma unroll
      for (int i = 0; i < V4; ++i) acc[i] = accc[i];
    } else {
      const float mn = fmaxf(m, mc);
      const float fa = expf(m - mn), fb = expf(mc - mn);
      l = fmaf(lc, fb, l * fa);
#pragma unroll
      for (int i = 0; i < V4; ++i) {
        acc[i].x = fmaf(accc[i].x, fb, acc[i].x * fa);
        acc[i].y = fmaf(accc[i].y, fb, acc[i].y * fa);
        acc[i].z = fmaf(accc[i].z, fb, acc[i].z * fa);
        acc[i].w = fmaf(accc[i].w, fb, acc[i].w * fa);
      }
      m = mn;
    }
  }
  if (!live) return;
  auto* out = reinterpret_cast<float*>(p.out + t * p.o_tok + h * p.o_head);
  const float inv = started && l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
  for (int i = 0; i < V4; ++i) {
    const int64_t d = 4 * (dg + 8 * i);
    const float o[4] = {acc[i].x * inv, acc[i].y * inv, acc[i].z * inv, acc[i].w * inv};
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (d + e < p.Dv) out[d + e] = o[e];
  }
}

__device__ void ZeroRow(const AttnParams& p, int64_t t, int64_t h) {
  auto* out = reinterpret_cast<float*>(p.out + t * p.o_tok + h * p.o_head);
  for (int64_t d = threadIdx.x; d < p.Dv; d += blockDim.x) out[d] = 0.0f;
  if (threadIdx.x == 0) SetDeviceError(p.err, kErrBadSeqlens);
}

// blockIdx.x = a tile of `tile` tokens, blockIdx.y = the q head. Tokens of different sequences
// in one tile are run as consecutive sub-tiles.
template <int V4>
__global__ void __launch_bounds__(kThreads, V4 <= 4 ? 2 : 1) AttnKernel(AttnParams p, int tile) {
  GridDepWait();
  AllowDependents();
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const int64_t h = blockIdx.y, t_end = min(p.T, int64_t(blockIdx.x + 1) * tile);
  int64_t start = int64_t(blockIdx.x) * tile;
  while (start < t_end) {
    const SeqInfo si = FindSequence(p, start);
    if (!si.ok) {
      ZeroRow(p, start, h);
      ++start;
      continue;
    }
    const int rows = static_cast<int>(min(t_end, si.q_first + si.q_len) - start);
    RunTile<V4>(p, si, start, rows, h, smem);
    start += rows;
  }
}

// Raises a kernel's dynamic shared-memory limit once (every launch would cost a driver call).
template <class Kernel>
cudaError_t AllowSmem(Kernel kernel, std::atomic<bool>* done) {
  if (done->load(std::memory_order_acquire)) return cudaSuccess;
  cudaError_t e =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024);
  if (e == cudaSuccess) done->store(true, std::memory_order_release);
  return e;
}

template <int V4>
cudaError_t LaunchWith(const AttnParams& p, cudaStream_t stream) {
  static std::atomic<bool> allowed{false};
  cudaError_t e = AllowSmem(AttnKernel<V4>, &allowed);
  if (e != cudaSuccess) return e;
  const int smem = static_cast<int>(Geometry::For(p.D, p.Dv).Floats() * sizeof(float));
  // Decode-sized calls: one query a block, for parallelism (same per-row arithmetic).
  constexpr int64_t kDecodeMaxTokens = 16;
  const int tile = p.T <= kDecodeMaxTokens ? 1 : kBQ;
  const dim3 grid(static_cast<unsigned>((p.T + tile - 1) / tile), static_cast<unsigned>(p.Hq));
  LaunchK(AttnKernel<V4>, grid, kThreads, smem, stream, p, tile);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchAttention(const AttnParams& p, cudaStream_t stream) {
  if (p.T == 0 || p.Hq == 0) return cudaSuccess;
  // 8 threads a row hold V4 float4s each: Dv <= 32 * V4.
  if (p.Dv <= 64) return LaunchWith<2>(p, stream);
  if (p.Dv <= 128) return LaunchWith<4>(p, stream);
  return LaunchWith<8>(p, stream);
}

}  // namespace tessera::cuda
