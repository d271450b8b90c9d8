#version 460
// MATMUL for few x rows (decode): out[m, n] = dot(x[m, :], w[n, :]) (+ bias[n]) in the canonical
// order of matmul_common.glsl, for one weight dtype (WDT).
//
// One subgroup a weight row n and a tile of up to 8 x rows (gl_WorkGroupID.z; the weight row is
// read once for the tile); a 128-invocation workgroup takes `rows_per_group` consecutive weight
// rows. Lane l computes the partials of chunks l, l + SG, ... (a chunk's 32 weights are four
// 16-byte loads for bf16/f16, so a subgroup streams 2 KiB of a bf16 row per step, coalesced).
// The partials go through shared memory, and lane r adds x row r's in chunk order: the sum is
// a left fold, exactly as the GEMM's per-thread accumulation, so both give the same bits.
#include "matmul_common.glsl"

layout(local_size_x = 128) in;

#define ROWS 8

// [subgroup][row][lane] as vec4s (a row's partials are read back 4 at a time; SG >= 4).
shared vec4 sm_part[128 * ROWS / 4];

void MatmulRow(Params P, int64_t n) {
  const int64_t m0 = int64_t(gl_WorkGroupID.z) * ROWS;
  const int rows = int(min(int64_t(ROWS), P.M - m0));
  const int lane = int(gl_SubgroupInvocationID);
  const int SG = int(gl_SubgroupSize);
  const uint base = gl_SubgroupID * uint(ROWS * SG);
  const uint64_t wrow = P.w + uint64_t(n * P.w_row);
  const uint64_t xb = P.x + uint64_t(m0 * P.x_row);
  const bool xvec = (P.vec & VEC_X) != 0, wvec = (P.vec & VEC_W) != 0;
  const int64_t K = P.K;
  const int64_t nc = (K + CHUNK - 1) / CHUNK;
  float total = 0.0;  // lane r < rows: the sum for x row m0 + r
  for (int64_t c0 = 0; c0 < nc; c0 += SG) {
    const int64_t k0 = (c0 + lane) * CHUNK;
    float part[ROWS];
    [[unroll]] for (int r = 0; r < ROWS; ++r) part[r] = 0.0;
    if (xvec && wvec && k0 + CHUNK <= K) {
      [[unroll]] for (int e = 0; e < CHUNK / 8; ++e) {
        float wv[8];
        LoadW8(wrow, k0 + 8 * e, wv);
        [[unroll]] for (int r = 0; r < ROWS; ++r) {
          if (r < rows) {
            const uint64_t xr = xb + uint64_t(r * P.x_row);
            const vec4 a = LoadX4(xr, k0 + 8 * e);
            const vec4 b = LoadX4(xr, k0 + 8 * e + 4);
            float p = part[r];
            p = fma(a.x, wv[0], p);
            p = fma(a.y, wv[1], p);
            p = fma(a.z, wv[2], p);
            p = fma(a.w, wv[3], p);
            p = fma(b.x, wv[4], p);
            p = fma(b.y, wv[5], p);
            p = fma(b.z, wv[6], p);
            p = fma(b.w, wv[7], p);
            part[r] = p;
          }
        }
      }
    } else if (k0 < K) {
      // Scalar loads, the same FMA chain (past K: fma(0, 0, p) == p).
      for (int kk = 0; kk < CHUNK; ++kk) {
        const float wk = WeightOr0(wrow, k0 + kk, K);
        [[unroll]] for (int r = 0; r < ROWS; ++r) {
          if (r < rows) part[r] = fma(XOr0(xb + uint64_t(r * P.x_row), k0 + kk, K), wk, part[r]);
        }
      }
    }
    [[unroll]] for (int r = 0; r < ROWS; ++r) {
      if (r < rows) {
        const uint i = base + uint(r * SG + lane);
        sm_part[i / 4u][i % 4u] = part[r];
      }
    }
    subgroupMemoryBarrierShared();
    subgroupBarrier();
    // Chunks past K contributed +0, which leaves the total unchanged.
    if (lane < rows) {
      const uint first = (base + uint(lane * SG)) / 4u;
      for (uint j = 0; j < uint(SG) / 4u; ++j) {
        const vec4 v = sm_part[first + j];
        total += v.x;
        total += v.y;
        total += v.z;
        total += v.w;
      }
    }
    subgroupBarrier();
  }
  if (lane < rows) {
    if (P.bias != 0ul) total += LoadF32(P.bias + uint64_t(n * 4));
    StoreF32(P.out_ + uint64_t((m0 + lane) * P.out_row + n * P.out_col), total);
  }
}

void main() {
  Params P = Params(pc.params);
  const int64_t group = int64_t(GroupIndex());
  const int64_t first = group * P.rows_per_group;
  const int64_t last = min(first + P.rows_per_group, P.N);
  // Subgroup-uniform loop: correct whatever number of subgroups the driver formed.
  for (int64_t n = first + gl_SubgroupID; n < last; n += gl_NumSubgroups) MatmulRow(P, n);
}
