// The SPIR-V the build makes from the OpenCL C kernels (what the Level Zero plugin loads), checked
// here without Level Zero: its header and entry points, and, on every OpenCL device that accepts
// SPIR-V (CL_DEVICE_IL_VERSION), built with clCreateProgramWithIL and run on a small ADD against
// the host. Debian 12's pocl is built without SPIR-V support: there the second test skips and
// says so.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "backends/opencl/cl_api.h"
#include "backends/opencl/kernel_source.h"
#include "backends/opencl/kernels/params.h"
#include "tessera/plugin_api.h"

namespace tessera::opencl {
namespace {

TEST(SpirvModule, IsWellFormed) {
  ASSERT_GT(gpu::kKernelSpirvSize, 20u);
  ASSERT_EQ(gpu::kKernelSpirvSize % 4, 0u);
  uint32_t magic;
  std::memcpy(&magic, gpu::kKernelSpirv, 4);
  EXPECT_EQ(magic, 0x07230203u);
  const std::string bytes(reinterpret_cast<const char*>(gpu::kKernelSpirv), gpu::kKernelSpirvSize);
  for (int k = 0; k < static_cast<int>(gpu::Kernel::kCount); ++k) {
    const char* name = gpu::KernelName(static_cast<gpu::Kernel>(k));
    EXPECT_NE(bytes.find(std::string(name) + '\0'), std::string::npos) << name;
  }
}

struct IlDevice {
  cl_platform_id platform;
  cl_device_id device;
  std::string name;
};

std::string DeviceString(const ClApi& cl, cl_device_id d, cl_device_info what) {
  size_t n = 0;
  if (cl.clGetDeviceInfo(d, what, 0, nullptr, &n) != CL_SUCCESS || n == 0) return "";
  std::string s(n, '\0');
  cl.clGetDeviceInfo(d, what, n, s.data(), nullptr);
  s.resize(std::strlen(s.c_str()));
  return s;
}

// Devices whose IL versions name SPIR-V; `seen` lists every device and its IL support.
std::vector<IlDevice> SpirvDevices(const ClApi& cl, std::string* seen) {
  std::vector<IlDevice> out;
  cl_uint np = 0;
  if (cl.clGetPlatformIDs(0, nullptr, &np) != CL_SUCCESS || np == 0) return out;
  std::vector<cl_platform_id> ps(np);
  cl.clGetPlatformIDs(np, ps.data(), nullptr);
  for (cl_platform_id p : ps) {
    cl_uint nd = 0;
    if (cl.clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, nullptr, &nd) != CL_SUCCESS) continue;
    std::vector<cl_device_id> ds(nd);
    cl.clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, nd, ds.data(), nullptr);
    for (cl_device_id d : ds) {
      const std::string name = DeviceString(cl, d, CL_DEVICE_NAME);
      const std::string il = DeviceString(cl, d, CL_DEVICE_IL_VERSION);
      *seen += "\n  " + name + ": IL \"" + il + "\"";
      if (il.find("SPIR-V") != std::string::npos) out.push_back({p, d, name});
    }
  }
  return out;
}

// Builds the SPIR-V for `d` and runs tsr_elementwise (ADD) on 37 elements.
void RunAdd(const ClApi& cl, const IlDevice& d) {
  cl_int e = CL_SUCCESS;
  const cl_context_properties props[] = {CL_CONTEXT_PLATFORM,
                                         reinterpret_cast<cl_context_properties>(d.platform), 0};
  cl_context ctx = cl.clCreateContext(props, 1, &d.device, nullptr, nullptr, &e);
  ASSERT_EQ(e, CL_SUCCESS);
  cl_command_queue q = cl.clCreateCommandQueue(ctx, d.device, 0, &e);
  ASSERT_EQ(e, CL_SUCCESS);
  cl_program prog = cl.clCreateProgramWithIL(ctx, gpu::kKernelSpirv, gpu::kKernelSpirvSize, &e);
  ASSERT_EQ(e, CL_SUCCESS) << ClErrorName(e);
  ASSERT_EQ(cl.clBuildProgram(prog, 1, &d.device, "", nullptr, nullptr), CL_SUCCESS);
  for (int k = 0; k < static_cast<int>(gpu::Kernel::kCount); ++k) {
    cl_kernel kern = cl.clCreateKernel(prog, gpu::KernelName(static_cast<gpu::Kernel>(k)), &e);
    ASSERT_EQ(e, CL_SUCCESS) << gpu::KernelName(static_cast<gpu::Kernel>(k));
    cl.clReleaseKernel(kern);
  }
  constexpr int kN = 37;
  std::vector<float> a(kN), b(kN), out(kN, -1.0f);
  for (int i = 0; i < kN; ++i) a[i] = 0.5f * i, b[i] = 3.0f - i;
  cl_mem ma =
      cl.clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, 4 * kN, a.data(), &e);
  cl_mem mb =
      cl.clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, 4 * kN, b.data(), &e);
  cl_mem mo = cl.clCreateBuffer(ctx, CL_MEM_READ_WRITE, 4 * kN, nullptr, &e);
  TsrEltParams p{};
  p.op = TSR_OP_ADD;
  p.has_b = 1;
  p.contiguous = 1;
  p.b_period = kN;
  p.walk.numel = kN;
  cl_kernel kern = cl.clCreateKernel(prog, "tsr_elementwise", &e);
  cl.clSetKernelArg(kern, 0, sizeof(cl_mem), &ma);
  cl.clSetKernelArg(kern, 1, sizeof(cl_mem), &mb);
  cl.clSetKernelArg(kern, 2, sizeof(cl_mem), &mo);
  cl.clSetKernelArg(kern, 3, sizeof(p), &p);
  const size_t global = 64, local = 64;
  ASSERT_EQ(cl.clEnqueueNDRangeKernel(q, kern, 1, nullptr, &global, &local, 0, nullptr, nullptr),
            CL_SUCCESS);
  ASSERT_EQ(cl.clEnqueueReadBuffer(q, mo, CL_TRUE, 0, 4 * kN, out.data(), 0, nullptr, nullptr),
            CL_SUCCESS);
  for (int i = 0; i < kN; ++i) EXPECT_EQ(out[i], a[i] + b[i]) << i;
  cl.clReleaseKernel(kern);
  cl.clReleaseMemObject(ma);
  cl.clReleaseMemObject(mb);
  cl.clReleaseMemObject(mo);
  cl.clReleaseProgram(prog);
  cl.clReleaseCommandQueue(q);
  cl.clReleaseContext(ctx);
}

TEST(SpirvThroughOpencl, RunsWhereIlIsSupported) {
  std::string why;
  const ClApi* cl = LoadClApi(&why);
  if (cl == nullptr) GTEST_SKIP() << why;
  if (cl->clCreateProgramWithIL == nullptr)
    GTEST_SKIP() << "the OpenCL ICD loader predates 2.1 (no clCreateProgramWithIL)";
  std::string seen;
  const std::vector<IlDevice> devices = SpirvDevices(*cl, &seen);
  if (devices.empty()) {
    GTEST_SKIP() << "no OpenCL device accepts SPIR-V (CL_DEVICE_IL_VERSION); devices:"
                 << (seen.empty() ? std::string(" none") : seen);
  }
  for (const IlDevice& d : devices) {
    SCOPED_TRACE(d.name);
    RunAdd(*cl, d);
  }
}

}  // namespace
}  // namespace tessera::opencl
