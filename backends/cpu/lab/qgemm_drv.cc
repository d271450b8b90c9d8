// qgemm_drv: the int8 GEMM of kernels_qgemm.cc (QMatmulColumns: the 3 x 4 / 1 x 8 tiles) called
// directly on one shape, without the plugin, the pool or the activation quantization: its rate
// in int8 GOP per CPU-second (2 M N K over the CPU time), to compare with int8_ladder's loops.
//
//   F="-O3 -std=c++20 -I. -Iplugins-api/include -Ibackends/common/include -Icore/include"
//   g++ $F -c -o /tmp/kernels_qmatmul.o backends/cpu/kernels_qmatmul.cc  # the 1 x 8 tiles
//   g++ $F -o /tmp/qgemm_drv backends/cpu/lab/qgemm_drv.cc /tmp/kernels_qmatmul.o -lpthread
//   nice -n -19 /tmp/qgemm_drv M K N [copies] [reps] [q8|q4] [threads]
//
// copies: that many weight matrices, used in turn (1: the weights stay in L2/L3; 24: streamed
// from memory as in a model). threads > 1: the columns split as RunProblems splits them (four
// chunks a thread), run on std::threads. The weights are operand-packed (the engine's default,
// repack=int8) with sane scales; activations random. ACT_MISALIGN=B puts the activation rows B
// bytes past a 64-byte boundary (default 16, where glibc's large blocks put them before
// LayoutQuantizedActs aligned them). The 1 x 8 / 3 x 4 switches of kernels_qgemm.cc
// (TESSERA_CPU_QGEMM_TILE, _RANGE_KB, _PANEL_KB) apply. OUT_STRIDE0=1 (a bound, wrong output):
// every row's sums go to row 0, so the output stores hit one L1-resident row instead of [M, N]
// (K = 896: +6-11%, cpu-q8pp13 in docs/benchmarks.md). QG_CHUNK=C: tasks of C columns instead of
// ColumnChunk's (the task split; cpu-q20). QG_DUMP=FILE writes the output [M, N] (f32) after
// the last run, so two variants' bits can be compared with cmp (cpu-q21: the weights' partial
// superstep scales and the activations' padding lanes are set as the engine's are, so no output
// is NaN).
//
// Variants of the kernel without editing the tree: put edited copies of kernels_qgemm.cc,
// kernels_qmatmul.cc and kernels_qmatmul-inl.h under DIR/backends/cpu/ and compile with -IDIR
// before -I. (the quoted includes then find the copies first); lab/int8_unpack_*.diff.
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "backends/cpu/kernels_qgemm.cc"  // NOLINT(build/include): the unit under test

namespace tessera::cpu {
const MatmulPrefetchPolicy& PrefetchPolicy() {
  static const MatmulPrefetchPolicy p;
  return p;
}
}  // namespace tessera::cpu

namespace {

double CpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

double WallSeconds() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tessera::cpu;  // NOLINT(build/namespaces): a lab driver
  if (argc < 4) {
    std::fprintf(stderr, "qgemm_drv M K N [copies] [reps] [q8|q4] [threads]\n");
    return 2;
  }
  const int64_t M = std::atoll(argv[1]), K = std::atoll(argv[2]), N = std::atoll(argv[3]);
  const int copies = argc > 4 ? std::atoi(argv[4]) : 1;
  const int reps = argc > 5 ? std::atoi(argv[5]) : 5;
  const bool q8 = argc > 6 ? std::string(argv[6]) != "q4" : true;
  const int threads = argc > 7 ? std::atoi(argv[7]) : 1;
  const int64_t bb = q8 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
  const int64_t row_bytes = K / TSR_QBLOCK * bb;
  const int64_t supers = (K + 511) / 512, full = K / 512;
  std::mt19937 rng(7);
  // Weights: random bytes, then the scales made sane (0x1419, ~0.001): a full superstep's 16
  // binary16 scales follow its operands, as do the partial one's nb.
  std::vector<std::vector<uint8_t>> ws(copies);
  for (auto& w : ws) {
    w.resize(static_cast<size_t>(N * row_bytes) + 64);
    for (auto& b : w) b = static_cast<uint8_t>(rng());
    for (int64_t n = 0; n < N; ++n) {
      uint8_t* r = w.data() + n * row_bytes;
      for (int64_t S = 0; S < full; ++S) {
        uint8_t* sc = r + S * 16 * bb + (q8 ? 512 : 256);
        for (int l = 0; l < 16; ++l) sc[2 * l] = 0x19, sc[2 * l + 1] = 0x14;
      }
      // The partial last superstep, operand-packed (PartialOperands): nb blocks' operands, then
      // their nb scales.
      const int64_t nb = K / TSR_QBLOCK - full * 16;
      uint8_t* ps = r + full * 16 * bb + (q8 ? 32 : 16) * nb;
      for (int64_t l = 0; l < nb; ++l) ps[2 * l] = 0x19, ps[2 * l + 1] = 0x14;
    }
  }
  // Activations at `act_misalign` bytes past a 64-byte boundary (glibc's large blocks: 16).
  const int64_t act_misalign =
      std::getenv("ACT_MISALIGN") ? std::atoll(std::getenv("ACT_MISALIGN")) : 16;
  std::vector<uint8_t> act_raw(static_cast<size_t>(M * supers * (512 + 128)) + 128);
  uint8_t* act0 = reinterpret_cast<uint8_t*>(
      (reinterpret_cast<uintptr_t>(act_raw.data()) + 63) / 64 * 64 + act_misalign);
  std::span<int8_t> q(reinterpret_cast<int8_t*>(act0), static_cast<size_t>(M * supers * 512));
  std::span<int32_t> corr(reinterpret_cast<int32_t*>(act0 + M * supers * 512),
                          static_cast<size_t>(M * supers * 16));
  std::span<float> dx(reinterpret_cast<float*>(act0 + M * supers * (512 + 64)), corr.size());
  for (auto& v : q) v = static_cast<int8_t>(rng() % 255 - 127);
  for (size_t i = 0; i < corr.size(); ++i) {
    corr[i] = static_cast<int32_t>(rng() % 4000) - 2000;
    dx[i] = 0.01f + 0.001f * static_cast<float>(rng() % 10);
  }
  // Padding lanes of a partial last superstep: zero, as the quantizer leaves them.
  if (const int64_t nb = K / TSR_QBLOCK - full * 16; nb > 0) {
    for (int64_t m = 0; m < M; ++m) {
      for (int l = 0; l < 16; ++l) {
        if (LaneOfBlock(l) < nb) continue;
        const int64_t lane = (m * supers + full) * 16 + l;
        for (int k = 0; k < 8; ++k)
          for (int b = 0; b < 4; ++b) q[(m * supers + full) * 512 + 64 * k + 4 * l + b] = 0;
        corr[lane] = 0;
        dx[lane] = 0.0f;
      }
    }
  }
  QuantizedActs a;
  a.q = q.data();
  a.corr = corr.data();
  a.dx = dx.data();
  a.steps = (K + 127) / 128;
  a.supers = supers;
  a.blocked = true;
  std::vector<float> out(static_cast<size_t>(M * N));
  std::vector<MatmulProblem> ps(copies);
  for (int c = 0; c < copies; ++c) {
    MatmulProblem& p = ps[c];
    p.M = M, p.K = K, p.N = N;
    p.w = ws[c].data();
    p.w_row_bytes = row_bytes;
    p.w_dtype = q8 ? TSR_DTYPE_Q8_B32 : TSR_DTYPE_Q4_B32;
    p.out = out.data();
    p.out_row_stride = std::getenv("OUT_STRIDE0") != nullptr ? 0 : N;
    p.qx = &a;
    p.int8_dot = Int8Dot::kOn;
    p.w_packed = true;
  }
  // RunProblems' split: ColumnChunk (four chunks a thread, multiples of 8, >= 16).
  const int64_t want = 4 * threads, c0 = (N + want - 1) / want;
  int64_t chunk = std::max<int64_t>(16, (c0 + 7) / 8 * 8);
  // QG_CHUNK=C: C columns a task instead (the task split's lab switch).
  if (const char* e = std::getenv("QG_CHUNK"); e != nullptr && *e != '\0') chunk = std::atoll(e);
  const int64_t tasks = (N + chunk - 1) / chunk;
  auto run = [&](const MatmulProblem& p) {
    if (threads == 1) {
      for (int64_t t = 0; t < tasks; ++t)
        QMatmulColumns(p, t * chunk, std::min(N, (t + 1) * chunk));
      return;
    }
    std::atomic<int64_t> next{0};
    std::vector<std::thread> th;
    for (int i = 0; i < threads; ++i) {
      th.emplace_back([&] {
        for (int64_t t; (t = next.fetch_add(1)) < tasks;)
          QMatmulColumns(p, t * chunk, std::min(N, (t + 1) * chunk));
      });
    }
    for (auto& t : th) t.join();
  };
  for (auto& p : ps) run(p);  // warm-up
  std::vector<double> rate;
  double best_wall = 1e9;
  for (int r = 0; r < reps; ++r) {
    const double c = CpuSeconds(), w = WallSeconds();
    for (auto& p : ps) run(p);
    const double cs = CpuSeconds() - c, wsec = WallSeconds() - w;
    rate.push_back(2.0 * M * N * K * copies / cs * 1e-9);
    best_wall = std::min(best_wall, wsec);
  }
  // QG_DUMP=FILE: the output [M, N] after the last run, for comparing variants' bits (cmp).
  if (const char* e = std::getenv("QG_DUMP"); e != nullptr && *e != '\0') {
    if (FILE* f = std::fopen(e, "wb")) {
      std::fwrite(out.data(), sizeof(float), out.size(), f);
      std::fclose(f);
    }
  }
  std::sort(rate.begin(), rate.end());
  std::printf(
      "M %lld K %lld N %lld %s copies %d threads %d: int8 GOP per CPU-s best %.1f median %.1f;"
      " wall best %.2f ms (%.1f GOP/s); out[1] %g\n",
      static_cast<long long>(M), static_cast<long long>(K), static_cast<long long>(N),
      q8 ? "q8" : "q4", copies, threads, rate.back(), rate[rate.size() / 2], best_wall * 1e3,
      2.0 * M * N * K * copies / best_wall * 1e-9, out[1]);
  return 0;
}
