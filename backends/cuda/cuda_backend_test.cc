// The CUDA plugin through its ABI, on any machine: without a driver or GPU it must load, report no
// devices and say why; with a GPU it must open each device and run a node end to end. Op-level
// correctness is the conformance suite's job (tests/conformance).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tessera/plugin_api.h"

namespace {

class CudaPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* path = std::getenv("TESSERA_CUDA_PLUGIN");
    ASSERT_NE(path, nullptr) << "set TESSERA_CUDA_PLUGIN to libtessera_backend_cuda.so";
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

  void* handle_ = nullptr;
  tsr_host_api host_{};
  const tsr_plugin_api* api_ = nullptr;
};

TEST_F(CudaPluginTest, ExportsOnlyTheEntryPointsAndProbesWithoutADevice) {
  EXPECT_STREQ(api_->id, "cuda");
  auto probe = reinterpret_cast<tsr_plugin_probe_fn>(dlsym(handle_, TSR_PLUGIN_PROBE_SYMBOL));
  ASSERT_NE(probe, nullptr);
  EXPECT_GE(probe(), 0);
  // Internal symbols (CUDA runtime, our kernels) stay hidden.
  EXPECT_EQ(dlsym(handle_, "cudaMalloc"), nullptr);
}

TEST_F(CudaPluginTest, OptionsAreCheckedByName) {
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  tsr_plugin_ctx* ctx = nullptr;
  tsr_option bad{sizeof(tsr_option), "no_such_option", "1"};
  EXPECT_EQ(api_->create_context(&bad, 1, &ctx, &err), TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err.message).find("no_such_option"), std::string::npos);
  tsr_option bad_value{sizeof(tsr_option), "matmul_precision", "fp8"};
  EXPECT_EQ(api_->create_context(&bad_value, 1, &ctx, &err), TSR_ERR_INVALID_ARGUMENT);
  tsr_option ok{sizeof(tsr_option), "matmul_precision", "bf16"};
  ASSERT_EQ(api_->create_context(&ok, 1, &ctx, &err), TSR_OK) << err.message;
  api_->destroy_context(ctx);
}

// No GPU: zero devices and a reason. GPU: every device opens and runs ADD.
TEST_F(CudaPluginTest, DevicesOrAReason) {
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  tsr_plugin_ctx* ctx = nullptr;
  ASSERT_EQ(api_->create_context(nullptr, 0, &ctx, &err), TSR_OK) << err.message;
  int32_t count = -1;
  ASSERT_EQ(api_->device_count(ctx, &count, &err), TSR_OK);
  if (count == 0) {
    const std::string why = api_->absence_reason(ctx);
    EXPECT_FALSE(why.empty());
    std::printf("  no CUDA device: %s\n", why.c_str());
    api_->destroy_context(ctx);
    return;
  }
  EXPECT_STREQ(api_->absence_reason(ctx), "");
  for (int32_t d = 0; d < count; ++d) {
    tsr_device_props props{};
    props.struct_size = sizeof(props);
    ASSERT_EQ(api_->device_props(ctx, d, &props, &err), TSR_OK) << err.message;
    std::printf("  device %d: %s (%s)\n", d, props.name, props.description);
    tsr_device* dev = nullptr;
    ASSERT_EQ(api_->device_open(ctx, d, &dev, &err), TSR_OK) << err.message;
    const std::vector<float> a = {1, 2, 3, 4}, b = {10, 20, 30, 40};
    tsr_buffer* buf = nullptr;
    ASSERT_EQ(api_->buffer_alloc(dev, 0, 48, &buf, &err), TSR_OK) << err.message;
    ASSERT_EQ(api_->buffer_upload(buf, 0, a.data(), 16, nullptr, &err), TSR_OK);
    ASSERT_EQ(api_->buffer_upload(buf, 16, b.data(), 16, nullptr, &err), TSR_OK);
    tsr_tensor t[3] = {};
    for (int i = 0; i < 3; ++i) {
      t[i].struct_size = sizeof(tsr_tensor);
      t[i].dtype = TSR_DTYPE_F32;
      t[i].ndim = 1;
      t[i].ne[0] = 4;
      t[i].nb[0] = 4;
      t[i].buffer = buf;
      t[i].offset = 16u * i;
    }
    tsr_node node{};
    node.struct_size = sizeof(node);
    node.op = TSR_OP_ADD;
    node.n_inputs = 2;
    node.inputs[0] = 0;
    node.inputs[1] = 1;
    node.output = 2;
    tsr_graph_view view{sizeof(view), 3, t, 1, &node};
    tsr_bool supported = 0;
    ASSERT_EQ(api_->supports_op(dev, &view, 0, &supported, &err), TSR_OK);
    ASSERT_TRUE(supported);
    tsr_event* ev = nullptr;
    ASSERT_EQ(api_->event_create(dev, &ev, &err), TSR_OK);
    const int32_t id = 0;
    ASSERT_EQ(api_->execute(dev, &view, &id, 1, ev, &err), TSR_OK) << err.message;
    ASSERT_EQ(api_->event_wait(ev, &err), TSR_OK);
    std::vector<float> out(4);
    ASSERT_EQ(api_->buffer_download(buf, 32, out.data(), 16, nullptr, &err), TSR_OK);
    EXPECT_EQ(out, (std::vector<float>{11, 22, 33, 44}));
    api_->event_destroy(ev);
    api_->buffer_free(buf);
    api_->device_close(dev);
  }
  api_->destroy_context(ctx);
}

}  // namespace
