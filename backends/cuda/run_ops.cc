// Runners: turn a validated node into launch parameters (launch.h) and enqueue its kernels on
// the device's stream. No runner synchronizes; data-dependent errors surface through the device
// error word (plugin.cc).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "backends/cuda/gemm_wgmma.h"
#include "backends/cuda/k_argmax.h"
#include "backends/cuda/ops.h"
#include "tessera/backend/validate.h"

namespace tessera::cuda {
namespace {

const TensorRef* const kNoTensor = nullptr;

// ---- MATMUL ----

// Rows of a [..., M, K] tensor that can be addressed as one [S * M, K] matrix with a single row
// stride (the leading dims nest exactly over the row dim).
bool RowsMerge(const TensorRef& t) {
  if (t.ndim <= 2) return true;
  int64_t expect = t.nb[t.ndim - 2] * t.ne[t.ndim - 2];
  for (int d = t.ndim - 3; d >= 0; --d) {
    if (t.ne[d] > 1 && t.nb[d] != expect) return false;
    expect *= t.ne[d];
  }
  return true;
}

// Whether [begin, end) overlaps memory a node of the current execute writes.
bool WrittenInExecute(const RunContext& ctx, const uint8_t* begin, const uint8_t* end) {
  for (const auto& [b, e] : ctx.writes)
    if (begin < e && b < end) return true;
  return false;
}

// Rows of one prefill GEMM launch: they bound the split-activation scratch (terms x rows x K bf16).
int64_t GemmRowBlock(int64_t K) {
  return std::max<int64_t>(64, (int64_t{256} << 20) / (6 * K) / 64 * 64);
}

// One [M, K] x [N, K]^T problem on the fastest path its weight allows. The path depends on the
// weight only (plus M <= 8 between the two bf16 kernels, which share one reduction order), so a
// row's result never depends on M.
Status DispatchMatmul(MatmulParams p, RunContext* ctx) {
  if (!Bf16FastPathEligible(p)) {
    constexpr int64_t kMaxRows = 65535 * 8;
    for (int64_t m0 = 0; m0 < p.M; m0 += kMaxRows) {
      MatmulParams q = p;
      q.x = p.x + m0 * p.x_row;
      q.out = p.out + m0 * p.out_row;
      q.M = std::min(kMaxRows, p.M - m0);
      TSR_RETURN_IF_ERROR(CudaStatus(LaunchMatmulGeneric(q, ctx->stream), "matmul (generic)"));
    }
    return OkStatus();
  }
  if (p.M <= kGemvMaxRows) {
    if (!GemvIsStream(ctx->gemv) || GemvStreamEligible(p, ctx->gemv))
      return RunGemvGroup(ctx, p, GemvGroupOf(p));
    return CudaStatus(LaunchGemvBf16(p, ctx->matmul_terms, ctx->stream), "matmul (bf16 gemv)");
  }
  const int64_t max_rows = GemmRowBlock(p.K);
  for (int64_t m0 = 0; m0 < p.M; m0 += max_rows) {
    MatmulParams q = p;
    q.x = p.x + m0 * p.x_row;
    q.out = p.out + m0 * p.out_row;
    q.M = std::min(max_rows, p.M - m0);
    TSR_ASSIGN_OR_RETURN(void* planes,
                         ctx->scratch->Get(SplitPlaneBytes(q, ctx->matmul_terms), ctx->stream));
    TSR_RETURN_IF_ERROR(CudaStatus(
        LaunchGemmBf16(q, ctx->matmul_terms, static_cast<uint16_t*>(planes), ctx->stream),
        "matmul (bf16 gemm)"));
  }
  return OkStatus();
}

}  // namespace

namespace {

// The MATMUL node `a` as one bf16 problem of at most max_rows rows (GemvCandidate's rules); past
// kGemmRmsMaxRows (prefill) only with fuse_prefill and in one DispatchMatmul row block.
bool MatmulCandidate(const OpArgs& a, int64_t max_rows, MatmulParams* p) {
  if (a.node == nullptr || a.node->op != TSR_OP_MATMUL || a.ctx == nullptr || a.n_in < 2 ||
      a.in[0] == nullptr || a.in[1] == nullptr || a.out == nullptr)
    return false;
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  const TensorRef& out = *a.out;
  const TensorRef* bias = a.input(2);
  if (w.ndim != 2 || x.dtype != TSR_DTYPE_F32 || out.dtype != TSR_DTYPE_F32 || !RowsMerge(x) ||
      !RowsMerge(out) || out.NumElements() == 0)
    return false;
  MatmulParams q;
  q.K = w.dim(-1);
  q.N = w.dim(-2);
  q.w = w.data;
  q.w_row_bytes = w.stride(-2);
  q.w_dtype = w.dtype;
  q.bias = bias != nullptr ? bias->As<const float>() : nullptr;
  q.x = x.As<const float>();
  q.x_row = x.ndim >= 2 ? x.stride(-2) / 4 : 0;
  q.out = out.As<float>();
  q.out_row = out.ndim >= 2 ? out.stride(-2) / 4 : 0;
  q.out_col = out.stride(-1) / 4;
  q.M = x.Rows();
  if (!Bf16FastPathEligible(q) || q.M > max_rows) return false;
  if (q.M > kGemmRmsMaxRows && (!a.ctx->fuse_prefill || q.M > GemmRowBlock(q.K))) return false;
  if (q.M <= kGemvMaxRows && GemvIsStream(a.ctx->gemv) && !GemvStreamEligible(q, a.ctx->gemv))
    return false;
  *p = q;
  return true;
}

}  // namespace

bool GemvCandidate(const OpArgs& a, MatmulParams* p) {
  return MatmulCandidate(a, kGemvMaxRows, p);
}

bool GemmRmsCandidate(const OpArgs& a, MatmulParams* p) {
  return MatmulCandidate(a, kGemmFuseMaxRows, p) && p->M > kGemvMaxRows &&
         GemmRmsFusable(*p, a.ctx->matmul_terms);
}

bool GemmMemberCandidate(const OpArgs& a, MatmulParams* p) {
  return MatmulCandidate(a, kGemmFuseMaxRows, p) && p->M > kGemvMaxRows &&
         (GemmSharesSplit(*p, a.ctx->matmul_terms) || GemmGroupMember(*p, a.ctx->matmul_terms));
}

bool GemmMembersRunnable(const MatmulParams* ps, int n, int terms) {
  bool share = true;
  for (int j = 0; j < n; ++j) share = share && GemmSharesSplit(ps[j], terms);
  return share || GemmGroupFits(ps, n, terms);
}

bool GemmFusedCandidate(const OpArgs& a, int pro_kind, bool residual, MatmulParams* p) {
  return MatmulCandidate(a, kGemmFuseMaxRows, p) && p->M > kGemvMaxRows &&
         GemmFusable(*p, a.ctx->matmul_terms, pro_kind, residual);
}

namespace {

// A decode-sized f32 [rows, n] operand of a fused prologue: rows addressable with one row stride,
// unit element stride. Fills *row (elements).
bool ProOperand(const TensorRef& t, const TensorRef& like, int64_t* row) {
  if (t.dtype != TSR_DTYPE_F32 || !SameShape(t, like) || t.stride(-1) != 4 || !RowsMerge(t))
    return false;
  *row = t.ndim >= 2 ? t.stride(-2) / 4 : 0;
  return true;
}

}  // namespace

bool GemvPrologueCandidate(const OpArgs& a, GemvPrologue* pro, MatmulParams* in, int64_t max_rows) {
  if (a.node == nullptr || a.ctx == nullptr || a.out == nullptr || a.n_in < 1 || a.in[0] == nullptr)
    return false;
  const TensorRef& x = *a.in[0];
  const TensorRef& out = *a.out;
  GemvPrologue q;
  MatmulParams m;
  if (x.ndim < 1 || out.NumElements() == 0 || !ProOperand(x, out, &m.x_row) ||
      !ProOperand(out, out, &q.y_row))
    return false;
  m.x = x.As<const float>();
  m.K = x.dim(-1);
  m.M = x.Rows();
  if (m.M > max_rows || (m.M <= kGemvMaxRows && !GemvPrologueFits(m.M, m.K))) return false;
  q.y = out.As<float>();
  if (a.node->op == TSR_OP_RMS_NORM) {
    const TensorRef* w = a.input(1);
    if (w != nullptr &&
        (w->dtype != TSR_DTYPE_F32 || w->ndim != 1 || w->dim(0) != m.K || w->stride(0) != 4))
      return false;
    q.kind = kGemvProRms;
    q.weight = w != nullptr ? w->As<const float>() : nullptr;
    q.eps = a.fp(0);
    q.woff = w != nullptr ? a.fp(1) : 0.0f;  // as RunNorm: the offset applies to a weight only
  } else if (a.node->op == TSR_OP_SWIGLU) {
    if (a.n_in < 2 || a.in[1] == nullptr || !ProOperand(*a.in[1], out, &q.b_row)) return false;
    q.kind = kGemvProSwiglu;
    q.b = a.in[1]->As<const float>();
  } else {
    return false;
  }
  *pro = q;
  *in = m;
  return true;
}

Status RunGemvGroup(RunContext* ctx, const MatmulParams& p, const GemvGroup& grp,
                    const GemvPrologue& pro) {
  GemvAux aux = ctx->gemv;
  for (int j = 0; j < grp.n; ++j) {
    const GemvOut& o = grp.o[j];
    if (WrittenInExecute(*ctx, o.w, o.w + o.N * o.w_row_bytes)) aux.pdl = false;
  }
  // The RMS_NORM prologue's weight may be loaded before the PDL wait too (cu23-small).
  if (pro.kind == kGemvProRms && pro.weight != nullptr && p.K > 0) {
    const auto* nw = reinterpret_cast<const uint8_t*>(pro.weight);
    if (WrittenInExecute(*ctx, nw, nw + p.K * 4)) aux.pdl = false;
  }
  const uint64_t bytes =
      GemvIsStream(aux) ? GemvPartialBytes(p, grp) : GemvSplitPartialBytes(p, grp, aux);
  if (bytes > 0) {
    TSR_ASSIGN_OR_RETURN(void* part, ctx->scratch->Get(bytes, ctx->stream));
    aux.partials = static_cast<float*>(part);
  }
  return CudaStatus(LaunchGemvBf16Fused(p, grp, pro, ctx->matmul_terms, aux, ctx->stream),
                    "matmul (bf16 gemv)");
}

Status RunGemmRms(RunContext* ctx, const MatmulParams& p, const GemvPrologue& pro) {
  TSR_ASSIGN_OR_RETURN(void* planes,
                       ctx->scratch->Get(SplitPlaneBytes(p, ctx->matmul_terms), ctx->stream));
  return CudaStatus(
      LaunchGemmBf16Rms(p, pro, ctx->matmul_terms, static_cast<uint16_t*>(planes), ctx->stream),
      "matmul (bf16 gemm, RMS_NORM)");
}

Status RunGemmMembers(RunContext* ctx, const MatmulParams* ps, int n, const GemvPrologue& pro) {
  // The planes, then the largest member's chunk sums (every member's when grouped).
  const uint64_t bytes = GemmMembersScratchBytes(ps, n, ctx->matmul_terms);
  TSR_ASSIGN_OR_RETURN(void* planes, ctx->scratch->Get(bytes, ctx->stream));
  return CudaStatus(LaunchGemmBf16Members(ps, n, pro, ctx->matmul_terms,
                                          static_cast<uint16_t*>(planes), ctx->stream),
                    "matmul (bf16 gemm, shared split)");
}

Status RunGemmFused(RunContext* ctx, const MatmulParams& p, const GemvPrologue& pro) {
  TSR_ASSIGN_OR_RETURN(void* planes,
                       ctx->scratch->Get(SplitPlaneBytes(p, ctx->matmul_terms), ctx->stream));
  return CudaStatus(
      LaunchGemmBf16Fused(p, pro, ctx->matmul_terms, static_cast<uint16_t*>(planes), ctx->stream),
      "matmul (bf16 gemm, fused)");
}

Status RunMatmul(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  const TensorRef& out = *a.out;
  const TensorRef* bias = a.input(2);
  if (out.NumElements() == 0) return OkStatus();
  MatmulParams base;
  base.K = w.dim(-1);
  base.N = w.dim(-2);
  base.w_row_bytes = w.stride(-2);
  base.w_dtype = w.dtype;
  base.bias = bias != nullptr ? bias->As<const float>() : nullptr;
  base.x_row = x.stride(-2) / 4;
  base.out_row = out.stride(-2) / 4;
  base.out_col = out.stride(-1) / 4;
  const int64_t M = x.ndim >= 2 ? x.dim(-2) : 1;
  if (w.ndim == 2 && RowsMerge(x) && RowsMerge(out)) {  // every slice in one problem
    MatmulParams p = base;
    p.x = x.As<const float>();
    p.out = out.As<float>();
    p.w = w.data;
    p.M = x.Rows();
    if (x.ndim < 2) p.x_row = 0, p.out_row = 0;
    return DispatchMatmul(p, a.ctx);
  }
  const int64_t S = backend::NumMatrices(x);
  for (int64_t s = 0; s < S; ++s) {
    MatmulParams p = base;
    p.x = reinterpret_cast<const float*>(x.data + backend::MatrixOffset(x, x, s));
    p.out = reinterpret_cast<float*>(out.data + backend::MatrixOffset(x, out, s));
    p.w = w.data + (w.ndim == 3 ? s * w.nb[0] : 0);
    p.M = M;
    TSR_RETURN_IF_ERROR(DispatchMatmul(p, a.ctx));
  }
  return OkStatus();
}

// ---- elementwise ----

namespace {

Status RunElementwise(const OpArgs& a, const TensorRef* b) {
  const TensorRef& x = *a.in[0];
  const TensorRef& out = *a.out;
  EltParams p;
  p.op = a.node->op;
  p.p0 = a.fp(0);
  p.p1 = a.fp(1);
  p.a = x.data;
  p.b = b != nullptr ? b->data : nullptr;
  p.out = out.data;
  const TensorRef* ts[3] = {&x, b, &out};
  p.walk = MakeWalk(out, ts, 3, /*outer_only=*/false);
  p.contiguous = x.IsContiguous() && out.IsContiguous() &&
                 (b == nullptr || backend::BroadcastsAsPeriod(*b, out));
  p.b_period = b != nullptr ? std::max<int64_t>(1, b->NumElements()) : 1;
  return CudaStatus(LaunchElementwise(p, a.ctx->stream), OpName(a.node->op));
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

// The row walk every row op shares: x [..., n] -> out [..., n] (or [..., 1] for reductions),
// with an optional broadcast mask walked alongside.
RowParams RowBase(const OpArgs& a, const TensorRef* mask) {
  const TensorRef& x = *a.in[0];
  const TensorRef& out = *a.out;
  RowParams p;
  p.op = a.node->op;
  p.x = x.data;
  p.out = out.data;
  p.n = x.dim(-1);
  p.sx = x.stride(-1) / 4;
  p.so = out.stride(-1) / 4;
  const TensorRef* ts[3] = {&x, &out, mask};
  p.rows = MakeWalk(x, ts, 3, /*outer_only=*/true);
  return p;
}

Status RunRows(const OpArgs& a, const TensorRef* mask) {
  RowParams p = RowBase(a, mask);
  p.scale = a.fp(0);  // SOFTMAX's logit scale (unused by the reductions)
  if (mask != nullptr) {
    p.mask = mask->data;
    p.sm = mask->dim(-1) == 1 ? 0 : mask->stride(-1) / 4;
  }
  return CudaStatus(LaunchRowOp(p, a.ctx->stream), OpName(a.node->op));
}

}  // namespace

Status RunNorm(const OpArgs& a) {
  if (a.out->NumElements() == 0) return OkStatus();
  const TensorRef* w = a.input(1);
  const TensorRef* b = a.input(2);
  RowParams p = RowBase(a, kNoTensor);
  p.weight = w != nullptr ? w->As<const float>() : nullptr;
  p.bias = b != nullptr ? b->As<const float>() : nullptr;
  p.eps = a.fp(0);
  p.woff = w != nullptr ? a.fp(1) : 0.0f;  // the offset applies to a weight only
  return CudaStatus(LaunchRowOp(p, a.ctx->stream), OpName(a.node->op));
}

Status RunSoftmax(const OpArgs& a) {
  if (a.out->NumElements() == 0) return OkStatus();
  return RunRows(a, a.input(1));
}

Status RunReduce(const OpArgs& a) {
  if (a.out->NumElements() == 0) return OkStatus();
  return RunRows(a, nullptr);
}

// ARGMAX (an optional op, k_argmax.cu): x [..., n] f32 -> out [..., 1] i32.
Status RunArgmax(const OpArgs& a) {
  if (a.out->NumElements() == 0) return OkStatus();
  const TensorRef& x = *a.in[0];
  const TensorRef& out = *a.out;
  ArgmaxParams p;
  p.x = x.data;
  p.out = out.data;
  p.n = x.dim(-1);
  p.sx = x.stride(-1) / 4;
  const TensorRef* ts[2] = {&x, &out};
  p.rows = MakeWalk(x, ts, 2, /*outer_only=*/true);
  return CudaStatus(LaunchArgmax(p, a.ctx->stream), "ARGMAX");
}

// ---- ROPE ----

namespace {

RopeParams RopeParamsOf(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& out = *a.out;
  RopeParams p;
  p.x = x.data;
  p.out = out.data;
  p.x_tok = x.nb[0], p.x_head = x.nb[1], p.x_el = x.nb[2];
  p.o_tok = out.nb[0], p.o_head = out.nb[1], p.o_el = out.nb[2];
  p.pos = a.in[1]->As<const int32_t>();
  p.inv_freq = a.in[2]->As<const float>();
  p.T = x.ne[0], p.H = x.ne[1], p.D = x.ne[2];
  p.R = a.ip(1) == 0 ? p.D : a.ip(1);
  p.interleaved = a.ip(0) == 1;
  p.attn_scale = a.fp(0);
  return p;
}

}  // namespace

Status RunRope(const OpArgs& a) {
  return CudaStatus(LaunchRope(RopeParamsOf(a), a.ctx->stream), "ROPE");
}

Status RunRopePair(const OpArgs& a, const OpArgs& b) {
  return CudaStatus(LaunchRope2(RopeParamsOf(a), RopeParamsOf(b), a.ctx->stream), "ROPE (x2)");
}

// ---- attention ----

namespace {

AttnParams AttnBase(const OpArgs& a) {
  const TensorRef& q = *a.in[0];
  const TensorRef& out = *a.out;
  AttnParams p;
  p.q = q.data;
  p.q_tok = q.nb[0], p.q_head = q.nb[1];
  p.out = out.data;
  p.o_tok = out.nb[0], p.o_head = out.nb[1];
  p.k = a.in[1]->data;
  p.v = a.in[2]->data;
  p.kv_dtype = a.in[1]->dtype;
  p.T = q.ne[0], p.Hq = q.ne[1], p.D = q.ne[2], p.Dv = out.ne[2];
  p.scale = a.fp(0);
  p.softcap = a.fp(1);
  p.causal = a.ip(0) != 0;
  p.window = a.ip(1);
  p.err = a.ctx->err_flag;
  return p;
}

}  // namespace

Status RunAttention(const OpArgs& a) {
  const TensorRef& k = *a.in[1];
  const TensorRef& v = *a.in[2];
  AttnParams p = AttnBase(a);
  p.k_tok = k.nb[0], p.k_head = k.nb[1];
  p.v_tok = v.nb[0], p.v_head = v.nb[1];
  p.Hkv = k.ne[1];
  p.n_kv_rows = k.ne[0];
  p.cu_q = a.in[3]->As<const int32_t>();
  p.cu_k = a.in[4]->As<const int32_t>();
  p.S = a.in[3]->ne[0] - 1;
  return CudaStatus(LaunchAttention(p, a.ctx->stream), "ATTENTION");
}

Status RunPagedAttention(const OpArgs& a) {
  const TensorRef& k = *a.in[1];
  const TensorRef& v = *a.in[2];
  const TensorRef& table = *a.in[3];
  AttnParams p = AttnBase(a);
  p.paged = true;
  p.k_block = k.nb[0], p.k_tok = k.nb[1], p.k_head = k.nb[2];
  p.v_block = v.nb[0], p.v_tok = v.nb[1], p.v_head = v.nb[2];
  p.Hkv = k.ne[2];
  p.n_blocks = k.ne[0];
  p.block_size = k.ne[1];
  p.table = table.As<const int32_t>();
  p.table_row = table.nb[0] / 4;
  p.max_blocks = table.ne[1];
  p.kv_lens = a.in[4]->As<const int32_t>();
  p.cu_q = a.in[5]->As<const int32_t>();
  p.S = table.ne[0];
  return CudaStatus(LaunchAttention(p, a.ctx->stream), "PAGED_ATTENTION");
}

namespace {

KvWriteParams KvWriteParamsOf(const OpArgs& a) {
  const TensorRef& cache = *a.in[0];
  const TensorRef& rows = *a.in[1];
  const TensorRef& out = *a.out;
  KvWriteParams p;
  p.cache = out.data;
  p.dtype = out.dtype;
  p.c_block = out.nb[0], p.c_slot = out.nb[1], p.c_head = out.nb[2], p.c_el = out.nb[3];
  p.rows = rows.data;
  p.r_tok = rows.nb[0], p.r_head = rows.nb[1], p.r_el = rows.nb[2];
  p.slots = a.in[2]->As<const int32_t>();
  p.T = rows.ne[0], p.H = rows.ne[1], p.D = rows.ne[2];
  p.block_size = cache.ne[1];
  p.n_slots = cache.ne[0] * cache.ne[1];
  p.err = a.ctx->err_flag;
  return p;
}

}  // namespace

Status RunKvWrite(const OpArgs& a) {
  const TensorRef& cache = *a.in[0];
  const TensorRef& out = *a.out;
  if (out.data != cache.data) {  // not aliased: carry the cache over first
    if (!out.IsContiguous() || !cache.IsContiguous())
      return InvalidArgument("output must alias the cache (or both be contiguous)");
    TSR_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(out.data, cache.data, cache.Extent(),
                                                   cudaMemcpyDeviceToDevice, a.ctx->stream),
                                   "KV_WRITE copy"));
  }
  return CudaStatus(LaunchKvWrite(KvWriteParamsOf(a), a.ctx->stream), "KV_WRITE");
}

Status RunKvWritePair(const OpArgs& a, const OpArgs& b) {
  return CudaStatus(LaunchKvWrite2(KvWriteParamsOf(a), KvWriteParamsOf(b), a.ctx->stream),
                    "KV_WRITE (x2)");
}

bool RopeKvFits(const OpArgs& q, const OpArgs& k, const OpArgs& vw) {
  return RopeKvStageBytes(RopeParamsOf(q), RopeParamsOf(k), KvWriteParamsOf(vw)) <= kRopeKvMaxStage;
}

Status RunRopeKv(const OpArgs& q, const OpArgs& k, const OpArgs& kw, const OpArgs& vw) {
  return CudaStatus(LaunchRopeKv(RopeParamsOf(q), RopeParamsOf(k), KvWriteParamsOf(kw),
                                 KvWriteParamsOf(vw), q.ctx->stream),
                    "ROPE x2 + KV_WRITE x2");
}

// ---- data movement ----

Status RunGetRows(const OpArgs& a) {
  const TensorRef& table = *a.in[0];
  const TensorRef& ids = *a.in[1];
  const TensorRef& out = *a.out;
  GetRowsParams p;
  p.table = table.data;
  p.dtype = table.dtype;
  p.row_bytes = table.nb[0];
  p.el_bytes = IsQuantized(table.dtype) ? 0 : table.nb[1];
  p.ids = ids.data;
  p.id_stride = ids.nb[0];
  p.out = out.data;
  p.o_row = out.nb[0], p.o_el = out.nb[1];
  p.T = ids.ne[0], p.V = table.ne[0], p.D = table.ne[1];
  p.err = a.ctx->err_flag;
  return CudaStatus(LaunchGetRows(p, a.ctx->stream), "GET_ROWS");
}

namespace {

// Same-shape conversion of `in` into `out` (any plain dtypes, any strides).
Status ConvertSameShape(const TensorRef& in, const TensorRef& out, cudaStream_t stream) {
  ConvertParams p;
  p.in = in.data;
  p.out = out.data;
  p.in_dtype = in.dtype;
  p.out_dtype = out.dtype;
  const TensorRef* ts[3] = {&in, kNoTensor, &out};
  p.walk = MakeWalk(out, ts, 3, /*outer_only=*/false);
  return CudaStatus(LaunchConvert(p, stream), "COPY");
}

}  // namespace

Status RunCopy(const OpArgs& a) {
  const TensorRef& in = *a.in[0];
  const TensorRef& out = *a.out;
  const cudaStream_t stream = a.ctx->stream;
  if (out.NumElements() == 0) return OkStatus();
  if (in.dtype == out.dtype && in.IsContiguous() && out.IsContiguous() &&
      in.Extent() == out.Extent()) {
    return CudaStatus(
        cudaMemcpyAsync(out.data, in.data, out.Extent(), cudaMemcpyDeviceToDevice, stream), "COPY");
  }
  if (IsQuantized(in.dtype) || IsQuantized(out.dtype)) {
    QuantRowsParams p;
    p.in = in.data;
    p.out = out.data;
    p.in_dtype = in.dtype;
    p.out_dtype = out.dtype;
    p.n = out.dim(-1);
    const TensorRef* ts[3] = {&in, kNoTensor, &out};
    p.walk = MakeWalk(out, ts, 3, /*outer_only=*/true);
    p.rows = p.walk.numel;
    p.in_el = IsQuantized(in.dtype) ? 0 : in.stride(-1);
    p.out_el = IsQuantized(out.dtype) ? 0 : out.stride(-1);
    return CudaStatus(LaunchQuantRows(p, stream), "COPY (quantized)");
  }
  if (SameShape(in, out)) return ConvertSameShape(in, out, stream);
  // A reshape: both walked in their own row-major element order.
  ConvertParams p;
  p.in = in.data;
  p.out = out.data;
  p.in_dtype = in.dtype;
  p.out_dtype = out.dtype;
  p.flat = true;
  const TensorRef* tin[1] = {&in};
  const TensorRef* tout[1] = {&out};
  p.in_flat = MakeWalk(in, tin, 1, false);
  p.out_flat = MakeWalk(out, tout, 1, false);
  p.walk.numel = out.NumElements();
  return CudaStatus(LaunchConvert(p, stream), "COPY (reshape)");
}

Status RunConcat(const OpArgs& a) {
  TensorRef first, second;  // the output's sub-views that receive in0 and in1
  backend::ConcatParts(a, &first, &second);
  if (a.in[0]->NumElements() > 0)
    TSR_RETURN_IF_ERROR(ConvertSameShape(*a.in[0], first, a.ctx->stream));
  if (a.in[1]->NumElements() > 0)
    TSR_RETURN_IF_ERROR(ConvertSameShape(*a.in[1], second, a.ctx->stream));
  return OkStatus();
}

// ---- convolutions ----

Status ConvShapeFor(const OpArgs& a, ConvParams* c) {
  backend::ConvGeometry g;
  if (std::string e = backend::ConvGeometryFor(a, &g); !e.empty())
    return InvalidArgument(std::move(e));
  c->B = g.B, c->Cin = g.Cin, c->H = g.H, c->W = g.W, c->Cout = g.Cout;
  c->KH = g.KH, c->KW = g.KW, c->Ho = g.Ho, c->Wo = g.Wo;
  c->sh = g.sh, c->sw = g.sw, c->ph = g.ph, c->pw = g.pw, c->dh = g.dh, c->dw = g.dw;
  c->groups = g.groups;
  return OkStatus();
}

Status RunConv(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  const TensorRef& out = *a.out;
  const TensorRef* bias = a.input(2);
  ConvParams p;
  TSR_RETURN_IF_ERROR(ConvShapeFor(a, &p));
  const bool is2d = a.node->op == TSR_OP_CONV2D;
  p.x = x.data;
  p.xs[0] = x.nb[0], p.xs[1] = x.nb[1];
  p.xs[2] = is2d ? x.nb[2] : 0, p.xs[3] = x.nb[x.ndim - 1];
  p.os[0] = out.nb[0], p.os[1] = out.nb[1];
  p.os[2] = is2d ? out.nb[2] : 0, p.os[3] = out.nb[out.ndim - 1];
  p.out = out.data;
  p.w = w.data;
  p.w_dtype = w.dtype;
  const int64_t kdim = p.Cin / p.groups * p.KH * p.KW;
  p.w_row_bytes =
      IsQuantized(w.dtype) ? kdim / TSR_QBLOCK * BlockBytes(w.dtype) : kdim * DtypeSize(w.dtype);
  p.bias = bias != nullptr ? bias->As<const float>() : nullptr;
  return CudaStatus(LaunchConv(p, a.ctx->stream), OpName(a.node->op));
}

}  // namespace tessera::cuda
