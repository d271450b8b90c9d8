// The OpenCL plugin through its C ABI only (dlopen, like the engine): device discovery and
// device_types, the absence report, and the program-binary cache. Op results are the
// conformance suite's job (opencl_conformance).
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "tessera/plugin_api.h"

namespace {

std::mutex g_log_mu;
std::vector<std::string> g_log;

void Collect(void*, tsr_log_level, const char* message) {
  std::lock_guard<std::mutex> lock(g_log_mu);
  g_log.emplace_back(message);
}

const tsr_plugin_api* Api() {
  static const tsr_plugin_api* api = [] {
    const char* path = std::getenv("TESSERA_OPENCL_PLUGIN");
    if (path == nullptr) return static_cast<const tsr_plugin_api*>(nullptr);
    void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) return static_cast<const tsr_plugin_api*>(nullptr);
    auto init = reinterpret_cast<tsr_plugin_init_fn>(dlsym(h, TSR_PLUGIN_INIT_SYMBOL));
    static tsr_host_api host{sizeof(tsr_host_api), TSR_ABI_MAJOR, TSR_ABI_MINOR, nullptr, Collect};
    tsr_error err{sizeof(err), TSR_OK, {}};
    return init != nullptr ? init(&host, &err) : nullptr;
  }();
  return api;
}

// A context with `options`; the test fails if creation fails.
tsr_plugin_ctx* NewContext(std::vector<tsr_option> options) {
  tsr_plugin_ctx* ctx = nullptr;
  tsr_error err{sizeof(err), TSR_OK, {}};
  EXPECT_EQ(Api()->create_context(options.data(), options.size(), &ctx, &err), TSR_OK)
      << err.message;
  return ctx;
}

int32_t Count(tsr_plugin_ctx* ctx) {
  int32_t n = -1;
  EXPECT_EQ(Api()->device_count(ctx, &n, nullptr), TSR_OK);
  return n;
}

TEST(OpenclPlugin, LoadsAndNamesItself) {
  ASSERT_NE(Api(), nullptr) << "set TESSERA_OPENCL_PLUGIN to the built plugin";
  EXPECT_STREQ(Api()->id, "opencl");
  EXPECT_NE(Api()->supports_op, nullptr);
  EXPECT_EQ(Api()->claim, nullptr);  // kernel style only
}

TEST(OpenclPlugin, RejectsUnknownOptions) {
  ASSERT_NE(Api(), nullptr);
  tsr_option bad{sizeof(tsr_option), "no_such_key", "1"};
  tsr_plugin_ctx* ctx = nullptr;
  tsr_error err{sizeof(err), TSR_OK, {}};
  EXPECT_EQ(Api()->create_context(&bad, 1, &ctx, &err), TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err.message).find("no_such_key"), std::string::npos) << err.message;
  tsr_option types{sizeof(tsr_option), "device_types", "fpga"};
  EXPECT_EQ(Api()->create_context(&types, 1, &ctx, &err), TSR_ERR_INVALID_ARGUMENT);
}

// With device_types=gpu a CPU-only OpenCL machine (pocl) reports no device and says why; with
// all it offers the CPU device. On a machine with a GPU the first half does not apply.
TEST(OpenclPlugin, CpuDevicesOnlyOnRequest) {
  ASSERT_NE(Api(), nullptr);
  tsr_plugin_ctx* all = NewContext({{sizeof(tsr_option), "device_types", "all"}});
  tsr_plugin_ctx* gpu = NewContext({{sizeof(tsr_option), "device_types", "gpu"}});
  ASSERT_NE(all, nullptr);
  ASSERT_NE(gpu, nullptr);
  if (Count(all) == 0) {
    Api()->destroy_context(all);
    Api()->destroy_context(gpu);
    GTEST_SKIP() << "no OpenCL device at all: " << Api()->absence_reason(all);
  }
  bool any_cpu = false;
  for (int32_t i = 0; i < Count(all); ++i) {
    tsr_device_props p{sizeof(p)};
    ASSERT_EQ(Api()->device_props(all, i, &p, nullptr), TSR_OK);
    EXPECT_NE(std::string(p.name), "");
    EXPECT_EQ(p.exec_styles, TSR_EXEC_KERNEL);
    any_cpu |= p.kind == TSR_DEVICE_CPU;
  }
  if (any_cpu && Count(gpu) == 0) {
    EXPECT_NE(std::string(Api()->absence_reason(gpu)).find("device_types"), std::string::npos)
        << Api()->absence_reason(gpu);
  }
  Api()->destroy_context(all);
  Api()->destroy_context(gpu);
}

// The first open compiles and writes the cache entry; the second loads it.
TEST(OpenclPlugin, ProgramBinaryIsCached) {
  ASSERT_NE(Api(), nullptr);
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("tessera_ocl_cache_" + std::to_string(getpid()));
  fs::remove_all(dir);
  tsr_plugin_ctx* ctx = NewContext({{sizeof(tsr_option), "device_types", "all"},
                                    {sizeof(tsr_option), "cache_dir", dir.c_str()}});
  ASSERT_NE(ctx, nullptr);
  if (Count(ctx) == 0) {
    Api()->destroy_context(ctx);
    GTEST_SKIP() << "no OpenCL device: " << Api()->absence_reason(ctx);
  }
  double ms[2];
  for (int round = 0; round < 2; ++round) {
    {
      std::lock_guard<std::mutex> lock(g_log_mu);
      g_log.clear();
    }
    const auto t0 = std::chrono::steady_clock::now();
    tsr_device* dev = nullptr;
    tsr_error err{sizeof(err), TSR_OK, {}};
    ASSERT_EQ(Api()->device_open(ctx, 0, &dev, &err), TSR_OK) << err.message;
    ms[round] =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    Api()->device_close(dev);
    std::lock_guard<std::mutex> lock(g_log_mu);
    bool said = false;
    for (const std::string& m : g_log)
      said |= m.find(round == 0 ? "compiled" : "loaded from the cache") != std::string::npos;
    EXPECT_TRUE(said) << "round " << round;
    int entries = 0;
    for (const auto& e : fs::directory_iterator(dir)) entries += e.path().extension() == ".bin";
    EXPECT_EQ(entries, 1);
  }
  std::printf("  device_open: %.0f ms compiling, %.0f ms from the cache\n", ms[0], ms[1]);
  Api()->destroy_context(ctx);
  fs::remove_all(dir);
}

// Run by the opencl_absence_test entry with the ICD loader pointed at an empty vendor list.
TEST(OpenclAbsence, NoPlatformIsExplained) {
  if (std::getenv("TESSERA_OPENCL_EXPECT_ABSENT") == nullptr)
    GTEST_SKIP() << "only under opencl_absence_test";
  ASSERT_NE(Api(), nullptr);
  tsr_plugin_ctx* ctx = NewContext({{sizeof(tsr_option), "device_types", "all"}});
  ASSERT_NE(ctx, nullptr);
  EXPECT_EQ(Count(ctx), 0);
  const std::string why = Api()->absence_reason(ctx);
  EXPECT_NE(why.find("no OpenCL platform"), std::string::npos) << why;
  tsr_device* dev = nullptr;
  EXPECT_EQ(Api()->device_open(ctx, 0, &dev, nullptr), TSR_ERR_NOT_FOUND);
  Api()->destroy_context(ctx);
}

}  // namespace
