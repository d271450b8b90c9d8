// The Level Zero plugin through its C ABI only (dlopen, like the engine). Without a Level Zero
// driver (every CI machine today) it checks that the plugin loads, offers no device and says why;
// with one, that every device opens (the SPIR-V module builds and all kernels are found) and a
// small ADD computes the right numbers.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "tessera/plugin_api.h"

namespace {

void Quiet(void*, tsr_log_level, const char*) {}

const tsr_plugin_api* Api() {
  static const tsr_plugin_api* api = [] {
    const char* path = std::getenv("TESSERA_LEVEL_ZERO_PLUGIN");
    void* h = path != nullptr ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : nullptr;
    if (h == nullptr) return static_cast<const tsr_plugin_api*>(nullptr);
    auto init = reinterpret_cast<tsr_plugin_init_fn>(dlsym(h, TSR_PLUGIN_INIT_SYMBOL));
    static tsr_host_api host{sizeof(tsr_host_api), TSR_ABI_MAJOR, TSR_ABI_MINOR, nullptr, Quiet};
    return init != nullptr ? init(&host, nullptr) : nullptr;
  }();
  return api;
}

TEST(LevelZeroPlugin, LoadsAndReportsDevicesOrWhyNot) {
  ASSERT_NE(Api(), nullptr) << "set TESSERA_LEVEL_ZERO_PLUGIN to the built plugin";
  EXPECT_STREQ(Api()->id, "level-zero");
  tsr_plugin_ctx* ctx = nullptr;
  tsr_error err{sizeof(err), TSR_OK, {}};
  ASSERT_EQ(Api()->create_context(nullptr, 0, &ctx, &err), TSR_OK) << err.message;
  int32_t n = -1;
  ASSERT_EQ(Api()->device_count(ctx, &n, nullptr), TSR_OK);
  const std::string why = Api()->absence_reason(ctx);
  if (n == 0) {
    EXPECT_FALSE(why.empty()) << "no device must come with a reason";
    std::printf("  no Level Zero device: %s\n", why.c_str());
    tsr_device* dev = nullptr;
    EXPECT_EQ(Api()->device_open(ctx, 0, &dev, nullptr), TSR_ERR_NOT_FOUND);
  }
  Api()->destroy_context(ctx);
}

TEST(LevelZeroPlugin, RejectsUnknownOptions) {
  ASSERT_NE(Api(), nullptr);
  tsr_option bad{sizeof(tsr_option), "no_such_key", "1"};
  tsr_plugin_ctx* ctx = nullptr;
  tsr_error err{sizeof(err), TSR_OK, {}};
  EXPECT_EQ(Api()->create_context(&bad, 1, &ctx, &err), TSR_ERR_INVALID_ARGUMENT);
}

// Only where a driver and device exist: open, upload, ADD, download.
TEST(LevelZeroPlugin, AddsOnEveryDevice) {
  ASSERT_NE(Api(), nullptr);
  tsr_plugin_ctx* ctx = nullptr;
  ASSERT_EQ(Api()->create_context(nullptr, 0, &ctx, nullptr), TSR_OK);
  int32_t n = 0;
  Api()->device_count(ctx, &n, nullptr);
  if (n == 0) {
    std::string why = Api()->absence_reason(ctx);
    Api()->destroy_context(ctx);
    GTEST_SKIP() << "no Level Zero device: " << why;
  }
  for (int32_t d = 0; d < n; ++d) {
    tsr_device* dev = nullptr;
    tsr_error err{sizeof(err), TSR_OK, {}};
    ASSERT_EQ(Api()->device_open(ctx, d, &dev, &err), TSR_OK) << err.message;
    constexpr int kN = 37;
    std::vector<float> a(kN), b(kN), out(kN);
    for (int i = 0; i < kN; ++i) a[i] = 0.5f * i, b[i] = 3.0f - i;
    tsr_buffer* buf = nullptr;
    ASSERT_EQ(Api()->buffer_alloc(dev, 0, 3 * 4 * kN, &buf, &err), TSR_OK) << err.message;
    ASSERT_EQ(Api()->buffer_upload(buf, 0, a.data(), 4 * kN, nullptr, &err), TSR_OK);
    ASSERT_EQ(Api()->buffer_upload(buf, 4 * kN, b.data(), 4 * kN, nullptr, &err), TSR_OK);
    tsr_tensor t[3];
    for (int i = 0; i < 3; ++i) {
      t[i] = {sizeof(tsr_tensor), TSR_DTYPE_F32, 1, {kN}, {4}, buf, uint64_t(4 * kN * i), nullptr};
    }
    tsr_node node{sizeof(tsr_node), TSR_OP_ADD, 2, {0, 1}, 2, {}, {}};
    tsr_graph_view g{sizeof(tsr_graph_view), 3, t, 1, &node};
    const int32_t ids[1] = {0};
    ASSERT_EQ(Api()->execute(dev, &g, ids, 1, nullptr, &err), TSR_OK) << err.message;
    ASSERT_EQ(Api()->buffer_download(buf, 8 * kN, out.data(), 4 * kN, nullptr, &err), TSR_OK);
    for (int i = 0; i < kN; ++i) EXPECT_EQ(out[i], a[i] + b[i]) << i;
    Api()->buffer_free(buf);
    Api()->device_close(dev);
  }
  Api()->destroy_context(ctx);
}

}  // namespace
