// The graph IR: the contract between model builders (modalities/) and backends.
//
// A Graph is a list of typed tensors and a topologically ordered list of nodes. Each node is one
// tsr_op of the plugin ABI (plugins-api/include/tessera/plugin_api.h documents every op's
// inputs and parameters); the IR adds only what the core needs to plan and schedule: tensor
// kinds (runtime input, weight, persistent state such as a KV cache, intermediate), views
// (reshape/permute/slice without a copy), and validation.
//
// Graphs are built single-threaded and are immutable once handed to the planner.
#ifndef TESSERA_CORE_IR_H_
#define TESSERA_CORE_IR_H_

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/core/status.h"
#include "tessera/plugin_api.h"

namespace tessera {

enum class DType : int32_t {
  kF32 = TSR_DTYPE_F32,
  kF16 = TSR_DTYPE_F16,
  kBF16 = TSR_DTYPE_BF16,
  kI32 = TSR_DTYPE_I32,
  kI64 = TSR_DTYPE_I64,
  kI8 = TSR_DTYPE_I8,
  kU8 = TSR_DTYPE_U8,
  kQ8 = TSR_DTYPE_Q8_B32,  // block-quantized, see tessera/quant_formats.h
  kQ4 = TSR_DTYPE_Q4_B32,
};

const char* DTypeName(DType t);
bool IsQuantized(DType t);
// Bytes taken by `n` consecutive values along the innermost dim (n % 32 == 0 for quantized).
int64_t RowBytes(DType t, int64_t n);
// Size of one element; for quantized types, 0 (use RowBytes).
int64_t ElementSize(DType t);

const char* OpName(tsr_op op);

using TensorId = int32_t;
inline constexpr TensorId kNoTensor = -1;

enum class TensorKind : uint8_t {
  kIntermediate,  // produced by a node; lives in a planner arena
  kInput,         // provided by the caller for each run
  kWeight,        // constant, bound once (mmap'd or uploaded)
  kState,         // persistent, owned outside the graph (KV cache pools); may be written in place
  kView,          // an alias of another tensor's bytes (reshape/permute/slice)
};

using Shape = std::vector<int64_t>;

struct TensorDesc {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;                   // outermost first
  std::vector<int64_t> strides;  // bytes, one per dim (quantized: innermost is 0)
  TensorKind kind = TensorKind::kIntermediate;
  bool is_output = false;        // read back by the caller after a run
  TensorId view_of = kNoTensor;  // kView: the tensor whose bytes this aliases (never a view)
  int64_t view_offset = 0;       // kView: byte offset into view_of

  int64_t NumElements() const;
  // Bytes spanned by a contiguous tensor of this shape (what an allocation must hold).
  int64_t ContiguousBytes() const;
  bool IsContiguous() const;
};

// Row-major contiguous strides in bytes for `shape` of `dtype`.
std::vector<int64_t> ContiguousStrides(DType dtype, const Shape& shape);

struct OpParams {
  std::array<int64_t, TSR_MAX_PARAMS> i{};
  std::array<float, TSR_MAX_PARAMS> f{};
};

struct Node {
  tsr_op op = TSR_OP_NONE;
  std::vector<TensorId> inputs;  // kNoTensor for an absent optional input
  TensorId output = kNoTensor;
  OpParams params;
};

class Graph {
 public:
  // Leaf tensors. Names must be unique among leaves (weights are bound by name).
  TensorId AddInput(std::string name, DType dtype, Shape shape);
  TensorId AddWeight(std::string name, DType dtype, Shape shape);
  TensorId AddState(std::string name, DType dtype, Shape shape);

  // Appends a node whose output is a new intermediate tensor of `dtype`/`shape`.
  TensorId AddNode(tsr_op op, std::vector<TensorId> inputs, DType dtype, Shape shape,
                   OpParams params = {}, std::string name = "");
  // Appends a node that writes in place into `target` (a kState tensor, e.g. KV_WRITE): its
  // output is a view aliasing the whole of `target`.
  TensorId AddInPlaceNode(tsr_op op, std::vector<TensorId> inputs, TensorId target,
                          OpParams params = {});

  // Views: no data movement. Reshape requires a contiguous source.
  TensorId Reshape(TensorId t, Shape shape);
  TensorId Permute(TensorId t, std::vector<int> axes);
  TensorId Slice(TensorId t, int axis, int64_t start, int64_t length);

  void MarkOutput(TensorId t);

  const TensorDesc& tensor(TensorId id) const { return tensors_[id]; }
  const std::vector<TensorDesc>& tensors() const { return tensors_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  int32_t num_tensors() const { return static_cast<int32_t>(tensors_.size()); }
  int32_t num_nodes() const { return static_cast<int32_t>(nodes_.size()); }
  // The tensor that owns the bytes of `t` (itself unless it is a view).
  TensorId Root(TensorId t) const;

  // Checks ids, topological order, and each node's dtypes/shapes against its op's contract.
  // The builders above record a first error instead of failing; Validate() reports it.
  Status Validate() const;

 private:
  TensorId AddTensor(TensorDesc desc);
  TensorId AddView(TensorId src, Shape shape, std::vector<int64_t> strides, int64_t offset);
  void RecordError(std::string message);

  std::vector<TensorDesc> tensors_;
  std::vector<Node> nodes_;
  std::string first_error_;
};

// Checks one node's inputs and output against its op's documented contract.
Status ValidateNode(const Graph& graph, const Node& node);

// Fills an ABI tensor view (buffer/offset left empty) from a descriptor.
tsr_tensor ToAbiTensor(const TensorDesc& desc);
tsr_node ToAbiNode(const Node& node);

}  // namespace tessera

#endif  // TESSERA_CORE_IR_H_
