// ARGMAX over the innermost dim (the device-side greedy pick): out[r] = the lowest index of the
// largest value of row r, NaN never winning, 0 for a row with nothing above -inf.
//
// Each SIMD lane keeps the first index of its own running maximum (an element replaces it only
// when strictly greater, so NaN, which compares false, never does); the lanes and the two
// interleaved chains are then merged by (largest value, lowest index) and the tail runs the same
// strict test in order. The result is exact: it does not depend on the vector width, on the
// chains or on how the rows are split across threads. Strided rows are gathered first.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/kernels_argmax.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "backends/cpu/ops.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace tessera::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;
using VF = hn::Vec<DF>;
using VI = hn::Vec<DI>;

// A chain is a lane-wise running (maximum, first index of it): two vectors, not a struct (SVE
// vectors cannot be members).
HWY_INLINE void Step(const DI di, VF v, VI idx, VF& best, VI& index) {
  const auto gt = hn::Gt(v, best);  // false for NaN
  best = hn::IfThenElse(gt, v, best);
  index = hn::IfThenElse(hn::RebindMask(di, gt), idx, index);
}

// Folds the lanes of a chain into (*best, *best_i) by (larger value, then lower index).
HWY_INLINE void Merge(const DF df, const DI di, VF chain_best, VI chain_index, float* best,
                      int32_t* best_i) {
  constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(float);
  HWY_ALIGN float v[kMaxLanes];
  HWY_ALIGN int32_t i[kMaxLanes];
  hn::Store(chain_best, df, v);
  hn::Store(chain_index, di, i);
  for (size_t l = 0; l < hn::Lanes(df); ++l) {
    if (v[l] > *best || (v[l] == *best && i[l] < *best_i)) {
      *best = v[l];
      *best_i = i[l];
    }
  }
}

int32_t ArgmaxRowImpl(const float* x, int64_t n) {
  const DF df;
  const DI di;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  float best = -std::numeric_limits<float>::infinity();
  int32_t best_i = 0;  // stays 0 when nothing is above -inf
  int64_t i = 0;
  if (n >= 2 * L) {
    VF a_best = hn::Set(df, best), b_best = a_best;
    VI a_index = hn::Zero(di), b_index = a_index;
    VI idx = hn::Iota(di, 0);
    const VI step = hn::Set(di, static_cast<int32_t>(L));
    for (; i + 2 * L <= n; i += 2 * L) {  // two chains hide the compare latency
      Step(di, hn::LoadU(df, x + i), idx, a_best, a_index);
      idx = hn::Add(idx, step);
      Step(di, hn::LoadU(df, x + i + L), idx, b_best, b_index);
      idx = hn::Add(idx, step);
    }
    Merge(df, di, a_best, a_index, &best, &best_i);
    Merge(df, di, b_best, b_index, &best, &best_i);
    // Lanes that never left -inf report index 0; they matter only when every value so far is
    // -inf or NaN, and then the answer is 0 anyway (or a later, strictly larger value).
  }
  for (; i < n; ++i) {  // indices above all of the vector part's: strictly greater keeps ties low
    if (x[i] > best) {
      best = x[i];
      best_i = static_cast<int32_t>(i);
    }
  }
  return best_i;
}

}  // namespace HWY_NAMESPACE
}  // namespace tessera::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tessera::cpu {

HWY_EXPORT(ArgmaxRowImpl);

Status RunArgmax(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& out = *a.out;
  const TensorRef* ts[2] = {&x, &out};
  const RowWalker walk(x, ts, 2);
  const int64_t n = x.dim(-1), sx = x.stride(-1) / 4;
  ParallelRanges(a.pool, walk.rows(), std::max<int64_t>(1, 65536 / n),
                 [&](int64_t r0, int64_t r1, int thread) {
                   float* scratch =
                       sx == 1 ? nullptr : a.ws->Floats(thread, static_cast<size_t>(n));
                   for (int64_t r = r0; r < r1; ++r) {
                     const float* px = reinterpret_cast<const float*>(x.data + walk.Offset(0, r));
                     if (sx != 1) {  // gather a strided row
                       for (int64_t i = 0; i < n; ++i) scratch[i] = px[i * sx];
                       px = scratch;
                     }
                     *reinterpret_cast<int32_t*>(out.data + walk.Offset(1, r)) =
                         HWY_DYNAMIC_DISPATCH(ArgmaxRowImpl)(px, n);
                   }
                 });
  return OkStatus();
}

}  // namespace tessera::cpu
#endif  // HWY_ONCE
