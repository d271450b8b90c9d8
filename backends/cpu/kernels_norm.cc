// Row-wise f32 ops over the innermost dim: RMS_NORM, LAYER_NORM, SOFTMAX (scale + broadcast
// mask) and the reductions SUM/MEAN/MAX.
//
// Each row is reduced in a fixed order that depends only on its length (four vector
// accumulators, combined pairwise, then the tail in order). Strided rows are gathered into
// per-thread scratch and run through the same contiguous code, so a row's result never depends
// on its layout, on the other rows or on the thread that ran it.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/kernels_norm.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/cpu/ops.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace tessera::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// sum of f(x[i]) in the file's canonical order. f maps a vector to a vector; fs a scalar.
template <class F, class FS>
HWY_INLINE float RowSum(const float* x, int64_t n, const F& f, const FS& fs) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  VF a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    a0 = hn::Add(a0, f(hn::LoadU(df, x + i)));
    a1 = hn::Add(a1, f(hn::LoadU(df, x + i + L)));
    a2 = hn::Add(a2, f(hn::LoadU(df, x + i + 2 * L)));
    a3 = hn::Add(a3, f(hn::LoadU(df, x + i + 3 * L)));
  }
  for (; i + L <= n; i += L) a0 = hn::Add(a0, f(hn::LoadU(df, x + i)));
  float s = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; i < n; ++i) s += fs(x[i]);
  return s;
}

float RowMax(const float* x, int64_t n) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  VF m = hn::Set(df, -std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + L <= n; i += L) m = hn::Max(m, hn::LoadU(df, x + i));
  float r = hn::GetLane(hn::MaxOfLanes(df, m));
  for (; i < n; ++i) r = std::max(r, x[i]);
  return r;
}

// out[i] = (x[i] - shift) * r * (w[i] + woff) + b[i]; w and b may be null (1 and 0).
void ScaleRow(const float* x, int64_t n, float shift, float r, const float* w, float woff,
              const float* b, float* out) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const VF vs = hn::Set(df, shift), vr = hn::Set(df, r), vo = hn::Set(df, woff);
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    VF y = hn::Mul(hn::Sub(hn::LoadU(df, x + i), vs), vr);
    if (w != nullptr) y = hn::Mul(y, hn::Add(hn::LoadU(df, w + i), vo));
    if (b != nullptr) y = hn::Add(y, hn::LoadU(df, b + i));
    hn::StoreU(y, df, out + i);
  }
  for (; i < n; ++i) {
    float y = (x[i] - shift) * r;
    if (w != nullptr) y *= w[i] + woff;
    if (b != nullptr) y += b[i];
    out[i] = y;
  }
}

void NormRowImpl(int op, const float* x, int64_t n, const float* w, const float* b, float eps,
                 float woff, float* out) {
  const float inv_n = n > 0 ? 1.0f / static_cast<float>(n) : 0.0f;
  if (op == TSR_OP_RMS_NORM) {
    const float ss = RowSum(
        x, n, [](VF v) { return hn::Mul(v, v); }, [](float v) { return v * v; });
    const float r = 1.0f / std::sqrt(ss * inv_n + eps);
    return ScaleRow(x, n, 0.0f, r, w, woff, b, out);
  }
  const float mean = RowSum(
                         x, n, [](VF v) { return v; }, [](float v) { return v; }) *
                     inv_n;
  const DF df;
  const VF vm = hn::Set(df, mean);  // captured by reference: SVE vectors can't be copied in
  const float var = RowSum(
                        x, n,
                        [&vm](VF v) {
                          const VF d = hn::Sub(v, vm);
                          return hn::Mul(d, d);
                        },
                        [mean](float v) { return (v - mean) * (v - mean); }) *
                    inv_n;
  ScaleRow(x, n, mean, 1.0f / std::sqrt(var + eps), w, 0.0f, b, out);
}

// out = softmax(x * scale + mask). A row whose every logit is -inf comes out all zero.
void SoftmaxRowImpl(const float* x, const float* mask, int64_t n, float scale, float* out) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const VF vs = hn::Set(df, scale);
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    VF v = hn::Mul(hn::LoadU(df, x + i), vs);
    if (mask != nullptr) v = hn::Add(v, hn::LoadU(df, mask + i));
    hn::StoreU(v, df, out + i);
  }
  for (; i < n; ++i) out[i] = x[i] * scale + (mask != nullptr ? mask[i] : 0.0f);
  const float m = RowMax(out, n);
  if (!(m > -std::numeric_limits<float>::infinity())) {
    std::fill(out, out + n, 0.0f);
    return;
  }
  // exp underflows to 0 below -87.3; clamping keeps Highway's Exp inside its valid range.
  const VF vm = hn::Set(df, m), lo = hn::Set(df, -87.0f);
  const auto expv = [&](VF v) {
    const VF d = hn::Sub(v, vm);
    return hn::IfThenZeroElse(hn::Lt(d, lo), hn::Exp(df, hn::Max(d, lo)));
  };
  i = 0;
  for (; i + L <= n; i += L) hn::StoreU(expv(hn::LoadU(df, out + i)), df, out + i);
  if (i < n) {
    HWY_ALIGN float buf[hn::MaxLanes(DF())];
    const int64_t c = n - i;
    for (int64_t j = 0; j < L; ++j) buf[j] = j < c ? out[i + j] : m;
    hn::Store(expv(hn::Load(df, buf)), df, buf);
    for (int64_t j = 0; j < c; ++j) out[i + j] = buf[j];
  }
  const float sum = RowSum(
      out, n, [](VF v) { return v; }, [](float v) { return v; });
  const VF inv = hn::Set(df, 1.0f / sum);
  i = 0;
  for (; i + L <= n; i += L) hn::StoreU(hn::Mul(hn::LoadU(df, out + i), inv), df, out + i);
  for (; i < n; ++i) out[i] *= 1.0f / sum;
}

float ReduceRowImpl(int op, const float* x, int64_t n) {
  if (op == TSR_OP_MAX) return RowMax(x, n);
  const float s = RowSum(
      x, n, [](VF v) { return v; }, [](float v) { return v; });
  return op == TSR_OP_MEAN ? s / static_cast<float>(n) : s;
}

}  // namespace HWY_NAMESPACE
}  // namespace tessera::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tessera::cpu {

HWY_EXPORT(NormRowImpl);
HWY_EXPORT(SoftmaxRowImpl);
HWY_EXPORT(ReduceRowImpl);

namespace {

// A row of n floats at p with element stride s, made contiguous in `scratch` if it is not.
const float* Contiguous(const float* p, int64_t s, int64_t n, float* scratch) {
  if (s == 1) return p;
  for (int64_t i = 0; i < n; ++i) scratch[i] = p[i * s];
  return scratch;
}

}  // namespace

Status RunNorm(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& out = *a.out;
  const TensorRef* ts[2] = {&x, &out};
  const RowWalker walk(out, ts, 2);
  const int64_t n = x.dim(-1), sx = x.stride(-1) / 4, so = out.stride(-1) / 4;
  const float* w = a.input(1) ? a.input(1)->As<const float>() : nullptr;
  const float* b = a.input(2) ? a.input(2)->As<const float>() : nullptr;
  // Without a weight the multiplier is 1: the weight offset applies to a weight only.
  const float woff = w != nullptr ? a.fp(1) : 0.0f;
  const int op = a.node->op;
  const float eps = a.fp(0);
  ParallelRanges(a.pool, walk.rows(), std::max<int64_t>(1, 8192 / std::max<int64_t>(n, 1)),
                 [&](int64_t r0, int64_t r1, int thread) {
                   float* scratch = a.ws->Floats(thread, 2 * static_cast<size_t>(n));
                   for (int64_t r = r0; r < r1; ++r) {
                     const float* px =
                         Contiguous(reinterpret_cast<const float*>(x.data + walk.Offset(0, r)), sx,
                                    n, scratch);
                     float* po = reinterpret_cast<float*>(out.data + walk.Offset(1, r));
                     float* dst = so == 1 ? po : scratch + n;
                     HWY_DYNAMIC_DISPATCH(NormRowImpl)(op, px, n, w, b, eps, woff, dst);
                     if (so != 1) {
                       for (int64_t i = 0; i < n; ++i) po[i * so] = dst[i];
                     }
                   }
                 });
  return OkStatus();
}

Status RunSoftmax(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& out = *a.out;
  const TensorRef* mask = a.input(1);
  const TensorRef* ts[3] = {&x, &out, mask != nullptr ? mask : &x};
  const RowWalker walk(out, ts, 3);
  const int64_t n = x.dim(-1), sx = x.stride(-1) / 4, so = out.stride(-1) / 4;
  const int64_t sm = mask == nullptr || mask->dim(-1) == 1 ? 0 : mask->stride(-1) / 4;
  const float scale = a.fp(0);
  ParallelRanges(
      a.pool, walk.rows(), std::max<int64_t>(1, 8192 / std::max<int64_t>(n, 1)),
      [&](int64_t r0, int64_t r1, int thread) {
        float* scratch = a.ws->Floats(thread, 3 * static_cast<size_t>(n));
        for (int64_t r = r0; r < r1; ++r) {
          const float* px = Contiguous(reinterpret_cast<const float*>(x.data + walk.Offset(0, r)),
                                       sx, n, scratch);
          const float* pm = nullptr;
          if (mask != nullptr) {
            const auto* m = reinterpret_cast<const float*>(mask->data + walk.Offset(2, r));
            if (sm == 0) {
              std::fill(scratch + n, scratch + 2 * n, m[0]);
              pm = scratch + n;
            } else {
              pm = Contiguous(m, sm, n, scratch + n);
            }
          }
          float* po = reinterpret_cast<float*>(out.data + walk.Offset(1, r));
          float* dst = so == 1 ? po : scratch + 2 * n;
          HWY_DYNAMIC_DISPATCH(SoftmaxRowImpl)(px, pm, n, scale, dst);
          if (so != 1) {
            for (int64_t i = 0; i < n; ++i) po[i * so] = dst[i];
          }
        }
      });
  return OkStatus();
}

Status RunReduce(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& out = *a.out;
  const TensorRef* ts[2] = {&x, &out};
  const RowWalker walk(x, ts, 2);
  const int64_t n = x.dim(-1), sx = x.stride(-1) / 4;
  const int op = a.node->op;
  ParallelRanges(a.pool, walk.rows(), std::max<int64_t>(1, 8192 / std::max<int64_t>(n, 1)),
                 [&](int64_t r0, int64_t r1, int thread) {
                   float* scratch = a.ws->Floats(thread, static_cast<size_t>(n));
                   for (int64_t r = r0; r < r1; ++r) {
                     const float* px =
                         Contiguous(reinterpret_cast<const float*>(x.data + walk.Offset(0, r)), sx,
                                    n, scratch);
                     *reinterpret_cast<float*>(out.data + walk.Offset(1, r)) =
                         HWY_DYNAMIC_DISPATCH(ReduceRowImpl)(op, px, n);
                   }
                 });
  return OkStatus();
}

}  // namespace tessera::cpu
#endif  // HWY_ONCE
