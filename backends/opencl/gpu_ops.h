// The op layer both portable-kernel plugins share (OpenCL here, Level Zero in
// backends/level-zero): validation, and runners that turn a validated node into the parameter
// blocks of kernels/params.h and enqueue kernels of kernels/tessera_kernels.cl through a Queue.
// Nothing here names an OpenCL or Level Zero type: each plugin implements Queue over its API.
//
// Tensors live in device buffers the host cannot address, so a TensorRef's `data` holds a FAKE
// address: kFakeBase + the tensor's byte offset in its buffer (see FakeData/Offset), and OpArgs
// keeps which buffer each tensor lives in. Sub-views computed by the shared helpers (CONCAT's
// parts) keep working because they only add byte offsets to `data`.
#ifndef TESSERA_BACKENDS_OPENCL_GPU_OPS_H_
#define TESSERA_BACKENDS_OPENCL_GPU_OPS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "backends/common/status_abi.h"
#include "backends/opencl/kernel_source.h"
#include "tessera/backend/node.h"
#include "tessera/backend/tensor.h"
#include "tessera/core/status.h"
#include "tessera/plugin_api.h"

namespace tessera::gpu {

using backend::TensorRef;

constexpr uintptr_t kFakeBase = 4096;  // nonzero: a loaded tensor's data is never null
inline uint8_t* FakeData(uint64_t offset) {
  return reinterpret_cast<uint8_t*>(kFakeBase + offset);
}
// Byte offset of `t` in its buffer.
inline int64_t Offset(const TensorRef& t) {
  return static_cast<int64_t>(reinterpret_cast<uintptr_t>(t.data) - kFakeBase);
}

// One argument of a kernel launch: a buffer (the plugin's handle; null = an unused pointer
// argument, which the plugin binds to a small dummy buffer) or a value passed by copy.
struct KernelArg {
  bool is_buffer = false;
  const void* buffer = nullptr;
  const void* value = nullptr;
  size_t size = 0;
};
inline KernelArg BufArg(const void* buffer) {
  return {true, buffer, nullptr, 0};
}
template <typename T>
KernelArg ValArg(const T& v) {
  return {false, nullptr, &v, sizeof(T)};
}

// What the runners need of a device: an in-order queue. Not thread-safe (the ABI serializes
// calls on a device).
class Queue {
 public:
  virtual ~Queue() = default;
  // Enqueues `k` over `items` work items (1-D; the plugin picks the local size and rounds up, the
  // kernels guard the tail). items > 0.
  virtual Status Launch(Kernel k, int64_t items, const KernelArg* args, int n_args) = 0;
  // Buffer-to-buffer byte copy, ordered with launches.
  virtual Status Copy(const void* src, uint64_t src_off, const void* dst, uint64_t dst_off,
                      uint64_t size) = 0;
  // The device error word (an int buffer kernels atomic_or TSR_K_ERR_* bits into).
  virtual const void* ErrorWord() = 0;
};

// A node with its tensors converted plus where they live.
struct OpArgs : backend::NodeArgs {
  const void* in_buf[TSR_MAX_INPUTS] = {};  // plugin buffer handle of each input
  const void* out_buf = nullptr;
  Queue* q = nullptr;  // null while only validating
};

struct LoadedNode {
  tsr_node node{};
  TensorRef in[TSR_MAX_INPUTS];
  TensorRef out;
  OpArgs args;
};

// Reads tensor `index` (shape only, or also its buffer: then the buffer must belong to `dev` and
// hold the tensor). Buffer is the plugin's tsr_buffer (fields dev, size).
template <typename Buffer, typename Device>
std::string LoadTensor(const Device* dev, const tsr_graph_view& g, int32_t index, bool with_data,
                       TensorRef* out, const void** buf) {
  tsr_tensor t;
  if (std::string e = backend::LoadTensorShape(g, index, out, &t); !e.empty()) return e;
  if (!with_data) return {};
  const Buffer* b = t.buffer;
  if (b == nullptr) {
    if (out->Extent() == 0) return {};
    return "tensor " + std::to_string(index) + " is not materialized";
  }
  if (b->dev != dev) return "tensor " + std::to_string(index) + " lives in another device's buffer";
  if (out->Extent() > 0) {
    if (std::string e = backend::CheckTensorRange(index, *out, t.offset, b->size); !e.empty())
      return e;
  }
  out->data = FakeData(t.offset);
  *buf = b;
  return {};
}

template <typename Buffer, typename Device>
std::string LoadNode(const Device* dev, const tsr_graph_view& g, int32_t node_index, bool with_data,
                     LoadedNode* ln) {
  if (g.nodes == nullptr || node_index < 0 || node_index >= g.n_nodes)
    return "node index " + std::to_string(node_index) + " out of range";
  ln->node = backend::ReadAbiStruct(g.nodes, node_index);
  const tsr_node& n = ln->node;
  if (n.n_inputs < 0 || n.n_inputs > TSR_MAX_INPUTS)
    return "invalid n_inputs " + std::to_string(n.n_inputs);
  ln->args.node = &ln->node;
  ln->args.n_in = n.n_inputs;
  for (int i = 0; i < n.n_inputs; ++i) {
    if (n.inputs[i] < 0) continue;  // optional input absent
    std::string e =
        LoadTensor<Buffer>(dev, g, n.inputs[i], with_data, &ln->in[i], &ln->args.in_buf[i]);
    if (!e.empty()) return e;
    ln->args.in[i] = &ln->in[i];
  }
  if (std::string e = LoadTensor<Buffer>(dev, g, n.output, with_data, &ln->out, &ln->args.out_buf);
      !e.empty())
    return e;
  ln->args.out = &ln->out;
  return {};
}

using OpFn = Status (*)(const OpArgs&);

// The runner of `op`: REQUIRES ValidateOp returned OK and every tensor is loaded with data.
// nullptr for TSR_OP_NONE and unknown values.
OpFn FindRunner(int op);

// OK = these kernels run the node as given: the shared ABI rules plus the kernels' own limits
// (attention head dims up to TSR_K_ATTN_MAX_HEAD_DIM, element-aligned weight rows).
Status ValidateOp(const OpArgs& a);

#define TSR_GPU_DECLARE_RUNNER(Family) Status Run##Family(const OpArgs& a);
TESSERA_BACKEND_OP_FAMILIES(TSR_GPU_DECLARE_RUNNER)
#undef TSR_GPU_DECLARE_RUNNER

// LoadNode as a Status (invalid argument), the form backend::SupportsOp takes.
template <typename Buffer, typename Device>
Status LoadNodeStatus(const Device* dev, const tsr_graph_view& g, int32_t node_index,
                      bool with_data, LoadedNode* ln) {
  std::string e = LoadNode<Buffer>(dev, g, node_index, with_data, ln);
  return e.empty() ? OkStatus() : InvalidArgument(std::move(e));
}

// Loads, validates and runs node `node_index` of `g` on `q`, the plugin's queue over dev.
template <typename Buffer, typename Device>
Status ExecuteNode(const Device* dev, Queue* q, const tsr_graph_view& g, int32_t node_index) {
  auto ln = std::make_unique<LoadedNode>();
  TSR_RETURN_IF_ERROR(LoadNodeStatus<Buffer>(dev, g, node_index, /*with_data=*/true, ln.get()));
  const OpFn run = FindRunner(backend::RawEnum(ln->node.op));
  if (run == nullptr)
    return InvalidArgument("unknown op " + std::to_string(backend::RawEnum(ln->node.op)));
  TSR_RETURN_IF_ERROR(ValidateOp(ln->args));
  ln->args.q = q;
  return run(ln->args);
}

// Runs node_ids[0..n) of `g` in order on `q`; stops at the first failure, whose status keeps its
// code and gets "node N (OP): " before its message.
template <typename Buffer, typename Device>
Status ExecuteNodes(const Device* dev, Queue* q, const tsr_graph_view& g, const int32_t* node_ids,
                    int32_t n_node_ids) {
  for (int32_t i = 0; i < n_node_ids; ++i) {
    const Status s = ExecuteNode<Buffer>(dev, q, g, node_ids[i]);
    if (!s.ok()) return backend::NodeFailure(g, node_ids[i], s);
  }
  return OkStatus();
}

}  // namespace tessera::gpu

#endif  // TESSERA_BACKENDS_OPENCL_GPU_OPS_H_
