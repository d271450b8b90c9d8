// The continuous-batching scheduler on the bundled model and the CPU backend, driven by hand
// (StepOnce) or by its thread: batch invariance (alone == batched == chunked == preempted ==
// prefix-cached), prompt logits, cancellation, admission errors, and no leaked KV blocks.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "tessera/core/batching/batch_scheduler.h"
#include "tessera/core/device.h"
#include "tessera/core/plugin_loader.h"
#include "tessera/testing/test_runtime.h"
#include "tessera/text/generate.h"
#include "tessera/text/text_model.h"

namespace tessera::batching {
namespace {

using Runtime = ::tessera::testing::TestRuntime;

std::unique_ptr<text::TextModel> LoadModel(int64_t kv_tokens) {
  text::TextModelOptions o;
  o.kv_tokens = kv_tokens;
  auto m = text::TextModel::Load(std::getenv("TESSERA_DEFAULT_MODEL"), Runtime::Get().devices(), o);
  TSR_CHECK(m.ok());
  return std::move(m).value();
}

// Greedy (argmax, lowest id on ties) for a fixed number of tokens; records what it sees.
class GreedySink final : public SequenceSink {
 public:
  explicit GreedySink(int32_t max_tokens) : max_tokens_(max_tokens) {}
  NextToken OnLogits(std::span<const float> logits) override {
    const int32_t id =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    tokens.push_back(id);
    return {id, static_cast<int32_t>(tokens.size()) >= max_tokens_};
  }
  void OnPromptLogits(int32_t first, int32_t n, std::span<const float> rows) override {
    EXPECT_EQ(first, prompt_positions);  // in order, exactly once
    prompt_positions += n;
    prompt_rows.insert(prompt_rows.end(), rows.begin(), rows.end());
  }
  void OnFinished(FinishCause c, const Status& error) override {
    cause = c;
    finished = true;
    EXPECT_TRUE(error.ok()) << error.message();
  }
  bool Cancelled() const override { return cancel.load(); }

  std::vector<int32_t> tokens;
  std::vector<float> prompt_rows;
  int32_t prompt_positions = 0;
  FinishCause cause = FinishCause::kError;
  bool finished = false;
  std::atomic<bool> cancel{false};

 private:
  int32_t max_tokens_;
};

std::vector<int32_t> Prompt(int32_t seed, int32_t len) {
  std::vector<int32_t> p;
  for (int32_t i = 0; i < len; ++i) p.push_back(2 + (seed * 131 + i * 37) % 4000);
  return p;
}

// Runs every request to completion with StepOnce.
void Drain(BatchScheduler& s) {
  for (int i = 0; i < 100000; ++i) {
    auto r = s.StepOnce();
    ASSERT_TRUE(r.ok()) << r.status().message();
    if (!*r && s.Stats().running == 0 && s.Stats().waiting == 0) return;
  }
  FAIL() << "the scheduler did not drain";
}

std::vector<std::vector<int32_t>> RunAll(text::TextModel& m, const SchedulerOptions& o,
                                         const std::vector<std::vector<int32_t>>& prompts,
                                         int32_t max_tokens, SchedulerStats* stats = nullptr) {
  BatchScheduler s(m, o);
  std::vector<std::shared_ptr<GreedySink>> sinks;
  std::vector<SequenceRequest> reqs;
  for (const auto& p : prompts) {
    sinks.push_back(std::make_shared<GreedySink>(max_tokens));
    reqs.push_back({p, false, sinks.back()});
  }
  EXPECT_TRUE(s.Submit(std::move(reqs)).ok());
  Drain(s);
  std::vector<std::vector<int32_t>> out;
  for (const auto& k : sinks) {
    EXPECT_TRUE(k->finished);
    out.push_back(k->tokens);
  }
  if (stats) *stats = s.Stats();
  EXPECT_EQ(s.Stats().kv_blocks_used, 0);
  return out;
}

std::vector<std::vector<int32_t>> RunAlone(text::TextModel& m,
                                           const std::vector<std::vector<int32_t>>& prompts,
                                           int32_t max_tokens) {
  std::vector<std::vector<int32_t>> out;
  SchedulerOptions o;
  o.prefix_caching = false;
  for (const auto& p : prompts) out.push_back(RunAll(m, o, {p}, max_tokens)[0]);
  return out;
}

TEST(SchedulerTest, BatchedChunkedAndCachedEqualAlone) {
  auto m = LoadModel(4096);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 6; ++i) prompts.push_back(Prompt(i, 5 + 17 * i));
  // Two prompts sharing a 40-token prefix exercise the prefix cache.
  prompts.push_back(Prompt(100, 40));
  prompts.back().push_back(7);
  prompts.push_back(Prompt(100, 40));
  prompts.back().push_back(9);
  const auto alone = RunAlone(*m, prompts, 12);
  SchedulerOptions o;
  o.max_batch_tokens = 24;  // forces chunked prefill next to running decodes
  SchedulerStats st;
  const auto batched = RunAll(*m, o, prompts, 12, &st);
  EXPECT_EQ(batched, alone);
  EXPECT_GT(st.prefill_chunks, static_cast<int64_t>(prompts.size()));
  // The twin prompts ran side by side: the second reuses what the first had computed by then.
  EXPECT_GE(st.prefix_hit_tokens, 16);
  // The reference: single-sequence Generate (engine run's path) agrees too.
  text::GenerateRequest g;
  g.prompt = prompts[3];
  g.sampling.temperature = 0;
  g.max_tokens = 12;
  g.ignore_eos = true;
  auto r = text::Generate(*m, g, [](std::string_view) { return true; });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tokens, alone[3]);
}

TEST(SchedulerTest, PreemptionKeepsOutputs) {
  auto m = LoadModel(96);  // 6 blocks of 16: four 50-token sequences can not all fit
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 4; ++i) prompts.push_back(Prompt(10 + i, 20));
  const auto alone = RunAlone(*m, prompts, 30);
  SchedulerOptions o;
  o.prefix_caching = true;
  SchedulerStats st;
  const auto batched = RunAll(*m, o, prompts, 30, &st);
  EXPECT_EQ(batched, alone);
  EXPECT_GT(st.preemptions, 0);
  EXPECT_EQ(st.kv_blocks_used, 0);
}

TEST(SchedulerTest, PromptLogitsMatchScoring) {
  auto m = LoadModel(1024);
  auto prompt = Prompt(3, 41);
  auto scored = text::ScoreTokens(*m, prompt);
  ASSERT_TRUE(scored.ok());
  SchedulerOptions o;
  o.max_batch_tokens = 16;
  BatchScheduler s(*m, o);
  auto sink = std::make_shared<GreedySink>(2);
  ASSERT_TRUE(s.Submit({{prompt, true, sink}}).ok());
  Drain(s);
  const size_t vocab = static_cast<size_t>(m->vocab_size());
  ASSERT_EQ(sink->prompt_rows.size(), prompt.size() * vocab);
  // Compare argmaxes row by row (scores are log-softmaxed, rows are raw logits).
  for (size_t r = 0; r < prompt.size(); ++r) {
    auto a = sink->prompt_rows.begin() + static_cast<std::ptrdiff_t>(r * vocab);
    auto b = scored->begin() + static_cast<std::ptrdiff_t>(r * vocab);
    EXPECT_EQ(std::max_element(a, a + static_cast<std::ptrdiff_t>(vocab)) - a,
              std::max_element(b, b + static_cast<std::ptrdiff_t>(vocab)) - b);
  }
}

TEST(SchedulerTest, CancellationFreesBlocks) {
  auto m = LoadModel(1024);
  BatchScheduler s(*m, SchedulerOptions{});
  s.Start();
  auto a = std::make_shared<GreedySink>(100000);
  auto b = std::make_shared<GreedySink>(5);
  ASSERT_TRUE(s.Submit({{Prompt(1, 30), false, a}, {Prompt(2, 30), false, b}}).ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (s.Stats().generated_tokens < 20 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  a->cancel = true;
  s.Wake();
  while ((s.Stats().running > 0 || s.Stats().kv_blocks_used > 0) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  s.Stop();
  EXPECT_EQ(a->cause, FinishCause::kCancelled);
  EXPECT_EQ(b->cause, FinishCause::kDone);
  EXPECT_EQ(b->tokens.size(), 5u);
  EXPECT_EQ(s.Stats().kv_blocks_used, 0);
}

TEST(SchedulerTest, SubmitErrors) {
  auto m = LoadModel(64);
  SchedulerOptions o;
  o.max_queue = 2;
  BatchScheduler s(*m, o);
  auto sink = [] { return std::make_shared<GreedySink>(1); };
  EXPECT_EQ(s.Submit({{Prompt(0, 65), false, sink()}}).code(),
            StatusCode::kInvalidArgument);  // > context
  EXPECT_EQ(s.Submit({{{}, false, sink()}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Submit({{{1, 5000}, false, sink()}}).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(s.Submit({{Prompt(0, 64), false, sink()}, {Prompt(1, 8), false, sink()}}).ok());
  EXPECT_EQ(s.Submit({{Prompt(2, 8), false, sink()}}).code(), StatusCode::kResourceExhausted);
  Drain(s);
  EXPECT_TRUE(s.Submit({{Prompt(2, 8), false, sink()}}).ok());  // room again
  Drain(s);
  EXPECT_EQ(s.Stats().kv_blocks_used, 0);
}

}  // namespace
}  // namespace tessera::batching
