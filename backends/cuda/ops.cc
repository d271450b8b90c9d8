// The runner registry, broadcast walks and the device scratch.
#include "backends/cuda/ops.h"

#include <algorithm>

namespace tessera::cuda {

Walk3 MakeWalk(const TensorRef& shape, const TensorRef* const* ts, int n, bool outer_only) {
  Walk3 w;
  w.ndim = outer_only ? std::max(0, shape.ndim - 1) : shape.ndim;
  w.numel = 1;
  for (int d = 0; d < w.ndim; ++d) {
    w.ne[d] = shape.ne[d];
    w.numel *= shape.ne[d];
  }
  for (int k = 0; k < n && k < 3; ++k) {
    if (ts[k] == nullptr) continue;
    const TensorRef& t = *ts[k];
    const int shift = shape.ndim - t.ndim;  // t's dim j sits at shape dim j + shift
    for (int d = 0; d < w.ndim; ++d) {
      const int j = d - shift;
      w.s[k][d] = (j < 0 || t.ne[j] == 1) ? 0 : t.nb[j];
    }
  }
  return w;
}

Scratch::~Scratch() {
  if (ptr_ != nullptr) cudaFree(ptr_);
}

StatusOr<void*> Scratch::Get(uint64_t bytes, cudaStream_t stream) {
  if (bytes <= size_) return ptr_;
  // Kernels queued earlier may still read the old block: wait before freeing it.
  cudaError_t e = cudaStreamSynchronize(stream);
  if (e != cudaSuccess) return CudaStatus(e, "scratch: stream synchronize");
  if (ptr_ != nullptr) cudaFree(ptr_);
  ptr_ = nullptr;
  size_ = 0;
  const uint64_t want = std::max<uint64_t>(bytes, uint64_t{1} << 20);
  if ((e = cudaMalloc(&ptr_, want)) != cudaSuccess) {
    ptr_ = nullptr;
    return ResourceExhausted("cuda backend: cannot allocate " + std::to_string(want) +
                             " bytes of scratch: " + cudaGetErrorString(e));
  }
  size_ = want;
  return ptr_;
}

Status CudaStatus(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return OkStatus();
  if (e == cudaErrorMemoryAllocation) {
    return ResourceExhausted(std::string(what) + ": " + cudaGetErrorString(e));
  }
  return DeviceError(std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
                     ")");
}

TESSERA_BACKEND_DEFINE_FIND_RUNNER(OpFn)

}  // namespace tessera::cuda
