// CONV1D / CONV2D (stride, padding, dilation, groups), direct: one thread an output element,
// summing its (ci, kh, kw) window in that fixed order with fused multiply-adds. Front-end convs
// (Whisper, ViT patch embedding) run once per request, so plain code is enough for now; an
// implicit-GEMM tensor-core version is future work.
#include "backends/cuda/dev_common.cuh"

namespace tessera::cuda {
namespace {

__global__ void ConvKernel(ConvParams p) {
  GridDepWait();
  AllowDependents();
  const int64_t total = p.B * p.Cout * p.Ho * p.Wo;
  const int64_t cg = p.Cin / p.groups, coutg = p.Cout / p.groups;
  for (int64_t u = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; u < total;
       u += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = u % p.Wo;
    int64_t r = u / p.Wo;
    const int64_t oh = r % p.Ho;
    r /= p.Ho;
    const int64_t co = r % p.Cout, b = r / p.Cout;
    const int64_t g = co / coutg;
    const uint8_t* wrow = p.w + co * p.w_row_bytes;
    float s = 0.0f;
    for (int64_t ci = 0; ci < cg; ++ci) {
      const uint8_t* plane = p.x + b * p.xs[0] + (g * cg + ci) * p.xs[1];
      for (int64_t kh = 0; kh < p.KH; ++kh) {
        const int64_t ih = oh * p.sh - p.ph + kh * p.dh;
        for (int64_t kw = 0; kw < p.KW; ++kw) {
          const int64_t iw = ow * p.sw - p.pw + kw * p.dw;
          if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;  // zero padding
          const float xv = *reinterpret_cast<const float*>(plane + ih * p.xs[2] + iw * p.xs[3]);
          s = fmaf(xv, WeightAt(wrow, p.w_dtype, (ci * p.KH + kh) * p.KW + kw), s);
        }
      }
    }
    if (p.bias != nullptr) s += p.bias[co];
    *reinterpret_cast<float*>(p.out + b * p.os[0] + co * p.os[1] + oh * p.os[2] + ow * p.os[3]) = s;
  }
}

}  // namespace

cudaError_t LaunchConv(const ConvParams& p, cudaStream_t stream) {
  const int64_t total = p.B * p.Cout * p.Ho * p.Wo;
  if (total == 0) return cudaSuccess;
  constexpr int kThreads = 128;
  LaunchK(ConvKernel, GridFor(total, kThreads), kThreads, 0, stream, p);
  return cudaGetLastError();
}

}  // namespace tessera::cuda
