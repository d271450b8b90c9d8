#version 460
// Dense varlen ATTENTION and PAGED_ATTENTION (causal, sliding window, soft-cap, GQA), f32
// arithmetic over f32/f16/bf16 K/V.
//
// One workgroup a (query, q head) of WG invocations (specialization constant 1: 32 subgroups
// where the device allows, at least 128; decode has few (query, head) units, so each needs many
// keys in flight). Subgroup g takes the visible keys lo + g, lo + g + NSG, ... with its own
// online-softmax state; the states are merged in subgroup order at the end. Each score is one dot product: lane l sums dims l, l + SG, ... in order, then
// subgroupAdd. Everything depends only on the query, its keys and the head: not on the other
// sequences in the call, and not on whether the keys come from packed k/v or the paged cache.
// SG (specialization constant 0) is the device's subgroup size, which the pipeline requires.
// Results depend on the device (SG, WG), never on the batch. With `route` set (the host also
// dispatched attention_tiled.comp) the rows of sequences with two or more query rows in the call
// are left to the tiled kernel: which kernel runs a row depends only on its own sequence.
//
// SPLIT=1 (the attention_split module, for decode-sized grids: run_ops.cc RecordAttention): the
// same NSG subgroups of a (query, head), the same keys each and the same merge, spread over PARTS
// workgroups of WL = WG / PARTS invocations (specialization constants 5 and 6): part p runs the
// row's subgroups p LSG .. (p + 1) LSG - 1, writes their (m, l, acc) to scratch, and the last part
// to count loads all NSG states into shared memory and runs the merge: no operation or its order
// changes, so every row keeps this kernel's bits (vk19b; `lab/vk19b_gpu.sh`).
//
// FIXD (the attention_f32_d64 / _d128 modules and their SPLIT twins; vk20-attn): the same rows,
// keys, operations and order for f32 K/V with D = Dv = FIXD, a multiple of SG (run_ops.cc
// RecordAttention picks them): each lane loads exactly FIXD / SG f32 elements of K and of V, with
// no bounds test or dtype switch per element, 32-bit key counters, q loaded before the sequence
// lookup. On the H100 a key step of a split row costs ~0.6-0.8 us instead of ~2.1 (8B head, 89
// -> 64 registers); most likely the generic module's per-element branches kept the driver from
// issuing a key's loads together. Every row keeps the generic module's bits (lab/vk20attn_gpu.sh,
// vulkan_backend_test). One main() serves every module (vk21-share): the sequence lookup, an
// invalid row's zeros, the score, the online-softmax update and the split merge are written once;
// only the key loops differ.
//
// KVNEW (FIXD only: the attention_kvnew_* modules; vk27-kv, run_ops.cc RunRopeKvAttention): a
// decode step's k RoPE and the two KV_WRITEs before it in the same dispatch. The row's newest key
// (its own token, key hi - 1) is not read from the cache: the subgroup that owns it computes the
// rotated k (rope.comp's operations: RopeSinCos, RopeRotate) and loads v from the projection rows,
// and runs the same score and update on them; the first q head of each KV head also stores them
// into the caches at the token's slot (and the k into the RoPE's output), as rope.comp does. Every
// other key comes from the cache, so every output keeps the bits of the three dispatches.
#if SPLIT
#extension GL_KHR_memory_scope_semantics : require
#endif
#include "common.glsl"
#if KVNEW
#include "rope_common.glsl"
#endif

layout(constant_id = 0) const int SG = 32;
layout(constant_id = 1) const int WG = 128;
#if SPLIT
layout(local_size_x_id = 6) in;
layout(constant_id = 5) const int PARTS = 1;
layout(constant_id = 6) const int WL = 128;
#else
layout(local_size_x_id = 1) in;
const int PARTS = 1;
const int WL = WG;
#endif
const int NSG = WG / SG;  // subgroups of a (query, head): its key interleave and merge order
const int LSG = WL / SG;  // a workgroup's
#ifdef FIXD
const int MAXD = FIXD;
#else
const int MAXD = 256;
#endif
const int PER = MAXD / SG;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t err;
  uint64_t q, out_, k, v, cu_q, cu_k, table, kv_lens;
  int64_t q_tok, q_head, o_tok, o_head;
  int64_t k_tok, k_head, k_block, v_tok, v_head, v_block;
  int64_t table_row, max_blocks, block_size, n_blocks, n_kv_rows;
  int64_t T, Hq, Hkv, D, Dv, S, window;
  int kv_dtype, causal, paged, route;
  float scale, softcap;
  uint64_t part, count;  // SPLIT: scratch for each unit's NSG (m, l, acc[Dv]); a counter a unit
};

#if KVNEW
// The RoPE / KV_WRITE block after Params (ops.h KvNewP): row 0 of the k and v projections (x,
// vrows; dims contiguous, head strides x_head / v_head), the RoPE's positions, inv_freq and
// attention scale, its output (o_head; rope_out 0: not stored), the KV_WRITEs' slots and
// n_slots; the caches are P.k / P.v.
layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer KvNew {
  uint64_t x, rope_out, pos, inv_freq, slots, vrows;
  int64_t x_head, o_head, v_head, n_slots;
  float attn_scale;
};
#define ATTN_PARAMS_BYTES 288  // sizeof(ops.h's AttnP)
#endif

#if SPLIT
// Written and read by different workgroups: coherent (past the non-coherent L1), ordered by
// memoryBarrierBuffer around the counter's acq_rel atomicAdd.
layout(buffer_reference, std430, buffer_reference_align = 4) coherent buffer CohF32 { float v; };
layout(buffer_reference, std430, buffer_reference_align = 4) coherent buffer CohU32 { uint v; };
shared bool sm_last;
#endif

shared float sm_m[NSG], sm_l[NSG];
shared float sm_acc[NSG][MAXD];

#if SPLIT
// This lane's K and V elements (dims lane + SG i) of key j of sequence s; false (reported) where
// the block table names no block.
bool LoadKey(Params P, int64_t s, int64_t k_first, int64_t hk, int64_t j, int lane,
             out float kx[PER], out float vx[PER]) {
  const int dt = P.kv_dtype;
  const int64_t es = dt == DT_F32 ? 4 : 2;
  int64_t kr, vr;
  bool ok = true;
  if (P.paged != 0) {
    const int blk = LoadI32(P.table + uint64_t((s * P.table_row + j / P.block_size) * 4));
    ok = blk >= 0 && blk < P.n_blocks;
    if (!ok && lane == 0) SetError(P.err, ERR_BLOCK_TABLE);
    const int64_t off = j % P.block_size;
    kr = blk * P.k_block + off * P.k_tok;
    vr = blk * P.v_block + off * P.v_tok;
  } else {
    kr = (k_first + j) * P.k_tok;
    vr = (k_first + j) * P.v_tok;
  }
  const uint64_t krow = P.k + uint64_t(kr + hk * P.k_head);
  const uint64_t vrow = P.v + uint64_t(vr + hk * P.v_head);
  [[unroll]] for (int i = 0; i < PER; ++i) {
    const int64_t d = lane + SG * i;
    kx[i] = ok && d < P.D ? LoadFloat(krow + uint64_t(d * es), dt) : 0.0;
    vx[i] = ok && d < P.Dv ? LoadFloat(vrow + uint64_t(d * es), dt) : 0.0;
  }
  return ok;
}
#endif

// What every module shares is written once below (the same operations in the same order in
// every module). FIXD modules know Dv = FIXD at compile time, count dims in 32 bits and test no
// dim against Dv (lane + SG i < FIXD always); the generic modules read P.Dv, count as they always
// have and test. IF_DV expands to nothing where FIXD: even an `if (true)` changed glslc's block
// order in these modules. Checked with lab/vk21share_spirv.sh: every module's code is the code the
// per-module copies compiled to (the order of a few phi nodes aside), but for the split FIXD
// modules' scratch address of acc[i], 2 + (lane + SG i), added in the other order.
#ifdef FIXD
#define DV(P) FIXD
#define DIDX int
#define IF_DV(P, d)
#else
#define DV(P) P.Dv
#define DIDX int64_t
#define IF_DV(P, d) if (d < P.Dv)
#endif

int CuQ(Params P, int64_t i) { return LoadI32(P.cu_q + uint64_t(i * 4)); }

// A row that cannot be computed: the error bit (once a row), the row's Dv outputs zero.
void FailRow(Params P, uint64_t out_, int tid, uint bit) {
  if (tid == 0) SetError(P.err, bit);
  for (DIDX d = tid; d < DV(P); d += WL) StoreF32(out_ + uint64_t(d * 4), 0.0);
}

// The sequence of token t: the last s with cu_q[s] <= t (cu_q is non-decreasing), its query rows
// q_first .. q_first + q_len - 1 and its keys (k_first .. k_first + k_len - 1 of packed k/v;
// k_first 0 when paged). False where t is outside them or the lengths are not valid. Locals
// copied out at the end: writing the out parameters directly made glslc keep branches where the
// inline lookup had OpLogicalAnd.
bool FindSequence(Params P, int64_t t, out int64_t s_, out int64_t q_first_, out int64_t q_len_,
                  out int64_t k_first_, out int64_t k_len_) {
  bool ok = P.S > 0;
  int64_t s = 0, q_first = 0, q_len = 0, k_len = 0, k_first = 0;
  if (ok) {
    int64_t lo = 0, hi = P.S;
    while (hi - lo > 1) {
      const int64_t mid = (lo + hi) / 2;
      if (CuQ(P, mid) <= t) lo = mid; else hi = mid;
    }
    s = lo;
    q_first = CuQ(P, lo);
    q_len = CuQ(P, lo + 1) - q_first;
    ok = t >= q_first && t < q_first + q_len;
    if (P.paged != 0) {
      k_len = LoadI32(P.kv_lens + uint64_t(lo * 4));
      ok = ok && k_len >= 0 && k_len <= P.max_blocks * P.block_size;
    } else {
      k_first = LoadI32(P.cu_k + uint64_t(lo * 4));
      k_len = LoadI32(P.cu_k + uint64_t((lo + 1) * 4)) - k_first;
      ok = ok && k_first >= 0 && k_len >= 0 && k_first + k_len <= P.n_kv_rows;
    }
  }
  s_ = s;
  q_first_ = q_first;
  q_len_ = q_len;
  k_first_ = k_first;
  k_len_ = k_len;
  return ok;
}

// A key's score from this lane's partial dot product: the subgroup's sum, scaled, soft-capped.
float Score(Params P, float part) {
  float x = subgroupAdd(part) * P.scale;
  if (P.softcap > 0.0) x = P.softcap * Tanh(x / P.softcap);
  return x;
}

// The online-softmax update of (m, l, acc[PER]) by score x; sets w, the weight of the key's V
// row (the caller adds w V to acc). A macro, not a function: glslc -O keeps a function's copy in
// and out of an array parameter (acc, whose size depends on the spec constant SG), in the key loop.
#define ONLINE_UPDATE(x, m, l, acc, w)                                  \
  if (x > m) {                                                          \
    const float corr = m == -1.0 / 0.0 ? 0.0 : exp(m - x);              \
    l = l * corr + 1.0;                                                 \
    [[unroll]] for (int i = 0; i < PER; ++i) acc[i] *= corr;            \
    m = x;                                                              \
    w = 1.0;                                                            \
  } else {                                                              \
    w = exp(x - m);                                                     \
    l += w;                                                             \
  }

#if SPLIT
// PARTS > 1, once this part's states are in the unit's scratch row: counts the part; true in the
// last part to count (it merges; the others are done).
bool LastPart(Params P, int64_t unit, int tid) {
  memoryBarrierBuffer();
  barrier();
  if (tid == 0) {
    const uint64_t counter = P.count + uint64_t(unit * 4);
    const uint prior = atomicAdd(CohU32(counter).v, 1u, gl_ScopeDevice,
                                 gl_StorageSemanticsBuffer, gl_SemanticsAcquireRelease);
    sm_last = prior == uint(PARTS - 1);
    if (sm_last) CohU32(counter).v = 0u;  // every part has counted: ready for the next call
  }
  barrier();
  return sm_last;
}

// The last part: all NSG states of the unit's scratch row (stride floats a state: m, l,
// acc[Dv]) into shared memory for MergeStates.
void ScratchToShared(Params P, uint64_t row, DIDX stride, int tid) {
  memoryBarrierBuffer();
  for (int w = tid; w < NSG; w += WL) {
    sm_m[w] = CohF32(row + uint64_t(w * stride * 4)).v;
    sm_l[w] = CohF32(row + uint64_t((w * stride + 1) * 4)).v;
  }
  for (DIDX e = tid; e < NSG * DV(P); e += WL) {
    const DIDX w = e / DV(P), d = e % DV(P);
    sm_acc[int(w)][int(d)] = CohF32(row + uint64_t((w * stride + 2 + d) * 4)).v;
  }
}
#endif

// The row's output from the NSG states in shared memory, merged in subgroup order.
void MergeStates(Params P, uint64_t out_, int tid) {
  barrier();
  float mx = -1.0 / 0.0;
  for (int w = 0; w < NSG; ++w) mx = max(mx, sm_m[w]);
  float total = 0.0;
  for (int w = 0; w < NSG; ++w)
    total += sm_l[w] * (sm_m[w] == -1.0 / 0.0 ? 0.0 : exp(sm_m[w] - mx));
  const float inv = total > 0.0 ? 1.0 / total : 0.0;
  for (int d = tid; d < DV(P); d += WL) {
    float acc_d = 0.0;
    for (int w = 0; w < NSG; ++w)
      acc_d = fma(sm_acc[w][d], sm_m[w] == -1.0 / 0.0 ? 0.0 : exp(sm_m[w] - mx), acc_d);
    StoreF32(out_ + uint64_t(d * 4), acc_d * inv);
  }
}

#ifdef FIXD
// One key of the row (its K and V rows at krow, vrow) over all FIXD dims: no bounds test or
// dtype switch per element.
void Key(Params P, uint64_t krow, uint64_t vrow, int lane, float qv[PER], inout float m,
         inout float l, inout float acc[PER]) {
  float kx[PER], vx[PER];
  [[unroll]] for (int i = 0; i < PER; ++i) {
    kx[i] = LoadF32(krow + uint64_t((lane + SG * i) * 4));
    vx[i] = LoadF32(vrow + uint64_t((lane + SG * i) * 4));
  }
  float part = 0.0;
  [[unroll]] for (int i = 0; i < PER; ++i) part = fma(qv[i], kx[i], part);
  const float x = Score(P, part);
  float w;
  ONLINE_UPDATE(x, m, l, acc, w)
  [[unroll]] for (int i = 0; i < PER; ++i) acc[i] = fma(w, vx[i], acc[i]);
}

#if KVNEW
// The newest key of the row (KVNEW): this lane's dims lane + SG i of the rotated k (neox pairs
// (p, p + FIXD / 2): dims i and i + PER / 2 of a lane) and of v, the same operations as rope.comp
// and the KV_WRITEs; stored into the caches at the token's slot where `writer` (and the k into
// the RoPE's output, all of its dims, as rope.comp writes them); then, where the block table
// names a block for the key (`listed`, the loop's check of every key), Key's score and update,
// written out again: a shared function taking kx / vx changed the fixed modules' SPIR-V (glslc
// keeps array-parameter copies, see ONLINE_UPDATE), and those modules are tuned on the H100/H200.
void NewKey(Params P, KvNew N, int64_t hk, bool writer, bool listed, int lane, float qv[PER],
            inout float m, inout float l, inout float acc[PER]) {
  float kx[PER], vx[PER];
  const int rpos = LoadI32(N.pos);
  const uint64_t xrow = N.x + uint64_t(hk * N.x_head);
  [[unroll]] for (int i = 0; i < PER / 2; ++i) {
    const int p = lane + SG * i;
    float sn, cs;
    RopeSinCos(rpos, LoadF32(N.inv_freq + uint64_t(p * 4)), N.attn_scale, sn, cs);
    const float x0 = LoadF32(xrow + uint64_t(p * 4));
    const float x1 = LoadF32(xrow + uint64_t((p + FIXD / 2) * 4));
    RopeRotate(x0, x1, sn, cs, kx[i], kx[i + PER / 2]);
  }
  const uint64_t vrow = N.vrows + uint64_t(hk * N.v_head);
  [[unroll]] for (int i = 0; i < PER; ++i) vx[i] = LoadF32(vrow + uint64_t((lane + SG * i) * 4));
  if (writer) {
    if (N.rope_out != 0ul) {  // 0: the plan reuses it for the attention's output (dead)
      const uint64_t orow = N.rope_out + uint64_t(hk * N.o_head);
      [[unroll]] for (int i = 0; i < PER; ++i)
        StoreF32(orow + uint64_t((lane + SG * i) * 4), kx[i]);
    }
    // kv_write.comp's slot checks: -1 skips; outside the cache sets the error word.
    const int slot = LoadI32(N.slots);
    if (slot != -1 && (slot < 0 || int64_t(slot) >= N.n_slots)) {
      if (lane == 0) SetError(P.err, ERR_INDEX);
    } else if (slot != -1) {
      const int64_t blk = int64_t(slot) / P.block_size, off = int64_t(slot) % P.block_size;
      const uint64_t krow = P.k + uint64_t(blk * P.k_block + off * P.k_tok + hk * P.k_head);
      const uint64_t vrow_c = P.v + uint64_t(blk * P.v_block + off * P.v_tok + hk * P.v_head);
      [[unroll]] for (int i = 0; i < PER; ++i) {
        StoreF32(krow + uint64_t((lane + SG * i) * 4), kx[i]);
        StoreF32(vrow_c + uint64_t((lane + SG * i) * 4), vx[i]);
      }
    }
  }
  if (!listed) {  // as the loop: reported, the key skipped
    if (lane == 0) SetError(P.err, ERR_BLOCK_TABLE);
    return;
  }
  float part = 0.0;
  [[unroll]] for (int i = 0; i < PER; ++i) part = fma(qv[i], kx[i], part);
  const float x = Score(P, part);
  float w;
  ONLINE_UPDATE(x, m, l, acc, w)
  [[unroll]] for (int i = 0; i < PER; ++i) acc[i] = fma(w, vx[i], acc[i]);
}
#endif
#endif

void main() {
  Params P = Params(pc.params);
  const int64_t unit = int64_t(GroupIndex() / PARTS);
  if (unit >= P.T * P.Hq) return;
  const int64_t t = unit / P.Hq, h = unit % P.Hq;
  const int64_t hk = h / (P.Hq / P.Hkv);
  // g: the subgroup's place among the row's NSG (its keys, its turn in the merge).
  const int g = int(GroupIndex() % PARTS) * LSG + int(gl_SubgroupID);
  const int lane = int(gl_SubgroupInvocationID);
  const int tid = int(gl_LocalInvocationID.x);
  const uint64_t out_ = P.out_ + uint64_t(t * P.o_tok + h * P.o_head);
  if (gl_SubgroupSize != SG) {  // the lane layout below would be wrong: say so, never guess
    FailRow(P, out_, tid, ERR_SUBGROUP);
    return;
  }
#ifdef FIXD
  // q first: its address needs only (t, h), so its loads overlap the sequence lookup's.
  const uint64_t qp = P.q + uint64_t(t * P.q_tok + h * P.q_head);
  float qv[PER], acc[PER];
  [[unroll]] for (int i = 0; i < PER; ++i) {
    qv[i] = LoadF32(qp + uint64_t((lane + SG * i) * 4));
    acc[i] = 0.0;
  }
#endif
  int64_t s, q_first, q_len, k_first, k_len;
  if (!FindSequence(P, t, s, q_first, q_len, k_first, k_len)) {
    FailRow(P, out_, tid, ERR_SEQLENS);
    return;
  }
  if (P.route != 0 && q_len >= 2) return;  // attention_tiled.comp runs this sequence's rows
  const int64_t pos = k_len - q_len + (t - q_first);
#ifdef FIXD
  // Key indices fit 32 bits: k_len is an int32.
  const int hi = int(P.causal != 0 ? min(k_len, pos + 1) : k_len);
  const int lo = int((P.window > 0 && pos - P.window + 1 > 0) ? pos - P.window + 1 : 0);

  float m = -1.0 / 0.0, l = 0.0;
  const uint64_t k_hd = P.k + uint64_t(hk * P.k_head), v_hd = P.v + uint64_t(hk * P.v_head);
  // KVNEW: the cache holds keys lo .. hi - 2; key hi - 1 (this token's: pos, the KV_WRITEs' slot)
  // is NewKey's, in the place of the subgroup's key sequence where the loop would have read it.
#if KVNEW
#define KEYS_HI (hi - 1)
#else
#define KEYS_HI hi
#endif
  if (P.paged != 0) {
    const int bs = int(P.block_size);
    const uint64_t trow = P.table + uint64_t(s * P.table_row * 4);
    int j = lo + g;
    int jb = j / bs, off = j - (j / bs) * bs;  // key j's block and place in it, kept as j steps
    const int qb = NSG / bs, rb = NSG - (NSG / bs) * bs;
    for (; j < KEYS_HI; j += NSG) {
      const int blk = LoadI32(trow + uint64_t(jb * 4));
      if (blk >= 0 && blk < P.n_blocks) {
        Key(P, k_hd + uint64_t(blk * P.k_block + off * P.k_tok),
            v_hd + uint64_t(blk * P.v_block + off * P.v_tok), lane, qv, m, l, acc);
      } else if (lane == 0) {
        SetError(P.err, ERR_BLOCK_TABLE);
      }
      jb += qb;
      off += rb;
      if (off >= bs) {
        off -= bs;
        ++jb;
      }
    }
  } else {
    for (int j = lo + g; j < KEYS_HI; j += NSG)
      Key(P, k_hd + uint64_t((k_first + j) * P.k_tok), v_hd + uint64_t((k_first + j) * P.v_tok),
          lane, qv, m, l, acc);
  }
#if KVNEW
  if (hi - 1 >= lo && (hi - 1 - lo) % NSG == g) {
    const int jn = hi - 1, bs = int(P.block_size);  // paged only (RunRopeKvAttention)
    const int blk = LoadI32(P.table + uint64_t((s * P.table_row + jn / bs) * 4));
    NewKey(P, KvNew(pc.params + uint64_t(ATTN_PARAMS_BYTES)), hk, h % (P.Hq / P.Hkv) == 0,
           blk >= 0 && blk < P.n_blocks, lane, qv, m, l, acc);
  }
#endif
#else  // the generic modules: any head dims and K/V dtype
  const int64_t hi = P.causal != 0 ? min(k_len, pos + 1) : k_len;
  const int64_t lo = (P.window > 0 && pos - P.window + 1 > 0) ? pos - P.window + 1 : 0;
  const int dt = P.kv_dtype;
  const int64_t es = dt == DT_F32 ? 4 : 2;

  const uint64_t qp = P.q + uint64_t(t * P.q_tok + h * P.q_head);
  float qv[PER], acc[PER];
  [[unroll]] for (int i = 0; i < PER; ++i) {
    const int64_t d = lane + SG * i;
    qv[i] = d < P.D ? LoadF32(qp + uint64_t(d * 4)) : 0.0;
    acc[i] = 0.0;
  }
  float m = -1.0 / 0.0, l = 0.0;
#if SPLIT
  for (int64_t j = lo + g; j < hi; j += NSG) {
    float kx[PER], vx[PER];
    if (!LoadKey(P, s, k_first, hk, j, lane, kx, vx)) continue;
    float part = 0.0;
    [[unroll]] for (int i = 0; i < PER; ++i) {
      if (lane + SG * i < P.D) part = fma(qv[i], kx[i], part);
    }
    const float x = Score(P, part);
    float w;
    ONLINE_UPDATE(x, m, l, acc, w)
    [[unroll]] for (int i = 0; i < PER; ++i) {
      const int64_t d = lane + SG * i;
      if (d < P.Dv) acc[i] = fma(w, vx[i], acc[i]);
    }
  }
#else
  for (int64_t j = lo + g; j < hi; j += NSG) {
    int64_t kr, vr;
    if (P.paged != 0) {
      const int blk = LoadI32(P.table + uint64_t((s * P.table_row + j / P.block_size) * 4));
      if (blk < 0 || blk >= P.n_blocks) {
        if (lane == 0) SetError(P.err, ERR_BLOCK_TABLE);
        continue;
      }
      const int64_t off = j % P.block_size;
      kr = blk * P.k_block + off * P.k_tok;
      vr = blk * P.v_block + off * P.v_tok;
    } else {
      kr = (k_first + j) * P.k_tok;
      vr = (k_first + j) * P.v_tok;
    }
    const uint64_t krow = P.k + uint64_t(kr + hk * P.k_head);
    float part = 0.0;
    [[unroll]] for (int i = 0; i < PER; ++i) {
      const int64_t d = lane + SG * i;
      if (d < P.D) part = fma(qv[i], LoadFloat(krow + uint64_t(d * es), dt), part);
    }
    const float x = Score(P, part);
    const uint64_t vrow = P.v + uint64_t(vr + hk * P.v_head);
    float w;
    ONLINE_UPDATE(x, m, l, acc, w)
    [[unroll]] for (int i = 0; i < PER; ++i) {
      const int64_t d = lane + SG * i;
      if (d < P.Dv) acc[i] = fma(w, LoadFloat(vrow + uint64_t(d * es), dt), acc[i]);
    }
  }
#endif
#endif  // FIXD
#if SPLIT
  if (PARTS > 1) {  // this part's states to scratch; the last part to count merges them all
    const DIDX stride = DV(P) + 2;  // floats a state
    const uint64_t row = P.part + uint64_t(unit * NSG * stride * 4);
    const uint64_t st = row + uint64_t(g * stride * 4);
    if (lane == 0) {
      CohF32(st).v = m;
      CohF32(st + 4ul).v = l;
    }
    [[unroll]] for (int i = 0; i < PER; ++i) {
      const int d = lane + SG * i;
      IF_DV(P, d) CohF32(st + uint64_t((2 + d) * 4)).v = acc[i];
    }
    if (!LastPart(P, unit, tid)) return;
    ScratchToShared(P, row, stride, tid);
  } else
#endif
  {
    if (lane == 0) {
      sm_m[g] = m;
      sm_l[g] = l;
    }
    [[unroll]] for (int i = 0; i < PER; ++i) {
      const int d = lane + SG * i;
      IF_DV(P, d) sm_acc[g][d] = acc[i];
    }
  }
  MergeStates(P, out_, tid);
}
