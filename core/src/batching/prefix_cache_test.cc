#include "tessera/core/batching/prefix_cache.h"

#include <gtest/gtest.h>

#include <numeric>

namespace tessera::batching {
namespace {

constexpr int32_t kBs = 4;

std::vector<int32_t> Iota(int32_t n, int32_t start = 0) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

// Allocates and caches the full blocks of `tokens` as a sequence would; returns its blocks.
std::vector<int32_t> CacheSequence(BlockAllocator& alloc, PrefixCache& cache,
                                   const std::vector<int32_t>& tokens) {
  std::vector<int32_t> blocks;
  int32_t parent = -1;
  for (size_t i = 0; i + kBs <= tokens.size(); i += kBs) {
    int32_t b = *alloc.Allocate();
    blocks.push_back(b);
    EXPECT_TRUE(cache.Insert(parent, std::span<const int32_t>(tokens.data() + i, kBs), b));
    parent = b;
  }
  return blocks;
}

TEST(PrefixCacheTest, MatchesExactChainsOnly) {
  BlockAllocator alloc(16);
  PrefixCache cache(alloc, kBs);
  auto seq = Iota(12);
  auto blocks = CacheSequence(alloc, cache, seq);
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_EQ(cache.num_cached(), 3);
  EXPECT_EQ(cache.num_evictable(), 0);  // the sequence still holds them

  auto hit = cache.Match(Iota(10), 8);  // two full blocks of a prefix
  EXPECT_EQ(hit, std::vector<int32_t>(blocks.begin(), blocks.begin() + 2));
  EXPECT_EQ(alloc.refcount(blocks[0]), 3);  // sequence + cache + match
  for (int32_t b : hit) alloc.Release(b);

  EXPECT_EQ(cache.Match(Iota(12), 1).size(), 1u);  // max_blocks caps it
  alloc.Release(blocks[0]);

  // Same second block content behind another first block: no hit past the first difference.
  auto other = Iota(12);
  other[1] = 99;
  EXPECT_TRUE(cache.Match(other, 8).empty());
}

TEST(PrefixCacheTest, EvictsLeavesLeastRecentlyUsedFirst) {
  BlockAllocator alloc(6);
  PrefixCache cache(alloc, kBs);
  auto a = CacheSequence(alloc, cache, Iota(8, 0));    // 2 blocks
  auto b = CacheSequence(alloc, cache, Iota(8, 100));  // 2 blocks
  for (int32_t x : a) alloc.Release(x);
  for (int32_t x : b) alloc.Release(x);
  EXPECT_EQ(cache.num_evictable(), 4);
  EXPECT_EQ(alloc.num_free(), 2);

  // Touch `a` so `b` is the least recently used.
  for (int32_t x : cache.Match(Iota(8, 0), 8)) alloc.Release(x);
  EXPECT_EQ(cache.EvictUntilFree(3), 1);
  EXPECT_TRUE(cache.Contains(b[0]));
  EXPECT_FALSE(cache.Contains(b[1]));  // the leaf goes before its parent
  EXPECT_EQ(cache.EvictUntilFree(6), 3);
  EXPECT_EQ(cache.num_cached(), 0);
  EXPECT_EQ(alloc.num_free(), 6);
}

TEST(PrefixCacheTest, BlocksInUseAreNeverEvicted) {
  BlockAllocator alloc(4);
  PrefixCache cache(alloc, kBs);
  auto a = CacheSequence(alloc, cache, Iota(8));
  EXPECT_EQ(cache.EvictUntilFree(4), 0);
  EXPECT_EQ(alloc.num_free(), 2);
  for (int32_t x : a) alloc.Release(x);
  cache.Clear();
  EXPECT_EQ(alloc.num_free(), 4);
}

TEST(PrefixCacheTest, RefusesDuplicatesAndUncachedParents) {
  BlockAllocator alloc(8);
  PrefixCache cache(alloc, kBs);
  auto toks = Iota(4);
  int32_t b0 = *alloc.Allocate();
  int32_t b1 = *alloc.Allocate();
  EXPECT_TRUE(cache.Insert(-1, toks, b0));
  EXPECT_FALSE(cache.Insert(-1, toks, b1));                 // same content already cached under b0
  EXPECT_FALSE(cache.Insert(b1, toks, *alloc.Allocate()));  // b1 is not cached
  EXPECT_FALSE(cache.Insert(-1, Iota(3), b1));              // not a full block
}

}  // namespace
}  // namespace tessera::batching
