// The AVX-512 BF16 and VNNI probe loops. Debian's Highway 1.0.3 has no ops for vdpbf16ps or
// vpdpbusd, so these are written with intrinsics and compiled for their ISA only through a
// function target attribute; callers check HasAvx512Bf16() / HasAvx512Vnni() first.
#include <immintrin.h>

#include "probes_internal.h"

namespace tessera::bench::internal {

__attribute__((target("avx512f,avx512bf16"))) float Dpbf16Chains(int64_t iters) {
  constexpr int kChains = 16;  // 2 pipes x ~6 cycles latency, rounded up; 16 + 2 < 32 zmm
  // Products of small bf16 values added to f32 accumulators: no overflow for any iteration count
  // we run, and no denormals.
  const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(2e-3f));
  const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(3e-3f), _mm512_set1_ps(1e-3f));
  __m512 acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = _mm512_set1_ps(static_cast<float>(j));
  for (int64_t i = 0; i < iters; ++i) {
    for (int j = 0; j < kChains; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], a, b);
  }
  __m512 s = acc[0];
  for (int j = 1; j < kChains; ++j) s = _mm512_add_ps(s, acc[j]);
  // Through memory rather than _mm512_reduce_add_ps, whose GCC 12 header warns
  // (-Wuninitialized) when inlined.
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  float sum = 0;
  for (float v : lanes) sum += v;
  return sum;
}

__attribute__((target("avx512f,avx512vnni"))) float VnniChains(int64_t iters) {
  constexpr int kChains = 16;  // as above: covers latency x pipes with room to spare
  // Unsigned bytes 1 against signed bytes +1, -1, +1, -1: every lane's four products sum to 0,
  // so the int32 accumulators never overflow, whatever the iteration count.
  const __m512i a = _mm512_set1_epi8(1);
  const __m512i b = _mm512_set1_epi32(static_cast<int32_t>(0xff01ff01u));
  __m512i acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = _mm512_set1_epi32(j);
  for (int64_t i = 0; i < iters; ++i) {
    for (int j = 0; j < kChains; ++j) acc[j] = _mm512_dpbusd_epi32(acc[j], a, b);
  }
  __m512i s = acc[0];
  for (int j = 1; j < kChains; ++j) s = _mm512_add_epi32(s, acc[j]);
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, s);
  int64_t sum = 0;
  for (int32_t v : lanes) sum += v;
  return static_cast<float>(sum);
}

}  // namespace tessera::bench::internal
