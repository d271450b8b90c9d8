#include "generation.h"

#include <algorithm>

namespace tessera::server {

GenerationJob::GenerationJob(std::unique_ptr<ReplyFormatter> formatter, int32_t sequences,
                             bool streaming)
    : formatter_(std::move(formatter)), sequences_(sequences), streaming_(streaming) {}

double GenerationJob::Elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void GenerationJob::Push(GenEvent ev) {
  std::function<void()> wake;
  {
    std::lock_guard<std::mutex> l(mu_);
    events_.push_back(std::move(ev));
    // One wake-up per Drain: a fast producer does not flood the connection's strand.
    if (wake_armed_ && waker_) {
      wake_armed_ = false;
      wake = waker_;
    }
  }
  if (wake) wake();
}

void GenerationJob::SetWaker(std::function<void()> waker) {
  std::lock_guard<std::mutex> l(mu_);
  waker_ = std::move(waker);
  wake_armed_ = true;
}

bool GenerationJob::Drain(std::string* out) {
  std::deque<GenEvent> events;
  {
    std::lock_guard<std::mutex> l(mu_);
    events.swap(events_);
    wake_armed_ = true;
  }
  for (const GenEvent& ev : events) {
    formatter_->OnEvent(ev, streaming_ ? out : nullptr);
    if (ev.kind == GenEvent::Kind::kFinish) ++finished_;
  }
  if (finished_ < sequences_) return false;
  if (streaming_)
    *out += formatter_->Finish(true);
  else
    *out = formatter_->Finish(false);
  return true;
}

void GenerationJob::Cancel() {
  cancelled_.store(true);
  if (on_cancel_) on_cancel_();
}

TokenInfo ScoreToken(std::span<const float> row, int32_t id, int32_t top) {
  std::vector<float> lp(row.size());
  text::LogSoftmax(row, lp);
  TokenInfo info;
  info.id = id;
  info.logprob = lp[static_cast<size_t>(id)];
  if (top > 0) {
    std::vector<int32_t> ids(row.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
    const size_t k = std::min(ids.size(), static_cast<size_t>(top));
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(),
                      [&](int32_t a, int32_t b) {
                        return lp[static_cast<size_t>(a)] != lp[static_cast<size_t>(b)]
                                   ? lp[static_cast<size_t>(a)] > lp[static_cast<size_t>(b)]
                                   : a < b;
                      });
    for (size_t i = 0; i < k; ++i) info.top.push_back({ids[i], lp[static_cast<size_t>(ids[i])]});
  }
  return info;
}

namespace {
text::SamplingParams ChoiceSampling(const GenerationParams& p, int32_t choice) {
  text::SamplingParams s = p.sampling;
  if (s.seed) *s.seed += static_cast<uint64_t>(choice);
  if (!p.logprobs) s.top_logprobs = 0;
  return s;
}

// Whether Sampler::Sample would return the plain argmax of the raw row (its GreedyPick with no
// penalty = ArgmaxRow) and the sink would use nothing else of it. Top-k / top-p / min-p and the
// seed do not matter to a greedy pick. When in doubt, not greedy-only.
bool IsGreedyOnly(const GenerationParams& p, const text::SamplingParams& s) {
  return p.max_tokens != 0 && s.temperature < text::kGreedyTemperatureEpsilon &&
         s.repetition_penalty == 1.0f && s.presence_penalty == 0.0f &&
         s.frequency_penalty == 0.0f && !p.logprobs && s.top_logprobs == 0;
}
}  // namespace

TextSink::TextSink(std::shared_ptr<GenerationJob> job, int32_t choice, const text::TextModel& model,
                   const GenerationParams& params, std::vector<int32_t> prompt,
                   ModelLatency* latency)
    : job_(std::move(job)),
      choice_(choice),
      model_(model),
      params_(params),
      prompt_(std::move(prompt)),
      latency_(latency),
      sampler_(ChoiceSampling(params, choice), prompt_),
      greedy_only_(IsGreedyOnly(params, sampler_.params())),
      stops_(params.stop),
      detok_(model.tokenizer(), /*skip_special_tokens=*/true) {}

GenEvent TextSink::Event(GenEvent::Kind kind) const {
  GenEvent ev;
  ev.kind = kind;
  ev.choice = choice_;
  ev.t = job_->Elapsed();
  return ev;
}

batching::NextToken TextSink::OnLogits(std::span<const float> logits) {
  if (params_.max_tokens == 0) {  // scoring only (echo + logprobs): no token at all
    finish_reason_ = "length";
    return {0, true};
  }
  text::SampledToken tok = sampler_.Sample(logits);
  return Emit(TokenInfo{tok.id, tok.logprob, std::move(tok.top)});
}

batching::NextToken TextSink::OnToken(int32_t id) {
  if (params_.max_tokens == 0) {  // not greedy-only, so not called; as OnLogits would
    finish_reason_ = "length";
    return {0, true};
  }
  // The device's argmax is the sampler's greedy pick. The logprob is not computed (the row never
  // left the device); it reaches no client: only requests with logprobs report it, and those
  // are not greedy-only.
  return Emit(TokenInfo{id, 0.0f, {}});
}

batching::NextToken TextSink::Emit(TokenInfo tok) {
  const double now = job_->Elapsed();
  if (latency_) {
    if (last_token_t_ < 0)
      latency_->ttft.Observe(now);
    else
      latency_->itl.Observe(now - last_token_t_);
  }
  last_token_t_ = now;
  const auto& eos = model_.eos_ids();
  if (!params_.ignore_eos && std::find(eos.begin(), eos.end(), tok.id) != eos.end()) {
    finish_reason_ = "stop";
    return {tok.id, true};
  }
  sampler_.Accept(tok.id);
  ++generated_;
  GenEvent ev = Event(GenEvent::Kind::kText);
  auto piece = detok_.Step(tok.id);
  text::StopMatcher::Result r = stops_.Push(piece.ok() ? *piece : std::string());
  ev.text = std::move(r.emit);
  if (!params_.logprobs) tok.top.clear();
  const int32_t id = tok.id;
  ev.token = std::move(tok);
  job_->Push(std::move(ev));
  if (r.stopped) {
    stopped_by_string_ = true;
    finish_reason_ = "stop";
    return {id, true};
  }
  if (params_.max_tokens >= 0 && generated_ >= params_.max_tokens) {
    finish_reason_ = "length";
    return {id, true};
  }
  return {id, false};
}

void TextSink::OnPromptLogits(int32_t first, int32_t n, std::span<const float> rows) {
  if (!params_.prompt_logprobs) return;
  const size_t vocab = static_cast<size_t>(model_.vocab_size());
  GenEvent ev = Event(GenEvent::Kind::kPromptLogprobs);
  ev.prompt_first = first + 1;  // the row at position p scores prompt token p + 1
  for (int32_t i = 0; i < n; ++i) {
    const size_t next = static_cast<size_t>(first + i + 1);
    if (next >= prompt_.size()) break;  // the last row scores the first generated token
    ev.prompt.push_back(ScoreToken(rows.subspan(static_cast<size_t>(i) * vocab, vocab),
                                   prompt_[next], params_.sampling.top_logprobs));
  }
  if (!ev.prompt.empty()) job_->Push(std::move(ev));
}

std::string TextSink::FlushText() {
  if (stopped_by_string_) return "";
  auto tail = detok_.Flush();
  text::StopMatcher::Result r = stops_.Push(tail.ok() ? *tail : std::string());
  if (r.stopped) finish_reason_ = "stop";
  return r.emit + (r.stopped ? "" : stops_.Flush());
}

void TextSink::OnFinished(batching::FinishCause cause, const Status& error) {
  GenEvent fin = Event(GenEvent::Kind::kFinish);
  switch (cause) {
    case batching::FinishCause::kDone: fin.finish_reason = finish_reason_; break;
    case batching::FinishCause::kContextFull: fin.finish_reason = "length"; break;
    case batching::FinishCause::kCancelled: fin.finish_reason = "cancelled"; break;
    case batching::FinishCause::kError:
      fin.finish_reason = "error";
      fin.error = error.message();
      break;
  }
  if (cause == batching::FinishCause::kDone || cause == batching::FinishCause::kContextFull) {
    std::string rest = FlushText();
    if (cause == batching::FinishCause::kDone) fin.finish_reason = finish_reason_;
    if (!rest.empty()) {
      GenEvent ev = Event(GenEvent::Kind::kText);
      ev.text = std::move(rest);
      job_->Push(std::move(ev));
    }
  }
  if (latency_ && last_token_t_ >= 0) latency_->e2e.Observe(job_->Elapsed());
  fin.completion_tokens = generated_;
  job_->Push(std::move(fin));
}

Status SubmitJob(batching::BatchScheduler& scheduler, const text::TextModel& model,
                 ModelLatency* latency, const std::shared_ptr<GenerationJob>& job,
                 const std::vector<std::vector<int32_t>>& prompts, const GenerationParams& params) {
  std::vector<batching::SequenceRequest> reqs;
  for (size_t p = 0; p < prompts.size(); ++p) {
    for (int32_t i = 0; i < params.n; ++i) {
      const int32_t choice = static_cast<int32_t>(p) * params.n + i;
      batching::SequenceRequest r;
      r.prompt = prompts[p];
      r.want_prompt_logits = params.prompt_logprobs && i == 0;
      GenerationParams cp = params;
      cp.prompt_logprobs = r.want_prompt_logits;
      r.sink = std::make_shared<TextSink>(job, choice, model, cp, prompts[p], latency);
      reqs.push_back(std::move(r));
    }
  }
  job->set_on_cancel([&scheduler] { scheduler.Wake(); });
  return scheduler.Submit(std::move(reqs));
}

}  // namespace tessera::server
