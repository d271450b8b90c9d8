// Data movement: GET_ROWS (embedding lookup from a table of any dtype), COPY (cast, quantize,
// dequantize, re-layout, reshape) and CONCAT. Memory-bound loops; plain scalar code.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/convert.h"
#include "backends/cpu/ops.h"

namespace tessera::cpu {
namespace {

// The plain (non-block) dtypes.
bool IsPlain(tsr_dtype t) {
  return DtypeSize(t) > 0;
}
bool IsFloatOut(tsr_dtype t) {
  return t == TSR_DTYPE_F32 || t == TSR_DTYPE_F16 || t == TSR_DTYPE_BF16;
}

double ReadScalar(const uint8_t* p, tsr_dtype t) {
  switch (t) {
    case TSR_DTYPE_F32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case TSR_DTYPE_F16: return F16ToF32(LoadU16(p));
    case TSR_DTYPE_BF16: return Bf16ToF32(LoadU16(p));
    case TSR_DTYPE_I32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case TSR_DTYPE_I64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      return static_cast<double>(v);
    }
    case TSR_DTYPE_I8: return static_cast<int8_t>(*p);
    case TSR_DTYPE_U8: return *p;
    default: return 0.0;
  }
}

// Integer sources go to i32 without a float round trip (i64 saturates).
int32_t ReadAsI32(const uint8_t* p, tsr_dtype t) {
  if (t == TSR_DTYPE_I64) {
    int64_t v;
    std::memcpy(&v, p, 8);
    return static_cast<int32_t>(std::clamp<int64_t>(v, INT32_MIN, INT32_MAX));
  }
  const double v = ReadScalar(p, t);
  if (std::isnan(v)) return 0;
  // Truncation toward zero, as a C cast (and torch's .to(int32)) does, saturated.
  return static_cast<int32_t>(std::clamp(std::trunc(v), double{INT32_MIN}, double{INT32_MAX}));
}

void WriteScalar(double v, uint8_t* p, tsr_dtype t) {
  switch (t) {
    case TSR_DTYPE_F32: {
      const float f = static_cast<float>(v);
      std::memcpy(p, &f, 4);
      return;
    }
    case TSR_DTYPE_F16: StoreU16(p, F32ToF16(static_cast<float>(v))); return;
    case TSR_DTYPE_BF16: StoreU16(p, F32ToBf16(static_cast<float>(v))); return;
    default: return;
  }
}

// Converts n elements between plain dtypes (byte strides). Hot pairs get dedicated loops.
void ConvertRow(const uint8_t* src, int64_t ss, tsr_dtype st, uint8_t* dst, int64_t ds,
                tsr_dtype dt, int64_t n) {
  if (st == dt) {
    const int64_t es = DtypeSize(st);
    if (ss == es && ds == es) {
      std::memmove(dst, src, static_cast<size_t>(n * es));
    } else {
      for (int64_t i = 0; i < n; ++i)
        std::memcpy(dst + i * ds, src + i * ss, static_cast<size_t>(es));
    }
    return;
  }
  if (dt == TSR_DTYPE_I32) {
    for (int64_t i = 0; i < n; ++i) {
      const int32_t v = ReadAsI32(src + i * ss, st);
      std::memcpy(dst + i * ds, &v, 4);
    }
    return;
  }
  if (st == TSR_DTYPE_F16 && dt == TSR_DTYPE_F32) {
    for (int64_t i = 0; i < n; ++i) {
      const float v = F16ToF32(LoadU16(src + i * ss));
      std::memcpy(dst + i * ds, &v, 4);
    }
    return;
  }
  if (st == TSR_DTYPE_F32 && (dt == TSR_DTYPE_F16 || dt == TSR_DTYPE_BF16)) {
    for (int64_t i = 0; i < n; ++i) {
      float v;
      std::memcpy(&v, src + i * ss, 4);
      StoreU16(dst + i * ds, dt == TSR_DTYPE_F16 ? F32ToF16(v) : F32ToBf16(v));
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) WriteScalar(ReadScalar(src + i * ss, st), dst + i * ds, dt);
}

// Dequantizes one row of `n` values (n % 32 == 0) into a plain float dtype.
void DequantRow(const uint8_t* src, tsr_dtype st, uint8_t* dst, int64_t ds, tsr_dtype dt,
                int64_t n) {
  const int64_t bb = BlockBytes(st);
  for (int64_t b = 0; b < n / TSR_QBLOCK; ++b) {
    const uint8_t* block = src + b * bb;
    for (int i = 0; i < TSR_QBLOCK; ++i) {
      const float v = st == TSR_DTYPE_Q8_B32 ? DequantQ8(block, i) : DequantQ4(block, i);
      WriteScalar(v, dst + (b * TSR_QBLOCK + i) * ds, dt);
    }
  }
}

// Quantizes one f32 row (element stride ss bytes) of n values into blocks.
void QuantRow(const uint8_t* src, int64_t ss, uint8_t* dst, tsr_dtype dt, int64_t n) {
  float buf[TSR_QBLOCK];
  const int64_t bb = BlockBytes(dt);
  for (int64_t b = 0; b < n / TSR_QBLOCK; ++b) {
    for (int i = 0; i < TSR_QBLOCK; ++i) std::memcpy(&buf[i], src + (b * TSR_QBLOCK + i) * ss, 4);
    if (dt == TSR_DTYPE_Q8_B32) {
      QuantizeBlockQ8(buf, dst + b * bb);
    } else {
      QuantizeBlockQ4(buf, dst + b * bb);
    }
  }
}

// Converts one row of n elements from (src, st) to (dst, dt), whatever the formats.
void AnyRow(const uint8_t* src, int64_t ss, tsr_dtype st, uint8_t* dst, int64_t ds, tsr_dtype dt,
            int64_t n) {
  if (IsQuantized(st) && st == dt) {
    std::memmove(dst, src, static_cast<size_t>(n / TSR_QBLOCK * BlockBytes(st)));
  } else if (IsQuantized(st)) {
    DequantRow(src, st, dst, ds, dt, n);
  } else if (IsQuantized(dt)) {
    QuantRow(src, ss, dst, dt, n);
  } else {
    ConvertRow(src, ss, st, dst, ds, dt, n);
  }
}

// Row-by-row copy of same-shaped tensors, rows split across the pool.
void CopySameShape(const TensorRef& in, const TensorRef& out, ThreadPool* pool) {
  const TensorRef* ts[2] = {&in, &out};
  const RowWalker walk(out, ts, 2);
  const int64_t n = out.dim(-1);
  if (n == 0) return;
  ParallelRanges(pool, walk.rows(), std::max<int64_t>(1, 16384 / n),
                 [&](int64_t r0, int64_t r1, int) {
                   for (int64_t r = r0; r < r1; ++r) {
                     AnyRow(in.data + walk.Offset(0, r), in.stride(-1), in.dtype,
                            out.data + walk.Offset(1, r), out.stride(-1), out.dtype, n);
                   }
                 });
}

// Byte offset of flat (row-major) element e of t.
int64_t FlatOffset(const TensorRef& t, int64_t e) {
  int64_t off = 0;
  for (int d = t.ndim - 1; d >= 0; --d) {
    off += (e % t.ne[d]) * t.nb[d];
    e /= t.ne[d];
  }
  return off;
}

Status RequireElemStrides(const TensorRef& t, const char* what) {
  if (IsQuantized(t.dtype)) {
    return t.IsContiguous() || t.ndim <= 1 || t.nb[t.ndim - 1] == 0
               ? OkStatus()
               : InvalidArgument(std::string(what) + ": quantized rows must be contiguous");
  }
  const int64_t es = DtypeSize(t.dtype);
  for (int i = 0; i < t.ndim; ++i) {
    if (t.nb[i] % es != 0)
      return InvalidArgument(std::string(what) + " strides must be multiples of its element size");
  }
  return OkStatus();
}

}  // namespace

// ---- COPY ----

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

Status RunCopy(const OpArgs& a) {
  const TensorRef& in = *a.in[0];
  const TensorRef& out = *a.out;
  if (out.NumElements() == 0) return OkStatus();
  if (in.dtype == out.dtype && in.IsContiguous() && out.IsContiguous() &&
      in.Extent() == out.Extent()) {
    std::memmove(out.data, in.data, static_cast<size_t>(out.Extent()));
    return OkStatus();
  }
  if (SameShape(in, out)) {
    CopySameShape(in, out, a.pool);
    return OkStatus();
  }
  // A reshape: walk both in flat row-major element order.
  ParallelRanges(a.pool, out.NumElements(), 16384, [&](int64_t e0, int64_t e1, int) {
    for (int64_t e = e0; e < e1; ++e) {
      ConvertRow(in.data + FlatOffset(in, e), 0, in.dtype, out.data + FlatOffset(out, e), 0,
                 out.dtype, 1);
    }
  });
  return OkStatus();
}

// ---- GET_ROWS ----

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

Status RunGetRows(const OpArgs& a) {
  const TensorRef& table = *a.in[0];
  const TensorRef& ids = *a.in[1];
  const TensorRef& out = *a.out;
  const int64_t T = ids.ne[0], V = table.ne[0], D = table.ne[1];
  const auto id = [&](int64_t t) {
    return *reinterpret_cast<const int32_t*>(ids.data + t * ids.nb[0]);
  };
  for (int64_t t = 0; t < T; ++t) {
    if (id(t) < 0 || id(t) >= V) {
      return InvalidArgument("ids[" + std::to_string(t) + "] = " + std::to_string(id(t)) +
                             " is outside the table's " + std::to_string(V) + " rows");
    }
  }
  ParallelRanges(a.pool, T, std::max<int64_t>(1, 16384 / std::max<int64_t>(D, 1)),
                 [&](int64_t t0, int64_t t1, int) {
                   for (int64_t t = t0; t < t1; ++t) {
                     AnyRow(table.data + id(t) * table.nb[0], table.stride(-1), table.dtype,
                            out.data + t * out.nb[0], out.nb[1], TSR_DTYPE_F32, D);
                   }
                 });
  return OkStatus();
}

// ---- CONCAT ----

Status ValidateConcat(const OpArgs& a) {
  TSR_RETURN_IF_ERROR(RequireInput(a, 0, "in0"));
  TSR_RETURN_IF_ERROR(RequireInput(a, 1, "in1"));
  const TensorRef& x = *a.in[0];
  const TensorRef& y = *a.in[1];
  const TensorRef& out = *a.out;
  if (!IsPlain(x.dtype) || x.dtype != y.dtype || out.dtype != x.dtype) {
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

Status RunConcat(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& y = *a.in[1];
  int64_t ax = a.ip(0);
  if (ax < 0) ax += x.ndim;
  // Each input is copied into the matching sub-view of the output.
  TensorRef part = *a.out;
  for (int i = 0; i < x.ndim; ++i) part.ne[i] = x.ne[i];
  CopySameShape(x, part, a.pool);
  part.data = a.out->data + x.ne[ax] * a.out->nb[ax];
  part.ne[ax] = y.ne[ax];
  CopySameShape(y, part, a.pool);
  return OkStatus();
}

}  // namespace tessera::cpu
