// Shared by the Vulkan labs (vulkan_gemv_lab, vulkan_gemm_lab, vulkan_coopgemv_lab): loads the
// plugin named by TESSERA_VULKAN_PLUGIN with its profiler on (TESSERA_VULKAN_PROFILE=1: the labs
// read dispatch times from its log lines) and collects those lines; small helpers they share.
#ifndef TESSERA_BACKENDS_VULKAN_LAB_PLUGIN_H_
#define TESSERA_BACKENDS_VULKAN_LAB_PLUGIN_H_

#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

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

// Buffer offsets rounded up to 256 bytes (every storage-buffer offset alignment seen).
inline uint64_t Align(uint64_t v) {
  return (v + 255) / 256 * 256;
}

inline float Bf16(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// The non-empty items of a `sep`-separated list.
inline std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> v;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, sep)) {
    if (!item.empty()) v.push_back(item);
  }
  return v;
}

}  // namespace tessera::vulkan::lab

#endif  // TESSERA_BACKENDS_VULKAN_LAB_PLUGIN_H_
