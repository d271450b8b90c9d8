// Runners: turn a validated node into a parameter block (ops.h) and record its dispatches. No
// runner waits; data-dependent errors surface through the device error word (plugin.cc).
#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>

#include "backends/vulkan/ops.h"
#include "tessera/backend/validate.h"

namespace tessera::vulkan {

using backend::BlockBytes;
using backend::DtypeSize;
using backend::IsQuantized;
using backend::SameShape;

Status Recorder::Dispatch1D(Shader shader, const void* params, size_t size, uint64_t groups) {
  if (groups == 0) return OkStatus();
  constexpr uint64_t kMaxX = 65535;
  const uint64_t y = (groups + kMaxX - 1) / kMaxX;
  if (y > kMaxX) return InvalidArgument("dispatch of " + std::to_string(groups) + " workgroups");
  const uint64_t x = std::min(groups, kMaxX);
  return Dispatch(shader, params, size, static_cast<uint32_t>(x), static_cast<uint32_t>(y), 1);
}

namespace {

uint64_t CeilDiv(uint64_t a, uint64_t b) {
  return (a + b - 1) / b;
}

// Walks `ts` (up to three; slot k) over the dims of `shape` (all, or all but the innermost when
// `outer_only`), numpy-broadcasting where a tensor's dim is 1 or missing.
WalkP MakeWalk(const TensorRef& shape, const TensorRef* const* ts, int n, bool outer_only) {
  return backend::BroadcastWalk<WalkP>(shape, ts, n, outer_only);
}

WalkP OwnWalk(const TensorRef& t) {
  const TensorRef* ts[1] = {&t};
  return MakeWalk(t, ts, 1, false);
}

template <typename P>
Status Record(const OpArgs& a, Shader s, const P& p, uint64_t groups) {
  return a.rec->Dispatch1D(s, &p, sizeof(P), groups);
}

// ---- MATMUL ----

Shader MatmulShader(tsr_dtype dt, bool gemm) {
  switch (dt) {
    case TSR_DTYPE_F16: return gemm ? Shader::kGemmF16 : Shader::kMatmulF16;
    case TSR_DTYPE_BF16: return gemm ? Shader::kGemmBf16 : Shader::kMatmulBf16;
    case TSR_DTYPE_Q8_B32: return gemm ? Shader::kGemmQ8 : Shader::kMatmulQ8;
    case TSR_DTYPE_Q4_B32: return gemm ? Shader::kGemmQ4 : Shader::kMatmulQ4;
    default: return gemm ? Shader::kGemmF32 : Shader::kMatmulF32;
  }
}

// Rows of a [..., M, K] tensor addressable as one [S * M, K] matrix with a single row stride.
bool RowsMerge(const TensorRef& t) {
  if (t.ndim <= 2) return true;
  int64_t expect = t.nb[t.ndim - 2] * t.ne[t.ndim - 2];
  for (int d = t.ndim - 3; d >= 0; --d) {
    if (t.ne[d] > 1 && t.nb[d] != expect) return false;
    expect *= t.ne[d];
  }
  return true;
}

// Which operands allow 16-byte loads (bit 0: x rows, bit 1: weight rows; q8/q4 blocks need only
// 2-byte alignment). Only the loads change: both shaders sum in one canonical order whatever
// the alignment (shaders/matmul_common.glsl).
int32_t VecBits(const MatmulP& p, tsr_dtype wdt) {
  int32_t bits = 0;
  if (p.x % 16 == 0 && p.x_row % 16 == 0) bits |= 1;
  if (IsQuantized(wdt) ? p.K % TSR_QBLOCK == 0 && p.w % 2 == 0 && p.w_row % 2 == 0
                       : p.w % 16 == 0 && p.w_row % 16 == 0)
    bits |= 2;
  return bits;
}

// matmul.comp's DecodeSplit: a 128-invocation workgroup takes `blocks` blocks of `rows` weight
// rows, 128 / blocks invocations sharing a block's K, and keeps every chunk partial of its
// rows in shared memory (SPLIT_FLOATS floats) until one fold at the end. The fewest blocks
// (most invocations a row) that still leave no invocation idle on the first step: 32 a block
// for K <= 1024, 64 up to 2048, else 128. 0 when the partials do not fit (the subgroup kernels
// then run). Only the work split depends on this: every row is summed in the canonical order.
constexpr int64_t kSplitFloats = 4096;  // = matmul.comp's SPLIT_FLOATS
int32_t SplitBlocks(const Recorder& rec, int64_t K, int64_t rows) {
  const int64_t nc = K / 32;
  int32_t blocks = nc <= 32 ? 4 : (nc <= 64 ? 2 : 1);
  if (rec.split_blocks == 1 || rec.split_blocks == 2 || rec.split_blocks == 4)
    blocks = rec.split_blocks;                  // TESSERA_VULKAN_SPLIT_BLOCKS, a lab knob
  const int64_t stride = (nc + 3) / 4 * 4 + 4;  // matmul.comp DecodeSplit's
  while (blocks >= 1 && rows * blocks * stride > kSplitFloats) blocks /= 2;
  return blocks;
}
// Whether a decode dispatch takes DecodeSplit: Recorder::decode_split 1 = always (where K fits),
// 2 = K <= 1024 (Qwen2.5-0.5B's projections, the only shape where it beat the subgroup kernel
// on the H100: +5% tg128; see README), 0 = never (the default).
bool UsesSplit(const Recorder& rec, int64_t K, int32_t decode_rows) {
  if (rec.decode_split == 0 || SplitBlocks(rec, K, decode_rows) == 0) return false;
  return rec.decode_split == 1 || K <= 1024;
}
// Subgroups in the GEMVs' 128-invocation workgroups.
int64_t SubgroupsPerGroup(const Recorder& rec) {
  return std::max<int64_t>(1, 128 / rec.subgroup_size);
}
// Rows a workgroup for a decode dispatch of `decode_rows` rows a subgroup (or a split block).
int32_t DecodeRowsPerGroup(const Recorder& rec, int64_t K, int32_t decode_rows) {
  if (UsesSplit(rec, K, decode_rows)) return decode_rows * SplitBlocks(rec, K, decode_rows);
  return static_cast<int32_t>(SubgroupsPerGroup(rec) * decode_rows);
}

// Lone plain decode GEMVs (o, down) with long K: the skewed kernel instead of the coalesced one,
// with K split within the workgroup where the partials fit (matmul.comp DecodeRowsSkewed with
// P.kpieces: subgroup s takes row block s / pieces, piece s % pieces of K; the chunk partials
// meet in shared memory and piece 0 folds them in chunk order, so the sums are the canonical
// ones, on pieces x the workgroups). By shape (Recorder::decode_kpieces 0): where a subgroup
// would take 5 or more steps (K > 4 * 32 * SG: the down projections), 2 pieces, 4 where the
// dispatch has under 512 row blocks, unsplit where the partials do not fit; 4 steps (K = 4 * 32
// * SG: Llama-3.1-8B's o) unsplit; shorter K (o, 1-3 steps: 9-19% slower on the skewed kernel,
// split or not, 2.7-24% with 2 or 4 chains a step) keeps the coalesced kernel.
// vulkan_gemv_lab on the H100 (README, vk-gemv eleventh session): down 8B 58.3 -> 52.3 us
// (unsplit), 1B 29.4 -> 24.8 (2 pieces), 0.5B 20.0 -> 16.2 (4); vk-qkv (twelfth): 8B o 24.5 ->
// 23.5 (unsplit; 25.4 split in 2), 8B tg128 +3-4% (README). decode_kpieces 1: never (the
// coalesced kernel for all plain GEMVs), 2 / 4: that split wherever it fits, on the skewed
// kernel.
constexpr int64_t kKpiecesFloats = 2048;  // = matmul.comp's XS_FLOATS
bool LonePlainSkew(const Recorder& rec, const MatmulP& q) {
  return rec.decode_skew != 0 && q.n_parts <= 1 && q.norm_x == 0 && q.xsplit <= 1 &&
         q.decode_rows >= 1;
}
int64_t PlainSteps(const Recorder& rec, const MatmulP& q) {  // a subgroup's steps along K
  return CeilDiv(q.K / 32, int64_t{rec.subgroup_size});
}
bool LongPlainSkew(const Recorder& rec, const MatmulP& q) {
  return rec.decode_kpieces == 0 && LonePlainSkew(rec, q) && PlainSteps(rec, q) >= 4;
}
int64_t KpiecesFor(const Recorder& rec, const MatmulP& q) {
  const int64_t sgs = SubgroupsPerGroup(rec);
  int64_t kp = rec.decode_kpieces;
  if (kp == 0) {
    if (!LongPlainSkew(rec, q) || PlainSteps(rec, q) < 5) return 1;
    kp = CeilDiv(q.N, int64_t{q.decode_rows}) < 512 ? 4 : 2;
  }
  kp = std::min(kp, sgs);
  if (kp < 2 || sgs % kp != 0 || !LonePlainSkew(rec, q)) return 1;
  // The partials: (sgs / kp) row blocks of up to 4 rows (matmul.comp's largest DROWS).
  const int64_t ncp = (q.K / 32 + 3) / 4 * 4;
  return (sgs / kp) * 4 * ncp <= kKpiecesFloats ? kp : 1;
}

// The module of a decode dispatch: the split GEMV where it applies (rows_per_group as
// DecodeRowsPerGroup chose), else the coalesced decode GEMV (with the RMS_NORM prologue when
// the params carry one) has its own modules; DecodeRows stays in the per-row GEMV's.
Shader DecodeShader(const Recorder& rec, const MatmulP& p, tsr_dtype wdt) {
  const bool norm = p.norm_x != 0;
  if (UsesSplit(rec, p.K, p.decode_rows)) {
    switch (wdt) {
      case TSR_DTYPE_F16: return norm ? Shader::kDecodeSplitNormF16 : Shader::kDecodeSplitF16;
      case TSR_DTYPE_BF16: return norm ? Shader::kDecodeSplitNormBf16 : Shader::kDecodeSplitBf16;
      default: return norm ? Shader::kDecodeSplitNormF32 : Shader::kDecodeSplitF32;
    }
  }
  if (!rec.decode_coalesce) return MatmulShader(wdt, false);
  // The skewed kernel where it won in vulkan_gemv_lab (H100): the dispatches with the RMS_NORM
  // prologue (vk-gemv4) and the plain ones with long K (down; LongPlainSkew, eleventh session);
  // the short plain ones (o: 56-256 workgroups) keep the coalesced kernel.
  if (rec.decode_skew != 0 &&
      (norm || rec.decode_skew_plain || LongPlainSkew(rec, p) || KpiecesFor(rec, p) > 1)) {
    switch (wdt) {
      case TSR_DTYPE_F16: return norm ? Shader::kDecodeSkewNormF16 : Shader::kDecodeSkewF16;
      case TSR_DTYPE_BF16: return norm ? Shader::kDecodeSkewNormBf16 : Shader::kDecodeSkewBf16;
      default: return norm ? Shader::kDecodeSkewNormF32 : Shader::kDecodeSkewF32;
    }
  }
  switch (wdt) {
    case TSR_DTYPE_F16: return norm ? Shader::kDecodeNormF16 : Shader::kDecodeF16;
    case TSR_DTYPE_BF16: return norm ? Shader::kDecodeNormBf16 : Shader::kDecodeBf16;
    default: return norm ? Shader::kDecodeNormF32 : Shader::kDecodeF32;
  }
}

// Recorder::decode_pref / decode_pref_groups (vk24-pref): the plain
// skewed module's decode_skew_pref twin (matmul.comp PREF_MODE; same bits) for a dispatch of
// `groups` workgroups. Only on SKEW_MODE 1 (the twin does not have SKEW_MODE 2's loads).
bool IsPrefTwin(Shader s) {
  return s == Shader::kDecodeSkewPrefF32 || s == Shader::kDecodeSkewPrefF16 ||
         s == Shader::kDecodeSkewPrefBf16;
}
Shader PrefTwin(const Recorder& rec, Shader s, uint64_t groups, int32_t kpieces) {
  if (rec.decode_skew != 1) return s;
  if (rec.decode_pref == 0 &&
      (groups > static_cast<uint64_t>(rec.decode_pref_groups) || kpieces > 1))
    return s;
  switch (s) {
    case Shader::kDecodeSkewF32: return Shader::kDecodeSkewPrefF32;
    case Shader::kDecodeSkewF16: return Shader::kDecodeSkewPrefF16;
    case Shader::kDecodeSkewBf16: return Shader::kDecodeSkewPrefBf16;
    default: return s;
  }
}

// Above this many rows the tiled GEMM (64 x 64 output tiles) is used; below, the GEMV (one
// subgroup a weight row, 8 x rows a pass) keeps more of the GPU busy. Both give the same bits,
// so the switch point is a speed choice only.
constexpr int64_t kGemmMinRows = 33;

// matmul.comp's decode path (DecodeRows: one subgroup a block of DecodeRowsPerSubgroup weight
// rows, x's chunk loaded once for all of them, lane r folding row r): one x row, 16-byte aligned
// rows, whole 32-value chunks, plain weights, a subgroup of at least that many lanes.
constexpr int32_t kVecDecode = 4;

// KpiecesFor's split on a lone plain decode GEMV on the skewed kernel: rows_per_group and the
// workgroup count for it. Leaves q alone where it does not apply.
void SplitWithinGroup(const Recorder& rec, Shader shader, MatmulP* q, uint64_t* groups) {
  const bool plain_skew = shader == Shader::kDecodeSkewF32 || shader == Shader::kDecodeSkewF16 ||
                          shader == Shader::kDecodeSkewBf16;
  const int64_t kp = KpiecesFor(rec, *q);
  if (!plain_skew || kp < 2) return;
  const int64_t sgs = SubgroupsPerGroup(rec);
  q->kpieces = static_cast<int32_t>(kp);
  q->rows_per_group = static_cast<int32_t>(sgs / kp * q->decode_rows);
  *groups = CeilDiv(q->N, int64_t{q->rows_per_group});
}

// A lone decode GEMV on the skewed kernel (no RMS_NORM prologue, one part: o, down with
// TESSERA_VULKAN_DECODE_SKEW_PLAIN=1) split across workgroups (Recorder::decode_xsplit pieces of
// K a row block; matmul.comp SplitFold), since o/down have only N / 16 workgroups. Each piece
// writes its chunk partials; the last piece of a row block folds them in chunk order, so the
// sums are the canonical ones. Multiplies *groups by the pieces and fills q's split fields;
// leaves q alone when it does not apply. A lab knob: it lost on the H100 (README vk-gemv4).
Status SplitAcrossGroups(Recorder* rec, Shader shader, MatmulP* q, uint64_t* groups) {
  // The skewed modules only: compiled into the coalesced kernel, the split path cost it 5-9%
  // even when not taken (vulkan_gemv_lab, H100), so that kernel is kept without it.
  const bool fits = shader == Shader::kDecodeSkewF32 || shader == Shader::kDecodeSkewF16 ||
                    shader == Shader::kDecodeSkewBf16;
  if (rec->decode_xsplit < 2 || !fits || q->n_parts != 1 || q->norm_x != 0 || q->decode_rows < 1)
    return OkStatus();
  const int64_t nc = q->K / 32, sg = rec->subgroup_size;
  const int64_t chunks = CeilDiv(CeilDiv(nc, rec->decode_xsplit), sg) * sg;
  const int64_t pieces = CeilDiv(nc, chunks);
  const int64_t counters = CeilDiv(q->N, q->decode_rows);
  if (pieces < 2 || counters * 4 > static_cast<int64_t>(kXsplitCounterBytes)) return OkStatus();
  const int64_t ncp = (nc + 3) / 4 * 4;
  TSR_ASSIGN_OR_RETURN(const uint64_t base,
                       rec->SplitScratch(static_cast<uint64_t>(q->N * ncp * 4)));
  q->xs_count = base;
  q->xs_part = base + kXsplitCounterBytes;
  q->xsplit = static_cast<int32_t>(pieces);
  q->xs_chunks = static_cast<int32_t>(chunks);
  *groups *= static_cast<uint64_t>(pieces);
  return OkStatus();
}

int64_t DecodeRowsPerSubgroup(tsr_dtype wdt) {
  return wdt == TSR_DTYPE_F32 ? 2 : 4;  // = matmul.comp's DROWS
}
// Weight rows a subgroup for a decode dispatch: DROWS (x's loads shared by the most rows) unless
// the recorder forces fewer (TESSERA_VULKAN_DECODE_ROWS, a lab knob). Halving it for narrow
// projections to get more workgroups was measured on the H100 (results/dec_call1_*.log): no
// change on Qwen2.5-0.5B, 263 -> 241 t/s on Llama-3.2-1B, so it is not done. Only the work split
// changes: every row is summed in the canonical order.
int32_t DecodeRowsFor(const Recorder& rec, tsr_dtype wdt, int64_t K) {
  const int64_t max_rows = DecodeRowsPerSubgroup(wdt);
  const int32_t forced =
      K >= 8192 && rec.decode_rows_longk > 0 ? rec.decode_rows_longk : rec.decode_rows;
  return static_cast<int32_t>(forced > 0 ? std::min<int64_t>(forced, max_rows) : max_rows);
}
bool UseDecodeRows(const MatmulP& p, tsr_dtype wdt, uint32_t subgroup) {
  return p.M == 1 && (p.vec & 3) == 3 && p.K % 32 == 0 &&
         (wdt == TSR_DTYPE_F32 || wdt == TSR_DTYPE_F16 || wdt == TSR_DTYPE_BF16) &&
         subgroup >= DecodeRowsPerSubgroup(wdt);
}

// matmul.comp's MultiRows (Recorder::multi): 2..32 x rows, 16-byte aligned x rows, weights as
// VecBits' bit 1 (16-byte aligned rows; q8 / q4: whole blocks on 2 bytes), K whole chunks, a lone
// MATMUL (no decode-group, residual or RMS_NORM fields), subgroups of 8..32 (its fold and x tile;
// where the driver forms others the module runs MatmulRow instead).
bool UseMultiRows(const Recorder& rec, const MatmulP& p, tsr_dtype wdt) {
  return rec.multi && p.M >= 2 && p.M < kGemmMinRows && (p.vec & 3) == 3 && p.K % 32 == 0 &&
         (wdt == TSR_DTYPE_F32 || wdt == TSR_DTYPE_F16 || wdt == TSR_DTYPE_BF16 ||
          wdt == TSR_DTYPE_Q8_B32 || wdt == TSR_DTYPE_Q4_B32) &&
         rec.subgroup_size >= 8 && rec.subgroup_size <= 32 && p.n_parts == 1 && p.res == 0 &&
         p.norm_x == 0;
}
Shader MultiShader(tsr_dtype wdt) {
  switch (wdt) {
    case TSR_DTYPE_F16: return Shader::kMultiF16;
    case TSR_DTYPE_BF16: return Shader::kMultiBf16;
    case TSR_DTYPE_Q8_B32: return Shader::kMultiQ8;
    case TSR_DTYPE_Q4_B32: return Shader::kMultiQ4;
    default: return Shader::kMultiF32;
  }
}
// MultiRows' weight rows a subgroup: DROWS (the x tile and its loads shared by the most rows:
// on the H200 the 8B's tg32x8 took 436.6 t/s with 4 on every projection, 264.0 with 2 and 148.1
// with 1; halving the rows of narrow projections (k / v) to fill the SMs with workgroups, 238.6),
// or the lab knob's.
int32_t MultiRowsFor(const Recorder& rec, tsr_dtype wdt) {
  const int64_t dr = DecodeRowsPerSubgroup(wdt);
  return static_cast<int32_t>(rec.multi_rows > 0 ? std::min<int64_t>(rec.multi_rows, dr) : dr);
}

// Recorder::lab_read (a lab bound, WRONG outputs): the decode GEMV's weights read by l2_warm.comp
// (a 32-bit word every 32-byte sector) with lab_read workgroups of 256 instead of the GEMV: the
// time a plain read of the same bytes takes as one dispatch. Its sink is word 0 of part 0's
// output (written only in the all but impossible case that the fold equals the magic).
Status LabRead(Recorder* rec, const MatmulP* parts, int n) {
  L2WarmP p;
  for (int j = 0; j < n && j < 4; ++j) {
    const uint64_t bytes = static_cast<uint64_t>(parts[j].N * parts[j].w_row);
    if (bytes < 4) continue;
    p.base[p.n] = parts[j].w & ~uint64_t{3};
    p.words[p.n] = (bytes - 4) / p.stride + 1;
    ++p.n;
  }
  p.sink = parts[0].out;
  p.magic = 0x5eed1e55u;
  return rec->Dispatch(Shader::kL2Warm, &p, sizeof(p), static_cast<uint32_t>(rec->lab_read), 1, 1);
}

// Recorder::lab_empty (a lab bound, WRONG outputs): an l2_warm.comp dispatch of one workgroup
// that loads its parameter block and returns (n = 0), recorded instead of a node's dispatch.
Status LabEmpty(Recorder* rec, uint64_t sink) {
  L2WarmP p;
  p.sink = sink;
  p.magic = 0x5eed1e55u;
  return rec->Dispatch(Shader::kL2Warm, &p, sizeof(p), 1, 1, 1);
}

Status DispatchGemv(const OpArgs& a, MatmulP p, tsr_dtype wdt) {
  if (a.rec->lab_read > 0 && p.M == 1 && UseDecodeRows(p, wdt, a.rec->subgroup_size))
    return LabRead(a.rec, &p, 1);
  constexpr int64_t kRows = 8;
  constexpr int64_t kMaxZ = 65535;
  for (int64_t m0 = 0; m0 < p.M; m0 += kMaxZ * kRows) {
    MatmulP q = p;
    q.x = p.x + m0 * p.x_row;
    q.out = p.out + m0 * p.out_row;
    q.M = std::min(kMaxZ * kRows, p.M - m0);
    // One subgroup a weight row: a 128-invocation workgroup covers 128 / subgroup rows.
    q.rows_per_group = static_cast<int32_t>(SubgroupsPerGroup(*a.rec));
    const bool multi = UseMultiRows(*a.rec, q, wdt);
    if (UseDecodeRows(q, wdt, a.rec->subgroup_size)) {
      q.vec |= kVecDecode;
      q.decode_rows = DecodeRowsFor(*a.rec, wdt, q.K);
      q.rows_per_group = DecodeRowsPerGroup(*a.rec, q.K, q.decode_rows);
    } else if (multi) {
      q.decode_rows = MultiRowsFor(*a.rec, wdt);
      q.rows_per_group = static_cast<int32_t>(SubgroupsPerGroup(*a.rec) * q.decode_rows);
    }
    uint64_t groups_n = CeilDiv(q.N, q.rows_per_group);
    const Shader shader = (q.vec & kVecDecode) != 0 ? DecodeShader(*a.rec, q, wdt)
                          : multi                   ? MultiShader(wdt)
                                                    : MatmulShader(wdt, false);
    if ((q.vec & kVecDecode) != 0) {
      TSR_RETURN_IF_ERROR(SplitAcrossGroups(a.rec, shader, &q, &groups_n));
      SplitWithinGroup(*a.rec, shader, &q, &groups_n);
    }
    const uint64_t gx = std::min<uint64_t>(groups_n, 65535), gy = CeilDiv(groups_n, gx);
    const uint64_t gz = CeilDiv(q.M, kRows);
    TSR_RETURN_IF_ERROR(a.rec->Dispatch(PrefTwin(*a.rec, shader, gx * gy * gz, q.kpieces), &q,
                                        sizeof(q), static_cast<uint32_t>(gx),
                                        static_cast<uint32_t>(gy), static_cast<uint32_t>(gz)));
    if (q.xsplit > 1) a.rec->SplitScratchUsed();
  }
  return OkStatus();
}

Status DispatchGemm(const OpArgs& a, MatmulP p, tsr_dtype wdt) {
  constexpr int64_t kTile = 64;
  constexpr int64_t kMaxRows = 65535 * kTile;
  const uint64_t gx = CeilDiv(p.N, kTile);
  if (gx > 65535) return InvalidArgument("matmul with " + std::to_string(p.N) + " output columns");
  for (int64_t m0 = 0; m0 < p.M; m0 += kMaxRows) {
    MatmulP q = p;
    q.x = p.x + m0 * p.x_row;
    q.out = p.out + m0 * p.out_row;
    q.M = std::min(kMaxRows, p.M - m0);
    TSR_RETURN_IF_ERROR(a.rec->Dispatch(MatmulShader(wdt, true), &q, sizeof(q),
                                        static_cast<uint32_t>(gx),
                                        static_cast<uint32_t>(CeilDiv(q.M, kTile)), 1));
  }
  return OkStatus();
}

// The cooperative-matrix GEMM's modules (matmul_coop.comp; CMakeLists.txt compiles each with
// these tile sizes): Recorder::coop_tile picks one, 0 the default (vk-coop2 lab, README). 17 and
// 18 are 16 and 15 with the next stage prefetched into registers (COOP_PF; vk-coop3).
struct CoopKernel {
  Shader shader;
  int64_t bm, bn;  // COOP_BM x COOP_BN output tile a workgroup
  int64_t bk;      // k values a stage: K must be a multiple
};
constexpr CoopKernel kCoopKernels[] = {
    {Shader::kGemmCoopV1, 128, 64, 32},   {Shader::kGemmCoopV2, 64, 128, 32},
    {Shader::kGemmCoopV3, 128, 128, 32},  {Shader::kGemmCoopV4, 128, 128, 32},
    {Shader::kGemmCoopV5, 64, 128, 64},   {Shader::kGemmCoopV6, 64, 64, 32},
    {Shader::kGemmCoopV7, 64, 256, 32},   {Shader::kGemmCoopV8, 64, 64, 32},
    {Shader::kGemmCoopV9, 128, 128, 32},  {Shader::kGemmCoopV10, 128, 256, 16},
    {Shader::kGemmCoopV11, 128, 128, 16}, {Shader::kGemmCoopV12, 64, 128, 32},
    {Shader::kGemmCoopV13, 128, 128, 32}, {Shader::kGemmCoopV14, 64, 128, 64},
    {Shader::kGemmCoopV15, 64, 64, 64},   {Shader::kGemmCoopV16, 64, 128, 64},
    {Shader::kGemmCoopV17, 64, 128, 64},  {Shader::kGemmCoopV18, 64, 64, 64}};
constexpr int kCoopVariants = static_cast<int>(sizeof(kCoopKernels) / sizeof(kCoopKernels[0]));
// The default choice (Recorder::coop_tile's grammar): 64 x 128 tiles of 8 subgroups with
// 64-value stages, the next stage prefetched, where that makes at least 128 workgroups (about
// one an SM on the H100), else 64 x 64 tiles of 4, prefetched (more workgroups for narrow
// projections). The fastest rule over the 8B / 1B / 0.5B prefill shapes in the vk-coop3 lab
// (H100; README); vk-coop2's was "16@128,15" (the same 64-value stages: same bits).
constexpr const char* kCoopDefault = "17@128,18";

const CoopKernel& CoopVariant(int v, int64_t K) {
  if (v == 64) v = 8;  // the name of the 64-row tile before vk-coop2
  if (v < 1 || v > kCoopVariants) v = 1;
  // A variant whose stage does not divide K gives way to variant 2 (64 x 128, 32-value stages).
  if (K % kCoopKernels[v - 1].bk != 0) v = 2;
  return kCoopKernels[v - 1];
}

// "V@T,...,V": the first variant with at least T workgroups for this MATMUL, else the last.
const CoopKernel& PickCoopKernel(const Recorder& rec, const MatmulP& p) {
  const std::string& spec = rec.coop_tile.empty() ? std::string(kCoopDefault) : rec.coop_tile;
  size_t pos = 0;
  while (true) {
    const size_t comma = spec.find(',', pos);
    const std::string item = spec.substr(pos, comma == std::string::npos ? comma : comma - pos);
    const size_t at = item.find('@');
    const CoopKernel& k = CoopVariant(std::atoi(item.c_str()), p.K);
    if (comma == std::string::npos || at == std::string::npos) return k;
    const uint64_t groups = CeilDiv(p.N, k.bn) * CeilDiv(p.M, k.bm);
    if (groups >= std::strtoull(item.c_str() + at + 1, nullptr, 10)) return k;
    pos = comma + 1;
  }
}

// The cooperative-matrix GEMM (Recorder::coop_gemm) takes bf16 weights in whole 16-row tiles
// and whole 32-value stages with 16-byte aligned rows (it copies
// stages with 16-byte loads), weights under 4 GiB (32-bit offsets in the shader); anything else
// keeps the fp32 GEMM.
// The weight side both cooperative-matrix kernels take (the GEMM and matmul_coop_gemv.comp).
bool CoopWeights(const MatmulP& p, tsr_dtype wdt) {
  return wdt == TSR_DTYPE_BF16 && p.N % 16 == 0 && p.K % 32 == 0 && p.w % 16 == 0 && p.w_row > 0 &&
         p.w_row % 16 == 0 &&
         static_cast<uint64_t>(p.N) * static_cast<uint64_t>(p.w_row) < (4ull << 30);
}

bool UseCoopGemm(const Recorder& rec, const MatmulP& p, tsr_dtype wdt) {
  return rec.coop_gemm && CoopWeights(p, wdt) && p.M >= kGemmMinRows && p.x_row >= 0 &&
         p.N <= 65535 * 64;
}

// The CoopP of rows [m0, m0 + M) of p (Mp: M padded to the kernel's row tile).
CoopP CoopRows(const MatmulP& p, int64_t m0, int64_t M, int64_t Mp) {
  CoopP q;
  q.x = p.x + m0 * p.x_row;
  q.out = p.out + m0 * p.out_row;
  q.w = p.w;
  q.bias = p.bias;
  q.M = M;
  q.K = p.K;
  q.N = p.N;
  q.Mp = Mp;
  q.Kp = p.K;  // a multiple of 32 (CoopWeights)
  q.x_row = p.x_row;
  q.w_row = p.w_row / 2;
  q.out_row = p.out_row;
  q.out_col = p.out_col;
  return q;
}

// x rows in chunks whose three bf16 planes fit kCoopScratchBytes: per chunk coop_split.comp
// writes the planes and matmul_coop.comp multiplies them (the recorder orders a node's
// dispatches, and CoopScratch orders the planes' reuse across nodes).
constexpr uint64_t kCoopScratchBytes = 64ull << 20;

Status DispatchCoopGemm(const OpArgs& a, const MatmulP& p) {
  const int64_t Kp = p.K;  // a multiple of 32 (UseCoopGemm)
  const CoopKernel& kern = PickCoopKernel(*a.rec, p);
  const int64_t tile = kern.bm;
  const int64_t fit = static_cast<int64_t>(kCoopScratchBytes / (6 * static_cast<uint64_t>(Kp)));
  const int64_t chunk = std::max<int64_t>(128, fit / 128 * 128);
  for (int64_t m0 = 0; m0 < p.M; m0 += chunk) {
    const int64_t rows = std::min(chunk, p.M - m0);
    CoopP q = CoopRows(p, m0, rows, (rows + tile - 1) / tile * tile);
    const uint64_t bytes = 6 * static_cast<uint64_t>(q.Mp) * static_cast<uint64_t>(Kp);
    TSR_ASSIGN_OR_RETURN(q.planes, a.rec->CoopScratch(bytes));
    // coop_split.comp: 4 elements an invocation.
    TSR_RETURN_IF_ERROR(Record(a, Shader::kCoopSplit, q, CeilDiv(bytes / 6, 4 * 256)));
    TSR_RETURN_IF_ERROR(a.rec->Dispatch(kern.shader, &q, sizeof(q),
                                        static_cast<uint32_t>(CeilDiv(q.N, kern.bn)),
                                        static_cast<uint32_t>(q.Mp / tile), 1));
    a.rec->CoopScratchUsed();
  }
  return OkStatus();
}

// The cooperative-matrix GEMV (matmul_coop_gemv.comp; vk-coop13): each output the bits the GEMM
// above gives its row, for MATMULs of 1..32 rows. Modules as CMakeLists.txt compiles them: the
// x rows they take, output columns a workgroup, k values a stage (the GEMM's BK for this K:
// kCoopDefault's variants take 64, CoopVariant falls back to 32).
struct CoopGemv {
  Shader shader;
  int64_t rows, bn, bk;
};
constexpr CoopGemv kCoopGemvs[] = {
    {Shader::kGemvCoopV1, 1, 16, 64},  {Shader::kGemvCoopV2, 1, 32, 64},
    {Shader::kGemvCoopV3, 1, 16, 64},  {Shader::kGemvCoopV4, 16, 16, 64},
    {Shader::kGemvCoopV5, 32, 16, 64}, {Shader::kGemvCoopV6, 1, 16, 32},
    {Shader::kGemvCoopV7, 16, 16, 32}, {Shader::kGemvCoopV8, 32, 16, 32}};

// As UseCoopGemm for 1..32 rows with the default tile rule, plus f32 x rows on 16 bytes (the
// GEMV loads x itself, 16 bytes at a time).
bool UseCoopGemv(const Recorder& rec, const MatmulP& p, tsr_dtype wdt) {
  return rec.coop_gemm && rec.coop_gemv > 0 && rec.coop_tile.empty() && CoopWeights(p, wdt) &&
         p.M >= 1 && p.M <= 32 && p.x % 16 == 0 && p.x_row % 16 == 0 && p.N <= 65535 * 16;
}

Status DispatchCoopGemv(const OpArgs& a, const MatmulP& p) {
  const int64_t bk = p.K % 64 == 0 ? 64 : 32;
  int v = p.M == 1 ? 0 : p.M <= 16 ? 3 : 4;  // kCoopGemvs index
  if (p.M == 1 && bk == 64 && (a.rec->coop_gemv == 2 || a.rec->coop_gemv == 3))
    v = a.rec->coop_gemv - 1;
  if (bk == 32) v = p.M == 1 ? 5 : p.M <= 16 ? 6 : 7;
  const CoopGemv& kern = kCoopGemvs[v];
  const CoopP q = CoopRows(p, 0, p.M, p.M);
  return a.rec->Dispatch(kern.shader, &q, sizeof(q), static_cast<uint32_t>(CeilDiv(q.N, kern.bn)),
                         1, 1);
}

Status DispatchMatmul(const OpArgs& a, MatmulP p, tsr_dtype wdt) {
  p.vec = VecBits(p, wdt);
  if (UseCoopGemm(*a.rec, p, wdt)) return DispatchCoopGemm(a, p);
  if (UseCoopGemv(*a.rec, p, wdt)) return DispatchCoopGemv(a, p);
  return p.M >= kGemmMinRows ? DispatchGemm(a, p, wdt) : DispatchGemv(a, p, wdt);
}

}  // namespace

Status RunMatmul(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  const TensorRef& out = *a.out;
  if (out.NumElements() == 0) return OkStatus();
  MatmulP base;
  base.K = w.dim(-1);
  base.N = w.dim(-2);
  base.w_row = w.stride(-2);
  base.bias = Addr(a.input(2));
  base.x_row = x.stride(-2);
  base.out_row = out.stride(-2);
  base.out_col = out.stride(-1);
  const int64_t M = x.ndim >= 2 ? x.dim(-2) : 1;
  if (w.ndim == 2 && RowsMerge(x) && RowsMerge(out)) {
    MatmulP p = base;
    p.x = Addr(x);
    p.out = Addr(out);
    p.w = Addr(w);
    p.M = x.Rows();
    if (x.ndim < 2) p.x_row = 0, p.out_row = 0;
    return DispatchMatmul(a, p, w.dtype);
  }
  const int64_t S = backend::NumMatrices(x);
  for (int64_t s = 0; s < S; ++s) {
    MatmulP p = base;
    p.x = Addr(x) + backend::MatrixOffset(x, x, s);
    p.out = Addr(out) + backend::MatrixOffset(x, out, s);
    p.w = Addr(w) + (w.ndim == 3 ? s * w.nb[0] : 0);
    p.M = M;
    TSR_RETURN_IF_ERROR(DispatchMatmul(a, p, w.dtype));
  }
  return OkStatus();
}

bool DecodeGroupPart(const OpArgs& a, MatmulP* p, tsr_dtype* wdt) {
  if (a.rec == nullptr || a.node == nullptr || a.node->op != TSR_OP_MATMUL || a.n_in < 2 ||
      a.in[0] == nullptr || a.in[1] == nullptr || a.out == nullptr)
    return false;
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  const TensorRef& out = *a.out;
  if (w.ndim != 2 || x.Rows() != 1 || out.NumElements() == 0 || !RowsMerge(x) || !RowsMerge(out))
    return false;
  MatmulP q;  // as RunMatmul's one-matrix path
  q.K = w.dim(-1);
  q.N = w.dim(-2);
  q.w_row = w.stride(-2);
  q.bias = Addr(a.input(2));
  q.x_row = x.ndim >= 2 ? x.stride(-2) : 0;
  q.out_row = out.ndim >= 2 ? out.stride(-2) : 0;
  q.out_col = out.stride(-1);
  q.x = Addr(x);
  q.out = Addr(out);
  q.w = Addr(w);
  q.M = 1;
  q.vec = VecBits(q, w.dtype);
  if (!UseDecodeRows(q, w.dtype, a.rec->subgroup_size)) return false;
  *p = q;
  *wdt = w.dtype;
  return true;
}

bool DecodeNormFusable(const Recorder& rec, int64_t K, tsr_dtype wdt) {
  return rec.decode_coalesce || UsesSplit(rec, K, DecodeRowsFor(rec, wdt, K));
}

bool DecodePairFits(const Recorder& rec, const MatmulP& p0, const MatmulP* parts, int n,
                    tsr_dtype wdt) {
  MatmulP q = p0;
  q.decode_rows = DecodeRowsFor(rec, wdt, q.K);
  q.rows_per_group = DecodeRowsPerGroup(rec, q.K, q.decode_rows);
  const Shader s = DecodeShader(rec, q, wdt);
  // Where the group would take the skewed module with the norm prologue, its paired twin
  // (matmul.comp PairedGroup, decode_skew_pair_*) runs it.
  const bool module =
      q.norm_x != 0 && (s == Shader::kDecodeSkewNormF32 || s == Shader::kDecodeSkewNormF16 ||
                        s == Shader::kDecodeSkewNormBf16);
  const int32_t hv = q.rows_per_group / 2;  // rows of each set a workgroup (sm_pair: 128)
  if (!module || q.decode_rows < 1 || q.rows_per_group > 128 || q.rows_per_group % 2 != 0 ||
      hv % q.decode_rows != 0 || (q.glu_out != 0) == (q.rope_out != 0))
    return false;
  if (q.glu_out != 0) return n == 2 && parts[1].N == q.N;
  // The q RoPE: every row of part 0 is in a rotated pair (R = D, heads of D rows), and a
  // workgroup's pairs stay within one head.
  return q.rope_R == q.rope_D && q.rope_D >= 2 && q.rope_D % 2 == 0 && q.N % q.rope_D == 0 &&
         (q.rope_R / 2) % hv == 0;
}

Status RunDecodeGroup(Recorder* rec, const MatmulP* parts, int n, tsr_dtype wdt) {
  if (n < 1 || n > kMaxDecodeGroup) return InvalidArgument("decode group of " + std::to_string(n));
  if (rec->lab_read > 0) return LabRead(rec, parts, n);
  MatmulP q = parts[0];
  q.vec |= kVecDecode;
  // As DispatchGemv: a 128-invocation workgroup, decode_rows weight rows a subgroup.
  q.decode_rows = DecodeRowsFor(*rec, wdt, q.K);
  q.rows_per_group = DecodeRowsPerGroup(*rec, q.K, q.decode_rows);
  q.n_parts = n;
  const bool glu = q.glu_out != 0;
  if ((glu || q.rope_out != 0) && !DecodePairFits(*rec, parts[0], parts, n, wdt))
    return InvalidArgument("decode group: the paired epilogue does not fit");
  // The SWIGLU epilogue: a workgroup takes rows_per_group / 2 rows of gate and of up, so the
  // up part has no workgroups of its own (matmul.comp GluGroup). The q RoPE epilogue keeps
  // part 0's workgroup count (rows_per_group rows each, paired within a head).
  uint64_t groups = CeilDiv(q.N, glu ? q.rows_per_group / 2 : q.rows_per_group);
  for (int j = 1; j < n; ++j) {
    const MatmulP& pj = parts[j];
    q.group_start[j] = static_cast<int32_t>(groups);
    q.gw[j - 1] = pj.w, q.gbias[j - 1] = pj.bias, q.gout[j - 1] = pj.out;
    q.gN[j - 1] = pj.N, q.gw_row[j - 1] = pj.w_row, q.gout_col[j - 1] = pj.out_col;
    if (!glu) groups += CeilDiv(pj.N, q.rows_per_group);
  }
  if (q.norm_x != 0 && !DecodeNormFusable(*rec, q.K, wdt))
    return InvalidArgument("the fused RMS_NORM needs the coalesced or split decode GEMV");
  Shader shader = DecodeShader(*rec, q, wdt);
  if (glu || q.rope_out != 0) {  // DecodePairFits: a skew+norm module, so its paired twin
    shader = wdt == TSR_DTYPE_F16    ? Shader::kDecodeSkewPairF16
             : wdt == TSR_DTYPE_BF16 ? Shader::kDecodeSkewPairBf16
                                     : Shader::kDecodeSkewPairF32;
  }
  TSR_RETURN_IF_ERROR(SplitAcrossGroups(rec, shader, &q, &groups));
  SplitWithinGroup(*rec, shader, &q, &groups);
  if (groups > (uint64_t{1} << 31)) return InvalidArgument("decode group too large");
  // Persistent norm-fused groups (matmul.comp NormGroups; vk-dec17): at most decode_persist
  // workgroups, each taking the indices g, g + launched, ... below ptotal. The skew+norm
  // modules never split K (xsplit / kpieces), which NormGroups does not handle.
  const bool skew_norm =
      shader == Shader::kDecodeSkewNormF32 || shader == Shader::kDecodeSkewNormF16 ||
      shader == Shader::kDecodeSkewNormBf16 || shader == Shader::kDecodeSkewPairF32 ||
      shader == Shader::kDecodeSkewPairF16 || shader == Shader::kDecodeSkewPairBf16;
  if (skew_norm && rec->decode_persist > 0 && q.xsplit <= 1 && q.kpieces <= 1 &&
      groups > static_cast<uint64_t>(rec->decode_persist)) {
    q.ptotal = static_cast<int32_t>(groups);
    groups = static_cast<uint64_t>(rec->decode_persist);
  }
  const uint64_t gx = std::min<uint64_t>(groups, 65535), gy = CeilDiv(groups, gx);
  TSR_RETURN_IF_ERROR(rec->Dispatch(PrefTwin(*rec, shader, gx * gy, q.kpieces), &q, sizeof(q),
                                    static_cast<uint32_t>(gx), static_cast<uint32_t>(gy), 1));
  if (q.xsplit > 1) rec->SplitScratchUsed();
  return OkStatus();
}

// ---- elementwise ----

namespace {

Status RunElementwise(const OpArgs& a, const TensorRef* b) {
  const TensorRef& x = *a.in[0];
  const TensorRef& out = *a.out;
  EltP p;
  p.op = a.node->op;
  p.p0 = a.fp(0);
  p.p1 = a.fp(1);
  p.a = Addr(x);
  p.b = Addr(b);
  p.out = Addr(out);
  const TensorRef* ts[3] = {&x, b, &out};
  p.walk = MakeWalk(out, ts, 3, /*outer_only=*/false);
  p.contiguous = x.IsContiguous() && out.IsContiguous() &&
                 (b == nullptr || backend::BroadcastsAsPeriod(*b, out));
  p.b_period = b != nullptr ? std::max<int64_t>(1, b->NumElements()) : 1;
  if (p.walk.numel == 0) return OkStatus();
  return Record(a, Shader::kElementwise, p, CeilDiv(p.walk.numel, 256));
}

}  // namespace

Status RunBinary(const OpArgs& a) {
  return RunElementwise(a, a.in[1]);
}
Status RunGated(const OpArgs& a) {
  return RunElementwise(a, a.in[1]);
}
Status RunUnary(const OpArgs& a) {
  return RunElementwise(a, nullptr);
}

// ---- row ops ----

namespace {

RowP RowBase(const OpArgs& a, const TensorRef* mask) {
  const TensorRef& x = *a.in[0];
  const TensorRef& out = *a.out;
  RowP p;
  p.op = a.node->op;
  p.x = Addr(x);
  p.out = Addr(out);
  p.n = x.dim(-1);
  p.sx = x.stride(-1);
  p.so = out.stride(-1);
  const TensorRef* ts[3] = {&x, &out, mask};
  p.rows = MakeWalk(x, ts, 3, /*outer_only=*/true);
  return p;
}

Status RecordRows(const OpArgs& a, const RowP& p) {
  return Record(a, Shader::kRows, p, static_cast<uint64_t>(p.rows.numel));
}

}  // namespace

Status RunNorm(const OpArgs& a) {
  if (a.out->NumElements() == 0) return OkStatus();
  const TensorRef* w = a.input(1);
  RowP p = RowBase(a, nullptr);
  p.weight = Addr(w);
  p.bias = Addr(a.input(2));
  p.eps = a.fp(0);
  p.woff = w != nullptr ? a.fp(1) : 0.0f;
  return RecordRows(a, p);
}

Status RunSoftmax(const OpArgs& a) {
  if (a.out->NumElements() == 0) return OkStatus();
  const TensorRef* mask = a.input(1);
  RowP p = RowBase(a, mask);
  p.scale = a.fp(0);
  if (mask != nullptr) {
    p.mask = Addr(*mask);
    p.sm = mask->dim(-1) == 1 ? 0 : mask->stride(-1);
  }
  return RecordRows(a, p);
}

Status RunReduce(const OpArgs& a) {
  if (a.out->NumElements() == 0) return OkStatus();
  return RecordRows(a, RowBase(a, nullptr));
}

// ARGMAX (an optional op, plugin ABI 1.3): rows.comp op 31, x [..., n] f32 -> out [..., 1] i32.
Status RunArgmax(const OpArgs& a) {
  if (a.out->NumElements() == 0) return OkStatus();
  return RecordRows(a, RowBase(a, nullptr));
}

// ---- ROPE ----

namespace {

RopeP RopeParams(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& out = *a.out;
  RopeP p;
  p.x = Addr(x);
  p.out = Addr(out);
  p.x_tok = x.nb[0], p.x_head = x.nb[1], p.x_el = x.nb[2];
  p.o_tok = out.nb[0], p.o_head = out.nb[1], p.o_el = out.nb[2];
  p.pos = Addr(a.in[1]);
  p.inv_freq = Addr(a.in[2]);
  p.T = x.ne[0], p.H = x.ne[1], p.D = x.ne[2];
  p.R = a.ip(1) == 0 ? p.D : a.ip(1);
  p.interleaved = a.ip(0) == 1;
  p.attn_scale = a.fp(0);
  return p;
}

uint64_t RopeGroups(const RopeP& p) {
  return CeilDiv(p.T * p.H * (p.R / 2 + (p.D - p.R)), 256);
}

}  // namespace

Status RunRope(const OpArgs& a) {
  const RopeP p = RopeParams(a);
  return Record(a, Shader::kRope, p, RopeGroups(p));
}

bool DecodeRopeFill(const OpArgs& rope, MatmulP* q) {
  if (rope.node == nullptr || rope.node->op != TSR_OP_ROPE || rope.n_in < 3 ||
      rope.in[0] == nullptr || rope.in[1] == nullptr || rope.in[2] == nullptr ||
      rope.out == nullptr)
    return false;
  const RopeP p = RopeParams(rope);
  // One token; its (h, d) element is q row h D + d of the contiguous f32 q output.
  if (p.T != 1 || p.interleaved != 0 || p.R != p.D || p.H * p.D != q->N || p.x != q->out ||
      q->out_col != 4 || p.x_el != 4 || p.x_head != p.D * 4 || rope.in[0]->dtype != TSR_DTYPE_F32 ||
      rope.out->dtype != TSR_DTYPE_F32 || rope.in[1]->dtype != TSR_DTYPE_I32 ||
      rope.in[2]->dtype != TSR_DTYPE_F32 || p.D > (int64_t{1} << 30))
    return false;
  q->rope_out = p.out;
  q->rope_pos = p.pos;
  q->rope_freq = p.inv_freq;
  q->rope_o_head = p.o_head;
  q->rope_o_el = p.o_el;
  q->rope_D = static_cast<int32_t>(p.D);
  q->rope_R = static_cast<int32_t>(p.R);
  q->rope_scale = p.attn_scale;
  return true;
}

// ---- attention ----

namespace {

AttnP AttnBase(const OpArgs& a) {
  const TensorRef& q = *a.in[0];
  const TensorRef& out = *a.out;
  AttnP p;
  p.q = Addr(q);
  p.q_tok = q.nb[0], p.q_head = q.nb[1];
  p.out = Addr(out);
  p.o_tok = out.nb[0], p.o_head = out.nb[1];
  p.k = Addr(a.in[1]);
  p.v = Addr(a.in[2]);
  p.kv_dtype = a.in[1]->dtype;
  p.T = q.ne[0], p.Hq = q.ne[1], p.D = q.ne[2], p.Dv = out.ne[2];
  p.scale = a.fp(0);
  p.softcap = a.fp(1);
  p.causal = a.ip(0) != 0;
  p.window = a.ip(1);
  return p;
}

// The fixed-shape modules apply: f32 K/V with D = Dv = 64 / 128 (the same kernel specialized to
// that shape; same bits).
bool FixedAttention(const Recorder& rec, const AttnP& p) {
  return rec.attn_fast && p.kv_dtype == TSR_DTYPE_F32 && p.D == p.Dv && (p.D == 64 || p.D == 128) &&
         p.D % rec.subgroup_size == 0;
}

// attention.comp for every row, or (where the device and head dims allow and some sequence may
// have two or more query rows) attention_tiled.comp for the rows of such sequences and
// attention.comp for the rest. The split is decided per sequence on the device, by that
// sequence's own q_len: a row never changes kernel because of the other sequences in the call.
// kn: a KVNEW dispatch (RunRopeKvAttention: the fixed modules' KVNEW twins, blocks
// [AttnP][KvNewP]).
Status RecordAttention(const OpArgs& a, AttnP p, const KvNewP* kn = nullptr) {
  p.route = a.rec->tiled_attention && p.T >= 2 && p.D <= kAttnTiledMaxHeadDim &&
            p.Dv <= kAttnTiledMaxHeadDim;
  if ((a.rec->lab_empty & 2) != 0) return LabEmpty(a.rec, p.out);
  // Decode-sized grids: attention_split, the same rows' bits over `parts` times the workgroups
  // (its scratch: each (query, head)'s NSG (m, l, acc[Dv]); one counter a (query, head)).
  const int64_t units = p.T * p.Hq, parts = a.rec->attn_parts;
  const bool fixed = FixedAttention(*a.rec, p);
  if (kn != nullptr && !fixed)
    return InvalidArgument("attention with a new key off the fixed modules");
  struct Blocks {  // attention.comp's KVNEW layout
    AttnP attn;
    KvNewP kn;
  };
  const auto record = [&](Shader shader, uint64_t groups) {
    if (kn == nullptr) return Record(a, shader, p, groups);
    return Record(a, shader, Blocks{p, *kn}, groups);
  };
  if (parts > 1 && units * parts <= a.rec->attn_split_groups &&
      units * 4 <= static_cast<int64_t>(kXsplitCounterBytes)) {
    TSR_ASSIGN_OR_RETURN(
        const uint64_t base,
        a.rec->SplitScratch(static_cast<uint64_t>(units * a.rec->attn_nsg * (p.Dv + 2) * 4)));
    p.count = base;
    p.part = base + kXsplitCounterBytes;
    const Shader split = !fixed          ? Shader::kAttentionSplit
                         : kn != nullptr ? (p.D == 64 ? Shader::kAttentionSplitKvNewF32D64
                                                      : Shader::kAttentionSplitKvNewF32D128)
                         : p.D == 64     ? Shader::kAttentionSplitF32D64
                                         : Shader::kAttentionSplitF32D128;
    TSR_RETURN_IF_ERROR(record(split, static_cast<uint64_t>(units * parts)));
    a.rec->SplitScratchUsed();
  } else {
    const Shader one = !fixed          ? Shader::kAttention
                       : kn != nullptr ? (p.D == 64 ? Shader::kAttentionKvNewF32D64
                                                    : Shader::kAttentionKvNewF32D128)
                       : p.D == 64     ? Shader::kAttentionF32D64
                                       : Shader::kAttentionF32D128;
    TSR_RETURN_IF_ERROR(record(one, static_cast<uint64_t>(units)));
  }
  if (p.route == 0) return OkStatus();
  // Tiles over the sequences with q_len >= 2: at most T / BQ full ones plus one partial each.
  const uint64_t tiles = CeilDiv(static_cast<uint64_t>(p.T), kAttnTiledRows) +
                         static_cast<uint64_t>(std::min(p.S, p.T / 2));
  return Record(a, Shader::kAttentionTiled, p, tiles * static_cast<uint64_t>(p.Hq));
}

AttnP PagedAttnParams(const OpArgs& a) {
  const TensorRef& k = *a.in[1];
  const TensorRef& v = *a.in[2];
  const TensorRef& table = *a.in[3];
  AttnP p = AttnBase(a);
  p.paged = 1;
  p.k_block = k.nb[0], p.k_tok = k.nb[1], p.k_head = k.nb[2];
  p.v_block = v.nb[0], p.v_tok = v.nb[1], p.v_head = v.nb[2];
  p.Hkv = k.ne[2];
  p.n_blocks = k.ne[0];
  p.block_size = k.ne[1];
  p.table = Addr(table);
  p.table_row = table.nb[0] / 4;
  p.max_blocks = table.ne[1];
  p.kv_lens = Addr(a.in[4]);
  p.cu_q = Addr(a.in[5]);
  p.S = table.ne[0];
  return p;
}

}  // namespace

Status RunAttention(const OpArgs& a) {
  const TensorRef& k = *a.in[1];
  const TensorRef& v = *a.in[2];
  AttnP p = AttnBase(a);
  p.k_tok = k.nb[0], p.k_head = k.nb[1];
  p.v_tok = v.nb[0], p.v_head = v.nb[1];
  p.Hkv = k.ne[1];
  p.n_kv_rows = k.ne[0];
  p.cu_q = Addr(a.in[3]);
  p.cu_k = Addr(a.in[4]);
  p.S = a.in[3]->ne[0] - 1;
  return RecordAttention(a, p);
}

Status RunPagedAttention(const OpArgs& a) {
  return RecordAttention(a, PagedAttnParams(a));
}

// ---- data movement ----

namespace {

// Element i of `in` (its own row-major order) to element i of `out` (its order), converting.
Status Convert(const OpArgs& a, const TensorRef& in, const TensorRef& out) {
  ConvertP p;
  p.in = Addr(in);
  p.out = Addr(out);
  p.in_dtype = in.dtype;
  p.out_dtype = out.dtype;
  p.numel = out.NumElements();
  p.win = OwnWalk(in);
  p.wout = OwnWalk(out);
  if (p.numel == 0) return OkStatus();
  return Record(a, Shader::kConvert, p, CeilDiv(p.numel, 256));
}

// As RunKvWrite after the carry-over copy: the rows go to the output cache in place.
KvWriteP KvWriteParams(const OpArgs& a) {
  const TensorRef& cache = *a.in[0];
  const TensorRef& rows = *a.in[1];
  const TensorRef& out = *a.out;
  KvWriteP p;
  p.cache = Addr(out);
  p.dtype = out.dtype;
  p.c_block = out.nb[0], p.c_slot = out.nb[1], p.c_head = out.nb[2], p.c_el = out.nb[3];
  p.rows = Addr(rows);
  p.r_tok = rows.nb[0], p.r_head = rows.nb[1], p.r_el = rows.nb[2];
  p.slots = Addr(a.in[2]);
  p.T = rows.ne[0], p.H = rows.ne[1], p.D = rows.ne[2];
  p.block_size = cache.ne[1];
  p.n_slots = cache.ne[0] * cache.ne[1];
  return p;
}

uint64_t KvWriteGroups(const KvWriteP& p) {
  return CeilDiv(p.T * p.H * p.D, 256);
}

}  // namespace

Status RunKvWrite(const OpArgs& a) {
  const TensorRef& cache = *a.in[0];
  const TensorRef& out = *a.out;
  if (out.data != cache.data) {  // not aliased: carry the cache over first
    if (!out.IsContiguous() || !cache.IsContiguous())
      return InvalidArgument("output must alias the cache (or both be contiguous)");
    TSR_RETURN_IF_ERROR(Convert(a, cache, out));
  }
  const KvWriteP p = KvWriteParams(a);
  return Record(a, Shader::kKvWrite, p, KvWriteGroups(p));
}

namespace {

// Both parameter blocks of a pair dispatch, back to back (the shaders' PairParams).
template <typename P>
Status RecordPair(const OpArgs& a, Shader s, P p0, const P& p1, uint64_t g0, uint64_t g1) {
  if (g0 == 0 || g1 == 0 || g0 > (uint64_t{1} << 30) || g1 > (uint64_t{1} << 30))
    return InvalidArgument("pair dispatch of " + std::to_string(g0) + " + " + std::to_string(g1));
  p0.pair_groups = static_cast<int32_t>(g0);
  P both[2] = {p0, p1};
  both[1].pair_groups = 0;
  return a.rec->Dispatch1D(s, both, sizeof(both), g0 + g1);
}

}  // namespace

bool PairableOps(const OpArgs& a, const OpArgs& b) {
  if (a.node == nullptr || b.node == nullptr || a.node->op != b.node->op || a.out == nullptr ||
      b.out == nullptr)
    return false;
  if (a.node->op == TSR_OP_ROPE)
    return RopeGroups(RopeParams(a)) > 0 && RopeGroups(RopeParams(b)) > 0;
  if (a.node->op != TSR_OP_KV_WRITE) return false;
  // In place only (no carry-over copy), and something to write.
  return a.out->data == a.in[0]->data && b.out->data == b.in[0]->data &&
         KvWriteGroups(KvWriteParams(a)) > 0 && KvWriteGroups(KvWriteParams(b)) > 0;
}

Status RunPair(const OpArgs& a, const OpArgs& b) {
  if (!PairableOps(a, b)) return InvalidArgument("nodes cannot run as a pair");
  if (a.node->op == TSR_OP_ROPE) {
    const RopeP p0 = RopeParams(a), p1 = RopeParams(b);
    return RecordPair(a, Shader::kRope, p0, p1, RopeGroups(p0), RopeGroups(p1));
  }
  const KvWriteP p0 = KvWriteParams(a), p1 = KvWriteParams(b);
  return RecordPair(a, Shader::kKvWrite, p0, p1, KvWriteGroups(p0), KvWriteGroups(p1));
}

bool RopeKvFusable(const OpArgs& rope, const OpArgs& kv, const OpArgs* kv2) {
  if (rope.node == nullptr || kv.node == nullptr || rope.node->op != TSR_OP_ROPE ||
      rope.out == nullptr || kv.node->n_inputs < 2 || kv.node->inputs[1] != rope.node->output ||
      !PairableOps(kv, kv2 != nullptr ? *kv2 : kv))
    return false;
  const RopeP p = RopeParams(rope);
  const KvWriteP k = KvWriteParams(kv);
  // The KV_WRITE's row element (t, h, d) is the RoPE's output element (t, h, d).
  return RopeGroups(p) > 0 && k.rows == p.out && k.T == p.T && k.H == p.H && k.D == p.D &&
         k.r_tok == p.o_tok && k.r_head == p.o_head && k.r_el == p.o_el;
}

Status RunRopeKv(const OpArgs& rope, const OpArgs& kv, const OpArgs* kv2) {
  if (!RopeKvFusable(rope, kv, kv2)) return InvalidArgument("nodes cannot run as RoPE + KV_WRITE");
  struct Blocks {  // rope.comp's layout: [RopeP][KvWriteP k][KvWriteP v]
    RopeP rope;
    KvWriteP k, v;
  } b;
  static_assert(sizeof(Blocks) == 3 * 136, "rope.comp reads the blocks back to back");
  b.rope = RopeParams(rope);
  b.k = KvWriteParams(kv);
  if (kv2 != nullptr) b.v = KvWriteParams(*kv2);
  const uint64_t g0 = RopeGroups(b.rope), g1 = kv2 != nullptr ? KvWriteGroups(b.v) : 0;
  if (g0 > (uint64_t{1} << 30) || g1 > (uint64_t{1} << 30))
    return InvalidArgument("RoPE + KV_WRITE dispatch of " + std::to_string(g0 + g1));
  b.rope.kv_fused = 1;
  b.rope.pair_groups = static_cast<int32_t>(g0);
  if ((rope.rec->lab_empty & 1) != 0) return LabEmpty(rope.rec, b.k.cache);
  // rope.comp's KVF32 module: f32 caches and every index of its 32-bit math in range (the same
  // bits as the generic module).
  constexpr int64_t kMax = int64_t{1} << 30;
  const KvWriteP& v = kv2 != nullptr ? b.v : b.k;
  const bool fast = rope.rec->rope_fast && b.k.dtype == TSR_DTYPE_F32 && v.dtype == TSR_DTYPE_F32 &&
                    b.rope.T <= kMax && b.rope.H <= kMax && b.rope.D <= kMax &&
                    b.rope.T * b.rope.H * b.rope.D <= kMax && v.T * v.H * v.D <= kMax &&
                    v.H <= kMax && v.D <= kMax && v.T <= kMax && b.k.n_slots < kMax &&
                    v.n_slots < kMax && b.k.block_size >= 1 && b.k.block_size <= kMax &&
                    v.block_size >= 1 && v.block_size <= kMax;
  return rope.rec->Dispatch1D(fast ? Shader::kRopeKvF32 : Shader::kRope, &b, sizeof(b), g0 + g1);
}

bool RopeKvAttentionFusable(const OpArgs& rope, const OpArgs& kvk, const OpArgs& kvv,
                            const OpArgs& attn) {
  if (attn.node == nullptr || attn.node->op != TSR_OP_PAGED_ATTENTION || attn.n_in < 6 ||
      kvk.node == nullptr || kvv.node == nullptr || kvv.node->n_inputs < 3 ||
      attn.node->inputs[1] != kvk.node->output || attn.node->inputs[2] != kvv.node->output ||
      !RopeKvFusable(rope, kvk, &kvv))
    return false;
  const AttnP p = PagedAttnParams(attn);
  const RopeP r = RopeParams(rope);
  const KvWriteP k = KvWriteParams(kvk), v = KvWriteParams(kvv);
  const Recorder& rec = *attn.rec;
  // One query row of one sequence (its newest key is its own token's); the fixed modules, with a
  // lane's dims in neox pairs (dims i and i + PER / 2: D a multiple of twice the subgroup).
  const bool shape = p.T == 1 && p.S == 1 && FixedAttention(rec, p) &&
                     p.D % (2 * rec.subgroup_size) == 0 && p.Hkv > 0 && p.Hq % p.Hkv == 0;
  // The RoPE: neox pairs over all D dims, contiguous dims, row 0 of its input.
  const bool rope_ok = r.T == 1 && r.interleaved == 0 && r.R == r.D && r.D == p.D && r.H == p.Hkv &&
                       r.x_el == 4 && r.o_el == 4;
  // The KV_WRITEs write the caches the attention reads, f32, in its layout, at one slot.
  const auto same_cache = [&](const KvWriteP& w, uint64_t cache, int64_t c_block, int64_t c_slot,
                              int64_t c_head) {
    return w.dtype == TSR_DTYPE_F32 && w.cache == cache && w.c_block == c_block &&
           w.c_slot == c_slot && w.c_head == c_head && w.c_el == 4 && w.T == 1 && w.H == p.Hkv &&
           w.D == p.D && w.block_size == p.block_size;
  };
  const bool kv_ok = same_cache(k, p.k, p.k_block, p.k_tok, p.k_head) &&
                     same_cache(v, p.v, p.v_block, p.v_tok, p.v_head) && v.r_el == 4 &&
                     k.slots == v.slots && k.n_slots == v.n_slots;
  return shape && rope_ok && kv_ok;
}

Status RunRopeKvAttention(const OpArgs& rope, const OpArgs& kvk, const OpArgs& kvv,
                          const OpArgs& attn, bool rope_out) {
  if (!RopeKvAttentionFusable(rope, kvk, kvv, attn))
    return InvalidArgument("nodes cannot run as RoPE + KV_WRITE + attention");
  const RopeP r = RopeParams(rope);
  const KvWriteP k = KvWriteParams(kvk), v = KvWriteParams(kvv);
  KvNewP n;
  n.x = r.x;
  n.rope_out = rope_out ? r.out : 0;
  n.pos = r.pos;
  n.inv_freq = r.inv_freq;
  n.slots = k.slots;
  n.vrows = v.rows;
  n.x_head = r.x_head;
  n.o_head = r.o_head;
  n.v_head = v.r_head;
  n.n_slots = k.n_slots;
  n.attn_scale = r.attn_scale;
  return RecordAttention(attn, PagedAttnParams(attn), &n);
}

Status RunGetRows(const OpArgs& a) {
  const TensorRef& table = *a.in[0];
  const TensorRef& ids = *a.in[1];
  const TensorRef& out = *a.out;
  GetRowsP p;
  p.table = Addr(table);
  p.dtype = table.dtype;
  p.row_bytes = table.nb[0];
  p.el_bytes = IsQuantized(table.dtype) ? 0 : table.nb[1];
  p.ids = Addr(ids);
  p.id_stride = ids.nb[0];
  p.out = Addr(out);
  p.o_row = out.nb[0], p.o_el = out.nb[1];
  p.T = ids.ne[0], p.V = table.ne[0], p.D = table.ne[1];
  if (p.T * p.D == 0) return OkStatus();
  return Record(a, Shader::kGetRows, p, CeilDiv(p.T * p.D, 256));
}

Status RunCopy(const OpArgs& a) {
  const TensorRef& in = *a.in[0];
  const TensorRef& out = *a.out;
  if (out.NumElements() == 0) return OkStatus();
  if (IsQuantized(in.dtype) || IsQuantized(out.dtype)) {
    QuantP p;
    p.in = Addr(in);
    p.out = Addr(out);
    p.in_dtype = in.dtype;
    p.out_dtype = out.dtype;
    p.n = out.dim(-1);
    const TensorRef* ts[3] = {&in, nullptr, &out};
    p.walk = MakeWalk(out, ts, 3, /*outer_only=*/true);
    p.rows = p.walk.numel;
    p.in_el = IsQuantized(in.dtype) ? 0 : in.stride(-1);
    p.out_el = IsQuantized(out.dtype) ? 0 : out.stride(-1);
    const bool quantize = IsQuantized(out.dtype);
    const int64_t units = quantize ? p.rows * (p.n / TSR_QBLOCK) : p.rows * p.n;
    if (units == 0) return OkStatus();
    return Record(a, Shader::kQuant, p, CeilDiv(units, 256));
  }
  return Convert(a, in, out);
}

Status RunConcat(const OpArgs& a) {
  TensorRef first, second;  // the output's sub-views that receive in0 and in1
  backend::ConcatParts(a, &first, &second);
  if (a.in[0]->NumElements() > 0) TSR_RETURN_IF_ERROR(Convert(a, *a.in[0], first));
  if (a.in[1]->NumElements() > 0) TSR_RETURN_IF_ERROR(Convert(a, *a.in[1], second));
  return OkStatus();
}

// ---- convolutions ----

Status RunConv(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  const TensorRef& out = *a.out;
  backend::ConvGeometry g;
  if (std::string e = backend::ConvGeometryFor(a, &g); !e.empty())
    return InvalidArgument(std::move(e));
  ConvP p;
  p.B = g.B, p.Cin = g.Cin, p.H = g.H, p.W = g.W, p.Cout = g.Cout;
  p.KH = g.KH, p.KW = g.KW, p.Ho = g.Ho, p.Wo = g.Wo;
  p.sh = g.sh, p.sw = g.sw, p.ph = g.ph, p.pw = g.pw, p.dh = g.dh, p.dw = g.dw;
  p.groups = g.groups;
  const bool is2d = a.node->op == TSR_OP_CONV2D;
  p.x = Addr(x);
  p.xs[0] = x.nb[0], p.xs[1] = x.nb[1];
  p.xs[2] = is2d ? x.nb[2] : 0, p.xs[3] = x.nb[x.ndim - 1];
  p.os[0] = out.nb[0], p.os[1] = out.nb[1];
  p.os[2] = is2d ? out.nb[2] : 0, p.os[3] = out.nb[out.ndim - 1];
  p.out = Addr(out);
  p.w = Addr(w);
  p.w_dtype = w.dtype;
  const int64_t kdim = p.Cin / p.groups * p.KH * p.KW;
  p.w_row_bytes =
      IsQuantized(w.dtype) ? kdim / TSR_QBLOCK * BlockBytes(w.dtype) : kdim * DtypeSize(w.dtype);
  p.bias = Addr(a.input(2));
  const int64_t total = p.B * p.Cout * p.Ho * p.Wo;
  if (total == 0) return OkStatus();
  return Record(a, Shader::kConv, p, CeilDiv(total, 128));
}

// ---- registry and validation ----

TESSERA_BACKEND_DEFINE_FIND_RUNNER_WITH(OpFn, TESSERA_BACKEND_OP_ARGMAX)

Status ValidateOp(const OpArgs& a) {
  bool unsupported = false;
  std::string e = backend::ValidateKernelNode(
      a, {kAttnMaxHeadDim, kAttnMaxHeadDim, "vulkan attention"}, &unsupported);
  if (e.empty()) return OkStatus();
  return unsupported ? Unsupported(std::move(e)) : InvalidArgument(std::move(e));
}

int PrefModeOf(const Recorder& rec, Shader s) {
  if (!IsPrefTwin(s)) return 0;
  return rec.decode_pref > 0 ? rec.decode_pref & 15 : 10;
}

}  // namespace tessera::vulkan
