// Serializes a group of nodes as a tessera.GraphProto (plugins-api/graph.proto) for a
// compile-style plugin. Internal to the core.
#ifndef TESSERA_CORE_SRC_GRAPH_SERIALIZE_H_
#define TESSERA_CORE_SRC_GRAPH_SERIALIZE_H_

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

// Tensors are named "t<id>" so names are unique. Inputs: read by the group but produced outside
// it; outputs: produced by the group and read outside it, or graph outputs.
StatusOr<SerializedSubgraph> SerializeSubgraph(const Graph& graph,
                                               const std::vector<int32_t>& nodes);

}  // namespace tessera

#endif  // TESSERA_CORE_SRC_GRAPH_SERIALIZE_H_
