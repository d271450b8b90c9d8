// MATMUL: out[M.., N] = x[M.., K] * w[N, K]^T (+ bias), weights f32/f16/bf16/q8_b32/q4_b32.
//
// Batch invariance. Every output element is one dot product reduced in a single fixed order:
// one vector accumulator of Lanes(f32) lanes walks K from 0 in steps of Lanes with fused
// multiply-adds (lane l sums k = l, l + Lanes, ...), then SumOfLanes, then the K % Lanes tail
// added in order with scalar fma, then the bias. The GEMV path (weights decoded in registers)
// and the GEMM path (weights decoded into an f32 tile first, reused across rows) run exactly
// this sequence for each element; they differ only in how many independent accumulators they
// keep in flight. Decoding f16/bf16/q8/q4 to f32 is exact, so both paths see identical weights.
// Hence out[m, n] depends only on x[m, :], w[n, :] and bias[n]: not on M, the thread count or
// which column chunk a thread took.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/kernels_matmul.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "backends/cpu/convert.h"
#include "backends/cpu/ops.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace tessera::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Weight-row readers: Load returns weights [k, k + Lanes) as f32, Scalar one weight.
struct RowF32 {
  const float* row;
  HWY_INLINE VF Load(DF df, int64_t k) const { return hn::LoadU(df, row + k); }
  HWY_INLINE float Scalar(int64_t k) const { return row[k]; }
};

struct RowF16 {
  const hwy::float16_t* row;
  HWY_INLINE VF Load(DF df, int64_t k) const {
    return hn::PromoteTo(df, hn::LoadU(hn::Rebind<hwy::float16_t, DF>(), row + k));
  }
  HWY_INLINE float Scalar(int64_t k) const {
    uint16_t bits;
    std::memcpy(&bits, row + k, 2);
    return F16ToF32(bits);
  }
};

struct RowBF16 {
  const hwy::bfloat16_t* row;
  HWY_INLINE VF Load(DF df, int64_t k) const {
    return hn::PromoteTo(df, hn::LoadU(hn::Rebind<hwy::bfloat16_t, DF>(), row + k));
  }
  HWY_INLINE float Scalar(int64_t k) const {
    uint16_t bits;
    std::memcpy(&bits, row + k, 2);
    return Bf16ToF32(bits);
  }
};

// A block's binary16 scale broadcast to all lanes, converted in-register (F16C where present)
// rather than with the scalar bit-twiddling decode.
HWY_INLINE VF BlockScale(DF df, const uint8_t* block) {
  const hn::Rebind<uint16_t, DF> du16;
  const hn::Rebind<hwy::float16_t, DF> df16;
  return hn::PromoteTo(df, hn::BitCast(df16, hn::Set(du16, LoadU16(block))));
}

// Quantized rows: K is a multiple of 32 and Lanes divides 16, so a load never straddles a block
// or a nibble half.
struct RowQ8 {
  const uint8_t* row;
  HWY_INLINE VF Load(DF df, int64_t k) const {
    const uint8_t* block = row + (k / TSR_QBLOCK) * TSR_BLOCK_Q8_BYTES;
    const int64_t i = k % TSR_QBLOCK;
    const hn::Rebind<int32_t, DF> di;
    const hn::Rebind<int8_t, DF> d8;
    const auto q = hn::PromoteTo(di, hn::LoadU(d8, reinterpret_cast<const int8_t*>(block + 2 + i)));
    return hn::Mul(hn::ConvertTo(df, q), BlockScale(df, block));
  }
  HWY_INLINE float Scalar(int64_t k) const {
    return DequantQ8(row + (k / TSR_QBLOCK) * TSR_BLOCK_Q8_BYTES, static_cast<int>(k % TSR_QBLOCK));
  }
};

struct RowQ4 {
  const uint8_t* row;
  HWY_INLINE VF Load(DF df, int64_t k) const {
    const uint8_t* block = row + (k / TSR_QBLOCK) * TSR_BLOCK_Q4_BYTES;
    const int64_t i = k % TSR_QBLOCK;
    const hn::Rebind<int32_t, DF> di;
    const hn::Rebind<uint8_t, DF> d8;
    const auto bytes = hn::PromoteTo(di, hn::LoadU(d8, block + 2 + (i & 15)));
    const auto nib = i < 16 ? hn::And(bytes, hn::Set(di, 15)) : hn::ShiftRight<4>(bytes);
    const VF w = hn::ConvertTo(df, hn::Sub(nib, hn::Set(di, 8)));
    return hn::Mul(w, BlockScale(df, block));
  }
  HWY_INLINE float Scalar(int64_t k) const {
    return DequantQ4(row + (k / TSR_QBLOCK) * TSR_BLOCK_Q4_BYTES, static_cast<int>(k % TSR_QBLOCK));
  }
};

// MR rows of x times NR weight rows: MR * NR independent accumulators, each following the
// canonical per-element order described at the top of the file.
template <int MR, int NR, class Row>
HWY_INLINE void Tile(const MatmulProblem& p, int64_t m0, int64_t n0, const Row* rows) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const int64_t K = p.K;
  const float* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = p.x + (m0 + i) * p.x_row_stride;
  VF acc[MR][NR];
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) acc[i][j] = hn::Zero(df);
  }
  int64_t k = 0;
  for (; k + L <= K; k += L) {
    VF w[NR];
    for (int j = 0; j < NR; ++j) w[j] = rows[j].Load(df, k);
    for (int i = 0; i < MR; ++i) {
      const VF xv = hn::LoadU(df, x[i] + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = hn::MulAdd(xv, w[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    float* out = p.out + (m0 + i) * p.out_row_stride;
    for (int j = 0; j < NR; ++j) {
      float s = hn::GetLane(hn::SumOfLanes(df, acc[i][j]));
      for (int64_t kk = k; kk < K; ++kk) s = std::fma(x[i][kk], rows[j].Scalar(kk), s);
      if (p.bias != nullptr) s += p.bias[n0 + j];
      out[(n0 + j) * p.out_col_stride] = s;
    }
  }
}

template <class Row>
Row MakeRow(const MatmulProblem& p, int64_t n) {
  return Row{reinterpret_cast<decltype(Row::row)>(p.w + n * p.w_row_bytes)};
}

// One row of x against weights streamed straight from memory, 8 weight rows at a time so eight
// accumulators hide the FMA latency.
template <class Row>
void Gemv(const MatmulProblem& p, int64_t m, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + 8 <= n1; n += 8) {
    Row rows[8];
    for (int j = 0; j < 8; ++j) rows[j] = MakeRow<Row>(p, n + j);
    Tile<1, 8>(p, m, n, rows);
  }
  for (; n < n1; ++n) {
    const Row row = MakeRow<Row>(p, n);
    Tile<1, 1>(p, m, n, &row);
  }
}

// Decodes weight rows [n, n + nr) to f32 rows of stride ks in `dst` (exact conversion).
template <class Row>
void DecodeRows(const MatmulProblem& p, int64_t n, int nr, float* dst, int64_t ks) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  for (int j = 0; j < nr; ++j) {
    const Row row = MakeRow<Row>(p, n + j);
    float* d = dst + j * ks;
    int64_t k = 0;
    for (; k + L <= p.K; k += L) hn::StoreU(row.Load(df, k), df, d + k);
    for (; k < p.K; ++k) d[k] = row.Scalar(k);
  }
}

// Rows [m0, m1) against nr (<= 4) f32 weight rows.
void GemmBlock(const MatmulProblem& p, int64_t m0, int64_t m1, int64_t n, int nr,
               const RowF32* rows) {
  int64_t m = m0;
  if (nr == 4) {
    for (; m + 4 <= m1; m += 4) Tile<4, 4>(p, m, n, rows);
    for (; m < m1; ++m) Tile<1, 4>(p, m, n, rows);
    return;
  }
  for (int j = 0; j < nr; ++j) {
    int64_t mm = m0;
    for (; mm + 4 <= m1; mm += 4) Tile<4, 1>(p, mm, n + j, rows + j);
    for (; mm < m1; ++mm) Tile<1, 1>(p, mm, n + j, rows + j);
  }
}

// Many rows: x is blocked by 64 rows (kept in cache while the weights stream past); each group
// of 4 weight rows is decoded to f32 once per row block and reused by all its rows.
template <class Row>
void Gemm(const MatmulProblem& p, int64_t n0, int64_t n1, float* scratch) {
  constexpr int64_t kRowBlock = 64;
  const int64_t ks = (p.K + 15) / 16 * 16;
  for (int64_t mb = 0; mb < p.M; mb += kRowBlock) {
    const int64_t me = std::min(p.M, mb + kRowBlock);
    for (int64_t n = n0; n < n1; n += 4) {
      const int nr = static_cast<int>(std::min<int64_t>(4, n1 - n));
      RowF32 rows[4];
      if constexpr (std::is_same_v<Row, RowF32>) {
        for (int j = 0; j < nr; ++j) rows[j] = MakeRow<RowF32>(p, n + j);
      } else {
        DecodeRows<Row>(p, n, nr, scratch, ks);
        for (int j = 0; j < nr; ++j) rows[j] = RowF32{scratch + j * ks};
      }
      GemmBlock(p, mb, me, n, nr, rows);
    }
  }
}

template <class Row>
void Columns(const MatmulProblem& p, int64_t n0, int64_t n1, float* scratch) {
  // Up to two rows the weights are cheaper to stream twice than to decode into a tile.
  if (p.M <= 2) {
    for (int64_t m = 0; m < p.M; ++m) Gemv<Row>(p, m, n0, n1);
  } else {
    Gemm<Row>(p, n0, n1, scratch);
  }
}

void MatmulColumnsImpl(const MatmulProblem& p, int64_t n0, int64_t n1, float* scratch) {
  switch (p.w_dtype) {
    case TSR_DTYPE_F32: return Columns<RowF32>(p, n0, n1, scratch);
    case TSR_DTYPE_F16: return Columns<RowF16>(p, n0, n1, scratch);
    case TSR_DTYPE_BF16: return Columns<RowBF16>(p, n0, n1, scratch);
    case TSR_DTYPE_Q8_B32: return Columns<RowQ8>(p, n0, n1, scratch);
    case TSR_DTYPE_Q4_B32: return Columns<RowQ4>(p, n0, n1, scratch);
    default: return;  // rejected by validation
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tessera::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tessera::cpu {

HWY_EXPORT(MatmulColumnsImpl);

void MatmulColumns(const MatmulProblem& p, int64_t n0, int64_t n1, float* scratch) {
  HWY_DYNAMIC_DISPATCH(MatmulColumnsImpl)(p, n0, n1, scratch);
}

size_t MatmulScratchFloats(int64_t K) {
  return static_cast<size_t>(4 * ((K + 15) / 16 * 16));
}

namespace {

// Columns per task: a multiple of 8 (the GEMV group), about four tasks a thread.
int64_t ColumnChunk(int64_t N, int threads) {
  const int64_t want = static_cast<int64_t>(threads) * 4;
  const int64_t chunk = (N + want - 1) / want;
  return std::max<int64_t>(16, (chunk + 7) / 8 * 8);
}

// Runs n_problems independent problems (batch slices) with their columns split across the pool.
void RunProblems(const MatmulProblem* problems, int64_t n_problems, ThreadPool* pool,
                 Workspace* ws) {
  if (n_problems == 0) return;
  const MatmulProblem& first = problems[0];
  const int64_t chunk = ColumnChunk(first.N, pool->num_threads());
  const int64_t per_problem = (first.N + chunk - 1) / chunk;
  if (per_problem == 0) return;
  const size_t scratch_floats = MatmulScratchFloats(first.K);
  pool->ParallelFor(n_problems * per_problem, [&](int64_t task, int thread) {
    const MatmulProblem& p = problems[task / per_problem];
    const int64_t n0 = (task % per_problem) * chunk;
    MatmulColumns(p, n0, std::min(p.N, n0 + chunk), ws->Floats(thread, scratch_floats));
  });
}

bool IsWeightDtype(tsr_dtype t) {
  return t == TSR_DTYPE_F32 || t == TSR_DTYPE_F16 || t == TSR_DTYPE_BF16 || t == TSR_DTYPE_Q8_B32 ||
         t == TSR_DTYPE_Q4_B32;
}

// Element stride of dim i of an f32 tensor.
int64_t F32Stride(const TensorRef& t, int i) {
  return t.stride(i) / 4;
}

}  // namespace

void MatmulParallel(const MatmulProblem& p, ThreadPool* pool, Workspace* ws) {
  RunProblems(&p, 1, pool, ws);
}

Status ValidateMatmul(const OpArgs& a) {
  TSR_RETURN_IF_ERROR(RequireInput(a, 0, "x", TSR_DTYPE_F32));
  TSR_RETURN_IF_ERROR(RequireInput(a, 1, "weight"));
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  const TensorRef& out = *a.out;
  TSR_RETURN_IF_ERROR(RequireDtype(out, TSR_DTYPE_F32, "output"));
  if (!IsWeightDtype(w.dtype)) return InvalidArgument("unsupported weight dtype " + ShapeString(w));
  if (w.ndim != 2 && w.ndim != 3)
    return InvalidArgument("weight must be [N, K] or [B, N, K], got " + ShapeString(w));
  const int64_t N = w.dim(-2), K = w.dim(-1);
  if (x.ndim < 1 || x.dim(-1) != K)
    return InvalidArgument("x " + ShapeString(x) + " does not match weight " + ShapeString(w));
  if (w.ndim == 3 && (x.ndim != 3 || x.ne[0] != w.ne[0])) {
    return InvalidArgument("batched weight " + ShapeString(w) + " needs x [B, M, K], got " +
                           ShapeString(x));
  }
  if (out.ndim != x.ndim || out.dim(-1) != N)
    return InvalidArgument("output " + ShapeString(out) + " must be x's shape with N last");
  for (int i = 0; i + 1 < x.ndim; ++i) {
    if (out.ne[i] != x.ne[i])
      return InvalidArgument("output " + ShapeString(out) + " does not match x " + ShapeString(x));
  }
  TSR_RETURN_IF_ERROR(RequireInnerContiguous(x, "x"));
  TSR_RETURN_IF_ERROR(RequireInnerContiguous(w, "weight"));
  for (int i = 0; i < out.ndim; ++i) {
    if (out.nb[i] % 4 != 0 || x.nb[i] % 4 != 0)
      return InvalidArgument("f32 strides must be multiples of 4 bytes");
  }
  if (const TensorRef* b = a.input(2)) {
    TSR_RETURN_IF_ERROR(RequireDtype(*b, TSR_DTYPE_F32, "bias"));
    if (b->ndim != 1 || b->ne[0] != N || !b->InnerContiguous())
      return InvalidArgument("bias must be contiguous [N], got " + ShapeString(*b));
  }
  return OkStatus();
}

Status RunMatmul(const OpArgs& a) {
  const TensorRef& x = *a.in[0];
  const TensorRef& w = *a.in[1];
  const TensorRef& out = *a.out;
  const TensorRef* bias = a.input(2);
  // x is viewed as slices [S][M, K]: S = product of the dims above the last two.
  if (out.NumElements() == 0) return OkStatus();
  const int64_t M = x.ndim >= 2 ? x.dim(-2) : 1;
  int64_t S = 1;
  for (int d = 0; d + 2 < x.ndim; ++d) S *= x.ne[d];
  std::vector<MatmulProblem> problems(static_cast<size_t>(S));
  for (int64_t s = 0; s < S; ++s) {
    // Byte offsets of slice s in x and out (row-major over dims [0, ndim - 2)).
    int64_t xo = 0, oo = 0, rem = s;
    for (int d = x.ndim - 3; d >= 0; --d) {
      const int64_t i = rem % x.ne[d];
      rem /= x.ne[d];
      xo += i * x.nb[d];
      oo += i * out.nb[d];
    }
    MatmulProblem& p = problems[static_cast<size_t>(s)];
    p.x = reinterpret_cast<const float*>(x.data + xo);
    p.x_row_stride = F32Stride(x, -2);
    p.M = M;
    p.K = w.dim(-1);
    p.N = w.dim(-2);
    p.w = w.data + (w.ndim == 3 ? s * w.nb[0] : 0);
    p.w_row_bytes = w.stride(-2);
    p.w_dtype = w.dtype;
    p.bias = bias != nullptr ? bias->As<const float>() : nullptr;
    p.out = reinterpret_cast<float*>(out.data + oo);
    p.out_row_stride = F32Stride(out, -2);
    p.out_col_stride = F32Stride(out, -1);
  }
  RunProblems(problems.data(), S, a.pool, a.ws);
  return OkStatus();
}

}  // namespace tessera::cpu
#endif  // HWY_ONCE
