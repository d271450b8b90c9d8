// Shared by the Vulkan labs (vulkan_gemv_lab, vulkan_gemm_lab): loads the plugin named by
// TESSERA_VULKAN_PLUGIN with its profiler on (TESSERA_VULKAN_PROFILE=1: the labs read dispatch
// times from its log lines) and collects those lines.
#ifndef TESSERA_BACKENDS_VULKAN_LAB_PLUGIN_H_
#define TESSERA_BACKENDS_VULKAN_LAB_PLUGIN_H_

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "tessera/plugin_api.h"

namespace tessera::vulkan::lab {

// The plugin's log lines since the caller last cleared it.
inline std::string& LabLog() {
  static std::string log;
  return log;
}

inline void LabLogCb(void*, tsr_log_level, const char* message) {
  LabLog() += message;
  LabLog() += '\n';
}

// The plugin's function table, or nullptr after printing why (*path: the library loaded).
inline const tsr_plugin_api* OpenLabPlugin(const char** path) {
  *path = std::getenv("TESSERA_VULKAN_PLUGIN");
  if (*path == nullptr) {
    std::fprintf(stderr, "set TESSERA_VULKAN_PLUGIN to libtessera_backend_vulkan.so\n");
    return nullptr;
  }
  setenv("TESSERA_VULKAN_PROFILE", "1", 1);
  void* handle = dlopen(*path, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    std::fprintf(stderr, "%s\n", dlerror());
    return nullptr;
  }
  auto init = reinterpret_cast<tsr_plugin_init_fn>(dlsym(handle, TSR_PLUGIN_INIT_SYMBOL));
  static tsr_host_api host{sizeof(tsr_host_api), TSR_ABI_MAJOR, TSR_ABI_MINOR, nullptr, LabLogCb};
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};
  const tsr_plugin_api* api = init != nullptr ? init(&host, &err) : nullptr;
  if (api == nullptr) std::fprintf(stderr, "plugin init failed: %s\n", err.message);
  return api;
}

}  // namespace tessera::vulkan::lab

#endif  // TESSERA_BACKENDS_VULKAN_LAB_PLUGIN_H_
