// Single-sequence generation and scoring on a TextModel (what `engine run` and the golden tests
// use; the server's continuous-batching scheduler drives TextModel::Forward directly).
#ifndef TESSERA_TEXT_GENERATE_H_
#define TESSERA_TEXT_GENERATE_H_

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/text/sampler.h"
#include "tessera/text/text_model.h"

namespace tessera::text {

struct GenerateRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int32_t max_tokens = 256;  // -1 = until EOS or the context is full
  std::vector<std::string> stop;
  bool ignore_eos = false;
  int32_t prefill_chunk = 512;  // prompt tokens per forward step
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids (EOS excluded)
  std::string text;             // generated text, stop string excluded
  std::string finish_reason;    // "stop" (EOS or stop string), "length", "cancelled"
  double prefill_seconds = 0, decode_seconds = 0;
};

// Streams text pieces to `on_text` (valid UTF-8; return false to cancel). A prompt that does not
// fit the model's context or the KV cache is an error, never truncated.
StatusOr<GenerateResult> Generate(TextModel& model, const GenerateRequest& request,
                                  const std::function<bool(std::string_view)>& on_text);

// Teacher-forced scoring: log-softmax rows for every position of `tokens` ([n, vocab]).
StatusOr<std::vector<float>> ScoreTokens(TextModel& model, const std::vector<int32_t>& tokens);

// Teacher-forced scoring in steps, as generation runs them: tokens[0, prefix) in one forward
// (their logits unused), then tokens[prefix, n) `step` tokens a forward (step 1: the decode
// path; 0: the rest at once). Log-softmax rows of positions prefix..n-1 ([n - prefix, vocab]).
struct ScoreSteps {
  size_t prefix = 0;
  size_t step = 0;
};
StatusOr<std::vector<float>> ScoreTokens(TextModel& model, const std::vector<int32_t>& tokens,
                                         const ScoreSteps& steps);

}  // namespace tessera::text

#endif  // TESSERA_TEXT_GENERATE_H_
