// Prefill GEMM lab (target cuda_gemm_lab): every k_gemm_bf16.cu configuration bit-checked
// against the decode GEMV (M <= 8 launches over all rows: the canonical order's reference) and
// timed on the prefill shapes of the three benchmark models at M = 2048 and 512, next to the
// default dispatch (LaunchGemmBf16, the split pre-pass included) and cuBLASLt (bf16 x bf16 -> f32,
// dlopen'ed; see lab/cublaslt.h).
//
//   cuda_gemm_lab [--no-check] [--default-only] [--wgmma-only] [--wg-from=C]
//   cuda_gemm_lab --smallm | --smallm-quick   (decode batches, see SmallMTimes)
//   cuda_gemm_lab --normfuse   (RMS_NORM in the decode-batch GEMM's split, see NormFuseChecks)
//   cuda_gemm_lab --addfuse    (residual ADD / SWIGLU in the decode-batch GEMM, AddFuseChecks)
//   cuda_gemm_lab --prefillfuse (the shared split, RMS_NORM / SWIGLU in it at prefill M)
//   cuda_gemm_lab --group      (grouped stream-K decode GEMMs, GroupChecks)
//   cuda_gemm_lab --splitk     (SmallMChecks and PrefillSplitChecks alone: the split-K tiles)
// With TESSERA_CUDA_WGMMA (sm_90 devices): the wgmma kernels (k_gemm_wgmma.cu) too, "wg<c>", and
// the TMA-fed ones (k_gemm_tma.cu, configurations >= kTmaConfig0), "tma<tile>".
// TESSERA_CUDA_GEMM=old makes the default dispatch the previous kernels (the "before" column).
// TESSERA_LAB_TMA=c,c,...: only those TMA configurations in the prefill checks and timings.
// TESSERA_LAB_ORDER=1: the timings in the order of TESSERA_LAB_TMA (cu-gemm18).
// TESSERA_LAB_SHAPES=a,b,...: only those shapes (prefill, --smallm, --group, --addfuse, the members
// checks); TESSERA_LAB_TERMS=3|1
// and (--smallm) TESSERA_LAB_M=64|16: only those (cu21-x64).
// Lines are "name key=value ...". Exit code 1 if a check fails.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/cuda/lab/cublaslt.h"
#include "backends/cuda/lab/lab_util.h"
#include "backends/cuda/launch.h"
#ifdef TESSERA_CUDA_WGMMA
#include "backends/cuda/gemm_wgmma.h"
#endif

namespace tessera::cuda {
namespace {

using lab::Check;
using lab::DeviceCopy;
using lab::Malloc;
using lab::TimeMs;
using lab::ToBf16;

int g_failures = 0;
bool g_wgmma = false;         // device is sm_90 and the wgmma kernels are linked in
bool g_wgmma_only = false;    // --wgmma-only: skip the mma.sync configurations
int g_wg_from = 0;            // --wg-from=C: only wgmma configurations >= C (C = 7: the TMA ones)
bool g_smallm_quick = false;  // --smallm-quick: no heads, only the decode-batch TMA tiles

// TESSERA_LAB_TMA=c,c,...: only these TMA configurations (k_gemm_tma.cu numbers) in the prefill
// checks and timings (cu-gemm16; unset: all).
bool TmaSelected(int wg_config) {
  static const std::vector<int> sel = [] {
    std::vector<int> v;
    const char* e = std::getenv("TESSERA_LAB_TMA");
    for (const char* c = e; c != nullptr && *c != 0;) {
      v.push_back(std::atoi(c));
      c = std::strchr(c, ',');
      if (c != nullptr) ++c;
    }
    return v;
  }();
#ifdef TESSERA_CUDA_WGMMA
  if (sel.empty() || wg_config < kTmaConfig0) return true;
  return std::find(sel.begin(), sel.end(), wg_config - kTmaConfig0) != sel.end();
#else
  (void)wg_config;
  return true;
#endif
}

// The wgmma configurations TimeShape times, in order: g_wg_from .. GemmWgmmaConfigs() - 1 that
// TmaSelected takes, or (TESSERA_LAB_ORDER=1, cu-gemm18) those of TESSERA_LAB_TMA in the order
// listed there, so a second pass can time them in reverse (within a shape the later
// configurations of a long sequence can read low: the clock under sustained load).
std::vector<int> TimeOrder() {
  std::vector<int> v;
#ifdef TESSERA_CUDA_WGMMA
  const char* o = std::getenv("TESSERA_LAB_ORDER");
  const char* e = std::getenv("TESSERA_LAB_TMA");
  if (o != nullptr && std::atoi(o) == 1 && e != nullptr && *e != 0) {
    for (const char* c = e; c != nullptr && *c != 0;) {
      const int wc = std::atoi(c) + kTmaConfig0;
      if (wc >= g_wg_from && wc < GemmWgmmaConfigs()) v.push_back(wc);
      c = std::strchr(c, ',');
      if (c != nullptr) ++c;
    }
    return v;
  }
  for (int c = g_wg_from; c < GemmWgmmaConfigs(); ++c) {
    if (TmaSelected(c)) v.push_back(c);
  }
#endif
  return v;
}

// TESSERA_LAB_SHAPES=name,name,... / TESSERA_LAB_TERMS=1|3 (cu-gemm17): only those prefill
// shapes / that piece count in the timings (unset: all).
bool ShapeSelected(const char* name) {
  const char* e = std::getenv("TESSERA_LAB_SHAPES");
  if (e == nullptr || *e == 0) return true;
  const std::string list = std::string(",") + e + ",";
  return list.find(std::string(",") + name + ",") != std::string::npos;
}
bool TermsSelected(int terms) {
  const char* e = std::getenv("TESSERA_LAB_TERMS");
  return e == nullptr || *e == 0 || std::atoi(e) == terms;
}

// Diagnostic tiles that leave the canonical order ("nochunk": all of K as one chunk) are only
// timed.
bool Diagnostic(const char* name) {
  return std::strstr(name, "nochunk") != nullptr || std::strstr(name, "_diag") != nullptr;
}

// Device buffers of one problem: x [M, K] f32, w [N, K] bf16, bias [N], out [M, N], planes.
struct Dev {
  int64_t M = 0, N = 0, K = 0;
  float* x = nullptr;
  uint16_t* w = nullptr;
  float* bias = nullptr;
  float* out = nullptr;
  uint16_t* planes = nullptr;   // room for 3 pieces
  uint16_t* wplanes = nullptr;  // slot-permuted planes of the wgmma kernels (K padded to 32)
  Dev(int64_t m, int64_t n, int64_t k, uint32_t seed) : M(m), N(n), K(k) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> xs(M * K), bs(N);
    std::vector<uint16_t> ws(N * K);
    for (float& v : xs) v = u(rng);
    for (uint16_t& v : ws) v = ToBf16(u(rng));
    for (float& v : bs) v = u(rng);
    x = DeviceCopy(xs);
    w = DeviceCopy(ws);
    bias = DeviceCopy(bs);
    Check(Malloc(&out, M * N * 4), "malloc");
    Check(Malloc(&planes, PlaneBytes()), "malloc");
    Check(Malloc(&wplanes, WplaneBytes()), "malloc");
  }
  // The default dispatch's scratch at every M a check or timing uses: the planes, and the chunk
  // sums of the split-K tiles where the dispatch splits (prefill too since cu-gemm15).
  int64_t PlaneBytes() const {
    int64_t bytes = 3 * M * K * 2;
    for (int64_t rows : {M, int64_t{512}, int64_t{300}, int64_t{100}}) {
      if (rows > M) continue;
      MatmulParams p = Params(0, rows, true);
      for (int terms : {1, 3})
        bytes = std::max(bytes, static_cast<int64_t>(SplitPlaneBytes(p, terms)));
    }
    return bytes;
  }
  // The wgmma planes, and room for the split-K tiles' chunk sums at every M a check uses.
  int64_t WplaneBytes() const {
    int64_t bytes = 3 * M * ((K + 31) / 32 * 32) * 2;
#ifdef TESSERA_CUDA_WGMMA
    for (int64_t rows : {M, int64_t{100}, int64_t{64}, int64_t{16}}) {
      if (rows > M) continue;
      MatmulParams p;
      p.M = rows, p.N = N, p.K = K;
      for (int c = 0; c < GemmTmaConfigs(); ++c) {
        for (int terms : {1, 3})
          bytes = std::max(bytes, static_cast<int64_t>(GemmTmaScratchBytes(p, terms, c)));
      }
    }
#endif
    return bytes;
  }
  ~Dev() {
    cudaFree(wplanes);
    cudaFree(planes);
    cudaFree(out);
    cudaFree(bias);
    cudaFree(w);
    cudaFree(x);
  }
  MatmulParams Params(int64_t row0, int64_t rows, bool with_bias) const {
    MatmulParams p;
    p.x = x + row0 * K;
    p.x_row = K;
    p.M = rows;
    p.K = K;
    p.N = N;
    p.w = reinterpret_cast<const uint8_t*>(w);
    p.w_row_bytes = K * 2;
    p.w_dtype = TSR_DTYPE_BF16;
    p.bias = with_bias ? bias : nullptr;
    p.out = out;
    p.out_row = N;
    p.out_col = 1;
    return p;
  }
  std::vector<float> Download(int64_t rows) const {
    std::vector<float> h(rows * N);
    Check(cudaMemcpy(h.data(), out, h.size() * 4, cudaMemcpyDeviceToHost), "download");
    return h;
  }
};

void Expect(bool ok, const std::string& what) {
  std::printf("check %s %s\n", what.c_str(), ok ? "ok" : "FAILED");
  if (!ok) ++g_failures;
}

// The canonical reference: the GEMV over every row, 8 rows a launch.
std::vector<float> GemvReference(Dev& d, int terms) {
  for (int64_t r = 0; r < d.M; r += kGemvMaxRows) {
    MatmulParams p = d.Params(r, std::min<int64_t>(kGemvMaxRows, d.M - r), true);
    p.out = d.out + r * d.N;
    Check(LaunchGemvBf16(p, terms, nullptr), "gemv");
  }
  return d.Download(d.M);
}

// Every configuration (and the default dispatch) at M = 2048 and at M = 100 from row 3 (other
// tile positions, a partial tile) must equal the GEMV's rows bit for bit.
void BitChecks(int64_t N, int64_t K, int terms) {
  Dev d(2048, N, K, 4321 + static_cast<uint32_t>(N * 3 + K));
  const std::vector<float> ref = GemvReference(d, terms);
  const std::string tag =
      "N" + std::to_string(N) + "_K" + std::to_string(K) + "_terms" + std::to_string(terms);
  for (int c = -1; c < (g_wgmma_only ? 0 : GemmTiledConfigs()); ++c) {
    for (int64_t row0 : {int64_t{0}, int64_t{3}}) {
      const int64_t rows = row0 == 0 ? d.M : 100;
      const MatmulParams p = d.Params(row0, rows, true);
      Check(cudaMemset(d.out, 0xff, d.M * d.N * 4), "poison");
      if (c < 0) {
        Check(LaunchGemmBf16(p, terms, d.planes, nullptr), "gemm");
      } else {
        Check(LaunchSplitBf16(p, terms, d.planes, nullptr), "split");
        Check(LaunchGemmBf16Tiled(p, terms, d.planes, c, nullptr), "tiled");
      }
      const std::vector<float> got = d.Download(rows);
      const bool same = std::memcmp(got.data(), ref.data() + row0 * N, got.size() * 4) == 0;
      Expect(same, "gemv_vs_gemm_" + (c < 0 ? std::string("default") : "cfg" + std::to_string(c)) +
                       "_M" + std::to_string(rows) + "_" + tag);
    }
  }
#ifdef TESSERA_CUDA_WGMMA
  for (int c = g_wg_from; g_wgmma && c < GemmWgmmaConfigs(); ++c) {
    if (!TmaSelected(c) || Diagnostic(GemmWgmmaName(c, terms))) continue;
    for (int64_t row0 : {int64_t{0}, int64_t{3}}) {
      const int64_t rows = row0 == 0 ? d.M : 100;
      const MatmulParams p = d.Params(row0, rows, true);
      Check(cudaMemset(d.out, 0xff, d.M * d.N * 4), "poison");
      Check(LaunchSplitBf16Wgmma(p, terms, d.wplanes, nullptr), "wgmma split");
      // The x-splitting TMA tiles (cuda-gemm3) get no planes: they read x alone.
      const bool xsplit = c >= kTmaConfig0 + kTmaXsplit0 && c < kTmaConfig0 + kTmaPersist0;
      Check(LaunchGemmWgmma(p, terms, xsplit ? nullptr : d.wplanes, c, nullptr), "wgmma");
      const std::vector<float> got = d.Download(rows);
      int64_t differ = 0, first = -1;
      for (size_t i = 0; i < got.size(); ++i) {
        if (std::memcmp(&got[i], &ref[row0 * N + i], 4) == 0) continue;
        if (first < 0) first = static_cast<int64_t>(i);
        ++differ;
      }
      if (differ > 0) {
        std::printf("wgmma differ=%lld of %zu first at m=%lld n=%lld: got %.9g want %.9g\n",
                    static_cast<long long>(differ), got.size(), static_cast<long long>(first / N),
                    static_cast<long long>(first % N), got[first], ref[row0 * N + first]);
      }
      Expect(differ == 0, "gemv_vs_wgmma_cfg" + std::to_string(c) + "_" + GemmWgmmaName(c, terms) +
                              "_M" + std::to_string(rows) + "_" + tag);
    }
  }
#endif
}

// Zero sums (cu-gemm16): x rows of zeros against all-negative weight rows (every product -0) and
// mixed rows, no bias, K of 33 k32 blocks (5 chunks, the last one partial, a last stage of one
// block): every TMA configuration's outputs (the sign of each zero included) must equal the
// GEMV's (a chunk started other than from +0 registers, e.g. by a scale-d = 0 wgmma, could differ
// in the sign of a zero chunk sum).
void ZeroChecks(int terms) {
  const int64_t M = 256, N = 256, K = 1056;
  Dev d(M, N, K, 2468);
  std::vector<float> xs(M * K);
  std::vector<uint16_t> ws(N * K);
  Check(cudaMemcpy(xs.data(), d.x, xs.size() * 4, cudaMemcpyDeviceToHost), "download");
  Check(cudaMemcpy(ws.data(), d.w, ws.size() * 2, cudaMemcpyDeviceToHost), "download");
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t k = 0; k < K; ++k) {
      float& v = xs[m * K + k];
      if (m % 4 == 0) v = 0.0f;                                      // a zero row
      if (m % 4 == 1) v = k < 256 ? 0.0f : v;                        // a zero first chunk
      if (m % 4 == 2) v = (k / 256) % 2 == 1 ? 0.0f : std::fabs(v);  // zero odd chunks
    }
  }
  for (int64_t n = 0; n < N / 2; ++n) {
    for (int64_t k = 0; k < K; ++k) ws[n * K + k] |= 0x8000;  // all-negative rows
  }
  Check(cudaMemcpy(d.x, xs.data(), xs.size() * 4, cudaMemcpyHostToDevice), "upload");
  Check(cudaMemcpy(d.w, ws.data(), ws.size() * 2, cudaMemcpyHostToDevice), "upload");
  for (int64_t r = 0; r < M; r += kGemvMaxRows) {
    MatmulParams p = d.Params(r, std::min<int64_t>(kGemvMaxRows, M - r), false);
    p.out = d.out + r * N;
    Check(LaunchGemvBf16(p, terms, nullptr), "gemv");
  }
  const std::vector<float> ref = d.Download(M);
  int64_t neg = 0, pos = 0;
  for (float v : ref) {
    if (v == 0.0f) ++(std::signbit(v) ? neg : pos);
  }
  std::printf("zero_checks terms=%d reference zeros: -0 %lld, +0 %lld\n", terms,
              static_cast<long long>(neg), static_cast<long long>(pos));
#ifdef TESSERA_CUDA_WGMMA
  for (int c = -1; c < (g_wgmma ? GemmWgmmaConfigs() : 0); ++c) {
    if (c >= 0 && (c < g_wg_from || !TmaSelected(c) || Diagnostic(GemmWgmmaName(c, terms))))
      continue;
    const MatmulParams p = d.Params(0, M, false);
    Check(cudaMemset(d.out, 0xff, M * N * 4), "poison");
    if (c < 0) {
      Check(LaunchGemmBf16(p, terms, d.planes, nullptr), "gemm");
    } else {
      Check(LaunchSplitBf16Wgmma(p, terms, d.wplanes, nullptr), "wgmma split");
      const bool xsplit = c >= kTmaConfig0 + kTmaXsplit0 && c < kTmaConfig0 + kTmaPersist0;
      Check(LaunchGemmWgmma(p, terms, xsplit ? nullptr : d.wplanes, c, nullptr), "wgmma");
    }
    const std::vector<float> got = d.Download(M);
    const bool same = std::memcmp(got.data(), ref.data(), got.size() * 4) == 0;
    Expect(same, std::string("zero_") + (c < 0 ? "default" : GemmWgmmaName(c, terms)) + "_terms" +
                     std::to_string(terms));
  }
#endif
}

// Decode batches (M = 16, 64; from row 5 too): the default dispatch, which splits K over
// blocks by chunks for these small grids (TESSERA_CUDA_GEMM_SPLITK), must equal the GEMV's rows.
void SmallMChecks(int64_t N, int64_t K, int terms) {
  Dev d(72, N, K, 977 + static_cast<uint32_t>(N * 5 + K));
  const std::vector<float> ref = GemvReference(d, terms);
  const std::string tag =
      "N" + std::to_string(N) + "_K" + std::to_string(K) + "_terms" + std::to_string(terms);
  for (int64_t rows : {int64_t{64}, int64_t{16}}) {
    for (int64_t row0 : {int64_t{0}, int64_t{5}}) {
      const MatmulParams p = d.Params(row0, rows, true);
      void* planes = nullptr;
      Check(cudaMalloc(&planes, SplitPlaneBytes(p, terms)), "malloc");
      Check(cudaMemset(d.out, 0xff, d.M * d.N * 4), "poison");
      Check(LaunchGemmBf16(p, terms, static_cast<uint16_t*>(planes), nullptr), "gemm");
      const std::vector<float> got = d.Download(rows);
      cudaFree(planes);
      const bool same = std::memcmp(got.data(), ref.data() + row0 * N, got.size() * 4) == 0;
      Expect(same, "gemv_vs_gemm_smallm_M" + std::to_string(rows) + "_row" + std::to_string(row0) +
                       "_" + tag);
    }
  }
}

struct Shape {
  const char* name;
  int64_t N, K;
};

// Prefill split-K (cu-gemm15): the default dispatch on the prefill shapes whose 128 x 64 tile grid
// fills at most half the SMs (M = 512 from row 0, M = 300 from row 7: a partial token tile; 0.5B
// k_v at M = 2048 too) must equal the GEMV's rows bit for bit; the line says which configuration
// the auto choice took and whether it splits (GemmTmaPrefillSplit).
void PrefillSplitChecks() {
  const Shape shapes[] = {{"8B.k_v", 1024, 4096},  {"1B.k_v", 512, 2048},  {"1B.q_o", 2048, 2048},
                          {"1B.down", 2048, 8192}, {"0.5B.q_o", 896, 896}, {"0.5B.k_v", 128, 896},
                          {"0.5B.down", 896, 4864}};
  for (const Shape& s : shapes) {
    const int64_t mmax = s.N == 128 ? 2048 : 512;
    Dev d(mmax, s.N, s.K, 31 + static_cast<uint32_t>(s.N + s.K));
    for (int terms : {3, 1}) {
      const std::vector<float> ref = GemvReference(d, terms);
      for (int64_t rows : {mmax, int64_t{512}, int64_t{300}}) {
        if (rows == 512 && mmax == 512) continue;
        const int64_t row0 = rows == 300 ? 7 : 0;
        const MatmulParams p = d.Params(row0, rows, true);
        Check(cudaMemset(d.out, 0xff, d.M * d.N * 4), "poison");
        Check(LaunchGemmBf16(p, terms, d.planes, nullptr), "gemm");
        const std::vector<float> got = d.Download(rows);
        const bool same = std::memcmp(got.data(), ref.data() + row0 * s.N, got.size() * 4) == 0;
        std::string how = "auto=?";
#ifdef TESSERA_CUDA_WGMMA
        const int c = GemmTiledAuto(p, terms, DeviceSms()) - kGemmTiledWgmma0;
        if (c >= 0) {
          const int split = c >= kTmaConfig0 ? GemmTmaPrefillSplit(p, c - kTmaConfig0, terms) : -1;
          how = std::string("auto=") + GemmWgmmaName(c, terms) +
                (split >= 0 ? std::string("_split_") + GemmTmaName(split, terms) : "_unsplit");
        }
#endif
        Expect(same, "prefill_split_" + std::string(s.name) + "_M" + std::to_string(rows) + "_row" +
                         std::to_string(row0) + "_terms" + std::to_string(terms) + "_" + how);
      }
    }
  }
}

void TimeShape(const Shape& s, int64_t M, bool default_only, lab::CublasLt& lt) {
  Dev d(M, s.N, s.K, 77);
  const double flop = 2.0 * M * s.N * s.K;
  const auto tf = [&](double ms) { return flop / (ms * 1e-3) / 1e12; };
  double lt_tf = 0;
  if (!default_only && lt.Available()) {
    // cuBLASLt on x rounded to bf16 (the one-piece plane).
    const MatmulParams p = d.Params(0, M, false);
    Check(LaunchSplitBf16(p, 1, d.planes, nullptr), "split");
    lab::CublasLt::Plan plan = lt.Make(M, s.N, s.K);
    if (plan.ok && lt.Run(plan, d.w, d.planes, d.out, nullptr) == 0) {
      lt_tf = tf(TimeMs(5, 10, [&](int) { lt.Run(plan, d.w, d.planes, d.out, nullptr); }));
    } else {
      std::printf("cublaslt no plan for %s\n", s.name);
    }
    lt.Free(plan);
    Check(cudaDeviceSynchronize(), "cublaslt");
  }
  for (int terms : {3, 1}) {
    if (!TermsSelected(terms)) continue;
    const MatmulParams p = d.Params(0, M, false);
    const double def_ms =
        TimeMs(5, 10, [&](int) { Check(LaunchGemmBf16(p, terms, d.planes, nullptr), "gemm"); });
    std::printf("gemm %s M=%lld N=%lld K=%lld terms=%d default_ms=%.3f TFLOP/s=%.1f", s.name,
                static_cast<long long>(M), static_cast<long long>(s.N), static_cast<long long>(s.K),
                terms, def_ms, tf(def_ms));
    if (lt_tf > 0) std::printf(" cublaslt_TFLOP/s=%.1f ratio=%.3f", lt_tf, tf(def_ms) / lt_tf);
#ifdef TESSERA_CUDA_WGMMA
    {  // what the default ran (cu-gemm15): the auto configuration and its prefill split-K twin
      const int c = GemmTiledAuto(p, terms, DeviceSms()) - kGemmTiledWgmma0;
      if (c >= kTmaConfig0) {
        const int split = GemmTmaPrefillSplit(p, c - kTmaConfig0, terms);
        std::printf(" auto=%s%s", GemmWgmmaName(c, terms),
                    split >= 0 ? (std::string("_split_") + GemmTmaName(split, terms)).c_str() : "");
      }
    }
#endif
    if (!default_only) {
      const double split_ms =
          TimeMs(5, 10, [&](int) { Check(LaunchSplitBf16(p, terms, d.planes, nullptr), "split"); });
      std::printf(" split_us=%.1f kernel_TFLOP/s:", split_ms * 1e3);
      for (int c = 0; c < (g_wgmma_only ? 0 : GemmTiledConfigs()); ++c) {
        const double ms = TimeMs(5, 10, [&](int) {
          Check(LaunchGemmBf16Tiled(p, terms, d.planes, c, nullptr), "tiled");
        });
        std::printf(" cfg%d=%.1f", c, tf(ms));
      }
#ifdef TESSERA_CUDA_WGMMA
      if (g_wgmma) {
        const double wsplit_ms = TimeMs(5, 10, [&](int) {
          Check(LaunchSplitBf16Wgmma(p, terms, d.wplanes, nullptr), "wgmma split");
        });
        std::printf(" wgmma_split_us=%.1f", wsplit_ms * 1e3);
        double best = 0;
        for (const int c : TimeOrder()) {
          const double ms = TimeMs(5, 10, [&](int) {
            Check(LaunchGemmWgmma(p, terms, d.wplanes, c, nullptr), "wgmma");
          });
          std::printf(" %s=%.1f", GemmWgmmaName(c, terms), tf(ms));
          if (!Diagnostic(GemmWgmmaName(c, terms))) best = std::max(best, tf(ms));
        }
        if (lt_tf > 0) std::printf(" best_vs_cublaslt=%.3f", best / lt_tf);
      }
#endif
    }
    std::printf("\n");
    std::fflush(stdout);
  }
}

// ---- Decode batches (cuda-batch, 2026-11-26): --smallm times every kernel at M = 64 / 16 (3
// and 1 pieces) on the decode shapes with a cold L2 (a 256 MiB memset before each call, outside
// the timing; the engine walks ~1-16 GB of weights a step) and checks each against the GEMV's
// rows bit for bit. GB/s = the weight bytes over the time. The split-K TMA tiles (cuda-splitk,
// "tma128x64k" / "tma128x64pk") are among the wgmma configurations.
double ColdUs(void* flush, size_t flush_bytes, const std::function<void()>& fn) {
  cudaEvent_t a, b;
  Check(cudaEventCreate(&a), "event");
  Check(cudaEventCreate(&b), "event");
  fn();
  std::vector<double> t;
  for (int r = 0; r < 7; ++r) {
    Check(cudaMemsetAsync(flush, r, flush_bytes, nullptr), "flush");
    Check(cudaEventRecord(a), "record");
    fn();
    Check(cudaEventRecord(b), "record");
    Check(cudaEventSynchronize(b), "sync");
    float ms = 0;
    Check(cudaEventElapsedTime(&ms, a, b), "elapsed");
    t.push_back(ms * 1e3);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void SmallMTimes(int64_t M, int terms) {
  const Shape shapes[] = {
      {"0.5B.q_o", 896, 896},      {"0.5B.k_v", 128, 896},     {"0.5B.gate_up", 4864, 896},
      {"0.5B.down", 896, 4864},    {"0.5B.head", 151936, 896}, {"1B.q_o", 2048, 2048},
      {"1B.k_v", 512, 2048},       {"1B.gate_up", 8192, 2048}, {"1B.down", 2048, 8192},
      {"1B.head", 128256, 2048},   {"8B.q_o", 4096, 4096},     {"8B.k_v", 1024, 4096},
      {"8B.gate_up", 14336, 4096}, {"8B.down", 4096, 14336},
  };
  const size_t flush_bytes = size_t{256} << 20;
  void* flush = nullptr;
  Check(cudaMalloc(&flush, flush_bytes), "malloc");
  for (const Shape& s : shapes) {
    if (g_smallm_quick && s.N > 65536) continue;  // the heads: no split-K candidate
    if (!ShapeSelected(s.name)) continue;         // TESSERA_LAB_SHAPES (cu21-x64)
    Dev d(M, s.N, s.K, 55 + static_cast<uint32_t>(s.N));
    const std::vector<float> ref = GemvReference(d, terms);
    const MatmulParams p = d.Params(0, M, true);
    const double gb = 2.0 * s.N * s.K / 1e9;
    std::printf("smallm %s M=%lld terms=%d", s.name, static_cast<long long>(M), terms);
    const auto run = [&](const char* name, const std::function<void()>& fn) {
      Check(cudaMemset(d.out, 0xff, d.M * d.N * 4), "poison");
      fn();
      Check(cudaDeviceSynchronize(), name);
      const std::vector<float> got = d.Download(M);
      const bool same = std::memcmp(got.data(), ref.data(), got.size() * 4) == 0;
      if (!same) Expect(false, std::string("smallm_") + name + "_" + s.name);
      const double us = ColdUs(flush, flush_bytes, fn);
      std::printf(" %s=%.1fus/%.0fGB/s%s", name, us, gb / (us * 1e-6), same ? "" : "(BITS)");
    };
    void* planes = nullptr;
    Check(cudaMalloc(&planes, SplitPlaneBytes(p, terms)), "malloc");
    run("default",
        [&] { Check(LaunchGemmBf16(p, terms, static_cast<uint16_t*>(planes), nullptr), "gemm"); });
    for (int c = 0; !g_smallm_quick && c < GemmTiledConfigs(); ++c) {
      run(("cfg" + std::to_string(c)).c_str(), [&] {
        Check(LaunchSplitBf16(p, terms, d.planes, nullptr), "split");
        Check(LaunchGemmBf16Tiled(p, terms, d.planes, c, nullptr), "tiled");
      });
    }
#ifdef TESSERA_CUDA_WGMMA
    for (int c = 0; g_wgmma && s.K % 32 == 0 && c < GemmWgmmaConfigs(); ++c) {
      const std::string name = GemmWgmmaName(c, terms);
      if (g_smallm_quick && name.rfind("tma128x64", 0) != 0 && name != "tma128x128") continue;
      run(GemmWgmmaName(c, terms), [&] {
        Check(LaunchSplitBf16Wgmma(p, terms, d.wplanes, nullptr), "wgmma split");
        Check(LaunchGemmWgmma(p, terms, d.wplanes, c, nullptr), "wgmma");
      });
    }
#endif
    cudaFree(planes);
    std::printf("\n");
    std::fflush(stdout);
  }
  cudaFree(flush);
}

// ---- RMS_NORM in the decode-batch GEMM's x split (cuda-agg2, 2026-11-26): --normfuse checks
// LaunchGemmBf16Rms against the norm kernel (LaunchRowOp) + LaunchGemmBf16 over its output, bit for
// bit (the norm output y and the GEMM output), at M = 9 / 16 / 33 / 64 on the norm consumers of
// the three models (q and gate/up; the heads), and times both with a cold L2.
void NormFuseShape(const Shape& s, int64_t M, int terms, float woff, void* flush,
                   size_t flush_bytes) {
  Dev d(M, s.N, s.K, 91 + static_cast<uint32_t>(s.N + M));
  std::mt19937 rng(7 + static_cast<uint32_t>(M));
  std::uniform_real_distribution<float> u(0.5f, 1.5f);
  std::vector<float> wn(s.K);
  for (float& v : wn) v = u(rng);
  float* nw = DeviceCopy(wn);
  float *y_ref = nullptr, *y = nullptr, *out_ref = nullptr;
  Check(Malloc(&y_ref, M * s.K * 4), "malloc");
  Check(Malloc(&y, M * s.K * 4), "malloc");
  Check(Malloc(&out_ref, M * s.N * 4), "malloc");
  RowParams rp;
  rp.op = TSR_OP_RMS_NORM;
  rp.x = reinterpret_cast<const uint8_t*>(d.x);
  rp.out = reinterpret_cast<uint8_t*>(y_ref);
  rp.weight = nw;
  rp.eps = 1e-5f, rp.woff = woff;
  rp.n = s.K, rp.sx = 1, rp.so = 1;
  rp.rows.ndim = 1, rp.rows.ne[0] = M, rp.rows.numel = M;
  rp.rows.s[0][0] = s.K * 4, rp.rows.s[1][0] = s.K * 4;
  MatmulParams pu = d.Params(0, M, true);  // unfused GEMM: over y_ref
  pu.x = y_ref;
  pu.out = out_ref;
  const MatmulParams pf = d.Params(0, M, true);  // fused: over the norm's input
  GemvPrologue pro;
  pro.kind = kGemvProRms;
  pro.weight = nw, pro.eps = 1e-5f, pro.woff = woff;
  pro.y = y, pro.y_row = s.K;
  void* planes = nullptr;
  Check(cudaMalloc(&planes, SplitPlaneBytes(pu, terms)), "malloc");
  auto* pl = static_cast<uint16_t*>(planes);
  const auto unfused = [&] {
    Check(LaunchRowOp(rp, nullptr), "norm");
    Check(LaunchGemmBf16(pu, terms, pl, nullptr), "gemm");
  };
  const auto fused = [&] { Check(LaunchGemmBf16Rms(pf, pro, terms, pl, nullptr), "gemm rms"); };
  const std::string tag = std::string(s.name) + "_M" + std::to_string(M) + "_terms" +
                          std::to_string(terms) + (woff != 0.0f ? "_woff" : "");
  if (!GemmRmsFusable(pf, terms)) {
    std::printf("normfuse %s not_fusable (GEMV rows)\n", tag.c_str());
  } else {
    Check(cudaMemset(y, 0xff, M * s.K * 4), "poison");
    Check(cudaMemset(d.out, 0xff, M * s.N * 4), "poison");
    unfused();
    fused();
    Check(cudaDeviceSynchronize(), "normfuse");
    std::vector<float> a(M * s.K), b(M * s.K);
    Check(cudaMemcpy(a.data(), y_ref, a.size() * 4, cudaMemcpyDeviceToHost), "download");
    Check(cudaMemcpy(b.data(), y, b.size() * 4, cudaMemcpyDeviceToHost), "download");
    const bool same_y = std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
    std::vector<float> r(M * s.N);
    Check(cudaMemcpy(r.data(), out_ref, r.size() * 4, cudaMemcpyDeviceToHost), "download");
    const std::vector<float> got = d.Download(M);
    const bool same_out = std::memcmp(got.data(), r.data(), r.size() * 4) == 0;
    Expect(same_y && same_out, "normfuse_" + tag);
    const double us_u = ColdUs(flush, flush_bytes, unfused);
    const double us_f = ColdUs(flush, flush_bytes, fused);
    std::printf("normfuse %s y=%s out=%s unfused_us=%.1f fused_us=%.1f\n", tag.c_str(),
                same_y ? "same" : "DIFF", same_out ? "same" : "DIFF", us_u, us_f);
  }
  std::fflush(stdout);
  cudaFree(planes);
  cudaFree(out_ref);
  cudaFree(y);
  cudaFree(y_ref);
  cudaFree(nw);
}

void NormFuseChecks() {
  // The heads (slow to fill on the host) at three pieces and M = 16 / 64 only.
  const Shape shapes[] = {
      {"0.5B.q", 896, 896},       {"0.5B.gate", 4864, 896},  {"1B.q", 2048, 2048},
      {"1B.gate", 8192, 2048},    {"8B.q", 4096, 4096},      {"8B.gate", 14336, 4096},
      {"0.5B.head", 151936, 896}, {"1B.head", 128256, 2048},
  };
  const size_t flush_bytes = size_t{256} << 20;
  void* flush = nullptr;
  Check(cudaMalloc(&flush, flush_bytes), "malloc");
  for (int terms : {3, 1}) {
    for (const Shape& s : shapes) {
      for (int64_t m : {int64_t{9}, int64_t{16}, int64_t{33}, int64_t{64}}) {
        if (s.N > 65536 && (terms == 1 || m == 9 || m == 33)) continue;
        NormFuseShape(s, m, terms, 0.0f, flush, flush_bytes);
      }
    }
  }
  NormFuseShape({"1B.gate", 8192, 2048}, 33, 3, 1.0f, flush, flush_bytes);  // Gemma's w + 1
  cudaFree(flush);
}

// ---- Residual ADD / SWIGLU in the decode-batch GEMM (cuda-agg3, 2026-11-26): --addfuse checks
// LaunchGemmBf16Fused (SWIGLU in the x split and/or the ADD in the last write) against the op
// kernels (LaunchElementwise SWIGLU and ADD) around LaunchGemmBf16, bit for bit (SWIGLU's output,
// the GEMM's and the ADD's), and times both with a cold L2. in_place: the ADD writes its residual.
float* DeviceRandom(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<float> h(n);
  for (float& v : h) v = u(rng);
  return DeviceCopy(h);
}

EltParams Elt(int op, const float* a, const float* b, float* out, int64_t n) {
  EltParams e;
  e.op = op;
  e.a = reinterpret_cast<const uint8_t*>(a);
  e.b = reinterpret_cast<const uint8_t*>(b);
  e.out = reinterpret_cast<uint8_t*>(out);
  e.walk.ndim = 1, e.walk.ne[0] = n, e.walk.numel = n;
  for (int t = 0; t < 3; ++t) e.walk.s[t][0] = 4;
  e.contiguous = true, e.b_period = n;
  return e;
}

bool SameDevice(const float* a, const float* b, int64_t n) {
  std::vector<float> x(n), y(n);
  Check(cudaMemcpy(x.data(), a, n * 4, cudaMemcpyDeviceToHost), "download");
  Check(cudaMemcpy(y.data(), b, n * 4, cudaMemcpyDeviceToHost), "download");
  return std::memcmp(x.data(), y.data(), n * 4) == 0;
}

void AddFuseShape(const Shape& s, int64_t M, int terms, bool swiglu, bool add, bool in_place,
                  void* flush, size_t flush_bytes) {
  Dev d(M, s.N, s.K, 57 + static_cast<uint32_t>(s.N + M));  // d.x: SWIGLU's gate, else x
  const uint32_t seed = 5 + static_cast<uint32_t>(M * 7 + s.K);
  float* up = DeviceRandom(M * s.K, seed);
  float* res0 = DeviceRandom(M * s.N, seed + 1);
  float *h_ref = nullptr, *h = nullptr, *out_ref = nullptr, *sum_ref = nullptr, *sum = nullptr;
  for (float** b : {&h_ref, &h}) Check(Malloc(b, M * s.K * 4), "malloc");
  for (float** b : {&out_ref, &sum_ref, &sum}) Check(Malloc(b, M * s.N * 4), "malloc");
  const bool bias = M % 2 == 1;
  MatmulParams pu = d.Params(0, M, bias);  // unfused GEMM: over h_ref (SWIGLU) or x
  if (swiglu) pu.x = h_ref;
  pu.out = out_ref;
  MatmulParams pf = d.Params(0, M, bias);
  GemvPrologue pro;
  if (swiglu) pro.kind = kGemvProSwiglu, pro.b = up, pro.b_row = s.K, pro.y = h, pro.y_row = s.K;
  if (add) {
    pf.res = in_place ? sum : res0, pf.res_row = s.N;
    pf.res_out = sum, pf.res_out_row = s.N;
  }
  void* planes = nullptr;
  Check(cudaMalloc(&planes, SplitPlaneBytes(pu, terms)), "malloc");
  auto* pl = static_cast<uint16_t*>(planes);
  const auto reset = [&] {  // the in-place ADD's residual is its output buffer
    Check(cudaMemcpy(sum_ref, res0, M * s.N * 4, cudaMemcpyDeviceToDevice), "copy");
    Check(cudaMemcpy(sum, res0, M * s.N * 4, cudaMemcpyDeviceToDevice), "copy");
  };
  const auto unfused = [&] {
    if (swiglu)
      Check(LaunchElementwise(Elt(TSR_OP_SWIGLU, d.x, up, h_ref, M * s.K), nullptr), "sw");
    Check(LaunchGemmBf16(pu, terms, pl, nullptr), "gemm");
    if (add) {
      const float* r = in_place ? sum_ref : res0;
      Check(LaunchElementwise(Elt(TSR_OP_ADD, out_ref, r, sum_ref, M * s.N), nullptr), "add");
    }
  };
  const auto fused = [&] { Check(LaunchGemmBf16Fused(pf, pro, terms, pl, nullptr), "fused"); };
  const std::string tag = std::string(s.name) + "_M" + std::to_string(M) + "_terms" +
                          std::to_string(terms) + (swiglu ? "_swiglu" : "") + (add ? "_add" : "") +
                          (in_place ? "_inplace" : "") + (bias ? "_bias" : "");
  if (!GemmFusable(pf, terms, pro.kind, add)) {
    std::printf("addfuse %s not_fusable\n", tag.c_str());
  } else {
    Check(cudaMemset(h, 0xff, M * s.K * 4), "poison");
    Check(cudaMemset(d.out, 0xff, M * s.N * 4), "poison");
    reset();
    unfused();
    fused();
    Check(cudaDeviceSynchronize(), "addfuse");
    const bool same_h = !swiglu || SameDevice(h_ref, h, M * s.K);
    const bool same_out = SameDevice(out_ref, d.out, M * s.N);
    const bool same_sum = !add || SameDevice(sum_ref, sum, M * s.N);
    Expect(same_h && same_out && same_sum, "addfuse_" + tag);
    const double us_u = ColdUs(flush, flush_bytes, unfused);
    const double us_f = ColdUs(flush, flush_bytes, fused);
    std::printf("addfuse %s h=%s out=%s sum=%s unfused_us=%.1f fused_us=%.1f\n", tag.c_str(),
                same_h ? "same" : "DIFF", same_out ? "same" : "DIFF", same_sum ? "same" : "DIFF",
                us_u, us_f);
  }
  std::fflush(stdout);
  cudaFree(planes);
  for (float* b : {sum, sum_ref, out_ref, h, h_ref, res0, up}) cudaFree(b);
}

void AddFuseChecks() {
  // The residual consumers (o, down) of the three models; SWIGLU feeds the downs.
  const Shape shapes[] = {
      {"0.5B.o", 896, 896},    {"0.5B.down", 896, 4864}, {"1B.o", 2048, 2048},
      {"1B.down", 2048, 8192}, {"8B.o", 4096, 4096},     {"8B.down", 4096, 14336},
  };
  const size_t flush_bytes = size_t{256} << 20;
  void* flush = nullptr;
  Check(cudaMalloc(&flush, flush_bytes), "malloc");
  for (int terms : {3, 1}) {
    for (const Shape& s : shapes) {
      if (!ShapeSelected(s.name)) continue;  // TESSERA_LAB_SHAPES (cu21-x64)
      const bool down = std::strstr(s.name, "down") != nullptr;
      for (int64_t m : {int64_t{9}, int64_t{16}, int64_t{33}, int64_t{64}}) {
        AddFuseShape(s, m, terms, down, true, m == 33, flush, flush_bytes);
        if (down && terms == 3 && (m == 16 || m == 64))
          AddFuseShape(s, m, terms, true, false, false, flush, flush_bytes);  // SWIGLU only
      }
    }
  }
  cudaFree(flush);
}

// LaunchGemmBf16Members (one RMS_NORM split read by a layer's q/k/v or gate/up GEMMs) against the
// norm kernel + LaunchGemmBf16 per member over its output, bit for bit (y and every output).
void MembersShape(const char* name, std::vector<int64_t> ns, int64_t K, int64_t M, int terms,
                  void* flush, size_t flush_bytes) {
  if (!ShapeSelected(name)) return;  // TESSERA_LAB_SHAPES (cu21-x64)
  std::vector<std::unique_ptr<Dev>> d;
  for (size_t j = 0; j < ns.size(); ++j)
    d.push_back(std::make_unique<Dev>(M, ns[j], K, 31 + static_cast<uint32_t>(j * 7 + M)));
  float* nw = DeviceRandom(K, 3 + static_cast<uint32_t>(M));
  float *y_ref = nullptr, *y = nullptr;
  Check(Malloc(&y_ref, M * K * 4), "malloc");
  Check(Malloc(&y, M * K * 4), "malloc");
  std::vector<float*> refs(ns.size());
  for (size_t j = 0; j < ns.size(); ++j) Check(Malloc(&refs[j], M * ns[j] * 4), "malloc");
  RowParams rp;
  rp.op = TSR_OP_RMS_NORM;
  rp.x = reinterpret_cast<const uint8_t*>(d[0]->x);
  rp.out = reinterpret_cast<uint8_t*>(y_ref);
  rp.weight = nw;
  rp.eps = 1e-5f;
  rp.n = K, rp.sx = 1, rp.so = 1;
  rp.rows.ndim = 1, rp.rows.ne[0] = M, rp.rows.numel = M;
  rp.rows.s[0][0] = K * 4, rp.rows.s[1][0] = K * 4;
  GemvPrologue pro;
  pro.kind = kGemvProRms, pro.weight = nw, pro.eps = 1e-5f, pro.y = y, pro.y_row = K;
  std::vector<MatmulParams> pu, pf;
  uint64_t bytes = 0;
  bool shares = true;
  for (size_t j = 0; j < ns.size(); ++j) {
    MatmulParams q = d[j]->Params(0, M, false);
    q.x = y_ref;
    q.out = refs[j];
    pu.push_back(q);
    q = d[j]->Params(0, M, false);
    q.x = d[0]->x;  // the norm's input (member 0's split reads it)
    pf.push_back(q);
    bytes = std::max(bytes, SplitPlaneBytes(q, terms));
    shares = shares && GemmSharesSplit(q, terms);
  }
  bytes = std::max(bytes, GemmMembersScratchBytes(pf.data(), static_cast<int>(pf.size()), terms));
  void* planes = nullptr;
  Check(cudaMalloc(&planes, bytes), "malloc");
  auto* pl = static_cast<uint16_t*>(planes);
  const auto unfused = [&] {
    Check(LaunchRowOp(rp, nullptr), "norm");
    for (const MatmulParams& q : pu) Check(LaunchGemmBf16(q, terms, pl, nullptr), "gemm");
  };
  const auto fused = [&] {
    Check(LaunchGemmBf16Members(pf.data(), static_cast<int>(pf.size()), pro, terms, pl, nullptr),
          "members");
  };
  const std::string tag =
      std::string(name) + "_M" + std::to_string(M) + "_terms" + std::to_string(terms);
  if (!shares) {
    std::printf("members %s not_fusable\n", tag.c_str());
  } else {
    Check(cudaMemset(y, 0xff, M * K * 4), "poison");
    for (auto& dj : d) Check(cudaMemset(dj->out, 0xff, M * dj->N * 4), "poison");
    unfused();
    fused();
    Check(cudaDeviceSynchronize(), "members");
    bool same = SameDevice(y_ref, y, M * K);
    for (size_t j = 0; j < ns.size(); ++j) same = same && SameDevice(refs[j], d[j]->out, M * ns[j]);
    Expect(same, "members_" + tag);
    const double us_u = ColdUs(flush, flush_bytes, unfused);
    const double us_f = ColdUs(flush, flush_bytes, fused);
    std::printf("members %s bits=%s unfused_us=%.1f fused_us=%.1f\n", tag.c_str(),
                same ? "same" : "DIFF", us_u, us_f);
  }
  std::fflush(stdout);
  cudaFree(planes);
  for (float* r : refs) cudaFree(r);
  cudaFree(y);
  cudaFree(y_ref);
  cudaFree(nw);
}

void MembersChecks() {
  const size_t flush_bytes = size_t{256} << 20;
  void* flush = nullptr;
  Check(cudaMalloc(&flush, flush_bytes), "malloc");
  for (int terms : {3, 1}) {
    for (int64_t m : {int64_t{16}, int64_t{33}, int64_t{64}}) {
      if (terms == 1 && m != 64) continue;
      MembersShape("8B.qkv", {4096, 1024, 1024}, 4096, m, terms, flush, flush_bytes);
      MembersShape("8B.gateup", {14336, 14336}, 4096, m, terms, flush, flush_bytes);
      MembersShape("1B.gateup", {8192, 8192}, 2048, m, terms, flush, flush_bytes);
      MembersShape("0.5B.gateup", {4864, 4864}, 896, m, terms, flush, flush_bytes);
    }
  }
  cudaFree(flush);
}

// ---- Prefill split fusions (cu-xsplit15, 2026-11-27): --prefillfuse runs the checks above at
// prefill M (300: a partial token tile, 512: the server's chunk, 2048: `bench -p 2048`): one
// RMS_NORM split shared by q/k/v and by gate/up (LaunchGemmBf16Members), SWIGLU in the down
// projection's split and RMS_NORM in a lone GEMM's split (LaunchGemmBf16Fused), each against the
// op kernel + LaunchGemmBf16 (its own split) bit for bit, and times both with a cold L2, serial
// launches and then with programmatic dependent launch (the engine's launches; "pdl" lines).
void PrefillFuseChecks() {
  const size_t flush_bytes = size_t{256} << 20;
  void* flush = nullptr;
  Check(cudaMalloc(&flush, flush_bytes), "malloc");
  for (bool pdl : {false, true}) {
    SetPdlLaunches(pdl);
    std::printf("prefillfuse pdl=%d\n", pdl ? 1 : 0);
    for (int terms : {3, 1}) {
      for (int64_t m : {int64_t{2048}, int64_t{512}, int64_t{300}}) {
        if (pdl && m != 2048) continue;  // bits: once is enough
        MembersShape("8B.qkv", {4096, 1024, 1024}, 4096, m, terms, flush, flush_bytes);
        MembersShape("8B.gateup", {14336, 14336}, 4096, m, terms, flush, flush_bytes);
        MembersShape("1B.qkv", {2048, 512, 512}, 2048, m, terms, flush, flush_bytes);
        MembersShape("1B.gateup", {8192, 8192}, 2048, m, terms, flush, flush_bytes);
        MembersShape("0.5B.qkv", {896, 128, 128}, 896, m, terms, flush, flush_bytes);
        MembersShape("0.5B.gateup", {4864, 4864}, 896, m, terms, flush, flush_bytes);
        AddFuseShape({"8B.down", 4096, 14336}, m, terms, true, false, false, flush, flush_bytes);
        AddFuseShape({"1B.down", 2048, 8192}, m, terms, true, false, false, flush, flush_bytes);
        AddFuseShape({"0.5B.down", 896, 4864}, m, terms, true, false, false, flush, flush_bytes);
        if (m == 300) {
          NormFuseShape({"1B.q", 2048, 2048}, m, terms, 0.0f, flush, flush_bytes);
          NormFuseShape({"0.5B.gate", 4864, 896}, m, terms, 1.0f, flush, flush_bytes);
        }
      }
    }
  }
  SetPdlLaunches(false);
  cudaFree(flush);
}

// ---- Grouped stream-K decode GEMM (cuda-x64, 2026-11-27): --group checks LaunchGemmTmaGroup
// (members over one x split, rows [row0, row0 + M)) against the GEMV's rows of every member, bit
// for bit, and times (cold L2) the members one launch each (LaunchGemmBf16Members with the group
// off, where every member shares the split; else LaunchGemmBf16 per member with its own split)
// against the grouped launch at several CTA counts (the split pre-pass included in both).
void GroupShape(const char* name, const std::vector<int64_t>& ns, int64_t K, int64_t M,
                int64_t row0, int terms, void* flush, size_t flush_bytes) {
  const int n = static_cast<int>(ns.size());
  std::vector<std::unique_ptr<Dev>> d;
  for (int j = 0; j < n; ++j)
    d.push_back(std::make_unique<Dev>(row0 + M, ns[j], K, 71 + static_cast<uint32_t>(j * 13 + M)));
  std::vector<float*> refs(n);
  std::vector<MatmulParams> ps(n);
  uint64_t bytes = 0;
  bool shares = true;
  for (int j = 0; j < n; ++j) {
    Check(Malloc(&refs[j], M * ns[j] * 4), "malloc");
    for (int64_t r = 0; r < M; r += kGemvMaxRows) {  // the GEMV's rows over member 0's x
      MatmulParams q = d[j]->Params(row0 + r, std::min<int64_t>(kGemvMaxRows, M - r), true);
      q.x = d[0]->x + (row0 + r) * K;
      q.out = refs[j] + r * ns[j];
      Check(LaunchGemvBf16(q, terms, nullptr), "gemv");
    }
    ps[j] = d[j]->Params(row0, M, true);
    ps[j].x = d[0]->x + row0 * K;
    bytes = std::max(bytes, SplitPlaneBytes(ps[j], terms));
    shares = shares && GemmSharesSplit(ps[j], terms);
  }
  bytes = std::max(bytes, GemmTmaGroupScratchBytes(ps.data(), n, terms));
  bytes = std::max(bytes, GemmMembersScratchBytes(ps.data(), n, terms));
  // The stream-K runs below (ctas > 0) hold every member's chunk sums after the planes, also where
  // the rule runs the members as one plain launch (TESSERA_CUDA_GEMM_GROUP_PLAIN; no chunk sums).
  uint64_t sk = (static_cast<uint64_t>(terms) * M * ((K + 31) / 32 * 32) * 2 + 255) / 256 * 256;
  for (int j = 0; j < n; ++j)
    sk += (static_cast<uint64_t>((K + 255) / 256) * M * ns[j] * 4 + 255) / 256 * 256;
  bytes = std::max(bytes, sk);
  void* planes = nullptr;
  Check(cudaMalloc(&planes, bytes), "malloc");
  auto* pl = static_cast<uint16_t*>(planes);
  const std::string tag = std::string(name) + "_M" + std::to_string(M) + "_row" +
                          std::to_string(row0) + "_terms" + std::to_string(terms);
  std::printf("group %s fits=%d shares=%d", tag.c_str(),
              GemmTmaGroupFits(ps.data(), n, terms) ? 1 : 0, shares ? 1 : 0);
  const auto run = [&](const std::string& what, const std::function<void()>& fn) {
    for (auto& dj : d) Check(cudaMemset(dj->out, 0xff, dj->M * dj->N * 4), "poison");
    fn();
    Check(cudaDeviceSynchronize(), what.c_str());
    bool same = true;
    for (int j = 0; j < n; ++j) same = same && SameDevice(refs[j], d[j]->out, M * ns[j]);
    Expect(same, "group_" + what + "_" + tag);
    const double us = ColdUs(flush, flush_bytes, fn);
    std::printf(" %s=%.1fus%s", what.c_str(), us, same ? "" : "(BITS)");
  };
  const GemvPrologue none;
  if (shares) {
    for (int mode : {0, 1}) {
      run(mode == 0 ? "members" : "members_grouped", [&] {
        SetGemmGroupMode(mode, 0);
        Check(LaunchGemmBf16Members(ps.data(), n, none, terms, pl, nullptr), "members");
      });
    }
    SetGemmGroupMode(-1, 0);
  } else {
    run("each", [&] {
      for (const MatmulParams& q : ps) Check(LaunchGemmBf16(q, terms, pl, nullptr), "gemm");
    });
  }
  for (int ctas : {0, 66, 96, 128, 264}) {
    run("group" + std::to_string(ctas), [&] {
      Check(LaunchSplitBf16Wgmma(ps[0], terms, pl, nullptr), "wgmma split");
      Check(LaunchGemmTmaGroup(ps.data(), n, terms, pl, ctas, nullptr), "group");
    });
  }
  std::printf("\n");
  std::fflush(stdout);
  cudaFree(planes);
  for (float* r : refs) cudaFree(r);
}

void GroupChecks() {
  const size_t flush_bytes = size_t{256} << 20;
  void* flush = nullptr;
  Check(cudaMalloc(&flush, flush_bytes), "malloc");
  struct G {
    const char* name;
    std::vector<int64_t> ns;
    int64_t K;
  };
  const G gs[] = {{"8B.qkv", {4096, 1024, 1024}, 4096},
                  {"1B.qkv", {2048, 512, 512}, 2048},
                  {"0.5B.qkv", {896, 128, 128}, 896},
                  {"8B.o", {4096}, 4096},
                  {"8B.down", {4096}, 14336},
                  {"1B.down", {2048}, 8192},
                  {"1B.o", {2048}, 2048},
                  {"ragged", {1000, 200}, 1056},
                  {"8B.gateup", {14336, 14336}, 4096},
                  {"1B.gateup", {8192, 8192}, 2048},
                  {"0.5B.gateup", {4864, 4864}, 896},
                  // cu21-x64: 40 + 33 tiles over 5 chunks (the plain group: ragged N, a partial
                  // last chunk)
                  {"ragged_plain", {5000, 4100}, 1056}};
  for (int terms : {3, 1}) {
    if (!TermsSelected(terms)) continue;
    for (const G& g : gs) {
      if (!ShapeSelected(g.name)) continue;
      for (int64_t m : {int64_t{64}, int64_t{33}, int64_t{17}}) {
        if ((terms == 1 || g.ns[0] > 8192) && m != 64) continue;
        GroupShape(g.name, g.ns, g.K, m, m == 33 ? 5 : 0, terms, flush, flush_bytes);
      }
    }
  }
  cudaFree(flush);
}

int Main(int argc, char** argv) {
  bool check = true, default_only = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--no-check") == 0) check = false;
    if (std::strcmp(argv[i], "--default-only") == 0) default_only = true;
    if (std::strcmp(argv[i], "--wgmma-only") == 0) g_wgmma_only = true;
    if (std::strncmp(argv[i], "--wg-from=", 10) == 0) g_wg_from = std::atoi(argv[i] + 10);
  }
  cudaDeviceProp prop{};
  Check(cudaGetDeviceProperties(&prop, 0), "properties");
  const char* env = std::getenv("TESSERA_CUDA_GEMM");
  std::printf("device name=\"%s\" sm_%d%d sms=%d gemm_env=%s\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount, env != nullptr ? env : "(auto)");
#ifdef TESSERA_CUDA_WGMMA
  g_wgmma = prop.major == 9 && prop.minor == 0;
#endif
  std::printf("wgmma %s\n", g_wgmma ? "on" : "off");
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--addfuse") != 0) continue;
    AddFuseChecks();
    MembersChecks();
    std::printf("summary failures=%d\n", g_failures);
    return g_failures == 0 ? 0 : 1;
  }
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--prefillfuse") != 0) continue;
    PrefillFuseChecks();
    std::printf("summary failures=%d\n", g_failures);
    return g_failures == 0 ? 0 : 1;
  }
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--group") != 0) continue;
    GroupChecks();
    std::printf("summary failures=%d\n", g_failures);
    return g_failures == 0 ? 0 : 1;
  }
  for (int i = 1; i < argc; ++i) {  // cu21-x64b: the split-K tiles' checks alone (no timings)
    if (std::strcmp(argv[i], "--splitk") != 0) continue;
    for (int terms : {3, 1}) {
      SmallMChecks(512, 2048, terms);
      SmallMChecks(2048, 8192, terms);
      SmallMChecks(1000, 1064, terms);  // ragged N, partial last chunk
      SmallMChecks(384, 14336, terms);
    }
    PrefillSplitChecks();
    std::printf("summary failures=%d\n", g_failures);
    return g_failures == 0 ? 0 : 1;
  }
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--normfuse") != 0) continue;
    NormFuseChecks();
    std::printf("summary failures=%d\n", g_failures);
    return g_failures == 0 ? 0 : 1;
  }
  for (int i = 1; i < argc; ++i) {
    g_smallm_quick = std::strcmp(argv[i], "--smallm-quick") == 0;
    if (std::strcmp(argv[i], "--smallm") != 0 && !g_smallm_quick) continue;
    const char* only_m = std::getenv("TESSERA_LAB_M");  // cu21-x64: one M (64 or 16)
    for (int terms : {3, 1}) {
      if (!TermsSelected(terms)) continue;
      for (int64_t m : {int64_t{64}, int64_t{16}}) {
        if (only_m == nullptr || std::atoll(only_m) == m) SmallMTimes(m, terms);
      }
    }
    std::printf("summary failures=%d\n", g_failures);
    return g_failures == 0 ? 0 : 1;
  }
  if (check) {
    for (int terms : {3, 1}) {
      BitChecks(4096, 4096, terms);
      BitChecks(1000, 1064, terms);  // ragged N, K % 32 != 0
      BitChecks(384, 14336, terms);  // 56 chunks
      BitChecks(2048, 1064, terms);  // persistent tiles: > 1 tile a CTA, 17 stages a tile
      ZeroChecks(terms);
      SmallMChecks(512, 2048, terms);
      SmallMChecks(2048, 8192, terms);
      SmallMChecks(1000, 1064, terms);  // ragged N, partial last chunk
      SmallMChecks(384, 14336, terms);
    }
    PrefillSplitChecks();
  }
  lab::CublasLt lt;
  // Prefill shapes at M = 2048, then M = 512 (N = output rows, K = input): q/o, k/v, gate/up,
  // down.
  const Shape shapes[] = {
      {"0.5B.q_o", 896, 896},     {"0.5B.k_v", 128, 896},      {"0.5B.gate_up", 4864, 896},
      {"0.5B.down", 896, 4864},   {"1B.q_o", 2048, 2048},      {"1B.k_v", 512, 2048},
      {"1B.gate_up", 8192, 2048}, {"1B.down", 2048, 8192},     {"8B.q_o", 4096, 4096},
      {"8B.k_v", 1024, 4096},     {"8B.gate_up", 14336, 4096}, {"8B.down", 4096, 14336},
  };
  for (int64_t m : {int64_t{2048}, int64_t{512}}) {
    for (const Shape& s : shapes) {
      if (ShapeSelected(s.name)) TimeShape(s, m, default_only, lt);
    }
  }
  std::printf("summary failures=%d\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace tessera::cuda

int main(int argc, char** argv) {
  return tessera::cuda::Main(argc, argv);
}
