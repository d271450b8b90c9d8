// GraphCache: see exec_graph.h.
#include "backends/cuda/exec_graph.h"

#include <algorithm>
#include <cstring>

#include "backends/cuda/ops.h"

namespace tessera::cuda {

GraphCache::~GraphCache() {
  Clear();
}

void GraphCache::Clear() {
  ++epoch_;
  for (Entry& e : entries_)
    if (e.exec != nullptr) cudaGraphExecDestroy(e.exec);
  entries_.clear();
}

cudaGraphExec_t GraphCache::Find(const ExecKey& key) {
  for (Entry& e : entries_) {
    if (e.key.size() == key.size() &&
        std::memcmp(e.key.data(), key.data(), key.size() * sizeof(uint64_t)) == 0) {
      e.last_used = ++clock_;
      return e.exec;
    }
  }
  return nullptr;
}

void GraphCache::Touch(cudaGraphExec_t exec) {
  for (Entry& e : entries_)
    if (e.exec == exec) e.last_used = ++clock_;
}

bool GraphCache::MissedBefore(const ExecKey& key) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the words
  for (uint64_t w : key) h = (h ^ w) * 1099511628211ull;
  h |= 1;  // 0 marks an empty history slot
  for (uint64_t m : misses_)
    if (m == h) return true;
  misses_[next_miss_] = h;
  next_miss_ = (next_miss_ + 1) % kMissHistory;
  return false;
}

StatusOr<cudaGraphExec_t> GraphCache::Add(const ExecKey& key, cudaGraph_t graph) {
  struct GraphDeleter {
    cudaGraph_t g;
    ~GraphDeleter() { cudaGraphDestroy(g); }
  } owned{graph};
  ++epoch_;
  if (entries_.size() >= kMaxEntries) {
    auto lru =
        std::min_element(entries_.begin(), entries_.end(),
                         [](const Entry& a, const Entry& b) { return a.last_used < b.last_used; });
    cudaGraphExecUpdateResultInfo info{};
    if (cudaGraphExecUpdate(lru->exec, graph, &info) == cudaSuccess) {
      lru->key = key;
      lru->last_used = ++clock_;
      return lru->exec;
    }
    cudaGetLastError();  // a refused update is not an error of later calls
    cudaGraphExecDestroy(lru->exec);
    entries_.erase(lru);
  }
  cudaGraphExec_t exec = nullptr;
  TSR_RETURN_IF_ERROR(CudaStatus(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate"));
  entries_.push_back(Entry{key, exec, ++clock_});
  return exec;
}

}  // namespace tessera::cuda
