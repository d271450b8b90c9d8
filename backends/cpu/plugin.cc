// The CPU backend's C ABI: the exported entry points, the function table, the context, the one
// CPU device, host buffers, trivial events, supports_op and execute.
//
// Every table function catches all exceptions at the boundary and turns them into a tsr_status
// plus an error message: nothing C++ crosses into the host.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "backends/cpu/op_profile.h"
#include "backends/cpu/ops.h"
#include "backends/cpu/packed_weights.h"
#include "backends/cpu/tensor.h"
#include "backends/cpu/thread_pool.h"
#include "hwy/targets.h"
#include "tessera/backend/abi.h"
#include "tessera/backend/node.h"
#include "tessera/core/status.h"
#include "tessera/plugin_api.h"

// Opaque handles of the ABI, defined here and only here.
struct tsr_plugin_ctx {
  int threads = 1;
  tessera::cpu::Int8Dot int8_dot = tessera::cpu::Int8Dot::kOff;  // option int8_dot (ops.h)
  // Option repack (packed_weights.h): "int8" (default) Q8/Q4 weights of the int8 dot into its
  // operand order; "on" also bf16 tiles; "off" none.
  tessera::cpu::Repack repack = tessera::cpu::Repack::kInt8;
  std::string device_name;         // from /proc/cpuinfo
  std::string device_description;  // SIMD target, threads
};

struct tsr_device {
  tsr_plugin_ctx* ctx = nullptr;
  std::unique_ptr<tessera::cpu::ThreadPool> pool;
  std::unique_ptr<tessera::cpu::Workspace> ws;
  std::unique_ptr<tessera::cpu::OpProfile> profile;     // TESSERA_CPU_PROFILE=1 only
  std::shared_ptr<tessera::cpu::PackedWeights> packed;  // option repack != off only
};

struct tsr_buffer {
  tsr_device* dev = nullptr;
  uint8_t* data = nullptr;
  uint64_t size = 0;
  bool owned = false;  // allocated by us (free it) vs imported host memory
  // Imported with repack != off: the registry whose copies of this memory buffer_free drops
  // (shared, as the host may free buffers after closing the device).
  std::shared_ptr<tessera::cpu::PackedWeights> packed;
};

// Every copy and execution is synchronous, so an event is complete from birth.
struct tsr_event {
  tsr_device* dev = nullptr;
};

namespace tessera::cpu {
namespace {

constexpr uint64_t kAlignment = 64;

constexpr char kBackend[] = "cpu backend";  // starts every error message

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
  return Fail(err, ToTsrStatus(s.code()), s.message());
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
// Context and device properties
// ---------------------------------------------------------------------------------------------

std::string CpuModelName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) break;
    std::string name = line.substr(colon + 1);
    name.erase(0, name.find_first_not_of(" \t"));
    if (!name.empty()) return name;
  }
  return "CPU";
}

// The SIMD target HWY_DYNAMIC_DISPATCH picks on this machine: the best compiled one supported.
const char* ChosenSimdTarget() {
  const int64_t usable = hwy::SupportedTargets() & HWY_TARGETS;
  if (usable == 0) return "none";
  return hwy::TargetName(usable & -usable);  // lowest bit = best target
}

// /proc/meminfo's MemAvailable in bytes, or 0 if unreadable.
uint64_t MemAvailable() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemAvailable:") return kb * 1024;
  }
  return 0;
}

// Parses "threads": a whole positive decimal integer.
StatusOr<int> ParseThreads(const char* value) {
  if (value == nullptr || *value == '\0') return InvalidArgument("option \"threads\" is empty");
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(value, &end, 10);
  if (errno != 0 || *end != '\0' || v < 1 || v > 4096) {
    return InvalidArgument(
        std::string("option \"threads\" must be an integer in [1, 4096], got \"") + value + "\"");
  }
  return static_cast<int>(v);
}

tsr_status CreateContext(const tsr_option* options, size_t n_options, tsr_plugin_ctx** out,
                         tsr_error* err) {
  return Guard(err, [&]() -> tsr_status {
    if (out == nullptr) return Fail(err, TSR_ERR_INVALID_ARGUMENT, "create_context: out is NULL");
    if (n_options > 0 && options == nullptr) {
      return Fail(err, TSR_ERR_INVALID_ARGUMENT, "create_context: options is NULL");
    }
    auto ctx = std::make_unique<tsr_plugin_ctx>();
    ctx->threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (size_t i = 0; i < n_options; ++i) {
      const char* key = options[i].key != nullptr ? options[i].key : "";
      if (std::strcmp(key, "threads") == 0) {
        StatusOr<int> threads = ParseThreads(options[i].value);
        if (!threads.ok()) return FromStatus(threads.status(), err);
        ctx->threads = *threads;
      } else if (std::strcmp(key, "int8_dot") == 0) {
        const char* v = options[i].value != nullptr ? options[i].value : "";
        if (std::strcmp(v, "off") == 0) {
          ctx->int8_dot = Int8Dot::kOff;
        } else if (std::strcmp(v, "on") == 0) {
          ctx->int8_dot = Int8Dot::kOn;
        } else if (std::strcmp(v, "portable") == 0) {
          ctx->int8_dot = Int8Dot::kPortable;
        } else if (std::strcmp(v, "vnni") == 0) {
          ctx->int8_dot = Int8Dot::kVnniOnly;
        } else {
          return Fail(err, TSR_ERR_INVALID_ARGUMENT,
                      std::string("option \"int8_dot\" must be off, on, portable or vnni, got \"") +
                          v + "\"");
        }
      } else if (std::strcmp(key, "repack") == 0) {
        const char* v = options[i].value != nullptr ? options[i].value : "";
        if (std::strcmp(v, "off") == 0) {
          ctx->repack = Repack::kOff;
        } else if (std::strcmp(v, "int8") == 0) {
          ctx->repack = Repack::kInt8;
        } else if (std::strcmp(v, "on") == 0) {
          ctx->repack = Repack::kAll;
        } else {
          return Fail(err, TSR_ERR_INVALID_ARGUMENT,
                      std::string("option \"repack\" must be off, int8 or on, got \"") + v + "\"");
        }
      } else {
        return Fail(err, TSR_ERR_INVALID_ARGUMENT,
                    std::string("cpu backend: unknown option \"") + key +
                        "\" (known: threads, int8_dot, repack)");
      }
    }
    ctx->device_name = CpuModelName();
    ctx->device_description = std::string("Highway SIMD target ") + ChosenSimdTarget() + ", " +
                              std::to_string(ctx->threads) + " threads";
    Log(TSR_LOG_DEBUG, "cpu backend: " + ctx->device_name + " (" + ctx->device_description + ")");
    *out = ctx.release();
    return TSR_OK;
  });
}

void DestroyContext(tsr_plugin_ctx* ctx) {
  delete ctx;
}

const char* AbsenceReason(tsr_plugin_ctx* /*ctx*/) {
  return "";
}

tsr_status DeviceCount(tsr_plugin_ctx* ctx, int32_t* out_count, tsr_error* err) {
  if (ctx == nullptr || out_count == nullptr) {
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "device_count: NULL argument");
  }
  *out_count = 1;
  return TSR_OK;
}

tsr_status DeviceProps(tsr_plugin_ctx* ctx, int32_t index, tsr_device_props* out, tsr_error* err) {
  return Guard(err, [&]() -> tsr_status {
    if (ctx == nullptr || out == nullptr) {
      return Fail(err, TSR_ERR_INVALID_ARGUMENT, "device_props: NULL argument");
    }
    if (index != 0)
      return Fail(err, TSR_ERR_NOT_FOUND, "device_props: no CPU device " + std::to_string(index));
    tsr_device_props p{};
    p.struct_size = sizeof(p);
    p.name = ctx->device_name.c_str();
    p.description = ctx->device_description.c_str();
    p.kind = TSR_DEVICE_CPU;
    p.caps = TSR_CAP_F16 | TSR_CAP_BF16 | TSR_CAP_Q8 | TSR_CAP_Q4 | TSR_CAP_HOST_IMPORT |
             TSR_CAP_UNIFIED_MEMORY;
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long page_size = sysconf(_SC_PAGESIZE);
    p.memory_total = pages > 0 && page_size > 0 ? uint64_t(pages) * uint64_t(page_size) : 0;
    p.memory_free = MemAvailable();
    p.compute_units = ctx->threads;
    p.exec_styles = TSR_EXEC_KERNEL;
    // Never write past the host's struct (an older minor may have a shorter one).
    const size_t n =
        out->struct_size == 0 ? sizeof(p) : std::min<size_t>(out->struct_size, sizeof(p));
    p.struct_size = static_cast<uint32_t>(n);
    std::memcpy(out, &p, n);
    return TSR_OK;
  });
}

// ABI 1.1: the live form of DeviceProps' memory figures (system RAM; free = MemAvailable).
tsr_status DeviceMemoryInfo(tsr_device* dev, uint64_t* out_free, uint64_t* out_total,
                            tsr_error* err) {
  if (dev == nullptr || out_free == nullptr || out_total == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "device_memory_info: NULL argument");
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  *out_total = pages > 0 && page_size > 0 ? uint64_t(pages) * uint64_t(page_size) : 0;
  *out_free = MemAvailable();
  return TSR_OK;
}

tsr_status DeviceOpen(tsr_plugin_ctx* ctx, int32_t index, tsr_device** out, tsr_error* err) {
  return Guard(err, [&]() -> tsr_status {
    if (ctx == nullptr || out == nullptr)
      return Fail(err, TSR_ERR_INVALID_ARGUMENT, "device_open: NULL argument");
    if (index != 0)
      return Fail(err, TSR_ERR_NOT_FOUND, "device_open: no CPU device " + std::to_string(index));
    auto dev = std::make_unique<tsr_device>();
    dev->ctx = ctx;
    dev->pool = std::make_unique<ThreadPool>(ctx->threads);
    dev->ws = std::make_unique<Workspace>(ctx->threads);
    if (OpProfile::Enabled()) {
      dev->profile = std::make_unique<OpProfile>();
      dev->pool->EnableStats();
    }
    if (ctx->repack != Repack::kOff) dev->packed = std::make_shared<PackedWeights>();
    *out = dev.release();
    return TSR_OK;
  });
}

void DeviceClose(tsr_device* dev) {
  if (dev != nullptr && dev->profile != nullptr) dev->profile->Print(*dev->pool);
  delete dev;
}

tsr_status DeviceSynchronize(tsr_device* dev, tsr_error* err) {
  if (dev == nullptr) return Fail(err, TSR_ERR_INVALID_ARGUMENT, "device_synchronize: NULL device");
  return TSR_OK;  // all work is synchronous
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
  p.name = "host";
  p.alignment = kAlignment;
  p.max_size = 0;
  p.host_visible = 1;
  const size_t n =
      out->struct_size == 0 ? sizeof(p) : std::min<size_t>(out->struct_size, sizeof(p));
  p.struct_size = static_cast<uint32_t>(n);
  std::memcpy(out, &p, n);
  return TSR_OK;
}

tsr_status BufferAlloc(tsr_device* dev, int32_t type, uint64_t size, tsr_buffer** out,
                       tsr_error* err) {
  return Guard(err, [&]() -> tsr_status {
    if (dev == nullptr || out == nullptr)
      return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_alloc: NULL argument");
    if (type != 0)
      return Fail(err, TSR_ERR_NOT_FOUND, "buffer_alloc: no buffer type " + std::to_string(type));
    if (size > (uint64_t{1} << 62))
      return Fail(err, TSR_ERR_OUT_OF_MEMORY, "buffer_alloc: size too large");
    // aligned_alloc needs a multiple of the alignment; a 0-byte buffer still gets a real pointer.
    const uint64_t rounded =
        std::max<uint64_t>(kAlignment, (size + kAlignment - 1) / kAlignment * kAlignment);
    void* p = std::aligned_alloc(kAlignment, rounded);
    if (p == nullptr) {
      return Fail(err, TSR_ERR_OUT_OF_MEMORY,
                  "buffer_alloc: cannot allocate " + std::to_string(size) + " bytes");
    }
    auto buf = std::make_unique<tsr_buffer>();
    buf->dev = dev;
    buf->data = static_cast<uint8_t*>(p);
    buf->size = size;
    buf->owned = true;
    *out = buf.release();
    return TSR_OK;
  });
}

tsr_status BufferImportHost(tsr_device* dev, void* ptr, uint64_t size, tsr_buffer** out,
                            tsr_error* err) {
  return Guard(err, [&]() -> tsr_status {
    if (dev == nullptr || out == nullptr)
      return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_import_host: NULL argument");
    if (ptr == nullptr && size > 0)
      return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_import_host: NULL pointer");
    auto buf = std::make_unique<tsr_buffer>();
    buf->dev = dev;
    buf->data = static_cast<uint8_t*>(ptr);
    buf->size = size;
    buf->owned = false;
    buf->packed = dev->packed;
    *out = buf.release();
    return TSR_OK;
  });
}

void BufferFree(tsr_buffer* buf) {
  if (buf == nullptr) return;
  if (buf->packed != nullptr) buf->packed->Forget(buf->data, buf->data + buf->size);
  if (buf->owned) std::free(buf->data);
  delete buf;
}

tsr_status BufferMap(tsr_buffer* buf, void** out_ptr, tsr_error* err) {
  if (buf == nullptr || out_ptr == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_map: NULL argument");
  *out_ptr = buf->data;
  return TSR_OK;
}

using backend::CheckRange;

tsr_status BufferUpload(tsr_buffer* dst, uint64_t dst_offset, const void* src, uint64_t size,
                        tsr_event* /*done*/, tsr_error* err) {
  if (dst == nullptr || (src == nullptr && size > 0))
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_upload: NULL argument");
  if (tsr_status s = CheckRange(dst, dst_offset, size, "buffer_upload", err); s != TSR_OK) return s;
  if (size > 0) std::memcpy(dst->data + dst_offset, src, size);
  return TSR_OK;  // synchronous: `done` is already complete
}

tsr_status BufferDownload(tsr_buffer* src, uint64_t src_offset, void* dst, uint64_t size,
                          tsr_event* /*done*/, tsr_error* err) {
  if (src == nullptr || (dst == nullptr && size > 0))
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_download: NULL argument");
  if (tsr_status s = CheckRange(src, src_offset, size, "buffer_download", err); s != TSR_OK)
    return s;
  if (size > 0) std::memcpy(dst, src->data + src_offset, size);
  return TSR_OK;
}

tsr_status BufferCopy(tsr_buffer* src, uint64_t src_offset, tsr_buffer* dst, uint64_t dst_offset,
                      uint64_t size, tsr_event* /*done*/, tsr_error* err) {
  if (src == nullptr || dst == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_copy: NULL buffer");
  if (tsr_status s = CheckRange(src, src_offset, size, "buffer_copy (source)", err); s != TSR_OK)
    return s;
  if (tsr_status s = CheckRange(dst, dst_offset, size, "buffer_copy (destination)", err);
      s != TSR_OK)
    return s;
  if (size > 0) std::memmove(dst->data + dst_offset, src->data + src_offset, size);  // may overlap
  return TSR_OK;
}

tsr_status EventCreate(tsr_device* dev, tsr_event** out, tsr_error* err) {
  return Guard(err, [&]() -> tsr_status {
    if (dev == nullptr || out == nullptr)
      return Fail(err, TSR_ERR_INVALID_ARGUMENT, "event_create: NULL argument");
    *out = new tsr_event{dev};
    return TSR_OK;
  });
}

tsr_status EventWait(tsr_event* ev, tsr_error* err) {
  if (ev == nullptr) return Fail(err, TSR_ERR_INVALID_ARGUMENT, "event_wait: NULL event");
  return TSR_OK;
}

void EventDestroy(tsr_event* ev) {
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

const tsr_graph_view* CheckView(const tsr_graph_view* graph) {
  if (graph == nullptr || graph->n_tensors < 0 || graph->n_nodes < 0) return nullptr;
  return graph;
}

tsr_status SupportsOp(tsr_device* dev, const tsr_graph_view* graph, int32_t node,
                      tsr_bool* out_supported, tsr_error* err) {
  return Guard(err, [&]() -> tsr_status {
    if (dev == nullptr || out_supported == nullptr || CheckView(graph) == nullptr) {
      return Fail(err, TSR_ERR_INVALID_ARGUMENT, "supports_op: NULL or malformed argument");
    }
    if (graph->nodes == nullptr || node < 0 || node >= graph->n_nodes) {
      return Fail(err, TSR_ERR_INVALID_ARGUMENT, "supports_op: node index out of range");
    }
    *out_supported = 0;
    auto ln = std::make_unique<LoadedNode>();
    if (!LoadNode(dev, *graph, node, /*with_data=*/false, ln.get()).ok()) return TSR_OK;
    if (FindRunner(RawEnum(ln->node.op)) == nullptr) return TSR_OK;
    *out_supported = ValidateOp(ln->args).ok() ? 1 : 0;
    return TSR_OK;
  });
}

// Option repack (int8 by default): the packed copy of a MATMUL's weights (packed_weights.h) when
// they qualify and live in imported host memory, which the ABI keeps unchanged until buffer_free.
// GET_ROWS: the copy a MATMUL made of its table (a tied embedding, whose original pages went
// back to the kernel), never a new one.
const uint8_t* PackedWeightsFor(tsr_device* dev, const tsr_graph_view& g, const LoadedNode& ln) {
  if (dev->packed != nullptr && RawEnum(ln.node.op) == TSR_OP_GET_ROWS && ln.args.n_in >= 1 &&
      ln.args.in[0] != nullptr)
    return dev->packed->Find(*ln.args.in[0]);
  if (dev->packed == nullptr || RawEnum(ln.node.op) != TSR_OP_MATMUL || ln.args.n_in < 2 ||
      ln.args.in[1] == nullptr)
    return nullptr;
  const int64_t chunk =
      PackedWeights::ChunkBytes(*ln.args.in[1], dev->ctx->int8_dot,
                                dev->ctx->repack == Repack::kAll && PackedRowsSupported());
  if (chunk == 0) return nullptr;
  const tsr_tensor t = ReadAbiStruct(g.tensors, ln.node.inputs[1]);
  if (t.buffer == nullptr || t.buffer->owned) return nullptr;
  return dev->packed->Get(*ln.args.in[1], chunk, dev->pool.get());
}

// Loads node_index into ln and makes it ready to run with *run.
Status PrepareNode(tsr_device* dev, const tsr_graph_view& g, int32_t node_index, LoadedNode* ln,
                   OpFn* run) {
  TSR_RETURN_IF_ERROR(LoadNode(dev, g, node_index, /*with_data=*/true, ln));
  *run = FindRunner(RawEnum(ln->node.op));
  if (*run == nullptr) return InvalidArgument("unknown op " + std::to_string(RawEnum(ln->node.op)));
  TSR_RETURN_IF_ERROR(ValidateOp(ln->args));
  ln->args.pool = dev->pool.get();
  ln->args.ws = dev->ws.get();
  ln->args.int8_dot = dev->ctx->int8_dot;
  ln->args.packed_w = PackedWeightsFor(dev, g, *ln);
  return OkStatus();
}

Status RunPrepared(tsr_device* dev, const LoadedNode& ln, OpFn run) {
  if (dev->profile == nullptr) return run(ln.args);
  const ThreadPool::Stats p0 = dev->pool->stats();
  const auto t0 = OpProfile::Clock::now();
  Status s = run(ln.args);
  const double seconds = std::chrono::duration<double>(OpProfile::Clock::now() - t0).count();
  const ThreadPool::Stats p1 = dev->pool->stats();
  dev->profile->Record(ln.args, seconds, &p0, &p1);
  return s;
}

// Sibling matmuls (TESSERA_CPU_FUSE_SIBLINGS, on unless "0"): consecutive MATMUL nodes that
// read the same x (q, k, v of a layer; gate and up) run as one pool job over the union of their
// column tasks (RunMatmulGroup) instead of one job and barrier each, and share one copy of x's
// int8 rows (q8/q4). Decode steps, and prefill with block-quantized weights (cpu-q19: a prefill
// x was quantized once per member, and each member's job ended on its own tail). Every element
// is computed by the same code as node by node, so the bits are the same either way.
bool FuseSiblings() {
  static const bool on = [] {
    const char* e = std::getenv("TESSERA_CPU_FUSE_SIBLINGS");
    return e == nullptr || std::string_view(e) != "0";
  }();
  return on;
}

constexpr int kMaxSiblings = 4;  // q, k, v; gate, up

// A MATMUL that may join a group: decode rows (M <= 8) or block-quantized weights, one slice,
// 2-D weights, a non-empty output.
bool GroupableMatmul(const LoadedNode& ln) {
  const OpArgs& a = ln.args;
  if (RawEnum(ln.node.op) != TSR_OP_MATMUL || a.n_in < 2 || a.in[0] == nullptr ||
      a.in[1] == nullptr || a.out == nullptr)
    return false;
  const TensorRef& x = *a.in[0];
  const int64_t M = x.ndim >= 2 ? x.dim(-2) : 1;
  // Prefill rows only with block-quantized weights: their x is quantized to int8 once for the
  // group instead of once a member (the lead's ABBA: q8 pp512 +4-13%); bf16 prefill groups read
  // level on Qwen and 1-3% slower on Llama, so bf16 / f32 prefill stays node by node.
  const bool quantized = a.in[1]->dtype == TSR_DTYPE_Q8_B32 || a.in[1]->dtype == TSR_DTYPE_Q4_B32;
  return M >= 1 && (M <= 8 || quantized) && backend::NumMatrices(x) == 1 && a.in[1]->ndim == 2 &&
         a.out->NumElements() > 0;
}

bool SameView(const TensorRef& a, const TensorRef& b) {
  if (a.data != b.data || a.dtype != b.dtype || a.ndim != b.ndim) return false;
  for (int i = 0; i < a.ndim; ++i) {
    if (a.ne[i] != b.ne[i] || a.nb[i] != b.nb[i]) return false;
  }
  return true;
}

bool Overlap(const TensorRef& a, const TensorRef& b) {
  const int64_t ea = a.Extent(), eb = b.Extent();
  return ea > 0 && eb > 0 && a.data < b.data + eb && b.data < a.data + ea;
}

// c's output overlaps none of c's and the members' inputs and outputs, and c's inputs overlap
// no member's output: the members can run in any order, interleaved.
bool Independent(const LoadedNode* const* members, int n, const LoadedNode& c) {
  const OpArgs& ca = c.args;
  for (int i = 0; i < ca.n_in; ++i) {
    if (ca.in[i] != nullptr && Overlap(*ca.out, *ca.in[i])) return false;
  }
  for (int k = 0; k < n; ++k) {
    const OpArgs& ma = members[k]->args;
    if (Overlap(*ca.out, *ma.out)) return false;
    for (int i = 0; i < ma.n_in; ++i) {
      if (ma.in[i] != nullptr && Overlap(*ca.out, *ma.in[i])) return false;
    }
    for (int i = 0; i < ca.n_in; ++i) {
      if (ca.in[i] != nullptr && Overlap(*ma.out, *ca.in[i])) return false;
    }
  }
  return true;
}

// Runs node ids[0], or ids[0, *consumed) as one sibling group.
Status ExecuteFrom(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n,
                   int32_t* consumed) {
  *consumed = 1;
  std::unique_ptr<LoadedNode> group[kMaxSiblings];
  group[0] = std::make_unique<LoadedNode>();
  OpFn run = nullptr;
  TSR_RETURN_IF_ERROR(PrepareNode(dev, g, ids[0], group[0].get(), &run));
  if (!FuseSiblings() || !GroupableMatmul(*group[0])) return RunPrepared(dev, *group[0], run);
  const LoadedNode* members[kMaxSiblings] = {group[0].get()};
  int n_group = 1;
  while (n_group < kMaxSiblings && n_group < n) {
    const int32_t id = ids[n_group];
    if (g.nodes == nullptr || id < 0 || id >= g.n_nodes ||
        RawEnum(ReadAbiStruct(g.nodes, id).op) != TSR_OP_MATMUL)
      break;
    auto c = std::make_unique<LoadedNode>();
    OpFn c_run = nullptr;
    // A node that fails here fails again, with its own message, when it runs alone.
    if (!PrepareNode(dev, g, id, c.get(), &c_run).ok() || !GroupableMatmul(*c) ||
        !SameView(*c->args.in[0], *group[0]->args.in[0]) || !Independent(members, n_group, *c))
      break;
    members[n_group] = c.get();
    group[n_group++] = std::move(c);
  }
  if (n_group == 1) return RunPrepared(dev, *group[0], run);
  *consumed = n_group;
  const OpArgs* args[kMaxSiblings];
  for (int k = 0; k < n_group; ++k) args[k] = &group[k]->args;
  if (dev->profile == nullptr) return RunMatmulGroup(args, n_group);
  const ThreadPool::Stats p0 = dev->pool->stats();
  const auto t0 = OpProfile::Clock::now();
  Status s = RunMatmulGroup(args, n_group);
  const ThreadPool::Stats p1 = dev->pool->stats();
  // The group's time split across its members by their weights' bytes.
  const double seconds = std::chrono::duration<double>(OpProfile::Clock::now() - t0).count();
  double bytes = 0;
  for (int k = 0; k < n_group; ++k) bytes += static_cast<double>(args[k]->in[1]->Extent());
  for (int k = 0; k < n_group; ++k) {
    const double share = bytes > 0 ? args[k]->in[1]->Extent() / bytes : 1.0 / n_group;
    dev->profile->Record(*args[k], seconds * share, &p0, &p1, share);
  }
  return s;
}

tsr_status Execute(tsr_device* dev, const tsr_graph_view* graph, const int32_t* node_ids,
                   int32_t n_node_ids, tsr_event* /*done*/, tsr_error* err) {
  return Guard(err, [&]() -> tsr_status {
    if (dev == nullptr || CheckView(graph) == nullptr || (node_ids == nullptr && n_node_ids > 0)) {
      return Fail(err, TSR_ERR_INVALID_ARGUMENT, "execute: NULL or malformed argument");
    }
    if (dev->profile != nullptr) dev->profile->BeginExecute();
    for (int32_t i = 0, consumed = 1; i < n_node_ids; i += consumed) {
      const Status s = ExecuteFrom(dev, *graph, node_ids + i, n_node_ids - i, &consumed);
      if (!s.ok()) {
        int op = 0;
        if (graph->nodes != nullptr && node_ids[i] >= 0 && node_ids[i] < graph->n_nodes) {
          op = RawEnum(ReadAbiStruct(graph->nodes, node_ids[i]).op);
        }
        return Fail(err, ToTsrStatus(s.code()),
                    "cpu backend: node " + std::to_string(node_ids[i]) + " (" + OpName(op) +
                        "): " + s.message());
      }
    }
    if (dev->profile != nullptr) dev->profile->EndExecute();
    return TSR_OK;  // synchronous: `done` is already complete
  });
}

tsr_plugin_api MakeApi() {
  tsr_plugin_api api = backend::NewApiTable("cpu", "Tessera CPU backend (Highway SIMD)", "0.1.0");
  TESSERA_BACKEND_FILL_DEVICE_API(api, Guarded);
  api.device_memory_info = Guarded<DeviceMemoryInfo>::Call;
  // Compile style (claim/compile/...) is for NPUs: left NULL.
  return api;
}

const tsr_plugin_api kApi = MakeApi();

}  // namespace
}  // namespace tessera::cpu

extern "C" {

TSR_PLUGIN_EXPORT const tsr_plugin_api* tsr_plugin_init(const tsr_host_api* host, tsr_error* err) {
  return tessera::backend::PluginInit(tessera::cpu::kBackend, host, &tessera::cpu::kApi, err);
}

// A portable build (Highway picks the ISA at run time), so any x86-64 / other host can run it.
// Touches no device and runs no ISA-specific code.
TSR_PLUGIN_EXPORT int32_t tsr_plugin_probe(void) {
  return 100;
}

}  // extern "C"
