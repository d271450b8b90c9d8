#version 460
// MATMUL for many x rows (prefill): a shared-memory tiled GEMM, out[m, n] = dot(x[m, :], w[n, :])
// (+ bias[n]) in the canonical order of matmul_common.glsl, for one weight dtype (WDT).
//
// A 256-invocation workgroup computes a 64 (m) x 64 (n) output tile; each invocation a 4 x 4
// micro-tile in registers. K advances one 32-value chunk at a time: the x tile [64 x 32] (f32)
// and the weight tile [64 x 32] (decoded to f32 on load) go to shared memory k-major, and the
// next chunk's global loads are issued before the current chunk is multiplied. The micro-tile
// accumulates the chunk's partials from 0 in k order and then adds them to its totals: the same
// operations per output as the GEMV (matmul.comp), so a row's bits never depend on M.
#include "matmul_common.glsl"

layout(local_size_x = 256) in;

#define BM 64
#define BN 64
#define PAD 4

shared vec4 sm_x[CHUNK][(BM + PAD) / 4];  // [k][m / 4]
shared vec4 sm_w[CHUNK][(BN + PAD) / 4];  // [k][n / 4]

// This invocation's share of a chunk: x rows (t + 256 i) / 8, values 4 ((t + 256 i) % 8) + 0..3;
// weight row t / 4, values 8 (t % 4) + 0..7.
struct Fetch {
  vec4 x[2];
  float w[8];
};

Fetch Load(Params P, int64_t m0, int64_t n0, int64_t k0) {
  const uint t = gl_LocalInvocationID.x;
  const bool xvec = (P.vec & VEC_X) != 0 && k0 + CHUNK <= P.K;
  const bool wvec = (P.vec & VEC_W) != 0 && k0 + CHUNK <= P.K;
  Fetch f;
  [[unroll]] for (int i = 0; i < 2; ++i) {
    const uint idx = t + 256u * uint(i);
    const int64_t m = m0 + int64_t(idx / 8u);
    const int64_t k = k0 + int64_t(idx % 8u) * 4;
    const uint64_t xrow = P.x + uint64_t(m * P.x_row);
    if (m >= P.M) {
      f.x[i] = vec4(0.0);
    } else if (xvec) {
      f.x[i] = LoadX4(xrow, k);
    } else {
      for (int j = 0; j < 4; ++j) f.x[i][j] = XOr0(xrow, k + j, P.K);
    }
  }
  const int64_t n = n0 + int64_t(t / 4u);
  const int64_t k = k0 + int64_t(t % 4u) * 8;
  const uint64_t wrow = P.w + uint64_t(n * P.w_row);
  if (n >= P.N) {
    [[unroll]] for (int i = 0; i < 8; ++i) f.w[i] = 0.0;
  } else if (wvec) {
    LoadW8(wrow, k, f.w);
  } else {
    for (int i = 0; i < 8; ++i) f.w[i] = WeightOr0(wrow, k + i, P.K);
  }
  return f;
}

void Store(Fetch f) {
  const uint t = gl_LocalInvocationID.x;
  [[unroll]] for (int i = 0; i < 2; ++i) {
    const uint idx = t + 256u * uint(i);
    const uint m = idx / 8u, k = (idx % 8u) * 4u;
    [[unroll]] for (int j = 0; j < 4; ++j) sm_x[k + uint(j)][m / 4u][m % 4u] = f.x[i][j];
  }
  const uint n = t / 4u, k = (t % 4u) * 8u;
  [[unroll]] for (int j = 0; j < 8; ++j) sm_w[k + uint(j)][n / 4u][n % 4u] = f.w[j];
}

void main() {
  Params P = Params(pc.params);
  const int64_t n0 = int64_t(gl_WorkGroupID.x) * BN;
  const int64_t m0 = int64_t(gl_WorkGroupID.y) * BM;
  const uint t = gl_LocalInvocationID.x;
  const uint tn = t % 16u, tm = t / 16u;  // micro-tile: n 4 tn + 0..3, m 4 tm + 0..3
  float total[4][4];
  [[unroll]] for (int i = 0; i < 4; ++i) {
    [[unroll]] for (int j = 0; j < 4; ++j) total[i][j] = 0.0;
  }
  Fetch next = Load(P, m0, n0, 0);
  for (int64_t k0 = 0; k0 < P.K; k0 += CHUNK) {
    barrier();  // the previous chunk's readers are done
    Store(next);
    barrier();
    if (k0 + CHUNK < P.K) next = Load(P, m0, n0, k0 + CHUNK);
    float part[4][4];
    [[unroll]] for (int i = 0; i < 4; ++i) {
      [[unroll]] for (int j = 0; j < 4; ++j) part[i][j] = 0.0;
    }
    [[unroll]] for (int k = 0; k < CHUNK; ++k) {
      const vec4 a = sm_x[k][tm];
      const vec4 b = sm_w[k][tn];
      [[unroll]] for (int i = 0; i < 4; ++i) {
        [[unroll]] for (int j = 0; j < 4; ++j) part[i][j] = fma(a[i], b[j], part[i][j]);
      }
    }
    [[unroll]] for (int i = 0; i < 4; ++i) {
      [[unroll]] for (int j = 0; j < 4; ++j) total[i][j] += part[i][j];
    }
  }
  [[unroll]] for (int j = 0; j < 4; ++j) {
    const int64_t n = n0 + int64_t(tn * 4u) + j;
    if (n >= P.N) continue;
    const float bias = P.bias != 0ul ? LoadF32(P.bias + uint64_t(n * 4)) : 0.0;
    [[unroll]] for (int i = 0; i < 4; ++i) {
      const int64_t m = m0 + int64_t(tm * 4u) + i;
      if (m >= P.M) continue;
      float s = total[i][j];
      if (P.bias != 0ul) s += bias;
      StoreF32(P.out_ + uint64_t(m * P.out_row + n * P.out_col), s);
    }
  }
}
