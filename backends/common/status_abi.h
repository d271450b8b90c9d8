// tessera::Status to the plugin ABI's tsr_status, for the in-tree plugins that run their op
// layers on the core's Status. Kept out of include/tessera/backend on purpose: that folder ships in
// the plugin SDK, which depends on the ABI headers only, never on the core.
#ifndef TESSERA_BACKENDS_COMMON_STATUS_ABI_H_
#define TESSERA_BACKENDS_COMMON_STATUS_ABI_H_

#include <cstdint>
#include <memory>
#include <string>

#include "tessera/backend/abi.h"
#include "tessera/backend/node.h"
#include "tessera/core/status.h"
#include "tessera/plugin_api.h"

namespace tessera::backend {

inline tsr_status ToTsrStatus(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return TSR_OK;
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAbiMismatch: return TSR_ERR_INVALID_ARGUMENT;
    case StatusCode::kNotFound: return TSR_ERR_NOT_FOUND;
    case StatusCode::kUnimplemented: return TSR_ERR_UNIMPLEMENTED;
    case StatusCode::kUnsupported: return TSR_ERR_UNSUPPORTED;
    case StatusCode::kResourceExhausted: return TSR_ERR_OUT_OF_MEMORY;
    case StatusCode::kDeviceError: return TSR_ERR_DEVICE;
    case StatusCode::kInternal: return TSR_ERR_INTERNAL;
  }
  return TSR_ERR_INTERNAL;
}

// TSR_OK for an ok `s`; otherwise fills `err` with "<backend>: <message>" and its code.
inline tsr_status FromStatus(const char* backend, const Status& s, tsr_error* err) {
  if (s.ok()) return TSR_OK;
  return Fail(err, ToTsrStatus(s.code()), std::string(backend) + ": " + s.message());
}

// Whether a graph view's counts are sane (checked before reading it).
inline bool ViewOk(const tsr_graph_view* graph) {
  return graph != nullptr && graph->n_tensors >= 0 && graph->n_nodes >= 0;
}

// supports_op for a kernel-style plugin: the argument checks, then whether node `node` loads
// (shapes only), has a runner and passes validation; why not goes to err's message with TSR_OK.
// The plugin's hooks: Load(dev, g, node, with_data, Loaded*) -> Status, Find(op) -> runner or
// null, Validate(loaded.args) -> Status. Bound by name, e.g.
// `constexpr auto SupportsOp = backend::SupportsOp<LoadedNode, LoadNode, FindRunner, ValidateOp,
// tsr_device>;`.
template <typename Loaded, auto Load, auto Find, auto Validate, typename Device>
tsr_status SupportsOp(Device* dev, const tsr_graph_view* graph, int32_t node,
                      tsr_bool* out_supported, tsr_error* err) {
  if (dev == nullptr || out_supported == nullptr || !ViewOk(graph))
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "supports_op: NULL or malformed argument");
  if (graph->nodes == nullptr || node < 0 || node >= graph->n_nodes)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "supports_op: node index out of range");
  *out_supported = 0;
  auto ln = std::make_unique<Loaded>();
  if (!Load(dev, *graph, node, /*with_data=*/false, ln.get()).ok()) return TSR_OK;
  if (Find(RawEnum(ln->node.op)) == nullptr) return TSR_OK;
  const Status s = Validate(ln->args);
  *out_supported = s.ok() ? 1 : 0;
  if (!s.ok()) Fail(err, TSR_OK, s.message());  // why not, for logs; the call still succeeds
  return TSR_OK;
}

// What execute reports when node `id` of `g` failed with `s`: s's code, with "node N (OP): "
// before its message.
inline Status NodeFailure(const tsr_graph_view& g, int32_t id, const Status& s) {
  int op = 0;
  if (g.nodes != nullptr && id >= 0 && id < g.n_nodes) op = RawEnum(ReadAbiStruct(g.nodes, id).op);
  return Status(s.code(), "node " + std::to_string(id) + " (" + OpName(op) + "): " + s.message());
}

// The bits kernels set in their device's error word when data (not shapes) is invalid: the same
// in every kernel plugin (TSR_K_ERR_* in the OpenCL C kernels, kErr* in CUDA, the Vulkan shaders).
constexpr uint32_t kDataErrIndex = 1;       // GET_ROWS ids, KV_WRITE slots out of range
constexpr uint32_t kDataErrSeqlens = 2;     // cu_q / cu_k / kv_lens inconsistent
constexpr uint32_t kDataErrBlockTable = 4;  // a block id outside the cache

// The status a nonzero error word reports at the next synchronization: invalid argument, naming
// what was wrong.
inline Status DataErrorStatus(uint32_t bits) {
  std::string what;
  if (bits & kDataErrIndex) what += " ids/slots out of range;";
  if (bits & kDataErrSeqlens) what += " inconsistent cu_q/cu_k/kv_lens;";
  if (bits & kDataErrBlockTable) what += " block table entries outside the cache;";
  return InvalidArgument("an earlier execute was given invalid data:" + what +
                         " affected outputs were zeroed or skipped");
}

}  // namespace tessera::backend

#endif  // TESSERA_BACKENDS_COMMON_STATUS_ABI_H_
