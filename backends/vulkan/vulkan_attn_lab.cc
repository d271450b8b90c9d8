// vulkan_attn_lab: decode attention (PAGED_ATTENTION, one query row a sequence) of the engine's
// head shapes on a Vulkan device, through the plugin's ABI (so it runs exactly the plugin's
// dispatch code, knobs included: TESSERA_VULKAN_ATTN_PARTS / _SPLIT_GROUPS).
//
// Bits: per shape, every key count 1..--max-keys as its own sequence (batches of --batch
// sequences a node, so the batched-decode grids run too), and the timed T = 1 rows below; all
// outputs go to --dump FILE or are compared with an earlier run's file bit for bit (--check FILE),
// and against a double-precision reference (2e-5 of the output scale).
// Speed: per shape and key count of --keys, --reps T = 1 calls in one graph (each ordered after
// the previous by its output: a decode step's layers), cycling over --copies disjoint block
// sets of the cache so that the keys are not all in L2; the plugin's profile gives GPU us a call.
//
//   TESSERA_VULKAN_PLUGIN=.../libtessera_backend_vulkan.so vulkan_attn_lab [--shapes 8b,1b,05b]
//       [--keys 16,144,512,2048] [--reps 200] [--max-keys 2048] [--batch 128] [--copies 16]
//       [--kv f32|bf16] [--dump F] [--check F]

#include <algorithm>
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

namespace vlab = tessera::vulkan::lab;
using vlab::Align;
using vlab::LabLog;

struct Shape {
  const char* model;
  int64_t Hq, Hkv, D;
};

constexpr Shape kShapes[] = {{"8b", 32, 8, 128}, {"1b", 32, 8, 64}, {"05b", 14, 2, 64}};
constexpr int64_t kBlock = 16;  // the engine's KV block size

// One shape's host data: the cache (`copies` disjoint block sets), q rows, block tables.
struct Data {
  int64_t mb = 0, nb = 0;     // blocks a sequence at most; cache blocks
  std::vector<uint8_t> k, v;  // (nb, kBlock, Hkv, D) f32 or bf16
  std::vector<float> q;       // (rows, Hq, D): the bits rows, then one a timed key count
  std::vector<int32_t> perm;  // copy c's block order: perm[c mb .. (c + 1) mb)
};

struct Lab {
  const tsr_plugin_api* api = nullptr;
  std::vector<int64_t> keys = {16, 144, 512, 2048};
  int reps = 200, max_keys = 2048, batch = 128, copies = 16;
  bool bf16 = false;
  std::vector<float> outputs;
  int failures = 0;
  // Runs sequences with key counts lens (query rows row0 ..) in nodes of `per` sequences, on a
  // fresh device; node i uses copy copy_of(i)'s blocks. Appends the outputs of the nodes' rows
  // to *out (the last node's, for repeated timed nodes); *us: GPU us an attention call.
  bool Job(const Shape& s, const Data& d, int64_t row0, const std::vector<int32_t>& lens,
           int64_t per, int nodes_n, int (*copy_of)(int, int), std::vector<float>* out, double* us,
           std::string* names);
  bool Run(const Shape& s, std::mt19937* rng);
};
// GPU us a call of the attention dispatches in the plugin's profile (-1: none).
double AttnUs(const std::string& log, std::string* names) {
  double calls = 0, ms = 0;
  for (size_t pos = 0; (pos = log.find("\n  attention.comp", pos)) != std::string::npos;) {
    const size_t eol = log.find('\n', pos + 1);
    const std::string line = log.substr(pos + 3, eol - pos - 3);
    const size_t c = line.find(" calls ");
    if (c != std::string::npos) {
      const size_t start = line.rfind(' ', line.find_last_not_of(' ', c - 1));
      calls += std::atof(line.c_str() + start + 1);
      ms += std::atof(line.c_str() + c + 7);
      *names += line.substr(0, line.find_last_not_of(' ', start) + 1) + "; ";
    }
    pos = eol == std::string::npos ? log.size() : eol;
  }
  return calls > 0 ? 1e3 * ms / calls : -1;
}

#define LAB_CHECK(cond, what)                                                   \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "FAILED %s: %s (%s)\n", s.model, what, err.message); \
      ++failures;                                                               \
      ok = false;                                                               \
    }                                                                           \
  } while (0)

bool Lab::Job(const Shape& s, const Data& d, int64_t row0, const std::vector<int32_t>& lens,
              int64_t per, int nodes_n, int (*copy_of)(int, int), std::vector<float>* out,
              double* us, std::string* names) {
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
  bool ok = true;
  const int64_t Hq = s.Hq, Hkv = s.Hkv, D = s.D, n = static_cast<int64_t>(lens.size());
  const int64_t mb = d.mb;
  // Table rows: sequence j of node i uses copy copy_of(i)'s order; a node's rows are contiguous.
  std::vector<int32_t> tab(nodes_n * per * mb), cuq(per + 1);
  for (int i = 0; i < nodes_n; ++i) {
    const int c = copy_of(i, copies);
    for (int64_t j = 0; j < per; ++j)
      std::copy(d.perm.begin() + c * mb, d.perm.begin() + (c + 1) * mb,
                tab.begin() + (i * per + j) * mb);
  }
  for (int64_t i = 0; i <= per; ++i) cuq[i] = static_cast<int32_t>(i);
  const uint64_t rowb = static_cast<uint64_t>(Hq * D * 4);
  const uint64_t oq = 0, oo = Align(n * rowb), ol = oo + Align(n * rowb), ocu = ol + Align(n * 4),
                 otab = ocu + Align(cuq.size() * 4);
  const uint64_t total = otab + Align(tab.size() * 4);
  tsr_buffer *buf = nullptr, *kb = nullptr, *vb = nullptr;
  LAB_CHECK(api->buffer_alloc(dev, 0, total, &buf, &err) == TSR_OK, "alloc");
  LAB_CHECK(ok && api->buffer_alloc(dev, 0, d.k.size(), &kb, &err) == TSR_OK, "alloc k");
  LAB_CHECK(ok && api->buffer_alloc(dev, 0, d.v.size(), &vb, &err) == TSR_OK, "alloc v");
  auto up = [&](tsr_buffer* b, uint64_t off, const void* p, uint64_t bytes) {
    LAB_CHECK(ok && api->buffer_upload(b, off, p, bytes, nullptr, &err) == TSR_OK, "upload");
  };
  up(buf, oq, d.q.data() + row0 * Hq * D, n * rowb);
  up(buf, ol, lens.data(), n * 4);
  up(buf, ocu, cuq.data(), cuq.size() * 4);
  up(buf, otab, tab.data(), tab.size() * 4);
  up(kb, 0, d.k.data(), d.k.size());
  up(vb, 0, d.v.data(), d.v.size());
  std::vector<tsr_tensor> t;
  auto tensor = [&](tsr_buffer* b, int dtype, uint64_t off, std::vector<int64_t> ne) {
    tsr_tensor ti{};
    ti.struct_size = sizeof(tsr_tensor), ti.buffer = b, ti.offset = off;
    ti.dtype = static_cast<tsr_dtype>(dtype);
    ti.ndim = static_cast<int32_t>(ne.size());
    int64_t el = dtype == TSR_DTYPE_BF16 ? 2 : 4;
    for (int i = ti.ndim - 1; i >= 0; --i) ti.ne[i] = ne[i], ti.nb[i] = el, el *= ne[i];
    t.push_back(ti);
    return static_cast<int32_t>(t.size() - 1);
  };
  const int kvt = bf16 ? TSR_DTYPE_BF16 : TSR_DTYPE_F32;
  tensor(kb, kvt, 0, {d.nb, kBlock, Hkv, D});
  tensor(vb, kvt, 0, {d.nb, kBlock, Hkv, D});
  std::vector<tsr_node> nodes;
  for (int i = 0; i < nodes_n; ++i) {
    // Node i: sequences (i per) mod n .. of the rows (timed nodes repeat the same row).
    const int64_t r0 = (i * per) % n;
    const int32_t iq = tensor(buf, TSR_DTYPE_F32, oq + r0 * rowb, {per, Hq, D});
    const int32_t io = tensor(buf, TSR_DTYPE_F32, oo + r0 * rowb, {per, Hq, D});
    const int32_t itab = tensor(buf, TSR_DTYPE_I32, otab + i * per * mb * 4, {per, mb});
    const int32_t il = tensor(buf, TSR_DTYPE_I32, ol + r0 * 4, {per});
    const int32_t icu = tensor(buf, TSR_DTYPE_I32, ocu, {per + 1});
    tsr_node nd{};
    nd.struct_size = sizeof(tsr_node), nd.op = TSR_OP_PAGED_ATTENTION, nd.n_inputs = 6;
    nd.inputs[0] = iq, nd.inputs[1] = 0, nd.inputs[2] = 1, nd.inputs[3] = itab;
    nd.inputs[4] = il, nd.inputs[5] = icu, nd.output = io;
    nd.iparams[0] = 1, nd.fparams[0] = static_cast<float>(1.0 / std::sqrt(double(D)));
    nodes.push_back(nd);
  }
  if (ok) {
    const tsr_graph_view view{sizeof(tsr_graph_view), static_cast<int32_t>(t.size()), t.data(),
                              static_cast<int32_t>(nodes.size()), nodes.data()};
    std::vector<int32_t> ids(nodes.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
    LAB_CHECK(api->execute(dev, &view, ids.data(), static_cast<int32_t>(ids.size()), nullptr,
                           &err) == TSR_OK,
              "execute");
    LAB_CHECK(ok && api->device_synchronize(dev, &err) == TSR_OK, "synchronize");
    std::vector<float> o(n * Hq * D);
    LAB_CHECK(ok && api->buffer_download(buf, oo, o.data(), o.size() * 4, nullptr, &err) == TSR_OK,
              "download");
    out->insert(out->end(), o.begin(), o.end());
  }
  if (buf) api->buffer_free(buf);
  if (kb) api->buffer_free(kb);
  if (vb) api->buffer_free(vb);
  // TESSERA_VULKAN_PIPELINE_STATS=1: the attention modules' statistics, each line once.
  static std::string seen;
  for (size_t pos = 0;
       (pos = LabLog().find("pipeline stats attention", pos)) != std::string::npos;) {
    const size_t eol = LabLog().find('\n', pos);
    const std::string line = LabLog().substr(pos, eol - pos);
    if (seen.find(line) == std::string::npos) {
      std::printf("%s\n", line.c_str());
      seen += line + "\n";
    }
    pos = eol;
  }
  LabLog().clear();
  api->device_close(dev);  // logs the profile
  api->destroy_context(ctx);
  names->clear();
  *us = AttnUs(LabLog(), names);
  return true;
}

int CopyZero(int, int) {
  return 0;
}
int CopyCycle(int i, int copies) {
  return i % copies;
}

bool Lab::Run(const Shape& s, std::mt19937* rng) {
  const int64_t Hq = s.Hq, Hkv = s.Hkv, D = s.D, es = bf16 ? 2 : 4;
  const int64_t nt = static_cast<int64_t>(keys.size());
  const int64_t maxk = std::max<int64_t>(max_keys, *std::max_element(keys.begin(), keys.end()));
  Data d;
  d.mb = (maxk + kBlock - 1) / kBlock;
  d.nb = d.mb * copies;
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  auto fill = [&](std::vector<uint8_t>* v, int64_t n) {
    v->resize(n * es);
    for (int64_t i = 0; i < n; ++i) {
      const float f = u(*rng);
      uint32_t b;
      std::memcpy(&b, &f, 4);
      if (bf16) {
        const uint16_t h = static_cast<uint16_t>(b >> 16);
        std::memcpy(v->data() + i * 2, &h, 2);
      } else {
        std::memcpy(v->data() + i * 4, &f, 4);
      }
    }
  };
  fill(&d.k, d.nb * kBlock * Hkv * D);
  fill(&d.v, d.nb * kBlock * Hkv * D);
  d.q.resize((max_keys + nt) * Hq * D);
  for (float& f : d.q) f = 2.0f * u(*rng);
  d.perm.resize(d.nb);
  for (int c = 0; c < copies; ++c) {
    for (int64_t i = 0; i < d.mb; ++i) d.perm[c * d.mb + i] = static_cast<int32_t>(c * d.mb + i);
    std::shuffle(d.perm.begin() + c * d.mb, d.perm.begin() + (c + 1) * d.mb, *rng);
  }
  // Bits: key counts 1..max_keys, `batch` sequences a node (copy 0).
  std::vector<int32_t> lens(max_keys);
  for (int i = 0; i < max_keys; ++i) lens[i] = i + 1;
  std::vector<float> got;
  double us = 0;
  std::string names;
  const int64_t per = std::min<int64_t>(batch, max_keys);
  if (max_keys % per != 0) {
    std::fprintf(stderr, "--max-keys must be a multiple of --batch\n");
    return false;
  }
  if (!Job(s, d, 0, lens, per, static_cast<int>(max_keys / per), CopyZero, &got, &us, &names))
    return false;
  // Timed: per key count, reps T = 1 calls cycling over the copies (the last one: copy
  // (reps - 1) % copies, whose output is kept).
  std::vector<int64_t> rows(nt);
  std::vector<double> times(nt);
  std::vector<std::string> modules(nt);
  for (int64_t i = 0; i < nt; ++i) {
    std::vector<float> o;
    if (!Job(s, d, max_keys + i, {static_cast<int32_t>(keys[i])}, 1, reps, CopyCycle, &o, &times[i],
             &modules[i]))
      return false;
    got.insert(got.end(), o.begin(), o.end());
  }
  // Reference (double) for a sample of rows: bits rows k = 1, 2, 3, 17, 33, ..., the timed rows.
  auto ref_check = [&](int64_t row, int64_t nkeys, int c, const float* o) {
    double worst = 0;
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t hk = h / (Hq / Hkv);
      const float* qr = d.q.data() + (row * Hq + h) * D;
      std::vector<double> sc(nkeys);
      double mx = -1e300;
      auto at = [&](const std::vector<uint8_t>& m, int64_t j, int64_t e) {
        const int64_t blk = d.perm[c * d.mb + j / kBlock], off = j % kBlock;
        const int64_t i = ((blk * kBlock + off) * Hkv + hk) * D + e;
        if (!bf16) {
          float f;
          std::memcpy(&f, m.data() + i * 4, 4);
          return static_cast<double>(f);
        }
        uint16_t b;
        std::memcpy(&b, m.data() + i * 2, 2);
        return static_cast<double>(vlab::Bf16(b));
      };
      for (int64_t j = 0; j < nkeys; ++j) {
        double dot = 0;
        for (int64_t e = 0; e < D; ++e) dot += qr[e] * at(d.k, j, e);
        sc[j] = dot / std::sqrt(double(D));
        mx = std::max(mx, sc[j]);
      }
      double l = 0;
      for (double& x : sc) l += (x = std::exp(x - mx));
      for (int64_t e = 0; e < D; ++e) {
        double a = 0;
        for (int64_t j = 0; j < nkeys; ++j) a += sc[j] * at(d.v, j, e);
        worst = std::max(worst, std::fabs(a / l - o[h * D + e]));
      }
    }
    if (worst > 2e-5) {
      std::fprintf(stderr, "FAILED %s: %lld keys off the double reference by %.3g\n", s.model,
                   static_cast<long long>(nkeys), worst);
      ++failures;
    }
  };
  for (int64_t k = 1; k <= max_keys; k = k < 4 ? k + 1 : k * 2 + 1)
    ref_check(k - 1, k, 0, got.data() + (k - 1) * Hq * D);
  for (int64_t i = 0; i < nt; ++i)
    ref_check(max_keys + i, keys[i], (reps - 1) % copies, got.data() + (max_keys + i) * Hq * D);
  for (int64_t i = 0; i < nt; ++i)
    std::printf("%-4s Hq %2lld Hkv %lld D %3lld  %5lld keys  %8.2f us/call  (%s)\n", s.model,
                static_cast<long long>(Hq), static_cast<long long>(Hkv), static_cast<long long>(D),
                static_cast<long long>(keys[i]), times[i], modules[i].c_str());
  std::fflush(stdout);
  outputs.insert(outputs.end(), got.begin(), got.end());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Lab lab;
  std::string shapes = "8b,1b,05b", dump, check;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--reps") {
      lab.reps = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--shapes") {
      shapes = next();
    } else if (a == "--keys") {
      lab.keys.clear();
      for (const std::string& k : vlab::Split(next(), ','))
        lab.keys.push_back(std::max(1, std::atoi(k.c_str())));
    } else if (a == "--max-keys") {
      lab.max_keys = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--batch") {
      lab.batch = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--copies") {
      lab.copies = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--kv") {
      lab.bf16 = next() == "bf16";
    } else if (a == "--dump") {
      dump = next();
    } else if (a == "--check") {
      check = next();
    } else {
      std::fprintf(stderr,
                   "usage: %s [--shapes 8b,1b,05b] [--keys 16,144,512,2048] [--reps N] "
                   "[--max-keys N] [--batch N] [--copies N] [--kv f32|bf16] [--dump F] "
                   "[--check F]\n",
                   argv[0]);
      return 2;
    }
  }
  if (lab.keys.empty()) lab.keys = {16};
  const char* path = nullptr;
  lab.api = vlab::OpenLabPlugin(&path);
  if (lab.api == nullptr) return 2;
  std::printf("knobs:");
  for (const char* k : {"TESSERA_VULKAN_ATTN_PARTS", "TESSERA_VULKAN_ATTN_SPLIT_GROUPS",
                        "TESSERA_VULKAN_ATTN_SUBGROUPS", "TESSERA_VULKAN_ATTN_FAST"}) {
    if (const char* v = std::getenv(k)) std::printf(" %s=%s", k + 15, v);
  }
  std::printf("; reps %d, kv %s, 1..%d keys in batches of %d\n", lab.reps,
              lab.bf16 ? "bf16" : "f32", lab.max_keys, lab.batch);
  std::mt19937 rng(42);
  for (const Shape& s : kShapes) {
    if (("," + shapes + ",").find(std::string(",") + s.model + ",") == std::string::npos) continue;
    std::mt19937 shape_rng(rng());
    if (!lab.Run(s, &shape_rng)) return 1;
  }
  if (!dump.empty()) {
    std::ofstream f(dump, std::ios::binary);
    f.write(reinterpret_cast<const char*>(lab.outputs.data()), lab.outputs.size() * 4);
  }
  if (!check.empty()) {
    std::ifstream f(check, std::ios::binary);
    std::vector<float> want(lab.outputs.size());
    f.read(reinterpret_cast<char*>(want.data()), want.size() * 4);
    if (!f) {
      std::fprintf(stderr, "FAILED: %s is shorter than this run's outputs\n", check.c_str());
      return 1;
    }
    size_t diff = 0;
    for (size_t i = 0; i < want.size(); ++i) diff += std::memcmp(&want[i], &lab.outputs[i], 4) != 0;
    std::printf("same bits as %s: %zu of %zu outputs differ\n", check.c_str(), diff, want.size());
    if (diff != 0) ++lab.failures;
  }
  std::printf("%s (%d failures)\n", lab.failures == 0 ? "PASSED" : "FAILED", lab.failures);
  return lab.failures == 0 ? 0 : 1;
}
