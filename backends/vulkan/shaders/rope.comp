#version 460
// ROPE (neox / interleaved pairs, partial rotation, attention scaling): one invocation a rotated
// pair or a pass-through dim. The angle is the f32 product pos * inv_freq, as HF forms it.
#include "common.glsl"

layout(local_size_x = 256) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t err;
  uint64_t x, out_, pos, inv_freq;
  int64_t x_tok, x_head, x_el, o_tok, o_head, o_el;  // byte strides
  int64_t T, H, D, R;
  int interleaved;
  int pair_groups;  // > 0: a pair dispatch (run_ops.cc RunPair); see PairParams
  float attn_scale, pad2_;
};

// A pair dispatch (two independent nodes of this op in one dispatch, e.g. the q and k RoPEs of a
// decode step) carries two parameter blocks back to back; the first pair_groups workgroups run
// the first, the rest the second. Each element is computed as when its node runs alone.
#define PARAMS_BYTES 136  // sizeof(ops.h's RopeP)
Params PairParams(out int64_t g) {
  Params P = Params(pc.params);
  g = int64_t(GroupIndex());
  if (P.pair_groups > 0 && g >= int64_t(P.pair_groups)) {
    g -= int64_t(P.pair_groups);
    P = Params(pc.params + uint64_t(PARAMS_BYTES));
  }
  return P;
}

void main() {
  int64_t g;
  Params P = PairParams(g);
  const int64_t half_ = P.R / 2, per = half_ + (P.D - P.R);
  const int64_t u = g * 256 + int64_t(gl_LocalInvocationID.x);
  if (u >= P.T * P.H * per) return;
  const int64_t th = u / per, i = u % per;
  const int64_t t = th / P.H, h = th % P.H;
  const uint64_t src = P.x + uint64_t(t * P.x_tok + h * P.x_head);
  const uint64_t dst = P.out_ + uint64_t(t * P.o_tok + h * P.o_head);
  if (i >= half_) {  // a pass-through dim
    const int64_t d = P.R + (i - half_);
    StoreF32(dst + uint64_t(d * P.o_el), LoadF32(src + uint64_t(d * P.x_el)));
    return;
  }
  precise float angle =
      float(LoadI32(P.pos + uint64_t(t * 4))) * LoadF32(P.inv_freq + uint64_t(i * 4));
  float s, c;
  SinCos(angle, s, c);
  c *= P.attn_scale;
  s *= P.attn_scale;
  const int64_t i0 = P.interleaved != 0 ? 2 * i : i;
  const int64_t i1 = P.interleaved != 0 ? 2 * i + 1 : i + half_;
  const float x0 = LoadF32(src + uint64_t(i0 * P.x_el));
  const float x1 = LoadF32(src + uint64_t(i1 * P.x_el));
  StoreF32(dst + uint64_t(i0 * P.o_el), x0 * c - x1 * s);
  StoreF32(dst + uint64_t(i1 * P.o_el), x1 * c + x0 * s);
}
