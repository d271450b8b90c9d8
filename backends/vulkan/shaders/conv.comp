#version 460
// CONV1D / CONV2D (stride, padding, dilation, groups), direct: one invocation an output element,
// summing its (ci, kh, kw) window in that fixed order with FMA. Weights of any matmul dtype.
#include "common.glsl"

layout(local_size_x = 128) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t err;
  uint64_t x, w, bias, out_;
  int64_t xs[4], os[4];  // byte strides [B, C, H, W] (1-D: H stride 0)
  int64_t w_row_bytes;
  int64_t B, Cin, H, W, Cout, KH, KW, Ho, Wo;
  int64_t sh, sw, ph, pw, dh, dw, groups;
  int w_dtype, pad_;
};

void main() {
  Params P = Params(pc.params);
  const int64_t u = int64_t(GroupIndex()) * 128 + int64_t(gl_LocalInvocationID.x);
  if (u >= P.B * P.Cout * P.Ho * P.Wo) return;
  const int64_t cg = P.Cin / P.groups, coutg = P.Cout / P.groups;
  const int64_t ow = u % P.Wo;
  int64_t r = u / P.Wo;
  const int64_t oh = r % P.Ho;
  r /= P.Ho;
  const int64_t co = r % P.Cout, b = r / P.Cout;
  const int64_t g = co / coutg;
  const uint64_t wrow = P.w + uint64_t(co * P.w_row_bytes);
  float s = 0.0;
  for (int64_t ci = 0; ci < cg; ++ci) {
    const uint64_t plane = P.x + uint64_t(b * P.xs[0] + (g * cg + ci) * P.xs[1]);
    for (int64_t kh = 0; kh < P.KH; ++kh) {
      const int64_t ih = oh * P.sh - P.ph + kh * P.dh;
      for (int64_t kw = 0; kw < P.KW; ++kw) {
        const int64_t iw = ow * P.sw - P.pw + kw * P.dw;
        if (ih < 0 || ih >= P.H || iw < 0 || iw >= P.W) continue;  // zero padding
        const float xv = LoadF32(plane + uint64_t(ih * P.xs[2] + iw * P.xs[3]));
        s = fma(xv, WeightAt(wrow, P.w_dtype, (ci * P.KH + kh) * P.KW + kw), s);
      }
    }
  }
  if (P.bias != 0ul) s += LoadF32(P.bias + uint64_t(co * 4));
  StoreF32(P.out_ + uint64_t(b * P.os[0] + co * P.os[1] + oh * P.os[2] + ow * P.os[3]), s);
}
