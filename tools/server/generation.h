// One HTTP generation request on the batch scheduler: per-sequence sinks (sampling, stop
// strings, detokenization: the modalities' classes behind the core's SequenceSink) and the job
// that carries their events to the connection and formats them for one API.
//
// Threads: sinks run on the scheduler thread and only push events; formatting happens on the
// connection's I/O thread in Drain(). The job is shared by both sides; a cancelled job (client
// gone) makes every sink report Cancelled(), so the scheduler frees the sequences' KV blocks.
#ifndef TESSERA_TOOLS_SERVER_GENERATION_H_
#define TESSERA_TOOLS_SERVER_GENERATION_H_

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "http_server.h"
#include "metrics.h"
#include "tessera/core/batching/batch_scheduler.h"
#include "tessera/text/sampler.h"
#include "tessera/text/text_model.h"
#include "tessera/text/tokenizer.h"

namespace tessera::server {

struct GenerationParams {
  text::SamplingParams sampling;  // sampling.seed: choice i of a request uses seed + i
  int32_t max_tokens = -1;        // -1 = until EOS or the context is full
  std::vector<std::string> stop;
  bool ignore_eos = false;
  bool logprobs = false;         // report each generated token's logprob (+ sampling.top_logprobs)
  bool prompt_logprobs = false;  // report every prompt token's logprob (OpenAI echo + logprobs)
  int32_t n = 1;                 // choices per prompt
};

struct TokenInfo {
  int32_t id = -1;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // most likely alternatives, descending
};

struct GenEvent {
  enum class Kind { kPromptLogprobs, kText, kFinish };
  Kind kind = Kind::kText;
  int32_t choice = 0;
  double t = 0;  // seconds since the job started
  // kText: text safe to show now (may be empty while a stop string is pending); `token` is the
  // token that produced it (absent for the text released when generation ends).
  std::string text;
  std::optional<TokenInfo> token;
  // kPromptLogprobs: entries for prompt tokens [prompt_first, prompt_first + prompt.size()).
  int32_t prompt_first = 0;
  std::vector<TokenInfo> prompt;
  // kFinish: "stop", "length", "cancelled" or "error" (then `error` says why).
  std::string finish_reason;
  std::string error;
  int32_t completion_tokens = 0;
};

// Turns events into one API's wire format. Used only on the connection's thread.
class ReplyFormatter {
 public:
  virtual ~ReplyFormatter() = default;
  // Streaming: appends the wire text for `ev` (SSE events, NDJSON lines) to `out`.
  // Non-streaming: `out` is null; accumulate.
  virtual void OnEvent(const GenEvent& ev, std::string* out) = 0;
  // After every choice finished. Streaming: the trailer (e.g. "data: [DONE]"); otherwise the
  // whole body.
  virtual std::string Finish(bool streaming) = 0;
  // Non-streaming status (500 when a choice failed).
  virtual int status() const { return 200; }
};

class GenerationJob final : public PendingBody {
 public:
  GenerationJob(std::unique_ptr<ReplyFormatter> formatter, int32_t sequences, bool streaming);

  // Producer side (scheduler thread). Thread-safe.
  void Push(GenEvent ev);
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }
  double Elapsed() const;

  // PendingBody (connection side).
  void SetWaker(std::function<void()> waker) override;
  bool Drain(std::string* out) override;
  void Cancel() override;
  // Something that must live as long as the job (the model it runs on).
  void set_anchor(std::shared_ptr<const void> anchor) { anchor_ = std::move(anchor); }
  int final_status() const override { return formatter_->status(); }

  // Called by the scheduler's owner to make an idle scheduler notice a cancellation.
  void set_on_cancel(std::function<void()> f) { on_cancel_ = std::move(f); }

 private:
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::unique_ptr<ReplyFormatter> formatter_;  // connection thread only
  std::shared_ptr<const void> anchor_;
  const int32_t sequences_;
  const bool streaming_;
  int32_t finished_ = 0;  // connection thread only
  std::atomic<bool> cancelled_{false};
  std::function<void()> on_cancel_;
  std::mutex mu_;
  std::deque<GenEvent> events_;  // GUARDED_BY(mu_)
  std::function<void()> waker_;  // GUARDED_BY(mu_)
  bool wake_armed_ = true;       // GUARDED_BY(mu_): the next Push wakes the connection
};

// The core's SequenceSink for one choice of a text request.
class TextSink final : public batching::SequenceSink {
 public:
  // `model` and `latency` are not owned and must outlive the sink (the served model does).
  TextSink(std::shared_ptr<GenerationJob> job, int32_t choice, const text::TextModel& model,
           const GenerationParams& params, std::vector<int32_t> prompt, ModelLatency* latency);

  batching::NextToken OnLogits(std::span<const float> logits) override;
  // True when the sampler would do a plain greedy pick and nothing else of the row is used:
  // temperature below the greedy epsilon, no repetition / presence / frequency penalty, no
  // logprobs, max_tokens != 0. Fixed for the request. Such a sequence is picked on the device.
  bool GreedyOnly() const override { return greedy_only_; }
  batching::NextToken OnToken(int32_t id) override;
  void OnPromptLogits(int32_t first, int32_t n, std::span<const float> rows) override;
  void OnFinished(batching::FinishCause cause, const Status& error) override;
  bool Cancelled() const override { return job_->cancelled(); }

 private:
  GenEvent Event(GenEvent::Kind kind) const;
  // Everything after the pick: latency, EOS, Accept, detokenization, stop strings, the event,
  // max_tokens.
  batching::NextToken Emit(TokenInfo tok);
  std::string FlushText();

  std::shared_ptr<GenerationJob> job_;
  const int32_t choice_;
  const text::TextModel& model_;
  GenerationParams params_;
  std::vector<int32_t> prompt_;
  ModelLatency* latency_;
  text::Sampler sampler_;
  const bool greedy_only_;
  text::StopMatcher stops_;
  text::DecodeStream detok_;
  int32_t generated_ = 0;
  std::string finish_reason_ = "length";
  bool stopped_by_string_ = false;
  double last_token_t_ = -1;
};

// Submits `prompts` x params.n sequences (choice index = prompt index * n + i) of `model` on
// `scheduler`. Errors: those of BatchScheduler::Submit.
Status SubmitJob(batching::BatchScheduler& scheduler, const text::TextModel& model,
                 ModelLatency* latency, const std::shared_ptr<GenerationJob>& job,
                 const std::vector<std::vector<int32_t>>& prompts, const GenerationParams& params);

// log-softmax of `row` at `id` and the `top` most likely ids (descending, ties by lower id).
TokenInfo ScoreToken(std::span<const float> row, int32_t id, int32_t top);

}  // namespace tessera::server

#endif  // TESSERA_TOOLS_SERVER_GENERATION_H_
