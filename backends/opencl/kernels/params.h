// Kernel parameter blocks shared by the host code (C++, backends/opencl and backends/level-zero)
// and the device code (OpenCL C, tessera_kernels.cl): one definition, compiled by both sides, so
// the by-value kernel arguments have one layout. Only 8-byte (long/double-free) and 4-byte fields,
// each block ordered so that no padding differs between compilers.
//
// Every tensor argument is a buffer plus a BYTE offset (OpenCL 1.2 has no device pointers on the
// host side); strides are in bytes unless a name says otherwise.
#ifndef TESSERA_BACKENDS_OPENCL_KERNELS_PARAMS_H_
#define TESSERA_BACKENDS_OPENCL_KERNELS_PARAMS_H_

#if defined(TSR_OPENCL_C) || defined(__OPENCL_C_VERSION__) || defined(__OPENCL_VERSION__)
typedef long tsr_i64;
typedef int tsr_i32;
#else
#include <cstdint>
typedef int64_t tsr_i64;
typedef int32_t tsr_i32;
#endif

#define TSR_K_MAX_DIMS 6
#define TSR_K_ATTN_MAX_HEAD_DIM 256

// Bits of the per-device error word kernels set when data (not shapes) is invalid.
#define TSR_K_ERR_INDEX 1       /* GET_ROWS ids, KV_WRITE slots out of range */
#define TSR_K_ERR_SEQLENS 2     /* cu_q / cu_k / kv_lens inconsistent */
#define TSR_K_ERR_BLOCK_TABLE 4 /* a block id outside the cache */

// Up to three tensors walked in lock-step over a reference shape (numpy broadcasting: stride 0
// where a tensor's dimension is 1 or missing).
typedef struct TsrWalk {
  tsr_i64 ndim;
  tsr_i64 numel;
  tsr_i64 ne[TSR_K_MAX_DIMS];
  tsr_i64 s[3][TSR_K_MAX_DIMS];
} TsrWalk;

// ADD..DIV, SWIGLU/GEGLU (b used), SCALE, activations, SOFTCAP. Walk: 0 = a, 1 = b, 2 = out.
typedef struct TsrEltParams {
  tsr_i64 a_off, b_off, o_off;
  tsr_i64 b_period;  // contiguous: b[i % b_period]
  tsr_i32 op, has_b, contiguous, pad0;
  float p0, p1;
  TsrWalk walk;
} TsrEltParams;

// One work item a row: RMS_NORM, LAYER_NORM, SOFTMAX, SUM, MEAN, MAX. Walk (outer dims):
// 0 = x, 1 = out, 2 = mask.
typedef struct TsrRowParams {
  tsr_i64 x_off, o_off, m_off, w_off, b_off;
  tsr_i64 n, sx, so, sm;  // row length; element strides along the row
  tsr_i32 op, has_mask, has_weight, has_bias;
  float eps, woff, scale, pad0;
  TsrWalk rows;
} TsrRowParams;

// out[m * out_row + n * out_col] = dot(x[m, :], w[n, :]) (+ bias[n]); element strides.
typedef struct TsrMatmulParams {
  tsr_i64 x_off, w_off, b_off, o_off;
  tsr_i64 x_row, M, K, N, w_row_bytes, out_row, out_col;
  tsr_i32 w_dtype, has_bias;
} TsrMatmulParams;

typedef struct TsrRopeParams {
  tsr_i64 x_off, p_off, f_off, o_off;
  tsr_i64 x_tok, x_head, x_el, o_tok, o_head, o_el;
  tsr_i64 T, H, D, R;
  tsr_i32 interleaved;
  float attn_scale;
} TsrRopeParams;

// Dense varlen (paged = 0: cu_k = in4) or paged (table, kv_lens) attention.
typedef struct TsrAttnParams {
  tsr_i64 q_off, k_off, v_off, o_off, cuq_off, cuk_off, tab_off, len_off;
  tsr_i64 q_tok, q_head, o_tok, o_head;
  tsr_i64 k_tok, k_head, k_block, v_tok, v_head, v_block;
  tsr_i64 table_row, max_blocks, block_size, n_blocks, n_kv_rows;
  tsr_i64 T, Hq, Hkv, D, Dv, S, window;
  tsr_i32 kv_dtype, causal, paged, pad0;
  float scale, softcap;
} TsrAttnParams;

// Plain-dtype conversion: same shape (walk 0 = in, 2 = out) or a reshape (flat: each tensor in
// its own row-major order, slot 0 of in_flat / out_flat).
typedef struct TsrConvertParams {
  tsr_i64 i_off, o_off;
  tsr_i32 in_dtype, out_dtype, flat, pad0;
  TsrWalk walk;
  TsrWalk in_flat;
  TsrWalk out_flat;
} TsrConvertParams;

// Rows of 32-value blocks: quantize (f32 -> q8/q4), dequantize, or block copy.
typedef struct TsrQuantParams {
  tsr_i64 i_off, o_off;
  tsr_i64 rows, n, in_el, out_el;
  tsr_i32 in_dtype, out_dtype;
  TsrWalk walk;  // outer dims: 0 = in rows, 2 = out rows
} TsrQuantParams;

typedef struct TsrGetRowsParams {
  tsr_i64 t_off, i_off, o_off;
  tsr_i64 row_bytes, el_bytes, id_stride, o_row, o_el, T, V, D;
  tsr_i32 dtype, pad0;
} TsrGetRowsParams;

typedef struct TsrKvWriteParams {
  tsr_i64 c_off, r_off, s_off;
  tsr_i64 c_block, c_slot, c_head, c_el, r_tok, r_head, r_el;
  tsr_i64 T, H, D, block_size, n_slots;
  tsr_i32 dtype, pad0;
} TsrKvWriteParams;

// Direct convolution viewed as 2-D (1-D: H = KH = 1, H strides 0).
typedef struct TsrConvParams {
  tsr_i64 x_off, w_off, b_off, o_off;
  tsr_i64 xs[4], os[4];
  tsr_i64 w_row_bytes;
  tsr_i64 B, Cin, H, W, Cout, KH, KW, Ho, Wo;
  tsr_i64 sh, sw, ph, pw, dh, dw, groups;
  tsr_i32 w_dtype, has_bias;
} TsrConvParams;

#endif  // TESSERA_BACKENDS_OPENCL_KERNELS_PARAMS_H_
