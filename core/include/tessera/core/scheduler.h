// The scheduler: assigns every node of a graph to a device, splits the graph into steps that run
// on one device each, and inserts the copies a tensor needs to reach the device that reads it.
//
// Devices are tried in priority order. A compile-style device (NPU) claims groups of nodes first;
// a kernel-style device takes each node it `supports_op`. Whatever no preferred device takes falls
// back to the CPU device (the first device of kind CPU in the list).
#ifndef TESSERA_CORE_SCHEDULER_H_
#define TESSERA_CORE_SCHEDULER_H_

#include <cstdint>
#include <span>
#include <vector>

#include "tessera/core/device.h"
#include "tessera/core/ir.h"

namespace tessera {

struct Step {
  enum class Kind { kKernels, kCompiled, kCopy };
  Kind kind = Kind::kKernels;
  int32_t device = 0;           // index into the device list; the destination for kCopy
  std::vector<int32_t> nodes;   // kKernels/kCompiled: node indices in topological order
  TensorId tensor = kNoTensor;  // kCopy: the root tensor copied
  int32_t from_device = -1;     // kCopy: where it lives
};

struct Schedule {
  std::vector<int32_t> node_device;  // per node
  std::vector<int32_t> home;         // per root tensor: the device holding its bytes; -1 none
  std::vector<Step> steps;
  int32_t num_copies() const;
};

// Builds the ABI view of a graph's nodes and tensors (buffers unset) for supports_op/claim.
struct AbiGraph {
  std::vector<tsr_tensor> tensors;
  std::vector<tsr_node> nodes;
  tsr_graph_view view() const;
};
AbiGraph MakeAbiGraph(const Graph& graph);

struct ScheduleOptions {
  // Per tensor: for kState tensors, the device index the state lives on (nodes touching it are
  // pinned there); -1 otherwise. Empty: no states.
  std::vector<int32_t> state_device;
};

// REQUIRES: graph.Validate() is OK. Fails with a clear error when some node has no device.
StatusOr<Schedule> ScheduleGraph(const Graph& graph, std::span<Device* const> devices,
                                 const ScheduleOptions& options = {});

}  // namespace tessera

#endif  // TESSERA_CORE_SCHEDULER_H_
