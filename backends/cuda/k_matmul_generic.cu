// MATMUL for every weight dtype (f32/f16/bf16/q8_b32/q4_b32) and any row strides: the path for
// shapes the bf16 tensor-core kernels do not take (see Bf16FastPathEligible).
//
// One warp a weight row n and a tile of up to 8 x rows. Canonical order of out[m, n]: lane l sums
// x[m, k] * w[n, k] for k = l, l + 32, ... in order with FMA (weights decode exactly to f32),
// then the 32 lane sums are added by butterfly, then the bias. The tile size only decides how
// many rows share a weight load, so a row's bits never depend on M: batch-invariant.
//
// Kernels that compute that order (the kernel lab `bench_cuda_kernels --generic` compares
// each against MatmulGenericKernel bit for bit: 216 cases, every dtype, ragged N / K, M 1..130):
// - MatmulGenericKernel: the reference (LaunchMatmulGenericReference), one load in flight a
//   warp; until 2026-11-29 the only one. It left a Q8 / Q4 / f16 decode far below the bf16
//   tensor-core GEMV (H200, Qwen2.5-0.5B shape, q8 tg128 165 t/s against bf16 878).
// - MatmulStagedKernel (Q8 / Q4 rows 4-byte aligned, M <= 8): 16 blocks of a row staged through
//   shared memory as 4-byte words, the next group's loads in flight during this group's math.
// - MatmulStepsKernel (the other dtypes and rows, M <= 8): the loads of a group of steps issued
//   before their FMAs.
// - MatmulTileKernel (M > 8: prefill, larger batches): 8 x 8 outputs a lane, one decode of a
//   weight value for 8 x rows.
// What they measured (H200, backends/cuda/lab/results/gen33, docs/benchmarks.md "cu-gen33"):
// decode GEMVs 2.3-10x the reference (8B shapes: f32 0.96-1.0 of copy, f16 0.70-0.77, q8 0.39-0.41,
// q4 0.18-0.23); engine tg128 q8 0.5B 165 -> 744, 1B 114 -> 690 t/s.
#include <type_traits>

#include "backends/cuda/dev_common.cuh"

namespace tessera::cuda {
namespace {

constexpr int kWarps = 8;  // weight rows a block
constexpr int kRows = 8;   // x rows a block

// The end of the one-weight-row kernels: each x row's lane sums by butterfly (lane 0's sum),
// the bias, the store.
template <int R>
__device__ __forceinline__ void StoreRowSums(const MatmulParams& p, float (&acc)[R], int64_t m0,
                                             int64_t n, int rows, int lane) {
#pragma unroll
  for (int i = 0; i < R; ++i) {
    float s = WarpSum(acc[i]);
    if (lane == 0 && i < rows) {
      if (p.bias != nullptr) s += p.bias[n];
      p.out[(m0 + i) * p.out_row + n * p.out_col] = s;
    }
  }
}

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
  StoreRowSums<kRows>(p, acc, m0, n, rows, lane);
}

// Weight k = 32 s + lane of row `row` in dtype DT, decoded as WeightAt does (the same value: a
// block's binary16 scale times its integer, exact in f32). Q8 / Q4 rows hold whole blocks
// (K % 32 == 0), so step s is block s.
template <int DT>
__device__ __forceinline__ float StepWeight(const uint8_t* row, int64_t s, int lane) {
  if constexpr (DT == TSR_DTYPE_Q8_B32) {
    const uint8_t* blk = row + s * TSR_BLOCK_Q8_BYTES;
    return F16Bits(LoadU16(blk)) * static_cast<float>(static_cast<int8_t>(__ldg(blk + 2 + lane)));
  } else if constexpr (DT == TSR_DTYPE_Q4_B32) {
    const uint8_t* blk = row + s * TSR_BLOCK_Q4_BYTES;
    const uint8_t byte = __ldg(blk + 2 + (lane & 15));
    const int nib = lane < 16 ? (byte & 0x0f) : (byte >> 4);
    return F16Bits(LoadU16(blk)) * static_cast<float>(nib - 8);
  } else if constexpr (DT == TSR_DTYPE_F16) {
    return F16Bits(__ldg(reinterpret_cast<const unsigned short*>(row) + 32 * s + lane));
  } else if constexpr (DT == TSR_DTYPE_BF16) {
    return Bf16Bits(__ldg(reinterpret_cast<const unsigned short*>(row) + 32 * s + lane));
  } else {
    return __ldg(reinterpret_cast<const float*>(row) + 32 * s + lane);
  }
}

// Bytes of one 32-value step of a row in dtype DT.
template <int DT>
constexpr int64_t StepBytes() {
  return DT == TSR_DTYPE_Q8_B32   ? TSR_BLOCK_Q8_BYTES
         : DT == TSR_DTYPE_Q4_B32 ? TSR_BLOCK_Q4_BYTES
         : DT == TSR_DTYPE_F32    ? 128
                                  : 64;
}

// MatmulGenericKernel's order for tiles of up to R x rows, with every load of kSteps steps (the
// weights and the x values) issued before the first of their FMAs. Whole groups of kSteps steps
// with every lane inside K run from pointers advanced a group at a time (constant offsets, no
// bounds); the rest of the row (the last group, and a last step with K % 32 != 0) loads
// unconditionally too: a lane past K reads the row's last value, a step past the row the last
// step, an x row past M the tile's last row, and the FMAs that would use them are skipped, as
// the reference loop's bounds skip them. (Loads behind those bounds stayed behind their
// branches and waited one latency each; 64-bit index arithmetic a step made the loop
// instruction-bound.)
template <int DT, int kSteps, int R>
__global__ void __launch_bounds__(kWarps * 32) MatmulStepsKernel(MatmulParams p) {
  GridDepWait();
  AllowDependents();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t n = blockIdx.x * int64_t(kWarps) + warp;
  if (n >= p.N) return;  // no block-wide barrier below
  const int64_t m0 = blockIdx.y * int64_t(R);
  const int rows = static_cast<int>(p.M - m0 < R ? p.M - m0 : R);
  const uint8_t* wrow = p.w + n * p.w_row_bytes;
  const float* x = p.x + m0 * p.x_row;
  int64_t xoff[R];  // x row i (rows past M: the tile's last)
#pragma unroll
  for (int i = 0; i < R; ++i) xoff[i] = (i < rows ? i : rows - 1) * p.x_row;
  float acc[R];
#pragma unroll
  for (int i = 0; i < R; ++i) acc[i] = 0.0f;
  constexpr int64_t kStepBytes = StepBytes<DT>();
  constexpr bool kQuant = DT == TSR_DTYPE_Q8_B32 || DT == TSR_DTYPE_Q4_B32;
  const int64_t whole = p.K / 32;  // steps with every lane inside K
  int64_t s0 = 0;
  {
    const uint8_t* wp = wrow;
    const float* xp = x + lane;
    for (; s0 + kSteps <= whole; s0 += kSteps, wp += kSteps * kStepBytes, xp += kSteps * 32) {
      float wv[kSteps], xv[kSteps][R];
#pragma unroll
      for (int u = 0; u < kSteps; ++u) {
        wv[u] = kQuant ? StepWeight<DT>(wp, u, lane) : StepWeight<DT>(wp + u * kStepBytes, 0, lane);
#pragma unroll
        for (int i = 0; i < R; ++i) xv[u][i] = xp[xoff[i] + u * 32];
      }
#pragma unroll
      for (int u = 0; u < kSteps; ++u) {
#pragma unroll
        for (int i = 0; i < R; ++i) {
          if (i < rows) acc[i] = fmaf(xv[u][i], wv[u], acc[i]);
        }
      }
    }
  }
  const int64_t steps = (p.K + 31) / 32;
  if (s0 < steps) {  // the rest: fewer than kSteps whole steps, and a last partial one
    float wv[kSteps], xv[kSteps][R];
#pragma unroll
    for (int u = 0; u < kSteps; ++u) {
      const int64_t s = s0 + u < steps ? s0 + u : steps - 1;
      const int64_t k = 32 * s + lane < p.K ? 32 * s + lane : p.K - 1;
      wv[u] = kQuant ? StepWeight<DT>(wrow, s, lane) : StepWeight<DT>(wrow, 0, static_cast<int>(k));
#pragma unroll
      for (int i = 0; i < R; ++i) xv[u][i] = x[xoff[i] + k];
    }
#pragma unroll
    for (int u = 0; u < kSteps; ++u) {
      if (32 * (s0 + u) + lane < p.K) {
#pragma unroll
        for (int i = 0; i < R; ++i) {
          if (i < rows) acc[i] = fmaf(xv[u][i], wv[u], acc[i]);
        }
      }
    }
  }
  StoreRowSums<R>(p, acc, m0, n, rows, lane);
}

// Q8 / Q4 rows a warp stages through shared memory, kGroup (16) blocks at a time: the group's
// bytes (Q8 544, Q4 288) come in as 4-byte words (a few
// loads a lane, the next group's issued before this group's math) instead of a byte load per
// value and two per scale, so a warp keeps a whole group in flight. The last group may be short
// (its words and blocks only). Each lane then decodes its value of every block from the staged
// bytes exactly as StepWeight does and runs the same FMAs in the same order (bits:
// MatmulGenericKernel's). Rows must be 4-byte aligned (the launch checks the base and the row
// bytes: K / 32 even).
template <int DT, int R, int kGroup>
__global__ void __launch_bounds__(kWarps * 32) MatmulStagedKernel(MatmulParams p) {
  constexpr int64_t kBlockBytes = StepBytes<DT>();
  constexpr int kWords = static_cast<int>(kGroup * kBlockBytes / 4);
  constexpr int kPer = (kWords + 31) / 32;  // word loads a lane
  __shared__ uint32_t stage[kWarps][kWords];
  GridDepWait();
  AllowDependents();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t n = blockIdx.x * int64_t(kWarps) + warp;
  if (n >= p.N) return;  // no block-wide barrier below (whole warps leave)
  const int64_t m0 = blockIdx.y * int64_t(R);
  const int rows = static_cast<int>(p.M - m0 < R ? p.M - m0 : R);
  const float* x = p.x + m0 * p.x_row;
  int64_t xoff[R];
#pragma unroll
  for (int i = 0; i < R; ++i) xoff[i] = (i < rows ? i : rows - 1) * p.x_row;
  float acc[R];
#pragma unroll
  for (int i = 0; i < R; ++i) acc[i] = 0.0f;
  const int64_t blocks = p.K / 32;
  const int64_t row_words = blocks * kBlockBytes / 4;  // the row's blocks (the launch: % 4 == 0)
  const uint32_t* w32 = reinterpret_cast<const uint32_t*>(p.w + n * p.w_row_bytes);
  const uint8_t* sb = reinterpret_cast<const uint8_t*>(stage[warp]);
  uint32_t buf[kPer];
  // Words [g * kWords, ...) of the row, those that exist.
  auto load = [&](int64_t g) {
    const int64_t w0 = g * kWords;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int64_t w = w0 + j * 32 + lane;
      if (j * 32 + lane < kWords && w < row_words) buf[j] = __ldg(w32 + w);
    }
  };
  // One staged group's math: blocks [0, nblk) of it (kShort: nblk < kGroup, the row's last).
  auto group = [&](const float* xp, int nblk, auto short_tag) {
    constexpr bool kShort = decltype(short_tag)::value;
    float xv[kGroup][R];
#pragma unroll
    for (int u = 0; u < kGroup; ++u) {
      const int uc = !kShort || u < nblk ? u : nblk - 1;  // missing blocks: read the last
#pragma unroll
      for (int i = 0; i < R; ++i) xv[u][i] = xp[xoff[i] + uc * 32];
    }
#pragma unroll
    for (int u = 0; u < kGroup; ++u) {
      const uint8_t* blk = sb + (!kShort || u < nblk ? u : nblk - 1) * kBlockBytes;
      // The scale as one 2-byte load: staged blocks start at even offsets of a 4-aligned buffer.
      const float scale = F16Bits(*reinterpret_cast<const uint16_t*>(blk));
      float wv;
      if constexpr (DT == TSR_DTYPE_Q8_B32) {
        wv = scale * static_cast<float>(static_cast<int8_t>(blk[2 + lane]));
      } else {
        const uint8_t byte = blk[2 + (lane & 15)];
        const int nib = lane < 16 ? (byte & 0x0f) : (byte >> 4);
        wv = scale * static_cast<float>(nib - 8);
      }
      if (!kShort || u < nblk) {
#pragma unroll
        for (int i = 0; i < R; ++i) {
          if (i < rows) acc[i] = fmaf(xv[u][i], wv, acc[i]);
        }
      }
    }
  };
  auto stage_buf = [&] {
    __syncwarp();
#pragma unroll
    for (int j = 0; j < kPer; ++j)
      if (j * 32 + lane < kWords) stage[warp][j * 32 + lane] = buf[j];
    __syncwarp();
  };
  const int64_t whole = blocks / kGroup, groups = (blocks + kGroup - 1) / kGroup;
  load(0);
  const float* xp = x + lane;
  for (int64_t g = 0; g < whole; ++g, xp += kGroup * 32) {
    stage_buf();
    if (g + 1 < groups) load(g + 1);
    group(xp, kGroup, std::false_type{});
  }
  if (whole < groups) {  // the short last group
    stage_buf();
    group(xp, static_cast<int>(blocks - whole * kGroup), std::true_type{});
  }
  StoreRowSums<R>(p, acc, m0, n, rows, lane);
}

// Prefill and larger batches (M > 8): the same order, register-tiled. A block owns kTileN (8)
// weight rows and 8 warps x 8 x rows; a lane keeps the 8 x 8 sums of its residue class
// (k = lane + 32 b, b in order), so a step's 8 weight values (each decoded once) and 8 x values
// feed 64 FMAs instead of one weight value 8, and the block's warps read the same weight rows
// (L1). Loads are unconditional (weight rows past N: the last row; x rows past M: the last row;
// a lane past K: the row's last value), the FMAs they would feed are skipped. Then a butterfly
// per output (WarpSum, lane 0's sum as in MatmulGenericKernel), bias, store.
constexpr int kTileN = 8, kTileM = 8;
template <int DT>
__global__ void __launch_bounds__(kWarps * 32) MatmulTileKernel(MatmulParams p) {
  GridDepWait();
  AllowDependents();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t n0 = blockIdx.x * int64_t(kTileN);
  const int64_t m0 = (blockIdx.y * int64_t(kWarps) + warp) * kTileM;
  if (m0 >= p.M) return;  // no block-wide barrier below (whole warps leave)
  const int rows = static_cast<int>(p.M - m0 < kTileM ? p.M - m0 : kTileM);
  const int cols = static_cast<int>(p.N - n0 < kTileN ? p.N - n0 : kTileN);
  const uint8_t* wrow[kTileN];
#pragma unroll
  for (int j = 0; j < kTileN; ++j) wrow[j] = p.w + (n0 + (j < cols ? j : cols - 1)) * p.w_row_bytes;
  const float* xrow[kTileM];
#pragma unroll
  for (int i = 0; i < kTileM; ++i) xrow[i] = p.x + (m0 + (i < rows ? i : rows - 1)) * p.x_row;
  float acc[kTileM][kTileN];
#pragma unroll
  for (int i = 0; i < kTileM; ++i) {
#pragma unroll
    for (int j = 0; j < kTileN; ++j) acc[i][j] = 0.0f;
  }
  constexpr bool kQuant = DT == TSR_DTYPE_Q8_B32 || DT == TSR_DTYPE_Q4_B32;
  const int64_t steps = (p.K + 31) / 32;
#pragma unroll 2
  for (int64_t b = 0; b < steps; ++b) {
    const int64_t k = 32 * b + lane < p.K ? 32 * b + lane : p.K - 1;
    float wv[kTileN], xv[kTileM];
#pragma unroll
    for (int j = 0; j < kTileN; ++j)
      wv[j] = kQuant ? StepWeight<DT>(wrow[j], b, lane)
                     : StepWeight<DT>(wrow[j], 0, static_cast<int>(k));
#pragma unroll
    for (int i = 0; i < kTileM; ++i) xv[i] = xrow[i][k];
    if (32 * b + lane < p.K) {
#pragma unroll
      for (int i = 0; i < kTileM; ++i) {
#pragma unroll
        for (int j = 0; j < kTileN; ++j) acc[i][j] = fmaf(xv[i], wv[j], acc[i][j]);
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kTileM; ++i) {
#pragma unroll
    for (int j = 0; j < kTileN; ++j) {
      float s = WarpSum(acc[i][j]);
      if (lane == 0 && i < rows && j < cols) {
        if (p.bias != nullptr) s += p.bias[n0 + j];
        p.out[(m0 + i) * p.out_row + (n0 + j) * p.out_col] = s;
      }
    }
  }
}

template <int DT>
cudaError_t LaunchSteps(const MatmulParams& p, cudaStream_t stream) {
  if (p.M > kRows) {  // prefill / larger batches: the register tile
    const int64_t gy = (p.M + kWarps * kTileM - 1) / (kWarps * kTileM);
    if (gy > 65535) return cudaErrorInvalidConfiguration;  // split by the caller
    LaunchK(MatmulTileKernel<DT>,
            dim3(static_cast<unsigned>((p.N + kTileN - 1) / kTileN), static_cast<unsigned>(gy)),
            kWarps * 32, 0, stream, p);
    return cudaGetLastError();
  }
  // M <= kRows: one tile of x rows, a block per kWarps weight rows.
  const dim3 grid(static_cast<unsigned>((p.N + kWarps - 1) / kWarps));
  if constexpr (DT == TSR_DTYPE_Q8_B32 || DT == TSR_DTYPE_Q4_B32) {
    if (reinterpret_cast<uintptr_t>(p.w) % 4 == 0 && p.w_row_bytes % 4 == 0 &&
        p.K / 32 * StepBytes<DT>() % 4 == 0) {
      if (p.M == 1) {
        LaunchK(MatmulStagedKernel<DT, 1, 16>, grid, kWarps * 32, 0, stream, p);
      } else {
        LaunchK(MatmulStagedKernel<DT, kRows, 16>, grid, kWarps * 32, 0, stream, p);
      }
      return cudaGetLastError();
    }
  }
  // One x row: 16 steps in flight (Q8 544 bytes of a row a warp); 2..8 rows: 8.
  if (p.M == 1) {
    LaunchK(MatmulStepsKernel<DT, 16, 1>, grid, kWarps * 32, 0, stream, p);
  } else {
    LaunchK(MatmulStepsKernel<DT, 8, kRows>, grid, kWarps * 32, 0, stream, p);
  }
  return cudaGetLastError();
}

bool GridOf(const MatmulParams& p, dim3* grid) {
  const int64_t gy = (p.M + kRows - 1) / kRows;
  if (gy > 65535) return false;  // 524k rows: split by the caller
  *grid = dim3(static_cast<unsigned>((p.N + kWarps - 1) / kWarps), static_cast<unsigned>(gy));
  return true;
}

}  // namespace

cudaError_t LaunchMatmulGeneric(const MatmulParams& p, cudaStream_t stream) {
  if (p.M == 0 || p.N == 0) return cudaSuccess;
  switch (p.w_dtype) {
    case TSR_DTYPE_Q8_B32: return LaunchSteps<TSR_DTYPE_Q8_B32>(p, stream);
    case TSR_DTYPE_Q4_B32: return LaunchSteps<TSR_DTYPE_Q4_B32>(p, stream);
    case TSR_DTYPE_F16: return LaunchSteps<TSR_DTYPE_F16>(p, stream);
    case TSR_DTYPE_BF16: return LaunchSteps<TSR_DTYPE_BF16>(p, stream);
    case TSR_DTYPE_F32: return LaunchSteps<TSR_DTYPE_F32>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t LaunchMatmulGenericReference(const MatmulParams& p, cudaStream_t stream) {
  if (p.M == 0 || p.N == 0) return cudaSuccess;
  dim3 grid;
  if (!GridOf(p, &grid)) return cudaErrorInvalidConfiguration;
  LaunchK(MatmulGenericKernel, grid, kWarps * 32, 0, stream, p);
  return cudaGetLastError();
}

}  // namespace tessera::cuda
