// Read-only file mappings of weights (safetensors checkpoints, the quantized caches), placed so
// the kernel can back them with 2 MiB pages. Private to tessera_model_io.
//
// Why: decode streams every weight once per token, and on the Zen 5 dev box (Linux 6.18, ext4,
// a VM) a GEMV over page-cache pages held in small folios reads 10-50% fewer bytes per
// CPU-second than over the same bytes in 2 MiB folios, which the kernel then maps with one PMD
// each (docs/benchmarks.md, "CPU bf16 decode: the engine's gap to the kernel"). Faults through
// a VM_HUGEPAGE mapping (MADV_HUGEPAGE) whose addresses are 2 MiB aligned with the file offsets
// read a file into 2 MiB folios; plain readahead gets there only on long sequential runs, and
// the engine faults tensors in graph order, not file order. Pages already cached keep their
// folios until they are evicted.
#ifndef TESSERA_CORE_SRC_MODEL_WEIGHT_MAP_H_
#define TESSERA_CORE_SRC_MODEL_WEIGHT_MAP_H_

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace tessera::model_internal {

// mmap(nullptr, size, PROT_READ, flags, fd, 0) at a 2 MiB aligned address (files of 2 MiB or
// more), advised MADV_HUGEPAGE. Returns MAP_FAILED with errno set as mmap does; the mapping is
// released with munmap(addr, size) like any other. Thread-safe.
inline void* MapWeightsReadOnly(int fd, size_t size, int flags) {
  constexpr size_t kHuge = size_t{2} << 20;
  if (size < kHuge) return mmap(nullptr, size, PROT_READ, flags, fd, 0);
  // Reserve size + 2 MiB of address space, map the file at its first 2 MiB boundary, return
  // the slack on both sides.
  void* r =
      mmap(nullptr, size + kHuge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) return mmap(nullptr, size, PROT_READ, flags, fd, 0);
  const uintptr_t begin = reinterpret_cast<uintptr_t>(r), end = begin + size + kHuge;
  const uintptr_t at = (begin + kHuge - 1) & ~uintptr_t{kHuge - 1};
  void* m = mmap(reinterpret_cast<void*>(at), size, PROT_READ, flags | MAP_FIXED, fd, 0);
  if (m == MAP_FAILED) {
    const int err = errno;
    munmap(r, size + kHuge);
    errno = err;
    return MAP_FAILED;
  }
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t tail = (at + size + page - 1) & ~(page - 1);  // the file mapping's end
  if (at > begin) munmap(r, at - begin);
  if (end > tail) munmap(reinterpret_cast<void*>(tail), end - tail);
    // Advice only: without THP (or on a filesystem without large folios) it changes nothing.
#ifdef MADV_HUGEPAGE
  madvise(m, size, MADV_HUGEPAGE);
#endif
  return m;
}

}  // namespace tessera::model_internal

#endif  // TESSERA_CORE_SRC_MODEL_WEIGHT_MAP_H_
