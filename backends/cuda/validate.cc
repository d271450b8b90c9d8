// Validators: what the CUDA backend accepts, checked from shapes, dtypes, strides and params only
// (supports_op has no data). They accept exactly what the CPU reference backend accepts (same
// rules, same messages), plus the GPU's own limits (attention head dims <= 256). Checks of data
// values (ids, slots, sequence lengths, block tables) happen in the kernels, which flag bad
// values in the device error word instead of reading out of bounds (see plugin.cc).
#include <algorithm>
#include <cmath>

#include "backends/cuda/ops.h"

namespace tessera::cuda {

Status RequireDtype(const TensorRef& t, tsr_dtype dtype, const char* what) {
  if (t.dtype != dtype) {
    return InvalidArgument(std::string(what) + " must be " + DtypeName(dtype) + ", got " +
                           ShapeString(t));
  }
  return OkStatus();
}

namespace {

Status RequireInput(const OpArgs& a, int i, const char* what, int dtype = -1) {
  const TensorRef* t = a.input(i);
  if (t == nullptr)
    return InvalidArgument(std::string("missing input ") + std::to_string(i) + " (" + what + ")");
  if (dtype >= 0) return RequireDtype(*t, static_cast<tsr_dtype>(dtype), what);
  return OkStatus();
}

Status RequireNdim(const TensorRef& t, int ndim, const char* what) {
  if (t.ndim != ndim) {
    return InvalidArgument(std::string(what) + " must have " + std::to_string(ndim) +
                           " dims, got " + ShapeString(t));
  }
  return OkStatus();
}

Status RequireInnerContiguous(const TensorRef& t, const char* what) {
  if (!t.InnerContiguous())
    return InvalidArgument(std::string(what) + " must be contiguous in its innermost dim");
  return OkStatus();
}

Status RequireF32Strides(const TensorRef& t, const char* what) {
  for (int i = 0; i < t.ndim; ++i) {
    if (t.nb[i] % 4 != 0)
      return InvalidArgument(std::string(what) + " strides must be multiples of 4 bytes");
  }
  return OkStatus();
}

// Element strides (quantized tensors: rows contiguous).
Status RequireElemStrides(const TensorRef& t, const char* what) {
  if (IsQuantized(t.dtype)) {
    return t.IsContiguous() || t.ndim <= 1 || t.nb[t.ndim - 1] == 0
               ? OkStatus()
               : InvalidArgument(std::string(what) + ": quantized rows must be contiguous");
  }
  const int64_t es = DtypeSize(t.dtype);
  for (int i = 0; i < t.ndim; ++i) {
    if (es == 0 || t.nb[i] % es != 0)
      return InvalidArgument(std::string(what) + " strides must be multiples of its element size");
  }
  return OkStatus();
}

Status RequireI32Vector(const TensorRef* t, int64_t n, const char* what) {
  if (t == nullptr) return InvalidArgument(std::string("missing ") + what);
  TSR_RETURN_IF_ERROR(RequireDtype(*t, TSR_DTYPE_I32, what));
  if (t->ndim != 1 || (n >= 0 && t->ne[0] != n) || !t->InnerContiguous()) {
    return InvalidArgument(std::string(what) + " must be contiguous i32 [" +
                           (n >= 0 ? std::to_string(n) : "n") + "], got " + ShapeString(*t));
  }
  return OkStatus();
}

bool IsWeightDtype(tsr_dtype t) {
  return t == TSR_DTYPE_F32 || t == TSR_DTYPE_F16 || t == TSR_DTYPE_BF16 || IsQuantized(t);
}
bool IsKvDtype(tsr_dtype t) {
  return t == TSR_DTYPE_F32 || t == TSR_DTYPE_F16 || t == TSR_DTYPE_BF16;
}
bool IsFloatOut(tsr_dtype t) {
  return t == TSR_DTYPE_F32 || t == TSR_DTYPE_F16 || t == TSR_DTYPE_BF16;
}

Status CheckVector(const OpArgs& a, int i, int64_t d, const char* what) {
  const TensorRef* t = a.input(i);
  if (t == nullptr) return OkStatus();
  TSR_RETURN_IF_ERROR(RequireDtype(*t, TSR_DTYPE_F32, what));
  if (t->ndim != 1 || t->ne[0] != d || !t->InnerContiguous()) {
    return InvalidArgument(std::string(what) + " must be contiguous [" + std::to_string(d) +
                           "], got " + ShapeString(*t));
  }
  return OkStatus();
}

Status ValidateRowOp(const OpArgs& a) {
  TSR_RETURN_IF_ERROR(RequireInput(a, 0, "x", TSR_DTYPE_F32));
  TSR_RETURN_IF_ERROR(RequireDtype(*a.out, TSR_DTYPE_F32, "output"));
  TSR_RETURN_IF_ERROR(RequireF32Strides(*a.in[0], "x"));
  return RequireF32Strides(*a.out, "output");
}

// q [T, Hq, D] f32 and out [T, Hq, Dv] f32; hkv/d/dv from the K/V tensors.
Status CheckQueryAndOut(const OpArgs& a, int64_t hkv, int64_t d, int64_t dv) {
  const TensorRef& q = *a.in[0];
  const TensorRef& out = *a.out;
  TSR_RETURN_IF_ERROR(RequireDtype(q, TSR_DTYPE_F32, "q"));
  TSR_RETURN_IF_ERROR(RequireNdim(q, 3, "q"));
  TSR_RETURN_IF_ERROR(RequireDtype(out, TSR_DTYPE_F32, "output"));
  TSR_RETURN_IF_ERROR(RequireNdim(out, 3, "output"));
  if (q.ne[2] != d)
    return InvalidArgument("q " + ShapeString(q) + " head size differs from k's " +
                           std::to_string(d));
  if (hkv <= 0 || q.ne[1] % hkv != 0)
    return InvalidArgument("q heads " + std::to_string(q.ne[1]) +
                           " must be a multiple of kv heads " + std::to_string(hkv));
  if (out.ne[0] != q.ne[0] || out.ne[1] != q.ne[1] || out.ne[2] != dv) {
    return InvalidArgument("output " + ShapeString(out) + " must be [T, Hq, Dv]");
  }
  if (d > kAttnMaxHeadDim || dv > kAttnMaxHeadDim) {
    return Unsupported("cuda attention supports head dims up to " +
                       std::to_string(kAttnMaxHeadDim));
  }
  TSR_RETURN_IF_ERROR(RequireInnerContiguous(q, "q"));
  TSR_RETURN_IF_ERROR(RequireInnerContiguous(out, "output"));
  TSR_RETURN_IF_ERROR(RequireElemStrides(q, "q"));
  TSR_RETURN_IF_ERROR(RequireElemStrides(out, "output"));
  if (a.ip(1) < 0) return InvalidArgument("sliding window (iparams[1]) must be >= 0");
  if (!(a.fp(1) >= 0.0f)) return InvalidArgument("soft-cap (fparams[1]) must be >= 0");
  return OkStatus();
}

Status CheckKv(const TensorRef& k, const TensorRef& v, int ndim) {
  if (!IsKvDtype(k.dtype) || k.dtype != v.dtype)
    return InvalidArgument("k " + ShapeString(k) + " and v " + ShapeString(v) +
                           " must share one of f32/f16/bf16");
  TSR_RETURN_IF_ERROR(RequireNdim(k, ndim, "k"));
  TSR_RETURN_IF_ERROR(RequireNdim(v, ndim, "v"));
  for (int i = 0; i + 1 < ndim; ++i) {
    if (k.ne[i] != v.ne[i])
      return InvalidArgument("k " + ShapeString(k) + " and v " + ShapeString(v) + " disagree");
  }
  TSR_RETURN_IF_ERROR(RequireInnerContiguous(k, "k"));
  TSR_RETURN_IF_ERROR(RequireInnerContiguous(v, "v"));
  TSR_RETURN_IF_ERROR(RequireElemStrides(k, "k"));
  return RequireElemStrides(v, "v");
}

}  // namespace

// ---- MATMUL ----

Status ValidateMatmul(const OpArgs& a) {
  TSR_RETURN_IF_ERROR(RequireInput(a, 0, "x", TSR_DTYPE_F32));
  TSR_RETURN_IF_ERROR(RequireInput(a, 1, "weight"));
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  const TensorRef& out = *a.out;
  TSR_RETURN_IF_ERROR(RequireDtype(out, TSR_DTYPE_F32, "output"));
  if (!IsWeightDtype(w.dtype)) return InvalidArgument("unsupported weight dtype " + ShapeString(w));
  if (w.ndim != 2 && w.ndim != 3)
    return InvalidArgument("weight must be [N, K] or [B, N, K], got " + ShapeString(w));
  const int64_t N = w.dim(-2), K = w.dim(-1);
  if (x.ndim < 1 || x.dim(-1) != K)
    return InvalidArgument("x " + ShapeString(x) + " does not match weight " + ShapeString(w));
  if (w.ndim == 3 && (x.ndim != 3 || x.ne[0] != w.ne[0])) {
    return InvalidArgument("batched weight " + ShapeString(w) + " needs x [B, M, K], got " +
                           ShapeString(x));
  }
  if (out.ndim != x.ndim || out.dim(-1) != N)
    return InvalidArgument("output " + ShapeString(out) + " must be x's shape with N last");
  for (int i = 0; i + 1 < x.ndim; ++i) {
    if (out.ne[i] != x.ne[i])
      return InvalidArgument("output " + ShapeString(out) + " does not match x " + ShapeString(x));
  }
  TSR_RETURN_IF_ERROR(RequireInnerContiguous(x, "x"));
  TSR_RETURN_IF_ERROR(RequireInnerContiguous(w, "weight"));
  for (int i = 0; i < out.ndim; ++i) {
    if (out.nb[i] % 4 != 0 || x.nb[i] % 4 != 0)
      return InvalidArgument("f32 strides must be multiples of 4 bytes");
  }
  if (!IsQuantized(w.dtype) && w.stride(-2) % DtypeSize(w.dtype) != 0)
    return InvalidArgument("weight row stride must be a multiple of its element size");
  if (const TensorRef* b = a.input(2)) {
    TSR_RETURN_IF_ERROR(RequireDtype(*b, TSR_DTYPE_F32, "bias"));
    if (b->ndim != 1 || b->ne[0] != N || !b->InnerContiguous())
      return InvalidArgument("bias must be contiguous [N], got " + ShapeString(*b));
  }
  return OkStatus();
}

// ---- elementwise ----

Status ValidateBinary(const OpArgs& a) {
  TSR_RETURN_IF_ERROR(RequireInput(a, 0, "in0", TSR_DTYPE_F32));
  TSR_RETURN_IF_ERROR(RequireInput(a, 1, "in1", TSR_DTYPE_F32));
  TSR_RETURN_IF_ERROR(RequireDtype(*a.out, TSR_DTYPE_F32, "output"));
  if (!SameShape(*a.in[0], *a.out)) {
    return InvalidArgument("output " + ShapeString(*a.out) + " must have in0's shape " +
                           ShapeString(*a.in[0]));
  }
  if (!BroadcastsTo(*a.in[1], *a.in[0])) {
    return InvalidArgument("in1 " + ShapeString(*a.in[1]) + " does not broadcast to " +
                           ShapeString(*a.in[0]));
  }
  TSR_RETURN_IF_ERROR(RequireF32Strides(*a.in[0], "in0"));
  TSR_RETURN_IF_ERROR(RequireF32Strides(*a.in[1], "in1"));
  return RequireF32Strides(*a.out, "output");
}

Status ValidateGated(const OpArgs& a) {
  TSR_RETURN_IF_ERROR(ValidateBinary(a));
  if (!SameShape(*a.in[0], *a.in[1])) {
    return InvalidArgument("gate " + ShapeString(*a.in[0]) + " and up " + ShapeString(*a.in[1]) +
                           " must have one shape");
  }
  return OkStatus();
}

Status ValidateUnary(const OpArgs& a) {
  TSR_RETURN_IF_ERROR(RequireInput(a, 0, "in0", TSR_DTYPE_F32));
  TSR_RETURN_IF_ERROR(RequireDtype(*a.out, TSR_DTYPE_F32, "output"));
  if (!SameShape(*a.in[0], *a.out)) {
    return InvalidArgument("output " + ShapeString(*a.out) + " must have in0's shape " +
                           ShapeString(*a.in[0]));
  }
  if (a.node->op == TSR_OP_SOFTCAP && !(a.fp(0) != 0.0f && std::isfinite(a.fp(0)))) {
    return InvalidArgument("SOFTCAP needs a finite non-zero cap in fparams[0]");
  }
  TSR_RETURN_IF_ERROR(RequireF32Strides(*a.in[0], "in0"));
  return RequireF32Strides(*a.out, "output");
}

// ---- row ops ----

Status ValidateNorm(const OpArgs& a) {
  TSR_RETURN_IF_ERROR(ValidateRowOp(a));
  if (!SameShape(*a.in[0], *a.out) || a.in[0]->ndim < 1) {
    return InvalidArgument("output " + ShapeString(*a.out) + " must have x's shape " +
                           ShapeString(*a.in[0]));
  }
  const int64_t d = a.in[0]->dim(-1);
  TSR_RETURN_IF_ERROR(CheckVector(a, 1, d, "weight"));
  return CheckVector(a, 2, d, "bias");
}

Status ValidateSoftmax(const OpArgs& a) {
  TSR_RETURN_IF_ERROR(ValidateRowOp(a));
  if (!SameShape(*a.in[0], *a.out) || a.in[0]->ndim < 1) {
    return InvalidArgument("output " + ShapeString(*a.out) + " must have x's shape " +
                           ShapeString(*a.in[0]));
  }
  if (const TensorRef* mask = a.input(1)) {
    TSR_RETURN_IF_ERROR(RequireDtype(*mask, TSR_DTYPE_F32, "mask"));
    TSR_RETURN_IF_ERROR(RequireF32Strides(*mask, "mask"));
    if (!BroadcastsTo(*mask, *a.in[0])) {
      return InvalidArgument("mask " + ShapeString(*mask) + " does not broadcast to " +
                             ShapeString(*a.in[0]));
    }
  }
  return OkStatus();
}

Status ValidateReduce(const OpArgs& a) {
  TSR_RETURN_IF_ERROR(ValidateRowOp(a));
  const TensorRef& x = *a.in[0];
  const TensorRef& out = *a.out;
  bool ok = x.ndim >= 1 && out.ndim == x.ndim && out.ne[out.ndim - 1] == 1;
  for (int i = 0; ok && i + 1 < x.ndim; ++i) ok = out.ne[i] == x.ne[i];
  if (!ok)
    return InvalidArgument("output " + ShapeString(out) + " must be x's shape " + ShapeString(x) +
                           " with the last dim 1");
  if (x.dim(-1) == 0 && a.node->op != TSR_OP_SUM)
    return InvalidArgument("MEAN/MAX of an empty row");
  return OkStatus();
}

// ---- ROPE ----

Status ValidateRope(const OpArgs& a) {
  TSR_RETURN_IF_ERROR(RequireInput(a, 0, "x", TSR_DTYPE_F32));
  const TensorRef& x = *a.in[0];
  TSR_RETURN_IF_ERROR(RequireNdim(x, 3, "x"));
  TSR_RETURN_IF_ERROR(RequireI32Vector(a.input(1), x.ne[0], "positions"));
  TSR_RETURN_IF_ERROR(RequireInput(a, 2, "inv_freq", TSR_DTYPE_F32));
  const int64_t D = x.ne[2];
  const int64_t R = a.ip(1) == 0 ? D : a.ip(1);
  if (R < 0 || R > D || R % 2 != 0)
    return InvalidArgument("rotated dims (iparams[1]) must be even and <= " + std::to_string(D));
  if (a.ip(0) != 0 && a.ip(0) != 1)
    return InvalidArgument("rope mode (iparams[0]) must be 0 (neox) or 1 (interleaved)");
  const TensorRef& f = *a.in[2];
  if (f.ndim != 1 || f.ne[0] != R / 2 || !f.InnerContiguous()) {
    return InvalidArgument("inv_freq must be contiguous f32 [" + std::to_string(R / 2) + "], got " +
                           ShapeString(f));
  }
  TSR_RETURN_IF_ERROR(RequireDtype(*a.out, TSR_DTYPE_F32, "output"));
  if (!SameShape(x, *a.out))
    return InvalidArgument("output " + ShapeString(*a.out) + " must have x's shape " +
                           ShapeString(x));
  TSR_RETURN_IF_ERROR(RequireElemStrides(x, "x"));
  return RequireElemStrides(*a.out, "output");
}

// ---- attention ----

Status ValidateAttention(const OpArgs& a) {
  for (int i = 0; i < 3; ++i)
    TSR_RETURN_IF_ERROR(RequireInput(a, i, i == 0 ? "q" : (i == 1 ? "k" : "v")));
  const TensorRef& k = *a.in[1];
  const TensorRef& v = *a.in[2];
  TSR_RETURN_IF_ERROR(CheckKv(k, v, 3));
  TSR_RETURN_IF_ERROR(CheckQueryAndOut(a, k.ne[1], k.ne[2], v.ne[2]));
  const TensorRef* cu_q = a.input(3);
  TSR_RETURN_IF_ERROR(RequireI32Vector(cu_q, -1, "cu_q"));
  if (cu_q->ne[0] < 1) return InvalidArgument("cu_q needs S + 1 >= 1 entries");
  return RequireI32Vector(a.input(4), cu_q->ne[0], "cu_k");
}

Status ValidatePagedAttention(const OpArgs& a) {
  for (int i = 0; i < 3; ++i)
    TSR_RETURN_IF_ERROR(RequireInput(a, i, i == 0 ? "q" : (i == 1 ? "k_cache" : "v_cache")));
  const TensorRef& k = *a.in[1];
  const TensorRef& v = *a.in[2];
  TSR_RETURN_IF_ERROR(CheckKv(k, v, 4));
  TSR_RETURN_IF_ERROR(CheckQueryAndOut(a, k.ne[2], k.ne[3], v.ne[3]));
  if (k.ne[1] < 1) return InvalidArgument("cache block size must be >= 1");
  const TensorRef* table = a.input(3);
  if (table == nullptr) return InvalidArgument("missing block_table");
  TSR_RETURN_IF_ERROR(RequireDtype(*table, TSR_DTYPE_I32, "block_table"));
  TSR_RETURN_IF_ERROR(RequireNdim(*table, 2, "block_table"));
  TSR_RETURN_IF_ERROR(RequireInnerContiguous(*table, "block_table"));
  if (table->nb[0] % 4 != 0)
    return InvalidArgument("block_table row stride must be a multiple of 4");
  TSR_RETURN_IF_ERROR(RequireI32Vector(a.input(4), table->ne[0], "kv_lens"));
  return RequireI32Vector(a.input(5), table->ne[0] + 1, "cu_q");
}

Status ValidateKvWrite(const OpArgs& a) {
  TSR_RETURN_IF_ERROR(RequireInput(a, 0, "cache"));
  TSR_RETURN_IF_ERROR(RequireInput(a, 1, "rows", TSR_DTYPE_F32));
  const TensorRef& cache = *a.in[0];
  const TensorRef& rows = *a.in[1];
  if (!IsKvDtype(cache.dtype))
    return InvalidArgument("cache must be f32/f16/bf16, got " + ShapeString(cache));
  TSR_RETURN_IF_ERROR(RequireNdim(cache, 4, "cache"));
  TSR_RETURN_IF_ERROR(RequireNdim(rows, 3, "rows"));
  if (cache.ne[1] < 1) return InvalidArgument("cache block size must be >= 1");
  if (rows.ne[1] != cache.ne[2] || rows.ne[2] != cache.ne[3]) {
    return InvalidArgument("rows " + ShapeString(rows) + " do not match cache " +
                           ShapeString(cache));
  }
  TSR_RETURN_IF_ERROR(RequireI32Vector(a.input(2), rows.ne[0], "slots"));
  if (a.out->dtype != cache.dtype || !SameShape(*a.out, cache)) {
    return InvalidArgument("output " + ShapeString(*a.out) + " must be the cache " +
                           ShapeString(cache));
  }
  TSR_RETURN_IF_ERROR(RequireElemStrides(cache, "cache"));
  TSR_RETURN_IF_ERROR(RequireElemStrides(*a.out, "output"));
  return RequireElemStrides(rows, "rows");
}

// ---- data movement ----

Status ValidateCopy(const OpArgs& a) {
  TSR_RETURN_IF_ERROR(RequireInput(a, 0, "in0"));
  const TensorRef& in = *a.in[0];
  const TensorRef& out = *a.out;
  TSR_RETURN_IF_ERROR(RequireElemStrides(in, "input"));
  TSR_RETURN_IF_ERROR(RequireElemStrides(out, "output"));
  const bool quant = IsQuantized(in.dtype) || IsQuantized(out.dtype);
  if (quant) {
    const bool ok = (in.dtype == out.dtype) || (IsQuantized(in.dtype) && IsFloatOut(out.dtype)) ||
                    (in.dtype == TSR_DTYPE_F32 && IsQuantized(out.dtype));
    if (!ok)
      return InvalidArgument("cannot convert " + ShapeString(in) + " to " + ShapeString(out));
    if (!SameShape(in, out))
      return InvalidArgument("quantize/dequantize needs one shape: " + ShapeString(in) + " vs " +
                             ShapeString(out));
    if (in.ndim == 0) return InvalidArgument("quantized tensors need at least one dim");
    return OkStatus();
  }
  if (!(out.dtype == in.dtype || IsFloatOut(out.dtype) || out.dtype == TSR_DTYPE_I32)) {
    return InvalidArgument("cannot convert " + ShapeString(in) + " to " + ShapeString(out));
  }
  if (in.NumElements() != out.NumElements()) {
    return InvalidArgument("element counts differ: " + ShapeString(in) + " vs " + ShapeString(out));
  }
  return OkStatus();
}

Status ValidateGetRows(const OpArgs& a) {
  TSR_RETURN_IF_ERROR(RequireInput(a, 0, "table"));
  TSR_RETURN_IF_ERROR(RequireInput(a, 1, "ids", TSR_DTYPE_I32));
  const TensorRef& table = *a.in[0];
  const TensorRef& ids = *a.in[1];
  const TensorRef& out = *a.out;
  TSR_RETURN_IF_ERROR(RequireNdim(table, 2, "table"));
  TSR_RETURN_IF_ERROR(RequireNdim(ids, 1, "ids"));
  TSR_RETURN_IF_ERROR(RequireDtype(out, TSR_DTYPE_F32, "output"));
  TSR_RETURN_IF_ERROR(RequireNdim(out, 2, "output"));
  if (out.ne[0] != ids.ne[0] || out.ne[1] != table.ne[1]) {
    return InvalidArgument("output " + ShapeString(out) + " must be [T, D] = [" +
                           std::to_string(ids.ne[0]) + ", " + std::to_string(table.ne[1]) + "]");
  }
  if (ids.nb[0] % 4 != 0) return InvalidArgument("ids stride must be a multiple of 4");
  TSR_RETURN_IF_ERROR(RequireElemStrides(table, "table"));
  return RequireElemStrides(out, "output");
}

Status ValidateConcat(const OpArgs& a) {
  TSR_RETURN_IF_ERROR(RequireInput(a, 0, "in0"));
  TSR_RETURN_IF_ERROR(RequireInput(a, 1, "in1"));
  const TensorRef& x = *a.in[0];
  const TensorRef& y = *a.in[1];
  const TensorRef& out = *a.out;
  if (DtypeSize(x.dtype) == 0 || x.dtype != y.dtype || out.dtype != x.dtype) {
    return InvalidArgument("concat needs one plain dtype: " + ShapeString(x) + ", " +
                           ShapeString(y) + " -> " + ShapeString(out));
  }
  if (x.ndim != y.ndim || out.ndim != x.ndim || x.ndim == 0)
    return InvalidArgument("concat needs equal ranks >= 1");
  int64_t ax = a.ip(0);
  if (ax < 0) ax += x.ndim;
  if (ax < 0 || ax >= x.ndim)
    return InvalidArgument("concat axis " + std::to_string(a.ip(0)) + " out of range");
  for (int i = 0; i < x.ndim; ++i) {
    const int64_t want = i == ax ? x.ne[i] + y.ne[i] : x.ne[i];
    if ((i != ax && y.ne[i] != x.ne[i]) || out.ne[i] != want) {
      return InvalidArgument("cannot concat " + ShapeString(x) + " and " + ShapeString(y) +
                             " into " + ShapeString(out) + " along " + std::to_string(ax));
    }
  }
  TSR_RETURN_IF_ERROR(RequireElemStrides(x, "in0"));
  TSR_RETURN_IF_ERROR(RequireElemStrides(y, "in1"));
  return RequireElemStrides(out, "output");
}

// ---- convolutions ----

Status ValidateConv(const OpArgs& a) {
  const bool is2d = a.node->op == TSR_OP_CONV2D;
  const int nd = is2d ? 4 : 3;
  TSR_RETURN_IF_ERROR(RequireInput(a, 0, "x", TSR_DTYPE_F32));
  TSR_RETURN_IF_ERROR(RequireInput(a, 1, "weight"));
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  const TensorRef& out = *a.out;
  TSR_RETURN_IF_ERROR(RequireNdim(x, nd, "x"));
  TSR_RETURN_IF_ERROR(RequireNdim(w, nd, "weight"));
  TSR_RETURN_IF_ERROR(RequireDtype(out, TSR_DTYPE_F32, "output"));
  TSR_RETURN_IF_ERROR(RequireNdim(out, nd, "output"));
  for (int i = 0; i < (is2d ? 7 : 4); ++i) {
    if (a.ip(i) < 0) return InvalidArgument("conv iparams must be >= 0");
  }
  if (!IsWeightDtype(w.dtype) || !w.IsContiguous())
    return InvalidArgument("weight must be contiguous f32/f16/bf16/q8/q4, got " + ShapeString(w));
  const int64_t groups = std::max<int64_t>(1, a.ip(is2d ? 6 : 3));
  const int64_t cin = x.ne[1], cout = w.ne[0];
  if (cin % groups != 0 || cout % groups != 0 || w.ne[1] != cin / groups) {
    return InvalidArgument("channels do not split into " + std::to_string(groups) + " groups: x " +
                           ShapeString(x) + ", weight " + ShapeString(w));
  }
  ConvParams shape;
  TSR_RETURN_IF_ERROR(ConvShapeFor(a, &shape));
  for (int i = 0; i < nd; ++i) {
    if (x.nb[i] % 4 != 0 || out.nb[i] % 4 != 0)
      return InvalidArgument("f32 strides must be multiples of 4 bytes");
  }
  if (const TensorRef* bias = a.input(2)) {
    TSR_RETURN_IF_ERROR(RequireDtype(*bias, TSR_DTYPE_F32, "bias"));
    if (bias->ndim != 1 || bias->ne[0] != cout || !bias->InnerContiguous())
      return InvalidArgument("bias must be contiguous [Cout]");
  }
  return OkStatus();
}

}  // namespace tessera::cuda
