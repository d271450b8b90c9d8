// Hugging Face config.json / generation_config.json -> plain structs, filled in one place.
//
// Both RoPE config styles found on the Hub are read:
//   * transformers v4: top-level "rope_theta" (+ "partial_rotary_factor") and "rope_scaling"
//     {"type" | "rope_type": ..., "factor": ..., ...};
//   * transformers v5: "rope_parameters" {"rope_type", "rope_theta", ...}, or one such dict per
//     attention layer type, e.g. Gemma 3's {"full_attention": {...}, "sliding_attention": {...}}.
// Gemma 3's v4 form (rope_theta + rope_local_base_freq + rope_scaling) is normalised to the
// per-layer-type form, as transformers does.
#ifndef TESSERA_CORE_MODEL_HF_CONFIG_H_
#define TESSERA_CORE_MODEL_HF_CONFIG_H_

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/core/status.h"

namespace tessera {

// One RoPE parameterisation (transformers' RopeParameters plus the few config-level values the
// inverse-frequency functions read). Optional fields are absent in the config when empty; their
// defaults are applied by ComputeRopeInvFreq exactly as transformers applies them.
struct RopeConfig {
  // "default", "linear", "dynamic", "yarn", "longrope", "llama3", "proportional", or whatever
  // the config says (unknown types parse; ComputeRopeInvFreq rejects them). Aliases are
  // normalised: "su" -> "longrope" (early Phi-3), "mrope" -> "default" (Qwen2-VL).
  std::string type = "default";
  double theta = 10000.0;
  double partial_rotary_factor = 1.0;
  std::optional<double> factor;
  std::optional<double> attention_factor;
  std::optional<double> low_freq_factor;   // llama3
  std::optional<double> high_freq_factor;  // llama3
  // llama3 / yarn / longrope: the pretraining context. Filled from the config-level key (which
  // wins, as for Phi-3), the rope dict, or max_position_embeddings, in that order.
  std::optional<int64_t> original_max_position_embeddings;
  std::optional<double> beta_fast;       // yarn; absent or 0 -> 32
  std::optional<double> beta_slow;       // yarn; absent or 0 -> 1
  std::optional<double> mscale;          // yarn (DeepSeek)
  std::optional<double> mscale_all_dim;  // yarn (DeepSeek)
  bool truncate = true;                  // yarn
  std::vector<double> short_factor;      // longrope, (rotary_dim / 2)
  std::vector<double> long_factor;       // longrope, (rotary_dim / 2)
  std::vector<int64_t> mrope_section;    // multimodal RoPE split (t, h, w), Qwen2/2.5-VL, Qwen3-VL
  bool mrope_interleaved = false;
  // Copied from the model config: dynamic, yarn and longrope need it.
  int64_t max_position_embeddings = 0;
};

struct ModelConfig {
  std::vector<std::string> architectures;
  std::string model_type;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // defaults to num_attention_heads
  int64_t head_dim = 0;             // explicit, else hidden_size / num_attention_heads
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;  // 0 when the config has none
  std::optional<double> rms_norm_eps;
  std::optional<double> layer_norm_eps;  // "layer_norm_eps" or "layer_norm_epsilon"
  std::string hidden_act;  // "hidden_act" or Gemma's "hidden_activation"; empty when absent
  // Absent -> false (the LlamaConfig/Qwen/Mistral default; Gemma's class defaults to true, so
  // family code should check raw.contains("tie_word_embeddings") where it matters).
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  // nullopt when the config has none, it is null, or "use_sliding_window" is false (Qwen2).
  std::optional<int64_t> sliding_window;
  std::string dtype;  // "torch_dtype" (v4) or "dtype" (v5), e.g. "bfloat16"; empty if absent
  std::vector<int64_t> bos_token_ids;
  std::vector<int64_t> eos_token_ids;  // may be several (Llama 3.1: 128001, 128008, 128009)
  std::vector<int64_t> pad_token_ids;
  std::vector<std::string> layer_types;  // e.g. "sliding_attention" per layer; may be empty

  RopeConfig rope;  // the RoPE of full-attention layers (the only one for most models)
  // Per layer type when the config distinguishes them (Gemma 3); empty otherwise.
  std::map<std::string, RopeConfig> rope_by_layer_type;

  // True when the decoder fields came from a nested "text_config" (multimodal checkpoints).
  bool from_text_config = false;
  nlohmann::json raw;  // the whole config.json, for family-specific keys

  // The RoPE for `layer_type` if the config has a per-type entry, else `rope`.
  const RopeConfig& RopeFor(std::string_view layer_type) const;
};

// Parses a config.json document. Errors (InvalidArgument) name the missing or mistyped key.
// Required: hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, vocab_size.
// Multimodal configs whose decoder lives in "text_config" are read from there.
StatusOr<ModelConfig> ParseModelConfig(const nlohmann::json& config);
// As above, with an architecture's config-class defaults under the decoder's keys: some Hub
// configs omit keys their transformers class defaults (Gemma 3 4B's text_config has no
// num_attention_heads). `family_defaults` is an object; a key absent or null in the config takes
// its value from there. Architecture code owns its defaults and passes them in.
StatusOr<ModelConfig> ParseModelConfig(const nlohmann::json& config,
                                       const nlohmann::json& family_defaults);
StatusOr<ModelConfig> ParseModelConfigText(std::string_view text);
// Reads `path`, or `path`/config.json when `path` is a directory.
StatusOr<ModelConfig> LoadModelConfig(const std::string& path);

// generation_config.json. Every field is optional; a null value counts as absent.
struct GenerationConfig {
  std::vector<int64_t> eos_token_ids;
  std::optional<int64_t> bos_token_id;
  std::optional<int64_t> pad_token_id;
  std::optional<bool> do_sample;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> top_k;
  std::optional<double> min_p;
  std::optional<double> repetition_penalty;
  std::optional<int64_t> max_new_tokens;
  std::optional<int64_t> max_length;
};

StatusOr<GenerationConfig> ParseGenerationConfig(const nlohmann::json& config);
StatusOr<GenerationConfig> ParseGenerationConfigText(std::string_view text);
// Reads `path`, or `path`/generation_config.json when `path` is a directory. NotFound when the
// file does not exist (it is optional in a model directory).
StatusOr<GenerationConfig> LoadGenerationConfig(const std::string& path);

}  // namespace tessera

#endif  // TESSERA_CORE_MODEL_HF_CONFIG_H_
