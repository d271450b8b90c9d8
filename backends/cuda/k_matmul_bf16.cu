// bf16-weight MATMUL on tensor cores (mma.sync m16n8k16, fp32 accumulation): a decode GEMV
// (M <= 8) and a prefill GEMM (M > 8) that produce bit-identical rows.
//
// Activations are f32 (the ABI's in0), weights bf16. x is split into `terms` bf16 pieces
// (x = hi + mid + lo exactly to ~24 bits for terms = 3; terms = 1 rounds x to bf16), and each
// piece is multiplied by the same weight fragment: every product is exact in fp32, so terms = 3
// keeps f32 accuracy at 3x the tensor work (what the conformance tolerance demands), while
// terms = 1 is the production speed/precision trade-off chosen by the `matmul_precision` option.
//
// The canonical reduction order of out[m, n] (both kernels run exactly this sequence):
//   - The weight row is the mma's A row (n), the x row its B column (m): roles never swap.
//   - K is cut into blocks of 32 (zero-padded at the end). In block b, the lane with q = lane % 4
//     owns the 8 consecutive k's [32b + 8q, 32b + 8q + 8); mma step j (0, 1) feeds it k's
//     8q + 4j + {0, 1} as A/B slots {2q, 2q+1} and 8q + 4j + {2, 3} as slots {2q+8, 2q+9}. This
//     fixed permutation of k inside the mma is what lets both kernels load 16 bytes at a time.
//   - Per step: one mma per x piece, lo piece first (terms - 1 down to 0), into one fp32
//     accumulator.
//   - Blocks are grouped in chunks of 8 (256 k's). Each chunk starts from +0; chunk sums are
//     added in chunk order (total = c0, total += c1, ...), then the bias is added.
// The GEMV spreads chunks over warps (that is where its parallelism comes from) and combines
// them in chunk order; the GEMM walks the chunks in order per tile (or, for grids much smaller
// than the card, stores each chunk's sum and combines them in chunk order: GemmSplit). Neither
// order depends on M, on the tile a row lands in, or on the grid: a row's bits are the same at
// M = 1 and M = 2048.
// Eligibility (Bf16FastPathEligible) depends only on the weight, never on M, so a given weight
// always takes this order.
#include <cuda.h>  // CUtensorMap (cu29-ring); the driver is reached through cudart
#include <cudaTypedefs.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <type_traits>
#include <vector>

#include "backends/cuda/dev_common.cuh"
#include "backends/cuda/env_knob.h"
#include "backends/cuda/fuse_math.cuh"
#include "backends/cuda/gemm_wgmma.h"
#include "backends/cuda/mma_common.cuh"
#include "backends/cuda/smem_optin.h"

namespace tessera::cuda {
namespace {

constexpr int kBlocksPerChunk = 8;  // k32 blocks in a canonical chunk
constexpr int64_t kMaxK = 98304;    // GEMV partials: 384 chunks x 512 B = 192 KiB of smem

// 8 floats -> T bf16 pieces, packed in pairs (word w holds elements 2w, 2w + 1; low half first).
template <int T>
__device__ __forceinline__ void SplitPack(const float (&x)[8], uint32_t (&o)[T][4]) {
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    float v0 = x[2 * w], v1 = x[2 * w + 1];
#pragma unroll
    for (int t = 0; t < T; ++t) {
      // One cvt.rn.bf16x2 for the pair (.x = v0 in the low half): the same roundings as two
      // __float2bfloat16_rn, fewer instructions.
      const __nv_bfloat162 h = __floats2bfloat162_rn(v0, v1);
      o[t][w] = *reinterpret_cast<const uint32_t*>(&h);
      v0 = v0 - __low2float(h);  // exact: the remainder of a rounding
      v1 = v1 - __high2float(h);
    }
  }
}

// Weights k .. k + 7 of a row (16-byte aligned when k + 8 <= K; K % 8 == 0 so else k >= K).
__device__ __forceinline__ uint4 LoadW8(const uint8_t* row, int64_t k, int64_t K, bool valid) {
  if (!valid || k >= K) return make_uint4(0, 0, 0, 0);
  return __ldcs(reinterpret_cast<const uint4*>(row + k * 2));  // streamed once: evict first
}

__device__ __forceinline__ void LoadX8(const float* xr, int64_t k, int64_t K, bool valid,
                                       float (&x)[8]) {
#pragma unroll
  for (int i = 0; i < 8; ++i) x[i] = (valid && k + i < K) ? xr[k + i] : 0.0f;
}

// Up to kGemvMaxGroup GEMVs over one x in one launch (launch.h GemvGroup). Row groups are
// numbered across the members (member j owns [g0[j], g0[j + 1])), so task = row group * C +
// chunk, counters and partials are indexed the same way for every member.
struct GemvGroupArgs {
  int n = 0;
  int64_t g0[kGemvMaxGroup + 1] = {};
  GemvOut o[kGemvMaxGroup];
  float* swiglu = nullptr;  // launch.h GemvGroup: members 0 and 1 paired, SWIGLU epilogue
  int64_t swiglu_row = 0;
  int rg2 = 0;  // GemvDown2 (PIPE kGemvPipeTwo): task t is row groups 2 t and 2 t + 1
};

// Member of global row group gr (selects, not a dynamic index into the parameter space).
__device__ __forceinline__ int MemberOf(const GemvGroupArgs& b, int64_t gr) {
  return (gr >= b.g0[1] ? 1 : 0) + (gr >= b.g0[2] ? 1 : 0);
}
template <class F>
__device__ __forceinline__ auto Pick(const GemvGroupArgs& b, int j, F f) {
  return j == 0 ? f(b.o[0]) : (j == 1 ? f(b.o[1]) : f(b.o[2]));
}

// out[m, n] = s (+ the fused residual: res_out[m, n] = res[m, n] + s, the ADD's own arithmetic).
__device__ __forceinline__ void StoreOut(const GemvOut& o, int64_t n, int m, float s) {
  o.out[m * o.out_row + n * o.out_col] = s;
  if (o.res_out != nullptr) o.res_out[m * o.res_out_row + n] = o.res[m * o.res_row + n] + s;
}

// StoreOut with res[m, n] loaded ahead (rv; plugin.cc FuseResidual: res never overlaps out, so the
// load may precede out's store): the same add, one memory round trip less after the sum.
__device__ __forceinline__ void StoreOutRes(const GemvOut& o, int64_t n, int m, float s, float rv) {
  o.out[m * o.out_row + n * o.out_col] = s;
  if (o.res_out != nullptr) o.res_out[m * o.res_out_row + n] = rv + s;
}

// SWIGLU epilogue (launch.h GemvGroup::swiglu): gate sums in part[0, n_chunks), up sums in
// part[n_chunks, 2 n_chunks); each total is the canonical chunk-order sum plus bias (the plain
// epilogue's), h = SwiGluF(g, u) as the SWIGLU kernel computes it from those stored values.
__device__ __forceinline__ void GemvStoreSwiglu(const MatmulParams& p, const GemvGroupArgs& grp,
                                                int n_chunks, const float* part, int64_t n0) {
  for (int idx = threadIdx.x; idx < 128; idx += blockDim.x) {
    const int r = idx / 8, m = idx % 8;
    if (n0 + r >= grp.o[0].N || m >= p.M) continue;
    float s[2];
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const GemvOut& o = grp.o[j];
      const float* pj = part + j * n_chunks * 128;
      float v = pj[idx];
      for (int c = 1; c < n_chunks; ++c) v += pj[c * 128 + idx];
      if (o.bias != nullptr) v += o.bias[n0 + r];
      if (o.out != nullptr) o.out[m * o.out_row + (n0 + r) * o.out_col] = v;
      s[j] = v;
    }
    grp.swiglu[m * grp.swiglu_row + n0 + r] = SwiGluF(s[0], s[1]);
  }
}

// ---- cu24-chain: ROPE q/k + KV_WRITE k/v in the norm + q/k/v epilogue (launch.h GemvRopeKv) ----

// The kernel argument of the ROPE instantiations; the others take an empty one after the same
// parameters as before.
struct GemvNoRope {};
template <bool ROPE>
using GemvRopeArg = std::conditional_t<ROPE, GemvRopeKv, GemvNoRope>;

// x0 c - x1 s of k_data.cu's RopeItem (PTX: mul, mul, sub, which ptxas may contract either way;
// GemvRopeKv::form says which one the ROPE kernel runs), and x1 c + x0 s (PTX: mul, fma.rn).
__device__ __forceinline__ float RopeLoF(float x0, float x1, float c, float s, int form) {
  if (form == 0) return __fmaf_rn(x0, c, -__fmul_rn(x1, s));
  if (form == 1) return __fmaf_rn(-x1, s, __fmul_rn(x0, c));
  return __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
}
__device__ __forceinline__ float RopeHiF(float x0, float x1, float c, float s) {
  return __fmaf_rn(x1, c, __fmul_rn(x0, s));
}

// The epilogue's operands of threads 0 .. 15 (8 words each: slot, pos, inv_freq, bias of the
// thread's two rows), copied global -> shared by cp.async when the task starts (GemvRopeIssue), so
// their latency passes under the chunk loop with no registers held; each thread reads back only
// its own words (after cp.async.wait_all).
__device__ __forceinline__ uint32_t* GemvRopeSmem() {
  __shared__ uint32_t s[16 * 8];
  return s;
}
__device__ __forceinline__ void GemvCpAsync4(uint32_t* smem, const void* gmem) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(
                   static_cast<uint32_t>(__cvta_generic_to_shared(smem))),
               "l"(gmem)
               : "memory");
}
__device__ __forceinline__ void GemvRopeIssue(const GemvRopeKv& rk, const float* bias, int jm,
                                              int64_t n0, int64_t N) {
  const int r = threadIdx.x;
  uint32_t* w = GemvRopeSmem() + r * 8;
  GemvCpAsync4(w, rk.slots);
  if (jm < 2) {
    if (r < 8) {
      const int64_t i = (n0 % rk.D) / 2 + r, nlo = n0 / rk.D * rk.D + i;
      GemvCpAsync4(w + 1, rk.pos);
      GemvCpAsync4(w + 2, rk.inv_freq + i);
      if (bias != nullptr) {
        GemvCpAsync4(w + 3, bias + nlo);
        GemvCpAsync4(w + 4, bias + nlo + rk.D / 2);
      }
    }
  } else if (bias != nullptr && n0 + r < N) {
    GemvCpAsync4(w + 3, bias + n0 + r);
  }
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}

// Before the task's chunk-sum barrier (threads 0 .. 15): the slot, the rows' biases and, for the
// q / k members' threads 0 .. 7, cos / sin of pair (n0 % D) / 2 + thread, as RopeItem forms them.
__device__ __forceinline__ void GemvRopePre(const GemvRopeKv& rk, int jm, float& c, float& s,
                                            int32_t& slot, float& b_lo, float& b_hi) {
  asm volatile("cp.async.wait_all;\n" ::: "memory");
  const uint32_t* w = GemvRopeSmem() + threadIdx.x * 8;
  slot = static_cast<int32_t>(w[0]);
  b_lo = __uint_as_float(w[3]);
  b_hi = __uint_as_float(w[4]);
  if (jm < 2 && threadIdx.x < 8) {
    const float angle =
        __fmul_rn(static_cast<float>(static_cast<int32_t>(w[1])), __uint_as_float(w[2]));
    sincosf(angle, &s, &c);
    c = __fmul_rn(c, rk.attn_scale);
    s = __fmul_rn(s, rk.attn_scale);
  }
}

// KvWriteValue of element (h, d) into cache kv (0 K, 1 V) at `slot`.
__device__ __forceinline__ void GemvKvPut(const GemvRopeKv& rk, int kv, int64_t h, int64_t d,
                                          float x, int32_t slot) {
  if (slot == -1) return;
  if (slot < 0 || slot >= rk.n_slots) {
    if (d == 0 && h == 0) SetDeviceError(rk.err, kErrIndexOutOfRange);
    return;
  }
  WriteFloat(x,
             rk.cache[kv] + (slot / rk.block_size) * rk.c_block[kv] +
                 (slot % rk.block_size) * rk.c_slot[kv] + h * rk.c_head[kv] + d * rk.c_el[kv],
             rk.dtype[kv]);
}

// A q / k pair's rotated values y0 / y1 (rows i and i + half of head `head`, half = D / 2 as the
// caller has it): into q_rot / k_rot, and k's into its cache rows.
__device__ __forceinline__ void GemvRopePairPut(const GemvRopeKv& rk, int jm, int64_t head,
                                                int64_t i, int64_t half, float y0, float y1,
                                                int32_t slot) {
  float* rot = jm == 0 ? rk.q_rot + head * rk.q_head
                       : (rk.k_rot != nullptr ? rk.k_rot + head * rk.k_head : nullptr);
  if (rot != nullptr) {
    rot[i] = y0;
    rot[i + half] = y1;
  }
  if (jm == 1) {
    GemvKvPut(rk, 0, head, i, y0, slot);
    GemvKvPut(rk, 0, head, i + half, y1, slot);
  }
}

// The epilogue of a rope task (M = 1, one task a row group): each row's total as the plain
// epilogue forms it (chunk order, then the bias), the raw output stored outside skip[jm], then
// for q / k (threads 0 .. 7: pair i, rows i and i + D / 2 of head n0 / D) the rotation into
// q_rot / k_rot and k's cache rows, for v (threads 0 .. 15) the cache rows.
__device__ __forceinline__ void GemvRopeStore(const GemvRopeKv& rk, const GemvOut& o, int jm,
                                              int64_t n0, int n_chunks, const float* part, float c,
                                              float s, int32_t slot, float b_lo, float b_hi) {
  const int r = threadIdx.x;
  const auto total = [&](int row, float b) {  // b: the row's bias (GemvRopePre)
    float v = part[row * 8];
    for (int ch = 1; ch < n_chunks; ++ch) v += part[ch * 128 + row * 8];
    if (o.bias != nullptr) v += b;
    return v;
  };
  const float* lo = jm == 0 ? rk.skip_lo[0] : (jm == 1 ? rk.skip_lo[1] : rk.skip_lo[2]);
  const float* hi = jm == 0 ? rk.skip_hi[0] : (jm == 1 ? rk.skip_hi[1] : rk.skip_hi[2]);
  const auto raw = [&](int64_t n, float v) {
    float* a = o.out + n * o.out_col;
    if (o.out != nullptr && (a < lo || a >= hi)) *a = v;
  };
  if (jm == 2) {
    const int64_t n = n0 + r;
    if (r >= 16 || n >= o.N) return;
    const float v = total(r, b_lo);
    raw(n, v);
    GemvKvPut(rk, 1, n / rk.Dv, n % rk.Dv, v, slot);
    return;
  }
  if (r >= 8) return;
  const int64_t half = rk.D / 2, head = n0 / rk.D, i = (n0 % rk.D) / 2 + r;
  const int64_t nlo = head * rk.D + i, nhi = nlo + half;
  const float x0 = total(r, b_lo), x1 = total(r + 8, b_hi);
  raw(nlo, x0);
  raw(nhi, x1);
  const float y0 = RopeLoF(x0, x1, c, s, rk.form), y1 = RopeHiF(x0, x1, c, s);
  GemvRopePairPut(rk, jm, head, i, half, y0, y1, slot);
}

// ---- GEMV prologues (launch.h GemvPrologue): the op producing x, folded into the x load ----

// rs[m] = RMS_NORM's 1 / rms of x row m (m < M): the norm kernel's reduction (fuse_math.cuh),
// the block's warps taking its kRmsWarps x M warps of 32 threads; red holds kRmsWarps x M sums.
__device__ __forceinline__ void GemvRmsScales(const MatmulParams& p, const GemvPrologue& pro,
                                              float* red, float* rs) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
  const int M = static_cast<int>(p.M);
  for (int task = warp; task < M * kRmsWarps; task += nw) {
    const int m = task / kRmsWarps, vw = task % kRmsWarps;
    const float ss = WarpSum(RmsThreadPartial(p.x + m * p.x_row, 1, p.K, vw * 32 + lane));
    if (lane == 0) red[task] = ss;
  }
  __syncthreads();
  if (warp == 0) {
    for (int m = 0; m < M; ++m) {
      const float ss = RmsCombineWarps(lane < kRmsWarps ? red[m * kRmsWarps + lane] : 0.0f);
      if (lane == 0) rs[m] = RmsInvScale(ss, p.K, pro.eps);
    }
  }
  __syncthreads();
}

// The op's output rows, computed once per block by all its threads into shared memory
// (xs[m * K + k], m < M) before the main loop, which then reads x from there with no per-lane
// math (lanes of absent tokens would idle through it: 7/8 of a warp at M = 1). rs: RMS scales.
// write_y (the first block of row group 0): also store the op's output y.
template <int PRO>
__device__ __forceinline__ void GemvStageX(const MatmulParams& p, const GemvPrologue& pro,
                                           const float* rs, bool write_y, float* xs) {
  const bool has_w = pro.weight != nullptr;
  for (int m = 0; m < p.M; ++m) {
    const float* xr = p.x + m * p.x_row;
    const float* br = PRO == kGemvProSwiglu ? pro.b + m * pro.b_row : nullptr;
    float* yr = write_y ? pro.y + m * pro.y_row : nullptr;
#pragma unroll 4
    for (int64_t k = threadIdx.x; k < p.K; k += blockDim.x) {
      float v;
      if constexpr (PRO == kGemvProRms) {
        v = RmsApply(xr[k], rs[m], has_w, has_w ? pro.weight[k] : 0.0f, pro.woff);
      } else {
        v = SwiGluF(xr[k], br[k]);
      }
      xs[m * p.K + k] = v;
      if (yr != nullptr) yr[k] = v;
    }
  }
  __syncthreads();
}

// GemvRmsScales + GemvStageX<kGemvProRms> in one memory round trip (cu-dec18), for M = 1 in a
// block of exactly kRmsThreads threads with K <= kRmsRegK: thread t is the norm's thread t, so
// the elements its reduction reads (t, t + 256, ...) are the ones it stages; it loads them and
// their norm weights at once, keeps them in registers and stages from there (the two-step form
// loads x twice and goes to memory 2 + K / 1024 times, one round trip after another, before
// the block's first weight load: ncu, 8B norm + q/k/v: 40% of the warps' stall samples). Same
// sums in the same order (RmsThreadPartial's chain over t, t + 256, ...; WarpSum; the warp sums
// by RmsCombineWarps; RmsInvScale) and the same RmsApply: the same bits.
constexpr int kRmsRegPer = 16;

// cu23-small: the register prologues' norm weight may be loaded before griddepcontrol.wait
// (kGemvPrefRmsEarly, bit 6 of the kernel's pref word beside the kGemvPref* bits below; the host
// sets it only where no node of the execute writes that weight, GemvRmsPre), x after it, so one
// round trip is left after the wait.
constexpr int kGemvPrefRmsEarly = 64;

// The norm's 1 / rms from the kRmsWarps warp sums in red[] (after the barrier that follows their
// stores), computed by every warp itself (cu23-small): RmsCombineWarps over the same red[] words
// (the same butterfly), RmsInvScale of lane 0's sum, as warp 0's lane 0 computed it into rs[0]
// before, behind a second barrier and an rs[] round trip. Same bits. (As a runtime choice beside
// the old form it grew every prologue kernel by ~2.3 KB of SASS: no knob.)
__device__ __forceinline__ float GemvRmsCombine(const MatmulParams& p, const GemvPrologue& pro,
                                                const float* red) {
  const int lane = threadIdx.x % 32;
  const float tot = RmsCombineWarps(lane < kRmsWarps ? red[lane] : 0.0f);
  return __shfl_sync(0xffffffffu, RmsInvScale(tot, p.K, pro.eps), 0);
}
constexpr int64_t kRmsRegK = int64_t{kRmsRegPer} * kRmsThreads;  // 4096

template <class Wait>
__device__ __forceinline__ void GemvRmsStageRegs(const MatmulParams& p, const GemvPrologue& pro,
                                                 float* red, bool write_y, float* xs, bool early,
                                                 Wait&& wait) {
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const bool has_w = pro.weight != nullptr;
  float xv[kRmsRegPer], wv[kRmsRegPer];
  // cu23-small: early, the norm weight (a constant) is asked for while the kernel before still
  // runs; only the wait moves (one copy of the loads: the kernel's code stays compact).
  if (!early) wait();
#pragma unroll
  for (int j = 0; j < kRmsRegPer; ++j) {
    const int64_t k = tid + int64_t{j} * kRmsThreads;
    wv[j] = has_w && k < p.K ? pro.weight[k] : 0.0f;
  }
  if (early) wait();
#pragma unroll
  for (int j = 0; j < kRmsRegPer; ++j) {
    const int64_t k = tid + int64_t{j} * kRmsThreads;
    xv[j] = k < p.K ? p.x[k] : 0.0f;
  }
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < kRmsRegPer; ++j)
    if (tid + int64_t{j} * kRmsThreads < p.K) ss = RmsAccum(ss, xv[j]);
  ss = WarpSum(ss);
  if (lane == 0) red[warp] = ss;
  __syncthreads();
  const float r = GemvRmsCombine(p, pro, red);
  float* yr = write_y ? pro.y : nullptr;
#pragma unroll
  for (int j = 0; j < kRmsRegPer; ++j) {
    const int64_t k = tid + int64_t{j} * kRmsThreads;
    if (k < p.K) {
      const float v = RmsApply(xv[j], r, has_w, wv[j], pro.woff);
      xs[k] = v;
      if (yr != nullptr) yr[k] = v;
    }
  }
  __syncthreads();
}

// The same for blocks of 128 .. 255 threads with K <= kRmsRegK / 2 (cu-dec18b: the 0.5B norm +
// q/k/v and norm + head launches, 4 warps): thread t stands for the norm's threads vt = t and
// t + blockDim (those below kRmsThreads), keeping 8 elements of each in registers. blockDim is a
// multiple of 32, so vt's warp is vt / 32 with the same lane: RmsThreadPartial's chain over vt,
// vt + 256, ..., WarpSum over the norm's warp, RmsCombineWarps, RmsInvScale and RmsApply as in
// GemvRmsScales + GemvStageX: the same bits. (A separate function: folding it into the one above
// as a template added spills to the 64-register half-chunk kernel.)
template <class Wait>
__device__ __forceinline__ void GemvRmsStageRegs2(const MatmulParams& p, const GemvPrologue& pro,
                                                  float* red, bool write_y, float* xs, bool early,
                                                  Wait&& wait) {
  constexpr int kV = 2, kPer = kRmsRegPer / kV;
  const int tid = threadIdx.x, lane = tid % 32, nb = blockDim.x;
  const bool has_w = pro.weight != nullptr;
  float xv[kV][kPer], wv[kV][kPer];
  if (!early) wait();  // cu23-small: as in GemvRmsStageRegs
#pragma unroll
  for (int i = 0; i < kV; ++i) {
    const int vt = tid + i * nb;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int64_t k = vt + int64_t{j} * kRmsThreads;
      wv[i][j] = has_w && vt < kRmsThreads && k < p.K ? pro.weight[k] : 0.0f;
    }
  }
  if (early) wait();
#pragma unroll
  for (int i = 0; i < kV; ++i) {
    const int vt = tid + i * nb;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int64_t k = vt + int64_t{j} * kRmsThreads;
      xv[i][j] = vt < kRmsThreads && k < p.K ? p.x[k] : 0.0f;
    }
  }
#pragma unroll
  for (int i = 0; i < kV; ++i) {
    const int vt = tid + i * nb;
    if (vt >= kRmsThreads) continue;  // whole warps (nb % 32 == 0)
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < kPer; ++j)
      if (vt + int64_t{j} * kRmsThreads < p.K) ss = RmsAccum(ss, xv[i][j]);
    ss = WarpSum(ss);
    if (lane == 0) red[vt / 32] = ss;
  }
  __syncthreads();
  const float r = GemvRmsCombine(p, pro, red);
  float* yr = write_y ? pro.y : nullptr;
#pragma unroll
  for (int i = 0; i < kV; ++i) {
    const int vt = tid + i * nb;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int64_t k = vt + int64_t{j} * kRmsThreads;
      if (vt < kRmsThreads && k < p.K) {
        const float v = RmsApply(xv[i][j], r, has_w, wv[i][j], pro.woff);
        xs[k] = v;
        if (yr != nullptr) yr[k] = v;
      }
    }
  }
  __syncthreads();
}

// x[k .. k + 7] of a staged row (K % 8 == 0 and k % 8 == 0: all 8 in range when k < K).
__device__ __forceinline__ void LoadX8Staged(const float* xs_row, int64_t k, int64_t K, bool valid,
                                             float (&x)[8]) {
  float4 a = make_float4(0, 0, 0, 0), b = a;
  if (valid && k < K) {
    a = *reinterpret_cast<const float4*>(xs_row + k);
    b = *reinterpret_cast<const float4*>(xs_row + k + 4);
  }
  x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w, x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
}

// x[k .. k + 7] of row xr (global x, or the prologue op's output staged in shared memory when
// PRO != kGemvProNone) as its T bf16 pieces, packed for the mma by SplitPack.
template <int T, int PRO>
__device__ __forceinline__ void LoadSplitX8(const float* xr, int64_t k, int64_t K, bool valid,
                                            uint32_t (&bx)[T][4]) {
  float xv[8];
  if constexpr (PRO == kGemvProNone) {
    LoadX8(xr, k, K, valid, xv);
  } else {
    LoadX8Staged(xr, k, K, valid, xv);
  }
  SplitPack<T>(xv, bx);
}

// XP (x pre-split): uint4 row stride of the staged pieces, padded by 64 bytes for M > 1 so the
// rows of a warp's 8 tokens fall in different banks.
__host__ __device__ __forceinline__ int64_t GemvXpStride(int64_t M, int64_t K) {
  return (K + 31) / 32 * 4 + (M > 1 ? 4 : 0);
}

// x split into its T bf16 pieces once per block, before any row group (XP): xp[(t * M + m) *
// stride + 4 kb + q] holds piece t of x[m][32 kb + 8 q, + 8) as the 4 words SplitPack makes of
// the very 8 floats GemvTask's loop would load (zeros past K), so its mma operands, hence the
// bits, are those of the per-row-group split; the loop is then loads + mma.
// [ku_lo, ku_hi): the 8-k units to stage (cu21-gemv: a split-K block's own chunks only, 32 units
// a chunk, at their usual places); default all of them.
template <int T, int PRO>
__device__ __forceinline__ void GemvSplitX(const MatmulParams& p, const float* xs, uint4* xp,
                                           int64_t ku_lo = 0, int64_t ku_hi = int64_t{1} << 62) {
  const int64_t per_row = (p.K + 31) / 32 * 4, stride = GemvXpStride(p.M, p.K);
  const int64_t span = std::max<int64_t>(0, std::min(ku_hi, per_row) - ku_lo);
  const int64_t units = p.M * span;
  for (int64_t u = threadIdx.x; u < units; u += blockDim.x) {
    const int64_t m = u / span, ku = ku_lo + u % span;
    uint32_t bx[T][4];
    LoadSplitX8<T, PRO>(PRO == kGemvProNone ? p.x + m * p.x_row : xs + m * p.K, ku * 8, p.K, true,
                        bx);
#pragma unroll
    for (int t = 0; t < T; ++t)
      xp[(t * p.M + m) * stride + ku] = make_uint4(bx[t][0], bx[t][1], bx[t][2], bx[t][3]);
  }
  __syncthreads();
}

// ---- GEMV: 16 weight rows a block, chunks spread over the block's warps ----

// Weights k0 + 32 b .. + 7 of a row for b < N (k0 = a unit's first k of this lane): one base
// pointer and immediate offsets, 32-bit k (K <= kMaxK), so the loads issued between mma steps
// add few live registers; the same values as LoadW8.
template <int N>
__device__ __forceinline__ void LoadUnit(const uint8_t* w0, const uint8_t* w1, bool v0, bool v1,
                                         int k0, int K, uint4 (&wa)[N][2], int b) {
  const uint4 z = make_uint4(0, 0, 0, 0);
  const bool in = k0 + 32 * b < K;
  wa[b][0] = v0 && in ? __ldcs(reinterpret_cast<const uint4*>(w0 + 2 * k0) + 4 * b) : z;
  wa[b][1] = v1 && in ? __ldcs(reinterpret_cast<const uint4*>(w1 + 2 * k0) + 4 * b) : z;
}

// cu23-b8: a warp's (half) chunk of weights in the mma layout, loaded along whole 128-byte lines
// (GemvTask's LINES; GemvLinesOn says where). The plain loads (LoadW8) take 8 rows x 64 bytes an
// instruction: each 128-byte line is asked for in two halves by two instructions. On the H200
// (4.2 TB/s copy) that load pattern alone streams the 8B down / gate/up / head bytes at 0.58-0.68
// of copy, a read of whole lines (one row's 512 bytes an instruction) at 0.87-0.98 (lab/NOTES.md,
// cu23-b8; this path's own pattern, ReadLines4Kernel, not measured yet). Here k32 blocks 2s and
// 2s + 1 (one line of each row) come in 4 instructions of 4 rows x 128 bytes: lane (g, q) loads
// row slot (g & 3) + 4 j + 8 e of block 2s + (g >> 2), 16 bytes at 16 q, into wa[2s + j][e].
// Lanes g and g ^ 4 (lane ^ 16) then hold each other's other block: each sends the block it does
// not own (wa[2s + 1 - hi]) and puts what comes back in its place. After that every lane holds
// exactly LoadW8's words (row slots g and g + 8 of each block, zero for rows >= N and k >= K):
// the mma operands, their order and so the bits are the plain loop's. Warp-uniform (the shuffles
// need every lane): GemvTask's chunk loop is.
template <int NB>
__device__ __forceinline__ void GemvLoadLines(const uint8_t* w, int64_t wrb, int64_t n0, int64_t N,
                                              int64_t kb0, int64_t K, uint4 (&wa)[NB][2]) {
  static_assert(NB % 2 == 0, "whole lines: k32 blocks in pairs");
  const int lane = threadIdx.x % 32, g = lane / 4, q = lane % 4, hi = g >> 2;
  const int64_t r = n0 + (g & 3);
  // Row slot (g & 3) + dr is valid for dr < rows (may be <= 0); k of segment s: k0 + 64 s.
  const int rows = static_cast<int>(N - r < 16 ? N - r : 16);
  const int64_t k0 = (kb0 + hi) * 32 + 8 * q;
  const int klim = static_cast<int>(K - k0 < 1024 ? K - k0 : 1024);  // k0 + 64 s < K: 64 s < klim
  const uint8_t* base = w + r * wrb + k0 * 2;
  const uint32_t w4 = static_cast<uint32_t>(wrb) * 4;  // 4 rows (K <= kMaxK: 32 bits)
  const uint4 z = make_uint4(0, 0, 0, 0);
#pragma unroll
  for (int s = 0; s < NB / 2; ++s) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int dr = 4 * j + 8 * e;
        const uint8_t* a = base + (j + 2 * e) * w4 + 128 * s;
        wa[2 * s + j][e] =
            dr < rows && 64 * s < klim ? __ldcs(reinterpret_cast<const uint4*>(a)) : z;
      }
    }
  }
#pragma unroll
  for (int s = 0; s < NB / 2; ++s) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const uint4 out = hi ? wa[2 * s][e] : wa[2 * s + 1][e];
      uint4 in;
      in.x = __shfl_xor_sync(0xffffffffu, out.x, 16);
      in.y = __shfl_xor_sync(0xffffffffu, out.y, 16);
      in.z = __shfl_xor_sync(0xffffffffu, out.z, 16);
      in.w = __shfl_xor_sync(0xffffffffu, out.w, 16);
      if (hi) {
        wa[2 * s][e] = in;
      } else {
        wa[2 * s + 1][e] = in;
      }
    }
  }
}

// ---- Weights through a shared-memory ring filled by TMA bulk copies (PIPE kGemvPipeTma) ----
//
// cuda-gemv, TESSERA_CUDA_GEMV_TMA. The half-chunk kernel keeps a warp's weight loads in
// registers, so at 64 registers a warp has one half chunk in flight and the memory pipe drains
// while it multiplies (lab/NOTES.md "Rolled weight loads"). Here each warp streams its units (a
// half or a whole chunk of its 16 rows: 16 x 256 or 16 x 512 bytes) through its own ring of
// `stages` slots in shared memory: lanes 0..15 each issue one 1-D bulk copy of their row
// (cp.async.bulk, completion counted in bytes on the slot's mbarrier), `stages` units ahead of
// the unit the warp multiplies. The loads hold no registers, so stages x 4 - 8 KiB a warp stay
// in flight. The warp's chunks, the mma sequence, the chunk sums and their combine are the plain
// loop's: only where the weight words come from changes, so the bits are the same.
// GemvBf16Kernel's PIPE (0: plain loop); kGemvPipeTwo: the plain loop over two row groups a task
// (GemvDown2; its own instantiation, so the other launches keep their code).
constexpr int kGemvPipe8 = 3, kGemvPipeTma = 4, kGemvPipeTwo = 5;
constexpr int kTmaMaxWarps = 8, kTmaMaxStages = 8;
// Stage rows padded by 64 bytes: the rows g, g + 1 a quarter warp reads fall in other banks.
constexpr int kTmaRowPad = 64;
__host__ __device__ constexpr int TmaRowStride(bool half) {
  return (half ? 256 : 512) + kTmaRowPad;
}
__host__ __device__ constexpr int TmaStageBytes(bool half) {
  return 16 * TmaRowStride(half);
}

struct GemvTmaState {
  uint64_t bar[kTmaMaxWarps * kTmaMaxStages];  // warp w's slot s: bar[w * kTmaMaxStages + s]
  uint32_t seq[kTmaMaxWarps];                  // units warp w has consumed (slot phases)
  uint32_t stages, ring_off;                   // slots a warp; ring offset in dynamic smem
};
__device__ __forceinline__ GemvTmaState& TmaState() {
  __shared__ GemvTmaState st;
  return st;
}
__device__ __forceinline__ uint32_t SmemU32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Once per block, before any task: each warp sets up its own slots' barriers (count 1: the
// issuing lane's arrive.expect_tx; the bytes complete the phase).
// (The TMA ring's PTX exists from sm_90 on: on older targets these two functions trap, so a
// build for sm_80 / 86 / 89 compiles; no launch rule picks the ring there.)
__device__ __forceinline__ void GemvTmaInit(int stages, int ring_off) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ < 900
  (void)stages, (void)ring_off;
  __trap();
#else
  GemvTmaState& st = TmaState();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane < stages) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(
                     SmemU32(&st.bar[warp * kTmaMaxStages + lane]))
                 : "memory");
  }
  if (lane == 0) st.seq[warp] = 0;
  if (threadIdx.x == 0) st.stages = stages, st.ring_off = ring_off;
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  __syncthreads();
#endif
}

// x and the mma of one k32 block given its weight words (the plain loop's body, same order).
template <int T, int PRO, bool XP>
__device__ __forceinline__ void GemvMmaBlock(const MatmulParams& p, float (&acc)[4],
                                             const uint4& wa0, const uint4& wa1, const float* xr,
                                             const uint4* xpr, int64_t xps, int64_t kb, int q,
                                             bool tok_ok) {
  if constexpr (XP) {
    const uint2* x2 = reinterpret_cast<const uint2*>(xpr + kb * 4 + q);
#pragma unroll
    for (int j = 0; j < 2; ++j) {
#pragma unroll
      for (int t = T - 1; t >= 0; --t) {
        const uint2 v = tok_ok ? x2[2 * t * p.M * xps + j] : make_uint2(0u, 0u);
        Mma(acc, Word(wa0, 2 * j), Word(wa1, 2 * j), Word(wa0, 2 * j + 1), Word(wa1, 2 * j + 1),
            v.x, v.y);
      }
    }
  } else {
    uint32_t bx[T][4];
    LoadSplitX8<T, PRO>(xr, kb * 32 + 8 * q, p.K, tok_ok, bx);
#pragma unroll
    for (int j = 0; j < 2; ++j) {
#pragma unroll
      for (int t = T - 1; t >= 0; --t) {
        Mma(acc, Word(wa0, 2 * j), Word(wa1, 2 * j), Word(wa0, 2 * j + 1), Word(wa1, 2 * j + 1),
            bx[t][2 * j], bx[t][2 * j + 1]);
      }
    }
  }
}

// The warp's chunks c_lo + warp, + nw, ... (< c_hi) of rows [n0, n0 + 16) of w (N rows of wrb
// bytes), chunk sums into part as the plain loop stores them. ring: the block's ring (dynamic
// shared memory), this warp's slots at warp x stages.
template <int T, bool HALF, int PRO, bool XP>
__device__ __forceinline__ void GemvChunksTma(const MatmulParams& p, const uint8_t* w, int64_t wrb,
                                              int64_t n0, int64_t N, bool v0, bool v1, bool tok_ok,
                                              const float* xr, const uint4* xpr, int64_t xps,
                                              int c_lo, int c_hi, float* part) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ < 900
  (void)p, (void)w, (void)wrb, (void)n0, (void)N, (void)v0, (void)v1, (void)tok_ok, (void)xr;
  (void)xpr, (void)xps, (void)c_lo, (void)c_hi, (void)part;
  __trap();
#else
  constexpr int kLoad = HALF ? kBlocksPerChunk / 2 : kBlocksPerChunk;  // k32 blocks a unit
  constexpr int kUnits = kBlocksPerChunk / kLoad;                      // units a chunk
  constexpr int kRow = TmaRowStride(HALF), kStage = TmaStageBytes(HALF);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
  const int g = lane / 4, q = lane % 4;
  const int c0 = c_lo + warp;
  const int n_units = c0 < c_hi ? ((c_hi - 1 - c0) / nw + 1) * kUnits : 0;
  if (n_units == 0) return;
  GemvTmaState& st = TmaState();
  const int stages = static_cast<int>(st.stages);
  const uint32_t seq = st.seq[warp];
  uint8_t* ring = reinterpret_cast<uint8_t*>(part) + st.ring_off + warp * stages * kStage;
  const uint32_t ring_s = SmemU32(ring);
  const uint32_t bar0 = SmemU32(&st.bar[warp * kTmaMaxStages]);
  const int rows = static_cast<int>(N - n0 < 16 ? N - n0 : 16);
  const uint8_t* src = w + (n0 + (lane < rows ? lane : 0)) * wrb;  // lane r < rows: row n0 + r
  const int64_t row_bytes = p.K * 2;
  uint64_t pol;  // streamed once: evict first, like the plain loop's ld.global.cs
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(pol));
  // Unit i of the warp: chunk c0 + (i / kUnits) nw, k32 blocks from (i % kUnits) kLoad.
  auto issue = [&](int i) {
    const int c = c0 + (i / kUnits) * nw, h = i % kUnits;
    const int s = static_cast<int>((seq + i) % stages);
    const int64_t off = int64_t(c) * (kBlocksPerChunk * 64) + h * (kLoad * 64);
    const int64_t left = row_bytes - off;  // > 0 for h = 0; whole 16-byte pieces (K % 8 == 0)
    const uint32_t bytes =
        static_cast<uint32_t>(left <= 0 ? 0 : (left < kLoad * 64 ? left : kLoad * 64));
    const uint32_t bar = bar0 + s * 8;
    if (lane == 0) {
      asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar),
                   "r"(bytes * rows)
                   : "memory");
    }
    __syncwarp();
    if (lane < rows && bytes > 0) {
      asm volatile(
          "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint"
          " [%0], [%1], %2, [%3], %4;\n" ::"r"(ring_s + s * kStage + lane * kRow),
          "l"(src + off), "r"(bytes), "r"(bar), "l"(pol)
          : "memory");
    }
  };
  const int pre = n_units < stages ? n_units : stages;
  for (int i = 0; i < pre; ++i) issue(i);
  const int K = static_cast<int>(p.K), nkb = (K + 31) / 32;
  const uint4 z = make_uint4(0, 0, 0, 0);
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll 1
  for (int i = 0; i < n_units; ++i) {
    const int c = c0 + (i / kUnits) * nw, h = i % kUnits;
    const int s = static_cast<int>((seq + i) % stages);
    MbarWait(bar0 + s * 8, ((seq + i) / stages) & 1);
    const uint8_t* sw = ring + s * kStage;
#pragma unroll
    for (int b = 0; b < kLoad; ++b) {
      const int kb = c * kBlocksPerChunk + h * kLoad + b;
      if (kb >= nkb) break;                 // uniform across the warp
      const bool in = kb * 32 + 8 * q < K;  // the plain loop's LoadW8 zeros past K
      const uint4 wa0 =
          v0 && in ? *reinterpret_cast<const uint4*>(sw + g * kRow + b * 64 + 16 * q) : z;
      const uint4 wa1 =
          v1 && in ? *reinterpret_cast<const uint4*>(sw + (g + 8) * kRow + b * 64 + 16 * q) : z;
      GemvMmaBlock<T, PRO, XP>(p, acc, wa0, wa1, xr, xpr, xps, kb, q, tok_ok);
    }
    __syncwarp();  // every lane has read slot s before it is refilled
    if (i + stages < n_units) issue(i + stages);
    if (h == kUnits - 1) {  // chunk c done: its sum, and the next chunk starts from +0
      float* pc = part + (c - c_lo) * 128;
      pc[g * 8 + 2 * q] = acc[0];
      pc[g * 8 + 2 * q + 1] = acc[1];
      pc[(g + 8) * 8 + 2 * q] = acc[2];
      pc[(g + 8) * 8 + 2 * q + 1] = acc[3];
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[e] = 0.0f;
    }
  }
  __syncwarp();
  if (lane == 0) st.seq[warp] = seq + n_units;
#endif
}

// `splits` blocks per 16-row group (of any member of the group launch), each taking a contiguous
// range of the chunks over its warps. HALF loads a chunk in two halves of 4 k32 blocks (32
// registers of loads instead of 64): two blocks fit an SM, so a 256-group weight runs in one wave
// instead of two. Same mma sequence.
// Split-K (splits > 1, for grids with fewer row groups than the card has room for): each block
// stores its chunk sums to gpart ([row group][n_chunks][16 rows][8 tokens]); the block that
// finishes a row group last (one atomic counter per row group, reset by that block) adds the
// n_chunks sums in chunk order, then the bias: the same order as splits == 1, so the same bits.
// PRO (launch.h kGemvPro*): the op folded into the x load (GemvStageX: x staged in shared memory
// after the block's chunk sums; the first block of row group 0 also writes the op's output).
// One task of the block kernel: split `task % splits` of row group `task / splits`. part: the
// block's chunk sums (shared); xs: the staged x rows (PRO only); last_block: shared flag.
template <int T, bool HALF, int PRO, bool XP, int PIPE = 0, bool LINES = false, bool ROPE = false>
__device__ __forceinline__ void GemvTask(const MatmulParams& p, const GemvGroupArgs& grp,
                                         int n_chunks, int splits, float* gpart, unsigned* counters,
                                         const float* xs, const uint4* xp, float* part,
                                         bool& last_block, int64_t task,
                                         const GemvRopeArg<ROPE>& rk) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
  const int g = lane / 4, q = lane % 4;
  // GemvDown2 (kGemvPipeTwo: whole chunks, no prologue, one member, splits == 1): the task takes
  // row groups 2 task and 2 task + 1, the second's chunks as chunks [n_chunks, 2 n_chunks) like
  // the SWIGLU pairing's member 1, each with the unchanged per-chunk code.
  constexpr bool two = PIPE == kGemvPipeTwo;
  const int64_t gr = two ? 2 * task : task / splits;
  const int split = static_cast<int>(task % splits);
  const int c_lo = split * n_chunks / splits, c_hi = (split + 1) * n_chunks / splits;
  const int jm = MemberOf(grp, gr);
  const int64_t n0 = (gr - (jm == 0 ? grp.g0[0] : (jm == 1 ? grp.g0[1] : grp.g0[2]))) * 16;
  const int64_t N = Pick(grp, jm, [](const GemvOut& x) { return x.N; });
  const int64_t wrb = Pick(grp, jm, [](const GemvOut& x) { return x.w_row_bytes; });
  const uint8_t* w = Pick(grp, jm, [](const GemvOut& x) { return x.w; });
  // cu24-chain: a q / k rope task takes rows d0 + g and d0 + D / 2 + g of head n0 / D, d0 =
  // (n0 % D) / 2 (GemvRopeKv): both rows of each rotate_half pair it sums.
  int64_t nlo = n0 + g, nhi = n0 + g + 8;
  if constexpr (ROPE) {
    if (jm < 2) {
      nlo = n0 / rk.D * rk.D + (n0 % rk.D) / 2 + g;
      nhi = nlo + rk.D / 2;
    }
  }
  const bool v0 = nlo < N, v1 = nhi < N;
  const uint8_t* w0 = w + (v0 ? nlo * wrb : 0);
  const uint8_t* w1 = w + (v1 ? nhi * wrb : 0);
  if constexpr (ROPE) {
    if (threadIdx.x < 16)
      GemvRopeIssue(rk, Pick(grp, jm, [](const GemvOut& x) { return x.bias; }), jm, n0, N);
  }
  const bool tok_ok = g < p.M;
  // SWIGLU epilogue (grp.swiglu, splits == 1): the task also computes the same 16 rows of member
  // 1 (the up projection) as chunks [n_chunks, 2 n_chunks), each with the unchanged per-chunk code.
  const bool pair = grp.swiglu != nullptr;
  const float* xr =
      PRO == kGemvProNone ? p.x + (tok_ok ? g : 0) * p.x_row : xs + (tok_ok ? g : 0) * p.K;
  const int64_t nkb = (p.K + 31) / 32;
  const int64_t xps = GemvXpStride(p.M, p.K);
  const uint4* xpr = XP ? xp + (tok_ok ? g : 0) * xps : nullptr;  // this lane's token, piece 0
  constexpr int kLoad = HALF ? kBlocksPerChunk / 2 : kBlocksPerChunk;
  constexpr bool kTma = PIPE == kGemvPipeTma;  // never paired (GemvXp)
  if constexpr (kTma)
    GemvChunksTma<T, HALF, PRO, XP>(p, w, wrb, n0, N, v0, v1, tok_ok, xr, xpr, xps, c_lo, c_hi,
                                    part);
  const int vc_hi = pair || two ? 2 * n_chunks : c_hi;  // pair, two: splits == 1, so c_lo = 0
  for (int vc = c_lo + warp; !kTma && vc < vc_hi; vc += nw) {
    // pair: member 1's chunk vc - n_chunks; two: that chunk of row group gr + 1.
    const bool up = vc >= n_chunks;
    const int c = up ? vc - n_chunks : vc;
    // Member 1's rows from the kernel parameters, not two more live pointers (the half-chunk
    // kernel has 64 registers).
    const uint8_t* r0 = w0;
    const uint8_t* r1 = w1;
    bool u0 = v0, u1 = v1;
    if (up && two) {
      u0 = n0 + 16 + g < N, u1 = n0 + 24 + g < N;
      r0 = w + (u0 ? (n0 + 16 + g) * wrb : 0);
      r1 = w + (u1 ? (n0 + 24 + g) * wrb : 0);
    } else if (up) {
      const int64_t wrb1 = grp.o[1].w_row_bytes;
      r0 = grp.o[1].w + (v0 ? (n0 + g) * wrb1 : 0);
      r1 = grp.o[1].w + (v1 ? (n0 + g + 8) * wrb1 : 0);
    }
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll 1
    for (int h = 0; h < kBlocksPerChunk; h += kLoad) {
      uint4 wa[kLoad][2];
      if constexpr (LINES) {
        // cu23-b8 (GemvLinesOn): the same words in every lane, loaded along whole lines.
        const uint8_t* lw = w;
        int64_t lwrb = wrb, ln0 = n0;
        if (up && two) {
          ln0 = n0 + 16;
        } else if (up) {
          lw = grp.o[1].w, lwrb = grp.o[1].w_row_bytes;
        }
        GemvLoadLines<kLoad>(lw, lwrb, ln0, N, int64_t(c) * kBlocksPerChunk + h, p.K, wa);
        (void)r0, (void)r1, (void)u0, (void)u1;
      } else {
#pragma unroll
        for (int b = 0; b < kLoad; ++b) {  // every load of the (half) chunk in flight at once
          const int64_t k = (int64_t(c) * kBlocksPerChunk + h + b) * 32 + 8 * q;
          wa[b][0] = LoadW8(r0, k, p.K, u0);
          wa[b][1] = LoadW8(r1, k, p.K, u1);
        }
      }
#pragma unroll
      for (int b = 0; b < kLoad; ++b) {
        const int64_t kb = int64_t(c) * kBlocksPerChunk + h + b;
        if (kb >= nkb) break;  // uniform across the warp
        if constexpr (XP) {
          // The words of mma step j only (8-byte loads): fewer live registers for HALF's 64.
          const uint2* x2 = reinterpret_cast<const uint2*>(xpr + kb * 4 + q);
#pragma unroll
          for (int j = 0; j < 2; ++j) {
#pragma unroll
            for (int t = T - 1; t >= 0; --t) {
              const uint2 v = tok_ok ? x2[2 * t * p.M * xps + j] : make_uint2(0u, 0u);
              Mma(acc, Word(wa[b][0], 2 * j), Word(wa[b][1], 2 * j), Word(wa[b][0], 2 * j + 1),
                  Word(wa[b][1], 2 * j + 1), v.x, v.y);
            }
          }
          continue;
        }
        uint32_t bx[T][4];
        LoadSplitX8<T, PRO>(xr, kb * 32 + 8 * q, p.K, tok_ok, bx);
#pragma unroll
        for (int j = 0; j < 2; ++j) {
#pragma unroll
          for (int t = T - 1; t >= 0; --t) {
            Mma(acc, Word(wa[b][0], 2 * j), Word(wa[b][1], 2 * j), Word(wa[b][0], 2 * j + 1),
                Word(wa[b][1], 2 * j + 1), bx[t][2 * j], bx[t][2 * j + 1]);
          }
        }
      }
    }
    float* pc = part + (vc - c_lo) * 128;
    pc[g * 8 + 2 * q] = acc[0];
    pc[g * 8 + 2 * q + 1] = acc[1];
    pc[(g + 8) * 8 + 2 * q] = acc[2];
    pc[(g + 8) * 8 + 2 * q + 1] = acc[3];
  }
  // cu24-chain: slot, biases (GemvRopeIssue's copies) and cos / sin while the other warps finish.
  float rope_c = 0.0f, rope_s = 0.0f, rope_blo = 0.0f, rope_bhi = 0.0f;
  int32_t rope_slot = -1;
  if constexpr (ROPE) {
    if (threadIdx.x < 16) GemvRopePre(rk, jm, rope_c, rope_s, rope_slot, rope_blo, rope_bhi);
  }
  __syncthreads();
  const GemvOut o = Pick(grp, jm, [](const GemvOut& x) { return x; });
  if constexpr (ROPE) {  // the host's GemvRopeKvConfig: one task a row group, M = 1
    GemvRopeStore(rk, o, jm, n0, n_chunks, part, rope_c, rope_s, rope_slot, rope_blo, rope_bhi);
    return;
  }
  if (pair) {
    GemvStoreSwiglu(p, grp, n_chunks, part, n0);
    return;
  }
  if (two) {  // each row group's chunk sums in chunk order, as splits == 1 below
    for (int idx = threadIdx.x; idx < 256; idx += blockDim.x) {
      const int h = idx / 128, i = idx % 128, r = 16 * h + i / 8, m = i % 8;
      if (n0 + r >= o.N || m >= p.M) continue;
      const float* ph = part + h * n_chunks * 128;
      float s = ph[i];
      for (int c = 1; c < n_chunks; ++c) s += ph[c * 128 + i];
      if (o.bias != nullptr) s += o.bias[n0 + r];
      StoreOut(o, n0 + r, m, s);
    }
    return;
  }
  if (splits == 1) {
    for (int idx = threadIdx.x; idx < 128; idx += blockDim.x) {
      const int r = idx / 8, m = idx % 8;
      if (n0 + r >= o.N || m >= p.M) continue;
      // Whole-chunk kernels: the residual loaded ahead of the sum (half-chunk ones as before).
      const float rv = !HALF && o.res_out != nullptr ? o.res[m * o.res_row + n0 + r] : 0.0f;
      float s = part[idx];
      for (int c = 1; c < n_chunks; ++c) s += part[c * 128 + idx];
      if (o.bias != nullptr) s += o.bias[n0 + r];
      if constexpr (HALF)
        StoreOut(o, n0 + r, m, s);
      else
        StoreOutRes(o, n0 + r, m, s, rv);
    }
    return;
  }
  float* gp = gpart + gr * n_chunks * 128;
  for (int idx = threadIdx.x; idx < (c_hi - c_lo) * 128; idx += blockDim.x)
    __stcg(gp + c_lo * 128 + idx, part[idx]);
  __syncthreads();
  if (threadIdx.x == 0) {
    // cu21-gemv: one acq_rel atomic instead of fence.sc + atomic (+ fence.sc in the last block).
    // Release (cumulative over the block's stores the barrier ordered before it): this block's
    // sums are visible before its count; acquire: the last block sees every block's sums, and
    // the barrier below orders its threads' loads after that.
    unsigned prev;
    asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;\n"
                 : "=r"(prev)
                 : "l"(counters + gr)
                 : "memory");
    last_block = prev == unsigned(splits - 1);
    if (last_block) counters[gr] = 0;  // ready for the next launch (stream-ordered)
  }
  __syncthreads();
  if (!last_block) return;
  // Whole-chunk kernels: every chunk sum (up to 32) and the residual in one L2 round trip; the
  // adds stay in chunk order, starting from chunk 0's sum itself.
  constexpr int kBatch = HALF ? 8 : 32;
  for (int idx = threadIdx.x; idx < 128; idx += blockDim.x) {
    const int r = idx / 8, m = idx % 8;
    if (n0 + r >= o.N || m >= p.M) continue;
    const float rv = o.res_out != nullptr ? o.res[m * o.res_row + n0 + r] : 0.0f;
    float s = 0.0f;
    for (int c0 = 0; c0 < n_chunks; c0 += kBatch) {
      float v[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u)
        v[u] = c0 + u < n_chunks ? __ldcg(gp + (c0 + u) * 128 + idx) : 0.0f;
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        if (c0 + u < n_chunks) s = c0 + u == 0 ? v[u] : s + v[u];
      }
    }
    if (o.bias != nullptr) s += o.bias[n0 + r];
    StoreOutRes(o, n0 + r, m, s, rv);
  }
}

constexpr int kGemvPrefPlain = 1, kGemvPrefPro = 2, kGemvPrefNext = 4, kGemvPrefEvictFirst = 8;
// Not a prefetch: the RMS_NORM prologue in one round trip where it fits (GemvRmsStageRegs).
constexpr int kGemvPrefRmsRegs = 16;
// ... also for blocks of 128 .. 255 threads (GemvRmsStageRegs2, cu-dec18b).
constexpr int kGemvPrefRmsRegs2 = 32;
#ifdef TESSERA_GEMV_STAMPS
// Lab build only (CMake -DTESSERA_CUDA_GEMV_STAMPS=ON; never in a release plugin): thread 0 of
// every GemvBf16Kernel block records %globaltimer at entry, after griddepcontrol.wait, after the
// prologue / x pre-split and after its last task into a ring of kGemvStampCap records in device
// memory (SetupGemvStamps at device open when TESSERA_GEMV_STAMP_OUT names a file; DumpGemvStamps
// at device close writes the ring there; lab/stamps22.py reads it). The ring slot is claimed at
// entry, so the atomic's latency is not on the block's path.
struct GemvStamp {
  unsigned long long t[4];
  unsigned long long seq;  // 1 + the claim order
  unsigned k, n, wlo, block, grid, sm;
};
constexpr unsigned long long kGemvStampCap = 1ull << 20;
__device__ GemvStamp* g_gemv_stamps = nullptr;
__device__ unsigned long long g_gemv_stamp_seq = 0;
GemvStamp* g_stamp_host_ptr = nullptr;  // the ring (host's copy of g_gemv_stamps)
__device__ __forceinline__ unsigned long long GemvTimer() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
#endif

// Early weight fetch (TESSERA_CUDA_GEMV_PREF, cuda-dec): the weight rows of the block's first
// task, chunks [c_lo, c_lo + rounds x warps) of its 16 rows (what its warps read first; all of
// [c_lo, c_hi) for rounds <= 0), are asked into L2 with one bulk prefetch a row (sm_90
// cp.async.bulk.prefetch: a hint, no registers, no completion to wait for) before
// griddepcontrol.wait. With PDL the block is often resident while the previous kernel still
// runs (attention before o, SwiGLU before down), so its weights stream in during that time; an
// L2 prefetch cannot return stale data (L2 is where every SM's writes land), so it is safe even
// where an earlier kernel wrote the weight. Arithmetic untouched: same bits.
__device__ __forceinline__ void GemvPrefetchTask(const MatmulParams& p, const GemvGroupArgs& grp,
                                                 int n_chunks, int splits, int64_t task, int rounds,
                                                 bool evict_first, bool two = false) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const int r = threadIdx.x;
  if (r >= 16) return;
  // two (GemvDown2): the warps' first round is all in the task's first row group, 2 task.
  const int64_t gr = two ? 2 * task : task / splits;
  const int split = two ? 0 : static_cast<int>(task % splits);
  const int c_lo = split * n_chunks / splits;
  int c_hi = (split + 1) * n_chunks / splits;
  if (rounds > 0) c_hi = std::min(c_hi, c_lo + rounds * static_cast<int>(blockDim.x / 32));
  const int jm = MemberOf(grp, gr);
  const int64_t n0 = (gr - (jm == 0 ? grp.g0[0] : (jm == 1 ? grp.g0[1] : grp.g0[2]))) * 16;
  const int64_t N = Pick(grp, jm, [](const GemvOut& x) { return x.N; });
  if (n0 + r >= N) return;
  const int64_t wrb = Pick(grp, jm, [](const GemvOut& x) { return x.w_row_bytes; });
  const uint8_t* w = Pick(grp, jm, [](const GemvOut& x) { return x.w; });
  const int64_t b0 = int64_t(c_lo) * 512, b1 = std::min<int64_t>(int64_t(c_hi) * 512, p.K * 2);
  if (b1 <= b0) return;
  const uint8_t* a = w + (n0 + r) * wrb + b0;  // 16-byte aligned: eligible rows, K % 8 == 0
  if (evict_first) {  // like the loads' ld.global.cs: lines go before the KV cache and x
    asm volatile(
        "{\n .reg .b64 pol;\n createpolicy.fractional.L2::evict_first.b64 pol, 1.0;\n"
        " cp.async.bulk.prefetch.L2.global.L2::cache_hint [%0], %1, pol;\n}\n" ::"l"(a),
        "r"(static_cast<unsigned>(b1 - b0))
        : "memory");
  } else {
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(a),
                 "r"(static_cast<unsigned>(b1 - b0))
                 : "memory");
  }
#endif
}

// PRO (launch.h kGemvPro*): the op producing x folded into the launch. Its rows are staged once
// per block in shared memory (GemvStageX, after the chunk sums; block 0 also writes the op's
// output), so the grid is persistent: at most as many blocks as fit the card, each looping over
// tasks (task = row group x split). Without a prologue the grid has one block per task.
// XP: x's bf16 pieces staged once per block after x (GemvSplitX), read by every task.
// PIPE (GemvPipeMode): 0 the plain loop, kGemvPipe8 the same in blocks of 8 warps, 3 an SM
// (half chunks), kGemvPipeTma weights through the TMA ring (GemvChunksTma; pref >> 8 = slots a
// warp, pref >> 12 = the ring's offset in dynamic shared memory, 16-byte units).
template <int T, bool HALF, int PRO, bool XP, int PIPE = 0, bool LINES = false, bool ROPE = false>
__global__ void __launch_bounds__(PIPE == kGemvPipe8 || PIPE == kGemvPipeTma ? 256 : 512,
                                  PIPE == kGemvPipeTma ? 2
                                                       : (HALF ? (PIPE == kGemvPipe8 ? 3 : 2) : 1))
    GemvBf16Kernel(MatmulParams p, GemvGroupArgs grp, int n_chunks, int splits, float* gpart,
                   unsigned* counters, GemvPrologue pro, int64_t n_tasks, int pref,
                   GemvRopeArg<ROPE> rk) {
  extern __shared__ float part[];  // [this block's chunks][16 rows][8 tokens], then x (PRO)
  __shared__ bool last_block;
  __shared__ float pro_red[kGemvMaxRows * kRmsWarps], pro_rs[kGemvMaxRows];
  const int pref_first = PRO == kGemvProNone ? kGemvPrefPlain : kGemvPrefPro;
  const bool ef = (pref & kGemvPrefEvictFirst) != 0;
  constexpr bool two = PIPE == kGemvPipeTwo;  // GemvDown2: two row groups a task
#ifdef TESSERA_GEMV_STAMPS
  GemvStamp* stamps = g_gemv_stamps;
  unsigned long long st_seq = 0, st_t[4] = {};
  if (threadIdx.x == 0 && stamps != nullptr) {
    st_t[0] = GemvTimer();
    st_seq = atomicAdd(&g_gemv_stamp_seq, 1ull);  // used at the end: off the block's path
  }
#endif
  if (pref & pref_first) GemvPrefetchTask(p, grp, n_chunks, splits, blockIdx.x, 1, ef, two);
  if constexpr (PIPE == kGemvPipeTma) GemvTmaInit((pref >> 8) & 15, (pref >> 12) * 16);
  const auto wait = [&] {
    GridDepWait();
    AllowDependents();
#ifdef TESSERA_GEMV_STAMPS
    if (threadIdx.x == 0 && stamps != nullptr) st_t[1] = GemvTimer();
#endif
  };
  // The register prologues (M = 1) and which of them: 1 GemvRmsStageRegs, 2 GemvRmsStageRegs2.
  // GemvRmsStageRegs2 not in the 64-register half-chunk kernel (PIPE 0 with half chunks: the
  // paired SWIGLU-epilogue launches, 8 warps and more from K = 513): it adds spills there.
  constexpr bool kRegs2 = !(HALF && (PIPE == 0 || PIPE == kGemvPipeTwo));
  int rms_regs = 0;
  if constexpr (PRO == kGemvProRms) {
    if ((pref & kGemvPrefRmsRegs) && p.M == 1) {
      if (blockDim.x == kRmsThreads && p.K <= kRmsRegK) {
        rms_regs = 1;
      } else if (kRegs2 && blockDim.x >= kRmsThreads / 2 && blockDim.x < kRmsThreads &&
                 p.K <= kRmsRegK / 2 && (pref & kGemvPrefRmsRegs2)) {
        rms_regs = 2;
      }
    }
  }
  // A register prologue waits itself (after its norm weight loads with kGemvPrefRmsEarly).
  const bool early = (pref & kGemvPrefRmsEarly) != 0;
  if (rms_regs == 0) wait();
  const int per_task = grp.swiglu != nullptr || two ? 2 : 1;  // chunk sums a task keeps
  float* xs = part + (n_chunks + splits - 1) / splits * 128 * per_task;
  if constexpr (PRO == kGemvProRms) {
    if (rms_regs == 1) {  // calls wait() itself
      GemvRmsStageRegs(p, pro, pro_red, blockIdx.x == 0 && pro.y != nullptr, xs, early, wait);
    } else if (kRegs2 && rms_regs == 2) {
      GemvRmsStageRegs2(p, pro, pro_red, blockIdx.x == 0 && pro.y != nullptr, xs, early, wait);
    } else {
      GemvRmsScales(p, pro, pro_red, pro_rs);
      GemvStageX<PRO>(p, pro, pro_rs, blockIdx.x == 0 && pro.y != nullptr, xs);
    }
  } else if constexpr (PRO != kGemvProNone) {
    GemvStageX<PRO>(p, pro, pro_rs, blockIdx.x == 0 && pro.y != nullptr, xs);
  }
  // 16-byte aligned: part and xs are multiples of 8 floats.
  uint4* xp = reinterpret_cast<uint4*>(xs + (PRO == kGemvProNone ? 0 : p.M * p.K));
  if constexpr (XP) {
    if (PRO == kGemvProNone && splits > 1) {  // one task a block: its split's chunks only
      const int split = static_cast<int>(blockIdx.x % splits);
      GemvSplitX<T, PRO>(p, xs, xp, int64_t{32} * (split * n_chunks / splits),
                         int64_t{32} * ((split + 1) * n_chunks / splits));
    } else {
      GemvSplitX<T, PRO>(p, xs, xp);
    }
  }
#ifdef TESSERA_GEMV_STAMPS
  if (threadIdx.x == 0 && stamps != nullptr) st_t[2] = GemvTimer();
#endif
  for (int64_t task = blockIdx.x; task < n_tasks; task += gridDim.x) {
    // Persistent grids: the next task's first round streams into L2 while this one runs.
    if ((pref & kGemvPrefNext) && task + gridDim.x < n_tasks)
      GemvPrefetchTask(p, grp, n_chunks, splits, task + gridDim.x, 1, ef);
    GemvTask<T, HALF, PRO, XP, PIPE, LINES, ROPE>(p, grp, n_chunks, splits, gpart, counters, xs, xp,
                                                  part, last_block, task, rk);
    __syncthreads();  // part and last_block are the next task's
  }
#ifdef TESSERA_GEMV_STAMPS
  if (threadIdx.x == 0 && stamps != nullptr) {
    st_t[3] = GemvTimer();
    unsigned sm;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    GemvStamp& r = stamps[st_seq % kGemvStampCap];
    for (int i = 0; i < 4; ++i) r.t[i] = st_t[i];
    r.seq = st_seq + 1;
    r.k = static_cast<unsigned>(p.K);
    r.n = static_cast<unsigned>(grp.o[0].N) | (static_cast<unsigned>(grp.n) << 28);
    r.wlo = static_cast<unsigned>(reinterpret_cast<uintptr_t>(grp.o[0].w) >> 4);
    r.block = blockIdx.x, r.grid = gridDim.x | (blockDim.x / 32) << 20, r.sm = sm;
  }
#endif
}

// ---- cu29-ring: M = 1 decode GEMVs with the weights in a block-shared TMA ring ----
//
// lab/NOTES.md (cu29-ring; lab/ring29_probe.cu): the register-load GEMV above holds a chunk's
// weights in registers while its 48 dependent mma run, so its bytes in flight come and go with
// the mma chains; the probe's ring streams the 8B's weights at up to 0.87 of copy and a layer's
// four GEMVs back to back under PDL at 0.85 (the producer streams before griddepcontrol.wait).
// Here: one persistent block an SM of kRingConsumers mma warps and P TMA warps; a task is a row
// group (with SWIGLU pairing: a gate row group and the same up rows), a unit 16 rows x one 256-k
// chunk (8 KiB, four 2-D tensor copies of 16 rows x 128 bytes, 128-byte swizzle). Unit i of a
// block goes to consumer i % C and its one slot (a slot has one consumer, which waits for use r
// only after it used r - 1: mbarrier parity waits cannot tell phases two apart; two slots a
// consumer were measured twice, cu29-ring and cu30-s2, and did not pay); the
// producer serving that consumer refills the slot as soon as the consumer has read it into
// registers. x: the prologue (GemvRmsStageRegs, every thread) and GemvSplitX's pieces, so each
// chunk's mma sequence and its sum are GemvTask's XP path exactly; each task's chunk sums are
// combined in chunk order by a combiner warp (the plain and SWIGLU epilogues' arithmetic): the
// same bits as every other path.
// Warps: consumers 0 .. 7, P producers (2, 4 or 8, TESSERA_CUDA_GEMV_RING_PROD; cu30-prod), the
// combiner after them.
constexpr int kRingConsumers = 8, kRingUnit = 8192;
// A unit's chunk sum in shared memory: column 0 of its 16 rows (M = 1), 16 floats (cu31: was
// the whole 16 x 8 accumulator tile, 128; same bits, 7/8 less of the ring's chunk-sum memory).
constexpr int kRingPart = 16;
constexpr int RingThreads(int P) {
  return (kRingConsumers + P + 1) * 32;
}
// The kernel's pref word: the first round of weights may be asked for before griddepcontrol.wait
// (GemvAux::pdl: no node of the execute writes these weights; else after the prologue).
constexpr int kRingPrefEarly = 128;
struct GemvRingMaps {
  CUtensorMap m[kGemvMaxGroup];
};

// Dynamic shared memory: the ring (1024-aligned), two tasks' chunk sums, x (PRO), x's pieces.
__host__ __device__ inline int64_t GemvRingSmem(int64_t K, int n_units_task, int pro) {
  return 1024 + int64_t{kRingConsumers} * kRingUnit + 2LL * n_units_task * kRingPart * 4 +
         (pro == kGemvProNone ? 0 : K * 4) + 3 * GemvXpStride(1, K) * 16;
}

// The ROPE ring's combiner epilogue for one task (M = 1; lane r < 16 row r of the unit): each
// row's total as GemvRopeStore forms it (chunk order, then the bias), the raw output outside
// skip[jm], then q / k (lanes 0 .. 7: pair i0 + r, rows r and r + 8) rotated into q_rot / k_rot and
// k's cache rows, v (lanes 0 .. 15) into the V cache: the stores and arithmetic of GemvRopePre /
// GemvRopeStore.
// Its operands (the row's bias; lanes 0 .. 7 of a q / k task: cos / sin of their pair, as
// GemvRopePre forms them) are read before the task's barrier (cu30-pre).
struct GemvRingRopeOps {
  float b = 0.0f, c = 0.0f, s = 0.0f;
};
__device__ __forceinline__ int64_t GemvRingRopeRow(const GemvRopeKv& rk, int jm, int64_t n0,
                                                   int r) {
  const int64_t half = rk.D / 2, head = n0 / rk.D, i0 = (n0 % rk.D) / 2;
  return jm == 2 ? n0 + r : head * rk.D + i0 + (r & 7) + (r >> 3) * half;
}
__device__ __forceinline__ GemvRingRopeOps GemvRingRopePre(const GemvRopeKv& rk, const GemvOut& o,
                                                           int jm, int64_t n0, int lane,
                                                           int32_t pos) {
  GemvRingRopeOps op;
  if (lane < 16 && o.bias != nullptr) op.b = o.bias[GemvRingRopeRow(rk, jm, n0, lane)];
  if (jm < 2 && lane < 8) {
    const float angle = __fmul_rn(static_cast<float>(pos), rk.inv_freq[(n0 % rk.D) / 2 + lane]);
    sincosf(angle, &op.s, &op.c);
    op.c = __fmul_rn(op.c, rk.attn_scale);
    op.s = __fmul_rn(op.s, rk.attn_scale);
  }
  return op;
}
__device__ __forceinline__ void GemvRingRopeStore(const GemvRopeKv& rk, const GemvOut& o, int jm,
                                                  int64_t n0, int n_chunks, const float* pt,
                                                  int lane, const GemvRingRopeOps& op,
                                                  int32_t slot) {
  const int r = lane & 15;
  const int64_t half = rk.D / 2, head = n0 / rk.D, i0 = (n0 % rk.D) / 2;
  const int64_t n = GemvRingRopeRow(rk, jm, n0, r);
  float v = 0.0f;
  if (lane < 16) {
    const float b = op.b;
    v = pt[r];
    for (int ch = 1; ch < n_chunks; ++ch) v += pt[ch * kRingPart + r];
    if (o.bias != nullptr) v += b;
    const float* lo = jm == 0 ? rk.skip_lo[0] : (jm == 1 ? rk.skip_lo[1] : rk.skip_lo[2]);
    const float* hi = jm == 0 ? rk.skip_hi[0] : (jm == 1 ? rk.skip_hi[1] : rk.skip_hi[2]);
    float* a = o.out + n * o.out_col;
    if (o.out != nullptr && (a < lo || a >= hi)) *a = v;
  }
  if (jm == 2) {
    if (lane < 16) GemvKvPut(rk, 1, n / rk.Dv, n % rk.Dv, v, slot);
    return;
  }
  const float x1 = __shfl_sync(0xffffffffu, v, (lane + 8) & 31);
  if (lane >= 8) return;
  const int64_t i = i0 + lane;
  const float y0 = RopeLoF(v, x1, op.c, op.s, rk.form), y1 = RopeHiF(v, x1, op.c, op.s);
  GemvRopePairPut(rk, jm, head, i, half, y0, y1, slot);
}

// ROPE (cu30-rope): the norm + q/k/v launch with ROPE q/k + KV_WRITE k/v in the combiner (the
// epilogue GemvRopeStore forms, GemvGroup::rope): a q / k unit's rows 0 .. 7 and 8 .. 15 are rows
// i0 .. i0 + 7 and i0 + D / 2 .. of its head (i0 = (n0 % D) / 2: two 8-row boxes a 64-k piece,
// the same smem layout as one 16-row box), so a task holds both rows of each rotate_half pair.
template <int PRO, int P, bool ROPE>
__global__ void __launch_bounds__(RingThreads(P), 1)
    GemvRingKernel(MatmulParams p, GemvGroupArgs grp, int n_chunks, GemvPrologue pro,
                   int64_t n_tasks, int pref, const __grid_constant__ GemvRingMaps maps,
                   const __grid_constant__ GemvRopeKv rk) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ __align__(16) uint8_t ring_sm[];
  __shared__ uint64_t full[kRingConsumers], empty[kRingConsumers];
  __shared__ float pro_red[RingThreads(P) / 32];
  constexpr int C = kRingConsumers, kRingCombiner = C + P;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const bool pair = grp.swiglu != nullptr;
  const int per_task = pair ? 2 * n_chunks : n_chunks;  // units a task
  const int64_t t0 = blockIdx.x * n_tasks / gridDim.x, t1 = (blockIdx.x + 1) * n_tasks / gridDim.x;
  const int n_units = static_cast<int>((t1 - t0) * per_task);
  const uint32_t base = SmemU32(ring_sm), ring = (base + 1023) & ~1023u;
  float* part = reinterpret_cast<float*>(ring_sm + (ring - base) + C * kRingUnit);
  float* xs = part + 2 * per_task * kRingPart;
  uint4* xp = reinterpret_cast<uint4*>(xs + (PRO == kGemvProNone ? 0 : p.K));
  if (threadIdx.x < C) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(SmemU32(&full[threadIdx.x])));
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(SmemU32(&empty[threadIdx.x])));
  }
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  __syncthreads();
  // Unit i of this block: task t0 + i / per_task, chunk vc = i % per_task of it (pair: vc >=
  // n_chunks is the up member's chunk vc - n_chunks); the member, its first row and its chunk.
  const auto unit = [&](int i, int& jm, int64_t& n0, int& c) {
    const int64_t gr = t0 + i / per_task;
    const int vc = i % per_task;
    if (pair) {
      jm = vc >= n_chunks ? 1 : 0;
      c = vc - jm * n_chunks;
      n0 = gr * 16;
    } else {
      jm = MemberOf(grp, gr);
      c = vc;
      n0 = (gr - (jm == 0 ? grp.g0[0] : (jm == 1 ? grp.g0[1] : grp.g0[2]))) * 16;
    }
  };
  const bool producer = warp >= C && warp < kRingCombiner;
  uint64_t pol = 0;
  if (producer) asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(pol));
  // Producer warp pw fills the slots of consumers c % P == pw (units i, i % C == c), each as soon
  // as its consumer has read the slot's last unit (no waiting on one consumer while another's slot
  // is free). A unit's tensor coordinates (k, row) and member are worked out ahead (cu30-prod:
  // after the previous issue into that slot, off the slot's refill path).
  const auto coords = [&](int i, int& kx, int& ry, int& jm) {
    int c;
    int64_t n0;
    unit(i, jm, n0, c);
    kx = c * 256, ry = static_cast<int>(n0);
  };
  const auto issue_at = [&](int s, int kx, int ry, int jm) {
    const uint32_t bar = SmemU32(&full[s]), dst = ring + s * kRingUnit;
    if (lane == 0) {
      asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar),
                   "r"(kRingUnit)
                   : "memory");
    }
    __syncwarp();
    const CUtensorMap* map = &maps.m[jm];
    int at = lane * 2048, k = kx + lane * 64, row = ry;
    bool go = lane < 4;
    if constexpr (ROPE) {
      if (jm < 2) {  // 8-row boxes: lane = 4 h + piece, rows i0 + D / 2 h of the head
        const int D = static_cast<int>(rk.D);
        at = (lane & 3) * 2048 + (lane >> 2) * 1024, k = kx + (lane & 3) * 64;
        row = ry / D * D + (ry % D) / 2 + (lane >> 2) * (D / 2);
        go = lane < 8;
      }
    }
    if (go) {
      asm volatile(
          "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
          ".L2::cache_hint [%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(dst + at),
          "l"(reinterpret_cast<uint64_t>(map)), "r"(k), "r"(row), "r"(bar), "l"(pol)
          : "memory");
    }
  };
  const auto issue = [&](int i) {
    int kx, ry, jm;
    coords(i, kx, ry, jm);
    issue_at(i % C, kx, ry, jm);
  };
  const int pw = warp - C;
  // The first use of every slot needs no wait: streamed before the PDL wait and the prologue
  // where no kernel before this one writes the weights (kRingPrefEarly), else after them.
  const bool early = (pref & kRingPrefEarly) != 0;
  if (producer && early)
    for (int i = pw; i < n_units && i < C; i += P) issue(i);
  const auto wait = [&] {
    GridDepWait();
    AllowDependents();
  };
  // Every thread takes part in the prologue (its barriers are the block's); GemvRmsStageRegs'
  // threads 256.. redo the staging of threads 0.. with the same values (benign).
  if constexpr (PRO == kGemvProRms) {
    GemvRmsStageRegs(p, pro, pro_red, blockIdx.x == 0 && pro.y != nullptr, xs,
                     (pref & kGemvPrefRmsEarly) != 0, wait);
  } else {
    wait();
  }
  GemvSplitX<3, PRO>(p, xs, xp);
  if (producer) {
    if (!early)
      for (int i = pw; i < n_units && i < C; i += P) issue(i);
    constexpr int kMine = C / P;
    int nxt[kMine], kx[kMine], ry[kMine], jm[kMine];  // consumer pw + e P's next unit, its coords
#pragma unroll
    for (int e = 0; e < kMine; ++e) {
      nxt[e] = C + pw + e * P;
      if (nxt[e] < n_units) coords(nxt[e], kx[e], ry[e], jm[e]);
    }
    for (;;) {
      bool any = false, issued = false;
#pragma unroll
      for (int e = 0; e < kMine; ++e) {
        const int i = nxt[e];
        if (i >= n_units) continue;
        any = true;
        if constexpr (kMine == 1) {  // one consumer: wait for it (no round robin to keep going)
          MbarWait(SmemU32(&empty[i % C]), (i / C - 1) & 1);
        } else {
          uint32_t ready = 0;
          if (lane == 0) {
            asm volatile(
                "{\n.reg .pred p;\nmbarrier.test_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                "selp.u32 %0, 1, 0, p;\n}\n"
                : "=r"(ready)
                : "r"(SmemU32(&empty[i % C])), "r"((i / C - 1) & 1)
                : "memory");
          }
          if (__shfl_sync(0xffffffffu, ready, 0) == 0) continue;
        }
        issue_at(i % C, kx[e], ry[e], jm[e]);
        nxt[e] = i + C;
        issued = true;
        if (nxt[e] < n_units) coords(nxt[e], kx[e], ry[e], jm[e]);
      }
      if (!any) break;
      if (!issued) __nanosleep(32);
    }
    return;
  }
  // Warp kRingCombiner (after the consumers' barrier of task tl, named barrier 1 of the consumers
  // and it) sums task tl's chunk sums while the consumers go on with tl + 1 into the other half of
  // part; it reaches the barrier of tl + 1 only after that, so part[tl & 1] is free for tl + 2.
  // M = 1: lane r < 16 sums row r (pair: lane 16 + r the up member's row r), chunk sums loaded
  // eight at a time, added in chunk order from chunk 0's sum, as GemvTask's epilogues.
  const int n_local = static_cast<int>(t1 - t0);
  if (warp == kRingCombiner) {
    int32_t rope_pos = 0, rope_slot = -1;
    if constexpr (ROPE) rope_pos = *rk.pos, rope_slot = *rk.slots;  // M = 1: one token
    for (int tl = 0; tl < n_local; ++tl) {
      int jm, c;
      int64_t n0;
      unit(tl * per_task, jm, n0, c);
      const int r = lane & 15, jr = pair ? lane >> 4 : jm;
      const float* pt =
          part + (tl & 1) * per_task * kRingPart + (pair ? (lane >> 4) * n_chunks * kRingPart : 0);
      const GemvOut o = Pick(grp, jr, [](const GemvOut& x) { return x; });
      // cu30-pre: the task's inputs (residual, bias; RoPE's cos / sin) before its barrier, so
      // their round trips pass while the consumers finish (the last task's are the launch's tail).
      float rv = 0.0f, bv = 0.0f;
      GemvRingRopeOps rop;
      if constexpr (ROPE) {
        rop = GemvRingRopePre(rk, o, jm, n0, lane, rope_pos);
      } else if (pair || lane < 16) {
        if (!pair && o.res_out != nullptr) rv = o.res[n0 + r];
        if (o.bias != nullptr) bv = o.bias[n0 + r];
      }
      asm volatile("bar.sync 1, %0;\n" ::"r"((C + 1) * 32) : "memory");
      if constexpr (ROPE) {
        GemvRingRopeStore(rk, o, jm, n0, n_chunks, pt, lane, rop, rope_slot);
        continue;
      }
      float sum = 0.0f;
      if (pair || lane < 16) {
        for (int c0 = 0; c0 < n_chunks; c0 += 8) {
          float v[8];
#pragma unroll
          for (int u = 0; u < 8; ++u)
            v[u] = c0 + u < n_chunks ? pt[(c0 + u) * kRingPart + r] : 0.0f;
#pragma unroll
          for (int u = 0; u < 8; ++u)
            if (c0 + u < n_chunks) sum = c0 + u == 0 ? v[u] : sum + v[u];
        }
        if (o.bias != nullptr) sum += bv;
      }
      if (pair) {  // GemvStoreSwiglu's stores
        if (o.out != nullptr) o.out[(n0 + r) * o.out_col] = sum;
        const float up = __shfl_sync(0xffffffffu, sum, r + 16);
        if (lane < 16) grp.swiglu[n0 + r] = SwiGluF(sum, up);
      } else if (lane < 16) {
        StoreOutRes(o, n0 + r, 0, sum, rv);
      }
    }
    return;
  }
  // Consumers: per_task % C == 0 (the host's rule), so every consumer has per_task / C units of
  // every task, and one barrier a task keeps them and the combiner in step.
  const int g = lane / 4, q = lane % 4;
  const bool tok = g == 0;  // M = 1
  const uint2* x2 = reinterpret_cast<const uint2*>(xp + q);
  const int64_t xps = GemvXpStride(1, p.K);
  // The unit's task and chunk stepped from the last (per_task % C == 0, so per_task >= C), no
  // division a unit (cu30-prod).
  int tl = 0, vc = warp;
  for (int i = warp; i < n_units; i += C) {
    const int c = pair && vc >= n_chunks ? vc - n_chunks : vc;
    const int sl = i % C;
    MbarWait(SmemU32(&full[sl]), (i / C) & 1);
    const uint8_t* sw = ring_sm + (ring - base) + sl * kRingUnit;
    uint4 wa[8][2];
#pragma unroll
    for (int b = 0; b < 8; ++b) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = g + 8 * h;  // 128-byte swizzle: 16-byte piece j of a row at j ^ (row % 8)
        wa[b][h] = *reinterpret_cast<const uint4*>(sw + (b / 2) * 2048 + row * 128 +
                                                   ((((b % 2) * 4 + q) ^ (row % 8)) * 16));
      }
    }
    __syncwarp();
    if (lane == 0)
      asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(SmemU32(&empty[sl]))
                   : "memory");
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int b = 0; b < 8; ++b) {
      const int64_t kb = int64_t(c) * kBlocksPerChunk + b;
#pragma unroll
      for (int j = 0; j < 2; ++j) {
#pragma unroll
        for (int t = 2; t >= 0; --t) {  // GemvTask's XP order
          const uint2 v = tok ? x2[(t * xps + kb * 4) * 2 + j] : make_uint2(0u, 0u);
          Mma(acc, Word(wa[b][0], 2 * j), Word(wa[b][1], 2 * j), Word(wa[b][0], 2 * j + 1),
              Word(wa[b][1], 2 * j + 1), v.x, v.y);
        }
      }
    }
    float* pc = part + ((tl & 1) * per_task + vc) * kRingPart;
    if (q == 0) {  // column 0: the one token
      pc[g] = acc[0];
      pc[g + 8] = acc[2];
    }
    if (vc + C >= per_task)  // this consumer's last unit of task tl
      asm volatile("bar.sync 1, %0;\n" ::"r"((C + 1) * 32) : "memory");
    vc += C;
    if (vc >= per_task) vc -= per_task, ++tl;
  }
#else
  __trap();  // GemvRingOn admits compute capability 9.x only
#endif
}

// ---- Streaming GEMV: (16-row group, chunk) tasks spread over every warp of the grid ----
//
// Same per-chunk arithmetic as GemvBf16Kernel (so the same bits), different schedule: the grid
// is sized to the card, each warp walks a contiguous range of tasks (task = one chunk of one
// 16-row group, 8 k32 blocks) and streams its weights through a per-warp ring of cp.async stages
// in shared memory, so loads stay in flight while the tensor cores work and no block waits on
// another warp. A task's [16 rows][M tokens] chunk sum goes to a global partials buffer; the
// warp that completes a row group's last chunk (counted with one atomic per row group) adds the
// C chunk sums in chunk order (c0 + c1 + ...), then the bias: the canonical order, whoever does it.
// With PDL (sm_90) and GemvAux::pdl (the host checked that no node of the execute writes the
// weight), the weight prologue is issued before griddepcontrol.wait: the first stages stream in
// while the kernel before this one drains.

__device__ __forceinline__ void CpAsync16Hint(void* smem, const void* gmem, int bytes) {
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem),
               "r"(bytes));
}

template <int T, int WARPS, int S>
__global__ void __launch_bounds__(WARPS * 32)
    GemvStreamKernel(MatmulParams p, GemvGroupArgs b, int C, int64_t tasks, int tpw, float* part,
                     unsigned* counters, bool early) {
  extern __shared__ uint4 ring[];  // [WARPS][S stages][2 rows][32 lanes]
  if (!early) GridDepWait();       // the weight may come from an earlier kernel of this execute
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, q = lane % 4;
  uint4* my = ring + warp * S * 64;
  // Task and item counts fit 32 bits (the launcher checks): cheap divisions in the loop.
  const int64_t t_begin = (int64_t(blockIdx.x) * WARPS + warp) * tpw;
  const int64_t t_end = t_begin + tpw < tasks ? t_begin + tpw : tasks;
  const int n_items = t_end > t_begin ? static_cast<int>(t_end - t_begin) * kBlocksPerChunk : 0;
  const unsigned uc = static_cast<unsigned>(C), tb = static_cast<unsigned>(t_begin);
  const int64_t nkb = (p.K + 31) / 32;
  // Item i: block b = i % 8 of task t = t_begin + i / 8 (row group t / C, chunk t % C).
  auto issue = [&](int i) {
    if (i < n_items) {
      const unsigned t = tb + static_cast<unsigned>(i) / kBlocksPerChunk;
      const int64_t gr = t / uc;
      const int j = MemberOf(b, gr);
      const uint8_t* w = Pick(b, j, [](const GemvOut& o) { return o.w; });
      const int64_t wrb = Pick(b, j, [](const GemvOut& o) { return o.w_row_bytes; });
      const int64_t N = Pick(b, j, [](const GemvOut& o) { return o.N; });
      const int64_t g0 = j == 0 ? b.g0[0] : (j == 1 ? b.g0[1] : b.g0[2]);
      const int64_t kb = int64_t(t % uc) * kBlocksPerChunk + i % kBlocksPerChunk;
      const int64_t n = (gr - g0) * 16 + g, k = kb * 32 + 8 * q;
      uint4* slot = my + (i % S) * 64;
      const bool ok0 = n < N && k < p.K, ok1 = n + 8 < N && k < p.K;
      CpAsync16Hint(slot + lane, ok0 ? w + n * wrb + k * 2 : w, ok0 ? 16 : 0);
      CpAsync16Hint(slot + 32 + lane, ok1 ? w + (n + 8) * wrb + k * 2 : w, ok1 ? 16 : 0);
    }
    CpAsyncCommit();  // empty groups keep the wait count uniform
  };
#pragma unroll
  for (int s = 0; s < S - 1; ++s) issue(s);
  GridDepWait();  // x (and the partials/outputs) belong to earlier kernels from here on
  AllowDependents();
  const bool tok_ok = g < p.M;
  const float* xr = p.x + (tok_ok ? g : 0) * p.x_row;
  auto load_x = [&](int i, float4(&v)[2]) {
    const unsigned t = tb + static_cast<unsigned>(i) / kBlocksPerChunk;
    const int64_t k = (int64_t(t % uc) * kBlocksPerChunk + i % kBlocksPerChunk) * 32 + 8 * q;
    const bool ok = tok_ok && i < n_items && k < p.K;
    v[0] = ok ? __ldg(reinterpret_cast<const float4*>(xr + k)) : make_float4(0, 0, 0, 0);
    v[1] = ok ? __ldg(reinterpret_cast<const float4*>(xr + k + 4)) : make_float4(0, 0, 0, 0);
  };
  float4 xn[2];
  load_x(0, xn);
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int i = 0; i < n_items; ++i) {
    issue(i + S - 1);
    CpAsyncWait<S - 1>();  // item i landed (each lane reads only the bytes it copied)
    const float xv[8] = {xn[0].x, xn[0].y, xn[0].z, xn[0].w, xn[1].x, xn[1].y, xn[1].z, xn[1].w};
    load_x(i + 1, xn);
    const unsigned t = tb + static_cast<unsigned>(i) / kBlocksPerChunk;
    const int64_t kb = int64_t(t % uc) * kBlocksPerChunk + i % kBlocksPerChunk;
    if (kb < nkb) {  // uniform across the warp
      const uint4* slot = my + (i % S) * 64;
      const uint4 w0 = slot[lane], w1 = slot[32 + lane];
      uint32_t bx[T][4];
      SplitPack<T>(xv, bx);
#pragma unroll
      for (int j = 0; j < 2; ++j) {
#pragma unroll
        for (int tt = T - 1; tt >= 0; --tt) {
          Mma(acc, Word(w0, 2 * j), Word(w1, 2 * j), Word(w0, 2 * j + 1), Word(w1, 2 * j + 1),
              bx[tt][2 * j], bx[tt][2 * j + 1]);
        }
      }
    }
    if (i % kBlocksPerChunk != kBlocksPerChunk - 1) continue;
    // End of task t: publish its chunk sum, and reduce the row group if it was the last chunk.
    const int64_t gr = t / uc;
    const int jm = MemberOf(b, gr);
    const GemvOut o = Pick(b, jm, [](const GemvOut& x) { return x; });
    const int64_t n0 = (gr - (jm == 0 ? b.g0[0] : (jm == 1 ? b.g0[1] : b.g0[2]))) * 16;
    const int M = static_cast<int>(p.M);
    const float vals[4] = {acc[0], acc[1], acc[2], acc[3]};
    acc[0] = acc[1] = acc[2] = acc[3] = 0.0f;
    if (C == 1) {  // one chunk: the sum is final
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t n = n0 + g + (e >= 2 ? 8 : 0);
        const int m = 2 * q + (e & 1);
        if (n >= o.N || m >= M) continue;
        float v = vals[e];
        if (o.bias != nullptr) v += o.bias[n];  // no "+ 0": -0 must stay -0, as in the GEMM
        StoreOut(o, n, m, v);
      }
      continue;
    }
    float* pt = part + int64_t(t) * 16 * M;  // [16 rows][M tokens]
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int row = g + (e >= 2 ? 8 : 0), m = 2 * q + (e & 1);
      if (m < M) __stcg(pt + row * M + m, vals[e]);
    }
    __threadfence();
    __syncwarp();
    unsigned prev = 0;
    if (lane == 0) prev = atomicAdd(counters + gr, 1u);
    prev = __shfl_sync(0xffffffffu, prev, 0);
    if (prev != static_cast<unsigned>(C - 1)) continue;
    __threadfence();  // every chunk sum of row group gr is visible now
    const float* pr = part + gr * C * 16 * M;
    for (int idx = lane; idx < 16 * M; idx += 32) {
      const int64_t n = n0 + idx / M;
      const int m = idx % M;
      float s = __ldcg(pr + idx);
      for (int c = 1; c < C; ++c) s += __ldcg(pr + c * 16 * M + idx);
      if (n >= o.N) continue;
      if (o.bias != nullptr) s += o.bias[n];
      StoreOut(o, n, m, s);
    }
    if (lane == 0) counters[gr] = 0;  // ready for the next launch (stream-ordered)
  }
  CpAsyncWait<0>();
}

// ---- x -> bf16 pieces for the GEMM: planes[t][m][k] ----

template <int T>
__global__ void SplitKernel(MatmulParams p, uint16_t* planes) {
  GridDepWait();
  AllowDependents();
  const int64_t groups = p.K / 8;
  for (int64_t u = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; u < p.M * groups;
       u += int64_t(gridDim.x) * blockDim.x) {
    const int64_t m = u / groups, k = (u % groups) * 8;
    float xv[8];
    LoadX8(p.x + m * p.x_row, k, p.K, true, xv);
    uint32_t o[T][4];
    SplitPack<T>(xv, o);
#pragma unroll
    for (int t = 0; t < T; ++t) {
      *reinterpret_cast<uint4*>(planes + (t * p.M + m) * p.K + k) =
          make_uint4(o[t][0], o[t][1], o[t][2], o[t][3]);
    }
  }
}

// ---- RMS_NORM folded into the GEMM's x split (decode batches, M = 9 .. 64; cuda-agg2) ----

// Position s (0 .. 31) of a slot-permuted k32 block (LaunchSplitBf16Wgmma's planes, k_gemm_
// wgmma.cu SlotK): chunk c = s / 8 = 2j + h holds k = 8 (e / 2) + 4j + 2h + e % 2, e = s % 8.
__device__ __forceinline__ int PermSlotK(int s) {
  const int c = s / 8, j = c / 2, h = c % 2, e = s % 8;
  return 8 * (e / 2) + 4 * j + 2 * h + e % 2;
}

// One 256-thread block a row m, latency-bound (M <= 64 blocks): the row's sum of squares with the
// norm kernel's reduction (k_norm.cu RowKernel: thread t sums elements t, t + 256, ... with one
// fmaf chain, then BlockSum's two butterflies; for K <= kRmsSplitCached its RmsNormCached form,
// every x and weight load issued before the first add), y = RmsApply per element, stored to pro.y
// when set (the norm's other consumers read it) and staged in shared memory; then y split into the
// T bf16 pieces SplitKernel makes (planes[t][m][k]) or, PERM, those of LaunchSplitBf16Wgmma
// (slot-permuted k32 blocks, K padded to 32 with zeros). So y has the norm kernel's bits and the
// planes are the split of that y: the GEMM after it computes the unfused bits.
constexpr int kRmsSplitPer = 16;
constexpr int64_t kRmsSplitCached = kRmsSplitPer * kRmsThreads;
constexpr int64_t kRmsSplitMaxK = 8192;  // the staged row: 32 KiB of shared memory

// The row's 1 / rms from thread partials (BlockSum of k_norm.cu, then RmsInvScale).
__device__ __forceinline__ float RmsRowScale(float ss, int64_t n, float eps, float* red) {
  const int lane = threadIdx.x % 32;
  ss = WarpSum(ss);
  if (lane == 0) red[threadIdx.x / 32] = ss;
  __syncthreads();
  return RmsInvScale(RmsCombineWarps(lane < kRmsWarps ? red[lane] : 0.0f), n, eps);
}

template <int T, bool PERM>
__global__ void __launch_bounds__(kRmsThreads)
    RmsSplitKernel(MatmulParams p, GemvPrologue pro, uint16_t* planes) {
  __shared__ float red[kRmsWarps];
  __shared__ __align__(16) float ys[kRmsSplitMaxK];
  GridDepWait();
  AllowDependents();
  const int64_t m = blockIdx.x, K = p.K;
  const int tid = threadIdx.x;
  const float* xr = p.x + m * p.x_row;
  const bool has_w = pro.weight != nullptr;
  float* yr = pro.y != nullptr ? pro.y + m * pro.y_row : nullptr;
  if (K <= kRmsSplitCached) {
    float xs[kRmsSplitPer], ws[kRmsSplitPer];
#pragma unroll
    for (int j = 0; j < kRmsSplitPer; ++j) {
      const int64_t i = tid + int64_t{j} * kRmsThreads;
      xs[j] = i < K ? xr[i] : 0.0f;
      ws[j] = (i < K && has_w) ? pro.weight[i] : 0.0f;
    }
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < kRmsSplitPer; ++j)
      if (tid + int64_t{j} * kRmsThreads < K) ss = RmsAccum(ss, xs[j]);
    const float r = RmsRowScale(ss, K, pro.eps, red);
#pragma unroll
    for (int j = 0; j < kRmsSplitPer; ++j) {
      const int64_t i = tid + int64_t{j} * kRmsThreads;
      if (i >= K) continue;
      const float y = RmsApply(xs[j], r, has_w, ws[j], pro.woff);
      ys[i] = y;
      if (yr != nullptr) yr[i] = y;
    }
  } else {
    const float r = RmsRowScale(RmsThreadPartial(xr, 1, K, tid), K, pro.eps, red);
    for (int64_t i = tid; i < K; i += kRmsThreads) {
      const float y = RmsApply(xr[i], r, has_w, has_w ? pro.weight[i] : 0.0f, pro.woff);
      ys[i] = y;
      if (yr != nullptr) yr[i] = y;
    }
  }
  const int64_t kp = PERM ? (K + 31) / 32 * 32 : K;  // plane row length
  for (int64_t i = K + tid; i < kp; i += kRmsThreads) ys[i] = 0.0f;
  __syncthreads();
  for (int64_t u = tid; u < kp / 8; u += kRmsThreads) {  // 8 plane slots a unit
    float v[8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
      v[i] = ys[PERM ? u / 4 * 32 + PermSlotK(static_cast<int>(u % 4) * 8 + i) : u * 8 + i];
    uint32_t o[T][4];
    SplitPack<T>(v, o);
#pragma unroll
    for (int t = 0; t < T; ++t) {
      *reinterpret_cast<uint4*>(planes + (t * p.M + m) * kp + u * 8) =
          make_uint4(o[t][0], o[t][1], o[t][2], o[t][3]);
    }
  }
}

template <int T>
cudaError_t LaunchRmsSplit(const MatmulParams& p, const GemvPrologue& pro, bool perm,
                           uint16_t* planes, cudaStream_t stream) {
  if (p.M > 65535 || (p.K + 31) / 32 * 32 > kRmsSplitMaxK) return cudaErrorInvalidConfiguration;
  if (perm)
    LaunchK(RmsSplitKernel<T, true>, static_cast<unsigned>(p.M), kRmsThreads, 0, stream, p, pro,
            planes);
  else
    LaunchK(RmsSplitKernel<T, false>, static_cast<unsigned>(p.M), kRmsThreads, 0, stream, p, pro,
            planes);
  return cudaGetLastError();
}

// ---- SWIGLU folded into the GEMM's x split (decode batches, M = 9 .. 64; cuda-agg3) ----

// One thread a k32 block of a row (PERM: LaunchSplitBf16Wgmma's slot-permuted planes, K padded to
// 32 with zeros; else SplitKernel's natural planes, rows of K): gate and up read in natural order
// (float4 with VEC), x = SwiGluF(gate, up) per element, the SWIGLU kernel's own expression
// (fuse_math.cuh; its last product is rounded, so the split's subtraction cannot contract into
// it), stored to pro.y when set, then each 8-slot unit split by SplitPack from registers (the slot
// permutation is unrolled: constant register indices). So the planes are the split of the SWIGLU
// kernel's output and the GEMM after it computes the unfused bits. K % 8 == 0: a group of 4 k's
// is wholly inside or outside the row.
template <int T, bool PERM, bool VEC>
__global__ void SwigluSplitKernel(MatmulParams p, GemvPrologue pro, uint16_t* planes) {
  GridDepWait();
  AllowDependents();
  const int64_t K = p.K, kp = PERM ? (K + 31) / 32 * 32 : K, nb = (K + 31) / 32;
  for (int64_t u = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; u < p.M * nb;
       u += int64_t{gridDim.x} * blockDim.x) {
    const int64_t m = u / nb, k0 = (u % nb) * 32;
    const float* g = p.x + m * p.x_row + k0;
    const float* up = pro.b + m * pro.b_row + k0;
    float* yr = pro.y != nullptr ? pro.y + m * pro.y_row + k0 : nullptr;
    float v[32];
#pragma unroll
    for (int q = 0; q < 8; ++q) {
      const bool in = k0 + 4 * q < K;
      float a[4] = {}, b[4] = {};
      if (in && VEC) {
        const float4 a4 = *reinterpret_cast<const float4*>(g + 4 * q);
        const float4 b4 = *reinterpret_cast<const float4*>(up + 4 * q);
        a[0] = a4.x, a[1] = a4.y, a[2] = a4.z, a[3] = a4.w;
        b[0] = b4.x, b[1] = b4.y, b[2] = b4.z, b[3] = b4.w;
      } else if (in) {
#pragma unroll
        for (int e = 0; e < 4; ++e) a[e] = g[4 * q + e], b[e] = up[4 * q + e];
      }
#pragma unroll
      for (int e = 0; e < 4; ++e) v[4 * q + e] = in ? SwiGluF(a[e], b[e]) : 0.0f;
      if (in && yr != nullptr) {
        if (VEC) {
          *reinterpret_cast<float4*>(yr + 4 * q) =
              make_float4(v[4 * q], v[4 * q + 1], v[4 * q + 2], v[4 * q + 3]);
        } else {
#pragma unroll
          for (int e = 0; e < 4; ++e) yr[4 * q + e] = v[4 * q + e];
        }
      }
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {  // the block's 8-slot units
      if (!PERM && k0 + 8 * j >= K) break;
      float w[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) w[i] = v[PERM ? PermSlotK(j * 8 + i) : j * 8 + i];
      uint32_t o[T][4];
      SplitPack<T>(w, o);
#pragma unroll
      for (int t = 0; t < T; ++t) {
        *reinterpret_cast<uint4*>(planes + (t * p.M + m) * kp + k0 + 8 * j) =
            make_uint4(o[t][0], o[t][1], o[t][2], o[t][3]);
      }
    }
  }
}

bool Aligned16(const void* ptr, int64_t row_elems) {
  return ptr == nullptr || (reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && row_elems % 4 == 0);
}

template <int T, bool PERM>
void LaunchSwigluSplit(const MatmulParams& p, const GemvPrologue& pro, uint16_t* planes,
                       cudaStream_t stream) {
  const unsigned grid = GridFor(p.M * ((p.K + 31) / 32), 128);
  if (Aligned16(p.x, p.x_row) && Aligned16(pro.b, pro.b_row) && Aligned16(pro.y, pro.y_row))
    LaunchK(SwigluSplitKernel<T, PERM, true>, grid, 128, 0, stream, p, pro, planes);
  else
    LaunchK(SwigluSplitKernel<T, PERM, false>, grid, 128, 0, stream, p, pro, planes);
}

// SWIGLU folded into a prefill GEMM's wgmma-plane split (M > kGemmRmsMaxRows; cu-xsplit15):
// SplitPermKernel's shape (k_gemm_wgmma.cu: one thread a token's 8-slot unit, a k32 block's 4
// units in adjacent threads, so a warp reads 1 KiB of gate and of up in one run and writes
// 512-byte runs of each plane; the decode kernel above gives a thread a whole k32 block, not
// timed at prefill) with x = SwiGluF(gate, up) per element, the SWIGLU kernel's expression,
// stored to pro.y when set. Slots 2w, 2w + 1 of a unit are adjacent k's (float2 with VEC); K % 8
// == 0, so a pair is wholly inside or outside the row. Same planes as SplitPermKernel over the
// SWIGLU kernel's output.
template <int T, bool VEC>
__global__ void SwigluSplitPermKernel(MatmulParams p, GemvPrologue pro, uint16_t* planes) {
  GridDepWait();
  AllowDependents();
  const int64_t K = p.K, kp = (K + 31) / 32 * 32, nb = kp / 32;
  const int64_t u = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (u >= p.M * nb * 4) return;
  const int c = static_cast<int>(u % 4);
  const int64_t b = (u / 4) % nb, m = u / (4 * nb);
  const float* g = p.x + m * p.x_row;
  const float* up = pro.b + m * pro.b_row;
  float* yr = pro.y != nullptr ? pro.y + m * pro.y_row : nullptr;
  float v[8];
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    const int64_t k = b * 32 + PermSlotK(c * 8 + 2 * w);
    float a0 = 0.0f, a1 = 0.0f, b0 = 0.0f, b1 = 0.0f;
    if (k < K && VEC) {
      const float2 a2 = *reinterpret_cast<const float2*>(g + k);
      const float2 b2 = *reinterpret_cast<const float2*>(up + k);
      a0 = a2.x, a1 = a2.y, b0 = b2.x, b1 = b2.y;
    } else if (k < K) {
      a0 = g[k], a1 = g[k + 1], b0 = up[k], b1 = up[k + 1];
    }
    v[2 * w] = k < K ? SwiGluF(a0, b0) : 0.0f;
    v[2 * w + 1] = k < K ? SwiGluF(a1, b1) : 0.0f;
    if (k < K && yr != nullptr) {
      if (VEC) {
        *reinterpret_cast<float2*>(yr + k) = make_float2(v[2 * w], v[2 * w + 1]);
      } else {
        yr[k] = v[2 * w], yr[k + 1] = v[2 * w + 1];
      }
    }
  }
  uint32_t o[T][4];
  SplitPack<T>(v, o);
#pragma unroll
  for (int t = 0; t < T; ++t) {
    *reinterpret_cast<uint4*>(planes + (t * p.M + m) * kp + b * 32 + c * 8) =
        make_uint4(o[t][0], o[t][1], o[t][2], o[t][3]);
  }
}

bool Aligned8(const void* ptr, int64_t row_elems) {
  return ptr == nullptr || (reinterpret_cast<uintptr_t>(ptr) % 8 == 0 && row_elems % 2 == 0);
}

// The prologue op's x split: RMS_NORM (RmsSplitKernel) or SWIGLU (SwigluSplitKernel; at prefill
// onto the wgmma planes SwigluSplitPermKernel).
template <int T>
cudaError_t LaunchProSplit(const MatmulParams& p, const GemvPrologue& pro, bool perm,
                           uint16_t* planes, cudaStream_t stream) {
  if (pro.kind == kGemvProRms) return LaunchRmsSplit<T>(p, pro, perm, planes, stream);
  if (pro.kind != kGemvProSwiglu) return cudaErrorInvalidValue;
  if (perm && p.M > kGemmRmsMaxRows) {
    const unsigned grid = static_cast<unsigned>((p.M * ((p.K + 31) / 32) * 4 + 255) / 256);
    if (Aligned8(p.x, p.x_row) && Aligned8(pro.b, pro.b_row) && Aligned8(pro.y, pro.y_row))
      LaunchK(SwigluSplitPermKernel<T, true>, grid, 256, 0, stream, p, pro, planes);
    else
      LaunchK(SwigluSplitPermKernel<T, false>, grid, 256, 0, stream, p, pro, planes);
  } else if (perm)
    LaunchSwigluSplit<T, true>(p, pro, planes, stream);
  else
    LaunchSwigluSplit<T, false>(p, pro, planes, stream);
  return cudaGetLastError();
}

// ---- GEMM: 128 weight rows x 64 tokens a block, 8 warps of 32 x 32, 4-stage cp.async ----

constexpr int kBN = 128, kBM = 64, kStages = 4, kGemmThreads = 256;
constexpr int kAChunks = kBN * 4;  // 16-byte chunks of a stage's A tile (32 k's a row)
constexpr int kBChunks = kBM * 4;  // ... of one piece's B tile

template <int T>
constexpr int StageChunks() {
  return kAChunks + T * kBChunks;
}

template <int T>
__device__ __forceinline__ void LoadStage(uint4* st, const MatmulParams& p, const uint16_t* planes,
                                          int64_t n0, int64_t m0, int64_t kb) {
  const int tid = threadIdx.x;
#pragma unroll
  for (int i = 0; i < kAChunks / kGemmThreads; ++i) {
    const int c = tid + i * kGemmThreads, r = c / 4, cc = c % 4;
    const int64_t n = n0 + r, k = kb * 32 + cc * 8;
    const bool ok = n < p.N && k < p.K;
    CpAsync16(st + c, ok ? p.w + n * p.w_row_bytes + k * 2 : p.w, ok ? 16 : 0);
  }
#pragma unroll
  for (int t = 0; t < T; ++t) {
    const int c = tid, r = c / 4, cc = c % 4;
    const int64_t m = m0 + r, k = kb * 32 + cc * 8;
    const bool ok = m < p.M && k < p.K;
    CpAsync16(st + kAChunks + t * kBChunks + c, ok ? planes + (t * p.M + m) * p.K + k : planes,
              ok ? 16 : 0);
  }
}

// SPLIT (chunk-split GEMM for grids much smaller than the card): block z walks only the chunks
// [z * chunks_per_block, + chunks_per_block) and stores each chunk's sum, started from +0 exactly
// as the canonical order starts it, to part[chunk][M][N]; GemmCombineKernel then adds the chunk
// sums in chunk order and the bias. Same sequence per element, so the same bits.
template <int T, bool SPLIT = false>
__global__ void __launch_bounds__(kGemmThreads)
    GemmBf16Kernel(MatmulParams p, const uint16_t* planes, float* part, int chunks_per_block) {
  GridDepWait();
  AllowDependents();
  extern __shared__ uint4 smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, q = lane % 4, wn = warp % 4, wm = warp / 4;
  const int64_t n0 = blockIdx.x * int64_t(kBN), m0 = blockIdx.y * int64_t(kBM);
  const int64_t nkb_all = (p.K + 31) / 32;
  // k32 blocks [kb0, nkb): all of K, or this block's chunks (SPLIT).
  const int64_t kb0 = SPLIT ? int64_t(blockIdx.z) * chunks_per_block * kBlocksPerChunk : 0;
  const int64_t nkb =
      SPLIT ? std::min<int64_t>(nkb_all, kb0 + int64_t(chunks_per_block) * kBlocksPerChunk)
            : nkb_all;
  float acc[2][4][4] = {}, tot[2][4][4] = {};
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (kb0 + s < nkb) LoadStage<T>(smem + s * StageChunks<T>(), p, planes, n0, m0, kb0 + s);
    CpAsyncCommit();  // empty groups keep the wait count uniform
  }
  for (int64_t kb = kb0; kb < nkb; ++kb) {
    CpAsyncWait<kStages - 2>();
    __syncthreads();  // stage kb landed for all; stage kb - 1 is free to overwrite
    const int64_t pf = kb + kStages - 1;
    if (pf < nkb)
      LoadStage<T>(smem + ((pf - kb0) % kStages) * StageChunks<T>(), p, planes, n0, m0, pf);
    CpAsyncCommit();
    const uint4* st = smem + ((kb - kb0) % kStages) * StageChunks<T>();
    uint4 ra[2][2], rb[T][4];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int r = wn * 32 + i * 16 + g;
      ra[i][0] = st[r * 4 + q];
      ra[i][1] = st[(r + 8) * 4 + q];
    }
#pragma unroll
    for (int t = 0; t < T; ++t) {
#pragma unroll
      for (int jj = 0; jj < 4; ++jj)
        rb[t][jj] = st[kAChunks + t * kBChunks + (wm * 32 + jj * 8 + g) * 4 + q];
    }
#pragma unroll
    for (int j = 0; j < 2; ++j) {
#pragma unroll
      for (int t = T - 1; t >= 0; --t) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
#pragma unroll
          for (int jj = 0; jj < 4; ++jj) {
            Mma(acc[i][jj], Word(ra[i][0], 2 * j), Word(ra[i][1], 2 * j), Word(ra[i][0], 2 * j + 1),
                Word(ra[i][1], 2 * j + 1), Word(rb[t][jj], 2 * j), Word(rb[t][jj], 2 * j + 1));
          }
        }
      }
    }
    if (kb % kBlocksPerChunk == kBlocksPerChunk - 1 || kb == nkb_all - 1) {  // end of a chunk
      const bool first = kb < kBlocksPerChunk;
      const int64_t chunk = kb / kBlocksPerChunk;
      (void)first, (void)chunk;  // one of the two is unused per instantiation
#pragma unroll
      for (int i = 0; i < 2; ++i) {
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            if constexpr (SPLIT) {
              const int64_t n = n0 + wn * 32 + i * 16 + g + (e >= 2 ? 8 : 0);
              const int64_t m = m0 + wm * 32 + jj * 8 + 2 * q + (e & 1);
              if (n < p.N && m < p.M) part[(chunk * p.M + m) * p.N + n] = acc[i][jj][e];
            } else {
              tot[i][jj][e] = first ? acc[i][jj][e] : tot[i][jj][e] + acc[i][jj][e];
            }
            acc[i][jj][e] = 0.0f;
          }
        }
      }
    }
  }
  if constexpr (!SPLIT) {  // SPLIT blocks stored their chunk sums above
#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int64_t n = n0 + wn * 32 + i * 16 + g + (e >= 2 ? 8 : 0);
          const int64_t m = m0 + wm * 32 + jj * 8 + 2 * q + (e & 1);
          if (n >= p.N || m >= p.M) continue;
          float s = tot[i][jj][e];
          if (p.bias != nullptr) s += p.bias[n];
          p.out[m * p.out_row + n * p.out_col] = s;
        }
      }
    }
  }
}

// ---- GEMM, wide tiles: 128 weight rows x 128 tokens a block, 8 warps of 64 x 32 ----
//
// Same per-element sequence as GemmBf16Kernel (k32 blocks in order; per block mma step j = 0, 1,
// pieces lo first; chunk sums of 8 blocks added in chunk order), so the same bits. What changes
// is the work per shared-memory byte: a warp owns 4 x 4 mma tiles (64 rows x 32 tokens), so a
// k32 block costs it 8 + 4 T 16-byte shared loads for 8 T mma steps per tile column instead of
// 4 + 4 T for 4 T (the 32 x 32 warps were bound by shared-memory reads with T = 3). The token
// columns are walked one at a time (jj outer), so only one column's pieces are live in registers.
constexpr int kWBN = 128, kWBM = 128;
constexpr int kWAChunks = kWBN * 4;  // 16-byte chunks of a stage's A tile
constexpr int kWBChunks = kWBM * 4;  // ... of one piece's B tile

template <int T>
constexpr int WideStageChunks() {
  return kWAChunks + T * kWBChunks;
}

template <int T>
__device__ __forceinline__ void LoadWideStage(uint4* st, const MatmulParams& p,
                                              const uint16_t* planes, int64_t n0, int64_t m0,
                                              int64_t kb) {
  const int tid = threadIdx.x;
#pragma unroll
  for (int i = 0; i < kWAChunks / kGemmThreads; ++i) {
    const int c = tid + i * kGemmThreads, r = c / 4, cc = c % 4;
    const int64_t n = n0 + r, k = kb * 32 + cc * 8;
    const bool ok = n < p.N && k < p.K;
    CpAsync16(st + c, ok ? p.w + n * p.w_row_bytes + k * 2 : p.w, ok ? 16 : 0);
  }
#pragma unroll
  for (int t = 0; t < T; ++t) {
#pragma unroll
    for (int i = 0; i < kWBChunks / kGemmThreads; ++i) {
      const int c = tid + i * kGemmThreads, r = c / 4, cc = c % 4;
      const int64_t m = m0 + r, k = kb * 32 + cc * 8;
      const bool ok = m < p.M && k < p.K;
      CpAsync16(st + kWAChunks + t * kWBChunks + c, ok ? planes + (t * p.M + m) * p.K + k : planes,
                ok ? 16 : 0);
    }
  }
}

// V (lab variants, same bits): 0 = jj-outer, volatile mma; 1 = jj-outer, free mma; 2 = chunk
// totals in shared memory (frees 64 registers), every column's pieces loaded, steps ordered
// (j, t) outer so 16 independent mma steps issue back to back.
template <int T, int V>
__global__ void __launch_bounds__(kGemmThreads, 1)
    GemmWideBf16Kernel(MatmulParams p, const uint16_t* planes) {
  GridDepWait();
  AllowDependents();
  extern __shared__ uint4 smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, q = lane % 4, wn = warp % 2, wm = warp / 2;
  // V == 3: token tiles vary fastest over the grid, so the blocks in flight share weight tiles
  // (a wave reads a few weight tiles once and the x pieces, instead of most of the weight).
  const int64_t n0 = (V == 3 ? blockIdx.y : blockIdx.x) * int64_t(kWBN);
  const int64_t m0 = (V == 3 ? blockIdx.x : blockIdx.y) * int64_t(kWBM);
  const int64_t nkb = (p.K + 31) / 32;
  constexpr bool kTotSmem = V >= 2;
  constexpr int kTotRegs = kTotSmem ? 1 : 4;
  float acc[4][4][4] = {}, tot[kTotRegs][4][4] = {};
  // kTotSmem: [16 (i, jj)][256 threads] float4 after the pipeline stages (conflict-free).
  float4* tot_s = reinterpret_cast<float4*>(smem + kStages * WideStageChunks<T>());
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < nkb) LoadWideStage<T>(smem + s * WideStageChunks<T>(), p, planes, n0, m0, s);
    CpAsyncCommit();  // empty groups keep the wait count uniform
  }
  for (int64_t kb = 0; kb < nkb; ++kb) {
    CpAsyncWait<kStages - 2>();
    __syncthreads();  // stage kb landed for all; stage kb - 1 is free to overwrite
    const int64_t pf = kb + kStages - 1;
    if (pf < nkb)
      LoadWideStage<T>(smem + (pf % kStages) * WideStageChunks<T>(), p, planes, n0, m0, pf);
    CpAsyncCommit();
    const uint4* st = smem + (kb % kStages) * WideStageChunks<T>();
    uint4 ra[4][2];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int r = wn * 64 + i * 16 + g;
      ra[i][0] = st[r * 4 + q];
      ra[i][1] = st[(r + 8) * 4 + q];
    }
    if constexpr (kTotSmem) {
      uint4 rb[T][4];
#pragma unroll
      for (int t = 0; t < T; ++t) {
#pragma unroll
        for (int jj = 0; jj < 4; ++jj)
          rb[t][jj] = st[kWAChunks + t * kWBChunks + (wm * 32 + jj * 8 + g) * 4 + q];
      }
#pragma unroll
      for (int j = 0; j < 2; ++j) {
#pragma unroll
        for (int t = T - 1; t >= 0; --t) {
#pragma unroll
          for (int i = 0; i < 4; ++i) {
#pragma unroll
            for (int jj = 0; jj < 4; ++jj) {
              MmaFree(acc[i][jj], Word(ra[i][0], 2 * j), Word(ra[i][1], 2 * j),
                      Word(ra[i][0], 2 * j + 1), Word(ra[i][1], 2 * j + 1), Word(rb[t][jj], 2 * j),
                      Word(rb[t][jj], 2 * j + 1));
            }
          }
        }
      }
    } else {
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
        uint4 rb[T];
#pragma unroll
        for (int t = 0; t < T; ++t)
          rb[t] = st[kWAChunks + t * kWBChunks + (wm * 32 + jj * 8 + g) * 4 + q];
#pragma unroll
        for (int j = 0; j < 2; ++j) {
#pragma unroll
          for (int t = T - 1; t >= 0; --t) {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
              if constexpr (V == 0) {
                Mma(acc[i][jj], Word(ra[i][0], 2 * j), Word(ra[i][1], 2 * j),
                    Word(ra[i][0], 2 * j + 1), Word(ra[i][1], 2 * j + 1), Word(rb[t], 2 * j),
                    Word(rb[t], 2 * j + 1));
              } else {
                MmaFree(acc[i][jj], Word(ra[i][0], 2 * j), Word(ra[i][1], 2 * j),
                        Word(ra[i][0], 2 * j + 1), Word(ra[i][1], 2 * j + 1), Word(rb[t], 2 * j),
                        Word(rb[t], 2 * j + 1));
              }
            }
          }
        }
      }
    }
    if (kb % kBlocksPerChunk == kBlocksPerChunk - 1 || kb == nkb - 1) {  // end of a chunk
      const bool first = kb < kBlocksPerChunk;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) {
          if constexpr (kTotSmem) {
            float4* slot = tot_s + (i * 4 + jj) * kGemmThreads + threadIdx.x;
            float4 v = make_float4(acc[i][jj][0], acc[i][jj][1], acc[i][jj][2], acc[i][jj][3]);
            if (!first) {
              const float4 o = *slot;
              v = make_float4(o.x + v.x, o.y + v.y, o.z + v.z, o.w + v.w);
            }
            *slot = v;
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[i][jj][e] = 0.0f;
          } else {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              tot[i % kTotRegs][jj][e] =
                  first ? acc[i][jj][e] : tot[i % kTotRegs][jj][e] + acc[i][jj][e];
              acc[i][jj][e] = 0.0f;
            }
          }
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int jj = 0; jj < 4; ++jj) {
      float4 t4;
      if constexpr (kTotSmem) {
        t4 = tot_s[(i * 4 + jj) * kGemmThreads + threadIdx.x];  // this thread's own slots
      } else {
        t4 = make_float4(tot[i % kTotRegs][jj][0], tot[i % kTotRegs][jj][1],
                         tot[i % kTotRegs][jj][2], tot[i % kTotRegs][jj][3]);
      }
      const float tv[4] = {t4.x, t4.y, t4.z, t4.w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t n = n0 + wn * 64 + i * 16 + g + (e >= 2 ? 8 : 0);
        const int64_t m = m0 + wm * 32 + jj * 8 + 2 * q + (e & 1);
        if (n >= p.N || m >= p.M) continue;
        float s = tv[e];
        if (p.bias != nullptr) s += p.bias[n];
        p.out[m * p.out_row + n * p.out_col] = s;
      }
    }
  }
}

template <int T, int V>
cudaError_t LaunchWide(const MatmulParams& p, const uint16_t* planes, cudaStream_t stream) {
  static std::atomic<uint64_t> smem_set{0};
  const int smem = (kStages * WideStageChunks<T>() + (V >= 2 ? 16 * kGemmThreads : 0)) * 16;
  cudaError_t e = AllowDynamicSmem(GemmWideBf16Kernel<T, V>, smem, &smem_set);
  if (e != cudaSuccess) return e;
  const int64_t gm = (p.M + kWBM - 1) / kWBM, gn = (p.N + kWBN - 1) / kWBN;
  if ((V == 3 ? gn : gm) > 65535) return cudaErrorInvalidConfiguration;
  const dim3 grid = V == 3 ? dim3(static_cast<unsigned>(gm), static_cast<unsigned>(gn))
                           : dim3(static_cast<unsigned>(gn), static_cast<unsigned>(gm));
  LaunchK(GemmWideBf16Kernel<T, V>, grid, kGemmThreads, smem, stream, p, planes);
  return cudaGetLastError();
}

// Dynamic shared memory of the block kernel: chunk sums, GemvStageX's rows (PRO), x's pieces
// (XP, T pieces). pair (SWIGLU epilogue): the chunk sums of two members.
int64_t GemvSmemBytes(const MatmulParams& p, int splits, int pro, int xp_terms, bool pair = false) {
  const int64_t n_chunks = (p.K + 255) / 256;
  const int64_t per_block = (n_chunks + splits - 1) / splits * (pair ? 2 : 1);
  const int64_t staged = pro == kGemvProNone ? 0 : p.M * p.K;  // GemvStageX's rows
  return (per_block * 128 + staged) * 4 + xp_terms * p.M * GemvXpStride(p.M, p.K) * 16;
}

// TESSERA_CUDA_GEMV_PREF, a mask of kGemvPref* (GemvPrefetchTask of the warps' first round of
// chunks): 1 the first task before the wait in launches without a prologue, 2 the same in
// prologue (RMS_NORM / SWIGLU) launches, 4 the next task of a persistent block at the start of
// each task, 8 with an L2 evict_first policy; unset: the rule below. Same bits whatever the mask.
// Default (engine tg128 A/B, H100, 3 calls; lab/NOTES.md "Early weight fetch"): plain launches
// gain where the grid is one wave of full-chunk blocks with K >= 2048 (1B o/down: tg128 +2-4%)
// and lose elsewhere (8B half-chunk o/down -1%, 0.5B o and split-K down -3..-5%); prologue
// launches gain at K >= 4096 (8B q/k/v, gate/up: +1.7%) and lose below (0.5B -5%, 1B -1..-4%).
int GemvPref(const MatmulParams& p, bool half, int splits, int pro) {
  static const int mode = EnvInt("TESSERA_CUDA_GEMV_PREF", -1);
  if (mode >= 0) return mode;
  if (pro == kGemvProNone)
    return !half && splits == 1 && p.K >= 2048 ? kGemvPrefPlain | kGemvPrefEvictFirst : 0;
  return p.K >= 4096 ? kGemvPrefPro | kGemvPrefEvictFirst : 0;
}

// The RMS_NORM prologue from registers in one memory round trip (M = 1; GemvRmsStageRegs: blocks
// of 256 threads with K <= 4096, cu-dec18; GemvRmsStageRegs2: blocks of 128 .. 255 threads with
// K <= 2048, cu-dec18b: the 0.5B norm + q/k/v and norm + head; same bits).
// TESSERA_CUDA_GEMV_RMSREG=0 = the two-step prologue (GemvRmsScales + GemvStageX) everywhere,
// 1 = cu-dec18's rule (256 threads only), 2 (default) = both.
int GemvRmsRegs() {
  static const int mode = EnvInt("TESSERA_CUDA_GEMV_RMSREG", 2);
  return mode;
}

// cu23-small: the register prologues' norm weight before griddepcontrol.wait
// (kGemvPrefRmsEarly; only with GemvAux::pdl, which RunGemvGroup clears where a node of the
// execute writes the norm weight). TESSERA_CUDA_GEMV_RMSPRE=0: after the wait, as before.
bool GemvRmsPre() {
  static const int mode = EnvInt("TESSERA_CUDA_GEMV_RMSPRE", 1);
  return mode != 0;
}

// Lab variants of the block kernel (aux.variant; the lab's own copies of the numbers): half
// chunks in 8-warp blocks at 3 an SM (the plain loop), and the TMA weight ring with half / whole
// chunk units (aux.warps_per_sm = its configuration as below, where valid).
constexpr int kGemvHalf8 = 10, kGemvHalfTma = 11, kGemvFullTma = 12;

// TMA ring configuration, warps a block x 16 + slots a warp: the lab variant's, else
// TESSERA_CUDA_GEMV_TMA_CFG (e.g. 0x44), else 4 warps x 4 slots (half-chunk units, 80 KiB) or
// 4 x 2 (whole chunks, 72 KiB).
int GemvTmaCfg(const GemvAux& aux, bool half) {
  static const int env = [] {
    const char* v = std::getenv("TESSERA_CUDA_GEMV_TMA_CFG");
    return v == nullptr || *v == '\0' ? -1 : static_cast<int>(std::strtol(v, nullptr, 0));
  }();
  const auto ok = [](int c) {
    return c >= 0 && (c >> 4) >= 1 && (c >> 4) <= kTmaMaxWarps && (c & 15) >= 1 &&
           (c & 15) <= kTmaMaxStages;
  };
  if ((aux.variant == kGemvHalfTma || aux.variant == kGemvFullTma) && ok(aux.warps_per_sm))
    return aux.warps_per_sm;
  if (ok(env)) return env;
  return half ? 0x44 : 0x42;
}

// cu22-8b (defined below, with the other launch rules).
int GemvWholeMode(const MatmulParams& p, const GemvAux& aux, int64_t groups, int pro, bool pair,
                  int members, int terms);
int GemvO2Env();
bool GemvPbal();
bool GemvPbalSmall();
constexpr int kWholeTwo = 1, kWholeW8 = 2;
// cu22-head (defined below, with the other launch rules).
int GemvHeadMode(const MatmulParams& p, const GemvAux& aux, int64_t groups, int pro, bool pair,
                 int members, int terms, int splits);
int GemvHeadBps();
constexpr int kHeadPers = 1, kHeadNext = 2, kHeadTwo = 3, kHeadNoXp = 4;

template <int T, bool HALF, int PRO, bool XP, int PIPE = 0, bool LINES = false, bool ROPE = false>
cudaError_t Gemv(const MatmulParams& p, const GemvGroupArgs& b, int splits, const GemvAux& aux,
                 const GemvPrologue& pro, cudaStream_t stream, const GemvRopeKv* rk = nullptr) {
  static std::atomic<uint64_t> smem_set{0};
  const int n_chunks = static_cast<int>((p.K + 255) / 256);
  const bool pair = b.swiglu != nullptr || b.rg2 != 0;  // a task takes twice the chunks
  const int per_block = (n_chunks + splits - 1) / splits * (pair ? 2 : 1);  // most a block takes
  const int64_t groups = b.g0[b.n];
  // Fewer row blocks than ~2 waves of SMs: more warps per block keep enough loads in flight.
  // Paired tasks keep the unpaired warps' chunks per warp: up to twice the warps.
  // kGemvPipe8: 8 warps; kGemvPipeTma: GemvTmaCfg's.
  constexpr bool kPlain = PIPE == 0 || PIPE == kGemvPipeTwo;
  // cu22-8b: whole chunks, one row group a block of 8 warps (GemvWholeMode kWholeW8).
  const bool w8 = PIPE == 0 && !HALF && PRO == kGemvProNone && !pair &&
                  GemvWholeMode(p, aux, groups, PRO, pair, b.n, T) == kWholeW8;
  const int warps = std::min(per_block, PIPE == kGemvPipeTma ? GemvTmaCfg(aux, HALF) >> 4
                                        : (groups < 264 || pair) && kPlain && !w8 ? 16
                                                                                  : 8);
  int smem = static_cast<int>(GemvSmemBytes(p, splits, PRO, XP ? T : 0, pair));
  int pref = GemvPref(p, HALF, splits, PRO);
  // cu22-head: the small models' LM heads on a persistent grid (GemvHeadMode).
  const int head = T == 3 && !HALF && PRO == kGemvProNone && kPlain
                       ? GemvHeadMode(p, aux, groups, PRO, b.swiglu != nullptr, b.n, T, splits)
                       : 0;
  if (head == kHeadNext) pref |= kGemvPrefNext;
  // cu22-8b: TESSERA_CUDA_GEMV_O2=2: the o's two-row-group blocks without the first round's L2
  // prefetch before the PDL wait.
  if (PIPE == kGemvPipeTwo && p.K < 8192 && GemvO2Env() == 2) pref &= ~kGemvPrefPlain;
  if (PRO == kGemvProRms && GemvRmsRegs() >= 1) pref |= kGemvPrefRmsRegs;
  if (PRO == kGemvProRms && GemvRmsRegs() >= 2) pref |= kGemvPrefRmsRegs2;
  if (PRO == kGemvProRms && GemvRmsPre() && aux.pdl) pref |= kGemvPrefRmsEarly;
  if constexpr (PIPE == kGemvPipeTma) {  // the ring after the rest, 128-byte aligned
    const int stages = GemvTmaCfg(aux, HALF) & 15, off = (smem + 127) / 128 * 128;
    smem = off + warps * stages * TmaStageBytes(HALF);
    pref |= stages << 8 | (off / 16) << 12;
  }
  const auto kernel = GemvBf16Kernel<T, HALF, PRO, XP, PIPE, LINES, ROPE>;
  cudaError_t e = AllowDynamicSmem(kernel, smem, &smem_set);
  if (e != cudaSuccess) return e;
  if (groups == 0) return cudaSuccess;
  const int64_t tasks = b.rg2 != 0 ? (groups + 1) / 2 : (pair ? b.g0[1] : groups) * splits;
  int64_t grid = tasks;
  if ((PRO != kGemvProNone || head != 0) && aux.sms > 0) {  // persistent: the blocks that fit
    int per_sm = 0;
    e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, warps * 32, smem);
    if (e != cudaSuccess) return e;
    if (head != 0 && GemvHeadBps() > 0) per_sm = std::min(per_sm, GemvHeadBps());
    const int64_t cap = int64_t{std::max(per_sm, 1)} * aux.sms;
    grid = std::min<int64_t>(tasks, cap);
    // cu22-8b, GemvPbal (M = 1, exact mode, K >= 4096: the 8B's prologue launches, as measured):
    // as many blocks as give every block the same number of tasks (+-1) in the fewest rounds (8B
    // norm + gate/up 1792 tasks: 256 blocks x 7 instead of 264, 208 of them with 7 and 56 with 6;
    // norm + head 259 x 31).
    // cu23-small (GemvPbalSmall): also RMS_NORM-prologue launches with 2048 <= K < 4096.
    if (T == 3 && p.M == 1 && tasks > cap &&
        ((GemvPbal() && p.K >= 4096) ||
         (GemvPbalSmall() && PRO == kGemvProRms && p.K >= 2048 && p.K < 4096))) {
      const int64_t rounds = (tasks + cap - 1) / cap;
      grid = (tasks + rounds - 1) / rounds;
    }
  }
  GemvRopeArg<ROPE> ra{};
  if constexpr (ROPE) ra = *rk;
  (void)rk;
  LaunchK(kernel, static_cast<unsigned>(grid), warps * 32, smem, stream, p, b, n_chunks, splits,
          aux.partials, aux.counters, pro, tasks, pref, ra);
  return cudaGetLastError();
}

// x pre-split once per block (XP, 3-piece GEMVs only: one piece costs a single cvt a pair):
// TESSERA_CUDA_GEMV_XP=0 never, =1 whenever the pieces fit (the lab's bit checks), =2 the default
// and plain whole-chunk launches at any K; default for full-chunk launches with K >= 4096 (8B
// gate/up 97.7 -> 87.1 us, head 377 -> 352 us on an H100) and, cu21-gemv, plain whole-chunk ones
// below K = 2048 or with split-K (without XP each warp splits its x into pieces itself, ~1,460
// instructions a warp for one chunk at 1 warp a scheduler: the 0.5B o / down's fixed cost; lab
// 0.5B o + residual 6.0 -> 5.2 us, down + residual 12.0 -> 9.5 us); not for half chunks (64
// registers: the pieces' loads spill, and 8B q/k/v, o and down got slower: engine tg128 132.4 ->
// 125.1 with XP everywhere); never when the pieces would cost the half-chunk kernel its second
// block an SM.
bool GemvXpOn(const MatmulParams& p, bool half, int splits, int pro, bool pair = false) {
  static const int mode = [] {
    const char* v = std::getenv("TESSERA_CUDA_GEMV_XP");
    return v == nullptr ? -1 : std::atoi(v);
  }();
  // cu21-gemv: also plain whole-chunk launches below K = 2048 and split-K ones, each split-K
  // block staging only its own chunks' share (the 0.5B o, down and head: engine 0.5B tg128
  // +4.5%); =2: at any K (also the 1B o, and the 1B head: see below).
  // cu22-small: and below K = 4096 where the grid is one wave (fewer than 264 row groups: the 1B
  // o). Time stamps in the engine (lab/NOTES.md, twenty-second session): XP takes the 1B o from
  // 8.1 to 6.5 us there too; =2 also put the 1B head (8,016 blocks, many waves) on XP, +25 us,
  // which is why =2 measured level. TESSERA_CUDA_GEMV_XP1W=0: without this clause.
  static const int one_wave = EnvInt("TESSERA_CUDA_GEMV_XP1W", 1);
  const bool wave1 = one_wave != 0 && p.K < 4096 && (p.N + 15) / 16 < 264;
  if ((mode < 0 || mode == 2) && !half && !pair && pro == kGemvProNone &&
      (mode == 2 || splits > 1 || p.K < 2048 || wave1))
    return GemvSmemBytes(p, splits, pro, 3, pair) <= 200 * 1024;
  // cu21-qkv: and whole-chunk RMS_NORM-prologue launches below K = 2048 (the 0.5B norm + q/k/v,
  // 4 chunks, one a warp): without XP each warp splits its x per k32 block, a long unrolled
  // chain that a cold SM's instruction cache fetches piece by piece (ncu: 31% of that launch's
  // stall samples were no_inst); with it the loop is loads + mma. The kernel instantiation is
  // the one the 8B gate/up already runs (its code unchanged); same mma operands, same bits.
  if ((mode < 0 || mode == 2) && !half && !pair && pro == kGemvProRms && splits == 1 && p.K < 2048)
    return GemvSmemBytes(p, splits, pro, 3, pair) <= 200 * 1024;
  // Split-K blocks use a share of the chunks: staging all of x would not pay (0.5B down).
  if (mode == 0 || ((mode < 0 || mode == 2) && (p.K < 4096 || half || splits > 1))) return false;
  return GemvSmemBytes(p, splits, pro, 3, pair) <= (half ? 112 : 200) * 1024;
}

// Block-kernel choice per launch (cuda-gemv; same bits whichever runs). TESSERA_CUDA_GEMV_PIPE:
// unset = the rule below; 0 = the plain kernels everywhere (half chunks for 145..1024 row
// groups, 16-warp blocks under 264 of them); else a mask: 4 half-chunk launches in 8-warp
// blocks at 3 an SM (kGemvPipe8), 8 half-chunk launches through the TMA ring (kGemvPipeTma),
// 16 full-chunk launches through the TMA ring. Lab variants kGemvHalf / kGemvFull force the
// plain kernels, kGemvHalf8 / kGemvHalfTma / kGemvFullTma theirs.
// Rule (lab + engine tg128, H100, lab/NOTES.md "Rolled weight loads" and "TMA weight ring"):
// kGemvPipe8 for RMS_NORM-prologue launches with half chunks (8B norm + q/k/v 29.8 -> 24.9 us,
// 1B norm + q/k/v and + gate/up -5%, 0.5B norm + gate/up 15.2 -> 13.4), also made to take half
// chunks where a full-chunk one would have K < 2048 and > 1024 row groups (0.5B norm + head);
// for plain half-chunk launches with 4096 <= K < 8192 (8B o: 19.0 -> 18.2 us); the plain 16-warp
// half kernel for long K (8B down, 1B down lost 4-20%) and SWIGLU prologues.
constexpr int kGemvPipeBlocks8 = 4, kGemvPipeTmaHalf = 8, kGemvPipeTmaFull = 16;
int GemvPipeEnv() {
  static const int mode = EnvInt("TESSERA_CUDA_GEMV_PIPE", -1);
  return mode;
}

// Whole chunks (and so, by GemvXpOn, x pre-split) for plain launches with K >= 8192 and one wave
// of 16-warp blocks (145 .. 263 row groups: the 8B down projection, 256). cu-dec16, H100 lab
// (M = 1, PDL, weights past L2): 8B down 53.1 us (half chunks, 2 blocks an SM) -> 49.8 us (whole
// chunks + XP, one 16-warp block an SM, two waves). TESSERA_CUDA_GEMV_DOWNFULL=0: half chunks as
// before. Same bits (the block kernel's chunk order whichever loads it takes).
bool GemvDownFull(const MatmulParams& p, int64_t groups, int pro, bool pair) {
  static const int mode = EnvInt("TESSERA_CUDA_GEMV_DOWNFULL", 1);
  return mode != 0 && GemvPipeEnv() < 0 && !pair && pro == kGemvProNone && p.K >= 8192 &&
         groups > 144 && groups < 264 && GemvXpOn(p, false, 1, pro);  // only with the XP
}

// Two row groups a block for GemvDownFull's launches at M = 1 (GemvGroupArgs::rg2, PIPE
// kGemvPipeTwo): the 8B down's 56 chunks a row group left the last of a 16-warp block's 4 rounds
// on half its warps, and its 256 blocks ran in two waves (132 + 124: 8 rounds an SM); 112 chunks
// a block are 7 rounds on every warp, 128 blocks one wave (7 rounds an SM). Needs the doubled
// chunk sums next to the x pieces in shared memory (M = 1: 140 KiB). cu-dec16b, H100 lab (M = 1,
// PDL): 8B down 50.0 -> 46.1 us; engine 8B tg128 +1.8%. TESSERA_CUDA_GEMV_DOWN2=0: one row group
// a block as before. Same bits: each chunk's code and each row group's chunk-order combine
// unchanged. (As a runtime branch inside the shared whole-chunk kernel it cost the 1B's down
// 16.9 -> 17.4 us: hence its own instantiation.)
bool GemvDown2(const MatmulParams& p, const GemvAux& aux, int64_t groups, int pro, bool pair,
               int members, int splits) {
  static const int mode = EnvInt("TESSERA_CUDA_GEMV_DOWN2", 1);
  return mode != 0 && aux.variant == 0 && members == 1 && splits == 1 &&
         GemvDownFull(p, groups, pro, pair) && GemvXpOn(p, false, 1, pro, true);
}

// cu22-8b: whole chunks for the 8B o at M = 1 in exact mode (3 pieces: the x pre-split; plain,
// one member, 4096 <= K < 8192, 145 .. 263 row groups, the engine's rule: aux.variant 0,
// TESSERA_CUDA_GEMV_PIPE unset). Same bits whichever is taken: the block kernel's per-chunk code
// and each row group's chunk-order combine, whatever block or warp takes a chunk (GemvDown2's
// argument). TESSERA_CUDA_GEMV_O2: 0 = half chunks in 8-warp blocks, 3 an SM (GemvPipeMode's
// kGemvPipe8 + GemvXpPlain, before); 1 (default) = two row groups a 16-warp block with x pre-split
// (GemvDown2's kernel, kWholeTwo: 128 blocks, 2 chunks a warp) and, as every plain whole-chunk
// launch from K = 2048, the first row group's weights asked into L2 before the PDL wait; 2 = the
// same without that prefetch; 3 = whole chunks, one row group a block of 8 warps (kWholeW8: 256
// blocks, 2 an SM). H100, lab (M = 1, PDL, residual, weights past L2): 8B o + residual 18.9 -> 16.8
// us (2: 18.4, 3: 16.7); engine 8B tg128 +0.9% (1) / +0.4% (3) over two -r 1 runs each, +0.2-0.4%
// in old / new pairs with TESSERA_CUDA_GEMV_PBAL=1 beside it (lab/NOTES.md, cu22-8b).
int GemvO2Env() {
  static const int mode = EnvInt("TESSERA_CUDA_GEMV_O2", 1);
  return mode;
}

int GemvWholeMode(const MatmulParams& p, const GemvAux& aux, int64_t groups, int pro, bool pair,
                  int members, int terms) {
  const int o2 = GemvO2Env();
  if (o2 < 1 || o2 > 3 || terms != 3 || aux.variant != 0 || GemvPipeEnv() >= 0 || pair ||
      pro != kGemvProNone || members != 1 || p.M != 1 || groups <= 144 || groups >= 264 ||
      p.K < 4096 || p.K >= 8192)
    return 0;
  if (!GemvXpOn(p, false, 1, pro, o2 != 3)) return 0;  // x pre-split (and, 1/2, 2 x chunk sums)
  return o2 == 3 ? kWholeW8 : kWholeTwo;
}

// cu22-8b, TESSERA_CUDA_GEMV_PBAL=1 (lab knob; unset = the 8B grid as before, 0 = also cu23-small's
// off): persistent (prologue) grids at M = 1 in exact mode with K >= 4096 get as many blocks as
// give every block the same number of tasks (+-1) in the fewest rounds (Gemv). Same bits (a task's
// code does not depend on its block). H100: 8B norm + gate/up 86.3 -> 85.6-86.0 us, norm + head
// 362.6 -> 362.0 in the lab; engine 8B tg128 +0.5% alone over two -r 1 runs, and O2 + PBAL measured
// no better than O2 alone: not on by default (lab/NOTES.md, cu22-8b).
bool GemvPbal() {
  static const int mode = EnvInt("TESSERA_CUDA_GEMV_PBAL", 0);
  return mode == 1;
}

// cu23-small: the same balance for RMS_NORM-prologue launches with 2048 <= K < 4096 (M = 1, exact
// mode: the 1B norm + gate/up, 1,024 tasks: 342 blocks x 3 instead of 396 blocks of which 232
// take a third task alone at the end; no 0.5B or 8B launch). H200: time stamps in the engine
// 27.7 -> 26.5 us (tail 4.2 -> 2.5), lab 27.3 -> 26.2 us, 1B tg128 +1.6% (lab/NOTES.md,
// cu23-small). On by default; TESSERA_CUDA_GEMV_PBAL=0: the grid as before. Same bits.
bool GemvPbalSmall() {
  static const int mode = EnvInt("TESSERA_CUDA_GEMV_PBAL", -1);
  return mode != 0;
}

// cu22-head: the LM heads of the small models (plain launches, one member, M <= 8, exact mode,
// whole chunks, no split-K, N >= 32768: the 0.5B's 151,936 x 896 and the 1B's 128,256 x 2048; the
// 8B's head is a norm + head prologue launch, persistent already). Before, such a launch was one
// block a row group (0.5B 9,496 blocks of 4 warps, 1B 8,016 of 8: ~18 / ~30 waves), each block
// loading one round of chunks and then combining and storing, and the 1B's without the x
// pre-split (XP staged per block in each of 30 waves cost +25 us, cu22-small). Modes
// (TESSERA_CUDA_GEMV_HEAD): 0 = before; 1 = a persistent grid (the blocks that fit the card, each
// looping over row groups like the prologue launches) with x pre-split once per block; 2 = 1 and
// the next task's first round asked into L2 at each task's start (kGemvPrefNext); 3 = 1 with two
// row groups a task (GemvDown2's kernel, b.rg2); 4 = 1 without forcing XP (the 1B's K = 2048 keeps
// its plain x split). Unset: 2 from K = 2048 (the 1B head), 0 below (the 0.5B head, already at
// 0.95 of copy in the lab, lost 4-13 us under 1-3). H100 (lab/NOTES.md, cu22-head): lab 1B head
// 204.6 us (0.86 of copy) -> 187.4 (1), 193.6 (2), 190.4 (3), 202.8 (4); engine 1B tg128 over
// two -r 2 runs each: before 639.1, 1: 634.8, 2: 653.0, 3: 650.6 t/s. TESSERA_CUDA_GEMV_HEAD_BPS=B
// (lab knob): at most B blocks an SM. Same bits whichever: a task's code does not depend on its
// block (the prologue launches' argument), and every kernel instantiation here is one that other
// launches already run.
int GemvHeadMode(const MatmulParams& p, const GemvAux& aux, int64_t groups, int pro, bool pair,
                 int members, int terms, int splits) {
  static const int env = EnvInt("TESSERA_CUDA_GEMV_HEAD", -1);
  const int mode = env >= 0 ? env : (p.K >= 2048 ? kHeadNext : 0);
  if (mode < kHeadPers || mode > kHeadNoXp || terms != 3 || aux.variant != 0 || aux.sms <= 0 ||
      GemvPipeEnv() >= 0 || pair || pro != kGemvProNone || members != 1 || splits != 1 ||
      p.M > kGemvMaxRows || p.N < 32768 || groups * 16 < 32768)
    return 0;
  if (mode != kHeadNoXp && GemvSmemBytes(p, 1, pro, 3, mode == kHeadTwo) > 200 * 1024) return 0;
  return mode;
}

int GemvHeadBps() {
  static const int bps = EnvInt("TESSERA_CUDA_GEMV_HEAD_BPS", 0);
  return bps;
}

// Half-chunk loads for this launch? (LaunchGemvBf16Fused; pair: the SWIGLU-epilogue group.)
bool GemvHalfChunks(const MatmulParams& p, const GemvAux& aux, int64_t groups, int pro, bool pair,
                    int members, int terms) {
  if (aux.variant == kGemvHalf || aux.variant == kGemvHalf8 || aux.variant == kGemvHalfTma)
    return true;
  if (aux.variant != 0) return false;
  if (GemvDownFull(p, groups, pro, pair)) return false;
  if (GemvWholeMode(p, aux, groups, pro, pair, members, terms) != 0) return false;
  // Half-chunk loads (two blocks an SM) win while the grid is one to a few waves of SMs (lab,
  // H100: 4096 x 4096 0.51 -> 0.64 of copy, 4096 x 14336 0.66 -> 0.76); full chunks when the
  // grid fits the SMs one block each (0.5B 896 rows: 5.1 vs 5.7 us) and from ~4 waves on
  // (14336 x 4096 x 2 gate/up: 0.84 vs 0.81; heads: 0.94 vs 0.88).
  if (groups > 144 && groups <= 1024) return true;
  return GemvPipeEnv() < 0 && !pair && pro == kGemvProRms && groups > 1024 && p.K < 2048;
}

// GemvBf16Kernel's PIPE for this launch (0, kGemvPipe8, kGemvPipeTma).
int GemvPipeMode(const MatmulParams& p, const GemvAux& aux, bool half, int pro) {
  if (aux.variant == kGemvHalf8) return half ? kGemvPipe8 : 0;
  if (aux.variant == kGemvHalfTma || aux.variant == kGemvFullTma) return kGemvPipeTma;
  if (aux.variant != 0) return 0;
  const int m = GemvPipeEnv();
  if (m < 0) {
    if (pro == kGemvProRms) return half ? kGemvPipe8 : 0;
    return pro == kGemvProNone && half && p.K >= 4096 && p.K < 8192 ? kGemvPipe8 : 0;
  }
  if ((m & (half ? kGemvPipeTmaHalf : kGemvPipeTmaFull)) != 0) return kGemvPipeTma;
  return half && (m & kGemvPipeBlocks8) != 0 ? kGemvPipe8 : 0;
}

// The TMA ring's launch fits the shared memory and the device has TMA (compute capability 9+;
// below it the ring traps), else the plain kernel runs.
bool GemvTmaFits(const MatmulParams& p, const GemvAux& aux, int splits, int pro, bool half,
                 int xp_terms) {
  if (CurrentDeviceAttr(cudaDevAttrComputeCapabilityMajor) < 9) return false;
  const int64_t n_chunks = (p.K + 255) / 256, per_block = (n_chunks + splits - 1) / splits;
  const int cfg = GemvTmaCfg(aux, half);
  const int64_t warps = std::min<int64_t>(per_block, cfg >> 4);
  const int64_t rest = (GemvSmemBytes(p, splits, pro, xp_terms) + 127) / 128 * 128;
  return rest + warps * (cfg & 15) * TmaStageBytes(half) <= 220 * 1024;
}

// x pre-split also for plain launches (no prologue, no split-K) of the 8-warp half-chunk kernel
// with K >= 4096 (the 8B o projection): 85 registers leave room for the pieces' loads (the
// 64-register 16-warp half kernel spills: 8B down 53 -> 64 us with XP). cu-dec16, H100 lab (M =
// 1, PDL): 8B o 19.5 -> 18.4 us. (Whole-chunk launches from K = 2048, 1B o 9.1 -> 7.4 us in the
// lab, measured level on the 1B's tg128 over four rounds: not taken.) TESSERA_CUDA_GEMV_XP2=0:
// off; TESSERA_CUDA_GEMV_XP set: GemvXpOn alone decides. Same words, same bits (GemvSplitX).
bool GemvXpPlain(const MatmulParams& p, bool half, int splits, int pro, bool pair, int pipe) {
  static const int env_xp = EnvInt("TESSERA_CUDA_GEMV_XP", -1);
  static const int mode = EnvInt("TESSERA_CUDA_GEMV_XP2", 1);
  if (mode == 0 || (env_xp >= 0 && env_xp != 2) || pair || pro != kGemvProNone || splits > 1)
    return false;
  if (!half || pipe != kGemvPipe8 || p.K < 4096) return false;
  return GemvSmemBytes(p, splits, pro, 3, pair) <= 64 * 1024;  // keeps 3 blocks an SM
}

// cu23-b8: the weights loaded along whole lines (GemvLoadLines; GemvTask's LINES) in the 8B's
// batch-1 decode launches. TESSERA_CUDA_GEMV_LINES: unset = 32, the card rule (the lead's H200
// call, lab/lead23b_gpu.sh: 8B tg128 187.9 -> 192.2 t/s, +2.3%, same bits); 0 = off (before);
// 32 = the card rule: 15 on cards whose peak DRAM bandwidth is
// at least 4,400 GB/s (DevicePeakDramGBs: the H200, not the H100 SXM / NVL at 3,350-3,900, whose
// launches stay as they were), else 0; otherwise a mask of launch kinds, in exact mode (3 pieces)
// with the engine's rule (aux.variant 0), M = 1 and K >= 4096 unless 16 is set: 1 the plain
// two-row-group launches (GemvDown2 / GemvWholeMode kWholeTwo: the 8B o and down), 2 whole-chunk
// RMS_NORM + SWIGLU-pair launches (the 8B norm + gate/up), 4 half-chunk RMS_NORM launches in
// 8-warp blocks (the 8B norm + q/k/v; ptxas: 64 bytes of spill stores at the 80-register cap), 8
// other whole-chunk RMS_NORM launches with x pre-split (the 8B norm + head); 16 any M and K (the
// lab's bit checks). Same bits whichever: every lane ends with LoadW8's words.
int GemvLinesMode() {
  static const int mode = [] {
    const int env = EnvInt("TESSERA_CUDA_GEMV_LINES", 32);
    if (env != 32) return env < 0 ? 0 : env;
    return DevicePeakDramGBs() >= 4400 ? 15 : 0;
  }();
  return mode;
}

bool GemvLinesOn(const MatmulParams& p, const GemvGroupArgs& b, const GemvAux& aux, bool half,
                 int pro, bool pair, bool xp, int pipe) {
  const int m = GemvLinesMode();
  if (m == 0 || aux.variant != 0 || ((m & 16) == 0 && (p.M != 1 || p.K < 4096))) return false;
  for (int j = 0; j < b.n; ++j) {  // GemvLoadLines' 32-bit row offsets (12 rows)
    if (b.o[j].w_row_bytes > (int64_t{1} << 26)) return false;
  }
  const bool rg2 = b.rg2 != 0;
  if (!half && pro == kGemvProNone) return (m & 1) != 0 && rg2 && xp && pipe == 0;
  if (pro != kGemvProRms) return false;
  if (half) return (m & 4) != 0 && pipe == kGemvPipe8 && !xp;
  return pipe == 0 && xp && (m & (pair ? 2 : 8)) != 0;
}

template <int T, bool HALF, int PRO>
cudaError_t GemvXp(const MatmulParams& p, const GemvGroupArgs& b, int splits, const GemvAux& aux,
                   const GemvPrologue& pro, cudaStream_t stream, const GemvRopeKv* rk = nullptr) {
  // cu24-chain: the rope epilogue's two instantiations (LaunchGemvBf16Fused checked
  // GemvRopeKvConfig: the kernel the launch would run without it, plus the epilogue).
  if constexpr (T == 3 && PRO == kGemvProRms) {
    if (rk != nullptr) {
      if constexpr (HALF) {
        return Gemv<T, HALF, PRO, false, kGemvPipe8, false, true>(p, b, splits, aux, pro, stream,
                                                                  rk);
      } else {
        return Gemv<T, HALF, PRO, true, 0, false, true>(p, b, splits, aux, pro, stream, rk);
      }
    }
  }
  if (rk != nullptr) return cudaErrorNotSupported;
  const bool pair = b.swiglu != nullptr;  // the plain loop only (GemvTask's pairing)
  const int pipe = pair ? 0 : GemvPipeMode(p, aux, HALF, PRO);
  const int head =
      HALF ? 0 : GemvHeadMode(p, aux, b.g0[b.n], PRO, pair, b.n, T, splits);  // cu22-head
  const bool xp = T == 3 && (GemvXpOn(p, HALF, splits, PRO, pair) ||
                             (aux.variant == 0 && GemvXpPlain(p, HALF, splits, PRO, pair, pipe)) ||
                             (head != 0 && head != kHeadNoXp));
  // cu23-b8: whole-line weight loads (GemvLinesOn), their own instantiations (the other
  // launches keep their code).
  const bool lines = T == 3 && GemvLinesOn(p, b, aux, HALF, PRO, pair, xp, pipe);
  switch (pipe) {
    case kGemvPipe8:  // the plain loop; XP by default only where GemvXpPlain takes it (8B o)
      if constexpr (HALF) {
        if constexpr (T == 3 && PRO == kGemvProRms) {
          if (lines)
            return Gemv<T, HALF, PRO, false, kGemvPipe8, true>(p, b, splits, aux, pro, stream);
        }
        if (xp) return Gemv<T, HALF, PRO, true, kGemvPipe8>(p, b, splits, aux, pro, stream);
        return Gemv<T, HALF, PRO, false, kGemvPipe8>(p, b, splits, aux, pro, stream);
      }
      break;
    case kGemvPipeTma:
      // x pre-split wherever it fits: the ring holds no registers, so the pieces' loads cost
      // none of the half-chunk kernel's (its 8-warp SMs need the fewer instructions more).
      if (T == 3 && GemvTmaFits(p, aux, splits, PRO, HALF, 3))
        return Gemv<T, HALF, PRO, true, kGemvPipeTma>(p, b, splits, aux, pro, stream);
      if (!GemvTmaFits(p, aux, splits, PRO, HALF, 0)) break;
      return Gemv<T, HALF, PRO, false, kGemvPipeTma>(p, b, splits, aux, pro, stream);
    default: break;
  }
  if constexpr (!HALF && PRO == kGemvProNone) {  // GemvDown2's launches (b.rg2)
    if constexpr (T == 3) {
      if (lines)
        return Gemv<T, HALF, PRO, true, kGemvPipeTwo, true>(p, b, splits, aux, pro, stream);
    }
    if (b.rg2 != 0 && xp)
      return Gemv<T, HALF, PRO, true, kGemvPipeTwo>(p, b, splits, aux, pro, stream);
    if (b.rg2 != 0) return Gemv<T, HALF, PRO, false, kGemvPipeTwo>(p, b, splits, aux, pro, stream);
  }
  if constexpr (T == 3 && !HALF && PRO == kGemvProRms) {
    if (lines) return Gemv<T, HALF, PRO, true, 0, true>(p, b, splits, aux, pro, stream);
  }
  if (xp) return Gemv<T, HALF, PRO, true>(p, b, splits, aux, pro, stream);
  return Gemv<T, HALF, PRO, false>(p, b, splits, aux, pro, stream);
}

template <int T, bool HALF>
cudaError_t GemvPro(const MatmulParams& p, const GemvGroupArgs& b, int splits, const GemvAux& aux,
                    const GemvPrologue& pro, cudaStream_t stream, const GemvRopeKv* rk = nullptr) {
  if (rk != nullptr && pro.kind != kGemvProRms) return cudaErrorNotSupported;
  switch (pro.kind) {
    case kGemvProRms: return GemvXp<T, HALF, kGemvProRms>(p, b, splits, aux, pro, stream, rk);
    case kGemvProSwiglu: return GemvXp<T, HALF, kGemvProSwiglu>(p, b, splits, aux, pro, stream);
    default: return GemvXp<T, HALF, kGemvProNone>(p, b, splits, aux, pro, stream);
  }
}

// Blocks per row group of the split-K block kernel: enough to reach aux.split_blocks blocks, at
// least one chunk each; 1 (no split) without the counters or a target, and for K < 2048 (the
// cross-block combine costs more than a few chunks a block save). The caller checks for the
// partials scratch.
int GemvSplits(const MatmulParams& p, int64_t groups, const GemvAux& aux) {
  const int64_t n_chunks = (p.K + 255) / 256;
  if (GemvIsStream(aux) || aux.split_blocks <= 0 || aux.counters == nullptr || groups <= 0 ||
      groups >= aux.split_blocks || groups > aux.n_counters || n_chunks < 8 ||
      (aux.split_max_groups > 0 && groups > aux.split_max_groups))
    return 1;
  return static_cast<int>(std::min<int64_t>(n_chunks, (aux.split_blocks + groups - 1) / groups));
}

// Grid of the streaming GEMV: about `warps_per_sm` warps on every SM, each taking an equal
// contiguous share of the tasks.
template <int T, int WARPS, int S>
cudaError_t GemvStream(const MatmulParams& p, const GemvGroupArgs& b, const GemvAux& aux,
                       cudaStream_t stream) {
  static std::atomic<uint64_t> smem_set{0};
  constexpr int kSmem = WARPS * S * 64 * 16;
  cudaError_t e = AllowDynamicSmem(GemvStreamKernel<T, WARPS, S>, kSmem, &smem_set);
  if (e != cudaSuccess) return e;
  const int C = static_cast<int>((p.K + 255) / 256);
  const int64_t tasks = b.g0[b.n] * C;
  if (tasks * kBlocksPerChunk > (int64_t{1} << 31) - 1) return cudaErrorInvalidConfiguration;
  const int64_t target = std::max<int64_t>(1, int64_t{aux.sms} * aux.warps_per_sm);
  const int64_t tpw = (tasks + target - 1) / target;
  const int64_t warps = (tasks + tpw - 1) / tpw;
  const int64_t blocks = (warps + WARPS - 1) / WARPS;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(blocks));
  cfg.blockDim = dim3(WARPS * 32);
  cfg.dynamicSmemBytes = kSmem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = PdlLaunches() ? 1 : 0;
  const bool early = aux.pdl && PdlLaunches();
  return cudaLaunchKernelEx(&cfg, GemvStreamKernel<T, WARPS, S>, p, b, C, tasks,
                            static_cast<int>(tpw), aux.partials, aux.counters, early);
}

template <int T>
cudaError_t GemvStreamVariant(const MatmulParams& p, const GemvGroupArgs& b, const GemvAux& aux,
                              cudaStream_t stream) {
  switch (aux.variant) {
    case 2: return GemvStream<T, 4, 4>(p, b, aux, stream);
    case 3: return GemvStream<T, 8, 6>(p, b, aux, stream);
    case 4: return GemvStream<T, 4, 12>(p, b, aux, stream);
    default: return GemvStream<T, 4, 8>(p, b, aux, stream);
  }
}

int64_t RowGroups(const GemvGroup& grp) {
  int64_t r = 0;
  for (int j = 0; j < grp.n; ++j) r += (grp.o[j].N + 15) / 16;
  return r;
}

// GEMM kernel choice (same bits whichever runs): TESSERA_CUDA_GEMM=narrow (128 x 64 tiles),
// wide0 .. wide3 (128 x 128 tile variants on every M), tiled0 .. tiled5 (k_gemm_bf16.cu's
// configurations), old (the choice before k_gemm_bf16.cu); unset = auto: k_gemm_bf16.cu's choice
// (GemmTiledAuto), else wide3 where it saves enough waves (WideTilePays; never for M <= 64, the
// narrow tile's height), else narrow. Measured (H100, M = 2048, terms = 3): narrow 62.6 TFLOP/s;
// wide0/wide1 62 (255 registers, spills); wide2/wide3 85-89; terms = 1: 105 -> 166-172 (README
// "Prefill pass").
constexpr int kGemmAuto = 3, kGemmForce = 0x100, kGemmTiled = 0x200;
int GemmVariant() {
  static const int variant = [] {
    const char* v = std::getenv("TESSERA_CUDA_GEMM");
    if (v == nullptr || *v == '\0') return kGemmAuto;
    if (std::strcmp(v, "narrow") == 0) return -1;
    if (std::strcmp(v, "old") == 0) return kGemmAuto + 1;  // wide3 / narrow by waves, no tiled
    if (std::strncmp(v, "wide", 4) == 0 && v[4] >= '0' && v[4] <= '3')
      return kGemmForce | (v[4] - '0');
    if (std::strncmp(v, "tiled", 5) == 0 && v[5] >= '0' && v[5] <= '9')
      return kGemmTiled | (v[5] - '0');
    return kGemmAuto;
  }();
  return variant;
}

// Auto choice between the tiles by waves of blocks over the SMs: the wide tile does ~1.46x a
// narrow block's time per block (H100, README "Prefill pass"), so it pays only when it saves
// enough waves. Small M on a narrow weight (0.5B/1B at pp512: 28-64 wide blocks for 132 SMs)
// stays narrow; 8B and long prompts go wide.
bool WideTilePays(const MatmulParams& p) {
  const int sms = DeviceSms();
  if (p.M <= kBM) return false;
  if (sms <= 0) return true;
  const auto waves = [&](int64_t bm, int64_t bn) {
    const int64_t blocks = ((p.M + bm - 1) / bm) * ((p.N + bn - 1) / bn);
    return static_cast<double>((blocks + sms - 1) / sms);
  };
  return waves(kWBM, kWBN) * 1.46 <= waves(kBM, kBN);
}

// out[m, n] = ((c0 + c1) + c2 ...) + bias over the chunk sums part[c][m][n] (GemmBf16Kernel
// SPLIT): the canonical order's combine, so the same bits as the unsplit kernels.
__global__ void GemmCombineKernel(MatmulParams p, const float* part, int n_chunks) {
  GridDepWait();
  AllowDependents();
  const int64_t mn = p.M * p.N;
  for (int64_t u = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; u < mn;
       u += int64_t(gridDim.x) * blockDim.x) {
    const int64_t m = u / p.N, n = u % p.N;
    float s = part[u];
    for (int c = 1; c < n_chunks; ++c) s += part[c * mn + u];
    if (p.bias != nullptr) s += p.bias[n];
    p.out[m * p.out_row + n * p.out_col] = s;
    // The fused residual ADD (launch.h MatmulParams::res; cuda-agg3): the ADD kernel's one add.
    if (p.res_out != nullptr) p.res_out[m * p.res_out_row + n] = p.res[m * p.res_row + n] + s;
  }
}

constexpr uint64_t kSplitPartialCap = uint64_t{64} << 20;  // bytes of chunk sums, else no split

// Chunks a block of the split GEMM takes (0: no split). Splits when the narrow kernel's grid
// fills under half the SMs (M = 16 .. 64 decode batches: 4 blocks for N = 512, each walking all
// of K alone), aiming at ~4 blocks an SM; TESSERA_CUDA_GEMM_SPLITK=0 turns it off.
int GemmSplitChunksPerBlock(const MatmulParams& p) {
  static const bool on = EnvFlag("TESSERA_CUDA_GEMM_SPLITK", true);
  const int sms = DeviceSms();
  const int64_t n_chunks = (p.K + 255) / 256;
  if (!on || sms <= 0 || p.M > kBM || n_chunks < 2) return 0;
  const int64_t blocks = ((p.N + kBN - 1) / kBN) * ((p.M + kBM - 1) / kBM);
  if (blocks * 2 > sms) return 0;
  if (static_cast<uint64_t>(n_chunks * p.M * p.N) * 4 > kSplitPartialCap) return 0;
  const int64_t splits = std::min<int64_t>(n_chunks, std::max<int64_t>(1, 4 * sms / blocks));
  const int64_t per = (n_chunks + splits - 1) / splits;
  return per >= n_chunks ? 0 : static_cast<int>(per);
}

// Offset of the chunk sums in the planes scratch (after the planes, 256-byte aligned).
uint64_t SplitPartialOffset(const MatmulParams& p, int terms) {
  return (static_cast<uint64_t>(terms) * p.M * p.K * 2 + 255) / 256 * 256;
}

template <int T>
cudaError_t GemmSplit(const MatmulParams& p, uint16_t* planes, int per, cudaStream_t stream) {
  static std::atomic<uint64_t> smem_set{0};
  const int smem = kStages * StageChunks<T>() * 16;
  cudaError_t e = AllowDynamicSmem(GemmBf16Kernel<T, true>, smem, &smem_set);
  if (e != cudaSuccess) return e;
  const int64_t n_chunks = (p.K + 255) / 256;
  float* part =
      reinterpret_cast<float*>(reinterpret_cast<uint8_t*>(planes) + SplitPartialOffset(p, T));
  const dim3 grid(static_cast<unsigned>((p.N + kBN - 1) / kBN),
                  static_cast<unsigned>((p.M + kBM - 1) / kBM),
                  static_cast<unsigned>((n_chunks + per - 1) / per));
  LaunchK(GemmBf16Kernel<T, true>, grid, kGemmThreads, smem, stream, p,
          static_cast<const uint16_t*>(planes), part, per);
  if ((e = cudaGetLastError()) != cudaSuccess) return e;
  LaunchK(GemmCombineKernel, GridFor(p.M * p.N, 256), 256, 0, stream, p,
          static_cast<const float*>(part), static_cast<int>(n_chunks));
  return cudaGetLastError();
}

// ---- Decode batches, M = 9 .. 64 (cuda-batch): the GEMV per 8-token group, one launch ----
//
// Block (token group tg, row group): GemvTask (splits = 1) over tokens [8 tg, 8 tg + 8), i.e.
// the GEMV's own code and order, so the GEMV's bits (which are the GEMM's). Token groups vary
// fastest over the grid: the blocks reading one weight row group run together, so the weight
// comes from DRAM about once and the other groups read it from L2. One launch, no split
// pre-pass, no partials: what the small grids of a decode batch need (the chunk-split GEMM
// takes 3 launches of ~5 us each for a 1-2 MiB weight). TESSERA_CUDA_GEMM_SMALLM=0 never takes
// it, =1 for every 8 < M <= 64; default SmallMChoice.
template <int T, bool HALF>
__global__ void __launch_bounds__(512, HALF ? 2 : 1)
    GemvRowsKernel(MatmulParams p, GemvGroupArgs grp, int n_chunks) {
  extern __shared__ float part[];  // [chunks][16 rows][8 tokens]
  __shared__ bool last_block;
  GridDepWait();
  AllowDependents();
  const int64_t m0 = int64_t(blockIdx.x) * kGemvMaxRows;
  MatmulParams q = p;
  q.x = p.x + m0 * p.x_row;
  q.M = p.M - m0 < kGemvMaxRows ? p.M - m0 : kGemvMaxRows;
  GemvGroupArgs b = grp;
  b.o[0].out = grp.o[0].out + m0 * grp.o[0].out_row;
  if (b.o[0].res_out != nullptr) {  // the fused residual ADD (StoreOut), same token rows
    b.o[0].res = grp.o[0].res + m0 * grp.o[0].res_row;
    b.o[0].res_out = grp.o[0].res_out + m0 * grp.o[0].res_out_row;
  }
  GemvTask<T, HALF, kGemvProNone, false>(q, b, n_chunks, 1, nullptr, nullptr, nullptr, nullptr,
                                         part, last_block, blockIdx.y, GemvNoRope{});
}

int GemmSmallMMode() {
  static const int mode = EnvInt("TESSERA_CUDA_GEMM_SMALLM", -1);
  return mode;
}

// The wgmma configuration called `name` (gemm_wgmma.h; looked up by name: the numbering is the
// prefill GEMM's and may move), or -1.
int WgmmaConfigNamed(const char* name, int terms) {
#ifdef TESSERA_CUDA_WGMMA
  for (int c = 0; c < GemmWgmmaConfigs(); ++c)
    if (std::strcmp(GemmWgmmaName(c, terms), name) == 0) return c;
#else
  (void)name, (void)terms;
#endif
  return -1;
}

constexpr int kSmallMRows = -2;  // SmallMChoice: GemvRowsKernel

// The kernel of a decode batch (M = 9 .. 64; same bits whichever runs): kSmallMRows, a
// LaunchGemmBf16Tiled configuration (the TMA wgmma tiles), or -1 (the chunk-split / narrow GEMM).
// From the H100 lab at M = 16 / 64, cold L2 (lab/NOTES.md "Decode batches, second pass";
// results/batch_h100_run4_lab_smallm*.log): the 64-token TMA tiles stream wide weights at
// 1-2.4 TB/s (1B head at M = 64: 562 -> 223 us, gate/up 56 -> 31 us); narrow weights with long
// K take their split-K variant (below), other narrow ones the chunk-split GEMM; GEMV rows win where
// the weight is small (<= 2 MiB: one launch instead of three) or M <= 16 (two token groups: the
// weight is read from L2 once more). TESSERA_CUDA_GEMM_SMALLM=0: always -1, =1: always GEMV rows.
int SmallMChoice(const MatmulParams& p, int terms) {
  const int mode = GemmSmallMMode();
  if (mode == 0 || p.M <= kGemvMaxRows || p.M > 64) return -1;
  if (mode == 1) return kSmallMRows;
  // One piece (matmul_precision=bf16): only N >= 8192 gains, on the 128 x 128 tile (1B gate/up
  // at M = 64: 41.5 -> 29.4 us; results/batch_h100_run7_lab_smallm_terms31.log).
  const bool wide = p.N >= (p.M <= 16 || terms == 1 ? 8192 : 4096);
  const uint64_t wbytes = static_cast<uint64_t>(p.N) * p.K * 2;
#ifdef TESSERA_CUDA_WGMMA
  // Long K on a narrow weight (8B q/o/k/v/down, 1B/0.5B down): the 128 x 64 TMA tile with split-K
  // over the grid (cuda-splitk, lab/NOTES.md "Split-K on the TMA tiles"; same bits). H100, M = 64
  // 3 pieces: 8B down 144 -> 105 us, q/o 52 -> 34, k/v 23 -> 18, 1B down 57 -> 37. At M <= 16
  // the 8 MiB 8B k/v stays on the GEMV rows (14.7 vs 17 us: one chunk a block).
  // cu21-x64: with 3 pieces narrow weights take it from K = 2048 (the 1B o at M = 17 .. 64, 8 MiB:
  // H100 lab at M = 64 21.2 -> 17.4 us, tg64x64 +2.7%); TESSERA_CUDA_GEMM_TMA_SPLITK_MINK=4096
  // = before (the K from which narrow three-piece weights split).
  static const int64_t narrow_k = EnvInt("TESSERA_CUDA_GEMM_TMA_SPLITK_MINK", 2048);
  const int64_t min_k = wide || terms == 1 ? 4096 : narrow_k;
  const uint64_t min_w = p.M <= 16 ? (uint64_t{8} << 20) + 1 : uint64_t{8} << 20;
  if (p.K % 32 == 0 && p.K >= min_k && p.N <= 8192 && wbytes >= min_w && GemmWgmmaAvailable() &&
      GemmTmaSplitKEnabled()) {
    // Pipelined with 3 pieces (~1% ahead on every shape), plain with one (a tie).
    static const int k[2] = {WgmmaConfigNamed("tma128x64k", 1), WgmmaConfigNamed("tma128x64pk", 3)};
    if (k[terms == 1 ? 0 : 1] >= 0) return kGemmTiledWgmma0 + k[terms == 1 ? 0 : 1];
  }
  if (wide && p.K % 32 == 0 && GemmWgmmaAvailable()) {
    static const int tma[2][2] = {
        {WgmmaConfigNamed("tma128x128", 1), WgmmaConfigNamed("tma256x64", 1)},
        {WgmmaConfigNamed("tma128x64", 3), WgmmaConfigNamed("tma256x64", 3)}};
    const int c = tma[terms == 1 ? 0 : 1][p.N >= 65536 ? 1 : 0];  // 256 rows for the heads
    if (c >= 0) return kGemmTiledWgmma0 + c;
  }
#endif
  if (!wide && (p.M <= 16 || wbytes <= (uint64_t{2} << 20))) return kSmallMRows;
  return -1;
}

template <int T, bool HALF>
cudaError_t GemvRowsLaunch(const MatmulParams& p, const GemvGroupArgs& b, int warps,
                           cudaStream_t stream) {
  static std::atomic<uint64_t> smem_set{0};
  const int n_chunks = static_cast<int>((p.K + 255) / 256);
  const int smem = n_chunks * 128 * 4;
  cudaError_t e = AllowDynamicSmem(GemvRowsKernel<T, HALF>, smem, &smem_set);
  if (e != cudaSuccess) return e;
  const dim3 grid(static_cast<unsigned>((p.M + kGemvMaxRows - 1) / kGemvMaxRows),
                  static_cast<unsigned>(b.g0[1]));
  LaunchK(GemvRowsKernel<T, HALF>, grid, warps * 32, smem, stream, p, b, n_chunks);
  return cudaGetLastError();
}

template <int T>
cudaError_t GemvRows(const MatmulParams& p, cudaStream_t stream) {
  GemvGroupArgs b;
  b.n = 1;
  b.o[0] = GemvGroupOf(p).o[0];
  b.g0[1] = (p.N + 15) / 16;
  for (int j = 1; j < kGemvMaxGroup; ++j) b.g0[j + 1] = b.g0[1];
  if (b.g0[1] > 65535) return cudaErrorInvalidConfiguration;
  const int n_chunks = static_cast<int>((p.K + 255) / 256);
  const int64_t blocks = b.g0[1] * ((p.M + kGemvMaxRows - 1) / kGemvMaxRows);
  // The GEMV's rules on the whole grid: more warps while it is under ~2 waves; half-chunk loads
  // (two blocks an SM) from one to a few waves.
  const int warps = std::min(n_chunks, blocks < 264 ? 16 : 8);
  if (blocks > 144 && blocks <= 1024) return GemvRowsLaunch<T, true>(p, b, warps, stream);
  return GemvRowsLaunch<T, false>(p, b, warps, stream);
}

// pro (LaunchGemmBf16Fused): p.x is the RMS_NORM's / SWIGLU's input; the x split pre-pass
// becomes LaunchProSplit (the natural or the wgmma planes, whichever the chosen kernel reads).
// Nothing after the split reads p.x. p.res_out: the caller checked GemmFusable.
template <int T>
cudaError_t Gemm(const MatmulParams& p, uint16_t* planes, cudaStream_t stream,
                 const GemvPrologue* pro = nullptr) {
  static std::atomic<uint64_t> smem_set{0};
  const int smem = kStages * StageChunks<T>() * 16;
  cudaError_t e = AllowDynamicSmem(GemmBf16Kernel<T>, smem, &smem_set);
  if (e != cudaSuccess) return e;
  const int64_t groups = p.M * (p.K / 8);
  const int v = GemmVariant();
  if (v == kGemmAuto) {  // decode batches
    const int sc = SmallMChoice(p, T);
    if (sc == kSmallMRows) return pro != nullptr ? cudaErrorInvalidValue : GemvRows<T>(p, stream);
    if (sc >= 0 && pro == nullptr) return LaunchGemmBf16Tiled(p, T, planes, sc, stream);
#ifdef TESSERA_CUDA_WGMMA
    if (sc >= 0) {  // LaunchGemmBf16Tiled's two launches with the norm in the first
      if ((e = LaunchProSplit<T>(p, *pro, true, planes, stream)) != cudaSuccess) return e;
      return LaunchGemmWgmma(p, T, planes, sc - kGemmTiledWgmma0, stream);
    }
#endif
  }
  const int per = v == kGemmAuto ? GemmSplitChunksPerBlock(p) : 0;
  const int tiled = per > 0 ? -1
                    : (v & kGemmTiled) != 0
                        ? (v & 0xff)
                        : (v == kGemmAuto ? GemmTiledAuto(p, T, DeviceSms()) : -1);
  // The wgmma configurations split x into their own slot-permuted planes (gemm_wgmma.h):
  // the natural-order split would be thrown away.
  if (pro != nullptr) {
    if ((e = LaunchProSplit<T>(p, *pro, tiled >= kGemmTiledWgmma0, planes, stream)) != cudaSuccess)
      return e;
#ifdef TESSERA_CUDA_WGMMA
    if (tiled >= kGemmTiledWgmma0)  // as LaunchGemmBf16Tiled runs it (prefill: its twins)
      return LaunchGemmWgmma(p, T, planes, GemmTiledWgmmaRun(p, T, tiled), stream);
#endif
  } else if (tiled < kGemmTiledWgmma0) {
    LaunchK(SplitKernel<T>, GridFor(groups, 256), 256, 0, stream, p, planes);
    if ((e = cudaGetLastError()) != cudaSuccess) return e;
  }
  if (per > 0) return GemmSplit<T>(p, planes, per, stream);
  if (tiled >= 0) return LaunchGemmBf16Tiled(p, T, planes, tiled, stream);
  if (v >= 0 && ((v & kGemmForce) != 0 || WideTilePays(p))) {
    switch (v & 0xff) {
      case 0: return LaunchWide<T, 0>(p, planes, stream);
      case 1: return LaunchWide<T, 1>(p, planes, stream);
      case 2: return LaunchWide<T, 2>(p, planes, stream);
      default: return LaunchWide<T, 3>(p, planes, stream);
    }
  }
  const int64_t gy = (p.M + kBM - 1) / kBM;
  if (gy > 65535) return cudaErrorInvalidConfiguration;
  const dim3 grid(static_cast<unsigned>((p.N + kBN - 1) / kBN), static_cast<unsigned>(gy));
  LaunchK(GemmBf16Kernel<T>, grid, kGemmThreads, smem, stream, p, planes,
          static_cast<float*>(nullptr), 0);
  return cudaGetLastError();
}

__global__ void ProbeKernel() {}

// ---- Read-rate lab (cu-dec16; cuda_gemv_lab --dec16): what a plain streaming read and the
// decode GEMV's own weight-load pattern (no x, no mma) reach on the card ----

// Every thread keeps 8 coalesced 16-byte streaming loads in flight (grid-stride).
__global__ void __launch_bounds__(1024)
    ReadPlainKernel(const uint4* w, int64_t n16, uint32_t* sink) {
  uint32_t acc = 0;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (; i + 7 * stride < n16; i += 8 * stride) {
    uint4 v[8];
#pragma unroll
    for (int u = 0; u < 8; ++u) v[u] = __ldcs(w + i + u * stride);
#pragma unroll
    for (int u = 0; u < 8; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  for (; i < n16; i += stride) {
    const uint4 v = __ldcs(w + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9e3779b9u) sink[0] = acc;
}

// GemvTask's weight loads exactly (a block a 16-row group, the warps' chunks strided or, CONTIG,
// contiguous ranges, half or whole chunks a round, LoadW8's addresses and predicates), each
// round's words folded by XOR instead of multiplied. Occupancy is set by the dynamic shared
// memory the launcher asks for (blocks an SM as the GEMV's).
template <bool HALF, bool CONTIG>
__global__ void __launch_bounds__(512)
    ReadPatternKernel(const uint8_t* w, int64_t N, int64_t K, uint32_t* sink) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
  const int g = lane / 4, q = lane % 4;
  const int n_chunks = static_cast<int>((K + 255) / 256);
  const int64_t n0 = int64_t(blockIdx.x) * 16, wrb = K * 2;
  const bool v0 = n0 + g < N, v1 = n0 + g + 8 < N;
  const uint8_t* w0 = w + (v0 ? (n0 + g) * wrb : 0);
  const uint8_t* w1 = w + (v1 ? (n0 + g + 8) * wrb : 0);
  constexpr int kLoad = HALF ? kBlocksPerChunk / 2 : kBlocksPerChunk;
  const int per = (n_chunks + nw - 1) / nw;
  const int c0 = CONTIG ? warp * per : warp, step = CONTIG ? 1 : nw;
  const int c1 = CONTIG ? min(n_chunks, c0 + per) : n_chunks;
  uint32_t acc = 0;
  for (int c = c0; c < c1; c += step) {
#pragma unroll 1
    for (int h = 0; h < kBlocksPerChunk; h += kLoad) {
      uint4 wa[kLoad][2];
#pragma unroll
      for (int b = 0; b < kLoad; ++b) {
        const int64_t k = (int64_t(c) * kBlocksPerChunk + h + b) * 32 + 8 * q;
        wa[b][0] = LoadW8(w0, k, K, v0);
        wa[b][1] = LoadW8(w1, k, K, v1);
      }
#pragma unroll
      for (int b = 0; b < kLoad; ++b)
        acc ^= wa[b][0].x ^ wa[b][0].y ^ wa[b][0].z ^ wa[b][0].w ^ wa[b][1].x ^ wa[b][1].y ^
               wa[b][1].z ^ wa[b][1].w;
    }
  }
  if (acc == 0x9e3779b9u) sink[blockIdx.x] = acc;
}

// The same bytes a round as ReadPatternKernel (a warp: its chunk's half or whole, 16 rows), but
// each load instruction takes whole 128-byte lines: lanes along one row's 256 / 512 bytes, 2 / 1
// rows an instruction (not the mma's 8 rows x 64 bytes). What a GEMV whose loads were line-shaped
// (then moved into the mma layout) could stream.
// LaunchReadLab kinds 5 / 6 (launch.h lists 0 .. 4).
constexpr int kReadHalfLines = 5, kReadFullLines = 6;
template <bool HALF>
__global__ void __launch_bounds__(512)
    ReadLinesKernel(const uint8_t* w, int64_t N, int64_t K, uint32_t* sink) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
  const int n_chunks = static_cast<int>((K + 255) / 256);
  const int64_t n0 = int64_t(blockIdx.x) * 16, wrb = K * 2;
  constexpr int kLoad = HALF ? kBlocksPerChunk / 2 : kBlocksPerChunk;
  constexpr int kLpr = kLoad * 4, kRpi = 32 / kLpr, kInstr = 16 / kRpi;  // lanes a row, ...
  const int rr = lane / kLpr, cb = (lane % kLpr) * 16;
  uint32_t acc = 0;
  for (int c = warp; c < n_chunks; c += nw) {
#pragma unroll 1
    for (int h = 0; h < kBlocksPerChunk; h += kLoad) {
      uint4 wa[kInstr];
      const int64_t kbyte = int64_t(c) * 512 + h * 64 + cb;
#pragma unroll
      for (int i = 0; i < kInstr; ++i) {
        const int64_t row = n0 + i * kRpi + rr;
        const uint4* a = reinterpret_cast<const uint4*>(w + row * wrb + kbyte);
        wa[i] = row < N && kbyte < wrb ? __ldcs(a) : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int i = 0; i < kInstr; ++i) acc ^= wa[i].x ^ wa[i].y ^ wa[i].z ^ wa[i].w;
    }
  }
  if (acc == 0x9e3779b9u) sink[blockIdx.x] = acc;
}

// cu23-b8: ReadPatternKernel's bytes a warp and round loaded as the GEMV's LINES path loads them
// (GemvLoadLines: 4 rows x 128 bytes an instruction, then the lane ^ 16 exchange), words XORed.
// LaunchReadLab kinds 7 (half chunks) / 8 (whole).
constexpr int kReadHalfLines4 = 7, kReadFullLines4 = 8;
template <bool HALF>
__global__ void __launch_bounds__(512)
    ReadLines4Kernel(const uint8_t* w, int64_t N, int64_t K, uint32_t* sink) {
  const int warp = threadIdx.x / 32, nw = blockDim.x / 32;
  const int n_chunks = static_cast<int>((K + 255) / 256);
  const int64_t n0 = int64_t(blockIdx.x) * 16, wrb = K * 2;
  constexpr int kLoad = HALF ? kBlocksPerChunk / 2 : kBlocksPerChunk;
  uint32_t acc = 0;
  for (int c = warp; c < n_chunks; c += nw) {
#pragma unroll 1
    for (int h = 0; h < kBlocksPerChunk; h += kLoad) {
      uint4 wa[kLoad][2];
      GemvLoadLines<kLoad>(w, wrb, n0, N, int64_t(c) * kBlocksPerChunk + h, K, wa);
#pragma unroll
      for (int b = 0; b < kLoad; ++b)
        acc ^= wa[b][0].x ^ wa[b][0].y ^ wa[b][0].z ^ wa[b][0].w ^ wa[b][1].x ^ wa[b][1].y ^
               wa[b][1].z ^ wa[b][1].w;
    }
  }
  if (acc == 0x9e3779b9u) sink[blockIdx.x] = acc;
}

template <class K>
cudaError_t LaunchReadLabK(K kernel, unsigned grid, int threads, int per_sm, const void* w,
                           int64_t N, int64_t Kd, uint32_t* sink, cudaStream_t stream) {
  // Blocks an SM capped by shared memory: 228 KiB an SM, 1 KiB reserved a block.
  const int smem = per_sm > 0 ? (228 / per_sm - 2) * 1024 : 0;
  cudaError_t e =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024);
  if (e != cudaSuccess) return e;
  kernel<<<grid, threads, smem, stream>>>(static_cast<const uint8_t*>(w), N, Kd, sink);
  return cudaGetLastError();
}

}  // namespace

bool Bf16FastPathEligible(const MatmulParams& p) {
  return p.w_dtype == TSR_DTYPE_BF16 && p.K > 0 && p.K % 8 == 0 && p.K <= kMaxK &&
         p.w_row_bytes % 16 == 0 && reinterpret_cast<uintptr_t>(p.w) % 16 == 0;
}

uint64_t SplitPlaneBytes(const MatmulParams& p, int terms) {
#ifdef TESSERA_CUDA_WGMMA
  // Plus the TMA split-K tile's chunk sums where SmallMChoice takes it (GemmTmaScratchBytes).
  if (GemmVariant() == kGemmAuto) {
    const int c = SmallMChoice(p, terms) - kGemmTiledWgmma0 - kTmaConfig0;
    if (c >= 0) {
      return std::max<uint64_t>(static_cast<uint64_t>(terms) * p.M * p.K * 2,
                                GemmTmaScratchBytes(p, terms, c));
    }
  }
#endif
#ifdef TESSERA_CUDA_WGMMA
  // Prefill: plus the TMA split-K tile's chunk sums where GemmTiledAuto's 128 x 64 tile splits
  // (GemmTmaPrefillSplit, as LaunchGemmBf16Tiled runs it; cu-gemm15).
  if (GemmVariant() == kGemmAuto && p.M > 64) {
    const int c = GemmTiledAuto(p, terms, DeviceSms()) - kGemmTiledWgmma0 - kTmaConfig0;
    const int split = c >= 0 ? GemmTmaPrefillSplit(p, c, terms) : -1;
    if (split >= 0) {
      return std::max<uint64_t>(static_cast<uint64_t>(terms) * p.M * p.K * 2,
                                GemmTmaScratchBytes(p, terms, split));
    }
  }
#endif
  // Plus the split GEMM's chunk sums where it splits (GemmSplitChunksPerBlock).
  if (GemmVariant() == kGemmAuto && p.M > kGemvMaxRows && SmallMChoice(p, terms) == -1 &&
      GemmSplitChunksPerBlock(p) > 0)
    return SplitPartialOffset(p, terms) + static_cast<uint64_t>((p.K + 255) / 256) * p.M * p.N * 4;
  return static_cast<uint64_t>(terms) * p.M * p.K * 2;
}

cudaError_t LaunchSplitBf16(const MatmulParams& p, int terms, uint16_t* planes,
                            cudaStream_t stream) {
  if (p.M == 0) return cudaSuccess;
  const unsigned grid = GridFor(p.M * (p.K / 8), 256);
  if (terms == 1)
    LaunchK(SplitKernel<1>, grid, 256, 0, stream, p, planes);
  else
    LaunchK(SplitKernel<3>, grid, 256, 0, stream, p, planes);
  return cudaGetLastError();
}

cudaError_t LaunchGemvBf16(const MatmulParams& p, int terms, cudaStream_t stream) {
  GemvAux aux;
  aux.variant = kGemvFull;
  return LaunchGemvBf16Group(p, GemvGroupOf(p), terms, aux, stream);
}

bool GemvStreamEligible(const MatmulParams& p, const GemvAux& aux) {
  return aux.counters != nullptr && aux.sms > 0 && (p.N + 15) / 16 <= aux.n_counters &&
         p.M <= kGemvMaxRows && reinterpret_cast<uintptr_t>(p.x) % 16 == 0 && p.x_row % 4 == 0;
}

GemvGroup GemvGroupOf(const MatmulParams& p) {
  GemvGroup g;
  g.n = 1;
  GemvOut& o = g.o[0];
  o.w = p.w, o.w_row_bytes = p.w_row_bytes, o.N = p.N, o.bias = p.bias;
  o.out = p.out, o.out_row = p.out_row, o.out_col = p.out_col;
  o.res = p.res, o.res_row = p.res_row;  // decode batches' fused residual (GemvRows)
  o.res_out = p.res_out, o.res_out_row = p.res_out_row;
  return g;
}

uint64_t GemvPartialBytes(const MatmulParams& p, const GemvGroup& grp) {
  const uint64_t chunks = static_cast<uint64_t>((p.K + 255) / 256);
  return chunks <= 1 ? 0 : static_cast<uint64_t>(RowGroups(grp)) * chunks * 16 * p.M * 4;
}

uint64_t GemvSplitPartialBytes(const MatmulParams& p, const GemvGroup& grp, const GemvAux& aux) {
  const int64_t groups = RowGroups(grp);
  if (GemvSplits(p, groups, aux) <= 1) return 0;
  return static_cast<uint64_t>(groups) * static_cast<uint64_t>((p.K + 255) / 256) * 128 * 4;
}

cudaError_t LaunchGemvBf16Group(const MatmulParams& p, const GemvGroup& grp, int terms,
                                const GemvAux& aux, cudaStream_t stream) {
  return LaunchGemvBf16Fused(p, grp, GemvPrologue{}, terms, aux, stream);
}

#ifdef TESSERA_CUDA_WGMMA
bool GemvRingOn(const MatmulParams& p, const GemvGroupArgs& b, const GemvPrologue& pro, int terms,
                const GemvAux& aux, bool pair, int rope);  // cu29-ring, below
bool GemvRingMap(const GemvOut& o, int64_t K, CUtensorMap* out, int rows);
#endif

namespace {

// cu24-chain: the launch rule LaunchGemvBf16Fused follows for grp without its rope epilogue,
// where that is one of the two kernels with a rope twin: 1 = whole chunks, x pre-split, plain
// loop (the 0.5B norm + q/k/v), 2 = half chunks in 8-warp blocks, plain loads (the 1B's), 3 = the
// TMA ring (GemvRingKernel's ROPE form, cu30-rope: the H200's 8B / 1B); else 0.
int GemvRopeKvConfig(const MatmulParams& p, const GemvGroup& grp, const GemvPrologue& pro,
                     int terms, const GemvAux& aux) {
  const GemvRopeKv* rk = grp.rope;
  if (rk == nullptr || p.M != 1 || terms != 3 || grp.n != 3 || grp.swiglu != nullptr ||
      pro.kind != kGemvProRms || GemvIsStream(aux) || aux.variant != 0 ||
      !GemvPrologueFits(p.M, p.K))
    return 0;
  if (rk->D <= 0 || rk->D % 16 != 0 || rk->Dv <= 0 || grp.o[0].N % rk->D != 0 ||
      grp.o[1].N % rk->D != 0 || grp.o[2].N % rk->Dv != 0)
    return 0;
  for (int j = 0; j < 3; ++j) {
    if (grp.o[j].res_out != nullptr || grp.o[j].out_col != 1) return 0;
  }
  GemvGroupArgs b;
  b.n = grp.n;
  for (int j = 0; j < grp.n; ++j) {
    b.o[j] = grp.o[j];
    b.g0[j + 1] = b.g0[j] + (grp.o[j].N + 15) / 16;
  }
#ifdef TESSERA_CUDA_WGMMA
  // 3 (cu30-rope): the TMA ring with the epilogue in its combiner (its tensor maps made here, so
  // the launch cannot fall back for want of one).
  if (GemvRingOn(p, b, pro, terms, aux, false, 3)) {
    CUtensorMap m;
    bool maps = true;
    for (int j = 0; j < 3; ++j) maps = maps && GemvRingMap(grp.o[j], p.K, &m, j < 2 ? 8 : 16);
    if (maps) return 3;
  }
#endif
  // K < 4096: the small models' launches, as measured (on the H200 the 8B's takes the
  // whole-line loads anyway; on an H100 it would take config 2, not measured there).
  if (p.K >= 4096) return 0;
  const int64_t groups = b.g0[b.n];
  const bool half = GemvHalfChunks(p, aux, groups, pro.kind, false, b.n, terms);
  if (GemvSplits(p, groups, aux) != 1) return 0;
  if (!half && (GemvDown2(p, aux, groups, pro.kind, false, b.n, 1) ||
                GemvWholeMode(p, aux, groups, pro.kind, false, b.n, terms) != 0 ||
                GemvHeadMode(p, aux, groups, pro.kind, false, b.n, terms, 1) != 0))
    return 0;
  const int pipe = GemvPipeMode(p, aux, half, pro.kind);
  const bool xp = GemvXpOn(p, half, 1, pro.kind) || GemvXpPlain(p, half, 1, pro.kind, false, pipe);
  if (GemvLinesOn(p, b, aux, half, pro.kind, false, xp, pipe)) return 0;
  if (!half && pipe == 0 && xp) return 1;
  if (half && pipe == kGemvPipe8 && !xp) return 2;
  return 0;
}

// TESSERA_CUDA_ROPE_EPI_FORM (lab): GemvRopeKv::form where the caller left -1; unset = 0, the
// rounding k_data.cu's ROPE kernel runs on sm_90 (its SASS: FFMA c x0 - (FMUL s x1); lab/NOTES.md,
// cu24-chain; cuda_gemv_lab --rope24 / --quick check it against the kernel).
int GemvRopeForm(int form) {
  static const int env = EnvInt("TESSERA_CUDA_ROPE_EPI_FORM", 0);
  return form >= 0 && form <= 2 ? form : (env >= 0 && env <= 2 ? env : 0);
}

}  // namespace

bool GemvRopeKvFits(const MatmulParams& p, const GemvGroup& grp, const GemvPrologue& pro, int terms,
                    const GemvAux& aux) {
  return GemvRopeKvConfig(p, grp, pro, terms, aux) != 0;
}

// cu29-ring (GemvRingKernel): TESSERA_CUDA_GEMV_RING = mask of the M = 1 launch kinds that
// take the TMA ring: 1 plain with K < 8192 (the 8B o), 8 plain with K >= 8192 (the 8B down), 2
// RMS_NORM prologue (q/k/v, gate/up without the SWIGLU epilogue), 4 RMS_NORM + SWIGLU pairing,
// 16 also K = 2048 (the 1B's launches), 32 (with 2) the norm + q/k/v with ROPE q/k + KV_WRITE k/v
// in the combiner (cu30-rope: 8B lab 22.4 us unfused -> 18.9, 1B 8.95 on the rope twin -> 8.5);
// unset = 63 where the driver's peak DRAM bandwidth is >= 4,400 GB/s (the H200: cu29-ring's
// engine A/B, 8B tg128 +3.9%, 1B +9.9%; the H100 was not measured, so its launches are
// unchanged), else 0. The downs (mask 8) lost with cu29-ring's two producer warps; with four
// (cu30-prod) the 1B down runs 15.8 -> 13.4 us in the lab, the 8B's 35.0 -> 34.8.
// Only 3-piece launches with K >= 4096 (2048 with 16), K % 2048 == 0 (whole chunks, a multiple of
// the consumers a task), 16-row members, contiguous 16-byte aligned rows, on compute capability
// 9.x (TMA).
int GemvRingMode() {
  static const int mode = [] {
    const int env = EnvInt("TESSERA_CUDA_GEMV_RING", -1);
    if (env >= 0) return env;
    return DevicePeakDramGBs() >= 4400 ? 63 : 0;
  }();
  return mode;
}

// TESSERA_CUDA_GEMV_RING_PROD: producer warps of the ring, 2 (cu29-ring), 4 (default) or 8
// (cu30-prod: H200 8B tg128 +4-5% at 4, +3-4% at 8 against 2).
int GemvRingProducers() {
  static const int n = [] {
    const int v = EnvInt("TESSERA_CUDA_GEMV_RING_PROD", 4);
    return v == 2 || v == 8 ? v : 4;
  }();
  return n;
}

#ifdef TESSERA_CUDA_WGMMA
PFN_cuTensorMapEncodeTiled_v12000 TensorMapEncoder();  // k_gemm_tma.cu

// The weight's 2-D map (16 rows x 64 k boxes, 128-byte swizzle), made once per (address, shape):
// a map holds only those, so a reused address with the same shape maps the same way.
// rows: the box's rows, 16 (8: the ROPE ring's q / k members).
bool GemvRingMap(const GemvOut& o, int64_t K, CUtensorMap* out, int rows) {
  static std::mutex mu;
  static std::map<std::tuple<const void*, int64_t, int64_t, int>, CUtensorMap> cache;
  const auto key = std::make_tuple(static_cast<const void*>(o.w), o.N, K, rows);
  std::lock_guard<std::mutex> lock(mu);
  const auto it = cache.find(key);
  if (it != cache.end()) {
    *out = it->second;
    return true;
  }
  const PFN_cuTensorMapEncodeTiled_v12000 enc = TensorMapEncoder();
  if (enc == nullptr) return false;
  const cuuint64_t dim[2] = {static_cast<cuuint64_t>(K), static_cast<cuuint64_t>(o.N)};
  const cuuint64_t stride[1] = {static_cast<cuuint64_t>(K * 2)};
  const cuuint32_t box[2] = {64, static_cast<cuuint32_t>(rows)}, ones[2] = {1, 1};
  if (enc(out, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<uint8_t*>(o.w), dim, stride, box,
          ones, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
          CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) != CUDA_SUCCESS)
    return false;
  if (cache.size() >= 4096) cache.clear();
  cache.emplace(key, *out);
  return true;
}

bool GemvRingOn(const MatmulParams& p, const GemvGroupArgs& b, const GemvPrologue& pro, int terms,
                const GemvAux& aux, bool pair, int rope) {
  // rope 3 (GemvRopeKvConfig): the norm + q/k/v with the ROPE + KV_WRITE epilogue, kind 2 + 32.
  const int kind = pro.kind == kGemvProNone  ? (p.K < 8192 ? 1 : 8)
                   : pro.kind == kGemvProRms ? (pair ? 4 : (rope == 3 ? 2 | 32 : 2))
                                             : 0;
  // aux.variant != 0: the lab's forced kernels (their checks keep testing them).
  if ((GemvRingMode() & kind) != kind || kind == 0 || terms != 3 || p.M != 1 ||
      (rope != 0 && rope != 3) || aux.variant != 0 || aux.sms <= 0)
    return false;
  const int64_t k_min = (GemvRingMode() & 16) != 0 ? 2048 : 4096;  // 16: also the 1B's K
  if (p.K < k_min || p.K % (256 * kRingConsumers) != 0 || p.K > (int64_t{1} << 20)) return false;
  if (pro.kind == kGemvProRms && (p.K > kRmsRegK || GemvRmsRegs() < 1)) return false;
  for (int j = 0; j < b.n; ++j) {
    const GemvOut& o = b.o[j];
    if (o.N % 16 != 0 || o.N > (int64_t{1} << 30) || o.w_row_bytes != p.K * 2 ||
        reinterpret_cast<uintptr_t>(o.w) % 16 != 0)
      return false;
  }
  const int per_task = static_cast<int>(p.K / 256) * (pair ? 2 : 1);
  const int optin = OptinSmem();
  if (optin <= 1024 || GemvRingSmem(p.K, per_task, pro.kind) > optin - 1024) return false;
  // Compute capability 9.x (the kernel's body exists for sm_90 only), per device: a process may
  // drive cards of several kinds (1 = yes, 2 = no, 0 = not asked yet; ordinals < 64).
  static std::atomic<int> tma[64];
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) {
    cudaGetLastError();
    return false;
  }
  int v = tma[dev].load(std::memory_order_relaxed);
  if (v == 0) {
    v = CurrentDeviceAttr(cudaDevAttrComputeCapabilityMajor) == 9 && TensorMapEncoder() != nullptr
            ? 1
            : 2;
    tma[dev].store(v, std::memory_order_relaxed);
  }
  return v == 1;
}

// One launch of GemvRingKernel<PRO, P, ROPE> (its own opt-in shared-memory mask).
template <int PRO, int P, bool ROPE = false>
cudaError_t GemvRingLaunch(int64_t grid, int smem, cudaStream_t stream, const MatmulParams& p,
                           const GemvGroupArgs& b, int n_chunks, const GemvPrologue& pro,
                           int64_t tasks, int pref, const GemvRingMaps& maps,
                           const GemvRopeKv& rk) {
  static std::atomic<uint64_t> smem_set{0};
  const auto kernel = GemvRingKernel<PRO, P, ROPE>;
  const cudaError_t e = AllowDynamicSmem(kernel, smem, &smem_set);
  if (e != cudaSuccess) return e;
  LaunchK(kernel, static_cast<unsigned>(grid), RingThreads(P), smem, stream, p, b, n_chunks, pro,
          tasks, pref, maps, rk);
  return cudaGetLastError();
}

// rk: the ROPE + KV_WRITE epilogue (cu30-rope; members 0, 1 = q, k on 8-row boxes), or null.
template <int PRO>
cudaError_t GemvRing(const MatmulParams& p, const GemvGroupArgs& b, const GemvAux& aux,
                     const GemvPrologue& pro, cudaStream_t stream, const GemvRopeKv* rk = nullptr) {
  const int n_chunks = static_cast<int>(p.K / 256);
  const bool pair = b.swiglu != nullptr;
  GemvRingMaps maps{};
  for (int j = 0; j < b.n; ++j)
    if (!GemvRingMap(b.o[j], p.K, &maps.m[j], rk != nullptr && j < 2 ? 8 : 16))
      return cudaErrorNotSupported;
  const int smem = static_cast<int>(GemvRingSmem(p.K, n_chunks * (pair ? 2 : 1), PRO));
  const int64_t tasks = pair ? b.g0[1] : b.g0[b.n];
  const int64_t grid = std::min<int64_t>(tasks, aux.sms);
  int pref = aux.pdl ? kRingPrefEarly : 0;
  if (PRO == kGemvProRms && GemvRmsPre() && aux.pdl) pref |= kGemvPrefRmsEarly;
  const int np = GemvRingProducers();
  if constexpr (PRO == kGemvProRms) {  // the ROPE form exists for the RMS_NORM prologue only
    if (rk != nullptr) {
      const auto launch = np == 8   ? GemvRingLaunch<PRO, 8, true>
                          : np == 4 ? GemvRingLaunch<PRO, 4, true>
                                    : GemvRingLaunch<PRO, 2, true>;
      return launch(grid, smem, stream, p, b, n_chunks, pro, tasks, pref, maps, *rk);
    }
  }
  const auto launch = np == 8   ? GemvRingLaunch<PRO, 8>
                      : np == 4 ? GemvRingLaunch<PRO, 4>
                                : GemvRingLaunch<PRO, 2>;
  return launch(grid, smem, stream, p, b, n_chunks, pro, tasks, pref, maps, GemvRopeKv{});
}
#endif

bool GemvRingTakesPair(const MatmulParams& p, const GemvGroup& grp, const GemvPrologue& pro,
                       int terms, const GemvAux& aux) {
#ifdef TESSERA_CUDA_WGMMA
  if (grp.n != 2 || grp.o[0].N != grp.o[1].N || pro.kind != kGemvProRms) return false;
  GemvGroupArgs b;
  b.n = 2;
  for (int j = 0; j < 2; ++j) b.o[j] = grp.o[j];
  return GemvRingOn(p, b, pro, terms, aux, true, 0);
#else
  (void)p, (void)grp, (void)pro, (void)terms, (void)aux;
  return false;
#endif
}

cudaError_t LaunchGemvBf16Fused(const MatmulParams& p, const GemvGroup& grp,
                                const GemvPrologue& pro, int terms, const GemvAux& aux,
                                cudaStream_t stream) {
  if (p.M == 0 || grp.n < 1 || grp.n > kGemvMaxGroup) return cudaSuccess;
  if (GemvIsStream(aux) && RowGroups(grp) > aux.n_counters) return cudaErrorInvalidValue;
  // Prologues live in the block kernel only; M <= 8 bounds its per-row scales.
  if (pro.kind != kGemvProNone &&
      (GemvIsStream(aux) || p.M > kGemvMaxRows || !GemvPrologueFits(p.M, p.K)))
    return cudaErrorInvalidValue;
  if (RowGroups(grp) > (int64_t{1} << 31) - 1) return cudaErrorInvalidConfiguration;
  // cu24-chain: the rope epilogue only on the kernel the launch would run anyway (its twin).
  GemvRopeKv rk;
  const int rope = grp.rope != nullptr ? GemvRopeKvConfig(p, grp, pro, terms, aux) : 0;
  if (grp.rope != nullptr) {
    if (rope == 0) return cudaErrorNotSupported;
    rk = *grp.rope;
    rk.form = GemvRopeForm(rk.form);
  }
  const bool pair = grp.swiglu != nullptr;
  if (pair && (grp.n != 2 || grp.o[0].N != grp.o[1].N || GemvIsStream(aux) ||
               grp.o[0].res_out != nullptr || grp.o[1].res_out != nullptr))
    return cudaErrorInvalidValue;
  GemvGroupArgs b;
  b.n = grp.n;
  b.swiglu = grp.swiglu, b.swiglu_row = grp.swiglu_row;
  for (int j = 0; j < grp.n; ++j) {
    b.o[j] = grp.o[j];
    b.g0[j + 1] = b.g0[j] + (grp.o[j].N + 15) / 16;
  }
  for (int j = grp.n; j < kGemvMaxGroup; ++j) b.g0[j + 1] = b.g0[grp.n];  // empty members
  if (b.g0[grp.n] == 0) return cudaSuccess;
#ifdef TESSERA_CUDA_WGMMA
  if (GemvRingOn(p, b, pro, terms, aux, pair, rope)) {  // cu29-ring
    const cudaError_t e =
        pro.kind == kGemvProNone
            ? GemvRing<kGemvProNone>(p, b, aux, pro, stream)
            : GemvRing<kGemvProRms>(p, b, aux, pro, stream, rope == 3 ? &rk : nullptr);
    // No tensor map for a weight: the kernels below (GemvRopeKvConfig made rope 3's maps first).
    if (e != cudaErrorNotSupported || rope == 3) return e;
  }
#endif
  if (!GemvIsStream(aux)) {  // block per row group
    const int64_t groups = b.g0[b.n];
    const bool half = GemvHalfChunks(p, aux, groups, pro.kind, pair, b.n, terms);  // or whole
    // Paired tasks combine their chunk sums in one block (no split-K): same bits either way.
    const int splits = aux.partials != nullptr && !pair ? GemvSplits(p, groups, aux) : 1;
    if (!half && GemvDown2(p, aux, groups, pro.kind, pair, b.n, splits)) b.rg2 = 1;
    // cu22-8b: the 8B o, two row groups a block (TESSERA_CUDA_GEMV_O2 = 1, 2).
    if (!half && splits == 1 &&
        GemvWholeMode(p, aux, groups, pro.kind, pair, b.n, terms) == kWholeTwo)
      b.rg2 = 1;
    // cu22-head: TESSERA_CUDA_GEMV_HEAD=3, the heads' persistent grid in two-row-group tasks.
    if (!half && GemvHeadMode(p, aux, groups, pro.kind, pair, b.n, terms, splits) == kHeadTwo)
      b.rg2 = 1;
    if (rope != 0) {  // GemvRopeKvConfig: terms 3, splits 1, rope 2 = half chunks
      if (splits != 1 || half != (rope == 2) || b.rg2 != 0) return cudaErrorNotSupported;
      return half ? GemvPro<3, true>(p, b, 1, aux, pro, stream, &rk)
                  : GemvPro<3, false>(p, b, 1, aux, pro, stream, &rk);
    }
    if (terms == 1)
      return half ? GemvPro<1, true>(p, b, splits, aux, pro, stream)
                  : GemvPro<1, false>(p, b, splits, aux, pro, stream);
    return half ? GemvPro<3, true>(p, b, splits, aux, pro, stream)
                : GemvPro<3, false>(p, b, splits, aux, pro, stream);
  }
  return terms == 1 ? GemvStreamVariant<1>(p, b, aux, stream)
                    : GemvStreamVariant<3>(p, b, aux, stream);
}

cudaError_t LaunchGemvBf16Stream(const MatmulParams& p, int terms, const GemvAux& aux,
                                 cudaStream_t stream) {
  return LaunchGemvBf16Group(p, GemvGroupOf(p), terms, aux, stream);
}

cudaError_t LaunchGemmBf16(const MatmulParams& p, int terms, uint16_t* planes,
                           cudaStream_t stream) {
  if (p.M == 0 || p.N == 0) return cudaSuccess;
  if (p.res_out != nullptr) return LaunchGemmBf16Fused(p, GemvPrologue{}, terms, planes, stream);
  return terms == 1 ? Gemm<1>(p, planes, stream) : Gemm<3>(p, planes, stream);
}

bool GemmFusable(const MatmulParams& p, int terms, int pro_kind, bool residual) {
  if (p.M <= kGemvMaxRows || p.M > kGemmFuseMaxRows || !Bf16FastPathEligible(p) || p.N <= 0)
    return false;
  if (pro_kind == kGemvProRms && (p.K + 31) / 32 * 32 > kRmsSplitMaxK) return false;
  if (pro_kind != kGemvProNone && pro_kind != kGemvProRms && pro_kind != kGemvProSwiglu)
    return false;
  const bool automatic = GemmVariant() == kGemmAuto;
  // Prefill (cu-xsplit15): Gemm<T> splits x on every path it takes there (the prologue's split
  // into the planes its tile reads); no residual (the persistent tiles store their own totals).
  if (p.M > kGemmRmsMaxRows) return automatic && !residual;
  const int sc = automatic ? SmallMChoice(p, terms) : -1;
  if (pro_kind != kGemvProNone && sc == kSmallMRows) return false;  // no split to fold into
  if (!residual) return true;
  // The last write: GEMV rows' StoreOut, TmaCombineKernel or GemmCombineKernel; the plain tiles
  // store their own totals.
  if (!automatic) return false;
  if (sc == kSmallMRows) return true;
#ifdef TESSERA_CUDA_WGMMA
  if (sc >= kGemmTiledWgmma0) return GemmWgmmaSplitCombine(p, terms, sc - kGemmTiledWgmma0);
#endif
  return sc == -1 && GemmSplitChunksPerBlock(p) > 0;
}

bool GemmRmsFusable(const MatmulParams& p, int terms) {
  return GemmFusable(p, terms, kGemvProRms, false);
}

cudaError_t LaunchGemmBf16Fused(const MatmulParams& p, const GemvPrologue& pro, int terms,
                                uint16_t* planes, cudaStream_t stream) {
  if (p.M == 0 || p.N == 0) return cudaSuccess;
  if (!GemmFusable(p, terms, pro.kind, p.res_out != nullptr)) return cudaErrorInvalidValue;
  const GemvPrologue* q = pro.kind != kGemvProNone ? &pro : nullptr;
  return terms == 1 ? Gemm<1>(p, planes, stream, q) : Gemm<3>(p, planes, stream, q);
}

namespace {

// The LaunchGemmWgmma configuration a member of LaunchGemmBf16Members runs on the shared planes:
// SmallMChoice's at M <= kGemmRmsMaxRows, at prefill GemmTiledAuto's as LaunchGemmBf16Tiled runs
// it (cu-xsplit15); -1 where the default dispatch reads no wgmma planes.
int SharedSplitConfig(const MatmulParams& p, int terms) {
#ifdef TESSERA_CUDA_WGMMA
  if (p.M > kGemmRmsMaxRows)
    return GemmTiledWgmmaRun(p, terms, GemmTiledAuto(p, terms, DeviceSms()));
  const int sc = SmallMChoice(p, terms);
  return sc >= kGemmTiledWgmma0 ? sc - kGemmTiledWgmma0 : -1;
#else
  (void)p, (void)terms;
  return -1;
#endif
}

}  // namespace

bool GemmSharesSplit(const MatmulParams& p, int terms) {
#ifdef TESSERA_CUDA_WGMMA
  return p.M > kGemvMaxRows && p.M <= kGemmFuseMaxRows && Bf16FastPathEligible(p) && p.N > 0 &&
         p.res_out == nullptr && GemmVariant() == kGemmAuto && SharedSplitConfig(p, terms) >= 0;
#else
  (void)p, (void)terms;
  return false;
#endif
}

namespace {

std::atomic<int> g_group_mode{-1}, g_group_ctas{0};  // SetGemmGroupMode (-1: the environment's)

int GroupMode() {
  static const int env = EnvInt("TESSERA_CUDA_GEMM_GROUP", 1);
  const int mode = g_group_mode.load();
  return mode >= 0 ? mode : env;
}

// [first, last + 1) of p's outputs.
bool OutputsOverlap(const MatmulParams& a, const MatmulParams& b) {
  const float* a1 = a.out + (a.M - 1) * a.out_row + (a.N - 1) * a.out_col + 1;
  const float* b1 = b.out + (b.M - 1) * b.out_row + (b.N - 1) * b.out_col + 1;
  return a.out < b1 && b.out < a1;
}

// Whether LaunchGemmBf16Members runs ps as one grouped launch (gemm_wgmma.h LaunchGemmTmaGroup):
// two or more group members that GemmTmaGroupFits takes (the stream-K group where their tiles fill
// at most half the SMs; since cu21-x64 one launch of whole tiles where they fill more than half in
// one wave, k_gemm_tma.cu GroupPlain), outputs pairwise disjoint (the members write concurrently).
bool MembersGrouped(const MatmulParams* ps, int n, int terms) {
#ifdef TESSERA_CUDA_WGMMA
  if (n < 2 || !GemmTmaGroupFits(ps, n, terms)) return false;
  for (int j = 0; j < n; ++j) {
    if (!GemmGroupMember(ps[j], terms)) return false;
    for (int i = 0; i < j; ++i) {
      if (OutputsOverlap(ps[i], ps[j])) return false;
    }
  }
  return true;
#else
  (void)ps, (void)n, (void)terms;
  return false;
#endif
}

}  // namespace

bool GemmGroupMember(const MatmulParams& p, int terms) {
#ifdef TESSERA_CUDA_WGMMA
  (void)terms;
  return GroupMode() != 0 && p.M > 16 && p.M <= kGemmRmsMaxRows && Bf16FastPathEligible(p) &&
         p.N > 0 && p.K % 32 == 0 && p.K <= kRmsSplitMaxK && p.res_out == nullptr &&
         GemmVariant() == kGemmAuto && GemmWgmmaAvailable() && GemmTmaSplitKEnabled();
#else
  (void)p, (void)terms;
  return false;
#endif
}

bool GemmGroupFits(const MatmulParams* ps, int n, int terms) {
  return MembersGrouped(ps, n, terms);
}

void SetGemmGroupMode(int mode, int ctas) {
  g_group_mode.store(mode);
  g_group_ctas.store(ctas);
}

uint64_t GemmMembersScratchBytes(const MatmulParams* ps, int n, int terms) {
  uint64_t bytes = 0;  // the planes, then the largest member's chunk sums
  for (int j = 0; j < n; ++j) bytes = std::max(bytes, SplitPlaneBytes(ps[j], terms));
#ifdef TESSERA_CUDA_WGMMA
  if (MembersGrouped(ps, n, terms))
    bytes = std::max(bytes, GemmTmaGroupScratchBytes(ps, n, terms));  // every member's sums
#endif
  return bytes;
}

cudaError_t LaunchGemmBf16Members(const MatmulParams* ps, int n, const GemvPrologue& pro, int terms,
                                  uint16_t* planes, cudaStream_t stream) {
#ifdef TESSERA_CUDA_WGMMA
  if (n < 1 || n > kGemmMaxMembers) return cudaErrorInvalidValue;
  const bool grouped = MembersGrouped(ps, n, terms);
  for (int j = 0; j < n; ++j) {
    if ((!grouped && !GemmSharesSplit(ps[j], terms)) || ps[j].M != ps[0].M || ps[j].K != ps[0].K)
      return cudaErrorInvalidValue;
  }
  if (pro.kind == kGemvProRms && (ps[0].K + 31) / 32 * 32 > kRmsSplitMaxK)
    return cudaErrorInvalidValue;
  cudaError_t e = pro.kind == kGemvProRms
                      ? (terms == 1 ? LaunchRmsSplit<1>(ps[0], pro, true, planes, stream)
                                    : LaunchRmsSplit<3>(ps[0], pro, true, planes, stream))
                      : LaunchSplitBf16Wgmma(ps[0], terms, planes, stream);
  if (e == cudaSuccess && grouped)
    return LaunchGemmTmaGroup(ps, n, terms, planes, g_group_ctas.load(), stream);
  for (int j = 0; j < n && e == cudaSuccess; ++j)
    e = LaunchGemmWgmma(ps[j], terms, planes, SharedSplitConfig(ps[j], terms), stream);
  return e;
#else
  (void)ps, (void)n, (void)pro, (void)terms, (void)planes, (void)stream;
  return cudaErrorNotSupported;
#endif
}

cudaError_t LaunchGemmBf16Rms(const MatmulParams& p, const GemvPrologue& pro, int terms,
                              uint16_t* planes, cudaStream_t stream) {
  if (pro.kind != kGemvProRms) return cudaErrorInvalidValue;
  return LaunchGemmBf16Fused(p, pro, terms, planes, stream);
}

cudaError_t LaunchReadLab(int kind, const void* w, int64_t N, int64_t K, int warps, int per_sm,
                          int sms, uint32_t* sink, cudaStream_t stream) {
  const int threads = warps * 32;
  const unsigned groups = static_cast<unsigned>((N + 15) / 16);
  switch (kind) {
    case kReadPlain: {
      const int smem = per_sm > 0 ? (228 / per_sm - 2) * 1024 : 0;
      cudaError_t e = cudaFuncSetAttribute(ReadPlainKernel,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024);
      if (e != cudaSuccess) return e;
      ReadPlainKernel<<<static_cast<unsigned>(sms * per_sm), threads, smem, stream>>>(
          static_cast<const uint4*>(w), N * K * 2 / 16, sink);
      return cudaGetLastError();
    }
    case kReadHalf:
      return LaunchReadLabK(ReadPatternKernel<true, false>, groups, threads, per_sm, w, N, K, sink,
                            stream);
    case kReadHalfContig:
      return LaunchReadLabK(ReadPatternKernel<true, true>, groups, threads, per_sm, w, N, K, sink,
                            stream);
    case kReadFull:
      return LaunchReadLabK(ReadPatternKernel<false, false>, groups, threads, per_sm, w, N, K, sink,
                            stream);
    case kReadFullContig:
      return LaunchReadLabK(ReadPatternKernel<false, true>, groups, threads, per_sm, w, N, K, sink,
                            stream);
    case kReadHalfLines:
      return LaunchReadLabK(ReadLinesKernel<true>, groups, threads, per_sm, w, N, K, sink, stream);
    case kReadFullLines:
      return LaunchReadLabK(ReadLinesKernel<false>, groups, threads, per_sm, w, N, K, sink, stream);
    case kReadHalfLines4:
      return LaunchReadLabK(ReadLines4Kernel<true>, groups, threads, per_sm, w, N, K, sink, stream);
    case kReadFullLines4:
      return LaunchReadLabK(ReadLines4Kernel<false>, groups, threads, per_sm, w, N, K, sink,
                            stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t ProbeKernelImage() {
  cudaFuncAttributes attr;
  return cudaFuncGetAttributes(&attr, ProbeKernel);
}

void SetupGemvStamps() {
#ifdef TESSERA_GEMV_STAMPS
  if (g_stamp_host_ptr != nullptr || std::getenv("TESSERA_GEMV_STAMP_OUT") == nullptr) return;
  void* d = nullptr;
  if (cudaMalloc(&d, kGemvStampCap * sizeof(GemvStamp)) != cudaSuccess) return;
  cudaMemset(d, 0, kGemvStampCap * sizeof(GemvStamp));
  g_stamp_host_ptr = static_cast<GemvStamp*>(d);
  cudaMemcpyToSymbol(g_gemv_stamps, &g_stamp_host_ptr, sizeof(g_stamp_host_ptr));
  cudaDeviceSynchronize();
#endif
}

void DumpGemvStamps() {
#ifdef TESSERA_GEMV_STAMPS
  const char* path = std::getenv("TESSERA_GEMV_STAMP_OUT");
  if (path == nullptr || g_stamp_host_ptr == nullptr) return;
  cudaDeviceSynchronize();
  unsigned long long n = 0;
  cudaMemcpyFromSymbol(&n, g_gemv_stamp_seq, sizeof(n));
  const unsigned long long m = std::min(n, kGemvStampCap);
  std::vector<GemvStamp> h(kGemvStampCap);
  cudaMemcpy(h.data(), g_stamp_host_ptr, kGemvStampCap * sizeof(GemvStamp), cudaMemcpyDeviceToHost);
  if (FILE* f = std::fopen(path, "wb")) {  // in claim order, oldest first
    for (unsigned long long i = n - m; i < n; ++i)
      std::fwrite(&h[i % kGemvStampCap], sizeof(GemvStamp), 1, f);
    std::fclose(f);
  }
#endif
}

}  // namespace tessera::cuda
