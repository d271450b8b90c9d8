// Shared by the two MATMUL shaders (matmul.comp: GEMV for few rows, matmul_gemm.comp: tiled GEMM
// for many), compiled once per weight dtype WDT. Both compute every output in one canonical
// order, so a row's bits never depend on M or on which kernel ran (batch invariance):
//
//   chunk c = values [32c, 32c + 32) of K (the last one may be short);
//   p_c     = 0, then p_c = fma(x[k], w[k], p_c) for k ascending in the chunk;
//   out     = ((0 + p_0) + p_1) + ... + p_last, then + bias[n].
//
// Weights decode exactly to f32 (bf16 << 16, f16 bits, q8/q4 d * q is exact in f32), so the
// dtype decides only how a chunk is loaded. A chunk is one q8/q4 block. Zero padding past K is
// harmless: fma(0, 0, p) == p, and no partial or total is ever -0 (they start at +0).
#include "common.glsl"

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t err;
  uint64_t x, w, bias, out_;  // bias = 0 when absent
  int64_t M, K, N;
  int64_t x_row, w_row, out_row, out_col;  // byte strides
  int vec, rows_per_group;                 // vec: bit 0 x rows 16-byte aligned, bit 1 weights,
                                           // bit 2 the decode path
  // Decode group (matmul.comp's DecodeRows only): n_parts GEMVs over the same x in one dispatch
  // (q/k/v, gate/up). Part 0 is w/bias/out_/N/w_row/out_col above; part j >= 1 is entry j - 1
  // of the arrays below and owns the workgroups from group_start[j] on.
  int n_parts, decode_rows;  // decode_rows: weight rows a subgroup in DecodeRows* (<= DROWS)
  int group_start[4];
  uint64_t gw[2], gbias[2], gout[2];
  int64_t gN[2], gw_row[2], gout_col[2];
  // Residual epilogue (DecodeRows*, a lone part only): res_out[n] = out[n] + res[n] as well
  // (the ADD after an o/down projection); res = 0 when absent. f32, unit column stride.
  uint64_t res, res_out;
  // RMS_NORM prologue (DecodeRowsCoalesced only; plugin.cc ExecuteNormGemv): x = the norm of
  // the raw row norm_x with weight norm_w (0: none), computed as rows.comp does; norm_out gets
  // the normed row (the RMS_NORM node's output); norm_x = 0 when absent. f32, contiguous.
  uint64_t norm_x, norm_w, norm_out;
  float norm_eps, norm_woff;
  // Cross-workgroup split of a lone decode GEMV (DecodeRowsSkewed only; run_ops.cc
  // SplitAcrossGroups): xsplit > 1 pieces of xs_chunks chunks a row block, each piece's chunk
  // partials to xs_part ([row][chunk], rows padded to 4 floats), one counter a subgroup row
  // block at xs_count; the last piece to finish folds the row's partials in chunk order.
  uint64_t xs_part, xs_count;
  int xsplit, xs_chunks;
  // Paired epilogues (the PAIRED modules only, decode_skew_pair_*; plugin.cc FuseEpilogue,
  // matmul.comp PairedGroup): a workgroup sums rows_per_group / 2 rows of two
  // row sets and combines them. glu_out != 0: part 0 = gate, part 1 = up, glu_out[n] =
  // silu(gate[n]) * up[n] as elementwise.comp computes it. rope_out != 0: part 0 = q, rotated
  // as rope.comp (neox pairs i, i + rope_R / 2 of each rope_D-row head, position rope_pos[0],
  // inv_freq rope_freq[i], attn scale rope_scale) into rope_out (byte strides rope_o_head /
  // rope_o_el). A part whose out_ is 0 is not stored (the epilogue's output replaces it).
  uint64_t glu_out, rope_out, rope_pos, rope_freq;
  int64_t rope_o_head, rope_o_el;
  int rope_D, rope_R;
  float rope_scale;
  // Lone plain decode GEMV on the skewed kernel (matmul.comp DecodeRowsSkewed, run_ops.cc
  // SplitWithinGroup): > 1 = the workgroup's subgroups split K in kpieces pieces a row block,
  // their chunk partials meet in shared memory and piece 0 folds them in chunk order.
  int kpieces;
  // Persistent norm-fused decode groups (matmul.comp PERSIST, the skew+norm modules only): the
  // group's workgroup count; the dispatch may launch fewer, each taking workgroup indices g,
  // g + launched, ... after one RMS_NORM prologue. 0: as launched.
  int ptotal;
};

layout(buffer_reference, std430, buffer_reference_align = 16) readonly buffer RoU32x4 { uvec4 v; };

#define CHUNK 32
#define VEC_X 1
#define VEC_W 2
#define VEC_DECODE 4  // matmul.comp: the host chose DecodeRows (M == 1; see run_ops.cc)

#if WDT == DT_Q8 || WDT == DT_Q4
#define QUANT 1
#else
#define QUANT 0
#endif

uvec4 Ld16(uint64_t a) { return RoU32x4(a).v; }

// 8 consecutive weights from their loaded words (exact in f32), for LoadW8 and for kernels that
// load the words ahead (matmul.comp MultiRows): f32 lo and hi (16 bytes each); bf16 / f16 lo;
// q8 / q4 the block's scale d and lo = the 4 16-bit words that hold the 8 values (q4: value i <
// 16 is byte 2 + i's low nibble, value 16 + i its high nibble; shift 0 for the block's values
// 0..15, 4 for 16..31). Unused arguments are ignored.
void DecodeW8(uvec4 lo, uvec4 hi, float d, uint shift, out float wv[8]) {
#if WDT == DT_F32
  const vec4 a = uintBitsToFloat(lo), c = uintBitsToFloat(hi);
  wv[0] = a.x, wv[1] = a.y, wv[2] = a.z, wv[3] = a.w;
  wv[4] = c.x, wv[5] = c.y, wv[6] = c.z, wv[7] = c.w;
#else
  [[unroll]] for (int i = 0; i < 4; ++i) {
#if WDT == DT_Q8
    wv[2 * i] = d * float(int(lo[i] << 24) >> 24);
    wv[2 * i + 1] = d * float(int(lo[i] << 16) >> 24);
#elif WDT == DT_Q4
    wv[2 * i] = d * float(int((lo[i] >> shift) & 15u) - 8);
    wv[2 * i + 1] = d * float(int((lo[i] >> (8u + shift)) & 15u) - 8);
#elif WDT == DT_BF16
    wv[2 * i] = uintBitsToFloat(lo[i] << 16);
    wv[2 * i + 1] = uintBitsToFloat(lo[i] & 0xffff0000u);
#else
    wv[2 * i] = F16Bits(lo[i] & 0xffffu);
    wv[2 * i + 1] = F16Bits(lo[i] >> 16);
#endif
  }
#endif
}

// p continued over 8 values in k order: fma(x[k], w[k], p) with x = a then b (the canonical
// chunk chain's step; matmul.comp MatmulRow, MultiRows).
float Fma8(float p, vec4 a, vec4 b, float w[8]) {
  p = fma(a.x, w[0], p);
  p = fma(a.y, w[1], p);
  p = fma(a.z, w[2], p);
  p = fma(a.w, w[3], p);
  p = fma(b.x, w[4], p);
  p = fma(b.y, w[5], p);
  p = fma(b.z, w[6], p);
  p = fma(b.w, w[7], p);
  return p;
}

// Weights [k0, k0 + 8) of a row (k0 a multiple of 8, all < K, the row allowing 16-byte loads):
// 16-byte loads of plain dtypes, 16-bit loads of one block's eighth for q8/q4.
void LoadW8(uint64_t wrow, int64_t k0, out float wv[8]) {
#if QUANT
  const int64_t b = k0 / QBLOCK;
  const int q = int(k0 % QBLOCK) / 8;
  const uint64_t blk = wrow + uint64_t(b * (WDT == DT_Q8 ? Q8_BYTES : Q4_BYTES));
  const float d = F16Bits(LoadU16(blk));
  // q8: the eighth's 4 words follow the scale; q4: the block's 16 bytes hold values i and 16 + i.
  const uint64_t w = blk + uint64_t(2 + (WDT == DT_Q8 ? q : q & 1) * 8);
  uvec4 h;
  [[unroll]] for (int i = 0; i < 4; ++i) h[i] = LoadU16(w + uint64_t(2 * i));
  DecodeW8(h, uvec4(0u), d, q >= 2 ? 4u : 0u, wv);
#elif WDT == DT_F32
  DecodeW8(Ld16(wrow + uint64_t(k0 * 4)), Ld16(wrow + uint64_t(k0 * 4 + 16)), 0.0, 0u, wv);
#else
  DecodeW8(Ld16(wrow + uint64_t(k0 * 2)), uvec4(0u), 0.0, 0u, wv);
#endif
}

// x[k0, k0 + 4) of a 16-byte aligned row (k0 a multiple of 4).
vec4 LoadX4(uint64_t xrow, int64_t k0) { return uintBitsToFloat(Ld16(xrow + uint64_t(k0 * 4))); }

// Weight k of a row, 0 at or past K (the scalar paths: unaligned rows, the last short chunk).
float WeightOr0(uint64_t wrow, int64_t k, int64_t K) {
  return k < K ? WeightAt(wrow, WDT, k) : 0.0;
}
float XOr0(uint64_t xrow, int64_t k, int64_t K) {
  return k < K ? LoadF32(xrow + uint64_t(k * 4)) : 0.0;
}
