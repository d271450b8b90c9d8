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
  bool unsupported = false;
  std::string e = backend::ValidateKernelNode(
      a, {kAttnMaxHeadDim, kAttnMaxHeadDim, "cuda attention"}, &unsupported);
  if (e.empty()) return OkStatus();
  return unsupported ? Unsupported(std::move(e)) : InvalidArgument(std::move(e));
}

}  // namespace tessera::cuda
