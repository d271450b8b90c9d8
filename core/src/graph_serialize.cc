#include "graph_serialize.h"

#include <set>

#include "graph.pb.h"

namespace tessera {
namespace {

using wire::GraphProto;
using wire::NodeProto;
using wire::TensorProto;
using wire::WeightProto;

void FillTensor(const Graph& g, TensorId id, TensorProto* t) {
  const TensorDesc& d = g.tensor(id);
  t->set_name("t" + std::to_string(id));
  t->set_dtype(static_cast<wire::DataType>(static_cast<int>(d.dtype)));
  for (int64_t s : d.shape) t->add_shape(s);
}

}  // namespace

StatusOr<SerializedSubgraph> SerializeSubgraph(const Graph& graph,
                                               const std::vector<int32_t>& nodes) {
  SerializedSubgraph out;
  std::set<int32_t> in_group(nodes.begin(), nodes.end());
  std::set<TensorId> produced, seen_inputs, seen_weights;
  GraphProto proto;
  proto.set_opset_major(TSR_ABI_MAJOR);
  proto.set_opset_minor(TSR_ABI_MINOR);
  for (int32_t n : nodes) {
    const Node& node = graph.nodes()[n];
    NodeProto* np = proto.add_nodes();
    np->set_op(node.op);
    for (TensorId in : node.inputs) {
      if (in == kNoTensor) {
        np->add_inputs("");
        continue;
      }
      np->add_inputs("t" + std::to_string(in));
      if (produced.count(in)) continue;
      const TensorDesc& d = graph.tensor(in);
      if (d.kind == TensorKind::kView)
        return Unsupported("compiled subgraphs take no views (tensor '" + d.name + "')");
      if (d.kind == TensorKind::kWeight) {
        if (seen_weights.insert(in).second) {
          WeightProto* w = proto.add_weights();
          FillTensor(graph, in, w->mutable_tensor());
          w->set_buffer_index(static_cast<int32_t>(out.weights.size()));
          out.weights.push_back(in);
        }
      } else if (seen_inputs.insert(in).second) {
        FillTensor(graph, in, proto.add_inputs());
        out.inputs.push_back(in);
      }
    }
    np->set_output("t" + std::to_string(node.output));
    for (int64_t v : node.params.i) np->add_iparams(v);
    for (float v : node.params.f) np->add_fparams(v);
    produced.insert(node.output);
  }
  // Outputs: read outside the group, or read back by the caller.
  std::set<TensorId> needed;
  for (int32_t n = 0; n < graph.num_nodes(); ++n) {
    if (in_group.count(n)) continue;
    for (TensorId in : graph.nodes()[n].inputs)
      if (in != kNoTensor) needed.insert(graph.Root(in));
  }
  for (TensorId t : produced) {
    if (needed.count(t) || graph.tensor(t).is_output) {
      FillTensor(graph, t, proto.add_outputs());
      out.outputs.push_back(t);
    } else {
      FillTensor(graph, t, proto.add_intermediates());
    }
  }
  if (!proto.SerializeToString(&out.proto)) return Internal("GraphProto serialization failed");
  return out;
}

}  // namespace tessera
