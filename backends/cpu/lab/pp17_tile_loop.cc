// Lab loop (cpu-pp17): the bf16 GEMM's 4 x 4 tile loop alone (no epilogue), x read from four rows
// of a 128-row panel (mode 0, the HEAD layout), with software prefetch ahead in the rows (1) or of
// the next tile (3), or from the tile-packed order (2; 4: packed + prefetch). GFLOP per CPU-second,
// best of 5. Not part of the build:
//   g++ -O3 -mavx512f -mfma -o /tmp/pp17_tile_loop backends/cpu/lab/pp17_tile_loop.cc
//   for m in "0" "1 64" "2" "3" "4 256"; do /tmp/pp17_tile_loop 896 $m; done
// Zen 5 dev box (20:01, load 2.7): mode 0 151-162, 1 (64 floats ahead) 174-183, 2 199-201,
// 3 153-166, 4 188-200.
#include <immintrin.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>
static double cpu() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}
template <int MODE>
__attribute__((noinline)) void run(const float* x, int R, int K, const float* w, int G, float* out,
                                   int dist) {
  for (int g = 0; g < G; ++g)
    for (int m = 0; m < R; m += 4) {
      const float* x0 = x + (long)m * K;  // MODE 2: packed tile: [k/16][4][16]
      const float* xn = x + (long)((m + 4) % R) * K;
      __m512 c[16];
      for (int i = 0; i < 16; ++i) c[i] = _mm512_setzero_ps();
      for (int k = 0; k < K; k += 16) {
        __m512 wv0 = _mm512_loadu_ps(w + k), wv1 = _mm512_loadu_ps(w + 1024 + k),
               wv2 = _mm512_loadu_ps(w + 2048 + k), wv3 = _mm512_loadu_ps(w + 3072 + k);
        if (MODE == 1) {
          for (int i = 0; i < 4; ++i)
            _mm_prefetch((const char*)(x0 + (long)i * K + k + dist), _MM_HINT_T0);
        }
        if (MODE == 3) {
          for (int i = 0; i < 4; ++i)
            _mm_prefetch((const char*)(xn + (long)i * K + k), _MM_HINT_T0);
        }
        if (MODE == 4) {
          _mm_prefetch((const char*)(x0 + 4L * k + dist), _MM_HINT_T0);
        }
        for (int i = 0; i < 4; ++i) {
          __m512 xv = (MODE == 2 || MODE == 4) ? _mm512_loadu_ps(x0 + 4L * k + 16 * i)
                                               : _mm512_loadu_ps(x0 + (long)i * K + k);
          c[4 * i] = _mm512_fmadd_ps(xv, wv0, c[4 * i]);
          c[4 * i + 1] = _mm512_fmadd_ps(xv, wv1, c[4 * i + 1]);
          c[4 * i + 2] = _mm512_fmadd_ps(xv, wv2, c[4 * i + 2]);
          c[4 * i + 3] = _mm512_fmadd_ps(xv, wv3, c[4 * i + 3]);
        }
      }
      __m512 s0 = _mm512_add_ps(_mm512_add_ps(c[0], c[1]), _mm512_add_ps(c[2], c[3]));
      __m512 s1 = _mm512_add_ps(_mm512_add_ps(c[4], c[5]), _mm512_add_ps(c[6], c[7]));
      __m512 s2 = _mm512_add_ps(_mm512_add_ps(c[8], c[9]), _mm512_add_ps(c[10], c[11]));
      __m512 s3 = _mm512_add_ps(_mm512_add_ps(c[12], c[13]), _mm512_add_ps(c[14], c[15]));
      _mm512_storeu_ps(out + 16 * (m / 4),
                       _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    }
}
int main(int argc, char** argv) {
  int R = 128, K = atoi(argv[1]);
  int mode = atoi(argv[2]);
  int dist = argc > 3 ? atoi(argv[3]) : 0;
  std::vector<float> x((long)R * K, 0.001f), w(4096, 0.002f), out(R * 16);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    int G = 2000;
    double c0 = cpu();
    switch (mode) {
      case 0: run<0>(x.data(), R, K, w.data(), G, out.data(), dist); break;
      case 1: run<1>(x.data(), R, K, w.data(), G, out.data(), dist); break;
      case 2: run<2>(x.data(), R, K, w.data(), G, out.data(), dist); break;
      case 3: run<3>(x.data(), R, K, w.data(), G, out.data(), dist); break;
      case 4: run<4>(x.data(), R, K, w.data(), G, out.data(), dist); break;
    }
    double c = cpu() - c0;
    double r = 2.0 * G * R * 4 * K / c / 1e9;
    if (r > best) best = r;
  }
  printf("K %d mode %d dist %d: best %.1f GFLOP/CPU-s\n", K, mode, dist, best);
}
