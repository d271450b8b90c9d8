// ROPE, dense varlen ATTENTION, KV_WRITE and PAGED_ATTENTION.
//
// Attention batch invariance. One (query, head) is computed by Attend() alone: it walks the
// query's visible keys in sequence-relative order, in chunks of 32 aligned to multiples of 32
// (online softmax: one max/rescale per chunk), each score a dot product in one fixed order.
// Nothing depends on other sequences, on how many queries of its own sequence are in the call,
// or on the thread. Dense and paged attention share Attend(), so a query gets the same result
// whether its keys come from the packed k/v tensors or from the paged cache.
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

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// Dots<T, 16> with the 16 lane sums from one shuffle network: SumOfLanes on AVX-512 is the
// halving tree, and TreeSum16 adds exactly its pairs, so the scores are bit-identical to 16
// Dots<T, 1> calls (which spend most of their time in the per-key lane sum for D = 64).
template <tsr_dtype T>
HWY_INLINE void Dots16(const float* q, const uint8_t* const* rows, int64_t D, float* out) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  VF acc[16];
  for (int j = 0; j < 16; ++j) acc[j] = hn::Zero(df);
  int64_t i = 0;
  for (; i + L <= D; i += L) {
    const VF qv = hn::LoadU(df, q + i);
    for (int j = 0; j < 16; ++j) acc[j] = hn::MulAdd(qv, LoadKv<T>(df, rows[j], i), acc[j]);
  }
  __m512 v[16];
  for (int j = 0; j < 16; ++j) v[j] = acc[j].raw;
  float sums[16];
  TreeSum16(v, sums);
  for (int j = 0; j < 16; ++j) {
    float s = sums[j];
    for (int64_t ii = i; ii < D; ++ii) s = std::fma(q[ii], ElemKv<T>(rows[j], ii), s);
    out[j] = s;
  }
}
#endif

constexpr int64_t kChunk = 32;

// acc[0, Dv) += w[t] * v_t for t = 0, 1, ..., n - 1 in order, one fused multiply-add per
// element and key: the element's sequence of operations does not depend on how the loop is
// blocked. Four vectors of acc stay in registers across the chunk's keys.
template <tsr_dtype T>
HWY_INLINE void AccumulateValues(const uint8_t* const* vrows, const float* w, int64_t n, int64_t Dv,
                                 float* acc) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + 4 * L <= Dv; i += 4 * L) {
    VF a0 = hn::LoadU(df, acc + i), a1 = hn::LoadU(df, acc + i + L);
    VF a2 = hn::LoadU(df, acc + i + 2 * L), a3 = hn::LoadU(df, acc + i + 3 * L);
    for (int64_t t = 0; t < n; ++t) {
      const VF vw = hn::Set(df, w[t]);
      a0 = hn::MulAdd(vw, LoadKv<T>(df, vrows[t], i), a0);
      a1 = hn::MulAdd(vw, LoadKv<T>(df, vrows[t], i + L), a1);
      a2 = hn::MulAdd(vw, LoadKv<T>(df, vrows[t], i + 2 * L), a2);
      a3 = hn::MulAdd(vw, LoadKv<T>(df, vrows[t], i + 3 * L), a3);
    }
    hn::StoreU(a0, df, acc + i);
    hn::StoreU(a1, df, acc + i + L);
    hn::StoreU(a2, df, acc + i + 2 * L);
    hn::StoreU(a3, df, acc + i + 3 * L);
  }
  for (; i + L <= Dv; i += L) {
    VF a0 = hn::LoadU(df, acc + i);
    for (int64_t t = 0; t < n; ++t)
      a0 = hn::MulAdd(hn::Set(df, w[t]), LoadKv<T>(df, vrows[t], i), a0);
    hn::StoreU(a0, df, acc + i);
  }
  for (; i < Dv; ++i) {
    for (int64_t t = 0; t < n; ++t) acc[i] = std::fma(w[t], ElemKv<T>(vrows[t], i), acc[i]);
  }
}

// One query (q: D floats) of one head against keys [j_lo, j_hi) of kv head h; out: Dv floats.
// scratch: Dv + kChunk floats.
template <tsr_dtype T>
void Attend(const AttnParams& p, const KvView& kv, int64_t h, const float* q, int64_t j_lo,
            int64_t j_hi, float* out, float* scratch) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  float* acc = scratch;
  float* s = scratch + p.Dv;
  std::fill(acc, acc + p.Dv, 0.0f);
  float m = -std::numeric_limits<float>::infinity();
  float l = 0.0f;
  for (int64_t c = j_lo / kChunk * kChunk; c < j_hi; c += kChunk) {
    const int64_t a = std::max(c, j_lo), e = std::min(c + kChunk, j_hi);
    const uint8_t* rows[16];
    int64_t j = a;
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
    for (; j + 16 <= e; j += 16) {
      for (int t = 0; t < 16; ++t)
        rows[t] = kv.k + RowOffset(kv, j + t, kv.k_tok, kv.k_block) + h * kv.k_head;
      Dots16<T>(q, rows, p.D, s + (j - a));
    }
#endif
    for (; j + 4 <= e; j += 4) {
      for (int t = 0; t < 4; ++t)
        rows[t] = kv.k + RowOffset(kv, j + t, kv.k_tok, kv.k_block) + h * kv.k_head;
      Dots<T, 4>(q, rows, p.D, s + (j - a));
    }
    for (; j < e; ++j) {
      rows[0] = kv.k + RowOffset(kv, j, kv.k_tok, kv.k_block) + h * kv.k_head;
      Dots<T, 1>(q, rows, p.D, s + (j - a));
    }
    float cm = -std::numeric_limits<float>::infinity();
    for (int64_t t = 0; t < e - a; ++t) {
      float x = s[t] * p.scale;
      if (p.softcap > 0.0f) x = p.softcap * std::tanh(x / p.softcap);
      s[t] = x;
      cm = std::max(cm, x);
    }
    if (!(cm > -std::numeric_limits<float>::infinity())) continue;  // nothing visible here
    const float m_new = std::max(m, cm);
    const float corr = m == -std::numeric_limits<float>::infinity() ? 0.0f : std::exp(m - m_new);
    if (corr != 1.0f) {
      l *= corr;
      const VF vc = hn::Set(df, corr);
      int64_t i = 0;
      for (; i + L <= p.Dv; i += L) hn::StoreU(hn::Mul(hn::LoadU(df, acc + i), vc), df, acc + i);
      for (; i < p.Dv; ++i) acc[i] *= corr;
    }
    const uint8_t* vrows[kChunk];
    for (int64_t t = 0; t < e - a; ++t) {
      s[t] = std::exp(s[t] - m_new);  // the key's weight
      l += s[t];
      vrows[t] = kv.v + RowOffset(kv, a + t, kv.v_tok, kv.v_block) + h * kv.v_head;
    }
    AccumulateValues<T>(vrows, s, e - a, p.Dv, acc);
    m = m_new;
  }
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  for (int64_t i = 0; i < p.Dv; ++i) out[i] = acc[i] * inv;
}

void AttendImpl(const AttnParams& p, const KvView& kv, int64_t h, const float* q, int64_t j_lo,
                int64_t j_hi, float* out, float* scratch) {
  switch (kv.dtype) {
    case TSR_DTYPE_F16: return Attend<TSR_DTYPE_F16>(p, kv, h, q, j_lo, j_hi, out, scratch);
    case TSR_DTYPE_BF16: return Attend<TSR_DTYPE_BF16>(p, kv, h, q, j_lo, j_hi, out, scratch);
    default: return Attend<TSR_DTYPE_F32>(p, kv, h, q, j_lo, j_hi, out, scratch);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tessera::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tessera::cpu {

HWY_EXPORT(AttendImpl);

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
template <class KvOf>
void RunQueries(const OpArgs& a, const int32_t* cu_q, int64_t n_seq, int64_t hkv, int64_t dv,
                const KvOf& kv_of) {
  const TensorRef& q = *a.in[0];
  const TensorRef& out = *a.out;
  const int64_t T = q.ne[0], Hq = q.ne[1];
  const int64_t group = Hq / hkv;
  AttnParams p;
  p.D = q.ne[2];
  p.Dv = dv;
  p.scale = a.fp(0);
  p.softcap = a.fp(1);
  const bool causal = a.ip(0) != 0;
  const int64_t window = a.ip(1);
  // token -> sequence, so tasks can be flat (token, head) pairs.
  std::vector<int32_t> seq_of(static_cast<size_t>(T), 0);
  for (int64_t s = 0; s < n_seq; ++s) {
    for (int64_t t = cu_q[s]; t < cu_q[s + 1]; ++t)
      seq_of[static_cast<size_t>(t)] = static_cast<int32_t>(s);
  }
  ParallelRanges(a.pool, T * Hq, 1, [&](int64_t begin, int64_t end, int thread) {
    float* scratch = a.ws->Floats(thread, static_cast<size_t>(dv + 64));
    for (int64_t task = begin; task < end; ++task) {
      const int64_t t = task / Hq, h = task % Hq;
      const int64_t s = seq_of[static_cast<size_t>(t)];
      int64_t k_len = 0;
      const KvView kv = kv_of(s, &k_len);
      const int64_t q_len = cu_q[s + 1] - cu_q[s];
      const int64_t pos = k_len - q_len + (t - cu_q[s]);
      int64_t lo, hi;
      VisibleRange(pos, k_len, causal, window, &lo, &hi);
      const auto* qp = reinterpret_cast<const float*>(q.data + t * q.nb[0] + h * q.nb[1]);
      auto* op = reinterpret_cast<float*>(out.data + t * out.nb[0] + h * out.nb[1]);
      HWY_DYNAMIC_DISPATCH(AttendImpl)(p, kv, h / group, qp, lo, hi, op, scratch);
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
