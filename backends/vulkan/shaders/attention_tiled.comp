#version 460
// Tiled (flash-style) ATTENTION and PAGED_ATTENTION for the rows of sequences with two or more
// query rows in the call (prefill and prefill chunks); attention.comp runs the other rows (decode)
// and skips these. Same features: causal, sliding window, soft-cap, GQA, packed or paged K/V in
// f32/f16/bf16, f32 arithmetic. Head dims up to 128 (the host keeps larger heads on
// attention.comp).
//
// One workgroup of 128 invocations = BQ (32) query rows of one sequence and one q head. Key
// tiles of BK (32) keys at fixed positions [32 i, 32 i + 32) of the sequence's keys are decoded
// to f32 into shared memory once for all 32 rows. Row r belongs to invocations 4 r .. 4 r + 3;
// invocation c of a row holds dims c, c + 4, ... of q and of the output. A score is the four
// partial dot products (dims in increasing order) summed by a two-step xor butterfly, so the
// four invocations hold the same bits; each then runs the same online softmax: per tile the
// max over the row's visible keys, rescale, then p = exp(x - m) and acc += p v in key order.
// Keys a row cannot see contribute exactly nothing (a fully hidden tile is skipped, a hidden key
// has p = 0), so a row's result depends only on its own visible keys and the fixed tile grid:
// not on which other rows share its workgroup, nor on the other sequences in the call.
#include "common.glsl"

#extension GL_KHR_shader_subgroup_shuffle : require

layout(local_size_x = 128) in;
const int WG = 128;
const int BQ = 32;       // query rows a workgroup
const int BK = 32;       // keys a tile
const int LANES = 4;     // invocations a row
const int MAXD = 128;    // head dim limit (D and Dv)
const int PER = MAXD / LANES;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t err;
  uint64_t q, out_, k, v, cu_q, cu_k, table, kv_lens;
  int64_t q_tok, q_head, o_tok, o_head;
  int64_t k_tok, k_head, k_block, v_tok, v_head, v_block;
  int64_t table_row, max_blocks, block_size, n_blocks, n_kv_rows;
  int64_t T, Hq, Hkv, D, Dv, S, window;
  int kv_dtype, causal, paged, route;
  float scale, softcap;
};

shared float sm_k[BK][MAXD];
shared float sm_v[BK][MAXD];

int CuQ(Params P, int64_t i) { return LoadI32(P.cu_q + uint64_t(i * 4)); }

// The sequence attention.comp assigns token t to (the last s with cu_q[s] <= t).
int64_t SeqOf(Params P, int64_t t) {
  int64_t lo = 0, hi = P.S;
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    if (CuQ(P, mid) <= t) lo = mid; else hi = mid;
  }
  return lo;
}

// Keys of sequence s: (first packed row, count); count < 0 when invalid (attention.comp reports).
void SeqKeys(Params P, int64_t s, out int64_t k_first, out int64_t k_len) {
  k_first = 0;
  if (P.paged != 0) {
    k_len = LoadI32(P.kv_lens + uint64_t(s * 4));
    if (k_len > P.max_blocks * P.block_size) k_len = -1;
  } else {
    k_first = LoadI32(P.cu_k + uint64_t(s * 4));
    k_len = LoadI32(P.cu_k + uint64_t((s + 1) * 4)) - k_first;
    if (k_first < 0 || k_first + k_len > P.n_kv_rows) k_len = -1;
  }
}

// Byte offsets of key j's K and V rows (head hk), or false for a bad block table entry.
bool KeyRows(Params P, int64_t s, int64_t k_first, int64_t j, int64_t hk, out int64_t kr,
             out int64_t vr) {
  if (P.paged != 0) {
    const int blk = LoadI32(P.table + uint64_t((s * P.table_row + j / P.block_size) * 4));
    if (blk < 0 || blk >= P.n_blocks) return false;
    const int64_t off = j % P.block_size;
    kr = blk * P.k_block + off * P.k_tok + hk * P.k_head;
    vr = blk * P.v_block + off * P.v_tok + hk * P.v_head;
  } else {
    kr = (k_first + j) * P.k_tok + hk * P.k_head;
    vr = (k_first + j) * P.v_tok + hk * P.v_head;
  }
  return true;
}

// Decodes keys [j0, j0 + BK) of head hk into sm_k / sm_v (zeros past k_len). Subgroup-strided:
// invocation i takes key (i / 32) + 4 n, dims (i % 32) + 32 m, so loads are row-contiguous.
void LoadTile(Params P, int64_t s, int64_t k_first, int64_t k_len, int64_t j0, int64_t hk) {
  const int tid = int(gl_LocalInvocationID.x);
  const int es = P.kv_dtype == DT_F32 ? 4 : 2;
  for (int jj = tid / 32; jj < BK; jj += WG / 32) {
    const int64_t j = j0 + jj;
    int64_t kr = 0, vr = 0;
    bool ok = j < k_len;
    if (ok && !KeyRows(P, s, k_first, j, hk, kr, vr)) {
      if (tid % 32 == 0) SetError(P.err, ERR_BLOCK_TABLE);
      ok = false;
    }
    for (int d = tid % 32; d < MAXD; d += 32) {
      sm_k[jj][d] = ok && d < P.D ? LoadFloat(P.k + uint64_t(kr + d * es), P.kv_dtype) : 0.0;
      sm_v[jj][d] = ok && d < P.Dv ? LoadFloat(P.v + uint64_t(vr + d * es), P.kv_dtype) : 0.0;
    }
  }
}

// Which (sequence, first query row) workgroup `tile` of a head works on: tiles are numbered
// over the sequences with q_len >= 2 in order. False: no such tile (the grid is an upper bound).
bool FindTile(Params P, int64_t tile, out int64_t s, out int64_t q0, out int64_t q_end) {
  int64_t seen = 0;
  for (s = 0; s < P.S; ++s) {
    const int64_t a = CuQ(P, s), b = CuQ(P, s + 1);
    if (b - a < 2) continue;
    const int64_t n = (b - a + BQ - 1) / BQ;
    if (tile < seen + n) {
      q0 = a + (tile - seen) * BQ;
      q_end = b;
      return true;
    }
    seen += n;
  }
  return false;
}

void main() {
  Params P = Params(pc.params);
  const int64_t unit = int64_t(GroupIndex());
  const int64_t h = unit % P.Hq, hk = h / (P.Hq / P.Hkv);
  int64_t s, q0, q_end;
  if (!FindTile(P, unit / P.Hq, s, q0, q_end)) return;
  int64_t k_first, k_len;
  SeqKeys(P, s, k_first, k_len);
  if (k_len < 0) return;  // attention.comp reports the sequence and zero-fills its rows
  const int tid = int(gl_LocalInvocationID.x);
  const int r = tid / LANES, c = tid % LANES;
  // The butterfly below needs a row's four invocations in one subgroup, in lane order.
  if (gl_SubgroupSize < LANES || int(gl_SubgroupInvocationID) != tid % int(gl_SubgroupSize))
    SetError(P.err, ERR_SUBGROUP);

  // This invocation's row: token t at key position pos sees keys [lo, hi).
  const int64_t t = q0 + r;
  const int64_t q_len = q_end - CuQ(P, s);
  bool mine = t < q_end && t < P.T && SeqOf(P, t) == s;
  const int64_t pos = k_len - q_len + (t - CuQ(P, s));
  int64_t hi = P.causal != 0 ? min(k_len, pos + 1) : k_len;
  int64_t lo = (P.window > 0 && pos - P.window + 1 > 0) ? pos - P.window + 1 : 0;
  if (!mine) lo = hi = 0;

  // Keys any row of the workgroup sees: from the first row's lo to the last row's hi.
  const int64_t t_last = min(q0 + BQ, q_end) - 1;
  const int64_t pos0 = k_len - q_len + (q0 - CuQ(P, s));
  const int64_t pos1 = k_len - q_len + (t_last - CuQ(P, s));
  const int64_t wg_lo = (P.window > 0 && pos0 - P.window + 1 > 0) ? pos0 - P.window + 1 : 0;
  const int64_t wg_hi = P.causal != 0 ? min(k_len, pos1 + 1) : k_len;

  float qv[PER], acc[PER];
  const uint64_t qp = P.q + uint64_t(t * P.q_tok + h * P.q_head);
  [[unroll]] for (int i = 0; i < PER; ++i) {
    const int d = c + LANES * i;
    qv[i] = mine && d < P.D ? LoadF32(qp + uint64_t(d * 4)) : 0.0;
    acc[i] = 0.0;
  }
  float m = -1.0 / 0.0, l = 0.0;
  const int64_t dq = P.D, dv = P.Dv;
  for (int64_t j0 = wg_lo / BK * BK; j0 < wg_hi; j0 += BK) {
    barrier();  // the previous tile is no longer read
    LoadTile(P, s, k_first, k_len, j0, hk);
    barrier();
    if (j0 + BK <= lo || j0 >= hi) continue;  // no key of this tile is visible to the row
    float x[BK];
    [[unroll]] for (int j = 0; j < BK; ++j) x[j] = 0.0;
    [[unroll]] for (int i = 0; i < PER; ++i) {
      if (c + LANES * i < dq) {
        [[unroll]] for (int j = 0; j < BK; ++j) x[j] = fma(qv[i], sm_k[j][c + LANES * i], x[j]);
      }
    }
    float mt = -1.0 / 0.0;
    [[unroll]] for (int j = 0; j < BK; ++j) {
      x[j] += subgroupShuffleXor(x[j], 1);
      x[j] += subgroupShuffleXor(x[j], 2);
      x[j] *= P.scale;
      if (P.softcap > 0.0) x[j] = P.softcap * Tanh(x[j] / P.softcap);
      if (j0 + j >= lo && j0 + j < hi) mt = max(mt, x[j]);
    }
    const float m_new = max(m, mt);
    const float corr = m == -1.0 / 0.0 ? 0.0 : exp(m - m_new);
    l *= corr;
    [[unroll]] for (int i = 0; i < PER; ++i) acc[i] *= corr;
    m = m_new;
    [[unroll]] for (int j = 0; j < BK; ++j) {
      const float p = j0 + j >= lo && j0 + j < hi ? exp(x[j] - m) : 0.0;
      l += p;
      [[unroll]] for (int i = 0; i < PER; ++i) {
        if (c + LANES * i < dv) acc[i] = fma(p, sm_v[j][c + LANES * i], acc[i]);
      }
    }
  }
  if (!mine) return;
  const float inv = l > 0.0 ? 1.0 / l : 0.0;
  const uint64_t op = P.out_ + uint64_t(t * P.o_tok + h * P.o_head);
  [[unroll]] for (int i = 0; i < PER; ++i) {
    const int d = c + LANES * i;
    if (d < dv) StoreF32(op + uint64_t(d * 4), acc[i] * inv);
  }
}
