// Scalar number-format conversions of the CPU backend: binary16, bfloat16 and the block formats
// of tessera/quant_formats.h. Header-only; every function is pure and thread-safe.
//
// These are the bit-exact reference paths: SIMD kernels either call them or produce the same
// values (every f16/bf16/q8/q4 -> f32 decode is exact, so there is nothing to disagree on).
#ifndef TESSERA_BACKENDS_CPU_CONVERT_H_
#define TESSERA_BACKENDS_CPU_CONVERT_H_

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "tessera/quant_formats.h"

namespace tessera::cpu {

inline float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24 is exact in binary32.
    const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
}

// Round-to-nearest-even, overflow to infinity, subnormals kept, NaN stays NaN.
inline uint16_t F32ToF16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t exp = (x >> 23) & 0xffu;
  const uint32_t mant = x & 0x7fffffu;
  if (exp == 0xff) return sign | 0x7c00u | (mant ? (0x200u | (mant >> 13)) : 0u);
  const int32_t e = static_cast<int32_t>(exp) - 127 + 15;
  if (e >= 31) return sign | 0x7c00u;
  if (e <= 0) {
    if (e < -10) return sign;  // below half the smallest subnormal
    const uint32_t m = mant | 0x800000u;
    const int shift = 14 - e;  // 14..24
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;  // may carry into the smallest normal
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t h = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry may round up to infinity
  return static_cast<uint16_t>(sign | h);
}

inline float Bf16ToF32(uint16_t b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

// Round-to-nearest-even; NaN stays a (quiet) NaN.
inline uint16_t F32ToBf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

inline uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));  // blocks are only byte-aligned
  return v;
}

inline void StoreU16(uint8_t* p, uint16_t v) {
  std::memcpy(p, &v, sizeof(v));
}

// Value i (0..31) of one Q8_B32 block (34 bytes).
inline float DequantQ8(const uint8_t* block, int i) {
  return F16ToF32(LoadU16(block)) * static_cast<float>(static_cast<int8_t>(block[2 + i]));
}

// Value i (0..31) of one Q4_B32 block (18 bytes).
inline float DequantQ4(const uint8_t* block, int i) {
  const uint8_t byte = block[2 + (i & 15)];
  const int nib = i < 16 ? (byte & 0x0f) : (byte >> 4);
  return F16ToF32(LoadU16(block)) * static_cast<float>(nib - 8);
}

// Quantizes 32 values into one Q8_B32 block exactly as quant_formats.h specifies.
inline void QuantizeBlockQ8(const float* x, uint8_t* block) {
  float amax = 0.0f;
  for (int i = 0; i < TSR_QBLOCK; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  StoreU16(block, F32ToF16(d));
  for (int i = 0; i < TSR_QBLOCK; ++i) {
    float q = d == 0.0f ? 0.0f : std::round(x[i] / d);
    q = std::clamp(q, -127.0f, 127.0f);
    block[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(q));
  }
}

// Quantizes 32 values into one Q4_B32 block exactly as quant_formats.h specifies.
inline void QuantizeBlockQ4(const float* x, uint8_t* block) {
  float amax = 0.0f;
  float m = 0.0f;
  for (int i = 0; i < TSR_QBLOCK; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      m = x[i];
    }
  }
  const float d = m / -8.0f;
  StoreU16(block, F32ToF16(d));
  uint8_t nib[TSR_QBLOCK];
  for (int i = 0; i < TSR_QBLOCK; ++i) {
    if (d == 0.0f) {
      nib[i] = 8;
      continue;
    }
    const float t = std::clamp(std::trunc(x[i] / d + 8.5f), 0.0f, 15.0f);
    nib[i] = static_cast<uint8_t>(t);
  }
  for (int i = 0; i < TSR_QBLOCK / 2; ++i) {
    block[2 + i] = static_cast<uint8_t>(nib[i] | (nib[i + 16] << 4));
  }
}

}  // namespace tessera::cpu

#endif  // TESSERA_BACKENDS_CPU_CONVERT_H_
