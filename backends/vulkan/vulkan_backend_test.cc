// The Vulkan plugin through its ABI, on any machine: without a loader, driver or device it must
// load, report no devices and say why; with a device (lavapipe in CI) it must open it, run a
// node end to end, honour the device selector and report bad data. Op-level correctness is the
// conformance suite's job (tests/conformance, op_conformance_vulkan_test).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tessera/plugin_api.h"

namespace {

class VulkanPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* path = std::getenv("TESSERA_VULKAN_PLUGIN");
    ASSERT_NE(path, nullptr) << "set TESSERA_VULKAN_PLUGIN to libtessera_backend_vulkan.so";
    handle_ = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle_, nullptr) << dlerror();
    auto init = reinterpret_cast<tsr_plugin_init_fn>(dlsym(handle_, TSR_PLUGIN_INIT_SYMBOL));
    ASSERT_NE(init, nullptr);
    host_ = {sizeof(tsr_host_api), TSR_ABI_MAJOR, TSR_ABI_MINOR, nullptr, nullptr};
    tsr_error err{sizeof(tsr_error), TSR_OK, {}};
    api_ = init(&host_, &err);
    ASSERT_NE(api_, nullptr) << err.message;
  }
  void TearDown() override {
    if (handle_ != nullptr) dlclose(handle_);
  }

  // A context with `options`; nullptr (and a test failure) if it cannot be made.
  tsr_plugin_ctx* Context(const std::vector<tsr_option>& options = {}) {
    tsr_error err{sizeof(tsr_error), TSR_OK, {}};
    tsr_plugin_ctx* ctx = nullptr;
    EXPECT_EQ(api_->create_context(options.data(), options.size(), &ctx, &err), TSR_OK)
        << err.message;
    return ctx;
  }

  void* handle_ = nullptr;
  tsr_host_api host_{};
  const tsr_plugin_api* api_ = nullptr;
};

// Three f32 [4] tensors at offsets 0, 16, 32 of `buf` (or as given) and one node.
struct OneNode {
  tsr_tensor t[3] = {};
  tsr_node node{};
  tsr_graph_view view{};
  OneNode(tsr_op op, tsr_buffer* buf) {
    for (int i = 0; i < 3; ++i) {
      t[i].struct_size = sizeof(tsr_tensor);
      t[i].dtype = TSR_DTYPE_F32;
      t[i].ndim = 1;
      t[i].ne[0] = 4;
      t[i].nb[0] = 4;
      t[i].buffer = buf;
      t[i].offset = 16u * i;
    }
    node.struct_size = sizeof(node);
    node.op = op;
    node.n_inputs = 2;
    node.inputs[0] = 0;
    node.inputs[1] = 1;
    node.output = 2;
    view = {sizeof(view), 3, t, 1, &node};
  }
};

TEST_F(VulkanPluginTest, ExportsOnlyTheEntryPointsAndProbesWithoutADevice) {
  EXPECT_STREQ(api_->id, "vulkan");
  auto probe = reinterpret_cast<tsr_plugin_probe_fn>(dlsym(handle_, TSR_PLUGIN_PROBE_SYMBOL));
  ASSERT_NE(probe, nullptr);
  EXPECT_GE(probe(), 0);
  EXPECT_EQ(dlsym(handle_, "vkCreateInstance"), nullptr);  // the loader is dlopened, not linked
}

TEST_F(VulkanPluginTest, OptionsAreCheckedByName) {
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  tsr_plugin_ctx* ctx = nullptr;
  tsr_option bad{sizeof(tsr_option), "no_such_option", "1"};
  EXPECT_EQ(api_->create_context(&bad, 1, &ctx, &err), TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err.message).find("no_such_option"), std::string::npos);
}

// A selector that matches nothing leaves no device, and the reason names the selector.
TEST_F(VulkanPluginTest, DeviceSelectorThatMatchesNothingIsAReportedAbsence) {
  tsr_plugin_ctx* ctx = Context({{sizeof(tsr_option), "device", "no-such-gpu-name"}});
  ASSERT_NE(ctx, nullptr);
  int32_t count = -1;
  ASSERT_EQ(api_->device_count(ctx, &count, nullptr), TSR_OK);
  EXPECT_EQ(count, 0);
  const std::string why = api_->absence_reason(ctx);
  EXPECT_FALSE(why.empty());
  std::printf("  absence: %s\n", why.c_str());
  api_->destroy_context(ctx);
}

// A software Vulkan (lavapipe) is listed only when selected (the tests select it through
// TESSERA_VULKAN_DEVICE); an empty selector hides it, with the reason.
TEST_F(VulkanPluginTest, SoftwareDevicesOnlyWhenSelected) {
  tsr_plugin_ctx* ctx = Context();
  ASSERT_NE(ctx, nullptr);
  int32_t count = 0, software = 0;
  ASSERT_EQ(api_->device_count(ctx, &count, nullptr), TSR_OK);
  for (int32_t d = 0; d < count; ++d) {
    tsr_device_props props{};
    props.struct_size = sizeof(props);
    ASSERT_EQ(api_->device_props(ctx, d, &props, nullptr), TSR_OK);
    if (std::strstr(props.description, "software") != nullptr) ++software;
  }
  api_->destroy_context(ctx);
  if (software == 0) GTEST_SKIP() << "no software Vulkan device selected here";
  tsr_plugin_ctx* plain = Context({{sizeof(tsr_option), "device", ""}});
  ASSERT_NE(plain, nullptr);
  int32_t plain_count = 0;
  ASSERT_EQ(api_->device_count(plain, &plain_count, nullptr), TSR_OK);
  EXPECT_EQ(plain_count, count - software);
  if (plain_count == 0) {
    EXPECT_NE(std::string(api_->absence_reason(plain)).find("software"), std::string::npos);
  }
  api_->destroy_context(plain);
}

// No device: zero devices and a reason. Otherwise every device opens and runs ADD; selecting by
// index or by a piece of the name finds it again.
TEST_F(VulkanPluginTest, DevicesOrAReason) {
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  tsr_plugin_ctx* ctx = Context();
  ASSERT_NE(ctx, nullptr);
  int32_t count = -1;
  ASSERT_EQ(api_->device_count(ctx, &count, &err), TSR_OK);
  if (count == 0) {
    const std::string why = api_->absence_reason(ctx);
    EXPECT_FALSE(why.empty());
    std::printf("  no Vulkan device: %s\n", why.c_str());
    api_->destroy_context(ctx);
    return;
  }
  EXPECT_STREQ(api_->absence_reason(ctx), "");
  for (int32_t d = 0; d < count; ++d) {
    tsr_device_props props{};
    props.struct_size = sizeof(props);
    ASSERT_EQ(api_->device_props(ctx, d, &props, &err), TSR_OK) << err.message;
    std::printf("  device %d: %s (%s)\n", d, props.name, props.description);
    EXPECT_NE(props.kind, TSR_DEVICE_CPU);  // the scheduler's CPU fallback is the CPU plugin
    tsr_device* dev = nullptr;
    ASSERT_EQ(api_->device_open(ctx, d, &dev, &err), TSR_OK) << err.message;
    const std::vector<float> a = {1, 2, 3, 4}, b = {10, 20, 30, 40};
    tsr_buffer* buf = nullptr;
    ASSERT_EQ(api_->buffer_alloc(dev, 0, 48, &buf, &err), TSR_OK) << err.message;
    ASSERT_EQ(api_->buffer_upload(buf, 0, a.data(), 16, nullptr, &err), TSR_OK);
    ASSERT_EQ(api_->buffer_upload(buf, 16, b.data(), 16, nullptr, &err), TSR_OK);
    OneNode n(TSR_OP_ADD, buf);
    tsr_bool supported = 0;
    ASSERT_EQ(api_->supports_op(dev, &n.view, 0, &supported, &err), TSR_OK);
    ASSERT_TRUE(supported);
    tsr_event* ev = nullptr;
    ASSERT_EQ(api_->event_create(dev, &ev, &err), TSR_OK);
    const int32_t id = 0;
    ASSERT_EQ(api_->execute(dev, &n.view, &id, 1, ev, &err), TSR_OK) << err.message;
    ASSERT_EQ(api_->event_wait(ev, &err), TSR_OK);
    std::vector<float> out(4);
    ASSERT_EQ(api_->buffer_download(buf, 32, out.data(), 16, nullptr, &err), TSR_OK);
    EXPECT_EQ(out, (std::vector<float>{11, 22, 33, 44}));
    api_->event_destroy(ev);
    api_->buffer_free(buf);
    api_->device_close(dev);
  }
  const std::string name = [&] {
    tsr_device_props props{};
    props.struct_size = sizeof(props);
    api_->device_props(ctx, 0, &props, nullptr);
    return std::string(props.name);
  }();
  api_->destroy_context(ctx);
  tsr_plugin_ctx* by_name = Context({{sizeof(tsr_option), "device", name.substr(0, 4).c_str()}});
  ASSERT_NE(by_name, nullptr);
  ASSERT_EQ(api_->device_count(by_name, &count, &err), TSR_OK);
  EXPECT_GE(count, 1);
  api_->destroy_context(by_name);
}

// GET_ROWS with an id outside the table: zeros, and the next download reports the bad data.
TEST_F(VulkanPluginTest, BadIdsAreReportedNotRead) {
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  tsr_plugin_ctx* ctx = Context();
  ASSERT_NE(ctx, nullptr);
  int32_t count = 0;
  ASSERT_EQ(api_->device_count(ctx, &count, &err), TSR_OK);
  if (count == 0) {
    api_->destroy_context(ctx);
    GTEST_SKIP() << "no Vulkan device: " << api_->absence_reason(ctx);
  }
  tsr_device* dev = nullptr;
  ASSERT_EQ(api_->device_open(ctx, 0, &dev, &err), TSR_OK) << err.message;
  tsr_buffer* buf = nullptr;
  ASSERT_EQ(api_->buffer_alloc(dev, 0, 64, &buf, &err), TSR_OK);
  const float table[4] = {1, 2, 3, 4};  // [2, 2]
  const int32_t ids[1] = {7};
  ASSERT_EQ(api_->buffer_upload(buf, 0, table, 16, nullptr, &err), TSR_OK);
  ASSERT_EQ(api_->buffer_upload(buf, 16, ids, 4, nullptr, &err), TSR_OK);
  OneNode n(TSR_OP_GET_ROWS, buf);
  n.t[0].ndim = 2, n.t[0].ne[0] = 2, n.t[0].ne[1] = 2, n.t[0].nb[0] = 8, n.t[0].nb[1] = 4;
  n.t[1].dtype = TSR_DTYPE_I32, n.t[1].ne[0] = 1;
  n.t[2].ndim = 2, n.t[2].ne[0] = 1, n.t[2].ne[1] = 2, n.t[2].nb[0] = 8, n.t[2].nb[1] = 4;
  const int32_t id = 0;
  ASSERT_EQ(api_->execute(dev, &n.view, &id, 1, nullptr, &err), TSR_OK) << err.message;
  float out[2] = {-1, -1};
  EXPECT_EQ(api_->buffer_download(buf, 32, out, 8, nullptr, &err), TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err.message).find("out of range"), std::string::npos) << err.message;
  ASSERT_EQ(api_->buffer_download(buf, 32, out, 8, nullptr, &err), TSR_OK) << err.message;
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[1], 0.0f);
  api_->buffer_free(buf);
  api_->device_close(dev);
  api_->destroy_context(ctx);
}

}  // namespace
