#version 460
// The cooperative-matrix GEMM's pre-pass (coop_common.glsl): x [M, K] f32 -> three bf16 planes
// [Mp, Kp] (hi, mid, lo), zero past M and K. One invocation an element.
#include "coop_common.glsl"

layout(local_size_x = 256) in;

void main() {
  CoopParams P = CoopParams(pc.params);
  const int64_t i = int64_t(GroupIndex()) * 256 + int64_t(gl_LocalInvocationID.x);
  if (i >= P.Mp * P.Kp) return;
  const int64_t m = i / P.Kp, k = i % P.Kp;
  float x = 0.0;
  if (m < P.M && k < P.K) x = LoadF32(P.x + uint64_t(m * P.x_row + k * 4));
  const uint hi = F32ToBf16Bits(x);
  uint mid = 0u, lo = 0u;
  if ((hi & 0x7f80u) != 0x7f80u) {  // finite: inf - inf would make the rest NaN
    const float r1 = x - Bf16Bits(hi);  // exact
    mid = F32ToBf16Bits(r1);
    lo = F32ToBf16Bits(r1 - Bf16Bits(mid));  // exact, and exactly representable
  }
  const uint64_t plane = uint64_t(P.Mp * P.Kp) * 2;
  const uint64_t a = P.planes + uint64_t(i * 2);
  RefU16(a).v = uint16_t(hi);
  RefU16(a + plane).v = uint16_t(mid);
  RefU16(a + 2 * plane).v = uint16_t(lo);
}
