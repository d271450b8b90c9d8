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

// Index math: 32-bit in the rope_kv_f32 module (KVF32: run_ops.cc RunRopeKv picks it where the
// host has checked both caches f32, T H per and T H D at most 2^30, block_size and n_slots below
// 2^31), 64-bit in the generic module; cache stores f32 there, in the cache's dtype here. One
// copy of the code below serves both: every stored value and address is the same either way.
// IF_KV: KVF32 runs only kv_fused dispatches (no test: even an `if (true)` can change glslc's
// block order).
#ifdef KVF32
#define IDX int
#define KV_STORE(K, a, v) StoreF32(a, v)
#define IF_KV
#else
#define IDX int64_t
#define KV_STORE(K, a, v) StoreFloat(a, v, K.dtype)
#define IF_KV if (kv)
#endif

// Row t's slot, or -1 to skip it: kv_write.comp's slot checks (-1 skips; outside the cache sets
// the error word, reported once a row as there).
int Slot(KvParams K, uint64_t err, IDX t, bool report) {
  const int slot = LoadI32(K.slots + uint64_t(t) * 4ul);
  if (slot == -1) return -1;
  if (slot < 0 || int64_t(slot) >= K.n_slots) {
    if (report) SetError(err, ERR_INDEX);
    return -1;
  }
  return slot;
}

// The cache address of (slot, h, 0).
uint64_t KvRow(KvParams K, int slot, IDX h) {
  const IDX bs = IDX(K.block_size);
  return K.cache + uint64_t(int64_t(slot / bs) * K.c_block + int64_t(slot % bs) * K.c_slot +
                            int64_t(h) * K.c_head);
}

// kv_write.comp's element u of a KV_WRITE node (the v write of a fused dispatch).
void KvWriteElement(KvParams K, uint64_t err, IDX u) {
  const IDX D = IDX(K.D), H = IDX(K.H);
  if (u < IDX(K.T) * H * D) {  // one exit: inlined without a merge-return wrapper
    const IDX d = u % D, th = u / D;
    const IDX t = th / H, h = th % H;
    const int slot = Slot(K, err, t, d == 0 && h == 0);
    if (slot >= 0) {
      const float v = LoadF32(K.rows + uint64_t(int64_t(t) * K.r_tok + int64_t(h) * K.r_head +
                                                int64_t(d) * K.r_el));
      KV_STORE(K, KvRow(K, slot, h) + uint64_t(int64_t(d) * K.c_el), v);
    }
  }
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

// A RoPE + KV_WRITE dispatch (kv_fused; the k RoPE of a decode step, the KV_WRITE of its output
// into the k cache, optionally the v cache's KV_WRITE): blocks [RopeP][KvWriteP k][KvWriteP v].
// The first pair_groups workgroups run the RoPE and store each rotated value into the k cache
// too (the value KV_WRITE would load from the RoPE's output: the same f32, the same conversion);
// the rest run the v KV_WRITE. Each output element is computed as when its node runs alone.
// The generic module also runs plain and pair dispatches (kv_fused 0: PairParams).
void main() {
  IDX g = IDX(GroupIndex());
  const IDX lane = IDX(gl_LocalInvocationID.x);
  Params P = Params(pc.params);
#ifdef KVF32
  const IDX pg = P.pair_groups;
  if (g >= pg) {
#else
  const bool kv = P.kv_fused != 0;
  const IDX pg = IDX(P.pair_groups);
  if (!kv) {
    P = PairParams(g);
  } else if (g >= pg) {
#endif
    KvWriteElement(KvParams(pc.params + uint64_t(PARAMS_BYTES + KV_BYTES)), P.err,
                   (g - pg) * 256 + lane);
    return;
  }
  KvParams KK = KvParams(pc.params + uint64_t(PARAMS_BYTES));
  const IDX R = IDX(P.R), D = IDX(P.D), H = IDX(P.H);
  const IDX half_ = R / 2, per = half_ + (D - R);
  const IDX u = g * 256 + lane;
  if (u >= IDX(P.T) * H * per) return;
  const IDX th = u / per, i = u % per;
  const IDX t = th / H, h = th % H;
  const uint64_t src = P.x + uint64_t(int64_t(t) * P.x_tok + int64_t(h) * P.x_head);
  const uint64_t dst = P.out_ + uint64_t(int64_t(t) * P.o_tok + int64_t(h) * P.o_head);
  if (i >= half_) {  // a pass-through dim
    const IDX d = R + (i - half_);
    const float v = LoadF32(src + uint64_t(int64_t(d) * P.x_el));
    StoreF32(dst + uint64_t(int64_t(d) * P.o_el), v);
    IF_KV {
      const int slot = Slot(KK, P.err, t, false);
      if (slot >= 0) KV_STORE(KK, KvRow(KK, slot, h) + uint64_t(int64_t(d) * KK.c_el), v);
    }
    return;
  }
  float s, c;
  RopeSinCos(LoadI32(P.pos + uint64_t(t) * 4ul), LoadF32(P.inv_freq + uint64_t(i) * 4ul),
             P.attn_scale, s, c);
  const IDX i0 = P.interleaved != 0 ? 2 * i : i;
  const IDX i1 = P.interleaved != 0 ? 2 * i + 1 : i + half_;
  const float x0 = LoadF32(src + uint64_t(int64_t(i0) * P.x_el));
  const float x1 = LoadF32(src + uint64_t(int64_t(i1) * P.x_el));
  float y0, y1;
  RopeRotate(x0, x1, s, c, y0, y1);
  StoreF32(dst + uint64_t(int64_t(i0) * P.o_el), y0);
  StoreF32(dst + uint64_t(int64_t(i1) * P.o_el), y1);
  IF_KV {
    const int slot = Slot(KK, P.err, t, i == 0 && h == 0);
    if (slot >= 0) {
      const uint64_t row = KvRow(KK, slot, h);
      KV_STORE(KK, row + uint64_t(int64_t(i0) * KK.c_el), y0);
      KV_STORE(KK, row + uint64_t(int64_t(i1) * KK.c_el), y1);
    }
  }
}
