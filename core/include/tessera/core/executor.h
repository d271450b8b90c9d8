// Runs graphs on devices.
//
// ExecutionContext holds what outlives one graph: the devices (priority order), weights bound once
// per device (imported zero-copy from the mmap where the device allows, else uploaded once),
// persistent state buffers (KV pools), one grow-only arena per device, and compiled executables
// of compile-style devices (in memory and, with a cache dir, as blobs on disk).
//
// Devices with TSR_CAP_NO_F32 hold every f32/bf16 tensor as f16: the context converts weights
// once when it places them there, and executables convert at each boundary (copies, inputs,
// outputs). Devices with TSR_CAP_STATIC_SHAPES get shape buckets: a compiled step whose nodes all
// work row by row is serialized with dim 0 padded to the next power of two, so token counts
// 5..8 share one executable (the padding rows' bytes are planned in the arena and never read
// back). KV_WRITE / PAGED_ATTENTION count as row-wise: their per-sequence inputs pad the sequence
// count (and a block table its width) to powers of two too, and Run writes inert index padding
// (BucketRows in graph_serialize.h).
//
// Executable::Prepare schedules a graph, plans each device's arena from liveness and builds the
// ABI views once; Run then uploads inputs, runs the steps and downloads outputs without
// allocating device memory (Prepare may grow an arena; Run never does).
//
// Thread-safety: an ExecutionContext and its Executables are used from one thread at a time.
#ifndef TESSERA_CORE_EXECUTOR_H_
#define TESSERA_CORE_EXECUTOR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "tessera/core/device.h"
#include "tessera/core/ir.h"
#include "tessera/core/planner.h"
#include "tessera/core/scheduler.h"

namespace tessera {

struct ExecutionOptions {
  int64_t arena_alignment = 256;
  // Where compiled executables of compile-style devices are cached as blobs; "" = memory only.
  std::string compile_cache_dir;
};

struct CompileStats {
  int64_t compiled = 0;      // compile() calls
  int64_t loaded_blobs = 0;  // deserialize_executable() hits from the disk cache
  int64_t memory_hits = 0;
};

class ExecutionContext {
 public:
  // `devices` in priority order; not owned; must outlive the context.
  ExecutionContext(std::vector<Device*> devices, ExecutionOptions options = {});
  ~ExecutionContext();

  // Registers a weight by name: `data` (e.g. into an mmap) must stay valid for the context's
  // life. Devices get it on first use.
  void BindWeight(const std::string& name, const void* data, uint64_t bytes);
  // Registers persistent state (e.g. a KV pool) living on `devices()[device]`.
  void BindState(const std::string& name, int32_t device, DeviceBuffer* buffer, uint64_t offset);

  const std::vector<Device*>& devices() const { return devices_; }
  const ExecutionOptions& options() const { return options_; }
  const CompileStats& compile_stats() const { return compile_stats_; }
  // Bytes of the arena of device d (its peak need so far).
  int64_t arena_bytes(int32_t d) const;
  // The dtype a tensor of dtype `t` has on device d (f16 for f32/bf16 on a TSR_CAP_NO_F32
  // device, else `t`).
  DType StorageDType(int32_t d, DType t) const;

 private:
  friend class Executable;
  struct WeightHost {
    const void* data;
    uint64_t bytes;
  };
  struct StateBinding {
    int32_t device;
    DeviceBuffer* buffer;
    uint64_t offset;
  };
  struct CompiledEntry;

  // Returns the device copy of a weight of `dtype`, making it on first use (converted to the
  // device's storage dtype).
  StatusOr<DeviceBuffer*> WeightOn(const std::string& name, DType dtype, int32_t device);
  // Grows device d's arena to at least `bytes` (allocates only when it grows).
  StatusOr<DeviceBuffer*> ArenaOn(int32_t device, int64_t bytes);
  StatusOr<tsr_executable*> CompiledFor(int32_t device, const std::string& proto_bytes,
                                        std::vector<tsr_buffer*> weights);

  std::vector<Device*> devices_;
  ExecutionOptions options_;
  std::map<std::string, WeightHost> weights_host_;
  std::map<std::pair<std::string, int32_t>, std::unique_ptr<DeviceBuffer>> weights_dev_;
  std::map<std::string, StateBinding> states_;
  std::vector<std::unique_ptr<DeviceBuffer>> arenas_;
  // Bumped each time device d's arena is replaced. Executables compare generations, not
  // pointers: a new arena's DeviceBuffer may reuse the freed one's address.
  std::vector<uint64_t> arena_generation_;
  std::map<std::string, std::unique_ptr<CompiledEntry>> compiled_;
  CompileStats compile_stats_;
};

// A host-side view of one graph input or output, contiguous.
struct HostTensor {
  TensorId id = kNoTensor;
  void* data = nullptr;  // const for inputs
  uint64_t bytes = 0;
};

class Executable {
 public:
  // REQUIRES: every weight and state the graph names is bound in ctx.
  static StatusOr<std::unique_ptr<Executable>> Prepare(ExecutionContext& ctx, const Graph& graph);
  ~Executable();

  // inputs: one per kInput tensor (any order); outputs: graph outputs to read back.
  Status Run(std::span<const HostTensor> inputs, std::span<const HostTensor> outputs);

  const Schedule& schedule() const { return schedule_; }
  // Per device: the planned arena peak and what it would take without reuse.
  int64_t peak_bytes(int32_t d) const { return plans_[d].peak_bytes; }
  int64_t no_reuse_bytes(int32_t d) const { return plans_[d].no_reuse_bytes; }
  // Where the bytes of tensor t live on device d: {buffer, offset}; buffer null if not there.
  std::pair<tsr_buffer*, uint64_t> Location(TensorId t, int32_t d) const;

 private:
  Executable(ExecutionContext& ctx, const Graph& graph) : ctx_(ctx), graph_(graph) {}
  void PlanBuckets();
  // Bytes root tensor t takes on device d: its storage dtype, dim 0 padded to its bucket.
  int64_t DeviceBytes(int32_t d, TensorId t) const;
  Status PlanArenas();
  Status BuildViews();
  Status PrepareCompiled(size_t step_index);
  // Writes the bucket padding of an int32 root tensor on device d (see BucketRows); `host`, if
  // given, is the tensor's data just uploaded.
  Status FillPadding(int32_t d, TensorId root, const int32_t* host = nullptr);
  // Uploads a width-padded int32 input (a block table) in its bucket's layout.
  Status UploadWidened(int32_t d, TensorId id, const int32_t* data);
  // Drops width padding the bytes could not follow (see the definition).
  void KeepUploadedWidths();
  Status RunCopy(const Step& step);
  Status RunCompiled(size_t step_index);

  struct Placement {
    DeviceBuffer* buffer = nullptr;
    uint64_t offset = 0;
    bool in_arena = false;  // re-pointed when the device's arena grows
  };
  struct CompiledStep {
    tsr_executable* exe = nullptr;
    std::vector<TensorId> inputs, outputs;
    std::vector<int64_t> in_rows, out_rows;  // > 0: dim 0 of the view handed to it (a bucket)
    std::vector<int64_t> in_cols;            // > 0: dim 1 of a 2-D input view (a block table)
    std::vector<tsr_tensor> in_views, out_views;
    // The views carry their bucket's dim 0 (the arena holds the padding rows).
    void ApplyBucket() {
      for (size_t k = 0; k < in_views.size(); ++k) {
        if (in_rows[k] > 0) in_views[k].ne[0] = in_rows[k];
        if (in_cols[k] > 0 && in_views[k].ndim == 2) {
          in_views[k].ne[1] = in_cols[k];
          in_views[k].nb[0] = in_views[k].nb[1] * in_cols[k];
        }
      }
      for (size_t k = 0; k < out_views.size(); ++k)
        if (out_rows[k] > 0) out_views[k].ne[0] = out_rows[k];
    }
  };

  ExecutionContext& ctx_;
  const Graph& graph_;
  Schedule schedule_;
  std::vector<ArenaPlan> plans_;                   // per device
  std::vector<std::vector<Placement>> placement_;  // [device][root tensor]
  std::vector<uint64_t> arena_generation_;         // [device] the arena the placements point at
  std::vector<std::vector<tsr_tensor>> views_;     // [device][tensor]: the ABI tensors there
  std::vector<tsr_node> abi_nodes_;
  std::map<size_t, CompiledStep> compiled_steps_;  // by step index
  std::vector<std::vector<int64_t>> bucket_rows_;  // [device][root tensor]: padded dim 0, or 0
  // By step index: the padded dim 0 of each tensor of a bucketed compiled step.
  std::map<size_t, std::map<TensorId, int64_t>> step_bucket_;
  std::set<TensorId> pad_skip_;                    // roots whose padding is -1 (KV_WRITE slots)
  std::vector<std::vector<int64_t>> bucket_cols_;  // [device][root tensor]: padded dim 1, or 0
  std::map<size_t, std::map<TensorId, int64_t>> step_cols_;  // by step index, as step_bucket_
  // Host bounce buffers for cross-device copies and for dtype conversion at the boundary.
  std::vector<uint8_t> staging_, staging_converted_;
};

}  // namespace tessera

#endif  // TESSERA_CORE_EXECUTOR_H_
