#version 460
// The cooperative-matrix GEMM's pre-pass (coop_common.glsl): x [M, K] f32 -> three bf16 planes
// [Mp, Kp] (hi, mid, lo), zero past M and K. One invocation 4 consecutive elements of a row
// (Kp is a multiple of 32), stored 8 bytes a plane (one 2-byte store an element was ~0.7 TB/s on
// the H100, vk-coop2).
#include "coop_common.glsl"

layout(local_size_x = 256) in;

void main() {
  CoopParams P = CoopParams(pc.params);
  const int64_t i = (int64_t(GroupIndex()) * 256 + int64_t(gl_LocalInvocationID.x)) * 4;
  if (i >= P.Mp * P.Kp) return;
  const int64_t m = i / P.Kp, k0 = i % P.Kp;
  uint hi[4], mid[4], lo[4];
  [[unroll]] for (int j = 0; j < 4; ++j) {
    const int64_t k = k0 + j;
    float x = 0.0;
    if (m < P.M && k < P.K) x = LoadF32(P.x + uint64_t(m * P.x_row + k * 4));
    hi[j] = F32ToBf16Bits(x);
    mid[j] = 0u, lo[j] = 0u;
    if ((hi[j] & 0x7f80u) != 0x7f80u) {  // finite: inf - inf would make the rest NaN
      const float r1 = x - Bf16Bits(hi[j]);  // exact
      mid[j] = F32ToBf16Bits(r1);
      lo[j] = F32ToBf16Bits(r1 - Bf16Bits(mid[j]));  // exact, and exactly representable
    }
  }
  const uint64_t plane = uint64_t(P.Mp * P.Kp) * 2;
  const uint64_t a = P.planes + uint64_t(i * 2);  // 8-byte aligned: i % 4 == 0
  RefU32x2(a).v = uvec2(hi[0] | (hi[1] << 16), hi[2] | (hi[3] << 16));
  RefU32x2(a + plane).v = uvec2(mid[0] | (mid[1] << 16), mid[2] | (mid[3] << 16));
  RefU32x2(a + 2 * plane).v = uvec2(lo[0] | (lo[1] << 16), lo[2] | (lo[3] << 16));
}
