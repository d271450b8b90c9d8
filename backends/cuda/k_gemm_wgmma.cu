// Prefill GEMM on wgmma m64nNk16 (sm_90a only; dispatched by k_gemm_bf16.cu on compute
// capability 9.0, see gemm_wgmma.h).
//
// Bits: the canonical order of k_matmul_bf16.cu, step for step. lab/wgmma_probe.cu showed that a
// wgmma k16 step rounds like the mma.sync m16n8k16 step with the same k's in the same slots and
// the same carry-in, for N = 8 .. 256 and any position in the tile (lab/NOTES.md "wgmma"). So
// every output element runs: k32 blocks in order; per block step j = 0, 1 with pieces lo first;
// chunks of 8 blocks from +0, chunk sums added in order, then the bias. (The probe also found
// the slot order inside a k16 step irrelevant, for both instructions: only which k's share a
// step matters. Kept as is: the A fragments below are the mma.sync kernels' own.)
//
// Roles: the weight rows are wgmma's M side (A, 64 rows a warpgroup, from registers: per warp
// exactly the m16n8k16 A fragment the mma.sync kernels load, 16 bytes a lane from a natural-order
// tile), the tokens its N side (B, from shared memory). The canonical k-to-slot permutation puts
// k's 8q + 4j + {0, 1, 2, 3} of four lanes into one k16 step, 4 bytes each: not something a
// shared-memory descriptor can gather. So the split pre-pass writes the x pieces already
// permuted (LaunchSplitBf16Wgmma): each k32 block of a plane row is 4 chunks of 16 bytes,
// chunk c = 2j + h holding the slots 8h .. 8h + 7 of step j, i.e. k = 8 * (s / 2) + 4j + 2h +
// s % 2 for s = 0 .. 7. A plane row is K rounded up to 32 (zeros past K).
//
// Shared memory of a k32 block: A [128 MI weight rows][4 x 16 B] (natural order, cp.async), then
// per piece B: no-swizzle core matrices of 8 tokens x 16 bytes, L = 1: [tokens / 8][chunk c]
// [8 tokens][16 B] (leading byte offset, K direction chunk 2j -> 2j + 1: 128; stride byte offset,
// 8 tokens -> the next 8: 512), L = 0: [chunk c][tokens][16 B] (BM * 16 and 128). The step-j
// operand starts at chunk 2j.
//
// Pipeline: S stages of KB k32 blocks, cp.async by all 256 threads, prefetch distance S - 2: a
// stage's wgmma group is waited for one stage later (wait_group 1), so the slot refilled at the
// entry of stage st (that of st - 2) is free. Chunk ends (every 8 blocks) wait for all and move
// the accumulators into the totals (registers, or shared memory for the 256 x 128 tile). Lab
// (H100, M = 2048): the 256-row tiles are the fastest, ~110 TFLOP/s exact and ~255 bf16 on the 8B
// shapes, 1.2x the mma.sync kernels; far from cuBLASLt (see lab/NOTES.md for what is left).
#include <cuda_bf16.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "backends/cuda/dev_common.cuh"
#include "backends/cuda/env_knob.h"
#include "backends/cuda/gemm_wgmma.h"
#include "backends/cuda/mma_common.cuh"
#include "backends/cuda/smem_optin.h"
#include "backends/cuda/wgmma_ops.cuh"

namespace tessera::cuda {
namespace {

constexpr int kChunkBlocks = 8;  // k32 blocks in a canonical chunk (k_matmul_bf16.cu)

__host__ __device__ constexpr int64_t PaddedK(int64_t K) {
  return (K + 31) / 32 * 32;
}

// Position s (0 .. 31) of a permuted k32 block -> its k offset in the block.
__device__ __forceinline__ int SlotK(int s) {
  const int c = s / 8, j = c / 2, h = c % 2, e = s % 8;
  return 8 * (e / 2) + 4 * j + 2 * h + e % 2;
}

// One thread per (token, k32 block, chunk): 8 permuted positions x T pieces, 16 bytes a store.
template <int T>
__global__ void SplitPermKernel(MatmulParams p, uint16_t* planes) {
  GridDepWait();
  AllowDependents();
  const int64_t kp = PaddedK(p.K), nb = kp / 32;
  const int64_t u = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (u >= p.M * nb * 4) return;
  const int c = static_cast<int>(u % 4);
  const int64_t b = (u / 4) % nb, m = u / (4 * nb);
  const float* xr = p.x + m * p.x_row;
  uint32_t o[T][4];
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    const int64_t k0 = b * 32 + SlotK(c * 8 + 2 * w), k1 = b * 32 + SlotK(c * 8 + 2 * w + 1);
    float v0 = k0 < p.K ? xr[k0] : 0.0f, v1 = k1 < p.K ? xr[k1] : 0.0f;
#pragma unroll
    for (int t = 0; t < T; ++t) {
      // The pieces of SplitPack (k_matmul_bf16.cu): round to bf16, keep the exact remainder.
      const __nv_bfloat162 h = __floats2bfloat162_rn(v0, v1);
      o[t][w] = *reinterpret_cast<const uint32_t*>(&h);
      v0 = v0 - __low2float(h);
      v1 = v1 - __high2float(h);
    }
  }
#pragma unroll
  for (int t = 0; t < T; ++t) {
    *reinterpret_cast<uint4*>(planes + (t * p.M + m) * kp + b * 32 + c * 8) =
        make_uint4(o[t][0], o[t][1], o[t][2], o[t][3]);
  }
}

// T pieces; BM tokens a tile (the wgmma N); KB k32 blocks a stage; S stages. 128 weight rows
// (two warpgroups of 64).
// L: B tile layout, 0 = [chunk][tokens][16 B], 1 = [tokens / 8][chunk][8 tokens][16 B] (the two
// k halves of a step adjacent, as CUTLASS's interleaved layout).
// MI: m64 row blocks a warpgroup (tile = 128 MI weight rows); TOTS: chunk totals in shared
// memory ([MI x BM / 8][threads] float4, each thread its own slots) instead of registers.
template <int T_, int BM_, int KB_, int S_, int L_ = 1, int MI_ = 1, bool TOTS_ = false>
struct WCfg {
  static constexpr int T = T_, BM = BM_, KB = KB_, S = S_, L = L_, MI = MI_;
  static constexpr bool TOTS = TOTS_;
  // 16-byte slot of (chunk c, token) in a B tile; leading / stride byte offsets of a step.
  static __device__ __forceinline__ int BSlot(int c, int tok) {
    return L == 0 ? c * BM + tok : ((tok / 8) * 4 + c) * 8 + tok % 8;
  }
  static constexpr uint32_t kLbo = L == 0 ? BM * 16 : 128, kSbo = L == 0 ? 128 : 512;
  static constexpr int kThreads = 256, kBN = 128 * MI;
  static constexpr int kA = kBN * 4, kB = BM * 4;  // 16-byte chunks of a k32 block's tiles
  static constexpr int kBlk = kA + T * kB;
  static constexpr int kStage = KB * kBlk;
  static constexpr int kTot = TOTS ? MI * (BM / 8) * kThreads : 0;  // float4 slots
  static constexpr int kSmem = (S * kStage + kTot) * 16;
  static_assert(kA % kThreads == 0 && kB % kThreads == 0, "whole chunks a thread");
  static_assert(kChunkBlocks % KB == 0, "a stage never straddles a chunk");
  static_assert(S >= 3, "prefetch distance S - 2");
  static_assert(kSmem <= 227 * 1024, "shared memory");
};

template <class C>
__device__ __forceinline__ void LoadStage(uint4* dst, const MatmulParams& p, const uint16_t* planes,
                                          int64_t n0, int64_t m0, int64_t st, int64_t nkb) {
  const int tid = threadIdx.x;
  const int64_t kp = nkb * 32;
#pragma unroll
  for (int b = 0; b < C::KB; ++b) {
    const int64_t kb = st * C::KB + b;
    if (kb >= nkb) break;
    uint4* blk = dst + b * C::kBlk;
#pragma unroll
    for (int i = 0; i < C::kA / C::kThreads; ++i) {
      const int idx = tid + i * C::kThreads, r = idx / 4, cc = idx % 4;
      const int64_t n = n0 + r, k = kb * 32 + cc * 8;
      const bool ok = n < p.N && k < p.K;
      CpAsync16(blk + idx, ok ? p.w + n * p.w_row_bytes + k * 2 : p.w, ok ? 16 : 0);
    }
#pragma unroll
    for (int t = 0; t < C::T; ++t) {
#pragma unroll
      for (int i = 0; i < C::kB / C::kThreads; ++i) {
        // A warp moves 8 tokens x 4 chunks: each quarter-warp (one shared-memory wavefront)
        // writes 8 tokens' chunk c = 128 contiguous bytes (conflict-free), and the warp reads
        // whole 64-byte rows (coalesced).
        const int idx = tid + i * C::kThreads, lane = idx % 32;
        const int tok = (idx / 32) * 8 + lane % 8, c = lane / 8;
        const int64_t m = m0 + tok;
        const bool ok = m < p.M;
        CpAsync16(blk + C::kA + t * C::kB + C::BSlot(c, tok),
                  ok ? planes + (t * p.M + m) * kp + kb * 32 + c * 8 : planes, ok ? 16 : 0);
      }
    }
  }
}

template <class C>
__global__ void __launch_bounds__(256, 1) GemmWgmmaKernel(MatmulParams p, const uint16_t* planes) {
  GridDepWait();
  AllowDependents();
  extern __shared__ uint4 smem[];
  const int wg = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
  const int g = lane / 4, q = lane % 4;
  const int64_t m0 = blockIdx.x * int64_t(C::BM), n0 = blockIdx.y * int64_t(C::kBN);
  const int64_t nkb = (p.K + 31) / 32, nst = (nkb + C::KB - 1) / C::KB;
  float acc[C::MI][C::BM / 2];
  float tot[C::TOTS ? 1 : C::MI][C::TOTS ? 4 : C::BM / 2];
  float4* tot_s = reinterpret_cast<float4*>(smem + C::S * C::kStage) + threadIdx.x;
#pragma unroll
  for (int s = 0; s < C::S - 2; ++s) {
    if (s < nst) LoadStage<C>(smem + s * C::kStage, p, planes, n0, m0, s, nkb);
    CpAsyncCommit();
  }
  const int ra_row = 64 * C::MI * wg + 16 * warp + g;  // + 64 mi
  constexpr int kChunkStages = kChunkBlocks / C::KB;
  // Chunk outer: the accumulators are zeroed only where no wgmma group is in flight (ptxas
  // serializes wgmma otherwise).
  for (int64_t c0 = 0; c0 < nst; c0 += kChunkStages) {
#pragma unroll
    for (int mi = 0; mi < C::MI; ++mi) {
#pragma unroll
      for (int i = 0; i < C::BM / 2; ++i) acc[mi][i] = 0.0f;
    }
    const int64_t c1 = c0 + kChunkStages < nst ? c0 + kChunkStages : nst;
    for (int64_t st = c0; st < c1; ++st) {
      CpAsyncWait<C::S - 3>();
      FenceProxyAsync();  // cp.async data -> visible to wgmma's operand reads
      __syncthreads();    // stage st landed for all; stage st - 2's wgmma groups are done
      const int64_t pf = st + C::S - 2;
      if (pf < nst) LoadStage<C>(smem + (pf % C::S) * C::kStage, p, planes, n0, m0, pf, nkb);
      CpAsyncCommit();
      const uint4* sb = smem + (st % C::S) * C::kStage;
      uint4 ra[C::KB][C::MI][2];
#pragma unroll
      for (int b = 0; b < C::KB; ++b) {
#pragma unroll
        for (int mi = 0; mi < C::MI; ++mi) {
          ra[b][mi][0] = sb[b * C::kBlk + (ra_row + 64 * mi) * 4 + q];
          ra[b][mi][1] = sb[b * C::kBlk + (ra_row + 64 * mi + 8) * 4 + q];
        }
      }
      WgmmaFence();
#pragma unroll
      for (int b = 0; b < C::KB; ++b) {
        if (st * C::KB + b >= nkb) break;  // uniform; never computes a block the GEMV does not
#pragma unroll
        for (int j = 0; j < 2; ++j) {
#pragma unroll
          for (int t = C::T - 1; t >= 0; --t) {
            const uint64_t desc = WgmmaDesc(
                sb + b * C::kBlk + C::kA + t * C::kB + C::BSlot(2 * j, 0), C::kLbo, C::kSbo);
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
      WgmmaWait<1>();
    }
    WgmmaWait<0>();
    const bool first = c0 == 0;  // end of a chunk: total (+)= its sum
#pragma unroll
    for (int mi = 0; mi < C::MI; ++mi) {
#pragma unroll
      for (int i4 = 0; i4 < C::BM / 8; ++i4) {
        float* a = &acc[mi][4 * i4];
        if constexpr (C::TOTS) {
          float4* slot = tot_s + (mi * (C::BM / 8) + i4) * C::kThreads;
          float4 v = make_float4(a[0], a[1], a[2], a[3]);
          if (!first) {
            const float4 o = *slot;
            v = make_float4(o.x + v.x, o.y + v.y, o.z + v.z, o.w + v.w);
          }
          *slot = v;
        } else {
#pragma unroll
          for (int e = 0; e < 4; ++e)
            tot[mi][4 * i4 + e] = first ? a[e] : tot[mi][4 * i4 + e] + a[e];
        }
      }
    }
  }
  WgmmaWait<0>();
  CpAsyncWait<0>();
  // Accumulator element 4j + e: weight row 16 warp + g (+ 8 for e >= 2), token 8j + 2q + e % 2.
#pragma unroll
  for (int mi = 0; mi < C::MI; ++mi) {
#pragma unroll
    for (int jj = 0; jj < C::BM / 8; ++jj) {
      float tv[4];
      if constexpr (C::TOTS) {
        const float4 t4 = tot_s[(mi * (C::BM / 8) + jj) * C::kThreads];  // own slots
        tv[0] = t4.x, tv[1] = t4.y, tv[2] = t4.z, tv[3] = t4.w;
      } else {
#pragma unroll
        for (int e = 0; e < 4; ++e) tv[e] = tot[mi][4 * jj + e];
      }
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t n = n0 + ra_row + 64 * mi + (e >= 2 ? 8 : 0);
        const int64_t m = m0 + jj * 8 + 2 * q + (e & 1);
        if (n >= p.N || m >= p.M) continue;
        float s = tv[e];
        if (p.bias != nullptr) s += p.bias[n];  // no "+ 0" without bias: -0 stays -0
        p.out[m * p.out_row + n * p.out_col] = s;
      }
    }
  }
}

template <class C>
cudaError_t LaunchWCfg(const MatmulParams& p, const uint16_t* planes, cudaStream_t stream) {
  constexpr auto kKernel = GemmWgmmaKernel<C>;
  static std::atomic<uint64_t> smem_set{0};
  cudaError_t e = AllowDynamicSmem(kKernel, C::kSmem, &smem_set);
  if (e != cudaSuccess) return e;
  const int64_t gm = (p.M + C::BM - 1) / C::BM, gn = (p.N + C::kBN - 1) / C::kBN;
  if (gn > 65535 || gm > (int64_t{1} << 31) - 1) return cudaErrorInvalidConfiguration;
  const dim3 grid(static_cast<unsigned>(gm), static_cast<unsigned>(gn));
  LaunchK(kKernel, grid, C::kThreads, C::kSmem, stream, p, planes);
  return cudaGetLastError();
}

// sm_90a code runs on compute capability 9.0 only.
bool DeviceIsSm90() {
  int dev = 0, major = 0, minor = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
    return false;
  }
  return major == 9 && minor == 0;
}

}  // namespace

int64_t WgmmaPlaneBytes(const MatmulParams& p, int terms) {
  return int64_t{terms} * p.M * PaddedK(p.K) * 2;
}

cudaError_t LaunchSplitBf16Wgmma(const MatmulParams& p, int terms, uint16_t* planes,
                                 cudaStream_t stream) {
  if (p.M == 0 || p.K == 0) return cudaSuccess;
  const int64_t work = p.M * (PaddedK(p.K) / 32) * 4;
  const dim3 grid(static_cast<unsigned>((work + 255) / 256));
  if (terms == 1) {
    LaunchK(SplitPermKernel<1>, grid, 256, 0, stream, p, planes);
  } else {
    LaunchK(SplitPermKernel<3>, grid, 256, 0, stream, p, planes);
  }
  return cudaGetLastError();
}

bool GemmWgmmaAvailable() {
  static std::atomic<uint64_t> known{0}, yes{0};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return false;
  const uint64_t bit = uint64_t{1} << (dev & 63);
  if ((known.load(std::memory_order_acquire) & bit) == 0) {
    if (DeviceIsSm90()) yes.fetch_or(bit, std::memory_order_acq_rel);
    known.fetch_or(bit, std::memory_order_acq_rel);
  }
  return (yes.load(std::memory_order_acquire) & bit) != 0;
}

int GemmWgmmaConfigs() {
  return kTmaConfig0 + GemmTmaConfigs();
}

const char* GemmWgmmaName(int config, int terms) {
  static const char* const kNames[kTmaConfig0] = {"wg0", "wg1", "wg2", "wg3", "wg4", "wg5", "wg6"};
  if (config >= 0 && config < kTmaConfig0) return kNames[config];
  return GemmTmaName(config - kTmaConfig0, terms);
}

namespace {
// TESSERA_CUDA_GEMM_TMA: 0 = the TMA configurations fall back to the cp.async ones.
bool TmaAllowed() {
  static const bool allowed = EnvFlag("TESSERA_CUDA_GEMM_TMA", true);
  return allowed;
}
}  // namespace

cudaError_t LaunchGemmWgmma(const MatmulParams& p, int terms, const uint16_t* planes, int config,
                            cudaStream_t stream) {
  if (!GemmWgmmaAvailable()) return cudaErrorNotSupported;
  if (p.M == 0 || p.N == 0) return cudaSuccess;
  if (config >= kTmaConfig0) {
    if (TmaAllowed()) return LaunchGemmTma(p, terms, planes, config - kTmaConfig0, stream);
    config = terms == 1 ? 5 : 6;
  }
  if (terms == 1) {
    switch (config) {  // tile = 128 weight rows x BM tokens; L = B layout
      case 0: return LaunchWCfg<WCfg<1, 128, 2, 4, 1>>(p, planes, stream);
      case 1: return LaunchWCfg<WCfg<1, 64, 2, 6, 1>>(p, planes, stream);
      case 2: return LaunchWCfg<WCfg<1, 128, 2, 4, 0>>(p, planes, stream);
      case 3: return LaunchWCfg<WCfg<1, 128, 2, 6, 1>>(p, planes, stream);
      case 4: return LaunchWCfg<WCfg<1, 64, 2, 6, 0>>(p, planes, stream);
      case 5: return LaunchWCfg<WCfg<1, 128, 1, 4, 1, 2, true>>(p, planes, stream);  // 256x128
      case 6: return LaunchWCfg<WCfg<1, 64, 2, 4, 1, 2, false>>(p, planes, stream);  // 256x64
      default: return cudaErrorInvalidValue;
    }
  }
  switch (config) {
    case 0: return LaunchWCfg<WCfg<3, 128, 1, 4, 1>>(p, planes, stream);
    case 1: return LaunchWCfg<WCfg<3, 64, 1, 6, 1>>(p, planes, stream);
    case 2: return LaunchWCfg<WCfg<3, 128, 1, 4, 0>>(p, planes, stream);
    case 3: return LaunchWCfg<WCfg<3, 128, 1, 6, 1>>(p, planes, stream);
    case 4: return LaunchWCfg<WCfg<3, 64, 1, 6, 0>>(p, planes, stream);
    case 5: return LaunchWCfg<WCfg<3, 64, 1, 4, 1, 2, false>>(p, planes, stream);  // 256x64
    case 6: return LaunchWCfg<WCfg<3, 64, 1, 6, 1, 2, false>>(p, planes, stream);  // 256x64
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace tessera::cuda
