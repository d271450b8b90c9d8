// The machine probes: the int8 (vpdpbusd) peak probe's loop, and that every peak probe reports
// a positive rate where its instruction exists.
#include "tessera/bench/probes.h"

#include <gtest/gtest.h>

#include "probes_internal.h"

namespace tessera::bench {
namespace {

TEST(ProbesTest, VnniChainsNeverOverflow) {
  if (!HasAvx512Vnni()) GTEST_SKIP() << "no AVX-512 VNNI";
  // Every vpdpbusd adds 1*1 + 1*(-1) + 1*1 + 1*(-1) = 0 to a lane, so the 16 chains keep their
  // start values (chain j: j in each of 16 lanes) however long they run.
  EXPECT_EQ(internal::VnniChains(1000),
            16.0f * (0 + 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11 + 12 + 13 + 14 + 15));
  EXPECT_EQ(internal::VnniChains(1), internal::VnniChains(100000));
}

TEST(ProbesTest, PeaksArePositiveWhereTheInstructionExists) {
  EXPECT_GT(MeasurePeakFmaF32(1, 0.01), 0.0);
  EXPECT_EQ(MeasurePeakDpbf16(1, 0.01) > 0.0, HasAvx512Bf16());
  EXPECT_EQ(MeasurePeakVnniInt8(1, 0.01) > 0.0, HasAvx512Vnni());
}

}  // namespace
}  // namespace tessera::bench
