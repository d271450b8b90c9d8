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
// One x row with aligned rows (decode) takes DecodeRows below instead: several weight rows a
// subgroup sharing x's loads, the same order.
#ifndef DECODE
#define DECODE 0  // 1: the coalesced decode module (DecodeRowsCoalesced); 2: the split one
                  // (DecodeSplit); 3: the skewed coalesced one (DecodeRowsSkewed);
                  // run_ops.cc DecodeShader; 4: few x rows (MultiRows; run_ops.cc
                  // UseMultiRows)
#endif
#if DECODE == 3
#extension GL_KHR_shader_subgroup_shuffle : require
#endif
#include "matmul_common.glsl"
#ifndef PAIRED
#define PAIRED 0  // 1 (with DECODE == 3 and NORM): the paired epilogues (PairedGroup below)
#endif
#ifndef PREF
#define PREF 0  // 1 (with DECODE == 3): DecodeRowsSkewed's PREF_MODE loop (the decode_*_pref
                // modules, a lab candidate; vk23-pref)
#endif
#if PAIRED
#include "rope_common.glsl"
#endif

layout(local_size_x = 128) in;
#ifndef NORM
#define NORM 0  // 1 (with DECODE): the RMS_NORM prologue too (plugin.cc ExecuteNormGemv)
#endif

#if !DECODE || DECODE == 4
#define ROWS 8

// [subgroup][row][lane] as vec4s (a row's partials are read back 4 at a time; SG >= 4).
#if DECODE == 4
// MultiRows' x tile (see there: ROWS x rows x 32 chunks x 8 slots); the module's MatmulRow, its
// fallback, runs alone in a workgroup and borrows it, so the module needs 32 KiB.
shared vec4 sm_multi[ROWS * 32 * 8];
#define sm_part sm_multi
#else
shared vec4 sm_part[128 * ROWS / 4];
#endif

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
  // total[t]: the sum for x row m0 + lane + t * SG (< rows; t = 1 only with subgroups of 4,
  // the smallest the plugin takes, where a lane folds two rows).
  float total[ROWS / 4];
  [[unroll]] for (int t = 0; t < ROWS / 4; ++t) total[t] = 0.0;
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
            part[r] = Fma8(part[r], a, b, wv);
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
    [[unroll]] for (int t = 0; t < ROWS / 4; ++t) {
      const int r = lane + t * SG;
      if (r < rows) {
        const uint first = (base + uint(r * SG)) / 4u;
        float s = total[t];
        for (uint j = 0; j < uint(SG) / 4u; ++j) {
          const vec4 v = sm_part[first + j];
          s += v.x;
          s += v.y;
          s += v.z;
          s += v.w;
        }
        total[t] = s;
      }
    }
    subgroupBarrier();
  }
  [[unroll]] for (int t = 0; t < ROWS / 4; ++t) {
    const int r = lane + t * SG;
    if (r < rows) {
      float s = total[t];
      if (P.bias != 0ul) s += LoadF32(P.bias + uint64_t(n * 4));
      StoreF32(P.out_ + uint64_t((m0 + r) * P.out_row + n * P.out_col), s);
    }
  }
}

#endif  // !DECODE || DECODE == 4

#if !QUANT
// ---- decode: one x row (M == 1), aligned rows, whole chunks, plain weight dtypes ----
// Chosen by the host (P.vec & VEC_DECODE, only when SG >= DROWS; rows_per_group = decode_rows
// (<= DROWS) rows a subgroup, run_ops.cc's DecodeRowsFor). One subgroup takes DROWS consecutive
// weight rows: per step, lane l loads x's chunk c0 + l once into registers and multiplies it with
// chunk c0 + l of each of the DROWS rows. Lane l's x chunk is
// 128 bytes away from its neighbours', so an x load touches a different cache line per lane;
// sharing it across DROWS rows (instead of re-reading it for every row, as MatmulRow does)
// divides that load traffic by DROWS. The order is the canonical one: each chunk partial an
// FMA chain from 0 (ChunkDot), and lane r < DROWS folds row r's partials left to right in chunk
// order, so the bits are those of MatmulRow and the GEMM.
#if WDT == DT_F32
#define RAW 8    // 16-byte words a chunk (32 f32)
#define DROWS 2  // weight rows a subgroup (RAW * DROWS words in flight a lane)
#else
#define RAW 4    // 32 bf16/f16
#define DROWS 4  // 8 was slower on every shape on the H100 (too few workgroups for 896 rows)
#endif

// [subgroup][row][lane], rows padded by 4 floats (the folding lanes read different rows); at
// most (128 / SG) * DROWS * (SG + 4) <= 256 DROWS floats for SG >= 4.
#if DECODE != 2 && DECODE != 4
shared vec4 sm_fold[DROWS * 64];
#endif

// One weight matrix of a decode group (Params' part 0 or gw/gbias/... entry j - 1).
struct Part {
  uint64_t w, bias, out_;
  int64_t N, w_row, out_col;
};

#if DECODE != 1
// Chunk partial of one weight row: fma(x[k], w[k], p) for k ascending, as LoadW8's order.
float ChunkDot(uint64_t wchunk, vec4 xv[8]) {
  float p = 0.0;
#if WDT == DT_F32
  [[unroll]] for (int i = 0; i < RAW; ++i) {
    const vec4 a = xv[i];
    const vec4 w = uintBitsToFloat(Ld16(wchunk + uint64_t(16 * i)));
    p = fma(a.x, w.x, p);
    p = fma(a.y, w.y, p);
    p = fma(a.z, w.z, p);
    p = fma(a.w, w.w, p);
  }
#else
  [[unroll]] for (int i = 0; i < RAW; ++i) {
    const uvec4 r = Ld16(wchunk + uint64_t(16 * i));
    const vec4 a = xv[2 * i], b = xv[2 * i + 1];
    float wv[8];
    [[unroll]] for (int j = 0; j < 4; ++j) {
#if WDT == DT_BF16
      wv[2 * j] = uintBitsToFloat(r[j] << 16);
      wv[2 * j + 1] = uintBitsToFloat(r[j] & 0xffff0000u);
#else
      wv[2 * j] = F16Bits(r[j] & 0xffffu);
      wv[2 * j + 1] = F16Bits(r[j] >> 16);
#endif
    }
    p = Fma8(p, a, b, wv);
  }
#endif
  return p;
}
#endif  // DECODE != 1

#if !DECODE

void DecodeRows(Params P, Part T, int64_t n0) {
  const int lane = int(gl_SubgroupInvocationID), SG = int(gl_SubgroupSize);
  const uint stride = uint(SG + 4);
  const uint base = gl_SubgroupID * uint(DROWS) * stride;
  const int64_t nc = P.K / CHUNK;
  const int rows = int(min(int64_t(P.decode_rows), T.N - n0));
  float total = 0.0;  // lane r < rows: the sum for weight row n0 + r
  for (int64_t c0 = 0; c0 < nc; c0 += SG) {
    const int64_t c = c0 + lane;
    // Chunks past K contribute +0, which leaves the total unchanged.
    vec4 xv[8];
    if (c < nc) {
      [[unroll]] for (int i = 0; i < 8; ++i) xv[i] = LoadX4(P.x, c * CHUNK + 4 * i);
    }
    [[unroll]] for (int r = 0; r < DROWS; ++r) {
      float part = 0.0;
      if (c < nc && r < rows) {
        part = ChunkDot(T.w + uint64_t((n0 + r) * T.w_row + c * (RAW * 16)), xv);
      }
      const uint i = base + uint(r) * stride + uint(lane);
      sm_fold[i / 4u][i % 4u] = part;
    }
    subgroupMemoryBarrierShared();
    subgroupBarrier();
    if (lane < rows) {
      const uint first = (base + uint(lane) * stride) / 4u;
      for (uint j = 0; j < uint(SG) / 4u; ++j) {
        const vec4 v = sm_fold[first + j];
        total += v.x;
        total += v.y;
        total += v.z;
        total += v.w;
      }
    }
    subgroupBarrier();
  }
  if (lane < rows) {
    const int64_t n = n0 + lane;
    if (T.bias != 0ul) total += LoadF32(T.bias + uint64_t(n * 4));
    StoreF32(T.out_ + uint64_t(n * T.out_col), total);
    // The ADD node's a + b (f32 addition commutes exactly, so either operand order).
    if (P.res != 0ul)
      StoreF32(P.res_out + uint64_t(n * 4), total + LoadF32(P.res + uint64_t(n * 4)));
  }
}
#endif  // !DECODE

#if DECODE == 1 || DECODE == 3
// ---- decode with coalesced weight loads (the host's default: its own module, so that its
// registers and shared memory do not limit the occupancy of the per-row GEMV above) ----
// DecodeRows reads a lane's own chunk, so lanes' 16-byte loads are 64 bytes apart (16 cache
// lines an instruction, 4x the L1 requests of contiguous loads) and its x loads 128 bytes apart.
// Here QL = 4 lanes share a chunk: per round i (IR rounds a step) lane l loads the 16 bytes at
// 16 l + 512 i of a bf16/f16 row (32 for f32: two loads), i.e. quarter q = l % 4 of chunk
// c0 + i * SG / 4 + l / 4, and x's matching 8 floats (32 bytes a lane, contiguous). A chunk
// partial is still one FMA chain from 0 in k order: quarter 0's lane starts it, and in round
// s = 1..3 the lanes of quarter s continue the chain handed over by their left neighbour
// through shared memory (the other lanes' results are discarded). Quarter 3's lanes then hold
// the chunk partials, which lane r folds in chunk order as DecodeRows does: same bits.
#define QL 4                // lanes a chunk
#define IR 4                // load rounds a step: SG chunks a step, as DecodeRows
#define PIECE (CHUNK / QL)  // values a lane takes of a chunk

#if DECODE == 1
// Chain hand-over: [subgroup][row * IR + round][lane], at most (128 / SG) * DROWS * IR * SG.
shared float sm_chain[128 * DROWS * IR];
#endif

// Continues p over one lane's PIECE values: fma(x[k], w[k], p) for k ascending.
float PieceDot(float p, uvec4 wr[RAW / QL], vec4 xv[2]) {
#if WDT == DT_F32
  [[unroll]] for (int i = 0; i < 2; ++i) {
    const vec4 w = uintBitsToFloat(wr[i]);
    p = fma(xv[i].x, w.x, p);
    p = fma(xv[i].y, w.y, p);
    p = fma(xv[i].z, w.z, p);
    p = fma(xv[i].w, w.w, p);
  }
#else
  float wv[8];
  [[unroll]] for (int j = 0; j < 4; ++j) {
#if WDT == DT_BF16
    wv[2 * j] = uintBitsToFloat(wr[0][j] << 16);
    wv[2 * j + 1] = uintBitsToFloat(wr[0][j] & 0xffff0000u);
#else
    wv[2 * j] = F16Bits(wr[0][j] & 0xffffu);
    wv[2 * j + 1] = F16Bits(wr[0][j] >> 16);
#endif
  }
  p = Fma8(p, xv[0], xv[1], wv);
#endif
  return p;
}
#if DECODE == 3
// The split's partials and counters, written and read by different workgroups: coherent (past
// the non-coherent L1), ordered by memoryBarrierBuffer around the counter's atomicAdd.
layout(buffer_reference, std430, buffer_reference_align = 4) coherent buffer CohF32 { float v; };
layout(buffer_reference, std430, buffer_reference_align = 16) coherent buffer CohF32x4 { vec4 v; };
layout(buffer_reference, std430, buffer_reference_align = 4) coherent buffer CohU32 { uint v; };

// A split GEMV (P.xsplit > 1), after this piece's chunk partials are stored: counts the piece
// done (after its partials are visible) and returns false unless it was the row block's last;
// the last one folds all of the rows' partials left to right in chunk order (the canonical
// order) into *total and resets the counter for the next dispatch.
bool SplitFold(Params P, int64_t n0, int rows, int64_t nc, int lane, inout float total) {
  memoryBarrierBuffer();
  subgroupBarrier();
  const uint64_t counter = P.xs_count + uint64_t(n0 / P.decode_rows * 4);
  uint prior = 0u;
  if (subgroupElect()) prior = atomicAdd(CohU32(counter).v, 1u);
  prior = subgroupMax(prior);  // the elected lane's (the others hold 0)
  if (prior != uint(P.xsplit - 1)) return false;
  memoryBarrierBuffer();
  if (lane < rows) {
    const int64_t ncp = (nc + 3) / 4 * 4;
    const uint64_t row = P.xs_part + uint64_t((n0 + lane) * ncp * 4);
    int64_t c = 0;
    for (; c + 4 <= nc; c += 4) {
      const vec4 v = CohF32x4(row + uint64_t(c * 4)).v;
      total += v.x;
      total += v.y;
      total += v.z;
      total += v.w;
    }
    for (; c < nc; ++c) total += CohF32(row + uint64_t(c * 4)).v;
  }
  if (subgroupElect()) CohU32(counter).v = 0u;
  return true;
}
#endif  // DECODE == 3
#endif  // DECODE == 1 || DECODE == 3

#if DECODE && NORM
// ---- RMS_NORM prologue (the NORM module; P.norm_x set) ----
// rows.comp's RMS_NORM sums a row with 256 invocations: thread t takes elements t, t + 256, ...
// (fma(v, v, ss)), subgroups reduce with subgroupAdd, and the subgroup sums are added in
// subgroup order. This workgroup has 128 invocations (a whole number of subgroups of the same
// size: both pipelines require the device's subgroup size, and the host fuses only then), so
// invocation j plays threads j and j + 128: lane for lane the same subgroups, hence the same
// sums, added in the same order. Every workgroup computes the scale itself and writes its share
// of the normed row (the RMS_NORM node's output; WriteNormed).
shared float sm_norm[64];
// NormScale's loads: 1 = NORM_BATCH of each chain's loads issued before their FMAs, 0 = one at
// a time (the loop before; a lab knob, TESSERA_VULKAN_NORM_BATCH=0). Same sums either way.
layout(constant_id = 3) const int NORM_BATCH_ON = 1;
#define NORM_BATCH 8
#if PAIRED
// PairedGroup's row sums: [0, rows_per_group / 2) set A, then set B.
shared float sm_pair[128];
#endif

float NormScale(Params P) {
  const int tid = int(gl_LocalInvocationID.x);
  const int64_t n = P.K;
  float a = 0.0, b = 0.0;
  if (NORM_BATCH_ON != 0) {
    // NORM_BATCH of each chain's loads issued before their FMAs: one L2 round trip per batch
    // instead of per element. A chain's FMAs stay in element order, so the sums are rows.comp's
    // (past n a value is 0, and fma(0, 0, s) == s for the chains' s >= +0).
    for (int64_t i0 = tid; i0 < n; i0 += 256 * NORM_BATCH) {
      float va[NORM_BATCH], vb[NORM_BATCH];
      [[unroll]] for (int e = 0; e < NORM_BATCH; ++e) {
        const int64_t i = i0 + 256 * e;
        va[e] = i < n ? LoadF32(P.norm_x + uint64_t(i * 4)) : 0.0;
        vb[e] = i + 128 < n ? LoadF32(P.norm_x + uint64_t((i + 128) * 4)) : 0.0;
      }
      [[unroll]] for (int e = 0; e < NORM_BATCH; ++e) a = fma(va[e], va[e], a);
      [[unroll]] for (int e = 0; e < NORM_BATCH; ++e) b = fma(vb[e], vb[e], b);
    }
  } else {
    for (int64_t i = tid; i < n; i += 256) {
      const float v = LoadF32(P.norm_x + uint64_t(i * 4));
      a = fma(v, v, a);
    }
    for (int64_t i = tid + 128; i < n; i += 256) {
      const float v = LoadF32(P.norm_x + uint64_t(i * 4));
      b = fma(v, v, b);
    }
  }
  a = subgroupAdd(a);
  b = subgroupAdd(b);
  if (subgroupElect()) {
    sm_norm[gl_SubgroupID] = a;
    sm_norm[gl_SubgroupID + gl_NumSubgroups] = b;
  }
  barrier();
  float t = 0.0;
  for (uint s = 0; s < 2u * gl_NumSubgroups; ++s) t += sm_norm[s];
  return 1.0 / sqrt(t / float(n) + P.norm_eps);
}

// Normed x[k, k + 4), as rows.comp computes each element.
vec4 NormX4(Params P, int64_t k, float r) {
  vec4 y = LoadX4(P.norm_x, k) * r;
  if (P.norm_w != 0ul) y *= LoadX4(P.norm_w, k) + P.norm_woff;
  return y;
}

// Every workgroup of the dispatch stores its share: elements 128 g + t, + 128 G, ... (g its
// index, G launched). One workgroup storing the whole row ran K / 128 dependent load-store
// rounds (~0.1 us each from L2) after its prologue and before its own rows, and the dispatch
// waited for it (vk28, H200 lab: 8B norm + q/k/v with the norm output stored 31.2 -> 27.6 us).
void WriteNormed(Params P, float r) {
  const int64_t G = int64_t(gl_NumWorkGroups.x) * int64_t(gl_NumWorkGroups.y);
  for (int64_t i = int64_t(GroupIndex()) * 128 + int64_t(gl_LocalInvocationID.x); i < P.K;
       i += G * 128) {
    float y = LoadF32(P.norm_x + uint64_t(i * 4)) * r;
    if (P.norm_w != 0ul) y *= LoadF32(P.norm_w + uint64_t(i * 4)) + P.norm_woff;
    StoreF32(P.norm_out + uint64_t(i * 4), y);
  }
}

#endif  // DECODE && NORM

#if DECODE == 1
void DecodeRowsCoalesced(Params P, Part T, int64_t n0, float nr) {
  const int lane = int(gl_SubgroupInvocationID), SG = int(gl_SubgroupSize);
  const int q = lane % QL;
  const uint stride = uint(SG + 4);
  const uint base = gl_SubgroupID * uint(DROWS) * stride;
  const uint cbase = gl_SubgroupID * uint(DROWS * IR * SG);
  const int64_t nc = P.K / CHUNK;
  const int rows = int(min(int64_t(P.decode_rows), T.N - n0));
  float total = 0.0;  // lane r < rows: the sum for weight row n0 + r
  for (int64_t c0 = 0; c0 < nc; c0 += SG) {
    // All loads of the step first (x once for the DROWS rows), then the chains.
    vec4 xv[IR][2];
    uvec4 wr[DROWS][IR][RAW / QL];
    [[unroll]] for (int i = 0; i < IR; ++i) {
      const int64_t c = c0 + i * (SG / QL) + lane / QL;
      const int64_t k = c * CHUNK + q * PIECE;
      xv[i][0] = vec4(0.0);
      xv[i][1] = vec4(0.0);
      if (c < nc) {
#if NORM
        xv[i][0] = NormX4(P, k, nr);
        xv[i][1] = NormX4(P, k + 4, nr);
#else
        xv[i][0] = LoadX4(P.x, k);
        xv[i][1] = LoadX4(P.x, k + 4);
#endif
      }
      [[unroll]] for (int r = 0; r < DROWS; ++r) {
        [[unroll]] for (int h = 0; h < RAW / QL; ++h) {
          wr[r][i][h] = uvec4(0u);
          if (c < nc && r < rows) {
            wr[r][i][h] = Ld16(
                T.w + uint64_t((n0 + r) * T.w_row + c * (RAW * 16) + q * (RAW / QL * 16) + 16 * h));
          }
        }
      }
    }
    // Past nc or rows every value is 0, so those partials are +0 and change nothing.
    float p[DROWS][IR];
    [[unroll]] for (int r = 0; r < DROWS; ++r) {
      [[unroll]] for (int i = 0; i < IR; ++i) p[r][i] = 0.0;
      if (r < rows) {  // subgroup-uniform
        [[unroll]] for (int i = 0; i < IR; ++i) p[r][i] = PieceDot(0.0, wr[r][i], xv[i]);
      }
    }
    [[unroll]] for (int s = 1; s < QL; ++s) {
      [[unroll]] for (int r = 0; r < DROWS; ++r) {
        if (r < rows) {
          [[unroll]] for (int i = 0; i < IR; ++i) {
            sm_chain[cbase + uint((r * IR + i) * SG + lane)] = p[r][i];
          }
        }
      }
      subgroupMemoryBarrierShared();
      subgroupBarrier();
      if (q == s) {
        [[unroll]] for (int r = 0; r < DROWS; ++r) {
          if (r >= rows) continue;
          [[unroll]] for (int i = 0; i < IR; ++i) {
            const float prev = sm_chain[cbase + uint((r * IR + i) * SG + lane - 1)];
            p[r][i] = PieceDot(prev, wr[r][i], xv[i]);
          }
        }
      }
      subgroupBarrier();
    }
    if (q == QL - 1) {
      [[unroll]] for (int r = 0; r < DROWS; ++r) {
        [[unroll]] for (int i = 0; i < IR; ++i) {
          const uint j = base + uint(r) * stride + uint(i * (SG / QL) + lane / QL);
          sm_fold[j / 4u][j % 4u] = p[r][i];
        }
      }
    }
    subgroupMemoryBarrierShared();
    subgroupBarrier();
    if (lane < rows) {
      const uint first = (base + uint(lane) * stride) / 4u;
      for (uint j = 0; j < uint(SG) / 4u; ++j) {
        const vec4 v = sm_fold[first + j];
        total += v.x;
        total += v.y;
        total += v.z;
        total += v.w;
      }
    }
    subgroupBarrier();
  }
  if (lane < rows) {
    const int64_t n = n0 + lane;
    if (T.bias != 0ul) total += LoadF32(T.bias + uint64_t(n * 4));
    StoreF32(T.out_ + uint64_t(n * T.out_col), total);
    // The ADD node's a + b (f32 addition commutes exactly, so either operand order).
    if (P.res != 0ul)
      StoreF32(P.res_out + uint64_t(n * 4), total + LoadF32(P.res + uint64_t(n * 4)));
  }
}
#endif  // DECODE == 1

#if DECODE == 3
// ---- decode, coalesced loads with a skewed chain hand-over (TESSERA_VULKAN_DECODE_SKEW) ----
// The loads are DecodeRowsCoalesced's (round i: lane l takes quarter q = l % QL of chunk
// c0 + i * SG / QL + l / QL of each of the DROWS rows, contiguous across the subgroup), but its
// hand-over issues every PieceDot QL times (all lanes from 0, then QL - 1 predicated rounds
// through shared memory) for one useful one. Here the NIT = DROWS * IR (round, row) items of a
// step form a software pipeline: at stage t the lane of quarter q works on item t - q, so
// every issued PieceDot but the QL - 1 fill/drain stages is useful; it continues the chain its
// left neighbour produced at stage t - 1 (same item, previous quarter), read with one
// subgroupShuffle. The registers stay loaded in item order; stage t picks item t - q's with
// selects (compile-time candidates t - 0 .. t - QL + 1). Quarter QL - 1's lanes end each
// item's chain: the chunk partial, folded in chunk order exactly as DecodeRowsCoalesced does,
// so the bits are the same (each chunk partial the same fma chain from 0 in k order).
#define NIT (DROWS * IR)    // items a step: item j = round j / DROWS, row j % DROWS
#define NST (NIT + QL - 1)  // pipeline stages a step
// 1: registers loaded in item order, stage t selects item t - q's (coalesced loads);
// 2: lane q loads item s - q into slot s (the loads of one instruction span QL items, so they
// touch QL x more cache lines), no weight selects. Specialization constant 2
// (TESSERA_VULKAN_DECODE_SKEW's value; plugin.cc GetPipeline).
layout(constant_id = 2) const int SKEW_MODE = 1;

// One pipeline stage t (a compile-time constant): item t - q's weights and x (quarter 0's
// candidate, replaced by quarter d's), the chain handed over from the left neighbour's stage
// t - 1, and the chunk partial kept on quarter QL - 1 (meaningful there only).
#define SKEW_STAGE(T)                                                                      \
  {                                                                                        \
    const int t = (T);                                                                     \
    const float prev = subgroupShuffle(carry, src);                                        \
    const int j0 = min(t, NIT - 1);                                                        \
    uvec4 w[RAW / QL];                                                                     \
    [[unroll]] for (int h = 0; h < RAW / QL; ++h) w[h] = SKEW_MODE == 2 ? wr[t][h] : wr[j0][h]; \
    vec4 xa[2] = vec4[2](xv[j0 / DROWS][0], xv[j0 / DROWS][1]);                            \
    [[unroll]] for (int d = 1; d < QL; ++d) {                                              \
      const int j = t - d;                                                                 \
      if (j >= 0 && j < NIT) {                                                             \
        const bvec4 is = bvec4(q == d);                                                    \
        if (SKEW_MODE != 2) {                                                              \
          [[unroll]] for (int h = 0; h < RAW / QL; ++h) w[h] = mix(w[h], wr[j][h], is);     \
        }                                                                                  \
        if (j / DROWS != j0 / DROWS) {                                                     \
          xa[0] = mix(xa[0], xv[j / DROWS][0], is);                                        \
          xa[1] = mix(xa[1], xv[j / DROWS][1], is);                                        \
        }                                                                                  \
      }                                                                                    \
    }                                                                                      \
    carry = PieceDot(q == 0 ? 0.0 : prev, w, xa);                                          \
    if (t >= QL - 1) fin[max(t - (QL - 1), 0)] = carry;                                    \
  }

#if !NORM
// P.kpieces > 1 (plain modules): [row block][row][chunk] chunk partials, a row
// round_up(K / 32, 4) floats (run_ops.cc KpiecesFor checks that they fit).
#define XS_FLOATS 2048  // = run_ops.cc kKpiecesFloats
shared float sm_xs[XS_FLOATS];
#endif
#if PREF
// ---- the next step's loads before this step's math (the decode_*_pref modules; vk23-pref) ----
// A candidate and a lab bound for issue 6, in modules of their own so that the default modules'
// SPIR-V stays as it was (plugin.cc: TESSERA_VULKAN_DECODE_PREF). The loads, the stages and the
// fold are DecodeRowsSkewed's (SKEW_MODE 1 only); PREF_MODE (specialization constant 8) moves
// where the weight (and x) loads are issued, the arithmetic and its order stay the same, so the
// bits stay the same:
//   & 3 = 0: the default order (a step's loads, then its 19 stages and the fold: step s + 1's
//            first load waits for step s's math);
//       = 1: half: the step's items [0, NIT / 2) (rounds [0, IR / 2)) are loaded during the
//            previous step, right after its last stage that reads those slots (stage NIT / 2 +
//            QL - 2), so they fly during its remaining stages and fold; items [NIT / 2, NIT) at
//            the step's top, during stages [0, NIT / 2). The same registers as the default
//            (each slot reloaded once it is dead);
//       = 2: full: the next step's weights at the top of this step (a second register set,
//            +16 uvec4 a lane for bf16 / f16: +64 registers);
//   & 8: x (normed for NORM) loaded with the weights of its round (half: rounds [0, IR / 2) of
//        the next step in the previous step; full: the next step's x, +32 registers); else x at
//        the step's top as in the default;
//   & 4: LOADS ONLY (a lab bound, WRONG outputs): the same loads in the same order, the stages
//        replaced by an XOR of every loaded word (chained over the quarter's lanes by 3
//        shuffles so no lane's loads are dead), the fold unchanged: what the steps cost
//        without their math.
layout(constant_id = 8) const int PREF_MODE = 1;
// Stage after which the half schedule reloads items [0, NIT / 2): item j is last read at stage
// j + QL - 1 (quarter QL - 1).
#define PREF_MID (NIT / 2 + QL - 2)
// Round I's x of the step at chunk C0 into XV[I] (DecodeRowsSkewed's x loads).
#if NORM
#define PREF_X(C0, I, XV)                                  \
  {                                                        \
    const int64_t c = (C0) + (I) * (SG / QL) + lane / QL;  \
    const int64_t k = c * CHUNK + q * PIECE;               \
    XV[I][0] = vec4(0.0);                                  \
    XV[I][1] = vec4(0.0);                                  \
    if (c < ce) {                                          \
      XV[I][0] = NormX4(P, k, nr);                         \
      XV[I][1] = NormX4(P, k + 4, nr);                     \
    }                                                      \
  }
#else
#define PREF_X(C0, I, XV)                                  \
  {                                                        \
    const int64_t c = (C0) + (I) * (SG / QL) + lane / QL;  \
    const int64_t k = c * CHUNK + q * PIECE;               \
    XV[I][0] = vec4(0.0);                                  \
    XV[I][1] = vec4(0.0);                                  \
    if (c < ce) {                                          \
      XV[I][0] = LoadX4(P.x, k);                           \
      XV[I][1] = LoadX4(P.x, k + 4);                       \
    }                                                      \
  }
#endif
// Round I's weights of the step at chunk C0 into W[I * DROWS + r] (DecodeRowsSkewed's loads).
#define PREF_W(C0, I, W)                                                                   \
  {                                                                                        \
    const int64_t c = (C0) + (I) * (SG / QL) + lane / QL;                                  \
    const uint64_t ws = wl + uint64_t((C0) * (RAW * 16));                                  \
    [[unroll]] for (int r = 0; r < DROWS; ++r) {                                           \
      [[unroll]] for (int h = 0; h < RAW / QL; ++h) {                                      \
        W[(I) * DROWS + r][h] = uvec4(0u);                                                 \
        if (c < ce && r < rows)                                                            \
          W[(I) * DROWS + r][h] = Ld16(ws + roff[r] + uint64_t(uint(I) * round_bytes + 16u * h)); \
      }                                                                                    \
    }                                                                                      \
  }
// LOADS ONLY: item J's words and round J / DROWS's x (once a round) into acc / hs[J].
#define PREF_HASH(J)                                                                  \
  {                                                                                   \
    uint hw = 0u;                                                                     \
    [[unroll]] for (int h = 0; h < RAW / QL; ++h)                                     \
      hw ^= wr[J][h].x ^ wr[J][h].y ^ wr[J][h].z ^ wr[J][h].w;                         \
    if ((J) % DROWS == 0) {                                                           \
      const uvec4 xb = floatBitsToUint(xv[(J) / DROWS][0]) ^ floatBitsToUint(xv[(J) / DROWS][1]); \
      hw ^= xb.x ^ xb.y ^ xb.z ^ xb.w;                                                \
    }                                                                                 \
    hs[J] = hw;                                                                       \
    acc ^= hw;                                                                        \
  }
// One stage, and after PREF_MID the half schedule's reload of items [0, NIT / 2) (and their x).
#define PREF_STAGE(T)                                                         \
  if (lonly) {                                                                \
    if ((T) < NIT) PREF_HASH(min(T, NIT - 1))                                 \
  } else                                                                      \
    SKEW_STAGE(T)                                                             \
  if ((T) == PREF_MID && wsched == 1) {                                       \
    [[unroll]] for (int i = 0; i < IR / 2; ++i) {                             \
      if (xpre) PREF_X(c0 + SG, i, xv)                                        \
      PREF_W(c0 + SG, i, wr)                                                  \
    }                                                                         \
  }
#endif  // PREF

// piece: the workgroup's piece of K when P.xsplit > 1 (a lone GEMV split across workgroups),
// or the subgroup's when P.kpieces > 1 (split within the workgroup).
#if PAIRED
// vrow >= 0: the rows' sums also go to sm_pair[vrow + r] (PairedGroup).
void DecodeRowsSkewed(Params P, Part T, int64_t n0, float nr, int piece, int vrow) {
#else
void DecodeRowsSkewed(Params P, Part T, int64_t n0, float nr, int piece) {
#endif
  const int lane = int(gl_SubgroupInvocationID), SG = int(gl_SubgroupSize);
  const int q = lane % QL;
  const uint src = uint(max(lane - 1, 0));  // the left neighbour (unused by quarter 0)
  const uint stride = uint(SG + 4);
  const uint base = gl_SubgroupID * uint(DROWS) * stride;
  const int64_t nc = P.K / CHUNK;
  const int rows = int(min(int64_t(P.decode_rows), T.N - n0));
  // This lane's bytes of row n0 at chunk lane / QL (quarter q): one 64-bit address a step, then
  // a row's offset (computed once) and a round's (32-bit) a load. For bf16 / f16 (RAW / QL = 1)
  // one load instruction (fixed r, i) asks 16 l + [0, 16) of 512 contiguous bytes of one row:
  // four whole 128-byte lines, the shape CUDA's GemvLoadLines builds with shuffles (vk23-lines,
  // lab/vk23lines_shape.py; f32 weights ask half lines, h = 0 / 1, as x's LoadX4 / NormX4 do).
  const uint64_t wl = T.w + uint64_t(n0 * T.w_row) + uint64_t(lane * (RAW / QL * 16));
  const uint round_bytes = uint(SG / QL) * uint(RAW * 16);
  uint64_t roff[DROWS];
  [[unroll]] for (int r = 0; r < DROWS; ++r) roff[r] = uint64_t(int64_t(r) * T.w_row);
  float total = 0.0;  // lane r < rows: the sum for weight row n0 + r
  // Chunks [cb, ce): all of them, or this workgroup's / subgroup's piece (a multiple of SG
  // chunks long).
  const bool split = P.xsplit > 1;
#if NORM
  const bool kps = false;
#else
  const bool kps = P.kpieces > 1;  // workgroup-uniform
#endif
  int64_t cb = split ? int64_t(piece) * P.xs_chunks : 0;
  int64_t ce = split ? min(nc, cb + P.xs_chunks) : nc;
  const int64_t ncp = (nc + 3) / 4 * 4;  // floats a row of partials
  uint xbase = 0u;
  if (kps) {
    const int64_t per = (nc + SG - 1) / SG;                      // subgroup steps a row
    const int64_t pc = (per + P.kpieces - 1) / P.kpieces * SG;  // chunks a piece
    cb = int64_t(piece) * pc;
    ce = min(nc, cb + pc);
    xbase = uint(int(gl_SubgroupID) / P.kpieces) * uint(DROWS) * uint(ncp);
  }
#if PREF
  // PREF_MODE's schedule (above): the slots live across steps; what the first step needs of
  // the early loads is loaded here.
  const int wsched = PREF_MODE & 3;
  const bool lonly = (PREF_MODE & 4) != 0, xpre = (PREF_MODE & 8) != 0 && wsched != 0;
  vec4 xv[IR][2], xn[IR][2];
  uvec4 wr[NST][RAW / QL], wn[NIT][RAW / QL];
  if (wsched == 1) {
    [[unroll]] for (int i = 0; i < IR / 2; ++i) {
      if (xpre) PREF_X(cb, i, xv)
      PREF_W(cb, i, wr)
    }
  } else if (wsched == 2) {
    [[unroll]] for (int i = 0; i < IR; ++i) {
      if (xpre) PREF_X(cb, i, xn)
      PREF_W(cb, i, wn)
    }
  }
  for (int64_t c0 = cb; c0 < ce; c0 += SG) {
    if (wsched == 0) {  // the default order
      [[unroll]] for (int i = 0; i < IR; ++i) {
        PREF_X(c0, i, xv)
        PREF_W(c0, i, wr)
      }
    } else if (wsched == 1) {  // rounds [0, IR / 2) came with the previous step
      [[unroll]] for (int i = 0; i < IR; ++i) {
        if (i >= IR / 2 || !xpre) PREF_X(c0, i, xv)
        if (i >= IR / 2) PREF_W(c0, i, wr)
      }
    } else {  // full: this step's slots from the previous step's loads, then the next step's
      [[unroll]] for (int j = 0; j < NIT; ++j) {
        [[unroll]] for (int h = 0; h < RAW / QL; ++h) wr[j][h] = wn[j][h];
      }
      if (xpre) {
        [[unroll]] for (int i = 0; i < IR; ++i) xv[i] = xn[i];
      }
      [[unroll]] for (int i = 0; i < IR; ++i) {
        if (xpre) PREF_X(c0 + SG, i, xn)
        PREF_W(c0 + SG, i, wn)
      }
      if (!xpre) {
        [[unroll]] for (int i = 0; i < IR; ++i) PREF_X(c0, i, xv)
      }
    }
    float fin[NIT];  // quarter QL - 1: item j's chunk partial
    float carry = 0.0;
    uint acc = 0u, hs[NIT];  // LOADS ONLY
    PREF_STAGE(0) PREF_STAGE(1) PREF_STAGE(2) PREF_STAGE(3) PREF_STAGE(4) PREF_STAGE(5)
    PREF_STAGE(6) PREF_STAGE(7) PREF_STAGE(8) PREF_STAGE(9) PREF_STAGE(10)
#if NST > 11
    PREF_STAGE(11) PREF_STAGE(12) PREF_STAGE(13) PREF_STAGE(14) PREF_STAGE(15) PREF_STAGE(16)
    PREF_STAGE(17) PREF_STAGE(18)
#endif
    if (lonly) {
      // The quarter's lanes' XORs chained to quarter QL - 1 (lane q gets lanes q - QL + 1 .. q),
      // each item's value in [1, 2).
      uint a = acc;
      [[unroll]] for (int s = 1; s < QL; ++s) a = acc ^ subgroupShuffle(a, src);
      [[unroll]] for (int j = 0; j < NIT; ++j)
        fin[j] = uintBitsToFloat(((hs[j] ^ a) & 0x007fffffu) | 0x3f800000u);
    }
#else
  for (int64_t c0 = cb; c0 < ce; c0 += SG) {
    const uint64_t ws = wl + uint64_t(c0 * (RAW * 16));
    vec4 xv[IR][2];
    uvec4 wr[NST][RAW / QL];
    [[unroll]] for (int i = 0; i < IR; ++i) {
      const int64_t c = c0 + i * (SG / QL) + lane / QL;
      const int64_t k = c * CHUNK + q * PIECE;
      xv[i][0] = vec4(0.0);
      xv[i][1] = vec4(0.0);
      if (c < ce) {
#if NORM
        xv[i][0] = NormX4(P, k, nr);
        xv[i][1] = NormX4(P, k + 4, nr);
#else
        xv[i][0] = LoadX4(P.x, k);
        xv[i][1] = LoadX4(P.x, k + 4);
#endif
      }
      if (SKEW_MODE != 2) {
        [[unroll]] for (int r = 0; r < DROWS; ++r) {
          [[unroll]] for (int h = 0; h < RAW / QL; ++h) {
            wr[i * DROWS + r][h] = uvec4(0u);
            if (c < ce && r < rows)
              wr[i * DROWS + r][h] = Ld16(ws + roff[r] + uint64_t(uint(i) * round_bytes + 16u * h));
          }
        }
      }
    }
    if (SKEW_MODE == 2) {
      [[unroll]] for (int t = 0; t < NST; ++t) {
        const int j = t - q, jj = clamp(j, 0, NIT - 1), i = jj / DROWS, r = jj % DROWS;
        const int64_t c = c0 + i * (SG / QL) + lane / QL;
        const bool ok = j >= 0 && j < NIT && c < ce && r < rows;
        const uint64_t a = ws + uint64_t(int64_t(r) * T.w_row) + uint64_t(uint(i) * round_bytes);
        [[unroll]] for (int h = 0; h < RAW / QL; ++h) {
          wr[t][h] = uvec4(0u);
          if (ok) wr[t][h] = Ld16(a + uint64_t(16u * h));
        }
      }
    }
    // Past nc or rows every value is 0, so those items' partials are +0 and change nothing.
    float fin[NIT];  // quarter QL - 1: item j's chunk partial
    float carry = 0.0;
    // Stages 0 .. NST - 1, unrolled by hand (glslc does not unroll this loop; each stage's
    // candidates must be compile-time so that no register array is indexed dynamically).
    SKEW_STAGE(0) SKEW_STAGE(1) SKEW_STAGE(2) SKEW_STAGE(3) SKEW_STAGE(4) SKEW_STAGE(5)
    SKEW_STAGE(6) SKEW_STAGE(7) SKEW_STAGE(8) SKEW_STAGE(9) SKEW_STAGE(10)
#if NST > 11
    SKEW_STAGE(11) SKEW_STAGE(12) SKEW_STAGE(13) SKEW_STAGE(14) SKEW_STAGE(15) SKEW_STAGE(16)
    SKEW_STAGE(17) SKEW_STAGE(18)
#endif
#endif  // PREF
    if (split) {
      // The chunk partials to memory; the fold waits for the last piece.
      if (q == QL - 1) {
        [[unroll]] for (int r = 0; r < DROWS; ++r) {
          [[unroll]] for (int i = 0; i < IR; ++i) {
            const int64_t c = c0 + i * (SG / QL) + lane / QL;
            if (r < rows && c < ce)
              CohF32(P.xs_part + uint64_t(((n0 + r) * ncp + c) * 4)).v = fin[i * DROWS + r];
          }
        }
      }
      continue;
    }
#if !NORM
    if (kps) {
      // The chunk partials to shared memory; piece 0 folds them after the loop.
      if (q == QL - 1) {
        [[unroll]] for (int r = 0; r < DROWS; ++r) {
          [[unroll]] for (int i = 0; i < IR; ++i) {
            const int64_t c = c0 + i * (SG / QL) + lane / QL;
            if (r < rows && c < ce)
              sm_xs[xbase + uint(r) * uint(ncp) + uint(c)] = fin[i * DROWS + r];
          }
        }
      }
      continue;
    }
#endif
    if (q == QL - 1) {
      [[unroll]] for (int r = 0; r < DROWS; ++r) {
        [[unroll]] for (int i = 0; i < IR; ++i) {
          const uint j = base + uint(r) * stride + uint(i * (SG / QL) + lane / QL);
          sm_fold[j / 4u][j % 4u] = fin[i * DROWS + r];
        }
      }
    }
    subgroupMemoryBarrierShared();
    subgroupBarrier();
    if (lane < rows) {
      const uint first = (base + uint(lane) * stride) / 4u;
      for (uint j = 0; j < uint(SG) / 4u; ++j) {
        const vec4 v = sm_fold[first + j];
        total += v.x;
        total += v.y;
        total += v.z;
        total += v.w;
      }
    }
    subgroupBarrier();
  }
  if (split && !SplitFold(P, n0, rows, nc, lane, total)) return;
#if !NORM
  if (kps) {
    // Every subgroup of the workgroup gets here once (main), so the barrier is uniform; then
    // piece 0's lane r folds row r's partials from 0 in chunk order (the canonical sum).
    barrier();
    if (piece != 0) return;
    if (lane < rows) {
      const uint row = xbase + uint(lane) * uint(ncp);
      int64_t c = 0;
      for (; c + 4 <= nc; c += 4) {
        const float a0 = sm_xs[row + uint(c)], a1 = sm_xs[row + uint(c) + 1u];
        const float a2 = sm_xs[row + uint(c) + 2u], a3 = sm_xs[row + uint(c) + 3u];
        total += a0;
        total += a1;
        total += a2;
        total += a3;
      }
      for (; c < nc; ++c) total += sm_xs[row + uint(c)];
    }
  }
#endif
  if (lane < rows) {
    const int64_t n = n0 + lane;
    if (T.bias != 0ul) total += LoadF32(T.bias + uint64_t(n * 4));
#if PAIRED
    if (vrow >= 0) sm_pair[vrow + lane] = total;
    if (T.out_ != 0ul) StoreF32(T.out_ + uint64_t(n * T.out_col), total);
#else
    StoreF32(T.out_ + uint64_t(n * T.out_col), total);
#endif
    // The ADD node's a + b (f32 addition commutes exactly, so either operand order).
    if (P.res != 0ul)
      StoreF32(P.res_out + uint64_t(n * 4), total + LoadF32(P.res + uint64_t(n * 4)));
  }
}
#endif  // DECODE == 3

#if PAIRED
// ---- paired epilogues (modules decode_skew_pair_*; P.glu_out / P.rope_*; plugin.cc
// FuseEpilogue) ----
// Separate modules: compiled into the skew+norm modules themselves, this code went with 8B
// tg128 -7% against HEAD with the epilogues off (H100, vk-fuse call 1; attributed to the
// kernel's resources, not profiled), so those modules stay as they were.
// A paired workgroup sums rows_per_group / 2 rows of a set A (from a0) and as many of a set B
// (from b0), each subgroup a block of decode_rows rows of one set (the host makes
// rows_per_group / 2 a multiple of decode_rows), every row exactly as when the workgroups take
// consecutive rows (a row's sum depends only on the row), leaves the sums in sm_pair, then
// combines them:
//  - SWIGLU (glu_out): A = rows [g h, g h + h) of the gate (part 0), B = the same rows of up
//    (part 1), h = rows_per_group / 2; glu_out[n] = silu(gate[n]) * up[n], elementwise.comp's
//    expression on the same two f32 sums.
//  - q RoPE (rope_out): part 0's workgroups take pairs [i0, i0 + h) of head hd, A = rows
//    hd D + i, B = rows hd D + i + R / 2 (the host makes R / 2 a multiple of h), rotated with
//    rope.comp's RopeSinCos / RopeRotate; the other parts' (k, v) workgroups take consecutive rows as usual.

// Part j of the group (0: Params' own fields).
Part PartAt(Params P, int j) {
  if (j == 0) return Part(P.w, P.bias, P.out_, P.N, P.w_row, P.out_col);
  return Part(P.gw[j - 1], P.gbias[j - 1], P.gout[j - 1], P.gN[j - 1], P.gw_row[j - 1],
              P.gout_col[j - 1]);
}

void PairedGroup(Params P, int64_t g, int part, int64_t start, float nr) {
  const bool glu = P.glu_out != 0ul;
  const bool paired = glu || part == 0;  // workgroup-uniform
  const int hv = P.rows_per_group / 2, dr = P.decode_rows;
  int64_t a0 = (g - start) * P.rows_per_group, b0 = 0, hd = 0, i0 = 0;
  const int64_t rh = int64_t(P.rope_R / 2);
  if (glu) {
    a0 = g * hv;
    b0 = a0;
  } else if (paired) {
    const int64_t per_head = rh / hv;
    hd = g / per_head;
    i0 = (g % per_head) * hv;
    a0 = hd * int64_t(P.rope_D) + i0;
    b0 = a0 + rh;
  }
  for (int v = int(gl_SubgroupID) * dr; v < P.rows_per_group; v += int(gl_NumSubgroups) * dr) {
    const bool second = paired && v >= hv;
    const Part T = PartAt(P, second && glu ? 1 : part);
    const int64_t n = second ? b0 + int64_t(v - hv) : a0 + int64_t(v);
    if (n < T.N) DecodeRowsSkewed(P, T, n, nr, 0, paired ? v : -1);
  }
  if (!paired) return;
  barrier();
  const int t = int(gl_LocalInvocationID.x);
  if (t >= hv) return;
  const float x0 = sm_pair[t], x1 = sm_pair[hv + t];
  if (glu) {
    if (a0 + t < P.N) StoreF32(P.glu_out + uint64_t((a0 + t) * 4), x0 * Sigmoid(x0) * x1);
    return;
  }
  const int64_t i = i0 + t;
  float s, c, y0, y1;
  RopeSinCos(LoadI32(P.rope_pos), LoadF32(P.rope_freq + uint64_t(i * 4)), P.rope_scale, s, c);
  RopeRotate(x0, x1, s, c, y0, y1);
  const uint64_t dst = P.rope_out + uint64_t(hd * P.rope_o_head);
  StoreF32(dst + uint64_t(i * P.rope_o_el), y0);
  StoreF32(dst + uint64_t((i + rh) * P.rope_o_el), y1);
}
#endif  // PAIRED

#if DECODE == 3 && NORM
// ---- persistent norm-fused groups (vk-dec17) ----
// PERSIST (specialization constant 4; plugin.cc, TESSERA_VULKAN_PERSIST): 0 = main's code as
// before; 1 = NormGroups: the workgroup computes the RMS_NORM scale once and then takes the
// workgroup indices g, g + G, ... below P.ptotal (G launched: the host launches fewer than the
// group's workgroups, about as many as are resident at once), each exactly as a workgroup of
// that index does (the same rows, the same nr, the same code: the same bits). The prologue's
// latency (NormScale's two dependent L2 round trips and a barrier before the first weight load)
// is paid once a workgroup instead of once a wave of workgroups (vk-dec16b): on the H100 (396
// launched) 8B gate/up (1792 workgroups, ~4.5 waves at 3 an SM) 104.8 -> 102.7 us; the
// skipped-out main() code also compiles smaller (q/k/v, one wave: 37.5 -> 36.6 us).
layout(constant_id = 4) const int PERSIST = 0;

void NormGroups(Params P) {
  const int64_t g0 = int64_t(GroupIndex());
  const int64_t G = int64_t(gl_NumWorkGroups.x) * int64_t(gl_NumWorkGroups.y);
  const int64_t total = P.ptotal > 0 ? int64_t(P.ptotal) : G;
  const float nr = NormScale(P);
#if PAIRED
  if (P.norm_out != 0ul) WriteNormed(P, nr);
#else
  WriteNormed(P, nr);
#endif
  for (int64_t g = g0; g < total; g += G) {
    // The index's part (workgroup-uniform) and the part's first index.
    int part = 0, start = 0;
    for (int j = 1; j < P.n_parts; ++j) {
      if (g >= int64_t(P.group_start[j])) {
        part = j;
        start = P.group_start[j];
      }
    }
#if PAIRED
    if (g != g0) barrier();  // every invocation is done with the previous index's sm_pair
    PairedGroup(P, g, part, int64_t(start), nr);
#else
    Part T = Part(P.w, P.bias, P.out_, P.N, P.w_row, P.out_col);
    if (part > 0) {
      T = Part(P.gw[part - 1], P.gbias[part - 1], P.gout[part - 1], P.gN[part - 1],
               P.gw_row[part - 1], P.gout_col[part - 1]);
    }
    const int64_t first = (g - int64_t(start)) * P.rows_per_group;
    const int64_t last = min(first + P.rows_per_group, T.N);
    const int dr = P.decode_rows;
    for (int64_t n = first + int64_t(gl_SubgroupID) * dr; n < last;
         n += int64_t(gl_NumSubgroups) * dr)
      DecodeRowsSkewed(P, T, n, nr, 0);
#endif
  }
}
#endif  // DECODE == 3 && NORM

#if DECODE == 2
// ---- split decode GEMV (its own modules; TESSERA_VULKAN_DECODE_SPLIT, run_ops.cc) ----
// The workgroup's 128 invocations share the K of its rows: rows_per_group rows in row blocks
// of decode_rows (<= DROWS) rows, 128 / blocks invocations a block (the host picks the block
// count so they cover a row's chunks in few steps). Invocation j of a block takes chunks
// j, j + tpr, ...: it loads x's chunk once (32 floats) and multiplies it with that chunk of
// each of the block's rows (ChunkDot: an FMA chain from 0 in k order), and keeps the partial in
// shared memory. No barrier inside the loop, so an invocation's loads for all its rows are in
// flight together and nothing waits for a fold between steps; one barrier after it, then
// invocation t folds row t's partials in chunk order. Same order as DecodeRows (chunk
// partials from 0, added left to right from 0, then bias), so the same bits.
#define SPLIT_FLOATS 4096  // rows_per_group * (K / 32 + 4) <= this (the host checks); 32 KiB
                           // cost a third of decode speed on the H100 (occupancy)
shared vec4 sm_split[SPLIT_FLOATS / 4];

void DecodeSplit(Params P, Part T, int64_t n0, float nr) {
  const int t = int(gl_LocalInvocationID.x);
  const int wr = P.decode_rows;
  const int blocks = P.rows_per_group / wr;
  const int tpr = 128 / blocks;  // invocations a row block
  const int b = t / tpr, j = t % tpr;
  const int64_t nc = P.K / CHUNK;
  // A row's partials start 16-byte aligned (vec4 reads in the fold), padded by 4 floats so the
  // folding invocations read different banks.
  const uint stride = (uint(nc) + 3u) / 4u * 4u + 4u;
  const int64_t nb = n0 + int64_t(b * wr);  // the block's first row
  const int rows = int(clamp(T.N - nb, int64_t(0), int64_t(wr)));
  for (int64_t c = j; rows > 0 && c < nc; c += tpr) {
    vec4 xv[8];
    [[unroll]] for (int i = 0; i < 8; ++i) {
#if NORM
      xv[i] = NormX4(P, c * CHUNK + 4 * i, nr);
#else
      xv[i] = LoadX4(P.x, c * CHUNK + 4 * i);
#endif
    }
    // Every row's loads unconditional (rows past N re-read the block's last row, whose
    // partial is dropped), so the compiler can issue them all before the first FMA.
    [[unroll]] for (int r = 0; r < DROWS; ++r) {
      const int64_t row = nb + int64_t(min(r, rows - 1));
      const float part = ChunkDot(T.w + uint64_t(row * T.w_row + c * (RAW * 16)), xv);
      const uint i = uint(b * wr + r) * stride + uint(c);
      if (r < rows) sm_split[i / 4u][i % 4u] = part;
    }
  }
  barrier();
  const int64_t n = n0 + t;
  if (t < P.rows_per_group && n < T.N) {
    const uint base = uint(t) * stride / 4u;
    float total = 0.0;  // (0 + p_0) + p_1 + ...: chunk order
    // 8 partials' reads issued before their adds (a shared-memory round trip per 8, not per
    // partial); the adds stay in chunk order. Slots past nc are never added.
    const uint full = uint(nc) / 8u;
    for (uint c8 = 0; c8 < full; ++c8) {
      const vec4 a = sm_split[base + 2u * c8], b = sm_split[base + 2u * c8 + 1u];
      total += a.x;
      total += a.y;
      total += a.z;
      total += a.w;
      total += b.x;
      total += b.y;
      total += b.z;
      total += b.w;
    }
    for (uint c = full * 8u; c < uint(nc); ++c) total += sm_split[base + c / 4u][c % 4u];
    if (T.bias != 0ul) total += LoadF32(T.bias + uint64_t(n * 4));
    StoreF32(T.out_ + uint64_t(n * T.out_col), total);
    // The ADD node's a + b (f32 addition commutes exactly, so either operand order).
    if (P.res != 0ul)
      StoreF32(P.res_out + uint64_t(n * 4), total + LoadF32(P.res + uint64_t(n * 4)));
  }
}
#endif  // DECODE == 2
#endif  // !QUANT

#if DECODE == 4
// ---- few x rows (M = 2..32: batched decode, short prompts; run_ops.cc UseMultiRows): aligned
// rows, whole chunks (q8 / q4: whole blocks), any weight dtype ----
// MatmulRow reads a weight row once for its 8 x rows but loads every x row's chunk again for
// each weight row, one lane a chunk (lanes' loads 128 bytes apart: 32 cache lines an
// instruction). Here a workgroup steps through K in steps of SG chunks, all its subgroups
// together: per step the workgroup copies the x tile (up to MR rows x SG chunks, coalesced) into
// shared memory once, then each subgroup takes its decode_rows (<= MROWS) weight rows, lane l
// chunk c0 + l of each weight row and of each x row (from shared memory, conflict-free), and
// keeps the MROWS x MR chunk partials, each an FMA chain from 0 in k order. Lane j then folds
// pair j (weight row j / MR, x row j % MR) left to right in chunk order: the canonical order, so
// the bits of MatmulRow, DecodeRows and the GEMM.
#if QUANT
#define MROWS 4  // weight rows a subgroup at most (run_ops.cc DecodeRowsPerSubgroup)
#define QWORDS ((WDT == DT_Q8 ? Q8_BYTES : Q4_BYTES) / 2)  // 16-bit words a block (a chunk)
#else
#define MROWS DROWS
#endif
#define MR ROWS  // x rows a tile, as MatmulRow's (the host's z tiles)
#define MPAIRS (MROWS * MR)
#define MSG 32   // the largest subgroup the shared tile holds (run_ops.cc: subgroups 8..32)
#define MTOT ((MPAIRS + 7) / 8)  // pairs a lane folds (subgroups of >= 8)
// The x tile, [x row][chunk][16-byte slot], slot q of chunk j at q ^ (j & 7) (lane j reads slot
// q of its chunk: 8 lanes in a row cover all 32 banks); after the step's math the same memory
// holds the subgroups' chunk partials for the fold, [subgroup][pair][lane] with rows padded by 4
// floats ((128 / SG) * MPAIRS * (SG + 4) floats <= MR * MSG * 32 for SG >= 8). sm_multi is
// declared above MatmulRow, MR * MSG * 8 vec4s.

void MultiRows(Params P, int64_t n0, int rows, int64_t m0) {
  const int lane = int(gl_SubgroupInvocationID), SG = int(gl_SubgroupSize);
  const uint tid = gl_LocalInvocationIndex;
  const uint stride = uint(SG + 4);
  const uint base = gl_SubgroupID * uint(MPAIRS) * stride;
  const int64_t nc = P.K / CHUNK;
  const int mrows = int(min(int64_t(MR), P.M - m0));
  const uint sw = uint(lane & 7);
  float tot[MTOT];  // pair lane + t * SG's sum
  [[unroll]] for (int t = 0; t < MTOT; ++t) tot[t] = 0.0;
  const uint lg = uint(findLSB(uint(SG)));  // SG is a power of two
  const uint nslots = uint(MR * 8) << lg;     // the x tile's 16-byte slots
  // Workgroup-uniform loop (its barriers): every subgroup runs every step, rows 0 included.
  for (int64_t c0 = 0; c0 < nc; c0 += SG) {
    const int64_t c = c0 + lane;
    // This lane's weights for the step first (row r's chunk c: RAW 16-byte words, or a q8 / q4
    // block's QWORDS 16-bit words), so that their loads are in flight while the x tile is copied.
#if QUANT
    uint wq[MROWS][QWORDS];
    [[unroll]] for (int r = 0; r < MROWS; ++r) {
      [[unroll]] for (int i = 0; i < QWORDS; ++i) {
        wq[r][i] = 0u;
        if (c < nc && r < rows)
          wq[r][i] = LoadU16(P.w + uint64_t((n0 + r) * P.w_row + c * (2 * QWORDS) + 2 * i));
      }
    }
#else
    uvec4 wr[MROWS][RAW];
    [[unroll]] for (int r = 0; r < MROWS; ++r) {
      [[unroll]] for (int i = 0; i < RAW; ++i) {
        wr[r][i] = uvec4(0u);
        if (c < nc && r < rows)
          wr[r][i] = Ld16(P.w + uint64_t((n0 + r) * P.w_row + c * (RAW * 16) + 16 * i));
      }
    }
#endif
    // The x tile: slot s = (m, j, q) of the step's chunks, in two halves (each half's loads
    // before its stores, a barrier between: on the H200 3.5% faster on the 8B's tg32x8 than all
    // 16 loads a thread at once); past M or K: zeros (never read into a kept sum: a chunk past K
    // has its weights 0 too, so fma(0, 0, p) == p).
    [[unroll]] for (int h = 0; h < 2; ++h) {
      vec4 xs[MR * MSG * 8 / 256];
      [[unroll]] for (int i = 0; i < MR * MSG * 8 / 256; ++i) {
        const uint sl = tid + uint(128 * (i + h * MR * MSG * 8 / 256));
        const uint m = sl >> (lg + 3u), j = (sl >> 3u) & uint(SG - 1), q = sl & 7u;
        xs[i] = vec4(0.0);
        if (sl < nslots && int(m) < mrows && c0 + int64_t(j) < nc)
          xs[i] = LoadX4(P.x + uint64_t((m0 + int64_t(m)) * P.x_row), (c0 + int64_t(j)) * CHUNK + 4 * q);
      }
      [[unroll]] for (int i = 0; i < MR * MSG * 8 / 256; ++i) {
        const uint sl = tid + uint(128 * (i + h * MR * MSG * 8 / 256));
        const uint j = (sl >> 3u) & uint(SG - 1), q = sl & 7u;
        if (sl < nslots) sm_multi[(sl & ~7u) + (q ^ (j & 7u))] = xs[i];
      }
      if (h == 0) barrier();
    }
    barrier();
    float part[MROWS][MR];
    [[unroll]] for (int r = 0; r < MROWS; ++r) {
      [[unroll]] for (int m = 0; m < MR; ++m) part[r][m] = 0.0;
    }
    // Chunks past K contribute +0, which leaves the totals unchanged.
    if (c < nc && rows > 0) {
      [[unroll]] for (int e = 0; e < CHUNK / 8; ++e) {
        // Values 8e .. 8e + 7 of each row's chunk, decoded as LoadW8 does (the same arithmetic,
        // so the same floats).
        float wv[MROWS][8];
        [[unroll]] for (int r = 0; r < MROWS; ++r) {
#if QUANT
          const int w0 = 1 + (WDT == DT_Q8 ? 4 * e : 4 * (e & 1));  // as LoadW8's
          const uvec4 h = uvec4(wq[r][w0], wq[r][w0 + 1], wq[r][w0 + 2], wq[r][w0 + 3]);
          DecodeW8(h, uvec4(0u), F16Bits(wq[r][0]), e >= 2 ? 4u : 0u, wv[r]);
#elif WDT == DT_F32
          DecodeW8(wr[r][2 * e], wr[r][2 * e + 1], 0.0, 0u, wv[r]);
#else
          DecodeW8(wr[r][e], uvec4(0u), 0.0, 0u, wv[r]);
#endif
        }
        [[unroll]] for (int m = 0; m < MR; ++m) {
          if (m < mrows) {
            const uint row = (uint(m) << lg) + uint(lane);
            const vec4 a = sm_multi[row * 8u + (uint(2 * e) ^ sw)];
            const vec4 b = sm_multi[row * 8u + (uint(2 * e + 1) ^ sw)];
            [[unroll]] for (int r = 0; r < MROWS; ++r) part[r][m] = Fma8(part[r][m], a, b, wv[r]);
          }
        }
      }
    }
    barrier();  // every subgroup done with the x tile before the partials take its memory
    [[unroll]] for (int r = 0; r < MROWS; ++r) {
      [[unroll]] for (int m = 0; m < MR; ++m) {
        const uint i = base + uint(r * MR + m) * stride + uint(lane);
        sm_multi[i / 4u][i % 4u] = part[r][m];
      }
    }
    subgroupMemoryBarrierShared();
    subgroupBarrier();
    [[unroll]] for (int t = 0; t < MTOT; ++t) {
      const int j = lane + t * SG;
      if (j < MPAIRS && j / MR < rows && j % MR < mrows) {
        const uint first = (base + uint(j) * stride) / 4u;
        float s = tot[t];
        for (uint q = 0; q < uint(SG) / 4u; ++q) {
          const vec4 v = sm_multi[first + q];
          s += v.x;
          s += v.y;
          s += v.z;
          s += v.w;
        }
        tot[t] = s;
      }
    }
    barrier();  // the fold done before the next step's x tile
  }
  [[unroll]] for (int t = 0; t < MTOT; ++t) {
    const int j = lane + t * SG;
    if (j < MPAIRS && j / MR < rows && j % MR < mrows) {
      const int64_t n = n0 + j / MR, m = m0 + j % MR;
      float total = tot[t];
      if (P.bias != 0ul) total += LoadF32(P.bias + uint64_t(n * 4));
      StoreF32(P.out_ + uint64_t(m * P.out_row + n * P.out_col), total);
    }
  }
}
#endif  // DECODE == 4

void main() {
  Params P = Params(pc.params);
#if DECODE == 4
  {
    // As MatmulRow's grid: rows_per_group weight rows a workgroup, x rows tile z. MultiRows'
    // barriers need the same trip count in every subgroup: each takes decode_rows rows a trip
    // (fewer or none at the edge) in as many trips as the driver's subgroup count needs.
    const int64_t first = int64_t(GroupIndex()) * P.rows_per_group;
    const int64_t last = min(first + P.rows_per_group, P.N);
    if (gl_SubgroupSize < 8u || gl_SubgroupSize > uint(MSG)) {  // its tile's range; same bits
      for (int64_t n = first + gl_SubgroupID; n < last; n += gl_NumSubgroups) MatmulRow(P, n);
      return;
    }
    const int64_t m0 = int64_t(gl_WorkGroupID.z) * MR;
    const int64_t dr = P.decode_rows, span = int64_t(gl_NumSubgroups) * dr;
    for (int64_t b = first; b < last; b += span) {
      const int64_t n = b + int64_t(gl_SubgroupID) * dr;
      MultiRows(P, n, int(clamp(last - n, int64_t(0), dr)), m0);
    }
    return;
  }
#endif
#if !QUANT
  if ((P.vec & VEC_DECODE) != 0) {
#if DECODE == 3 && NORM
    if (PERSIST != 0) {
      NormGroups(P);
      return;
    }
#endif
    // The workgroup's part of the group (workgroup-uniform), then a subgroup-uniform loop over
    // blocks of DROWS rows (rows_per_group a multiple of DROWS). A row's sum does not depend on
    // the part it is in, so a grouped dispatch gives the bits of one dispatch a weight.
    int64_t g = int64_t(GroupIndex());
#if DECODE == 3
    int piece = 0;  // DecodeRowsSkewed split across workgroups: g's piece of K, then its rows
    if (P.xsplit > 1) {
      piece = int(g % P.xsplit);
      g /= P.xsplit;
    }
#endif
    Part T = Part(P.w, P.bias, P.out_, P.N, P.w_row, P.out_col);
    int start = 0;
    for (int j = 1; j < P.n_parts; ++j) {
      if (g >= int64_t(P.group_start[j])) {
        T = Part(P.gw[j - 1], P.gbias[j - 1], P.gout[j - 1], P.gN[j - 1], P.gw_row[j - 1],
                 P.gout_col[j - 1]);
        start = P.group_start[j];
      }
    }
    float nr = 1.0;
#if NORM
    nr = NormScale(P);
#if PAIRED
    if (P.norm_out != 0ul) WriteNormed(P, nr);
    int part = 0;
    for (int j = 1; j < P.n_parts; ++j) {
      if (g >= int64_t(P.group_start[j])) part = j;
    }
    PairedGroup(P, g, part, int64_t(start), nr);
    return;
#else
    WriteNormed(P, nr);
#endif
#endif
    const int64_t first = (g - int64_t(start)) * P.rows_per_group;
#if DECODE == 3 && !NORM
    if (P.kpieces > 1) {
      // Subgroup s: row block s / kpieces of the workgroup, piece s % kpieces of K (one call
      // each, uniform: DecodeRowsSkewed has a workgroup barrier).
      const int s = int(gl_SubgroupID), kp = P.kpieces;
      DecodeRowsSkewed(P, T, first + int64_t(s / kp) * P.decode_rows, nr, s % kp);
      return;
    }
#endif
#if DECODE == 2
    DecodeSplit(P, T, first, nr);
    return;
#endif
    const int64_t last = min(first + P.rows_per_group, T.N);
    // decode_rows (1..DROWS) rows a subgroup: the host takes fewer for narrow matrices, so
    // that they still spread over enough workgroups.
    const int dr = P.decode_rows;
    for (int64_t n = first + int64_t(gl_SubgroupID) * dr; n < last;
         n += int64_t(gl_NumSubgroups) * dr) {
#if DECODE == 1
      DecodeRowsCoalesced(P, T, n, nr);
#elif DECODE == 3 && PAIRED
      DecodeRowsSkewed(P, T, n, nr, piece, -1);  // not reached (PairedGroup above)
#elif DECODE == 3
      DecodeRowsSkewed(P, T, n, nr, piece);
#elif !DECODE
      DecodeRows(P, T, n);
#endif
    }
    return;
  }
#endif
#if !DECODE
  const int64_t group = int64_t(GroupIndex());
  const int64_t first = group * P.rows_per_group;
  const int64_t last = min(first + P.rows_per_group, P.N);
  // Subgroup-uniform loop: correct whatever number of subgroups the driver formed.
  for (int64_t n = first + gl_SubgroupID; n < last; n += gl_NumSubgroups) MatmulRow(P, n);
#endif
}
