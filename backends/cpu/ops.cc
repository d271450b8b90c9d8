// The op registry, the validator, the row walker, scratch memory and ParallelRanges.
#include "backends/cpu/ops.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>

#include "tessera/backend/validate.h"

namespace tessera::cpu {

RowWalker::RowWalker(const TensorRef& shape, const TensorRef* const* ts, int n) {
  outer_ = shape.ndim > 0 ? shape.ndim - 1 : 0;
  for (int d = 0; d < outer_; ++d) {
    ne_[d] = shape.ne[d];
    rows_ *= shape.ne[d];
  }
  for (int k = 0; k < n && k < kMaxTensors; ++k) {
    const TensorRef& t = *ts[k];
    const int shift = shape.ndim - t.ndim;  // t's dim j sits at shape dim j + shift
    for (int d = 0; d < outer_; ++d) {
      const int j = d - shift;
      nb_[k][d] = (j < 0 || t.ne[j] == 1) ? 0 : t.nb[j];
    }
  }
}

float* Workspace::Floats(int thread, size_t n) {
  std::vector<float>& v = per_thread_.at(static_cast<size_t>(thread));
  // 16 spare floats let us hand out a 64-byte-aligned pointer inside the vector.
  if (v.size() < n + 16) v.resize(n + 16);
  const uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
  return reinterpret_cast<float*>((p + 63) & ~uintptr_t{63});
}

void ParallelRanges(ThreadPool* pool, int64_t n, int64_t grain,
                    const std::function<void(int64_t begin, int64_t end, int thread)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  // Four chunks a thread balance uneven work without making tasks tiny.
  const int64_t want = static_cast<int64_t>(pool->num_threads()) * 4;
  const int64_t chunk = std::max(grain, (n + want - 1) / want);
  const int64_t n_tasks = (n + chunk - 1) / chunk;
  pool->ParallelFor(n_tasks, [&](int64_t task, int thread) {
    const int64_t begin = task * chunk;
    fn(begin, std::min(n, begin + chunk), thread);
  });
}

TESSERA_BACKEND_DEFINE_FIND_RUNNER_WITH(OpFn, TESSERA_BACKEND_OP_ARGMAX)

Status ValidateOp(const OpArgs& a) {
  if (std::string e = backend::ValidateNode(a); !e.empty()) return InvalidArgument(std::move(e));
  if (a.node->op == TSR_OP_CONV2D) return ValidateConvLayout(a);
  return OkStatus();
}

}  // namespace tessera::cpu
