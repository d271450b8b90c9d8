// Qwen3 (dense): per-head RMSNorm on q and k before RoPE, explicit head_dim, optional
// attention_bias, Qwen2's sliding-window rule.
#include "tessera/text/decoder.h"

namespace tessera::text {
namespace {

StatusOr<DecoderSpec> Qwen3Spec(const ModelConfig& c) {
  TSR_RETURN_IF_ERROR(RequireActivation(c, {"silu", "swish"}));
  TSR_ASSIGN_OR_RETURN(DecoderSpec s, LlamaLikeSpec(c));
  s.qk_norm = true;
  int64_t max_window_layers = c.raw.value("max_window_layers", s.n_layers);
  TSR_RETURN_IF_ERROR(ApplyLayerTypes(
      c, [&](int64_t l) { return c.sliding_window.has_value() && l >= max_window_layers; }, &s));
  return s;
}

}  // namespace

TSR_REGISTER_ARCHITECTURE("Qwen3ForCausalLM", Qwen3Spec);

}  // namespace tessera::text
