// The op registry, TensorRef helpers, broadcast walks and the device scratch.
#include "backends/cuda/ops.h"

#include <algorithm>

namespace tessera::cuda {

int64_t DtypeSize(tsr_dtype t) {
  switch (t) {
    case TSR_DTYPE_F32:
    case TSR_DTYPE_I32: return 4;
    case TSR_DTYPE_F16:
    case TSR_DTYPE_BF16: return 2;
    case TSR_DTYPE_I64: return 8;
    case TSR_DTYPE_I8:
    case TSR_DTYPE_U8: return 1;
    default: return 0;
  }
}

const char* DtypeName(tsr_dtype t) {
  switch (t) {
    case TSR_DTYPE_F32: return "f32";
    case TSR_DTYPE_F16: return "f16";
    case TSR_DTYPE_BF16: return "bf16";
    case TSR_DTYPE_I32: return "i32";
    case TSR_DTYPE_I64: return "i64";
    case TSR_DTYPE_I8: return "i8";
    case TSR_DTYPE_U8: return "u8";
    case TSR_DTYPE_Q8_B32: return "q8_b32";
    case TSR_DTYPE_Q4_B32: return "q4_b32";
    default: return "invalid-dtype";
  }
}

int64_t TensorRef::NumElements() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= ne[i];
  return n;
}

int64_t TensorRef::Rows() const {
  int64_t n = 1;
  for (int i = 0; i + 1 < ndim; ++i) n *= ne[i];
  return n;
}

bool TensorRef::IsContiguous() const {
  if (ndim == 0) return true;
  int64_t expect;
  int last = ndim - 1;
  if (IsQuantized(dtype)) {
    if (ndim == 1) return true;
    expect = ne[last] / TSR_QBLOCK * BlockBytes(dtype);
    last = ndim - 2;
  } else {
    expect = DtypeSize(dtype);
  }
  for (int i = last; i >= 0; --i) {
    if (ne[i] > 1 && nb[i] != expect) return false;
    expect *= ne[i];
  }
  return true;
}

int64_t TensorRef::Extent() const {
  if (ndim == 0) return IsQuantized(dtype) ? 0 : DtypeSize(dtype);
  for (int i = 0; i < ndim; ++i) {
    if (ne[i] == 0) return 0;
  }
  int64_t end = 0;
  if (IsQuantized(dtype)) {
    for (int i = 0; i + 1 < ndim; ++i) end += (ne[i] - 1) * nb[i];
    return end + ne[ndim - 1] / TSR_QBLOCK * BlockBytes(dtype);
  }
  for (int i = 0; i < ndim; ++i) end += (ne[i] - 1) * nb[i];
  return end + DtypeSize(dtype);
}

std::string ShapeString(const TensorRef& t) {
  std::string s = DtypeName(t.dtype);
  s += "[";
  for (int i = 0; i < t.ndim; ++i) {
    if (i) s += ", ";
    s += std::to_string(t.ne[i]);
  }
  return s + "]";
}

bool BroadcastsTo(const TensorRef& src, const TensorRef& dst) {
  if (src.ndim > dst.ndim) return false;
  for (int i = 1; i <= src.ndim; ++i) {
    const int64_t s = src.ne[src.ndim - i];
    if (s != 1 && s != dst.ne[dst.ndim - i]) return false;
  }
  return true;
}

bool SameShape(const TensorRef& a, const TensorRef& b) {
  if (a.ndim != b.ndim) return false;
  for (int i = 0; i < a.ndim; ++i) {
    if (a.ne[i] != b.ne[i]) return false;
  }
  return true;
}

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

namespace {

constexpr OpKernel kKernels[TSR_OP_COUNT] = {
    {"NONE", nullptr, nullptr},
    {"MATMUL", ValidateMatmul, RunMatmul},
    {"ADD", ValidateBinary, RunBinary},
    {"SUB", ValidateBinary, RunBinary},
    {"MUL", ValidateBinary, RunBinary},
    {"DIV", ValidateBinary, RunBinary},
    {"SCALE", ValidateUnary, RunUnary},
    {"SILU", ValidateUnary, RunUnary},
    {"GELU", ValidateUnary, RunUnary},
    {"GELU_TANH", ValidateUnary, RunUnary},
    {"RELU", ValidateUnary, RunUnary},
    {"TANH", ValidateUnary, RunUnary},
    {"SIGMOID", ValidateUnary, RunUnary},
    {"SOFTCAP", ValidateUnary, RunUnary},
    {"SWIGLU", ValidateGated, RunGated},
    {"GEGLU", ValidateGated, RunGated},
    {"RMS_NORM", ValidateNorm, RunNorm},
    {"LAYER_NORM", ValidateNorm, RunNorm},
    {"ROPE", ValidateRope, RunRope},
    {"SOFTMAX", ValidateSoftmax, RunSoftmax},
    {"ATTENTION", ValidateAttention, RunAttention},
    {"KV_WRITE", ValidateKvWrite, RunKvWrite},
    {"PAGED_ATTENTION", ValidatePagedAttention, RunPagedAttention},
    {"GET_ROWS", ValidateGetRows, RunGetRows},
    {"COPY", ValidateCopy, RunCopy},
    {"CONCAT", ValidateConcat, RunConcat},
    {"CONV1D", ValidateConv, RunConv},
    {"CONV2D", ValidateConv, RunConv},
    {"SUM", ValidateReduce, RunReduce},
    {"MEAN", ValidateReduce, RunReduce},
    {"MAX", ValidateReduce, RunReduce},
};

}  // namespace

const OpKernel* FindOpKernel(int op) {
  if (op <= TSR_OP_NONE || op >= TSR_OP_COUNT) return nullptr;
  return &kKernels[op];
}

const char* OpName(int op) {
  if (op < 0 || op >= TSR_OP_COUNT) return "UNKNOWN_OP";
  return kKernels[op].name;
}

}  // namespace tessera::cuda
