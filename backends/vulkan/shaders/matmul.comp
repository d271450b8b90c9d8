#version 460
// MATMUL, out[m, n] = dot(x[m, :], w[n, :]) (+ bias[n]), for one weight dtype (WDT, set at build
// time: one SPIR-V module per dtype). f32 accumulation; weights decode exactly to f32 in
// registers (bf16 and the 8/4-bit blocks stay packed in device memory).
//
// One subgroup a weight row n and a tile of up to 8 x rows (the weight row is read once for the
// tile); a 128-invocation workgroup takes `rows_per_group` consecutive weight rows. Canonical
// order of out[m, n]: lane l sums its K chunks in order with FMA (VEC: chunks of 8 values, or
// one 32-value block for q8/q4; otherwise single values), then subgroupAdd, then the bias. No
// shared memory or barrier. The tile only decides how many rows share a weight load, so a row's
// bits never depend on M: batch-invariant.
#include "common.glsl"

layout(local_size_x = 128) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t err;
  uint64_t x, w, bias, out_;  // bias = 0 when absent
  int64_t M, K, N;
  int64_t x_row, w_row, out_row, out_col;  // byte strides
  int vec, rows_per_group;
};

#define ROWS 8

#if WDT == DT_Q8 || WDT == DT_Q4
#define QUANT 1
#else
#define QUANT 0
#endif

void MatmulRow(Params P, int64_t n) {
  const int64_t m0 = int64_t(gl_WorkGroupID.z) * ROWS;
  const int rows = int(min(int64_t(ROWS), P.M - m0));
  const int tid = int(gl_SubgroupInvocationID);
  const int SG = int(gl_SubgroupSize);
  const uint64_t wrow = P.w + uint64_t(n * P.w_row);
  const uint64_t xb = P.x + uint64_t(m0 * P.x_row);
  const int64_t K = P.K;
  float acc[ROWS];
  [[unroll]] for (int r = 0; r < ROWS; ++r) acc[r] = 0.0;

  if (P.vec != 0) {
#if QUANT
    // One 32-value block a step: scale once, values read as 16-bit words (blocks are 2-aligned).
    const int64_t nb = K / QBLOCK;
    for (int64_t b = tid; b < nb; b += SG) {
#if WDT == DT_Q8
      const uint64_t blk = wrow + uint64_t(b * Q8_BYTES);
#else
      const uint64_t blk = wrow + uint64_t(b * Q4_BYTES);
#endif
      const float d = F16Bits(LoadU16(blk));
      float wv[32];
#if WDT == DT_Q8
      [[unroll]] for (int i = 0; i < 16; ++i) {
        const uint h = LoadU16(blk + uint64_t(2 + 2 * i));
        wv[2 * i] = d * float(int(h << 24) >> 24);
        wv[2 * i + 1] = d * float(int(h << 16) >> 24);
      }
#else
      [[unroll]] for (int i = 0; i < 8; ++i) {
        const uint h = LoadU16(blk + uint64_t(2 + 2 * i));
        wv[2 * i] = d * float(int(h & 15u) - 8);
        wv[2 * i + 1] = d * float(int((h >> 8) & 15u) - 8);
        wv[2 * i + 16] = d * float(int((h >> 4) & 15u) - 8);
        wv[2 * i + 17] = d * float(int((h >> 12) & 15u) - 8);
      }
#endif
      [[unroll]] for (int r = 0; r < ROWS; ++r) {
        if (r < rows) {
          const uint64_t xr = xb + uint64_t(r * P.x_row + b * QBLOCK * 4);
          float a = acc[r];
          [[unroll]] for (int i = 0; i < 8; ++i) {
            const vec4 xv = uintBitsToFloat(RefU32x4(xr + uint64_t(16 * i)).v);
            a = fma(xv.x, wv[4 * i], a);
            a = fma(xv.y, wv[4 * i + 1], a);
            a = fma(xv.z, wv[4 * i + 2], a);
            a = fma(xv.w, wv[4 * i + 3], a);
          }
          acc[r] = a;
        }
      }
    }
#else
    // Chunks of 8 consecutive values, 16-byte aligned loads of x and w.
    for (int64_t k0 = tid * 8; k0 < K; k0 += SG * 8) {
      float wv[8];
#if WDT == DT_F32
      const vec4 w0 = uintBitsToFloat(RefU32x4(wrow + uint64_t(k0 * 4)).v);
      const vec4 w1 = uintBitsToFloat(RefU32x4(wrow + uint64_t(k0 * 4 + 16)).v);
      wv[0] = w0.x, wv[1] = w0.y, wv[2] = w0.z, wv[3] = w0.w;
      wv[4] = w1.x, wv[5] = w1.y, wv[6] = w1.z, wv[7] = w1.w;
#else
      const uvec4 u = RefU32x4(wrow + uint64_t(k0 * 2)).v;
      [[unroll]] for (int i = 0; i < 4; ++i) {
#if WDT == DT_BF16
        wv[2 * i] = uintBitsToFloat(u[i] << 16);
        wv[2 * i + 1] = uintBitsToFloat(u[i] & 0xffff0000u);
#else
        wv[2 * i] = F16Bits(u[i] & 0xffffu);
        wv[2 * i + 1] = F16Bits(u[i] >> 16);
#endif
      }
#endif
      [[unroll]] for (int r = 0; r < ROWS; ++r) {
        if (r < rows) {
          const uint64_t xr = xb + uint64_t(r * P.x_row + k0 * 4);
          const vec4 x0 = uintBitsToFloat(RefU32x4(xr).v);
          const vec4 x1 = uintBitsToFloat(RefU32x4(xr + 16ul).v);
          float a = acc[r];
          a = fma(x0.x, wv[0], a);
          a = fma(x0.y, wv[1], a);
          a = fma(x0.z, wv[2], a);
          a = fma(x0.w, wv[3], a);
          a = fma(x1.x, wv[4], a);
          a = fma(x1.y, wv[5], a);
          a = fma(x1.z, wv[6], a);
          a = fma(x1.w, wv[7], a);
          acc[r] = a;
        }
      }
    }
#endif
  } else {
    for (int64_t k = tid; k < K; k += SG) {
      const float wv = WeightAt(wrow, WDT, k);
      [[unroll]] for (int r = 0; r < ROWS; ++r) {
        if (r < rows) acc[r] = fma(LoadF32(xb + uint64_t(r * P.x_row + k * 4)), wv, acc[r]);
      }
    }
  }

  [[unroll]] for (int r = 0; r < ROWS; ++r) {
    float s = subgroupAdd(acc[r]);
    if (r < rows && subgroupElect()) {
      if (P.bias != 0ul) s += LoadF32(P.bias + uint64_t(n * 4));
      StoreF32(P.out_ + uint64_t((m0 + r) * P.out_row + n * P.out_col), s);
    }
  }
}

void main() {
  Params P = Params(pc.params);
  const int64_t group = int64_t(gl_WorkGroupID.y) * int64_t(gl_NumWorkGroups.x) + int64_t(gl_WorkGroupID.x);
  const int64_t first = group * P.rows_per_group;
  const int64_t last = min(first + P.rows_per_group, P.N);
  // Subgroup-uniform loop: correct whatever number of subgroups the driver formed.
  for (int64_t n = first + gl_SubgroupID; n < last; n += gl_NumSubgroups) MatmulRow(P, n);
}
