// Decoder-only language models: one shared graph builder driven by a plain DecoderSpec, and one
// file per architecture (arch_*.cc) that fills the spec from config.json and registers itself.
//
// Adding an architecture = one new arch_<name>.cc with a TSR_REGISTER_ARCHITECTURE line.
#ifndef TESSERA_TEXT_DECODER_H_
#define TESSERA_TEXT_DECODER_H_

#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tessera/core/ir.h"
#include "tessera/core/model/checkpoint.h"
#include "tessera/core/model/hf_config.h"
#include "tessera/core/model/rope.h"
#include "tessera/core/status.h"

namespace tessera::text {

enum class Activation { kSilu, kGeluTanh };

// Per-layer attention variant.
struct LayerAttention {
  int32_t sliding_window = 0;  // 0 = global attention
  std::string rope;            // key into DecoderSpec::ropes
};

// Everything the graph builder needs; hyper-parameters come from config.json in one place (the
// architecture file). Weight names are HF names without the "model." prefix handling (the
// checkpoint resolves that); "{L}" is replaced by the layer index.
struct DecoderSpec {
  std::string architecture;
  int64_t hidden = 0, intermediate = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int64_t vocab = 0;
  int64_t max_context = 0;
  float norm_eps = 1e-6f;
  float norm_weight_offset = 0.f;  // Gemma's RMSNorm scales by (1 + w)
  float embed_scale = 1.f;         // Gemma multiplies embeddings by sqrt(hidden)
  float attn_scale = 0.f;          // 0 = 1/sqrt(head_dim)
  float attn_softcap = 0.f;        // Gemma 2
  float final_softcap = 0.f;       // Gemma 2
  Activation act = Activation::kSilu;
  bool qkv_bias = false;  // Qwen2 / attention_bias
  bool o_bias = false;
  bool mlp_bias = false;
  bool qk_norm = false;        // Qwen3, Gemma 3
  bool fused_qkv = false;      // Phi-3 qkv_proj
  bool fused_gate_up = false;  // Phi-3 gate_up_proj
  bool tie_embeddings = false;
  std::vector<LayerAttention> layers;        // n_layers entries
  std::map<std::string, RopeInvFreq> ropes;  // by LayerAttention::rope
  int32_t rotary_dim = 0;                    // 2 * inv_freq size

  // Weight names.
  std::string w_embed = "model.embed_tokens.weight";
  std::string w_final_norm = "model.norm.weight";
  std::string w_lm_head = "lm_head.weight";
  std::string layer_prefix = "model.layers.{L}.";
  std::string w_pre_attn_norm = "input_layernorm.weight";
  std::string w_post_attn_norm;  // Gemma's sandwich norm after attention ("" = none)
  std::string w_pre_mlp_norm = "post_attention_layernorm.weight";
  std::string w_post_mlp_norm;  // Gemma's sandwich norm after the MLP ("" = none)
  std::string w_q = "self_attn.q_proj", w_k = "self_attn.k_proj", w_v = "self_attn.v_proj";
  std::string w_qkv = "self_attn.qkv_proj", w_o = "self_attn.o_proj";
  std::string w_q_norm = "self_attn.q_norm.weight", w_k_norm = "self_attn.k_norm.weight";
  std::string w_gate = "mlp.gate_proj", w_up = "mlp.up_proj", w_gate_up = "mlp.gate_up_proj";
  std::string w_down = "mlp.down_proj";

  std::string LayerWeight(int64_t layer, const std::string& name) const;
};

// Builds a DecoderSpec from a parsed config.json. Registered per HF architecture name.
using SpecFactory = std::function<StatusOr<DecoderSpec>(const ModelConfig&)>;

class ArchitectureRegistry {
 public:
  static ArchitectureRegistry& Get();
  void Register(const std::string& hf_architecture, SpecFactory factory);
  // Finds the factory for the first of config.architectures we know; a clear error naming the
  // supported architectures otherwise.
  StatusOr<DecoderSpec> MakeSpec(const ModelConfig& config) const;
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, SpecFactory> factories_;
};

struct ArchitectureRegistration {
  ArchitectureRegistration(const char* name, SpecFactory factory) {
    ArchitectureRegistry::Get().Register(name, std::move(factory));
  }
};
#define TSR_REGISTER_ARCHITECTURE(name, factory) \
  static ::tessera::text::ArchitectureRegistration tsr_arch_registration_##factory(name, factory)

// Shared helpers for arch files.
StatusOr<RopeInvFreq> RopeFor(const ModelConfig& config, const std::string& layer_type,
                              int64_t head_dim);
// Fills the common Llama-family fields (sizes, eps, tie, rope for every layer, sliding window
// from config for every layer).
StatusOr<DecoderSpec> LlamaLikeSpec(const ModelConfig& config);

// InvalidArgument/Unimplemented unless config.hidden_act (when present) is one of `allowed`.
Status RequireActivation(const ModelConfig& config, std::initializer_list<const char*> allowed);
// Sets each layer's window and RoPE from config.layer_types when present, else from
// `default_is_sliding(layer)`; sliding layers use config.sliding_window and the
// "sliding_attention" RoPE, the others are global with the "full_attention" RoPE.
Status ApplyLayerTypes(const ModelConfig& config,
                       const std::function<bool(int64_t)>& default_is_sliding, DecoderSpec* spec);

// The shapes of one forward step over a batch of sequences.
struct StepShape {
  int32_t tokens = 0;      // T: new tokens over all sequences
  int32_t seqs = 0;        // S
  int32_t max_blocks = 0;  // columns of the block table
  int32_t logit_rows = 0;  // R: rows whose logits are wanted
  int32_t kv_blocks = 0;   // blocks in each layer's KV pool
  int32_t block_size = 0;
  // The graph's output: false = the logits [R, vocab] f32; true = each row's argmax [R, 1] i32
  // (TSR_OP_ARGMAX after the LM head, for steps whose every row is picked greedily).
  bool argmax = false;
  bool operator<(const StepShape& o) const;
};

// Names of the step inputs the graph declares.
struct StepInputs {
  TensorId tokens, positions, slots, block_table, kv_lens, cu_q, logit_rows;
  TensorId logits;           // [R, vocab] f32: the output unless shape.argmax
  TensorId ids = kNoTensor;  // [R, 1] i32: the output when shape.argmax
};

// Builds the forward graph of one step. Weights are declared under their checkpoint names (plus
// "rope.<key>" inv_freq tables); the KV pools are the state tensors of tessera/core/kv_cache.h.
// `weight_dtype(name)` gives each weight's dtype as it will be bound.
StatusOr<StepInputs> BuildDecoderGraph(const DecoderSpec& spec, const StepShape& shape,
                                       const std::function<DType(const std::string&)>& weight_dtype,
                                       Graph* graph);

}  // namespace tessera::text

#endif  // TESSERA_TEXT_DECODER_H_
