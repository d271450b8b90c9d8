#include "graph_serialize.h"

#include <algorithm>
#include <map>
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

// Is `t` the whole of a state tensor under another id (the output of an in-place node such as
// KV_WRITE, or a reader of it)? Such aliases are serialized as the state itself: the state is a
// runtime input passed by handle, and a node whose output names it writes it in place.
bool IsStateAlias(const Graph& g, TensorId t) {
  const TensorDesc& d = g.tensor(t);
  if (d.kind != TensorKind::kView) return false;
  const TensorDesc& root = g.tensor(d.view_of);
  return root.kind == TensorKind::kState && d.view_offset == 0 && d.shape == root.shape &&
         d.strides == root.strides;
}

// The id a tensor has in the serialized subgraph.
TensorId ProtoId(const Graph& g, TensorId t) {
  return IsStateAlias(g, t) ? g.Root(t) : t;
}

class ProtoBuilder {
 public:
  ProtoBuilder(const Graph& g, const SerializeOptions& o) : g_(g), opt_(o) {}

  void FillTensor(TensorId id, TensorProto* t) const {
    const TensorDesc& d = g_.tensor(id);
    DType dt = opt_.storage_dtype ? opt_.storage_dtype(id) : d.dtype;
    t->set_name(Name(id));
    t->set_dtype(static_cast<wire::DataType>(static_cast<int>(dt)));
    const int64_t rows = opt_.bucket_rows ? opt_.bucket_rows(id) : 0;
    const int64_t cols = opt_.bucket_cols ? opt_.bucket_cols(id) : 0;
    for (size_t i = 0; i < d.shape.size(); ++i) {
      const int64_t padded = i == 0 ? rows : i == 1 ? cols : 0;
      t->add_shape(padded > 0 && d.kind != TensorKind::kWeight ? padded : d.shape[i]);
    }
  }

  // Registers input `in` of a group node: a weight, a runtime input, or (for a view of a tensor
  // the group produces) a reshaping COPY node emitted before the reader.
  Status AddInput(TensorId in, GraphProto* proto, SerializedSubgraph* out) {
    in = ProtoId(g_, in);
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
    case TSR_OP_MAX:
    // ARGMAX (ABI 1.3) serializes like any node (op 31, opset 1.3); only a compile-style plugin
    // that claims it gets it. Its padding rows give indices no real row reads.
    case TSR_OP_ARGMAX: return true;
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
    // In place into a state (KV_WRITE): the node's output is the state input itself, which the
    // host passes by handle and which persists past the run (so it is not an output).
    const bool in_place = IsStateAlias(graph, node.output);
    if (graph.tensor(node.output).kind == TensorKind::kView && !in_place)
      return Unsupported(std::string("compiled subgraphs write no views (node ") + OpName(node.op) +
                         ")");
    for (TensorId in : node.inputs)
      if (in != kNoTensor) TSR_RETURN_IF_ERROR(b.AddInput(in, &proto, &out));
    if (in_place) TSR_RETURN_IF_ERROR(b.AddInput(node.output, &proto, &out));
    NodeProto* np = proto.add_nodes();
    np->set_op(node.op);
    for (TensorId in : node.inputs) np->add_inputs(in == kNoTensor ? "" : Name(ProtoId(graph, in)));
    np->set_output(Name(ProtoId(graph, node.output)));
    for (int64_t v : node.params.i) np->add_iparams(v);
    for (float v : node.params.f) np->add_fparams(v);
    if (in_place) continue;
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

namespace {

// Which padded dim a tensor's dim 0 is: the step's token count, its sequence count, or the
// sequence count + 1 (cumulative offsets).
enum class RowClass { kTokens, kSeqs, kSeqsPlusOne };

// The class of input `k` of a node (and of its output for k == -1); false when the op is not
// padded row by row. State tensors (KV pools) are never padded: `skip` is set for them.
bool ClassOf(const Graph& g, const Node& n, int k, RowClass* c, bool* skip) {
  *c = RowClass::kTokens;
  *skip = false;
  switch (n.op) {
    case TSR_OP_KV_WRITE:  // cache (in place), rows[T], slots[T]
      *skip = k <= 0;
      return true;
    case TSR_OP_PAGED_ATTENTION:  // q[T], k/v caches, block_table[S], kv_lens[S], cu_q[S+1]
      *skip = k == 1 || k == 2;
      if (k == 3 || k == 4) *c = RowClass::kSeqs;
      if (k == 5) *c = RowClass::kSeqsPlusOne;
      return true;
    default: return RowWiseOp(g, n);
  }
}

}  // namespace

std::map<TensorId, int64_t> BucketRows(const Graph& graph, const std::vector<int32_t>& nodes,
                                       std::map<TensorId, int64_t>* cols) {
  int64_t dims[3] = {-1, -1, -1};  // by RowClass: the real size
  std::map<TensorId, RowClass> cls;
  auto visit = [&](TensorId t, RowClass c) {
    if (t == kNoTensor || graph.tensor(graph.Root(t)).kind == TensorKind::kState) return true;
    for (TensorId x : {t, graph.Root(t)}) {
      const TensorDesc& d = graph.tensor(x);
      if (d.kind == TensorKind::kWeight) continue;
      if (d.shape.empty()) return false;
      int64_t& want = dims[static_cast<int>(c)];
      if (want < 0) want = d.shape[0];
      auto [it, fresh] = cls.emplace(x, c);
      if (d.shape[0] != want || (!fresh && it->second != c)) return false;
    }
    return true;
  };
  for (int32_t n : nodes) {
    const Node& node = graph.nodes()[n];
    RowClass c;
    bool skip;
    for (int k = -1; k < static_cast<int>(node.inputs.size()); ++k) {
      if (!ClassOf(graph, node, k, &c, &skip)) return {};
      if (!skip && !visit(k < 0 ? node.output : node.inputs[k], c)) return {};
    }
  }
  const int64_t tokens = dims[0], seqs = std::max(dims[1], dims[2] - 1);
  if (tokens <= 0 || (dims[1] > 0 && dims[2] > 0 && dims[2] != dims[1] + 1)) return {};
  if (cols != nullptr) {
    cols->clear();
    for (int32_t n : nodes) {  // block tables [S, MB]: MB pads to its own power of two
      const Node& node = graph.nodes()[n];
      if (node.op != TSR_OP_PAGED_ATTENTION) continue;
      const TensorId table = node.inputs[3];
      const int64_t width = graph.tensor(table).shape[1];
      for (TensorId x : {table, graph.Root(table)}) {
        auto [it, fresh] = cols->emplace(x, ShapeBucket(width));
        if (!fresh && it->second != ShapeBucket(width)) return {};
      }
    }
  }
  std::map<TensorId, int64_t> rows;
  for (const auto& [t, c] : cls)
    rows[t] = c == RowClass::kTokens ? ShapeBucket(tokens)
                                     : ShapeBucket(seqs) + (c == RowClass::kSeqsPlusOne ? 1 : 0);
  return rows;
}

int64_t ShapeBucket(int64_t rows) {
  int64_t b = 1;
  while (b < rows) b *= 2;
  return b;
}

}  // namespace tessera
