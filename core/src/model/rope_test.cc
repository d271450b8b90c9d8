#include "tessera/core/model/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace tessera {
namespace {

#include "rope_test_golden.inc"

// ~1 float32 ulp: the golden values round a correctly rounded pow once, like rope.cc; torch's
// vectorised powf can be 1 ulp away from both.
constexpr double kRelTol = 1.2e-7;

void ExpectClose(const std::vector<float>& got, const std::vector<float>& want,
                 const std::string& name) {
  ASSERT_EQ(got.size(), want.size()) << name;
  for (size_t i = 0; i < want.size(); ++i) {
    const double tol = kRelTol * std::fabs(static_cast<double>(want[i]));
    EXPECT_NEAR(got[i], want[i], tol) << name << " inv_freq[" << i << "]";
  }
}

TEST(RopeGoldenTest, MatchesReference) {
  for (const RopeGoldenCase& c : RopeGoldenCases()) {
    SCOPED_TRACE(c.name);
    auto config = ParseModelConfigText(c.config_json);
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    auto rope = ComputeRopeInvFreq(config->rope, c.head_dim, c.seq_len);
    ASSERT_TRUE(rope.ok()) << rope.status().ToString();
    ExpectClose(rope->inv_freq, c.inv_freq, c.name);
    EXPECT_NEAR(rope->attention_scaling, c.attention_scaling, 1e-7) << c.name;
  }
}

TEST(RopeTest, DefaultByHand) {
  RopeConfig r;
  r.theta = 10000.0;
  auto out = ComputeRopeInvFreq(r, 4);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->inv_freq, (std::vector<float>{1.0f, 0.01f}));
  EXPECT_EQ(out->attention_scaling, 1.0f);
}

TEST(RopeTest, DynamicAtInitEqualsDefault) {
  RopeConfig r;
  r.type = "dynamic";
  r.factor = 4.0;
  r.max_position_embeddings = 2048;
  RopeConfig d;
  auto dyn = ComputeRopeInvFreq(r, 64);
  auto def = ComputeRopeInvFreq(d, 64);
  ASSERT_TRUE(dyn.ok() && def.ok());
  EXPECT_EQ(dyn->inv_freq, def->inv_freq);
  auto at_max = ComputeRopeInvFreq(r, 64, 2048);
  EXPECT_EQ(at_max->inv_freq, def->inv_freq);
  auto longer = ComputeRopeInvFreq(r, 64, 4096);
  EXPECT_LT(longer->inv_freq[1], def->inv_freq[1]);  // NTK: a larger base, lower frequencies
}

TEST(RopeTest, KnownAttentionScalings) {
  for (const RopeGoldenCase& c : RopeGoldenCases()) {
    const std::string name = c.name;
    if (name == "qwen25_yarn") {
      EXPECT_NEAR(c.attention_scaling, 0.1 * std::log(4.0) + 1.0, 1e-7);
    } else if (name == "phi3_longrope_short") {
      EXPECT_NEAR(c.attention_scaling, std::sqrt(1.0 + std::log(32.0) / std::log(4096.0)), 1e-7);
    } else if (name == "deepseek_yarn_mscale") {
      EXPECT_EQ(c.attention_scaling, 1.0f);  // mscale == mscale_all_dim
    }
  }
}

TEST(RopeTest, Llama3KeepsHighAndScalesLowFrequencies) {
  RopeConfig r;
  r.type = "llama3";
  r.theta = 500000.0;
  r.factor = 8.0;
  r.low_freq_factor = 1.0;
  r.high_freq_factor = 4.0;
  r.original_max_position_embeddings = 8192;
  auto l3 = ComputeRopeInvFreq(r, 128);
  RopeConfig d;
  d.theta = 500000.0;
  auto def = ComputeRopeInvFreq(d, 128);
  ASSERT_TRUE(l3.ok() && def.ok());
  EXPECT_EQ(l3->inv_freq.front(), def->inv_freq.front());       // high frequency untouched
  EXPECT_EQ(l3->inv_freq.back(), def->inv_freq.back() / 8.0f);  // low frequency / factor
}

TEST(RopeTest, Errors) {
  RopeConfig r;
  r.type = "mystery";
  EXPECT_EQ(ComputeRopeInvFreq(r, 64).status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(ComputeRopeInvFreq(r, 64).status().message().find("'mystery'"), std::string::npos);

  RopeConfig odd;
  odd.partial_rotary_factor = 0.3;  // int(64 * 0.3) = 19
  EXPECT_EQ(ComputeRopeInvFreq(odd, 64).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(ComputeRopeInvFreq(RopeConfig{}, 0).ok());

  RopeConfig linear;
  linear.type = "linear";
  EXPECT_NE(ComputeRopeInvFreq(linear, 64).status().message().find("'factor'"), std::string::npos);

  RopeConfig longrope;
  longrope.type = "longrope";
  longrope.original_max_position_embeddings = 4096;
  longrope.max_position_embeddings = 131072;
  longrope.short_factor.assign(10, 1.0);
  longrope.long_factor.assign(32, 1.0);
  auto wrong_len = ComputeRopeInvFreq(longrope, 64);
  EXPECT_NE(wrong_len.status().message().find("short_factor has 10 values"), std::string::npos)
      << wrong_len.status().ToString();
  EXPECT_TRUE(ComputeRopeInvFreq(longrope, 64, 8192).ok());  // the long table fits

  RopeConfig yarn;
  yarn.type = "yarn";
  EXPECT_FALSE(ComputeRopeInvFreq(yarn, 64).ok());  // no original/max positions at all
}

}  // namespace
}  // namespace tessera
