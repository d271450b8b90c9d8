// The interface the core's batch scheduler drives models through. Modalities implement it
// (tessera::text::TextModel for decoder LMs); the core never includes modality headers.
#ifndef TESSERA_CORE_MODEL_RUNNER_H_
#define TESSERA_CORE_MODEL_RUNNER_H_

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "tessera/core/kv_cache.h"
#include "tessera/core/status.h"

namespace tessera {

// The host sampler's greedy pick (text::Sampler::GreedyPick without penalties) over one row of
// logits: the lowest index among the largest values; NaN never wins; a row with no value above
// -inf gives 0. TSR_OP_ARGMAX has the same rule, so the device and the host agree on every row.
inline int32_t ArgmaxRow(std::span<const float> row) {
  float best = -std::numeric_limits<float>::infinity();
  int32_t best_id = 0;
  for (size_t i = 0; i < row.size(); ++i) {
    if (row[i] > best) {  // strict: the first of equal maxima stays; NaN compares false
      best = row[i];
      best_id = static_cast<int32_t>(i);
    }
  }
  return best_id;
}

// One forward step over a batch of sequences, laid out one after another in `tokens`.
struct StepBatch {
  std::vector<int32_t> tokens;       // [T]
  std::vector<int32_t> positions;    // [T]
  std::vector<int32_t> slots;        // [T] KV slot of each new token (KvCache::Extend gives them)
  std::vector<int32_t> cu_q;         // [S+1] token offsets of each sequence
  std::vector<int32_t> kv_lens;      // [S] cached tokens per sequence after this step
  std::vector<int32_t> block_table;  // [S * max_blocks], -1 padded
  int32_t max_blocks = 0;
  std::vector<int32_t> logit_rows;  // rows of `tokens` whose logits are returned, in order
};

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  // Runs one step; `logits` gets logit_rows.size() rows of vocab_size() floats. A sequence's
  // results do not depend on the other sequences in the batch (ARCHITECTURE.md kernel rule).
  // Not thread-safe: one scheduler thread calls it.
  virtual Status Forward(const StepBatch& batch, std::vector<float>* logits) = 0;
  // The same step into storage the runner owns, valid until its next Forward / ForwardLogits:
  // logit_rows.size() rows of vocab_size() floats. A runner may download straight into memory
  // its device transfers fastest (TextModel: page-locked, HostBuffer); by default Forward into a
  // vector kept here.
  virtual StatusOr<std::span<const float>> ForwardLogits(const StepBatch& batch) {
    TSR_RETURN_IF_ERROR(Forward(batch, &own_logits_));
    return std::span<const float>(own_logits_);
  }
  // The same step when only each row's greedy token is wanted: logit_rows.size() ids, each
  // ArgmaxRow of the row ForwardLogits would give, in storage the runner owns, valid until its
  // next step. A runner may pick on the device and download 4 bytes a row instead of a vocab of
  // floats (TextModel: TSR_OP_ARGMAX); by default ForwardLogits and ArgmaxRow on the host, so a
  // runner without the op gives the same ids.
  virtual StatusOr<std::span<const int32_t>> ForwardArgmax(const StepBatch& batch) {
    TSR_ASSIGN_OR_RETURN(std::span<const float> logits, ForwardLogits(batch));
    const size_t vocab = static_cast<size_t>(vocab_size());
    own_ids_.resize(batch.logit_rows.size());
    for (size_t r = 0; r < own_ids_.size(); ++r)
      own_ids_[r] = ArgmaxRow(logits.subspan(r * vocab, vocab));
    return std::span<const int32_t>(own_ids_);
  }
  virtual int64_t vocab_size() const = 0;
  // Longest sequence (prompt + generated) the model supports.
  virtual int64_t max_context() const = 0;
  // The paged KV cache the batch's slots and block tables refer to.
  virtual KvCache& kv_cache() = 0;

 private:
  std::vector<float> own_logits_;  // ForwardLogits' default storage
  std::vector<int32_t> own_ids_;   // ForwardArgmax's default storage
};

}  // namespace tessera

#endif  // TESSERA_CORE_MODEL_RUNNER_H_
