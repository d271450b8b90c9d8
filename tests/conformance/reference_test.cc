// Self-checks of the conformance reference against hand-computed values, so that a failure of a
// backend in op_conformance_test can be trusted to be the backend's.
#include "reference.h"

#include <gtest/gtest.h>

#include <cmath>

namespace tessera::conformance {
namespace {

TEST(ReferenceTest, F16KnownValues) {
  EXPECT_EQ(F32ToF16(1.0f), 0x3C00);
  EXPECT_EQ(F32ToF16(-2.0f), 0xC000);
  EXPECT_EQ(F32ToF16(65504.0f), 0x7BFF);
  EXPECT_EQ(F32ToF16(65519.0f), 0x7BFF);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7C00);                   // the tie rounds to even = infinity
  EXPECT_EQ(F32ToF16(0x1p-24f), 0x0001);                   // smallest subnormal
  EXPECT_EQ(F32ToF16(0x1p-25f), 0x0000);                   // tie between 0 and 2^-24: even is 0
  EXPECT_EQ(F32ToF16(3 * 0x1p-25f), 0x0002);               // tie between 1 and 2 ulp: even is 2
  EXPECT_EQ(F32ToF16(1.0f + 0x1p-11f), 0x3C00);            // tie: down to the even mantissa
  EXPECT_EQ(F32ToF16(1.0f + 3 * 0x1p-11f), 0x3C02);        // tie: up to the even mantissa
  EXPECT_EQ(F32ToF16(0x1p-14f * (1 - 0x1p-12f)), 0x0400);  // rounds up into the normals
  EXPECT_EQ(F32ToF16(-0.0f), 0x8000);
  EXPECT_EQ(F16ToF32(0x3555), 0.333251953125f);
  EXPECT_EQ(F16ToF32(0x0001), 0x1p-24f);
  EXPECT_TRUE(std::isinf(F16ToF32(0xFC00)));
  EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(NAN))));
  for (uint32_t h = 0; h < 0x7C00; ++h) {  // every finite half round-trips
    ASSERT_EQ(F32ToF16(F16ToF32(static_cast<uint16_t>(h))), h);
  }
}

TEST(ReferenceTest, Bf16KnownValues) {
  EXPECT_EQ(F32ToBf16(1.0f), 0x3F80);
  EXPECT_EQ(F32ToBf16(1.0f + 0x1p-8f), 0x3F80);      // tie: to even
  EXPECT_EQ(F32ToBf16(1.0f + 3 * 0x1p-8f), 0x3F82);  // tie: to even (up)
  EXPECT_EQ(F32ToBf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);
  EXPECT_EQ(Bf16ToF32(0xC040), -3.0f);
}

TEST(ReferenceTest, Q8Block) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;  // d = 1 exactly
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 0.49f;
  std::vector<uint8_t> bytes;
  QuantizeRowQ8(x.data(), 32, &bytes);
  ASSERT_EQ(bytes.size(), 34u);
  EXPECT_EQ(bytes[0] | bytes[1] << 8, 0x3C00);  // d = 1.0 in f16
  EXPECT_EQ(static_cast<int8_t>(bytes[2]), 127);
  EXPECT_EQ(static_cast<int8_t>(bytes[3]), 3);  // half away from zero
  EXPECT_EQ(static_cast<int8_t>(bytes[4]), -3);
  EXPECT_EQ(static_cast<int8_t>(bytes[5]), 0);
  std::vector<float> back(32);
  DequantizeRowQ8(bytes.data(), 32, back.data());
  EXPECT_EQ(back[1], 3.0f);
  std::vector<uint8_t> zeros;
  const std::vector<float> z(32, 0.0f);
  QuantizeRowQ8(z.data(), 32, &zeros);
  for (uint8_t b : zeros) EXPECT_EQ(b, 0);
}

TEST(ReferenceTest, Q4Block) {
  std::vector<float> x(32, 0.0f);
  x[0] = -8.0f;  // m = -8, d = 1
  x[1] = 7.0f;   // 7 + 8.5 -> 15
  x[2] = -7.5f;  // 1.0 -> 1
  x[17] = 3.0f;  // high nibble of byte 1: 11
  std::vector<uint8_t> bytes;
  QuantizeRowQ4(x.data(), 32, &bytes);
  ASSERT_EQ(bytes.size(), 18u);
  EXPECT_EQ(bytes[0] | bytes[1] << 8, 0x3C00);
  EXPECT_EQ(bytes[2], 0x80);            // value 0 -> nibble 0 (low); value 16 = 0 -> 8 (high)
  EXPECT_EQ(bytes[3], 15 | (11 << 4));  // value 1 -> 15, value 17 -> 11
  EXPECT_EQ(bytes[4], 1 | (8 << 4));
  std::vector<float> back(32);
  DequantizeRowQ4(bytes.data(), 32, back.data());
  EXPECT_EQ(back[0], -8.0f);
  EXPECT_EQ(back[1], 7.0f);
  EXPECT_EQ(back[2], -7.0f);
  EXPECT_EQ(back[17], 3.0f);
}

TEST(ReferenceTest, MatmulBiasAndBatch) {
  const Tensor x = MakeF32({2, 1, 2}, {1, 2, 3, 4});
  const Tensor w = MakeF32({2, 1, 2}, {10, 100, 1, -1});
  RefNode n;
  n.op = TSR_OP_MATMUL;
  n.inputs = {&x, &w};
  const RefResult r = RunReference(n);
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.out.shape, (std::vector<int64_t>{2, 1, 1}));
  EXPECT_EQ(r.out.values, (std::vector<float>{210, -1}));
}

TEST(ReferenceTest, RopeNeoxAndInterleaved) {
  // x = [1, 0, 0, 1] at position 1 with inv_freq {pi/2, 0}: neox pairs (0,2) and (1,3).
  const Tensor x = MakeF32({1, 1, 4}, {1, 0, 0, 1});
  const Tensor pos = MakeI32({1}, {1});
  const Tensor inv = MakeF32({2}, {static_cast<float>(M_PI / 2), 0.0f});
  RefNode n;
  n.op = TSR_OP_ROPE;
  n.inputs = {&x, &pos, &inv};
  n.iparams[1] = 4;
  n.fparams[0] = 1.0f;
  RefResult r = RunReference(n);
  // Pair (0,2) rotates by 90 degrees: (1, 0) -> (0, 1). Pair (1,3) by 0.
  EXPECT_NEAR(r.out.values[0], 0.0f, 1e-7);
  EXPECT_NEAR(r.out.values[2], 1.0f, 1e-7);
  EXPECT_NEAR(r.out.values[1], 0.0f, 1e-7);
  EXPECT_NEAR(r.out.values[3], 1.0f, 1e-7);
  n.iparams[0] = 1;  // interleaved: pairs (0,1) by 90 degrees, (2,3) by 0
  r = RunReference(n);
  EXPECT_NEAR(r.out.values[0], 0.0f, 1e-7);
  EXPECT_NEAR(r.out.values[1], 1.0f, 1e-7);
  EXPECT_NEAR(r.out.values[3], 1.0f, 1e-7);
}

TEST(ReferenceTest, AttentionCausalBottomRightAndGqa) {
  // One sequence, 1 query against 2 keys, Hq = 2, Hkv = 1, D = 1. Causal bottom-right: the
  // single query sits at position 1 and sees both keys.
  const Tensor q = MakeF32({1, 2, 1}, {0, 0});
  const Tensor k = MakeF32({2, 1, 1}, {0, 0});
  const Tensor v = MakeF32({2, 1, 1}, {1, 3});
  const Tensor cu_q = MakeI32({2}, {0, 1});
  const Tensor cu_k = MakeI32({2}, {0, 2});
  RefNode n;
  n.op = TSR_OP_ATTENTION;
  n.inputs = {&q, &k, &v, &cu_q, &cu_k};
  n.iparams[0] = 1;
  n.fparams[0] = 1.0f;
  RefResult r = RunReference(n);
  EXPECT_EQ(r.out.values, (std::vector<float>{2, 2}));  // both heads average both keys
  n.iparams[1] = 1;                                     // window 1: only key 1
  r = RunReference(n);
  EXPECT_EQ(r.out.values, (std::vector<float>{3, 3}));
}

TEST(ReferenceTest, BroadcastAndConv) {
  const Tensor a = MakeF32({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor b = MakeF32({2, 1}, {10, 20});
  RefNode n;
  n.op = TSR_OP_SUB;
  n.inputs = {&a, &b};
  EXPECT_EQ(RunReference(n).out.values, (std::vector<float>{-9, -8, -7, -16, -15, -14}));
  // CONV1D, stride 1, padding 1, dilation 1, groups 1, kernel [1, 1, 1]: a moving sum.
  const Tensor x = MakeF32({1, 1, 3}, {1, 2, 3});
  const Tensor w = MakeF32({1, 1, 3}, {1, 1, 1});
  RefNode c;
  c.op = TSR_OP_CONV1D;
  c.inputs = {&x, &w};
  c.iparams[0] = 1;
  c.iparams[1] = 1;
  c.iparams[2] = 1;
  c.iparams[3] = 1;
  EXPECT_EQ(RunReference(c).out.values, (std::vector<float>{3, 6, 5}));
}

TEST(ReferenceTest, ArgmaxTiesNanAndInfRows) {
  const float inf = INFINITY, nan = NAN;
  const Tensor x = MakeF32({6, 4}, {1,    3,    3,      2,     // tie: the first 3
                                    nan,  1,    nan,    2,     // NaN never wins
                                    -inf, -inf, -inf,   -inf,  // nothing above -inf: 0
                                    nan,  -inf, nan,    nan,   // 0
                                    -inf, inf,  5,      inf,   // the first +inf
                                    -inf, -inf, -1e38f, nan});
  RefNode n;
  n.op = TSR_OP_ARGMAX;
  n.inputs = {&x};
  const RefResult r = RunReference(n);
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.out.dtype, TSR_DTYPE_I32);
  EXPECT_EQ(r.out.shape, (std::vector<int64_t>{6, 1}));
  EXPECT_EQ(r.out.ints(), (std::vector<int32_t>{1, 3, 0, 0, 1, 2}));
}

}  // namespace
}  // namespace tessera::conformance
