// The probes' inner loops, shared between probes.cc (drivers) and the SIMD translation units.
#ifndef TESSERA_TOOLS_BENCH_PROBES_INTERNAL_H_
#define TESSERA_TOOLS_BENCH_PROBES_INTERNAL_H_

#include <cstddef>
#include <cstdint>

#include "tessera/core/status.h"

namespace tessera::bench::internal {

// The Highway target the dispatched loops run (a HWY_* bit).
int64_t ChosenTarget();

// Sums floats[0, n) with wide loads and independent accumulators (the read-bandwidth loop).
float SumFloats(const float* floats, size_t n);

// Runs `iters` iterations of independent f32 FMA chains held in registers; the result only
// keeps the compiler from deleting the work.
float FmaChains(int64_t iters);
// Flops one FmaChains iteration performs (chains x lanes x 2).
int64_t FmaFlopsPerIteration();

// The same with vdpbf16ps on zmm registers. REQUIRES: HasAvx512Bf16().
float Dpbf16Chains(int64_t iters);
// 16 chains x 16 lanes x 2 products x 2 flops.
inline constexpr int64_t kDpbf16FlopsPerIteration = 16 * 16 * 2 * 2;

// The same with vpdpbusd (AVX-512 VNNI: unsigned x signed bytes, 4 products a lane summed into
// int32) on zmm registers. REQUIRES: HasAvx512Vnni().
float VnniChains(int64_t iters);
// 16 chains x 16 lanes x 4 products x 2 ops (a multiply-add counts as two, as for flops).
inline constexpr int64_t kVnniOpsPerIteration = 16 * 16 * 4 * 2;

// Makes `v` observable so loops producing it are not optimized away.
void Consume(float v);

}  // namespace tessera::bench::internal

#endif  // TESSERA_TOOLS_BENCH_PROBES_INTERNAL_H_
