// Single-node execution through the plugin ABI. See harness.h.
#include "harness.h"

#include <algorithm>
#include <cstring>
#include <memory>

namespace tessera::conformance {
namespace {

constexpr uint64_t kGuardBytes = 64;
constexpr uint8_t kCanary = 0xA5;

// Frees a device buffer through the table that allocated it.
struct BufferDeleter {
  const tsr_plugin_api* api;
  void operator()(tsr_buffer* b) const { api->buffer_free(b); }
};
using BufferPtr = std::unique_ptr<tsr_buffer, BufferDeleter>;

std::string Describe(const char* what, tsr_status code, const tsr_error& err) {
  return std::string(what) + " failed with status " + std::to_string(code) + ": " + err.message;
}

// An input as the device will see it: its descriptor and the bytes of its whole buffer.
struct PlacedTensor {
  tsr_tensor desc{};
  std::vector<uint8_t> bytes;
};

// Fills desc.ne/nb for `t` in `layout`. Quantized tensors are always contiguous (ABI rule).
void SetStrides(const Tensor& t, Layout layout, tsr_tensor* desc) {
  const int n = static_cast<int>(t.ndim());
  const int64_t es = ElementBytes(t.dtype);
  for (int i = 0; i < n; ++i) desc->ne[i] = t.shape[i];
  if (n == 0) return;
  if (IsQuantized(t.dtype)) {
    desc->nb[n - 1] = 0;
    int64_t stride = RowBytes(t.dtype, t.shape[n - 1]);
    for (int i = n - 2; i >= 0; --i) {
      desc->nb[i] = stride;
      stride *= t.shape[i];
    }
    return;
  }
  if (layout == Layout::kTransposed && n >= 2) {
    // Storage is [..., ne[n-1], ne[n-2]] contiguous.
    desc->nb[n - 2] = es;
    desc->nb[n - 1] = es * t.shape[n - 2];
    int64_t stride = es * t.shape[n - 2] * t.shape[n - 1];
    for (int i = n - 3; i >= 0; --i) {
      desc->nb[i] = stride;
      stride *= t.shape[i];
    }
    return;
  }
  const int64_t pad = (layout == Layout::kPaddedRows && n >= 2) ? 3 : 0;
  desc->nb[n - 1] = es;
  int64_t stride = es * (t.shape[n - 1] + pad);
  for (int i = n - 2; i >= 0; --i) {
    desc->nb[i] = stride;
    stride *= t.shape[i];
  }
}

PlacedTensor Place(const Tensor& t, Layout layout) {
  PlacedTensor p;
  p.desc.struct_size = sizeof(tsr_tensor);
  p.desc.dtype = t.dtype;
  p.desc.ndim = static_cast<int32_t>(t.ndim());
  SetStrides(t, layout, &p.desc);
  if (IsQuantized(t.dtype) || layout == Layout::kContiguous) {
    p.bytes = t.raw;
    return p;
  }
  const int64_t es = ElementBytes(t.dtype);
  int64_t extent = es;  // one past the last byte any element occupies
  for (int i = 0; i < p.desc.ndim; ++i) extent += (t.shape[i] - 1) * p.desc.nb[i];
  p.bytes.assign(static_cast<size_t>(std::max<int64_t>(extent, 0)), 0xFF);
  for (int64_t flat = 0; flat < t.numel(); ++flat) {
    int64_t rest = flat, offset = 0;
    for (int i = p.desc.ndim - 1; i >= 0; --i) {
      offset += (rest % t.shape[i]) * p.desc.nb[i];
      rest /= t.shape[i];
    }
    std::memcpy(p.bytes.data() + offset, t.raw.data() + flat * es, static_cast<size_t>(es));
  }
  return p;
}

int64_t ContiguousBytes(tsr_dtype dtype, const std::vector<int64_t>& shape) {
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
  return shape.empty() ? ElementBytes(dtype) : rows * RowBytes(dtype, shape.back());
}

// Builds the descriptors: inputs first (in node order), then the output (unless aliased).
struct BuiltGraph {
  std::vector<PlacedTensor> placed;  // one per present input
  std::vector<tsr_tensor> tensors;
  tsr_node node{};
  tsr_graph_view view{};
};

void BuildGraph(const NodeSpec& spec, BuiltGraph* g) {
  g->node.struct_size = sizeof(tsr_node);
  g->node.op = spec.op;
  g->node.n_inputs = static_cast<int32_t>(spec.inputs.size());
  std::copy_n(spec.iparams, TSR_MAX_PARAMS, g->node.iparams);
  std::copy_n(spec.fparams, TSR_MAX_PARAMS, g->node.fparams);
  for (size_t i = 0; i < spec.inputs.size(); ++i) {
    g->node.inputs[i] = -1;
    if (!spec.inputs[i].tensor) continue;
    g->node.inputs[i] = static_cast<int32_t>(g->placed.size());
    g->placed.push_back(Place(*spec.inputs[i].tensor, spec.inputs[i].layout));
  }
  for (const PlacedTensor& p : g->placed) g->tensors.push_back(p.desc);
  tsr_tensor out{};
  if (spec.out_aliases_input >= 0) {
    out = g->tensors[g->node.inputs[spec.out_aliases_input]];
  } else {
    Tensor shape_only;
    shape_only.dtype = spec.out_dtype;
    shape_only.shape = spec.out_shape;
    out.struct_size = sizeof(tsr_tensor);
    out.dtype = spec.out_dtype;
    out.ndim = static_cast<int32_t>(spec.out_shape.size());
    SetStrides(shape_only, Layout::kContiguous, &out);
  }
  out.name = "out";
  g->tensors.push_back(out);
  g->node.output = static_cast<int32_t>(g->tensors.size() - 1);
  g->view.struct_size = sizeof(tsr_graph_view);
  g->view.n_tensors = static_cast<int32_t>(g->tensors.size());
  g->view.tensors = g->tensors.data();
  g->view.n_nodes = 1;
  g->view.nodes = &g->node;
}

// Owns the device buffers of one run and frees them (RAII) when the run ends.
class DeviceBuffers {
 public:
  explicit DeviceBuffers(const ConformanceTarget& target) : target_(target) {}

  // Allocates a buffer of bytes.size() (at least 1) and uploads `bytes` synchronously. Returns
  // "" on success, else why.
  std::string AllocAndUpload(const std::vector<uint8_t>& bytes, tsr_buffer** out) {
    const tsr_plugin_api& api = *target_.api;
    tsr_error err{sizeof(tsr_error), TSR_OK, {}};
    tsr_buffer* b = nullptr;
    tsr_status st = api.buffer_alloc(target_.dev, 0, std::max<size_t>(bytes.size(), 1), &b, &err);
    if (st != TSR_OK) return Describe("buffer_alloc", st, err);
    buffers_.emplace_back(b, BufferDeleter{&api});
    st = api.buffer_upload(b, 0, bytes.data(), bytes.size(), nullptr, &err);
    if (st != TSR_OK) return Describe("buffer_upload", st, err);
    *out = b;
    return "";
  }

 private:
  const ConformanceTarget& target_;
  std::vector<BufferPtr> buffers_;
};

RunResult Error(std::string message) {
  RunResult r;
  r.kind = RunResult::Kind::kError;
  r.message = std::move(message);
  return r;
}

}  // namespace

const char* LayoutName(Layout layout) {
  switch (layout) {
    case Layout::kContiguous: return "contiguous";
    case Layout::kPaddedRows: return "padded_rows";
    case Layout::kTransposed: return "transposed";
  }
  return "?";
}

RunResult RunNode(const ConformanceTarget& target, const NodeSpec& spec) {
  const tsr_plugin_api& api = *target.api;
  BuiltGraph g;
  BuildGraph(spec, &g);
  tsr_error err{sizeof(tsr_error), TSR_OK, {}};

  // supports_op sees descriptors only: buffers are still NULL here, as the ABI allows.
  tsr_bool supported = 0;
  tsr_status st = api.supports_op(target.dev, &g.view, 0, &supported, &err);
  if (st != TSR_OK || !supported) {
    RunResult r;
    r.kind = RunResult::Kind::kUnsupported;
    r.message = st != TSR_OK ? Describe("supports_op", st, err) : "supports_op answered false";
    if (st == TSR_OK && err.message[0]) r.message += std::string(": ") + err.message;
    return r;
  }
  if (!api.buffer_alloc || !api.buffer_free || !api.buffer_upload || !api.buffer_download) {
    return Error("plugin lacks buffer_alloc/free/upload/download");
  }

  DeviceBuffers buffers(target);
  std::string why;
  for (size_t i = 0; i < g.placed.size(); ++i) {
    if (!(why = buffers.AllocAndUpload(g.placed[i].bytes, &g.tensors[i].buffer)).empty()) {
      return Error(why);
    }
  }
  tsr_tensor& out = g.tensors.back();
  const int64_t out_bytes = ContiguousBytes(
      out.dtype, spec.out_aliases_input >= 0 ? spec.inputs[spec.out_aliases_input].tensor->shape
                                             : spec.out_shape);
  // A non-aliased output is pre-filled with a canary and followed by kGuardBytes more of it, so
  // a kernel that writes past its output is caught rather than silently corrupting a neighbour
  // (as it would inside a planner arena).
  const uint64_t guard = spec.out_aliases_input < 0 ? kGuardBytes : 0;
  std::vector<uint8_t> host(static_cast<size_t>(out_bytes) + guard, kCanary);
  if (spec.out_aliases_input < 0) {
    if (!(why = buffers.AllocAndUpload(host, &out.buffer)).empty()) return Error(why);
  } else {
    out.buffer = g.tensors[g.node.inputs[spec.out_aliases_input]].buffer;
  }

  const int32_t node_id = 0;
  if ((st = api.execute(target.dev, &g.view, &node_id, 1, nullptr, &err)) != TSR_OK) {
    return Error(Describe("execute", st, err));
  }
  if (api.device_synchronize && (st = api.device_synchronize(target.dev, &err)) != TSR_OK) {
    return Error(Describe("device_synchronize", st, err));
  }
  st = api.buffer_download(out.buffer, out.offset, host.data(), host.size(), nullptr, &err);
  if (st != TSR_OK) return Error(Describe("buffer_download", st, err));
  if (std::any_of(host.begin() + out_bytes, host.end(), [](uint8_t b) { return b != kCanary; })) {
    return Error("execute wrote past the end of the output tensor (" + std::to_string(out_bytes) +
                 " bytes)");
  }
  host.resize(static_cast<size_t>(out_bytes));

  RunResult r;
  r.kind = RunResult::Kind::kOk;
  std::vector<int64_t> shape(out.ne, out.ne + out.ndim);
  r.output = Decode(out.dtype, std::move(shape), std::move(host));
  return r;
}

}  // namespace tessera::conformance
