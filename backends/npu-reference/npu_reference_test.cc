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

#include "graph.pb.h"
#include "tessera/core/device.h"
#include "tessera/core/executor.h"
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
