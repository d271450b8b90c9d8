// Llama 1/2/3.x (incl. llama3 RoPE scaling via rope_scaling / rope_parameters).
#include "tessera/text/decoder.h"

namespace tessera::text {
namespace {

StatusOr<DecoderSpec> LlamaSpec(const ModelConfig& c) {
  TSR_RETURN_IF_ERROR(RequireActivation(c, {"silu", "swish"}));
  return LlamaLikeSpec(c);
}

}  // namespace

TSR_REGISTER_ARCHITECTURE("LlamaForCausalLM", LlamaSpec);

}  // namespace tessera::text
