// Prefix cache: full KV blocks indexed by their content, so sequences whose prompts share a
// prefix share the blocks that hold it (vLLM's automatic prefix caching, exact instead of hashed).
//
// A block's key is (the cached block before it in its sequence, or -1 for the first block; the
// block_size token ids it holds). Because the parent is a block id rather than a hash of the
// whole prefix, a hit is exact: no hash collision can hand a sequence another prompt's K/V. A
// parent is never evicted while a cached child refers to it, so a key can not go stale when a
// block id is reused.
//
// The cache holds one reference on every block it indexes (BlockAllocator refcounts), so a cached
// block outlives the sequence that computed it. A cached block that no sequence uses any more
// (refcount 1) is "evictable": Evict() returns such blocks to the allocator, least recently used
// leaves first, when a sequence needs room.
//
// Only full blocks whose K/V have been computed are inserted; a shared block is never written
// again (a sequence only appends past its last full block), so no copy-on-write is needed.
//
// Not thread-safe: the scheduler thread owns it, like the KV cache.
#ifndef TESSERA_CORE_BATCHING_PREFIX_CACHE_H_
#define TESSERA_CORE_BATCHING_PREFIX_CACHE_H_

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "tessera/core/kv_cache.h"

namespace tessera::batching {

class PrefixCache {
 public:
  // `blocks` is not owned and must outlive the cache.
  PrefixCache(BlockAllocator& blocks, int32_t block_size);
  ~PrefixCache();  // releases every cached block
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  // The longest run of cached blocks that holds tokens[0, k * block_size), k <= max_blocks.
  // Every returned block has been AddRef'd for the caller (release with BlockAllocator::Release
  // or KvCache::Free).
  std::vector<int32_t> Match(std::span<const int32_t> tokens, int32_t max_blocks);

  // Indexes `block`, whose block_size tokens are `block_tokens` and which follows `parent` (a
  // block this cache holds, or -1 for a sequence's first block). Returns false, changing nothing,
  // when the content is already cached under another block or `parent` is not cached: the caller
  // must then stop inserting the rest of that sequence's chain.
  bool Insert(int32_t parent, std::span<const int32_t> block_tokens, int32_t block);

  // True when `block` is indexed by the cache.
  bool Contains(int32_t block) const;

  // Returns evictable blocks to the allocator, least recently used leaves first, until the
  // allocator has `want_free` free blocks or nothing evictable is left. Returns how many it freed.
  int32_t EvictUntilFree(int32_t want_free);

  // Drops every entry (releasing the cache's references).
  void Clear();

  int32_t num_cached() const { return static_cast<int32_t>(by_block_.size()); }
  // Cached blocks no sequence uses (refcount 1): free for the taking.
  int32_t num_evictable() const;

 private:
  struct Key {
    int32_t parent;
    std::vector<int32_t> tokens;
    bool operator==(const Key& o) const { return parent == o.parent && tokens == o.tokens; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Entry {
    Key key;
    int32_t children = 0;    // cached blocks whose parent is this one
    uint64_t last_used = 0;  // tick of the last Match/Insert touching it
  };
  void Erase(int32_t block);

  BlockAllocator& blocks_;
  int32_t block_size_;
  uint64_t tick_ = 0;
  std::unordered_map<Key, int32_t, KeyHash> by_key_;  // content -> block
  std::unordered_map<int32_t, Entry> by_block_;       // block -> its entry
};

}  // namespace tessera::batching

#endif  // TESSERA_CORE_BATCHING_PREFIX_CACHE_H_
