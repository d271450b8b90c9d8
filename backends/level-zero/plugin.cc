// The Level Zero backend's C ABI: Intel GPUs (and NPUs that take SPIR-V kernels) through
// oneAPI Level Zero. Kernel style, sharing everything above the API with the OpenCL plugin: the
// op layer (backends/opencl/gpu_ops.h) and the kernels themselves, compiled at BUILD time from
// the same OpenCL C to SPIR-V (clang -target spir64 + llvm-spirv) and embedded here.
//
// libze_loader.so.1 is opened with dlopen (ze_loader.h): the engine and the core never link
// Level Zero; without a loader or a driver the plugin reports no device and why.
//
// Modules: built from the SPIR-V at device_open; the driver's native binary
// (zeModuleGetNativeBinary) is cached under cache_dir (default $XDG_CACHE_HOME/tessera/level-zero)
// keyed by driver, device, SPIR-V hash and plugin version, and loaded as ZE_MODULE_FORMAT_NATIVE
// on the next start.
//
// Execution model (first version): one SYNCHRONOUS immediate command list a device, so every
// append has completed when it returns: call order is execution order, events are trivially
// complete. Simple and obviously ordered; an asynchronous list with events is the next step once
// this runs on real hardware (see README.md: nothing here has run on an Intel GPU yet).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backends/common/status_abi.h"
#include "backends/level-zero/ze_loader.h"
#include "backends/opencl/gpu_ops.h"
#include "backends/opencl/kernel_source.h"
#include "backends/opencl/kernels/params.h"
#include "backends/opencl/program_cache.h"
#include "tessera/backend/abi.h"
#include "tessera/backend/device_ctx.h"
#include "tessera/backend/node.h"
#include "tessera/core/status.h"
#include "tessera/plugin_api.h"

#ifndef TESSERA_LEVEL_ZERO_PLUGIN_VERSION
#define TESSERA_LEVEL_ZERO_PLUGIN_VERSION "0.1.0"
#endif

namespace tessera::level_zero {
namespace {

struct DeviceInfo {
  ze_driver_handle_t driver = nullptr;
  ze_device_handle_t device = nullptr;
  std::string name, description, compat;
  tsr_device_kind kind = TSR_DEVICE_OTHER;
  int32_t compute_units = 0;
  uint64_t memory = 0, max_alloc = 0;
};

class ZeQueue;

}  // namespace
}  // namespace tessera::level_zero

struct tsr_plugin_ctx {
  const tessera::level_zero::ZeApi* ze = nullptr;
  std::string absence;
  std::vector<tessera::level_zero::DeviceInfo> devices;
  std::string cache_dir;
};

struct tsr_device {
  tsr_plugin_ctx* ctx = nullptr;
  const tessera::level_zero::ZeApi* ze = nullptr;
  tessera::level_zero::DeviceInfo info;
  ze_context_handle_t context = nullptr;
  ze_command_list_handle_t list = nullptr;  // immediate, synchronous
  ze_module_handle_t module = nullptr;
  ze_kernel_handle_t kernels[static_cast<int>(tessera::gpu::Kernel::kCount)] = {};
  void* err_word = nullptr;  // device int, TSR_K_ERR_* bits
  void* dummy = nullptr;     // bound to unused pointer arguments
  std::unique_ptr<tessera::level_zero::ZeQueue> runner;
};

struct tsr_buffer {
  tsr_device* dev = nullptr;
  void* ptr = nullptr;  // device USM allocation
  uint64_t size = 0;
};

struct tsr_event {
  tsr_device* dev = nullptr;  // work is complete when a synchronous append returns
};

namespace tessera::level_zero {
namespace {

constexpr char kBackend[] = "level-zero backend";
constexpr uint64_t kAlignment = 256;
constexpr uint32_t kGroupSize = 64;

using backend::CopyOut;
using backend::Fail;
using backend::Log;
template <auto F>
using Guarded = backend::Guarded<kBackend, F>;

tsr_status FromStatus(const Status& s, tsr_error* err) {
  return backend::FromStatus(kBackend, s, err);
}

Status ZeStatus(ze_result_t r, const char* what) {
  if (r == ZE_RESULT_SUCCESS) return OkStatus();
  if (r == ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY || r == ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY)
    return ResourceExhausted(std::string(what) + ": " + ZeResultName(r));
  return DeviceError(std::string(what) + ": " + ZeResultName(r));
}

bool HaveSpirv() {
  return gpu::kKernelSpirvSize > 0;
}

// The gpu::Queue over the device's synchronous immediate command list.
class ZeQueue final : public gpu::Queue {
 public:
  explicit ZeQueue(tsr_device* dev) : dev_(dev) {
    err_buffer_.dev = dev;
    err_buffer_.ptr = dev->err_word;
    err_buffer_.size = sizeof(int32_t);
  }

  Status Launch(gpu::Kernel k, int64_t items, const gpu::KernelArg* args, int n_args) override {
    const ZeApi& ze = *dev_->ze;
    ze_kernel_handle_t kernel = dev_->kernels[static_cast<int>(k)];
    for (int i = 0; i < n_args; ++i) {
      ze_result_t r;
      if (args[i].is_buffer) {
        const auto* b = static_cast<const tsr_buffer*>(args[i].buffer);
        void* p = b != nullptr ? b->ptr : dev_->dummy;
        r = ze.zeKernelSetArgumentValue(kernel, static_cast<uint32_t>(i), sizeof(p), &p);
      } else {
        r = ze.zeKernelSetArgumentValue(kernel, static_cast<uint32_t>(i), args[i].size,
                                        args[i].value);
      }
      TSR_RETURN_IF_ERROR(ZeStatus(r, gpu::KernelName(k)));
    }
    ze_group_count_t groups{static_cast<uint32_t>((items + kGroupSize - 1) / kGroupSize), 1, 1};
    return ZeStatus(
        ze.zeCommandListAppendLaunchKernel(dev_->list, kernel, &groups, nullptr, 0, nullptr),
        gpu::KernelName(k));
  }

  Status Copy(const void* src, uint64_t src_off, const void* dst, uint64_t dst_off,
              uint64_t size) override {
    if (size == 0) return OkStatus();
    const auto* s = static_cast<const tsr_buffer*>(src);
    const auto* d = static_cast<const tsr_buffer*>(dst);
    return ZeStatus(dev_->ze->zeCommandListAppendMemoryCopy(
                        dev_->list, static_cast<uint8_t*>(d->ptr) + dst_off,
                        static_cast<const uint8_t*>(s->ptr) + src_off, size, nullptr, 0, nullptr),
                    "copy");
  }

  const void* ErrorWord() override { return &err_buffer_; }

 private:
  tsr_device* dev_;
  tsr_buffer err_buffer_;
};

// ---------------------------------------------------------------------------------------------
// Context: driver and device discovery
// ---------------------------------------------------------------------------------------------

std::string Version(uint32_t v) {
  return std::to_string(ZE_MAJOR_VERSION(v)) + "." + std::to_string(ZE_MINOR_VERSION(v));
}

DeviceInfo Describe(const ZeApi& ze, ze_driver_handle_t drv, ze_device_handle_t d,
                    const ze_device_properties_t& p) {
  DeviceInfo info;
  info.driver = drv;
  info.device = d;
  info.name = p.name;
  info.kind = p.type == ZE_DEVICE_TYPE_VPU                     ? TSR_DEVICE_NPU
              : (p.flags & ZE_DEVICE_PROPERTY_FLAG_INTEGRATED) ? TSR_DEVICE_GPU_INTEGRATED
                                                               : TSR_DEVICE_GPU_DISCRETE;
  info.compute_units =
      static_cast<int32_t>(p.numSlices * p.numSubslicesPerSlice * p.numEUsPerSubslice);
  info.max_alloc = p.maxMemAllocSize;
  uint32_t n_mem = 0;
  ze.zeDeviceGetMemoryProperties(d, &n_mem, nullptr);
  std::vector<ze_device_memory_properties_t> mem(n_mem);
  for (auto& m : mem) m = {ZE_STRUCTURE_TYPE_DEVICE_MEMORY_PROPERTIES, nullptr};
  if (n_mem > 0 && ze.zeDeviceGetMemoryProperties(d, &n_mem, mem.data()) == ZE_RESULT_SUCCESS) {
    for (const auto& m : mem) info.memory += m.totalSize;
  }
  ze_driver_properties_t dp{ZE_STRUCTURE_TYPE_DRIVER_PROPERTIES, nullptr};
  ze.zeDriverGetProperties(drv, &dp);
  ze_api_version_t api{};
  ze.zeDriverGetApiVersion(drv, &api);
  char id[16];
  std::snprintf(id, sizeof(id), "%04x", p.deviceId);
  info.description = "Level Zero " + Version(api) + ", driver " + std::to_string(dp.driverVersion) +
                     ", device id 0x" + id + ", " + std::to_string(info.compute_units) + " EUs";
  info.compat = std::string("device=") + p.name + ";id=" + id +
                ";driver=" + std::to_string(dp.driverVersion) + ";api=" + Version(api);
  return info;
}

void DiscoverDevices(tsr_plugin_ctx* ctx) {
  if (!HaveSpirv()) {
    ctx->absence =
        "this build has no SPIR-V kernels (clang-14 and llvm-spirv-14 were not found "
        "when it was compiled)";
    return;
  }
  std::string why;
  ctx->ze = LoadZeApi(&why);
  if (ctx->ze == nullptr) {
    ctx->absence = why;
    return;
  }
  const ZeApi& ze = *ctx->ze;
  if (ze_result_t r = ze.zeInit(0); r != ZE_RESULT_SUCCESS) {
    ctx->absence = "zeInit: " + ZeResultName(r) +
                   ": no Level Zero driver (an Intel GPU needs intel-level-zero-gpu, an Intel "
                   "NPU intel-driver-compiler-npu/intel-level-zero-npu)";
    return;
  }
  uint32_t n_drivers = 0;
  ze.zeDriverGet(&n_drivers, nullptr);
  if (n_drivers == 0) {
    ctx->absence = "zeDriverGet: no Level Zero driver is installed";
    return;
  }
  std::vector<ze_driver_handle_t> drivers(n_drivers);
  ze.zeDriverGet(&n_drivers, drivers.data());
  std::string skipped;
  for (ze_driver_handle_t drv : drivers) {
    uint32_t n = 0;
    if (ze.zeDeviceGet(drv, &n, nullptr) != ZE_RESULT_SUCCESS || n == 0) continue;
    std::vector<ze_device_handle_t> devs(n);
    ze.zeDeviceGet(drv, &n, devs.data());
    for (ze_device_handle_t d : devs) {
      ze_device_properties_t p{ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES, nullptr};
      if (ze.zeDeviceGetProperties(d, &p) != ZE_RESULT_SUCCESS) continue;
      if (p.type != ZE_DEVICE_TYPE_GPU && p.type != ZE_DEVICE_TYPE_VPU) {
        skipped += std::string("; ") + p.name + ": not a GPU or NPU";
        continue;
      }
      ctx->devices.push_back(Describe(ze, drv, d, p));
    }
  }
  if (ctx->devices.empty()) ctx->absence = "no Level Zero GPU or NPU" + skipped;
}

tsr_status CreateContext(const tsr_option* options, size_t n_options, tsr_plugin_ctx** out,
                         tsr_error* err) {
  if (tsr_status s = backend::CheckCreateContextArgs(options, n_options, out, err); s != TSR_OK)
    return s;
  auto ctx = std::make_unique<tsr_plugin_ctx>();
  std::string cache_dir;
  for (size_t i = 0; i < n_options; ++i) {
    const char* key = options[i].key != nullptr ? options[i].key : "";
    if (std::strcmp(key, "cache_dir") == 0) {
      cache_dir = options[i].value != nullptr ? options[i].value : "";
    } else {
      return Fail(
          err, TSR_ERR_INVALID_ARGUMENT,
          std::string("level-zero backend: unknown option \"") + key + "\" (known: cache_dir)");
    }
  }
  ctx->cache_dir = gpu::ResolveCacheDir(cache_dir, "TESSERA_LEVEL_ZERO_CACHE_DIR", "level-zero");
  DiscoverDevices(ctx.get());
  backend::LogDiscovery(kBackend, *ctx);
  *out = ctx.release();
  return TSR_OK;
}

constexpr auto DestroyContext = backend::DestroyContext<tsr_plugin_ctx>;
constexpr auto AbsenceReason = backend::AbsenceReason<tsr_plugin_ctx>;
constexpr auto DeviceCount = backend::DeviceCount<tsr_plugin_ctx>;

tsr_status DeviceProps(tsr_plugin_ctx* ctx, int32_t index, tsr_device_props* out, tsr_error* err) {
  if (tsr_status s = backend::CheckDeviceIndex(ctx, index, out, "device_props", "Level Zero", err);
      s != TSR_OK)
    return s;
  const DeviceInfo& d = ctx->devices[static_cast<size_t>(index)];
  tsr_device_props p = backend::KernelDeviceProps(d);
  p.kind = d.kind;
  p.caps = TSR_CAP_F16 | TSR_CAP_BF16 | TSR_CAP_Q8 | TSR_CAP_Q4;
  p.memory_total = d.memory;
  p.compute_units = d.compute_units;
  CopyOut(p, out);
  return TSR_OK;
}

// ---------------------------------------------------------------------------------------------
// Module build and cache
// ---------------------------------------------------------------------------------------------

constexpr char kBuildFlags[] = "-cl-fp32-correctly-rounded-divide-sqrt";

std::string CacheKey(const DeviceInfo& d) {
  char hash[32];
  std::snprintf(
      hash, sizeof(hash), "%016llx",
      static_cast<unsigned long long>(gpu::Fnv1a64(gpu::kKernelSpirv, gpu::kKernelSpirvSize)));
  return "tessera-level-zero " TESSERA_LEVEL_ZERO_PLUGIN_VERSION ";" + d.compat +
         ";flags=" + kBuildFlags + ";spirv=" + hash;
}

std::string TakeBuildLog(const ZeApi& ze, ze_module_build_log_handle_t log) {
  if (log == nullptr) return "";
  size_t n = 0;
  ze.zeModuleBuildLogGetString(log, &n, nullptr);
  std::string s(n, '\0');
  if (n > 0) ze.zeModuleBuildLogGetString(log, &n, s.data());
  ze.zeModuleBuildLogDestroy(log);
  s.resize(std::strlen(s.c_str()));
  return s.size() > 2000 ? s.substr(0, 2000) + "..." : s;
}

ze_result_t CreateModule(tsr_device* dev, ze_module_format_t format, const uint8_t* data,
                         size_t size, std::string* log) {
  const ZeApi& ze = *dev->ze;
  ze_module_desc_t desc{ZE_STRUCTURE_TYPE_MODULE_DESC, nullptr};
  desc.format = format;
  desc.inputSize = size;
  desc.pInputModule = data;
  desc.pBuildFlags = kBuildFlags;
  ze_module_build_log_handle_t build_log = nullptr;
  const ze_result_t r =
      ze.zeModuleCreate(dev->context, dev->info.device, &desc, &dev->module, &build_log);
  *log = TakeBuildLog(ze, build_log);
  if (r != ZE_RESULT_SUCCESS) dev->module = nullptr;
  return r;
}

Status BuildModule(tsr_device* dev) {
  const ZeApi& ze = *dev->ze;
  const std::string key = CacheKey(dev->info);
  const auto t0 = std::chrono::steady_clock::now();
  std::string log;
  bool cached = false;
  if (auto bin = gpu::ReadCacheEntry(dev->ctx->cache_dir, key)) {
    cached = CreateModule(dev, ZE_MODULE_FORMAT_NATIVE, bin->data(), bin->size(), &log) ==
             ZE_RESULT_SUCCESS;
  }
  if (!cached) {
    const ze_result_t r = CreateModule(dev, ZE_MODULE_FORMAT_IL_SPIRV, gpu::kKernelSpirv,
                                       gpu::kKernelSpirvSize, &log);
    if (r != ZE_RESULT_SUCCESS)
      return Internal("building the SPIR-V kernels failed (" + ZeResultName(r) + "):\n" + log);
    size_t size = 0;
    if (ze.zeModuleGetNativeBinary(dev->module, &size, nullptr) == ZE_RESULT_SUCCESS && size > 0) {
      std::vector<unsigned char> native(size);
      if (ze.zeModuleGetNativeBinary(dev->module, &size, native.data()) == ZE_RESULT_SUCCESS) {
        if (std::string why = gpu::WriteCacheEntry(dev->ctx->cache_dir, key, native); !why.empty())
          Log(TSR_LOG_WARN, "level-zero backend: module cache not written: " + why);
      }
    }
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  Log(TSR_LOG_INFO, "level-zero backend: kernels for " + dev->info.name + " " +
                        (cached ? "loaded from the cache" : "built from SPIR-V") + " in " +
                        std::to_string(static_cast<int>(ms)) + " ms");
  for (int k = 0; k < static_cast<int>(gpu::Kernel::kCount); ++k) {
    const char* name = gpu::KernelName(static_cast<gpu::Kernel>(k));
    ze_kernel_desc_t kd{ZE_STRUCTURE_TYPE_KERNEL_DESC, nullptr};
    kd.pKernelName = name;
    TSR_RETURN_IF_ERROR(ZeStatus(ze.zeKernelCreate(dev->module, &kd, &dev->kernels[k]), name));
    TSR_RETURN_IF_ERROR(ZeStatus(ze.zeKernelSetGroupSize(dev->kernels[k], kGroupSize, 1, 1), name));
  }
  return OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Devices, buffers, events
// ---------------------------------------------------------------------------------------------

void DeviceClose(tsr_device* dev) {
  if (dev == nullptr) return;
  if (const ZeApi* ze = dev->ze) {
    for (ze_kernel_handle_t k : dev->kernels)
      if (k != nullptr) ze->zeKernelDestroy(k);
    if (dev->module != nullptr) ze->zeModuleDestroy(dev->module);
    if (dev->err_word != nullptr) ze->zeMemFree(dev->context, dev->err_word);
    if (dev->dummy != nullptr) ze->zeMemFree(dev->context, dev->dummy);
    if (dev->list != nullptr) ze->zeCommandListDestroy(dev->list);
    if (dev->context != nullptr) ze->zeContextDestroy(dev->context);
  }
  delete dev;
}

Status AllocDevice(tsr_device* dev, uint64_t size, void** out) {
  ze_device_mem_alloc_desc_t desc{ZE_STRUCTURE_TYPE_DEVICE_MEM_ALLOC_DESC, nullptr};
  return ZeStatus(dev->ze->zeMemAllocDevice(dev->context, &desc, std::max<uint64_t>(size, 4),
                                            kAlignment, dev->info.device, out),
                  "zeMemAllocDevice");
}

Status CopyBytes(tsr_device* dev, void* dst, const void* src, uint64_t size) {
  if (size == 0) return OkStatus();
  return ZeStatus(
      dev->ze->zeCommandListAppendMemoryCopy(dev->list, dst, src, size, nullptr, 0, nullptr),
      "memory copy");
}

Status OpenDevice(tsr_device* dev) {
  const ZeApi& ze = *dev->ze;
  ze_context_desc_t cd{ZE_STRUCTURE_TYPE_CONTEXT_DESC, nullptr};
  TSR_RETURN_IF_ERROR(
      ZeStatus(ze.zeContextCreate(dev->info.driver, &cd, &dev->context), "zeContextCreate"));
  ze_command_queue_desc_t qd{ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC, nullptr};
  qd.ordinal = 0;
  qd.mode = ZE_COMMAND_QUEUE_MODE_SYNCHRONOUS;
  qd.priority = ZE_COMMAND_QUEUE_PRIORITY_NORMAL;
  TSR_RETURN_IF_ERROR(
      ZeStatus(ze.zeCommandListCreateImmediate(dev->context, dev->info.device, &qd, &dev->list),
               "zeCommandListCreateImmediate"));
  TSR_RETURN_IF_ERROR(AllocDevice(dev, sizeof(int32_t), &dev->err_word));
  TSR_RETURN_IF_ERROR(AllocDevice(dev, 64, &dev->dummy));
  const int32_t zero = 0;
  TSR_RETURN_IF_ERROR(CopyBytes(dev, dev->err_word, &zero, sizeof(zero)));
  TSR_RETURN_IF_ERROR(BuildModule(dev));
  dev->runner = std::make_unique<ZeQueue>(dev);
  return OkStatus();
}

tsr_status DeviceOpen(tsr_plugin_ctx* ctx, int32_t index, tsr_device** out, tsr_error* err) {
  if (tsr_status s = backend::CheckDeviceIndex(ctx, index, out, "device_open", "Level Zero", err);
      s != TSR_OK)
    return s;
  std::unique_ptr<tsr_device, void (*)(tsr_device*)> dev(new tsr_device, DeviceClose);
  dev->ctx = ctx;
  dev->ze = ctx->ze;
  dev->info = ctx->devices[static_cast<size_t>(index)];
  if (Status s = OpenDevice(dev.get()); !s.ok()) return FromStatus(s, err);
  *out = dev.release();
  return TSR_OK;
}

// Reads and clears the device error word.
Status TakeDeviceErrors(tsr_device* dev) {
  int32_t bits = 0;
  TSR_RETURN_IF_ERROR(CopyBytes(dev, &bits, dev->err_word, sizeof(bits)));
  if (bits == 0) return OkStatus();
  const int32_t zero = 0;
  TSR_RETURN_IF_ERROR(CopyBytes(dev, dev->err_word, &zero, sizeof(zero)));
  return backend::DataErrorStatus(static_cast<uint32_t>(bits));
}

tsr_status DeviceSynchronize(tsr_device* dev, tsr_error* err) {
  if (dev == nullptr) return Fail(err, TSR_ERR_INVALID_ARGUMENT, "device_synchronize: NULL");
  return FromStatus(TakeDeviceErrors(dev), err);  // synchronous list: nothing is in flight
}

constexpr auto BufferTypeCount = backend::SingleBufferTypeCount<tsr_device>;

tsr_status BufferTypeProps(tsr_device* dev, int32_t type, tsr_buffer_type_props* out,
                           tsr_error* err) {
  return backend::DeviceBufferTypeProps(dev, type, out, "level_zero_device", kAlignment,
                                        dev != nullptr ? dev->info.max_alloc : 0, err);
}

tsr_status BufferAlloc(tsr_device* dev, int32_t type, uint64_t size, tsr_buffer** out,
                       tsr_error* err) {
  if (tsr_status s = backend::CheckSingleBufferType(dev, type, out, "buffer_alloc", err);
      s != TSR_OK)
    return s;
  auto buf = std::make_unique<tsr_buffer>();
  if (Status s = AllocDevice(dev, size, &buf->ptr); !s.ok()) {
    return Fail(err, TSR_ERR_OUT_OF_MEMORY,
                std::string(kBackend) + ": cannot allocate " + std::to_string(size) +
                    " bytes: " + s.message());
  }
  buf->dev = dev;
  buf->size = size;
  *out = buf.release();
  return TSR_OK;
}

void BufferFree(tsr_buffer* buf) {
  if (buf == nullptr) return;
  buf->dev->ze->zeMemFree(buf->dev->context, buf->ptr);  // the list is synchronous: idle
  delete buf;
}

tsr_status BufferUpload(tsr_buffer* dst, uint64_t dst_offset, const void* src, uint64_t size,
                        tsr_event* done, tsr_error* err) {
  if (tsr_status s = backend::CheckTransferArgs(dst, dst_offset, src, size, "buffer_upload", err);
      s != TSR_OK)
    return s;
  return FromStatus(CopyBytes(dst->dev, static_cast<uint8_t*>(dst->ptr) + dst_offset, src, size),
                    err);
}

tsr_status BufferImportHost(tsr_device* dev, void* ptr, uint64_t size, tsr_buffer** out,
                            tsr_error* err) {
  return backend::ImportHostByCopy<BufferAlloc, BufferUpload, BufferFree>(dev, ptr, size, out, err);
}

tsr_status BufferMap(tsr_buffer* buf, void** out_ptr, tsr_error* err) {
  return backend::MapNotHostVisible(buf, out_ptr, "level-zero backend", err);
}

tsr_status BufferDownload(tsr_buffer* src, uint64_t src_offset, void* dst, uint64_t size,
                          tsr_event* done, tsr_error* err) {
  if (tsr_status s = backend::CheckTransferArgs(src, src_offset, dst, size, "buffer_download", err);
      s != TSR_OK)
    return s;
  Status s = CopyBytes(src->dev, dst, static_cast<uint8_t*>(src->ptr) + src_offset, size);
  if (s.ok() && done == nullptr) s = TakeDeviceErrors(src->dev);
  return FromStatus(s, err);
}

tsr_status BufferCopy(tsr_buffer* src, uint64_t src_offset, tsr_buffer* dst, uint64_t dst_offset,
                      uint64_t size, tsr_event* done, tsr_error* err) {
  if (tsr_status s =
          backend::CheckCopyArgs(src, src_offset, dst, dst_offset, size, "level-zero backend", err);
      s != TSR_OK)
    return s;
  return FromStatus(src->dev->runner->Copy(src, src_offset, dst, dst_offset, size), err);
}

constexpr auto EventCreate = backend::NewDeviceEvent<tsr_event, tsr_device>;

tsr_status EventWait(tsr_event* ev, tsr_error* err) {
  if (ev == nullptr) return Fail(err, TSR_ERR_INVALID_ARGUMENT, "event_wait: NULL event");
  return TSR_OK;  // every append completed before it returned
}

void EventDestroy(tsr_event* ev) {
  delete ev;
}

// ---------------------------------------------------------------------------------------------
// Graph views
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
  return TSR_OK;
}

tsr_plugin_api MakeApi() {
  tsr_plugin_api api = backend::NewApiTable("level-zero", "Tessera Level Zero backend",
                                            TESSERA_LEVEL_ZERO_PLUGIN_VERSION);
  TESSERA_BACKEND_FILL_DEVICE_API(api, Guarded);
  return api;
}

const tsr_plugin_api kApi = MakeApi();

}  // namespace
}  // namespace tessera::level_zero

// Touches no device and loads no driver: device_count and absence_reason answer that.
TESSERA_BACKEND_PLUGIN_ENTRY_POINTS(tessera::level_zero::kBackend, tessera::level_zero::kApi, 100)
