// MATMUL for every weight dtype (f32/f16/bf16/q8_b32/q4_b32) and any row strides: the path for
// shapes the bf16 tensor-core kernels do not take (see Bf16FastPathEligible).
//
// One warp a weight row n and a tile of up to 8 x rows. Canonical order of out[m, n]: lane l sums
// x[m, k] * w[n, k] for k = l, l + 32, ... in order with FMA (weights decode exactly to f32),
// then the 32 lane sums are added by butterfly, then the bias. The tile size only decides how
// many rows share a weight load, so a row's bits never depend on M: batch-invariant.
//
// Kernels that compute that order (the kernel lab `bench_cuda_kernels --generic` compares
// each against MatmulGenericKernel bit for bit: every dtype, ragged N / K, M 1..300, every lab
// variant and staged form; 780 cases):
// - MatmulGenericKernel: the reference (LaunchMatmulGenericReference), one load in flight a
//   warp; until 2026-11-29 the only one. It left a Q8 / Q4 / f16 decode far below the bf16
//   tensor-core GEMV (H200, Qwen2.5-0.5B shape, q8 tg128 165 t/s against bf16 878).
// - MatmulStagedKernel (Q8 / Q4 rows 4-byte aligned, M <= 8): 16 blocks of a row (8 for 2-8
//   rows) staged through shared memory as 4-byte words, the next group's loads (one row: the
//   next two groups') in flight during this group's math.
// - MatmulStepsKernel (the other dtypes and rows, M <= 8): the loads of a group of steps issued
//   before their FMAs.
// - MatmulStagedTileKernel (M > 8: prefill, larger batches): a block's x rows and weight rows
//   staged through shared memory as f32 a chunk of steps at a time, 8 x 16 (or 8 x 8) outputs a
//   lane. MatmulTileKernel, its unstaged form (cu-gen33), is the lab's variant 0.
// What they measured (H200, backends/cuda/lab/results/gen33 and gen34, docs/benchmarks.md
// "cu-gen33", "cu-gen34"): decode GEMVs 2.3-10x the reference (8B shapes: f32 0.96-1.0 of copy,
// f16 0.70-0.77, q8 0.39-0.41, q4 0.26); engine tg128 q8 0.5B 165 -> 750, 1B 114 -> 684
// t/s; M = 512 tiles 14.9-24.0 TFLOP/s (the unstaged tile 4.9-8.3), engine pp512 2.5-2.8x.
#include <type_traits>

#include "backends/cuda/dev_common.cuh"
#include "backends/cuda/env_knob.h"

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
// kForm (lab variants): Q8 only, bit 0 the int8 to float by the magic-number add (no conversion
// unit), bit 1 the block scales converted once a group into shared memory, as Q4 does; bit 2 two
// groups' loads in flight instead of one (two register buffers).
template <int DT, int R, int kGroup, int kForm = 0>
__global__ void __launch_bounds__(kWarps * 32) MatmulStagedKernel(MatmulParams p) {
  constexpr int64_t kBlockBytes = StepBytes<DT>();
  constexpr int kWords = static_cast<int>(kGroup * kBlockBytes / 4);
  constexpr int kPer = (kWords + 31) / 32;  // word loads a lane
  __shared__ uint32_t stage[kWarps][kWords];
  // Q4 and Q8's form bit 1 (its 2-8-row default): the staged group's block scales as f32,
  // converted once (otherwise Q8 reads and converts them a lane each).
  constexpr bool kScalesOnce = DT == TSR_DTYPE_Q4_B32 || (kForm & 2) != 0;
  constexpr int kBufs = (kForm & 4) != 0 ? 2 : 1;
  __shared__ float scales[kWarps][kScalesOnce ? kGroup : 1];
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
  uint32_t buf[kBufs][kPer];
  // Words [g * kWords, ...) of the row, those that exist, into buffer S.
  auto load = [&](int64_t g, auto slot) {
    constexpr int S = decltype(slot)::value;
    const int64_t w0 = g * kWords;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int64_t w = w0 + j * 32 + lane;
      if (j * 32 + lane < kWords && w < row_words) buf[S][j] = __ldg(w32 + w);
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
      const int uc = !kShort || u < nblk ? u : nblk - 1;
      const uint8_t* blk = sb + uc * kBlockBytes;
      float wv;
      if constexpr (DT == TSR_DTYPE_Q8_B32) {
        // The scale as one 2-byte load: staged blocks start at even offsets of a 4-aligned buffer.
        const float scale =
            kScalesOnce ? scales[warp][uc] : F16Bits(*reinterpret_cast<const uint16_t*>(blk));
        if constexpr ((kForm & 1) != 0) {  // 2^23 + (q + 128) as bits minus 2^23 + 128: q
          wv = scale * (__uint_as_float(0x4B000000u | (blk[2 + lane] ^ 0x80u)) - 8388736.0f);
        } else {
          wv = scale * static_cast<float>(static_cast<int8_t>(blk[2 + lane]));
        }
      } else {
        // Q4: the scale converted once a block (stage_buf), the nibble to float without the
        // conversion unit: 2^23 + nib as bits minus 2^23 + 8, exact. Q8 measured mixed with the
        // same two changes (8B gate 36.7 -> 32.0 us but down 38.5 -> 42.3, Qwen2.5-0.5B q8
        // tg128 744 -> 602 t/s), Q4 faster on every shape (Llama-3.2-1B q4 tg128 602 -> 716).
        const float scale = scales[warp][uc];
        const uint8_t byte = blk[2 + (lane & 15)];
        const uint32_t nib = lane < 16 ? (byte & 0x0fu) : (byte >> 4);
        wv = scale * (__uint_as_float(0x4B000000u | nib) - 8388616.0f);  // nib - 8
      }
      if (!kShort || u < nblk) {
#pragma unroll
        for (int i = 0; i < R; ++i) {
          if (i < rows) acc[i] = fmaf(xv[u][i], wv, acc[i]);
        }
      }
    }
  };
  // The group's words into shared memory; with kScalesOnce lane j < kGroup then converts block
  // j's binary16 scale once (the value F16Bits gives every lane) for all lanes to read.
  auto stage_buf = [&](auto slot) {
    constexpr int S = decltype(slot)::value;
    __syncwarp();
#pragma unroll
    for (int j = 0; j < kPer; ++j)
      if (j * 32 + lane < kWords) stage[warp][j * 32 + lane] = buf[S][j];
    __syncwarp();
    if constexpr (kScalesOnce) {
      if (lane < kGroup)
        scales[warp][lane] = F16Bits(*reinterpret_cast<const uint16_t*>(sb + lane * kBlockBytes));
      __syncwarp();
    }
  };
  const int64_t whole = blocks / kGroup, groups = (blocks + kGroup - 1) / kGroup;
  using S0 = std::integral_constant<int, 0>;
  using S1 = std::integral_constant<int, kBufs - 1>;
  const float* xp = x + lane;
  load(0, S0{});
  if constexpr (kBufs == 1) {
    for (int64_t g = 0; g < whole; ++g, xp += kGroup * 32) {
      stage_buf(S0{});
      if (g + 1 < groups) load(g + 1, S0{});
      group(xp, kGroup, std::false_type{});
    }
    if (whole < groups) {  // the short last group
      stage_buf(S0{});
      group(xp, static_cast<int>(blocks - whole * kGroup), std::true_type{});
    }
  } else {  // group g in buffer g % 2, loaded two groups ahead
    if (groups > 1) load(1, S1{});
    int64_t g = 0;
    for (; g + 2 <= whole; g += 2) {
      stage_buf(S0{});
      if (g + 2 < groups) load(g + 2, S0{});
      group(xp, kGroup, std::false_type{});
      xp += kGroup * 32;
      stage_buf(S1{});
      if (g + 3 < groups) load(g + 3, S1{});
      group(xp, kGroup, std::false_type{});
      xp += kGroup * 32;
    }
    if (g < whole) {  // one more whole group (g even; any group after it is loaded)
      stage_buf(S0{});
      group(xp, kGroup, std::false_type{});
      xp += kGroup * 32;
    }
    if (whole < groups) {  // the short last group, in buffer whole % 2
      if (whole % 2 != 0) {
        stage_buf(S1{});
      } else {
        stage_buf(S0{});
      }
      group(xp, static_cast<int>(blocks - whole * kGroup), std::true_type{});
    }
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

// Prefill and larger batches (M > 8), staged: the same order as MatmulTileKernel, with a block's
// operands through shared memory. A block owns BM = WM x TM x rows and BN = WN x TN weight rows;
// each warp a TM x TN tile of them, lane l the sums of its residue class (k = l + 32 b, b in
// order, as in MatmulGenericKernel). A chunk of KS steps is staged at a time: each warp loads whole
// 32-value steps of its RX / RW consecutive x rows and weight rows (128-byte lines; each weight
// value decoded once, StepWeight) into registers during the previous chunk's math, then into
// shared memory as f32, lane-major (lane l's values of the block's rows side by side), so a
// step's (TM + TN) / 4 16-byte shared loads feed TM x TN FMAs (4-byte loads of a row-major
// layout, TM + TN of them, ran 0.8-1.0x: cu-gen34).
// Rows past M or N load the last row, a lane past K (f32 / f16 / bf16 rows) the row's last value
// and skips its FMAs, as the reference loop's bounds skip them. The lane sums are reduced 32
// outputs at a time by a transposed butterfly (ReduceGroup): WarpSum's pairs, in its order, so
// each output gets WarpSum's bits, with 31 shuffles a 32 outputs instead of 160.
template <int kOffset, int kHalf>
__device__ __forceinline__ void ReduceStage(float* v, int lane) {
  const bool upper = (lane & kOffset) != 0;
#pragma unroll
  for (int i = 0; i < kHalf; ++i) {
    const float send = upper ? v[i] : v[i + kHalf];
    const float keep = upper ? v[i + kHalf] : v[i];
    v[i] = keep + __shfl_xor_sync(0xffffffffu, send, kOffset);
  }
}
// v[0..32) of each lane -> lane l holds output l's butterfly sum in v[0]: stage `offset` pairs
// lane l with l ^ offset exactly as WarpSum does, the lane with that bit clear keeping the lower
// half of the outputs still open (so output bit b ends in lane bit b).
__device__ __forceinline__ void ReduceGroup(float* v, int lane) {
  ReduceStage<16, 16>(v, lane);
  ReduceStage<8, 8>(v, lane);
  ReduceStage<4, 4>(v, lane);
  ReduceStage<2, 2>(v, lane);
  ReduceStage<1, 1>(v, lane);
}

template <int DT, int TM, int TN, int WM, int WN, int KS, int kMinBlocks>
__global__ void __launch_bounds__(WM* WN * 32, kMinBlocks) MatmulStagedTileKernel(MatmulParams p) {
  constexpr int kNW = WM * WN, BM = WM * TM, BN = WN * TN;
  constexpr int RX = BM / kNW, RW = BN / kNW;  // x / weight rows a warp stages
  static_assert(BM % kNW == 0 && BN % kNW == 0 && TM * TN % 32 == 0, "tile shape");
  constexpr bool kQuant = DT == TSR_DTYPE_Q8_B32 || DT == TSR_DTYPE_Q4_B32;
  static_assert(RX % 4 == 0 && RW % 2 == 0 && TM % 4 == 0 && TN % 4 == 0, "vector shape");
  // Lane-major: [step][lane][row], rows padded by 4 floats, so the 16-byte stores and loads of 8
  // lanes (a quarter warp) fall in distinct banks.
  __shared__ __align__(16) float xs[KS][32][BM + 4];
  __shared__ __align__(16) float ws[KS][32][BN + 4];
  GridDepWait();
  AllowDependents();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp / WN, wn = warp % WN;
  const int64_t m0 = blockIdx.x * int64_t(BM), n0 = blockIdx.y * int64_t(BN);
  const int64_t steps = (p.K + 31) / 32, whole = p.K / 32;
  const int x0 = RX * warp, w0 = RW * warp;  // the first of the consecutive rows a warp stages
  const float* xrow[RX];
#pragma unroll
  for (int a = 0; a < RX; ++a) {
    const int64_t m = m0 + (x0 + a);
    xrow[a] = p.x + (m < p.M ? m : p.M - 1) * p.x_row;
  }
  const uint8_t* wrow[RW];
#pragma unroll
  for (int a = 0; a < RW; ++a) {
    const int64_t n = n0 + (w0 + a);
    wrow[a] = p.w + (n < p.N ? n : p.N - 1) * p.w_row_bytes;
  }
  float xr[KS][RX], wr[KS][RW];
  auto load = [&](int64_t c) {
#pragma unroll
    for (int s = 0; s < KS; ++s) {
      const int64_t b = c * KS + s < steps ? c * KS + s : steps - 1;
      const int64_t k = 32 * b + lane < p.K ? 32 * b + lane : p.K - 1;
#pragma unroll
      for (int a = 0; a < RX; ++a) xr[s][a] = __ldg(xrow[a] + k);
#pragma unroll
      for (int a = 0; a < RW; ++a)
        wr[s][a] = kQuant ? StepWeight<DT>(wrow[a], b, lane)
                          : StepWeight<DT>(wrow[a], 0, static_cast<int>(k));
    }
  };
  float acc[TM * TN];
#pragma unroll
  for (int o = 0; o < TM * TN; ++o) acc[o] = 0.0f;
  auto store = [&] {
#pragma unroll
    for (int s = 0; s < KS; ++s) {
#pragma unroll
      for (int a = 0; a < RX; a += 4)
        *reinterpret_cast<float4*>(&xs[s][lane][x0 + a]) =
            make_float4(xr[s][a], xr[s][a + 1], xr[s][a + 2], xr[s][a + 3]);
#pragma unroll
      for (int a = 0; a < RW; a += 2)
        *reinterpret_cast<float2*>(&ws[s][lane][w0 + a]) = make_float2(wr[s][a], wr[s][a + 1]);
    }
  };
  const int64_t chunks = (steps + KS - 1) / KS;
  load(0);
  for (int64_t c = 0; c < chunks; ++c) {
    store();
    __syncthreads();
    if (c + 1 < chunks) load(c + 1);
#pragma unroll
    for (int s = 0; s < KS; ++s) {
      const int64_t b = c * KS + s;
      if (b < whole || (b < steps && 32 * b + lane < p.K)) {
        float xv[TM], wv[TN];
#pragma unroll
        for (int i = 0; i < TM; i += 4) {
          const float4 v = *reinterpret_cast<const float4*>(&xs[s][lane][wm * TM + i]);
          xv[i] = v.x, xv[i + 1] = v.y, xv[i + 2] = v.z, xv[i + 3] = v.w;
        }
#pragma unroll
        for (int j = 0; j < TN; j += 4) {
          const float4 v = *reinterpret_cast<const float4*>(&ws[s][lane][wn * TN + j]);
          wv[j] = v.x, wv[j + 1] = v.y, wv[j + 2] = v.z, wv[j + 3] = v.w;
        }
#pragma unroll
        for (int i = 0; i < TM; ++i) {
#pragma unroll
          for (int j = 0; j < TN; ++j) acc[i * TN + j] = fmaf(xv[i], wv[j], acc[i * TN + j]);
        }
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int g = 0; g < TM * TN / 32; ++g) {
    ReduceGroup(acc + 32 * g, lane);
    const int o = 32 * g + lane, i = o / TN, j = o % TN;
    const int64_t m = m0 + wm * TM + i, n = n0 + wn * TN + j;
    if (m < p.M && n < p.N) {
      float s = acc[32 * g];
      if (p.bias != nullptr) s += p.bias[n];
      p.out[m * p.out_row + n * p.out_col] = s;
    }
  }
}

// M > 8 kernels (the lab's variants; 0 = MatmulTileKernel). TESSERA_CUDA_GENERIC_TILE picks one
// for A / B runs of the engine.
template <int DT, int TM, int TN, int WM, int WN, int KS, int kMinBlocks>
cudaError_t LaunchStagedTile(const MatmulParams& p, cudaStream_t stream) {
  constexpr int64_t BM = WM * TM, BN = WN * TN;
  const int64_t gx = (p.M + BM - 1) / BM, gy = (p.N + BN - 1) / BN;
  if (gy > 65535 || gx > 0x7fffffff) return cudaErrorInvalidConfiguration;
  LaunchK(MatmulStagedTileKernel<DT, TM, TN, WM, WN, KS, kMinBlocks>,
          dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), WM * WN * 32, 0, stream, p);
  return cudaGetLastError();
}

template <int DT>
cudaError_t LaunchTileVariant(const MatmulParams& p, cudaStream_t stream, int variant) {
  switch (variant) {
    case 1: return LaunchStagedTile<DT, 8, 16, 4, 2, 4, 1>(p, stream);
    case 2: return LaunchStagedTile<DT, 8, 8, 4, 2, 4, 2>(p, stream);  // two blocks an SM
    default: break;
  }
  const int64_t gy = (p.M + kWarps * kTileM - 1) / (kWarps * kTileM);
  if (gy > 65535) return cudaErrorInvalidConfiguration;  // split by the caller
  LaunchK(MatmulTileKernel<DT>,
          dim3(static_cast<unsigned>((p.N + kTileN - 1) / kTileN), static_cast<unsigned>(gy)),
          kWarps * 32, 0, stream, p);
  return cudaGetLastError();
}

// Defaults (cu-gen34, H200, M = 64 / 512 on the 0.5B and 8B shapes, lane-major staging): Q8 / Q4
// the 8 x 8 tile at two blocks an SM (14.9-16.7 TFLOP/s; the 8 x 16 one 12.0-16.6, slower on
// the 0.5B down), f16 / f32 / bf16 the 8 x 16 tile (f32 20.5-24.0 against 19.0-20.6).
// -1: these; TESSERA_CUDA_GENERIC_TILE = 0..2 forces one.
template <int DT>
int TileVariant() {
  static const int v = EnvInt("TESSERA_CUDA_GENERIC_TILE", -1);
  if (v >= 0) return v;
  return DT == TSR_DTYPE_Q8_B32 || DT == TSR_DTYPE_Q4_B32 ? 2 : 1;
}

// The staged GEMV (M <= 8, aligned Q8 / Q4 rows); form: MatmulStagedKernel's kForm.
template <int DT, int kForm>
void LaunchStagedForm(const MatmulParams& p, cudaStream_t stream, dim3 grid) {
  if (p.M == 1) {
    LaunchK(MatmulStagedKernel<DT, 1, 16, kForm>, grid, kWarps * 32, 0, stream, p);
  } else {  // 8 rows: 8-block groups (16 spilled: 128 x values live)
    LaunchK(MatmulStagedKernel<DT, kRows, 8, kForm>, grid, kWarps * 32, 0, stream, p);
  }
}
template <int DT>
cudaError_t LaunchStagedRows(const MatmulParams& p, cudaStream_t stream, dim3 grid, int form) {
  if constexpr (DT == TSR_DTYPE_Q8_B32) {
    switch (form) {
      case 1: LaunchStagedForm<DT, 1>(p, stream, grid); return cudaGetLastError();
      case 2: LaunchStagedForm<DT, 2>(p, stream, grid); return cudaGetLastError();
      case 3: LaunchStagedForm<DT, 3>(p, stream, grid); return cudaGetLastError();
      case 6: LaunchStagedForm<DT, 6>(p, stream, grid); return cudaGetLastError();
      default: break;
    }
  }
  if ((form & 4) != 0) {
    LaunchStagedForm<DT, 4>(p, stream, grid);
  } else {
    LaunchStagedForm<DT, 0>(p, stream, grid);
  }
  return cudaGetLastError();
}

// Staged forms (cu-gen34, H200): one row with two groups' loads in flight (engine tg128 Q4 +4-5%,
// Q8 0-3.5%; Q8's magic-number conversion 0.97-1.03x, its scales once 0.66-1.10x: slower on the
// long-K downs); 2-8 rows with one group in flight (two: 0.68-0.70x) and Q8's scales once (41 ->
// 36 us at 4096 x 4096). TESSERA_CUDA_GENERIC_STAGED = a form forces it for every M (Q4 reads
// bit 2 only).
int StagedForm(int64_t m) {
  static const int v = EnvInt("TESSERA_CUDA_GENERIC_STAGED", -1);
  return v >= 0 ? v : m == 1 ? 4 : 2;
}

template <int DT>
cudaError_t LaunchSteps(const MatmulParams& p, cudaStream_t stream) {
  if (p.M > kRows) {  // prefill / larger batches: a register tile
    const int v = TileVariant<DT>();
    const cudaError_t e = LaunchTileVariant<DT>(p, stream, v);
    // N / BN past a grid dimension: the unstaged tile (its grid is over M).
    return e == cudaErrorInvalidConfiguration && v != 0 ? LaunchTileVariant<DT>(p, stream, 0) : e;
  }
  // M <= kRows: one tile of x rows, a block per kWarps weight rows.
  const dim3 grid(static_cast<unsigned>((p.N + kWarps - 1) / kWarps));
  if constexpr (DT == TSR_DTYPE_Q8_B32 || DT == TSR_DTYPE_Q4_B32) {
    if (reinterpret_cast<uintptr_t>(p.w) % 4 == 0 && p.w_row_bytes % 4 == 0 &&
        p.K / 32 * StepBytes<DT>() % 4 == 0) {
      return LaunchStagedRows<DT>(p, stream, grid, StagedForm(p.M));
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

cudaError_t LaunchMatmulGenericTile(const MatmulParams& p, cudaStream_t stream, int variant) {
  if (p.M == 0 || p.N == 0) return cudaSuccess;
  switch (p.w_dtype) {
    case TSR_DTYPE_Q8_B32: return LaunchTileVariant<TSR_DTYPE_Q8_B32>(p, stream, variant);
    case TSR_DTYPE_Q4_B32: return LaunchTileVariant<TSR_DTYPE_Q4_B32>(p, stream, variant);
    case TSR_DTYPE_F16: return LaunchTileVariant<TSR_DTYPE_F16>(p, stream, variant);
    case TSR_DTYPE_BF16: return LaunchTileVariant<TSR_DTYPE_BF16>(p, stream, variant);
    case TSR_DTYPE_F32: return LaunchTileVariant<TSR_DTYPE_F32>(p, stream, variant);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t LaunchMatmulGenericStagedForm(const MatmulParams& p, cudaStream_t stream, int form) {
  if (p.M == 0 || p.N == 0) return cudaSuccess;
  const bool q8 = p.w_dtype == TSR_DTYPE_Q8_B32;
  if ((!q8 && p.w_dtype != TSR_DTYPE_Q4_B32) || p.M > kRows ||
      reinterpret_cast<uintptr_t>(p.w) % 4 != 0 || p.w_row_bytes % 4 != 0 ||
      p.K / 64 * 2 != p.K / 32)
    return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>((p.N + kWarps - 1) / kWarps));
  return q8 ? LaunchStagedRows<TSR_DTYPE_Q8_B32>(p, stream, grid, form)
            : LaunchStagedRows<TSR_DTYPE_Q4_B32>(p, stream, grid, form);
}

cudaError_t LaunchMatmulGenericReference(const MatmulParams& p, cudaStream_t stream) {
  if (p.M == 0 || p.N == 0) return cudaSuccess;
  dim3 grid;
  if (!GridOf(p, &grid)) return cudaErrorInvalidConfiguration;
  LaunchK(MatmulGenericKernel, grid, kWarps * 32, 0, stream, p);
  return cudaGetLastError();
}

}  // namespace tessera::cuda
