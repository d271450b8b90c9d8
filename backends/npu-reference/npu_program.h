// The npu-reference "device program": what compile() turns a GraphProto into, what a blob holds,
// and the host-CPU simulator that runs it. Like a real NPU it only knows fixed shapes, f16
// activations and weights (int8 Q8_B32 weights too) and int32 index tensors: an f32 tensor in a
// GraphProto is an error, the host must convert at the boundary (TSR_CAP_NO_F32).
//
// KV pools (KV_WRITE / PAGED_ATTENTION) are runtime inputs the host passes by handle; KV_WRITE
// names its pool as its output and writes it in place. Their bytes are the NPU's own layout, not
// the host's [NB][BS][Hkv][D]: per block head-major [Hkv][BS][D] f16, so one head's keys of a
// block are one contiguous run. Only these programs ever read or write a pool.
#ifndef TESSERA_NPU_REFERENCE_NPU_PROGRAM_H_
#define TESSERA_NPU_REFERENCE_NPU_PROGRAM_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tessera/plugin_api.h"

namespace tessera::npu {

// f16 <-> f32 (round to nearest even), the device's only float conversions.
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);

// Where a program tensor lives at run time.
enum class SlotKind : int32_t { kInput = 0, kOutput = 1, kWeight = 2, kScratch = 3 };

struct Slot {
  std::string name;
  tsr_dtype dtype = TSR_DTYPE_F16;
  std::vector<int64_t> shape;  // fixed: the executable runs these shapes only
  SlotKind kind = SlotKind::kScratch;
  int32_t index = 0;    // input/output position, or the weight's buffer index
  uint64_t offset = 0;  // weight: byte offset in its buffer; scratch: offset in the scratch arena
  int64_t Numel() const;
  uint64_t Bytes() const;
};

struct Instr {
  int32_t op = 0;                   // tsr_op
  std::vector<int32_t> in;          // slot indices, -1 = absent optional
  int32_t out = -1;                 // slot index
  int64_t ip[TSR_MAX_PARAMS] = {};  // tsr_node iparams
  float fp[TSR_MAX_PARAMS] = {};    // tsr_node fparams
};

struct Program {
  std::vector<Slot> slots;
  std::vector<Instr> code;
  int32_t n_inputs = 0, n_outputs = 0, n_weights = 0;
  uint64_t scratch_bytes = 0;  // device memory the executable holds for intermediates
};

// Lowers serialized GraphProto bytes to a program. Errors are (code, message) pairs filled into
// `*error`; returns TSR_OK on success.
tsr_status CompileGraph(const void* bytes, size_t size, Program* out, std::string* error);

// Blob form: magic, compat string, program. Deserialize refuses a blob of another compat string.
std::string SerializeProgram(const Program& p, const std::string& compat);
tsr_status DeserializeProgram(const void* blob, size_t size, const std::string& compat,
                              Program* out, std::string* error);

// Runs a program on host memory: `inputs`/`outputs` are the data pointers of the run's tensors
// (GraphProto order), `weights` the weight buffers' data, `scratch` scratch_bytes of memory.
tsr_status RunProgram(const Program& p, uint8_t* const* inputs, uint8_t* const* outputs,
                      uint8_t* const* weights, uint8_t* scratch, std::string* error);

// Does the simulator run this node (claim)? Looks at shapes and dtypes only; f32/bf16 float
// operands count as f16 (the host converts them), Q4 weights and unknown ops do not.
bool CanRun(const tsr_graph_view& g, const tsr_node& n);

}  // namespace tessera::npu

#endif  // TESSERA_NPU_REFERENCE_NPU_PROGRAM_H_
