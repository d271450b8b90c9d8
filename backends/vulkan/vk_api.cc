// dlopen of the Vulkan loader and the entry-point table.
#include "backends/vulkan/vk_api.h"

#include <dlfcn.h>

#include <string>

namespace tessera::vulkan {
namespace {

// Where the plugin itself lives: a relocatable bundle puts libvulkan.so.1 in <prefix>/lib next
// to the plugin's <prefix>/lib/tessera/backends (ci/bundle.sh). dlopen already searches the
// plugin's RUNPATH ($ORIGIN/../..); this is the fallback for hosts that ignore it.
std::string PluginDir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&PluginDir), &info) == 0 || info.dli_fname == nullptr)
    return "";
  std::string path = info.dli_fname;
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

}  // namespace

std::string LoadVulkanLoader(VkApi* api) {
  // Kept open for the life of the process: the loader holds ICD state that must not be
  // unloaded under a live instance, and reopening is cheap (refcounted).
  static void* handle = nullptr;
  static std::string error;
  if (handle == nullptr && error.empty()) {
    handle = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = dlerror();
      const std::string first = why != nullptr ? why : "dlopen failed";
      const std::string dir = PluginDir();
      if (!dir.empty())
        handle = dlopen((dir + "/../../libvulkan.so.1").c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle == nullptr) error = "libvulkan.so.1 (the Vulkan loader) not found: " + first;
    }
  }
  if (handle == nullptr) return error;
  api->vkGetInstanceProcAddr =
      reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(handle, "vkGetInstanceProcAddr"));
  if (api->vkGetInstanceProcAddr == nullptr)
    return "libvulkan.so.1 exports no vkGetInstanceProcAddr";
#define TSR_VK_LOAD_GLOBAL(name) \
  api->name = reinterpret_cast<PFN_##name>(api->vkGetInstanceProcAddr(nullptr, #name));
  TSR_VK_GLOBAL_FNS(TSR_VK_LOAD_GLOBAL)
#undef TSR_VK_LOAD_GLOBAL
  if (api->vkCreateInstance == nullptr) return "the Vulkan loader has no vkCreateInstance";
  return "";
}

std::string LoadInstanceFunctions(VkApi* api, VkInstance instance) {
#define TSR_VK_LOAD_INSTANCE(name)                                                       \
  api->name = reinterpret_cast<PFN_##name>(api->vkGetInstanceProcAddr(instance, #name)); \
  if (api->name == nullptr) return "the Vulkan loader has no " #name;
  TSR_VK_INSTANCE_FNS(TSR_VK_LOAD_INSTANCE)
  TSR_VK_DEVICE_FNS(TSR_VK_LOAD_INSTANCE)
#undef TSR_VK_LOAD_INSTANCE
  return "";
}

const char* VkResultName(VkResult r) {
  switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    default: return "VkResult";
  }
}

}  // namespace tessera::vulkan
