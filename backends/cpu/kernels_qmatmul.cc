// MATMUL with Q8_B32 / Q4_B32 weights: integer dot products against int8-quantized activations.
//
// Decode is bound by weight bytes, and decoding 4- or 8-bit weights to f32 for FMAs costs more
// instructions than the bytes save; an int8 x int8 dot (AVX-512 VNNI vpdpbusd: 64 products a
// instruction) keeps up with memory. So each activation row is quantized once per matmul, per
// 32-value block: dx = amax / 127, q = round-to-nearest-even(x * (127 / amax)) (0 when amax is 0).
//
// The canonical order (every path computes exactly this, so results are batch-invariant and the
// same on every CPU; see kernels_matmul.cc for the float dtypes):
//   K is walked in supersteps of 512 values (16 blocks, 16 S .. 16 S + 15). A superstep has 16
//   lanes; lane l belongs to block 16 S + B(l), B(l) = 4 (l % 4) + l / 4. Per lane:
//     isum = sum of the block's 32 products w[k] * q[k]     (exact, int32)
//     acc[l] = fma(float(isum), dw[block] * dx[block], acc[l])
//   (w is the signed weight: q8 value, or q4 nibble - 8). A last superstep with fewer than 16
//   blocks updates only the lanes of the blocks it has. Then the 16 lanes are summed by the
//   halving tree (l += l + 8, + 4, + 2, + 1), then the bias is added.
// Why whole blocks: vpdpbusd, the f32 multiply and the FMA share the same two vector pipes
// (Zen 5: a vpdpbusd + FMA pair issues at half the vpdpbusd rate), so the float update per
// integer sum is what bounds the GEMM. Lanes of a quarter block (2 vpdpbusd + multiply + FMA per
// lane, the order before 2026-11-26 evening) capped it at half the vpdpbusd peak; a whole block
// per lane is 8 vpdpbusd + multiply + FMA (cap 0.8). B(l) is the order the GEMV gets for free:
// it still unpacks 128-value steps, where lane 4 j + g holds values 4 g .. 4 g + 3 and
// 16 + 4 g .. 16 + 4 g + 3 of the step's block j (one byte permute of 72 bytes for Q4: byte i
// of a Q4 block holds values i and i + 16; two of 136 bytes for Q8; the four scales from the
// same registers), takes the 8-product sums of four steps' lanes and adds each block's four
// with one 4 x 4 in-lane transpose (TransposeSum): lane 4 j + s then holds step s's block j.
// The GEMM unpacks each weight row once per activation panel into the same transposed
// operands (operand k, lane l: values 4 k .. 4 k + 3 of block B(l)) and reads activations
// quantized in that order (QuantizedActs::blocked). Weights stored in that operand order
// (packed_weights.h, plugin option repack, by default on the VNNI path) need neither the
// permutes, the fold nor the unpack: the GEMV reads 8 operands per row and superstep against
// activations quantized blocked (TileOperands), the GEMM copies them into its panel. The GEMM's
// register tiles: 3 x 4 at every K (compiled in kernels_qgemm.cc; 1 x 8 in this unit, a lab
// switch: kernels_qmatmul-inl.h, before GemmPanels); every tile computes each output's lanes alone.
// vpdpbusd multiplies unsigned by signed bytes, so the VNNI path feeds it w + 128 (q8, a sign
// flip) or the raw nibble (q4) and starts each block's sum at -128 (or -8) x the block's sum of
// q, precomputed with the activations: the integer result is the same sum of products.
// The activations are stored per superstep: in the step order (GEMV), step s's bytes [0, 64)
// hold values 0-15 of each of its blocks (block j at 16 j), bytes [64, 128) values 16-31; in the
// operand order (GEMM, `blocked`), operand k's byte 4 l + b is value 4 k + b of block B(l).
// The portable path (no VNNI, or the "int8_dot=portable" context option) computes the same
// lanes with scalar code; every step is exact or one IEEE operation, so the bits agree.
// The path is opt-in (context option int8_dot=on; engine --quantize sets it): the ABI's MATMUL
// takes f32 activations, and by default Q8/Q4 weights are decoded to f32 (kernels_matmul.cc).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backends/cpu/convert.h"
#include "backends/cpu/ops.h"
// GCC 12 may flag TreeSum16's _mm512_undefined_ps() starts as -Wuninitialized (GCC bug 105593;
// see below; it did so while it compiled the function out of line here).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "backends/cpu/tree_sum.h"
#pragma GCC diagnostic pop

#if defined(__x86_64__) || defined(__i386__)
#define TSR_CPU_X86 1
#include <immintrin.h>
#else
#define TSR_CPU_X86 0
#endif

namespace tessera::cpu {

// QMatmulColumns is defined where this file is compiled again as kernels_qgemm.cc
// (TSR_QGEMM_TU): the int8 GEMM's 3 x 4 register tiles (GemmPanels<3, 4>; Int8GemmTile3x4),
// else this unit's paths (the GEMV, the 1 x 8 GEMM tiles, portable).
void QMatmulColumnsMain(const MatmulProblem& p, int64_t n0, int64_t n1);

namespace {

constexpr int kLanes = 16;                   // lanes of the canonical order (one 512-bit vector)
constexpr int kStep = 128;                   // values per step
constexpr int kStepBlocks = 4;               // blocks per step
constexpr int kSuperSteps = 4;               // steps per superstep
constexpr int kSuper = kSuperSteps * kStep;  // values per superstep
constexpr int kSuperBlocks = kSuper / TSR_QBLOCK;

int64_t WBlockBytes(tsr_dtype t) {
  return t == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
}

// Signed weight k (0..31) of a block.
inline int WeightInt(const uint8_t* block, tsr_dtype t, int i) {
  if (t == TSR_DTYPE_Q8_B32) return static_cast<int8_t>(block[2 + i]);
  const uint8_t byte = block[2 + (i & 15)];
  return (i < 16 ? (byte & 0x0f) : (byte >> 4)) - 8;
}

// The lane of block b (0..15) of a superstep, and (the same map: a 4 x 4 transpose) the block
// of lane b.
constexpr int LaneOfBlock(int b) {
  return 4 * (b % 4) + b / 4;
}

// Byte of value v (0..31) of block b (0..15) in a superstep's 512 activation bytes.
inline int QByte(bool blocked, int b, int v) {
  if (blocked) return 64 * (v / 4) + 4 * LaneOfBlock(b) + v % 4;
  return 128 * (b / 4) + (v >= 16 ? 64 : 0) + 16 * (b % 4) + v % 16;
}

// The halving tree over the 16 lanes.
inline float TreeSumLanes(float* t) {
  for (int half = kLanes / 2; half >= 1; half /= 2) {
    for (int i = 0; i < half; ++i) t[i] += t[i + half];
  }
  return t[0];
}

inline void Store(const MatmulProblem& p, int64_t m, int64_t n, float s) {
  if (p.bias != nullptr) s += p.bias[n];
  p.out[m * p.out_row_stride + n * p.out_col_stride] = s;
}

// One activation row's views.
struct ActRow {
  const int8_t* q;
  const int32_t* corr;
  const float* dx;
};

inline ActRow RowOf(const QuantizedActs& a, int64_t m) {
  return ActRow{a.q + m * a.supers * kSuper, a.corr + m * a.supers * kLanes,
                a.dx + m * a.supers * kLanes};
}

// ---- activation quantization ----

// Fills one row: q in the superstep layout, zero padding, corr and dx per lane.
void QuantizeActRowPortable(const float* x, int64_t K, int32_t offset, int64_t supers, bool blocked,
                            int8_t* q, int32_t* corr, float* dx) {
  std::memset(q, 0, static_cast<size_t>(supers * kSuper));
  std::memset(corr, 0, static_cast<size_t>(supers * kLanes) * sizeof(int32_t));
  std::memset(dx, 0, static_cast<size_t>(supers * kLanes) * sizeof(float));
  for (int64_t b = 0; b < K / TSR_QBLOCK; ++b) {
    const float* xb = x + b * TSR_QBLOCK;
    float amax = 0.0f;
    for (int i = 0; i < TSR_QBLOCK; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f;
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    const int64_t S = b / kSuperBlocks;
    const int j = static_cast<int>(b % kSuperBlocks);
    int32_t sum = 0;
    for (int i = 0; i < TSR_QBLOCK; ++i) {
      const float r = std::clamp(std::nearbyint(xb[i] * inv), -127.0f, 127.0f);
      q[S * kSuper + QByte(blocked, j, i)] = static_cast<int8_t>(r);
      sum += static_cast<int32_t>(r);
    }
    corr[S * kLanes + LaneOfBlock(j)] = -offset * sum;
    dx[S * kLanes + LaneOfBlock(j)] = d;
  }
}

// ---- portable dot (the canonical order, lane by lane) ----

float DotPortable(const ActRow& a, bool blocked, const uint8_t* wrow, tsr_dtype wt, int64_t K) {
  const int64_t bb = WBlockBytes(wt), nblocks = K / TSR_QBLOCK;
  float acc[kLanes] = {};
  for (int64_t S = 0; S * kSuperBlocks < nblocks; ++S) {
    for (int l = 0; l < kLanes; ++l) {
      const int j = LaneOfBlock(l);
      const int64_t blk = S * kSuperBlocks + j;
      if (blk >= nblocks) continue;
      const uint8_t* block = wrow + blk * bb;
      int32_t isum = 0;
      for (int i = 0; i < TSR_QBLOCK; ++i)
        isum += WeightInt(block, wt, i) * a.q[S * kSuper + QByte(blocked, j, i)];
      const float sc = F16ToF32(LoadU16(block)) * a.dx[S * kLanes + l];
      acc[l] = std::fma(static_cast<float>(isum), sc, acc[l]);
    }
  }
  return TreeSumLanes(acc);
}

void ColumnsPortable(const MatmulProblem& p, int64_t n0, int64_t n1) {
  for (int64_t m = 0; m < p.M; ++m) {
    const ActRow a = RowOf(*p.qx, m);
    for (int64_t n = n0; n < n1; ++n) {
      Store(p, m, n, DotPortable(a, p.qx->blocked, p.w + n * p.w_row_bytes, p.w_dtype, p.K));
    }
  }
}

#if TSR_CPU_X86
// ---- AVX-512 VNNI (+ VBMI where present) ----

// GCC 12's AVX-512 headers start many intrinsics from _mm512_undefined_*() and then warn about
// it at -O2+ (GCC bug 105593); the values are always fully written. (-Wuninitialized: the same
// bug, where a tail unpack is compiled out of line for UnpackGroup.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#define TSR_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma")))

bool CpuHasVbmi() {
  static const bool has = __builtin_cpu_supports("avx512vbmi");
  return has;
}

bool CpuHasVnni() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512vnni");
  return has;
}

// R[g] lane 4 j + s = A[s] lane 4 j + g: the 4 x 4 transpose of dwords inside each 128-bit lane.
TSR_VNNI inline void Transpose4(const __m512i (&A)[4], __m512i* R) {
  const __m512i t0 = _mm512_unpacklo_epi32(A[0], A[1]), t1 = _mm512_unpackhi_epi32(A[0], A[1]);
  const __m512i t2 = _mm512_unpacklo_epi32(A[2], A[3]), t3 = _mm512_unpackhi_epi32(A[2], A[3]);
  R[0] = _mm512_unpacklo_epi64(t0, t2);
  R[1] = _mm512_unpackhi_epi64(t0, t2);
  R[2] = _mm512_unpacklo_epi64(t1, t3);
  R[3] = _mm512_unpackhi_epi64(t1, t3);
}

// Lane 4 j + s = the sum of A[s]'s lanes 4 j .. 4 j + 3 (exact int32): the four steps' 8-product
// sums of a superstep folded into one sum per block, in the canonical lane of the block.
TSR_VNNI inline __m512i TransposeSum(const __m512i (&A)[4]) {
  const __m512i ab =
      _mm512_add_epi32(_mm512_unpacklo_epi32(A[0], A[1]), _mm512_unpackhi_epi32(A[0], A[1]));
  const __m512i cd =
      _mm512_add_epi32(_mm512_unpacklo_epi32(A[2], A[3]), _mm512_unpackhi_epi32(A[2], A[3]));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
}

// Lane 4 j + s = d[s] lane 4 j (each step's binary16 scales fill their block's four lanes), as
// f32: one conversion per superstep.
TSR_VNNI inline __m512 BlendScales(const __m256i (&d)[4]) {
  __m256i r = _mm256_mask_blend_epi16(0x2222, d[0], d[1]);
  r = _mm256_mask_blend_epi16(0x4444, r, d[2]);
  return _mm512_cvtph_ps(_mm256_mask_blend_epi16(0x8888, r, d[3]));
}

TSR_VNNI void QuantizeActRowVnni(const float* x, int64_t K, int32_t offset, int64_t supers,
                                 bool blocked, int8_t* q, int32_t* corr, float* dx) {
  const __m512 sign = _mm512_set1_ps(-0.0f);
  const __m512i ones = _mm512_set1_epi8(1);
  const int64_t nblocks = K / TSR_QBLOCK;
  for (int64_t S = 0; S < supers; ++S) {
    __m512i lo[kSuperSteps], hi[kSuperSteps], sums[kSuperSteps];
    alignas(64) float d16[kLanes] = {};
    for (int s = 0; s < kSuperSteps; ++s) {
      alignas(64) int8_t lb[64] = {}, hb[64] = {};
      const int64_t b0 = (S * kSuperSteps + s) * kStepBlocks;
      for (int j = 0; j < kStepBlocks && b0 + j < nblocks; ++j) {
        const float* xb = x + (b0 + j) * TSR_QBLOCK;
        const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
        const float amax = _mm512_reduce_max_ps(
            _mm512_max_ps(_mm512_andnot_ps(sign, x0), _mm512_andnot_ps(sign, x1)));
        const __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
        constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        const __m512i i0 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(x0, inv), kRound));
        const __m512i i1 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(x1, inv), kRound));
        // Rounded values are within +-127: the saturating narrow matches the portable clamp.
        _mm_store_si128(reinterpret_cast<__m128i*>(lb + 16 * j), _mm512_cvtsepi32_epi8(i0));
        _mm_store_si128(reinterpret_cast<__m128i*>(hb + 16 * j), _mm512_cvtsepi32_epi8(i1));
        d16[LaneOfBlock(4 * s + j)] = amax / 127.0f;
      }
      lo[s] = _mm512_load_si512(lb);
      hi[s] = _mm512_load_si512(hb);
      // Lane sums of q as 1 x q dot products.
      sums[s] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, lo[s]), ones,
                                    hi[s]);
    }
    int8_t* qs = q + S * kSuper;
    if (blocked) {
      __m512i r[8];
      Transpose4(lo, r);
      Transpose4(hi, r + 4);
      for (int k = 0; k < 8; ++k) _mm512_storeu_si512(qs + 64 * k, r[k]);
    } else {
      for (int s = 0; s < kSuperSteps; ++s) {
        _mm512_storeu_si512(qs + kStep * s, lo[s]);
        _mm512_storeu_si512(qs + kStep * s + 64, hi[s]);
      }
    }
    _mm512_storeu_si512(corr + S * kLanes,
                        _mm512_mullo_epi32(TransposeSum(sums), _mm512_set1_epi32(-offset)));
    _mm512_storeu_ps(dx + S * kLanes, _mm512_load_ps(d16));
  }
}

// One step of one weight row, unpacked: the unsigned bytes of the low and high halves (lane
// order of the canonical order) and the four block scales, one per lane.
struct StepW {
  __m512i lo, hi;
  __m256i dh;  // binary16
};

// Per-thread room for one weight group's unpacked supersteps (the int8 GEMM's panel of
// weights): kWVecs vectors a row and superstep, up to 24 KiB (a range of kRangeSupers).
// (Bytes aligned by hand: std::vector<__m512i> need not come back 64-byte aligned.)
TSR_VNNI inline __m512i* GroupScratch(size_t n) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < (n + 1) * sizeof(__m512i)) buf.resize((n + 1) * sizeof(__m512i));
  const uintptr_t p = reinterpret_cast<uintptr_t>(buf.data());
  return reinterpret_cast<__m512i*>((p + 63) & ~uintptr_t{63});
}

// Per-thread room for the int8 GEMM's accumulators between step ranges (TileRange).
TSR_VNNI inline __m512* TileState(size_t n) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < (n + 1) * sizeof(__m512)) buf.resize((n + 1) * sizeof(__m512));
  const uintptr_t p = reinterpret_cast<uintptr_t>(buf.data());
  return reinterpret_cast<__m512*>((p + 63) & ~uintptr_t{63});
}

// A step's 64-byte load at `p`. kTail (a last step with fewer than four blocks): byte
// `have_bytes` and beyond read as zero and are not touched (a masked load does not fault).
template <bool kTail>
TSR_VNNI inline __m512i LoadBytes(const uint8_t* p, int64_t have_bytes) {
  if constexpr (!kTail) {
    return _mm512_loadu_si512(p);
  } else {
    if (have_bytes >= 64) return _mm512_loadu_si512(p);
    const __mmask64 m = have_bytes <= 0 ? 0 : (~__mmask64{0} >> (64 - have_bytes));
    return _mm512_maskz_loadu_epi8(m, p);
  }
}

// Permute indices (built once): see UnpackQ4 / UnpackQ8.
struct Perms {
  __m512i q4_bytes, q4_scales, q8_lo, q8_hi, q8_scales;
};

TSR_VNNI Perms MakePerms() {
  alignas(64) uint8_t q4b[64], q8l[64], q8h[64];
  alignas(64) uint16_t q4s[32] = {}, q8s[32] = {};
  for (int j = 0; j < 4; ++j) {
    for (int t = 0; t < 16; ++t) {
      // Q4: block j's byte t is at 18 j + 2 + t of the step; blocks 0-2 from the load at 0,
      // block 3 from the load at 8 (second source: index + 64).
      q4b[16 * j + t] = static_cast<uint8_t>(j < 3 ? 18 * j + 2 + t : 64 + 48 + t);
      // Q8: value t of block j at 34 j + 2 + t (loads at 0 and 64), value 16 + t at
      // 34 j + 18 + t (loads at 4 and 72).
      const int at_lo = 34 * j + 2 + t, at_hi = 34 * j + 18 + t;
      q8l[16 * j + t] = static_cast<uint8_t>(at_lo < 64 ? at_lo : 64 + (at_lo - 64));
      q8h[16 * j + t] = static_cast<uint8_t>(j < 2 ? at_hi - 4 : 64 + (at_hi - 72));
    }
    for (int g = 0; g < 4; ++g) {
      q4s[4 * j + g] = static_cast<uint16_t>(9 * j);   // scale word of block j (18 j bytes)
      q8s[4 * j + g] = static_cast<uint16_t>(17 * j);  // 34 j bytes, across the loads at 0, 64
    }
  }
  Perms p;
  p.q4_bytes = _mm512_load_si512(q4b);
  p.q4_scales = _mm512_load_si512(q4s);
  p.q8_lo = _mm512_load_si512(q8l);
  p.q8_hi = _mm512_load_si512(q8h);
  p.q8_scales = _mm512_load_si512(q8s);
  return p;
}

// The same unpacking without VBMI byte permutes: each block's 16-byte halves are loaded and
// inserted into their 128-bit lane.
template <bool kTail>
TSR_VNNI inline __m128i LoadHalf(const uint8_t* p, bool exists) {
  if (kTail && !exists) return _mm_setzero_si128();
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

TSR_VNNI inline __m512i Lanes4(__m128i a, __m128i b, __m128i c, __m128i d) {
  const __m512i ab = _mm512_inserti32x4(_mm512_castsi128_si512(a), b, 1);
  return _mm512_inserti32x4(_mm512_inserti32x4(ab, c, 2), d, 3);
}

// kTreeLanes.idx[t0][j]: the lane of TreeSum16Lanes' (tree_sum.h) sum t0 + j (j < 16 - t0), for
// permuting a run of consecutive sums into lanes 0, 1, ...
struct TreeLanes {
  alignas(64) int32_t idx[16][16];
};
constexpr TreeLanes MakeTreeLanes() {
  TreeLanes l{};
  for (int t0 = 0; t0 < 16; ++t0) {
    for (int j = 0; j < 16; ++j) {
      const int t = t0 + j < 16 ? t0 + j : t0;
      l.idx[t0][j] = 4 * (t % 4) + t / 4;
    }
  }
  return l;
}
alignas(64) constexpr TreeLanes kTreeLanes = MakeTreeLanes();

// kPartialLanes[nb]: the lanes of a last partial superstep of nb blocks (those of blocks
// B(l) < nb; operand-packed rows store only these, PartialOperands).
struct PartialLanes {
  uint16_t mask[kSuperBlocks];
};
constexpr PartialLanes MakePartialLanes() {
  PartialLanes t{};
  for (int nb = 0; nb < kSuperBlocks; ++nb) {
    for (int l = 0; l < kLanes; ++l) {
      if (LaneOfBlock(l) < nb) t.mask[nb] = static_cast<uint16_t>(t.mask[nb] | (1u << l));
    }
  }
  return t;
}
constexpr PartialLanes kPartialLanes = MakePartialLanes();

TSR_VNNI inline float TreeSumVec(__m512 v) {
  alignas(64) float t[kLanes];
  _mm512_store_ps(t, v);
  return TreeSumLanes(t);
}

#define TSR_VNNI_VBMI \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi,f16c,fma")))

namespace vbmi {
#define TSR_QK TSR_VNNI_VBMI
#define TSR_QK_VBMI 1
#include "backends/cpu/kernels_qmatmul-inl.h"  // NOLINT(build/include): per-variant code
#undef TSR_QK
#undef TSR_QK_VBMI
}  // namespace vbmi

namespace base {
#define TSR_QK TSR_VNNI
#define TSR_QK_VBMI 0
#include "backends/cpu/kernels_qmatmul-inl.h"  // NOLINT(build/include): per-variant code
#undef TSR_QK
#undef TSR_QK_VBMI
}  // namespace base

#pragma GCC diagnostic pop
#endif  // TSR_CPU_X86

}  // namespace

#if defined(TSR_QGEMM_TU)
#if TSR_CPU_X86
namespace {

// The int8 GEMM's register tile (kernels_qmatmul-inl.h, before GemmPanels): 3 x 4 at every K.
// (Up to 2026-11-27 K > 2048, the down projections, ran 1 x 8; with balanced 12 KiB ranges,
// RangeFor, and no L2 prefetch across ranges, 3 x 4 is 16-18% faster at K = 4864 and 8-11% at
// 8192: lab/qgemm_drv.cc, cpu-q8k in docs/benchmarks.md.) TESSERA_CPU_QGEMM_TILE=18 (lab
// switch, read once) forces 1 x 8.
bool Int8GemmTile3x4() {
  static const int forced = [] {
    const char* e = std::getenv("TESSERA_CPU_QGEMM_TILE");
    return e != nullptr && *e != '\0' ? std::atoi(e) : 0;
  }();
  return forced != 18;
}

}  // namespace

#endif  // TSR_CPU_X86

void QMatmulColumns(const MatmulProblem& p, int64_t n0, int64_t n1) {
#if TSR_CPU_X86
  // Decode rows over operand-packed weights whose last superstep is partial (K % 512 != 0:
  // Qwen2.5's K = 896 and 4864): GemvPartialOperands, compiled here so that the main unit's
  // GEMV tiles keep their code (with it beside them GCC inlined TilePrefetch::Step into the
  // K % 512 == 0 tiles differently: Llama-3.2-1B q4 decode pass -3.5%, matmul_lab).
  if (p.M <= 2 && p.w_packed && p.K % kSuper != 0 && p.int8_dot != Int8Dot::kPortable &&
      CpuHasVnni()) {
    const bool q8 = p.w_dtype == TSR_DTYPE_Q8_B32;
    if (CpuHasVbmi() && p.int8_dot != Int8Dot::kVnniOnly) {
      q8 ? vbmi::GemvPartialOperands<TSR_DTYPE_Q8_B32>(p, n0, n1)
         : vbmi::GemvPartialOperands<TSR_DTYPE_Q4_B32>(p, n0, n1);
    } else {
      q8 ? base::GemvPartialOperands<TSR_DTYPE_Q8_B32>(p, n0, n1)
         : base::GemvPartialOperands<TSR_DTYPE_Q4_B32>(p, n0, n1);
    }
    return;
  }
  if (p.M > 2 && p.int8_dot != Int8Dot::kPortable && CpuHasVnni() && Int8GemmTile3x4()) {
    const Perms pm = MakePerms();
    const bool q8 = p.w_dtype == TSR_DTYPE_Q8_B32;
    if (CpuHasVbmi() && p.int8_dot != Int8Dot::kVnniOnly) {
      q8 ? vbmi::GemmPanels<3, 4, TSR_DTYPE_Q8_B32>(p, pm, n0, n1)
         : vbmi::GemmPanels<3, 4, TSR_DTYPE_Q4_B32>(p, pm, n0, n1);
    } else {
      q8 ? base::GemmPanels<3, 4, TSR_DTYPE_Q8_B32>(p, pm, n0, n1)
         : base::GemmPanels<3, 4, TSR_DTYPE_Q4_B32>(p, pm, n0, n1);
    }
    return;
  }
#endif
  QMatmulColumnsMain(p, n0, n1);
}
#else  // the main translation unit
// + 64: LayoutQuantizedActs starts the rows at the next 64-byte boundary of `storage` (a
// std::vector's large block starts 16 bytes past a page): every 512-bit load of a row crossed
// two cache lines and the K = 896 GEMM ran ~20% slower (lab/qgemm_drv.cc, ACT_MISALIGN=16 / 0).
size_t QuantizedActBytes(int64_t M, int64_t K) {
  const int64_t supers = (K + kSuper - 1) / kSuper;
  return static_cast<size_t>(M * supers * (kSuper + 2 * kLanes * 4)) + 64;  // q, corr, dx
}

QuantizedActs LayoutQuantizedActs(uint8_t* storage, int64_t M, int64_t K, bool operand_weights) {
  storage += (64 - reinterpret_cast<uintptr_t>(storage) % 64) % 64;
  QuantizedActs a;
  a.steps = (K + kStep - 1) / kStep;
  a.supers = (K + kSuper - 1) / kSuper;
  // The operand order for the GEMM and for operand-packed weights (ColumnsVnni: decode below).
  a.blocked = M > 2 || operand_weights;
  a.q = reinterpret_cast<int8_t*>(storage);
  a.corr = reinterpret_cast<int32_t*>(storage + M * a.supers * kSuper);
  a.dx = reinterpret_cast<float*>(storage + M * a.supers * (kSuper + kLanes * 4));
  return a;
}

void QuantizeActRows(const MatmulProblem& p, const QuantizedActs& a, int64_t m0, int64_t m1) {
  const int32_t offset = p.w_dtype == TSR_DTYPE_Q8_B32 ? 128 : 8;
  for (int64_t m = m0; m < m1; ++m) {
    const ActRow r = RowOf(a, m);
    auto* q = const_cast<int8_t*>(r.q);
    auto* corr = const_cast<int32_t*>(r.corr);
    auto* dx = const_cast<float*>(r.dx);
    const float* x = p.x + m * p.x_row_stride;
#if TSR_CPU_X86
    if (p.int8_dot != Int8Dot::kPortable && CpuHasVnni()) {
      QuantizeActRowVnni(x, p.K, offset, a.supers, a.blocked, q, corr, dx);
      continue;
    }
#endif
    QuantizeActRowPortable(x, p.K, offset, a.supers, a.blocked, q, corr, dx);
  }
}

void QMatmulColumnsMain(const MatmulProblem& p, int64_t n0, int64_t n1) {
#if TSR_CPU_X86
  if (p.int8_dot != Int8Dot::kPortable && CpuHasVnni()) {
    const bool q8 = p.w_dtype == TSR_DTYPE_Q8_B32;
    if (CpuHasVbmi() && p.int8_dot != Int8Dot::kVnniOnly) {
      q8 ? vbmi::ColumnsVnni<TSR_DTYPE_Q8_B32>(p, n0, n1)
         : vbmi::ColumnsVnni<TSR_DTYPE_Q4_B32>(p, n0, n1);
    } else {
      q8 ? base::ColumnsVnni<TSR_DTYPE_Q8_B32>(p, n0, n1)
         : base::ColumnsVnni<TSR_DTYPE_Q4_B32>(p, n0, n1);
    }
    return;
  }
#endif
  ColumnsPortable(p, n0, n1);
}
#endif  // TSR_QGEMM_TU

}  // namespace tessera::cpu
