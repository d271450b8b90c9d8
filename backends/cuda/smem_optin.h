// Dynamic shared memory above the 48 KiB default needs a per-kernel, per-device opt-in
// (cudaFuncSetAttribute); every launch path of the backend goes through AllowDynamicSmem so the
// driver call happens once per (kernel, device), not once per launch.
#ifndef TESSERA_BACKENDS_CUDA_SMEM_OPTIN_H_
#define TESSERA_BACKENDS_CUDA_SMEM_OPTIN_H_

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>

namespace tessera::cuda {

// An attribute of the current device (0 if it cannot be read; the CUDA error is cleared).
inline int CurrentDeviceAttr(cudaDeviceAttr attr) {
  int dev = 0, v = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, attr, dev) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return v;
}

// The current device's opt-in shared memory a block in bytes, read once a process (0 if unknown).
inline int OptinSmem() {
  static const int optin = CurrentDeviceAttr(cudaDevAttrMaxSharedMemoryPerBlockOptin);
  return optin;
}

// Raises `kernel`'s dynamic shared-memory limit on the current device to what its static shared
// memory leaves of the opt-in maximum, unless `bytes` fits the default (static + dynamic within
// 48 KiB: 1 KiB is left for the few hundred static bytes some kernels have). `done_mask`
// (one static per kernel instantiation) remembers the devices already raised (bit = ordinal % 64).
template <class Kernel>
cudaError_t AllowDynamicSmem(Kernel kernel, int bytes, std::atomic<uint64_t>* done_mask) {
  if (bytes <= 47 * 1024) return cudaSuccess;
  int dev = 0, optin = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess) return e;
  const uint64_t bit = uint64_t{1} << (dev & 63);
  if (done_mask->load(std::memory_order_acquire) & bit) return cudaSuccess;
  cudaFuncAttributes fa{};
  e = cudaFuncGetAttributes(&fa, kernel);
  if (e == cudaSuccess)
    e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  if (e == cudaSuccess) {
    e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             optin - static_cast<int>(fa.sharedSizeBytes));
  }
  if (e == cudaSuccess) done_mask->fetch_or(bit, std::memory_order_acq_rel);
  return e;
}

}  // namespace tessera::cuda

#endif  // TESSERA_BACKENDS_CUDA_SMEM_OPTIN_H_
