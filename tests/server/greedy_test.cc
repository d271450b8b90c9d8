// Greedy requests picked on the device (ModelRunner::ForwardArgmax, TSR_OP_ARGMAX): the runner
// gives each row's ArgmaxRow of the logits it would have downloaded, the sampler's greedy pick
// is ArgmaxRow, the batch scheduler takes the fast path exactly when every sampled row is
// greedy-only (mixed steps keep the logits and give the same tokens), and the server's TextSink
// emits the same events from an id as from the row. On the bundled model and the CPU backend
// (TESSERA_TEST_BACKEND picks another one first).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>

#include "generation.h"
#include "tessera/core/batching/batch_scheduler.h"
#include "tessera/core/model_runner.h"
#include "tessera/testing/test_runtime.h"
#include "tessera/text/sampler.h"
#include "tessera/text/text_model.h"

namespace tessera {
namespace {

using batching::BatchScheduler;
using batching::FinishCause;
using batching::NextToken;
using batching::SchedulerOptions;
using batching::SchedulerStats;
using batching::SequenceRequest;
using batching::SequenceSink;
using Runtime = ::tessera::testing::TestRuntime;

std::unique_ptr<text::TextModel> LoadModel(int64_t kv_tokens) {
  text::TextModelOptions o;
  o.kv_tokens = kv_tokens;
  auto m = text::TextModel::Load(std::getenv("TESSERA_DEFAULT_MODEL"), Runtime::Get().devices(), o);
  TSR_CHECK(m.ok());
  return std::move(m).value();
}

std::vector<int32_t> Prompt(int32_t seed, int32_t len) {
  std::vector<int32_t> p;
  for (int32_t i = 0; i < len; ++i) p.push_back(2 + (seed * 131 + i * 37) % 4000);
  return p;
}

// The sampler's greedy pick of a row (temperature 0, nothing else).
int32_t SamplerGreedy(std::span<const float> row) {
  text::SamplingParams p;
  p.temperature = 0;
  text::Sampler s(p, {});
  return s.Sample(row).id;
}

TEST(ArgmaxRowTest, IsTheSamplersGreedyPick) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<std::vector<float>> rows = {
      {1, 3, 2, 3},           // tie: the lower id
      {-inf, -inf, -inf},     // nothing above -inf: 0
      {-inf, -5, -inf, -5},   // tie below zero
      {7},                    // one column
      {0, 0, 0, 0, 0, 0, 0},  // all equal: 0
  };
  std::vector<float> wide(20000);  // several of the sampler's blocks, the max in a late one
  std::mt19937 rng(7);
  std::normal_distribution<float> n(0, 3);
  for (float& x : wide) x = n(rng);
  wide[12345] = 100;
  wide[17000] = 100;
  rows.push_back(wide);
  for (const auto& r : rows) EXPECT_EQ(ArgmaxRow(r), SamplerGreedy(r));
  EXPECT_EQ(ArgmaxRow(wide), 12345);
  // NaN never wins (the sampler does not take NaN rows; the op's rule is written down here).
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(ArgmaxRow(std::vector<float>{nan, 1, nan, 2, nan}), 3);
  EXPECT_EQ(ArgmaxRow(std::vector<float>{nan, nan}), 0);
}

// A batch of `lens.size()` sequences, each feeding tokens[pos, pos + lens[s]) of its prompt,
// with every fed position's logits wanted (so rows > sequences).
struct Batcher {
  text::TextModel& m;
  std::vector<SequenceBlocks> seqs;
  StepBatch Next(const std::vector<std::vector<int32_t>>& tokens, bool all_rows) {
    StepBatch b;
    b.cu_q.push_back(0);
    int32_t width = 0;
    for (size_t s = 0; s < tokens.size(); ++s) {
      const int32_t n = static_cast<int32_t>(tokens[s].size());
      for (int32_t j = 0; j < n; ++j) {
        if (all_rows || j == n - 1) b.logit_rows.push_back(static_cast<int32_t>(b.tokens.size()));
        b.tokens.push_back(tokens[s][static_cast<size_t>(j)]);
        b.positions.push_back(seqs[s].num_tokens + j);
      }
      TSR_CHECK(m.kv_cache().Extend(seqs[s], n, &b.slots).ok());
      b.cu_q.push_back(static_cast<int32_t>(b.tokens.size()));
      b.kv_lens.push_back(seqs[s].num_tokens);
      width = std::max(width, static_cast<int32_t>(seqs[s].blocks.size()));
    }
    b.max_blocks = (width + 15) / 16 * 16;
    b.block_table.assign(tokens.size() * static_cast<size_t>(b.max_blocks), -1);
    for (size_t s = 0; s < tokens.size(); ++s)
      std::copy(seqs[s].blocks.begin(), seqs[s].blocks.end(),
                b.block_table.begin() + static_cast<std::ptrdiff_t>(s) * b.max_blocks);
    return b;
  }
  ~Batcher() {
    for (SequenceBlocks& q : seqs) m.kv_cache().Free(q);
  }
};

// Runs `b` both ways (a step rewrites the same K/V into the same slots, so running it twice is
// harmless) and compares the ids with the host's pick over the logits. Returns the ids.
std::vector<int32_t> CheckStep(text::TextModel& m, const StepBatch& b) {
  auto logits = m.ForwardLogits(b);
  EXPECT_TRUE(logits.ok()) << logits.status().message();
  const std::vector<float> rows(logits->begin(), logits->end());
  auto ids = m.ForwardArgmax(b);
  EXPECT_TRUE(ids.ok()) << ids.status().message();
  EXPECT_EQ(ids->size(), b.logit_rows.size());
  const size_t vocab = static_cast<size_t>(m.vocab_size());
  std::vector<int32_t> out(ids->begin(), ids->end());
  for (size_t r = 0; r < out.size(); ++r) {
    std::span<const float> row(rows.data() + r * vocab, vocab);
    EXPECT_EQ(out[r], ArgmaxRow(row)) << "row " << r;
    EXPECT_EQ(out[r], SamplerGreedy(row)) << "row " << r;
  }
  return out;
}

TEST(ForwardArgmaxTest, DeviceIdsEqualGreedyPickOfLogits) {
  auto m = LoadModel(1024);
  Batcher bt{*m, std::vector<SequenceBlocks>(3)};
  // Prefill of three prompts with every position's row (rows > sequences), then decode steps of
  // the three feeding back their own picks.
  std::vector<std::vector<int32_t>> feed = {Prompt(1, 5), Prompt(2, 17), Prompt(3, 1)};
  std::vector<int32_t> ids = CheckStep(*m, bt.Next(feed, /*all_rows=*/true));
  ASSERT_EQ(ids.size(), 23u);
  std::vector<int32_t> last = {ids[4], ids[21], ids[22]};
  for (int step = 0; step < 6; ++step) {
    ids = CheckStep(*m, bt.Next({{last[0]}, {last[1]}, {last[2]}}, false));
    ASSERT_EQ(ids.size(), 3u);
    last = ids;
  }
  // Batch 1 as well (a different graph).
  Batcher one{*m, std::vector<SequenceBlocks>(1)};
  ids = CheckStep(*m, one.Next({Prompt(4, 9)}, false));
  for (int step = 0; step < 4; ++step) ids = CheckStep(*m, one.Next({{ids[0]}}, false));
  // The backends under test run TSR_OP_ARGMAX: nothing took the host fallback.
  EXPECT_EQ(m->argmax_fallback_steps(), 0);
}

// TESSERA_DEVICE_ARGMAX=0 (as if no device ran the op): the host fallback, the same ids.
TEST(ForwardArgmaxTest, HostFallbackGivesTheSameIds) {
  setenv("TESSERA_DEVICE_ARGMAX", "0", 1);
  auto m = LoadModel(1024);
  unsetenv("TESSERA_DEVICE_ARGMAX");
  Batcher bt{*m, std::vector<SequenceBlocks>(2)};
  std::vector<int32_t> ids = CheckStep(*m, bt.Next({Prompt(9, 6), Prompt(10, 2)}, true));
  ASSERT_EQ(ids.size(), 8u);
  ids = CheckStep(*m, bt.Next({{ids[5]}, {ids[7]}}, false));
  EXPECT_EQ(m->argmax_fallback_steps(), 2);
  // The device path on the same batch shapes agrees (batch invariance: the same K/V).
  auto d = LoadModel(1024);
  Batcher dt{*d, std::vector<SequenceBlocks>(2)};
  std::vector<int32_t> dev = CheckStep(*d, dt.Next({Prompt(9, 6), Prompt(10, 2)}, true));
  dev = CheckStep(*d, dt.Next({{dev[5]}, {dev[7]}}, false));
  EXPECT_EQ(dev, ids);
  EXPECT_EQ(d->argmax_fallback_steps(), 0);
}

// The core's default (a runner without the op): ForwardLogits + ArgmaxRow on the host.
class LogitsOnlyRunner : public ModelRunner {
 public:
  explicit LogitsOnlyRunner(text::TextModel& m) : m_(m) {}
  Status Forward(const StepBatch& b, std::vector<float>* logits) override {
    return m_.Forward(b, logits);
  }
  StatusOr<std::span<const float>> ForwardLogits(const StepBatch& b) override {
    ++logits_calls;
    return m_.ForwardLogits(b);
  }
  int64_t vocab_size() const override { return m_.vocab_size(); }
  int64_t max_context() const override { return m_.max_context(); }
  KvCache& kv_cache() override { return m_.kv_cache(); }
  int64_t logits_calls = 0;

 protected:
  text::TextModel& m_;
};

// Counts which path each step took; ForwardArgmax is the model's own (on the device).
class CountingRunner final : public LogitsOnlyRunner {
 public:
  using LogitsOnlyRunner::LogitsOnlyRunner;
  StatusOr<std::span<const int32_t>> ForwardArgmax(const StepBatch& b) override {
    ++argmax_calls;
    return m_.ForwardArgmax(b);
  }
  int64_t argmax_calls = 0;
};

TEST(ForwardArgmaxTest, DefaultIsHostArgmaxOfLogits) {
  auto m = LoadModel(1024);
  LogitsOnlyRunner r(*m);
  Batcher bt{*m, std::vector<SequenceBlocks>(2)};
  const StepBatch b = bt.Next({Prompt(5, 7), Prompt(6, 3)}, true);
  auto logits = m->ForwardLogits(b);
  ASSERT_TRUE(logits.ok());
  const std::vector<float> rows(logits->begin(), logits->end());
  auto ids = r.ForwardArgmax(b);
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->size(), 10u);
  const size_t vocab = static_cast<size_t>(m->vocab_size());
  for (size_t i = 0; i < ids->size(); ++i)
    EXPECT_EQ((*ids)[i], ArgmaxRow(std::span<const float>(rows.data() + i * vocab, vocab)));
  EXPECT_EQ(r.logits_calls, 1);
}

// Greedy-only (OnToken on the fast path), greedy through the logits (never greedy-only), or
// sampled with a seed. Records its tokens and which callback gave each.
class TestSink final : public SequenceSink {
 public:
  enum class Mode { kGreedyOnly, kGreedyLogits, kSampled };
  TestSink(Mode mode, int32_t max_tokens, uint64_t seed = 0)
      : mode_(mode), max_tokens_(max_tokens), sampler_(Params(mode, seed), {}) {}
  NextToken OnLogits(std::span<const float> logits) override {
    ++on_logits;
    return Take(mode_ == Mode::kSampled ? sampler_.Sample(logits).id : ArgmaxRow(logits));
  }
  bool GreedyOnly() const override { return mode_ == Mode::kGreedyOnly; }
  NextToken OnToken(int32_t id) override {
    EXPECT_EQ(mode_, Mode::kGreedyOnly);
    ++on_token;
    return Take(id);
  }
  void OnPromptLogits(int32_t first, int32_t n, std::span<const float>) override {
    EXPECT_EQ(first, prompt_positions);
    prompt_positions += n;
  }
  void OnFinished(FinishCause c, const Status& error) override {
    EXPECT_EQ(c, FinishCause::kDone);
    EXPECT_TRUE(error.ok()) << error.message();
    finished = true;
  }
  bool Cancelled() const override { return false; }

  std::vector<int32_t> tokens;
  int32_t on_logits = 0, on_token = 0, prompt_positions = 0;
  bool finished = false;

 private:
  static text::SamplingParams Params(Mode mode, uint64_t seed) {
    text::SamplingParams p;
    p.temperature = mode == Mode::kSampled ? 0.9f : 0.0f;
    p.seed = seed;
    return p;
  }
  NextToken Take(int32_t id) {
    tokens.push_back(id);
    return {id, static_cast<int32_t>(tokens.size()) >= max_tokens_};
  }
  Mode mode_;
  int32_t max_tokens_;
  text::Sampler sampler_;
};

struct Job {
  std::vector<int32_t> prompt;
  TestSink::Mode mode;
  int32_t max_tokens;
  bool prompt_logits = false;
  uint64_t seed = 0;  // kSampled
};

struct RunResult {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::shared_ptr<TestSink>> sinks;
  SchedulerStats stats;
};

RunResult RunJobs(ModelRunner& r, const std::vector<Job>& jobs, int32_t max_batch_tokens = 512) {
  SchedulerOptions o;
  o.max_batch_tokens = max_batch_tokens;
  BatchScheduler s(r, o);
  RunResult out;
  std::vector<SequenceRequest> reqs;
  for (size_t i = 0; i < jobs.size(); ++i) {
    out.sinks.push_back(std::make_shared<TestSink>(jobs[i].mode, jobs[i].max_tokens, jobs[i].seed));
    reqs.push_back({jobs[i].prompt, jobs[i].prompt_logits, out.sinks.back()});
  }
  EXPECT_TRUE(s.Submit(std::move(reqs)).ok());
  for (int i = 0; i < 100000; ++i) {
    auto step = s.StepOnce();
    EXPECT_TRUE(step.ok()) << step.status().message();
    if (!step.ok() || (!*step && s.Stats().running == 0 && s.Stats().waiting == 0)) break;
  }
  for (const auto& k : out.sinks) {
    EXPECT_TRUE(k->finished);
    out.tokens.push_back(k->tokens);
  }
  out.stats = s.Stats();
  EXPECT_EQ(out.stats.kv_blocks_used, 0);
  return out;
}

TEST(GreedySchedulerTest, AllGreedyTakesTheFastPath) {
  auto m = LoadModel(4096);
  std::vector<Job> fast, slow;
  for (int i = 0; i < 5; ++i) {
    fast.push_back({Prompt(i, 3 + 11 * i), TestSink::Mode::kGreedyOnly, 10});
    slow.push_back({Prompt(i, 3 + 11 * i), TestSink::Mode::kGreedyLogits, 10});
  }
  CountingRunner rf(*m), rs(*m);
  const RunResult a = RunJobs(rf, fast, /*max_batch_tokens=*/24);
  const RunResult b = RunJobs(rs, slow, /*max_batch_tokens=*/24);
  EXPECT_EQ(a.tokens, b.tokens);
  // Every step of the all-greedy run went through ForwardArgmax; none of the other run did.
  EXPECT_EQ(rf.logits_calls, 0);
  EXPECT_EQ(rf.argmax_calls, a.stats.steps);
  EXPECT_EQ(a.stats.argmax_steps, a.stats.steps);
  EXPECT_EQ(rs.argmax_calls, 0);
  EXPECT_EQ(b.stats.argmax_steps, 0);
  // Counted as appended: a sequence's last token ends it and is not appended.
  EXPECT_EQ(a.stats.generated_tokens, 5 * 9);
  EXPECT_EQ(b.stats.generated_tokens, 5 * 9);
  for (const auto& k : a.sinks) EXPECT_EQ(k->on_logits, 0);
  EXPECT_EQ(m->argmax_fallback_steps(), 0);
}

TEST(GreedySchedulerTest, MixedBatchEqualsEachAlone) {
  auto m = LoadModel(4096);
  using M = TestSink::Mode;
  // Sampled sequences stop early, so the later steps are all greedy and switch to the fast path.
  std::vector<Job> jobs = {{Prompt(1, 9), M::kGreedyOnly, 14},
                           {Prompt(2, 30), M::kSampled, 5, false, 11},
                           {Prompt(3, 4), M::kGreedyOnly, 12},
                           {Prompt(4, 21), M::kSampled, 7, false, 12},
                           {Prompt(5, 13), M::kGreedyLogits, 9}};
  std::vector<std::vector<int32_t>> alone;
  for (const Job& j : jobs) {
    CountingRunner r(*m);
    alone.push_back(RunJobs(r, {j}).tokens[0]);
  }
  CountingRunner r(*m);
  const RunResult mixed = RunJobs(r, jobs, /*max_batch_tokens=*/32);
  EXPECT_EQ(mixed.tokens, alone);
  EXPECT_GT(mixed.stats.argmax_steps, 0);
  EXPECT_LT(mixed.stats.argmax_steps, mixed.stats.steps);
  EXPECT_EQ(r.argmax_calls, mixed.stats.argmax_steps);
  EXPECT_EQ(r.logits_calls, mixed.stats.steps - mixed.stats.argmax_steps);
  EXPECT_EQ(mixed.stats.generated_tokens, 13 + 4 + 11 + 6 + 8);  // the last ones end, unappended
  // Greedy-only sinks got their rows by OnLogits in mixed steps and by OnToken in greedy ones.
  EXPECT_GT(mixed.sinks[0]->on_token, 0);
  EXPECT_GT(mixed.sinks[0]->on_logits, 0);
  EXPECT_EQ(mixed.sinks[1]->on_token, 0);
  EXPECT_EQ(mixed.sinks[4]->on_token, 0);
}

TEST(GreedySchedulerTest, PromptLogitsKeepTheLogitsPath) {
  auto m = LoadModel(1024);
  CountingRunner r(*m);
  // One prompt-logits sequence prefilled in chunks next to a greedy-only one.
  const RunResult res = RunJobs(r,
                                {{Prompt(7, 40), TestSink::Mode::kGreedyOnly, 6, true},
                                 {Prompt(8, 5), TestSink::Mode::kGreedyOnly, 20}},
                                /*max_batch_tokens=*/16);
  EXPECT_EQ(res.sinks[0]->prompt_positions, 40);
  // The step that delivers the last prompt rows also samples the first token: by OnLogits.
  EXPECT_GE(res.sinks[0]->on_logits, 1);
  EXPECT_GT(r.logits_calls, 0);
  EXPECT_GT(r.argmax_calls, 0);
  CountingRunner r2(*m);
  const RunResult ref = RunJobs(r2, {{Prompt(7, 40), TestSink::Mode::kGreedyLogits, 6},
                                     {Prompt(8, 5), TestSink::Mode::kGreedyLogits, 20}});
  EXPECT_EQ(res.tokens, ref.tokens);
}

// The server's sink: which requests are greedy-only, and OnToken == OnLogits event for event.
class CollectFormatter final : public server::ReplyFormatter {
 public:
  explicit CollectFormatter(std::vector<server::GenEvent>* events) : events_(events) {}
  void OnEvent(const server::GenEvent& ev, std::string*) override { events_->push_back(ev); }
  std::string Finish(bool) override { return ""; }

 private:
  std::vector<server::GenEvent>* events_;
};

std::unique_ptr<server::TextSink> MakeSink(const text::TextModel& m,
                                           const server::GenerationParams& p,
                                           std::vector<server::GenEvent>* events,
                                           std::shared_ptr<server::GenerationJob>* job) {
  *job = std::make_shared<server::GenerationJob>(std::make_unique<CollectFormatter>(events), 1,
                                                 /*streaming=*/true);
  return std::make_unique<server::TextSink>(*job, 0, m, p, Prompt(1, 4), nullptr);
}

TEST(TextSinkGreedyTest, GreedyOnlyOnlyForAPlainGreedyPick) {
  auto m = LoadModel(256);
  std::vector<server::GenEvent> ev;
  std::shared_ptr<server::GenerationJob> job;
  server::GenerationParams greedy;
  greedy.sampling.temperature = 0;
  greedy.max_tokens = 8;
  greedy.stop = {"xyz"};
  greedy.sampling.top_k = 5;  // no effect on a greedy pick
  greedy.sampling.top_p = 0.5f;
  greedy.sampling.seed = 3;
  EXPECT_TRUE(MakeSink(*m, greedy, &ev, &job)->GreedyOnly());
  greedy.sampling.temperature = text::kGreedyTemperatureEpsilon / 2;
  EXPECT_TRUE(MakeSink(*m, greedy, &ev, &job)->GreedyOnly());
  auto not_greedy = [&](auto change) {
    server::GenerationParams p = greedy;
    change(p);
    return !MakeSink(*m, p, &ev, &job)->GreedyOnly();
  };
  EXPECT_TRUE(not_greedy([](auto& p) { p.sampling.temperature = 0.5f; }));
  EXPECT_TRUE(
      not_greedy([](auto& p) { p.sampling.temperature = text::kGreedyTemperatureEpsilon; }));
  EXPECT_TRUE(not_greedy([](auto& p) { p.sampling.repetition_penalty = 1.1f; }));
  EXPECT_TRUE(not_greedy([](auto& p) { p.sampling.presence_penalty = 0.5f; }));
  EXPECT_TRUE(not_greedy([](auto& p) { p.sampling.frequency_penalty = -0.5f; }));
  EXPECT_TRUE(not_greedy([](auto& p) { p.logprobs = true; }));
  EXPECT_TRUE(not_greedy([](auto& p) {
    p.logprobs = true;
    p.sampling.top_logprobs = 2;
  }));
  EXPECT_TRUE(not_greedy([](auto& p) { p.max_tokens = 0; }));
}

TEST(TextSinkGreedyTest, OnTokenEmitsWhatOnLogitsEmits) {
  auto m = LoadModel(1024);
  server::GenerationParams p;
  p.sampling.temperature = 0;
  p.max_tokens = 12;
  p.stop = {"the"};  // may or may not match: both sinks must agree either way
  std::vector<server::GenEvent> ev_logits, ev_ids;
  std::shared_ptr<server::GenerationJob> job_logits, job_ids;
  auto by_logits = MakeSink(*m, p, &ev_logits, &job_logits);
  auto by_ids = MakeSink(*m, p, &ev_ids, &job_ids);
  ASSERT_TRUE(by_ids->GreedyOnly());
  // Feed both sinks the same rows: the model's logits after its own greedy continuation.
  Batcher bt{*m, std::vector<SequenceBlocks>(1)};
  std::vector<int32_t> feed = Prompt(1, 4);
  bool done = false;
  for (int step = 0; step < 20 && !done; ++step) {
    auto logits = m->ForwardLogits(bt.Next({feed}, false));
    ASSERT_TRUE(logits.ok());
    const NextToken a = by_logits->OnLogits(*logits);
    const NextToken b = by_ids->OnToken(ArgmaxRow(*logits));
    EXPECT_EQ(a.token, b.token);
    EXPECT_EQ(a.finished, b.finished);
    done = a.finished;
    feed = {a.token};
  }
  EXPECT_TRUE(done);
  by_logits->OnFinished(FinishCause::kDone, OkStatus());
  by_ids->OnFinished(FinishCause::kDone, OkStatus());
  std::string out;
  job_logits->Drain(&out);
  job_ids->Drain(&out);
  ASSERT_EQ(ev_logits.size(), ev_ids.size());
  for (size_t i = 0; i < ev_ids.size(); ++i) {
    EXPECT_EQ(ev_logits[i].kind, ev_ids[i].kind);
    EXPECT_EQ(ev_logits[i].text, ev_ids[i].text);
    EXPECT_EQ(ev_logits[i].finish_reason, ev_ids[i].finish_reason);
    EXPECT_EQ(ev_logits[i].completion_tokens, ev_ids[i].completion_tokens);
    ASSERT_EQ(ev_logits[i].token.has_value(), ev_ids[i].token.has_value());
    if (ev_ids[i].token) {
      EXPECT_EQ(ev_logits[i].token->id, ev_ids[i].token->id);
    }
  }
}

}  // namespace
}  // namespace tessera
