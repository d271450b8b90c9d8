#include "tessera/core/ir.h"

#include <algorithm>
#include <numeric>
#include <unordered_set>

#include "tessera/quant_formats.h"

namespace tessera {

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kF16: return "f16";
    case DType::kBF16: return "bf16";
    case DType::kI32: return "i32";
    case DType::kI64: return "i64";
    case DType::kI8: return "i8";
    case DType::kU8: return "u8";
    case DType::kQ8: return "q8";
    case DType::kQ4: return "q4";
  }
  return "?";
}

bool IsQuantized(DType t) {
  return t == DType::kQ8 || t == DType::kQ4;
}

int64_t ElementSize(DType t) {
  switch (t) {
    case DType::kF32:
    case DType::kI32: return 4;
    case DType::kF16:
    case DType::kBF16: return 2;
    case DType::kI64: return 8;
    case DType::kI8:
    case DType::kU8: return 1;
    case DType::kQ8:
    case DType::kQ4: return 0;
  }
  return 0;
}

int64_t RowBytes(DType t, int64_t n) {
  if (t == DType::kQ8) return n / TSR_QBLOCK * TSR_BLOCK_Q8_BYTES;
  if (t == DType::kQ4) return n / TSR_QBLOCK * TSR_BLOCK_Q4_BYTES;
  return n * ElementSize(t);
}

const char* OpName(tsr_op op) {
  static constexpr const char* kNames[TSR_OP_COUNT] = {"none",
                                                       "matmul",
                                                       "add",
                                                       "sub",
                                                       "mul",
                                                       "div",
                                                       "scale",
                                                       "silu",
                                                       "gelu",
                                                       "gelu_tanh",
                                                       "relu",
                                                       "tanh",
                                                       "sigmoid",
                                                       "softcap",
                                                       "swiglu",
                                                       "geglu",
                                                       "rms_norm",
                                                       "layer_norm",
                                                       "rope",
                                                       "softmax",
                                                       "attention",
                                                       "kv_write",
                                                       "paged_attention",
                                                       "get_rows",
                                                       "copy",
                                                       "concat",
                                                       "conv1d",
                                                       "conv2d",
                                                       "sum",
                                                       "mean",
                                                       "max",
                                                       "argmax"};
  if (op < 0 || op >= TSR_OP_COUNT) return "invalid";
  return kNames[op];
}

std::vector<int64_t> ContiguousStrides(DType dtype, const Shape& shape) {
  std::vector<int64_t> strides(shape.size());
  if (shape.empty()) return strides;
  int64_t inner = ElementSize(dtype);
  size_t last = shape.size() - 1;
  if (IsQuantized(dtype)) {
    strides[last] = 0;
    inner = RowBytes(dtype, shape[last]);
  } else {
    strides[last] = inner;
    inner *= shape[last];
  }
  for (size_t d = last; d-- > 0;) {
    strides[d] = inner;
    inner *= shape[d];
  }
  return strides;
}

int64_t TensorDesc::NumElements() const {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
}

int64_t TensorDesc::ContiguousBytes() const {
  if (shape.empty()) return ElementSize(dtype);
  int64_t rows = NumElements() / std::max<int64_t>(shape.back(), 1);
  if (shape.back() == 0) rows = 0;
  return rows * RowBytes(dtype, shape.back());
}

bool TensorDesc::IsContiguous() const {
  return strides == ContiguousStrides(dtype, shape);
}

TensorId Graph::AddTensor(TensorDesc desc) {
  if (desc.strides.empty()) desc.strides = ContiguousStrides(desc.dtype, desc.shape);
  tensors_.push_back(std::move(desc));
  return static_cast<TensorId>(tensors_.size() - 1);
}

void Graph::RecordError(std::string message) {
  if (first_error_.empty()) first_error_ = std::move(message);
}

static bool ValidShape(const Shape& s) {
  if (s.size() > TSR_MAX_DIMS) return false;
  return std::all_of(s.begin(), s.end(), [](int64_t d) { return d >= 0; });
}

TensorId Graph::AddInput(std::string name, DType dtype, Shape shape) {
  if (!ValidShape(shape)) RecordError("input '" + name + "' has an invalid shape");
  return AddTensor({std::move(name), dtype, std::move(shape), {}, TensorKind::kInput});
}

TensorId Graph::AddWeight(std::string name, DType dtype, Shape shape) {
  if (!ValidShape(shape)) RecordError("weight '" + name + "' has an invalid shape");
  if (IsQuantized(dtype) && (shape.empty() || shape.back() % TSR_QBLOCK != 0))
    RecordError("quantized weight '" + name + "' needs an innermost dim that is a multiple of 32");
  return AddTensor({std::move(name), dtype, std::move(shape), {}, TensorKind::kWeight});
}

TensorId Graph::AddState(std::string name, DType dtype, Shape shape) {
  if (!ValidShape(shape)) RecordError("state '" + name + "' has an invalid shape");
  return AddTensor({std::move(name), dtype, std::move(shape), {}, TensorKind::kState});
}

TensorId Graph::AddNode(tsr_op op, std::vector<TensorId> inputs, DType dtype, Shape shape,
                        OpParams params, std::string name) {
  if (!ValidShape(shape)) RecordError(std::string("node ") + OpName(op) + ": invalid output shape");
  if (name.empty()) name = std::string(OpName(op)) + "#" + std::to_string(nodes_.size());
  TensorId out =
      AddTensor({std::move(name), dtype, std::move(shape), {}, TensorKind::kIntermediate});
  nodes_.push_back({op, std::move(inputs), out, params});
  return out;
}

TensorId Graph::AddInPlaceNode(tsr_op op, std::vector<TensorId> inputs, TensorId target,
                               OpParams params) {
  if (target < 0 || target >= num_tensors() || tensors_[target].kind != TensorKind::kState) {
    RecordError(std::string("node ") + OpName(op) + ": in-place target must be a state tensor");
    target = 0;
  }
  const TensorDesc& t = tensors_[target];
  TensorId out = AddView(target, t.shape, t.strides, 0);
  nodes_.push_back({op, std::move(inputs), out, params});
  return out;
}

TensorId Graph::Root(TensorId t) const {
  return tensors_[t].kind == TensorKind::kView ? tensors_[t].view_of : t;
}

TensorId Graph::AddView(TensorId src, Shape shape, std::vector<int64_t> strides, int64_t offset) {
  TensorId root = Root(src);
  TensorDesc d;
  d.name = tensors_[src].name + ".view";
  d.dtype = tensors_[src].dtype;
  d.shape = std::move(shape);
  d.strides = std::move(strides);
  d.kind = TensorKind::kView;
  d.view_of = root;
  d.view_offset =
      (tensors_[src].kind == TensorKind::kView ? tensors_[src].view_offset : 0) + offset;
  return AddTensor(std::move(d));
}

static bool BadId(const Graph& g, TensorId t) {
  return t < 0 || t >= g.num_tensors();
}

TensorId Graph::Reshape(TensorId t, Shape shape) {
  if (BadId(*this, t)) {
    RecordError("reshape of an invalid tensor id");
    return 0;
  }
  const TensorDesc& s = tensors_[t];
  TensorDesc probe{"", s.dtype, shape};
  if (!ValidShape(shape) || probe.NumElements() != s.NumElements() || !s.IsContiguous() ||
      (IsQuantized(s.dtype) && (shape.empty() || shape.back() != s.shape.back()))) {
    RecordError("reshape of '" + s.name + "': element counts differ or source not contiguous");
  }
  auto strides = ContiguousStrides(s.dtype, shape);
  return AddView(t, std::move(shape), std::move(strides), 0);
}

TensorId Graph::Permute(TensorId t, std::vector<int> axes) {
  if (BadId(*this, t)) {
    RecordError("permute of an invalid tensor id");
    return 0;
  }
  const TensorDesc& s = tensors_[t];
  std::vector<int> sorted = axes;
  std::sort(sorted.begin(), sorted.end());
  bool ok = sorted.size() == s.shape.size();
  for (size_t i = 0; ok && i < sorted.size(); ++i) ok = sorted[i] == static_cast<int>(i);
  if (!ok || (IsQuantized(s.dtype) && axes.back() != static_cast<int>(s.shape.size()) - 1)) {
    RecordError("permute of '" + s.name +
                "': axes are not a permutation (or move a quantized row)");
    return AddView(t, s.shape, s.strides, 0);
  }
  Shape shape(axes.size());
  std::vector<int64_t> strides(axes.size());
  for (size_t i = 0; i < axes.size(); ++i) {
    shape[i] = s.shape[axes[i]];
    strides[i] = s.strides[axes[i]];
  }
  return AddView(t, std::move(shape), std::move(strides), 0);
}

TensorId Graph::Slice(TensorId t, int axis, int64_t start, int64_t length) {
  if (BadId(*this, t)) {
    RecordError("slice of an invalid tensor id");
    return 0;
  }
  const TensorDesc& s = tensors_[t];
  int nd = static_cast<int>(s.shape.size());
  if (axis < 0) axis += nd;
  if (axis < 0 || axis >= nd || start < 0 || length < 0 || start + length > s.shape[axis] ||
      (IsQuantized(s.dtype) && axis == nd - 1)) {
    RecordError("slice of '" + s.name + "' out of range");
    return AddView(t, s.shape, s.strides, 0);
  }
  Shape shape = s.shape;
  shape[axis] = length;
  return AddView(t, std::move(shape), s.strides, start * s.strides[axis]);
}

void Graph::MarkOutput(TensorId t) {
  if (BadId(*this, t)) {
    RecordError("output mark on an invalid tensor id");
    return;
  }
  tensors_[Root(t)].is_output = true;
  tensors_[t].is_output = true;
}

Status Graph::Validate() const {
  if (!first_error_.empty()) return InvalidArgument("graph: " + first_error_);
  std::vector<bool> defined(tensors_.size(), false);
  for (size_t t = 0; t < tensors_.size(); ++t) {
    TensorKind k = tensors_[t].kind;
    defined[t] = k == TensorKind::kInput || k == TensorKind::kWeight || k == TensorKind::kState;
  }
  std::unordered_set<std::string> leaf_names;
  for (const TensorDesc& t : tensors_) {
    if (t.kind == TensorKind::kInput || t.kind == TensorKind::kWeight ||
        t.kind == TensorKind::kState) {
      if (!leaf_names.insert(t.name).second)
        return InvalidArgument("graph: two leaf tensors are named '" + t.name + "'");
    }
  }
  auto is_defined = [&](TensorId t) {
    return defined[t] || (tensors_[t].kind == TensorKind::kView && defined[tensors_[t].view_of]);
  };
  for (size_t n = 0; n < nodes_.size(); ++n) {
    const Node& node = nodes_[n];
    std::string where = "graph node " + std::to_string(n) + " (" + OpName(node.op) + ")";
    if (node.inputs.size() > TSR_MAX_INPUTS) return InvalidArgument(where + ": too many inputs");
    for (TensorId in : node.inputs) {
      if (in == kNoTensor) continue;
      if (BadId(*this, in)) return InvalidArgument(where + ": input id out of range");
      if (!is_defined(in))
        return InvalidArgument(where + ": input '" + tensors_[in].name + "' used before defined");
    }
    if (BadId(*this, node.output)) return InvalidArgument(where + ": output id out of range");
    TSR_RETURN_IF_ERROR(ValidateNode(*this, node).WithContext(where));
    defined[node.output] = true;
  }
  return OkStatus();
}

tsr_tensor ToAbiTensor(const TensorDesc& desc) {
  tsr_tensor t{};
  t.struct_size = sizeof(tsr_tensor);
  t.dtype = static_cast<tsr_dtype>(desc.dtype);
  t.ndim = static_cast<int32_t>(desc.shape.size());
  for (size_t i = 0; i < desc.shape.size(); ++i) {
    t.ne[i] = desc.shape[i];
    t.nb[i] = desc.strides[i];
  }
  t.name = desc.name.c_str();
  return t;
}

tsr_node ToAbiNode(const Node& node) {
  tsr_node n{};
  n.struct_size = sizeof(tsr_node);
  n.op = node.op;
  n.n_inputs = static_cast<int32_t>(node.inputs.size());
  for (size_t i = 0; i < TSR_MAX_INPUTS; ++i)
    n.inputs[i] = i < node.inputs.size() ? node.inputs[i] : -1;
  n.output = node.output;
  for (size_t i = 0; i < TSR_MAX_PARAMS; ++i) {
    n.iparams[i] = node.params.i[i];
    n.fparams[i] = node.params.f[i];
  }
  return n;
}

}  // namespace tessera
