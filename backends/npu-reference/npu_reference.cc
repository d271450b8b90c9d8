// npu-reference: a compile-style backend that behaves like an NPU and runs on the host CPU as a
// simulator. See README.md for what it models and its options.
//
//   claim      groups of consecutive nodes it can run (matmul, norms, RoPE, elementwise/gated MLP
//              ops, softmax, dense attention, KV_WRITE + PAGED_ATTENTION over a KV pool it
//              holds), within its device-memory cap;
//   compile    GraphProto bytes -> npu_program.h's Program (fixed shapes, f16/int8 only), cached
//              on disk as a blob keyed by a hash of the bytes + the compat string;
//   run        the simulator over the device's own memory (buffers are not host-visible).
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "npu_program.h"
#include "tessera/backend/abi.h"
#include "tessera/quant_formats.h"

namespace tessera::npu {
namespace {

constexpr char kBackend[] = "npu-reference";
constexpr char kVersion[] = "0.1.0";
// Everything a compiled blob depends on: the program format, the opset, the simulator build.
constexpr char kCompat[] = "npu-reference 0.2.0; program v2 (paged KV); opset 1.x; f16/int8";

using backend::Fail;
template <auto F>
using Guarded = backend::Guarded<kBackend, F>;

}  // namespace
}  // namespace tessera::npu

struct tsr_plugin_ctx {
  uint64_t memory_cap = 2048ull << 20;
  std::string cache_dir;   // "" = no disk cache
  std::string stats_file;  // "" = none
  std::atomic<uint64_t> used{0};
  std::mutex stats_mu;
  int64_t compiled = 0, cache_hits = 0, cache_writes = 0;
  // Instructions executed, by tsr_op: proof of what really ran on the device.
  std::array<std::atomic<int64_t>, TSR_OP_COUNT> executed{};
  std::chrono::steady_clock::time_point stats_written{};
};

struct tsr_device {
  tsr_plugin_ctx* ctx;
};

struct tsr_buffer {
  tsr_device* dev;
  std::unique_ptr<uint8_t[]> data;
  uint64_t size;
};

struct tsr_executable {
  tsr_device* dev;
  tessera::npu::Program program;
  std::vector<tsr_buffer*> weights;
  tsr_buffer* scratch = nullptr;  // device memory for intermediates
};

namespace tessera::npu {
namespace {

// ---- context / options ---------------------------------------------------------------------

std::string DefaultCacheDir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/tessera/npu";
  const char* home = std::getenv("HOME");
  return home && *home ? std::string(home) + "/.cache/tessera/npu" : "";
}

tsr_status CreateContext(const tsr_option* options, size_t n, tsr_plugin_ctx** out,
                         tsr_error* err) {
  auto ctx = std::make_unique<tsr_plugin_ctx>();
  ctx->cache_dir = DefaultCacheDir();
  // The environment default lets a harness that cannot pass options (the golden suite) read the
  // counters too.
  if (const char* stats = std::getenv("TESSERA_NPU_STATS_FILE")) ctx->stats_file = stats;
  for (size_t i = 0; i < n; ++i) {
    const std::string key = options[i].key ? options[i].key : "";
    const std::string value = options[i].value ? options[i].value : "";
    if (key == "memory_mb") {
      char* end = nullptr;
      const unsigned long long mb = std::strtoull(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || mb == 0)
        return Fail(err, TSR_ERR_INVALID_ARGUMENT,
                    "npu-reference: memory_mb must be a positive integer, got '" + value + "'");
      ctx->memory_cap = mb << 20;
    } else if (key == "cache_dir") {
      ctx->cache_dir = value == "none" ? "" : value;
    } else if (key == "stats_file") {
      ctx->stats_file = value;
    } else {
      return Fail(
          err, TSR_ERR_INVALID_ARGUMENT,
          "npu-reference: unknown option '" + key + "' (known: memory_mb, cache_dir, stats_file)");
    }
  }
  *out = ctx.release();
  return TSR_OK;
}

void WriteStats(tsr_plugin_ctx* ctx);

void DestroyContext(tsr_plugin_ctx* ctx) {
  {
    std::lock_guard<std::mutex> lock(ctx->stats_mu);
    WriteStats(ctx);  // the final instruction counts
  }
  delete ctx;
}

const char* AbsenceReason(tsr_plugin_ctx*) {
  return "";
}

// Names of the ops the device runs, for the "executed" counters.
const char* OpLabel(int op) {
  switch (op) {
    case TSR_OP_MATMUL: return "MATMUL";
    case TSR_OP_ADD: return "ADD";
    case TSR_OP_SUB: return "SUB";
    case TSR_OP_MUL: return "MUL";
    case TSR_OP_DIV: return "DIV";
    case TSR_OP_SCALE: return "SCALE";
    case TSR_OP_SILU: return "SILU";
    case TSR_OP_GELU: return "GELU";
    case TSR_OP_GELU_TANH: return "GELU_TANH";
    case TSR_OP_RELU: return "RELU";
    case TSR_OP_TANH: return "TANH";
    case TSR_OP_SIGMOID: return "SIGMOID";
    case TSR_OP_SOFTCAP: return "SOFTCAP";
    case TSR_OP_SWIGLU: return "SWIGLU";
    case TSR_OP_GEGLU: return "GEGLU";
    case TSR_OP_RMS_NORM: return "RMS_NORM";
    case TSR_OP_LAYER_NORM: return "LAYER_NORM";
    case TSR_OP_ROPE: return "ROPE";
    case TSR_OP_SOFTMAX: return "SOFTMAX";
    case TSR_OP_ATTENTION: return "ATTENTION";
    case TSR_OP_KV_WRITE: return "KV_WRITE";
    case TSR_OP_PAGED_ATTENTION: return "PAGED_ATTENTION";
    case TSR_OP_COPY: return "COPY";
    default: return nullptr;
  }
}

// The counters a test reads to prove a second start compiles nothing, and which ops ran here.
// REQUIRES: ctx->stats_mu held.
void WriteStats(tsr_plugin_ctx* ctx) {
  if (ctx->stats_file.empty()) return;
  ctx->stats_written = std::chrono::steady_clock::now();
  const std::string tmp = ctx->stats_file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "{\"compiled\": " << ctx->compiled << ", \"cache_hits\": " << ctx->cache_hits
        << ", \"cache_writes\": " << ctx->cache_writes << ", \"executed\": {";
    const char* sep = "";
    for (int op = 0; op < TSR_OP_COUNT; ++op) {
      const int64_t n = ctx->executed[op].load();
      if (n == 0 || OpLabel(op) == nullptr) continue;
      out << sep << "\"" << OpLabel(op) << "\": " << n;
      sep = ", ";
    }
    out << "}}\n";
  }
  std::error_code ec;
  std::filesystem::rename(tmp, ctx->stats_file, ec);
}

// ---- devices -------------------------------------------------------------------------------

tsr_status DeviceCount(tsr_plugin_ctx*, int32_t* out, tsr_error*) {
  *out = 1;
  return TSR_OK;
}

tsr_status DeviceProps(tsr_plugin_ctx* ctx, int32_t index, tsr_device_props* p, tsr_error* err) {
  if (index != 0) return Fail(err, TSR_ERR_NOT_FOUND, "npu-reference: one device, index 0");
  const uint32_t size = p->struct_size ? p->struct_size : sizeof(*p);
  tsr_device_props v{};
  v.struct_size = sizeof(v);
  v.name = "Tessera reference NPU (host simulator)";
  v.description = "static shapes, f16/int8 compute, int32 indices; compiled blobs cached";
  v.kind = TSR_DEVICE_NPU;
  v.caps = TSR_CAP_F16 | TSR_CAP_Q8 | TSR_CAP_STATIC_SHAPES | TSR_CAP_NO_F32;
  v.memory_total = ctx->memory_cap;
  v.memory_free = ctx->memory_cap - std::min<uint64_t>(ctx->memory_cap, ctx->used.load());
  v.compute_units = 1;
  v.exec_styles = TSR_EXEC_COMPILE;
  std::memcpy(p, &v, std::min<size_t>(size, sizeof(v)));
  p->struct_size = size;
  return TSR_OK;
}

tsr_status DeviceOpen(tsr_plugin_ctx* ctx, int32_t index, tsr_device** out, tsr_error* err) {
  if (index != 0) return Fail(err, TSR_ERR_NOT_FOUND, "npu-reference: one device, index 0");
  *out = new tsr_device{ctx};
  return TSR_OK;
}

void DeviceClose(tsr_device* dev) {
  delete dev;
}

tsr_status DeviceSynchronize(tsr_device*, tsr_error*) {
  return TSR_OK;  // synchronous simulator
}

// ---- buffers: the device's own memory, capped ------------------------------------------------

tsr_status BufferTypeCount(tsr_device*, int32_t* out, tsr_error*) {
  *out = 1;
  return TSR_OK;
}

tsr_status BufferTypeProps(tsr_device* dev, int32_t type, tsr_buffer_type_props* p,
                           tsr_error* err) {
  if (type != 0) return Fail(err, TSR_ERR_NOT_FOUND, "npu-reference: one buffer type");
  p->name = "npu-dram";
  p->alignment = 64;
  p->max_size = dev->ctx->memory_cap;
  p->host_visible = 0;
  return TSR_OK;
}

tsr_status Allocate(tsr_device* dev, uint64_t size, tsr_buffer** out, tsr_error* err) {
  tsr_plugin_ctx* ctx = dev->ctx;
  const uint64_t used = ctx->used.fetch_add(size);
  if (used + size > ctx->memory_cap) {
    ctx->used.fetch_sub(size);
    return Fail(err, TSR_ERR_OUT_OF_MEMORY,
                "npu-reference: device memory cap of " + std::to_string(ctx->memory_cap >> 20) +
                    " MiB exceeded: " + std::to_string(size) + " bytes asked, " +
                    std::to_string(used) + " in use (backend option memory_mb raises the cap)");
  }
  auto buf = std::make_unique<tsr_buffer>();
  buf->dev = dev;
  buf->data.reset(new (std::nothrow) uint8_t[std::max<uint64_t>(size, 1)]);
  buf->size = size;
  if (!buf->data) {
    ctx->used.fetch_sub(size);
    return Fail(err, TSR_ERR_OUT_OF_MEMORY, "npu-reference: host allocation failed");
  }
  *out = buf.release();
  return TSR_OK;
}

tsr_status BufferAlloc(tsr_device* dev, int32_t type, uint64_t size, tsr_buffer** out,
                       tsr_error* err) {
  if (type != 0) return Fail(err, TSR_ERR_NOT_FOUND, "npu-reference: one buffer type");
  return Allocate(dev, size, out, err);
}

tsr_status BufferImportHost(tsr_device*, void*, uint64_t, tsr_buffer**, tsr_error* err) {
  // Device memory is separate: weights are uploaded (and counted against the cap).
  return Fail(err, TSR_ERR_UNSUPPORTED, "npu-reference: no zero-copy import of host memory");
}

void BufferFree(tsr_buffer* buf) {
  if (buf == nullptr) return;
  buf->dev->ctx->used.fetch_sub(buf->size);
  delete buf;
}

tsr_status BufferMap(tsr_buffer*, void**, tsr_error* err) {
  return Fail(err, TSR_ERR_UNSUPPORTED, "npu-reference: device memory is not host-visible");
}

tsr_status BufferUpload(tsr_buffer* dst, uint64_t off, const void* src, uint64_t size, tsr_event*,
                        tsr_error* err) {
  if (tsr_status s = backend::CheckRange(dst, off, size, "upload", err); s != TSR_OK) return s;
  std::memcpy(dst->data.get() + off, src, size);
  return TSR_OK;
}

tsr_status BufferDownload(tsr_buffer* src, uint64_t off, void* dst, uint64_t size, tsr_event*,
                          tsr_error* err) {
  if (tsr_status s = backend::CheckRange(src, off, size, "download", err); s != TSR_OK) return s;
  std::memcpy(dst, src->data.get() + off, size);
  return TSR_OK;
}

tsr_status BufferCopy(tsr_buffer* src, uint64_t src_off, tsr_buffer* dst, uint64_t dst_off,
                      uint64_t size, tsr_event*, tsr_error* err) {
  if (tsr_status s = backend::CheckRange(src, src_off, size, "copy source", err); s != TSR_OK)
    return s;
  if (tsr_status s = backend::CheckRange(dst, dst_off, size, "copy target", err); s != TSR_OK)
    return s;
  std::memmove(dst->data.get() + dst_off, src->data.get() + src_off, size);
  return TSR_OK;
}

tsr_status EventCreate(tsr_device*, tsr_event** out, tsr_error*) {
  *out = nullptr;  // everything completes before return
  return TSR_OK;
}
tsr_status EventWait(tsr_event*, tsr_error*) {
  return TSR_OK;
}
void EventDestroy(tsr_event*) {}

// Kernel style is not offered (the op-conformance runner asks anyway).
tsr_status SupportsOp(tsr_device*, const tsr_graph_view*, int32_t, tsr_bool* out, tsr_error*) {
  *out = 0;
  return TSR_ERR_UNIMPLEMENTED;
}
tsr_status Execute(tsr_device*, const tsr_graph_view*, const int32_t*, int32_t, tsr_event*,
                   tsr_error* err) {
  return Fail(err, TSR_ERR_UNIMPLEMENTED, "npu-reference runs compiled subgraphs only");
}

// ---- claim ---------------------------------------------------------------------------------

// Bytes a tensor takes in device memory: f16 for floats (the host converts), as-is otherwise.
uint64_t DeviceBytes(const tsr_tensor& t) {
  int64_t n = 1;
  for (int i = 0; i < t.ndim; ++i) n *= t.ne[i];
  if (t.dtype == TSR_DTYPE_Q8_B32)
    return static_cast<uint64_t>(n / TSR_QBLOCK * TSR_BLOCK_Q8_BYTES);
  if (t.dtype == TSR_DTYPE_I32 || t.dtype == TSR_DTYPE_F32 || t.dtype == TSR_DTYPE_BF16 ||
      t.dtype == TSR_DTYPE_F16)
    return static_cast<uint64_t>(n) * (t.dtype == TSR_DTYPE_I32 ? 4 : 2);
  return static_cast<uint64_t>(n) * 8;
}

// Is input k (output: k == -1) of node n a KV pool (the cache of KV_WRITE, the caches of
// PAGED_ATTENTION)?
bool IsKvPool(const tsr_node& n, int k) {
  return (n.op == TSR_OP_KV_WRITE && k <= 0) ||
         (n.op == TSR_OP_PAGED_ATTENTION && (k == 1 || k == 2));
}

// Groups = runs of consecutive runnable nodes. Other nodes whose weights and activations would
// push the graph past 3/4 of the memory cap are left to the host. KV pools are budgeted apart: the
// host allocates them once (all layers') before any weight, so they may take the other quarter;
// if they do not fit it, KV_WRITE / PAGED_ATTENTION are left to the host (and so is the pool:
// the host asks this claim before placing it).
tsr_status Claim(tsr_device* dev, const tsr_graph_view* g, tsr_claim_result* r, tsr_error* err) {
  if (g == nullptr || r == nullptr || r->group_of_node == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "npu-reference: claim: NULL argument");
  std::vector<bool> produced(static_cast<size_t>(g->n_tensors), false);
  for (int32_t i = 0; i < g->n_nodes; ++i) produced[g->nodes[i].output] = true;
  std::vector<bool> counted(static_cast<size_t>(g->n_tensors), false);
  const uint64_t budget = dev->ctx->memory_cap / 4 * 3;
  uint64_t kv_bytes = 0;
  for (int32_t i = 0; i < g->n_nodes; ++i)
    for (int k = -1; k < g->nodes[i].n_inputs; ++k) {
      const int32_t t = k < 0 ? g->nodes[i].output : g->nodes[i].inputs[k];
      if (t < 0 || !IsKvPool(g->nodes[i], k) || produced[t] || counted[t]) continue;
      counted[t] = true;
      kv_bytes += DeviceBytes(g->tensors[t]);
    }
  const bool kv_fits = kv_bytes <= dev->ctx->memory_cap / 4;
  uint64_t used = 0;
  int32_t group = -1, over_cap = 0;
  bool prev = false;
  for (int32_t i = 0; i < g->n_nodes; ++i) {
    const tsr_node& n = g->nodes[i];
    bool take = CanRun(*g, n);
    const bool kv_node = n.op == TSR_OP_KV_WRITE || n.op == TSR_OP_PAGED_ATTENTION;
    if (take && kv_node && !kv_fits) {
      take = false;
      ++over_cap;
    } else if (take) {
      uint64_t more = counted[n.output] || IsKvPool(n, -1) ? 0 : DeviceBytes(g->tensors[n.output]);
      for (int k = 0; k < n.n_inputs; ++k) {
        const int32_t t = n.inputs[k];
        if (t >= 0 && !produced[t] && !counted[t] && !IsKvPool(n, k))
          more += DeviceBytes(g->tensors[t]);
      }
      // KV nodes are never refused for the activation budget: the host placed the pool here
      // on this claim's word (same answer for every graph: CanRun and the KV budget only), and
      // their own activations are a few rows.
      if (used + more > budget && !kv_node) {
        take = false;
        ++over_cap;
      } else {
        used += more;
        counted[n.output] = true;
        for (int k = 0; k < n.n_inputs; ++k)
          if (n.inputs[k] >= 0) counted[n.inputs[k]] = true;
      }
    }
    if (take && !prev) ++group;
    r->group_of_node[i] = take ? group : -1;
    prev = take;
  }
  r->n_groups = group + 1;
  if (over_cap > 0)
    backend::Log(TSR_LOG_WARN, "npu-reference: " + std::to_string(over_cap) +
                                   " runnable nodes exceed the device memory cap of " +
                                   std::to_string(dev->ctx->memory_cap >> 20) +
                                   " MiB and fall back to the host");
  return TSR_OK;
}

// ---- compile / blobs -----------------------------------------------------------------------

std::string BlobKey(const void* bytes, size_t size) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64 over compat string + GraphProto bytes
  auto mix = [&](const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  };
  mix(reinterpret_cast<const uint8_t*>(kCompat), sizeof(kCompat) - 1);
  mix(static_cast<const uint8_t*>(bytes), size);
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

// Checks a program against the weights it is given and reserves its scratch memory.
tsr_status MakeExecutable(tsr_device* dev, Program program, tsr_buffer* const* weights,
                          int32_t n_weights, tsr_executable** out, tsr_error* err) {
  if (n_weights != program.n_weights || (n_weights > 0 && weights == nullptr))
    return Fail(err, TSR_ERR_INVALID_ARGUMENT,
                "npu-reference: the program names " + std::to_string(program.n_weights) +
                    " weights, " + std::to_string(n_weights) + " given");
  for (const Slot& s : program.slots) {
    const bool ok =
        (s.kind == SlotKind::kInput && s.index >= 0 && s.index < program.n_inputs) ||
        (s.kind == SlotKind::kOutput && s.index >= 0 && s.index < program.n_outputs) ||
        (s.kind == SlotKind::kWeight && s.index >= 0 && s.index < n_weights &&
         weights[s.index] != nullptr && s.offset + s.Bytes() <= weights[s.index]->size) ||
        (s.kind == SlotKind::kScratch && s.offset + s.Bytes() <= program.scratch_bytes);
    if (!ok)
      return Fail(err, TSR_ERR_INVALID_ARGUMENT,
                  "npu-reference: tensor " + s.name + " does not fit its buffer");
  }
  auto exe = std::make_unique<tsr_executable>();
  exe->dev = dev;
  exe->weights.assign(weights, weights + n_weights);
  if (tsr_status s = Allocate(dev, program.scratch_bytes, &exe->scratch, err); s != TSR_OK)
    return s;
  exe->program = std::move(program);
  *out = exe.release();
  return TSR_OK;
}

tsr_status Compile(tsr_device* dev, const void* bytes, size_t size, tsr_buffer* const* weights,
                   int32_t n_weights, tsr_executable** out, tsr_error* err) {
  tsr_plugin_ctx* ctx = dev->ctx;
  const std::string key = BlobKey(bytes, size);
  const std::filesystem::path path = ctx->cache_dir.empty()
                                         ? std::filesystem::path()
                                         : std::filesystem::path(ctx->cache_dir) / (key + ".npub");
  Program program;
  std::string error;
  bool loaded = false;
  if (!path.empty()) {
    std::ifstream in(path, std::ios::binary);
    if (in) {
      const std::string blob((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
      loaded = DeserializeProgram(blob.data(), blob.size(), kCompat, &program, &error) == TSR_OK;
      if (!loaded)
        backend::Log(TSR_LOG_WARN,
                     "npu-reference: ignoring cached blob " + path.string() + ": " + error);
    }
  }
  if (!loaded) {
    if (tsr_status s = CompileGraph(bytes, size, &program, &error); s != TSR_OK)
      return Fail(err, s, "npu-reference: compile: " + error);
  }
  if (tsr_status s = MakeExecutable(dev, std::move(program), weights, n_weights, out, err);
      s != TSR_OK)
    return s;
  std::lock_guard<std::mutex> lock(ctx->stats_mu);
  if (loaded) {
    ++ctx->cache_hits;
    backend::Log(TSR_LOG_DEBUG, "npu-reference: blob " + key + " loaded from " + path.string());
  } else {
    ++ctx->compiled;
    backend::Log(TSR_LOG_DEBUG, "npu-reference: compiled subgraph " + key + " (" +
                                    std::to_string((*out)->program.code.size()) + " instructions)");
    if (!path.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(path.parent_path(), ec);
      const std::string blob = SerializeProgram((*out)->program, kCompat);
      const std::string tmp = path.string() + ".tmp";
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f.write(blob.data(), static_cast<std::streamsize>(blob.size()));
      f.close();
      if (f) std::filesystem::rename(tmp, path, ec);
      if (f && !ec) ++ctx->cache_writes;
    }
  }
  WriteStats(ctx);
  return TSR_OK;
}

// One run tensor: our buffer, the program's dtype and element count, contiguous.
tsr_status Bind(const tsr_tensor& t, const Slot& s, uint8_t** data, tsr_error* err) {
  bool ok = t.buffer != nullptr && t.dtype == s.dtype && t.ndim >= 1;
  int64_t n = 1,
          stride = ok ? static_cast<int64_t>(s.Bytes() / std::max<int64_t>(s.Numel(), 1)) : 0;
  for (int i = t.ndim - 1; ok && i >= 0; --i) {
    ok = t.nb[i] == stride * n;
    n *= t.ne[i];
  }
  if (!ok || n != s.Numel())
    return Fail(err, TSR_ERR_INVALID_ARGUMENT,
                "npu-reference: run: tensor for " + s.name +
                    " is not a contiguous tensor of the compiled dtype and shape (static shapes: "
                    "the host pads to the compiled bucket)");
  if (tsr_status st = backend::CheckRange(t.buffer, t.offset, s.Bytes(), s.name.c_str(), err);
      st != TSR_OK)
    return st;
  *data = t.buffer->data.get() + t.offset;
  return TSR_OK;
}

tsr_status RunExecutable(tsr_executable* exe, const tsr_tensor* inputs, int32_t n_inputs,
                         const tsr_tensor* outputs, int32_t n_outputs, tsr_error* err) {
  const Program& p = exe->program;
  if (n_inputs != p.n_inputs || n_outputs != p.n_outputs)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "npu-reference: run: input/output count mismatch");
  std::vector<uint8_t*> in(static_cast<size_t>(n_inputs)), out(static_cast<size_t>(n_outputs));
  std::vector<uint8_t*> w;
  for (tsr_buffer* b : exe->weights) w.push_back(b->data.get());
  for (const Slot& s : p.slots) {
    tsr_status st = TSR_OK;
    if (s.kind == SlotKind::kInput) st = Bind(inputs[s.index], s, &in[s.index], err);
    if (s.kind == SlotKind::kOutput) st = Bind(outputs[s.index], s, &out[s.index], err);
    if (st != TSR_OK) return st;
  }
  std::string error;
  if (tsr_status st =
          RunProgram(p, in.data(), out.data(), w.data(), exe->scratch->data.get(), &error);
      st != TSR_OK)
    return Fail(err, st, "npu-reference: run: " + error);
  tsr_plugin_ctx* ctx = exe->dev->ctx;
  for (const Instr& ins : p.code)
    if (ins.op >= 0 && ins.op < TSR_OP_COUNT) ctx->executed[ins.op].fetch_add(1);
  if (!ctx->stats_file.empty()) {  // refreshed at most once a second, and at the end
    std::lock_guard<std::mutex> lock(ctx->stats_mu);
    if (std::chrono::steady_clock::now() - ctx->stats_written > std::chrono::seconds(1))
      WriteStats(ctx);
  }
  return TSR_OK;
}

void ExecutableFree(tsr_executable* exe) {
  if (exe == nullptr) return;
  BufferFree(exe->scratch);
  delete exe;
}

const char* CompatString(tsr_device*) {
  return kCompat;
}

tsr_status SerializeExecutable(tsr_executable* exe, void** out_blob, size_t* out_size,
                               tsr_error* err) {
  const std::string blob = SerializeProgram(exe->program, kCompat);
  void* mem = std::malloc(std::max<size_t>(blob.size(), 1));
  if (mem == nullptr) return Fail(err, TSR_ERR_OUT_OF_MEMORY, "npu-reference: blob allocation");
  std::memcpy(mem, blob.data(), blob.size());
  *out_blob = mem;
  *out_size = blob.size();
  return TSR_OK;
}

void FreeBlob(void* blob) {
  std::free(blob);
}

tsr_status DeserializeExecutable(tsr_device* dev, const void* blob, size_t size,
                                 tsr_buffer* const* weights, int32_t n_weights,
                                 tsr_executable** out, tsr_error* err) {
  Program program;
  std::string error;
  if (tsr_status s = DeserializeProgram(blob, size, kCompat, &program, &error); s != TSR_OK)
    return Fail(err, s, "npu-reference: " + error);
  if (tsr_status s = MakeExecutable(dev, std::move(program), weights, n_weights, out, err);
      s != TSR_OK)
    return s;
  std::lock_guard<std::mutex> lock(dev->ctx->stats_mu);
  ++dev->ctx->cache_hits;
  WriteStats(dev->ctx);
  return TSR_OK;
}

tsr_plugin_api MakeApi() {
  tsr_plugin_api api = backend::NewApiTable(
      "npu-reference", "Tessera reference NPU (compile style, simulated)", kVersion);
  TESSERA_BACKEND_FILL_DEVICE_API(api, Guarded);
  api.claim = Guarded<Claim>::Call;
  api.compile = Guarded<Compile>::Call;
  api.run_executable = Guarded<RunExecutable>::Call;
  api.executable_free = ExecutableFree;
  api.compat_string = CompatString;
  api.serialize_executable = Guarded<SerializeExecutable>::Call;
  api.free_blob = FreeBlob;
  api.deserialize_executable = Guarded<DeserializeExecutable>::Call;
  return api;
}

const tsr_plugin_api kApi = MakeApi();

}  // namespace
}  // namespace tessera::npu

// Runs anywhere: the simulator is portable C++.
TESSERA_BACKEND_PLUGIN_ENTRY_POINTS(tessera::npu::kBackend, tessera::npu::kApi, 10)
