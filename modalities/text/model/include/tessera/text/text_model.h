// A loaded Hugging Face text model: checkpoint (mmap'd), config, decoder spec, tokenizer, chat
// template, generation defaults, and a forward pass over a batch of sequences on the engine's
// devices with a paged KV cache.
#ifndef TESSERA_TEXT_TEXT_MODEL_H_
#define TESSERA_TEXT_TEXT_MODEL_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tessera/core/device.h"
#include "tessera/core/executor.h"
#include "tessera/core/kv_cache.h"
#include "tessera/core/model/checkpoint.h"
#include "tessera/core/model/hf_config.h"
#include "tessera/core/model/quantize.h"
#include "tessera/core/model_runner.h"
#include "tessera/text/chat_template.h"
#include "tessera/text/decoder.h"
#include "tessera/text/tokenizer.h"

namespace tessera::text {

struct TextModelOptions {
  // Tokens of KV cache to reserve (all sequences together); 0 = the model's max context, capped
  // by kv_budget_bytes.
  int64_t kv_tokens = 0;
  int64_t kv_budget_bytes = 1LL << 30;
  int32_t kv_block_size = 16;
  // Weight quantization at load (docs/quantization.md): the decoder blocks' matrices become
  // Q8_B32 / Q4_B32, cached under quant_cache_dir; kNone keeps the checkpoint's own dtypes.
  QuantKind quantize = QuantKind::kNone;
  // Also quantize the LM head (with tied embeddings: the embedding table too), always to Q8
  // (also in q4 mode): measured, it adds little KL for a large share of the bytes of small
  // models (docs/quantization.md).
  bool quantize_head = true;
  // Folder of quantized weight files; empty = DefaultCacheRoot(getenv) + "/quant".
  std::string quant_cache_dir;
};

using ::tessera::StepBatch;

class TextModel final : public ModelRunner {
 public:
  // Loads `dir` (a Hugging Face model folder) to run on `devices` (priority order, not owned).
  static StatusOr<std::unique_ptr<TextModel>> Load(const std::string& dir,
                                                   std::vector<Device*> devices,
                                                   const TextModelOptions& options = {});
  ~TextModel();

  const DecoderSpec& spec() const { return spec_; }
  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const ChatTemplate* chat_template() const { return chat_template_ ? &*chat_template_ : nullptr; }
  const GenerationConfig& generation_config() const { return generation_; }
  // End-of-sequence ids from generation_config.json, else config.json, else the tokenizer's.
  const std::vector<int32_t>& eos_ids() const { return eos_ids_; }
  KvCache& kv_cache() override { return *kv_; }
  int64_t vocab_size() const override { return spec_.vocab; }
  int64_t max_context() const override;
  const std::string& dir() const { return dir_; }
  // Bytes bound for weight `name` (quantized size when quantized); 0 when not bound.
  uint64_t WeightBytes(const std::string& name) const;
  // The quantized weights, or nullptr when the model runs unquantized.
  const QuantizedWeights* quantized() const { return quantized_.get(); }

  // Runs one step; `logits` gets logit_rows.size() rows of vocab floats.
  Status Forward(const StepBatch& batch, std::vector<float>* logits) override;
  // The same into a host buffer kept between steps: page-locked through the logits device's
  // host_alloc (plugin ABI 1.2) where it has one, so the download is one DMA copy;
  // TESSERA_PINNED_LOGITS=0 keeps it in ordinary memory (the A/B knob).
  StatusOr<std::span<const float>> ForwardLogits(const StepBatch& batch) override;
  // Each logit row's argmax on the device (TSR_OP_ARGMAX after the LM head; ids downloaded into
  // a page-locked buffer like the logits). When the devices can not run the op (the graph does
  // not prepare) the model falls back, once and for good, to ModelRunner's ForwardLogits + host
  // argmax: the same ids, only slower. TESSERA_DEVICE_ARGMAX=0 (read at Load) forces that path.
  StatusOr<std::span<const int32_t>> ForwardArgmax(const StepBatch& batch) override;
  // ForwardArgmax steps that took the host fallback (tests, diagnostics).
  int64_t argmax_fallback_steps() const { return argmax_fallback_steps_; }

 private:
  TextModel() = default;
  Status BindWeights();
  // The quantized set holding `name`, or nullptr.
  const QuantizedWeights* QuantizedOf(const std::string& name) const;
  Status QuantizeWeights(const TextModelOptions& options);
  struct CachedStep;
  // The batch's step shape (argmax: the graph outputs each row's argmax); InvalidArgument /
  // OutOfRange for an inconsistent batch.
  StatusOr<StepShape> ShapeOf(const StepBatch& b, bool argmax) const;
  // The shape's prepared graph, built on first use and kept in steps_ (LRU-bounded).
  StatusOr<CachedStep*> PrepareStep(const StepShape& shape);
  // Uploads the batch, runs the step and downloads its one output (`bytes` bytes) into `out`.
  Status RunPrepared(CachedStep& step, const StepBatch& b, void* out, size_t bytes);
  // `buf` grown to at least `bytes`: page-locked where a device offers host memory.
  StatusOr<void*> HostOutput(HostBuffer* buf, size_t bytes);
  DType WeightDType(const std::string& name) const;

  std::string dir_;
  ModelConfig config_;
  DecoderSpec spec_;
  GenerationConfig generation_;
  std::vector<int32_t> eos_ids_;
  std::unique_ptr<Checkpoint> checkpoint_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::optional<ChatTemplate> chat_template_;
  std::unique_ptr<ExecutionContext> ctx_;
  std::unique_ptr<KvCache> kv_;
  // f32 copies of small weights (norms, biases) and RoPE tables, bound by name.
  std::map<std::string, std::vector<float>> f32_weights_;
  std::map<std::string, DType> bound_dtypes_;
  std::map<std::string, uint64_t> bound_bytes_;
  std::unique_ptr<QuantizedWeights> quantized_;             // mapped cache file of the layers
  std::unique_ptr<QuantizedWeights> quantized_head_;        // the LM head / tied embedding, Q8
  std::map<StepShape, std::unique_ptr<CachedStep>> steps_;  // LRU-bounded, see text_model.cc
  uint64_t step_clock_ = 0;
  bool argmax_unavailable_ = false;  // an argmax graph failed to prepare: use the fallback
  int64_t argmax_fallback_steps_ = 0;
  // ForwardLogits' / ForwardArgmax's buffers; declared last: freed before the devices.
  HostBuffer logits_host_;
  HostBuffer ids_host_;
};

}  // namespace tessera::text

#endif  // TESSERA_TEXT_TEXT_MODEL_H_
