#include "tessera/core/kv_cache.h"

#include <spdlog/spdlog.h>

#include "tessera/core/scheduler.h"

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

namespace {

// Would compile-style device `dev` run attention over a pool of this shape itself? Asked through
// claim (no ABI change): a one-token step of every layer, KV_WRITE of K and V into the layer's
// pool states and PAGED_ATTENTION over them, must be claimed whole. The plugin judges the dtypes,
// the shapes and whether the pools fit its memory.
bool ClaimsPagedAttention(Device& dev, const KvCacheShape& shape) {
  const tsr_plugin_api& api = dev.plugin().api();
  if (!api.claim) return false;
  Graph g;
  const int64_t kv = shape.num_kv_heads, d = shape.head_dim;
  TensorId q = g.AddInput("q", DType::kF32, {1, kv, d});
  TensorId rows = g.AddInput("rows", DType::kF32, {1, kv, d});
  TensorId slots = g.AddInput("slots", DType::kI32, {1});
  TensorId table = g.AddInput("block_table", DType::kI32, {1, 1});
  TensorId lens = g.AddInput("kv_lens", DType::kI32, {1});
  TensorId cu = g.AddInput("cu_q", DType::kI32, {2});
  OpParams ap;
  ap.i[0] = 1;
  ap.f[0] = 1.f;
  for (int32_t l = 0; l < shape.num_layers; ++l) {
    TensorId pools[2];
    for (int k = 0; k < 2; ++k) {
      TensorId pool = g.AddState(k == 0 ? KvCache::KName(l) : KvCache::VName(l), DType::kF32,
                                 {shape.num_blocks, shape.block_size, kv, d});
      pools[k] = g.AddInPlaceNode(TSR_OP_KV_WRITE, {pool, rows, slots}, pool);
    }
    g.AddNode(TSR_OP_PAGED_ATTENTION, {q, pools[0], pools[1], table, lens, cu}, DType::kF32,
              {1, kv, d}, ap);
  }
  if (!g.Validate().ok()) return false;
  AbiGraph abi = MakeAbiGraph(g);
  tsr_graph_view view = abi.view();
  std::vector<int32_t> group(static_cast<size_t>(g.num_nodes()), -1);
  tsr_claim_result res{};
  res.struct_size = sizeof(res);
  res.group_of_node = group.data();
  tsr_error err{};
  err.struct_size = sizeof(err);
  if (api.claim(dev.handle(), &view, &res, &err) != TSR_OK) return false;
  for (int32_t gid : group)
    if (gid < 0) return false;
  return true;
}

}  // namespace

StatusOr<std::unique_ptr<KvCache>> KvCache::Create(const KvCacheShape& shape, ExecutionContext& ctx,
                                                   int32_t device_index) {
  if (shape.num_blocks <= 0 || shape.block_size <= 0 || shape.num_layers <= 0)
    return InvalidArgument("KV cache needs at least one block, slot and layer");
  auto cache = std::unique_ptr<KvCache>(new KvCache(shape));
  const auto& devices = ctx.devices();
  // A compile-only device (an NPU) holds the pool only if it claims the paged KV_WRITE /
  // PAGED_ATTENTION nodes over it (then it keeps the pool in its own private layout, touched by
  // its executables alone, and the scheduler pins those nodes to its claim) and the pool fits
  // its memory. Otherwise the pool lives on the first kernel-style device after it (the CPU
  // fallback), where those nodes are pinned.
  const bool on_npu = !(devices.at(device_index)->props().exec_styles & TSR_EXEC_KERNEL) &&
                      ClaimsPagedAttention(*devices[device_index], shape);
  if (on_npu) {
    auto placed = Place(*cache, ctx, device_index);
    if (placed.ok()) {
      spdlog::debug("KV pool on {} (claimed paged attention)", devices[device_index]->label());
      return cache;
    }
    if (placed.code() != StatusCode::kResourceExhausted) return placed;
    spdlog::info("{}: the KV pool does not fit ({}); it stays on the kernel-style fallback",
                 devices[device_index]->label(), placed.message());
  }
  for (size_t d = static_cast<size_t>(device_index); d < devices.size(); ++d) {
    if (devices[d]->props().exec_styles & TSR_EXEC_KERNEL) {
      device_index = static_cast<int32_t>(d);
      break;
    }
  }
  TSR_RETURN_IF_ERROR(Place(*cache, ctx, device_index));
  return cache;
}

Status KvCache::Place(KvCache& cache, ExecutionContext& ctx, int32_t device_index) {
  const KvCacheShape& shape = cache.shape_;
  Device* dev = ctx.devices().at(device_index);
  // Bytes in the device's storage dtype (f16 on a TSR_CAP_NO_F32 device).
  const int64_t elem = ElementSize(ctx.StorageDType(device_index, DType::kF32));
  const uint64_t pool_bytes = static_cast<uint64_t>(shape.BytesPerBlockPerLayer() / 2 /
                                                    static_cast<int64_t>(sizeof(float)) * elem) *
                              shape.num_blocks;
  std::vector<std::unique_ptr<DeviceBuffer>> pools;
  for (int32_t l = 0; l < shape.num_layers; ++l) {
    for (int kv = 0; kv < 2; ++kv) {
      TSR_ASSIGN_OR_RETURN(auto buf, dev->Alloc(pool_bytes));
      pools.push_back(std::move(buf));
    }
  }
  for (size_t i = 0; i < pools.size(); ++i) {
    const int32_t l = static_cast<int32_t>(i / 2);
    ctx.BindState(i % 2 == 0 ? KName(l) : VName(l), device_index, pools[i].get(), 0);
  }
  cache.allocated_bytes_ = static_cast<int64_t>(pool_bytes) * static_cast<int64_t>(pools.size());
  cache.pools_ = std::move(pools);
  return OkStatus();
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
