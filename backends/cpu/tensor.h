// TensorRef: the CPU backend's view of a tsr_tensor (shared with every plugin, see
// tessera/backend/tensor.h), plus the row walker the kernel files share.
#ifndef TESSERA_BACKENDS_CPU_TENSOR_H_
#define TESSERA_BACKENDS_CPU_TENSOR_H_

#include <cstdint>

#include "tessera/backend/tensor.h"
#include "tessera/plugin_api.h"

namespace tessera::cpu {

using backend::BlockBytes;
using backend::BroadcastsTo;
using backend::DtypeName;
using backend::DtypeSize;
using backend::IsQuantized;
using backend::SameShape;
using backend::ShapeString;
using backend::TensorRef;

// Byte offsets of the rows (all dimensions but the innermost) of up to three tensors walked in
// lock-step over the outer dims of a reference shape. A tensor whose dimension is 1 or missing
// where the reference has more broadcasts (stride 0), numpy-style with trailing dims aligned.
class RowWalker {
 public:
  static constexpr int kMaxTensors = 3;
  // `shape` supplies the outer dims; every tensor in `ts` must broadcast to it.
  RowWalker(const TensorRef& shape, const TensorRef* const* ts, int n);
  int64_t rows() const { return rows_; }
  // Byte offset of row `row` (flat index over the outer dims, row-major) in tensor k.
  int64_t Offset(int k, int64_t row) const {
    int64_t off = 0;
    for (int d = outer_ - 1; d >= 0; --d) {
      const int64_t i = row % ne_[d];
      row /= ne_[d];
      off += i * nb_[k][d];
    }
    return off;
  }

 private:
  int outer_ = 0;
  int64_t rows_ = 1;
  int64_t ne_[TSR_MAX_DIMS] = {};
  int64_t nb_[kMaxTensors][TSR_MAX_DIMS] = {};
};

}  // namespace tessera::cpu

#endif  // TESSERA_BACKENDS_CPU_TENSOR_H_
