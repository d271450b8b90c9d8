// Per-op contracts of the IR (see the tsr_op comments in plugin_api.h).
#include <cstdint>
#include <string>

#include "tessera/core/ir.h"

namespace tessera {
namespace {

std::string ShapeStr(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

class Checker {
 public:
  Checker(const Graph& g, const Node& n) : g_(g), n_(n) {}

  bool Has(size_t i) const { return i < n_.inputs.size() && n_.inputs[i] != kNoTensor; }
  const TensorDesc& In(size_t i) const { return g_.tensor(n_.inputs[i]); }
  const TensorDesc& Out() const { return g_.tensor(n_.output); }

  Status Need(size_t required, size_t max) const {
    size_t given = n_.inputs.size();
    if (given < required || given > max)
      return InvalidArgument("takes " + std::to_string(required) + ".." + std::to_string(max) +
                             " inputs, got " + std::to_string(given));
    for (size_t i = 0; i < required; ++i)
      if (n_.inputs[i] == kNoTensor)
        return InvalidArgument("input " + std::to_string(i) + " is required");
    return OkStatus();
  }
  Status DType(size_t i, tessera::DType t) const {
    if (In(i).dtype != t)
      return InvalidArgument("input " + std::to_string(i) + " must be " + DTypeName(t) + ", is " +
                             DTypeName(In(i).dtype));
    return OkStatus();
  }
  Status OutDType(tessera::DType t) const {
    if (Out().dtype != t) return InvalidArgument(std::string("output must be ") + DTypeName(t));
    return OkStatus();
  }
  Status Rank(size_t i, size_t r) const {
    if (In(i).shape.size() != r)
      return InvalidArgument("input " + std::to_string(i) + " must have " + std::to_string(r) +
                             " dims, has shape " + ShapeStr(In(i).shape));
    return OkStatus();
  }
  Status OutShape(const Shape& want) const {
    if (Out().shape != want)
      return InvalidArgument("output shape " + ShapeStr(Out().shape) + " should be " +
                             ShapeStr(want));
    return OkStatus();
  }

 private:
  const Graph& g_;
  const Node& n_;
};

bool Broadcastable(const Shape& to, const Shape& from) {
  if (from.size() > to.size()) return false;
  size_t off = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i] != 1 && from[i] != to[off + i]) return false;
  return true;
}

Status CheckMatmul(const Checker& c) {
  TSR_RETURN_IF_ERROR(c.Need(2, 3));
  TSR_RETURN_IF_ERROR(c.DType(0, DType::kF32));
  TSR_RETURN_IF_ERROR(c.OutDType(DType::kF32));
  const Shape& x = c.In(0).shape;
  const Shape& w = c.In(1).shape;
  DType wt = c.In(1).dtype;
  if (wt != DType::kF32 && wt != DType::kF16 && wt != DType::kBF16 && !IsQuantized(wt))
    return InvalidArgument(std::string("unsupported weight dtype ") + DTypeName(wt));
  if (x.empty() || (w.size() != 2 && w.size() != 3))
    return InvalidArgument("weight must be [N, K] or [B, N, K]");
  int64_t k = w.back(), n = w[w.size() - 2];
  if (x.back() != k)
    return InvalidArgument("inner dims differ: x " + ShapeStr(x) + ", w " + ShapeStr(w));
  Shape out = x;
  out.back() = n;
  if (w.size() == 3 && (x.size() != 3 || x[0] != w[0]))
    return InvalidArgument("batched matmul needs x [B, M, K] with the weight's B");
  if (c.Has(2)) {
    TSR_RETURN_IF_ERROR(c.DType(2, DType::kF32));
    if (c.In(2).shape != Shape{n}) return InvalidArgument("bias must be [N]");
  }
  return c.OutShape(out);
}

Status CheckAttention(const Checker& c, bool paged) {
  TSR_RETURN_IF_ERROR(c.Need(paged ? 6 : 5, paged ? 6 : 5));
  for (size_t i = 0; i < 3; ++i) TSR_RETURN_IF_ERROR(c.DType(i, DType::kF32));
  for (size_t i = 3; i < (paged ? 6u : 5u); ++i) TSR_RETURN_IF_ERROR(c.DType(i, DType::kI32));
  TSR_RETURN_IF_ERROR(c.Rank(0, 3));
  TSR_RETURN_IF_ERROR(c.Rank(1, paged ? 4 : 3));
  TSR_RETURN_IF_ERROR(c.Rank(2, paged ? 4 : 3));
  const Shape& q = c.In(0).shape;
  const Shape& k = c.In(1).shape;
  const Shape& v = c.In(2).shape;
  size_t h = paged ? 2 : 1;
  int64_t hkv = k[h];
  if (hkv <= 0 || q[1] % hkv != 0)
    return InvalidArgument("query heads must be a multiple of kv heads");
  if (k.back() != q[2]) return InvalidArgument("q and k head dims differ");
  if (v[h] != hkv) return InvalidArgument("k and v head counts differ");
  return c.OutShape({q[0], q[1], v.back()});
}

int64_t ConvOut(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
  if (stride <= 0 || dil <= 0) return -1;
  return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

Status CheckConv(const Checker& c, const OpParams& p, bool two_d) {
  TSR_RETURN_IF_ERROR(c.Need(2, 3));
  TSR_RETURN_IF_ERROR(c.DType(0, DType::kF32));
  size_t rank = two_d ? 4 : 3;
  TSR_RETURN_IF_ERROR(c.Rank(0, rank));
  TSR_RETURN_IF_ERROR(c.Rank(1, rank));
  const Shape& x = c.In(0).shape;
  const Shape& w = c.In(1).shape;
  int64_t groups = two_d ? p.i[6] : p.i[3];
  if (groups <= 0 || x[1] % groups != 0 || w[0] % groups != 0 || w[1] != x[1] / groups)
    return InvalidArgument("channels do not match the groups");
  Shape out = {x[0], w[0]};
  if (two_d) {
    out.push_back(ConvOut(x[2], w[2], p.i[0], p.i[2], p.i[4]));
    out.push_back(ConvOut(x[3], w[3], p.i[1], p.i[3], p.i[5]));
  } else {
    out.push_back(ConvOut(x[2], w[2], p.i[0], p.i[1], p.i[2]));
  }
  for (int64_t d : out)
    if (d <= 0) return InvalidArgument("convolution output would be empty");
  return c.OutShape(out);
}

Status CheckRest(const Checker& c, const Node& node) {
  const OpParams& p = node.params;
  switch (node.op) {
    case TSR_OP_ROPE: {
      TSR_RETURN_IF_ERROR(c.Need(3, 3));
      TSR_RETURN_IF_ERROR(c.Rank(0, 3));
      TSR_RETURN_IF_ERROR(c.DType(1, DType::kI32));
      TSR_RETURN_IF_ERROR(c.DType(2, DType::kF32));
      int64_t rot = p.i[1];
      if (rot <= 0 || rot % 2 || rot > c.In(0).shape[2]) return InvalidArgument("bad rotary dims");
      if (c.In(1).shape != Shape{c.In(0).shape[0]}) return InvalidArgument("positions must be [T]");
      if (c.In(2).shape != Shape{rot / 2}) return InvalidArgument("inv_freq must be [R/2]");
      return c.OutShape(c.In(0).shape);
    }
    case TSR_OP_ATTENTION: return CheckAttention(c, false);
    case TSR_OP_PAGED_ATTENTION: return CheckAttention(c, true);
    case TSR_OP_KV_WRITE:
      TSR_RETURN_IF_ERROR(c.Need(3, 3));
      TSR_RETURN_IF_ERROR(c.Rank(0, 4));
      TSR_RETURN_IF_ERROR(c.Rank(1, 3));
      TSR_RETURN_IF_ERROR(c.DType(2, DType::kI32));
      if (c.In(1).shape[1] != c.In(0).shape[2] || c.In(1).shape[2] != c.In(0).shape[3])
        return InvalidArgument("rows do not match the cache's heads/head dim");
      return OkStatus();
    case TSR_OP_GET_ROWS:
      TSR_RETURN_IF_ERROR(c.Need(2, 2));
      TSR_RETURN_IF_ERROR(c.Rank(0, 2));
      TSR_RETURN_IF_ERROR(c.Rank(1, 1));
      TSR_RETURN_IF_ERROR(c.DType(1, DType::kI32));
      return c.OutShape({c.In(1).shape[0], c.In(0).shape[1]});
    case TSR_OP_COPY:
      TSR_RETURN_IF_ERROR(c.Need(1, 1));
      if (c.In(0).NumElements() != c.Out().NumElements())
        return InvalidArgument("copy changes the element count");
      return OkStatus();
    case TSR_OP_CONCAT: {
      TSR_RETURN_IF_ERROR(c.Need(2, 2));
      Shape a = c.In(0).shape, b = c.In(1).shape;
      int64_t axis = p.i[0] < 0 ? p.i[0] + static_cast<int64_t>(a.size()) : p.i[0];
      if (a.size() != b.size() || axis < 0 || axis >= static_cast<int64_t>(a.size()))
        return InvalidArgument("concat ranks or axis differ");
      Shape out = a;
      out[axis] += b[axis];
      b[axis] = a[axis];
      if (a != b) return InvalidArgument("concat shapes differ off the axis");
      return c.OutShape(out);
    }
    case TSR_OP_CONV1D: return CheckConv(c, p, false);
    case TSR_OP_CONV2D: return CheckConv(c, p, true);
    case TSR_OP_SUM:
    case TSR_OP_MEAN:
    case TSR_OP_MAX: {
      TSR_RETURN_IF_ERROR(c.Need(1, 1));
      Shape out = c.In(0).shape;
      if (out.empty()) return InvalidArgument("reduction of a scalar");
      out.back() = 1;
      return c.OutShape(out);
    }
    case TSR_OP_ARGMAX: {  // f32 [..., N] -> i32 [..., 1]: the index of each row's maximum
      TSR_RETURN_IF_ERROR(c.Need(1, 1));
      TSR_RETURN_IF_ERROR(c.DType(0, DType::kF32));
      TSR_RETURN_IF_ERROR(c.OutDType(DType::kI32));
      Shape out = c.In(0).shape;
      if (out.empty() || out.back() < 1 || out.back() > INT32_MAX)
        return InvalidArgument("ARGMAX needs rows of 1..2^31-1 values, got " + ShapeStr(out));
      out.back() = 1;
      return c.OutShape(out);
    }
    default: return InvalidArgument("unknown op");
  }
}

}  // namespace

Status ValidateNode(const Graph& graph, const Node& node) {
  Checker c(graph, node);
  switch (node.op) {
    case TSR_OP_MATMUL: return CheckMatmul(c);
    case TSR_OP_ADD:
    case TSR_OP_SUB:
    case TSR_OP_MUL:
    case TSR_OP_DIV:
      TSR_RETURN_IF_ERROR(c.Need(2, 2));
      if (!Broadcastable(c.In(0).shape, c.In(1).shape))
        return InvalidArgument("second input " + ShapeStr(c.In(1).shape) +
                               " does not broadcast to " + ShapeStr(c.In(0).shape));
      return c.OutShape(c.In(0).shape);
    case TSR_OP_SCALE:
    case TSR_OP_SILU:
    case TSR_OP_GELU:
    case TSR_OP_GELU_TANH:
    case TSR_OP_RELU:
    case TSR_OP_TANH:
    case TSR_OP_SIGMOID:
    case TSR_OP_SOFTCAP: TSR_RETURN_IF_ERROR(c.Need(1, 1)); return c.OutShape(c.In(0).shape);
    case TSR_OP_SWIGLU:
    case TSR_OP_GEGLU:
      TSR_RETURN_IF_ERROR(c.Need(2, 2));
      if (c.In(0).shape != c.In(1).shape) return InvalidArgument("gate and up shapes differ");
      return c.OutShape(c.In(0).shape);
    case TSR_OP_RMS_NORM:
    case TSR_OP_LAYER_NORM: {
      TSR_RETURN_IF_ERROR(c.Need(1, 3));
      if (c.In(0).shape.empty()) return InvalidArgument("norm of a scalar");
      Shape d = {c.In(0).shape.back()};
      for (size_t i = 1; i < 3; ++i)
        if (c.Has(i) && c.In(i).shape != d) return InvalidArgument("norm weight/bias must be [D]");
      return c.OutShape(c.In(0).shape);
    }
    case TSR_OP_SOFTMAX:
      TSR_RETURN_IF_ERROR(c.Need(1, 2));
      if (c.Has(1) && !Broadcastable(c.In(0).shape, c.In(1).shape))
        return InvalidArgument("mask does not broadcast");
      return c.OutShape(c.In(0).shape);
    default: return CheckRest(c, node);
  }
}

}  // namespace tessera
