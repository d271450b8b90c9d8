// Data movement: GET_ROWS (embedding lookup from a table of any dtype), COPY (cast, quantize,
// dequantize, re-layout, reshape) and CONCAT. Memory-bound loops; plain scalar code.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backends/cpu/convert.h"
#include "backends/cpu/ops.h"
#include "backends/cpu/packed_weights.h"
#include "tessera/backend/validate.h"

namespace tessera::cpu {
namespace {

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
  if (dt == TSR_DTYPE_F32 && ds == 4) {
    // Contiguous f32 (GET_ROWS of an embedding): a block's values stored at once.
    for (int64_t b = 0; b < n / TSR_QBLOCK; ++b) {
      const uint8_t* block = src + b * bb;
      float v[TSR_QBLOCK];
      for (int i = 0; i < TSR_QBLOCK; ++i)
        v[i] = st == TSR_DTYPE_Q8_B32 ? DequantQ8(block, i) : DequantQ4(block, i);
      std::memcpy(dst + b * TSR_QBLOCK * 4, v, sizeof v);
    }
    return;
  }
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

}  // namespace

// ---- COPY ----

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
  // A table a MATMUL repacked (a tied embedding): rows come back from the resident copy.
  const uint8_t* packed = a.packed_w;
  ParallelRanges(a.pool, T, std::max<int64_t>(1, 16384 / std::max<int64_t>(D, 1)),
                 [&](int64_t t0, int64_t t1, int) {
                   // One row's original bytes, per worker thread (no allocation per call).
                   thread_local std::vector<uint8_t> row;
                   if (packed != nullptr && row.size() < static_cast<size_t>(table.nb[0]))
                     row.resize(table.nb[0]);
                   for (int64_t t = t0; t < t1; ++t) {
                     const uint8_t* src = table.data + id(t) * table.nb[0];
                     if (packed != nullptr) {
                       PackedWeights::UnpackRow(table, packed, id(t), row.data());
                       src = row.data();
                     }
                     AnyRow(src, table.stride(-1), table.dtype, out.data + t * out.nb[0], out.nb[1],
                            TSR_DTYPE_F32, D);
                   }
                 });
  return OkStatus();
}

// ---- CONCAT ----

Status RunConcat(const OpArgs& a) {
  // Each input is copied into the matching sub-view of the output.
  TensorRef first, second;
  backend::ConcatParts(a, &first, &second);
  CopySameShape(*a.in[0], first, a.pool);
  CopySameShape(*a.in[1], second, a.pool);
  return OkStatus();
}

}  // namespace tessera::cpu
