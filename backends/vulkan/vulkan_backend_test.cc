// The Vulkan plugin through its ABI, on any machine: without a loader, driver or device it must
// load, report no devices and say why; with a device (lavapipe in CI) it must open it, run a
// node end to end, honour the device selector and report bad data. Op-level correctness is the
// conformance suite's job (tests/conformance, op_conformance_vulkan_test).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tessera/plugin_api.h"

namespace {

// Where CaptureLog appends the plugin's log lines (VulkanPluginTest::CaptureLogInto).
std::string* g_l2_log = nullptr;
void CaptureLog(void*, tsr_log_level, const char* message) {
  if (g_l2_log != nullptr) *g_l2_log += message;
}

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

  // MatmulRowsDoNotDependOnTheBatch on a device opened with the environment as it is.
  void CheckMatmulRowsDoNotDependOnTheBatch();

  // Initializes the plugin again with its log appended to `*log` (for tests that read it).
  void CaptureLogInto(std::string* log) {
    g_l2_log = log;
    host_.log = CaptureLog;
    auto init = reinterpret_cast<tsr_plugin_init_fn>(dlsym(handle_, TSR_PLUGIN_INIT_SYMBOL));
    tsr_error err{sizeof(tsr_error), TSR_OK, {}};
    api_ = init(&host_, &err);
    ASSERT_NE(api_, nullptr) << err.message;
  }

  // A context with `options`; nullptr (and a test failure) if it cannot be made.
  tsr_plugin_ctx* Context(const std::vector<tsr_option>& options = {}) {
    tsr_error err{sizeof(tsr_error), TSR_OK, {}};
    tsr_plugin_ctx* ctx = nullptr;
    EXPECT_EQ(api_->create_context(options.data(), options.size(), &ctx, &err), TSR_OK)
        << err.message;
    return ctx;
  }

  // Opens device 0 of a fresh context; *dev stays nullptr (and the context is destroyed) when
  // there is no Vulkan device, so the caller can skip.
  void OpenFirstDevice(tsr_plugin_ctx** ctx, tsr_device** dev) {
    tsr_error err{sizeof(tsr_error), TSR_OK, {}};
    *ctx = Context();
    ASSERT_NE(*ctx, nullptr);
    int32_t count = 0;
    ASSERT_EQ(api_->device_count(*ctx, &count, &err), TSR_OK);
    if (count == 0) {
      api_->destroy_context(*ctx);
      *ctx = nullptr;
      return;
    }
    ASSERT_EQ(api_->device_open(*ctx, 0, dev, &err), TSR_OK) << err.message;
  }

  // A context with at least one device (*ctx = nullptr when there is none): for tests that open
  // devices themselves (knobs read at device_open).
  void ContextWithDevices(tsr_plugin_ctx** ctx) {
    *ctx = Context();
    ASSERT_NE(*ctx, nullptr);
    int32_t count = 0;
    ASSERT_EQ(api_->device_count(*ctx, &count, nullptr), TSR_OK);
    if (count == 0) {
      api_->destroy_context(*ctx);
      *ctx = nullptr;
    }
  }

  // OpenFirstDevice with TESSERA_VULKAN_STAGED=1 (read when the device opens; restored after):
  // a unified-memory device (lavapipe) then moves data as a discrete GPU does (staging, inline
  // uploads, eager and direct downloads).
  void OpenFirstDeviceStaged(tsr_plugin_ctx** ctx, tsr_device** dev) {
    const char* was = std::getenv("TESSERA_VULKAN_STAGED");  // vulkan_backend_staged_test sets it
    const std::string before = was != nullptr ? was : "";
    setenv("TESSERA_VULKAN_STAGED", "1", 1);
    OpenFirstDevice(ctx, dev);
    if (was != nullptr)
      setenv("TESSERA_VULKAN_STAGED", before.c_str(), 1);
    else
      unsetenv("TESSERA_VULKAN_STAGED");
  }

  // CoopGemmMatchesAReference's shapes on an open device.
  void CheckCoopShapes(tsr_device* dev);

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

// Downloads after executes, as the engine's decode steps run them (upload the step's input,
// execute, synchronize, download the output), with TESSERA_VULKAN_STAGED=1 so a unified-memory
// device (lavapipe) takes the discrete path: staging, inline uploads and the eager download
// (the execute copies a range that was downloaded twice in a row). Every download must see the
// latest bytes: after more executes, after an upload or a buffer copy into the range (which no
// execute copied), for a sub-range and for another range.
TEST_F(VulkanPluginTest, EagerDownloadsSeeTheLatestBytes) {
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  tsr_plugin_ctx* ctx = nullptr;
  tsr_device* dev = nullptr;
  OpenFirstDeviceStaged(&ctx, &dev);
  if (HasFatalFailure()) return;
  if (dev == nullptr) GTEST_SKIP() << "no Vulkan device";
  tsr_buffer* buf = nullptr;
  ASSERT_EQ(api_->buffer_alloc(dev, 0, 64, &buf, &err), TSR_OK) << err.message;
  const float a[4] = {1, 2, 3, 4};
  ASSERT_EQ(api_->buffer_upload(buf, 0, a, 16, nullptr, &err), TSR_OK) << err.message;
  OneNode n(TSR_OP_ADD, buf);  // out (offset 32) = a (0) + b (16)
  const int32_t id = 0;
  auto step = [&](float base, float out[4]) {
    const float b[4] = {base, base + 1, base + 2, base + 3};
    ASSERT_EQ(api_->buffer_upload(buf, 16, b, 16, nullptr, &err), TSR_OK) << err.message;
    ASSERT_EQ(api_->execute(dev, &n.view, &id, 1, nullptr, &err), TSR_OK) << err.message;
    ASSERT_EQ(api_->device_synchronize(dev, &err), TSR_OK) << err.message;
    ASSERT_EQ(api_->buffer_download(buf, 32, out, 16, nullptr, &err), TSR_OK) << err.message;
  };
  for (int s = 0; s < 6; ++s) {
    float out[4] = {};
    step(10.0f * static_cast<float>(s), out);
    if (HasFatalFailure()) return;
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], a[i] + 10.0f * s + i) << "step " << s;
  }
  // The range changed after the last execute: by an upload, then by a copy.
  float out[4] = {};
  const float u[4] = {-1, -2, -3, -4};
  ASSERT_EQ(api_->buffer_upload(buf, 32, u, 16, nullptr, &err), TSR_OK) << err.message;
  ASSERT_EQ(api_->buffer_download(buf, 32, out, 16, nullptr, &err), TSR_OK) << err.message;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], u[i]);
  for (int s = 0; s < 3; ++s) step(100.0f, out);  // the eager copies start again
  ASSERT_EQ(api_->buffer_copy(buf, 0, buf, 32, 16, nullptr, &err), TSR_OK) << err.message;
  ASSERT_EQ(api_->buffer_download(buf, 32, out, 16, nullptr, &err), TSR_OK) << err.message;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], a[i]);
  // A part of the copied range, then another range, after an execute.
  for (int s = 0; s < 3; ++s) step(200.0f, out);
  const float b2[4] = {300, 301, 302, 303};
  ASSERT_EQ(api_->buffer_upload(buf, 16, b2, 16, nullptr, &err), TSR_OK) << err.message;
  ASSERT_EQ(api_->execute(dev, &n.view, &id, 1, nullptr, &err), TSR_OK) << err.message;
  float part[2] = {};
  ASSERT_EQ(api_->buffer_download(buf, 36, part, 8, nullptr, &err), TSR_OK) << err.message;
  EXPECT_EQ(part[0], a[1] + 301.0f);
  EXPECT_EQ(part[1], a[2] + 302.0f);
  ASSERT_EQ(api_->buffer_download(buf, 16, out, 16, nullptr, &err), TSR_OK) << err.message;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], b2[i]);
  api_->buffer_free(buf);
  api_->device_close(dev);
  api_->destroy_context(ctx);
}

// host_alloc memory (ABI 1.2) as download destinations, on the discrete path
// (TESSERA_VULKAN_STAGED=1): a download into it is one device copy straight there, and once the
// same range went to the same host_alloc bytes in the last two downloads, each after an execute
// of the same graph, the next executes of that graph copy it straight there (the direct eager
// copy; the contract at plugin.cc RecordEagerCopy: those bytes are the download's from the
// execute on, whatever the next download is). Steps downloading into host_alloc memory and into
// plain memory, alternating, in runs, with another graph's steps between: every download has
// the latest bytes, and every byte of the host_alloc memory is checked after each step: the
// destination holds the last download into it, or the range's bytes after the execute where
// the direct copy was armed, and nothing else ever changes.
TEST_F(VulkanPluginTest, HostAllocDownloadsSeeTheLatestBytes) {
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  tsr_plugin_ctx* ctx = nullptr;
  tsr_device* dev = nullptr;
  OpenFirstDeviceStaged(&ctx, &dev);
  if (HasFatalFailure()) return;
  if (dev == nullptr) GTEST_SKIP() << "no Vulkan device";
  ASSERT_NE(api_->host_alloc, nullptr);
  ASSERT_NE(api_->host_free, nullptr);
  constexpr size_t kHost = 4096;
  void* hp = nullptr;
  ASSERT_EQ(api_->host_alloc(dev, kHost, &hp, &err), TSR_OK) << err.message;
  ASSERT_NE(hp, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(hp) % 64, 0u);
  auto* host = static_cast<uint8_t*>(hp);
  std::vector<uint8_t> want(kHost);  // what `host` must hold
  for (size_t i = 0; i < kHost; ++i) want[i] = static_cast<uint8_t>(i * 7 + 3);
  std::memcpy(host, want.data(), kHost);
  tsr_buffer* buf = nullptr;
  ASSERT_EQ(api_->buffer_alloc(dev, 0, 64, &buf, &err), TSR_OK) << err.message;
  const float a[4] = {1, 2, 3, 4};
  ASSERT_EQ(api_->buffer_upload(buf, 0, a, 16, nullptr, &err), TSR_OK) << err.message;
  OneNode n(TSR_OP_ADD, buf);   // out (offset 32) = a (0) + b (16)
  OneNode n2(TSR_OP_MUL, buf);  // another graph: out (offset 48) = a * b
  n2.t[2].offset = 48;
  const int32_t id = 0;
  constexpr size_t kAt = 256;  // the logits' place in `host`
  // The downloads so far: the graph executed before each, and whether it went to `host` + kAt
  // (all of the graph's output); {nullptr, false} for any other download.
  std::vector<std::pair<const OneNode*, bool>> hist;
  bool freed = false;
  auto armed = [&](const OneNode& g) {
    const size_t k = hist.size();
    return !freed && k >= 2 && hist[k - 1] == std::make_pair(&g, true) &&
           hist[k - 2] == std::make_pair(&g, true);
  };
  auto check = [&](const char* what) {
    if (!freed) {
      EXPECT_EQ(std::memcmp(host, want.data(), kHost), 0) << what << hist.size();
    }
  };
  // One step of graph `g` (upload b, execute, synchronize), its output downloaded into
  // `host` + kAt or `plain`; checked.
  float plain[4] = {};
  int step_no = 0;
  auto step = [&](OneNode& g, bool to_host) {
    const float base = 10.0f * static_cast<float>(++step_no);
    const float b[4] = {base, base + 1, base + 2, base + 3};
    const bool direct = armed(g);
    ASSERT_EQ(api_->buffer_upload(buf, 16, b, 16, nullptr, &err), TSR_OK) << err.message;
    ASSERT_EQ(api_->execute(dev, &g.view, &id, 1, nullptr, &err), TSR_OK) << err.message;
    ASSERT_EQ(api_->device_synchronize(dev, &err), TSR_OK) << err.message;
    float* dst = to_host ? reinterpret_cast<float*>(host + kAt) : plain;
    ASSERT_EQ(api_->buffer_download(buf, g.t[2].offset, dst, 16, nullptr, &err), TSR_OK)
        << err.message;
    float expect[4];
    for (int i = 0; i < 4; ++i) expect[i] = g.node.op == TSR_OP_ADD ? a[i] + b[i] : a[i] * b[i];
    if (to_host || direct) std::memcpy(want.data() + kAt, expect, 16);
    if (!to_host) {
      EXPECT_EQ(std::memcmp(plain, expect, 16), 0) << "step " << step_no;
    }
    hist.emplace_back(&g, to_host);
    check("step ");
  };
  // Runs into `host` (the direct eager copy from the third on), alternating with plain memory,
  // and runs into plain memory.
  const char* pattern = "HHHHHHPHPHHHPPPHHHHPPPPHPHPPHHHHP";
  for (const char* c = pattern; *c != 0; ++c) {
    step(n, *c == 'H');
    if (HasFatalFailure()) return;
  }
  // Another graph's steps: not armed for them (the destination keeps its bytes), then armed.
  for (int s = 0; s < 3; ++s) step(n, true);
  for (int s = 0; s < 3; ++s) step(n2, false);
  for (int s = 0; s < 4; ++s) step(n2, true);
  for (int s = 0; s < 4; ++s) step(n, true);
  for (int s = 0; s < 2; ++s) step(n2, false);
  if (HasFatalFailure()) return;
  // Armed: an execute, then a part of the range into its place in `host` (served by the direct
  // copy), then steps, an execute and the whole range into another place.
  for (int s = 0; s < 3; ++s) step(n, true);
  const float b3[4] = {500, 501, 502, 503};
  float sum3[4];
  for (int i = 0; i < 4; ++i) sum3[i] = a[i] + b3[i];
  ASSERT_EQ(api_->buffer_upload(buf, 16, b3, 16, nullptr, &err), TSR_OK) << err.message;
  ASSERT_EQ(api_->execute(dev, &n.view, &id, 1, nullptr, &err), TSR_OK) << err.message;
  ASSERT_EQ(api_->buffer_download(buf, 36, host + kAt + 4, 8, nullptr, &err), TSR_OK)
      << err.message;
  std::memcpy(want.data() + kAt, sum3, 16);  // the direct copy wrote all of the range
  hist.emplace_back(nullptr, false);
  check("part ");
  for (int s = 0; s < 3; ++s) step(n, true);
  if (HasFatalFailure()) return;
  ASSERT_EQ(api_->buffer_upload(buf, 16, b3, 16, nullptr, &err), TSR_OK) << err.message;
  ASSERT_EQ(api_->execute(dev, &n.view, &id, 1, nullptr, &err), TSR_OK) << err.message;
  ASSERT_EQ(api_->buffer_download(buf, 32, host + 1024, 16, nullptr, &err), TSR_OK) << err.message;
  std::memcpy(want.data() + kAt, sum3, 16);  // armed again
  std::memcpy(want.data() + 1024, sum3, 16);
  hist.emplace_back(nullptr, false);
  check("elsewhere ");
  // After steps: an upload into the range, its download into `host` (no execute between);
  // a larger range into `host`.
  for (int s = 0; s < 3; ++s) step(n, true);
  if (HasFatalFailure()) return;
  const float u[4] = {-1, -2, -3, -4};
  ASSERT_EQ(api_->buffer_upload(buf, 32, u, 16, nullptr, &err), TSR_OK) << err.message;
  ASSERT_EQ(api_->buffer_download(buf, 32, host + kAt, 16, nullptr, &err), TSR_OK) << err.message;
  std::memcpy(want.data() + kAt, u, 16);
  hist.emplace_back(nullptr, false);
  check("upload ");
  float b_plain[4] = {};
  ASSERT_EQ(api_->buffer_download(buf, 16, b_plain, 16, nullptr, &err), TSR_OK) << err.message;
  ASSERT_EQ(api_->buffer_download(buf, 0, host + 2048, 48, nullptr, &err), TSR_OK) << err.message;
  std::memcpy(want.data() + 2048, a, 16);
  std::memcpy(want.data() + 2064, b_plain, 16);
  std::memcpy(want.data() + 2080, u, 16);
  hist.emplace_back(nullptr, false);
  check("larger ");
  // Freed while armed: the steps go on into plain memory.
  for (int s = 0; s < 3; ++s) step(n, true);
  if (HasFatalFailure()) return;
  api_->host_free(dev, hp);
  freed = true;
  for (int s = 0; s < 4; ++s) step(n, false);
  api_->host_free(dev, nullptr);
  int not_ours = 0;
  api_->host_free(dev, &not_ours);  // not host_alloc's: ignored
  api_->buffer_free(buf);
  api_->device_close(dev);
  api_->destroy_context(ctx);
}

// MATMUL rows must not depend on the batch: out[m] computed with M = 70 (the tiled GEMM), with
// M = 1 and with M = 7 / 13 / 32 (the GEMV: one, two and four x-row tiles) has the same bits, for
// 16-byte aligned rows and for rows that are not (K = 100: scalar loads and a short last chunk),
// bf16, f32, q8 and q4 weights, with a bias. M = 1 with aligned rows of bf16/f32 takes
// matmul.comp's decode path (DecodeRows); M = 2..32 with aligned rows and whole chunks MultiRows
// (where the device fits it), here with its weight rows a subgroup by shape and forced to 4 / 2 /
// 1, and with it off (MatmulRow). The values are also checked against a double-precision reference.
struct MatmulCase {
  tsr_dtype wdt;
  int64_t K;
};

// A [rows, K] weight in `wdt` (bf16 rounding of the given values, q8 blocks with scale 2^-7 or q4
// blocks with scale 2^-3)
// and the f32 values it decodes to.
std::vector<uint8_t> EncodeWeights(const MatmulCase& c, int64_t rows, std::mt19937* rng,
                                   std::vector<float>* decoded) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<uint8_t> bytes;
  decoded->clear();
  for (int64_t r = 0; r < rows; ++r) {
    if (c.wdt == TSR_DTYPE_BF16) {
      for (int64_t k = 0; k < c.K; ++k) {
        uint32_t bits;
        const float f = u(*rng);
        std::memcpy(&bits, &f, 4);
        bits &= 0xffff0000u;
        float d;
        std::memcpy(&d, &bits, 4);
        decoded->push_back(d);
        bytes.push_back(static_cast<uint8_t>(bits >> 16));
        bytes.push_back(static_cast<uint8_t>(bits >> 24));
      }
    } else if (c.wdt == TSR_DTYPE_F32) {
      for (int64_t k = 0; k < c.K; ++k) {
        const float f = u(*rng);
        decoded->push_back(f);
        const auto* p = reinterpret_cast<const uint8_t*>(&f);
        bytes.insert(bytes.end(), p, p + 4);
      }
    } else if (c.wdt == TSR_DTYPE_Q4_B32) {  // f16 scale 2^-3 (0x3000), then 16 bytes: value
      // i < 16 is byte i's low nibble, value 16 + i its high nibble, each minus 8
      std::uniform_int_distribution<int> nib(0, 15);
      for (int64_t b = 0; b < c.K / 32; ++b) {
        bytes.push_back(0x00);
        bytes.push_back(0x30);
        int q[32];
        for (int& v : q) v = nib(*rng);
        for (int i = 0; i < 32; ++i) decoded->push_back(static_cast<float>(q[i] - 8) / 8.0f);
        for (int i = 0; i < 16; ++i) bytes.push_back(static_cast<uint8_t>(q[i] | (q[16 + i] << 4)));
      }
    } else {  // Q8_B32: f16 scale 2^-7 (0x2000) then 32 int8
      for (int64_t b = 0; b < c.K / 32; ++b) {
        bytes.push_back(0x00);
        bytes.push_back(0x20);
        for (int i = 0; i < 32; ++i) {
          const int q = static_cast<int>(std::lround(u(*rng) * 127.0f));
          decoded->push_back(static_cast<float>(q) / 128.0f);
          bytes.push_back(static_cast<uint8_t>(static_cast<int8_t>(q)));
        }
      }
    }
  }
  return bytes;
}

TEST_F(VulkanPluginTest, MatmulRowsDoNotDependOnTheBatch) {
  // {TESSERA_VULKAN_MULTI, TESSERA_VULKAN_MULTI_ROWS}; nullptr = unset.
  const std::pair<const char*, const char*> variants[] = {
      {nullptr, nullptr}, {nullptr, "4"}, {nullptr, "2"}, {nullptr, "1"}, {"0", nullptr}};
  for (const auto& [multi, multi_rows] : variants) {
    SCOPED_TRACE(std::string("MULTI ") + (multi ? multi : "-") + ", MULTI_ROWS " +
                 (multi_rows ? multi_rows : "-"));
    const auto set = [](const char* name, const char* value) {
      if (value != nullptr) {
        setenv(name, value, 1);
      } else {
        unsetenv(name);
      }
    };
    set("TESSERA_VULKAN_MULTI", multi);
    set("TESSERA_VULKAN_MULTI_ROWS", multi_rows);
    ASSERT_NO_FATAL_FAILURE(CheckMatmulRowsDoNotDependOnTheBatch());
    unsetenv("TESSERA_VULKAN_MULTI");
    unsetenv("TESSERA_VULKAN_MULTI_ROWS");
  }
}

void VulkanPluginTest::CheckMatmulRowsDoNotDependOnTheBatch() {
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  tsr_plugin_ctx* ctx = nullptr;
  tsr_device* dev = nullptr;
  ASSERT_NO_FATAL_FAILURE(OpenFirstDevice(&ctx, &dev));
  if (dev == nullptr) GTEST_SKIP() << "no Vulkan device";
  constexpr int64_t M = 70, N = 67, kFirst = 5;
  const int64_t kRows[] = {M, 1, 7, 13, 32};
  std::mt19937 rng(7);
  // K = 2080 (65 chunks): the M = 1 decode path of matmul.comp runs several prefetched batches
  // and a partial last one (subgroup 8 or 32).
  for (const MatmulCase c : {MatmulCase{TSR_DTYPE_BF16, 160}, MatmulCase{TSR_DTYPE_BF16, 100},
                             MatmulCase{TSR_DTYPE_BF16, 2080}, MatmulCase{TSR_DTYPE_F32, 2080},
                             MatmulCase{TSR_DTYPE_Q8_B32, 128}, MatmulCase{TSR_DTYPE_Q8_B32, 2080},
                             MatmulCase{TSR_DTYPE_Q4_B32, 2080}}) {
    SCOPED_TRACE("dtype " + std::to_string(c.wdt) + ", K " + std::to_string(c.K));
    std::vector<float> wf, x(M * c.K), bias(N);
    const std::vector<uint8_t> w = EncodeWeights(c, N, &rng, &wf);
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    for (float& v : x) v = u(rng);
    for (float& v : bias) v = u(rng);
    // Buffer: x | w | bias | out (M = 70) | out (each of kRows' others), 256-byte aligned parts.
    auto align = [](uint64_t v) { return (v + 255) / 256 * 256; };
    const uint64_t ow = align(x.size() * 4), ob = ow + align(w.size()), oo = ob + align(N * 4);
    const uint64_t out_bytes = align(M * N * 4), total = oo + std::size(kRows) * out_bytes;
    tsr_buffer* buf = nullptr;
    ASSERT_EQ(api_->buffer_alloc(dev, 0, total, &buf, &err), TSR_OK) << err.message;
    ASSERT_EQ(api_->buffer_upload(buf, 0, x.data(), x.size() * 4, nullptr, &err), TSR_OK);
    ASSERT_EQ(api_->buffer_upload(buf, ow, w.data(), w.size(), nullptr, &err), TSR_OK);
    ASSERT_EQ(api_->buffer_upload(buf, ob, bias.data(), N * 4, nullptr, &err), TSR_OK);
    std::vector<std::vector<float>> outs;
    for (const int64_t rows : kRows) {
      const int64_t first = rows == M ? 0 : kFirst;
      tsr_tensor t[4] = {};
      for (tsr_tensor& ti : t) ti.struct_size = sizeof(tsr_tensor), ti.buffer = buf, ti.ndim = 2;
      t[0].dtype = TSR_DTYPE_F32, t[0].ne[0] = rows, t[0].ne[1] = c.K;
      t[0].nb[0] = c.K * 4, t[0].nb[1] = 4, t[0].offset = first * c.K * 4;
      t[1].dtype = c.wdt, t[1].ne[0] = N, t[1].ne[1] = c.K, t[1].offset = ow;
      t[1].nb[0] = static_cast<int64_t>(w.size()) / N;
      t[1].nb[1] = c.wdt == TSR_DTYPE_BF16 ? 2 : c.wdt == TSR_DTYPE_F32 ? 4 : 0;
      t[2].dtype = TSR_DTYPE_F32, t[2].ndim = 1, t[2].ne[0] = N, t[2].nb[0] = 4, t[2].offset = ob;
      const uint64_t oa = oo + outs.size() * out_bytes;
      t[3].dtype = TSR_DTYPE_F32, t[3].ne[0] = rows, t[3].ne[1] = N;
      t[3].nb[0] = N * 4, t[3].nb[1] = 4, t[3].offset = oa;
      tsr_node node{};
      node.struct_size = sizeof(node);
      node.op = TSR_OP_MATMUL;
      node.n_inputs = 3;
      node.inputs[0] = 0, node.inputs[1] = 1, node.inputs[2] = 2;
      node.output = 3;
      const tsr_graph_view view{sizeof(tsr_graph_view), 4, t, 1, &node};
      const int32_t id = 0;
      ASSERT_EQ(api_->execute(dev, &view, &id, 1, nullptr, &err), TSR_OK) << err.message;
      outs.emplace_back(rows * N);
      ASSERT_EQ(api_->buffer_download(buf, oa, outs.back().data(), rows * N * 4, nullptr, &err),
                TSR_OK)
          << err.message;
    }
    for (int64_t n = 0; n < N; ++n) {
      for (size_t i = 1; i < std::size(kRows); ++i) {
        for (int64_t r = 0; r < kRows[i]; ++r) {
          const float full = outs[0][(kFirst + r) * N + n];
          EXPECT_EQ(std::memcmp(&full, &outs[i][r * N + n], 4), 0)
              << "M " << kRows[i] << " row " << r << " col " << n;
        }
      }
      for (int64_t m = 0; m < M; ++m) {
        double ref = bias[n];
        for (int64_t k = 0; k < c.K; ++k)
          ref += static_cast<double>(x[m * c.K + k]) * wf[n * c.K + k];
        ASSERT_NEAR(outs[0][m * N + n], ref, 1e-4 * (1 + std::fabs(ref))) << m << "," << n;
      }
    }
    api_->buffer_free(buf);
  }
  api_->device_close(dev);
  api_->destroy_context(ctx);
}

// Consecutive decode MATMULs over the same x row (q/k/v with biases, gate/up) run as one grouped
// dispatch when executed together (plugin.cc ExecuteDecodeGroup); each output must have the bits
// of its node run alone, which is one execute call a node. Row counts that are not multiples of
// a workgroup's rows check the parts' boundaries; values are also checked against a reference.
TEST_F(VulkanPluginTest, GroupedDecodeMatmulsMatchSeparateNodesBitForBit) {
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  tsr_plugin_ctx* ctx = nullptr;
  tsr_device* dev = nullptr;
  ASSERT_NO_FATAL_FAILURE(OpenFirstDevice(&ctx, &dev));
  if (dev == nullptr) GTEST_SKIP() << "no Vulkan device";
  std::mt19937 rng(11);
  struct GroupCase {
    MatmulCase c;
    std::vector<int64_t> ns;
    bool bias;
  };
  for (const GroupCase& gc : {GroupCase{{TSR_DTYPE_BF16, 1024}, {72, 24, 24}, true},  // q/k/v
                              GroupCase{{TSR_DTYPE_BF16, 160}, {200, 200}, false},    // gate/up
                              GroupCase{{TSR_DTYPE_F32, 256}, {40, 8, 8}, true}}) {
    const MatmulCase& c = gc.c;
    const int parts = static_cast<int>(gc.ns.size());
    SCOPED_TRACE("dtype " + std::to_string(c.wdt) + ", parts " + std::to_string(parts));
    auto align = [](uint64_t v) { return (v + 255) / 256 * 256; };
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    std::vector<float> x(c.K);
    for (float& v : x) v = u(rng);
    // Buffer: x | per part: w | bias | out (grouped) | out (alone).
    std::vector<std::vector<uint8_t>> w(parts);
    std::vector<std::vector<float>> wf(parts), bias(parts);
    std::vector<uint64_t> ow(parts), ob(parts), oo(parts);
    uint64_t total = align(x.size() * 4);
    for (int j = 0; j < parts; ++j) {
      w[j] = EncodeWeights(c, gc.ns[j], &rng, &wf[j]);
      bias[j].resize(gc.ns[j]);
      for (float& v : bias[j]) v = u(rng);
      ow[j] = total, ob[j] = ow[j] + align(w[j].size()), oo[j] = ob[j] + align(gc.ns[j] * 4);
      total = oo[j] + 2 * align(gc.ns[j] * 4);
    }
    tsr_buffer* buf = nullptr;
    ASSERT_EQ(api_->buffer_alloc(dev, 0, total, &buf, &err), TSR_OK) << err.message;
    ASSERT_EQ(api_->buffer_upload(buf, 0, x.data(), x.size() * 4, nullptr, &err), TSR_OK);
    for (int j = 0; j < parts; ++j) {
      ASSERT_EQ(api_->buffer_upload(buf, ow[j], w[j].data(), w[j].size(), nullptr, &err), TSR_OK);
      ASSERT_EQ(api_->buffer_upload(buf, ob[j], bias[j].data(), gc.ns[j] * 4, nullptr, &err),
                TSR_OK);
    }
    std::vector<std::vector<float>> outs[2];  // [grouped, alone][part]
    for (int alone = 0; alone < 2; ++alone) {
      // Tensors: x, then per part w, bias, out.
      std::vector<tsr_tensor> t(1 + 3 * parts);
      for (tsr_tensor& ti : t) ti.struct_size = sizeof(tsr_tensor), ti.buffer = buf, ti.ndim = 2;
      t[0].dtype = TSR_DTYPE_F32, t[0].ne[0] = 1, t[0].ne[1] = c.K;
      t[0].nb[0] = c.K * 4, t[0].nb[1] = 4;
      std::vector<tsr_node> nodes(parts);
      for (int j = 0; j < parts; ++j) {
        const int64_t N = gc.ns[j];
        tsr_tensor& tw = t[1 + 3 * j];
        tsr_tensor& tb = t[2 + 3 * j];
        tsr_tensor& to = t[3 + 3 * j];
        tw.dtype = c.wdt, tw.ne[0] = N, tw.ne[1] = c.K, tw.offset = ow[j];
        tw.nb[0] = static_cast<int64_t>(w[j].size()) / N;
        tw.nb[1] = c.wdt == TSR_DTYPE_BF16 ? 2 : 4;
        tb.dtype = TSR_DTYPE_F32, tb.ndim = 1, tb.ne[0] = N, tb.nb[0] = 4, tb.offset = ob[j];
        to.dtype = TSR_DTYPE_F32, to.ne[0] = 1, to.ne[1] = N;
        to.nb[0] = N * 4, to.nb[1] = 4, to.offset = oo[j] + alone * align(N * 4);
        nodes[j].struct_size = sizeof(tsr_node);
        nodes[j].op = TSR_OP_MATMUL;
        nodes[j].n_inputs = gc.bias ? 3 : 2;
        nodes[j].inputs[0] = 0, nodes[j].inputs[1] = 1 + 3 * j, nodes[j].inputs[2] = 2 + 3 * j;
        nodes[j].output = 3 + 3 * j;
      }
      const tsr_graph_view view{sizeof(tsr_graph_view), static_cast<int32_t>(t.size()), t.data(),
                                parts, nodes.data()};
      std::vector<int32_t> ids(parts);
      for (int j = 0; j < parts; ++j) ids[j] = j;
      if (alone == 0) {
        ASSERT_EQ(api_->execute(dev, &view, ids.data(), parts, nullptr, &err), TSR_OK)
            << err.message;
      } else {
        for (int j = 0; j < parts; ++j) {
          ASSERT_EQ(api_->execute(dev, &view, &ids[j], 1, nullptr, &err), TSR_OK) << err.message;
        }
      }
      for (int j = 0; j < parts; ++j) {
        outs[alone].emplace_back(gc.ns[j]);
        ASSERT_EQ(api_->buffer_download(buf, t[3 + 3 * j].offset, outs[alone].back().data(),
                                        gc.ns[j] * 4, nullptr, &err),
                  TSR_OK)
            << err.message;
      }
    }
    for (int j = 0; j < parts; ++j) {
      for (int64_t n = 0; n < gc.ns[j]; ++n) {
        EXPECT_EQ(std::memcmp(&outs[0][j][n], &outs[1][j][n], 4), 0)
            << "part " << j << " row " << n;
        double ref = gc.bias ? bias[j][n] : 0.0;
        for (int64_t k = 0; k < c.K; ++k) ref += static_cast<double>(x[k]) * wf[j][n * c.K + k];
        ASSERT_NEAR(outs[0][j][n], ref, 1e-4 * (1 + std::fabs(ref))) << j << "," << n;
      }
    }
    api_->buffer_free(buf);
  }
  api_->device_close(dev);
  api_->destroy_context(ctx);
}

// The decode GEMV's variants (the split kernel with 1, 2 or 4 row blocks a workgroup; coalesced
// weight loads or one lane a chunk; 1, 2 or 4 weight rows a subgroup or split block) split the
// work differently but sum every row in the canonical order: the same bits. K = 160 / 1056 /
// 2080 / 14368 give the split kernel one to fourteen steps (a partial last one). The device is
// opened once a variant (the NVIDIA driver stopped listing the GPU after ~40 instances in one
// process). The M = 70 GEMM against the default variant is MatmulRowsDoNotDependOnTheBatch's.
TEST_F(VulkanPluginTest, DecodeGemvVariantsMatchBitForBit) {
  std::mt19937 rng(5);
  constexpr int64_t N = 67;
  const MatmulCase cases[] = {{TSR_DTYPE_BF16, 2080},
                              {TSR_DTYPE_F32, 1056},
                              {TSR_DTYPE_BF16, 160},
                              {TSR_DTYPE_BF16, 14368}};
  constexpr int kCases = 4;
  std::vector<float> wf[kCases], x[kCases];
  std::vector<uint8_t> w[kCases];
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (int ci = 0; ci < kCases; ++ci) {
    w[ci] = EncodeWeights(cases[ci], N, &rng, &wf[ci]);
    x[ci].resize(cases[ci].K);
    for (float& v : x[ci]) v = u(rng);
  }
  struct Variant {
    const char *split, *blocks, *coalesce, *rows, *skew, *xsplit = "0", *pref = "0",
                                                         *pref_groups = "0";
  };
  // skew "1" / "2": the skewed hand-over (DecodeRowsSkewed, SKEW_MODE 1 / 2) where the device
  // has subgroup shuffles; xsplit: that kernel split over 3 / 4 workgroups a row block (K =
  // 2080, 1056, 14368; K = 160 is one piece); pref: its PREF twin on every dispatch
  // (TESSERA_VULKAN_DECODE_PREF: matmul.comp PREF_MODE 9 = half + x, 10 = full + x, 2 = full);
  // pref_groups: the default rule (the twin with PREF_MODE 10 on dispatches of at most that many
  // workgroups, TESSERA_VULKAN_DECODE_PREF_GROUPS): 65536 all of them, 4 those of few workgroups
  // (which ones depends on the subgroup size).
  const Variant variants[] = {{"1", "0", "1", "4", "0"},
                              {"1", "4", "1", "4", "0"},
                              {"1", "2", "1", "2", "0"},
                              {"1", "1", "1", "1", "0"},
                              {"0", "0", "1", "1", "0"},
                              {"0", "0", "1", "2", "0"},
                              {"0", "0", "1", "4", "0"},
                              {"0", "0", "0", "1", "0"},
                              {"0", "0", "0", "2", "0"},
                              {"0", "0", "0", "4", "0"},
                              {"0", "0", "1", "4", "1"},
                              {"0", "0", "1", "1", "1"},
                              {"0", "0", "1", "4", "2"},
                              {"0", "0", "1", "1", "2"},
                              {"0", "0", "1", "4", "1", "3"},
                              {"0", "0", "1", "1", "2", "4"},
                              {"0", "0", "1", "2", "1", "4"},
                              {"0", "0", "1", "4", "1", "0", "9"},
                              {"0", "0", "1", "2", "1", "0", "10"},
                              {"0", "0", "1", "4", "1", "3", "2"},
                              {"0", "0", "1", "4", "1", "0", "0", "4"},
                              {"0", "0", "1", "1", "1", "0", "0", "65536"}};
  std::vector<std::vector<float>> outs[kCases];
  // One context (one Vulkan instance) for all variants, a device a variant (the knobs are read
  // when a device opens): NVIDIA's driver stops listing the GPU after ~40 instances in a process.
  tsr_plugin_ctx* ctx = nullptr;
  ASSERT_NO_FATAL_FAILURE(ContextWithDevices(&ctx));
  if (ctx == nullptr) GTEST_SKIP() << "no Vulkan device";
  for (const Variant& var : variants) {
    SCOPED_TRACE(std::string("split ") + var.split + ", blocks " + var.blocks + ", coalesce " +
                 var.coalesce + ", rows " + var.rows + ", skew " + var.skew + ", xsplit " +
                 var.xsplit + ", pref " + var.pref + ", pref groups " + var.pref_groups);
    setenv("TESSERA_VULKAN_DECODE_SPLIT", var.split, 1);
    setenv("TESSERA_VULKAN_SPLIT_BLOCKS", var.blocks, 1);
    setenv("TESSERA_VULKAN_DECODE_COALESCE", var.coalesce, 1);
    setenv("TESSERA_VULKAN_DECODE_ROWS", var.rows, 1);
    setenv("TESSERA_VULKAN_DECODE_SKEW", var.skew, 1);
    setenv("TESSERA_VULKAN_DECODE_XSPLIT", var.xsplit, 1);
    setenv("TESSERA_VULKAN_DECODE_PREF", var.pref, 1);
    setenv("TESSERA_VULKAN_DECODE_PREF_GROUPS", var.pref_groups, 1);
    setenv("TESSERA_VULKAN_DECODE_SKEW_PLAIN", "1", 1);  // these are lone GEMVs
    tsr_error err{sizeof(tsr_error), TSR_OK, {}};
    tsr_device* dev = nullptr;
    const tsr_status opened = api_->device_open(ctx, 0, &dev, &err);
    for (const char* v : {"TESSERA_VULKAN_DECODE_SPLIT", "TESSERA_VULKAN_SPLIT_BLOCKS",
                          "TESSERA_VULKAN_DECODE_COALESCE", "TESSERA_VULKAN_DECODE_ROWS",
                          "TESSERA_VULKAN_DECODE_SKEW", "TESSERA_VULKAN_DECODE_XSPLIT",
                          "TESSERA_VULKAN_DECODE_PREF", "TESSERA_VULKAN_DECODE_PREF_GROUPS",
                          "TESSERA_VULKAN_DECODE_SKEW_PLAIN"})
      unsetenv(v);
    ASSERT_EQ(opened, TSR_OK) << err.message;
    for (int ci = 0; ci < kCases; ++ci) {
      const MatmulCase& c = cases[ci];
      SCOPED_TRACE("dtype " + std::to_string(c.wdt) + ", K " + std::to_string(c.K));
      const uint64_t ow = (c.K * 4 + 255) / 256 * 256, oo = ow + (w[ci].size() + 255) / 256 * 256;
      tsr_buffer* buf = nullptr;
      ASSERT_EQ(api_->buffer_alloc(dev, 0, oo + N * 4, &buf, &err), TSR_OK) << err.message;
      ASSERT_EQ(api_->buffer_upload(buf, 0, x[ci].data(), c.K * 4, nullptr, &err), TSR_OK);
      ASSERT_EQ(api_->buffer_upload(buf, ow, w[ci].data(), w[ci].size(), nullptr, &err), TSR_OK);
      tsr_tensor t[3] = {};
      for (tsr_tensor& ti : t) ti.struct_size = sizeof(tsr_tensor), ti.buffer = buf, ti.ndim = 2;
      t[0].dtype = TSR_DTYPE_F32, t[0].ne[0] = 1, t[0].ne[1] = c.K;
      t[0].nb[0] = c.K * 4, t[0].nb[1] = 4;
      t[1].dtype = c.wdt, t[1].ne[0] = N, t[1].ne[1] = c.K, t[1].offset = ow;
      t[1].nb[0] = static_cast<int64_t>(w[ci].size()) / N;
      t[1].nb[1] = c.wdt == TSR_DTYPE_BF16 ? 2 : 4;
      t[2].dtype = TSR_DTYPE_F32, t[2].ne[0] = 1, t[2].ne[1] = N;
      t[2].nb[0] = N * 4, t[2].nb[1] = 4, t[2].offset = oo;
      tsr_node node{};
      node.struct_size = sizeof(node);
      node.op = TSR_OP_MATMUL;
      node.n_inputs = 2;
      node.inputs[0] = 0, node.inputs[1] = 1;
      node.output = 2;
      const tsr_graph_view view{sizeof(tsr_graph_view), 3, t, 1, &node};
      const int32_t id = 0;
      ASSERT_EQ(api_->execute(dev, &view, &id, 1, nullptr, &err), TSR_OK) << err.message;
      outs[ci].emplace_back(N);
      ASSERT_EQ(api_->buffer_download(buf, oo, outs[ci].back().data(), N * 4, nullptr, &err),
                TSR_OK)
          << err.message;
      api_->buffer_free(buf);
    }
    api_->device_close(dev);
  }
  api_->destroy_context(ctx);
  for (int ci = 0; ci < kCases; ++ci) {
    const MatmulCase& c = cases[ci];
    SCOPED_TRACE("dtype " + std::to_string(c.wdt) + ", K " + std::to_string(c.K));
    for (size_t v = 1; v < outs[ci].size(); ++v) {
      for (int64_t n = 0; n < N; ++n) {
        EXPECT_EQ(std::memcmp(&outs[ci][0][n], &outs[ci][v][n], 4), 0)
            << "variant " << v << " row " << n;
      }
    }
    for (int64_t n = 0; n < N; ++n) {
      double ref = 0.0;
      for (int64_t k = 0; k < c.K; ++k) ref += static_cast<double>(x[ci][k]) * wf[ci][n * c.K + k];
      ASSERT_NEAR(outs[ci][0][n], ref, 1e-4 * (1 + std::fabs(ref))) << n;
    }
  }
}

// A decode MATMUL followed by the ADD of its output and a residual (o/down projection) runs as
// one dispatch when executed together (plugin.cc ExecuteDecodeResidual): both outputs must have
// the bits of the two nodes run one execute call each, with the GEMV output as either operand
// and with the sum written over the residual (in place).
TEST_F(VulkanPluginTest, DecodeMatmulWithResidualAddMatchesSeparateNodes) {
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  tsr_plugin_ctx* ctx = nullptr;
  tsr_device* dev = nullptr;
  ASSERT_NO_FATAL_FAILURE(OpenFirstDevice(&ctx, &dev));
  if (dev == nullptr) GTEST_SKIP() << "no Vulkan device";
  std::mt19937 rng(13);
  const MatmulCase c{TSR_DTYPE_BF16, 1024};
  constexpr int64_t N = 200;
  std::vector<float> wf, x(c.K), bias(N), res(N);
  const std::vector<uint8_t> w = EncodeWeights(c, N, &rng, &wf);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (float& v : x) v = u(rng);
  for (float& v : bias) v = u(rng);
  for (float& v : res) v = u(rng);
  // Buffer: x | w | bias | residual | out (matmul) | out (add), 256-byte aligned parts.
  const uint64_t ow = 4096, ob = ow + w.size(), orr = ob + 1024, om = orr + 1024, oa = om + 1024;
  for (int mm_first = 1; mm_first >= 0; --mm_first) {
    for (int in_place = 0; in_place < 2; ++in_place) {
      SCOPED_TRACE("matmul operand " + std::to_string(mm_first ? 0 : 1) + ", in place " +
                   std::to_string(in_place));
      std::vector<float> got[2][2];  // [fused, separate][matmul out, add out]
      for (int separate = 0; separate < 2; ++separate) {
        tsr_buffer* buf = nullptr;
        ASSERT_EQ(api_->buffer_alloc(dev, 0, oa + 1024, &buf, &err), TSR_OK) << err.message;
        ASSERT_EQ(api_->buffer_upload(buf, 0, x.data(), x.size() * 4, nullptr, &err), TSR_OK);
        ASSERT_EQ(api_->buffer_upload(buf, ow, w.data(), w.size(), nullptr, &err), TSR_OK);
        ASSERT_EQ(api_->buffer_upload(buf, ob, bias.data(), N * 4, nullptr, &err), TSR_OK);
        ASSERT_EQ(api_->buffer_upload(buf, orr, res.data(), N * 4, nullptr, &err), TSR_OK);
        // Tensors: x, w, bias, residual, matmul out, add out.
        tsr_tensor t[6] = {};
        for (tsr_tensor& ti : t) {
          ti.struct_size = sizeof(tsr_tensor), ti.buffer = buf, ti.ndim = 2;
          ti.dtype = TSR_DTYPE_F32, ti.ne[0] = 1, ti.ne[1] = N, ti.nb[0] = N * 4, ti.nb[1] = 4;
        }
        t[0].ne[1] = c.K, t[0].nb[0] = c.K * 4;
        t[1].dtype = c.wdt, t[1].ne[0] = N, t[1].ne[1] = c.K, t[1].offset = ow;
        t[1].nb[0] = c.K * 2, t[1].nb[1] = 2;
        t[2].ndim = 1, t[2].ne[0] = N, t[2].nb[0] = 4, t[2].offset = ob;
        t[3].offset = orr, t[4].offset = om, t[5].offset = in_place ? orr : oa;
        tsr_node nodes[2] = {};
        nodes[0].struct_size = nodes[1].struct_size = sizeof(tsr_node);
        nodes[0].op = TSR_OP_MATMUL, nodes[0].n_inputs = 3;
        nodes[0].inputs[0] = 0, nodes[0].inputs[1] = 1, nodes[0].inputs[2] = 2;
        nodes[0].output = 4;
        nodes[1].op = TSR_OP_ADD, nodes[1].n_inputs = 2;
        nodes[1].inputs[0] = mm_first ? 4 : 3, nodes[1].inputs[1] = mm_first ? 3 : 4;
        nodes[1].output = 5;
        const tsr_graph_view view{sizeof(tsr_graph_view), 6, t, 2, nodes};
        const int32_t ids[2] = {0, 1};
        if (separate) {
          ASSERT_EQ(api_->execute(dev, &view, &ids[0], 1, nullptr, &err), TSR_OK) << err.message;
          ASSERT_EQ(api_->execute(dev, &view, &ids[1], 1, nullptr, &err), TSR_OK) << err.message;
        } else {
          ASSERT_EQ(api_->execute(dev, &view, ids, 2, nullptr, &err), TSR_OK) << err.message;
        }
        for (int o = 0; o < 2; ++o) {
          got[separate][o].resize(N);
          ASSERT_EQ(api_->buffer_download(buf, t[4 + o].offset, got[separate][o].data(), N * 4,
                                          nullptr, &err),
                    TSR_OK)
              << err.message;
        }
        api_->buffer_free(buf);
      }
      for (int o = 0; o < 2; ++o) {
        for (int64_t n = 0; n < N; ++n) {
          EXPECT_EQ(std::memcmp(&got[0][o][n], &got[1][o][n], 4), 0) << "out " << o << " row " << n;
        }
      }
      for (int64_t n = 0; n < N; ++n) {
        double ref = bias[n];
        for (int64_t k = 0; k < c.K; ++k) ref += static_cast<double>(x[k]) * wf[n * c.K + k];
        ASSERT_NEAR(got[0][0][n], ref, 1e-4 * (1 + std::fabs(ref))) << n;
        ASSERT_NEAR(got[0][1][n], ref + res[n], 1e-4 * (1 + std::fabs(ref))) << n;
      }
    }
  }
  api_->device_close(dev);
  api_->destroy_context(ctx);
}

// An RMS_NORM of one row followed by the decode MATMULs that read its output (q/k/v, the LM head)
// runs as one dispatch when executed together (plugin.cc ExecuteNormGemv): the GEMV computes the
// norm's scale as rows.comp sums the row and normalizes x on load. Both the norm's output and
// the GEMVs' outputs must have the bits of the nodes run one execute call each. K = 2080 leaves
// a partial pass of rows.comp's 256 threads; the weight offset 1 is Gemma's form.
TEST_F(VulkanPluginTest, NormFusedIntoDecodeGemvMatchesSeparateNodes) {
  // Both decode modules with the prologue: the coalesced one and the skewed one (where the
  // device has subgroup shuffles; else it runs the coalesced one again). One context (Vulkan
  // instance), a device a module (see DecodeGemvVariantsMatchBitForBit).
  tsr_plugin_ctx* ctx = nullptr;
  ASSERT_NO_FATAL_FAILURE(ContextWithDevices(&ctx));
  if (ctx == nullptr) GTEST_SKIP() << "no Vulkan device";
  // "1p": the skewed module on 2 persistent workgroups (TESSERA_VULKAN_PERSIST, matmul.comp
  // NormGroups: each takes every other workgroup index); the others with it off.
  for (const char* mode : {"0", "1", "2", "1p"}) {
    SCOPED_TRACE(std::string("skew ") + mode);
    setenv("TESSERA_VULKAN_DECODE_SKEW", std::string(mode, 1).c_str(), 1);
    setenv("TESSERA_VULKAN_PERSIST", mode[1] == 'p' ? "2" : "0", 1);
    tsr_error err{sizeof(tsr_error), TSR_OK, {}};
    tsr_device* dev = nullptr;
    const tsr_status opened = api_->device_open(ctx, 0, &dev, &err);
    unsetenv("TESSERA_VULKAN_DECODE_SKEW");
    unsetenv("TESSERA_VULKAN_PERSIST");
    ASSERT_EQ(opened, TSR_OK) << err.message;
    std::mt19937 rng(17);
    struct NormCase {
      int64_t K;
      std::vector<int64_t> ns;
      bool weight;
      float woff;
    };
    for (const NormCase& nc :
         {NormCase{1024, {72, 40}, true, 0.0f}, NormCase{2080, {100}, true, 1.0f},
          NormCase{896, {64, 16, 16}, false, 0.0f}}) {
      const int64_t K = nc.K;
      const int parts = static_cast<int>(nc.ns.size());
      SCOPED_TRACE("K " + std::to_string(K) + ", parts " + std::to_string(parts));
      auto align = [](uint64_t v) { return (v + 255) / 256 * 256; };
      std::uniform_real_distribution<float> u(-2.0f, 2.0f);
      std::vector<float> x(K), nw(K);
      for (float& v : x) v = u(rng);
      for (float& v : nw) v = u(rng);
      // Buffer: x | norm weight | norm out | per part: w | out.
      const uint64_t onw = align(K * 4), ono = onw + align(K * 4);
      std::vector<std::vector<uint8_t>> w(parts);
      std::vector<std::vector<float>> wf(parts);
      std::vector<uint64_t> ow(parts), oo(parts);
      uint64_t total = ono + align(K * 4);
      for (int j = 0; j < parts; ++j) {
        w[j] = EncodeWeights(MatmulCase{TSR_DTYPE_BF16, K}, nc.ns[j], &rng, &wf[j]);
        ow[j] = total, oo[j] = ow[j] + align(w[j].size());
        total = oo[j] + align(nc.ns[j] * 4);
      }
      std::vector<float> got[2][1 + 3];  // [fused, separate][norm out, part outs]
      for (int separate = 0; separate < 2; ++separate) {
        tsr_buffer* buf = nullptr;
        ASSERT_EQ(api_->buffer_alloc(dev, 0, total, &buf, &err), TSR_OK) << err.message;
        ASSERT_EQ(api_->buffer_upload(buf, 0, x.data(), K * 4, nullptr, &err), TSR_OK);
        ASSERT_EQ(api_->buffer_upload(buf, onw, nw.data(), K * 4, nullptr, &err), TSR_OK);
        for (int j = 0; j < parts; ++j) {
          ASSERT_EQ(api_->buffer_upload(buf, ow[j], w[j].data(), w[j].size(), nullptr, &err),
                    TSR_OK);
        }
        // Tensors: x, norm weight, norm out, then per part w, out.
        std::vector<tsr_tensor> t(3 + 2 * parts);
        for (tsr_tensor& ti : t) {
          ti.struct_size = sizeof(tsr_tensor), ti.buffer = buf, ti.ndim = 2;
          ti.dtype = TSR_DTYPE_F32, ti.ne[0] = 1, ti.ne[1] = K, ti.nb[0] = K * 4, ti.nb[1] = 4;
        }
        t[1].ndim = 1, t[1].ne[0] = K, t[1].nb[0] = 4, t[1].offset = onw;
        t[2].offset = ono;
        std::vector<tsr_node> nodes(1 + parts);
        for (tsr_node& nd : nodes) nd.struct_size = sizeof(tsr_node);
        nodes[0].op = TSR_OP_RMS_NORM;
        nodes[0].n_inputs = nc.weight ? 2 : 1;
        nodes[0].inputs[0] = 0, nodes[0].inputs[1] = nc.weight ? 1 : -1;
        nodes[0].output = 2;
        nodes[0].fparams[0] = 1e-6f, nodes[0].fparams[1] = nc.woff;
        for (int j = 0; j < parts; ++j) {
          tsr_tensor& tw = t[3 + 2 * j];
          tsr_tensor& to = t[4 + 2 * j];
          tw.dtype = TSR_DTYPE_BF16, tw.ne[0] = nc.ns[j], tw.ne[1] = K, tw.offset = ow[j];
          tw.nb[0] = K * 2, tw.nb[1] = 2;
          to.ne[1] = nc.ns[j], to.nb[0] = nc.ns[j] * 4, to.offset = oo[j];
          nodes[1 + j].op = TSR_OP_MATMUL;
          nodes[1 + j].n_inputs = 2;
          nodes[1 + j].inputs[0] = 2, nodes[1 + j].inputs[1] = 3 + 2 * j;
          nodes[1 + j].output = 4 + 2 * j;
        }
        const tsr_graph_view view{sizeof(tsr_graph_view), static_cast<int32_t>(t.size()), t.data(),
                                  1 + parts, nodes.data()};
        std::vector<int32_t> ids(1 + parts);
        for (int j = 0; j <= parts; ++j) ids[j] = j;
        if (separate) {
          for (int j = 0; j <= parts; ++j) {
            ASSERT_EQ(api_->execute(dev, &view, &ids[j], 1, nullptr, &err), TSR_OK) << err.message;
          }
        } else {
          ASSERT_EQ(api_->execute(dev, &view, ids.data(), 1 + parts, nullptr, &err), TSR_OK)
              << err.message;
        }
        for (int o = 0; o <= parts; ++o) {
          const tsr_tensor& to = t[o == 0 ? 2 : 2 + 2 * o];
          got[separate][o].resize(to.ne[1]);
          ASSERT_EQ(api_->buffer_download(buf, to.offset, got[separate][o].data(), to.ne[1] * 4,
                                          nullptr, &err),
                    TSR_OK)
              << err.message;
        }
        api_->buffer_free(buf);
      }
      for (int o = 0; o <= parts; ++o) {
        for (size_t k = 0; k < got[0][o].size(); ++k) {
          EXPECT_EQ(std::memcmp(&got[0][o][k], &got[1][o][k], 4), 0) << "out " << o << " at " << k;
        }
      }
      double ss = 0;
      for (float v : x) ss += static_cast<double>(v) * v;
      const double r = 1.0 / std::sqrt(ss / K + 1e-6);
      for (int64_t k = 0; k < K; ++k) {
        const double y = x[k] * r * (nc.weight ? nw[k] + nc.woff : 1.0);
        ASSERT_NEAR(got[0][0][k], y, 1e-4 * (1 + std::fabs(y))) << k;
      }
      for (int j = 0; j < parts; ++j) {
        for (int64_t n = 0; n < nc.ns[j]; ++n) {
          double ref = 0;
          for (int64_t k = 0; k < K; ++k)
            ref += static_cast<double>(got[1][0][k]) * wf[j][n * K + k];
          ASSERT_NEAR(got[0][1 + j][n], ref, 1e-4 * (1 + std::fabs(ref))) << j << "," << n;
        }
      }
    }
    api_->device_close(dev);
  }
  api_->destroy_context(ctx);
}

// The SWIGLU after a norm-fused gate/up group and the q ROPE after a norm-fused q/k/v group run
// in the group's epilogue (plugin.cc FuseEpilogue, matmul.comp PairedGroup; on by default, the
// knobs set here anyway): every byte of the buffer (all outputs, including where the epilogue's
// output takes the norm output's memory or a part's output in place, as the engine's planner does)
// equals the nodes run one by one. Skew 1: the paired module; skew 0 (the coalesced GEMV): not
// fused, the same check of the unfused path. Bias-free bf16 and f32 weights; rows past a whole
// workgroup (N = 100), swapped gate/up order, partial K steps (K = 2080), attention scale.
TEST_F(VulkanPluginTest, EpiloguesFusedIntoDecodeGroupsMatchSeparateNodes) {
  tsr_plugin_ctx* ctx = nullptr;
  ASSERT_NO_FATAL_FAILURE(ContextWithDevices(&ctx));
  if (ctx == nullptr) GTEST_SKIP() << "no Vulkan device";
  struct EpiCase {
    bool rope;
    int64_t K;
    std::vector<int64_t> ns;  // rope: q (H * D), k, v
    int alias;     // glu: 1 its output over the norm output, 2 / 3 in place on part 0 / 1; rope: 1
                   // in place on q
    bool swapped;  // glu: the MATMULs in up, gate order
    tsr_dtype wdt = TSR_DTYPE_BF16;
  };
  constexpr int64_t D = 128;
  const EpiCase cases[] = {{false, 1024, {96, 96}, 0, false},
                           {false, 2080, {100, 100}, 0, true},
                           {false, 512, {1024, 1024}, 1, false},
                           {false, 896, {64, 64}, 2, true},
                           {false, 896, {64, 64}, 3, false},
                           {true, 1024, {4 * D, D, D}, 0, false},
                           {true, 512, {2 * D, D, D}, 1, false},
                           {false, 1024, {72, 72}, 0, true, TSR_DTYPE_F32},
                           {true, 512, {2 * D, D, D}, 0, false, TSR_DTYPE_F32}};
  // "1p": the paired modules on 3 persistent workgroups (TESSERA_VULKAN_PERSIST).
  for (const char* mode : {"0", "1", "1p"}) {
    SCOPED_TRACE(std::string("skew ") + mode);
    setenv("TESSERA_VULKAN_DECODE_SKEW", std::string(mode, 1).c_str(), 1);
    setenv("TESSERA_VULKAN_PERSIST", mode[1] == 'p' ? "3" : "0", 1);
    setenv("TESSERA_VULKAN_FUSE_SWIGLU", "1", 1);
    setenv("TESSERA_VULKAN_FUSE_ROPE_Q", "1", 1);
    tsr_error err{sizeof(tsr_error), TSR_OK, {}};
    tsr_device* dev = nullptr;
    const tsr_status opened = api_->device_open(ctx, 0, &dev, &err);
    unsetenv("TESSERA_VULKAN_DECODE_SKEW");
    unsetenv("TESSERA_VULKAN_PERSIST");
    unsetenv("TESSERA_VULKAN_FUSE_SWIGLU");
    unsetenv("TESSERA_VULKAN_FUSE_ROPE_Q");
    ASSERT_EQ(opened, TSR_OK) << err.message;
    std::mt19937 rng(23);
    for (const EpiCase& c : cases) {
      const int64_t K = c.K, N0 = c.ns[0];
      const int parts = static_cast<int>(c.ns.size());
      SCOPED_TRACE((c.rope ? "rope K " : "swiglu K ") + std::to_string(K) + ", N " +
                   std::to_string(N0) + ", alias " + std::to_string(c.alias) + ", wdt " +
                   std::to_string(c.wdt));
      auto align = [](uint64_t v) { return (v + 255) / 256 * 256; };
      std::uniform_real_distribution<float> u(-2.0f, 2.0f);
      std::vector<float> x(K), nw(K), inv(D / 2);
      for (float& v : x) v = u(rng);
      for (float& v : nw) v = u(rng);
      for (int64_t i = 0; i < D / 2; ++i) inv[i] = std::pow(500000.0f, -2.0f * i / D);
      const int32_t pos = 4321;
      // Buffer: x | norm weight | norm out | per part: w | out | epilogue out | pos | inv.
      const uint64_t onw = align(K * 4), ono = onw + align(K * 4);
      std::vector<std::vector<uint8_t>> w(parts);
      std::vector<std::vector<float>> wf(parts);
      std::vector<uint64_t> ow(parts), oo(parts);
      uint64_t total = ono + align(std::max(K, N0) * 4);
      for (int j = 0; j < parts; ++j) {
        w[j] = EncodeWeights(MatmulCase{c.wdt, K}, c.ns[j], &rng, &wf[j]);
        ow[j] = total, oo[j] = ow[j] + align(w[j].size());
        total = oo[j] + align(c.ns[j] * 4);
      }
      uint64_t oe = total;
      const uint64_t opos = oe + align(N0 * 4), oinv = opos + 256;
      total = oinv + align(D * 2);
      if (c.alias == 1) oe = c.rope ? oo[0] : ono;
      if (c.alias >= 2) oe = oo[c.alias - 2];
      std::vector<uint8_t> got[2];  // [fused, separate]: the whole buffer
      for (int separate = 0; separate < 2; ++separate) {
        tsr_buffer* buf = nullptr;
        ASSERT_EQ(api_->buffer_alloc(dev, 0, total, &buf, &err), TSR_OK) << err.message;
        const std::vector<uint8_t> zeros(total, 0);
        ASSERT_EQ(api_->buffer_upload(buf, 0, zeros.data(), total, nullptr, &err), TSR_OK);
        ASSERT_EQ(api_->buffer_upload(buf, 0, x.data(), K * 4, nullptr, &err), TSR_OK);
        ASSERT_EQ(api_->buffer_upload(buf, onw, nw.data(), K * 4, nullptr, &err), TSR_OK);
        ASSERT_EQ(api_->buffer_upload(buf, opos, &pos, 4, nullptr, &err), TSR_OK);
        ASSERT_EQ(api_->buffer_upload(buf, oinv, inv.data(), D * 2, nullptr, &err), TSR_OK);
        for (int j = 0; j < parts; ++j) {
          ASSERT_EQ(api_->buffer_upload(buf, ow[j], w[j].data(), w[j].size(), nullptr, &err),
                    TSR_OK);
        }
        // Tensors: x, norm weight, norm out, per part w, out; then the epilogue's (below).
        std::vector<tsr_tensor> t(3 + 2 * parts + 4);
        for (tsr_tensor& ti : t) {
          ti.struct_size = sizeof(tsr_tensor), ti.buffer = buf, ti.ndim = 2;
          ti.dtype = TSR_DTYPE_F32, ti.ne[0] = 1, ti.ne[1] = K, ti.nb[0] = K * 4, ti.nb[1] = 4;
        }
        t[1].ndim = 1, t[1].ne[0] = K, t[1].nb[0] = 4, t[1].offset = onw;
        t[2].offset = ono;
        std::vector<tsr_node> nodes(2 + parts);
        for (tsr_node& nd : nodes) nd.struct_size = sizeof(tsr_node);
        nodes[0].op = TSR_OP_RMS_NORM;
        nodes[0].n_inputs = 2;
        nodes[0].inputs[0] = 0, nodes[0].inputs[1] = 1, nodes[0].output = 2;
        nodes[0].fparams[0] = 1e-5f;
        for (int j = 0; j < parts; ++j) {
          tsr_tensor& tw = t[3 + 2 * j];
          tsr_tensor& to = t[4 + 2 * j];
          const int64_t es = c.wdt == TSR_DTYPE_F32 ? 4 : 2;
          tw.dtype = c.wdt, tw.ne[0] = c.ns[j], tw.ne[1] = K, tw.offset = ow[j];
          tw.nb[0] = K * es, tw.nb[1] = es;
          to.ne[1] = c.ns[j], to.nb[0] = c.ns[j] * 4, to.offset = oo[j];
          // swapped: node 1 computes part 1 (up), node 2 part 0 (gate).
          const int node = 1 + (c.swapped ? 1 - j : j);
          nodes[node].op = TSR_OP_MATMUL;
          nodes[node].n_inputs = 2;
          nodes[node].inputs[0] = 2, nodes[node].inputs[1] = 3 + 2 * j;
          nodes[node].output = 4 + 2 * j;
        }
        const int e = 3 + 2 * parts;  // first epilogue tensor
        tsr_node& epi = nodes[1 + parts];
        if (!c.rope) {
          t[e].ne[1] = N0, t[e].nb[0] = N0 * 4, t[e].offset = oe;
          epi.op = TSR_OP_SWIGLU, epi.n_inputs = 2;
          epi.inputs[0] = 4, epi.inputs[1] = 6, epi.output = e;  // silu(part 0) * part 1
        } else {
          auto heads = [&](tsr_tensor& ti, uint64_t off) {
            ti.ndim = 3, ti.offset = off, ti.ne[0] = 1, ti.ne[1] = N0 / D, ti.ne[2] = D;
            ti.nb[0] = N0 * 4, ti.nb[1] = D * 4, ti.nb[2] = 4;
          };
          heads(t[e], oo[0]);  // q's output viewed as heads, as the engine reshapes it
          heads(t[e + 1], oe);
          t[e + 2].ndim = 1, t[e + 2].dtype = TSR_DTYPE_I32, t[e + 2].ne[0] = 1;
          t[e + 2].nb[0] = 4, t[e + 2].offset = opos;
          t[e + 3].ndim = 1, t[e + 3].ne[0] = D / 2, t[e + 3].nb[0] = 4, t[e + 3].offset = oinv;
          epi.op = TSR_OP_ROPE, epi.n_inputs = 3;
          epi.inputs[0] = e, epi.inputs[1] = e + 2, epi.inputs[2] = e + 3, epi.output = e + 1;
          epi.iparams[0] = 0, epi.iparams[1] = D, epi.fparams[0] = 0.75f;
        }
        const tsr_graph_view view{sizeof(tsr_graph_view), static_cast<int32_t>(t.size()), t.data(),
                                  static_cast<int32_t>(nodes.size()), nodes.data()};
        std::vector<int32_t> ids(nodes.size());
        for (size_t j = 0; j < ids.size(); ++j) ids[j] = static_cast<int32_t>(j);
        if (separate) {
          for (int32_t& id : ids) {
            ASSERT_EQ(api_->execute(dev, &view, &id, 1, nullptr, &err), TSR_OK) << err.message;
          }
        } else {
          ASSERT_EQ(api_->execute(dev, &view, ids.data(), static_cast<int32_t>(ids.size()), nullptr,
                                  &err),
                    TSR_OK)
              << err.message;
        }
        got[separate].resize(total);
        ASSERT_EQ(api_->buffer_download(buf, 0, got[separate].data(), total, nullptr, &err), TSR_OK)
            << err.message;
        api_->buffer_free(buf);
      }
      for (uint64_t b = 0; b < total; b += 4) {
        ASSERT_EQ(std::memcmp(&got[0][b], &got[1][b], 4), 0) << "byte " << b;
      }
      // The epilogue wrote something (not the zeros it started from, nor q's unrotated rows).
      std::vector<float> eo(N0);
      std::memcpy(eo.data(), &got[0][oe], N0 * 4);
      EXPECT_TRUE(std::any_of(eo.begin(), eo.end(), [](float v) { return v != 0.0f; }));
    }
    api_->device_close(dev);
  }
  api_->destroy_context(ctx);
}

// Prefill attention (attention_tiled.comp: sequences with two or more query rows) against a
// double-precision reference, causal and not, GQA, a sliding window, several sequences and
// lengths that are not multiples of the 32-row / 32-key tiles. Then batch invariance: the rows of
// a sequence have the same bits whether it runs alone, next to other sequences, or as a later
// prefill chunk (other query tiles), since each row's order depends only on its own keys.
struct AttnRun {
  std::vector<int32_t> q_lens, k_lens;  // per sequence
  std::vector<int64_t> q_seq, k_seq;    // which sequence of the pool each one takes
  std::vector<int64_t> q_skip;          // its first query row (a later chunk)
};

constexpr int64_t kHq = 4, kHkv = 2, kD = 64;

// out[T, Hq, D] of one ATTENTION node over rows of the pools q[.., Hq, D], k/v[.., Hkv, D].
std::vector<float> RunAttention(const tsr_plugin_api* api, tsr_device* dev, const AttnRun& r,
                                const std::vector<std::vector<float>>& q,
                                const std::vector<std::vector<float>>& kv, int causal, int window) {
  std::vector<float> qs, ks, vs;
  std::vector<int32_t> cu_q{0}, cu_k{0};
  for (size_t i = 0; i < r.q_lens.size(); ++i) {
    const auto& qp = q[r.q_seq[i]];
    qs.insert(qs.end(), qp.begin() + r.q_skip[i] * kHq * kD,
              qp.begin() + (r.q_skip[i] + r.q_lens[i]) * kHq * kD);
    const auto& kp = kv[r.k_seq[i]];
    const int64_t n = r.k_lens[i] * kHkv * kD;
    ks.insert(ks.end(), kp.begin(), kp.begin() + n);
    vs.insert(vs.end(), kp.begin() + kp.size() / 2, kp.begin() + kp.size() / 2 + n);
    cu_q.push_back(cu_q.back() + r.q_lens[i]);
    cu_k.push_back(cu_k.back() + r.k_lens[i]);
  }
  const int64_t T = cu_q.back(), K = cu_k.back(), S = static_cast<int64_t>(r.q_lens.size());
  const uint64_t sizes[6] = {qs.size() * 4,   ks.size() * 4,   vs.size() * 4,
                             cu_q.size() * 4, cu_k.size() * 4, qs.size() * 4};
  uint64_t off[6], total = 0;
  for (int i = 0; i < 6; ++i) off[i] = total, total += (sizes[i] + 255) / 256 * 256;
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  tsr_buffer* buf = nullptr;
  EXPECT_EQ(api->buffer_alloc(dev, 0, total, &buf, &err), TSR_OK) << err.message;
  if (buf == nullptr) return {};
  const void* src[5] = {qs.data(), ks.data(), vs.data(), cu_q.data(), cu_k.data()};
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(api->buffer_upload(buf, off[i], src[i], sizes[i], nullptr, &err), TSR_OK);
  tsr_tensor t[6] = {};
  const int64_t rows[6] = {T, K, K, S + 1, S + 1, T}, heads[6] = {kHq, kHkv, kHkv, 0, 0, kHq};
  for (int i = 0; i < 6; ++i) {
    t[i].struct_size = sizeof(tsr_tensor), t[i].buffer = buf, t[i].offset = off[i];
    t[i].dtype = i == 3 || i == 4 ? TSR_DTYPE_I32 : TSR_DTYPE_F32;
    t[i].ne[0] = rows[i];
    if (heads[i] == 0) {
      t[i].ndim = 1, t[i].nb[0] = 4;
    } else {
      t[i].ndim = 3, t[i].ne[1] = heads[i], t[i].ne[2] = kD;
      t[i].nb[0] = heads[i] * kD * 4, t[i].nb[1] = kD * 4, t[i].nb[2] = 4;
    }
  }
  tsr_node node{};
  node.struct_size = sizeof(node);
  node.op = TSR_OP_ATTENTION;
  node.n_inputs = 5;
  for (int i = 0; i < 5; ++i) node.inputs[i] = i;
  node.output = 5;
  node.iparams[0] = causal, node.iparams[1] = window;
  node.fparams[0] = 0.125f;
  const tsr_graph_view view{sizeof(tsr_graph_view), 6, t, 1, &node};
  const int32_t id = 0;
  EXPECT_EQ(api->execute(dev, &view, &id, 1, nullptr, &err), TSR_OK) << err.message;
  std::vector<float> out(qs.size());
  EXPECT_EQ(api->buffer_download(buf, off[5], out.data(), sizes[5], nullptr, &err), TSR_OK)
      << err.message;
  api->buffer_free(buf);
  return out;
}

TEST_F(VulkanPluginTest, PrefillAttentionMatchesReferenceAndIsBatchInvariant) {
  tsr_plugin_ctx* ctx = nullptr;
  tsr_device* dev = nullptr;
  ASSERT_NO_FATAL_FAILURE(OpenFirstDevice(&ctx, &dev));
  if (dev == nullptr) GTEST_SKIP() << "no Vulkan device";
  // Pools: sequence i has lens[i] query rows and keys (q, then k and v back to back).
  const std::vector<int64_t> lens = {70, 33, 5, 100};
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<std::vector<float>> q, kv;
  for (int64_t n : lens) {
    q.emplace_back(n * kHq * kD);
    kv.emplace_back(2 * n * kHkv * kD);
    for (float& x : q.back()) x = u(rng) * 2.0f;
    for (float& x : kv.back()) x = u(rng);
  }
  for (const auto& [causal, window] : {std::pair{1, 0}, std::pair{0, 0}, std::pair{1, 40}}) {
    SCOPED_TRACE("causal " + std::to_string(causal) + " window " + std::to_string(window));
    // Batched: four sequences (one of them a decode row), then each alone, then later chunks.
    const AttnRun batch{
        {70, 33, 1, 100}, {70, 33, 5, 100}, {0, 1, 2, 3}, {0, 1, 2, 3}, {0, 0, 4, 0}};
    const std::vector<float> all = RunAttention(api_, dev, batch, q, kv, causal, window);
    ASSERT_EQ(all.size(), static_cast<size_t>(204 * kHq * kD));
    int64_t row0 = 0;
    for (size_t s = 0; s < batch.q_lens.size(); ++s) {
      const int64_t ql = batch.q_lens[s], kl = batch.k_lens[s], skip = batch.q_skip[s];
      for (int64_t i = 0; i < ql; ++i) {
        const int64_t pos = kl - ql + i;
        for (int64_t h = 0; h < kHq; ++h) {
          const float* qr = &q[batch.q_seq[s]][((skip + i) * kHq + h) * kD];
          const std::vector<float>& p = kv[batch.k_seq[s]];
          std::vector<double> sc, acc(kD, 0.0);
          double mx = -1e300, sum = 0;
          for (int64_t j = 0; j < kl; ++j) {
            const bool vis = (!causal || j <= pos) && (window == 0 || pos - j < window);
            double x = -1e300;
            if (vis) {
              x = 0;
              for (int64_t d = 0; d < kD; ++d) x += double(qr[d]) * p[(j * kHkv + h / 2) * kD + d];
              x *= 0.125;
            }
            sc.push_back(x);
            mx = std::max(mx, x);
          }
          for (int64_t j = 0; j < kl; ++j) {
            if (sc[j] <= -1e300) continue;
            const double w = std::exp(sc[j] - mx);
            sum += w;
            for (int64_t d = 0; d < kD; ++d)
              acc[d] += w * p[p.size() / 2 + (j * kHkv + h / 2) * kD + d];
          }
          for (int64_t d = 0; d < kD; ++d) {
            const double ref = sum > 0 ? acc[d] / sum : 0.0;
            ASSERT_NEAR(all[((row0 + i) * kHq + h) * kD + d], ref, 2e-5)
                << "seq " << s << " row " << i << " head " << h << " dim " << d;
          }
        }
      }
      row0 += ql;
    }
    // Sequence 0 (70 rows) alone, and its last 45 rows as a chunk after 25 cached keys, next to
    // sequence 3: the same rows, other query tiles and batch, the same bits.
    const std::vector<float> alone =
        RunAttention(api_, dev, {{70}, {70}, {0}, {0}, {0}}, q, kv, causal, window);
    EXPECT_EQ(std::memcmp(alone.data(), all.data(), alone.size() * 4), 0);
    const std::vector<float> chunk = RunAttention(
        api_, dev, {{100, 45}, {100, 70}, {3, 0}, {3, 0}, {0, 25}}, q, kv, causal, window);
    ASSERT_EQ(chunk.size(), static_cast<size_t>(145 * kHq * kD));
    EXPECT_EQ(std::memcmp(chunk.data(), all.data() + 104 * kHq * kD, 100 * kHq * kD * 4), 0);
    EXPECT_EQ(
        std::memcmp(chunk.data() + 100 * kHq * kD, all.data() + 25 * kHq * kD, 45 * kHq * kD * 4),
        0);
  }
  api_->device_close(dev);
  api_->destroy_context(ctx);
}

// attention.comp's rows split over workgroups (attention_split: TESSERA_VULKAN_ATTN_PARTS
// workgroups a (query, head), the last to finish merging the subgroups' states in subgroup
// order) keep every row's bits: decode rows of 1..300 keys beside a prefill sequence, batched and
// alone, causal, full and windowed, 16 subgroups a row split 2, 4 and 16 ways. vk19b. The f32
// D = 64 rows run the fixed-shape modules (FIXD) unless TESSERA_VULKAN_ATTN_FAST=0: they keep
// the generic module's bits too (vk20-attn; paged rows: vulkan_attn_lab).
TEST_F(VulkanPluginTest, AttentionSplitOverWorkgroupsKeepsTheBits) {
  const std::vector<int32_t> lens = {1, 2, 15, 16, 17, 33, 300, 129, 64};
  std::mt19937 rng(19);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<std::vector<float>> q, kv;
  for (int32_t n : lens) {
    q.emplace_back(5 * kHq * kD);
    kv.emplace_back(2 * n * kHkv * kD);
    for (float& x : q.back()) x = u(rng) * 2.0f;
    for (float& x : kv.back()) x = u(rng);
  }
  // Sequence 7 (129 keys) is a 5-row prefill chunk; the others one decode row each.
  AttnRun batch;
  for (size_t i = 0; i < lens.size(); ++i) {
    batch.q_lens.push_back(i == 7 ? 5 : 1);
    batch.k_lens.push_back(lens[i]);
    batch.q_seq.push_back(static_cast<int64_t>(i));
    batch.k_seq.push_back(static_cast<int64_t>(i));
    batch.q_skip.push_back(0);
  }
  const AttnRun alone{{1}, {300}, {6}, {6}, {0}};
  setenv("TESSERA_VULKAN_ATTN_SUBGROUPS", "16", 1);  // read when the context lists devices
  tsr_plugin_ctx* ctx = Context();
  unsetenv("TESSERA_VULKAN_ATTN_SUBGROUPS");
  ASSERT_NE(ctx, nullptr);
  int32_t count = 0;
  ASSERT_EQ(api_->device_count(ctx, &count, nullptr), TSR_OK);
  if (count == 0) {
    api_->destroy_context(ctx);
    GTEST_SKIP() << "no Vulkan device";
  }
  std::vector<std::vector<float>> outs;
  // Parts, and TESSERA_VULKAN_ATTN_FAST: the generic module first ("0"), then the f32 D = 64
  // fixed-shape modules (vk20-attn, the default).
  for (const auto& [parts, fast] : {std::pair{"1", "0"}, std::pair{"1", ""}, std::pair{"2", ""},
                                    std::pair{"4", ""}, std::pair{"16", ""}, std::pair{"4", "0"}}) {
    SCOPED_TRACE(std::string("parts ") + parts + " fast " + fast);
    setenv("TESSERA_VULKAN_ATTN_PARTS", parts, 1);  // read when a device opens
    setenv("TESSERA_VULKAN_ATTN_SPLIT_GROUPS", "100000", 1);
    if (*fast != '\0') setenv("TESSERA_VULKAN_ATTN_FAST", fast, 1);
    tsr_error err{sizeof(tsr_error), TSR_OK, {}};
    tsr_device* dev = nullptr;
    const tsr_status opened = api_->device_open(ctx, 0, &dev, &err);
    unsetenv("TESSERA_VULKAN_ATTN_PARTS");
    unsetenv("TESSERA_VULKAN_ATTN_SPLIT_GROUPS");
    unsetenv("TESSERA_VULKAN_ATTN_FAST");
    ASSERT_EQ(opened, TSR_OK) << err.message;
    std::vector<float> all;
    for (const auto& [causal, window] : {std::pair{1, 0}, std::pair{0, 0}, std::pair{1, 40}}) {
      for (const AttnRun* r : {static_cast<const AttnRun*>(&batch), &alone}) {
        const std::vector<float> o = RunAttention(api_, dev, *r, q, kv, causal, window);
        all.insert(all.end(), o.begin(), o.end());
      }
    }
    api_->device_close(dev);
    outs.push_back(all);
  }
  api_->destroy_context(ctx);
  ASSERT_EQ(outs[0].size(), static_cast<size_t>(3 * (13 + 1) * kHq * kD));
  for (size_t v = 1; v < outs.size(); ++v) {
    ASSERT_EQ(outs[v].size(), outs[0].size());
    size_t diff = 0;
    for (size_t i = 0; i < outs[0].size(); ++i)
      diff += std::memcmp(&outs[0][i], &outs[v][i], 4) != 0;
    EXPECT_EQ(diff, 0u) << "variant " << v;
  }
  // The 300-key row alone has the batch's bits (each pass: the batch's rows, then it).
  for (int pass = 0; pass < 3; ++pass) {
    const size_t base = static_cast<size_t>(pass * 14 * kHq * kD);
    EXPECT_EQ(std::memcmp(outs[0].data() + base + 13 * kHq * kD,
                          outs[0].data() + base + 6 * kHq * kD, kHq * kD * 4),
              0)
        << "pass " << pass;
  }
}

// A decode step's k RoPE + KV writes as the RopeKv tests build them, over one buffer at
// off[0..7] = x | pos | inv | out | k cache | slots | v rows | v cache: tensors t[0..7] in that
// order, nodes ROPE (x -> out), KV_WRITE k (out into the k cache, in place) and KV_WRITE v (v
// rows into the v cache), the caches NB blocks of BS slots of [H, D] in kdt / vdt.
struct RopeKvGraph {
  tsr_tensor t[8] = {};
  tsr_node nodes[3] = {};
};

void MakeRopeKvGraph(tsr_buffer* buf, const uint64_t off[8], int64_t T, int64_t H, int64_t D,
                     int64_t NB, int64_t BS, int64_t R, int interleaved, tsr_dtype kdt,
                     tsr_dtype vdt, RopeKvGraph* g) {
  tsr_tensor* t = g->t;
  for (int i = 0; i < 8; ++i) t[i].struct_size = sizeof(tsr_tensor), t[i].buffer = buf;
  auto esz = [](tsr_dtype d) { return d == TSR_DTYPE_F32 ? 4 : 2; };
  auto rows3 = [&](tsr_tensor& ti, uint64_t o) {
    ti.dtype = TSR_DTYPE_F32, ti.ndim = 3, ti.offset = o;
    ti.ne[0] = T, ti.ne[1] = H, ti.ne[2] = D;
    ti.nb[0] = H * D * 4, ti.nb[1] = D * 4, ti.nb[2] = 4;
  };
  auto cache = [&](tsr_tensor& ti, uint64_t o, tsr_dtype dt) {
    ti.dtype = dt, ti.ndim = 4, ti.offset = o;
    ti.ne[0] = NB, ti.ne[1] = BS, ti.ne[2] = H, ti.ne[3] = D;
    ti.nb[3] = esz(dt), ti.nb[2] = D * esz(dt), ti.nb[1] = H * D * esz(dt);
    ti.nb[0] = BS * H * D * esz(dt);
  };
  auto vec1 = [&](tsr_tensor& ti, uint64_t o, tsr_dtype dt, int64_t len) {
    ti.dtype = dt, ti.ndim = 1, ti.offset = o, ti.ne[0] = len, ti.nb[0] = 4;
  };
  rows3(t[0], off[0]);
  vec1(t[1], off[1], TSR_DTYPE_I32, T);
  vec1(t[2], off[2], TSR_DTYPE_F32, R / 2);
  rows3(t[3], off[3]);
  cache(t[4], off[4], kdt);
  vec1(t[5], off[5], TSR_DTYPE_I32, T);
  rows3(t[6], off[6]);
  cache(t[7], off[7], vdt);
  tsr_node* nodes = g->nodes;
  for (int i = 0; i < 3; ++i) nodes[i].struct_size = sizeof(tsr_node);
  nodes[0].op = TSR_OP_ROPE, nodes[0].n_inputs = 3;
  nodes[0].inputs[0] = 0, nodes[0].inputs[1] = 1, nodes[0].inputs[2] = 2, nodes[0].output = 3;
  nodes[0].iparams[0] = interleaved, nodes[0].iparams[1] = R, nodes[0].fparams[0] = 0.75f;
  nodes[1].op = TSR_OP_KV_WRITE, nodes[1].n_inputs = 3;
  nodes[1].inputs[0] = 4, nodes[1].inputs[1] = 3, nodes[1].inputs[2] = 5, nodes[1].output = 4;
  nodes[2].op = TSR_OP_KV_WRITE, nodes[2].n_inputs = 3;
  nodes[2].inputs[0] = 7, nodes[2].inputs[1] = 6, nodes[2].inputs[2] = 5, nodes[2].output = 7;
}

// A ROPE, the in-place KV_WRITE of its output (k cache) and the v cache's KV_WRITE run as one
// dispatch when executed together (plugin.cc ExecuteRopeKv): the RoPE's output and both caches
// must have the bits of the three nodes run one execute call each, with a skipped slot (-1),
// partial and full rotation, neox and interleaved pairs, and bf16/f16/f32 caches.
TEST_F(VulkanPluginTest, RopeKvWriteFusedMatchesSeparateNodes) {
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  tsr_plugin_ctx* ctx = nullptr;
  tsr_device* dev = nullptr;
  ASSERT_NO_FATAL_FAILURE(OpenFirstDevice(&ctx, &dev));
  if (dev == nullptr) GTEST_SKIP() << "no Vulkan device";
  constexpr int64_t T = 3, H = 2, D = 64, NB = 2, BS = 4;
  struct Case {
    int interleaved;
    int64_t R;
    tsr_dtype kdt, vdt;
  };
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (const Case& c :
       {Case{0, 48, TSR_DTYPE_BF16, TSR_DTYPE_F16}, Case{1, 64, TSR_DTYPE_F32, TSR_DTYPE_BF16}}) {
    SCOPED_TRACE("interleaved " + std::to_string(c.interleaved) + ", R " + std::to_string(c.R));
    std::vector<float> x(T * H * D), v(T * H * D), inv(c.R / 2);
    for (float& f : x) f = u(rng);
    for (float& f : v) f = u(rng);
    for (size_t i = 0; i < inv.size(); ++i) inv[i] = std::pow(10000.0f, -2.0f * i / c.R);
    const int32_t pos[T] = {7, 300, 12345}, slots[T] = {5, -1, 2};
    auto esz = [](tsr_dtype d) { return d == TSR_DTYPE_F32 ? 4 : 2; };
    const uint64_t kc_bytes = NB * BS * H * D * esz(c.kdt), vc_bytes = NB * BS * H * D * esz(c.vdt);
    std::vector<uint8_t> kc0(kc_bytes), vc0(vc_bytes);
    for (uint8_t& b : kc0) b = static_cast<uint8_t>(rng() & 0x3f);  // finite old contents
    for (uint8_t& b : vc0) b = static_cast<uint8_t>(rng() & 0x3f);
    // Buffer: x | pos | inv | out | k cache | slots | v rows | v cache, 4 KiB apart or more.
    const uint64_t ox = 0, op = 4096, oi = 8192, oo = 12288, ok = 16384, os = ok + 8192,
                   ov = os + 4096, ocv = ov + 4096, total = ocv + 8192;
    std::vector<uint8_t> got[2][3];  // [fused, separate][out, k cache, v cache]
    for (int separate = 0; separate < 2; ++separate) {
      tsr_buffer* buf = nullptr;
      ASSERT_EQ(api_->buffer_alloc(dev, 0, total, &buf, &err), TSR_OK) << err.message;
      ASSERT_EQ(api_->buffer_upload(buf, ox, x.data(), x.size() * 4, nullptr, &err), TSR_OK);
      ASSERT_EQ(api_->buffer_upload(buf, op, pos, sizeof(pos), nullptr, &err), TSR_OK);
      ASSERT_EQ(api_->buffer_upload(buf, oi, inv.data(), inv.size() * 4, nullptr, &err), TSR_OK);
      ASSERT_EQ(api_->buffer_upload(buf, ok, kc0.data(), kc_bytes, nullptr, &err), TSR_OK);
      ASSERT_EQ(api_->buffer_upload(buf, os, slots, sizeof(slots), nullptr, &err), TSR_OK);
      ASSERT_EQ(api_->buffer_upload(buf, ov, v.data(), v.size() * 4, nullptr, &err), TSR_OK);
      ASSERT_EQ(api_->buffer_upload(buf, ocv, vc0.data(), vc_bytes, nullptr, &err), TSR_OK);
      const uint64_t off[8] = {ox, op, oi, oo, ok, os, ov, ocv};
      RopeKvGraph g;
      MakeRopeKvGraph(buf, off, T, H, D, NB, BS, c.R, c.interleaved, c.kdt, c.vdt, &g);
      const tsr_graph_view view{sizeof(tsr_graph_view), 8, g.t, 3, g.nodes};
      const int32_t ids[3] = {0, 1, 2};
      if (separate) {
        for (int j = 0; j < 3; ++j)
          ASSERT_EQ(api_->execute(dev, &view, &ids[j], 1, nullptr, &err), TSR_OK) << err.message;
      } else {
        ASSERT_EQ(api_->execute(dev, &view, ids, 3, nullptr, &err), TSR_OK) << err.message;
      }
      const uint64_t offs[3] = {oo, ok, ocv}, sizes[3] = {T * H * D * 4, kc_bytes, vc_bytes};
      for (int o = 0; o < 3; ++o) {
        got[separate][o].resize(sizes[o]);
        ASSERT_EQ(
            api_->buffer_download(buf, offs[o], got[separate][o].data(), sizes[o], nullptr, &err),
            TSR_OK)
            << err.message;
      }
      api_->buffer_free(buf);
    }
    for (int o = 0; o < 3; ++o) EXPECT_EQ(got[0][o], got[1][o]) << "output " << o;
    // The caches changed where the slots point (5 and 2), and the RoPE rotated something.
    EXPECT_NE(got[0][1], kc0);
    EXPECT_NE(got[0][2], vc0);
    EXPECT_NE(std::memcmp(got[0][0].data(), x.data(), x.size() * 4), 0);
  }
  api_->device_close(dev);
  api_->destroy_context(ctx);
}

// A decode step's k ROPE, its KV_WRITE, the v KV_WRITE and the PAGED_ATTENTION reading both
// caches run as one attention dispatch when executed together (plugin.cc ExecuteRopeKvAttention,
// attention.comp's KVNEW modules; vk27-kv): the attention output, both caches and the RoPE's
// output must have the bits of the four nodes run one execute call each and of the same call
// with TESSERA_VULKAN_FUSE_KV_ATTN=0 (the RoPE + KV dispatch, then the attention), for D = 64
// and 128, GQA, a sliding window, the attention split over workgroups, the new token mid-block,
// and a block table that does not list the new token's block (reported by every mode, the
// caches still written); where timestamps exist the profile must show the fused module and no
// rope.comp dispatch.
TEST_F(VulkanPluginTest, RopeKvAttentionFusedMatchesSeparateNodes) {
  std::string log;
  ASSERT_NO_FATAL_FAILURE(CaptureLogInto(&log));
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  // One context, a device a variant (NVIDIA's driver stops listing the GPU after ~40 instances
  // in one process; the knobs are read when a device opens).
  tsr_plugin_ctx* ctx = Context();
  ASSERT_NE(ctx, nullptr);
  int32_t count = 0;
  ASSERT_EQ(api_->device_count(ctx, &count, nullptr), TSR_OK);
  if (count == 0) {
    g_l2_log = nullptr;
    api_->destroy_context(ctx);
    GTEST_SKIP() << "no Vulkan device";
  }
  constexpr int64_t H = 2, Hq = 6, NB = 4, BS = 4, MB = 4, kLen = 11;
  struct Case {
    int64_t D, window;
    const char* parts;
    bool bad_table;  // the block of keys 8..11 (the new token's) unlisted: reported, skipped
  };
  std::mt19937 rng(31);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (const Case& c :
       {Case{64, 0, "1", false}, Case{128, 5, "1", false}, Case{64, 3, "2", false},
        Case{128, 0, "2", false}, Case{64, 0, "1", true}, Case{128, 0, "2", true}}) {
    SCOPED_TRACE("D " + std::to_string(c.D) + ", window " + std::to_string(c.window) + ", parts " +
                 c.parts + (c.bad_table ? ", bad table" : ""));
    const int64_t D = c.D;
    std::vector<float> x(H * D), v(H * D), inv(D / 2), q(Hq * D), kc(NB * BS * H * D),
        vc(NB * BS * H * D);
    for (float& f : x) f = u(rng) * 2.0f;
    for (float& f : v) f = u(rng);
    for (float& f : q) f = u(rng) * 2.0f;
    for (float& f : kc) f = u(rng);
    for (float& f : vc) f = u(rng);
    for (size_t i = 0; i < inv.size(); ++i) inv[i] = std::pow(10000.0f, -2.0f * i / D);
    // The new token: position 10 = block 2 of the table (block 3 of the cache), slot 3 * 4 + 2.
    const int32_t pos[1] = {kLen - 1}, slots[1] = {14};
    const int32_t table[MB] = {2, 0, c.bad_table ? -1 : 3, 1};
    const int32_t kv_lens[1] = {kLen}, cu_q[2] = {0, 1};
    const uint64_t cache_bytes = NB * BS * H * D * 4;
    // x | pos | inv | rope out | k cache | slots | v rows | v cache | q | table | kv_lens | cu_q
    // | attention out.
    const uint64_t off[13] = {0,     4096,  8192,  12288, 16384,  49152, 53248,
                              57344, 90112, 94208, 98304, 102400, 106496};
    std::vector<uint8_t> got[3][4];  // [fused, separate, knob off][rope out, k, v, attention]
    for (int mode = 0; mode < 3; ++mode) {
      SCOPED_TRACE("mode " + std::to_string(mode));
      setenv("TESSERA_VULKAN_ATTN_PARTS", c.parts, 1);
      setenv("TESSERA_VULKAN_ATTN_SPLIT_GROUPS", "100000", 1);
      setenv("TESSERA_VULKAN_PROFILE", "1", 1);
      if (mode == 2) setenv("TESSERA_VULKAN_FUSE_KV_ATTN", "0", 1);
      tsr_device* dev = nullptr;
      const tsr_status opened = api_->device_open(ctx, 0, &dev, &err);
      unsetenv("TESSERA_VULKAN_ATTN_PARTS");
      unsetenv("TESSERA_VULKAN_ATTN_SPLIT_GROUPS");
      unsetenv("TESSERA_VULKAN_PROFILE");
      unsetenv("TESSERA_VULKAN_FUSE_KV_ATTN");
      ASSERT_EQ(opened, TSR_OK) << err.message;
      tsr_buffer* buf = nullptr;
      ASSERT_EQ(api_->buffer_alloc(dev, 0, off[12] + Hq * D * 4, &buf, &err), TSR_OK)
          << err.message;
      const std::pair<uint64_t, std::pair<const void*, size_t>> ups[] = {
          {off[0], {x.data(), x.size() * 4}},
          {off[1], {pos, 4}},
          {off[2], {inv.data(), inv.size() * 4}},
          {off[4], {kc.data(), cache_bytes}},
          {off[5], {slots, 4}},
          {off[6], {v.data(), v.size() * 4}},
          {off[7], {vc.data(), cache_bytes}},
          {off[8], {q.data(), q.size() * 4}},
          {off[9], {table, sizeof(table)}},
          {off[10], {kv_lens, 4}},
          {off[11], {cu_q, 8}}};
      for (const auto& [o, d] : ups)
        ASSERT_EQ(api_->buffer_upload(buf, o, d.first, d.second, nullptr, &err), TSR_OK);
      RopeKvGraph rk;
      MakeRopeKvGraph(buf, off, 1, H, D, NB, BS, D, 0, TSR_DTYPE_F32, TSR_DTYPE_F32, &rk);
      tsr_tensor t[13] = {};
      for (int i = 0; i < 8; ++i) t[i] = rk.t[i];
      for (int i = 8; i < 13; ++i) {
        t[i].struct_size = sizeof(tsr_tensor), t[i].buffer = buf, t[i].offset = off[i];
        t[i].dtype = TSR_DTYPE_I32, t[i].ndim = 1, t[i].nb[0] = 4;
      }
      for (int i : {8, 12}) {
        t[i].dtype = TSR_DTYPE_F32, t[i].ndim = 3, t[i].ne[0] = 1, t[i].ne[1] = Hq;
        t[i].ne[2] = D, t[i].nb[0] = Hq * D * 4, t[i].nb[1] = D * 4, t[i].nb[2] = 4;
      }
      t[9].ndim = 2, t[9].ne[0] = 1, t[9].ne[1] = MB, t[9].nb[0] = MB * 4, t[9].nb[1] = 4;
      t[10].ne[0] = 1;
      t[11].ne[0] = 2;
      tsr_node nodes[4] = {rk.nodes[0], rk.nodes[1], rk.nodes[2], tsr_node{}};
      tsr_node& at = nodes[3];
      at.struct_size = sizeof(tsr_node), at.op = TSR_OP_PAGED_ATTENTION, at.n_inputs = 6;
      const int32_t ins[6] = {8, 4, 7, 9, 10, 11};
      for (int i = 0; i < 6; ++i) at.inputs[i] = ins[i];
      at.output = 12;
      at.iparams[0] = 1, at.iparams[1] = c.window;
      at.fparams[0] = 1.0f / std::sqrt(static_cast<float>(D));
      nodes[0].fparams[0] = 1.0f;  // the RoPE's attention scale
      const tsr_graph_view view{sizeof(tsr_graph_view), 13, t, 4, nodes};
      const int32_t ids[4] = {0, 1, 2, 3};
      if (mode == 1) {
        for (int j = 0; j < 4; ++j)
          ASSERT_EQ(api_->execute(dev, &view, &ids[j], 1, nullptr, &err), TSR_OK) << err.message;
      } else {
        ASSERT_EQ(api_->execute(dev, &view, ids, 4, nullptr, &err), TSR_OK) << err.message;
      }
      if (c.bad_table) {  // every mode reports the unlisted block (the first download)
        float probe = 0;
        EXPECT_EQ(api_->buffer_download(buf, off[12], &probe, 4, nullptr, &err),
                  TSR_ERR_INVALID_ARGUMENT);
        EXPECT_NE(std::string(err.message).find("block"), std::string::npos) << err.message;
      }
      const uint64_t offs[4] = {off[3], off[4], off[7], off[12]};
      const uint64_t sizes[4] = {static_cast<uint64_t>(H * D * 4), cache_bytes, cache_bytes,
                                 static_cast<uint64_t>(Hq * D * 4)};
      for (int o = 0; o < 4; ++o) {
        got[mode][o].resize(sizes[o]);
        ASSERT_EQ(api_->buffer_download(buf, offs[o], got[mode][o].data(), sizes[o], nullptr, &err),
                  TSR_OK)
            << err.message;
      }
      api_->buffer_free(buf);
      log.clear();
      api_->device_close(dev);  // logs the profile
      if (log.find("backend profile") != std::string::npos) {
        EXPECT_EQ(log.find("kvnew") != std::string::npos, mode == 0) << log;
        EXPECT_EQ(log.find("rope.comp") != std::string::npos, mode != 0) << log;
      }
    }
    for (int mode = 1; mode < 3; ++mode) {
      for (int o = 0; o < 4; ++o)
        EXPECT_EQ(got[0][o], got[mode][o]) << "mode " << mode << " output " << o;
    }
    // The new slot was written (k rotated, v as given) and the attention saw something.
    EXPECT_NE(std::memcmp(got[0][1].data(), kc.data(), cache_bytes), 0);
    EXPECT_EQ(std::memcmp(got[0][2].data() + (14 * H * D) * 4, v.data(), H * D * 4), 0);
  }
  g_l2_log = nullptr;
  api_->destroy_context(ctx);
}

// The RoPE + KV_WRITE dispatch's KVF32 module (rope.comp, f32 caches, 32-bit index math;
// vk20-rope) must store the generic module's bits (TESSERA_VULKAN_ROPE_FAST=0) and those of the
// three nodes run one execute call each: odd head counts and widths (partial groups), partial and
// full rotation, neox and interleaved pairs, a skipped slot (-1), slots in several blocks, with
// and without the v write; bf16 / f16 caches keep the generic module (the same check).
TEST_F(VulkanPluginTest, RopeKvF32ModuleMatchesGeneric) {
  tsr_plugin_ctx* ctx = nullptr;
  ASSERT_NO_FATAL_FAILURE(ContextWithDevices(&ctx));
  if (ctx == nullptr) GTEST_SKIP() << "no Vulkan device";
  struct Case {
    int64_t T, H, D, R;
    int interleaved;
    tsr_dtype kdt, vdt;
    bool with_v;
  };
  constexpr int64_t NB = 3, BS = 4;
  const Case cases[] = {{5, 3, 80, 48, 1, TSR_DTYPE_F32, TSR_DTYPE_F32, true},
                        {5, 3, 80, 80, 0, TSR_DTYPE_F32, TSR_DTYPE_F32, true},
                        {1, 8, 128, 128, 0, TSR_DTYPE_F32, TSR_DTYPE_F32, true},
                        {3, 5, 64, 32, 0, TSR_DTYPE_F32, TSR_DTYPE_F32, false},
                        {2, 7, 96, 64, 1, TSR_DTYPE_F32, TSR_DTYPE_F32, true},
                        {5, 3, 80, 48, 0, TSR_DTYPE_BF16, TSR_DTYPE_F32, true},
                        {4, 2, 64, 64, 1, TSR_DTYPE_F32, TSR_DTYPE_F16, true}};
  auto esz = [](tsr_dtype d) { return d == TSR_DTYPE_F32 ? 4 : 2; };
  // [case][mode: fast fused, generic fused, separate][out, k cache, v cache]
  std::vector<std::vector<uint8_t>> got[std::size(cases)][3];
  for (int mode = 0; mode < 3; ++mode) {
    setenv("TESSERA_VULKAN_ROPE_FAST", mode == 0 ? "1" : "0", 1);  // read when a device opens
    tsr_error err{sizeof(tsr_error), TSR_OK, {}};
    tsr_device* dev = nullptr;
    const tsr_status opened = api_->device_open(ctx, 0, &dev, &err);
    unsetenv("TESSERA_VULKAN_ROPE_FAST");
    ASSERT_EQ(opened, TSR_OK) << err.message;
    for (size_t ci = 0; ci < std::size(cases); ++ci) {
      const Case& c = cases[ci];
      SCOPED_TRACE("mode " + std::to_string(mode) + ", case " + std::to_string(ci));
      const int64_t T = c.T, H = c.H, D = c.D, n = T * H * D;
      std::mt19937 rng(static_cast<uint32_t>(29 + ci));
      std::uniform_real_distribution<float> u(-2.0f, 2.0f);
      std::vector<float> x(n), v(n), inv(c.R / 2);
      for (float& f : x) f = u(rng);
      for (float& f : v) f = u(rng);
      for (size_t i = 0; i < inv.size(); ++i) inv[i] = std::pow(10000.0f, -2.0f * i / c.R);
      const int32_t pos_all[5] = {7, 300, 12345, 1, 77}, slots_all[5] = {5, -1, 2, 11, 8};
      std::vector<int32_t> pos(pos_all, pos_all + T), slots(slots_all, slots_all + T);
      const uint64_t kc_bytes = NB * BS * H * D * esz(c.kdt),
                     vc_bytes = NB * BS * H * D * esz(c.vdt);
      std::vector<uint8_t> kc0(kc_bytes), vc0(vc_bytes);
      for (uint8_t& b : kc0) b = static_cast<uint8_t>(rng() & 0x3f);  // finite old contents
      for (uint8_t& b : vc0) b = static_cast<uint8_t>(rng() & 0x3f);
      // Buffer: x | pos | inv | out | k cache | slots | v rows | v cache, 64 KiB apart.
      constexpr uint64_t kS = 65536;
      const uint64_t ox = 0, op = kS, oi = 2 * kS, oo = 3 * kS, ok = 4 * kS, os = 6 * kS,
                     ov = 7 * kS, ocv = 8 * kS, total = 10 * kS;
      tsr_buffer* buf = nullptr;
      ASSERT_EQ(api_->buffer_alloc(dev, 0, total, &buf, &err), TSR_OK) << err.message;
      ASSERT_EQ(api_->buffer_upload(buf, ox, x.data(), n * 4, nullptr, &err), TSR_OK);
      ASSERT_EQ(api_->buffer_upload(buf, op, pos.data(), T * 4, nullptr, &err), TSR_OK);
      ASSERT_EQ(api_->buffer_upload(buf, oi, inv.data(), inv.size() * 4, nullptr, &err), TSR_OK);
      ASSERT_EQ(api_->buffer_upload(buf, ok, kc0.data(), kc_bytes, nullptr, &err), TSR_OK);
      ASSERT_EQ(api_->buffer_upload(buf, os, slots.data(), T * 4, nullptr, &err), TSR_OK);
      ASSERT_EQ(api_->buffer_upload(buf, ov, v.data(), n * 4, nullptr, &err), TSR_OK);
      ASSERT_EQ(api_->buffer_upload(buf, ocv, vc0.data(), vc_bytes, nullptr, &err), TSR_OK);
      const uint64_t off[8] = {ox, op, oi, oo, ok, os, ov, ocv};
      RopeKvGraph g;
      MakeRopeKvGraph(buf, off, T, H, D, NB, BS, c.R, c.interleaved, c.kdt, c.vdt, &g);
      const int32_t n_nodes = c.with_v ? 3 : 2;
      const tsr_graph_view view{sizeof(tsr_graph_view), 8, g.t, n_nodes, g.nodes};
      const int32_t ids[3] = {0, 1, 2};
      if (mode == 2) {
        for (int j = 0; j < n_nodes; ++j)
          ASSERT_EQ(api_->execute(dev, &view, &ids[j], 1, nullptr, &err), TSR_OK) << err.message;
      } else {
        ASSERT_EQ(api_->execute(dev, &view, ids, n_nodes, nullptr, &err), TSR_OK) << err.message;
      }
      const uint64_t offs[3] = {oo, ok, ocv};
      const uint64_t sizes[3] = {static_cast<uint64_t>(n) * 4, kc_bytes, vc_bytes};
      got[ci][mode].resize(3);
      for (int o = 0; o < 3; ++o) {
        got[ci][mode][o].resize(sizes[o]);
        ASSERT_EQ(
            api_->buffer_download(buf, offs[o], got[ci][mode][o].data(), sizes[o], nullptr, &err),
            TSR_OK)
            << err.message;
      }
      api_->buffer_free(buf);
      if (mode == 0) {  // the caches changed where the slots point, the RoPE rotated something
        EXPECT_NE(got[ci][0][1], kc0);
        if (c.with_v) {
          EXPECT_NE(got[ci][0][2], vc0);
        }
        EXPECT_NE(std::memcmp(got[ci][0][0].data(), x.data(), n * 4), 0);
      }
    }
    api_->device_close(dev);
  }
  for (size_t ci = 0; ci < std::size(cases); ++ci)
    for (int mode = 1; mode < 3; ++mode)
      for (int o = 0; o < 3; ++o)
        EXPECT_EQ(got[ci][0][o], got[ci][mode][o])
            << "case " << ci << " mode " << mode << " output " << o;
  api_->destroy_context(ctx);
}

// The L2 warm-up (plugin.cc MaybeWarmL2, l2_warm.comp; on by default only on the H100) reads
// the next decode GEMV's weights beside the dispatch before it and writes nothing a node reads.
// A decode chain (ADD; MATMUL + residual ADD, one dispatch; a MATMUL over bf16 rows 2 bytes off
// alignment) forced to warm after every dispatch (mask 15, no minimum size) must give the bits
// of the same chain without it, and the warm must have run (its calls in the profile's log).
TEST_F(VulkanPluginTest, L2WarmKeepsEveryOutputsBits) {
  std::string log;
  ASSERT_NO_FATAL_FAILURE(CaptureLogInto(&log));
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  std::mt19937 rng(29);
  constexpr int64_t K = 256, N = 256;
  std::vector<float> w1f, w2f, x(K), res(N);
  const std::vector<uint8_t> w1 = EncodeWeights({TSR_DTYPE_BF16, K}, N, &rng, &w1f);
  const std::vector<uint8_t> w2 = EncodeWeights({TSR_DTYPE_BF16, N}, N, &rng, &w2f);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& v : x) v = u(rng);
  for (float& v : res) v = u(rng);
  // Tensors: 0 x, 1 x + x, 2 w1, 3 y = MATMUL(1, 2), 4 res, 5 z = y + res, 6 w2 (offset 2 mod
  // 16), 7 out = MATMUL(5, 6).
  const uint64_t o1 = 4096, o2 = 8192, o3 = o2 + w1.size(), o4 = o3 + 4096, o5 = o4 + 4096,
                 o6 = o5 + 4096 + 2, o7 = o6 + w2.size() + 254;
  std::vector<float> got[2][3];  // [warm off, on][y, z, out]
  for (int on = 0; on < 2; ++on) {
    SCOPED_TRACE(on ? "warm on" : "warm off");
    setenv("TESSERA_VULKAN_L2_WARM", on ? "15" : "0", 1);
    setenv("TESSERA_VULKAN_L2_WARM_MIN_MB", "0", 1);
    setenv("TESSERA_VULKAN_PROFILE", "1", 1);
    tsr_plugin_ctx* ctx = nullptr;
    tsr_device* dev = nullptr;
    OpenFirstDevice(&ctx, &dev);
    unsetenv("TESSERA_VULKAN_L2_WARM");
    unsetenv("TESSERA_VULKAN_L2_WARM_MIN_MB");
    unsetenv("TESSERA_VULKAN_PROFILE");
    if (dev == nullptr) {
      g_l2_log = nullptr;
      GTEST_SKIP() << "no Vulkan device";
    }
    tsr_buffer* buf = nullptr;
    ASSERT_EQ(api_->buffer_alloc(dev, 0, o7 + 4096, &buf, &err), TSR_OK) << err.message;
    ASSERT_EQ(api_->buffer_upload(buf, 0, x.data(), K * 4, nullptr, &err), TSR_OK);
    ASSERT_EQ(api_->buffer_upload(buf, o2, w1.data(), w1.size(), nullptr, &err), TSR_OK);
    ASSERT_EQ(api_->buffer_upload(buf, o4, res.data(), N * 4, nullptr, &err), TSR_OK);
    ASSERT_EQ(api_->buffer_upload(buf, o6, w2.data(), w2.size(), nullptr, &err), TSR_OK);
    tsr_tensor t[8] = {};
    const uint64_t offs[8] = {0, o1, o2, o3, o4, o5, o6, o7};
    for (int i = 0; i < 8; ++i) {
      t[i].struct_size = sizeof(tsr_tensor), t[i].buffer = buf, t[i].ndim = 2;
      t[i].dtype = TSR_DTYPE_F32, t[i].ne[0] = 1, t[i].ne[1] = N, t[i].nb[0] = N * 4;
      t[i].nb[1] = 4, t[i].offset = offs[i];
    }
    for (int i : {2, 6}) {
      t[i].dtype = TSR_DTYPE_BF16, t[i].ne[0] = N, t[i].nb[0] = K * 2, t[i].nb[1] = 2;
    }
    tsr_node nodes[4] = {};
    const tsr_op ops[4] = {TSR_OP_ADD, TSR_OP_MATMUL, TSR_OP_ADD, TSR_OP_MATMUL};
    const int32_t ins[4][2] = {{0, 0}, {1, 2}, {3, 4}, {5, 6}};
    for (int k = 0; k < 4; ++k) {
      nodes[k].struct_size = sizeof(tsr_node), nodes[k].op = ops[k], nodes[k].n_inputs = 2;
      nodes[k].inputs[0] = ins[k][0], nodes[k].inputs[1] = ins[k][1];
      nodes[k].output = k == 0 ? 1 : 2 * k + 1;
    }
    const tsr_graph_view view{sizeof(tsr_graph_view), 8, t, 4, nodes};
    const int32_t ids[4] = {0, 1, 2, 3};
    ASSERT_EQ(api_->execute(dev, &view, ids, 4, nullptr, &err), TSR_OK) << err.message;
    for (int o = 0; o < 3; ++o) {
      got[on][o].resize(N);
      ASSERT_EQ(
          api_->buffer_download(buf, offs[3 + 2 * o], got[on][o].data(), N * 4, nullptr, &err),
          TSR_OK)
          << err.message;
    }
    api_->buffer_free(buf);
    log.clear();
    api_->device_close(dev);  // logs the profile
    api_->destroy_context(ctx);
    // Two warms (w1 after the first ADD, w2 after the MATMUL + ADD), where timestamps exist.
    if (log.find("backend profile") != std::string::npos) {
      const size_t at = log.find("l2_warm.comp");
      if (on) {
        ASSERT_NE(at, std::string::npos) << log;
        EXPECT_EQ(std::atoi(log.c_str() + at + 12), 2) << log;
      } else {
        EXPECT_EQ(at, std::string::npos) << log;
      }
    }
  }
  g_l2_log = nullptr;
  for (int o = 0; o < 3; ++o) {
    for (int64_t n = 0; n < N; ++n)
      ASSERT_EQ(std::memcmp(&got[0][o][n], &got[1][o][n], 4), 0) << "output " << o << " row " << n;
  }
  for (int64_t n = 0; n < N; ++n) {  // and the chain computed what it should
    double y = 0;
    for (int64_t k = 0; k < K; ++k) y += 2.0 * x[k] * w1f[n * K + k];
    ASSERT_NEAR(got[0][0][n], y, 1e-4 * (1 + std::fabs(y))) << n;
    ASSERT_NEAR(got[0][1][n], y + res[n], 1e-4 * (1 + std::fabs(y))) << n;
  }
}

// Command-buffer replay (plugin.cc tsr_device::ReplayEntry; README vk25-replay): a decode-like
// graph (GET_ROWS of an uploaded id, RMS_NORM, MATMUL, ADD of an uploaded bias, ROPE at an
// uploaded position, an in-place accumulation of every step's result) run for many steps with
// new inputs each step, on a device with replay off (TESSERA_VULKAN_REPLAY=0), one with the
// default and one with the key pass every step (=2: no view fast path): every step's outputs
// and the accumulator must have the same bits on all three. Between
// the steps: another node list of the same view (a new key: direct), the input buffer freed and
// allocated again, two executes without a wait between (the second finds its entry pending on
// the discrete path, TESSERA_VULKAN_STAGED=1: direct), and a bad id (the error is reported by
// the synchronize of all, as without replay). The replaying devices must have replayed steps.
TEST_F(VulkanPluginTest, ReplayedStepsMatchDirectExecutes) {
  std::string log;
  ASSERT_NO_FATAL_FAILURE(CaptureLogInto(&log));
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  constexpr int64_t V = 8, D = 64, H = 2;
  std::mt19937 rng(41);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> table(V * D), nw(D), w(D * D), inv_freq(D / H / 2);
  for (float& v : table) v = u(rng);
  for (float& v : nw) v = 1.0f + 0.25f * u(rng);
  for (float& v : w) v = u(rng);
  for (size_t i = 0; i < inv_freq.size(); ++i)
    inv_freq[i] = std::pow(10000.0f, -2.0f * static_cast<float>(i) / (D / H));
  // buf: 0 table, 2048 x, 2304 nw, 2560 xn, 4096 w, 20480 y, 20736 z, 20992 inv_freq,
  // 21248 r, 21504 acc. io (per-step inputs): 0 id, 64 position, 256 bias.
  const uint64_t o_x = 2048, o_nw = 2304, o_xn = 2560, o_w = 4096, o_y = 20480, o_z = 20736,
                 o_f = 20992, o_r = 21248, o_acc = 21504, kBuf = 22016;
  struct Step {
    int kind;  // 0 graph A, 1 graph B (no ROPE / accumulation), 2 A twice without a wait
    int32_t id, pos;
  };
  std::vector<Step> steps;
  for (int s = 0; s < 8; ++s) steps.push_back({0, s % static_cast<int32_t>(V), s});
  steps.push_back({1, 3, 8});
  steps.push_back({1, 4, 9});
  for (int s = 10; s < 13; ++s) steps.push_back({0, s % static_cast<int32_t>(V), s});
  steps.push_back({-1, 0, 0});  // io freed and allocated again
  for (int s = 13; s < 17; ++s) steps.push_back({0, (3 * s) % static_cast<int32_t>(V), s});
  steps.push_back({2, 5, 17});
  steps.push_back({0, 99, 19});  // a bad id: reported, its row skipped
  for (int s = 20; s < 24; ++s) steps.push_back({0, s % static_cast<int32_t>(V), s});
  std::vector<std::vector<uint8_t>> got[3];
  std::vector<tsr_status> status[3];
  for (int on = 0; on < 3; ++on) {
    SCOPED_TRACE(on == 0 ? "replay off" : on == 1 ? "replay on" : "replay, key pass always");
    if (on != 1) setenv("TESSERA_VULKAN_REPLAY", on == 0 ? "0" : "2", 1);
    tsr_plugin_ctx* ctx = nullptr;
    tsr_device* dev = nullptr;
    OpenFirstDevice(&ctx, &dev);
    unsetenv("TESSERA_VULKAN_REPLAY");
    if (HasFatalFailure()) return;
    if (dev == nullptr) {
      g_l2_log = nullptr;
      GTEST_SKIP() << "no Vulkan device";
    }
    tsr_buffer *buf = nullptr, *io = nullptr;
    ASSERT_EQ(api_->buffer_alloc(dev, 0, kBuf, &buf, &err), TSR_OK) << err.message;
    ASSERT_EQ(api_->buffer_alloc(dev, 0, 512, &io, &err), TSR_OK) << err.message;
    const std::vector<uint8_t> zero(kBuf, 0);
    ASSERT_EQ(api_->buffer_upload(buf, 0, zero.data(), kBuf, nullptr, &err), TSR_OK);
    ASSERT_EQ(api_->buffer_upload(buf, 0, table.data(), V * D * 4, nullptr, &err), TSR_OK);
    ASSERT_EQ(api_->buffer_upload(buf, o_nw, nw.data(), D * 4, nullptr, &err), TSR_OK);
    ASSERT_EQ(api_->buffer_upload(buf, o_w, w.data(), D * D * 4, nullptr, &err), TSR_OK);
    ASSERT_EQ(api_->buffer_upload(buf, o_f, inv_freq.data(), inv_freq.size() * 4, nullptr, &err),
              TSR_OK);
    // Tensors: 0 table, 1 id, 2 x, 3 nw, 4 xn, 5 w, 6 y, 7 bias, 8 z, 9 z as [1, H, D / H],
    // 10 position, 11 inv_freq, 12 r, 13 acc (as r).
    tsr_tensor t[14] = {};
    auto row = [&](int i, tsr_buffer* b, uint64_t off, int64_t n) {
      t[i].struct_size = sizeof(tsr_tensor), t[i].dtype = TSR_DTYPE_F32, t[i].ndim = 2;
      t[i].ne[0] = 1, t[i].ne[1] = n, t[i].nb[0] = n * 4, t[i].nb[1] = 4;
      t[i].buffer = b, t[i].offset = off;
    };
    auto heads = [&](int i, uint64_t off) {
      t[i].struct_size = sizeof(tsr_tensor), t[i].dtype = TSR_DTYPE_F32, t[i].ndim = 3;
      t[i].ne[0] = 1, t[i].ne[1] = H, t[i].ne[2] = D / H;
      t[i].nb[0] = D * 4, t[i].nb[1] = D / H * 4, t[i].nb[2] = 4;
      t[i].buffer = buf, t[i].offset = off;
    };
    row(0, buf, 0, D), t[0].ne[0] = V;
    row(1, io, 0, 1), t[1].dtype = TSR_DTYPE_I32, t[1].ndim = 1, t[1].ne[0] = 1, t[1].nb[0] = 4;
    row(2, buf, o_x, D), row(3, buf, o_nw, D), t[3].ndim = 1, t[3].ne[0] = D, t[3].nb[0] = 4;
    row(4, buf, o_xn, D), row(5, buf, o_w, D), t[5].ne[0] = D;
    row(6, buf, o_y, D), row(7, io, 256, D), row(8, buf, o_z, D);
    heads(9, o_z);
    row(10, io, 64, 1), t[10].dtype = TSR_DTYPE_I32, t[10].ndim = 1, t[10].ne[0] = 1;
    t[10].nb[0] = 4;
    row(11, buf, o_f, D / H / 2), t[11].ndim = 1, t[11].ne[0] = D / H / 2, t[11].nb[0] = 4;
    heads(12, o_r), heads(13, o_acc);
    tsr_node nodes[6] = {};
    auto node = [&](int k, tsr_op op, std::vector<int32_t> in, int32_t out) {
      nodes[k].struct_size = sizeof(tsr_node), nodes[k].op = op;
      nodes[k].n_inputs = static_cast<int32_t>(in.size());
      for (size_t j = 0; j < in.size(); ++j) nodes[k].inputs[j] = in[j];
      nodes[k].output = out;
    };
    node(0, TSR_OP_GET_ROWS, {0, 1}, 2);
    node(1, TSR_OP_RMS_NORM, {2, 3}, 4), nodes[1].fparams[0] = 1e-5f;
    node(2, TSR_OP_MATMUL, {4, 5}, 6);
    node(3, TSR_OP_ADD, {6, 7}, 8);
    node(4, TSR_OP_ROPE, {9, 10, 11}, 12), nodes[4].iparams[1] = D / H, nodes[4].fparams[0] = 1;
    node(5, TSR_OP_ADD, {13, 12}, 13);  // acc += r, in place
    const tsr_graph_view view{sizeof(tsr_graph_view), 14, t, 6, nodes};
    const int32_t ids_a[6] = {0, 1, 2, 3, 4, 5}, ids_b[4] = {0, 1, 2, 3};
    auto inputs = [&](const Step& s) {
      std::vector<float> bias(D);
      for (int64_t i = 0; i < D; ++i) bias[i] = 0.01f * static_cast<float>(s.pos * 7 + i) - 0.3f;
      ASSERT_EQ(api_->buffer_upload(io, 0, &s.id, 4, nullptr, &err), TSR_OK) << err.message;
      ASSERT_EQ(api_->buffer_upload(io, 64, &s.pos, 4, nullptr, &err), TSR_OK) << err.message;
      ASSERT_EQ(api_->buffer_upload(io, 256, bias.data(), D * 4, nullptr, &err), TSR_OK);
    };
    for (const Step& s : steps) {
      SCOPED_TRACE("step position " + std::to_string(s.pos));
      if (s.kind == -1) {
        // Another size: likely the freed handle's address (the same view bytes) with other
        // device memory, which only replay_gen tells apart.
        api_->buffer_free(io);
        ASSERT_EQ(api_->buffer_alloc(dev, 0, 8192, &io, &err), TSR_OK) << err.message;
        t[1].buffer = t[7].buffer = t[10].buffer = io;
        continue;
      }
      ASSERT_NO_FATAL_FAILURE(inputs(s));
      const bool b = s.kind == 1;
      ASSERT_EQ(api_->execute(dev, &view, b ? ids_b : ids_a, b ? 4 : 6, nullptr, &err), TSR_OK)
          << err.message;
      if (s.kind == 2) {
        const Step next{0, (s.id + 1) % static_cast<int32_t>(V), s.pos + 1};
        ASSERT_NO_FATAL_FAILURE(inputs(next));
        ASSERT_EQ(api_->execute(dev, &view, ids_a, 6, nullptr, &err), TSR_OK) << err.message;
      }
      status[on].push_back(api_->device_synchronize(dev, &err));
      std::vector<uint8_t> out(kBuf - o_x);
      ASSERT_EQ(api_->buffer_download(buf, o_x, out.data(), out.size(), nullptr, &err), TSR_OK)
          << err.message;
      got[on].push_back(std::move(out));
    }
    api_->buffer_free(io);
    api_->buffer_free(buf);
    log.clear();
    api_->device_close(dev);  // logs the replay counts (debug)
    api_->destroy_context(ctx);
    const size_t at = log.find("replay: ");
    if (on == 0) {
      EXPECT_EQ(at, std::string::npos) << log;
    } else {
      ASSERT_NE(at, std::string::npos) << log;
      EXPECT_GE(std::atoi(log.c_str() + at + 8), 10) << log;  // executes replayed
      const char* staged = std::getenv("TESSERA_VULKAN_STAGED");
      if (staged != nullptr && std::string(staged) == "1") {  // inline uploads: no wait between
        EXPECT_NE(log.find(", 1 direct while their entry was pending"), std::string::npos) << log;
      }
    }
  }
  g_l2_log = nullptr;
  for (int on = 1; on < 3; ++on) {
    ASSERT_EQ(got[0].size(), got[on].size());
    for (size_t s = 0; s < got[0].size(); ++s) {
      EXPECT_EQ(status[0][s], status[on][s]) << "step " << s << " replay " << on;
      ASSERT_EQ(got[0][s], got[on][s]) << "step " << s << " replay " << on;
    }
  }
  // The bad id was reported (the step after the two executes without a wait).
  const size_t bad = got[0].size() - 5;
  EXPECT_EQ(status[0][bad], TSR_ERR_INVALID_ARGUMENT);
  for (size_t s = 0; s < got[0].size(); ++s)
    if (s != bad) {
      EXPECT_EQ(status[0][s], TSR_OK) << "step " << s;
    }
  // And the accumulator moved every step of graph A.
  float acc0 = 0, acc1 = 0;
  std::memcpy(&acc0, got[0][0].data() + (o_acc - o_x), 4);
  std::memcpy(&acc1, got[0].back().data() + (o_acc - o_x), 4);
  EXPECT_NE(acc0, acc1);
}

}  // namespace

// The cooperative-matrix GEMM (TESSERA_VULKAN_COOPMAT=1 on a device that offers bf16 matrices;
// elsewhere the same calls run the fp32 GEMM): bf16 weights, several x-row tiles with a partial
// last one, column tiles past N, bias, two MATMUL nodes of one execute over the same x (the x
// planes' scratch reused by the second node) and, for K = 14336, more rows than one scratch
// chunk holds (768). Checked against a double-precision reference with an f32-sum bound, for
// every tile variant (run_ops.cc kCoopKernels; 0 = the default, 64 = the old name of 8).
TEST_F(VulkanPluginTest, CoopGemmMatchesAReference) {
  for (const char* tile : {"0",  "1",  "2",  "3",  "4",  "5",  "6",  "7",  "8",  "9",
                           "10", "11", "12", "13", "14", "15", "16", "17", "18", "64"}) {
    SCOPED_TRACE(std::string("coop variant ") + tile);
    setenv("TESSERA_VULKAN_COOPMAT", "1", 1);
    setenv("TESSERA_VULKAN_COOPMAT_TILE", tile, 1);
    tsr_plugin_ctx* ctx = nullptr;
    tsr_device* dev = nullptr;
    OpenFirstDevice(&ctx, &dev);
    unsetenv("TESSERA_VULKAN_COOPMAT");
    unsetenv("TESSERA_VULKAN_COOPMAT_TILE");
    if (HasFatalFailure()) return;
    if (dev == nullptr) GTEST_SKIP() << "no Vulkan device";
    tsr_device_props props{};
    props.struct_size = sizeof(props);
    ASSERT_EQ(api_->device_props(ctx, 0, &props, nullptr), TSR_OK);
    // Without cooperative matrices every variant is the fp32 GEMM: check it once.
    const bool coop = std::strstr(props.description, "no cooperative-matrix path") == nullptr;
    CheckCoopShapes(dev);
    api_->device_close(dev);
    api_->destroy_context(ctx);
    if (HasFatalFailure() || !coop) return;
  }
}

void VulkanPluginTest::CheckCoopShapes(tsr_device* dev) {
  struct Shape {
    int64_t M, N, K;
  };
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  std::mt19937 rng(11);
  for (const Shape s : {Shape{70, 80, 160}, Shape{200, 48, 2080}, Shape{800, 32, 14336}}) {
    SCOPED_TRACE("M " + std::to_string(s.M) + ", N " + std::to_string(s.N) + ", K " +
                 std::to_string(s.K));
    const MatmulCase c{TSR_DTYPE_BF16, s.K};
    std::vector<float> wf[2], x(s.M * s.K), bias(s.N);
    std::vector<uint8_t> w[2] = {EncodeWeights(c, s.N, &rng, &wf[0]),
                                 EncodeWeights(c, s.N, &rng, &wf[1])};
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    for (float& v : x) v = u(rng);
    for (float& v : bias) v = u(rng);
    auto align = [](uint64_t v) { return (v + 255) / 256 * 256; };
    const uint64_t ow0 = align(x.size() * 4), ow1 = ow0 + align(w[0].size());
    const uint64_t ob = ow1 + align(w[1].size()), oo0 = ob + align(s.N * 4);
    const uint64_t oo1 = oo0 + align(s.M * s.N * 4), total = oo1 + align(s.M * s.N * 4);
    tsr_buffer* buf = nullptr;
    ASSERT_EQ(api_->buffer_alloc(dev, 0, total, &buf, &err), TSR_OK) << err.message;
    ASSERT_EQ(api_->buffer_upload(buf, 0, x.data(), x.size() * 4, nullptr, &err), TSR_OK);
    ASSERT_EQ(api_->buffer_upload(buf, ow0, w[0].data(), w[0].size(), nullptr, &err), TSR_OK);
    ASSERT_EQ(api_->buffer_upload(buf, ow1, w[1].data(), w[1].size(), nullptr, &err), TSR_OK);
    ASSERT_EQ(api_->buffer_upload(buf, ob, bias.data(), s.N * 4, nullptr, &err), TSR_OK);
    // Tensors: x, w0, w1, bias, out0, out1; node 0 = x w0^T + bias, node 1 = x w1^T.
    tsr_tensor t[6] = {};
    for (tsr_tensor& ti : t) ti.struct_size = sizeof(tsr_tensor), ti.buffer = buf, ti.ndim = 2;
    t[0].dtype = TSR_DTYPE_F32, t[0].ne[0] = s.M, t[0].ne[1] = s.K;
    t[0].nb[0] = s.K * 4, t[0].nb[1] = 4;
    for (int j = 0; j < 2; ++j) {
      t[1 + j].dtype = TSR_DTYPE_BF16, t[1 + j].ne[0] = s.N, t[1 + j].ne[1] = s.K;
      t[1 + j].nb[0] = s.K * 2, t[1 + j].nb[1] = 2, t[1 + j].offset = j == 0 ? ow0 : ow1;
      t[4 + j].dtype = TSR_DTYPE_F32, t[4 + j].ne[0] = s.M, t[4 + j].ne[1] = s.N;
      t[4 + j].nb[0] = s.N * 4, t[4 + j].nb[1] = 4, t[4 + j].offset = j == 0 ? oo0 : oo1;
    }
    t[3].dtype = TSR_DTYPE_F32, t[3].ndim = 1, t[3].ne[0] = s.N, t[3].nb[0] = 4, t[3].offset = ob;
    tsr_node nodes[2] = {};
    for (int j = 0; j < 2; ++j) {
      nodes[j].struct_size = sizeof(tsr_node);
      nodes[j].op = TSR_OP_MATMUL;
      nodes[j].n_inputs = j == 0 ? 3 : 2;
      nodes[j].inputs[0] = 0, nodes[j].inputs[1] = 1 + j, nodes[j].inputs[2] = 3;
      nodes[j].output = 4 + j;
    }
    const tsr_graph_view view{sizeof(tsr_graph_view), 6, t, 2, nodes};
    const int32_t ids[2] = {0, 1};
    ASSERT_EQ(api_->execute(dev, &view, ids, 2, nullptr, &err), TSR_OK) << err.message;
    std::vector<float> out[2] = {std::vector<float>(s.M * s.N), std::vector<float>(s.M * s.N)};
    ASSERT_EQ(api_->buffer_download(buf, oo0, out[0].data(), s.M * s.N * 4, nullptr, &err), TSR_OK);
    ASSERT_EQ(api_->buffer_download(buf, oo1, out[1].data(), s.M * s.N * 4, nullptr, &err), TSR_OK);
    for (int j = 0; j < 2; ++j) {
      for (int64_t m = 0; m < s.M; ++m) {
        for (int64_t n = 0; n < s.N; ++n) {
          double ref = j == 0 ? bias[n] : 0.0, mag = std::fabs(ref);
          for (int64_t k = 0; k < s.K; ++k) {
            const double p = static_cast<double>(x[m * s.K + k]) * wf[j][n * s.K + k];
            ref += p, mag += std::fabs(p);
          }
          // f32 sums; tensor cores may truncate their f32 additions (not round to nearest), so
          // the bound is looser than the fp32 path needs (still far below a lost tile or piece).
          ASSERT_NEAR(out[j][m * s.N + n], ref, 2e-6 * mag + 1e-30) << j << ": " << m << "," << n;
        }
      }
    }
    api_->buffer_free(buf);
  }
}
