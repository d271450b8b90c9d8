// MATMUL: out[M.., N] = x[M.., K] * w[N, K]^T (+ bias), weights f32/f16/bf16/q8_b32/q4_b32.
//
// Batch invariance. Every output element is one dot product reduced in a single fixed order,
// the canonical order:
//   1. K's vector part [0, kv), kv = K - K % L (L = Lanes(f32)), is cut into blocks of kKC
//      (a multiple of every L). In a block, one vector accumulator walks k in steps of L with
//      fused multiply-adds (lane l sums k = l, l + L, ...), then its lanes are summed by the
//      halving tree (lane i += lane i + L/2, then i + L/4, ..., down to one: TreeSum).
//   2. The block sums are added in block order: total = b0, total += b1, ...
//   3. The K % L tail is added in order with scalar fma, then the bias.
// The GEMV path (weights decoded in registers, streamed from memory) and the GEMM path (weights
// decoded into an f32 panel, reused across rows; 4 x 4 register tiles whose 16 lane sums come
// out of one shuffle network that adds exactly the pairs of the halving tree) run this sequence
// for each element; they differ only in how many accumulators they keep in flight. Decoding
// f16/bf16/q8/q4 to f32 is exact, so both paths see identical weights. Hence out[m, n] depends
// only on x[m, :], w[n, :] and bias[n]: not on M, the thread count or which column chunk a
// thread took. (The order does depend on L, i.e. on the SIMD target.)
//
// Blocking K is what lets the GEMM keep its working set in cache (GotoBLAS style): for one K
// block, a panel of x rows stays in L2 while every weight group of the thread's columns is
// decoded once into L1 and swept past it, and the partial sums live in `out` between blocks.

#ifndef TESSERA_BACKENDS_CPU_KERNELS_MATMUL_ONCE_
#define TESSERA_BACKENDS_CPU_KERNELS_MATMUL_ONCE_
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <cstdint>
namespace tessera::cpu {
// The K block of the canonical order: a multiple of every target's f32 lane count (and of the
// 32-weight quantization block), small enough that 4 decoded weight rows stay in L1.
constexpr int64_t kMatmulKBlock = 1024;
// Rows of the GEMM's x panel (a K block of them stays in L2: 128 x 1024 floats = 512 KiB).
constexpr int64_t kRowBlock = 128;
// Whether the GEMM reads x packed in its tiles' order (PackGemmXImpl): on unless
// TESSERA_CPU_GEMM_PACK_X=0 (read once per process; for A/B runs: the bits are the same).
bool PackGemmXEnabled();
}  // namespace tessera::cpu
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/kernels_matmul.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "backends/cpu/convert.h"
#include "backends/cpu/ops.h"
#include "backends/cpu/tree_sum.h"
#include "hwy/cache_control.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace tessera::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Weight-row readers: Load returns weights [k, k + Lanes) as f32, Scalar one weight.
// kDenseBytes: bytes per weight of rows stored as plain values (the GEMV prefetches inside their
// streams, RowPrefetch), 0 for the others.
struct RowF32 {
  static constexpr int kDenseBytes = 4;
  const float* row;
  HWY_INLINE VF Load(DF df, int64_t k) const { return hn::LoadU(df, row + k); }
  HWY_INLINE float Scalar(int64_t k) const { return row[k]; }
};

struct RowF16 {
  static constexpr int kDenseBytes = 2;
  const hwy::float16_t* row;
  HWY_INLINE VF Load(DF df, int64_t k) const {
    return hn::PromoteTo(df, hn::LoadU(hn::Rebind<hwy::float16_t, DF>(), row + k));
  }
  HWY_INLINE float Scalar(int64_t k) const {
    uint16_t bits;
    std::memcpy(&bits, row + k, 2);
    return F16ToF32(bits);
  }
};

struct RowBF16 {
  static constexpr int kDenseBytes = 2;
  const hwy::bfloat16_t* row;
  HWY_INLINE VF Load(DF df, int64_t k) const {
    return hn::PromoteTo(df, hn::LoadU(hn::Rebind<hwy::bfloat16_t, DF>(), row + k));
  }
  HWY_INLINE float Scalar(int64_t k) const {
    uint16_t bits;
    std::memcpy(&bits, row + k, 2);
    return Bf16ToF32(bits);
  }
};

// bf16 rows in the packed tile order of packed_weights.h (decode GEMV, opt-in): `row` points at
// the row's first 32-value chunk; its next chunk is a tile's 8 chunks (256 values) further. A
// load of Lanes (<= 32, dividing 32: PackedRowsSupported) values never straddles a chunk.
struct RowBF16Packed {
  static constexpr int kDenseBytes = 0;  // one linear stream per tile: TilePrefetch
  const hwy::bfloat16_t* row;
  static HWY_INLINE int64_t At(int64_t k) { return (k >> 5) * 256 + (k & 31); }
  HWY_INLINE VF Load(DF df, int64_t k) const {
    return hn::PromoteTo(df, hn::LoadU(hn::Rebind<hwy::bfloat16_t, DF>(), row + At(k)));
  }
  HWY_INLINE float Scalar(int64_t k) const {
    uint16_t bits;
    std::memcpy(&bits, row + At(k), 2);
    return Bf16ToF32(bits);
  }
};

// A block's binary16 scale broadcast to all lanes, converted in-register (F16C where present)
// rather than with the scalar bit-twiddling decode.
HWY_INLINE VF BlockScale(DF df, const uint8_t* block) {
  const hn::Rebind<uint16_t, DF> du16;
  const hn::Rebind<hwy::float16_t, DF> df16;
  return hn::PromoteTo(df, hn::BitCast(df16, hn::Set(du16, LoadU16(block))));
}

// Quantized rows: K is a multiple of 32 and Lanes divides 16, so a load never straddles a block
// or a nibble half.
struct RowQ8 {
  static constexpr int kDenseBytes = 0;
  const uint8_t* row;
  HWY_INLINE VF Load(DF df, int64_t k) const {
    const uint8_t* block = row + (k / TSR_QBLOCK) * TSR_BLOCK_Q8_BYTES;
    const int64_t i = k % TSR_QBLOCK;
    const hn::Rebind<int32_t, DF> di;
    const hn::Rebind<int8_t, DF> d8;
    const auto q = hn::PromoteTo(di, hn::LoadU(d8, reinterpret_cast<const int8_t*>(block + 2 + i)));
    return hn::Mul(hn::ConvertTo(df, q), BlockScale(df, block));
  }
  HWY_INLINE float Scalar(int64_t k) const {
    return DequantQ8(row + (k / TSR_QBLOCK) * TSR_BLOCK_Q8_BYTES, static_cast<int>(k % TSR_QBLOCK));
  }
};

struct RowQ4 {
  static constexpr int kDenseBytes = 0;
  const uint8_t* row;
  HWY_INLINE VF Load(DF df, int64_t k) const {
    const uint8_t* block = row + (k / TSR_QBLOCK) * TSR_BLOCK_Q4_BYTES;
    const int64_t i = k % TSR_QBLOCK;
    const hn::Rebind<int32_t, DF> di;
    const hn::Rebind<uint8_t, DF> d8;
    const auto bytes = hn::PromoteTo(di, hn::LoadU(d8, block + 2 + (i & 15)));
    const auto nib = i < 16 ? hn::And(bytes, hn::Set(di, 15)) : hn::ShiftRight<4>(bytes);
    const VF w = hn::ConvertTo(df, hn::Sub(nib, hn::Set(di, 8)));
    return hn::Mul(w, BlockScale(df, block));
  }
  HWY_INLINE float Scalar(int64_t k) const {
    return DequantQ4(row + (k / TSR_QBLOCK) * TSR_BLOCK_Q4_BYTES, static_cast<int>(k % TSR_QBLOCK));
  }
};

template <class Row>
Row MakeRow(const MatmulProblem& p, int64_t n) {
  if constexpr (std::is_same_v<Row, RowBF16Packed>) {
    // Row n's tile starts where the row-major tile did; its first chunk is the (n % 8)-th.
    return Row{
        reinterpret_cast<const hwy::bfloat16_t*>(p.w + n / 8 * 8 * p.w_row_bytes + n % 8 * 64)};
  } else {
    return Row{reinterpret_cast<decltype(Row::row)>(p.w + n * p.w_row_bytes)};
  }
}

// The halving tree over one vector's lanes (step 1 of the canonical order): lane i += lane
// i + L/2, then i + L/4, ..., lane 0 holds the sum.
HWY_INLINE float TreeSum(DF df, VF v) {
  alignas(64) float t[HWY_MAX_BYTES / sizeof(float)];
  hn::Store(v, df, t);
  for (size_t half = hn::Lanes(df) / 2; half >= 1; half /= 2) {
    for (size_t i = 0; i < half; ++i) t[i] += t[i + half];
  }
  return t[0];
}

// Step 3 of the canonical order for one element: the K % L tail, the bias, the store. `s` is
// the total of the block sums (0 when K < L).
template <class Row>
HWY_INLINE void FinishElement(const MatmulProblem& p, const float* x, const Row& row, int64_t kv,
                              float s, int64_t m, int64_t n) {
  for (int64_t kk = kv; kk < p.K; ++kk) s = std::fma(x[kk], row.Scalar(kk), s);
  if (p.bias != nullptr) s += p.bias[n];
  p.out[m * p.out_row_stride + n * p.out_col_stride] = s;
}

#if HWY_HAVE_SCALABLE
// SVE vectors are sizeless types: they cannot be array elements or struct members, so the SVE
// targets keep their tile accumulators in named variables (a0..a7, c00..c33) where the other
// targets use arrays. An accumulator past the tile's size is never touched and compiles away.
// Each element still walks the canonical order (one vector accumulator per K block, then
// TreeSum), so these tiles give the same bits as the array tiles would on the same target.

// GemvTile's work on one K block [k0, k1): block sums of rows[0, NR) (NR <= 8) into `sums`.
// `pf` carries GemvTile's prefetch progress across blocks.
template <int NR, class Row, class Prefetch>
HWY_INLINE void GemvBlockScalable(DF df, const float* x, const Row* rows, int64_t k0, int64_t k1,
                                  Prefetch* pf, float* sums) {
  static_assert(NR >= 1 && NR <= 8, "GemvBlockScalable keeps at most 8 accumulators");
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const VF z = hn::Zero(df);
  [[maybe_unused]] VF a0 = z, a1 = z, a2 = z, a3 = z, a4 = z, a5 = z, a6 = z, a7 = z;
  for (int64_t k = k0; k < k1; k += L) {
    pf->Step(k * Row::kDenseBytes);
    const VF xv = hn::LoadU(df, x + k);
#define TSR_GEMV_ACC(j) \
  if constexpr ((j) < NR) a##j = hn::MulAdd(xv, rows[j].Load(df, k), a##j)
    TSR_GEMV_ACC(0);
    TSR_GEMV_ACC(1);
    TSR_GEMV_ACC(2);
    TSR_GEMV_ACC(3);
    TSR_GEMV_ACC(4);
    TSR_GEMV_ACC(5);
    TSR_GEMV_ACC(6);
    TSR_GEMV_ACC(7);
#undef TSR_GEMV_ACC
  }
#define TSR_GEMV_SUM(j) \
  if constexpr ((j) < NR) sums[j] = TreeSum(df, a##j)
  TSR_GEMV_SUM(0);
  TSR_GEMV_SUM(1);
  TSR_GEMV_SUM(2);
  TSR_GEMV_SUM(3);
  TSR_GEMV_SUM(4);
  TSR_GEMV_SUM(5);
  TSR_GEMV_SUM(6);
  TSR_GEMV_SUM(7);
#undef TSR_GEMV_SUM
}
#endif  // HWY_HAVE_SCALABLE

// The next tile prefetched as one run of bytes (TilePrefetch), for the rows that are not plain
// values (packed bf16, Q8/Q4 decoded to f32), or for all with TESSERA_CPU_GEMV_ROW_AHEAD=0.
struct NextTilePrefetch {
  TilePrefetch run;
  HWY_INLINE void Step(int64_t /*at*/) { run.Step(); }
};

// The GEMV tile: one row of x against NR weight rows streamed straight from memory, issuing
// `prefetch`'s hints as it goes (Step(byte position in the rows), once per K step): ahead in
// the rows' own streams (RowPrefetch) or the next tile (NextTilePrefetch).
template <int NR, class Row, class Prefetch>
HWY_INLINE void GemvTile(const MatmulProblem& p, int64_t m, int64_t n0, const Row* rows,
                         Prefetch& prefetch) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const int64_t kv = p.K / L * L;
  const float* x = p.x + m * p.x_row_stride;
  float total[NR] = {};
  for (int64_t k0 = 0; k0 < kv; k0 += kMatmulKBlock) {
    const int64_t k1 = std::min(kv, k0 + kMatmulKBlock);
#if HWY_HAVE_SCALABLE
    float block[NR];
    GemvBlockScalable<NR>(df, x, rows, k0, k1, &prefetch, block);
    for (int j = 0; j < NR; ++j) total[j] = k0 == 0 ? block[j] : total[j] + block[j];
#else
    VF acc[NR];
    for (int j = 0; j < NR; ++j) acc[j] = hn::Zero(df);
    for (int64_t k = k0; k < k1; k += L) {
      prefetch.Step(k * Row::kDenseBytes);
      const VF xv = hn::LoadU(df, x + k);
      for (int j = 0; j < NR; ++j) acc[j] = hn::MulAdd(xv, rows[j].Load(df, k), acc[j]);
    }
    for (int j = 0; j < NR; ++j) {
      const float b = TreeSum(df, acc[j]);
      total[j] = k0 == 0 ? b : total[j] + b;
    }
#endif
  }
  for (int j = 0; j < NR; ++j) FinishElement(p, x, rows[j], kv, total[j], m, n0 + j);
}

// Software prefetch. Plain f32/f16/bf16 rows: inside the tile's row streams, 512 bytes ahead
// (RowPrefetch, ops.h; rows over 4 KiB further, DenseRowAhead below): on the Zen 5 dev box
// 0.93-1.0 of the read probe per CPU-second against 0.75-0.87 for the next-tile policy below
// (bf16, Qwen2.5-0.5B and Llama-3.2-1B decode passes, one and two threads,
// backends/cpu/lab/bf16_gemv_lab.cc). Other rows: the next tile, whatever its size. One
// core's GEMV is bound by the cache-line misses it keeps in flight, not by arithmetic, and the
// next tile's linear stream adds misses in flight to those the hardware prefetchers issue for
// the row streams. Measured single-thread (GB of weights per CPU-second, Qwen2.5-0.5B down
// projections, K = 4864): bf16 +14%, q8 +30%, q4 +75%; Llama-3.2-1B layers +13%. The policy
// before that prefetched tiles up to 16 KiB only: TESSERA_CPU_GEMV_PREFETCH_MAX=16384 (with
// TESSERA_CPU_GEMV_ROW_AHEAD=0 for dense rows) brings it back for A/B runs.

// The row streams' prefetch distance for dense rows of `row_bytes`: an eighth of a row, 512 to
// 2048 bytes, or TESSERA_CPU_GEMV_ROW_AHEAD when set (read once per process; 0 = the next-tile
// policy). Long rows want more: Llama-3.2-1B's down projection (rows of 16 KiB, 8 row streams
// 128 KiB apart) read 42-44 GB/s at 512 bytes and 45-47 at 1536-2048 with two threads, where
// rows of 4 KiB (its gate/up/q/o, the LM head) were level from 512 to 2048 and Qwen2.5-0.5B's
// down (9.5 KiB) level from 512 to 2048 (cpu-tg15, docs/benchmarks.md). Hints only: any
// distance gives the same bits. Rows shorter than gemv_next_tile_below (Zen 4: all rows) take
// the next-tile policy (0): on Zen 4 Qwen2.5-0.5B's rows of 1.75 KiB read 29-31 GB/s with it and
// 21-23 with the row streams (two threads, per-op profile), where Zen 5 read them faster with the
// row streams (37 -> 43 GB/s, cpu-bf16). Rows of 4 KiB and more kept the row streams on Zen 4
// while the hints were prefetcht0 (cpu-q32); with prefetcht1 the next tile is 1.04-1.06x faster
// on Llama-3.2-1B's and level on Qwen's (cpu-q33, docs/benchmarks.md).
HWY_INLINE int64_t DenseRowAhead(int64_t row_bytes) {
  static const bool fixed = [] {
    const char* e = std::getenv("TESSERA_CPU_GEMV_ROW_AHEAD");
    return e != nullptr && *e != '\0';
  }();
  if (fixed) return PrefetchPolicy().gemv_row_ahead;
  if (row_bytes < PrefetchPolicy().gemv_next_tile_below) return 0;
  return std::clamp<int64_t>(row_bytes / 8 / 64 * 64, 512, 2048);
}

// One row of x against weight rows [n0, n1), 8 at a time so eight accumulators hide the FMA
// latency.
template <class Row>
void Gemv(const MatmulProblem& p, int64_t m, int64_t n0, int64_t n1) {
  constexpr int kNR = 8;
  const int64_t ahead = Row::kDenseBytes > 0 ? DenseRowAhead(p.w_row_bytes) : 0;
  int64_t n = n0, next = 0;  // next: RowPrefetch's position, carried from tile to tile
  for (; n + kNR <= n1; n += kNR) {
    Row rows[kNR];
    for (int j = 0; j < kNR; ++j) rows[j] = MakeRow<Row>(p, n + j);
    if (ahead > 0) {
      RowPrefetch<kNR> prefetch(p.w + n * p.w_row_bytes, p.w_row_bytes, p.K * Row::kDenseBytes,
                                ahead, next);
      GemvTile<kNR>(p, m, n, rows, prefetch);
      next = prefetch.Next();
      continue;
    }
    const int64_t rows_next = std::min<int64_t>(kNR, n1 - n - kNR);  // rows of the next tile
    const int64_t pf_bytes = std::max<int64_t>(0, rows_next) * p.w_row_bytes;
    const int64_t steps = std::max<int64_t>(1, p.K / static_cast<int64_t>(hn::Lanes(DF())));
    NextTilePrefetch prefetch{
        TilePrefetch(p.w + (n + kNR) * p.w_row_bytes,
                     pf_bytes <= PrefetchPolicy().gemv_max_tile_bytes ? pf_bytes : 0, steps)};
    GemvTile<kNR>(p, m, n, rows, prefetch);
  }
  for (; n < n1; ++n) {
    const Row row = MakeRow<Row>(p, n);
    NextTilePrefetch none{TilePrefetch(p.w, 0, 1)};
    GemvTile<1>(p, m, n, &row, none);
  }
}

// f32 weights of one K block: Load(k) reads element k of the row (k0 <= k < k1).
struct PanelF32 {
  const float* base;  // element k0
  int64_t k0;
  HWY_INLINE VF Load(DF df, int64_t k) const { return hn::LoadU(df, base + (k - k0)); }
};

#if HWY_HAVE_SCALABLE
// GemmTile's block sums for the SVE targets (MR, NR in {1, 4}): sums[i * NR + j] = TreeSum of
// the accumulator of x row i and weight row j over [k0, k1), accumulators c00..c33.
template <int MR, int NR>
HWY_INLINE void GemmSumsScalable(DF df, const float* const* x, const PanelF32* w, int64_t k0,
                                 int64_t k1, float* sums) {
  static_assert((MR == 1 || MR == 4) && (NR == 1 || NR == 4), "GemmTile shapes are 1 or 4");
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const VF z = hn::Zero(df);
  [[maybe_unused]] VF c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
  [[maybe_unused]] VF c20 = z, c21 = z, c22 = z, c23 = z, c30 = z, c31 = z, c32 = z, c33 = z;
  for (int64_t k = k0; k < k1; k += L) {
    const VF w0 = w[0].Load(df, k);
    [[maybe_unused]] VF w1 = z, w2 = z, w3 = z;
    if constexpr (NR == 4) {
      w1 = w[1].Load(df, k);
      w2 = w[2].Load(df, k);
      w3 = w[3].Load(df, k);
    }
#define TSR_GEMM_ROW(i)                      \
  if constexpr ((i) < MR) {                  \
    const VF xv = hn::LoadU(df, x[i] + k);   \
    c##i##0 = hn::MulAdd(xv, w0, c##i##0);   \
    if constexpr (NR == 4) {                 \
      c##i##1 = hn::MulAdd(xv, w1, c##i##1); \
      c##i##2 = hn::MulAdd(xv, w2, c##i##2); \
      c##i##3 = hn::MulAdd(xv, w3, c##i##3); \
    }                                        \
  }
    TSR_GEMM_ROW(0)
    TSR_GEMM_ROW(1)
    TSR_GEMM_ROW(2)
    TSR_GEMM_ROW(3)
#undef TSR_GEMM_ROW
  }
#define TSR_GEMM_SUMS(i)                       \
  if constexpr ((i) < MR) {                    \
    sums[(i)*NR] = TreeSum(df, c##i##0);       \
    if constexpr (NR == 4) {                   \
      sums[(i)*NR + 1] = TreeSum(df, c##i##1); \
      sums[(i)*NR + 2] = TreeSum(df, c##i##2); \
      sums[(i)*NR + 3] = TreeSum(df, c##i##3); \
    }                                          \
  }
  TSR_GEMM_SUMS(0)
  TSR_GEMM_SUMS(1)
  TSR_GEMM_SUMS(2)
  TSR_GEMM_SUMS(3)
#undef TSR_GEMM_SUMS
}
#endif  // HWY_HAVE_SCALABLE

// GCC 12's AVX-512 headers start some intrinsics from _mm512_undefined_*() and then warn about
// it at -O2+ (GCC bug 105593); the values are always fully written.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// x rows [m0, m0 + MR) against NR weight rows over one K block [k0, k1): the block sums go into
// `out` (stored on the first block, added on later ones), and the last block finishes each
// element (tail from the original rows `src`, bias).
// xt: the tile's rows of this K block in the packed order (PackGemmXImpl: the MR rows' vectors of
// step k next to each other), or null to read them from x. Same values, same operations.
template <int MR, int NR, class Row>
HWY_INLINE void GemmTile(const MatmulProblem& p, int64_t m0, int64_t n0, const PanelF32* w,
                         const Row* src, int64_t k0, int64_t k1, bool first, bool last,
                         const float* xt = nullptr) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const float* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = p.x + (m0 + i) * p.x_row_stride;
  float sums[MR * NR];
#if HWY_HAVE_SCALABLE
  (void)L;
  (void)xt;
  GemmSumsScalable<MR, NR>(df, x, w, k0, k1, sums);
#else
  VF acc[MR][NR];
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) acc[i][j] = hn::Zero(df);
  }
  if (xt != nullptr) {
    for (int64_t k = k0; k < k1; k += L, xt += MR * L) {
      VF wv[NR];
      for (int j = 0; j < NR; ++j) wv[j] = w[j].Load(df, k);
      for (int i = 0; i < MR; ++i) {
        const VF xv = hn::Load(df, xt + i * L);
        for (int j = 0; j < NR; ++j) acc[i][j] = hn::MulAdd(xv, wv[j], acc[i][j]);
      }
    }
  } else {
    for (int64_t k = k0; k < k1; k += L) {
      VF wv[NR];
      for (int j = 0; j < NR; ++j) wv[j] = w[j].Load(df, k);
      for (int i = 0; i < MR; ++i) {
        const VF xv = hn::LoadU(df, x[i] + k);
        for (int j = 0; j < NR; ++j) acc[i][j] = hn::MulAdd(xv, wv[j], acc[i][j]);
      }
    }
  }
#endif
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  if constexpr (MR == 4 && NR == 4) {
    __m512 v[16];
    for (int i = 0; i < 16; ++i) v[i] = acc[i / 4][i % 4].raw;
    // Row-contiguous outputs and nothing left of K past this block: the 16 sums stay in one
    // register, row i's four in its 128-bit lane i, and each row's (out +) sums (+ bias) is one
    // 4-lane add and store. Each lane is the scalar path's operation (the same operands, the
    // same order: the block sums added to the earlier total, then the bias), so the bits are
    // those of the loop below. Stored to the stack and read back one float at a time (16
    // narrow reloads of a 64-byte store, then 16 scalar stores), the epilogue drew ~25% of the
    // GEMM's perf samples at K = 896; this alone: +2-11% flops per CPU-second (cpu-pp17,
    // docs/benchmarks.md).
    if (p.out_col_stride == 1 && (!last || k1 == p.K)) {
      const __m512 t = _mm512_permutexvar_ps(
          _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15),
          TreeSum16Lanes(v));
      const bool bias = last && p.bias != nullptr;
      const __m128 b = bias ? _mm_loadu_ps(p.bias + n0) : _mm_setzero_ps();
      float* o = p.out + m0 * p.out_row_stride + n0;
      const auto row = [&](__m128 s) {
        if (!first) s = _mm_add_ps(_mm_loadu_ps(o), s);
        if (bias) s = _mm_add_ps(s, b);
        _mm_storeu_ps(o, s);
        o += p.out_row_stride;
      };
      row(_mm512_castps512_ps128(t));
      row(_mm512_extractf32x4_ps(t, 1));
      row(_mm512_extractf32x4_ps(t, 2));
      row(_mm512_extractf32x4_ps(t, 3));
      return;
    }
    TreeSum16(v, sums);
  } else
#endif
#if !HWY_HAVE_SCALABLE
  {
    for (int i = 0; i < MR; ++i) {
      for (int j = 0; j < NR; ++j) sums[i * NR + j] = TreeSum(df, acc[i][j]);
    }
  }
#endif
  const int64_t kv = k1;  // the last block ends the vector part
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      float* o = p.out + (m0 + i) * p.out_row_stride + (n0 + j) * p.out_col_stride;
      const float s = first ? sums[i * NR + j] : *o + sums[i * NR + j];
      if (last) {
        FinishElement(p, x[i], src[j], kv, s, m0 + i, n0 + j);
      } else {
        *o = s;
      }
    }
  }
}
#pragma GCC diagnostic pop

// The weight bytes the GEMM decodes soon (a later group of rows: kGemmPrefetchGroups),
// prefetched into L2 a few lines per register tile while the current group runs. Without it
// each group's decode waits for DRAM: ~11% of a bf16 prefill's kernel samples sat on the
// decode's loads; with it the prefill GEMM does 4-5% more flops per CPU-second (single thread,
// Qwen2.5-0.5B, 512 rows). L2, not L1: the x panel streams through L1 between now and the decode.
struct GemmPrefetch {
  const uint8_t* base = nullptr;  // the first row's first byte
  int64_t row_stride = 0, row_bytes = 0;
  int64_t lines = 0, done = 0;  // lines in all, lines issued

  // Issues the lines due after `step` of `steps`.
  HWY_INLINE void Advance(int64_t step, int64_t steps) {
    const int64_t per_row = (row_bytes + 63) / 64;
    for (const int64_t due = lines * step / steps; done < due; ++done) {
      __builtin_prefetch(base + (done / per_row) * row_stride + (done % per_row) * 64, 0, 2);
    }
  }
};

// Rows [m0, m1) against nr (<= 4) weight rows over one K block. xp: the panel's whole 4-row
// tiles packed (PackGemmXImpl), or null.
template <class Row>
void GemmBlock(const MatmulProblem& p, int64_t m0, int64_t m1, int64_t n, int nr, const PanelF32* w,
               const Row* src, int64_t k0, int64_t k1, bool first, bool last, GemmPrefetch* pf,
               const float* xp) {
  const int64_t tile_floats = 4 * (k1 - k0);  // one packed tile
  if (nr == 4) {
    const int64_t tiles = (m1 - m0) / 4;
    int64_t m = m0, t = 0;
    for (; m + 4 <= m1; m += 4) {
      pf->Advance(++t, tiles);
      GemmTile<4, 4>(p, m, n, w, src, k0, k1, first, last,
                     xp != nullptr ? xp + (t - 1) * tile_floats : nullptr);
    }
    for (; m < m1; ++m) GemmTile<1, 4>(p, m, n, w, src, k0, k1, first, last);
    return;
  }
  for (int j = 0; j < nr; ++j) {
    int64_t m = m0;
    for (int64_t t = 0; m + 4 <= m1; m += 4, ++t) {
      GemmTile<4, 1>(p, m, n + j, w + j, src + j, k0, k1, first, last,
                     xp != nullptr ? xp + t * tile_floats : nullptr);
    }
    for (; m < m1; ++m) GemmTile<1, 1>(p, m, n + j, w + j, src + j, k0, k1, first, last);
  }
}

// The GEMM's x packed in its tiles' order (here the tiles [t0, t1)), so a 4 x 4 tile's loads
// are one sequential stream: for K block [k0, k1) and the 4-row tile t (rows 4t..4t+3 of the
// Mt = M / 4 * 4 whole-tile rows), step s (k = k0 + s L) holds the four rows' vectors
// [k, k + L) one after another at Mt k0 + t 4 (k1 - k0) + s 4 L; a panel of rows [mb, ...)
// starts at Mt k0 + mb (k1 - k0). Read from four rows of x at once (four streams 3.5-19 KiB
// apart), the tile's loop ran ~25% slower than from this order (Zen 5, K = 896, a lab loop
// without the epilogue; cpu-pp17, docs/benchmarks.md). Copies only: the tiles' arithmetic and
// bits are the same either way. Packed once per matmul (or group of sibling matmuls of one x)
// and shared by every column task: packed per task (each task its panel), the copies and the
// original rows crowded L2 and the weight decode's prefetched lines (+7.5% against +13% for
// the shared copy, Qwen down projection, one thread).
void PackGemmXImpl(const MatmulProblem& p, int64_t t0, int64_t t1, float* xp) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const int64_t kv = p.K / L * L, mt = p.M / 4 * 4;
  for (int64_t k0 = 0; k0 < kv; k0 += kMatmulKBlock) {
    const int64_t k1 = std::min(kv, k0 + kMatmulKBlock);
    for (int64_t t = t0; t < t1; ++t) {
      for (int i = 0; i < 4; ++i) {
        const float* x = p.x + (4 * t + i) * p.x_row_stride;
        float* d = xp + mt * k0 + t * 4 * (k1 - k0) + i * L;
        for (int64_t k = k0; k < k1; k += L, d += 4 * L) hn::Store(hn::LoadU(df, x + k), df, d);
      }
    }
  }
}

// Floats of PackGemmXImpl's copy of p.x; 0 where the GEMM reads x itself (SVE targets: their
// tiles keep named accumulators, GemmSumsScalable).
size_t GemmPackedXFloatsImpl(int64_t M, int64_t K) {
#if HWY_HAVE_SCALABLE
  (void)M;
  (void)K;
  return 0;
#else
  const int64_t L = static_cast<int64_t>(hn::Lanes(DF()));
  return static_cast<size_t>(M / 4 * 4 * (K / L * L));
#endif
}

// Groups of 4 weight rows between the one the GEMM decodes and the one it prefetches. With x
// packed (PackGemmXImpl) a group's tiles run faster, and the next group's lines were not in L2
// in time: on the Qwen2.5-0.5B gate GEMM an L1 hint 1 group ahead gave +3% flops per
// CPU-second over the L2 hint 1 group ahead, and the L2 hint 2 groups ahead +6% over that
// (the down projection level) (cpu-pp17, docs/benchmarks.md).
constexpr int64_t kGemmPrefetchGroups = 2;

// What Gemm decodes kGemmPrefetchGroups groups after group n of the panel ending at row me in K
// block [k0, k1): later rows of the chunk [n0, n1), else (wrapping) the chunk's first rows for
// the next panel or, after the last panel, for the next K block. None past the last block (or
// with TESSERA_CPU_GEMM_PREFETCH=0).
HWY_INLINE GemmPrefetch NextGroup(const MatmulProblem& p, int64_t me, int64_t n, int64_t n0,
                                  int64_t n1, int64_t k0, int64_t k1, int64_t kv) {
  GemmPrefetch pf;
  int64_t pn = n + 4 * kGemmPrefetchGroups, pk = k0;
  if (pn >= n1) {
    pn = n0 + std::min(pn - n1, n1 - n0 - 1) / 4 * 4;
    if (me >= p.M) pk = k1;
  }
  if (pk >= kv || !PrefetchPolicy().gemm) return pf;
  const int64_t pk1 = std::min(kv, pk + kMatmulKBlock);
  if (p.w_packed) {
    // Packed bf16 (packed_weights.h): [pk, pk1) of the 8-row tile is one run of bytes, for the
    // tile's first group of 4 rows (the second finds it in cache).
    if (pn % 8 != 0) return pf;
    pf.base = p.w + pn * p.w_row_bytes + pk * 16;
    pf.row_bytes = (pk1 - pk) * 16;
    pf.row_stride = pf.row_bytes;
    pf.lines = (pf.row_bytes + 63) / 64;
    return pf;
  }
  // Byte range of [pk, pk1) in a row, any dtype (a hint: the quantized ones are rounded to
  // whole lines anyway).
  pf.base = p.w + pn * p.w_row_bytes + pk * p.w_row_bytes / p.K;
  pf.row_stride = p.w_row_bytes;
  pf.row_bytes = (pk1 - pk) * p.w_row_bytes / p.K;
  pf.lines = std::min<int64_t>(4, n1 - pn) * ((pf.row_bytes + 63) / 64);
  return pf;
}

// Many rows, GotoBLAS style: per K block, x is cut into panels of kRowBlock rows (L2) and each
// group of 4 weight rows is decoded once per panel into `scratch` (L1) and reused by all its
// rows; partial sums wait in `out` between K blocks.
template <class Row>
void Gemm(const MatmulProblem& p, int64_t n0, int64_t n1, float* scratch) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const int64_t kv = p.K / L * L;
  if (kv == 0) {  // K < L: nothing but the tail
    for (int64_t m = 0; m < p.M; ++m) {
      for (int64_t n = n0; n < n1; ++n) {
        FinishElement(p, p.x + m * p.x_row_stride, MakeRow<Row>(p, n), 0, 0.0f, m, n);
      }
    }
    return;
  }
  for (int64_t k0 = 0; k0 < kv; k0 += kMatmulKBlock) {
    const int64_t k1 = std::min(kv, k0 + kMatmulKBlock);
    for (int64_t mb = 0; mb < p.M; mb += kRowBlock) {
      const int64_t me = std::min(p.M, mb + kRowBlock);
      const float* xp = p.xp != nullptr ? p.xp + p.M / 4 * 4 * k0 + mb * (k1 - k0) : nullptr;
      for (int64_t n = n0; n < n1; n += 4) {
        const int nr = static_cast<int>(std::min<int64_t>(4, n1 - n));
        Row src[4];
        PanelF32 w[4];
        for (int j = 0; j < nr; ++j) {
          src[j] = MakeRow<Row>(p, n + j);
          if constexpr (std::is_same_v<Row, RowF32>) {
            w[j] = PanelF32{src[j].row + k0, k0};
          } else {
            float* d = scratch + j * kMatmulKBlock;
            for (int64_t k = k0; k < k1; k += L) hn::StoreU(src[j].Load(df, k), df, d + (k - k0));
            w[j] = PanelF32{d, k0};
          }
        }
        GemmPrefetch pf = NextGroup(p, me, n, n0, n1, k0, k1, kv);
        GemmBlock(p, mb, me, n, nr, w, src, k0, k1, k0 == 0, k1 == kv, &pf, xp);
      }
    }
  }
}

template <class Row>
void Columns(const MatmulProblem& p, int64_t n0, int64_t n1, float* scratch) {
  // Up to two rows the weights are cheaper to stream twice than to decode into a panel.
  if (p.M <= 2) {
    for (int64_t m = 0; m < p.M; ++m) Gemv<Row>(p, m, n0, n1);
  } else {
    Gemm<Row>(p, n0, n1, scratch);
  }
}

size_t F32LanesImpl() {
  return hn::Lanes(DF());
}

void MatmulColumnsImpl(const MatmulProblem& p, int64_t n0, int64_t n1, float* scratch) {
  switch (p.w_dtype) {
    case TSR_DTYPE_F32: return Columns<RowF32>(p, n0, n1, scratch);
    case TSR_DTYPE_F16: return Columns<RowF16>(p, n0, n1, scratch);
    case TSR_DTYPE_BF16:
      return p.w_packed ? Columns<RowBF16Packed>(p, n0, n1, scratch)
                        : Columns<RowBF16>(p, n0, n1, scratch);
    case TSR_DTYPE_Q8_B32:
      return p.qx != nullptr ? QMatmulColumns(p, n0, n1) : Columns<RowQ8>(p, n0, n1, scratch);
    case TSR_DTYPE_Q4_B32:
      return p.qx != nullptr ? QMatmulColumns(p, n0, n1) : Columns<RowQ4>(p, n0, n1, scratch);
    default: return;  // rejected by validation
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tessera::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tessera::cpu {

HWY_EXPORT(MatmulColumnsImpl);
HWY_EXPORT(F32LanesImpl);
HWY_EXPORT(PackGemmXImpl);
HWY_EXPORT(GemmPackedXFloatsImpl);

bool PackGemmXEnabled() {
  static const bool on = [] {
    const char* e = std::getenv("TESSERA_CPU_GEMM_PACK_X");
    return e == nullptr || *e == '\0' || std::atoi(e) != 0;
  }();
  return on;
}

bool PackedRowsSupported() {
  const size_t lanes = HWY_DYNAMIC_DISPATCH(F32LanesImpl)();
  return lanes <= 32 && 32 % lanes == 0;
}

namespace {
// AMD family 0x19 with AVX-512: Zen 4 (Zen 3, the same family, has no AVX-512).
bool IsZen4() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(0, &a, &b, &c, &d) == 0) return false;
  const bool amd = b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163;  // "AuthenticAMD"
  if (!amd || __get_cpuid(1, &a, &b, &c, &d) == 0) return false;
  const unsigned family = ((a >> 8) & 0xf) + (((a >> 8) & 0xf) == 0xf ? (a >> 20) & 0xff : 0);
  if (family != 0x19 || __get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return false;
  return (b >> 16) & 1;  // AVX512F
#else
  return false;
#endif
}
}  // namespace

// Zen 4 (the dev box's host since cpu-q32): dense rows take the next-tile prefetch (see
// DenseRowAhead; with prefetcht1, rows of every length: Llama-3.2-1B's 4 and 16 KiB rows read
// 1.04-1.06x faster that way than in their row streams, paired matmul_lab passes, Qwen2.5-0.5B
// level; cpu-q33), and every GEMV prefetch is a prefetcht1. With prefetcht0 the Q8 / Q4 decode
// passes read 16-22 GB/s of the 28-31 probe; with prefetcht1 (same lines, same places) the
// whole-pass A/B (matmul_lab --rows 1 --threads 2 --repack --ab, 20 pairs) ran q8 1.18 / 1.19x,
// q4 1.24 / 1.13x, bf16 1.04 / 1.11x (Qwen2.5-0.5B / Llama-3.2-1B), and engine tg64 q8 35-39 ->
// 45-48 t/s on the Qwen shape (cpu-q33, docs/benchmarks.md). Other CPUs keep prefetcht0, the
// policy measured on them: no Zen 5 host to measure prefetcht1 on now, and on the GPU machine's
// Xeon it was faster on two threads for q8 / q4 but mixed on 16 (one or two runs, cpu-q33).
const MatmulPrefetchPolicy& PrefetchPolicy() {
  static const MatmulPrefetchPolicy policy = [] {
    MatmulPrefetchPolicy p;
    // Unset or empty: the default.
    const char* e = std::getenv("TESSERA_CPU_GEMV_PREFETCH_MAX");
    if (e != nullptr && *e != '\0') p.gemv_max_tile_bytes = std::atoll(e);
    e = std::getenv("TESSERA_CPU_GEMM_PREFETCH");
    if (e != nullptr && *e != '\0') p.gemm = std::atoi(e) != 0;
    e = std::getenv("TESSERA_CPU_GEMV_ROW_AHEAD");
    if (e != nullptr && *e != '\0') p.gemv_row_ahead = std::max<int64_t>(0, std::atoll(e));
    if (IsZen4()) {
      p.gemv_next_tile_below = INT64_MAX;
      p.gemv_t1 = true;
    }
    e = std::getenv("TESSERA_CPU_GEMV_PREFETCH_T1");
    if (e != nullptr && *e != '\0') p.gemv_t1 = std::atoi(e) != 0;
    return p;
  }();
  return policy;
}

void MatmulColumns(const MatmulProblem& p, int64_t n0, int64_t n1, float* scratch) {
  HWY_DYNAMIC_DISPATCH(MatmulColumnsImpl)(p, n0, n1, scratch);
}

size_t MatmulScratchFloats(int64_t /*K*/) {
  return static_cast<size_t>(4 * kMatmulKBlock);  // one K block of 4 decoded weight rows
}

namespace {

// The most weight bytes one decode task reads (M <= 2, the GEMV path): 1 MiB, or
// TESSERA_CPU_GEMV_TASK_BYTES (read once per process; 0 = no cap, the split before 2026-11-27).
int64_t GemvTaskBytes() {
  static const int64_t bytes = [] {
    const char* e = std::getenv("TESSERA_CPU_GEMV_TASK_BYTES");
    return e != nullptr && *e != '\0' ? std::max<int64_t>(0, std::atoll(e)) : int64_t{1} << 20;
  }();
  return bytes;
}

// Columns per task: a multiple of 8 (the GEMV group), about four tasks a thread, and for decode
// rows at most GemvTaskBytes() of weights a task. Tasks are claimed dynamically, so a job ends
// when the thread on the last task finishes it: with four 4-64 MB tasks a thread (Llama-3.2-1B's
// gate/up/down and LM head) the other thread sat idle 10-13% of a decode step's pool time, with
// 1 MiB tasks 4-6%, Llama bf16 tg64 +7% (cpu-tg14, docs/benchmarks.md). A task's start costs
// ~0.5 us (its prefetch streams start cold): on one thread 1 MiB tasks read at the rate of 4 MiB
// ones, 64 KiB ones 20-25% slower. The canonical order does not depend on the split: same bits.
int64_t ColumnChunk(const MatmulProblem& p, int threads) {
  const int64_t want = static_cast<int64_t>(threads) * 4;
  int64_t chunk = (p.N + want - 1) / want;
  const int64_t cap = GemvTaskBytes();
  // One thread has no other thread to wait for: its tasks stay large (each start costs).
  if (p.M <= 2 && threads > 1 && cap > 0 && p.w_row_bytes > 0)
    chunk = std::min(chunk, cap / p.w_row_bytes);
  return std::max<int64_t>(16, (chunk + 7) / 8 * 8);
}

// Whether p runs on int8 activations (the int8 dot over Q8/Q4 weights).
bool NeedsQuantizedActs(const MatmulProblem& p) {
  return p.int8_dot != Int8Dot::kOff && IsQuantized(p.w_dtype) && p.K % TSR_QBLOCK == 0 && p.M > 0;
}

// Whether QuantizeActRows and LayoutQuantizedActs give a and b the same int8 rows: the same x,
// rows, K, offset (w_dtype), operand order (w_packed) and int8 path.
bool SameQuantizedActs(const MatmulProblem& a, const MatmulProblem& b) {
  return a.x == b.x && a.x_row_stride == b.x_row_stride && a.M == b.M && a.K == b.K &&
         a.w_dtype == b.w_dtype && a.w_packed == b.w_packed && a.int8_dot == b.int8_dot;
}

// Problem s's owner among problems [0, s]: the first earlier owner t with same(problems[t],
// problems[s]) (sibling matmuls of one x share t's copy), else s itself; -1 where s needs no copy
// (!needs). Call in order s = 0, 1, ...: it reads the owners already set.
template <class Same>
int64_t CopyOwner(const MatmulProblem* problems, int64_t s, bool needs,
                  const std::vector<int64_t>& owner, Same same) {
  if (!needs) return -1;
  for (int64_t t = 0; t < s; ++t) {
    if (owner[t] == t && same(problems[t], problems[s])) return t;
  }
  return s;
}

// Q8/Q4 weights: quantizes every problem's activation rows once (rows split across the pool
// when there are many) and points the problems at them. Problems that would quantize the same
// rows identically (sibling matmuls of one x: SameQuantizedActs) share one copy. `storage`
// keeps them alive.
void QuantizeActivations(MatmulProblem* problems, int64_t n_problems, ThreadPool* pool,
                         std::vector<uint8_t>* storage, std::vector<QuantizedActs>* acts) {
  thread_local std::vector<int64_t> owner;  // the problem whose copy problem s reads, or -1
  owner.assign(static_cast<size_t>(n_problems), -1);
  size_t bytes = 0;
  int64_t tasks = 0;
  constexpr int64_t kRowsPerTask = 16;
  for (int64_t s = 0; s < n_problems; ++s) {
    owner[s] = CopyOwner(problems, s, NeedsQuantizedActs(problems[s]), owner, SameQuantizedActs);
    if (owner[s] != s) continue;
    bytes += QuantizedActBytes(problems[s].M, problems[s].K);
    tasks += (problems[s].M + kRowsPerTask - 1) / kRowsPerTask;
  }
  if (tasks == 0) return;
  storage->resize(bytes);
  acts->resize(static_cast<size_t>(n_problems));
  // Row tasks: (owner, first row). (A reference: the pool's threads must see the caller's.)
  thread_local std::vector<std::pair<int64_t, int64_t>> task_rows_storage;
  std::vector<std::pair<int64_t, int64_t>>& task_rows = task_rows_storage;
  task_rows.clear();
  size_t at = 0;
  for (int64_t s = 0; s < n_problems; ++s) {
    if (owner[s] < 0) continue;
    if (owner[s] == s) {
      const MatmulProblem& p = problems[s];
      (*acts)[s] = LayoutQuantizedActs(storage->data() + at, p.M, p.K, p.w_packed);
      at += QuantizedActBytes(p.M, p.K);
      for (int64_t m0 = 0; m0 < p.M; m0 += kRowsPerTask) task_rows.emplace_back(s, m0);
    }
    problems[s].qx = &(*acts)[owner[s]];
  }
  auto run = [&](int64_t task, int) {
    const auto [s, m0] = task_rows[task];
    QuantizeActRows(problems[s], (*acts)[s], m0, std::min(problems[s].M, m0 + kRowsPerTask));
  };
  if (tasks == 1) {
    run(0, 0);  // decode: not worth a pool round trip
  } else {
    pool->ParallelFor(tasks, run);
  }
}

// The GEMM path's x (M >= 4 rows, f32 activations): packed in the tiles' order once for every
// problem that runs the GEMM (PackGemmXImpl), rows split across the pool, and shared by the
// problems of one x (q, k, v; gate, up). `storage` keeps it alive (and its capacity, like the
// int8 activations'). A copy over kMaxPackedXBytes (e.g. a 2048-row prefill step's down
// projection of an 8B model) is not made: those GEMMs read x itself (same bits).
constexpr size_t kMaxPackedXBytes = size_t{64} << 20;
void PackActivations(MatmulProblem* problems, int64_t n_problems, ThreadPool* pool,
                     std::vector<float>* storage) {
  if (!PackGemmXEnabled()) return;
  // The problem whose copy s reads; its offset. (References: the pool's threads must see the
  // caller's thread_local tables.)
  thread_local std::vector<int64_t> owner_storage, at_storage;
  std::vector<int64_t>& owner = owner_storage;
  std::vector<int64_t>& at = at_storage;
  owner.assign(static_cast<size_t>(n_problems), -1);
  at.assign(static_cast<size_t>(n_problems), 0);
  size_t floats = 0;
  for (int64_t s = 0; s < n_problems; ++s) {
    const MatmulProblem& p = problems[s];
    // Not the GEMV (M <= 2) nor the int8 path.
    const size_t n =
        p.M < 4 || p.qx != nullptr ? 0 : HWY_DYNAMIC_DISPATCH(GemmPackedXFloatsImpl)(p.M, p.K);
    owner[s] = CopyOwner(problems, s, n > 0 && n * sizeof(float) <= kMaxPackedXBytes, owner,
                         [](const MatmulProblem& o, const MatmulProblem& q) {
                           return o.x == q.x && o.x_row_stride == q.x_row_stride && o.M == q.M &&
                                  o.K == q.K;
                         });
    if (owner[s] != s) continue;
    at[s] = static_cast<int64_t>(floats);
    floats += (n + 15) / 16 * 16;  // each copy 64-byte aligned
  }
  if (floats == 0) return;
  storage->resize(floats + 16);
  float* base = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(storage->data()) + 63) &
                                         ~uintptr_t{63});
  // Tasks: (owner, first tile), 16 tiles (64 rows) each. (A reference: the pool's threads must
  // see the caller's.)
  constexpr int64_t kTilesPerTask = 16;
  thread_local std::vector<std::pair<int64_t, int64_t>> task_storage;
  std::vector<std::pair<int64_t, int64_t>>& tasks = task_storage;
  tasks.clear();
  for (int64_t s = 0; s < n_problems; ++s) {
    if (owner[s] < 0) continue;
    if (owner[s] == s) {
      for (int64_t t0 = 0; t0 < problems[s].M / 4; t0 += kTilesPerTask) tasks.emplace_back(s, t0);
    }
    problems[s].xp = base + at[owner[s]];
  }
  auto run = [&](int64_t task, int) {
    const auto [s, t0] = tasks[task];
    const int64_t t1 = std::min(problems[s].M / 4, t0 + kTilesPerTask);
    HWY_DYNAMIC_DISPATCH(PackGemmXImpl)(problems[s], t0, t1, base + at[s]);
  };
  if (tasks.size() == 1) {
    run(0, 0);
  } else {
    pool->ParallelFor(static_cast<int64_t>(tasks.size()), run);
  }
}

// Runs n_problems independent problems (batch slices, or sibling matmuls of one x with their
// own N, weights and dtypes) with all their columns split across the pool in one job. Problem
// s's columns are cut into chunks of ColumnChunk(its N) exactly as when it runs alone; every
// element is computed by the same code either way (the canonical order does not depend on the
// chunk or the thread).
void RunProblems(MatmulProblem* problems, int64_t n_problems, ThreadPool* pool, Workspace* ws) {
  if (n_problems == 0) return;
  // Per calling thread: the activations of the running matmul, reused so decode never allocates.
  thread_local std::vector<uint8_t> act_storage;
  thread_local std::vector<QuantizedActs> acts;
  QuantizeActivations(problems, n_problems, pool, &act_storage, &acts);
  thread_local std::vector<float> xpack_storage;
  PackActivations(problems, n_problems, pool, &xpack_storage);
  const int threads = pool->num_threads();
  size_t scratch_floats = 0;
  for (int64_t s = 0; s < n_problems; ++s)
    scratch_floats = std::max(scratch_floats, MatmulScratchFloats(problems[s].K));
  // begin[s]: problem s's first task; its tasks cover its columns in chunks of chunk[s].
  // (References: the pool's threads must see the caller's thread_local tables.)
  thread_local std::vector<int64_t> begin_storage, chunk_storage;
  std::vector<int64_t>& begin = begin_storage;
  std::vector<int64_t>& chunk = chunk_storage;
  begin.resize(static_cast<size_t>(n_problems) + 1);
  chunk.resize(static_cast<size_t>(n_problems));
  begin[0] = 0;
  for (int64_t s = 0; s < n_problems; ++s) {
    chunk[s] = ColumnChunk(problems[s], threads);
    begin[s + 1] = begin[s] + (problems[s].N + chunk[s] - 1) / chunk[s];
  }
  if (begin[n_problems] == 0) return;
  pool->ParallelFor(begin[n_problems], [&](int64_t task, int thread) {
    const int64_t s = std::upper_bound(begin.begin(), begin.end(), task) - begin.begin() - 1;
    const MatmulProblem& p = problems[s];
    const int64_t n0 = (task - begin[s]) * chunk[s];
    MatmulColumns(p, n0, std::min(p.N, n0 + chunk[s]), ws->Floats(thread, scratch_floats));
  });
}

// Element stride of dim i of an f32 tensor.
int64_t F32Stride(const TensorRef& t, int i) {
  return t.stride(i) / 4;
}

}  // namespace

void MatmulParallel(const MatmulProblem& p, ThreadPool* pool, Workspace* ws) {
  MatmulProblem copy = p;
  RunProblems(&copy, 1, pool, ws);
}

namespace {

// a's problems (one per slice of x), appended to `problems`.
void AddMatmulProblems(const OpArgs& a, std::vector<MatmulProblem>* problems) {
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  const TensorRef& out = *a.out;
  const TensorRef* bias = a.input(2);
  // x is viewed as slices [S][M, K]: S = product of the dims above the last two.
  if (out.NumElements() == 0) return;
  const int64_t M = x.ndim >= 2 ? x.dim(-2) : 1;
  const int64_t S = backend::NumMatrices(x);
  for (int64_t s = 0; s < S; ++s) {
    MatmulProblem& p = problems->emplace_back();
    p.x = reinterpret_cast<const float*>(x.data + backend::MatrixOffset(x, x, s));
    p.x_row_stride = F32Stride(x, -2);
    p.M = M;
    p.K = w.dim(-1);
    p.N = w.dim(-2);
    p.w = w.data + (w.ndim == 3 ? s * w.nb[0] : 0);
    p.w_row_bytes = w.stride(-2);
    p.w_dtype = w.dtype;
    p.bias = bias != nullptr ? bias->As<const float>() : nullptr;
    p.out = reinterpret_cast<float*>(out.data + backend::MatrixOffset(x, out, s));
    p.out_row_stride = F32Stride(out, -2);
    p.out_col_stride = F32Stride(out, -1);
    p.int8_dot = a.int8_dot;
    if (a.packed_w != nullptr && w.ndim == 2) {  // one weight matrix for every slice
      p.w = a.packed_w;
      p.w_packed = true;
    }
  }
}

}  // namespace

Status RunMatmul(const OpArgs& a) {
  std::vector<MatmulProblem> problems;
  AddMatmulProblems(a, &problems);
  RunProblems(problems.data(), static_cast<int64_t>(problems.size()), a.pool, a.ws);
  return OkStatus();
}

Status RunMatmulGroup(const OpArgs* const* group, int n) {
  thread_local std::vector<MatmulProblem> problems;  // decode: no allocation per step
  problems.clear();
  for (int i = 0; i < n; ++i) AddMatmulProblems(*group[i], &problems);
  RunProblems(problems.data(), static_cast<int64_t>(problems.size()), group[0]->pool, group[0]->ws);
  return OkStatus();
}

}  // namespace tessera::cpu
#endif  // HWY_ONCE
