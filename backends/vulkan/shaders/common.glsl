// Shared by every compute shader of the Vulkan backend: buffer-device-address pointer types,
// dtype decode/encode (bit-exact with the CPU reference), broadcast walks, exact division and
// the transcendental functions whose accuracy the conformance suite needs (drivers' own tanh,
// sin and cos are allowed to be far less accurate than that).
//
// Every tensor is addressed by a 64-bit device address (VK_KHR_buffer_device_address) and byte
// strides, exactly as the CUDA backend addresses device pointers; parameters arrive through one
// buffer reference in the push constants (see plugin.cc).
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_8bit_storage : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_control_flow_attributes : require

layout(buffer_reference, std430, buffer_reference_align = 4) buffer RefF32 { float v; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer RefU32 { uint v; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer RefI32 { int v; };
layout(buffer_reference, std430, buffer_reference_align = 2) buffer RefU16 { uint16_t v; };
layout(buffer_reference, std430, buffer_reference_align = 1) buffer RefU8 { uint8_t v; };
layout(buffer_reference, std430, buffer_reference_align = 16) buffer RefU32x4 { uvec4 v; };
layout(buffer_reference, std430, buffer_reference_align = 8) buffer RefU32x2 { uvec2 v; };

#define DT_F32 0
#define DT_F16 1
#define DT_BF16 2
#define DT_I32 3
#define DT_I64 4
#define DT_I8 5
#define DT_U8 6
#define DT_Q8 7
#define DT_Q4 8

#define QBLOCK 32
#define Q8_BYTES 34
#define Q4_BYTES 18

#define ERR_INDEX 1
#define ERR_SEQLENS 2
#define ERR_BLOCK_TABLE 4
#define ERR_SUBGROUP 8

// Every params block starts with the address of the device error word (see plugin.cc).
layout(push_constant) uniform PushConstants {
  uint64_t params;
}
pc;

float LoadF32(uint64_t a) { return RefF32(a).v; }
void StoreF32(uint64_t a, float x) { RefF32(a).v = x; }
int LoadI32(uint64_t a) { return RefI32(a).v; }
uint LoadU16(uint64_t a) { return uint(RefU16(a).v); }
uint LoadU8(uint64_t a) { return uint(RefU8(a).v); }

// binary16 bits -> f32, exact (denormals included) without relying on the driver's conversion.
float F16Bits(uint h) {
  const uint sign = (h & 0x8000u) << 16;
  const uint e = (h >> 10) & 0x1fu;
  const uint m = h & 0x3ffu;
  if (e == 0u) {
    const float v = float(m) * 5.9604644775390625e-8;  // m * 2^-24, exact
    return (h & 0x8000u) != 0u ? -v : v;
  }
  if (e == 31u) return uintBitsToFloat(sign | 0x7f800000u | (m << 13));
  return uintBitsToFloat(sign | ((e + 112u) << 23) | (m << 13));
}
float Bf16Bits(uint b) { return uintBitsToFloat(b << 16); }

// f32 -> binary16 bits, round-to-nearest-even, in integer arithmetic (the reference's F32ToF16).
uint F32ToF16Bits(float f) {
  const uint x = floatBitsToUint(f);
  const uint sign = (x >> 16) & 0x8000u;
  const uint ex = (x >> 23) & 0xffu;
  const uint mant = x & 0x7fffffu;
  if (ex == 0xffu) return sign | 0x7c00u | (mant != 0u ? (0x200u | (mant >> 13)) : 0u);
  const int e = int(ex) - 127 + 15;
  if (e >= 31) return sign | 0x7c00u;
  if (e <= 0) {
    if (e < -10) return sign;
    const uint m = mant | 0x800000u;
    const int shift = 14 - e;
    uint q = m >> shift;
    const uint rem = m & ((1u << shift) - 1u);
    const uint half_ = 1u << (shift - 1);
    if (rem > half_ || (rem == half_ && (q & 1u) != 0u)) ++q;
    return sign | q;
  }
  uint h = (uint(e) << 10) | (mant >> 13);
  const uint rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) != 0u)) ++h;
  return sign | h;
}
uint F32ToBf16Bits(float f) {
  const uint x = floatBitsToUint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (x >> 16) | 0x40u;
  return (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
}

// A float element of a plain float dtype at byte address a.
float LoadFloat(uint64_t a, int dt) {
  if (dt == DT_F16) return F16Bits(LoadU16(a));
  if (dt == DT_BF16) return Bf16Bits(LoadU16(a));
  return LoadF32(a);
}
void StoreFloat(uint64_t a, float f, int dt) {
  if (dt == DT_F16) {
    RefU16(a).v = uint16_t(F32ToF16Bits(f));
  } else if (dt == DT_BF16) {
    RefU16(a).v = uint16_t(F32ToBf16Bits(f));
  } else {
    StoreF32(a, f);
  }
}

// Value k of a quantized row that starts at byte address row (blocks are 2-byte aligned).
float DequantAt(uint64_t row, int dt, int64_t k) {
  const int64_t b = k / QBLOCK;
  const int i = int(k % QBLOCK);
  if (dt == DT_Q8) {
    const uint64_t blk = row + uint64_t(b * Q8_BYTES);
    return F16Bits(LoadU16(blk)) * float(int(int8_t(RefU8(blk + uint64_t(2 + i)).v)));
  }
  const uint64_t blk = row + uint64_t(b * Q4_BYTES);
  const uint byte_ = LoadU8(blk + uint64_t(2 + (i & 15)));
  const int nib = i < 16 ? int(byte_ & 0x0fu) : int(byte_ >> 4);
  return F16Bits(LoadU16(blk)) * float(nib - 8);
}

// Element k of a weight row in any matmul dtype (plain dtypes: contiguous row).
float WeightAt(uint64_t row, int dt, int64_t k) {
  if (dt == DT_F32) return LoadF32(row + uint64_t(k * 4));
  if (dt == DT_F16) return F16Bits(LoadU16(row + uint64_t(k * 2)));
  if (dt == DT_BF16) return Bf16Bits(LoadU16(row + uint64_t(k * 2)));
  return DequantAt(row, dt, k);
}

// Up to three tensors walked in lock-step over a reference shape (numpy broadcasting: stride 0
// where a tensor's dim is 1 or missing). Mirrors WalkP in ops.h.
struct Walk {
  int64_t ne[6];
  int64_t s[3][6];
  int64_t numel;
  int ndim;
  int pad_;
};

// Workgroup index over a 2-D dispatch grid (x is capped at 65535 groups).
uint64_t GroupIndex() {
  return uint64_t(gl_WorkGroupID.y) * uint64_t(gl_NumWorkGroups.x) + uint64_t(gl_WorkGroupID.x);
}

void SetError(uint64_t err, uint bit) {
  if (err != 0ul) atomicOr(RefU32(err).v, bit);
}

// ---- exact division (the quantizers must be bit-exact; drivers' a / b may be 2.5 ulp off) ----

// a / b rounded to nearest even for normal finite operands whose quotient is normal; anything
// else falls back to the driver's division (never reached by the quantizers' operands).
float DivRn(float a, float b) {
  const uint ua = floatBitsToUint(a), ub = floatBitsToUint(b);
  const int ea = int((ua >> 23) & 0xffu), eb = int((ub >> 23) & 0xffu);
  if (a == 0.0 || ea == 0 || ea == 255 || eb == 0 || eb == 255) return a / b;
  const uint ma = (ua & 0x7fffffu) | 0x800000u, mb = (ub & 0x7fffffu) | 0x800000u;
  const uint64_t num = uint64_t(ma) << 26;
  const uint64_t q = num / uint64_t(mb);
  const bool sticky = num - q * uint64_t(mb) != 0ul;
  const bool big = q >= (1ul << 26);
  const int shift = big ? 3 : 2;
  int e = ea - eb + 127 - (big ? 0 : 1);
  uint mant = uint(q >> shift);
  const uint rbits = uint(q) & ((1u << shift) - 1u);
  const uint half_ = 1u << (shift - 1);
  if (rbits > half_ || (rbits == half_ && (sticky || (mant & 1u) != 0u))) ++mant;
  if (mant == 0x1000000u) {
    mant >>= 1;
    ++e;
  }
  if (e <= 0 || e >= 255) return a / b;
  return uintBitsToFloat(((ua ^ ub) & 0x80000000u) | (uint(e) << 23) | (mant & 0x7fffffu));
}

// ---- transcendental functions ----

// tanh with ~1 ulp accuracy (Cephes tanhf's polynomial near 0, exp elsewhere).
float Tanh(float x) {
  const float ax = abs(x);
  if (ax >= 0.625) {
    if (ax > 44.0) return sign(x);
    const float z = 1.0 - 2.0 / (exp(2.0 * ax) + 1.0);
    return x < 0.0 ? -z : z;
  }
  const float z = x * x;
  return ((((-5.70498872745e-3 * z + 2.06390887954e-2) * z - 5.37397155531e-2) * z +
           1.33314422036e-1) * z - 3.33332819422e-1) * z * x + x;
}

float Sigmoid(float x) { return 1.0 / (1.0 + exp(-x)); }

// erfc(z) for z >= 0, fractional error < 1.2e-7 (Chebyshev fit, Numerical Recipes erfcc).
float ErfcPos(float z) {
  const float t = 1.0 / (1.0 + 0.5 * z);
  const float p = -z * z - 1.26551223 +
                  t * (1.00002368 +
                       t * (0.37409196 +
                            t * (0.09678418 +
                                 t * (-0.18628806 +
                                      t * (0.27886807 +
                                           t * (-1.13520398 +
                                                t * (1.48851587 +
                                                     t * (-0.82215223 + t * 0.17087277))))))));
  return t * exp(p);
}

// Exact (erf) GELU: 0.5 x (1 + erf(x / sqrt 2)), with 1 + erf(z) = erfc(-z) for z < 0 so the
// left tail keeps its relative accuracy.
float GeluErf(float x) {
  const float z = x * 0.70710678118654752;
  const float one_plus_erf = z >= 0.0 ? 2.0 - ErfcPos(z) : ErfcPos(-z);
  return 0.5 * x * one_plus_erf;
}

float GeluTanh(float x) {
  const float inner = 0.7978845608028654 * fma(0.044715 * x, x * x, x);
  return 0.5 * x * (1.0 + Tanh(inner));
}

// sin and cos of x with Cephes' Cody-Waite reduction by pi/4 (good to |x| ~ 8192; RoPE angles
// reach a few thousand radians, where drivers' sin/cos may keep only ~11 bits).
void SinCos(float xin, out float s, out float c) {
  precise float x = abs(xin);
  int j = int(x * 1.27323954473516);
  precise float y = float(j);
  if ((j & 1) != 0) {
    j += 1;
    y += 1.0;
  }
  j &= 7;
  float sign_s = xin < 0.0 ? -1.0 : 1.0;
  float sign_c = 1.0;
  if (j > 3) {
    sign_s = -sign_s;
    sign_c = -sign_c;
    j -= 4;
  }
  if (j > 1) sign_c = -sign_c;
  precise float r = ((x - y * 0.78515625) - y * 2.4187564849853515625e-4) - y * 3.77489497744594108e-8;
  const float z = r * r;
  const float ps = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
  const float pc =
      ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z -
      0.5 * z + 1.0;
  const bool swap = j == 1 || j == 2;
  s = sign_s * (swap ? pc : ps);
  c = sign_c * (swap ? ps : pc);
}
