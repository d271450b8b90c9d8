// bf16_gemv_lab: what bounds the bf16 decode GEMV (kernels_matmul.cc GemvTile over RowBF16) on
// one and two cores. A STREAM-style read probe (tools/bench ReadBandwidthProbe's loop), GEMV
// variants (widening: vpmovzxwd + shift, zero-masked vpermw, vpermw + mask / shift, vpexpandw;
// 4-16 rows a tile; prefetch: none, the next tile as one run (the policy before 2026-11-27),
// further tiles, L2 hints, touch loads, or inside each row's stream `Dist` values ahead, the
// policy adopted) and read patterns alone (loads and adds in the tile order; a ladder from
// loads to the GEMV's work) over a model's real matrix shapes, each matrix in its own buffer
// (the set is far larger than the last-level cache, as in a decode step), timed in CPU-seconds
// of the threads that ran (robust to other tenants' time slices; run under `nice -n -19`) and
// in wall time, variants interleaved per round; "paired" is the median of per-round ratios
// against the first variant listed (put the probe first).
//
//   g++ -O3 -std=c++20 -pthread -I. -o /tmp/bf16_gemv_lab backends/cpu/lab/bf16_gemv_lab.cc
//       backends/cpu/thread_pool.cc          (one command)
//   nice -n -19 /tmp/bf16_gemv_lab [--shape qwen|llama] [--threads 1|2] [--rounds R]
//        [--passes P] [--no-head] [--l2] [--quiet] [--only probe,cur,zx8row256,cur+pool,...]
//
// Threads run their share of every matrix without a barrier between matrices (the lab has no
// data dependence), so the numbers are the kernels' and memory's, not the pool's; a variant
// named with "+pool" runs through the CPU backend's ThreadPool instead, one ParallelFor per
// matrix over ColumnChunk's tasks, as the plugin does. Every GEMV variant gives the canonical
// order's bits (memcmp against `cur` on the first layer's matrices and the head before timing).
// --l2: 169 views of one 256 x K buffer (the kernels' in-cache rate). x86 only (AVX-512 BW,
// VBMI2); not part of the build. Results: docs/benchmarks.md, "CPU decode GEMV: prefetch inside
// the row streams".
#include <immintrin.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#define LAB __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx512vbmi2,fma")))

#include "backends/cpu/thread_pool.h"
#include "backends/cpu/tree_sum.h"

namespace {

double ThreadCpu() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}
double ProcessCpu() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}
double Wall() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

constexpr int64_t kKBlock = 1024;

struct Mat {
  int64_t N, K;
  uint16_t* w;  // N x K bf16, row-major
};

// x: K floats; out: N floats; rows [n0, n1) (n0, n1 multiples of 8 except the matrix's end).
using Kernel = void (*)(const Mat& m, const float* x, float* out, int64_t n0, int64_t n1);

LAB inline float TreeSumOne(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  for (int half = 8; half >= 1; half /= 2)
    for (int i = 0; i < half; ++i) t[i] += t[i + half];
  return t[0];
}

// The reference tile: one row at a time, the canonical order (K % 16 == 0 here).
LAB void RefRows(const Mat& m, const float* x, float* out, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    const uint16_t* row = m.w + n * m.K;
    float total = 0;
    for (int64_t k0 = 0; k0 < m.K; k0 += kKBlock) {
      const int64_t k1 = std::min(m.K, k0 + kKBlock);
      __m512 acc = _mm512_setzero_ps();
      for (int64_t k = k0; k < k1; k += 16) {
        const __m512 w = _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + k))),
            16));
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(x + k), w, acc);
      }
      const float b = TreeSumOne(acc);
      total = k0 == 0 ? b : total + b;
    }
    out[n] = total;
  }
}

// TilePrefetch of ops.h: the next tile's bytes, whole lines per step from the front.
template <int Locality = 3>
struct Prefetch {
  uintptr_t cur, end, per_step;
  Prefetch(const void* base, int64_t bytes, int64_t steps)
      : cur(reinterpret_cast<uintptr_t>(base)),
        end(cur + static_cast<uintptr_t>(bytes > 0 ? bytes : 0)),
        per_step(bytes > 0 ? ((bytes + steps - 1) / steps + 63) / 64 * 64 : 0) {}
  inline void Step() {
    const uintptr_t stop = std::min(cur + per_step, end);
    for (; cur < stop; cur += 64)
      __builtin_prefetch(reinterpret_cast<const void*>(cur), 0, Locality);
  }
};

// Prefetch's schedule with real (integer) loads instead of prefetch instructions, or with every
// other line only (Every = 2).
template <bool Touch, int Every = 1>
struct Touches {
  uintptr_t cur, end, per_step;
  uint32_t sink = 0;
  Touches(const void* base, int64_t bytes, int64_t steps)
      : cur(reinterpret_cast<uintptr_t>(base)),
        end(cur + static_cast<uintptr_t>(bytes > 0 ? bytes : 0)),
        per_step(bytes > 0 ? ((bytes + steps - 1) / steps + 63) / 64 * 64 : 0) {}
  inline void Step() {
    const uintptr_t stop = std::min(cur + per_step, end);
    for (; cur < stop; cur += 64 * Every) {
      if constexpr (Touch) {
        uint32_t v;
        std::memcpy(&v, reinterpret_cast<const void*>(cur), 4);
        asm volatile("" : : "r"(v));
      } else {
        __builtin_prefetch(reinterpret_cast<const void*>(cur), 0, 3);
      }
    }
  }
};

enum class Widen { kZx, kPerm, kPair, kExpand };

// 32 bf16 at p as two f32 vectors: lo = [0, 16), hi = [16, 32).
template <Widen W>
LAB inline void Load32(const uint16_t* p, __m512& lo, __m512& hi) {
  if constexpr (W == Widen::kZx) {
    lo = _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
    hi = _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16))), 16));
  } else if constexpr (W == Widen::kPerm) {
    // word 2l + 1 of lo = p[l], word 2l = 0 (zero-masked vpermw); hi the same from p[16 + l].
    const __m512i v = _mm512_loadu_si512(p);
    const __m512i ilo = _mm512_set_epi16(15, 0, 14, 0, 13, 0, 12, 0, 11, 0, 10, 0, 9, 0, 8, 0, 7, 0,
                                         6, 0, 5, 0, 4, 0, 3, 0, 2, 0, 1, 0, 0, 0);
    const __m512i ihi = _mm512_set_epi16(31, 0, 30, 0, 29, 0, 28, 0, 27, 0, 26, 0, 25, 0, 24, 0, 23,
                                         0, 22, 0, 21, 0, 20, 0, 19, 0, 18, 0, 17, 0, 16, 0);
    lo = _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, ilo, v));
    hi = _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, ihi, v));
  } else if constexpr (W == Widen::kExpand) {
    // vpexpandw from memory: 16 words into the odd word positions, zeros between.
    lo = _mm512_castsi512_ps(_mm512_maskz_expandloadu_epi16(0xAAAAAAAAu, p));
    hi = _mm512_castsi512_ps(_mm512_maskz_expandloadu_epi16(0xAAAAAAAAu, p + 16));
  } else {
    // dword l = p[l] << 16 | p[16 + l]: lo = the high halves (a mask), hi = the low halves << 16.
    const __m512i v = _mm512_loadu_si512(p);
    const __m512i idx =
        _mm512_set_epi16(15, 31, 14, 30, 13, 29, 12, 28, 11, 27, 10, 26, 9, 25, 8, 24, 7, 23, 6, 22,
                         5, 21, 4, 20, 3, 19, 2, 18, 1, 17, 0, 16);
    const __m512i q = _mm512_permutexvar_epi16(idx, v);
    lo = _mm512_castsi512_ps(_mm512_and_si512(q, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
    hi = _mm512_castsi512_ps(_mm512_slli_epi32(q, 16));
  }
}

// Prefetch policy: 0 none, 1 the next tile (kernel today), 2 the tile after next, 3 the next
// tile plus the one after into L2 (prefetcht1), 4 the next tile with prefetcht1, 5 with
// prefetchnta.
template <int NR, Widen W, int PF, int Dist = 512>
LAB void GemvTiles(const Mat& m, const float* x, float* out, int64_t n0, int64_t n1) {
  const int64_t K = m.K, steps = K / 16;
  int64_t n = n0;
  for (; n + NR <= n1; n += NR) {
    const uint16_t* rows[NR];
    for (int j = 0; j < NR; ++j) rows[j] = m.w + (n + j) * K;
    int64_t pf_rows = 0;
    const uint16_t* pf_base = m.w + (n + NR) * K;
    if constexpr (PF == 1) pf_rows = std::min<int64_t>(NR, n1 - n - NR);
    if constexpr (PF == 2) {
      pf_base = m.w + (n + 2 * NR) * K;
      pf_rows = std::min<int64_t>(NR, n1 - n - 2 * NR);
      if (n == n0) {  // the first call also fetches the next tile
        const int64_t r = std::min<int64_t>(NR, n1 - n - NR);
        for (int64_t b = 0; b < r * K * 2; b += 64)
          __builtin_prefetch(reinterpret_cast<const char*>(m.w + (n + NR) * K) + b, 0, 3);
      }
    }
    if constexpr (PF >= 3) pf_rows = std::min<int64_t>(NR, n1 - n - NR);
    constexpr int kLoc = PF == 4 ? 2 : PF == 5 ? 0 : 3;
    Prefetch<kLoc> pf(pf_base, std::max<int64_t>(0, pf_rows) * K * 2, steps);
    Touches<PF == 6, PF == 8 ? 2 : 1> tp(
        pf_base, (PF == 6 || PF == 8) ? std::max<int64_t>(0, pf_rows) * K * 2 : 0, steps);
    Prefetch<2> pf2(
        m.w + (n + 2 * NR) * K,
        PF == 3 ? std::max<int64_t>(0, std::min<int64_t>(NR, n1 - n - 2 * NR)) * K * 2 : 0, steps);
    float total[NR];
    for (int64_t k0 = 0; k0 < K; k0 += kKBlock) {
      const int64_t k1 = std::min(K, k0 + kKBlock);
      __m512 acc[NR];
      for (int j = 0; j < NR; ++j) acc[j] = _mm512_setzero_ps();
      int64_t k = k0;
      for (; k + 32 <= k1; k += 32) {
        if constexpr (PF == 6 || PF == 8) {
          tp.Step();
          tp.Step();
        } else if constexpr (PF == 7) {
          for (int j = 0; j < NR; ++j) {
            const uint16_t* q = rows[j] + k + Dist;  // Dist values ahead in the row's own stream
            if (k + Dist >= K) q += (NR - 1) * K;    // past the row's end: the next tile's row j
            if (q < m.w + n1 * K) __builtin_prefetch(q, 0, 3);
          }
        } else if constexpr (PF != 0) {
          pf.Step();
          pf.Step();
        }
        if constexpr (PF == 3) {
          pf2.Step();
          pf2.Step();
        }
        const __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
        __m512 lo[NR], hi[NR];
        for (int j = 0; j < NR; ++j) Load32<W>(rows[j] + k, lo[j], hi[j]);
        for (int j = 0; j < NR; ++j) acc[j] = _mm512_fmadd_ps(x0, lo[j], acc[j]);
        for (int j = 0; j < NR; ++j) acc[j] = _mm512_fmadd_ps(x1, hi[j], acc[j]);
      }
      for (; k < k1; k += 16) {
        const __m512 x0 = _mm512_loadu_ps(x + k);
        for (int j = 0; j < NR; ++j) {
          const __m512 w = _mm512_castsi512_ps(_mm512_slli_epi32(
              _mm512_cvtepu16_epi32(
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[j] + k))),
              16));
          acc[j] = _mm512_fmadd_ps(x0, w, acc[j]);
        }
      }
      float b[NR];
      if constexpr (NR == 8) {
        __m512 v[8];
        for (int j = 0; j < 8; ++j) v[j] = acc[j];
        alignas(64) float t[16];
        _mm512_store_ps(t, tessera::cpu::TreeSum8Lanes(v));
        for (int j = 0; j < 8; ++j) b[j] = t[4 * (j % 4) + j / 4];
      } else if constexpr (NR == 16) {
        __m512 v[16];
        for (int j = 0; j < 16; ++j) v[j] = acc[j];
        tessera::cpu::TreeSum16(v, b);
      } else {
        for (int j = 0; j < NR; ++j) b[j] = TreeSumOne(acc[j]);
      }
      for (int j = 0; j < NR; ++j) total[j] = k0 == 0 ? b[j] : total[j] + b[j];
    }
    for (int j = 0; j < NR; ++j) out[n + j] = total[j];
  }
  if (n < n1) RefRows(m, x, out, n, n1);
}

// The kernel as committed: 16-value steps, one vpmovzxwd + shift per row and step, TreeSum per
// row, the next tile prefetched a few lines per step.
LAB void Cur(const Mat& m, const float* x, float* out, int64_t n0, int64_t n1) {
  constexpr int NR = 8;
  const int64_t K = m.K, steps = K / 16;
  int64_t n = n0;
  for (; n + NR <= n1; n += NR) {
    const uint16_t* rows[NR];
    for (int j = 0; j < NR; ++j) rows[j] = m.w + (n + j) * K;
    Prefetch<> pf(m.w + (n + NR) * K,
                  std::max<int64_t>(0, std::min<int64_t>(NR, n1 - n - NR)) * K * 2, steps);
    float total[NR];
    for (int64_t k0 = 0; k0 < K; k0 += kKBlock) {
      const int64_t k1 = std::min(K, k0 + kKBlock);
      __m512 acc[NR];
      for (int j = 0; j < NR; ++j) acc[j] = _mm512_setzero_ps();
      for (int64_t k = k0; k < k1; k += 16) {
        pf.Step();
        const __m512 x0 = _mm512_loadu_ps(x + k);
        for (int j = 0; j < NR; ++j) {
          const __m512 w = _mm512_castsi512_ps(_mm512_slli_epi32(
              _mm512_cvtepu16_epi32(
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[j] + k))),
              16));
          acc[j] = _mm512_fmadd_ps(x0, w, acc[j]);
        }
      }
      for (int j = 0; j < NR; ++j) {
        const float b = TreeSumOne(acc[j]);
        total[j] = k0 == 0 ? b : total[j] + b;
      }
    }
    for (int j = 0; j < NR; ++j) out[n + j] = total[j];
  }
  if (n < n1) RefRows(m, x, out, n, n1);
}

// The probe's loop (probes_simd.cc SumFloats): 8 accumulators, linear.
LAB float SumBytes(const void* p, size_t bytes) {
  const float* f = static_cast<const float*>(p);
  const size_t n = bytes / 4;
  __m512 a[8];
  for (int i = 0; i < 8; ++i) a[i] = _mm512_setzero_ps();
  for (size_t i = 0; i + 128 <= n; i += 128)
    for (int j = 0; j < 8; ++j) a[j] = _mm512_add_ps(a[j], _mm512_loadu_ps(f + i + 16 * j));
  for (int j = 1; j < 8; ++j) a[0] = _mm512_add_ps(a[0], a[j]);
  return _mm512_reduce_add_ps(a[0]);
}

// GemvTiles<8, kPerm, 0> with the weight loads software-pipelined: a 32-value step loads the
// next step's 8 lines into registers before its own permutes and FMAs, so fewer vector ops sit
// in the scheduler per line in flight. Canonical order unchanged.
template <int NR>
LAB void PermPipe(const Mat& m, const float* x, float* out, int64_t n0, int64_t n1) {
  const int64_t K = m.K;
  const __m512i ilo = _mm512_set_epi16(15, 0, 14, 0, 13, 0, 12, 0, 11, 0, 10, 0, 9, 0, 8, 0, 7, 0,
                                       6, 0, 5, 0, 4, 0, 3, 0, 2, 0, 1, 0, 0, 0);
  const __m512i ihi = _mm512_set_epi16(31, 0, 30, 0, 29, 0, 28, 0, 27, 0, 26, 0, 25, 0, 24, 0, 23,
                                       0, 22, 0, 21, 0, 20, 0, 19, 0, 18, 0, 17, 0, 16, 0);
  int64_t n = n0;
  for (; n + NR <= n1; n += NR) {
    const uint16_t* rows[NR];
    for (int j = 0; j < NR; ++j) rows[j] = m.w + (n + j) * K;
    float total[NR];
    for (int64_t k0 = 0; k0 < K; k0 += kKBlock) {
      const int64_t k1 = std::min(K, k0 + kKBlock);
      __m512 acc[NR];
      for (int j = 0; j < NR; ++j) acc[j] = _mm512_setzero_ps();
      __m512i v[NR];
      for (int j = 0; j < NR; ++j) v[j] = _mm512_loadu_si512(rows[j] + k0);
      int64_t k = k0;
      for (; k + 32 <= k1; k += 32) {
        __m512i nv[NR];
        const int64_t kn = k + 32 + 32 <= k1 ? k + 32 : k;  // the last step reloads itself
        for (int j = 0; j < NR; ++j) nv[j] = _mm512_loadu_si512(rows[j] + kn);
        const __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
        for (int j = 0; j < NR; ++j)
          acc[j] = _mm512_fmadd_ps(
              x0, _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, ilo, v[j])),
              acc[j]);
        for (int j = 0; j < NR; ++j)
          acc[j] = _mm512_fmadd_ps(
              x1, _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, ihi, v[j])),
              acc[j]);
        for (int j = 0; j < NR; ++j) v[j] = nv[j];
      }
      for (; k < k1; k += 16) {
        const __m512 x0 = _mm512_loadu_ps(x + k);
        for (int j = 0; j < NR; ++j) {
          const __m512 w = _mm512_castsi512_ps(_mm512_slli_epi32(
              _mm512_cvtepu16_epi32(
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[j] + k))),
              16));
          acc[j] = _mm512_fmadd_ps(x0, w, acc[j]);
        }
      }
      float b[NR];
      for (int j = 0; j < NR; ++j) b[j] = TreeSumOne(acc[j]);
      for (int j = 0; j < NR; ++j) total[j] = k0 == 0 ? b[j] : total[j] + b[j];
    }
    for (int j = 0; j < NR; ++j) out[n + j] = total[j];
  }
  if (n < n1) RefRows(m, x, out, n, n1);
}

// Read patterns alone (loads and adds, no widening or FMA): rows [n0, n1) of m.
// kTileRows: 8-row tiles, one line per row per step, the next tile prefetched (PF = 1) or not;
// kLinearPf: the probe's linear loop with prefetcht0 `Dist` bytes ahead.
template <int PF>
LAB void PatternTiles(const Mat& m, const float* x, float* out, int64_t n0, int64_t n1) {
  (void)x;
  constexpr int NR = 8;
  const int64_t K = m.K, steps = K / 32;
  __m512 a[NR];
  for (int j = 0; j < NR; ++j) a[j] = _mm512_setzero_ps();
  int64_t n = n0;
  for (; n + NR <= n1; n += NR) {
    const uint16_t* rows[NR];
    for (int j = 0; j < NR; ++j) rows[j] = m.w + (n + j) * K;
    Prefetch<> pf(m.w + (n + NR) * K,
                  PF ? std::max<int64_t>(0, std::min<int64_t>(NR, n1 - n - NR)) * K * 2 : 0, steps);
    for (int64_t k = 0; k + 32 <= K; k += 32) {
      pf.Step();
      for (int j = 0; j < NR; ++j)
        a[j] = _mm512_add_ps(a[j], _mm512_castsi512_ps(_mm512_loadu_si512(rows[j] + k)));
    }
  }
  for (int j = 1; j < NR; ++j) a[0] = _mm512_add_ps(a[0], a[j]);
  out[n0] = _mm512_reduce_add_ps(a[0]);
}

// The ladder from PatternTiles<0> to the GEMV without prefetch: Step 0 loads + adds, 1 loads +
// FMA with x (raw bits as floats), 2 + one vpermw per line (16 lanes), 3 + both halves (two
// vpermw, two FMAs per line: the GEMV's work).
template <int Step>
LAB void Ladder(const Mat& m, const float* x, float* out, int64_t n0, int64_t n1) {
  constexpr int NR = 8;
  const int64_t K = m.K;
  const __m512i ilo = _mm512_set_epi16(15, 0, 14, 0, 13, 0, 12, 0, 11, 0, 10, 0, 9, 0, 8, 0, 7, 0,
                                       6, 0, 5, 0, 4, 0, 3, 0, 2, 0, 1, 0, 0, 0);
  const __m512i ihi = _mm512_set_epi16(31, 0, 30, 0, 29, 0, 28, 0, 27, 0, 26, 0, 25, 0, 24, 0, 23,
                                       0, 22, 0, 21, 0, 20, 0, 19, 0, 18, 0, 17, 0, 16, 0);
  __m512 a[NR];
  for (int j = 0; j < NR; ++j) a[j] = _mm512_setzero_ps();
  for (int64_t n = n0; n + NR <= n1; n += NR) {
    const uint16_t* rows[NR];
    for (int j = 0; j < NR; ++j) rows[j] = m.w + (n + j) * K;
    for (int64_t k = 0; k + 32 <= K; k += 32) {
      const __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
      for (int j = 0; j < NR; ++j) {
        const __m512i v = _mm512_loadu_si512(rows[j] + k);
        if constexpr (Step == 0) a[j] = _mm512_add_ps(a[j], _mm512_castsi512_ps(v));
        if constexpr (Step == 1) a[j] = _mm512_fmadd_ps(x0, _mm512_castsi512_ps(v), a[j]);
        if constexpr (Step == 2)
          a[j] = _mm512_fmadd_ps(
              x0, _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, ilo, v)), a[j]);
        if constexpr (Step == 3) {
          a[j] = _mm512_fmadd_ps(
              x0, _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, ilo, v)), a[j]);
          a[j] = _mm512_fmadd_ps(
              x1, _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, ihi, v)), a[j]);
        }
      }
    }
  }
  for (int j = 1; j < NR; ++j) a[0] = _mm512_add_ps(a[0], a[j]);
  out[n0] = _mm512_reduce_add_ps(a[0]);
}

template <int64_t Dist>
LAB void PatternLinearPf(const Mat& m, const float* x, float* out, int64_t n0, int64_t n1) {
  (void)x;
  const char* p = reinterpret_cast<const char*>(m.w + n0 * m.K);
  const char* end = reinterpret_cast<const char*>(m.w + n1 * m.K);
  __m512 a[8];
  for (int j = 0; j < 8; ++j) a[j] = _mm512_setzero_ps();
  for (; p + 512 <= end; p += 512) {
    for (int j = 0; j < 8; ++j) {
      if (p + Dist + 64 * j < end) __builtin_prefetch(p + Dist + 64 * j, 0, 3);
      a[j] = _mm512_add_ps(a[j], _mm512_loadu_ps(reinterpret_cast<const float*>(p + 64 * j)));
    }
  }
  for (int j = 1; j < 8; ++j) a[0] = _mm512_add_ps(a[0], a[j]);
  out[n0] = _mm512_reduce_add_ps(a[0]);
}

struct Variant {
  std::string name;
  Kernel k;                // nullptr: the read probe over the same matrices
  bool pool = false;       // "+pool" after the name: the engine's split (see main)
  int64_t task_bytes = 0;  // "+pool:BYTES": ColumnChunk's tasks capped at BYTES of weights
  bool gemv = true;        // false: a read pattern (no output bits to check)
};

std::vector<Variant> Variants() {
  return {
      {"probe", nullptr},
      {"cur", Cur},
      {"zx8", GemvTiles<8, Widen::kZx, 1>},
      {"perm8", GemvTiles<8, Widen::kPerm, 1>},
      {"pair8", GemvTiles<8, Widen::kPair, 1>},
      {"zx8pf0", GemvTiles<8, Widen::kZx, 0>},
      {"zx8pf2", GemvTiles<8, Widen::kZx, 2>},
      {"zx8pf3", GemvTiles<8, Widen::kZx, 3>},
      {"zx8t1", GemvTiles<8, Widen::kZx, 4>},
      {"zx8nta", GemvTiles<8, Widen::kZx, 5>},
      {"pair8pf0", GemvTiles<8, Widen::kPair, 0>},
      {"perm8pf0", GemvTiles<8, Widen::kPerm, 0>},
      {"exp8", GemvTiles<8, Widen::kExpand, 1>},
      {"pipe8", PermPipe<8>},
      {"perm8touch", GemvTiles<8, Widen::kPerm, 6>},
      {"perm8row", GemvTiles<8, Widen::kPerm, 7>},
      {"perm8half", GemvTiles<8, Widen::kPerm, 8>},
      {"perm8row128", GemvTiles<8, Widen::kPerm, 7, 128>},
      {"perm8row256", GemvTiles<8, Widen::kPerm, 7, 256>},
      {"perm8row1k", GemvTiles<8, Widen::kPerm, 7, 1024>},
      {"perm8row2k", GemvTiles<8, Widen::kPerm, 7, 2048>},
      {"zx8row", GemvTiles<8, Widen::kZx, 7>},
      {"zx8row256", GemvTiles<8, Widen::kZx, 7, 256>},
      {"zx8touch", GemvTiles<8, Widen::kZx, 6>},
      {"pipe4", PermPipe<4>},
      {"exp8pf0", GemvTiles<8, Widen::kExpand, 0>},
      {"ptiles", PatternTiles<1>, false, false},
      {"ptiles0", PatternTiles<0>, false, false},
      {"lad0", Ladder<0>, false, false},
      {"lad1", Ladder<1>, false, false},
      {"lad2", Ladder<2>, false, false},
      {"lad3", Ladder<3>, false, false},
      {"plin4k", PatternLinearPf<4096>, false, false},
      {"plin14k", PatternLinearPf<14336>, false, false},
      {"plin64k", PatternLinearPf<65536>, false, false},
      {"zx4", GemvTiles<4, Widen::kZx, 1>},
      {"zx12", GemvTiles<12, Widen::kZx, 1>},
      {"zx16", GemvTiles<16, Widen::kZx, 1>},
      {"perm16", GemvTiles<16, Widen::kPerm, 1>},
  };
}

void* MapBytes(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::abort();
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape = "qwen", only;
  int threads = 1, rounds = 3, passes = 3;
  bool head = true, l2 = false, quiet = false;  // --quiet: medians only
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--shape")
      shape = argv[++i];
    else if (a == "--threads")
      threads = std::atoi(argv[++i]);
    else if (a == "--rounds")
      rounds = std::atoi(argv[++i]);
    else if (a == "--passes")
      passes = std::atoi(argv[++i]);
    else if (a == "--only")
      only = argv[++i];
    else if (a == "--no-head")
      head = false;
    else if (a == "--l2")
      l2 = true;
    else if (a == "--quiet")
      quiet = true;
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 1;
    }
  }
  // hidden, inter, layers, q width, kv width, vocab
  int64_t H = 896, I = 4864, Lyr = 24, Q = 896, KV = 128, V = 151936;
  if (shape == "llama") H = 2048, I = 8192, Lyr = 16, Q = 2048, KV = 512, V = 128256;
  std::vector<std::pair<int64_t, int64_t>> nk;
  for (int64_t l = 0; l < Lyr; ++l)
    for (auto p : {std::pair{Q, H}, {KV, H}, {KV, H}, {H, Q}, {I, H}, {I, H}, {H, I}})
      nk.push_back(p);
  if (head) nk.push_back({V, H});
  if (l2)
    for (auto& p : nk) p = {256, H};
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<uint16_t> pool(1 << 20);
  for (auto& b : pool) {
    float v = dist(rng);
    uint32_t u;
    std::memcpy(&u, &v, 4);
    b = static_cast<uint16_t>(u >> 16);
  }
  std::vector<Mat> mats;
  double bytes = 0;
  for (auto [N, K] : nk) {
    Mat m{N, K, static_cast<uint16_t*>(MapBytes(static_cast<size_t>(N * K * 2)))};
    if (l2 && !mats.empty()) {
      munmap(m.w, static_cast<size_t>(N * K * 2));
      m.w = mats[0].w;
    }
    for (int64_t i = 0; i < N * K; i += static_cast<int64_t>(pool.size()))
      std::memcpy(m.w + i, pool.data(), std::min<int64_t>(pool.size(), N * K - i) * 2);
    mats.push_back(m);
    bytes += static_cast<double>(N * K * 2);
  }
  std::vector<float> x(std::max(I, H) + 64), out(V + 64), ref(V + 64);
  for (auto& v : x) v = dist(rng) * 50;

  std::vector<Variant> vars;
  if (only.empty()) {
    vars = Variants();
  } else {
    // In the order listed: NAME, NAME+pool, NAME+pool:BYTES.
    for (size_t at = 0; at <= only.size();) {
      size_t end = only.find(',', at);
      if (end == std::string::npos) end = only.size();
      const std::string item = only.substr(at, end - at);
      at = end + 1;
      const size_t plus = item.find('+');
      const std::string base = item.substr(0, plus);
      for (const Variant& v : Variants()) {
        if (v.name != base) continue;
        vars.push_back(v);
        if (plus != std::string::npos) {
          vars.back().name = item;
          vars.back().pool = true;
          const size_t colon = item.find(':', plus);
          if (colon != std::string::npos)
            vars.back().task_bytes = std::atoll(item.c_str() + colon + 1);
        }
      }
    }
  }

  // Bits: every variant against Cur on the first layer's matrices and the head.
  for (const Variant& v : vars) {
    if (v.k == nullptr || !v.gemv) continue;
    std::vector<size_t> check = {0, 1, 2, 3, 4, 5, 6, mats.size() - 1};
    for (size_t i : check) {
      const Mat& m = mats[i];
      Cur(m, x.data(), ref.data(), 0, m.N);
      v.k(m, x.data(), out.data(), 0, m.N);
      if (std::memcmp(ref.data(), out.data(), m.N * 4) != 0) {
        std::printf("BITS DIFFER: %s on %lld x %lld\n", v.name.c_str(), (long long)m.N,
                    (long long)m.K);
        return 1;
      }
    }
  }
  std::printf("shape %s, %zu matrices, %.1f MB bf16, threads %d; bits of every variant == cur\n",
              shape.c_str(), mats.size(), bytes / 1e6, threads);

  // Per thread: rows [N * t / T, N * (t + 1) / T) rounded to 8 of every matrix.
  std::vector<double> cpu(threads);
  std::atomic<int> which{-1};
  std::barrier start(threads + 1), done(threads + 1);
  std::vector<float> sinks(threads * 16);
  std::vector<std::thread> pool_threads;
  std::atomic<bool> quit{false};
  // +pool: the engine's split: ColumnChunk's ~4 tasks a thread, claimed dynamically, one
  // ParallelFor (and its join) per matrix.
  tessera::cpu::ThreadPool tpool(threads);
  std::vector<std::vector<float>> tout(threads, std::vector<float>(V + 64));
  auto chunk_of = [&](const Mat& m, int64_t cap) {
    const int64_t want = static_cast<int64_t>(threads) * 4;
    int64_t chunk = (m.N + want - 1) / want;
    if (cap > 0) chunk = std::min(chunk, cap / (m.K * 2));
    return std::max<int64_t>(16, (chunk + 7) / 8 * 8);
  };
  auto run_pool = [&](const Variant& v) {
    for (int p = 0; p < passes; ++p) {
      for (const Mat& m : mats) {
        const int64_t chunk = chunk_of(m, v.task_bytes), tasks = (m.N + chunk - 1) / chunk;
        tpool.ParallelFor(tasks, [&](int64_t task, int th) {
          const int64_t a = task * chunk, b = std::min(m.N, (task + 1) * chunk);
          if (v.k == nullptr) {
            sinks[th * 16] += SumBytes(m.w + a * m.K, static_cast<size_t>((b - a) * m.K * 2));
          } else {
            v.k(m, x.data(), tout[th].data(), a, b);
          }
        });
      }
    }
  };
  for (int t = 0; t < threads; ++t) {
    pool_threads.emplace_back([&, t] {
      std::vector<float> o(V + 64);
      for (;;) {
        start.arrive_and_wait();
        if (quit) return;
        const Variant& v = vars[which];
        const double c0 = ThreadCpu();
        for (int p = 0; p < passes; ++p) {
          for (size_t mi = 0; mi < mats.size(); ++mi) {
            const Mat& m = mats[mi];
            auto run = [&](int64_t a, int64_t b) {
              if (v.k == nullptr) {
                sinks[t * 16] += SumBytes(m.w + a * m.K, static_cast<size_t>((b - a) * m.K * 2));
              } else {
                v.k(m, x.data(), o.data(), a, b);
              }
            };
            const int64_t a = m.N * t / threads / 8 * 8;
            const int64_t b = t + 1 == threads ? m.N : m.N * (t + 1) / threads / 8 * 8;
            run(a, b);
          }
        }
        cpu[t] = ThreadCpu() - c0;
        done.arrive_and_wait();
      }
    });
  }
  std::printf("%-8s %s\n", "variant",
              "per round: GB per CPU-second (all threads' CPU) / wall GB/s");
  std::vector<std::vector<double>> per_cpu(vars.size()), per_wall(vars.size());
  for (int r = 0; r < rounds; ++r) {
    for (size_t vi = 0; vi < vars.size(); ++vi) {
      which = static_cast<int>(vi);
      double wall, c = 0;
      if (vars[vi].pool) {
        const double w0 = Wall(), c0 = ProcessCpu();
        run_pool(vars[vi]);
        wall = Wall() - w0;
        c = ProcessCpu() - c0;
      } else {
        const double w0 = Wall();
        start.arrive_and_wait();
        done.arrive_and_wait();
        wall = Wall() - w0;
        for (double s : cpu) c += s;
      }
      per_cpu[vi].push_back(bytes * passes / c / 1e9);
      per_wall[vi].push_back(bytes * passes / wall / 1e9);
    }
  }
  quit = true;
  start.arrive_and_wait();
  for (auto& t : pool_threads) t.join();
  for (size_t vi = 0; vi < vars.size(); ++vi) {
    std::printf("%-8s", vars[vi].name.c_str());
    if (!quiet)
      for (int r = 0; r < rounds; ++r)
        std::printf("  %5.1f/%5.1f", per_cpu[vi][r], per_wall[vi][r]);
    auto med = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    std::vector<double> ratio;  // paired: this variant / the first one, same round, CPU time
    for (int r = 0; r < rounds; ++r) ratio.push_back(per_cpu[vi][r] / per_cpu[0][r]);
    std::printf("   median %5.1f / %5.1f, paired / %s %.3f\n", med(per_cpu[vi]), med(per_wall[vi]),
                vars[0].name.c_str(), med(ratio));
  }
  return 0;
}
