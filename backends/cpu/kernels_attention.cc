// ROPE, dense varlen ATTENTION, KV_WRITE and PAGED_ATTENTION.
//
// Attention batch invariance. Queries run in tiles (AttendTile): up to kMaxTile (token, head)
// pairs of one sequence that share a kv head walk its keys together, so each K/V row is loaded
// once per tile (a GQA group's heads and a few consecutive tokens), but everything a query's
// result depends on is computed per query in a fixed order: it walks its visible keys in
// sequence-relative order, in chunks of 32 aligned to multiples of 32 (online softmax: one
// max/rescale per chunk), each score a dot product in one fixed order (Dots), the chunk's
// weights from one vectorized exp and summed in one fixed order (SoftmaxChunk), each output
// element one FMA per key in key order. Nothing depends on other sequences, on which or how
// many queries share its tile, or on the thread, so prefill, chunked prefill and decode give the
// same bits. Dense and paged attention share AttendTile, so a query gets the same result
// whether its keys come from the packed k/v tensors or from the paged cache. On AVX-512 most
// chunks compute the same per-query sequence with the tile's queries in the vector lanes
// (LaneChunk): scores from transposed queries times broadcast key elements, the softmax step on
// whole vectors of queries.
// K/V may be f32, f16 or bf16 (decoded exactly to f32); q, out and all arithmetic are f32.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/kernels_attention.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backends/cpu/convert.h"
#include "backends/cpu/ops.h"
#include "backends/cpu/tree_sum.h"
#include "hwy/highway.h"
// Must come after highway.h.
#include "hwy/contrib/math/math-inl.h"

// Target-independent types: defined once although this file is compiled once per target.
#ifndef TESSERA_BACKENDS_CPU_KERNELS_ATTENTION_TYPES_
#define TESSERA_BACKENDS_CPU_KERNELS_ATTENTION_TYPES_
namespace tessera::cpu {

// Where the keys/values of one sequence live. Dense: token j of the sequence is row
// (first + j) of k/v. Paged: token j is slot j % block_size of block table[j / block_size].
struct KvView {
  tsr_dtype dtype = TSR_DTYPE_F32;
  const uint8_t* k = nullptr;
  const uint8_t* v = nullptr;
  int64_t k_tok = 0, v_tok = 0;      // bytes between tokens (dense) or slots of a block (paged)
  int64_t k_head = 0, v_head = 0;    // bytes between kv heads
  int64_t k_block = 0, v_block = 0;  // bytes between blocks (paged)
  const int32_t* table = nullptr;    // this sequence's block-table row; null = dense
  int64_t block_size = 1;
  int64_t first = 0;  // dense: the sequence's first row
};

// Queries per tile: the (token, head) pairs of one sequence that share a kv head and walk its
// keys together, so each K/V row is loaded once per tile rather than once per query.
constexpr int kMaxTile = 32;

struct AttnParams {
  int64_t D = 0, Dv = 0;
  float scale = 1.0f;
  float softcap = 0.0f;  // 0 = none
};

}  // namespace tessera::cpu
#endif  // TESSERA_BACKENDS_CPU_KERNELS_ATTENTION_TYPES_

HWY_BEFORE_NAMESPACE();
namespace tessera::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

HWY_INLINE int64_t RowOffset(const KvView& kv, int64_t j, int64_t tok, int64_t block) {
  if (kv.table == nullptr) return (kv.first + j) * tok;
  return kv.table[j / kv.block_size] * block + (j % kv.block_size) * tok;
}

// Key and value rows of head h for keys [c, c + n): one division for the paged cache's block,
// then a walk through the slots (RowOffset divides for every key).
HWY_INLINE void ChunkRows(const KvView& kv, int64_t h, int64_t c, int64_t n, const uint8_t** k,
                          const uint8_t** v) {
  const uint8_t* kb = kv.k + h * kv.k_head;
  const uint8_t* vb = kv.v + h * kv.v_head;
  if (kv.table == nullptr) {
    for (int64_t t = 0; t < n; ++t) {
      k[t] = kb + (kv.first + c + t) * kv.k_tok;
      v[t] = vb + (kv.first + c + t) * kv.v_tok;
    }
    return;
  }
  int64_t blk = c / kv.block_size, slot = c % kv.block_size;
  for (int64_t t = 0; t < n; ++t) {
    k[t] = kb + kv.table[blk] * kv.k_block + slot * kv.k_tok;
    v[t] = vb + kv.table[blk] * kv.v_block + slot * kv.v_tok;
    if (++slot == kv.block_size) slot = 0, ++blk;
  }
}

// Loads [i, i + Lanes) of a K/V row as f32; Elem reads one element.
template <tsr_dtype T>
HWY_INLINE VF LoadKv(DF df, const uint8_t* row, int64_t i) {
  if constexpr (T == TSR_DTYPE_F32) {
    return hn::LoadU(df, reinterpret_cast<const float*>(row) + i);
  } else if constexpr (T == TSR_DTYPE_F16) {
    return hn::PromoteTo(df, hn::LoadU(hn::Rebind<hwy::float16_t, DF>(),
                                       reinterpret_cast<const hwy::float16_t*>(row) + i));
  } else {
    return hn::PromoteTo(df, hn::LoadU(hn::Rebind<hwy::bfloat16_t, DF>(),
                                       reinterpret_cast<const hwy::bfloat16_t*>(row) + i));
  }
}

template <tsr_dtype T>
HWY_INLINE float ElemKv(const uint8_t* row, int64_t i) {
  if constexpr (T == TSR_DTYPE_F32) {
    return reinterpret_cast<const float*>(row)[i];
  } else {
    uint16_t bits;
    std::memcpy(&bits, row + 2 * i, 2);
    return T == TSR_DTYPE_F16 ? F16ToF32(bits) : Bf16ToF32(bits);
  }
}

// dot(q, k_j) for N keys at once (independent accumulators, each in the canonical order:
// one vector accumulator over D, SumOfLanes, then the tail in order).
template <tsr_dtype T, int N>
HWY_INLINE void Dots(const float* q, const uint8_t* const* rows, int64_t D, float* out) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
#if HWY_HAVE_SCALABLE
  // SVE vectors are sizeless types, which cannot be array elements: named accumulators, the
  // ones past N unused. Each key still gets one accumulator, then SumOfLanes, then the tail.
  static_assert(N >= 1 && N <= 4, "Dots keeps at most 4 accumulators on SVE");
  const VF z = hn::Zero(df);
  [[maybe_unused]] VF a0 = z, a1 = z, a2 = z, a3 = z;
  int64_t i = 0;
  for (; i + L <= D; i += L) {
    const VF qv = hn::LoadU(df, q + i);
    a0 = hn::MulAdd(qv, LoadKv<T>(df, rows[0], i), a0);
    if constexpr (N > 1) a1 = hn::MulAdd(qv, LoadKv<T>(df, rows[1], i), a1);
    if constexpr (N > 2) a2 = hn::MulAdd(qv, LoadKv<T>(df, rows[2], i), a2);
    if constexpr (N > 3) a3 = hn::MulAdd(qv, LoadKv<T>(df, rows[3], i), a3);
  }
  float sums[N];
  sums[0] = hn::GetLane(hn::SumOfLanes(df, a0));
  if constexpr (N > 1) sums[1] = hn::GetLane(hn::SumOfLanes(df, a1));
  if constexpr (N > 2) sums[2] = hn::GetLane(hn::SumOfLanes(df, a2));
  if constexpr (N > 3) sums[3] = hn::GetLane(hn::SumOfLanes(df, a3));
  for (int j = 0; j < N; ++j) {
    float s = sums[j];
    for (int64_t ii = i; ii < D; ++ii) s = std::fma(q[ii], ElemKv<T>(rows[j], ii), s);
    out[j] = s;
  }
#else
  VF acc[N];
  for (int j = 0; j < N; ++j) acc[j] = hn::Zero(df);
  int64_t i = 0;
  for (; i + L <= D; i += L) {
    const VF qv = hn::LoadU(df, q + i);
    for (int j = 0; j < N; ++j) acc[j] = hn::MulAdd(qv, LoadKv<T>(df, rows[j], i), acc[j]);
  }
  for (int j = 0; j < N; ++j) {
    float s = hn::GetLane(hn::SumOfLanes(df, acc[j]));
    for (int64_t ii = i; ii < D; ++ii) s = std::fma(q[ii], ElemKv<T>(rows[j], ii), s);
    out[j] = s;
  }
#endif
}

// Scores of a block of 4 queries x 4 keys: out[a * ld + b] = dot(q[a], k_b), each in the
// canonical order of Dots (one vector accumulator over D, the halving-tree lane sum, then the
// tail in order), so a score's bits do not depend on which block computed it.
template <tsr_dtype T>
HWY_INLINE void Dots4x4(const float* const* q, const uint8_t* const* rows, int64_t D, float* out,
                        int64_t ld) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  // Each K vector feeds 4 queries and each q vector 4 keys (half the loads of one query
  // against 16 keys), and TreeSum16 adds exactly the halving tree's pairs for all 16 sums.
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  VF acc[16];
  for (int j = 0; j < 16; ++j) acc[j] = hn::Zero(df);
  int64_t i = 0;
  for (; i + L <= D; i += L) {
    VF kv[4];
    for (int b = 0; b < 4; ++b) kv[b] = LoadKv<T>(df, rows[b], i);
    for (int a = 0; a < 4; ++a) {
      const VF qv = hn::LoadU(df, q[a] + i);
      for (int b = 0; b < 4; ++b) acc[4 * a + b] = hn::MulAdd(qv, kv[b], acc[4 * a + b]);
    }
  }
  __m512 v[16];
  for (int j = 0; j < 16; ++j) v[j] = acc[j].raw;
  float sums[16];
  TreeSum16(v, sums);
  for (int a = 0; a < 4; ++a) {
    for (int b = 0; b < 4; ++b) {
      float s = sums[4 * a + b];
      for (int64_t ii = i; ii < D; ++ii) s = std::fma(q[a][ii], ElemKv<T>(rows[b], ii), s);
      out[a * ld + b] = s;
    }
  }
#else
  for (int a = 0; a < 4; ++a) Dots<T, 4>(q[a], rows, D, out + a * ld);
#endif
}

constexpr int64_t kChunk = 32;

// acc[q][0, Dv) += w[q][t * WS] * v_t for t = 0, 1, ..., n - 1 in order, for NQ queries at once:
// one fused multiply-add per element, key and query, so an element's sequence of operations
// depends neither on the blocking nor on the other queries. Each V vector feeds NQ queries.
template <tsr_dtype T, int NQ, int WS>
HWY_INLINE void AccumulateValues(const uint8_t* const* vrows, const float* const* w, int64_t n,
                                 int64_t Dv, float* const* acc) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
#if !HWY_HAVE_SCALABLE
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  constexpr int kV = 4;  // NQ x 4 accumulators + 4 V vectors fit the 32 zmm registers
#else
  constexpr int kV = 2;
#endif
  for (; i + kV * L <= Dv; i += kV * L) {
    VF a[NQ][kV];
    for (int q = 0; q < NQ; ++q)
      for (int u = 0; u < kV; ++u) a[q][u] = hn::LoadU(df, acc[q] + i + u * L);
    for (int64_t t = 0; t < n; ++t) {
      VF vv[kV];
      for (int u = 0; u < kV; ++u) vv[u] = LoadKv<T>(df, vrows[t], i + u * L);
      for (int q = 0; q < NQ; ++q) {
        const VF vw = hn::Set(df, w[q][t * WS]);
        for (int u = 0; u < kV; ++u) a[q][u] = hn::MulAdd(vw, vv[u], a[q][u]);
      }
    }
    for (int q = 0; q < NQ; ++q)
      for (int u = 0; u < kV; ++u) hn::StoreU(a[q][u], df, acc[q] + i + u * L);
  }
#endif
  for (; i + L <= Dv; i += L) {
    for (int q = 0; q < NQ; ++q) {
      VF a0 = hn::LoadU(df, acc[q] + i);
      for (int64_t t = 0; t < n; ++t)
        a0 = hn::MulAdd(hn::Set(df, w[q][t * WS]), LoadKv<T>(df, vrows[t], i), a0);
      hn::StoreU(a0, df, acc[q] + i);
    }
  }
  for (; i < Dv; ++i) {
    for (int q = 0; q < NQ; ++q) {
      for (int64_t t = 0; t < n; ++t)
        acc[q][i] = std::fma(w[q][t * WS], ElemKv<T>(vrows[t], i), acc[q][i]);
    }
  }
}

// The value step of one chunk for the nv active queries act[]: query i adds the weights
// wb[i][(j - c) * WS] times V rows j in [qa[i], qe[i]). Queries that see the same keys (all
// of them, away from the causal diagonal and the window's edge) share each V row load.
template <tsr_dtype T, int WS>
HWY_INLINE void AccumulateChunk(const AttnParams& p, const KvView& kv, int64_t h, int64_t c,
                                const int* act, int nv, const int64_t* qa, const int64_t* qe,
                                const float* const* wb, float* const* acc,
                                const uint8_t* const* chunk_v = nullptr) {
  bool done[kMaxTile] = {};
  const uint8_t* vrows[kChunk];
  for (int u = 0; u < nv; ++u) {
    if (done[u]) continue;
    const int i = act[u];
    int grp[kMaxTile];
    int ng = 0;
    for (int v = u; v < nv; ++v) {
      if (done[v] || qa[act[v]] != qa[i] || qe[act[v]] != qe[i]) continue;
      grp[ng++] = act[v];
      done[v] = true;
    }
    const int64_t a = qa[i], nk = qe[i] - qa[i];
    for (int64_t t = 0; t < nk; ++t) {
      vrows[t] = chunk_v != nullptr
                     ? chunk_v[a - c + t]
                     : kv.v + RowOffset(kv, a + t, kv.v_tok, kv.v_block) + h * kv.v_head;
    }
    const float* w[4];
    float* o[4];
    for (int g = 0; g < ng; g += 4) {
      const int k = std::min(4, ng - g);
      for (int r = 0; r < k; ++r) {
        w[r] = wb[grp[g + r]] + (a - c) * WS;
        o[r] = acc[grp[g + r]];
      }
      switch (k) {
        case 4: AccumulateValues<T, 4, WS>(vrows, w, nk, p.Dv, o); break;
        case 3: AccumulateValues<T, 3, WS>(vrows, w, nk, p.Dv, o); break;
        case 2: AccumulateValues<T, 2, WS>(vrows, w, nk, p.Dv, o); break;
        default: AccumulateValues<T, 1, WS>(vrows, w, nk, p.Dv, o); break;
      }
    }
  }
}

// l * corr + sum with the product rounded first, never contracted into one FMA: GCC contracts
// a * b + c in C++ whenever the target has FMAs (-ffp-contract=fast), or not, depending on how
// the code around it was inlined; the canonical order is the two roundings.
HWY_INLINE float ScaleThenAdd(float l, float corr, float sum) {
  volatile float prod = l * corr;
  return prod + sum;
}

// One query's online-softmax step over the n raw scores x[0, n) of a chunk: scales (and
// soft-caps) them, turns them into weights exp(x - m_new) in place, rescales l and returns the
// factor acc must be rescaled by (1 = none), or -1 when nothing in the chunk is visible. The
// exponentials are vectorized (Highway's Exp, ~1 ulp); the weights are summed as vectors in
// order, then one lane sum: the same for every query, whatever tile it is in.
HWY_INLINE float SoftmaxChunk(const AttnParams& p, float* x, int64_t n, float* m, float* l) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const float ninf = -std::numeric_limits<float>::infinity();
  const VF vscale = hn::Set(df, p.scale), vninf = hn::Set(df, ninf);
  VF vmax = vninf;
  for (int64_t t = 0; t < n; t += L) {
    const auto mask = hn::FirstN(df, static_cast<size_t>(n - t));
    VF v = hn::Mul(hn::LoadU(df, x + t), vscale);
    if (p.softcap > 0.0f) {
      hn::StoreU(v, df, x + t);
      for (int64_t u = t; u < std::min(n, t + L); ++u)
        x[u] = p.softcap * std::tanh(x[u] / p.softcap);
      v = hn::LoadU(df, x + t);
    }
    hn::StoreU(v, df, x + t);
    vmax = hn::Max(vmax, hn::IfThenElse(mask, v, vninf));
  }
  const float cm = hn::GetLane(hn::MaxOfLanes(df, vmax));
  if (!(cm > ninf)) return -1.0f;
  const float m_new = std::max(*m, cm);
  const float corr = *m == ninf ? 0.0f : std::exp(*m - m_new);
  const VF vm = hn::Set(df, m_new);
  VF vsum = hn::Zero(df);
  for (int64_t t = 0; t < n; t += L) {
    const auto mask = hn::FirstN(df, static_cast<size_t>(n - t));
    const VF wv = hn::IfThenElseZero(mask, hn::Exp(df, hn::Sub(hn::LoadU(df, x + t), vm)));
    hn::StoreU(wv, df, x + t);
    vsum = hn::Add(vsum, wv);
  }
  *l = ScaleThenAdd(*l, corr, hn::GetLane(hn::SumOfLanes(df, vsum)));
  *m = m_new;
  return corr;
}

// Floats between two queries' chunk scores: a chunk plus one vector of slack (SoftmaxChunk's
// loads and stores may run past the chunk by less than a vector).
inline int64_t SRowStride() {
  return kChunk + static_cast<int64_t>(hn::Lanes(DF()));
}

// Raw scores of keys [ka, ke) against the na queries act[] of a tile, 4 x 4 at a time (blocks
// padded with repeats of the last query/key, whose extra results are never read): query i's
// score of key j goes to s[i][j - c].
template <tsr_dtype T>
HWY_INLINE void ChunkScores(const AttnParams& p, const KvView& kv, int64_t h, const float* const* q,
                            const int* act, int na, int64_t c, int64_t ka, int64_t ke,
                            float* const* s) {
  const uint8_t* rows[4];
  const float* qs[4];
  float blk[16];
  for (int a0 = 0; a0 < na; a0 += 4) {
    for (int u = 0; u < 4; ++u) qs[u] = q[act[std::min(a0 + u, na - 1)]];
    for (int64_t j = ka; j < ke; j += 4) {
      for (int u = 0; u < 4; ++u) {
        const int64_t jj = std::min(j + u, ke - 1);
        rows[u] = kv.k + RowOffset(kv, jj, kv.k_tok, kv.k_block) + h * kv.k_head;
      }
      Dots4x4<T>(qs, rows, p.D, blk, 4);
      for (int u = 0; u < 4 && a0 + u < na; ++u) {
        float* dst = s[act[a0 + u]] + (j - c);
        for (int b = 0; b < 4 && j + b < ke; ++b) dst[b] = blk[4 * u + b];
      }
    }
  }
}

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// ---- Query-lane chunks (AVX-512) ----
//
// Where every active query of a chunk sees its keys from the chunk's start (causal attention
// without a window: all chunks), the chunk runs with the tile's queries in the lanes instead of
// one query at a time: scores S[t][i] (key t of the chunk, query i of the tile) come from the
// transposed queries Qt[d][i] times broadcast K elements, and the online-softmax step runs on
// whole vectors of queries. Each lane computes exactly its query's canonical sequence:
// - a score's lane partials p_l = the FMA chain over d = l, l + 16, ... of q[d] k[d] (Dots'
//   vector accumulator, lane l), then the halving tree ((p_l + p_l+8) + ...) as vertical adds
//   (SumOfLanes' tree), then the tail's FMAs in order;
// - scale, max, Exp and the masks per element as in SoftmaxChunk, the weight sum as its two
//   vectors added lane by lane (w_t + w_t+16, the masked-out ones +0) and the same halving tree;
// - corr from the same std::exp, l * corr + sum as in SoftmaxChunk (ScaleThenAdd), the value
//   step unchanged (AccumulateChunk, reading the weights from S with a stride).
// So a query's bits do not depend on the path its chunk took (AttentionLaneChunksKeepBits;
// DISABLED_AttentionBitsDump compares whole plugins). Chunks where some active query starts
// past c (the edge of a sliding window) and softcapped attention take the per-query path.
constexpr int kQL = kMaxTile;        // floats per row of Qt and S (query lanes, two vectors)
constexpr int kLaneMinQueries = 12;  // smaller tiles keep the per-query path

// Leaf p_l of a lane score for NK keys x NV query vectors: the FMA chain over d = l, l + 16, ...
// of Qt[d] (query lanes) times k[d] broadcast, from zero (Dots' vector accumulator, lane l).
template <tsr_dtype T, int NK, int NV>
HWY_INLINE void ScoreLeaf(const float* Qt, const uint8_t* const* krows, int64_t D16, int64_t l,
                          VF (&r)[NK * NV]) {
  const DF df;
  for (int c = 0; c < NK * NV; ++c) r[c] = hn::Zero(df);
  for (int64_t d = l; d < D16; d += 16) {
    VF qv[NV];
    for (int b = 0; b < NV; ++b) {
      // One load per vector: GCC 12 would fold it into each key's FMA instead.
      __m512 raw = _mm512_loadu_ps(Qt + d * kQL + 16 * b);
      asm("" : "+v"(raw));
      qv[b].raw = raw;
    }
    for (int a = 0; a < NK; ++a) {
      const VF kv = hn::Set(df, ElemKv<T>(krows[a], d));
      for (int b = 0; b < NV; ++b) r[a * NV + b] = hn::MulAdd(qv[b], kv, r[a * NV + b]);
    }
  }
}

// The halving-tree sum of the leaves p_l (l = 0..15) for NK x NV chains at once, evaluated depth
// first so only a few partial sums per chain are live: node(l, h) = node(l, 2h) + node(l + h, 2h),
// node(l, 8) = p_l + p_l+8; the root is node(0, 1) (SumOfLanes' pairs on AVX-512).
template <int H, tsr_dtype T, int NK, int NV>
HWY_INLINE void ScoreTree(const float* Qt, const uint8_t* const* krows, int64_t D16, int64_t l,
                          VF (&out)[NK * NV]) {
  VF a[NK * NV], b[NK * NV];
  if constexpr (H == 8) {
    ScoreLeaf<T, NK, NV>(Qt, krows, D16, l, a);
    ScoreLeaf<T, NK, NV>(Qt, krows, D16, l + 8, b);
  } else {
    ScoreTree<2 * H, T, NK, NV>(Qt, krows, D16, l, a);
    ScoreTree<2 * H, T, NK, NV>(Qt, krows, D16, l + H, b);
  }
  for (int c = 0; c < NK * NV; ++c) out[c] = hn::Add(a[c], b[c]);
}

// Scores of NK keys against NV vectors of query lanes: S row srow[a][i] = dot(q_i, k_a) in Dots'
// canonical order (leaves, tree, then the tail's FMAs in order). Qt: D rows of kQL floats.
template <tsr_dtype T, int NK, int NV>
HWY_INLINE void LaneScores(const float* Qt, const uint8_t* const* krows, int64_t D,
                           float* const* srow) {
  const DF df;
  const int64_t D16 = D / 16 * 16;
  VF s[NK * NV];
  ScoreTree<1, T, NK, NV>(Qt, krows, D16, 0, s);
  for (int64_t d = D16; d < D; ++d) {
    for (int a = 0; a < NK; ++a) {
      const VF kv = hn::Set(df, ElemKv<T>(krows[a], d));
      for (int b = 0; b < NV; ++b)
        s[a * NV + b] = hn::MulAdd(hn::LoadU(df, Qt + d * kQL + 16 * b), kv, s[a * NV + b]);
    }
  }
  for (int a = 0; a < NK; ++a)
    for (int b = 0; b < NV; ++b) hn::StoreU(s[a * NV + b], df, srow[a] + 16 * b);
}

// GCC 12's AVX-512 headers start some intrinsics from _mm512_undefined_*() and then warn about
// it at -O2+ (GCC bug 105593); the values are always fully written.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// Qt[d][i] = q[i][d] for the nq queries, 0 in lanes [nq, 16 * nv). 16 x 16 blocks through the
// shuffle network where D allows, element by element otherwise.
HWY_INLINE void TransposeQueries(const float* const* q, int nq, int nv, int64_t D, float* Qt) {
  for (int64_t d = 0; d < D; ++d) std::fill(Qt + d * kQL, Qt + d * kQL + 16 * nv, 0.0f);
  int64_t d0 = 0;
  for (; d0 + 16 <= D; d0 += 16) {
    for (int b = 0; b < nv; ++b) {
      __m512 r[16];
      for (int j = 0; j < 16; ++j) {
        const int i = 16 * b + j;
        r[j] = i < nq ? _mm512_loadu_ps(q[i] + d0) : _mm512_setzero_ps();
      }
      __m512 t[16];
      for (int j = 0; j < 8; ++j) {
        t[2 * j] = _mm512_unpacklo_ps(r[2 * j], r[2 * j + 1]);
        t[2 * j + 1] = _mm512_unpackhi_ps(r[2 * j], r[2 * j + 1]);
      }
      for (int j = 0; j < 4; ++j) {
        r[4 * j] = _mm512_shuffle_ps(t[4 * j], t[4 * j + 2], 0x44);
        r[4 * j + 1] = _mm512_shuffle_ps(t[4 * j], t[4 * j + 2], 0xEE);
        r[4 * j + 2] = _mm512_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0x44);
        r[4 * j + 3] = _mm512_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0xEE);
      }
      for (int j = 0; j < 4; ++j) {
        t[j] = _mm512_shuffle_f32x4(r[j], r[j + 4], 0x88);
        t[j + 4] = _mm512_shuffle_f32x4(r[j], r[j + 4], 0xDD);
        t[j + 8] = _mm512_shuffle_f32x4(r[j + 8], r[j + 12], 0x88);
        t[j + 12] = _mm512_shuffle_f32x4(r[j + 8], r[j + 12], 0xDD);
      }
      for (int j = 0; j < 8; ++j) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xDD);
      }
      for (int j = 0; j < 16; ++j) _mm512_storeu_ps(Qt + (d0 + j) * kQL + 16 * b, r[j]);
    }
  }
  for (; d0 < D; ++d0)
    for (int i = 0; i < nq; ++i) Qt[d0 * kQL + i] = q[i][d0];
}
#pragma GCC diagnostic pop

// One chunk [c, c + kChunk) on the query-lane path, for the na active queries act[] of the tile,
// each seeing keys [c, qe[i]) (ke: the largest qe). Scores go to S (row t: key c + t, lane i:
// query i), are turned into weights in place, and the value step reads them from there. Updates
// m, l, acc as SoftmaxChunk and AccumulateChunk do; act[] is left holding the queries that saw
// a key (nv of them).
template <tsr_dtype T, int NV>
HWY_INLINE void LaneChunk(const AttnParams& p, const KvView& kv, int64_t h, const float* Qt,
                          float* S, int64_t c, int* act, int na, const int64_t* qa,
                          const int64_t* qe, int64_t ke, float* m, float* l, float* const* acc) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const int64_t nk = ke - c;
  const uint8_t* krows[kChunk];
  const uint8_t* vrows[kChunk];
  ChunkRows(kv, h, c, nk, krows, vrows);
  constexpr int kNK = 4;  // keys per LaneScores: 4 x 2 chains (2 and 3 keys measured slower)
  const uint8_t* rows[kNK];
  float* srow[kNK];
  for (int64_t t = 0; t < nk; t += kNK) {
    for (int a = 0; a < kNK; ++a) {
      // Past the chunk's keys: the last key again, its scores to a spare row.
      rows[a] = krows[std::min<int64_t>(t + a, nk - 1)];
      srow[a] = S + (t + a < nk ? t + a : kChunk) * kQL;
    }
    LaneScores<T, kNK, NV>(Qt, rows, p.D, srow);
  }
  // Visible keys per lane (relative to c); 0 for queries not active in this chunk.
  alignas(64) int32_t vis[kQL] = {};
  for (int u = 0; u < na; ++u) vis[act[u]] = static_cast<int32_t>(qe[act[u]] - c);
  const float ninf = -std::numeric_limits<float>::infinity();
  const VF vscale = hn::Set(df, p.scale), vninf = hn::Set(df, ninf);
  hn::Vec<decltype(di)> hv[NV];
  VF vmax[NV];
  for (int b = 0; b < NV; ++b) {
    hv[b] = hn::LoadU(di, vis + 16 * b);
    vmax[b] = vninf;
  }
  for (int64_t t = 0; t < nk; ++t) {
    const auto vt = hn::Set(di, static_cast<int32_t>(t));
    for (int b = 0; b < NV; ++b) {
      float* x = S + t * kQL + 16 * b;
      const VF v = hn::Mul(hn::LoadU(df, x), vscale);
      hn::StoreU(v, df, x);
      vmax[b] = hn::Max(vmax[b], hn::IfThenElse(hn::RebindMask(df, hn::Lt(vt, hv[b])), v, vninf));
    }
  }
  alignas(64) float cm[kQL], mn[kQL] = {}, corr[kQL];
  for (int b = 0; b < NV; ++b) hn::StoreU(vmax[b], df, cm + 16 * b);
  int nv = 0;
  for (int u = 0; u < na; ++u) {
    const int i = act[u];
    if (!(cm[i] > ninf)) continue;
    mn[i] = std::max(m[i], cm[i]);
    corr[i] = m[i] == ninf ? 0.0f : m[i] == mn[i] ? 1.0f : std::exp(m[i] - mn[i]);
    act[nv++] = i;
  }
  VF vm[NV];
  for (int b = 0; b < NV; ++b) vm[b] = hn::LoadU(df, mn + 16 * b);
  for (int64_t t = 0; t < nk; ++t) {
    const auto vt = hn::Set(di, static_cast<int32_t>(t));
    for (int b = 0; b < NV; ++b) {
      float* x = S + t * kQL + 16 * b;
      const auto mask = hn::RebindMask(df, hn::Lt(vt, hv[b]));
      hn::StoreU(hn::IfThenElseZero(mask, hn::Exp(df, hn::Sub(hn::LoadU(df, x), vm[b]))), df, x);
    }
  }
  // Weight sums: SoftmaxChunk's two vectors added lane by lane (u_t = w_t + w_t+16, the
  // missing ones zero), then its halving tree over t.
  alignas(64) float sum[kQL];
  for (int b = 0; b < NV; ++b) {
    VF u[16];
    for (int t = 0; t < 16; ++t) {
      const VF w0 = t < nk ? hn::LoadU(df, S + t * kQL + 16 * b) : hn::Zero(df);
      u[t] = t + 16 < nk ? hn::Add(w0, hn::LoadU(df, S + (t + 16) * kQL + 16 * b)) : w0;
    }
    for (int hh = 8; hh >= 1; hh /= 2)
      for (int t = 0; t < hh; ++t) u[t] = hn::Add(u[t], u[t + hh]);
    hn::StoreU(u[0], df, sum + 16 * b);
  }
  for (int u = 0; u < nv; ++u) {
    const int i = act[u];
    l[i] = ScaleThenAdd(l[i], corr[i], sum[i]);
    m[i] = mn[i];
    if (corr[i] != 1.0f) {
      const VF vc = hn::Set(df, corr[i]);
      int64_t e = 0;
      for (; e + L <= p.Dv; e += L)
        hn::StoreU(hn::Mul(hn::LoadU(df, acc[i] + e), vc), df, acc[i] + e);
      for (; e < p.Dv; ++e) acc[i][e] *= corr[i];
    }
  }
  const float* wb[kMaxTile];
  for (int i = 0; i < kQL; ++i) wb[i] = S + i;
  AccumulateChunk<T, kQL>(p, kv, h, c, act, nv, qa, qe, wb, acc, vrows);
}
#endif  // AVX3

// A tile of nq <= kMaxTile queries of one sequence against kv head h: query i (q[i]: D floats)
// sees keys [lo[i], hi[i]); out[i]: Dv floats. Keys are walked in chunks of kChunk aligned to
// multiples of kChunk (sequence-relative), with one online-softmax step per query and chunk.
// Everything a query's result depends on is computed per query in a fixed order (scores in
// Dots order, SoftmaxChunk, one FMA per element and key in key order), so its bits do not
// depend on the tile it is in. On AVX-512, chunks whose active queries all see keys from the
// chunk's start take the query-lane path (LaneChunk), which computes the same bits. scratch:
// AttendScratchFloats(nq, D, Dv) floats.
template <tsr_dtype T>
void AttendTile(const AttnParams& p, const KvView& kv, int64_t h, int nq, const float* const* q,
                const int64_t* lo, const int64_t* hi, float* const* out, float* scratch) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const int64_t ss = SRowStride();
  float* acc[kMaxTile];
  float* s[kMaxTile];
  float m[kMaxTile], l[kMaxTile];
  int64_t c_lo = std::numeric_limits<int64_t>::max(), c_hi = 0;
  for (int i = 0; i < nq; ++i) {
    acc[i] = scratch + i * p.Dv;
    s[i] = scratch + nq * p.Dv + i * ss;
    std::fill(acc[i], acc[i] + p.Dv, 0.0f);
    std::fill(s[i], s[i] + ss, 0.0f);
    m[i] = -std::numeric_limits<float>::infinity();
    l[i] = 0.0f;
    if (lo[i] < hi[i]) c_lo = std::min(c_lo, lo[i]), c_hi = std::max(c_hi, hi[i]);
  }
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  // Softcapping keeps the per-query path (its tanh is scalar there), and so do small tiles
  // (decode: a GQA group's heads of one token), where most of a lane vector would idle: at 4
  // and 7 queries the lane path was 1.1-1.9x slower (DISABLED_AttentionDecodeSpeed).
  const bool lanes = p.softcap == 0.0f && nq >= kLaneMinQueries;
  const int nvq = (nq + 15) / 16;
  float* Qt = scratch + nq * (p.Dv + ss);  // D rows of kQL floats
  float* S = Qt + p.D * kQL;               // kChunk + 1 rows of kQL floats
  if (lanes) TransposeQueries(q, nq, nvq, p.D, Qt);
#endif
  int act[kMaxTile];
  int64_t qa[kMaxTile], qe[kMaxTile];
  for (int64_t c = c_lo / kChunk * kChunk; c < c_hi; c += kChunk) {
    // Queries that see part of this chunk, and the union of what they see.
    int na = 0;
    int64_t ka = c + kChunk, ke = c;
    for (int i = 0; i < nq; ++i) {
      qa[i] = std::max(c, lo[i]);
      qe[i] = std::min(c + kChunk, hi[i]);
      if (qa[i] >= qe[i]) continue;
      act[na++] = i;
      ka = std::min(ka, qa[i]);
      ke = std::max(ke, qe[i]);
    }
    if (na == 0) continue;
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
    bool from_start = lanes;
    for (int u = 0; u < na && from_start; ++u) from_start = qa[act[u]] == c;
    if (from_start) {
      if (nvq == 1) {
        LaneChunk<T, 1>(p, kv, h, Qt, S, c, act, na, qa, qe, ke, m, l, acc);
      } else {
        LaneChunk<T, 2>(p, kv, h, Qt, S, c, act, na, qa, qe, ke, m, l, acc);
      }
      continue;
    }
#endif
    ChunkScores<T>(p, kv, h, q, act, na, c, ka, ke, s);
    // Per query: weights and rescaling.
    int nv = 0;
    for (int u = 0; u < na; ++u) {
      const int i = act[u];
      const float corr = SoftmaxChunk(p, s[i] + (qa[i] - c), qe[i] - qa[i], &m[i], &l[i]);
      if (corr < 0.0f) continue;
      if (corr != 1.0f) {
        const VF vc = hn::Set(df, corr);
        int64_t e = 0;
        for (; e + L <= p.Dv; e += L)
          hn::StoreU(hn::Mul(hn::LoadU(df, acc[i] + e), vc), df, acc[i] + e);
        for (; e < p.Dv; ++e) acc[i][e] *= corr;
      }
      act[nv++] = i;
    }
    AccumulateChunk<T, 1>(p, kv, h, c, act, nv, qa, qe, s, acc);
  }
  for (int i = 0; i < nq; ++i) {
    const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
    for (int64_t e = 0; e < p.Dv; ++e) out[i][e] = acc[i][e] * inv;
  }
}

void AttendTileImpl(const AttnParams& p, const KvView& kv, int64_t h, int nq, const float* const* q,
                    const int64_t* lo, const int64_t* hi, float* const* out, float* scratch) {
  switch (kv.dtype) {
    case TSR_DTYPE_F16: return AttendTile<TSR_DTYPE_F16>(p, kv, h, nq, q, lo, hi, out, scratch);
    case TSR_DTYPE_BF16: return AttendTile<TSR_DTYPE_BF16>(p, kv, h, nq, q, lo, hi, out, scratch);
    default: return AttendTile<TSR_DTYPE_F32>(p, kv, h, nq, q, lo, hi, out, scratch);
  }
}

int64_t AttendScratchFloats(int nq, int64_t D, int64_t Dv) {
  int64_t n = nq * (Dv + SRowStride());
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  n += (D + kChunk + 1) * kQL;  // LaneChunk's Qt and S (a spare row)
#else
  (void)D;
#endif
  return n;
}

}  // namespace HWY_NAMESPACE
}  // namespace tessera::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tessera::cpu {

HWY_EXPORT(AttendTileImpl);
HWY_EXPORT(AttendScratchFloats);

namespace {

// cu[0] == 0, non-decreasing, cu[S] == total (total < 0: cu[S] <= -total - 1 is enough).
Status CheckCuSeqlens(const int32_t* cu, int64_t s_count, int64_t total, bool exact,
                      const char* what) {
  if (cu[0] != 0) return InvalidArgument(std::string(what) + "[0] must be 0");
  for (int64_t s = 0; s < s_count; ++s) {
    if (cu[s + 1] < cu[s]) return InvalidArgument(std::string(what) + " must be non-decreasing");
  }
  if (exact ? cu[s_count] != total : cu[s_count] > total) {
    return InvalidArgument(std::string(what) + "[S] = " + std::to_string(cu[s_count]) +
                           " does not match the " + std::to_string(total) + " rows");
  }
  return OkStatus();
}

// Visible keys [lo, hi) of the query at position pos among k_len keys.
void VisibleRange(int64_t pos, int64_t k_len, bool causal, int64_t window, int64_t* lo,
                  int64_t* hi) {
  *hi = causal ? std::min(k_len, pos + 1) : k_len;
  *lo = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
}

// Runs every (query, head) of the call; kv_of(s, &k_len) gives sequence s's KvView and key count.
// A task is a tile: up to kMaxTile queries of one sequence that share a kv head (a few
// consecutive tokens x the heads of a GQA group), which walk that head's keys together.
template <class KvOf>
void RunQueries(const OpArgs& a, const int32_t* cu_q, int64_t n_seq, int64_t hkv, int64_t dv,
                const KvOf& kv_of) {
  const TensorRef& q = *a.in[0];
  const TensorRef& out = *a.out;
  const int64_t Hq = q.ne[1];
  const int64_t group = Hq / hkv;
  AttnParams p;
  p.D = q.ne[2];
  p.Dv = dv;
  p.scale = a.fp(0);
  p.softcap = a.fp(1);
  const bool causal = a.ip(0) != 0;
  const int64_t window = a.ip(1);
  const int64_t heads = std::min<int64_t>(group, kMaxTile);  // heads of a group per tile
  const int64_t head_tiles = (group + heads - 1) / heads;
  const int64_t tokens = std::max<int64_t>(1, kMaxTile / heads);  // tokens per tile
  struct Tile {
    int32_t s, t0, t1;
  };
  std::vector<Tile> tiles;
  for (int64_t s = 0; s < n_seq; ++s) {
    for (int64_t t = cu_q[s]; t < cu_q[s + 1]; t += tokens) {
      tiles.push_back({static_cast<int32_t>(s), static_cast<int32_t>(t),
                       static_cast<int32_t>(std::min<int64_t>(t + tokens, cu_q[s + 1]))});
    }
  }
  const int64_t per_tile = hkv * head_tiles;
  const int64_t n_scratch = HWY_DYNAMIC_DISPATCH(AttendScratchFloats)(kMaxTile, p.D, dv);
  ParallelRanges(
      a.pool, static_cast<int64_t>(tiles.size()) * per_tile, 1,
      [&](int64_t begin, int64_t end, int thread) {
        float* scratch = a.ws->Floats(thread, static_cast<size_t>(n_scratch));
        const float* qp[kMaxTile];
        float* op[kMaxTile];
        int64_t lo[kMaxTile], hi[kMaxTile];
        for (int64_t task = begin; task < end; ++task) {
          // Last tiles first: causal tiles late in a sequence cost the most, and the pool's
          // threads balance better when the big tasks go out first.
          const Tile& tile = tiles[tiles.size() - 1 - static_cast<size_t>(task / per_tile)];
          const int64_t hk = task % per_tile / head_tiles;
          const int64_t h0 = hk * group + task % head_tiles * heads;
          const int64_t h1 = std::min(h0 + heads, (hk + 1) * group);
          int64_t k_len = 0;
          const KvView kv = kv_of(tile.s, &k_len);
          const int64_t q_len = cu_q[tile.s + 1] - cu_q[tile.s];
          int nq = 0;
          for (int64_t t = tile.t0; t < tile.t1; ++t) {
            const int64_t pos = k_len - q_len + (t - cu_q[tile.s]);
            for (int64_t h = h0; h < h1; ++h, ++nq) {
              VisibleRange(pos, k_len, causal, window, &lo[nq], &hi[nq]);
              qp[nq] = reinterpret_cast<const float*>(q.data + t * q.nb[0] + h * q.nb[1]);
              op[nq] = reinterpret_cast<float*>(out.data + t * out.nb[0] + h * out.nb[1]);
            }
          }
          HWY_DYNAMIC_DISPATCH(AttendTileImpl)(p, kv, hk, nq, qp, lo, hi, op, scratch);
        }
      });
}

}  // namespace

// ---- ATTENTION ----

Status RunAttention(const OpArgs& a) {
  const TensorRef& k = *a.in[1];
  const TensorRef& v = *a.in[2];
  const int32_t* cu_q = a.in[3]->As<const int32_t>();
  const int32_t* cu_k = a.in[4]->As<const int32_t>();
  const int64_t n_seq = a.in[3]->ne[0] - 1;
  TSR_RETURN_IF_ERROR(CheckCuSeqlens(cu_q, n_seq, a.in[0]->ne[0], /*exact=*/true, "cu_q"));
  TSR_RETURN_IF_ERROR(CheckCuSeqlens(cu_k, n_seq, k.ne[0], /*exact=*/false, "cu_k"));
  KvView base;
  base.dtype = k.dtype;
  base.k = k.data;
  base.v = v.data;
  base.k_tok = k.nb[0];
  base.v_tok = v.nb[0];
  base.k_head = k.nb[1];
  base.v_head = v.nb[1];
  RunQueries(a, cu_q, n_seq, k.ne[1], v.ne[2], [&](int64_t s, int64_t* k_len) {
    KvView kv = base;
    kv.first = cu_k[s];
    *k_len = cu_k[s + 1] - cu_k[s];
    return kv;
  });
  return OkStatus();
}

// ---- PAGED_ATTENTION ----

Status RunPagedAttention(const OpArgs& a) {
  const TensorRef& k = *a.in[1];
  const TensorRef& v = *a.in[2];
  const TensorRef& table = *a.in[3];
  const int32_t* kv_lens = a.in[4]->As<const int32_t>();
  const int32_t* cu_q = a.in[5]->As<const int32_t>();
  const int64_t n_seq = table.ne[0], max_blocks = table.ne[1];
  const int64_t n_blocks = k.ne[0], bs = k.ne[1];
  TSR_RETURN_IF_ERROR(CheckCuSeqlens(cu_q, n_seq, a.in[0]->ne[0], /*exact=*/true, "cu_q"));
  // Every block a sequence reads must exist: checked up front so the kernel never reads wild.
  for (int64_t s = 0; s < n_seq; ++s) {
    const int64_t len = kv_lens[s];
    if (len < 0 || len > max_blocks * bs) {
      return InvalidArgument("kv_lens[" + std::to_string(s) + "] = " + std::to_string(len) +
                             " exceeds the block table's " + std::to_string(max_blocks * bs) +
                             " slots");
    }
    const auto* row = reinterpret_cast<const int32_t*>(table.data + s * table.nb[0]);
    for (int64_t b = 0; b < (len + bs - 1) / bs; ++b) {
      if (row[b] < 0 || row[b] >= n_blocks) {
        return InvalidArgument("block_table[" + std::to_string(s) + ", " + std::to_string(b) +
                               "] = " + std::to_string(row[b]) + " is not a block of the cache");
      }
    }
  }
  KvView base;
  base.dtype = k.dtype;
  base.k = k.data;
  base.v = v.data;
  base.k_block = k.nb[0];
  base.v_block = v.nb[0];
  base.k_tok = k.nb[1];
  base.v_tok = v.nb[1];
  base.k_head = k.nb[2];
  base.v_head = v.nb[2];
  base.block_size = bs;
  RunQueries(a, cu_q, n_seq, k.ne[2], v.ne[3], [&](int64_t s, int64_t* k_len) {
    KvView kv = base;
    kv.table = reinterpret_cast<const int32_t*>(table.data + s * table.nb[0]);
    *k_len = kv_lens[s];
    return kv;
  });
  return OkStatus();
}

// ---- KV_WRITE ----

Status RunKvWrite(const OpArgs& a) {
  const TensorRef& cache = *a.in[0];
  const TensorRef& rows = *a.in[1];
  const TensorRef& out = *a.out;
  const int32_t* slots = a.in[2]->As<const int32_t>();
  const int64_t T = rows.ne[0], H = rows.ne[1], D = rows.ne[2];
  const int64_t bs = cache.ne[1], n_slots = cache.ne[0] * bs;
  for (int64_t t = 0; t < T; ++t) {
    if (slots[t] != -1 && (slots[t] < 0 || slots[t] >= n_slots)) {
      return InvalidArgument("slots[" + std::to_string(t) + "] = " + std::to_string(slots[t]) +
                             " is outside the cache's " + std::to_string(n_slots) + " slots");
    }
  }
  // `out` should alias the cache; if the host gave a distinct tensor, carry the cache over first.
  if (out.data != cache.data) {
    if (!out.IsContiguous() || !cache.IsContiguous()) {
      return InvalidArgument("output must alias the cache (or both be contiguous)");
    }
    std::memmove(out.data, cache.data, static_cast<size_t>(cache.Extent()));
  }
  ParallelRanges(a.pool, T * H, std::max<int64_t>(1, 4096 / std::max<int64_t>(D, 1)),
                 [&](int64_t begin, int64_t end, int) {
                   for (int64_t task = begin; task < end; ++task) {
                     const int64_t t = task / H, h = task % H;
                     if (slots[t] < 0) continue;
                     const auto* src = reinterpret_cast<const float*>(rows.data + t * rows.nb[0] +
                                                                      h * rows.nb[1]);
                     const int64_t ss = rows.nb[2] / 4;
                     uint8_t* dst = out.data + (slots[t] / bs) * out.nb[0] +
                                    (slots[t] % bs) * out.nb[1] + h * out.nb[2];
                     for (int64_t d = 0; d < D; ++d) {
                       const float x = src[d * ss];
                       uint8_t* e = dst + d * out.nb[3];
                       if (out.dtype == TSR_DTYPE_F32) {
                         std::memcpy(e, &x, 4);
                       } else {
                         StoreU16(e, out.dtype == TSR_DTYPE_F16 ? F32ToF16(x) : F32ToBf16(x));
                       }
                     }
                   }
                 });
  return OkStatus();
}

// ---- ROPE ----

Status RunRope(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& out = *a.out;
  const int32_t* pos = a.in[1]->As<const int32_t>();
  const float* inv_freq = a.in[2]->As<const float>();
  const int64_t T = x.ne[0], H = x.ne[1], D = x.ne[2];
  const int64_t R = a.ip(1) == 0 ? D : a.ip(1), half = R / 2;
  const bool interleaved = a.ip(0) == 1;
  const float attn_scale = a.fp(0);
  const int64_t xs = x.nb[2] / 4, os = out.nb[2] / 4;
  ParallelRanges(a.pool, T, 1, [&](int64_t t0, int64_t t1, int thread) {
    float* cs = a.ws->Floats(thread, static_cast<size_t>(2 * half));
    for (int64_t t = t0; t < t1; ++t) {
      for (int64_t i = 0; i < half; ++i) {
        const float angle = static_cast<float>(pos[t]) * inv_freq[i];  // f32, as HF computes it
        cs[i] = std::cos(angle) * attn_scale;
        cs[half + i] = std::sin(angle) * attn_scale;
      }
      for (int64_t h = 0; h < H; ++h) {
        const auto* src = reinterpret_cast<const float*>(x.data + t * x.nb[0] + h * x.nb[1]);
        auto* dst = reinterpret_cast<float*>(out.data + t * out.nb[0] + h * out.nb[1]);
        for (int64_t i = 0; i < half; ++i) {
          const int64_t i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
          const float x0 = src[i0 * xs], x1 = src[i1 * xs];  // both read before either write
          dst[i0 * os] = x0 * cs[i] - x1 * cs[half + i];
          dst[i1 * os] = x1 * cs[i] + x0 * cs[half + i];
        }
        if (src != dst || xs != os) {
          for (int64_t d = R; d < D; ++d) dst[d * os] = src[d * xs];
        }
      }
    }
  });
  return OkStatus();
}

}  // namespace tessera::cpu
#endif  // HWY_ONCE
