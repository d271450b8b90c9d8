// Weights repacked at first use into the GEMV's tile order (plugin option repack=on, opt-in).
//
// Why: a decode GEMV reads 8 weight rows at once. In the row-major layout that is 8 interleaved
// streams of one row each (1792 B for bf16 K = 896, 952 B in Q8, 504 B in Q4): too short for
// the hardware prefetchers, so one core keeps fewer cache-line misses in flight than a linear
// read does. A read model on the Zen 5 dev box (one thread, GB per CPU-second, 512 MiB, the
// kernel's loads + FMA): 8-row tiles with the next tile prefetched 17-22 (1792 B rows) and 17-18
// (512-960 B rows), the same bytes in the packed order (one linear stream) 23-26. In the real
// kernels (matmul_lab --ab, Qwen2.5-0.5B decode pass, adjacent-pair ratios) bf16 gained 4-16%
// on one thread and 0-8% on two, Q4 3-10% / 0%; packing the K = 4864 down projection (76 KiB
// tiles) lost 6-16%, hence tiles up to 16 KiB only; Q8 lost 7% and stays row-major unless
// TESSERA_CPU_REPACK_Q8=1 (a lab switch; the int8 kernels read both layouts).
//
// Packed order of an N x K matrix (N % 8 == 0, rows contiguous): tiles of 8 rows; inside a tile,
// chunks in the order [chunk c][row j]. A chunk is what the GEMV reads of a row per step: bf16
// 64 bytes (32 values; K % 32 == 0), Q8/Q4 one 128-value step of 4 blocks (136 / 72 bytes;
// K % 128 == 0, and only for the int8 dot kernels, int8_dot=on|vnni on a VNNI CPU). The tile
// keeps its 8 x row_bytes bytes, so row n's tile still starts at n / 8 * 8 * row_bytes.
//
// Contract of the option: a weight is packed only when it lives in an imported host buffer
// (buffer_import_host: the host's mmap of the checkpoint or quantized cache), which the host
// must not modify until buffer_free (the ABI's rule for imported memory). The copy is made the
// first time a MATMUL uses the tensor as weights, and dropped when the buffer is freed. One copy
// stays resident: the original range is handed back to the kernel with MADV_PAGEOUT (clean file
// pages; a later read, e.g. GET_ROWS of a tied embedding, faults them back in).
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

  // The chunk bytes of `w` if it can be packed (a 2-D matrix of contiguous rows, whole tiles
  // and chunks, large enough to matter: small ones stay in cache anyway), else 0. `int8_dot`:
  // the device's option (Q8/Q4 are packed only for the VNNI int8 dot kernels).
  static int64_t ChunkBytes(const TensorRef& w, Int8Dot int8_dot) {
    if (w.ndim != 2 || w.ne[0] % kTileRows != 0 || w.ne[0] * w.ne[1] < (1 << 16) ||
        kTileRows * w.nb[0] > MaxTileBytes())
      return 0;
    const int64_t K = w.ne[1];
    if (w.dtype == TSR_DTYPE_BF16) return w.nb[1] == 2 && w.nb[0] == K * 2 && K % 32 == 0 ? 64 : 0;
    if (w.dtype != TSR_DTYPE_Q4_B32 && (w.dtype != TSR_DTYPE_Q8_B32 || !PackQ8())) return 0;
    const int64_t bb = w.dtype == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
    const bool vnni_path =
        (int8_dot == Int8Dot::kOn || int8_dot == Int8Dot::kVnniOnly) && CpuVnni();
    return vnni_path && K % 128 == 0 && w.nb[0] == K / 32 * bb ? 4 * bb : 0;
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
    void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return nullptr;
    Pack(w, chunk, static_cast<uint8_t*>(mem), pool);
    Release(w.data, bytes);
    packed_.emplace(w.data, Entry{mem, bytes, w.ne[0], w.ne[1]});
    return static_cast<const uint8_t*>(mem);
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

  // Q8 stays row-major unless TESSERA_CPU_REPACK_Q8=1 (lab A/B runs): packed, its GEMV ran
  // slower (whole Q8 decode pass, one thread, adjacent-pair ratio 0.93 twice), while Q4 gained
  // (1.03-1.10 one thread, 1.00 two threads).
  static bool PackQ8() {
    static const bool on = [] {
      const char* e = std::getenv("TESSERA_CPU_REPACK_Q8");
      return e != nullptr && *e != '\0' && *e != '0';
    }();
    return on;
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

  // Tiles split across the pool; one copy per chunk.
  static void Pack(const TensorRef& w, int64_t chunk, uint8_t* dst, ThreadPool* pool) {
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
