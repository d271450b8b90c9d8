// Shared helpers of the CUDA kernel labs (bench_cuda_kernels, lab/gemv_lab): error checks,
// bf16 conversion, uploads, event timing and the card's measured copy bandwidth.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace tessera::cuda::lab {

inline void Check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(e));
    std::exit(2);
  }
}

inline uint16_t ToBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
inline float FromBf16(uint16_t b) {
  const uint32_t x = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

template <typename T>
cudaError_t Malloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}

template <typename T>
T* DeviceCopy(const std::vector<T>& v) {
  T* p = nullptr;
  Check(Malloc(&p, v.size() * sizeof(T)), "cudaMalloc");
  Check(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  return p;
}

// Median milliseconds of `reps` timed batches of `iters` calls of fn(i), the events recorded on
// `stream` (nullptr: the legacy default stream, warm-up ended by a device synchronize).
template <class Fn>
double TimeMs(int reps, int iters, const Fn& fn, cudaStream_t stream = nullptr) {
  cudaEvent_t a, b;
  Check(cudaEventCreate(&a), "event");
  Check(cudaEventCreate(&b), "event");
  for (int i = 0; i < 3; ++i) fn(i);  // warm-up
  Check(stream == nullptr ? cudaDeviceSynchronize() : cudaStreamSynchronize(stream), "warm-up");
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    Check(cudaEventRecord(a, stream), "record");
    for (int i = 0; i < iters; ++i) fn(i);
    Check(cudaEventRecord(b, stream), "record");
    Check(cudaEventSynchronize(b), "sync");
    float ms = 0;
    Check(cudaEventElapsedTime(&ms, a, b), "elapsed");
    t.push_back(ms / iters);
  }
  std::sort(t.begin(), t.end());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return t[t.size() / 2];
}

inline double CopyBandwidth() {
  const size_t bytes = size_t{1} << 30;
  void *src = nullptr, *dst = nullptr;
  Check(cudaMalloc(&src, bytes), "malloc");
  Check(cudaMalloc(&dst, bytes), "malloc");
  Check(cudaMemset(src, 1, bytes), "memset");
  const double ms = TimeMs(5, 5, [&](int) {
    Check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, nullptr), "copy");
  });
  cudaFree(src);
  cudaFree(dst);
  const double gbs = 2.0 * bytes / (ms * 1e-3) / 1e9;
  std::printf("copy bytes=%zu ms=%.3f GB/s=%.0f (read+write)\n", bytes, ms, gbs);
  return gbs;
}

}  // namespace tessera::cuda::lab
