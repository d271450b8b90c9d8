#version 460
// COPY into or out of the 8/4-bit block formats (quant_formats.h): dequantize to f32/f16/bf16
// (one invocation a value), quantize from f32 (one invocation a 32-value block, bit-exact with
// the reference quantizers: exact division, round half away from zero, no contraction), or
// copy blocks of one format.
#include "common.glsl"

layout(local_size_x = 256) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t err;
  uint64_t in_, out_;
  int64_t rows, n;         // n values a row (a multiple of 32)
  int64_t in_el, out_el;   // element byte strides of the plain side
  int in_dtype, out_dtype;
  Walk walk;  // outer dims: 0 = in row offsets, 2 = out row offsets
};

int64_t Offset(Params P, int k, int64_t i) {
  int64_t off = 0;
  for (int d = P.walk.ndim - 1; d >= 0; --d) {
    const int64_t ne = P.walk.ne[d];
    const int64_t q = i / ne;
    off += (i - q * ne) * P.walk.s[k][d];
    i = q;
  }
  return off;
}

void StoreByte(uint64_t a, uint b) { RefU8(a).v = uint8_t(b); }

void QuantizeQ8(float x[32], uint64_t blk) {
  float amax = 0.0;
  for (int i = 0; i < 32; ++i) amax = max(amax, abs(x[i]));
  const float d = DivRn(amax, 127.0);
  const uint dh = F32ToF16Bits(d);
  StoreByte(blk, dh & 0xffu);
  StoreByte(blk + 1ul, dh >> 8);
  for (int i = 0; i < 32; ++i) {
    float q = 0.0;
    if (d != 0.0) {
      const float r = DivRn(x[i], d);
      const float a = abs(r);
      float t = trunc(a);
      if (a - t >= 0.5) t += 1.0;  // round half away from zero (GLSL round() may not)
      q = r < 0.0 ? -t : t;
    }
    q = clamp(q, -127.0, 127.0);
    StoreByte(blk + uint64_t(2 + i), uint(int(q)) & 0xffu);
  }
}

void QuantizeQ4(float x[32], uint64_t blk) {
  float amax = 0.0, m = 0.0;
  for (int i = 0; i < 32; ++i) {
    if (abs(x[i]) > amax) {
      amax = abs(x[i]);
      m = x[i];
    }
  }
  const float d = DivRn(m, -8.0);
  const uint dh = F32ToF16Bits(d);
  StoreByte(blk, dh & 0xffu);
  StoreByte(blk + 1ul, dh >> 8);
  int nib[32];
  for (int i = 0; i < 32; ++i) {
    if (d == 0.0) {
      nib[i] = 8;
      continue;
    }
    precise float q = DivRn(x[i], d) + 8.5;  // no contraction: as specified
    nib[i] = int(clamp(trunc(q), 0.0, 15.0));
  }
  for (int i = 0; i < 16; ++i) StoreByte(blk + uint64_t(2 + i), uint(nib[i] | (nib[i + 16] << 4)));
}

void main() {
  Params P = Params(pc.params);
  const bool quantize = P.out_dtype == DT_Q8 || P.out_dtype == DT_Q4;
  const bool same = P.in_dtype == P.out_dtype;
  const int64_t per = quantize ? P.n / QBLOCK : P.n;
  const int64_t u = int64_t(GroupIndex()) * 256 + int64_t(gl_LocalInvocationID.x);
  if (u >= P.rows * per) return;
  const int64_t r = u / per, k = u % per;
  const uint64_t in_ = P.in_ + uint64_t(Offset(P, 0, r));
  const uint64_t out_ = P.out_ + uint64_t(Offset(P, 2, r));
  if (quantize && same) {
    const int64_t bb = P.out_dtype == DT_Q8 ? Q8_BYTES : Q4_BYTES;
    for (int64_t b = 0; b < bb; ++b)
      RefU8(out_ + uint64_t(k * bb + b)).v = RefU8(in_ + uint64_t(k * bb + b)).v;
  } else if (quantize) {
    float x[32];
    for (int i = 0; i < 32; ++i) x[i] = LoadF32(in_ + uint64_t((k * QBLOCK + i) * P.in_el));
    if (P.out_dtype == DT_Q8) {
      QuantizeQ8(x, out_ + uint64_t(k * Q8_BYTES));
    } else {
      QuantizeQ4(x, out_ + uint64_t(k * Q4_BYTES));
    }
  } else {
    StoreFloat(out_ + uint64_t(k * P.out_el), DequantAt(in_, P.in_dtype, k), P.out_dtype);
  }
}
