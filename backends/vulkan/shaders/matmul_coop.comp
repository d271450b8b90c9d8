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
// One source, several tile shapes (CMakeLists.txt compiles one module per variant; run_ops.cc
// CoopKernels lists them): a workgroup of WARPS_M x WARPS_N subgroups of 32 computes a COOP_BM
// (m) x COOP_BN (n) tile, subgroup (gm, gn) a TM x TN block of 16 x 16 accumulators. K advances
// BK values a stage: the stage's x planes (3 x COOP_BM rows) and weight rows (COOP_BN) are copied
// to shared memory with 16-byte loads, then each subgroup runs BK / 16 steps from there (per
// step: its TN weight tiles and, for each piece lo, mid, hi, its TM x tiles). With COOP_DB the
// shared stage is double-buffered: the next stage's global loads are issued before the current
// stage is multiplied and stored after it, one barrier a stage. With COOP_ROWPART a subgroup
// finishes one row of its accumulators a stage at a time (below), so 4 x 4 blocks fit.
// With COOP_PF (vk-coop3; single buffer) the next stage's global loads are issued into registers
// right after this stage is in shared memory, so they are in flight during its MulAdds (stored
// after them): the load latency hides behind the matrix work of the same subgroups. It changes
// no product and no sum: same bits as without.
//
// A stage's products are summed into a zeroed accumulator and then added to the total with an
// f32 add: the device's matrix additions may truncate, and this keeps that to the 3 x BK / 16
// products of a stage (required for CoopGemmMatchesAReference's bound at K = 14336).
//
// Every subgroup runs the same straight-line matrix code: weight rows past N are clamped to the
// last row (finite values, never stored) instead of branching around the MulAdds.
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#include "coop_common.glsl"

#ifndef WARPS_M
#define WARPS_M 2
#endif
#ifndef WARPS_N
#define WARPS_N 2
#endif
#ifndef BK
#define BK 32
#endif
#ifndef COOP_DB
#define COOP_DB 0
#endif
#ifndef COOP_ROWPART
#define COOP_ROWPART 0
#endif
#ifndef COOP_PF
#define COOP_PF 0
#endif
#if COOP_PF && COOP_DB
#error "COOP_PF is the single-buffer form of COOP_DB"
#endif
#define NT (32 * WARPS_M * WARPS_N)  // invocations
layout(local_size_x = NT) in;

#define TM (COOP_BM / (16 * WARPS_M))
#define TN (COOP_BN / (16 * WARPS_N))
#define QK (BK / 8)      // uvec4 (8 bf16) a row a stage
#define ROW (QK + 1)     // shared row stride in uvec4: one spare, so 8 rows of a matrix load
                         // fall in distinct 16-byte bank groups
#define XV (3 * COOP_BM * QK)  // uvec4 of x planes a stage
#define WV (COOP_BN * QK)      // uvec4 of weights a stage
#define XLOADS (XV / NT)
#define WLOADS (WV / NT)
#if XLOADS * NT != XV || WLOADS * NT != WV || TM * 16 * WARPS_M != COOP_BM || \
    TN * 16 * WARPS_N != COOP_BN
#error "tile shape does not divide"
#endif
#define XS (3 * COOP_BM * ROW)  // one buffer's uvec4
#define WS (COOP_BN * ROW)
#if COOP_DB
#define NBUF 2
#else
#define NBUF 1
#endif

// The weight tiles' row count (K) as a specialization constant of value 16: it makes the B
// operand's type a different SPIR-V type from A's, which tools/coop_spirv.py needs to give the
// two their KHR uses (MatrixA / MatrixB). The host never specializes it.
layout(constant_id = 7) const uint kBRows = 16;
const int kSubgroupScope = 3;  // gl_ScopeSubgroup, without GL_KHR_memory_scope_semantics (which
                               // would make the module need the vulkanMemoryModel feature)
#define MatA fcoopmatNV<16, kSubgroupScope, 16, 16>
#define MatB fcoopmatNV<16, kSubgroupScope, kBRows, 16>
#define MatC fcoopmatNV<32, kSubgroupScope, 16, 16>

shared uvec4 sm_x[NBUF * XS];  // [buf][piece][m][k / 8]
shared uvec4 sm_w[NBUF * WS];  // [buf][n][k / 8]
// The epilogue stages one accumulator a subgroup (256 f32) through shared memory: its own array
// where that fits the 48 KiB every Vulkan device offers, else sm_x, which the main loop no longer
// reads by then (an f32 matrix stored to the uvec4 array: 64 uvec4 a subgroup).
#if (NBUF * (XS + WS)) * 16 + WARPS_M * WARPS_N * 1024 <= 49152
#define EPI_OWN 1
shared float sm_out[WARPS_M * WARPS_N][256];
#else
#define EPI_OWN 0
#if WARPS_M * WARPS_N * 64 > NBUF * XS
#error "sm_x too small for the epilogue"
#endif
#endif

// Per invocation: the byte offsets (at k = 0) of its stage loads and where they go in shared
// memory. Planes are at most 64 MiB and weights under 4 GiB (run_ops.cc), so offsets fit 32 bits.
uint xo[XLOADS], xs[XLOADS], wo[WLOADS], ws[WLOADS];

void Fetch(CoopParams P, uint kb, out uvec4 lx[XLOADS], out uvec4 lw[WLOADS]) {
  [[unroll]] for (int r = 0; r < XLOADS; ++r) lx[r] = RefU32x4(P.planes + uint64_t(xo[r] + kb)).v;
  [[unroll]] for (int r = 0; r < WLOADS; ++r) lw[r] = RefU32x4(P.w + uint64_t(wo[r] + kb)).v;
}

void Put(uint buf, uvec4 lx[XLOADS], uvec4 lw[WLOADS]) {
  [[unroll]] for (int r = 0; r < XLOADS; ++r) sm_x[buf * XS + xs[r]] = lx[r];
  [[unroll]] for (int r = 0; r < WLOADS; ++r) sm_w[buf * WS + ws[r]] = lw[r];
}

void main() {
  CoopParams P = CoopParams(pc.params);
  const uint t = gl_LocalInvocationID.x;
  const uint g = gl_SubgroupID, lane = gl_SubgroupInvocationID;
  const int64_t wm0 = int64_t(gl_WorkGroupID.y) * COOP_BM, wn0 = int64_t(gl_WorkGroupID.x) * COOP_BN;
  const uint sm0 = (g / WARPS_N) * (TM * 16), sn0 = (g % WARPS_N) * (TN * 16);  // block in tile
  const int64_t m0 = wm0 + int64_t(sm0), n0 = wn0 + int64_t(sn0);
  const uint plane_bytes = uint(P.Mp * P.Kp) * 2u;
  [[unroll]] for (int r = 0; r < XLOADS; ++r) {
    const uint idx = t + NT * uint(r);
    const uint piece = idx / (COOP_BM * QK), row = (idx / QK) % COOP_BM, q = idx % QK;
    xo[r] = piece * plane_bytes + (uint(wm0) + row) * uint(P.Kp) * 2u + 16u * q;
    xs[r] = (piece * COOP_BM + row) * ROW + q;
  }
  [[unroll]] for (int r = 0; r < WLOADS; ++r) {
    const uint idx = t + NT * uint(r);
    const uint row = idx / QK, q = idx % QK;
    const uint n = uint(min(wn0 + int64_t(row), P.N - 1));  // past N: the last row, never stored
    wo[r] = n * uint(P.w_row) * 2u + 16u * q;
    ws[r] = row * ROW + q;
  }
  MatC acc[TM][TN];
  [[unroll]] for (int i = 0; i < TM; ++i) {
    [[unroll]] for (int j = 0; j < TN; ++j) acc[i][j] = MatC(0.0);
  }
  const uint kbytes = uint(P.Kp) * 2u;
  uvec4 lx[XLOADS], lw[WLOADS];
#if COOP_DB
  Fetch(P, 0u, lx, lw);
  Put(0u, lx, lw);
  barrier();
#elif COOP_PF
  Fetch(P, 0u, lx, lw);
#endif
  uint buf = 0u;
  for (uint kb = 0u; kb < kbytes; kb += BK * 2u) {
#if COOP_DB
    const bool more = kb + BK * 2u < kbytes;
    if (more) Fetch(P, kb + BK * 2u, lx, lw);  // in flight while this stage is multiplied
#elif COOP_PF
    barrier();  // the previous stage's readers are done
    Put(0u, lx, lw);
    barrier();
    if (kb + BK * 2u < kbytes) Fetch(P, kb + BK * 2u, lx, lw);  // in flight during the MulAdds
#else
    Fetch(P, kb, lx, lw);
    barrier();  // the previous stage's readers are done
    Put(0u, lx, lw);
    barrier();
#endif
#if COOP_ROWPART
    // One row of accumulators at a time: the stage's weight tiles stay loaded, and the stage's
    // partial sums need TN accumulators instead of TM x TN (the same per-element order).
    MatB b[BK / 16][TN];
    [[unroll]] for (uint kk = 0; kk < BK / 16; ++kk) {
      [[unroll]] for (int j = 0; j < TN; ++j)
        coopMatLoadNV(b[kk][j], sm_w, buf * WS + (sn0 + 16 * j) * ROW + 2 * kk, ROW, true);
    }
    [[unroll]] for (int i = 0; i < TM; ++i) {
      MatC part[TN];
      [[unroll]] for (int j = 0; j < TN; ++j) part[j] = MatC(0.0);
      [[unroll]] for (uint kk = 0; kk < BK / 16; ++kk) {
        [[unroll]] for (int piece = 2; piece >= 0; --piece) {  // lo, mid, hi
          MatA a;
          coopMatLoadNV(a, sm_x, buf * XS + (uint(piece) * COOP_BM + sm0 + 16 * i) * ROW + 2 * kk,
                        ROW, false);
          [[unroll]] for (int j = 0; j < TN; ++j) part[j] = coopMatMulAddNV(a, b[kk][j], part[j]);
        }
      }
      [[unroll]] for (int j = 0; j < TN; ++j) acc[i][j] = acc[i][j] + part[j];
    }
#else
    MatC part[TM][TN];
    [[unroll]] for (int i = 0; i < TM; ++i) {
      [[unroll]] for (int j = 0; j < TN; ++j) part[i][j] = MatC(0.0);
    }
    [[unroll]] for (uint kk = 0; kk < BK / 16; ++kk) {
      MatB b[TN];
      [[unroll]] for (int j = 0; j < TN; ++j)
        coopMatLoadNV(b[j], sm_w, buf * WS + (sn0 + 16 * j) * ROW + 2 * kk, ROW, true);
      [[unroll]] for (int piece = 2; piece >= 0; --piece) {  // lo, mid, hi
        [[unroll]] for (int i = 0; i < TM; ++i) {
          MatA a;
          coopMatLoadNV(a, sm_x, buf * XS + (uint(piece) * COOP_BM + sm0 + 16 * i) * ROW + 2 * kk,
                        ROW, false);
          [[unroll]] for (int j = 0; j < TN; ++j) part[i][j] = coopMatMulAddNV(a, b[j], part[i][j]);
        }
      }
    }
    [[unroll]] for (int i = 0; i < TM; ++i) {
      [[unroll]] for (int j = 0; j < TN; ++j) acc[i][j] = acc[i][j] + part[i][j];
    }
#endif
#if COOP_DB
    if (more) Put(buf ^ 1u, lx, lw);  // the other buffer: its readers finished a barrier ago
    barrier();
    buf ^= 1u;
#endif
  }
#if !EPI_OWN
  barrier();  // every subgroup is done with sm_x: the epilogue reuses it
  const uint eo = g * 64u;
#endif
  // Epilogue: each accumulator through shared memory, then bias and bounds per element.
  [[unroll]] for (int i = 0; i < TM; ++i) {
    [[unroll]] for (int j = 0; j < TN; ++j) {
#if EPI_OWN
      coopMatStoreNV(acc[i][j], sm_out[g], 0, 16, false);
#else
      coopMatStoreNV(acc[i][j], sm_x, eo, 4, false);
#endif
      subgroupMemoryBarrierShared();
      subgroupBarrier();
      for (uint e = lane; e < 256u; e += gl_SubgroupSize) {
        const int64_t m = m0 + 16 * i + int64_t(e / 16u), n = n0 + 16 * j + int64_t(e % 16u);
        if (m >= P.M || n >= P.N) continue;
#if EPI_OWN
        float s = sm_out[g][e];
#else
        float s = uintBitsToFloat(sm_x[eo + e / 4u][e % 4u]);
#endif
        if (P.bias != 0ul) s += LoadF32(P.bias + uint64_t(n * 4));
        StoreF32(P.out_ + uint64_t(m * P.out_row + n * P.out_col), s);
      }
      subgroupMemoryBarrierShared();
      subgroupBarrier();
    }
  }
}
