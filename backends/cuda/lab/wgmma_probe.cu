// wgmma vs mma.sync rounding probe (target cuda_wgmma_probe, sm_90a only; lab, not a test).
//
// The canonical matmul order (k_matmul_bf16.cu) is a chain of mma.sync m16n8k16 steps per
// output element. A wgmma (sm_90a) GEMM may replace them only if one wgmma m64nNk16 step gives
// the same f32 bits as the mma.sync step with the same k's in the same slots and the same
// carry-in, for every N and every position of the element in the tile. This probe runs chains of
// 6 k16 steps (a k32 block of the exact mode: 2 steps x 3 pieces) both ways on the same data:
//   - mma.sync m16n8k16: 4 warps, warp w owns rows 16w .. 16w + 15, n tiles of 8 in turn.
//   - wgmma m64nNk16, N = 8, 64, 128, 256, A from registers (RS: the m16n8k16 A fragment per
//     warp) or from shared memory (SS); B (and A for SS) K-major without swizzle: core matrices
//     of 8 rows x 16 bytes, [row / 8][k / 8][row % 8][k % 8], so the K-direction core stride is
//     128 bytes and the row-direction one 256. Which descriptor field (LBO / SBO) takes which is
//     settled by the exact check below (both are tried).
// Phases (each prints one line a variant):
//   1. exact: small integers, the CPU's exact result; every variant must match it (validates
//      fragment layouts, descriptors and fences before any rounding question is asked).
//   2. hard: magnitudes over 2^-20 .. 2^20 with cancellations (even trials) and plain [-1, 1)
//      data (odd trials); differ = elements whose bits differ from the mma.sync chain.
//   3. slots: the mma.sync chain (and wgmma N = 64 RS) with the k's permuted inside the k16 slots
//      (the same permutation on A and B): does the sum depend on which slot a product sits in?
//   4. roles: the mma.sync chain with A and B exchanged (A' = B's first 64 rows, B' = A, C' = C
//      transposed): is out'[n][m] out[m][n] bit for bit? (Whether a GEMM may put the tokens on
//      the M side and the weight rows on the N side and keep the canonical bits.)
//   5. rate: the tensor pipe's rate per SM for the decode-batch tile shapes (no memory traffic:
//      fixed operands), 2 warpgroups a CTA, one CTA an SM, chunks of 16 k16 steps x 3 pieces
//      with the canonical chunk ends (wait for all, totals += sums, sums from +0): N = 64 RS
//      (the weights on M, 64 tokens on N: today's x64 tiles, MI = 1 or 2 row blocks a
//      warpgroup) against N = 128 / 256 (the tokens on M, the weight rows on N).
//
//   cuda_wgmma_probe [trials]
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "backends/cuda/wgmma_ops.cuh"

namespace {

using tessera::cuda::FenceProxyAsync;
using tessera::cuda::WgmmaCommit;
using tessera::cuda::WgmmaDesc;
using tessera::cuda::WgmmaFence;
using tessera::cuda::WgmmaRS;
using tessera::cuda::WgmmaSS;
using tessera::cuda::WgmmaWait;

constexpr int kSteps = 6;  // chained k16 steps (a k32 block of the exact mode)
constexpr int kN = 256;    // widest N; narrower variants use the first N columns

// Inputs of one trial (bf16 bits): A [step][64 rows][16 k], B [step][256 n][16 k], C [64][256].
struct Trial {
  uint16_t a[kSteps][64][16];
  uint16_t b[kSteps][kN][16];
  float c[64][kN];
};

struct Perm {
  int s[16];  // slot -> k
};

__device__ __forceinline__ uint32_t Pack(uint16_t lo, uint16_t hi) {
  return static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
}

// A fragment of m16n8k16 (row-major A) for the warp's 16 rows: the PTX ISA's layout.
__device__ __forceinline__ void AFrag(const uint16_t (*a)[16], int row0, int lane, const Perm& p,
                                      uint32_t (&r)[4]) {
  const int g = lane / 4, q = lane % 4;
  const uint16_t* x0 = a[row0 + g];
  const uint16_t* x1 = a[row0 + g + 8];
  r[0] = Pack(x0[p.s[2 * q]], x0[p.s[2 * q + 1]]);
  r[1] = Pack(x1[p.s[2 * q]], x1[p.s[2 * q + 1]]);
  r[2] = Pack(x0[p.s[2 * q + 8]], x0[p.s[2 * q + 9]]);
  r[3] = Pack(x1[p.s[2 * q + 8]], x1[p.s[2 * q + 9]]);
}

// out[trial][64][256] by the mma.sync chain. 128 threads a block, a block a trial.
__global__ void __launch_bounds__(128) MmaChain(const Trial* trials, Perm pm, float* out) {
  const Trial& t = trials[blockIdx.x];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, q = lane % 4;
  const int r0 = warp * 16 + g, r1 = r0 + 8;
  float* o = out + blockIdx.x * (64 * kN);
  for (int nt = 0; nt < kN / 8; ++nt) {
    const int c0 = nt * 8 + 2 * q;
    float m[4] = {t.c[r0][c0], t.c[r0][c0 + 1], t.c[r1][c0], t.c[r1][c0 + 1]};
    for (int s = 0; s < kSteps; ++s) {
      uint32_t a[4];
      AFrag(t.a[s], warp * 16, lane, pm, a);
      const uint16_t* bn = t.b[s][nt * 8 + g];
      const uint32_t b0 = Pack(bn[pm.s[2 * q]], bn[pm.s[2 * q + 1]]);
      const uint32_t b1 = Pack(bn[pm.s[2 * q + 8]], bn[pm.s[2 * q + 9]]);
      asm volatile(
          "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
          "{%8,%9}, {%0,%1,%2,%3};\n"
          : "+f"(m[0]), "+f"(m[1]), "+f"(m[2]), "+f"(m[3])
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    o[r0 * kN + c0] = m[0], o[r0 * kN + c0 + 1] = m[1];
    o[r1 * kN + c0] = m[2], o[r1 * kN + c0 + 1] = m[3];
  }
}

// out[trial][64][0 .. N) by the wgmma chain. swap: LBO = row-direction stride (else K-direction).
template <int N, bool SS>
__global__ void __launch_bounds__(128) WgChain(const Trial* trials, Perm pm, int swap, float* out) {
  const Trial& t = trials[blockIdx.x];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, q = lane % 4;
  const int r0 = warp * 16 + g, r1 = r0 + 8;
  __shared__ __align__(1024) uint16_t bs[N / 8][2][8][8];  // [n / 8][slot / 8][n % 8][slot % 8]
  __shared__ __align__(1024) uint16_t as[8][2][8][8];      // [m / 8][slot / 8][m % 8][slot % 8]
  const uint32_t lk = 128, lr = 256;
  const uint32_t lbo = swap ? lr : lk, sbo = swap ? lk : lr;
  float d[N / 2];
#pragma unroll
  for (int j = 0; j < N / 8; ++j) {
    const int c0 = 8 * j + 2 * q;
    d[4 * j] = t.c[r0][c0], d[4 * j + 1] = t.c[r0][c0 + 1];
    d[4 * j + 2] = t.c[r1][c0], d[4 * j + 3] = t.c[r1][c0 + 1];
  }
  for (int s = 0; s < kSteps; ++s) {
    __syncthreads();  // the previous step's wgmma (waited for by every thread) read the tiles
    for (int i = threadIdx.x; i < N * 16; i += blockDim.x) {
      const int n = i / 16, sl = i % 16;
      bs[n / 8][sl / 8][n % 8][sl % 8] = t.b[s][n][pm.s[sl]];
    }
    if (SS) {
      for (int i = threadIdx.x; i < 64 * 16; i += blockDim.x) {
        const int m = i / 16, sl = i % 16;
        as[m / 8][sl / 8][m % 8][sl % 8] = t.a[s][m][pm.s[sl]];
      }
    }
    FenceProxyAsync();  // generic stores -> visible to the async proxy (wgmma operand reads)
    __syncthreads();
    uint32_t a[4];
    if (!SS) AFrag(t.a[s], warp * 16, lane, pm, a);
    WgmmaFence();
    if (SS) {
      WgmmaSS<N>(d, WgmmaDesc(&as[0][0][0][0], lbo, sbo), WgmmaDesc(&bs[0][0][0][0], lbo, sbo));
    } else {
      WgmmaRS<N>(d, a[0], a[1], a[2], a[3], WgmmaDesc(&bs[0][0][0][0], lbo, sbo));
    }
    WgmmaCommit();
    WgmmaWait<0>();
  }
  float* o = out + blockIdx.x * (64 * kN);
#pragma unroll
  for (int j = 0; j < N / 8; ++j) {
    const int c0 = 8 * j + 2 * q;
    o[r0 * kN + c0] = d[4 * j], o[r0 * kN + c0 + 1] = d[4 * j + 1];
    o[r1 * kN + c0] = d[4 * j + 2], o[r1 * kN + c0 + 1] = d[4 * j + 3];
  }
}

uint16_t Bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

float FromBf16(uint16_t h) {
  const uint32_t x = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

void Check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(e));
    std::exit(2);
  }
}

struct Dev {
  Trial* t = nullptr;
  float* o = nullptr;
  int trials = 0;
};

std::vector<float> RunMma(const Dev& d, const Perm& pm) {
  Check(cudaMemset(d.o, 0xff, sizeof(float) * 64 * kN * d.trials), "memset");
  MmaChain<<<d.trials, 128>>>(d.t, pm, d.o);
  Check(cudaGetLastError(), "launch mma");
  Check(cudaDeviceSynchronize(), "run mma");
  std::vector<float> h(static_cast<size_t>(64) * kN * d.trials);
  Check(cudaMemcpy(h.data(), d.o, h.size() * 4, cudaMemcpyDeviceToHost), "download");
  return h;
}

template <int N, bool SS>
std::vector<float> RunWg(const Dev& d, const Perm& pm, int swap) {
  Check(cudaMemset(d.o, 0xff, sizeof(float) * 64 * kN * d.trials), "memset");
  WgChain<N, SS><<<d.trials, 128>>>(d.t, pm, swap, d.o);
  Check(cudaGetLastError(), "launch wgmma");
  Check(cudaDeviceSynchronize(), "run wgmma");
  std::vector<float> h(static_cast<size_t>(64) * kN * d.trials);
  Check(cudaMemcpy(h.data(), d.o, h.size() * 4, cudaMemcpyDeviceToHost), "download");
  return h;
}

std::vector<float> RunWgN(const Dev& d, int n, bool ss, const Perm& pm, int swap) {
  switch (n * 2 + (ss ? 1 : 0)) {
    case 16: return RunWg<8, false>(d, pm, swap);
    case 17: return RunWg<8, true>(d, pm, swap);
    case 128: return RunWg<64, false>(d, pm, swap);
    case 129: return RunWg<64, true>(d, pm, swap);
    case 256: return RunWg<128, false>(d, pm, swap);
    case 257: return RunWg<128, true>(d, pm, swap);
    case 512: return RunWg<256, false>(d, pm, swap);
    default: return RunWg<256, true>(d, pm, swap);
  }
}

// Elements (first n columns) whose bits differ; prints the first few.
long Compare(const std::vector<float>& ref, const std::vector<float>& got, int n, int trials,
             const char* label, long long* max_ulp) {
  long differ = 0;
  *max_ulp = 0;
  for (int tr = 0; tr < trials; ++tr) {
    for (int r = 0; r < 64; ++r) {
      for (int c = 0; c < n; ++c) {
        const size_t i = (static_cast<size_t>(tr) * 64 + r) * kN + c;
        int32_t a, b;
        std::memcpy(&a, &ref[i], 4);
        std::memcpy(&b, &got[i], 4);
        if (a == b) continue;
        ++differ;
        const long long dd = std::llabs(static_cast<long long>(a) - b);
        if (dd > *max_ulp) *max_ulp = dd;
        if (differ <= 3) {
          std::printf("  %s: trial %d row %d col %d: ref %.9g (0x%08x) got %.9g (0x%08x)\n", label,
                      tr, r, c, ref[i], static_cast<unsigned>(a), got[i], static_cast<unsigned>(b));
        }
      }
    }
  }
  return differ;
}

void Fill(std::vector<Trial>& h, bool exact) {
  std::mt19937 rng(2026);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> small(-3, 3);
  for (size_t ti = 0; ti < h.size(); ++ti) {
    Trial& t = h[ti];
    const int e = ti % 2 == 0 ? 20 : 1;
    std::uniform_int_distribution<int> ex(-e, e);
    const auto val = [&] {
      return exact ? Bf16(static_cast<float>(small(rng))) : Bf16(std::ldexp(u(rng), ex(rng)));
    };
    for (int s = 0; s < kSteps; ++s) {
      for (int r = 0; r < 64; ++r)
        for (int k = 0; k < 16; ++k) t.a[s][r][k] = val();
      for (int n = 0; n < kN; ++n) {
        for (int k = 0; k < 16; ++k) {
          // Every 4th element repeats the one before negated (cancellation) on hard data.
          t.b[s][n][k] =
              !exact && k % 4 == 3 ? static_cast<uint16_t>(t.b[s][n][k - 1] ^ 0x8000u) : val();
        }
      }
    }
    for (int r = 0; r < 64; ++r)
      for (int n = 0; n < kN; ++n)
        t.c[r][n] = exact ? static_cast<float>(small(rng) * 7) : std::ldexp(u(rng), ex(rng));
  }
}

// The exact result of small-integer data (every partial sum is an integer far below 2^24).
std::vector<float> CpuExact(const std::vector<Trial>& h) {
  std::vector<float> o(h.size() * 64 * kN);
  for (size_t tr = 0; tr < h.size(); ++tr) {
    const Trial& t = h[tr];
    for (int r = 0; r < 64; ++r) {
      for (int n = 0; n < kN; ++n) {
        double s = t.c[r][n];
        for (int st = 0; st < kSteps; ++st)
          for (int k = 0; k < 16; ++k)
            s += double(FromBf16(t.a[st][r][k])) * FromBf16(t.b[st][n][k]);
        o[(tr * 64 + r) * kN + n] = static_cast<float>(s);
      }
    }
  }
  return o;
}

// Phase 4: A and B exchanged on the host (see the header); out'[tr][n][m] vs out[tr][m][n].
void SwapRoles(const std::vector<Trial>& h, std::vector<Trial>& s) {
  s.assign(h.size(), Trial{});
  for (size_t tr = 0; tr < h.size(); ++tr) {
    Trial& o = s[tr];
    std::memset(&o, 0, sizeof(Trial));
    for (int st = 0; st < kSteps; ++st) {
      for (int r = 0; r < 64; ++r)
        for (int k = 0; k < 16; ++k)
          o.a[st][r][k] = h[tr].b[st][r][k], o.b[st][r][k] = h[tr].a[st][r][k];
    }
    for (int r = 0; r < 64; ++r)
      for (int n = 0; n < 64; ++n) o.c[n][r] = h[tr].c[r][n];
  }
}

long CompareT(const std::vector<float>& ref, const std::vector<float>& got, int trials) {
  long differ = 0;
  for (int tr = 0; tr < trials; ++tr) {
    for (int m = 0; m < 64; ++m) {
      for (int n = 0; n < 64; ++n) {
        int32_t a, b;
        std::memcpy(&a, &ref[(static_cast<size_t>(tr) * 64 + m) * kN + n], 4);
        std::memcpy(&b, &got[(static_cast<size_t>(tr) * 64 + n) * kN + m], 4);
        differ += a != b;
      }
    }
  }
  return differ;
}

// Phase 5: MI row blocks of 64 a warpgroup, N columns, 3 pieces a k16 step, chunks of 16 steps
// (4 stages of 4 steps, one commit group a stage, the previous group waited for), canonical
// chunk ends when TOT. Operands fixed in shared memory (SS) or registers + shared memory (RS).
template <int N, bool SS, int MI, bool TOT>
__global__ void __launch_bounds__(256, 1) RateKernel(int chunks, float* sink) {
  __shared__ __align__(1024) uint16_t bs[3][N / 8][2][8][8];
  __shared__ __align__(1024) uint16_t as[2][MI][3][8][2][8][8];
  const int wg = threadIdx.x / 128;
  for (int i = threadIdx.x; i < 3 * N * 16; i += blockDim.x)
    (&bs[0][0][0][0][0])[i] = static_cast<uint16_t>(0x3c00u + (i * 37u) % 255u);
  for (int i = threadIdx.x; i < 2 * MI * 3 * 64 * 16; i += blockDim.x)
    (&as[0][0][0][0][0][0][0])[i] = static_cast<uint16_t>(0x3c00u + (i * 53u) % 255u);
  FenceProxyAsync();
  __syncthreads();
  const uint32_t lbo = 128, sbo = 256;
  float d[MI][N / 2], tot[MI][TOT ? N / 2 : 1];
#pragma unroll
  for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
    for (int j = 0; j < N / 2; ++j) d[mi][j] = 0.0f;
#pragma unroll
    for (int j = 0; j < (TOT ? N / 2 : 1); ++j) tot[mi][j] = 0.0f;
  }
  uint32_t a[MI][4];
#pragma unroll
  for (int mi = 0; mi < MI; ++mi)
#pragma unroll
    for (int e = 0; e < 4; ++e) a[mi][e] = 0x3c003c00u + 0x10001u * (threadIdx.x % 7 + mi + e);
  for (int c = 0; c < chunks; ++c) {
#pragma unroll 1
    for (int stage = 0; stage < 4; ++stage) {
      WgmmaFence();
#pragma unroll
      for (int step = 0; step < 4; ++step) {
#pragma unroll
        for (int piece = 0; piece < 3; ++piece) {
#pragma unroll
          for (int mi = 0; mi < MI; ++mi) {
            const uint64_t db = WgmmaDesc(&bs[piece][0][0][0][0], lbo, sbo);
            if (SS) {
              WgmmaSS<N>(d[mi], WgmmaDesc(&as[wg][mi][piece][0][0][0][0], lbo, sbo), db);
            } else {
              WgmmaRS<N>(d[mi], a[mi][0], a[mi][1], a[mi][2], a[mi][3], db);
            }
          }
        }
      }
      WgmmaCommit();
      WgmmaWait<1>();
    }
    WgmmaWait<0>();  // the chunk end's drain (no-TOT variants: the drain alone)
    if (TOT) {
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
        for (int j = 0; j < N / 2; ++j) {
          if (TOT) tot[mi][j < (TOT ? N / 2 : 1) ? j : 0] += d[mi][j];
          d[mi][j] = 0.0f;
        }
      }
    }
  }
  WgmmaWait<0>();
  float s = 0.0f;
#pragma unroll
  for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
    for (int j = 0; j < N / 2; ++j)
      s += d[mi][j] + (TOT ? tot[mi][j < (TOT ? N / 2 : 1) ? j : 0] : 0.0f);
  }
  sink[blockIdx.x * blockDim.x + threadIdx.x] = s;
}

template <int N, bool SS, int MI, bool TOT>
void Rate(const char* label, int sms, float* sink) {
  const int chunks = 400;
  cudaEvent_t e0, e1;
  Check(cudaEventCreate(&e0), "event");
  Check(cudaEventCreate(&e1), "event");
  RateKernel<N, SS, MI, TOT><<<sms, 256>>>(4, sink);  // warm-up
  Check(cudaGetLastError(), "launch rate");
  float best = 1e30f;
  for (int r = 0; r < 5; ++r) {
    Check(cudaEventRecord(e0), "record");
    RateKernel<N, SS, MI, TOT><<<sms, 256>>>(chunks, sink);
    Check(cudaEventRecord(e1), "record");
    Check(cudaEventSynchronize(e1), "sync");
    float ms = 0;
    Check(cudaEventElapsedTime(&ms, e0, e1), "elapsed");
    best = std::min(best, ms);
  }
  // FMAs: per warpgroup and chunk 16 steps x 3 pieces x MI x 64 x N x 16.
  const double flop = 2.0 * sms * 2 * chunks * 16.0 * 3 * MI * 64 * N * 16;
  std::printf("rate %-44s N=%3d %s MI=%d totals=%d: %7.1f TFLOP/s (%.3f ms, %d SMs)\n", label, N,
              SS ? "SS" : "RS", MI, TOT ? 1 : 0, flop / (best * 1e-3) / 1e12, best, sms);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
}
}  // namespace

int main(int argc, char** argv) {
  const int trials = argc > 1 ? std::atoi(argv[1]) : 512;
  std::vector<Trial> h(trials);
  Dev d;
  d.trials = trials;
  Check(cudaMalloc(&d.t, sizeof(Trial) * trials), "malloc");
  Check(cudaMalloc(&d.o, sizeof(float) * 64 * kN * trials), "malloc");
  Perm id;
  for (int i = 0; i < 16; ++i) id.s[i] = i;
  const int ns[] = {8, 64, 128, 256};
  long long mu = 0;
  int failures = 0;

  // 1. Exact data: which descriptor convention addresses the tiles right?
  Fill(h, true);
  Check(cudaMemcpy(d.t, h.data(), sizeof(Trial) * trials, cudaMemcpyHostToDevice), "upload");
  const std::vector<float> ex = CpuExact(h);
  long bad = Compare(ex, RunMma(d, id), kN, trials, "exact mma", &mu);
  std::printf("exact mma.sync bad=%ld\n", bad);
  failures += bad != 0;
  int swap_ok[2] = {1, 1};
  // swap = 1 only when swap = 0 fails: a wrong convention can fault (reads past the tile).
  for (int swap = 0; swap < 2 && !(swap == 1 && swap_ok[0]); ++swap) {
    for (int n : ns) {
      for (int ss = 0; ss < 2; ++ss) {
        bad = Compare(ex, RunWgN(d, n, ss, id, swap), n, trials, "exact wgmma", &mu);
        std::printf("exact wgmma N=%d %s swap=%d bad=%ld\n", n, ss ? "SS" : "RS", swap, bad);
        if (bad != 0) swap_ok[swap] = 0;
      }
    }
  }
  const int swap = swap_ok[0] ? 0 : (swap_ok[1] ? 1 : -1);
  std::printf("descriptor convention: %s\n",
              swap == 0 ? "LBO = K-direction core stride, SBO = row-direction (swap=0)"
                        : (swap == 1 ? "LBO = row-direction, SBO = K-direction (swap=1)"
                                     : "NEITHER passes the exact check"));
  if (swap < 0) return 2;

  // 2. Hard data: wgmma vs the mma.sync chain.
  Fill(h, false);
  Check(cudaMemcpy(d.t, h.data(), sizeof(Trial) * trials, cudaMemcpyHostToDevice), "upload");
  const std::vector<float> ref = RunMma(d, id);
  long total = 0;
  for (int n : ns) {
    for (int ss = 0; ss < 2; ++ss) {
      const long df = Compare(ref, RunWgN(d, n, ss, id, swap), n, trials, "hard", &mu);
      std::printf("hard wgmma N=%d %s elements=%ld differ=%ld max_ulp=%lld\n", n, ss ? "SS" : "RS",
                  static_cast<long>(trials) * 64 * n, df, mu);
      total += df;
    }
  }

  // 3. Slot permutations (same permutation on A and B): does a product's slot matter?
  struct Named {
    const char* name;
    Perm p;
  } perms[4];
  perms[0].name = "halves swapped (slots 0-7 <-> 8-15)";
  perms[1].name = "reversed inside each half";
  perms[2].name = "pairs rotated (slot pair q -> q + 1 mod 4, per half)";
  perms[3].name = "random over all 16 slots";
  std::mt19937 rng(7);
  for (int i = 0; i < 16; ++i) {
    perms[0].p.s[i] = (i + 8) % 16;
    perms[1].p.s[i] = (i / 8) * 8 + 7 - i % 8;
    perms[2].p.s[i] = (i / 8) * 8 + (i % 8 + 2) % 8;
    perms[3].p.s[i] = i;
  }
  for (int i = 15; i > 0; --i) std::swap(perms[3].p.s[i], perms[3].p.s[rng() % (i + 1)]);
  for (const Named& pn : perms) {
    const long dm = Compare(ref, RunMma(d, pn.p), kN, trials, "perm mma", &mu);
    std::printf("slots mma.sync %s: differ=%ld max_ulp=%lld\n", pn.name, dm, mu);
    const long dw = Compare(ref, RunWgN(d, 64, false, pn.p, swap), 64, trials, "perm wgmma", &mu);
    std::printf("slots wgmma N=64 RS %s: differ=%ld max_ulp=%lld\n", pn.name, dw, mu);
  }
  // 4. Roles exchanged (mma.sync chain on the host-swapped trials).
  {
    std::vector<Trial> sw;
    SwapRoles(h, sw);
    Check(cudaMemcpy(d.t, sw.data(), sizeof(Trial) * trials, cudaMemcpyHostToDevice), "upload");
    const long dr = CompareT(ref, RunMma(d, id), trials);
    std::printf("roles mma.sync A<->B: elements=%ld differ=%ld\n",
                static_cast<long>(trials) * 64 * 64, dr);
    total += dr;
  }
  // 5. Rates.
  {
    int dev = 0, sms = 0;
    Check(cudaGetDevice(&dev), "device");
    Check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "sms");
    float* sink = nullptr;
    Check(cudaMalloc(&sink, sizeof(float) * sms * 256), "malloc sink");
    Rate<64, false, 1, true>("weights on M, x64 tile (today)", sms, sink);
    Rate<64, false, 2, true>("weights on M, 256-row wide tile (today)", sms, sink);
    Rate<64, false, 2, false>("weights on M, wide, no chunk ends", sms, sink);
    Rate<64, true, 1, true>("weights on M, A from smem", sms, sink);
    Rate<128, true, 1, true>("tokens on M, 128 rows a warpgroup", sms, sink);
    Rate<128, false, 1, true>("tokens on M (A regs), 128 rows a warpgroup", sms, sink);
    Rate<128, true, 1, false>("tokens on M, 128 rows, no chunk ends", sms, sink);
    Rate<256, true, 1, false>("tokens on M, 256 rows, no chunk ends", sms, sink);
    Rate<256, false, 1, false>("tokens on M (A regs), 256 rows, no chunk ends", sms, sink);
    cudaFree(sink);
  }
  std::printf("wgmma_probe trials=%d total_differ=%ld exact_failures=%d\n", trials, total,
              failures);
  cudaFree(d.o);
  cudaFree(d.t);
  return total == 0 && failures == 0 ? 0 : 1;
}
