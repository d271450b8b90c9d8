// Elementwise f32 ops: ADD/SUB/MUL/DIV (in1 broadcast numpy-style), SCALE, the activations,
// SOFTCAP and the gated units SWIGLU/GEGLU. One thread an element; every element goes through
// the same scalar formula whatever the layout, so results never depend on layout or grid.
#include "backends/cuda/fuse_math.cuh"

namespace tessera::cuda {

namespace {
thread_local bool t_pdl = false;
}  // namespace

void SetPdlLaunches(bool on) {
  t_pdl = on;
}
bool PdlLaunches() {
  return t_pdl;
}
namespace {

__device__ __forceinline__ float Sigmoid(float x) {
  return SigmoidF(x);  // fuse_math.cuh: the down-projection GEMV's SWIGLU prologue shares it
}

__device__ __forceinline__ float GeluTanh(float x) {
  const float inner = 0.7978845608028654f * fmaf(0.044715f * x, x * x, x);
  return 0.5f * x * (1.0f + tanhf(inner));
}

__device__ __forceinline__ float Apply(int op, float a, float b, float p0, float p1) {
  switch (op) {
    case TSR_OP_ADD: return a + b;
    case TSR_OP_SUB: return a - b;
    case TSR_OP_MUL: return a * b;
    case TSR_OP_DIV: return a / b;
    // Multiply then add, two roundings, as the op's definition reads.
    case TSR_OP_SCALE: return __fadd_rn(__fmul_rn(a, p0), p1);
    case TSR_OP_SILU: return a * Sigmoid(a);
    case TSR_OP_GELU: return 0.5f * a * (1.0f + erff(a * 0.70710678118654752f));
    case TSR_OP_GELU_TANH: return GeluTanh(a);
    case TSR_OP_RELU: return fmaxf(a, 0.0f);
    case TSR_OP_TANH: return tanhf(a);
    case TSR_OP_SIGMOID: return Sigmoid(a);
    case TSR_OP_SOFTCAP: return p0 * tanhf(a / p0);
    case TSR_OP_SWIGLU: return SwiGluF(a, b);
    case TSR_OP_GEGLU: return GeluTanh(a) * b;
    default: return 0.0f;
  }
}

__global__ void EltContiguous(EltParams p) {
  GridDepWait();
  AllowDependents();
  const auto* a = reinterpret_cast<const float*>(p.a);
  const auto* b = reinterpret_cast<const float*>(p.b);
  auto* o = reinterpret_cast<float*>(p.out);
  const int64_t n = p.walk.numel;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float bv = b != nullptr ? b[p.b_period == n ? i : i % p.b_period] : 0.0f;
    o[i] = Apply(p.op, a[i], bv, p.p0, p.p1);
  }
}

__global__ void EltStrided(EltParams p) {
  GridDepWait();
  AllowDependents();
  const int64_t n = p.walk.numel;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float av = *reinterpret_cast<const float*>(p.a + WalkOffset(p.walk, 0, i));
    const float bv =
        p.b != nullptr ? *reinterpret_cast<const float*>(p.b + WalkOffset(p.walk, 1, i)) : 0.0f;
    *reinterpret_cast<float*>(p.out + WalkOffset(p.walk, 2, i)) = Apply(p.op, av, bv, p.p0, p.p1);
  }
}

}  // namespace

cudaError_t LaunchElementwise(const EltParams& p, cudaStream_t stream) {
  if (p.walk.numel == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const unsigned grid = GridFor(p.walk.numel, kThreads);
  if (p.contiguous) {
    LaunchK(EltContiguous, grid, kThreads, 0, stream, p);
  } else {
    LaunchK(EltStrided, grid, kThreads, 0, stream, p);
  }
  return cudaGetLastError();
}

}  // namespace tessera::cuda
