// The op registry, TensorRef helpers and the validation helpers shared by the kernel files.
#include "backends/cpu/ops.h"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace tessera::cpu {

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

std::string ShapeString(const TensorRef& t) {
  std::string s = DtypeName(t.dtype);
  s += "[";
  for (int i = 0; i < t.ndim; ++i) {
    if (i) s += ", ";
    s += std::to_string(t.ne[i]);
  }
  s += "]";
  return s;
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

RowWalker::RowWalker(const TensorRef& shape, const TensorRef* const* ts, int n) {
  outer_ = shape.ndim > 0 ? shape.ndim - 1 : 0;
  for (int d = 0; d < outer_; ++d) {
    ne_[d] = shape.ne[d];
    rows_ *= shape.ne[d];
  }
  for (int k = 0; k < n && k < kMaxTensors; ++k) {
    const TensorRef& t = *ts[k];
    const int shift = shape.ndim - t.ndim;  // t's dim j sits at shape dim j + shift
    for (int d = 0; d < outer_; ++d) {
      const int j = d - shift;
      nb_[k][d] = (j < 0 || t.ne[j] == 1) ? 0 : t.nb[j];
    }
  }
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

float* Workspace::Floats(int thread, size_t n) {
  std::vector<float>& v = per_thread_.at(static_cast<size_t>(thread));
  // 16 spare floats let us hand out a 64-byte-aligned pointer inside the vector.
  if (v.size() < n + 16) v.resize(n + 16);
  const uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
  return reinterpret_cast<float*>((p + 63) & ~uintptr_t{63});
}

Status RequireDtype(const TensorRef& t, tsr_dtype dtype, const char* what) {
  if (t.dtype != dtype) {
    return InvalidArgument(std::string(what) + " must be " + DtypeName(dtype) + ", got " +
                           ShapeString(t));
  }
  return OkStatus();
}

Status RequireInput(const OpArgs& a, int i, const char* what, int dtype) {
  const TensorRef* t = a.input(i);
  if (t == nullptr)
    return InvalidArgument(std::string("missing input ") + std::to_string(i) + " (" + what + ")");
  if (dtype >= 0) return RequireDtype(*t, static_cast<tsr_dtype>(dtype), what);
  return OkStatus();
}

Status RequireNdim(const TensorRef& t, int ndim, const char* what) {
  if (t.ndim != ndim) {
    return InvalidArgument(std::string(what) + " must have " + std::to_string(ndim) +
                           " dims, got " + ShapeString(t));
  }
  return OkStatus();
}

Status RequireInnerContiguous(const TensorRef& t, const char* what) {
  if (!t.InnerContiguous()) {
    return InvalidArgument(std::string(what) + " must be contiguous in its innermost dim");
  }
  return OkStatus();
}

void ParallelRanges(ThreadPool* pool, int64_t n, int64_t grain,
                    const std::function<void(int64_t begin, int64_t end, int thread)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  // Four chunks a thread balance uneven work without making tasks tiny.
  const int64_t want = static_cast<int64_t>(pool->num_threads()) * 4;
  const int64_t chunk = std::max(grain, (n + want - 1) / want);
  const int64_t n_tasks = (n + chunk - 1) / chunk;
  pool->ParallelFor(n_tasks, [&](int64_t task, int thread) {
    const int64_t begin = task * chunk;
    fn(begin, std::min(n, begin + chunk), thread);
  });
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

}  // namespace tessera::cpu
