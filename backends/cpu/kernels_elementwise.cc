// Elementwise f32 ops: ADD/SUB/MUL/DIV (numpy broadcasting of in1), SCALE, the unary
// activations and SOFTCAP, and the gated units SWIGLU/GEGLU.
//
// Inputs and the output may be arbitrarily strided (each is walked with its own strides). Every
// element goes through the same SIMD code whether it sits in a contiguous row, a strided row or
// a row tail (those are gathered into a lane-sized buffer first), so an element's value depends
// only on its inputs, never on layout or on how the work was split.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/kernels_elementwise.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include <algorithm>
#include <cmath>

#include "backends/cpu/ops.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace tessera::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// How a lambda captures a vector: SVE vectors are sizeless types, which cannot be captured by
// copy, so the SVE targets capture by reference (the other targets keep their copy captures and
// thereby their exact code).
#undef TSR_VCAP
#if HWY_HAVE_SCALABLE
#define TSR_VCAP(v) &v
#else
#define TSR_VCAP(v) v
#endif

// exp() is only valid up to ~104 in Highway; beyond 88 f32 overflows anyway.
HWY_INLINE VF SafeExp(DF df, VF v) {
  return hn::Exp(df, hn::Min(v, hn::Set(df, 88.0f)));
}

HWY_INLINE VF Sigmoid(DF df, VF v) {
  const VF one = hn::Set(df, 1.0f);
  return hn::Div(one, hn::Add(one, SafeExp(df, hn::Neg(v))));
}

HWY_INLINE VF GeluTanh(DF df, VF v) {
  const VF c = hn::Set(df, 0.7978845608028654f);  // sqrt(2 / pi)
  const VF inner = hn::Mul(c, hn::MulAdd(hn::Mul(hn::Set(df, 0.044715f), v), hn::Mul(v, v), v));
  const VF half_v = hn::Mul(hn::Set(df, 0.5f), v);
  return hn::Mul(half_v, hn::Add(hn::Set(df, 1.0f), hn::Tanh(df, inner)));
}

// Exact GELU: Highway 1.0 has no vector erf, so lanes go through std::erf.
HWY_INLINE VF GeluErf(DF df, VF v) {
  HWY_ALIGN float buf[hn::MaxLanes(DF())];
  hn::Store(v, df, buf);
  for (size_t i = 0; i < hn::Lanes(df); ++i) {
    buf[i] = 0.5f * buf[i] * (1.0f + std::erf(buf[i] * 0.70710678118654752f));
  }
  return hn::Load(df, buf);
}

// Applies f (vector -> vector) to n elements read with stride sa and written with stride so.
template <class F>
HWY_INLINE void Map1(const float* a, int64_t sa, float* o, int64_t so, int64_t n, const F& f) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  if (sa == 1 && so == 1) {
    for (; i + L <= n; i += L) hn::StoreU(f(hn::LoadU(df, a + i)), df, o + i);
  }
  HWY_ALIGN float buf[hn::MaxLanes(DF())];
  for (; i < n; i += L) {
    const int64_t c = std::min(L, n - i);
    for (int64_t j = 0; j < L; ++j) buf[j] = j < c ? a[(i + j) * sa] : 0.0f;
    hn::Store(f(hn::Load(df, buf)), df, buf);
    for (int64_t j = 0; j < c; ++j) o[(i + j) * so] = buf[j];
  }
}

// Two inputs; sb may be 0 (in1 broadcast along the row).
template <class F>
HWY_INLINE void Map2(const float* a, int64_t sa, const float* b, int64_t sb, float* o, int64_t so,
                     int64_t n, const F& f) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  if (sa == 1 && so == 1 && sb == 1) {
    for (; i + L <= n; i += L) hn::StoreU(f(hn::LoadU(df, a + i), hn::LoadU(df, b + i)), df, o + i);
  } else if (sa == 1 && so == 1 && sb == 0) {
    const VF bv = hn::Set(df, b[0]);
    for (; i + L <= n; i += L) hn::StoreU(f(hn::LoadU(df, a + i), bv), df, o + i);
  }
  HWY_ALIGN float ba[hn::MaxLanes(DF())];
  HWY_ALIGN float bb[hn::MaxLanes(DF())];
  for (; i < n; i += L) {
    const int64_t c = std::min(L, n - i);
    for (int64_t j = 0; j < L; ++j) {
      ba[j] = j < c ? a[(i + j) * sa] : 0.0f;
      bb[j] = j < c ? b[(i + j) * sb] : 1.0f;  // 1 keeps DIV's padding lanes finite
    }
    hn::Store(f(hn::Load(df, ba), hn::Load(df, bb)), df, ba);
    for (int64_t j = 0; j < c; ++j) o[(i + j) * so] = ba[j];
  }
}

void BinaryRowImpl(int op, const float* a, int64_t sa, const float* b, int64_t sb, float* o,
                   int64_t so, int64_t n) {
  switch (op) {
    case TSR_OP_ADD: return Map2(a, sa, b, sb, o, so, n, [](VF x, VF y) { return hn::Add(x, y); });
    case TSR_OP_SUB: return Map2(a, sa, b, sb, o, so, n, [](VF x, VF y) { return hn::Sub(x, y); });
    case TSR_OP_MUL: return Map2(a, sa, b, sb, o, so, n, [](VF x, VF y) { return hn::Mul(x, y); });
    case TSR_OP_DIV: return Map2(a, sa, b, sb, o, so, n, [](VF x, VF y) { return hn::Div(x, y); });
    case TSR_OP_SWIGLU: {
      const DF df;
      return Map2(a, sa, b, sb, o, so, n,
                  [df](VF x, VF y) { return hn::Mul(hn::Mul(x, Sigmoid(df, x)), y); });
    }
    case TSR_OP_GEGLU: {
      const DF df;
      return Map2(a, sa, b, sb, o, so, n, [df](VF x, VF y) { return hn::Mul(GeluTanh(df, x), y); });
    }
    default: return;
  }
}

void UnaryRowImpl(int op, float p0, float p1, const float* a, int64_t sa, float* o, int64_t so,
                  int64_t n) {
  const DF df;
  switch (op) {
    case TSR_OP_SCALE: {
      const VF s = hn::Set(df, p0), t = hn::Set(df, p1);
      // Multiply, then add (two roundings), as the op's definition reads.
      return Map1(a, sa, o, so, n,
                  [TSR_VCAP(s), TSR_VCAP(t)](VF x) { return hn::Add(hn::Mul(x, s), t); });
    }
    case TSR_OP_SILU:
      return Map1(a, sa, o, so, n, [df](VF x) { return hn::Mul(x, Sigmoid(df, x)); });
    case TSR_OP_GELU: return Map1(a, sa, o, so, n, [df](VF x) { return GeluErf(df, x); });
    case TSR_OP_GELU_TANH: return Map1(a, sa, o, so, n, [df](VF x) { return GeluTanh(df, x); });
    case TSR_OP_RELU: return Map1(a, sa, o, so, n, [df](VF x) { return hn::Max(x, hn::Zero(df)); });
    case TSR_OP_TANH: return Map1(a, sa, o, so, n, [df](VF x) { return hn::Tanh(df, x); });
    case TSR_OP_SIGMOID: return Map1(a, sa, o, so, n, [df](VF x) { return Sigmoid(df, x); });
    case TSR_OP_SOFTCAP: {
      const VF cap = hn::Set(df, p0), inv = hn::Set(df, 1.0f / p0);
      return Map1(a, sa, o, so, n, [df, TSR_VCAP(cap), TSR_VCAP(inv)](VF x) {
        return hn::Mul(cap, hn::Tanh(df, hn::Mul(x, inv)));
      });
    }
    default: return;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tessera::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tessera::cpu {

HWY_EXPORT(BinaryRowImpl);
HWY_EXPORT(UnaryRowImpl);

namespace {

// Splits `rows` rows of n elements into (row, column-range) tasks of roughly 32K elements and
// runs fn(row, c0, c1) for each on the pool.
void ForEachRowChunk(ThreadPool* pool, int64_t rows, int64_t n,
                     const std::function<void(int64_t row, int64_t c0, int64_t c1)>& fn) {
  if (rows <= 0 || n <= 0) return;
  const int64_t cb = n <= 32768 ? n : 16384;
  const int64_t ncb = (n + cb - 1) / cb;
  const int64_t grain = std::max<int64_t>(1, 32768 / cb);
  ParallelRanges(pool, rows * ncb, grain, [&](int64_t begin, int64_t end, int) {
    for (int64_t u = begin; u < end; ++u) {
      const int64_t c0 = (u % ncb) * cb;
      fn(u / ncb, c0, std::min(n, c0 + cb));
    }
  });
}

}  // namespace

Status RunBinary(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& y = *a.in[1];
  const TensorRef& out = *a.out;
  const TensorRef* ts[3] = {&x, &y, &out};
  const RowWalker walk(out, ts, 3);
  const int64_t n = out.dim(-1);
  const int64_t sx = x.stride(-1) / 4, so = out.stride(-1) / 4;
  const int64_t sy = y.dim(-1) == 1 ? 0 : y.stride(-1) / 4;
  const int op = a.node->op;
  ForEachRowChunk(a.pool, walk.rows(), n, [&](int64_t r, int64_t c0, int64_t c1) {
    const auto* px = reinterpret_cast<const float*>(x.data + walk.Offset(0, r)) + c0 * sx;
    const auto* py = reinterpret_cast<const float*>(y.data + walk.Offset(1, r)) + c0 * sy;
    auto* po = reinterpret_cast<float*>(out.data + walk.Offset(2, r)) + c0 * so;
    HWY_DYNAMIC_DISPATCH(BinaryRowImpl)(op, px, sx, py, sy, po, so, c1 - c0);
  });
  return OkStatus();
}

Status RunGated(const OpArgs& a) {
  return RunBinary(a);
}

Status RunUnary(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& out = *a.out;
  const TensorRef* ts[2] = {&x, &out};
  const RowWalker walk(out, ts, 2);
  const int64_t n = out.dim(-1);
  const int64_t sx = x.stride(-1) / 4, so = out.stride(-1) / 4;
  const int op = a.node->op;
  const float p0 = a.fp(0), p1 = a.fp(1);
  ForEachRowChunk(a.pool, walk.rows(), n, [&](int64_t r, int64_t c0, int64_t c1) {
    const auto* px = reinterpret_cast<const float*>(x.data + walk.Offset(0, r)) + c0 * sx;
    auto* po = reinterpret_cast<float*>(out.data + walk.Offset(1, r)) + c0 * so;
    HWY_DYNAMIC_DISPATCH(UnaryRowImpl)(op, p0, p1, px, sx, po, so, c1 - c0);
  });
  return OkStatus();
}

}  // namespace tessera::cpu
#endif  // HWY_ONCE
