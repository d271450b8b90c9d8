#version 460
// Row-wise f32 ops over the innermost dim: RMS_NORM, LAYER_NORM, SOFTMAX (scale + broadcast
// mask), SUM/MEAN/MAX and ARGMAX (i32 out). One 256-invocation workgroup a row.
//
// Batch invariance: a row's sums run in one fixed order that depends only on its length and the
// device's subgroup size: invocation t sums elements t, t + 256, ... in order, subgroups reduce
// with subgroupAdd, and the subgroup partials are added in subgroup order.
#include "common.glsl"

layout(local_size_x = 256) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t err;
  uint64_t x, out_, mask, weight, bias;  // mask/weight/bias: 0 when absent
  int64_t n;                             // row length
  int64_t sx, so, sm;                    // byte strides along the row
  int op, pad_;
  float eps, woff, scale, pad2_;
  Walk rows;  // outer dims: 0 = x, 1 = out, 2 = mask
};

shared float red[64];
shared int redi[64];

float BlockSum(float v) {
  v = subgroupAdd(v);
  barrier();  // red may still be read by a previous call
  if (subgroupElect()) red[gl_SubgroupID] = v;
  barrier();
  float t = 0.0;
  for (uint s = 0; s < gl_NumSubgroups; ++s) t += red[s];
  return t;
}

float BlockMax(float v) {
  v = subgroupMax(v);
  barrier();
  if (subgroupElect()) red[gl_SubgroupID] = v;
  barrier();
  float t = -1.0 / 0.0;
  for (uint s = 0; s < gl_NumSubgroups; ++s) t = max(t, red[s]);
  return t;
}

int BlockMinInt(int v) {
  v = subgroupMin(v);
  barrier();
  if (subgroupElect()) redi[gl_SubgroupID] = v;
  barrier();
  int t = 0x7fffffff;
  for (uint s = 0; s < gl_NumSubgroups; ++s) t = min(t, redi[s]);
  return t;
}

// rows_loops.glsl's loops: 32-bit counters where the row is shorter than 2^30, 64-bit beyond.
#define IDX int
#define RmsNormRow RmsNormRow32
#define ArgmaxScan ArgmaxScan32
#include "rows_loops.glsl"
#undef IDX
#undef RmsNormRow
#undef ArgmaxScan
#define IDX int64_t
#define RmsNormRow RmsNormRow64
#define ArgmaxScan ArgmaxScan64
#include "rows_loops.glsl"
#undef IDX
#undef RmsNormRow
#undef ArgmaxScan

int64_t Offset(Params P, int k, int64_t i) {
  int64_t off = 0;
  for (int d = P.rows.ndim - 1; d >= 0; --d) {
    const int64_t ne = P.rows.ne[d];
    const int64_t q = i / ne;
    off += (i - q * ne) * P.rows.s[k][d];
    i = q;
  }
  return off;
}

void main() {
  Params P = Params(pc.params);
  const int64_t row = int64_t(GroupIndex());
  if (row >= P.rows.numel) return;  // uniform across the workgroup
  const uint64_t x = P.x + uint64_t(Offset(P, 0, row));
  const uint64_t o = P.out_ + uint64_t(Offset(P, 1, row));
  const int64_t n = P.n;
  const int tid = int(gl_LocalInvocationID.x);
  const int op = P.op;
  if (op == 16 && n < 0x40000000l) {  // RMS_NORM
    RmsNormRow32(P, x, o, tid, n);
  } else if (op == 16) {
    RmsNormRow64(P, x, o, tid, n);
  } else if (op == 17) {  // LAYER_NORM
    float s = 0.0;
    for (int64_t i = tid; i < n; i += 256) s += LoadF32(x + uint64_t(i * P.sx));
    const float mean = BlockSum(s) / float(n);
    float v = 0.0;
    for (int64_t i = tid; i < n; i += 256) {
      const float d = LoadF32(x + uint64_t(i * P.sx)) - mean;
      v = fma(d, d, v);
    }
    const float var = BlockSum(v) / float(n);
    const float r = 1.0 / sqrt(var + P.eps);
    for (int64_t i = tid; i < n; i += 256) {
      float y = (LoadF32(x + uint64_t(i * P.sx)) - mean) * r;
      if (P.weight != 0ul) y *= LoadF32(P.weight + uint64_t(i * 4));
      if (P.bias != 0ul) y += LoadF32(P.bias + uint64_t(i * 4));
      StoreF32(o + uint64_t(i * P.so), y);
    }
  } else if (op == 19) {  // SOFTMAX
    const uint64_t m = P.mask != 0ul ? P.mask + uint64_t(Offset(P, 2, row)) : 0ul;
    float mx = -1.0 / 0.0;
    for (int64_t i = tid; i < n; i += 256) {
      float l = LoadF32(x + uint64_t(i * P.sx)) * P.scale;
      if (m != 0ul) l += LoadF32(m + uint64_t(i * P.sm));
      mx = max(mx, l);
    }
    mx = BlockMax(mx);
    if (!(mx > -1.0 / 0.0)) {  // every logit masked: the row is all zero
      for (int64_t i = tid; i < n; i += 256) StoreF32(o + uint64_t(i * P.so), 0.0);
      return;
    }
    float s = 0.0;
    for (int64_t i = tid; i < n; i += 256) {
      float l = LoadF32(x + uint64_t(i * P.sx)) * P.scale;
      if (m != 0ul) l += LoadF32(m + uint64_t(i * P.sm));
      s += exp(l - mx);
    }
    const float inv = 1.0 / BlockSum(s);
    for (int64_t i = tid; i < n; i += 256) {
      float l = LoadF32(x + uint64_t(i * P.sx)) * P.scale;
      if (m != 0ul) l += LoadF32(m + uint64_t(i * P.sm));
      StoreF32(o + uint64_t(i * P.so), exp(l - mx) * inv);
    }
  } else if (op == 31) {  // ARGMAX
    // Each invocation keeps the first index of its largest value (NaN and -inf never replace
    // the start), then the row's largest value and the lowest index holding it: exact, the
    // lowest index on ties whatever the invocation count; 0 when nothing is above -inf.
    float bv = -1.0 / 0.0;
    int bi = 0x7fffffff;
    if (n < 0x40000000l) {
      ArgmaxScan32(P, x, tid, n, bv, bi);
    } else {
      ArgmaxScan64(P, x, tid, n, bv, bi);
    }
    const float mx = BlockMax(bv);
    const int first = BlockMinInt(bv == mx ? bi : 0x7fffffff);
    if (tid == 0) RefI32(o).v = mx > -1.0 / 0.0 ? first : 0;
  } else if (op == 30) {  // MAX
    float mx = -1.0 / 0.0;
    for (int64_t i = tid; i < n; i += 256) mx = max(mx, LoadF32(x + uint64_t(i * P.sx)));
    mx = BlockMax(mx);
    if (tid == 0) StoreF32(o, mx);
  } else {  // SUM, MEAN
    float s = 0.0;
    for (int64_t i = tid; i < n; i += 256) s += LoadF32(x + uint64_t(i * P.sx));
    s = BlockSum(s);
    if (tid == 0) StoreF32(o, op == 29 ? s / float(n) : s);
  }
}
