// The CUDA backend's host-side op layer: the tensor view it validates, the op registry (for every
// tsr_op a validator, shared by supports_op and execute, and a runner that enqueues kernels) and
// the per-device resources runners use. Host C++ only; kernels are behind launch.h.
#ifndef TESSERA_BACKENDS_CUDA_OPS_H_
#define TESSERA_BACKENDS_CUDA_OPS_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "backends/cuda/launch.h"
#include "tessera/backend/node.h"
#include "tessera/backend/tensor.h"
#include "tessera/core/status.h"
#include "tessera/plugin_api.h"

namespace tessera::cuda {

using backend::BlockBytes;
using backend::BroadcastsTo;
using backend::DtypeName;
using backend::DtypeSize;
using backend::IsQuantized;
using backend::SameShape;
using backend::ShapeString;
// data is the device address of element [0, ..., 0] when executing.
using backend::TensorRef;

// Walks `ts` (up to three; slot k of the result) over the dims of `shape` (all of them, or all
// but the innermost when `outer_only`), numpy-broadcasting where a tensor's dim is 1 or missing.
// A null entry gets zero strides.
Walk3 MakeWalk(const TensorRef& shape, const TensorRef* const* ts, int n, bool outer_only);

// Device scratch memory of one device, grown on demand and reused (weights and activations live
// in host-owned buffers; this holds per-call intermediates such as split activations). Growing
// synchronizes the stream, so steady state allocates nothing. Not thread-safe: one per device,
// and the ABI serializes calls on a device.
class Scratch {
 public:
  ~Scratch();
  StatusOr<void*> Get(uint64_t bytes, cudaStream_t stream);
  // Bumped whenever the block moves: captured CUDA graphs hold its address (plugin.cc).
  uint64_t generation() const { return generation_; }

 private:
  void* ptr_ = nullptr;
  uint64_t size_ = 0;
  uint64_t generation_ = 0;
};

// What a runner needs from its device.
struct RunContext {
  cudaStream_t stream = nullptr;
  int* err_flag = nullptr;  // device word of DeviceErrorBits
  int matmul_terms = 3;     // bf16 pieces of f32 activations on the tensor-core path
  Scratch* scratch = nullptr;
  // Streaming decode GEMV (launch.h GemvAux): counters, SM count, variant, PDL. gemv.counters ==
  // nullptr (or TESSERA_CUDA_GEMV=0) keeps the block-per-row-group GEMV.
  GemvAux gemv;
  // Device byte ranges the nodes of the current execute write ([begin, end) of each output's
  // buffer): a matmul weight inside one is produced by this execute, so its GEMV must not fetch
  // it before the previous kernel finished (no PDL prefetch).
  std::vector<std::pair<const uint8_t*, const uint8_t*>> writes;
  bool fuse = true;  // decode fusions (TESSERA_CUDA_FUSE=0: off)
  // Ops folded into the next decode GEMV's x load (launch.h GemvPrologue), with `fuse` on:
  // RMS_NORM (default on; TESSERA_CUDA_FUSE_NORM=0: off), SWIGLU (default off, measured slower;
  // TESSERA_CUDA_FUSE_SWIGLU=1: on).
  bool fuse_norm = true;
  // RMS_NORM folded into a decode-batch GEMM's x split (M = 9 .. 64; GemmRmsCandidate):
  // TESSERA_CUDA_FUSE_NORM_SMALLM=0 off.
  bool fuse_norm_smallm = true;
  // Decode batches (M = 9 .. 64; cuda-agg3, GemmFusedCandidate): the residual ADD after a MATMUL
  // in the GEMM's last write (on by default since cu-x64-19: x64 greedy +0.7-1.9%;
  // TESSERA_CUDA_FUSE_ADD_SMALLM=0 off; plugin.cc sets it at device open),
  // SWIGLU before a MATMUL in its x split (TESSERA_CUDA_FUSE_SWIGLU_SMALLM=1 on; off: slower).
  bool fuse_add_smallm = false;
  bool fuse_swiglu_smallm = false;
  // The MATMULs after that RMS_NORM over its output (k/v after q, up after gate) read the q / gate
  // GEMM's split planes instead of splitting x again (TESSERA_CUDA_FUSE_SPLIT_SHARE=0 off).
  bool share_split_smallm = true;
  // Prefill (M > 64; cu-xsplit15): the same split fusions where the prefill GEMM reads planes:
  // q/k/v and gate/up share one split with RMS_NORM in it, SWIGLU in the down projection's split
  // (TESSERA_CUDA_FUSE_PREFILL=0 off: every prefill MATMUL splits its own x). 2: a lab level that
  // also skips storing the norm's / SWIGLU's output where no other node of the view reads it (not
  // the default: the view does not say which tensors the host reads back).
  int fuse_prefill = 1;
  bool fuse_swiglu = false;
  bool fuse_rope_kv = false;  // ROPE q/k + KV_WRITE k/v in one launch (TESSERA_CUDA_FUSE_ROPEKV=1)
};

// A node with its tensors converted (backend::NodeArgs) plus the device it runs on.
struct OpArgs : backend::NodeArgs {
  RunContext* ctx = nullptr;  // null while only validating
};

using OpFn = Status (*)(const OpArgs&);

// The runner of `op` (enqueues kernels): REQUIRES ValidateOp returned OK and every tensor has
// data. nullptr for TSR_OP_NONE and unknown values.
OpFn FindRunner(int op);
using backend::OpName;

// OK = this backend runs the node as given (shapes, dtypes, params only): the shared ABI rules
// (backend::ValidateNode) plus the GPU's own limits (validate.cc).
Status ValidateOp(const OpArgs& a);

// The convolution's geometry (sizes, stride/pad/dilation, groups; not pointers or strides), and
// whether `out` has the shape it produces.
Status ConvShapeFor(const OpArgs& a, ConvParams* p);

// Decode fusions (plugin.cc finds the patterns). GemvCandidate: the MATMUL node `a` (data
// resolved) runs as one streaming bf16 GEMV problem; fills *p. RunGemvGroup launches the members
// of `grp` over p's x in one kernel (launch.h LaunchGemvBf16Group).
bool GemvCandidate(const OpArgs& a, MatmulParams* p);
Status RunGemvGroup(RunContext* ctx, const MatmulParams& p, const GemvGroup& grp,
                    const GemvPrologue& pro = {});
// The RMS_NORM or SWIGLU node `a` (data resolved) can be folded into a GEMV over its output:
// fills *pro (kind, weight/eps/woff or b, y) and *in (x = the op's first input, x_row, M, K).
// max_rows: kGemmRmsMaxRows for the decode-batch GEMM's RMS_NORM fusion (GemmRmsCandidate).
bool GemvPrologueCandidate(const OpArgs& a, GemvPrologue* pro, MatmulParams* in,
                           int64_t max_rows = kGemvMaxRows);
// Decode batches (kGemvMaxRows < M <= kGemmRmsMaxRows): the MATMUL node `a` runs on a GEMM that
// splits x first (launch.h GemmRmsFusable), so an RMS_NORM before it folds into that split;
// fills *p. RunGemmRms launches it (p.x = the norm's input, pro = its kGemvProRms prologue).
bool GemmRmsCandidate(const OpArgs& a, MatmulParams* p);
Status RunGemmRms(RunContext* ctx, const MatmulParams& p, const GemvPrologue& pro);
// Decode batches with the cuda-agg3 fusions: the MATMUL node `a` runs on a GEMM that
// GemmFusable admits with prologue pro_kind (kGemvProNone / kGemvProSwiglu / kGemvProRms) and,
// `residual`, an ADD in its last write; fills *p (no residual fields yet). RunGemmFused launches
// p (p.x = the prologue's input, p.res* = the ADD's operands) with LaunchGemmBf16Fused.
bool GemmFusedCandidate(const OpArgs& a, int pro_kind, bool residual, MatmulParams* p);
Status RunGemmFused(RunContext* ctx, const MatmulParams& p, const GemvPrologue& pro);
// GemmMemberCandidate: the MATMUL node `a` is a decode-batch GEMM on the wgmma planes (launch.h
// GemmSharesSplit) or a member of a grouped launch (gemm_wgmma.h GemmGroupMember); fills *p.
// GemmMembersRunnable: LaunchGemmBf16Members takes ps[0 .. n) (all share the planes, or they
// form a group). RunGemmMembers: LaunchGemmBf16Members over ps[0 .. n).
bool GemmMemberCandidate(const OpArgs& a, MatmulParams* p);
bool GemmMembersRunnable(const MatmulParams* ps, int n, int terms);
Status RunGemmMembers(RunContext* ctx, const MatmulParams* ps, int n, const GemvPrologue& pro);
// Two independent nodes of one kind in one launch (validated, data resolved; KV_WRITEs must
// write their cache in place): a layer's q/k ROPEs, its K/V KV_WRITEs.
Status RunRopePair(const OpArgs& a, const OpArgs& b);
Status RunKvWritePair(const OpArgs& a, const OpArgs& b);
// A layer's ROPE q, ROPE k, KV_WRITE k (of k's ROPE output) and KV_WRITE v (in place) in one
// launch (launch.h LaunchRopeKv), when its staging fits (RopeKvFits).
bool RopeKvFits(const OpArgs& q, const OpArgs& k, const OpArgs& vw);
Status RunRopeKv(const OpArgs& q, const OpArgs& k, const OpArgs& kw, const OpArgs& vw);

// Turns a launch error into a Status naming the op.
Status CudaStatus(cudaError_t e, const char* what);

// Run<Family> for every op family (see TESSERA_BACKEND_OPS).
#define TSR_CUDA_DECLARE_RUNNER(Family) Status Run##Family(const OpArgs& a);
TESSERA_BACKEND_OP_FAMILIES(TSR_CUDA_DECLARE_RUNNER)
#undef TSR_CUDA_DECLARE_RUNNER
// The optional ops this backend runs (TESSERA_BACKEND_OPTIONAL_OPS): ARGMAX (k_argmax.cu).
Status RunArgmax(const OpArgs& a);

}  // namespace tessera::cuda

#endif  // TESSERA_BACKENDS_CUDA_OPS_H_
