#version 460
// Elementwise f32 ops: ADD/SUB/MUL/DIV (in1 broadcast numpy-style), SCALE, the activations,
// SOFTCAP and the gated units SWIGLU/GEGLU. One invocation an element; every element goes through
// the same scalar formula whatever the layout. Op numbers are tsr_op's.
#include "common.glsl"

layout(local_size_x = 256) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t err;
  uint64_t a, b, out_;  // b = 0 for one-input ops
  int64_t b_period;     // contiguous: b[i % b_period]
  int op, contiguous;
  float p0, p1;
  Walk walk;  // 0 = a, 1 = b, 2 = out; reference shape = out
};

float Apply(int op, float a, float b, float p0, float p1) {
  switch (op) {
    case 2: return a + b;
    case 3: return a - b;
    case 4: return a * b;
    case 5: return a / b;
    case 6: {  // SCALE: multiply then add, two roundings, as the op's definition reads
      precise float m = a * p0;
      precise float r = m + p1;
      return r;
    }
    case 7: return a * Sigmoid(a);
    case 8: return GeluErf(a);
    case 9: return GeluTanh(a);
    case 10: return max(a, 0.0);
    case 11: return Tanh(a);
    case 12: return Sigmoid(a);
    case 13: return p0 * Tanh(a / p0);
    case 14: return a * Sigmoid(a) * b;
    case 15: return GeluTanh(a) * b;
  }
  return 0.0;
}

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

void main() {
  Params P = Params(pc.params);
  const int64_t n = P.walk.numel;
  const int64_t i = int64_t(GroupIndex()) * 256 + int64_t(gl_LocalInvocationID.x);
  if (i >= n) return;
  if (P.contiguous != 0) {
    float bv = 0.0;
    if (P.b != 0ul) bv = LoadF32(P.b + uint64_t((P.b_period == n ? i : i % P.b_period) * 4));
    StoreF32(P.out_ + uint64_t(i * 4), Apply(P.op, LoadF32(P.a + uint64_t(i * 4)), bv, P.p0, P.p1));
    return;
  }
  const float av = LoadF32(P.a + uint64_t(Offset(P, 0, i)));
  const float bv = P.b != 0ul ? LoadF32(P.b + uint64_t(Offset(P, 1, i))) : 0.0;
  StoreF32(P.out_ + uint64_t(Offset(P, 2, i)), Apply(P.op, av, bv, P.p0, P.p1));
}
