// CONV1D / CONV2D (stride, padding, dilation, groups) as im2col + the matmul core: for each
// (batch, group) the input patches form an [positions, Cin/groups * kernel] matrix that is
// multiplied by the group's weight rows [Cout/groups, Cin/groups * kernel]. Weights may be any
// matmul weight dtype (contiguous); the output channel dim is the matmul's column dim, so the
// output is written with its own strides.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backends/cpu/ops.h"

namespace tessera::cpu {
namespace {

// The convolution viewed as 2-D (1-D convs have H = KH = 1, no H stride/pad/dilation).
struct ConvShape {
  int64_t B, Cin, H, W, Cout, KH, KW, Ho, Wo;
  int64_t sh, sw, ph, pw, dh, dw, groups;
};

ConvShape GetShape(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  ConvShape c{};
  const bool is2d = a.node->op == TSR_OP_CONV2D;
  c.B = x.ne[0];
  c.Cin = x.ne[1];
  c.H = is2d ? x.ne[2] : 1;
  c.W = x.dim(-1);
  c.Cout = w.ne[0];
  c.KH = is2d ? w.ne[2] : 1;
  c.KW = w.dim(-1);
  if (is2d) {
    c.sh = a.ip(0), c.sw = a.ip(1), c.ph = a.ip(2), c.pw = a.ip(3), c.dh = a.ip(4), c.dw = a.ip(5);
    c.groups = a.ip(6);
  } else {
    c.sh = 1, c.sw = a.ip(0), c.ph = 0, c.pw = a.ip(1), c.dh = 1, c.dw = a.ip(2),
    c.groups = a.ip(3);
  }
  // Unset (zero) stride/dilation/groups mean 1.
  c.sh = std::max<int64_t>(c.sh, 1), c.sw = std::max<int64_t>(c.sw, 1);
  c.dh = std::max<int64_t>(c.dh, 1), c.dw = std::max<int64_t>(c.dw, 1);
  c.groups = std::max<int64_t>(c.groups, 1);
  c.Ho = (c.H + 2 * c.ph - c.dh * (c.KH - 1) - 1) / c.sh + 1;
  c.Wo = (c.W + 2 * c.pw - c.dw * (c.KW - 1) - 1) / c.sw + 1;
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

Status ValidateConv(const OpArgs& a) {
  const bool is2d = a.node->op == TSR_OP_CONV2D;
  const int nd = is2d ? 4 : 3;
  TSR_RETURN_IF_ERROR(RequireInput(a, 0, "x", TSR_DTYPE_F32));
  TSR_RETURN_IF_ERROR(RequireInput(a, 1, "weight"));
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  const TensorRef& out = *a.out;
  TSR_RETURN_IF_ERROR(RequireNdim(x, nd, "x"));
  TSR_RETURN_IF_ERROR(RequireNdim(w, nd, "weight"));
  TSR_RETURN_IF_ERROR(RequireDtype(out, TSR_DTYPE_F32, "output"));
  TSR_RETURN_IF_ERROR(RequireNdim(out, nd, "output"));
  const int n_params = is2d ? 7 : 4;
  for (int i = 0; i < n_params; ++i) {
    if (a.ip(i) < 0) return InvalidArgument("conv iparams must be >= 0");
  }
  if (!(w.dtype == TSR_DTYPE_F32 || w.dtype == TSR_DTYPE_F16 || w.dtype == TSR_DTYPE_BF16 ||
        IsQuantized(w.dtype)) ||
      !w.IsContiguous()) {
    return InvalidArgument("weight must be contiguous f32/f16/bf16/q8/q4, got " + ShapeString(w));
  }
  const ConvShape c = GetShape(a);
  if (c.Cin % c.groups != 0 || c.Cout % c.groups != 0 || w.ne[1] != c.Cin / c.groups) {
    return InvalidArgument("channels do not split into " + std::to_string(c.groups) +
                           " groups: x " + ShapeString(x) + ", weight " + ShapeString(w));
  }
  if (c.Ho < 1 || c.Wo < 1) return InvalidArgument("the kernel does not fit the padded input");
  const bool shape_ok = out.ne[0] == c.B && out.ne[1] == c.Cout && out.dim(-1) == c.Wo &&
                        (!is2d || out.ne[2] == c.Ho);
  if (!shape_ok)
    return InvalidArgument("output " + ShapeString(out) +
                           " does not match the convolution's output shape");
  for (int i = 0; i < nd; ++i) {
    if (x.nb[i] % 4 != 0 || out.nb[i] % 4 != 0)
      return InvalidArgument("f32 strides must be multiples of 4 bytes");
  }
  // Output positions are the matmul's rows: they need one stride across (H, W).
  if (is2d && c.Ho > 1 && out.nb[2] != c.Wo * out.nb[3])
    return InvalidArgument("output rows (H, W) must be contiguous together");
  if (const TensorRef* bias = a.input(2)) {
    TSR_RETURN_IF_ERROR(RequireDtype(*bias, TSR_DTYPE_F32, "bias"));
    if (bias->ndim != 1 || bias->ne[0] != c.Cout || !bias->InnerContiguous())
      return InvalidArgument("bias must be contiguous [Cout]");
  }
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
