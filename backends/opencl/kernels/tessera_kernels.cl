// Tessera's portable kernels: every IR op in OpenCL C 1.2, fp32 arithmetic over f32/f16/bf16 and
// the 8/4-bit block formats (plugins-api/include/tessera/quant_formats.h). Built at run time by
// the OpenCL plugin and, compiled to SPIR-V at build time (clang + llvm-spirv), by the Level Zero
// plugin. params.h is prepended to this file before either compiler sees it.
//
// Style: one work item per output element (per row for the row reductions, per (query, head)
// for attention), launched 1-D with a fixed local size; every kernel guards `i >= n`. Each
// output's arithmetic runs in one fixed order that depends only on its own inputs, never on the
// launch geometry or on the other rows in the call: batch-invariant by construction. Conversions
// are bit-exact with the CPU reference (integer bit manipulation, no half type needed).
//
// Deliberately simple: correct and portable first. A real GPU wants tiled matmuls and
// work-group reductions; those are future work (see backends/opencl/README.md).

#define GI() ((tsr_i64)get_global_id(0))
#define F32AT(base, off) (*(__global const float*)((base) + (off)))
#define F32REF(base, off) (*(__global float*)((base) + (off)))

#define DT_F32 0
#define DT_F16 1
#define DT_BF16 2
#define DT_I32 3
#define DT_I64 4
#define DT_I8 5
#define DT_U8 6
#define DT_Q8 7
#define DT_Q4 8

// tsr_op values (plugin_api.h).
#define OP_ADD 2
#define OP_SUB 3
#define OP_MUL 4
#define OP_DIV 5
#define OP_SCALE 6
#define OP_SILU 7
#define OP_GELU 8
#define OP_GELU_TANH 9
#define OP_RELU 10
#define OP_TANH 11
#define OP_SIGMOID 12
#define OP_SOFTCAP 13
#define OP_SWIGLU 14
#define OP_GEGLU 15
#define OP_RMS_NORM 16
#define OP_LAYER_NORM 17
#define OP_SOFTMAX 19
#define OP_SUM 28
#define OP_MEAN 29
#define OP_MAX 30

// ---- dtype decode / encode ----

float HalfToFloat(uint h) {
  const uint sign = (h & 0x8000u) << 16;
  const uint e = (h >> 10) & 0x1fu;
  const uint m = h & 0x3ffu;
  if (e == 0) {  // zero or subnormal: exact in f32
    const float v = (float)m * 0x1p-24f;
    return sign ? -v : v;
  }
  if (e == 31) return as_float(sign | 0x7f800000u | (m << 13));
  return as_float(sign | ((e + 112u) << 23) | (m << 13));
}

float Bf16ToFloat(uint b) {
  return as_float(b << 16);
}

// binary16 bits of f, round-to-nearest-even (the CPU reference's F32ToF16).
uint FloatToHalf(float f) {
  const uint x = as_uint(f);
  const uint sign = (x >> 16) & 0x8000u;
  const uint e8 = (x >> 23) & 0xffu;
  const uint mant = x & 0x7fffffu;
  if (e8 == 0xffu) return sign | 0x7c00u | (mant ? (0x200u | (mant >> 13)) : 0u);
  const int e = (int)e8 - 127 + 15;
  if (e >= 31) return sign | 0x7c00u;
  if (e <= 0) {
    if (e < -10) return sign;
    const uint m = mant | 0x800000u;
    const int shift = 14 - e;
    uint q = m >> shift;
    const uint rem = m & ((1u << shift) - 1u);
    const uint halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (q & 1u))) ++q;
    return sign | q;
  }
  uint h = ((uint)e << 10) | (mant >> 13);
  const uint rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return sign | h;
}

uint FloatToBf16(float f) {
  const uint x = as_uint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (x >> 16) | 0x40u;
  return (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
}

uint LoadU16(__global const uchar* p) {
  return (uint)p[0] | ((uint)p[1] << 8);  // quantized blocks are byte-aligned only
}

void StoreU16(__global uchar* p, uint v) {
  p[0] = (uchar)(v & 0xffu);
  p[1] = (uchar)(v >> 8);
}

// Value k of a quantized row.
float DequantAt(__global const uchar* row, int dt, tsr_i64 k) {
  const tsr_i64 b = k / 32;
  const int i = (int)(k % 32);
  if (dt == DT_Q8) {
    __global const uchar* blk = row + b * 34;
    return HalfToFloat(LoadU16(blk)) * (float)(char)blk[2 + i];
  }
  __global const uchar* blk = row + b * 18;
  const uint byte = blk[2 + (i & 15)];
  const int nib = i < 16 ? (int)(byte & 0x0fu) : (int)(byte >> 4);
  return HalfToFloat(LoadU16(blk)) * (float)(nib - 8);
}

float LoadFloat(__global const uchar* p, int dt) {
  if (dt == DT_F16) return HalfToFloat(LoadU16(p));
  if (dt == DT_BF16) return Bf16ToFloat(LoadU16(p));
  return *(__global const float*)p;
}

// Element k of a weight row in any matmul dtype (plain dtypes: contiguous row).
float WeightAt(__global const uchar* row, int dt, tsr_i64 k) {
  if (dt == DT_F32) return ((__global const float*)row)[k];
  if (dt == DT_F16) return HalfToFloat(LoadU16(row + 2 * k));
  if (dt == DT_BF16) return Bf16ToFloat(LoadU16(row + 2 * k));
  return DequantAt(row, dt, k);
}

void StoreFloat(__global uchar* p, int dt, float f) {
  if (dt == DT_F32) {
    *(__global float*)p = f;
  } else if (dt == DT_F16) {
    StoreU16(p, FloatToHalf(f));
  } else if (dt == DT_BF16) {
    StoreU16(p, FloatToBf16(f));
  }
}

// Byte offset of flat index i (row-major over w.ne) in tensor k of the walk.
tsr_i64 WalkOffset(const TsrWalk* w, int k, tsr_i64 i) {
  tsr_i64 off = 0;
  for (int d = (int)w->ndim - 1; d >= 0; --d) {
    const tsr_i64 ne = w->ne[d];
    const tsr_i64 q = i / ne;
    off += (i - q * ne) * w->s[k][d];
    i = q;
  }
  return off;
}

void SetError(__global int* err, int bit) {
  atomic_or(err, bit);
}

// ---- elementwise ----

float Sigmoid(float x) {
  return 1.0f / (1.0f + exp(-x));
}

float GeluTanh(float x) {
  const float inner = 0.7978845608028654f * fma(0.044715f * x, x * x, x);
  return 0.5f * x * (1.0f + tanh(inner));
}

float Apply(int op, float a, float b, float p0, float p1) {
  switch (op) {
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    case OP_DIV: return a / b;
    case OP_SCALE: return a * p0 + p1;
    case OP_SILU: return a * Sigmoid(a);
    case OP_GELU: return 0.5f * a * (1.0f + erf(a * 0.70710678118654752f));
    case OP_GELU_TANH: return GeluTanh(a);
    case OP_RELU: return fmax(a, 0.0f);
    case OP_TANH: return tanh(a);
    case OP_SIGMOID: return Sigmoid(a);
    case OP_SOFTCAP: return p0 * tanh(a / p0);
    case OP_SWIGLU: return a * Sigmoid(a) * b;
    case OP_GEGLU: return GeluTanh(a) * b;
    default: return 0.0f;
  }
}

__kernel void tsr_elementwise(__global const uchar* a, __global const uchar* b,
                              __global uchar* out, TsrEltParams p) {
  const tsr_i64 i = GI();
  if (i >= p.walk.numel) return;
  float av, bv = 0.0f;
  if (p.contiguous) {
    av = F32AT(a, p.a_off + 4 * i);
    if (p.has_b) bv = F32AT(b, p.b_off + 4 * (i % p.b_period));
    F32REF(out, p.o_off + 4 * i) = Apply(p.op, av, bv, p.p0, p.p1);
    return;
  }
  av = F32AT(a, p.a_off + WalkOffset(&p.walk, 0, i));
  if (p.has_b) bv = F32AT(b, p.b_off + WalkOffset(&p.walk, 1, i));
  F32REF(out, p.o_off + WalkOffset(&p.walk, 2, i)) = Apply(p.op, av, bv, p.p0, p.p1);
}

// ---- row ops: one work item a row, sequential sums ----

__kernel void tsr_rows(__global const uchar* xb, __global const uchar* maskb,
                       __global const uchar* wb, __global const uchar* bb, __global uchar* ob,
                       TsrRowParams p) {
  const tsr_i64 row = GI();
  if (row >= p.rows.numel) return;
  __global const float* x = (__global const float*)(xb + p.x_off + WalkOffset(&p.rows, 0, row));
  __global float* out = (__global float*)(ob + p.o_off + WalkOffset(&p.rows, 1, row));
  __global const float* w = (__global const float*)(wb + p.w_off);
  __global const float* bias = (__global const float*)(bb + p.b_off);
  const tsr_i64 n = p.n;
  if (p.op == OP_RMS_NORM) {
    float ss = 0.0f;
    for (tsr_i64 i = 0; i < n; ++i) ss = fma(x[i * p.sx], x[i * p.sx], ss);
    const float r = 1.0f / sqrt(ss / (float)n + p.eps);
    for (tsr_i64 i = 0; i < n; ++i) {
      float y = x[i * p.sx] * r;
      if (p.has_weight) y *= w[i] + p.woff;
      out[i * p.so] = y;
    }
  } else if (p.op == OP_LAYER_NORM) {
    float s = 0.0f;
    for (tsr_i64 i = 0; i < n; ++i) s += x[i * p.sx];
    const float mean = s / (float)n;
    float v = 0.0f;
    for (tsr_i64 i = 0; i < n; ++i) {
      const float d = x[i * p.sx] - mean;
      v = fma(d, d, v);
    }
    const float r = 1.0f / sqrt(v / (float)n + p.eps);
    for (tsr_i64 i = 0; i < n; ++i) {
      float y = (x[i * p.sx] - mean) * r;
      if (p.has_weight) y *= w[i];
      if (p.has_bias) y += bias[i];
      out[i * p.so] = y;
    }
  } else if (p.op == OP_SOFTMAX) {
    __global const float* m =
        (__global const float*)(maskb + p.m_off + (p.has_mask ? WalkOffset(&p.rows, 2, row) : 0));
    float mx = -INFINITY;
    for (tsr_i64 i = 0; i < n; ++i) {
      const float l = x[i * p.sx] * p.scale + (p.has_mask ? m[i * p.sm] : 0.0f);
      mx = fmax(mx, l);
    }
    if (!(mx > -INFINITY)) {  // every logit masked: the row is all zero
      for (tsr_i64 i = 0; i < n; ++i) out[i * p.so] = 0.0f;
      return;
    }
    float s = 0.0f;
    for (tsr_i64 i = 0; i < n; ++i) {
      const float l = x[i * p.sx] * p.scale + (p.has_mask ? m[i * p.sm] : 0.0f);
      s += exp(l - mx);
    }
    const float inv = 1.0f / s;
    for (tsr_i64 i = 0; i < n; ++i) {
      const float l = x[i * p.sx] * p.scale + (p.has_mask ? m[i * p.sm] : 0.0f);
      out[i * p.so] = exp(l - mx) * inv;
    }
  } else if (p.op == OP_MAX) {
    float mx = -INFINITY;
    for (tsr_i64 i = 0; i < n; ++i) mx = fmax(mx, x[i * p.sx]);
    out[0] = mx;
  } else {  // SUM, MEAN
    float s = 0.0f;
    for (tsr_i64 i = 0; i < n; ++i) s += x[i * p.sx];
    out[0] = p.op == OP_MEAN ? s / (float)n : s;
  }
}

// ---- matmul: one work item an output element, K summed in order with fma ----

__kernel void tsr_matmul(__global const uchar* xb, __global const uchar* wb,
                         __global const uchar* bb, __global uchar* ob, TsrMatmulParams p) {
  const tsr_i64 i = GI();
  if (i >= p.M * p.N) return;
  const tsr_i64 m = i / p.N, n = i % p.N;
  __global const float* x = (__global const float*)(xb + p.x_off) + m * p.x_row;
  __global const uchar* wrow = wb + p.w_off + n * p.w_row_bytes;
  float acc = 0.0f;
  if (p.w_dtype == DT_F32) {
    __global const float* w = (__global const float*)wrow;
    for (tsr_i64 k = 0; k < p.K; ++k) acc = fma(x[k], w[k], acc);
  } else if (p.w_dtype == DT_F16 || p.w_dtype == DT_BF16) {
    const int bf = p.w_dtype == DT_BF16;
    for (tsr_i64 k = 0; k < p.K; ++k) {
      const uint h = LoadU16(wrow + 2 * k);
      acc = fma(x[k], bf ? Bf16ToFloat(h) : HalfToFloat(h), acc);
    }
  } else if (p.w_dtype == DT_Q8) {
    for (tsr_i64 b = 0; b < p.K / 32; ++b) {
      __global const uchar* blk = wrow + b * 34;
      const float d = HalfToFloat(LoadU16(blk));
      for (int j = 0; j < 32; ++j) acc = fma(x[b * 32 + j], d * (float)(char)blk[2 + j], acc);
    }
  } else {
    for (tsr_i64 b = 0; b < p.K / 32; ++b) {
      __global const uchar* blk = wrow + b * 18;
      const float d = HalfToFloat(LoadU16(blk));
      for (int j = 0; j < 16; ++j)
        acc = fma(x[b * 32 + j], d * (float)((int)(blk[2 + j] & 0x0fu) - 8), acc);
      for (int j = 0; j < 16; ++j)
        acc = fma(x[b * 32 + 16 + j], d * (float)((int)(blk[2 + j] >> 4) - 8), acc);
    }
  }
  if (p.has_bias) acc += ((__global const float*)(bb + p.b_off))[n];
  ((__global float*)(ob + p.o_off))[m * p.out_row + n * p.out_col] = acc;
}

// ---- ROPE ----

__kernel void tsr_rope(__global const uchar* xb, __global const uchar* posb,
                       __global const uchar* fb, __global uchar* ob, TsrRopeParams p) {
  const tsr_i64 halfway = p.R / 2, per = halfway + (p.D - p.R);
  const tsr_i64 u = GI();
  if (u >= p.T * p.H * per) return;
  const tsr_i64 th = u / per, i = u % per;
  const tsr_i64 t = th / p.H, h = th % p.H;
  __global const uchar* src = xb + p.x_off + t * p.x_tok + h * p.x_head;
  __global uchar* dst = ob + p.o_off + t * p.o_tok + h * p.o_head;
  if (i >= halfway) {  // a pass-through dim
    const tsr_i64 d = p.R + (i - halfway);
    F32REF(dst, d * p.o_el) = F32AT(src, d * p.x_el);
    return;
  }
  const int pos = ((__global const int*)(posb + p.p_off))[t];
  const float angle = (float)pos * ((__global const float*)(fb + p.f_off))[i];
  float c;
  float s = sincos(angle, &c);
  c *= p.attn_scale;
  s *= p.attn_scale;
  const tsr_i64 i0 = p.interleaved ? 2 * i : i, i1 = p.interleaved ? 2 * i + 1 : i + halfway;
  const float x0 = F32AT(src, i0 * p.x_el), x1 = F32AT(src, i1 * p.x_el);
  F32REF(dst, i0 * p.o_el) = x0 * c - x1 * s;
  F32REF(dst, i1 * p.o_el) = x1 * c + x0 * s;
}

// ---- attention: one work item a (query, q head), online softmax over its keys in order ----

// Byte offset of token j's row (before the head offset) in K (is_v = 0) or V; -1 when the block
// table points outside the cache.
tsr_i64 KeyRow(const TsrAttnParams* p, __global const int* table, tsr_i64 s, tsr_i64 k_first,
               tsr_i64 j, int is_v) {
  const tsr_i64 tok = is_v ? p->v_tok : p->k_tok;
  if (!p->paged) return (k_first + j) * tok;
  const int blk = table[s * p->table_row + j / p->block_size];
  if (blk < 0 || blk >= p->n_blocks) return -1;
  return (tsr_i64)blk * (is_v ? p->v_block : p->k_block) + (j % p->block_size) * tok;
}

__kernel void tsr_attention(__global const uchar* qb, __global const uchar* kb,
                            __global const uchar* vb, __global const uchar* cuqb,
                            __global const uchar* cukb, __global const uchar* tabb,
                            __global const uchar* lenb, __global uchar* ob, __global int* err,
                            TsrAttnParams p) {
  const tsr_i64 u = GI();
  if (u >= p.T * p.Hq) return;
  const tsr_i64 t = u / p.Hq, h = u % p.Hq;
  const tsr_i64 hk = h / (p.Hq / p.Hkv);
  __global const int* cu_q = (__global const int*)(cuqb + p.cuq_off);
  __global const int* cu_k = (__global const int*)(cukb + p.cuk_off);
  __global const int* table = (__global const int*)(tabb + p.tab_off);
  __global const int* kv_lens = (__global const int*)(lenb + p.len_off);
  __global float* out = (__global float*)(ob + p.o_off + t * p.o_tok + h * p.o_head);
  // The sequence of token t: the last s with cu_q[s] <= t (cu_q is non-decreasing).
  tsr_i64 lo_s = 0, hi_s = p.S;
  int ok = p.S > 0;
  while (ok && hi_s - lo_s > 1) {
    const tsr_i64 mid = (lo_s + hi_s) / 2;
    if (cu_q[mid] <= t) lo_s = mid; else hi_s = mid;
  }
  const tsr_i64 s = lo_s;
  tsr_i64 q_first = 0, q_len = 0, k_first = 0, k_len = 0;
  if (ok) {
    q_first = cu_q[s];
    q_len = cu_q[s + 1] - q_first;
    ok = t >= q_first && t < q_first + q_len;
  }
  if (ok && p.paged) {
    k_len = kv_lens[s];
    ok = k_len >= 0 && k_len <= p.max_blocks * p.block_size;
  } else if (ok) {
    k_first = cu_k[s];
    k_len = cu_k[s + 1] - k_first;
    ok = k_first >= 0 && k_len >= 0 && k_first + k_len <= p.n_kv_rows;
  }
  if (!ok) {
    SetError(err, TSR_K_ERR_SEQLENS);
    for (tsr_i64 d = 0; d < p.Dv; ++d) out[d] = 0.0f;
    return;
  }
  const tsr_i64 pos = k_len - q_len + (t - q_first);
  const tsr_i64 hi = p.causal ? min(k_len, pos + 1) : k_len;
  const tsr_i64 lo = (p.window > 0 && pos - p.window + 1 > 0) ? pos - p.window + 1 : 0;
  const int es = p.kv_dtype == DT_F32 ? 4 : 2;
  __global const float* q = (__global const float*)(qb + p.q_off + t * p.q_tok + h * p.q_head);
  float acc[TSR_K_ATTN_MAX_HEAD_DIM];
  for (tsr_i64 d = 0; d < p.Dv; ++d) acc[d] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  for (tsr_i64 j = lo; j < hi; ++j) {
    const tsr_i64 kr = KeyRow(&p, table, s, k_first, j, 0);
    const tsr_i64 vr = KeyRow(&p, table, s, k_first, j, 1);
    if (kr < 0 || vr < 0) {
      SetError(err, TSR_K_ERR_BLOCK_TABLE);
      continue;
    }
    __global const uchar* krow = kb + p.k_off + kr + hk * p.k_head;
    float dot = 0.0f;
    for (tsr_i64 d = 0; d < p.D; ++d) dot = fma(q[d], LoadFloat(krow + d * es, p.kv_dtype), dot);
    float x = dot * p.scale;
    if (p.softcap > 0.0f) x = p.softcap * tanh(x / p.softcap);
    __global const uchar* vrow = vb + p.v_off + vr + hk * p.v_head;
    float w;
    if (x > m) {
      const float corr = m == -INFINITY ? 0.0f : exp(m - x);
      l = l * corr + 1.0f;
      for (tsr_i64 d = 0; d < p.Dv; ++d) acc[d] *= corr;
      m = x;
      w = 1.0f;
    } else {
      w = exp(x - m);
      l += w;
    }
    for (tsr_i64 d = 0; d < p.Dv; ++d) acc[d] = fma(w, LoadFloat(vrow + d * es, p.kv_dtype), acc[d]);
  }
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  for (tsr_i64 d = 0; d < p.Dv; ++d) out[d] = acc[d] * inv;
}

// ---- data movement ----

tsr_i64 DtypeSizeK(int t) {
  if (t == DT_F32 || t == DT_I32) return 4;
  if (t == DT_F16 || t == DT_BF16) return 2;
  if (t == DT_I64) return 8;
  return 1;
}

// Every plain dtype as float (the reference reads through double; identical for these values
// except i64 beyond 2^53, which no model tensor holds).
float ReadScalar(__global const uchar* p, int t) {
  if (t == DT_F32) return *(__global const float*)p;
  if (t == DT_F16) return HalfToFloat(LoadU16(p));
  if (t == DT_BF16) return Bf16ToFloat(LoadU16(p));
  if (t == DT_I32) return (float)*(__global const int*)p;
  if (t == DT_I64) return (float)*(__global const long*)p;
  if (t == DT_I8) return (float)*(__global const char*)p;
  return (float)*p;
}

// Integers go to i32 without a float round trip (i64 saturates); floats truncate, saturated,
// NaN -> 0 (convert_int_sat_rtz does exactly that).
int ReadAsI32(__global const uchar* p, int t) {
  if (t == DT_I64) return (int)clamp(*(__global const long*)p, (long)INT_MIN, (long)INT_MAX);
  if (t == DT_I32) return *(__global const int*)p;
  if (t == DT_I8) return (int)*(__global const char*)p;
  if (t == DT_U8) return (int)*p;
  return convert_int_sat_rtz(ReadScalar(p, t));
}

void ConvertOne(__global const uchar* src, int st, __global uchar* dst, int dt) {
  if (st == dt) {
    for (tsr_i64 b = 0; b < DtypeSizeK(st); ++b) dst[b] = src[b];
  } else if (dt == DT_I32) {
    *(__global int*)dst = ReadAsI32(src, st);
  } else {
    StoreFloat(dst, dt, ReadScalar(src, st));
  }
}

__kernel void tsr_convert(__global const uchar* in, __global uchar* out, TsrConvertParams p) {
  const tsr_i64 i = GI();
  if (i >= p.walk.numel) return;
  const tsr_i64 si = p.flat ? WalkOffset(&p.in_flat, 0, i) : WalkOffset(&p.walk, 0, i);
  const tsr_i64 di = p.flat ? WalkOffset(&p.out_flat, 0, i) : WalkOffset(&p.walk, 2, i);
  ConvertOne(in + p.i_off + si, p.in_dtype, out + p.o_off + di, p.out_dtype);
}

#pragma OPENCL FP_CONTRACT OFF
// quant_formats.h's reference quantizers, bit for bit (no contraction: x / d + 8.5 as
// specified). Blocks are stored byte by byte (they are only byte-aligned).
void QuantizeQ8(const float* x, __global uchar* blk) {
  float amax = 0.0f;
  for (int i = 0; i < 32; ++i) amax = fmax(amax, fabs(x[i]));
  const float d = amax / 127.0f;
  StoreU16(blk, FloatToHalf(d));
  for (int i = 0; i < 32; ++i) {
    float q = d == 0.0f ? 0.0f : round(x[i] / d);
    q = fmin(fmax(q, -127.0f), 127.0f);
    blk[2 + i] = (uchar)(char)(int)q;
  }
}

void QuantizeQ4(const float* x, __global uchar* blk) {
  float amax = 0.0f, m = 0.0f;
  for (int i = 0; i < 32; ++i) {
    if (fabs(x[i]) > amax) {
      amax = fabs(x[i]);
      m = x[i];
    }
  }
  const float d = m / -8.0f;
  StoreU16(blk, FloatToHalf(d));
  int nib[32];
  for (int i = 0; i < 32; ++i) {
    if (d == 0.0f) {
      nib[i] = 8;
      continue;
    }
    const float q = x[i] / d + 8.5f;
    nib[i] = (int)fmin(fmax(trunc(q), 0.0f), 15.0f);
  }
  for (int i = 0; i < 16; ++i) blk[2 + i] = (uchar)(nib[i] | (nib[i + 16] << 4));
}
#pragma OPENCL FP_CONTRACT ON

__kernel void tsr_quant_rows(__global const uchar* inb, __global uchar* outb, TsrQuantParams p) {
  const tsr_i64 bpr = p.n / 32;
  const int quantize = p.out_dtype == DT_Q8 || p.out_dtype == DT_Q4;
  const int same = p.in_dtype == p.out_dtype;
  const tsr_i64 per = quantize ? bpr : p.n;
  const tsr_i64 u = GI();
  if (u >= p.rows * per) return;
  const tsr_i64 r = u / per, k = u % per;
  __global const uchar* in = inb + p.i_off + WalkOffset(&p.walk, 0, r);
  __global uchar* out = outb + p.o_off + WalkOffset(&p.walk, 2, r);
  if (quantize && same) {
    const tsr_i64 bb = p.out_dtype == DT_Q8 ? 34 : 18;
    for (tsr_i64 b = 0; b < bb; ++b) out[k * bb + b] = in[k * bb + b];
  } else if (quantize) {
    float x[32];
    for (int i = 0; i < 32; ++i) x[i] = F32AT(in, (k * 32 + i) * p.in_el);
    if (p.out_dtype == DT_Q8) {
      QuantizeQ8(x, out + k * 34);
    } else {
      QuantizeQ4(x, out + k * 18);
    }
  } else {
    StoreFloat(out + k * p.out_el, p.out_dtype, DequantAt(in, p.in_dtype, k));
  }
}

__kernel void tsr_get_rows(__global const uchar* tb, __global const uchar* ib, __global uchar* ob,
                           __global int* err, TsrGetRowsParams p) {
  const tsr_i64 u = GI();
  if (u >= p.T * p.D) return;
  const tsr_i64 t = u / p.D, d = u % p.D;
  const int id = *(__global const int*)(ib + p.i_off + t * p.id_stride);
  __global float* o = (__global float*)(ob + p.o_off + t * p.o_row + d * p.o_el);
  if (id < 0 || id >= p.V) {
    if (d == 0) SetError(err, TSR_K_ERR_INDEX);
    *o = 0.0f;
    return;
  }
  __global const uchar* row = tb + p.t_off + (tsr_i64)id * p.row_bytes;
  *o = (p.dtype == DT_Q8 || p.dtype == DT_Q4) ? DequantAt(row, p.dtype, d)
                                               : ReadScalar(row + d * p.el_bytes, p.dtype);
}

__kernel void tsr_kv_write(__global const uchar* rb, __global const uchar* sb, __global uchar* cb,
                           __global int* err, TsrKvWriteParams p) {
  const tsr_i64 u = GI();
  if (u >= p.T * p.H * p.D) return;
  const tsr_i64 d = u % p.D, th = u / p.D;
  const tsr_i64 t = th / p.H, h = th % p.H;
  const int slot = ((__global const int*)(sb + p.s_off))[t];
  if (slot == -1) return;
  if (slot < 0 || slot >= p.n_slots) {
    if (d == 0 && h == 0) SetError(err, TSR_K_ERR_INDEX);
    return;
  }
  const float x = F32AT(rb, p.r_off + t * p.r_tok + h * p.r_head + d * p.r_el);
  __global uchar* dst = cb + p.c_off + (slot / p.block_size) * p.c_block +
                        (slot % p.block_size) * p.c_slot + h * p.c_head + d * p.c_el;
  StoreFloat(dst, p.dtype, x);
}

// ---- convolution: one work item an output, its (ci, kh, kw) window in that order ----

__kernel void tsr_conv(__global const uchar* xb, __global const uchar* wb,
                       __global const uchar* bb, __global uchar* ob, TsrConvParams p) {
  const tsr_i64 u = GI();
  if (u >= p.B * p.Cout * p.Ho * p.Wo) return;
  const tsr_i64 cg = p.Cin / p.groups, coutg = p.Cout / p.groups;
  const tsr_i64 ow = u % p.Wo;
  tsr_i64 r = u / p.Wo;
  const tsr_i64 oh = r % p.Ho;
  r /= p.Ho;
  const tsr_i64 co = r % p.Cout, b = r / p.Cout;
  const tsr_i64 g = co / coutg;
  __global const uchar* wrow = wb + p.w_off + co * p.w_row_bytes;
  float s = 0.0f;
  for (tsr_i64 ci = 0; ci < cg; ++ci) {
    __global const uchar* plane = xb + p.x_off + b * p.xs[0] + (g * cg + ci) * p.xs[1];
    for (tsr_i64 kh = 0; kh < p.KH; ++kh) {
      const tsr_i64 ih = oh * p.sh - p.ph + kh * p.dh;
      for (tsr_i64 kw = 0; kw < p.KW; ++kw) {
        const tsr_i64 iw = ow * p.sw - p.pw + kw * p.dw;
        if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;  // zero padding
        const float xv = F32AT(plane, ih * p.xs[2] + iw * p.xs[3]);
        s = fma(xv, WeightAt(wrow, p.w_dtype, (ci * p.KH + kh) * p.KW + kw), s);
      }
    }
  }
  if (p.has_bias) s += ((__global const float*)(bb + p.b_off))[co];
  F32REF(ob, p.o_off + b * p.os[0] + co * p.os[1] + oh * p.os[2] + ow * p.os[3]) = s;
}
