// The OpenCL backend's C ABI: entry points, function table, context (platform/device discovery
// and the reason when there is none), devices (one in-order queue and one built program each),
// device buffers, events, supports_op and execute. The op layer (gpu_ops.h) is shared with the
// Level Zero plugin; this file only speaks OpenCL.
//
// The ICD loader is opened at run time (cl_api.h): the engine and the core never link OpenCL.
//
// Device selection. By default only GPU and accelerator devices are offered: a CPU OpenCL driver
// (pocl) would otherwise rank ahead of the native cpu backend, which is much faster on the same
// cores. device_types=all (option) or TESSERA_OPENCL_DEVICE_TYPES=all (environment; how CI runs
// the suites on pocl) offers CPU devices too.
//
// Kernels. One program holds every kernel (kernels/tessera_kernels.cl), built once per device at
// device_open. The program binary is cached under cache_dir (default
// $XDG_CACHE_HOME/tessera/opencl), keyed by platform, device, driver, build options, input hash
// and plugin version, so a second start skips the OpenCL C front end. program=spirv (option, or
// TESSERA_OPENCL_PROGRAM=spirv) builds from the SPIR-V the Level Zero plugin ships instead
// (through cl_khr_spir bitcode on drivers without SPIR-V input): CI runs the conformance suite
// that way on pocl to check the SPIR-V kernels without Intel hardware.
//
// Execution model. In-order queue; execute enqueues and flushes but never waits: every later call
// that exposes memory (download, synchronize, event_wait) is ordered behind it. Uploads and
// downloads without `done` complete before returning. Kernels that see invalid data (ids, slots,
// sequence lengths, block tables) skip it and set a bit in a device error word, which synchronous
// downloads and device_synchronize read and report.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backends/common/status_abi.h"
#include "backends/opencl/cl_api.h"
#include "backends/opencl/gpu_ops.h"
#include "backends/opencl/kernel_source.h"
#include "backends/opencl/kernels/params.h"
#include "backends/opencl/program_cache.h"
#include "tessera/backend/abi.h"
#include "tessera/backend/device_ctx.h"
#include "tessera/backend/node.h"
#include "tessera/core/status.h"
#include "tessera/plugin_api.h"

#ifndef TESSERA_OPENCL_PLUGIN_VERSION
#define TESSERA_OPENCL_PLUGIN_VERSION "0.1.0"
#endif

namespace tessera::opencl {
namespace {

// Where a device's program comes from (the `program` option).
enum class ProgramKind {
  kSource,       // the OpenCL C source, compiled by the driver (default)
  kSpirvIl,      // program=spirv on a device that takes SPIR-V (clCreateProgramWithIL)
  kSpirBitcode,  // program=spirv on a cl_khr_spir device: the SPIR-V translated back to SPIR
};

struct DeviceInfo {
  ProgramKind program = ProgramKind::kSource;
  cl_platform_id platform = nullptr;
  cl_device_id id = nullptr;
  std::string name, description, compat;
  tsr_device_kind kind = TSR_DEVICE_OTHER;
  int32_t compute_units = 0;
  uint64_t memory = 0, max_alloc = 0;
  bool exact_divide = false;  // CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT
};

class ClQueue;

}  // namespace
}  // namespace tessera::opencl

struct tsr_plugin_ctx {
  const tessera::opencl::ClApi* cl = nullptr;
  std::string absence;
  std::vector<tessera::opencl::DeviceInfo> devices;
  std::string cache_dir;
};

struct tsr_device {
  tsr_plugin_ctx* ctx = nullptr;
  const tessera::opencl::ClApi* cl = nullptr;
  tessera::opencl::DeviceInfo info;
  cl_context context = nullptr;
  cl_command_queue queue = nullptr;
  cl_program program = nullptr;
  cl_kernel kernels[static_cast<int>(tessera::gpu::Kernel::kCount)] = {};
  size_t local[static_cast<int>(tessera::gpu::Kernel::kCount)] = {};
  cl_mem err_word = nullptr;  // int, TSR_K_ERR_* bits
  cl_mem dummy = nullptr;     // bound to unused pointer arguments
  std::unique_ptr<tessera::opencl::ClQueue> runner;
};

struct tsr_buffer {
  tsr_device* dev = nullptr;
  cl_mem mem = nullptr;
  uint64_t size = 0;
};

struct tsr_event {
  tsr_device* dev = nullptr;
  cl_event ev = nullptr;  // the last recorded completion; null = never recorded
};

namespace tessera::opencl {
namespace {

constexpr char kBackend[] = "opencl backend";
constexpr uint64_t kAlignment = 256;
constexpr size_t kLocalSize = 64;  // one local size for every launch: pocl compiles one per size

using backend::CopyOut;
using backend::Fail;
using backend::Log;
template <auto F>
using Guarded = backend::Guarded<kBackend, F>;

tsr_status FromStatus(const Status& s, tsr_error* err) {
  return backend::FromStatus(kBackend, s, err);
}

Status ClStatus(cl_int e, const char* what) {
  if (e == CL_SUCCESS) return OkStatus();
  if (e == CL_MEM_OBJECT_ALLOCATION_FAILURE || e == CL_OUT_OF_HOST_MEMORY)
    return ResourceExhausted(std::string(what) + ": " + ClErrorName(e));
  return DeviceError(std::string(what) + ": " + ClErrorName(e));
}

tsr_status FromCl(cl_int e, const char* what, tsr_error* err) {
  return FromStatus(ClStatus(e, what), err);
}

// The gpu::Queue over one device's OpenCL queue.
class ClQueue final : public gpu::Queue {
 public:
  explicit ClQueue(tsr_device* dev) : dev_(dev) {}

  Status Launch(gpu::Kernel k, int64_t items, const gpu::KernelArg* args, int n_args) override {
    const int ki = static_cast<int>(k);
    cl_kernel kernel = dev_->kernels[ki];
    const ClApi& cl = *dev_->cl;
    for (int i = 0; i < n_args; ++i) {
      cl_int e;
      if (args[i].is_buffer) {
        const auto* b = static_cast<const tsr_buffer*>(args[i].buffer);
        cl_mem m = b != nullptr ? b->mem : dev_->dummy;
        e = cl.clSetKernelArg(kernel, static_cast<cl_uint>(i), sizeof(cl_mem), &m);
      } else {
        e = cl.clSetKernelArg(kernel, static_cast<cl_uint>(i), args[i].size, args[i].value);
      }
      if (e != CL_SUCCESS) return ClStatus(e, gpu::KernelName(k));
    }
    const size_t local = dev_->local[ki];
    const size_t global = (static_cast<size_t>(items) + local - 1) / local * local;
    return ClStatus(cl.clEnqueueNDRangeKernel(dev_->queue, kernel, 1, nullptr, &global, &local, 0,
                                              nullptr, nullptr),
                    gpu::KernelName(k));
  }

  Status Copy(const void* src, uint64_t src_off, const void* dst, uint64_t dst_off,
              uint64_t size) override {
    if (size == 0) return OkStatus();
    const auto* s = static_cast<const tsr_buffer*>(src);
    const auto* d = static_cast<const tsr_buffer*>(dst);
    return ClStatus(dev_->cl->clEnqueueCopyBuffer(dev_->queue, s->mem, d->mem, src_off, dst_off,
                                                  size, 0, nullptr, nullptr),
                    "copy");
  }

  const void* ErrorWord() override { return &err_buffer_; }

  void Init() {
    err_buffer_.dev = dev_;
    err_buffer_.mem = dev_->err_word;
    err_buffer_.size = sizeof(cl_int);
  }

 private:
  tsr_device* dev_;
  tsr_buffer err_buffer_;  // a view of dev_->err_word as a buffer handle
};

// ---------------------------------------------------------------------------------------------
// Context: platform and device discovery
// ---------------------------------------------------------------------------------------------

std::string PlatformString(const ClApi& cl, cl_platform_id p, cl_platform_info what) {
  size_t n = 0;
  if (cl.clGetPlatformInfo(p, what, 0, nullptr, &n) != CL_SUCCESS || n == 0) return "";
  std::string s(n, '\0');
  cl.clGetPlatformInfo(p, what, n, s.data(), nullptr);
  s.resize(std::strlen(s.c_str()));
  return s;
}

std::string DeviceString(const ClApi& cl, cl_device_id d, cl_device_info what) {
  size_t n = 0;
  if (cl.clGetDeviceInfo(d, what, 0, nullptr, &n) != CL_SUCCESS || n == 0) return "";
  std::string s(n, '\0');
  cl.clGetDeviceInfo(d, what, n, s.data(), nullptr);
  s.resize(std::strlen(s.c_str()));
  return s;
}

template <typename T>
T DeviceValue(const ClApi& cl, cl_device_id d, cl_device_info what) {
  T v{};
  cl.clGetDeviceInfo(d, what, sizeof(T), &v, nullptr);
  return v;
}

// "OpenCL 1.2 ..." -> 102; 0 when unparsable.
int ParseVersion(const std::string& s, const char* prefix) {
  int major = 0, minor = 0;
  if (s.rfind(prefix, 0) != 0) return 0;
  if (std::sscanf(s.c_str() + std::strlen(prefix), "%d.%d", &major, &minor) != 2) return 0;
  return major * 100 + minor;
}

// Why `d` cannot run the kernels ("" when it can).
std::string Unusable(const ClApi& cl, cl_device_id d) {
  if (!DeviceValue<cl_bool>(cl, d, CL_DEVICE_AVAILABLE)) return "not available";
  if (!DeviceValue<cl_bool>(cl, d, CL_DEVICE_COMPILER_AVAILABLE)) return "no OpenCL C compiler";
  const std::string ver = DeviceString(cl, d, CL_DEVICE_VERSION);
  if (ParseVersion(ver, "OpenCL ") < 102) return "needs OpenCL 1.2, device is \"" + ver + "\"";
  return "";
}

DeviceInfo Describe(const ClApi& cl, cl_platform_id p, cl_device_id d, cl_device_type type) {
  DeviceInfo info;
  info.platform = p;
  info.id = d;
  info.name = DeviceString(cl, d, CL_DEVICE_NAME);
  const std::string platform = PlatformString(cl, p, CL_PLATFORM_NAME);
  const std::string version = DeviceString(cl, d, CL_DEVICE_VERSION);
  const std::string driver = DeviceString(cl, d, CL_DRIVER_VERSION);
  info.compute_units =
      static_cast<int32_t>(DeviceValue<cl_uint>(cl, d, CL_DEVICE_MAX_COMPUTE_UNITS));
  info.memory = DeviceValue<cl_ulong>(cl, d, CL_DEVICE_GLOBAL_MEM_SIZE);
  info.max_alloc = DeviceValue<cl_ulong>(cl, d, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
  info.exact_divide = (DeviceValue<cl_device_fp_config>(cl, d, CL_DEVICE_SINGLE_FP_CONFIG) &
                       CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) != 0;
  const bool unified = DeviceValue<cl_bool>(cl, d, CL_DEVICE_HOST_UNIFIED_MEMORY) != 0;
  if (type & CL_DEVICE_TYPE_GPU) {
    info.kind = unified ? TSR_DEVICE_GPU_INTEGRATED : TSR_DEVICE_GPU_DISCRETE;
  } else if (type & CL_DEVICE_TYPE_CPU) {
    info.kind = TSR_DEVICE_CPU;
  } else {
    info.kind = TSR_DEVICE_OTHER;
  }
  info.description = platform + ", " + version + ", driver " + driver + ", " +
                     std::to_string(info.compute_units) + " compute units";
  info.compat = "platform=" + platform + ";" + PlatformString(cl, p, CL_PLATFORM_VERSION) +
                ";device=" + info.name + ";" + version + ";driver=" + driver;
  return info;
}

// Fills ctx->devices; ctx->absence says why when none qualifies.
// How `d` can load the SPIR-V program; "" with *kind set, or why it cannot.
std::string SpirvRoute(const ClApi& cl, cl_device_id d, ProgramKind* kind) {
  if (gpu::kKernelSpirvSize == 0)
    return "this build has no SPIR-V kernels (clang-14 + llvm-spirv-14 were missing)";
  if (cl.clCreateProgramWithIL != nullptr &&
      DeviceString(cl, d, CL_DEVICE_IL_VERSION).find("SPIR-V") != std::string::npos) {
    *kind = ProgramKind::kSpirvIl;
    return "";
  }
  if (DeviceString(cl, d, CL_DEVICE_EXTENSIONS).find("cl_khr_spir") != std::string::npos) {
    *kind = ProgramKind::kSpirBitcode;
    return "";
  }
  return "program=spirv: the device takes neither SPIR-V (CL_DEVICE_IL_VERSION) nor SPIR "
         "(cl_khr_spir)";
}

void DiscoverDevices(tsr_plugin_ctx* ctx, bool want_cpu, bool want_gpu, bool want_spirv) {
  std::string why;
  ctx->cl = LoadClApi(&why);
  if (ctx->cl == nullptr) {
    ctx->absence = why;
    return;
  }
  const ClApi& cl = *ctx->cl;
  cl_uint n_platforms = 0;
  cl_int e = cl.clGetPlatformIDs(0, nullptr, &n_platforms);
  if (e == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (e == CL_SUCCESS && n_platforms == 0)) {
    ctx->absence =
        "no OpenCL platform: the ICD loader found no driver (no .icd file in /etc/OpenCL/vendors "
        "or OCL_ICD_VENDORS; install a GPU's OpenCL driver, or pocl-opencl-icd for the CPU)";
    return;
  }
  if (e != CL_SUCCESS) {
    ctx->absence = "clGetPlatformIDs: " + ClErrorName(e);
    return;
  }
  std::vector<cl_platform_id> platforms(n_platforms);
  cl.clGetPlatformIDs(n_platforms, platforms.data(), nullptr);
  std::string skipped;
  for (cl_platform_id p : platforms) {
    cl_uint n = 0;
    if (cl.clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, nullptr, &n) != CL_SUCCESS || n == 0) continue;
    std::vector<cl_device_id> ids(n);
    cl.clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, n, ids.data(), nullptr);
    for (cl_device_id d : ids) {
      const auto type = DeviceValue<cl_device_type>(cl, d, CL_DEVICE_TYPE);
      const std::string name = DeviceString(cl, d, CL_DEVICE_NAME);
      const bool is_cpu = (type & CL_DEVICE_TYPE_CPU) != 0;
      if (is_cpu ? !want_cpu : !want_gpu) {
        skipped += "; " + name + ": a " + (is_cpu ? "CPU" : "GPU/accelerator") +
                   " device (skipped by device_types; CPU OpenCL devices are offered only with "
                   "device_types=all or cpu, e.g. TESSERA_OPENCL_DEVICE_TYPES=all)";
        continue;
      }
      std::string u = Unusable(cl, d);
      ProgramKind kind = ProgramKind::kSource;
      if (u.empty() && want_spirv) u = SpirvRoute(cl, d, &kind);
      if (!u.empty()) {
        skipped += "; " + name + ": " + u;
        continue;
      }
      ctx->devices.push_back(Describe(cl, p, d, type));
      ctx->devices.back().program = kind;
    }
  }
  if (ctx->devices.empty()) ctx->absence = "no usable OpenCL device" + skipped;
}

tsr_status CreateContext(const tsr_option* options, size_t n_options, tsr_plugin_ctx** out,
                         tsr_error* err) {
  if (tsr_status s = backend::CheckCreateContextArgs(options, n_options, out, err); s != TSR_OK)
    return s;
  auto ctx = std::make_unique<tsr_plugin_ctx>();
  std::string types, cache_dir, program;
  if (const char* e = std::getenv("TESSERA_OPENCL_DEVICE_TYPES")) types = e;
  if (const char* e = std::getenv("TESSERA_OPENCL_PROGRAM")) program = e;
  for (size_t i = 0; i < n_options; ++i) {
    const char* key = options[i].key != nullptr ? options[i].key : "";
    const char* value = options[i].value != nullptr ? options[i].value : "";
    if (std::strcmp(key, "device_types") == 0) {
      types = value;
    } else if (std::strcmp(key, "cache_dir") == 0) {
      cache_dir = value;
    } else if (std::strcmp(key, "program") == 0) {
      program = value;
    } else {
      return Fail(err, TSR_ERR_INVALID_ARGUMENT,
                  std::string("opencl backend: unknown option \"") + key +
                      "\" (known: device_types, cache_dir, program)");
    }
  }
  if (program.empty()) program = "source";
  if (program != "source" && program != "spirv") {
    return Fail(err, TSR_ERR_INVALID_ARGUMENT,
                "opencl backend: program must be source or spirv, got \"" + program + "\"");
  }
  if (types.empty()) types = "gpu";
  if (types != "gpu" && types != "cpu" && types != "all") {
    return Fail(err, TSR_ERR_INVALID_ARGUMENT,
                "opencl backend: device_types must be gpu, cpu or all, got \"" + types + "\"");
  }
  ctx->cache_dir = gpu::ResolveCacheDir(cache_dir, "TESSERA_OPENCL_CACHE_DIR", "opencl");
  DiscoverDevices(ctx.get(), types != "gpu", types != "cpu", program == "spirv");
  backend::LogDiscovery(kBackend, *ctx);
  *out = ctx.release();
  return TSR_OK;
}

constexpr auto DestroyContext = backend::DestroyContext<tsr_plugin_ctx>;
constexpr auto AbsenceReason = backend::AbsenceReason<tsr_plugin_ctx>;
constexpr auto DeviceCount = backend::DeviceCount<tsr_plugin_ctx>;

tsr_status DeviceProps(tsr_plugin_ctx* ctx, int32_t index, tsr_device_props* out, tsr_error* err) {
  if (tsr_status s = backend::CheckDeviceIndex(ctx, index, out, "device_props", "OpenCL", err);
      s != TSR_OK)
    return s;
  const DeviceInfo& d = ctx->devices[static_cast<size_t>(index)];
  tsr_device_props p = backend::KernelDeviceProps(d);
  p.kind = d.kind;
  p.caps = TSR_CAP_F16 | TSR_CAP_BF16 | TSR_CAP_Q8 | TSR_CAP_Q4 | TSR_CAP_ASYNC;
  p.memory_total = d.memory;
  p.compute_units = d.compute_units;
  CopyOut(p, out);
  return TSR_OK;
}

// ---------------------------------------------------------------------------------------------
// Program build and cache
// ---------------------------------------------------------------------------------------------

// What the program is built from and with which options.
struct ProgramInput {
  const void* data = nullptr;
  size_t size = 0;
  std::string options;         // for building from `data`
  std::string cached_options;  // for building a cached device binary
  const char* what = "";
};

ProgramInput InputFor(const DeviceInfo& d) {
  // Exact division/sqrt where the device offers it: the quantizers' scales must match the
  // reference bit for bit. No fast-math: the tolerances assume accurate exp/tanh/erf.
  const std::string exact = d.exact_divide ? "-cl-fp32-correctly-rounded-divide-sqrt" : "";
  ProgramInput in;
  switch (d.program) {
    case ProgramKind::kSource:
      in = {gpu::kKernelSource, gpu::kKernelSourceSize, "-cl-std=CL1.2 " + exact, "", "source"};
      in.cached_options = in.options;
      break;
    case ProgramKind::kSpirvIl:
      in = {gpu::kKernelSpirv, gpu::kKernelSpirvSize, exact, exact, "SPIR-V"};
      break;
    case ProgramKind::kSpirBitcode:
      in = {gpu::kKernelSpirBitcode, gpu::kKernelSpirBitcodeSize, "-x spir -spir-std=1.2 " + exact,
            exact, "SPIR-V (as SPIR bitcode)"};
      break;
  }
  return in;
}

std::string CacheKey(const DeviceInfo& d, const ProgramInput& in) {
  char hash[32];
  std::snprintf(hash, sizeof(hash), "%016llx",
                static_cast<unsigned long long>(gpu::Fnv1a64(in.data, in.size)));
  return "tessera-opencl " TESSERA_OPENCL_PLUGIN_VERSION ";" + d.compat + ";from=" + in.what +
         ";options=" + in.options + ";input=" + hash;
}

std::string BuildLog(const ClApi& cl, cl_program prog, cl_device_id d) {
  size_t n = 0;
  cl.clGetProgramBuildInfo(prog, d, CL_PROGRAM_BUILD_LOG, 0, nullptr, &n);
  std::string s(n, '\0');
  if (n > 0) cl.clGetProgramBuildInfo(prog, d, CL_PROGRAM_BUILD_LOG, n, s.data(), nullptr);
  s.resize(std::strlen(s.c_str()));
  if (s.size() > 2000) s = s.substr(0, 2000) + "...";
  return s;
}

// A program from the cache, built; null when there is no usable entry.
cl_program LoadCachedProgram(tsr_device* dev, const std::string& key, const std::string& options) {
  const ClApi& cl = *dev->cl;
  auto bin = gpu::ReadCacheEntry(dev->ctx->cache_dir, key);
  if (!bin) return nullptr;
  const unsigned char* data = bin->data();
  const size_t size = bin->size();
  cl_int status = CL_SUCCESS, e = CL_SUCCESS;
  cl_program prog =
      cl.clCreateProgramWithBinary(dev->context, 1, &dev->info.id, &size, &data, &status, &e);
  if (e == CL_SUCCESS && status == CL_SUCCESS)
    e = cl.clBuildProgram(prog, 1, &dev->info.id, options.c_str(), nullptr, nullptr);
  if (e != CL_SUCCESS || status != CL_SUCCESS) {
    Log(TSR_LOG_WARN, "opencl backend: cached program " +
                          gpu::CacheEntryPath(dev->ctx->cache_dir, key) + " was rejected (" +
                          ClErrorName(e != CL_SUCCESS ? e : status) + "); rebuilding from source");
    if (prog != nullptr) cl.clReleaseProgram(prog);
    return nullptr;
  }
  return prog;
}

void StoreProgram(tsr_device* dev, cl_program prog, const std::string& key) {
  const ClApi& cl = *dev->cl;
  size_t size = 0;
  if (cl.clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof(size), &size, nullptr) !=
          CL_SUCCESS ||
      size == 0)
    return;
  std::vector<unsigned char> bin(size);
  unsigned char* ptr = bin.data();
  if (cl.clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof(ptr), &ptr, nullptr) != CL_SUCCESS)
    return;
  if (std::string why = gpu::WriteCacheEntry(dev->ctx->cache_dir, key, bin); !why.empty())
    Log(TSR_LOG_WARN, "opencl backend: kernel cache not written: " + why);
}

// A program object for `in` (not yet built).
cl_program CreateProgram(tsr_device* dev, const ProgramInput& in, cl_int* e) {
  const ClApi& cl = *dev->cl;
  switch (dev->info.program) {
    case ProgramKind::kSource: {
      const char* src = static_cast<const char*>(in.data);
      return cl.clCreateProgramWithSource(dev->context, 1, &src, &in.size, e);
    }
    case ProgramKind::kSpirvIl: return cl.clCreateProgramWithIL(dev->context, in.data, in.size, e);
    case ProgramKind::kSpirBitcode: {
      const auto* bin = static_cast<const unsigned char*>(in.data);
      return cl.clCreateProgramWithBinary(dev->context, 1, &dev->info.id, &in.size, &bin, nullptr,
                                          e);
    }
  }
  *e = CL_INVALID_VALUE;
  return nullptr;
}

Status BuildProgram(tsr_device* dev) {
  const ClApi& cl = *dev->cl;
  const ProgramInput in = InputFor(dev->info);
  const std::string key = CacheKey(dev->info, in);
  const auto t0 = std::chrono::steady_clock::now();
  dev->program = LoadCachedProgram(dev, key, in.cached_options);
  const bool cached = dev->program != nullptr;
  if (!cached) {
    cl_int e = CL_SUCCESS;
    dev->program = CreateProgram(dev, in, &e);
    if (e != CL_SUCCESS) return ClStatus(e, "creating the program");
    e = cl.clBuildProgram(dev->program, 1, &dev->info.id, in.options.c_str(), nullptr, nullptr);
    if (e != CL_SUCCESS) {
      return Internal("building the kernels (" + std::string(in.what) + ") for " + dev->info.name +
                      " failed (" + ClErrorName(e) + "):\n" +
                      BuildLog(cl, dev->program, dev->info.id));
    }
    StoreProgram(dev, dev->program, key);
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  Log(TSR_LOG_INFO, "opencl backend: kernels (" + std::string(in.what) + ") for " + dev->info.name +
                        " " + (cached ? "loaded from the cache" : "compiled") + " in " +
                        std::to_string(static_cast<int>(ms)) + " ms" +
                        (dev->ctx->cache_dir.empty() ? std::string(" (cache disabled)")
                                                     : " (" + dev->ctx->cache_dir + ")"));
  for (int k = 0; k < static_cast<int>(gpu::Kernel::kCount); ++k) {
    cl_int e = CL_SUCCESS;
    const char* name = gpu::KernelName(static_cast<gpu::Kernel>(k));
    dev->kernels[k] = cl.clCreateKernel(dev->program, name, &e);
    if (e != CL_SUCCESS) return ClStatus(e, name);
    size_t max_wg = kLocalSize;
    cl.clGetKernelWorkGroupInfo(dev->kernels[k], dev->info.id, CL_KERNEL_WORK_GROUP_SIZE,
                                sizeof(max_wg), &max_wg, nullptr);
    dev->local[k] = std::max<size_t>(1, std::min(kLocalSize, max_wg));
  }
  return OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------------

void DeviceClose(tsr_device* dev) {
  if (dev == nullptr) return;
  const ClApi* cl = dev->cl;
  if (cl != nullptr) {
    if (dev->queue != nullptr) cl->clFinish(dev->queue);
    for (cl_kernel k : dev->kernels)
      if (k != nullptr) cl->clReleaseKernel(k);
    if (dev->program != nullptr) cl->clReleaseProgram(dev->program);
    if (dev->err_word != nullptr) cl->clReleaseMemObject(dev->err_word);
    if (dev->dummy != nullptr) cl->clReleaseMemObject(dev->dummy);
    if (dev->queue != nullptr) cl->clReleaseCommandQueue(dev->queue);
    if (dev->context != nullptr) cl->clReleaseContext(dev->context);
  }
  delete dev;
}

Status OpenDevice(tsr_device* dev) {
  const ClApi& cl = *dev->cl;
  cl_int e = CL_SUCCESS;
  const cl_context_properties props[] = {
      CL_CONTEXT_PLATFORM, reinterpret_cast<cl_context_properties>(dev->info.platform), 0};
  dev->context = cl.clCreateContext(props, 1, &dev->info.id, nullptr, nullptr, &e);
  TSR_RETURN_IF_ERROR(ClStatus(e, "clCreateContext"));
  dev->queue = cl.clCreateCommandQueue(dev->context, dev->info.id, 0, &e);
  TSR_RETURN_IF_ERROR(ClStatus(e, "clCreateCommandQueue"));
  dev->err_word = cl.clCreateBuffer(dev->context, CL_MEM_READ_WRITE, sizeof(cl_int), nullptr, &e);
  TSR_RETURN_IF_ERROR(ClStatus(e, "error word"));
  dev->dummy = cl.clCreateBuffer(dev->context, CL_MEM_READ_WRITE, 64, nullptr, &e);
  TSR_RETURN_IF_ERROR(ClStatus(e, "dummy buffer"));
  const cl_int zero = 0;
  TSR_RETURN_IF_ERROR(ClStatus(cl.clEnqueueWriteBuffer(dev->queue, dev->err_word, CL_TRUE, 0,
                                                       sizeof(zero), &zero, 0, nullptr, nullptr),
                               "error word"));
  TSR_RETURN_IF_ERROR(BuildProgram(dev));
  dev->runner = std::make_unique<ClQueue>(dev);
  dev->runner->Init();
  return OkStatus();
}

tsr_status DeviceOpen(tsr_plugin_ctx* ctx, int32_t index, tsr_device** out, tsr_error* err) {
  if (tsr_status s = backend::CheckDeviceIndex(ctx, index, out, "device_open", "OpenCL", err);
      s != TSR_OK)
    return s;
  std::unique_ptr<tsr_device, void (*)(tsr_device*)> dev(new tsr_device, DeviceClose);
  dev->ctx = ctx;
  dev->cl = ctx->cl;
  dev->info = ctx->devices[static_cast<size_t>(index)];
  if (Status s = OpenDevice(dev.get()); !s.ok()) return FromStatus(s, err);
  *out = dev.release();
  return TSR_OK;
}

// Reads and clears the device error word (the queue must be drained first).
Status TakeDeviceErrors(tsr_device* dev) {
  const ClApi& cl = *dev->cl;
  cl_int bits = 0;
  TSR_RETURN_IF_ERROR(ClStatus(cl.clEnqueueReadBuffer(dev->queue, dev->err_word, CL_TRUE, 0,
                                                      sizeof(bits), &bits, 0, nullptr, nullptr),
                               "reading the device error word"));
  if (bits == 0) return OkStatus();
  const cl_int zero = 0;
  cl.clEnqueueWriteBuffer(dev->queue, dev->err_word, CL_TRUE, 0, sizeof(zero), &zero, 0, nullptr,
                          nullptr);
  return backend::DataErrorStatus(static_cast<uint32_t>(bits));
}

Status Drain(tsr_device* dev) {
  TSR_RETURN_IF_ERROR(ClStatus(dev->cl->clFinish(dev->queue), "clFinish"));
  return TakeDeviceErrors(dev);
}

tsr_status DeviceSynchronize(tsr_device* dev, tsr_error* err) {
  if (dev == nullptr) return Fail(err, TSR_ERR_INVALID_ARGUMENT, "device_synchronize: NULL");
  return FromStatus(Drain(dev), err);
}

// ---------------------------------------------------------------------------------------------
// Buffers and events
// ---------------------------------------------------------------------------------------------

constexpr auto BufferTypeCount = backend::SingleBufferTypeCount<tsr_device>;

tsr_status BufferTypeProps(tsr_device* dev, int32_t type, tsr_buffer_type_props* out,
                           tsr_error* err) {
  return backend::DeviceBufferTypeProps(dev, type, out, "opencl_device", kAlignment,
                                        dev != nullptr ? dev->info.max_alloc : 0, err);
}

tsr_status BufferAlloc(tsr_device* dev, int32_t type, uint64_t size, tsr_buffer** out,
                       tsr_error* err) {
  if (tsr_status s = backend::CheckSingleBufferType(dev, type, out, "buffer_alloc", err);
      s != TSR_OK)
    return s;
  if (dev->info.max_alloc != 0 && size > dev->info.max_alloc) {
    return Fail(err, TSR_ERR_OUT_OF_MEMORY,
                "opencl backend: " + std::to_string(size) +
                    " bytes exceed the device's largest "
                    "allocation (" +
                    std::to_string(dev->info.max_alloc) + ")");
  }
  cl_int e = CL_SUCCESS;
  // A 0-byte buffer still gets a real allocation, so every buffer is a valid cl_mem.
  cl_mem m = dev->cl->clCreateBuffer(dev->context, CL_MEM_READ_WRITE, std::max<uint64_t>(size, 4),
                                     nullptr, &e);
  if (e != CL_SUCCESS) {
    return Fail(
        err, TSR_ERR_OUT_OF_MEMORY,
        "opencl backend: cannot allocate " + std::to_string(size) + " bytes: " + ClErrorName(e));
  }
  auto buf = std::make_unique<tsr_buffer>();
  buf->dev = dev;
  buf->mem = m;
  buf->size = size;
  *out = buf.release();
  return TSR_OK;
}

void BufferFree(tsr_buffer* buf) {
  if (buf == nullptr) return;
  // OpenCL defers the release until queued commands using the buffer are done.
  buf->dev->cl->clReleaseMemObject(buf->mem);
  delete buf;
}

// Replaces `done`'s event with `ev` (ownership moves).
void SetEvent(tsr_event* done, cl_event ev) {
  if (done->ev != nullptr) done->dev->cl->clReleaseEvent(done->ev);
  done->ev = ev;
}

Status RecordMarker(tsr_device* dev, tsr_event* done) {
  cl_event ev = nullptr;
  TSR_RETURN_IF_ERROR(
      ClStatus(dev->cl->clEnqueueMarkerWithWaitList(dev->queue, 0, nullptr, &ev), "event record"));
  SetEvent(done, ev);
  return ClStatus(dev->cl->clFlush(dev->queue), "clFlush");
}

tsr_status BufferUpload(tsr_buffer* dst, uint64_t dst_offset, const void* src, uint64_t size,
                        tsr_event* done, tsr_error* err) {
  if (tsr_status s = backend::CheckTransferArgs(dst, dst_offset, src, size, "buffer_upload", err);
      s != TSR_OK)
    return s;
  tsr_device* dev = dst->dev;
  if (size == 0) return done != nullptr ? FromStatus(RecordMarker(dev, done), err) : TSR_OK;
  cl_event ev = nullptr;
  const cl_int e =
      dev->cl->clEnqueueWriteBuffer(dev->queue, dst->mem, done == nullptr, dst_offset, size, src, 0,
                                    nullptr, done != nullptr ? &ev : nullptr);
  if (e != CL_SUCCESS) return FromCl(e, "buffer_upload", err);
  if (done != nullptr) {
    SetEvent(done, ev);
    return FromCl(dev->cl->clFlush(dev->queue), "clFlush", err);
  }
  return TSR_OK;
}

// Copies host memory to the device once (no zero-copy import).
tsr_status BufferImportHost(tsr_device* dev, void* ptr, uint64_t size, tsr_buffer** out,
                            tsr_error* err) {
  return backend::ImportHostByCopy<BufferAlloc, BufferUpload, BufferFree>(dev, ptr, size, out, err);
}

tsr_status BufferMap(tsr_buffer* buf, void** out_ptr, tsr_error* err) {
  return backend::MapNotHostVisible(buf, out_ptr, "opencl backend", err);
}

tsr_status BufferDownload(tsr_buffer* src, uint64_t src_offset, void* dst, uint64_t size,
                          tsr_event* done, tsr_error* err) {
  if (tsr_status s = backend::CheckTransferArgs(src, src_offset, dst, size, "buffer_download", err);
      s != TSR_OK)
    return s;
  tsr_device* dev = src->dev;
  if (done != nullptr) {
    if (size == 0) return FromStatus(RecordMarker(dev, done), err);
    cl_event ev = nullptr;
    const cl_int e = dev->cl->clEnqueueReadBuffer(dev->queue, src->mem, CL_FALSE, src_offset, size,
                                                  dst, 0, nullptr, &ev);
    if (e != CL_SUCCESS) return FromCl(e, "buffer_download", err);
    SetEvent(done, ev);
    return FromCl(dev->cl->clFlush(dev->queue), "clFlush", err);
  }
  if (size > 0) {
    const cl_int e = dev->cl->clEnqueueReadBuffer(dev->queue, src->mem, CL_TRUE, src_offset, size,
                                                  dst, 0, nullptr, nullptr);
    if (e != CL_SUCCESS) return FromCl(e, "buffer_download", err);
  }
  return FromStatus(TakeDeviceErrors(dev), err);
}

tsr_status BufferCopy(tsr_buffer* src, uint64_t src_offset, tsr_buffer* dst, uint64_t dst_offset,
                      uint64_t size, tsr_event* done, tsr_error* err) {
  if (tsr_status s =
          backend::CheckCopyArgs(src, src_offset, dst, dst_offset, size, "opencl backend", err);
      s != TSR_OK)
    return s;
  tsr_device* dev = src->dev;
  if (Status s = dev->runner->Copy(src, src_offset, dst, dst_offset, size); !s.ok())
    return FromStatus(s, err);
  return done != nullptr ? FromStatus(RecordMarker(dev, done), err) : TSR_OK;
}

constexpr auto EventCreate = backend::NewDeviceEvent<tsr_event, tsr_device>;

tsr_status EventWait(tsr_event* ev, tsr_error* err) {
  if (ev == nullptr) return Fail(err, TSR_ERR_INVALID_ARGUMENT, "event_wait: NULL event");
  if (ev->ev == nullptr) return TSR_OK;  // never recorded
  return FromCl(ev->dev->cl->clWaitForEvents(1, &ev->ev), "event_wait", err);
}

void EventDestroy(tsr_event* ev) {
  if (ev == nullptr) return;
  if (ev->ev != nullptr) ev->dev->cl->clReleaseEvent(ev->ev);
  delete ev;
}

// ---------------------------------------------------------------------------------------------
// Graph views: supports_op and execute
// ---------------------------------------------------------------------------------------------

constexpr auto SupportsOp =
    backend::SupportsOp<gpu::LoadedNode, gpu::LoadNodeStatus<tsr_buffer, tsr_device>,
                        gpu::FindRunner, gpu::ValidateOp, tsr_device>;

tsr_status Execute(tsr_device* dev, const tsr_graph_view* graph, const int32_t* node_ids,
                   int32_t n_node_ids, tsr_event* done, tsr_error* err) {
  if (dev == nullptr || !backend::ViewOk(graph) || (node_ids == nullptr && n_node_ids > 0))
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "execute: NULL or malformed argument");
  if (Status s =
          gpu::ExecuteNodes<tsr_buffer>(dev, dev->runner.get(), *graph, node_ids, n_node_ids);
      !s.ok())
    return FromStatus(s, err);
  if (done != nullptr) return FromStatus(RecordMarker(dev, done), err);
  return FromCl(dev->cl->clFlush(dev->queue), "clFlush", err);
}

tsr_plugin_api MakeApi() {
  tsr_plugin_api api =
      backend::NewApiTable("opencl", "Tessera OpenCL backend", TESSERA_OPENCL_PLUGIN_VERSION);
  TESSERA_BACKEND_FILL_DEVICE_API(api, Guarded);
  return api;
}

const tsr_plugin_api kApi = MakeApi();

}  // namespace
}  // namespace tessera::opencl

// Touches no device and loads no driver: device_count and absence_reason answer that.
TESSERA_BACKEND_PLUGIN_ENTRY_POINTS(tessera::opencl::kBackend, tessera::opencl::kApi, 100)
