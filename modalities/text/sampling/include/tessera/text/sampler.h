// Token sampling for decoder LMs: logit processors, the draw, logprobs, and stop strings.
//
// One Sampler per sequence. Sample() turns a vocab-sized row of raw logits into one token:
//
//   raw logits --penalties--> --/temperature--> --top-k--> --top-p--> --min-p--> draw
//
// This is the order vLLM uses (penalties, temperature, top-k, top-p, min-p). Top-p sees the
// distribution left by top-k (renormalized); min-p is relative to the most likely token, so it
// gives the same answer before or after the truncations that precede it. Greedy (temperature
// 0) takes the argmax of the penalized logits; no truncation can remove the argmax, so greedy
// skips them.
//
// Tie rules (documented because references disagree or leave them to sort order):
//   * greedy: the lowest id among the maximal processed logits wins;
//   * top-k:  every token whose logit equals the k-th largest is kept (as HF and vLLM do, so more
//             than k tokens may survive);
//   * top-p:  the nucleus is the shortest descending prefix whose mass reaches p; tokens tied with
//             the last token of that prefix are kept as well, so the kept set never depends on
//             token ids. At least one token (plus its ties) always survives.
//
// Logprobs are log-softmax of the RAW logits (what OpenAI and vLLM report by default), not of the
// processed distribution the token was drawn from.
#ifndef TESSERA_TEXT_SAMPLER_H_
#define TESSERA_TEXT_SAMPLER_H_

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tessera/core/status.h"

namespace tessera::text {

// Temperatures below this are treated as greedy: dividing logits by a tiny temperature overflows
// float and the distribution is a point mass anyway (vLLM uses the same cut-off).
inline constexpr float kGreedyTemperatureEpsilon = 1e-5f;
inline constexpr int32_t kMaxTopLogprobs = 20;

struct SamplingParams {
  float temperature = 1.0f;  // 0 (or < kGreedyTemperatureEpsilon) => greedy
  int32_t top_k = 0;         // 0 or -1 => off; >= vocab size => off
  float top_p = 1.0f;        // in (0, 1]; 1 => off
  float min_p = 0.0f;        // in [0, 1]; 0 => off
  // HF/vLLM semantics: logit > 0 ? logit / p : logit * p, applied once to every token seen in the
  // prompt AND the output. > 0; 1 => off.
  float repetition_penalty = 1.0f;
  // OpenAI semantics over generated tokens only: logit -= presence * (count > 0). In [-2, 2].
  float presence_penalty = 0.0f;
  // OpenAI semantics over generated tokens only: logit -= frequency * count. In [-2, 2].
  float frequency_penalty = 0.0f;
  std::optional<uint64_t> seed;  // reproducible per request; random_device when absent
  int32_t top_logprobs = 0;      // how many alternatives to report, 0..kMaxTopLogprobs
};

// Returns InvalidArgument naming the field, its value and the allowed range when a value is out
// of range or not finite. Thread-safe.
Status ValidateSamplingParams(const SamplingParams& params);

struct SampledToken {
  int32_t id = -1;
  float logprob = 0.0f;  // log-softmax of the raw logits at `id`
  // The top_logprobs most likely tokens by raw logit, descending, ties by lower id. May or may
  // not contain `id`.
  std::vector<std::pair<int32_t, float>> top;
};

// Per-sequence sampler. Not thread-safe; one per sequence (it owns the sequence's RNG and token
// counts, a few bytes per distinct seen token). The vocab-sized working rows live in a
// thread-local workspace shared by all samplers on a thread, so a server holding thousands of
// sequences does not hold thousands of rows, and steady-state Sample() does not allocate (except
// `top` when top_logprobs > 0).
class Sampler {
 public:
  // REQUIRES: ValidateSamplingParams(params).ok() (checked). prompt_ids is copied; ids outside
  // the vocabulary seen at Sample() time are ignored.
  Sampler(SamplingParams params, std::span<const int32_t> prompt_ids);

  // logits: (vocab,) raw f32 scores; finite or -inf, at least one finite. Applies penalties ->
  // temperature -> top-k -> top-p -> min-p and draws with the sequence's RNG (one 64-bit draw per
  // non-greedy call, none for greedy). Does not record the token: call Accept() for that.
  SampledToken Sample(std::span<const float> logits);

  // Records an emitted token so later calls penalize it (presence/frequency/repetition).
  void Accept(int32_t id);

  // Applies this sequence's penalties in place to a (vocab,) logit row, exactly as Sample() does
  // before temperature. For callers that need the processed logits, and for tests.
  void ApplyPenalties(std::span<float> logits) const;

  const SamplingParams& params() const { return params_; }

 private:
  // A token seen in the prompt and/or the output. Kept sorted by id so the greedy pass can walk
  // the vocabulary in runs of unpenalized tokens without a per-token lookup.
  struct Seen {
    int32_t id;
    bool in_prompt;
    int32_t output_count;
  };
  float Penalize(float logit, const Seen& s) const;
  bool PenaltiesActive() const;
  int32_t GreedyPick(std::span<const float> logits, double* log_z) const;
  int32_t DrawPick(std::span<const float> logits);
  double UniformDouble();

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<Seen> seen_;  // sorted by id, unique
};

// Stop strings over a detokenized stream. Holds back text that might be the start of a stop
// string (and an incomplete trailing UTF-8 sequence), and reports when a stop matched; the stop
// text and everything after it are dropped (OpenAI excludes the stop from the output).
//
// When several stops are complete in the text seen so far, the one that starts earliest wins.
// Generation ends at the first Push that completes any stop. Not thread-safe.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);  // empty strings are ignored

  struct Result {
    std::string emit;  // text safe to stream to the client now
    bool stopped = false;
    int32_t stop_index = -1;  // index into `stops` of the stop that matched, or -1
  };
  // new_text: newly decoded UTF-8 text (a split multi-byte sequence is tolerated and held back).
  // After a stop matched, returns {"", true, index} and ignores new_text.
  Result Push(std::string_view new_text);
  // At the end of generation: releases and clears the held-back text ("" after a stop).
  std::string Flush();

 private:
  size_t HoldBack() const;

  std::vector<std::string> stops_;
  std::vector<int32_t> stop_ids_;  // original index of each entry of stops_
  std::string pending_;            // held-back text not yet emitted
  int32_t stopped_index_ = -1;
};

// out[i] = logits[i] - log(sum_j exp(logits[j])), stable (max-shifted) with double accumulation.
// REQUIRES: out.size() == logits.size() > 0. out may alias logits.
void LogSoftmax(std::span<const float> logits, std::span<float> out);

// log(sum exp(logits)) with max shift and double accumulation. -inf for an all -inf row.
double LogSumExp(std::span<const float> logits);

}  // namespace tessera::text

#endif  // TESSERA_TEXT_SAMPLER_H_
