// ARGMAX on the CUDA plugin inside a captured CUDA graph, as the engine's greedy decode step runs
// it: the same execute of SCALE x3 -> ARGMAX over [64, 128256] logits repeated with new data each
// time (the plugin captures the third and replays from the fourth on; TESSERA_CUDA_PROFILE=exec
// prints "graph replays"), every result checked against a host loop. Op-level cases (ties, NaN,
// -inf rows, strides) are the conformance suite's. Without a GPU it skips.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "tessera/plugin_api.h"

namespace {

constexpr int64_t kRows = 64, kVocab = 128256;

// The op's rule: the lowest index of the largest value, NaN skipped, 0 when none is above -inf.
int32_t HostArgmax(const float* row, int64_t n) {
  float best = -std::numeric_limits<float>::infinity();
  int32_t at = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (row[i] > best) {
      best = row[i];
      at = static_cast<int32_t>(i);
    }
  }
  return at;
}

// Logits for step `step`: random rows with a planted tie, plus a NaN row, an all -inf row and a
// row whose maximum is +inf twice.
std::vector<float> StepLogits(int step) {
  std::mt19937 rng(1234 + step);
  std::uniform_real_distribution<float> u(-20.0f, 20.0f);
  std::vector<float> x(static_cast<size_t>(kRows * kVocab));
  for (float& v : x) v = u(rng);
  for (int64_t r = 0; r < kRows; ++r) {
    float* row = x.data() + r * kVocab;
    const int64_t a = rng() % kVocab, b = rng() % kVocab;
    row[a] = row[b] = 30.0f + static_cast<float>(step);
  }
  const float inf = std::numeric_limits<float>::infinity();
  float* nan_row = x.data() + (step % kRows) * kVocab;
  for (int64_t i = 0; i < kVocab; i += 3) nan_row[i] = std::numeric_limits<float>::quiet_NaN();
  float* neg_row = x.data() + ((step + 1) % kRows) * kVocab;
  for (int64_t i = 0; i < kVocab; ++i) neg_row[i] = -inf;
  float* inf_row = x.data() + ((step + 2) % kRows) * kVocab;
  inf_row[kVocab - 1] = inf_row[kVocab / 2 + step] = inf;
  return x;
}

// The CUDA plugin (TESSERA_CUDA_PLUGIN) with device 0 open; skips without a GPU.
class CudaArgmaxGraphTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* path = std::getenv("TESSERA_CUDA_PLUGIN");
    ASSERT_NE(path, nullptr) << "set TESSERA_CUDA_PLUGIN to libtessera_backend_cuda.so";
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle, nullptr) << dlerror();
    auto init = reinterpret_cast<tsr_plugin_init_fn>(dlsym(handle, TSR_PLUGIN_INIT_SYMBOL));
    ASSERT_NE(init, nullptr);
    tsr_host_api host{sizeof(tsr_host_api), TSR_ABI_MAJOR, TSR_ABI_MINOR, nullptr, nullptr};
    api = init(&host, &err);
    ASSERT_NE(api, nullptr) << err.message;
    ASSERT_EQ(api->create_context(nullptr, 0, &ctx, &err), TSR_OK) << err.message;
    int32_t count = 0;
    ASSERT_EQ(api->device_count(ctx, &count, &err), TSR_OK);
    if (count == 0) GTEST_SKIP() << "no CUDA device";
    ASSERT_EQ(api->device_open(ctx, 0, &dev, &err), TSR_OK) << err.message;
  }
  void TearDown() override {
    if (dev != nullptr) api->device_close(dev);
    if (ctx != nullptr) api->destroy_context(ctx);
    if (handle != nullptr) dlclose(handle);
  }

  // SCALE x4 (x * 2 each) over f32 [kN] tensors 0..4, one buffer each.
  struct ScaleChain {
    static constexpr int64_t kN = 1000;
    tsr_buffer* bufs[5] = {};
    tsr_tensor t[5] = {};
    tsr_node nodes[4] = {};
    tsr_graph_view view{sizeof(tsr_graph_view), 5, t, 4, nodes};
    int32_t ids[4] = {0, 1, 2, 3};
  };
  void MakeScaleChain(ScaleChain* c) {
    for (int i = 0; i < 5; ++i) {
      ASSERT_EQ(api->buffer_alloc(dev, 0, ScaleChain::kN * 4, &c->bufs[i], &err), TSR_OK)
          << err.message;
      c->t[i].struct_size = sizeof(tsr_tensor);
      c->t[i].dtype = TSR_DTYPE_F32;
      c->t[i].ndim = 1;
      c->t[i].ne[0] = ScaleChain::kN;
      c->t[i].nb[0] = 4;
      c->t[i].buffer = c->bufs[i];
    }
    for (int i = 0; i < 4; ++i) {
      c->nodes[i].struct_size = sizeof(tsr_node);
      c->nodes[i].op = TSR_OP_SCALE;
      c->nodes[i].n_inputs = 1;
      c->nodes[i].inputs[0] = i;
      c->nodes[i].output = i + 1;
      c->nodes[i].fparams[0] = 2.0f;  // x * 2 + 0: powers of two, exact
    }
  }

  void* handle = nullptr;
  const tsr_plugin_api* api = nullptr;
  tsr_plugin_ctx* ctx = nullptr;
  tsr_device* dev = nullptr;
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
};

TEST_F(CudaArgmaxGraphTest, CapturedStepsMatchTheHost) {
  // Tensors 0..3: x, a, b, c f32 [R, V] in one buffer each; 4: ids i32 [R, 1].
  const uint64_t bytes = static_cast<uint64_t>(kRows * kVocab) * 4;
  tsr_buffer* bufs[5] = {};
  tsr_tensor t[5] = {};
  for (int i = 0; i < 5; ++i) {
    const bool ids = i == 4;
    ASSERT_EQ(api->buffer_alloc(dev, 0, ids ? kRows * 4 : bytes, &bufs[i], &err), TSR_OK)
        << err.message;
    t[i].struct_size = sizeof(tsr_tensor);
    t[i].dtype = ids ? TSR_DTYPE_I32 : TSR_DTYPE_F32;
    t[i].ndim = 2;
    t[i].ne[0] = kRows;
    t[i].ne[1] = ids ? 1 : kVocab;
    t[i].nb[1] = 4;
    t[i].nb[0] = ids ? 4 : kVocab * 4;
    t[i].buffer = bufs[i];
  }
  tsr_node nodes[4] = {};
  for (int i = 0; i < 4; ++i) {
    nodes[i].struct_size = sizeof(tsr_node);
    nodes[i].op = i < 3 ? TSR_OP_SCALE : TSR_OP_ARGMAX;
    nodes[i].n_inputs = 1;
    nodes[i].inputs[0] = i;
    nodes[i].output = i + 1;
    nodes[i].fparams[0] = 1.0f;  // SCALE: x * 1 + 0, exact
  }
  tsr_graph_view view{sizeof(view), 5, t, 4, nodes};
  tsr_bool supported = 0;
  ASSERT_EQ(api->supports_op(dev, &view, 3, &supported, &err), TSR_OK);
  ASSERT_TRUE(supported) << err.message;
  const int32_t ids[4] = {0, 1, 2, 3};
  tsr_event* ev = nullptr;
  ASSERT_EQ(api->event_create(dev, &ev, &err), TSR_OK);
  for (int step = 0; step < 6; ++step) {
    const std::vector<float> x = StepLogits(step);
    ASSERT_EQ(api->buffer_upload(bufs[0], 0, x.data(), bytes, nullptr, &err), TSR_OK);
    ASSERT_EQ(api->execute(dev, &view, ids, 4, ev, &err), TSR_OK) << err.message;
    ASSERT_EQ(api->event_wait(ev, &err), TSR_OK) << err.message;
    std::vector<int32_t> got(kRows, -1);
    ASSERT_EQ(api->buffer_download(bufs[4], 0, got.data(), kRows * 4, nullptr, &err), TSR_OK);
    for (int64_t r = 0; r < kRows; ++r)
      ASSERT_EQ(got[r], HostArgmax(x.data() + r * kVocab, kVocab))
          << "step " << step << " row " << r;
  }
  api->event_destroy(ev);
  for (tsr_buffer* b : bufs) api->buffer_free(b);
}

// Graph replays follow every change of the execute (plugin.cc ExecuteGraph: the key is skipped
// while the view's bytes, the node ids and the buffers stay the same): SCALE x4 over a small
// tensor, executed repeatedly (captured the second time, replayed after), then with a changed
// factor in the same node array, then back, then with the output buffer freed and a new one
// allocated in its place (the tsr_buffer may come back at the same address, so the view's bytes
// may be identical); odd steps upload part of the input twice (small uploads are held and sent
// as one batch: the later one must win). Every result is checked.
TEST_F(CudaArgmaxGraphTest, ReplaysFollowViewAndBufferChanges) {
  ScaleChain c;
  ASSERT_NO_FATAL_FAILURE(MakeScaleChain(&c));
  constexpr int64_t kN = ScaleChain::kN;
  std::vector<float> x(kN), got(kN);
  // 12 steps: factor 2 (0-3), 4 in node 1 (4-6), 2 again (7-8), new output buffer (9-11).
  for (int step = 0; step < 12; ++step) {
    c.nodes[1].fparams[0] = step >= 4 && step < 7 ? 4.0f : 2.0f;
    if (step == 9) {
      api->buffer_free(c.bufs[4]);
      ASSERT_EQ(api->buffer_alloc(dev, 0, kN * 4, &c.bufs[4], &err), TSR_OK) << err.message;
      c.t[4].buffer = c.bufs[4];
    }
    for (int64_t i = 0; i < kN; ++i) x[i] = static_cast<float>(i + step);
    ASSERT_EQ(api->buffer_upload(c.bufs[0], 0, x.data(), kN * 4, nullptr, &err), TSR_OK);
    if (step % 2 == 1) {  // a second small upload over part of the first: the later one wins
      std::vector<float> y(kN / 2, static_cast<float>(-step));
      ASSERT_EQ(api->buffer_upload(c.bufs[0], 400, y.data(), y.size() * 4, nullptr, &err), TSR_OK);
      std::copy(y.begin(), y.end(), x.begin() + 100);
    }
    ASSERT_EQ(api->execute(dev, &c.view, c.ids, 4, nullptr, &err), TSR_OK) << err.message;
    ASSERT_EQ(api->buffer_download(c.bufs[4], 0, got.data(), kN * 4, nullptr, &err), TSR_OK)
        << err.message;
    const float f = 8.0f * c.nodes[1].fparams[0];
    for (int64_t i = 0; i < kN; ++i) ASSERT_EQ(got[i], x[i] * f) << "step " << step << " i " << i;
  }
  for (tsr_buffer* b : c.bufs) api->buffer_free(b);
}

// The eager download (plugin.cc EagerDownload) as the engine's decode steps use it: small uploads
// (held, sent as one batch at the execute), execute (a replayed graph from the third
// step), device_synchronize, then the output downloaded into host_alloc memory; from the third
// such step on the execute enqueues the copy itself and the download returns at once. In between:
// a step that downloads only half the range (the prediction breaks, then rebuilds), a step whose
// output is overwritten by an upload after the execute (the eager copy must not be served), and a
// step whose host_alloc destination is freed and allocated again. Odd steps also upload 7 bytes at
// an unaligned offset over the held pieces. Every result is checked.
TEST_F(CudaArgmaxGraphTest, EagerDownloadsFollowTheSteps) {
  if (api->host_alloc == nullptr) GTEST_SKIP() << "no host_alloc";
  ScaleChain c;
  ASSERT_NO_FATAL_FAILURE(MakeScaleChain(&c));
  constexpr int64_t kN = ScaleChain::kN;
  void* host = nullptr;
  ASSERT_EQ(api->host_alloc(dev, kN * 4, &host, &err), TSR_OK) << err.message;
  std::vector<float> x(kN);
  for (int step = 0; step < 16; ++step) {
    if (step == 11) {
      api->host_free(dev, host);
      ASSERT_EQ(api->host_alloc(dev, kN * 4, &host, &err), TSR_OK) << err.message;
    }
    // Poisoned before the step (not after its execute: from there until the download returns the
    // bytes are the plugin's, tsr_plugin_api.host_alloc).
    std::memset(host, 0xff, kN * 4);
    for (int64_t i = 0; i < kN; ++i) x[i] = static_cast<float>((i * 7 + step * 13) % 1001);
    // Small uploads (held, then one batch at the execute): the input in four pieces.
    for (int q = 0; q < 4; ++q)
      ASSERT_EQ(api->buffer_upload(c.bufs[0], q * kN, x.data() + q * kN / 4, kN, nullptr, &err),
                TSR_OK);
    if (step % 2 == 1) {  // 7 bytes at an odd offset, over the pieces: the later bytes win
      const uint8_t raw[7] = {1, 2, 3, 4, 5, 6, static_cast<uint8_t>(step)};
      ASSERT_EQ(api->buffer_upload(c.bufs[0], 401, raw, 7, nullptr, &err), TSR_OK);
      std::memcpy(reinterpret_cast<uint8_t*>(x.data()) + 401, raw, 7);
    }
    ASSERT_EQ(api->execute(dev, &c.view, c.ids, 4, nullptr, &err), TSR_OK) << err.message;
    std::vector<float> want(kN);
    for (int64_t i = 0; i < kN; ++i) want[i] = x[i] * 16.0f;
    if (step == 8) {  // the output is overwritten after the execute: the download sees that
      const std::vector<float> z(kN, 3.0f);
      ASSERT_EQ(api->buffer_upload(c.bufs[4], 0, z.data(), kN * 4, nullptr, &err), TSR_OK);
      want = z;
    }
    ASSERT_EQ(api->device_synchronize(dev, &err), TSR_OK) << err.message;
    const int64_t n = step == 5 ? kN / 2 : kN;  // step 5: half the range
    ASSERT_EQ(api->buffer_download(c.bufs[4], 0, host, n * 4, nullptr, &err), TSR_OK)
        << err.message;
    const auto* got = static_cast<const float*>(host);
    for (int64_t i = 0; i < n; ++i) {
      uint32_t a = 0, b = 0;
      std::memcpy(&a, &got[i], 4);
      std::memcpy(&b, &want[i], 4);
      ASSERT_EQ(a, b) << "step " << step << " i " << i;
    }
  }
  api->host_free(dev, host);
  for (tsr_buffer* b : c.bufs) api->buffer_free(b);
}

}  // namespace
