#include "backends/level-zero/ze_loader.h"

#include <dlfcn.h>

#include <cstdio>
#include <mutex>

namespace tessera::level_zero {

const ZeApi* LoadZeApi(std::string* why) {
  static ZeApi api;
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    void* h = dlopen("libze_loader.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      const char* e = dlerror();
      error = std::string(
                  "the Level Zero loader libze_loader.so.1 is not installed (Debian: "
                  "libze1): ") +
              (e != nullptr ? e : "dlopen failed");
      return;
    }
#define TSR_ZE_RESOLVE(name)                                              \
  api.name = reinterpret_cast<decltype(&::name)>(dlsym(h, #name));        \
  if (api.name == nullptr) {                                              \
    error = "libze_loader.so.1 lacks " #name " (Level Zero 1.4+ needed)"; \
    return;                                                               \
  }
    TSR_ZE_FUNCTIONS(TSR_ZE_RESOLVE)
#undef TSR_ZE_RESOLVE
  });
  if (!error.empty()) {
    if (why != nullptr) *why = error;
    return nullptr;
  }
  return &api;
}

std::string ZeResultName(ze_result_t r) {
  const char* name = "ZE_RESULT_ERROR";
  switch (r) {
    case ZE_RESULT_SUCCESS: name = "ZE_RESULT_SUCCESS"; break;
    case ZE_RESULT_ERROR_UNINITIALIZED: name = "ZE_RESULT_ERROR_UNINITIALIZED"; break;
    case ZE_RESULT_ERROR_DEVICE_LOST: name = "ZE_RESULT_ERROR_DEVICE_LOST"; break;
    case ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY: name = "ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY"; break;
    case ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY: name = "ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY"; break;
    case ZE_RESULT_ERROR_MODULE_BUILD_FAILURE: name = "ZE_RESULT_ERROR_MODULE_BUILD_FAILURE"; break;
    case ZE_RESULT_ERROR_UNSUPPORTED_FEATURE: name = "ZE_RESULT_ERROR_UNSUPPORTED_FEATURE"; break;
    case ZE_RESULT_ERROR_INVALID_ARGUMENT: name = "ZE_RESULT_ERROR_INVALID_ARGUMENT"; break;
    case ZE_RESULT_ERROR_INVALID_KERNEL_NAME: name = "ZE_RESULT_ERROR_INVALID_KERNEL_NAME"; break;
    case ZE_RESULT_ERROR_INVALID_NATIVE_BINARY:
      name = "ZE_RESULT_ERROR_INVALID_NATIVE_BINARY";
      break;
    default: break;
  }
  char code[24];
  std::snprintf(code, sizeof(code), " (0x%08x)", static_cast<unsigned>(r));
  return std::string(name) + code;
}

}  // namespace tessera::level_zero
