// Tensor-core prefill attention lab (2026-11-27, fourteenth session, cu-attn14). Standalone
// prototype, NOT used by the engine: causal prefill of one sequence with f32 Q/K/V, GQA rows =
// (query, q head of one KV head) as the tiled kernel, S = Q K^T and O = P V from
// mma.sync.m16n8k16 bf16 -> f32 products of bf16 pieces, online softmax in f32 (FA2 style).
//
//   Variant B  : Q, K, V, P rounded to bf16 (one piece, one mma a tile): the speed ceiling.
//   Variant E<s,p>: S from s terms, P V from p terms of the pieces x = hi + mid (+ lo):
//     1 term  = hi*hi
//     3 terms = hi*mid + mid*hi + hi*hi                 (2 pieces)
//     6 terms = hi*lo + lo*hi + mid*mid + hi*mid + mid*hi + hi*hi   (3 pieces)
//   (smallest first, as the matmul). Q/K/V pieces come from a split pre-pass (timed apart and
//   with the kernel); P's pieces are cut in registers from the f32 p.
//   Suffix m: the project's chunk-merge order (chunk max, the chunk's P V from zero, merged in
//   chunk order with f32 FMAs) instead of FA2's running rescale; _nw8 / _nw4: 8 / 4 warps a block.
// Bit checks: rows of calls that start at other queries (q_begin 5, 1001, T - 1: a one-query
// "decode" call) and of 4-warp blocks must equal the full 8-warp prefill's rows (memcmp).
//
// Also times the engine's current kernel (k_attention.cu LaunchAttention, the pipelined f32
// kernel) on the same data and compares every variant with a float64 reference on sample rows.
//
// Build (standalone; LIBDIR = a Release build's backends/cuda, for the current kernel; the
// session used build/perf at HEAD 035ab10):
//   nvcc -std=c++17 -arch=sm_90a -O3 -cudart static -Xcompiler=-static-libstdc++,-static-libgcc \
//     -I. -Iplugins-api/include backends/cuda/lab/attn_tc_lab.cu \
//     LIBDIR/libtessera_cuda_kernels.a LIBDIR/libtessera_cuda_wgmma.a -o attn_tc_lab
// Run: attn_tc_lab [--reps N]   prints "accuracy|bits|time key=value ..." lines.
// Numbers and conclusions: backends/cuda/lab/NOTES.md, "Tensor-core prefill attention, lab
// prototype" (2026-11-27, fourteenth session, cu-attn14).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backends/cuda/lab/lab_util.h"
#include "backends/cuda/launch.h"
#include "backends/cuda/mma_common.cuh"

namespace tessera::cuda {
namespace {

using lab::Check;

constexpr int kBN = 64;  // keys a chunk (softmax rescale granularity)

__host__ __device__ constexpr int Pieces(int terms) {
  return terms == 1 ? 1 : (terms == 3 ? 2 : 3);
}

// Term j of a `terms`-term product: (a piece, b piece), smallest first.
__host__ __device__ constexpr int TermA(int terms, int j) {
  return terms == 1   ? 0
         : terms == 3 ? (j == 0   ? 0
                         : j == 1 ? 1
                                  : 0)
                      : (j == 0   ? 0
                         : j == 1 ? 2
                         : j == 2 ? 1
                         : j == 3 ? 0
                         : j == 4 ? 1
                                  : 0);
}
__host__ __device__ constexpr int TermB(int terms, int j) {
  return terms == 1   ? 0
         : terms == 3 ? (j == 0   ? 1
                         : j == 1 ? 0
                                  : 0)
                      : (j == 0   ? 2
                         : j == 1 ? 0
                         : j == 2 ? 1
                         : j == 3 ? 1
                         : j == 4 ? 0
                                  : 0);
}

// ---- split pre-pass: f32 [n] -> np bf16 planes [np][n] (hi, mid, lo) ----
__global__ void SplitKernel(const float* __restrict__ x, __nv_bfloat16* __restrict__ planes,
                            int64_t n, int np) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    float r = x[i];
    for (int p = 0; p < np; ++p) {
      const __nv_bfloat16 b = __float2bfloat16_rn(r);
      planes[p * n + i] = b;
      r = r - __bfloat162float(b);  // exact: b is r rounded
    }
  }
}

__device__ __forceinline__ uint32_t SmemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void Ldsm4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void Ldsm4T(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// Swizzled [rows][D] bf16 tile: 16-byte chunk c of row r sits at chunk c ^ (r & 7), so the 8 rows
// of an ldmatrix 8x8 hit 8 different bank groups.
template <int D>
__device__ __forceinline__ int SwzOff(int r, int c) {  // bytes
  return r * D * 2 + ((c ^ (r & 7)) << 4);
}

__device__ __forceinline__ uint32_t PackBf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}
__device__ __forceinline__ float Bf16Lo(uint32_t w) {
  return __uint_as_float(w << 16);
}
__device__ __forceinline__ float Bf16Hi(uint32_t w) {
  return __uint_as_float(w & 0xffff0000u);
}

struct TcParams {
  const __nv_bfloat16* q;          // [NPS][T][Hq][D]
  const __nv_bfloat16* k;          // [NPS][T][Hkv][D]
  const __nv_bfloat16* v;          // [NPV][T][Hkv][D]
  float* out;                      // [T][Hq][D]
  int T, Hq, Hkv, G, qpt, ntiles;  // qpt = queries a tile (BM / G)
  int q_begin;  // first query of the call (keys always 0 .. query): shifts every tile's rows
  float scale;
};

// One block: BM = 16 NW rows (qpt queries x G heads of one KV head), all visible key chunks.
// Warp w owns rows 16w .. 16w + 15 (m16 tiles); thread (g = lane / 4, t = lane % 4) holds rows
// g and g + 8 of the warp's tile in the mma C layout.
template <int D, int TS, int TP, int NW, bool FAST_EXP, bool MERGE>
__global__ void __launch_bounds__(NW * 32, (D == 64 ? (NW == 8 ? 2 : 3) : (NW == 8 ? 1 : 2)))
    TcAttnKernel(TcParams p) {
  constexpr int NPS = Pieces(TS), NPV = Pieces(TP);
  constexpr int BM = 16 * NW, NT = NW * 32;
  constexpr int CH = D / 8;  // 16-byte chunks a row
  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* sQ = smem;                    // [NPS][BM][D]
  unsigned char* sK = sQ + NPS * BM * D * 2;   // [NPS][kBN][D]
  unsigned char* sV = sK + NPS * kBN * D * 2;  // [NPV][kBN][D]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int bid = blockIdx.x;
  const int tile = p.ntiles - 1 - bid / p.Hkv;  // longest tiles first
  const int kvh = bid % p.Hkv;
  const int q0 = p.q_begin + tile * p.qpt;
  const int qlast = min(q0 + p.qpt, p.T) - 1;
  const int64_t planeQ = int64_t(p.T) * p.Hq * D, planeK = int64_t(p.T) * p.Hkv * D;

  // Q tile -> shared (all pieces), zero rows past the group / sequence.
  for (int i = tid; i < NPS * BM * CH; i += NT) {
    const int c = i % CH, r = (i / CH) % BM, pc = i / (CH * BM);
    const int qi = q0 + r / p.G, hh = r % p.G;
    const bool ok = r < p.qpt * p.G && qi < p.T;
    const __nv_bfloat16* src =
        p.q + pc * planeQ + (int64_t(ok ? qi : 0) * p.Hq + kvh * p.G + hh) * D + c * 8;
    CpAsync16(sQ + pc * BM * D * 2 + SwzOff<D>(r, c), src, ok ? 16 : 0);
  }
  const auto load_kv = [&](unsigned char* dst, const __nv_bfloat16* base, int np, int chunk) {
    for (int i = tid; i < np * kBN * CH; i += NT) {
      const int c = i % CH, r = (i / CH) % kBN, pc = i / (CH * kBN);
      const int key = chunk * kBN + r;
      const bool ok = key < p.T;
      const __nv_bfloat16* src =
          base + pc * planeK + (int64_t(ok ? key : 0) * p.Hkv + kvh) * D + c * 8;
      CpAsync16(dst + pc * kBN * D * 2 + SwzOff<D>(r, c), src, ok ? 16 : 0);
    }
  };
  load_kv(sK, p.k, NPS, 0);
  CpAsyncCommit();

  // Row positions of this thread's two rows.
  const int r0 = warp * 16 + g, r1 = r0 + 8;
  const int qp0 = min(q0 + r0 / p.G, qlast), qp1 = min(q0 + r1 / p.G, qlast);

  float o[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
  const float sl = FAST_EXP ? p.scale * 1.4426950408889634f : p.scale;

  const int nchunks = qlast / kBN + 1;
  const int q_min = q0;  // smallest query position of the tile
  for (int c = 0; c < nchunks; ++c) {
    CpAsyncWait<0>();
    __syncthreads();  // K_c (and Q) landed; every warp is done with V_{c-1}
    load_kv(sV, p.v, NPV, c);
    CpAsyncCommit();

    // ---- S = Q K_c^T ----
    float s[8][4];
#pragma unroll
    for (int n = 0; n < 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      uint32_t qa[NPS][4];
#pragma unroll
      for (int a = 0; a < NPS; ++a) {
        const int row = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
        const int ch = ks * 2 + (lane >> 4);
        Ldsm4(qa[a], SmemAddr(sQ + a * BM * D * 2 + SwzOff<D>(row, ch)));
      }
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        uint32_t kb[NPS][4];
#pragma unroll
        for (int b = 0; b < NPS; ++b) {
          const int row = np * 16 + (lane & 7) + (lane >> 4) * 8;
          const int ch = ks * 2 + ((lane >> 3) & 1);
          Ldsm4(kb[b], SmemAddr(sK + b * kBN * D * 2 + SwzOff<D>(row, ch)));
        }
#pragma unroll
        for (int j = 0; j < TS; ++j) {
          const int a = TermA(TS, j), b = TermB(TS, j);
          MmaFree(s[2 * np], qa[a][0], qa[a][1], qa[a][2], qa[a][3], kb[b][0], kb[b][1]);
          MmaFree(s[2 * np + 1], qa[a][0], qa[a][1], qa[a][2], qa[a][3], kb[b][2], kb[b][3]);
        }
      }
    }

    // ---- online softmax (rows g, g + 8 of the warp tile; keys 8n + 2t + e) ----
    const bool mask = c * kBN + kBN - 1 > q_min;
    float cm0 = -INFINITY, cm1 = -INFINITY;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int key = c * kBN + n * 8 + 2 * t + e;
        float x0 = __fmul_rn(s[n][e], sl), x1 = __fmul_rn(s[n][2 + e], sl);
        if (mask) {
          if (key > qp0) x0 = -INFINITY;
          if (key > qp1) x1 = -INFINITY;
        }
        s[n][e] = x0, s[n][2 + e] = x1;
        cm0 = fmaxf(cm0, x0), cm1 = fmaxf(cm1, x1);
      }
    }
    cm0 = fmaxf(cm0, __shfl_xor_sync(0xffffffffu, cm0, 1));
    cm0 = fmaxf(cm0, __shfl_xor_sync(0xffffffffu, cm0, 2));
    cm1 = fmaxf(cm1, __shfl_xor_sync(0xffffffffu, cm1, 1));
    cm1 = fmaxf(cm1, __shfl_xor_sync(0xffffffffu, cm1, 2));
    const float mn0 = fmaxf(m0, cm0), mn1 = fmaxf(m1, cm1);
    // FA2 order: p against the running max, O and l rescaled by alpha before P V accumulates.
    // MERGE (the project's canonical order): p against the chunk max, the chunk's P V from zero,
    // then O = O * alpha + O_c * beta (a chunk nobody in the row sees: beta = 0, alpha = 1).
    const float pm0 = MERGE ? (cm0 == -INFINITY ? 0.f : cm0) : mn0;
    const float pm1 = MERGE ? (cm1 == -INFINITY ? 0.f : cm1) : mn1;
    const float al0 = FAST_EXP ? exp2f(m0 - mn0) : expf(__fsub_rn(m0, mn0));
    const float al1 = FAST_EXP ? exp2f(m1 - mn1) : expf(__fsub_rn(m1, mn1));
    const float be0 = MERGE ? expf(__fsub_rn(cm0, mn0)) : 1.f;
    const float be1 = MERGE ? expf(__fsub_rn(cm1, mn1)) : 1.f;
    m0 = mn0, m1 = mn1;
    float ps0 = 0.f, ps1 = 0.f;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float e0 = FAST_EXP ? exp2f(s[n][e] - pm0) : expf(__fsub_rn(s[n][e], pm0));
        const float e1 = FAST_EXP ? exp2f(s[n][2 + e] - pm1) : expf(__fsub_rn(s[n][2 + e], pm1));
        s[n][e] = e0, s[n][2 + e] = e1;
        ps0 = __fadd_rn(ps0, e0), ps1 = __fadd_rn(ps1, e1);
      }
    }
    ps0 = __fadd_rn(ps0, __shfl_xor_sync(0xffffffffu, ps0, 1));
    ps0 = __fadd_rn(ps0, __shfl_xor_sync(0xffffffffu, ps0, 2));
    ps1 = __fadd_rn(ps1, __shfl_xor_sync(0xffffffffu, ps1, 1));
    ps1 = __fadd_rn(ps1, __shfl_xor_sync(0xffffffffu, ps1, 2));
    if (MERGE) {
      l0 = __fmaf_rn(l0, al0, __fmul_rn(ps0, be0)), l1 = __fmaf_rn(l1, al1, __fmul_rn(ps1, be1));
    } else {
      l0 = __fmaf_rn(l0, al0, ps0), l1 = __fmaf_rn(l1, al1, ps1);
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {
        o[n][0] = __fmul_rn(o[n][0], al0), o[n][1] = __fmul_rn(o[n][1], al0);
        o[n][2] = __fmul_rn(o[n][2], al1), o[n][3] = __fmul_rn(o[n][3], al1);
      }
    }
    float oc[MERGE ? D / 8 : 1][4];
#pragma unroll
    for (int n = 0; n < (MERGE ? D / 8 : 1); ++n) oc[n][0] = oc[n][1] = oc[n][2] = oc[n][3] = 0.f;
    float(*acc)[4] = MERGE ? oc : o;

    CpAsyncWait<0>();
    __syncthreads();  // V_c landed; every warp is done with K_c
    if (c + 1 < nchunks) load_kv(sK, p.k, NPS, c + 1);
    CpAsyncCommit();

    // ---- O += P V_c ----
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
      // P pieces as A fragments (C tiles 2kk, 2kk + 1 are the A tile of keys 16kk ..).
      uint32_t pa[NPV][4];
      float rem[4][2];
      const float* src[4] = {&s[2 * kk][0], &s[2 * kk][2], &s[2 * kk + 1][0], &s[2 * kk + 1][2]};
#pragma unroll
      for (int i = 0; i < 4; ++i) rem[i][0] = src[i][0], rem[i][1] = src[i][1];
#pragma unroll
      for (int a = 0; a < NPV; ++a) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          pa[a][i] = PackBf16(rem[i][0], rem[i][1]);
          if (a + 1 < NPV) {
            rem[i][0] = __fsub_rn(rem[i][0], Bf16Lo(pa[a][i]));
            rem[i][1] = __fsub_rn(rem[i][1], Bf16Hi(pa[a][i]));
          }
        }
      }
#pragma unroll
      for (int dn = 0; dn < D / 16; ++dn) {
        uint32_t vb[NPV][4];
#pragma unroll
        for (int b = 0; b < NPV; ++b) {
          const int row = kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
          const int ch = dn * 2 + (lane >> 4);
          Ldsm4T(vb[b], SmemAddr(sV + b * kBN * D * 2 + SwzOff<D>(row, ch)));
        }
#pragma unroll
        for (int j = 0; j < TP; ++j) {
          const int a = TermA(TP, j), b = TermB(TP, j);
          MmaFree(acc[2 * dn], pa[a][0], pa[a][1], pa[a][2], pa[a][3], vb[b][0], vb[b][1]);
          MmaFree(acc[2 * dn + 1], pa[a][0], pa[a][1], pa[a][2], pa[a][3], vb[b][2], vb[b][3]);
        }
      }
    }
    if (MERGE) {
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {
        o[n][0] = __fmaf_rn(o[n][0], al0, __fmul_rn(oc[n][0], be0));
        o[n][1] = __fmaf_rn(o[n][1], al0, __fmul_rn(oc[n][1], be0));
        o[n][2] = __fmaf_rn(o[n][2], al1, __fmul_rn(oc[n][2], be1));
        o[n][3] = __fmaf_rn(o[n][3], al1, __fmul_rn(oc[n][3], be1));
      }
    }
  }

  // ---- store O / l ----
  const int rows_valid = p.qpt * p.G;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = half ? r1 : r0;
    const int qi = q0 + r / p.G;
    if (r >= rows_valid || qi >= p.T) continue;
    const float inv_l = 1.0f / (half ? l1 : l0);
    float* dst = p.out + (int64_t(qi) * p.Hq + kvh * p.G + r % p.G) * D;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      float2 w;
      w.x = __fmul_rn(o[n][2 * half], inv_l);
      w.y = __fmul_rn(o[n][2 * half + 1], inv_l);
      *reinterpret_cast<float2*>(dst + n * 8 + 2 * t) = w;
    }
  }
}

struct Variant {
  const char* name;
  int ts, tp, nw;
  bool fast_exp, merge;
};

template <int D, int TS, int TP, int NW, bool FE, bool MG>
cudaError_t LaunchT(const TcParams& base) {
  constexpr int NPS = Pieces(TS), NPV = Pieces(TP);
  constexpr int BM = 16 * NW;
  const size_t smem = size_t(NPS * BM * D * 2 + NPS * kBN * D * 2 + NPV * kBN * D * 2);
  auto kern = TcAttnKernel<D, TS, TP, NW, FE, MG>;
  static bool attr = false;
  if (!attr) {
    Check(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
          "smem attr");
    attr = true;
  }
  TcParams p = base;
  p.qpt = BM / p.G;
  p.ntiles = (p.T - p.q_begin + p.qpt - 1) / p.qpt;
  kern<<<p.ntiles * p.Hkv, NW * 32, smem>>>(p);
  return cudaGetLastError();
}

template <int D>
cudaError_t LaunchTc(const Variant& v, const TcParams& p) {
#define TC_CASE(TS, TP, NW, FE, MG)                                                \
  if (v.ts == TS && v.tp == TP && v.nw == NW && v.fast_exp == FE && v.merge == MG) \
    return LaunchT<D, TS, TP, NW, FE, MG>(p);
  TC_CASE(1, 1, 8, true, false)
  TC_CASE(1, 1, 4, true, false)
  TC_CASE(3, 3, 8, false, false)
  TC_CASE(3, 3, 4, false, false)
  TC_CASE(6, 3, 8, false, false)
  TC_CASE(6, 3, 4, false, false)
  TC_CASE(3, 6, 8, false, false)
  TC_CASE(6, 6, 8, false, false)
  TC_CASE(6, 6, 4, false, false)
  TC_CASE(3, 1, 8, false, false)
  TC_CASE(1, 3, 8, false, false)
  TC_CASE(3, 3, 8, false, true)
  TC_CASE(3, 3, 4, false, true)
  TC_CASE(6, 6, 8, false, true)
  TC_CASE(6, 6, 4, false, true)
#undef TC_CASE
  return cudaErrorInvalidValue;
}

// ---- harness ----
struct Err {
  double max_abs = 0, max_rel = 0, worst_ratio = 0;
};

// float64 reference for sample rows (query t, head h), compared with out.
Err Compare(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
            const std::vector<float>& out, int T, int Hq, int Hkv, int D, float scale) {
  Err e;
  const int G = Hq / Hkv;
  const int ts[] = {0, 1, 5, 63, 64, 100, 511, T / 3, T / 2 + 7, T - 2, T - 1};
  for (int t : ts) {
    for (int h : {0, G - 1, Hq / 2, Hq - 1}) {
      const int hk = h / G;
      std::vector<double> sc(t + 1);
      double mx = -1e300, l = 0;
      for (int j = 0; j <= t; ++j) {
        double d = 0;
        for (int x = 0; x < D; ++x)
          d += double(q[(size_t(t) * Hq + h) * D + x]) * k[(size_t(j) * Hkv + hk) * D + x];
        sc[j] = d * scale;
        mx = std::max(mx, sc[j]);
      }
      for (int j = 0; j <= t; ++j) l += std::exp(sc[j] - mx);
      for (int x = 0; x < D; ++x) {
        double o = 0;
        for (int j = 0; j <= t; ++j) o += std::exp(sc[j] - mx) * v[(size_t(j) * Hkv + hk) * D + x];
        o /= l;
        const double w = double(float(o));  // the conformance suite rounds the reference to f32
        const double got = out[(size_t(t) * Hq + h) * D + x];
        const double err =
            std::isfinite(got) ? std::fabs(got - w) : INFINITY;  // poison = unwritten
        e.max_abs = std::max(e.max_abs, err);
        if (std::fabs(w) >= 0.05) e.max_rel = std::max(e.max_rel, err / std::fabs(w));
        e.worst_ratio = std::max(e.worst_ratio, err / (2e-5 + 2e-5 * std::fabs(w)));
      }
    }
  }
  return e;
}

void Shape(int T, int Hq, int Hkv, int D, int reps) {
  const int G = Hq / Hkv;
  const float scale = 1.0f / std::sqrt(float(D));
  const double flops = 4.0 * Hq * D * double(T) * (T + 1) / 2.0;
  const size_t nq = size_t(T) * Hq * D, nk = size_t(T) * Hkv * D;
  float *dq, *dk, *dv, *dout;
  Check(lab::Malloc(&dq, nq * 4), "malloc");
  Check(lab::Malloc(&dk, nk * 4), "malloc");
  Check(lab::Malloc(&dv, nk * 4), "malloc");
  Check(lab::Malloc(&dout, nq * 4), "malloc");
  __nv_bfloat16 *pq, *pk, *pv;
  Check(lab::Malloc(&pq, 3 * nq * 2), "malloc");
  Check(lab::Malloc(&pk, 3 * nk * 2), "malloc");
  Check(lab::Malloc(&pv, 3 * nk * 2), "malloc");
  int32_t* cu = nullptr;
  Check(lab::Malloc(&cu, 2 * sizeof(int32_t)), "malloc");
  const int32_t whole[2] = {0, T};
  Check(cudaMemcpy(cu, whole, sizeof(whole), cudaMemcpyHostToDevice), "upload");

  AttnParams ap;
  ap.q = reinterpret_cast<const uint8_t*>(dq), ap.q_tok = int64_t(Hq) * D * 4, ap.q_head = D * 4;
  ap.out = reinterpret_cast<uint8_t*>(dout), ap.o_tok = int64_t(Hq) * D * 4, ap.o_head = D * 4;
  ap.k = reinterpret_cast<const uint8_t*>(dk), ap.v = reinterpret_cast<const uint8_t*>(dv);
  ap.k_tok = ap.v_tok = int64_t(Hkv) * D * 4, ap.k_head = ap.v_head = D * 4;
  ap.kv_dtype = TSR_DTYPE_F32;
  ap.n_kv_rows = T;
  ap.T = T, ap.Hq = Hq, ap.Hkv = Hkv, ap.D = D, ap.Dv = D, ap.S = 1;
  ap.scale = scale;
  ap.causal = true;
  ap.cu_q = cu, ap.cu_k = cu;

  TcParams tp{};
  tp.q = pq, tp.k = pk, tp.v = pv, tp.out = dout;
  tp.T = T, tp.Hq = Hq, tp.Hkv = Hkv, tp.G = G, tp.scale = scale;

  // _m: the chunk-merge order (split-decode friendly); E31 / E13: one operand pair rounded.
  const std::vector<Variant> variants = {
      {"B_nw8", 1, 1, 8, true, false},    {"B_nw4", 1, 1, 4, true, false},
      {"E33_nw8", 3, 3, 8, false, false}, {"E33_nw4", 3, 3, 4, false, false},
      {"E63_nw8", 6, 3, 8, false, false}, {"E63_nw4", 6, 3, 4, false, false},
      {"E36_nw8", 3, 6, 8, false, false}, {"E66_nw8", 6, 6, 8, false, false},
      {"E66_nw4", 6, 6, 4, false, false}, {"E31_nw8", 3, 1, 8, false, false},
      {"E13_nw8", 1, 3, 8, false, false}, {"E33m_nw8", 3, 3, 8, false, true},
      {"E33m_nw4", 3, 3, 4, false, true}, {"E66m_nw8", 6, 6, 8, false, true},
      {"E66m_nw4", 6, 6, 4, false, true},
  };
  const auto split = [&](int np_qk, int np_v) {
    SplitKernel<<<1024, 256>>>(dq, pq, int64_t(nq), np_qk);
    SplitKernel<<<512, 256>>>(dk, pk, int64_t(nk), np_qk);
    SplitKernel<<<512, 256>>>(dv, pv, int64_t(nk), np_v);
  };
  const auto run_tc = [&](const Variant& v) {
    Check(D == 64 ? LaunchTc<64>(v, tp) : LaunchTc<128>(v, tp), v.name);
  };

  // Accuracy: two input distributions. "conf" = the conformance / kernel-lab inputs (uniform
  // [-1, 1]); "wide" = q uniform [-8, 8] (logits ~ 8x: peaky rows, long dot products).
  for (int dist = 0; dist < 2; ++dist) {
    const char* dname = dist == 0 ? "conf" : "wide";
    std::mt19937 rng(11 + dist);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    const float qa = dist == 0 ? 1.0f : 8.0f;
    std::vector<float> q(nq), k(nk), v(nk), out(nq), cur;
    for (float& f : q) f = qa * u(rng);
    for (float& f : k) f = u(rng);
    for (float& f : v) f = u(rng);
    Check(cudaMemcpy(dq, q.data(), nq * 4, cudaMemcpyHostToDevice), "upload");
    Check(cudaMemcpy(dk, k.data(), nk * 4, cudaMemcpyHostToDevice), "upload");
    Check(cudaMemcpy(dv, v.data(), nk * 4, cudaMemcpyHostToDevice), "upload");
    const auto report = [&](const char* name) {
      Check(cudaDeviceSynchronize(), name);
      Check(cudaMemcpy(out.data(), dout, nq * 4, cudaMemcpyDeviceToHost), "download");
      const Err e = Compare(q, k, v, out, T, Hq, Hkv, D, scale);
      size_t bad = 0;  // non-finite anywhere: unwritten (poisoned) or broken rows
      for (float f : out) bad += !std::isfinite(f);
      // Every element against the current (f32) kernel: catches rows the samples miss.
      double all_diff = 0;
      if (cur.empty()) {
        cur = out;
      } else {
        for (size_t i = 0; i < nq; ++i)
          all_diff = std::max(all_diff, std::isfinite(out[i]) ? std::fabs(double(out[i]) - cur[i])
                                                              : double(INFINITY));
      }
      std::printf(
          "accuracy dist=%s T=%d Hq=%d Hkv=%d D=%d variant=%s max_abs=%.3e max_rel=%.3e "
          "worst_over_allowed=%.3f nonfinite=%zu all_rows_maxdiff_vs_current=%.3e\n",
          dname, T, Hq, Hkv, D, name, e.max_abs, e.max_rel, e.worst_ratio, bad, all_diff);
      std::fflush(stdout);
    };
    Check(cudaMemset(dout, 0xff, nq * 4), "poison");
    Check(LaunchAttention(ap, nullptr), "current");
    report("current");
    for (const Variant& var : variants) {
      if (var.nw == 4 && std::string(var.name).find("E") == 0 && dist == 1) continue;
      Check(cudaMemset(dout, 0xff, nq * 4), "poison");
      split(Pieces(var.ts), Pieces(var.tp));
      run_tc(var);
      report(var.name);
    }
  }

  // Bits (batch invariance with this kernel as its own decode kernel): a row must not depend on
  // where it sits in a tile (row slot, warp, how many fully masked chunks its tile runs). Calls
  // that start at query q_begin = 5 / 1001 / T - 1 (one query: a decode call of G rows) against
  // q_begin = 0, and NW = 4 against NW = 8 (other tiles), compared with memcmp.
  {
    std::vector<float> a(nq), b(nq);
    const size_t row = size_t(Hq) * D;
    for (const Variant& var : variants) {
      if (var.ts == 1 || var.tp == 1 || var.nw != 8) continue;
      split(Pieces(var.ts), Pieces(var.tp));
      Check(cudaMemset(dout, 0xff, nq * 4), "poison");
      tp.q_begin = 0;
      run_tc(var);
      Check(cudaMemcpy(a.data(), dout, nq * 4, cudaMemcpyDeviceToHost), "download");
      std::string res;
      for (int qb : {5, 1001, T - 1}) {
        Check(cudaMemset(dout, 0xff, nq * 4), "poison");
        tp.q_begin = qb;
        run_tc(var);
        Check(cudaMemcpy(b.data(), dout, nq * 4, cudaMemcpyDeviceToHost), "download");
        const bool same =
            std::memcmp(a.data() + qb * row, b.data() + qb * row, (nq - qb * row) * 4) == 0;
        res += " q_begin" + std::to_string(qb) + (same ? "=same" : "=DIFF");
      }
      tp.q_begin = 0;
      Variant v4 = var;
      v4.nw = 4;
      Check(cudaMemset(dout, 0xff, nq * 4), "poison");
      const cudaError_t e4 = D == 64 ? LaunchTc<64>(v4, tp) : LaunchTc<128>(v4, tp);
      if (e4 == cudaSuccess) {
        Check(cudaMemcpy(b.data(), dout, nq * 4, cudaMemcpyDeviceToHost), "download");
        res += std::memcmp(a.data(), b.data(), nq * 4) == 0 ? " nw4=same" : " nw4=DIFF";
      }
      std::printf("bits T=%d Hq=%d Hkv=%d D=%d variant=%s%s\n", T, Hq, Hkv, D, var.name,
                  res.c_str());
    }
    std::fflush(stdout);
  }

  // Timing: rounds interleave every variant (current, B, E...); median of rounds.
  std::vector<std::vector<double>> ms(variants.size() + 2);
  for (int round = 0; round < reps; ++round) {
    ms[0].push_back(lab::TimeMs(3, 10, [&](int) { Check(LaunchAttention(ap, nullptr), "cur"); }));
    for (size_t i = 0; i < variants.size(); ++i) {
      split(Pieces(variants[i].ts), Pieces(variants[i].tp));
      ms[i + 1].push_back(lab::TimeMs(3, 10, [&](int) { run_tc(variants[i]); }));
    }
    // The split pre-pass alone (3 pieces for Q/K/V: the E66 case; 2 pieces: E33; 1: B).
    ms[variants.size() + 1].push_back(lab::TimeMs(3, 10, [&](int) { split(3, 3); }));
  }
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const auto line = [&](const char* name, const std::vector<double>& v) {
    const double m = median(v);
    std::printf("time T=%d Hq=%d Hkv=%d D=%d variant=%s ms=%.4f TFLOP/s=%.1f min=%.4f max=%.4f\n",
                T, Hq, Hkv, D, name, m, flops / (m * 1e-3) / 1e12,
                *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()));
  };
  line("current", ms[0]);
  for (size_t i = 0; i < variants.size(); ++i) line(variants[i].name, ms[i + 1]);
  for (int np : {1, 2, 3}) {
    const double m = lab::TimeMs(3, 10, [&](int) { split(np, np); });
    std::printf("time T=%d Hq=%d Hkv=%d D=%d variant=split_qkv_np%d ms=%.4f\n", T, Hq, Hkv, D, np,
                m);
  }
  std::fflush(stdout);
  cudaFree(dq), cudaFree(dk), cudaFree(dv), cudaFree(dout), cudaFree(pq), cudaFree(pk),
      cudaFree(pv), cudaFree(cu);
}

}  // namespace
}  // namespace tessera::cuda

int main(int argc, char** argv) {
  int reps = 3;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--reps") == 0) reps = std::atoi(argv[i + 1]);
  cudaDeviceProp prop;
  tessera::cuda::lab::Check(cudaGetDeviceProperties(&prop, 0), "props");
  int clock_khz = 0;
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0);
  std::printf("device name=\"%s\" sms=%d clock_khz=%d\n", prop.name, prop.multiProcessorCount,
              clock_khz);
  tessera::cuda::Shape(2048, 32, 8, 128, reps);
  tessera::cuda::Shape(2048, 32, 8, 64, reps);
  tessera::cuda::Shape(2048, 14, 2, 64, reps);
  return 0;
}
