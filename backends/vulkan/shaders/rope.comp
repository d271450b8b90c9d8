#version 460
// ROPE (neox / interleaved pairs, partial rotation, attention scaling): one invocation a rotated
// pair or a pass-through dim. The angle is the f32 product pos * inv_freq, as HF forms it.
#include "common.glsl"
#include "rope_common.glsl"

layout(local_size_x = 256) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t err;
  uint64_t x, out_, pos, inv_freq;
  int64_t x_tok, x_head, x_el, o_tok, o_head, o_el;  // byte strides
  int64_t T, H, D, R;
  int interleaved;
  int pair_groups;  // > 0: a pair dispatch (run_ops.cc RunPair); see PairParams
  float attn_scale;
  int kv_fused;  // 1: a RoPE + KV_WRITE dispatch (run_ops.cc RunRopeKv); see KvFused
};

// KV_WRITE's parameter block (kv_write.comp's Params, ops.h KvWriteP).
layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer KvParams {
  uint64_t err;
  uint64_t cache, rows, slots;
  int64_t c_block, c_slot, c_head, c_el;
  int64_t r_tok, r_head, r_el;
  int64_t T, H, D, block_size, n_slots;
  int dtype;
  int pair_groups;
};
#define KV_BYTES 136  // sizeof(ops.h's KvWriteP)

// The cache address of row t's element (h, d), or 0 to skip it: kv_write.comp's slot checks
// (-1 skips; outside the cache sets the error word, reported once a row as there).
uint64_t KvDst(KvParams K, uint64_t err, int64_t t, int64_t h, int64_t d, bool report) {
  const int slot = LoadI32(K.slots + uint64_t(t * 4));
  if (slot == -1) return 0ul;
  if (slot < 0 || int64_t(slot) >= K.n_slots) {
    if (report) SetError(err, ERR_INDEX);
    return 0ul;
  }
  const int64_t sl = int64_t(slot);
  return K.cache + uint64_t((sl / K.block_size) * K.c_block + (sl % K.block_size) * K.c_slot +
                            h * K.c_head + d * K.c_el);
}

// kv_write.comp's element u of a KV_WRITE node (the v write of a fused dispatch).
void KvWriteElement(KvParams K, uint64_t err, int64_t u) {
  if (u >= K.T * K.H * K.D) return;
  const int64_t d = u % K.D, th = u / K.D;
  const int64_t t = th / K.H, h = th % K.H;
  const uint64_t dst = KvDst(K, err, t, h, d, d == 0 && h == 0);
  if (dst == 0ul) return;
  StoreFloat(dst, LoadF32(K.rows + uint64_t(t * K.r_tok + h * K.r_head + d * K.r_el)), K.dtype);
}

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

#ifdef KVF32
// The kv_fused dispatch specialized (module rope_kv_f32; run_ops.cc RunRopeKv picks it where the
// host has checked: both caches f32, T H per and T H D at most 2^30, block_size and n_slots below
// 2^31): 32-bit index math, each cache row's slot loaded and checked once, f32 stores without
// the dtype switch. Every stored value and address is main()'s below: the same RopeSinCos /
// RopeRotate of the same loads, the same slot checks and error reports.

// Row t's slot, or -1 to skip it (kv_write.comp's checks; KvDst's report).
int Slot32(KvParams K, uint64_t err, int t, bool report) {
  const int slot = LoadI32(K.slots + uint64_t(t) * 4ul);
  if (slot == -1) return -1;
  if (slot < 0 || int64_t(slot) >= K.n_slots) {
    if (report) SetError(err, ERR_INDEX);
    return -1;
  }
  return slot;
}

// The cache address of (slot, h, 0) (KvDst without the d term).
uint64_t KvRow32(KvParams K, int slot, int h) {
  const int bs = int(K.block_size);
  return K.cache + uint64_t(int64_t(slot / bs) * K.c_block + int64_t(slot % bs) * K.c_slot +
                            int64_t(h) * K.c_head);
}

void main() {
  const int g = int(GroupIndex()), lane = int(gl_LocalInvocationID.x);
  Params P = Params(pc.params);
  const int pg = P.pair_groups;
  if (g >= pg) {  // the v KV_WRITE (KvWriteElement)
    KvParams V = KvParams(pc.params + uint64_t(PARAMS_BYTES + KV_BYTES));
    const int D = int(V.D), H = int(V.H);
    const int u = (g - pg) * 256 + lane;
    if (u >= int(V.T) * H * D) return;
    const int d = u % D, th = u / D;
    const int t = th / H, h = th % H;
    const int slot = Slot32(V, P.err, t, d == 0 && h == 0);
    if (slot < 0) return;
    const float v = LoadF32(V.rows + uint64_t(int64_t(t) * V.r_tok + int64_t(h) * V.r_head +
                                              int64_t(d) * V.r_el));
    StoreF32(KvRow32(V, slot, h) + uint64_t(int64_t(d) * V.c_el), v);
    return;
  }
  KvParams KK = KvParams(pc.params + uint64_t(PARAMS_BYTES));
  const int R = int(P.R), D = int(P.D), H = int(P.H);
  const int half_ = R / 2, per = half_ + (D - R);
  const int u = g * 256 + lane;
  if (u >= int(P.T) * H * per) return;
  const int th = u / per, i = u % per;
  const int t = th / H, h = th % H;
  const uint64_t src = P.x + uint64_t(int64_t(t) * P.x_tok + int64_t(h) * P.x_head);
  const uint64_t dst = P.out_ + uint64_t(int64_t(t) * P.o_tok + int64_t(h) * P.o_head);
  if (i >= half_) {  // a pass-through dim
    const int d = R + (i - half_);
    const float v = LoadF32(src + uint64_t(int64_t(d) * P.x_el));
    StoreF32(dst + uint64_t(int64_t(d) * P.o_el), v);
    const int slot = Slot32(KK, P.err, t, false);
    if (slot >= 0) StoreF32(KvRow32(KK, slot, h) + uint64_t(int64_t(d) * KK.c_el), v);
    return;
  }
  float s, c;
  RopeSinCos(LoadI32(P.pos + uint64_t(t) * 4ul), LoadF32(P.inv_freq + uint64_t(i) * 4ul),
             P.attn_scale, s, c);
  const int i0 = P.interleaved != 0 ? 2 * i : i;
  const int i1 = P.interleaved != 0 ? 2 * i + 1 : i + half_;
  const float x0 = LoadF32(src + uint64_t(int64_t(i0) * P.x_el));
  const float x1 = LoadF32(src + uint64_t(int64_t(i1) * P.x_el));
  float y0, y1;
  RopeRotate(x0, x1, s, c, y0, y1);
  StoreF32(dst + uint64_t(int64_t(i0) * P.o_el), y0);
  StoreF32(dst + uint64_t(int64_t(i1) * P.o_el), y1);
  const int slot = Slot32(KK, P.err, t, i == 0 && h == 0);
  if (slot >= 0) {
    const uint64_t row = KvRow32(KK, slot, h);
    StoreF32(row + uint64_t(int64_t(i0) * KK.c_el), y0);
    StoreF32(row + uint64_t(int64_t(i1) * KK.c_el), y1);
  }
}
#else
// A RoPE + KV_WRITE dispatch (kv_fused; the k RoPE of a decode step, the KV_WRITE of its output
// into the k cache, optionally the v cache's KV_WRITE): blocks [RopeP][KvWriteP k][KvWriteP v].
// The first pair_groups workgroups run the RoPE and store each rotated value into the k cache
// too (the value KV_WRITE would load from the RoPE's output: the same f32, the same conversion);
// the rest run the v KV_WRITE. Each output element is computed as when its node runs alone.
void main() {
  int64_t g = int64_t(GroupIndex());
  Params P = Params(pc.params);
  const bool kv = P.kv_fused != 0;
  KvParams KK = KvParams(pc.params + uint64_t(PARAMS_BYTES));
  if (!kv) {
    P = PairParams(g);
  } else if (g >= int64_t(P.pair_groups)) {
    const int64_t u = (g - int64_t(P.pair_groups)) * 256 + int64_t(gl_LocalInvocationID.x);
    KvWriteElement(KvParams(pc.params + uint64_t(PARAMS_BYTES + KV_BYTES)), P.err, u);
    return;
  }
  const int64_t half_ = P.R / 2, per = half_ + (P.D - P.R);
  const int64_t u = g * 256 + int64_t(gl_LocalInvocationID.x);
  if (u >= P.T * P.H * per) return;
  const int64_t th = u / per, i = u % per;
  const int64_t t = th / P.H, h = th % P.H;
  const uint64_t src = P.x + uint64_t(t * P.x_tok + h * P.x_head);
  const uint64_t dst = P.out_ + uint64_t(t * P.o_tok + h * P.o_head);
  if (i >= half_) {  // a pass-through dim
    const int64_t d = P.R + (i - half_);
    const float v = LoadF32(src + uint64_t(d * P.x_el));
    StoreF32(dst + uint64_t(d * P.o_el), v);
    if (kv) {
      const uint64_t c = KvDst(KK, P.err, t, h, d, false);
      if (c != 0ul) StoreFloat(c, v, KK.dtype);
    }
    return;
  }
  float s, c;
  RopeSinCos(LoadI32(P.pos + uint64_t(t * 4)), LoadF32(P.inv_freq + uint64_t(i * 4)),
             P.attn_scale, s, c);
  const int64_t i0 = P.interleaved != 0 ? 2 * i : i;
  const int64_t i1 = P.interleaved != 0 ? 2 * i + 1 : i + half_;
  const float x0 = LoadF32(src + uint64_t(i0 * P.x_el));
  const float x1 = LoadF32(src + uint64_t(i1 * P.x_el));
  float y0, y1;
  RopeRotate(x0, x1, s, c, y0, y1);
  StoreF32(dst + uint64_t(i0 * P.o_el), y0);
  StoreF32(dst + uint64_t(i1 * P.o_el), y1);
  if (kv) {
    const uint64_t c0 = KvDst(KK, P.err, t, h, i0, i == 0 && h == 0);
    if (c0 != 0ul) {
      StoreFloat(c0, y0, KK.dtype);
      StoreFloat(KvDst(KK, P.err, t, h, i1, false), y1, KK.dtype);
    }
  }
}
#endif
