// Text embeddings: tokenization, truncation, batching by token budget, pooling and
// normalization over an EncoderModel. What `engine embed`, /v1/embeddings and /api/embed call.
#ifndef TESSERA_EMBEDDING_EMBEDDING_H_
#define TESSERA_EMBEDDING_EMBEDDING_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tessera/embedding/encoder_model.h"

namespace tessera::embedding {

// One input: text, or token ids of the text without special tokens (OpenAI's token-array
// input). Both get the tokenizer's special tokens (e.g. [CLS] ... [SEP]) added.
struct EmbedInput {
  std::string text;
  std::vector<int32_t> ids;
  bool is_ids = false;

  static EmbedInput Text(std::string t) { return EmbedInput{std::move(t), {}, false}; }
  static EmbedInput Ids(std::vector<int32_t> ids) { return EmbedInput{{}, std::move(ids), true}; }
};

struct EmbedOptions {
  // Overrides the model's normalization (the Normalize module, or the decoder default).
  std::optional<bool> normalize;
  // Matryoshka truncation: keep the first `dimensions` values (then re-normalize when
  // normalizing). 0 = all. More than the model's width is InvalidArgument.
  int64_t dimensions = 0;
  // Inputs longer than the model's max_seq_length are an InvalidArgument error unless this is
  // set; then their content tokens are cut at the end (special tokens kept), as
  // sentence-transformers does.
  bool truncate = false;
  // Token budget of one forward pass: inputs are packed until it is reached.
  int64_t max_batch_tokens = 8192;
};

struct EmbedResult {
  std::vector<std::vector<float>> embeddings;  // one per input, in input order
  std::vector<int32_t> token_counts;           // tokens each input ran with (specials included)
  int64_t total_tokens = 0;
};

// Embeds `inputs` with `model`. FailedPrecondition when the model is not an embedding model;
// InvalidArgument for bad options or over-long inputs; OutOfRange for ids outside the
// vocabulary. Thread-safe (EncoderModel::Forward serializes the forward passes).
StatusOr<EmbedResult> Embed(EncoderModel& model, std::span<const EmbedInput> inputs,
                            const EmbedOptions& options);

// Tokenizes one input the way Embed does (special tokens added, truncated when asked).
StatusOr<TokenSequence> TokenizeForEmbedding(const EncoderModel& model, const EmbedInput& input,
                                             bool truncate);

}  // namespace tessera::embedding

#endif  // TESSERA_EMBEDDING_EMBEDDING_H_
