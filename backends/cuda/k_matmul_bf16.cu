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
// them in chunk order; the GEMM walks the chunks in order per tile. Neither order depends on M,
// on the tile a row lands in, or on the grid: a row's bits are the same at M = 1 and M = 2048.
// Eligibility (Bf16FastPathEligible) depends only on the weight, never on M, so a given weight
// always takes this order.
#include <algorithm>
#include <atomic>

#include "backends/cuda/dev_common.cuh"

namespace tessera::cuda {
namespace {

constexpr int kBlocksPerChunk = 8;  // k32 blocks in a canonical chunk
constexpr int64_t kMaxK = 98304;    // GEMV partials: 384 chunks x 512 B = 192 KiB of smem

__device__ __forceinline__ void Mma(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                    uint32_t a3, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t Word(const uint4& v, int i) {
  return i == 0 ? v.x : (i == 1 ? v.y : (i == 2 ? v.z : v.w));
}

// 8 floats -> T bf16 pieces, packed in pairs (word w holds elements 2w, 2w + 1; low half first).
template <int T>
__device__ __forceinline__ void SplitPack(const float (&x)[8], uint32_t (&o)[T][4]) {
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    float v0 = x[2 * w], v1 = x[2 * w + 1];
#pragma unroll
    for (int t = 0; t < T; ++t) {
      const __nv_bfloat16 h0 = __float2bfloat16_rn(v0), h1 = __float2bfloat16_rn(v1);
      o[t][w] = static_cast<uint32_t>(__bfloat16_as_ushort(h0)) |
                (static_cast<uint32_t>(__bfloat16_as_ushort(h1)) << 16);
      v0 = v0 - __bfloat162float(h0);  // exact: the remainder of a rounding
      v1 = v1 - __bfloat162float(h1);
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

// ---- GEMV: 16 weight rows a block, chunks spread over the block's warps ----

template <int T>
__global__ void __launch_bounds__(512) GemvBf16Kernel(MatmulParams p, int n_chunks) {
  extern __shared__ float part[];  // [n_chunks][16 rows][8 tokens]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
  const int g = lane / 4, q = lane % 4;
  const int64_t n0 = blockIdx.x * int64_t(16);
  const bool v0 = n0 + g < p.N, v1 = n0 + g + 8 < p.N;
  const uint8_t* w0 = p.w + (n0 + g) * p.w_row_bytes;
  const uint8_t* w1 = p.w + (n0 + g + 8) * p.w_row_bytes;
  const bool tok_ok = g < p.M;
  const float* xr = p.x + g * p.x_row;
  const int64_t nkb = (p.K + 31) / 32;
  for (int c = warp; c < n_chunks; c += nw) {
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    uint4 wa[kBlocksPerChunk][2];
#pragma unroll
    for (int b = 0; b < kBlocksPerChunk; ++b) {  // every load of the chunk in flight at once
      const int64_t k = (int64_t(c) * kBlocksPerChunk + b) * 32 + 8 * q;
      wa[b][0] = LoadW8(w0, k, p.K, v0);
      wa[b][1] = LoadW8(w1, k, p.K, v1);
    }
#pragma unroll
    for (int b = 0; b < kBlocksPerChunk; ++b) {
      const int64_t kb = int64_t(c) * kBlocksPerChunk + b;
      if (kb >= nkb) break;  // uniform across the warp
      float xv[8];
      LoadX8(xr, kb * 32 + 8 * q, p.K, tok_ok, xv);
      uint32_t bx[T][4];
      SplitPack<T>(xv, bx);
#pragma unroll
      for (int j = 0; j < 2; ++j) {
#pragma unroll
        for (int t = T - 1; t >= 0; --t) {
          Mma(acc, Word(wa[b][0], 2 * j), Word(wa[b][1], 2 * j), Word(wa[b][0], 2 * j + 1),
              Word(wa[b][1], 2 * j + 1), bx[t][2 * j], bx[t][2 * j + 1]);
        }
      }
    }
    float* pc = part + c * 128;
    pc[g * 8 + 2 * q] = acc[0];
    pc[g * 8 + 2 * q + 1] = acc[1];
    pc[(g + 8) * 8 + 2 * q] = acc[2];
    pc[(g + 8) * 8 + 2 * q + 1] = acc[3];
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < 128; idx += blockDim.x) {
    const int r = idx / 8, m = idx % 8;
    if (n0 + r >= p.N || m >= p.M) continue;
    float s = part[idx];
    for (int c = 1; c < n_chunks; ++c) s += part[c * 128 + idx];
    if (p.bias != nullptr) s += p.bias[n0 + r];
    p.out[m * p.out_row + (n0 + r) * p.out_col] = s;
  }
}

// ---- x -> bf16 pieces for the GEMM: planes[t][m][k] ----

template <int T>
__global__ void SplitKernel(MatmulParams p, uint16_t* planes) {
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

// ---- GEMM: 128 weight rows x 64 tokens a block, 8 warps of 32 x 32, 4-stage cp.async ----

constexpr int kBN = 128, kBM = 64, kStages = 4, kGemmThreads = 256;
constexpr int kAChunks = kBN * 4;  // 16-byte chunks of a stage's A tile (32 k's a row)
constexpr int kBChunks = kBM * 4;  // ... of one piece's B tile

template <int T>
constexpr int StageChunks() {
  return kAChunks + T * kBChunks;
}

__device__ __forceinline__ void CpAsync16(void* smem, const void* gmem, int bytes) {
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void CpAsyncCommit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
template <int N>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
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

template <int T>
__global__ void __launch_bounds__(kGemmThreads)
    GemmBf16Kernel(MatmulParams p, const uint16_t* planes) {
  extern __shared__ uint4 smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, q = lane % 4, wn = warp % 4, wm = warp / 4;
  const int64_t n0 = blockIdx.x * int64_t(kBN), m0 = blockIdx.y * int64_t(kBM);
  const int64_t nkb = (p.K + 31) / 32;
  float acc[2][4][4] = {}, tot[2][4][4] = {};
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < nkb) LoadStage<T>(smem + s * StageChunks<T>(), p, planes, n0, m0, s);
    CpAsyncCommit();  // empty groups keep the wait count uniform
  }
  for (int64_t kb = 0; kb < nkb; ++kb) {
    CpAsyncWait<kStages - 2>();
    __syncthreads();  // stage kb landed for all; stage kb - 1 is free to overwrite
    const int64_t pf = kb + kStages - 1;
    if (pf < nkb) LoadStage<T>(smem + (pf % kStages) * StageChunks<T>(), p, planes, n0, m0, pf);
    CpAsyncCommit();
    const uint4* st = smem + (kb % kStages) * StageChunks<T>();
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
    if (kb % kBlocksPerChunk == kBlocksPerChunk - 1 || kb == nkb - 1) {  // end of a chunk
      const bool first = kb < kBlocksPerChunk;
#pragma unroll
      for (int i = 0; i < 2; ++i) {
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            tot[i][jj][e] = first ? acc[i][jj][e] : tot[i][jj][e] + acc[i][jj][e];
            acc[i][jj][e] = 0.0f;
          }
        }
      }
    }
  }
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

// cudaFuncSetAttribute once per (kernel, device): cheap to re-check, not free to re-set.
template <class Kernel>
cudaError_t AllowSmem(Kernel kernel, int bytes, std::atomic<uint64_t>* done_mask) {
  if (bytes <= 48 * 1024) return cudaSuccess;
  int dev = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess) return e;
  const uint64_t bit = uint64_t{1} << (dev & 63);
  if (done_mask->load(std::memory_order_acquire) & bit) return cudaSuccess;
  e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024);
  if (e == cudaSuccess) done_mask->fetch_or(bit, std::memory_order_acq_rel);
  return e;
}

template <int T>
cudaError_t Gemv(const MatmulParams& p, cudaStream_t stream) {
  static std::atomic<uint64_t> smem_set{0};
  const int n_chunks = static_cast<int>((p.K + 255) / 256);
  const int smem = n_chunks * 128 * static_cast<int>(sizeof(float));
  cudaError_t e = AllowSmem(GemvBf16Kernel<T>, smem, &smem_set);
  if (e != cudaSuccess) return e;
  const int64_t blocks = (p.N + 15) / 16;
  // Fewer row blocks than ~2 waves of SMs: more warps per block keep enough loads in flight.
  const int warps = std::min(n_chunks, blocks < 264 ? 16 : 8);
  GemvBf16Kernel<T><<<static_cast<unsigned>(blocks), warps * 32, smem, stream>>>(p, n_chunks);
  return cudaGetLastError();
}

template <int T>
cudaError_t Gemm(const MatmulParams& p, uint16_t* planes, cudaStream_t stream) {
  static std::atomic<uint64_t> smem_set{0};
  const int smem = kStages * StageChunks<T>() * 16;
  cudaError_t e = AllowSmem(GemmBf16Kernel<T>, smem, &smem_set);
  if (e != cudaSuccess) return e;
  const int64_t groups = p.M * (p.K / 8);
  SplitKernel<T><<<GridFor(groups, 256), 256, 0, stream>>>(p, planes);
  if ((e = cudaGetLastError()) != cudaSuccess) return e;
  const int64_t gy = (p.M + kBM - 1) / kBM;
  if (gy > 65535) return cudaErrorInvalidConfiguration;
  const dim3 grid(static_cast<unsigned>((p.N + kBN - 1) / kBN), static_cast<unsigned>(gy));
  GemmBf16Kernel<T><<<grid, kGemmThreads, smem, stream>>>(p, planes);
  return cudaGetLastError();
}

__global__ void ProbeKernel() {}

}  // namespace

bool Bf16FastPathEligible(const MatmulParams& p) {
  return p.w_dtype == TSR_DTYPE_BF16 && p.K > 0 && p.K % 8 == 0 && p.K <= kMaxK &&
         p.w_row_bytes % 16 == 0 && reinterpret_cast<uintptr_t>(p.w) % 16 == 0;
}

uint64_t SplitPlaneBytes(const MatmulParams& p, int terms) {
  return static_cast<uint64_t>(terms) * p.M * p.K * 2;
}

cudaError_t LaunchGemvBf16(const MatmulParams& p, int terms, cudaStream_t stream) {
  if (p.M == 0 || p.N == 0) return cudaSuccess;
  return terms == 1 ? Gemv<1>(p, stream) : Gemv<3>(p, stream);
}

cudaError_t LaunchGemmBf16(const MatmulParams& p, int terms, uint16_t* planes,
                           cudaStream_t stream) {
  if (p.M == 0 || p.N == 0) return cudaSuccess;
  return terms == 1 ? Gemm<1>(p, planes, stream) : Gemm<3>(p, planes, stream);
}

cudaError_t ProbeKernelImage() {
  cudaFuncAttributes attr;
  return cudaFuncGetAttributes(&attr, ProbeKernel);
}

}  // namespace tessera::cuda
