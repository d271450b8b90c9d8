// The contract between the CUDA backend's host code (.cc, compiled by the C++ compiler) and its
// kernels (k_*.cu, compiled by nvcc): plain-data parameter structs and one launcher per kernel
// family. Launchers only enqueue work on `stream` and return the launch's cudaError_t; they never
// synchronize, allocate or validate (the host validated the node already).
//
// Every pointer here is device memory. Strides are in BYTES unless a name says otherwise.
#ifndef TESSERA_BACKENDS_CUDA_LAUNCH_H_
#define TESSERA_BACKENDS_CUDA_LAUNCH_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "tessera/plugin_api.h"

namespace tessera::cuda {

constexpr int kMaxDims = TSR_MAX_DIMS;

// Up to three tensors walked in lock-step over a reference shape (numpy broadcasting: a stride
// of 0 where a tensor's dimension is 1 or missing).
struct Walk3 {
  int ndim = 0;
  int64_t ne[kMaxDims] = {};
  int64_t s[3][kMaxDims] = {};  // byte strides of tensor k along reference dim d
  int64_t numel = 0;
};

// Bits of the per-device error word that kernels set when data (not shapes) is invalid: the
// host reads it at the next synchronization and reports it (checking eagerly would need a sync).
enum DeviceErrorBits : int {
  kErrIndexOutOfRange = 1,  // GET_ROWS ids, KV_WRITE slots
  kErrBadSeqlens = 2,       // cu_q / cu_k / kv_lens inconsistent
  kErrBadBlockTable = 4,    // a block id outside the cache
};

// Programmatic dependent launch (sm_90+) for the launches of the calling thread: every kernel
// waits for its predecessor in GridDepWait() (dev_common.cuh) before reading anything, so this
// only lets launches overlap the previous kernel's tail. Off by default; the plugin sets it per
// execute.
void SetPdlLaunches(bool on);
bool PdlLaunches();

// ---- elementwise (k_elementwise.cu) ----
// ADD/SUB/MUL/DIV/SWIGLU/GEGLU (two inputs) and SCALE/activations/SOFTCAP (one input, b unused).
struct EltParams {
  int op = 0;
  float p0 = 0, p1 = 0;
  const uint8_t* a = nullptr;
  const uint8_t* b = nullptr;
  uint8_t* out = nullptr;
  Walk3 walk;               // tensors: 0 = a, 1 = b, 2 = out; reference shape = out
  bool contiguous = false;  // a and out contiguous f32; b contiguous with b_period elements
  int64_t b_period = 0;     // contiguous case: b[i % b_period] (numel of b)
};
cudaError_t LaunchElementwise(const EltParams& p, cudaStream_t stream);

// ---- row ops (k_norm.cu) ----
// Rows = every index of the outer dims; tensors: 0 = x, 1 = out, 2 = mask (SOFTMAX) .
struct RowParams {
  int op = 0;  // RMS_NORM, LAYER_NORM, SOFTMAX, SUM, MEAN, MAX
  const uint8_t* x = nullptr;
  uint8_t* out = nullptr;
  const uint8_t* mask = nullptr;  // SOFTMAX; may be null
  const float* weight = nullptr;  // norms; may be null
  const float* bias = nullptr;    // LAYER_NORM; may be null
  float eps = 0, woff = 0, scale = 1;
  int64_t n = 0;                   // row length
  int64_t sx = 0, so = 0, sm = 0;  // element strides (in elements) along the row
  Walk3 rows;                      // outer dims only (ndim = rank - 1)
};
cudaError_t LaunchRowOp(const RowParams& p, cudaStream_t stream);

// ---- attention (k_attention.cu) ----
struct AttnParams {
  const uint8_t* q = nullptr;  // f32 [T, Hq, D], inner contiguous
  int64_t q_tok = 0, q_head = 0;
  uint8_t* out = nullptr;  // f32 [T, Hq, Dv], inner contiguous
  int64_t o_tok = 0, o_head = 0;
  const uint8_t* k = nullptr;  // dense [Tk, Hkv, D] or paged [NB, BS, Hkv, D]
  const uint8_t* v = nullptr;
  int kv_dtype = TSR_DTYPE_F32;
  int64_t k_tok = 0, k_head = 0, k_block = 0;
  int64_t v_tok = 0, v_head = 0, v_block = 0;
  const int32_t* cu_q = nullptr;   // [S + 1]
  const int32_t* cu_k = nullptr;   // dense: [S + 1]
  const int32_t* table = nullptr;  // paged: [S, MB] with row stride table_row (elements)
  int64_t table_row = 0, max_blocks = 0;
  const int32_t* kv_lens = nullptr;  // paged: [S]
  int64_t block_size = 1, n_blocks = 0, n_kv_rows = 0;
  int64_t T = 0, Hq = 0, Hkv = 0, D = 0, Dv = 0, S = 0;
  float scale = 1, softcap = 0;
  bool causal = false, paged = false;
  int64_t window = 0;
  int* err = nullptr;
};
constexpr int64_t kAttnMaxHeadDim = 256;
cudaError_t LaunchAttention(const AttnParams& p, cudaStream_t stream);
// Lab: variant 0 = the default, 1 = the previous one-head-a-block kernel, 2 / 3 = tiled prefill
// uncapped / capped to 2 blocks an SM, 4 = decode tiles one block each instead of split over a
// cluster, 5 = the tiled prefill and two-query batch decode tiles (the default before the
// pipelined prefill), 6 / 7 = pipelined prefill (score loop unrolled 1x / 2x), 8 = one-query
// batch decode tiles (same bits; TESSERA_CUDA_ATTN=legacy|nocap|cap|nosplit|tiled|pipe1|pipe2|
// batch1). The tensor-core order (TESSERA_CUDA_ATTN_TC, default on, k_attention.cu namespace tc)
// takes variant 0 for the calls it covers; 9 = the f32 order's default; 10 .. 15 = the
// tensor-core tile kinds (auto, 128-row / 64-row prefill, cluster-split / one-block decode,
// one-query batch tiles; same bits; cudaErrorNotSupported where not covered); 16 .. 18 =
// timing-only diagnostics (wrong results); 24 = the one-query batch tiles before cu22-xattn
// (RunTile's, whatever TESSERA_CUDA_ATTN_TC_BATCH says; same bits).
cudaError_t LaunchAttentionWith(const AttnParams& p, int variant, cudaStream_t stream);

// ---- data movement (k_data.cu) ----
struct RopeParams {
  const uint8_t* x = nullptr;
  uint8_t* out = nullptr;
  int64_t x_tok = 0, x_head = 0, x_el = 0;  // byte strides of x
  int64_t o_tok = 0, o_head = 0, o_el = 0;
  const int32_t* pos = nullptr;
  const float* inv_freq = nullptr;
  int64_t T = 0, H = 0, D = 0, R = 0;
  bool interleaved = false;
  float attn_scale = 1;
};
cudaError_t LaunchRope(const RopeParams& p, cudaStream_t stream);
// Two independent ROPEs (a layer's q and k) in one launch; each computes what LaunchRope would.
cudaError_t LaunchRope2(const RopeParams& a, const RopeParams& b, cudaStream_t stream);

// Element-wise conversion between plain dtypes (f32/f16/bf16/i32/i64/i8/u8 -> f32/f16/bf16/i32
// or the same dtype). Same-shape copies walk both tensors with `walk` (0 = in, 2 = out); a
// reshape (`flat`) walks each tensor in its own row-major order.
struct ConvertParams {
  const uint8_t* in = nullptr;
  uint8_t* out = nullptr;
  int in_dtype = 0, out_dtype = 0;
  Walk3 walk;
  bool flat = false;
  Walk3 in_flat, out_flat;  // flat: tensor 0 of each holds that tensor's own shape/strides
};
cudaError_t LaunchConvert(const ConvertParams& p, cudaStream_t stream);

// Rows of 32-value blocks: dequantize (quant -> f32/f16/bf16) or quantize (f32 -> quant).
struct QuantRowsParams {
  const uint8_t* in = nullptr;
  uint8_t* out = nullptr;
  int in_dtype = 0, out_dtype = 0;
  int64_t rows = 0, n = 0;        // n values a row (multiple of 32)
  Walk3 walk;                     // outer dims: 0 = in row offsets, 2 = out row offsets
  int64_t in_el = 0, out_el = 0;  // element byte strides of the plain side
};
cudaError_t LaunchQuantRows(const QuantRowsParams& p, cudaStream_t stream);

struct GetRowsParams {
  const uint8_t* table = nullptr;
  int dtype = 0;
  int64_t row_bytes = 0, el_bytes = 0;  // table row stride; element stride (plain dtypes)
  const uint8_t* ids = nullptr;
  int64_t id_stride = 0;
  uint8_t* out = nullptr;
  int64_t o_row = 0, o_el = 0;
  int64_t T = 0, V = 0, D = 0;
  int* err = nullptr;
};
cudaError_t LaunchGetRows(const GetRowsParams& p, cudaStream_t stream);

struct KvWriteParams {
  uint8_t* cache = nullptr;  // the output (aliases the input cache)
  int dtype = 0;
  int64_t c_block = 0, c_slot = 0, c_head = 0, c_el = 0;
  const uint8_t* rows = nullptr;
  int64_t r_tok = 0, r_head = 0, r_el = 0;
  const int32_t* slots = nullptr;
  int64_t T = 0, H = 0, D = 0, block_size = 1, n_slots = 0;
  int* err = nullptr;
};
cudaError_t LaunchKvWrite(const KvWriteParams& p, cudaStream_t stream);
// Two KV_WRITEs into different caches (a layer's K and V) in one launch.
cudaError_t LaunchKvWrite2(const KvWriteParams& a, const KvWriteParams& b, cudaStream_t stream);
// A layer's ROPE q, ROPE k, KV_WRITE k (rows = k's ROPE output, same [T, H, D]) and KV_WRITE v
// in one single-block launch that reads every input before writing anything (outputs may reuse
// inputs' memory); same bits as the four kernels. Needs RopeKvStageBytes <= kRopeKvMaxStage
// (the block's shared memory: decode-sized T).
constexpr uint64_t kRopeKvMaxStage = 48 * 1024;
uint64_t RopeKvStageBytes(const RopeParams& q, const RopeParams& k, const KvWriteParams& v);
cudaError_t LaunchRopeKv(const RopeParams& q, const RopeParams& k, const KvWriteParams& kw,
                         const KvWriteParams& vw, cudaStream_t stream);

// ---- convolution (k_conv.cu): direct, one thread an output, fixed (ci, kh, kw) order ----
struct ConvParams {
  const uint8_t* x = nullptr;
  int64_t xs[4] = {};  // byte strides of x [B, Cin, H, W] (1-D: H stride 0)
  const uint8_t* w = nullptr;
  int w_dtype = 0;
  int64_t w_row_bytes = 0;  // bytes of one output channel's Cin/g * KH * KW weights
  const float* bias = nullptr;
  uint8_t* out = nullptr;
  int64_t os[4] = {};
  int64_t B = 0, Cin = 0, H = 0, W = 0, Cout = 0, KH = 0, KW = 0, Ho = 0, Wo = 0;
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;
};
cudaError_t LaunchConv(const ConvParams& p, cudaStream_t stream);

// ---- matmul (k_matmul_*.cu) ----
// out[m * out_row + n * out_col] = dot(x[m, :], w[n, :]) (+ bias[n]); element strides.
struct MatmulParams {
  const float* x = nullptr;
  int64_t x_row = 0;  // elements
  int64_t M = 0, K = 0, N = 0;
  const uint8_t* w = nullptr;
  int64_t w_row_bytes = 0;
  int w_dtype = TSR_DTYPE_F32;
  const float* bias = nullptr;
  float* out = nullptr;
  int64_t out_row = 0, out_col = 1;  // elements
  // Optional residual ADD in the last write (decode batches, cuda-agg3; LaunchGemmBf16Fused):
  // res_out[m * res_out_row + n] = res[m * res_row + n] + out[m, n], the ADD kernel's one f32
  // add of the stored value. Only the kernels GemmFusable admits read these; null = none.
  const float* res = nullptr;
  int64_t res_row = 0;  // elements
  float* res_out = nullptr;
  int64_t res_out_row = 0;  // elements
};
// Any weight dtype: one warp a weight row, lanes stride K, butterfly sum (see the .cu file).
cudaError_t LaunchMatmulGeneric(const MatmulParams& p, cudaStream_t stream);
// The same order with one weight load in flight a warp (the kernel before 2026-11-29): the
// reference cuda_backend_test compares LaunchMatmulGeneric against, bit for bit.
cudaError_t LaunchMatmulGenericReference(const MatmulParams& p, cudaStream_t stream);
// The kernel lab's M > 8 variants (0: the unstaged register tile; 1, 2: staged tiles, k_matmul_
// generic.cu LaunchTileVariant): same order, same bits as the reference.
cudaError_t LaunchMatmulGenericTile(const MatmulParams& p, cudaStream_t stream, int variant);
// The lab's forms of the staged Q8 / Q4 GEMV (M <= 8, 4-byte aligned rows; else
// cudaErrorInvalidValue): bits of MatmulStagedKernel's kForm (Q8 0..4 and 6, Q4 0 and 4).
cudaError_t LaunchMatmulGenericStagedForm(const MatmulParams& p, cudaStream_t stream, int form);

// The bf16 tensor-core paths (k_matmul_bf16.cu). `terms` is how many bf16 pieces x is split
// into (3 = f32-exact activations, 1 = activations rounded to bf16). See the file's comment for
// the canonical reduction order both kernels share.
bool Bf16FastPathEligible(const MatmulParams& p);
constexpr int64_t kGemvMaxRows = 8;  // M at or below this takes the GEMV
cudaError_t LaunchGemvBf16(const MatmulParams& p, int terms, cudaStream_t stream);
// The streaming decode GEMV (same bits as LaunchGemvBf16, scheduled over the whole card; see
// k_matmul_bf16.cu). counters: n_counters zeroed words of device memory, one per 16-row group,
// left zeroed by every launch; partials: GemvPartialBytes(p, group) bytes of device scratch.
// Measured slower than the block kernel on every shape (instruction-bound; backends/cuda/lab/
// NOTES.md), kept for the lab.
constexpr int kGemvHalf = 5, kGemvFull = 6;
struct GemvAux {
  float* partials = nullptr;
  unsigned* counters = nullptr;
  int64_t n_counters = 0;
  int sms = 0;            // multiprocessors of the device
  int warps_per_sm = 16;  // grid size target
  // 0: block per 16-row group, half-chunk loads for 145..1024 row groups, full chunks else;
  // kGemvHalf / kGemvFull: always half / full chunks (kGemvFull is LaunchGemvBf16's kernel);
  // 1..4: the streaming kernel with (warps a block, ring stages) = (4, 8), (4, 4), (8, 6),
  // (4, 12). 10..12: the block kernel's lab variants (k_matmul_bf16.cu kGemvHalf8,
  // kGemvHalfTma, kGemvFullTma; for the TMA ring warps_per_sm = warps x 16 + slots).
  int variant = 0;
  bool pdl = false;  // with PdlLaunches(): fetch the first weight stages before the wait
  // Block kernel split-K: a grid of fewer row groups than this many blocks splits each row
  // group's chunks over several blocks (ordered combine through `partials` and `counters`, same
  // bits). 0: off. Needs partials of GemvSplitPartialBytes bytes. split_max_groups > 0: only
  // grids of at most that many row groups split.
  int split_blocks = 0;
  int split_max_groups = 0;
};
bool GemvStreamEligible(const MatmulParams& p, const GemvAux& aux);  // variants 1..4 only
inline bool GemvIsStream(const GemvAux& aux) {
  return aux.variant >= 1 && aux.variant <= 4;
}
cudaError_t LaunchGemvBf16Stream(const MatmulParams& p, int terms, const GemvAux& aux,
                                 cudaStream_t stream);

// Fused decode launches (plugin.cc finds the node patterns): up to kGemvMaxGroup GEMVs over the
// same x (q/k/v, gate/up projections) in one launch, and a MATMUL's following residual ADD in
// its epilogue. Every member computes exactly what its own launch would (same bits); the ADD is
// the same single f32 addition. x, x_row, M and K come from the MatmulParams; its w/N/bias/out
// are ignored.
struct GemvOut {
  const uint8_t* w = nullptr;
  int64_t w_row_bytes = 0, N = 0;
  const float* bias = nullptr;
  float* out = nullptr;
  int64_t out_row = 0, out_col = 1;  // elements
  // Optional residual: res_out[m * res_out_row + n] = res[m * res_row + n] + out[m, n].
  const float* res = nullptr;
  int64_t res_row = 0;
  float* res_out = nullptr;
  int64_t res_out_row = 0;
};
constexpr int kGemvMaxGroup = 3;
// cu24-chain: a layer's ROPE q, ROPE k, KV_WRITE k (of the rotated k) and KV_WRITE v done by the
// epilogue of its norm + q/k/v group launch at M = 1 (GemvGroup::rope; plugin.cc
// FuseRopeKvEpilogue), members 0 / 1 / 2 = q / k / v. The q and k members compute each head's
// rotate_half pairs (d, d + D / 2) in one 16-row task (rows d .. d + 7 and d + D / 2 .. + 7 as the
// mma's row halves; each row's chunk sums and their chunk-order total are the plain launch's), so
// the task that sums a pair rotates it with the ROPE kernel's arithmetic (k_data.cu RopeItem) and
// stores q_rot / k_rot and the K / V cache rows as KV_WRITE does (KvWriteValue). Every node's
// output is still written (the raw member outputs too, except their elements inside skip[j],
// which a later output of the group overwrites in node order). Full rotary, rotate_half pairs,
// one token (pos[0], slots[0]).
struct GemvRopeKv {
  const int32_t* pos = nullptr;
  const float* inv_freq = nullptr;  // [D / 2]
  float attn_scale = 1;
  int64_t D = 0;           // q / k head dim (all of it rotated); a multiple of 16
  int64_t Dv = 0;          // v head dim
  float* q_rot = nullptr;  // element (h, d) at q_rot[h * q_head + d]
  float* k_rot = nullptr;
  int64_t q_head = 0, k_head = 0;  // elements
  const float* skip_lo[3] = {};    // member j's raw elements in [skip_lo, skip_hi) not stored
  const float* skip_hi[3] = {};
  uint8_t* cache[2] = {};  // K, V (KV_WRITE's KvWriteParams layout, byte strides)
  int dtype[2] = {TSR_DTYPE_F32, TSR_DTYPE_F32};
  int64_t c_block[2] = {}, c_slot[2] = {}, c_head[2] = {}, c_el[2] = {};
  const int32_t* slots = nullptr;
  int64_t block_size = 1, n_slots = 0;
  int* err = nullptr;
  // Lab: how x0 c - x1 s is rounded (0 fma(x0, c, -(x1 s)), 1 fma(-x1, s, x0 c), 2 no fma;
  // -1 = TESSERA_CUDA_ROPE_EPI_FORM if set, else 0: what ptxas made of the ROPE kernel's mul,
  // mul, sub on sm_90 (its SASS; cuda_gemv_lab's rope_epi checks fail if that ever changes).
  int form = -1;
};
struct GemvGroup {
  int n = 0;
  GemvOut o[kGemvMaxGroup];
  // SWIGLU in the epilogue (plugin.cc, TESSERA_CUDA_FUSE_SWIGLU_EPI): n == 2, member 0 the gate
  // and member 1 the up projection (same N, no residual); a task computes row group r of both
  // and writes swiglu[m * swiglu_row + n] = SwiGluF(g, u) (fuse_math.cuh, the SWIGLU kernel's
  // arithmetic on the same f32 sums). A member whose out is null is not stored (its tensor is
  // the SWIGLU output's memory, overwritten anyway). Block kernel only, no split-K.
  float* swiglu = nullptr;
  int64_t swiglu_row = 0;            // elements
  const GemvRopeKv* rope = nullptr;  // cu24-chain: ROPE + KV_WRITE epilogue (n == 3, M = 1)
};
GemvGroup GemvGroupOf(const MatmulParams& p);  // one member: p's own weight and output
uint64_t GemvPartialBytes(const MatmulParams& p, const GemvGroup& grp);
// Scratch the block kernel's split-K needs for this launch (0: it will not split).
uint64_t GemvSplitPartialBytes(const MatmulParams& p, const GemvGroup& grp, const GemvAux& aux);
cudaError_t LaunchGemvBf16Group(const MatmulParams& p, const GemvGroup& grp, int terms,
                                const GemvAux& aux, cudaStream_t stream);
// The op that produces the GEMV's x, folded into the GEMV's x load (decode fusion, plugin.cc):
// p.x / p.x_row are then the op's first input, and x itself is computed per element with the
// op kernel's own arithmetic (fuse_math.cuh), so the bits equal the op's launch + the GEMV.
// The op's output y ([M, K], row stride y_row elements) is still written (by the blocks of row
// group 0), so any other consumer of it sees the same tensor.
//   kGemvProRms: RMS_NORM over each x row of K elements (eps, weight + woff; weight may be null).
//   kGemvProSwiglu: SWIGLU(gate = p.x, up = b).
constexpr int kGemvProNone = 0, kGemvProRms = 1, kGemvProSwiglu = 2;
struct GemvPrologue {
  int kind = kGemvProNone;
  const float* weight = nullptr;
  float eps = 0, woff = 0;
  const float* b = nullptr;
  int64_t b_row = 0;  // elements
  float* y = nullptr;
  int64_t y_row = 0;  // elements
};
// The op's rows are staged in each block's shared memory: M x K floats of at most this.
constexpr int64_t kGemvProMaxStage = 64 * 1024;
inline bool GemvPrologueFits(int64_t M, int64_t K) {
  return M * K * 4 <= kGemvProMaxStage;
}
// cu29-ring: whether LaunchGemvBf16Fused would run this norm + gate/up group, with a SWIGLU
// epilogue, on the TMA-ring GEMV (k_matmul_bf16.cu GemvRingOn; TESSERA_CUDA_GEMV_RING mask 4):
// there the paired launch beats the unpaired one plus the SWIGLU kernel (plugin.cc).
bool GemvRingTakesPair(const MatmulParams& p, const GemvGroup& grp, const GemvPrologue& pro,
                       int terms, const GemvAux& aux);
cudaError_t LaunchGemvBf16Fused(const MatmulParams& p, const GemvGroup& grp,
                                const GemvPrologue& pro, int terms, const GemvAux& aux,
                                cudaStream_t stream);
// Whether LaunchGemvBf16Fused runs grp with its `rope` epilogue (else it returns
// cudaErrorNotSupported): an RMS_NORM prologue, M = 1, exact mode (3 pieces), the engine's
// launch rule (aux.variant 0), one task a row group (no split-K), K < 4096 (the small models'
// launches, as measured), the plain weight loads of the 0.5B's whole-chunk kernel with x
// pre-split or the 1B's half-chunk 8-warp kernel, q / k rows a multiple of D, D % 16 == 0.
bool GemvRopeKvFits(const MatmulParams& p, const GemvGroup& grp, const GemvPrologue& pro, int terms,
                    const GemvAux& aux);
// planes: terms x [M, K] bf16 scratch of SplitPlaneBytes(p, terms) bytes (device memory).
uint64_t SplitPlaneBytes(const MatmulParams& p, int terms);
cudaError_t LaunchGemmBf16(const MatmulParams& p, int terms, uint16_t* planes, cudaStream_t stream);
// RMS_NORM folded into the x split pre-pass of a decode-batch GEMM (kGemvMaxRows < M <=
// kGemmRmsMaxRows; cuda-agg2, TESSERA_CUDA_FUSE_NORM_SMALLM): pro is a kGemvProRms prologue as for
// LaunchGemvBf16Fused (p.x / p.x_row are the norm's input; pro.y, if set, still receives the
// norm's output), planes as for LaunchGemmBf16. The norm's row sums, scale and products are the
// norm kernel's (fuse_math.cuh) and the split is of those values, so the bits equal RMS_NORM +
// LaunchGemmBf16. GemmRmsFusable: LaunchGemmBf16 would split x first (not the GEMV rows kernel,
// which has no split) and K rounded up to 32 is at most 8192 (the row is staged in shared
// memory); otherwise LaunchGemmBf16Rms returns cudaErrorInvalidValue.
constexpr int64_t kGemmRmsMaxRows = 64;
bool GemmRmsFusable(const MatmulParams& p, int terms);
cudaError_t LaunchGemmBf16Rms(const MatmulParams& p, const GemvPrologue& pro, int terms,
                              uint16_t* planes, cudaStream_t stream);
// The decode-batch GEMM (kGemvMaxRows < M <= kGemmRmsMaxRows) with fusions (cuda-agg3): pro_kind
// kGemvProRms (as LaunchGemmBf16Rms) or kGemvProSwiglu (SWIGLU(gate = p.x, up = pro.b) computed
// per element with the SWIGLU kernel's SwiGluF in the x split, y still stored when pro.y is set)
// or kGemvProNone, and/or p.res_out (the residual ADD in the kernel's last write: the TMA split-K
// combine, the chunk-split combine or the GEMV rows epilogue). GemmFusable: the GEMM
// LaunchGemmBf16 would run has such a split / such a last write (a plain tile has not);
// otherwise LaunchGemmBf16Fused returns cudaErrorInvalidValue. Same bits as the op kernels +
// LaunchGemmBf16 (cuda_gemm_lab --addfuse).
bool GemmFusable(const MatmulParams& p, int terms, int pro_kind, bool residual);
cudaError_t LaunchGemmBf16Fused(const MatmulParams& p, const GemvPrologue& pro, int terms,
                                uint16_t* planes, cudaStream_t stream);
// Decode-batch GEMMs over one x (a layer's q/k/v or gate/up after their RMS_NORM; cuda-agg3):
// x is split once (the RMS_NORM split when pro.kind == kGemvProRms, else the plain one) into the
// wgmma planes every member's TMA tile reads, then each member's GEMM runs in order on those
// planes. GemmSharesSplit: LaunchGemmBf16 would run p on a wgmma configuration (the permuted
// planes). Members: same x, x_row, M and K; planes: the largest SplitPlaneBytes of the members.
// Same planes as each member's own split, so the same bits.
bool GemmSharesSplit(const MatmulParams& p, int terms);
constexpr int kGemmMaxMembers = 3;
// Prefill (M > kGemmRmsMaxRows, at most kGemmFuseMaxRows rows; cu-xsplit15): the same entries
// (LaunchGemmBf16Fused with an RMS_NORM or SWIGLU prologue and no residual; LaunchGemmBf16Members
// where GemmSharesSplit: the default dispatch's wgmma tile) run the prefill GEMM LaunchGemmBf16
// would (GemmTiledAuto's tile, its persistent / split-K twin) on planes the prologue split wrote:
// same planes, same bits. The caller bounds M by its scratch (run_ops.cc GemmRowBlock).
constexpr int64_t kGemmFuseMaxRows = 65535;
cudaError_t LaunchGemmBf16Members(const MatmulParams* ps, int n, const GemvPrologue& pro, int terms,
                                  uint16_t* planes, cudaStream_t stream);
// The prefill GEMM kernels of k_gemm_bf16.cu (LaunchGemmBf16 picks one; the lab sweeps them):
// tile configurations 0 .. GemmTiledConfigs() - 1 per piece count, all with the canonical order.
// They read planes that LaunchSplitBf16 wrote (x split into `terms` bf16 pieces).
int GemmTiledConfigs();
int GemmTiledAuto(const MatmulParams& p, int terms, int sms);  // config, or -1: the older kernels
cudaError_t LaunchGemmBf16Tiled(const MatmulParams& p, int terms, const uint16_t* planes,
                                int config, cudaStream_t stream);
// The LaunchGemmWgmma configuration LaunchGemmBf16Tiled runs for a wgmma `config` (>=
// kGemmTiledWgmma0, gemm_wgmma.h) once x is split into the slot-permuted planes: at M > 64 the
// prefill split-K or persistent twin. -1 for the natural-plane configurations.
int GemmTiledWgmmaRun(const MatmulParams& p, int terms, int config);
cudaError_t LaunchSplitBf16(const MatmulParams& p, int terms, uint16_t* planes,
                            cudaStream_t stream);

// Read-rate lab (cuda_gemv_lab --dec16, cu-dec16): kReadPlain streams N x K bf16 (grid sms x
// per_sm blocks of warps x 32 threads, 8 16-byte loads in flight a thread); the others issue the
// decode GEMV's weight loads for an N x K weight (a block a 16-row group; half or whole chunks a
// round; chunks strided over the warps as GemvTask, or contiguous ranges) with no x and no mma.
// per_sm > 0 caps the blocks an SM through dynamic shared memory. sink: never written in
// practice (keeps the loads alive); one word a block.
constexpr int kReadPlain = 0, kReadHalf = 1, kReadHalfContig = 2, kReadFull = 3,
              kReadFullContig = 4;
cudaError_t LaunchReadLab(int kind, const void* w, int64_t N, int64_t K, int warps, int per_sm,
                          int sms, uint32_t* sink, cudaStream_t stream);

// Compiled-in kernel probe: cudaSuccess when this build has code for the current device.
cudaError_t ProbeKernelImage();

// Lab build only (CMake TESSERA_CUDA_GEMV_STAMPS): the decode GEMV's per-block time stamps
// (k_matmul_bf16.cu GemvStamp), set up at device open when $TESSERA_GEMV_STAMP_OUT is set and
// written there at device close; no-ops in every other build.
void SetupGemvStamps();
void DumpGemvStamps();

}  // namespace tessera::cuda

#endif  // TESSERA_BACKENDS_CUDA_LAUNCH_H_
