#version 460
// KV_WRITE: rows[t, h, :] into the paged cache at slots[t] (-1 = skip), converting to the
// cache's dtype. Slots outside the cache set the device error word and are skipped.
#include "common.glsl"

layout(local_size_x = 256) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t err;
  uint64_t cache, rows, slots;
  int64_t c_block, c_slot, c_head, c_el;
  int64_t r_tok, r_head, r_el;
  int64_t T, H, D, block_size, n_slots;
  int dtype;
  int pair_groups;  // > 0: a pair dispatch (run_ops.cc RunPair); see PairParams
};

// A pair dispatch (two independent nodes of this op in one dispatch, e.g. the q and k RoPEs of a
// decode step) carries two parameter blocks back to back; the first pair_groups workgroups run
// the first, the rest the second. Each element is computed as when its node runs alone.
#define PARAMS_BYTES 136  // sizeof(ops.h's KvWriteP)
Params PairParams(out int64_t g, out uint64_t err) {
  Params P = Params(pc.params);
  err = P.err;  // the host patches only the first block's error word
  g = int64_t(GroupIndex());
  if (P.pair_groups > 0 && g >= int64_t(P.pair_groups)) {
    g -= int64_t(P.pair_groups);
    P = Params(pc.params + uint64_t(PARAMS_BYTES));
  }
  return P;
}

void main() {
  int64_t g;
  uint64_t err;
  Params P = PairParams(g, err);
  const int64_t u = g * 256 + int64_t(gl_LocalInvocationID.x);
  if (u >= P.T * P.H * P.D) return;
  const int64_t d = u % P.D, th = u / P.D;
  const int64_t t = th / P.H, h = th % P.H;
  const int slot = LoadI32(P.slots + uint64_t(t * 4));
  if (slot == -1) return;
  if (slot < 0 || int64_t(slot) >= P.n_slots) {
    if (d == 0 && h == 0) SetError(err, ERR_INDEX);
    return;
  }
  const float x = LoadF32(P.rows + uint64_t(t * P.r_tok + h * P.r_head + d * P.r_el));
  const int64_t sl = int64_t(slot);
  const uint64_t dst =
      P.cache + uint64_t((sl / P.block_size) * P.c_block + (sl % P.block_size) * P.c_slot +
                         h * P.c_head + d * P.c_el);
  StoreFloat(dst, x, P.dtype);
}
