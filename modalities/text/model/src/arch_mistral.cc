// Mistral: Llama with a sliding attention window on every layer (config.sliding_window).
#include "tessera/text/decoder.h"

namespace tessera::text {
namespace {

StatusOr<DecoderSpec> MistralSpec(const ModelConfig& c) {
  TSR_RETURN_IF_ERROR(RequireActivation(c, {"silu", "swish"}));
  return LlamaLikeSpec(c);  // the window, when set, applies to all layers
}

}  // namespace

TSR_REGISTER_ARCHITECTURE("MistralForCausalLM", MistralSpec);

}  // namespace tessera::text
