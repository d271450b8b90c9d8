// Reference implementations of every tsr_op, for the op-conformance suite.
//
// Plain scalar C++, accumulating in double, written to be obviously right rather than fast. The
// semantics follow the comments on `tsr_op` in tessera/plugin_api.h and the byte layouts in
// tessera/quant_formats.h. Nothing here is shared with any backend: the f16/bf16 conversions and
// the block quantizers are this suite's own, so a bug in a backend cannot hide in shared code.
//
// Dependencies: the ABI headers and the C++ standard library only (the suite ships in the SDK).
// Thread-safety: every function is pure (no shared state).
#ifndef TESSERA_TESTS_CONFORMANCE_REFERENCE_H_
#define TESSERA_TESTS_CONFORMANCE_REFERENCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tessera/plugin_api.h"
#include "tessera/quant_formats.h"

namespace tessera::conformance {

// ---- Scalar conversions (round to nearest, ties to even; NaN stays NaN) ---------------------

uint16_t F32ToF16(float value);
float F16ToF32(uint16_t bits);
uint16_t F32ToBf16(float value);
float Bf16ToF32(uint16_t bits);

// ---- Block quantization (quant_formats.h), one row of `n` values, n % 32 == 0 -----------------

// Appends n/32 blocks of 34 (Q8) or 18 (Q4) bytes to `out`.
void QuantizeRowQ8(const float* x, int64_t n, std::vector<uint8_t>* out);
void QuantizeRowQ4(const float* x, int64_t n, std::vector<uint8_t>* out);
// Writes n values. `blocks` points at the row's first block.
void DequantizeRowQ8(const uint8_t* blocks, int64_t n, float* out);
void DequantizeRowQ4(const uint8_t* blocks, int64_t n, float* out);

// Bytes one contiguous row of `n` innermost elements takes in `dtype`.
int64_t RowBytes(tsr_dtype dtype, int64_t n);
// Bytes of one element; 0 for the block-quantized types.
int64_t ElementBytes(tsr_dtype dtype);
const char* DtypeName(tsr_dtype dtype);
bool IsQuantized(tsr_dtype dtype);

// ---- Host tensor -----------------------------------------------------------------------------

// A dense, contiguous, row-major host tensor.
//   values: the logical value of every element as f32 (for F16/BF16/Q8/Q4 the DECODED value of
//           `raw`, so a reference fed this tensor sees exactly what a device sees; for I32 the
//           integer, exact while |v| < 2^24).
//   raw:    the tensor's bytes in `dtype`, contiguous (for Q8/Q4: rows of blocks back to back).
//           Always filled, also for F32.
struct Tensor {
  tsr_dtype dtype = TSR_DTYPE_F32;
  std::vector<int64_t> shape;
  std::vector<float> values;
  std::vector<uint8_t> raw;

  int64_t numel() const;
  int64_t ndim() const { return static_cast<int64_t>(shape.size()); }
  // Dimension `i`, counted from the end when negative (-1 = innermost).
  int64_t dim(int64_t i) const;
  // Number of rows when viewed as [numel / inner, inner].
  int64_t rows() const { return shape.empty() ? 1 : numel() / shape.back(); }
  std::vector<int32_t> ints() const;  // I32 tensors only
  std::string ShapeString() const;    // "[3, 17]"
};

// Encodes `values` (row-major, numel(shape) of them) as `dtype`; `values` of the result are the
// decoded ones. Quantized types use the reference quantizer (innermost dim % 32 == 0).
Tensor Encode(tsr_dtype dtype, std::vector<int64_t> shape, const std::vector<float>& values);
Tensor MakeF32(std::vector<int64_t> shape, std::vector<float> values);
Tensor MakeI32(std::vector<int64_t> shape, const std::vector<int32_t>& values);
// Builds a tensor from contiguous device bytes (e.g. a downloaded output).
Tensor Decode(tsr_dtype dtype, std::vector<int64_t> shape, std::vector<uint8_t> raw);

// ---- Reference ops ---------------------------------------------------------------------------

// One node, as the device sees it: the op, its params and its inputs (nullptr = optional input
// absent). `out_dtype` matters for COPY only (every other op outputs F32, or the cache's dtype
// for KV_WRITE, or I32 for ARGMAX).
struct RefNode {
  tsr_op op = TSR_OP_NONE;
  std::vector<const Tensor*> inputs;
  int64_t iparams[TSR_MAX_PARAMS] = {};
  float fparams[TSR_MAX_PARAMS] = {};
  tsr_dtype out_dtype = TSR_DTYPE_F32;
};

struct RefResult {
  Tensor out;
  // Per-output-element magnitude the rounding error of a correct f32 implementation scales
  // with: sum of |terms| for dot products and sums (MATMUL, CONV*, SUM, MEAN). Empty = use
  // |out| itself.
  std::vector<float> magnitude;
  std::string error;  // non-empty when the node is malformed (a bug in the test case)
};

// Runs the reference of `node.op`. Pure; thread-safe.
RefResult RunReference(const RefNode& node);

}  // namespace tessera::conformance

#endif  // TESSERA_TESTS_CONFORMANCE_REFERENCE_H_
