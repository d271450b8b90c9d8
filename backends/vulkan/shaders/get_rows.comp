#version 460
// GET_ROWS: out[t, d] f32 = table[ids[t], d] for any table dtype. Ids outside the table set the
// device error word and produce zeros (never an out-of-bounds read).
#include "common.glsl"

layout(local_size_x = 256) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t err;
  uint64_t table, ids, out_;
  int64_t row_bytes, el_bytes, id_stride, o_row, o_el;
  int64_t T, V, D;
  int dtype, pad_;
};

float ReadPlain(uint64_t a, int t) {
  if (t == DT_F32 || t == DT_F16 || t == DT_BF16) return LoadFloat(a, t);
  if (t == DT_I32) return float(LoadI32(a));
  if (t == DT_I64) return float(int64_t((uint64_t(RefU32(a + 4ul).v) << 32) | uint64_t(RefU32(a).v)));
  if (t == DT_I8) return float(int(int8_t(RefU8(a).v)));
  return float(LoadU8(a));
}

void main() {
  Params P = Params(pc.params);
  const int64_t u = int64_t(GroupIndex()) * 256 + int64_t(gl_LocalInvocationID.x);
  if (u >= P.T * P.D) return;
  const int64_t t = u / P.D, d = u % P.D;
  const int id = LoadI32(P.ids + uint64_t(t * P.id_stride));
  const uint64_t o = P.out_ + uint64_t(t * P.o_row + d * P.o_el);
  if (id < 0 || int64_t(id) >= P.V) {
    if (d == 0) SetError(P.err, ERR_INDEX);
    StoreF32(o, 0.0);
    return;
  }
  const uint64_t row = P.table + uint64_t(int64_t(id) * P.row_bytes);
  const bool quant = P.dtype == DT_Q8 || P.dtype == DT_Q4;
  StoreF32(o, quant ? DequantAt(row, P.dtype, d) : ReadPlain(row + uint64_t(d * P.el_bytes), P.dtype));
}
