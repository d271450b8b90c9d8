#include "tessera/core/planner.h"

#include <gtest/gtest.h>

#include <random>

namespace tessera {
namespace {

// No two items that are live at the same time may share a byte.
void ExpectNoOverlap(const std::vector<ArenaItem>& items, const ArenaPlan& plan, int64_t align) {
  for (size_t a = 0; a < items.size(); ++a) {
    EXPECT_EQ(plan.offsets[a] % align, 0);
    EXPECT_LE(plan.offsets[a] + items[a].size, plan.peak_bytes);
    for (size_t b = a + 1; b < items.size(); ++b) {
      bool live_together = items[a].first <= items[b].last && items[b].first <= items[a].last;
      bool bytes_overlap = plan.offsets[a] < plan.offsets[b] + items[b].size &&
                           plan.offsets[b] < plan.offsets[a] + items[a].size;
      EXPECT_FALSE(live_together && bytes_overlap && items[a].size > 0 && items[b].size > 0)
          << "items " << a << " and " << b;
    }
  }
}

TEST(Planner, ChainReusesMemory) {
  std::vector<ArenaItem> items;
  for (int i = 0; i < 10; ++i) items.push_back({1000, i, i + 1});
  ArenaPlan plan = PlanArena(items, 64);
  ExpectNoOverlap(items, plan, 64);
  EXPECT_EQ(plan.peak_bytes, 2 * 1024);
  EXPECT_EQ(plan.no_reuse_bytes, 10 * 1024);
}

TEST(Planner, RandomIntervalsNeverOverlapAndBeatNoReuse) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<ArenaItem> items;
    int n = 5 + static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) {
      int32_t first = static_cast<int32_t>(rng() % 40);
      items.push_back(
          {static_cast<int64_t>(1 + rng() % 5000), first, first + static_cast<int32_t>(rng() % 6)});
    }
    ArenaPlan plan = PlanArena(items, 256);
    ExpectNoOverlap(items, plan, 256);
    EXPECT_LE(plan.peak_bytes, plan.no_reuse_bytes);
  }
}

TEST(Planner, LivenessFollowsViewsAndOutputs) {
  Graph g;
  TensorId x = g.AddInput("x", DType::kF32, {4, 4});
  TensorId a = g.AddNode(TSR_OP_SILU, {x}, DType::kF32, {4, 4});  // node 0
  TensorId v = g.Reshape(a, {16});
  TensorId b = g.AddNode(TSR_OP_RELU, {x}, DType::kF32, {4, 4});  // node 1
  TensorId c = g.AddNode(TSR_OP_TANH, {v}, DType::kF32, {16});    // node 2: reads a via view
  g.MarkOutput(c);
  auto live = ComputeLiveness(g);
  EXPECT_EQ(live[a].first, 0);
  EXPECT_EQ(live[a].last, 2);  // extended by the view's reader
  EXPECT_EQ(live[b].first, 1);
  EXPECT_EQ(live[b].last, 1);
  EXPECT_EQ(live[c].last, 3);  // outputs live to the end
  EXPECT_EQ(live[x].first, -1);
}

}  // namespace
}  // namespace tessera
