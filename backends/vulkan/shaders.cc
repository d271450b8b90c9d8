// The embedded SPIR-V modules (each *.inc is glslc -mfmt=c output: a braced list of words).
#include "backends/vulkan/shaders.h"

#include <array>

namespace tessera::vulkan {
namespace {

// clang-format off
const uint32_t kElementwise[] =
#include "elementwise.inc"
;
const uint32_t kRows[] =
#include "rows.inc"
;
const uint32_t kMatmulF32[] =
#include "matmul_f32.inc"
;
const uint32_t kMatmulF16[] =
#include "matmul_f16.inc"
;
const uint32_t kMatmulBf16[] =
#include "matmul_bf16.inc"
;
const uint32_t kMatmulQ8[] =
#include "matmul_q8.inc"
;
const uint32_t kMatmulQ4[] =
#include "matmul_q4.inc"
;
const uint32_t kGemmF32[] =
#include "gemm_f32.inc"
;
const uint32_t kGemmF16[] =
#include "gemm_f16.inc"
;
const uint32_t kGemmBf16[] =
#include "gemm_bf16.inc"
;
const uint32_t kGemmQ8[] =
#include "gemm_q8.inc"
;
const uint32_t kGemmQ4[] =
#include "gemm_q4.inc"
;
const uint32_t kAttention[] =
#include "attention.inc"
;
const uint32_t kAttentionTiled[] =
#include "attention_tiled.inc"
;
const uint32_t kConvert[] =
#include "convert.inc"
;
const uint32_t kQuant[] =
#include "quant.inc"
;
const uint32_t kRope[] =
#include "rope.inc"
;
const uint32_t kGetRows[] =
#include "get_rows.inc"
;
const uint32_t kKvWrite[] =
#include "kv_write.inc"
;
const uint32_t kConv[] =
#include "conv.inc"
;
const uint32_t kDecodeF32[] =
#include "decode_f32.inc"
;
const uint32_t kDecodeF16[] =
#include "decode_f16.inc"
;
const uint32_t kDecodeBf16[] =
#include "decode_bf16.inc"
;
const uint32_t kDecodeNormF32[] =
#include "decode_norm_f32.inc"
;
const uint32_t kDecodeNormF16[] =
#include "decode_norm_f16.inc"
;
const uint32_t kDecodeNormBf16[] =
#include "decode_norm_bf16.inc"
;
const uint32_t kDecodeSplitF32[] =
#include "decode_split_f32.inc"
;
const uint32_t kDecodeSplitF16[] =
#include "decode_split_f16.inc"
;
const uint32_t kDecodeSplitBf16[] =
#include "decode_split_bf16.inc"
;
const uint32_t kDecodeSplitNormF32[] =
#include "decode_split_norm_f32.inc"
;
const uint32_t kDecodeSplitNormF16[] =
#include "decode_split_norm_f16.inc"
;
const uint32_t kDecodeSplitNormBf16[] =
#include "decode_split_norm_bf16.inc"
;
const uint32_t kDecodeSkewF32[] =
#include "decode_skew_f32.inc"
;
const uint32_t kDecodeSkewF16[] =
#include "decode_skew_f16.inc"
;
const uint32_t kDecodeSkewBf16[] =
#include "decode_skew_bf16.inc"
;
const uint32_t kDecodeSkewNormF32[] =
#include "decode_skew_norm_f32.inc"
;
const uint32_t kDecodeSkewNormF16[] =
#include "decode_skew_norm_f16.inc"
;
const uint32_t kDecodeSkewNormBf16[] =
#include "decode_skew_norm_bf16.inc"
;
const uint32_t kDecodeSkewPairF32[] =
#include "decode_skew_pair_f32.inc"
;
const uint32_t kDecodeSkewPairF16[] =
#include "decode_skew_pair_f16.inc"
;
const uint32_t kDecodeSkewPairBf16[] =
#include "decode_skew_pair_bf16.inc"
;
const uint32_t kCoopSplit[] =
#include "coop_split.inc"
;
const uint32_t kL2Warm[] =
#include "l2_warm.inc"
;
const uint32_t kAttentionSplit[] =
#include "attention_split.inc"
;
const uint32_t kAttentionF32D64[] =
#include "attention_f32_d64.inc"
;
const uint32_t kAttentionF32D128[] =
#include "attention_f32_d128.inc"
;
const uint32_t kAttentionSplitF32D64[] =
#include "attention_split_f32_d64.inc"
;
const uint32_t kRopeKvF32[] =
#include "rope_kv_f32.inc"
;
const uint32_t kAttentionSplitF32D128[] =
#include "attention_split_f32_d128.inc"
;
const uint32_t kDecodeSkewPrefF32[] =
#include "decode_skew_pref_f32.inc"
;
const uint32_t kDecodeSkewPrefF16[] =
#include "decode_skew_pref_f16.inc"
;
const uint32_t kDecodeSkewPrefBf16[] =
#include "decode_skew_pref_bf16.inc"
;
const uint32_t kMultiF32[] =
#include "multi_f32.inc"
;
const uint32_t kMultiF16[] =
#include "multi_f16.inc"
;
const uint32_t kMultiBf16[] =
#include "multi_bf16.inc"
;
const uint32_t kMultiQ8[] =
#include "multi_q8.inc"
;
const uint32_t kMultiQ4[] =
#include "multi_q4.inc"
;
const uint32_t kAttentionKvNewF32D64[] =
#include "attention_kvnew_f32_d64.inc"
;
const uint32_t kAttentionKvNewF32D128[] =
#include "attention_kvnew_f32_d128.inc"
;
const uint32_t kAttentionSplitKvNewF32D64[] =
#include "attention_split_kvnew_f32_d64.inc"
;
const uint32_t kAttentionSplitKvNewF32D128[] =
#include "attention_split_kvnew_f32_d128.inc"
;
// SPV_KHR_cooperative_matrix + SPV_KHR_bfloat16 (tools/coop_spirv.py); only created on devices
// that offer both (plugin.cc).
const uint32_t kGemmCoopV1[] =
#include "gemm_coop_v1.inc"
;
const uint32_t kGemmCoopV2[] =
#include "gemm_coop_v2.inc"
;
const uint32_t kGemmCoopV3[] =
#include "gemm_coop_v3.inc"
;
const uint32_t kGemmCoopV4[] =
#include "gemm_coop_v4.inc"
;
const uint32_t kGemmCoopV5[] =
#include "gemm_coop_v5.inc"
;
const uint32_t kGemmCoopV6[] =
#include "gemm_coop_v6.inc"
;
const uint32_t kGemmCoopV7[] =
#include "gemm_coop_v7.inc"
;
const uint32_t kGemmCoopV8[] =
#include "gemm_coop_v8.inc"
;
const uint32_t kGemmCoopV9[] =
#include "gemm_coop_v9.inc"
;
const uint32_t kGemmCoopV10[] =
#include "gemm_coop_v10.inc"
;
const uint32_t kGemmCoopV11[] =
#include "gemm_coop_v11.inc"
;
const uint32_t kGemmCoopV12[] =
#include "gemm_coop_v12.inc"
;
const uint32_t kGemmCoopV13[] =
#include "gemm_coop_v13.inc"
;
const uint32_t kGemmCoopV14[] =
#include "gemm_coop_v14.inc"
;
const uint32_t kGemmCoopV15[] =
#include "gemm_coop_v15.inc"
;
const uint32_t kGemmCoopV16[] =
#include "gemm_coop_v16.inc"
;
const uint32_t kGemmCoopV17[] =
#include "gemm_coop_v17.inc"
;
const uint32_t kGemmCoopV18[] =
#include "gemm_coop_v18.inc"
;
const uint32_t kGemvCoopV1[] =
#include "gemv_coop_v1.inc"
;
const uint32_t kGemvCoopV2[] =
#include "gemv_coop_v2.inc"
;
const uint32_t kGemvCoopV3[] =
#include "gemv_coop_v3.inc"
;
const uint32_t kGemvCoopV4[] =
#include "gemv_coop_v4.inc"
;
const uint32_t kGemvCoopV5[] =
#include "gemv_coop_v5.inc"
;
const uint32_t kGemvCoopV6[] =
#include "gemv_coop_v6.inc"
;
const uint32_t kGemvCoopV7[] =
#include "gemv_coop_v7.inc"
;
const uint32_t kGemvCoopV8[] =
#include "gemv_coop_v8.inc"
;
// clang-format on

#define TSR_VK_MODULE(array, name)                \
  SpirvModule {                                   \
    array, sizeof(array) / sizeof(uint32_t), name \
  }

const std::array<SpirvModule, static_cast<size_t>(Shader::kCount)> kModules = {
    TSR_VK_MODULE(kElementwise, "elementwise.comp"),
    TSR_VK_MODULE(kRows, "rows.comp"),
    TSR_VK_MODULE(kMatmulF32, "matmul.comp (f32)"),
    TSR_VK_MODULE(kMatmulF16, "matmul.comp (f16)"),
    TSR_VK_MODULE(kMatmulBf16, "matmul.comp (bf16)"),
    TSR_VK_MODULE(kMatmulQ8, "matmul.comp (q8)"),
    TSR_VK_MODULE(kMatmulQ4, "matmul.comp (q4)"),
    TSR_VK_MODULE(kGemmF32, "matmul_gemm.comp (f32)"),
    TSR_VK_MODULE(kGemmF16, "matmul_gemm.comp (f16)"),
    TSR_VK_MODULE(kGemmBf16, "matmul_gemm.comp (bf16)"),
    TSR_VK_MODULE(kGemmQ8, "matmul_gemm.comp (q8)"),
    TSR_VK_MODULE(kGemmQ4, "matmul_gemm.comp (q4)"),
    TSR_VK_MODULE(kAttention, "attention.comp"),
    TSR_VK_MODULE(kAttentionTiled, "attention_tiled.comp"),
    TSR_VK_MODULE(kConvert, "convert.comp"),
    TSR_VK_MODULE(kQuant, "quant.comp"),
    TSR_VK_MODULE(kRope, "rope.comp"),
    TSR_VK_MODULE(kGetRows, "get_rows.comp"),
    TSR_VK_MODULE(kKvWrite, "kv_write.comp"),
    TSR_VK_MODULE(kConv, "conv.comp"),
    TSR_VK_MODULE(kDecodeF32, "matmul.comp decode (f32)"),
    TSR_VK_MODULE(kDecodeF16, "matmul.comp decode (f16)"),
    TSR_VK_MODULE(kDecodeBf16, "matmul.comp decode (bf16)"),
    TSR_VK_MODULE(kDecodeNormF32, "matmul.comp decode+norm (f32)"),
    TSR_VK_MODULE(kDecodeNormF16, "matmul.comp decode+norm (f16)"),
    TSR_VK_MODULE(kDecodeNormBf16, "matmul.comp decode+norm (bf16)"),
    TSR_VK_MODULE(kDecodeSplitF32, "matmul.comp split (f32)"),
    TSR_VK_MODULE(kDecodeSplitF16, "matmul.comp split (f16)"),
    TSR_VK_MODULE(kDecodeSplitBf16, "matmul.comp split (bf16)"),
    TSR_VK_MODULE(kDecodeSplitNormF32, "matmul.comp split+norm (f32)"),
    TSR_VK_MODULE(kDecodeSplitNormF16, "matmul.comp split+norm (f16)"),
    TSR_VK_MODULE(kDecodeSplitNormBf16, "matmul.comp split+norm (bf16)"),
    TSR_VK_MODULE(kDecodeSkewF32, "matmul.comp skew (f32)"),
    TSR_VK_MODULE(kDecodeSkewF16, "matmul.comp skew (f16)"),
    TSR_VK_MODULE(kDecodeSkewBf16, "matmul.comp skew (bf16)"),
    TSR_VK_MODULE(kDecodeSkewNormF32, "matmul.comp skew+norm (f32)"),
    TSR_VK_MODULE(kDecodeSkewNormF16, "matmul.comp skew+norm (f16)"),
    TSR_VK_MODULE(kDecodeSkewNormBf16, "matmul.comp skew+norm (bf16)"),
    TSR_VK_MODULE(kDecodeSkewPairF32, "matmul.comp skew+norm+pair (f32)"),
    TSR_VK_MODULE(kDecodeSkewPairF16, "matmul.comp skew+norm+pair (f16)"),
    TSR_VK_MODULE(kDecodeSkewPairBf16, "matmul.comp skew+norm+pair (bf16)"),
    TSR_VK_MODULE(kCoopSplit, "coop_split.comp"),
    TSR_VK_MODULE(kGemmCoopV1, "matmul_coop.comp v1 128x64"),
    TSR_VK_MODULE(kGemmCoopV2, "matmul_coop.comp v2 64x128"),
    TSR_VK_MODULE(kGemmCoopV3, "matmul_coop.comp v3 128x128 8w"),
    TSR_VK_MODULE(kGemmCoopV4, "matmul_coop.comp v4 128x128 8w'"),
    TSR_VK_MODULE(kGemmCoopV5, "matmul_coop.comp v5 64x128 bk64"),
    TSR_VK_MODULE(kGemmCoopV6, "matmul_coop.comp v6 64x64 db"),
    TSR_VK_MODULE(kGemmCoopV7, "matmul_coop.comp v7 64x256 8w"),
    TSR_VK_MODULE(kGemmCoopV8, "matmul_coop.comp v8 64x64"),
    TSR_VK_MODULE(kGemmCoopV9, "matmul_coop.comp v9 128x128 rp"),
    TSR_VK_MODULE(kGemmCoopV10, "matmul_coop.comp v10 128x256 bk16 rp"),
    TSR_VK_MODULE(kGemmCoopV11, "matmul_coop.comp v11 128x128 bk16 db rp"),
    TSR_VK_MODULE(kGemmCoopV12, "matmul_coop.comp v12 64x128 rp"),
    TSR_VK_MODULE(kGemmCoopV13, "matmul_coop.comp v13 128x128 8w rp"),
    TSR_VK_MODULE(kGemmCoopV14, "matmul_coop.comp v14 64x128 bk64 rp"),
    TSR_VK_MODULE(kGemmCoopV15, "matmul_coop.comp v15 64x64 bk64 rp"),
    TSR_VK_MODULE(kGemmCoopV16, "matmul_coop.comp v16 64x128 bk64 8w rp"),
    TSR_VK_MODULE(kGemmCoopV17, "matmul_coop.comp v17 64x128 bk64 8w rp pf"),
    TSR_VK_MODULE(kGemmCoopV18, "matmul_coop.comp v18 64x64 bk64 rp pf"),
    TSR_VK_MODULE(kGemvCoopV1, "matmul_coop_gemv.comp v1 m1 8sg"),
    TSR_VK_MODULE(kGemvCoopV2, "matmul_coop_gemv.comp v2 m1 4sg 32n"),
    TSR_VK_MODULE(kGemvCoopV3, "matmul_coop_gemv.comp v3 m1 4sg"),
    TSR_VK_MODULE(kGemvCoopV4, "matmul_coop_gemv.comp v4 m16"),
    TSR_VK_MODULE(kGemvCoopV5, "matmul_coop_gemv.comp v5 m32"),
    TSR_VK_MODULE(kGemvCoopV6, "matmul_coop_gemv.comp v6 m1 bk32"),
    TSR_VK_MODULE(kGemvCoopV7, "matmul_coop_gemv.comp v7 m16 bk32"),
    TSR_VK_MODULE(kGemvCoopV8, "matmul_coop_gemv.comp v8 m32 bk32"),
    TSR_VK_MODULE(kL2Warm, "l2_warm.comp"),
    TSR_VK_MODULE(kAttentionSplit, "attention.comp split"),
    TSR_VK_MODULE(kAttentionF32D64, "attention.comp f32 d64"),
    TSR_VK_MODULE(kAttentionF32D128, "attention.comp f32 d128"),
    TSR_VK_MODULE(kAttentionSplitF32D64, "attention.comp split f32 d64"),
    TSR_VK_MODULE(kAttentionSplitF32D128, "attention.comp split f32 d128"),
    TSR_VK_MODULE(kRopeKvF32, "rope.comp kv f32"),
    TSR_VK_MODULE(kDecodeSkewPrefF32, "matmul.comp skew+pref (f32)"),
    TSR_VK_MODULE(kDecodeSkewPrefF16, "matmul.comp skew+pref (f16)"),
    TSR_VK_MODULE(kDecodeSkewPrefBf16, "matmul.comp skew+pref (bf16)"),
    TSR_VK_MODULE(kMultiF32, "matmul.comp multi (f32)"),
    TSR_VK_MODULE(kMultiF16, "matmul.comp multi (f16)"),
    TSR_VK_MODULE(kMultiBf16, "matmul.comp multi (bf16)"),
    TSR_VK_MODULE(kMultiQ8, "matmul.comp multi (q8)"),
    TSR_VK_MODULE(kMultiQ4, "matmul.comp multi (q4)"),
    TSR_VK_MODULE(kAttentionKvNewF32D64, "attention.comp kvnew f32 d64"),
    TSR_VK_MODULE(kAttentionKvNewF32D128, "attention.comp kvnew f32 d128"),
    TSR_VK_MODULE(kAttentionSplitKvNewF32D64, "attention.comp split kvnew f32 d64"),
    TSR_VK_MODULE(kAttentionSplitKvNewF32D128, "attention.comp split kvnew f32 d128"),
};

}  // namespace

const SpirvModule& GetSpirv(Shader shader) {
  return kModules[static_cast<size_t>(shader)];
}

}  // namespace tessera::vulkan
