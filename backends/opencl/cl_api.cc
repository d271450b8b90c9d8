// dlopen of the OpenCL ICD loader and the error-name table.
#include "backends/opencl/cl_api.h"

#include <dlfcn.h>

#include <mutex>

namespace tessera::opencl {

const ClApi* LoadClApi(std::string* why) {
  static ClApi api;
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    // The loader (ocl-icd or Khronos) dispatches to the vendor drivers in /etc/OpenCL/vendors;
    // RTLD_LOCAL keeps its symbols out of the host's namespace. Never unloaded: drivers register
    // atexit handlers.
    void* h = dlopen("libOpenCL.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) h = dlopen("libOpenCL.so", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      const char* e = dlerror();
      error = std::string(
                  "the OpenCL ICD loader libOpenCL.so.1 is not installed (e.g. Debian's "
                  "ocl-icd-libopencl1): ") +
              (e != nullptr ? e : "dlopen failed");
      return;
    }
#define TSR_CL_RESOLVE(name)                                                     \
  api.name = reinterpret_cast<decltype(&::name)>(dlsym(h, #name));               \
  if (api.name == nullptr) {                                                     \
    error = "libOpenCL.so.1 lacks " #name " (an OpenCL 1.2 loader is required)"; \
    return;                                                                      \
  }
    TSR_CL_FUNCTIONS(TSR_CL_RESOLVE)
#undef TSR_CL_RESOLVE
    api.clCreateProgramWithIL =
        reinterpret_cast<decltype(&::clCreateProgramWithIL)>(dlsym(h, "clCreateProgramWithIL"));
  });
  if (!error.empty()) {
    if (why != nullptr) *why = error;
    return nullptr;
  }
  return &api;
}

std::string ClErrorName(cl_int e) {
  const char* name = "CL_ERROR";
  switch (e) {
    case CL_DEVICE_NOT_FOUND: name = "CL_DEVICE_NOT_FOUND"; break;
    case CL_DEVICE_NOT_AVAILABLE: name = "CL_DEVICE_NOT_AVAILABLE"; break;
    case CL_COMPILER_NOT_AVAILABLE: name = "CL_COMPILER_NOT_AVAILABLE"; break;
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: name = "CL_MEM_OBJECT_ALLOCATION_FAILURE"; break;
    case CL_OUT_OF_RESOURCES: name = "CL_OUT_OF_RESOURCES"; break;
    case CL_OUT_OF_HOST_MEMORY: name = "CL_OUT_OF_HOST_MEMORY"; break;
    case CL_BUILD_PROGRAM_FAILURE: name = "CL_BUILD_PROGRAM_FAILURE"; break;
    case CL_INVALID_VALUE: name = "CL_INVALID_VALUE"; break;
    case CL_INVALID_PLATFORM: name = "CL_INVALID_PLATFORM"; break;
    case CL_INVALID_DEVICE: name = "CL_INVALID_DEVICE"; break;
    case CL_INVALID_BINARY: name = "CL_INVALID_BINARY"; break;
    case CL_INVALID_BUILD_OPTIONS: name = "CL_INVALID_BUILD_OPTIONS"; break;
    case CL_INVALID_PROGRAM: name = "CL_INVALID_PROGRAM"; break;
    case CL_INVALID_KERNEL_NAME: name = "CL_INVALID_KERNEL_NAME"; break;
    case CL_INVALID_KERNEL_ARGS: name = "CL_INVALID_KERNEL_ARGS"; break;
    case CL_INVALID_ARG_SIZE: name = "CL_INVALID_ARG_SIZE"; break;
    case CL_INVALID_WORK_GROUP_SIZE: name = "CL_INVALID_WORK_GROUP_SIZE"; break;
    case CL_INVALID_BUFFER_SIZE: name = "CL_INVALID_BUFFER_SIZE"; break;
    case CL_INVALID_MEM_OBJECT: name = "CL_INVALID_MEM_OBJECT"; break;
    case CL_INVALID_OPERATION: name = "CL_INVALID_OPERATION"; break;
    case CL_INVALID_GLOBAL_WORK_SIZE: name = "CL_INVALID_GLOBAL_WORK_SIZE"; break;
    case -1001: name = "CL_PLATFORM_NOT_FOUND_KHR"; break;
    default: break;
  }
  return std::string(name) + " (" + std::to_string(e) + ")";
}

}  // namespace tessera::opencl
