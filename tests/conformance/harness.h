// Runs one node on one conformance target through the plugin ABI only.
//
// Builds a tsr_graph_view for a single node from host tensors, places every input in its own
// device buffer (contiguous or as a strided view of a larger buffer), asks supports_op, executes,
// downloads the output and frees everything (RAII).
#ifndef TESSERA_TESTS_CONFORMANCE_HARNESS_H_
#define TESSERA_TESTS_CONFORMANCE_HARNESS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "reference.h"
#include "targets.h"

namespace tessera::conformance {

// How an input's elements sit in its device buffer. Bytes not covered by the view are filled
// with 0xFF (NaN for float types), so a kernel that reads them shows up as NaN output.
enum class Layout {
  kContiguous,
  // Rows of the innermost dim padded by 3 elements: a column slice of a wider tensor
  // (nb[ndim-2] = (ne[ndim-1] + 3) * element size).
  kPaddedRows,
  // The last two dims are stored swapped: a transposed view (nb[ndim-1] = ne[ndim-2] * element
  // size, nb[ndim-2] = element size).
  kTransposed,
};
const char* LayoutName(Layout layout);

struct NodeInput {
  const Tensor* tensor = nullptr;  // nullptr = optional input absent (index -1 in the node)
  Layout layout = Layout::kContiguous;
};

// One node to run. Every non-aliased output is contiguous.
struct NodeSpec {
  tsr_op op = TSR_OP_NONE;
  std::vector<NodeInput> inputs;
  int64_t iparams[TSR_MAX_PARAMS] = {};
  float fparams[TSR_MAX_PARAMS] = {};
  tsr_dtype out_dtype = TSR_DTYPE_F32;
  std::vector<int64_t> out_shape;
  // >= 0: the output is input `out_aliases_input` itself (same buffer and offset; KV_WRITE),
  // which must then be contiguous. The downloaded output is that buffer after execution.
  int out_aliases_input = -1;
};

struct RunResult {
  enum class Kind { kOk, kUnsupported, kError };
  Kind kind = Kind::kError;
  std::string message;  // why, for kUnsupported / kError
  Tensor output;        // for kOk: decoded from the device's bytes
};

// Runs `spec` on `target`. Not thread-safe per target (the ABI serializes calls on a device).
RunResult RunNode(const ConformanceTarget& target, const NodeSpec& spec);

}  // namespace tessera::conformance

#endif  // TESSERA_TESTS_CONFORMANCE_HARNESS_H_
