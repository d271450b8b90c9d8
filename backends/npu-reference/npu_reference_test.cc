// The reference NPU through the core, as the engine drives it: claim of transformer blocks,
// f16/int8 at the boundary, shape buckets, the compiled-blob cache and its counters, the memory
// cap. Results are compared with the CPU backend running the same graph alone.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "graph.pb.h"
#include "tessera/core/device.h"
#include "tessera/core/executor.h"
#include "tessera/core/kv_cache.h"
#include "tessera/core/model/quantize.h"
#include "tessera/core/plugin_loader.h"
#include "tessera/core/scheduler.h"
#include "tessera/quant_formats.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;
using Options = std::vector<std::pair<std::string, std::string>>;

// fp16 activations at every boundary: relative to the output's largest magnitude.
constexpr float kFp16Tolerance = 1e-2f;

struct Runtime {
  std::unique_ptr<PluginRegistry> registry;
  std::unique_ptr<Device> npu, cpu;
  std::vector<Device*> both() { return {npu.get(), cpu.get()}; }
};

std::unique_ptr<Runtime> Start(const Options& npu_options) {
  LoaderOptions o;
  o.explicit_paths = {std::getenv("NPU_PLUGIN"), std::getenv("CPU_PLUGIN")};
  o.plugin_options["cpu"] = {{"threads", "2"}};
  o.plugin_options["npu-reference"] = npu_options;
  auto r = std::make_unique<Runtime>();
  r->registry = PluginRegistry::Discover(o);
  Plugin* npu = r->registry->Find("npu-reference");
  Plugin* cpu = r->registry->Find("cpu");
  if (npu == nullptr || cpu == nullptr) return nullptr;
  r->npu = std::move(Device::Open(npu, 0)).value();
  r->cpu = std::move(Device::Open(cpu, 0)).value();
  return r;
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("npu-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

nlohmann::json Stats(const TempDir& dir) {
  std::ifstream in(dir.str() + "/stats.json");
  return in ? nlohmann::json::parse(in) : nlohmann::json{{"compiled", -1}, {"cache_hits", -1}};
}

// A graph plus the host data it binds.
struct Model {
  Graph g;
  std::map<std::string, std::vector<float>> weights;
  std::map<TensorId, std::vector<float>> f32_inputs;
  std::map<TensorId, std::vector<int32_t>> i32_inputs;
  TensorId out = kNoTensor;

  TensorId W(const std::string& name, Shape shape, std::mt19937* rng, float scale = 0.2f) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::normal_distribution<float> dist(0.f, scale);
    auto& v = weights[name];
    for (int64_t i = 0; i < n; ++i) v.push_back(dist(*rng));
    return g.AddWeight(name, DType::kF32, std::move(shape));
  }
};

// x [T, 64] -> RMSNorm -> q/k/v -> RoPE -> causal ATTENTION -> o + residual -> RMSNorm ->
// gate/up -> SWIGLU -> down + residual. `attention` = false leaves only the MLP half.
// Weights depend only on the sizes, so graphs of several token counts share them.
std::unique_ptr<Model> Block(int64_t T, bool attention, int64_t hidden = 64, int64_t inter = 128) {
  std::mt19937 rng(7), input_rng(11);
  auto owned = std::make_unique<Model>();
  Model& m = *owned;
  Graph& g = m.g;
  TensorId x = g.AddInput("x", DType::kF32, {T, hidden});
  std::normal_distribution<float> dist(0.f, 1.f);
  for (int64_t i = 0; i < T * hidden; ++i) m.f32_inputs[x].push_back(dist(input_rng));
  auto norm = [&](TensorId in, const std::string& w) {
    OpParams p;
    p.f[0] = 1e-6f;
    TensorId wt = m.W(w, {hidden}, &rng, 0.1f);
    for (float& v : m.weights[w]) v += 1.f;
    return g.AddNode(TSR_OP_RMS_NORM, {in, wt}, DType::kF32, {T, hidden}, p);
  };
  auto linear = [&](TensorId in, const std::string& w, int64_t k, int64_t n) {
    return g.AddNode(TSR_OP_MATMUL, {in, m.W(w, {n, k}, &rng)}, DType::kF32, {T, n});
  };
  if (attention) {
    const int64_t H = 4, KV = 2, D = hidden / H;
    TensorId pos = g.AddInput("positions", DType::kI32, {T});
    TensorId cu = g.AddInput("cu", DType::kI32, {2});
    for (int64_t i = 0; i < T; ++i) m.i32_inputs[pos].push_back(static_cast<int32_t>(i));
    m.i32_inputs[cu] = {0, static_cast<int32_t>(T)};
    TensorId inv = g.AddWeight("inv_freq", DType::kF32, {D / 2});
    for (int64_t i = 0; i < D / 2; ++i)
      m.weights["inv_freq"].push_back(std::pow(10000.f, -2.f * i / D));
    TensorId h = norm(x, "n1");
    TensorId q = g.Reshape(linear(h, "wq", hidden, H * D), {T, H, D});
    TensorId k = g.Reshape(linear(h, "wk", hidden, KV * D), {T, KV, D});
    TensorId v = g.Reshape(linear(h, "wv", hidden, KV * D), {T, KV, D});
    OpParams rp;
    rp.i[1] = D;
    rp.f[0] = 1.f;
    q = g.AddNode(TSR_OP_ROPE, {q, pos, inv}, DType::kF32, {T, H, D}, rp);
    k = g.AddNode(TSR_OP_ROPE, {k, pos, inv}, DType::kF32, {T, KV, D}, rp);
    OpParams ap;
    ap.i[0] = 1;
    ap.f[0] = 1.f / std::sqrt(static_cast<float>(D));
    TensorId a = g.AddNode(TSR_OP_ATTENTION, {q, k, v, cu, cu}, DType::kF32, {T, H, D}, ap);
    TensorId o = linear(g.Reshape(a, {T, H * D}), "wo", H * D, hidden);
    x = g.AddNode(TSR_OP_ADD, {x, o}, DType::kF32, {T, hidden});
  }
  TensorId h = norm(x, "n2");
  TensorId gate = linear(h, "wg", hidden, inter), up = linear(h, "wu", hidden, inter);
  TensorId act = g.AddNode(TSR_OP_SWIGLU, {gate, up}, DType::kF32, {T, inter});
  m.out = g.AddNode(TSR_OP_ADD, {x, linear(act, "wd", inter, hidden)}, DType::kF32, {T, hidden});
  g.MarkOutput(m.out);
  EXPECT_TRUE(g.Validate().ok()) << g.Validate().ToString();
  return owned;
}

StatusOr<std::vector<float>> RunOn(ExecutionContext& ctx, Model& m) {
  for (auto& [name, v] : m.weights) ctx.BindWeight(name, v.data(), v.size() * sizeof(float));
  TSR_ASSIGN_OR_RETURN(auto exe, Executable::Prepare(ctx, m.g));
  std::vector<HostTensor> in;
  for (auto& [id, v] : m.f32_inputs) in.push_back({id, v.data(), v.size() * 4});
  for (auto& [id, v] : m.i32_inputs) in.push_back({id, v.data(), v.size() * 4});
  std::vector<float> out(static_cast<size_t>(m.g.tensor(m.out).NumElements()));
  HostTensor o{m.out, out.data(), out.size() * 4};
  TSR_RETURN_IF_ERROR(exe->Run(in, {&o, 1}));
  return out;
}

// The core's shape bucket (graph_serialize.h is internal): the next power of two.
int64_t ShapeBucketForTest(int64_t n) {
  int64_t b = 1;
  while (b < n) b *= 2;
  return b;
}

// Max |a - b| relative to max |b|.
float RelError(const std::vector<float>& a, const std::vector<float>& b) {
  float worst = 0, scale = 1e-6f;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return worst / scale;
}

std::vector<float> CpuReference(Runtime& rt, Model& m) {
  ExecutionContext ctx({rt.cpu.get()});
  auto r = RunOn(ctx, m);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<float>{};
}

TEST(NpuReference, ClaimsMatmulNormRopeAttentionAndMlp) {
  TempDir dir;
  auto rt = Start({{"cache_dir", dir.str()}});
  ASSERT_NE(rt, nullptr);
  auto mp = Block(6, true);
  Model& m = *mp;
  auto devices = rt->both();
  auto s = ScheduleGraph(m.g, devices);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  std::set<tsr_op> on_npu;
  for (int32_t n = 0; n < m.g.num_nodes(); ++n) {
    EXPECT_EQ(s->node_device[n], 0) << "node " << n << " " << OpName(m.g.nodes()[n].op);
    if (s->node_device[n] == 0) on_npu.insert(m.g.nodes()[n].op);
  }
  for (tsr_op op :
       {TSR_OP_MATMUL, TSR_OP_RMS_NORM, TSR_OP_ROPE, TSR_OP_ATTENTION, TSR_OP_SWIGLU, TSR_OP_ADD})
    EXPECT_TRUE(on_npu.count(op)) << OpName(op);
  int compiled_steps = 0;
  for (const Step& st : s->steps) compiled_steps += st.kind == Step::Kind::kCompiled;
  EXPECT_EQ(compiled_steps, 1) << "one fused group";
}

TEST(NpuReference, BlockMatchesCpuWithinFp16Tolerance) {
  TempDir dir;
  auto rt = Start({{"cache_dir", dir.str()}});
  ASSERT_NE(rt, nullptr);
  for (bool attention : {false, true}) {
    auto mp = Block(5, attention);
    Model& m = *mp;
    std::vector<float> want = CpuReference(*rt, m);
    ExecutionContext ctx(rt->both());
    auto got = RunOn(ctx, m);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_LE(RelError(*got, want), kFp16Tolerance) << "attention " << attention;
    // ... and not bit-equal: the NPU really computed in f16.
    EXPECT_GT(RelError(*got, want), 0.f);
  }
}

// The device refuses f32: a GraphProto with an f32 tensor does not compile, and the one the core
// sends it has only f16 (and int32 index) tensors.
TEST(NpuReference, TakesOnlyF16AndInt8AtTheBoundary) {
  TempDir dir;
  auto rt = Start({{"cache_dir", "none"}});
  ASSERT_NE(rt, nullptr);
  EXPECT_TRUE(rt->npu->props().caps & TSR_CAP_NO_F32);
  wire::GraphProto g;
  g.set_opset_major(TSR_ABI_MAJOR);
  for (auto* t : {g.add_inputs(), g.add_outputs()}) {
    t->set_dtype(wire::DT_F32);
    t->add_shape(4);
  }
  g.mutable_inputs(0)->set_name("a");
  g.mutable_outputs(0)->set_name("b");
  auto* n = g.add_nodes();
  n->set_op(TSR_OP_SILU);
  n->add_inputs("a");
  n->set_output("b");
  const std::string bytes = g.SerializeAsString();
  const tsr_plugin_api& api = rt->npu->plugin().api();
  tsr_executable* exe = nullptr;
  tsr_error err{};
  err.struct_size = sizeof(err);
  EXPECT_EQ(api.compile(rt->npu->handle(), bytes.data(), bytes.size(), nullptr, 0, &exe, &err),
            TSR_ERR_UNSUPPORTED);
  EXPECT_NE(std::string(err.message).find("f16/int8 only"), std::string::npos) << err.message;

  g.mutable_inputs(0)->set_dtype(wire::DT_F16);
  g.mutable_outputs(0)->set_dtype(wire::DT_F16);
  const std::string ok = g.SerializeAsString();
  ASSERT_EQ(api.compile(rt->npu->handle(), ok.data(), ok.size(), nullptr, 0, &exe, &err), TSR_OK)
      << err.message;
  api.executable_free(exe);

  // Through the core: the block runs, so every tensor it handed over was f16/int32/Q8.
  auto mp = Block(3, true);
  Model& m = *mp;
  ExecutionContext ctx(rt->both());
  auto got = RunOn(ctx, m);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
}

// Int8 weights (Q8_B32 blocks) reach the device as they are: only floats are converted.
TEST(NpuReference, RunsQ8WeightsAsInt8) {
  auto rt = Start({{"cache_dir", "none"}});
  ASSERT_NE(rt, nullptr);
  const int64_t T = 4, K = 64, N = 32;
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> x(T * K), wf(N * K);
  for (float& v : x) v = dist(rng);
  for (float& v : wf) v = 0.2f * dist(rng);
  std::vector<uint8_t> wq(static_cast<size_t>(N * K / TSR_QBLOCK * TSR_BLOCK_Q8_BYTES));
  for (int64_t b = 0; b < N * K / TSR_QBLOCK; ++b)
    QuantizeBlockQ8(&wf[b * TSR_QBLOCK], &wq[b * TSR_BLOCK_Q8_BYTES]);
  Graph g;
  TensorId xi = g.AddInput("x", DType::kF32, {T, K});
  TensorId w = g.AddWeight("w", DType::kQ8, {N, K});
  TensorId y = g.AddNode(TSR_OP_MATMUL, {xi, w}, DType::kF32, {T, N});
  g.MarkOutput(y);
  auto run = [&](std::vector<Device*> devices) {
    ExecutionContext ctx(std::move(devices));
    ctx.BindWeight("w", wq.data(), wq.size());
    auto exe = Executable::Prepare(ctx, g);
    EXPECT_TRUE(exe.ok()) << exe.status().ToString();
    std::vector<float> out(T * N);
    HostTensor in{xi, x.data(), x.size() * 4}, o{y, out.data(), out.size() * 4};
    if (exe.ok()) {
      EXPECT_EQ((*exe)->schedule().node_device[0], 0);
      Status st = (*exe)->Run({&in, 1}, {&o, 1});
      EXPECT_TRUE(st.ok()) << st.ToString();
    }
    return out;
  };
  std::vector<float> want = run({rt->cpu.get()}), got = run(rt->both());
  EXPECT_LE(RelError(got, want), kFp16Tolerance);
}

// Token counts 3 and 4 share the 4-row bucket, 5..8 the 8-row one: one compile each.
TEST(NpuReference, StaticShapesGetBuckets) {
  TempDir dir;
  auto rt = Start({{"cache_dir", "none"}, {"stats_file", dir.str() + "/stats.json"}});
  ASSERT_NE(rt, nullptr);
  ExecutionContext ctx(rt->both());
  std::vector<std::unique_ptr<Model>> alive;  // the context keeps pointers to bound weights
  int64_t last = 0;
  for (auto [T, compiles] :
       std::vector<std::pair<int64_t, int64_t>>{{3, 1}, {4, 1}, {5, 2}, {8, 2}, {7, 2}, {1, 3}}) {
    auto mp = Block(T, false);
    Model& m = *mp;
    std::vector<float> want = CpuReference(*rt, m);
    auto got = RunOn(ctx, m);
    alive.push_back(std::move(mp));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_LE(RelError(*got, want), kFp16Tolerance) << "T=" << T;
    last = Stats(dir)["compiled"].get<int64_t>();
    EXPECT_EQ(last, compiles) << "T=" << T;
  }
  EXPECT_EQ(ctx.compile_stats().compiled, 3);
}

// Compiled blobs are cached on disk by hash(GraphProto) + compat string: a second start of the
// same model compiles nothing.
TEST(NpuReference, SecondStartCompilesNothing) {
  TempDir dir;
  const Options opt = {{"cache_dir", dir.str() + "/blobs"},
                       {"stats_file", dir.str() + "/stats.json"}};
  std::vector<float> first;
  {
    auto rt = Start(opt);
    ASSERT_NE(rt, nullptr);
    ExecutionContext ctx(rt->both());
    auto mp = Block(6, true);
    Model& m = *mp;
    auto r = RunOn(ctx, m);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    first = *r;
    EXPECT_EQ(Stats(dir)["compiled"], 1);
    EXPECT_EQ(Stats(dir)["cache_hits"], 0);
    EXPECT_EQ(Stats(dir)["cache_writes"], 1);
  }
  int blobs = 0;
  for (const auto& e : fs::directory_iterator(dir.str() + "/blobs"))
    blobs += e.path().extension() == ".npub";
  EXPECT_EQ(blobs, 1);
  {
    auto rt = Start(opt);
    ASSERT_NE(rt, nullptr);
    ExecutionContext ctx(rt->both());
    auto mp = Block(6, true);
    Model& m = *mp;
    auto r = RunOn(ctx, m);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, first) << "the cached program computes the same bits";
    EXPECT_EQ(Stats(dir)["compiled"], 0);
    EXPECT_EQ(Stats(dir)["cache_hits"], 1);
  }
}

// A blob of another device or version is refused, never run.
TEST(NpuReference, ForeignBlobIsRefused) {
  auto rt = Start({{"cache_dir", "none"}});
  ASSERT_NE(rt, nullptr);
  const tsr_plugin_api& api = rt->npu->plugin().api();
  tsr_executable* exe = nullptr;
  tsr_error err{};
  err.struct_size = sizeof(err);
  const char junk[] = "TNPUREF1 but not really";
  EXPECT_EQ(
      api.deserialize_executable(rt->npu->handle(), junk, sizeof(junk), nullptr, 0, &exe, &err),
      TSR_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(exe, nullptr);
}

// The device-memory cap: an allocation past it is a clear error, and claim leaves the nodes that
// would not fit to the CPU, so the graph still runs (and right).
TEST(NpuReference, MemoryCapIsHonoured) {
  auto rt = Start({{"cache_dir", "none"}, {"memory_mb", "1"}});
  ASSERT_NE(rt, nullptr);
  EXPECT_EQ(rt->npu->props().memory_total, 1u << 20);
  auto big = rt->npu->Alloc(2u << 20);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted) << big.status().ToString();
  EXPECT_NE(big.status().message().find("memory cap of 1 MiB"), std::string::npos)
      << big.status().ToString();

  // 3 matrices of 256 x 1024 f16 = 1.5 MiB: they cannot all live on the device.
  auto mp = Block(4, false, 256, 1024);
  Model& m = *mp;
  auto devices = rt->both();
  auto s = ScheduleGraph(m.g, devices);
  ASSERT_TRUE(s.ok());
  int on_npu = 0, on_cpu = 0;
  for (int32_t d : s->node_device) (d == 0 ? on_npu : on_cpu)++;
  EXPECT_GT(on_npu, 0);
  EXPECT_GT(on_cpu, 0);
  std::vector<float> want = CpuReference(*rt, m);
  ExecutionContext ctx(rt->both());
  auto got = RunOn(ctx, m);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_LE(RelError(*got, want), kFp16Tolerance);
}

// ---- paged attention with the KV pool on the device --------------------------------------------

// One decoder layer's attention block over a paged KV cache: RMSNorm -> q/k/v -> RoPE ->
// KV_WRITE k, v -> PAGED_ATTENTION -> o-proj + residual. Weights are made once and bound by name
// in every context.
struct PagedLayer {
  static constexpr int64_t kHidden = 64, kHeads = 4, kKvHeads = 2, kDim = 16, kBlockSize = 4;
  std::map<std::string, std::vector<float>> weights;
  int32_t num_blocks;

  explicit PagedLayer(int32_t blocks) : num_blocks(blocks) {
    std::mt19937 rng(5);
    std::normal_distribution<float> dist(0.f, 0.2f);
    auto make = [&](const std::string& name, int64_t n) {
      for (int64_t i = 0; i < n; ++i) weights[name].push_back(dist(rng));
    };
    make("wq", kHeads * kDim * kHidden);
    make("wk", kKvHeads * kDim * kHidden);
    make("wv", kKvHeads * kDim * kHidden);
    make("wo", kHidden * kHeads * kDim);
    make("n1", kHidden);
    for (float& v : weights["n1"]) v += 1.f;
    for (int64_t i = 0; i < kDim / 2; ++i)
      weights["inv_freq"].push_back(std::pow(10000.f, -2.f * i / kDim));
  }
  void Bind(ExecutionContext& ctx) {
    for (auto& [name, v] : weights) ctx.BindWeight(name, v.data(), v.size() * sizeof(float));
  }
  KvCacheShape CacheShape() const {
    KvCacheShape s;
    s.num_layers = 1;
    s.num_kv_heads = kKvHeads;
    s.head_dim = kDim;
    s.block_size = kBlockSize;
    s.num_blocks = num_blocks;
    return s;
  }

  struct Step {
    Graph g;
    TensorId x, pos, slots, table, lens, cu, out, kv_write, attention;
  };
  std::unique_ptr<Step> Build(int64_t T, int64_t S, int64_t MB) const {
    auto st = std::make_unique<Step>();
    Graph& g = st->g;
    const int64_t H = kHeads, KV = kKvHeads, D = kDim;
    st->x = g.AddInput("x", DType::kF32, {T, kHidden});
    st->pos = g.AddInput("positions", DType::kI32, {T});
    st->slots = g.AddInput("slots", DType::kI32, {T});
    st->table = g.AddInput("block_table", DType::kI32, {S, MB});
    st->lens = g.AddInput("kv_lens", DType::kI32, {S});
    st->cu = g.AddInput("cu_q", DType::kI32, {S + 1});
    auto w = [&](const std::string& name, Shape shape) {
      return g.AddWeight(name, DType::kF32, std::move(shape));
    };
    auto linear = [&](TensorId in, const std::string& name, int64_t k, int64_t n) {
      return g.AddNode(TSR_OP_MATMUL, {in, w(name, {n, k})}, DType::kF32, {T, n});
    };
    OpParams np;
    np.f[0] = 1e-6f;
    TensorId h =
        g.AddNode(TSR_OP_RMS_NORM, {st->x, w("n1", {kHidden})}, DType::kF32, {T, kHidden}, np);
    TensorId q = g.Reshape(linear(h, "wq", kHidden, H * D), {T, H, D});
    TensorId k = g.Reshape(linear(h, "wk", kHidden, KV * D), {T, KV, D});
    TensorId v = g.Reshape(linear(h, "wv", kHidden, KV * D), {T, KV, D});
    OpParams rp;
    rp.i[1] = D;
    rp.f[0] = 1.f;
    TensorId inv = w("inv_freq", {D / 2});
    q = g.AddNode(TSR_OP_ROPE, {q, st->pos, inv}, DType::kF32, {T, H, D}, rp);
    k = g.AddNode(TSR_OP_ROPE, {k, st->pos, inv}, DType::kF32, {T, KV, D}, rp);
    const Shape pool = {num_blocks, kBlockSize, KV, D};
    TensorId kc = g.AddState(KvCache::KName(0), DType::kF32, pool);
    TensorId vc = g.AddState(KvCache::VName(0), DType::kF32, pool);
    st->kv_write = g.num_nodes();
    TensorId kw = g.AddInPlaceNode(TSR_OP_KV_WRITE, {kc, k, st->slots}, kc);
    TensorId vw = g.AddInPlaceNode(TSR_OP_KV_WRITE, {vc, v, st->slots}, vc);
    OpParams ap;
    ap.i[0] = 1;
    ap.f[0] = 1.f / std::sqrt(static_cast<float>(D));
    st->attention = g.num_nodes();
    TensorId a = g.AddNode(TSR_OP_PAGED_ATTENTION, {q, kw, vw, st->table, st->lens, st->cu},
                           DType::kF32, {T, H, D}, ap);
    TensorId o = linear(g.Reshape(a, {T, H * D}), "wo", H * D, kHidden);
    st->out = g.AddNode(TSR_OP_ADD, {st->x, o}, DType::kF32, {T, kHidden});
    g.MarkOutput(st->out);
    EXPECT_TRUE(g.Validate().ok()) << g.Validate().ToString();
    return st;
  }
};

// One engine-like context driving the layer: its own KV cache (placed by KvCache::Create).
struct PagedContext {
  ExecutionContext ctx;
  std::unique_ptr<KvCache> cache;
  std::vector<SequenceBlocks> seqs;
  PagedContext(std::vector<Device*> devices, PagedLayer& layer) : ctx(std::move(devices)) {
    layer.Bind(ctx);
    auto c = KvCache::Create(layer.CacheShape(), ctx, 0);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (c.ok()) cache = std::move(c).value();
  }
};

// What a run of steps showed: the worst relative error against the CPU, where the KV nodes ran.
struct PagedResult {
  float worst = 0;
  std::set<int32_t> kv_devices;  // devices KV_WRITE and PAGED_ATTENTION were scheduled on
  int64_t compiles = 0, distinct_buckets = 0;
};

// Prefill of two sequences, decode steps across several blocks, then a third sequence joins
// (3 sequences: a padded sequence bucket). Each step runs on `devices` and on the CPU alone.
PagedResult RunPagedSteps(Runtime& rt, PagedLayer& layer, std::vector<Device*> devices) {
  using Plan = std::vector<std::pair<int, int32_t>>;  // (sequence, new tokens)
  std::vector<Plan> plan = {{{0, 5}, {1, 3}}};
  for (int i = 0; i < 6; ++i) plan.push_back({{0, 1}, {1, 1}});
  plan.push_back({{0, 1}, {1, 1}, {2, 3}});
  for (int i = 0; i < 2; ++i) plan.push_back({{0, 1}, {1, 1}, {2, 1}});
  PagedContext dev(std::move(devices), layer), cpu({rt.cpu.get()}, layer);
  PagedResult r;
  std::set<std::tuple<int64_t, int64_t, int64_t>> buckets;
  std::mt19937 rng(17);
  std::normal_distribution<float> dist(0.f, 1.f);
  for (const Plan& step : plan) {
    std::vector<int32_t> pos, slots, lens, cu = {0}, table;
    for (PagedContext* c : {&dev, &cpu}) c->seqs.resize(3);
    int64_t mb = 0;
    for (auto [s, n] : step) {
      std::vector<int32_t> cpu_slots;
      for (int32_t i = 0; i < n; ++i) pos.push_back(dev.seqs[s].num_tokens + i);
      EXPECT_TRUE(dev.cache->Extend(dev.seqs[s], n, &slots).ok());
      EXPECT_TRUE(cpu.cache->Extend(cpu.seqs[s], n, &cpu_slots).ok());
      cu.push_back(cu.back() + n);
      lens.push_back(dev.seqs[s].num_tokens);
      mb = std::max<int64_t>(mb, static_cast<int64_t>(dev.seqs[s].blocks.size()));
    }
    for (auto [s, n] : step) {
      std::vector<int32_t> row = dev.seqs[s].blocks;
      row.resize(static_cast<size_t>(mb), -1);
      table.insert(table.end(), row.begin(), row.end());
    }
    const int64_t T = static_cast<int64_t>(pos.size()), S = static_cast<int64_t>(step.size());
    buckets.insert({ShapeBucketForTest(T), ShapeBucketForTest(S), ShapeBucketForTest(mb)});
    std::vector<float> x(static_cast<size_t>(T * PagedLayer::kHidden));
    for (float& v : x) v = dist(rng);
    auto graph = layer.Build(T, S, mb);
    std::vector<float> outs[2];
    for (int which = 0; which < 2; ++which) {
      PagedContext& c = which == 0 ? dev : cpu;
      auto exe = Executable::Prepare(c.ctx, graph->g);
      EXPECT_TRUE(exe.ok()) << exe.status().ToString();
      if (!exe.ok()) return r;
      if (which == 0)
        for (int32_t n = graph->kv_write; n <= graph->attention; ++n)
          r.kv_devices.insert((*exe)->schedule().node_device[n]);
      auto i32 = [](TensorId id, std::vector<int32_t>& v) {
        return HostTensor{id, v.data(), v.size() * 4};
      };
      std::vector<HostTensor> in = {
          {graph->x, x.data(), x.size() * 4}, i32(graph->pos, pos),   i32(graph->slots, slots),
          i32(graph->table, table),           i32(graph->lens, lens), i32(graph->cu, cu)};
      outs[which].resize(x.size());
      HostTensor o{graph->out, outs[which].data(), outs[which].size() * 4};
      Status st = (*exe)->Run(in, {&o, 1});
      EXPECT_TRUE(st.ok()) << st.ToString();
    }
    r.worst = std::max(r.worst, RelError(outs[0], outs[1]));
  }
  r.compiles = dev.ctx.compile_stats().compiled;
  r.distinct_buckets = static_cast<int64_t>(buckets.size());
  return r;
}

// KV_WRITE and PAGED_ATTENTION are claimed with the rest of the attention block: the KV pool
// lives on the NPU (in its own layout), the whole block is one executable, decode steps across
// several blocks and sequences match the CPU, and per-step metadata is bucketed (token and
// sequence counts and block-table widths 3/4 share a program).
TEST(NpuReference, PagedAttentionRunsOnTheNpuWithItsOwnKvPool) {
  TempDir dir;
  {
    auto rt = Start({{"cache_dir", "none"}, {"stats_file", dir.str() + "/stats.json"}});
    ASSERT_NE(rt, nullptr);
    PagedLayer layer(16);
    {
      auto devices = rt->both();
      auto step = layer.Build(4, 2, 2);
      ExecutionContext ctx(devices);
      layer.Bind(ctx);
      auto cache = KvCache::Create(layer.CacheShape(), ctx, 0);
      ASSERT_TRUE(cache.ok()) << cache.status().ToString();
      auto exe = Executable::Prepare(ctx, step->g);
      ASSERT_TRUE(exe.ok()) << exe.status().ToString();
      for (int32_t n = 0; n < step->g.num_nodes(); ++n)
        EXPECT_EQ((*exe)->schedule().node_device[n], 0)
            << "node " << n << " " << OpName(step->g.nodes()[n].op);
      int compiled_steps = 0;
      for (const Step& st : (*exe)->schedule().steps)
        compiled_steps += st.kind == Step::Kind::kCompiled;
      EXPECT_EQ(compiled_steps, 1)
          << "q/k/v, RoPE, KV write, paged attention and o-proj: one group";
      // The pool is NPU memory (not host-visible), counted against the cap.
      EXPECT_NE((*exe)->Location(step->g.nodes()[step->kv_write].inputs[0], 0).first, nullptr);
      EXPECT_EQ((*exe)->Location(step->g.nodes()[step->kv_write].inputs[0], 1).first, nullptr);
    }
    PagedResult r = RunPagedSteps(*rt, layer, rt->both());
    EXPECT_EQ(r.kv_devices, std::set<int32_t>{0});
    EXPECT_LE(r.worst, kFp16Tolerance);
    EXPECT_GT(r.worst, 0.f) << "the NPU really computed in f16";
    EXPECT_EQ(r.compiles, r.distinct_buckets) << "one program per (tokens, seqs, width) bucket";
  }
  // The counters written at shutdown: attention really ran on the device.
  const nlohmann::json stats = Stats(dir);
  const nlohmann::json executed = stats.value("executed", nlohmann::json::object());
  EXPECT_GT(executed.value("KV_WRITE", 0), 0) << stats.dump();
  EXPECT_GT(executed.value("PAGED_ATTENTION", 0), 0) << stats.dump();
}

// A pool that does not fit the device leaves it on the CPU, and the NPU then does not run
// KV_WRITE / PAGED_ATTENTION: (1) its claim refuses a pool over its KV budget (a quarter of
// memory_mb), (2) a pool the claim takes but whose allocation fails falls back too.
TEST(NpuReference, KvPoolFallsBackToTheCpuWhenItDoesNotFit) {
  {
    auto rt = Start({{"cache_dir", "none"}, {"memory_mb", "1"}});
    ASSERT_NE(rt, nullptr);
    PagedLayer layer(1024);  // 2 x 256 KiB of f16 pools: over the 256 KiB KV budget
    PagedResult r = RunPagedSteps(*rt, layer, rt->both());
    EXPECT_EQ(r.kv_devices, std::set<int32_t>{1});
    EXPECT_LE(r.worst, kFp16Tolerance);
  }
  {
    auto rt = Start({{"cache_dir", "none"}, {"memory_mb", "1"}});
    ASSERT_NE(rt, nullptr);
    auto hog = rt->npu->Alloc(900u << 10);  // the claim would take the pool, memory would not
    ASSERT_TRUE(hog.ok());
    PagedLayer layer(256);  // 2 x 64 KiB: within the KV budget, but only one pool fits
    PagedResult r = RunPagedSteps(*rt, layer, rt->both());
    EXPECT_EQ(r.kv_devices, std::set<int32_t>{1});
    EXPECT_LE(r.worst, kFp16Tolerance);
  }
}

TEST(NpuReference, UnknownOptionIsAnError) {
  LoaderOptions o;
  o.explicit_paths = {std::getenv("NPU_PLUGIN")};
  o.plugin_options["npu-reference"] = {{"memroy_mb", "5"}};
  auto reg = PluginRegistry::Discover(o);
  EXPECT_EQ(reg->Find("npu-reference"), nullptr);
  bool explained = false;
  for (const auto& c : reg->candidates())
    explained |= c.reason.find("unknown option 'memroy_mb'") != std::string::npos;
  EXPECT_TRUE(explained);
}

}  // namespace
}  // namespace tessera
