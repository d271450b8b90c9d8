#include "tessera/embedding/embedding.h"

#include <cmath>

namespace tessera::embedding {
namespace {

void L2Normalize(std::vector<float>* v) {
  double ss = 0;
  for (float x : *v) ss += static_cast<double>(x) * x;
  // torch.nn.functional.normalize's eps: a zero vector stays zero.
  const double n = std::max(std::sqrt(ss), 1e-12);
  for (float& x : *v) x = static_cast<float>(x / n);
}

}  // namespace

StatusOr<TokenSequence> TokenizeForEmbedding(const EncoderModel& model, const EmbedInput& input,
                                             bool truncate) {
  const text::Tokenizer& tok = model.tokenizer();
  std::vector<int32_t> content;
  if (input.is_ids) {
    content = input.ids;
  } else {
    TSR_ASSIGN_OR_RETURN(content, tok.Encode(input.text, /*add_special_tokens=*/false));
  }
  const int64_t room = model.max_tokens() - tok.NumSpecialTokensToAdd(false);
  if (static_cast<int64_t>(content.size()) > room) {
    if (!truncate)
      return InvalidArgument("input has " +
                             std::to_string(content.size() + tok.NumSpecialTokensToAdd(false)) +
                             " tokens, more than the model's max_seq_length of " +
                             std::to_string(model.max_tokens()) + "; ask for truncation to cut it");
    content.resize(static_cast<size_t>(std::max<int64_t>(room, 0)));
  }
  TSR_ASSIGN_OR_RETURN(text::Encoding enc, tok.PostProcess(content, std::nullopt, true));
  return TokenSequence{std::move(enc.ids), std::move(enc.type_ids)};
}

StatusOr<EmbedResult> Embed(EncoderModel& model, std::span<const EmbedInput> inputs,
                            const EmbedOptions& options) {
  const ModelInfo& info = model.info();
  if (info.kind != ModelKind::kEmbedding)
    return FailedPrecondition("'" + model.dir() + "' is a " + ModelKindName(info.kind) +
                              ", not an embedding model");
  if (options.dimensions < 0 || options.dimensions > info.hidden)
    return InvalidArgument("dimensions must be between 1 and " + std::to_string(info.hidden));
  if (options.max_batch_tokens <= 0) return InvalidArgument("max_batch_tokens must be positive");
  std::vector<TokenSequence> seqs;
  seqs.reserve(inputs.size());
  EmbedResult r;
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto s = TokenizeForEmbedding(model, inputs[i], options.truncate);
    if (!s.ok()) return s.status().WithContext("input " + std::to_string(i));
    r.token_counts.push_back(static_cast<int32_t>(s->ids.size()));
    r.total_tokens += static_cast<int64_t>(s->ids.size());
    seqs.push_back(std::move(s).value());
  }
  TSR_ASSIGN_OR_RETURN(r.embeddings, model.Forward(seqs, options.max_batch_tokens));
  const bool normalize = options.normalize.value_or(info.normalize);
  for (auto& e : r.embeddings) {
    // Matryoshka: sentence-transformers truncates after its Normalize module, then
    // re-normalizes when asked to; normalizing once after the cut gives the same vector.
    if (options.dimensions > 0) e.resize(static_cast<size_t>(options.dimensions));
    if (normalize) L2Normalize(&e);
  }
  return r;
}

}  // namespace tessera::embedding
