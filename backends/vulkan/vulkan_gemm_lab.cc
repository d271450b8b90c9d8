// vulkan_gemm_lab: the prefill GEMM (one MATMUL, M x K f32 activations times N x K bf16 weights)
// of the engine's model shapes timed alone on a Vulkan device, through the plugin's ABI (so it
// runs exactly the plugin's dispatch code: coop_split.comp + matmul_coop.comp with
// TESSERA_VULKAN_COOPMAT=1, matmul_gemm.comp otherwise).
//
// Per (variant, shape) one device is opened (in one context: NVIDIA's driver refused
// vkCreateInstance after ~30 instances in one process) with TESSERA_VULKAN_PROFILE=1 (a
// timestamp pair around every dispatch, logged per shader when the device closes and read back
// through the host log callback); the graph is one warm-up MATMUL then `--reps` more writing the
// same output. A variant is a value of TESSERA_VULKAN_COOPMAT_TILE (run_ops.cc kCoopKernels: 0 the
// default, 1..16 a tile variant, "A@T,B" a rule; run_ops.cc PickCoopKernel), or "off" (the fp32
// GEMM). Per row: GPU us a MATMUL of the GEMM and of the split pre-pass (summed over its
// dispatches), TFLOP/s of real work (2 M N K over both), and the worst error
// against a double reference over `--samples` random outputs, in units of sum |x w| (the bound
// of vulkan_backend_test's CoopGemmMatchesAReference is 2e-6), and whether the outputs have the
// same bits as the first variant's.
//
//   TESSERA_VULKAN_PLUGIN=.../libtessera_backend_vulkan.so vulkan_gemm_lab
//       [--variants "0;16;16@128,15;off"] [--shapes 8b,1b,05b] [--m 512,2048] [--reps N]
//       [--samples N] [--stats]
// --stats (vk-coop3): TESSERA_VULKAN_PIPELINE_STATS=1, and the driver's statistics of each GEMM
// module (VK_KHR_pipeline_executable_properties: registers, shared memory, ...) printed once.
// Exit status 1 when a variant misses the bound (or fails to run).

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
  const char* model;  // 8b, 1b, 05b
  const char* name;
  int64_t N, K;
  int per_layer;  // MATMULs of this shape a layer (for the weighted total)
};

std::vector<Shape> AllShapes() {
  return {
      {"8b", "q/o 4096x4096", 4096, 4096, 2},       {"8b", "k/v 1024x4096", 1024, 4096, 2},
      {"8b", "gate/up 14336x4096", 14336, 4096, 2}, {"8b", "down 4096x14336", 4096, 14336, 1},
      {"1b", "q/o 2048x2048", 2048, 2048, 2},       {"1b", "k/v 512x2048", 512, 2048, 2},
      {"1b", "gate/up 8192x2048", 8192, 2048, 2},   {"1b", "down 2048x8192", 2048, 8192, 1},
      {"05b", "q/o 896x896", 896, 896, 2},          {"05b", "k/v 128x896", 128, 896, 2},
      {"05b", "gate/up 4864x896", 4864, 896, 2},    {"05b", "down 896x4864", 896, 4864, 1},
  };
}

namespace vlab = tessera::vulkan::lab;
using vlab::LabLog;

// The profile line of the first shader whose name starts with `prefix`: (calls, ms).
bool ProfileOf(const std::string& log, const std::string& prefix, double* calls, double* ms) {
  *calls = 0, *ms = 0;
  std::istringstream in(log);
  std::string line;
  bool any = false;
  while (std::getline(in, line)) {
    const size_t p = line.find_first_not_of(' ');
    if (p == std::string::npos || line.compare(p, prefix.size(), prefix) != 0) continue;
    const size_t c = line.find(" calls ");
    if (c == std::string::npos) continue;
    const size_t start = line.rfind(' ', line.find_last_not_of(' ', c - 1));
    *calls += std::atof(line.c_str() + start + 1);
    *ms += std::atof(line.c_str() + c + 7);
    any = true;
  }
  return any;
}

struct Data {  // one shape's host data, shared by every variant
  int64_t M = 0;
  std::vector<float> x;         // [M, K]
  std::vector<uint16_t> w;      // [N, K] bf16 bits
  std::vector<int64_t> sm, sn;  // sampled outputs
  std::vector<double> ref, mag;
};

struct Lab {
  const tsr_plugin_api* api = nullptr;
  tsr_plugin_ctx* ctx = nullptr;
  int reps = 5;
  int failures = 0;
  double bound = 2e-6;

  // Runs one shape under one variant on a fresh device: GPU us a call (GEMM, split), worst error,
  // the outputs. False when it could not run.
  bool Run(const Shape& s, const Data& d, const std::string& variant, double* gemm_us,
           double* split_us, double* worst, std::vector<float>* out);
};

bool Lab::Run(const Shape& s, const Data& d, const std::string& variant, double* gemm_us,
              double* split_us, double* worst, std::vector<float>* out) {
  if (variant == "off") {
    unsetenv("TESSERA_VULKAN_COOPMAT");
  } else {
    setenv("TESSERA_VULKAN_COOPMAT", "1", 1);
    setenv("TESSERA_VULKAN_COOPMAT_TILE", variant.c_str(), 1);
  }
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  int32_t count = 0;
  tsr_device* dev = nullptr;
  if (api->device_count(ctx, &count, &err) != TSR_OK || count == 0 ||
      api->device_open(ctx, 0, &dev, &err) != TSR_OK) {
    std::fprintf(stderr, "no device: %s\n", api->absence_reason(ctx));
    return false;
  }
  const int64_t M = d.M, N = s.N, K = s.K;
  const uint64_t ox = 0, oo = Align(M * K * 4), ow = oo + Align(M * N * 4);
  const uint64_t total = ow + Align(N * K * 2);
  tsr_buffer* buf = nullptr;
  bool ok = api->buffer_alloc(dev, 0, total, &buf, &err) == TSR_OK &&
            api->buffer_upload(buf, ox, d.x.data(), M * K * 4, nullptr, &err) == TSR_OK &&
            api->buffer_upload(buf, ow, d.w.data(), N * K * 2, nullptr, &err) == TSR_OK;
  tsr_tensor t[3];
  for (tsr_tensor& ti : t) {
    ti = tsr_tensor{};
    ti.struct_size = sizeof(tsr_tensor), ti.buffer = buf, ti.ndim = 2;
  }
  t[0].dtype = TSR_DTYPE_F32, t[0].ne[0] = M, t[0].ne[1] = K, t[0].nb[0] = K * 4, t[0].nb[1] = 4;
  t[0].offset = ox;
  t[1].dtype = TSR_DTYPE_BF16, t[1].ne[0] = N, t[1].ne[1] = K, t[1].nb[0] = K * 2, t[1].nb[1] = 2;
  t[1].offset = ow;
  t[2].dtype = TSR_DTYPE_F32, t[2].ne[0] = M, t[2].ne[1] = N, t[2].nb[0] = N * 4, t[2].nb[1] = 4;
  t[2].offset = oo;
  std::vector<tsr_node> nodes(1 + reps);
  for (tsr_node& nd : nodes) {
    nd = tsr_node{};
    nd.struct_size = sizeof(tsr_node), nd.op = TSR_OP_MATMUL, nd.n_inputs = 2;
    nd.inputs[0] = 0, nd.inputs[1] = 1, nd.output = 2;
  }
  const tsr_graph_view view{sizeof(tsr_graph_view), 3, t, static_cast<int32_t>(nodes.size()),
                            nodes.data()};
  std::vector<int32_t> ids(nodes.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  ok = ok && api->execute(dev, &view, ids.data(), static_cast<int32_t>(ids.size()), nullptr,
                          &err) == TSR_OK;
  ok = ok && api->device_synchronize(dev, &err) == TSR_OK;
  out->assign(M * N, 0.0f);
  ok = ok && api->buffer_download(buf, oo, out->data(), M * N * 4, nullptr, &err) == TSR_OK;
  if (!ok) std::fprintf(stderr, "FAILED %s variant %s: %s\n", s.name, variant.c_str(), err.message);
  *worst = 0;
  for (size_t i = 0; ok && i < d.sm.size(); ++i) {
    const double got = (*out)[d.sm[i] * N + d.sn[i]];
    const double e = std::fabs(got - d.ref[i]) / std::max(d.mag[i], 1e-30);
    *worst = std::max(*worst, std::isfinite(got) ? e : INFINITY);
  }
  if (buf != nullptr) api->buffer_free(buf);
  // --stats: the GEMM modules' pipeline statistics (plugin.cc LogPipelineStats), once each.
  static std::set<std::string> seen;
  std::istringstream lines(LabLog());
  for (std::string line; std::getline(lines, line);) {
    if (line.find("pipeline stats matmul_") != std::string::npos && seen.insert(line).second)
      std::printf("  %s\n", line.c_str());
  }
  LabLog().clear();
  api->device_close(dev);  // logs the profile
  // Per MATMUL, not per dispatch: x rows past the planes' scratch take several dispatches.
  double calls = 0, ms = 0;
  const double matmuls = static_cast<double>(nodes.size());
  *gemm_us = *split_us = 0;
  if (ProfileOf(LabLog(), variant == "off" ? "matmul_gemm.comp" : "matmul_coop.comp", &calls,
                &ms) &&
      calls > 0)
    *gemm_us = 1e3 * ms / matmuls;
  if (ProfileOf(LabLog(), "coop_split.comp", &calls, &ms) && calls > 0)
    *split_us = 1e3 * ms / matmuls;
  return ok;
}

void MakeData(const Shape& s, int64_t M, int samples, std::mt19937* rng, Data* d) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  d->M = M;
  d->x.resize(M * s.K);
  for (float& v : d->x) v = u(*rng) * std::exp2(static_cast<float>((*rng)() % 8) - 4.0f);
  d->w.resize(s.N * s.K);
  for (uint16_t& b : d->w) {
    const float f = u(*rng);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    b = static_cast<uint16_t>(bits >> 16);
  }
  d->sm.clear(), d->sn.clear(), d->ref.clear(), d->mag.clear();
  for (int i = 0; i < samples; ++i) {
    // The first and last rows/columns always (tile edges), the rest at random.
    const int64_t m = i == 0 ? 0 : i == 1 ? M - 1 : static_cast<int64_t>((*rng)() % M);
    const int64_t n = i == 0 ? 0 : i == 1 ? s.N - 1 : static_cast<int64_t>((*rng)() % s.N);
    double ref = 0, mag = 0;
    for (int64_t k = 0; k < s.K; ++k) {
      const double p = static_cast<double>(d->x[m * s.K + k]) * Bf16(d->w[n * s.K + k]);
      ref += p, mag += std::fabs(p);
    }
    d->sm.push_back(m), d->sn.push_back(n), d->ref.push_back(ref), d->mag.push_back(mag);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Lab lab;
  std::string shapes = "8b", variants = "0", ms = "512,2048";
  int samples = 512;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--reps")
      lab.reps = std::max(1, std::atoi(next().c_str()));
    else if (a == "--shapes")
      shapes = next();
    else if (a == "--variants")
      variants = next();
    else if (a == "--m")
      ms = next();
    else if (a == "--samples")
      samples = std::max(2, std::atoi(next().c_str()));
    else if (a == "--stats")
      setenv("TESSERA_VULKAN_PIPELINE_STATS", "1", 1);
    else {
      std::fprintf(stderr,
                   "usage: %s [--variants \"0;16;16@128,15;off\"] [--shapes 8b,1b,05b] [--m "
                   "512,2048] [--reps N] "
                   "[--samples N] [--stats]\n",
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
  // ';' between variants: a rule ("16@128,15") has commas of its own.
  const std::vector<std::string> vs = Split(variants, ';');
  std::printf("plugin %s; reps %d; bound %.1e of sum |x w|\n", path, lab.reps, lab.bound);
  std::printf("%-4s %5s %-20s %-7s %10s %9s %8s %10s %s\n", "", "M", "shape", "variant", "gemm us",
              "split us", "TFLOP/s", "err", "bits vs first");
  std::vector<double> weighted(vs.size(), 0.0);  // per variant: sum of per_layer x (gemm + split)
  std::mt19937 rng(42);
  for (const std::string& mstr : Split(ms, ',')) {
    const int64_t M = std::atoll(mstr.c_str());
    for (const Shape& s : AllShapes()) {
      if (("," + shapes + ",").find(std::string(",") + s.model + ",") == std::string::npos)
        continue;
      std::mt19937 shape_rng(rng());
      Data d;
      MakeData(s, M, samples, &shape_rng, &d);
      std::vector<float> first;
      for (size_t v = 0; v < vs.size(); ++v) {
        double gemm_us = 0, split_us = 0, worst = 0;
        std::vector<float> out;
        if (!lab.Run(s, d, vs[v], &gemm_us, &split_us, &worst, &out)) {
          ++lab.failures;
          std::printf("%-4s %5ld %-20s %-7s %10.1f %9.1f  FAILED run\n", s.model,
                      static_cast<long>(M), s.name, vs[v].c_str(), 0.0, 0.0);
          continue;
        }
        std::string bits = "-";
        if (v == 0) {
          first = std::move(out);
        } else if (first.size() == out.size()) {
          size_t diff = 0;
          for (size_t i = 0; i < out.size(); ++i) diff += std::memcmp(&out[i], &first[i], 4) != 0;
          bits = diff == 0 ? "same" : std::to_string(diff) + " differ";
        }
        const double us = gemm_us + split_us;
        const double tflops = us > 0 ? 2.0 * M * s.N * s.K / us / 1e6 : 0;
        const bool pass = worst <= lab.bound;
        if (!pass) ++lab.failures;
        weighted[v] += s.per_layer * us;
        std::printf("%-4s %5ld %-20s %-7s %10.1f %9.1f %8.1f %10.2e %s%s\n", s.model,
                    static_cast<long>(M), s.name, vs[v].c_str(), gemm_us, split_us, tflops, worst,
                    bits.c_str(), pass ? "" : "  FAILED bound");
        std::fflush(stdout);
      }
    }
  }
  std::printf("weighted layer time (us, per_layer x (gemm + split), all shapes and M):");
  for (size_t v = 0; v < vs.size(); ++v) std::printf(" %s=%.0f", vs[v].c_str(), weighted[v]);
  std::printf("\n%s (%d failures)\n", lab.failures == 0 ? "PASSED" : "FAILED", lab.failures);
  lab.api->destroy_context(lab.ctx);
  return lab.failures == 0 ? 0 : 1;
}
