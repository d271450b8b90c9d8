// Paged KV cache: fixed-size blocks of token slots in per-layer pools, handed to sequences on
// demand (vLLM's PagedAttention layout). The pools are graph state tensors
// "kv.<layer>.k" / "kv.<layer>.v" of shape (num_blocks, block_size, n_kv_heads, head_dim), f32
// (stored as f16 on a TSR_CAP_NO_F32 device; on a compile-only device the bytes are in the
// device's own layout, touched only by its executables).
//
// Block bookkeeping is host-side and cheap; blocks are reference-counted so sequences sharing a
// prompt prefix can share blocks (copy-on-write is the caller's job: a shared block is never
// written, only full blocks are shared).
//
// Not thread-safe: one scheduler thread owns the cache.
#ifndef TESSERA_CORE_KV_CACHE_H_
#define TESSERA_CORE_KV_CACHE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tessera/core/device.h"
#include "tessera/core/executor.h"
#include "tessera/core/status.h"

namespace tessera {

struct KvCacheShape {
  int32_t num_layers = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t block_size = 16;  // token slots per block
  int32_t num_blocks = 0;

  int64_t BytesPerBlockPerLayer() const;  // K and V together
  int64_t TotalBytes() const;
};

// Reference-counted block ids [0, num_blocks).
class BlockAllocator {
 public:
  explicit BlockAllocator(int32_t num_blocks);
  // A free block with refcount 1, or ResourceExhausted.
  StatusOr<int32_t> Allocate();
  void AddRef(int32_t block);
  void Release(int32_t block);
  int32_t num_free() const { return static_cast<int32_t>(free_.size()); }
  int32_t num_blocks() const { return static_cast<int32_t>(refs_.size()); }
  int32_t refcount(int32_t block) const { return refs_[block]; }

 private:
  std::vector<int32_t> refs_;
  std::vector<int32_t> free_;  // stack; lowest ids handed out first
};

// One sequence's view of the cache.
struct SequenceBlocks {
  std::vector<int32_t> blocks;
  int32_t num_tokens = 0;  // tokens whose K/V are (or are about to be) in the cache
};

class KvCache {
 public:
  // Allocates the pools on `device` (index `device_index` in ctx's device list) and binds them
  // as state tensors in `ctx`. The context must outlive the cache. A compile-only device (no
  // TSR_EXEC_KERNEL, an NPU) holds the pool only when its claim takes KV_WRITE and
  // PAGED_ATTENTION over it and the pool fits its memory (stored in its storage dtype, in a
  // layout private to its executables); otherwise the first kernel-style device after it does.
  static StatusOr<std::unique_ptr<KvCache>> Create(const KvCacheShape& shape, ExecutionContext& ctx,
                                                   int32_t device_index);

  const KvCacheShape& shape() const { return shape_; }
  // Bytes actually allocated for the pools, in the holding device's storage dtype (f16 on an
  // NPU pool, where shape().TotalBytes() counts f32).
  int64_t allocated_bytes() const { return allocated_bytes_; }
  BlockAllocator& blocks() { return blocks_; }
  static std::string KName(int32_t layer);
  static std::string VName(int32_t layer);

  // Makes room for `n` more tokens in `seq` (allocating blocks as needed) and appends their slot
  // ids to `slots`. On ResourceExhausted nothing is changed.
  Status Extend(SequenceBlocks& seq, int32_t n, std::vector<int32_t>* slots);
  // Drops every block of `seq`.
  void Free(SequenceBlocks& seq);

 private:
  KvCache(const KvCacheShape& shape) : shape_(shape), blocks_(shape.num_blocks) {}
  // Allocates and binds every pool on ctx.devices()[device_index]; all or nothing.
  static Status Place(KvCache& cache, ExecutionContext& ctx, int32_t device_index);
  KvCacheShape shape_;
  BlockAllocator blocks_;
  std::vector<std::unique_ptr<DeviceBuffer>> pools_;  // 2 per layer
  int64_t allocated_bytes_ = 0;
};

}  // namespace tessera

#endif  // TESSERA_CORE_KV_CACHE_H_
