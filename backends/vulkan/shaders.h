// The SPIR-V of every compute shader, compiled from shaders/*.comp by glslc at build time and
// embedded in the plugin (no shader files to ship or find at run time).
#ifndef TESSERA_BACKENDS_VULKAN_SHADERS_H_
#define TESSERA_BACKENDS_VULKAN_SHADERS_H_

#include <cstddef>
#include <cstdint>

#include "backends/vulkan/ops.h"

namespace tessera::vulkan {

struct SpirvModule {
  const uint32_t* code;
  size_t words;
  const char* name;
};

const SpirvModule& GetSpirv(Shader shader);

}  // namespace tessera::vulkan

#endif  // TESSERA_BACKENDS_VULKAN_SHADERS_H_
