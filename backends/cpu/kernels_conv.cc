// CONV1D / CONV2D (stride, padding, dilation, groups) as im2col + the matmul core: for each
// (batch, group) the input patches form an [positions, Cin/groups * kernel] matrix that is
// multiplied by the group's weight rows [Cout/groups, Cin/groups * kernel]. Weights may be any
// matmul weight dtype (contiguous); the output channel dim is the matmul's column dim, so the
// output is written with its own strides.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backends/cpu/ops.h"
#include "tessera/backend/validate.h"

namespace tessera::cpu {
namespace {

using ConvShape = backend::ConvGeometry;

// REQUIRES: a validated node (backend::ValidateNode checked the same geometry).
ConvShape GetShape(const OpArgs& a) {
  ConvShape c;
  backend::ConvGeometryFor(a, &c);
  return c;
}

// patches[m, (ci * KH + kh) * KW + kw] for output position m = oh * Wo + ow of group g, batch b.
void Im2Col(const TensorRef& x, const ConvShape& c, int64_t b, int64_t g, float* patches) {
  const int64_t cg = c.Cin / c.groups, kdim = cg * c.KH * c.KW;
  const bool is2d = x.ndim == 4;
  for (int64_t oh = 0; oh < c.Ho; ++oh) {
    for (int64_t ow = 0; ow < c.Wo; ++ow) {
      float* row = patches + (oh * c.Wo + ow) * kdim;
      for (int64_t ci = 0; ci < cg; ++ci) {
        const uint8_t* plane = x.data + b * x.nb[0] + (g * cg + ci) * x.nb[1];
        for (int64_t kh = 0; kh < c.KH; ++kh) {
          const int64_t ih = oh * c.sh - c.ph + kh * c.dh;
          for (int64_t kw = 0; kw < c.KW; ++kw) {
            const int64_t iw = ow * c.sw - c.pw + kw * c.dw;
            float v = 0.0f;
            if (ih >= 0 && ih < c.H && iw >= 0 && iw < c.W) {
              const uint8_t* p = plane + (is2d ? ih * x.nb[2] : 0) + iw * x.nb[x.ndim - 1];
              std::memcpy(&v, p, 4);
            }
            row[(ci * c.KH + kh) * c.KW + kw] = v;
          }
        }
      }
    }
  }
}

}  // namespace

// Output positions are the matmul's rows: they need one stride across (H, W).
Status ValidateConvLayout(const OpArgs& a) {
  const ConvShape c = GetShape(a);
  const TensorRef& out = *a.out;
  if (out.ndim == 4 && c.Ho > 1 && out.nb[2] != c.Wo * out.nb[3])
    return InvalidArgument("output rows (H, W) must be contiguous together");
  return OkStatus();
}

Status RunConv(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  const TensorRef& out = *a.out;
  const TensorRef* bias = a.input(2);
  const ConvShape c = GetShape(a);
  const int64_t cg = c.Cin / c.groups, coutg = c.Cout / c.groups;
  const int64_t kdim = cg * c.KH * c.KW, M = c.Ho * c.Wo;
  const int64_t row_bytes =
      IsQuantized(w.dtype) ? kdim / TSR_QBLOCK * BlockBytes(w.dtype) : kdim * DtypeSize(w.dtype);
  // Front-end convs run once per request; the patch matrix is a transient host allocation.
  std::vector<float> patches(static_cast<size_t>(M * kdim));
  for (int64_t b = 0; b < c.B; ++b) {
    for (int64_t g = 0; g < c.groups; ++g) {
      Im2Col(x, c, b, g, patches.data());
      MatmulProblem p;
      p.x = patches.data();
      p.x_row_stride = kdim;
      p.M = M;
      p.K = kdim;
      p.N = coutg;
      p.w = w.data + g * coutg * row_bytes;
      p.w_row_bytes = row_bytes;
      p.w_dtype = w.dtype;
      p.bias = bias != nullptr ? bias->As<const float>() + g * coutg : nullptr;
      p.out = reinterpret_cast<float*>(out.data + b * out.nb[0] + g * coutg * out.nb[1]);
      p.out_row_stride = out.nb[out.ndim - 1] / 4;
      p.out_col_stride = out.nb[1] / 4;
      MatmulParallel(p, a.pool, a.ws);
    }
  }
  return OkStatus();
}

}  // namespace tessera::cpu
