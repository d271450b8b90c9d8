// Serializes a group of nodes as a tessera.GraphProto (plugins-api/graph.proto) for a
// compile-style plugin. Internal to the core.
#ifndef TESSERA_CORE_SRC_GRAPH_SERIALIZE_H_
#define TESSERA_CORE_SRC_GRAPH_SERIALIZE_H_

#include <functional>
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
  // > 0: a shape bucket. Dim 0 of every tensor but the weights is serialized as this many rows
  // (REQUIRES: BucketableRows(graph, nodes) > 0 and bucket_rows >= it).
  int64_t bucket_rows = 0;
};

// Tensors are named "t<id>" so names are unique. Inputs: read by the group but produced outside
// it; outputs: produced by the group and read outside it, or graph outputs. A contiguous view read
// by the group is an input of its own shape when its bytes come from outside the group, and a
// COPY node (a reshape) from its root when the group produces them.
StatusOr<SerializedSubgraph> SerializeSubgraph(const Graph& graph,
                                               const std::vector<int32_t>& nodes,
                                               const SerializeOptions& options = {});

// Static-shape devices get shape buckets: a group whose nodes all work row by row along dim 0
// (MATMUL with a 2-D weight, norms, RoPE, elementwise ops, activations, ...) and whose tensors
// other than weights all have the same dim 0 can run on rows padded up to a bucket (the padding
// rows compute garbage that no real row reads). Returns that dim 0, or 0 when the group is not
// row-wise.
int64_t BucketableRows(const Graph& graph, const std::vector<int32_t>& nodes);
// The bucket `rows` is padded to: the next power of two.
int64_t ShapeBucket(int64_t rows);

}  // namespace tessera

#endif  // TESSERA_CORE_SRC_GRAPH_SERIALIZE_H_
