// Gemma 2 and Gemma 3 (text): (1 + w) RMSNorm, embeddings scaled by sqrt(hidden), GeGLU with
// tanh-approximated GELU, sandwich norms around attention and MLP, query_pre_attn_scalar,
// alternating local (sliding) / global layers. Gemma 2 adds attention and final-logit
// soft-capping; Gemma 3 adds per-head q/k norms and a separate RoPE base for local layers.
#include <cmath>

#include "tessera/text/decoder.h"

namespace tessera::text {
namespace {

StatusOr<DecoderSpec> GemmaCommon(const ModelConfig& c) {
  TSR_RETURN_IF_ERROR(RequireActivation(c, {"gelu_pytorch_tanh", "gelu_tanh"}));
  TSR_ASSIGN_OR_RETURN(DecoderSpec s, LlamaLikeSpec(c));
  s.norm_weight_offset = 1.f;
  s.embed_scale = std::sqrt(static_cast<float>(s.hidden));
  s.act = Activation::kGeluTanh;
  // Gemma's config class ties embeddings unless told otherwise.
  s.tie_embeddings = c.raw.value("tie_word_embeddings", true);
  double scalar = c.raw.value("query_pre_attn_scalar", static_cast<double>(s.head_dim));
  s.attn_scale = static_cast<float>(1.0 / std::sqrt(scalar));
  s.w_post_attn_norm = "post_attention_layernorm.weight";
  s.w_pre_mlp_norm = "pre_feedforward_layernorm.weight";
  s.w_post_mlp_norm = "post_feedforward_layernorm.weight";
  auto cap = [&](const char* key) {
    const auto& v = c.raw.contains("text_config") ? c.raw["text_config"] : c.raw;
    return v.contains(key) && v[key].is_number() ? v[key].get<float>() : 0.f;
  };
  s.attn_softcap = cap("attn_logit_softcapping");
  s.final_softcap = cap("final_logit_softcapping");
  return s;
}

StatusOr<DecoderSpec> Gemma2Spec(const ModelConfig& c) {
  TSR_ASSIGN_OR_RETURN(DecoderSpec s, GemmaCommon(c));
  TSR_RETURN_IF_ERROR(ApplyLayerTypes(
      c, [](int64_t l) { return (l + 1) % 2 != 0; }, &s));
  return s;
}

StatusOr<DecoderSpec> Gemma3Spec(const ModelConfig& c) {
  TSR_ASSIGN_OR_RETURN(DecoderSpec s, GemmaCommon(c));
  s.qk_norm = true;
  const auto& raw = c.raw.contains("text_config") ? c.raw["text_config"] : c.raw;
  int64_t pattern = raw.value("sliding_window_pattern", 6);
  TSR_RETURN_IF_ERROR(ApplyLayerTypes(
      c, [&](int64_t l) { return (l + 1) % pattern != 0; }, &s));
  return s;
}

}  // namespace

TSR_REGISTER_ARCHITECTURE("Gemma2ForCausalLM", Gemma2Spec);
TSR_REGISTER_ARCHITECTURE("Gemma3ForCausalLM", Gemma3Spec);

}  // namespace tessera::text
