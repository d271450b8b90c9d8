// The OpenCL entry points the plugin uses, resolved at run time from the ICD loader
// (libOpenCL.so.1) with dlopen: nothing links OpenCL, so a machine without the loader still loads
// the plugin, which then reports why it has no device instead of failing to load.
#ifndef TESSERA_BACKENDS_OPENCL_CL_API_H_
#define TESSERA_BACKENDS_OPENCL_CL_API_H_

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 300
#endif
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>

#include <string>

namespace tessera::opencl {

#define TSR_CL_FUNCTIONS(X)      \
  X(clGetPlatformIDs)            \
  X(clGetPlatformInfo)           \
  X(clGetDeviceIDs)              \
  X(clGetDeviceInfo)             \
  X(clCreateContext)             \
  X(clReleaseContext)            \
  X(clCreateCommandQueue)        \
  X(clReleaseCommandQueue)       \
  X(clCreateBuffer)              \
  X(clReleaseMemObject)          \
  X(clEnqueueWriteBuffer)        \
  X(clEnqueueReadBuffer)         \
  X(clEnqueueCopyBuffer)         \
  X(clEnqueueFillBuffer)         \
  X(clCreateProgramWithSource)   \
  X(clCreateProgramWithBinary)   \
  X(clBuildProgram)              \
  X(clGetProgramInfo)            \
  X(clGetProgramBuildInfo)       \
  X(clReleaseProgram)            \
  X(clCreateKernel)              \
  X(clReleaseKernel)             \
  X(clGetKernelWorkGroupInfo)    \
  X(clSetKernelArg)              \
  X(clEnqueueNDRangeKernel)      \
  X(clEnqueueMarkerWithWaitList) \
  X(clFlush)                     \
  X(clFinish)                    \
  X(clWaitForEvents)             \
  X(clReleaseEvent)

struct ClApi {
#define TSR_CL_MEMBER(name) decltype(&::name) name = nullptr;
  TSR_CL_FUNCTIONS(TSR_CL_MEMBER)
#undef TSR_CL_MEMBER
  // OpenCL 2.1+: NULL where the loader is older (then SPIR-V cannot be loaded).
  decltype(&::clCreateProgramWithIL) clCreateProgramWithIL = nullptr;
};

// The loader's table, loaded once (thread-safe); null with *why filled when libOpenCL.so.1 is
// missing or lacks an entry point.
const ClApi* LoadClApi(std::string* why);

// "CL_OUT_OF_RESOURCES (-5)".
std::string ClErrorName(cl_int e);

}  // namespace tessera::opencl

#endif  // TESSERA_BACKENDS_OPENCL_CL_API_H_
