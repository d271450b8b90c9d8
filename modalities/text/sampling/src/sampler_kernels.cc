// SIMD row kernels for the sampler; see sampler_kernels.h. The row tail (fewer than one vector of
// elements) goes through scalar code with the same semantics; its exp may differ from the vector
// exp in the last ulp, which no caller depends on.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "modalities/text/sampling/src/sampler_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include <cmath>
#include <limits>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "modalities/text/sampling/src/sampler_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace tessera::text::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DD = hn::Repartition<double, DF>;
using VF = hn::Vec<DF>;
using VD = hn::Vec<DD>;

// Adds the float lanes of v into two double accumulators (lower and upper half of v).
HWY_INLINE void AddToDouble(VF v, VD& lo, VD& hi) {
  const DD dd;
#if HWY_TARGET == HWY_SCALAR
  lo = hn::Add(lo, hn::PromoteTo(dd, v));
  (void)hi;
#else
  const hn::Half<DF> dh;
  lo = hn::Add(lo, hn::PromoteTo(dd, hn::LowerHalf(dh, v)));
  hi = hn::Add(hi, hn::PromoteTo(dd, hn::UpperHalf(dh, v)));
#endif
}

HWY_INLINE double SumDouble(VD lo, VD hi) {
  const DD dd;
  return hn::GetLane(hn::SumOfLanes(dd, hn::Add(lo, hi)));
}

float RowMaxImpl(const float* x, size_t n) {
  const DF df;
  const size_t L = hn::Lanes(df);
  float m = -std::numeric_limits<float>::infinity();
  size_t i = 0;
  if (n >= L) {
    VF a = hn::Set(df, m), b = a;
    // NaN lanes become -inf first: hn::Max's NaN result differs between ISAs (x86 returns its
    // second operand), and the greedy pick must not depend on where a NaN sits.
    const VF ninf = hn::Set(df, m);
    auto load = [&](size_t at) {
      const VF v = hn::LoadU(df, x + at);
      return hn::IfThenElse(hn::IsNaN(v), ninf, v);
    };
    for (; i + 2 * L <= n; i += 2 * L) {  // two chains hide the max latency
      a = hn::Max(a, load(i));
      b = hn::Max(b, load(i + L));
    }
    for (; i + L <= n; i += L) a = hn::Max(a, load(i));
    m = hn::GetLane(hn::MaxOfLanes(df, hn::Max(a, b)));
  }
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

float DivideAndMaxImpl(float* x, size_t n, float divisor) {
  const DF df;
  const size_t L = hn::Lanes(df);
  const VF d = hn::Set(df, divisor);
  float m = -std::numeric_limits<float>::infinity();
  VF a = hn::Set(df, m);
  size_t i = 0;
  for (; i + L <= n; i += L) {
    const VF v = hn::Div(hn::LoadU(df, x + i), d);
    hn::StoreU(v, df, x + i);
    a = hn::Max(a, v);
  }
  m = hn::GetLane(hn::MaxOfLanes(df, a));
  for (; i < n; ++i) {
    x[i] /= divisor;
    m = x[i] > m ? x[i] : m;
  }
  return m;
}

double SumExpShiftedImpl(const float* x, size_t n, float shift) {
  const DF df;
  const DD dd;
  const size_t L = hn::Lanes(df);
  const VF s = hn::Set(df, shift);
  VD lo = hn::Zero(dd), hi = hn::Zero(dd);
  size_t i = 0;
  for (; i + L <= n; i += L) AddToDouble(hn::Exp(df, hn::Sub(hn::LoadU(df, x + i), s)), lo, hi);
  double sum = SumDouble(lo, hi);
  for (; i < n; ++i) sum += std::exp(x[i] - shift);
  return sum;
}

double ExpAboveImpl(const float* x, float* out, size_t n, float shift, float threshold) {
  const DF df;
  const DD dd;
  const size_t L = hn::Lanes(df);
  const VF s = hn::Set(df, shift);
  const VF t = hn::Set(df, threshold);
  VD lo = hn::Zero(dd), hi = hn::Zero(dd);
  size_t i = 0;
  for (; i + L <= n; i += L) {
    const VF v = hn::LoadU(df, x + i);
    const VF w = hn::IfThenElseZero(hn::Ge(v, t), hn::Exp(df, hn::Sub(v, s)));
    hn::StoreU(w, df, out + i);
    AddToDouble(w, lo, hi);
  }
  double sum = SumDouble(lo, hi);
  for (; i < n; ++i) {
    out[i] = x[i] >= threshold ? std::exp(x[i] - shift) : 0.0f;
    sum += out[i];
  }
  return sum;
}

size_t CountAtLeastImpl(const float* x, size_t n, float c) {
  const DF df;
  const size_t L = hn::Lanes(df);
  const VF vc = hn::Set(df, c);
  size_t count = 0, i = 0;
  for (; i + L <= n; i += L) count += hn::CountTrue(df, hn::Ge(hn::LoadU(df, x + i), vc));
  for (; i < n; ++i) count += x[i] >= c;
  return count;
}

double MassAtLeastImpl(const float* x, const float* w, size_t n, float c) {
  const DF df;
  const DD dd;
  const size_t L = hn::Lanes(df);
  const VF vc = hn::Set(df, c);
  VD lo = hn::Zero(dd), hi = hn::Zero(dd);
  size_t i = 0;
  for (; i + L <= n; i += L) {
    AddToDouble(hn::IfThenElseZero(hn::Ge(hn::LoadU(df, x + i), vc), hn::LoadU(df, w + i)), lo, hi);
  }
  double sum = SumDouble(lo, hi);
  for (; i < n; ++i) sum += x[i] >= c ? w[i] : 0.0f;
  return sum;
}

size_t CopyAtLeastImpl(const float* x, size_t n, float c, float* out) {
  const DF df;
  const size_t L = hn::Lanes(df);
  const VF vc = hn::Set(df, c);
  size_t m = 0, i = 0;
  for (; i + L <= n; i += L) {
    const VF v = hn::LoadU(df, x + i);
    // CompressBlendedStore writes only the selected lanes, so out never overruns m + count.
    m += hn::CompressBlendedStore(v, hn::Ge(v, vc), df, out + m);
  }
  for (; i < n; ++i) {
    if (x[i] >= c) out[m++] = x[i];
  }
  return m;
}

}  // namespace HWY_NAMESPACE
}  // namespace tessera::text::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tessera::text::kernels {

HWY_EXPORT(RowMaxImpl);
HWY_EXPORT(DivideAndMaxImpl);
HWY_EXPORT(SumExpShiftedImpl);
HWY_EXPORT(ExpAboveImpl);
HWY_EXPORT(CountAtLeastImpl);
HWY_EXPORT(MassAtLeastImpl);
HWY_EXPORT(CopyAtLeastImpl);

float RowMax(const float* x, size_t n) {
  return HWY_DYNAMIC_DISPATCH(RowMaxImpl)(x, n);
}
float DivideAndMax(float* x, size_t n, float divisor) {
  return HWY_DYNAMIC_DISPATCH(DivideAndMaxImpl)(x, n, divisor);
}
double SumExpShifted(const float* x, size_t n, float shift) {
  return HWY_DYNAMIC_DISPATCH(SumExpShiftedImpl)(x, n, shift);
}
double ExpAbove(const float* x, float* out, size_t n, float shift, float threshold) {
  return HWY_DYNAMIC_DISPATCH(ExpAboveImpl)(x, out, n, shift, threshold);
}
size_t CountAtLeast(const float* x, size_t n, float c) {
  return HWY_DYNAMIC_DISPATCH(CountAtLeastImpl)(x, n, c);
}
double MassAtLeast(const float* x, const float* w, size_t n, float c) {
  return HWY_DYNAMIC_DISPATCH(MassAtLeastImpl)(x, w, n, c);
}
size_t CopyAtLeast(const float* x, size_t n, float c, float* out) {
  return HWY_DYNAMIC_DISPATCH(CopyAtLeastImpl)(x, n, c, out);
}

}  // namespace tessera::text::kernels
#endif  // HWY_ONCE
