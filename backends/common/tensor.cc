// TensorRef helpers and the tensor/node readers of node.h.
#include "tessera/backend/tensor.h"

#include <string>

#include "tessera/backend/node.h"

namespace tessera::backend {

const char* DtypeName(tsr_dtype t) {
  switch (t) {
    case TSR_DTYPE_F32: return "f32";
    case TSR_DTYPE_F16: return "f16";
    case TSR_DTYPE_BF16: return "bf16";
    case TSR_DTYPE_I32: return "i32";
    case TSR_DTYPE_I64: return "i64";
    case TSR_DTYPE_I8: return "i8";
    case TSR_DTYPE_U8: return "u8";
    case TSR_DTYPE_Q8_B32: return "q8_b32";
    case TSR_DTYPE_Q4_B32: return "q4_b32";
    default: return "invalid-dtype";
  }
}

std::string ShapeString(const TensorRef& t) {
  std::string s = DtypeName(t.dtype);
  s += "[";
  for (int i = 0; i < t.ndim; ++i) {
    if (i) s += ", ";
    s += std::to_string(t.ne[i]);
  }
  return s + "]";
}

bool TensorRef::IsContiguous() const {
  if (ndim == 0) return true;
  int64_t expect;
  int last = ndim - 1;
  if (IsQuantized(dtype)) {
    if (ndim == 1) return true;
    expect = ne[last] / TSR_QBLOCK * BlockBytes(dtype);
    last = ndim - 2;
  } else {
    expect = DtypeSize(dtype);
  }
  for (int i = last; i >= 0; --i) {
    if (ne[i] > 1 && nb[i] != expect) return false;
    expect *= ne[i];
  }
  return true;
}

int64_t TensorRef::Extent() const {
  if (ndim == 0) return IsQuantized(dtype) ? 0 : DtypeSize(dtype);
  for (int i = 0; i < ndim; ++i) {
    if (ne[i] == 0) return 0;
  }
  int64_t end = 0;
  if (IsQuantized(dtype)) {
    for (int i = 0; i + 1 < ndim; ++i) end += (ne[i] - 1) * nb[i];
    return end + ne[ndim - 1] / TSR_QBLOCK * BlockBytes(dtype);
  }
  for (int i = 0; i < ndim; ++i) end += (ne[i] - 1) * nb[i];
  return end + DtypeSize(dtype);
}

bool BroadcastsTo(const TensorRef& src, const TensorRef& dst) {
  if (src.ndim > dst.ndim) return false;
  for (int i = 1; i <= src.ndim; ++i) {
    const int64_t s = src.ne[src.ndim - i];
    if (s != 1 && s != dst.ne[dst.ndim - i]) return false;
  }
  return true;
}

bool SameShape(const TensorRef& a, const TensorRef& b) {
  if (a.ndim != b.ndim) return false;
  for (int i = 0; i < a.ndim; ++i) {
    if (a.ne[i] != b.ne[i]) return false;
  }
  return true;
}

int64_t NumMatrices(const TensorRef& t) {
  int64_t n = 1;
  for (int d = 0; d + 2 < t.ndim; ++d) n *= t.ne[d];
  return n;
}

int64_t MatrixOffset(const TensorRef& shape, const TensorRef& t, int64_t s) {
  int64_t off = 0;
  for (int d = shape.ndim - 3; d >= 0; --d) {
    off += (s % shape.ne[d]) * t.nb[d];
    s /= shape.ne[d];
  }
  return off;
}

std::string LoadTensorShape(const tsr_graph_view& g, int32_t index, TensorRef* out,
                            tsr_tensor* raw) {
  const std::string name = "tensor " + std::to_string(index);
  if (index < 0 || index >= g.n_tensors || g.tensors == nullptr)
    return "tensor index " + std::to_string(index) + " out of range";
  const tsr_tensor t = ReadAbiStruct(g.tensors, index);
  *raw = t;
  const int32_t dtype = RawEnum(t.dtype);
  if (dtype < 0 || dtype >= TSR_DTYPE_COUNT) return name + " has an invalid dtype";
  if (t.ndim < 0 || t.ndim > TSR_MAX_DIMS) return name + " has an invalid ndim";
  out->dtype = static_cast<tsr_dtype>(dtype);
  out->ndim = t.ndim;
  out->name = t.name;
  for (int i = 0; i < t.ndim; ++i) {
    if (t.ne[i] < 0 || t.nb[i] < 0) return name + " has a negative dim or stride";
    out->ne[i] = t.ne[i];
    out->nb[i] = t.nb[i];
  }
  if (IsQuantized(out->dtype) && (t.ndim == 0 || t.ne[t.ndim - 1] % TSR_QBLOCK != 0))
    return name + ": quantized rows must be a multiple of 32";
  return {};
}

std::string CheckTensorRange(int32_t index, const TensorRef& t, uint64_t offset,
                             uint64_t buffer_size) {
  const uint64_t extent = static_cast<uint64_t>(t.Extent());
  if (offset > buffer_size || extent > buffer_size - offset) {
    return "tensor " + std::to_string(index) + " (" + ShapeString(t) + " at offset " +
           std::to_string(offset) + ") overruns its buffer of " + std::to_string(buffer_size) +
           " bytes";
  }
  return {};
}

bool BroadcastsAsPeriod(const TensorRef& b, const TensorRef& out) {
  if (!b.IsContiguous()) return false;
  int first = 0;
  while (first < b.ndim && b.ne[first] == 1) ++first;
  for (int i = 0; i < b.ndim - first; ++i) {
    if (b.ne[b.ndim - 1 - i] != out.ne[out.ndim - 1 - i]) return false;
  }
  return true;
}

}  // namespace tessera::backend
