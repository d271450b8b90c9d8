// The probes' Highway loops, compiled once per SIMD target and dispatched at run time, like the
// CPU plugin's kernels, so they measure the same instructions the kernels run.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "probes_simd.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include "hwy/highway.h"
#include "probes_internal.h"

HWY_BEFORE_NAMESPACE();
namespace tessera::bench::internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// 12 chains: enough to cover FMA latency x FMA pipes on current x86 (4 cycles x 2 pipes), and
// with the two constants still fits AVX2's 16 registers without spilling.
constexpr int kChains = 12;

float SumFloatsImpl(const float* p, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  auto a4 = hn::Zero(d), a5 = hn::Zero(d), a6 = hn::Zero(d), a7 = hn::Zero(d);
  size_t i = 0;
  for (; i + 8 * L <= n; i += 8 * L) {
    a0 = hn::Add(a0, hn::LoadU(d, p + i));
    a1 = hn::Add(a1, hn::LoadU(d, p + i + L));
    a2 = hn::Add(a2, hn::LoadU(d, p + i + 2 * L));
    a3 = hn::Add(a3, hn::LoadU(d, p + i + 3 * L));
    a4 = hn::Add(a4, hn::LoadU(d, p + i + 4 * L));
    a5 = hn::Add(a5, hn::LoadU(d, p + i + 5 * L));
    a6 = hn::Add(a6, hn::LoadU(d, p + i + 6 * L));
    a7 = hn::Add(a7, hn::LoadU(d, p + i + 7 * L));
  }
  float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)),
                                                  hn::Add(hn::Add(a4, a5), hn::Add(a6, a7)))));
  for (; i < n; ++i) s += p[i];
  return s;
}

float FmaChainsImpl(int64_t iters) {
  const hn::ScalableTag<float> d;
  // acc = acc * m + c with m just below 1 converges to c / (1 - m): values stay normal.
  const auto m = hn::Set(d, 0.999f);
  const auto c = hn::Set(d, 0.001f);
  hn::Vec<decltype(d)> acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = hn::Set(d, static_cast<float>(j));
  for (int64_t i = 0; i < iters; ++i) {
    for (int j = 0; j < kChains; ++j) acc[j] = hn::MulAdd(acc[j], m, c);
  }
  auto s = acc[0];
  for (int j = 1; j < kChains; ++j) s = hn::Add(s, acc[j]);
  return hn::GetLane(s);
}

int64_t FmaFlopsPerIterationImpl() {
  return static_cast<int64_t>(kChains * hn::Lanes(hn::ScalableTag<float>()) * 2);
}

int64_t ChosenTargetImpl() {
  return HWY_TARGET;
}

}  // namespace HWY_NAMESPACE
}  // namespace tessera::bench::internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tessera::bench::internal {

HWY_EXPORT(SumFloatsImpl);
HWY_EXPORT(FmaChainsImpl);
HWY_EXPORT(FmaFlopsPerIterationImpl);
HWY_EXPORT(ChosenTargetImpl);

float SumFloats(const float* floats, size_t n) {
  return HWY_DYNAMIC_DISPATCH(SumFloatsImpl)(floats, n);
}
float FmaChains(int64_t iters) {
  return HWY_DYNAMIC_DISPATCH(FmaChainsImpl)(iters);
}
int64_t FmaFlopsPerIteration() {
  return HWY_DYNAMIC_DISPATCH(FmaFlopsPerIterationImpl)();
}
int64_t ChosenTarget() {
  return HWY_DYNAMIC_DISPATCH(ChosenTargetImpl)();
}

void Consume(float v) {
  asm volatile("" : : "x"(v));  // the value is "used": the loop producing it must run
}

}  // namespace tessera::bench::internal
#endif  // HWY_ONCE
