// libFuzzer entry: arbitrary request bodies into the server's router (the same Api::Handle the
// HTTP layer calls), with the bundled default model loaded on the CPU plugin. The first byte picks
// the endpoint and method; the rest is the body. Every input must give an HTTP reply (2xx or a
// JSON 4xx/5xx); a generation it starts is cancelled at once, so inputs stay fast. Crashes, leaks,
// hangs and out-of-bounds accesses are bugs.
//
// Build: cmake -DTESSERA_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ ... --target request_fuzz
// Run:   request_fuzz -max_total_time=30 <scratch_corpus_dir> tools/server/fuzz_corpus
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "api.h"
#include "tessera/core/device.h"
#include "tessera/core/plugin_loader.h"

namespace {

using namespace tessera;

struct Endpoint {
  const char* method;
  const char* path;
};

constexpr Endpoint kEndpoints[] = {
    {"POST", "/v1/chat/completions"},
    {"POST", "/v1/completions"},
    {"POST", "/tokenize"},
    {"POST", "/detokenize"},
    {"POST", "/api/generate"},
    {"POST", "/api/chat"},
    {"POST", "/api/show"},
    {"POST", "/v1/embeddings"},
    {"POST", "/api/embed"},
    {"POST", "/v1/rerank"},
    {"POST", "/api/pull"},
    {"DELETE", "/api/delete"},
    {"GET", "/v1/models"},
    {"GET", "/api/tags"},
    {"GET", "/api/ps"},
    {"GET", "/metrics"},
};

// Loaded once: plugins, the CPU device, the registry with the bundled model, and the router.
struct Fixture {
  Fixture() {
    LoaderOptions o;
    o.explicit_paths = {TESSERA_FUZZ_CPU_PLUGIN};
    o.plugin_options["cpu"] = {{"threads", "1"}};
    plugins = PluginRegistry::Discover(o);
    Plugin* cpu = plugins->Find("cpu");
    TSR_CHECK(cpu != nullptr);
    device = std::move(Device::Open(cpu, 0)).value();
    server::RegistryOptions ro;
    ro.devices = {device.get()};
    ro.kv_budget_bytes = 4 << 20;
    ro.scheduler.max_queue = 64;
    registry = std::make_unique<server::ModelRegistry>(std::move(ro));
    TSR_CHECK(registry->LoadPinned({TESSERA_FUZZ_MODEL_DIR}, {"default"}).ok());
    api = std::make_unique<server::Api>("fuzz");
    api->SetReady(registry.get());
  }
  ~Fixture() {
    api->StopWorkers();
    api.reset();
    registry.reset();
  }
  std::unique_ptr<PluginRegistry> plugins;
  std::unique_ptr<Device> device;
  std::unique_ptr<server::ModelRegistry> registry;
  std::unique_ptr<server::Api> api;
};

Fixture& Get() {
  static Fixture* f = new Fixture();  // never destroyed: libFuzzer exits without unwinding
  return *f;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  Get();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Endpoint& e = kEndpoints[data[0] % (sizeof(kEndpoints) / sizeof(kEndpoints[0]))];
  server::HttpRequest req;
  req.method = e.method;
  req.path = e.path;
  req.target = e.path;
  req.body.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  server::HttpReply r = Get().api->Handle(req);
  TSR_CHECK(r.status >= 200 && r.status < 600);
  if (r.pending) {
    // A generation started: the client "leaves" at once, as a disconnect would.
    std::string out;
    r.pending->Drain(&out);
    r.pending->Cancel();
  } else if (r.status >= 400) {
    TSR_CHECK(!r.body.empty() && r.body[0] == '{');  // errors are JSON
  }
  return 0;
}
