// Kernel lab for the CUDA backend's matmul paths: correctness against a double-precision host
// reference, bit-exact batch invariance (GEMV at M = 1 vs GEMM at M = 2048 and at another tile
// position), and timings against the card's measured copy bandwidth.
//
//   bench_cuda_kernels [--quick | --attention | --attention-tc [T [checks]] |
//                       --attention-dec-ncu | --generic]
// Prints one line per measurement, "name key=value ...", machine-readable. Exit code 1 if a
// check fails.
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
using lab::DeviceCopy;
using lab::FromBf16;
using lab::Malloc;
using lab::TimeMs;
using lab::ToBf16;

int g_failures = 0;
bool g_skip_times = false;  // --attention-tc T checks: the checks only

struct Problem {
  int64_t M, N, K;
  std::vector<float> x;     // [M, K]
  std::vector<uint16_t> w;  // [N, K] bf16
  std::vector<float> bias;  // [N]
};

Problem MakeProblem(int64_t M, int64_t N, int64_t K, uint32_t seed) {
  Problem p{M, N, K, {}, {}, {}};
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  p.x.resize(M * K);
  for (float& v : p.x) v = u(rng);
  p.w.resize(N * K);
  for (uint16_t& v : p.w) v = ToBf16(u(rng));
  p.bias.resize(N);
  for (float& v : p.bias) v = u(rng);
  return p;
}

MatmulParams Params(const Problem& pr, const float* x, const uint16_t* w, const float* bias,
                    float* out, int64_t M) {
  MatmulParams p;
  p.x = x;
  p.x_row = pr.K;
  p.M = M;
  p.K = pr.K;
  p.N = pr.N;
  p.w = reinterpret_cast<const uint8_t*>(w);
  p.w_row_bytes = pr.K * 2;
  p.w_dtype = TSR_DTYPE_BF16;
  p.bias = bias;
  p.out = out;
  p.out_row = pr.N;
  p.out_col = 1;
  return p;
}

// out[m, n] against a double reference for a sample of elements; returns the worst error over
// the allowed (rtol * sum|x*w| + atol), the conformance suite's rule.
double CheckSample(const Problem& pr, const std::vector<float>& out, int64_t rows, int64_t row0,
                   double rtol) {
  double worst = 0;
  std::mt19937 rng(7);
  for (int s = 0; s < 256; ++s) {
    const int64_t m = rng() % rows, n = rng() % pr.N;
    double ref = pr.bias[n], mag = std::fabs(pr.bias[n]);
    for (int64_t k = 0; k < pr.K; ++k) {
      const double t = double(pr.x[(row0 + m) * pr.K + k]) * FromBf16(pr.w[n * pr.K + k]);
      ref += t;
      mag += std::fabs(t);
    }
    const double err = std::fabs(out[m * pr.N + n] - ref);
    worst = std::max(worst, err / (1e-6 + rtol * mag));
  }
  return worst;
}

void Expect(bool ok, const std::string& what) {
  std::printf("check %s %s\n", what.c_str(), ok ? "ok" : "FAILED");
  if (!ok) ++g_failures;
}

// Correctness and batch invariance of the GEMV and GEMM at one shape.
void Correctness(int64_t N, int64_t K, int terms) {
  const int64_t M = 2048;
  Problem pr = MakeProblem(M, N, K, 1234 + static_cast<uint32_t>(N + K));
  float* x = DeviceCopy(pr.x);
  uint16_t* w = DeviceCopy(pr.w);
  float* bias = DeviceCopy(pr.bias);
  float* out = nullptr;
  Check(Malloc(&out, M * N * 4), "malloc");
  MatmulParams p = Params(pr, x, w, bias, out, M);
  void* planes = nullptr;
  Check(cudaMalloc(&planes, SplitPlaneBytes(p, terms)), "malloc");
  Check(cudaMemset(out, 0xff, M * N * 4), "poison");
  Check(LaunchGemmBf16(p, terms, static_cast<uint16_t*>(planes), nullptr), "gemm");
  std::vector<float> big(M * N);
  Check(cudaMemcpy(big.data(), out, big.size() * 4, cudaMemcpyDeviceToHost), "download");
  const double rtol = terms == 3 ? 2e-6 : 1e-2;
  const std::string tag =
      "N" + std::to_string(N) + "_K" + std::to_string(K) + "_terms" + std::to_string(terms);
  const double ratio = CheckSample(pr, big, M, 0, rtol);
  std::printf("accuracy gemm %s worst_err_over_allowed=%.3f (rtol %.0e)\n", tag.c_str(), ratio,
              rtol);
  Expect(ratio <= 1.0, "gemm_accuracy_" + tag);

  // GEMV at M = 1, 3, 8 for rows 5..: must equal the GEMM's rows bit for bit.
  for (int64_t rows : {1, 3, 8}) {
    MatmulParams q = Params(pr, x + 5 * K, w, bias, out, rows);
    Check(cudaMemset(out, 0xff, rows * N * 4), "poison");
    Check(LaunchGemvBf16(q, terms, nullptr), "gemv");
    std::vector<float> small(rows * N);
    Check(cudaMemcpy(small.data(), out, small.size() * 4, cudaMemcpyDeviceToHost), "download");
    const bool same = std::memcmp(small.data(), big.data() + 5 * N, small.size() * 4) == 0;
    Expect(same, "batch_invariance_gemv_M" + std::to_string(rows) + "_vs_gemm_M2048_" + tag);
  }
  // GEMM over rows [3, 103): row 5 sits at another tile position.
  MatmulParams q = Params(pr, x + 3 * K, w, bias, out, 100);
  Check(LaunchGemmBf16(q, terms, static_cast<uint16_t*>(planes), nullptr), "gemm");
  std::vector<float> mid(100 * N);
  Check(cudaMemcpy(mid.data(), out, mid.size() * 4, cudaMemcpyDeviceToHost), "download");
  Expect(std::memcmp(mid.data(), big.data() + 3 * N, mid.size() * 4) == 0,
         "batch_invariance_gemm_M100_offset3_vs_M2048_" + tag);
  cudaFree(planes);
  cudaFree(out);
  cudaFree(bias);
  cudaFree(w);
  cudaFree(x);
}

// Decode GEMV timing: `copies` weight copies rotated so the 50 MB L2 cannot serve them.
void TimeGemv(int64_t N, int64_t K, int64_t M, int terms, double copy_gbs) {
  Problem pr = MakeProblem(M, N, K, 99);
  const int copies = std::max<int>(2, static_cast<int>((256ll << 20) / (N * K * 2)) + 1);
  std::vector<uint16_t*> ws;
  for (int c = 0; c < copies; ++c) ws.push_back(DeviceCopy(pr.w));
  float* x = DeviceCopy(pr.x);
  float* out = nullptr;
  Check(Malloc(&out, M * N * 4), "malloc");
  const double ms = TimeMs(7, 50, [&](int i) {
    MatmulParams p = Params(pr, x, ws[i % copies], nullptr, out, M);
    Check(LaunchGemvBf16(p, terms, nullptr), "gemv");
  });
  const double gbs = N * K * 2.0 / (ms * 1e-3) / 1e9;
  std::printf("gemv_bf16 N=%lld K=%lld M=%lld terms=%d us=%.2f weight_GB/s=%.0f of_copy=%.2f\n",
              static_cast<long long>(N), static_cast<long long>(K), static_cast<long long>(M),
              terms, ms * 1e3, gbs, gbs / copy_gbs);
  for (uint16_t* w : ws) cudaFree(w);
  cudaFree(x);
  cudaFree(out);
}

void TimeGemm(int64_t M, int64_t N, int64_t K, int terms) {
  Problem pr = MakeProblem(M, N, K, 77);
  uint16_t* w = DeviceCopy(pr.w);
  float* x = DeviceCopy(pr.x);
  float* out = nullptr;
  Check(Malloc(&out, M * N * 4), "malloc");
  MatmulParams p = Params(pr, x, w, nullptr, out, M);
  void* planes = nullptr;
  Check(cudaMalloc(&planes, SplitPlaneBytes(p, terms)), "malloc");
  const double ms = TimeMs(5, 10, [&](int) {
    Check(LaunchGemmBf16(p, terms, static_cast<uint16_t*>(planes), nullptr), "gemm");
  });
  const double tflops = 2.0 * M * N * K / (ms * 1e-3) / 1e12;
  std::printf("gemm_bf16 M=%lld N=%lld K=%lld terms=%d ms=%.3f TFLOP/s=%.1f (tensor work %.1f)\n",
              static_cast<long long>(M), static_cast<long long>(N), static_cast<long long>(K),
              terms, ms, tflops, tflops * terms);
  cudaFree(planes);
  cudaFree(out);
  cudaFree(x);
  cudaFree(w);
}

// Weight rows of dtype dt, random (Q8 / Q4 blocks with binary16 scales of 2^-7 .. 2^-5, so
// every decoded value is finite), and their bytes per row.
std::vector<uint8_t> GenericWeights(int64_t N, int64_t K, tsr_dtype dt, uint32_t seed,
                                    int64_t* row_bytes) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const bool quant = dt == TSR_DTYPE_Q8_B32 || dt == TSR_DTYPE_Q4_B32;
  const int64_t block = dt == TSR_DTYPE_Q8_B32 ? 34 : 18;
  *row_bytes = quant ? K / 32 * block : K * (dt == TSR_DTYPE_F32 ? 4 : 2);
  std::vector<uint8_t> w(static_cast<size_t>(N * *row_bytes));
  if (quant) {
    for (uint8_t& b : w) b = static_cast<uint8_t>(rng());
    for (int64_t r = 0; r < N * (K / 32); ++r) {
      const uint16_t scale = static_cast<uint16_t>(0x2000 + (rng() & 0x7ff));  // [2^-7, 2^-5)
      w[r * block] = static_cast<uint8_t>(scale & 0xff);
      w[r * block + 1] = static_cast<uint8_t>(scale >> 8);
    }
  } else {
    for (int64_t i = 0; i < N * K; ++i) {
      const float v = u(rng);
      if (dt == TSR_DTYPE_F32) {
        std::memcpy(w.data() + 4 * i, &v, 4);
      } else {
        // binary16: random sign and mantissa, exponent 2^-5 .. 2^-1
        const uint32_t r = rng();
        const uint16_t f16 =
            static_cast<uint16_t>((r & 0x8000) | ((10 + r % 5) << 10) | (r >> 16 & 0x3ff));
        uint16_t h = dt == TSR_DTYPE_BF16 ? ToBf16(v) : f16;
        std::memcpy(w.data() + 2 * i, &h, 2);
      }
    }
  }
  return w;
}

const char* DtypeName(tsr_dtype dt) {
  switch (dt) {
    case TSR_DTYPE_Q8_B32: return "q8";
    case TSR_DTYPE_Q4_B32: return "q4";
    case TSR_DTYPE_F16: return "f16";
    case TSR_DTYPE_BF16: return "bf16";
    default: return "f32";
  }
}

// A dense MATMUL's parameters: x [M, K], weights of dtype dt at row_bytes a row, out [M, N].
MatmulParams GenericParams(const float* x, const uint8_t* w, float* out, int64_t M, int64_t N,
                           int64_t K, int64_t row_bytes, tsr_dtype dt) {
  MatmulParams p;
  p.x = x;
  p.x_row = K;
  p.M = M;
  p.K = K;
  p.N = N;
  p.w = w;
  p.w_row_bytes = row_bytes;
  p.w_dtype = dt;
  p.out = out;
  p.out_row = N;
  return p;
}

constexpr int kGenericTileVariants = 3;  // LaunchMatmulGenericTile's 0..2

// LaunchMatmulGenericStagedForm's forms of a weight dtype (none: not staged).
std::vector<int> StagedForms(tsr_dtype dt) {
  if (dt == TSR_DTYPE_Q8_B32) return {0, 1, 2, 3, 4, 6};
  if (dt == TSR_DTYPE_Q4_B32) return {0, 4};
  return {};
}

// LaunchMatmulGeneric (weight loads issued a group of steps ahead; Q8 / Q4 rows staged through
// shared memory where 4-byte aligned) against LaunchMatmulGenericReference (the loop it
// replaced): every output bit-equal, for each weight dtype, ragged N, K with and without a rest
// after the whole groups, odd K / 32 (quantized rows not 4-byte aligned: the unstaged kernel),
// K % 32 != 0 for the plain dtypes, M across the 8-row x tiles, with a bias and strided output.
void CheckGenericSteps() {
  const tsr_dtype dtypes[] = {TSR_DTYPE_Q8_B32, TSR_DTYPE_Q4_B32, TSR_DTYPE_F16, TSR_DTYPE_BF16,
                              TSR_DTYPE_F32};
  int cases = 0, bad = 0;
  for (tsr_dtype dt : dtypes) {
    const bool quant = dt == TSR_DTYPE_Q8_B32 || dt == TSR_DTYPE_Q4_B32;
    const int64_t shapes[][2] = {{37, 896}, {64, 4864}, {19, 224},  {8, 32},
                                 {24, 512}, {9, 1024},  {33, 1000}, {5, 77}};
    for (const auto& nk : shapes) {
      const int64_t N = nk[0], K = nk[1];
      if (quant && K % 32 != 0) continue;
      int64_t row_bytes = 0;
      const std::vector<uint8_t> w = GenericWeights(N, K, dt, 11 + cases, &row_bytes);
      for (int64_t M : {1, 3, 8, 13, 40, 130, 300}) {
        std::mt19937 rng(static_cast<uint32_t>(97 * M + N));
        std::uniform_real_distribution<float> u(-2.0f, 2.0f);
        std::vector<float> xs(M * (K + 3)), bias(N);
        for (float& v : xs) v = u(rng);
        for (float& v : bias) v = u(rng);
        uint8_t* dw = DeviceCopy(w);
        float* dx = DeviceCopy(xs);
        float* db = DeviceCopy(bias);
        float *o1 = nullptr, *o2 = nullptr;
        const int64_t out_elems = M * 2 * N;
        Check(Malloc(&o1, out_elems * 4), "malloc");
        Check(Malloc(&o2, out_elems * 4), "malloc");
        Check(cudaMemset(o1, 0, out_elems * 4), "memset");
        Check(cudaMemset(o2, 0, out_elems * 4), "memset");
        MatmulParams p = GenericParams(dx, dw, o2, M, N, K, row_bytes, dt);
        p.x_row = K + 3;
        p.bias = db;
        p.out_row = 2 * N;
        p.out_col = 2;
        Check(LaunchMatmulGenericReference(p, nullptr), "generic reference");
        std::vector<float> h1(out_elems), h2(out_elems);
        Check(cudaMemcpy(h2.data(), o2, out_elems * 4, cudaMemcpyDeviceToHost), "copy");
        // The default launch, then (M > 8) every tile variant, or (Q8 / Q4 staged rows, M <= 8)
        // every staged form, as variants 100 + form.
        std::vector<int> variants = {-1};
        if (M > 8) {
          for (int v = 0; v < kGenericTileVariants; ++v) variants.push_back(v);
        } else if (quant && row_bytes % 4 == 0) {
          for (int f : StagedForms(dt)) variants.push_back(100 + f);
        }
        for (int v : variants) {
          p.out = o1;
          Check(cudaMemset(o1, 0, out_elems * 4), "memset");
          Check(v < 0     ? LaunchMatmulGeneric(p, nullptr)
                : v < 100 ? LaunchMatmulGenericTile(p, nullptr, v)
                          : LaunchMatmulGenericStagedForm(p, nullptr, v - 100),
                "generic");
          Check(cudaMemcpy(h1.data(), o1, out_elems * 4, cudaMemcpyDeviceToHost), "copy");
          ++cases;
          if (std::memcmp(h1.data(), h2.data(), out_elems * 4) != 0) {
            ++bad;
            std::printf("generic_steps FAIL dtype=%s M=%lld N=%lld K=%lld variant=%d\n",
                        DtypeName(dt), static_cast<long long>(M), static_cast<long long>(N),
                        static_cast<long long>(K), v);
          }
        }
        cudaFree(dw);
        cudaFree(dx);
        cudaFree(db);
        cudaFree(o1);
        cudaFree(o2);
      }
    }
  }
  g_failures += bad;
  std::printf("generic_steps cases=%d bit_equal=%d\n", cases, cases - bad);
}

// One decode MATMUL (M rows) over weights of dtype dt: LaunchMatmulGeneric and the reference
// kernel, weight bytes per second over copies that do not fit L2 together.
void TimeGenericPair(int64_t N, int64_t K, int64_t M, tsr_dtype dt, double copy_gbs) {
  int64_t row_bytes = 0;
  const std::vector<uint8_t> w = GenericWeights(N, K, dt, 5, &row_bytes);
  const int copies = std::max<int>(2, static_cast<int>(256e6 / w.size()) + 1);
  std::vector<uint8_t*> ws;
  for (int c = 0; c < copies; ++c) ws.push_back(DeviceCopy(w));
  std::vector<float> xs(M * K, 0.5f);
  float* x = DeviceCopy(xs);
  float* out = nullptr;
  Check(Malloc(&out, M * N * 4), "malloc");
  double us[2];
  for (int ref = 0; ref < 2; ++ref) {
    us[ref] =
        1e3 * TimeMs(5, 40, [&](int i) {
          const MatmulParams p = GenericParams(x, ws[i % copies], out, M, N, K, row_bytes, dt);
          Check(ref ? LaunchMatmulGenericReference(p, nullptr) : LaunchMatmulGeneric(p, nullptr),
                "generic");
        });
  }
  const double gbs = N * row_bytes / (us[0] * 1e-6) / 1e9;
  std::printf(
      "gemv_generic dtype=%s M=%lld N=%lld K=%lld us=%.2f ref_us=%.2f speedup=%.2f "
      "weight_GB/s=%.0f of_copy=%.2f TFLOP/s=%.1f\n",
      DtypeName(dt), static_cast<long long>(M), static_cast<long long>(N),
      static_cast<long long>(K), us[0], us[1], us[1] / us[0], gbs, gbs / copy_gbs,
      2.0 * M * N * K / (us[0] * 1e-6) / 1e12);
  for (int f : M <= 8 ? StagedForms(dt) : std::vector<int>{}) {
    const double vus = 1e3 * TimeMs(5, 40, [&](int i) {
                         const MatmulParams p =
                             GenericParams(x, ws[i % copies], out, M, N, K, row_bytes, dt);
                         Check(LaunchMatmulGenericStagedForm(p, nullptr, f), "generic form");
                       });
    std::printf("  staged_form=%d us=%.2f of_copy=%.2f\n", f, vus,
                N * row_bytes / (vus * 1e-6) / 1e9 / copy_gbs);
  }
  for (int v = 0; M > 8 && v < kGenericTileVariants; ++v) {
    const double vus = 1e3 * TimeMs(3, 20, [&](int i) {
                         const MatmulParams p =
                             GenericParams(x, ws[i % copies], out, M, N, K, row_bytes, dt);
                         Check(LaunchMatmulGenericTile(p, nullptr, v), "generic tile");
                       });
    std::printf("  tile_variant=%d us=%.2f TFLOP/s=%.1f\n", v, vus,
                2.0 * M * N * K / (vus * 1e-6) / 1e12);
  }
  for (uint8_t* p : ws) cudaFree(p);
  cudaFree(x);
  cudaFree(out);
}

// K/V rows (f32 [T, row]) over a paged cache of kBlock-key blocks whose block table is the
// permutation (7 i + 3) mod nb; device copies, freed on scope exit. Apply() points a call's K/V
// at it (kv_lens / cu_q stay the caller's).
struct PagedKvCache {
  static constexpr int64_t kBlock = 16;
  int64_t row, nb;
  std::vector<int32_t> table;
  float* dk = nullptr;
  float* dv = nullptr;
  int32_t* dt = nullptr;
  PagedKvCache(const std::vector<float>& k, const std::vector<float>& v, int64_t T, int64_t row_)
      : row(row_), nb((T + kBlock - 1) / kBlock), table(nb) {
    std::vector<float> pk(nb * kBlock * row, 0.0f), pv(pk.size(), 0.0f);
    for (int64_t i = 0; i < nb; ++i) table[i] = static_cast<int32_t>((i * 7 + 3) % nb);
    for (int64_t j = 0; j < T; ++j) {
      const int64_t dst = (table[j / kBlock] * kBlock + j % kBlock) * row;
      std::copy_n(k.data() + j * row, row, pk.data() + dst);
      std::copy_n(v.data() + j * row, row, pv.data() + dst);
    }
    dk = DeviceCopy(pk);
    dv = DeviceCopy(pv);
    dt = DeviceCopy(table);
  }
  ~PagedKvCache() {
    cudaFree(dt);
    cudaFree(dv);
    cudaFree(dk);
  }
  PagedKvCache(const PagedKvCache&) = delete;
  PagedKvCache& operator=(const PagedKvCache&) = delete;
  AttnParams Apply(AttnParams p) const {
    p.paged = true;
    p.k = reinterpret_cast<const uint8_t*>(dk), p.v = reinterpret_cast<const uint8_t*>(dv);
    p.k_block = p.v_block = kBlock * row * 4;
    p.n_blocks = nb, p.block_size = kBlock, p.table = dt, p.table_row = nb, p.max_blocks = nb;
    p.cu_k = nullptr;
    return p;
  }
};

// 64 one-query sequences over a paged cache of nb blocks (query row s): sequence s has 64 +
// (37 s mod 137) keys and the rotation of `table` by 5 s blocks; device copies, freed on scope
// exit. Apply() makes a call of them.
struct BatchDecodeTables {
  static constexpr int64_t kS = 64;
  std::vector<int32_t> bt, lens, cq;
  int32_t* dbt = nullptr;
  int32_t* dl = nullptr;
  int32_t* dcq = nullptr;
  BatchDecodeTables(const std::vector<int32_t>& table, int64_t nb)
      : bt(kS * nb), lens(kS), cq(kS + 1) {
    for (int64_t s = 0; s < kS; ++s) {
      lens[s] = static_cast<int32_t>(64 + (s * 37) % 137);
      cq[s + 1] = static_cast<int32_t>(s + 1);
      for (int64_t i = 0; i < nb; ++i) bt[s * nb + i] = table[(s * 5 + i) % nb];
    }
    dbt = DeviceCopy(bt);
    dl = DeviceCopy(lens);
    dcq = DeviceCopy(cq);
  }
  ~BatchDecodeTables() {
    cudaFree(dcq);
    cudaFree(dl);
    cudaFree(dbt);
  }
  BatchDecodeTables(const BatchDecodeTables&) = delete;
  BatchDecodeTables& operator=(const BatchDecodeTables&) = delete;
  AttnParams Apply(AttnParams p) const {
    p.T = kS, p.S = kS, p.table = dbt, p.kv_lens = dl, p.cu_q = dcq;
    return p;
  }
};

// Causal attention of query t, q head h over keys 0..t in float64 (q / k / v: [T, H, D] rows),
// the reference the accuracy checks measure against: D outputs.
std::vector<double> RefAttentionRow(const std::vector<float>& q, const std::vector<float>& k,
                                    const std::vector<float>& v, int64_t t, int64_t h, int64_t Hq,
                                    int64_t Hkv, int64_t D, double scale) {
  const int64_t hk = h / (Hq / Hkv);
  std::vector<double> sc(t + 1), o(D, 0.0);
  double mx = -1e300, l = 0;
  for (int64_t j = 0; j <= t; ++j) {
    double d = 0;
    for (int64_t e = 0; e < D; ++e)
      d += double(q[(t * Hq + h) * D + e]) * k[(j * Hkv + hk) * D + e];
    sc[j] = d * scale;
    mx = std::max(mx, sc[j]);
  }
  for (int64_t j = 0; j <= t; ++j) l += std::exp(sc[j] - mx);
  for (int64_t e = 0; e < D; ++e) {
    for (int64_t j = 0; j <= t; ++j) o[e] += std::exp(sc[j] - mx) * v[(j * Hkv + hk) * D + e];
    o[e] /= l;
  }
  return o;
}

// The prefill call `p` (one causal sequence, dense f32 K/V dk / dv) again (a) over a paged
// cache (blocks of 16 keys, the block table a permutation) and (b) as two sequences in one call
// (queries and keys [0, T/3) and [T/3, T): the second sequence's rows are checked against a
// call of that sequence alone), every prefill variant bit for bit against `want` (the legacy
// dense output) or the legacy split call.
template <class Name>
void AttentionLayouts(const AttnParams& p, const float* dk, const float* dv,
                      const std::vector<float>& want, float* out, Name name) {
  const int64_t T = p.T, Hq = p.Hq, Hkv = p.Hkv, D = p.D;
  std::vector<float> hk(T * Hkv * D), hv(T * Hkv * D);
  Check(cudaMemcpy(hk.data(), dk, hk.size() * 4, cudaMemcpyDeviceToHost), "download");
  Check(cudaMemcpy(hv.data(), dv, hv.size() * 4, cudaMemcpyDeviceToHost), "download");
  const PagedKvCache pc(hk, hv, T, Hkv * D);
  const std::vector<int32_t> meta = {static_cast<int32_t>(T), 0, static_cast<int32_t>(T)};
  int32_t* dm = DeviceCopy(meta);  // kv_lens [1], cu_q [2]
  AttnParams g = pc.Apply(p);
  g.kv_lens = dm, g.cu_q = dm + 1;
  std::vector<float> got(T * Hq * D), leg(T * Hq * D);
  for (int variant : {5, 6, 7, 9}) {
    Check(cudaMemset(out, 0xff, got.size() * 4), "poison");
    Check(LaunchAttentionWith(g, variant, nullptr), "attention paged");
    Check(cudaMemcpy(got.data(), out, got.size() * 4, cudaMemcpyDeviceToHost), "download");
    Expect(std::memcmp(got.data(), want.data(), got.size() * 4) == 0,
           (std::string("attention_prefill_paged") + name(variant) + "_vs_legacy_bits").c_str());
  }
  // Batch decode over the paged cache: 64 one-query sequences (query row s) with 64 .. 200 keys
  // each (their block tables are rotations of the one above), timed, every variant bit for bit
  // against the legacy kernel.
  {
    constexpr int64_t S = BatchDecodeTables::kS;
    const BatchDecodeTables bd(pc.table, pc.nb);
    const AttnParams d = bd.Apply(g);
    std::vector<float> bl(S * Hq * D), bg(S * Hq * D);
    for (int variant : {1, 5, 8, 9}) {
      const double ms = TimeMs(
          5, 20, [&](int) { Check(LaunchAttentionWith(d, variant, nullptr), "attention batch"); });
      std::printf("attention_batch_decode%s seqs=64 keys=64..200 Hq=%lld Hkv=%lld D=%lld us=%.2f\n",
                  variant == 8 ? "_batch1" : name(variant), static_cast<long long>(Hq),
                  static_cast<long long>(Hkv), static_cast<long long>(D), ms * 1e3);
      Check(cudaMemset(out, 0xff, bl.size() * 4), "poison");
      Check(LaunchAttentionWith(d, variant, nullptr), "attention batch");
      Check(cudaMemcpy((variant == 1 ? bl : bg).data(), out, bl.size() * 4, cudaMemcpyDeviceToHost),
            "download");
      if (variant != 1)
        Expect(std::memcmp(bl.data(), bg.data(), bl.size() * 4) == 0,
               std::string("attention_batch_decode") + (variant == 8 ? "_batch1" : name(variant)) +
                   "_vs_legacy_bits");
    }
  }
  // Two sequences: [0, a) and [a, T), each over its own keys (cu_k == cu_q).
  const int32_t a = static_cast<int32_t>(T / 3);
  const std::vector<int32_t> cu = {0, a, static_cast<int32_t>(T)};
  int32_t* dcu = DeviceCopy(cu);
  AttnParams two = p;
  two.S = 2, two.cu_q = dcu, two.cu_k = dcu;
  for (int variant : {1, 5, 6, 7, 9}) {
    Check(cudaMemset(out, 0xff, got.size() * 4), "poison");
    Check(LaunchAttentionWith(two, variant, nullptr), "attention two");
    Check(
        cudaMemcpy((variant == 1 ? leg : got).data(), out, got.size() * 4, cudaMemcpyDeviceToHost),
        "download");
    if (variant != 1)
      Expect(
          std::memcmp(got.data(), leg.data(), got.size() * 4) == 0,
          (std::string("attention_prefill_two_seqs") + name(variant) + "_vs_legacy_bits").c_str());
  }
  // The first sequence's rows equal the one-sequence call's (same keys, same positions).
  Expect(std::memcmp(leg.data(), want.data(), int64_t{a} * Hq * D * 4) == 0,
         "attention_prefill_two_seqs_first_vs_whole_bits");
  cudaFree(dcu);
  cudaFree(dm);
}

// Causal prefill attention of one sequence (f32 q/k/v, dense layout) timed, plus a check that
// decode calls (one query, its keys) reproduce the prefill rows bit for bit, and a float64
// reference on a few rows.
void Attention(int64_t T, int64_t Hq, int64_t Hkv, int64_t D) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> q(T * Hq * D), k(T * Hkv * D), v(T * Hkv * D);
  for (float& f : q) f = u(rng);
  for (float& f : k) f = u(rng);
  for (float& f : v) f = u(rng);
  float* dq = DeviceCopy(q);
  float* dk = DeviceCopy(k);
  float* dv = DeviceCopy(v);
  float* out = nullptr;
  Check(Malloc(&out, T * Hq * D * 4), "malloc");
  int32_t* cu = nullptr;
  Check(Malloc(&cu, 4 * sizeof(int32_t)), "malloc");
  AttnParams p;
  p.q = reinterpret_cast<const uint8_t*>(dq), p.q_tok = Hq * D * 4, p.q_head = D * 4;
  p.out = reinterpret_cast<uint8_t*>(out), p.o_tok = Hq * D * 4, p.o_head = D * 4;
  p.k = reinterpret_cast<const uint8_t*>(dk), p.v = reinterpret_cast<const uint8_t*>(dv);
  p.k_tok = p.v_tok = Hkv * D * 4, p.k_head = p.v_head = D * 4;
  p.kv_dtype = TSR_DTYPE_F32;
  p.n_kv_rows = T;
  p.T = T, p.Hq = Hq, p.Hkv = Hkv, p.D = D, p.Dv = D, p.S = 1;
  p.scale = 1.0f / std::sqrt(static_cast<float>(D));
  p.causal = true;
  const int32_t whole[2] = {0, static_cast<int32_t>(T)};  // one sequence: cu_q == cu_k
  Check(cudaMemcpy(cu, whole, sizeof(whole), cudaMemcpyHostToDevice), "upload");
  p.cu_q = cu, p.cu_k = cu;
  const double flops = 4.0 * Hq * D * T * (T + 1) / 2.0;
  std::vector<float> big(T * Hq * D), other(T * Hq * D);
  // Variant 1 (the previous kernel) first, then the tiled (5) and pipelined (6, 7) prefill and
  // the default (0): timings and bit equality with variant 1, plain causal, with a sliding
  // window + soft-cap, over a paged cache, and as two sequences in one call.
  const auto name = [](int variant) {
    return variant == 1   ? "_legacy"
           : variant == 5 ? "_tiled"
           : variant == 6 ? "_pipe1"
           : variant == 7 ? "_pipe2"
                          : "";
  };
  for (int variant : {1, 5, 6, 7, 9}) {
    Check(cudaMemset(out, 0xff, T * Hq * D * 4), "poison");
    const double ms =
        TimeMs(3, 5, [&](int) { Check(LaunchAttentionWith(p, variant, nullptr), "attention"); });
    std::printf("attention_prefill%s T=%lld Hq=%lld Hkv=%lld D=%lld ms=%.3f TFLOP/s=%.2f\n",
                name(variant), static_cast<long long>(T), static_cast<long long>(Hq),
                static_cast<long long>(Hkv), static_cast<long long>(D), ms,
                flops / (ms * 1e-3) / 1e12);
    Check(cudaMemcpy((variant == 1 ? other : big).data(), out, big.size() * 4,
                     cudaMemcpyDeviceToHost),
          "download");
    if (variant != 1)
      Expect(std::memcmp(big.data(), other.data(), big.size() * 4) == 0,
             (std::string("attention_prefill") + name(variant) + "_vs_legacy_bits").c_str());
  }
  {
    AttnParams w = p;
    w.window = 300, w.softcap = 20.0f;
    std::vector<float> a(big.size()), b(big.size());
    for (int variant : {1, 5, 6, 7, 9}) {
      Check(cudaMemset(out, 0xff, T * Hq * D * 4), "poison");
      Check(LaunchAttentionWith(w, variant, nullptr), "attention window");
      Check(cudaMemcpy((variant == 1 ? a : b).data(), out, a.size() * 4, cudaMemcpyDeviceToHost),
            "download");
      if (variant != 1)
        Expect(std::memcmp(a.data(), b.data(), a.size() * 4) == 0,
               (std::string("attention_prefill_window_softcap") + name(variant) + "_vs_legacy_bits")
                   .c_str());
    }
  }
  AttentionLayouts(p, dk, dv, other, out, name);
  double worst = 0;
  for (int64_t t : {int64_t{0}, T / 3, T - 1}) {
    for (int64_t h : {int64_t{0}, Hq - 1}) {
      const std::vector<double> ref = RefAttentionRow(q, k, v, t, h, Hq, Hkv, D, p.scale);
      for (int64_t e = 0; e < D; ++e) {
        const double o = ref[e];
        worst = std::max(worst,
                         std::fabs(o - big[(t * Hq + h) * D + e]) / (2e-5 + 2e-5 * std::fabs(o)));
      }
    }
  }
  std::printf("accuracy attention worst_err_over_allowed=%.3f\n", worst);
  Expect(worst <= 1.0, "attention_accuracy");
  // Decode: query t alone over keys [0, t] (q_len 1, k_len t + 1).
  bool same = true;
  for (int64_t t : {int64_t{0}, int64_t{63}, int64_t{64}, T / 2 + 7, T - 1}) {
    AttnParams d = p;
    d.q = p.q + t * p.q_tok;
    d.out = reinterpret_cast<uint8_t*>(out);
    d.T = 1;
    const int32_t c[4] = {0, 1, 0, static_cast<int32_t>(t + 1)};
    Check(cudaMemcpy(cu, c, sizeof(c), cudaMemcpyHostToDevice), "upload");
    d.cu_q = cu, d.cu_k = cu + 2;
    Check(cudaMemset(out, 0xff, Hq * D * 4), "poison");
    Check(LaunchAttentionWith(d, 9, nullptr), "attention decode");
    std::vector<float> row(Hq * D);
    Check(cudaMemcpy(row.data(), out, row.size() * 4, cudaMemcpyDeviceToHost), "download");
    same = same && std::memcmp(row.data(), big.data() + t * Hq * D, row.size() * 4) == 0;
  }
  Expect(same, "batch_invariance_attention_decode_vs_prefill");
  // A decode-sized call of 3 consecutive queries (multi-query decode tiles) ending at t.
  same = true;
  for (int64_t t : {int64_t{2}, int64_t{65}, T / 2 + 7, T - 1}) {
    AttnParams d = p;
    d.q = p.q + (t - 2) * p.q_tok;
    d.T = 3;
    const int32_t c[4] = {0, 3, 0, static_cast<int32_t>(t + 1)};
    Check(cudaMemcpy(cu, c, sizeof(c), cudaMemcpyHostToDevice), "upload");
    d.cu_q = cu, d.cu_k = cu + 2;
    Check(cudaMemset(out, 0xff, 3 * Hq * D * 4), "poison");
    Check(LaunchAttentionWith(d, 9, nullptr), "attention decode3");
    std::vector<float> rows(3 * Hq * D);
    Check(cudaMemcpy(rows.data(), out, rows.size() * 4, cudaMemcpyDeviceToHost), "download");
    same = same && std::memcmp(rows.data(), big.data() + (t - 2) * Hq * D, rows.size() * 4) == 0;
  }
  Expect(same, "batch_invariance_attention_decode3_vs_prefill");
  // A batch of S one-query sequences (lockstep decode: batch decode tiles, T > 16) must equal
  // each sequence alone and the legacy kernel. Sequence s: query row s, keys [a_s, a_s+1).
  {
    constexpr int64_t S = 64;
    std::vector<int32_t> c(2 * (S + 1));
    for (int64_t i = 0; i <= S; ++i) c[i] = static_cast<int32_t>(i);
    for (int64_t i = 0; i < S; ++i)
      c[S + 1 + i + 1] = c[S + 1 + i] + static_cast<int32_t>(1 + (i * 7) % 29);
    int32_t* cb = nullptr;
    Check(Malloc(&cb, c.size() * sizeof(int32_t)), "malloc");
    Check(cudaMemcpy(cb, c.data(), c.size() * 4, cudaMemcpyHostToDevice), "upload");
    AttnParams b = p;
    b.T = S, b.S = S, b.cu_q = cb, b.cu_k = cb + S + 1;
    std::vector<float> got(S * Hq * D), leg(S * Hq * D), one(Hq * D);
    for (int variant : {1, 9}) {
      Check(cudaMemset(out, 0xff, S * Hq * D * 4), "poison");
      Check(LaunchAttentionWith(b, variant, nullptr), "attention batch");
      Check(cudaMemcpy((variant == 1 ? leg : got).data(), out, got.size() * 4,
                       cudaMemcpyDeviceToHost),
            "download");
    }
    same = std::memcmp(got.data(), leg.data(), got.size() * 4) == 0;
    for (int64_t i = 0; i < S; i += 9) {
      AttnParams d = p;
      d.q = p.q + i * p.q_tok;
      d.T = 1, d.S = 1;
      const int32_t c1[4] = {0, 1, c[S + 1 + i], c[S + 1 + i + 1]};
      Check(cudaMemcpy(cu, c1, sizeof(c1), cudaMemcpyHostToDevice), "upload");
      d.cu_q = cu, d.cu_k = cu + 2;
      Check(cudaMemset(out, 0xff, Hq * D * 4), "poison");
      Check(LaunchAttentionWith(d, 9, nullptr), "attention decode");
      Check(cudaMemcpy(one.data(), out, one.size() * 4, cudaMemcpyDeviceToHost), "download");
      same = same && std::memcmp(one.data(), got.data() + i * Hq * D, one.size() * 4) == 0;
    }
    Expect(same, "batch_invariance_attention_batch64_vs_single_and_legacy");
    cudaFree(cb);
  }
  for (int64_t keys : {int64_t{128}, T}) {  // one decode query over `keys` keys
    AttnParams d = p;
    d.q = p.q + (keys - 1) * p.q_tok;
    d.T = 1;
    const int32_t c[4] = {0, 1, 0, static_cast<int32_t>(keys)};
    Check(cudaMemcpy(cu, c, sizeof(c), cudaMemcpyHostToDevice), "upload");
    d.cu_q = cu, d.cu_k = cu + 2;
    for (int variant : {1, 4, 9}) {  // 4: one block a decode tile (TESSERA_CUDA_ATTN=nosplit)
      const double dms = TimeMs(
          5, 20, [&](int) { Check(LaunchAttentionWith(d, variant, nullptr), "attention decode"); });
      std::printf("attention_decode%s keys=%lld Hq=%lld Hkv=%lld D=%lld us=%.2f\n",
                  variant == 1   ? "_legacy"
                  : variant == 4 ? "_nosplit"
                                 : "",
                  static_cast<long long>(keys), static_cast<long long>(Hq),
                  static_cast<long long>(Hkv), static_cast<long long>(D), dms * 1e3);
    }
  }
  cudaFree(cu);
  cudaFree(out);
  cudaFree(dv);
  cudaFree(dk);
  cudaFree(dq);
}

// The tensor-core order (variants 10 .. 15, TESSERA_CUDA_ATTN_TC): accuracy against float64;
// every tile kind bit for bit against the 128-row prefill tiles (variant 11): dense and over a
// paged cache with a permuted block table, decode calls of 1 and 3 queries ending at the chunk
// and cluster-round boundaries, a sliding window, a batch of one-query sequences, two sequences
// in one call; the default (variant 0) against the order the switch selects; times against
// the f32 order's default (variant 9).
void AttentionTc(int64_t T, int64_t Hq, int64_t Hkv, int64_t D) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int64_t G = Hq / Hkv, row = Hq * D;
  std::vector<float> q(T * Hq * D), k(T * Hkv * D), v(T * Hkv * D);
  for (float& f : q) f = u(rng);
  for (float& f : k) f = u(rng);
  for (float& f : v) f = u(rng);
  float* dq = DeviceCopy(q);
  float* dk = DeviceCopy(k);
  float* dv = DeviceCopy(v);
  float* out = nullptr;
  Check(Malloc(&out, T * row * 4), "malloc");
  int32_t* cu = nullptr;
  Check(Malloc(&cu, 4 * sizeof(int32_t)), "malloc");
  AttnParams p;
  p.q = reinterpret_cast<const uint8_t*>(dq), p.q_tok = row * 4, p.q_head = D * 4;
  p.out = reinterpret_cast<uint8_t*>(out), p.o_tok = row * 4, p.o_head = D * 4;
  p.k = reinterpret_cast<const uint8_t*>(dk), p.v = reinterpret_cast<const uint8_t*>(dv);
  p.k_tok = p.v_tok = Hkv * D * 4, p.k_head = p.v_head = D * 4;
  p.kv_dtype = TSR_DTYPE_F32;
  p.n_kv_rows = T;
  p.T = T, p.Hq = Hq, p.Hkv = Hkv, p.D = D, p.Dv = D, p.S = 1;
  p.scale = 1.0f / std::sqrt(static_cast<float>(D));
  p.causal = true;
  const int32_t whole[4] = {0, static_cast<int32_t>(T), 0, static_cast<int32_t>(T)};
  Check(cudaMemcpy(cu, whole, sizeof(whole), cudaMemcpyHostToDevice), "upload");
  p.cu_q = cu, p.cu_k = cu;
  char shape[96];
  std::snprintf(shape, sizeof(shape), "_Hq%lld_Hkv%lld_D%lld", static_cast<long long>(Hq),
                static_cast<long long>(Hkv), static_cast<long long>(D));
  const auto run = [&](const AttnParams& a, int variant, int64_t rows, std::vector<float>* dst) {
    Check(cudaMemset(out, 0xff, rows * row * 4), "poison");
    Check(LaunchAttentionWith(a, variant, nullptr), "attention tc");
    dst->resize(rows * row);
    Check(cudaMemcpy(dst->data(), out, rows * row * 4, cudaMemcpyDeviceToHost), "download");
  };
  const auto same = [&](const std::vector<float>& a, const float* b) {
    return std::memcmp(a.data(), b, a.size() * 4) == 0;
  };
  const char* sw = std::getenv("TESSERA_CUDA_ATTN_TC");
  const bool tc_on = sw == nullptr || *sw == '\0' || std::strcmp(sw, "0") != 0;
  std::vector<float> want, got, old;
  run(p, 11, T, &want);
  run(p, 12, T, &got);
  Expect(same(got, want.data()), std::string("tc_prefill_nw4_vs_nw8_bits") + shape);
  run(p, 10, T, &got);
  Expect(same(got, want.data()), std::string("tc_prefill_auto_vs_nw8_bits") + shape);
  // HEAD fee64b5's prefill tiles (19: 128 rows, 20: 64 rows; no warp-uniform paths).
  for (int variant : {19, 20}) {
    run(p, variant, T, &got);
    Expect(same(got, want.data()),
           "tc_prefill_v" + std::to_string(variant) + "_head_vs_nw8_bits" + shape);
  }
  run(p, 9, T, &old);
  run(p, 0, T, &got);
  Expect(same(got, tc_on ? want.data() : old.data()),
         std::string("tc_default_is_") + (tc_on ? "tc" : "f32") + shape);
  {  // accuracy against float64 (the conformance ATTENTION rule), and the change against f32
    double worst = 0, worst_old = 0, diff = 0;
    for (int64_t t : {int64_t{0}, int64_t{1}, int64_t{63}, int64_t{64}, T / 3, T / 2 + 7, T - 1}) {
      for (int64_t h : {int64_t{0}, G - 1, Hq - 1}) {
        const std::vector<double> ref = RefAttentionRow(q, k, v, t, h, Hq, Hkv, D, p.scale);
        for (int64_t e = 0; e < D; ++e) {
          const double o = ref[e];
          const double tol = 2e-5 + 2e-5 * std::fabs(o);
          worst = std::max(worst, std::fabs(o - want[(t * Hq + h) * D + e]) / tol);
          worst_old = std::max(worst_old, std::fabs(o - old[(t * Hq + h) * D + e]) / tol);
        }
      }
    }
    for (size_t i = 0; i < want.size(); ++i)
      diff = std::max(diff, std::isfinite(want[i]) ? std::fabs(double(want[i]) - old[i]) : 1e30);
    std::printf(
        "accuracy attention_tc%s worst_err_over_allowed=%.4f f32_order=%.4f "
        "all_rows_maxdiff_vs_f32=%.3e\n",
        shape, worst, worst_old, diff);
    Expect(worst <= 1.0 && diff < 1e-4, std::string("tc_attention_accuracy") + shape);
  }
  // The same keys over a paged cache: blocks of 16, the block table a permutation.
  const PagedKvCache pc(k, v, T, Hkv * D);
  const int64_t nb = pc.nb;
  int32_t* dm = nullptr;  // kv_lens [1], cu_q [2]
  Check(Malloc(&dm, 3 * sizeof(int32_t)), "malloc");
  AttnParams g = pc.Apply(p);
  g.kv_lens = dm, g.cu_q = dm + 1;
  const int32_t meta[3] = {static_cast<int32_t>(T), 0, static_cast<int32_t>(T)};
  Check(cudaMemcpy(dm, meta, sizeof(meta), cudaMemcpyHostToDevice), "upload");
  for (int variant : {10, 11, 12, 19, 20}) {
    run(g, variant, T, &got);
    Expect(same(got, want.data()),
           "tc_prefill_paged_v" + std::to_string(variant) + "_vs_dense_bits" + shape);
  }
  // Decode calls: nq queries ending at query t over keys [0, t], dense and paged; every tile
  // kind (13: cluster split, 14: one block, 15: batch tiles, 10: auto, 0: default) against the
  // prefill rows; 21: HEAD 0a00b9a's cluster split (without kOptDecode).
  std::vector<int> decode_variants = {13, 14, 15, 10, 21};
  if (tc_on) decode_variants.push_back(0);
  int checked = 0;
  for (int paged = 0; paged < 2; ++paged) {
    for (int64_t nq : {int64_t{1}, int64_t{3}}) {
      std::vector<int> bad(32, 0);
      for (int64_t t :
           {int64_t{0}, int64_t{15}, int64_t{63}, int64_t{64}, int64_t{143}, int64_t{255},
            int64_t{256}, int64_t{511}, int64_t{512}, int64_t{1031}, T - 1}) {
        if (t + 1 < nq || t >= T) continue;
        AttnParams d = paged ? g : p;
        d.q = p.q + (t - nq + 1) * p.q_tok;
        d.T = nq, d.S = 1;
        if (paged) {
          const int32_t m3[3] = {static_cast<int32_t>(t + 1), 0, static_cast<int32_t>(nq)};
          Check(cudaMemcpy(dm, m3, sizeof(m3), cudaMemcpyHostToDevice), "upload");
        } else {
          const int32_t c4[4] = {0, static_cast<int32_t>(nq), 0, static_cast<int32_t>(t + 1)};
          Check(cudaMemcpy(cu, c4, sizeof(c4), cudaMemcpyHostToDevice), "upload");
          d.cu_q = cu, d.cu_k = cu + 2;
        }
        for (int variant : decode_variants) {
          run(d, variant, nq, &got);
          bad[variant] += !same(got, want.data() + (t - nq + 1) * row);
          ++checked;
        }
      }
      for (int variant : decode_variants)
        Expect(bad[variant] == 0, std::string("tc_decode") + (paged ? "_paged" : "_dense") + "_q" +
                                      std::to_string(nq) + "_v" + std::to_string(variant) +
                                      "_vs_prefill_bits" + shape);
    }
  }
  std::printf("tc_decode_cases%s memcmp_checks=%d\n", shape, checked);
  {  // cu-attn18: every key count 1 .. T (paged, one query) and 2 .. T in 3-query calls (dense,
     // a stride of 7), the cluster split with kOptDecode (13) and without it (21) vs the prefill
     // rows, memcmp.
    int bad13 = 0, bad21 = 0, n = 0;
    for (int64_t t = 0; t < T; ++t) {
      AttnParams d = g;
      d.q = p.q + t * p.q_tok;
      d.T = 1, d.S = 1;
      const int32_t m3[3] = {static_cast<int32_t>(t + 1), 0, 1};
      Check(cudaMemcpy(dm, m3, sizeof(m3), cudaMemcpyHostToDevice), "upload");
      run(d, 13, 1, &got);
      bad13 += !same(got, want.data() + t * row);
      run(d, 21, 1, &got);
      bad21 += !same(got, want.data() + t * row);
      ++n;
    }
    for (int64_t t = 2; t < T; t += 7) {
      AttnParams d = p;
      d.q = p.q + (t - 2) * p.q_tok;
      d.T = 3, d.S = 1;
      const int32_t c4[4] = {0, 3, 0, static_cast<int32_t>(t + 1)};
      Check(cudaMemcpy(cu, c4, sizeof(c4), cudaMemcpyHostToDevice), "upload");
      d.cu_q = cu, d.cu_k = cu + 2;
      run(d, 13, 3, &got);
      bad13 += !same(got, want.data() + (t - 2) * row);
      run(d, 21, 3, &got);
      bad21 += !same(got, want.data() + (t - 2) * row);
      ++n;
    }
    Check(cudaMemcpy(cu, whole, sizeof(whole), cudaMemcpyHostToDevice), "upload");
    std::printf("tc_decode_sweep%s cases=%d bad_v13=%d bad_v21=%d\n", shape, n, bad13, bad21);
    Expect(bad13 == 0 && bad21 == 0, std::string("tc_decode_sweep_1_to_T_vs_prefill_bits") + shape);
  }
  Check(cudaMemcpy(cu, whole, sizeof(whole), cudaMemcpyHostToDevice), "upload");
  {  // sliding window 300: decode rows against the window prefill's
    AttnParams w = p;
    w.window = 300;
    std::vector<float> ww;
    run(w, 11, T, &ww);
    run(w, 12, T, &got);
    int bad = !same(got, ww.data());
    for (int variant : {19, 20}) {
      run(w, variant, T, &got);
      bad += !same(got, ww.data());
    }
    for (int64_t t : {int64_t{143}, int64_t{700}, T - 1}) {
      if (t >= T) continue;
      AttnParams d = w;
      d.q = p.q + t * p.q_tok;
      d.T = 1;
      const int32_t c4[4] = {0, 1, 0, static_cast<int32_t>(t + 1)};
      Check(cudaMemcpy(cu, c4, sizeof(c4), cudaMemcpyHostToDevice), "upload");
      d.cu_q = cu, d.cu_k = cu + 2;
      for (int variant : {13, 14, 15}) {
        run(d, variant, 1, &got);
        bad += !same(got, ww.data() + t * row);
      }
    }
    Check(cudaMemcpy(cu, whole, sizeof(whole), cudaMemcpyHostToDevice), "upload");
    Expect(bad == 0, std::string("tc_window300_decode_vs_prefill_bits") + shape);
  }
  {  // two sequences [0, a), [a, T) in one call: the first's rows are the whole call's
    const int32_t a = static_cast<int32_t>(T / 3);
    const std::vector<int32_t> c2 = {0, a, static_cast<int32_t>(T)};
    int32_t* dcu = DeviceCopy(c2);
    AttnParams two = p;
    two.S = 2, two.cu_q = dcu, two.cu_k = dcu;
    int bad = 0;
    for (int variant : {10, 11, 12, 19, 20}) {
      run(two, variant, T, &got);
      bad += std::memcmp(got.data(), want.data(), int64_t{a} * row * 4) != 0;
    }
    Expect(bad == 0, std::string("tc_two_seqs_first_vs_whole_bits") + shape);
    cudaFree(dcu);
  }
  // A batch of 64 one-query sequences over the paged cache (64 .. 200 keys, rotated tables):
  // the batch tiles (auto) against each sequence alone (cluster split, one block).
  constexpr int64_t S = BatchDecodeTables::kS;
  const BatchDecodeTables bd(pc.table, nb);
  const std::vector<int32_t>& lens = bd.lens;
  int32_t* const dbt = bd.dbt;
  const AttnParams b = bd.Apply(g);
  {
    std::vector<float> batch;
    run(b, 10, S, &batch);
    int bad = 0;
    for (int64_t s = 0; s < S; s += 3) {
      AttnParams d = g;
      d.q = p.q + s * p.q_tok;
      d.T = 1, d.S = 1, d.table = dbt + s * nb;
      const int32_t m3[3] = {lens[s], 0, 1};
      Check(cudaMemcpy(dm, m3, sizeof(m3), cudaMemcpyHostToDevice), "upload");
      for (int variant : {13, 14}) {
        run(d, variant, 1, &got);
        bad += !same(got, batch.data() + s * row);
      }
    }
    Expect(bad == 0, std::string("tc_batch64_vs_single_bits") + shape);
    // cu-attn18: the first n of those sequences in one decode call (T = n <= 16: the cluster
    // split, tiles of 16 / G queries cut into one sub-tile a sequence), 13 and 21, vs the batch.
    int badn = 0;
    for (int64_t n : {int64_t{2}, int64_t{5}, int64_t{13}, int64_t{16}}) {
      AttnParams d = b;
      d.T = n, d.S = n;
      for (int variant : {13, 21, 10}) {
        run(d, variant, n, &got);
        badn += std::memcmp(got.data(), batch.data(), n * row * 4) != 0;
      }
    }
    Expect(badn == 0, std::string("tc_decode_split_batched_vs_batch_bits") + shape);
  }
  {  // cu22-xattn: the batch tiles, 15 (kBatch: BatchKernel under the default knob) and 24
     // (RunTile's one-query tiles, before), against the auto rows above and each other: 64
     // sequences of k keys each (the tg64x64 steps), mixed 1 .. 64 keys, a window of 20 (spans
     // not from chunk 0), cu_q that miss the one-query guess (a two-query and an empty
     // sequence: FindSequence); sequence 5 also against its one-query decode (13).
    std::vector<float> batch, g24, one;
    run(b, 10, S, &batch);
    int bad = 0, n = 0;
    for (int variant : {15, 24}) {
      run(b, variant, S, &got);
      bad += !same(got, batch.data()), ++n;
    }
    std::vector<int32_t> ln(S), cq(S + 1);
    int32_t* dl2 = nullptr;
    int32_t* dcq2 = nullptr;
    Check(Malloc(&dl2, S * 4), "malloc");
    Check(Malloc(&dcq2, (S + 1) * 4), "malloc");
    AttnParams e = b;
    e.kv_lens = dl2;
    const auto pair = [&](const AttnParams& a, int64_t rows) {
      run(a, 15, rows, &got);
      run(a, 24, rows, &g24);
      bad += !same(got, g24.data()), ++n;
    };
    for (int keys : {1, 2, 15, 16, 17, 33, 63, 64, 65, 129, 0}) {
      for (int64_t s = 0; s < S; ++s)
        ln[s] = keys > 0 ? keys : static_cast<int32_t>(1 + (s * 29) % 64);
      Check(cudaMemcpy(dl2, ln.data(), S * 4, cudaMemcpyHostToDevice), "upload");
      pair(e, S);
      AttnParams d = g;
      d.q = p.q + 5 * p.q_tok;
      d.T = 1, d.S = 1, d.table = dbt + 5 * nb;
      const int32_t m3[3] = {ln[5], 0, 1};
      Check(cudaMemcpy(dm, m3, sizeof(m3), cudaMemcpyHostToDevice), "upload");
      run(d, 13, 1, &one);
      bad += std::memcmp(one.data(), got.data() + 5 * row, row * 4) != 0, ++n;
      AttnParams w = e;
      w.window = 20;
      pair(w, S);
    }
    // Guess misses: sequence 1 has two queries, sequence 2 none (T = S = 64).
    for (int64_t s = 0; s < S; ++s) cq[s + 1] = cq[s] + (s == 1 ? 2 : s == 2 ? 0 : 1);
    ln[1] = std::max(ln[1], 2);
    Check(cudaMemcpy(dl2, ln.data(), S * 4, cudaMemcpyHostToDevice), "upload");
    Check(cudaMemcpy(dcq2, cq.data(), (S + 1) * 4, cudaMemcpyHostToDevice), "upload");
    AttnParams mq = e;
    mq.cu_q = dcq2, mq.T = cq[S];
    pair(mq, mq.T);
    cudaFree(dcq2);
    cudaFree(dl2);
    std::printf("tc_batch_tiles%s cases=%d bad=%d\n", shape, n, bad);
    Expect(bad == 0, std::string("tc_batch_kernel_vs_runtile_bits") + shape);
  }
  cudaStream_t st = nullptr;
  Check(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "stream");
  const auto release = [&] {
    cudaStreamDestroy(st);
    cudaFree(dm);
    cudaFree(cu);
    cudaFree(out);
    cudaFree(dv);
    cudaFree(dk);
    cudaFree(dq);
  };
  const auto copy_kernel = [&](const float* src, float* dst, int64_t n) {
    EltParams e;  // SCALE by 1 + 0: a copy of finite values (+0 pads stay +0)
    e.op = TSR_OP_SCALE, e.p0 = 1.0f, e.p1 = 0.0f, e.contiguous = true;
    e.a = reinterpret_cast<const uint8_t*>(src), e.out = reinterpret_cast<uint8_t*>(dst);
    e.walk.numel = n;
    Check(LaunchElementwise(e, st), "copy kernel");
  };
  {  // cu-dattn19: under PDL, q / K / V poisoned (NaN), then restored by three copy kernels
     // launched just before the decode call (each waits for the one before it, so the last is
     // the one still running while the call's blocks start; which tensor is copied last rotates
     // by case): the call may read them only after griddepcontrol.wait (the guard for any work
     // moved before the wait). Variant 13 (the knob's tiles) vs the prefill rows (one query,
     // paged) and the batch rows (n one-query sequences), memcmp.
    const int64_t qn = T * row, kvn = nb * PagedKvCache::kBlock * Hkv * D;
    float* q0 = DeviceCopy(q);
    float *k0 = nullptr, *v0 = nullptr;
    Check(Malloc(&k0, kvn * 4), "malloc");
    Check(Malloc(&v0, kvn * 4), "malloc");
    Check(cudaMemcpy(k0, pc.dk, kvn * 4, cudaMemcpyDeviceToDevice), "copy");
    Check(cudaMemcpy(v0, pc.dv, kvn * 4, cudaMemcpyDeviceToDevice), "copy");
    std::vector<float> batch;
    run(b, 10, S, &batch);
    SetPdlLaunches(true);
    int bad = 0, n = 0;
    const auto run_pdl = [&](const AttnParams& a, int64_t rows, std::vector<float>* dst,
                             int variant = 13) {
      Check(cudaMemsetAsync(out, 0xff, rows * row * 4, st), "poison");
      Check(cudaMemsetAsync(dq, 0xff, qn * 4, st), "poison");
      Check(cudaMemsetAsync(pc.dk, 0xff, kvn * 4, st), "poison");
      Check(cudaMemsetAsync(pc.dv, 0xff, kvn * 4, st), "poison");
      for (int j = 0; j < 3; ++j) {
        const int w = (n + j + 1) % 3;  // case n: q, K, V last in turn
        if (w == 0) copy_kernel(q0, dq, qn);
        if (w == 1) copy_kernel(k0, pc.dk, kvn);
        if (w == 2) copy_kernel(v0, pc.dv, kvn);
      }
      Check(LaunchAttentionWith(a, variant, st), "attention pdl");
      dst->resize(rows * row);
      Check(cudaMemcpyAsync(dst->data(), out, rows * row * 4, cudaMemcpyDeviceToHost, st), "dl");
      Check(cudaStreamSynchronize(st), "sync");
      ++n;
    };
    for (int64_t t : {0,   1,   2,   15,  16,  63,  64,  65,   127,  128,  143,  200,
                      255, 256, 320, 511, 512, 513, 777, 1023, 1024, 1031, 1500, 2047}) {
      if (t >= T) continue;
      AttnParams d = g;
      d.q = p.q + t * p.q_tok;
      d.T = 1, d.S = 1;
      const int32_t m3[3] = {static_cast<int32_t>(t + 1), 0, 1};
      Check(cudaMemcpy(dm, m3, sizeof(m3), cudaMemcpyHostToDevice), "upload");
      run_pdl(d, 1, &got);
      bad += !same(got, want.data() + t * row);
    }
    for (int64_t m : {int64_t{2}, int64_t{5}, int64_t{13}, int64_t{16}}) {
      AttnParams d = b;
      d.T = m, d.S = m;
      run_pdl(d, m, &got);
      bad += std::memcmp(got.data(), batch.data(), m * row * 4) != 0;
    }
    for (int rep = 0; rep < 3; ++rep) {  // cu22-xattn: the batch tiles (15), all 64 sequences
      run_pdl(b, S, &got, 15);
      bad += !same(got, batch.data());
    }
    SetPdlLaunches(false);
    Check(cudaMemcpy(dq, q0, qn * 4, cudaMemcpyDeviceToDevice), "restore");
    Check(cudaMemcpy(pc.dk, k0, kvn * 4, cudaMemcpyDeviceToDevice), "restore");
    Check(cudaMemcpy(pc.dv, v0, kvn * 4, cudaMemcpyDeviceToDevice), "restore");
    cudaFree(v0);
    cudaFree(k0);
    cudaFree(q0);
    std::printf("tc_decode_pdl%s cases=%d bad=%d\n", shape, n, bad);
    Expect(bad == 0, std::string("tc_decode_pdl_poisoned_inputs_bits") + shape);
  }
  if (g_skip_times) {
    release();
    return;
  }
  // Times (us / ms a call), f32 order's default (9) against the tensor-core order (10),
  // interleaved rounds.
  const double flops = 4.0 * Hq * D * T * (T + 1) / 2.0;
  for (int round = 0; round < 2; ++round) {
    // f32, tc auto, tc 128-row / 64-row blocks, HEAD fee64b5's 128-row / 64-row blocks
    for (int variant : {9, 10, 11, 12, 19, 20}) {
      const double ms =
          TimeMs(3, 5, [&](int) { Check(LaunchAttentionWith(p, variant, nullptr), "attention"); });
      std::printf("time attention_prefill_%s T=%lld%s round=%d ms=%.4f TFLOP/s=%.1f\n",
                  variant == 9    ? "f32"
                  : variant == 10 ? "tc"
                  : variant == 11 ? "tc_rows128"
                  : variant == 12 ? "tc_rows64"
                  : variant == 19 ? "tc_rows128_head"
                                  : "tc_rows64_head",
                  static_cast<long long>(T), shape, round, ms, flops / (ms * 1e-3) / 1e12);
    }
    if (D == 128) {  // timing-only diagnostics: without the K / V splits, score mma, p.V
      for (int variant : {16, 17, 18}) {
        const double ms = TimeMs(
            3, 5, [&](int) { Check(LaunchAttentionWith(p, variant, nullptr), "attention"); });
        std::printf("time attention_prefill_tc_diag%d T=%lld%s round=%d ms=%.4f\n",
                    variant == 16   ? 1
                    : variant == 17 ? 2
                                    : 4,
                    static_cast<long long>(T), shape, round, ms);
      }
    }
    for (int64_t keys : {int64_t{16}, int64_t{144}, int64_t{1024}, T}) {
      if (keys > T) continue;
      AttnParams d = g;
      d.q = p.q + (keys - 1) * p.q_tok;
      d.T = 1, d.S = 1;
      const int32_t m3[3] = {static_cast<int32_t>(keys), 0, 1};
      Check(cudaMemcpy(dm, m3, sizeof(m3), cudaMemcpyHostToDevice), "upload");
      // 9: the f32 order, 21: HEAD 0a00b9a's split tiles, 13: the knob's, 14: one block a
      // tile, 22 / 23 (cu-dattn19): empty launches of 13's grid with / without its clusters and
      // shared memory. Back to back on the null stream; then (pdl) 13, 22, 23 back to back on a
      // stream under PDL (a call's blocks start while the one before drains), and (pair) each
      // call after a copy kernel of one q row (the engine's KV_WRITE before it), under PDL;
      // pair_copy_only: the copy alone.
      const auto name = [](int variant) {
        return variant == 9    ? "f32"
               : variant == 13 ? "tc_split"
               : variant == 21 ? "tc_split_head"
               : variant == 14 ? "tc_nosplit"
               : variant == 22 ? "empty_cluster"
                               : "empty_flat";
      };
      for (int variant : {9, 21, 13, 14, 21, 13, 22, 23}) {
        const double ms =
            TimeMs(5, 20, [&](int) { Check(LaunchAttentionWith(d, variant, nullptr), "decode"); });
        std::printf("time attention_decode_paged_%s keys=%lld%s round=%d us=%.2f\n", name(variant),
                    static_cast<long long>(keys), shape, round, ms * 1e3);
      }
      SetPdlLaunches(true);
      for (int pair = 0; pair < 3; ++pair) {
        for (int variant : {13, 22, 23}) {
          if (pair == 2 && variant != 13) continue;  // pair == 2: the copy kernel alone
          const double ms = TimeMs(
              5, 20,
              [&](int) {
                if (pair > 0) copy_kernel(reinterpret_cast<const float*>(d.q), out + row, row);
                if (pair < 2) Check(LaunchAttentionWith(d, variant, st), "decode");
              },
              st);
          std::printf("time attention_decode_paged_%s_%s keys=%lld%s round=%d us=%.2f\n",
                      pair == 0 ? "pdl" : "pair", pair == 2 ? "copy_only" : name(variant),
                      static_cast<long long>(keys), shape, round, ms * 1e3);
        }
      }
      SetPdlLaunches(false);
    }
    for (int variant : {9, 10, 24}) {
      const double ms =
          TimeMs(5, 20, [&](int) { Check(LaunchAttentionWith(b, variant, nullptr), "batch"); });
      std::printf("time attention_batch_decode_%s seqs=64 keys=64..200%s round=%d us=%.2f\n",
                  variant == 9    ? "f32"
                  : variant == 10 ? "tc"
                                  : "tc_head",
                  shape, round, ms * 1e3);
    }
  }
  std::fflush(stdout);
  release();
}

// The ncu target (--attention-dec-ncu): one paged one-query decode call at 16, 144 and 1024
// keys (the knob's tiles, variant 13); nothing checked or timed.
void DecodeNcu(int64_t Hq, int64_t Hkv, int64_t D) {
  constexpr int64_t T = 1024;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int64_t row = Hq * D;
  std::vector<float> q(T * row), k(T * Hkv * D), v(T * Hkv * D);
  for (float& f : q) f = u(rng);
  for (float& f : k) f = u(rng);
  for (float& f : v) f = u(rng);
  float* dq = DeviceCopy(q);
  float* out = nullptr;
  Check(Malloc(&out, row * 4), "malloc");
  const PagedKvCache pc(k, v, T, Hkv * D);
  int32_t* dm = nullptr;  // kv_lens [1], cu_q [2]
  Check(Malloc(&dm, 3 * sizeof(int32_t)), "malloc");
  AttnParams p;
  p.q_tok = row * 4, p.q_head = D * 4;
  p.out = reinterpret_cast<uint8_t*>(out), p.o_tok = row * 4, p.o_head = D * 4;
  p.k_tok = p.v_tok = Hkv * D * 4, p.k_head = p.v_head = D * 4;
  p.kv_dtype = TSR_DTYPE_F32;
  p.T = 1, p.S = 1, p.Hq = Hq, p.Hkv = Hkv, p.D = D, p.Dv = D;
  p.scale = 1.0f / std::sqrt(static_cast<float>(D));
  p.causal = true;
  AttnParams g = pc.Apply(p);
  g.kv_lens = dm, g.cu_q = dm + 1;
  for (int64_t keys : {int64_t{16}, int64_t{144}, int64_t{1024}}) {
    g.q = reinterpret_cast<const uint8_t*>(dq + (keys - 1) * row);
    const int32_t m3[3] = {static_cast<int32_t>(keys), 0, 1};
    Check(cudaMemcpy(dm, m3, sizeof(m3), cudaMemcpyHostToDevice), "upload");
    Check(LaunchAttentionWith(g, 13, nullptr), "decode");
    Check(cudaDeviceSynchronize(), "sync");
  }
  cudaFree(dm);
  cudaFree(out);
  cudaFree(dq);
}

// cu22-xattn (--attention-batch [ncu]): 64 one-query sequences of k keys each over a paged cache
// (the tg64x64 decode step's call), the batch tiles before (24: RunTile's) and now (15), us a
// call: back to back on the null stream, then back to back on a stream under PDL; two
// interleaved rounds. ncu: one call of each at 33 keys, nothing timed.
void BatchTimes(int64_t Hq, int64_t Hkv, int64_t D, bool ncu) {
  constexpr int64_t T = 1024, S = BatchDecodeTables::kS;
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int64_t row = Hq * D;
  std::vector<float> q(S * row), k(T * Hkv * D), v(T * Hkv * D);
  for (float& f : q) f = u(rng);
  for (float& f : k) f = u(rng);
  for (float& f : v) f = u(rng);
  float* dq = DeviceCopy(q);
  float* out = nullptr;
  Check(Malloc(&out, S * row * 4), "malloc");
  const PagedKvCache pc(k, v, T, Hkv * D);
  const BatchDecodeTables bd(pc.table, pc.nb);
  AttnParams p;
  p.q = reinterpret_cast<const uint8_t*>(dq), p.q_tok = row * 4, p.q_head = D * 4;
  p.out = reinterpret_cast<uint8_t*>(out), p.o_tok = row * 4, p.o_head = D * 4;
  p.k_tok = p.v_tok = Hkv * D * 4, p.k_head = p.v_head = D * 4;
  p.kv_dtype = TSR_DTYPE_F32;
  p.Hq = Hq, p.Hkv = Hkv, p.D = D, p.Dv = D;
  p.scale = 1.0f / std::sqrt(static_cast<float>(D));
  p.causal = true;
  const AttnParams b = bd.Apply(pc.Apply(p));
  std::vector<int32_t> ln(S);
  cudaStream_t st = nullptr;
  Check(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "stream");
  const auto lens = [&](int32_t keys) {
    std::fill(ln.begin(), ln.end(), keys);
    Check(cudaMemcpy(bd.dl, ln.data(), S * 4, cudaMemcpyHostToDevice), "upload");
  };
  if (ncu) {
    lens(33);
    for (int variant : {24, 15}) Check(LaunchAttentionWith(b, variant, nullptr), "batch");
    Check(cudaDeviceSynchronize(), "sync");
  } else {
    for (int round = 0; round < 2; ++round) {
      for (int32_t keys : {1, 33, 64, 128}) {
        lens(keys);
        for (int variant : {24, 15, 15, 24}) {
          const double ms =
              TimeMs(5, 20, [&](int) { Check(LaunchAttentionWith(b, variant, nullptr), "batch"); });
          std::printf("time batch64_%s keys=%d Hq=%lld Hkv=%lld D=%lld round=%d us=%.2f\n",
                      variant == 24 ? "old" : "new", keys, static_cast<long long>(Hq),
                      static_cast<long long>(Hkv), static_cast<long long>(D), round, ms * 1e3);
        }
        SetPdlLaunches(true);
        for (int variant : {24, 15, 15, 24}) {
          const double ms = TimeMs(
              5, 20, [&](int) { Check(LaunchAttentionWith(b, variant, st), "batch pdl"); }, st);
          std::printf("time batch64_pdl_%s keys=%d Hq=%lld Hkv=%lld D=%lld round=%d us=%.2f\n",
                      variant == 24 ? "old" : "new", keys, static_cast<long long>(Hq),
                      static_cast<long long>(Hkv), static_cast<long long>(D), round, ms * 1e3);
        }
        SetPdlLaunches(false);
      }
    }
  }
  std::fflush(stdout);
  cudaStreamDestroy(st);
  cudaFree(out);
  cudaFree(dq);
}

int Main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const bool attention_only = argc > 1 && std::strcmp(argv[1], "--attention") == 0;
  cudaDeviceProp prop{};
  Check(cudaGetDeviceProperties(&prop, 0), "properties");
  std::printf("device name=\"%s\" sm_%d%d sms=%d l2_MiB=%d\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount, prop.l2CacheSize >> 20);
  if (argc > 1 && std::strcmp(argv[1], "--attention-dec-ncu") == 0) {
    DecodeNcu(32, 8, 128);
    DecodeNcu(14, 2, 64);
    return 0;
  }
  if (argc > 1 && std::strcmp(argv[1], "--attention-batch") == 0) {
    const bool ncu = argc > 2 && std::strcmp(argv[2], "ncu") == 0;
    BatchTimes(14, 2, 64, ncu);
    BatchTimes(32, 8, 64, ncu);
    BatchTimes(32, 8, 128, ncu);
    return 0;
  }
  if (argc > 1 && std::strcmp(argv[1], "--attention-tc") == 0) {
    const int64_t T = argc > 2 ? std::atoll(argv[2]) : 2048;  // a multiple of 64, >= 256
    g_skip_times = argc > 3 && std::strcmp(argv[3], "checks") == 0;
    AttentionTc(T, 32, 8, 128);
    AttentionTc(T, 32, 8, 64);
    AttentionTc(T, 14, 2, 64);
    std::printf("summary failures=%d\n", g_failures);
    return g_failures == 0 ? 0 : 1;
  }
  if (argc > 6 && std::strcmp(argv[1], "--generic-one") == 0) {  // for ncu: N K M dtype variant
    const int64_t N = std::atoll(argv[2]), K = std::atoll(argv[3]), M = std::atoll(argv[4]);
    const tsr_dtype dt = std::strcmp(argv[5], "q8") == 0    ? TSR_DTYPE_Q8_B32
                         : std::strcmp(argv[5], "q4") == 0  ? TSR_DTYPE_Q4_B32
                         : std::strcmp(argv[5], "f16") == 0 ? TSR_DTYPE_F16
                                                            : TSR_DTYPE_F32;
    const int v = std::atoi(argv[6]);
    int64_t row_bytes = 0;
    uint8_t* w = DeviceCopy(GenericWeights(N, K, dt, 5, &row_bytes));
    float* x = DeviceCopy(std::vector<float>(M * K, 0.5f));
    float* out = nullptr;
    Check(Malloc(&out, M * N * 4), "malloc");
    const MatmulParams p = GenericParams(x, w, out, M, N, K, row_bytes, dt);
    for (int i = 0; i < 3; ++i)  // variant < 0: the default launch (M <= 8: the GEMVs)
      Check(v < 0 ? LaunchMatmulGeneric(p, nullptr) : LaunchMatmulGenericTile(p, nullptr, v),
            "generic");
    Check(cudaDeviceSynchronize(), "sync");
    std::printf("generic_one done\n");
    return 0;
  }
  if (argc > 1 && std::strcmp(argv[1], "--generic") == 0) {
    CheckGenericSteps();
    const double copy = CopyBandwidth();
    for (tsr_dtype dt : {TSR_DTYPE_Q8_B32, TSR_DTYPE_Q4_B32, TSR_DTYPE_F16, TSR_DTYPE_F32}) {
      TimeGenericPair(4864, 896, 1, dt, copy);    // Qwen2.5-0.5B gate/up
      TimeGenericPair(896, 4864, 1, dt, copy);    // its down
      TimeGenericPair(14336, 4096, 1, dt, copy);  // Llama-3.1-8B gate/up
      TimeGenericPair(4096, 14336, 1, dt, copy);  // its down
      TimeGenericPair(4096, 4096, 8, dt, copy);   // an 8-row decode batch
      TimeGenericPair(4096, 4096, 64, dt, copy);  // a 64-row decode batch: a tile
      TimeGenericPair(4864, 896, 512, dt, copy);  // prefill: the tiles
      TimeGenericPair(896, 4864, 512, dt, copy);
      TimeGenericPair(14336, 4096, 512, dt, copy);
    }
    std::printf("summary failures=%d\n", g_failures);
    return g_failures == 0 ? 0 : 1;
  }
  if (attention_only) {
    Attention(2048, 32, 8, 128);
    Attention(2048, 32, 8, 64);
    Attention(2048, 14, 2, 64);
    AttentionTc(2048, 32, 8, 128);
    AttentionTc(2048, 32, 8, 64);
    AttentionTc(2048, 14, 2, 64);
    std::printf("summary failures=%d\n", g_failures);
    return g_failures == 0 ? 0 : 1;
  }
  for (int terms : {3, 1}) {
    Correctness(4096, 4096, terms);
    Correctness(1000, 1064, terms);  // ragged N, K % 32 != 0
  }
  const double copy = CopyBandwidth();
  for (int terms : {3, 1}) {
    TimeGemv(4096, 4096, 1, terms, copy);
    TimeGemv(14336, 4096, 1, terms, copy);
    TimeGemv(4096, 14336, 1, terms, copy);
    if (!quick) TimeGemv(4096, 4096, 8, terms, copy);
  }
  TimeGemm(2048, 4096, 4096, 1);
  TimeGemm(2048, 4096, 4096, 3);
  if (!quick) TimeGemm(2048, 14336, 4096, 1);
  if (!quick) TimeGemm(2048, 14336, 4096, 3);
  Attention(2048, 32, 8, 128);
  Attention(2048, 14, 2, 64);
  TimeGenericPair(4096, 4096, 1, TSR_DTYPE_Q8_B32, copy);
  TimeGenericPair(4096, 4096, 1, TSR_DTYPE_Q4_B32, copy);
  std::printf("summary failures=%d\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace tessera::cuda

int main(int argc, char** argv) {
  return tessera::cuda::Main(argc, argv);
}
