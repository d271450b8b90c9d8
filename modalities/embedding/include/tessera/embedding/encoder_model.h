// Embedding and reranking models: BERT, RoBERTa / XLM-RoBERTa encoders and Qwen3-style
// decoders, loaded from a Hugging Face folder, run over many inputs packed into one forward pass.
//
// The kind of model is read from the checkpoint (DetectModel):
//   * kEmbedding: encoder base models (BertModel, RobertaModel, XLMRobertaModel, ...) and any
//     model with sentence-transformers files (modules.json); pooling and normalization come from
//     1_Pooling/config.json and a Normalize module, max_seq_length from
//     sentence_bert_config.json; without those files: CLS pooling for encoders, last-token for
//     decoders, normalized.
//   * kCrossEncoder: *ForSequenceClassification (BERT pooler + classifier, or RoBERTa's
//     dense + tanh + out_proj head), scored on the tokenizer's pair template.
//   * kYesNoReranker: a causal LM (Qwen3-Reranker style) whose folder or _name_or_path says
//     "rerank": p("yes") of the next token after the reranker prompt.
//   Any other causal LM is a chat model and is refused with FailedPrecondition.
//
// EncoderModel::Forward is the shared engine; embedding.h and tessera/rerank/rerank.h are the
// front-ends the CLI and server call.
#ifndef TESSERA_EMBEDDING_ENCODER_MODEL_H_
#define TESSERA_EMBEDDING_ENCODER_MODEL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "tessera/core/device.h"
#include "tessera/core/model/checkpoint.h"
#include "tessera/core/model/hf_config.h"
#include "tessera/core/status.h"
#include "tessera/text/tokenizer.h"

namespace tessera::embedding {

enum class ModelKind { kEmbedding, kCrossEncoder, kYesNoReranker };
enum class Pooling { kCls, kMean, kMax, kLastToken };
enum class Backbone { kBert, kRoberta, kDecoder };

const char* ModelKindName(ModelKind kind);
const char* PoolingName(Pooling pooling);

// What DetectModel read from the folder.
struct ModelInfo {
  ModelKind kind = ModelKind::kEmbedding;
  Backbone backbone = Backbone::kBert;
  std::string architecture;  // config.architectures[0]
  Pooling pooling = Pooling::kCls;
  bool normalize = true;               // a Normalize module (or the decoder default)
  int64_t max_seq_length = 0;          // tokens, special tokens included
  int64_t hidden = 0;                  // embedding width
  int32_t num_labels = 0;              // cross-encoders
  bool sentence_transformers = false;  // modules.json was found
};

// Reads config.json and the sentence-transformers files of `dir`. NotFound when there is no
// config.json; FailedPrecondition for a chat model; Unimplemented for other architectures.
StatusOr<ModelInfo> DetectModel(const std::string& dir);

// One input sequence: ids as the model sees them (special tokens included) and their type ids
// (empty = all 0).
struct TokenSequence {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;
};

struct LoadOptions {
  // Prepared graphs kept (one per packed shape); the least recently used are dropped.
  size_t max_cached_graphs = 16;
};

class EncoderModel {
 public:
  // Loads `dir` to run on `devices` (priority order; not owned, must outlive the model).
  static StatusOr<std::unique_ptr<EncoderModel>> Load(const std::string& dir,
                                                      std::vector<Device*> devices,
                                                      const LoadOptions& options = {});
  ~EncoderModel();

  const ModelInfo& info() const { return info_; }
  const std::string& dir() const { return dir_; }
  // Thread-safe (the tokenizer is immutable).
  const text::Tokenizer& tokenizer() const { return *tokenizer_; }
  // Largest number of tokens one sequence may have (max_seq_length, else the position table).
  int64_t max_tokens() const { return info_.max_seq_length; }

  // Runs `seqs` packed into forward passes of at most `max_batch_tokens` tokens each (a longer
  // sequence runs alone) and returns one row per sequence: the pooled, unnormalized embedding
  // [hidden] (kEmbedding), the classifier logits [num_labels] (kCrossEncoder), or the [no, yes]
  // logits of the next token (kYesNoReranker). Rows do not depend on how the inputs were packed.
  // OutOfRange for ids outside the vocabulary or sequences longer than max_tokens().
  // Thread-safe: calls are serialized on an internal mutex (the executor runs one graph at a
  // time); concurrent callers wait.
  StatusOr<std::vector<std::vector<float>>> Forward(std::span<const TokenSequence> seqs,
                                                    int64_t max_batch_tokens);

  // Ids of the reranker's "yes" / "no" tokens (kYesNoReranker only).
  int32_t yes_id() const { return yes_id_; }
  int32_t no_id() const { return no_id_; }

  struct Impl;

 private:
  EncoderModel() = default;
  StatusOr<std::vector<std::vector<float>>> RunPacked(std::span<const TokenSequence> seqs);

  std::string dir_;
  ModelInfo info_;
  ModelConfig config_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  std::unique_ptr<Impl> impl_;
  int32_t yes_id_ = -1, no_id_ = -1;
  std::mutex mu_;  // serializes Forward
};

}  // namespace tessera::embedding

#endif  // TESSERA_EMBEDDING_ENCODER_MODEL_H_
