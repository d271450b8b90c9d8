#include "tessera/core/kv_cache.h"

namespace tessera {

int64_t KvCacheShape::BytesPerBlockPerLayer() const {
  return 2LL * block_size * num_kv_heads * head_dim * static_cast<int64_t>(sizeof(float));
}

int64_t KvCacheShape::TotalBytes() const {
  return BytesPerBlockPerLayer() * num_blocks * num_layers;
}

BlockAllocator::BlockAllocator(int32_t num_blocks) : refs_(num_blocks, 0) {
  free_.reserve(num_blocks);
  for (int32_t b = num_blocks; b-- > 0;) free_.push_back(b);
}

StatusOr<int32_t> BlockAllocator::Allocate() {
  if (free_.empty())
    return ResourceExhausted("KV cache is full (" + std::to_string(refs_.size()) +
                             " blocks in use)");
  int32_t b = free_.back();
  free_.pop_back();
  refs_[b] = 1;
  return b;
}

void BlockAllocator::AddRef(int32_t block) {
  TSR_CHECK(refs_[block] > 0);
  ++refs_[block];
}

void BlockAllocator::Release(int32_t block) {
  TSR_CHECK(refs_[block] > 0);
  if (--refs_[block] == 0) free_.push_back(block);
}

std::string KvCache::KName(int32_t layer) {
  return "kv." + std::to_string(layer) + ".k";
}
std::string KvCache::VName(int32_t layer) {
  return "kv." + std::to_string(layer) + ".v";
}

StatusOr<std::unique_ptr<KvCache>> KvCache::Create(const KvCacheShape& shape, ExecutionContext& ctx,
                                                   int32_t device_index) {
  if (shape.num_blocks <= 0 || shape.block_size <= 0 || shape.num_layers <= 0)
    return InvalidArgument("KV cache needs at least one block, slot and layer");
  auto cache = std::unique_ptr<KvCache>(new KvCache(shape));
  // A compile-only device (an NPU) keeps whatever KV layout it wants inside its executables and
  // cannot run the paged KV_WRITE / PAGED_ATTENTION kernels: the paged pool then lives on the
  // first kernel-style device after it (the CPU fallback), where those nodes are pinned.
  const auto& devices = ctx.devices();
  for (size_t d = static_cast<size_t>(device_index); d < devices.size(); ++d) {
    if (devices[d]->props().exec_styles & TSR_EXEC_KERNEL) {
      device_index = static_cast<int32_t>(d);
      break;
    }
  }
  Device* dev = devices.at(device_index);
  const uint64_t pool_bytes =
      static_cast<uint64_t>(shape.BytesPerBlockPerLayer() / 2) * shape.num_blocks;
  for (int32_t l = 0; l < shape.num_layers; ++l) {
    for (int kv = 0; kv < 2; ++kv) {
      TSR_ASSIGN_OR_RETURN(auto buf, dev->Alloc(pool_bytes));
      ctx.BindState(kv == 0 ? KName(l) : VName(l), device_index, buf.get(), 0);
      cache->pools_.push_back(std::move(buf));
    }
  }
  return cache;
}

Status KvCache::Extend(SequenceBlocks& seq, int32_t n, std::vector<int32_t>* slots) {
  const int32_t bs = shape_.block_size;
  int32_t need_blocks =
      (seq.num_tokens + n + bs - 1) / bs - static_cast<int32_t>(seq.blocks.size());
  if (need_blocks > blocks_.num_free())
    return ResourceExhausted("KV cache is full: " + std::to_string(need_blocks) +
                             " more blocks needed, " + std::to_string(blocks_.num_free()) +
                             " free");
  for (int32_t i = 0; i < need_blocks; ++i) seq.blocks.push_back(*blocks_.Allocate());
  for (int32_t i = 0; i < n; ++i) {
    int32_t pos = seq.num_tokens + i;
    slots->push_back(seq.blocks[pos / bs] * bs + pos % bs);
  }
  seq.num_tokens += n;
  return OkStatus();
}

void KvCache::Free(SequenceBlocks& seq) {
  for (int32_t b : seq.blocks) blocks_.Release(b);
  seq.blocks.clear();
  seq.num_tokens = 0;
}

}  // namespace tessera
