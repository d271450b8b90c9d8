// The CUDA backend's host-side op layer: the tensor view it validates, the op registry (for every
// tsr_op a validator, shared by supports_op and execute, and a runner that enqueues kernels) and
// the per-device resources runners use. Host C++ only; kernels are behind launch.h.
#ifndef TESSERA_BACKENDS_CUDA_OPS_H_
#define TESSERA_BACKENDS_CUDA_OPS_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "backends/cuda/launch.h"
#include "tessera/core/status.h"
#include "tessera/plugin_api.h"
#include "tessera/quant_formats.h"

namespace tessera::cuda {

// Bytes of one element; 0 for the block-quantized types (see BlockBytes).
int64_t DtypeSize(tsr_dtype t);
inline bool IsQuantized(tsr_dtype t) {
  return t == TSR_DTYPE_Q8_B32 || t == TSR_DTYPE_Q4_B32;
}
inline int64_t BlockBytes(tsr_dtype t) {
  return t == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES
                               : (t == TSR_DTYPE_Q4_B32 ? TSR_BLOCK_Q4_BYTES : 0);
}
const char* DtypeName(tsr_dtype t);

// A tsr_tensor as validated by the host: shape, byte strides, and (when executing) the device
// address of element [0, ..., 0].
struct TensorRef {
  tsr_dtype dtype = TSR_DTYPE_F32;
  int ndim = 0;
  int64_t ne[TSR_MAX_DIMS] = {};  // shape, outermost first
  int64_t nb[TSR_MAX_DIMS] = {};  // byte strides
  uint8_t* data = nullptr;        // device pointer; null while only validating
  const char* name = nullptr;

  // Dimension i, counted from the end when negative; 1 when the tensor has fewer dims.
  int64_t dim(int i) const {
    const int k = i < 0 ? ndim + i : i;
    return (k < 0 || k >= ndim) ? 1 : ne[k];
  }
  // Byte stride of dim(i), 0 when the dimension does not exist.
  int64_t stride(int i) const {
    const int k = i < 0 ? ndim + i : i;
    return (k < 0 || k >= ndim) ? 0 : nb[k];
  }
  int64_t NumElements() const;
  int64_t Rows() const;  // product of every dim but the innermost
  bool InnerContiguous() const {
    return ndim == 0 || IsQuantized(dtype) || ne[ndim - 1] <= 1 || nb[ndim - 1] == DtypeSize(dtype);
  }
  bool IsContiguous() const;
  int64_t Extent() const;  // bytes from data to one past the last element (0 if empty)
  template <typename T>
  T* As() const {
    return reinterpret_cast<T*>(data);
  }
};

std::string ShapeString(const TensorRef& t);
bool BroadcastsTo(const TensorRef& src, const TensorRef& dst);
bool SameShape(const TensorRef& a, const TensorRef& b);

// Walks `ts` (up to three; slot k of the result) over the dims of `shape` (all of them, or all
// but the innermost when `outer_only`), numpy-broadcasting where a tensor's dim is 1 or missing.
// A null entry gets zero strides.
Walk3 MakeWalk(const TensorRef& shape, const TensorRef* const* ts, int n, bool outer_only);

// Device scratch memory of one device, grown on demand and reused (weights and activations live
// in host-owned buffers; this holds per-call intermediates such as split activations). Growing
// synchronizes the stream, so steady state allocates nothing. Not thread-safe: one per device,
// and the ABI serializes calls on a device.
class Scratch {
 public:
  ~Scratch();
  StatusOr<void*> Get(uint64_t bytes, cudaStream_t stream);

 private:
  void* ptr_ = nullptr;
  uint64_t size_ = 0;
};

// What a runner needs from its device.
struct RunContext {
  cudaStream_t stream = nullptr;
  int* err_flag = nullptr;  // device word of DeviceErrorBits
  int matmul_terms = 3;     // bf16 pieces of f32 activations on the tensor-core path
  Scratch* scratch = nullptr;
};

struct OpArgs {
  const tsr_node* node = nullptr;
  int n_in = 0;
  const TensorRef* in[TSR_MAX_INPUTS] = {};  // nullptr where the input is absent
  const TensorRef* out = nullptr;
  RunContext* ctx = nullptr;  // null while only validating

  const TensorRef* input(int i) const { return i < n_in ? in[i] : nullptr; }
  int64_t ip(int i) const { return node->iparams[i]; }
  float fp(int i) const { return node->fparams[i]; }
};

using OpFn = Status (*)(const OpArgs&);
struct OpKernel {
  const char* name;
  OpFn validate;  // OK = this backend runs the node as given (shapes, dtypes, params only)
  OpFn run;       // REQUIRES: validate returned OK and every tensor has data
};

const OpKernel* FindOpKernel(int op);  // nullptr for NONE and unknown values
const char* OpName(int op);

// The convolution's geometry (sizes, stride/pad/dilation, groups; not pointers or strides), and
// whether `out` has the shape it produces.
Status ConvShapeFor(const OpArgs& a, ConvParams* p);

// Turns a launch error into a Status naming the op.
Status CudaStatus(cudaError_t e, const char* what);

#define TSR_CUDA_DECLARE_OP(Name)         \
  Status Validate##Name(const OpArgs& a); \
  Status Run##Name(const OpArgs& a);
TSR_CUDA_DECLARE_OP(Matmul)
TSR_CUDA_DECLARE_OP(Binary)
TSR_CUDA_DECLARE_OP(Unary)
TSR_CUDA_DECLARE_OP(Gated)
TSR_CUDA_DECLARE_OP(Norm)
TSR_CUDA_DECLARE_OP(Softmax)
TSR_CUDA_DECLARE_OP(Reduce)
TSR_CUDA_DECLARE_OP(Rope)
TSR_CUDA_DECLARE_OP(Attention)
TSR_CUDA_DECLARE_OP(PagedAttention)
TSR_CUDA_DECLARE_OP(KvWrite)
TSR_CUDA_DECLARE_OP(GetRows)
TSR_CUDA_DECLARE_OP(Copy)
TSR_CUDA_DECLARE_OP(Concat)
TSR_CUDA_DECLARE_OP(Conv)
#undef TSR_CUDA_DECLARE_OP

}  // namespace tessera::cuda

#endif  // TESSERA_BACKENDS_CUDA_OPS_H_
