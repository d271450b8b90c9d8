// What the plugin ABI allows for each op, checked from shapes, dtypes, strides and params only
// (supports_op has no data). These are the reference (CPU) backend's rules; a plugin may reject
// more for its own limits (e.g. the CUDA backend's attention head-dim cap) but never less.
// Checks of data values (ids, slots, sequence lengths) belong to the runners.
#ifndef TESSERA_BACKEND_VALIDATE_H_
#define TESSERA_BACKEND_VALIDATE_H_

#include <cstdint>
#include <string>

#include "tessera/backend/node.h"
#include "tessera/backend/tensor.h"

namespace tessera::backend {

// Empty when the node is valid; otherwise why not (an invalid-argument message). Unknown ops and
// TSR_OP_NONE are invalid.
std::string ValidateNode(const NodeArgs& a);

// The limits a kernel-style (GPU) plugin adds to ValidateNode's rules.
struct KernelLimits {
  // Attention (ATTENTION, PAGED_ATTENTION) head dims above these are unsupported: query/key dims
  // (in[1]) above max_qk_head_dim, value dims (in[2]) above max_v_head_dim; 0 = no cap.
  int64_t max_qk_head_dim = 0;
  int64_t max_v_head_dim = 0;
  // Starts the attention message, e.g. "cuda attention" gives "cuda attention supports head dims
  // up to 256" ("... value head dims ..." when only the value dims are capped).
  const char* attention = "attention";
};

// Empty when ValidateNode accepts the node and it fits `limits`; otherwise why not.
// *unsupported tells a device limit (report unsupported) from an invalid node (invalid argument).
// Beyond the limits above, a MATMUL's typed (not quantized) weights need rows aligned to their
// element size: the kernels load whole elements.
std::string ValidateKernelNode(const NodeArgs& a, const KernelLimits& limits, bool* unsupported);

// The convolution viewed as 2-D (1-D convs have H = KH = 1, no H stride/pad/dilation).
struct ConvGeometry {
  int64_t B = 0, Cin = 0, H = 0, W = 0, Cout = 0, KH = 0, KW = 0, Ho = 0, Wo = 0;
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;
};

// The geometry of a CONV1D/CONV2D node whose x [B, Cin, (H,) W] and weight [Cout, Cin/g, (KH,) KW]
// have the right ranks, and whether `out` has the shape it produces. Zero (unset) stride,
// dilation and groups mean 1.
std::string ConvGeometryFor(const NodeArgs& a, ConvGeometry* c);

// The sub-views of a validated CONCAT's output that receive in0 (`first`) and in1 (`second`).
void ConcatParts(const NodeArgs& a, TensorRef* first, TensorRef* second);

}  // namespace tessera::backend

#endif  // TESSERA_BACKEND_VALIDATE_H_
