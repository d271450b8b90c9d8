#version 460
// COPY between plain dtypes (casts, reshapes, strided views) and CONCAT's two halves: element i
// of `in` walked in its own row-major order goes to element i of `out` in its order (for one
// shape that is the same element). Conversions are bit-exact with the CPU reference.
#include "common.glsl"

layout(local_size_x = 256) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t err;
  uint64_t in_, out_;
  int64_t numel;
  int in_dtype, out_dtype;
  Walk win;   // tensor 0: in's shape and strides
  Walk wout;  // tensor 0: out's shape and strides
};

int64_t OffsetIn(Params P, int64_t i) {
  int64_t off = 0;
  for (int d = P.win.ndim - 1; d >= 0; --d) {
    const int64_t ne = P.win.ne[d];
    const int64_t q = i / ne;
    off += (i - q * ne) * P.win.s[0][d];
    i = q;
  }
  return off;
}
int64_t OffsetOut(Params P, int64_t i) {
  int64_t off = 0;
  for (int d = P.wout.ndim - 1; d >= 0; --d) {
    const int64_t ne = P.wout.ne[d];
    const int64_t q = i / ne;
    off += (i - q * ne) * P.wout.s[0][d];
    i = q;
  }
  return off;
}

int64_t LoadI64(uint64_t a) {
  const uint lo = RefU32(a).v, hi = RefU32(a + 4ul).v;
  return int64_t((uint64_t(hi) << 32) | uint64_t(lo));
}

float ReadFloat(uint64_t a, int t) {
  if (t == DT_F32 || t == DT_F16 || t == DT_BF16) return LoadFloat(a, t);
  if (t == DT_I32) return float(LoadI32(a));
  if (t == DT_I64) return float(LoadI64(a));
  if (t == DT_I8) return float(int(int8_t(RefU8(a).v)));
  return float(LoadU8(a));
}

// Integers go to i32 without a float round trip (i64 saturates); floats truncate, saturated,
// NaN -> 0.
int ReadAsI32(uint64_t a, int t) {
  if (t == DT_I64) return int(clamp(LoadI64(a), -2147483648l, 2147483647l));
  if (t == DT_I32) return LoadI32(a);
  if (t == DT_I8) return int(int8_t(RefU8(a).v));
  if (t == DT_U8) return int(LoadU8(a));
  const float v = LoadFloat(a, t);
  if (isnan(v)) return 0;
  if (v >= 2147483648.0) return 2147483647;
  if (v <= -2147483648.0) return -2147483647 - 1;
  return int(trunc(v));
}

void main() {
  Params P = Params(pc.params);
  const int64_t i = int64_t(GroupIndex()) * 256 + int64_t(gl_LocalInvocationID.x);
  if (i >= P.numel) return;
  const uint64_t src = P.in_ + uint64_t(OffsetIn(P, i));
  const uint64_t dst = P.out_ + uint64_t(OffsetOut(P, i));
  const int st = P.in_dtype, dt = P.out_dtype;
  if (st == dt) {
    if (st == DT_F32 || st == DT_I32) {
      RefU32(dst).v = RefU32(src).v;
    } else if (st == DT_F16 || st == DT_BF16) {
      RefU16(dst).v = RefU16(src).v;
    } else if (st == DT_I64) {
      RefU32(dst).v = RefU32(src).v;
      RefU32(dst + 4ul).v = RefU32(src + 4ul).v;
    } else {
      RefU8(dst).v = RefU8(src).v;
    }
  } else if (dt == DT_I32) {
    RefI32(dst).v = ReadAsI32(src, st);
  } else {
    StoreFloat(dst, ReadFloat(src, st), dt);
  }
}
