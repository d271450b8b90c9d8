#include "graph_serialize.h"

#include <set>

#include "graph.pb.h"

namespace tessera {
namespace {

using wire::GraphProto;
using wire::NodeProto;
using wire::TensorProto;
using wire::WeightProto;

std::string Name(TensorId id) {
  return "t" + std::to_string(id);
}

class ProtoBuilder {
 public:
  ProtoBuilder(const Graph& g, const SerializeOptions& o) : g_(g), opt_(o) {}

  void FillTensor(TensorId id, TensorProto* t) const {
    const TensorDesc& d = g_.tensor(id);
    DType dt = opt_.storage_dtype ? opt_.storage_dtype(id) : d.dtype;
    t->set_name(Name(id));
    t->set_dtype(static_cast<wire::DataType>(static_cast<int>(dt)));
    for (size_t i = 0; i < d.shape.size(); ++i) {
      bool bucketed = i == 0 && opt_.bucket_rows > 0 && d.kind != TensorKind::kWeight;
      t->add_shape(bucketed ? opt_.bucket_rows : d.shape[i]);
    }
  }

  // Registers input `in` of a group node: a weight, a runtime input, or (for a view of a tensor
  // the group produces) a reshaping COPY node emitted before the reader.
  Status AddInput(TensorId in, GraphProto* proto, SerializedSubgraph* out) {
    if (produced_.count(in) || registered_.count(in)) return OkStatus();
    const TensorDesc& d = g_.tensor(in);
    if (d.kind == TensorKind::kView) {
      TensorId root = g_.Root(in);
      if (!d.IsContiguous() || g_.tensor(root).kind == TensorKind::kWeight)
        return Unsupported("compiled subgraphs take only contiguous views of activations ('" +
                           d.name + "')");
      if (produced_.count(root)) {
        NodeProto* np = proto->add_nodes();
        np->set_op(TSR_OP_COPY);
        np->add_inputs(Name(root));
        np->set_output(Name(in));
        views_.push_back(in);
        produced_.insert(in);
        return OkStatus();
      }
    }
    registered_.insert(in);
    if (d.kind == TensorKind::kWeight) {
      WeightProto* w = proto->add_weights();
      FillTensor(in, w->mutable_tensor());
      w->set_buffer_index(static_cast<int32_t>(out->weights.size()));
      out->weights.push_back(in);
    } else {
      FillTensor(in, proto->add_inputs());
      out->inputs.push_back(in);
    }
    return OkStatus();
  }

  std::set<TensorId> produced_;    // node outputs and reshaped views made inside the group
  std::set<TensorId> registered_;  // runtime inputs and weights
  std::vector<TensorId> views_;    // views made by COPY nodes (always intermediates)

 private:
  const Graph& g_;
  const SerializeOptions& opt_;
};

bool RowWiseOp(const Graph& g, const Node& n) {
  switch (n.op) {
    case TSR_OP_MATMUL: return g.tensor(n.inputs[1]).shape.size() == 2;
    case TSR_OP_ADD:
    case TSR_OP_SUB:
    case TSR_OP_MUL:
    case TSR_OP_DIV:
    case TSR_OP_SCALE:
    case TSR_OP_SILU:
    case TSR_OP_GELU:
    case TSR_OP_GELU_TANH:
    case TSR_OP_RELU:
    case TSR_OP_TANH:
    case TSR_OP_SIGMOID:
    case TSR_OP_SOFTCAP:
    case TSR_OP_SWIGLU:
    case TSR_OP_GEGLU:
    case TSR_OP_RMS_NORM:
    case TSR_OP_LAYER_NORM:
    case TSR_OP_ROPE:
    case TSR_OP_SOFTMAX:
    case TSR_OP_COPY:
    case TSR_OP_SUM:
    case TSR_OP_MEAN:
    case TSR_OP_MAX: return true;
    default: return false;
  }
}

}  // namespace

StatusOr<SerializedSubgraph> SerializeSubgraph(const Graph& graph,
                                               const std::vector<int32_t>& nodes,
                                               const SerializeOptions& options) {
  SerializedSubgraph out;
  std::set<int32_t> in_group(nodes.begin(), nodes.end());
  ProtoBuilder b(graph, options);
  std::vector<TensorId> node_outputs;
  GraphProto proto;
  proto.set_opset_major(TSR_ABI_MAJOR);
  proto.set_opset_minor(TSR_ABI_MINOR);
  for (int32_t n : nodes) {
    const Node& node = graph.nodes()[n];
    if (graph.tensor(node.output).kind == TensorKind::kView)
      return Unsupported(std::string("compiled subgraphs write no views (node ") + OpName(node.op) +
                         ")");
    for (TensorId in : node.inputs)
      if (in != kNoTensor) TSR_RETURN_IF_ERROR(b.AddInput(in, &proto, &out));
    NodeProto* np = proto.add_nodes();
    np->set_op(node.op);
    for (TensorId in : node.inputs) np->add_inputs(in == kNoTensor ? "" : Name(in));
    np->set_output(Name(node.output));
    for (int64_t v : node.params.i) np->add_iparams(v);
    for (float v : node.params.f) np->add_fparams(v);
    b.produced_.insert(node.output);
    node_outputs.push_back(node.output);
  }
  // Outputs: read outside the group, or read back by the caller.
  std::set<TensorId> needed;
  for (int32_t n = 0; n < graph.num_nodes(); ++n) {
    if (in_group.count(n)) continue;
    for (TensorId in : graph.nodes()[n].inputs)
      if (in != kNoTensor) needed.insert(graph.Root(in));
  }
  std::set<TensorId> sorted(node_outputs.begin(), node_outputs.end());
  for (TensorId t : sorted) {
    if (needed.count(t) || graph.tensor(t).is_output) {
      b.FillTensor(t, proto.add_outputs());
      out.outputs.push_back(t);
    } else {
      b.FillTensor(t, proto.add_intermediates());
    }
  }
  for (TensorId v : b.views_) b.FillTensor(v, proto.add_intermediates());
  if (!proto.SerializeToString(&out.proto)) return Internal("GraphProto serialization failed");
  return out;
}

int64_t BucketableRows(const Graph& graph, const std::vector<int32_t>& nodes) {
  int64_t rows = -1;
  auto same_rows = [&](TensorId t) {
    if (t == kNoTensor) return true;
    for (TensorId x : {t, graph.Root(t)}) {
      const TensorDesc& d = graph.tensor(x);
      if (d.kind == TensorKind::kWeight) continue;
      if (d.shape.empty()) return false;
      if (rows < 0) rows = d.shape[0];
      if (d.shape[0] != rows) return false;
    }
    return true;
  };
  for (int32_t n : nodes) {
    const Node& node = graph.nodes()[n];
    if (!RowWiseOp(graph, node) || !same_rows(node.output)) return 0;
    for (TensorId in : node.inputs)
      if (!same_rows(in)) return 0;
  }
  return rows > 0 ? rows : 0;
}

int64_t ShapeBucket(int64_t rows) {
  int64_t b = 1;
  while (b < rows) b *= 2;
  return b;
}

}  // namespace tessera
