#include "tessera/core/planner.h"

#include <algorithm>
#include <numeric>

namespace tessera {

static int64_t AlignUp(int64_t v, int64_t a) {
  return (v + a - 1) & ~(a - 1);
}

ArenaPlan PlanArena(const std::vector<ArenaItem>& items, int64_t alignment) {
  ArenaPlan plan;
  plan.offsets.assign(items.size(), 0);
  std::vector<size_t> order(items.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (items[a].size != items[b].size) return items[a].size > items[b].size;
    return items[a].first < items[b].first;
  });
  std::vector<size_t> placed;
  std::vector<std::pair<int64_t, int64_t>> busy;  // [begin, end) of conflicting placed items
  for (size_t idx : order) {
    const ArenaItem& it = items[idx];
    int64_t size = AlignUp(std::max<int64_t>(it.size, 1), alignment);
    plan.no_reuse_bytes += size;
    busy.clear();
    for (size_t p : placed) {
      const ArenaItem& o = items[p];
      if (o.first <= it.last && it.first <= o.last)
        busy.emplace_back(plan.offsets[p],
                          plan.offsets[p] + AlignUp(std::max<int64_t>(o.size, 1), alignment));
    }
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (const auto& [b, e] : busy) {
      if (offset + size <= b) break;  // fits in the gap before this block
      offset = std::max(offset, AlignUp(e, alignment));
    }
    plan.offsets[idx] = offset;
    plan.peak_bytes = std::max(plan.peak_bytes, offset + size);
    placed.push_back(idx);
  }
  return plan;
}

std::vector<LiveRange> ComputeLiveness(const Graph& graph) {
  std::vector<LiveRange> live(graph.num_tensors());
  const auto& nodes = graph.nodes();
  const int32_t n_nodes = static_cast<int32_t>(nodes.size());
  for (int32_t n = 0; n < n_nodes; ++n) {
    TensorId out = graph.Root(nodes[n].output);
    if (live[out].first < 0 && graph.tensor(out).kind == TensorKind::kIntermediate)
      live[out].first = n;
    live[out].last = std::max(live[out].last, n);
    for (TensorId in : nodes[n].inputs) {
      if (in == kNoTensor) continue;
      TensorId root = graph.Root(in);
      live[root].last = std::max(live[root].last, n);
    }
  }
  for (TensorId t = 0; t < graph.num_tensors(); ++t) {
    const TensorDesc& d = graph.tensor(t);
    if (d.kind == TensorKind::kView) continue;
    if (d.is_output) live[t].last = n_nodes;
    if (d.kind != TensorKind::kIntermediate) live[t].first = -1;
  }
  for (TensorId t = 0; t < graph.num_tensors(); ++t)
    if (graph.tensor(t).kind == TensorKind::kView) live[t] = live[graph.tensor(t).view_of];
  return live;
}

}  // namespace tessera
