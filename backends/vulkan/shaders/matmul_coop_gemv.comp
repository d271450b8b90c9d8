#version 460
// MATMUL for 1..32 x rows on cooperative matrices, bf16 weights (vk-coop13): out[m, n] =
// sum_k x[m, k] w[n, k] (+ bias[n]) with, for every output, exactly the bits matmul_coop.comp
// gives the same row (any M >= 33, any of its variants with the same BK): the GEMV side of
// batch invariance for the cooperative-matrix path (README "Left to do", item (2)).
//
// matmul_coop.comp's value of one output (its BK-value stages s = 0 .. K / BK - 1):
//   acc = 0; per stage: part = 0; for kk < BK / 16: for piece lo, mid, hi:
//     part = MulAdd(x piece tile (16 rows x 16 k), weight tile (16 k x 16 n), part);
//   acc = acc + part; then out = acc (+ bias[n], an f32 add).
// A MulAdd's row m depends only on row m of its A tile (and the B tile and row m of C), and a
// stage's part starts from zero, so the stages are independent until they are summed: here the
// subgroups of a workgroup take the stages round-robin (subgroup g: stages g, g + G, ...), each
// runs exactly the MulAdd chain above for its stage, stores its parts to shared memory, and
// after each round the workgroup folds the round's parts into acc in stage order with the same
// f32 adds. The x pieces are split here (the same split as coop_split.comp: hi, mid, lo, bf16
// round to nearest, non-finite x keeps hi only), so there is no pre-pass.
//
// A workgroup: G subgroups of 32, output columns n0 .. n0 + 16 TN - 1 (all of K). Per stage a
// subgroup copies its weight rows (16 TN x BK bf16) and its x rows (M x BK f32, split into the
// three bf16 pieces) to its own shared region with 16-byte loads (the next stage's loads are
// issued into registers before this stage's MulAdds), then runs BK / 16 steps of TN weight
// tiles x 3 pieces x MT x tiles. An A tile is 16 rows at the x rows' stride starting at piece
// p's row 0: rows at or past M read whatever follows in the region (later pieces, the weight
// rows); those rows of the product are never used. Shared memory holds XR x rows a piece, so one
// module serves M <= XR.
//
// Written against GL_NV_cooperative_matrix with float16_t, rewritten to KHR + bf16 by
// tools/coop_spirv.py, like matmul_coop.comp (whose header says why).
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#include "coop_common.glsl"

#ifndef BK
#define BK 64
#endif
#ifndef G
#define G 8  // subgroups a workgroup
#endif
#ifndef TN
#define TN 1  // 16-column weight tiles a workgroup
#endif
#ifndef XR
#define XR 1  // x rows a piece in shared memory: M <= XR
#endif
#define MT ((XR + 15) / 16)  // 16-row x tiles
#define NT (32 * G)
layout(local_size_x = NT) in;

#define QK (BK / 8)   // uvec4 (8 bf16) a row a stage
#define ROW (QK + 1)  // shared row stride in uvec4 (as matmul_coop.comp: distinct bank groups)
#define REG_ROWS (3 * XR + 16 * TN)  // a subgroup's region: x pieces, then weight rows
#define XC (XR * QK)                 // x chunks (8 f32 each) a stage
#define XL ((XC + 31) / 32)
#define WV (16 * TN * QK)  // weight uvec4 a stage
#define WL (WV / 32)
#define TILES (MT * TN)
#define EPT (TILES * 256 / NT)  // outputs a thread folds
#if WL * 32 != WV || EPT * NT != TILES * 256 || 16 * MT > XR + 16 * TN
#error "shape does not divide"
#endif

layout(constant_id = 7) const uint kBRows = 16;  // B's own SPIR-V type (matmul_coop.comp)
const int kSubgroupScope = 3;
#define MatA fcoopmatNV<16, kSubgroupScope, 16, 16>
#define MatB fcoopmatNV<16, kSubgroupScope, kBRows, 16>
#define MatC fcoopmatNV<32, kSubgroupScope, 16, 16>

shared uvec4 sm_st[G * REG_ROWS * ROW];   // [g][piece * XR + m | 3 XR + n][k / 8]
shared float sm_fold[2 * G * TILES * 256];  // [round & 1][g][mt * TN + tn][16 x 16]

uint Pack(uint a, uint b) { return a | (b << 16); }

void main() {
  CoopParams P = CoopParams(pc.params);
  const uint t = gl_LocalInvocationID.x;
  const uint g = gl_SubgroupID, lane = gl_SubgroupInvocationID;
  const int64_t n0 = int64_t(gl_WorkGroupID.x) * (16 * TN);
  const uint M = uint(P.M);
  const uint S = uint(P.K) / BK;  // stages (K is a multiple of BK: run_ops.cc)
  const uint rounds = (S + G - 1) / G;
  const uint base = g * REG_ROWS * ROW;
  // Per lane: x chunk c = lane + 32 r (row c / QK, 8 values at (c % QK) * 8) and weight uvec4
  // i = lane + 32 r (row i / QK, 8 values at (i % QK) * 8); byte offsets at k = 0.
  uint64_t xo[XL];
  uint xs[XL];
  bool xv[XL];
  [[unroll]] for (int r = 0; r < XL; ++r) {
    const uint c = lane + 32u * uint(r), row = c / QK, q = c % QK;
    xv[r] = c < XC && row < M;
    xo[r] = P.x + uint64_t(xv[r] ? row : 0u) * uint64_t(P.x_row) + uint64_t(32u * q);
    xs[r] = base + row * ROW + q;
  }
  uint wo[WL], ws[WL];
  [[unroll]] for (int r = 0; r < WL; ++r) {
    const uint i = lane + 32u * uint(r), row = i / QK, q = i % QK;
    const uint n = uint(min(n0 + int64_t(row), P.N - 1));  // past N: the last row, never stored
    wo[r] = n * uint(P.w_row) * 2u + 16u * q;
    ws[r] = base + (3u * XR + row) * ROW + q;
  }
  float acc[EPT];
  [[unroll]] for (int e = 0; e < EPT; ++e) acc[e] = 0.0;

  uvec4 lx[XL][2], lw[WL];
  uint s = g;
  if (s < S) {
    [[unroll]] for (int r = 0; r < XL; ++r) {
      if (xv[r]) {
        lx[r][0] = RefU32x4(xo[r] + uint64_t(s * BK * 4u)).v;
        lx[r][1] = RefU32x4(xo[r] + uint64_t(s * BK * 4u + 16u)).v;
      }
    }
    [[unroll]] for (int r = 0; r < WL; ++r) lw[r] = RefU32x4(P.w + uint64_t(wo[r] + s * BK * 2u)).v;
  }
  for (uint round = 0u; round < rounds; ++round) {
    s = round * G + g;
    const uint fb = ((round & 1u) * G + g) * (TILES * 256u);
    if (s < S) {  // uniform in the subgroup
      // This stage to shared memory: x split into its three pieces, weights as they are.
      [[unroll]] for (int r = 0; r < XL; ++r) {
        if (xv[r]) {
          uint hi[8], mid[8], lo[8];
          [[unroll]] for (int j = 0; j < 8; ++j) {
            const float x = uintBitsToFloat(lx[r][j / 4][j % 4]);
            hi[j] = F32ToBf16Bits(x);
            mid[j] = 0u, lo[j] = 0u;
            if ((hi[j] & 0x7f80u) != 0x7f80u) {  // as coop_split.comp
              const float r1 = x - Bf16Bits(hi[j]);
              mid[j] = F32ToBf16Bits(r1);
              lo[j] = F32ToBf16Bits(r1 - Bf16Bits(mid[j]));
            }
          }
          sm_st[xs[r]] = uvec4(Pack(hi[0], hi[1]), Pack(hi[2], hi[3]), Pack(hi[4], hi[5]),
                               Pack(hi[6], hi[7]));
          sm_st[xs[r] + XR * ROW] = uvec4(Pack(mid[0], mid[1]), Pack(mid[2], mid[3]),
                                          Pack(mid[4], mid[5]), Pack(mid[6], mid[7]));
          sm_st[xs[r] + 2 * XR * ROW] = uvec4(Pack(lo[0], lo[1]), Pack(lo[2], lo[3]),
                                              Pack(lo[4], lo[5]), Pack(lo[6], lo[7]));
        }
      }
      [[unroll]] for (int r = 0; r < WL; ++r) sm_st[ws[r]] = lw[r];
      subgroupMemoryBarrierShared();
      subgroupBarrier();
      const uint sn = s + G;  // this subgroup's next stage: its loads fly during the MulAdds
      if (sn < S) {
        [[unroll]] for (int r = 0; r < XL; ++r) {
          if (xv[r]) {
            lx[r][0] = RefU32x4(xo[r] + uint64_t(sn * BK * 4u)).v;
            lx[r][1] = RefU32x4(xo[r] + uint64_t(sn * BK * 4u + 16u)).v;
          }
        }
        [[unroll]] for (int r = 0; r < WL; ++r)
          lw[r] = RefU32x4(P.w + uint64_t(wo[r] + sn * BK * 2u)).v;
      }
      // matmul_coop.comp's chain for one stage: per element, kk ascending, pieces lo, mid, hi.
      MatC part[MT][TN];
      [[unroll]] for (int i = 0; i < MT; ++i) {
        [[unroll]] for (int j = 0; j < TN; ++j) part[i][j] = MatC(0.0);
      }
      [[unroll]] for (uint kk = 0; kk < BK / 16; ++kk) {
        MatB b[TN];
        [[unroll]] for (int j = 0; j < TN; ++j)
          coopMatLoadNV(b[j], sm_st, base + (3u * XR + 16u * j) * ROW + 2u * kk, ROW, true);
        [[unroll]] for (int piece = 2; piece >= 0; --piece) {  // lo, mid, hi
          [[unroll]] for (int i = 0; i < MT; ++i) {
            MatA a;
            coopMatLoadNV(a, sm_st, base + (uint(piece) * XR + 16u * i) * ROW + 2u * kk, ROW,
                          false);
            [[unroll]] for (int j = 0; j < TN; ++j) part[i][j] = coopMatMulAddNV(a, b[j], part[i][j]);
          }
        }
      }
      [[unroll]] for (int i = 0; i < MT; ++i) {
        [[unroll]] for (int j = 0; j < TN; ++j)
          coopMatStoreNV(part[i][j], sm_fold, fb + uint(i * TN + j) * 256u, 16, false);
      }
    }
    barrier();
    // Fold this round's parts in stage order (subgroup 0's stage first).
    const uint f0 = (round & 1u) * G * (TILES * 256u);
    [[unroll]] for (int e = 0; e < EPT; ++e) {
      const uint idx = t + NT * uint(e), tile = idx / 256u, el = idx % 256u;
      const uint m = (tile / TN) * 16u + el / 16u;
      if (m >= M) continue;
      for (uint gg = 0u; gg < G; ++gg) {
        if (round * G + gg >= S) break;
        acc[e] = acc[e] + sm_fold[f0 + gg * (TILES * 256u) + idx];
      }
    }
  }
  [[unroll]] for (int e = 0; e < EPT; ++e) {
    const uint idx = t + NT * uint(e), tile = idx / 256u, el = idx % 256u;
    const int64_t m = int64_t((tile / TN) * 16u + el / 16u);
    const int64_t n = n0 + int64_t((tile % TN) * 16u + el % 16u);
    if (m >= P.M || n >= P.N) continue;
    float v = acc[e];
    if (P.bias != 0ul) v += LoadF32(P.bias + uint64_t(n * 4));
    StoreF32(P.out_ + uint64_t(m * P.out_row + n * P.out_col), v);
  }
}
