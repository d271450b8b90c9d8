// ARGMAX launcher (k_argmax.cu): the device-side greedy pick. Separate from launch.h so that the
// op stays opt-in (node.h TESSERA_BACKEND_OPTIONAL_OPS) and its files stay its own.
#ifndef TESSERA_BACKENDS_CUDA_K_ARGMAX_H_
#define TESSERA_BACKENDS_CUDA_K_ARGMAX_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backends/cuda/launch.h"

namespace tessera::cuda {

// out[r] (i32) = the lowest index of the largest value of f32 row r, NaN never winning, 0 when
// nothing in the row is above -inf.
struct ArgmaxParams {
  const uint8_t* x = nullptr;  // f32 [..., n]
  uint8_t* out = nullptr;      // i32 [..., 1]
  int64_t n = 0;               // row length, 1 .. 2^31 - 1
  int64_t sx = 1;              // element stride along the row (1: 16-byte loads)
  Walk3 rows;                  // outer dims only: slot 0 = x, slot 1 = out
};

// One block a row; no allocation, no synchronization: safe inside CUDA graph capture.
cudaError_t LaunchArgmax(const ArgmaxParams& p, cudaStream_t stream);

}  // namespace tessera::cuda

#endif  // TESSERA_BACKENDS_CUDA_K_ARGMAX_H_
