// Serializes a group of nodes as a tessera.GraphProto (plugins-api/graph.proto) for a
// compile-style plugin. Internal to the core.
#ifndef TESSERA_CORE_SRC_GRAPH_SERIALIZE_H_
#define TESSERA_CORE_SRC_GRAPH_SERIALIZE_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tessera/core/ir.h"

namespace tessera {

struct SerializedSubgraph {
  std::string proto;              // GraphProto wire bytes
  std::vector<TensorId> inputs;   // runtime inputs, in GraphProto.inputs order
  std::vector<TensorId> outputs;  // in GraphProto.outputs order
  std::vector<TensorId> weights;  // in GraphProto.weights order (buffer_index = position)
};

struct SerializeOptions {
  // The dtype each tensor has on the target device (f16 for f32 on a TSR_CAP_NO_F32 device);
  // empty = the graph's own dtypes.
  std::function<DType(TensorId)> storage_dtype;
  // Shape buckets: dim 0 of tensor t (not a weight) is serialized as bucket_rows(t) rows when
  // that is > 0 (see BucketRows); empty = exact shapes.
  std::function<int64_t(TensorId)> bucket_rows;
  // Likewise for dim 1 (a block table's width); empty = exact.
  std::function<int64_t(TensorId)> bucket_cols;
};

// Tensors are named "t<id>" so names are unique. Inputs: read by the group but produced outside
// it; outputs: produced by the group and read outside it, or graph outputs. A contiguous view read
// by the group is an input of its own shape when its bytes come from outside the group, and a
// COPY node (a reshape) from its root when the group produces them.
StatusOr<SerializedSubgraph> SerializeSubgraph(const Graph& graph,
                                               const std::vector<int32_t>& nodes,
                                               const SerializeOptions& options = {});

// Static-shape devices get shape buckets: a group whose nodes all work row by row along dim 0
// (MATMUL with a 2-D weight, norms, RoPE, elementwise ops, activations, ...) can run on rows padded
// up to a bucket (the padding rows compute garbage that no real row reads). KV_WRITE and
// PAGED_ATTENTION are row-wise too: their token rows (q, rows, slots) share the token bucket,
// their per-sequence inputs (block_table and kv_lens [S], cu_q [S+1]) pad S to its own bucket,
// and the KV pools (states) keep their shape. The host fills the padding of such index inputs so
// it is inert (Executable: slots -1, the rest repeat their last real entry, i.e. empty
// sequences). Returns the padded dim 0 of every non-weight tensor (and view) the group touches,
// or an empty map when the group is not row-wise or its dims disagree. `cols`, if given, gets
// the padded dim 1 (next power of two) of PAGED_ATTENTION's block tables: their extra columns
// are never read (kv_lens bounds them) and the host fills them with -1.
std::map<TensorId, int64_t> BucketRows(const Graph& graph, const std::vector<int32_t>& nodes,
                                       std::map<TensorId, int64_t>* cols = nullptr);
// The bucket `rows` is padded to: the next power of two.
int64_t ShapeBucket(int64_t rows);

}  // namespace tessera

#endif  // TESSERA_CORE_SRC_GRAPH_SERIALIZE_H_
