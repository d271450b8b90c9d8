// The CUDA backend's C ABI: entry points, function table, context (driver/device discovery and
// the reason when there is none), devices (one stream each), device-memory buffers, events,
// supports_op and execute.
//
// Execution model. Every device owns one non-blocking stream; uploads, downloads, copies and
// executes are enqueued on it in call order. `execute` never waits: with done == NULL it still
// returns once the work is queued, which the host cannot tell apart from finished work because
// every later call that exposes memory (download, synchronize, event_wait) is ordered behind it
// on the same stream. Uploads/downloads with done == NULL finish before returning (the host may
// reuse its memory at once); with `done` they record the event and return.
//
// Data errors. Kernels never read out of bounds on bad ids, slots, sequence lengths or block
// tables: they skip the element and set a bit in a per-device error word. device_synchronize and
// synchronous downloads read (and clear) that word and fail with the reason, so a bad index is
// reported one synchronization late rather than costing a sync per execute.
//
// Every table function catches all exceptions at the boundary: nothing C++ crosses into the host.
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "backends/cuda/launch.h"
#include "backends/cuda/ops.h"
#include "tessera/backend/abi.h"
#include "tessera/backend/node.h"
#include "tessera/core/status.h"
#include "tessera/plugin_api.h"

#ifndef TESSERA_CUDA_ARCHS_STRING
#define TESSERA_CUDA_ARCHS_STRING "?"
#endif

namespace tessera::cuda {
namespace {

struct DeviceInfo {
  int ordinal = 0;  // CUDA device index
  std::string name;
  std::string description;
  bool integrated = false;
  int sms = 0;
};

}  // namespace
}  // namespace tessera::cuda

// Opaque handles of the ABI, defined here and only here.
struct tsr_plugin_ctx {
  std::string absence;  // why there are no devices; "" when there are
  std::vector<tessera::cuda::DeviceInfo> devices;
  int matmul_terms = 3;
};

struct tsr_device {
  tsr_plugin_ctx* ctx = nullptr;
  int ordinal = 0;
  cudaStream_t stream = nullptr;
  int* err_flag = nullptr;  // device memory, DeviceErrorBits
  tessera::cuda::Scratch scratch;
  tessera::cuda::RunContext run;
};

struct tsr_buffer {
  tsr_device* dev = nullptr;
  uint8_t* data = nullptr;  // device memory
  uint64_t size = 0;
};

struct tsr_event {
  tsr_device* dev = nullptr;
  cudaEvent_t ev = nullptr;
};

namespace tessera::cuda {
namespace {

constexpr uint64_t kAlignment = 256;  // cudaMalloc's guarantee

constexpr char kBackend[] = "cuda backend";  // starts every error message

using backend::Fail;
using backend::Log;

tsr_status ToTsrStatus(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return TSR_OK;
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAbiMismatch: return TSR_ERR_INVALID_ARGUMENT;
    case StatusCode::kNotFound: return TSR_ERR_NOT_FOUND;
    case StatusCode::kUnimplemented: return TSR_ERR_UNIMPLEMENTED;
    case StatusCode::kUnsupported: return TSR_ERR_UNSUPPORTED;
    case StatusCode::kResourceExhausted: return TSR_ERR_OUT_OF_MEMORY;
    case StatusCode::kDeviceError: return TSR_ERR_DEVICE;
    case StatusCode::kInternal: return TSR_ERR_INTERNAL;
  }
  return TSR_ERR_INTERNAL;
}

tsr_status FromStatus(const Status& s, tsr_error* err) {
  if (s.ok()) return TSR_OK;
  return Fail(err, ToTsrStatus(s.code()), "cuda backend: " + s.message());
}

tsr_status FromCuda(cudaError_t e, const char* what, tsr_error* err) {
  return FromStatus(CudaStatus(e, what), err);
}

// Runs fn() and converts any escaping exception into an error status.
template <typename Fn>
tsr_status Guard(tsr_error* err, Fn&& fn) noexcept {
  return backend::Guard<kBackend>(err, std::forward<Fn>(fn));
}

// Guarded<F>::Call is F behind Guard (backend/abi.h).
template <auto F>
using Guarded = backend::Guarded<kBackend, F>;

template <typename T>
void CopyOut(const T& value, T* out) {
  // Never write past the host's struct (an older minor may have a shorter one).
  const size_t n =
      out->struct_size == 0 ? sizeof(T) : std::min<size_t>(out->struct_size, sizeof(T));
  T v = value;
  v.struct_size = static_cast<uint32_t>(n);
  std::memcpy(out, &v, n);
}

// ---------------------------------------------------------------------------------------------
// Context: driver and device discovery
// ---------------------------------------------------------------------------------------------

std::string CudaErrorText(const char* call, cudaError_t e) {
  return std::string(call) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
}

// The driver library cudart loads; checked first so "no driver" reads as such rather than as
// cudart's "driver version is insufficient".
std::string CheckDriverLibrary() {
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    const char* why = dlerror();
    return std::string("libcuda.so.1 not found (no NVIDIA driver on this machine): ") +
           (why != nullptr ? why : "dlopen failed");
  }
  dlclose(h);
  return "";
}

// Fills ctx->devices with the GPUs this build has kernels for; ctx->absence says why if none.
void DiscoverDevices(tsr_plugin_ctx* ctx) {
  if (std::string why = CheckDriverLibrary(); !why.empty()) {
    ctx->absence = why;
    return;
  }
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    ctx->absence = CudaErrorText("cudaGetDeviceCount", e);
    cudaGetLastError();  // clear, so later calls start clean
    return;
  }
  if (count == 0) {
    ctx->absence = "cudaGetDeviceCount: no CUDA-capable device";
    return;
  }
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  std::string skipped;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if ((e = cudaGetDeviceProperties(&prop, i)) != cudaSuccess) {
      skipped += "; device " + std::to_string(i) + ": " + CudaErrorText("properties", e);
      continue;
    }
    const std::string sm = "sm_" + std::to_string(prop.major) + std::to_string(prop.minor);
    if ((e = cudaSetDevice(i)) == cudaSuccess) e = ProbeKernelImage();
    if (e != cudaSuccess) {
      skipped += "; device " + std::to_string(i) + " (" + prop.name + ", " + sm +
                 "): no kernels for it in this build (archs " TESSERA_CUDA_ARCHS_STRING "): " +
                 cudaGetErrorName(e);
      cudaGetLastError();
      continue;
    }
    DeviceInfo d;
    d.ordinal = i;
    d.name = prop.name;
    d.integrated = prop.integrated != 0;
    d.sms = prop.multiProcessorCount;
    d.description = sm + ", " + std::to_string(prop.multiProcessorCount) + " SMs, " +
                    std::to_string(prop.l2CacheSize >> 20) + " MiB L2, driver " +
                    std::to_string(driver / 1000) + "." + std::to_string(driver % 1000 / 10) +
                    ", runtime " + std::to_string(runtime / 1000) + "." +
                    std::to_string(runtime % 1000 / 10) + " (static), kernels for archs " +
                    TESSERA_CUDA_ARCHS_STRING;
    ctx->devices.push_back(std::move(d));
  }
  if (ctx->devices.empty()) ctx->absence = "no usable CUDA device" + skipped;
}

tsr_status CreateContext(const tsr_option* options, size_t n_options, tsr_plugin_ctx** out,
                         tsr_error* err) {
  if (out == nullptr) return Fail(err, TSR_ERR_INVALID_ARGUMENT, "create_context: out is NULL");
  if (n_options > 0 && options == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "create_context: options is NULL");
  auto ctx = std::make_unique<tsr_plugin_ctx>();
  for (size_t i = 0; i < n_options; ++i) {
    const char* key = options[i].key != nullptr ? options[i].key : "";
    const char* value = options[i].value != nullptr ? options[i].value : "";
    if (std::strcmp(key, "matmul_precision") == 0) {
      // exact: f32 activations kept to ~24 bits on tensor cores (3 bf16 pieces; the default, and
      // what the conformance tolerance needs). bf16: activations rounded to bf16 (3x faster
      // prefill GEMMs, ~3 significant digits), the usual inference trade-off.
      if (std::strcmp(value, "exact") == 0) {
        ctx->matmul_terms = 3;
      } else if (std::strcmp(value, "bf16") == 0) {
        ctx->matmul_terms = 1;
      } else {
        return Fail(err, TSR_ERR_INVALID_ARGUMENT,
                    std::string("cuda backend: option \"matmul_precision\" must be exact or "
                                "bf16, got \"") +
                        value + "\"");
      }
    } else {
      return Fail(
          err, TSR_ERR_INVALID_ARGUMENT,
          std::string("cuda backend: unknown option \"") + key + "\" (known: matmul_precision)");
    }
  }
  DiscoverDevices(ctx.get());
  if (ctx->devices.empty()) {
    Log(TSR_LOG_DEBUG, "cuda backend: no devices: " + ctx->absence);
  } else {
    for (const DeviceInfo& d : ctx->devices)
      Log(TSR_LOG_DEBUG, "cuda backend: " + d.name + " (" + d.description + ")");
  }
  *out = ctx.release();
  return TSR_OK;
}

void DestroyContext(tsr_plugin_ctx* ctx) {
  delete ctx;
}

const char* AbsenceReason(tsr_plugin_ctx* ctx) {
  return ctx != nullptr ? ctx->absence.c_str() : "";
}

tsr_status DeviceCount(tsr_plugin_ctx* ctx, int32_t* out_count, tsr_error* err) {
  if (ctx == nullptr || out_count == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "device_count: NULL argument");
  *out_count = static_cast<int32_t>(ctx->devices.size());
  return TSR_OK;
}

tsr_status DeviceProps(tsr_plugin_ctx* ctx, int32_t index, tsr_device_props* out, tsr_error* err) {
  if (ctx == nullptr || out == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "device_props: NULL argument");
  if (index < 0 || index >= static_cast<int32_t>(ctx->devices.size()))
    return Fail(err, TSR_ERR_NOT_FOUND, "device_props: no CUDA device " + std::to_string(index));
  const DeviceInfo& d = ctx->devices[static_cast<size_t>(index)];
  tsr_device_props p{};
  p.struct_size = sizeof(p);
  p.name = d.name.c_str();
  p.description = d.description.c_str();
  p.kind = d.integrated ? TSR_DEVICE_GPU_INTEGRATED : TSR_DEVICE_GPU_DISCRETE;
  // buffer_import_host works but copies (upload once), so HOST_IMPORT (zero-copy) is not set.
  p.caps = TSR_CAP_F16 | TSR_CAP_BF16 | TSR_CAP_Q8 | TSR_CAP_Q4 | TSR_CAP_ASYNC;
  size_t free_b = 0, total_b = 0;
  if (cudaSetDevice(d.ordinal) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
    p.memory_total = total_b;
    p.memory_free = free_b;
  }
  cudaGetLastError();
  p.compute_units = d.sms;
  p.exec_styles = TSR_EXEC_KERNEL;
  CopyOut(p, out);
  return TSR_OK;
}

// Reads and clears the device error word (after the stream is drained).
Status TakeDeviceErrors(tsr_device* dev) {
  int bits = 0;
  cudaError_t e = cudaMemcpy(&bits, dev->err_flag, sizeof(bits), cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) return CudaStatus(e, "reading the device error word");
  if (bits == 0) return OkStatus();
  cudaMemset(dev->err_flag, 0, sizeof(int));
  std::string what;
  if (bits & kErrIndexOutOfRange) what += " ids/slots out of range;";
  if (bits & kErrBadSeqlens) what += " inconsistent cu_q/cu_k/kv_lens;";
  if (bits & kErrBadBlockTable) what += " block table entries outside the cache;";
  return InvalidArgument("an earlier execute was given invalid data:" + what +
                         " affected outputs were zeroed or skipped");
}

// Waits for everything queued on the device, then reports kernel faults and data errors.
Status Drain(tsr_device* dev) {
  cudaError_t e = cudaStreamSynchronize(dev->stream);
  if (e != cudaSuccess) return CudaStatus(e, "stream synchronize");
  return TakeDeviceErrors(dev);
}

void DeviceClose(tsr_device* dev) {
  if (dev == nullptr) return;
  cudaSetDevice(dev->ordinal);
  if (dev->stream != nullptr) cudaStreamSynchronize(dev->stream);
  if (dev->err_flag != nullptr) cudaFree(dev->err_flag);
  if (dev->stream != nullptr) cudaStreamDestroy(dev->stream);
  delete dev;
}

tsr_status DeviceOpen(tsr_plugin_ctx* ctx, int32_t index, tsr_device** out, tsr_error* err) {
  if (ctx == nullptr || out == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "device_open: NULL argument");
  if (index < 0 || index >= static_cast<int32_t>(ctx->devices.size()))
    return Fail(err, TSR_ERR_NOT_FOUND, "device_open: no CUDA device " + std::to_string(index));
  std::unique_ptr<tsr_device, void (*)(tsr_device*)> dev(new tsr_device, DeviceClose);
  dev->ctx = ctx;
  dev->ordinal = ctx->devices[static_cast<size_t>(index)].ordinal;
  cudaError_t e = cudaSetDevice(dev->ordinal);
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&dev->stream, cudaStreamNonBlocking);
  if (e == cudaSuccess) e = cudaMalloc(reinterpret_cast<void**>(&dev->err_flag), sizeof(int));
  if (e == cudaSuccess) e = cudaMemset(dev->err_flag, 0, sizeof(int));
  if (e != cudaSuccess) return FromCuda(e, "device_open", err);
  dev->run.stream = dev->stream;
  dev->run.err_flag = dev->err_flag;
  dev->run.matmul_terms = ctx->matmul_terms;
  dev->run.scratch = &dev->scratch;
  *out = dev.release();
  return TSR_OK;
}

tsr_status DeviceSynchronize(tsr_device* dev, tsr_error* err) {
  if (dev == nullptr) return Fail(err, TSR_ERR_INVALID_ARGUMENT, "device_synchronize: NULL");
  if (cudaError_t e = cudaSetDevice(dev->ordinal); e != cudaSuccess)
    return FromCuda(e, "device_synchronize", err);
  return FromStatus(Drain(dev), err);
}

// ---------------------------------------------------------------------------------------------
// Buffers and events
// ---------------------------------------------------------------------------------------------

tsr_status BufferTypeCount(tsr_device* dev, int32_t* out_count, tsr_error* err) {
  if (dev == nullptr || out_count == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_type_count: NULL argument");
  *out_count = 1;
  return TSR_OK;
}

tsr_status BufferTypeProps(tsr_device* dev, int32_t type, tsr_buffer_type_props* out,
                           tsr_error* err) {
  if (dev == nullptr || out == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_type_props: NULL argument");
  if (type != 0)
    return Fail(err, TSR_ERR_NOT_FOUND,
                "buffer_type_props: no buffer type " + std::to_string(type));
  tsr_buffer_type_props p{};
  p.struct_size = sizeof(p);
  p.name = "cuda_device";
  p.alignment = kAlignment;
  p.max_size = 0;
  p.host_visible = 0;
  CopyOut(p, out);
  return TSR_OK;
}

tsr_status BufferAlloc(tsr_device* dev, int32_t type, uint64_t size, tsr_buffer** out,
                       tsr_error* err) {
  if (dev == nullptr || out == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_alloc: NULL argument");
  if (type != 0)
    return Fail(err, TSR_ERR_NOT_FOUND, "buffer_alloc: no buffer type " + std::to_string(type));
  if (cudaError_t e = cudaSetDevice(dev->ordinal); e != cudaSuccess)
    return FromCuda(e, "buffer_alloc", err);
  void* p = nullptr;
  // A 0-byte buffer still gets a real allocation, so every buffer has a distinct address.
  if (cudaError_t e = cudaMalloc(&p, std::max<uint64_t>(size, 1)); e != cudaSuccess) {
    cudaGetLastError();
    return Fail(err, TSR_ERR_OUT_OF_MEMORY,
                "cuda backend: cannot allocate " + std::to_string(size) +
                    " bytes of device memory: " + cudaGetErrorString(e));
  }
  auto buf = std::make_unique<tsr_buffer>();
  buf->dev = dev;
  buf->data = static_cast<uint8_t*>(p);
  buf->size = size;
  *out = buf.release();
  return TSR_OK;
}

void BufferFree(tsr_buffer* buf) {
  if (buf == nullptr) return;
  cudaSetDevice(buf->dev->ordinal);
  cudaFree(buf->data);  // implicitly waits for work that may still use it
  delete buf;
}

using backend::CheckRange;

// Either records `done` (async) or waits for the stream (sync).
tsr_status Complete(tsr_device* dev, tsr_event* done, bool check_data, const char* what,
                    tsr_error* err) {
  if (done != nullptr) return FromCuda(cudaEventRecord(done->ev, dev->stream), what, err);
  if (check_data) return FromStatus(Drain(dev), err);
  return FromCuda(cudaStreamSynchronize(dev->stream), what, err);
}

tsr_status BufferUpload(tsr_buffer* dst, uint64_t dst_offset, const void* src, uint64_t size,
                        tsr_event* done, tsr_error* err) {
  if (dst == nullptr || (src == nullptr && size > 0))
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_upload: NULL argument");
  if (tsr_status s = CheckRange(dst, dst_offset, size, "buffer_upload", err); s != TSR_OK) return s;
  tsr_device* dev = dst->dev;
  cudaError_t e = cudaSetDevice(dev->ordinal);
  if (e == cudaSuccess && size > 0)
    e = cudaMemcpyAsync(dst->data + dst_offset, src, size, cudaMemcpyHostToDevice, dev->stream);
  if (e != cudaSuccess) return FromCuda(e, "buffer_upload", err);
  return Complete(dev, done, false, "buffer_upload", err);
}

// Wraps host memory by copying it to the device once (weights stay resident; the host's mmap
// can be dropped after this returns).
tsr_status BufferImportHost(tsr_device* dev, void* ptr, uint64_t size, tsr_buffer** out,
                            tsr_error* err) {
  if (dev == nullptr || out == nullptr || (ptr == nullptr && size > 0))
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_import_host: NULL argument");
  tsr_buffer* buf = nullptr;
  if (tsr_status s = BufferAlloc(dev, 0, size, &buf, err); s != TSR_OK) return s;
  if (tsr_status s = BufferUpload(buf, 0, ptr, size, nullptr, err); s != TSR_OK) {
    BufferFree(buf);
    return s;
  }
  *out = buf;
  return TSR_OK;
}

tsr_status BufferMap(tsr_buffer* buf, void** out_ptr, tsr_error* err) {
  if (buf == nullptr || out_ptr == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_map: NULL argument");
  return Fail(err, TSR_ERR_UNSUPPORTED, "cuda backend: device buffers are not host-visible");
}

tsr_status BufferDownload(tsr_buffer* src, uint64_t src_offset, void* dst, uint64_t size,
                          tsr_event* done, tsr_error* err) {
  if (src == nullptr || (dst == nullptr && size > 0))
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_download: NULL argument");
  if (tsr_status s = CheckRange(src, src_offset, size, "buffer_download", err); s != TSR_OK)
    return s;
  tsr_device* dev = src->dev;
  cudaError_t e = cudaSetDevice(dev->ordinal);
  if (e == cudaSuccess && size > 0)
    e = cudaMemcpyAsync(dst, src->data + src_offset, size, cudaMemcpyDeviceToHost, dev->stream);
  if (e != cudaSuccess) return FromCuda(e, "buffer_download", err);
  return Complete(dev, done, true, "buffer_download", err);
}

tsr_status BufferCopy(tsr_buffer* src, uint64_t src_offset, tsr_buffer* dst, uint64_t dst_offset,
                      uint64_t size, tsr_event* done, tsr_error* err) {
  if (src == nullptr || dst == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_copy: NULL buffer");
  if (src->dev != dst->dev)
    return Fail(err, TSR_ERR_UNSUPPORTED, "cuda backend: buffer_copy across devices");
  if (tsr_status s = CheckRange(src, src_offset, size, "buffer_copy (source)", err); s != TSR_OK)
    return s;
  if (tsr_status s = CheckRange(dst, dst_offset, size, "buffer_copy (destination)", err);
      s != TSR_OK)
    return s;
  tsr_device* dev = src->dev;
  cudaError_t e = cudaSetDevice(dev->ordinal);
  if (e == cudaSuccess && size > 0) {
    e = cudaMemcpyAsync(dst->data + dst_offset, src->data + src_offset, size,
                        cudaMemcpyDeviceToDevice, dev->stream);
  }
  if (e != cudaSuccess) return FromCuda(e, "buffer_copy", err);
  // Device-to-device copies are stream-ordered like executes: no wait without `done`.
  return done != nullptr ? Complete(dev, done, false, "buffer_copy", err) : TSR_OK;
}

tsr_status EventCreate(tsr_device* dev, tsr_event** out, tsr_error* err) {
  if (dev == nullptr || out == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "event_create: NULL argument");
  auto ev = std::make_unique<tsr_event>();
  ev->dev = dev;
  cudaError_t e = cudaSetDevice(dev->ordinal);
  if (e == cudaSuccess) e = cudaEventCreateWithFlags(&ev->ev, cudaEventDisableTiming);
  if (e != cudaSuccess) return FromCuda(e, "event_create", err);
  *out = ev.release();
  return TSR_OK;
}

tsr_status EventWait(tsr_event* ev, tsr_error* err) {
  if (ev == nullptr) return Fail(err, TSR_ERR_INVALID_ARGUMENT, "event_wait: NULL event");
  cudaError_t e = cudaSetDevice(ev->dev->ordinal);
  if (e == cudaSuccess) e = cudaEventSynchronize(ev->ev);  // never recorded: returns at once
  return FromCuda(e, "event_wait", err);
}

void EventDestroy(tsr_event* ev) {
  if (ev == nullptr) return;
  cudaSetDevice(ev->dev->ordinal);
  cudaEventDestroy(ev->ev);
  delete ev;
}

// ---------------------------------------------------------------------------------------------
// Graph views: supports_op and execute
// ---------------------------------------------------------------------------------------------

using backend::RawEnum;
using backend::ReadAbiStruct;
using LoadedNode = backend::LoadedNode<OpArgs>;

// Everything a node touches, converted; `with_data` also resolves and range-checks the buffers.
Status LoadNode(const tsr_device* dev, const tsr_graph_view& g, int32_t node_index, bool with_data,
                LoadedNode* ln) {
  std::string e = backend::LoadNode<tsr_buffer>(dev, g, node_index, with_data, ln);
  return e.empty() ? OkStatus() : InvalidArgument(std::move(e));
}

bool ViewOk(const tsr_graph_view* graph) {
  return graph != nullptr && graph->n_tensors >= 0 && graph->n_nodes >= 0;
}

tsr_status SupportsOp(tsr_device* dev, const tsr_graph_view* graph, int32_t node,
                      tsr_bool* out_supported, tsr_error* err) {
  if (dev == nullptr || out_supported == nullptr || !ViewOk(graph))
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "supports_op: NULL or malformed argument");
  if (graph->nodes == nullptr || node < 0 || node >= graph->n_nodes)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "supports_op: node index out of range");
  *out_supported = 0;
  auto ln = std::make_unique<LoadedNode>();
  if (!LoadNode(dev, *graph, node, /*with_data=*/false, ln.get()).ok()) return TSR_OK;
  if (FindRunner(RawEnum(ln->node.op)) == nullptr) return TSR_OK;
  const Status s = ValidateOp(ln->args);
  *out_supported = s.ok() ? 1 : 0;
  if (!s.ok()) Fail(err, TSR_OK, s.message());  // why not, for logs; the call still succeeds
  return TSR_OK;
}

Status ExecuteNode(tsr_device* dev, const tsr_graph_view& g, int32_t node_index) {
  auto ln = std::make_unique<LoadedNode>();
  TSR_RETURN_IF_ERROR(LoadNode(dev, g, node_index, /*with_data=*/true, ln.get()));
  const OpFn run = FindRunner(RawEnum(ln->node.op));
  if (run == nullptr) return InvalidArgument("unknown op " + std::to_string(RawEnum(ln->node.op)));
  TSR_RETURN_IF_ERROR(ValidateOp(ln->args));
  ln->args.ctx = &dev->run;
  return run(ln->args);
}

tsr_status Execute(tsr_device* dev, const tsr_graph_view* graph, const int32_t* node_ids,
                   int32_t n_node_ids, tsr_event* done, tsr_error* err) {
  if (dev == nullptr || !ViewOk(graph) || (node_ids == nullptr && n_node_ids > 0))
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "execute: NULL or malformed argument");
  if (cudaError_t e = cudaSetDevice(dev->ordinal); e != cudaSuccess)
    return FromCuda(e, "execute", err);
  for (int32_t i = 0; i < n_node_ids; ++i) {
    const Status s = ExecuteNode(dev, *graph, node_ids[i]);
    if (!s.ok()) {
      int op = 0;
      if (graph->nodes != nullptr && node_ids[i] >= 0 && node_ids[i] < graph->n_nodes)
        op = RawEnum(ReadAbiStruct(graph->nodes, node_ids[i]).op);
      return Fail(err, ToTsrStatus(s.code()),
                  "cuda backend: node " + std::to_string(node_ids[i]) + " (" + OpName(op) +
                      "): " + s.message());
    }
  }
  if (done != nullptr) return FromCuda(cudaEventRecord(done->ev, dev->stream), "execute", err);
  return TSR_OK;
}

tsr_plugin_api MakeApi() {
  tsr_plugin_api api = backend::NewApiTable("cuda", "Tessera CUDA backend", "0.1.0");
  TESSERA_BACKEND_FILL_DEVICE_API(api, Guarded);
  return api;
}

const tsr_plugin_api kApi = MakeApi();

}  // namespace
}  // namespace tessera::cuda

extern "C" {

TSR_PLUGIN_EXPORT const tsr_plugin_api* tsr_plugin_init(const tsr_host_api* host, tsr_error* err) {
  return tessera::backend::PluginInit(tessera::cuda::kBackend, host, &tessera::cuda::kApi, err);
}

// Touches no device and loads no driver: whether a GPU is usable is answered by device_count and
// absence_reason, which `engine devices -v` prints.
TSR_PLUGIN_EXPORT int32_t tsr_plugin_probe(void) {
  return 100;
}

}  // extern "C"
