#version 460
// L2 warm-up (plugin.cc MaybeWarmL2; TESSERA_VULKAN_L2_WARM): a hint, not an op. Reads one
// 32-bit word every `stride` bytes of up to four byte ranges (the weights of the next decode
// GEMV(s)), so the GPU's L2 holds those lines when the GEMV, recorded after the next barrier,
// reads them. It runs beside a dispatch that leaves DRAM idle (decode attention), with no
// barrier between them. It writes nothing any node reads: the words are folded into one value
// a workgroup, stored to the scratch `sink` only when it equals `magic` (which keeps the loads
// from being optimized away: the compiler cannot know the condition is all but impossible).
#include "common.glsl"

layout(local_size_x = 256) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t err;
  uint64_t base[4];   // 4-byte aligned start of each range
  uint64_t words[4];  // words of range j: one at base[j] + i * stride, i < words[j]
  uint64_t sink;      // scratch words nobody reads (sink_mask + 1 of them)
  uint n, stride, sink_mask, magic;
};

layout(buffer_reference, std430, buffer_reference_align = 4) readonly buffer RoU32 { uint v; };

#define UNROLL 8

void main() {
  Params P = Params(pc.params);
  const uint64_t threads = uint64_t(gl_NumWorkGroups.x) * uint64_t(gl_NumWorkGroups.y) * 256ul;
  const uint64_t t = GroupIndex() * 256ul + uint64_t(gl_LocalInvocationID.x);
  uint acc = 0u;
  for (uint j = 0u; j < P.n; ++j) {
    const uint64_t base = P.base[j], words = P.words[j], stride = uint64_t(P.stride);
    // UNROLL independent loads in flight a thread, each step coalesced across the subgroup.
    for (uint64_t i0 = t; i0 < words; i0 += threads * UNROLL) {
      uint v[UNROLL];
      [[unroll]] for (int u = 0; u < UNROLL; ++u) {
        const uint64_t i = i0 + uint64_t(u) * threads;
        v[u] = i < words ? RoU32(base + i * stride).v : 0u;
      }
      [[unroll]] for (int u = 0; u < UNROLL; ++u) acc ^= v[u];
    }
  }
  acc = subgroupXor(acc);
  if (acc == P.magic && subgroupElect())
    RefU32(P.sink + 4ul * (GroupIndex() & uint64_t(P.sink_mask))).v = acc;
}
