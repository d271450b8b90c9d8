// GEMV kernel lab (issue 5): the decode GEMV (bf16 weights x f32 activations, M = 1..8 rows) on
// the 8B / 1B / 0.5B shapes. Variant 0 is the block-per-row-group kernel (LaunchGemvBf16, the
// reference for bits); variants 1..4 are the streaming kernel's (warps a block, ring stages)
// configurations at several grid sizes (warps per SM), each with and without PDL.
//
//   cuda_gemv_lab [--quick]
// Checks first (exit code 1 on any failure): every variant bit-identical to variant 0 and to the
// GEMM's rows (batch invariance), and a float64 reference on a sample. Then a timing sweep:
// "gemv shape=... v=V wps=W pdl=P us=... GB/s=... of_copy=...", weights rotated through enough
// copies that the 50 MB L2 cannot serve them, back-to-back launches (what a decode graph does).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backends/cuda/lab/lab_util.h"
#include "backends/cuda/launch.h"

namespace tessera::cuda {
namespace {

using lab::Check;
using lab::CopyBandwidth;
using lab::FromBf16;
using lab::TimeMs;
using lab::ToBf16;

// Uploads a host vector (the labs' DeviceCopy).
template <typename T>
T* Upload(const std::vector<T>& v) {
  return lab::DeviceCopy(v);
}

int g_failures = 0;

void Expect(bool ok, const std::string& what) {
  if (!ok) {
    std::printf("check %s FAILED\n", what.c_str());
    ++g_failures;
  }
}

template <typename T>
std::vector<T> Download(const T* d, size_t n) {
  std::vector<T> v(n);
  Check(cudaMemcpy(v.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost), "download");
  return v;
}

struct Shape {
  const char* model;
  int64_t N, K;
};

// v = 0 with wps > 0: the block kernel with split-K aiming at wps blocks an SM (split_blocks).
struct Variant {
  int v, wps;
};
const Variant kVariants[] = {{0, 0}, {kGemvHalf, 0}, {0, 1}, {0, 2}, {0, 4}, {1, 24}, {2, 32}};

struct Lab {
  GemvAux aux;  // counters, SM count; partials sized for the largest problem
  float* partials = nullptr;
  double copy_gbs = 0;
};

cudaError_t Launch(const Lab& lab, const Variant& v, bool pdl, const MatmulParams& p, int terms) {
  SetPdlLaunches(pdl);
  if (v.v == 0 && v.wps == 0 && !pdl) return LaunchGemvBf16(p, terms, nullptr);
  GemvAux a = lab.aux;
  a.variant = v.v;
  a.warps_per_sm = v.wps;
  if (v.v == 0) a.split_blocks = v.wps * a.sms;
  a.pdl = pdl;
  a.partials = lab.partials;
  SetPdlLaunches(pdl);
  return LaunchGemvBf16Stream(p, terms, a, nullptr);
}

MatmulParams Params(int64_t N, int64_t K, const float* x, const uint16_t* w, const float* bias,
                    float* out, int64_t M) {
  MatmulParams p;
  p.x = x, p.x_row = K, p.M = M, p.K = K, p.N = N;
  p.w = reinterpret_cast<const uint8_t*>(w), p.w_row_bytes = K * 2, p.w_dtype = TSR_DTYPE_BF16;
  p.bias = bias, p.out = out, p.out_row = N, p.out_col = 1;
  return p;
}

// Bits: every variant at M = 1, 3, 8 against variant 0 and against the GEMM's rows (M = 40, the
// rows read at offset 5); accuracy of variant 1 against float64 on a sample.
void CheckShape(const Lab& lab, int64_t N, int64_t K, int terms) {
  const int64_t MG = 40;
  std::mt19937 rng(static_cast<uint32_t>(N * 31 + K + terms));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(MG * K), bias(N);
  std::vector<uint16_t> w(N * K);
  for (float& f : x) f = u(rng);
  for (uint16_t& b : w) b = ToBf16(u(rng));
  for (float& f : bias) f = u(rng);
  float* dx = Upload(x);
  uint16_t* dw = Upload(w);
  float* db = Upload(bias);
  float* out = nullptr;
  Check(cudaMalloc(reinterpret_cast<void**>(&out), MG * N * 4), "malloc");
  MatmulParams g = Params(N, K, dx, dw, db, out, MG);
  void* planes = nullptr;
  Check(cudaMalloc(&planes, SplitPlaneBytes(g, terms)), "malloc");
  Check(LaunchGemmBf16(g, terms, static_cast<uint16_t*>(planes), nullptr), "gemm");
  const std::vector<float> gemm = Download(out, MG * N);
  const std::string tag =
      "N" + std::to_string(N) + "_K" + std::to_string(K) + "_t" + std::to_string(terms);
  for (int64_t m : {1, 3, 8}) {
    for (const Variant& v : kVariants) {
      for (bool pdl : {false, true}) {
        Check(cudaMemset(out, 0xff, m * N * 4), "poison");
        Check(Launch(lab, v, pdl, Params(N, K, dx + 5 * K, dw, db, out, m), terms), "gemv");
        Check(cudaDeviceSynchronize(), "gemv sync");
        const std::vector<float> got = Download(out, m * N);
        Expect(std::memcmp(got.data(), gemm.data() + 5 * N, m * N * 4) == 0,
               "bits_vs_gemm_" + tag + "_M" + std::to_string(m) + "_v" + std::to_string(v.v) +
                   "_w" + std::to_string(v.wps) + (pdl ? "_pdl" : ""));
      }
    }
  }
  double worst = 0;
  const double rtol = terms == 3 ? 2e-6 : 1e-2;
  for (int s = 0; s < 64; ++s) {
    const int64_t m = rng() % MG, n = rng() % N;
    double ref = bias[n], mag = std::fabs(bias[n]);
    for (int64_t k = 0; k < K; ++k) {
      const double t = double(x[m * K + k]) * FromBf16(w[n * K + k]);
      ref += t;
      mag += std::fabs(t);
    }
    worst = std::max(worst, std::fabs(gemm[m * N + n] - ref) / (1e-6 + rtol * mag));
  }
  Expect(worst <= 1.0, "accuracy_" + tag);
  std::printf("checked %s worst_err_over_allowed=%.3f\n", tag.c_str(), worst);
  cudaFree(planes);
  cudaFree(out);
  cudaFree(db);
  cudaFree(dw);
  cudaFree(dx);
}

// A fused launch (three GEMVs over one x, a residual on the first) against three plain launches
// and a host-side add: the same bits.
void CheckGroup(const Lab& lab, int64_t K, int terms) {
  const int64_t M = 3, Ns[3] = {896, 128, 200};
  std::mt19937 rng(static_cast<uint32_t>(K + terms));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(M * K), res(M * Ns[0]);
  for (float& f : x) f = u(rng);
  for (float& f : res) f = u(rng);
  float* dx = Upload(x);
  float* dres = Upload(res);
  GemvGroup grp;
  grp.n = 3;
  std::vector<float*> outs, refs;
  std::vector<void*> frees = {dx, dres};
  for (int j = 0; j < 3; ++j) {
    std::vector<uint16_t> w(Ns[j] * K);
    std::vector<float> bias(Ns[j]);
    for (uint16_t& b : w) b = ToBf16(u(rng));
    for (float& f : bias) f = u(rng);
    uint16_t* dw = Upload(w);
    float* db = Upload(bias);
    float *o = nullptr, *r = nullptr;
    Check(cudaMalloc(reinterpret_cast<void**>(&o), M * Ns[j] * 4), "malloc");
    Check(cudaMalloc(reinterpret_cast<void**>(&r), M * Ns[j] * 4), "malloc");
    Check(cudaMemset(o, 0xff, M * Ns[j] * 4), "poison");
    Check(LaunchGemvBf16(Params(Ns[j], K, dx, dw, db, r, M), terms, nullptr), "gemv");
    grp.o[j] = GemvGroupOf(Params(Ns[j], K, dx, dw, db, o, M)).o[0];
    outs.push_back(o);
    refs.push_back(r);
    frees.insert(frees.end(), {dw, db, o, r});
  }
  float* dsum = nullptr;
  Check(cudaMalloc(reinterpret_cast<void**>(&dsum), M * Ns[0] * 4), "malloc");
  frees.push_back(dsum);
  grp.o[0].res = dres, grp.o[0].res_row = Ns[0], grp.o[0].res_out = dsum;
  grp.o[0].res_out_row = Ns[0];
  GemvAux a = lab.aux;
  a.partials = lab.partials;
  MatmulParams p = Params(Ns[0], K, dx, nullptr, nullptr, nullptr, M);
  bool same = true;
  for (int split : {0, 2, 8}) {  // no split-K, and split-K over 2 / 8 blocks an SM
    a.split_blocks = split * a.sms;
    for (int j = 0; j < 3; ++j) Check(cudaMemset(outs[j], 0xff, M * Ns[j] * 4), "poison");
    Check(LaunchGemvBf16Group(p, grp, terms, a, nullptr), "group");
    Check(cudaDeviceSynchronize(), "group sync");
    for (int j = 0; j < 3; ++j) {
      const std::vector<float> got = Download(outs[j], M * Ns[j]);
      const std::vector<float> want = Download(refs[j], M * Ns[j]);
      same = same && std::memcmp(got.data(), want.data(), got.size() * 4) == 0;
      if (j == 0) {
        const std::vector<float> sum = Download(dsum, M * Ns[0]);
        for (size_t e = 0; e < sum.size(); ++e) {
          const float r = res[e] + want[e];
          same = same && std::memcmp(&r, &sum[e], 4) == 0;
        }
      }
    }
  }
  Expect(same, "group3_residual_K" + std::to_string(K) + "_t" + std::to_string(terms));
  std::printf("checked group3+residual K=%lld terms=%d %s\n", static_cast<long long>(K), terms,
              same ? "same bits" : "DIFFERENT");
  for (void* f : frees) cudaFree(f);
}

// Best time per shape, over the variants, printed as a table line at the end.
struct Best {
  std::string shape;
  double v0_us = 0, best_us = 1e30, bytes = 0;
  std::string best;
};

Best TimeShape(const Lab& lab, const Shape& s, int64_t M, bool quick) {
  const int64_t bytes = s.N * s.K * 2;
  const int copies = static_cast<int>(std::max<int64_t>(2, (int64_t{320} << 20) / bytes + 1));
  std::vector<uint16_t> w(s.N * s.K);
  std::mt19937 rng(99);
  for (uint16_t& b : w) b = ToBf16(static_cast<float>(rng() % 2001) / 1000.0f - 1.0f);
  std::vector<uint16_t*> ws;
  for (int c = 0; c < copies; ++c) ws.push_back(Upload(w));
  std::vector<float> x(M * s.K);
  for (float& f : x) f = static_cast<float>(rng() % 2001) / 1000.0f - 1.0f;
  float* dx = Upload(x);
  float* out = nullptr;
  Check(cudaMalloc(reinterpret_cast<void**>(&out), M * s.N * 4), "malloc");
  Best best;
  best.bytes = static_cast<double>(bytes);
  best.shape = std::string(s.model) + " N=" + std::to_string(s.N) + " K=" + std::to_string(s.K) +
               " M=" + std::to_string(M);
  for (const Variant& v : kVariants) {
    for (bool pdl : {false, true}) {
      if (quick && v.v != 0 && v.v != kGemvHalf) continue;
      const double ms = TimeMs(7, 40, [&](int i) {
        Check(Launch(lab, v, pdl, Params(s.N, s.K, dx, ws[i % copies], nullptr, out, M), 3),
              "gemv");
      });
      const double gbs = bytes / (ms * 1e-3) / 1e9;
      std::printf("gemv %s v=%d wps=%d pdl=%d us=%.2f GB/s=%.0f of_copy=%.2f\n", best.shape.c_str(),
                  v.v, v.wps, pdl ? 1 : 0, ms * 1e3, gbs, gbs / lab.copy_gbs);
      if (v.v == 0 && v.wps == 0 && !pdl) best.v0_us = ms * 1e3;
      if (ms * 1e3 < best.best_us) {
        best.best_us = ms * 1e3;
        best.best = "v" + std::to_string(v.v) + ":" + std::to_string(v.wps) + (pdl ? " pdl" : "");
      }
    }
  }
  for (uint16_t* p : ws) cudaFree(p);
  cudaFree(dx);
  cudaFree(out);
  return best;
}

// A decode group (q/k/v or gate/up over one x) as one fused launch vs one launch a member, for
// the block kernel (full and half-chunk loads), with and without PDL.
void TimeGroup(const Lab& lab, const char* name, int64_t K, std::vector<int64_t> Ns) {
  std::mt19937 rng(5);
  std::vector<float> x(K);
  for (float& f : x) f = static_cast<float>(rng() % 2001) / 1000.0f - 1.0f;
  float* dx = Upload(x);
  int64_t bytes = 0;
  for (int64_t N : Ns) bytes += N * K * 2;
  const int copies = static_cast<int>(std::max<int64_t>(2, (int64_t{320} << 20) / bytes + 1));
  std::vector<GemvGroup> groups(copies);
  std::vector<void*> frees = {dx};
  for (int c = 0; c < copies; ++c) {
    groups[c].n = static_cast<int>(Ns.size());
    for (size_t j = 0; j < Ns.size(); ++j) {
      std::vector<uint16_t> w(Ns[j] * K, ToBf16(0.01f * static_cast<float>(j + 1)));
      uint16_t* dw = Upload(w);
      float* o = nullptr;
      Check(cudaMalloc(reinterpret_cast<void**>(&o), Ns[j] * 4), "malloc");
      groups[c].o[j] = GemvGroupOf(Params(Ns[j], K, dx, dw, nullptr, o, 1)).o[0];
      frees.insert(frees.end(), {dw, o});
    }
  }
  MatmulParams p = Params(Ns[0], K, dx, nullptr, nullptr, nullptr, 1);
  for (int variant : {0, kGemvHalf, 0x100}) {  // 0x100: block kernel, split-K at 2 blocks an SM
    for (bool pdl : {false, true}) {
      GemvAux a = lab.aux;
      a.variant = variant & 0xff;
      a.split_blocks = (variant >> 8) * 2 * a.sms;
      a.pdl = pdl;
      a.partials = lab.partials;
      SetPdlLaunches(pdl);
      const double fused = TimeMs(7, 40, [&](int i) {
        Check(LaunchGemvBf16Group(p, groups[i % copies], 3, a, nullptr), "group");
      });
      const double apart = TimeMs(7, 40, [&](int i) {
        for (int j = 0; j < groups[i % copies].n; ++j) {
          GemvGroup one;
          one.n = 1;
          one.o[0] = groups[i % copies].o[j];
          Check(LaunchGemvBf16Group(p, one, 3, a, nullptr), "member");
        }
      });
      std::printf("group %s K=%lld v=%d pdl=%d fused_us=%.2f separate_us=%.2f of_copy=%.2f\n", name,
                  static_cast<long long>(K), variant, pdl ? 1 : 0, fused * 1e3, apart * 1e3,
                  bytes / (fused * 1e-3) / 1e9 / lab.copy_gbs);
    }
  }
  SetPdlLaunches(false);
  for (void* f : frees) cudaFree(f);
}

int Main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  cudaDeviceProp prop{};
  Check(cudaGetDeviceProperties(&prop, 0), "properties");
  std::printf("device name=\"%s\" sm_%d%d sms=%d\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount);
  Lab lab;
  lab.aux.sms = prop.multiProcessorCount;
  lab.aux.n_counters = 1 << 16;
  Check(cudaMalloc(reinterpret_cast<void**>(&lab.aux.counters), lab.aux.n_counters * 4), "malloc");
  Check(cudaMemset(lab.aux.counters, 0, lab.aux.n_counters * 4), "memset");
  Check(cudaMalloc(reinterpret_cast<void**>(&lab.partials), size_t{80} << 20), "malloc");
  for (int terms : {3, 1}) {
    CheckShape(lab, 4096, 4096, terms);
    CheckShape(lab, 1000, 1064, terms);  // ragged N, K % 32 != 0, last chunk partial
    CheckShape(lab, 896, 896, terms);
    CheckShape(lab, 64, 4864, terms);  // fewer row groups than SMs
    CheckShape(lab, 24, 200, terms);   // one chunk
    CheckGroup(lab, 896, terms);
    CheckGroup(lab, 200, terms);
    CheckGroup(lab, 2048, terms);  // 8 chunks: the split-K runs split
  }
  std::printf("checks failures=%d\n", g_failures);
  lab.copy_gbs = CopyBandwidth();
  const Shape shapes[] = {{"8B", 4096, 4096},    {"8B", 14336, 4096},   {"8B", 4096, 14336},
                          {"8B", 128256, 4096},  {"8B-kv", 1024, 4096}, {"1B", 2048, 2048},
                          {"1B", 8192, 2048},    {"1B", 2048, 8192},    {"1B-kv", 512, 2048},
                          {"0.5B", 896, 896},    {"0.5B", 4864, 896},   {"0.5B", 896, 4864},
                          {"0.5B-kv", 128, 896}, {"0.5B", 151936, 896}};
  TimeGroup(lab, "8B-qkv", 4096, {4096, 1024, 1024});
  TimeGroup(lab, "8B-gate-up", 4096, {14336, 14336});
  TimeGroup(lab, "1B-qkv", 2048, {2048, 512, 512});
  TimeGroup(lab, "1B-gate-up", 2048, {8192, 8192});
  TimeGroup(lab, "0.5B-qkv", 896, {896, 128, 128});
  TimeGroup(lab, "0.5B-gate-up", 896, {4864, 4864});
  std::vector<Best> table;
  for (const Shape& s : shapes) table.push_back(TimeShape(lab, s, 1, quick));
  if (!quick) table.push_back(TimeShape(lab, shapes[0], 8, quick));
  std::printf("\n%-28s %8s %8s %7s %7s %s\n", "shape", "v0 us", "best us", "v0/copy", "best/copy",
              "best variant");
  for (const Best& b : table) {
    const double f0 = b.bytes / (b.v0_us * 1e-6) / 1e9 / lab.copy_gbs;
    const double f1 = b.bytes / (b.best_us * 1e-6) / 1e9 / lab.copy_gbs;
    std::printf("%-28s %8.2f %8.2f %7.2f %7.2f %s\n", b.shape.c_str(), b.v0_us, b.best_us, f0, f1,
                b.best.c_str());
  }
  std::printf("summary failures=%d\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace tessera::cuda

int main(int argc, char** argv) {
  return tessera::cuda::Main(argc, argv);
}
