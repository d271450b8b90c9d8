// Prefill GEMM on wgmma fed by the tensor-memory accelerator (sm_90a only; part of the
// tessera_cuda_wgmma library, reached through LaunchGemmWgmma's configurations >= kTmaConfig0,
// see gemm_wgmma.h).
//
// Bits: the canonical order of k_matmul_bf16.cu, exactly as k_gemm_wgmma.cu runs it (read its
// header first): per output element k32 blocks in order, per block the k16 steps j = 0, 1, per
// step one wgmma per piece, lo piece first; chunks of 8 k32 blocks summed from +0 in registers,
// chunk sums added in order into the totals, then the bias. Only the data movement differs.
//
// Operands: the weight rows are wgmma's M side (A, from registers, the mma.sync kernels' own A
// fragments: lane (g, q) holds row g / g + 8, k's 8q .. 8q + 7 of the k32 block), the tokens its
// N side (B, from shared memory through a descriptor). x is split by LaunchSplitBf16Wgmma into
// slot-permuted planes, so a k16 step's 16 k's are 32 contiguous bytes of a plane row and B can
// use the standard K-major 128-byte-swizzled layout.
//
// Pipeline (warp-specialized): warpgroup 0 is the producer (one thread issues, registers given
// back with setmaxnreg), warpgroups 1 and 2 the consumers. A stage is 64 k's: the weight tile
// [rows][64 k] and the planes [T][tokens][64 k], each row 128 bytes, loaded with
// cp.async.bulk.tensor (128-byte swizzle, the pattern the wgmma descriptor reads) and completed
// on the stage's "full" mbarrier (transaction bytes); the consumers read A fragments out of the
// swizzled tile, run the stage's wgmmas, wait for them and arrive on the stage's "empty" mbarrier,
// which the producer waits for before refilling the slot. Four stages are one canonical chunk.
//
// Split-K (SPLIT configurations, for decode batches whose tile grid fills few SMs; cuda-splitk):
// block z of grid.z walks only the canonical chunks [z per, (z + 1) per) and stores each chunk's
// sum, started from +0 as the canonical order starts it, to part[chunk][M][N] (after the planes
// in the same scratch); TmaCombineKernel adds the chunk sums in chunk order, then the bias. The
// same sequence per element, so the same bits (GemmSplit in k_matmul_bf16.cu does the same).
// Prefix (cuda-agg, default): block z = 0's chunks are the canonical order's first ones, so it
// totals them in registers exactly as the unsplit tile does (total = c0, total += c1, ...) and
// stores only that total, in chunk 0's slot; the combine starts from it and adds chunks per ..
// n - 1. The same sequence again, and 1 / splits fewer chunk sums written and read back
// (TESSERA_CUDA_TMA_SPLIT_PREFIX=0: every chunk stored, as before). A combine fused into the
// tile's last CTA (arrival counter) was measured and lost: that one CTA reads all the tile's
// chunk sums alone (lab/NOTES.md "Aggregate decode").
//
// Grouped stream-K (cuda-x64, GemmTmaGroupKernel below): a decode batch's GEMMs over one x split
// (q/k/v) in one launch of the split-K tiles, their (tile, chunk) units shared evenly by one CTA
// an SM; the tile's lead segment keeps the prefix total, the others store chunk sums, one combine
// adds them in chunk order: the same sequence again.
// Persistent tiles (PERSIST, cuda-gemm3; the prefill default through LaunchGemmBf16Tiled's
// PersistTwin): one CTA an SM walks a fixed list of tiles with the stage ring running on, so one
// tile's epilogue overlaps the next one's loads; each tile's elements see the same sequence. The
// x-splitting tiles (XS) split x in the producer instead of the pre-pass (same pieces, same
// places; measured slower, lab/NOTES.md "x split in the TMA producer").
// The 128 x 256 tile (MODE 1, ConsumeWide; cu-gemm16): each consumer 64 weight rows x 256
// tokens, the chunk totals of its first 128 tokens in registers and of the others in shared
// memory; the one-piece default where its grid fills the SMs with K >= 4096 (WideFits).
// A note on ptxas (cu-gemm17, lab/NOTES.md "seventeenth session"): a wgmma.commit_group that
// follows wgmmas issued under a branch (a block past K) is closed with a dummy wgmma
// (HGMMA.64x8x16 RZ, gsb0) on every path, so each block or stage is two groups and a
// wait_group 1 waits for the real wgmmas: the "pipelined" tiles drain the tensor pipe at every
// group. ConsumePre (MODE 6) and Consume's MODE 8 issue every block unconditionally (a block past
// K runs on TMA's zero fill: +0 products, every total unchanged) and have no dummy wgmma.
// cu-gemm18: ConsumePre's MODE 11 gives each lane the weight rows of its warp in a permuted order,
// so its A fragment loads are free of bank conflicts (see ConsumePre); the 8B default.
#include <cuda.h>  // CUtensorMap and its enums only: the driver is reached through cudart
#include <cudaTypedefs.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "backends/cuda/dev_common.cuh"
#include "backends/cuda/env_knob.h"
#include "backends/cuda/gemm_wgmma.h"
#include "backends/cuda/k_gemm_tma_ops.cuh"
#include "backends/cuda/mma_common.cuh"
#include "backends/cuda/smem_optin.h"
#include "backends/cuda/wgmma_ops.cuh"

namespace tessera::cuda {
namespace {

constexpr int kStageK = 64;      // k's a stage: one 128-byte swizzle row of bf16
constexpr int kChunkStages = 4;  // stages in a canonical chunk (256 k's)

// T pieces; MI m64 row blocks a consumer warpgroup; BM tokens a consumer warpgroup (the wgmma N);
// TSPLIT: the two consumers take different tokens of the same rows (tile 64 MI x 2 BM) instead
// of different rows of the same tokens (tile 128 MI x BM); S stages.
// CL: CTAs a cluster along the tokens (1 or 2); they share the weight tile, each loading 1 / CL
// of it and multicasting it to all. PIPE: a stage's wgmma group is waited for one stage later
// (two register sets of A fragments), so the tensor pipe is not drained at every stage.
// STAGGER: the second consumer starts once stage 2 has landed, so the two warpgroups' chunk-end
// drains (wait for all wgmmas, totals += chunk sums) fall at different times.
// TOTS: the chunk totals in shared memory ([consumer thread][MI x BM / 8] float4, each thread its
// own slots) instead of registers, which leaves room for BM = 256.
// SPLIT: split-K over grid.z (chunk sums to scratch, see above).
// XS: x split on the fly (cuda-gemm3): the producer warpgroup loads f32 x ([tokens][32 k] a k32
// block, TMA, 128-byte swizzle) into XS staging slots and writes its T bf16 pieces into the
// stage's plane tiles itself (see ProduceSplit), so no split pre-pass and no planes in memory.
// PERSIST: a persistent tile loop (cuda-gemm3): grid = min(tiles, SMs), CTA b takes tiles b,
// b + grid, ... in the launch order of the plain grid (token tiles fastest), and the stage ring
// runs on across tiles, so the producer loads the next tile while the consumers store this one.
// MODE (cu-gemm16): 1 = the 128 x 256 tile (ConsumeWide: a consumer's chunk totals half in
// registers, half in shared memory); -1 = the lab's "nochunk" diagnostic (all of K summed as one
// chunk, no totals: NOT the canonical order, wrong bits; it times what the chunk ends cost and
// bounds the tiles whose totals do not fit in registers). cu-gemm17: 6 = the 128 x 256 tile as
// ConsumePre (no dummy wgmma, A fragments a block ahead, the shared totals in one batch); 8 =
// Consume with every block issued unconditionally (no dummy wgmma); -2 = ConsumeWide without
// the shared-memory half of its chunk totals (a diagnostic: wrong bits). cu-gemm18: 11 = 6 with
// a warp's weight rows permuted over its lanes (A fragment loads without bank conflicts).
template <int T_, int MI_, int BM_, bool TSPLIT_, int S_, int CL_ = 1, bool PIPE_ = false,
          bool STAGGER_ = false, bool TOTS_ = false, bool SPLIT_ = false, int XS_ = 0,
          bool PERSIST_ = false, int MODE_ = 0>
struct TCfg {
  static constexpr int T = T_, MI = MI_, BM = BM_, S = S_, CL = CL_, XS = XS_, MODE = MODE_;
  static constexpr bool TSPLIT = TSPLIT_, PIPE = PIPE_, STAGGER = STAGGER_, TOTS = TOTS_;
  static constexpr bool SPLIT = SPLIT_, PERSIST = PERSIST_;
  static_assert(!SPLIT || (!TOTS && CL == 1), "split-K keeps its chunk sums in registers");
  static_assert(XS == 0 || (!SPLIT && CL == 1 && !TOTS), "x split: plain tiles only");
  static_assert(!PERSIST || (!SPLIT && CL == 1 && XS == 0), "persistent: plain tiles");
  static constexpr bool kWide =
      MODE == 1 || MODE == 6 || MODE == -2 || MODE == 11;  // the 128 x 256 tiles
  static constexpr bool kPermRows = MODE == 11;            // ConsumePre's lanes own permuted rows
  static_assert(!kWide ||
                    (PERSIST && MI == 1 && !TSPLIT && BM == 256 && T == 1 && !TOTS && !STAGGER),
                "the 128 x 256 tile: persistent, one piece (see ConsumeWide)");
  static_assert(MODE != 8 || !TOTS, "MODE 8: totals in registers (Consume)");
  static_assert(MODE >= 0 || (PERSIST && !TOTS), "nochunk: persistent diagnostic tiles");
  using Unsplit =
      TCfg<T_, MI_, BM_, TSPLIT_, S_, CL_, PIPE_, STAGGER_, TOTS_, false, XS_, PERSIST_, MODE_>;
  static constexpr int kRows = TSPLIT ? 64 * MI : 128 * MI;           // weight rows a CTA
  static constexpr int kToks = TSPLIT ? 2 * BM : BM;                  // tokens a CTA
  static constexpr int kABytes = kRows * 128, kBBytes = kToks * 128;  // a stage's tile, a plane
  static constexpr int kStage = kABytes + T * kBBytes;
  static constexpr int kXBytes = kToks * 128;  // an f32 staging slot: [tokens][32 k]
  // Stages (1024-byte aligned for the swizzle: + 1024 of slack), the totals, the x staging slots
  // and 2 S + XS mbarriers.
  // TOTS: BM / 2 floats a thread; MODE 1: the second half of them (BM / 4).
  static constexpr int kTotBytes = TOTS ? 256 * MI * BM * 2 : (kWide ? 256 * MI * BM : 0);
  static constexpr int kSmem = S * kStage + kTotBytes + XS * kXBytes + 1024 + (2 * S + XS) * 8;
  static constexpr int kThreads = 384;
  // Registers a thread after setmaxnreg (the pool: 168 x 384): the splitting producer needs more.
  static constexpr int kProdRegs = XS > 0 ? 56 : 40, kConsRegs = XS > 0 ? 224 : 232;
  static_assert(kRows <= 256 && kToks <= 256, "TMA box dimensions");
  static_assert(kSmem <= 227 * 1024, "shared memory");
  static_assert(BM % 8 == 0 && kToks % 8 == 0, "swizzle atoms of 8 rows");
  static_assert(XS == 0 || kToks % 64 == 0, "x split: whole items a producer thread");
  static_assert((kRows / CL) % 8 == 0 && (CL == 1 || CL == 2), "whole atoms a multicast part");
};

__device__ __forceinline__ uint32_t SmemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void MbarInit(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void MbarExpectTx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void MbarArrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Arrives on the barrier at the same shared-memory offset in cluster CTA `rank` (this CTA too).
// Default semantics (release at CTA scope), as CUTLASS's ClusterBarrier::arrive(cta_id): with
// `.release.cluster` the 2-CTA tile ran at 0.56x the plain tile, with this at 0.85-0.95x
// (cu-gemm13, lab/NOTES.md "Prefill GEMM, thirteenth session").
__device__ __forceinline__ void MbarArriveCluster(uint32_t bar, uint32_t rank) {
  asm volatile(
      "{\n.reg .b32 ra;\nmapa.shared::cluster.u32 ra, %0, %1;\n"
      "mbarrier.arrive.shared::cluster.b64 _, [ra];\n}\n" ::"r"(bar),
      "r"(rank)
      : "memory");
}
__device__ __forceinline__ uint32_t ClusterRank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}
__device__ __forceinline__ void ClusterSync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::
                   : "memory");
}

__device__ __forceinline__ void TmaLoad2D(uint32_t dst, const CUtensorMap* map, int c0, int c1,
                                          uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, "
      "%3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}
// TmaLoad2D with an L2 cache policy (createpolicy): the weight tiles of a decode batch, read by
// one CTA each, as evict-first (cu24-x64, see WeightEvictFirst).
__device__ __forceinline__ void TmaLoad2DHint(uint32_t dst, const CUtensorMap* map, int c0, int c1,
                                              uint32_t bar, uint64_t policy) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint "
      "[%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar), "l"(policy)
      : "memory");
}
__device__ __forceinline__ uint64_t EvictFirstPolicy() {
  uint64_t pol;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(pol));
  return pol;
}
// The weight tile of stage (k0, n0): with the evict-first hint where `evict` (uniform), else plain.
__device__ __forceinline__ void TmaLoadWeights(uint32_t dst, const CUtensorMap* map, int k0, int n0,
                                               uint32_t bar, bool evict, uint64_t policy) {
  if (evict) {
    TmaLoad2DHint(dst, map, k0, n0, bar, policy);
  } else {
    TmaLoad2D(dst, map, k0, n0, bar);
  }
}

// The same box into every CTA of `mask` (same shared-memory offsets, each CTA's own barrier).
__device__ __forceinline__ void TmaLoad2DMulticast(uint32_t dst, const CUtensorMap* map, int c0,
                                                   int c1, uint32_t bar, uint16_t mask) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::"
      "cluster [%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar), "h"(mask)
      : "memory");
}
__device__ __forceinline__ void TmaLoad3D(uint32_t dst, const CUtensorMap* map, int c0, int c1,
                                          int c2, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, "
      "%3, %4}], [%5];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
      : "memory");
}

// K-major operand, 128-byte swizzle: 8-row atoms 1024 bytes apart (stride byte offset), the
// leading byte offset unused; a k16 step inside the 128-byte row starts 32 bytes further.
__device__ __forceinline__ uint64_t Sw128Desc(uint32_t addr) {
  return static_cast<uint64_t>((addr & 0x3ffff) >> 4) | (uint64_t{1} << 16) |
         (uint64_t{1024 >> 4} << 32) | (uint64_t{1} << 62);
}

// 16-byte chunk c (0 .. 7) of row r of a 128-byte-swizzled tile (1024-byte aligned).
__device__ __forceinline__ uint4 SwzLoad(const uint8_t* tile, int r, int c) {
  return *reinterpret_cast<const uint4*>(tile + r * 128 + ((c ^ (r & 7)) << 4));
}

// Stage st of a consumer: waits for its data, loads the A fragments into `ra`, issues its wgmmas
// (one commit group). `sb`: the warpgroup's B tile in the stage's slot.
template <class C>
__device__ __forceinline__ void IssueStage(const uint8_t* sm, uint32_t base, uint32_t bars,
                                           int row0, int tok0, int q, int st, int st0, int64_t nkb,
                                           uint4 (&ra)[2][C::MI][2], float (&acc)[C::MI][C::BM / 2],
                                           int pre = -1) {
  const int s = st % C::S;
  if constexpr (C::STAGGER) {  // first the stage `pre` (ring index; -1: none), see Consume
    const int w = pre < 0 ? st : pre;
    MbarWait(bars + 8 * (w % C::S), (w / C::S) & 1);
  }
  MbarWait(bars + 8 * s, (st / C::S) & 1);
  const uint8_t* sa = sm + s * C::kStage;
  // Lanes of odd g take the second k32 block first: a quarter-warp (g, g + 1) then reads both
  // halves of the 128-byte rows instead of the same half of two rows (a 2-way bank conflict).
  const int odd = row0 & 1;  // = g & 1
#pragma unroll
  for (int mi = 0; mi < C::MI; ++mi) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint4 v0 = SwzLoad(sa, row0 + 64 * mi + 8 * h, 4 * odd + q);
      const uint4 v1 = SwzLoad(sa, row0 + 64 * mi + 8 * h, 4 * (odd ^ 1) + q);
      ra[0][mi][h] = odd ? v1 : v0;
      ra[1][mi][h] = odd ? v0 : v1;
    }
  }
  const uint32_t sb = base + s * C::kStage + C::kABytes + tok0 * 128;
  WgmmaFence();
#pragma unroll
  for (int b = 0; b < 2; ++b) {
    // Uniform; never a block the GEMV does not run. st is the block's own stage index (slots and
    // phases), st0 + st the stage of K (split-K).
    if (C::MODE != 8 && 2 * int64_t{st0 + st} + b >= nkb) break;  // MODE 8: none (see top)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
#pragma unroll
      for (int t = C::T - 1; t >= 0; --t) {
        const uint64_t desc = Sw128Desc(sb + t * C::kBBytes + (2 * b + j) * 32);
#pragma unroll
        for (int mi = 0; mi < C::MI; ++mi) {
          const uint4& r0 = ra[b][mi][0];
          const uint4& r1 = ra[b][mi][1];
          WgmmaRS<C::BM>(acc[mi], Word(r0, 2 * j), Word(r1, 2 * j), Word(r0, 2 * j + 1),
                         Word(r1, 2 * j + 1), desc);
        }
      }
    }
  }
  WgmmaCommit();
}

// Stage st's slot is free again, in every CTA of the cluster (their producers write into it too).
// Called by each consumer warp after its wait for the stage's wgmma group.
template <class C>
__device__ __forceinline__ void ReleaseStage(uint32_t bars, int st, int lane) {
  const int s = st % C::S;
  __syncwarp();
  if constexpr (C::CL == 1) {
    if (lane == 0) MbarArrive(bars + 8 * (C::S + s));
  } else {
    if (lane < C::CL) MbarArriveCluster(bars + 8 * (C::S + s), lane);
  }
}

// The consumer warpgroup `cw` (0, 1): all chunks of its part of the tile, then the epilogue.
// Stages [st0, st0 + nst) of K (st0 a chunk boundary); split-K stores each chunk's sum to `part`.
// (bx, by): the tile (token tile, weight-row tile); ring0: the stage ring's position at its first
// stage (persistent tiles; 0 otherwise): stage st of K uses ring index ring0 + st.
// lead (split-K): these stages are the tile's first chunks and their running total goes to chunk
// 0's slot (the prefix), instead of each chunk's sum.
template <class C>
__device__ __forceinline__ void Consume(const MatmulParams& p, const uint8_t* sm, uint32_t base,
                                        uint32_t bars, int cw, int64_t nkb, int st0, int nst,
                                        float* part, bool lead, int bx, int by, int ring0) {
  const int warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
  const int g = lane / 4, q = lane % 4;
  const int row0 = (C::TSPLIT ? 0 : cw * 64 * C::MI) + 16 * warp + g;  // + 64 mi (+ 8)
  const int tok0 = C::TSPLIT ? cw * C::BM : 0;
  const int64_t m0 = bx * int64_t{C::kToks}, n0 = by * int64_t{C::kRows};
  // IssueStage / ReleaseStage take the ring index (slot, phase); st0 - ring0 + it is K's stage.
  const int sk = st0 - ring0;
  float acc[C::MI][C::BM / 2];
  constexpr bool kRegTots = !C::TOTS && C::MODE >= 0;
  float tot[kRegTots ? C::MI : 1][kRegTots ? C::BM / 2 : 1];
  // [MI x BM / 8][256 consumer threads] float4: a warp's slots are 512 contiguous bytes.
  float4* tot_s =
      reinterpret_cast<float4*>(const_cast<uint8_t*>(sm) + C::S * C::kStage) + (threadIdx.x - 128);
  uint4 ra0[2][C::MI][2], ra1[2][C::MI][2];
  // STAGGER: consumer 1 starts the CTA's first tile once stage 2 has landed (persistent tiles: the
  // first tile only); the wait sits in IssueStage, which every thread runs (ptxas serializes
  // every wgmma of a kernel with this wait on a consumer-1-only path: C7520, the cause of the
  // staggered tiles' 15-25% loss before cu-gemm16).
  const int pre = C::STAGGER && ring0 == 0 && cw == 1 ? (nst - 1 < 2 ? nst - 1 : 2) : -1;
  // The chunk's stages: kChunkStages, or all of K (nochunk diagnostic).
  const int cs = C::MODE < 0 ? nst : kChunkStages;
  for (int c0 = 0; c0 < nst; c0 += cs) {
    // Zeroed only here, where no wgmma is in flight (ptxas serializes wgmma otherwise).
#pragma unroll
    for (int mi = 0; mi < C::MI; ++mi) {
#pragma unroll
      for (int i = 0; i < C::BM / 2; ++i) acc[mi][i] = 0.0f;
    }
    const int c1 = c0 + cs < nst ? c0 + cs : nst;
    if constexpr (!C::PIPE) {
      for (int st = c0; st < c1; ++st) {
        IssueStage<C>(sm, base, bars, row0, tok0, q, ring0 + st, sk, nkb, ra0, acc,
                      st == 0 ? pre : -1);
        WgmmaWait<0>();
        ReleaseStage<C>(bars, ring0 + st, lane);
      }
    } else {
      // Stages in pairs, alternating A register sets: stage st + 2 overwrites the set of stage st
      // only after wait_group 1 has seen st's group complete.
      for (int st = c0; st < c1; st += 2) {
        IssueStage<C>(sm, base, bars, row0, tok0, q, ring0 + st, sk, nkb, ra0, acc,
                      st == 0 ? pre : -1);
        if (st > c0) {
          WgmmaWait<1>();
          ReleaseStage<C>(bars, ring0 + st - 1, lane);
        }
        if (st + 1 < c1) {
          IssueStage<C>(sm, base, bars, row0, tok0, q, ring0 + st + 1, sk, nkb, ra1, acc);
          WgmmaWait<1>();
          ReleaseStage<C>(bars, ring0 + st, lane);
        }
      }
      WgmmaWait<0>();
      ReleaseStage<C>(bars, ring0 + c1 - 1, lane);
    }
    // The chunk's sum, from +0, to part[chunk][m][n]; the lead stages total their chunks.
    if (C::SPLIT && !lead) {
      float* pc = part + ((st0 + c0) / kChunkStages) * p.M * p.N;
#pragma unroll
      for (int mi = 0; mi < C::MI; ++mi) {
#pragma unroll
        for (int jj = 0; jj < C::BM / 8; ++jj) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int64_t n = n0 + row0 + 64 * mi + (e >= 2 ? 8 : 0);
            const int64_t m = m0 + tok0 + jj * 8 + 2 * q + (e & 1);
            if (n < p.N && m < p.M) pc[m * p.N + n] = acc[mi][4 * jj + e];
          }
        }
      }
      continue;
    }
    // nochunk: the epilogue reads acc.
    if constexpr (C::MODE < 0) continue;
    const bool first = c0 == 0;  // end of a chunk: total (+)= its sum
#pragma unroll
    for (int mi = 0; mi < C::MI; ++mi) {
      if constexpr (C::TOTS) {
#pragma unroll
        for (int i4 = 0; i4 < C::BM / 8; ++i4) {
          float4* slot = tot_s + (mi * (C::BM / 8) + i4) * 256;
          const float* a = &acc[mi][4 * i4];
          float4 v = make_float4(a[0], a[1], a[2], a[3]);
          if (!first) {
            const float4 o = *slot;
            v = make_float4(o.x + v.x, o.y + v.y, o.z + v.z, o.w + v.w);
          }
          *slot = v;
        }
      } else {
#pragma unroll
        for (int i = 0; i < C::BM / 2; ++i) {
          tot[mi][i] = first ? acc[mi][i] : tot[mi][i] + acc[mi][i];
        }
      }
    }
  }
  if (C::SPLIT && !lead) {
    return;  // its chunk sums are stored
  }
  // Accumulator element 4j + e: weight row 16 warp + g (+ 8 for e >= 2), token 8j + 2q + e % 2.
#pragma unroll
  for (int mi = 0; mi < C::MI; ++mi) {
#pragma unroll
    for (int jj = 0; jj < C::BM / 8; ++jj) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t n = n0 + row0 + 64 * mi + (e >= 2 ? 8 : 0);
        const int64_t m = m0 + tok0 + jj * 8 + 2 * q + (e & 1);
        if (n >= p.N || m >= p.M) continue;
        float v;
        if constexpr (C::TOTS) {
          const float4 t4 = tot_s[(mi * (C::BM / 8) + jj) * 256];  // own slots
          v = e == 0 ? t4.x : (e == 1 ? t4.y : (e == 2 ? t4.z : t4.w));
        } else if constexpr (C::MODE < 0) {
          v = acc[mi][4 * jj + e];
        } else {
          v = tot[mi][4 * jj + e];
        }
        if constexpr (C::SPLIT) {  // block 0's prefix total to chunk 0's slot; the combine ends
          part[m * p.N + n] = v;
          continue;
        }
        if (p.bias != nullptr) v += p.bias[n];  // no "+ 0" without bias: -0 stays -0
        p.out[m * p.out_row + n * p.out_col] = v;
      }
    }
  }
}

// The epilogue of the 128 x 256 tiles: totals + bias to out.
template <class C>
__device__ __forceinline__ void WideEpilogue(const MatmulParams& p, const float (&tot)[C::BM / 4],
                                             const float4* tot_s, int64_t m0, int64_t n0, int row0,
                                             int q) {
  // Accumulator element 4j + e: weight row 16 warp + g (+ 8 for e >= 2), token 8j + 2q + e % 2.
#pragma unroll
  for (int jj = 0; jj < C::BM / 8; ++jj) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int64_t n = n0 + row0 + (e >= 2 ? 8 : 0);
      const int64_t m = m0 + jj * 8 + 2 * q + (e & 1);
      if (n >= p.N || m >= p.M) continue;
      float v;
      if (jj < C::BM / 16) {
        v = tot[4 * jj + e];
      } else {
        const float4 t4 = tot_s[(jj - C::BM / 16) * 256];  // own slots
        v = e == 0 ? t4.x : (e == 1 ? t4.y : (e == 2 ? t4.z : t4.w));
      }
      if (p.bias != nullptr) v += p.bias[n];  // no "+ 0" without bias: -0 stays -0
      p.out[m * p.out_row + n * p.out_col] = v;
    }
  }
}

// ---- The 128 x 256 tile (MODE 1; cu-gemm16) ----
// A consumer warpgroup holds a 64 x 256 accumulator (128 floats a thread: one m64n256k16 chain a
// k16 step), so the chunk totals do not fit next to it in registers: the totals of tokens 0 ..
// 127 stay in registers (64 floats), those of tokens 128 .. 255 in shared memory (each thread its
// own 16 float4 slots, [slot][256 consumer threads]: conflict-free), added at chunk ends. The A
// fragments come a k32 block at a time (two sets of 8 registers instead of two stages' 32): each
// block is one commit group and wait_group 1 frees the set the next block loads into, so the
// tensor pipe is drained only at chunk ends, as in the pipelined tiles. Per element the same
// sequence as Consume (k32 blocks, k16 steps and the piece in order, chunks from +0, chunk sums
// added in order, then the bias): the same bits. One piece only (a three-piece stage would fill
// shared memory alone).
template <class C>
__device__ __forceinline__ void ConsumeWide(const MatmulParams& p, const uint8_t* sm, uint32_t base,
                                            uint32_t bars, int cw, int64_t nkb, int nst, int bx,
                                            int by, int ring0) {
  constexpr int kRegTot = C::BM / 4;  // totals in registers: tokens 0 .. BM / 2 - 1
  const int warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
  const int g = lane / 4, q = lane % 4;
  const int row0 = cw * 64 + 16 * warp + g;  // (+ 8)
  const int64_t m0 = bx * int64_t{C::kToks}, n0 = by * int64_t{C::kRows};
  float acc[C::BM / 2], tot[kRegTot];
  // [BM / 16 slots][256 consumer threads] float4: the totals of tokens BM / 2 ..
  float4* tot_s =
      reinterpret_cast<float4*>(const_cast<uint8_t*>(sm) + C::S * C::kStage) + (threadIdx.x - 128);
  uint4 ra[2][2];  // [k32 block][row g / g + 8]
  for (int c0 = 0; c0 < nst; c0 += kChunkStages) {
#pragma unroll
    for (int i = 0; i < C::BM / 2; ++i) acc[i] = 0.0f;  // nothing in flight here
    const int c1 = c0 + kChunkStages < nst ? c0 + kChunkStages : nst;
    for (int st = c0; st < c1; ++st) {
      const int r = ring0 + st;
      const int s = r % C::S;
      MbarWait(bars + 8 * s, (r / C::S) & 1);
      const uint8_t* sa = sm + s * C::kStage;
      const uint32_t sb = base + s * C::kStage + C::kABytes;
#pragma unroll
      for (int b = 0; b < 2; ++b) {
        // Set b was last read by the previous stage's block b: done once at most one group (the
        // previous stage's block 1 / this stage's block 0) is pending.
        WgmmaWait<1>();
        if (b == 1 && st > c0) ReleaseStage<C>(bars, r - 1, lane);  // the previous stage is done
#pragma unroll
        for (int h = 0; h < 2; ++h) ra[b][h] = SwzLoad(sa, row0 + 8 * h, 4 * b + q);
        WgmmaFence();
        // Uniform; never a block the GEMV does not run. (This branch costs a dummy wgmma a block,
        // see the top of the file; ConsumePre has none.)
        if (2 * int64_t{st} + b < nkb) {
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            const uint64_t desc = Sw128Desc(sb + (2 * b + j) * 32);
            WgmmaRS<C::BM>(acc, Word(ra[b][0], 2 * j), Word(ra[b][1], 2 * j),
                           Word(ra[b][0], 2 * j + 1), Word(ra[b][1], 2 * j + 1), desc);
          }
        }
        WgmmaCommit();  // one group a block (empty past K)
      }
    }
    WgmmaWait<0>();
    ReleaseStage<C>(bars, ring0 + c1 - 1, lane);
    const bool first = c0 == 0;  // end of a chunk: total (+)= its sum
#pragma unroll
    for (int i = 0; i < kRegTot; ++i) tot[i] = first ? acc[i] : tot[i] + acc[i];
#pragma unroll
    for (int i4 = 0; i4 < (C::MODE == -2 ? 0 : C::BM / 16); ++i4) {  // -2: diagnostic, none
      float4* slot = tot_s + i4 * 256;
      const float* a = &acc[kRegTot + 4 * i4];
      float4 v = make_float4(a[0], a[1], a[2], a[3]);
      if (!first) {
        const float4 o = *slot;
        v = make_float4(o.x + v.x, o.y + v.y, o.z + v.z, o.w + v.w);
      }
      *slot = v;
    }
  }
  WideEpilogue<C>(p, tot, tot_s, m0, n0, row0, q);
}

// ---- The 128 x 256 tile, pipelined (MODE 6; cu-gemm17) ----
// A chunk end of the 128 x 256 tile in ConsumePre: total (+)= the chunk's sum,
// tokens 0 .. 127 in registers, 128 .. 255 in the thread's own shared-memory slots. ConsumeWide
// reads and writes the slots two float4 at a time behind a branch on `first` (ptxas keeps only 8
// registers for them: 8 round trips of shared-memory latency a chunk, the largest stall of its ncu
// source counters' short-scoreboard stalls); here the branch is hoisted and all 16 slots are read
// before any add, into the registers of tokens 0 .. 127 (free once their totals are taken). The
// same adds in the same order: the same bits.
template <class C>
__device__ __forceinline__ void WideChunkEnd(float (&acc)[C::BM / 2], float (&tot)[C::BM / 4],
                                             float4* tot_s, bool first) {
  constexpr int kRegTot = C::BM / 4;
  if (first) {
#pragma unroll
    for (int i = 0; i < kRegTot; ++i) tot[i] = acc[i];
#pragma unroll
    for (int i4 = 0; i4 < C::BM / 16; ++i4) {
      const float* a = &acc[kRegTot + 4 * i4];
      tot_s[i4 * 256] = make_float4(a[0], a[1], a[2], a[3]);
    }
  } else {
#pragma unroll
    for (int i = 0; i < kRegTot; ++i) tot[i] = tot[i] + acc[i];
    float4 o[C::BM / 16];
#pragma unroll
    for (int i4 = 0; i4 < C::BM / 16; ++i4) o[i4] = tot_s[i4 * 256];
#pragma unroll
    for (int i4 = 0; i4 < C::BM / 16; ++i4) {
      const float* a = &acc[kRegTot + 4 * i4];
      tot_s[i4 * 256] = make_float4(o[i4].x + a[0], o[i4].y + a[1], o[i4].z + a[2], o[i4].w + a[3]);
    }
  }
}

// ConsumeWide (the same tile, totals and per-element sequence, so the same bits) with
// - every block's wgmmas issued unconditionally (a block past K, the last stage's second one when
//   K has an odd number of k32 blocks, runs on TMA's zero fill: its products are +0, and adding
//   +0 leaves a total as it is, a canonical chunk sum starting from +0 is never -0), so ptxas adds
//   no dummy wgmma and wait_group 1 leaves the block in flight (see the top of the file);
// - the A fragments of block k + 1 loaded while block k's wgmmas run: issue block k (set k % 2),
//   wait_group 1 (block k - 1 done: its set is free, and its stage's slot if it was the stage's
//   second block), then block k + 1's stage barrier and A loads (in this order ptxas neither
//   serializes nor injects waits; loading before the issue, as ConsumeWide does, gets C7513
//   without the branch);
// - WideChunkEnd (all 16 shared totals read before any add);
// - (MODE 11, cu-gemm18) lane (g, q) owning weight row gp (and gp + 8) of its warp's 16, gp = g
//   with bits 0 and 2 swapped. An LDS.128 is served 8 lanes at a time, g = 2i and 2i + 1; with
//   rows g and g + 1 the 128-byte swizzle (chunk c of row r at c ^ (r & 7)) puts the k32 block of
//   both rows in the same half of the banks: a 2-way conflict on every A fragment load (ncu of
//   configuration 26: half of its shared wavefronts excessive). Rows gp differ in bit 2, so the
//   two halves. The accumulator's row g is then weight row gp, and the epilogue writes it there:
//   per element the same wgmmas in the same order, the same bits. H100 (lab/NOTES.md "Prefill
//   GEMM, eighteenth session"): 1.011x configuration 26 on the 8B shapes, no excessive wavefronts.
// One commit group a block. H100 (lab/NOTES.md "Call 3 of gemm17_gpu.sh"): 1.12x ConsumeWide on
// the 8B shapes, the GEMV's bits (with the branch, cu-gemm17's earlier calls: 0.95x).
template <class C>
__device__ __forceinline__ void ConsumePre(const MatmulParams& p, const uint8_t* sm, uint32_t base,
                                           uint32_t bars, int cw, int64_t nkb, int nst, int bx,
                                           int by, int ring0) {
  constexpr int kChunk = 2 * kChunkStages;  // blocks a canonical chunk
  const int warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
  const int g = lane / 4, q = lane % 4;
  const int gp = C::kPermRows ? ((g & 1) << 2) | (g & 2) | (g >> 2) : g;  // MODE 11: see above
  const int row0 = cw * 64 + 16 * warp + gp;                              // (+ 8)
  const int64_t m0 = bx * int64_t{C::kToks}, n0 = by * int64_t{C::kRows};
  float acc[C::BM / 2], tot[C::BM / 4];
  float4* tot_s =
      reinterpret_cast<float4*>(const_cast<uint8_t*>(sm) + C::S * C::kStage) + (threadIdx.x - 128);
  uint4 ra[2][2];          // [block % 2][row gp / gp + 8]
  (void)nkb;               // blocks past K run on zeros (above)
  const int nb = 2 * nst;  // blocks of the stages
  // Block k's A fragments into set `set`, after waiting for its stage when it starts one.
  const auto load_a = [&](int k, int set) {
    const int r = ring0 + k / 2;
    const int s = r % C::S;
    if (k % 2 == 0) MbarWait(bars + 8 * s, (r / C::S) & 1);
    const uint8_t* sa = sm + s * C::kStage;
#pragma unroll
    for (int h = 0; h < 2; ++h) ra[set][h] = SwzLoad(sa, row0 + 8 * h, 4 * (k % 2) + q);
  };
  load_a(0, 0);
  for (int c0 = 0; c0 < nb; c0 += kChunk) {
#pragma unroll
    for (int i = 0; i < C::BM / 2; ++i) acc[i] = 0.0f;   // nothing in flight here
    const int c1 = c0 + kChunk < nb ? c0 + kChunk : nb;  // c1 - c0 is even
    for (int k0 = c0; k0 < c1; k0 += 2) {                // stage k0 / 2
      const int r = ring0 + k0 / 2;
      const uint32_t sb = base + (r % C::S) * C::kStage + C::kABytes;
#pragma unroll
      for (int b = 0; b < 2; ++b) {  // block k0 + b, set b
        WgmmaFence();
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const uint64_t desc = Sw128Desc(sb + (2 * b + j) * 32);
          WgmmaRS<C::BM>(acc, Word(ra[b][0], 2 * j), Word(ra[b][1], 2 * j),
                         Word(ra[b][0], 2 * j + 1), Word(ra[b][1], 2 * j + 1), desc);
        }
        WgmmaCommit();
        WgmmaWait<1>();                                             // block k0 + b - 1 is done
        if (b == 0 && k0 > c0) ReleaseStage<C>(bars, r - 1, lane);  // its stage, last block
        if (k0 + b + 1 < nb) load_a(k0 + b + 1, b ^ 1);             // set b ^ 1: block k0 + b - 1's
      }
    }
    WgmmaWait<0>();
    ReleaseStage<C>(bars, ring0 + (c1 - 1) / 2, lane);  // the chunk's last stage
    WideChunkEnd<C>(acc, tot, tot_s, c0 == 0);
  }
  WideEpilogue<C>(p, tot, tot_s, m0, n0, row0, q);
}

// ---- x split in the producer (XS configurations; cuda-gemm3) ----
// The pieces are those of LaunchSplitBf16Wgmma (a pure function of each f32 value: round to bf16,
// keep the exact remainder, T times) at the positions its slot-permuted planes give them, written
// into the stage's 128-byte-swizzled plane tiles exactly where the plane TMA would put them; the
// consumers cannot tell the difference, so the bits are the same.

__device__ __forceinline__ void ProducerSync() {  // named barrier 1: the producer warpgroup only
  asm volatile("bar.sync 1, 128;\n" ::: "memory");
}
// Generic-proxy shared-memory accesses ordered before later async-proxy ones (wgmma, TMA).
__device__ __forceinline__ void FenceProxyAsync() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// k32 block u of x (tokens m0 .. m0 + toks - 1) into staging slot u % XS; out-of-range k's and
// tokens read as +0, as the pre-pass pads them.
template <class C>
__device__ __forceinline__ void LoadXBlock(const CUtensorMap* fmap, uint32_t xbase, uint32_t xbars,
                                           int m0, int u) {
  const int x = u % C::XS;
  MbarExpectTx(xbars + 8 * x, C::kXBytes);
  TmaLoad2D(xbase + x * C::kXBytes, fmap, u * 32, m0, xbars + 8 * x);
}

// Splits the staged k32 block (f32 [tokens][32 k], swizzled) into block b (0, 1) of the stage's T
// plane tiles. Item (token, j): the f32 16-byte chunks 2i + j (i = 0 .. 3) hold k = 8i + 4j + 0..3,
// whose pairs (0, 1) / (2, 3) are word i of the permuted chunks 2j / 2j + 1 (SlotK in
// k_gemm_wgmma.cu). Eight consecutive threads take eight consecutive tokens: distinct banks for
// both the swizzled reads and the swizzled writes.
template <class C>
__device__ __forceinline__ void SplitXBlock(const uint8_t* xs, uint8_t* planes, int b, int pt) {
#pragma unroll
  for (int it = 0; it < C::kToks * 2 / 128; ++it) {
    const int idx = it * 128 + pt;
    const int tok = idx % C::kToks, j = idx / C::kToks, sw = tok & 7;
    float4 f[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      f[i] = *reinterpret_cast<const float4*>(xs + tok * 128 + (((2 * i + j) ^ sw) << 4));
    }
#pragma unroll
    for (int t = 0; t < C::T; ++t) {
      uint32_t w[2][4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const __nv_bfloat162 h0 = __floats2bfloat162_rn(f[i].x, f[i].y);
        const __nv_bfloat162 h1 = __floats2bfloat162_rn(f[i].z, f[i].w);
        w[0][i] = *reinterpret_cast<const uint32_t*>(&h0);
        w[1][i] = *reinterpret_cast<const uint32_t*>(&h1);
        f[i].x = f[i].x - __low2float(h0);
        f[i].y = f[i].y - __high2float(h0);
        f[i].z = f[i].z - __low2float(h1);
        f[i].w = f[i].w - __high2float(h1);
      }
      uint8_t* row = planes + t * C::kBBytes + tok * 128;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        *reinterpret_cast<uint4*>(row + (((4 * b + 2 * j + h) ^ sw) << 4)) =
            make_uint4(w[h][0], w[h][1], w[h][2], w[h][3]);
      }
    }
  }
}

// The producer warpgroup of an XS configuration (all 128 threads): per stage, wait for the slot,
// thread 0 loads the weight tile (TMA), everyone splits the stage's two k32 blocks of x from the
// staging ring into the slot's planes; then a proxy fence and one arrival a thread on the stage's
// full barrier (1 + 128 arrivals: thread 0's expect_tx, then everyone's). A staging slot is
// refilled (block u + XS) once all threads are past the named barrier after block u.
template <class C>
__device__ __forceinline__ void ProduceSplit(const CUtensorMap* wmap, const CUtensorMap* fmap,
                                             uint8_t* sm, uint32_t base, uint32_t bars, int64_t nkb,
                                             int nst) {
  const int pt = threadIdx.x;
  const uint32_t xoff = C::S * C::kStage + C::kTotBytes;
  const uint32_t xbase = base + xoff, xbars = bars + 16 * C::S;
  const int n0 = static_cast<int>(blockIdx.y) * C::kRows;
  const int m0 = static_cast<int>(blockIdx.x) * C::kToks;
  const int nu = static_cast<int>(nkb);  // k32 blocks (no split-K with XS: the whole of K)
  if (pt == 0) {
    for (int u = 0; u < C::XS && u < nu; ++u) LoadXBlock<C>(fmap, xbase, xbars, m0, u);
  }
  for (int st = 0; st < nst; ++st) {
    const int s = st % C::S;
    MbarWait(bars + 8 * (C::S + s), ((st / C::S) & 1) ^ 1);  // a fresh slot passes at once
    const uint32_t full = bars + 8 * s;
    if (pt == 0) {
      MbarExpectTx(full, C::kABytes);
      TmaLoad2D(base + s * C::kStage, wmap, st * kStageK, n0, full);
    }
#pragma unroll 1
    for (int b = 0; b < 2; ++b) {
      const int u = 2 * st + b;
      if (u >= nu) break;  // the last stage's second block when K has an odd number of blocks
      MbarWait(xbars + 8 * (u % C::XS), (u / C::XS) & 1);
      SplitXBlock<C>(sm + xoff + (u % C::XS) * C::kXBytes, sm + s * C::kStage + C::kABytes, b, pt);
      ProducerSync();  // every thread is done with the staging slot
      if (pt == 0 && u + C::XS < nu) {
        FenceProxyAsync();
        LoadXBlock<C>(fmap, xbase, xbars, m0, u + C::XS);
      }
    }
    FenceProxyAsync();  // this thread's plane writes, visible to the consumers' wgmma
    MbarArrive(full);
  }
}

// Tile t's token tile and weight-row tile: the plain grid's blockIdx, or (persistent) t in the
// plain grid's launch order, token tiles fastest (gm of them).
template <class C>
__device__ __forceinline__ int TileX(int t, int gm) {
  return C::PERSIST ? t % gm : static_cast<int>(blockIdx.x);
}
template <class C>
__device__ __forceinline__ int TileY(int t, int gm) {
  return C::PERSIST ? t / gm : static_cast<int>(blockIdx.y);
}

template <class C>
__global__ void __launch_bounds__(384, 1)
    GemmTmaKernel(const __grid_constant__ CUtensorMap wmap,
                  const __grid_constant__ CUtensorMap xmap, MatmulParams p, float* part, int per,
                  bool prefix, bool evict) {
  extern __shared__ uint8_t smem_raw[];
  const uint32_t raw = SmemAddr(smem_raw);
  const uint32_t base = (raw + 1023) & ~1023u;  // the 128-byte swizzle repeats every 1024 bytes
  const uint8_t* sm = smem_raw + (base - raw);
  // full[s] at + 8 s, empty[s] at + 8 (S + s), x staged[x] at + 8 (2 S + x), after the stages,
  // the totals and the x staging slots.
  const uint32_t bars = base + C::S * C::kStage + C::kTotBytes + C::XS * C::kXBytes;
  const int wg = threadIdx.x / 128;
  const int64_t nkb = (p.K + 31) / 32;
  const int nst_all = static_cast<int>((nkb + 1) / 2);
  // This block's stages [st0, st0 + nst): all of K, or its chunks (split-K).
  const int st0 = C::SPLIT ? static_cast<int>(blockIdx.z) * per * kChunkStages : 0;
  const int nst = C::SPLIT ? min(nst_all - st0, per * kChunkStages) : nst_all;
  // Tiles: the block's own (t = 0 only), or persistent: t = blockIdx.x, + gridDim.x, ... < tiles.
  const int gm = static_cast<int>((p.M + C::kToks - 1) / C::kToks);
  const int t_first = C::PERSIST ? static_cast<int>(blockIdx.x) : 0;
  const int t_step = C::PERSIST ? static_cast<int>(gridDim.x) : 1;
  const int t_end = C::PERSIST ? gm * static_cast<int>((p.N + C::kRows - 1) / C::kRows) : 1;
  if (threadIdx.x == 0) {
    for (int s = 0; s < C::S; ++s) {
      // The producer's expect_tx arrival + bytes (+ every producer thread's with XS).
      MbarInit(bars + 8 * s, C::XS > 0 ? 129 : 1);
      MbarInit(bars + 8 * (C::S + s), 8 * C::CL);  // every consumer warp of the cluster
    }
    for (int x = 0; x < C::XS; ++x) MbarInit(bars + 8 * (2 * C::S + x), 1);  // staged x bytes
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  if constexpr (C::CL > 1) {
    ClusterSync();  // the partner's barriers exist before anything reaches them
  } else {
    __syncthreads();
  }
  GridDepWait();  // the planes come from the split kernel launched just before
  AllowDependents();
  if (wg == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(C::kProdRegs) : "memory");
    if constexpr (C::XS > 0) {
      ProduceSplit<C>(&wmap, &xmap, const_cast<uint8_t*>(sm), base, bars, nkb, nst);
    } else if (threadIdx.x == 0) {
      const uint64_t policy = evict ? EvictFirstPolicy() : 0;
      int ring = 0;  // the stage ring's position: runs on across a persistent CTA's tiles
      for (int t = t_first; t < t_end; t += t_step) {
        const int n0 = TileY<C>(t, gm) * C::kRows, m0 = TileX<C>(t, gm) * C::kToks;
        for (int st = 0; st < nst; ++st, ++ring) {
          const int s = ring % C::S;
          MbarWait(bars + 8 * (C::S + s), ((ring / C::S) & 1) ^ 1);  // a fresh slot passes at once
          const uint32_t full = bars + 8 * s, dst = base + s * C::kStage;
          MbarExpectTx(full, C::kStage);  // whole boxes, zero-filled parts included
          if constexpr (C::CL == 1) {
            TmaLoadWeights(dst, &wmap, (st0 + st) * kStageK, n0, full, evict, policy);
          } else {
            const uint32_t own = ClusterRank() * (C::kRows / C::CL);  // this CTA's rows of the tile
            TmaLoad2DMulticast(dst + own * 128, &wmap, (st0 + st) * kStageK,
                               n0 + static_cast<int>(own), full,
                               static_cast<uint16_t>((1u << C::CL) - 1));
          }
          TmaLoad3D(dst + C::kABytes, &xmap, (st0 + st) * kStageK, m0, 0, full);
        }
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(C::kConsRegs) : "memory");
    int ring = 0;
    for (int t = t_first; t < t_end; t += t_step, ring += nst) {
      if constexpr (C::MODE == 1 || C::MODE == -2) {
        ConsumeWide<C>(p, sm, base, bars, wg - 1, nkb, nst, TileX<C>(t, gm), TileY<C>(t, gm), ring);
      } else if constexpr (C::MODE == 6 || C::MODE == 11) {
        ConsumePre<C>(p, sm, base, bars, wg - 1, nkb, nst, TileX<C>(t, gm), TileY<C>(t, gm), ring);
      } else {
        Consume<C>(p, sm, base, bars, wg - 1, nkb, st0, nst, part, prefix && blockIdx.z == 0,
                   TileX<C>(t, gm), TileY<C>(t, gm), ring);
      }
    }
  }
  // No CTA leaves while a partner may still arrive on its barriers.
  if constexpr (C::CL > 1) ClusterSync();
}

// ---- Grouped stream-K decode GEMM (cuda-x64): the GEMMs that share one x split (a layer's
// q/k/v at M = 17 .. 64) in one launch. Their tiles (member by member, token tiles fastest) times
// the chunks of K are "units", tile-major; CTA b takes units [UnitStart(b), UnitStart(b + 1)),
// an even share of all members' work, as segments of consecutive chunks of one tile each. A
// segment that starts at chunk 0 (the tile's lead) totals its chunks in registers exactly as the
// unsplit tile does and stores the total in chunk 0's slot; every other segment stores each
// chunk's sum. TmaGroupCombineKernel then adds, per element, the chunks after the lead segment in
// chunk order, then the bias: TmaCombineKernel's sequence, so the same bits (and the GEMV's).

// Members' data the kernel and the combine both read.
struct TmaGroupMeta {
  MatmulParams p[kGemmMaxMembers];
  float* part[kGemmMaxMembers];                // member j's chunk sums [chunk][M][N_j]
  int tile0[kGemmMaxMembers + 1] = {};         // member j's tiles: [tile0[j], tile0[j + 1])
  int64_t e0[kGemmMaxMembers + 1] = {};        // member j's outputs: [e0[j], e0[j + 1]) of M N_j
  int n = 0, gm = 0, n_chunks = 0, units = 0;  // members, token tiles, chunks of K, all units
  int evict = 0;                               // weight loads evict-first (WeightEvictFirst)
};
struct TmaGroupArgs {
  CUtensorMap wmap[kGemmMaxMembers];
  TmaGroupMeta m;
};

// First unit of CTA b of `grid` (units spread as evenly as integers allow).
__host__ __device__ __forceinline__ int UnitStart(int64_t b, int units, int grid) {
  return static_cast<int>(b * units / grid);
}

struct TmaSeg {
  int j, bx, by, c_lo, c_hi;  // member, token tile, weight-row tile, chunks [c_lo, c_hi)
};
// The segment that starts at unit u of a CTA whose units end at u1.
__device__ __forceinline__ TmaSeg SegmentAt(const TmaGroupMeta& m, int u, int u1) {
  const int t = u / m.n_chunks;
  TmaSeg s;
  s.c_lo = u - t * m.n_chunks;
  s.c_hi = min(m.n_chunks, u1 - t * m.n_chunks);
  s.j = 0;
  while (s.j + 1 < m.n && t >= m.tile0[s.j + 1]) ++s.j;
  const int lt = t - m.tile0[s.j];
  s.bx = lt % m.gm;
  s.by = lt / m.gm;
  return s;
}

// C unsplit (cu21-x64, LaunchTGroupPlain): one whole tile a CTA (grid = tiles, so every CTA's
// units are one tile's chunks 0 .. n_chunks - 1), stored with its bias as the plain tile stores
// it; no chunk sums, no combine.
template <class C>
__global__ void __launch_bounds__(384, 1)
    GemmTmaGroupKernel(const __grid_constant__ TmaGroupArgs a,
                       const __grid_constant__ CUtensorMap xmap) {
  static_assert(
      C::CL == 1 && C::XS == 0 && !C::TOTS && !C::PERSIST && (C::MODE == 0 || C::MODE == 8),
      "split tiles, or unsplit ones a tile a CTA");
  extern __shared__ uint8_t smem_raw[];
  const uint32_t raw = SmemAddr(smem_raw);
  const uint32_t base = (raw + 1023) & ~1023u;
  const uint8_t* sm = smem_raw + (base - raw);
  const uint32_t bars = base + C::S * C::kStage;  // full[s], then empty[s]
  const int wg = threadIdx.x / 128;
  const TmaGroupMeta& m = a.m;
  const int64_t nkb = (m.p[0].K + 31) / 32;
  const int nst_all = static_cast<int>((nkb + 1) / 2);
  const int u0 = UnitStart(blockIdx.x, m.units, gridDim.x);
  const int u1 = UnitStart(int64_t{blockIdx.x} + 1, m.units, gridDim.x);
  if (threadIdx.x == 0) {
    for (int s = 0; s < C::S; ++s) {
      MbarInit(bars + 8 * s, 1);
      MbarInit(bars + 8 * (C::S + s), 8);  // every consumer warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  GridDepWait();  // the planes come from the split kernel launched just before
  AllowDependents();
  if (wg == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(C::kProdRegs) : "memory");
    if (threadIdx.x != 0) return;
    const bool evict = m.evict != 0;
    const uint64_t policy = evict ? EvictFirstPolicy() : 0;
    int ring = 0;  // runs on across the CTA's segments
    for (int u = u0; u < u1;) {
      const TmaSeg sg = SegmentAt(m, u, u1);
      const int st0 = sg.c_lo * kChunkStages;
      const int nst = min(nst_all - st0, (sg.c_hi - sg.c_lo) * kChunkStages);
      const int n0 = sg.by * C::kRows, m0 = sg.bx * C::kToks;
      for (int st = 0; st < nst; ++st, ++ring) {
        const int s = ring % C::S;
        MbarWait(bars + 8 * (C::S + s), ((ring / C::S) & 1) ^ 1);  // a fresh slot passes at once
        const uint32_t full = bars + 8 * s, dst = base + s * C::kStage;
        MbarExpectTx(full, C::kStage);
        TmaLoadWeights(dst, &a.wmap[sg.j], (st0 + st) * kStageK, n0, full, evict, policy);
        TmaLoad3D(dst + C::kABytes, &xmap, (st0 + st) * kStageK, m0, 0, full);
      }
      u += sg.c_hi - sg.c_lo;
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(C::kConsRegs) : "memory");
    int ring = 0;
    for (int u = u0; u < u1;) {
      const TmaSeg sg = SegmentAt(m, u, u1);
      const int st0 = sg.c_lo * kChunkStages;
      const int nst = min(nst_all - st0, (sg.c_hi - sg.c_lo) * kChunkStages);
      Consume<C>(m.p[sg.j], sm, base, bars, wg - 1, nkb, st0, nst, m.part[sg.j], sg.c_lo == 0,
                 sg.bx, sg.by, ring);
      ring += nst;
      u += sg.c_hi - sg.c_lo;
    }
  }
}

// Every member's out[m, n] = ((lead total + c_next) + ...) + bias (TmaCombineKernel's sequence);
// next: the end of the tile's lead segment, i.e. of the CTA that owns the tile's chunk 0.
template <int ROWS, int TOKS>
__global__ void TmaGroupCombineKernel(const __grid_constant__ TmaGroupMeta m, int grid) {
  GridDepWait();
  AllowDependents();
  const int64_t total = m.e0[m.n];
  for (int64_t u = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; u < total;
       u += int64_t{gridDim.x} * blockDim.x) {
    int j = 0;
    while (j + 1 < m.n && u >= m.e0[j + 1]) ++j;
    const MatmulParams& p = m.p[j];
    const int64_t v = u - m.e0[j], mn = p.M * p.N;
    const int64_t row = v / p.N, n = v % p.N;
    const int t = m.tile0[j] + static_cast<int>(n / ROWS) * m.gm + static_cast<int>(row / TOKS);
    const int lead = t * m.n_chunks;
    const int owner = static_cast<int>((int64_t{lead + 1} * grid - 1) / m.units);
    const int next = min(m.n_chunks, UnitStart(int64_t{owner} + 1, m.units, grid) - lead);
    const float* part = m.part[j];
    float s = part[v];
    for (int c = next; c < m.n_chunks; ++c) s += part[c * mn + v];
    if (p.bias != nullptr) s += p.bias[n];  // no "+ 0" without bias: -0 stays -0
    p.out[row * p.out_row + n * p.out_col] = s;
  }
}

// cuTensorMapEncodeTiled from the driver that cudart loaded (no link against libcuda).
PFN_cuTensorMapEncodeTiled_v12000 Encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
#if CUDART_VERSION >= 12050
    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000,
                                                           cudaEnableDefault, &q);
#else
    const cudaError_t e =
        cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &f, cudaEnableDefault, &q);
#endif
    if (e != cudaSuccess || q != cudaDriverEntryPointSuccess) {
      return static_cast<PFN_cuTensorMapEncodeTiled_v12000>(nullptr);
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

// Weights [N][K] bf16 (box 64 k x rows) and planes [T][M][K padded to 32] (box 64 k x toks x T),
// both 128-byte swizzled; out-of-range elements read as zeros.
// XS configurations (xf32): instead of the planes, x itself [M][K] f32 (box 32 k x toks).
// wpromote = false: the weight map without L2 promotion (TESSERA_CUDA_GEMM_TMA_EVICT=3, a lab
// value).
cudaError_t EncodeMaps(const MatmulParams& p, int terms, const uint16_t* planes, int rows, int toks,
                       bool xf32, CUtensorMap* wmap, CUtensorMap* xmap, bool wpromote = true) {
  const PFN_cuTensorMapEncodeTiled_v12000 enc = Encoder();
  if (enc == nullptr) return cudaErrorNotSupported;
  if (reinterpret_cast<uintptr_t>(p.w) % 16 != 0 || p.w_row_bytes % 16 != 0) {
    return cudaErrorInvalidValue;
  }
  const cuuint32_t ones[3] = {1, 1, 1};
  const cuuint64_t wdim[2] = {static_cast<cuuint64_t>(p.K), static_cast<cuuint64_t>(p.N)};
  const cuuint64_t wstride[1] = {static_cast<cuuint64_t>(p.w_row_bytes)};
  const cuuint32_t wbox[2] = {kStageK, static_cast<cuuint32_t>(rows)};
  if (enc(wmap, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<uint8_t*>(p.w), wdim, wstride, wbox,
          ones, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
          wpromote ? CU_TENSOR_MAP_L2_PROMOTION_L2_256B : CU_TENSOR_MAP_L2_PROMOTION_NONE,
          CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) != CUDA_SUCCESS) {
    return cudaErrorInvalidValue;
  }
  if (xf32) {
    if (!GemmTmaXsplitFits(p)) return cudaErrorInvalidValue;
    const cuuint64_t fdim[2] = {static_cast<cuuint64_t>(p.K), static_cast<cuuint64_t>(p.M)};
    const cuuint64_t fstride[1] = {static_cast<cuuint64_t>(p.x_row * 4)};
    const cuuint32_t fbox[2] = {32, static_cast<cuuint32_t>(toks)};
    if (enc(xmap, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 2, const_cast<float*>(p.x), fdim, fstride, fbox,
            ones, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
            CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) != CUDA_SUCCESS) {
      return cudaErrorInvalidValue;
    }
    return cudaSuccess;
  }
  const int64_t kp = (p.K + 31) / 32 * 32;
  const cuuint64_t xdim[3] = {static_cast<cuuint64_t>(kp), static_cast<cuuint64_t>(p.M),
                              static_cast<cuuint64_t>(terms)};
  const cuuint64_t xstride[2] = {static_cast<cuuint64_t>(kp * 2),
                                 static_cast<cuuint64_t>(p.M * kp * 2)};
  const cuuint32_t xbox[3] = {kStageK, static_cast<cuuint32_t>(toks),
                              static_cast<cuuint32_t>(terms)};
  if (enc(xmap, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<uint16_t*>(planes), xdim, xstride,
          xbox, ones, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
          CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) != CUDA_SUCCESS) {
    return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}

// out[m, n] = ((c0 + c1) + c2 ...) + bias over the chunk sums part[c][m][n]: the canonical
// order's combine (as GemmCombineKernel in k_matmul_bf16.cu), so the unsplit kernel's bits.
// Slot 0 holds c0 or (prefix) the total of chunks 0 .. next - 1; chunks next .. n - 1 follow.
__global__ void TmaCombineKernel(MatmulParams p, const float* part, int n_chunks, int next) {
  GridDepWait();
  AllowDependents();
  const int64_t mn = p.M * p.N;
  for (int64_t u = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; u < mn;
       u += int64_t{gridDim.x} * blockDim.x) {
    const int64_t m = u / p.N, n = u % p.N;
    float s = part[u];
    for (int c = next; c < n_chunks; ++c) s += part[c * mn + u];
    if (p.bias != nullptr) s += p.bias[n];  // no "+ 0" without bias: -0 stays -0
    p.out[m * p.out_row + n * p.out_col] = s;
    // The fused residual ADD (launch.h MatmulParams::res; cuda-agg3): the ADD kernel's one add.
    if (p.res_out != nullptr) p.res_out[m * p.res_out_row + n] = p.res[m * p.res_row + n] + s;
  }
}

constexpr uint64_t kSplitPartCap = uint64_t{64} << 20;  // bytes of chunk sums, else no split

// Block 0 of a split tile stores its chunks' running total (the prefix) instead of each chunk's
// sum; TESSERA_CUDA_TMA_SPLIT_PREFIX=0 stores every chunk (before).
bool SplitPrefix() {
  static const bool on = EnvFlag("TESSERA_CUDA_TMA_SPLIT_PREFIX", true);
  return on;
}

// L2 bytes of the current device (0 if unknown), cached like DeviceSms.
int64_t DeviceL2Bytes() {
  static const int64_t bytes = [] {
    int dev = 0, l2 = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev) != cudaSuccess)
      return int64_t{0};
    return int64_t{l2};
  }();
  return bytes;
}

// TESSERA_CUDA_GEMM_TMA_EVICT (cu24-x64, cu35-x64): a decode batch's TMA tiles (M <= 64: one token
// tile, so each weight tile is loaded by one CTA, once) load the weights with an L2 evict-first
// policy (createpolicy + cp.async.bulk.tensor's .L2::cache_hint), so the weight stream does not
// push out what the step reads again soon. Data movement only: the same bits. H200, tg64x64
// greedy (lab/NOTES.md cu24-x64): on every decode-batch launch (=2) the 0.5B gained ~2% and the
// 8B lost ~1.4% (the down's 117 MB and the gate/up's 235 MB streams); a rule by size (weights at
// most half the L2, =4) was level everywhere, and of =2's 0.5B gain only the vocabulary head
// differs from =4 (its 64 x vocabulary f32 logits, which the greedy ARGMAX reads next, stay in
// L2 instead of being pushed to DRAM by 272 MB of weights). Hence the default rule, =1: the
// heads (N >= 65,536) only. 0: never (before); 3: =2 without the weight maps' L2 promotion (a
// lab value); default (-1): 1 where the card's DRAM is at least 4 TB/s (DevicePeakDramGBs: the
// H200), else 0 (the H100's loads kept: not measured there).
int EvictMode() {
  static const int mode = [] {
    const int m = EnvInt("TESSERA_CUDA_GEMM_TMA_EVICT", -1);
    return m >= 0 ? m : (DevicePeakDramGBs() >= 4000 ? 1 : 0);
  }();
  return mode;
}
bool WeightEvictFirst(const MatmulParams& p, int64_t token_tiles, uint64_t weight_bytes) {
  const int mode = EvictMode();
  if (mode <= 0 || p.M > 64 || token_tiles != 1) return false;
  if (mode == 1) return p.N >= 65536;
  return mode != 4 || weight_bytes * 2 <= static_cast<uint64_t>(DeviceL2Bytes());
}
// The weight map's L2 promotion (256 bytes: a stage's 128-byte rows and the next stage's): kept
// except with =3 (a lab value: evict-first on every decode-batch launch, no promotion, as a test
// of whether promoted lines evicted before their stage loads them cost =2 its 8B loss).
bool WeightPromote(bool evict) {
  return !(evict && EvictMode() == 3);
}

// TESSERA_CUDA_GEMM_PREFILL_SPLIT=0 (cu-gemm15): no split-K at M > 64 (before); default 1.
bool PrefillSplitAllowed() {
  static const bool on = EnvFlag("TESSERA_CUDA_GEMM_PREFILL_SPLIT", true);
  return on;
}

// Chunks a block of a split-K configuration walks (0: no split): when the tile grid fills at most
// half the SMs, K is cut so the grid is about one wave (one CTA an SM: 384 threads and most of
// shared memory), the chunk sums capped at kSplitPartCap. Decode batches (M <= 64) and, since
// cu-gemm15, prefill (M > 64: the 128 x 64 tile GemmTiledAuto picks for narrow weights; the
// caller's scratch, SplitPlaneBytes, holds the chunk sums) where the split measured faster than
// the unsplit tile (H100, default dispatch, pre-pass and combine included): at least 4 splits
// (tiles at most a quarter of the SMs: 1B k_v at M = 512 20 -> 16 us one piece, 28 -> 19.5 three
// pieces; 0.5B k_v), or three pieces with K of at least 8 chunks (8B k_v at M = 512 49 -> 46.5,
// 0.5B down 58 -> 51.5). Two splits lost with one piece (8B k_v 32.5 -> 35.5, 0.5B down 37 -> 39,
// 0.5B q_o 14 -> 17) and with three on 4 chunks (0.5B q_o 18 -> 19).
// TESSERA_CUDA_GEMM_TMA_SPLITK=0 never splits; =W (2, 3, ...) aims at W waves instead of one (a
// lab knob).
int SplitChunksPerBlock(const MatmulParams& p, int terms, int64_t rows, int64_t toks) {
  static const int waves = [] {
    const char* v = std::getenv("TESSERA_CUDA_GEMM_TMA_SPLITK");
    const int w = v != nullptr ? std::atoi(v) : 1;
    return w > 1 ? w : 1;
  }();
  const bool on = GemmTmaSplitKEnabled();
  const int sms = DeviceSms();
  const int64_t n_chunks = (p.K + 255) / 256;
  const int64_t blocks = ((p.M + toks - 1) / toks) * ((p.N + rows - 1) / rows);
  if (!on || sms <= 0 || n_chunks < 2 || blocks * 2 > sms) return 0;
  if (p.M > 64 && (!PrefillSplitAllowed() || (blocks * 4 > sms && (terms == 1 || n_chunks < 8))))
    return 0;
  if (static_cast<uint64_t>(n_chunks * p.M * p.N) * 4 > kSplitPartCap) return 0;
  const int64_t splits = std::min<int64_t>(n_chunks, int64_t{sms} * waves / blocks);
  const int64_t per = (n_chunks + splits - 1) / splits;
  return per >= n_chunks ? 0 : static_cast<int>(per);
}

// Offset of the chunk sums in the planes scratch (after the planes, 256-byte aligned).
uint64_t PartOffset(const MatmulParams& p, int terms) {
  return (static_cast<uint64_t>(terms) * p.M * ((p.K + 31) / 32 * 32) * 2 + 255) / 256 * 256;
}

template <class C>
uint64_t TCfgScratch(const MatmulParams& p) {
  const uint64_t planes = PartOffset(p, C::T);
  if (!C::SPLIT || SplitChunksPerBlock(p, C::T, C::kRows, C::kToks) == 0) return planes;
  return planes + static_cast<uint64_t>((p.K + 255) / 256) * p.M * p.N * 4;
}

template <class C>
cudaError_t LaunchTCfg(const MatmulParams& p, const uint16_t* planes, cudaStream_t stream) {
  static_assert(C::T == 1 || C::T == 3, "pieces");
  const int per = C::SPLIT ? SplitChunksPerBlock(p, C::T, C::kRows, C::kToks) : 0;
  if (C::SPLIT && per == 0) return LaunchTCfg<typename C::Unsplit>(p, planes, stream);
  constexpr auto kKernel = GemmTmaKernel<C>;
  static std::atomic<uint64_t> smem_set{0};
  cudaError_t e = AllowDynamicSmem(kKernel, C::kSmem, &smem_set);
  if (e != cudaSuccess) return e;
  if (p.M > (int64_t{1} << 30) || p.N > (int64_t{1} << 30) || p.K > (int64_t{1} << 30)) {
    return cudaErrorInvalidValue;  // TMA coordinates are 32-bit
  }
  CUtensorMap wmap, xmap;
  int64_t gm = (p.M + C::kToks - 1) / C::kToks;
  const bool evict = !C::PERSIST && C::CL == 1 && C::XS == 0 &&
                     WeightEvictFirst(p, gm, static_cast<uint64_t>(p.N) * p.K * 2);
  e = EncodeMaps(p, C::T, planes, C::kRows / C::CL, C::kToks, C::XS > 0, &wmap, &xmap,
                 WeightPromote(evict));
  if (e != cudaSuccess) return e;
  gm = (gm + C::CL - 1) / C::CL * C::CL;  // whole clusters (a spare CTA loads zeros, stores none)
  int64_t gn = (p.N + C::kRows - 1) / C::kRows;
  if (gn > 65535) return cudaErrorInvalidConfiguration;
  if (C::PERSIST) {  // one CTA an SM (384 threads, most of shared memory), at most one a tile
    if (gm * gn >= (int64_t{1} << 31)) return cudaErrorInvalidConfiguration;
    const int sms = DeviceSms() > 0 ? DeviceSms() : 132;
    gm = std::min<int64_t>(gm * gn, sms);
    gn = 1;
  }
  const int n_chunks = static_cast<int>((p.K + 255) / 256);
  const int gz = per > 0 ? (n_chunks + per - 1) / per : 1;
  // The chunk sums follow the planes in the caller's scratch (GemmTmaScratchBytes).
  float* part =
      per > 0 ? reinterpret_cast<float*>(reinterpret_cast<uint8_t*>(const_cast<uint16_t*>(planes)) +
                                         PartOffset(p, C::T))
              : nullptr;
  const bool prefix = per > 0 && SplitPrefix();
  e = LaunchClusterK(
      C::CL, kKernel,
      dim3(static_cast<unsigned>(gm), static_cast<unsigned>(gn), static_cast<unsigned>(gz)),
      C::kThreads, C::kSmem, stream, wmap, xmap, p, part, per, prefix, evict);
  if (e != cudaSuccess || !C::SPLIT) return e != cudaSuccess ? e : cudaGetLastError();
  LaunchK(TmaCombineKernel, GridFor(p.M * p.N, 256), 256, 0, stream, p,
          static_cast<const float*>(part), n_chunks, prefix ? per : 1);
  return cudaGetLastError();
}

// Bytes of member j's chunk sums in a grouped launch (256-byte aligned).
uint64_t GroupPartBytes(const MatmulParams& p) {
  return (static_cast<uint64_t>((p.K + 255) / 256) * p.M * p.N * 4 + 255) / 256 * 256;
}

// TESSERA_CUDA_GEMM_GROUP_CTAS: CTAs of a grouped launch (default: one an SM).
int GroupCtas(int ctas) {
  static const int env = [] {
    const char* v = std::getenv("TESSERA_CUDA_GEMM_GROUP_CTAS");
    return v != nullptr ? std::atoi(v) : 0;
  }();
  if (ctas > 0) return ctas;
  if (env > 0) return env;
  return DeviceSms() > 0 ? DeviceSms() : 132;
}

// Fills a group launch's arguments for the members ps[0 .. n) (same M and K): their weight maps,
// the x map, tile offsets and element offsets; with `split`, each member's chunk sums in `planes`
// after the planes (GroupPartBytes each), else none (whole tiles).
template <class C>
cudaError_t SetUpTGroup(const MatmulParams* ps, int n, const uint16_t* planes, bool split,
                        TmaGroupArgs* a, CUtensorMap* xmap) {
  const MatmulParams& p0 = ps[0];
  if (p0.M > (int64_t{1} << 20) || p0.K > (int64_t{1} << 30)) return cudaErrorInvalidValue;
  TmaGroupMeta& m = a->m;
  CUtensorMap unused;
  m.n = n;
  m.gm = static_cast<int>((p0.M + C::kToks - 1) / C::kToks);
  m.n_chunks = static_cast<int>((p0.K + 255) / 256);
  uint8_t* part = reinterpret_cast<uint8_t*>(const_cast<uint16_t*>(planes)) + PartOffset(p0, C::T);
  int64_t tiles = 0;
  uint64_t weight_bytes = 0;  // every member's
  for (int j = 0; j < n; ++j) weight_bytes += static_cast<uint64_t>(ps[j].N) * ps[j].K * 2;
  m.evict = WeightEvictFirst(p0, m.gm, weight_bytes) ? 1 : 0;
  for (int j = 0; j < n; ++j) {
    const MatmulParams& p = ps[j];
    if (p.M != p0.M || p.K != p0.K || p.N <= 0 || p.N > (int64_t{1} << 30) || p.res_out != nullptr)
      return cudaErrorInvalidValue;
    cudaError_t e = EncodeMaps(p, C::T, planes, C::kRows, C::kToks, false, &a->wmap[j],
                               j == 0 ? xmap : &unused, WeightPromote(m.evict != 0));
    if (e != cudaSuccess) return e;
    m.p[j] = p;
    m.part[j] = split ? reinterpret_cast<float*>(part) : nullptr;
    if (split) part += GroupPartBytes(p);
    m.tile0[j] = static_cast<int>(tiles);
    tiles += m.gm * ((p.N + C::kRows - 1) / C::kRows);
    m.e0[j + 1] = m.e0[j] + p.M * p.N;
  }
  m.tile0[n] = static_cast<int>(tiles);
  if (tiles * m.n_chunks >= (int64_t{1} << 30)) return cudaErrorInvalidConfiguration;
  m.units = static_cast<int>(tiles * m.n_chunks);
  return cudaSuccess;
}

template <class C>
cudaError_t LaunchTGroup(const MatmulParams* ps, int n, const uint16_t* planes, int ctas,
                         cudaStream_t stream) {
  constexpr auto kKernel = GemmTmaGroupKernel<C>;
  static std::atomic<uint64_t> smem_set{0};
  cudaError_t e = AllowDynamicSmem(kKernel, C::kSmem, &smem_set);
  if (e != cudaSuccess) return e;
  TmaGroupArgs a;
  CUtensorMap xmap;
  e = SetUpTGroup<C>(ps, n, planes, true, &a, &xmap);
  if (e != cudaSuccess) return e;
  const TmaGroupMeta& m = a.m;
  const int grid = std::min(GroupCtas(ctas), m.units);
  e = LaunchK(kKernel, dim3(static_cast<unsigned>(grid)), dim3(C::kThreads), C::kSmem, stream, a,
              xmap);
  if (e != cudaSuccess) return e;
  LaunchK(TmaGroupCombineKernel<C::kRows, C::kToks>, GridFor(m.e0[n], 256), 256, 0, stream, m,
          grid);
  return cudaGetLastError();
}

// The members' unsplit tiles in one launch, a tile a CTA, member by member, token tiles fastest
// (GemmTmaGroupKernel with C unsplit): each output stored by its tile as LaunchTCfg<C> stores it.
template <class C>
cudaError_t LaunchTGroupPlain(const MatmulParams* ps, int n, const uint16_t* planes,
                              cudaStream_t stream) {
  static_assert(!C::SPLIT, "whole tiles");
  constexpr auto kKernel = GemmTmaGroupKernel<C>;
  static std::atomic<uint64_t> smem_set{0};
  cudaError_t e = AllowDynamicSmem(kKernel, C::kSmem, &smem_set);
  if (e != cudaSuccess) return e;
  TmaGroupArgs a;
  CUtensorMap xmap;
  e = SetUpTGroup<C>(ps, n, planes, false, &a, &xmap);
  if (e != cudaSuccess) return e;
  const int tiles = a.m.tile0[n];
  if (tiles > 65535) return cudaErrorInvalidConfiguration;
  e = LaunchK(kKernel, dim3(static_cast<unsigned>(tiles)), dim3(C::kThreads), C::kSmem, stream, a,
              xmap);
  return e != cudaSuccess ? e : cudaGetLastError();
}

// The x-splitting tiles: T pieces, MI, BM, TSPLIT, S stages, PIPE, XS staging slots.
template <int T, int MI, int BM, bool TSPLIT, int S, bool PIPE, int XS>
using TXCfg = TCfg<T, MI, BM, TSPLIT, S, 1, PIPE, false, false, false, XS>;

// The persistent tiles: T pieces, MI, BM, TSPLIT, S stages, PIPE.
template <int T, int MI, int BM, bool TSPLIT, int S, bool PIPE>
using TQCfg = TCfg<T, MI, BM, TSPLIT, S, 1, PIPE, false, false, false, 0, true>;

// The one-piece 128 x 256 tile (configuration 22) where its grid fills the SMs (at least one
// tile an SM) and K is at least 16 chunks: the 8B q_o, gate_up and down at M = 2048, gate_up at
// M = 512. H100, cu-gemm16 (lab/NOTES.md "Prefill GEMM, sixteenth session"): kernel alone 1.04 -
// 1.15x the persistent 128 x 128 tile on the big shapes, 0.5-0.6x on grids of fewer tiles than
// SMs, 0.87x on the 0.5B gate_up (K = 896); engine pp2048 bf16 8B +0.5-1.6% (noise level), but
// the 1B (q_o, gate_up, down with K = 2048 / 8192 on 128 - 512 tiles) lost 3% with the tile, so
// it stays off there. TESSERA_CUDA_GEMM_WIDE=0: never (the persistent 128 x 128 tile, before).
// TESSERA_CUDA_GEMM_WIDE=2 (cu-gemm17; the default until cu-gemm18): ConsumePre (configuration
// 26) instead of ConsumeWide (1) where WideFits: same bits, no dummy wgmma (see the top of the
// file); H100 lab 1.126x configuration 22 on the 8B shapes, engine 8B pp2048 bf16 mode +7%.
// TESSERA_CUDA_GEMM_WIDE=3 (cu-gemm18, the default): configuration 30 (26 with conflict-free A
// fragment loads, same bits): H100 lab 1.011x configuration 26 on the 8B shapes (interleaved).
int WideMode() {
  static const int mode = EnvInt("TESSERA_CUDA_GEMM_WIDE", 3);
  return mode;
}
// TESSERA_CUDA_GEMM_WIDE_MINK (a lab A/B switch; thirty-fifth session, gemm35): the shortest K the
// 128 x 256 tile takes, default 4096 with at least a whole wave of tiles (cu-gemm16's rule: on
// the H100 the 1B's K = 2048 / 8192 shapes lost 3% in the engine with the tile although the lab
// had them +4-13%). Below 4096 a wave short by <= 4% of the SMs counts too (128 tiles on 132: the
// 1B q_o / down at M = 2048). H200, MINK = 2048: kernel alone +9.5-11% on the 1B q_o / gate_up /
// down at M = 2048 (lab/NOTES.md gemm35), engine bf16-mode 1B pp2048 / pp512 level (108.7k vs
// 110.0k t/s, runs spread +-10k), so the default stays.
int64_t WideMinK() {
  static const int64_t k = [] {
    const int e = EnvInt("TESSERA_CUDA_GEMM_WIDE_MINK", -1);
    return int64_t{e >= 0 ? e : 4096};
  }();
  return k;
}

bool WideFits(const MatmulParams& p) {
  const int sms = DeviceSms() > 0 ? DeviceSms() : 132;
  const int64_t tiles = ((p.M + 255) / 256) * ((p.N + 127) / 128);
  const int64_t min_k = WideMinK();
  const bool wave = min_k >= 4096 ? tiles >= sms : tiles * 100 >= int64_t{sms} * 96;
  return WideMode() != 0 && wave && p.K >= min_k;
}

// TESSERA_CUDA_GEMM_PQU=1 (cu-gemm17, the default; 0 = configuration 18): the one-piece
// persistent 128 x 128 tile without its per-block branch (configuration 27, Consume's MODE 8: no
// dummy wgmma, same bits) wherever configuration 18 would run for the default dispatch (23's
// other tile). H100 lab: 1.06x configuration 18 on the 1B shapes.
bool PquOn() {
  static const bool on = EnvFlag("TESSERA_CUDA_GEMM_PQU", true);
  return on;
}

// cu-gemm16's persistent 128-row tiles: T pieces, BM tokens, S stages, PIPE, MODE.
template <int T, int BM, int S, bool PIPE, int MODE>
using TQxCfg = TCfg<T, 1, BM, false, S, 1, PIPE, false, false, false, 0, true, MODE>;

// The split-K tiles: 128 weight rows x 64 tokens (the decode-batch tile), 6 / 5 stages. MODE 8
// (cu35-x64): every block's wgmmas issued unconditionally (no dummy wgmma; see Consume's MODE 8).
template <int T, bool PIPE, int MODE = 0>
using TSplitCfg =
    TCfg<T, 1, 64, false, T == 1 ? 6 : 5, 1, PIPE, false, false, true, 0, false, MODE>;

// TESSERA_CUDA_GEMM_UNCOND (cu35-x64): the three-piece decode-batch tiles (the split-K tile of
// configuration 13 and its unsplit twin, the stream-K / plain / wide groups; exact mode, the
// default, and what the H200 lab bit-checked; one piece keeps its tiles) with every
// block's wgmmas issued unconditionally (MODE 8): without a branch around a block ptxas closes no
// commit group with a dummy wgmma, so a stage's wait no longer waits on it (ncu of the 8B x64
// gate/up wide group and down split tile: the dummy HGMMA.64x8x16 + its WARPGROUP.DEPBAR 18% /
// 12% of the stall samples). A block past K reads TMA's zero fill and adds +0: the same bits.
// 1 (default): MODE 8 twins; 0: before; 2: 1 with the wide group pipelined (H200 lab level with
// 1). H200 (lab/NOTES.md cu35-x64): 8B x64 gate/up wide group 90.7 -> 87.2 us, down 72.2 -> 71.4,
// engine tg64x64 +1.3%.
int UncondMode() {
  static const int mode = EnvInt("TESSERA_CUDA_GEMM_UNCOND", 1);
  return mode;
}

}  // namespace

// cu29-ring: the same encoder for k_matmul_bf16.cu's decode GEMV ring (GemvRingMap).
PFN_cuTensorMapEncodeTiled_v12000 TensorMapEncoder() {
  return Encoder();
}

constexpr int kTmaConfigs = 31;

int GemmTmaConfigs() {
  return kTmaConfigs;
}

const char* GemmTmaName(int config, int terms) {
  static const char* const kNames[2][22] = {
      {"tma128x128",    "tma64x256",    "tma256x64",   "tma128x128t",  "tma128x128c2",
       "tma128x128p",   "tma128x192",   "tma128x192p", "tma128x128ps", "tma128x192s",
       "tma128x256m",   "tma128x256mp", "tma128x64k",  "tma128x64pk",  "tma128x128px",
       "tma128x128px4", "tma64x256x",   "tma128x128x", "tma128x128pq", "tma64x256q",
       "tma128x192q",   "tma256x64q"},
      {"tma128x128",  "tma256x64",   "tma128x64",   "tma128x128t",  "tma128x128c2", "tma128x128p",
       "tma256x64p",  "tma128x64p",  "tma128x128s", "tma128x128ps", "tma128x128m",  "tma128x128mp",
       "tma128x64k",  "tma128x64pk", "tma128x128x", "tma128x128x4", "tma128x64px",  "tma128x128px",
       "tma128x128q", "tma128x64pq", "tma256x64q",  "tma128x128pq"}};
  static const char* const kNames16[2][kTmaConfigs - 22] = {
      // cu-gemm16's
      {"tma128x256wq", "tma128x128pwq", "tma128x128pq_nochunk", "tma128x256pq_nochunk",
       "tma128x256wpq", "tma128x128pqu", "tma128x256pq3_nochunk", "tma128x256wq_nosmem_diag",
       "tma128x256wpqx"},
      {"tma128x128q2", "tma128x128pq_nochunk", "tma128x128q_nochunk", "tma128x128q3",
       "tma128x128q4", "tma128x128q5", "tma128x128q6", "tma128x128q7", "tma128x128q8"}};
  if (config < 0 || config >= kTmaConfigs) return "?";
  return config < 22 ? kNames[terms == 1 ? 0 : 1][config]
                     : kNames16[terms == 1 ? 0 : 1][config - 22];
}

// Tile (weight rows x tokens; t: the consumers split the tokens) by configuration and pieces:
//   one piece:    0 128x128 (6 stages), 1 64x256 (5), 2 256x64 (5), 3 128x128t (6)
//   three pieces: 0 128x128 (3 stages), 1 256x64 (4), 2 128x64 (5), 3 128x128t (3)
//   4: 128x128 in clusters of 2 along the tokens, the weight tile multicast (c2)
//   5 .. 7 (p: pipelined wgmma waits): one piece 128x128p, 128x192, 128x192p; three pieces
//   128x128p, 256x64p, 128x64p
//   8, 9 (s: staggered consumers): one piece 128x128ps, 128x192s; three pieces 128x128s,
//   128x128ps
//   10, 11 (m: chunk totals in shared memory, 2 stages): one piece 128x256m, 128x256mp; three
//   pieces 128x128m, 128x128mp
//   12, 13 (k: split-K over grid.z where the tile grid fills at most half the SMs, else the
//   plain tile): 128x64k, 128x64pk (pipelined), one and three pieces; the scratch must hold
//   GemmTmaScratchBytes
//   14 .. 17 (x: x split on the fly in the producer, `planes` unused; GemmTmaXsplitFits):
//   one piece 128x128px (6 stages, 2 staging slots), 128x128px4 (4, 4), 64x256x (4, 2),
//   128x128x (6, 2); three pieces 128x128x (3, 2), 128x128x4 (2, 4), 128x64px (5, 3),
//   128x128px (3, 2)
//   18 .. 21 (q: persistent tile loop, grid = min(tiles, SMs)): one piece 128x128pq, 64x256q,
//   128x192q, 256x64q; three pieces 128x128q, 128x64pq, 256x64q, 128x128pq (the tiles of 5 / 1 /
//   6 / 2 and 0 / 7 / 1 / 5)
//   22 .. 25 (cu-gemm16, persistent): one piece 22 128x256wq (the 128 x 256 tile, 3 stages:
//   ConsumeWide), 23 128x128pwq (22 where WideFits, else 18: the one-piece default's persistent
//   twin), and the nochunk diagnostics (wrong bits, timing only) 24 128x128pq, 25 128x256pq;
//   three pieces 22 / 25 128x128q2 / q3 (= 18: the lab's A / A reference), the nochunk
//   diagnostics 23 128x128pq, 24 128x128q
//   26 .. 29 (cu-gemm17): one piece 26 128x256wpq (ConsumePre: 22 without dummy wgmmas, A a
//   block ahead, batched totals), 27 128x128pqu (18 without dummy wgmmas: Consume's MODE 8),
//   the diagnostics (wrong bits, timing only) 28 128x256pq3_nochunk (25 with 22's 3 stages) and
//   29 128x256wq_nosmem_diag (22 without the shared half of its totals); three pieces = 18
//   30 (cu-gemm18): one piece 128x256wpqx (26 with a warp's weight rows permuted over its lanes:
//   A fragment loads without bank conflicts; 23 takes it where WideFits); three pieces = 18
cudaError_t LaunchGemmTma(const MatmulParams& p, int terms, const uint16_t* planes, int config,
                          cudaStream_t stream) {
  if (p.M == 0 || p.N == 0) return cudaSuccess;
  if (terms == 1) {
    switch (config) {
      case 0: return LaunchTCfg<TCfg<1, 1, 128, false, 6>>(p, planes, stream);
      case 1: return LaunchTCfg<TCfg<1, 1, 128, true, 5>>(p, planes, stream);
      case 2: return LaunchTCfg<TCfg<1, 2, 64, false, 5>>(p, planes, stream);
      case 3: return LaunchTCfg<TCfg<1, 2, 64, true, 6>>(p, planes, stream);
      case 4: return LaunchTCfg<TCfg<1, 1, 128, false, 6, 2>>(p, planes, stream);
      case 5: return LaunchTCfg<TCfg<1, 1, 128, false, 6, 1, true>>(p, planes, stream);
      case 6: return LaunchTCfg<TCfg<1, 1, 192, false, 5>>(p, planes, stream);
      case 7: return LaunchTCfg<TCfg<1, 1, 192, false, 5, 1, true>>(p, planes, stream);
      case 8: return LaunchTCfg<TCfg<1, 1, 128, false, 6, 1, true, true>>(p, planes, stream);
      case 9: return LaunchTCfg<TCfg<1, 1, 192, false, 5, 1, false, true>>(p, planes, stream);
      case 10:
        return LaunchTCfg<TCfg<1, 1, 256, false, 2, 1, false, false, true>>(p, planes, stream);
      case 11:
        return LaunchTCfg<TCfg<1, 1, 256, false, 2, 1, true, false, true>>(p, planes, stream);
      case 12: return LaunchTCfg<TSplitCfg<1, false>>(p, planes, stream);
      case 13: return LaunchTCfg<TSplitCfg<1, true>>(p, planes, stream);
      case 14: return LaunchTCfg<TXCfg<1, 1, 128, false, 6, true, 2>>(p, planes, stream);
      case 15: return LaunchTCfg<TXCfg<1, 1, 128, false, 4, true, 4>>(p, planes, stream);
      case 16: return LaunchTCfg<TXCfg<1, 1, 128, true, 4, false, 2>>(p, planes, stream);
      case 17: return LaunchTCfg<TXCfg<1, 1, 128, false, 6, false, 2>>(p, planes, stream);
      case 18: return LaunchTCfg<TQCfg<1, 1, 128, false, 6, true>>(p, planes, stream);
      case 19: return LaunchTCfg<TQCfg<1, 1, 128, true, 5, false>>(p, planes, stream);
      case 20: return LaunchTCfg<TQCfg<1, 1, 192, false, 5, false>>(p, planes, stream);
      case 21: return LaunchTCfg<TQCfg<1, 2, 64, false, 5, false>>(p, planes, stream);
      case 22: return LaunchTCfg<TQxCfg<1, 256, 3, false, 1>>(p, planes, stream);
      case 23:
        if (WideFits(p)) {
          switch (WideMode()) {
            case 1: return LaunchTCfg<TQxCfg<1, 256, 3, false, 1>>(p, planes, stream);
            case 2: return LaunchTCfg<TQxCfg<1, 256, 3, false, 6>>(p, planes, stream);
            default: return LaunchTCfg<TQxCfg<1, 256, 3, false, 11>>(p, planes, stream);
          }
        }
        return PquOn() ? LaunchTCfg<TQxCfg<1, 128, 6, true, 8>>(p, planes, stream)
                       : LaunchTCfg<TQCfg<1, 1, 128, false, 6, true>>(p, planes, stream);
      case 24: return LaunchTCfg<TQxCfg<1, 128, 6, true, -1>>(p, planes, stream);
      case 25: return LaunchTCfg<TQxCfg<1, 256, 4, true, -1>>(p, planes, stream);
      case 26: return LaunchTCfg<TQxCfg<1, 256, 3, false, 6>>(p, planes, stream);
      case 27: return LaunchTCfg<TQxCfg<1, 128, 6, true, 8>>(p, planes, stream);
      case 28: return LaunchTCfg<TQxCfg<1, 256, 3, true, -1>>(p, planes, stream);
      case 29: return LaunchTCfg<TQxCfg<1, 256, 3, false, -2>>(p, planes, stream);
      case 30: return LaunchTCfg<TQxCfg<1, 256, 3, false, 11>>(p, planes, stream);
      default: return cudaErrorInvalidValue;
    }
  }
  switch (config) {
    case 0: return LaunchTCfg<TCfg<3, 1, 128, false, 3>>(p, planes, stream);
    case 1: return LaunchTCfg<TCfg<3, 2, 64, false, 4>>(p, planes, stream);
    case 2: return LaunchTCfg<TCfg<3, 1, 64, false, 5>>(p, planes, stream);
    case 3: return LaunchTCfg<TCfg<3, 2, 64, true, 3>>(p, planes, stream);
    case 4: return LaunchTCfg<TCfg<3, 1, 128, false, 3, 2>>(p, planes, stream);
    case 5: return LaunchTCfg<TCfg<3, 1, 128, false, 3, 1, true>>(p, planes, stream);
    case 6: return LaunchTCfg<TCfg<3, 2, 64, false, 4, 1, true>>(p, planes, stream);
    case 7: return LaunchTCfg<TCfg<3, 1, 64, false, 5, 1, true>>(p, planes, stream);
    case 8: return LaunchTCfg<TCfg<3, 1, 128, false, 3, 1, false, true>>(p, planes, stream);
    case 9: return LaunchTCfg<TCfg<3, 1, 128, false, 3, 1, true, true>>(p, planes, stream);
    case 10: return LaunchTCfg<TCfg<3, 1, 128, false, 2, 1, false, false, true>>(p, planes, stream);
    case 11: return LaunchTCfg<TCfg<3, 1, 128, false, 2, 1, true, false, true>>(p, planes, stream);
    case 12: return LaunchTCfg<TSplitCfg<3, false>>(p, planes, stream);
    case 13:
      return UncondMode() > 0 ? LaunchTCfg<TSplitCfg<3, true, 8>>(p, planes, stream)
                              : LaunchTCfg<TSplitCfg<3, true>>(p, planes, stream);
    case 14: return LaunchTCfg<TXCfg<3, 1, 128, false, 3, false, 2>>(p, planes, stream);
    case 15: return LaunchTCfg<TXCfg<3, 1, 128, false, 2, false, 4>>(p, planes, stream);
    case 16: return LaunchTCfg<TXCfg<3, 1, 64, false, 5, true, 3>>(p, planes, stream);
    case 17: return LaunchTCfg<TXCfg<3, 1, 128, false, 3, true, 2>>(p, planes, stream);
    case 18: return LaunchTCfg<TQCfg<3, 1, 128, false, 3, false>>(p, planes, stream);
    case 19: return LaunchTCfg<TQCfg<3, 1, 64, false, 5, true>>(p, planes, stream);
    case 20: return LaunchTCfg<TQCfg<3, 2, 64, false, 4, false>>(p, planes, stream);
    case 21: return LaunchTCfg<TQCfg<3, 1, 128, false, 3, true>>(p, planes, stream);
    case 22:
    case 25:
    case 26:
    case 27:
    case 28:
    case 29:
    case 30: return LaunchTCfg<TQCfg<3, 1, 128, false, 3, false>>(p, planes, stream);
    case 23: return LaunchTCfg<TQxCfg<3, 128, 3, true, -1>>(p, planes, stream);
    case 24: return LaunchTCfg<TQxCfg<3, 128, 3, false, -1>>(p, planes, stream);
    default: return cudaErrorInvalidValue;
  }
}

bool GemmTmaXsplitFits(const MatmulParams& p) {
  // TMA: a 16-byte-aligned base and row stride; 32-bit coordinates (LaunchTCfg checks M, K).
  return p.x != nullptr && reinterpret_cast<uintptr_t>(p.x) % 16 == 0 && p.x_row >= p.K &&
         (p.x_row * 4) % 16 == 0 && p.x_row < (int64_t{1} << 36);
}

int GemmTmaXsplitTwin(int config, int terms) {
  // The auto candidates (gemm_wgmma.h kWgmmaAuto1 / kWgmmaAuto3) and their x-splitting tiles.
  if (terms == 1) return config == 5 ? 14 : (config == 1 ? 16 : (config == 0 ? 17 : -1));
  return config == 0 ? 14 : (config == 7 ? 16 : (config == 5 ? 17 : -1));
}

namespace {
// TESSERA_CUDA_GEMM_NARROW=0 (cu-gemm13): the one-piece auto candidate 128 x 64 (configuration
// 12, gemm_wgmma.h kWgmmaAuto1) runs as the persistent 128 x 128 tile instead, i.e. the choice
// before it (an A/B switch; default 1).
bool NarrowTileAllowed() {
  static const bool on = EnvFlag("TESSERA_CUDA_GEMM_NARROW", true);
  return on;
}
}  // namespace

int GemmTmaPersistTwin(int config, int terms, bool pipe3) {
  if (terms == 1) {
    if (config == 12 && !NarrowTileAllowed()) return 18;
    // 128x128p: the persistent 128 x 128 tile, or the 128 x 256 one where WideFits (23).
    return config == 5 ? 23 : (config == 1 ? 19 : (config == 6 ? 20 : (config == 2 ? 21 : -1)));
  }
  if (config == 0) return pipe3 ? 21 : 18;  // the three-piece 128 x 128 tile, plain or pipelined
  return config == 7 ? 19 : (config == 1 ? 20 : (config == 5 ? 21 : -1));
}

int GemmTmaPrefillSplit(const MatmulParams& p, int config, int terms) {
  // The auto 128 x 64 tiles (gemm_wgmma.h kWgmmaAuto1 / kWgmmaAuto3) and their split-K twins.
  const bool narrow = terms == 1 ? config == 12 && NarrowTileAllowed()
                                 : config == 7 || config == 13 || config == 19;
  if (p.M <= 64 || !narrow || !GemmTmaSplitKEnabled()) return -1;
  using C = TSplitCfg<3, true>;  // both piece counts: 128 rows x 64 tokens
  if (SplitChunksPerBlock(p, terms, C::kRows, C::kToks) == 0) return -1;
  return terms == 1 ? 12 : 13;
}

bool GemmTmaSplitKEnabled() {
  static const bool on = EnvFlag("TESSERA_CUDA_GEMM_TMA_SPLITK", true);
  return on;
}

bool GemmWgmmaSplitCombine(const MatmulParams& p, int terms, int config) {
  static const bool tma = EnvFlag("TESSERA_CUDA_GEMM_TMA", true);  // LaunchGemmWgmma's switch
  const int c = config - kTmaConfig0;
  if (!tma || (c != 12 && c != 13)) return false;
  using C1 = TSplitCfg<1, false>;
  using C3 = TSplitCfg<3, false>;
  return terms == 1 ? SplitChunksPerBlock(p, 1, C1::kRows, C1::kToks) > 0
                    : SplitChunksPerBlock(p, 3, C3::kRows, C3::kToks) > 0;
}

namespace {
// TESSERA_CUDA_GEMM_GROUP_PLAIN (cu21-x64): a decode-batch group of two or more members whose
// 128 x 64 tiles fill more than half the SMs in one wave runs as one launch of their unsplit
// tiles, a tile a CTA, without chunk sums or combine (LaunchTGroupPlain; the same tiles and bits
// as each member's own launch): the 0.5B gate/up (76 tiles, before the stream-K group) and the 1B
// gate/up (2 x 64 tiles, before 2 launches of 64 CTAs) at M = 17 .. 64. H100 lab at M = 64, three
// pieces (norm split included): 0.5B 32.0 -> 22.9 us, 1B 59.5 -> 43.9; tg64x64 greedy +11% on
// both (lab/NOTES.md "Aggregate decode at M = 64, fifth pass"). =0: never (before); =1 (a lab
// value): only where K has more than 4 chunks (the 1B, not the 0.5B).
int GroupPlainMode() {
  static const int mode = EnvInt("TESSERA_CUDA_GEMM_GROUP_PLAIN", 2);
  return mode;
}

// The tiles of `rows` weight rows a decode-batch group's members take, or -1 where the members
// cannot run as one launch of whole tiles (the same M and K, M <= 64 tokens, K a multiple of 32, no
// residual epilogue): GroupPlain's and GroupWide's shared test.
int64_t GroupWholeTiles(const MatmulParams* ps, int n, int64_t rows) {
  using C = TSplitCfg<3, true>;  // both piece counts: 64 tokens
  int64_t tiles = 0;
  for (int j = 0; j < n; ++j) {
    const MatmulParams& p = ps[j];
    if (p.M != ps[0].M || p.K != ps[0].K || p.M <= 0 || p.M > C::kToks || p.N <= 0 ||
        p.K % 32 != 0 || p.res_out != nullptr)
      return -1;
    tiles += (p.N + rows - 1) / rows;
  }
  return tiles;
}

bool GroupPlain(const MatmulParams* ps, int n) {
  const int mode = GroupPlainMode();
  if (mode <= 0 || n < 2 || n > kGemmMaxMembers) return false;
  using C = TSplitCfg<3, true>;  // both piece counts: 128 rows x 64 tokens
  const int64_t tiles = GroupWholeTiles(ps, n, C::kRows);
  if (tiles < 0) return false;
  const int sms = DeviceSms() > 0 ? DeviceSms() : 132;
  const int64_t chunks = (ps[0].K + 255) / 256;
  return tiles * 2 > sms && tiles <= sms && (mode >= 2 || chunks > 4);
}

// TESSERA_CUDA_GEMM_GROUP_WIDE (cu23-x64): a three-piece decode-batch group of two or more members
// whose 128 x 64 tiles overflow one wave but whose 256 x 64 tiles fill more than half of it (the 8B
// gate/up at M = 17 .. 64: 224 -> 112 tiles on 132 SMs) runs as one launch of whole 256-row tiles
// (LaunchTGroupPlain on tma256x64 / tma256x64p; the same per-element sequence as every TMA tile,
// so the same bits), instead of the members' own launches (two launches of 112 CTAs, ~0.85 of a
// wave each). Each CTA reads the x planes once for 256 weight rows instead of 128. Default (-1): on
// where the card's DRAM is at least 4 TB/s (DevicePeakDramGBs: the H200), off below it (the H100's
// choice, not measured there this session). 0: never (before); 1: tma256x64 (4 stages); 2:
// tma256x64p (pipelined, 4 stages); either on any card.
int GroupWideMode() {
  static const int mode = [] {
    const int m = EnvInt("TESSERA_CUDA_GEMM_GROUP_WIDE", -1);
    return m >= 0 ? m : (DevicePeakDramGBs() >= 4000 ? 1 : 0);
  }();
  return mode;
}

bool GroupWide(const MatmulParams* ps, int n, int terms) {
  if (terms != 3 || GroupWideMode() <= 0 || n < 2 || n > kGemmMaxMembers) return false;
  using C = TSplitCfg<3, true>;  // 128 rows x 64 tokens
  const int64_t tiles = GroupWholeTiles(ps, n, C::kRows);
  if (tiles < 0) return false;
  const int64_t wide = GroupWholeTiles(ps, n, 2 * C::kRows);
  const int sms = DeviceSms() > 0 ? DeviceSms() : 132;
  return tiles > sms && wide <= sms && wide * 2 > sms;
}
}  // namespace

bool GemmTmaGroupFits(const MatmulParams* ps, int n, int terms) {
  if (n < 1 || n > kGemmMaxMembers || !GemmTmaSplitKEnabled()) return false;
  if (GroupPlain(ps, n) || GroupWide(ps, n, terms)) return true;
  using C = TSplitCfg<3, true>;  // both piece counts: 128 rows x 64 tokens
  int64_t tiles = 0;
  uint64_t part = 0;
  for (int j = 0; j < n; ++j) {
    const MatmulParams& p = ps[j];
    if (p.M != ps[0].M || p.K != ps[0].K || p.M <= 0 || p.M > C::kToks || p.N <= 0 ||
        p.K % 32 != 0 || p.res_out != nullptr)
      return false;
    tiles += (p.N + C::kRows - 1) / C::kRows;
    part += GroupPartBytes(p);
  }
  (void)terms;
  // Where the tiles alone fill at most half the SMs (as SplitChunksPerBlock) with K of at most 8
  // chunks, or at most all of them with K of at most 4 chunks (the 0.5B gate/up: 76 tiles, 2
  // launches of 38 CTAs before; H100 lab at M = 64: 35.6 -> 32.6 us; the 1B / 8B gate/up lose:
  // 59 -> 65, 113 -> 147), and the chunk sums fit the split-K cap. Not the 8B q/k/v (16 chunks,
  // 48 tiles, already one shared split): the lab has it 60.5 -> 52-54 us, but the engine's 8B
  // x64 did not gain in three calls (flat; -2-3%; the lead's call: 5,904 -> 5,717 t/s).
  const int sms = DeviceSms() > 0 ? DeviceSms() : 132;
  const int64_t chunks = (ps[0].K + 255) / 256;
  const bool few = (tiles * 2 <= sms && chunks <= 8) || (tiles <= sms && chunks <= 4);
  return chunks >= 2 && few && part <= kSplitPartCap;
}

uint64_t GemmTmaGroupScratchBytes(const MatmulParams* ps, int n, int terms) {
  uint64_t bytes = PartOffset(ps[0], terms);
  if (GroupPlain(ps, n) || GroupWide(ps, n, terms)) return bytes;  // the planes alone
  for (int j = 0; j < n; ++j) bytes += GroupPartBytes(ps[j]);
  return bytes;
}

cudaError_t LaunchGemmTmaGroup(const MatmulParams* ps, int n, int terms, const uint16_t* planes,
                               int ctas, cudaStream_t stream) {
  if (n < 1 || n > kGemmMaxMembers) return cudaErrorInvalidValue;
  if (ps[0].M == 0) return cudaSuccess;
  const int uc = UncondMode();
  if (ctas <= 0 && GroupPlain(ps, n)) {  // ctas > 0: the lab's stream-K at that many CTAs
    if (uc > 0 && terms == 3)
      return LaunchTGroupPlain<TSplitCfg<3, true, 8>::Unsplit>(ps, n, planes, stream);
    return terms == 1 ? LaunchTGroupPlain<TSplitCfg<1, false>::Unsplit>(ps, n, planes, stream)
                      : LaunchTGroupPlain<TSplitCfg<3, true>::Unsplit>(ps, n, planes, stream);
  }
  if (ctas <= 0 && GroupWide(ps, n, terms)) {  // tma256x64p / tma256x64 (configurations 6 / 1)
    using W8 = TCfg<3, 2, 64, false, 4, 1, false, false, false, false, 0, false, 8>;
    using W8p = TCfg<3, 2, 64, false, 4, 1, true, false, false, false, 0, false, 8>;
    if (uc >= 2) return LaunchTGroupPlain<W8p>(ps, n, planes, stream);
    if (uc == 1) return LaunchTGroupPlain<W8>(ps, n, planes, stream);
    return GroupWideMode() == 2
               ? LaunchTGroupPlain<TCfg<3, 2, 64, false, 4, 1, true>>(ps, n, planes, stream)
               : LaunchTGroupPlain<TCfg<3, 2, 64, false, 4>>(ps, n, planes, stream);
  }
  if (uc > 0 && terms == 3) return LaunchTGroup<TSplitCfg<3, true, 8>>(ps, n, planes, ctas, stream);
  return terms == 1 ? LaunchTGroup<TSplitCfg<1, false>>(ps, n, planes, ctas, stream)
                    : LaunchTGroup<TSplitCfg<3, true>>(ps, n, planes, ctas, stream);
}

uint64_t GemmTmaScratchBytes(const MatmulParams& p, int terms, int config) {
  if (config == 12 || config == 13) {
    return terms == 1 ? TCfgScratch<TSplitCfg<1, false>>(p) : TCfgScratch<TSplitCfg<3, false>>(p);
  }
  return PartOffset(p, terms);
}

}  // namespace tessera::cuda
