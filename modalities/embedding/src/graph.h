// Forward graphs of the embedding/rerank backbones over packed sequences (private).
#ifndef TESSERA_EMBEDDING_SRC_GRAPH_H_
#define TESSERA_EMBEDDING_SRC_GRAPH_H_

#include <functional>
#include <optional>
#include <string>

#include "tessera/core/ir.h"
#include "tessera/embedding/encoder_model.h"
#include "tessera/text/decoder.h"

namespace tessera::embedding::internal {

// Hyper-parameters of a BERT / RoBERTa encoder, from config.json.
struct EncoderSpec {
  int64_t hidden = 0, intermediate = 0, n_layers = 0, n_heads = 0, vocab = 0;
  int64_t max_positions = 0, type_vocab = 0;
  float ln_eps = 1e-12f;
  tsr_op act = TSR_OP_GELU;
};

// T tokens of S sequences packed back to back; R rows go through the head.
struct PackShape {
  int32_t tokens = 0, seqs = 0, head_rows = 0;
  bool operator<(const PackShape& o) const {
    return std::tie(tokens, seqs, head_rows) < std::tie(o.tokens, o.seqs, o.head_rows);
  }
};

struct PackInputs {
  TensorId tokens = kNoTensor;     // [T] i32
  TensorId positions = kNoTensor;  // [T] i32
  TensorId type_ids = kNoTensor;   // [T] i32 (encoders with token types)
  TensorId cu = kNoTensor;         // [S+1] i32: sequence starts (queries and keys alike)
  TensorId head_rows = kNoTensor;  // [R] i32: rows fed to the head (heads only)
  TensorId output = kNoTensor;     // [T, hidden] hidden states, or [R, labels] head output
};

using DTypeOf = std::function<DType(const std::string&)>;

// BERT / RoBERTa encoder (post-LN). Output: last hidden states [T, hidden] for kEmbedding, the
// classifier logits [R, num_labels] of the head rows for kCrossEncoder.
StatusOr<PackInputs> BuildEncoderGraph(const EncoderSpec& spec, const ModelInfo& info,
                                       const PackShape& shape, const DTypeOf& dtype, Graph* g);

// Decoder (Qwen3 and the other registered architectures) with dense causal attention over the
// packed sequences. Output: final-norm hidden states [T, hidden] for kEmbedding, or the LM-head
// logits [R, vocab] of the head rows for kYesNoReranker.
StatusOr<PackInputs> BuildDecoderPackGraph(const text::DecoderSpec& spec, const ModelInfo& info,
                                           const PackShape& shape, const DTypeOf& dtype, Graph* g);

// Pools rows [begin, end) of `hidden` (rows of `width` floats) into one vector, as
// sentence-transformers' Pooling does on an unpadded sequence.
std::vector<float> PoolRows(const float* hidden, int64_t width, int32_t begin, int32_t end,
                            Pooling pooling);

}  // namespace tessera::embedding::internal

#endif  // TESSERA_EMBEDDING_SRC_GRAPH_H_
