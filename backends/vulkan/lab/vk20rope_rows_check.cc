// vk20-rope: rows.comp's RMS_NORM and ARGMAX through a Vulkan plugin's ABI over odd shapes
// (row lengths 1..128256, 1 / 3 rows, strided rows, with and without a weight and its offset,
// ties for ARGMAX); writes every output byte to argv[1]. Run with two plugins and `cmp` the files
// (old = HEAD's rows.comp loops, new = the 32-bit stepped loops): the same bits.
// Build: g++ -std=c++20 -O1 -I plugins-api/include vk20rope_rows_check.cc -ldl -o
// vk20rope_rows_check Run:   TESSERA_VULKAN_PLUGIN=.../libtessera_backend_vulkan.so
// ./vk20rope_rows_check out.bin
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "tessera/plugin_api.h"

#define CHECK(x)                                                                    \
  do {                                                                              \
    if (!(x)) {                                                                     \
      std::fprintf(stderr, "failed: %s (line %d) %s\n", #x, __LINE__, err.message); \
      return 1;                                                                     \
    }                                                                               \
  } while (0)

int main(int argc, char** argv) {
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  CHECK(argc == 2);
  void* h = dlopen(std::getenv("TESSERA_VULKAN_PLUGIN"), RTLD_NOW | RTLD_LOCAL);
  CHECK(h != nullptr);
  auto init = reinterpret_cast<tsr_plugin_init_fn>(dlsym(h, TSR_PLUGIN_INIT_SYMBOL));
  tsr_host_api host{sizeof(tsr_host_api), TSR_ABI_MAJOR, TSR_ABI_MINOR, nullptr, nullptr};
  const tsr_plugin_api* api = init(&host, &err);
  CHECK(api != nullptr);
  tsr_plugin_ctx* ctx = nullptr;
  CHECK(api->create_context(nullptr, 0, &ctx, &err) == TSR_OK);
  tsr_device* dev = nullptr;
  CHECK(api->device_open(ctx, 0, &dev, &err) == TSR_OK);
  FILE* f = std::fopen(argv[1], "wb");
  CHECK(f != nullptr);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  int cases = 0;
  for (int op : {0, 1}) {  // 0 RMS_NORM, 1 ARGMAX
    for (int64_t n : {1, 7, 255, 256, 257, 1000, 2048, 4096, 5000, 8192, 128256}) {
      for (int64_t T : {1, 3}) {
        for (int variant = 0; variant < 3; ++variant) {  // weight+woff / no weight / strided x
          const int64_t sx = variant == 2 ? 2 : 1;       // elements between row elements
          const int64_t row = n * sx + 3;                // elements between rows
          std::vector<float> x(T * row), w(n);
          for (float& v : x) v = u(rng);
          if (op == 1 && n > 10) x[5 * sx] = x[(n - 1) * sx] = 9.0f;  // a tie: lowest index
          for (float& v : w) v = u(rng);
          const uint64_t ox = 0, ow = (T * row * 4 + 255) / 256 * 256,
                         oo = ow + (n * 4 + 255) / 256 * 256, total = oo + T * n * 4 + 256;
          tsr_buffer* buf = nullptr;
          CHECK(api->buffer_alloc(dev, 0, total, &buf, &err) == TSR_OK);
          CHECK(api->buffer_upload(buf, ox, x.data(), x.size() * 4, nullptr, &err) == TSR_OK);
          CHECK(api->buffer_upload(buf, ow, w.data(), n * 4, nullptr, &err) == TSR_OK);
          tsr_tensor t[3] = {};
          for (tsr_tensor& ti : t) ti.struct_size = sizeof(tsr_tensor), ti.buffer = buf;
          t[0].dtype = TSR_DTYPE_F32, t[0].ndim = 2, t[0].offset = ox;
          t[0].ne[0] = T, t[0].ne[1] = n, t[0].nb[0] = row * 4, t[0].nb[1] = sx * 4;
          t[1].dtype = TSR_DTYPE_F32, t[1].ndim = 1, t[1].offset = ow, t[1].ne[0] = n,
          t[1].nb[0] = 4;
          tsr_tensor& o = t[2];
          o.offset = oo, o.ndim = 2, o.ne[0] = T, o.ne[1] = op == 0 ? n : 1;
          o.dtype = op == 0 ? TSR_DTYPE_F32 : TSR_DTYPE_I32;
          o.nb[0] = o.ne[1] * 4, o.nb[1] = 4;
          tsr_node nd{};
          nd.struct_size = sizeof(tsr_node);
          nd.op = op == 0 ? TSR_OP_RMS_NORM : TSR_OP_ARGMAX;
          nd.n_inputs = op == 0 && variant != 1 ? 2 : 1;
          nd.inputs[0] = 0, nd.inputs[1] = 1, nd.output = 2;
          nd.fparams[0] = 1e-5f, nd.fparams[1] = variant == 0 ? 1.0f : 0.0f;
          const tsr_graph_view view{sizeof(tsr_graph_view), 3, t, 1, &nd};
          const int32_t id = 0;
          CHECK(api->execute(dev, &view, &id, 1, nullptr, &err) == TSR_OK);
          const size_t bytes = op == 0 ? T * n * 4 : T * 4;
          std::vector<uint8_t> got(bytes);
          CHECK(api->buffer_download(buf, oo, got.data(), bytes, nullptr, &err) == TSR_OK);
          std::fwrite(got.data(), 1, bytes, f);
          api->buffer_free(buf);
          ++cases;
        }
      }
    }
  }
  std::fclose(f);
  api->device_close(dev);
  api->destroy_context(ctx);
  std::printf("rows check: %d cases written\n", cases);
  return 0;
}
