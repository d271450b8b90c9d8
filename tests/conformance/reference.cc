// Reference ops for the conformance suite. See reference.h. Speed does not matter here; every
// loop is the textbook formula, accumulated in double.
#include "reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <sstream>

namespace tessera::conformance {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

int64_t Numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

RefResult Fail(const std::string& message) {
  RefResult r;
  r.error = message;
  return r;
}

const Tensor* Input(const RefNode& node, size_t i) {
  return i < node.inputs.size() ? node.inputs[i] : nullptr;
}

double Sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}
double Silu(double x) {
  return x * Sigmoid(x);
}
double Gelu(double x) {
  return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}
double GeluTanh(double x) {
  const double k = std::sqrt(2.0 / M_PI);
  return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}

}  // namespace

// ---- Conversions ---------------------------------------------------------------------------

uint16_t F32ToF16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  if (std::isnan(value)) return sign | 0x7E00u;
  const double a = std::fabs(static_cast<double>(value));
  // 65504 is the largest finite half; 65520 is the tie between it and 65536, and ties go to the
  // even mantissa, i.e. up to infinity.
  if (a >= 65520.0) return sign | 0x7C00u;
  if (a < 0x1p-14) {
    // Zero or subnormal: a multiple of 2^-24. nearbyint rounds half to even (default mode).
    // A result of 1024 is the smallest normal, whose encoding is exactly 1024.
    return sign | static_cast<uint16_t>(std::nearbyint(a * 0x1p24));
  }
  int e;
  const double frac = std::frexp(a, &e);  // a = frac * 2^e, frac in [0.5, 1)
  const int exponent = e - 1;             // a = (1 + f) * 2^exponent
  // f * 1024 is exact in double; a rounded-up 1024 carries into the exponent field.
  const int mant = static_cast<int>(std::nearbyint((frac * 2.0 - 1.0) * 1024.0));
  return sign | static_cast<uint16_t>(((exponent + 15) << 10) + mant);
}

float F16ToF32(uint16_t bits) {
  const int exponent = (bits >> 10) & 0x1F;
  const int mant = bits & 0x3FF;
  double v;
  if (exponent == 0) {
    v = std::ldexp(static_cast<double>(mant), -24);
  } else if (exponent == 31) {
    v = mant ? std::numeric_limits<double>::quiet_NaN() : kInf;
  } else {
    v = std::ldexp(static_cast<double>(1024 + mant), exponent - 25);
  }
  return static_cast<float>((bits & 0x8000u) ? -v : v);
}

uint16_t F32ToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  if (std::isnan(value)) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  // Round to nearest even on the 16 dropped bits: add just under half, plus one more when the
  // kept part is odd. Overflow carries into the exponent and ends at infinity, as it should.
  const uint32_t kept_lsb = (bits >> 16) & 1u;
  bits += 0x7FFFu + kept_lsb;
  return static_cast<uint16_t>(bits >> 16);
}

float Bf16ToF32(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, 4);
  return f;
}

// ---- Quantization ----------------------------------------------------------------------------

void QuantizeRowQ8(const float* x, int64_t n, std::vector<uint8_t>* out) {
  for (int64_t b = 0; b < n / TSR_QBLOCK; ++b) {
    const float* xb = x + b * TSR_QBLOCK;
    float amax = 0.0f;
    for (int i = 0; i < TSR_QBLOCK; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f;  // f32, as the format specifies
    const uint16_t dh = F32ToF16(d);
    out->push_back(static_cast<uint8_t>(dh & 0xFF));  // little-endian
    out->push_back(static_cast<uint8_t>(dh >> 8));
    for (int i = 0; i < TSR_QBLOCK; ++i) {
      int q = 0;
      if (d != 0.0f) {
        const float v = xb[i] / d;
        q = static_cast<int>(std::round(v));  // std::round: halves away from zero
        q = std::clamp(q, -127, 127);
      }
      out->push_back(static_cast<uint8_t>(static_cast<int8_t>(q)));
    }
  }
}

void QuantizeRowQ4(const float* x, int64_t n, std::vector<uint8_t>* out) {
  for (int64_t b = 0; b < n / TSR_QBLOCK; ++b) {
    const float* xb = x + b * TSR_QBLOCK;
    float amax = 0.0f;
    float m = 0.0f;  // the value of largest magnitude, sign kept (first one on ties)
    for (int i = 0; i < TSR_QBLOCK; ++i) {
      if (std::fabs(xb[i]) > amax) {
        amax = std::fabs(xb[i]);
        m = xb[i];
      }
    }
    const float d = m / -8.0f;
    const uint16_t dh = F32ToF16(d);
    out->push_back(static_cast<uint8_t>(dh & 0xFF));
    out->push_back(static_cast<uint8_t>(dh >> 8));
    int nib[TSR_QBLOCK];
    for (int i = 0; i < TSR_QBLOCK; ++i) {
      nib[i] = 8;
      if (d != 0.0f) {
        const float v = xb[i] / d + 8.5f;
        nib[i] = std::clamp(static_cast<int>(std::trunc(v)), 0, 15);
      }
    }
    for (int i = 0; i < TSR_QBLOCK / 2; ++i) {
      out->push_back(static_cast<uint8_t>(nib[i] | (nib[i + 16] << 4)));
    }
  }
}

void DequantizeRowQ8(const uint8_t* blocks, int64_t n, float* out) {
  for (int64_t b = 0; b < n / TSR_QBLOCK; ++b) {
    const uint8_t* blk = blocks + b * TSR_BLOCK_Q8_BYTES;
    const float d = F16ToF32(static_cast<uint16_t>(blk[0] | (blk[1] << 8)));
    for (int i = 0; i < TSR_QBLOCK; ++i) {
      out[b * TSR_QBLOCK + i] = d * static_cast<float>(static_cast<int8_t>(blk[2 + i]));
    }
  }
}

void DequantizeRowQ4(const uint8_t* blocks, int64_t n, float* out) {
  for (int64_t b = 0; b < n / TSR_QBLOCK; ++b) {
    const uint8_t* blk = blocks + b * TSR_BLOCK_Q4_BYTES;
    const float d = F16ToF32(static_cast<uint16_t>(blk[0] | (blk[1] << 8)));
    for (int i = 0; i < TSR_QBLOCK; ++i) {
      const int nib = i < 16 ? (blk[2 + i] & 0x0F) : (blk[2 + i - 16] >> 4);
      out[b * TSR_QBLOCK + i] = d * static_cast<float>(nib - 8);
    }
  }
}

int64_t ElementBytes(tsr_dtype dtype) {
  switch (dtype) {
    case TSR_DTYPE_F32: return 4;
    case TSR_DTYPE_F16: return 2;
    case TSR_DTYPE_BF16: return 2;
    case TSR_DTYPE_I32: return 4;
    case TSR_DTYPE_I64: return 8;
    case TSR_DTYPE_I8: return 1;
    case TSR_DTYPE_U8: return 1;
    default: return 0;
  }
}

int64_t RowBytes(tsr_dtype dtype, int64_t n) {
  if (dtype == TSR_DTYPE_Q8_B32) return n / TSR_QBLOCK * TSR_BLOCK_Q8_BYTES;
  if (dtype == TSR_DTYPE_Q4_B32) return n / TSR_QBLOCK * TSR_BLOCK_Q4_BYTES;
  return n * ElementBytes(dtype);
}

bool IsQuantized(tsr_dtype dtype) {
  return dtype == TSR_DTYPE_Q8_B32 || dtype == TSR_DTYPE_Q4_B32;
}

const char* DtypeName(tsr_dtype dtype) {
  switch (dtype) {
    case TSR_DTYPE_F32: return "f32";
    case TSR_DTYPE_F16: return "f16";
    case TSR_DTYPE_BF16: return "bf16";
    case TSR_DTYPE_I32: return "i32";
    case TSR_DTYPE_I64: return "i64";
    case TSR_DTYPE_I8: return "i8";
    case TSR_DTYPE_U8: return "u8";
    case TSR_DTYPE_Q8_B32: return "q8";
    case TSR_DTYPE_Q4_B32: return "q4";
    default: return "?";
  }
}

// ---- Tensor ----------------------------------------------------------------------------------

int64_t Tensor::numel() const {
  return Numel(shape);
}

int64_t Tensor::dim(int64_t i) const {
  return shape[static_cast<size_t>(i < 0 ? ndim() + i : i)];
}

std::vector<int32_t> Tensor::ints() const {
  std::vector<int32_t> out(static_cast<size_t>(numel()));
  std::memcpy(out.data(), raw.data(), out.size() * 4);
  return out;
}

std::string Tensor::ShapeString() const {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

Tensor Decode(tsr_dtype dtype, std::vector<int64_t> shape, std::vector<uint8_t> raw) {
  Tensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.raw = std::move(raw);
  const int64_t n = t.numel();
  t.values.resize(static_cast<size_t>(n));
  const uint8_t* p = t.raw.data();
  for (int64_t i = 0; i < n && !IsQuantized(dtype); ++i) {
    switch (dtype) {
      case TSR_DTYPE_F32: std::memcpy(&t.values[i], p + 4 * i, 4); break;
      case TSR_DTYPE_F16:
        t.values[i] = F16ToF32(static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8)));
        break;
      case TSR_DTYPE_BF16:
        t.values[i] = Bf16ToF32(static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8)));
        break;
      case TSR_DTYPE_I32: {
        int32_t v;
        std::memcpy(&v, p + 4 * i, 4);
        t.values[i] = static_cast<float>(v);
        break;
      }
      default: t.values[i] = 0.0f;
    }
  }
  if (IsQuantized(dtype) && n > 0) {
    const int64_t inner = t.shape.back();
    const int64_t row_bytes = RowBytes(dtype, inner);
    for (int64_t r = 0; r < n / inner; ++r) {
      float* dst = t.values.data() + r * inner;
      if (dtype == TSR_DTYPE_Q8_B32)
        DequantizeRowQ8(p + r * row_bytes, inner, dst);
      else
        DequantizeRowQ4(p + r * row_bytes, inner, dst);
    }
  }
  return t;
}

Tensor Encode(tsr_dtype dtype, std::vector<int64_t> shape, const std::vector<float>& values) {
  const int64_t n = Numel(shape);
  std::vector<uint8_t> raw;
  if (IsQuantized(dtype)) {
    const int64_t inner = shape.empty() ? 1 : shape.back();
    for (int64_t r = 0; inner > 0 && r < n / inner; ++r) {
      if (dtype == TSR_DTYPE_Q8_B32)
        QuantizeRowQ8(values.data() + r * inner, inner, &raw);
      else
        QuantizeRowQ4(values.data() + r * inner, inner, &raw);
    }
  } else {
    raw.resize(static_cast<size_t>(n * ElementBytes(dtype)));
    for (int64_t i = 0; i < n; ++i) {
      uint8_t* p = raw.data() + i * ElementBytes(dtype);
      if (dtype == TSR_DTYPE_F32) {
        std::memcpy(p, &values[i], 4);
      } else if (dtype == TSR_DTYPE_F16 || dtype == TSR_DTYPE_BF16) {
        const uint16_t h = dtype == TSR_DTYPE_F16 ? F32ToF16(values[i]) : F32ToBf16(values[i]);
        p[0] = static_cast<uint8_t>(h & 0xFF);
        p[1] = static_cast<uint8_t>(h >> 8);
      } else if (dtype == TSR_DTYPE_I32) {
        const int32_t v = static_cast<int32_t>(values[i]);
        std::memcpy(p, &v, 4);
      }
    }
  }
  return Decode(dtype, std::move(shape), std::move(raw));
}

Tensor MakeF32(std::vector<int64_t> shape, std::vector<float> values) {
  return Encode(TSR_DTYPE_F32, std::move(shape), values);
}

Tensor MakeI32(std::vector<int64_t> shape, const std::vector<int32_t>& values) {
  std::vector<uint8_t> raw(values.size() * 4);
  std::memcpy(raw.data(), values.data(), raw.size());
  return Decode(TSR_DTYPE_I32, std::move(shape), std::move(raw));
}

// ---- Ops -------------------------------------------------------------------------------------
namespace {

RefResult FromValues(std::vector<int64_t> shape, std::vector<double> values) {
  RefResult r;
  std::vector<float> f(values.begin(), values.end());
  r.out = MakeF32(std::move(shape), std::move(f));
  return r;
}

// out[M.., N] = x[M.., K] . w[N, K]^T + bias[N]; batched when w is [B, N, K] and x [B, M, K].
RefResult Matmul(const RefNode& node) {
  const Tensor* x = Input(node, 0);
  const Tensor* w = Input(node, 1);
  const Tensor* bias = Input(node, 2);
  if (!x || !w || (w->ndim() != 2 && w->ndim() != 3)) return Fail("MATMUL: bad inputs");
  const bool batched = w->ndim() == 3;
  const int64_t batch = batched ? w->dim(0) : 1;
  const int64_t n = w->dim(-2);
  const int64_t k = w->dim(-1);
  if (x->dim(-1) != k) return Fail("MATMUL: K mismatch");
  if (batched && (x->ndim() != 3 || x->dim(0) != batch)) return Fail("MATMUL: batch mismatch");
  const int64_t m = x->numel() / k / batch;
  std::vector<int64_t> shape = x->shape;
  shape.back() = n;
  std::vector<double> out(static_cast<size_t>(batch * m * n));
  std::vector<float> mag(out.size());
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < m; ++i) {
      const float* xr = x->values.data() + (b * m + i) * k;
      for (int64_t j = 0; j < n; ++j) {
        const float* wr = w->values.data() + (b * n + j) * k;
        double acc = bias ? bias->values[j] : 0.0;
        double abs_acc = std::fabs(acc);
        for (int64_t kk = 0; kk < k; ++kk) {
          acc += static_cast<double>(xr[kk]) * wr[kk];
          abs_acc += std::fabs(static_cast<double>(xr[kk]) * wr[kk]);
        }
        out[(b * m + i) * n + j] = acc;
        mag[(b * m + i) * n + j] = static_cast<float>(abs_acc);
      }
    }
  }
  RefResult r = FromValues(std::move(shape), std::move(out));
  r.magnitude = std::move(mag);
  return r;
}

// Index into `b` (broadcast to `out_shape`, trailing dims aligned) of output element `flat`.
int64_t BroadcastIndex(const std::vector<int64_t>& out_shape, const std::vector<int64_t>& b_shape,
                       int64_t flat) {
  const size_t lead = out_shape.size() - b_shape.size();
  int64_t index = 0;
  int64_t b_stride = 1;
  for (size_t d = out_shape.size(); d-- > lead;) {
    const int64_t coord = flat % out_shape[d];
    flat /= out_shape[d];
    const int64_t bd = b_shape[d - lead];
    index += (bd == 1 ? 0 : coord) * b_stride;
    b_stride *= bd;
  }
  return index;
}

RefResult Binary(const RefNode& node) {
  const Tensor* a = Input(node, 0);
  const Tensor* b = Input(node, 1);
  if (!a || !b || b->ndim() > a->ndim()) return Fail("binary: bad inputs");
  for (int64_t d = 1; d <= b->ndim(); ++d) {
    if (b->dim(-d) != 1 && b->dim(-d) != a->dim(-d)) return Fail("binary: not broadcastable");
  }
  std::vector<double> out(static_cast<size_t>(a->numel()));
  for (int64_t i = 0; i < a->numel(); ++i) {
    const double x = a->values[i];
    const double y = b->values[BroadcastIndex(a->shape, b->shape, i)];
    switch (node.op) {
      case TSR_OP_ADD: out[i] = x + y; break;
      case TSR_OP_SUB: out[i] = x - y; break;
      case TSR_OP_MUL: out[i] = x * y; break;
      default: out[i] = x / y; break;
    }
  }
  return FromValues(a->shape, std::move(out));
}

RefResult Unary(const RefNode& node) {
  const Tensor* a = Input(node, 0);
  if (!a) return Fail("unary: missing input");
  const double p0 = node.fparams[0];
  const double p1 = node.fparams[1];
  std::function<double(double)> f;
  switch (node.op) {
    case TSR_OP_SCALE: f = [&](double x) { return x * p0 + p1; }; break;
    case TSR_OP_SILU: f = Silu; break;
    case TSR_OP_GELU: f = Gelu; break;
    case TSR_OP_GELU_TANH: f = GeluTanh; break;
    case TSR_OP_RELU: f = [](double x) { return x > 0 ? x : 0.0; }; break;
    case TSR_OP_TANH: f = [](double x) { return std::tanh(x); }; break;
    case TSR_OP_SIGMOID: f = Sigmoid; break;
    case TSR_OP_SOFTCAP: f = [&](double x) { return p0 * std::tanh(x / p0); }; break;
    default: return Fail("unary: not a unary op");
  }
  std::vector<double> out(static_cast<size_t>(a->numel()));
  for (int64_t i = 0; i < a->numel(); ++i) out[i] = f(a->values[i]);
  return FromValues(a->shape, std::move(out));
}

RefResult Gated(const RefNode& node) {
  const Tensor* a = Input(node, 0);
  const Tensor* b = Input(node, 1);
  if (!a || !b || a->shape != b->shape) return Fail("gated: inputs must have one shape");
  std::vector<double> out(static_cast<size_t>(a->numel()));
  for (int64_t i = 0; i < a->numel(); ++i) {
    const double act = node.op == TSR_OP_SWIGLU ? Silu(a->values[i]) : GeluTanh(a->values[i]);
    out[i] = act * b->values[i];
  }
  return FromValues(a->shape, std::move(out));
}

// RMS_NORM: x / sqrt(mean(x^2) + eps) * (w + offset); without a weight the factor is 1.
// LAYER_NORM: (x - mean) / sqrt(var + eps) * w + b, population variance (as torch).
RefResult Norm(const RefNode& node) {
  const Tensor* x = Input(node, 0);
  const Tensor* w = Input(node, 1);
  const Tensor* b = Input(node, 2);
  if (!x) return Fail("norm: missing input");
  const int64_t d = x->dim(-1);
  const double eps = node.fparams[0];
  std::vector<double> out(static_cast<size_t>(x->numel()));
  for (int64_t r = 0; r < x->rows(); ++r) {
    const float* xr = x->values.data() + r * d;
    double mean = 0.0;
    for (int64_t i = 0; i < d; ++i) mean += xr[i];
    mean /= static_cast<double>(d);
    double sq = 0.0;
    for (int64_t i = 0; i < d; ++i) {
      const double c = node.op == TSR_OP_RMS_NORM ? xr[i] : xr[i] - mean;
      sq += c * c;
    }
    const double inv = 1.0 / std::sqrt(sq / static_cast<double>(d) + eps);
    for (int64_t i = 0; i < d; ++i) {
      double y;
      if (node.op == TSR_OP_RMS_NORM) {
        y = xr[i] * inv * (w ? w->values[i] + static_cast<double>(node.fparams[1]) : 1.0);
      } else {
        y = (xr[i] - mean) * inv * (w ? w->values[i] : 1.0) + (b ? b->values[i] : 0.0);
      }
      out[r * d + i] = y;
    }
  }
  return FromValues(x->shape, std::move(out));
}

// x[T, H, D], positions[T], inv_freq[R/2]; iparams {0 neox | 1 interleaved, R}; fparams {scale}.
RefResult Rope(const RefNode& node) {
  const Tensor* x = Input(node, 0);
  const Tensor* pos = Input(node, 1);
  const Tensor* inv_freq = Input(node, 2);
  if (!x || !pos || !inv_freq || x->ndim() != 3) return Fail("ROPE: bad inputs");
  const int64_t t = x->dim(0), h = x->dim(1), d = x->dim(2);
  const int64_t rot = node.iparams[1];
  const bool interleaved = node.iparams[0] == 1;
  if (rot <= 0 || rot > d || rot % 2 || inv_freq->numel() != rot / 2) return Fail("ROPE: bad R");
  const std::vector<int32_t> positions = pos->ints();
  std::vector<double> out(x->values.begin(), x->values.end());  // dims >= R pass through
  for (int64_t ti = 0; ti < t; ++ti) {
    for (int64_t hi = 0; hi < h; ++hi) {
      const float* xr = x->values.data() + (ti * h + hi) * d;
      double* yr = out.data() + (ti * h + hi) * d;
      for (int64_t i = 0; i < rot / 2; ++i) {
        // The angle is the f32 product, as PyTorch/HF form it (positions.float() @ inv_freq);
        // only the trig runs in double.
        const float angle = static_cast<float>(positions[ti]) * inv_freq->values[i];
        const double c = std::cos(static_cast<double>(angle)) * node.fparams[0];
        const double s = std::sin(static_cast<double>(angle)) * node.fparams[0];
        const int64_t i1 = interleaved ? 2 * i : i;
        const int64_t i2 = interleaved ? 2 * i + 1 : i + rot / 2;
        yr[i1] = xr[i1] * c - xr[i2] * s;
        yr[i2] = xr[i2] * c + xr[i1] * s;
      }
    }
  }
  return FromValues(x->shape, std::move(out));
}

RefResult Softmax(const RefNode& node) {
  const Tensor* x = Input(node, 0);
  const Tensor* mask = Input(node, 1);
  if (!x) return Fail("SOFTMAX: missing input");
  const int64_t n = x->dim(-1);
  std::vector<double> logits(static_cast<size_t>(x->numel()));
  for (int64_t i = 0; i < x->numel(); ++i) {
    logits[i] = static_cast<double>(x->values[i]) * node.fparams[0];
    if (mask) logits[i] += mask->values[BroadcastIndex(x->shape, mask->shape, i)];
  }
  std::vector<double> out(logits.size());
  for (int64_t r = 0; r < x->rows(); ++r) {
    double mx = -kInf;
    for (int64_t i = 0; i < n; ++i) mx = std::max(mx, logits[r * n + i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += std::exp(logits[r * n + i] - mx);
    for (int64_t i = 0; i < n; ++i) out[r * n + i] = std::exp(logits[r * n + i] - mx) / sum;
  }
  return FromValues(x->shape, std::move(out));
}

// One query row against a list of keys (already filtered for visibility). Writes out[dv].
struct AttnParams {
  double scale;
  double softcap;
  int64_t d;
  int64_t dv;
};
void AttendOne(const float* q, const std::vector<const float*>& keys,
               const std::vector<const float*>& vals, const AttnParams& p, double* out) {
  std::vector<double> logits(keys.size());
  double mx = -kInf;
  for (size_t j = 0; j < keys.size(); ++j) {
    double dot = 0.0;
    for (int64_t i = 0; i < p.d; ++i) dot += static_cast<double>(q[i]) * keys[j][i];
    double l = dot * p.scale;
    if (p.softcap > 0.0) l = p.softcap * std::tanh(l / p.softcap);
    logits[j] = l;
    mx = std::max(mx, l);
  }
  double sum = 0.0;
  for (double& l : logits) sum += (l = std::exp(l - mx));
  for (int64_t i = 0; i < p.dv; ++i) out[i] = 0.0;
  for (size_t j = 0; j < keys.size(); ++j) {
    for (int64_t i = 0; i < p.dv; ++i) out[i] += logits[j] / sum * vals[j][i];
  }
}

// Key position j is visible from query position qpos (see TSR_OP_ATTENTION).
bool Visible(int64_t qpos, int64_t j, bool causal, int64_t window) {
  if (causal && j > qpos) return false;
  if (window > 0 && qpos - j >= window) return false;
  return true;
}

RefResult Attention(const RefNode& node) {
  const Tensor *q = Input(node, 0), *k = Input(node, 1), *v = Input(node, 2);
  const Tensor *cu_q_t = Input(node, 3), *cu_k_t = Input(node, 4);
  if (!q || !k || !v || !cu_q_t || !cu_k_t) return Fail("ATTENTION: missing input");
  const int64_t hq = q->dim(1), hkv = k->dim(1), d = q->dim(2), dv = v->dim(2);
  if (hq % hkv != 0 || k->dim(2) != d) return Fail("ATTENTION: bad head shapes");
  const std::vector<int32_t> cu_q = cu_q_t->ints(), cu_k = cu_k_t->ints();
  const AttnParams p{node.fparams[0], node.fparams[1], d, dv};
  std::vector<double> out(static_cast<size_t>(q->dim(0) * hq * dv));
  for (size_t s = 0; s + 1 < cu_q.size(); ++s) {
    const int64_t q_len = cu_q[s + 1] - cu_q[s], k_len = cu_k[s + 1] - cu_k[s];
    for (int64_t i = 0; i < q_len; ++i) {
      const int64_t qpos = k_len - q_len + i;  // queries aligned to the end of their keys
      for (int64_t h = 0; h < hq; ++h) {
        const int64_t kvh = h / (hq / hkv);  // torch repeat_interleave / HF repeat_kv grouping
        std::vector<const float*> keys, vals;
        for (int64_t j = 0; j < k_len; ++j) {
          if (!Visible(qpos, j, node.iparams[0] != 0, node.iparams[1])) continue;
          keys.push_back(k->values.data() + ((cu_k[s] + j) * hkv + kvh) * d);
          vals.push_back(v->values.data() + ((cu_k[s] + j) * hkv + kvh) * dv);
        }
        const int64_t row = cu_q[s] + i;
        AttendOne(q->values.data() + (row * hq + h) * d, keys, vals, p,
                  out.data() + (row * hq + h) * dv);
      }
    }
  }
  return FromValues({q->dim(0), hq, dv}, std::move(out));
}

RefResult KvWrite(const RefNode& node) {
  const Tensor *cache = Input(node, 0), *rows = Input(node, 1), *slots_t = Input(node, 2);
  if (!cache || !rows || !slots_t || cache->ndim() != 4) return Fail("KV_WRITE: bad inputs");
  const int64_t row = cache->dim(2) * cache->dim(3);  // Hkv * D values per slot
  std::vector<float> values = cache->values;
  const std::vector<int32_t> slots = slots_t->ints();
  for (size_t t = 0; t < slots.size(); ++t) {
    if (slots[t] < 0) continue;
    // slot = block * BS + offset, and the cache is [NB, BS, ...]: the slot is the flat row.
    std::copy_n(rows->values.data() + t * row, row, values.data() + slots[t] * row);
  }
  RefResult r;
  r.out = Encode(cache->dtype, cache->shape, values);
  return r;
}

RefResult PagedAttention(const RefNode& node) {
  const Tensor *q = Input(node, 0), *kc = Input(node, 1), *vc = Input(node, 2);
  const Tensor *table_t = Input(node, 3), *lens_t = Input(node, 4), *cu_q_t = Input(node, 5);
  if (!q || !kc || !vc || !table_t || !lens_t || !cu_q_t) return Fail("PAGED: missing input");
  const int64_t hq = q->dim(1), d = q->dim(2);
  const int64_t bs = kc->dim(1), hkv = kc->dim(2), dv = vc->dim(3);
  const int64_t max_blocks = table_t->dim(1);
  const std::vector<int32_t> table = table_t->ints(), kv_lens = lens_t->ints();
  const std::vector<int32_t> cu_q = cu_q_t->ints();
  const AttnParams p{node.fparams[0], node.fparams[1], d, dv};
  std::vector<double> out(static_cast<size_t>(q->dim(0) * hq * dv));
  for (size_t s = 0; s < kv_lens.size(); ++s) {
    const int64_t q_len = cu_q[s + 1] - cu_q[s];
    for (int64_t i = 0; i < q_len; ++i) {
      const int64_t qpos = kv_lens[s] - q_len + i;
      for (int64_t h = 0; h < hq; ++h) {
        const int64_t kvh = h / (hq / hkv);
        std::vector<const float*> keys, vals;
        for (int64_t j = 0; j < kv_lens[s]; ++j) {
          if (!Visible(qpos, j, /*causal=*/true, node.iparams[1])) continue;
          const int64_t block = table[s * max_blocks + j / bs];
          const int64_t slot = block * bs + j % bs;
          keys.push_back(kc->values.data() + (slot * hkv + kvh) * d);
          vals.push_back(vc->values.data() + (slot * hkv + kvh) * dv);
        }
        const int64_t row = cu_q[s] + i;
        AttendOne(q->values.data() + (row * hq + h) * d, keys, vals, p,
                  out.data() + (row * hq + h) * dv);
      }
    }
  }
  return FromValues({q->dim(0), hq, dv}, std::move(out));
}

RefResult GetRows(const RefNode& node) {
  const Tensor *table = Input(node, 0), *ids_t = Input(node, 1);
  if (!table || !ids_t || table->ndim() != 2) return Fail("GET_ROWS: bad inputs");
  const int64_t d = table->dim(1);
  const std::vector<int32_t> ids = ids_t->ints();
  std::vector<float> out;
  for (int32_t id : ids) {
    out.insert(out.end(), table->values.begin() + id * d, table->values.begin() + (id + 1) * d);
  }
  RefResult r;
  r.out = MakeF32({static_cast<int64_t>(ids.size()), d}, std::move(out));
  return r;
}

RefResult Concat(const RefNode& node) {
  const Tensor *a = Input(node, 0), *b = Input(node, 1);
  if (!a || !b || a->ndim() != b->ndim()) return Fail("CONCAT: bad inputs");
  const int64_t axis = node.iparams[0] < 0 ? a->ndim() + node.iparams[0] : node.iparams[0];
  // View both as [outer, axis * inner] and interleave the chunks.
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= a->shape[i];
  for (int64_t i = axis + 1; i < a->ndim(); ++i) inner *= a->shape[i];
  const int64_t ca = a->shape[axis] * inner, cb = b->shape[axis] * inner;
  std::vector<float> out;
  for (int64_t o = 0; o < outer; ++o) {
    out.insert(out.end(), a->values.begin() + o * ca, a->values.begin() + (o + 1) * ca);
    out.insert(out.end(), b->values.begin() + o * cb, b->values.begin() + (o + 1) * cb);
  }
  std::vector<int64_t> shape = a->shape;
  shape[axis] += b->shape[axis];
  RefResult r;
  r.out = Encode(a->dtype, std::move(shape), out);
  return r;
}

struct ConvGeometry {
  int64_t stride[2], pad[2], dilation[2], groups;
};

// CONV2D in general; CONV1D is the same with H = KH = 1 and no padding/stride along H.
RefResult Conv(const Tensor& x, const Tensor& w, const Tensor* bias, const ConvGeometry& g,
               bool one_d) {
  const int64_t batch = x.dim(0), cin = x.dim(1), cout = w.dim(0), cin_g = w.dim(1);
  const int64_t h = one_d ? 1 : x.dim(2), wd = x.dim(-1);
  const int64_t kh = one_d ? 1 : w.dim(2), kw = w.dim(-1);
  if (g.groups <= 0 || cin != cin_g * g.groups || cout % g.groups) return Fail("CONV: groups");
  if (g.stride[0] <= 0 || g.stride[1] <= 0 || g.dilation[0] <= 0 || g.dilation[1] <= 0) {
    return Fail("CONV: stride/dilation must be positive");
  }
  const int64_t ho = (h + 2 * g.pad[0] - g.dilation[0] * (kh - 1) - 1) / g.stride[0] + 1;
  const int64_t wo = (wd + 2 * g.pad[1] - g.dilation[1] * (kw - 1) - 1) / g.stride[1] + 1;
  const int64_t cout_g = cout / g.groups;
  std::vector<double> out(static_cast<size_t>(batch * cout * ho * wo));
  std::vector<float> mag(out.size());
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t co = 0; co < cout; ++co) {
      const int64_t group = co / cout_g;
      for (int64_t oy = 0; oy < ho; ++oy) {
        for (int64_t ox = 0; ox < wo; ++ox) {
          double acc = bias ? bias->values[co] : 0.0;
          double abs_acc = std::fabs(acc);
          for (int64_t ci = 0; ci < cin_g; ++ci) {
            for (int64_t ky = 0; ky < kh; ++ky) {
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t iy = oy * g.stride[0] - g.pad[0] + ky * g.dilation[0];
                const int64_t ix = ox * g.stride[1] - g.pad[1] + kx * g.dilation[1];
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;  // zero padding
                const int64_t c = group * cin_g + ci;
                const double term =
                    static_cast<double>(x.values[((b * cin + c) * h + iy) * wd + ix]) *
                    w.values[((co * cin_g + ci) * kh + ky) * kw + kx];
                acc += term;
                abs_acc += std::fabs(term);
              }
            }
          }
          const int64_t o = ((b * cout + co) * ho + oy) * wo + ox;
          out[o] = acc;
          mag[o] = static_cast<float>(abs_acc);
        }
      }
    }
  }
  std::vector<int64_t> shape =
      one_d ? std::vector<int64_t>{batch, cout, wo} : std::vector<int64_t>{batch, cout, ho, wo};
  RefResult r = FromValues(std::move(shape), std::move(out));
  r.magnitude = std::move(mag);
  return r;
}

RefResult ConvNode(const RefNode& node) {
  const Tensor *x = Input(node, 0), *w = Input(node, 1), *bias = Input(node, 2);
  const bool one_d = node.op == TSR_OP_CONV1D;
  if (!x || !w || x->ndim() != (one_d ? 3 : 4) || w->ndim() != x->ndim()) {
    return Fail("CONV: bad inputs");
  }
  const int64_t* ip = node.iparams;
  ConvGeometry g;
  if (one_d) {
    g = {{1, ip[0]}, {0, ip[1]}, {1, ip[2]}, ip[3]};
  } else {
    g = {{ip[0], ip[1]}, {ip[2], ip[3]}, {ip[4], ip[5]}, ip[6]};
  }
  return Conv(*x, *w, bias, g, one_d);
}

RefResult Reduce(const RefNode& node) {
  const Tensor* x = Input(node, 0);
  if (!x) return Fail("reduce: missing input");
  const int64_t n = x->dim(-1);
  std::vector<double> out(static_cast<size_t>(x->rows()));
  std::vector<float> mag(out.size());
  for (int64_t r = 0; r < x->rows(); ++r) {
    double sum = 0.0, abs_sum = 0.0, mx = -kInf;
    for (int64_t i = 0; i < n; ++i) {
      const double v = x->values[r * n + i];
      sum += v;
      abs_sum += std::fabs(v);
      mx = std::max(mx, v);
    }
    if (node.op == TSR_OP_MAX) {
      out[r] = mx;
      mag[r] = static_cast<float>(std::fabs(mx));
    } else {
      const double div = node.op == TSR_OP_MEAN ? static_cast<double>(n) : 1.0;
      out[r] = sum / div;
      mag[r] = static_cast<float>(abs_sum / div);
    }
  }
  std::vector<int64_t> shape = x->shape;
  shape.back() = 1;
  RefResult r = FromValues(std::move(shape), std::move(out));
  r.magnitude = std::move(mag);
  return r;
}

// Two passes, unlike the kernels' single running compare: the largest non-NaN value of the row,
// then the first position holding it. A row with nothing above -inf (all -inf or NaN) gives 0.
RefResult Argmax(const RefNode& node) {
  const Tensor* x = Input(node, 0);
  if (!x || x->ndim() < 1 || x->dim(-1) < 1) return Fail("ARGMAX: bad input");
  const int64_t n = x->dim(-1);
  std::vector<int32_t> out(static_cast<size_t>(x->rows()), 0);
  for (int64_t r = 0; r < x->rows(); ++r) {
    const float* row = x->values.data() + r * n;
    double top = -kInf;
    for (int64_t i = 0; i < n; ++i)
      if (!std::isnan(row[i])) top = std::max(top, static_cast<double>(row[i]));
    if (top == -kInf) continue;
    int64_t first = 0;
    while (static_cast<double>(row[first]) != top) ++first;
    out[r] = static_cast<int32_t>(first);
  }
  std::vector<int64_t> shape = x->shape;
  shape.back() = 1;
  RefResult r;
  r.out = MakeI32(std::move(shape), out);
  return r;
}

}  // namespace

RefResult RunReference(const RefNode& node) {
  switch (node.op) {
    case TSR_OP_MATMUL: return Matmul(node);
    case TSR_OP_ADD:
    case TSR_OP_SUB:
    case TSR_OP_MUL:
    case TSR_OP_DIV: return Binary(node);
    case TSR_OP_SCALE:
    case TSR_OP_SILU:
    case TSR_OP_GELU:
    case TSR_OP_GELU_TANH:
    case TSR_OP_RELU:
    case TSR_OP_TANH:
    case TSR_OP_SIGMOID:
    case TSR_OP_SOFTCAP: return Unary(node);
    case TSR_OP_SWIGLU:
    case TSR_OP_GEGLU: return Gated(node);
    case TSR_OP_RMS_NORM:
    case TSR_OP_LAYER_NORM: return Norm(node);
    case TSR_OP_ROPE: return Rope(node);
    case TSR_OP_SOFTMAX: return Softmax(node);
    case TSR_OP_ATTENTION: return Attention(node);
    case TSR_OP_KV_WRITE: return KvWrite(node);
    case TSR_OP_PAGED_ATTENTION: return PagedAttention(node);
    case TSR_OP_GET_ROWS: return GetRows(node);
    case TSR_OP_COPY: {
      const Tensor* x = Input(node, 0);
      if (!x) return Fail("COPY: missing input");
      RefResult r;
      r.out = Encode(node.out_dtype, x->shape, x->values);
      return r;
    }
    case TSR_OP_CONCAT: return Concat(node);
    case TSR_OP_CONV1D:
    case TSR_OP_CONV2D: return ConvNode(node);
    case TSR_OP_SUM:
    case TSR_OP_MEAN:
    case TSR_OP_MAX: return Reduce(node);
    case TSR_OP_ARGMAX: return Argmax(node);
    default: return Fail("no reference for op " + std::to_string(node.op));
  }
}

}  // namespace tessera::conformance
