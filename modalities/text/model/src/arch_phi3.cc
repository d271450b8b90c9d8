// Phi-3 / Phi-3.5 / Phi-4-mini: fused qkv_proj and gate_up_proj; RoPE may be longrope ("su").
#include "tessera/text/decoder.h"

namespace tessera::text {
namespace {

StatusOr<DecoderSpec> Phi3Spec(const ModelConfig& c) {
  TSR_RETURN_IF_ERROR(RequireActivation(c, {"silu", "swish"}));
  TSR_ASSIGN_OR_RETURN(DecoderSpec s, LlamaLikeSpec(c));
  s.fused_qkv = true;
  s.fused_gate_up = true;
  return s;
}

}  // namespace

TSR_REGISTER_ARCHITECTURE("Phi3ForCausalLM", Phi3Spec);

}  // namespace tessera::text
