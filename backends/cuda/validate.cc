// What the CUDA backend accepts: the ABI rules every backend shares (backend::ValidateNode, the
// CPU reference backend's rules and messages), plus the GPU's own limits. Checks of data values
// (ids, slots, sequence lengths, block tables) happen in the kernels, which flag bad values in
// the device error word instead of reading out of bounds (see plugin.cc).
#include "tessera/backend/validate.h"

#include <string>
#include <utility>

#include "backends/cuda/ops.h"

namespace tessera::cuda {

Status ValidateOp(const OpArgs& a) {
  if (std::string e = backend::ValidateNode(a); !e.empty()) return InvalidArgument(std::move(e));
  switch (a.node->op) {
    case TSR_OP_MATMUL: {
      // Typed weight loads need element-aligned rows on the GPU.
      const TensorRef& w = *a.in[1];
      if (!IsQuantized(w.dtype) && w.stride(-2) % DtypeSize(w.dtype) != 0)
        return InvalidArgument("weight row stride must be a multiple of its element size");
      return OkStatus();
    }
    case TSR_OP_ATTENTION:
    case TSR_OP_PAGED_ATTENTION:
      // One block holds a query head's row in shared memory / registers.
      if (a.in[1]->dim(-1) > kAttnMaxHeadDim || a.in[2]->dim(-1) > kAttnMaxHeadDim) {
        return Unsupported("cuda attention supports head dims up to " +
                           std::to_string(kAttnMaxHeadDim));
      }
      return OkStatus();
    default: return OkStatus();
  }
}

}  // namespace tessera::cuda
