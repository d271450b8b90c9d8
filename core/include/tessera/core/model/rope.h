// RoPE inverse frequencies, matching transformers' modeling_rope_utils.py ROPE_INIT_FUNCTIONS.
#ifndef TESSERA_CORE_MODEL_ROPE_H_
#define TESSERA_CORE_MODEL_ROPE_H_

#include <cstdint>
#include <vector>

#include "tessera/core/model/hf_config.h"
#include "tessera/core/status.h"

namespace tessera {

struct RopeInvFreq {
  // (rotary_dim / 2): angle of pair i at position p is p * inv_freq[i]. rotary_dim is
  // int(head_dim * partial_rotary_factor), except for "proportional" (always head_dim, with
  // zeros for the non-rotated pairs).
  std::vector<float> inv_freq;
  // Multiplies cos and sin (yarn, longrope); 1 for the other types.
  float attention_scaling = 1.0f;
};

// Computes the inverse frequencies for `rope` and a head of `head_dim`, reproducing
// transformers' float32 arithmetic step by step (each tensor op rounded to float32, the
// Python-scalar parts in double) so values match torch to ~1 ulp; torch's vectorised powf may
// differ from the correctly rounded pow used here by 1 ulp (~1e-7 relative).
//
// Types: default, linear, dynamic, yarn, longrope, llama3, proportional.
// `seq_len` matters only to "dynamic" (NTK base grows past max_position_embeddings; at or below
// it the result equals "default") and "longrope" (long_factor past
// original_max_position_embeddings, else short_factor). 0 means "at initialisation", i.e. what
// transformers computes when it builds the rotary module.
// Errors: Unimplemented for an unknown type; InvalidArgument for inconsistent parameters.
// Thread-safe (pure function).
StatusOr<RopeInvFreq> ComputeRopeInvFreq(const RopeConfig& rope, int head_dim, int64_t seq_len = 0);

}  // namespace tessera

#endif  // TESSERA_CORE_MODEL_ROPE_H_
