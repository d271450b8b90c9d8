// The per-op validators (the reference backend's rules) and the op name table.
#include "tessera/backend/validate.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>

namespace tessera::backend {
namespace {

// Returns the error of `expr` (a std::string, empty = OK) from the enclosing function.
#define TSR_BACKEND_TRY(expr)                   \
  do {                                          \
    if (std::string e_ = (expr); !e_.empty()) { \
      return e_;                                \
    }                                           \
  } while (0)

using Error = std::string;  // empty = OK

Error RequireDtype(const TensorRef& t, tsr_dtype dtype, const char* what) {
  if (t.dtype != dtype)
    return std::string(what) + " must be " + DtypeName(dtype) + ", got " + ShapeString(t);
  return {};
}

// Input i must be present (and, if dtype >= 0, of that dtype).
Error RequireInput(const NodeArgs& a, int i, const char* what, int dtype = -1) {
  const TensorRef* t = a.input(i);
  if (t == nullptr) return "missing input " + std::to_string(i) + " (" + what + ")";
  if (dtype >= 0) return RequireDtype(*t, static_cast<tsr_dtype>(dtype), what);
  return {};
}

Error RequireNdim(const TensorRef& t, int ndim, const char* what) {
  if (t.ndim != ndim)
    return std::string(what) + " must have " + std::to_string(ndim) + " dims, got " +
           ShapeString(t);
  return {};
}

Error RequireInnerContiguous(const TensorRef& t, const char* what) {
  if (!t.InnerContiguous()) return std::string(what) + " must be contiguous in its innermost dim";
  return {};
}

Error RequireF32Strides(const TensorRef& t, const char* what) {
  for (int i = 0; i < t.ndim; ++i) {
    if (t.nb[i] % 4 != 0) return std::string(what) + " strides must be multiples of 4 bytes";
  }
  return {};
}

// Strides in whole elements (quantized tensors: rows contiguous).
Error RequireElemStrides(const TensorRef& t, const char* what) {
  if (IsQuantized(t.dtype)) {
    if (t.IsContiguous() || t.ndim <= 1 || t.nb[t.ndim - 1] == 0) return {};
    return std::string(what) + ": quantized rows must be contiguous";
  }
  const int64_t es = DtypeSize(t.dtype);
  for (int i = 0; i < t.ndim; ++i) {
    if (es == 0 || t.nb[i] % es != 0)
      return std::string(what) + " strides must be multiples of its element size";
  }
  return {};
}

// A 1-D contiguous i32 [n] tensor (n < 0: any length).
Error RequireI32Vector(const TensorRef* t, int64_t n, const char* what) {
  if (t == nullptr) return std::string("missing ") + what;
  TSR_BACKEND_TRY(RequireDtype(*t, TSR_DTYPE_I32, what));
  if (t->ndim != 1 || (n >= 0 && t->ne[0] != n) || !t->InnerContiguous()) {
    return std::string(what) + " must be contiguous i32 [" + (n >= 0 ? std::to_string(n) : "n") +
           "], got " + ShapeString(*t);
  }
  return {};
}

bool IsFloat(tsr_dtype t) {
  return t == TSR_DTYPE_F32 || t == TSR_DTYPE_F16 || t == TSR_DTYPE_BF16;
}
bool IsWeightDtype(tsr_dtype t) {
  return IsFloat(t) || IsQuantized(t);
}

// ---- MATMUL ----

Error ValidateMatmul(const NodeArgs& a) {
  TSR_BACKEND_TRY(RequireInput(a, 0, "x", TSR_DTYPE_F32));
  TSR_BACKEND_TRY(RequireInput(a, 1, "weight"));
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  const TensorRef& out = *a.out;
  TSR_BACKEND_TRY(RequireDtype(out, TSR_DTYPE_F32, "output"));
  if (!IsWeightDtype(w.dtype)) return "unsupported weight dtype " + ShapeString(w);
  if (w.ndim != 2 && w.ndim != 3)
    return "weight must be [N, K] or [B, N, K], got " + ShapeString(w);
  const int64_t N = w.dim(-2), K = w.dim(-1);
  if (x.ndim < 1 || x.dim(-1) != K)
    return "x " + ShapeString(x) + " does not match weight " + ShapeString(w);
  if (w.ndim == 3 && (x.ndim != 3 || x.ne[0] != w.ne[0]))
    return "batched weight " + ShapeString(w) + " needs x [B, M, K], got " + ShapeString(x);
  if (out.ndim != x.ndim || out.dim(-1) != N)
    return "output " + ShapeString(out) + " must be x's shape with N last";
  for (int i = 0; i + 1 < x.ndim; ++i) {
    if (out.ne[i] != x.ne[i])
      return "output " + ShapeString(out) + " does not match x " + ShapeString(x);
  }
  TSR_BACKEND_TRY(RequireInnerContiguous(x, "x"));
  TSR_BACKEND_TRY(RequireInnerContiguous(w, "weight"));
  for (int i = 0; i < out.ndim; ++i) {
    if (out.nb[i] % 4 != 0 || x.nb[i] % 4 != 0) return "f32 strides must be multiples of 4 bytes";
  }
  if (const TensorRef* b = a.input(2)) {
    TSR_BACKEND_TRY(RequireDtype(*b, TSR_DTYPE_F32, "bias"));
    if (b->ndim != 1 || b->ne[0] != N || !b->InnerContiguous())
      return "bias must be contiguous [N], got " + ShapeString(*b);
  }
  return {};
}

// ---- elementwise ----

// ADD/SUB/MUL/DIV: in1 broadcasts to in0.
Error ValidateBinary(const NodeArgs& a) {
  TSR_BACKEND_TRY(RequireInput(a, 0, "in0", TSR_DTYPE_F32));
  TSR_BACKEND_TRY(RequireInput(a, 1, "in1", TSR_DTYPE_F32));
  TSR_BACKEND_TRY(RequireDtype(*a.out, TSR_DTYPE_F32, "output"));
  if (!SameShape(*a.in[0], *a.out))
    return "output " + ShapeString(*a.out) + " must have in0's shape " + ShapeString(*a.in[0]);
  if (!BroadcastsTo(*a.in[1], *a.in[0]))
    return "in1 " + ShapeString(*a.in[1]) + " does not broadcast to " + ShapeString(*a.in[0]);
  TSR_BACKEND_TRY(RequireF32Strides(*a.in[0], "in0"));
  TSR_BACKEND_TRY(RequireF32Strides(*a.in[1], "in1"));
  return RequireF32Strides(*a.out, "output");
}

// SWIGLU/GEGLU: as binary ops, without broadcasting.
Error ValidateGated(const NodeArgs& a) {
  TSR_BACKEND_TRY(ValidateBinary(a));
  if (!SameShape(*a.in[0], *a.in[1])) {
    return "gate " + ShapeString(*a.in[0]) + " and up " + ShapeString(*a.in[1]) +
           " must have one shape";
  }
  return {};
}

Error ValidateUnary(const NodeArgs& a) {
  TSR_BACKEND_TRY(RequireInput(a, 0, "in0", TSR_DTYPE_F32));
  TSR_BACKEND_TRY(RequireDtype(*a.out, TSR_DTYPE_F32, "output"));
  if (!SameShape(*a.in[0], *a.out))
    return "output " + ShapeString(*a.out) + " must have in0's shape " + ShapeString(*a.in[0]);
  if (a.node->op == TSR_OP_SOFTCAP && !(a.fp(0) != 0.0f && std::isfinite(a.fp(0))))
    return "SOFTCAP needs a finite non-zero cap in fparams[0]";
  TSR_BACKEND_TRY(RequireF32Strides(*a.in[0], "in0"));
  return RequireF32Strides(*a.out, "output");
}

// ---- row ops ----

Error ValidateRowOp(const NodeArgs& a) {
  TSR_BACKEND_TRY(RequireInput(a, 0, "x", TSR_DTYPE_F32));
  TSR_BACKEND_TRY(RequireDtype(*a.out, TSR_DTYPE_F32, "output"));
  TSR_BACKEND_TRY(RequireF32Strides(*a.in[0], "x"));
  return RequireF32Strides(*a.out, "output");
}

// Optional 1-D contiguous [D] parameter (norm weight / bias).
Error CheckVector(const NodeArgs& a, int i, int64_t d, const char* what) {
  const TensorRef* t = a.input(i);
  if (t == nullptr) return {};
  TSR_BACKEND_TRY(RequireDtype(*t, TSR_DTYPE_F32, what));
  if (t->ndim != 1 || t->ne[0] != d || !t->InnerContiguous()) {
    return std::string(what) + " must be contiguous [" + std::to_string(d) + "], got " +
           ShapeString(*t);
  }
  return {};
}

Error ValidateNorm(const NodeArgs& a) {
  TSR_BACKEND_TRY(ValidateRowOp(a));
  if (!SameShape(*a.in[0], *a.out) || a.in[0]->ndim < 1)
    return "output " + ShapeString(*a.out) + " must have x's shape " + ShapeString(*a.in[0]);
  const int64_t d = a.in[0]->dim(-1);
  TSR_BACKEND_TRY(CheckVector(a, 1, d, "weight"));
  return CheckVector(a, 2, d, "bias");
}

Error ValidateSoftmax(const NodeArgs& a) {
  TSR_BACKEND_TRY(ValidateRowOp(a));
  if (!SameShape(*a.in[0], *a.out) || a.in[0]->ndim < 1)
    return "output " + ShapeString(*a.out) + " must have x's shape " + ShapeString(*a.in[0]);
  if (const TensorRef* mask = a.input(1)) {
    TSR_BACKEND_TRY(RequireDtype(*mask, TSR_DTYPE_F32, "mask"));
    TSR_BACKEND_TRY(RequireF32Strides(*mask, "mask"));
    if (!BroadcastsTo(*mask, *a.in[0]))
      return "mask " + ShapeString(*mask) + " does not broadcast to " + ShapeString(*a.in[0]);
  }
  return {};
}

// A row reduction's output: x's shape with the last dim 1 (SUM/MEAN/MAX, ARGMAX).
Error RequireKeepDimRows(const TensorRef& x, const TensorRef& out) {
  bool ok = x.ndim >= 1 && out.ndim == x.ndim && out.ne[out.ndim - 1] == 1;
  for (int i = 0; ok && i + 1 < x.ndim; ++i) ok = out.ne[i] == x.ne[i];
  if (!ok)
    return "output " + ShapeString(out) + " must be x's shape " + ShapeString(x) +
           " with the last dim 1";
  return {};
}

Error ValidateReduce(const NodeArgs& a) {
  TSR_BACKEND_TRY(ValidateRowOp(a));
  const TensorRef& x = *a.in[0];
  TSR_BACKEND_TRY(RequireKeepDimRows(x, *a.out));
  if (x.dim(-1) == 0 && a.node->op != TSR_OP_SUM) return "MEAN/MAX of an empty row";
  return {};
}

// ARGMAX: x f32 [..., N] (N >= 1, any element strides) -> out i32 [..., 1] (x's outer dims).
Error ValidateArgmax(const NodeArgs& a) {
  TSR_BACKEND_TRY(RequireInput(a, 0, "x", TSR_DTYPE_F32));
  TSR_BACKEND_TRY(RequireDtype(*a.out, TSR_DTYPE_I32, "output"));
  const TensorRef& x = *a.in[0];
  TSR_BACKEND_TRY(RequireKeepDimRows(x, *a.out));
  if (x.dim(-1) < 1 || x.dim(-1) > INT32_MAX)
    return "ARGMAX rows must have 1..2^31-1 values (i32 indices), got " + ShapeString(x);
  TSR_BACKEND_TRY(RequireF32Strides(x, "x"));
  return RequireElemStrides(*a.out, "output");
}

// ---- ROPE ----

Error ValidateRope(const NodeArgs& a) {
  TSR_BACKEND_TRY(RequireInput(a, 0, "x", TSR_DTYPE_F32));
  const TensorRef& x = *a.in[0];
  TSR_BACKEND_TRY(RequireNdim(x, 3, "x"));
  TSR_BACKEND_TRY(RequireI32Vector(a.input(1), x.ne[0], "positions"));
  TSR_BACKEND_TRY(RequireInput(a, 2, "inv_freq", TSR_DTYPE_F32));
  const int64_t D = x.ne[2];
  const int64_t R = a.ip(1) == 0 ? D : a.ip(1);
  if (R < 0 || R > D || R % 2 != 0)
    return "rotated dims (iparams[1]) must be even and <= " + std::to_string(D);
  if (a.ip(0) != 0 && a.ip(0) != 1)
    return "rope mode (iparams[0]) must be 0 (neox) or 1 (interleaved)";
  const TensorRef& f = *a.in[2];
  if (f.ndim != 1 || f.ne[0] != R / 2 || !f.InnerContiguous())
    return "inv_freq must be contiguous f32 [" + std::to_string(R / 2) + "], got " + ShapeString(f);
  TSR_BACKEND_TRY(RequireDtype(*a.out, TSR_DTYPE_F32, "output"));
  if (!SameShape(x, *a.out))
    return "output " + ShapeString(*a.out) + " must have x's shape " + ShapeString(x);
  TSR_BACKEND_TRY(RequireElemStrides(x, "x"));
  return RequireElemStrides(*a.out, "output");
}

// ---- attention ----

// q [T, Hq, D] f32 and out [T, Hq, Dv] f32; hkv/d/dv from the K/V tensors.
Error CheckQueryAndOut(const NodeArgs& a, int64_t hkv, int64_t d, int64_t dv) {
  const TensorRef& q = *a.in[0];
  const TensorRef& out = *a.out;
  TSR_BACKEND_TRY(RequireDtype(q, TSR_DTYPE_F32, "q"));
  TSR_BACKEND_TRY(RequireNdim(q, 3, "q"));
  TSR_BACKEND_TRY(RequireDtype(out, TSR_DTYPE_F32, "output"));
  TSR_BACKEND_TRY(RequireNdim(out, 3, "output"));
  if (q.ne[2] != d)
    return "q " + ShapeString(q) + " head size differs from k's " + std::to_string(d);
  if (hkv <= 0 || q.ne[1] % hkv != 0) {
    return "q heads " + std::to_string(q.ne[1]) + " must be a multiple of kv heads " +
           std::to_string(hkv);
  }
  if (out.ne[0] != q.ne[0] || out.ne[1] != q.ne[1] || out.ne[2] != dv) {
    return "output " + ShapeString(out) + " must be [T, Hq, Dv] = [" + std::to_string(q.ne[0]) +
           ", " + std::to_string(q.ne[1]) + ", " + std::to_string(dv) + "]";
  }
  TSR_BACKEND_TRY(RequireInnerContiguous(q, "q"));
  TSR_BACKEND_TRY(RequireInnerContiguous(out, "output"));
  TSR_BACKEND_TRY(RequireElemStrides(q, "q"));
  TSR_BACKEND_TRY(RequireElemStrides(out, "output"));
  if (a.ip(1) < 0) return "sliding window (iparams[1]) must be >= 0";
  if (!(a.fp(1) >= 0.0f)) return "soft-cap (fparams[1]) must be >= 0";
  return {};
}

// K and V of one dtype (f32/f16/bf16), inner contiguous, `ndim` dims, head dim last.
Error CheckKv(const TensorRef& k, const TensorRef& v, int ndim) {
  if (!IsFloat(k.dtype) || k.dtype != v.dtype)
    return "k " + ShapeString(k) + " and v " + ShapeString(v) + " must share one of f32/f16/bf16";
  TSR_BACKEND_TRY(RequireNdim(k, ndim, "k"));
  TSR_BACKEND_TRY(RequireNdim(v, ndim, "v"));
  for (int i = 0; i + 1 < ndim; ++i) {
    if (k.ne[i] != v.ne[i]) return "k " + ShapeString(k) + " and v " + ShapeString(v) + " disagree";
  }
  TSR_BACKEND_TRY(RequireInnerContiguous(k, "k"));
  TSR_BACKEND_TRY(RequireInnerContiguous(v, "v"));
  TSR_BACKEND_TRY(RequireElemStrides(k, "k"));
  return RequireElemStrides(v, "v");
}

Error ValidateAttention(const NodeArgs& a) {
  for (int i = 0; i < 3; ++i)
    TSR_BACKEND_TRY(RequireInput(a, i, i == 0 ? "q" : (i == 1 ? "k" : "v")));
  const TensorRef& k = *a.in[1];
  const TensorRef& v = *a.in[2];
  TSR_BACKEND_TRY(CheckKv(k, v, 3));
  TSR_BACKEND_TRY(CheckQueryAndOut(a, k.ne[1], k.ne[2], v.ne[2]));
  const TensorRef* cu_q = a.input(3);
  TSR_BACKEND_TRY(RequireI32Vector(cu_q, -1, "cu_q"));
  if (cu_q->ne[0] < 1) return "cu_q needs S + 1 >= 1 entries";
  return RequireI32Vector(a.input(4), cu_q->ne[0], "cu_k");
}

Error ValidatePagedAttention(const NodeArgs& a) {
  for (int i = 0; i < 3; ++i)
    TSR_BACKEND_TRY(RequireInput(a, i, i == 0 ? "q" : (i == 1 ? "k_cache" : "v_cache")));
  const TensorRef& k = *a.in[1];
  const TensorRef& v = *a.in[2];
  TSR_BACKEND_TRY(CheckKv(k, v, 4));
  TSR_BACKEND_TRY(CheckQueryAndOut(a, k.ne[2], k.ne[3], v.ne[3]));
  if (k.ne[1] < 1) return "cache block size must be >= 1";
  const TensorRef* table = a.input(3);
  if (table == nullptr) return "missing block_table";
  TSR_BACKEND_TRY(RequireDtype(*table, TSR_DTYPE_I32, "block_table"));
  TSR_BACKEND_TRY(RequireNdim(*table, 2, "block_table"));
  TSR_BACKEND_TRY(RequireInnerContiguous(*table, "block_table"));
  if (table->nb[0] % 4 != 0) return "block_table row stride must be a multiple of 4";
  TSR_BACKEND_TRY(RequireI32Vector(a.input(4), table->ne[0], "kv_lens"));
  return RequireI32Vector(a.input(5), table->ne[0] + 1, "cu_q");
}

Error ValidateKvWrite(const NodeArgs& a) {
  TSR_BACKEND_TRY(RequireInput(a, 0, "cache"));
  TSR_BACKEND_TRY(RequireInput(a, 1, "rows", TSR_DTYPE_F32));
  const TensorRef& cache = *a.in[0];
  const TensorRef& rows = *a.in[1];
  if (!IsFloat(cache.dtype)) return "cache must be f32/f16/bf16, got " + ShapeString(cache);
  TSR_BACKEND_TRY(RequireNdim(cache, 4, "cache"));
  TSR_BACKEND_TRY(RequireNdim(rows, 3, "rows"));
  if (cache.ne[1] < 1) return "cache block size must be >= 1";
  if (rows.ne[1] != cache.ne[2] || rows.ne[2] != cache.ne[3])
    return "rows " + ShapeString(rows) + " do not match cache " + ShapeString(cache);
  TSR_BACKEND_TRY(RequireI32Vector(a.input(2), rows.ne[0], "slots"));
  if (a.out->dtype != cache.dtype || !SameShape(*a.out, cache))
    return "output " + ShapeString(*a.out) + " must be the cache " + ShapeString(cache);
  TSR_BACKEND_TRY(RequireElemStrides(cache, "cache"));
  TSR_BACKEND_TRY(RequireElemStrides(*a.out, "output"));
  return RequireElemStrides(rows, "rows");
}

// ---- data movement ----

Error ValidateCopy(const NodeArgs& a) {
  TSR_BACKEND_TRY(RequireInput(a, 0, "in0"));
  const TensorRef& in = *a.in[0];
  const TensorRef& out = *a.out;
  TSR_BACKEND_TRY(RequireElemStrides(in, "input"));
  TSR_BACKEND_TRY(RequireElemStrides(out, "output"));
  if (IsQuantized(in.dtype) || IsQuantized(out.dtype)) {
    const bool ok = (in.dtype == out.dtype) || (IsQuantized(in.dtype) && IsFloat(out.dtype)) ||
                    (in.dtype == TSR_DTYPE_F32 && IsQuantized(out.dtype));
    if (!ok) return "cannot convert " + ShapeString(in) + " to " + ShapeString(out);
    if (!SameShape(in, out))
      return "quantize/dequantize needs one shape: " + ShapeString(in) + " vs " + ShapeString(out);
    // Quantized values come in rows of 32-blocks: a scalar has no row.
    if (in.ndim == 0) return "quantized tensors need at least one dim";
    return {};
  }
  if (!(out.dtype == in.dtype || IsFloat(out.dtype) || out.dtype == TSR_DTYPE_I32))
    return "cannot convert " + ShapeString(in) + " to " + ShapeString(out);
  if (in.NumElements() != out.NumElements())
    return "element counts differ: " + ShapeString(in) + " vs " + ShapeString(out);
  return {};
}

Error ValidateGetRows(const NodeArgs& a) {
  TSR_BACKEND_TRY(RequireInput(a, 0, "table"));
  TSR_BACKEND_TRY(RequireInput(a, 1, "ids", TSR_DTYPE_I32));
  const TensorRef& table = *a.in[0];
  const TensorRef& ids = *a.in[1];
  const TensorRef& out = *a.out;
  TSR_BACKEND_TRY(RequireNdim(table, 2, "table"));
  TSR_BACKEND_TRY(RequireNdim(ids, 1, "ids"));
  TSR_BACKEND_TRY(RequireDtype(out, TSR_DTYPE_F32, "output"));
  TSR_BACKEND_TRY(RequireNdim(out, 2, "output"));
  if (out.ne[0] != ids.ne[0] || out.ne[1] != table.ne[1]) {
    return "output " + ShapeString(out) + " must be [T, D] = [" + std::to_string(ids.ne[0]) + ", " +
           std::to_string(table.ne[1]) + "]";
  }
  if (ids.nb[0] % 4 != 0) return "ids stride must be a multiple of 4";
  TSR_BACKEND_TRY(RequireElemStrides(table, "table"));
  return RequireElemStrides(out, "output");
}

Error ValidateConcat(const NodeArgs& a) {
  TSR_BACKEND_TRY(RequireInput(a, 0, "in0"));
  TSR_BACKEND_TRY(RequireInput(a, 1, "in1"));
  const TensorRef& x = *a.in[0];
  const TensorRef& y = *a.in[1];
  const TensorRef& out = *a.out;
  if (DtypeSize(x.dtype) == 0 || x.dtype != y.dtype || out.dtype != x.dtype) {
    return "concat needs one plain dtype: " + ShapeString(x) + ", " + ShapeString(y) + " -> " +
           ShapeString(out);
  }
  if (x.ndim != y.ndim || out.ndim != x.ndim || x.ndim == 0) return "concat needs equal ranks >= 1";
  int64_t ax = a.ip(0);
  if (ax < 0) ax += x.ndim;
  if (ax < 0 || ax >= x.ndim) return "concat axis " + std::to_string(a.ip(0)) + " out of range";
  for (int i = 0; i < x.ndim; ++i) {
    const int64_t want = i == ax ? x.ne[i] + y.ne[i] : x.ne[i];
    if ((i != ax && y.ne[i] != x.ne[i]) || out.ne[i] != want) {
      return "cannot concat " + ShapeString(x) + " and " + ShapeString(y) + " into " +
             ShapeString(out) + " along " + std::to_string(ax);
    }
  }
  TSR_BACKEND_TRY(RequireElemStrides(x, "in0"));
  TSR_BACKEND_TRY(RequireElemStrides(y, "in1"));
  return RequireElemStrides(out, "output");
}

// ---- convolutions ----

Error ValidateConv(const NodeArgs& a) {
  const bool is2d = a.node->op == TSR_OP_CONV2D;
  const int nd = is2d ? 4 : 3;
  TSR_BACKEND_TRY(RequireInput(a, 0, "x", TSR_DTYPE_F32));
  TSR_BACKEND_TRY(RequireInput(a, 1, "weight"));
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  const TensorRef& out = *a.out;
  TSR_BACKEND_TRY(RequireNdim(x, nd, "x"));
  TSR_BACKEND_TRY(RequireNdim(w, nd, "weight"));
  TSR_BACKEND_TRY(RequireDtype(out, TSR_DTYPE_F32, "output"));
  TSR_BACKEND_TRY(RequireNdim(out, nd, "output"));
  for (int i = 0; i < (is2d ? 7 : 4); ++i) {
    if (a.ip(i) < 0) return "conv iparams must be >= 0";
  }
  if (!IsWeightDtype(w.dtype) || !w.IsContiguous())
    return "weight must be contiguous f32/f16/bf16/q8/q4, got " + ShapeString(w);
  const int64_t groups = std::max<int64_t>(1, a.ip(is2d ? 6 : 3));
  const int64_t cin = x.ne[1], cout = w.ne[0];
  if (cin % groups != 0 || cout % groups != 0 || w.ne[1] != cin / groups) {
    return "channels do not split into " + std::to_string(groups) + " groups: x " + ShapeString(x) +
           ", weight " + ShapeString(w);
  }
  ConvGeometry c;
  TSR_BACKEND_TRY(ConvGeometryFor(a, &c));
  for (int i = 0; i < nd; ++i) {
    if (x.nb[i] % 4 != 0 || out.nb[i] % 4 != 0) return "f32 strides must be multiples of 4 bytes";
  }
  if (const TensorRef* bias = a.input(2)) {
    TSR_BACKEND_TRY(RequireDtype(*bias, TSR_DTYPE_F32, "bias"));
    if (bias->ndim != 1 || bias->ne[0] != cout || !bias->InnerContiguous())
      return "bias must be contiguous [Cout]";
  }
  return {};
}

using Validator = Error (*)(const NodeArgs&);

struct OpInfo {
  const char* name = "UNKNOWN_OP";
  Validator validate = nullptr;
};

constexpr std::array<OpInfo, TSR_OP_COUNT> MakeOpTable() {
  std::array<OpInfo, TSR_OP_COUNT> t{};
  t[TSR_OP_NONE].name = "NONE";
#define TSR_BACKEND_OP_ENTRY(op, family) t[TSR_OP_##op] = {#op, Validate##family};
  TESSERA_BACKEND_OPS(TSR_BACKEND_OP_ENTRY)
  TESSERA_BACKEND_OPTIONAL_OPS(TSR_BACKEND_OP_ENTRY)
#undef TSR_BACKEND_OP_ENTRY
  return t;
}
constexpr std::array<OpInfo, TSR_OP_COUNT> kOps = MakeOpTable();

}  // namespace

const char* OpName(int op) {
  if (op < 0 || op >= TSR_OP_COUNT) return "UNKNOWN_OP";
  return kOps[op].name;
}

std::string ValidateNode(const NodeArgs& a) {
  const int op = RawEnum(a.node->op);
  if (op <= TSR_OP_NONE || op >= TSR_OP_COUNT || kOps[op].validate == nullptr)
    return "unknown op " + std::to_string(op);
  if (a.out == nullptr) return "missing output";
  return kOps[op].validate(a);
}

std::string ValidateKernelNode(const NodeArgs& a, const KernelLimits& limits, bool* unsupported) {
  *unsupported = false;
  if (std::string e = ValidateNode(a); !e.empty()) return e;
  switch (a.node->op) {
    case TSR_OP_MATMUL: {
      const TensorRef& w = *a.in[1];
      if (!IsQuantized(w.dtype) && w.stride(-2) % DtypeSize(w.dtype) != 0)
        return "weight row stride must be a multiple of its element size";
      return {};
    }
    case TSR_OP_ATTENTION:
    case TSR_OP_PAGED_ATTENTION: {
      // One work group (or item) holds a query head's row in registers / shared memory.
      const bool qk_capped = limits.max_qk_head_dim > 0;
      if ((qk_capped && a.in[1]->dim(-1) > limits.max_qk_head_dim) ||
          (limits.max_v_head_dim > 0 && a.in[2]->dim(-1) > limits.max_v_head_dim)) {
        *unsupported = true;
        return std::string(limits.attention) +
               (qk_capped ? " supports head dims up to " : " supports value head dims up to ") +
               std::to_string(qk_capped ? limits.max_qk_head_dim : limits.max_v_head_dim);
      }
      return {};
    }
    default: return {};
  }
}

void ConcatParts(const NodeArgs& a, TensorRef* first, TensorRef* second) {
  const TensorRef& x = *a.in[0];
  const TensorRef& y = *a.in[1];
  int64_t ax = a.ip(0);
  if (ax < 0) ax += x.ndim;
  *first = *a.out;
  for (int i = 0; i < x.ndim; ++i) first->ne[i] = x.ne[i];
  *second = *first;
  second->ne[ax] = y.ne[ax];
  if (a.out->data != nullptr) second->data = a.out->data + x.ne[ax] * a.out->nb[ax];
}

std::string ConvGeometryFor(const NodeArgs& a, ConvGeometry* c) {
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  const TensorRef& out = *a.out;
  const bool is2d = a.node->op == TSR_OP_CONV2D;
  c->B = x.ne[0];
  c->Cin = x.ne[1];
  c->H = is2d ? x.ne[2] : 1;
  c->W = x.dim(-1);
  c->Cout = w.ne[0];
  c->KH = is2d ? w.ne[2] : 1;
  c->KW = w.dim(-1);
  if (is2d) {
    c->sh = a.ip(0), c->sw = a.ip(1), c->ph = a.ip(2), c->pw = a.ip(3);
    c->dh = a.ip(4), c->dw = a.ip(5), c->groups = a.ip(6);
  } else {
    c->sh = 1, c->sw = a.ip(0), c->ph = 0, c->pw = a.ip(1), c->dh = 1, c->dw = a.ip(2);
    c->groups = a.ip(3);
  }
  c->sh = std::max<int64_t>(c->sh, 1), c->sw = std::max<int64_t>(c->sw, 1);
  c->dh = std::max<int64_t>(c->dh, 1), c->dw = std::max<int64_t>(c->dw, 1);
  c->groups = std::max<int64_t>(c->groups, 1);
  // Span of the padded input the kernel's first placement leaves; negative = it does not fit
  // (checked before dividing: C++ division would round a small negative span up to 0).
  const int64_t span_h = c->H + 2 * c->ph - c->dh * (c->KH - 1) - 1;
  const int64_t span_w = c->W + 2 * c->pw - c->dw * (c->KW - 1) - 1;
  c->Ho = span_h / c->sh + 1;
  c->Wo = span_w / c->sw + 1;
  if (span_h < 0 || span_w < 0 || c->Ho < 1 || c->Wo < 1)
    return "the kernel does not fit the padded input";
  const bool shape_ok = out.ne[0] == c->B && out.ne[1] == c->Cout && out.dim(-1) == c->Wo &&
                        (!is2d || out.ne[2] == c->Ho);
  if (!shape_ok)
    return "output " + ShapeString(out) + " does not match the convolution's output shape";
  return {};
}

}  // namespace tessera::backend
