#include "tessera/rerank/rerank.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace tessera::rerank {
namespace {

using embedding::EncoderModel;
using embedding::ModelKind;
using embedding::TokenSequence;

// The Qwen3-Reranker prompt (model card): system turn, then the formatted pair as the user
// turn, then an empty thinking block, so the next token answers "yes" or "no".
constexpr std::string_view kPrefix =
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    "and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n"
    "<|im_start|>user\n";
constexpr std::string_view kSuffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";

std::string TooLong(size_t tokens, int64_t limit) {
  return "the pair has " + std::to_string(tokens) + " tokens, more than the model's limit of " +
         std::to_string(limit) + "; ask for truncation to cut it";
}

StatusOr<TokenSequence> CrossEncoderPair(const EncoderModel& m, std::string_view query,
                                         std::string_view doc, bool truncate) {
  const text::Tokenizer& tok = m.tokenizer();
  TSR_ASSIGN_OR_RETURN(auto q, tok.Encode(query, false));
  TSR_ASSIGN_OR_RETURN(auto d, tok.Encode(doc, false));
  const int64_t room = m.max_tokens() - tok.NumSpecialTokensToAdd(true);
  if (static_cast<int64_t>(q.size() + d.size()) > room) {
    if (!truncate)
      return InvalidArgument(
          TooLong(q.size() + d.size() + (m.max_tokens() - room), m.max_tokens()));
    // tokenizers' longest_first: drop from the longer side, one token at a time.
    while (static_cast<int64_t>(q.size() + d.size()) > room && !(q.empty() && d.empty()))
      (d.size() >= q.size() ? d : q).pop_back();
  }
  TSR_ASSIGN_OR_RETURN(text::Encoding enc, tok.PostProcess(q, std::span<const int32_t>(d),
                                                           /*add_special_tokens=*/true));
  return TokenSequence{std::move(enc.ids), std::move(enc.type_ids)};
}

StatusOr<TokenSequence> YesNoPrompt(const EncoderModel& m, std::string_view query,
                                    std::string_view doc, const RerankOptions& o) {
  const text::Tokenizer& tok = m.tokenizer();
  TSR_ASSIGN_OR_RETURN(auto prefix, tok.Encode(kPrefix, false));
  TSR_ASSIGN_OR_RETURN(auto suffix, tok.Encode(kSuffix, false));
  const std::string instruction =
      o.instruction.empty() ? std::string(kYesNoDefaultInstruction) : o.instruction;
  const std::string body = "<Instruct>: " + instruction + "\n<Query>: " + std::string(query) +
                           "\n<Document>: " + std::string(doc);
  TSR_ASSIGN_OR_RETURN(auto mid, tok.Encode(body, true));
  const int64_t room = m.max_tokens() - static_cast<int64_t>(prefix.size() + suffix.size());
  if (static_cast<int64_t>(mid.size()) > room) {
    if (!o.truncate)
      return InvalidArgument(TooLong(mid.size() + prefix.size() + suffix.size(), m.max_tokens()));
    mid.resize(static_cast<size_t>(std::max<int64_t>(room, 0)));
  }
  TokenSequence s;
  s.ids = std::move(prefix);
  s.ids.insert(s.ids.end(), mid.begin(), mid.end());
  s.ids.insert(s.ids.end(), suffix.begin(), suffix.end());
  return s;
}

float Sigmoid(float x) {
  return 1.f / (1.f + std::exp(-x));
}

// p(label 1) of a softmax over two logits (also the yes/no case: [no, yes]).
float SecondOfTwo(float a, float b) {
  return Sigmoid(b - a);
}

}  // namespace

StatusOr<RerankResult> Rerank(EncoderModel& model, std::string_view query,
                              std::span<const std::string> documents,
                              const RerankOptions& options) {
  const embedding::ModelInfo& info = model.info();
  if (info.kind == ModelKind::kEmbedding)
    return FailedPrecondition("'" + model.dir() + "' is an embedding model, not a reranker");
  if (info.kind == ModelKind::kCrossEncoder && info.num_labels != 1 && info.num_labels != 2)
    return Unimplemented("cross-encoders with " + std::to_string(info.num_labels) +
                         " labels give no single relevance score");
  if (options.max_batch_tokens <= 0) return InvalidArgument("max_batch_tokens must be positive");
  RerankResult r;
  std::vector<TokenSequence> seqs;
  seqs.reserve(documents.size());
  for (size_t i = 0; i < documents.size(); ++i) {
    auto s = info.kind == ModelKind::kCrossEncoder
                 ? CrossEncoderPair(model, query, documents[i], options.truncate)
                 : YesNoPrompt(model, query, documents[i], options);
    if (!s.ok()) return s.status().WithContext("document " + std::to_string(i));
    r.token_counts.push_back(static_cast<int32_t>(s->ids.size()));
    r.total_tokens += static_cast<int64_t>(s->ids.size());
    seqs.push_back(std::move(s).value());
  }
  TSR_ASSIGN_OR_RETURN(auto rows, model.Forward(seqs, options.max_batch_tokens));
  for (const auto& row : rows)
    r.scores.push_back(row.size() == 1 ? Sigmoid(row[0]) : SecondOfTwo(row[0], row[1]));
  return r;
}

std::vector<RankedDocument> RankByScore(std::span<const float> scores, size_t top_n) {
  std::vector<RankedDocument> out(scores.size());
  for (size_t i = 0; i < scores.size(); ++i)
    out[i] = RankedDocument{static_cast<int32_t>(i), scores[i]};
  std::stable_sort(out.begin(), out.end(), [](const RankedDocument& a, const RankedDocument& b) {
    return a.relevance_score > b.relevance_score;
  });
  if (top_n > 0 && top_n < out.size()) out.resize(top_n);
  return out;
}

}  // namespace tessera::rerank
