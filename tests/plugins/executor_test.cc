// Scheduler + executor tests on real plugins: the C test GPU plugin (add/mul/scale only), the
// compile-style test NPU plugin and the CPU plugin as the fallback.
#include "tessera/core/executor.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>

namespace tessera {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Env("TP_CPU").empty()) GTEST_SKIP() << "CPU plugin not built";
    LoaderOptions o;
    o.explicit_paths = {Env("TP_TESTGPU"), Env("TP_TESTNPU"), Env("TP_CPU")};
    o.plugin_options["cpu"] = {{"threads", "2"}};
    reg_ = PluginRegistry::Discover(o);
    for (const char* id : {"testgpu", "testnpu", "cpu"}) {
      Plugin* p = reg_->Find(id);
      ASSERT_NE(p, nullptr) << reg_->ExplainMissing(id).message();
      auto dev = Device::Open(p, 0);
      ASSERT_TRUE(dev.ok()) << dev.status().ToString();
      devs_[id] = std::move(dev).value();
    }
  }
  Device* dev(const char* id) { return devs_[id].get(); }

  std::unique_ptr<PluginRegistry> reg_;
  std::map<std::string, std::unique_ptr<Device>> devs_;
};

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

float Silu(float x) {
  return x / (1.f + std::exp(-x));
}

// y = silu(x W^T + a) * a, x [M, K], W [N, K], a [M, N]
struct Mlp {
  static constexpr int M = 5, K = 16, N = 12;
  Graph g;
  TensorId x, a, out;
  std::vector<float> xv = Random(M * K, 1), wv = Random(N * K, 2), av = Random(M * N, 3);
  Mlp() {
    x = g.AddInput("x", DType::kF32, {M, K});
    a = g.AddInput("a", DType::kF32, {M, N});
    TensorId w = g.AddWeight("w", DType::kF32, {N, K});
    TensorId h = g.AddNode(TSR_OP_MATMUL, {x, w}, DType::kF32, {M, N});
    TensorId s = g.AddNode(TSR_OP_ADD, {h, a}, DType::kF32, {M, N});
    TensorId t = g.AddNode(TSR_OP_SILU, {s}, DType::kF32, {M, N});
    out = g.AddNode(TSR_OP_MUL, {t, a}, DType::kF32, {M, N});
    g.MarkOutput(out);
  }
  std::vector<float> Expected() const {
    std::vector<float> y(M * N);
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        double acc = 0;
        for (int k = 0; k < K; ++k) acc += double(xv[m * K + k]) * wv[n * K + k];
        float s = static_cast<float>(acc) + av[m * N + n];
        y[m * N + n] = Silu(s) * av[m * N + n];
      }
    return y;
  }
  Status Run(Executable& exe, std::vector<float>* y) {
    y->assign(M * N, 0.f);
    HostTensor ins[] = {{x, xv.data(), xv.size() * 4}, {a, av.data(), av.size() * 4}};
    HostTensor outs[] = {{out, y->data(), y->size() * 4}};
    return exe.Run(ins, outs);
  }
};

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5f) << "at " << i;
}

TEST_F(ExecutorTest, SplitsAcrossDevicesFallsBackToCpuAndInsertsCopies) {
  Mlp mlp;
  ExecutionContext ctx({dev("testgpu"), dev("cpu")});
  ctx.BindWeight("w", mlp.wv.data(), mlp.wv.size() * 4);
  auto exe = Executable::Prepare(ctx, mlp.g);
  ASSERT_TRUE(exe.ok()) << exe.status().ToString();
  const Schedule& s = (*exe)->schedule();
  // matmul and silu have no testgpu kernel: they fall back to the CPU (device 1).
  EXPECT_EQ(s.node_device, (std::vector<int32_t>{1, 0, 1, 0}));
  EXPECT_GE(s.num_copies(), 3);
  std::vector<float> y;
  ASSERT_TRUE(mlp.Run(**exe, &y).ok());
  ExpectNear(y, mlp.Expected());
}

// ARGMAX (ABI 1.3) is optional: the test GPU and NPU plugins predate it and decline it, so it
// falls back to the CPU after the nodes they run; its i32 output comes back per row.
TEST_F(ExecutorTest, ArgmaxDeclinedByTheOtherDeviceRunsOnTheCpu) {
  for (const char* first : {"testgpu", "testnpu"}) {
    Mlp mlp;
    const TensorId ids =
        mlp.g.AddNode(TSR_OP_ARGMAX, {mlp.out}, DType::kI32, {Mlp::M, 1});  // [M, 1]
    mlp.g.MarkOutput(ids);
    ExecutionContext ctx({dev(first), dev("cpu")});
    ctx.BindWeight("w", mlp.wv.data(), mlp.wv.size() * 4);
    auto exe = Executable::Prepare(ctx, mlp.g);
    ASSERT_TRUE(exe.ok()) << first << ": " << exe.status().ToString();
    const std::vector<int32_t> want_devices = std::string(first) == "testgpu"
                                                  ? std::vector<int32_t>{1, 0, 1, 0, 1}
                                                  : std::vector<int32_t>{0, 0, 0, 0, 1};
    EXPECT_EQ((*exe)->schedule().node_device, want_devices) << first;
    std::vector<int32_t> got(Mlp::M, -1);
    HostTensor ins[] = {{mlp.x, mlp.xv.data(), mlp.xv.size() * 4},
                        {mlp.a, mlp.av.data(), mlp.av.size() * 4}};
    HostTensor outs[] = {{ids, got.data(), got.size() * 4}};
    ASSERT_TRUE((*exe)->Run(ins, outs).ok()) << first;
    const std::vector<float> y = mlp.Expected();
    for (int m = 0; m < Mlp::M; ++m) {
      const auto row = y.begin() + m * Mlp::N;
      EXPECT_EQ(got[m], std::max_element(row, row + Mlp::N) - row) << first << " row " << m;
    }
  }
}

TEST_F(ExecutorTest, RunAllocatesNothingAfterPrepare) {
  Mlp mlp;
  ExecutionContext ctx({dev("testgpu"), dev("cpu")});
  ctx.BindWeight("w", mlp.wv.data(), mlp.wv.size() * 4);
  auto exe = Executable::Prepare(ctx, mlp.g);
  ASSERT_TRUE(exe.ok());
  int64_t before_gpu = dev("testgpu")->alloc_count(), before_cpu = dev("cpu")->alloc_count();
  std::vector<float> y;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(mlp.Run(**exe, &y).ok());
  EXPECT_EQ(dev("testgpu")->alloc_count(), before_gpu);
  EXPECT_EQ(dev("cpu")->alloc_count(), before_cpu);
  // A second graph of the same shapes reuses the arenas and the weight copies.
  auto exe2 = Executable::Prepare(ctx, mlp.g);
  ASSERT_TRUE(exe2.ok());
  EXPECT_EQ(dev("testgpu")->alloc_count(), before_gpu);
  EXPECT_EQ(dev("cpu")->alloc_count(), before_cpu);
}

TEST_F(ExecutorTest, NoDeviceForANodeIsAClearError) {
  Mlp mlp;
  ExecutionContext ctx({dev("testgpu")});
  ctx.BindWeight("w", mlp.wv.data(), mlp.wv.size() * 4);
  auto exe = Executable::Prepare(ctx, mlp.g);
  ASSERT_FALSE(exe.ok());
  EXPECT_NE(exe.status().message().find("node 0 (matmul)"), std::string::npos)
      << exe.status().message();
}

TEST_F(ExecutorTest, UnboundWeightIsAClearError) {
  Mlp mlp;
  ExecutionContext ctx({dev("cpu")});
  auto exe = Executable::Prepare(ctx, mlp.g);
  ASSERT_FALSE(exe.ok());
  EXPECT_NE(exe.status().message().find("weight 'w' is not bound"), std::string::npos);
}

TEST_F(ExecutorTest, ArenaReusesMemoryAcrossALongChain) {
  Graph g;
  TensorId t = g.AddInput("x", DType::kF32, {64, 64});
  for (int i = 0; i < 20; ++i) {
    OpParams p;
    p.f[0] = 1.01f;
    t = g.AddNode(TSR_OP_SCALE, {t}, DType::kF32, {64, 64}, p);
  }
  g.MarkOutput(t);
  ExecutionContext ctx({dev("cpu")});
  auto exe = Executable::Prepare(ctx, g);
  ASSERT_TRUE(exe.ok()) << exe.status().ToString();
  EXPECT_LT((*exe)->peak_bytes(0), (*exe)->no_reuse_bytes(0) / 4);
}

// x [n, n] -> 4x through two SCALE nodes, on the CPU.
struct ScaleChain {
  explicit ScaleChain(int64_t n) : xv(n * n), y(n * n) {
    x = g.AddInput("x", DType::kF32, {n, n});
    OpParams p;
    p.f[0] = 2.0f;
    TensorId t = g.AddNode(TSR_OP_SCALE, {x}, DType::kF32, {n, n}, p);
    out = g.AddNode(TSR_OP_SCALE, {t}, DType::kF32, {n, n}, p);
    g.MarkOutput(out);
    for (size_t i = 0; i < xv.size(); ++i) xv[i] = static_cast<float>(i % 97);
  }
  Status Run(Executable& exe) {
    HostTensor ins[] = {{x, xv.data(), xv.size() * 4}};
    HostTensor outs[] = {{out, y.data(), y.size() * 4}};
    return exe.Run(ins, outs);
  }
  Graph g;
  TensorId x, out;
  std::vector<float> xv, y;
};

TEST_F(ExecutorTest, AGraphPreparedBeforeTheArenaGrewRunsOnTheNewArena) {
  ExecutionContext ctx({dev("cpu")});
  ScaleChain small(4);
  auto a = Executable::Prepare(ctx, small.g);
  ASSERT_TRUE(a.ok());
  // Larger graphs replace the arena, more than once: the new buffer object may even reuse the
  // old one's address, so the executor must notice the change by generation, not by pointer.
  for (int64_t n : {64, 128, 256}) {
    ScaleChain big(n);
    auto b = Executable::Prepare(ctx, big.g);
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE(big.Run(**b).ok());
  }
  ASSERT_TRUE(small.Run(**a).ok());
  for (size_t i = 0; i < small.y.size(); ++i) EXPECT_EQ(small.y[i], 4.0f * small.xv[i]);
}

int CompileCount() {
  void* h = dlopen(Env("TP_TESTNPU").c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (!h) return -1;
  auto fn = reinterpret_cast<int (*)()>(dlsym(h, "tsr_test_npu_compile_count"));
  int n = fn ? fn() : -1;
  dlclose(h);
  return n;
}

TEST_F(ExecutorTest, CompileStyleDeviceClaimsCompilesRunsAndCachesBlobs) {
  Mlp mlp;
  auto dir =
      std::filesystem::temp_directory_path() / ("tessera_npu_cache_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  ExecutionOptions opt;
  opt.compile_cache_dir = dir.string();
  int base = CompileCount();
  std::vector<float> y1, y2;
  {
    ExecutionContext ctx({dev("testnpu"), dev("cpu")}, opt);
    ctx.BindWeight("w", mlp.wv.data(), mlp.wv.size() * 4);
    auto exe = Executable::Prepare(ctx, mlp.g);
    ASSERT_TRUE(exe.ok()) << exe.status().ToString();
    // The NPU claims the whole chain as one group.
    EXPECT_EQ((*exe)->schedule().node_device, (std::vector<int32_t>{0, 0, 0, 0}));
    ASSERT_TRUE(mlp.Run(**exe, &y1).ok());
    EXPECT_EQ(ctx.compile_stats().compiled, 1);
    EXPECT_EQ(CompileCount(), base + 1);
  }
  ExpectNear(y1, mlp.Expected());
  {
    // A "second start": a fresh context finds the blob and compiles nothing.
    ExecutionContext ctx({dev("testnpu"), dev("cpu")}, opt);
    ctx.BindWeight("w", mlp.wv.data(), mlp.wv.size() * 4);
    auto exe = Executable::Prepare(ctx, mlp.g);
    ASSERT_TRUE(exe.ok()) << exe.status().ToString();
    ASSERT_TRUE(mlp.Run(**exe, &y2).ok());
    EXPECT_EQ(ctx.compile_stats().compiled, 0);
    EXPECT_EQ(ctx.compile_stats().loaded_blobs, 1);
    EXPECT_EQ(CompileCount(), base + 1);
  }
  EXPECT_EQ(y1, y2);
  std::filesystem::remove_all(dir);
}

TEST_F(ExecutorTest, CompiledGroupsMixWithCpuFallback) {
  // softmax is not claimed by the NPU: the graph splits NPU -> CPU.
  Mlp mlp;
  TensorId sm =
      mlp.g.AddNode(TSR_OP_SOFTMAX, {mlp.out}, DType::kF32, {Mlp::M, Mlp::N}, OpParams{{}, {1.f}});
  mlp.g.MarkOutput(sm);
  ExecutionContext ctx({dev("testnpu"), dev("cpu")});
  ctx.BindWeight("w", mlp.wv.data(), mlp.wv.size() * 4);
  auto exe = Executable::Prepare(ctx, mlp.g);
  ASSERT_TRUE(exe.ok()) << exe.status().ToString();
  EXPECT_EQ((*exe)->schedule().node_device.back(), 1);
  std::vector<float> y(Mlp::M * Mlp::N);
  HostTensor ins[] = {{mlp.x, mlp.xv.data(), mlp.xv.size() * 4},
                      {mlp.a, mlp.av.data(), mlp.av.size() * 4}};
  HostTensor outs[] = {{sm, y.data(), y.size() * 4}};
  ASSERT_TRUE((*exe)->Run(ins, outs).ok());
  auto e = mlp.Expected();
  for (int m = 0; m < Mlp::M; ++m) {
    double mx = -1e30, sum = 0;
    for (int n = 0; n < Mlp::N; ++n) mx = std::max<double>(mx, e[m * Mlp::N + n]);
    for (int n = 0; n < Mlp::N; ++n) sum += std::exp(e[m * Mlp::N + n] - mx);
    for (int n = 0; n < Mlp::N; ++n)
      EXPECT_NEAR(y[m * Mlp::N + n], std::exp(e[m * Mlp::N + n] - mx) / sum, 1e-5);
  }
}

}  // namespace
}  // namespace tessera
