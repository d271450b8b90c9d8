// Sampler tests. Each transform is checked statistically: draw N samples with a fixed seed and
// compare the empirical distribution with the intended one, computed here independently in
// double by a sort-based reference (RefDistribution).
//
// Acceptance bounds for N draws (stated once, used by ExpectDistribution):
//   * a token the transform removes must never be drawn (count == 0);
//   * every kept token with N p >= 5: |p_hat - p| <= 5 * sqrt(p (1 - p) / N)   (5 binomial
//     standard deviations; per-token false-alarm rate ~6e-7 where the normal approximation
//     holds, and the seeds are fixed so runs are deterministic);
//   * Pearson chi-square over the kept tokens (bins with N p < 5 pooled) below its 0.999
//     quantile for df = bins - 1 (Wilson-Hilferty approximation, slightly conservative).
// With N = 200k a kept token's probability is pinned to about +/-0.0011 absolute (p = 0.5).
#include "tessera/text/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

namespace tessera::text {
namespace {

constexpr int kDraws = 200000;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Eight tokens with a spread of probabilities; no two logits tie.
const std::vector<float> kLogits = {1.0f, 2.5f, -0.5f, 0.3f, 1.7f, -1.2f, 0.9f, 2.2f};

SamplingParams Seeded(uint64_t seed) {
  SamplingParams p;
  p.seed = seed;
  return p;
}

std::vector<double> Softmax(const std::vector<double>& s) {
  const double m = *std::max_element(s.begin(), s.end());
  std::vector<double> p(s.size());
  double z = 0;
  for (size_t i = 0; i < s.size(); ++i) z += p[i] = std::exp(s[i] - m);
  for (double& x : p) x /= z;
  return p;
}

void Renormalize(std::vector<double>& p) {
  const double z = std::accumulate(p.begin(), p.end(), 0.0);
  for (double& x : p) x /= z;
}

// The intended distribution after temperature -> top-k -> top-p -> min-p, by full sorting in
// double. Ties at the top-k and top-p boundaries are kept (the documented rule).
std::vector<double> RefDistribution(const std::vector<double>& logits, double temperature,
                                    int top_k = 0, double top_p = 1.0, double min_p = 0.0) {
  std::vector<double> s = logits;
  for (double& x : s) x /= temperature;
  std::vector<double> p = Softmax(s);
  std::vector<double> desc = p;
  std::sort(desc.begin(), desc.end(), std::greater<>());
  if (top_k > 0 && top_k < static_cast<int>(p.size())) {
    const double kth = desc[top_k - 1];
    for (double& x : p) x = x >= kth ? x : 0.0;
    Renormalize(p);
  }
  if (top_p < 1.0) {
    desc = p;
    std::sort(desc.begin(), desc.end(), std::greater<>());
    double before = 0;
    double cutoff = desc[0];
    for (double x : desc) {
      if (before >= top_p) break;
      cutoff = x;
      before += x;
    }
    for (double& x : p) x = x >= cutoff ? x : 0.0;
    Renormalize(p);
  }
  if (min_p > 0.0) {
    const double mx = *std::max_element(p.begin(), p.end());
    for (double& x : p) x = x >= min_p * mx ? x : 0.0;
    Renormalize(p);
  }
  return p;
}

std::vector<double> ToDouble(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

std::vector<int64_t> DrawCounts(Sampler& sampler, const std::vector<float>& logits, int n) {
  std::vector<int64_t> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) ++counts[sampler.Sample(logits).id];
  return counts;
}

double Chi2Quantile999(int df) {
  const double z = 3.0902;  // standard normal 0.999 quantile
  const double a = 2.0 / (9.0 * df);
  return df * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
}

void ExpectDistribution(const std::vector<int64_t>& counts, const std::vector<double>& expected) {
  ASSERT_EQ(counts.size(), expected.size());
  const double n = static_cast<double>(std::accumulate(counts.begin(), counts.end(), int64_t{0}));
  double chi2 = 0, pooled_expected = 0, pooled_count = 0;
  int bins = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double p = expected[i];
    if (p == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " should have been removed";
      continue;
    }
    if (n * p < 5) {  // too rare for a per-token normal bound: checked in the pooled bin
      pooled_expected += n * p;
      pooled_count += counts[i];
      continue;
    }
    const double p_hat = counts[i] / n;
    EXPECT_LE(std::abs(p_hat - p), 5.0 * std::sqrt(p * (1 - p) / n))
        << "token " << i << ": expected p=" << p << ", got " << p_hat;
    chi2 += (counts[i] - n * p) * (counts[i] - n * p) / (n * p);
    ++bins;
  }
  if (pooled_expected >= 5) {
    chi2 += (pooled_count - pooled_expected) * (pooled_count - pooled_expected) / pooled_expected;
    ++bins;
  }
  if (bins > 1) {
    EXPECT_LT(chi2, Chi2Quantile999(bins - 1)) << "chi-square over " << bins << " bins";
  }
}

void CheckTransform(SamplingParams params, const std::vector<double>& expected,
                    const std::vector<float>& logits = kLogits, int draws = kDraws) {
  Sampler sampler(params, {});
  ExpectDistribution(DrawCounts(sampler, logits, draws), expected);
}

// ---- temperature, top-k, top-p, min-p --------------------------------------------------------

TEST(SamplerStats, Temperature) {
  for (float t : {0.5f, 1.0f, 2.0f}) {
    SCOPED_TRACE(t);
    SamplingParams p = Seeded(11);
    p.temperature = t;
    CheckTransform(p, RefDistribution(ToDouble(kLogits), t));
  }
}

TEST(SamplerStats, TopK) {
  for (int k : {3, 6}) {
    SCOPED_TRACE(k);
    SamplingParams p = Seeded(12);
    p.top_k = k;
    CheckTransform(p, RefDistribution(ToDouble(kLogits), 1.0, k));
  }
}

// Deterministic outcomes need no statistics: the same seed must give the untruncated stream,
// and a one-token support must give that token every time.
std::vector<int32_t> Stream(SamplingParams p, int n, const std::vector<float>& logits = kLogits) {
  Sampler sampler(p, {});
  std::vector<int32_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(sampler.Sample(logits).id);
  return ids;
}

TEST(SamplerStats, DisabledTruncationsLeaveTheStreamUnchanged) {
  const std::vector<int32_t> plain = Stream(Seeded(13), 2000);
  for (int k : {0, -1, 8, 1000}) {  // 0 / -1 disable top-k; k >= vocab keeps everything
    SamplingParams p = Seeded(13);
    p.top_k = k;
    EXPECT_EQ(Stream(p, 2000), plain) << "top_k " << k;
  }
  SamplingParams p = Seeded(13);
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  EXPECT_EQ(Stream(p, 2000), plain);
}

TEST(SamplerStats, SingleTokenSupports) {
  SamplingParams k1 = Seeded(14);
  k1.top_k = 1;
  SamplingParams p_small = Seeded(14);
  p_small.top_p = 0.1f;  // p below the top token's probability (0.31) keeps that token alone
  SamplingParams min_p1 = Seeded(14);
  min_p1.min_p = 1.0f;
  for (const SamplingParams& p : {k1, p_small, min_p1}) {
    EXPECT_EQ(Stream(p, 5000), std::vector<int32_t>(5000, 1));
  }
}

TEST(SamplerStats, TopKKeepsTiesAtTheBoundary) {
  const std::vector<float> logits = {3.0f, 1.0f, 2.0f, 1.0f, 0.0f};
  SamplingParams p = Seeded(14);
  p.top_k = 3;  // the 3rd largest is 1.0, shared by tokens 1 and 3: both stay
  Sampler sampler(p, {});
  const auto counts = DrawCounts(sampler, logits, kDraws / 2);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[3], 0);
  EXPECT_EQ(counts[4], 0);
  ExpectDistribution(counts, RefDistribution(ToDouble(logits), 1.0, 3));
}

TEST(SamplerStats, TopP) {
  // Softmax(kLogits) sorted: 0.3087 (id 1), 0.2287 (7), 0.1388 (4), 0.0935 (6), 0.0846 (0), ...
  for (float top_p : {0.9f, 0.5f}) {
    SCOPED_TRACE(top_p);
    SamplingParams p = Seeded(15);
    p.top_p = top_p;
    CheckTransform(p, RefDistribution(ToDouble(kLogits), 1.0, 0, top_p));
  }
}

TEST(SamplerStats, TopPInsideTheFirstToken) {
  // Probabilities 0.6, 0.2, 0.2: any p <= 0.6 keeps token 0 only; just above it, the tie.
  const std::vector<float> logits = {std::log(3.0f), 0.0f, 0.0f};
  for (float top_p : {0.05f, 0.3f, 0.55f}) {
    SamplingParams p = Seeded(16);
    p.top_p = top_p;
    EXPECT_EQ(Stream(p, 3000, logits), std::vector<int32_t>(3000, 0)) << top_p;
  }
  SamplingParams p = Seeded(16);
  p.top_p = 0.65f;
  CheckTransform(p, {0.6, 0.2, 0.2}, logits, kDraws / 2);
}

TEST(SamplerStats, TopPKeepsTiesAtTheBoundary) {
  // Probabilities 0.534, 0.197, 0.197, 0.072. With p = 0.6 the nucleus ends inside the tie
  // {1, 2}; both tied tokens are kept whatever their ids, token 3 is cut.
  const std::vector<float> logits = {2.0f, 1.0f, 1.0f, 0.0f};
  SamplingParams p = Seeded(17);
  p.top_p = 0.6f;
  Sampler sampler(p, {});
  const auto counts = DrawCounts(sampler, logits, kDraws / 2);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[2], 0);
  EXPECT_EQ(counts[3], 0);
  const double e = std::exp(1.0), e2 = std::exp(2.0);
  ExpectDistribution(counts, {e2 / (e2 + 2 * e), e / (e2 + 2 * e), e / (e2 + 2 * e), 0.0});
}

TEST(SamplerStats, TopPOnALargerVocabulary) {
  // 90 tokens with a smooth spread: the nucleus (~75 tokens) is larger than the first sorted
  // prefix (64), so the growing partial sort is exercised. 20k draws: >= 160 per kept token.
  std::vector<float> logits(90);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = -0.02f * static_cast<float>(i);
  std::shuffle(logits.begin(), logits.end(), std::mt19937_64(3));
  const auto expected = RefDistribution(ToDouble(logits), 1.0, 0, 0.9);
  const auto kept = std::count_if(expected.begin(), expected.end(), [](double x) { return x > 0; });
  EXPECT_GT(kept, 64);
  EXPECT_LT(kept, 90);
  SamplingParams p = Seeded(18);
  p.top_p = 0.9f;
  Sampler sampler(p, {});
  ExpectDistribution(DrawCounts(sampler, logits, 20000), expected);
}

TEST(SamplerStats, MinP) {
  for (float min_p : {0.05f, 0.3f}) {
    SCOPED_TRACE(min_p);
    SamplingParams p = Seeded(19);
    p.min_p = min_p;
    CheckTransform(p, RefDistribution(ToDouble(kLogits), 1.0, 0, 1.0, min_p));
  }
}

TEST(SamplerStats, MinPIsRelativeToTheTemperedDistribution) {
  SamplingParams p = Seeded(20);
  p.temperature = 2.0f;
  p.min_p = 0.4f;  // at T = 2 more tokens clear 0.4 * p_max than at T = 1
  CheckTransform(p, RefDistribution(ToDouble(kLogits), 2.0, 0, 1.0, 0.4));
}

TEST(SamplerStats, CombinedTruncations) {
  SamplingParams p = Seeded(21);
  p.temperature = 0.8f;
  p.top_k = 6;
  p.top_p = 0.85f;
  p.min_p = 0.08f;
  CheckTransform(p, RefDistribution(ToDouble(kLogits), 0.8, 6, 0.85, 0.08));
}

TEST(SamplerStats, TopKCutoffSearchOnAWideRow) {
  // 6 tokens at 0 and 1000 graded from -6 to -7: the 506th largest sits below max - 4, so the
  // candidate cut-off search must widen (to max - 8) before nth_element. Top-k keeps tokens
  // 0..505; token i >= 506 must never appear, and the kept tail (~14% of the mass) must match.
  std::vector<float> logits(1006);
  for (size_t i = 0; i < logits.size(); ++i) {
    logits[i] = i < 6 ? 0.0f : -6.0f - 0.001f * static_cast<float>(i - 6);
  }
  SamplingParams p = Seeded(24);
  p.top_k = 506;
  CheckTransform(p, RefDistribution(ToDouble(logits), 1.0, 506), logits, 10000);
}

TEST(SamplerStats, MaskedRowAcrossSimdBlocks) {
  // Drawable tokens sit at SIMD-vector and 4096-token block edges of a 4133-token row whose other
  // entries are -inf (a grammar mask), so vector bodies, row tails and block sums all matter.
  std::vector<float> logits(4133, kNegInf);
  const int32_t hot[] = {0, 15, 16, 31, 4095, 4096, 4111, 4132};
  for (size_t j = 0; j < std::size(hot); ++j) logits[hot[j]] = 0.25f * static_cast<float>(j);
  std::vector<double> expected(logits.size(), 0.0);
  std::vector<double> hot_logits;
  for (int32_t id : hot) hot_logits.push_back(logits[id]);
  const auto hot_p = RefDistribution(hot_logits, 0.7);
  for (size_t j = 0; j < std::size(hot); ++j) expected[hot[j]] = hot_p[j];
  SamplingParams p = Seeded(25);
  p.temperature = 0.7f;
  CheckTransform(p, expected, logits, 20000);
  p.temperature = 0.0f;  // greedy: the last hot token holds the largest logit
  EXPECT_EQ(Sampler(p, {}).Sample(logits).id, 4132);
}

// ---- penalties -------------------------------------------------------------------------------

TEST(SamplerPenalties, ExactLogitArithmetic) {
  SamplingParams p;
  p.repetition_penalty = 1.3f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  const std::vector<int32_t> prompt = {1, 3, 3, 100};  // 100 is outside the vocabulary: ignored
  Sampler sampler(p, prompt);
  for (int32_t id : {3, 4, 4, 4}) sampler.Accept(id);
  std::vector<float> logits = {2.0f, -1.0f, 0.7f, -0.4f, 1.5f, 3.0f};
  sampler.ApplyPenalties(logits);
  EXPECT_EQ(logits[0], 2.0f);         // never seen
  EXPECT_FLOAT_EQ(logits[1], -1.3f);  // prompt only: repetition (negative => multiply)
  EXPECT_EQ(logits[2], 0.7f);         // never seen
  // Prompt and output once: repetition, then frequency * 1, then presence.
  EXPECT_FLOAT_EQ(logits[3], -0.4f * 1.3f - 0.25f - 0.5f);
  // Output three times: repetition applies once (positive => divide), frequency counts 3.
  EXPECT_FLOAT_EQ(logits[4], 1.5f / 1.3f - 0.25f * 3 - 0.5f);
  EXPECT_EQ(logits[5], 3.0f);
}

TEST(SamplerPenalties, PresenceAndFrequencyIgnoreThePrompt) {
  SamplingParams p;
  p.presence_penalty = 1.0f;
  p.frequency_penalty = -0.5f;  // negative values encourage repetition
  Sampler sampler(p, std::vector<int32_t>{0, 1});
  sampler.Accept(1);
  sampler.Accept(1);
  sampler.Accept(2);
  std::vector<float> logits = {0.5f, 0.5f, 0.5f};
  sampler.ApplyPenalties(logits);
  EXPECT_EQ(logits[0], 0.5f);
  EXPECT_FLOAT_EQ(logits[1], 0.5f + 0.5f * 2 - 1.0f);
  EXPECT_FLOAT_EQ(logits[2], 0.5f + 0.5f - 1.0f);
}

TEST(SamplerPenalties, RepetitionBelowOneBoostsSeenTokens) {
  SamplingParams p;
  p.repetition_penalty = 0.5f;
  Sampler sampler(p, std::vector<int32_t>{0, 1});
  std::vector<float> logits = {2.0f, -2.0f, 2.0f};
  sampler.ApplyPenalties(logits);
  EXPECT_EQ(logits[0], 4.0f);
  EXPECT_EQ(logits[1], -1.0f);
  EXPECT_EQ(logits[2], 2.0f);
}

TEST(SamplerStats, PenaltiesShapeTheDistribution) {
  SamplingParams p = Seeded(22);
  p.repetition_penalty = 1.5f;
  p.presence_penalty = 0.4f;
  p.frequency_penalty = 0.3f;
  p.temperature = 0.9f;
  Sampler sampler(p, std::vector<int32_t>{2, 7});
  for (int32_t id : {1, 1, 4}) sampler.Accept(id);
  std::vector<double> penalized = ToDouble(kLogits);
  penalized[2] = -0.5 * 1.5;                 // prompt, negative
  penalized[7] = 2.2 / 1.5;                  // prompt, positive
  penalized[1] = 2.5 / 1.5 - 0.3 * 2 - 0.4;  // output twice
  penalized[4] = 1.7 / 1.5 - 0.3 * 1 - 0.4;  // output once
  ExpectDistribution(DrawCounts(sampler, kLogits, kDraws), RefDistribution(penalized, 0.9));
}

TEST(SamplerStats, PenaltiesThenTruncation) {
  // Penalties come first, so they decide which tokens top-k keeps.
  SamplingParams p = Seeded(23);
  p.presence_penalty = 2.0f;
  p.top_k = 2;
  Sampler sampler(p, {});
  sampler.Accept(1);  // the best token drops from 2.5 to 0.5; top-2 becomes {7, 4}
  std::vector<double> penalized = ToDouble(kLogits);
  penalized[1] -= 2.0;
  const auto expected = RefDistribution(penalized, 1.0, 2);
  EXPECT_EQ(expected[1], 0.0);
  ExpectDistribution(DrawCounts(sampler, kLogits, kDraws), expected);
}

// ---- greedy ----------------------------------------------------------------------------------

TEST(SamplerGreedy, ArgmaxLowestIdOnTies) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.top_k = 2;  // ignored by greedy, like top_p / min_p
  p.top_p = 0.5f;
  Sampler sampler(p, {});
  EXPECT_EQ(sampler.Sample(std::vector<float>{1.0f, 3.0f, 0.0f, 3.0f, 3.0f}).id, 1);
  EXPECT_EQ(sampler.Sample(std::vector<float>{5.0f, 5.0f}).id, 0);
  EXPECT_EQ(sampler.Sample(std::vector<float>{kNegInf, kNegInf, -7.0f}).id, 2);
}

TEST(SamplerGreedy, SkipsNanWhereverItSits) {
  // The device ARGMAX skips NaN; the host pick must too, whatever lane or block the NaN is in.
  SamplingParams p;
  p.temperature = 0.0f;
  Sampler sampler(p, {});
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (size_t n : {5u, 17u, 64u, 4099u, 9000u}) {
    for (size_t at = 0; at < n; at += (n > 64 ? 517 : 1)) {
      std::vector<float> row(n, -1.0f);
      const size_t best = (at + n / 2) % n;  // never `at`: n >= 5
      row[best] = 2.0f;
      row[at] = nan;
      EXPECT_EQ(sampler.Sample(row).id, static_cast<int32_t>(best))
          << "n " << n << " nan at " << at;
    }
  }
  EXPECT_EQ(sampler.Sample(std::vector<float>(40, nan)).id, 0);
}

TEST(SamplerGreedy, MatchesBruteForceAcrossBlocks) {
  // Many penalized tokens, some on the 4096-token block edges, and planted ties: the fused
  // block-wise pass must agree with argmax over ApplyPenalties() (lowest id on ties).
  std::mt19937_64 gen(26);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> logits(10000);
  for (float& x : logits) x = normal(gen);
  SamplingParams p;
  p.temperature = 0.0f;
  p.repetition_penalty = 1.3f;
  p.presence_penalty = -1.5f;  // negative: seen tokens can become the maximum
  const std::vector<int32_t> prompt = {4095, 4096, 8191, 8192, 9999, 0};
  for (int trial = 0; trial < 40; ++trial) {
    Sampler sampler(p, prompt);
    for (int j = 0; j < 30; ++j) sampler.Accept(static_cast<int32_t>(gen() % logits.size()));
    if (trial % 2 == 0) sampler.Accept(4096);
    std::vector<float> row = logits;
    row[gen() % row.size()] = 6.0f;  // planted ties with the value a penalized token may reach
    row[gen() % row.size()] = 6.0f;
    std::vector<float> penalized = row;
    sampler.ApplyPenalties(penalized);
    const auto want = std::max_element(penalized.begin(), penalized.end()) - penalized.begin();
    EXPECT_EQ(sampler.Sample(row).id, want) << "trial " << trial;
  }
}

TEST(SamplerGreedy, TinyTemperatureIsGreedy) {
  SamplingParams p;
  p.temperature = 1e-6f;
  Sampler sampler(p, {});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sampler.Sample(kLogits).id, 1);
}

TEST(SamplerGreedy, SeesPenaltiesAndBreaksTiesAcrossThem) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.presence_penalty = 1.0f;
  Sampler sampler(p, {});
  sampler.Accept(2);
  // Penalized token 2 (3 -> 2) ties with unpenalized token 1: the lower id wins.
  EXPECT_EQ(sampler.Sample(std::vector<float>{1.0f, 2.0f, 3.0f}).id, 1);
  Sampler sampler2(p, {});
  sampler2.Accept(0);
  // Penalized token 0 (3 -> 2) ties with token 1 and has the lower id.
  EXPECT_EQ(sampler2.Sample(std::vector<float>{3.0f, 2.0f, 1.0f}).id, 0);
  // Pushed below the rest.
  EXPECT_EQ(sampler2.Sample(std::vector<float>{2.5f, 2.0f, 1.0f}).id, 1);
}

// ---- seeds -----------------------------------------------------------------------------------

TEST(SamplerSeed, SameSeedSameStream) {
  SamplingParams p = Seeded(1234);
  p.top_p = 0.95f;
  EXPECT_EQ(Stream(p, 1000), Stream(p, 1000));
}

TEST(SamplerSeed, DifferentSeedsDiffer) {
  EXPECT_NE(Stream(Seeded(1), 1000), Stream(Seeded(2), 1000));
  // No seed: random_device; two streams of 1000 draws agree with probability < 0.79^1000.
  EXPECT_NE(Stream(SamplingParams{}, 1000), Stream(SamplingParams{}, 1000));
}

// ---- logprobs --------------------------------------------------------------------------------

std::vector<double> RefLogSoftmax(const std::vector<float>& logits) {
  double m = -HUGE_VAL;
  for (float x : logits) m = std::max(m, static_cast<double>(x));
  double z = 0;
  for (float x : logits) z += std::exp(x - m);
  std::vector<double> out;
  for (float x : logits) out.push_back(x - m - std::log(z));
  return out;
}

TEST(SamplerLogprobs, LogprobIsOfTheRawLogits) {
  std::mt19937_64 gen(5);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(5000);
  for (float& x : logits) x = normal(gen);
  const auto ref = RefLogSoftmax(logits);
  SamplingParams p = Seeded(7);
  p.temperature = 0.6f;
  p.top_k = 40;
  p.repetition_penalty = 1.2f;
  p.presence_penalty = 0.3f;
  Sampler sampler(p, std::vector<int32_t>{1, 2, 3});
  for (int i = 0; i < 50; ++i) {
    const SampledToken t = sampler.Sample(logits);
    EXPECT_NEAR(t.logprob, ref[t.id], 1e-4);
    sampler.Accept(t.id);
  }
  SamplingParams g;
  g.temperature = 0.0f;
  g.top_logprobs = 20;
  Sampler greedy(g, {});
  const SampledToken t = greedy.Sample(logits);
  EXPECT_EQ(t.id, std::max_element(logits.begin(), logits.end()) - logits.begin());
  EXPECT_NEAR(t.logprob, ref[t.id], 1e-5);
  // top_logprobs over two 4096-token blocks against a full sort.
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  ASSERT_EQ(t.top.size(), 20u);
  for (size_t i = 0; i < 20; ++i) {
    EXPECT_EQ(t.top[i].first, order[i]);
    EXPECT_NEAR(t.top[i].second, ref[order[i]], 1e-5);
  }
}

TEST(SamplerLogprobs, TopLogprobsSortedWithTiesByLowerId) {
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f, kNegInf, 1.0f};
  const auto ref = RefLogSoftmax(logits);
  for (float temperature : {0.0f, 1.0f}) {
    SamplingParams p = Seeded(8);
    p.temperature = temperature;
    p.top_logprobs = 4;
    Sampler sampler(p, {});
    const SampledToken t = sampler.Sample(logits);
    ASSERT_EQ(t.top.size(), 4u);
    const int32_t want_ids[] = {1, 3, 4, 6};
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(t.top[i].first, want_ids[i]);
      EXPECT_NEAR(t.top[i].second, ref[want_ids[i]], 1e-6);
    }
  }
  SamplingParams all;
  all.top_logprobs = 20;  // more than the vocabulary: every token, -inf last
  Sampler sampler(all, {});
  const SampledToken t = sampler.Sample(logits);
  ASSERT_EQ(t.top.size(), logits.size());
  EXPECT_EQ(t.top.back().first, 5);
  EXPECT_EQ(t.top.back().second, kNegInf);
  EXPECT_NE(t.id, 5);  // a -inf logit is never drawn
}

TEST(SamplerLogprobs, LogSoftmaxMatchesDoubleOnALongRow) {
  std::mt19937_64 gen(6);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  std::vector<float> logits(10007);  // two full 4096 blocks and a ragged tail
  for (float& x : logits) x = normal(gen);
  logits[9000] = kNegInf;
  const auto ref = RefLogSoftmax(logits);
  std::vector<float> out(logits.size());
  LogSoftmax(logits, out);
  double worst = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (i != 9000) worst = std::max(worst, std::abs(out[i] - ref[i]));
  }
  EXPECT_LT(worst, 1e-5);
  EXPECT_EQ(out[9000], kNegInf);
}

TEST(SamplerLogprobs, LogSoftmaxIsStable) {
  const std::vector<float> logits = {1000.0f, 999.0f, -1000.0f, kNegInf};
  std::vector<float> out(logits.size());
  LogSoftmax(logits, out);
  const double lz = std::log(1.0 + std::exp(-1.0));
  EXPECT_NEAR(out[0], -lz, 1e-6);
  EXPECT_NEAR(out[1], -1.0 - lz, 1e-6);
  EXPECT_NEAR(out[2], -2000.0 - lz, 1e-3);
  EXPECT_EQ(out[3], kNegInf);
  double total = 0;
  for (float x : out) total += std::exp(static_cast<double>(x));
  EXPECT_NEAR(total, 1.0, 1e-6);
  std::vector<float> in_place = logits;
  LogSoftmax(in_place, in_place);
  EXPECT_EQ(in_place, out);
}

// ---- masked rows and large vocabularies ------------------------------------------------------

TEST(SamplerEdge, OnlyFiniteTokenIsDrawn) {
  Sampler sampler(Seeded(9), {});
  for (int i = 0; i < 100; ++i) {
    const SampledToken t = sampler.Sample(std::vector<float>{kNegInf, 0.5f, kNegInf});
    EXPECT_EQ(t.id, 1);
    EXPECT_EQ(t.logprob, 0.0f);
  }
}

TEST(SamplerEdge, LargeVocabularyTruncationsMatchAFullSort) {
  // 150k tokens; checks every draw lands in the set a full sort keeps.
  std::mt19937_64 gen(10);
  std::normal_distribution<float> normal(0.0f, 0.05f);  // nearly flat: a huge nucleus
  std::vector<float> logits(150000);
  for (float& x : logits) x = normal(gen);
  std::vector<float> sorted = logits;
  std::sort(sorted.begin(), sorted.end(), std::greater<>());

  SamplingParams k = Seeded(11);
  k.top_k = 50;
  Sampler top_k(k, {});
  for (int i = 0; i < 3; ++i) EXPECT_GE(logits[top_k.Sample(logits).id], sorted[49]);

  // Nucleus of p = 0.5 by the definition, over the fully sorted row: the cut-off logit.
  double z = 0;
  for (float x : sorted) z += std::exp(static_cast<double>(x) - sorted[0]);
  double before = 0;
  size_t kept = 0;
  while (before < 0.5 * z) before += std::exp(static_cast<double>(sorted[kept++]) - sorted[0]);
  const float cutoff = sorted[kept - 1];
  EXPECT_GT(kept, 50000u);  // far beyond the first sorted prefixes
  SamplingParams tp = Seeded(12);
  tp.top_p = 0.5f;
  Sampler top_p(tp, {});
  for (int i = 0; i < 3; ++i) EXPECT_GE(logits[top_p.Sample(logits).id], cutoff);
}

// ---- validation ------------------------------------------------------------------------------

TEST(SamplingParamsValidation, AcceptsDefaultsAndEdges) {
  EXPECT_TRUE(ValidateSamplingParams({}).ok());
  SamplingParams p;
  p.temperature = 0.0f;
  p.top_k = -1;
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  p.presence_penalty = -2.0f;
  p.frequency_penalty = 2.0f;
  p.top_logprobs = 20;
  EXPECT_TRUE(ValidateSamplingParams(p).ok());
}

TEST(SamplingParamsValidation, RejectsOutOfRange) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  struct Case {
    void (*mutate)(SamplingParams&, float nan, float inf);
    const char* field;
  };
  const Case cases[] = {
      {[](SamplingParams& p, float, float) { p.temperature = -0.1f; }, "temperature"},
      {[](SamplingParams& p, float n, float) { p.temperature = n; }, "temperature"},
      {[](SamplingParams& p, float, float i) { p.temperature = i; }, "temperature"},
      {[](SamplingParams& p, float, float) { p.top_k = -2; }, "top_k"},
      {[](SamplingParams& p, float, float) { p.top_p = 0.0f; }, "top_p"},
      {[](SamplingParams& p, float, float) { p.top_p = 1.01f; }, "top_p"},
      {[](SamplingParams& p, float n, float) { p.top_p = n; }, "top_p"},
      {[](SamplingParams& p, float, float) { p.min_p = -0.01f; }, "min_p"},
      {[](SamplingParams& p, float, float) { p.min_p = 1.5f; }, "min_p"},
      {[](SamplingParams& p, float, float) { p.repetition_penalty = 0.0f; }, "repetition_penalty"},
      {[](SamplingParams& p, float, float i) { p.repetition_penalty = i; }, "repetition_penalty"},
      {[](SamplingParams& p, float, float) { p.presence_penalty = 2.5f; }, "presence_penalty"},
      {[](SamplingParams& p, float n, float) { p.frequency_penalty = n; }, "frequency_penalty"},
      {[](SamplingParams& p, float, float) { p.frequency_penalty = -3.0f; }, "frequency_penalty"},
      {[](SamplingParams& p, float, float) { p.top_logprobs = -1; }, "top_logprobs"},
      {[](SamplingParams& p, float, float) { p.top_logprobs = 21; }, "top_logprobs"},
  };
  for (const Case& c : cases) {
    SamplingParams p;
    c.mutate(p, nan, inf);
    const Status s = ValidateSamplingParams(p);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(s.message().find(c.field), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace tessera::text
