#include "tessera/core/batching/batch_scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace tessera::batching {

const char* FinishCauseName(FinishCause cause) {
  switch (cause) {
    case FinishCause::kDone: return "done";
    case FinishCause::kContextFull: return "context_full";
    case FinishCause::kCancelled: return "cancelled";
    case FinishCause::kError: return "error";
  }
  return "?";
}

struct BatchScheduler::Seq {
  uint64_t id = 0;              // arrival order: smaller is older
  std::vector<int32_t> tokens;  // prompt, then generated tokens
  int32_t prompt_len = 0;
  int32_t computed = 0;  // leading tokens whose K/V are in the cache
  int32_t prompt_logits_done = 0;
  int32_t cached_blocks = 0;  // leading blocks indexed by the prefix cache
  bool want_prompt_logits = false;
  bool admitted_once = false;  // counted out of the queue bound
  bool preempted = false;      // waiting again after a preemption
  bool chain_broken = false;   // stop indexing this sequence's blocks (see PrefixCache::Insert)
  SequenceBlocks blocks;
  std::shared_ptr<SequenceSink> sink;
  int32_t remaining() const { return static_cast<int32_t>(tokens.size()) - computed; }
};

// One sequence's piece of a step: tokens[begin, begin + n).
struct BatchScheduler::Planned {
  Seq* seq;
  int32_t begin, n;
  bool decode;                 // the sequence had exactly one token left to compute
  std::vector<int32_t> slots;  // [n]
  int32_t prompt_row = -1;     // first logits row of the prompt positions delivered this step
  int32_t prompt_first = 0, prompt_n = 0;
  int32_t sample_row = -1;  // logits row the next token is sampled from
  bool finished = false;
};

BatchScheduler::BatchScheduler(ModelRunner& runner, const SchedulerOptions& options)
    : runner_(runner),
      kv_(runner.kv_cache()),
      options_(options),
      max_context_(runner.max_context()),
      vocab_(runner.vocab_size()),
      prefix_(kv_.blocks(), kv_.shape().block_size) {
  options_.max_batch_tokens = std::max(1, options_.max_batch_tokens);
  if (options_.max_running <= 0) options_.max_running = kv_.blocks().num_blocks();
  // Every running sequence must be able to decode in every step.
  options_.max_running = std::min(options_.max_running, options_.max_batch_tokens);
  options_.max_queue = std::max(0, options_.max_queue);
  PublishStats();
}

BatchScheduler::~BatchScheduler() {
  Stop();
}

void BatchScheduler::Start() {
  std::lock_guard<std::mutex> l(mu_);
  if (started_ || stop_) return;
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
}

void BatchScheduler::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // The thread (or nobody, if never started) is gone: finish what is left on this thread.
  TakeIncoming();
  for (auto& s : running_) Finish(*s, FinishCause::kCancelled, OkStatus());
  for (auto& s : waiting_) Finish(*s, FinishCause::kCancelled, OkStatus());
  running_.clear();
  waiting_.clear();
  prefix_.Clear();
  PublishStats();
}

Status BatchScheduler::Submit(std::vector<SequenceRequest> requests) {
  for (const SequenceRequest& r : requests) {
    if (!r.sink) return InvalidArgument("a sequence needs a sink");
    if (r.prompt.empty()) return InvalidArgument("the prompt is empty");
    if (static_cast<int64_t>(r.prompt.size()) > max_context_)
      return InvalidArgument("the prompt has " + std::to_string(r.prompt.size()) +
                             " tokens but the context holds " + std::to_string(max_context_));
    for (int32_t t : r.prompt)
      if (t < 0 || t >= vocab_)
        return InvalidArgument("token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                               std::to_string(vocab_) + ")");
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_) return FailedPrecondition("the scheduler is stopped");
    if (queued_ + static_cast<int64_t>(requests.size()) > options_.max_queue)
      return ResourceExhausted("the request queue is full (" + std::to_string(queued_) +
                               " waiting, limit " + std::to_string(options_.max_queue) + ")");
    for (SequenceRequest& r : requests) {
      auto s = std::make_unique<Seq>();
      s->id = next_id_++;
      s->prompt_len = static_cast<int32_t>(r.prompt.size());
      s->tokens = std::move(r.prompt);
      s->want_prompt_logits = r.want_prompt_logits;
      s->sink = std::move(r.sink);
      incoming_.push_back(std::move(s));
    }
    queued_ += static_cast<int64_t>(requests.size());
  }
  cv_.notify_one();
  return OkStatus();
}

void BatchScheduler::Wake() {
  cv_.notify_one();
}

SchedulerStats BatchScheduler::Stats() const {
  std::lock_guard<std::mutex> l(mu_);
  SchedulerStats s = published_;
  s.waiting += static_cast<int64_t>(incoming_.size());
  return s;
}

void BatchScheduler::Loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(
          l, [&] { return stop_ || !incoming_.empty() || !waiting_.empty() || !running_.empty(); });
      if (stop_) return;
    }
    auto progressed = StepOnce();
    if (!progressed.ok())
      spdlog::error("batch scheduler step failed: {}", progressed.status().message());
    if (!progressed.ok() || !*progressed) {
      // Nothing could run (every sequence waits on something); do not spin.
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, std::chrono::milliseconds(5), [&] { return stop_ || !incoming_.empty(); });
    }
  }
}

void BatchScheduler::TakeIncoming() {
  std::vector<std::unique_ptr<Seq>> in;
  {
    std::lock_guard<std::mutex> l(mu_);
    in.swap(incoming_);
  }
  for (auto& s : in) {
    counters_.prompt_tokens += s->prompt_len;
    waiting_.push_back(std::move(s));
  }
}

void BatchScheduler::DropCancelled() {
  int64_t unqueued = 0;
  auto drop = [&](std::unique_ptr<Seq>& s) {
    if (!s->sink->Cancelled()) return false;
    if (!s->admitted_once) ++unqueued;
    Finish(*s, FinishCause::kCancelled, OkStatus());
    return true;
  };
  std::erase_if(waiting_, drop);
  std::erase_if(running_, drop);
  if (unqueued) {
    std::lock_guard<std::mutex> l(mu_);
    queued_ -= unqueued;
  }
}

StatusOr<bool> BatchScheduler::StepOnce() {
  TakeIncoming();
  DropCancelled();
  if (waiting_.empty() && running_.empty()) {
    PublishStats();
    return false;
  }
  std::vector<Planned> plan;
  int32_t prefill_left = options_.max_batch_tokens;
  const bool preempted = ScheduleRunning(&plan, &prefill_left);
  if (!preempted) Admit(&plan, &prefill_left);
  if (plan.empty()) {
    if (running_.empty() && !waiting_.empty()) {
      // Alone with an empty pool and still no room: the pool is smaller than the prompt
      // (Submit checks the context, so this means blocks leaked). Fail it rather than spin.
      auto s = std::move(waiting_.front());
      waiting_.pop_front();
      Finish(*s, FinishCause::kError, ResourceExhausted("the KV cache can not hold this prompt"));
    }
    PublishStats();
    return false;
  }
  Status st = RunPlan(plan);
  PublishStats();
  if (!st.ok()) return st;
  return true;
}

bool BatchScheduler::MakeRoom(Seq& s, int32_t n) {
  const int32_t bs = kv_.shape().block_size;
  const int32_t need =
      (s.blocks.num_tokens + n + bs - 1) / bs - static_cast<int32_t>(s.blocks.blocks.size());
  if (need <= kv_.blocks().num_free()) return true;
  prefix_.EvictUntilFree(need);
  return need <= kv_.blocks().num_free();
}

void BatchScheduler::Preempt(std::unique_ptr<Seq> s) {
  kv_.Free(s->blocks);
  s->computed = 0;
  s->cached_blocks = 0;
  s->chain_broken = false;
  s->preempted = true;
  ++counters_.preemptions;
  auto pos =
      std::upper_bound(waiting_.begin(), waiting_.end(), s->id,
                       [](uint64_t id, const std::unique_ptr<Seq>& w) { return id < w->id; });
  waiting_.insert(pos, std::move(s));
}

// Gives every running sequence its next piece, oldest first. Returns true if it had to preempt.
bool BatchScheduler::ScheduleRunning(std::vector<Planned>* plan, int32_t* prefill_left) {
  const int32_t bs = kv_.shape().block_size;
  int32_t decodes = 0;
  for (const auto& s : running_) decodes += s->remaining() == 1;
  *prefill_left = std::max(0, options_.max_batch_tokens - decodes);
  bool preempted = false;
  for (size_t i = 0; i < running_.size(); ++i) {
    Seq& s = *running_[i];
    const bool decode = s.remaining() == 1;
    int32_t n = decode ? 1 : std::min(s.remaining(), *prefill_left);
    if (n <= 0) continue;
    if (!decode && !MakeRoom(s, n)) {
      // A prefill chunk shrinks to the room there is before anyone is preempted for it.
      const int32_t room = static_cast<int32_t>(s.blocks.blocks.size()) * bs - s.blocks.num_tokens +
                           (kv_.blocks().num_free() + prefix_.num_evictable()) * bs;
      n = std::max(1, std::min(n, room));
    }
    while (!MakeRoom(s, n)) {
      // Preempt the youngest; everything younger than `s` is unscheduled, so no planned piece
      // is ever taken back.
      preempted = true;
      if (i + 1 == running_.size()) {
        if (i == 0) {
          Finish(s, FinishCause::kError,
                 ResourceExhausted("the KV cache can not hold this sequence"));
          running_.pop_back();
          return true;
        }
        Preempt(std::move(running_.back()));
        running_.pop_back();
        return true;
      }
      Preempt(std::move(running_.back()));
      running_.pop_back();
    }
    Planned p{&s, s.computed, n, decode, {}};
    TSR_CHECK(kv_.Extend(s.blocks, n, &p.slots).ok());
    plan->push_back(std::move(p));
    if (!decode) *prefill_left -= n;
  }
  return preempted;
}

void BatchScheduler::Admit(std::vector<Planned>* plan, int32_t* prefill_left) {
  const int32_t bs = kv_.shape().block_size;
  while (!waiting_.empty() && static_cast<int32_t>(running_.size()) < options_.max_running &&
         *prefill_left > 0) {
    Seq& s = *waiting_.front();
    int32_t hit = 0;
    if (options_.prefix_caching && !s.want_prompt_logits && s.blocks.blocks.empty()) {
      // Keep at least one token to compute: its logits pick the next token.
      const int32_t max_blocks = (static_cast<int32_t>(s.tokens.size()) - 1) / bs;
      s.blocks.blocks = prefix_.Match(s.tokens, max_blocks);
      hit = static_cast<int32_t>(s.blocks.blocks.size()) * bs;
      s.blocks.num_tokens = s.computed = hit;
      s.cached_blocks = static_cast<int32_t>(s.blocks.blocks.size());
    }
    // Admit only when the whole rest of the prompt fits now: a sequence admitted with half a
    // prompt would soon be the youngest and the first preempted, its work thrown away.
    const int32_t need = (static_cast<int32_t>(s.tokens.size()) + bs - 1) / bs -
                         static_cast<int32_t>(s.blocks.blocks.size());
    const int32_t n = std::min(s.remaining(), *prefill_left);
    if (need > kv_.blocks().num_free() + prefix_.num_evictable() || !MakeRoom(s, n)) {
      kv_.Free(s.blocks);
      s.computed = 0;
      s.cached_blocks = 0;
      break;
    }
    counters_.prefix_hit_tokens += hit;
    Planned p{&s, s.computed, n, s.remaining() == 1, {}};
    TSR_CHECK(kv_.Extend(s.blocks, n, &p.slots).ok());
    plan->push_back(std::move(p));
    *prefill_left -= n;
    if (!s.admitted_once) {
      s.admitted_once = true;
      std::lock_guard<std::mutex> l(mu_);
      --queued_;
    }
    s.preempted = false;
    auto seq = std::move(waiting_.front());
    waiting_.pop_front();
    auto pos =
        std::upper_bound(running_.begin(), running_.end(), seq->id,
                         [](uint64_t id, const std::unique_ptr<Seq>& r) { return id < r->id; });
    running_.insert(pos, std::move(seq));
  }
}

Status BatchScheduler::RunPlan(std::vector<Planned>& plan) {
  StepBatch b;
  size_t widest = 0;
  for (const Planned& p : plan) widest = std::max(widest, p.seq->blocks.blocks.size());
  // Round the block-table width up so consecutive steps reuse one prepared graph.
  b.max_blocks = static_cast<int32_t>((widest + 15) / 16 * 16);
  b.cu_q.push_back(0);
  for (Planned& p : plan) {
    Seq& s = *p.seq;
    const int32_t row0 = static_cast<int32_t>(b.tokens.size());
    for (int32_t j = 0; j < p.n; ++j) {
      b.tokens.push_back(s.tokens[static_cast<size_t>(p.begin + j)]);
      b.positions.push_back(p.begin + j);
    }
    b.slots.insert(b.slots.end(), p.slots.begin(), p.slots.end());
    b.cu_q.push_back(static_cast<int32_t>(b.tokens.size()));
    b.kv_lens.push_back(s.blocks.num_tokens);
    const size_t at = b.block_table.size();
    b.block_table.resize(at + static_cast<size_t>(b.max_blocks), -1);
    std::copy(s.blocks.blocks.begin(), s.blocks.blocks.end(),
              b.block_table.begin() + static_cast<std::ptrdiff_t>(at));
    if (s.want_prompt_logits) {
      const int32_t first = std::max(p.begin, s.prompt_logits_done);
      const int32_t last = std::min(p.begin + p.n, s.prompt_len);
      if (first < last) {
        p.prompt_row = static_cast<int32_t>(b.logit_rows.size());
        p.prompt_first = first;
        p.prompt_n = last - first;
        for (int32_t pos = first; pos < last; ++pos) b.logit_rows.push_back(row0 + pos - p.begin);
      }
    }
    if (p.begin + p.n == static_cast<int32_t>(s.tokens.size())) {
      const int32_t row = row0 + p.n - 1;
      if (p.prompt_row >= 0 && b.logit_rows.back() == row)
        p.sample_row = static_cast<int32_t>(b.logit_rows.size()) - 1;
      else {
        p.sample_row = static_cast<int32_t>(b.logit_rows.size());
        b.logit_rows.push_back(row);
      }
    }
    if (!p.decode) {
      counters_.prompt_tokens_computed += p.n;
      ++counters_.prefill_chunks;
    }
  }
  // A step of unfinished prefill chunks wants no logits; the graph needs at least one row.
  const bool dummy_row = b.logit_rows.empty();
  if (dummy_row) b.logit_rows.push_back(0);
  const bool greedy = GreedyStep(plan);
  ++counters_.steps;
  counters_.argmax_steps += greedy;
  counters_.step_tokens += static_cast<int64_t>(b.tokens.size());
  // The runner's own storage (page-locked on CUDA: the logits or ids arrive by one DMA copy),
  // valid until its next step: Deliver consumes it before this thread runs another.
  std::span<const float> logits;
  std::span<const int32_t> ids;
  Status st;
  {
    std::unique_lock<std::mutex> l;
    if (options_.forward_mutex) l = std::unique_lock<std::mutex>(*options_.forward_mutex);
    if (greedy) {
      StatusOr<std::span<const int32_t>> out = runner_.ForwardArgmax(b);
      st = out.status();
      if (out.ok()) ids = *out;
    } else {
      StatusOr<std::span<const float>> out = runner_.ForwardLogits(b);
      st = out.status();
      if (out.ok()) logits = *out;
    }
  }
  if (!st.ok()) {
    for (Planned& p : plan) Finish(*p.seq, FinishCause::kError, st);
    std::erase_if(running_, [&](const std::unique_ptr<Seq>& s) {
      return std::any_of(plan.begin(), plan.end(),
                         [&](const Planned& p) { return p.seq == s.get(); });
    });
    return st;
  }
  Deliver(plan, logits, ids);
  return OkStatus();
}

// Whether the step may run ForwardArgmax: no prompt logits wanted and every sequence that
// samples in it greedy-only (a step of prefill chunks only samples nobody: its one dummy row is
// never read, and 4 bytes download faster than a vocab of floats).
bool BatchScheduler::GreedyStep(const std::vector<Planned>& plan) const {
  for (const Planned& p : plan) {
    if (p.prompt_row >= 0) return false;
    if (p.sample_row >= 0 && !p.seq->sink->GreedyOnly()) return false;
  }
  return true;
}

void BatchScheduler::Deliver(std::vector<Planned>& plan, std::span<const float> logits,
                             std::span<const int32_t> ids) {
  const size_t vocab = static_cast<size_t>(vocab_);
  for (Planned& p : plan) {
    Seq& s = *p.seq;
    s.computed += p.n;
    CacheFullBlocks(s);
    if (p.prompt_row >= 0) {
      s.sink->OnPromptLogits(
          p.prompt_first, p.prompt_n,
          std::span<const float>(logits.data() + static_cast<size_t>(p.prompt_row) * vocab,
                                 static_cast<size_t>(p.prompt_n) * vocab));
      s.prompt_logits_done = p.prompt_first + p.prompt_n;
    }
    if (p.sample_row < 0) continue;
    const size_t row = static_cast<size_t>(p.sample_row);
    NextToken next = !ids.empty() ? s.sink->OnToken(ids[row])
                                  : s.sink->OnLogits(logits.subspan(row * vocab, vocab));
    p.finished = true;
    if (next.finished) {
      Finish(s, FinishCause::kDone, OkStatus());
    } else if (next.token < 0 || next.token >= vocab_) {
      Finish(s, FinishCause::kError,
             Internal("the sink picked token " + std::to_string(next.token)));
    } else {
      s.tokens.push_back(next.token);
      ++counters_.generated_tokens;
      if (static_cast<int64_t>(s.tokens.size()) > max_context_) {
        // The new token was handed out, but there is no position left to compute it at.
        Finish(s, FinishCause::kContextFull, OkStatus());
      } else {
        p.finished = false;
      }
    }
  }
  std::erase_if(running_, [&](const std::unique_ptr<Seq>& s) {
    return std::any_of(plan.begin(), plan.end(),
                       [&](const Planned& p) { return p.finished && p.seq == s.get(); });
  });
}

void BatchScheduler::CacheFullBlocks(Seq& s) {
  if (!options_.prefix_caching || s.chain_broken) return;
  const int32_t bs = kv_.shape().block_size;
  const int32_t full = s.computed / bs;
  while (s.cached_blocks < full) {
    const int32_t i = s.cached_blocks;
    const int32_t parent = i == 0 ? -1 : s.blocks.blocks[static_cast<size_t>(i - 1)];
    std::span<const int32_t> toks(s.tokens.data() + static_cast<size_t>(i) * bs,
                                  static_cast<size_t>(bs));
    if (!prefix_.Insert(parent, toks, s.blocks.blocks[static_cast<size_t>(i)])) {
      s.chain_broken = true;
      return;
    }
    ++s.cached_blocks;
  }
}

void BatchScheduler::Finish(Seq& s, FinishCause cause, const Status& error) {
  kv_.Free(s.blocks);
  switch (cause) {
    case FinishCause::kCancelled: ++counters_.cancelled; break;
    case FinishCause::kError: ++counters_.errors; break;
    default: ++counters_.finished; break;
  }
  s.sink->OnFinished(cause, error);
}

void BatchScheduler::PublishStats() {
  SchedulerStats s = counters_;
  s.waiting = static_cast<int64_t>(waiting_.size());
  s.running = static_cast<int64_t>(running_.size());
  s.preempted_waiting =
      std::count_if(waiting_.begin(), waiting_.end(), [](const auto& w) { return w->preempted; });
  s.kv_blocks_total = kv_.blocks().num_blocks();
  s.kv_blocks_free = kv_.blocks().num_free();
  s.kv_blocks_cached = prefix_.num_evictable();
  s.kv_blocks_used = s.kv_blocks_total - s.kv_blocks_free - s.kv_blocks_cached;
  s.kv_block_size = kv_.shape().block_size;
  s.max_running = options_.max_running;
  std::lock_guard<std::mutex> l(mu_);
  published_ = s;
}

}  // namespace tessera::batching
