// CUDA graphs for `execute`: the engine runs the same node list over the same buffers once per
// decode step, so the kernels of one execute are captured once and replayed with a single
// cudaGraphLaunch, which removes the per-kernel launch cost and the host's per-node work
// (loading, validating, filling launch parameters) that bound small-model decode.
//
// A captured graph bakes in every kernel argument: device addresses, shapes, strides, op
// parameters and the scratch block. ExecKey is therefore the exact bytes of all of that (not a
// hash), so a replay runs exactly the kernels a direct execute would have launched. Input *data*
// (token ids, positions, block tables, ...) lives in device buffers that kernels read when they
// run, so it may change freely between replays.
#ifndef TESSERA_BACKENDS_CUDA_EXEC_GRAPH_H_
#define TESSERA_BACKENDS_CUDA_EXEC_GRAPH_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "tessera/core/status.h"

namespace tessera::cuda {

using ExecKey = std::vector<uint64_t>;

// Instantiated graphs of one device, most recently used kept. Not thread-safe (the ABI
// serializes calls on a device).
class GraphCache {
 public:
  GraphCache() = default;
  GraphCache(const GraphCache&) = delete;
  GraphCache& operator=(const GraphCache&) = delete;
  ~GraphCache();

  // The graph captured for exactly `key`, or nullptr.
  cudaGraphExec_t Find(const ExecKey& key);

  // Marks `exec` (a graph of this cache) used now, as Find does on a hit.
  void Touch(cudaGraphExec_t exec);

  // Changes whenever an entry's key or executable may have changed (Add, Clear): a graph found
  // for a key stays the graph of that key while the epoch is the same.
  uint64_t epoch() const { return epoch_; }

  // Makes `graph` (captured for `key`; destroyed here) launchable: when the cache is full the
  // least recently used entry's executable is updated in place if the topology allows (cheaper
  // than instantiating; decode steps of one model differ only in arguments), else replaced.
  StatusOr<cudaGraphExec_t> Add(const ExecKey& key, cudaGraph_t graph);

  // Whether `key` missed before recently (remembered by hash; records it). Capturing costs more
  // than launching directly, so only a key that comes back (a decode step) is captured: a
  // one-off execute (a prefill, say) runs directly.
  bool MissedBefore(const ExecKey& key);

  // Destroys every executable (call with the stream idle).
  void Clear();

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    ExecKey key;
    cudaGraphExec_t exec = nullptr;
    uint64_t last_used = 0;
  };
  static constexpr size_t kMaxEntries = 16;
  static constexpr size_t kMissHistory = 64;
  std::vector<Entry> entries_;
  uint64_t misses_[kMissHistory] = {};
  size_t next_miss_ = 0;
  uint64_t clock_ = 0;
  uint64_t epoch_ = 0;
};

}  // namespace tessera::cuda

#endif  // TESSERA_BACKENDS_CUDA_EXEC_GRAPH_H_
