// cu29-ring: can a decode GEMV whose weights stream through a block-shared shared-memory ring
// (one producer warp issuing cp.async.bulk copies, consumer warps doing the exact-mode mma chain)
// read its bytes closer to copy than the engine's register-load GEMV? Standalone probe (no
// plugin, no bits compared): the consumer's instruction shape is the engine's (a unit = 16 rows x
// one 256-k chunk, 8 k32 blocks x 2 steps x 3 pieces = 48 dependent mma from zero, x pieces from
// shared memory as GemvSplitX leaves them), the chunk sums are stored, the in-order combine is left
// out. Prints us and the fraction of the measured device-to-device copy for the Llama-3.1-8B
// decode shapes, beside a plain read of the same bytes.
//
// Build (repository root): nvcc -O3 -std=c++20 -arch=sm_90a -I. -Iplugins-api/include -o
// ring29_probe
//   backends/cuda/lab/ring29_probe.cu
// Run:   ./ring29_probe [reps]
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "backends/cuda/dev_common.cuh"  // MbarWait
#include "backends/cuda/mma_common.cuh"  // Mma, Word

#define CK(x)                                                                         \
  do {                                                                                \
    cudaError_t e_ = (x);                                                             \
    if (e_ != cudaSuccess) {                                                          \
      std::fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); \
      std::exit(1);                                                                   \
    }                                                                                 \
  } while (0)

namespace {

using tessera::cuda::MbarWait;
using tessera::cuda::Mma;
using tessera::cuda::Word;

__device__ __forceinline__ uint32_t Smem(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Weights w: N x K bf16 rows. A unit = 16 rows x UCH consecutive 256-k chunks; units u = (row
// group u / (nch / UCH), chunk block u % (nch / UCH)); block b takes units [b U / G, (b+1) U / G).
// xp: x's 3 bf16 pieces as uint2 words [piece][kb][q][j] (the block copies them to shared memory
// first). out: 128 floats a chunk (the chunk sums). Warps 0 .. C - 1 consume, warps C .. C + P - 1
// produce (producer p serves consumers c with c % P == p). Each consumer owns D slots: its k-th
// unit goes to slot consumer * D + k % D, use k / D, so a slot has one consumer, which waits for
// use r only after it consumed use r - 1 (parity waits cannot tell phases two apart).
// MODE (how a producer fills a unit's stage): 1 = one 1-D copy of UCH x 8 contiguous KB (wrong
// data: the op-count bound); 2 = 4 UCH 2-D copies of 16 rows x 128 bytes, 128-byte swizzle; 3 = UCH
// 2-D copies of 16 rows x 512 bytes, no swizzle; 4 = one 3-D copy (256 k, 16 rows, UCH chunks).
template <int C, int P, int MODE, int UCH, bool PDL = false>
__global__ void __launch_bounds__((C + P) * 32, 1)
    RingGemv(const uint8_t* __restrict__ w, int64_t N, int64_t K, const uint2* __restrict__ xp,
             float* __restrict__ out, int D, const __grid_constant__ CUtensorMap map) {
  extern __shared__ __align__(128) uint8_t sm[];
  constexpr int kUnit = UCH * 8192;
  const int nkb = static_cast<int>(K / 32), nch = static_cast<int>(K / 256), nub = nch / UCH;
  const int64_t U = (N / 16) * nub;
  const int64_t u0 = blockIdx.x * U / gridDim.x, u1 = (blockIdx.x + 1) * U / gridDim.x;
  const int n = static_cast<int>(u1 - u0);
  uint64_t* full = reinterpret_cast<uint64_t*>(sm);
  uint64_t* empty = full + 32;
  uint2* xs = reinterpret_cast<uint2*>(sm + 512);
  const uint32_t ring_off = 512 + ((3 * nkb * 8 * 8 + 127) / 128) * 128;
  uint8_t* ring = sm + (((Smem(sm) + ring_off + 1023) & ~1023u) - Smem(sm));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int S = C * D;
  auto slot_of = [&](int i, int& use) {
    const int k = i / C;
    use = k / D;
    return (i % C) * D + k % D;
  };
  if (threadIdx.x < S) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(Smem(&full[threadIdx.x])));
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(Smem(&empty[threadIdx.x])));
  }
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  __syncthreads();
  if (PDL) asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
  if (warp >= C) {
    // Producers: stream before x is in shared memory (weights do not depend on x).
    const int pw = warp - C;
    uint64_t pol;
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(pol));
    for (int i = 0; i < n; ++i) {
      if ((i % C) % P != pw) continue;
      int r = 0;
      const int s = slot_of(i, r);
      if (r > 0) MbarWait(Smem(&empty[s]), (r - 1) & 1);
      const int64_t u = u0 + i, gr = u / nub, cb = u % nub;
      const uint32_t dst = Smem(ring + s * kUnit), bar = Smem(&full[s]);
      if (lane == 0) {
        asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar),
                     "r"(kUnit)
                     : "memory");
      }
      __syncwarp();
      if (MODE == 1 && lane == 0) {
        const uint8_t* src = w + u * kUnit;
        asm volatile(
            "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint"
            " [%0], [%1], %2, [%3], %4;\n" ::"r"(dst),
            "l"(src), "r"(kUnit), "r"(bar), "l"(pol)
            : "memory");
      }
      if ((MODE == 2 && lane < 4 * UCH) || (MODE == 3 && lane < UCH)) {
        const int k0 = static_cast<int>(cb * UCH * 256 + (MODE == 2 ? lane * 64 : lane * 256));
        asm volatile(
            "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
            ".L2::cache_hint [%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(
                dst + lane * (MODE == 2 ? 2048 : 8192)),
            "l"(reinterpret_cast<uint64_t>(&map)), "r"(k0), "r"(static_cast<int>(gr * 16)),
            "r"(bar), "l"(pol)
            : "memory");
      }
      if (MODE == 4 && lane == 0) {
        asm volatile(
            "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes"
            ".L2::cache_hint [%0], [%1, {%2, %3, %4}], [%5], %6;\n" ::"r"(dst),
            "l"(reinterpret_cast<uint64_t>(&map)), "r"(0), "r"(static_cast<int>(gr * 16)),
            "r"(static_cast<int>(cb * UCH)), "r"(bar), "l"(pol)
            : "memory");
      }
    }
    return;
  }
  if (PDL) asm volatile("griddepcontrol.wait;\n" ::: "memory");
  for (int i = threadIdx.x; i < 3 * nkb * 8; i += C * 32) xs[i] = xp[i];
  asm volatile("bar.sync 1, %0;\n" ::"r"(C * 32));
  const int g = lane / 4, q = lane % 4;
  const bool tok = g == 0;  // M = 1: token column 0 only
  for (int i = warp; i < n; i += C) {
    int r = 0;
    const int s = slot_of(i, r);
    MbarWait(Smem(&full[s]), r & 1);
    const uint8_t* su = ring + s * kUnit;
    const int64_t u = u0 + i;
#pragma unroll 1
    for (int e = 0; e < UCH; ++e) {
      uint4 wa[8][2];
      const uint8_t* sw = su + e * 8192;
#pragma unroll
      for (int b = 0; b < 8; ++b) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int row = g + 8 * h;
          const int off = MODE == 2
                              ? (b / 2) * 2048 + row * 128 + ((((b % 2) * 4 + q) ^ (row % 8)) * 16)
                              : row * 512 + b * 64 + 16 * q;
          wa[b][h] = *reinterpret_cast<const uint4*>(sw + off);
        }
      }
      if (e == UCH - 1) {
        __syncwarp();
        if (lane == 0)
          asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(Smem(&empty[s]))
                       : "memory");
      }
      const int kb0 = static_cast<int>((u % nub) * UCH + e) * 8;
      float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int b = 0; b < 8; ++b) {
#pragma unroll
        for (int j = 0; j < 2; ++j) {
#pragma unroll
          for (int t = 2; t >= 0; --t) {
            const uint2 v = tok ? xs[((t * nkb + kb0 + b) * 4 + q) * 2 + j] : make_uint2(0u, 0u);
            Mma(acc, Word(wa[b][0], 2 * j), Word(wa[b][1], 2 * j), Word(wa[b][0], 2 * j + 1),
                Word(wa[b][1], 2 * j + 1), v.x, v.y);
          }
        }
      }
      float* o = out + (u * UCH + e) * 128;
      o[g * 8 + 2 * q] = acc[0];
      o[g * 8 + 2 * q + 1] = acc[1];
      o[(g + 8) * 8 + 2 * q] = acc[2];
      o[(g + 8) * 8 + 2 * q + 1] = acc[3];
    }
  }
}

// Plain read of the same bytes: every thread sums its uint4s (grid-stride), one store a block.
__global__ void PlainRead(const uint4* __restrict__ p, int64_t n, float* __restrict__ out) {
  uint32_t s = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const uint4 v = __ldcs(p + i);
    s ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (s == 0x12345678u) out[blockIdx.x] = 1.0f;
}

struct Shape {
  const char* name;
  int64_t N, K;
};

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 40;
  setvbuf(stdout, nullptr, _IOLBF, 0);
  int sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s, %d SMs\n", prop.name, sms);
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  // Copy bandwidth (read + write bytes), 1 GiB.
  double copy_gbs = 0;
  {
    const size_t b = size_t(1) << 30;
    void *a = nullptr, *c = nullptr;
    CK(cudaMalloc(&a, b));
    CK(cudaMalloc(&c, b));
    CK(cudaMemcpy(c, a, b, cudaMemcpyDeviceToDevice));
    CK(cudaEventRecord(e0));
    for (int i = 0; i < 10; ++i) CK(cudaMemcpyAsync(c, a, b, cudaMemcpyDeviceToDevice));
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    copy_gbs = 2.0 * b * 10 / (ms * 1e-3) / 1e9;
    CK(cudaFree(a));
    CK(cudaFree(c));
  }
  std::printf("copy %.0f GB/s\n", copy_gbs);
  const Shape shapes[] = {{"8B-o", 4096, 4096},
                          {"8B-qkv", 6144, 4096},
                          {"8B-gate-up", 28672, 4096},
                          {"8B-down", 4096, 14336},
                          {"1B-gate-up", 16384, 2048}};
  float* out = nullptr;
  CK(cudaMalloc(&out, size_t(64) << 20));
  PFN_cuTensorMapEncodeTiled_v12000 enc = nullptr;
  {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    CK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault,
                                        &q));
    enc = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }
  const char* only = std::getenv("RING_ONLY");
  for (const Shape& sh : shapes) {
    if (only != nullptr && std::string(only).find(sh.name) == std::string::npos) continue;
    const int64_t bytes = sh.N * sh.K * 2;
    const int copies = static_cast<int>(std::max<int64_t>(2, (int64_t{320} << 20) / bytes + 1));
    std::vector<uint8_t*> ws(copies);
    for (auto& p : ws) {
      CK(cudaMalloc(&p, bytes));
      CK(cudaMemset(p, 0x3c, bytes));
    }
    const int nkb = static_cast<int>(sh.K / 32);
    uint2* xp = nullptr;
    CK(cudaMalloc(&xp, size_t(3) * nkb * 8 * 8));
    CK(cudaMemset(xp, 0x3f, size_t(3) * nkb * 8 * 8));
    auto time = [&](auto&& launch) {
      for (int i = 0; i < 3; ++i) launch(i);
      CK(cudaGetLastError());
      CK(cudaEventRecord(e0));
      for (int i = 0; i < reps; ++i) launch(i);
      CK(cudaEventRecord(e1));
      CK(cudaEventSynchronize(e1));
      CK(cudaGetLastError());
      float ms = 0;
      CK(cudaEventElapsedTime(&ms, e0, e1));
      return double(ms) * 1e3 / reps;
    };
    const double us_plain = time([&](int i) {
      PlainRead<<<sms * 4, 512>>>(reinterpret_cast<const uint4*>(ws[i % copies]), bytes / 16, out);
    });
    std::printf("%-11s %6.1f MB plain  us=%7.2f of_copy=%.3f\n", sh.name, bytes / 1e6, us_plain,
                bytes / (us_plain * 1e-6) / 1e9 / copy_gbs);
    const size_t xbytes = ((size_t(3) * nkb * 64 + 127) / 128) * 128;
    // maps[mode][uch][copy]
    std::vector<CUtensorMap> maps(5 * 5 * copies);
    auto M = [&](int mode, int uch, int c) -> CUtensorMap& {
      return maps[(mode * 5 + uch) * copies + c];
    };
    const int nch = static_cast<int>(sh.K / 256);
    for (int c = 0; c < copies; ++c) {
      const cuuint64_t dim[2] = {static_cast<cuuint64_t>(sh.K), static_cast<cuuint64_t>(sh.N)};
      const cuuint64_t stride[1] = {static_cast<cuuint64_t>(sh.K * 2)};
      const cuuint32_t ones[3] = {1, 1, 1};
      const cuuint32_t box2[2] = {64, 16}, box3[2] = {256, 16};
      bool ok = enc(&M(2, 1, c), CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, ws[c], dim, stride, box2,
                    ones, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                    CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                    CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS &&
                enc(&M(3, 1, c), CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, ws[c], dim, stride, box3,
                    ones, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
                    CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                    CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
      for (int uch : {1, 2, 4}) {
        const cuuint64_t dim3[3] = {256, static_cast<cuuint64_t>(sh.N),
                                    static_cast<cuuint64_t>(nch)};
        const cuuint64_t stride3[2] = {static_cast<cuuint64_t>(sh.K * 2), 512};
        const cuuint32_t box4[3] = {256, 16, static_cast<cuuint32_t>(uch)};
        ok = ok && enc(&M(4, uch, c), CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, ws[c], dim3, stride3,
                       box4, ones, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
                       CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                       CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
      }
      if (!ok) {
        std::printf("tensor map encode failed\n");
        return 1;
      }
    }
    auto run = [&](auto kern, int C, int P, int D, int mode, int uch) {
      const int S = C * D;
      const size_t smem = 512 + xbytes + 1024 + size_t(S) * uch * 8192;
      if (smem > 227 * 1024 || S > 32 || nch % uch != 0) return;
      CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              static_cast<int>(smem)));
      const double us = time([&](int i) {
        kern<<<sms, (C + P) * 32, smem>>>(ws[i % copies], sh.N, sh.K, xp, out, D,
                                          M(mode, mode == 4 ? uch : 1, i % copies));
      });
      std::printf(
          "%-11s %6.1f MB ring mode=%d uch=%d C=%-2d P=%d D=%d smem=%3zu KB us=%7.2f "
          "of_copy=%.3f\n",
          sh.name, bytes / 1e6, mode, uch, C, P, D, smem / 1024, us,
          bytes / (us * 1e-6) / 1e9 / copy_gbs);
    };
    run(RingGemv<8, 1, 3, 1>, 8, 1, 1, 3, 1);
    run(RingGemv<8, 2, 3, 1>, 8, 2, 1, 3, 1);
    run(RingGemv<8, 4, 3, 1>, 8, 4, 1, 3, 1);
    run(RingGemv<8, 2, 2, 1>, 8, 2, 1, 2, 1);
    run(RingGemv<8, 4, 2, 1>, 8, 4, 1, 2, 1);
    run(RingGemv<8, 1, 1, 1>, 8, 1, 1, 1, 1);
    run(RingGemv<8, 1, 1, 2>, 8, 1, 1, 1, 2);
    run(RingGemv<4, 1, 1, 4>, 4, 1, 1, 1, 4);
    run(RingGemv<8, 1, 4, 1>, 8, 1, 1, 4, 1);
    run(RingGemv<8, 2, 4, 1>, 8, 2, 1, 4, 1);
    run(RingGemv<8, 1, 4, 2>, 8, 1, 1, 4, 2);
    run(RingGemv<8, 2, 4, 2>, 8, 2, 1, 4, 2);
    run(RingGemv<6, 2, 4, 2>, 6, 2, 1, 4, 2);
    run(RingGemv<4, 1, 4, 4>, 4, 1, 1, 4, 4);
    run(RingGemv<4, 2, 4, 4>, 4, 2, 1, 4, 4);
    run(RingGemv<12, 4, 4, 1>, 12, 4, 1, 4, 1);
    run(RingGemv<12, 4, 3, 1>, 12, 4, 1, 3, 1);
    for (auto p : ws) CK(cudaFree(p));
    CK(cudaFree(xp));
  }
  // A layer's chain: q/k/v, o, gate/up, down launched back to back (weights of 2 layers
  // alternating: 872 MB, past L2), without and with PDL (the producer streams before the wait).
  {
    const Shape ch[4] = {
        {"qkv", 6144, 4096}, {"o", 4096, 4096}, {"gate-up", 28672, 4096}, {"down", 4096, 14336}};
    std::vector<uint8_t*> lw(8);
    std::vector<CUtensorMap> lm(8);
    int64_t layer_bytes = 0;
    for (int l = 0; l < 2; ++l)
      for (int j = 0; j < 4; ++j) {
        const int64_t b = ch[j].N * ch[j].K * 2;
        if (l == 0) layer_bytes += b;
        CK(cudaMalloc(&lw[l * 4 + j], b));
        CK(cudaMemset(lw[l * 4 + j], 0x3c, b));
        const cuuint64_t dim[2] = {static_cast<cuuint64_t>(ch[j].K),
                                   static_cast<cuuint64_t>(ch[j].N)};
        const cuuint64_t stride[1] = {static_cast<cuuint64_t>(ch[j].K * 2)};
        const cuuint32_t ones[2] = {1, 1}, box[2] = {64, 16};
        if (enc(&lm[l * 4 + j], CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, lw[l * 4 + j], dim, stride,
                box, ones, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) != CUDA_SUCCESS)
          return 1;
      }
    uint2* xp = nullptr;
    CK(cudaMalloc(&xp, size_t(3) * (14336 / 32) * 64));
    CK(cudaMemset(xp, 0x3f, size_t(3) * (14336 / 32) * 64));
    auto chain = [&](auto kern, bool pdl, int D, const char* tag) {
      auto one = [&](int l, int j) {
        const int nkb = static_cast<int>(ch[j].K / 32);
        const size_t smem =
            512 + ((size_t(3) * nkb * 64 + 127) / 128) * 128 + 1024 + size_t(8) * D * 8192;
        CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(smem)));
        cudaLaunchConfig_t cfg = {};
        cfg.gridDim = dim3(sms);
        cfg.blockDim = dim3(10 * 32);
        cfg.dynamicSmemBytes = smem;
        cudaLaunchAttribute at[1];
        at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        at[0].val.programmaticStreamSerializationAllowed = pdl ? 1 : 0;
        cfg.attrs = at;
        cfg.numAttrs = 1;
        CK(cudaLaunchKernelEx(&cfg, kern, static_cast<const uint8_t*>(lw[l * 4 + j]), ch[j].N,
                              ch[j].K, static_cast<const uint2*>(xp), out, D, lm[l * 4 + j]));
      };
      for (int w = 0; w < 3; ++w)
        for (int j = 0; j < 4; ++j) one(w % 2, j);
      CK(cudaDeviceSynchronize());
      CK(cudaEventRecord(e0));
      const int layers = 32;
      for (int l = 0; l < layers; ++l)
        for (int j = 0; j < 4; ++j) one(l % 2, j);
      CK(cudaEventRecord(e1));
      CK(cudaEventSynchronize(e1));
      CK(cudaGetLastError());
      float ms = 0;
      CK(cudaEventElapsedTime(&ms, e0, e1));
      const double us = ms * 1e3 / layers;
      std::printf("chain %-12s D=%d pdl=%d us/layer=%7.2f of_copy=%.3f (bytes at copy %.2f us)\n",
                  tag, D, pdl ? 1 : 0, us, layer_bytes / (us * 1e-6) / 1e9 / copy_gbs,
                  layer_bytes / copy_gbs / 1e3);
    };
    chain(RingGemv<8, 2, 2, 1, true>, false, 1, "ring");
    chain(RingGemv<8, 2, 2, 1, true>, true, 1, "ring");
    chain(RingGemv<8, 2, 2, 1, true>, false, 1, "ring");
    chain(RingGemv<8, 2, 2, 1, true>, true, 1, "ring");
  }
  return 0;
}
