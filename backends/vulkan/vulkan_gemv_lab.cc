// vulkan_gemv_lab: the decode GEMV (M = 1, bf16 weights) of the engine's model shapes timed
// alone on a Vulkan device, through the plugin's ABI (so it runs exactly the plugin's dispatch
// code, knobs included).
//
// Per shape one context + device is opened with TESSERA_VULKAN_PROFILE=1 (a timestamp pair
// around every dispatch; the plugin logs GPU time per shader when the device closes, which the
// lab reads back through the host log callback). The graph is `--reps` repetitions of the shape's
// nodes, all writing the same outputs (so every repetition is ordered after the previous one by
// a barrier, as a decode step's dependent GEMVs are), cycling over enough weight copies that
// the weights never sit in L2. "norm" shapes are RMS_NORM + 1..3 MATMULs over the normed row
// (the engine's q/k/v and gate/up: one fused dispatch); "plain" shapes a lone MATMUL (o, down).
//
// `--glu` adds the SWIGLU after the gate/up shapes (fused into their dispatch by default, the
// paired module the engine runs; its output joins the dumped outputs). `--rope` adds the q RoPE
// after the q/k/v shapes (neox, the model's head dim, position 1000; fused the same way).
//
// Same bits: `--dump FILE` writes every shape's outputs, `--check FILE` compares them with an
// earlier run's bit for bit (e.g. knob off, then knob on). Outputs are also checked against a
// double-precision reference (1e-4 relative).
//
//   TESSERA_VULKAN_PLUGIN=.../libtessera_backend_vulkan.so vulkan_gemv_lab [--reps N]
//       [--shapes 8b,1b,05b,lm8b] [--dump F] [--check F] [--copy-gbs 3006] [--l2-mb 256] [--glu]
//       [--rope]
// Knobs (TESSERA_VULKAN_DECODE_SKEW=1, ...) come from the environment as for the engine;
// TESSERA_VULKAN_PIPELINE_STATS=1 also prints the driver's statistics of the GEMV modules.
// TESSERA_VULKAN_LAB_READ=G times a plain read of the same weight bytes instead (every decode
// GEMV dispatch becomes l2_warm.comp over its weights, G workgroups of 256; the outputs are
// wrong, so the reference check fails by design): the bound each dispatch is compared with.

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "backends/vulkan/lab_plugin.h"
#include "tessera/plugin_api.h"

namespace {

using tessera::vulkan::lab::Align;

struct Shape {
  const char* model;  // 8b, 1b, 05b
  const char* name;
  int64_t K;
  std::vector<int64_t> ns;  // output rows of each MATMUL (a group shares x)
  bool norm;                // RMS_NORM before (fused into the GEMV dispatch)
  int64_t head_dim = 0;     // q/k/v: the q heads' size (--rope)
};

std::vector<Shape> AllShapes() {
  return {
      {"8b", "o 4096x4096", 4096, {4096}, false},
      {"8b", "down 4096x14336", 14336, {4096}, false},
      {"8b", "qkv 6144x4096 (4096+1024+1024, norm)", 4096, {4096, 1024, 1024}, true, 128},
      {"8b", "gate/up 2x14336x4096 (norm)", 4096, {14336, 14336}, true},
      {"1b", "o 2048x2048", 2048, {2048}, false},
      {"1b", "down 2048x8192", 8192, {2048}, false},
      {"1b", "qkv 3072x2048 (norm)", 2048, {2048, 512, 512}, true, 64},
      {"1b", "gate/up 2x8192x2048 (norm)", 2048, {8192, 8192}, true},
      {"05b", "o 896x896", 896, {896}, false},
      {"05b", "down 896x4864", 4864, {896}, false},
      {"05b", "qkv 1152x896 (norm)", 896, {896, 128, 128}, true, 64},
      {"05b", "gate/up 2x4864x896 (norm)", 896, {4864, 4864}, true},
      // Llama-3.1-8B's LM head (the final norm + vocabulary projection, 1 GB a copy): only when
      // asked for (--shapes lm8b).
      {"lm8b", "lm 128256x4096 (norm)", 4096, {128256}, true},
  };
}

namespace vlab = tessera::vulkan::lab;
using vlab::LabLog;

// Sum of the "<shader> ..." profile lines' (calls, ms) in the log (shader "matmul.comp", or
// "l2_warm.comp" for TESSERA_VULKAN_LAB_READ's plain reads); *modules: their names.
bool ParseProfile(const std::string& log, const std::string& shader, double* calls, double* ms,
                  std::string* modules) {
  *calls = 0, *ms = 0;
  modules->clear();
  size_t pos = 0;
  bool any = false;
  while ((pos = log.find("\n  " + shader, pos)) != std::string::npos) {
    const size_t eol = log.find('\n', pos + 1);
    const std::string line = log.substr(pos + 3, eol - pos - 3);
    const size_t c = line.find(" calls ");
    if (c != std::string::npos) {
      // "... <calls> calls <ms> ms <us> us/call"
      const size_t start = line.rfind(' ', line.find_last_not_of(' ', c - 1));
      *calls += std::atof(line.c_str() + start + 1);
      const std::string name = line.substr(0, line.find_last_not_of(' ', start) + 1);
      const size_t m = name.find("matmul.comp ");
      *modules +=
          (modules->empty() ? "" : ", ") + (m == std::string::npos ? name : name.substr(m + 12));
      *ms += std::atof(line.c_str() + c + 7);
      any = true;
    }
    pos = eol == std::string::npos ? log.size() : eol;
  }
  return any;
}

struct Lab {
  const tsr_plugin_api* api = nullptr;
  int reps = 100;
  double copy_gbs = 3006;                   // the H100's measured copy bandwidth (issue 6), GB/s
  uint64_t l2_mb = 256;                     // weight bytes cycled over, MiB (> the L2)
  bool glu = false;                         // SWIGLU after the gate/up shapes
  bool rope = false;                        // q RoPE after the q/k/v shapes
  std::vector<std::vector<float>> outputs;  // per shape: the parts' outputs (and norm out)
  int failures = 0;

  // Runs one shape on a fresh device; false when no device.
  bool Run(const Shape& s, std::mt19937* rng);
};

#define LAB_CHECK(cond, what)                                                  \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "FAILED %s: %s (%s)\n", s.name, what, err.message); \
      ++failures;                                                              \
      return true;                                                             \
    }                                                                          \
  } while (0)

bool Lab::Run(const Shape& s, std::mt19937* rng) {
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  tsr_plugin_ctx* ctx = nullptr;
  if (api->create_context(nullptr, 0, &ctx, &err) != TSR_OK) return false;
  int32_t count = 0;
  tsr_device* dev = nullptr;
  if (api->device_count(ctx, &count, &err) != TSR_OK || count == 0 ||
      api->device_open(ctx, 0, &dev, &err) != TSR_OK) {
    std::fprintf(stderr, "no device: %s\n", api->absence_reason(ctx));
    api->destroy_context(ctx);
    return false;
  }
  const int64_t K = s.K;
  const int parts = static_cast<int>(s.ns.size());
  const bool with_glu = glu && parts == 2 && s.norm && s.ns[0] == s.ns[1];
  const bool with_rope = rope && parts == 3 && s.norm && s.head_dim > 0;
  const int64_t D = s.head_dim;
  uint64_t wbytes = 0;
  for (int64_t n : s.ns) wbytes += static_cast<uint64_t>(n * K * 2);
  // Enough copies of the weights that a repetition never finds them in L2 (50 MiB on the H100).
  const int copies = static_cast<int>(std::max<uint64_t>(2, (l2_mb << 20) / wbytes + 1));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(K), nw(K);
  for (float& v : x) v = u(*rng);
  for (float& v : nw) v = u(*rng);
  std::vector<std::vector<uint16_t>> w(parts);
  for (int j = 0; j < parts; ++j) {
    w[j].resize(s.ns[j] * K);
    for (uint16_t& b : w[j]) {
      const float f = u(*rng);
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      b = static_cast<uint16_t>(bits >> 16);
    }
  }
  // Buffer A: x | norm weight | norm out | outs; one buffer per weight copy.
  std::vector<uint64_t> oo(parts);
  const uint64_t onw = Align(K * 4), ono = onw + Align(K * 4);
  uint64_t total = ono + Align(K * 4);
  for (int j = 0; j < parts; ++j) oo[j] = total, total += Align(s.ns[j] * 4);
  const uint64_t oglu = total;
  if (with_glu) total += Align(s.ns[0] * 4);
  // The RoPE's output, position and inverse frequencies.
  const uint64_t orope = total, opos = orope + Align(s.ns[0] * 4), oinv = opos + 256;
  if (with_rope) total = oinv + Align(D / 2 * 4);
  tsr_buffer* buf = nullptr;
  LAB_CHECK(api->buffer_alloc(dev, 0, total, &buf, &err) == TSR_OK, "alloc");
  LAB_CHECK(api->buffer_upload(buf, 0, x.data(), K * 4, nullptr, &err) == TSR_OK, "upload");
  LAB_CHECK(api->buffer_upload(buf, onw, nw.data(), K * 4, nullptr, &err) == TSR_OK, "upload");
  if (with_rope) {
    const int32_t pos = 1000;
    std::vector<float> inv(D / 2);
    for (int64_t i = 0; i < D / 2; ++i)
      inv[i] = static_cast<float>(std::pow(500000.0, -2.0 * static_cast<double>(i) / D));
    LAB_CHECK(api->buffer_upload(buf, opos, &pos, 4, nullptr, &err) == TSR_OK, "upload");
    LAB_CHECK(api->buffer_upload(buf, oinv, inv.data(), inv.size() * 4, nullptr, &err) == TSR_OK,
              "upload");
  }
  std::vector<uint64_t> ow(parts);
  uint64_t wtotal = 0;
  for (int j = 0; j < parts; ++j) ow[j] = wtotal, wtotal += Align(w[j].size() * 2);
  std::vector<tsr_buffer*> wbuf(copies, nullptr);
  for (tsr_buffer*& b : wbuf) {
    LAB_CHECK(api->buffer_alloc(dev, 0, wtotal, &b, &err) == TSR_OK, "alloc weights");
    for (int j = 0; j < parts; ++j) {
      LAB_CHECK(api->buffer_upload(b, ow[j], w[j].data(), w[j].size() * 2, nullptr, &err) == TSR_OK,
                "upload weights");
    }
  }
  // Tensors: 0 x, 1 norm weight, 2 norm out, 3.. outs, then per copy the parts' weights, then
  // the SWIGLU's output or the RoPE's input view (q's output as heads), output, position,
  // inverse frequencies.
  const int nt = 3 + parts + copies * parts + (with_glu ? 1 : 0) + (with_rope ? 4 : 0);
  std::vector<tsr_tensor> t(nt);
  for (tsr_tensor& ti : t) {
    ti.struct_size = sizeof(tsr_tensor), ti.buffer = buf, ti.ndim = 2;
    ti.dtype = TSR_DTYPE_F32, ti.ne[0] = 1, ti.ne[1] = K, ti.nb[0] = K * 4, ti.nb[1] = 4;
  }
  t[1].ndim = 1, t[1].ne[0] = K, t[1].nb[0] = 4, t[1].offset = onw;
  t[2].offset = ono;
  for (int j = 0; j < parts; ++j) {
    tsr_tensor& to = t[3 + j];
    to.ne[1] = s.ns[j], to.nb[0] = s.ns[j] * 4, to.offset = oo[j];
    for (int c = 0; c < copies; ++c) {
      tsr_tensor& tw = t[3 + parts + c * parts + j];
      tw.buffer = wbuf[c], tw.dtype = TSR_DTYPE_BF16, tw.ne[0] = s.ns[j], tw.ne[1] = K;
      tw.nb[0] = K * 2, tw.nb[1] = 2, tw.offset = ow[j];
    }
  }
  if (with_glu) {
    tsr_tensor& tg = t[nt - 1];
    tg.ne[1] = s.ns[0], tg.nb[0] = s.ns[0] * 4, tg.offset = oglu;
  }
  const int er = nt - 4;  // with_rope: the first RoPE tensor
  if (with_rope) {
    auto heads = [&](tsr_tensor& ti, uint64_t off) {
      ti.ndim = 3, ti.offset = off, ti.ne[0] = 1, ti.ne[1] = s.ns[0] / D, ti.ne[2] = D;
      ti.nb[0] = s.ns[0] * 4, ti.nb[1] = D * 4, ti.nb[2] = 4;
    };
    heads(t[er], oo[0]);
    heads(t[er + 1], orope);
    t[er + 2].ndim = 1, t[er + 2].dtype = TSR_DTYPE_I32, t[er + 2].ne[0] = 1;
    t[er + 2].nb[0] = 4, t[er + 2].offset = opos;
    t[er + 3].ndim = 1, t[er + 3].ne[0] = D / 2, t[er + 3].nb[0] = 4, t[er + 3].offset = oinv;
  }
  std::vector<tsr_node> nodes;
  for (int r = 0; r < reps; ++r) {
    const int c = r % copies;
    if (s.norm) {
      tsr_node nd{};
      nd.struct_size = sizeof(tsr_node), nd.op = TSR_OP_RMS_NORM, nd.n_inputs = 2;
      nd.inputs[0] = 0, nd.inputs[1] = 1, nd.output = 2, nd.fparams[0] = 1e-5f;
      nodes.push_back(nd);
    }
    for (int j = 0; j < parts; ++j) {
      tsr_node nd{};
      nd.struct_size = sizeof(tsr_node), nd.op = TSR_OP_MATMUL, nd.n_inputs = 2;
      nd.inputs[0] = s.norm ? 2 : 0, nd.inputs[1] = 3 + parts + c * parts + j, nd.output = 3 + j;
      nodes.push_back(nd);
    }
    if (with_glu) {
      tsr_node nd{};
      nd.struct_size = sizeof(tsr_node), nd.op = TSR_OP_SWIGLU, nd.n_inputs = 2;
      nd.inputs[0] = 3, nd.inputs[1] = 4, nd.output = nt - 1;
      nodes.push_back(nd);
    }
    if (with_rope) {
      tsr_node nd{};
      nd.struct_size = sizeof(tsr_node), nd.op = TSR_OP_ROPE, nd.n_inputs = 3;
      nd.inputs[0] = er, nd.inputs[1] = er + 2, nd.inputs[2] = er + 3, nd.output = er + 1;
      nd.iparams[0] = 0, nd.iparams[1] = static_cast<int32_t>(D), nd.fparams[0] = 1.0f;
      nodes.push_back(nd);
    }
  }
  const tsr_graph_view view{sizeof(tsr_graph_view), nt, t.data(),
                            static_cast<int32_t>(nodes.size()), nodes.data()};
  std::vector<int32_t> ids(nodes.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  const auto t0 = std::chrono::steady_clock::now();
  LAB_CHECK(api->execute(dev, &view, ids.data(), static_cast<int32_t>(ids.size()), nullptr, &err) ==
                TSR_OK,
            "execute");
  LAB_CHECK(api->device_synchronize(dev, &err) == TSR_OK, "synchronize");
  const double wall_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  // Outputs: the norm out (norm shapes), then each part's.
  std::vector<float> got;
  const int first = s.norm ? 2 : 3;
  for (int o = first; o < 3 + parts; ++o) {
    std::vector<float> v(t[o].ne[1]);
    LAB_CHECK(
        api->buffer_download(buf, t[o].offset, v.data(), v.size() * 4, nullptr, &err) == TSR_OK,
        "download");
    got.insert(got.end(), v.begin(), v.end());
  }
  std::vector<float> gl;
  if (with_glu || with_rope) {
    gl.resize(s.ns[0]);
    LAB_CHECK(api->buffer_download(buf, with_glu ? oglu : orope, gl.data(), gl.size() * 4, nullptr,
                                   &err) == TSR_OK,
              "download");
  }
  // Reference: double sums over the normed row (the device's own norm output) or x.
  const float* xin = s.norm ? got.data() : x.data();
  size_t off = s.norm ? K : 0;
  double worst = 0;
  for (int j = 0; j < parts; ++j) {
    for (int64_t n = 0; n < s.ns[j]; n += 7) {
      double ref = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        const uint32_t bits = static_cast<uint32_t>(w[j][n * K + k]) << 16;
        float wf;
        std::memcpy(&wf, &bits, 4);
        ref += static_cast<double>(xin[k]) * wf;
        mag += std::fabs(static_cast<double>(xin[k]) * wf);
      }
      worst = std::max(worst, std::fabs(got[off + n] - ref) / (1 + mag));
    }
    off += s.ns[j];
  }
  if (worst > 1e-5) {
    std::fprintf(stderr, "FAILED %s: off the double reference by %.3g of sum |x w|\n", s.name,
                 worst);
    ++failures;
  }
  got.insert(got.end(), gl.begin(), gl.end());
  outputs.push_back(got);
  for (tsr_buffer* b : wbuf) api->buffer_free(b);
  api->buffer_free(buf);
  // TESSERA_VULKAN_PIPELINE_STATS=1: the driver's statistics of the shape's GEMV modules
  // (registers, shared memory, ...), logged when their pipelines were created.
  for (size_t pos = 0;
       (pos = LabLog().find("pipeline stats matmul.comp", pos)) != std::string::npos;) {
    const size_t eol = LabLog().find('\n', pos);
    std::printf("%-4s %s\n", s.model, LabLog().substr(pos, eol - pos).c_str());
    pos = eol == std::string::npos ? LabLog().size() : eol;
  }
  LabLog().clear();
  api->device_close(dev);  // logs the profile
  api->destroy_context(ctx);
  double calls = 0, ms = 0;
  std::string modules;
  if ((!ParseProfile(LabLog(), "matmul.comp", &calls, &ms, &modules) &&
       !ParseProfile(LabLog(), "l2_warm.comp", &calls, &ms, &modules)) ||
      calls <= 0) {
    std::printf(
        "%-4s %-40s no matmul profile (TESSERA_VULKAN_PROFILE=1 and timestamps needed); "
        "wall %.3f ms for %d reps\n",
        s.model, s.name, wall_ms, reps);
    return true;
  }
  // The shape's other dispatches (a separate RMS_NORM, SWIGLU, RoPE: not in the time above).
  for (size_t pos = 0; (pos = LabLog().find("\n  ", pos)) != std::string::npos;) {
    const size_t eol = LabLog().find('\n', pos + 1);
    const std::string line = LabLog().substr(pos + 3, eol - pos - 3);
    if (line.find(" calls ") != std::string::npos && line.rfind("matmul.comp", 0) != 0 &&
        line.rfind("l2_warm.comp", 0) != 0)
      std::printf("%-4s   also %s\n", s.model, line.c_str());
    pos = eol == std::string::npos ? LabLog().size() : eol;
  }
  const double us = 1e3 * ms / calls;
  const double dispatch_bytes = static_cast<double>(wbytes) * reps / calls;
  const double gbs = dispatch_bytes / us / 1e3;
  std::printf(
      "%-4s %-40s %6.0f dispatches %9.2f us/dispatch %8.1f GB/s %5.3f of copy  (wall %.2f ms; "
      "%s)\n",
      s.model, s.name, calls, us, gbs, gbs / copy_gbs, wall_ms, modules.c_str());
  std::fflush(stdout);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Lab lab;
  std::string shapes = "8b,1b,05b", dump, check;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--reps")
      lab.reps = std::max(1, std::atoi(next().c_str()));
    else if (a == "--shapes")
      shapes = next();
    else if (a == "--dump")
      dump = next();
    else if (a == "--check")
      check = next();
    else if (a == "--copy-gbs")
      lab.copy_gbs = std::atof(next().c_str());
    else if (a == "--l2-mb")
      lab.l2_mb = std::max(1, std::atoi(next().c_str()));
    else if (a == "--glu")
      lab.glu = true;
    else if (a == "--rope")
      lab.rope = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--reps N] [--shapes 8b,1b,05b,lm8b] [--dump F] [--check F] "
                   "[--copy-gbs G] [--l2-mb M] [--glu] [--rope]\n",
                   argv[0]);
      return 2;
    }
  }
  const char* path = nullptr;
  lab.api = vlab::OpenLabPlugin(&path);
  if (lab.api == nullptr) return 2;
  std::printf("knobs:");
  for (const char* k :
       {"TESSERA_VULKAN_DECODE_SKEW", "TESSERA_VULKAN_DECODE_SKEW_PLAIN",
        "TESSERA_VULKAN_DECODE_XSPLIT", "TESSERA_VULKAN_DECODE_COALESCE",
        "TESSERA_VULKAN_DECODE_ROWS", "TESSERA_VULKAN_DECODE_SPLIT",
        "TESSERA_VULKAN_DECODE_KPIECES", "TESSERA_VULKAN_NORM_BATCH", "TESSERA_VULKAN_FUSE_NORM",
        "TESSERA_VULKAN_FUSE_SWIGLU", "TESSERA_VULKAN_FUSE_ROPE_Q", "TESSERA_VULKAN_PERSIST",
        "TESSERA_VULKAN_LAB_READ"}) {
    if (const char* v = std::getenv(k)) std::printf(" %s=%s", k + 15, v);
  }
  std::printf("; reps %d\n", lab.reps);
  std::mt19937 rng(42);
  for (const Shape& s : AllShapes()) {
    if (("," + shapes + ",").find(std::string(",") + s.model + ",") == std::string::npos) continue;
    std::mt19937 shape_rng(rng());  // the same data whatever shapes run
    if (!lab.Run(s, &shape_rng)) return 1;
  }
  // The outputs as raw floats, shape after shape.
  if (!dump.empty()) {
    std::ofstream f(dump, std::ios::binary);
    for (const auto& v : lab.outputs)
      f.write(reinterpret_cast<const char*>(v.data()), v.size() * 4);
  }
  if (!check.empty()) {
    std::ifstream f(check, std::ios::binary);
    size_t diff = 0, total = 0;
    for (const auto& v : lab.outputs) {
      std::vector<float> want(v.size());
      f.read(reinterpret_cast<char*>(want.data()), want.size() * 4);
      if (!f) {
        std::fprintf(stderr, "FAILED: %s is shorter than this run's outputs\n", check.c_str());
        return 1;
      }
      for (size_t i = 0; i < v.size(); ++i) diff += std::memcmp(&v[i], &want[i], 4) != 0;
      total += v.size();
    }
    std::printf("same bits as %s: %zu of %zu outputs differ\n", check.c_str(), diff, total);
    if (diff != 0) ++lab.failures;
  }
  std::printf("%s (%d failures)\n", lab.failures == 0 ? "PASSED" : "FAILED", lab.failures);
  return lab.failures == 0 ? 0 : 1;
}
