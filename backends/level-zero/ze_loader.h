// The Level Zero entry points the plugin uses, resolved at run time from libze_loader.so.1 with
// dlopen: nothing links Level Zero, so a machine without the loader still loads the plugin, which
// then reports why it has no device. Headers: Debian's libze-dev (API 1.4).
#ifndef TESSERA_BACKENDS_LEVEL_ZERO_ZE_LOADER_H_
#define TESSERA_BACKENDS_LEVEL_ZERO_ZE_LOADER_H_

#include <level_zero/ze_api.h>

#include <string>

namespace tessera::level_zero {

#define TSR_ZE_FUNCTIONS(X)          \
  X(zeInit)                          \
  X(zeDriverGet)                     \
  X(zeDriverGetApiVersion)           \
  X(zeDriverGetProperties)           \
  X(zeDeviceGet)                     \
  X(zeDeviceGetProperties)           \
  X(zeDeviceGetMemoryProperties)     \
  X(zeContextCreate)                 \
  X(zeContextDestroy)                \
  X(zeCommandListCreateImmediate)    \
  X(zeCommandListDestroy)            \
  X(zeCommandListAppendMemoryCopy)   \
  X(zeCommandListAppendLaunchKernel) \
  X(zeMemAllocDevice)                \
  X(zeMemFree)                       \
  X(zeModuleCreate)                  \
  X(zeModuleDestroy)                 \
  X(zeModuleBuildLogGetString)       \
  X(zeModuleBuildLogDestroy)         \
  X(zeModuleGetNativeBinary)         \
  X(zeKernelCreate)                  \
  X(zeKernelDestroy)                 \
  X(zeKernelSetGroupSize)            \
  X(zeKernelSetArgumentValue)

struct ZeApi {
#define TSR_ZE_MEMBER(name) decltype(&::name) name = nullptr;
  TSR_ZE_FUNCTIONS(TSR_ZE_MEMBER)
#undef TSR_ZE_MEMBER
};

// The loader's table, loaded once (thread-safe); null with *why filled when libze_loader.so.1 is
// missing or lacks an entry point.
const ZeApi* LoadZeApi(std::string* why);

// "ZE_RESULT_ERROR_UNINITIALIZED (0x78000001)".
std::string ZeResultName(ze_result_t r);

}  // namespace tessera::level_zero

#endif  // TESSERA_BACKENDS_LEVEL_ZERO_ZE_LOADER_H_
