// Continuous batching over a paged KV cache: one scheduler thread owns a ModelRunner and its KV
// cache and, every step, runs one forward pass over every sequence that can make progress.
//
// A step (vLLM v1's token-budget scheduler, simplified):
//   1. new requests join the waiting queue; cancelled sequences leave and free their blocks;
//   2. running sequences, oldest first, each get their next piece: one token for a decoding
//      sequence, a chunk of the prompt for a prefilling one. Decodes are counted first, so
//      prefill chunks only take what is left of max_batch_tokens and running streams keep
//      flowing while a long prompt is prefilled (chunked prefill);
//   3. when the KV pool can not hold a sequence's next piece, unused prefix-cache blocks are
//      evicted; if that is not enough the youngest running sequence is preempted: its blocks
//      are freed and it goes back to the front of the queue to be recomputed later (its tokens,
//      sampler state and output so far are kept, so the client sees no difference);
//   4. waiting sequences are admitted, oldest first, while blocks and budget allow, reusing
//      cached full blocks of a shared prompt prefix;
//   5. one ModelRunner::Forward; each sequence whose last token was computed gets its logits
//      row through its SequenceSink, which picks the next token (sampling, stop strings and
//      detokenization are the sink's business: the core knows no tokenizer). When every sink
//      sampled in the step is GreedyOnly() and no prompt logits are wanted, the step runs
//      ModelRunner::ForwardArgmax instead and each sink gets its row's argmax (OnToken): the
//      device picks the tokens and only their ids are downloaded. A step is never split: one
//      sink that needs its row keeps the whole step on ForwardLogits.
//
// Batch invariance: the scheduler decides only which tokens run in a step, never how a
// sequence's numbers are computed; with batch-invariant kernels a sequence's output is the same
// alone or batched, chunked or not, preempted or not, prefix-cached or not.
#ifndef TESSERA_CORE_BATCHING_BATCH_SCHEDULER_H_
#define TESSERA_CORE_BATCHING_BATCH_SCHEDULER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "tessera/core/batching/prefix_cache.h"
#include "tessera/core/model_runner.h"
#include "tessera/core/status.h"

namespace tessera::batching {

enum class FinishCause {
  kDone,         // the sink said so (EOS, stop string, max tokens)
  kContextFull,  // the sequence reached the model's (or KV cache's) context length
  kCancelled,    // the sink reported Cancelled(), or the scheduler stopped
  kError,        // the forward pass failed; see the status
};

struct NextToken {
  int32_t token = -1;
  bool finished = false;  // true: end the sequence; `token` is not appended
};

// One sequence's consumer. Every method except Cancelled() is called on the scheduler thread,
// one sequence at a time, and must not block for long (it delays every sequence's next step).
class SequenceSink {
 public:
  virtual ~SequenceSink() = default;
  // logits: (vocab,) raw scores for the token after the sequence's last one. Returns the token
  // to append, or finished. Called exactly once per generated token, preemption or not.
  virtual NextToken OnLogits(std::span<const float> logits) = 0;
  // True when the next token is the row's argmax and nothing else of the row is needed (the
  // sampler would do a plain greedy pick: ArgmaxRow in model_runner.h); then the scheduler may
  // call OnToken instead of OnLogits. Asked once per step in which the sequence samples.
  virtual bool GreedyOnly() const { return false; }
  // Instead of OnLogits, only after GreedyOnly() said true for this step: `id` is ArgmaxRow of
  // the row OnLogits would have had. Same contract and result as OnLogits otherwise.
  virtual NextToken OnToken(int32_t id) { return {id, false}; }
  // Only for requests with want_prompt_logits: rows (n, vocab) of raw logits at prompt positions
  // [first, first + n); the row at position p scores prompt token p + 1 (the last one scores the
  // first generated token). Every prompt position is delivered exactly once, in order.
  virtual void OnPromptLogits(int32_t first, int32_t n, std::span<const float> rows) {}
  // The last call for this sequence.
  virtual void OnFinished(FinishCause cause, const Status& error) = 0;
  // Thread-safe; polled once a step. True drops the sequence (OnFinished(kCancelled) follows).
  virtual bool Cancelled() const = 0;
};

struct SequenceRequest {
  std::vector<int32_t> prompt;  // non-empty, ids in [0, vocab)
  // Deliver prompt logits (OpenAI echo + logprobs). Such a prompt is computed in full: the prefix
  // cache is not consulted for it.
  bool want_prompt_logits = false;
  std::shared_ptr<SequenceSink> sink;
};

struct SchedulerOptions {
  // Tokens one forward step may hold (decodes + prefill chunks). Bounds step latency.
  int32_t max_batch_tokens = 512;
  // Sequences running at once; 0 = as many as the KV pool has blocks (one block per sequence is
  // the least that lets it run), capped by max_batch_tokens.
  int32_t max_running = 0;
  // Requests waiting for admission beyond the running ones; Submit answers ResourceExhausted
  // past it.
  int32_t max_queue = 256;
  bool prefix_caching = true;
  // Serializes Forward() across schedulers that share devices (several models). Not owned.
  std::mutex* forward_mutex = nullptr;
};

// A snapshot for /metrics. Gauges are as of the end of the last step.
struct SchedulerStats {
  int64_t waiting = 0, running = 0, preempted_waiting = 0;
  int64_t kv_blocks_total = 0, kv_blocks_used = 0, kv_blocks_cached = 0, kv_blocks_free = 0;
  int64_t kv_block_size = 0;
  int64_t max_running = 0;
  // Counters since start.
  int64_t steps = 0, step_tokens = 0;
  int64_t argmax_steps = 0;            // steps run through ForwardArgmax (all greedy)
  int64_t prompt_tokens = 0;           // prompt tokens submitted
  int64_t prompt_tokens_computed = 0;  // prompt (and recomputed) tokens run through the model
  int64_t prefix_hit_tokens = 0;       // tokens whose K/V came from the prefix cache
  int64_t prefill_chunks = 0;          // prefill pieces scheduled (a chunked prompt counts each)
  int64_t generated_tokens = 0;
  int64_t preemptions = 0;
  int64_t finished = 0, cancelled = 0, errors = 0;
};

class BatchScheduler {
 public:
  // `runner` is not owned and must outlive the scheduler; after Start() only the scheduler
  // thread touches it (and its KV cache).
  BatchScheduler(ModelRunner& runner, const SchedulerOptions& options);
  ~BatchScheduler();  // Stop()
  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

  // Starts the scheduler thread.
  void Start();
  // Finishes every sequence (OnFinished(kCancelled)) and joins the thread. Idempotent.
  void Stop();

  // Queues sequences, all or none. Thread-safe. Errors: InvalidArgument (empty prompt, id out of
  // range, prompt longer than max_context()), ResourceExhausted (the queue is full),
  // FailedPrecondition (stopped). The sinks are called only after an OK return.
  Status Submit(std::vector<SequenceRequest> requests);
  // Wakes the scheduler thread (e.g. after a sink was cancelled while it was idle). Thread-safe.
  void Wake();

  // Thread-safe.
  SchedulerStats Stats() const;
  // Longest sequence (prompt + generated) that fits: the model's context and the KV pool.
  int64_t max_context() const { return max_context_; }
  int32_t max_running() const { return options_.max_running; }

  // Runs one step on the calling thread; false when there was nothing to do. Only without
  // Start() (tests drive the scheduler by hand with it).
  StatusOr<bool> StepOnce();

 private:
  struct Seq;
  struct Planned;
  void Loop();
  void TakeIncoming();
  void DropCancelled();
  bool MakeRoom(Seq& s, int32_t n);
  void Preempt(std::unique_ptr<Seq> s);
  bool ScheduleRunning(std::vector<Planned>* plan, int32_t* prefill_left);
  void Admit(std::vector<Planned>* plan, int32_t* prefill_left);
  Status RunPlan(std::vector<Planned>& plan);
  bool GreedyStep(const std::vector<Planned>& plan) const;
  // Hands each planned sequence its rows: `logits` (rows x vocab) or, for a greedy step, `ids`
  // (one per row).
  void Deliver(std::vector<Planned>& plan, std::span<const float> logits,
               std::span<const int32_t> ids);
  void CacheFullBlocks(Seq& s);
  void Finish(Seq& s, FinishCause cause, const Status& error);
  void PublishStats();

  ModelRunner& runner_;
  KvCache& kv_;
  SchedulerOptions options_;
  int64_t max_context_;
  int64_t vocab_;
  PrefixCache prefix_;

  // Scheduler-thread state.
  std::deque<std::unique_ptr<Seq>> waiting_;   // oldest first
  std::vector<std::unique_ptr<Seq>> running_;  // oldest first
  SchedulerStats counters_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Seq>> incoming_;  // GUARDED_BY(mu_)
  int64_t queued_ = 0;                          // GUARDED_BY(mu_): incoming + waiting
  uint64_t next_id_ = 0;                        // GUARDED_BY(mu_)
  bool stop_ = false;                           // GUARDED_BY(mu_)
  bool started_ = false;                        // GUARDED_BY(mu_)
  SchedulerStats published_;                    // GUARDED_BY(mu_)
  std::thread thread_;
};

const char* FinishCauseName(FinishCause cause);

}  // namespace tessera::batching

#endif  // TESSERA_CORE_BATCHING_BATCH_SCHEDULER_H_
