// TensorRef: a backend's view of a tsr_tensor (shape, byte strides, data pointer), plus the
// dtype and shape helpers every backend plugin shares. Only the plugin ABI headers are used here:
// plugins never depend on the core.
#ifndef TESSERA_BACKEND_TENSOR_H_
#define TESSERA_BACKEND_TENSOR_H_

#include <algorithm>
#include <cstdint>
#include <string>

#include "tessera/plugin_api.h"
#include "tessera/quant_formats.h"

namespace tessera::backend {

// Bytes of one element; 0 for the block-quantized types (see BlockBytes).
inline int64_t DtypeSize(tsr_dtype t) {
  switch (t) {
    case TSR_DTYPE_F32:
    case TSR_DTYPE_I32: return 4;
    case TSR_DTYPE_F16:
    case TSR_DTYPE_BF16: return 2;
    case TSR_DTYPE_I64: return 8;
    case TSR_DTYPE_I8:
    case TSR_DTYPE_U8: return 1;
    default: return 0;
  }
}

inline bool IsQuantized(tsr_dtype t) {
  return t == TSR_DTYPE_Q8_B32 || t == TSR_DTYPE_Q4_B32;
}

// Bytes of one 32-value block of a quantized type; 0 otherwise.
inline int64_t BlockBytes(tsr_dtype t) {
  return t == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES
                               : (t == TSR_DTYPE_Q4_B32 ? TSR_BLOCK_Q4_BYTES : 0);
}

// "f32", "q4_b32", ...; "invalid-dtype" for values outside the enum.
const char* DtypeName(tsr_dtype t);

struct TensorRef {
  tsr_dtype dtype = TSR_DTYPE_F32;
  int ndim = 0;
  int64_t ne[TSR_MAX_DIMS] = {};  // shape, outermost first
  int64_t nb[TSR_MAX_DIMS] = {};  // byte strides
  // Element [0,...,0] in the backend's address space (host or device); null while only
  // validating.
  uint8_t* data = nullptr;
  const char* name = nullptr;

  // Dimension i, counted from the end when negative (dim(-1) is the innermost). 1 when the
  // tensor has fewer dims (scalars broadcast).
  int64_t dim(int i) const {
    const int k = i < 0 ? ndim + i : i;
    return (k < 0 || k >= ndim) ? 1 : ne[k];
  }
  // Byte stride of dim(i), 0 when the dimension does not exist.
  int64_t stride(int i) const {
    const int k = i < 0 ? ndim + i : i;
    return (k < 0 || k >= ndim) ? 0 : nb[k];
  }
  int64_t NumElements() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= ne[i];
    return n;
  }
  // Product of every dimension but the innermost.
  int64_t Rows() const {
    int64_t n = 1;
    for (int i = 0; i + 1 < ndim; ++i) n *= ne[i];
    return n;
  }
  // Innermost elements are adjacent (always true of quantized rows).
  bool InnerContiguous() const {
    return ndim == 0 || IsQuantized(dtype) || ne[ndim - 1] <= 1 || nb[ndim - 1] == DtypeSize(dtype);
  }
  bool IsContiguous() const;
  // Bytes from data to one past the last byte any element occupies (0 for an empty tensor).
  int64_t Extent() const;

  template <typename T>
  T* As() const {
    return reinterpret_cast<T*>(data);
  }
};

// "f32[2, 3, 4]" for error messages.
std::string ShapeString(const TensorRef& t);

// True when `src` broadcasts to `dst` (numpy rules, trailing dims aligned, src.ndim <= dst.ndim).
bool BroadcastsTo(const TensorRef& src, const TensorRef& dst);
bool SameShape(const TensorRef& a, const TensorRef& b);

// `t` viewed as a stack of matrices [S][rows, cols] over its last two dims: S is the product of
// the dims above them (1 for fewer than three dims).
int64_t NumMatrices(const TensorRef& t);
// Byte offset in `t` of matrix s of `shape` (row-major over shape's dims [0, ndim - 2)); `t` has
// at least those leading dims (e.g. a matmul's output walked with its input's shape).
int64_t MatrixOffset(const TensorRef& shape, const TensorRef& t, int64_t s);

// Whether b broadcasts to `out` as a repeated contiguous block: b's dims, leading 1s dropped,
// equal out's trailing dims, so out's flat index i reads b[i % numel(b)] (the fast elementwise
// path of the GPU backends).
bool BroadcastsAsPeriod(const TensorRef& b, const TensorRef& out);

// A broadcast walk of up to three tensors (ts[k] in slot k; a null entry keeps zero strides) over
// the dims of `shape` (all, or all but the innermost when `outer_only`), numpy-broadcasting: a
// tensor's stride is 0 where its dim is 1 or missing. Walk is a kernel's parameter struct with
// ndim, numel, ne[] and s[3][] (byte strides of tensor k along dim d), value-initialized here.
template <typename Walk>
Walk BroadcastWalk(const TensorRef& shape, const TensorRef* const* ts, int n, bool outer_only) {
  Walk w{};
  w.ndim = outer_only ? std::max(0, shape.ndim - 1) : shape.ndim;
  w.numel = 1;
  for (int d = 0; d < w.ndim; ++d) {
    w.ne[d] = shape.ne[d];
    w.numel *= shape.ne[d];
  }
  for (int k = 0; k < n && k < 3; ++k) {
    if (ts[k] == nullptr) continue;
    const TensorRef& t = *ts[k];
    const int shift = shape.ndim - t.ndim;  // t's dim j sits at shape dim j + shift
    for (int d = 0; d < w.ndim; ++d) {
      const int j = d - shift;
      w.s[k][d] = (j < 0 || t.ne[j] == 1) ? 0 : t.nb[j];
    }
  }
  return w;
}

}  // namespace tessera::backend

#endif  // TESSERA_BACKEND_TENSOR_H_
