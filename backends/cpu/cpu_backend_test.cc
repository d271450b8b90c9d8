// Tests of the CPU backend plugin through its C ABI only: the plugin is dlopen()ed from
// $TESSERA_CPU_PLUGIN exactly as the host loads it. Covers init/options/devices/buffers, a few
// ops against hand-computed values, supports_op robustness, and the batch-invariance rules
// (matmul rows and attention sequences are bit-identical whatever else is in the call).
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "hwy/targets.h"
#include "tessera/plugin_api.h"
#include "tessera/quant_formats.h"

namespace {

struct Plugin {
  void* handle = nullptr;
  const tsr_plugin_api* api = nullptr;
  tsr_plugin_init_fn init = nullptr;
  tsr_plugin_probe_fn probe = nullptr;
};

std::vector<std::string>* LogLines() {
  static auto* lines = new std::vector<std::string>();
  return lines;
}

void HostLog(void* /*user*/, tsr_log_level /*level*/, const char* message) {
  LogLines()->push_back(message);
}

tsr_host_api MakeHost(uint16_t major = TSR_ABI_MAJOR) {
  tsr_host_api host{};
  host.struct_size = sizeof(host);
  host.abi_major = major;
  host.abi_minor = TSR_ABI_MINOR;
  host.log = HostLog;
  return host;
}

const Plugin& GetPlugin() {
  static Plugin* p = [] {
    auto* pl = new Plugin();
    const char* path = std::getenv("TESSERA_CPU_PLUGIN");
    if (path == nullptr) return pl;
    pl->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (pl->handle == nullptr) return pl;
    pl->init = reinterpret_cast<tsr_plugin_init_fn>(dlsym(pl->handle, TSR_PLUGIN_INIT_SYMBOL));
    pl->probe = reinterpret_cast<tsr_plugin_probe_fn>(dlsym(pl->handle, TSR_PLUGIN_PROBE_SYMBOL));
    if (pl->init != nullptr) {
      const tsr_host_api host = MakeHost();
      tsr_error err{};
      err.struct_size = sizeof(err);
      pl->api = pl->init(&host, &err);
    }
    return pl;
  }();
  return *p;
}

tsr_error NewError() {
  tsr_error e{};
  e.struct_size = sizeof(e);
  return e;
}

// A context + device with the given thread count, closed on destruction.
class Device {
 public:
  // int8_dot: the context option of that name (off, on, portable), or null to leave it out.
  explicit Device(int threads, const char* int8_dot = nullptr) : api_(GetPlugin().api) {
    const std::string t = std::to_string(threads);
    tsr_option opts[2] = {{sizeof(tsr_option), "threads", t.c_str()},
                          {sizeof(tsr_option), "int8_dot", int8_dot}};
    tsr_error err = NewError();
    EXPECT_EQ(api_->create_context(opts, int8_dot != nullptr ? 2 : 1, &ctx_, &err), TSR_OK)
        << err.message;
    EXPECT_EQ(api_->device_open(ctx_, 0, &dev_, &err), TSR_OK) << err.message;
  }
  ~Device() {
    api_->device_close(dev_);
    api_->destroy_context(ctx_);
  }
  tsr_device* dev() const { return dev_; }
  tsr_plugin_ctx* ctx() const { return ctx_; }

 private:
  const tsr_plugin_api* api_;
  tsr_plugin_ctx* ctx_ = nullptr;
  tsr_device* dev_ = nullptr;
};

// Builds a graph view of tensors in device buffers and runs single nodes on it.
class Graph {
 public:
  explicit Graph(tsr_device* dev) : api_(GetPlugin().api), dev_(dev) {}
  ~Graph() {
    for (tsr_buffer* b : buffers_) api_->buffer_free(b);
  }

  // A tensor over `bytes` (copied into a new buffer) with explicit strides.
  int AddRaw(tsr_dtype dtype, std::vector<int64_t> ne, std::vector<int64_t> nb, const void* bytes,
             size_t size) {
    tsr_buffer* buf = nullptr;
    tsr_error err = NewError();
    EXPECT_EQ(api_->buffer_alloc(dev_, 0, size, &buf, &err), TSR_OK) << err.message;
    if (size > 0) {
      EXPECT_EQ(api_->buffer_upload(buf, 0, bytes, size, nullptr, &err), TSR_OK) << err.message;
    }
    buffers_.push_back(buf);
    tsr_tensor t{};
    t.struct_size = sizeof(t);
    t.dtype = dtype;
    t.ndim = static_cast<int32_t>(ne.size());
    for (size_t i = 0; i < ne.size(); ++i) {
      t.ne[i] = ne[i];
      t.nb[i] = nb[i];
    }
    t.buffer = buf;
    tensors_.push_back(t);
    return static_cast<int>(tensors_.size()) - 1;
  }

  // A contiguous tensor of a plain dtype (element size es).
  template <typename T>
  int Add(tsr_dtype dtype, std::vector<int64_t> ne, const std::vector<T>& data) {
    std::vector<int64_t> nb(ne.size());
    int64_t s = sizeof(T);
    for (int i = static_cast<int>(ne.size()) - 1; i >= 0; --i) {
      nb[i] = s;
      s *= ne[i];
    }
    return AddRaw(dtype, ne, nb, data.data(), data.size() * sizeof(T));
  }
  int F32(std::vector<int64_t> ne, const std::vector<float>& data) {
    return Add(TSR_DTYPE_F32, ne, data);
  }
  int I32(std::vector<int64_t> ne, const std::vector<int32_t>& data) {
    return Add(TSR_DTYPE_I32, ne, data);
  }
  int ZerosF32(std::vector<int64_t> ne) {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    return F32(ne, std::vector<float>(static_cast<size_t>(n), 0.0f));
  }
  // The f32 tensor t (shape ne) copied into a new tensor of a 16-bit dtype (bf16, f16).
  int Copied16(int t, tsr_dtype dtype, std::vector<int64_t> ne) {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    const int out = Add(dtype, ne, std::vector<uint16_t>(static_cast<size_t>(n)));
    EXPECT_EQ(Run(Node(TSR_OP_COPY, {t}, out)), TSR_OK);
    return out;
  }
  // A contiguous block-quantized [rows, k] tensor from raw block bytes.
  int Quant(tsr_dtype dtype, int64_t rows, int64_t k, const std::vector<uint8_t>& bytes) {
    const int64_t row_bytes = k / 32 * (dtype == TSR_DTYPE_Q8_B32 ? 34 : 18);
    return AddRaw(dtype, {rows, k}, {row_bytes, 0}, bytes.data(), bytes.size());
  }

  tsr_node Node(tsr_op op, std::vector<int> inputs, int output) const {
    tsr_node n{};
    n.struct_size = sizeof(n);
    n.op = op;
    n.n_inputs = static_cast<int32_t>(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) n.inputs[i] = inputs[i];
    n.output = output;
    return n;
  }

  tsr_graph_view View(const std::vector<tsr_node>& nodes) const {
    tsr_graph_view v{};
    v.struct_size = sizeof(v);
    v.n_tensors = static_cast<int32_t>(tensors_.size());
    v.tensors = tensors_.data();
    v.n_nodes = static_cast<int32_t>(nodes.size());
    v.nodes = nodes.data();
    return v;
  }

  tsr_status Run(const tsr_node& node, std::string* message = nullptr) {
    std::vector<tsr_node> nodes{node};
    const tsr_graph_view v = View(nodes);
    const int32_t id = 0;
    tsr_error err = NewError();
    const tsr_status s = api_->execute(dev_, &v, &id, 1, nullptr, &err);
    if (message != nullptr) *message = err.message;
    EXPECT_TRUE(s == TSR_OK || message != nullptr) << err.message;
    return s;
  }

  bool Supports(const tsr_node& node) {
    std::vector<tsr_node> nodes{node};
    const tsr_graph_view v = View(nodes);
    tsr_bool ok = 0;
    tsr_error err = NewError();
    EXPECT_EQ(api_->supports_op(dev_, &v, 0, &ok, &err), TSR_OK) << err.message;
    return ok != 0;
  }

  std::vector<float> Read(int t) {
    const tsr_tensor& tt = tensors_[t];
    int64_t n = 1;
    for (int i = 0; i < tt.ndim; ++i) n *= tt.ne[i];
    std::vector<float> out(static_cast<size_t>(n));
    tsr_error err = NewError();
    EXPECT_EQ(api_->buffer_download(tt.buffer, 0, out.data(), out.size() * 4, nullptr, &err),
              TSR_OK);
    return out;
  }
  std::vector<uint8_t> ReadBytes(int t, size_t size) {
    std::vector<uint8_t> out(size);
    tsr_error err = NewError();
    EXPECT_EQ(api_->buffer_download(tensors_[t].buffer, 0, out.data(), size, nullptr, &err),
              TSR_OK);
    return out;
  }
  tsr_tensor& tensor(int t) { return tensors_[t]; }

 private:
  const tsr_plugin_api* api_;
  tsr_device* dev_;
  std::vector<tsr_tensor> tensors_;
  std::vector<tsr_buffer*> buffers_;
};

class CpuBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(std::getenv("TESSERA_CPU_PLUGIN"), nullptr) << "set TESSERA_CPU_PLUGIN";
    ASSERT_NE(GetPlugin().handle, nullptr) << dlerror();
    ASSERT_NE(GetPlugin().api, nullptr);
    api_ = GetPlugin().api;
  }
  const tsr_plugin_api* api_ = nullptr;
};

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want, float tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "at " << i;
}

std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Init, options, devices, buffers
// ---------------------------------------------------------------------------------------------

TEST_F(CpuBackendTest, InitAndProbe) {
  EXPECT_EQ(api_->abi_major, TSR_ABI_MAJOR);
  EXPECT_STREQ(api_->id, "cpu");
  ASSERT_NE(GetPlugin().probe, nullptr);
  EXPECT_GE(GetPlugin().probe(), 0);
  const tsr_host_api other = MakeHost(TSR_ABI_MAJOR + 1);
  tsr_error err = NewError();
  EXPECT_EQ(GetPlugin().init(&other, &err), nullptr);
  EXPECT_NE(std::string(err.message).find("ABI"), std::string::npos) << err.message;
}

TEST_F(CpuBackendTest, ContextOptions) {
  tsr_plugin_ctx* ctx = nullptr;
  tsr_error err = NewError();
  tsr_option bad{sizeof(tsr_option), "warp_size", "32"};
  EXPECT_EQ(api_->create_context(&bad, 1, &ctx, &err), TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err.message).find("warp_size"), std::string::npos) << err.message;
  for (const char* v : {"0", "-1", "two", "3x", ""}) {
    tsr_option t{sizeof(tsr_option), "threads", v};
    EXPECT_EQ(api_->create_context(&t, 1, &ctx, &err), TSR_ERR_INVALID_ARGUMENT) << v;
  }
  ASSERT_EQ(api_->create_context(nullptr, 0, &ctx, &err), TSR_OK) << err.message;
  EXPECT_STREQ(api_->absence_reason(ctx), "");
  api_->destroy_context(ctx);

  Device d(3);
  int32_t count = 0;
  ASSERT_EQ(api_->device_count(d.ctx(), &count, &err), TSR_OK);
  EXPECT_EQ(count, 1);
  tsr_device_props props{};
  props.struct_size = sizeof(props);
  ASSERT_EQ(api_->device_props(d.ctx(), 0, &props, &err), TSR_OK);
  EXPECT_EQ(props.kind, TSR_DEVICE_CPU);
  EXPECT_EQ(props.compute_units, 3);
  EXPECT_EQ(props.exec_styles, TSR_EXEC_KERNEL);
  const uint32_t caps = TSR_CAP_F16 | TSR_CAP_BF16 | TSR_CAP_Q8 | TSR_CAP_Q4 | TSR_CAP_HOST_IMPORT |
                        TSR_CAP_UNIFIED_MEMORY;
  EXPECT_EQ(props.caps, caps);
  EXPECT_GT(props.memory_total, 0u);
  EXPECT_GT(std::strlen(props.name), 0u);
  EXPECT_NE(std::string(props.description).find("Highway"), std::string::npos) << props.description;
  EXPECT_EQ(api_->device_props(d.ctx(), 1, &props, &err), TSR_ERR_NOT_FOUND);
}

TEST_F(CpuBackendTest, Buffers) {
  Device d(2);
  tsr_error err = NewError();
  tsr_buffer_type_props bt{};
  bt.struct_size = sizeof(bt);
  ASSERT_EQ(api_->buffer_type_props(d.dev(), 0, &bt, &err), TSR_OK);
  EXPECT_STREQ(bt.name, "host");
  EXPECT_EQ(bt.alignment, 64u);
  EXPECT_TRUE(bt.host_visible);

  tsr_buffer* a = nullptr;
  ASSERT_EQ(api_->buffer_alloc(d.dev(), 0, 100, &a, &err), TSR_OK);
  void* p = nullptr;
  ASSERT_EQ(api_->buffer_map(a, &p, &err), TSR_OK);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  const char msg[] = "hello tessera";
  tsr_event* ev = nullptr;
  ASSERT_EQ(api_->event_create(d.dev(), &ev, &err), TSR_OK);
  ASSERT_EQ(api_->buffer_upload(a, 10, msg, sizeof(msg), ev, &err), TSR_OK);
  EXPECT_EQ(api_->event_wait(ev, &err), TSR_OK);
  api_->event_destroy(ev);
  char back[sizeof(msg)] = {};
  ASSERT_EQ(api_->buffer_download(a, 10, back, sizeof(back), nullptr, &err), TSR_OK);
  EXPECT_STREQ(back, msg);
  EXPECT_EQ(api_->buffer_upload(a, 90, msg, sizeof(msg), nullptr, &err), TSR_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(api_->buffer_download(a, UINT64_MAX, back, 1, nullptr, &err), TSR_ERR_INVALID_ARGUMENT);

  // Import wraps the host memory without copying.
  std::vector<float> host(16, 2.5f);
  tsr_buffer* imp = nullptr;
  ASSERT_EQ(api_->buffer_import_host(d.dev(), host.data(), host.size() * 4, &imp, &err), TSR_OK);
  ASSERT_EQ(api_->buffer_map(imp, &p, &err), TSR_OK);
  EXPECT_EQ(p, host.data());
  ASSERT_EQ(api_->buffer_copy(a, 10, imp, 0, sizeof(msg), nullptr, &err), TSR_OK);
  EXPECT_EQ(std::memcmp(host.data(), msg, sizeof(msg)), 0);
  EXPECT_EQ(api_->buffer_copy(a, 0, imp, 60, 8, nullptr, &err), TSR_ERR_INVALID_ARGUMENT);
  api_->buffer_free(imp);
  api_->buffer_free(a);
}

// ---------------------------------------------------------------------------------------------
// Ops against hand-computed values
// ---------------------------------------------------------------------------------------------

TEST_F(CpuBackendTest, MatmulWithBias) {
  Device d(2);
  Graph g(d.dev());
  const int x = g.F32({2, 3}, {1, 2, 3, 4, 5, 6});
  const int w = g.F32({2, 3}, {1, 0, -1, 0.5f, 0.5f, 0.5f});
  const int b = g.F32({2}, {10, 20});
  const int out = g.ZerosF32({2, 2});
  ASSERT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {x, w, b}, out)), TSR_OK);
  ExpectNear(g.Read(out), {1 - 3 + 10, 3 + 20, 4 - 6 + 10, 7.5f + 20}, 1e-6f);
}

TEST_F(CpuBackendTest, BroadcastAddAndStridedUnary) {
  Device d(2);
  Graph g(d.dev());
  const int x = g.F32({2, 3}, {1, 2, 3, 4, 5, 6});
  const int y = g.F32({3}, {10, 20, 30});
  const int out = g.ZerosF32({2, 3});
  ASSERT_EQ(g.Run(g.Node(TSR_OP_ADD, {x, y}, out)), TSR_OK);
  ExpectNear(g.Read(out), {11, 22, 33, 14, 25, 36}, 0);
  const int col = g.F32({2, 1}, {100, 200});  // broadcasts along the row
  ASSERT_EQ(g.Run(g.Node(TSR_OP_SUB, {x, col}, out)), TSR_OK);
  ExpectNear(g.Read(out), {-99, -98, -97, -196, -195, -194}, 0);

  // RELU of the transpose of a [3, 2] tensor: a strided [2, 3] view.
  const int src =
      g.AddRaw(TSR_DTYPE_F32, {2, 3}, {4, 8}, std::vector<float>{-1, 4, 2, -5, -3, 6}.data(), 24);
  ASSERT_EQ(g.Run(g.Node(TSR_OP_RELU, {src}, out)), TSR_OK);
  ExpectNear(g.Read(out), {0, 2, 0, 4, 0, 6}, 0);
}

TEST_F(CpuBackendTest, RmsNormSoftmaxReductions) {
  Device d(1);
  Graph g(d.dev());
  const int x = g.F32({1, 4}, {1, 2, 3, 4});  // mean(x^2) = 7.5
  const int w = g.F32({4}, {0, 1, 0, 1});
  const int out = g.ZerosF32({1, 4});
  tsr_node n = g.Node(TSR_OP_RMS_NORM, {x, w}, out);
  n.fparams[0] = 0.5f;  // eps: rms = sqrt(8) ; weight offset 1 (Gemma)
  n.fparams[1] = 1.0f;
  ASSERT_EQ(g.Run(n), TSR_OK);
  const float r = 1.0f / std::sqrt(8.0f);
  ExpectNear(g.Read(out), {1 * r, 2 * r * 2, 3 * r, 4 * r * 2}, 1e-6f);

  const int logits = g.F32({1, 3}, {1, 2, 3});
  const int mask = g.F32({3}, {0, 0, -INFINITY});
  const int probs = g.ZerosF32({1, 3});
  tsr_node sm = g.Node(TSR_OP_SOFTMAX, {logits, mask}, probs);
  sm.fparams[0] = 2.0f;
  ASSERT_EQ(g.Run(sm), TSR_OK);
  const float e = std::exp(2.0f);  // softmax([2, 4, -inf])
  ExpectNear(g.Read(probs), {1 / (1 + e), e / (1 + e), 0}, 1e-6f);

  const int m = g.F32({2, 3}, {1, 5, 3, -2, -8, -4});
  const int red = g.ZerosF32({2, 1});
  ASSERT_EQ(g.Run(g.Node(TSR_OP_SUM, {m}, red)), TSR_OK);
  ExpectNear(g.Read(red), {9, -14}, 0);
  ASSERT_EQ(g.Run(g.Node(TSR_OP_MAX, {m}, red)), TSR_OK);
  ExpectNear(g.Read(red), {5, -2}, 0);
  ASSERT_EQ(g.Run(g.Node(TSR_OP_MEAN, {m}, red)), TSR_OK);
  ExpectNear(g.Read(red), {3, -14.0f / 3}, 1e-6f);
}

TEST_F(CpuBackendTest, RopeBothModes) {
  Device d(1);
  Graph g(d.dev());
  // One token at position 1, one head, D = 4 (+2 pass-through dims), inv_freq = {pi/2, 0}.
  const int x = g.F32({1, 1, 6}, {1, 2, 3, 4, 5, 6});
  const int pos = g.I32({1}, {1});
  const int freq = g.F32({2}, {static_cast<float>(M_PI / 2), 0.0f});
  const int out = g.ZerosF32({1, 1, 6});
  tsr_node n = g.Node(TSR_OP_ROPE, {x, pos, freq}, out);
  n.iparams[1] = 4;
  n.fparams[0] = 1.0f;
  ASSERT_EQ(g.Run(n), TSR_OK);  // neox pairs (0,2) by 90 degrees, (1,3) by 0
  ExpectNear(g.Read(out), {-3, 2, 1, 4, 5, 6}, 1e-6f);
  n.iparams[0] = 1;
  ASSERT_EQ(g.Run(n), TSR_OK);  // interleaved pairs (0,1) by 90 degrees, (2,3) by 0
  ExpectNear(g.Read(out), {-2, 1, 3, 4, 5, 6}, 1e-6f);
}

TEST_F(CpuBackendTest, AttentionTiny) {
  Device d(2);
  Graph g(d.dev());
  // One sequence, 2 queries over 2 keys, causal: query 0 sees key 0 only, query 1 both.
  const int q = g.F32({2, 1, 2}, {1, 0, 0, 1});
  const int k = g.F32({2, 1, 2}, {1, 0, 0, 2});
  const int v = g.F32({2, 1, 1}, {10, 20});
  const int cu = g.I32({2}, {0, 2});
  const int out = g.ZerosF32({2, 1, 1});
  tsr_node n = g.Node(TSR_OP_ATTENTION, {q, k, v, cu, cu}, out);
  n.iparams[0] = 1;
  n.fparams[0] = 1.0f;
  ASSERT_EQ(g.Run(n), TSR_OK);
  // Query 1 scores: [0, 2] -> weights 1/(1+e^2), e^2/(1+e^2).
  const float e2 = std::exp(2.0f);
  ExpectNear(g.Read(out), {10, (10 + 20 * e2) / (1 + e2)}, 1e-5f);
}

TEST_F(CpuBackendTest, GetRowsCopyQuantizeConcatConv) {
  Device d(2);
  Graph g(d.dev());
  // Quantize a [2, 32] f32 tensor to Q8 and Q4 and back: values are multiples of the scale.
  std::vector<float> src(64);
  for (int i = 0; i < 64; ++i) src[i] = static_cast<float>(i % 32 - 16) * 0.25f;  // amax 4
  const int f = g.F32({2, 32}, src);
  for (tsr_dtype qt : {TSR_DTYPE_Q8_B32, TSR_DTYPE_Q4_B32}) {
    const size_t bytes = 2 * (qt == TSR_DTYPE_Q8_B32 ? 34 : 18);
    const int q = g.Quant(qt, 2, 32, std::vector<uint8_t>(bytes, 0));
    ASSERT_EQ(g.Run(g.Node(TSR_OP_COPY, {f}, q)), TSR_OK);
    const int ids = g.I32({3}, {1, 0, 1});
    const int rows = g.ZerosF32({3, 32});
    ASSERT_EQ(g.Run(g.Node(TSR_OP_GET_ROWS, {q, ids}, rows)), TSR_OK);
    const std::vector<float> got = g.Read(rows);
    // Q8: d = 4/127, within d/2 plus the scale's f16 rounding. Q4: d = -4/-8 = 0.5 (m = -4).
    const float tol = qt == TSR_DTYPE_Q8_B32 ? 0.02f : 0.25f + 1e-6f;
    for (int i = 0; i < 32; ++i) EXPECT_NEAR(got[32 + i], src[i], tol) << i;
    if (qt == TSR_DTYPE_Q4_B32) {
      // Exact check of the packing (d = 0.5): value 0 = -4 -> trunc(-8 + 8.5) = 0 in the low
      // nibble of qs[0]; value 31 = 3.75 -> clamp(trunc(7.5 + 8.5)) = 15 in the high nibble of
      // qs[15]; value 1 = -3.75 -> trunc(1) = 1 low in qs[1]; value 17 = 0.25 -> 9 high in qs[1].
      const std::vector<uint8_t> raw = g.ReadBytes(q, bytes);
      EXPECT_EQ(raw[0] | (raw[1] << 8), 0x3800);  // 0.5 in binary16
      EXPECT_EQ(raw[2] & 0x0f, 0);
      EXPECT_EQ(raw[2 + 15] >> 4, 15);
      EXPECT_EQ(raw[2 + 1], 1 | (9 << 4));
    }
  }
  // f32 -> f16 -> f32 of exactly representable values.
  const int h = g.Add(TSR_DTYPE_F16, {2, 32}, std::vector<uint16_t>(64, 0));
  ASSERT_EQ(g.Run(g.Node(TSR_OP_COPY, {f}, h)), TSR_OK);
  const int back = g.ZerosF32({2, 32});
  ASSERT_EQ(g.Run(g.Node(TSR_OP_COPY, {h}, back)), TSR_OK);
  ExpectNear(g.Read(back), src, 0);

  const int a = g.F32({2, 1}, {1, 2});
  const int b = g.F32({2, 2}, {3, 4, 5, 6});
  const int cat = g.ZerosF32({2, 3});
  tsr_node cn = g.Node(TSR_OP_CONCAT, {a, b}, cat);
  cn.iparams[0] = -1;
  ASSERT_EQ(g.Run(cn), TSR_OK);
  ExpectNear(g.Read(cat), {1, 3, 4, 2, 5, 6}, 0);

  // conv1d: x [1, 1, 4], w [1, 1, 3] = [1, 0, -1], padding 1 -> out[l] = x[l-1] - x[l+1].
  const int cx = g.F32({1, 1, 4}, {1, 2, 4, 8});
  const int cw = g.F32({1, 1, 3}, {1, 0, -1});
  const int co = g.ZerosF32({1, 1, 4});
  tsr_node conv = g.Node(TSR_OP_CONV1D, {cx, cw}, co);
  conv.iparams[0] = 1;
  conv.iparams[1] = 1;
  conv.iparams[2] = 1;
  conv.iparams[3] = 1;
  ASSERT_EQ(g.Run(conv), TSR_OK);
  ExpectNear(g.Read(co), {-2, -3, -6, 4}, 0);
}

TEST_F(CpuBackendTest, ActivationsMatchScalarFormulas) {
  Device d(2);
  Graph g(d.dev());
  std::vector<float> xs;
  for (int i = 0; i < 41; ++i) xs.push_back(-10.0f + 0.5f * i);  // 41: not a lane multiple
  const int x = g.F32({41}, xs);
  const int y = g.F32({41}, Random(41, 5, 3.0f));
  const std::vector<float> ys = g.Read(y);
  const int out = g.ZerosF32({41});
  const auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  const auto gelu_tanh = [](double v) {
    return 0.5 * v * (1 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
  };
  const auto check = [&](tsr_op op, float p0, float p1,
                         const std::function<double(double, double)>& ref, bool binary) {
    SCOPED_TRACE(op);
    tsr_node n = binary ? g.Node(op, {x, y}, out) : g.Node(op, {x}, out);
    n.fparams[0] = p0;
    n.fparams[1] = p1;
    ASSERT_EQ(g.Run(n), TSR_OK);
    const std::vector<float> got = g.Read(out);
    for (size_t i = 0; i < xs.size(); ++i) {
      const double want = ref(xs[i], ys[i]);
      EXPECT_NEAR(got[i], want, 2e-6 + 2e-6 * std::fabs(want)) << "x = " << xs[i];
    }
  };
  check(
      TSR_OP_SILU, 0, 0, [&](double v, double) { return v * sig(v); }, false);
  check(
      TSR_OP_SIGMOID, 0, 0, [&](double v, double) { return sig(v); }, false);
  check(
      TSR_OP_GELU, 0, 0,
      [](double v, double) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }, false);
  check(
      TSR_OP_GELU_TANH, 0, 0, [&](double v, double) { return gelu_tanh(v); }, false);
  check(
      TSR_OP_TANH, 0, 0, [](double v, double) { return std::tanh(v); }, false);
  check(
      TSR_OP_RELU, 0, 0, [](double v, double) { return v > 0 ? v : 0; }, false);
  check(
      TSR_OP_SOFTCAP, 3.0f, 0, [](double v, double) { return 3.0 * std::tanh(v / 3.0); }, false);
  check(
      TSR_OP_SCALE, 0.5f, -1.0f, [](double v, double) { return v * 0.5 - 1.0; }, false);
  check(
      TSR_OP_SWIGLU, 0, 0, [&](double v, double u) { return v * sig(v) * u; }, true);
  check(
      TSR_OP_GEGLU, 0, 0, [&](double v, double u) { return gelu_tanh(v) * u; }, true);
  check(
      TSR_OP_DIV, 0, 0, [](double v, double u) { return v / u; }, true);
}

TEST_F(CpuBackendTest, LayerNormAndBatchedMatmul) {
  Device d(2);
  Graph g(d.dev());
  const int64_t R = 3, D = 37;
  const std::vector<float> xs = Random(R * D, 21, 2.0f), ws = Random(D, 22), bs = Random(D, 23);
  const int x = g.F32({R, D}, xs), w = g.F32({D}, ws), b = g.F32({D}, bs);
  const int out = g.ZerosF32({R, D});
  tsr_node n = g.Node(TSR_OP_LAYER_NORM, {x, w, b}, out);
  n.fparams[0] = 1e-5f;
  ASSERT_EQ(g.Run(n), TSR_OK);
  const std::vector<float> got = g.Read(out);
  for (int64_t r = 0; r < R; ++r) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < D; ++i) mean += xs[r * D + i];
    mean /= D;
    for (int64_t i = 0; i < D; ++i) var += (xs[r * D + i] - mean) * (xs[r * D + i] - mean);
    var /= D;
    for (int64_t i = 0; i < D; ++i) {
      const double want = (xs[r * D + i] - mean) / std::sqrt(var + 1e-5) * ws[i] + bs[i];
      EXPECT_NEAR(got[r * D + i], want, 1e-5) << r << "," << i;
    }
  }
  // Batched: x [2, 5, K] times w [2, N, K] (f16).
  const int64_t B = 2, M = 5, K = 40, N = 9;
  const std::vector<float> xb = Random(B * M * K, 24), wb = Random(B * N * K, 25);
  const int tx = g.F32({B, M, K}, xb);
  const int tw32 = g.F32({B, N, K}, wb);
  const int tw = g.Add(TSR_DTYPE_F16, {B, N, K}, std::vector<uint16_t>(B * N * K));
  ASSERT_EQ(g.Run(g.Node(TSR_OP_COPY, {tw32}, tw)), TSR_OK);
  const int tback = g.ZerosF32({B, N, K});
  ASSERT_EQ(g.Run(g.Node(TSR_OP_COPY, {tw}, tback)), TSR_OK);
  const std::vector<float> w16 = g.Read(tback);
  const int to = g.ZerosF32({B, M, N});
  ASSERT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {tx, tw}, to)), TSR_OK);
  const std::vector<float> mo = g.Read(to);
  for (int64_t bb = 0; bb < B; ++bb) {
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k)
          s += double(xb[(bb * M + m) * K + k]) * w16[(bb * N + j) * K + k];
        EXPECT_NEAR(mo[(bb * M + m) * N + j], s, 1e-4);
      }
    }
  }
}

TEST_F(CpuBackendTest, AttentionMatchesNaiveSoftmax) {
  Device d(2);
  Graph g(d.dev());
  // Two sequences (q_len 3 over 7 keys, q_len 4 over 4 keys), GQA 4:2, bf16 K/V.
  const int64_t Hq = 4, Hkv = 2, D = 16, Dv = 8, T = 7, Tk = 11;
  const std::vector<int32_t> cu_q = {0, 3, 7}, cu_k = {0, 7, 11};
  const std::vector<float> qs = Random(T * Hq * D, 31);
  const int q = g.F32({T, Hq, D}, qs);
  const int k32 = g.F32({Tk, Hkv, D}, Random(Tk * Hkv * D, 32));
  const int v32 = g.F32({Tk, Hkv, Dv}, Random(Tk * Hkv * Dv, 33));
  const int k = g.Add(TSR_DTYPE_BF16, {Tk, Hkv, D}, std::vector<uint16_t>(Tk * Hkv * D));
  const int v = g.Add(TSR_DTYPE_BF16, {Tk, Hkv, Dv}, std::vector<uint16_t>(Tk * Hkv * Dv));
  ASSERT_EQ(g.Run(g.Node(TSR_OP_COPY, {k32}, k)), TSR_OK);
  ASSERT_EQ(g.Run(g.Node(TSR_OP_COPY, {v32}, v)), TSR_OK);
  ASSERT_EQ(g.Run(g.Node(TSR_OP_COPY, {k}, k32)), TSR_OK);  // the bf16-rounded values
  ASSERT_EQ(g.Run(g.Node(TSR_OP_COPY, {v}, v32)), TSR_OK);
  const std::vector<float> ks = g.Read(k32), vs = g.Read(v32);
  const int cq = g.I32({3}, cu_q), ck = g.I32({3}, cu_k);
  const int out = g.ZerosF32({T, Hq, Dv});
  tsr_node n = g.Node(TSR_OP_ATTENTION, {q, k, v, cq, ck}, out);
  n.iparams[0] = 1;
  n.iparams[1] = 3;
  n.fparams[0] = 0.25f;
  n.fparams[1] = 2.0f;
  ASSERT_EQ(g.Run(n), TSR_OK);
  const std::vector<float> got = g.Read(out);
  for (int s = 0; s < 2; ++s) {
    const int64_t ql = cu_q[s + 1] - cu_q[s], kl = cu_k[s + 1] - cu_k[s];
    for (int64_t i = 0; i < ql; ++i) {
      const int64_t t = cu_q[s] + i, pos = kl - ql + i;
      for (int64_t h = 0; h < Hq; ++h) {
        const int64_t hk = h / (Hq / Hkv);
        std::vector<double> sc;
        std::vector<int64_t> js;
        for (int64_t j = 0; j < kl; ++j) {
          if (j > pos || pos - j >= 3) continue;
          double dot = 0;
          for (int64_t e = 0; e < D; ++e)
            dot += double(qs[(t * Hq + h) * D + e]) * ks[((cu_k[s] + j) * Hkv + hk) * D + e];
          sc.push_back(2.0 * std::tanh(dot * 0.25 / 2.0));
          js.push_back(j);
        }
        double mx = -1e300, sum = 0;
        for (double x : sc) mx = std::max(mx, x);
        for (double& x : sc) sum += (x = std::exp(x - mx));
        for (int64_t e = 0; e < Dv; ++e) {
          double o = 0;
          for (size_t u = 0; u < js.size(); ++u)
            o += sc[u] / sum * vs[((cu_k[s] + js[u]) * Hkv + hk) * Dv + e];
          EXPECT_NEAR(got[(t * Hq + h) * Dv + e], o, 1e-5) << "t=" << t << " h=" << h << " e=" << e;
        }
      }
    }
  }
}

TEST_F(CpuBackendTest, Conv2dGroupsStrideDilation) {
  Device d(2);
  Graph g(d.dev());
  const int64_t B = 2, Cin = 4, H = 7, W = 6, Cout = 6, G = 2, KH = 3, KW = 2;
  const int64_t sh = 2, sw = 1, ph = 1, pw = 2, dh = 2, dw = 3;
  const int64_t Ho = (H + 2 * ph - dh * (KH - 1) - 1) / sh + 1,
                Wo = (W + 2 * pw - dw * (KW - 1) - 1) / sw + 1;
  const std::vector<float> xs = Random(B * Cin * H * W, 41),
                           ws = Random(Cout * (Cin / G) * KH * KW, 42), bs = Random(Cout, 43);
  const int x = g.F32({B, Cin, H, W}, xs), w = g.F32({Cout, Cin / G, KH, KW}, ws),
            b = g.F32({Cout}, bs);
  const int out = g.ZerosF32({B, Cout, Ho, Wo});
  tsr_node n = g.Node(TSR_OP_CONV2D, {x, w, b}, out);
  const int64_t ip[7] = {sh, sw, ph, pw, dh, dw, G};
  for (int i = 0; i < 7; ++i) n.iparams[i] = ip[i];
  ASSERT_EQ(g.Run(n), TSR_OK);
  const std::vector<float> got = g.Read(out);
  const int64_t cg = Cin / G, og = Cout / G;
  for (int64_t bb = 0; bb < B; ++bb)
    for (int64_t co = 0; co < Cout; ++co)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double s = bs[co];
          const int64_t grp = co / og;
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                const int64_t ih = oh * sh - ph + kh * dh, iw = ow * sw - pw + kw * dw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += double(xs[((bb * Cin + grp * cg + ci) * H + ih) * W + iw]) *
                     ws[((co * cg + ci) * KH + kh) * KW + kw];
              }
          EXPECT_NEAR(got[((bb * Cout + co) * Ho + oh) * Wo + ow], s, 1e-5);
        }
}

// ---------------------------------------------------------------------------------------------
// Robustness: supports_op on odd input, execute on mismatched shapes
// ---------------------------------------------------------------------------------------------

TEST_F(CpuBackendTest, SupportsOpNeverCrashes) {
  Device d(1);
  Graph g(d.dev());
  const int x = g.F32({2, 3}, {1, 2, 3, 4, 5, 6});
  const int ids = g.I32({2}, {0, 1});
  const int out = g.ZerosF32({2, 3});
  EXPECT_TRUE(g.Supports(g.Node(TSR_OP_SILU, {x}, out)));
  EXPECT_FALSE(g.Supports(g.Node(TSR_OP_SILU, {}, out)));      // no input
  EXPECT_FALSE(g.Supports(g.Node(TSR_OP_SILU, {ids}, out)));   // wrong dtype
  EXPECT_FALSE(g.Supports(g.Node(TSR_OP_ADD, {x, 99}, out)));  // bad index
  EXPECT_FALSE(g.Supports(g.Node(TSR_OP_ADD, {x, -1}, out)));  // absent required input
  tsr_node unknown = g.Node(TSR_OP_SILU, {x}, out);
  const int32_t op77 = 77;  // as a C host could store it
  std::memcpy(&unknown.op, &op77, sizeof(op77));
  EXPECT_FALSE(g.Supports(unknown));                             // unknown op
  EXPECT_FALSE(g.Supports(g.Node(TSR_OP_MATMUL, {x, x}, out)));  // out must be [2, 2]
  tsr_node bad = g.Node(TSR_OP_SILU, {x}, out);
  bad.n_inputs = 100;
  EXPECT_FALSE(g.Supports(bad));
  // Every op with garbage params on these tensors must answer, not crash.
  for (int op = 0; op < TSR_OP_COUNT + 2; ++op) {
    for (int n_in = 0; n_in <= 6; ++n_in) {
      tsr_node node = g.Node(static_cast<tsr_op>(op), {}, out);
      node.n_inputs = n_in;
      for (int i = 0; i < n_in; ++i) node.inputs[i] = i % 2 == 0 ? x : ids;
      for (int i = 0; i < TSR_MAX_PARAMS; ++i) node.iparams[i] = -3 + i;
      (void)g.Supports(node);
    }
  }
}

TEST_F(CpuBackendTest, ExecuteRejectsMismatchedShapes) {
  Device d(1);
  Graph g(d.dev());
  const int x = g.F32({2, 3}, {1, 2, 3, 4, 5, 6});
  const int w = g.F32({4, 5}, std::vector<float>(20, 1.0f));
  const int out = g.ZerosF32({2, 4});
  std::string msg;
  EXPECT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {x, w}, out), &msg), TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(msg.find("MATMUL"), std::string::npos) << msg;
  const int table = g.F32({2, 3}, {1, 2, 3, 4, 5, 6});
  const int ids = g.I32({1}, {7});
  const int rows = g.ZerosF32({1, 3});
  EXPECT_EQ(g.Run(g.Node(TSR_OP_GET_ROWS, {table, ids}, rows), &msg), TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(msg.find("ids[0] = 7"), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------------------
// Batch invariance
// ---------------------------------------------------------------------------------------------

// Weight bytes for [N, K] in `dtype`, made by the plugin itself (COPY from f32) so quantized
// formats are byte-exact.
bool IsQuant(tsr_dtype t) {
  return t == TSR_DTYPE_Q8_B32 || t == TSR_DTYPE_Q4_B32;
}

int MakeWeight(Graph& g, tsr_dtype dtype, int64_t n, int64_t k, const std::vector<float>& w) {
  const int src = g.F32({n, k}, w);
  int dst;
  if (dtype == TSR_DTYPE_F32) return src;
  if (dtype == TSR_DTYPE_Q8_B32 || dtype == TSR_DTYPE_Q4_B32) {
    dst = g.Quant(dtype, n, k,
                  std::vector<uint8_t>(n * k / 32 * (dtype == TSR_DTYPE_Q8_B32 ? 34 : 18)));
  } else {
    dst = g.Add(dtype, {n, k}, std::vector<uint16_t>(n * k));
  }
  EXPECT_EQ(g.Run(g.Node(TSR_OP_COPY, {src}, dst)), TSR_OK);
  return dst;
}

// M = 136: two x panels of the GEMM (128 rows, then 8), x packed in its tiles' order by several
// pool tasks (16 tiles each).
TEST_F(CpuBackendTest, MatmulRowsAreBatchInvariant) {
  Device d2(2);
  Device d1(1);
  const int64_t M = 136, N = 45;
  for (tsr_dtype dtype :
       {TSR_DTYPE_F32, TSR_DTYPE_F16, TSR_DTYPE_BF16, TSR_DTYPE_Q8_B32, TSR_DTYPE_Q4_B32}) {
    // K not a multiple of the SIMD width for the plain types exercises the scalar tail.
    const int64_t K = (dtype == TSR_DTYPE_Q8_B32 || dtype == TSR_DTYPE_Q4_B32) ? 96 : 101;
    SCOPED_TRACE(dtype);
    Graph g(d2.dev());
    const std::vector<float> xs = Random(M * K, 1);
    const std::vector<float> ws = Random(N * K, 2);
    const std::vector<float> bs = Random(N, 3);
    const int w = MakeWeight(g, dtype, N, K, ws);
    const int b = g.F32({N}, bs);
    const int x = g.F32({M, K}, xs);
    const int out = g.ZerosF32({M, N});
    ASSERT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {x, w, b}, out)), TSR_OK);
    const std::vector<float> batched = g.Read(out);
    // Reference within tolerance (f32 weights only: the others are lossy by design).
    if (dtype == TSR_DTYPE_F32) {
      for (int64_t m = 0; m < M; ++m) {
        for (int64_t n = 0; n < N; ++n) {
          double s = bs[n];
          for (int64_t k = 0; k < K; ++k) s += double(xs[m * K + k]) * ws[n * K + k];
          ASSERT_NEAR(batched[m * N + n], s, 1e-4) << m << "," << n;
        }
      }
    }
    for (int64_t r : {int64_t{0}, int64_t{1}, int64_t{17}, M - 1}) {
      const std::vector<float> row(xs.begin() + r * K, xs.begin() + (r + 1) * K);
      const int x1 = g.F32({1, K}, row);
      const int o1 = g.ZerosF32({1, N});
      ASSERT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {x1, w, b}, o1)), TSR_OK);
      const std::vector<float> alone = g.Read(o1);
      EXPECT_EQ(std::memcmp(alone.data(), batched.data() + r * N, N * 4), 0)
          << "row " << r << " differs alone (GEMV) vs in a 136-row call";
    }
    // Three rows (GEMM path, narrow tiles) and a one-thread device give the same bits too.
    const std::vector<float> three(xs.begin() + 5 * K, xs.begin() + 8 * K);
    const int x3 = g.F32({3, K}, three);
    const int o3 = g.ZerosF32({3, N});
    ASSERT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {x3, w, b}, o3)), TSR_OK);
    EXPECT_EQ(std::memcmp(g.Read(o3).data(), batched.data() + 5 * N, 3 * N * 4), 0);
    Graph g1(d1.dev());
    const int w1 = MakeWeight(g1, dtype, N, K, ws);
    const int b1 = g1.F32({N}, bs);
    const int xa = g1.F32({M, K}, xs);
    const int oa = g1.ZerosF32({M, N});
    ASSERT_EQ(g1.Run(g1.Node(TSR_OP_MATMUL, {xa, w1, b1}, oa)), TSR_OK);
    EXPECT_EQ(std::memcmp(g1.Read(oa).data(), batched.data(), M * N * 4), 0)
        << "thread count changed results";
  }
}

// Sibling MATMULs of one x (q, k, v-like: different N, weights, biases and dtypes) in one
// execute call run as one pool job (plugin.cc ExecuteFrom, RunMatmulGroup; int8 activations
// quantized once where the members agree): the same bits as each node in its own call. A fourth
// MATMUL on another x closes the group. M = 1 and 3 are decode rows (the GEMV); M = 70 is the
// prefill GEMM path (groups there since cpu-q19 when every member has block-quantized weights:
// one int8 x for the members).
TEST_F(CpuBackendTest, SiblingMatmulsInOneJobKeepBits) {
  struct Case {
    tsr_dtype dtypes[3];
    const char* int8_dot;
  };
  const Case cases[] = {
      {{TSR_DTYPE_F32, TSR_DTYPE_F32, TSR_DTYPE_F32}, nullptr},
      {{TSR_DTYPE_BF16, TSR_DTYPE_BF16, TSR_DTYPE_BF16}, nullptr},
      {{TSR_DTYPE_Q8_B32, TSR_DTYPE_Q8_B32, TSR_DTYPE_Q8_B32}, "on"},
      {{TSR_DTYPE_Q4_B32, TSR_DTYPE_Q4_B32, TSR_DTYPE_Q4_B32}, "on"},
      {{TSR_DTYPE_Q8_B32, TSR_DTYPE_Q4_B32, TSR_DTYPE_Q8_B32}, "on"},
      {{TSR_DTYPE_Q4_B32, TSR_DTYPE_Q8_B32, TSR_DTYPE_Q4_B32}, "off"},
      {{TSR_DTYPE_BF16, TSR_DTYPE_Q8_B32, TSR_DTYPE_F32}, "on"},
  };
  const int64_t ns[3] = {40, 16, 24};
  for (const Case& c : cases) {
    bool quant = false;
    for (tsr_dtype t : c.dtypes) quant = quant || IsQuant(t);
    const int64_t K = quant ? 160 : 101;  // 101: the scalar tail
    Device d(2, c.int8_dot);
    for (int64_t M : {int64_t{1}, int64_t{3}, int64_t{70}}) {
      SCOPED_TRACE(testing::Message()
                   << c.dtypes[0] << "," << c.dtypes[1] << "," << c.dtypes[2] << " int8_dot "
                   << (c.int8_dot ? c.int8_dot : "-") << " M " << M);
      Graph g(d.dev());
      const int x = g.F32({M, K}, Random(M * K, 81));
      const int x2 = g.F32({M, K}, Random(M * K, 82));
      std::vector<tsr_node> nodes;
      int outs[2][4];
      int w[3], b[3];
      for (int i = 0; i < 3; ++i) {
        w[i] = MakeWeight(g, c.dtypes[i], ns[i], K, Random(ns[i] * K, 83 + i, 0.1f));
        b[i] = g.F32({ns[i]}, Random(ns[i], 86 + i));
      }
      for (int pass = 0; pass < 2; ++pass) {
        nodes.clear();
        for (int i = 0; i < 3; ++i) {
          outs[pass][i] = g.ZerosF32({M, ns[i]});
          // The middle one without a bias.
          nodes.push_back(i == 1 ? g.Node(TSR_OP_MATMUL, {x, w[i]}, outs[pass][i])
                                 : g.Node(TSR_OP_MATMUL, {x, w[i], b[i]}, outs[pass][i]));
        }
        outs[pass][3] = g.ZerosF32({M, ns[0]});
        nodes.push_back(g.Node(TSR_OP_MATMUL, {x2, w[0], b[0]}, outs[pass][3]));
        const tsr_graph_view v = g.View(nodes);
        tsr_error err = NewError();
        if (pass == 0) {  // node by node
          for (int32_t id = 0; id < 4; ++id)
            ASSERT_EQ(api_->execute(d.dev(), &v, &id, 1, nullptr, &err), TSR_OK) << err.message;
        } else {  // one call: the first three are one group
          const int32_t ids[4] = {0, 1, 2, 3};
          ASSERT_EQ(api_->execute(d.dev(), &v, ids, 4, nullptr, &err), TSR_OK) << err.message;
        }
      }
      for (int i = 0; i < 4; ++i) {
        const std::vector<float> a = g.Read(outs[0][i]), f = g.Read(outs[1][i]);
        ASSERT_EQ(a.size(), f.size());
        EXPECT_EQ(std::memcmp(a.data(), f.data(), a.size() * 4), 0) << "node " << i;
        bool nonzero = false;
        for (float v : f) nonzero = nonzero || v != 0.0f;
        EXPECT_TRUE(nonzero) << "node " << i << " wrote nothing";
      }
    }
  }
}

// K spanning several K blocks of the canonical order (1024) plus a SIMD tail: GEMV rows and
// GEMM rows (4 x 4 tiles, partial sums kept in the output between blocks) stay bit-identical.
// K = 2 * 1024 + 64 and 896 (no tail: the 4 x 4 tiles' vector epilogue finishes the last block)
// and 1024 + 512 + 5 (one block and a short one), with and without a bias. M = 70: 17 whole
// tiles of x packed over several K blocks by two pool tasks, and two rows past them.
TEST_F(CpuBackendTest, MatmulLongKIsBatchInvariant) {
  Device d(2);
  const int64_t M = 70, N = 13;
  struct Case {
    int64_t K;
    bool bias;
    tsr_dtype dtype;
  };
  std::vector<Case> cases;
  for (const int64_t K :
       {int64_t{2 * 1024 + 37}, int64_t{2 * 1024 + 64}, int64_t{896}, int64_t{1024 + 512 + 5}}) {
    for (const bool bias : {true, false}) {
      for (const tsr_dtype dt : {TSR_DTYPE_F32, TSR_DTYPE_BF16}) cases.push_back({K, bias, dt});
    }
  }
  for (const Case& c : cases) {
    const int64_t K = c.K;
    SCOPED_TRACE(testing::Message() << c.dtype << " K " << K << " bias " << c.bias);
    Graph g(d.dev());
    const std::vector<float> xs = Random(M * K, 21);
    const std::vector<float> ws = Random(N * K, 22);
    const int w = MakeWeight(g, c.dtype, N, K, ws);
    const int b = c.bias ? g.F32({N}, Random(N, 23)) : g.ZerosF32({N});
    const int x = g.F32({M, K}, xs);
    const int out = g.ZerosF32({M, N});
    ASSERT_EQ(
        g.Run(c.bias ? g.Node(TSR_OP_MATMUL, {x, w, b}, out) : g.Node(TSR_OP_MATMUL, {x, w}, out)),
        TSR_OK);
    const std::vector<float> batched = g.Read(out);
    if (c.dtype == TSR_DTYPE_F32 && K == 2 * 1024 + 37 && c.bias) {
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += double(xs[k]) * ws[n * K + k];
        ASSERT_NEAR(batched[n] - g.Read(b)[n], s, 1e-3) << n;
      }
    }
    for (int64_t r = 0; r < M; ++r) {
      const int x1 = g.F32({1, K}, {xs.begin() + r * K, xs.begin() + (r + 1) * K});
      const int o1 = g.ZerosF32({1, N});
      ASSERT_EQ(g.Run(c.bias ? g.Node(TSR_OP_MATMUL, {x1, w, b}, o1)
                             : g.Node(TSR_OP_MATMUL, {x1, w}, o1)),
                TSR_OK);
      EXPECT_EQ(std::memcmp(g.Read(o1).data(), batched.data() + r * N, N * 4), 0) << "row " << r;
    }
  }
}

// The GEMM (x packed in its tiles' order, 4 x 4 tiles) against the GEMV, row by row, bit for bit,
// on every SIMD target of this CPU (their lane counts give the packed layout its step).
TEST_F(CpuBackendTest, GemmRowsMatchGemvOnEveryTarget) {
  Device d(2);
  const int64_t M = 70, N = 13;
  const int64_t supported = hwy::SupportedTargets();
  for (int64_t target : {supported, int64_t{HWY_AVX2}, int64_t{HWY_SSE4}, int64_t{HWY_SVE2},
                         int64_t{HWY_SVE}, int64_t{HWY_NEON}, int64_t{0} /* fallback */}) {
    if (target != 0 && (supported & target) == 0) continue;
    SCOPED_TRACE(target == 0 ? "fallback" : target == supported ? "best" : hwy::TargetName(target));
    hwy::GetChosenTarget().Update(target);
    for (const int64_t K : {int64_t{101}, int64_t{2 * 1024 + 64}}) {
      SCOPED_TRACE(testing::Message() << "K " << K);
      Graph g(d.dev());
      const std::vector<float> xs = Random(M * K, 31);
      const int w = MakeWeight(g, TSR_DTYPE_BF16, N, K, Random(N * K, 32));
      const int b = g.F32({N}, Random(N, 33));
      const int out = g.ZerosF32({M, N});
      ASSERT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {g.F32({M, K}, xs), w, b}, out)), TSR_OK);
      const std::vector<float> batched = g.Read(out);
      for (int64_t r = 0; r < M; ++r) {
        const int x1 = g.F32({1, K}, {xs.begin() + r * K, xs.begin() + (r + 1) * K});
        const int o1 = g.ZerosF32({1, N});
        ASSERT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {x1, w, b}, o1)), TSR_OK);
        EXPECT_EQ(std::memcmp(g.Read(o1).data(), batched.data() + r * N, N * 4), 0) << "row " << r;
      }
    }
  }
  hwy::GetChosenTarget().Update(supported);
}

TEST_F(CpuBackendTest, AttentionIsBatchInvariant) {
  Device d(2);
  Graph g(d.dev());
  const int64_t Hq = 4, Hkv = 2, D = 20, Dv = 12;
  const int64_t lenA = 37, lenB = 50;  // keys per sequence (prefill: queries == keys)
  const auto q_all = Random((lenA + lenB) * Hq * D, 11);
  const auto k_all = Random((lenA + lenB) * Hkv * D, 12);
  const auto v_all = Random((lenA + lenB) * Hkv * Dv, 13);
  auto run = [&](const std::vector<float>& q, const std::vector<float>& k,
                 const std::vector<float>& v, std::vector<int32_t> cu_q,
                 std::vector<int32_t> cu_k) {
    const int64_t T = static_cast<int64_t>(q.size()) / (Hq * D);
    const int64_t Tk = static_cast<int64_t>(k.size()) / (Hkv * D);
    const int tq = g.F32({T, Hq, D}, q);
    const int tk = g.F32({Tk, Hkv, D}, k);
    const int tv = g.F32({Tk, Hkv, Dv}, v);
    const int cq = g.I32({static_cast<int64_t>(cu_q.size())}, cu_q);
    const int ck = g.I32({static_cast<int64_t>(cu_k.size())}, cu_k);
    const int out = g.ZerosF32({T, Hq, Dv});
    tsr_node n = g.Node(TSR_OP_ATTENTION, {tq, tk, tv, cq, ck}, out);
    n.iparams[0] = 1;   // causal
    n.iparams[1] = 29;  // sliding window
    n.fparams[0] = 0.3f;
    n.fparams[1] = 5.0f;  // soft-cap
    EXPECT_EQ(g.Run(n), TSR_OK);
    return g.Read(out);
  };
  const size_t qa = lenA * Hq * D, ka = lenA * Hkv * D, va = lenA * Hkv * Dv;
  // A alone.
  const auto alone =
      run({q_all.begin(), q_all.begin() + qa}, {k_all.begin(), k_all.begin() + ka},
          {v_all.begin(), v_all.begin() + va}, {0, int32_t(lenA)}, {0, int32_t(lenA)});
  // B then A in one call.
  std::vector<float> q2(q_all.begin() + qa, q_all.end()), k2(k_all.begin() + ka, k_all.end()),
      v2(v_all.begin() + va, v_all.end());
  q2.insert(q2.end(), q_all.begin(), q_all.begin() + qa);
  k2.insert(k2.end(), k_all.begin(), k_all.begin() + ka);
  v2.insert(v2.end(), v_all.begin(), v_all.begin() + va);
  const int32_t nB = int32_t(lenB), nAB = int32_t(lenA + lenB);
  const auto both = run(q2, k2, v2, {0, nB, nAB}, {0, nB, nAB});
  const size_t oa = lenA * Hq * Dv, ob = lenB * Hq * Dv;
  EXPECT_EQ(std::memcmp(alone.data(), both.data() + ob, oa * 4), 0)
      << "sequence A changed when batched with B";
  // Only A's last 3 queries (a chunked prefill step) match the full-prefill rows.
  const size_t last3 = 3 * Hq * D;
  const auto tail =
      run({q_all.begin() + qa - last3, q_all.begin() + qa}, {k_all.begin(), k_all.begin() + ka},
          {v_all.begin(), v_all.begin() + va}, {0, 3}, {0, int32_t(lenA)});
  EXPECT_EQ(std::memcmp(tail.data(), alone.data() + (lenA - 3) * Hq * Dv, 3 * Hq * Dv * 4), 0)
      << "a query's result depends on how many queries of its sequence are in the call";

  // The same keys written into a paged cache (KV_WRITE, scattered blocks) give identical bits.
  const int64_t BS = 8, NB = 8;
  const int kc = g.ZerosF32({NB, BS, Hkv, D});
  const int vc = g.ZerosF32({NB, BS, Hkv, Dv});
  const std::vector<int32_t> blocks = {5, 2, 7, 0, 3};  // 5 * 8 >= 37 slots
  std::vector<int32_t> slots(lenA);
  for (int64_t j = 0; j < lenA; ++j) slots[j] = blocks[j / BS] * int32_t(BS) + int32_t(j % BS);
  const int sl = g.I32({lenA}, slots);
  const int kr = g.F32({lenA, Hkv, D}, {k_all.begin(), k_all.begin() + ka});
  const int vr = g.F32({lenA, Hkv, Dv}, {v_all.begin(), v_all.begin() + va});
  ASSERT_EQ(g.Run(g.Node(TSR_OP_KV_WRITE, {kc, kr, sl}, kc)), TSR_OK);
  ASSERT_EQ(g.Run(g.Node(TSR_OP_KV_WRITE, {vc, vr, sl}, vc)), TSR_OK);
  const int tq = g.F32({3, Hq, D}, {q_all.begin() + qa - last3, q_all.begin() + qa});
  const int table = g.I32({1, 5}, blocks);
  const int lens = g.I32({1}, {int32_t(lenA)});
  const int cu = g.I32({2}, {0, 3});
  const int out = g.ZerosF32({3, Hq, Dv});
  tsr_node pn = g.Node(TSR_OP_PAGED_ATTENTION, {tq, kc, vc, table, lens, cu}, out);
  pn.iparams[0] = 1;
  pn.iparams[1] = 29;
  pn.fparams[0] = 0.3f;
  pn.fparams[1] = 5.0f;
  ASSERT_EQ(g.Run(pn), TSR_OK);
  EXPECT_EQ(std::memcmp(g.Read(out).data(), tail.data(), tail.size() * 4), 0)
      << "paged and dense attention differ";
}

// Runs a fixed mix of SIMD kernels (matmul for every weight dtype, activations, softmax, norms,
// attention with bf16 K/V) on device `d` and returns every output concatenated. Also checks,
// within the current SIMD target, that a matmul row alone equals the same row in 64.
std::vector<float> RunSimdMix(const Device& d) {
  Graph g(d.dev());
  std::vector<float> all;
  const auto append = [&](const std::vector<float>& v) {
    all.insert(all.end(), v.begin(), v.end());
  };
  const int64_t M = 64, N = 21;
  for (tsr_dtype dtype :
       {TSR_DTYPE_F32, TSR_DTYPE_F16, TSR_DTYPE_BF16, TSR_DTYPE_Q8_B32, TSR_DTYPE_Q4_B32}) {
    const int64_t K = IsQuant(dtype) ? 64 : 43;
    const std::vector<float> xs = Random(M * K, 51);
    const int w = MakeWeight(g, dtype, N, K, Random(N * K, 52));
    const int x = g.F32({M, K}, xs), out = g.ZerosF32({M, N});
    EXPECT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {x, w}, out)), TSR_OK);
    const std::vector<float> batched = g.Read(out);
    append(batched);
    const int x1 = g.F32({1, K}, {xs.begin() + 7 * K, xs.begin() + 8 * K}), o1 = g.ZerosF32({1, N});
    EXPECT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {x1, w}, o1)), TSR_OK);
    EXPECT_EQ(std::memcmp(g.Read(o1).data(), batched.data() + 7 * N, N * 4), 0)
        << "dtype " << dtype;
  }
  const int v = g.F32({3, 45}, Random(135, 53, 4.0f)), vo = g.ZerosF32({3, 45});
  for (tsr_op op :
       {TSR_OP_SILU, TSR_OP_GELU_TANH, TSR_OP_SOFTMAX, TSR_OP_RMS_NORM, TSR_OP_LAYER_NORM}) {
    tsr_node n = g.Node(op, {v}, vo);
    n.fparams[0] = op == TSR_OP_SOFTMAX ? 0.7f : 1e-5f;
    EXPECT_EQ(g.Run(n), TSR_OK);
    append(g.Read(vo));
  }
  const int64_t T = 9, H = 2, D = 24;
  const int q = g.F32({T, H, D}, Random(T * H * D, 54));
  const int k32 = g.F32({T, H, D}, Random(T * H * D, 55));
  const int k = g.Add(TSR_DTYPE_BF16, {T, H, D}, std::vector<uint16_t>(T * H * D));
  EXPECT_EQ(g.Run(g.Node(TSR_OP_COPY, {k32}, k)), TSR_OK);
  const int cu = g.I32({2}, {0, int32_t(T)}), ao = g.ZerosF32({T, H, D});
  tsr_node an = g.Node(TSR_OP_ATTENTION, {q, k, k, cu, cu}, ao);
  an.iparams[0] = 1;
  an.fparams[0] = 0.2f;
  EXPECT_EQ(g.Run(an), TSR_OK);
  append(g.Read(ao));
  return all;
}

// ---------------------------------------------------------------------------------------------
// Quantized weights: the int8 dot path (kernels_qmatmul.cc)
// ---------------------------------------------------------------------------------------------

// Value k of row n of Q8/Q4 weight bytes, decoded as the format specifies.
double DequantWeight(const std::vector<uint8_t>& bytes, tsr_dtype dtype, int64_t K, int64_t n,
                     int64_t k) {
  const int64_t bb = dtype == TSR_DTYPE_Q8_B32 ? 34 : 18;
  const uint8_t* block = bytes.data() + (n * (K / 32) + k / 32) * bb;
  uint16_t h;
  std::memcpy(&h, block, 2);
  const int e = (h >> 10) & 31, mant = h & 1023;  // finite scales only
  const double d =
      (h & 0x8000 ? -1 : 1) * (e == 0 ? std::ldexp(mant, -24) : std::ldexp(1024 + mant, e - 25));
  const int i = static_cast<int>(k % 32);
  if (dtype == TSR_DTYPE_Q8_B32) return d * static_cast<int8_t>(block[2 + i]);
  const uint8_t byte = block[2 + (i & 15)];
  return d * ((i < 16 ? (byte & 15) : (byte >> 4)) - 8);
}

// Each output against two double references:
//  (a) the exact dot of x with the dequantized weights, within the activation quantization's
//      bound: x is rounded to dx / 2 (dx = block amax / 127), so the error is at most
//      sum over blocks of (amax / 254) * sum |w| over the block, plus 1e-5 relative slack;
//  (b) the same dot with x quantized exactly as documented (q = nearbyint(x * 127 / amax)),
//      within f32 accumulation error: 2e-6 x sum |terms| + 1e-6.
// Then the portable path and VNNI without VBMI must give the same bits as the default (VNNI +
// VBMI) one, and single rows
// the same bits as the batch.
TEST_F(CpuBackendTest, QuantizedMatmulMatchesReferenceAndIsBatchInvariant) {
  Device fast(2, "on"), portable(2, "portable"), novbmi(2, "vnni");
  for (tsr_dtype dtype : {TSR_DTYPE_Q8_B32, TSR_DTYPE_Q4_B32}) {
    for (int64_t K : {int64_t{32}, int64_t{96}, int64_t{256}, int64_t{4864}}) {
      SCOPED_TRACE(std::to_string(dtype) + " K=" + std::to_string(K));
      const int64_t M = 37, N = 19;
      const std::vector<float> xs = Random(M * K, 61, 2.0f), ws = Random(N * K, 62, 0.1f);
      const std::vector<float> bs = Random(N, 63);
      std::vector<float> results[3];
      std::vector<uint8_t> wbytes;
      for (int path = 0; path < 3; ++path) {
        Graph g(path == 0 ? fast.dev() : path == 1 ? portable.dev() : novbmi.dev());
        const int w = MakeWeight(g, dtype, N, K, ws);
        wbytes = g.ReadBytes(w, N * K / 32 * (dtype == TSR_DTYPE_Q8_B32 ? 34 : 18));
        const int x = g.F32({M, K}, xs), b = g.F32({N}, bs), out = g.ZerosF32({M, N});
        ASSERT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {x, w, b}, out)), TSR_OK);
        results[path] = g.Read(out);
        for (int64_t r : {int64_t{0}, int64_t{5}, M - 1}) {  // GEMV rows vs GEMM rows
          const int x1 = g.F32({1, K}, {xs.begin() + r * K, xs.begin() + (r + 1) * K});
          const int o1 = g.ZerosF32({1, N});
          ASSERT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {x1, w, b}, o1)), TSR_OK);
          EXPECT_EQ(std::memcmp(g.Read(o1).data(), results[path].data() + r * N, N * 4), 0)
              << "row " << r << " path " << path;
        }
      }
      EXPECT_EQ(std::memcmp(results[0].data(), results[1].data(), M * N * 4), 0)
          << "VNNI and portable int8 dots differ";
      EXPECT_EQ(std::memcmp(results[0].data(), results[2].data(), M * N * 4), 0)
          << "VNNI with and without VBMI differ";
      for (int64_t m = 0; m < M; ++m) {
        for (int64_t n = 0; n < N; ++n) {
          double exact = bs[n], emul = bs[n], bound = 0, mag = 0;
          for (int64_t b0 = 0; b0 < K; b0 += 32) {
            float amax = 0;
            for (int64_t k = b0; k < b0 + 32; ++k) amax = std::max(amax, std::fabs(xs[m * K + k]));
            const float inv = amax > 0 ? 127.0f / amax : 0.0f;
            double wabs = 0, qdot = 0;
            for (int64_t k = b0; k < b0 + 32; ++k) {
              const double wv = DequantWeight(wbytes, dtype, K, n, k);
              exact += xs[m * K + k] * wv;
              wabs += std::fabs(wv);
              mag += std::fabs(xs[m * K + k] * wv);
              qdot += std::nearbyint(xs[m * K + k] * inv) * wv;
            }
            emul += static_cast<double>(amax / 127.0f) * qdot;
            bound += amax / 254.0 * wabs;
          }
          const double got = results[0][m * N + n];
          ASSERT_NEAR(got, exact, bound + 1e-5 * mag + 1e-6) << m << "," << n;
          ASSERT_NEAR(got, emul, 2e-6 * mag + 1e-6) << m << "," << n;
        }
      }
    }
  }
}

// Every compiled SIMD target this CPU runs (forced through Highway's dispatch state, which the
// plugin shares through libhwy) computes the same values within rounding, and each keeps the
// batch-invariance property on its own.
TEST_F(CpuBackendTest, EverySimdTargetAgrees) {
  Device d(2);
  const std::vector<float> best = RunSimdMix(d);
  const int64_t supported = hwy::SupportedTargets();
  // x86: AVX2, SSE4; aarch64 (under qemu, ci/arm64.sh): NEON and the SVE targets the CPU has.
  for (int64_t target : {int64_t{HWY_AVX2}, int64_t{HWY_SSE4}, int64_t{HWY_SVE2}, int64_t{HWY_SVE},
                         int64_t{HWY_SVE_256}, int64_t{HWY_SVE2_128}, int64_t{HWY_NEON},
                         int64_t{0} /* fallback */}) {
    if (target != 0 && (supported & target) == 0) continue;
    SCOPED_TRACE(target == 0 ? "fallback" : hwy::TargetName(target));
    hwy::GetChosenTarget().Update(target);
    const std::vector<float> got = RunSimdMix(d);
    hwy::GetChosenTarget().Update(supported);
    ASSERT_EQ(got.size(), best.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got[i], best[i], 1e-5 + 1e-5 * std::fabs(best[i])) << "output " << i;
    }
  }
}

// Not a test: matmul timings on the Qwen2.5-0.5B layer shapes, minimum over repetitions (robust
// on a shared machine). Run with --gtest_also_run_disabled_tests --gtest_filter='*Speed*'.
// Decode (M = 1) against a matrix that stays in cache measures the kernel's instruction cost
// (how many GB/s of weights it could consume); the LM-head-sized one measures DRAM streaming.
TEST_F(CpuBackendTest, DISABLED_MatmulSpeed) {
  struct Case {
    const char* name;
    int64_t M, N, K;
  };
  // "L2": one thread, a matrix that stays in L2 and many repetitions: the kernel's own cost
  // per weight byte, nearly immune to other tenants (their slices rarely hit a 10 us call).
  const Case cases[] = {
      {"decode L2 (1 thread)", 1, 256, 1792}, {"prefill L2 (1 thread)", 64, 128, 1792},
      {"decode up (cache)", 1, 4864, 896},    {"decode down (cache)", 1, 896, 4864},
      {"decode head (DRAM)", 1, 151936, 896}, {"prefill up", 512, 4864, 896},
      {"prefill down", 512, 896, 4864}};
  for (const char* mode : {"off", "on"}) {
    Device d(2, mode), d1(1, mode);
    for (tsr_dtype dtype : {TSR_DTYPE_BF16, TSR_DTYPE_Q8_B32, TSR_DTYPE_Q4_B32}) {
      if (std::string(mode) == "on" && dtype == TSR_DTYPE_BF16) continue;
      if (std::string(mode) == "off" && dtype != TSR_DTYPE_BF16) continue;
      for (const Case& c : cases) {
        const bool l2 = std::strstr(c.name, "L2") != nullptr;
        Graph g(l2 ? d1.dev() : d.dev());
        const int w = MakeWeight(g, dtype, c.N, c.K, Random(c.N * c.K, 7, 0.05f));
        const int x = g.F32({c.M, c.K}, Random(c.M * c.K, 8)), out = g.ZerosF32({c.M, c.N});
        const tsr_node node = g.Node(TSR_OP_MATMUL, {x, w}, out);
        const int reps = l2 ? 3000 / static_cast<int>(c.M) : c.M == 1 ? 30 : 5;
        double best = 1e30;
        for (int r = 0; r < reps; ++r) {
          const auto t0 = std::chrono::steady_clock::now();
          ASSERT_EQ(g.Run(node), TSR_OK);
          best = std::min(
              best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        const double bytes =
            static_cast<double>(c.N * c.K) * (dtype == TSR_DTYPE_BF16     ? 2.0
                                              : dtype == TSR_DTYPE_Q8_B32 ? 34.0 / 32
                                                                          : 18.0 / 32);
        std::printf("%-8s %-22s %8.3f ms  %7.1f GB/s weights  %7.1f GFLOP/s\n",
                    dtype == TSR_DTYPE_BF16     ? "bf16"
                    : dtype == TSR_DTYPE_Q8_B32 ? "q8"
                                                : "q4",
                    c.name, best * 1e3, bytes / best * 1e-9, 2.0 * c.M * c.N * c.K / best * 1e-9);
      }
    }
  }
}

// Attention tiles (kernels_attention.cc): at a Qwen2.5-like GQA shape (7 query heads per kv
// head, D = 64, several 32-key chunks) a prefill's rows equal, bit for bit, the same queries run
// one token at a time (decode: other tile shapes, other causal diagonals) and in uneven chunks,
// for f32 and bf16 K/V.
TEST_F(CpuBackendTest, AttentionTilesAreBatchInvariant) {
  Device d(2);
  Graph g(d.dev());
  const int64_t Hq = 14, Hkv = 2, D = 64, T = 75;
  const auto qs = Random(T * Hq * D, 61), ks = Random(T * Hkv * D, 62),
             vs = Random(T * Hkv * D, 63);
  for (tsr_dtype kv_dtype : {TSR_DTYPE_F32, TSR_DTYPE_BF16}) {
    SCOPED_TRACE(kv_dtype == TSR_DTYPE_F32 ? "f32 kv" : "bf16 kv");
    int k = g.F32({T, Hkv, D}, ks), v = g.F32({T, Hkv, D}, vs);
    if (kv_dtype == TSR_DTYPE_BF16) {
      k = g.Copied16(k, TSR_DTYPE_BF16, {T, Hkv, D});
      v = g.Copied16(v, TSR_DTYPE_BF16, {T, Hkv, D});
    }
    // Queries [t0, t1) against the first t1 keys (the keys a chunked prefill has by then).
    auto run = [&](int64_t t0, int64_t t1) {
      const int tq = g.F32({t1 - t0, Hq, D}, {qs.begin() + t0 * Hq * D, qs.begin() + t1 * Hq * D});
      const int cq = g.I32({2}, {0, int32_t(t1 - t0)}), ckk = g.I32({2}, {0, int32_t(t1)});
      const int out = g.ZerosF32({t1 - t0, Hq, D});
      tsr_node n = g.Node(TSR_OP_ATTENTION, {tq, k, v, cq, ckk}, out);
      n.iparams[0] = 1;
      n.fparams[0] = 0.125f;
      EXPECT_EQ(g.Run(n), TSR_OK);
      return g.Read(out);
    };
    const std::vector<float> full = run(0, T);
    const size_t row = Hq * D;
    for (int64_t t : {0, 1, 31, 32, 33, 50, 74}) {
      const std::vector<float> one = run(t, t + 1);
      EXPECT_EQ(std::memcmp(one.data(), full.data() + t * row, row * 4), 0) << "token " << t;
    }
    for (int64_t t0 : {5, 37}) {
      const std::vector<float> part = run(t0, T);
      EXPECT_EQ(std::memcmp(part.data(), full.data() + t0 * row, (T - t0) * row * 4), 0)
          << "chunk from " << t0;
    }
  }
}

// Attention's query-lane chunks (kernels_attention.cc, LaneChunk, AVX-512): a chunk takes that
// path when each of its tile's active queries sees its keys from the chunk's start, the
// per-query path otherwise. With a sliding window of 42 keys, the prefill tile of tokens 72-75
// (first visible keys 31-34) runs chunk 32 per query, while tokens 72 and 73 alone (decode) run
// it on the lane path; other tiles mix the paths likewise. Every row must equal its decode bit
// for bit, for each K/V dtype and at head sizes with a tail (D = 72: 64 + 8; D = 40: 32 + 8) and
// without (64), GQA and MHA, causal and not, with and without softcapping; and from a paged
// cache (ChunkRows' walk over blocks) as from the dense tensors.
TEST_F(CpuBackendTest, AttentionLaneChunksKeepBits) {
  Device d(2);
  Graph g(d.dev());
  struct Case {
    int64_t Hq, Hkv, D, window;
    int causal;
    float softcap;
  };
  const int64_t T = 100;
  for (const Case& c :
       {Case{14, 2, 64, 42, 1, 0.0f}, Case{4, 4, 72, 42, 1, 0.0f}, Case{6, 2, 40, 0, 1, 0.0f},
        Case{14, 2, 64, 0, 0, 0.0f}, Case{8, 2, 64, 42, 1, 30.0f}})
    for (tsr_dtype kv_dtype : {TSR_DTYPE_F32, TSR_DTYPE_BF16, TSR_DTYPE_F16}) {
      SCOPED_TRACE(testing::Message()
                   << "Hq " << c.Hq << " Hkv " << c.Hkv << " D " << c.D << " window " << c.window
                   << " causal " << c.causal << " softcap " << c.softcap << " dtype " << kv_dtype);
      const int64_t Hq = c.Hq, Hkv = c.Hkv, D = c.D;
      const auto qs = Random(T * Hq * D, 81);
      int k = g.F32({T, Hkv, D}, Random(T * Hkv * D, 82));
      int v = g.F32({T, Hkv, D}, Random(T * Hkv * D, 83));
      if (kv_dtype != TSR_DTYPE_F32) {
        k = g.Copied16(k, kv_dtype, {T, Hkv, D});
        v = g.Copied16(v, kv_dtype, {T, Hkv, D});
      }
      // Queries [t0, t1) against all T keys (causal: the ones up to each query's position).
      auto run = [&](int64_t t0, int64_t t1) {
        const int tq =
            g.F32({t1 - t0, Hq, D}, {qs.begin() + t0 * Hq * D, qs.begin() + t1 * Hq * D});
        const int cq = g.I32({2}, {0, int32_t(t1 - t0)});
        const int ckk = g.I32({2}, {0, int32_t(c.causal ? t1 : T)});
        const int out = g.ZerosF32({t1 - t0, Hq, D});
        tsr_node n = g.Node(TSR_OP_ATTENTION, {tq, k, v, cq, ckk}, out);
        n.iparams[0] = c.causal;
        n.iparams[1] = c.window;
        n.fparams[0] = 0.125f;
        n.fparams[1] = c.softcap;
        EXPECT_EQ(g.Run(n), TSR_OK);
        return g.Read(out);
      };
      const std::vector<float> full = run(0, T);
      const size_t row = Hq * D;
      for (int64_t t = 0; t < T; ++t) {
        const std::vector<float> one = run(t, t + 1);
        EXPECT_EQ(std::memcmp(one.data(), full.data() + t * row, row * 4), 0) << "token " << t;
      }
      if (kv_dtype != TSR_DTYPE_F32 || !c.causal) continue;
      // The same prefill from a paged cache (blocks of 12 slots, in reverse order: chunks of 32
      // keys span block boundaries).
      const int64_t BS = 12, NB = (T + BS - 1) / BS;
      const int kc = g.ZerosF32({NB, BS, Hkv, D}), vc = g.ZerosF32({NB, BS, Hkv, D});
      std::vector<int32_t> blocks(NB), slots(T);
      for (int64_t b = 0; b < NB; ++b) blocks[b] = int32_t(NB - 1 - b);
      for (int64_t j = 0; j < T; ++j) slots[j] = blocks[j / BS] * int32_t(BS) + int32_t(j % BS);
      const int sl = g.I32({T}, slots);
      ASSERT_EQ(g.Run(g.Node(TSR_OP_KV_WRITE, {kc, k, sl}, kc)), TSR_OK);
      ASSERT_EQ(g.Run(g.Node(TSR_OP_KV_WRITE, {vc, v, sl}, vc)), TSR_OK);
      const int tq = g.F32({T, Hq, D}, qs);
      const int table = g.I32({1, NB}, blocks), lens = g.I32({1}, {int32_t(T)});
      const int cu = g.I32({2}, {0, int32_t(T)}), out = g.ZerosF32({T, Hq, D});
      tsr_node pn = g.Node(TSR_OP_PAGED_ATTENTION, {tq, kc, vc, table, lens, cu}, out);
      pn.iparams[0] = 1;
      pn.iparams[1] = c.window;
      pn.fparams[0] = 0.125f;
      pn.fparams[1] = c.softcap;
      ASSERT_EQ(g.Run(pn), TSR_OK);
      EXPECT_EQ(std::memcmp(g.Read(out).data(), full.data(), full.size() * 4), 0)
          << "paged and dense attention differ";
    }
}

// Not a test: a checksum of attention outputs over many shapes (GQA and MHA, head sizes with
// and without a tail, windows, softcapping, f32 / bf16 / f16 K/V, prefill and decode lengths),
// one line per case and SIMD target (the best one, then each other one this CPU runs), for
// comparing two plugins' bits (TESSERA_CPU_PLUGIN=A, then B, diff). Run with
// --gtest_also_run_disabled_tests --gtest_filter='*AttentionBitsDump*'.
TEST_F(CpuBackendTest, DISABLED_AttentionBitsDump) {
  Device d2(2);
  struct Shape {
    int64_t Hq, Hkv, D, Dv;
  };
  const int64_t supported = hwy::SupportedTargets();
  for (int64_t target :
       {supported, int64_t{HWY_AVX2}, int64_t{HWY_SSE4}, int64_t{HWY_SVE2}, int64_t{HWY_SVE},
        int64_t{HWY_SVE_256}, int64_t{HWY_SVE2_128}, int64_t{HWY_NEON}, int64_t{0}}) {
    if (target != supported && target != 0 && (supported & target) == 0) continue;
    hwy::GetChosenTarget().Update(target);
    const char* tname = target == supported ? "best"
                        : target == 0       ? "fallback"
                                            : hwy::TargetName(target);
    for (const Shape& sh : {Shape{14, 2, 64, 64}, Shape{32, 8, 64, 64}, Shape{8, 8, 128, 128},
                            Shape{6, 2, 72, 72}, Shape{4, 1, 40, 24}, Shape{16, 2, 256, 256}})
      for (int64_t T : {1, 5, 33, 130, 300})
        for (int64_t past : {0, 37})
          for (int variant = 0; variant < 4; ++variant)
            for (tsr_dtype dt : {TSR_DTYPE_F32, TSR_DTYPE_BF16, TSR_DTYPE_F16}) {
              const int causal = variant != 3;
              const int64_t window = variant == 1 ? 50 : 0;
              const float softcap = variant == 2 ? 20.0f : 0.0f;
              Graph g(d2.dev());
              const int64_t Tk = T + past, Hq = sh.Hq, Hkv = sh.Hkv;
              const uint32_t seed = static_cast<uint32_t>(T * 7 + past + variant * 3 + sh.D);
              const int q = g.F32({T, Hq, sh.D}, Random(T * Hq * sh.D, seed));
              int k = g.F32({Tk, Hkv, sh.D}, Random(Tk * Hkv * sh.D, seed + 1, 2.0f));
              int v = g.F32({Tk, Hkv, sh.Dv}, Random(Tk * Hkv * sh.Dv, seed + 2));
              if (dt != TSR_DTYPE_F32) {
                const int kb = g.Add(dt, {Tk, Hkv, sh.D}, std::vector<uint16_t>(Tk * Hkv * sh.D));
                const int vb = g.Add(dt, {Tk, Hkv, sh.Dv}, std::vector<uint16_t>(Tk * Hkv * sh.Dv));
                ASSERT_EQ(g.Run(g.Node(TSR_OP_COPY, {k}, kb)), TSR_OK);
                ASSERT_EQ(g.Run(g.Node(TSR_OP_COPY, {v}, vb)), TSR_OK);
                k = kb;
                v = vb;
              }
              const int cq = g.I32({2}, {0, int32_t(T)}), ck = g.I32({2}, {0, int32_t(Tk)});
              const int out = g.ZerosF32({T, Hq, sh.Dv});
              tsr_node n = g.Node(TSR_OP_ATTENTION, {q, k, v, cq, ck}, out);
              n.iparams[0] = causal;
              n.iparams[1] = window;
              n.fparams[0] = 1.0f / std::sqrt(static_cast<float>(sh.D));
              n.fparams[1] = softcap;
              ASSERT_EQ(g.Run(n), TSR_OK);
              const std::vector<float> o = g.Read(out);
              uint64_t hsh = 1469598103934665603ull;
              for (float x : o) {
                uint32_t b;
                std::memcpy(&b, &x, 4);
                hsh = (hsh ^ b) * 1099511628211ull;
              }
              std::printf(
                  "%s Hq %lld Hkv %lld D %lld T %lld past %lld variant %d dtype %d: %016llx\n",
                  tname, static_cast<long long>(Hq), static_cast<long long>(Hkv),
                  static_cast<long long>(sh.D), static_cast<long long>(T),
                  static_cast<long long>(past), variant, static_cast<int>(dt),
                  static_cast<unsigned long long>(hsh));
            }
  }
  hwy::GetChosenTarget().Update(supported);
}

// Not a test: prefill attention timing at the Qwen2.5-0.5B shape (one layer, 14 query heads, 2
// kv heads, D = 64, causal, f32 K/V), one thread, minimum over repetitions. Run with
// --gtest_also_run_disabled_tests --gtest_filter='*AttentionSpeed*'.
TEST_F(CpuBackendTest, DISABLED_AttentionSpeed) {
  Device d1(1);
  Graph g(d1.dev());
  const int64_t Hq = 14, Hkv = 2, D = 64;
  for (int64_t T : {512, 2048}) {
    const int tq = g.F32({T, Hq, D}, Random(T * Hq * D, 71));
    const int tk = g.F32({T, Hkv, D}, Random(T * Hkv * D, 72));
    const int tv = g.F32({T, Hkv, D}, Random(T * Hkv * D, 73));
    const int cu = g.I32({2}, {0, int32_t(T)}), out = g.ZerosF32({T, Hq, D});
    tsr_node n = g.Node(TSR_OP_ATTENTION, {tq, tk, tv, cu, cu}, out);
    n.iparams[0] = 1;
    n.fparams[0] = 0.125f;
    double best = 1e30;
    for (int r = 0; r < (T > 1024 ? 5 : 20); ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      ASSERT_EQ(g.Run(n), TSR_OK);
      best = std::min(best,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const double flops = 4.0 * Hq * D * (T * (T + 1) / 2.0);
    std::printf("attention pp%-5lld %8.3f ms  %7.1f GFLOP/s\n", static_cast<long long>(T),
                best * 1e3, flops / best * 1e-9);
  }
}

// Not a test: decode attention timing (one query token against 4096 cached keys, f32 K/V) at
// the Qwen2.5-0.5B (14 / 2 heads) and Llama-3.2-1B (32 / 8) shapes, D = 64, one thread, minimum
// over repetitions. Run with --gtest_also_run_disabled_tests --gtest_filter='*DecodeSpeed*'.
TEST_F(CpuBackendTest, DISABLED_AttentionDecodeSpeed) {
  Device d1(1);
  Graph g(d1.dev());
  const int64_t D = 64, Tk = 4096;
  for (const auto& [Hq, Hkv] : {std::pair<int64_t, int64_t>{14, 2}, {32, 8}}) {
    const int tq = g.F32({1, Hq, D}, Random(Hq * D, 74));
    const int tk = g.F32({Tk, Hkv, D}, Random(Tk * Hkv * D, 75));
    const int tv = g.F32({Tk, Hkv, D}, Random(Tk * Hkv * D, 76));
    const int cq = g.I32({2}, {0, 1}), ck = g.I32({2}, {0, int32_t(Tk)});
    const int out = g.ZerosF32({1, Hq, D});
    tsr_node n = g.Node(TSR_OP_ATTENTION, {tq, tk, tv, cq, ck}, out);
    n.iparams[0] = 1;
    n.fparams[0] = 0.125f;
    double best = 1e30;
    for (int r = 0; r < 50; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      ASSERT_EQ(g.Run(n), TSR_OK);
      best = std::min(best,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::printf("attention decode Hq %lld Hkv %lld, %lld keys: %8.1f us\n",
                static_cast<long long>(Hq), static_cast<long long>(Hkv), static_cast<long long>(Tk),
                best * 1e6);
  }
}

// Option repack=on (packed_weights.h): weights in imported host memory are repacked (bf16: the
// GEMV's tile order; Q8/Q4: the int8 dot's operand order) on first use. GEMV rows (M = 1, 2) and
// GEMM rows (M = 7) give the same bits as without the option, on the first call (which packs)
// and the next (which reuses the copy): whole supersteps and a partial last one (K = 2176: a
// quarter superstep; K = 608: three blocks, a short last step; K = 896 and 4864: 12 and 8
// blocks, Qwen2.5-0.5B's), 8-row tiles and one-row ones.
// GET_ROWS of the packed table (a tied embedding's rows, read back from the copy) too.
TEST_F(CpuBackendTest, RepackedWeightsKeepBits) {
  // Pack bf16 tiles of any size (the default keeps tiles over 16 KiB row-major); read once, at
  // the first packing decision, which no earlier test makes.
  setenv("TESSERA_CPU_REPACK_MAX_TILE", "1000000000", 1);
  for (const auto& [N, K] :
       {std::pair<int64_t, int64_t>{48, 2 * 1024 + 128}, {108, 608}, {76, 896}, {20, 4864}})
    for (tsr_dtype dtype : {TSR_DTYPE_BF16, TSR_DTYPE_Q8_B32, TSR_DTYPE_Q4_B32}) {
      if (dtype == TSR_DTYPE_BF16 && K % 32 != 0) continue;
      SCOPED_TRACE(testing::Message() << dtype << " N " << N << " K " << K);
      const bool quant = dtype != TSR_DTYPE_BF16;
      const std::vector<float> ws = Random(N * K, 71, 0.1f), bs = Random(N, 72);
      // The weight bytes, converted by the plugin (COPY) on a plain device.
      const size_t wsize = quant ? N * K / 32 * (dtype == TSR_DTYPE_Q8_B32 ? 34 : 18) : N * K * 2;
      std::vector<uint8_t> wbytes;
      {
        Device plain(1);
        Graph g(plain.dev());
        wbytes = g.ReadBytes(MakeWeight(g, dtype, N, K, ws), wsize);
      }
      std::vector<float> want[3], got[3], want_gathered, got_gathered;
      const int64_t rows[3] = {1, 2, 7};
      for (int repack = 0; repack < 2; ++repack) {
        const tsr_option opts[3] = {{sizeof(tsr_option), "threads", "2"},
                                    {sizeof(tsr_option), "int8_dot", quant ? "on" : "off"},
                                    {sizeof(tsr_option), "repack", repack ? "on" : "off"}};
        tsr_plugin_ctx* ctx = nullptr;
        tsr_device* dev = nullptr;
        tsr_error err = NewError();
        ASSERT_EQ(api_->create_context(opts, 3, &ctx, &err), TSR_OK) << err.message;
        ASSERT_EQ(api_->device_open(ctx, 0, &dev, &err), TSR_OK) << err.message;
        {
          Graph g(dev);
          // An uploaded placeholder whose buffer is swapped for imported host memory.
          const int w = g.AddRaw(dtype, {N, K}, {static_cast<int64_t>(wsize / N), quant ? 0 : 2},
                                 wbytes.data(), wsize);
          tsr_buffer* imported = nullptr;
          ASSERT_EQ(api_->buffer_import_host(dev, wbytes.data(), wsize, &imported, &err), TSR_OK);
          g.tensor(w).buffer = imported;
          const int b = g.F32({N}, bs);
          for (int pass = 0; pass < 2; ++pass) {
            for (int i = 0; i < 3; ++i) {
              const int x = g.F32({rows[i], K}, Random(rows[i] * K, 73 + i));
              const int out = g.ZerosF32({rows[i], N});
              ASSERT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {x, w, b}, out)), TSR_OK);
              std::vector<float>& dst = repack ? got[i] : want[i];
              if (pass == 0) dst = g.Read(out);
              EXPECT_EQ(std::memcmp(g.Read(out).data(), dst.data(), dst.size() * 4), 0)
                  << "pass " << pass << " rows " << rows[i];
            }
          }
          // GET_ROWS of the packed table (a tied embedding) reads the copy: the same rows.
          const int ids =
              g.I32({4}, {static_cast<int32_t>(N - 1), 0, 5, static_cast<int32_t>(N / 2)});
          const int gathered = g.ZerosF32({4, K});
          ASSERT_EQ(g.Run(g.Node(TSR_OP_GET_ROWS, {w, ids}, gathered)), TSR_OK);
          (repack ? got_gathered : want_gathered) = g.Read(gathered);
          api_->buffer_free(imported);
        }
        api_->device_close(dev);
        api_->destroy_context(ctx);
      }
      for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(got[i].size(), want[i].size());
        EXPECT_EQ(std::memcmp(got[i].data(), want[i].data(), want[i].size() * 4), 0)
            << "repacked weights changed the bits, rows " << rows[i];
      }
      ASSERT_EQ(got_gathered.size(), want_gathered.size());
      EXPECT_EQ(std::memcmp(got_gathered.data(), want_gathered.data(), want_gathered.size() * 4), 0)
          << "GET_ROWS of the repacked table changed the bits";
    }
}

// The GEMV's prefetch inside its row streams (ops.h RowPrefetch, 512 bytes ahead, carried from
// tile to tile, continuing in the next tile's rows past a row's end, hinting past the last row;
// the f32/f16/bf16 tile and the int8 one): weights imported from host memory that ends where an
// inaccessible page begins, in several 8-row tiles and a one-row remainder, with rows longer
// and shorter than the prefetch distance. No fault, and the GEMV rows (M = 1, 2) equal the GEMM
// rows (M = 5) bit for bit. The host's policy decides which prefetch the dense rows take (Zen 4:
// the next tile, prefetcht1); ctest runs this test again with the others forced
// (cpu_backend_test_prefetch_rows_t1, _tile_t0).
TEST_F(CpuBackendTest, GemvRowPrefetchKeepsBitsAtTheEndOfMemory) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (const auto& [N, K] : {std::pair<int64_t, int64_t>{41, 896}, {43, 224}, {9, 2 * 1024 + 96}})
    for (tsr_dtype dtype :
         {TSR_DTYPE_F32, TSR_DTYPE_F16, TSR_DTYPE_BF16, TSR_DTYPE_Q8_B32, TSR_DTYPE_Q4_B32}) {
      SCOPED_TRACE(testing::Message() << dtype << " N " << N << " K " << K);
      const bool quant = dtype == TSR_DTYPE_Q8_B32 || dtype == TSR_DTYPE_Q4_B32;
      const size_t es = dtype == TSR_DTYPE_F32 ? 4 : 2;
      const size_t row_bytes = quant ? K / 32 * (dtype == TSR_DTYPE_Q8_B32 ? 34 : 18) : K * es;
      const size_t wsize = static_cast<size_t>(N) * row_bytes;
      const std::vector<float> ws = Random(N * K, 81), bs = Random(N, 82);
      std::vector<uint8_t> wbytes;
      {
        Device plain(1);
        Graph g(plain.dev());
        wbytes = g.ReadBytes(MakeWeight(g, dtype, N, K, ws), wsize);
      }
      // The weights end exactly at a PROT_NONE page.
      const size_t span = (wsize + page - 1) / page * page;
      void* map =
          mmap(nullptr, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      ASSERT_NE(map, MAP_FAILED);
      uint8_t* end = static_cast<uint8_t*>(map) + span;
      ASSERT_EQ(mprotect(end, page, PROT_NONE), 0);
      uint8_t* host = end - wsize;
      std::memcpy(host, wbytes.data(), wsize);
      Device d(2, quant ? "on" : nullptr);
      tsr_error err = NewError();
      {
        Graph g(d.dev());
        const int w = g.AddRaw(
            dtype, {N, K}, {static_cast<int64_t>(row_bytes), quant ? 0 : static_cast<int64_t>(es)},
            host, wsize);
        tsr_buffer* imported = nullptr;
        ASSERT_EQ(api_->buffer_import_host(d.dev(), host, wsize, &imported, &err), TSR_OK);
        g.tensor(w).buffer = imported;
        const int b = g.F32({N}, bs);
        const std::vector<float> xs = Random(5 * K, 83);
        const int x = g.F32({5, K}, xs);
        const int out = g.ZerosF32({5, N});
        ASSERT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {x, w, b}, out)), TSR_OK);
        const std::vector<float> gemm = g.Read(out);
        for (int64_t rows : {1, 2}) {
          for (int64_t r0 = 0; r0 + rows <= 5; r0 += 3) {
            const int xr = g.F32({rows, K}, {xs.begin() + r0 * K, xs.begin() + (r0 + rows) * K});
            const int o = g.ZerosF32({rows, N});
            ASSERT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {xr, w, b}, o)), TSR_OK);
            EXPECT_EQ(std::memcmp(g.Read(o).data(), gemm.data() + r0 * N, rows * N * 4), 0)
                << rows << " rows from " << r0;
          }
        }
        api_->buffer_free(imported);
      }
      munmap(map, span + page);
    }
}

// The int8 GEMM's 3 x 4 register tile (kernels_qmatmul-inl.h GemmPanels) at K = 1536 / 2048 (one
// range of supersteps), 4864 (two balanced ranges, the down projection's K, a half superstep
// last) and 5664 (three ranges, a one-block last step), with rows left over from the 3-row
// tiles (M % 3 = 1, 2) and weight rows left over from the 4-row groups (each thread's 8-aligned
// column chunk of N = 38): the VNNI paths (with and without VBMI) equal the portable lane-by-lane
// path bit for bit, and every checked row equals the same row alone (GEMV). (ctest's
// cpu_backend_test_qgemm_3x4 runs the quantized tests again with one-superstep ranges.)
TEST_F(CpuBackendTest, QuantizedGemm3x4TileKeepsBits) {
  Device fast(2, "on"), portable(2, "portable"), novbmi(2, "vnni");
  for (tsr_dtype dtype : {TSR_DTYPE_Q8_B32, TSR_DTYPE_Q4_B32}) {
    for (int64_t K : {int64_t{1536}, int64_t{2048}, int64_t{4864}, int64_t{5664}}) {
      for (int64_t M : {int64_t{4}, int64_t{35}}) {
        SCOPED_TRACE(testing::Message() << dtype << " K " << K << " M " << M);
        const int64_t N = 38;
        const std::vector<float> xs = Random(M * K, 91, 2.0f), ws = Random(N * K, 92, 0.1f);
        const std::vector<float> bs = Random(N, 93);
        std::vector<float> results[3];
        for (int path = 0; path < 3; ++path) {
          Graph g(path == 0 ? fast.dev() : path == 1 ? portable.dev() : novbmi.dev());
          const int w = MakeWeight(g, dtype, N, K, ws);
          const int x = g.F32({M, K}, xs), b = g.F32({N}, bs), out = g.ZerosF32({M, N});
          ASSERT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {x, w, b}, out)), TSR_OK);
          results[path] = g.Read(out);
          for (int64_t r : {int64_t{0}, M - 2, M - 1}) {
            const int x1 = g.F32({1, K}, {xs.begin() + r * K, xs.begin() + (r + 1) * K});
            const int o1 = g.ZerosF32({1, N});
            ASSERT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {x1, w, b}, o1)), TSR_OK);
            EXPECT_EQ(std::memcmp(g.Read(o1).data(), results[path].data() + r * N, N * 4), 0)
                << "row " << r << " path " << path;
          }
        }
        EXPECT_EQ(std::memcmp(results[0].data(), results[1].data(), M * N * 4), 0)
            << "VNNI and portable int8 dots differ";
        EXPECT_EQ(std::memcmp(results[0].data(), results[2].data(), M * N * 4), 0)
            << "VNNI with and without VBMI differ";
      }
    }
  }
}

// The int8 GEMM's tiles over unpacked weight groups (kernels_qmatmul-inl.h: 3 x 4 or 1 x 8 tiles
// by K, one-row groups for the weight rows left over, one-row tiles, ranges of steps): every row of
// a prefill-sized batch equals, bit for bit, the same row alone (GEMV) and within a small batch,
// with a bias and with a short last step (K % 128 != 0), for Q8 and Q4 weights.
TEST_F(CpuBackendTest, QuantizedGemmTilesAreBatchInvariant) {
  Device d(2, "on");
  Graph g(d.dev());
  for (tsr_dtype dtype : {TSR_DTYPE_Q8_B32, TSR_DTYPE_Q4_B32}) {
    // 2080: two step ranges of the unpacked weights, the second only the short last step.
    for (int64_t K : {int64_t{896}, int64_t{1056}, int64_t{2080}}) {
      SCOPED_TRACE(std::to_string(dtype) + " K=" + std::to_string(K));
      const int64_t M = 67, N = 45;
      const std::vector<float> xs = Random(M * K, 81, 2.0f);
      const int w = MakeWeight(g, dtype, N, K, Random(N * K, 82, 0.1f));
      const int b = g.F32({N}, Random(N, 83));
      const int x = g.F32({M, K}, xs), out = g.ZerosF32({M, N});
      ASSERT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {x, w, b}, out)), TSR_OK);
      const std::vector<float> all = g.Read(out);
      for (int64_t r : {int64_t{0}, int64_t{1}, int64_t{33}, M - 1}) {
        const int x1 = g.F32({1, K}, {xs.begin() + r * K, xs.begin() + (r + 1) * K});
        const int o1 = g.ZerosF32({1, N});
        ASSERT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {x1, w, b}, o1)), TSR_OK);
        EXPECT_EQ(std::memcmp(g.Read(o1).data(), all.data() + r * N, N * 4), 0) << "row " << r;
      }
      const int64_t r0 = 30, rows = 5;  // rows 30..34 as a batch of their own
      const int x5 = g.F32({rows, K}, {xs.begin() + r0 * K, xs.begin() + (r0 + rows) * K});
      const int o5 = g.ZerosF32({rows, N});
      ASSERT_EQ(g.Run(g.Node(TSR_OP_MATMUL, {x5, w, b}, o5)), TSR_OK);
      EXPECT_EQ(std::memcmp(g.Read(o5).data(), all.data() + r0 * N, rows * N * 4), 0);
    }
  }
}

}  // namespace
