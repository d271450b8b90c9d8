// Reranking: relevance scores of documents for a query, from a cross-encoder or a yes/no
// reranker loaded as an EncoderModel. What `engine rerank` and /v1/rerank call.
//
// Scores, as sentence-transformers' CrossEncoder.predict gives them by default:
//   * 1-label cross-encoders (ms-marco MiniLM, bge-reranker): sigmoid(logit);
//   * 2-label cross-encoders: softmax over the two logits, probability of label 1 (CrossEncoder
//     returns both logits unless apply_softmax; label 1 is "relevant" by convention);
//   * yes/no rerankers (Qwen3-Reranker): softmax over the ["no", "yes"] next-token logits after
//     the model card's prompt, probability of "yes".
// More labels are Unimplemented: there is no single relevance score.
#ifndef TESSERA_RERANK_RERANK_H_
#define TESSERA_RERANK_RERANK_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/embedding/encoder_model.h"

namespace tessera::rerank {

struct RerankOptions {
  // Pairs longer than the model's max_seq_length are an InvalidArgument error unless this is
  // set; then tokens are cut from the longer of query and document, one at a time
  // (tokenizers' "longest_first"); for yes/no rerankers from the end of the document.
  bool truncate = false;
  int64_t max_batch_tokens = 8192;  // token budget of one forward pass
  // Yes/no rerankers: the task instruction ("" = the Qwen3-Reranker default).
  std::string instruction;
};

struct RerankResult {
  std::vector<float> scores;          // one per document, in input order
  std::vector<int32_t> token_counts;  // tokens each pair ran with
  int64_t total_tokens = 0;
};

// Scores `documents` against `query`. FailedPrecondition when `model` is not a reranker.
// Thread-safe (EncoderModel::Forward serializes the forward passes).
StatusOr<RerankResult> Rerank(embedding::EncoderModel& model, std::string_view query,
                              std::span<const std::string> documents, const RerankOptions& options);

struct RankedDocument {
  int32_t index = 0;  // into the documents given
  float relevance_score = 0.f;
};
// Documents by descending score (ties keep input order); at most `top_n` (0 = all).
std::vector<RankedDocument> RankByScore(std::span<const float> scores, size_t top_n);

// The Qwen3-Reranker prompt pieces (model card).
inline constexpr std::string_view kYesNoDefaultInstruction =
    "Given a web search query, retrieve relevant passages that answer the query";

}  // namespace tessera::rerank

#endif  // TESSERA_RERANK_RERANK_H_
