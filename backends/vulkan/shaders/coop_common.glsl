// Shared by the cooperative-matrix prefill path (coop_split.comp, matmul_coop.comp): the
// parameter block both read (ops.h CoopP) and the tile sizes the host's grid follows.
//
// x (f32) is split into three bf16 planes hi, mid, lo with x == hi + mid + lo exactly (each
// piece is the round-to-nearest bf16 of what the earlier ones left; the remainders are exact
// in f32), so bf16 x bf16 -> f32 cooperative-matrix products of the planes with the bf16
// weights lose nothing in the products; only the sums round (in f32, in the device's
// cooperative-matrix order, not matmul_common.glsl's canonical one).
#include "common.glsl"

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer CoopParams {
  uint64_t err;
  uint64_t x, planes, w, bias, out_;  // bias = 0 when absent
  int64_t M, K, N;
  int64_t Mp, Kp;  // planes: Mp x Kp bf16 each (zero past M and K), one after another
  int64_t x_row, w_row, out_row, out_col;  // x/out: byte strides; w_row: elements
};

// Output rows and columns a workgroup of matmul_coop.comp (each module's -D; run_ops.cc
// CoopKernels has the same numbers).
#ifndef COOP_BM
#define COOP_BM 128
#endif
#ifndef COOP_BN
#define COOP_BN 64
#endif
