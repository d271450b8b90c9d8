// Weights repacked at first use (plugin option repack): Q8/Q4 weights of the int8 dot into its
// operand order (repack=int8, the default), bf16 weights into the GEMV's tile order (repack=on,
// opt-in; it also packs Q8/Q4); repack=off keeps every weight as imported.
//
// Q8/Q4, operand order (rows stay row-major, each keeps its bytes): the int8 dot's canonical
// order (kernels_qmatmul.cc) gives lane l of a 512-value superstep block B(l) = 4 (l % 4) + l / 4,
// and the vpdpbusd operands of a superstep are operand k (0..7), byte 4 l + b = value 4 k + b of
// block B(l). Read from the ABI's block bytes, the decode GEMV needed byte permutes per 128-value
// step plus a 4 x 4 shuffle fold per superstep, and the GEMM an unpack per panel; stored in that
// order, both read 8 operand vectors (Q4: 4, split by a mask and a shift) and the 16 binary16
// scales: per row and full superstep 512 + 32 bytes (Q8, = 16 blocks x 34) or 256 + 32 (Q4,
// = 16 x 18), see PackInt8Row; a last partial superstep (K = 896: 12 blocks) the same,
// compacted to its blocks' lanes (until 2026-11-27 it kept its block bytes and every decode GEMV
// call unpacked it with byte permutes and transposes: docs/benchmarks.md "CPU q8/q4 decode on the
// Qwen shape"). Only for the VNNI path (int8_dot=on|vnni on a VNNI CPU); the portable path reads
// the ABI blocks, and the bits are the same (cpu_backend_test RepackedWeightsKeepBits).
// Measurements: docs/benchmarks.md "CPU int8 weights in the operand order" (whole model against the
// quarter-block order: q8/q4 prefill +17-41%, decode +11-65%; the copy costs the first call ~1.3 s
// per GB on the dev VM).
//
// bf16, why: a decode GEMV reads 8 weight rows at once. In the row-major layout that is 8
// interleaved streams of one row each (1792 B for bf16 K = 896): too short for the hardware
// prefetchers, so one core keeps fewer cache-line misses in flight than a linear read does. A
// read model on the Zen 5 dev box (one thread, GB per CPU-second, 512 MiB, the kernel's loads +
// FMA): 8-row tiles with the next tile prefetched 17-22 (1792 B rows) and 17-18 (512-960 B
// rows), the same bytes in the packed order (one linear stream) 23-26. In the real kernels
// (matmul_lab --ab, Qwen2.5-0.5B decode pass, adjacent-pair ratios) bf16 gained 4-16% on one
// thread and 0-8% on two; packing the K = 4864 down projection (76 KiB tiles) lost 6-16%, hence
// tiles up to 16 KiB only. (Q8/Q4 used the same tile order until the operand order replaced it:
// Q4 gained 3-10% / 0%, Q8 lost 7%.)
//
// bf16 packed order of an N x K matrix (N % 8 == 0, rows contiguous, K % 32 == 0): tiles of 8
// rows; inside a tile, chunks of 64 bytes (32 values, what the GEMV reads of a row per step) in
// the order [chunk c][row j]. The tile keeps its 8 x row_bytes bytes, so row n's tile still
// starts at n / 8 * 8 * row_bytes.
//
// Contract of the option: a weight is packed only when it lives in an imported host buffer
// (buffer_import_host: the host's mmap of the checkpoint or quantized cache), which the host
// must not modify until buffer_free (the ABI's rule for imported memory). The copy is made the
// first time a MATMUL uses the tensor as weights, and dropped when the buffer is freed. One copy
// stays resident: the original range is handed back to the kernel with MADV_PAGEOUT (clean file
// pages; GET_ROWS of a tied embedding reads its rows from the copy: Find, UnpackRow).
#ifndef TESSERA_BACKENDS_CPU_PACKED_WEIGHTS_H_
#define TESSERA_BACKENDS_CPU_PACKED_WEIGHTS_H_

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>

#include "backends/cpu/ops.h"
#include "backends/cpu/tensor.h"
#include "backends/cpu/thread_pool.h"
#include "tessera/quant_formats.h"

namespace tessera::cpu {

class PackedWeights {
 public:
  static constexpr int64_t kTileRows = 8;

  PackedWeights() = default;
  PackedWeights(const PackedWeights&) = delete;
  PackedWeights& operator=(const PackedWeights&) = delete;
  ~PackedWeights() {
    for (auto& [ptr, e] : packed_) munmap(e.mem, e.bytes);
  }

  // The chunk bytes of `w` if it can be packed (a 2-D matrix of contiguous rows, large enough
  // to matter: small ones stay in cache anyway; bf16: whole tiles and chunks), else 0: bf16 64,
  // Q8/Q4 a superstep's 544 / 288. `int8_dot`: the device's option (Q8/Q4 are packed only for
  // the VNNI int8 dot kernels, with at least one whole superstep); `bf16`: repack=on.
  static int64_t ChunkBytes(const TensorRef& w, Int8Dot int8_dot, bool bf16) {
    if (w.ndim != 2 || w.ne[0] * w.ne[1] < (1 << 16)) return 0;
    const int64_t K = w.ne[1];
    if (w.dtype == TSR_DTYPE_Q8_B32 || w.dtype == TSR_DTYPE_Q4_B32) {
      // Operand order (the int8 dot's VNNI path only: the portable path reads row-major blocks).
      const int64_t bb = w.dtype == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
      const bool vnni_path =
          (int8_dot == Int8Dot::kOn || int8_dot == Int8Dot::kVnniOnly) && CpuVnni();
      return vnni_path && K >= kSuperValues && w.nb[0] == K / TSR_QBLOCK * bb ? kSuperBlocks * bb
                                                                              : 0;
    }
    if (!bf16 || w.ne[0] % kTileRows != 0 || kTileRows * w.nb[0] > MaxTileBytes()) return 0;
    if (w.dtype == TSR_DTYPE_BF16) return w.nb[1] == 2 && w.nb[0] == K * 2 && K % 32 == 0 ? 64 : 0;
    return 0;
  }

  // The packed copy of `w` (REQUIRES chunk = ChunkBytes(w, ...) > 0), made on first use with
  // the pool's threads. Null when the same address was packed with another shape (never
  // expected for weights).
  const uint8_t* Get(const TensorRef& w, int64_t chunk, ThreadPool* pool) {
    auto it = packed_.find(w.data);
    if (it != packed_.end()) {
      const Entry& e = it->second;
      return e.rows == w.ne[0] && e.cols == w.ne[1] ? static_cast<const uint8_t*>(e.mem) : nullptr;
    }
    const size_t bytes = static_cast<size_t>(w.ne[0] * w.nb[0]);
    // MAP_POPULATE: the copy's pages faulted in by the kernel at once, not one by one by the
    // packing threads (Llama-3.2-1B q8, whole first use: ~3.1 -> ~2.1 s on the dev VM).
    void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (mem == MAP_FAILED) return nullptr;
    Pack(w, chunk, static_cast<uint8_t*>(mem), pool);
    Release(w.data, bytes);
    packed_.emplace(w.data, Entry{mem, bytes, w.ne[0], w.ne[1], w.dtype, w.nb[0]});
    return static_cast<const uint8_t*>(mem);
  }

  // The packed copy of `w` if a MATMUL made one (same address, shape, dtype and strides),
  // else null; makes none. For GET_ROWS of a tied embedding: the original's pages went back to
  // the kernel (Release), and gathering rows from them faulted every new row's page back in.
  const uint8_t* Find(const TensorRef& w) const {
    auto it = packed_.find(w.data);
    if (it == packed_.end()) return nullptr;
    const Entry& e = it->second;
    const bool same = w.ndim == 2 && e.rows == w.ne[0] && e.cols == w.ne[1] && e.dtype == w.dtype &&
                      e.row_bytes == w.nb[0] && (w.dtype != TSR_DTYPE_BF16 || w.nb[1] == 2);
    return same ? static_cast<const uint8_t*>(e.mem) : nullptr;
  }

  // Row `r` of `w` as imported (its w.nb[0] original bytes) into `dst`, read from `packed`, the
  // copy Get or Find returned for `w`: the exact inverse of Pack. Thread-safe.
  static void UnpackRow(const TensorRef& w, const uint8_t* packed, int64_t r, uint8_t* dst) {
    const int64_t row_bytes = w.nb[0];
    if (w.dtype == TSR_DTYPE_Q8_B32 || w.dtype == TSR_DTYPE_Q4_B32) {
      UnpackInt8Row(packed + r * row_bytes, dst, w.ne[1], w.dtype == TSR_DTYPE_Q8_B32);
      return;
    }
    // bf16 tiles: chunk c of row j of a tile at [c][j] (64-byte chunks).
    constexpr int64_t kChunk = 64;
    const uint8_t* tile = packed + r / kTileRows * kTileRows * row_bytes;
    const int64_t j = r % kTileRows;
    for (int64_t c = 0; c < row_bytes / kChunk; ++c)
      std::memcpy(dst + c * kChunk, tile + (c * kTileRows + j) * kChunk, kChunk);
  }

  // Drops the copies of weights inside [begin, end) (their buffer is being freed: the address
  // may be reused for other data).
  void Forget(const uint8_t* begin, const uint8_t* end) {
    for (auto it = packed_.lower_bound(begin); it != packed_.end() && it->first < end;) {
      munmap(it->second.mem, it->second.bytes);
      it = packed_.erase(it);
    }
  }

 private:
  struct Entry {
    void* mem;
    size_t bytes;
    int64_t rows, cols;
    tsr_dtype dtype;
    int64_t row_bytes;
  };

  // Tiles above this stay row-major: long rows are 8 streams the hardware prefetchers follow,
  // and with the next tile prefetched they read faster than one linear stream (Q8 down
  // projection, K = 4864, 41 KiB tiles: 15.7-19.7 GB per CPU-second row-major, 13.8-14.8
  // packed). TESSERA_CPU_REPACK_MAX_TILE=BYTES overrides it (lab A/B runs).
  static int64_t MaxTileBytes() {
    static const int64_t max = [] {
      const char* e = std::getenv("TESSERA_CPU_REPACK_MAX_TILE");
      return e != nullptr && *e != '\0' ? std::atoll(e) : int64_t{16384};
    }();
    return max;
  }

  static constexpr int64_t kSuperValues = 512, kSuperBlocks = kSuperValues / TSR_QBLOCK;

  // One Q8/Q4 row in the operand order (kernels_qmatmul-inl.h, LoadOperands): each full
  // superstep of 16 blocks becomes operand k (0..7; Q4: 0..3), byte 4 l + b = value 4 k + b of
  // block B(l) = 4 (l % 4) + l / 4 as the unsigned vpdpbusd operand (Q8: value + 128; Q4: the
  // block's byte 4 k + b, i.e. values 4 k + b and 16 + 4 k + b in its nibbles), then the 16
  // blocks' binary16 scales in lane order. A last partial superstep of nb < 16 blocks has nb
  // lanes (those with B(l) < nb) and is stored compacted, the same bytes per lane: operand k's
  // dwords of the present lanes in lane order (4 nb bytes), then their nb scales (2 nb), so the
  // row keeps its size and every superstep its offset (kernels_qmatmul-inl.h, PartialOperands).
  static void PackInt8Row(const uint8_t* src, uint8_t* dst, int64_t K, bool q8) {
    const int64_t bb = q8 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES, super = kSuperBlocks * bb;
    const int64_t supers = K / kSuperValues, operands = q8 ? 8 : 4;
    for (int64_t S = 0; S < supers; ++S, src += super, dst += super) {
      for (int l = 0; l < kSuperBlocks; ++l) {
        const uint8_t* blk = src + (4 * (l % 4) + l / 4) * bb;
        // One operand dword (4 values) at a time.
        const uint32_t flip = q8 ? 0x80808080u : 0;
        for (int64_t k = 0; k < operands; ++k) {
          uint32_t v;
          std::memcpy(&v, blk + 2 + 4 * k, 4);
          v ^= flip;
          std::memcpy(dst + 64 * k + 4 * l, &v, 4);
        }
        std::memcpy(dst + 64 * operands + 2 * l, blk, 2);
      }
    }
    const int64_t nb = (K - supers * kSuperValues) / TSR_QBLOCK;
    const uint32_t flip = q8 ? 0x80808080u : 0;
    for (int l = 0, r = 0; l < kSuperBlocks; ++l) {
      const int b = 4 * (l % 4) + l / 4;
      if (b >= nb) continue;
      const uint8_t* blk = src + b * bb;
      for (int64_t k = 0; k < operands; ++k) {
        uint32_t v;
        std::memcpy(&v, blk + 2 + 4 * k, 4);
        v ^= flip;
        std::memcpy(dst + 4 * nb * k + 4 * r, &v, 4);
      }
      std::memcpy(dst + 4 * nb * operands + 2 * r, blk, 2);
      ++r;
    }
  }

  // The inverse of PackInt8Row: one row's block bytes back from the operand order.
  static void UnpackInt8Row(const uint8_t* src, uint8_t* dst, int64_t K, bool q8) {
    const int64_t bb = q8 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES, super = kSuperBlocks * bb;
    const int64_t supers = K / kSuperValues, operands = q8 ? 8 : 4;
    const uint32_t flip = q8 ? 0x80808080u : 0;
    for (int64_t S = 0; S < supers; ++S, src += super, dst += super) {
      for (int l = 0; l < kSuperBlocks; ++l) {
        uint8_t* blk = dst + (4 * (l % 4) + l / 4) * bb;
        for (int64_t k = 0; k < operands; ++k) {
          uint32_t v;
          std::memcpy(&v, src + 64 * k + 4 * l, 4);
          v ^= flip;
          std::memcpy(blk + 2 + 4 * k, &v, 4);
        }
        std::memcpy(blk, src + 64 * operands + 2 * l, 2);
      }
    }
    const int64_t nb = (K - supers * kSuperValues) / TSR_QBLOCK;
    for (int l = 0, r = 0; l < kSuperBlocks; ++l) {
      const int b = 4 * (l % 4) + l / 4;
      if (b >= nb) continue;
      uint8_t* blk = dst + b * bb;
      for (int64_t k = 0; k < operands; ++k) {
        uint32_t v;
        std::memcpy(&v, src + 4 * nb * k + 4 * r, 4);
        v ^= flip;
        std::memcpy(blk + 2 + 4 * k, &v, 4);
      }
      std::memcpy(blk, src + 4 * nb * operands + 2 * r, 2);
      ++r;
    }
  }

  // Must match CpuHasVnni() of kernels_qmatmul.cc (the int8 dot's dispatch).
  static bool CpuVnni() {
#if defined(__x86_64__) || defined(__i386__)
    static const bool has =
        __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vnni");
    return has;
#else
    return false;
#endif
  }

  // Tiles split across the pool; one copy per chunk (Q8/Q4: rows in the operand order).
  static void Pack(const TensorRef& w, int64_t chunk, uint8_t* dst, ThreadPool* pool) {
    if (w.dtype == TSR_DTYPE_Q8_B32 || w.dtype == TSR_DTYPE_Q4_B32) {
      constexpr int64_t kRowsPerTask = 64;
      const int64_t rows = w.ne[0], row_bytes = w.nb[0];
      pool->ParallelFor((rows + kRowsPerTask - 1) / kRowsPerTask, [&](int64_t task, int) {
        for (int64_t r = task * kRowsPerTask; r < std::min(rows, (task + 1) * kRowsPerTask); ++r)
          PackInt8Row(w.data + r * row_bytes, dst + r * row_bytes, w.ne[1],
                      w.dtype == TSR_DTYPE_Q8_B32);
      });
      return;
    }
    const int64_t row_bytes = w.nb[0], chunks = row_bytes / chunk;
    const int64_t tiles = w.ne[0] / kTileRows, tile_bytes = kTileRows * row_bytes;
    constexpr int64_t kTilesPerTask = 64;
    pool->ParallelFor((tiles + kTilesPerTask - 1) / kTilesPerTask, [&](int64_t task, int) {
      const int64_t t1 = std::min(tiles, (task + 1) * kTilesPerTask);
      for (int64_t t = task * kTilesPerTask; t < t1; ++t) {
        const uint8_t* src = w.data + t * tile_bytes;
        uint8_t* out = dst + t * tile_bytes;
        for (int64_t c = 0; c < chunks; ++c) {
          for (int64_t j = 0; j < kTileRows; ++j, out += chunk)
            std::memcpy(out, src + j * row_bytes + c * chunk, static_cast<size_t>(chunk));
        }
      }
    });
  }

  // The original's whole pages go back to the kernel (a hint; an error changes nothing).
  static void Release(const uint8_t* data, size_t bytes) {
#ifdef MADV_PAGEOUT
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const uintptr_t b = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
    const uintptr_t e = (reinterpret_cast<uintptr_t>(data) + bytes) / page * page;
    if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_PAGEOUT);
#else
    (void)data;
    (void)bytes;
#endif
  }

  std::map<const uint8_t*, Entry> packed_;  // by the original's address
};

}  // namespace tessera::cpu

#endif  // TESSERA_BACKENDS_CPU_PACKED_WEIGHTS_H_
