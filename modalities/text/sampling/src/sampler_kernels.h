// SIMD row kernels for the sampler (Highway, runtime ISA dispatch). Internal to tessera_sampling.
//
// Every function walks one (n,) f32 row. Sums are accumulated in double lanes so logprobs over a
// 150k vocabulary keep full float precision. Rows hold finite values or -inf; NaN is not
// supported (RowMax alone skips it). Thread-safe (pure functions of their arguments).
#ifndef TESSERA_TEXT_SAMPLING_SRC_SAMPLER_KERNELS_H_
#define TESSERA_TEXT_SAMPLING_SRC_SAMPLER_KERNELS_H_

#include <cstddef>

namespace tessera::text::kernels {

// max_i x[i] over the non-NaN values; -inf for n == 0 or a row of NaN (the greedy pick and the
// ARGMAX op skip NaN alike).
float RowMax(const float* x, size_t n);

// x[i] /= divisor in place (division, not a reciprocal multiply, to round as vLLM does); returns
// the new max.
float DivideAndMax(float* x, size_t n, float divisor);

// sum_i exp(x[i] - shift). REQUIRES: shift >= max_i x[i] (so no term overflows).
double SumExpShifted(const float* x, size_t n, float shift);

// out[i] = x[i] >= threshold ? exp(x[i] - shift) : 0; returns sum_i out[i]. out may equal x.
// REQUIRES: shift >= max_i x[i].
double ExpAbove(const float* x, float* out, size_t n, float shift, float threshold);

// #{i : x[i] >= c}.
size_t CountAtLeast(const float* x, size_t n, float c);

// sum of w[i] over {i : x[i] >= c}.
double MassAtLeast(const float* x, const float* w, size_t n, float c);

// Copies the x[i] >= c to out (in order) and returns how many. out has room for n floats.
size_t CopyAtLeast(const float* x, size_t n, float c, float* out);

}  // namespace tessera::text::kernels

#endif  // TESSERA_TEXT_SAMPLING_SRC_SAMPLER_KERNELS_H_
