// vulkan_coopgemv_lab: the cooperative-matrix GEMV (matmul_coop_gemv.comp, MATMULs of 1..32
// rows, bf16 weights; vk-coop13) on the engine's model shapes, through the plugin's ABI.
//
// Bits: per shape, the cooperative-matrix GEMM (matmul_coop.comp, default tile rule) runs x's
// 512 rows and its first 64 (different tile variants), then the GEMV runs the first M rows
// (M = 1, 3, 8, 17, 32 by default; TESSERA_VULKAN_COOPGEMV = each of --m1 at M = 1, of --m8 at
// M = 2..8, 1 above): every GEMV output must have exactly the bits of the same
// output of the GEMM (memcmp), and the GEMM's 64-row outputs those of its 512-row ones. Each run's
// sampled outputs are also checked against a double reference (2e-6 of sum |x w|, the bound of
// vulkan_backend_test's CoopGemmMatchesAReference).
//
// Time (M = 1, 8, 32; the other M are checked, not timed): GPU us a MATMUL from
// TESSERA_VULKAN_PROFILE=1 (the plugin's per-shader log, read back through the host log
// callback) over `--reps` MATMULs cycling through enough weight copies
// that a repetition never finds its weights in L2 (as vulkan_gemv_lab), for the GEMV (each
// variant at M = 1), the plain GEMV the engine runs today (TESSERA_VULKAN_COOPGEMV unset: the
// decode GEMV at M = 1, the per-row GEMV at 2..32) and the GEMM at M = 64 (its 64-row tile: the
// cost it would have for any M <= 64). GB/s = weight bytes / time; "copy" = that over
// `--copy-gbs` (the H100's measured copy bandwidth, as vulkan_gemv_lab).
//
//   TESSERA_VULKAN_PLUGIN=.../libtessera_backend_vulkan.so vulkan_coopgemv_lab
//       [--shapes 8b,1b,05b,rag] [--m 1,3,8,17,32] [--m1 "1;2;3"] [--m8 "1"] [--reps N]
//       [--l2-mb 128] [--copy-gbs 3006] [--deadline S] [--plain-only] [--stats]
// --plain-only: no GEMV runs (a plugin without matmul_coop_gemv.comp: the GEMM bits and the
// plain GEMV's time); --stats: the GEMV modules' driver statistics (registers, shared memory).
// Exit status 1 when bits differ, a bound is missed or a run fails.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "backends/vulkan/lab_plugin.h"
#include "tessera/plugin_api.h"

namespace {

using tessera::vulkan::lab::Align;
using tessera::vulkan::lab::Bf16;
using tessera::vulkan::lab::Split;

struct Shape {
  const char* model;  // 8b, 1b, 05b, rag
  const char* name;
  int64_t N, K;
};

std::vector<Shape> AllShapes() {
  return {
      {"8b", "q/o 4096x4096", 4096, 4096},       {"8b", "k/v 1024x4096", 1024, 4096},
      {"8b", "gate/up 14336x4096", 14336, 4096}, {"8b", "down 4096x14336", 4096, 14336},
      {"1b", "q/o 2048x2048", 2048, 2048},       {"1b", "k/v 512x2048", 512, 2048},
      {"1b", "gate/up 8192x2048", 8192, 2048},   {"1b", "down 2048x8192", 2048, 8192},
      {"05b", "q/o 896x896", 896, 896},          {"05b", "k/v 128x896", 128, 896},
      {"05b", "gate/up 4864x896", 4864, 896},    {"05b", "down 896x4864", 896, 4864},
      {"rag", "592x1056 (BK 32)", 592, 1056},    {"rag", "592x4160", 592, 4160},
  };
}

namespace vlab = tessera::vulkan::lab;
using vlab::LabLog;

constexpr int64_t kRows = 512;  // x rows of the GEMM run; the GEMV takes the first M

// GPU ms of every profile line whose shader name starts with `prefix` (summed).
double ProfileMs(const std::string& log, const std::string& prefix) {
  std::istringstream in(log);
  std::string line;
  double ms = 0;
  while (std::getline(in, line)) {
    const size_t p = line.find_first_not_of(' ');
    if (p == std::string::npos || line.compare(p, prefix.size(), prefix) != 0) continue;
    const size_t c = line.find(" calls ");
    if (c != std::string::npos) ms += std::atof(line.c_str() + c + 7);
  }
  return ms;
}

struct Data {
  std::vector<float> x;     // [kRows, K]
  std::vector<uint16_t> w;  // [N, K] bf16 bits
  std::vector<int64_t> sm, sn;
  std::vector<double> ref, mag;
};

void MakeData(const Shape& s, std::mt19937* rng, Data* d) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  d->x.resize(kRows * s.K);
  for (float& v : d->x) v = u(*rng) * std::exp2(static_cast<float>((*rng)() % 8) - 4.0f);
  d->w.resize(s.N * s.K);
  for (uint16_t& b : d->w) {
    const float f = u(*rng);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    b = static_cast<uint16_t>(bits >> 16);
  }
  // Samples in the first 32 rows (every GEMV row count sees some): row 0 and the last column
  // always, the rest at random.
  for (int i = 0; i < 256; ++i) {
    const int64_t m = i < 2 ? 0 : static_cast<int64_t>((*rng)() % 32);
    const int64_t n = i == 0 ? 0 : i == 1 ? s.N - 1 : static_cast<int64_t>((*rng)() % s.N);
    double ref = 0, mag = 0;
    for (int64_t k = 0; k < s.K; ++k) {
      const double p = static_cast<double>(d->x[m * s.K + k]) * Bf16(d->w[n * s.K + k]);
      ref += p, mag += std::fabs(p);
    }
    d->sm.push_back(m), d->sn.push_back(n), d->ref.push_back(ref), d->mag.push_back(mag);
  }
}

struct Result {
  bool ok = false;
  double gemv_us = 0, gemm_us = 0, split_us = 0, plain_us = 0;  // a MATMUL
  double worst = 0;        // over the samples in the first M rows, units of sum |x w|
  std::vector<float> out;  // [M, N]
};

struct Lab {
  const tsr_plugin_api* api = nullptr;
  tsr_plugin_ctx* ctx = nullptr;
  int reps = 40;
  uint64_t l2_mb = 128;

  // The first M rows of x times w on a fresh device: coopgemv = TESSERA_VULKAN_COOPGEMV ("0" =
  // unset), `timed`: reps MATMULs over weight copies, else one.
  Result Run(const Shape& s, const Data& d, int64_t M, const std::string& coopgemv, bool timed);
};

Result Lab::Run(const Shape& s, const Data& d, int64_t M, const std::string& coopgemv, bool timed) {
  Result res;
  setenv("TESSERA_VULKAN_COOPMAT", "1", 1);
  unsetenv("TESSERA_VULKAN_COOPMAT_TILE");
  if (coopgemv == "0")
    unsetenv("TESSERA_VULKAN_COOPGEMV");
  else
    setenv("TESSERA_VULKAN_COOPGEMV", coopgemv.c_str(), 1);
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  int32_t count = 0;
  tsr_device* dev = nullptr;
  if (api->device_count(ctx, &count, &err) != TSR_OK || count == 0 ||
      api->device_open(ctx, 0, &dev, &err) != TSR_OK) {
    std::fprintf(stderr, "no device: %s\n", api->absence_reason(ctx));
    return res;
  }
  const int64_t N = s.N, K = s.K;
  const uint64_t wbytes = static_cast<uint64_t>(N * K * 2);
  const int copies = timed ? static_cast<int>(std::min<uint64_t>(
                                 256, std::max<uint64_t>(2, (l2_mb << 20) / wbytes + 1)))
                           : 1;
  const int n_nodes = timed ? std::max(reps, copies) : 1;
  const uint64_t ox = 0, oo = Align(M * K * 4), total = oo + Align(M * N * 4);
  tsr_buffer* buf = nullptr;
  bool ok = api->buffer_alloc(dev, 0, total, &buf, &err) == TSR_OK &&
            api->buffer_upload(buf, ox, d.x.data(), M * K * 4, nullptr, &err) == TSR_OK;
  tsr_buffer* wbuf = nullptr;
  const uint64_t wstride = Align(wbytes);
  ok = ok && api->buffer_alloc(dev, 0, wstride * copies, &wbuf, &err) == TSR_OK;
  for (int c = 0; ok && c < copies; ++c)
    ok = api->buffer_upload(wbuf, wstride * c, d.w.data(), wbytes, nullptr, &err) == TSR_OK;
  // Tensors: 0 x [M, K], 1 out [M, N], 2.. the weight copies [N, K].
  std::vector<tsr_tensor> t(2 + copies);
  for (tsr_tensor& ti : t) {
    ti = tsr_tensor{};
    ti.struct_size = sizeof(tsr_tensor), ti.buffer = buf, ti.ndim = 2;
  }
  t[0].dtype = TSR_DTYPE_F32, t[0].ne[0] = M, t[0].ne[1] = K, t[0].nb[0] = K * 4, t[0].nb[1] = 4;
  t[0].offset = ox;
  t[1].dtype = TSR_DTYPE_F32, t[1].ne[0] = M, t[1].ne[1] = N, t[1].nb[0] = N * 4, t[1].nb[1] = 4;
  t[1].offset = oo;
  for (int c = 0; c < copies; ++c) {
    tsr_tensor& tw = t[2 + c];
    tw.buffer = wbuf, tw.dtype = TSR_DTYPE_BF16, tw.ne[0] = N, tw.ne[1] = K;
    tw.nb[0] = K * 2, tw.nb[1] = 2, tw.offset = wstride * c;
  }
  std::vector<tsr_node> nodes(n_nodes);
  for (int i = 0; i < n_nodes; ++i) {
    tsr_node& nd = nodes[i];
    nd = tsr_node{};
    nd.struct_size = sizeof(tsr_node), nd.op = TSR_OP_MATMUL, nd.n_inputs = 2;
    nd.inputs[0] = 0, nd.inputs[1] = 2 + i % copies, nd.output = 1;
  }
  const tsr_graph_view view{sizeof(tsr_graph_view), static_cast<int32_t>(t.size()), t.data(),
                            n_nodes, nodes.data()};
  std::vector<int32_t> ids(n_nodes);
  for (int i = 0; i < n_nodes; ++i) ids[i] = i;
  ok = ok && api->execute(dev, &view, ids.data(), n_nodes, nullptr, &err) == TSR_OK;
  ok = ok && api->device_synchronize(dev, &err) == TSR_OK;
  res.out.assign(M * N, 0.0f);
  ok = ok && api->buffer_download(buf, oo, res.out.data(), M * N * 4, nullptr, &err) == TSR_OK;
  if (!ok) std::fprintf(stderr, "FAILED %s M %ld: %s\n", s.name, static_cast<long>(M), err.message);
  for (size_t i = 0; ok && i < d.sm.size(); ++i) {
    if (d.sm[i] >= M) continue;
    const double got = res.out[d.sm[i] * N + d.sn[i]];
    const double e = std::fabs(got - d.ref[i]) / std::max(d.mag[i], 1e-30);
    res.worst = std::max(res.worst, std::isfinite(got) ? e : INFINITY);
  }
  if (wbuf != nullptr) api->buffer_free(wbuf);
  if (buf != nullptr) api->buffer_free(buf);
  // --stats: the GEMV modules' pipeline statistics (plugin.cc LogPipelineStats), once each.
  static std::set<std::string> seen;
  std::istringstream lines(LabLog());
  for (std::string line; std::getline(lines, line);) {
    if (line.find("pipeline stats matmul_coop_gemv") != std::string::npos &&
        seen.insert(line).second)
      std::printf("  %s\n", line.c_str());
  }
  LabLog().clear();
  api->device_close(dev);  // logs the profile
  const double per = 1e3 / n_nodes;
  res.gemv_us = per * ProfileMs(LabLog(), "matmul_coop_gemv.comp");
  res.gemm_us = per * ProfileMs(LabLog(), "matmul_coop.comp");
  res.split_us = per * ProfileMs(LabLog(), "coop_split.comp");
  res.plain_us = per * ProfileMs(LabLog(), "matmul.comp");
  res.ok = ok;
  return res;
}

// Outputs of `got` [M, N] whose bits differ from the first M rows of `ref` [>= M, N].
size_t Differ(const std::vector<float>& got, const std::vector<float>& ref, int64_t M, int64_t N) {
  size_t diff = 0;
  for (int64_t i = 0; i < M * N; ++i) diff += std::memcmp(&got[i], &ref[i], 4) != 0;
  return diff;
}

}  // namespace

int main(int argc, char** argv) {
  Lab lab;
  std::string shapes = "8b,1b,05b,rag", ms = "1,3,8,17,32", m1 = "1;2;3", m8 = "1";
  double copy_gbs = 3006, deadline = 1e9, bound = 2e-6;
  bool plain_only = false, no_coop = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--reps")
      lab.reps = std::max(1, std::atoi(next().c_str()));
    else if (a == "--shapes")
      shapes = next();
    else if (a == "--m")
      ms = next();
    else if (a == "--m1")
      m1 = next();
    else if (a == "--m8")
      m8 = next();
    else if (a == "--l2-mb")
      lab.l2_mb = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--copy-gbs")
      copy_gbs = std::atof(next().c_str());
    else if (a == "--deadline")
      deadline = std::atof(next().c_str());
    else if (a == "--plain-only")
      plain_only = true;
    else if (a == "--no-coop")  // a device without cooperative matrices: the lab's own flow
      no_coop = true;
    else if (a == "--stats")
      setenv("TESSERA_VULKAN_PIPELINE_STATS", "1", 1);
    else {
      std::fprintf(
          stderr,
          "usage: %s [--shapes 8b,1b,05b,rag] [--m 1,3,8,17,32] [--m1 \"1;2;3\"] [--m8 \"1\"] "
          "[--reps N] [--l2-mb M] [--copy-gbs G] [--deadline S] [--plain-only] [--stats]\n",
          argv[0]);
      return 2;
    }
  }
  const char* path = nullptr;
  lab.api = vlab::OpenLabPlugin(&path);
  if (lab.api == nullptr) return 2;
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  if (lab.api->create_context(nullptr, 0, &lab.ctx, &err) != TSR_OK) {
    std::fprintf(stderr, "create_context failed: %s\n", err.message);
    return 2;
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  std::printf("plugin %s; reps %d; weights cycled over >= %llu MiB; bound %.1e of sum |x w|\n",
              path, lab.reps, static_cast<unsigned long long>(lab.l2_mb), bound);
  std::printf("%-4s %-20s %3s %-12s %9s %8s %6s %10s %s\n", "", "shape", "M", "path", "us", "GB/s",
              "copy", "err", "bits vs GEMM (M=512 run)");
  int failures = 0;
  size_t bit_cases = 0, bit_outputs = 0;
  std::mt19937 rng(13);
  for (const Shape& s : AllShapes()) {
    if (("," + shapes + ",").find(std::string(",") + s.model + ",") == std::string::npos) continue;
    if (elapsed() > deadline) {
      std::printf("deadline: %s and later shapes not run\n", s.name);
      break;
    }
    std::mt19937 shape_rng(rng());
    Data d;
    MakeData(s, &shape_rng, &d);
    const double gbytes = static_cast<double>(s.N * s.K * 2) / 1e9;
    auto row = [&](int64_t M, const std::string& label, double us, double worst,
                   const std::string& bits) {
      const double gbs = us > 0 ? gbytes / (us * 1e-6) : 0;
      const bool pass = worst <= bound;
      if (!pass) ++failures;
      std::printf("%-4s %-20s %3ld %-12s %9.1f %8.0f %6.2f %10.2e %s%s\n", s.model, s.name,
                  static_cast<long>(M), label.c_str(), us, gbs, gbs / copy_gbs, worst, bits.c_str(),
                  pass ? "" : "  FAILED bound");
      std::fflush(stdout);
    };
    const Result g512 = lab.Run(s, d, kRows, "0", false);
    if (!g512.ok || (g512.gemm_us <= 0 && !no_coop)) {
      ++failures;
      std::printf("%-4s %-20s FAILED: the GEMM run (coop GEMM not reached?)\n", s.model, s.name);
      continue;
    }
    row(kRows, "gemm", 0, g512.worst, "-");
    const Result g64 = lab.Run(s, d, 64, "0", true);
    if (g64.ok) {
      const size_t diff = Differ(g64.out, g512.out, 64, s.N);
      failures += diff != 0;
      ++bit_cases, bit_outputs += 64 * s.N;
      row(64, "gemm", g64.gemm_us + g64.split_us, g64.worst,
          diff == 0 ? "same" : std::to_string(diff) + " DIFFER");
    } else {
      ++failures;
    }
    for (const std::string& mstr : Split(ms, ',')) {
      const int64_t M = std::atoll(mstr.c_str());
      std::vector<std::string> vs = {"1"};
      if (M == 1) vs = Split(m1, ';');
      if (M > 1 && M <= 8) vs = Split(m8, ';');
      if (plain_only) vs.clear();
      for (const std::string& v : vs) {
        const Result r = lab.Run(s, d, M, v, M == 1 || M == 8 || M == 32);
        if (!r.ok || r.gemv_us <= 0) {
          ++failures;
          std::printf("%-4s %-20s %3ld gemv v%-9s FAILED run (GEMV not reached?)\n", s.model,
                      s.name, static_cast<long>(M), v.c_str());
          continue;
        }
        const size_t diff = Differ(r.out, g512.out, M, s.N);
        failures += diff != 0;
        ++bit_cases, bit_outputs += M * s.N;
        row(M, "gemv knob=" + v, r.gemv_us, r.worst,
            diff == 0 ? "same" : std::to_string(diff) + " DIFFER");
      }
      if (M == 1 || M == 8 || M == 32) {
        const Result p = lab.Run(s, d, M, "0", true);
        if (p.ok) {
          const size_t diff = Differ(p.out, g512.out, M, s.N);
          row(M, "plain", p.plain_us, p.worst,
              diff == 0 ? "same" : std::to_string(diff) + " differ (canonical order)");
        }
      }
    }
  }
  std::printf("bits: %zu GEMV/GEMM runs, %zu outputs compared\n", bit_cases, bit_outputs);
  std::printf("%s (%d failures)\n", failures == 0 ? "PASSED" : "FAILED", failures);
  lab.api->destroy_context(lab.ctx);
  return failures == 0 ? 0 : 1;
}
