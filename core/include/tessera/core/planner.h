// The memory planner: gives every transient tensor an offset in a per-device arena from its
// live interval, so a run allocates nothing. Tensors whose live intervals overlap never share
// bytes; tensors that are never live at once may.
#ifndef TESSERA_CORE_PLANNER_H_
#define TESSERA_CORE_PLANNER_H_

#include <cstdint>
#include <vector>

#include "tessera/core/ir.h"

namespace tessera {

// One allocation request: `size` bytes live from step `first` to step `last` inclusive.
struct ArenaItem {
  int64_t size = 0;
  int32_t first = 0;
  int32_t last = 0;
};

struct ArenaPlan {
  std::vector<int64_t> offsets;  // per item, aligned
  int64_t peak_bytes = 0;        // arena size needed
  int64_t no_reuse_bytes = 0;    // sum of aligned sizes: what a planner without reuse would need
};

// Greedy by size: largest items first, each at the lowest aligned offset that overlaps no
// already-placed item live at the same time. O(n^2) in the item count, fine for graphs of a few
// thousand tensors. Deterministic. `alignment` must be a power of two.
ArenaPlan PlanArena(const std::vector<ArenaItem>& items, int64_t alignment);

// Live interval of each tensor's bytes, in node indices: first = the producing node (-1 for
// leaves), last = the last node reading it or any view of it (num_nodes for graph outputs).
// Views report their root's interval.
struct LiveRange {
  int32_t first = -1;
  int32_t last = -1;  // -1: never used
};
std::vector<LiveRange> ComputeLiveness(const Graph& graph);

}  // namespace tessera

#endif  // TESSERA_CORE_PLANNER_H_
