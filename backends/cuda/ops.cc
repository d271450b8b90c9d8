// The runner registry, broadcast walks and the device scratch.
#include "backends/cuda/ops.h"

#include <algorithm>

namespace tessera::cuda {

Walk3 MakeWalk(const TensorRef& shape, const TensorRef* const* ts, int n, bool outer_only) {
  return backend::BroadcastWalk<Walk3>(shape, ts, n, outer_only);
}

Scratch::~Scratch() {
  if (ptr_ != nullptr) cudaFree(ptr_);
}

StatusOr<void*> Scratch::Get(uint64_t bytes, cudaStream_t stream) {
  if (bytes <= size_) return ptr_;
  // Growing needs a synchronization, which a stream being captured into a CUDA graph cannot do:
  // the caller falls back to running the nodes directly, and the next capture finds room.
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &capturing) == cudaSuccess &&
      capturing != cudaStreamCaptureStatusNone)
    return FailedPrecondition("scratch must grow, which a graph capture cannot do");
  ++generation_;
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

TESSERA_BACKEND_DEFINE_FIND_RUNNER_WITH(OpFn, TESSERA_BACKEND_OP_ARGMAX)

}  // namespace tessera::cuda
