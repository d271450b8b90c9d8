// Plugin discovery for the conformance suite: dlopen, init, one context, every device opened.
#include "targets.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

namespace tessera::conformance {
namespace {

#ifndef TESSERA_CONFORMANCE_DEFAULT_DIR
#define TESSERA_CONFORMANCE_DEFAULT_DIR ""
#endif

// Plugins log only through the host; we print INFO and above (TRACE/DEBUG would drown the
// test output). `user` is the plugin's path.
void LogToStderr(void* user, tsr_log_level level, const char* message) {
  if (level < TSR_LOG_INFO) return;
  static const char* const kNames[] = {"trace", "debug", "info", "warn", "error"};
  const int i = std::clamp(static_cast<int>(level), 0, 4);
  std::fprintf(stderr, "[%s] %s: %s\n", static_cast<const char*>(user), kNames[i], message);
}

std::vector<std::string> CandidatePaths() {
  std::vector<std::string> paths;
  const char* env = std::getenv("TESSERA_CONFORMANCE_PLUGINS");
  if (env && *env) {
    std::string list = env;
    size_t start = 0;
    while (start <= list.size()) {
      const size_t end = std::min(list.find(':', start), list.size());
      if (end > start) paths.push_back(list.substr(start, end - start));
      start = end + 1;
    }
    return paths;
  }
  std::error_code ec;
  // Installed layout first (<prefix>/bin/op_conformance_test next to
  // <prefix>/lib/tessera/backends, also the build tree's layout), then the build tree's folder
  // compiled in: an installed runner never scans a build tree that happens to exist.
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::filesystem::path dir = exe.parent_path().parent_path() / "lib" / "tessera" / "backends";
  if (!std::filesystem::is_directory(dir, ec)) dir = TESSERA_CONFORMANCE_DEFAULT_DIR;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".so") paths.push_back(entry.path().string());
  }
  std::sort(paths.begin(), paths.end());  // a stable test order
  if (paths.empty()) {
    std::fprintf(stderr, "conformance: no *.so in %s\n", dir.string().c_str());
  }
  return paths;
}

// Everything one loaded plugin owns. The host API struct and the table copy live here so that
// their addresses stay valid for as long as the plugin is loaded.
struct LoadedPlugin {
  std::string path;
  void* handle = nullptr;
  tsr_host_api host{};
  tsr_plugin_api table{};  // zero-extended copy: fields past the plugin's struct_size are NULL
  tsr_plugin_ctx* ctx = nullptr;
  std::vector<tsr_device*> devices;

  ~LoadedPlugin() {
    for (tsr_device* dev : devices) table.device_close(dev);
    if (ctx && table.destroy_context) table.destroy_context(ctx);
    if (handle) dlclose(handle);
  }
};

// Loads one plugin and opens its devices; on any failure reports why and returns null.
std::unique_ptr<LoadedPlugin> Load(const std::string& path) {
  auto p = std::make_unique<LoadedPlugin>();
  p->path = path;
  p->handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!p->handle) {
    std::fprintf(stderr, "conformance: cannot load %s: %s\n", path.c_str(), dlerror());
    return nullptr;
  }
  auto init = reinterpret_cast<tsr_plugin_init_fn>(dlsym(p->handle, TSR_PLUGIN_INIT_SYMBOL));
  if (!init) {
    std::fprintf(stderr, "conformance: %s exports no %s\n", path.c_str(), TSR_PLUGIN_INIT_SYMBOL);
    return nullptr;
  }
  p->host = {sizeof(tsr_host_api), TSR_ABI_MAJOR, TSR_ABI_MINOR, p->path.data(), LogToStderr};
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  const tsr_plugin_api* api = init(&p->host, &err);
  if (!api) {
    std::fprintf(stderr, "conformance: %s refused init: %s\n", path.c_str(), err.message);
    return nullptr;
  }
  if (api->abi_major != TSR_ABI_MAJOR) {
    std::fprintf(stderr, "conformance: %s speaks ABI %u.x, this suite %d.x\n", path.c_str(),
                 api->abi_major, TSR_ABI_MAJOR);
    return nullptr;
  }
  std::memcpy(&p->table, api, std::min<size_t>(api->struct_size, sizeof(tsr_plugin_api)));
  const tsr_plugin_api& t = p->table;
  if (!t.create_context || !t.device_count || !t.device_open || !t.device_close) {
    std::fprintf(stderr, "conformance: %s lacks context/device entry points\n", path.c_str());
    return nullptr;
  }
  if (t.create_context(nullptr, 0, &p->ctx, &err) != TSR_OK) {
    std::fprintf(stderr, "conformance: %s create_context: %s\n", path.c_str(), err.message);
    return nullptr;
  }
  int32_t count = 0;
  if (t.device_count(p->ctx, &count, &err) != TSR_OK) {
    std::fprintf(stderr, "conformance: %s device_count: %s\n", path.c_str(), err.message);
    return nullptr;
  }
  if (count == 0) {
    const char* why = t.absence_reason ? t.absence_reason(p->ctx) : "";
    std::fprintf(stderr, "conformance: %s (%s) has no device (%s): skipped\n", path.c_str(),
                 t.id ? t.id : "?", why && *why ? why : "no reason given");
    return nullptr;
  }
  for (int32_t i = 0; i < count; ++i) {
    tsr_device* dev = nullptr;
    if (t.device_open(p->ctx, i, &dev, &err) != TSR_OK) {
      std::fprintf(stderr, "conformance: %s device %d: %s: skipped\n", path.c_str(), i,
                   err.message);
      continue;
    }
    p->devices.push_back(dev);
  }
  return p;
}

class Registry {
 public:
  Registry() {
    for (const std::string& path : CandidatePaths()) {
      std::unique_ptr<LoadedPlugin> p = Load(path);
      if (!p) continue;
      const std::string id = p->table.id ? p->table.id : "unnamed";
      if (!p->table.supports_op || !p->table.execute) {
        std::fprintf(stderr,
                     "conformance: %s (%s) has no kernel-style entry points; the suite "
                     "does not cover compile-style plugins yet: skipped\n",
                     path.c_str(), id.c_str());
        continue;
      }
      for (size_t i = 0; i < p->devices.size(); ++i) {
        const std::string name = i == 0 ? id : id + "_" + std::to_string(i);
        targets_.push_back({name, &p->table, p->devices[i], id});
        std::fprintf(stderr, "conformance: testing %s (%s, device %zu)\n", name.c_str(),
                     path.c_str(), i);
      }
      plugins_.push_back(std::move(p));
    }
  }
  const std::vector<ConformanceTarget>& targets() const { return targets_; }

 private:
  std::vector<std::unique_ptr<LoadedPlugin>> plugins_;
  std::vector<ConformanceTarget> targets_;
};

}  // namespace

const std::vector<ConformanceTarget>& ConformanceTargets() {
  static const Registry registry;
  return registry.targets();
}

}  // namespace tessera::conformance
