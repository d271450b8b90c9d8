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
// Default: the tiled kernel (TiledKernel, below): a block serves the q heads of one kv head
// (GQA group) for a tile of queries, 64 rows for prefill, 8 rows (one query's group) for
// decode-sized calls (T <= 16, or T <= 2 S: a batch of one-query sequences); K/V chunks are staged
// once for the whole group with batched loads; each thread owns a register tile of scores (4 rows x
// 4 keys) and of p.V (4 rows x 4-16 columns). The previous kernel (AttnKernel: 32 queries of one q
// head, 1 for decode) stays as lab variant 1 (TESSERA_CUDA_ATTN=legacy). Every variant and tile
// shape runs the same per-element instruction sequence, so they give identical bits, and decode
// rows equal prefill rows (checked in bench_cuda_kernels: tiled vs legacy, decode vs prefill).
//
// Prefill tiles with f32 K/V and D, Dv in {4, 8, ..., 128} (powers of two) run pipelined
// (RunPipeTile): K/V chunks double-buffered through cp.async, the softmax on the score registers,
// one block barrier a chunk (TESSERA_CUDA_ATTN=tiled: the tiled prefill as before; H100, T = 2048:
// 2.19 -> 1.56 ms at 32/8 heads D = 128). Batch decode tiles (T <= 2 S) hold one query a block
// where a tile would hold two GQA groups (G <= 4; TESSERA_CUDA_ATTN=tiled: two queries a block).
// In the tensor-core order they run as tc::BatchKernel (two global round trips before the first
// chunk's math, 3 barriers a chunk, 4 blocks an SM at D = 64; TESSERA_CUDA_ATTN_TC_BATCH=0: the
// RunTile tiles; H100, 64 sequences x 33 keys: 10.6 / 19.5 / 24.4 -> 8.1 / 11.1 / 19.0 us at
// 14/2 D 64, 32/8 D 64, 32/8 D 128).
//
// Decode tiles (T <= 16) on sm_90+ are split over a cluster of kSplit blocks (RunSplitTile):
// each block computes whole chunks exactly as above, block 0 merges them in chunk order through
// distributed shared memory with the same merge, so the bits do not change
// (TESSERA_CUDA_ATTN=nosplit: one block a tile).
//
// SIMT f32 rather than tensor cores: the conformance tolerance (2e-5) rules out tf32/bf16
// products of unsplit operands. The tensor-core order (namespace tc, TESSERA_CUDA_ATTN_TC, on by
// default) splits every operand into three bf16 pieces instead and takes every call of the
// models it covers (D = Dv in {64, 128}, causal, no soft-cap, f32 K/V); its prefill tiles take
// warp-uniform paths where every row of a warp sees a whole chunk. Next: the fixed latency of
// a decode call (dependent global round trips before the first K/V load, 6 barriers a chunk, two
// cluster barriers); the pipelined chunk loop for decode tiles (its double buffers cost shared
// memory: 144 KB a decode tile at D = 128).
#include <cooperative_groups.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "backends/cuda/dev_common.cuh"
#include "backends/cuda/env_knob.h"
#include "backends/cuda/mma_common.cuh"
#include "backends/cuda/smem_optin.h"

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
                            int64_t j0, int64_t j1, int ld, int ldv, float* ks, float* vs) {
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
    float* krow = ks + (j - c0) * ld;
    float* vrow = vs + (j - c0) * ldv;
    const uint8_t* kg = p.k + kr + hk * p.k_head;
    const uint8_t* vg = p.v + vr + hk * p.v_head;
    for (int64_t d = lane; d < ld; d += 32)
      krow[d] = (kr >= 0 && d < p.D) ? LoadFloat(kg + d * es, p.kv_dtype) : 0.0f;
    for (int64_t d = lane; d < ldv; d += 32)
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
    LoadChunkKV(p, si, hk, c0, max(c0, kmin), min(c0 + kBK, kmax), geo.ld, geo.ldv, ks, vs);
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

template <int V4>
cudaError_t LaunchWith(const AttnParams& p, cudaStream_t stream) {
  static std::atomic<uint64_t> allowed{0};
  const int smem = static_cast<int>(Geometry::For(p.D, p.Dv).Floats() * sizeof(float));
  cudaError_t e = AllowDynamicSmem(AttnKernel<V4>, smem, &allowed);
  if (e != cudaSuccess) return e;
  // Decode-sized calls: one query a block, for parallelism (same per-row arithmetic).
  constexpr int64_t kDecodeMaxTokens = 16;
  const int tile = p.T <= kDecodeMaxTokens ? 1 : kBQ;
  const dim3 grid(static_cast<unsigned>((p.T + tile - 1) / tile), static_cast<unsigned>(p.Hq));
  LaunchK(AttnKernel<V4>, grid, kThreads, smem, stream, p, tile);
  return cudaGetLastError();
}

cudaError_t LaunchLegacy(const AttnParams& p, cudaStream_t stream) {
  // 8 threads a row hold V4 float4s each: Dv <= 32 * V4.
  if (p.Dv <= 64) return LaunchWith<2>(p, stream);
  if (p.Dv <= 128) return LaunchWith<4>(p, stream);
  return LaunchWith<8>(p, stream);
}

// ---- Tiled kernel (the default): same per-row arithmetic, register tiles, GQA sharing ----
//
// A block serves `gb` q heads of one kv head for up to `bq` consecutive queries: R = bq * gb
// rows (query-major, head-minor), so each K/V chunk is staged once for the whole GQA group.
// Per chunk, the phases are separated by barriers:
//   scores: thread (rg, cg) holds RT rows (rg * RT + a) x KT keys (cg + KG * b) in registers;
//           each score is the fmaf chain over d in d order, 16-byte shared loads along d;
//   store:  the scaled / soft-capped scores go to P[key][row] (aliasing K, which is dead then);
//   softmax: TPR threads a row: chunk max over the row's visible keys, p = expf(s - max) in
//           place (0 for keys the row does not see);
//   p.V:    thread (rg, cg) holds RT rows x NV float4s of d (d = 4 * (cg + KG * i)); keys in
//           order, l_c and acc_c as fmaf chains; chunks visible whole to every row skip the
//           per-key visibility test; then the ordered merge.
// Every score, p, l and acc element goes through exactly the instructions of the legacy kernel
// in the same order, so the bits match it (and decode matches prefill) by construction.
template <int RT_, int KG_, int NV_>
struct Tiling {
  static constexpr int RT = RT_;            // rows a thread
  static constexpr int KG = KG_;            // key groups (scores) = d groups (p.V)
  static constexpr int NV = NV_;            // float4s of d a thread a row (p.V)
  static constexpr int RG = kThreads / KG;  // row groups
  static constexpr int R = RG * RT;         // rows of a tile
  static constexpr int KT = kBK / KG;       // keys a thread (scores)
  static constexpr int TPR = kThreads / R;  // threads a row (softmax)
  static constexpr int LDP = R + 8;         // P row stride: conflict-free softmax loads
  static_assert(KG * RG == kThreads && kBK % KG == 0 && TPR >= 1 && TPR <= 32, "tiling");
};
using PrefillTiling1 = Tiling<4, 16, 1>;  // 64 rows, Dv <= 64
using PrefillTiling2 = Tiling<4, 16, 2>;  // Dv <= 128
using PrefillTiling4 = Tiling<4, 16, 4>;  // Dv <= 256
using DecodeTiling1 = Tiling<1, 32, 1>;   // 8 rows, Dv <= 128
using DecodeTiling2 = Tiling<1, 32, 2>;   // Dv <= 256

struct TiledGeometry {
  int ld = 0;   // q/k row stride (floats): odd number of float4s
  int ldv = 0;  // v row stride
  int kp = 0;   // floats of the K / P buffer
  int rows = 0;
  __host__ __device__ static TiledGeometry For(int64_t D, int64_t Dv, int rows, int ldp) {
    const Geometry g = Geometry::For(D, Dv);
    TiledGeometry t;
    t.ld = g.ld;
    t.ldv = g.ldv;
    t.kp = kBK * (g.ld > ldp ? g.ld : ldp);
    t.rows = rows;
    return t;
  }
  // + the chunk maxima [rows] and the K/V row offsets (2 * kBK int64, 16-byte aligned).
  __host__ __device__ int64_t Floats() const {
    return int64_t(rows) * ld + kp + int64_t(kBK) * ldv + (rows + 3) / 4 * 4 + 4 * kBK;
  }
};

// Elements d0 .. d0 + 3 of a K/V row (zeros past n, or for a row outside the cache). vec: the
// unit is whole and aligned (one 16- or 8-byte load); same conversions as LoadFloat.
__device__ __forceinline__ float4 Load4(const uint8_t* row, int64_t d0, int64_t n, int dt, int es,
                                        bool vec) {
  float4 r = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  if (row == nullptr || d0 >= n) return r;
  const uint8_t* src = row + d0 * es;
  if (vec) {
    if (dt == TSR_DTYPE_F32) return *reinterpret_cast<const float4*>(src);
    const uint2 u = *reinterpret_cast<const uint2*>(src);
    const uint16_t h[4] = {static_cast<uint16_t>(u.x & 0xffffu), static_cast<uint16_t>(u.x >> 16),
                           static_cast<uint16_t>(u.y & 0xffffu), static_cast<uint16_t>(u.y >> 16)};
    if (dt == TSR_DTYPE_F16)
      return make_float4(F16Bits(h[0]), F16Bits(h[1]), F16Bits(h[2]), F16Bits(h[3]));
    return make_float4(Bf16Bits(h[0]), Bf16Bits(h[1]), Bf16Bits(h[2]), Bf16Bits(h[3]));
  }
  r.x = LoadFloat(src, dt);
  if (d0 + 1 < n) r.y = LoadFloat(src + es, dt);
  if (d0 + 2 < n) r.z = LoadFloat(src + 2 * es, dt);
  if (d0 + 3 < n) r.w = LoadFloat(src + 3 * es, dt);
  return r;
}

// Stages keys [j0, j1) (at most kBK; chunk base c0) of kv head hk: K rows into kv[(j - c0) * ld],
// V rows into kv[v_at + (j - c0) * ldv]: the same values LoadChunkKV stages, zeros in the
// last float4 past D / Dv (the float4s past those are not written). The rows' cache offsets
// (block-table lookups) go to roff first; then each thread loads UNITS 4-element units into
// registers before it stores any, so a batch's loads are in flight together (interleaved load /
// shared store serializes them on the memory latency).
template <int UNITS>
__device__ void StageKV(const AttnParams& p, const SeqInfo& si, int64_t hk, int64_t c0, int64_t j0,
                        int64_t j1, int ld, int ldv, int v_at, float* kv, int64_t* roff) {
  const int nrows = static_cast<int>(j1 - j0);
  if (static_cast<int>(threadIdx.x) < nrows) {
    const int64_t kr = KeyRow(p, si, j0 + threadIdx.x, false);
    const int64_t vr = KeyRow(p, si, j0 + threadIdx.x, true);
    if (kr < 0 || vr < 0) SetDeviceError(p.err, kErrBadBlockTable);
    roff[threadIdx.x] = kr < 0 ? -1 : kr + hk * p.k_head;
    roff[kBK + threadIdx.x] = vr < 0 ? -1 : vr + hk * p.v_head;
  }
  __syncthreads();
  const int es = p.kv_dtype == TSR_DTYPE_F32 ? 4 : 2;
  const int64_t al = 4 * es;
  const bool vk = p.D % 4 == 0 &&
                  ((reinterpret_cast<uintptr_t>(p.k) | p.k_tok | p.k_head | p.k_block) % al) == 0;
  const bool vv = p.Dv % 4 == 0 &&
                  ((reinterpret_cast<uintptr_t>(p.v) | p.v_tok | p.v_head | p.v_block) % al) == 0;
  // Units the score and p.V loops read: ceil(D / 4) of a K row (the float4s past it are
  // never read), ceil(Dv / 4) of a V row.
  const int uk = static_cast<int>((p.D + 3) / 4), uv = static_cast<int>((p.Dv + 3) / 4);
  const int nk = nrows * uk, total = nk + nrows * uv;
  const int row0 = static_cast<int>(j0 - c0);
  for (int base = 0; base < total; base += UNITS * kThreads) {
    float4 buf[UNITS];
    int dst[UNITS];
#pragma unroll
    for (int i = 0; i < UNITS; ++i) {
      const int u = base + i * kThreads + static_cast<int>(threadIdx.x);
      dst[i] = -1;
      buf[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (u >= total) continue;
      const bool isv = u >= nk;
      const int uu = isv ? u - nk : u, upr = isv ? uv : uk;
      const int r = uu / upr, c = uu % upr;
      const int64_t off = roff[(isv ? kBK : 0) + r];
      const uint8_t* row = off < 0 ? nullptr : (isv ? p.v : p.k) + off;
      buf[i] = Load4(row, 4 * c, isv ? p.Dv : p.D, p.kv_dtype, es, isv ? vv : vk);
      dst[i] = isv ? v_at + (row0 + r) * ldv + 4 * c : (row0 + r) * ld + 4 * c;
    }
#pragma unroll
    for (int i = 0; i < UNITS; ++i)
      if (dst[i] >= 0) *reinterpret_cast<float4*>(kv + dst[i]) = buf[i];
  }
}

// Loads RT consecutive floats (16-byte aligned when RT % 4 == 0).
template <int RT>
__device__ __forceinline__ void LoadRow(const float* src, float (&dst)[RT]) {
  if constexpr (RT % 4 == 0) {
#pragma unroll
    for (int i = 0; i < RT / 4; ++i) {
      const float4 v = reinterpret_cast<const float4*>(src)[i];
      dst[4 * i] = v.x, dst[4 * i + 1] = v.y, dst[4 * i + 2] = v.z, dst[4 * i + 3] = v.w;
    }
  } else {
#pragma unroll
    for (int a = 0; a < RT; ++a) dst[a] = src[a];
  }
}

// UNR: d4 steps unrolled (decode tiles: 4, so the next steps' loads overlap the chains).
template <class TL, int UNR = (TL::RT == 1 ? 4 : 1)>
__device__ __forceinline__ void TiledScores(const AttnParams& p, int ld, const float* qs,
                                            const float* ks, float (&s)[TL::RT][TL::KT]) {
  const int rg = threadIdx.x / TL::KG, cg = threadIdx.x % TL::KG;
#pragma unroll
  for (int a = 0; a < TL::RT; ++a)
#pragma unroll
    for (int b = 0; b < TL::KT; ++b) s[a][b] = 0.0f;
  const int n4 = static_cast<int>((p.D + 3) / 4);
  const float4* q4 = reinterpret_cast<const float4*>(qs + rg * TL::RT * ld);
  const float4* k4 = reinterpret_cast<const float4*>(ks + cg * ld);
  const int ld4 = ld / 4;
#pragma unroll(UNR)
  for (int d4 = 0; d4 < n4; ++d4) {
    float4 qa[TL::RT], kb[TL::KT];
#pragma unroll
    for (int a = 0; a < TL::RT; ++a) qa[a] = q4[a * ld4 + d4];
#pragma unroll
    for (int b = 0; b < TL::KT; ++b) kb[b] = k4[b * TL::KG * ld4 + d4];
#pragma unroll
    for (int a = 0; a < TL::RT; ++a) {
#pragma unroll
      for (int b = 0; b < TL::KT; ++b) {
        s[a][b] = fmaf(qa[a].x, kb[b].x, s[a][b]);
        s[a][b] = fmaf(qa[a].y, kb[b].y, s[a][b]);
        s[a][b] = fmaf(qa[a].z, kb[b].z, s[a][b]);
        s[a][b] = fmaf(qa[a].w, kb[b].w, s[a][b]);
      }
    }
  }
}

// The chunk's p.V for the thread's rows: keys [jb, je) (relative to the chunk) in order. MASKED:
// row a takes key jj only when jl[a] <= jj < jh[a] (a select: the chain skips the key exactly).
template <class TL, bool MASKED>
__device__ __forceinline__ void TiledPv(const float* pt, const float* vs, int ldv, int jb, int je,
                                        const int (&jl)[TL::RT], const int (&jh)[TL::RT],
                                        const bool (&dok)[TL::NV], float (&lc)[TL::RT],
                                        float4 (&accc)[TL::RT][TL::NV]) {
  const int rg = threadIdx.x / TL::KG, cg = threadIdx.x % TL::KG;
#pragma unroll(MASKED ? 1 : (TL::RT == 1 ? 4 : 2))
  for (int jj = jb; jj < je; ++jj) {
    float pr[TL::RT];
    LoadRow<TL::RT>(pt + jj * TL::LDP + rg * TL::RT, pr);
    const float4* vrow = reinterpret_cast<const float4*>(vs + jj * ldv);
    float4 v[TL::NV];
#pragma unroll
    for (int i = 0; i < TL::NV; ++i)
      v[i] = dok[i] ? vrow[cg + TL::KG * i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int a = 0; a < TL::RT; ++a) {
      const float pj = pr[a];
      const bool vis = !MASKED || (jj >= jl[a] && jj < jh[a]);
      lc[a] = vis ? lc[a] + pj : lc[a];
#pragma unroll
      for (int i = 0; i < TL::NV; ++i) {
        float4& c = accc[a][i];
        c.x = vis ? fmaf(pj, v[i].x, c.x) : c.x;
        c.y = vis ? fmaf(pj, v[i].y, c.y) : c.y;
        c.z = vis ? fmaf(pj, v[i].z, c.z) : c.z;
        c.w = vis ? fmaf(pj, v[i].w, c.w) : c.w;
      }
    }
  }
}

// Row r of a tile: query t0 + r / gb, q head h0 + r % gb; live if both exist.
struct TileRows {
  int64_t t0 = 0, h0 = 0;
  int nq = 0, gb = 1, gcount = 0;
  __device__ bool Live(int r) const { return r / gb < nq && r % gb < gcount; }
};

// Scaled, soft-capped scores of the thread's rows x keys into P[key][row].
template <class TL>
__device__ __forceinline__ void StoreScores(const AttnParams& p, const float (&s)[TL::RT][TL::KT],
                                            float* pt) {
  const int rg = threadIdx.x / TL::KG, cg = threadIdx.x % TL::KG;
#pragma unroll
  for (int b = 0; b < TL::KT; ++b) {
    float x[TL::RT];
#pragma unroll
    for (int a = 0; a < TL::RT; ++a) {
      x[a] = s[a][b] * p.scale;
      if (p.softcap > 0.0f) x[a] = p.softcap * tanhf(x[a] / p.softcap);
    }
    float* dst = pt + (cg + TL::KG * b) * TL::LDP + rg * TL::RT;
    if constexpr (TL::RT == 4) {
      *reinterpret_cast<float4*>(dst) = make_float4(x[0], x[1], x[2], x[3]);
    } else {
#pragma unroll
      for (int a = 0; a < TL::RT; ++a) dst[a] = x[a];
    }
  }
}

// Softmax phase: row r's chunk max over its visible keys [jl, jh) (relative), p in place (0
// elsewhere), the max into mrow[r].
template <class TL>
__device__ __forceinline__ void ChunkSoftmax(int r, int sub, bool live, int jl, int jh, float* pt,
                                             float* mrow) {
  const bool any = live && jl < jh;
  float mc = -INFINITY;
  if (any)
    for (int jj = jl + sub; jj < jh; jj += TL::TPR) mc = fmaxf(mc, pt[jj * TL::LDP + r]);
#pragma unroll
  for (int o = TL::TPR / 2; o >= 1; o >>= 1) mc = fmaxf(mc, __shfl_xor_sync(0xffffffffu, mc, o));
#pragma unroll 4
  for (int jj = sub; jj < kBK; jj += TL::TPR) {
    float* x = pt + jj * TL::LDP + r;
    *x = (any && jj >= jl && jj < jh) ? expf(*x - mc) : 0.0f;
  }
  if (sub == 0) mrow[r] = mc;
}

// Per-thread state of a tile that every chunk reuses: the thread's p.V rows (visible key
// ranges), its softmax row, which of its float4s of d exist, and the shared-memory carve-up.
template <class TL>
struct TileCtx {
  TiledGeometry geo;
  float *qs = nullptr, *kp = nullptr, *vs = nullptr, *mrow = nullptr;
  int64_t* roff = nullptr;
  bool rlive[TL::RT];
  int rlo[TL::RT], rhi[TL::RT];
  int sr = 0, sub = 0;
  bool slive = false;
  int64_t slo = 0, shi = 0;
  bool dok[TL::NV];
  // The tile's key span, and the range every row sees (rows of a query share its range).
  int64_t kmin = int64_t{1} << 62, kmax = 0, maxlo = 0, minhi = int64_t{1} << 62;
};

// Fills ctx and stages the tile's queries (after a barrier: the previous tile is done with
// shared memory).
template <class TL>
__device__ __forceinline__ void TileSetup(const AttnParams& p, const SeqInfo& si,
                                          const TileRows& tr, float* smem, TileCtx<TL>& c) {
  constexpr int RT = TL::RT, NV = TL::NV;
  c.geo = TiledGeometry::For(p.D, p.Dv, TL::R, TL::LDP);
  c.qs = smem;                      // [R][ld]
  c.kp = c.qs + TL::R * c.geo.ld;   // K [kBK][ld], then P [kBK][LDP]
  c.vs = c.kp + c.geo.kp;           // [kBK][ldv]
  c.mrow = c.vs + kBK * c.geo.ldv;  // [R] chunk maxima
  c.roff = reinterpret_cast<int64_t*>(c.mrow + (TL::R + 3) / 4 * 4);  // [2][kBK]
  for (int i = 0; i < tr.nq; ++i) {
    int64_t l2, h2;
    VisibleRange(p, si, tr.t0 + i, &l2, &h2);
    if (h2 > l2) c.kmin = min(c.kmin, l2), c.kmax = max(c.kmax, h2);
    c.maxlo = max(c.maxlo, l2), c.minhi = min(c.minhi, h2);
  }
  __syncthreads();  // the previous tile is done with shared memory
  for (int r = threadIdx.x / 32; r < TL::R; r += kThreads / 32) {
    const bool live = tr.Live(r);
    const float* q = live ? reinterpret_cast<const float*>(p.q + (tr.t0 + r / tr.gb) * p.q_tok +
                                                           (tr.h0 + r % tr.gb) * p.q_head)
                          : nullptr;
    for (int d = threadIdx.x % 32; d < c.geo.ld; d += 32)
      c.qs[r * c.geo.ld + d] = (live && d < p.D) ? q[d] : 0.0f;
  }
  const int rg = threadIdx.x / TL::KG, cg = threadIdx.x % TL::KG;
  // Key indices fit in int32 (cu_k, kv_lens and block tables are int32).
#pragma unroll
  for (int a = 0; a < RT; ++a) {
    const int r = rg * RT + a;
    c.rlive[a] = tr.Live(r);
    int64_t l2 = 0, h2 = 0;
    if (c.rlive[a]) VisibleRange(p, si, tr.t0 + r / tr.gb, &l2, &h2);
    c.rlo[a] = static_cast<int>(l2), c.rhi[a] = static_cast<int>(h2);
  }
  c.sr = threadIdx.x / TL::TPR, c.sub = threadIdx.x % TL::TPR;
  c.slive = tr.Live(c.sr);
  if (c.slive) VisibleRange(p, si, tr.t0 + c.sr / tr.gb, &c.slo, &c.shi);
#pragma unroll
  for (int i = 0; i < NV; ++i) c.dok[i] = 4 * (cg + TL::KG * i) < p.Dv;
}

// Row a's visible keys of chunk c0, relative to it: [jl, jh) (empty for a dead row).
template <class TL>
__device__ __forceinline__ void ChunkRows(const TileCtx<TL>& c, int64_t c0, int (&jl)[TL::RT],
                                          int (&jh)[TL::RT]) {
#pragma unroll
  for (int a = 0; a < TL::RT; ++a) {
    jl[a] = c.rlive[a] ? max(c.rlo[a] - static_cast<int>(c0), 0) : 0;
    jh[a] = c.rlive[a] ? min(c.rhi[a] - static_cast<int>(c0), kBK) : 0;
  }
}

// Chunk c0 alone: its maxima into mrow, the thread's l_c and acc_c (block-uniform call).
template <class TL>
__device__ __forceinline__ void ChunkPartial(const AttnParams& p, const SeqInfo& si, int64_t hk,
                                             const TileCtx<TL>& c, int64_t c0, float (&lc)[TL::RT],
                                             float4 (&accc)[TL::RT][TL::NV]) {
  constexpr int RT = TL::RT, NV = TL::NV;
  const int64_t cl = max(c0, c.kmin), ch = min(c0 + kBK, c.kmax);
  __syncthreads();  // the previous chunk's P and V are consumed
  StageKV<TL::RT == 1 ? 16 : 4>(p, si, hk, c0, cl, ch, c.geo.ld, c.geo.ldv, c.geo.kp, c.kp, c.roff);
  __syncthreads();
  {
    float s[RT][TL::KT];
    TiledScores<TL>(p, c.geo.ld, c.qs, c.kp, s);
    __syncthreads();  // K is consumed: P takes its place
    StoreScores<TL>(p, s, c.kp);
  }
  __syncthreads();
  ChunkSoftmax<TL>(c.sr, c.sub, c.slive, static_cast<int>(max(c.slo, c0) - c0),
                   static_cast<int>(min(c.shi, c0 + kBK) - c0), c.kp, c.mrow);
  __syncthreads();
  int jl[RT], jh[RT];
  ChunkRows<TL>(c, c0, jl, jh);
#pragma unroll
  for (int a = 0; a < RT; ++a) {
    lc[a] = 0.0f;
#pragma unroll
    for (int i = 0; i < NV; ++i) accc[a][i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  }
  const int jb = static_cast<int>(cl - c0), je = static_cast<int>(ch - c0);
  if (c.maxlo <= cl && c.minhi >= ch)  // every live row sees [cl, ch) whole
    TiledPv<TL, false>(c.kp, c.vs, c.geo.ldv, jb, je, jl, jh, c.dok, lc, accc);
  else
    TiledPv<TL, true>(c.kp, c.vs, c.geo.ldv, jb, je, jl, jh, c.dok, lc, accc);
}

// The ordered merge of one chunk's (mc, lc, accc) into a row's running state.
template <int NV>
__device__ __forceinline__ void MergeChunk(float mc, float lc, const float4 (&accc)[NV], float& m,
                                           float& l, bool& started, float4 (&acc)[NV]) {
  if (!started) {
    m = mc, l = lc, started = true;
#pragma unroll
    for (int i = 0; i < NV; ++i) acc[i] = accc[i];
    return;
  }
  const float mn = fmaxf(m, mc);
  const float fa = expf(m - mn), fb = expf(mc - mn);
  l = fmaf(lc, fb, l * fa);
#pragma unroll
  for (int i = 0; i < NV; ++i) {
    acc[i].x = fmaf(accc[i].x, fb, acc[i].x * fa);
    acc[i].y = fmaf(accc[i].y, fb, acc[i].y * fa);
    acc[i].z = fmaf(accc[i].z, fb, acc[i].z * fa);
    acc[i].w = fmaf(accc[i].w, fb, acc[i].w * fa);
  }
  m = mn;
}

template <class TL>
__device__ __forceinline__ void StoreRows(const AttnParams& p, const TileRows& tr,
                                          const TileCtx<TL>& c, const bool (&started)[TL::RT],
                                          const float (&l)[TL::RT],
                                          const float4 (&acc)[TL::RT][TL::NV]) {
  const int rg = threadIdx.x / TL::KG, cg = threadIdx.x % TL::KG;
#pragma unroll
  for (int a = 0; a < TL::RT; ++a) {
    if (!c.rlive[a]) continue;
    const int r = rg * TL::RT + a;
    auto* out = reinterpret_cast<float*>(p.out + (tr.t0 + r / tr.gb) * p.o_tok +
                                         (tr.h0 + r % tr.gb) * p.o_head);
    const float inv = started[a] && l[a] > 0.0f ? 1.0f / l[a] : 0.0f;
#pragma unroll
    for (int i = 0; i < TL::NV; ++i) {
      const int64_t d = 4 * (cg + TL::KG * i);
      const float o[4] = {acc[a][i].x * inv, acc[a][i].y * inv, acc[a][i].z * inv,
                          acc[a][i].w * inv};
#pragma unroll
      for (int e = 0; e < 4; ++e)
        if (d + e < p.Dv) out[d + e] = o[e];
    }
  }
}

// A tile's running per-row state before its first chunk: nothing merged yet.
template <int RT, int NV>
__device__ __forceinline__ void ResetRows(float4 (&acc)[RT][NV], float (&m)[RT], float (&l)[RT],
                                          bool (&started)[RT]) {
#pragma unroll
  for (int a = 0; a < RT; ++a) {
    m[a] = l[a] = 0.0f, started[a] = false;
#pragma unroll
    for (int i = 0; i < NV; ++i) acc[a][i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  }
}

// One tile in one block: chunks in order, each merged as soon as it is done.
template <class TL>
__device__ void RunTiledTile(const AttnParams& p, const SeqInfo& si, const TileRows& tr, int64_t hk,
                             float* smem) {
  constexpr int RT = TL::RT, NV = TL::NV;
  TileCtx<TL> c;
  TileSetup<TL>(p, si, tr, smem, c);
  float4 acc[RT][NV];
  float m[RT], l[RT];
  bool started[RT];
  ResetRows<RT, NV>(acc, m, l, started);
  const int rg = threadIdx.x / TL::KG;
  for (int64_t c0 = c.kmin / kBK * kBK; c0 < c.kmax; c0 += kBK) {
    float lc[RT];
    float4 accc[RT][NV];
    ChunkPartial<TL>(p, si, hk, c, c0, lc, accc);
    int jl[RT], jh[RT];
    ChunkRows<TL>(c, c0, jl, jh);
#pragma unroll
    for (int a = 0; a < RT; ++a)
      if (c.rlive[a] && jl[a] < jh[a])
        MergeChunk<NV>(c.mrow[rg * RT + a], lc[a], accc[a], m[a], l[a], started[a], acc[a]);
  }
  StoreRows<TL>(p, tr, c, started, l, acc);
}

// Split decode tile (sm_90 thread-block clusters): the CS blocks of a cluster take chunks
// round-robin, CS at a time (block `rank` takes chunk CS * round + rank of the tile's span), each
// leaves its chunk's maxima / l_c / acc_c in its shared memory, and block 0 merges the round's
// chunks in chunk order through distributed shared memory, with the same MergeChunk: the
// per-chunk values and the merge order are those of RunTiledTile, so are the bits.
template <class TL, int CS>
__device__ void RunSplitTile(const AttnParams& p, const SeqInfo& si, const TileRows& tr, int64_t hk,
                             float* smem) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  namespace cgs = cooperative_groups;
  constexpr int RT = TL::RT, NV = TL::NV;
  const cgs::cluster_group cluster = cgs::this_cluster();
  const int rank = static_cast<int>(cluster.block_rank());
  TileCtx<TL> c;
  TileSetup<TL>(p, si, tr, smem, c);
  // Partials after the K/V offsets: l_c [R], acc_c [R][ldv].
  float* pl = reinterpret_cast<float*>(c.roff + 2 * kBK);
  float* pacc = pl + (TL::R + 3) / 4 * 4;
  const int rg = threadIdx.x / TL::KG, cg = threadIdx.x % TL::KG;
  float4 acc[RT][NV];
  float m[RT], l[RT];
  bool started[RT];
  ResetRows<RT, NV>(acc, m, l, started);
  const int64_t first = c.kmin / kBK * kBK;
  for (int64_t r0 = first; r0 < c.kmax; r0 += int64_t{CS} * kBK) {
    const int64_t c0 = r0 + int64_t{rank} * kBK;
    if (c0 < c.kmax) {  // block-uniform
      float lc[RT];
      float4 accc[RT][NV];
      ChunkPartial<TL>(p, si, hk, c, c0, lc, accc);
#pragma unroll
      for (int a = 0; a < RT; ++a) {
        const int r = rg * RT + a;
        if (cg == 0) pl[r] = lc[a];
#pragma unroll
        for (int i = 0; i < NV; ++i)
          if (c.dok[i])
            *reinterpret_cast<float4*>(pacc + r * c.geo.ldv + 4 * (cg + TL::KG * i)) = accc[a][i];
      }
    }
    cluster.sync();  // the round's partials are complete
    if (rank == 0) {
      for (int k = 0; k < CS; ++k) {
        const int64_t ck = r0 + int64_t{k} * kBK;
        if (ck >= c.kmax) break;
        const float* rm = cluster.map_shared_rank(c.mrow, k);
        const float* rl = cluster.map_shared_rank(pl, k);
        const float* ra = cluster.map_shared_rank(pacc, k);
        int jl[RT], jh[RT];
        ChunkRows<TL>(c, ck, jl, jh);
#pragma unroll
        for (int a = 0; a < RT; ++a) {
          if (!(c.rlive[a] && jl[a] < jh[a])) continue;
          const int r = rg * RT + a;
          float4 accc[NV];
#pragma unroll
          for (int i = 0; i < NV; ++i)
            accc[i] =
                c.dok[i]
                    ? *reinterpret_cast<const float4*>(ra + r * c.geo.ldv + 4 * (cg + TL::KG * i))
                    : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
          MergeChunk<NV>(rm[r], rl[r], accc, m[a], l[a], started[a], acc[a]);
        }
      }
    }
    cluster.sync();  // block 0 is done reading: the next round may overwrite
  }
  if (rank == 0) StoreRows<TL>(p, tr, c, started, l, acc);
#else
  (void)p, (void)si, (void)tr, (void)hk, (void)smem;
  __trap();      // launched only for sm_90+ binaries (SplitSupported)
#endif
}

// ---- Pipelined prefill tiles (the default; lab variants 6 / 7; same order, same bits) ----
//
// The tiled prefill tiling and per-element arithmetic, restructured around one block barrier a
// chunk (the tiled kernel has six, and stages a chunk while the SM waits on it):
//   - K/V chunks are double-buffered through cp.async: chunk c + 1 is in flight while chunk c
//     is computed;
//   - the softmax runs on the score registers: the KG threads of a row group (a half-warp) hold
//     all kBK keys of their RT rows, so the chunk max is a shuffle reduction (a max is exact in
//     any order), p = expf(x - max) goes to the half-warp's own rows of P, and p.V reads only
//     those rows (a warp barrier, not a block one), with the chunk max still in registers;
//   - the rows' cache offsets (block-table lookups) of chunk c + 2 are resolved during chunk c.
// The products the tiled kernel stores before the subtraction (s * scale, the soft-cap) are
// __fmul_rn here and the subtraction __fsub_rn, so no FMA contraction changes a rounding.
// Needs f32 K/V with 16-byte aligned rows and 256 % (D / 4) == 0 (PipeSupported); other calls
// take the tiled kernel.
struct PipeGeometry {
  int ld = 0, ldv = 0, rows = 0, ldp = 0;
  __host__ __device__ static PipeGeometry For(int64_t D, int64_t Dv, int rows, int ldp) {
    const Geometry g = Geometry::For(D, Dv);
    PipeGeometry t;
    t.ld = g.ld, t.ldv = g.ldv, t.rows = rows, t.ldp = ldp;
    return t;
  }
  // Q [rows][ld], K [2][kBK][ld], V [2][kBK][ldv], P [kBK][ldp], then the row offsets
  // (int64 [3][2][kBK]; every region is a multiple of 4 floats, so they stay 16-byte aligned).
  __host__ __device__ int64_t Floats() const {
    return int64_t(rows) * ld + 2 * kBK * int64_t(ld + ldv) + int64_t(kBK) * ldp + 2 * 3 * 2 * kBK;
  }
};

// Cache offsets (bytes, head included; -1: outside the cache) of keys [j0, j1) of chunk c0 into
// ro[j - c0] (K) and ro[kBK + j - c0] (V), one key a thread.
__device__ __forceinline__ void PipeOffsets(const AttnParams& p, const SeqInfo& si, int64_t hk,
                                            int64_t c0, int64_t j0, int64_t j1, int64_t* ro) {
  const int t = static_cast<int>(threadIdx.x);
  const int64_t j = c0 + t;
  if (t >= kBK || j < j0 || j >= j1) return;
  const int64_t kr = KeyRow(p, si, j, false), vr = KeyRow(p, si, j, true);
  if (kr < 0 || vr < 0) SetDeviceError(p.err, kErrBadBlockTable);
  ro[t] = kr < 0 ? -1 : kr + hk * p.k_head;
  ro[kBK + t] = vr < 0 ? -1 : vr + hk * p.v_head;
}

// cp.async copies of rows [rb, re) (relative to the chunk) of one matrix: thread t copies the
// 16-byte column t % u of rows t / u, t / u + kThreads / u, ... (u = 16-byte units a row,
// dividing kThreads); a row outside the cache is zero-filled.
__device__ __forceinline__ void PipeCopy(const uint8_t* base, const int64_t* ro, int u, int rb,
                                         int re, int ld, float* dst) {
  const int col = static_cast<int>(threadIdx.x) % u, step = kThreads / u;
  for (int r = static_cast<int>(threadIdx.x) / u; r < re; r += step) {
    if (r < rb) continue;
    const int64_t off = ro[r];
    CpAsync16(dst + r * ld + 4 * col, off < 0 ? base : base + off + 16 * col, off < 0 ? 0 : 16);
  }
}

// The chunk's softmax on the score registers: x = s * scale (soft-capped), the row's max over
// its visible keys [jl, jh) across the KG threads of the row group, p = expf(x - max) (0 for
// keys the row does not see) into P[key][row].
template <class TL>
__device__ __forceinline__ void PipeSoftmax(const AttnParams& p, const int (&jl)[TL::RT],
                                            const int (&jh)[TL::RT], float (&s)[TL::RT][TL::KT],
                                            float (&mc)[TL::RT], float* pt) {
  const int rg = threadIdx.x / TL::KG, cg = threadIdx.x % TL::KG;
#pragma unroll
  for (int a = 0; a < TL::RT; ++a) {
    float mx = -INFINITY;
#pragma unroll
    for (int b = 0; b < TL::KT; ++b) {
      float x = __fmul_rn(s[a][b], p.scale);
      if (p.softcap > 0.0f) x = __fmul_rn(p.softcap, tanhf(x / p.softcap));
      s[a][b] = x;
      const int jj = cg + TL::KG * b;
      if (jj >= jl[a] && jj < jh[a]) mx = fmaxf(mx, x);
    }
#pragma unroll
    for (int o = TL::KG / 2; o >= 1; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    mc[a] = mx;
  }
#pragma unroll
  for (int b = 0; b < TL::KT; ++b) {
    const int jj = cg + TL::KG * b;
    float x[TL::RT];
#pragma unroll
    for (int a = 0; a < TL::RT; ++a)
      x[a] = (jj >= jl[a] && jj < jh[a]) ? expf(__fsub_rn(s[a][b], mc[a])) : 0.0f;
    float* dst = pt + jj * TL::LDP + rg * TL::RT;
    if constexpr (TL::RT % 4 == 0) {
#pragma unroll
      for (int a = 0; a < TL::RT; a += 4)
        *reinterpret_cast<float4*>(dst + a) = make_float4(x[a], x[a + 1], x[a + 2], x[a + 3]);
    } else {
#pragma unroll
      for (int a = 0; a < TL::RT; ++a) dst[a] = x[a];
    }
  }
}

// Keys [lo, hi) of chunk i of a tile whose first chunk starts at `first` (clipped to its span).
struct PipeSpan {
  int64_t first = 0, kmin = 0, kmax = 0;
  __device__ int64_t C0(int i) const { return first + int64_t{i} * kBK; }
  __device__ int64_t Lo(int i) const { return max(C0(i), kmin); }
  __device__ int64_t Hi(int i) const { return min(C0(i) + kBK, kmax); }
};

// Issues chunk i's copies into buffer i % 2 (offsets from slot i % 3).
template <class TL>
__device__ __forceinline__ void PipeIssue(const AttnParams& p, const PipeSpan& sp,
                                          const PipeGeometry& g, int i, const int64_t* ro,
                                          float* kb, float* vb) {
  const int64_t c0 = sp.C0(i);
  const int rb = static_cast<int>(sp.Lo(i) - c0), re = static_cast<int>(sp.Hi(i) - c0);
  const int64_t* r = ro + (i % 3) * 2 * kBK;
  PipeCopy(p.k, r, static_cast<int>(p.D / 4), rb, re, g.ld, kb + (i % 2) * kBK * g.ld);
  PipeCopy(p.v, r + kBK, static_cast<int>(p.Dv / 4), rb, re, g.ldv, vb + (i % 2) * kBK * g.ldv);
}

// One tile, pipelined (see above). UNR: d4 steps of the score loop unrolled.
template <class TL, int UNR>
__device__ void RunPipeTile(const AttnParams& p, const SeqInfo& si, const TileRows& tr, int64_t hk,
                            float* smem) {
  constexpr int RT = TL::RT, NV = TL::NV;
  TileCtx<TL> c;
  TileSetup<TL>(p, si, tr, smem, c);  // stages Q at smem, as this layout wants it
  const PipeGeometry g = PipeGeometry::For(p.D, p.Dv, TL::R, TL::LDP);
  float* kb = smem + TL::R * g.ld;                               // [2][kBK][ld]
  float* vb = kb + 2 * kBK * g.ld;                               // [2][kBK][ldv]
  float* pt = vb + 2 * kBK * g.ldv;                              // [kBK][LDP]
  int64_t* ro = reinterpret_cast<int64_t*>(pt + kBK * TL::LDP);  // [3][2][kBK]
  float4 acc[RT][NV];
  float m[RT], l[RT];
  bool started[RT];
  ResetRows<RT, NV>(acc, m, l, started);
  PipeSpan sp;
  sp.first = c.kmin / kBK * kBK, sp.kmin = c.kmin, sp.kmax = c.kmax;
  const int n = c.kmax > c.kmin ? static_cast<int>((c.kmax - sp.first + kBK - 1) / kBK) : 0;
  for (int i = 0; i < 2 && i < n; ++i)
    PipeOffsets(p, si, hk, sp.C0(i), sp.Lo(i), sp.Hi(i), ro + i * 2 * kBK);
  __syncthreads();  // Q and the first offsets are staged
  if (n > 0) PipeIssue<TL>(p, sp, g, 0, ro, kb, vb);
  CpAsyncCommit();
  for (int i = 0; i < n; ++i) {
    const int64_t c0 = sp.C0(i);
    CpAsyncWait<0>();
    // Chunk i is staged for every thread; every thread is done with chunk i - 1 (its K/V
    // buffer, its offsets slot) and with its P rows.
    __syncthreads();
    if (i + 1 < n) PipeIssue<TL>(p, sp, g, i + 1, ro, kb, vb);
    CpAsyncCommit();
    if (i + 2 < n)
      PipeOffsets(p, si, hk, sp.C0(i + 2), sp.Lo(i + 2), sp.Hi(i + 2), ro + (i + 2) % 3 * 2 * kBK);
    int jl[RT], jh[RT];
    ChunkRows<TL>(c, c0, jl, jh);
    float mc[RT];
    {
      float s[RT][TL::KT];
      TiledScores<TL, UNR>(p, g.ld, c.qs, kb + (i % 2) * kBK * g.ld, s);
      PipeSoftmax<TL>(p, jl, jh, s, mc, pt);
    }
    __syncwarp();  // the half-warp's P rows are written
    float lc[RT];
    float4 accc[RT][NV];
#pragma unroll
    for (int a = 0; a < RT; ++a) {
      lc[a] = 0.0f;
#pragma unroll
      for (int v = 0; v < NV; ++v) accc[a][v] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    const int jb = static_cast<int>(sp.Lo(i) - c0), je = static_cast<int>(sp.Hi(i) - c0);
    const float* vs = vb + (i % 2) * kBK * g.ldv;
    if (c.maxlo <= sp.Lo(i) && c.minhi >= sp.Hi(i))  // every live row sees the chunk's span
      TiledPv<TL, false>(pt, vs, g.ldv, jb, je, jl, jh, c.dok, lc, accc);
    else
      TiledPv<TL, true>(pt, vs, g.ldv, jb, je, jl, jh, c.dok, lc, accc);
#pragma unroll
    for (int a = 0; a < RT; ++a)
      if (c.rlive[a] && jl[a] < jh[a])
        MergeChunk<NV>(mc[a], lc[a], accc[a], m[a], l[a], started[a], acc[a]);
  }
  StoreRows<TL>(p, tr, c, started, l, acc);
}

// blockIdx.x = a tile of bq queries (in reverse, so the long causal rows start first; CS > 1:
// CS consecutive blocks, one cluster, split the tile's chunks), blockIdx.y = (kv head, group of
// gb of its q heads). Tokens of different sequences in one tile run as consecutive sub-tiles
// (the same ones in every block of a cluster, so their cluster barriers pair up).
// MINB: blocks an SM the registers are capped for (2: <= 128 registers, some spills for 64-row
// tiles; 1: no cap).
// PIPE > 0: the pipelined tiles (RunPipeTile, score loop unrolled PIPE times; CS == 1).
template <class TL, int MINB, int CS, int PIPE = 0>
__global__ void __launch_bounds__(kThreads, MINB)
    TiledKernel(AttnParams p, int bq, int gb, int nsplit) {
  GridDepWait();
  AllowDependents();
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const int64_t G = p.Hq / p.Hkv;
  const int64_t hk = blockIdx.y / nsplit, g0 = int64_t(blockIdx.y % nsplit) * gb;
  TileRows tr;
  tr.gb = gb;
  tr.gcount = static_cast<int>(min(int64_t(gb), G - g0));
  tr.h0 = hk * G + g0;
  const int64_t tile = gridDim.x / CS - 1 - blockIdx.x / CS;
  const int64_t t_end = min(p.T, (tile + 1) * bq);
  int64_t start = tile * bq;
  while (start < t_end) {
    const SeqInfo si = FindSequence(p, start);
    if (!si.ok) {
      if (CS == 1 || blockIdx.x % CS == 0)
        for (int g = 0; g < tr.gcount; ++g) ZeroRow(p, start, tr.h0 + g);
      ++start;
      continue;
    }
    tr.t0 = start;
    tr.nq = static_cast<int>(min(t_end, si.q_first + si.q_len) - start);
    if constexpr (PIPE > 0)
      RunPipeTile<TL, PIPE>(p, si, tr, hk, smem);
    else if constexpr (CS == 1)
      RunTiledTile<TL>(p, si, tr, hk, smem);
    else
      RunSplitTile<TL, CS>(p, si, tr, hk, smem);
    start += tr.nq;
  }
}

// Launches a tiled kernel: grid (tiles * CS, Hkv * nsplit), clusters of CS blocks along x.
// one_query: tiles of one query (its GQA group) even where R holds more (batch decode: a block
// a sequence instead of sequences one after another).
template <class TL, int MINB, int CS, int PIPE = 0>
cudaError_t LaunchTiledCS(const AttnParams& p, cudaStream_t stream, bool one_query = false) {
  const int64_t G = p.Hq / p.Hkv;
  const int gb = static_cast<int>(std::min<int64_t>(G, TL::R));
  const int nsplit = static_cast<int>((G + gb - 1) / gb);
  const int bq = one_query ? 1 : TL::R / gb;
  const TiledGeometry geo = TiledGeometry::For(p.D, p.Dv, TL::R, TL::LDP);
  // CS > 1: + the partials l_c [R] and acc_c [R][ldv] (RunSplitTile).
  const int64_t floats =
      PIPE > 0 ? PipeGeometry::For(p.D, p.Dv, TL::R, TL::LDP).Floats()
               : geo.Floats() + (CS > 1 ? (TL::R + 3) / 4 * 4 + int64_t{TL::R} * geo.ldv : 0);
  const int smem = static_cast<int>(floats * sizeof(float));
  static std::atomic<uint64_t> allowed{0};
  cudaError_t e = AllowDynamicSmem(TiledKernel<TL, MINB, CS, PIPE>, smem, &allowed);
  if (e != cudaSuccess) return e;
  const dim3 grid(static_cast<unsigned>((p.T + bq - 1) / bq * CS),
                  static_cast<unsigned>(p.Hkv * nsplit));
  return LaunchClusterK(CS, TiledKernel<TL, MINB, CS, PIPE>, grid, kThreads, smem, stream, p, bq,
                        gb, nsplit);
}

template <class TL, int MINB>
cudaError_t LaunchTiled(const AttnParams& p, cudaStream_t stream) {
  const cudaError_t e = LaunchTiledCS<TL, MINB, 1>(p, stream);
  return e != cudaSuccess ? e : cudaGetLastError();
}

// Whether a prefill call can take the pipelined tiles: f32 K/V, 16-byte aligned rows (cp.async),
// 16-byte units a row dividing the block (PipeCopy), and the shared memory within the device's
// opt-in limit (188 KB at D = 128: sm_80 / sm_90 only).
bool PipeSupported(const AttnParams& p, int64_t smem_floats) {
  const int optin = OptinSmem();
  const auto aligned = [](const void* b, int64_t tok, int64_t head, int64_t block) {
    return ((reinterpret_cast<uintptr_t>(b) | tok | head | block) % 16) == 0;
  };
  const auto units_ok = [](int64_t d) { return d % 4 == 0 && d > 0 && kThreads % (d / 4) == 0; };
  return p.kv_dtype == TSR_DTYPE_F32 && units_ok(p.D) && units_ok(p.Dv) &&
         aligned(p.k, p.k_tok, p.k_head, p.k_block) && aligned(p.v, p.v_tok, p.v_head, p.v_block) &&
         smem_floats * 4 <= optin - 1024;
}

// Pipelined prefill tiles (UNR: score-loop unroll); cudaErrorNotSupported (nothing launched,
// no error state) unless PipeSupported: the caller then takes the tiled kernel (same bits).
template <class TL, int MINB, int UNR>
cudaError_t LaunchPipe(const AttnParams& p, cudaStream_t stream) {
  if (!PipeSupported(p, PipeGeometry::For(p.D, p.Dv, TL::R, TL::LDP).Floats()))
    return cudaErrorNotSupported;
  const cudaError_t e = LaunchTiledCS<TL, MINB, 1, UNR>(p, stream);
  return e != cudaSuccess ? e : cudaGetLastError();
}

// Clusters of kSplit blocks for decode tiles: 8 chunks (512 keys) a round.
constexpr int kSplit = 8;

// Whether the split decode kernel's binary is sm_90+ (clusters, distributed shared memory) for
// the current device; checked once.
template <class TL>
bool SplitSupported() {
  static const bool ok = [] {
    cudaFuncAttributes fa{};
    if (cudaFuncGetAttributes(&fa, TiledKernel<TL, 1, kSplit>) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return fa.binaryVersion >= 90;
  }();
  return ok;
}

// Decode tiles, split across a cluster when the device can (split = false: one block a tile,
// the lab's TESSERA_CUDA_ATTN=nosplit). A refused cluster launch falls back to one block a tile.
template <class TL>
cudaError_t LaunchDecode(const AttnParams& p, bool split, cudaStream_t stream) {
  if (split && SplitSupported<TL>()) {
    if (LaunchTiledCS<TL, 1, kSplit>(p, stream) == cudaSuccess && cudaGetLastError() == cudaSuccess)
      return cudaSuccess;
    cudaGetLastError();
  }
  return LaunchTiled<TL, 1>(p, stream);
}

// Register cap of the prefill kernels: cap 0 = the default (Dv <= 64: 2 blocks an SM, no
// spills; larger Dv: uncapped, 1 block an SM, which beat 2 blocks with spills on an H100:
// 2.20 vs 2.33 ms at T=2048 32/8 heads D=128), 1 = uncapped (lab variant 2), 2 = capped to 2
// blocks (lab variant 3). Decode grids hold about one block an SM: never capped.
// pipe: prefill tiles pipelined (RunPipeTile) with the score loop unrolled `pipe` times; 0: the
// tiled kernel (TESSERA_CUDA_ATTN=tiled).
cudaError_t LaunchTiledFor(const AttnParams& p, int cap, bool split, int pipe, bool batch_one,
                           cudaStream_t stream) {
  // Decode-sized calls: 8-row tiles (one query's GQA group), for parallelism and latency. Also
  // batches of mostly one-query sequences (T <= 2 S: lockstep decode of many sequences), which
  // prefill tiles would serve a few sequences a block, one after another (64 x 1 query on the
  // 1B shape: 32 blocks). Same per-row arithmetic in both tile kinds, so the same bits.
  // TESSERA_CUDA_ATTN_BATCH=0: by T only (the choice before); =1: batches take the cluster-split
  // decode tiles; =2 (default): one block a decode tile (a batch has blocks enough, and the
  // cluster split idles 7 of 8 blocks on short contexts).
  constexpr int64_t kDecodeMaxTokens = 16;
  static const int batch_tiles = EnvInt("TESSERA_CUDA_ATTN_BATCH", 2);
  const bool batch = batch_tiles > 0 && p.S > 0 && p.T <= 2 * p.S;
  if (p.T <= kDecodeMaxTokens || batch) {
    // batch_one (default; TESSERA_CUDA_ATTN=tiled: off): where a decode tile would hold two or
    // more queries' GQA groups (G <= 4: Llama), batch decode tiles of one query each (a block a
    // sequence, not two one after the other), 2 blocks an SM (123 registers, no spills). H100,
    // 64 sequences x 64-200 keys, 32/8 heads: 121 -> 85 us (D = 128), 91 -> 65 us (D = 64).
    // (Qwen2.5-0.5B, G = 7, has one query a tile either way: 29.6 vs 30.2 us with the cap.)
    const int64_t G = p.Hq / p.Hkv;
    if (batch_one && p.T > kDecodeMaxTokens && batch_tiles == 2 && p.Dv <= 128 &&
        2 * G <= DecodeTiling1::R) {
      const cudaError_t e = LaunchTiledCS<DecodeTiling1, 2, 1>(p, stream, true);
      return e != cudaSuccess ? e : cudaGetLastError();
    }
    const bool s = split && !(p.T > kDecodeMaxTokens && batch_tiles == 2);
    return p.Dv <= 128 ? LaunchDecode<DecodeTiling1>(p, s, stream)
                       : LaunchDecode<DecodeTiling2>(p, s, stream);
  }
  // Pipelined: D <= 64 at 2 blocks an SM (104 KB of shared memory each), D <= 128 at one
  // (188 KB).
  if (pipe > 0 && cap == 0 && p.Dv <= 128) {
    cudaError_t e;
    if (p.Dv > 64)
      e = pipe == 1 ? LaunchPipe<PrefillTiling2, 1, 1>(p, stream)
                    : LaunchPipe<PrefillTiling2, 1, 2>(p, stream);
    else
      e = pipe == 1 ? LaunchPipe<PrefillTiling1, 2, 1>(p, stream)
                    : LaunchPipe<PrefillTiling1, 2, 2>(p, stream);
    if (e != cudaErrorNotSupported) return e;
  }
  if (p.Dv <= 64)
    return cap == 1 ? LaunchTiled<PrefillTiling1, 1>(p, stream)
                    : LaunchTiled<PrefillTiling1, 2>(p, stream);
  if (p.Dv <= 128)
    return cap == 2 ? LaunchTiled<PrefillTiling2, 2>(p, stream)
                    : LaunchTiled<PrefillTiling2, 1>(p, stream);
  return LaunchTiled<PrefillTiling4, 1>(p, stream);
}

// The prefill kernel of the default variant: pipelined tiles, score loop unrolled twice.
constexpr int kDefaultPipe = 2;
// Whether the default takes the one-query batch decode tiles (variant 8).
constexpr bool kDefaultBatchOne = true;

// TESSERA_CUDA_ATTN=legacy selects the previous kernel, =nosplit the one-block decode tiles
// (variant 4), =nocap / =cap the uncapped / capped tiled prefill for every head dim, =tiled /
// =pipe1 / =pipe2 the tiled / pipelined prefill (variants 5 / 6 / 7; =tiled also the two-query
// batch decode tiles), =batch1 the one-query batch decode tiles (variant 8) (lab knobs; same
// bits).
int DefaultVariant() {
  static const int v = [] {
    const char* s = std::getenv("TESSERA_CUDA_ATTN");
    if (s == nullptr) return 0;
    static const char* const kNames[] = {"",      "legacy", "nocap", "cap",   "nosplit",
                                         "tiled", "pipe1",  "pipe2", "batch1"};
    for (int i = 1; i < 9; ++i)
      if (std::strcmp(s, kNames[i]) == 0) return i;
    return 0;
  }();
  return v;
}

// Whether TESSERA_CUDA_ATTN_TC defaults to on.
constexpr bool kDefaultTc = true;
// PvMerge's column blocks a group in the prefill tiles.
constexpr int kDefaultDnb = 2;
// Prefill tiles' block order: longest tile first over every kv head (TESSERA_CUDA_ATTN_TC_LPT).
constexpr int kDefaultLpt = 1;
// TESSERA_CUDA_ATTN_TC_DEC: the cluster-split decode tiles' variant (cu-attn18; LaunchKind).
// 4 (cu-attn18b: K / V through registers, no f32 staging; H100, lab/dattn18b_gpu.sh, tg128 vs
// 1: 8B 151.6 -> 152.2, 1B 619.7 -> 636.7, 0.5B 681.8 -> 683.4 t/s; call 9.5 vs 10.5 us at
// 16 keys, 8B shape).
constexpr int kDefaultTcDec = 4;
// TESSERA_CUDA_ATTN_TC_BATCH: the one-query batch decode tiles (kBatch) as BatchKernel (1;
// cu22-xattn), BatchKernel at D = 64 only (2) or RunTile's (0).
constexpr int kDefaultTcBatch = 1;

// ---- Tensor-core order (TESSERA_CUDA_ATTN_TC; 2026-11-27, fifteenth session) ----
//
// A second canonical order, for models with D = Dv in {64, 128}, causal, no soft-cap, f32 K/V
// (TcCovers; a model's every attention call takes it or none does). The keys are cut into the
// same absolute 64-key chunks; per chunk and row (query, q head):
//   - q, k, v are cut into bf16 pieces hi + mid + lo (each the rounding of the rest);
//   - s = one m16n8k16 accumulator from zero over the D / 16 k-steps in order, the six terms of
//     a k-step hi*lo, lo*hi, mid*mid, hi*mid, mid*hi, hi*hi in that order; x = s * scale;
//   - m_c = max of x over the row's visible keys of the chunk, p = expf(x - m_c) (0 elsewhere);
//     l_c = the lane's 16 keys (8n + 2t + e, n = 0..7, e = 0..1) summed in that order, then the
//     xor-1 and xor-2 lane sums;
//   - p is cut into three bf16 pieces in registers; acc_c = one accumulator from zero per
//     8 columns over the chunk's 4 key k-steps in order, the same six terms;
//   - merged in chunk order with MergeChunk's formula; out = acc * (1 / l).
// An mma's result for a row depends only on that row's A and the B operand (checked in
// lab/attn_tc_lab.cu: rows of any slot, tile or call give the same bits), so prefill tiles
// (16 rows a warp), decode tiles (one 16-row tile spread over 4 warps: keys for s, columns for
// acc_c) and the cluster-split decode (block r takes chunks r, r + 8, ...; block 0 merges in
// chunk order) give every row the same bits. K/V pieces are cut while staging: chunk rows go
// f32 -> shared through cp.async, then one pass splits them into swizzled bf16 planes.
namespace tc {

constexpr int kNP = 3;     // pieces of every operand
constexpr int kTerms = 6;  // products a k-step, smallest first
__host__ __device__ constexpr int TermA(int j) {
  return j == 0 ? 0 : j == 1 ? 2 : j == 2 ? 1 : j == 3 ? 0 : j == 4 ? 1 : 0;
}
__host__ __device__ constexpr int TermB(int j) {
  return j == 0 ? 2 : j == 1 ? 0 : j == 2 ? 1 : j == 3 ? 1 : j == 4 ? 0 : 0;
}

// RT 16-row tiles a block, NW warps (RT == NW, a tile a warp; or RT == 1, NW == 4: the tile
// spread over the warps), CS blocks a cluster splitting the chunks.
template <int D, int RT, int NW, int CS>
struct Cfg {
  static constexpr int kRows = 16 * RT;
  static constexpr int kNT = NW * 32;
  static constexpr bool kSpread = RT == 1 && NW == 4;
  static constexpr int kCH = D / 8;                        // 16-byte bf16 units a row
  static constexpr int kNCols = kSpread ? D / 32 : D / 8;  // n8 column tiles of acc a warp
  static constexpr int kQBytes = kNP * kRows * D * 2;
  static constexpr int kKVBytes = kNP * kBK * D * 2;
  static constexpr int kFBytes = kBK * D * 4;
  static constexpr int kRoBytes = 2 * 2 * kBK * 4;  // int32 16-byte units [slot][K, V][key]
  static constexpr int kSBytes = kSpread ? 8 * 32 * 16 : 0;
  static constexpr int kPartBytes = CS > 1 ? NW * 32 * 16 * (kNCols + 1) : 0;
  // CS == 1: K and V pieces share one buffer (K's are dead after the scores, V's after p.V, and
  // a block barrier separates each from the split that overwrites it): the batch decode tiles
  // fit 2 blocks an SM (H100, 64 sequences, D = 128: 105 -> 67 us). The cluster-split decode
  // keeps two buffers (one block an SM): with one buffer, Llama-3.1-8B tg128 fell from 142.3 to
  // 129.2 t/s (HEAD's plugin 140.4 / 140.0; the kernel alone unchanged), lab/attn15b_gpu.sh.
  static constexpr bool kAlias = CS == 1;
  static constexpr int kSmem =
      kQBytes + (kAlias ? 1 : 2) * kKVBytes + kFBytes + kRoBytes + kSBytes + kPartBytes;
  static_assert(RT == NW || kSpread, "tile layout");
};

__device__ __forceinline__ uint32_t SmemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void Ldsm4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(SmemAddr(p)));
}
__device__ __forceinline__ void Ldsm4T(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(SmemAddr(p)));
}
// Byte offset of 16-byte unit c of row r in a swizzled [rows][D] bf16 plane (unit c ^ (r & 7):
// the 8 rows of an ldmatrix 8x8 hit 8 bank groups).
template <int D>
__device__ __forceinline__ int SwzOff(int r, int c) {
  return r * D * 2 + ((c ^ (r & 7)) << 4);
}
__device__ __forceinline__ uint32_t PackBf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// One pair's word of the current piece (lo, hi rounded to bf16 and packed); lo and hi become
// what is left for the next piece.
__device__ __forceinline__ uint32_t SplitPair(float& lo, float& hi) {
  const uint32_t w = PackBf16(lo, hi);
  lo = __fsub_rn(lo, __uint_as_float(w << 16));
  hi = __fsub_rn(hi, __uint_as_float(w & 0xffff0000u));
  return w;
}

// 8 floats -> the 16-byte unit of each of the three pieces.
__device__ __forceinline__ void Split8(const float4& a, const float4& b, uint4 (&u)[kNP]) {
  float r[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
  uint32_t w[kNP][4];
#pragma unroll
  for (int pc = 0; pc < kNP; ++pc) {
#pragma unroll
    for (int i = 0; i < 4; ++i) w[pc][i] = SplitPair(r[2 * i], r[2 * i + 1]);
    u[pc] = make_uint4(w[pc][0], w[pc][1], w[pc][2], w[pc][3]);
  }
}

// f32 staging [kBK][D] -> the three swizzled planes of dst ([kNP][kBK][D] bf16).
template <int D, int NT>
__device__ __forceinline__ void SplitStaged(const float* sf, unsigned char* dst) {
  constexpr int CH = D / 8;
  for (int i = threadIdx.x; i < kBK * CH; i += NT) {
    const int r = i / CH, c = i % CH;
    const float4* src = reinterpret_cast<const float4*>(sf + r * D + 8 * c);
    uint4 u[kNP];
    Split8(src[0], src[1], u);
#pragma unroll
    for (int pc = 0; pc < kNP; ++pc)
      *reinterpret_cast<uint4*>(dst + pc * kBK * D * 2 + SwzOff<D>(r, c)) = u[pc];
  }
}

// The K (kv = 0) and V (kv = 1) cache offsets of keys [cl, ch) of chunk c0 in 16-byte units
// (head included; -1 outside the span or the cache) into ro[kv * kBK + j], one key a thread.
__device__ __forceinline__ void Offsets(const AttnParams& p, const SeqInfo& si, int64_t hk,
                                        int64_t c0, int64_t cl, int64_t ch, int32_t* ro) {
  const int j = threadIdx.x;
  if (j >= kBK) return;
  int32_t ko = -1, vo = -1;
  if (c0 + j >= cl && c0 + j < ch) {
    const int64_t kr = KeyRow(p, si, c0 + j, false), vr = KeyRow(p, si, c0 + j, true);
    if (kr < 0 || vr < 0) SetDeviceError(p.err, kErrBadBlockTable);
    if (kr >= 0) ko = static_cast<int32_t>((kr + hk * p.k_head) / 16);
    if (vr >= 0) vo = static_cast<int32_t>((vr + hk * p.v_head) / 16);
  }
  ro[j] = ko, ro[kBK + j] = vo;
}

// cp.async of one matrix's chunk rows into the f32 staging; rows without an offset zero-fill
// (a V row must be finite: p = 0 times it must be 0).
template <int D, int NT>
__device__ __forceinline__ void Issue(const uint8_t* base, const int32_t* ro, float* sf) {
  constexpr int U = D / 4;
  for (int i = threadIdx.x; i < kBK * U; i += NT) {
    const int r = i / U, c = i % U;
    const int32_t o = ro[r];
    CpAsync16(sf + r * D + 4 * c, o < 0 ? base : base + int64_t{o} * 16 + 16 * c, o < 0 ? 0 : 16);
  }
}

// Issue with SplitStaged's unit map: the thread copies the 8-float units it splits itself, so
// after its own cp.async.wait_group it may split them (and reuse their staging) without a block
// barrier. Same rows, same zero-fill.
template <int D, int NT>
__device__ __forceinline__ void IssueOwn(const uint8_t* base, const int32_t* ro, float* sf) {
  constexpr int CH = D / 8;
  for (int i = threadIdx.x; i < kBK * CH; i += NT) {
    const int r = i / CH, c = i % CH;
    const int32_t o = ro[r];
    const uint8_t* src = o < 0 ? base : base + int64_t{o} * 16 + 32 * c;
    CpAsync16(sf + r * D + 8 * c, src, o < 0 ? 0 : 16);
    CpAsync16(sf + r * D + 8 * c + 4, o < 0 ? base : src + 16, o < 0 ? 0 : 16);
  }
}

// IssueOwn / SplitStaged through registers instead of the f32 staging (kOptRegStage): the
// thread's own 8-float units of one matrix's chunk rows (the units SplitStaged gives it), loaded
// L2-only; rows without an offset are zeros (IssueOwn's zero-fill). Same floats, same Split8.
template <int D, int NT>
struct OwnRegs {
  static constexpr int kU = kBK * (D / 8) / NT;
  static_assert(kBK * (D / 8) % NT == 0, "whole units a thread");
  float4 a[kU], b[kU];
};
template <int D, int NT>
__device__ __forceinline__ void LoadOwn(const uint8_t* base, const int32_t* ro,
                                        OwnRegs<D, NT>& rg) {
  constexpr int CH = D / 8;
#pragma unroll
  for (int u = 0; u < OwnRegs<D, NT>::kU; ++u) {
    const int i = threadIdx.x + u * NT;
    const int32_t o = ro[i / CH];
    rg.a[u] = rg.b[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (o >= 0) {
      const float4* src = reinterpret_cast<const float4*>(base + int64_t{o} * 16 + 32 * (i % CH));
      rg.a[u] = __ldcg(src), rg.b[u] = __ldcg(src + 1);
    }
  }
}
template <int D, int NT>
__device__ __forceinline__ void SplitOwn(const OwnRegs<D, NT>& rg, unsigned char* dst) {
  constexpr int CH = D / 8;
#pragma unroll
  for (int u = 0; u < OwnRegs<D, NT>::kU; ++u) {
    const int i = threadIdx.x + u * NT;
    const int r = i / CH, c = i % CH;
    uint4 w[kNP];
    Split8(rg.a[u], rg.b[u], w);
#pragma unroll
    for (int pc = 0; pc < kNP; ++pc)
      *reinterpret_cast<uint4*>(dst + pc * kBK * D * 2 + SwzOff<D>(r, c)) = w[pc];
  }
}

// The kTerms piece products of one k-step, smallest first, into two n8 accumulators (A
// fragments fa, B fragments fb: tile 0 from fb[.][0..1], tile 1 from fb[.][2..3]).
__device__ __forceinline__ void MmaTerms(const uint32_t (&fa)[kNP][4], const uint32_t (&fb)[kNP][4],
                                         float (&o0)[4], float (&o1)[4]) {
#pragma unroll
  for (int j = 0; j < kTerms; ++j) {
    const int a = TermA(j), b = TermB(j);
    MmaFree(o0, fa[a][0], fa[a][1], fa[a][2], fa[a][3], fb[b][0], fb[b][1]);
    MmaFree(o1, fa[a][0], fa[a][1], fa[a][2], fa[a][3], fb[b][2], fb[b][3]);
  }
}

// Q's piece fragments of k-step ks for the warp's 16 rows (Q plane rows rb ..).
template <int D, int ROWS>
__device__ __forceinline__ void LoadQ(const unsigned char* sq, int rb, int ks,
                                      uint32_t (&qa)[kNP][4]) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int a = 0; a < kNP; ++a)
    Ldsm4(qa[a], sq + a * ROWS * D * 2 +
                     SwzOff<D>(rb + (lane & 7) + ((lane >> 3) & 1) * 8, ks * 2 + (lane >> 4)));
}

// k-step ks of the scores of n8 tiles 2 np, 2 np + 1 (keys 16 np .. 16 np + 15).
template <int D>
__device__ __forceinline__ void ScoreStep(const uint32_t (&qa)[kNP][4], const unsigned char* sk,
                                          int ks, int np, float (&s0)[4], float (&s1)[4]) {
  const int lane = threadIdx.x & 31;
  uint32_t kb[kNP][4];
#pragma unroll
  for (int b = 0; b < kNP; ++b)
    Ldsm4(kb[b], sk + b * kBK * D * 2 +
                     SwzOff<D>(np * 16 + (lane & 7) + (lane >> 4) * 8, ks * 2 + ((lane >> 3) & 1)));
  MmaTerms(qa, kb, s0, s1);
}

// Scores of n8 tiles 2 np, 2 np + 1 of the warp's 16 rows (Q plane rows rb ..).
template <int D, int ROWS>
__device__ __forceinline__ void ScorePair(const unsigned char* sq, const unsigned char* sk, int rb,
                                          int np, float (&s0)[4], float (&s1)[4]) {
#pragma unroll
  for (int e = 0; e < 4; ++e) s0[e] = s1[e] = 0.0f;
#pragma unroll
  for (int ks = 0; ks < D / 16; ++ks) {
    uint32_t qa[kNP][4];
    LoadQ<D, ROWS>(sq, rb, ks, qa);
    ScoreStep<D>(qa, sk, ks, np, s0, s1);
  }
}

// All 8 n8 score tiles of the warp's rows: Q fragments loaded once a k-step (the same
// per-accumulator order as ScorePair).
template <int D, int ROWS>
__device__ __forceinline__ void ScoreAll(const unsigned char* sq, const unsigned char* sk, int rb,
                                         float (&s)[8][4]) {
#pragma unroll
  for (int n = 0; n < 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
  for (int ks = 0; ks < D / 16; ++ks) {
    uint32_t qa[kNP][4];
    LoadQ<D, ROWS>(sq, rb, ks, qa);
#pragma unroll
    for (int np = 0; np < 4; ++np) ScoreStep<D>(qa, sk, ks, np, s[2 * np], s[2 * np + 1]);
  }
}

// The chunk softmax of the thread's rows g (h = 0) and g + 8 (h = 1) in place: s -> p;
// visible keys [lo[h], hi[h]) (absolute; chunk base c0). mc = chunk max (-inf: none visible),
// lc = the p sum in the documented order.
// ALL: every key of the chunk is visible to both rows (the masks are no-ops: the same values).
template <bool ALL = false>
__device__ __forceinline__ void Softmax(float (&s)[8][4], int64_t c0, const int (&lo)[2],
                                        const int (&hi)[2], float scale, float (&mc)[2],
                                        float (&lc)[2]) {
  const int t = threadIdx.x & 3;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int jl = ALL ? 0 : lo[h] - static_cast<int>(c0);
    const int jh = ALL ? kBK : hi[h] - static_cast<int>(c0);
    float mx = -INFINITY;
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int jj = 8 * n + 2 * t + e;
        const float x = __fmul_rn(s[n][2 * h + e], scale);
        s[n][2 * h + e] = x;
        if (jj >= jl && jj < jh) mx = fmaxf(mx, x);
      }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    float sum = 0.0f;
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int jj = 8 * n + 2 * t + e;
        const float pj = (jj >= jl && jj < jh) ? expf(__fsub_rn(s[n][2 * h + e], mx)) : 0.0f;
        s[n][2 * h + e] = pj;
        sum = __fadd_rn(sum, pj);
      }
    sum = __fadd_rn(sum, __shfl_xor_sync(0xffffffffu, sum, 1));
    sum = __fadd_rn(sum, __shfl_xor_sync(0xffffffffu, sum, 2));
    mc[h] = mx, lc[h] = sum;
  }
}

// P's pieces (hi, mid, lo) for the keys of k-step kk (the C layout of s as A fragments), each
// the bf16 rounding of what the pieces before it left. OPAQUE: the compiler may not reuse an
// earlier cut of the same keys (PvMerge's RECUT: cutting again is cheaper than keeping them).
template <bool OPAQUE = false>
__device__ __forceinline__ void CutP(const float (&s)[8][4], int kk, uint32_t (&pa)[kNP][4]) {
  float rem[4][2];
  const float* src[4] = {&s[2 * kk][0], &s[2 * kk][2], &s[2 * kk + 1][0], &s[2 * kk + 1][2]};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    rem[i][0] = src[i][0], rem[i][1] = src[i][1];
    if constexpr (OPAQUE) asm volatile("" : "+f"(rem[i][0]), "+f"(rem[i][1]));
  }
#pragma unroll
  for (int a = 0; a < kNP; ++a)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      pa[a][i] = PackBf16(rem[i][0], rem[i][1]);
      rem[i][0] = __fsub_rn(rem[i][0], __uint_as_float(pa[a][i] << 16));
      rem[i][1] = __fsub_rn(rem[i][1], __uint_as_float(pa[a][i] & 0xffff0000u));
    }
}

// One k-step (16 keys) of P V into the two n8 column tiles of block dn: V's pieces through
// ldmatrix.trans, the kTerms products in order into each tile's accumulator.
template <int D>
__device__ __forceinline__ void PvStep(const uint32_t (&pa)[kNP][4], const unsigned char* sv,
                                       int kk, int dn, float (&o0)[4], float (&o1)[4]) {
  const int lane = threadIdx.x & 31;
  uint32_t vb[kNP][4];
#pragma unroll
  for (int b = 0; b < kNP; ++b)
    Ldsm4T(vb[b],
           sv + b * kBK * D * 2 +
               SwzOff<D>(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, dn * 2 + (lane >> 4)));
  MmaTerms(pa, vb, o0, o1);
}

// acc_c of n8 column tiles 2 dn0 .. 2 (dn0 + NC / 2) - 1 from zero: P cut into pieces as A
// fragments, V pieces through ldmatrix.trans.
template <int D, int NC>
__device__ __forceinline__ void Pv(const float (&s)[8][4], const unsigned char* sv, int dn0,
                                   float (&oc)[NC][4]) {
#pragma unroll
  for (int n = 0; n < NC; ++n) oc[n][0] = oc[n][1] = oc[n][2] = oc[n][3] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < kBK / 16; ++kk) {
    uint32_t pa[kNP][4];
    CutP(s, kk, pa);
#pragma unroll
    for (int d = 0; d < NC / 2; ++d) PvStep<D>(pa, sv, kk, dn0 + d, oc[2 * d], oc[2 * d + 1]);
  }
}

// A chunk's merge into a row half (MergeChunk's formula), split so that acc can be merged one
// column block at a time: the row's m / l / started move now, coef says how acc moves.
struct MergeCoef {
  bool vis = false, copy = false;
  float fa = 1.0f, fb = 0.0f;
};
__device__ __forceinline__ MergeCoef MergeRow(bool vis, float mc, float lc, float& m, float& l,
                                              bool& started) {
  MergeCoef k;
  k.vis = vis;
  if (!vis) return k;
  if (!started) {
    m = mc, l = lc, started = true, k.copy = true;
    return k;
  }
  const float mn = fmaxf(m, mc);
  k.fa = expf(__fsub_rn(m, mn)), k.fb = expf(__fsub_rn(mc, mn));
  l = fmaf(lc, k.fb, __fmul_rn(l, k.fa));
  m = mn;
  return k;
}
__device__ __forceinline__ float MergeAcc(const MergeCoef& k, float oc, float o) {
  return !k.vis ? o : k.copy ? oc : fmaf(oc, k.fb, __fmul_rn(o, k.fa));
}

// Pv with acc_c computed DNB 16-column blocks at a time and merged into acc as soon as they are
// complete (the same per-element values as Pv then Merge; 16 DNB acc_c registers live instead
// of 4 D; DNB independent accumulator pairs in flight). RECUT: P's pieces cut in each group's
// k-step loop (12 registers live instead of 48; one group: cut once). UNIFORM: where every row
// of the warp merges with the plain formula (visible, started), the merge runs without
// MergeAcc's selects (the same values).
template <int D, int NC, int DNB, bool RECUT = false, bool UNIFORM = false>
__device__ __forceinline__ void PvMerge(const float (&s)[8][4], const unsigned char* sv, int dn0,
                                        const MergeCoef (&mk)[2], float (&o)[NC][4]) {
  bool plain = false;
  if constexpr (UNIFORM)
    plain = __all_sync(0xffffffffu, mk[0].vis && !mk[0].copy && mk[1].vis && !mk[1].copy);
  uint32_t pa[RECUT ? 1 : kBK / 16][kNP][4];
  if constexpr (!RECUT) {
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) CutP(s, kk, pa[kk]);
  }
#pragma unroll
  for (int d0 = 0; d0 < NC / 2; d0 += DNB) {
    float oc[2 * DNB][4];
#pragma unroll
    for (int n = 0; n < 2 * DNB; ++n) oc[n][0] = oc[n][1] = oc[n][2] = oc[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) {
      if constexpr (RECUT) CutP<true>(s, kk, pa[0]);
#pragma unroll
      for (int d = 0; d < DNB; ++d)
        PvStep<D>(pa[RECUT ? 0 : kk], sv, kk, dn0 + d0 + d, oc[2 * d], oc[2 * d + 1]);
    }
    if (plain) {
#pragma unroll
      for (int n = 0; n < 2 * DNB; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          o[2 * d0 + n][e] =
              fmaf(oc[n][e], mk[e / 2].fb, __fmul_rn(o[2 * d0 + n][e], mk[e / 2].fa));
    } else {
#pragma unroll
      for (int n = 0; n < 2 * DNB; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          o[2 * d0 + n][e] = MergeAcc(mk[e / 2], oc[n][e], o[2 * d0 + n][e]);
    }
  }
}

// MergeChunk's formula for one row half (h) of the thread's column tiles.
template <int NC>
__device__ __forceinline__ void Merge(int h, float mc, float lc, const float (&oc)[NC][4],
                                      float (&m)[2], float (&l)[2], bool (&started)[2],
                                      float (&o)[NC][4]) {
  if (!started[h]) {
    m[h] = mc, l[h] = lc, started[h] = true;
#pragma unroll
    for (int n = 0; n < NC; ++n) o[n][2 * h] = oc[n][2 * h], o[n][2 * h + 1] = oc[n][2 * h + 1];
    return;
  }
  const float mn = fmaxf(m[h], mc);
  const float fa = expf(__fsub_rn(m[h], mn)), fb = expf(__fsub_rn(mc, mn));
  l[h] = fmaf(lc, fb, __fmul_rn(l[h], fa));
#pragma unroll
  for (int n = 0; n < NC; ++n)
#pragma unroll
    for (int e = 0; e < 2; ++e)
      o[n][2 * h + e] = fmaf(oc[n][2 * h + e], fb, __fmul_rn(o[n][2 * h + e], fa));
  m[h] = mn;
}

// RunTile's OPT bits (the same bits in every one): kOptRecut = PvMerge's RECUT, kOptUniform =
// the warp-uniform paths where every row of the warp sees the whole chunk (Softmax without the
// masks, PvMerge's plain merge without the selects).
// kOptDecode (cluster-split decode tiles, cu-attn18): each thread splits the K / V units it
// copied itself (IssueOwn: no block barrier between the copy and the split) and copies V's units
// into the staging as soon as it has split its K units; the first two chunks' block-table
// lookups run under the q loads; 3 block barriers a chunk instead of 5. kOptDecodeKV (lab): V
// copied together with K into a second f32 staging (+kFBytes of shared memory: H100, 8B tg128
// -2.3%, lab/dattn18_gpu.sh call 1). kOptPad (lab diagnostic): HEAD's tiles with that extra
// shared memory. The same per-chunk functions in the same order: the same bits.
// kOptRegStage (with kOptDecode, cu-attn18b): no f32 staging; each thread's own K / V units
// travel through registers (LoadOwn / SplitOwn, -kFBytes of shared memory: 155 -> 123 KB a block
// at D = 128, 81 -> 65 KB at D = 64; 255 / 213 registers, no spills). kOptPartInK (lab, with
// kOptDecode): the cluster partials live in the K pieces' buffer (dead from the scores' barrier
// until the next round's K split, which follows the round's last cluster barrier; -kPartBytes).
// Not kept: a block small enough in shared memory AND registers for one more block an SM lets
// a cluster put two (three) of its blocks on one SM: kOptPartInK with kOptRegStage (113 KB at
// D = 128) 8B tg128 -8%, kOptPartInK alone (75 KB, 140 registers at D = 64) 1B -6%.
constexpr int kOptRecut = 1, kOptUniform = 2, kOptDecode = 4, kOptDecodeKV = 8, kOptPad = 16,
              kOptRegStage = 32, kOptPartInK = 64;
template <int D, int RT, int NW, int CS, int OPT>
constexpr int SmemOf() {
  using C = Cfg<D, RT, NW, CS>;
  return C::kSmem + ((OPT & (kOptDecodeKV | kOptPad)) != 0 ? C::kFBytes : 0) -
         ((OPT & kOptRegStage) != 0 ? C::kFBytes : 0) -
         ((OPT & kOptPartInK) != 0 ? C::kPartBytes : 0);
}

// Rows of a tile: row r = query t0 + r / G, q head hk * G + r % G; live if r < nq * G.
// One sub-tile (queries of one sequence) of the block: see the section comment.
// DG (lab timing only, wrong results): 1 skips the K / V splits, 2 the score mma, 4 p.V.
template <int D, int RT, int NW, int CS, int DNB, int DG = 0, int OPT = 0>
__device__ void RunTile(const AttnParams& p, const SeqInfo& si, int64_t t0, int nq, int64_t hk,
                        int G, unsigned char* smem) {
  using C = Cfg<D, RT, NW, CS>;
  constexpr int NC = C::kNCols;
  unsigned char* sq = smem;
  unsigned char* sk = sq + C::kQBytes;
  unsigned char* sv = C::kAlias ? sk : sk + C::kKVBytes;  // Cfg::kSmem
  constexpr bool kDec = (OPT & kOptDecode) != 0;
  static_assert(!kDec || (C::kSpread && CS > 1 && DG == 0), "kOptDecode: split decode tiles");
  constexpr bool kKV = kDec && (OPT & kOptDecodeKV) != 0;
  constexpr bool kReg = (OPT & kOptRegStage) != 0, kPartK = (OPT & kOptPartInK) != 0;
  static_assert((!kReg && !kPartK) || (kDec && !kKV), "kOptRegStage / kOptPartInK: kOptDecode");
  float* sf = reinterpret_cast<float*>(sv + C::kKVBytes);               // kReg: none (SmemOf)
  int32_t* ro = reinterpret_cast<int32_t*>(sf + (kReg ? 0 : kBK * D));  // [2 slots][K, V][kBK]
  float4* ss = reinterpret_cast<float4*>(ro + 4 * kBK);  // spread: [8 tiles][32 lanes]
  // CS > 1: [NW][NC + 1][32]; kPartK: in sk.
  float4* part = kPartK ? reinterpret_cast<float4*>(sk) : ss + (C::kSpread ? 8 * 32 : 0);
  OwnRegs<D, C::kNT> rg;  // kReg: the thread's K or V units in flight
  // V's f32 staging: kOptDecodeKV's own after the partials (SmemOf), else K's.
  float* sfv = kKV ? reinterpret_cast<float*>(part + (CS > 1 ? NW * (NC + 1) * 32 : 0)) : sf;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int rb = C::kSpread ? 0 : 16 * warp;         // the warp's rows
  const int dn0 = C::kSpread ? warp * (NC / 2) : 0;  // its first 16-column block of acc
  int rank = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if constexpr (CS > 1) rank = static_cast<int>(cooperative_groups::this_cluster().block_rank());
#endif
  // The tile's key span.
  int64_t kmin = int64_t{1} << 62, kmax = 0;
  for (int i = 0; i < nq; ++i) {
    int64_t l2, h2;
    VisibleRange(p, si, t0 + i, &l2, &h2);
    if (h2 > l2) kmin = min(kmin, l2), kmax = max(kmax, h2);
  }
  int lo[2], hi[2];
  bool live[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = rb + g + 8 * h;
    live[h] = r < nq * G;
    int64_t l2 = 0, h2 = 0;
    if (live[h]) VisibleRange(p, si, t0 + r / G, &l2, &h2);
    lo[h] = static_cast<int>(l2), hi[h] = static_cast<int>(h2);
  }
  __syncthreads();  // the previous sub-tile is done with shared memory
  const int64_t first = kmin / kBK * kBK;
  const int nch = kmax > kmin ? static_cast<int>((kmax - first + kBK - 1) / kBK) : 0;
  const int rounds = (nch + CS - 1) / CS;
  // The block's chunks: i-th = chunk i * CS + rank of the span.
  const int mine = nch > rank ? (nch - rank + CS - 1) / CS : 0;
  const auto c0_of = [&](int i) { return first + (int64_t{i} * CS + rank) * kBK; };
  const auto offsets = [&](int i) {
    const int64_t c0 = c0_of(i);
    Offsets(p, si, hk, c0, max(c0, kmin), min(c0 + kBK, kmax), ro + (i % 2) * 2 * kBK);
  };
  // Q's 8-float unit i -> its three pieces in sq (zero rows past nq * G).
  const auto store_q = [&](int i, const float4& a, const float4& b) {
    const int r = i / C::kCH, c = i % C::kCH;
    uint4 u[kNP];
    Split8(a, b, u);
#pragma unroll
    for (int pc = 0; pc < kNP; ++pc)
      *reinterpret_cast<uint4*>(sq + pc * C::kRows * D * 2 + SwzOff<D>(r, c)) = u[pc];
  };
  const auto load_q = [&](int i, float4& a, float4& b) {
    const int r = i / C::kCH, c = i % C::kCH;
    a = make_float4(0.0f, 0.0f, 0.0f, 0.0f), b = a;
    if (r < nq * G) {
      const float4* q = reinterpret_cast<const float4*>(p.q + (t0 + r / G) * p.q_tok +
                                                        (hk * G + r % G) * p.q_head) +
                        2 * c;
      a = q[0], b = q[1];
    }
  };
  if constexpr (kDec) {
    // q loads first, then the first two chunks' block-table lookups, then the splits: the
    // three round trips overlap.
    constexpr int QU = (C::kRows * C::kCH + C::kNT - 1) / C::kNT;
    float4 qa[QU], qb[QU];
#pragma unroll
    for (int u = 0; u < QU; ++u) {
      const int i = threadIdx.x + u * C::kNT;
      if (i < C::kRows * C::kCH) load_q(i, qa[u], qb[u]);
    }
    if (mine > 0) offsets(0);
    if (mine > 1) offsets(1);
#pragma unroll
    for (int u = 0; u < QU; ++u) {
      const int i = threadIdx.x + u * C::kNT;
      if (i < C::kRows * C::kCH) store_q(i, qa[u], qb[u]);
    }
    __syncthreads();  // Q pieces and the first two chunks' offsets
    if constexpr (kReg) {
      if (mine > 0) LoadOwn<D, C::kNT>(p.k, ro, rg);
    } else {
      if (mine > 0) IssueOwn<D, C::kNT>(p.k, ro, sf);
      CpAsyncCommit();
    }
    if constexpr (kKV) {
      if (mine > 0) IssueOwn<D, C::kNT>(p.v, ro + kBK, sfv);
      CpAsyncCommit();
    }
  } else {
    // Q pieces.
    for (int i = threadIdx.x; i < C::kRows * C::kCH; i += C::kNT) {
      float4 a, b;
      load_q(i, a, b);
      store_q(i, a, b);
    }
    if (mine > 0) offsets(0);
    __syncthreads();  // Q pieces and the first offsets
    if (mine > 0) Issue<D, C::kNT>(p.k, ro, sf);
    CpAsyncCommit();
    if (mine > 1) offsets(1);
  }
  float o[NC][4], m[2] = {0.0f, 0.0f}, l[2] = {0.0f, 0.0f};
  bool started[2] = {false, false};
#pragma unroll
  for (int n = 0; n < NC; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  for (int ri = 0; ri < rounds; ++ri) {
    float mc[2] = {-INFINITY, -INFINITY}, lc[2] = {0.0f, 0.0f}, oc[NC][4];
    const bool has = ri < mine;  // block-uniform
    if (kDec && has) {
      // Groups in flight here: K_i (kOptDecodeKV: K_i, V_i), each thread's own units.
      const int i = ri;
      const int64_t c0 = c0_of(i);
      if constexpr (kReg) {  // K_i's registers -> sk (as below), V_i into them
        SplitOwn<D, C::kNT>(rg, sk);
        LoadOwn<D, C::kNT>(p.v, ro + (i % 2) * 2 * kBK + kBK, rg);
      } else {
        CpAsyncWait<kKV ? 1 : 0>();      // the thread's K_i units
        SplitStaged<D, C::kNT>(sf, sk);  // sk: every warp passed a barrier since its last scores
      }
      if constexpr (!kKV && !kReg) {  // V_i into the units the thread just split
        IssueOwn<D, C::kNT>(p.v, ro + (i % 2) * 2 * kBK + kBK, sf);
        CpAsyncCommit();
      }
      __syncthreads();  // K pieces ready; offsets(i + 1) visible
      if constexpr (kKV) {
        if (i + 1 < mine) IssueOwn<D, C::kNT>(p.k, ro + ((i + 1) % 2) * 2 * kBK, sf);
        CpAsyncCommit();  // K_{i+1} (empty past the last chunk)
      }
      float s[8][4];
      float s0[4], s1[4];
      ScorePair<D, C::kRows>(sq, sk, rb, warp, s0, s1);
      ss[(2 * warp) * 32 + lane] = make_float4(s0[0], s0[1], s0[2], s0[3]);
      ss[(2 * warp + 1) * 32 + lane] = make_float4(s1[0], s1[1], s1[2], s1[3]);
      __syncthreads();
#pragma unroll
      for (int n = 0; n < 8; ++n) {
        const float4 v = ss[n * 32 + lane];
        s[n][0] = v.x, s[n][1] = v.y, s[n][2] = v.z, s[n][3] = v.w;
      }
      Softmax(s, c0, lo, hi, p.scale, mc, lc);
      // The thread's V_i units landed (kOptDecodeKV: K_{i+1} may fly).
      if constexpr (kReg) {  // V_i's registers -> sv, K_{i+1} into them
        SplitOwn<D, C::kNT>(rg, sv);
        if (i + 1 < mine) LoadOwn<D, C::kNT>(p.k, ro + ((i + 1) % 2) * 2 * kBK, rg);
      } else {
        CpAsyncWait<kKV ? 1 : 0>();
        SplitStaged<D, C::kNT>(sfv, sv);  // sv: every warp passed a barrier since its last p.V
      }
      if constexpr (!kKV && !kReg) {  // K_{i+1} into the units the thread just split
        if (i + 1 < mine) IssueOwn<D, C::kNT>(p.k, ro + ((i + 1) % 2) * 2 * kBK, sf);
        CpAsyncCommit();
      }
      __syncthreads();  // V pieces ready; ss and offsets slot i % 2 free
      if (i + 2 < mine) offsets(i + 2);
      if constexpr (kKV) {
        if (i + 1 < mine) IssueOwn<D, C::kNT>(p.v, ro + ((i + 1) % 2) * 2 * kBK + kBK, sfv);
        CpAsyncCommit();  // V_{i+1}
      }
      Pv<D, NC>(s, sv, dn0, oc);
    } else if (has) {
      const int i = ri;
      const int64_t c0 = c0_of(i);
      CpAsyncWait<0>();
      __syncthreads();  // K_i staged; every warp is done with the previous K / V pieces
      if constexpr ((DG & 1) == 0) SplitStaged<D, C::kNT>(sf, sk);
      __syncthreads();  // K pieces ready, staging free
      Issue<D, C::kNT>(p.v, ro + (i % 2) * 2 * kBK + kBK, sf);
      CpAsyncCommit();
      float s[8][4];
      if constexpr (C::kSpread) {
        float s0[4], s1[4];
        ScorePair<D, C::kRows>(sq, sk, rb, warp, s0, s1);
        ss[(2 * warp) * 32 + lane] = make_float4(s0[0], s0[1], s0[2], s0[3]);
        ss[(2 * warp + 1) * 32 + lane] = make_float4(s1[0], s1[1], s1[2], s1[3]);
        __syncthreads();
#pragma unroll
        for (int n = 0; n < 8; ++n) {
          const float4 v = ss[n * 32 + lane];
          s[n][0] = v.x, s[n][1] = v.y, s[n][2] = v.z, s[n][3] = v.w;
        }
      } else if constexpr ((DG & 2) == 0) {
        ScoreAll<D, C::kRows>(sq, sk, rb, s);
      } else {
#pragma unroll
        for (int n = 0; n < 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
      }
      if constexpr ((OPT & kOptUniform) != 0) {
        // Warp-uniform: every row of the warp sees the whole chunk.
        if (__all_sync(0xffffffffu,
                       lo[0] <= c0 && c0 + kBK <= hi[0] && lo[1] <= c0 && c0 + kBK <= hi[1]))
          Softmax<true>(s, c0, lo, hi, p.scale, mc, lc);
        else
          Softmax(s, c0, lo, hi, p.scale, mc, lc);
      } else {
        Softmax(s, c0, lo, hi, p.scale, mc, lc);
      }
      CpAsyncWait<0>();
      __syncthreads();  // V_i staged; every warp is done with the K pieces (and ss)
      if constexpr ((DG & 1) == 0) SplitStaged<D, C::kNT>(sf, sv);
      __syncthreads();  // V pieces ready, staging and offsets slot i % 2 free
      if (i + 2 < mine) offsets(i + 2);
      if (i + 1 < mine) Issue<D, C::kNT>(p.k, ro + ((i + 1) % 2) * 2 * kBK, sf);
      CpAsyncCommit();
      if constexpr (CS == 1) {
        MergeCoef mk[2];
#pragma unroll
        for (int h = 0; h < 2; ++h)
          mk[h] = MergeRow(max(int64_t{lo[h]}, c0) < min(int64_t{hi[h]}, c0 + kBK), mc[h], lc[h],
                           m[h], l[h], started[h]);
        if constexpr ((DG & 4) == 0)
          PvMerge<D, NC, (DNB < NC / 2 ? DNB : NC / 2), (OPT & kOptRecut) != 0,
                  (OPT & kOptUniform) != 0>(s, sv, dn0, mk, o);
      } else {
        Pv<D, NC>(s, sv, dn0, oc);
      }
    }
    if constexpr (CS > 1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
      namespace cgs = cooperative_groups;
      const cgs::cluster_group cluster = cgs::this_cluster();
      float4* mine_part = part + warp * (NC + 1) * 32;  // the warp's partial slot
      if (has) {
#pragma unroll
        for (int n = 0; n < NC; ++n)
          mine_part[n * 32 + lane] = make_float4(oc[n][0], oc[n][1], oc[n][2], oc[n][3]);
        mine_part[NC * 32 + lane] = make_float4(mc[0], lc[0], mc[1], lc[1]);
      }
      cluster.sync();  // the round's partials are complete
      if (rank == 0) {
        for (int k = 0; k < CS; ++k) {
          const int ci = ri * CS + k;
          if (ci >= nch) break;
          const int64_t ck = first + int64_t{ci} * kBK;
          const float4* rp = cluster.map_shared_rank(mine_part, k);
          float pc[NC][4];
#pragma unroll
          for (int n = 0; n < NC; ++n) {
            const float4 v = rp[n * 32 + lane];
            pc[n][0] = v.x, pc[n][1] = v.y, pc[n][2] = v.z, pc[n][3] = v.w;
          }
          const float4 ml = rp[NC * 32 + lane];
#pragma unroll
          for (int h = 0; h < 2; ++h)
            if (max(int64_t{lo[h]}, ck) < min(int64_t{hi[h]}, ck + kBK))
              Merge<NC>(h, h ? ml.z : ml.x, h ? ml.w : ml.y, pc, m, l, started, o);
        }
      }
      cluster.sync();  // block 0 is done reading: the next round may overwrite
#else
      __trap();  // launched only for sm_90+ binaries
#endif
    }
  }
  CpAsyncWait<0>();
  if (CS > 1 && rank != 0) return;
  // Store: row halves h, columns 8 (col0 + n) + 2t, + 1.
  const int col0 = C::kSpread ? warp * NC : 0;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    if (!live[h]) continue;
    const int r = rb + g + 8 * h;
    float* out =
        reinterpret_cast<float*>(p.out + (t0 + r / G) * p.o_tok + (hk * G + r % G) * p.o_head);
    const float inv = started[h] && l[h] > 0.0f ? 1.0f / l[h] : 0.0f;
#pragma unroll
    for (int n = 0; n < NC; ++n)
      *reinterpret_cast<float2*>(out + 8 * (col0 + n) + 2 * t) =
          make_float2(__fmul_rn(o[n][2 * h], inv), __fmul_rn(o[n][2 * h + 1], inv));
  }
}

__host__ __device__ constexpr int MinBlocks(int D, int NW) {
  return NW == 4 ? 1 : (D == 64 ? 2 : 1);
}

// blockIdx.x = a tile of qpt queries (longest first; CS consecutive blocks = one cluster),
// blockIdx.y = the kv head (prefill tiles under lpt: the block's linear index picks both, below).
// Tokens of different sequences in a tile run as sub-tiles.
template <int D, int RT, int NW, int CS, int DNB, int DG = 0, int OPT = 0>
__global__ void __launch_bounds__(NW * 32, MinBlocks(D, NW))
    Kernel(AttnParams p, int qpt, bool lpt) {
  GridDepWait();
  AllowDependents();
  extern __shared__ float4 tc_smem4[];
  unsigned char* smem = reinterpret_cast<unsigned char*>(tc_smem4);
  const int G = static_cast<int>(p.Hq / p.Hkv);
  int64_t hk = blockIdx.y;
  int64_t tile = gridDim.x / CS - 1 - blockIdx.x / CS;
  if constexpr (CS == 1 && RT == NW) {
    // lpt (prefill tiles): blocks start longest tile first over every kv head (block b: tile
    // ntiles - 1 - b / Hkv, head b % Hkv) instead of one head's tiles after another's, so the
    // longest causal tiles of the last heads do not start in the last wave. Which block computes
    // a tile changes nothing in its rows.
    if (lpt) {
      const int64_t b = int64_t{blockIdx.y} * gridDim.x + blockIdx.x;
      tile = gridDim.x - 1 - b / gridDim.y, hk = b % gridDim.y;
    }
  }
  const int64_t t_end = min(p.T, (tile + 1) * qpt);
  int64_t start = tile * qpt;
  while (start < t_end) {
    const SeqInfo si = FindSequence(p, start);
    if (!si.ok) {
      if (CS == 1 || blockIdx.x % CS == 0)
        for (int g = 0; g < G; ++g) ZeroRow(p, start, hk * G + g);
      ++start;
      continue;
    }
    const int nq = static_cast<int>(min(t_end, si.q_first + si.q_len) - start);
    RunTile<D, RT, NW, CS, DNB, DG, OPT>(p, si, start, nq, hk, G, smem);
    start += nq;
  }
}

// One-query batch decode tiles with a short chain (kBatch, cu22-xattn; the default,
// TESSERA_CUDA_ATTN_TC_BATCH=0: Kernel<D, 1, 4, 1> as before). A block = one query t (qpt = 1)
// x one kv head, the 16-row tile spread over 4 warps as in RunTile. What RunTile's CS == 1 path
// does in ~11 dependent global round trips and 5-6 block barriers a chunk, this does in 2 round
// trips before the first chunk's math and 3 barriers a chunk:
//   1. one round trip: cu_q[t], cu_q[t + 1] and kv_lens[t] (cu_k[t], cu_k[t + 1]) on the guess
//      that query t is sequence t (a batch of one-query sequences; the guess holds iff
//      cu_q[t] <= t < cu_q[t + 1], and then FindSequence's binary search over a non-decreasing
//      cu_q returns t too: same SeqInfo; else FindSequence), the tile's q units, and (paged) the
//      block-table entry of chunk 0 for the lane's band row (used only where the guess held and
//      the span starts at chunk 0; in-bounds either way: row t < S, entry < max_blocks);
//   2. one round trip: K (registers) and V (cp.async into the f32 staging) of the chunk
//      together, each warp a band of 16 key rows in 512-byte loads (Band); each thread splits
//      its own float4s (Split8's arithmetic, no barrier between copy and split). Later chunks:
//      their table entries load during the chunk before, K / V of chunk i + 1 are issued as
//      soon as chunk i's V pieces are split.
// Per-chunk math (Split8, ScorePair, Softmax, MergeRow + PvMerge, the store) is RunTile's, on the
// same floats in the same order: the same bits (bench_cuda_kernels --attention-tc).
// D = 64 blocks are held to 128 registers (4 blocks an SM: 64 sequences x 8 kv heads = 512
// blocks in one wave on 132 SMs; RunTile's tiles fit 3); no block-table offsets in shared
// memory (lanes 0 .. 15 of a warp resolve its band's rows, the loads take them by shuffle).
// H100, 64 sequences x 33 keys, lab/xattn22_gpu.sh call 2: 10.6 -> 8.1 us (14/2 D 64), 19.5 ->
// 11.1 (32/8 D 64), 24.4 -> 19.0 (32/8 D 128); tg64x64 0.5B / 1B / 8B +3.6% / +4.9% / +0.7%.

// FindSequence's result for query t given that sequence s holds it (q0 = cu_q[s],
// q1 = cu_q[s + 1]; paged: k0 = kv_lens[s]; dense: k0, k1 = cu_k[s], cu_k[s + 1]): its tail.
__device__ __forceinline__ SeqInfo SeqAt(const AttnParams& p, int64_t t, int64_t s, int32_t q0,
                                         int32_t q1, int32_t k0, int32_t k1) {
  SeqInfo r;
  r.s = s;
  r.q_first = q0;
  r.q_len = int64_t{q1} - r.q_first;
  if (t < r.q_first || t >= r.q_first + r.q_len) return r;
  if (p.paged) {
    r.k_len = k0;
    if (r.k_len < 0 || r.k_len > p.max_blocks * p.block_size) return r;
  } else {
    r.k_first = k0;
    r.k_len = int64_t{k1} - r.k_first;
    if (r.k_first < 0 || r.k_len < 0 || r.k_first + r.k_len > p.n_kv_rows) return r;
  }
  r.ok = true;
  return r;
}

// KeyRow with the row's block-table entry already loaded (paged).
__device__ __forceinline__ int64_t KeyRowAt(const AttnParams& p, int64_t k_first, int64_t j,
                                            int32_t blk, bool is_v) {
  const int64_t tok = is_v ? p.v_tok : p.k_tok;
  if (!p.paged) return (k_first + j) * tok;
  if (blk < 0 || blk >= p.n_blocks) return -1;
  return blk * (is_v ? p.v_block : p.k_block) + (j % p.block_size) * tok;
}

// BatchKernel's K / V map ("band"): warp w owns key rows 16 w .. 16 w + 15 of a chunk; its
// u-th 16-byte piece is row 16 w + u kRpi + lane / kF4, float4 lane % kF4 (kF4 = D / 4 float4s
// a row, kRpi = 32 / kF4 rows an instruction): a warp's load is 512 contiguous bytes. (LoadOwn's
// 32-byte units a thread read each sector half in two instructions: twice the L2 traffic.)
// Lane j < 16 resolves row 16 w + j's offsets; the loads take them by shuffle.
template <int D>
struct Band {
  static constexpr int kF4 = D / 4, kRpi = 32 / kF4, kU = 16 / kRpi;
  float4 a[kU];
};
template <int D>
__device__ __forceinline__ int BandRow(int u) {
  return (threadIdx.x >> 5) * 16 + u * Band<D>::kRpi + (threadIdx.x & 31) / Band<D>::kF4;
}
template <int D>
__device__ __forceinline__ int BandCol() {
  return (threadIdx.x & 31) % Band<D>::kF4;
}
// Row offset (16-byte units, -1: none) of the band's piece u from the lanes' own rows' `ol`.
template <int D>
__device__ __forceinline__ int32_t BandOff(int32_t ol, int u) {
  return __shfl_sync(0xffffffffu, ol, u * Band<D>::kRpi + (threadIdx.x & 31) / Band<D>::kF4);
}
template <int D>
__device__ __forceinline__ void LoadBand(const uint8_t* base, int32_t ol, Band<D>& rg) {
#pragma unroll
  for (int u = 0; u < Band<D>::kU; ++u) {
    const int32_t o = BandOff<D>(ol, u);
    rg.a[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (o >= 0)
      rg.a[u] = __ldcg(reinterpret_cast<const float4*>(base + int64_t{o} * 16) + BandCol<D>());
  }
}
// cp.async of the band's pieces into the f32 staging (rows without an offset zero-filled).
template <int D>
__device__ __forceinline__ void IssueBand(const uint8_t* base, int32_t ol, float* sf) {
#pragma unroll
  for (int u = 0; u < Band<D>::kU; ++u) {
    const int32_t o = BandOff<D>(ol, u);
    const int c4 = BandCol<D>();
    CpAsync16(sf + BandRow<D>(u) * D + 4 * c4, o < 0 ? base : base + int64_t{o} * 16 + 16 * c4,
              o < 0 ? 0 : 16);
  }
}
// Split8's arithmetic on 4 floats (pairs (x, y), (z, w)): the pieces' words 2 h, 2 h + 1 of the
// 8-float unit whose half h they are.
__device__ __forceinline__ void Split4(const float4& a, uint2 (&u)[kNP]) {
  float r[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
  for (int pc = 0; pc < kNP; ++pc) {
    const uint32_t w0 = SplitPair(r[0], r[1]);
    u[pc] = make_uint2(w0, SplitPair(r[2], r[3]));
  }
}
// The band's pieces (registers, or the thread's own staged float4s) -> the three swizzled planes.
template <int D>
__device__ __forceinline__ void StoreBand(const float4& a, int u, unsigned char* dst) {
  const int r = BandRow<D>(u), c4 = BandCol<D>();
  uint2 w[kNP];
  Split4(a, w);
#pragma unroll
  for (int pc = 0; pc < kNP; ++pc)
    *reinterpret_cast<uint2*>(dst + pc * kBK * D * 2 + SwzOff<D>(r, c4 >> 1) + 8 * (c4 & 1)) =
        w[pc];
}
template <int D>
__device__ __forceinline__ void SplitBand(const Band<D>& rg, unsigned char* dst) {
#pragma unroll
  for (int u = 0; u < Band<D>::kU; ++u) StoreBand<D>(rg.a[u], u, dst);
}
template <int D>
__device__ __forceinline__ void SplitBandStaged(const float* sf, unsigned char* dst) {
#pragma unroll
  for (int u = 0; u < Band<D>::kU; ++u)
    StoreBand<D>(*reinterpret_cast<const float4*>(sf + BandRow<D>(u) * D + 4 * BandCol<D>()), u,
                 dst);
}

// Shared memory of BatchKernel: Q pieces, one K / V pieces buffer, the f32 staging (V), the
// score exchange (RunTile's CS == 1 layout without the offsets).
template <int D>
constexpr int BatchSmem() {
  using C = Cfg<D, 1, 4, 1>;
  return C::kQBytes + C::kKVBytes + C::kFBytes + C::kSBytes;
}

template <int D>
__host__ __device__ constexpr int BatchMinBlocks() {
  return D == 64 ? 4 : 2;
}

// blockIdx.x = the query (last first, as Kernel's tiles), blockIdx.y = the kv head.
template <int D>
__global__ void __launch_bounds__(128, BatchMinBlocks<D>()) BatchKernel(AttnParams p) {
  using C = Cfg<D, 1, 4, 1>;
  constexpr int NT = C::kNT, CH = C::kCH, NC = C::kNCols;
  constexpr int QU = (C::kRows * CH + NT - 1) / NT;
  constexpr int DNB = 2 < NC / 2 ? 2 : NC / 2;  // RunTile's under Launch's DNB = 2
  GridDepWait();
  AllowDependents();
  extern __shared__ float4 tc_smem4[];
  unsigned char* sq = reinterpret_cast<unsigned char*>(tc_smem4);
  unsigned char* sk = sq + C::kQBytes;  // K pieces, then V pieces (Cfg's kAlias)
  float* sf = reinterpret_cast<float*>(sk + C::kKVBytes);
  float4* ss = reinterpret_cast<float4*>(sf + kBK * D);
  const int G = static_cast<int>(p.Hq / p.Hkv);
  const int64_t t = gridDim.x - 1 - blockIdx.x, hk = blockIdx.y;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, tq = lane & 3;
  // Round trip 1: the sequence guess, q, chunk 0's table entries.
  const bool guess = t < p.S;
  int32_t q0 = 0, q1 = 0, k0 = 0, k1 = 0;
  if (guess) {
    q0 = p.cu_q[t], q1 = p.cu_q[t + 1];
    if (p.paged) {
      k0 = p.kv_lens[t];
    } else {
      k0 = p.cu_k[t], k1 = p.cu_k[t + 1];
    }
  }
  const int jrow = warp * 16 + (lane & 15);  // the lane's band row (Band)
  int32_t ent = -1;
  {
    const int64_t e = jrow / p.block_size;
    if (guess && p.paged && e < p.max_blocks) ent = p.table[t * p.table_row + e];
  }
  float4 qa[QU], qb[QU];
#pragma unroll
  for (int u = 0; u < QU; ++u) {
    const int i = threadIdx.x + u * NT, r = i / CH, c = i % CH;
    qa[u] = qb[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (i < C::kRows * CH && r < G) {
      const float4* q =
          reinterpret_cast<const float4*>(p.q + t * p.q_tok + (hk * G + r) * p.q_head) + 2 * c;
      qa[u] = q[0], qb[u] = q[1];
    }
  }
  const bool hit = guess && q0 <= t && t < q1;
  const SeqInfo si = hit ? SeqAt(p, t, t, q0, q1, k0, k1) : FindSequence(p, t);
  if (!si.ok) {
    for (int h = 0; h < G; ++h) ZeroRow(p, t, hk * G + h);
    return;
  }
  // The query's visible keys (every live row: the same query); RunTile's lo / hi / span (keys
  // fit int: k_len <= max_blocks * block_size or the dense rows, as RunTile's int lo / hi).
  int64_t l2 = 0, h2 = 0;
  VisibleRange(p, si, t, &l2, &h2);
  const int kmin = h2 > l2 ? static_cast<int>(l2) : 0, kmax = h2 > l2 ? static_cast<int>(h2) : 0;
  int lo[2], hi[2];
  bool live[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    live[h] = g + 8 * h < G;
    lo[h] = live[h] ? static_cast<int>(l2) : 0, hi[h] = live[h] ? static_cast<int>(h2) : 0;
  }
  const int first = kmin / kBK * kBK;
  const int nch = kmax > kmin ? (kmax - first + kBK - 1) / kBK : 0;
  const int32_t* const trow = p.table + (p.paged ? si.s * p.table_row : 0);
  const int64_t kfirst = si.k_first;
  // The table entry of the lane's band row of chunk c0 if inside the span (Offsets' [cl, ch)).
  const auto load_ent = [&](int c0) {
    const int j = c0 + jrow;
    ent = p.paged && j >= max(c0, kmin) && j < min(c0 + kBK, kmax) ? trow[j / p.block_size] : -1;
  };
  int32_t ko = -1, vo = -1;  // Offsets' values for the lane's band row
  const auto offsets = [&](int c0) {
    const int j = c0 + jrow;
    ko = vo = -1;
    if (j >= max(c0, kmin) && j < min(c0 + kBK, kmax)) {
      const int64_t kr = KeyRowAt(p, kfirst, j, ent, false), vr = KeyRowAt(p, kfirst, j, ent, true);
      if (kr < 0 || vr < 0) SetDeviceError(p.err, kErrBadBlockTable);
      if (kr >= 0) ko = static_cast<int32_t>((kr + hk * p.k_head) / 16);
      if (vr >= 0) vo = static_cast<int32_t>((vr + hk * p.v_head) / 16);
    }
  };
  Band<D> rg;
  if (nch > 0) {
    if (!(hit && first == 0)) load_ent(first);
    offsets(first);
    LoadBand<D>(p.k, ko, rg);
    IssueBand<D>(p.v, vo, sf);
    CpAsyncCommit();
  }
  // Q pieces (rows past G zero).
#pragma unroll
  for (int u = 0; u < QU; ++u) {
    const int i = threadIdx.x + u * NT;
    if (i < C::kRows * CH) {
      const int r = i / CH, c = i % CH;
      uint4 w[kNP];
      Split8(qa[u], qb[u], w);
#pragma unroll
      for (int pc = 0; pc < kNP; ++pc)
        *reinterpret_cast<uint4*>(sq + pc * C::kRows * D * 2 + SwzOff<D>(r, c)) = w[pc];
    }
  }
  float o[NC][4], m[2] = {0.0f, 0.0f}, l[2] = {0.0f, 0.0f};
  bool started[2] = {false, false};
#pragma unroll
  for (int n = 0; n < NC; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  for (int i = 0; i < nch; ++i) {
    const int c0 = first + i * kBK;
    const bool more = i + 1 < nch;
    if (more) load_ent(c0 + kBK);
    SplitBand<D>(rg, sk);  // sk: every warp passed a barrier since its last p.V
    __syncthreads();       // K pieces (and Q pieces) ready
    float s0[4], s1[4], s[8][4], mc[2] = {-INFINITY, -INFINITY}, lc[2] = {0.0f, 0.0f};
    ScorePair<D, C::kRows>(sq, sk, 0, warp, s0, s1);
    ss[(2 * warp) * 32 + lane] = make_float4(s0[0], s0[1], s0[2], s0[3]);
    ss[(2 * warp + 1) * 32 + lane] = make_float4(s1[0], s1[1], s1[2], s1[3]);
    __syncthreads();  // scores exchanged; every warp is done with the K pieces
#pragma unroll
    for (int n = 0; n < 8; ++n) {
      const float4 v = ss[n * 32 + lane];
      s[n][0] = v.x, s[n][1] = v.y, s[n][2] = v.z, s[n][3] = v.w;
    }
    Softmax(s, c0, lo, hi, p.scale, mc, lc);
    CpAsyncWait<0>();            // the thread's V_i pieces
    SplitBandStaged<D>(sf, sk);  // its own pieces: V pieces over the dead K pieces
    if (more) {                  // chunk i + 1: K into the registers, V into the pieces just split
      offsets(c0 + kBK);
      LoadBand<D>(p.k, ko, rg);
      IssueBand<D>(p.v, vo, sf);
    }
    CpAsyncCommit();
    __syncthreads();  // V pieces ready; ss free
    MergeCoef mk[2];
#pragma unroll
    for (int h = 0; h < 2; ++h)
      mk[h] = MergeRow(max(lo[h], c0) < min(hi[h], c0 + kBK), mc[h], lc[h], m[h], l[h], started[h]);
    PvMerge<D, NC, DNB, D == 64>(s, sk, warp * (NC / 2), mk, o);
    if (more) __syncthreads();  // every warp is done with the V pieces
  }
  CpAsyncWait<0>();
  // Store: RunTile's (row halves h, columns 8 (col0 + n) + 2 tq, + 1).
  const int col0 = warp * NC;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    if (!live[h]) continue;
    const int r = g + 8 * h;
    float* out = reinterpret_cast<float*>(p.out + t * p.o_tok + (hk * G + r) * p.o_head);
    const float inv = started[h] && l[h] > 0.0f ? 1.0f / l[h] : 0.0f;
#pragma unroll
    for (int n = 0; n < NC; ++n)
      *reinterpret_cast<float2*>(out + 8 * (col0 + n) + 2 * tq) =
          make_float2(__fmul_rn(o[n][2 * h], inv), __fmul_rn(o[n][2 * h + 1], inv));
  }
}

// Whether the model's calls take this order: a property of the head dims, dtype and features
// (and of the buffers' alignment and the device), never of T or the batch.
bool Covers(const AttnParams& p) {
  if (p.Hkv <= 0 || p.Hq % p.Hkv != 0 || p.Hq / p.Hkv > 16) return false;
  if (p.D != p.Dv || (p.D != 64 && p.D != 128) || !p.causal || p.softcap > 0.0f) return false;
  if (p.kv_dtype != TSR_DTYPE_F32) return false;
  const auto a16 = [](const void* b, int64_t x, int64_t y, int64_t z) {
    return ((reinterpret_cast<uintptr_t>(b) | x | y | z) % 16) == 0;
  };
  if (!a16(p.q, p.q_tok, p.q_head, 0) || !a16(p.k, p.k_tok, p.k_head, p.k_block) ||
      !a16(p.v, p.v_tok, p.v_head, p.v_block) || !a16(p.out, p.o_tok, p.o_head, 0))
    return false;
  // Cache offsets fit int32 16-byte units.
  const int64_t kspan = p.paged ? p.n_blocks * std::max(p.k_block, p.v_block)
                                : p.n_kv_rows * std::max(p.k_tok, p.v_tok);
  if (kspan / 16 >= (int64_t{1} << 31) - 1) return false;
  // The prefill tile of this D must fit the device (sm_80+ mma / cp.async, opt-in shared memory).
  static const int major = CurrentDeviceAttr(cudaDevAttrComputeCapabilityMajor);
  const int need = p.D == 64 ? Cfg<64, 8, 8, 1>::kSmem : Cfg<128, 8, 8, 1>::kSmem;
  return major >= 8 && need <= OptinSmem();
}

template <int D, int RT, int NW, int CS, int DNB = 2, int DG = 0, int OPT = 0>
cudaError_t Launch(const AttnParams& p, int qpt, cudaStream_t stream) {
  using C = Cfg<D, RT, NW, CS>;
  constexpr int kSmem = SmemOf<D, RT, NW, CS, OPT>();
  static std::atomic<uint64_t> allowed{0};
  cudaError_t e = AllowDynamicSmem(Kernel<D, RT, NW, CS, DNB, DG, OPT>, kSmem, &allowed);
  if (e != cudaSuccess) return e;
  const dim3 grid(static_cast<unsigned>((p.T + qpt - 1) / qpt * CS), static_cast<unsigned>(p.Hkv));
  // Prefill tiles: longest first over every kv head (1) or each head's tiles in turn (0); lab
  // knob TESSERA_CUDA_ATTN_TC_LPT, same bits (H100, lab/attn15c_gpu.sh call 2, T = 2048:
  // 32/8 D 128 0.98 -> 0.82 ms, 32/8 D 64 0.60 -> 0.42 ms, 14/2 D 64 (< 2 waves) 0.26 -> 0.26).
  static const bool lpt = EnvInt("TESSERA_CUDA_ATTN_TC_LPT", kDefaultLpt) != 0;
  // The cluster-split tiles (CS > 1) keep the head-major order.
  e = LaunchClusterK(CS, Kernel<D, RT, NW, CS, DNB, DG, OPT>, grid, C::kNT, kSmem, stream, p, qpt,
                     CS == 1 && lpt);
  return e != cudaSuccess ? e : cudaGetLastError();
}

// kBatch (TESSERA_CUDA_ATTN_TC_BATCH=1): BatchKernel, a block a query and kv head.
template <int D>
cudaError_t LaunchBatch(const AttnParams& p, cudaStream_t stream) {
  constexpr int kSmem = BatchSmem<D>();
  static std::atomic<uint64_t> allowed{0};
  cudaError_t e = AllowDynamicSmem(BatchKernel<D>, kSmem, &allowed);
  if (e != cudaSuccess) return e;
  const dim3 grid(static_cast<unsigned>(p.T), static_cast<unsigned>(p.Hkv));
  e = LaunchK(BatchKernel<D>, grid, 128, kSmem, stream, p);
  return e != cudaSuccess ? e : cudaGetLastError();
}

template <int D>
bool ClusterSupported() {
  static const bool ok = [] {
    cudaFuncAttributes fa{};
    if (cudaFuncGetAttributes(&fa, Kernel<D, 1, 4, kSplit, 2>) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return fa.binaryVersion >= 90;
  }();
  return ok;
}

// Tile kinds (the same bits in every one): kAuto picks by the call's size, the rest are lab
// variants. kPrefill8 / kPrefill4: 128 / 64 rows a block (a 16-row tile a warp); kDecodeSplit /
// kDecode: one 16-row tile (16 / G queries) spread over 4 warps, split over a cluster of
// kSplit blocks / one block; kBatch: one query a block.
// kDiag1 / 2 / 4: kPrefill8Head at D = 128 without the splits / score mma / p.V (timing only).
// kPrefill8Head / kPrefill4Head: kPrefill8 / kPrefill4 without the warp-uniform paths (HEAD
// fee64b5's tiles). kDecodeSplitHead: kDecodeSplit without kOptDecode (HEAD 0a00b9a's).
// kDiagEmpty / kDiagEmptyFlat (timing only, no output): kDecodeSplit's grid of blocks that only
// pass griddepcontrol.wait, in its clusters with its shared memory / neither (the launch floor;
// H100, lab/dattn19_gpu.sh: ~4.2 us a call back to back, ~3.5 us under PDL, either way).
// kBatchHead: kBatch's tiles before cu22-xattn (Kernel<D, 1, 4, 1>, RunTile), whatever the knob.
enum Kind {
  kAuto,
  kPrefill8,
  kPrefill4,
  kDecodeSplit,
  kDecode,
  kBatch,
  kDiag1,
  kDiag2,
  kDiag4,
  kPrefill8Head,
  kPrefill4Head,
  kDecodeSplitHead,
  kDiagEmpty,
  kDiagEmptyFlat,
  kBatchHead
};

__global__ void EmptyKernel(AttnParams, int, bool) {
  GridDepWait();
  AllowDependents();
}

// kDiagEmpty / kDiagEmptyFlat: the decode tiles' launch without their work.
template <int D>
cudaError_t LaunchEmpty(const AttnParams& p, bool cluster, cudaStream_t stream) {
  constexpr int kSmem = SmemOf<D, 1, 4, kSplit, kOptDecode | kOptRegStage>();
  static std::atomic<uint64_t> allowed{0};
  cudaError_t e = AllowDynamicSmem(EmptyKernel, kSmem, &allowed);
  if (e != cudaSuccess) return e;
  const int qpt = 16 / static_cast<int>(p.Hq / p.Hkv);
  const dim3 grid(static_cast<unsigned>((p.T + qpt - 1) / qpt * kSplit),
                  static_cast<unsigned>(p.Hkv));
  e = LaunchClusterK(cluster ? kSplit : 1, EmptyKernel, grid, 128, cluster ? kSmem : 0, stream, p,
                     qpt, false);
  return e != cudaSuccess ? e : cudaGetLastError();
}

template <int D>
cudaError_t LaunchKind(const AttnParams& p, Kind kind, cudaStream_t stream) {
  const int G = static_cast<int>(p.Hq / p.Hkv);
  // kPrefill8Head / kPrefill4Head: 16-column blocks of acc_c a group in p.V (1, 2 or 4; lab knob
  // TESSERA_CUDA_ATTN_TC_DNB; same bits).
  static const int dnb = EnvInt("TESSERA_CUDA_ATTN_TC_DNB", kDefaultDnb);
  if (kind == kAuto) {
    constexpr int64_t kDecodeMaxTokens = 16;
    if (p.T <= kDecodeMaxTokens)
      kind = kDecodeSplit;
    else if (p.S > 0 && p.T <= 2 * p.S)
      kind = kBatch;
    else if (D == 128)
      kind = kPrefill8;
    else {
      // D = 64: 128-row blocks where they fill two waves, else 64-row ones (H100, T = 2048,
      // lab/attn15b_gpu.sh: 32/8 heads 0.598 vs 0.626 ms; 14/2 heads (228 blocks) 0.360 vs
      // 0.259 ms).
      static const int sms = [] {
        const int v = CurrentDeviceAttr(cudaDevAttrMultiProcessorCount);
        return v > 0 ? v : 132;
      }();
      const int64_t blocks8 = (p.T + 128 / G - 1) / (128 / G) * p.Hkv;
      kind = blocks8 >= 2 * sms ? kPrefill8 : kPrefill4;
    }
  }
  // Prefill tiles: the warp-uniform paths (kOptUniform; 64-row D = 64 tiles: every column block
  // in one group, P cut once); kPrefill8Head / kPrefill4Head = HEAD fee64b5's tiles (DNB above;
  // same bits). H100, lab/attn16_gpu.sh call 2, T = 2048: 32/8 D 128 0.826 -> 0.660 ms, 32/8
  // D 64 0.416 -> 0.361, 14/2 D 64 (64-row tiles) 0.255 -> 0.243.
  switch (kind) {
    case kPrefill8: return Launch<D, 8, 8, 1, 2, 0, kOptUniform>(p, 128 / G, stream);
    case kPrefill4:
      if constexpr (D == 64)
        return Launch<D, 4, 4, 1, 4, 0, kOptRecut | kOptUniform>(p, 64 / G, stream);
      return Launch<D, 4, 4, 1, 2, 0, kOptUniform>(p, 64 / G, stream);
    case kPrefill8Head:
      return dnb == 1   ? Launch<D, 8, 8, 1, 1>(p, 128 / G, stream)
             : dnb == 4 ? Launch<D, 8, 8, 1, 4>(p, 128 / G, stream)
                        : Launch<D, 8, 8, 1, 2>(p, 128 / G, stream);
    case kPrefill4Head:
      return dnb == 1   ? Launch<D, 4, 4, 1, 1>(p, 64 / G, stream)
             : dnb == 4 ? Launch<D, 4, 4, 1, 4>(p, 64 / G, stream)
                        : Launch<D, 4, 4, 1, 2>(p, 64 / G, stream);
    case kDiagEmpty:
    case kDiagEmptyFlat: return LaunchEmpty<D>(p, kind == kDiagEmpty, stream);
    case kDecodeSplit:
    case kDecodeSplitHead:
      if (ClusterSupported<D>()) {
        // TESSERA_CUDA_ATTN_TC_DEC: 1 kOptDecode, 0 HEAD 0a00b9a's tiles (also the lab's head
        // kind), 2 kOptDecode + kOptDecodeKV, 3 HEAD's tiles + kOptPad, 4 (the default)
        // kOptDecode + kOptRegStage, 5 4 + kOptPartInK, 6 kOptDecode + kOptPartInK (lab; same
        // bits in all).
        static const int dec = EnvInt("TESSERA_CUDA_ATTN_TC_DEC", kDefaultTcDec);
        const int m = kind == kDecodeSplit ? dec : 0;
        constexpr int kDR = kOptDecode | kOptRegStage;
        const cudaError_t e =
            m == 1   ? Launch<D, 1, 4, kSplit, 2, 0, kOptDecode>(p, 16 / G, stream)
            : m == 4 ? Launch<D, 1, 4, kSplit, 2, 0, kDR>(p, 16 / G, stream)
            : m == 5 ? Launch<D, 1, 4, kSplit, 2, 0, kDR | kOptPartInK>(p, 16 / G, stream)
            : m == 6 ? Launch<D, 1, 4, kSplit, 2, 0, kOptDecode | kOptPartInK>(p, 16 / G, stream)
            : m == 2 ? Launch<D, 1, 4, kSplit, 2, 0, kOptDecode | kOptDecodeKV>(p, 16 / G, stream)
            : m == 3 ? Launch<D, 1, 4, kSplit, 2, 0, kOptPad>(p, 16 / G, stream)
                     : Launch<D, 1, 4, kSplit>(p, 16 / G, stream);
        if (e == cudaSuccess) return cudaSuccess;
        cudaGetLastError();
      }
      return Launch<D, 1, 4, 1>(p, 16 / G, stream);
    case kDecode: return Launch<D, 1, 4, 1>(p, 16 / G, stream);
    case kBatch: {
      // TESSERA_CUDA_ATTN_TC_BATCH: 1 BatchKernel, 2 BatchKernel at D = 64 only, 0 RunTile's
      // one-query tiles (same bits).
      static const int batch = EnvInt("TESSERA_CUDA_ATTN_TC_BATCH", kDefaultTcBatch);
      if (batch == 1 || (batch == 2 && D == 64)) return LaunchBatch<D>(p, stream);
      return Launch<D, 1, 4, 1>(p, 1, stream);
    }
    case kBatchHead: return Launch<D, 1, 4, 1>(p, 1, stream);
    case kDiag1:
      if constexpr (D == 128) return Launch<D, 8, 8, 1, 2, 1>(p, 128 / G, stream);
      return cudaErrorNotSupported;
    case kDiag2:
      if constexpr (D == 128) return Launch<D, 8, 8, 1, 2, 2>(p, 128 / G, stream);
      return cudaErrorNotSupported;
    case kDiag4:
      if constexpr (D == 128) return Launch<D, 8, 8, 1, 2, 4>(p, 128 / G, stream);
      return cudaErrorNotSupported;
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t LaunchTc(const AttnParams& p, Kind kind, cudaStream_t stream) {
  if (!Covers(p)) return cudaErrorNotSupported;
  return p.D == 64 ? LaunchKind<64>(p, kind, stream) : LaunchKind<128>(p, kind, stream);
}

}  // namespace tc

// TESSERA_CUDA_ATTN_TC=0|1: the tensor-core order for the models it covers (tc::Covers).
bool TcEnabled() {
  static const bool on = EnvFlag("TESSERA_CUDA_ATTN_TC", kDefaultTc);
  return on;
}

}  // namespace

cudaError_t LaunchAttentionWith(const AttnParams& p, int variant, cudaStream_t stream) {
  if (p.T == 0 || p.Hq == 0) return cudaSuccess;
  // 10 .. 15, 19 .. 21, 24: the tensor-core order's tile kinds (16 .. 18, 22, 23: timing-only
  // diagnostics) (cudaErrorNotSupported where it does not cover the call); 0: it where
  // TESSERA_CUDA_ATTN_TC and tc::Covers say so; 9: the f32 order's default.
  if (variant >= 10 && variant <= 24)
    return tc::LaunchTc(p, static_cast<tc::Kind>(variant - 10), stream);
  if (variant == 0 && TcEnabled() && tc::Covers(p)) return tc::LaunchTc(p, tc::kAuto, stream);
  if (variant == 9) variant = 0;
  if (variant == 1) return LaunchLegacy(p, stream);
  // Variants 2 / 3 force the tiled prefill's register cap; 5 / 6 / 7 pick the prefill kernel.
  // 8 picks the one-query batch decode tiles.
  const int pipe = variant == 5 ? 0 : variant == 6 ? 1 : variant == 7 ? 2 : kDefaultPipe;
  const bool batch_one = variant == 8 || (variant == 0 && kDefaultBatchOne);
  const int cap = variant == 2 ? 1 : variant == 3 ? 2 : 0;
  return LaunchTiledFor(p, cap, variant != 4, pipe, batch_one, stream);
}

cudaError_t LaunchAttention(const AttnParams& p, cudaStream_t stream) {
  // The tensor-core order wins over the f32 order's lab knobs (TESSERA_CUDA_ATTN) for the
  // models it covers: a model's calls all take one order.
  if (p.T > 0 && p.Hq > 0 && TcEnabled() && tc::Covers(p))
    return tc::LaunchTc(p, tc::kAuto, stream);
  const int v = DefaultVariant();
  return LaunchAttentionWith(p, v == 0 ? 9 : v, stream);
}

}  // namespace tessera::cuda
