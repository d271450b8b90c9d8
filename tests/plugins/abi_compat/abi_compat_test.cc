// Plugin ABI compatibility (plugin_api.h, "Versioning"; docs/plugin-guide.md section 3).
//
// This engine is compiled against the live header (1.1 or later). The plugins under test:
//   ABI_V1_0     test_kernel_plugin.c compiled against the frozen 1.0 header alone
//   ABI_CURRENT  the same kernels against the live header, providing device_memory_info (1.1)
//                and host_alloc / host_free (1.2)
//   ABI_FUTURE   the same, claiming a newer minor with a larger table than this engine knows
//   ABI_MAJOR0/2 tables claiming another major
// A plugin built against an older minor must load, report its ABI, run graphs and have the newer
// entries read as absent; another major must be rejected with a readable reason, never a crash.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tessera/core/device.h"
#include "tessera/core/executor.h"
#include "tessera/core/plugin_loader.h"
#include "tessera/core/scheduler.h"

namespace tessera {
namespace {

static_assert(TSR_ABI_MAJOR == 1 && TSR_ABI_MINOR >= 1, "this test is about ABI 1.x");
static_assert(TSR_PLUGIN_API_SIZE_1_0 < sizeof(tsr_plugin_api), "1.1 appended to the table");
static_assert(TSR_ABI_MINOR >= 2 && TSR_PLUGIN_API_SIZE_1_1 < sizeof(tsr_plugin_api),
              "1.2 appended to the table");

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

const PluginCandidate* FindCandidate(const PluginRegistry& reg, const std::string& path) {
  for (const auto& c : reg.candidates())
    if (c.path == path) return &c;
  return nullptr;
}

std::unique_ptr<PluginRegistry> Load(std::vector<std::string> paths) {
  LoaderOptions o;
  o.explicit_paths = std::move(paths);
  o.plugin_options["cpu"] = {{"threads", "1"}};
  return PluginRegistry::Discover(o);
}

// out = (x + y) * x * 0.5 + 1, x and y [4, 8]: only ops the test plugin runs (ADD, MUL, SCALE).
struct SmallGraph {
  static constexpr int kRows = 4, kCols = 8;
  Graph g;
  TensorId x, y, out;
  std::vector<float> xv, yv;
  SmallGraph() {
    for (int i = 0; i < kRows * kCols; ++i) {
      xv.push_back(0.25f * static_cast<float>(i % 7) - 0.5f);
      yv.push_back(0.125f * static_cast<float>(i % 5) + 0.25f);
    }
    x = g.AddInput("x", DType::kF32, {kRows, kCols});
    y = g.AddInput("y", DType::kF32, {kRows, kCols});
    TensorId s = g.AddNode(TSR_OP_ADD, {x, y}, DType::kF32, {kRows, kCols});
    TensorId m = g.AddNode(TSR_OP_MUL, {s, x}, DType::kF32, {kRows, kCols});
    OpParams p;
    p.f[0] = 0.5f;
    p.f[1] = 1.0f;
    out = g.AddNode(TSR_OP_SCALE, {m}, DType::kF32, {kRows, kCols}, p);
    g.MarkOutput(out);
  }
  // Runs the graph on `devices` (first = preferred); expects every node on device 0.
  void RunOn(std::vector<Device*> devices) {
    ExecutionContext ctx(std::move(devices));
    auto exe = Executable::Prepare(ctx, g);
    ASSERT_TRUE(exe.ok()) << exe.status().ToString();
    EXPECT_EQ((*exe)->schedule().node_device, (std::vector<int32_t>{0, 0, 0}));
    std::vector<float> got(kRows * kCols, 0.f);
    HostTensor ins[] = {{x, xv.data(), xv.size() * 4}, {y, yv.data(), yv.size() * 4}};
    HostTensor outs[] = {{out, got.data(), got.size() * 4}};
    ASSERT_TRUE((*exe)->Run(ins, outs).ok());
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_FLOAT_EQ(got[i], (xv[i] + yv[i]) * xv[i] * 0.5f + 1.0f) << "at " << i;
  }
};

TEST(PluginAbiCompat, PluginBuiltAgainst1_0LoadsAndReportsItsAbi) {
  auto reg = Load({Env("ABI_V1_0")});
  Plugin* p = reg->Find("abi10");
  ASSERT_NE(p, nullptr) << reg->ExplainMissing("abi10").message();
  EXPECT_EQ(FindCandidate(*reg, Env("ABI_V1_0"))->reason, "loaded");
  EXPECT_EQ(p->api().abi_major, 1);
  EXPECT_EQ(p->api().abi_minor, 0);
  // Its table has the 1.0 size: the 1.1 entry was never written by the plugin and reads as NULL.
  EXPECT_EQ(p->api().struct_size, TSR_PLUGIN_API_SIZE_1_0);
  EXPECT_EQ(p->api().device_memory_info, nullptr);
  EXPECT_EQ(p->device_count(), 1);
}

TEST(PluginAbiCompat, PluginBuiltAgainst1_0RunsAGraph) {
  auto reg = Load({Env("ABI_V1_0")});
  Plugin* p = reg->Find("abi10");
  ASSERT_NE(p, nullptr) << reg->ExplainMissing("abi10").message();
  auto dev = Device::Open(p, 0);
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  SmallGraph().RunOn({dev->get()});
}

TEST(PluginAbiCompat, The1_1MemoryQueryIsReportedAbsentFor1_0) {
  auto reg = Load({Env("ABI_V1_0")});
  Plugin* p = reg->Find("abi10");
  ASSERT_NE(p, nullptr) << reg->ExplainMissing("abi10").message();
  auto dev = Device::Open(p, 0);
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  auto mem = QueryDeviceMemory(*p, (*dev)->handle());
  ASSERT_FALSE(mem.ok());
  EXPECT_EQ(mem.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(mem.status().message().find("(ABI 1.0) has no device_memory_info"), std::string::npos)
      << mem.status().message();
  // The 1.0 way still works: the props snapshot taken at open.
  EXPECT_EQ((*dev)->props().memory_total, 1u << 30);
}

TEST(PluginAbiCompat, CurrentPluginReportsLiveMemoryAndRuns) {
  auto reg = Load({Env("ABI_CURRENT")});
  Plugin* p = reg->Find("abicurrent");
  ASSERT_NE(p, nullptr) << reg->ExplainMissing("abicurrent").message();
  EXPECT_EQ(p->api().abi_major, TSR_ABI_MAJOR);
  EXPECT_EQ(p->api().abi_minor, TSR_ABI_MINOR);
  EXPECT_EQ(p->api().struct_size, sizeof(tsr_plugin_api));
  auto dev = Device::Open(p, 0);
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  auto mem = QueryDeviceMemory(*p, (*dev)->handle());
  ASSERT_TRUE(mem.ok()) << mem.status().ToString();
  EXPECT_EQ(mem->free_bytes, 768u << 20);  // the live figure, not the 1 GiB props snapshot
  EXPECT_EQ(mem->total_bytes, 1u << 30);
  SmallGraph().RunOn({dev->get()});
}

// The engine's host buffers (HostBuffer, used for a step's logits): from the plugin's host_alloc
// when the table has it (1.2), ordinary memory otherwise, and downloads land in either.
void ExpectHostBufferWorks(Device& dev, bool from_plugin) {
  auto buf = dev.Alloc(256);
  ASSERT_TRUE(buf.ok()) << buf.status().ToString();
  std::vector<uint8_t> bytes(256);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + 3);
  ASSERT_TRUE(dev.Upload(**buf, 0, bytes.data(), bytes.size()).ok());
  auto host = HostBuffer::Allocate(&dev, 200);
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  EXPECT_EQ(host->device_host_memory(), from_plugin);
  EXPECT_EQ(host->size(), 200u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(host->data()) % 64, 0u);
  ASSERT_TRUE(dev.Download(**buf, 16, host->data(), 200).ok());
  EXPECT_EQ(std::memcmp(host->data(), bytes.data() + 16, 200), 0);
  HostBuffer moved = std::move(*host);  // ownership moves; the source is left empty
  EXPECT_EQ(host->data(), nullptr);
  EXPECT_EQ(moved.device_host_memory(), from_plugin);
}

TEST(PluginAbiCompat, HostBuffersFallBackToHeapMemoryWithout1_2) {
  auto reg = Load({Env("ABI_V1_0")});
  Plugin* p = reg->Find("abi10");
  ASSERT_NE(p, nullptr) << reg->ExplainMissing("abi10").message();
  EXPECT_EQ(p->api().host_alloc, nullptr);
  EXPECT_EQ(p->api().host_free, nullptr);
  auto dev = Device::Open(p, 0);
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  EXPECT_FALSE((*dev)->has_host_alloc());
  EXPECT_EQ((*dev)->HostAlloc(64).status().code(), StatusCode::kUnimplemented);
  ExpectHostBufferWorks(**dev, false);
  auto heap = HostBuffer::Allocate(nullptr, 0);  // no device at all: heap memory, never null
  ASSERT_TRUE(heap.ok());
  EXPECT_NE(heap->data(), nullptr);
  EXPECT_FALSE(heap->device_host_memory());
}

TEST(PluginAbiCompat, HostBuffersComeFromThePluginsHostAlloc) {
  auto reg = Load({Env("ABI_CURRENT")});
  Plugin* p = reg->Find("abicurrent");
  ASSERT_NE(p, nullptr) << reg->ExplainMissing("abicurrent").message();
  void* lib = dlopen(Env("ABI_CURRENT").c_str(), RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(lib, nullptr);
  auto live = reinterpret_cast<int (*)()>(dlsym(lib, "tp_host_live"));
  ASSERT_NE(live, nullptr);
  {
    auto dev = Device::Open(p, 0);
    ASSERT_TRUE(dev.ok()) << dev.status().ToString();
    EXPECT_TRUE((*dev)->has_host_alloc());
    const int before = live();
    ExpectHostBufferWorks(**dev, true);
    EXPECT_EQ(live(), before);  // every host_alloc was matched by a host_free
    auto held = HostBuffer::Allocate(dev->get(), 1 << 20);
    ASSERT_TRUE(held.ok());
    EXPECT_EQ(live(), before + 1);
    held->Reset();
    EXPECT_EQ(live(), before);
  }
  dlclose(lib);
}

TEST(PluginAbiCompat, NewerMinorLoadsAndItsExtraEntriesAreLeftBehind) {
  auto reg = Load({Env("ABI_FUTURE")});
  Plugin* p = reg->Find("abifuture");
  ASSERT_NE(p, nullptr) << reg->ExplainMissing("abifuture").message();
  EXPECT_EQ(p->api().abi_minor, TSR_ABI_MINOR + 1);
  // The engine's copy holds what it knows and says so; the plugin's extra entry (which aborts
  // when called) is not part of it.
  EXPECT_EQ(p->api().struct_size, sizeof(tsr_plugin_api));
  auto dev = Device::Open(p, 0);
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  EXPECT_TRUE(QueryDeviceMemory(*p, (*dev)->handle()).ok());
  SmallGraph().RunOn({dev->get()});
}

TEST(PluginAbiCompat, OtherMajorsAreRejectedWithAReadableReason) {
  struct Case {
    const char* env;
    std::string claims, advice;
  };
  const std::string host = std::to_string(TSR_ABI_MAJOR) + "." + std::to_string(TSR_ABI_MINOR);
  for (const Case& c : {Case{"ABI_MAJOR0", "0.", "rebuild it against a Tessera plugin SDK"},
                        Case{"ABI_MAJOR2", "2.", "it needs a newer engine"}}) {
    SCOPED_TRACE(c.env);
    auto reg = Load({Env(c.env)});
    EXPECT_TRUE(reg->plugins().empty());
    const PluginCandidate* cand = FindCandidate(*reg, Env(c.env));
    ASSERT_NE(cand, nullptr);
    EXPECT_FALSE(cand->loaded);
    EXPECT_NE(cand->reason.find("built for plugin ABI " + c.claims), std::string::npos)
        << cand->reason;
    EXPECT_NE(cand->reason.find("this engine (ABI " + host + ") loads plugins of ABI 1.0 or any"),
              std::string::npos)
        << cand->reason;
    EXPECT_NE(cand->reason.find(c.advice), std::string::npos) << cand->reason;
    // The same reason reaches the user when they ask for the backend.
    EXPECT_NE(reg->ExplainMissing("").message().find(cand->reason), std::string::npos);
  }
}

TEST(PluginAbiCompat, OldAndCurrentPluginsWorkSideBySideWithTheCpuFallback) {
  if (Env("ABI_CPU").empty()) GTEST_SKIP() << "CPU plugin not built";
  auto reg = Load({Env("ABI_V1_0"), Env("ABI_CURRENT"), Env("ABI_CPU")});
  for (const char* id : {"abi10", "abicurrent", "cpu"})
    ASSERT_NE(reg->Find(id), nullptr) << reg->ExplainMissing(id).message();
  auto old_dev = Device::Open(reg->Find("abi10"), 0);
  auto cpu = Device::Open(reg->Find("cpu"), 0);
  ASSERT_TRUE(old_dev.ok() && cpu.ok());
  // The CPU plugin is current: it answers the 1.1 memory query (system RAM).
  auto mem = QueryDeviceMemory(*reg->Find("cpu"), (*cpu)->handle());
  ASSERT_TRUE(mem.ok()) << mem.status().ToString();
  EXPECT_GT(mem->total_bytes, 0u);
  EXPECT_LE(mem->free_bytes, mem->total_bytes);
  // y = silu(x + x) * x: ADD and MUL on the 1.0 plugin, SILU falls back to the CPU.
  Graph g;
  TensorId x = g.AddInput("x", DType::kF32, {3, 16});
  TensorId s = g.AddNode(TSR_OP_ADD, {x, x}, DType::kF32, {3, 16});
  TensorId t = g.AddNode(TSR_OP_SILU, {s}, DType::kF32, {3, 16});
  TensorId out = g.AddNode(TSR_OP_MUL, {t, x}, DType::kF32, {3, 16});
  g.MarkOutput(out);
  ExecutionContext ctx({old_dev->get(), cpu->get()});
  auto exe = Executable::Prepare(ctx, g);
  ASSERT_TRUE(exe.ok()) << exe.status().ToString();
  EXPECT_EQ((*exe)->schedule().node_device, (std::vector<int32_t>{0, 1, 0}));
  std::vector<float> xv(48), got(48);
  for (int i = 0; i < 48; ++i) xv[i] = 0.1f * static_cast<float>(i - 24);
  HostTensor ins[] = {{x, xv.data(), xv.size() * 4}};
  HostTensor outs[] = {{out, got.data(), got.size() * 4}};
  ASSERT_TRUE((*exe)->Run(ins, outs).ok());
  for (int i = 0; i < 48; ++i) {
    const float a = 2 * xv[i];
    EXPECT_NEAR(got[i], a / (1 + std::exp(-a)) * xv[i], 1e-5f) << "at " << i;
  }
}

// ARGMAX (1.3) is an op number the 1.0 plugin has never heard of: it declines it in supports_op
// (no error, no crash) and the node runs on the CPU.
TEST(PluginAbiCompat, The1_3ArgmaxIsDeclinedBy1_0AndRunsOnTheCpu) {
  if (Env("ABI_CPU").empty()) GTEST_SKIP() << "CPU plugin not built";
  auto reg = Load({Env("ABI_V1_0"), Env("ABI_CPU")});
  for (const char* id : {"abi10", "cpu"})
    ASSERT_NE(reg->Find(id), nullptr) << reg->ExplainMissing(id).message();
  auto old_dev = Device::Open(reg->Find("abi10"), 0);
  auto cpu = Device::Open(reg->Find("cpu"), 0);
  ASSERT_TRUE(old_dev.ok() && cpu.ok());
  Graph g;
  TensorId x = g.AddInput("x", DType::kF32, {3, 16});
  TensorId s = g.AddNode(TSR_OP_ADD, {x, x}, DType::kF32, {3, 16});
  TensorId ids = g.AddNode(TSR_OP_ARGMAX, {s}, DType::kI32, {3, 1});
  g.MarkOutput(ids);
  const AbiGraph abi = MakeAbiGraph(g);
  auto supported = (*old_dev)->SupportsOp(abi.view(), 1);
  ASSERT_TRUE(supported.ok()) << supported.status().ToString();
  EXPECT_FALSE(*supported);
  ExecutionContext ctx({old_dev->get(), cpu->get()});
  auto exe = Executable::Prepare(ctx, g);
  ASSERT_TRUE(exe.ok()) << exe.status().ToString();
  EXPECT_EQ((*exe)->schedule().node_device, (std::vector<int32_t>{0, 1}));
  std::vector<float> xv(48);
  for (int i = 0; i < 48; ++i) xv[i] = static_cast<float>((i * 7) % 16);  // row max at 16k + 9
  std::vector<int32_t> got(3, -1);
  HostTensor ins[] = {{x, xv.data(), xv.size() * 4}};
  HostTensor outs[] = {{ids, got.data(), got.size() * 4}};
  ASSERT_TRUE((*exe)->Run(ins, outs).ok());
  EXPECT_EQ(got, (std::vector<int32_t>{9, 9, 9}));
}

}  // namespace
}  // namespace tessera
