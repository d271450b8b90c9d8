// The Vulkan entry points the backend uses, loaded at run time from libvulkan.so.1 (dlopen): the
// plugin has no link-time dependency on the Vulkan loader, so a machine without one gets a
// reported absence ("libvulkan.so.1 not found") instead of a plugin that fails to load.
#ifndef TESSERA_BACKENDS_VULKAN_VK_API_H_
#define TESSERA_BACKENDS_VULKAN_VK_API_H_

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan_core.h>

#include <string>

namespace tessera::vulkan {

#define TSR_VK_GLOBAL_FNS(X) \
  X(vkCreateInstance)        \
  X(vkEnumerateInstanceVersion)

#define TSR_VK_INSTANCE_FNS(X)                \
  X(vkDestroyInstance)                        \
  X(vkEnumeratePhysicalDevices)               \
  X(vkGetPhysicalDeviceProperties2)           \
  X(vkGetPhysicalDeviceFeatures2)             \
  X(vkGetPhysicalDeviceMemoryProperties)      \
  X(vkGetPhysicalDeviceQueueFamilyProperties) \
  X(vkEnumerateDeviceExtensionProperties)     \
  X(vkCreateDevice)                           \
  X(vkGetDeviceProcAddr)

#define TSR_VK_DEVICE_FNS(X)       \
  X(vkDestroyDevice)               \
  X(vkGetDeviceQueue)              \
  X(vkCreateBuffer)                \
  X(vkDestroyBuffer)               \
  X(vkGetBufferMemoryRequirements) \
  X(vkAllocateMemory)              \
  X(vkFreeMemory)                  \
  X(vkBindBufferMemory)            \
  X(vkMapMemory)                   \
  X(vkUnmapMemory)                 \
  X(vkGetBufferDeviceAddress)      \
  X(vkCreateShaderModule)          \
  X(vkDestroyShaderModule)         \
  X(vkCreatePipelineLayout)        \
  X(vkDestroyPipelineLayout)       \
  X(vkCreateComputePipelines)      \
  X(vkDestroyPipeline)             \
  X(vkCreateCommandPool)           \
  X(vkDestroyCommandPool)          \
  X(vkAllocateCommandBuffers)      \
  X(vkFreeCommandBuffers)          \
  X(vkBeginCommandBuffer)          \
  X(vkEndCommandBuffer)            \
  X(vkResetCommandBuffer)          \
  X(vkCmdBindPipeline)             \
  X(vkCmdPushConstants)            \
  X(vkCmdDispatch)                 \
  X(vkCmdExecuteCommands)          \
  X(vkCmdPipelineBarrier)          \
  X(vkCmdCopyBuffer)               \
  X(vkCmdUpdateBuffer)             \
  X(vkCmdFillBuffer)               \
  X(vkQueueSubmit)                 \
  X(vkQueueWaitIdle)               \
  X(vkDeviceWaitIdle)              \
  X(vkCreateFence)                 \
  X(vkDestroyFence)                \
  X(vkWaitForFences)               \
  X(vkGetFenceStatus)              \
  X(vkResetFences)                 \
  X(vkCreateQueryPool)             \
  X(vkDestroyQueryPool)            \
  X(vkCmdResetQueryPool)           \
  X(vkCmdWriteTimestamp)           \
  X(vkGetQueryPoolResults)

// One table per process: instance- and device-level pointers are fetched through the loader's
// trampolines (valid for every instance/device the loader serves).
struct VkApi {
#define TSR_VK_DECLARE(name) PFN_##name name = nullptr;
  PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr = nullptr;
  TSR_VK_GLOBAL_FNS(TSR_VK_DECLARE)
  TSR_VK_INSTANCE_FNS(TSR_VK_DECLARE)
  TSR_VK_DEVICE_FNS(TSR_VK_DECLARE)
#undef TSR_VK_DECLARE
};

// Opens the loader (once) and fills the global entry points; "" on success, else why not.
std::string LoadVulkanLoader(VkApi* api);
// Fills the instance-level and device-level entry points for `instance`; "" or why not.
std::string LoadInstanceFunctions(VkApi* api, VkInstance instance);

// "VK_ERROR_OUT_OF_DEVICE_MEMORY", ...
const char* VkResultName(VkResult r);

}  // namespace tessera::vulkan

#endif  // TESSERA_BACKENDS_VULKAN_VK_API_H_
