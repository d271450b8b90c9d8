// Data movement and small per-element ops: ROPE, COPY (casts, reshapes, quantize/dequantize),
// GET_ROWS and KV_WRITE. Memory-bound; one thread an element (a block of 32 when quantizing).
// Conversions are bit-exact with the CPU reference (backends/cpu/convert.h, kernels_data.cc).
#include "backends/cuda/dev_common.cuh"

namespace tessera::cuda {
namespace {

constexpr int kThreads = 256;
// One block does a whole decode step's ROPE + KV_WRITE (RopeKvKernel): a quarter of an SM's
// registers, so it can start on an SM that still runs the previous kernel's tail.
constexpr int kRopeKvThreads = 256;

#define TSR_GRID_STRIDE(i, n)                                               \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x)

__device__ __forceinline__ int64_t DtypeSizeDev(int t) {
  switch (t) {
    case TSR_DTYPE_F32:
    case TSR_DTYPE_I32: return 4;
    case TSR_DTYPE_F16:
    case TSR_DTYPE_BF16: return 2;
    case TSR_DTYPE_I64: return 8;
    default: return 1;
  }
}

// As the reference: every plain dtype is read through double.
__device__ double ReadScalar(const uint8_t* p, int t) {
  switch (t) {
    case TSR_DTYPE_F32: return *reinterpret_cast<const float*>(p);
    case TSR_DTYPE_F16: return F16Bits(*reinterpret_cast<const uint16_t*>(p));
    case TSR_DTYPE_BF16: return Bf16Bits(*reinterpret_cast<const uint16_t*>(p));
    case TSR_DTYPE_I32: return *reinterpret_cast<const int32_t*>(p);
    case TSR_DTYPE_I64: return static_cast<double>(*reinterpret_cast<const int64_t*>(p));
    case TSR_DTYPE_I8: return static_cast<int8_t>(*p);
    case TSR_DTYPE_U8: return *p;
    default: return 0.0;
  }
}

// Integers go to i32 without a float round trip (i64 saturates); floats truncate, saturated.
__device__ int32_t ReadAsI32(const uint8_t* p, int t) {
  if (t == TSR_DTYPE_I64) {
    const int64_t v = *reinterpret_cast<const int64_t*>(p);
    return static_cast<int32_t>(v < INT32_MIN ? INT32_MIN : (v > INT32_MAX ? INT32_MAX : v));
  }
  const double v = ReadScalar(p, t);
  if (isnan(v)) return 0;
  const double c = fmin(fmax(trunc(v), double(INT32_MIN)), double(INT32_MAX));
  return static_cast<int32_t>(c);
}

__device__ void ConvertOne(const uint8_t* src, int st, uint8_t* dst, int dt) {
  if (st == dt) {
    for (int64_t b = 0; b < DtypeSizeDev(st); ++b) dst[b] = src[b];
  } else if (dt == TSR_DTYPE_I32) {
    *reinterpret_cast<int32_t*>(dst) = ReadAsI32(src, st);
  } else {
    WriteFloat(static_cast<float>(ReadScalar(src, st)), dst, dt);
  }
}

__host__ __device__ inline int64_t RopeItems(const RopeParams& p) {
  return p.T * p.H * (p.R / 2 + (p.D - p.R));
}

// Item u of a ROPE: one rotated pair (or one pass-through dim) of one token and head, handed
// to store(t, h, d, value) (RopeOne: the op's output; RopeKvKernel: shared-memory staging).
template <class Store>
__device__ __forceinline__ void RopeItem(const RopeParams& p, int64_t u, Store store) {
  const int64_t half = p.R / 2, per = half + (p.D - p.R);
  const int64_t th = u / per, i = u % per;
  const int64_t t = th / p.H, h = th % p.H;
  const uint8_t* src = p.x + t * p.x_tok + h * p.x_head;
  if (i >= half) {  // a pass-through dim
    const int64_t d = p.R + (i - half);
    store(t, h, d, *reinterpret_cast<const float*>(src + d * p.x_el));
    return;
  }
  const float angle = static_cast<float>(p.pos[t]) * p.inv_freq[i];  // f32, as HF forms it
  float s, c;
  sincosf(angle, &s, &c);
  c *= p.attn_scale;
  s *= p.attn_scale;
  const int64_t i0 = p.interleaved ? 2 * i : i, i1 = p.interleaved ? 2 * i + 1 : i + half;
  const float x0 = *reinterpret_cast<const float*>(src + i0 * p.x_el);
  const float x1 = *reinterpret_cast<const float*>(src + i1 * p.x_el);
  store(t, h, i0, x0 * c - x1 * s);
  store(t, h, i1, x1 * c + x0 * s);
}

__device__ __forceinline__ void RopeOne(const RopeParams& p, int64_t u) {
  RopeItem(p, u, [&](int64_t t, int64_t h, int64_t d, float v) {
    *reinterpret_cast<float*>(p.out + t * p.o_tok + h * p.o_head + d * p.o_el) = v;
  });
}

__global__ void RopeKernel(RopeParams p) {
  GridDepWait();
  AllowDependents();
  TSR_GRID_STRIDE(u, RopeItems(p)) RopeOne(p, u);
}

// Two independent ROPEs (q and k of a layer) in one launch: items [0, na) are a's.
__global__ void Rope2Kernel(RopeParams a, RopeParams b, int64_t na, int64_t n) {
  GridDepWait();
  AllowDependents();
  TSR_GRID_STRIDE(u, n) {
    if (u < na) {
      RopeOne(a, u);
    } else {
      RopeOne(b, u - na);
    }
  }
}

__global__ void ConvertKernel(ConvertParams p) {
  GridDepWait();
  AllowDependents();
  TSR_GRID_STRIDE(i, p.walk.numel) {
    const int64_t si = p.flat ? WalkOffset(p.in_flat, 0, i) : WalkOffset(p.walk, 0, i);
    const int64_t di = p.flat ? WalkOffset(p.out_flat, 0, i) : WalkOffset(p.walk, 2, i);
    ConvertOne(p.in + si, p.in_dtype, p.out + di, p.out_dtype);
  }
}

// binary16 bits of f, round-to-nearest-even, in integer arithmetic (the reference's F32ToF16).
__device__ uint16_t HalfBitsRne(float f) {
  const uint32_t x = __float_as_uint(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t exp = (x >> 23) & 0xffu;
  const uint32_t mant = x & 0x7fffffu;
  if (exp == 0xff) return sign | 0x7c00u | (mant ? (0x200u | (mant >> 13)) : 0u);
  const int32_t e = static_cast<int32_t>(exp) - 127 + 15;
  if (e >= 31) return sign | 0x7c00u;
  if (e <= 0) {
    if (e < -10) return sign;
    const uint32_t m = mant | 0x800000u;
    const int shift = 14 - e;
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t h = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

// quant_formats.h's reference quantizers, bit for bit. The block is assembled in registers and
// stored byte by byte (blocks are only byte-aligned).
__device__ void QuantizeQ8(const float* x, uint8_t* blk) {
  float amax = 0.0f;
  for (int i = 0; i < TSR_QBLOCK; ++i) amax = fmaxf(amax, fabsf(x[i]));
  const float d = __fdiv_rn(amax, 127.0f);
  const uint32_t dh = HalfBitsRne(d);
  uint8_t buf[TSR_BLOCK_Q8_BYTES];
  buf[0] = static_cast<uint8_t>(dh & 0xffu);
  buf[1] = static_cast<uint8_t>(dh >> 8);
#pragma unroll
  for (int i = 0; i < TSR_QBLOCK; ++i) {
    float q = d == 0.0f ? 0.0f : roundf(__fdiv_rn(x[i], d));
    q = fminf(fmaxf(q, -127.0f), 127.0f);
    buf[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(static_cast<int>(q)));
  }
#pragma unroll
  for (int b = 0; b < TSR_BLOCK_Q8_BYTES; ++b) blk[b] = buf[b];
}

__device__ void QuantizeQ4(const float* x, uint8_t* blk) {
  float amax = 0.0f, m = 0.0f;
  for (int i = 0; i < TSR_QBLOCK; ++i) {
    if (fabsf(x[i]) > amax) {
      amax = fabsf(x[i]);
      m = x[i];
    }
  }
  const float d = __fdiv_rn(m, -8.0f);
  const uint32_t dh = HalfBitsRne(d);
  uint8_t buf[TSR_BLOCK_Q4_BYTES];
  buf[0] = static_cast<uint8_t>(dh & 0xffu);
  buf[1] = static_cast<uint8_t>(dh >> 8);
  int nib[TSR_QBLOCK];
#pragma unroll
  for (int i = 0; i < TSR_QBLOCK; ++i) {
    if (d == 0.0f) {
      nib[i] = 8;
      continue;
    }
    const float q = __fadd_rn(__fdiv_rn(x[i], d), 8.5f);  // no contraction: as specified
    nib[i] = static_cast<int>(fminf(fmaxf(truncf(q), 0.0f), 15.0f));
  }
#pragma unroll
  for (int i = 0; i < TSR_QBLOCK / 2; ++i)
    buf[2 + i] = static_cast<uint8_t>(nib[i] | (nib[i + 16] << 4));
#pragma unroll
  for (int b = 0; b < TSR_BLOCK_Q4_BYTES; ++b) blk[b] = buf[b];
}

__global__ void QuantRowsKernel(QuantRowsParams p) {
  GridDepWait();
  AllowDependents();
  const int64_t blocks_per_row = p.n / TSR_QBLOCK;
  const bool quantize = p.out_dtype == TSR_DTYPE_Q8_B32 || p.out_dtype == TSR_DTYPE_Q4_B32;
  const bool same = p.in_dtype == p.out_dtype;
  const int64_t units = quantize ? p.rows * blocks_per_row : p.rows * p.n;
  TSR_GRID_STRIDE(u, units) {
    const int64_t per = quantize ? blocks_per_row : p.n;
    const int64_t r = u / per, k = u % per;
    const uint8_t* in = p.in + WalkOffset(p.walk, 0, r);
    uint8_t* out = p.out + WalkOffset(p.walk, 2, r);
    if (quantize && same) {
      const int64_t bb = BlockBytesDev(p.out_dtype);
      for (int64_t b = 0; b < bb; ++b) out[k * bb + b] = in[k * bb + b];
    } else if (quantize) {
      float x[TSR_QBLOCK];
      for (int i = 0; i < TSR_QBLOCK; ++i)
        x[i] = *reinterpret_cast<const float*>(in + (k * TSR_QBLOCK + i) * p.in_el);
      if (p.out_dtype == TSR_DTYPE_Q8_B32) {
        QuantizeQ8(x, out + k * TSR_BLOCK_Q8_BYTES);
      } else {
        QuantizeQ4(x, out + k * TSR_BLOCK_Q4_BYTES);
      }
    } else {
      WriteFloat(DequantAt(in, p.in_dtype, k), out + k * p.out_el, p.out_dtype);
    }
  }
}

__global__ void GetRowsKernel(GetRowsParams p) {
  GridDepWait();
  AllowDependents();
  const bool quant = p.dtype == TSR_DTYPE_Q8_B32 || p.dtype == TSR_DTYPE_Q4_B32;
  TSR_GRID_STRIDE(u, p.T * p.D) {
    const int64_t t = u / p.D, d = u % p.D;
    const int32_t id = *reinterpret_cast<const int32_t*>(p.ids + t * p.id_stride);
    float* o = reinterpret_cast<float*>(p.out + t * p.o_row + d * p.o_el);
    if (id < 0 || id >= p.V) {
      if (d == 0) SetDeviceError(p.err, kErrIndexOutOfRange);
      *o = 0.0f;
      continue;
    }
    const uint8_t* row = p.table + id * p.row_bytes;
    *o = quant ? DequantAt(row, p.dtype, d)
               : static_cast<float>(ReadScalar(row + d * p.el_bytes, p.dtype));
  }
}

// Element u of a KV_WRITE (token, head, dim) into its cache slot; x = the row's value (read by
// the caller: KvWriteOne from the op's input, RopeKvKernel from its staging).
__device__ __forceinline__ void KvWriteValue(const KvWriteParams& p, int64_t u, float x) {
  const int64_t d = u % p.D, th = u / p.D;
  const int64_t t = th / p.H, h = th % p.H;
  const int32_t slot = p.slots[t];
  if (slot == -1) return;
  if (slot < 0 || slot >= p.n_slots) {
    if (d == 0 && h == 0) SetDeviceError(p.err, kErrIndexOutOfRange);
    return;
  }
  uint8_t* dst = p.cache + (slot / p.block_size) * p.c_block + (slot % p.block_size) * p.c_slot +
                 h * p.c_head + d * p.c_el;
  WriteFloat(x, dst, p.dtype);
}

__device__ __forceinline__ float KvRow(const KvWriteParams& p, int64_t u) {
  const int64_t d = u % p.D, th = u / p.D;
  const int64_t t = th / p.H, h = th % p.H;
  return *reinterpret_cast<const float*>(p.rows + t * p.r_tok + h * p.r_head + d * p.r_el);
}

__device__ __forceinline__ void KvWriteOne(const KvWriteParams& p, int64_t u) {
  KvWriteValue(p, u, KvRow(p, u));
}

// A layer's ROPE q, ROPE k, KV_WRITE k (of the rotated k) and KV_WRITE v in one block: every
// input is read and every result staged in shared memory ([q T x Hq x D][k T x Hk x D]
// [v T x Hv x Dv]) before the first write, so the nodes' outputs may reuse each other's input
// memory (the planner gives q's input to k's rotated output). Each value goes through the same
// RopeItem / KvWriteValue arithmetic as the separate kernels.
__global__ void __launch_bounds__(kRopeKvThreads)
    RopeKvKernel(RopeParams q, RopeParams k, KvWriteParams kw, KvWriteParams vw) {
  GridDepWait();
  AllowDependents();
  extern __shared__ float stage[];
  const int64_t nq = q.T * q.H * q.D, nk = k.T * k.H * k.D, nv = vw.T * vw.H * vw.D;
  float* sq = stage;
  float* sk = stage + nq;
  float* sv = sk + nk;
  for (int64_t u = threadIdx.x; u < RopeItems(q); u += blockDim.x) {
    RopeItem(q, u,
             [&](int64_t t, int64_t h, int64_t d, float v) { sq[(t * q.H + h) * q.D + d] = v; });
  }
  for (int64_t u = threadIdx.x; u < RopeItems(k); u += blockDim.x) {
    RopeItem(k, u,
             [&](int64_t t, int64_t h, int64_t d, float v) { sk[(t * k.H + h) * k.D + d] = v; });
  }
  for (int64_t u = threadIdx.x; u < nv; u += blockDim.x) sv[u] = KvRow(vw, u);
  __syncthreads();
  for (int64_t u = threadIdx.x; u < nq; u += blockDim.x) {
    const int64_t d = u % q.D, th = u / q.D, t = th / q.H, h = th % q.H;
    *reinterpret_cast<float*>(q.out + t * q.o_tok + h * q.o_head + d * q.o_el) = sq[u];
  }
  for (int64_t u = threadIdx.x; u < nk; u += blockDim.x) {
    const int64_t d = u % k.D, th = u / k.D, t = th / k.H, h = th % k.H;
    *reinterpret_cast<float*>(k.out + t * k.o_tok + h * k.o_head + d * k.o_el) = sk[u];
    KvWriteValue(kw, u, sk[u]);
  }
  for (int64_t u = threadIdx.x; u < nv; u += blockDim.x) KvWriteValue(vw, u, sv[u]);
}

__global__ void KvWriteKernel(KvWriteParams p) {
  GridDepWait();
  AllowDependents();
  TSR_GRID_STRIDE(u, p.T * p.H * p.D) KvWriteOne(p, u);
}

// The K and V writes of a layer in one launch: elements [0, na) are a's.
__global__ void KvWrite2Kernel(KvWriteParams a, KvWriteParams b, int64_t na, int64_t n) {
  GridDepWait();
  AllowDependents();
  TSR_GRID_STRIDE(u, n) {
    if (u < na) {
      KvWriteOne(a, u);
    } else {
      KvWriteOne(b, u - na);
    }
  }
}

}  // namespace

cudaError_t LaunchRope(const RopeParams& p, cudaStream_t stream) {
  const int64_t n = RopeItems(p);
  if (n == 0) return cudaSuccess;
  LaunchK(RopeKernel, GridFor(n, kThreads), kThreads, 0, stream, p);
  return cudaGetLastError();
}

cudaError_t LaunchConvert(const ConvertParams& p, cudaStream_t stream) {
  if (p.walk.numel == 0) return cudaSuccess;
  LaunchK(ConvertKernel, GridFor(p.walk.numel, kThreads), kThreads, 0, stream, p);
  return cudaGetLastError();
}

cudaError_t LaunchQuantRows(const QuantRowsParams& p, cudaStream_t stream) {
  const int64_t n = p.rows * p.n;
  if (n == 0) return cudaSuccess;
  LaunchK(QuantRowsKernel, GridFor(n, kThreads), kThreads, 0, stream, p);
  return cudaGetLastError();
}

cudaError_t LaunchGetRows(const GetRowsParams& p, cudaStream_t stream) {
  if (p.T * p.D == 0) return cudaSuccess;
  LaunchK(GetRowsKernel, GridFor(p.T * p.D, kThreads), kThreads, 0, stream, p);
  return cudaGetLastError();
}

cudaError_t LaunchRope2(const RopeParams& a, const RopeParams& b, cudaStream_t stream) {
  const int64_t na = RopeItems(a), n = na + RopeItems(b);
  if (n == 0) return cudaSuccess;
  LaunchK(Rope2Kernel, GridFor(n, kThreads), kThreads, 0, stream, a, b, na, n);
  return cudaGetLastError();
}

cudaError_t LaunchKvWrite2(const KvWriteParams& a, const KvWriteParams& b, cudaStream_t stream) {
  const int64_t na = a.T * a.H * a.D, n = na + b.T * b.H * b.D;
  if (n == 0) return cudaSuccess;
  LaunchK(KvWrite2Kernel, GridFor(n, kThreads), kThreads, 0, stream, a, b, na, n);
  return cudaGetLastError();
}

uint64_t RopeKvStageBytes(const RopeParams& q, const RopeParams& k, const KvWriteParams& v) {
  return static_cast<uint64_t>(q.T * q.H * q.D + k.T * k.H * k.D + v.T * v.H * v.D) * 4;
}

cudaError_t LaunchRopeKv(const RopeParams& q, const RopeParams& k, const KvWriteParams& kw,
                         const KvWriteParams& vw, cudaStream_t stream) {
  const uint64_t bytes = RopeKvStageBytes(q, k, vw);
  if (bytes > kRopeKvMaxStage) return cudaErrorInvalidValue;
  if (bytes == 0) return cudaSuccess;
  LaunchK(RopeKvKernel, 1, kRopeKvThreads, static_cast<size_t>(bytes), stream, q, k, kw, vw);
  return cudaGetLastError();
}

cudaError_t LaunchKvWrite(const KvWriteParams& p, cudaStream_t stream) {
  const int64_t n = p.T * p.H * p.D;
  if (n == 0) return cudaSuccess;
  LaunchK(KvWriteKernel, GridFor(n, kThreads), kThreads, 0, stream, p);
  return cudaGetLastError();
}

}  // namespace tessera::cuda
