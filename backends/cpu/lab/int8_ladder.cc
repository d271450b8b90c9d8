// int8_ladder: what bounds the int8 GEMM's tile loop (kernels_qmatmul-inl.h SubTileRange, the
// 1 x 8 tile over unpacked weights). Starts from the bench probe's loop (vpdpbusd chains in
// registers) and adds one ingredient of the real loop at a time, timing each in CPU-seconds of
// this process (robust to other tenants' time slices; run under `nice -n -19`).
//
//   g++ -O3 -std=c++20 -I. -o /tmp/int8_ladder backends/cpu/lab/int8_ladder.cc
//   nice -n -19 /tmp/int8_ladder [seconds-per-step] [rounds]
//
// Prints per step the vpdpbusd rate (per ns of CPU time), int8 GOP per CPU-second (128 ops per
// vpdpbusd, as the probe counts; float updates are not counted) and the fraction of the probe.
// x86 only (AVX-512 VNNI); not part of the build.
#include <immintrin.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

// GCC 12 bug 105593 (the intrinsics' _mm512_undefined_*() starts).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#define LAB \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma"), noinline))

#include "backends/cpu/tree_sum.h"

namespace {

double CpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

constexpr int kW = 9;  // vectors per weight row and superstep (8 operands + scales)

// The shapes: a panel of `rows` activation rows (q 512 B per superstep, corr and dx 64 B each),
// a weight group of 8 rows unpacked for `supers` supersteps (L1), K = 512 supers.
struct Data {
  int rows, supers;
  std::vector<uint8_t> raw;
  __m512i* ws;             // [supers][8][kW]
  int8_t* q;               // [rows][supers][512]
  int32_t* corr;           // [rows][supers][16]
  float* dx;               // [rows][supers][16]
  float* state;            // [rows][8][16]
  std::vector<float> out;  // [rows][kN]
  static constexpr int kN = 4864;
  Data(int r, int s) : rows(r), supers(s), out(size_t(r) * kN) {
    const size_t wsb = size_t(s) * 8 * kW * 64, qb = size_t(r) * s * 512, cb = size_t(r) * s * 64;
    const size_t sb = size_t(r) * 8 * 64;
    raw.assign(wsb + qb + 2 * cb + sb + 64 * 8, 0);
    uint8_t* p =
        reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(raw.data()) + 63) & ~63ull);
    ws = reinterpret_cast<__m512i*>(p);
    p += wsb;
    q = reinterpret_cast<int8_t*>(p);
    p += qb;
    corr = reinterpret_cast<int32_t*>(p);
    p += cb;
    dx = reinterpret_cast<float*>(p);
    p += cb;
    state = reinterpret_cast<float*>(p);
    uint32_t x = 12345;
    auto rnd = [&] { return x = x * 1664525u + 1013904223u; };
    auto* wb = reinterpret_cast<uint8_t*>(ws);
    for (size_t i = 0; i < wsb; ++i) wb[i] = uint8_t(rnd() >> 24);
    for (int S = 0; S < s; ++S)  // scales: small floats
      for (int j = 0; j < 8; ++j) {
        float* f = reinterpret_cast<float*>(ws + (S * 8 + j) * kW + 8);
        for (int l = 0; l < 16; ++l) f[l] = 1e-3f * float(1 + (rnd() >> 28));
      }
    for (size_t i = 0; i < qb; ++i) q[i] = int8_t(rnd() >> 24);
    for (size_t i = 0; i < size_t(r) * s * 16; ++i) {
      corr[i] = int32_t(rnd() >> 20) - 2048;
      dx[i] = 1e-2f;
    }
  }
};

// ---- step 0: the probe (16 chains, registers only) ----
LAB int64_t Probe(int64_t iters, float* sink) {
  const __m512i a = _mm512_set1_epi8(1);
  const __m512i b = _mm512_set1_epi32(static_cast<int32_t>(0xff01ff01u));
  __m512i acc[16];
  for (int j = 0; j < 16; ++j) acc[j] = _mm512_set1_epi32(j);
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 16; ++j) acc[j] = _mm512_dpbusd_epi32(acc[j], a, b);
  __m512i s = acc[0];
  for (int j = 1; j < 16; ++j) s = _mm512_add_epi32(s, acc[j]);
  *sink += float(_mm512_reduce_add_epi32(s));
  return iters * 16;
}

// Step 1: 8 chains (the tile's), endless, registers only: the chain latency at 8 in flight.
LAB int64_t Chains8(int64_t iters, float* sink) {
  const __m512i a = _mm512_set1_epi8(1);
  const __m512i b = _mm512_set1_epi32(static_cast<int32_t>(0xff01ff01u));
  __m512i acc[8];
  for (int j = 0; j < 8; ++j) acc[j] = _mm512_set1_epi32(j);
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 8; ++j) acc[j] = _mm512_dpbusd_epi32(acc[j], a, b);
  __m512i s = acc[0];
  for (int j = 1; j < 8; ++j) s = _mm512_add_epi32(s, acc[j]);
  *sink += float(_mm512_reduce_add_epi32(s));
  return iters * 8;
}

// The tile loop with ingredients switched on by template flags:
//   kWMem: weight operands from the L1 scratch (else 8 registers)
//   kXMem: activation operands and corr from the L2 panel (else registers)
//   kFloat: the per-block float update (cvt, dw x dx, fma; dw from L1, dx from L2) (else vpaddd)
//   kTiles: walk the panel's rows as tiles with the accumulators stored to `state` (else one row)
//   kPf: prefetch (T0) the activation row kPf tiles ahead, superstep S's lines during superstep S
template <bool kWMem, bool kXMem, bool kFloat, bool kTiles, int kPf = 0, bool kStore = true,
          int kFinish = 0>
LAB int64_t Loop(const Data& d, int64_t passes, float* sink) {
  const __m512i wr0 = _mm512_set1_epi8(3), xr0 = _mm512_set1_epi8(5);
  int64_t n = 0;
  __m512 keep = _mm512_setzero_ps(), pending = keep;
  for (int64_t pass = 0; pass < passes; ++pass) {
    for (int m = 0; m < d.rows; ++m) {
      const int row = kTiles ? m : 0;
      const int8_t* xq = d.q + size_t(row) * d.supers * 512;
      const int32_t* xc = d.corr + size_t(row) * d.supers * 16;
      const float* xd = d.dx + size_t(row) * d.supers * 16;
      const int prow = std::min(m + kPf, d.rows - 1);
      const char* pq = reinterpret_cast<const char*>(d.q + size_t(prow) * d.supers * 512);
      const char* pc = reinterpret_cast<const char*>(d.corr + size_t(prow) * d.supers * 16);
      const char* pd = reinterpret_cast<const char*>(d.dx + size_t(prow) * d.supers * 16);
      __m512 acc[8];
      __m512i iacc[8];
      for (int j = 0; j < 8; ++j) {
        acc[j] = _mm512_setzero_ps();
        iacc[j] = _mm512_setzero_si512();
      }
      for (int S = 0; S < d.supers; ++S) {
        const __m512i* wS = d.ws + S * 8 * kW;
        __m512i t[8];
        const __m512i c = kXMem ? _mm512_loadu_si512(xc + 16 * S) : _mm512_set1_epi32(S);
        for (int j = 0; j < 8; ++j) t[j] = c;
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {
          if constexpr (kPf > 0) {
            _mm_prefetch(pq + 512 * S + 64 * k, _MM_HINT_T0);
            if (k == 2) _mm_prefetch(pc + 64 * S, _MM_HINT_T0);
            if (k == 5) _mm_prefetch(pd + 64 * S, _MM_HINT_T0);
          }
          const __m512i xa = kXMem ? _mm512_loadu_si512(xq + 512 * S + 64 * k)
                                   : _mm512_add_epi8(xr0, _mm512_set1_epi8(char(k)));
#pragma GCC unroll 8
          for (int j = 0; j < 8; ++j) {
            const __m512i wb = kWMem ? _mm512_load_si512(wS + j * kW + k)
                                     : _mm512_add_epi8(wr0, _mm512_set1_epi8(char(j)));
            t[j] = _mm512_dpbusd_epi32(t[j], wb, xa);
          }
        }
        if constexpr (kFloat) {
          const __m512 dxv = _mm512_loadu_ps(xd + 16 * S);
          for (int j = 0; j < 8; ++j) {
            const __m512 dwv = _mm512_castsi512_ps(_mm512_load_si512(wS + j * kW + 8));
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t[j]), _mm512_mul_ps(dwv, dxv), acc[j]);
          }
        } else {
          for (int j = 0; j < 8; ++j) iacc[j] = _mm512_add_epi32(iacc[j], t[j]);
        }
      }
      n += 64 * d.supers;
      if constexpr (kFinish) {  // FinishTile<1, 8>: the lane sums, one 256-bit store per row
        const __m512 tw = tessera::cpu::TreeSum8Lanes(acc);
        const __m512 r = _mm512_permutexvar_ps(
            _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 13, 9, 5, 1, 12, 8, 4, 0), tw);
        // 1: into the output row (stride N); 2: a compact [rows][8] buffer; 3: no store; 4: as 1,
        // each tile's row stored after the next tile's loop
        float* o = const_cast<float*>(d.out.data()) +
                   (kFinish == 1 || kFinish == 4 ? size_t(m) * Data::kN + (pass * 8) % Data::kN
                                                 : size_t(m) * 8);
        if constexpr (kFinish == 3) {
          keep = _mm512_add_ps(keep, r);
        } else if constexpr (kFinish == 5) {  // a constant, to the compact buffer
          keep = _mm512_add_ps(keep, r);
          _mm256_storeu_ps(o, _mm256_set1_ps(1.0f));
        } else if constexpr (kFinish == 7) {  // two tiles' rows in one 512-bit store (compact)
          if (m & 1)
            _mm512_storeu_ps(o - 8, _mm512_insertf32x8(pending, _mm512_castps512_ps256(r), 1));
          else
            pending = r;
        } else if constexpr (kFinish == 8) {  // only a scalar store of the row index
          keep = _mm512_add_ps(keep, r);
          *reinterpret_cast<volatile int*>(o) = m;
        } else if constexpr (kFinish == 9) {  // a 512-bit store of a constant
          keep = _mm512_add_ps(keep, r);
          _mm512_storeu_ps(const_cast<float*>(d.out.data()) + size_t(m & ~1) * 8,
                           _mm512_set1_ps(1.0f));
        } else if constexpr (kFinish == 6) {  // the sums, always to the same address
          _mm256_storeu_ps(const_cast<float*>(d.out.data()), _mm512_castps512_ps256(r));
        } else if constexpr (kFinish == 4) {  // the previous tile's sums, stored a tile late
          if (m > 0) _mm256_storeu_ps(o - Data::kN, _mm512_castps512_ps256(pending));
          pending = r;
        } else {
          _mm256_storeu_ps(o, _mm512_castps512_ps256(r));
        }
      } else if constexpr (kTiles && kStore) {
        for (int j = 0; j < 8; ++j) {
          const __m512 v = kFloat ? acc[j] : _mm512_castsi512_ps(iacc[j]);
          _mm512_store_ps(d.state + (size_t(m) * 8 + j) * 16, v);
        }
      } else {
        for (int j = 0; j < 8; ++j)
          keep = _mm512_add_ps(keep, kFloat ? acc[j] : _mm512_castsi512_ps(iacc[j]));
      }
    }
  }
  *sink += _mm512_reduce_add_ps(keep) + d.state[0];
  return n;
}

// The real tile loop for an MR x NR tile shape over the K = 896 panel (weights from L1 for NR
// weight rows, activation rows walked from L2, the float update, one finish-like store per tile
// row of the MR x NR sums): sub-tiles of kSub rows at a time (each holds kSub x NR chains).
template <int MR, int NR, int kSub>
LAB int64_t Shape(const Data& d, int64_t passes, float* sink) {
  int64_t n = 0;
  __m512 keep = _mm512_setzero_ps();
  float* out = const_cast<float*>(d.out.data());
  for (int64_t pass = 0; pass < passes; ++pass) {
    for (int m0 = 0; m0 + MR <= d.rows; m0 += MR) {
      __m512 acc[MR][NR];
      for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
      for (int S = 0; S < d.supers; ++S) {
        const __m512i* wS = d.ws + S * 8 * kW;
#pragma GCC unroll 4
        for (int h = 0; h < MR; h += kSub) {
          __m512i t[kSub][NR];
          for (int i = 0; i < kSub; ++i) {
            const __m512i c = _mm512_loadu_si512(d.corr + (size_t(m0 + h + i) * d.supers + S) * 16);
            for (int j = 0; j < NR; ++j) t[i][j] = c;
          }
#pragma GCC unroll 8
          for (int k = 0; k < 8; ++k) {
            __m512i xa[kSub];
            for (int i = 0; i < kSub; ++i)
              xa[i] = _mm512_loadu_si512(d.q + (size_t(m0 + h + i) * d.supers + S) * 512 + 64 * k);
#pragma GCC unroll 8
            for (int j = 0; j < NR; ++j) {
              const __m512i wb = _mm512_load_si512(wS + j * kW + k);
              for (int i = 0; i < kSub; ++i) t[i][j] = _mm512_dpbusd_epi32(t[i][j], wb, xa[i]);
            }
          }
          for (int i = 0; i < kSub; ++i) {
            const __m512 dxv = _mm512_loadu_ps(d.dx + (size_t(m0 + h + i) * d.supers + S) * 16);
            for (int j = 0; j < NR; ++j) {
              const __m512 dwv = _mm512_castsi512_ps(_mm512_load_si512(wS + j * kW + 8));
              acc[h + i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t[i][j]), _mm512_mul_ps(dwv, dxv),
                                              acc[h + i][j]);
            }
          }
        }
      }
      n += 64 * d.supers * MR * NR / 8;
      // The finish: a lane-sum network per 16 (8) accumulators, one store per tile row.
      __m512 v[16];
      for (int t = 0; t < 16; ++t) v[t] = t < MR * NR ? acc[t / NR][t % NR] : _mm512_setzero_ps();
      const __m512 tw = tessera::cpu::TreeSum16Lanes(v);
      for (int i = 0; i < MR; ++i) {
        const __m512 r = _mm512_permutexvar_ps(_mm512_set1_epi32(i), tw);
        if constexpr (NR == 8)
          _mm256_storeu_ps(out + size_t(m0 + i) * 8, _mm512_castps512_ps256(r));
        else
          _mm_storeu_ps(out + size_t(m0 + i) * 8, _mm512_castps512_ps128(r));
      }
      if constexpr (MR * NR > 16) keep = _mm512_add_ps(keep, acc[MR - 1][NR - 1]);
    }
  }
  *sink += _mm512_reduce_add_ps(keep) + out[0];
  return n;
}

struct Step {
  std::string name;
  std::function<int64_t(float*)> run;  // returns vpdpbusd executed
};

}  // namespace

int main(int argc, char** argv) {
  const double secs = argc > 1 ? std::atof(argv[1]) : 0.3;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  // K = 896 (gate/up: 2 supersteps), panel of 409 rows (the kernel's 512 KiB budget).
  Data g(409, 2);
  // K = 4864 (down), a range of 5 supersteps (kRangeSupers<8> = 24 KiB), 81 rows.
  Data dn(81, 5);
  std::vector<Step> steps = {
      {"probe: 16 chains, registers", [](float* s) { return Probe(1 << 20, s); }},
      {"8 chains, registers", [](float* s) { return Chains8(1 << 21, s); }},
      {"8 x 8 per superstep, registers",
       [&](float* s) { return Loop<false, false, false, false>(g, 4000, s); }},
      {"+ weights from L1", [&](float* s) { return Loop<true, false, false, false>(g, 4000, s); }},
      {"+ activations, corr from L2 panel (one row)",
       [&](float* s) { return Loop<true, true, false, false>(g, 4000, s); }},
      {"+ float update (one row)",
       [&](float* s) { return Loop<true, true, true, false>(g, 4000, s); }},
      {"+ panel of 409 rows, state stores (K=896)",
       [&](float* s) { return Loop<true, true, true, true>(g, 10, s); }},
      {"  same without float update",
       [&](float* s) { return Loop<true, true, false, true>(g, 10, s); }},
      {"  rows walked, no state stores (K=896)",
       [&](float* s) { return Loop<true, true, true, true, 0, false>(g, 10, s); }},
      {"  rows walked, finish + output stores (K=896)",
       [&](float* s) { return Loop<true, true, true, true, 0, false, 1>(g, 10, s); }},
      {"  finish, stores to a compact buffer",
       [&](float* s) { return Loop<true, true, true, true, 0, false, 2>(g, 10, s); }},
      {"  finish, output stored one tile late",
       [&](float* s) { return Loop<true, true, true, true, 0, false, 4>(g, 10, s); }},
      {"  finish, a constant stored (compact)",
       [&](float* s) { return Loop<true, true, true, true, 0, false, 5>(g, 10, s); }},
      {"  finish, stored to one address",
       [&](float* s) { return Loop<true, true, true, true, 0, false, 6>(g, 10, s); }},
      {"  finish, one store per 2 tiles (compact)",
       [&](float* s) { return Loop<true, true, true, true, 0, false, 7>(g, 10, s); }},
      {"  finish + a scalar store",
       [&](float* s) { return Loop<true, true, true, true, 0, false, 8>(g, 10, s); }},
      {"  finish + a 512-bit constant store",
       [&](float* s) { return Loop<true, true, true, true, 0, false, 9>(g, 10, s); }},
      {"  finish, no store",
       [&](float* s) { return Loop<true, true, true, true, 0, false, 3>(g, 10, s); }},
      {"  + prefetch next row (K=896)",
       [&](float* s) { return Loop<true, true, true, true, 1>(g, 10, s); }},
      {"  + prefetch row+2 (K=896)",
       [&](float* s) { return Loop<true, true, true, true, 2>(g, 10, s); }},
      {"shape 1 x 8 (the finish: a 16-lane network)",
       [&](float* s) { return Shape<1, 8, 1>(g, 10, s); }},
      {"shape 2 x 8, row by row", [&](float* s) { return Shape<2, 8, 1>(g, 10, s); }},
      {"shape 2 x 4", [&](float* s) { return Shape<2, 4, 2>(g, 10, s); }},
      {"shape 3 x 4", [&](float* s) { return Shape<3, 4, 3>(g, 10, s); }},
      {"shape 2 x 6", [&](float* s) { return Shape<2, 6, 2>(g, 10, s); }},
      {"shape 4 x 4, 2 rows at a time", [&](float* s) { return Shape<4, 4, 2>(g, 10, s); }},
      {"shape 1 x 8, 5 supersteps, 81 rows", [&](float* s) { return Shape<1, 8, 1>(dn, 20, s); }},
      {"shape 3 x 4, 5 supersteps, 81 rows", [&](float* s) { return Shape<3, 4, 3>(dn, 20, s); }},
      {"  K=4864 range: 5 supers, 81 rows",
       [&](float* s) { return Loop<true, true, true, true>(dn, 20, s); }},
      {"  K=4864 + prefetch next row",
       [&](float* s) { return Loop<true, true, true, true, 1>(dn, 20, s); }},
  };
  float sink = 0;
  std::vector<std::vector<double>> rate(steps.size());
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < steps.size(); ++i) {
      int64_t n = 0;
      const double t0 = CpuSeconds();
      double t1 = t0;
      while (t1 - t0 < secs) {
        n += steps[i].run(&sink);
        t1 = CpuSeconds();
      }
      rate[i].push_back(double(n) / (t1 - t0) * 1e-9);
    }
  }
  double probe = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    std::sort(rate[i].begin(), rate[i].end());
    const double best = rate[i].back(), med = rate[i][rate[i].size() / 2];
    if (i == 0) probe = best;  // best = the least disturbed reading (the box is shared)
    std::printf("%-46s vpdpbusd/ns best %5.2f med %5.2f  GOP/cpu-s %6.0f  of probe %.2f\n",
                steps[i].name.c_str(), best, med, best * 128, best / probe);
  }
  std::fprintf(stderr, "(sink %g)\n", sink);
  return 0;
}
