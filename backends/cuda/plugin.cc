// The CUDA backend's C ABI: entry points, function table, context (driver/device discovery and
// the reason when there is none), devices (one stream each), device-memory buffers, events,
// supports_op and execute.
//
// Execution model. Every device owns one non-blocking stream; uploads, downloads, copies and
// executes are enqueued on it in call order. `execute` never waits: with done == NULL it still
// returns once the work is queued, which the host cannot tell apart from finished work because
// every later call that exposes memory (download, synchronize, event_wait) is ordered behind it
// on the same stream. Uploads/downloads with done == NULL leave the host's memory free to reuse
// when they return: downloads and large uploads by waiting, small uploads by copying into a
// pinned staging slot and enqueueing (UploadStaging); with `done` they record the event and
// return. Repeated executes replay CUDA graphs (exec_graph.h).
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
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "backends/common/status_abi.h"
#include "backends/cuda/env_knob.h"
#include "backends/cuda/exec_graph.h"
#include "backends/cuda/host_download.h"
#include "backends/cuda/launch.h"
#include "backends/cuda/ops.h"
#include "tessera/backend/abi.h"
#include "tessera/backend/device_ctx.h"
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

namespace tessera::cuda {
namespace {

// Small synchronous uploads (a decode step's token ids, positions, block table, ...) are copied
// into pinned slots and enqueued without waiting: the host's memory is free again once the copy
// into the slot returns, and the stream orders the transfer before later executes. A slot is
// reused only after the event recorded behind its transfer completed.
struct UploadStaging {
  static constexpr int kSlots = 16;
  static constexpr uint64_t kSlotBytes = 64 * 1024;
  uint8_t* pinned = nullptr;  // kSlots * kSlotBytes, cudaHostAlloc
  cudaEvent_t done[kSlots] = {};
  int next = 0;
};

// Small synchronous uploads held back until the device's next call that enqueues work or exposes
// memory (execute, download, copy, a larger upload, synchronize, free), then sent as one
// cudaMemcpyBatchAsync whose sources the driver reads during the call. A decode step's 7-8
// uploads cost the host ~6-8 us each through the pinned slots (an event wait, a copy, an event
// record), with the GPU idle: one batch call replaces them. Copies of one batch may run in any
// order, so an upload that overlaps a held one flushes first. TESSERA_CUDA_UPLOAD_BATCH=0: the
// pinned slots for every upload.
struct PendingUploads {
  static constexpr size_t kMaxEntries = 32;
  static constexpr uint64_t kMaxBytes = 4096;        // larger uploads take the slots
  static constexpr uint64_t kDataBytes = 64 * 1024;  // the held bytes, 16-byte aligned each
  std::vector<uint8_t> data = std::vector<uint8_t>(kDataBytes);  // copies of the sources
  void* dst[kMaxEntries] = {};
  const void* src[kMaxEntries] = {};
  size_t size[kMaxEntries] = {};
  size_t n = 0;
  uint64_t used = 0;
};

// Per-op GPU time when TESSERA_CUDA_PROFILE=1 (graphs off; one event pair a node and a stream
// sync per execute, so only for finding where time goes). Printed to stderr at device close.
struct OpProfile {
  struct Row {
    double gpu_ms = 0;
    int64_t count = 0;
  };
  std::map<std::string, Row> rows;
  std::vector<cudaEvent_t> events;
  double host_ms = 0;  // wall time inside execute, the sync included
  int64_t executes = 0;
  bool whole_executes = false;  // TESSERA_CUDA_PROFILE=exec: one row per execute size
};

// The raw view of the last execute served by a graph (ExecuteGraph's fast path). BuildExecKey
// costs the host ~0.3-0.6 us a node (~130-360 us for a 276-548-node decode step, measured
// 2026-11-27 on H100 hosts) while the GPU waits for the launch; a decode step hands over the
// same arrays every time, so a byte compare of them (5-21 us) replaces it. Byte-identical arrays,
// the same node ids, no buffer freed since (every tsr_buffer* still names the same device memory
// and size) and the same scratch generation give BuildExecKey's exact key, so the graph found for
// it then is the one Find would return now, unless the cache changed since (epoch).
struct LastReplay {
  std::vector<uint8_t> nodes;    // the view's node array, n_nodes * stride bytes
  std::vector<uint8_t> tensors;  // the view's tensor array, n_tensors * stride bytes
  std::vector<int32_t> ids;      // the executed node ids
  uint64_t scratch_generation = 0;
  uint64_t buffer_frees = 0;       // g_buffer_frees then
  uint64_t cache_epoch = 0;        // GraphCache::epoch() then
  cudaGraphExec_t exec = nullptr;  // nullptr: nothing remembered
};

// The eager download (cu24-step; the contract at tsr_plugin_api.host_alloc, as the Vulkan plugin's
// RecordEagerCopy): where the last two synchronous downloads read the same range into the same
// host_alloc bytes, each after an execute of the same graph view and node list (a decode step's
// logits or ids), the next such execute enqueues that copy right behind its kernels, so the
// device_synchronize that follows waits for the copy too and the download returns at once: one
// wait a step instead of two (each a round trip through the host while the GPU idles).
// TESSERA_CUDA_EAGER_DOWNLOAD=0: every download copies when called, as before.
struct EagerDownload {
  struct Sig {  // an execute: the view's arrays and the node list (the engine's are stable)
    const void* tensors = nullptr;
    const void* nodes = nullptr;
    const int32_t* ids = nullptr;
    int32_t n = -1;
    bool operator==(const Sig&) const = default;
  };
  bool on = true;
  Sig exec;  // the last execute's
  // The last synchronous download into host_alloc memory and the execute before it.
  const void* src = nullptr;  // tsr_buffer*
  uint64_t offset = 0, size = 0;
  uint8_t* dst = nullptr;
  Sig sig;
  bool confirmed = false;  // the last two downloads were this one, each after an execute `sig`
  bool pending = false;    // the last execute enqueued the copy; nothing touched the range since
  int64_t served = 0;      // downloads served (TESSERA_CUDA_STEP_TIMES)
};

// TESSERA_CUDA_STEP_TIMES=1 (lab; cu24-step): host time stamps of each decode step's boundary
// (the calls between two graph replays) and the GPU time of each replay (two timing events), as
// medians on stderr at device close. A step: execute [flush held uploads, graph key, launch,
// eager copy] -> device_synchronize -> download -> the host's own work -> the next execute.
struct StepTimes {
  using Tp = std::chrono::steady_clock::time_point;
  Tp exec0, flushed, keyed, launched, exec_end, sync0, sync1, dl0, dl1;
  bool replay = false;  // the last execute replayed a graph
  bool synced = false, downloaded = false;
  cudaEvent_t ev[2] = {};
  std::vector<std::vector<double>> cols;  // us, one vector a column (kStepCols)
};
constexpr const char* kStepCols[] = {"step (execute to execute)",
                                     "execute: flush held uploads",
                                     "execute: graph key",
                                     "execute: cudaGraphLaunch",
                                     "execute: eager copy + return",
                                     "execute end -> synchronize",
                                     "synchronize (wait incl.)",
                                     "synchronize end -> download",
                                     "download",
                                     "download end -> next execute (host: engine)",
                                     "GPU: replay start -> end (events)",
                                     "step - GPU replay"};
constexpr int kStepColCount = sizeof(kStepCols) / sizeof(kStepCols[0]);

// Counts BufferFree calls of every device (a freed tsr_buffer's address may come back for a new
// buffer; LastReplay is only trusted while this has not moved).
std::atomic<uint64_t> g_buffer_frees{0};

// Adds the host's wall time since t0 to a profile row (host-side calls: uploads, synchronize).
// No-op (and no string built) without a profile.
void AddHostRow(OpProfile* p, const char* what, std::chrono::steady_clock::time_point t0) {
  if (p == nullptr) return;
  OpProfile::Row& r = p->rows[what];
  r.gpu_ms +=
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ++r.count;
}

}  // namespace
}  // namespace tessera::cuda

struct tsr_device {
  tsr_plugin_ctx* ctx = nullptr;
  int ordinal = 0;
  cudaStream_t stream = nullptr;
  int* err_flag = nullptr;            // device memory, DeviceErrorBits
  int* err_host = nullptr;            // pinned copy target of err_flag
  unsigned* gemv_counters = nullptr;  // device memory, zeroed (streaming GEMV row-group counts)
  tessera::cuda::Scratch scratch;
  tessera::cuda::RunContext run;
  tessera::cuda::UploadStaging staging;
  tessera::cuda::PendingUploads pending;
  bool batch_uploads = true;  // TESSERA_CUDA_UPLOAD_BATCH (PendingUploads)
  bool use_graphs = true;     // TESSERA_CUDA_GRAPHS=0 turns capture off
  tessera::cuda::GraphCache graphs;
  tessera::cuda::ExecKey key;  // reused between executes (no allocation in steady state)
  std::unique_ptr<tessera::cuda::OpProfile> profile;
  // Large synchronous downloads (a step's logits) through pinned memory; first use creates it.
  // TESSERA_CUDA_PINNED_DOWNLOAD=0: the driver's pageable copy instead.
  std::unique_ptr<tessera::cuda::HostDownload> download;
  bool pinned_download = true;
  // host_alloc's page-locked ranges (ABI 1.2): start -> bytes. A download into one of them is
  // one DMA copy, no staging.
  std::mutex host_mu;
  std::map<uintptr_t, uint64_t> host_allocs;
  int64_t graph_replays = 0;  // executes served by a cached graph (TESSERA_CUDA_PROFILE=exec)
  // Scratch nodes of a fusion (plugin.cc ExecuteFused); allocated at first use.
  std::unique_ptr<tessera::backend::LoadedNode<tessera::cuda::OpArgs>[]> fuse_nodes;
  // The decode-batch GEMMs sharing one x split (plugin.cc SplitMembers).
  tessera::cuda::MatmulParams split_members[tessera::cuda::kGemmMaxMembers];
  // SWIGLU in the gate/up GEMV group's epilogue (TESSERA_CUDA_FUSE_SWIGLU_EPI, FuseSwigluEpilogue).
  int fuse_swiglu_epi = -1;
  // ROPE q/k + KV_WRITE k/v in the norm + q/k/v GEMV's epilogue (TESSERA_CUDA_FUSE_ROPE_EPI,
  // FuseRopeKvEpilogue) and its arguments for the launch.
  bool fuse_rope_epi = true;
  tessera::cuda::GemvRopeKv rope_kv;
  // ExecuteGraph's fast path (TESSERA_CUDA_GRAPH_FASTKEY=0 turns it off: the key every time).
  bool fast_key = true;
  tessera::cuda::LastReplay last_replay;
  tessera::cuda::EagerDownload eager;  // TESSERA_CUDA_EAGER_DOWNLOAD (EagerDownload)
  bool drained = false;  // nothing enqueued since the last Drain (which found no error)
  std::unique_ptr<tessera::cuda::StepTimes> step_times;  // TESSERA_CUDA_STEP_TIMES
  // TESSERA_CUDA_LAB_SKIP (lab only: WRONG OUTPUTS): launches to leave out (LabSkipped).
  std::vector<std::string> lab_skip;
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

using backend::CopyOut;
using backend::Fail;
using backend::Log;

tsr_status FromStatus(const Status& s, tsr_error* err) {
  return backend::FromStatus(kBackend, s, err);
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
  if (tsr_status s = backend::CheckCreateContextArgs(options, n_options, out, err); s != TSR_OK)
    return s;
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
  backend::LogDiscovery(kBackend, *ctx);
  *out = ctx.release();
  return TSR_OK;
}

constexpr auto DestroyContext = backend::DestroyContext<tsr_plugin_ctx>;
constexpr auto AbsenceReason = backend::AbsenceReason<tsr_plugin_ctx>;
constexpr auto DeviceCount = backend::DeviceCount<tsr_plugin_ctx>;

tsr_status DeviceProps(tsr_plugin_ctx* ctx, int32_t index, tsr_device_props* out, tsr_error* err) {
  if (tsr_status s = backend::CheckDeviceIndex(ctx, index, out, "device_props", "CUDA", err);
      s != TSR_OK)
    return s;
  const DeviceInfo& d = ctx->devices[static_cast<size_t>(index)];
  tsr_device_props p = backend::KernelDeviceProps(d);
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
  CopyOut(p, out);
  return TSR_OK;
}

// ABI 1.1: the live form of DeviceProps' memory figures (cudaMemGetInfo on the device).
tsr_status DeviceMemoryInfo(tsr_device* dev, uint64_t* out_free, uint64_t* out_total,
                            tsr_error* err) {
  if (dev == nullptr || out_free == nullptr || out_total == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "device_memory_info: NULL argument");
  size_t free_b = 0, total_b = 0;
  cudaError_t e = cudaSetDevice(dev->ordinal);
  if (e == cudaSuccess) e = cudaMemGetInfo(&free_b, &total_b);
  if (e != cudaSuccess) return FromCuda(e, "device_memory_info", err);
  *out_free = free_b;
  *out_total = total_b;
  return TSR_OK;
}

// ABI 1.2: page-locked host memory (portable: pinned for every device), so a step's logits are
// downloaded by one DMA copy straight into the engine's buffer (BufferDownload).
tsr_status HostAlloc(tsr_device* dev, uint64_t size, void** out_ptr, tsr_error* err) {
  if (dev == nullptr || out_ptr == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "host_alloc: NULL argument");
  void* p = nullptr;
  cudaError_t e = cudaSetDevice(dev->ordinal);
  if (e == cudaSuccess) e = cudaHostAlloc(&p, std::max<uint64_t>(size, 1), cudaHostAllocPortable);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return Fail(err, TSR_ERR_OUT_OF_MEMORY,
                std::string("host_alloc: ") + cudaGetErrorString(e) + " (" + std::to_string(size) +
                    " bytes)");
  }
  std::lock_guard<std::mutex> l(dev->host_mu);
  dev->host_allocs[reinterpret_cast<uintptr_t>(p)] = size;
  *out_ptr = p;
  return TSR_OK;
}

void HostFree(tsr_device* dev, void* ptr) noexcept {
  if (dev == nullptr || ptr == nullptr) return;
  uint64_t bytes = 0;
  {
    std::lock_guard<std::mutex> l(dev->host_mu);
    auto it = dev->host_allocs.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == dev->host_allocs.end()) return;  // not ours
    bytes = it->second;
    dev->host_allocs.erase(it);
  }
  EagerDownload& g = dev->eager;
  const auto* p = static_cast<const uint8_t*>(ptr);
  if (g.dst != nullptr && g.dst >= p && g.dst < p + bytes) {
    // An eager copy into it may be in flight; none goes there any more.
    cudaSetDevice(dev->ordinal);
    cudaStreamSynchronize(dev->stream);
    g.dst = nullptr;
    g.confirmed = g.pending = false;
  }
  cudaFreeHost(ptr);
}

// Whether [p, p + size) lies inside one of host_alloc's page-locked ranges.
bool InHostAlloc(tsr_device* dev, const void* p, uint64_t size) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> l(dev->host_mu);
  auto it = dev->host_allocs.upper_bound(a);
  if (it == dev->host_allocs.begin()) return false;
  --it;
  return a - it->first + size <= it->second;
}

static_assert(kErrIndexOutOfRange == backend::kDataErrIndex &&
                  kErrBadSeqlens == backend::kDataErrSeqlens &&
                  kErrBadBlockTable == backend::kDataErrBlockTable,
              "the kernels' error bits are backend::kDataErr*");

// Reads and clears the device error word (after the stream is drained).
Status TakeDeviceErrors(tsr_device* dev) {
  const int bits = *dev->err_host;
  if (bits == 0) return OkStatus();
  *dev->err_host = 0;
  cudaMemset(dev->err_flag, 0, sizeof(int));
  return backend::DataErrorStatus(static_cast<uint32_t>(bits));
}

// Enqueues the held uploads (PendingUploads) on the device's stream. If the batch call fails (a
// driver without it), the copies go one by one and batching stays off.
Status FlushUploads(tsr_device* dev) {
  PendingUploads& p = dev->pending;
  if (p.n == 0) return OkStatus();
  dev->drained = false;
  const auto t0 = std::chrono::steady_clock::now();
  cudaMemcpyAttributes attr{};
  attr.srcAccessOrder = cudaMemcpySrcAccessOrderDuringApiCall;
  size_t first = 0;
  cudaError_t e = cudaMemcpyBatchAsync(p.dst, p.src, p.size, p.n, &attr, &first, 1, dev->stream);
  if (e != cudaSuccess) {
    cudaGetLastError();
    dev->batch_uploads = false;
    e = cudaSuccess;
    for (size_t i = 0; i < p.n && e == cudaSuccess; ++i)
      e = cudaMemcpyAsync(p.dst[i], p.src[i], p.size[i], cudaMemcpyHostToDevice, dev->stream);
  }
  p.n = 0;
  p.used = 0;
  AddHostRow(dev->profile.get(), "held uploads: one batch copy (host)", t0);
  return CudaStatus(e, "buffer_upload (held uploads)");
}

// Holds a small upload (PendingUploads); false when it must go now (too large, batching off).
StatusOr<bool> HoldUpload(tsr_device* dev, uint8_t* dst, const void* src, uint64_t size) {
  PendingUploads& p = dev->pending;
  if (!dev->batch_uploads || size == 0 || size > PendingUploads::kMaxBytes) return false;
  bool flush = p.n == PendingUploads::kMaxEntries || p.used + size > PendingUploads::kDataBytes;
  for (size_t i = 0; i < p.n && !flush; ++i) {
    const auto* b = static_cast<const uint8_t*>(p.dst[i]);
    flush = dst < b + p.size[i] && b < dst + size;  // copies of a batch are unordered
  }
  if (flush) TSR_RETURN_IF_ERROR(FlushUploads(dev));
  uint8_t* copy = p.data.data() + p.used;
  std::memcpy(copy, src, size);
  p.dst[p.n] = dst;
  p.src[p.n] = copy;
  p.size[p.n] = size;
  ++p.n;
  p.used += (size + 15) / 16 * 16;
  return true;
}

// Waits for everything queued on the device, then reports kernel faults and data errors. The
// error word's copy rides on the stream, so this is one round trip.
Status Drain(tsr_device* dev) {
  cudaError_t e = cudaMemcpyAsync(dev->err_host, dev->err_flag, sizeof(int), cudaMemcpyDeviceToHost,
                                  dev->stream);
  if (e != cudaSuccess) return CudaStatus(e, "reading the device error word");
  e = cudaStreamSynchronize(dev->stream);
  if (e != cudaSuccess) return CudaStatus(e, "stream synchronize");
  Status s = TakeDeviceErrors(dev);
  dev->drained = s.ok();
  return s;
}

void PrintProfile(const OpProfile& p) {
  std::vector<std::pair<std::string, OpProfile::Row>> rows(p.rows.begin(), p.rows.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.gpu_ms > b.second.gpu_ms; });
  double total = 0;
  for (const auto& r : rows) total += r.second.gpu_ms;
  std::fprintf(stderr, "cuda profile: %lld executes, host %.2f ms, gpu (sum of nodes) %.2f ms\n",
               static_cast<long long>(p.executes), p.host_ms, total);
  for (const auto& [name, r] : rows) {
    std::fprintf(stderr, "cuda profile: %8.3f ms %5.1f%% %7lld x %8.2f us  %s\n", r.gpu_ms,
                 total > 0 ? 100.0 * r.gpu_ms / total : 0.0, static_cast<long long>(r.count),
                 r.count > 0 ? 1000.0 * r.gpu_ms / static_cast<double>(r.count) : 0.0,
                 name.c_str());
  }
}

void PrintStepTimes(const StepTimes& t, int64_t eager_served) {
  const size_t n = t.cols.empty() ? 0 : t.cols[0].size();
  std::fprintf(stderr, "cuda step times: %zu steps between graph replays, %lld eager downloads\n",
               n, static_cast<long long>(eager_served));
  for (int c = 0; c < kStepColCount && n > 0; ++c) {
    std::vector<double> v = t.cols[static_cast<size_t>(c)];
    std::sort(v.begin(), v.end());
    double mean = 0;
    for (double x : v) mean += x;
    std::fprintf(stderr, "cuda step times: median %8.2f us  mean %8.2f us  %s\n", v[v.size() / 2],
                 mean / static_cast<double>(v.size()), kStepCols[c]);
  }
}

void DeviceClose(tsr_device* dev) {
  if (dev == nullptr) return;
  cudaSetDevice(dev->ordinal);
  if (dev->stream != nullptr) {
    (void)FlushUploads(dev);
    cudaStreamSynchronize(dev->stream);
  }
  dev->graphs.Clear();
  DumpGemvStamps();  // lab stamp builds only
  if (dev->step_times != nullptr) {
    PrintStepTimes(*dev->step_times, dev->eager.served);
    for (cudaEvent_t e : dev->step_times->ev)
      if (e != nullptr) cudaEventDestroy(e);
  }
  if (dev->profile != nullptr) {
    PrintProfile(*dev->profile);
    for (cudaEvent_t e : dev->profile->events) cudaEventDestroy(e);
  }
  for (cudaEvent_t e : dev->staging.done)
    if (e != nullptr) cudaEventDestroy(e);
  if (dev->staging.pinned != nullptr) cudaFreeHost(dev->staging.pinned);
  dev->download.reset();  // joins its helper threads, frees its pinned buffer
  for (const auto& [ptr, bytes] : dev->host_allocs) cudaFreeHost(reinterpret_cast<void*>(ptr));
  if (dev->err_host != nullptr) cudaFreeHost(dev->err_host);
  if (dev->err_flag != nullptr) cudaFree(dev->err_flag);
  if (dev->gemv_counters != nullptr) cudaFree(dev->gemv_counters);
  if (dev->stream != nullptr) cudaStreamDestroy(dev->stream);
  delete dev;
}

// The decode GEMV's settings (launch.h GemvAux): kernel variant, zeroed row-group counters (the
// streaming variants), the SM count, PDL on sm_90+. Kernel-lab knobs: TESSERA_CUDA_GEMV=off
// (no fusion, no PDL: the launches of the previous release), "V" or "V:W" (variant, warps per
// SM); TESSERA_CUDA_PDL=0 (programmatic dependent launch off), TESSERA_CUDA_FUSE=0 (decode
// fusions off), TESSERA_CUDA_FUSE_NORM / _SWIGLU / _ROPEKV=0|1 (each newer fusion on its own).
constexpr int64_t kGemvCounters = 1 << 16;  // row groups of 16: N <= 1M rows

cudaError_t SetUpGemv(tsr_device* dev) {
  GemvAux& g = dev->run.gemv;
  const char* v = std::getenv("TESSERA_CUDA_GEMV");
  if (v != nullptr && std::strcmp(v, "off") == 0) return cudaSuccess;
  int major = 0;
  cudaError_t e = cudaDeviceGetAttribute(&g.sms, cudaDevAttrMultiProcessorCount, dev->ordinal);
  if (e == cudaSuccess)
    e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev->ordinal);
  const size_t bytes = kGemvCounters * sizeof(unsigned);
  if (e == cudaSuccess) e = cudaMalloc(reinterpret_cast<void**>(&dev->gemv_counters), bytes);
  if (e == cudaSuccess) e = cudaMemset(dev->gemv_counters, 0, bytes);
  if (e != cudaSuccess) return e;
  g.counters = dev->gemv_counters;
  g.n_counters = kGemvCounters;
  SetupGemvStamps();  // lab stamp builds only
  g.pdl = major >= 9 && EnvFlag("TESSERA_CUDA_PDL", true);
  dev->run.fuse = EnvFlag("TESSERA_CUDA_FUSE", true);
  dev->run.fuse_norm = EnvFlag("TESSERA_CUDA_FUSE_NORM", true);
  dev->run.fuse_norm_smallm = EnvFlag("TESSERA_CUDA_FUSE_NORM_SMALLM", true);
  // Decode batches (cuda-agg3, lab/NOTES.md "Decode-batch GEMMs: shared x split, residual ADD,
  // SWIGLU"): q/k/v and gate/up read one x split (default on: 8B x64 +3%); the residual ADD in the
  // GEMM's last write (same bits; on: x64 greedy +0.7-1.9%, nineteenth session, "Aggregate decode
  // at M = 64, fourth pass") and SWIGLU in its x split (off: slower).
  dev->run.fuse_add_smallm = EnvFlag("TESSERA_CUDA_FUSE_ADD_SMALLM", true);
  dev->run.fuse_swiglu_smallm = EnvFlag("TESSERA_CUDA_FUSE_SWIGLU_SMALLM", false);
  dev->run.share_split_smallm = EnvFlag("TESSERA_CUDA_FUSE_SPLIT_SHARE", true);
  // Prefill (cu-xsplit15, lab/NOTES.md "Prefill: one x split"): the shared split, the norm and
  // SWIGLU in it also at M > 64, where the x split pre-pass is the GEMM's largest extra cost
  // (H100 engine pp512 / pp2048 +3-8%; same bits).
  dev->run.fuse_prefill = EnvInt("TESSERA_CUDA_FUSE_PREFILL", 1);
  // SWIGLU into the down GEMV: off by default (H100 lab: every block recomputing silu(g) * u over
  // K = 4864..14336 costs more than the launch it saves; lab/NOTES.md "Decode fusions").
  dev->run.fuse_swiglu = EnvFlag("TESSERA_CUDA_FUSE_SWIGLU", false);
  // Off by default: the one-block launch measured slower than the three it replaces once PDL
  // overlaps those (lab/NOTES.md "Decode fusions"); TESSERA_CUDA_FUSE_ROPEKV=1 turns it on.
  dev->run.fuse_rope_kv = EnvFlag("TESSERA_CUDA_FUSE_ROPEKV", false);
  // SWIGLU computed by the gate/up group launch from its own sums: one launch less a layer, but
  // off by default (H100: the paired launch lost what the SWIGLU launch cost, tg128 0..-3%;
  // lab/NOTES.md "Decode fusions, second pass").
  // cu29-ring: unset = where the TMA-ring GEMV takes the paired launch (GemvRingTakesPair: the
  // 8B / 1B gate/up at M = 1 on the H200; lab/NOTES.md cu29-ring); 1 = always, 0 = never.
  dev->fuse_swiglu_epi = EnvInt("TESSERA_CUDA_FUSE_SWIGLU_EPI", -1);
  // cu24-chain: a layer's ROPE q/k + KV_WRITE k/v done by its norm + q/k/v launch at M = 1 (three
  // launches fewer before the attention: ROPE q, ROPE k, KV_WRITE x2; same bits; H200 tg128 0.5B
  // +0.6%, 1B +0.8%, lab/NOTES.md cu24-chain). TESSERA_CUDA_FUSE_ROPE_EPI=0: as before.
  dev->fuse_rope_epi = EnvFlag("TESSERA_CUDA_FUSE_ROPE_EPI", true);
  // Block-kernel split-K (lab/NOTES.md "Split-K"): by default only grids of at most half an SM
  // count of row groups (0.5B down projection: +4..7% tg on H100; splitting the 1B/8B grids of
  // 128-256 row groups was 5% slower), aiming at 2 blocks an SM. TESSERA_CUDA_SPLITK=F: every
  // grid under F blocks an SM splits (lab knob; 0 = off).
  const char* sk = std::getenv("TESSERA_CUDA_SPLITK");
  const int factor = sk != nullptr && *sk != '\0' ? std::atoi(sk) : 2;
  g.split_blocks = factor > 0 ? factor * g.sms : 0;
  g.split_max_groups = sk != nullptr && *sk != '\0' ? 0 : g.sms / 2;
  if (v != nullptr && *v != '\0') {
    int variant = 0, wps = 0;
    const int n = std::sscanf(v, "%d:%d", &variant, &wps);
    if (n >= 1 && variant >= 0 && variant <= kGemvFull) g.variant = variant;
    if (n == 2 && wps > 0) g.warps_per_sm = wps;
  }
  return cudaSuccess;
}

tsr_status DeviceOpen(tsr_plugin_ctx* ctx, int32_t index, tsr_device** out, tsr_error* err) {
  if (tsr_status s = backend::CheckDeviceIndex(ctx, index, out, "device_open", "CUDA", err);
      s != TSR_OK)
    return s;
  std::unique_ptr<tsr_device, void (*)(tsr_device*)> dev(new tsr_device, DeviceClose);
  dev->ctx = ctx;
  dev->ordinal = ctx->devices[static_cast<size_t>(index)].ordinal;
  cudaError_t e = cudaSetDevice(dev->ordinal);
  // Lab knob TESSERA_CUDA_SYNC=spin|yield|blocking: how the host waits in a synchronize (the
  // context's schedule flag; unset: the driver's automatic choice, which spins while the process
  // has fewer active contexts than the machine has cores).
  if (const char* sync = std::getenv("TESSERA_CUDA_SYNC"); e == cudaSuccess && sync != nullptr) {
    const std::string_view v(sync);
    const unsigned flag = v == "spin"       ? cudaDeviceScheduleSpin
                          : v == "yield"    ? cudaDeviceScheduleYield
                          : v == "blocking" ? cudaDeviceScheduleBlockingSync
                                            : cudaDeviceScheduleAuto;
    if (cudaSetDeviceFlags(flag) != cudaSuccess) {
      cudaGetLastError();
      std::fprintf(stderr, "cuda backend: TESSERA_CUDA_SYNC=%s not applied\n", sync);
    }
  }
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&dev->stream, cudaStreamNonBlocking);
  if (e == cudaSuccess) e = cudaMalloc(reinterpret_cast<void**>(&dev->err_flag), sizeof(int));
  if (e == cudaSuccess) e = cudaMemset(dev->err_flag, 0, sizeof(int));
  if (e == cudaSuccess) e = cudaHostAlloc(reinterpret_cast<void**>(&dev->err_host), sizeof(int), 0);
  if (e == cudaSuccess) *dev->err_host = 0;
  if (e == cudaSuccess) {
    e = cudaHostAlloc(reinterpret_cast<void**>(&dev->staging.pinned),
                      UploadStaging::kSlots * UploadStaging::kSlotBytes, 0);
  }
  for (int i = 0; e == cudaSuccess && i < UploadStaging::kSlots; ++i)
    e = cudaEventCreateWithFlags(&dev->staging.done[i], cudaEventDisableTiming);
  if (e == cudaSuccess) e = SetUpGemv(dev.get());
  if (e != cudaSuccess) return FromCuda(e, "device_open", err);
  dev->use_graphs = EnvFlag("TESSERA_CUDA_GRAPHS", true);
  dev->fast_key = EnvFlag("TESSERA_CUDA_GRAPH_FASTKEY", true);
  if (const char* sk = std::getenv("TESSERA_CUDA_LAB_SKIP"); sk != nullptr) {
    for (std::string_view v(sk); !v.empty();) {
      const size_t bar = v.find('|');
      if (bar != 0) dev->lab_skip.emplace_back(v.substr(0, bar));
      v = bar == std::string_view::npos ? std::string_view() : v.substr(bar + 1);
    }
  }
  dev->batch_uploads = EnvFlag("TESSERA_CUDA_UPLOAD_BATCH", true);
  dev->eager.on = EnvFlag("TESSERA_CUDA_EAGER_DOWNLOAD", true);
  if (EnvFlag("TESSERA_CUDA_STEP_TIMES", false)) {
    dev->step_times = std::make_unique<StepTimes>();
    dev->step_times->cols.resize(kStepColCount);
    for (cudaEvent_t& ev : dev->step_times->ev)
      if (cudaEventCreate(&ev) != cudaSuccess)
        return FromCuda(cudaGetLastError(), "step times", err);
  }
  dev->pinned_download = EnvFlag("TESSERA_CUDA_PINNED_DOWNLOAD", true);
  if (EnvFlag("TESSERA_CUDA_PROFILE", false)) {
    dev->profile = std::make_unique<OpProfile>();
    // "exec": whole executes timed, graphs as configured; else every node, graphs off.
    const char* mode = std::getenv("TESSERA_CUDA_PROFILE");
    dev->profile->whole_executes = std::strcmp(mode, "exec") == 0;
    if (!dev->profile->whole_executes) dev->use_graphs = false;
  }
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
  const auto t0 = std::chrono::steady_clock::now();
  Status s = FlushUploads(dev);
  if (s.ok()) s = Drain(dev);
  AddHostRow(dev->profile.get(), "device_synchronize (host, wait incl.)", t0);
  if (StepTimes* t = dev->step_times.get(); t != nullptr && t->replay && !t->synced) {
    t->sync0 = t0;
    t->sync1 = std::chrono::steady_clock::now();
    t->synced = true;
  }
  return FromStatus(s, err);
}

// ---------------------------------------------------------------------------------------------
// Buffers and events
// ---------------------------------------------------------------------------------------------

constexpr auto BufferTypeCount = backend::SingleBufferTypeCount<tsr_device>;

tsr_status BufferTypeProps(tsr_device* dev, int32_t type, tsr_buffer_type_props* out,
                           tsr_error* err) {
  if (tsr_status s = backend::CheckSingleBufferType(dev, type, out, "buffer_type_props", err);
      s != TSR_OK)
    return s;
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
  if (tsr_status s = backend::CheckSingleBufferType(dev, type, out, "buffer_alloc", err);
      s != TSR_OK)
    return s;
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
  (void)FlushUploads(buf->dev);  // a held upload may target this buffer: it lands, then the free
  if (buf->dev->eager.src == buf) {
    buf->dev->eager.src = nullptr;
    buf->dev->eager.confirmed = buf->dev->eager.pending = false;
  }
  cudaFree(buf->data);  // implicitly waits for work that may still use it
  g_buffer_frees.fetch_add(1, std::memory_order_relaxed);
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
  dev->eager.pending = false;  // the eager copy's range may change
  UploadStaging& st = dev->staging;
  const auto t_up = std::chrono::steady_clock::now();
  struct TimeUpload {  // profile only: the host's cost of a step's small uploads
    OpProfile* p;
    std::chrono::steady_clock::time_point t0;
    uint64_t n;
    ~TimeUpload() {
      if (p != nullptr && n <= UploadStaging::kSlotBytes)
        AddHostRow(p, "upload <= 64 KiB (host)", t0);
    }
  } time_upload{dev->profile.get(), t_up, size};
  if (e == cudaSuccess && done == nullptr) {
    StatusOr<bool> held = HoldUpload(dev, dst->data + dst_offset, src, size);
    if (!held.ok()) return FromStatus(held.status(), err);
    if (*held) return TSR_OK;
  }
  if (e == cudaSuccess) {  // after the held uploads, in call order
    const Status flushed = FlushUploads(dev);
    if (!flushed.ok()) return FromStatus(flushed, err);
  }
  if (e == cudaSuccess && done == nullptr && size > 0 && size <= UploadStaging::kSlotBytes) {
    const int slot = st.next;
    st.next = (st.next + 1) % UploadStaging::kSlots;
    uint8_t* pinned = st.pinned + slot * UploadStaging::kSlotBytes;
    e = cudaEventSynchronize(st.done[slot]);  // the slot's last transfer (long done, normally)
    if (e == cudaSuccess) {
      std::memcpy(pinned, src, size);
      dev->drained = false;
      e = cudaMemcpyAsync(dst->data + dst_offset, pinned, size, cudaMemcpyHostToDevice,
                          dev->stream);
    }
    if (e == cudaSuccess) e = cudaEventRecord(st.done[slot], dev->stream);
    return FromCuda(e, "buffer_upload", err);
  }
  if (e == cudaSuccess && size > 0) {
    dev->drained = false;
    e = cudaMemcpyAsync(dst->data + dst_offset, src, size, cudaMemcpyHostToDevice, dev->stream);
  }
  if (e != cudaSuccess) return FromCuda(e, "buffer_upload", err);
  return Complete(dev, done, false, "buffer_upload", err);
}

// Wraps host memory by copying it to the device once (weights stay resident; the host's mmap
// can be dropped after this returns).
tsr_status BufferImportHost(tsr_device* dev, void* ptr, uint64_t size, tsr_buffer** out,
                            tsr_error* err) {
  return backend::ImportHostByCopy<BufferAlloc, BufferUpload, BufferFree>(dev, ptr, size, out, err);
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
  StepTimes* stamps = dev->step_times.get();
  if (stamps != nullptr && !(stamps->replay && stamps->synced && !stamps->downloaded))
    stamps = nullptr;  // a step's first download after its synchronize only
  if (stamps != nullptr) stamps->dl0 = std::chrono::steady_clock::now();
  EagerDownload& g = dev->eager;
  if (e == cudaSuccess && done == nullptr && g.pending && src == g.src && src_offset == g.offset &&
      size == g.size && dst == g.dst) {
    // The last execute's eager copy: in dst once the stream drained (no error) after it.
    g.pending = false;
    ++g.served;
    tsr_status s = dev->drained ? TSR_OK : FromStatus(Drain(dev), err);
    if (stamps != nullptr) {
      stamps->dl1 = std::chrono::steady_clock::now();
      stamps->downloaded = true;
    }
    return s;
  }
  if (e == cudaSuccess) {
    const Status flushed = FlushUploads(dev);
    if (!flushed.ok()) return FromStatus(flushed, err);
  }
  if (size > 0) dev->drained = false;
  // Profiled (TESSERA_CUDA_PROFILE): the wait for queued work and the copy timed apart.
  const bool timed = dev->profile != nullptr && done == nullptr && size > 0;
  const auto t0 = std::chrono::steady_clock::now();
  if (timed && e == cudaSuccess) e = cudaStreamSynchronize(dev->stream);
  const auto t1 = std::chrono::steady_clock::now();
  // Into host_alloc's memory (ABI 1.2): the direct copy below is already the pinned DMA.
  const bool pinned_dst = size > 0 && InHostAlloc(dev, dst, size);
  if (e == cudaSuccess && done == nullptr && dev->pinned_download && !pinned_dst &&
      HostDownload::Wants(size)) {
    if (dev->download == nullptr) {
      // Helpers: one thread's memcpy (~14 GB/s) is a quarter of the pinned DMA rate. Lab knobs:
      // TESSERA_CUDA_DL_THREADS (helpers), TESSERA_CUDA_DL_CHUNK_KIB.
      const int cores = static_cast<int>(std::thread::hardware_concurrency());
      const char* th = std::getenv("TESSERA_CUDA_DL_THREADS");
      const char* ck = std::getenv("TESSERA_CUDA_DL_CHUNK_KIB");
      dev->download = std::make_unique<HostDownload>(
          th != nullptr ? std::atoi(th) : std::clamp(cores / 2 - 1, 0, 4),
          ck != nullptr ? uint64_t(std::atoll(ck)) << 10 : HostDownload::kDefaultChunk);
    }
    e = dev->download->Run(dev->stream, dst, src->data + src_offset, size);
    if (e == cudaErrorMemoryAllocation) {
      // No pinned memory to be had (locked-memory limits): nothing was queued; copy directly
      // from now on.
      cudaGetLastError();
      dev->pinned_download = false;
      dev->download.reset();
      e = cudaMemcpyAsync(dst, src->data + src_offset, size, cudaMemcpyDeviceToHost, dev->stream);
    }
  } else if (e == cudaSuccess && size > 0) {
    e = cudaMemcpyAsync(dst, src->data + src_offset, size, cudaMemcpyDeviceToHost, dev->stream);
  }
  if (e != cudaSuccess) return FromCuda(e, "buffer_download", err);
  const tsr_status s = Complete(dev, done, true, "buffer_download", err);
  if (s == TSR_OK && done == nullptr && pinned_dst && g.on) {
    // The next executes copy this range eagerly if it repeats (EagerDownload).
    const bool same =
        src == g.src && src_offset == g.offset && size == g.size && dst == g.dst && g.exec == g.sig;
    g.confirmed = same;
    g.src = src;
    g.offset = src_offset;
    g.size = size;
    g.dst = static_cast<uint8_t*>(dst);
    g.sig = g.exec;
  }
  if (stamps != nullptr) {
    stamps->dl1 = std::chrono::steady_clock::now();
    stamps->downloaded = true;
  }
  if (timed) {
    using Ms = std::chrono::duration<double, std::milli>;
    const std::string what = "download " + std::to_string(size >> 10) + " KiB";
    OpProfile::Row& w = dev->profile->rows[what + " (host: wait for queued work)"];
    w.gpu_ms += Ms(t1 - t0).count();
    ++w.count;
    OpProfile::Row& c = dev->profile->rows[what + " (host: copy)"];
    c.gpu_ms += Ms(std::chrono::steady_clock::now() - t1).count();
    ++c.count;
  }
  return s;
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
  if (e == cudaSuccess) {
    const Status flushed = FlushUploads(dev);
    if (!flushed.ok()) return FromStatus(flushed, err);
  }
  dev->eager.pending = false;  // the eager copy's range may change
  if (e == cudaSuccess && size > 0) {
    dev->drained = false;
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

using backend::AbiArrayBytes;
using backend::RawEnum;
using backend::ReadAbiStruct;
using backend::SameBytes;
using LoadedNode = backend::LoadedNode<OpArgs>;

// Everything a node touches, converted; `with_data` also resolves and range-checks the buffers.
Status LoadNode(const tsr_device* dev, const tsr_graph_view& g, int32_t node_index, bool with_data,
                LoadedNode* ln) {
  std::string e = backend::LoadNode<tsr_buffer>(dev, g, node_index, with_data, ln);
  return e.empty() ? OkStatus() : InvalidArgument(std::move(e));
}

using backend::ViewOk;
constexpr auto SupportsOp =
    backend::SupportsOp<LoadedNode, LoadNode, FindRunner, ValidateOp, tsr_device>;

// TESSERA_CUDA_LAB_SKIP="A|B|...", a kernel-lab knob that gives WRONG OUTPUTS: a launch whose
// profile label (as TESSERA_CUDA_PROFILE=1 prints it, less " [decode]" / " [prefill]"; a prefill
// MATMUL's ends in '+') contains one of the strings, or equals one written "=LABEL", is not
// enqueued (a fused launch as a whole; the decode-batch GEMM fusions, M = 9 .. 64, too since
// cu21-x64; not the prefill ones). With graphs +
// PDL the drop in step time is that launch's cost on the critical path (cu-small19, lab/NOTES.md
// "Where a small model's decode step goes"). Data-dependent kernels may change speed on the
// garbage left behind (skipping GET_ROWS made the 0.5B slower).
bool LabSkipped(const tsr_device* dev, const std::string* label) {
  if (label == nullptr || dev->lab_skip.empty()) return false;
  for (const std::string& s : dev->lab_skip) {
    if (s[0] == '=' ? *label == std::string_view(s).substr(1) : label->find(s) != std::string::npos)
      return true;
  }
  return false;
}

// Loads, validates and enqueues one node. `label` (profiling only) gets the op's name with the
// shape class that decides its kernel.
Status ExecuteNode(tsr_device* dev, const tsr_graph_view& g, int32_t node_index,
                   std::string* label = nullptr) {
  auto ln = std::make_unique<LoadedNode>();
  TSR_RETURN_IF_ERROR(LoadNode(dev, g, node_index, /*with_data=*/true, ln.get()));
  const int op = RawEnum(ln->node.op);
  const OpFn run = FindRunner(op);
  if (run == nullptr) return InvalidArgument("unknown op " + std::to_string(op));
  TSR_RETURN_IF_ERROR(ValidateOp(ln->args));
  if (label != nullptr) {
    const TensorRef& out = ln->out;
    const int64_t rows = out.Rows();
    *label = OpName(op);
    if (op == TSR_OP_MATMUL && ln->args.in[1] != nullptr) {
      const TensorRef& w = *ln->args.in[1];
      *label += std::string(" ") + DtypeName(w.dtype) + " N=" + std::to_string(w.dim(-2)) +
                " K=" + std::to_string(w.dim(-1));
    }
    // The execute's phase is appended by the caller: a matmul with more than kGemvMaxRows rows
    // marks a prefill.
    if (op == TSR_OP_MATMUL && rows > kGemvMaxRows) *label += '+';
    if (LabSkipped(dev, label)) return OkStatus();
  }
  ln->args.ctx = &dev->run;
  return run(ln->args);
}

// The buffers the nodes of an execute write (RunContext::writes): whole buffers, conservatively.
void CollectWrites(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n) {
  auto& w = dev->run.writes;
  w.clear();
  if (g.nodes == nullptr || g.tensors == nullptr) return;
  for (int32_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= g.n_nodes) continue;  // reported by LoadNode
    const tsr_node nd = ReadAbiStruct(g.nodes, ids[i]);
    if (nd.output < 0 || nd.output >= g.n_tensors) continue;
    const tsr_buffer* b = ReadAbiStruct(g.tensors, nd.output).buffer;
    if (b == nullptr || b->dev != dev) continue;
    if (!w.empty() && w.back().first == b->data) continue;  // consecutive writes, one buffer
    w.emplace_back(b->data, b->data + b->size);
  }
}

// [data, data + extent) of a resolved tensor.
struct Range {
  const uint8_t* b = nullptr;
  const uint8_t* e = nullptr;
  bool Overlaps(const Range& o) const { return b < o.e && o.b < e; }
};
Range RangeOf(const TensorRef& t) {
  return {t.data, t.data + t.Extent()};
}
Range WeightRange(const GemvOut& o) {
  return {o.w, o.w + o.N * o.w_row_bytes};
}

// Loads node ids[k] (data resolved, validated) into *ln for a fusion; false = not fusable here
// (the node then runs alone, which also reports any error).
bool LoadForFusion(tsr_device* dev, const tsr_graph_view& g, int32_t id, LoadedNode* ln) {
  if (!LoadNode(dev, g, id, /*with_data=*/true, ln).ok() || !ValidateOp(ln->args).ok())
    return false;
  ln->args.ctx = &dev->run;
  return true;
}

// The residual ADD after a lone GEMV: add(mm_out, res) or add(res, mm_out), no broadcasting,
// writing neither the GEMV's input nor its weight. Fills o's residual fields.
bool FuseResidual(tsr_device* dev, const tsr_graph_view& g, int32_t add_id, const LoadedNode& mm,
                  LoadedNode* ln, GemvOut* o) {
  if (RawEnum(ReadAbiStruct(g.nodes, add_id).op) != TSR_OP_ADD ||
      !LoadForFusion(dev, g, add_id, ln) || ln->node.n_inputs != 2)
    return false;
  const int32_t h = mm.node.output;
  const int which = ln->node.inputs[0] == h ? 0 : (ln->node.inputs[1] == h ? 1 : -1);
  if (which < 0 || ln->node.inputs[1 - which] == h) return false;
  const TensorRef& res = *ln->args.in[1 - which];
  const TensorRef& out = *ln->args.out;
  const TensorRef& mo = *mm.args.out;
  for (const TensorRef* t : {&res, &out}) {
    if (t->dtype != TSR_DTYPE_F32 || !SameShape(*t, mo) || t->stride(-1) != 4 ||
        (t->ndim > 2 && !t->IsContiguous()))
      return false;
  }
  const Range ro = RangeOf(out), rx = RangeOf(*mm.args.in[0]);
  if (ro.Overlaps(rx) || ro.Overlaps(WeightRange(*o)) || RangeOf(res).Overlaps(RangeOf(mo)))
    return false;
  o->res = res.As<const float>();
  o->res_row = res.ndim >= 2 ? res.stride(-2) / 4 : 0;
  o->res_out = out.As<float>();
  o->res_out_row = out.ndim >= 2 ? out.stride(-2) / 4 : 0;
  return true;
}

// TESSERA_CUDA_FUSE_DEBUG=1: why a matched fusion pattern was refused (stderr, once per
// reason). Returns 0 (the callers' "not fused").
int Refused(const char* why) {
  static const bool on = EnvFlag("TESSERA_CUDA_FUSE_DEBUG", false);
  if (!on) return 0;
  static std::mutex mu;
  static std::set<std::string> seen;
  std::lock_guard<std::mutex> lock(mu);
  if (seen.insert(why).second) std::fprintf(stderr, "cuda fuse: refused: %s\n", why);
  return 0;
}

// Whether any node of the view other than ids[i .. i + count) reads tensor t.
bool ReadElsewhere(const tsr_graph_view& g, const int32_t* ids, int32_t i, int32_t count,
                   int32_t t) {
  for (int32_t j = 0; j < g.n_nodes; ++j) {
    bool fused = false;
    for (int32_t k = i; k < i + count; ++k) fused = fused || ids[k] == j;
    if (fused) continue;
    const tsr_node nd = ReadAbiStruct(g.nodes, j);
    for (int32_t a = 0; a < nd.n_inputs; ++a)
      if (nd.inputs[a] == t) return true;
  }
  return false;
}

// The SWIGLU right after a gate/up group of two GEMVs (ln[0], ln[1]: its members in grp order)
// joins the group's epilogue (launch.h GemvGroup::swiglu): swiglu(gate, up) of the two members'
// outputs, same shapes, no broadcasting; members are reordered so the gate is member 0. The
// output may be exactly one member's tensor (the planner's in-place reuse: that member's store
// is dropped, SWIGLU overwrites it anyway) but may not touch anything else the launch reads or
// writes (x, weights; the caller checks the prologue's inputs). x_dead: x is the RMS_NORM
// prologue's output, which no other node reads: the output may then take its memory, and
// *drop_y says the launch must not store it (block 0 would race the other blocks' SWIGLU
// stores). Fills *h_range.
bool FuseSwigluEpilogue(tsr_device* dev, const tsr_graph_view& g, int32_t id, const LoadedNode* mm,
                        const Range& rx, bool x_dead, LoadedNode* ln, GemvGroup* grp,
                        Range* h_range, bool* drop_y) {
  if (grp->n != 2 || GemvIsStream(dev->run.gemv) ||
      RawEnum(ReadAbiStruct(g.nodes, id).op) != TSR_OP_SWIGLU)
    return false;
  if (!LoadForFusion(dev, g, id, ln) || ln->node.n_inputs != 2) return Refused("swiglu: load");
  const int32_t o0 = mm[0].node.output, o1 = mm[1].node.output;
  const bool swap = ln->node.inputs[0] == o1 && ln->node.inputs[1] == o0;
  if (o0 == o1 || (!swap && (ln->node.inputs[0] != o0 || ln->node.inputs[1] != o1)))
    return Refused("swiglu: not over the group's outputs");
  const TensorRef& h = *ln->args.out;
  const TensorRef& t0 = *mm[0].args.out;
  const TensorRef& t1 = *mm[1].args.out;
  if (grp->o[0].N != grp->o[1].N || grp->o[0].res_out != nullptr || !SameShape(t0, t1))
    return Refused("swiglu: member shapes");
  if (h.dtype != TSR_DTYPE_F32 || !SameShape(h, t0) || h.stride(-1) != 4 ||
      (h.ndim > 2 && !h.IsContiguous()))
    return Refused("swiglu: output layout");
  const Range rh = RangeOf(h);
  if ((rh.Overlaps(rx) && !x_dead) || rh.Overlaps(WeightRange(grp->o[0])) ||
      rh.Overlaps(WeightRange(grp->o[1])))
    return Refused("swiglu: output overlaps x or a weight");
  *drop_y = rh.Overlaps(rx);
  GemvGroup q = *grp;
  if (swap) std::swap(q.o[0], q.o[1]);
  for (int j = 0; j < 2; ++j) {
    const TensorRef& t = (j == 0) != swap ? t0 : t1;
    if (!rh.Overlaps(RangeOf(t))) continue;
    if (t.data != h.data || t.stride(-1) != h.stride(-1) ||
        (t.ndim >= 2 && t.stride(-2) != h.stride(-2)))
      return Refused("swiglu: output overlaps a member's output");
    q.o[j].out = nullptr;  // in place: the SWIGLU output replaces it
  }
  q.swiglu = h.As<float>();
  q.swiglu_row = h.ndim >= 2 ? h.stride(-2) / 4 : 0;
  *grp = q;
  *h_range = rh;
  return true;
}

// cu24-chain: ROPE q, ROPE k, KV_WRITE k (of k's rotated rows), KV_WRITE v at ids[k .. k + 4),
// right after a norm + q/k/v group (ln[0 .. 2]: its members' nodes, q / k / v) at M = 1, by the
// group launch's epilogue (launch.h GemvRopeKv, k_matmul_bf16.cu GemvRopeStore). The four nodes
// must read the members' outputs (the ROPEs their [1, H, D] views, KV_WRITE v the v rows) and k's
// rotated rows (KV_WRITE k), write their caches in place, and rotate all of D in rotate_half
// pairs with one pos / inv_freq / scale. Every output is still written; since the launch has all
// values in registers, the sequential semantics it must keep are: no node's output touches what a
// later node of the seven reads (the hand-overs above excepted) or what the launch reads (x, the
// norm's input and weight, weights, biases), outputs are disjoint except that q_rot or k_rot may
// take a member output's memory (that member's store then skips those elements: skip_lo/hi,
// overwritten later in node order anyway). x_dead: the norm's output rx (the group's x, which the
// launch only writes, from block 0) is read by no other node: an output may then take its memory
// and *drop_y says the launch must not store it. ln[5 .. 8] receive the nodes. Fills *rk and
// adds the outputs to *outs.
bool FuseRopeKvEpilogue(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n,
                        int32_t k, LoadedNode* ln, const GemvGroup& grp, const Range& rx,
                        bool x_dead, const std::vector<Range>& pro_reads, GemvRopeKv* rk,
                        std::vector<Range>* outs, bool* drop_y) {
  static constexpr int kOps[4] = {TSR_OP_ROPE, TSR_OP_ROPE, TSR_OP_KV_WRITE, TSR_OP_KV_WRITE};
  if (k + 4 > n) return false;
  for (int j = 0; j < 4; ++j) {
    if (ids[k + j] < 0 || ids[k + j] >= g.n_nodes ||
        RawEnum(ReadAbiStruct(g.nodes, ids[k + j]).op) != kOps[j])
      return false;
  }
  LoadedNode* rn = ln + 5;
  for (int j = 0; j < 4; ++j)
    if (!LoadForFusion(dev, g, ids[k + j], &rn[j])) return Refused("rope epilogue: load");
  const OpArgs& aq = rn[0].args;
  const OpArgs& ak = rn[1].args;
  const OpArgs& akw = rn[2].args;
  const OpArgs& avw = rn[3].args;
  if (aq.n_in < 3 || ak.n_in < 3 || akw.n_in < 3 || avw.n_in < 3)
    return Refused("rope epilogue: operands");
  const TensorRef& xq = *aq.in[0];
  const TensorRef& xk = *ak.in[0];
  const TensorRef& rq = *aq.out;
  const TensorRef& rkt = *ak.out;
  const int64_t D = xq.dim(-1);
  // A ROPE over member j's output rows: [1, H, D] contiguous in that memory, all of D rotated
  // in rotate_half pairs, output [1, H, D] with contiguous heads.
  const auto rope_ok = [&](const OpArgs& a, int j) {
    const TensorRef& x = *a.in[0];
    const TensorRef& o = *a.out;
    const GemvOut& m = grp.o[j];
    return x.ndim == 3 && o.ndim == 3 && x.ne[0] == 1 && o.ne[0] == 1 && x.ne[2] == D &&
           o.ne[1] == x.ne[1] && o.ne[2] == D && x.nb[2] == 4 && x.nb[1] == D * 4 && o.nb[2] == 4 &&
           o.nb[1] % 4 == 0 && o.dtype == TSR_DTYPE_F32 &&
           x.data == reinterpret_cast<const uint8_t*>(m.out) && x.ne[1] * D == m.N &&
           m.out_col == 1 && a.ip(0) == 0 && (a.ip(1) == 0 || a.ip(1) == D) &&
           a.in[1]->dtype == TSR_DTYPE_I32 && a.in[2]->dtype == TSR_DTYPE_F32;
  };
  if (!rope_ok(aq, 0) || !rope_ok(ak, 1)) return Refused("rope epilogue: rope operands");
  if (aq.in[1]->data != ak.in[1]->data || aq.in[2]->data != ak.in[2]->data ||
      aq.fp(0) != ak.fp(0) || xk.dim(-1) != D)
    return Refused("rope epilogue: q and k rotate differently");
  // KV_WRITEs in place, one slot each of one token, over k_rot and v's rows.
  const auto kv_ok = [&](const OpArgs& a, const TensorRef& rows_of, int64_t H, int64_t d) {
    const TensorRef& c = *a.in[0];
    const TensorRef& r = *a.in[1];
    const TensorRef& o = *a.out;
    return c.data == o.data && o.ndim == 4 && r.ndim == 3 && r.ne[0] == 1 && r.ne[1] == H &&
           r.ne[2] == d && o.ne[2] == H && o.ne[3] == d && r.data == rows_of.data && r.nb[2] == 4 &&
           r.nb[1] == rows_of.nb[1] && r.dtype == TSR_DTYPE_F32 &&
           (o.dtype == TSR_DTYPE_F32 || o.dtype == TSR_DTYPE_F16 || o.dtype == TSR_DTYPE_BF16) &&
           a.in[2]->dtype == TSR_DTYPE_I32 && a.in[2]->NumElements() == 1;
  };
  const TensorRef& rv = *avw.in[1];
  const int64_t Hk = xk.ne[1], Dv = rv.dim(-1);
  TensorRef v_rows;  // the v member's rows as [1, Hk, Dv]
  v_rows.data = reinterpret_cast<uint8_t*>(grp.o[2].out);
  v_rows.nb[1] = Dv * 4;
  if (rn[2].node.inputs[1] != rn[1].node.output || !kv_ok(akw, rkt, Hk, D) ||
      !kv_ok(avw, v_rows, Hk, Dv) || Hk * Dv != grp.o[2].N || grp.o[2].out_col != 1 ||
      akw.in[2]->data != avw.in[2]->data)
    return Refused("rope epilogue: kv_write operands");
  // Writers in node order: raw q, k, v, q_rot, k_rot, K cache, V cache.
  const Range w[7] = {RangeOf(*ln[0].args.out),
                      RangeOf(*ln[1].args.out),
                      RangeOf(*ln[2].args.out),
                      RangeOf(rq),
                      RangeOf(rkt),
                      RangeOf(*akw.out),
                      RangeOf(*avw.out)};
  // What each of the four nodes reads besides its hand-over (position in w of its first
  // writer after it): pos, inv_freq (ROPEs), slots (KV_WRITEs); the caches' own in-place input
  // is checked with the outputs.
  const Range r_pos = RangeOf(*aq.in[1]), r_inv = RangeOf(*aq.in[2]), r_slots = RangeOf(*akw.in[2]);
  bool over_y = false;
  for (int a = 0; a < 7; ++a) {
    for (const Range& r : {r_pos, r_inv, r_slots})
      if (w[a].Overlaps(r)) return Refused("rope epilogue: an output overlaps an input");
    if (w[a].Overlaps(rx)) {
      if (a < 3 || !x_dead) return Refused("rope epilogue: an output overlaps the norm's output");
      over_y = true;
    }
    for (const Range& r : pro_reads)
      if (w[a].Overlaps(r)) return Refused("rope epilogue: an output overlaps the norm's inputs");
    for (int j = 0; j < 3; ++j) {
      const GemvOut& o = grp.o[j];
      const Range rb = {
          reinterpret_cast<const uint8_t*>(o.bias),
          reinterpret_cast<const uint8_t*>(o.bias != nullptr ? o.bias + o.N : o.bias)};
      if (w[a].Overlaps(WeightRange(o)) || w[a].Overlaps(rb))
        return Refused("rope epilogue: an output overlaps a weight");
    }
  }
  // Hand-overs read after later writers: raw k (ROPE k) after q_rot; k_rot (KV_WRITE k) and raw v
  // (KV_WRITE v) after everything before them.
  if (w[3].Overlaps(w[1]) || w[3].Overlaps(w[2]) || w[4].Overlaps(w[2]) || w[5].Overlaps(w[4]) ||
      w[5].Overlaps(w[2]) || w[6].Overlaps(w[2]))
    return Refused("rope epilogue: a later output overlaps an input");
  // Outputs disjoint, except q_rot / k_rot over a member's raw output (one of them at most).
  for (int a = 0; a < 7; ++a) {
    for (int b = a + 1; b < 7; ++b) {
      if (!w[a].Overlaps(w[b])) continue;
      if (a < 3 && (b == 3 || b == 4)) continue;
      return Refused("rope epilogue: outputs overlap");
    }
  }
  GemvRopeKv r;
  for (int j = 0; j < 3; ++j) {
    const bool q_over = w[j].Overlaps(w[3]), k_over = w[j].Overlaps(w[4]);
    if (q_over && k_over) return Refused("rope epilogue: q_rot and k_rot over one member output");
    if (q_over || k_over) {
      const Range& s = q_over ? w[3] : w[4];
      r.skip_lo[j] = reinterpret_cast<const float*>(s.b);
      r.skip_hi[j] = reinterpret_cast<const float*>(s.e);
    }
  }
  r.pos = aq.in[1]->As<const int32_t>();
  r.inv_freq = aq.in[2]->As<const float>();
  r.attn_scale = aq.fp(0);
  r.D = D;
  r.Dv = Dv;
  r.q_rot = rq.As<float>();
  r.k_rot = rkt.As<float>();
  r.q_head = rq.nb[1] / 4;
  r.k_head = rkt.nb[1] / 4;
  for (int c = 0; c < 2; ++c) {
    const TensorRef& o = *(c == 0 ? akw : avw).out;
    r.cache[c] = o.data;
    r.dtype[c] = o.dtype;
    r.c_block[c] = o.nb[0], r.c_slot[c] = o.nb[1], r.c_head[c] = o.nb[2], r.c_el[c] = o.nb[3];
  }
  r.slots = akw.in[2]->As<const int32_t>();
  r.block_size = akw.in[0]->ne[1];
  r.n_slots = akw.in[0]->ne[0] * akw.in[0]->ne[1];
  if (avw.in[0]->ne[1] != r.block_size || avw.in[0]->ne[0] * avw.in[0]->ne[1] != r.n_slots)
    return Refused("rope epilogue: cache shapes");
  r.err = akw.ctx != nullptr ? akw.ctx->err_flag : nullptr;
  *rk = r;
  *drop_y = over_y;
  for (int a = 3; a < 7; ++a) outs->push_back(w[a]);
  return true;
}

// Decode fusions over consecutive nodes (RunContext::fuse): MATMULs over the same x run as one
// grouped GEMV launch (q/k/v, gate/up); a lone MATMUL followed by the ADD of its output and a
// residual writes both outputs in one launch (o/down projection + residual); two independent
// ROPEs or KV_WRITEs run as one launch. Every node's output
// is still written, so later consumers see the same tensors and bits. Returns how many nodes ran
// (0: no pattern; the caller runs node i alone). `label` (profiling) names the fused launch.
// Whether nodes a and b can run in either order (neither writes what the other reads or writes).
bool Independent(const LoadedNode& a, const LoadedNode& b) {
  const Range oa = RangeOf(*a.args.out), ob = RangeOf(*b.args.out);
  if (oa.Overlaps(ob)) return false;
  for (int k = 0; k < a.args.n_in; ++k) {
    if (a.args.in[k] != nullptr && RangeOf(*a.args.in[k]).Overlaps(ob)) return false;
  }
  for (int k = 0; k < b.args.n_in; ++k) {
    if (b.args.in[k] != nullptr && RangeOf(*b.args.in[k]).Overlaps(oa)) return false;
  }
  return true;
}

// A layer's two ROPEs (q, k) or two KV_WRITEs (K, V) in one launch. Returns 2 or 0.
StatusOr<int> ExecutePair(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n,
                          int32_t i, int op, std::string* label) {
  if (i + 1 >= n || ids[i + 1] < 0 || ids[i + 1] >= g.n_nodes ||
      RawEnum(ReadAbiStruct(g.nodes, ids[i + 1]).op) != op)
    return Refused(op == TSR_OP_ROPE ? "rope pair: next node" : "kv_write pair: next node");
  LoadedNode* ln = dev->fuse_nodes.get();
  if (!LoadForFusion(dev, g, ids[i], &ln[0]) || !LoadForFusion(dev, g, ids[i + 1], &ln[1]))
    return 0;
  if (op == TSR_OP_KV_WRITE) {  // in place only (else the runner copies the cache first)
    for (int j = 0; j < 2; ++j)
      if (ln[j].args.in[0]->data != ln[j].args.out->data) return 0;
  }
  if (!Independent(ln[0], ln[1])) return Refused("rope / kv_write pair: not independent");
  if (label != nullptr) *label = op == TSR_OP_ROPE ? "ROPE x2 (fused)" : "KV_WRITE x2 (fused)";
  if (LabSkipped(dev, label)) return 2;
  TSR_RETURN_IF_ERROR(op == TSR_OP_ROPE ? RunRopePair(ln[0].args, ln[1].args)
                                        : RunKvWritePair(ln[0].args, ln[1].args));
  return 2;
}

// ROPE q, ROPE k, KV_WRITE k (of ROPE k's output), KV_WRITE v in one launch that reads every
// input before it writes anything (RunRopeKv). Sequential semantics it must keep: each node's
// output may not touch what a later node of the four reads (KV_WRITE k's read of k's ROPE
// output excepted: the kernel hands that value over directly), and the outputs are disjoint.
// Returns 4 or 0.
StatusOr<int> ExecuteRopeKv(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n,
                            int32_t i, std::string* label) {
  static constexpr int kOps[4] = {TSR_OP_ROPE, TSR_OP_ROPE, TSR_OP_KV_WRITE, TSR_OP_KV_WRITE};
  if (i + 4 > n) return 0;
  for (int j = 0; j < 4; ++j) {
    if (ids[i + j] < 0 || ids[i + j] >= g.n_nodes ||
        RawEnum(ReadAbiStruct(g.nodes, ids[i + j]).op) != kOps[j])
      return 0;
  }
  LoadedNode* ln = dev->fuse_nodes.get();
  for (int j = 0; j < 4; ++j)
    if (!LoadForFusion(dev, g, ids[i + j], &ln[j])) return 0;
  for (int j = 2; j < 4; ++j)  // in place only (else the runner copies the cache first)
    if (ln[j].args.in[0]->data != ln[j].args.out->data) return 0;
  if (ln[2].node.inputs[1] != ln[1].node.output || ln[3].node.inputs[1] == ln[1].node.output ||
      ln[3].node.inputs[1] == ln[0].node.output)
    return 0;
  for (int j = 0; j < 4; ++j) {
    const Range out = RangeOf(*ln[j].args.out);
    for (int l = j + 1; l < 4; ++l) {
      if (out.Overlaps(RangeOf(*ln[l].args.out))) return 0;
      for (int a = 0; a < ln[l].args.n_in; ++a) {
        const TensorRef* t = ln[l].args.in[a];
        if (t == nullptr || (l >= 2 && a == 0) || (l == 2 && a == 1 && j == 1)) continue;
        if (out.Overlaps(RangeOf(*t))) return 0;
      }
    }
  }
  if (!RopeKvFits(ln[0].args, ln[1].args, ln[3].args)) return 0;
  if (label != nullptr) *label = "ROPE x2 + KV_WRITE x2 (fused)";
  if (LabSkipped(dev, label)) return 4;
  TSR_RETURN_IF_ERROR(RunRopeKv(ln[0].args, ln[1].args, ln[2].args, ln[3].args));
  return 4;
}

// Rows up to which the split fusions below look at a node: decode batches, and prefill with
// fuse_prefill (the MATMUL candidates then also bound M by DispatchMatmul's row block).
int64_t FuseMaxRows(const tsr_device* dev) {
  return dev->run.fuse_prefill != 0 ? kGemmFuseMaxRows : kGemmRmsMaxRows;
}

// TESSERA_CUDA_FUSE_PREFILL=2 (lab): the prologue's output at prefill is not stored when no node
// of the view but the `count` fused ones from ids[i] reads it.
void DropDeadY(const tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t i,
               int32_t count, int64_t rows, int32_t y, GemvPrologue* pro) {
  if (dev->run.fuse_prefill == 2 && rows > kGemmRmsMaxRows && !ReadElsewhere(g, ids, i, count, y))
    pro->y = nullptr;
}

// The MATMULs at ids[k ..] after the norm's first one (*p0, already over the norm's input) that
// can read its split planes (launch.h LaunchGemmBf16Members; cuda-agg3): over the same norm output
// y, same M and K, each on a wgmma configuration, p0 too. The members run in node order and
// write what they would; the only change is that they read y as split before the first GEMM, so
// no member before the last may write into y (then a later one would have read the new values).
// Fills dev->split_members (p0 first); returns how many (1: no sharing).
int SplitMembers(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n, int32_t k,
                 const GemvPrologue& pro, const MatmulParams* p0) {
  MatmulParams* ps = dev->split_members;
  ps[0] = *p0;
  LoadedNode* ln = dev->fuse_nodes.get();
  const int terms = dev->run.matmul_terms;
  if (!GemmMemberCandidate(ln[0].args, &ps[0])) return 1;
  ps[0].x = p0->x, ps[0].x_row = p0->x_row;  // the norm's input, as *p0
  const Range ry = {reinterpret_cast<const uint8_t*>(pro.y),
                    reinterpret_cast<const uint8_t*>(pro.y + (p0->M - 1) * pro.y_row + p0->K)};
  if (RangeOf(*ln[0].args.out).Overlaps(ry)) return 1;
  int m = 1;
  for (; m < kGemmMaxMembers && k < n && ids[k] >= 0 && ids[k] < g.n_nodes; ++k) {
    if (RawEnum(ReadAbiStruct(g.nodes, ids[k]).op) != TSR_OP_MATMUL) break;
    MatmulParams pk;
    LoadedNode& lk = ln[m];
    if (!LoadForFusion(dev, g, ids[k], &lk) || !GemmMemberCandidate(lk.args, &pk)) break;
    if (pk.x != pro.y || pk.x_row != pro.y_row || pk.M != p0->M || pk.K != p0->K) break;
    ps[m++] = pk;
    if (RangeOf(*lk.args.out).Overlaps(ry)) break;  // it may be the last
  }
  // Members that need not share the planes alone run as one grouped launch (cuda-x64).
  return m > 1 && GemmMembersRunnable(ps, m, terms) ? m : 1;
}

// RMS_NORM right before a decode-batch MATMUL (M = 9 .. 64) over its output: the norm runs in
// the GEMM's x split pre-pass (RunGemmRms, launch.h LaunchGemmBf16Rms), which still writes the
// norm's output for the layer's other projections. The two stay in stream order (the split
// finishes before the GEMM reads anything), so the only extra rule is the norm's own: its output
// may not overlap its inputs (every block reads the whole row before writing). With
// share_split_smallm the MATMULs right after it over the same output (k/v, up) read the same
// split (SplitMembers). Returns the nodes run (2 .. 4) or 0.
StatusOr<int> ExecuteNormSmallM(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids,
                                int32_t n, int32_t i, std::string* label) {
  if (i + 1 >= n || ids[i + 1] < 0 || ids[i + 1] >= g.n_nodes ||
      RawEnum(ReadAbiStruct(g.nodes, ids[i + 1]).op) != TSR_OP_MATMUL)
    return 0;
  LoadedNode* ln = dev->fuse_nodes.get();
  GemvPrologue pro;
  MatmulParams pin, p;
  if (!LoadForFusion(dev, g, ids[i], &ln[4]) ||
      !GemvPrologueCandidate(ln[4].args, &pro, &pin, FuseMaxRows(dev)) || pro.kind != kGemvProRms ||
      pin.M <= kGemvMaxRows)
    return 0;
  const Range ry = RangeOf(*ln[4].args.out);
  for (int j = 0; j < ln[4].args.n_in; ++j) {
    if (ln[4].args.in[j] != nullptr && RangeOf(*ln[4].args.in[j]).Overlaps(ry))
      return Refused("norm small-M: in place");
  }
  if (!LoadForFusion(dev, g, ids[i + 1], &ln[0])) return 0;
  // A MATMUL on the GEMV rows has no split to fold the norm into, unless it leads a grouped
  // launch (SplitMembers; the 0.5B q/k/v).
  const bool rms = GemmRmsCandidate(ln[0].args, &p);
  if (!rms && !(dev->run.share_split_smallm && GemmMemberCandidate(ln[0].args, &p)))
    return Refused("norm small-M: matmul (GEMV rows?)");
  if (p.x != pro.y || p.x_row != pro.y_row || p.M != pin.M || p.K != pin.K)
    return Refused("norm small-M: matmul not over the norm's output");
  p.x = pin.x, p.x_row = pin.x_row;
  const int members =
      dev->run.share_split_smallm ? SplitMembers(dev, g, ids, n, i + 2, pro, &p) : 1;
  if (members <= 1 && !rms) return Refused("norm small-M: matmul (GEMV rows?), no group");
  if (label != nullptr) {
    *label = "RMS_NORM+MATMUL" + (members > 1 ? " x" + std::to_string(members) : std::string()) +
             " (fused split) N=" + std::to_string(p.N) + " K=" + std::to_string(p.K) + "+";
    if (LabSkipped(dev, label)) return 1 + std::max(members, 1);
  }
  DropDeadY(dev, g, ids, i, 1 + std::max(members, 1), p.M, ln[4].node.output, &pro);
  if (members > 1) {
    TSR_RETURN_IF_ERROR(RunGemmMembers(&dev->run, dev->split_members, members, pro));
    return 1 + members;
  }
  TSR_RETURN_IF_ERROR(RunGemmRms(&dev->run, p, pro));
  return 2;
}

// Whether the ADD's output `out` and an operand `t` are either disjoint or exactly the same
// elements (one thread reads, then writes each element).
bool DisjointOrSame(const TensorRef& out, const TensorRef& t) {
  if (!RangeOf(out).Overlaps(RangeOf(t))) return true;
  return out.data == t.data && out.stride(-1) == t.stride(-1) &&
         (out.ndim < 2 || t.stride(-2) == out.stride(-2));
}

// Rows of node id's output (every dimension but the last), read from the view alone: a cheap
// test before loading any node (batch-1 decode takes the GEMV's fusions instead).
int64_t OutputRows(const tsr_graph_view& g, int32_t id) {
  const tsr_node nd = ReadAbiStruct(g.nodes, id);
  if (g.tensors == nullptr || nd.output < 0 || nd.output >= g.n_tensors) return 0;
  const tsr_tensor t = ReadAbiStruct(g.tensors, nd.output);
  int64_t rows = 1;
  for (int d = 0; d + 1 < t.ndim && d < TSR_MAX_DIMS; ++d) rows *= t.ne[d];
  return rows;
}

// Decode batches (M = 9 .. 64; cuda-agg3): a SWIGLU right before a MATMUL over its output runs in
// the GEMM's x split (LaunchProSplit), and the ADD of the MATMUL's output and a residual right
// after it in the GEMM's last write (TmaCombineKernel / GemmCombineKernel / the GEMV rows'
// StoreOut), either or both (SWIGLU, down, ADD). The launches keep the nodes' order (split, GEMM,
// combine), so the rules are the ops' own: SWIGLU's output may not overlap its inputs; the ADD's
// output may not touch the MATMUL's x or weight (FuseResidual) and shares the residual or the
// MATMUL's output only element for element. Returns the nodes run, or 0.
StatusOr<int> ExecuteGemmSmallM(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids,
                                int32_t n, int32_t i, std::string* label) {
  const int64_t rows = OutputRows(g, ids[i]);
  const bool prefill = rows > kGemmRmsMaxRows;  // SWIGLU only (cu-xsplit15)
  if (rows <= kGemvMaxRows || rows > FuseMaxRows(dev)) return 0;
  auto op_at = [&](int32_t k) {
    return k < n && ids[k] >= 0 && ids[k] < g.n_nodes ? RawEnum(ReadAbiStruct(g.nodes, ids[k]).op)
                                                      : -1;
  };
  const bool swiglu =
      op_at(i) == TSR_OP_SWIGLU && (prefill ? dev->run.fuse_prefill : dev->run.fuse_swiglu_smallm);
  const int32_t mi = swiglu ? i + 1 : i;
  bool add = dev->run.fuse_add_smallm && !prefill && op_at(mi + 1) == TSR_OP_ADD;
  if (op_at(mi) != TSR_OP_MATMUL || (!swiglu && !add)) return 0;
  LoadedNode* ln = dev->fuse_nodes.get();
  GemvPrologue pro;
  MatmulParams pin, p;
  if (swiglu) {
    if (!LoadForFusion(dev, g, ids[i], &ln[4]) ||
        !GemvPrologueCandidate(ln[4].args, &pro, &pin, FuseMaxRows(dev)) ||
        pro.kind != kGemvProSwiglu || pin.M <= kGemvMaxRows)
      return 0;
    const Range ry = RangeOf(*ln[4].args.out);
    for (int j = 0; j < ln[4].args.n_in; ++j) {
      if (ln[4].args.in[j] != nullptr && RangeOf(*ln[4].args.in[j]).Overlaps(ry))
        return Refused("swiglu small-M: in place");
    }
  }
  if (!LoadForFusion(dev, g, ids[mi], &ln[0])) return 0;
  if (!GemmFusedCandidate(ln[0].args, pro.kind, add, &p)) {
    if (ln[0].args.in[0]->Rows() <= kGemvMaxRows) return 0;  // the GEMV's fusions
    if (!swiglu) return Refused("add small-M: matmul (plain tile?)");
    add = false;
    if (!GemmFusedCandidate(ln[0].args, pro.kind, false, &p))
      return Refused("swiglu small-M: matmul (GEMV rows?)");
  }
  if (p.M <= kGemvMaxRows) return 0;
  if (swiglu && (p.x != pro.y || p.x_row != pro.y_row || p.M != pin.M || p.K != pin.K))
    return Refused("swiglu small-M: matmul not over the SWIGLU's output");
  GemvOut o = GemvGroupOf(p).o[0];
  if (add) {
    add = FuseResidual(dev, g, ids[mi + 1], ln[0], &ln[1], &o) &&
          DisjointOrSame(*ln[1].args.out, *ln[0].args.out);
    for (int j = 0; add && j < ln[1].args.n_in; ++j)
      add = ln[1].args.in[j] == nullptr || DisjointOrSame(*ln[1].args.out, *ln[1].args.in[j]);
    if (!add && !swiglu) return Refused("add small-M: operands");
  }
  if (add) {
    p.res = o.res, p.res_row = o.res_row;
    p.res_out = o.res_out, p.res_out_row = o.res_out_row;
  }
  if (swiglu) {
    p.x = pin.x, p.x_row = pin.x_row;
    DropDeadY(dev, g, ids, i, 2 + (add ? 1 : 0), p.M, ln[4].node.output, &pro);
  }
  if (label != nullptr) {
    *label = std::string(swiglu ? "SWIGLU+" : "") + "MATMUL" + (add ? "+ADD" : "") +
             " (fused small-M) N=" + std::to_string(p.N) + " K=" + std::to_string(p.K) + "+";
    if (LabSkipped(dev, label)) return (swiglu ? 1 : 0) + 1 + (add ? 1 : 0);
  }
  TSR_RETURN_IF_ERROR(RunGemmFused(&dev->run, p, pro));
  return (swiglu ? 1 : 0) + 1 + (add ? 1 : 0);
}

StatusOr<int> ExecuteFused(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n,
                           int32_t i, std::string* label = nullptr) {
  if (!dev->run.fuse || dev->run.gemv.counters == nullptr || g.nodes == nullptr) return 0;
  if (ids[i] < 0 || ids[i] >= g.n_nodes) return 0;
  if (dev->fuse_nodes == nullptr) dev->fuse_nodes = std::make_unique<LoadedNode[]>(9);
  const int op_i = RawEnum(ReadAbiStruct(g.nodes, ids[i]).op);
  if (op_i == TSR_OP_ROPE && dev->run.fuse_rope_kv) {
    TSR_ASSIGN_OR_RETURN(const int ran, ExecuteRopeKv(dev, g, ids, n, i, label));
    if (ran > 0) return ran;
  }
  if (op_i == TSR_OP_ROPE || op_i == TSR_OP_KV_WRITE)
    return ExecutePair(dev, g, ids, n, i, op_i, label);
  auto is_matmul = [&](int32_t k) {
    return k < n && ids[k] >= 0 && ids[k] < g.n_nodes &&
           RawEnum(ReadAbiStruct(g.nodes, ids[k]).op) == TSR_OP_MATMUL;
  };
  LoadedNode* ln = dev->fuse_nodes.get();
  if (op_i == TSR_OP_RMS_NORM && dev->run.fuse_norm_smallm) {
    TSR_ASSIGN_OR_RETURN(const int ran, ExecuteNormSmallM(dev, g, ids, n, i, label));
    if (ran > 0) return ran;
  }
  if ((op_i == TSR_OP_SWIGLU && (dev->run.fuse_swiglu_smallm || dev->run.fuse_prefill)) ||
      (op_i == TSR_OP_MATMUL && dev->run.fuse_add_smallm)) {
    TSR_ASSIGN_OR_RETURN(const int ran, ExecuteGemmSmallM(dev, g, ids, n, i, label));
    if (ran > 0) return ran;
  }
  // RMS_NORM / SWIGLU right before the GEMV(s) over its output: folded into their x load.
  GemvPrologue pro;
  MatmulParams pin;
  std::vector<Range> pro_reads;
  if ((op_i == TSR_OP_RMS_NORM && dev->run.fuse_norm) ||
      (op_i == TSR_OP_SWIGLU && dev->run.fuse_swiglu)) {
    // cu23-small: TESSERA_CUDA_FUSE_DEBUG lines for the decode prologue's refusals too.
    if (!is_matmul(i + 1)) return 0;
    if (!LoadForFusion(dev, g, ids[i], &ln[4])) return Refused("gemv prologue: load");
    if (!GemvPrologueCandidate(ln[4].args, &pro, &pin))
      return Refused("gemv prologue: operands (GemvPrologueCandidate)");
    for (int j = 0; j < ln[4].args.n_in; ++j)
      if (ln[4].args.in[j] != nullptr) pro_reads.push_back(RangeOf(*ln[4].args.in[j]));
    for (const Range& r : pro_reads)
      if (r.Overlaps(RangeOf(*ln[4].args.out))) return Refused("gemv prologue: in place");
  }
  const int32_t first = pro.kind != kGemvProNone ? i + 1 : i;
  if (!is_matmul(first)) return 0;
  MatmulParams p0;
  if (!LoadForFusion(dev, g, ids[first], &ln[0]) || !GemvCandidate(ln[0].args, &p0))
    return pro.kind != kGemvProNone ? Refused("gemv prologue: matmul not a GEMV candidate") : 0;
  if (pro.kind != kGemvProNone &&
      (p0.x != pro.y || p0.x_row != pro.y_row || p0.M != pin.M || p0.K != pin.K))
    return Refused("gemv prologue: matmul not over the op's output");
  GemvGroup grp = GemvGroupOf(p0);
  const Range rx = RangeOf(*ln[0].args.in[0]);
  std::vector<Range> outs = {RangeOf(*ln[0].args.out)};
  if (outs[0].Overlaps(rx))
    return pro.kind != kGemvProNone ? Refused("gemv prologue: matmul output overlaps x") : 0;
  int32_t k = first + 1;
  for (; grp.n < kGemvMaxGroup && is_matmul(k); ++k) {
    MatmulParams pk;
    LoadedNode& lk = ln[grp.n];
    if (!LoadForFusion(dev, g, ids[k], &lk) || !GemvCandidate(lk.args, &pk)) break;
    if (pk.x != p0.x || pk.M != p0.M || pk.K != p0.K || pk.x_row != p0.x_row) break;
    const GemvOut o = GemvGroupOf(pk).o[0];
    const Range ro = RangeOf(*lk.args.out);
    bool clash = ro.Overlaps(rx);
    for (const Range& r : outs) clash = clash || r.Overlaps(ro) || r.Overlaps(WeightRange(o));
    if (clash) break;
    outs.push_back(ro);
    grp.o[grp.n++] = o;
  }
  int ran = first - i + grp.n;
  Range rh;
  bool drop_y = false;
  // cu24-chain: the layer's ROPEs and KV_WRITEs in the norm + q/k/v launch's epilogue.
  GemvGroup rope_grp = grp;
  rope_grp.rope = &dev->rope_kv;
  bool rope_drop_y = false;
  if (grp.n == 3 && pro.kind == kGemvProRms && dev->fuse_rope_epi && p0.M == 1 &&
      FuseRopeKvEpilogue(dev, g, ids, n, k, ln, grp, rx,
                         !ReadElsewhere(g, ids, i, k + 4 - i, ln[4].node.output), pro_reads,
                         &dev->rope_kv, &outs, &rope_drop_y)) {
    MatmulParams pr = p0;
    pr.x = pin.x, pr.x_row = pin.x_row;
    if (GemvRopeKvFits(pr, rope_grp, pro, dev->run.matmul_terms, dev->run.gemv)) {
      grp.rope = &dev->rope_kv;
      ran += 4;
      if (rope_drop_y) pro.y = nullptr;  // dead, and in a rotated output's memory
    } else {
      outs.resize(outs.size() - 4);
      Refused("rope epilogue: launch (GemvRopeKvFits)");
    }
  }
  if (grp.rope != nullptr) {
    // ROPE + KV_WRITE epilogue: no SWIGLU / residual pattern applies to a three-member group.
  } else if (grp.n == 2 && k < n &&
             (dev->fuse_swiglu_epi == 1 ||
              (dev->fuse_swiglu_epi < 0 &&
               GemvRingTakesPair(p0, grp, pro, dev->run.matmul_terms, dev->run.gemv))) &&
             FuseSwigluEpilogue(
                 dev, g, ids[k], ln, rx,
                 pro.kind == kGemvProRms && !ReadElsewhere(g, ids, i, k + 1 - i, ln[4].node.output),
                 &ln[3], &grp, &rh, &drop_y)) {
    ++ran;
    outs.push_back(rh);
    if (drop_y) pro.y = nullptr;  // dead, and in the SWIGLU output's memory
  } else if (grp.n == 1 && k < n && FuseResidual(dev, g, ids[k], ln[0], &ln[1], &grp.o[0])) {
    // The epilogue reads the residual while row group 0 writes the prologue's output (rx).
    for (int j = 0; pro.kind != kGemvProNone && j < ln[1].args.n_in; ++j)
      if (ln[1].args.in[j] != nullptr && RangeOf(*ln[1].args.in[j]).Overlaps(rx))
        return Refused("gemv prologue: residual overlaps the op's output");
    ++ran;
    outs.push_back(RangeOf(*ln[1].args.out));
  } else if (grp.n == 1 && pro.kind == kGemvProNone) {
    return 0;
  }
  // The prologue's inputs are read by every block while row group 0 writes its output and the
  // GEMVs write theirs: no output may touch them (the norm's y aliases nothing written either).
  for (const Range& o : outs) {
    for (const Range& r : pro_reads)
      if (o.Overlaps(r)) return Refused("gemv prologue: an output overlaps the op's inputs");
  }
  if (pro.kind != kGemvProNone) p0.x = pin.x, p0.x_row = pin.x_row;
  if (label != nullptr) {
    *label = grp.n == 1 ? "MATMUL+ADD (fused)" : "MATMUL x" + std::to_string(grp.n) + " (fused)";
    if (grp.n == 1 && ran == first - i + 1) *label = "MATMUL (fused)";
    if (pro.kind != kGemvProNone)
      *label = (pro.kind == kGemvProRms ? "RMS_NORM+" : "SWIGLU+") + *label;
    for (int j = 0; j < grp.n; ++j) *label += " N=" + std::to_string(grp.o[j].N);
    *label += " K=" + std::to_string(p0.K);
    if (grp.swiglu != nullptr) *label += " +SWIGLU";
    if (grp.rope != nullptr) *label += " +ROPE x2 +KV_WRITE x2";
    if (LabSkipped(dev, label)) return ran;
  }
  TSR_RETURN_IF_ERROR(RunGemvGroup(&dev->run, p0, grp, pro));
  return ran;
}

Status ExecuteDirect(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n) {
  CollectWrites(dev, g, ids, n);
  std::string lab;  // labels only for TESSERA_CUDA_LAB_SKIP
  std::string* const lp = dev->lab_skip.empty() ? nullptr : &lab;
  for (int32_t i = 0; i < n;) {
    StatusOr<int> fused = ExecuteFused(dev, g, ids, n, i, lp);
    if (!fused.ok()) return backend::NodeFailure(g, ids[i], fused.status());
    if (*fused > 0) {
      i += *fused;
      continue;
    }
    const Status s = ExecuteNode(dev, g, ids[i], lp);
    if (!s.ok()) return backend::NodeFailure(g, ids[i], s);
    ++i;
  }
  return OkStatus();
}

// Every node timed with an event pair; one sync at the end (TESSERA_CUDA_PROFILE).
Status ExecuteProfiled(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n) {
  OpProfile& p = *dev->profile;
  const auto t0 = std::chrono::steady_clock::now();
  while (p.events.size() < 2 * static_cast<size_t>(n)) {
    cudaEvent_t e = nullptr;
    TSR_RETURN_IF_ERROR(CudaStatus(cudaEventCreate(&e), "profile event"));
    p.events.push_back(e);
  }
  std::vector<std::string> labels(static_cast<size_t>(n));
  bool prefill = false;
  CollectWrites(dev, g, ids, n);
  for (int32_t i = 0; i < n;) {  // a fused launch is timed (and labelled) at its first node
    cudaEventRecord(p.events[2 * i], dev->stream);
    StatusOr<int> fused = ExecuteFused(dev, g, ids, n, i, &labels[i]);
    if (!fused.ok()) return backend::NodeFailure(g, ids[i], fused.status());
    if (*fused == 0) {
      const Status s = ExecuteNode(dev, g, ids[i], &labels[i]);
      if (!s.ok()) return backend::NodeFailure(g, ids[i], s);
    }
    cudaEventRecord(p.events[2 * i + 1], dev->stream);
    if (!labels[i].empty() && labels[i].back() == '+') {
      prefill = true;
      labels[i].pop_back();
    }
    i += std::max(1, *fused);
  }
  for (std::string& l : labels) l += prefill ? " [prefill]" : " [decode]";
  TSR_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(dev->stream), "profile sync"));
  for (int32_t i = 0; i < n; ++i) {
    if (labels[i] == " [prefill]" || labels[i] == " [decode]") continue;  // inside a fused launch
    float ms = 0;
    cudaEventElapsedTime(&ms, p.events[2 * i], p.events[2 * i + 1]);
    OpProfile::Row& r = p.rows[labels[i]];
    r.gpu_ms += ms;
    ++r.count;
  }
  p.host_ms +=
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ++p.executes;
  return OkStatus();
}

// Appends one tensor's kernel-visible identity to the key; false if the view is malformed (the
// direct path then reports why).
bool KeyTensor(const tsr_device* dev, const tsr_graph_view& g, int32_t t, ExecKey* key) {
  if (t < 0) {  // absent optional input
    key->push_back(~uint64_t{0});
    return true;
  }
  if (t >= g.n_tensors || g.tensors == nullptr) return false;
  const tsr_tensor v = ReadAbiStruct(g.tensors, t);
  if (v.ndim < 0 || v.ndim > TSR_MAX_DIMS) return false;
  key->push_back(static_cast<uint32_t>(RawEnum(v.dtype)) | (static_cast<uint64_t>(v.ndim) << 32));
  for (int d = 0; d < v.ndim; ++d) {
    key->push_back(static_cast<uint64_t>(v.ne[d]));
    key->push_back(static_cast<uint64_t>(v.nb[d]));
  }
  const tsr_buffer* b = v.buffer;
  if (b != nullptr && b->dev != dev) return false;
  key->push_back(b != nullptr ? reinterpret_cast<uintptr_t>(b->data) + v.offset : 0);
  key->push_back(b != nullptr ? b->size : 0);
  return true;
}

// Everything the kernels of these nodes are launched with (exec_graph.h): node ops and
// parameters, then each tensor's dtype, shape, strides and device address.
bool BuildExecKey(const tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n,
                  ExecKey* key) {
  key->clear();
  key->push_back(static_cast<uint64_t>(n));
  key->push_back(dev->scratch.generation());
  if (g.nodes == nullptr) return false;
  for (int32_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= g.n_nodes) return false;
    const tsr_node nd = ReadAbiStruct(g.nodes, ids[i]);
    if (nd.n_inputs < 0 || nd.n_inputs > TSR_MAX_INPUTS) return false;
    key->push_back(static_cast<uint32_t>(RawEnum(nd.op)) |
                   (static_cast<uint64_t>(nd.n_inputs) << 32));
    for (int k = 0; k < TSR_MAX_PARAMS; ++k) {
      uint32_t f = 0;
      std::memcpy(&f, &nd.fparams[k], sizeof(f));
      key->push_back(static_cast<uint64_t>(nd.iparams[k]));
      key->push_back(f);
    }
    if (!KeyTensor(dev, g, nd.output, key)) return false;
    for (int k = 0; k < nd.n_inputs; ++k)
      if (!KeyTensor(dev, g, nd.inputs[k], key)) return false;
  }
  return true;
}

// Executes shorter than this run directly: a single node gains nothing from a graph
// (conformance runs one node an execute).
constexpr int32_t kMinGraphNodes = 4;

// Whether this execute is byte for byte the last one a graph served (LastReplay).
bool SameAsLastReplay(const tsr_device* dev, const tsr_graph_view& g, const int32_t* ids,
                      int32_t n) {
  const LastReplay& r = dev->last_replay;
  return r.exec != nullptr && r.cache_epoch == dev->graphs.epoch() &&
         r.buffer_frees == g_buffer_frees.load(std::memory_order_relaxed) &&
         r.scratch_generation == dev->scratch.generation() &&
         r.ids.size() == static_cast<size_t>(n) &&
         std::memcmp(r.ids.data(), ids, sizeof(int32_t) * static_cast<size_t>(n)) == 0 &&
         SameBytes(r.nodes, g.nodes, AbiArrayBytes(g.nodes, g.n_nodes)) &&
         SameBytes(r.tensors, g.tensors, AbiArrayBytes(g.tensors, g.n_tensors));
}

// Remembers this execute as served by `exec` (call after the cache settled: Find / Add).
void RememberReplay(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n,
                    cudaGraphExec_t exec) {
  LastReplay& r = dev->last_replay;
  r.exec = nullptr;
  if (!dev->fast_key) return;
  const auto* nb = reinterpret_cast<const uint8_t*>(g.nodes);
  const auto* tb = reinterpret_cast<const uint8_t*>(g.tensors);
  r.nodes.assign(nb, nb + AbiArrayBytes(g.nodes, g.n_nodes));
  r.tensors.assign(tb, tb + AbiArrayBytes(g.tensors, g.n_tensors));
  r.ids.assign(ids, ids + n);
  r.scratch_generation = dev->scratch.generation();
  r.buffer_frees = g_buffer_frees.load(std::memory_order_relaxed);
  r.cache_epoch = dev->graphs.epoch();
  r.exec = exec;
}

// cudaGraphLaunch, its host time in the profile (TESSERA_CUDA_PROFILE=exec); `replay`: a
// cached graph (TESSERA_CUDA_STEP_TIMES stamps it and times it on the GPU).
Status LaunchGraph(tsr_device* dev, cudaGraphExec_t exec, bool replay = false) {
  const auto t0 = std::chrono::steady_clock::now();
  StepTimes* t = replay ? dev->step_times.get() : nullptr;
  if (t != nullptr) {
    t->keyed = t0;
    cudaEventRecord(t->ev[0], dev->stream);
  }
  const cudaError_t e = cudaGraphLaunch(exec, dev->stream);
  if (t != nullptr) {
    t->launched = std::chrono::steady_clock::now();
    cudaEventRecord(t->ev[1], dev->stream);
    t->replay = true;
  }
  AddHostRow(dev->profile.get(), "cudaGraphLaunch (host)", t0);
  return CudaStatus(e, "cudaGraphLaunch");
}

// Profile row of a captured graph: how many kernels a replay launches.
void ProfileCapturedGraph(tsr_device* dev, cudaGraph_t graph, int32_t n) {
  size_t nodes = 0;
  cudaGraphGetNodes(graph, nullptr, &nodes);
  ++dev->profile
        ->rows["graph captured: execute of " + std::to_string(n) + " nodes -> " +
               std::to_string(nodes) + " graph nodes"]
        .count;
}

// Replays the graph captured for this exact execute, capturing it the second time it is seen
// (GraphCache::MissedBefore). Whatever
// cannot be captured (scratch that must grow, a node that fails) runs directly, which also
// reports the failure exactly as without graphs.
Status ExecuteGraph(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n) {
  const auto t0 = std::chrono::steady_clock::now();
  if (dev->fast_key && SameAsLastReplay(dev, g, ids, n)) {
    AddHostRow(dev->profile.get(), "graph key: same view as the last replay (host)", t0);
    dev->graphs.Touch(dev->last_replay.exec);
    ++dev->graph_replays;
    return LaunchGraph(dev, dev->last_replay.exec, true);
  }
  if (!BuildExecKey(dev, g, ids, n, &dev->key)) return ExecuteDirect(dev, g, ids, n);
  if (cudaGraphExec_t exec = dev->graphs.Find(dev->key)) {
    AddHostRow(dev->profile.get(), "graph key: built and found (host)", t0);
    RememberReplay(dev, g, ids, n, exec);
    ++dev->graph_replays;
    return LaunchGraph(dev, exec, true);
  }
  if (!dev->graphs.MissedBefore(dev->key)) return ExecuteDirect(dev, g, ids, n);
  cudaError_t e = cudaStreamBeginCapture(dev->stream, cudaStreamCaptureModeThreadLocal);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return ExecuteDirect(dev, g, ids, n);
  }
  const Status captured = ExecuteDirect(dev, g, ids, n);
  cudaGraph_t graph = nullptr;
  e = cudaStreamEndCapture(dev->stream, &graph);
  if (!captured.ok() || e != cudaSuccess || graph == nullptr) {
    if (graph != nullptr) cudaGraphDestroy(graph);
    cudaGetLastError();
    return ExecuteDirect(dev, g, ids, n);
  }
  if (dev->profile != nullptr) ProfileCapturedGraph(dev, graph, n);
  StatusOr<cudaGraphExec_t> exec = dev->graphs.Add(dev->key, graph);
  if (!exec.ok()) {
    cudaGetLastError();
    return ExecuteDirect(dev, g, ids, n);
  }
  RememberReplay(dev, g, ids, n, *exec);
  return LaunchGraph(dev, *exec);
}

// One execute (graph or direct) between two events, synchronized (TESSERA_CUDA_PROFILE=exec):
// GPU time per execute against the host's, to see what a step costs outside the kernels.
Status ExecuteTimed(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n) {
  OpProfile& p = *dev->profile;
  const auto t0 = std::chrono::steady_clock::now();
  while (p.events.size() < 2) {
    cudaEvent_t e = nullptr;
    TSR_RETURN_IF_ERROR(CudaStatus(cudaEventCreate(&e), "profile event"));
    p.events.push_back(e);
  }
  cudaEventRecord(p.events[0], dev->stream);
  const bool graphs = dev->use_graphs && n >= kMinGraphNodes;
  const int64_t replays = dev->graph_replays;
  const auto t_launch = std::chrono::steady_clock::now();
  TSR_RETURN_IF_ERROR(graphs ? ExecuteGraph(dev, g, ids, n) : ExecuteDirect(dev, g, ids, n));
  AddHostRow(&p, ("execute of " + std::to_string(n) + " nodes (host: key + launch)").c_str(),
             t_launch);
  OpProfile::Row& how =
      p.rows["execute of " + std::to_string(n) +
             " nodes: " + (dev->graph_replays != replays ? "graph replays" : "direct/capture")];
  ++how.count;
  cudaEventRecord(p.events[1], dev->stream);
  TSR_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(dev->stream), "profile sync"));
  float ms = 0;
  cudaEventElapsedTime(&ms, p.events[0], p.events[1]);
  const double host =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  OpProfile::Row& r = p.rows["execute of " + std::to_string(n) + " nodes (gpu)"];
  r.gpu_ms += ms;
  ++r.count;
  OpProfile::Row& h = p.rows["execute of " + std::to_string(n) + " nodes (host, sync incl.)"];
  h.gpu_ms += host;
  ++h.count;
  p.host_ms += host;
  ++p.executes;
  return OkStatus();
}

// TESSERA_CUDA_STEP_TIMES: an execute begins; the step before it (a graph replay, then its
// synchronize and download) becomes one row of the columns (kStepCols).
void StepBegin(tsr_device* dev, std::chrono::steady_clock::time_point now) {
  StepTimes& t = *dev->step_times;
  if (t.replay && t.synced && t.downloaded) {
    auto us = [](auto a, auto b) {
      return std::chrono::duration<double, std::micro>(b - a).count();
    };
    float gpu_ms = 0;
    const bool timed = cudaEventElapsedTime(&gpu_ms, t.ev[0], t.ev[1]) == cudaSuccess;
    cudaGetLastError();
    const double step = us(t.exec0, now);
    const double row[kStepColCount] = {step,
                                       us(t.exec0, t.flushed),
                                       us(t.flushed, t.keyed),
                                       us(t.keyed, t.launched),
                                       us(t.launched, t.exec_end),
                                       us(t.exec_end, t.sync0),
                                       us(t.sync0, t.sync1),
                                       us(t.sync1, t.dl0),
                                       us(t.dl0, t.dl1),
                                       us(t.dl1, now),
                                       timed ? 1000.0 * gpu_ms : 0.0,
                                       timed ? step - 1000.0 * gpu_ms : 0.0};
    for (int c = 0; c < kStepColCount; ++c) t.cols[static_cast<size_t>(c)].push_back(row[c]);
  }
  t.replay = t.synced = t.downloaded = false;
  t.exec0 = now;
}

tsr_status Execute(tsr_device* dev, const tsr_graph_view* graph, const int32_t* node_ids,
                   int32_t n_node_ids, tsr_event* done, tsr_error* err) {
  if (dev == nullptr || !ViewOk(graph) || (node_ids == nullptr && n_node_ids > 0))
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "execute: NULL or malformed argument");
  if (cudaError_t e = cudaSetDevice(dev->ordinal); e != cudaSuccess)
    return FromCuda(e, "execute", err);
  SetPdlLaunches(dev->run.gemv.pdl);  // this thread's launches, for this device
  if (dev->step_times != nullptr) StepBegin(dev, std::chrono::steady_clock::now());
  EagerDownload& eager = dev->eager;
  eager.pending = false;
  eager.exec = EagerDownload::Sig{graph->tensors, graph->nodes, node_ids, n_node_ids};
  dev->drained = false;
  Status s = FlushUploads(dev);  // the step's inputs, before its kernels
  if (dev->step_times != nullptr) dev->step_times->flushed = std::chrono::steady_clock::now();
  if (!s.ok()) return FromStatus(s, err);
  if (dev->profile != nullptr && !dev->profile->whole_executes) {
    s = ExecuteProfiled(dev, *graph, node_ids, n_node_ids);
  } else if (dev->profile != nullptr) {
    s = ExecuteTimed(dev, *graph, node_ids, n_node_ids);
  } else if (dev->use_graphs && n_node_ids >= kMinGraphNodes) {
    s = ExecuteGraph(dev, *graph, node_ids, n_node_ids);
  } else {
    s = ExecuteDirect(dev, *graph, node_ids, n_node_ids);
  }
  if (!s.ok()) return FromStatus(s, err);
  if (eager.on && eager.confirmed && eager.exec == eager.sig && eager.src != nullptr) {
    // The download that followed the last two such executes, enqueued now (EagerDownload).
    const auto* b = static_cast<const tsr_buffer*>(eager.src);
    const cudaError_t e = cudaMemcpyAsync(eager.dst, b->data + eager.offset, eager.size,
                                          cudaMemcpyDeviceToHost, dev->stream);
    if (e != cudaSuccess) return FromCuda(e, "execute (eager download)", err);
    eager.pending = true;
  }
  if (dev->step_times != nullptr) dev->step_times->exec_end = std::chrono::steady_clock::now();
  if (done != nullptr) return FromCuda(cudaEventRecord(done->ev, dev->stream), "execute", err);
  return TSR_OK;
}

tsr_plugin_api MakeApi() {
  tsr_plugin_api api = backend::NewApiTable("cuda", "Tessera CUDA backend", "0.1.0");
  TESSERA_BACKEND_FILL_DEVICE_API(api, Guarded);
  api.device_memory_info = Guarded<DeviceMemoryInfo>::Call;
  api.host_alloc = Guarded<HostAlloc>::Call;
  api.host_free = HostFree;
  return api;
}

const tsr_plugin_api kApi = MakeApi();

}  // namespace
}  // namespace tessera::cuda

// Touches no device and loads no driver: whether a GPU is usable is answered by device_count and
// absence_reason, which `engine devices -v` prints.
TESSERA_BACKEND_PLUGIN_ENTRY_POINTS(tessera::cuda::kBackend, tessera::cuda::kApi, 100)
