// Runners: a validated node -> parameter blocks (kernels/params.h) -> kernel launches. Mirrors the
// CUDA backend's run_ops.cc; no runner synchronizes, and data-dependent errors surface through
// the device error word (the plugins read it when they synchronize).
#include "backends/opencl/gpu_ops.h"

#include <algorithm>
#include <string>
#include <utility>

#include "backends/opencl/kernels/params.h"
#include "tessera/backend/validate.h"

namespace tessera::gpu {

static_assert(TSR_K_ERR_INDEX == backend::kDataErrIndex &&
                  TSR_K_ERR_SEQLENS == backend::kDataErrSeqlens &&
                  TSR_K_ERR_BLOCK_TABLE == backend::kDataErrBlockTable,
              "the kernels' error bits are backend::kDataErr*");

using backend::BlockBytes;
using backend::DtypeSize;
using backend::IsQuantized;
using backend::SameShape;

Status ValidateOp(const OpArgs& a) {
  bool unsupported = false;
  std::string e =
      backend::ValidateKernelNode(a, {0, TSR_K_ATTN_MAX_HEAD_DIM, "attention"}, &unsupported);
  if (e.empty()) return OkStatus();
  return unsupported ? Unsupported(std::move(e)) : InvalidArgument(std::move(e));
}

namespace {

const TensorRef* const kNoTensor = nullptr;

// Walks `ts` (up to three; slot k) over the dims of `shape` (all, or all but the innermost),
// numpy-broadcasting where a tensor's dim is 1 or missing. A null entry gets zero strides.
TsrWalk MakeWalk(const TensorRef& shape, const TensorRef* const* ts, int n, bool outer_only) {
  return backend::BroadcastWalk<TsrWalk>(shape, ts, n, outer_only);
}

int64_t Off(const TensorRef* t) {
  return t != nullptr ? Offset(*t) : 0;
}

template <typename P>
Status Launch(const OpArgs& a, Kernel k, int64_t items, std::initializer_list<const void*> bufs,
              const P& params) {
  if (items <= 0) return OkStatus();
  KernelArg args[12];
  int n = 0;
  for (const void* b : bufs) args[n++] = BufArg(b);
  args[n++] = ValArg(params);
  return a.q->Launch(k, items, args, n);
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

}  // namespace

// ---- MATMUL ----

Status RunMatmul(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  const TensorRef& out = *a.out;
  const TensorRef* bias = a.input(2);
  if (out.NumElements() == 0) return OkStatus();
  TsrMatmulParams base{};
  base.K = w.dim(-1);
  base.N = w.dim(-2);
  base.w_row_bytes = w.stride(-2);
  base.w_dtype = w.dtype;
  base.has_bias = bias != nullptr;
  base.b_off = Off(bias);
  base.x_row = x.stride(-2) / 4;
  base.out_row = out.stride(-2) / 4;
  base.out_col = out.stride(-1) / 4;
  const auto bufs = {a.in_buf[0], a.in_buf[1], a.in_buf[2], a.out_buf};
  if (w.ndim == 2 && RowsMerge(x) && RowsMerge(out)) {  // every slice in one launch
    TsrMatmulParams p = base;
    p.x_off = Offset(x), p.w_off = Offset(w), p.o_off = Offset(out);
    p.M = x.Rows();
    if (x.ndim < 2) p.x_row = 0, p.out_row = 0;
    return Launch(a, Kernel::kMatmul, p.M * p.N, bufs, p);
  }
  const int64_t S = backend::NumMatrices(x);
  for (int64_t s = 0; s < S; ++s) {
    TsrMatmulParams p = base;
    p.x_off = Offset(x) + backend::MatrixOffset(x, x, s);
    p.o_off = Offset(out) + backend::MatrixOffset(x, out, s);
    p.w_off = Offset(w) + (w.ndim == 3 ? s * w.nb[0] : 0);
    p.M = x.ndim >= 2 ? x.dim(-2) : 1;
    TSR_RETURN_IF_ERROR(Launch(a, Kernel::kMatmul, p.M * p.N, bufs, p));
  }
  return OkStatus();
}

// ---- elementwise ----

namespace {

Status RunElementwise(const OpArgs& a, const TensorRef* b, const void* b_buf) {
  const TensorRef& x = *a.in[0];
  const TensorRef& out = *a.out;
  TsrEltParams p{};
  p.op = a.node->op;
  p.p0 = a.fp(0);
  p.p1 = a.fp(1);
  p.has_b = b != nullptr;
  p.a_off = Offset(x), p.b_off = Off(b), p.o_off = Offset(out);
  const TensorRef* ts[3] = {&x, b, &out};
  p.walk = MakeWalk(out, ts, 3, /*outer_only=*/false);
  p.contiguous = x.IsContiguous() && out.IsContiguous() &&
                 (b == nullptr || backend::BroadcastsAsPeriod(*b, out));
  p.b_period = b != nullptr ? std::max<int64_t>(1, b->NumElements()) : 1;
  return Launch(a, Kernel::kElementwise, p.walk.numel, {a.in_buf[0], b_buf, a.out_buf}, p);
}

}  // namespace

Status RunBinary(const OpArgs& a) {
  return RunElementwise(a, a.in[1], a.in_buf[1]);
}
Status RunGated(const OpArgs& a) {
  return RunElementwise(a, a.in[1], a.in_buf[1]);
}
Status RunUnary(const OpArgs& a) {
  return RunElementwise(a, nullptr, nullptr);
}

// ---- row ops ----

namespace {

Status RunRowsWith(const OpArgs& a, const TensorRef* mask, const void* mask_buf, const TensorRef* w,
                   const void* w_buf, const TensorRef* bias, const void* b_buf) {
  const TensorRef& x = *a.in[0];
  const TensorRef& out = *a.out;
  if (out.NumElements() == 0) return OkStatus();
  TsrRowParams p{};
  p.op = a.node->op;
  p.x_off = Offset(x), p.o_off = Offset(out);
  p.n = x.dim(-1);
  p.sx = x.stride(-1) / 4;
  p.so = out.stride(-1) / 4;
  const TensorRef* ts[3] = {&x, &out, mask};
  p.rows = MakeWalk(x, ts, 3, /*outer_only=*/true);
  p.has_mask = mask != nullptr;
  p.m_off = Off(mask);
  p.sm = mask != nullptr && mask->dim(-1) != 1 ? mask->stride(-1) / 4 : 0;
  p.has_weight = w != nullptr;
  p.w_off = Off(w);
  p.has_bias = bias != nullptr;
  p.b_off = Off(bias);
  p.scale = a.fp(0);
  p.eps = a.fp(0);
  p.woff = w != nullptr ? a.fp(1) : 0.0f;
  return Launch(a, Kernel::kRows, p.rows.numel, {a.in_buf[0], mask_buf, w_buf, b_buf, a.out_buf},
                p);
}

}  // namespace

Status RunNorm(const OpArgs& a) {
  return RunRowsWith(a, nullptr, nullptr, a.input(1), a.in_buf[1], a.input(2),
                     a.n_in > 2 ? a.in_buf[2] : nullptr);
}

Status RunSoftmax(const OpArgs& a) {
  return RunRowsWith(a, a.input(1), a.n_in > 1 ? a.in_buf[1] : nullptr, nullptr, nullptr, nullptr,
                     nullptr);
}

Status RunReduce(const OpArgs& a) {
  return RunRowsWith(a, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
}

// ---- ROPE ----

Status RunRope(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& out = *a.out;
  TsrRopeParams p{};
  p.x_off = Offset(x), p.p_off = Offset(*a.in[1]), p.f_off = Offset(*a.in[2]);
  p.o_off = Offset(out);
  p.x_tok = x.nb[0], p.x_head = x.nb[1], p.x_el = x.nb[2];
  p.o_tok = out.nb[0], p.o_head = out.nb[1], p.o_el = out.nb[2];
  p.T = x.ne[0], p.H = x.ne[1], p.D = x.ne[2];
  p.R = a.ip(1) == 0 ? p.D : a.ip(1);
  p.interleaved = a.ip(0) == 1;
  p.attn_scale = a.fp(0);
  const int64_t items = p.T * p.H * (p.R / 2 + (p.D - p.R));
  return Launch(a, Kernel::kRope, items, {a.in_buf[0], a.in_buf[1], a.in_buf[2], a.out_buf}, p);
}

// ---- attention ----

namespace {

TsrAttnParams AttnBase(const OpArgs& a) {
  const TensorRef& q = *a.in[0];
  const TensorRef& out = *a.out;
  TsrAttnParams p{};
  p.q_off = Offset(q), p.k_off = Offset(*a.in[1]), p.v_off = Offset(*a.in[2]);
  p.o_off = Offset(out);
  p.q_tok = q.nb[0], p.q_head = q.nb[1];
  p.o_tok = out.nb[0], p.o_head = out.nb[1];
  p.kv_dtype = a.in[1]->dtype;
  p.T = q.ne[0], p.Hq = q.ne[1], p.D = q.ne[2], p.Dv = out.ne[2];
  p.scale = a.fp(0);
  p.softcap = a.fp(1);
  p.causal = a.ip(0) != 0;
  p.window = a.ip(1);
  return p;
}

}  // namespace

Status RunAttention(const OpArgs& a) {
  const TensorRef& k = *a.in[1];
  const TensorRef& v = *a.in[2];
  TsrAttnParams p = AttnBase(a);
  p.k_tok = k.nb[0], p.k_head = k.nb[1];
  p.v_tok = v.nb[0], p.v_head = v.nb[1];
  p.Hkv = k.ne[1];
  p.n_kv_rows = k.ne[0];
  p.cuq_off = Offset(*a.in[3]);
  p.cuk_off = Offset(*a.in[4]);
  p.S = a.in[3]->ne[0] - 1;
  return Launch(a, Kernel::kAttention, p.T * p.Hq,
                {a.in_buf[0], a.in_buf[1], a.in_buf[2], a.in_buf[3], a.in_buf[4], nullptr, nullptr,
                 a.out_buf, a.q->ErrorWord()},
                p);
}

Status RunPagedAttention(const OpArgs& a) {
  const TensorRef& k = *a.in[1];
  const TensorRef& v = *a.in[2];
  const TensorRef& table = *a.in[3];
  TsrAttnParams p = AttnBase(a);
  p.paged = 1;
  p.k_block = k.nb[0], p.k_tok = k.nb[1], p.k_head = k.nb[2];
  p.v_block = v.nb[0], p.v_tok = v.nb[1], p.v_head = v.nb[2];
  p.Hkv = k.ne[2];
  p.n_blocks = k.ne[0];
  p.block_size = k.ne[1];
  p.tab_off = Offset(table);
  p.table_row = table.nb[0] / 4;
  p.max_blocks = table.ne[1];
  p.len_off = Offset(*a.in[4]);
  p.cuq_off = Offset(*a.in[5]);
  p.S = table.ne[0];
  return Launch(a, Kernel::kAttention, p.T * p.Hq,
                {a.in_buf[0], a.in_buf[1], a.in_buf[2], a.in_buf[5], nullptr, a.in_buf[3],
                 a.in_buf[4], a.out_buf, a.q->ErrorWord()},
                p);
}

Status RunKvWrite(const OpArgs& a) {
  const TensorRef& cache = *a.in[0];
  const TensorRef& rows = *a.in[1];
  const TensorRef& out = *a.out;
  if (a.out_buf != a.in_buf[0] || out.data != cache.data) {  // not aliased: carry the cache over
    if (!out.IsContiguous() || !cache.IsContiguous())
      return InvalidArgument("output must alias the cache (or both be contiguous)");
    TSR_RETURN_IF_ERROR(
        a.q->Copy(a.in_buf[0], Offset(cache), a.out_buf, Offset(out), cache.Extent()));
  }
  TsrKvWriteParams p{};
  p.c_off = Offset(out), p.r_off = Offset(rows), p.s_off = Offset(*a.in[2]);
  p.dtype = out.dtype;
  p.c_block = out.nb[0], p.c_slot = out.nb[1], p.c_head = out.nb[2], p.c_el = out.nb[3];
  p.r_tok = rows.nb[0], p.r_head = rows.nb[1], p.r_el = rows.nb[2];
  p.T = rows.ne[0], p.H = rows.ne[1], p.D = rows.ne[2];
  p.block_size = cache.ne[1];
  p.n_slots = cache.ne[0] * cache.ne[1];
  return Launch(a, Kernel::kKvWrite, p.T * p.H * p.D,
                {a.in_buf[1], a.in_buf[2], a.out_buf, a.q->ErrorWord()}, p);
}

// ---- data movement ----

Status RunGetRows(const OpArgs& a) {
  const TensorRef& table = *a.in[0];
  const TensorRef& ids = *a.in[1];
  const TensorRef& out = *a.out;
  TsrGetRowsParams p{};
  p.t_off = Offset(table), p.i_off = Offset(ids), p.o_off = Offset(out);
  p.dtype = table.dtype;
  p.row_bytes = table.nb[0];
  p.el_bytes = IsQuantized(table.dtype) ? 0 : table.nb[1];
  p.id_stride = ids.nb[0];
  p.o_row = out.nb[0], p.o_el = out.nb[1];
  p.T = ids.ne[0], p.V = table.ne[0], p.D = table.ne[1];
  return Launch(a, Kernel::kGetRows, p.T * p.D,
                {a.in_buf[0], a.in_buf[1], a.out_buf, a.q->ErrorWord()}, p);
}

namespace {

// Same-shape conversion of `in` into `out` (any plain dtypes, any strides).
Status ConvertSameShape(const OpArgs& a, const TensorRef& in, const void* in_buf,
                        const TensorRef& out, const void* out_buf) {
  TsrConvertParams p{};
  p.i_off = Offset(in), p.o_off = Offset(out);
  p.in_dtype = in.dtype;
  p.out_dtype = out.dtype;
  const TensorRef* ts[3] = {&in, kNoTensor, &out};
  p.walk = MakeWalk(out, ts, 3, /*outer_only=*/false);
  return Launch(a, Kernel::kConvert, p.walk.numel, {in_buf, out_buf}, p);
}

}  // namespace

Status RunCopy(const OpArgs& a) {
  const TensorRef& in = *a.in[0];
  const TensorRef& out = *a.out;
  if (out.NumElements() == 0) return OkStatus();
  if (in.dtype == out.dtype && in.IsContiguous() && out.IsContiguous() &&
      in.Extent() == out.Extent()) {
    return a.q->Copy(a.in_buf[0], Offset(in), a.out_buf, Offset(out), out.Extent());
  }
  if (IsQuantized(in.dtype) || IsQuantized(out.dtype)) {
    TsrQuantParams p{};
    p.i_off = Offset(in), p.o_off = Offset(out);
    p.in_dtype = in.dtype;
    p.out_dtype = out.dtype;
    p.n = out.dim(-1);
    const TensorRef* ts[3] = {&in, kNoTensor, &out};
    p.walk = MakeWalk(out, ts, 3, /*outer_only=*/true);
    p.rows = p.walk.numel;
    p.in_el = IsQuantized(in.dtype) ? 0 : in.stride(-1);
    p.out_el = IsQuantized(out.dtype) ? 0 : out.stride(-1);
    const int64_t per = IsQuantized(out.dtype) ? p.n / TSR_QBLOCK : p.n;
    return Launch(a, Kernel::kQuantRows, p.rows * per, {a.in_buf[0], a.out_buf}, p);
  }
  if (SameShape(in, out)) return ConvertSameShape(a, in, a.in_buf[0], out, a.out_buf);
  // A reshape: both walked in their own row-major element order.
  TsrConvertParams p{};
  p.i_off = Offset(in), p.o_off = Offset(out);
  p.in_dtype = in.dtype;
  p.out_dtype = out.dtype;
  p.flat = 1;
  const TensorRef* tin[1] = {&in};
  const TensorRef* tout[1] = {&out};
  p.in_flat = MakeWalk(in, tin, 1, false);
  p.out_flat = MakeWalk(out, tout, 1, false);
  p.walk.numel = out.NumElements();
  return Launch(a, Kernel::kConvert, p.walk.numel, {a.in_buf[0], a.out_buf}, p);
}

Status RunConcat(const OpArgs& a) {
  TensorRef first, second;  // the output's sub-views that receive in0 and in1
  backend::ConcatParts(a, &first, &second);
  if (a.in[0]->NumElements() > 0)
    TSR_RETURN_IF_ERROR(ConvertSameShape(a, *a.in[0], a.in_buf[0], first, a.out_buf));
  if (a.in[1]->NumElements() > 0)
    TSR_RETURN_IF_ERROR(ConvertSameShape(a, *a.in[1], a.in_buf[1], second, a.out_buf));
  return OkStatus();
}

// ---- convolutions ----

Status RunConv(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  const TensorRef& out = *a.out;
  const TensorRef* bias = a.input(2);
  backend::ConvGeometry g;
  if (std::string e = backend::ConvGeometryFor(a, &g); !e.empty())
    return InvalidArgument(std::move(e));
  TsrConvParams p{};
  p.B = g.B, p.Cin = g.Cin, p.H = g.H, p.W = g.W, p.Cout = g.Cout;
  p.KH = g.KH, p.KW = g.KW, p.Ho = g.Ho, p.Wo = g.Wo;
  p.sh = g.sh, p.sw = g.sw, p.ph = g.ph, p.pw = g.pw, p.dh = g.dh, p.dw = g.dw;
  p.groups = g.groups;
  const bool is2d = a.node->op == TSR_OP_CONV2D;
  p.x_off = Offset(x), p.w_off = Offset(w), p.o_off = Offset(out), p.b_off = Off(bias);
  p.xs[0] = x.nb[0], p.xs[1] = x.nb[1];
  p.xs[2] = is2d ? x.nb[2] : 0, p.xs[3] = x.nb[x.ndim - 1];
  p.os[0] = out.nb[0], p.os[1] = out.nb[1];
  p.os[2] = is2d ? out.nb[2] : 0, p.os[3] = out.nb[out.ndim - 1];
  p.w_dtype = w.dtype;
  const int64_t kdim = p.Cin / p.groups * p.KH * p.KW;
  p.w_row_bytes =
      IsQuantized(w.dtype) ? kdim / TSR_QBLOCK * BlockBytes(w.dtype) : kdim * DtypeSize(w.dtype);
  p.has_bias = bias != nullptr;
  return Launch(a, Kernel::kConv, p.B * p.Cout * p.Ho * p.Wo,
                {a.in_buf[0], a.in_buf[1], bias != nullptr ? a.in_buf[2] : nullptr, a.out_buf}, p);
}

TESSERA_BACKEND_DEFINE_FIND_RUNNER(OpFn)

}  // namespace tessera::gpu
