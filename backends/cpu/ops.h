// The CPU backend's op registry: for every tsr_op a runner, and the validator (shapes, dtypes,
// params; used by supports_op and again before execute). Runners assume a validated node whose
// tensors all have data.
#ifndef TESSERA_BACKENDS_CPU_OPS_H_
#define TESSERA_BACKENDS_CPU_OPS_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backends/cpu/tensor.h"
#include "backends/cpu/thread_pool.h"
#include "tessera/backend/node.h"
#include "tessera/core/status.h"
#include "tessera/plugin_api.h"

namespace tessera::cpu {

// Per-thread scratch memory of one device, grown on first use and reused afterwards so the
// steady-state hot path does not allocate. Not thread-safe across the same `thread` index.
class Workspace {
 public:
  explicit Workspace(int num_threads) : per_thread_(num_threads) {}
  // At least n floats for `thread`, 64-byte aligned; contents undefined. Valid until the next
  // call for the same thread.
  float* Floats(int thread, size_t n);

 private:
  std::vector<std::vector<float>> per_thread_;
};

// How MATMUL treats f32 activations against Q8/Q4 weights (context option int8_dot):
//   kOff (default): exact f32 activations, weights decoded to f32 (the ABI's semantics; the
//     conformance suite checks it);
//   kOn: activations quantized to int8 per 32-block and integer dots (VNNI where present) —
//     lossy by design, chosen by a host that quantizes weights for speed (engine --quantize);
//   kPortable: as kOn without VNNI (bit-identical to kOn; for tests);
//   kVnniOnly: as kOn without the VBMI byte permutes, as on VNNI CPUs without VBMI (for tests).
enum class Int8Dot { kOff, kOn, kPortable, kVnniOnly };
// Context option repack (packed_weights.h): none, Q8/Q4 of the int8 dot only, or also bf16.
enum class Repack { kOff, kInt8, kAll };

// A node with its tensors converted (backend::NodeArgs) plus what the CPU runners use.
struct OpArgs : backend::NodeArgs {
  ThreadPool* pool = nullptr;        // null while only validating
  Workspace* ws = nullptr;           // null while only validating
  Int8Dot int8_dot = Int8Dot::kOff;  // the context option of that name
  // MATMUL: the weights (in[1]) repacked by packed_weights.h, or null. GET_ROWS: the table
  // (in[0]) if a MATMUL repacked it (a tied embedding), or null.
  const uint8_t* packed_w = nullptr;
};

using OpFn = Status (*)(const OpArgs&);

// The runner of `op`: REQUIRES ValidateOp returned OK and every tensor has data. nullptr for
// TSR_OP_NONE and unknown values. Thread-safe.
OpFn FindRunner(int op);
using backend::OpName;

// OK = this backend runs the node as given: the shared ABI rules (backend::ValidateNode) plus
// the CPU kernels' own layout limits.
Status ValidateOp(const OpArgs& a);

// Runs `fn(begin, end)` over [0, n) split into chunks of at least `grain` items on the pool.
void ParallelRanges(ThreadPool* pool, int64_t n, int64_t grain,
                    const std::function<void(int64_t begin, int64_t end, int thread)>& fn);

// ---- kernels (kernels_*.cc) ----
// Run<Family> for every op family (see TESSERA_BACKEND_OPS).
#define TSR_CPU_DECLARE_RUNNER(Family) Status Run##Family(const OpArgs& a);
TESSERA_BACKEND_OP_FAMILIES(TSR_CPU_DECLARE_RUNNER)
#undef TSR_CPU_DECLARE_RUNNER
// The optional ops this backend runs (TESSERA_BACKEND_OPTIONAL_OPS): ARGMAX (kernels_argmax.cc).
Status RunArgmax(const OpArgs& a);
// What the im2col convolution needs beyond the ABI rules (kernels_conv.cc).
Status ValidateConvLayout(const OpArgs& a);

// ---- the matmul core, shared with the convolutions ----
// Activation rows quantized for the int8 dot of Q8/Q4 weights (kernels_qmatmul.cc), M rows of
// K, laid out per superstep of 512 values (16 blocks; a last partial one is zero-padded) in the
// lane order of the int8 dot: see kernels_qmatmul.cc.
struct QuantizedActs {
  const int8_t* q = nullptr;      // (M, supers, 512) int8 values, permuted
  const int32_t* corr = nullptr;  // (M, supers, 16) -offset x sum of the lane's block's 32 values
  const float* dx = nullptr;      // (M, supers, 16) the lane's block scale
  int64_t steps = 0;              // ceil(K / 128)
  int64_t supers = 0;             // ceil(K / 512)
  // q in the GEMM's operand order (M > 2) instead of the GEMV's step order (see
  // kernels_qmatmul.cc); the values are the same.
  bool blocked = false;
};

// out[m, n] = dot(x[m, :], w[n, :]) (+ bias[n]) for m < M, n0 <= n < n1. Element strides.
// Every output element is reduced in one fixed order (see kernels_matmul.cc), whatever M, the
// column range or the thread, so results are batch-invariant.
struct MatmulProblem {
  const float* x = nullptr;  // (M, K), row stride x_row_stride elements, rows contiguous
  int64_t x_row_stride = 0;
  int64_t M = 0, K = 0, N = 0;
  const uint8_t* w = nullptr;  // (N, K) in w_dtype, row stride w_row_bytes
  int64_t w_row_bytes = 0;
  tsr_dtype w_dtype = TSR_DTYPE_F32;
  const float* bias = nullptr;  // (N) or null
  float* out = nullptr;         // out[m * out_row_stride + n * out_col_stride]
  int64_t out_row_stride = 0, out_col_stride = 1;
  // Q8/Q4 weights: the quantized activations (x's rows); null = decode weights to f32 instead.
  const QuantizedActs* qx = nullptr;
  Int8Dot int8_dot = Int8Dot::kOff;  // see Int8Dot; kOff ignores qx
  // Weights packed by packed_weights.h: w points at the copy, w_row_bytes is unchanged. bf16:
  // the GEMV tile order (row n's 8-row tile starts at w + n / 8 * 8 * w_row_bytes); Q8/Q4 (with
  // qx): rows in place, full supersteps in the int8 dot's operand order.
  bool w_packed = false;
  // The GEMM's x (M > 2, f32 path) packed by PackGemmX (kernels_matmul.cc), or null to read x.
  const float* xp = nullptr;
};

// Software prefetch policy of the matmul kernels, read once from the environment (lab switches
// for A/B runs; the defaults are the tuned policy):
//   TESSERA_CPU_GEMV_PREFETCH_MAX=BYTES  GEMV tiles larger than this are not prefetched
//                                        (default: all; 16384 was the policy before 2026-11-26)
//   TESSERA_CPU_GEMM_PREFETCH=0          no prefetch of the GEMM's next weight group
//   TESSERA_CPU_GEMV_ROW_AHEAD=BYTES     how far ahead in each row's stream the f32/f16/bf16
//                                        and int8 GEMV tiles prefetch (RowPrefetch; default
//                                        512; 0: the next tile as one run, TilePrefetch, the
//                                        policy before 2026-11-27)
//   TESSERA_CPU_GEMV_PREFETCH_T1=0|1     the GEMV prefetches as prefetcht0 / prefetcht1
//                                        (default: t1 on Zen 4, t0 elsewhere)
struct MatmulPrefetchPolicy {
  int64_t gemv_max_tile_bytes = INT64_MAX;
  bool gemm = true;
  int64_t gemv_row_ahead = 512;
  // Dense GEMV rows shorter than this take the next-tile prefetch instead of the row streams'
  // (DenseRowAhead): every row on Zen 4, none elsewhere (kernels_matmul.cc, cpu-q32 / q33).
  int64_t gemv_next_tile_below = 0;
  // The GEMV prefetches (TilePrefetch, RowPrefetch) as prefetcht1 (locality 2) instead of
  // prefetcht0 (3): on Zen 4, where it reads q8 decode passes 15-20% faster (kernels_matmul.cc,
  // cpu-q33); TESSERA_CPU_GEMV_PREFETCH_T1=0 / 1 sets it anywhere.
  bool gemv_t1 = false;
};

const MatmulPrefetchPolicy& PrefetchPolicy();

// A GEMV tile's software prefetch of the next tile's bytes [base, base + bytes), spread over its
// K steps: each Step() issues the next ceil(bytes / steps) bytes, rounded up to whole lines.
// Three live values (position, end, bytes per step) and no division per step: the earlier
// floor(bytes * s / steps) schedule kept a 64-bit division on every K step, and a quotient /
// remainder form of it kept more registers live, which in the Q4 GEMV tile pushed its loop
// counter and a weight load to the stack.
// The hint is PrefetchPolicy().gemv_t1's (prefetcht1 or prefetcht0), read at construction.
class TilePrefetch {
 public:
  TilePrefetch(const void* base, int64_t bytes, int64_t steps)
      : cur_(reinterpret_cast<uintptr_t>(base)),
        end_(cur_ + static_cast<uintptr_t>(bytes > 0 ? bytes : 0)),
        per_step_(static_cast<uintptr_t>(
            bytes > 0 && steps > 0 ? ((bytes + steps - 1) / steps + 63) / 64 * 64 : 0)),
        t1_(PrefetchPolicy().gemv_t1) {}
  void Step() {
    const uintptr_t stop = std::min(cur_ + per_step_, end_);
    if (t1_) {
      for (; cur_ < stop; cur_ += 64) __builtin_prefetch(reinterpret_cast<const void*>(cur_), 0, 2);
    } else {
      for (; cur_ < stop; cur_ += 64) __builtin_prefetch(reinterpret_cast<const void*>(cur_), 0, 3);
    }
  }

 private:
  uintptr_t cur_, end_, per_step_;
  bool t1_;
};

// A GEMV tile's software prefetch inside its own NR row streams (plain f32/f16/bf16 rows, and
// the int8 tile over Q8/Q4 rows as mapped): every row's lines up to `ahead` bytes in front of
// where the tile reads, one line of all NR rows at a time; past a row's end the stream
// continues in the same row of the next tile (NR rows further), so the next tile starts with
// its first `ahead` bytes on the way. Rows are `stride` bytes apart and `row_bytes` of each are
// read. The position carries from tile to tile (Next); the first tile of a range starts at 0.
// Hints only: prefetches never fault, so the last tile may hint past the matrix.
//
// Why in the row streams rather than the next tile as one run (TilePrefetch): on the Zen 5 dev
// box a bf16 GEMV that prefetches the next tile streams 0.71-0.87 of the read probe per
// CPU-second, one that prefetches nothing ~0.75-0.8 (its widening and FMAs wait on the loads
// and fill the scheduler before enough lines are in flight: the same 8-row pattern with loads
// and adds alone reads at the probe's rate), one that prefetches 512 bytes ahead in each row
// 0.93-1.0 (backends/cpu/lab/bf16_gemv_lab.cc, Qwen2.5-0.5B and Llama-3.2-1B decode passes, one
// and two threads; 256 bytes and 2-4 KiB ahead less). The int8 GEMV gains the same way
// (kernels_qmatmul-inl.h TileVnni).
template <int NR>
class RowPrefetch {
 public:
  RowPrefetch(const uint8_t* tile, int64_t stride, int64_t row_bytes, int64_t ahead, int64_t next)
      : tile_(tile),
        stride_(stride),
        row_bytes_(row_bytes),
        ahead_(ahead),
        next_(next),
        t1_(PrefetchPolicy().gemv_t1) {}
  // Issues the lines that start less than `ahead` bytes past byte `at` of the rows (the hint:
  // PrefetchPolicy().gemv_t1's, as TilePrefetch).
  void Step(int64_t at) {
    for (; next_ < at + ahead_; next_ += 64) {
      const uint8_t* q =
          next_ < row_bytes_ ? tile_ + next_ : tile_ + NR * stride_ + (next_ - row_bytes_);
      if (t1_) {
        for (int j = 0; j < NR; ++j) __builtin_prefetch(q + j * stride_, 0, 2);
      } else {
        for (int j = 0; j < NR; ++j) __builtin_prefetch(q + j * stride_, 0, 3);
      }
    }
  }
  // Where the next tile's prefetch starts (its byte position, >= 0).
  int64_t Next() const { return next_ > row_bytes_ ? next_ - row_bytes_ : 0; }

 private:
  const uint8_t* tile_;  // row 0 of the tile
  int64_t stride_, row_bytes_, ahead_;
  int64_t next_;  // byte position of the next line to issue
  bool t1_;
};

// Columns [n0, n1) of every row, on the calling thread. `scratch` holds >= MatmulScratchFloats(K).
void MatmulColumns(const MatmulProblem& p, int64_t n0, int64_t n1, float* scratch);
size_t MatmulScratchFloats(int64_t K);
// The packed bf16 rows of packed_weights.h work with the dispatched SIMD target (f32 lanes
// divide the 32-value chunk).
bool PackedRowsSupported();
// All columns, split across the pool.
void MatmulParallel(const MatmulProblem& p, ThreadPool* pool, Workspace* ws);
// Several validated MATMUL nodes (sibling matmuls of one decode x: q, k, v; gate, up) as one
// pool job over the union of their column tasks; the pool and workspace are group[0]'s. Every
// element is computed exactly as RunMatmul computes it, and int8 activations are quantized once
// for members that would quantize them identically. REQUIRES: no member's output overlaps any
// member's input or another member's output (plugin.cc checks it).
Status RunMatmulGroup(const OpArgs* const* group, int n);
// The int8 path (kernels_qmatmul.cc). QuantizedActBytes: storage for M rows of K;
// LayoutQuantizedActs: views into it; QuantizeActRows: fills rows [m0, m1) from p.x (p.w_dtype
// picks the offset); QMatmulColumns: like MatmulColumns, REQUIRES p.qx.
size_t QuantizedActBytes(int64_t M, int64_t K);
// operand_weights: the weights are operand-packed (packed_weights.h; VNNI path only).
QuantizedActs LayoutQuantizedActs(uint8_t* storage, int64_t M, int64_t K,
                                  bool operand_weights = false);
void QuantizeActRows(const MatmulProblem& p, const QuantizedActs& a, int64_t m0, int64_t m1);
void QMatmulColumns(const MatmulProblem& p, int64_t n0, int64_t n1);

}  // namespace tessera::cpu

#endif  // TESSERA_BACKENDS_CPU_OPS_H_
