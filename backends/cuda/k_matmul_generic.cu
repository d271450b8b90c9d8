// MATMUL for every weight dtype (f32/f16/bf16/q8_b32/q4_b32) and any row strides: the path for
// shapes the bf16 tensor-core kernels do not take (see Bf16FastPathEligible).
//
// One warp a weight row n and a tile of up to 8 x rows. Canonical order of out[m, n]: lane l sums
// x[m, k] * w[n, k] for k = l, l + 32, ... in order with FMA (weights decode exactly to f32),
// then the 32 lane sums are added by butterfly, then the bias. The tile size only decides how
// many rows share a weight load, so a row's bits never depend on M: batch-invariant.
#include "backends/cuda/dev_common.cuh"

namespace tessera::cuda {
namespace {

constexpr int kWarps = 8;  // weight rows a block
constexpr int kRows = 8;   // x rows a block

__global__ void __launch_bounds__(kWarps * 32) MatmulGenericKernel(MatmulParams p) {
  GridDepWait();
  AllowDependents();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t n = blockIdx.x * int64_t(kWarps) + warp;
  if (n >= p.N) return;  // no block-wide barrier below
  const int64_t m0 = blockIdx.y * int64_t(kRows);
  const int rows = static_cast<int>(p.M - m0 < kRows ? p.M - m0 : kRows);
  const uint8_t* wrow = p.w + n * p.w_row_bytes;
  const float* x = p.x + m0 * p.x_row;
  float acc[kRows];
#pragma unroll
  for (int i = 0; i < kRows; ++i) acc[i] = 0.0f;
  for (int64_t k = lane; k < p.K; k += 32) {
    const float wv = WeightAt(wrow, p.w_dtype, k);
#pragma unroll
    for (int i = 0; i < kRows; ++i) {
      if (i < rows) acc[i] = fmaf(x[i * p.x_row + k], wv, acc[i]);
    }
  }
#pragma unroll
  for (int i = 0; i < kRows; ++i) {
    float s = WarpSum(acc[i]);
    if (lane == 0 && i < rows) {
      if (p.bias != nullptr) s += p.bias[n];
      p.out[(m0 + i) * p.out_row + n * p.out_col] = s;
    }
  }
}

}  // namespace

cudaError_t LaunchMatmulGeneric(const MatmulParams& p, cudaStream_t stream) {
  if (p.M == 0 || p.N == 0) return cudaSuccess;
  const int64_t gy = (p.M + kRows - 1) / kRows;
  if (gy > 65535) return cudaErrorInvalidConfiguration;  // 524k rows: split by the caller
  const dim3 grid(static_cast<unsigned>((p.N + kWarps - 1) / kWarps), static_cast<unsigned>(gy));
  LaunchK(MatmulGenericKernel, grid, kWarps * 32, 0, stream, p);
  return cudaGetLastError();
}

}  // namespace tessera::cuda
