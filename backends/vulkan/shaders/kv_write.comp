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
  int dtype, pad_;
};

void main() {
  Params P = Params(pc.params);
  const int64_t u = int64_t(GroupIndex()) * 256 + int64_t(gl_LocalInvocationID.x);
  if (u >= P.T * P.H * P.D) return;
  const int64_t d = u % P.D, th = u / P.D;
  const int64_t t = th / P.H, h = th % P.H;
  const int slot = LoadI32(P.slots + uint64_t(t * 4));
  if (slot == -1) return;
  if (slot < 0 || int64_t(slot) >= P.n_slots) {
    if (d == 0 && h == 0) SetError(P.err, ERR_INDEX);
    return;
  }
  const float x = LoadF32(P.rows + uint64_t(t * P.r_tok + h * P.r_head + d * P.r_el));
  const int64_t sl = int64_t(slot);
  const uint64_t dst = P.cache + uint64_t((sl / P.block_size) * P.c_block +
                                          (sl % P.block_size) * P.c_slot + h * P.c_head + d * P.c_el);
  StoreFloat(dst, x, P.dtype);
}
