// wgmma vs mma.sync rounding probe (target cuda_wgmma_probe, sm_90a only; lab, not a test).
//
// The canonical matmul order (k_matmul_bf16.cu) is a chain of mma.sync m16n8k16 steps per
// output element. A wgmma (sm_90a) GEMM may replace them only if one wgmma k16 step gives the
// same f32 bits as the mma.sync step with the same k's in the same slots and the same carry-in.
// This probe runs both on the same random data, 6 chained steps like the exact mode's k32 block
// (2 steps x 3 pieces), and counts differing elements:
//   - mma.sync m16n8k16: 4 warps, warp w owns rows 16w .. 16w + 15 (A fragments from registers).
//   - wgmma m64n8k16 with A from registers (the same per-warp fragment layout) and B from shared
//     memory, K-major without swizzle: core matrices of 8 n-rows x 16 bytes, the k 0..7 one at
//     byte 0 and the k 8..15 one at byte 128 (both descriptor strides 128: N = 8 has a single
//     core matrix along N, so either reading of LBO / SBO addresses the same bytes).
// Data: wide exponent spread and cancellations (the cases where alignment/truncation inside the
// tensor core shows). Output: "wgmma_probe trials=... elements=... differ=... max_ulp=...";
// differ = 0 means the two paths round identically on this data (necessary, not a proof).
//
//   cuda_wgmma_probe [trials]
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

namespace {

constexpr int kSteps = 6;  // chained k16 steps (a k32 block of the exact mode)

// Inputs of one trial: A [kSteps][64 rows][16 k], B [kSteps][8 n][16 k] (bf16 bits), C [64][8].
struct Trial {
  uint16_t a[kSteps][64][16];
  uint16_t b[kSteps][8][16];
  float c[64][8];
};

__device__ __forceinline__ uint32_t Pack(uint16_t lo, uint16_t hi) {
  return static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
}

// A fragment of m16n8k16 (row-major A) for the warp's 16 rows: the PTX ISA's layout.
__device__ __forceinline__ void AFrag(const uint16_t (*a)[16], int row0, int lane,
                                      uint32_t (&r)[4]) {
  const int g = lane / 4, q = lane % 4;
  r[0] = Pack(a[row0 + g][2 * q], a[row0 + g][2 * q + 1]);
  r[1] = Pack(a[row0 + g + 8][2 * q], a[row0 + g + 8][2 * q + 1]);
  r[2] = Pack(a[row0 + g][2 * q + 8], a[row0 + g][2 * q + 9]);
  r[3] = Pack(a[row0 + g + 8][2 * q + 8], a[row0 + g + 8][2 * q + 9]);
}

// out[64][8] per trial, by mma.sync (out_mma) and by wgmma (out_wg). 128 threads a block.
__global__ void __launch_bounds__(128) Probe(const Trial* trials, float* out_mma, float* out_wg) {
  const Trial& t = trials[blockIdx.x];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, q = lane % 4;
  const int r0 = warp * 16 + g, r1 = r0 + 8, c0 = 2 * q;
  __shared__ __align__(128) uint16_t bs[kSteps][2][8][8];  // [step][k half][n][k % 8]
  for (int i = threadIdx.x; i < kSteps * 8 * 16; i += blockDim.x) {
    const int s = i / 128, n = (i / 16) % 8, k = i % 16;
    bs[s][k / 8][n][k % 8] = t.b[s][n][k];
  }
  // wgmma reads shared memory through the async proxy: order the generic stores before it.
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();
  // mma.sync chain.
  float m[4] = {t.c[r0][c0], t.c[r0][c0 + 1], t.c[r1][c0], t.c[r1][c0 + 1]};
  for (int s = 0; s < kSteps; ++s) {
    uint32_t a[4];
    AFrag(t.a[s], warp * 16, lane, a);
    const uint32_t b0 = Pack(t.b[s][g][2 * q], t.b[s][g][2 * q + 1]);
    const uint32_t b1 = Pack(t.b[s][g][2 * q + 8], t.b[s][g][2 * q + 9]);
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(m[0]), "+f"(m[1]), "+f"(m[2]), "+f"(m[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  // wgmma chain (the warpgroup = the block's 4 warps).
  float d[4] = {t.c[r0][c0], t.c[r0][c0 + 1], t.c[r1][c0], t.c[r1][c0 + 1]};
  for (int s = 0; s < kSteps; ++s) {
    uint32_t a[4];
    AFrag(t.a[s], warp * 16, lane, a);
    const uint64_t addr = static_cast<uint64_t>(__cvta_generic_to_shared(&bs[s][0][0][0]));
    const uint64_t desc = ((addr & 0x3ffff) >> 4) | (uint64_t{128 >> 4} << 16) |
                          (uint64_t{128 >> 4} << 32);  // no swizzle, base offset 0
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n8k16.f32.bf16.bf16 {%0,%1,%2,%3}, {%4,%5,%6,%7}, %8, "
        "p, 1, 1, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc));
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
  }
  float* om = out_mma + blockIdx.x * 512;
  float* ow = out_wg + blockIdx.x * 512;
  om[r0 * 8 + c0] = m[0], om[r0 * 8 + c0 + 1] = m[1], om[r1 * 8 + c0] = m[2];
  om[r1 * 8 + c0 + 1] = m[3];
  ow[r0 * 8 + c0] = d[0], ow[r0 * 8 + c0 + 1] = d[1], ow[r1 * 8 + c0] = d[2];
  ow[r1 * 8 + c0 + 1] = d[3];
}

uint16_t Bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

void Check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(e));
    std::exit(2);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int trials = argc > 1 ? std::atoi(argv[1]) : 4096;
  std::mt19937 rng(2026);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> ex(-20, 20);
  std::vector<Trial> h(trials);
  for (Trial& t : h) {
    // Magnitudes spread over 2^-20 .. 2^20 so products cross many alignments; every 4th
    // element repeats an earlier one negated (cancellation).
    for (int s = 0; s < kSteps; ++s) {
      for (int r = 0; r < 64; ++r)
        for (int k = 0; k < 16; ++k) t.a[s][r][k] = Bf16(std::ldexp(u(rng), ex(rng)));
      for (int n = 0; n < 8; ++n) {
        for (int k = 0; k < 16; ++k) {
          t.b[s][n][k] = k % 4 == 3 ? static_cast<uint16_t>(t.b[s][n][k - 1] ^ 0x8000u)
                                    : Bf16(std::ldexp(u(rng), ex(rng)));
        }
      }
    }
    for (int r = 0; r < 64; ++r)
      for (int n = 0; n < 8; ++n) t.c[r][n] = std::ldexp(u(rng), ex(rng));
  }
  Trial* dt = nullptr;
  float *dm = nullptr, *dw = nullptr;
  Check(cudaMalloc(&dt, sizeof(Trial) * trials), "malloc");
  Check(cudaMalloc(&dm, sizeof(float) * 512 * trials), "malloc");
  Check(cudaMalloc(&dw, sizeof(float) * 512 * trials), "malloc");
  Check(cudaMemcpy(dt, h.data(), sizeof(Trial) * trials, cudaMemcpyHostToDevice), "upload");
  Probe<<<trials, 128>>>(dt, dm, dw);
  Check(cudaGetLastError(), "launch");
  Check(cudaDeviceSynchronize(), "run");
  std::vector<float> m(512 * trials), w(512 * trials);
  Check(cudaMemcpy(m.data(), dm, m.size() * 4, cudaMemcpyDeviceToHost), "download");
  Check(cudaMemcpy(w.data(), dw, w.size() * 4, cudaMemcpyDeviceToHost), "download");
  long differ = 0;
  long long max_ulp = 0;
  for (size_t i = 0; i < m.size(); ++i) {
    int32_t a, b;
    std::memcpy(&a, &m[i], 4);
    std::memcpy(&b, &w[i], 4);
    if (a == b) continue;
    ++differ;
    const long long d = std::llabs(static_cast<long long>(a) - b);
    if (d > max_ulp) max_ulp = d;
    if (differ <= 5) {
      std::printf("differ at trial %zu elem %zu: mma %.9g wgmma %.9g\n", i / 512, i % 512, m[i],
                  w[i]);
    }
  }
  std::printf("wgmma_probe trials=%d elements=%zu differ=%ld max_ulp=%lld\n", trials, m.size(),
              differ, max_ulp);
  cudaFree(dw);
  cudaFree(dm);
  cudaFree(dt);
  return differ == 0 ? 0 : 1;
}
