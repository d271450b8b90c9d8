#include "tessera/core/batching/prefix_cache.h"

#include <algorithm>

namespace tessera::batching {

size_t PrefixCache::KeyHash::operator()(const Key& k) const {
  // FNV-1a over the parent and the ids: only a bucket choice, equality decides a hit.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint32_t v) {
    for (int i = 0; i < 4; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  mix(static_cast<uint32_t>(k.parent));
  for (int32_t t : k.tokens) mix(static_cast<uint32_t>(t));
  return static_cast<size_t>(h);
}

PrefixCache::PrefixCache(BlockAllocator& blocks, int32_t block_size)
    : blocks_(blocks), block_size_(block_size) {}

PrefixCache::~PrefixCache() {
  Clear();
}

std::vector<int32_t> PrefixCache::Match(std::span<const int32_t> tokens, int32_t max_blocks) {
  std::vector<int32_t> out;
  const size_t bs = static_cast<size_t>(block_size_);
  Key key{-1, {}};
  ++tick_;
  for (int32_t i = 0; i < max_blocks && (static_cast<size_t>(i) + 1) * bs <= tokens.size(); ++i) {
    key.tokens.assign(tokens.begin() + static_cast<std::ptrdiff_t>(i * bs),
                      tokens.begin() + static_cast<std::ptrdiff_t>((i + 1) * bs));
    auto it = by_key_.find(key);
    if (it == by_key_.end()) break;
    const int32_t block = it->second;
    blocks_.AddRef(block);
    by_block_.at(block).last_used = tick_;
    out.push_back(block);
    key.parent = block;
  }
  return out;
}

bool PrefixCache::Insert(int32_t parent, std::span<const int32_t> block_tokens, int32_t block) {
  if (static_cast<int32_t>(block_tokens.size()) != block_size_) return false;
  if (parent >= 0 && !by_block_.count(parent)) return false;
  if (by_block_.count(block)) return false;
  Key key{parent, std::vector<int32_t>(block_tokens.begin(), block_tokens.end())};
  if (by_key_.count(key)) return false;
  blocks_.AddRef(block);
  by_key_.emplace(key, block);
  by_block_.emplace(block, Entry{std::move(key), 0, ++tick_});
  if (parent >= 0) ++by_block_.at(parent).children;
  return true;
}

bool PrefixCache::Contains(int32_t block) const {
  return by_block_.count(block) != 0;
}

int32_t PrefixCache::num_evictable() const {
  int32_t n = 0;
  for (const auto& [block, e] : by_block_) n += blocks_.refcount(block) == 1;
  return n;
}

void PrefixCache::Erase(int32_t block) {
  auto it = by_block_.find(block);
  if (it->second.key.parent >= 0) --by_block_.at(it->second.key.parent).children;
  by_key_.erase(it->second.key);
  by_block_.erase(it);
  blocks_.Release(block);
}

int32_t PrefixCache::EvictUntilFree(int32_t want_free) {
  int32_t freed = 0;
  while (blocks_.num_free() < want_free) {
    // Leaves only: a parent must outlive its cached children (see the header). Evicting a leaf
    // may turn its parent into one, hence the outer loop.
    std::vector<std::pair<uint64_t, int32_t>> leaves;
    for (const auto& [block, e] : by_block_)
      if (e.children == 0 && blocks_.refcount(block) == 1) leaves.push_back({e.last_used, block});
    if (leaves.empty()) break;
    std::sort(leaves.begin(), leaves.end());
    for (const auto& [tick, block] : leaves) {
      if (blocks_.num_free() >= want_free) break;
      Erase(block);
      ++freed;
    }
  }
  return freed;
}

void PrefixCache::Clear() {
  // Children first, so every Erase sees its parent still indexed.
  while (!by_block_.empty()) {
    std::vector<int32_t> leaves;
    for (const auto& [block, e] : by_block_)
      if (e.children == 0) leaves.push_back(block);
    for (int32_t b : leaves) Erase(b);
  }
}

}  // namespace tessera::batching
