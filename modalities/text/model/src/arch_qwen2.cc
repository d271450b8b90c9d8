// Qwen2 / Qwen2.5: Llama with biases on the q/k/v projections (not on o_proj). When
// use_sliding_window is on, layers from max_window_layers up use the window.
#include "tessera/text/decoder.h"

namespace tessera::text {
namespace {

StatusOr<DecoderSpec> Qwen2Spec(const ModelConfig& c) {
  TSR_RETURN_IF_ERROR(RequireActivation(c, {"silu", "swish"}));
  TSR_ASSIGN_OR_RETURN(DecoderSpec s, LlamaLikeSpec(c));
  s.qkv_bias = true;
  s.o_bias = false;
  int64_t max_window_layers = c.raw.value("max_window_layers", s.n_layers);
  TSR_RETURN_IF_ERROR(ApplyLayerTypes(
      c, [&](int64_t l) { return c.sliding_window.has_value() && l >= max_window_layers; }, &s));
  return s;
}

}  // namespace

TSR_REGISTER_ARCHITECTURE("Qwen2ForCausalLM", Qwen2Spec);

}  // namespace tessera::text
