#include "tessera/text/generate.h"

#include <algorithm>
#include <chrono>
#include <span>

namespace tessera::text {
namespace {

// Owns one sequence's KV blocks for the duration of a call.
class ScopedSequence {
 public:
  explicit ScopedSequence(KvCache& kv) : kv_(kv) {}
  ~ScopedSequence() { kv_.Free(seq_); }
  SequenceBlocks& seq() { return seq_; }

 private:
  KvCache& kv_;
  SequenceBlocks seq_;
};

// The batch of tokens[begin, end) of one sequence, its KV slots taken; logits wanted for the rows
// in `want` (relative to begin).
StatusOr<StepBatch> MakeStep(TextModel& model, SequenceBlocks& seq,
                             const std::vector<int32_t>& tokens, size_t begin, size_t end,
                             const std::vector<int32_t>& want) {
  StepBatch b;
  b.tokens.assign(tokens.begin() + static_cast<std::ptrdiff_t>(begin),
                  tokens.begin() + static_cast<std::ptrdiff_t>(end));
  int32_t start = seq.num_tokens;
  for (size_t i = 0; i < b.tokens.size(); ++i)
    b.positions.push_back(start + static_cast<int32_t>(i));
  TSR_RETURN_IF_ERROR(
      model.kv_cache().Extend(seq, static_cast<int32_t>(b.tokens.size()), &b.slots));
  b.cu_q = {0, static_cast<int32_t>(b.tokens.size())};
  b.kv_lens = {seq.num_tokens};
  // Round the block table width up so decode steps reuse one prepared graph for a while.
  b.max_blocks = (static_cast<int32_t>(seq.blocks.size()) + 15) / 16 * 16;
  b.block_table.assign(static_cast<size_t>(b.max_blocks), -1);
  std::copy(seq.blocks.begin(), seq.blocks.end(), b.block_table.begin());
  b.logit_rows = want;
  return b;
}

// One generation step: without `id`, the logits of the row in `want` into `logits`, in the
// model's own host buffer (pinned where a device offers host memory, as the server takes them),
// valid until the next step; with `id`, only that row's argmax (TSR_OP_ARGMAX on the device
// where a plugin runs it, else the host's pick of the same row).
Status Step(TextModel& model, SequenceBlocks& seq, const std::vector<int32_t>& tokens, size_t begin,
            size_t end, const std::vector<int32_t>& want, std::span<const float>* logits,
            int32_t* id) {
  TSR_ASSIGN_OR_RETURN(StepBatch b, MakeStep(model, seq, tokens, begin, end, want));
  if (id != nullptr) {
    TSR_ASSIGN_OR_RETURN(std::span<const int32_t> ids, model.ForwardArgmax(b));
    *id = ids[0];
    return OkStatus();
  }
  TSR_ASSIGN_OR_RETURN(*logits, model.ForwardLogits(b));
  return OkStatus();
}

// True when Sample() is a plain greedy pick of the raw row and nothing else of it is used (no
// penalty reshapes it; temperature 0 ignores top-k / top-p / min-p): such a request asks the
// model for each step's argmax only, which is the id Sample() would pick.
bool GreedyOnly(const SamplingParams& s) {
  return s.temperature < kGreedyTemperatureEpsilon && s.repetition_penalty == 1.0f &&
         s.presence_penalty == 0.0f && s.frequency_penalty == 0.0f && s.top_logprobs == 0;
}

Status CheckFits(TextModel& model, size_t tokens) {
  const KvCacheShape& kv = model.kv_cache().shape();
  int64_t capacity = static_cast<int64_t>(kv.num_blocks) * kv.block_size;
  int64_t ctx = model.spec().max_context > 0 ? model.spec().max_context : capacity;
  int64_t limit = std::min(capacity, ctx);
  if (static_cast<int64_t>(tokens) > limit)
    return InvalidArgument("the prompt has " + std::to_string(tokens) +
                           " tokens but the context holds " + std::to_string(limit) +
                           " (model maximum " + std::to_string(ctx) + ", KV cache " +
                           std::to_string(capacity) + ")");
  return OkStatus();
}

}  // namespace

StatusOr<GenerateResult> Generate(TextModel& model, const GenerateRequest& req,
                                  const std::function<bool(std::string_view)>& on_text) {
  if (req.prompt.empty()) return InvalidArgument("the prompt is empty");
  TSR_RETURN_IF_ERROR(ValidateSamplingParams(req.sampling));
  TSR_RETURN_IF_ERROR(CheckFits(model, req.prompt.size()));
  using Clock = std::chrono::steady_clock;
  GenerateResult result;
  ScopedSequence scoped(model.kv_cache());
  SequenceBlocks& seq = scoped.seq();
  std::span<const float> logits;
  const bool greedy = GreedyOnly(req.sampling);
  int32_t greedy_id = -1;  // greedy: the id the last step picked
  auto t0 = Clock::now();
  const size_t chunk = static_cast<size_t>(std::max(1, req.prefill_chunk));
  for (size_t begin = 0; begin < req.prompt.size(); begin += chunk) {
    size_t end = std::min(req.prompt.size(), begin + chunk);
    TSR_RETURN_IF_ERROR(Step(model, seq, req.prompt, begin, end,
                             {static_cast<int32_t>(end - begin - 1)}, &logits,
                             greedy && end == req.prompt.size() ? &greedy_id : nullptr));
  }
  auto t1 = Clock::now();
  result.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();

  Sampler sampler(req.sampling, req.prompt);
  StopMatcher stops(req.stop);
  DecodeStream stream(model.tokenizer(), /*skip_special_tokens=*/true);
  const auto& eos = model.eos_ids();
  result.finish_reason = "length";
  auto emit = [&](const std::string& text) {
    result.text += text;
    return text.empty() || on_text(text);
  };
  for (int32_t n = 0; req.max_tokens < 0 || n < req.max_tokens; ++n) {
    SampledToken tok;
    if (greedy) {
      tok.id = greedy_id;
    } else {
      tok = sampler.Sample(logits);
    }
    if (!req.ignore_eos && std::find(eos.begin(), eos.end(), tok.id) != eos.end()) {
      result.finish_reason = "stop";
      break;
    }
    sampler.Accept(tok.id);
    result.tokens.push_back(tok.id);
    TSR_ASSIGN_OR_RETURN(std::string piece, stream.Step(tok.id));
    StopMatcher::Result r = stops.Push(piece);
    if (!emit(r.emit)) {
      result.finish_reason = "cancelled";
      break;
    }
    if (r.stopped) {
      result.finish_reason = "stop";
      break;
    }
    if (req.max_tokens >= 0 && n + 1 == req.max_tokens) break;
    if (!CheckFits(model, static_cast<size_t>(seq.num_tokens) + 1).ok()) break;  // context full
    std::vector<int32_t> next = {tok.id};
    TSR_RETURN_IF_ERROR(Step(model, seq, next, 0, 1, {0}, &logits, greedy ? &greedy_id : nullptr));
  }
  if (result.finish_reason != "stop" || !stops.Flush().empty()) {
    TSR_ASSIGN_OR_RETURN(std::string tail, stream.Flush());
    StopMatcher::Result r = stops.Push(tail);
    std::string rest = r.emit + (r.stopped ? "" : stops.Flush());
    emit(rest);
  }
  result.decode_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  return result;
}

StatusOr<std::vector<float>> ScoreTokens(TextModel& model, const std::vector<int32_t>& tokens) {
  return ScoreTokens(model, tokens, ScoreSteps{});
}

StatusOr<std::vector<float>> ScoreTokens(TextModel& model, const std::vector<int32_t>& tokens,
                                         const ScoreSteps& steps) {
  if (tokens.empty()) return InvalidArgument("nothing to score");
  if (steps.prefix >= tokens.size())
    return InvalidArgument("the prefix (" + std::to_string(steps.prefix) +
                           " tokens) leaves nothing to score of " + std::to_string(tokens.size()));
  TSR_RETURN_IF_ERROR(CheckFits(model, tokens.size()));
  ScopedSequence scoped(model.kv_cache());
  if (steps.prefix > 0) {
    std::span<const float> unused;
    TSR_RETURN_IF_ERROR(Step(model, scoped.seq(), tokens, 0, steps.prefix,
                             {static_cast<int32_t>(steps.prefix - 1)}, &unused, nullptr));
  }
  const size_t vocab = static_cast<size_t>(model.spec().vocab);
  const size_t step = steps.step == 0 ? tokens.size() : steps.step;
  std::vector<float> out((tokens.size() - steps.prefix) * vocab);
  // Each step's rows into a vector of this call's own (freed on return), not the model's step
  // buffer, which only grows and would keep [rows, vocab] floats for the model's life.
  std::vector<float> logits;
  for (size_t begin = steps.prefix; begin < tokens.size(); begin += step) {
    const size_t end = std::min(tokens.size(), begin + step);
    std::vector<int32_t> rows(end - begin);
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int32_t>(i);
    TSR_ASSIGN_OR_RETURN(StepBatch b, MakeStep(model, scoped.seq(), tokens, begin, end, rows));
    TSR_RETURN_IF_ERROR(model.Forward(b, &logits));
    for (size_t r = 0; r < rows.size(); ++r)
      LogSoftmax(std::span<const float>(logits.data() + r * vocab, vocab),
                 std::span<float>(out.data() + (begin - steps.prefix + r) * vocab, vocab));
  }
  return out;
}

}  // namespace tessera::text
