// GEMV kernel lab (issue 5): the decode GEMV (bf16 weights x f32 activations, M = 1..8 rows) on
// the 8B / 1B / 0.5B shapes. Variant 0 is the block-per-row-group kernel (LaunchGemvBf16, the
// reference for bits); variants 1..4 are the streaming kernel's (warps a block, ring stages)
// configurations at several grid sizes (warps per SM), each with and without PDL.
//
//   cuda_gemv_lab [--quick]
//   cuda_gemv_lab --dec16      (cu-dec16) plain streaming reads vs the GEMV's own weight-load
//                              pattern (no math; mma-shaped and line-shaped) at the 8B weights'
//                              bytes, then the engine's 8B / 1B GEMV launches; no checks.
//                              GEMV_LAB_DEC16_GEMV_ONLY=1: the GEMV launches only.
//   cuda_gemv_lab --dec16-ncu  one launch each of the read and 8B o / down kernels (for ncu).
//   cuda_gemv_lab --dec17      (cu-dec17) the engine's decode GEMV launches of the 8B and 1B
//                              and (cu-dec18b) the 0.5B's norm + q/k/v and norm + head
//                              (v = 0, M = 1, PDL, weights past L2), one "dec17" line each, tagged
//                              with $GEMV_LAB_TAG: A/B of launch-rule knobs (read once a
//                              process) across processes; no checks. (cu21-gemv) also the 0.5B
//                              norm + gate/up and the 0.5B / 1B o and down with the residual
//                              ("-res"); GEMV_LAB_DEC17_ONLY=NAME[,NAME...] times those only.
//   cuda_gemv_lab --head22     (cu22-head) plain reads of the 0.5B / 1B / 8B heads' bytes and the
//                              heads' launches, plain and norm + head ("dec17" lines).
//   cuda_gemv_lab --pair24     (cu24-b8) the 8B decode attention (one query, L = 80 / 144 keys)
//                              alone, the 8B o + residual alone, and the two back to back (PDL):
//                              A/B of TESSERA_CUDA_GEMV_PREFALL across processes; no checks.
//   cuda_gemv_lab --ropekv     (cu-dec18) the one-launch ROPE q + ROPE k + KV_WRITE k/v against
//                              the separate kernels (bits; T = 1, 2, 3, 4, 8; 0.5B / 1B / 8B heads,
//                              partial, scaled, interleaved) and, at T = 1, both timed with PDL.
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
#include <functional>
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
// k_matmul_bf16.cu's lab variants of the block kernel: kGemvHalf8 the plain loop with half
// chunks in 8-warp blocks at 3 an SM; kGemvHalfTma / kGemvFullTma the TMA weight ring with half /
// whole-chunk units, wps = its configuration (warps a block x 16 + slots a warp, GemvTmaCfg).
// kGemvFull with wps > 0: full chunks with split-K.
constexpr int kGemvHalf8 = 10, kGemvHalfTma = 11, kGemvFullTma = 12;
bool IsTma(int v) {  // a TMA variant: wps is its configuration
  return v == kGemvHalfTma || v == kGemvFullTma;
}
const Variant kVariants[] = {{0, 0},
                             {kGemvHalf, 0},
                             {0, 1},
                             {0, 2},
                             {0, 4},
                             {1, 24},
                             {2, 32},
                             {kGemvFull, 2},
                             {kGemvHalf8, 0},
                             {kGemvHalfTma, 0x44},
                             {kGemvHalfTma, 0x42},
                             {kGemvHalfTma, 0x46},
                             {kGemvHalfTma, 0x83},
                             {kGemvHalfTma, 0x28},
                             {kGemvFullTma, 0x42},
                             {kGemvFullTma, 0x23},
                             {kGemvFullTma, 0x82}};
// Group / prologue checks, (variant, split-K blocks an SM): the default with no split-K and
// split-K over 2 / 8 blocks an SM, then the other block-kernel variants (TMA: default ring).
const int kRuns[][2] = {{0, 0},
                        {0, 2},
                        {0, 8},
                        {kGemvHalf8, 0},
                        {kGemvHalf8, 8},
                        {kGemvHalfTma, 0},
                        {kGemvHalfTma, 8},
                        {kGemvFullTma, 0},
                        {kGemvFullTma, 8}};
// Timed fused / group launches: variant, TMA configuration, split-K (blocks an SM x 2).
struct TimedVariant {
  int v, cfg, split;
};
const TimedVariant kTimed[] = {{0, 0, 0},
                               {kGemvHalf, 0, 0},
                               {kGemvFull, 0, 0},
                               {kGemvHalf8, 0, 0},
                               {kGemvHalfTma, 0x44, 0},
                               {kGemvHalfTma, 0x42, 0},
                               {kGemvHalfTma, 0x83, 0},
                               {kGemvHalfTma, 0x28, 0},
                               {kGemvFullTma, 0x42, 0},
                               {kGemvFullTma, 0x23, 0}};

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
  if (v.v == 0 || (v.v >= kGemvHalf && !IsTma(v.v))) a.split_blocks = v.wps * a.sms;
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
  for (const auto& run : kRuns) {
    a.variant = run[0];
    a.split_blocks = run[1] * a.sms;
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

// The unfused launches a prologue replaces: RMS_NORM (k_norm.cu) or SWIGLU (k_elementwise.cu)
// over [M, K] rows into y.
void LaunchProOp(const GemvPrologue& pro, const float* x, int64_t M, int64_t K, float* y,
                 cudaStream_t stream) {
  if (pro.kind == kGemvProRms) {
    RowParams r;
    r.op = TSR_OP_RMS_NORM;
    r.x = reinterpret_cast<const uint8_t*>(x);
    r.out = reinterpret_cast<uint8_t*>(y);
    r.weight = pro.weight, r.eps = pro.eps, r.woff = pro.woff;
    r.n = K, r.sx = 1, r.so = 1;
    r.rows.ndim = 1, r.rows.ne[0] = M, r.rows.numel = M;
    r.rows.s[0][0] = K * 4, r.rows.s[1][0] = K * 4;
    Check(LaunchRowOp(r, stream), "rms_norm");
    return;
  }
  EltParams e;
  e.op = TSR_OP_SWIGLU;
  e.a = reinterpret_cast<const uint8_t*>(x);
  e.b = reinterpret_cast<const uint8_t*>(pro.b);
  e.out = reinterpret_cast<uint8_t*>(y);
  e.walk.ndim = 1, e.walk.ne[0] = M * K, e.walk.numel = M * K;
  e.walk.s[0][0] = e.walk.s[1][0] = e.walk.s[2][0] = 4;
  e.contiguous = true, e.b_period = M * K;
  Check(LaunchElementwise(e, stream), "swiglu");
}

// A prologue-fused launch (RMS_NORM or SWIGLU folded into the GEMV's x load, with a group of
// `members` GEMVs and a residual on a lone one) against the op's own kernel followed by the
// plain group launch: same GEMV bits and the same op output y, for M = 1, 3, 8, with split-K off
// and on. Values span several magnitudes so the norm's scale is not a power of two.
// ns (cu-dec18): the members' rows instead of 896 / 128 / 200 (the engine's 8B / 1B launches).
void CheckPrologue(const Lab& lab, int kind, int64_t K, int members, int terms,
                   const int64_t* ns = nullptr) {
  const int64_t MX = 8;
  int64_t Ns[3] = {896, 128, 200};
  for (int j = 0; ns != nullptr && j < members; ++j) Ns[j] = ns[j];
  std::mt19937 rng(static_cast<uint32_t>(K * 7 + kind * 3 + members + terms));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(MX * K), b(MX * K), nw(K), res(MX * Ns[0]);
  for (float& f : x) f = u(rng) * std::exp2(static_cast<float>(rng() % 9) - 4.0f);
  for (float& f : b) f = u(rng) * 3.0f;
  for (float& f : nw) f = u(rng) * 2.0f;
  for (float& f : res) f = u(rng);
  float *dx = Upload(x), *db = Upload(b), *dnw = Upload(nw), *dres = Upload(res);
  float *y_ref = nullptr, *y_got = nullptr;
  Check(cudaMalloc(reinterpret_cast<void**>(&y_ref), MX * K * 4), "malloc");
  Check(cudaMalloc(reinterpret_cast<void**>(&y_got), MX * K * 4), "malloc");
  std::vector<void*> frees = {dx, db, dnw, dres, y_ref, y_got};
  GemvPrologue pro;
  pro.kind = kind;
  if (kind == kGemvProRms) {
    pro.weight = dnw, pro.eps = 1e-6f, pro.woff = members == 2 ? 1.0f : 0.0f;
  } else {
    pro.b = db, pro.b_row = K;
  }
  GemvGroup grp, ref;
  grp.n = ref.n = members;
  for (int j = 0; j < members; ++j) {
    std::vector<uint16_t> w(Ns[j] * K);
    std::vector<float> bias(Ns[j]);
    for (uint16_t& v : w) v = ToBf16(u(rng));
    for (float& f : bias) f = u(rng);
    uint16_t* dw = Upload(w);
    float* dbias = Upload(bias);
    float *o = nullptr, *r = nullptr;
    Check(cudaMalloc(reinterpret_cast<void**>(&o), 2 * MX * Ns[j] * 4), "malloc");
    Check(cudaMalloc(reinterpret_cast<void**>(&r), 2 * MX * Ns[j] * 4), "malloc");
    grp.o[j] = GemvGroupOf(Params(Ns[j], K, dx, dw, dbias, o, MX)).o[0];
    ref.o[j] = GemvGroupOf(Params(Ns[j], K, y_ref, dw, dbias, r, MX)).o[0];
    frees.insert(frees.end(), {dw, dbias, o, r});
  }
  if (members == 1) {  // the o / down projection shape: residual in the epilogue
    grp.o[0].res = ref.o[0].res = dres;
    grp.o[0].res_row = ref.o[0].res_row = Ns[0];
    grp.o[0].res_out = grp.o[0].out + MX * Ns[0];
    ref.o[0].res_out = ref.o[0].out + MX * Ns[0];
    grp.o[0].res_out_row = ref.o[0].res_out_row = Ns[0];
  }
  bool same = true;
  for (int64_t M : {1, 3, 8}) {
    if (!GemvPrologueFits(M, K)) continue;  // not fused (the engine checks the same)
    for (const auto& run : kRuns) {
      GemvAux a = lab.aux;
      a.partials = lab.partials;
      a.split_blocks = run[1] * a.sms;
      for (int j = 0; j < members; ++j) {
        Check(cudaMemset(grp.o[j].out, 0xff, 2 * MX * Ns[j] * 4), "poison");
        Check(cudaMemset(ref.o[j].out, 0xfe, 2 * MX * Ns[j] * 4), "poison");
      }
      Check(cudaMemset(y_got, 0xff, MX * K * 4), "poison");
      LaunchProOp(pro, dx, M, K, y_ref, nullptr);
      Check(LaunchGemvBf16Group(Params(Ns[0], K, y_ref, nullptr, nullptr, nullptr, M), ref, terms,
                                a, nullptr),
            "reference group");
      GemvPrologue pm = pro;
      pm.y = y_got, pm.y_row = K;
      GemvAux af = a;  // the reference runs the default variant
      af.variant = run[0];
      Check(LaunchGemvBf16Fused(Params(Ns[0], K, dx, nullptr, nullptr, nullptr, M), grp, pm, terms,
                                af, nullptr),
            "fused group");
      Check(cudaDeviceSynchronize(), "prologue sync");
      const auto yg = Download(y_got, M * K), yr = Download(y_ref, M * K);
      same = same && std::memcmp(yg.data(), yr.data(), M * K * 4) == 0;
      for (int j = 0; j < members; ++j) {
        const auto got = Download(grp.o[j].out, 2 * MX * Ns[j]);
        const auto want = Download(ref.o[j].out, 2 * MX * Ns[j]);
        same = same && std::memcmp(got.data(), want.data(), M * Ns[j] * 4) == 0;
        if (members == 1)
          same = same &&
                 std::memcmp(got.data() + MX * Ns[0], want.data() + MX * Ns[0], M * Ns[0] * 4) == 0;
      }
    }
  }
  const std::string tag = std::string(kind == kGemvProRms ? "rms" : "swiglu") + "_K" +
                          std::to_string(K) + "_n" + std::to_string(members) + "_t" +
                          std::to_string(terms) +
                          (ns != nullptr ? "_N" + std::to_string(Ns[0]) : "");
  Expect(same, "prologue_" + tag);
  std::printf("checked prologue %s %s\n", tag.c_str(), same ? "same bits" : "DIFFERENT");
  for (void* f : frees) cudaFree(f);
}

// The gate/up group with SWIGLU in its epilogue (GemvGroup::swiglu), optionally behind the
// RMS_NORM prologue, against the unfused launches (norm kernel, group launch, SWIGLU kernel):
// the same g, u, SWIGLU output and norm output bits, for M = 1, 3, 8 and every kRuns variant.
// alias: the SWIGLU output in the gate's memory (the gate's store dropped, as the plugin does).
void CheckSwigluEpi(const Lab& lab, int64_t K, int64_t N, bool rms, bool alias, int terms) {
  const int64_t MX = 8;
  std::mt19937 rng(static_cast<uint32_t>(K * 13 + N + (rms ? 7 : 0) + (alias ? 3 : 0) + terms));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(MX * K), nw(K);
  for (float& f : x) f = u(rng) * std::exp2(static_cast<float>(rng() % 9) - 4.0f);
  for (float& f : nw) f = u(rng) * 2.0f;
  float *dx = Upload(x), *dnw = Upload(nw);
  std::vector<float*> bufs;  // y_ref, y_got, g/u/h ref, g/u/h got
  for (int j = 0; j < 8; ++j) {
    float* d = nullptr;
    Check(cudaMalloc(reinterpret_cast<void**>(&d), MX * std::max(K, N) * 4), "malloc");
    bufs.push_back(d);
  }
  std::vector<void*> frees = {dx, dnw};
  frees.insert(frees.end(), bufs.begin(), bufs.end());
  float *y_ref = bufs[0], *y_got = bufs[1];
  GemvPrologue pro;
  if (rms) pro.kind = kGemvProRms, pro.weight = dnw, pro.eps = 1e-6f, pro.woff = 1.0f;
  GemvGroup grp, ref;
  grp.n = ref.n = 2;
  for (int j = 0; j < 2; ++j) {
    std::vector<uint16_t> w(N * K);
    std::vector<float> bias(N);
    for (uint16_t& v : w) v = ToBf16(u(rng));
    for (float& f : bias) f = u(rng) * 4.0f;
    uint16_t* dw = Upload(w);
    float* dbias = Upload(bias);
    frees.insert(frees.end(), {dw, dbias});
    ref.o[j] = GemvGroupOf(Params(N, K, rms ? y_ref : dx, dw, dbias, bufs[2 + j], MX)).o[0];
    grp.o[j] = GemvGroupOf(Params(N, K, dx, dw, dbias, bufs[5 + j], MX)).o[0];
  }
  float* h_got = alias ? bufs[5] : bufs[7];
  grp.swiglu = h_got, grp.swiglu_row = N;
  if (alias) grp.o[0].out = nullptr;
  bool same = true;
  for (int64_t M : {1, 3, 8}) {
    if (rms && !GemvPrologueFits(M, K)) continue;
    for (const auto& run : kRuns) {
      GemvAux a = lab.aux;
      a.partials = lab.partials;
      a.split_blocks = run[1] * a.sms;
      for (int j = 0; j < 8; ++j)
        Check(cudaMemset(bufs[j], j < 5 ? 0xfe : 0xff, MX * std::max(K, N) * 4), "poison");
      if (rms) LaunchProOp(pro, dx, M, K, y_ref, nullptr);
      Check(LaunchGemvBf16Group(Params(N, K, rms ? y_ref : dx, nullptr, nullptr, nullptr, M), ref,
                                terms, a, nullptr),
            "reference group");
      GemvPrologue sw;
      sw.kind = kGemvProSwiglu, sw.b = bufs[3];
      LaunchProOp(sw, bufs[2], M, N, bufs[4], nullptr);  // h = SWIGLU(g, u), [M, N] contiguous
      GemvPrologue pm = pro;
      pm.y = rms ? y_got : nullptr, pm.y_row = K;
      GemvAux af = a;
      af.variant = run[0];
      Check(LaunchGemvBf16Fused(Params(N, K, dx, nullptr, nullptr, nullptr, M), grp, pm, terms, af,
                                nullptr),
            "swiglu epilogue group");
      Check(cudaDeviceSynchronize(), "swiglu epilogue sync");
      auto eq = [&](const float* got, const float* want, int64_t n) {
        const auto gv = Download(got, n), wv = Download(want, n);
        return std::memcmp(gv.data(), wv.data(), n * 4) == 0;
      };
      same = same && eq(h_got, bufs[4], M * N) && eq(bufs[6], bufs[3], M * N);
      if (!alias) same = same && eq(bufs[5], bufs[2], M * N);
      if (rms) same = same && eq(y_got, y_ref, M * K);
    }
  }
  const std::string tag = std::string(rms ? "rms" : "plain") + (alias ? "_alias" : "") + "_K" +
                          std::to_string(K) + "_N" + std::to_string(N) + "_t" +
                          std::to_string(terms);
  Expect(same, "swiglu_epi_" + tag);
  std::printf("checked swiglu_epi %s %s\n", tag.c_str(), same ? "same bits" : "DIFFERENT");
  for (void* f : frees) cudaFree(f);
}

// The gate/up launch (RMS_NORM prologue, as the engine runs it) followed by the SWIGLU kernel vs
// the same launch with SWIGLU in its epilogue, PDL on, weights rotated past L2.
void TimeSwigluEpi(const Lab& lab, const char* name, int64_t K, int64_t N) {
  std::mt19937 rng(17);
  std::vector<float> x(K), nw(K);
  for (float& f : x) f = static_cast<float>(rng() % 2001) / 1000.0f - 1.0f;
  for (float& f : nw) f = static_cast<float>(rng() % 2001) / 1000.0f;
  float *dx = Upload(x), *dnw = Upload(nw), *dy = nullptr, *dh = nullptr;
  Check(cudaMalloc(reinterpret_cast<void**>(&dy), K * 4), "malloc");
  Check(cudaMalloc(reinterpret_cast<void**>(&dh), N * 4), "malloc");
  std::vector<void*> frees = {dx, dnw, dy, dh};
  const int copies = static_cast<int>(std::max<int64_t>(2, (int64_t{320} << 20) / (4 * N * K) + 1));
  std::vector<GemvGroup> groups(copies);
  for (int c = 0; c < copies; ++c) {
    groups[c].n = 2;
    for (int j = 0; j < 2; ++j) {
      std::vector<uint16_t> w(N * K, ToBf16(0.01f * static_cast<float>(j + 1)));
      uint16_t* dw = Upload(w);
      float* o = nullptr;
      Check(cudaMalloc(reinterpret_cast<void**>(&o), N * 4), "malloc");
      groups[c].o[j] = GemvGroupOf(Params(N, K, dy, dw, nullptr, o, 1)).o[0];
      frees.insert(frees.end(), {dw, o});
    }
  }
  GemvPrologue pro;
  pro.kind = kGemvProRms, pro.weight = dnw, pro.eps = 1e-6f, pro.y = dy, pro.y_row = K;
  GemvAux a = lab.aux;
  a.partials = lab.partials;
  a.split_blocks = 2 * a.sms;
  a.split_max_groups = a.sms / 2;
  SetPdlLaunches(true);
  const MatmulParams px = Params(N, K, dx, nullptr, nullptr, nullptr, 1);
  for (bool norm : {true, false}) {
    const GemvPrologue pn = norm ? pro : GemvPrologue{};
    const MatmulParams pp = norm ? px : Params(N, K, dy, nullptr, nullptr, nullptr, 1);
    const double apart = TimeMs(7, 40, [&](int i) {
      const GemvGroup& gr = groups[i % copies];
      Check(LaunchGemvBf16Fused(pp, gr, pn, 3, a, nullptr), "group");
      GemvPrologue sw;
      sw.kind = kGemvProSwiglu, sw.b = gr.o[1].out;
      LaunchProOp(sw, gr.o[0].out, 1, N, dh, nullptr);
    });
    const double fused = TimeMs(7, 40, [&](int i) {
      GemvGroup gr = groups[i % copies];
      gr.swiglu = dh, gr.swiglu_row = N;
      Check(LaunchGemvBf16Fused(pp, gr, pn, 3, a, nullptr), "group+swiglu");
    });
    std::printf("swiglu_epi %s norm=%d K=%lld N=%lld group+swiglu_us=%.2f fused_us=%.2f\n", name,
                norm ? 1 : 0, static_cast<long long>(K), static_cast<long long>(N), apart * 1e3,
                fused * 1e3);
  }
  SetPdlLaunches(false);
  for (void* f : frees) cudaFree(f);
}

// ROPE q + ROPE k + KV_WRITE k + KV_WRITE v in one launch (LaunchRopeKv) against the four
// kernels run in order, with k's rotated output in q's input memory (what the engine's planner
// does): same q/k outputs and caches, bit for bit. R < D checks the pass-through dims; scale and
// interleaved the other RopeParams paths. time (cu-dec18): both forms back to back with PDL, us a
// layer ("time rope_kv ... four=.. fused=..": ROPE q, ROPE k, KV_WRITE x2 as the engine launches
// them without the fusion, vs the one launch).
void CheckRopeKv(int64_t T, int64_t Hq, int64_t Hk, int64_t D, int64_t R, float scale = 1.0f,
                 bool interleaved = false, bool time = false) {
  const int64_t BS = 16, NB = 4;
  if (static_cast<uint64_t>(T * (Hq + 2 * Hk) * D * 4 + 8 * T) > kRopeKvMaxStage)
    return;  // not fused
  std::mt19937 rng(static_cast<uint32_t>(T * 131 + Hq * 7 + D + R));
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<float> q(T * Hq * D), k(T * Hk * D), v(T * Hk * D), inv(R / 2);
  std::vector<float> cache(NB * BS * Hk * D);
  for (float& f : q) f = u(rng);
  for (float& f : k) f = u(rng);
  for (float& f : v) f = u(rng);
  for (float& f : cache) f = u(rng);
  for (int64_t i = 0; i < R / 2; ++i) inv[i] = std::pow(10000.0f, -2.0f * i / R);
  std::vector<int32_t> pos(T), slots(T);
  for (int64_t t = 0; t < T; ++t) pos[t] = static_cast<int32_t>(rng() % 5000);
  double us[2] = {0, 0};
  for (int64_t t = 0; t < T; ++t) slots[t] = static_cast<int32_t>((t * 7 + 3) % (NB * BS));
  if (T > 1) slots[1] = -1;  // a padding token: skipped
  int* err = nullptr;
  Check(cudaMalloc(reinterpret_cast<void**>(&err), 4), "malloc");
  Check(cudaMemset(err, 0, 4), "memset");
  auto run = [&](bool fused, std::vector<float>* outs) {
    float *dq = Upload(q), *dk = Upload(k), *dv = Upload(v), *dinv = Upload(inv);
    float *kc = Upload(cache), *vc = Upload(cache), *qo = nullptr;
    int32_t *dpos = Upload(pos), *dslots = Upload(slots);
    Check(cudaMalloc(reinterpret_cast<void**>(&qo), q.size() * 4), "malloc");
    RopeParams rq, rk;
    for (RopeParams* r : {&rq, &rk}) {
      r->pos = dpos, r->inv_freq = dinv, r->T = T, r->D = D, r->R = R, r->attn_scale = scale;
      r->interleaved = interleaved;
      r->x_el = r->o_el = 4;
    }
    rq.x = reinterpret_cast<const uint8_t*>(dq), rq.out = reinterpret_cast<uint8_t*>(qo);
    rq.H = Hq, rq.x_tok = rq.o_tok = Hq * D * 4, rq.x_head = rq.o_head = D * 4;
    // k's rotated output lives in q's input memory (dead once q's ROPE read it).
    rk.x = reinterpret_cast<const uint8_t*>(dk), rk.out = reinterpret_cast<uint8_t*>(dq);
    rk.H = Hk, rk.x_tok = rk.o_tok = Hk * D * 4, rk.x_head = rk.o_head = D * 4;
    KvWriteParams kw, vw;
    for (KvWriteParams* w : {&kw, &vw}) {
      w->dtype = TSR_DTYPE_F32, w->c_block = BS * Hk * D * 4, w->c_slot = Hk * D * 4;
      w->c_head = D * 4, w->c_el = 4, w->r_tok = Hk * D * 4, w->r_head = D * 4, w->r_el = 4;
      w->slots = dslots, w->T = T, w->H = Hk, w->D = D, w->block_size = BS, w->n_slots = NB * BS;
      w->err = err;
    }
    kw.cache = reinterpret_cast<uint8_t*>(kc), kw.rows = reinterpret_cast<const uint8_t*>(dq);
    vw.cache = reinterpret_cast<uint8_t*>(vc), vw.rows = reinterpret_cast<const uint8_t*>(dv);
    auto launch = [&] {
      if (fused) {
        Check(LaunchRopeKv(rq, rk, kw, vw, nullptr), "rope_kv");
      } else {
        Check(LaunchRope(rq, nullptr), "rope q");
        Check(LaunchRope(rk, nullptr), "rope k");
        Check(LaunchKvWrite2(kw, vw, nullptr), "kv");
      }
    };
    launch();
    Check(cudaDeviceSynchronize(), "rope_kv sync");
    outs->clear();
    for (auto [ptr, n] : {std::pair<float*, size_t>{qo, q.size()},
                          {dq, k.size()},
                          {kc, cache.size()},
                          {vc, cache.size()}}) {
      const auto h = Download(ptr, n);
      outs->insert(outs->end(), h.begin(), h.end());
    }
    if (time) {  // the buffers' values no longer matter
      SetPdlLaunches(true);
      us[fused ? 1 : 0] = 1e3 * TimeMs(7, 200, [&](int) { launch(); });
      SetPdlLaunches(false);
    }
    for (void* f : std::vector<void*>{dq, dk, dv, dinv, kc, vc, qo, dpos, dslots}) cudaFree(f);
  };
  std::vector<float> want, got;
  run(false, &want);
  run(true, &got);
  const bool same =
      want.size() == got.size() && std::memcmp(want.data(), got.data(), got.size() * 4) == 0;
  const std::string tag = "T" + std::to_string(T) + "_Hq" + std::to_string(Hq) + "_Hk" +
                          std::to_string(Hk) + "_D" + std::to_string(D) + "_R" + std::to_string(R) +
                          (scale != 1.0f ? "_scaled" : "") + (interleaved ? "_il" : "");
  Expect(same, "rope_kv_" + tag);
  std::printf("checked rope_kv %s %s\n", tag.c_str(), same ? "same bits" : "DIFFERENT");
  if (time) std::printf("time rope_kv %s four=%.2f fused=%.2f us\n", tag.c_str(), us[0], us[1]);
  cudaFree(err);
}

// cu24-chain: the norm + q/k/v launch with ROPE q/k + KV_WRITE k/v in its epilogue
// (GemvGroup::rope) against the engine's unfused launches (norm + q/k/v group launch, ROPE x2,
// KV_WRITE x2): the same raw q/k/v, norm output, q_rot, k_rot and K / V caches, bit for bit, at
// M = 1 for several positions (sincosf's slow path too) and slots (a padding slot -1 too), for
// every rounding form of x0 c - x1 s (GemvRopeKv::form; the default form must match). time:
// both back to back with PDL, us a layer.
void CheckRopeEpi(const Lab& lab, int64_t K, int64_t Hq, int64_t Hk, int64_t D, bool time) {
  const int64_t BS = 16, NB = 8, Nq = Hq * D, Nk = Hk * D;
  const int64_t Ns[3] = {Nq, Nk, Nk};
  std::mt19937 rng(static_cast<uint32_t>(K * 17 + Hq * 5 + Hk + D));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(K), nw(K), inv(D / 2), cache(NB * BS * Nk);
  for (float& f : x) f = u(rng) * std::exp2(static_cast<float>(rng() % 9) - 4.0f);
  for (float& f : nw) f = u(rng) * 2.0f;
  for (float& f : cache) f = u(rng);
  for (int64_t i = 0; i < D / 2; ++i) inv[i] = std::pow(500000.0f, -2.0f * i / D);
  float *dx = Upload(x), *dnw = Upload(nw), *dinv = Upload(inv);
  std::vector<void*> frees = {dx, dnw, dinv};
  auto alloc = [&](int64_t n) {
    float* d = nullptr;
    Check(cudaMalloc(reinterpret_cast<void**>(&d), n * 4), "malloc");
    frees.push_back(d);
    return d;
  };
  int32_t *dpos = nullptr, *dslot = nullptr;
  int* err = nullptr;
  Check(cudaMalloc(reinterpret_cast<void**>(&dpos), 4), "malloc");
  Check(cudaMalloc(reinterpret_cast<void**>(&dslot), 4), "malloc");
  Check(cudaMalloc(reinterpret_cast<void**>(&err), 4), "malloc");
  Check(cudaMemset(err, 0, 4), "memset");
  frees.insert(frees.end(), {dpos, dslot, err});
  GemvGroup grp, ref;
  grp.n = ref.n = 3;
  for (int j = 0; j < 3; ++j) {
    std::vector<uint16_t> w(Ns[j] * K);
    std::vector<float> bias(Ns[j]);
    for (uint16_t& v : w) v = ToBf16(u(rng));
    for (float& f : bias) f = u(rng);
    uint16_t* dw = Upload(w);
    float* dbias = Upload(bias);
    frees.insert(frees.end(), {dw, dbias});
    grp.o[j] = GemvGroupOf(Params(Ns[j], K, dx, dw, dbias, alloc(Ns[j]), 1)).o[0];
    ref.o[j] = GemvGroupOf(Params(Ns[j], K, dx, dw, dbias, alloc(Ns[j]), 1)).o[0];
  }
  GemvPrologue pro;
  pro.kind = kGemvProRms, pro.weight = dnw, pro.eps = 1e-6f, pro.woff = 0.0f, pro.y_row = K;
  float *y_ref = alloc(K), *y_got = alloc(K);
  float *q_ref = alloc(Nq), *k_ref = alloc(Nk), *q_got = alloc(Nq), *k_got = alloc(Nk);
  float *kc_ref = alloc(cache.size()), *vc_ref = alloc(cache.size());
  float *kc_got = alloc(cache.size()), *vc_got = alloc(cache.size());
  GemvAux a = lab.aux;
  a.partials = lab.partials;
  a.split_blocks = 2 * a.sms, a.split_max_groups = a.sms / 2;  // the engine's rule
  const MatmulParams p = Params(Nq, K, dx, nullptr, nullptr, nullptr, 1);
  GemvRopeKv rk;
  rk.pos = dpos, rk.inv_freq = dinv, rk.attn_scale = 1.0f, rk.D = D, rk.Dv = D;
  rk.q_rot = q_got, rk.k_rot = k_got, rk.q_head = D, rk.k_head = D;
  for (int c = 0; c < 2; ++c) {
    rk.cache[c] = reinterpret_cast<uint8_t*>(c == 0 ? kc_got : vc_got);
    rk.c_block[c] = BS * Nk * 4, rk.c_slot[c] = Nk * 4, rk.c_head[c] = D * 4, rk.c_el[c] = 4;
  }
  rk.slots = dslot, rk.block_size = BS, rk.n_slots = NB * BS, rk.err = err;
  grp.rope = &rk;
  const std::string tag = "K" + std::to_string(K) + "_Hq" + std::to_string(Hq) + "_Hk" +
                          std::to_string(Hk) + "_D" + std::to_string(D);
  if (!GemvRopeKvFits(p, grp, pro, 3, a)) {
    std::printf("checked rope_epi %s not fused (GemvRopeKvFits)\n", tag.c_str());
    for (void* f : frees) cudaFree(f);
    return;
  }
  RopeParams rq, rkp;
  for (RopeParams* r : {&rq, &rkp}) {
    r->pos = dpos, r->inv_freq = dinv, r->T = 1, r->D = D, r->R = D, r->attn_scale = 1.0f;
    r->x_el = r->o_el = 4, r->x_head = r->o_head = D * 4;
  }
  rq.x = reinterpret_cast<const uint8_t*>(ref.o[0].out), rq.out = reinterpret_cast<uint8_t*>(q_ref);
  rq.H = Hq, rq.x_tok = rq.o_tok = Nq * 4;
  rkp.x = reinterpret_cast<const uint8_t*>(ref.o[1].out);
  rkp.out = reinterpret_cast<uint8_t*>(k_ref);
  rkp.H = Hk, rkp.x_tok = rkp.o_tok = Nk * 4;
  KvWriteParams kw, vw;
  for (KvWriteParams* w : {&kw, &vw}) {
    w->dtype = TSR_DTYPE_F32, w->c_block = BS * Nk * 4, w->c_slot = Nk * 4, w->c_head = D * 4;
    w->c_el = 4, w->r_tok = Nk * 4, w->r_head = D * 4, w->r_el = 4, w->slots = dslot, w->T = 1;
    w->H = Hk, w->D = D, w->block_size = BS, w->n_slots = NB * BS, w->err = err;
  }
  kw.cache = reinterpret_cast<uint8_t*>(kc_ref), kw.rows = reinterpret_cast<const uint8_t*>(k_ref);
  vw.cache = reinterpret_cast<uint8_t*>(vc_ref);
  vw.rows = reinterpret_cast<const uint8_t*>(ref.o[2].out);
  GemvPrologue pr = pro, pg = pro;
  pr.y = y_ref, pg.y = y_got;
  auto unfused = [&] {
    Check(LaunchGemvBf16Fused(p, ref, pr, 3, a, nullptr), "norm + q/k/v");
    Check(LaunchRope2(rq, rkp, nullptr), "rope x2");
    Check(LaunchKvWrite2(kw, vw, nullptr), "kv_write x2");
  };
  auto fused = [&] { Check(LaunchGemvBf16Fused(p, grp, pg, 3, a, nullptr), "fused"); };
  bool same_default = true;
  int forms_ok = 0;
  for (int form = -1; form <= 2; ++form) {
    rk.form = form;
    bool same = true;
    for (const auto& [pos, slot] : {std::pair<int32_t, int32_t>{0, 5},
                                    {17, 37},
                                    {1000, 127},
                                    {4097, 64},
                                    {120000, 3},
                                    {31, -1}}) {
      Check(cudaMemcpy(dpos, &pos, 4, cudaMemcpyHostToDevice), "pos");
      Check(cudaMemcpy(dslot, &slot, 4, cudaMemcpyHostToDevice), "slot");
      for (float* c : {kc_ref, vc_ref, kc_got, vc_got})
        Check(cudaMemcpy(c, cache.data(), cache.size() * 4, cudaMemcpyHostToDevice), "cache");
      for (int j = 0; j < 3; ++j) {
        Check(cudaMemset(grp.o[j].out, 0xff, Ns[j] * 4), "poison");
        Check(cudaMemset(ref.o[j].out, 0xfe, Ns[j] * 4), "poison");
      }
      Check(cudaMemset(q_got, 0xff, Nq * 4), "poison");
      Check(cudaMemset(k_got, 0xff, Nk * 4), "poison");
      Check(cudaMemset(y_got, 0xff, K * 4), "poison");
      unfused();
      fused();
      Check(cudaDeviceSynchronize(), "rope_epi sync");
      const auto eq = [&](const float* g, const float* r, int64_t n) {
        const auto hg = Download(g, n), hr = Download(r, n);
        return std::memcmp(hg.data(), hr.data(), n * 4) == 0;
      };
      bool raw = eq(y_got, y_ref, K);
      for (int j = 0; j < 3; ++j) raw = raw && eq(grp.o[j].out, ref.o[j].out, Ns[j]);
      const bool rot = eq(q_got, q_ref, Nq) && eq(k_got, k_ref, Nk) &&
                       eq(kc_got, kc_ref, cache.size()) && eq(vc_got, vc_ref, cache.size());
      if (!raw) std::printf("rope_epi %s form=%d pos=%d: raw DIFFERENT\n", tag.c_str(), form, pos);
      same = same && raw && rot;
    }
    int e = 0;
    Check(cudaMemcpy(&e, err, 4, cudaMemcpyDeviceToHost), "err");
    // Only the default form must match; the others are reported as "no match" (not a failure).
    std::printf("checked rope_epi %s form=%d %s%s\n", tag.c_str(), form,
                same ? "same bits" : (form == -1 ? "DIFFERENT" : "no match"),
                e != 0 ? " (device error set)" : "");
    if (form == -1) same_default = same;
    if (form >= 0 && same) ++forms_ok;
  }
  Expect(same_default, "rope_epi_" + tag);
  std::printf("rope_epi %s forms matching: %d\n", tag.c_str(), forms_ok);
  if (time) {
    rk.form = -1;
    SetPdlLaunches(true);
    a.pdl = true;
    const double t0 = 1e3 * TimeMs(7, 200, [&](int) { unfused(); });
    const double t1 = 1e3 * TimeMs(7, 200, [&](int) { fused(); });
    const double t2 = 1e3 * TimeMs(7, 200, [&](int) { unfused(); });
    const double t3 = 1e3 * TimeMs(7, 200, [&](int) { fused(); });
    SetPdlLaunches(false);
    std::printf("time rope_epi %s unfused=%.2f,%.2f fused=%.2f,%.2f us\n", tag.c_str(), t0, t2, t1,
                t3);
  }
  for (void* f : frees) cudaFree(f);
}

// Decode-step shapes: the op's own launch + the GEMV group vs one prologue-fused launch (M = 1,
// PDL on as in the engine, weights rotated past the L2).
void TimePrologue(const Lab& lab, const char* name, int kind, int64_t K, std::vector<int64_t> Ns) {
  std::mt19937 rng(11);
  std::vector<float> x(K), b(K), nw(K);
  for (float& f : x) f = static_cast<float>(rng() % 2001) / 1000.0f - 1.0f;
  for (float& f : b) f = static_cast<float>(rng() % 2001) / 1000.0f - 1.0f;
  for (float& f : nw) f = static_cast<float>(rng() % 2001) / 1000.0f;
  float *dx = Upload(x), *db = Upload(b), *dnw = Upload(nw), *dy = nullptr;
  Check(cudaMalloc(reinterpret_cast<void**>(&dy), K * 4), "malloc");
  std::vector<void*> frees = {dx, db, dnw, dy};
  int64_t bytes = 0;
  for (int64_t N : Ns) bytes += N * K * 2;
  const int copies = static_cast<int>(std::max<int64_t>(2, (int64_t{320} << 20) / bytes + 1));
  std::vector<GemvGroup> groups(copies);
  for (int c = 0; c < copies; ++c) {
    groups[c].n = static_cast<int>(Ns.size());
    for (size_t j = 0; j < Ns.size(); ++j) {
      std::vector<uint16_t> w(Ns[j] * K, ToBf16(0.01f * static_cast<float>(j + 1)));
      uint16_t* dw = Upload(w);
      float* o = nullptr;
      Check(cudaMalloc(reinterpret_cast<void**>(&o), Ns[j] * 4), "malloc");
      groups[c].o[j] = GemvGroupOf(Params(Ns[j], K, dy, dw, nullptr, o, 1)).o[0];
      frees.insert(frees.end(), {dw, o});
    }
  }
  GemvPrologue pro;
  pro.kind = kind;
  pro.weight = dnw, pro.eps = 1e-6f, pro.b = db, pro.b_row = K, pro.y = dy, pro.y_row = K;
  GemvAux a = lab.aux;
  a.partials = lab.partials;
  a.split_blocks = 2 * a.sms;
  a.split_max_groups = a.sms / 2;  // the engine's default split-K
  SetPdlLaunches(true);
  const MatmulParams py = Params(Ns[0], K, dy, nullptr, nullptr, nullptr, 1);
  const MatmulParams px = Params(Ns[0], K, dx, nullptr, nullptr, nullptr, 1);
  const double apart = TimeMs(7, 40, [&](int i) {
    LaunchProOp(pro, dx, 1, K, dy, nullptr);
    Check(LaunchGemvBf16Group(py, groups[i % copies], 3, a, nullptr), "group");
  });
  const double fused = TimeMs(7, 40, [&](int i) {
    Check(LaunchGemvBf16Fused(px, groups[i % copies], pro, 3, a, nullptr), "fused");
  });
  const double gemv_only = TimeMs(7, 40, [&](int i) {
    Check(LaunchGemvBf16Group(py, groups[i % copies], 3, a, nullptr), "group");
  });
  std::printf("prologue %s K=%lld op+gemv_us=%.2f fused_us=%.2f gemv_alone_us=%.2f\n", name,
              static_cast<long long>(K), apart * 1e3, fused * 1e3, gemv_only * 1e3);
  // The fused launch per block-kernel variant (v=0: the default rule).
  for (const TimedVariant& tv : kTimed) {
    GemvAux av = a;
    av.variant = tv.v;
    av.warps_per_sm = tv.cfg;
    const double us = TimeMs(7, 40, [&](int i) {
      Check(LaunchGemvBf16Fused(px, groups[i % copies], pro, 3, av, nullptr), "fused variant");
    });
    std::printf("prologue_v %s v=%d cfg=0x%x fused_us=%.2f of_copy=%.2f\n", name, tv.v, tv.cfg,
                us * 1e3, bytes / (us * 1e-3) / 1e9 / lab.copy_gbs);
  }
  SetPdlLaunches(false);
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
      if (quick && v.v >= 1 && v.v <= 4) continue;  // the streaming kernel: not used
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
  for (const TimedVariant& tv : kTimed) {
    for (bool pdl : {false, true}) {
      GemvAux a = lab.aux;
      a.variant = tv.v;
      a.warps_per_sm = tv.cfg;
      a.split_blocks = tv.split * 2 * a.sms;
      const int variant = tv.v * 256 + tv.cfg;
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
      std::printf(
          "group %s K=%lld v=%d cfg=0x%x pdl=%d fused_us=%.2f separate_us=%.2f of_copy=%.2f\n",
          name, static_cast<long long>(K), variant >> 8, variant & 0xff, pdl ? 1 : 0, fused * 1e3,
          apart * 1e3, bytes / (fused * 1e-3) / 1e9 / lab.copy_gbs);
    }
  }
  SetPdlLaunches(false);
  for (void* f : frees) cudaFree(f);
}

// ---- cu-dec16: read rates next to the 8B decode GEMVs (--dec16, --dec16-ncu) ----

// LaunchReadLab's line-shaped kinds (k_matmul_bf16.cu): kReadHalf / kReadFull's bytes a warp and
// round, each load instruction along whole 128-byte lines of one or two rows.
constexpr int kReadHalfLines = 5, kReadFullLines = 6;
// cu23-b8: the GEMV's whole-line loads (GemvLoadLines: 4 rows x 128 bytes, then the exchange).
constexpr int kReadHalfLines4 = 7, kReadFullLines4 = 8;

// A device pool of at least `bytes` x copies (the 320 MB L2-rotation rule), every byte 0x3c
// (bf16 0x3c3c: 0.0115): the read kernels and the timed GEMVs only need real-looking weights.
struct Pool {
  uint8_t* base = nullptr;
  int copies = 0;
  int64_t bytes = 0;
  Pool(int64_t b) : bytes(b) {
    copies = static_cast<int>(std::max<int64_t>(2, (int64_t{320} << 20) / b + 1));
    Check(cudaMalloc(reinterpret_cast<void**>(&base), static_cast<size_t>(b) * copies), "pool");
    Check(cudaMemset(base, 0x3c, static_cast<size_t>(b) * copies), "pool memset");
  }
  ~Pool() { cudaFree(base); }
  const uint8_t* at(int i) const { return base + static_cast<int64_t>(i % copies) * bytes; }
};

struct ReadCfg {
  int kind, warps, per_sm;
  const char* what;
};

// One weight's shape: the plain read and the GEMV load patterns at the same bytes (us, GB/s,
// fraction of copy).
void TimeReads(const Lab& lab, const char* name, int64_t N, int64_t K, uint32_t* sink,
               std::vector<ReadCfg> cfgs) {
  Pool pool(N * K * 2);
  for (const ReadCfg& c : cfgs) {
    const double ms = TimeMs(7, 20, [&](int i) {
      Check(LaunchReadLab(c.kind, pool.at(i), N, K, c.warps, c.per_sm, lab.aux.sms, sink, nullptr),
            "read");
    });
    const double gbs = N * K * 2 / (ms * 1e-3) / 1e9;
    std::printf(
        "read %s N=%lld K=%lld MB=%.1f kind=%d warps=%d per_sm=%d (%s) us=%.2f GB/s=%.0f "
        "of_copy=%.3f\n",
        name, static_cast<long long>(N), static_cast<long long>(K), N * K * 2 / 1e6, c.kind,
        c.warps, c.per_sm, c.what, ms * 1e3, gbs, gbs / lab.copy_gbs);
  }
}

// The engine's launch of a plain decode GEMV (v = 0: the rule, split-K as the engine sets it, PDL)
// next to the block kernel's lab variants, weights rotated past L2.
void TimeEngineGemv(const Lab& lab, const char* name, int64_t N, int64_t K) {
  Pool pool(N * K * 2);
  std::vector<float> x(K, 0.5f);
  float* dx = Upload(x);
  float* out = nullptr;
  Check(cudaMalloc(reinterpret_cast<void**>(&out), N * 4), "malloc");
  for (const Variant v : {Variant{0, 0}, Variant{kGemvFullTma, 0x42}, Variant{kGemvFullTma, 0x43},
                          Variant{kGemvFullTma, 0x82}, Variant{kGemvHalf8, 0},
                          Variant{kGemvHalf, 0}, Variant{kGemvFull, 0}}) {
    GemvAux a = lab.aux;
    a.partials = lab.partials;
    a.split_blocks = 2 * a.sms;
    a.split_max_groups = a.sms / 2;
    a.variant = v.v;
    a.warps_per_sm = v.wps;
    a.pdl = true;
    SetPdlLaunches(true);
    const double ms = TimeMs(7, 40, [&](int i) {
      Check(LaunchGemvBf16Stream(
                Params(N, K, dx, reinterpret_cast<const uint16_t*>(pool.at(i)), nullptr, out, 1), 3,
                a, nullptr),
            "gemv");
    });
    SetPdlLaunches(false);
    const double gbs = N * K * 2 / (ms * 1e-3) / 1e9;
    std::printf("engine_gemv %s N=%lld K=%lld v=%d cfg=0x%x pdl=1 us=%.2f GB/s=%.0f of_copy=%.3f\n",
                name, static_cast<long long>(N), static_cast<long long>(K), v.v, v.wps, ms * 1e3,
                gbs, gbs / lab.copy_gbs);
  }
  cudaFree(dx);
  cudaFree(out);
}

int Dec16(Lab& lab, bool ncu) {
  uint32_t* sink = nullptr;
  Check(cudaMalloc(reinterpret_cast<void**>(&sink), 1 << 20), "sink");
  if (!ncu) lab.copy_gbs = CopyBandwidth();
  struct W {
    const char* name;
    int64_t N, K;
  };
  const W ws[] = {{"8B-o", 4096, 4096},
                  {"8B-qkv", 6144, 4096},
                  {"8B-down", 4096, 14336},
                  {"8B-gate-up", 28672, 4096},
                  {"8B-head", 128256, 4096}};
  if (ncu) {
    // One launch each (ncu flushes the caches itself): plain read, the engine's o / down, the
    // load pattern of down, then the prologue launches below.
    Pool pool(int64_t{4096} * 14336 * 2);
    Check(LaunchReadLab(kReadPlain, pool.at(0), 4096, 14336, 16, 2, lab.aux.sms, sink, nullptr),
          "read");
    Check(LaunchReadLab(kReadHalf, pool.at(0), 4096, 14336, 16, 2, lab.aux.sms, sink, nullptr),
          "read");
    std::vector<float> x(14336, 0.5f);
    float* dx = Upload(x);
    float* out = nullptr;
    Check(cudaMalloc(reinterpret_cast<void**>(&out), 14336 * 4), "malloc");
    GemvAux a = lab.aux;
    a.partials = lab.partials;
    a.split_blocks = 2 * a.sms;
    a.split_max_groups = a.sms / 2;
    const uint16_t* w0 = reinterpret_cast<const uint16_t*>(pool.at(0));
    for (const W& w : {ws[0], ws[2]}) {
      Check(LaunchGemvBf16Stream(Params(w.N, w.K, dx, w0, nullptr, out, 1), 3, a, nullptr), "gemv");
    }
    Check(cudaDeviceSynchronize(), "ncu launches");
    std::printf("dec16-ncu launches done\n");
    return 0;
  }
  // GEMV_LAB_DEC16_GEMV_ONLY: the GEMV launches only (e.g. again under another env knob).
  for (const W& w : ws) {
    if (std::getenv("GEMV_LAB_DEC16_GEMV_ONLY") != nullptr) break;
    std::vector<ReadCfg> cfgs = {{kReadPlain, 32, 2, "plain 64 warps/SM"},
                                 {kReadPlain, 16, 2, "plain 32 warps/SM"},
                                 {kReadPlain, 16, 1, "plain 16 warps/SM"},
                                 {kReadHalf, 16, 2, "half 16w x2 (8B down's)"},
                                 {kReadHalfContig, 16, 2, "half 16w x2 contiguous chunks"},
                                 {kReadHalf, 8, 3, "half 8w x3 (8B o / q/k/v's)"},
                                 {kReadHalfContig, 8, 3, "half 8w x3 contiguous"},
                                 {kReadFull, 16, 1, "full 16w x1 (gate/up, head)"},
                                 {kReadFullContig, 16, 1, "full 16w x1 contiguous"},
                                 {kReadHalfLines, 16, 2, "half 16w x2, line-shaped loads"},
                                 {kReadHalfLines, 8, 3, "half 8w x3, line-shaped loads"},
                                 {kReadFullLines, 16, 1, "full 16w x1, line-shaped loads"},
                                 {kReadHalf, 16, 3, "half 16w x3 (no GEMV fits)"},
                                 {kReadFullLines4, 16, 1, "full 16w x1, GemvLoadLines"},
                                 {kReadHalfLines4, 8, 3, "half 8w x3, GemvLoadLines"},
                                 {kReadHalfLines4, 16, 2, "half 16w x2, GemvLoadLines"}};
    TimeReads(lab, w.name, w.N, w.K, sink, cfgs);
  }
  TimeEngineGemv(lab, "8B-o", 4096, 4096);
  TimeEngineGemv(lab, "8B-down", 4096, 14336);
  TimeEngineGemv(lab, "1B-o", 2048, 2048);
  TimeEngineGemv(lab, "1B-down", 2048, 8192);
  TimePrologue(lab, "8B-norm-qkv", kGemvProRms, 4096, {4096, 1024, 1024});
  TimePrologue(lab, "8B-norm-gate-up", kGemvProRms, 4096, {14336, 14336});
  TimePrologue(lab, "8B-norm-head", kGemvProRms, 4096, {128256});
  cudaFree(sink);
  return 0;
}

// ---- cu-dec17: the engine's decode GEMV launches, one line each (--dec17) ----

// One launch of the engine's rule (v = 0, split-K as the engine sets it, PDL): a group of Ns over
// K behind the prologue `kind` (RMS_NORM) or plain (kGemvProNone), weights rotated past L2.
// res (cu21-gemv): member 0 also adds a residual (res_out = res + out, GemvOut::res).
// before (cu24-b8, --pair24): launched ahead of each GEMV launch (both in the timed loop).
void Dec17Time(const Lab& lab, const char* name, int kind, int64_t K, std::vector<int64_t> Ns,
               bool res = false, const std::function<void()>& before = nullptr,
               bool swiglu = false) {
  // cu-dec18, for ncu: GEMV_LAB_DEC17_ONLY=NAME times that launch only; GEMV_LAB_NCU=1 makes it
  // 3 warm-up + 2 launches (profile the 4th: `ncu --launch-skip 3 --launch-count 1`).
  // (cu21-gemv: or a comma-separated list of names.)
  const char* only = std::getenv("GEMV_LAB_DEC17_ONLY");
  if (only != nullptr &&
      (std::string(",") + only + ",").find(std::string(",") + name + ",") == std::string::npos)
    return;
  const bool few = std::getenv("GEMV_LAB_NCU") != nullptr;
  std::mt19937 rng(23);
  std::vector<float> x(K), nw(K);
  for (float& f : x) f = static_cast<float>(rng() % 2001) / 1000.0f - 1.0f;
  for (float& f : nw) f = static_cast<float>(rng() % 2001) / 1000.0f;
  float *dx = Upload(x), *dnw = Upload(nw), *dy = nullptr;
  Check(cudaMalloc(reinterpret_cast<void**>(&dy), K * 4), "malloc");
  std::vector<void*> frees = {dx, dnw, dy};
  int64_t bytes = 0;
  for (int64_t N : Ns) bytes += N * K * 2;
  const int copies = static_cast<int>(std::max<int64_t>(2, (int64_t{320} << 20) / bytes + 1));
  std::vector<GemvGroup> groups(copies);
  for (int c = 0; c < copies; ++c) {
    groups[c].n = static_cast<int>(Ns.size());
    for (size_t j = 0; j < Ns.size(); ++j) {
      uint16_t* dw = nullptr;
      Check(cudaMalloc(reinterpret_cast<void**>(&dw), Ns[j] * K * 2), "malloc");
      Check(cudaMemset(dw, 0x3c, Ns[j] * K * 2), "memset");
      float* o = nullptr;
      Check(cudaMalloc(reinterpret_cast<void**>(&o), Ns[j] * 4), "malloc");
      groups[c].o[j] = GemvGroupOf(Params(Ns[j], K, dx, dw, nullptr, o, 1)).o[0];
      frees.insert(frees.end(), {dw, o});
      if (swiglu && j == 1) {  // cu29-ring: the SWIGLU epilogue (two equal members)
        float* h = nullptr;
        Check(cudaMalloc(reinterpret_cast<void**>(&h), Ns[j] * 4), "malloc");
        groups[c].swiglu = h, groups[c].swiglu_row = Ns[j];
        frees.push_back(h);
      }
      if (res && j == 0) {
        float *r = nullptr, *ro = nullptr;
        Check(cudaMalloc(reinterpret_cast<void**>(&r), Ns[j] * 4), "malloc");
        Check(cudaMalloc(reinterpret_cast<void**>(&ro), Ns[j] * 4), "malloc");
        Check(cudaMemset(r, 0, Ns[j] * 4), "memset");
        groups[c].o[0].res = r, groups[c].o[0].res_out = ro;
        groups[c].o[0].res_row = groups[c].o[0].res_out_row = Ns[j];
        frees.insert(frees.end(), {r, ro});
      }
    }
  }
  GemvPrologue pro;
  pro.kind = kind;
  pro.weight = dnw, pro.eps = 1e-6f, pro.y = dy, pro.y_row = K;
  GemvAux a = lab.aux;
  a.partials = lab.partials;
  a.split_blocks = 2 * a.sms;
  a.split_max_groups = a.sms / 2;  // the engine's default split-K
  a.pdl = true;
  SetPdlLaunches(true);
  const MatmulParams px = Params(Ns[0], K, dx, nullptr, nullptr, nullptr, 1);
  const double ms = TimeMs(few ? 1 : 9, few ? 2 : 40, [&](int i) {
    if (before) before();
    Check(LaunchGemvBf16Fused(px, groups[i % copies], pro, 3, a, nullptr), "dec17 launch");
  });
  SetPdlLaunches(false);
  const double gbs = bytes / (ms * 1e-3) / 1e9;
  const char* tag = std::getenv("GEMV_LAB_TAG");
  std::printf("dec17 %-18s tag=%s us=%.2f GB/s=%.0f of_copy=%.3f\n", name,
              tag != nullptr ? tag : "-", ms * 1e3, gbs, gbs / lab.copy_gbs);
  for (void* f : frees) cudaFree(f);
}

int Dec17(Lab& lab) {
  lab.copy_gbs = CopyBandwidth();
  Dec17Time(lab, "8B-o", kGemvProNone, 4096, {4096});
  Dec17Time(lab, "8B-norm-qkv", kGemvProRms, 4096, {4096, 1024, 1024});
  Dec17Time(lab, "8B-norm-gate-up", kGemvProRms, 4096, {14336, 14336});
  Dec17Time(lab, "8B-down", kGemvProNone, 14336, {4096});
  Dec17Time(lab, "1B-o", kGemvProNone, 2048, {2048});
  Dec17Time(lab, "1B-norm-qkv", kGemvProRms, 2048, {2048, 512, 512});
  Dec17Time(lab, "1B-norm-gate-up", kGemvProRms, 2048, {8192, 8192});
  Dec17Time(lab, "1B-down", kGemvProNone, 8192, {2048});
  // cu-dec18b: the 0.5B's RMS launches in 4-warp blocks (GemvRmsStageRegs<2>).
  Dec17Time(lab, "05B-norm-qkv", kGemvProRms, 896, {896, 128, 128});
  Dec17Time(lab, "05B-norm-head", kGemvProRms, 896, {151936});
  // cu-small19: the 0.5B's plain launches (register preload before the PDL wait, kGemvPipePre).
  Dec17Time(lab, "05B-o", kGemvProNone, 896, {896});
  Dec17Time(lab, "05B-down", kGemvProNone, 4864, {896});
  // cu21-gemv: the 0.5B's norm + gate/up group (two 4864-row members), and the o / down with the
  // fused residual ADD as the engine launches them (GemvOut::res, res_out).
  Dec17Time(lab, "05B-norm-gate-up", kGemvProRms, 896, {4864, 4864});
  Dec17Time(lab, "05B-o-res", kGemvProNone, 896, {896}, true);
  Dec17Time(lab, "05B-down-res", kGemvProNone, 4864, {896}, true);
  Dec17Time(lab, "1B-o-res", kGemvProNone, 2048, {2048}, true);
  Dec17Time(lab, "1B-down-res", kGemvProNone, 8192, {2048}, true);
  // cu22-8b: the 8B's o / down with the fused residual ADD and the norm + head, as the engine
  // launches them (TESSERA_CUDA_GEMV_O2 / _PBAL).
  Dec17Time(lab, "8B-o-res", kGemvProNone, 4096, {4096}, true);
  Dec17Time(lab, "8B-down-res", kGemvProNone, 14336, {4096}, true);
  Dec17Time(lab, "8B-norm-head", kGemvProRms, 4096, {128256});
  // cu29-ring: the 8B norm + gate/up with the SWIGLU epilogue, as the engine launches it.
  Dec17Time(lab, "8B-norm-gate-up-swiglu", kGemvProRms, 4096, {14336, 14336}, false, nullptr, true);
  // cu30-ring: the 0.5B's (K = 896, tasks of 8 units) with the SWIGLU epilogue.
  Dec17Time(lab, "05B-norm-gate-up-swiglu", kGemvProRms, 896, {4864, 4864}, false, nullptr, true);
  return 0;
}

// ---- cu24-b8: the 8B decode attention + o pair (--pair24) ----
// One query over L keys (32 / 8 heads, D = 128, dense f32 K / V: a stand-in for the engine's
// paged cache, which the attention reads alone, leaving the DRAM mostly idle), then the 8B o +
// residual as the engine launches it (PDL, weights rotated past L2): the o's blocks that find an
// SM free ask weights into L2 while the attention runs (TESSERA_CUDA_GEMV_PREFALL). "pair24" lines:
// the attention alone, then "dec17" lines of the o alone and of the pair (tag $GEMV_LAB_TAG).
int Pair24(Lab& lab) {
  lab.copy_gbs = CopyBandwidth();
  constexpr int64_t Hq = 32, Hkv = 8, D = 128;
  const char* tag = std::getenv("GEMV_LAB_TAG");
  for (int64_t L : {80, 144}) {
    std::mt19937 rng(24);
    std::vector<float> q(Hq * D), kv(L * Hkv * D);
    for (float& f : q) f = static_cast<float>(rng() % 2001) / 1000.0f - 1.0f;
    for (float& f : kv) f = static_cast<float>(rng() % 2001) / 1000.0f - 1.0f;
    float *dq = Upload(q), *dk = Upload(kv), *dv = Upload(kv), *out = nullptr;
    int32_t* cu = nullptr;
    Check(cudaMalloc(reinterpret_cast<void**>(&out), Hq * D * 4), "malloc");
    Check(cudaMalloc(reinterpret_cast<void**>(&cu), 4 * sizeof(int32_t)), "malloc");
    const int32_t c[4] = {0, 1, 0, static_cast<int32_t>(L)};
    Check(cudaMemcpy(cu, c, sizeof(c), cudaMemcpyHostToDevice), "upload");
    AttnParams p;
    p.q = reinterpret_cast<const uint8_t*>(dq), p.q_tok = Hq * D * 4, p.q_head = D * 4;
    p.out = reinterpret_cast<uint8_t*>(out), p.o_tok = Hq * D * 4, p.o_head = D * 4;
    p.k = reinterpret_cast<const uint8_t*>(dk), p.v = reinterpret_cast<const uint8_t*>(dv);
    p.k_tok = p.v_tok = Hkv * D * 4, p.k_head = p.v_head = D * 4;
    p.kv_dtype = TSR_DTYPE_F32;
    p.n_kv_rows = L;
    p.T = 1, p.Hq = Hq, p.Hkv = Hkv, p.D = D, p.Dv = D, p.S = 1;
    p.scale = 1.0f / std::sqrt(static_cast<float>(D));
    p.causal = true;
    p.cu_q = cu, p.cu_k = cu + 2;
    const auto attn = [&] { Check(LaunchAttentionWith(p, 0, nullptr), "pair24 attention"); };
    SetPdlLaunches(true);
    const double ms = TimeMs(9, 40, [&](int) { attn(); });
    SetPdlLaunches(false);
    std::printf("pair24 attention L=%lld tag=%s us=%.2f\n", static_cast<long long>(L),
                tag != nullptr ? tag : "-", ms * 1e3);
    const std::string name = "8B-attn" + std::to_string(L) + "-o-res";
    Dec17Time(lab, name.c_str(), kGemvProNone, 4096, {4096}, true, attn);
    if (L == 80) Dec17Time(lab, "8B-o-res", kGemvProNone, 4096, {4096}, true);
    for (void* f : {static_cast<void*>(dq), static_cast<void*>(dk), static_cast<void*>(dv),
                    static_cast<void*>(out), static_cast<void*>(cu)})
      cudaFree(f);
  }
  return 0;
}

// ---- cu22-head: the LM heads against a plain read of their bytes (--head22) ----
// Plain reads (64 / 32 / 16 warps an SM) of each head's bytes, then the engine's launches of the
// 0.5B / 1B heads (plain, as the engine runs them: no norm + head fusion there) and, for
// comparison, the norm + head prologue launches (the 8B's path), all "dec17" lines (tag
// $GEMV_LAB_TAG). GEMV_LAB_HEAD_GEMV_ONLY=1: the GEMV lines only (A/B of the launch knobs).
int Head22(Lab& lab) {
  lab.copy_gbs = CopyBandwidth();
  std::printf("copy GB/s=%.0f\n", lab.copy_gbs);
  if (std::getenv("GEMV_LAB_HEAD_GEMV_ONLY") == nullptr) {
    uint32_t* sink = nullptr;
    Check(cudaMalloc(reinterpret_cast<void**>(&sink), 1 << 20), "sink");
    const std::vector<ReadCfg> cfgs = {{kReadPlain, 32, 2, "plain 64 warps/SM"},
                                       {kReadPlain, 16, 2, "plain 32 warps/SM"},
                                       {kReadPlain, 16, 1, "plain 16 warps/SM"},
                                       {kReadFull, 16, 1, "full 16w x1"},
                                       {kReadFull, 8, 2, "full 8w x2 (1B head's)"}};
    TimeReads(lab, "05B-head", 151936, 896, sink, cfgs);
    TimeReads(lab, "1B-head", 128256, 2048, sink, cfgs);
    TimeReads(lab, "8B-head", 128256, 4096, sink, cfgs);
    cudaFree(sink);
  }
  Dec17Time(lab, "05B-head", kGemvProNone, 896, {151936});
  Dec17Time(lab, "1B-head", kGemvProNone, 2048, {128256});
  Dec17Time(lab, "8B-head", kGemvProNone, 4096, {128256});
  Dec17Time(lab, "05B-norm-head", kGemvProRms, 896, {151936});
  Dec17Time(lab, "1B-norm-head", kGemvProRms, 2048, {128256});
  Dec17Time(lab, "8B-norm-head", kGemvProRms, 4096, {128256});
  return 0;
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
  if (argc > 1 && std::strcmp(argv[1], "--dec17") == 0) return Dec17(lab);
  if (argc > 1 && std::strcmp(argv[1], "--pair24") == 0) return Pair24(lab);
  if (argc > 1 && std::strcmp(argv[1], "--head22") == 0) return Head22(lab);
  if (argc > 1 && std::strcmp(argv[1], "--rope24") == 0) {  // cu24-chain: the rope epilogue
    CheckRopeEpi(lab, 896, 14, 2, 64, true);                // Qwen2.5-0.5B
    CheckRopeEpi(lab, 2048, 32, 8, 64, true);               // Llama-3.2-1B
    CheckRopeEpi(lab, 896, 7, 1, 128, false);               // D = 128 on the 0.5B's kernel
    CheckRopeEpi(lab, 4096, 32, 8, 128, true);  // Llama-3.1-8B (fused on the H200 ring only)
    std::printf("checks failures=%d\n", g_failures);
    return g_failures == 0 ? 0 : 1;
  }
  if (argc > 1 && std::strcmp(argv[1], "--ropekv") == 0) {  // cu-dec18: the fused ROPE + KV_WRITE
    for (int64_t T : {1, 2, 3, 4, 8}) {
      const bool t1 = T == 1;
      CheckRopeKv(T, 14, 2, 64, 64, 1.0f, false, t1);    // Qwen2.5-0.5B
      CheckRopeKv(T, 32, 8, 64, 64, 1.0f, false, t1);    // Llama-3.2-1B
      CheckRopeKv(T, 32, 8, 128, 128, 1.0f, false, t1);  // Llama-3.1-8B
      CheckRopeKv(T, 32, 8, 128, 96);                    // partial rotary
      CheckRopeKv(T, 14, 2, 64, 64, 0.75f, true);        // scaled, interleaved pairs
      CheckRopeKv(T, 14, 2, 64, 48, 1.0f, true);         // interleaved, partial
    }
    std::printf("checks failures=%d\n", g_failures);
    return g_failures == 0 ? 0 : 1;
  }
  if (argc > 1 && std::strncmp(argv[1], "--dec16", 7) == 0)
    return Dec16(lab, std::strcmp(argv[1], "--dec16-ncu") == 0);
  for (int terms : {3, 1}) {
    CheckShape(lab, 4096, 4096, terms);
    CheckShape(lab, 4096, 14336, terms);  // 8B down: whole chunks + XP at M = 1 (cu-dec16)
    CheckShape(lab, 2048, 2048, terms);   // 1B o: whole chunks + XP from K = 2048 (cu-dec16)
    CheckShape(lab, 1000, 1064, terms);   // ragged N, K % 32 != 0, last chunk partial
    CheckShape(lab, 896, 896, terms);
    CheckShape(lab, 64, 4864, terms);   // fewer row groups than SMs
    CheckShape(lab, 896, 4864, terms);  // 0.5B down: split-K, register preload (cu-small19)
    CheckShape(lab, 24, 200, terms);    // one chunk
    // cu22-head: head-sized launches (N >= 32768: TESSERA_CUDA_GEMV_HEAD's persistent grid).
    CheckShape(lab, 33000, 896, terms);   // 2,063 row groups (odd: rg2's last task half empty)
    CheckShape(lab, 32768, 2048, terms);  // the 1B head's K
    CheckGroup(lab, 896, terms);
    CheckGroup(lab, 200, terms);
    CheckGroup(lab, 2048, terms);  // 8 chunks: the split-K runs split
    // cu21-gemv: the split-K combine's one-batch loads (19 chunks: the 0.5B down; 36: two batches)
    CheckGroup(lab, 4864, terms);
    CheckGroup(lab, 9216, terms);
    for (int kind : {kGemvProRms, kGemvProSwiglu}) {
      for (int64_t K : {896, 200, 1064, 2048, 4864}) {
        for (int members : {1, 2, 3}) CheckPrologue(lab, kind, K, members, terms);
      }
    }
    // The engine's RMS_NORM launches at M = 1 (GemvRmsStageRegs, cu-dec18): 8B q/k/v, gate/up,
    // 1B q/k/v, gate/up; K = 4096 is the register path's limit.
    const int64_t qkv8[3] = {4096, 1024, 1024}, gu8[3] = {14336, 14336, 0};
    const int64_t qkv1[3] = {2048, 512, 512}, gu1[3] = {8192, 8192, 0};
    CheckPrologue(lab, kGemvProRms, 4096, 3, terms, qkv8);
    CheckPrologue(lab, kGemvProRms, 4096, 2, terms, gu8);
    CheckPrologue(lab, kGemvProRms, 2048, 3, terms, qkv1);
    CheckPrologue(lab, kGemvProRms, 2048, 2, terms, gu1);
    // cu-dec18b: GemvRmsStageRegs2 (4-warp blocks): the 0.5B q/k/v (72 row groups, whole
    // chunks) and a head-like launch (1250 row groups, half chunks, persistent); (the loop above
    // takes it for K = 896 and, in 5-warp blocks, K = 1064); K = 4096 in 16-warp blocks (77 row
    // groups: the two-step prologue).
    const int64_t qkv05[3] = {896, 128, 128}, head05[3] = {20000, 0, 0};
    CheckPrologue(lab, kGemvProRms, 896, 3, terms, qkv05);
    CheckPrologue(lab, kGemvProRms, 896, 1, terms, head05);
    for (int members : {1, 3}) CheckPrologue(lab, kGemvProRms, 4096, members, terms);
    for (bool rms : {true, false}) {
      CheckSwigluEpi(lab, 896, 4864, rms, false, terms);  // 0.5B gate/up
      CheckSwigluEpi(lab, 200, 200, rms, false, terms);   // one chunk, ragged N
      CheckSwigluEpi(lab, 1064, 1000, rms, true, terms);  // partial chunk, in place
      CheckSwigluEpi(lab, 2048, 512, rms, false, terms);  // the split-K runs would split
      // cu29-ring: K = 4096 takes the TMA ring at M = 1 (TESSERA_CUDA_GEMV_RING mask 4 the paired
      // launch, 1 the reference's plain group), in place (below) or not.
      CheckSwigluEpi(lab, 4096, 1024, rms, false, terms);
      CheckSwigluEpi(lab, 4096, 1024, rms, true, terms);  // XP (terms 3), 16 chunks
    }
  }
  // cu24-chain: the norm + q/k/v launch with the ROPE + KV_WRITE epilogue (0.5B, 1B shapes).
  CheckRopeEpi(lab, 896, 14, 2, 64, false);
  CheckRopeEpi(lab, 2048, 32, 8, 64, false);
  // GEMV_LAB_GEMV_ONLY: the GEMV checks above only (no ROPE / attention checks).
  for (int64_t T : {1, 3, 8}) {
    if (std::getenv("GEMV_LAB_GEMV_ONLY") != nullptr) break;
    CheckRopeKv(T, 14, 2, 64, 64);   // Qwen2.5-0.5B
    CheckRopeKv(T, 32, 8, 128, 96);  // 8B heads, partial rotary
  }
  std::printf("checks failures=%d\n", g_failures);
  lab.copy_gbs = CopyBandwidth();
  const Shape shapes[] = {{"8B", 4096, 4096},    {"8B", 14336, 4096},   {"8B", 4096, 14336},
                          {"8B", 128256, 4096},  {"8B-kv", 1024, 4096}, {"1B", 2048, 2048},
                          {"1B", 8192, 2048},    {"1B", 2048, 8192},    {"1B-kv", 512, 2048},
                          {"0.5B", 896, 896},    {"0.5B", 4864, 896},   {"0.5B", 896, 4864},
                          {"0.5B-kv", 128, 896}, {"0.5B", 151936, 896}};
  TimeSwigluEpi(lab, "0.5B", 896, 4864);
  TimeSwigluEpi(lab, "1B", 2048, 8192);
  TimeSwigluEpi(lab, "8B", 4096, 14336);
  if (std::getenv("GEMV_LAB_SWIGLU_ONLY") != nullptr) return g_failures == 0 ? 0 : 1;
  TimePrologue(lab, "0.5B-norm-qkv", kGemvProRms, 896, {896, 128, 128});
  TimePrologue(lab, "0.5B-norm-gate-up", kGemvProRms, 896, {4864, 4864});
  TimePrologue(lab, "0.5B-swiglu-down", kGemvProSwiglu, 4864, {896});
  TimePrologue(lab, "0.5B-norm-head", kGemvProRms, 896, {151936});
  TimePrologue(lab, "1B-norm-qkv", kGemvProRms, 2048, {2048, 512, 512});
  TimePrologue(lab, "1B-norm-gate-up", kGemvProRms, 2048, {8192, 8192});
  TimePrologue(lab, "1B-swiglu-down", kGemvProSwiglu, 8192, {2048});
  TimePrologue(lab, "8B-norm-qkv", kGemvProRms, 4096, {4096, 1024, 1024});
  TimePrologue(lab, "8B-norm-gate-up", kGemvProRms, 4096, {14336, 14336});
  TimePrologue(lab, "8B-swiglu-down", kGemvProSwiglu, 14336, {4096});
  if (std::getenv("GEMV_LAB_PROLOGUE_ONLY") != nullptr) return g_failures == 0 ? 0 : 1;
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
