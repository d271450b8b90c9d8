// TreeSum16: the halving-tree lane sums of 16 AVX-512 f32 vectors at once, for the kernels that
// reduce many dot products in their canonical order (kernels_matmul.cc, kernels_attention.cc,
// kernels_qmatmul.cc). Callers are AVX-512 code: Highway's AVX3 targets or functions with an
// avx512f target attribute.
#ifndef TESSERA_BACKENDS_CPU_TREE_SUM_H_
#define TESSERA_BACKENDS_CPU_TREE_SUM_H_

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

namespace tessera::cpu {

// GCC 12's AVX-512 headers start some intrinsics from _mm512_undefined_*() and then warn about
// it at -O2+ (GCC bug 105593); the values are always fully written.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// The halving-tree lane sums of v[0..15] (lane l += lane l + 8, then + 4, + 2, + 1: the order of
// _mm512_reduce_add_ps, hence of Highway's SumOfLanes on AVX-512), left in one register: lane
// 4 b + c holds the sum of v[4 c + b]. Each step adds the same lane pairs for four vectors per
// instruction, so the results are bit-identical to 16 separate sums at a quarter of the cost.
// Always inlined: compiled out of line (GCC 12 did so in kernels_qmatmul.cc), every GEMV tile
// stored its 16 accumulators for the call (~2.5% of the q8 decode pass).
__attribute__((target("avx512f"), always_inline)) inline __m512 TreeSum16Lanes(
    const __m512 (&v)[16]) {
  __m512 r[8];  // lanes 0-7: v[2p] lane m + lane m + 8; lanes 8-15: the same for v[2p + 1]
  for (int p = 0; p < 8; ++p) {
    r[p] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0x44),
                         _mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0xEE));
  }
  __m512 q[4];  // block b: v[4 i + b]'s lanes m + m + 4 (m < 4)
  for (int i = 0; i < 4; ++i) {
    q[i] = _mm512_add_ps(_mm512_shuffle_f32x4(r[2 * i], r[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(r[2 * i], r[2 * i + 1], 0xDD));
  }
  __m512 u[2];  // block b: pairs (m, m + 2) of q[2 o] then of q[2 o + 1]
  for (int o = 0; o < 2; ++o) {
    u[o] = _mm512_add_ps(_mm512_shuffle_ps(q[2 * o], q[2 * o + 1], 0x44),
                         _mm512_shuffle_ps(q[2 * o], q[2 * o + 1], 0xEE));
  }
  return _mm512_add_ps(_mm512_shuffle_ps(u[0], u[1], 0x88), _mm512_shuffle_ps(u[0], u[1], 0xDD));
}

// TreeSum16Lanes of v[0..7] alone (half the shuffles and adds): lane 4 b + c (c < 2) holds the
// sum of v[4 c + b], as in TreeSum16Lanes; lanes 4 b + 2 and 4 b + 3 repeat them.
__attribute__((target("avx512f"), always_inline)) inline __m512 TreeSum8Lanes(
    const __m512 (&v)[8]) {
  __m512 r[4];
  for (int p = 0; p < 4; ++p) {
    r[p] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0x44),
                         _mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0xEE));
  }
  __m512 q[2];
  for (int i = 0; i < 2; ++i) {
    q[i] = _mm512_add_ps(_mm512_shuffle_f32x4(r[2 * i], r[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(r[2 * i], r[2 * i + 1], 0xDD));
  }
  const __m512 u =
      _mm512_add_ps(_mm512_shuffle_ps(q[0], q[1], 0x44), _mm512_shuffle_ps(q[0], q[1], 0xEE));
  return _mm512_add_ps(_mm512_shuffle_ps(u, u, 0x88), _mm512_shuffle_ps(u, u, 0xDD));
}

// sums[i] = halving-tree sum of v[i]'s 16 lanes (TreeSum16Lanes, stored in order).
__attribute__((target("avx512f"), always_inline)) inline void TreeSum16(const __m512 (&v)[16],
                                                                        float* sums) {
  alignas(64) float t[16];
  _mm512_store_ps(t, TreeSum16Lanes(v));
  for (int i = 0; i < 16; ++i) sums[i] = t[4 * (i % 4) + i / 4];
}

#pragma GCC diagnostic pop

}  // namespace tessera::cpu
#endif  // x86

#endif  // TESSERA_BACKENDS_CPU_TREE_SUM_H_
