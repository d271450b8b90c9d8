// A graph node as backend plugins see it (NodeArgs), the ABI's op list, and the helpers that read
// nodes and tensors out of a tsr_graph_view safely. Errors are returned as strings (empty = OK):
// this library cannot use the core's Status, and every failure here is an invalid argument.
#ifndef TESSERA_BACKEND_NODE_H_
#define TESSERA_BACKEND_NODE_H_

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tessera/backend/tensor.h"
#include "tessera/plugin_api.h"

namespace tessera::backend {

// X(op, Family) for every op of the ABI: Family names the validator (ValidateNode) and the
// runner (Run<Family> in each plugin) that handle it.
// clang-format off
#define TESSERA_BACKEND_OPS(X)       \
  X(MATMUL, Matmul)                  \
  X(ADD, Binary)                     \
  X(SUB, Binary)                     \
  X(MUL, Binary)                     \
  X(DIV, Binary)                     \
  X(SCALE, Unary)                    \
  X(SILU, Unary)                     \
  X(GELU, Unary)                     \
  X(GELU_TANH, Unary)                \
  X(RELU, Unary)                     \
  X(TANH, Unary)                     \
  X(SIGMOID, Unary)                  \
  X(SOFTCAP, Unary)                  \
  X(SWIGLU, Gated)                   \
  X(GEGLU, Gated)                    \
  X(RMS_NORM, Norm)                  \
  X(LAYER_NORM, Norm)                \
  X(ROPE, Rope)                      \
  X(SOFTMAX, Softmax)                \
  X(ATTENTION, Attention)            \
  X(KV_WRITE, KvWrite)               \
  X(PAGED_ATTENTION, PagedAttention) \
  X(GET_ROWS, GetRows)               \
  X(COPY, Copy)                      \
  X(CONCAT, Concat)                  \
  X(CONV1D, Conv)                    \
  X(CONV2D, Conv)                    \
  X(SUM, Reduce)                     \
  X(MEAN, Reduce)                    \
  X(MAX, Reduce)

// X(op, Family) for the optional ops: ops added after ABI 1.0 that a plugin runs only if it says
// so. TESSERA_BACKEND_OPS lists what every plugin must run (each defines a runner per family);
// an optional op is validated by ValidateNode like the others but has a runner only in plugins
// that pass it to TESSERA_BACKEND_DEFINE_FIND_RUNNER_WITH, so elsewhere FindRunner returns
// nullptr and supports_op declines it (the host places the node on another device). Each entry
// has its own one-op list below for a plugin to pass.
#define TESSERA_BACKEND_OPTIONAL_OPS(X) \
  X(ARGMAX, Argmax)
#define TESSERA_BACKEND_OP_ARGMAX(X) X(ARGMAX, Argmax)

// X(Family) once for every family of TESSERA_BACKEND_OPS, e.g. to declare the runners.
#define TESSERA_BACKEND_OP_FAMILIES(X) \
  X(Matmul)                            \
  X(Binary)                            \
  X(Unary)                             \
  X(Gated)                             \
  X(Norm)                              \
  X(Softmax)                           \
  X(Reduce)                            \
  X(Rope)                              \
  X(Attention)                         \
  X(PagedAttention)                    \
  X(KvWrite)                           \
  X(GetRows)                           \
  X(Copy)                              \
  X(Concat)                            \
  X(Conv)
// clang-format on

// Defines `FnType FindRunner(int op)` in the enclosing namespace: the plugin's Run<Family> for
// every op of TESSERA_BACKEND_OPS and of OPTIONAL_OPS, an X-list of the optional ops it implements
// (e.g. TESSERA_BACKEND_OP_ARGMAX, or TESSERA_BACKEND_NO_OPTIONAL_OPS); nullptr for TSR_OP_NONE,
// unknown values and the optional ops left out.
#define TESSERA_BACKEND_NO_OPTIONAL_OPS(X)
#define TESSERA_BACKEND_RUNNER_ENTRY_(op, family) t[TSR_OP_##op] = Run##family;
#define TESSERA_BACKEND_DEFINE_FIND_RUNNER_WITH(FnType, OPTIONAL_OPS)        \
  FnType FindRunner(int op) {                                                \
    static constexpr std::array<FnType, TSR_OP_COUNT> kRunners = [] {        \
      std::array<FnType, TSR_OP_COUNT> t{};                                  \
      TESSERA_BACKEND_OPS(TESSERA_BACKEND_RUNNER_ENTRY_)                     \
      OPTIONAL_OPS(TESSERA_BACKEND_RUNNER_ENTRY_)                            \
      return t;                                                              \
    }();                                                                     \
    return op <= TSR_OP_NONE || op >= TSR_OP_COUNT ? nullptr : kRunners[op]; \
  }
// FindRunner of a plugin that runs no optional op.
#define TESSERA_BACKEND_DEFINE_FIND_RUNNER(FnType) \
  TESSERA_BACKEND_DEFINE_FIND_RUNNER_WITH(FnType, TESSERA_BACKEND_NO_OPTIONAL_OPS)

// "MATMUL", ...; "NONE" for TSR_OP_NONE and "UNKNOWN_OP" outside the enum.
const char* OpName(int op);

// One node with its tensors converted. Plugins derive their runner arguments from it.
struct NodeArgs {
  const tsr_node* node = nullptr;
  int n_in = 0;                              // node->n_inputs, within [0, TSR_MAX_INPUTS]
  const TensorRef* in[TSR_MAX_INPUTS] = {};  // nullptr where the input is absent
  const TensorRef* out = nullptr;

  const TensorRef* input(int i) const { return i < n_in ? in[i] : nullptr; }
  int64_t ip(int i) const { return node->iparams[i]; }
  float fp(int i) const { return node->fparams[i]; }
};

// Element i of an ABI struct array whose stride is element 0's struct_size (an older host
// compiled a shorter struct). Missing trailing fields read as zero.
template <typename T>
T ReadAbiStruct(const T* array, int32_t i) {
  const uint32_t stride = array[0].struct_size == 0 ? sizeof(T) : array[0].struct_size;
  const auto* p = reinterpret_cast<const uint8_t*>(array) + static_cast<size_t>(stride) * i;
  T v{};
  std::memcpy(&v, p, std::min<size_t>(stride, sizeof(T)));
  return v;
}

// Bytes of an ABI struct array of n elements (stride = element 0's struct_size, as
// ReadAbiStruct reads it); 0 for an empty or absent array. The CUDA graphs' and the Vulkan
// replay's view fast paths compare a view's node and tensor arrays byte for byte with these.
template <typename T>
size_t AbiArrayBytes(const T* array, int32_t n) {
  if (array == nullptr || n <= 0) return 0;
  const uint32_t stride = array[0].struct_size == 0 ? sizeof(T) : array[0].struct_size;
  return static_cast<size_t>(stride) * static_cast<size_t>(n);
}

// Whether `v` holds exactly the `bytes` bytes at `p`.
inline bool SameBytes(const std::vector<uint8_t>& v, const void* p, size_t bytes) {
  return v.size() == bytes && (bytes == 0 || std::memcmp(v.data(), p, bytes) == 0);
}

// An enum field as the host wrote it. A C host may store any int there; loading an out-of-range
// value through the C++ enum type would be undefined behaviour, so read the raw bytes.
template <typename E>
int32_t RawEnum(const E& field) {
  static_assert(sizeof(E) == sizeof(int32_t));
  int32_t v;
  std::memcpy(&v, &field, sizeof(v));
  return v;
}

// Reads tensor `index` of the view into `out` (shape, strides, dtype, name; not data) and checks
// it is well-formed. `raw` receives the ABI struct (for its buffer and offset).
std::string LoadTensorShape(const tsr_graph_view& g, int32_t index, TensorRef* out,
                            tsr_tensor* raw);

// Whether a tensor of `extent` bytes at `offset` fits a buffer of `buffer_size` bytes.
std::string CheckTensorRange(int32_t index, const TensorRef& t, uint64_t offset,
                             uint64_t buffer_size);

// Converts tensor `index`; `with_data` also resolves and range-checks its buffer, which must
// belong to `dev`. Buffer is the plugin's tsr_buffer (fields dev, data, size); a template so that
// each plugin supplies its own definition of the opaque handle.
template <typename Buffer, typename Device>
std::string LoadTensor(const Device* dev, const tsr_graph_view& g, int32_t index, bool with_data,
                       TensorRef* out) {
  tsr_tensor t;
  if (std::string e = LoadTensorShape(g, index, out, &t); !e.empty()) return e;
  if (!with_data || out->Extent() == 0) return {};  // empty: never dereferenced
  const Buffer* b = t.buffer;
  if (b == nullptr) return "tensor " + std::to_string(index) + " is not materialized";
  if (b->dev != dev) return "tensor " + std::to_string(index) + " lives in another device's buffer";
  if (std::string e = CheckTensorRange(index, *out, t.offset, b->size); !e.empty()) return e;
  out->data = b->data + t.offset;
  return {};
}

// Everything a node touches, converted; Args derives from NodeArgs.
template <typename Args>
struct LoadedNode {
  tsr_node node{};
  TensorRef in[TSR_MAX_INPUTS];
  TensorRef out;
  Args args;
};

// Reads node `node_index` and its tensors (see LoadTensor) into `ln`.
template <typename Buffer, typename Device, typename Args>
std::string LoadNode(const Device* dev, const tsr_graph_view& g, int32_t node_index, bool with_data,
                     LoadedNode<Args>* ln) {
  if (g.nodes == nullptr || node_index < 0 || node_index >= g.n_nodes)
    return "node index " + std::to_string(node_index) + " out of range";
  ln->node = ReadAbiStruct(g.nodes, node_index);
  const tsr_node& n = ln->node;
  if (n.n_inputs < 0 || n.n_inputs > TSR_MAX_INPUTS)
    return "invalid n_inputs " + std::to_string(n.n_inputs);
  ln->args.node = &ln->node;
  ln->args.n_in = n.n_inputs;
  for (int i = 0; i < n.n_inputs; ++i) {
    if (n.inputs[i] < 0) continue;  // optional input absent
    std::string e = LoadTensor<Buffer>(dev, g, n.inputs[i], with_data, &ln->in[i]);
    if (!e.empty()) return e;
    ln->args.in[i] = &ln->in[i];
  }
  if (std::string e = LoadTensor<Buffer>(dev, g, n.output, with_data, &ln->out); !e.empty())
    return e;
  ln->args.out = &ln->out;
  return {};
}

}  // namespace tessera::backend

#endif  // TESSERA_BACKEND_NODE_H_
