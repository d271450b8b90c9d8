#version 460
// MATMUL for many x rows on cooperative matrices (bf16 weights, devices with bf16 x bf16 -> f32
// 16 x 16 x 16 subgroup matrices): out[m, n] = sum_k x[m, k] w[n, k] (+ bias[n]) from the three
// bf16 planes of x (coop_split.comp), each product exact, accumulated in f32.
//
// Written against GL_NV_cooperative_matrix with float16_t because Debian 12's glslang has no
// GL_KHR_cooperative_matrix or bfloat16; tools/coop_spirv.py rewrites the module to
// SPV_KHR_cooperative_matrix + SPV_KHR_bfloat16 (every float16 here is a bf16). Do not use
// float16_t for anything but the two cooperative-matrix operands.
//
// A 128-invocation workgroup (4 subgroups of 32) computes a COOP_BM (m, 128 or 64) x 64 (n)
// tile; subgroup g a COOP_BM / 2 x 32 block (TM x 2 accumulators) at rows COOP_BM / 2 (g / 2),
// columns 32 (g % 2). K advances 32 values a stage: the stage's x planes (3 x COOP_BM rows) and
// weight rows (64) are copied to shared memory with 16-byte loads, then each subgroup runs two
// 16-value steps from there (per step: its 2 weight tiles and, for each piece lo, mid, hi, its
// TM x tiles). A stage's products are
// summed into a zeroed accumulator and then added to the total with an f32 add: the device's
// matrix additions may truncate, and this keeps that to the 6 products of a stage.
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#include "coop_common.glsl"

layout(local_size_x = 128) in;

#define TM (COOP_BM / 32)
#define XLOADS (3 * COOP_BM * 4 / 128)  // 16-byte x loads an invocation a stage
#define TN 2
#define BK 32           // k values a stage
#define ROW (BK / 8 + 1)  // shared row stride in uvec4 (8 bf16): one spare against bank conflicts

// The weight tiles' row count (K) as a specialization constant of value 16: it makes the B
// operand's type a different SPIR-V type from A's, which tools/coop_spirv.py needs to give the
// two their KHR uses (MatrixA / MatrixB). The host never specializes it.
layout(constant_id = 7) const uint kBRows = 16;
const int kSubgroupScope = 3;  // gl_ScopeSubgroup, without GL_KHR_memory_scope_semantics (which
                               // would make the module need the vulkanMemoryModel feature)
#define MatA fcoopmatNV<16, kSubgroupScope, 16, 16>
#define MatB fcoopmatNV<16, kSubgroupScope, kBRows, 16>
#define MatC fcoopmatNV<32, kSubgroupScope, 16, 16>

shared uvec4 sm_x[3 * COOP_BM * ROW];  // [piece][m][k / 8]
shared uvec4 sm_w[COOP_BN * ROW];      // [n][k / 8]
shared float sm_out[4][16 * 16];       // the epilogue: one accumulator at a time, per subgroup

void main() {
  CoopParams P = CoopParams(pc.params);
  const uint t = gl_LocalInvocationID.x;
  const uint g = gl_SubgroupID, lane = gl_SubgroupInvocationID;
  const int64_t wm0 = int64_t(gl_WorkGroupID.y) * COOP_BM, wn0 = int64_t(gl_WorkGroupID.x) * COOP_BN;
  const uint sm0 = (g / 2u) * (TM * 16), sn0 = (g % 2u) * (TN * 16);  // the block in the tile
  const int64_t m0 = wm0 + int64_t(sm0), n0 = wn0 + int64_t(sn0);
  // N is a multiple of 16 (run_ops.cc), so a 16-column tile is all in or all out.
  int tn_live = 0;
  [[unroll]] for (int j = 0; j < TN; ++j) tn_live += n0 + 16 * j < P.N ? 1 : 0;
  MatC acc[TM][TN];
  [[unroll]] for (int i = 0; i < TM; ++i) {
    [[unroll]] for (int j = 0; j < TN; ++j) acc[i][j] = MatC(0.0);
  }
  const uint64_t plane_bytes = uint64_t(P.Mp * P.Kp) * 2;
  for (int64_t k0 = 0; k0 < P.Kp; k0 += BK) {
    // Stage loads: x planes 3 x COOP_BM rows x 4 uvec4 (XLOADS an invocation), weights 64 x 4 (2).
    uvec4 lx[XLOADS], lw[2];
    [[unroll]] for (int r = 0; r < XLOADS; ++r) {
      const uint idx = t + 128u * uint(r);
      const uint piece = idx / (COOP_BM * 4), row = (idx / 4u) % COOP_BM, q = idx % 4u;
      lx[r] = RefU32x4(P.planes + uint64_t(piece) * plane_bytes +
                       uint64_t(((wm0 + row) * P.Kp + k0 + 8 * q) * 2)).v;
    }
    [[unroll]] for (int r = 0; r < 2; ++r) {
      const uint idx = t + 128u * uint(r);
      const uint row = idx / 4u, q = idx % 4u;
      lw[r] = wn0 + row < P.N ? RefU32x4(P.w + uint64_t(((wn0 + row) * P.w_row + k0 + 8 * q) * 2)).v
                              : uvec4(0u);
    }
    barrier();  // the previous stage's readers are done
    [[unroll]] for (int r = 0; r < XLOADS; ++r) {
      const uint idx = t + 128u * uint(r);
      const uint piece = idx / (COOP_BM * 4), row = (idx / 4u) % COOP_BM, q = idx % 4u;
      sm_x[(piece * COOP_BM + row) * ROW + q] = lx[r];
    }
    [[unroll]] for (int r = 0; r < 2; ++r) {
      const uint idx = t + 128u * uint(r);
      sm_w[(idx / 4u) * ROW + idx % 4u] = lw[r];
    }
    barrier();
    if (tn_live == 0 || m0 >= P.Mp) continue;
    MatC part[TM][TN];
    [[unroll]] for (int i = 0; i < TM; ++i) {
      [[unroll]] for (int j = 0; j < TN; ++j) part[i][j] = MatC(0.0);
    }
    [[unroll]] for (uint kk = 0; kk < BK / 16; ++kk) {
      MatB b[TN];
      [[unroll]] for (int j = 0; j < TN; ++j) {
        if (j < tn_live) coopMatLoadNV(b[j], sm_w, (sn0 + 16 * j) * ROW + 2 * kk, ROW, true);
      }
      [[unroll]] for (int piece = 2; piece >= 0; --piece) {  // lo, mid, hi
        [[unroll]] for (int i = 0; i < TM; ++i) {
          MatA a;
          coopMatLoadNV(a, sm_x, (uint(piece) * COOP_BM + sm0 + 16 * i) * ROW + 2 * kk, ROW, false);
          [[unroll]] for (int j = 0; j < TN; ++j) {
            if (j < tn_live) part[i][j] = coopMatMulAddNV(a, b[j], part[i][j]);
          }
        }
      }
    }
    [[unroll]] for (int i = 0; i < TM; ++i) {
      [[unroll]] for (int j = 0; j < TN; ++j) acc[i][j] = acc[i][j] + part[i][j];
    }
  }
  // Epilogue: each accumulator through shared memory, then bias and bounds per element.
  [[unroll]] for (int i = 0; i < TM; ++i) {
    [[unroll]] for (int j = 0; j < TN; ++j) {
      if (j >= tn_live) continue;
      coopMatStoreNV(acc[i][j], sm_out[g], 0, 16, false);
      subgroupMemoryBarrierShared();
      subgroupBarrier();
      for (uint e = lane; e < 256u; e += gl_SubgroupSize) {
        const int64_t m = m0 + 16 * i + int64_t(e / 16u), n = n0 + 16 * j + int64_t(e % 16u);
        if (m >= P.M) continue;
        float s = sm_out[g][e];
        if (P.bias != 0ul) s += LoadF32(P.bias + uint64_t(n * 4));
        StoreF32(P.out_ + uint64_t(m * P.out_row + n * P.out_col), s);
      }
      subgroupMemoryBarrierShared();
      subgroupBarrier();
    }
  }
}
