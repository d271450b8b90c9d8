// The Vulkan backend's host-side op layer: the parameter blocks each compute shader reads (C
// mirrors of the GLSL blocks in shaders/*.comp, std430 = C layout for these scalar members),
// the recorder interface runners dispatch through, and the runner registry.
//
// Tensors are addressed by 64-bit device addresses (VK_KHR_buffer_device_address): a TensorRef's
// `data` holds the device address of element [0, ..., 0], exactly as the CUDA backend's holds a
// device pointer, so the shared helpers (MatrixOffset, ConcatParts) work unchanged.
#ifndef TESSERA_BACKENDS_VULKAN_OPS_H_
#define TESSERA_BACKENDS_VULKAN_OPS_H_

#include <cstdint>
#include <string>

#include "tessera/backend/node.h"
#include "tessera/backend/tensor.h"
#include "tessera/core/status.h"
#include "tessera/plugin_api.h"

namespace tessera::vulkan {

using backend::TensorRef;

// One SPIR-V module each (shaders/*.comp; the matmuls once per weight dtype).
enum class Shader : int {
  kElementwise,
  kRows,
  kMatmulF32,
  kMatmulF16,
  kMatmulBf16,
  kMatmulQ8,
  kMatmulQ4,
  kGemmF32,  // the tiled GEMM for many rows (matmul_gemm.comp), same dtype order as kMatmul*
  kGemmF16,
  kGemmBf16,
  kGemmQ8,
  kGemmQ4,
  kAttention,
  kAttentionTiled,  // prefill rows (attention_tiled.comp)
  kConvert,
  kQuant,
  kRope,
  kGetRows,
  kKvWrite,
  kConv,
  kDecodeF32,  // matmul.comp's coalesced decode GEMV alone (DECODE=1), f32/f16/bf16 weights
  kDecodeF16,
  kDecodeBf16,
  kDecodeNormF32,  // the same with the RMS_NORM prologue (NORM=1)
  kDecodeNormF16,
  kDecodeNormBf16,
  kDecodeSplitF32,  // the split decode GEMV (DECODE=2), then with the RMS_NORM prologue
  kDecodeSplitF16,
  kDecodeSplitBf16,
  kDecodeSplitNormF32,
  kDecodeSplitNormF16,
  kDecodeSplitNormBf16,
  kDecodeSkewF32,  // the skewed coalesced decode GEMV (DECODE=3), then with the RMS_NORM prologue
  kDecodeSkewF16,
  kDecodeSkewBf16,
  kDecodeSkewNormF32,
  kDecodeSkewNormF16,
  kDecodeSkewNormBf16,
  kDecodeSkewPairF32,  // the same with the paired SWIGLU / q RoPE epilogues (PAIRED=1)
  kDecodeSkewPairF16,
  kDecodeSkewPairBf16,
  kCoopSplit,   // x -> three bf16 planes for the cooperative-matrix GEMM (coop_split.comp)
  kGemmCoopV1,  // the cooperative-matrix GEMM, bf16 weights (matmul_coop.comp, KHR + bf16),
  kGemmCoopV2,  // one module per tile variant (run_ops.cc kCoopKernels)
  kGemmCoopV3,
  kGemmCoopV4,
  kGemmCoopV5,
  kGemmCoopV6,
  kGemmCoopV7,
  kGemmCoopV8,
  kGemmCoopV9,
  kGemmCoopV10,
  kGemmCoopV11,
  kGemmCoopV12,
  kGemmCoopV13,
  kGemmCoopV14,
  kGemmCoopV15,
  kGemmCoopV16,
  kGemmCoopV17,  // vk-coop3: COOP_PF (CMakeLists.txt)
  kGemmCoopV18,
  kGemvCoopV1,  // the cooperative-matrix GEMV, 1..32 rows (matmul_coop_gemv.comp; vk-coop13),
  kGemvCoopV2,  // one module per variant (run_ops.cc kCoopGemvs)
  kGemvCoopV3,
  kGemvCoopV4,
  kGemvCoopV5,
  kGemvCoopV6,
  kGemvCoopV7,
  kGemvCoopV8,
  kL2Warm,  // reads the next decode GEMV's weights into L2 (l2_warm.comp; plugin.cc MaybeWarmL2)
  kAttentionSplit,   // attention.comp's rows over attn_parts workgroups each (SPLIT=1)
  kAttentionF32D64,  // attention.comp for f32 K/V, D = Dv = 64 / 128 (FIXD; same bits; vk20-attn)
  kAttentionF32D128,
  kAttentionSplitF32D64,  // and their SPLIT twins
  kAttentionSplitF32D128,
  kRopeKvF32,  // rope.comp's kv_fused dispatch for f32 caches, 32-bit indices (KVF32; vk20-rope)
  kDecodeSkewPrefF32,  // the plain skewed module with PREF=1 (matmul.comp PREF_MODE: the next
  kDecodeSkewPrefF16,  // step's loads before this step's math; vk23-pref, vk24-pref)
  kDecodeSkewPrefBf16,
  kMultiF32,  // matmul.comp DECODE 4: MultiRows (few x rows; run_ops.cc UseMultiRows)
  kMultiF16,
  kMultiBf16,
  kMultiQ8,
  kMultiQ4,
  kAttentionKvNewF32D64,   // the fixed modules with the k RoPE + KV_WRITEs folded in (KVNEW;
  kAttentionKvNewF32D128,  // vk27-kv; run_ops.cc RunRopeKvAttention), and their SPLIT twins
  kAttentionSplitKvNewF32D64,
  kAttentionSplitKvNewF32D128,
  kCount
};

// Up to three tensors walked in lock-step over a reference shape (GLSL `Walk`).
struct WalkP {
  int64_t ne[TSR_MAX_DIMS] = {};
  int64_t s[3][TSR_MAX_DIMS] = {};  // byte strides of tensor k along reference dim d
  int64_t numel = 0;
  int32_t ndim = 0, pad = 0;
};
static_assert(sizeof(WalkP) == 208, "WalkP must match the GLSL Walk");

// Every block starts with the device error word's address (filled by the recorder).
struct EltP {
  uint64_t err = 0;
  uint64_t a = 0, b = 0, out = 0;
  int64_t b_period = 0;
  int32_t op = 0, contiguous = 0;
  float p0 = 0, p1 = 0;
  WalkP walk;
};

struct RowP {
  uint64_t err = 0;
  uint64_t x = 0, out = 0, mask = 0, weight = 0, bias = 0;
  int64_t n = 0, sx = 0, so = 0, sm = 0;
  int32_t op = 0, pad = 0;
  float eps = 0, woff = 0, scale = 1, pad2 = 0;
  WalkP rows;
};

struct MatmulP {
  uint64_t err = 0;
  uint64_t x = 0, w = 0, bias = 0, out = 0;
  int64_t M = 0, K = 0, N = 0;
  int64_t x_row = 0, w_row = 0, out_row = 0, out_col = 0;  // bytes
  int32_t vec = 0, rows_per_group = 1;  // vec: bit 0 x, bit 1 w allow 16-byte loads
  // A decode group (matmul.comp DecodeRows; RunDecodeGroup): part j >= 1 is entry j - 1 of the
  // g* arrays and owns the workgroups from group_start[j] on.
  int32_t n_parts = 1, decode_rows = 0;  // decode_rows: DecodeRows' weight rows a subgroup
  int32_t group_start[4] = {};
  uint64_t gw[2] = {}, gbias[2] = {}, gout[2] = {};
  int64_t gN[2] = {}, gw_row[2] = {}, gout_col[2] = {};
  // The residual ADD fused into a lone decode GEMV (plugin.cc ExecuteDecodeResidual): also
  // res_out[n] = out[n] + res[n] (f32, contiguous); res = 0 when absent.
  uint64_t res = 0, res_out = 0;
  // The RMS_NORM before a decode GEMV / group fused into it (plugin.cc ExecuteNormGemv): x is
  // computed from the raw row norm_x as rows.comp would, and norm_out receives it; 0: absent.
  uint64_t norm_x = 0, norm_w = 0, norm_out = 0;
  float norm_eps = 0, norm_woff = 0;
  // A lone decode GEMV split over workgroups (matmul.comp DecodeRowsSkewed, run_ops.cc
  // SplitAcrossGroups): xsplit pieces of xs_chunks chunks; partials at xs_part, counters at
  // xs_count; xsplit <= 1: not split.
  uint64_t xs_part = 0, xs_count = 0;
  int32_t xsplit = 0, xs_chunks = 0;
  // Paired epilogues of a norm-fused decode group (plugin.cc ExecuteNormGemv; matmul.comp
  // PairedGroup): the SWIGLU after gate/up (glu_out; part 0 = gate, part 1 = up) or the q ROPE
  // after q/k/v (rope_*; part 0 = q, neox pairs of rope_D-row heads, rope_R = rope_D). A part
  // with out = 0 is not stored (the epilogue's output takes its memory). 0: absent.
  uint64_t glu_out = 0, rope_out = 0, rope_pos = 0, rope_freq = 0;
  int64_t rope_o_head = 0, rope_o_el = 0;
  int32_t rope_D = 0, rope_R = 0;
  float rope_scale = 1;
  int32_t kpieces = 0;  // > 1: subgroups split K within the workgroup (run_ops.cc)
  // The norm-fused decode group's workgroup count when the dispatch launches fewer, persistent
  // ones (matmul.comp PERSIST; run_ops.cc RunDecodeGroup); 0: as launched.
  int32_t ptotal = 0;
};
static_assert(sizeof(MatmulP) == 368, "MatmulP must match matmul_common.glsl's Params");

// coop_common.glsl's CoopParams: the cooperative-matrix GEMM and its split pre-pass.
struct CoopP {
  uint64_t err = 0;
  uint64_t x = 0, planes = 0, w = 0, bias = 0, out = 0;
  int64_t M = 0, K = 0, N = 0;
  int64_t Mp = 0, Kp = 0;  // the planes: Mp x Kp bf16 each, zero past M and K
  int64_t x_row = 0, w_row = 0, out_row = 0, out_col = 0;  // x/out bytes, w_row elements
};
static_assert(sizeof(CoopP) == 120, "CoopP must match coop_common.glsl's CoopParams");

struct AttnP {
  uint64_t err = 0;
  uint64_t q = 0, out = 0, k = 0, v = 0, cu_q = 0, cu_k = 0, table = 0, kv_lens = 0;
  int64_t q_tok = 0, q_head = 0, o_tok = 0, o_head = 0;
  int64_t k_tok = 0, k_head = 0, k_block = 0, v_tok = 0, v_head = 0, v_block = 0;
  int64_t table_row = 0, max_blocks = 0, block_size = 1, n_blocks = 0, n_kv_rows = 0;
  int64_t T = 0, Hq = 0, Hkv = 0, D = 0, Dv = 0, S = 0, window = 0;
  // route: attention_tiled.comp runs the rows of sequences with q_len >= 2 (attention.comp skips).
  int32_t kv_dtype = 0, causal = 0, paged = 0, route = 0;
  float scale = 1, softcap = 0;
  // attention_split: the SplitScratch partials (each (query, head)'s NSG (m, l, acc[Dv])) and
  // counters (one uint32 a (query, head)).
  uint64_t part = 0, count = 0;
};
static_assert(sizeof(AttnP) == 288, "attention.comp's ATTN_PARAMS_BYTES");
// attention.comp's KvNew block after AttnP (KVNEW modules): a decode step's k RoPE and KV_WRITEs
// (run_ops.cc RunRopeKvAttention).
struct KvNewP {
  uint64_t x = 0, rope_out = 0, pos = 0, inv_freq = 0, slots = 0, vrows = 0;
  int64_t x_head = 0, o_head = 0, v_head = 0, n_slots = 0;
  float attn_scale = 1;
  int32_t pad = 0;
};
constexpr int64_t kAttnMaxHeadDim = 256;
constexpr int64_t kAttnTiledMaxHeadDim = 128;  // attention_tiled.comp's MAXD
constexpr int64_t kAttnTiledRows = 32;         // its BQ: query rows a workgroup

struct ConvertP {
  uint64_t err = 0;
  uint64_t in = 0, out = 0;
  int64_t numel = 0;
  int32_t in_dtype = 0, out_dtype = 0;
  WalkP win, wout;
};

struct QuantP {
  uint64_t err = 0;
  uint64_t in = 0, out = 0;
  int64_t rows = 0, n = 0, in_el = 0, out_el = 0;
  int32_t in_dtype = 0, out_dtype = 0;
  WalkP walk;
};

struct RopeP {
  uint64_t err = 0;
  uint64_t x = 0, out = 0, pos = 0, inv_freq = 0;
  int64_t x_tok = 0, x_head = 0, x_el = 0, o_tok = 0, o_head = 0, o_el = 0;
  int64_t T = 0, H = 0, D = 0, R = 0;
  int32_t interleaved = 0;
  int32_t pair_groups = 0;  // > 0: the first node's workgroups of a pair dispatch (RunPair)
  float attn_scale = 1;
  int32_t kv_fused = 0;  // 1: a RoPE + KV_WRITE dispatch (RunRopeKv)
};
static_assert(sizeof(RopeP) == 136, "rope.comp's PARAMS_BYTES");

struct GetRowsP {
  uint64_t err = 0;
  uint64_t table = 0, ids = 0, out = 0;
  int64_t row_bytes = 0, el_bytes = 0, id_stride = 0, o_row = 0, o_el = 0;
  int64_t T = 0, V = 0, D = 0;
  int32_t dtype = 0, pad = 0;
};

struct KvWriteP {
  uint64_t err = 0;
  uint64_t cache = 0, rows = 0, slots = 0;
  int64_t c_block = 0, c_slot = 0, c_head = 0, c_el = 0;
  int64_t r_tok = 0, r_head = 0, r_el = 0;
  int64_t T = 0, H = 0, D = 0, block_size = 1, n_slots = 0;
  int32_t dtype = 0;
  int32_t pair_groups = 0;  // as RopeP's
};
static_assert(sizeof(KvWriteP) == 136, "kv_write.comp's PARAMS_BYTES");

struct ConvP {
  uint64_t err = 0;
  uint64_t x = 0, w = 0, bias = 0, out = 0;
  int64_t xs[4] = {}, os[4] = {};
  int64_t w_row_bytes = 0;
  int64_t B = 0, Cin = 0, H = 0, W = 0, Cout = 0, KH = 0, KW = 0, Ho = 0, Wo = 0;
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;
  int32_t w_dtype = 0, pad = 0;
};

// l2_warm.comp's block: up to four byte ranges read one word every `stride` bytes (plugin.cc
// MaybeWarmL2). It writes only `sink` (scratch nobody reads), and that only when the folded
// words equal `magic`.
struct L2WarmP {
  uint64_t err = 0;
  uint64_t base[4] = {};
  uint64_t words[4] = {};
  uint64_t sink = 0;
  uint32_t n = 0, stride = 32, sink_mask = 0, magic = 0;
};
static_assert(sizeof(L2WarmP) == 96, "L2WarmP must match l2_warm.comp's Params");

// The split decode GEMV's scratch starts with this many bytes of counters (one uint32 a subgroup
// row block; each dispatch leaves them 0), its partials follow.
constexpr uint64_t kXsplitCounterBytes = 256u << 10;

// Records dispatches into the device's command stream (plugin.cc). Work becomes visible to the
// next dispatch through a barrier the recorder inserts after each one.
class Recorder {
 public:
  virtual ~Recorder() = default;
  // Copies `size` bytes of params (the error word address is patched in) and records a dispatch
  // of groups_x * groups_y * groups_z workgroups.
  virtual Status Dispatch(Shader shader, const void* params, size_t size, uint32_t groups_x,
                          uint32_t groups_y, uint32_t groups_z) = 0;
  // As above for a 1-D count of workgroups (spread over x and y; shaders use GroupIndex()).
  Status Dispatch1D(Shader shader, const void* params, size_t size, uint64_t groups);

  uint32_t subgroup_size = 32;  // the device's (shaders that map rows to subgroups need it)
  // attention_tiled.comp can run here (its 32 KiB of shared memory);
  // TESSERA_VULKAN_TILED_ATTENTION=0 turns it off.
  bool tiled_attention = false;
  // attention.comp's rows run on the attention_split module (same bits) where the grid has at
  // most attn_split_groups workgroups after the split: each (query, head)'s NSG subgroups over
  // attn_parts workgroups (1 = unsplit; plugin.cc: defaults, TESSERA_VULKAN_ATTN_PARTS /
  // _SPLIT_GROUPS). vk19b.
  int attn_parts = 1;
  int attn_nsg = 1;  // attention.comp's subgroups a (query, head) (its scratch rows)
  // attention.comp's fixed-shape modules (FIXD: f32 K/V, D = Dv = 64 / 128; same bits) run such
  // rows; false: the generic modules (plugin.cc: TESSERA_VULKAN_ATTN_FAST=0). vk20-attn.
  bool attn_fast = true;
  // RunRopeKv's dispatch runs rope.comp's KVF32 module (f32 caches, 32-bit index math; same
  // bits) where the shapes allow; false: the generic module (TESSERA_VULKAN_ROPE_FAST=0).
  // vk20-rope.
  bool rope_fast = true;
  int64_t attn_split_groups = 0;
  // Consecutive decode MATMULs over one x run as one dispatch (plugin.cc ExecuteDecodeGroup);
  // TESSERA_VULKAN_FUSE=0 turns it off.
  bool fuse_decode = true;
  // Decode GEMVs load weight rows coalesced (matmul.comp DecodeRowsCoalesced);
  // TESSERA_VULKAN_DECODE_COALESCE=0 keeps DecodeRows (one lane a chunk).
  bool decode_coalesce = true;
  // The coalesced decode GEMV hands its chunk chains over in a skewed pipeline (matmul.comp
  // DecodeRowsSkewed: one subgroupShuffle a stage, every issued PieceDot but the fill/drain
  // useful) instead of QL predicated rounds through shared memory; same bits.
  // TESSERA_VULKAN_DECODE_SKEW=1|2|0 (1: selects, the default where the device has subgroup
  // shuffles; 2: skewed loads; matmul.comp SKEW_MODE; plugin.cc). Only the dispatches with the
  // RMS_NORM prologue take it unless decode_skew_plain (run_ops.cc DecodeShader).
  int decode_skew = 0;
  // The skewed kernel for plain decode GEMVs too (no RMS_NORM prologue; o, down), not only the
  // norm-fused ones (TESSERA_VULKAN_DECODE_SKEW_PLAIN=1, a lab knob: it lost there).
  bool decode_skew_plain = false;
  // The norm-fused decode groups (the skew+norm modules) on persistent workgroups: at most
  // decode_persist launched, each computing the RMS_NORM scale once and taking the workgroup
  // indices g, g + launched, ... (matmul.comp NormGroups, its PERSIST specialization constant;
  // 0 = a workgroup an index, as before). Default 3 an SM on the HBM class (plugin.cc hbm_class);
  // TESSERA_VULKAN_PERSIST=N overrides (0 = off). Same bits. vk-dec17.
  int decode_persist = 0;
  // Lab bound (vulkan_gemv_lab, WRONG outputs): every decode GEMV dispatch (lone or grouped)
  // becomes a plain read of its weights instead, l2_warm.comp over the same bytes with this many
  // workgroups of 256 (TESSERA_VULKAN_LAB_READ=G; 0 = off). vk-dec18.
  int lab_read = 0;
  // The plain skewed decode module's PREF twin (decode_skew_pref_*, matmul.comp PREF_MODE;
  // vk23-pref, vk24-pref; run_ops.cc PrefTwin, plugin.cc TESSERA_VULKAN_DECODE_PREF). decode_pref
  // > 0 (a lab knob): every plain skewed dispatch takes the twin with PREF_MODE = decode_pref & 15
  // (16: the twin with the default load order). 0: those of at most decode_pref_groups
  // workgroups with K unsplit in the workgroup (the 8B o and down: one wave at the twin's 2
  // workgroups an SM) take it with PREF_MODE 10 (the next step's weights and x at this step's
  // top), the others (the LM head; the 1B / 0.5B down, split in 2 / 4 K pieces: slower on the
  // twin) the default module; decode_pref_groups 0 = never. Same bits unless PREF_MODE & 4
  // (LOADS ONLY, WRONG outputs).
  int decode_pref = 0;
  int64_t decode_pref_groups = 0;
  // Lab bound (WRONG outputs; TESSERA_VULKAN_LAB_EMPTY=MASK, 0 = off): bit 1 the RoPE + KV_WRITE
  // dispatch (run_ops.cc RunRopeKv), bit 2 every attention.comp dispatch (RecordAttention)
  // becomes an empty l2_warm.comp dispatch (one workgroup, nothing read): what such a dispatch
  // and its barrier cost without the work. vk19.
  int lab_empty = 0;
  // The RMS_NORM prologue's sum-of-squares loads batched (matmul.comp NORM_BATCH_ON,
  // specialization constant 3; TESSERA_VULKAN_NORM_BATCH=0 = one at a time); same bits.
  int norm_batch = 1;
  // Lone plain decode GEMVs (o, down) with long K run on the skewed kernel with their K split
  // within the workgroup in this many pieces: 0 = by shape (run_ops.cc KpiecesFor), 1 = never
  // (the coalesced kernel unless decode_skew_plain), 2 / 4 = always where it fits
  // (TESSERA_VULKAN_DECODE_KPIECES); same bits.
  int decode_kpieces = 0;
  // Lone decode GEMVs (o, down: no RMS_NORM prologue) on the skewed kernel (so only with
  // decode_skew_plain) split K over this many workgroups a row block, the last one folding the
  // chunk partials in order (TESSERA_VULKAN_DECODE_XSPLIT, a lab knob; 0/1 = no split).
  int decode_xsplit = 0;
  // Weight rows a subgroup in the decode GEMV: 0 = the shader's DROWS (run_ops.cc
  // DecodeRowsFor); TESSERA_VULKAN_DECODE_ROWS=1|2|4 forces fewer (a lab knob).
  int decode_rows = 0;
  // Weight rows a subgroup for decode GEMVs with K >= 8192 (the down projection of large models;
  // 0 = as decode_rows). TESSERA_VULKAN_DECODE_ROWS_LONGK, a lab knob: fewer rows give those
  // 256-workgroup dispatches more workgroups.
  int decode_rows_longk = 0;
  // MATMULs of 2..32 x rows (batched decode, short prompts; plain and q8 / q4 weights) on
  // matmul.comp's MultiRows (the multi_* modules: the x tile in shared memory once a step for the
  // workgroup, a subgroup's weight rows sharing its reads and the tile's x rows the weight loads;
  // same bits as MatmulRow) where run_ops.cc UseMultiRows allows; plugin.cc turns it on where the
  // device has 32 KiB of shared memory and subgroups of 8..32 (TESSERA_VULKAN_MULTI=0: MatmulRow,
  // the tree before). multi_rows: weight rows a subgroup (0 = DROWS, run_ops.cc MultiRowsFor;
  // TESSERA_VULKAN_MULTI_ROWS=1|2|4, a lab knob).
  bool multi = false;
  int multi_rows = 0;
  // Decode GEMVs take matmul.comp's DecodeSplit (the workgroup splits K; one fold at the end):
  // 0 never (the default: slower than the subgroup kernels on the H100 but for K <= 1024),
  // 2 where run_ops.cc UsesSplit allows, 1 wherever K fits its shared memory
  // (TESSERA_VULKAN_DECODE_SPLIT). split_blocks: row blocks a workgroup (1, 2 or 4; 0 = by K;
  // TESSERA_VULKAN_SPLIT_BLOCKS, a lab knob).
  int decode_split = 0;
  int split_blocks = 0;
  // GEMMs (M >= 33) over bf16 weights run on cooperative matrices (matmul_coop.comp): set where
  // the device offers bf16 x bf16 -> f32 16 x 16 x 16 subgroup matrices and
  // TESSERA_VULKAN_COOPMAT=1 (opt-in; plugin.cc). Not the canonical order: see README.
  bool coop_gemm = false;
  // The cooperative-matrix GEMM's tile choice (TESSERA_VULKAN_COOPMAT_TILE, a lab knob; empty =
  // the default): "V" (a variant of run_ops.cc kCoopKernels; 64 = 8) or "V@T,V@T,...,V" (the
  // first variant that makes at least T workgroups for the MATMUL, else the last).
  std::string coop_tile;
  // MATMULs with 1..32 rows over bf16 weights run the cooperative-matrix GEMV
  // (matmul_coop_gemv.comp: each row the GEMM's bits) where coop_gemm is set and
  // TESSERA_VULKAN_COOPGEMV=1 (a lab knob while the decode fusions do not use it; vk-coop13);
  // 2 / 3: one-row MATMULs take variant 2 / 3 (run_ops.cc kCoopGemvs). 0: the plain GEMVs.
  int coop_gemv = 0;
  // Device memory for the split decode GEMV (SplitAcrossGroups): kXsplitCounterBytes of zeroed
  // counters, then at least `bytes` of partials; ordered after the earlier users as CoopScratch.
  virtual StatusOr<uint64_t> SplitScratch(uint64_t bytes) {
    (void)bytes;
    return Unimplemented("split decode GEMV scratch");
  }
  virtual void SplitScratchUsed() {}
  // Device memory for the cooperative-matrix GEMM's x planes, at least `bytes`, ordered after
  // every earlier dispatch that used it; CoopScratchUsed() after the last dispatch that uses it
  // (so the next user waits for it).
  virtual StatusOr<uint64_t> CoopScratch(uint64_t bytes) {
    (void)bytes;
    return Unimplemented("no scratch memory");
  }
  virtual void CoopScratchUsed() {}
};

// A node with its tensors converted plus the recorder it runs on (null while validating).
struct OpArgs : backend::NodeArgs {
  Recorder* rec = nullptr;
};

using OpFn = Status (*)(const OpArgs&);

// The PREF_MODE specialization constant of a decode_skew_pref_* module (matmul.comp;
// Recorder::decode_pref) under rec's knobs; 0 for every other module.
int PrefModeOf(const Recorder& rec, Shader s);

// Decode GEMV groups (plugin.cc): consecutive MATMULs over the same single x row run as one
// matmul.comp dispatch, each output row summed exactly as when its node runs alone.
constexpr int kMaxDecodeGroup = 3;
// Fills *p and *wdt for a MATMUL node that would take matmul.comp's decode path (one x row,
// aligned rows, whole chunks, plain weights); false for any other node. a.rec must be set.
bool DecodeGroupPart(const OpArgs& a, MatmulP* p, tsr_dtype* wdt);
// One dispatch for parts[0, n) (1 <= n <= kMaxDecodeGroup), all of DecodeGroupPart with the
// same x, K and weight dtype.
Status RunDecodeGroup(Recorder* rec, const MatmulP* parts, int n, tsr_dtype wdt);
// Whether a decode group over K-long rows of `wdt` weights takes a GEMV module with the RMS_NORM
// prologue (the coalesced or the split one), i.e. whether an RMS_NORM can fold into it.
bool DecodeNormFusable(const Recorder& rec, int64_t K, tsr_dtype wdt);
// Whether a norm-fused decode group (p0 = part 0 with norm_x and either glu_out or the rope_*
// fields set; parts[0, n)) can take matmul.comp's paired epilogue: the coalesced or skewed
// module (run as its paired twin), rows_per_group / 2 a multiple of decode_rows; SWIGLU: two parts
// of equal N; q RoPE: full-width neox rotation, R / 2 a multiple of rows_per_group / 2 (plugin.cc
// ExecuteNormGemv).
bool DecodePairFits(const Recorder& rec, const MatmulP& p0, const MatmulP* parts, int n,
                    tsr_dtype wdt);
// Fills q's rope_* fields from a ROPE node over q's output (one token, neox, R = D, f32, the
// q output read as [1, N / D, D] contiguous); false (q untouched) when it does not qualify.
bool DecodeRopeFill(const OpArgs& rope, MatmulP* q);
// Decode pairs (plugin.cc ExecuteDecodePair): two independent ROPE nodes, or two KV_WRITE nodes
// writing their cache in place, as one dispatch (the q and k RoPEs, the k and v cache writes of
// a layer). Each output element is computed as when its node runs alone. False (nothing
// recorded) when the nodes do not qualify; the caller then runs them one by one.
bool PairableOps(const OpArgs& a, const OpArgs& b);
Status RunPair(const OpArgs& a, const OpArgs& b);
// RoPE + KV_WRITE (plugin.cc ExecuteRopeKv): a ROPE node, the in-place KV_WRITE of its output
// (the k cache) and optionally another in-place KV_WRITE (the v cache) as one rope.comp
// dispatch; the RoPE's output is still written, and every element has the bits of its node run
// alone. False (nothing recorded) when the nodes do not qualify.
bool RopeKvFusable(const OpArgs& rope, const OpArgs& kv, const OpArgs* kv2);
// A decode step's k ROPE, its KV_WRITE, the v KV_WRITE and the PAGED_ATTENTION reading both
// caches, as one attention dispatch (the KVNEW modules; vk27-kv): one query row, neox RoPE over
// all dims, f32 caches and the fixed modules' head dims. Same bits as the three dispatches.
bool RopeKvAttentionFusable(const OpArgs& rope, const OpArgs& kvk, const OpArgs& kvv,
                            const OpArgs& attn);
// rope_out: also store the RoPE's output (false where its memory is the attention output's).
Status RunRopeKvAttention(const OpArgs& rope, const OpArgs& kvk, const OpArgs& kvv,
                          const OpArgs& attn, bool rope_out);
Status RunRopeKv(const OpArgs& rope, const OpArgs& kv, const OpArgs* kv2);

OpFn FindRunner(int op);
using backend::OpName;

// OK = this backend runs the node as given: the shared ABI rules plus the device's own limits.
Status ValidateOp(const OpArgs& a);

// Device address of a tensor's element [0, ..., 0] (0 for an empty tensor).
inline uint64_t Addr(const TensorRef& t) {
  return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(t.data));
}
inline uint64_t Addr(const TensorRef* t) {
  return t != nullptr ? Addr(*t) : 0;
}

#define TSR_VK_DECLARE_RUNNER(Family) Status Run##Family(const OpArgs& a);
TESSERA_BACKEND_OP_FAMILIES(TSR_VK_DECLARE_RUNNER)
#undef TSR_VK_DECLARE_RUNNER
Status RunArgmax(const OpArgs& a);  // optional op (TESSERA_BACKEND_OP_ARGMAX)

}  // namespace tessera::vulkan

#endif  // TESSERA_BACKENDS_VULKAN_OPS_H_
