// The interface the core's batch scheduler drives models through. Modalities implement it
// (tessera::text::TextModel for decoder LMs); the core never includes modality headers.
#ifndef TESSERA_CORE_MODEL_RUNNER_H_
#define TESSERA_CORE_MODEL_RUNNER_H_

#include <cstdint>
#include <span>
#include <vector>

#include "tessera/core/kv_cache.h"
#include "tessera/core/status.h"

namespace tessera {

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
  virtual int64_t vocab_size() const = 0;
  // Longest sequence (prompt + generated) the model supports.
  virtual int64_t max_context() const = 0;
  // The paged KV cache the batch's slots and block tables refer to.
  virtual KvCache& kv_cache() = 0;

 private:
  std::vector<float> own_logits_;  // ForwardLogits' default storage
};

}  // namespace tessera

#endif  // TESSERA_CORE_MODEL_RUNNER_H_
