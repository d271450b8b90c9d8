// Prefill GEMM, second generation: the bf16-weight MATMUL for M > kGemvMaxRows on mma.sync
// m16n8k16, with bigger tiles and a leaner pipeline than the first kernels of k_matmul_bf16.cu.
//
// Bits: every output element runs exactly the canonical sequence of k_matmul_bf16.cu's header
// (k32 blocks in order, the fixed k-to-slot permutation, per block mma step j = 0, 1 with the x
// pieces lo first, chunks of 8 blocks summed from +0 and added in chunk order, then the bias), so
// rows equal the GEMV's at M = 1 and the first GEMM's bit for bit. What is free is everything
// across elements: tile shapes, which warp owns which element, how many k32 blocks a pipeline
// stage holds, and in what order the compiler issues the independent mma chains.
//
// Layout of a pipeline stage in shared memory: KB k32 blocks, each [A: BN weight rows][4 x 16 B]
// then T x [B: BM tokens][4 x 16 B] (the x pieces, split by the pre-pass into planes). A lane
// (g = lane / 4, q = lane % 4) reads rows g .. g + 7 at 16-byte chunk q: 8 consecutive rows x 64 B
// = 512 contiguous bytes a warp, which is conflict-free without a swizzle, and one 16-byte load
// gives the lane both mma steps' fragments (the permutation's purpose; ldmatrix would move the
// same 16 bytes a lane per instruction, so it would not read less).
//
// The chunk totals (one float per element, touched once per 256 k's) live in registers when
// they fit (TOTS = false) or in shared memory ([I * J][threads] float4, each thread its own
// slots: conflict-free).
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "backends/cuda/dev_common.cuh"
#include "backends/cuda/env_knob.h"
#include "backends/cuda/mma_common.cuh"
#include "backends/cuda/smem_optin.h"
#ifdef TESSERA_CUDA_WGMMA
#include "backends/cuda/gemm_wgmma.h"
#endif

namespace tessera::cuda {
namespace {

constexpr int kChunkBlocks = 8;  // k32 blocks in a canonical chunk (k_matmul_bf16.cu)

// Epilogue of one mma tile's accumulator quad (rows g, g + 8; tokens 2q, 2q + 1): bias, store.
template <class C>
__device__ __forceinline__ void StoreQuad(const MatmulParams& p, const float (&tv)[4], int64_t n0,
                                          int64_t m0, int wn, int wm, int i, int jj, int g, int q) {
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int64_t n = n0 + wn * 16 * C::I + i * 16 + g + (e >= 2 ? 8 : 0);
    const int64_t m = m0 + wm * 8 * C::J + jj * 8 + 2 * q + (e & 1);
    if (n >= p.N || m >= p.M) continue;
    float s = tv[e];
    if (p.bias != nullptr) s += p.bias[n];  // no "+ 0" without bias: -0 stays -0
    p.out[m * p.out_row + n * p.out_col] = s;
  }
}

// T pieces; a warp owns I x J mma tiles (16 I weight rows x 8 J tokens); WN x WM warps; KB k32
// blocks a stage; S stages; TOTS: chunk totals in shared memory.
template <int T_, int I_, int J_, int WN_, int WM_, int KB_, int S_, bool TOTS_>
struct Cfg {
  static constexpr int T = T_, I = I_, J = J_, WN = WN_, WM = WM_, KB = KB_, S = S_;
  static constexpr bool TOTS = TOTS_;
  static constexpr int kThreads = 32 * WN * WM;
  static constexpr int kBN = 16 * I * WN, kBM = 8 * J * WM;
  static constexpr int kA = kBN * 4, kB = kBM * 4;  // 16-byte chunks of a k32 block's tiles
  static constexpr int kBlk = kA + T * kB;
  static constexpr int kStage = KB * kBlk;
  static constexpr int kTot = TOTS ? I * J * kThreads : 0;
  static constexpr int kSmem = (S * kStage + kTot) * 16;
  static_assert(kA % kThreads == 0 && kB % kThreads == 0, "whole chunks a thread");
  static_assert(kChunkBlocks % KB == 0, "a stage never straddles a chunk");
  static_assert(kSmem <= 227 * 1024, "shared memory");
};

// Issues the cp.async copies of stage `st` (k32 blocks st * KB ..) into dst. Chunks past K or past
// the matrix edges are zero-filled (src-size 0), the GEMV's zero padding.
template <class C>
__device__ __forceinline__ void LoadStage(uint4* dst, const MatmulParams& p, const uint16_t* planes,
                                          int64_t n0, int64_t m0, int64_t st) {
  const int tid = threadIdx.x, r0 = tid / 4, cc = tid % 4;
  constexpr int kRowStep = C::kThreads / 4;
#pragma unroll
  for (int b = 0; b < C::KB; ++b) {
    const int64_t k = (st * C::KB + b) * 32 + cc * 8;
    const bool kok = k < p.K;
    uint4* blk = dst + b * C::kBlk + tid;
#pragma unroll
    for (int i = 0; i < C::kA / C::kThreads; ++i) {
      const int64_t n = n0 + r0 + i * kRowStep;
      const bool ok = kok && n < p.N;
      CpAsync16(blk + i * C::kThreads, ok ? p.w + n * p.w_row_bytes + k * 2 : p.w, ok ? 16 : 0);
    }
#pragma unroll
    for (int t = 0; t < C::T; ++t) {
#pragma unroll
      for (int i = 0; i < C::kB / C::kThreads; ++i) {
        const int64_t m = m0 + r0 + i * kRowStep;
        const bool ok = kok && m < p.M;
        CpAsync16(blk + C::kA + t * C::kB + i * C::kThreads,
                  ok ? planes + (t * p.M + m) * p.K + k : planes, ok ? 16 : 0);
      }
    }
  }
}

// One k32 block's mma steps for the warp's I x J tiles (the canonical per-element sequence:
// step j = 0, 1; pieces T - 1 .. 0). Token columns outer so only one column's pieces are live.
template <class C>
__device__ __forceinline__ void BlockMma(const uint4* blk, int wn, int wm, int g, int q,
                                         float (&acc)[C::I][C::J][4]) {
  uint4 ra[C::I][2];
#pragma unroll
  for (int i = 0; i < C::I; ++i) {
    const int r = wn * 16 * C::I + i * 16 + g;
    ra[i][0] = blk[r * 4 + q];
    ra[i][1] = blk[(r + 8) * 4 + q];
  }
#pragma unroll
  for (int jj = 0; jj < C::J; ++jj) {
    uint4 rb[C::T];
#pragma unroll
    for (int t = 0; t < C::T; ++t)
      rb[t] = blk[C::kA + t * C::kB + (wm * 8 * C::J + jj * 8 + g) * 4 + q];
#pragma unroll
    for (int j = 0; j < 2; ++j) {
#pragma unroll
      for (int t = C::T - 1; t >= 0; --t) {
#pragma unroll
        for (int i = 0; i < C::I; ++i) {
          MmaFree(acc[i][jj], Word(ra[i][0], 2 * j), Word(ra[i][1], 2 * j),
                  Word(ra[i][0], 2 * j + 1), Word(ra[i][1], 2 * j + 1), Word(rb[t], 2 * j),
                  Word(rb[t], 2 * j + 1));
        }
      }
    }
  }
}

// Grid: x = token tiles (fastest, so the blocks in flight share weight tiles), y = weight tiles.
template <class C>
__global__ void __launch_bounds__(C::kThreads, 1)
    GemmTiledKernel(MatmulParams p, const uint16_t* planes) {
  GridDepWait();  // planes come from the split kernel just before
  AllowDependents();
  extern __shared__ uint4 smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, q = lane % 4, wn = warp % C::WN, wm = warp / C::WN;
  const int64_t m0 = blockIdx.x * int64_t(C::kBM), n0 = blockIdx.y * int64_t(C::kBN);
  const int64_t nkb = (p.K + 31) / 32, nst = (nkb + C::KB - 1) / C::KB;
  float acc[C::I][C::J][4] = {};
  float tot[C::TOTS ? 1 : C::I][C::TOTS ? 1 : C::J][4] = {};
  float4* tot_s = reinterpret_cast<float4*>(smem + C::S * C::kStage);
#pragma unroll
  for (int s = 0; s < C::S - 1; ++s) {
    if (s < nst) LoadStage<C>(smem + s * C::kStage, p, planes, n0, m0, s);
    CpAsyncCommit();  // empty groups keep the wait count uniform
  }
  for (int64_t st = 0; st < nst; ++st) {
    CpAsyncWait<C::S - 2>();
    __syncthreads();  // stage st landed for all; stage st - 1 is free to overwrite
    const int64_t pf = st + C::S - 1;
    if (pf < nst) LoadStage<C>(smem + (pf % C::S) * C::kStage, p, planes, n0, m0, pf);
    CpAsyncCommit();
    const uint4* sb = smem + (st % C::S) * C::kStage;
#pragma unroll
    for (int b = 0; b < C::KB; ++b) {
      const int64_t kb = st * C::KB + b;
      if (kb >= nkb) break;  // uniform; never computes a block the GEMV does not
      BlockMma<C>(sb + b * C::kBlk, wn, wm, g, q, acc);
      if (kb % kChunkBlocks != kChunkBlocks - 1 && kb != nkb - 1) continue;
      const bool first = kb < kChunkBlocks;  // end of a chunk: total (+)= its sum
#pragma unroll
      for (int i = 0; i < C::I; ++i) {
#pragma unroll
        for (int jj = 0; jj < C::J; ++jj) {
          if constexpr (C::TOTS) {
            float4* slot = tot_s + (i * C::J + jj) * C::kThreads + threadIdx.x;
            float4 v = make_float4(acc[i][jj][0], acc[i][jj][1], acc[i][jj][2], acc[i][jj][3]);
            if (!first) {
              const float4 o = *slot;
              v = make_float4(o.x + v.x, o.y + v.y, o.z + v.z, o.w + v.w);
            }
            *slot = v;
          } else {
#pragma unroll
            for (int e = 0; e < 4; ++e)
              tot[i][jj][e] = first ? acc[i][jj][e] : tot[i][jj][e] + acc[i][jj][e];
          }
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[i][jj][e] = 0.0f;
        }
      }
    }
  }
  CpAsyncWait<0>();
#pragma unroll
  for (int i = 0; i < C::I; ++i) {
#pragma unroll
    for (int jj = 0; jj < C::J; ++jj) {
      float tv[4];
      if constexpr (C::TOTS) {
        const float4 t4 = tot_s[(i * C::J + jj) * C::kThreads + threadIdx.x];  // own slots
        tv[0] = t4.x, tv[1] = t4.y, tv[2] = t4.z, tv[3] = t4.w;
      } else {
#pragma unroll
        for (int e = 0; e < 4; ++e) tv[e] = tot[i][jj][e];
      }
      StoreQuad<C>(p, tv, n0, m0, wn, wm, i, jj, g, q);
    }
  }
}

// ---- Fragment-pipelined variant: the next k32 block's fragments load while this block's mma
// steps run ----
//
// The plain kernel loads a block's fragments, then runs its mma steps: with 8 warps a block,
// synchronized per stage, shared-memory reads and tensor work mostly take turns (lab run 1:
// ~260 TFLOP/s of tensor work whatever the tile). Here each warp holds two fragment sets and
// issues block kb + 1's loads before block kb's mma steps, and the mma steps run (j, t) outer,
// (i, jj) inner: I x J independent accumulator chains at a time. Same per-element sequence.
template <class C>
struct Frags {
  uint4 a[C::I][2];
  uint4 b[C::T][C::J];
};

template <class C>
__device__ __forceinline__ void LoadFrags(Frags<C>& f, const uint4* blk, int wn, int wm, int g,
                                          int q) {
#pragma unroll
  for (int i = 0; i < C::I; ++i) {
    const int r = wn * 16 * C::I + i * 16 + g;
    f.a[i][0] = blk[r * 4 + q];
    f.a[i][1] = blk[(r + 8) * 4 + q];
  }
#pragma unroll
  for (int t = 0; t < C::T; ++t) {
#pragma unroll
    for (int jj = 0; jj < C::J; ++jj)
      f.b[t][jj] = blk[C::kA + t * C::kB + (wm * 8 * C::J + jj * 8 + g) * 4 + q];
  }
}

template <class C>
__device__ __forceinline__ void MmaFrags(const Frags<C>& f, float (&acc)[C::I][C::J][4]) {
#pragma unroll
  for (int j = 0; j < 2; ++j) {
#pragma unroll
    for (int t = C::T - 1; t >= 0; --t) {
#pragma unroll
      for (int i = 0; i < C::I; ++i) {
#pragma unroll
        for (int jj = 0; jj < C::J; ++jj) {
          MmaFree(acc[i][jj], Word(f.a[i][0], 2 * j), Word(f.a[i][1], 2 * j),
                  Word(f.a[i][0], 2 * j + 1), Word(f.a[i][1], 2 * j + 1), Word(f.b[t][jj], 2 * j),
                  Word(f.b[t][jj], 2 * j + 1));
        }
      }
    }
  }
}

// End of a canonical chunk at block kb: total (+)= the chunk's sum, accumulators back to +0.
template <class C>
__device__ __forceinline__ void ChunkEnd(int64_t kb, int64_t nkb, float4* tot_s,
                                         float (&acc)[C::I][C::J][4]) {
  if (kb % kChunkBlocks != kChunkBlocks - 1 && kb != nkb - 1) return;
  const bool first = kb < kChunkBlocks;
#pragma unroll
  for (int i = 0; i < C::I; ++i) {
#pragma unroll
    for (int jj = 0; jj < C::J; ++jj) {
      float4* slot = tot_s + (i * C::J + jj) * C::kThreads + threadIdx.x;
      float4 v = make_float4(acc[i][jj][0], acc[i][jj][1], acc[i][jj][2], acc[i][jj][3]);
      if (!first) {
        const float4 o = *slot;
        v = make_float4(o.x + v.x, o.y + v.y, o.z + v.z, o.w + v.w);
      }
      *slot = v;
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][jj][e] = 0.0f;
    }
  }
}

// One block: fetch block kb + 1's fragments into nxt (crossing into the next stage first waits
// for it and refills the stage every warp is done with), then block kb's mma steps from cur.
template <class C>
__device__ __forceinline__ void PipeStep(int64_t kb, int64_t nkb, int64_t nst, uint4* smem,
                                         const MatmulParams& p, const uint16_t* planes, int64_t n0,
                                         int64_t m0, int wn, int wm, int g, int q,
                                         const Frags<C>& cur, Frags<C>& nxt,
                                         float (&acc)[C::I][C::J][4], float4* tot_s) {
  const int64_t kn = kb + 1;
  if (kn < nkb) {
    const int64_t st = kn / C::KB;
    if (kn % C::KB == 0) {
      // Stage st must have landed: S + st - 1 groups committed (group = stage), st + 1 complete.
      CpAsyncWait<C::S - 2>();
      __syncthreads();  // and every warp holds its fragments of stage st - 1: refill that slot
      const int64_t pf = st + C::S - 1;
      if (pf < nst) LoadStage<C>(smem + (pf % C::S) * C::kStage, p, planes, n0, m0, pf);
      CpAsyncCommit();
    }
    LoadFrags<C>(nxt, smem + (st % C::S) * C::kStage + (kn % C::KB) * C::kBlk, wn, wm, g, q);
  }
  MmaFrags<C>(cur, acc);
  ChunkEnd<C>(kb, nkb, tot_s, acc);
}

template <class C>
__global__ void __launch_bounds__(C::kThreads, 1)
    GemmPipeKernel(MatmulParams p, const uint16_t* planes) {
  static_assert(C::TOTS && C::S >= 2, "pipelined variant: totals in shared memory, 2+ stages");
  GridDepWait();
  AllowDependents();
  extern __shared__ uint4 smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, q = lane % 4, wn = warp % C::WN, wm = warp / C::WN;
  const int64_t m0 = blockIdx.x * int64_t(C::kBM), n0 = blockIdx.y * int64_t(C::kBN);
  const int64_t nkb = (p.K + 31) / 32, nst = (nkb + C::KB - 1) / C::KB;
  float acc[C::I][C::J][4] = {};
  float4* tot_s = reinterpret_cast<float4*>(smem + C::S * C::kStage);
  // Every slot filled up front (stages 0 .. S - 1): the slot of stage st - 1 is refilled with
  // stage st + S - 1 once every warp has moved past it.
#pragma unroll
  for (int s = 0; s < C::S; ++s) {
    if (s < nst) LoadStage<C>(smem + s * C::kStage, p, planes, n0, m0, s);
    CpAsyncCommit();
  }
  CpAsyncWait<C::S - 1>();
  __syncthreads();
  Frags<C> f0, f1;
  LoadFrags<C>(f0, smem, wn, wm, g, q);
  for (int64_t kb = 0; kb < nkb; kb += 2) {  // two blocks a trip: the fragment sets swap roles
    PipeStep<C>(kb, nkb, nst, smem, p, planes, n0, m0, wn, wm, g, q, f0, f1, acc, tot_s);
    if (kb + 1 >= nkb) break;
    PipeStep<C>(kb + 1, nkb, nst, smem, p, planes, n0, m0, wn, wm, g, q, f1, f0, acc, tot_s);
  }
  CpAsyncWait<0>();
  __syncthreads();  // no-op for the totals (own slots); keeps the epilogue after the last reads
#pragma unroll
  for (int i = 0; i < C::I; ++i) {
#pragma unroll
    for (int jj = 0; jj < C::J; ++jj) {
      const float4 t4 = tot_s[(i * C::J + jj) * C::kThreads + threadIdx.x];
      const float tv[4] = {t4.x, t4.y, t4.z, t4.w};
      StoreQuad<C>(p, tv, n0, m0, wn, wm, i, jj, g, q);
    }
  }
}

template <class C, bool PIPE>
constexpr auto KernelOf() {
  if constexpr (PIPE) {
    return GemmPipeKernel<C>;
  } else {
    return GemmTiledKernel<C>;
  }
}

template <class C, bool PIPE = false>
cudaError_t LaunchCfg(const MatmulParams& p, const uint16_t* planes, cudaStream_t stream) {
  constexpr auto kKernel = KernelOf<C, PIPE>();
  static std::atomic<uint64_t> smem_set{0};
  cudaError_t e = AllowDynamicSmem(kKernel, C::kSmem, &smem_set);
  if (e != cudaSuccess) return e;
  const int64_t gm = (p.M + C::kBM - 1) / C::kBM, gn = (p.N + C::kBN - 1) / C::kBN;
  if (gn > 65535 || gm > (int64_t{1} << 31) - 1) return cudaErrorInvalidConfiguration;
  const dim3 grid(static_cast<unsigned>(gm), static_cast<unsigned>(gn));
  LaunchK(kKernel, grid, C::kThreads, C::kSmem, stream, p, planes);
  return cudaGetLastError();
}

// The lab's configurations (GemmTiledConfigs), per piece count. Index 0 is the default.
template <int T>
cudaError_t LaunchConfig(const MatmulParams& p, const uint16_t* planes, int config,
                         cudaStream_t stream);

template <>
cudaError_t LaunchConfig<1>(const MatmulParams& p, const uint16_t* planes, int config,
                            cudaStream_t stream) {
  switch (config) {  // tile = weight rows x tokens; P = fragment-pipelined
    case 0: return LaunchCfg<Cfg<1, 4, 4, 2, 4, 2, 4, true>, true>(p, planes, stream);  // 128x128 P
    case 1: return LaunchCfg<Cfg<1, 4, 4, 2, 4, 1, 6, true>, true>(p, planes, stream);  // 128x128 P
    case 2: return LaunchCfg<Cfg<1, 4, 4, 2, 4, 2, 4, true>>(p, planes, stream);        // 128x128
    case 3: return LaunchCfg<Cfg<1, 4, 8, 4, 2, 1, 4, true>>(p, planes, stream);        // 256x128
    case 4: return LaunchCfg<Cfg<1, 2, 8, 4, 2, 2, 4, true>, true>(p, planes, stream);  // 128x128 P
    case 5: return LaunchCfg<Cfg<1, 4, 4, 2, 4, 1, 4, true>, true>(p, planes, stream);  // 128x128 P
    default: return cudaErrorInvalidValue;
  }
}

template <>
cudaError_t LaunchConfig<3>(const MatmulParams& p, const uint16_t* planes, int config,
                            cudaStream_t stream) {
  switch (config) {
    case 0: return LaunchCfg<Cfg<3, 4, 4, 2, 4, 1, 4, true>, true>(p, planes, stream);  // 128x128 P
    case 1: return LaunchCfg<Cfg<3, 4, 2, 2, 4, 1, 4, true>, true>(p, planes, stream);  // 128x64 P
    case 2: return LaunchCfg<Cfg<3, 2, 4, 4, 2, 1, 4, true>, true>(p, planes, stream);  // 128x64 P
    case 3: return LaunchCfg<Cfg<3, 4, 4, 2, 4, 1, 3, true>>(p, planes, stream);        // 128x128
    case 4: return LaunchCfg<Cfg<3, 4, 4, 2, 4, 1, 5, true>, true>(p, planes, stream);  // 128x128 P
    case 5: return LaunchCfg<Cfg<3, 4, 4, 4, 2, 1, 5, true>>(p, planes, stream);        // 256x64
    default: return cudaErrorInvalidValue;
  }
}

constexpr int kConfigs = 6;

// Auto choice: the candidate (or the narrow 128 x 64 kernel of k_matmul_bf16.cu, config -1) with
// the least estimated time = waves of blocks over the SMs x one block's time (tile area / the
// rate it reaches on a full card). Rates: H100, M = 2048, lab runs (lab/NOTES.md "Prefill
// GEMM"). Small grids take small tiles (0.5B/1B k/v projections: 2x faster than big tiles).
struct Candidate {
  int config;
  int64_t bn, bm;
  double tflops;
  bool pipe;
};
constexpr Candidate kAuto1[] = {{3, 256, 128, 218.0, false}, {2, 128, 128, 212.0, false}};
constexpr Candidate kAuto3[] = {
    {0, 128, 128, 95.0, true}, {2, 128, 64, 79.0, true}, {3, 128, 128, 87.0, false}};

// TESSERA_CUDA_GEMM_PIPE=0: the auto choice skips the fragment-pipelined configurations.
bool PipeAllowed() {
  static const bool allowed = EnvFlag("TESSERA_CUDA_GEMM_PIPE", true);
  return allowed;
}

// wgmma (k_gemm_wgmma.cu, sm_90 devices): GemmTiledAuto answers kWgmmaConfig + its config, and
// LaunchGemmBf16Tiled re-splits x into the slot-permuted planes it reads (same pieces, same
// buffer: K % 32 == 0, so no padding) and runs it. Same bits as every other configuration (lab
// bit checks). TESSERA_CUDA_GEMM_WGMMA=0 turns it off, =1 takes it wherever it can run.
#ifdef TESSERA_CUDA_WGMMA
constexpr int kWgmmaConfig = 64;

int WgmmaMode() {
  static const int mode = [] {
    const char* v = std::getenv("TESSERA_CUDA_GEMM_WGMMA");
    if (v != nullptr && std::strcmp(v, "0") == 0) return 0;
    if (v != nullptr && std::strcmp(v, "1") == 0) return 2;
    return 1;  // auto
  }();
  return mode;
}

// TESSERA_CUDA_GEMM_XSPLIT: which modes run the TMA tiles' x-splitting twins (k_gemm_tma.cu
// configurations 14 .. 17: x split in the producer warpgroup, no pre-pass; same bits): 0
// (default) none, 1 both, 3 three pieces only. H100: 0.55-0.7x the plain tiles (the staged f32
// tile adds shared-memory traffic; lab/NOTES.md "x split in the TMA producer").
int XsplitMode() {
  static const int mode = EnvInt("TESSERA_CUDA_GEMM_XSPLIT", 0);
  return mode;
}

// TESSERA_CUDA_GEMM_PERSIST: 1 (default) the TMA auto tiles run as their persistent twins
// (k_gemm_tma.cu configurations 18 .. 21; same bits), 0 the plain grid, 2 as 1 with the
// three-piece 128 x 128 tile pipelined (a lab choice).
int PersistMode() {
  static const int mode = EnvInt("TESSERA_CUDA_GEMM_PERSIST", 1);
  return mode;
}

// The wgmma configuration that replaces `config` (a LaunchGemmWgmma one) with x split on the fly,
// or -1.
int XsplitTwin(const MatmulParams& p, int terms, int config) {
  const int mode = XsplitMode();
  static const bool tma = EnvFlag("TESSERA_CUDA_GEMM_TMA", true);  // LaunchGemmWgmma's switch
  // Prefill tiles only (M > 64): the decode batches keep their own kernel choice and fusions.
  if (mode == 0 || (mode == 3 && terms != 3) || config < kTmaConfig0 || !tma || p.M <= 64) {
    return -1;
  }
  if (!GemmTmaXsplitFits(p)) return -1;
  const int twin = GemmTmaXsplitTwin(config - kTmaConfig0, terms);
  return twin >= 0 ? kTmaConfig0 + twin : -1;
}

// The persistent twin of `config` (a LaunchGemmWgmma one; M > 64 as above), or `config`; before
// that, a narrow tile's split-K twin where its grid fills at most half the SMs (cu-gemm15).
int PersistTwin(const MatmulParams& p, int terms, int config) {
  static const bool tma = EnvFlag("TESSERA_CUDA_GEMM_TMA", true);
  if (!tma || config < kTmaConfig0 || p.M <= 64) return config;
  const int split = GemmTmaPrefillSplit(p, config - kTmaConfig0, terms);
  if (split >= 0) return kTmaConfig0 + split;
  if (PersistMode() == 0) return config;
  const int twin = GemmTmaPersistTwin(config - kTmaConfig0, terms, PersistMode() == 2);
  return twin >= 0 ? kTmaConfig0 + twin : config;
}
#endif

// The wgmma configuration for p (or -1): sm_90 device, K % 32 == 0 (the planes buffer has no
// room for padding), and the least estimated time of the candidates (same model as below), if
// below `best_t` (always when forced).
int WgmmaAuto(const MatmulParams& p, int terms, int sms, double best_t) {
#ifdef TESSERA_CUDA_WGMMA
  if (WgmmaMode() == 0 || p.K % 32 != 0 || !GemmWgmmaAvailable()) return -1;
  const auto est = [&](int64_t bn, int64_t bm, double tflops) {
    const int64_t blocks = ((p.M + bm - 1) / bm) * ((p.N + bn - 1) / bn);
    return static_cast<double>((blocks + sms - 1) / sms) * static_cast<double>(bn * bm) / tflops;
  };
  const WgmmaCandidate* c = terms == 1 ? kWgmmaAuto1 : kWgmmaAuto3;
  const int n = terms == 1 ? kWgmmaAuto1Count : kWgmmaAuto3Count;
  int best = -1;
  double t_best = 0.0;
  for (int i = 0; i < n; ++i) {
    const double t = est(c[i].bn, c[i].bm, c[i].tflops);
    if (best < 0 || t < t_best) best = c[i].config, t_best = t;
  }
  if (WgmmaMode() == 2 || t_best < best_t) return kWgmmaConfig + best;
#else
  (void)p, (void)terms, (void)sms, (void)best_t;
#endif
  return -1;
}

}  // namespace

int GemmTiledConfigs() {
  return kConfigs;
}

int GemmTiledAuto(const MatmulParams& p, int terms, int sms) {
  if (p.M <= 64) return -1;  // the narrow kernel's tile height: nothing to gain
  if (sms <= 0) sms = 132;
  const auto est = [&](int64_t bn, int64_t bm, double tflops) {
    const int64_t blocks = ((p.M + bm - 1) / bm) * ((p.N + bn - 1) / bn);
    return static_cast<double>((blocks + sms - 1) / sms) * static_cast<double>(bn * bm) / tflops;
  };
  int best = -1;
  double best_t = est(128, 64, terms == 1 ? 105.0 : 62.0);
  const Candidate* c = terms == 1 ? kAuto1 : kAuto3;
  const int n = terms == 1 ? 2 : 3;
  for (int i = 0; i < n; ++i) {
    if (c[i].pipe && !PipeAllowed()) continue;
    const double t = est(c[i].bn, c[i].bm, c[i].tflops);
    if (t < best_t) best = c[i].config, best_t = t;
  }
  const int wg = WgmmaAuto(p, terms, sms, best_t);
  return wg >= 0 ? wg : best;
}

int GemmTiledWgmmaRun(const MatmulParams& p, int terms, int config) {
#ifdef TESSERA_CUDA_WGMMA
  if (config >= kWgmmaConfig) return PersistTwin(p, terms, config - kWgmmaConfig);
#else
  (void)p, (void)terms;
#endif
  (void)config;
  return -1;
}

cudaError_t LaunchGemmBf16Tiled(const MatmulParams& p, int terms, const uint16_t* planes,
                                int config, cudaStream_t stream) {
  if (p.M == 0 || p.N == 0) return cudaSuccess;
#ifdef TESSERA_CUDA_WGMMA
  if (config >= kWgmmaConfig) {
    // The TMA tile's x-splitting twin where it runs: no split pre-pass at all.
    const int twin = XsplitTwin(p, terms, config - kWgmmaConfig);
    if (twin >= 0) return LaunchGemmWgmma(p, terms, nullptr, twin, stream);
    // The planes buffer is the caller's (sized terms x M x K); the natural-order split in it is
    // replaced by the permuted one.
    uint16_t* wplanes = const_cast<uint16_t*>(planes);
    const cudaError_t e = LaunchSplitBf16Wgmma(p, terms, wplanes, stream);
    if (e != cudaSuccess) return e;
    return LaunchGemmWgmma(p, terms, wplanes, GemmTiledWgmmaRun(p, terms, config), stream);
  }
#endif
  return terms == 1 ? LaunchConfig<1>(p, planes, config, stream)
                    : LaunchConfig<3>(p, planes, config, stream);
}

}  // namespace tessera::cuda
