// MATMUL with Q8_B32 / Q4_B32 weights: integer dot products against int8-quantized activations.
//
// Decode is bound by weight bytes, and decoding 4- or 8-bit weights to f32 for FMAs costs more
// instructions than the bytes save; an int8 x int8 dot (AVX-512 VNNI vpdpbusd: 64 products a
// instruction) keeps up with memory. So each activation row is quantized once per matmul, per
// 32-value block: dx = amax / 127, q = round-to-nearest-even(x * (127 / amax)) (0 when amax is 0).
//
// The canonical order (every path computes exactly this, so results are batch-invariant and the
// same on every CPU; see kernels_matmul.cc for the float dtypes):
//   K is walked in steps of 64 values (two blocks). A step has 16 lanes; lane l covers values
//   4l .. 4l + 3 of the step, i.e. block 2s + l / 8. Per lane:
//     isum = sum of the 4 products w[k] * q[k]            (exact, int32)
//     acc[l] = fma(float(isum), dw[block] * dx[block], acc[l])
//   (w is the signed weight: q8 value, or q4 nibble - 8). An odd last block updates lanes 0-7
//   only. Then the 16 lanes are summed by the halving tree (l += l + 8, + 4, + 2, + 1), then the
//   bias is added.
// vpdpbusd multiplies unsigned by signed bytes, so the VNNI path feeds it w + 128 (q8, a sign
// flip) or the raw nibble (q4) and starts each lane at -128 (or -8) x the lane's sum of q,
// precomputed with the activations: the integer result is the same sum of products.
// The portable path (no VNNI, or the "int8_dot=portable" context option) computes the same
// lanes with scalar code; every step is exact or one IEEE operation, so the bits agree.
// The path is opt-in (context option int8_dot=on; engine --quantize sets it): the ABI's MATMUL
// takes f32 activations, and by default Q8/Q4 weights are decoded to f32 (kernels_matmul.cc).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cpu/convert.h"
#include "backends/cpu/ops.h"

namespace tessera::cpu {
namespace {

constexpr int kLanes = 16;  // lanes of the canonical order (one 512-bit vector)

int64_t WBlockBytes(tsr_dtype t) {
  return t == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
}

// Signed weight k (0..31) of a block.
inline int WeightInt(const uint8_t* block, tsr_dtype t, int i) {
  if (t == TSR_DTYPE_Q8_B32) return static_cast<int8_t>(block[2 + i]);
  const uint8_t byte = block[2 + (i & 15)];
  return (i < 16 ? (byte & 0x0f) : (byte >> 4)) - 8;
}

// The halving tree over the 16 lanes.
inline float TreeSum16(float* t) {
  for (int half = kLanes / 2; half >= 1; half /= 2) {
    for (int i = 0; i < half; ++i) t[i] += t[i + half];
  }
  return t[0];
}

inline void Store(const MatmulProblem& p, int64_t m, int64_t n, float s) {
  if (p.bias != nullptr) s += p.bias[n];
  p.out[m * p.out_row_stride + n * p.out_col_stride] = s;
}

// ---- activation quantization ----

void QuantizeActRowPortable(const float* x, int64_t K, int32_t offset, int8_t* q, int32_t* corr,
                            float* dx) {
  for (int64_t b = 0; b < K / TSR_QBLOCK; ++b) {
    const float* xb = x + b * TSR_QBLOCK;
    float amax = 0.0f;
    for (int i = 0; i < TSR_QBLOCK; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f;
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int g = 0; g < TSR_QBLOCK / 4; ++g) {
      int32_t s = 0;
      for (int i = 4 * g; i < 4 * g + 4; ++i) {
        const float r = std::clamp(std::nearbyint(xb[i] * inv), -127.0f, 127.0f);
        q[b * TSR_QBLOCK + i] = static_cast<int8_t>(r);
        s += static_cast<int32_t>(r);
      }
      corr[b * 8 + g] = -offset * s;
      dx[b * 8 + g] = d;
    }
  }
}

// ---- portable dot (the canonical order, lane by lane) ----

float DotPortable(const QuantizedActs& a, int64_t m, const uint8_t* wrow, tsr_dtype wt, int64_t K) {
  const int8_t* q = a.q + m * K;
  const float* dx = a.dx + m * (K / 4);
  const int64_t bb = WBlockBytes(wt);
  float acc[kLanes] = {};
  for (int64_t s = 0; s * 64 < K; ++s) {
    const int lanes = s * 64 + 64 <= K ? kLanes : kLanes / 2;
    for (int l = 0; l < lanes; ++l) {
      const int64_t blk = 2 * s + l / 8;
      const uint8_t* block = wrow + blk * bb;
      int32_t isum = 0;
      for (int i = 0; i < 4; ++i) {
        const int k = (l % 8) * 4 + i;
        isum += WeightInt(block, wt, k) * q[blk * TSR_QBLOCK + k];
      }
      const float sc = F16ToF32(LoadU16(block)) * dx[16 * s + l];
      acc[l] = std::fma(static_cast<float>(isum), sc, acc[l]);
    }
  }
  return TreeSum16(acc);
}

void ColumnsPortable(const MatmulProblem& p, int64_t n0, int64_t n1) {
  for (int64_t m = 0; m < p.M; ++m) {
    for (int64_t n = n0; n < n1; ++n) {
      Store(p, m, n, DotPortable(*p.qx, m, p.w + n * p.w_row_bytes, p.w_dtype, p.K));
    }
  }
}

// ---- AVX-512 VNNI ----

// GCC 12's AVX-512 headers start many intrinsics from _mm512_undefined_*() and then warn about
// it at -O2+ (GCC bug 105593); the values are always fully written.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define TSR_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma")))

bool CpuHasVnni() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512vnni");
  return has;
}

TSR_VNNI void QuantizeActRowVnni(const float* x, int64_t K, int32_t offset, int8_t* q,
                                 int32_t* corr, float* dx) {
  const __m512 sign = _mm512_set1_ps(-0.0f);
  for (int64_t b = 0; b < K / TSR_QBLOCK; ++b) {
    const __m512 x0 = _mm512_loadu_ps(x + b * 32), x1 = _mm512_loadu_ps(x + b * 32 + 16);
    const float amax =
        _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, x0), _mm512_andnot_ps(sign, x1)));
    const float d = amax / 127.0f;
    const __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
    constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const __m512i i0 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(x0, inv), kRound));
    const __m512i i1 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(x1, inv), kRound));
    const __m128i q0 = _mm512_cvtsepi32_epi8(i0), q1 = _mm512_cvtsepi32_epi8(i1);
    const __m256i qb = _mm256_inserti128_si256(_mm256_zextsi128_si256(q0), q1, 1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * 32), qb);
    // Group sums of 4 as 1 x q dot products (rounded values are within +-127: no clamp needed
    // beyond the saturating narrow, which matches the portable clamp).
    const __m256i sums = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), qb);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(corr + b * 8),
                        _mm256_mullo_epi32(sums, _mm256_set1_epi32(-offset)));
    _mm256_storeu_ps(dx + b * 8, _mm256_set1_ps(d));
  }
}

// Weights of blocks (b, b + 1) as unsigned bytes for vpdpbusd (see the header comment).
TSR_VNNI inline __m512i LoadPair(const uint8_t* block, tsr_dtype wt) {
  if (wt == TSR_DTYPE_Q8_B32) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 36));
    const __m512i v = _mm512_inserti64x4(_mm512_zextsi256_si512(lo), hi, 1);
    return _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80)));
  }
  const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
  const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 20));
  const __m512i t = _mm512_zextsi256_si512(
      _mm256_inserti128_si256(_mm256_zextsi128_si256(q0), q1, 1));        // [q0, q1, -, -]
  const __m512i u = _mm512_shuffle_i64x2(t, t, _MM_SHUFFLE(1, 1, 0, 0));  // [q0, q0, q1, q1]
  // Low nibbles in 128-bit lanes 0 and 2, high nibbles in 1 and 3.
  const __m512i shift = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0);
  return _mm512_and_si512(_mm512_srlv_epi64(u, shift), _mm512_set1_epi8(0x0f));
}

// Only block b (an odd last block): lanes 8-15 get zeros.
TSR_VNNI inline __m512i LoadOne(const uint8_t* block, tsr_dtype wt) {
  if (wt == TSR_DTYPE_Q8_B32) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
    return _mm512_zextsi256_si512(_mm256_xor_si256(lo, _mm256_set1_epi8(static_cast<char>(0x80))));
  }
  const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
  const __m128i lo = _mm_and_si128(q0, _mm_set1_epi8(0x0f));
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(q0, 4), _mm_set1_epi8(0x0f));
  return _mm512_zextsi256_si512(_mm256_inserti128_si256(_mm256_zextsi128_si256(lo), hi, 1));
}

// dw of blocks (b, b + 1) in lanes 0-7 and 8-15.
TSR_VNNI inline __m512 ScalePair(const uint8_t* block, int64_t bb) {
  const __m128i s0 = _mm_set1_epi16(static_cast<short>(LoadU16(block)));
  const __m128i s1 = _mm_set1_epi16(static_cast<short>(LoadU16(block + bb)));
  return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_zextsi128_si256(s0), s1, 1));
}

TSR_VNNI inline float TreeSumVec(__m512 v) {
  alignas(64) float t[kLanes];
  _mm512_store_ps(t, v);
  return TreeSum16(t);
}

// MR activation rows x NR weight rows over all of K, in the canonical order.
template <int MR, int NR>
TSR_VNNI void TileVnni(const MatmulProblem& p, int64_t m0, int64_t n0) {
  const QuantizedActs& a = *p.qx;
  const int64_t K = p.K, bb = WBlockBytes(p.w_dtype);
  const tsr_dtype wt = p.w_dtype;
  const uint8_t* w[NR];
  for (int j = 0; j < NR; ++j) w[j] = p.w + (n0 + j) * p.w_row_bytes;
  const int8_t* q[MR];
  const int32_t* c[MR];
  const float* dx[MR];
  for (int i = 0; i < MR; ++i) {
    q[i] = a.q + (m0 + i) * K;
    c[i] = a.corr + (m0 + i) * (K / 4);
    dx[i] = a.dx + (m0 + i) * (K / 4);
  }
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  const int64_t steps = K / 64;
  // GEMV (MR == 1): prefetch the next tile's rows a few lines per step, so memory sees one long
  // stream instead of NR short ones (as the f32 GEMV does; short rows only).
  const int64_t next_rows = std::min<int64_t>(NR, p.N - n0 - NR);
  const int64_t pf_bytes =
      MR == 1 && next_rows > 0 && NR * p.w_row_bytes <= 16384 ? next_rows * p.w_row_bytes : 0;
  const char* pf = reinterpret_cast<const char*>(p.w + (n0 + NR) * p.w_row_bytes);
  int64_t pf_done = 0;
  for (int64_t s = 0; s < steps; ++s) {
    for (const int64_t due = pf_bytes * (s + 1) / steps; pf_done < due; pf_done += 64)
      _mm_prefetch(pf + pf_done, _MM_HINT_T0);
    __m512i wv[NR];
    __m512 dw[NR];
    for (int j = 0; j < NR; ++j) {
      const uint8_t* blk = w[j] + 2 * s * bb;
      wv[j] = LoadPair(blk, wt);
      dw[j] = ScalePair(blk, bb);
    }
    for (int i = 0; i < MR; ++i) {
      const __m512i xv = _mm512_loadu_si512(q[i] + 64 * s);
      const __m512i cv = _mm512_loadu_si512(c[i] + 16 * s);
      const __m512 dxv = _mm512_loadu_ps(dx[i] + 16 * s);
      for (int j = 0; j < NR; ++j) {
        const __m512i isum = _mm512_dpbusd_epi32(cv, wv[j], xv);
        acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw[j], dxv), acc[i][j]);
      }
    }
  }
  if (K % 64 != 0) {  // one more block: lanes 0-7
    const __mmask16 lo = 0x00ff;
    for (int j = 0; j < NR; ++j) {
      const uint8_t* blk = w[j] + 2 * steps * bb;
      const __m512i wv = LoadOne(blk, wt);
      const __m512 dw = _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<short>(LoadU16(blk))));
      for (int i = 0; i < MR; ++i) {
        const __m512i xv = _mm512_zextsi256_si512(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q[i] + 64 * steps)));
        const __m512i cv = _mm512_maskz_loadu_epi32(lo, c[i] + 16 * steps);
        const __m512 dxv = _mm512_maskz_loadu_ps(lo, dx[i] + 16 * steps);
        const __m512i isum = _mm512_dpbusd_epi32(cv, wv, xv);
        acc[i][j] =
            _mm512_mask3_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw, dxv), acc[i][j], lo);
      }
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) Store(p, m0 + i, n0 + j, TreeSumVec(acc[i][j]));
  }
}

// Rows [m0, m1) x weight rows [n0, n1): NR-row groups, MR-row tiles, then the leftovers.
template <int MR, int NR>
TSR_VNNI void BlockVnni(const MatmulProblem& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + NR <= n1; n += NR) {
    int64_t m = m0;
    for (; m + MR <= m1; m += MR) TileVnni<MR, NR>(p, m, n);
    for (; m < m1; ++m) TileVnni<1, NR>(p, m, n);
  }
  for (; n < n1; ++n) {
    int64_t m = m0;
    for (; m + MR <= m1; m += MR) TileVnni<MR, 1>(p, m, n);
    for (; m < m1; ++m) TileVnni<1, 1>(p, m, n);
  }
}

TSR_VNNI void ColumnsVnni(const MatmulProblem& p, int64_t n0, int64_t n1) {
  if (p.M <= 2) {  // decode: stream the weights once per row
    for (int64_t m = 0; m < p.M; ++m) BlockVnni<1, 8>(p, m, m + 1, n0, n1);
    return;
  }
  // Prefill: panels of activation rows that stay in L2 (3 bytes a value: q, corr, dx) while
  // each group of weight rows is swept past them.
  const int64_t panel = std::max<int64_t>(4, (384 << 10) / (3 * p.K) / 4 * 4);
  for (int64_t m = 0; m < p.M; m += panel) BlockVnni<4, 4>(p, m, std::min(p.M, m + panel), n0, n1);
}

#pragma GCC diagnostic pop

}  // namespace

size_t QuantizedActBytes(int64_t M, int64_t K) {
  return static_cast<size_t>(M * K * 3);  // q (1 byte), corr and dx (4 bytes per 4 values)
}

QuantizedActs LayoutQuantizedActs(uint8_t* storage, int64_t M, int64_t K) {
  QuantizedActs a;
  a.q = reinterpret_cast<int8_t*>(storage);
  a.corr = reinterpret_cast<int32_t*>(storage + M * K);
  a.dx = reinterpret_cast<float*>(storage + 2 * M * K);
  return a;
}

void QuantizeActRows(const MatmulProblem& p, const QuantizedActs& a, int64_t m0, int64_t m1) {
  const int32_t offset = p.w_dtype == TSR_DTYPE_Q8_B32 ? 128 : 8;
  const int64_t K = p.K;
  for (int64_t m = m0; m < m1; ++m) {
    auto* q = const_cast<int8_t*>(a.q) + m * K;
    auto* corr = const_cast<int32_t*>(a.corr) + m * (K / 4);
    auto* dx = const_cast<float*>(a.dx) + m * (K / 4);
    const float* x = p.x + m * p.x_row_stride;
    if (p.int8_dot == Int8Dot::kOn && CpuHasVnni()) {
      QuantizeActRowVnni(x, K, offset, q, corr, dx);
    } else {
      QuantizeActRowPortable(x, K, offset, q, corr, dx);
    }
  }
}

void QMatmulColumns(const MatmulProblem& p, int64_t n0, int64_t n1) {
  if (p.int8_dot == Int8Dot::kOn && CpuHasVnni()) {
    ColumnsVnni(p, n0, n1);
  } else {
    ColumnsPortable(p, n0, n1);
  }
}

}  // namespace tessera::cpu
