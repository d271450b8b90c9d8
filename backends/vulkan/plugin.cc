// The Vulkan backend's C ABI: entry points, function table, context (loader, instance, device
// discovery, the reason when there is none), devices (one compute queue each), buffers, events,
// supports_op and execute.
//
// Execution model. Each device records dispatches into a ring of command buffers; `execute`
// records its nodes, submitting every few dispatches (so the GPU starts while the host records
// the rest) and at its end, with a fence each, without waiting. An execute that repeats one seen
// before (a decode step) replays a secondary command buffer recorded once instead
// (tsr_device::ReplayEntry): one submission, nothing recorded. Every later call that exposes
// memory (download, map, upload into memory the GPU may still read, synchronize, event_wait)
// first waits for all those fences, so the host cannot tell queued work from finished work.
// Barriers order a node after the earlier ones it depends on (across command buffers too).
// Parameter blocks go to a host-visible ring that shaders read through its device address; the
// ring is reused once every fence has signalled.
//
// Memory. Discrete GPUs: buffers in DEVICE_LOCAL memory (not the small host-visible BAR heap),
// uploads/downloads through a host-visible staging buffer. Integrated GPUs and CPU devices
// (unified memory, lavapipe): buffers in DEVICE_LOCAL|HOST_VISIBLE memory, mapped once, copied
// with memcpy. Weights are uploaded once (buffer_import_host copies) in their checkpoint dtype:
// bf16 stays bf16 and the 8/4-bit blocks stay packed; shaders unpack in registers.
//
// Data errors. Shaders never read out of bounds on bad ids, slots, sequence lengths or block
// tables: they skip the element and set a bit in a per-device error word, which
// device_synchronize and synchronous downloads read (and clear), as the CUDA backend does.
//
// Every table function catches all exceptions at the boundary: nothing C++ crosses into the host.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/common/status_abi.h"
#include "backends/vulkan/ops.h"
#include "backends/vulkan/shaders.h"
#include "backends/vulkan/vk_api.h"
#include "tessera/backend/abi.h"
#include "tessera/backend/device_ctx.h"
#include "tessera/backend/node.h"
#include "tessera/core/status.h"
#include "tessera/plugin_api.h"

namespace tessera::vulkan {
namespace {

struct DeviceInfo {
  VkPhysicalDevice pd = VK_NULL_HANDLE;
  int vk_index = 0;  // position in vkEnumeratePhysicalDevices
  std::string name, description;
  tsr_device_kind kind = TSR_DEVICE_OTHER;
  bool unified = false;   // integrated GPU or CPU device: device memory is host memory
  uint32_t vendor = 0;    // VkPhysicalDeviceProperties::vendorID (0x10de: NVIDIA)
  bool software = false;  // a CPU implementation of Vulkan (lavapipe, SwiftShader)
  uint32_t subgroup = 0;
  uint32_t queue_family = 0;
  uint64_t memory_total = 0;
  int32_t compute_units = 0;
  VkPhysicalDeviceMemoryProperties mem{};
  uint8_t uuid[VK_UUID_SIZE] = {};
  // VK_EXT_subgroup_size_control: pipelines can require the reported subgroup size (attention's
  // lane layout depends on it; drivers such as AMD's may otherwise pick another).
  bool size_control = false;
  // Attention's workgroup: 32 subgroups where the device allows (more keys in flight per
  // (query, head); decode has few of those), at least 128 invocations (CheckDevice).
  uint32_t attn_workgroup = 128;
  // attention_tiled.comp fits: 32 KiB of shared memory and 128-invocation workgroups.
  bool tiled_attention = false;
  // matmul.comp's MultiRows fits (the multi_* modules): 32 KiB of shared memory (its x tile),
  // subgroups of 8..32.
  bool multi_fits = false;
  bool shuffle = false;  // compute subgroups support subgroupShuffle (VK_SUBGROUP_FEATURE_SHUFFLE)
  // rows.comp and the decode GEMV with the RMS_NORM prologue can require the subgroup size, so
  // an RMS_NORM folded into a decode GEMV sums exactly as rows.comp (ExecuteNormGemv).
  bool norm_fusable = false;
  bool timestamps = false;     // the compute queue writes timestamps (TESSERA_VULKAN_PROFILE)
  float timestamp_period = 1;  // ns a tick
  // The cooperative-matrix GEMM can run (CheckCoopMatrix): VK_KHR_cooperative_matrix and
  // VK_KHR_shader_bfloat16 with bf16 x bf16 -> f32 16 x 16 x 16 subgroup matrices, the Vulkan
  // memory model, subgroup 32. coop_note: what the description says about it.
  bool coop_bf16 = false;
  std::string coop_note;
};

// Address range [lo, hi) of device memory a dispatch reads or writes.
struct Range {
  uint64_t lo = 0, hi = 0;
  bool operator==(const Range&) const = default;
};

// The replay key's encoding (tsr_device::ReplayEntry): a barrier is the one word kKeyBarrier; a
// dispatch is kKeyDispatch | shader, gx | gy << 32, gz | block size << 32, then its parameter
// block in KeyParamWords(size) words (at least the error word's address).
constexpr uint64_t kKeyDispatch = uint64_t{1} << 56;
constexpr uint64_t kKeyBarrier = uint64_t{2} << 56;
constexpr size_t KeyParamWords(uint64_t size) {
  return (std::max<uint64_t>(size, 8) + 7) / 8;
}
// A parameter block's footprint in the ring or an entry's buffer (64-byte aligned blocks).
constexpr uint64_t ParamBlockBytes(uint64_t size) {
  return (size + 63) / 64 * 64;
}

// TESSERA_VULKAN_PROFILE=1: GPU time per shader from timestamps around every dispatch, and
// the submissions' wall time (dispatches + barriers + gaps), logged when the device closes.
// TESSERA_VULKAN_PROFILE=2 (step mode): only a timestamp at the start and end of every command
// buffer (dispatches are not serialized and partial submissions stay on), plus the host's time
// recording (execute) and waiting on fences: where a decode step's wall time goes.
struct Profile {
  static constexpr uint32_t kQueries = 16384;
  VkQueryPool pool = VK_NULL_HANDLE;
  bool per_dispatch = true;  // false: step mode
  // Step mode: per command buffer slot (queries 2 slot, 2 slot + 1), its submission number and
  // kind, recorded as a CmdSpan (begin/end ticks) once its fence has been waited for. kind: 0
  // not an execute's (downloads, uploads), 1 an execute's first, 2 its later ones. Command
  // buffers before the first execute (weight uploads) are not recorded.
  static constexpr int kSlots = 16;  // >= tsr_device::kCmdSlots
  struct CmdSpan {
    uint64_t seq, begin, end;
    int kind;
  };
  uint64_t slot_seq[kSlots] = {};
  int slot_kind[kSlots] = {};
  bool slot_live[kSlots] = {};
  uint64_t next_seq = 0;
  bool in_execute = false, exec_start_pending = false;
  std::vector<CmdSpan> spans;
  std::vector<double> execute_ns;  // host time of each execute (recording + submissions)
  double wait_ns = 0, executes = 0, barriers = 0, dispatches = 0;
  // The host between steps (step mode): time blocked in device_synchronize; downloads (count,
  // total, of which recording + submitting the copy, waiting on its fence, the memcpy out of
  // host-visible memory; eager: served from the copy the execute recorded); from a download's
  // return to the next execute's start (the engine's own work: sampling, the next batch, its
  // uploads, of which the uploads' own time); from an execute's start to its first submission.
  // One sample (ns) an event; the log gives medians, so that one-time costs (pipeline
  // creation, the first steps) do not count.
  struct Samples {
    std::vector<double> v;
    void Add(double ns) { v.push_back(ns); }
    double MedianUs() const {
      if (v.empty()) return 0;
      std::vector<double> s = v;
      std::nth_element(s.begin(), s.begin() + static_cast<ptrdiff_t>(s.size() / 2), s.end());
      return s[s.size() / 2] / 1e3;
    }
  };
  Samples sync, download, dl_record, dl_wait, dl_copy, between, step_uploads, first_submit;
  Samples key_pass;    // the replay's key pass (tsr_device::ReplayEntry), an execute with one
  Samples fast_check;  // the replay's view fast path check, an execute
  double dl_eager = 0, upload_ns = 0;  // upload_ns: the uploads since the last download
  double dl_direct = 0;  // downloads straight into host_alloc memory (eager ones included)
  bool after_download = false;
  std::chrono::steady_clock::time_point download_end;
  uint32_t used = 0;           // timestamps in the command buffer being recorded/run
  std::vector<int> shader_of;  // per timed dispatch
  double busy_ns[static_cast<int>(Shader::kCount)] = {};
  double calls[static_cast<int>(Shader::kCount)] = {};
  double span_ns = 0, submissions = 0;
};

}  // namespace
}  // namespace tessera::vulkan

struct tsr_plugin_ctx {
  std::string absence;  // why there are no devices; "" when there are
  tessera::vulkan::VkApi vk;
  VkInstance instance = VK_NULL_HANDLE;
  std::vector<tessera::vulkan::DeviceInfo> devices;
  ~tsr_plugin_ctx() {
    if (instance != VK_NULL_HANDLE) vk.vkDestroyInstance(instance, nullptr);
  }
};

struct tsr_buffer {
  tsr_device* dev = nullptr;
  uint8_t* data = nullptr;  // the buffer's device address (see ops.h)
  uint64_t size = 0;
  VkBuffer buf = VK_NULL_HANDLE;
  VkDeviceMemory mem = VK_NULL_HANDLE;
  uint8_t* mapped = nullptr;        // host view where the memory is host-visible
  VkMemoryPropertyFlags flags = 0;  // of its memory type
};

struct tsr_device : tessera::vulkan::Recorder {
  tsr_plugin_ctx* ctx = nullptr;
  const tessera::vulkan::DeviceInfo* info = nullptr;
  const tessera::vulkan::VkApi* vk = nullptr;
  // TESSERA_VULKAN_PIPELINE_STATS=1 and VK_KHR_pipeline_executable_properties: every pipeline's
  // driver statistics (registers, shared memory, ...) logged when it is created (vk-coop3; the
  // gemm lab prints the matmul_coop.comp ones).
  bool pipeline_stats = false;
  VkDevice device = VK_NULL_HANDLE;
  VkQueue queue = VK_NULL_HANDLE;
  VkCommandPool pool = VK_NULL_HANDLE;
  // Command buffers in a ring: an execute submits what it has recorded after `first_submit`
  // dispatches, then after `submit_every` more (TESSERA_VULKAN_SUBMIT_EVERY; 0 = once at its
  // end), then after periods `submit_ramp` times longer each, so the GPU runs the first nodes
  // while the host records the rest, with few submissions (each costs the GPU ~20-50 us idle on
  // NVIDIA's driver). cmd/fence are slot `slot`'s.
  static constexpr int kCmdSlots = 16;
  VkCommandBuffer cmds[kCmdSlots] = {};
  VkFence fences[kCmdSlots] = {};
  bool slot_pending[kCmdSlots] = {};  // submitted, fence not yet waited for
  int slot = 0;
  VkCommandBuffer cmd = VK_NULL_HANDLE;
  VkFence fence = VK_NULL_HANDLE;
  int submit_every = 16;
  int cmd_dispatches = 0;         // dispatches recorded into cmd
  int execute_submits = 0;        // partial submissions of the current execute
  bool barrier_at_begin = false;  // a barrier was asked for while work was in flight unrecorded
  VkPipelineLayout layout = VK_NULL_HANDLE;
  VkPipeline pipelines[static_cast<int>(tessera::vulkan::Shader::kCount)] = {};
  bool recording = false;  // cmd is begun
  bool pending = false;    // a submission's fence has not been waited for
  // o/down GEMV + residual ADD as one dispatch (ExecuteDecodeResidual), unless
  // TESSERA_VULKAN_FUSE=0 or TESSERA_VULKAN_FUSE_RESIDUAL=0.
  bool fuse_residual = true;
  // Two ROPEs / two in-place KV_WRITEs as one dispatch (ExecuteDecodePair), unless
  // TESSERA_VULKAN_FUSE=0 or TESSERA_VULKAN_FUSE_PAIRS=0.
  bool fuse_pairs = true;
  // RMS_NORM folded into the decode GEMV(s) after it (ExecuteNormGemv), unless
  // TESSERA_VULKAN_FUSE=0 or TESSERA_VULKAN_FUSE_NORM=0.
  bool fuse_norm = true;
  // ROPE + the KV_WRITE(s) after it as one dispatch (ExecuteRopeKv), unless
  // TESSERA_VULKAN_FUSE=0 or TESSERA_VULKAN_FUSE_ROPE_KV=0.
  bool fuse_rope_kv = true;
  // That dispatch folded into the decode attention after it (ExecuteRopeKvAttention: the KVNEW
  // modules; vk27-kv), unless TESSERA_VULKAN_FUSE=0 or TESSERA_VULKAN_FUSE_KV_ATTN=0.
  bool fuse_kv_attn = true;
  // The SWIGLU after a norm-fused gate/up group, and the q ROPE after a norm-fused q/k/v group,
  // in the group's epilogue (ExecuteNormGemv, FuseEpilogue), unless TESSERA_VULKAN_FUSE=0 or
  // TESSERA_VULKAN_FUSE_SWIGLU=0 / TESSERA_VULKAN_FUSE_ROPE_Q=0 (H100 tg128: 8B +3%, 1B +9%,
  // 0.5B +16% over the unfused dispatches; README, vk-fuse).
  bool fuse_swiglu = true;
  bool fuse_rope_q = true;
  // L2 warm-up (MaybeWarmL2, l2_warm.comp; TESSERA_VULKAN_L2_WARM): a mask of the dispatches
  // after which the weights of the next decode GEMV(s) are read once, with no barrier between,
  // so that the GEMV after the next barrier finds them in L2: 1 = after decode attention (DRAM
  // idles there), 2 = after the other dispatches without a MATMUL (RoPE + KV writes, ...), 4 =
  // after the grouped / norm-fused GEMVs, 8 = after the lone ones (o, down: the next GEMV's
  // weights while a GEMV runs below copy bandwidth). No node's data changes. A warm covers
  // at most l2_warm_bytes (l2_warm_small_bytes after mask-2 dispatches, whose successor waits
  // for the warm at its barrier) of targets of at least l2_warm_min_bytes, l2_warm_groups
  // workgroups of 256, a word every l2_warm_stride bytes. l2_warm_target / l2_warm_done: the
  // last warm's first range and the bytes of it covered so far (a later trigger continues it
  // instead of reading it again). Defaults: the H100's best (README, vk-l2): 20 MB of the 8B
  // o projection's 33.5 MB (all of it outlasts the attention beside it), nothing for smaller
  // targets (1B / 0.5B: their GEMVs gain ~1-2 us from L2, less than the extra dispatch costs).
  int l2_warm = 0;
  uint64_t l2_warm_bytes = uint64_t{20} << 20, l2_warm_small_bytes = uint64_t{8} << 20;
  uint64_t l2_warm_min_bytes = uint64_t{16} << 20;
  uint32_t l2_warm_groups = 64, l2_warm_stride = 32;
  uint64_t l2_warm_target = 0, l2_warm_done = 0;
  // l2_warm.comp's scratch words (nobody reads them).
  std::unique_ptr<tsr_buffer> l2_sink;
  std::unique_ptr<tsr_buffer> ring;  // parameter blocks; bytes [0, 64) = the error word
  // The ring in host-visible VRAM on discrete GPUs (TESSERA_VULKAN_RING_VRAM=0: system memory,
  // as before vk19); same bits (only where the parameter blocks live).
  bool ring_vram = true;
  uint64_t ring_used = 0;
  std::unique_ptr<tsr_buffer> staging;  // discrete GPUs: upload/download bounce buffer
  // Eager download (discrete GPUs, unless TESSERA_VULKAN_EAGER_DOWNLOAD=0): once two downloads
  // in a row read the same range (a decode step's logits), every execute ends with a copy of that
  // range into `eager` (host-visible) in its last command buffer, so the download after it is the
  // fence wait and a memcpy, not a second submission and wait. The copy is valid until anything
  // else is recorded (Begin); a copy no download took stops the next ones until the range repeats.
  bool eager_on = true;
  bool unified = false;  // device buffers are mapped host memory (DeviceInfo::unified)
  std::unique_ptr<tsr_buffer> eager;
  const tsr_buffer* eager_src = nullptr;  // the predicted range: the last download's
  uint64_t eager_offset = 0, eager_size = 0;
  bool eager_confirmed = false;  // the last download read the range predicted before it
  bool eager_ready = false;      // `eager` holds the range once the fences have signalled
  bool eager_used = false;       // a download took it
  // Eager copies straight into host_alloc memory (ABI 1.2; unless
  // TESSERA_VULKAN_EAGER_DIRECT=0): the contract at RecordEagerCopy. eager_dst: the predicted
  // range's destination (the last download's); eager_sig: the execute before that download;
  // eager_direct: the last two downloads of the range went to eager_dst, each after an execute
  // with signature eager_sig; eager_into: the ready copy went there (nullptr: into `eager`).
  struct ExecSig {
    const void* tensors = nullptr;
    const void* nodes = nullptr;
    const int32_t* ids = nullptr;
    int32_t n = -1;
    bool operator==(const ExecSig&) const = default;
  };
  bool eager_direct_on = true;
  uint8_t* eager_dst = nullptr;
  ExecSig eager_sig, exec_sig;  // exec_sig: the last execute's (graph view arrays, node list)
  bool eager_direct = false;
  uint8_t* eager_into = nullptr;
  // host_alloc's memory (ABI 1.2): host-visible (host-cached where the device has it) buffers,
  // one VkBuffer each, by mapped address. A download into one is one vkCmdCopyBuffer straight
  // into it (no staging buffer, no memcpy). host_mu guards the map (as CUDA's host_allocs).
  std::map<uintptr_t, std::unique_ptr<tsr_buffer>> host_allocs;
  std::mutex host_mu;
  // Partial submissions (above): TESSERA_VULKAN_FIRST_SUBMIT, TESSERA_VULKAN_SUBMIT_RAMP (1 =
  // every submit_every). The defaults 2, 16, x4 (submissions after 2, 18, 82, 338 dispatches) are
  // vk-idle's; the earlier 8, then every 32 is FIRST_SUBMIT=8 SUBMIT_EVERY=32 SUBMIT_RAMP=1.
  int first_submit = 2;
  int submit_ramp = 4;
  int64_t spin_ns = 0;  // fence waits poll this long before blocking (WaitFences)
  uint64_t live_bytes = 0, peak_bytes = 0, imported_bytes = 0;
  int64_t live_buffers = 0;
  // Barriers go only where needed: between two nodes when one writes memory the other reads or
  // writes (ranges touched since the last barrier), and between the dispatches of one node.
  std::vector<tessera::vulkan::Range> reads_since, writes_since;
  int node_dispatches = 0;  // dispatches the current node has recorded
  std::unique_ptr<tessera::vulkan::Profile> prof;
  std::unique_ptr<tsr_buffer> coop_scratch;  // the cooperative-matrix GEMM's x planes
  // Command-buffer replay (README vk25-replay; TESSERA_VULKAN_REPLAY=0: off; off while
  // TESSERA_VULKAN_PROFILE=1 times every dispatch). The key pass runs an execute's host logic in
  // key-only mode (`keying`: Dispatch and Barrier append to `key` and record nothing), so the
  // key is the exact list of what a direct execute records: per dispatch its shader, group
  // counts and parameter block bytes (device addresses included; the error word's address is
  // the ring's base, the same every step), and the barriers. An entry holds a secondary command
  // buffer recorded from its key, reading its parameter blocks from its own host-visible buffer
  // (not the ring); a replay executes it inside the live command buffer (after the step's
  // inline uploads, before the eager download's copy): one submission, nothing recorded a
  // dispatch. An execute that is byte for byte the view an entry was keyed from (same tracking
  // state, same replay_gen) replays it at once (the view fast path); any other runs directly
  // and is keyed after its last submission, from the state it started in; a key gets an entry
  // the second time it is seen (CUDA's MissedBefore rule), so one-off executes (prefill) only
  // cost a key pass while the GPU runs them.
  struct ReplayEntry {
    std::vector<uint64_t> key;
    VkCommandBuffer cmd = VK_NULL_HANDLE;  // secondary
    std::unique_ptr<tsr_buffer> params;
    uint64_t last_used = 0;
    int slot = -1;        // the command buffer slot whose submission last executed it
    uint64_t serial = 0;  // that submission's slot_serial (pending while its fence is unwaited)
    double dispatches = 0, barriers = 0;
    // The view fast path (TryReplay): the last execute this entry served, byte for byte (its
    // node and tensor arrays, node list), the tracking state before it and after it, and
    // replay_gen then. The same view, state and generation give the same key (the key pass
    // reads nothing else), so the key pass is skipped.
    std::vector<uint8_t> nodes, tensors;
    std::vector<int32_t> ids;
    std::vector<tessera::vulkan::Range> reads0, writes0, reads1, writes1;
    uint64_t l2_target0 = 0, l2_done0 = 0, l2_target1 = 0, l2_done1 = 0, gen = 0;
    bool fast = false;
  };
  bool replay_on = true;
  // The view fast path; false (TESSERA_VULKAN_REPLAY=2, a test knob): the key pass comes first
  // and a found key replays.
  bool replay_fast_on = true;
  bool keying = false;      // the key pass runs: record nothing, append to `key`
  bool key_broken = false;  // the key pass met something it cannot key (scratch growth)
  std::vector<uint64_t> key;
  std::vector<ReplayEntry> replays;
  static constexpr size_t kMaxReplays = 8;
  static constexpr size_t kReplayMissHistory = 64;
  uint64_t replay_misses[kReplayMissHistory] = {};
  size_t replay_next_miss = 0;
  uint64_t replay_clock = 0;
  uint64_t slot_serial[kCmdSlots] = {};  // per command buffer slot: its submissions so far
  int64_t replay_hits = 0, replay_recorded = 0, replay_direct = 0, replay_pending = 0;
  int64_t replay_fast = 0, replay_skipped = 0;
  int replay_last = -1;  // the entry of the last replay (its view fast path), -1: none
  // Changes whenever what the key pass reads besides the view and the tracking state may have
  // changed: a buffer freed (another may take its handle with another address), scratch grown.
  uint64_t replay_gen = 0;
  // Key passes that ended direct in a row (keys that do not come back: prefill, changing
  // batches); from 4 on, the next 2^(n - 4) (at most 64) executes skip the key pass.
  int replay_fails = 0, replay_backoff = 0;

  ~tsr_device() override;
  std::unique_ptr<tsr_buffer> split_scratch;  // the split decode GEMV's counters + partials
  tessera::StatusOr<uint64_t> SplitScratch(uint64_t bytes) override;
  void SplitScratchUsed() override;
  tessera::StatusOr<uint64_t> CoopScratch(uint64_t bytes) override;
  void CoopScratchUsed() override;
  tessera::Status Dispatch(tessera::vulkan::Shader shader, const void* params, size_t size,
                           uint32_t gx, uint32_t gy, uint32_t gz) override;
};

static_assert(tsr_device::kCmdSlots <= tessera::vulkan::Profile::kSlots, "Profile's slot arrays");

struct tsr_event {
  tsr_device* dev = nullptr;
};

namespace tessera::vulkan {
namespace {

constexpr char kBackend[] = "vulkan backend";
constexpr uint64_t kAlignment = 256;
constexpr uint64_t kRingBytes = 4ull << 20;
constexpr uint64_t kRingFirst = 64;  // the error word lives before the first parameter block
constexpr uint64_t kStagingBytes = 64ull << 20;
constexpr uint64_t kInlineUploadBytes = 65536;  // vkCmdUpdateBuffer's limit

using backend::CopyOut;
using backend::Fail;
using backend::Log;

tsr_status FromStatus(const Status& s, tsr_error* err) {
  return backend::FromStatus(kBackend, s, err);
}

Status VkStatus(VkResult r, const char* what) {
  if (r == VK_SUCCESS) return OkStatus();
  const std::string msg =
      std::string(what) + ": " + VkResultName(r) + " (" + std::to_string(static_cast<int>(r)) + ")";
  if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
    return ResourceExhausted(msg);
  return DeviceError(msg);
}

template <auto F>
using Guarded = backend::Guarded<kBackend, F>;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// ---------------------------------------------------------------------------------------------
// Context: loader, instance, device discovery
// ---------------------------------------------------------------------------------------------

std::string VersionString(uint32_t v) {
  return std::to_string(VK_API_VERSION_MAJOR(v)) + "." + std::to_string(VK_API_VERSION_MINOR(v)) +
         "." + std::to_string(VK_API_VERSION_PATCH(v));
}

// The NVIDIA container toolkit mounts the driver's ICD manifest outside the loader's default
// search path; add it (only when the user has not pointed the loader anywhere).
void AddKnownDriverManifests() {
  if (std::getenv("VK_DRIVER_FILES") || std::getenv("VK_ICD_FILENAMES") ||
      std::getenv("VK_ADD_DRIVER_FILES"))
    return;
  static const char* const kManifests[] = {
      "/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json",
  };
  std::string add;
  for (const char* m : kManifests) {
    if (FILE* f = std::fopen(m, "r")) {
      std::fclose(f);
      add += (add.empty() ? "" : ":") + std::string(m);
    }
  }
  if (!add.empty()) setenv("VK_ADD_DRIVER_FILES", add.c_str(), 0);
}

bool HasExtension(const VkApi& vk, VkPhysicalDevice pd, const char* name) {
  uint32_t n = 0;
  vk.vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, nullptr);
  std::vector<VkExtensionProperties> ext(n);
  if (n > 0) vk.vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, ext.data());
  for (const VkExtensionProperties& e : ext) {
    if (std::strcmp(e.extensionName, name) == 0) return true;
  }
  return false;
}

// Whether compute pipelines can require `size` subgroups (VK_EXT_subgroup_size_control); then
// `max_workgroup` is the largest workgroup such a pipeline may have.
bool SupportsSizeControl(const VkApi& vk, VkPhysicalDevice pd, uint32_t size,
                         uint32_t* max_workgroup) {
  if (!HasExtension(vk, pd, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME)) return false;
  VkPhysicalDeviceSubgroupSizeControlFeaturesEXT f{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT};
  VkPhysicalDeviceFeatures2 f2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, &f};
  vk.vkGetPhysicalDeviceFeatures2(pd, &f2);
  VkPhysicalDeviceSubgroupSizeControlPropertiesEXT p{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT};
  VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &p};
  vk.vkGetPhysicalDeviceProperties2(pd, &p2);
  *max_workgroup = size * p.maxComputeWorkgroupSubgroups;
  return f.subgroupSizeControl && (p.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
         p.minSubgroupSize <= size && size <= p.maxSubgroupSize &&
         size * p.maxComputeWorkgroupSubgroups >= 128;
}

// VK_KHR_cooperative_matrix / VK_KHR_shader_bfloat16 as the Vulkan registry defines them:
// Debian 12's headers (1.3.239) predate both, so the structures and values are spelled out here
// (prefixed, so newer headers cannot clash).
constexpr auto kTsrStypeCoopFeatures = static_cast<VkStructureType>(1000506000);
constexpr auto kTsrStypeCoopProperties = static_cast<VkStructureType>(1000506001);
constexpr auto kTsrStypeBf16Features = static_cast<VkStructureType>(1000141000);
constexpr int32_t kTsrComponentF32 = 1;            // VK_COMPONENT_TYPE_FLOAT32_KHR
constexpr int32_t kTsrComponentBf16 = 1000141000;  // VK_COMPONENT_TYPE_BFLOAT16_KHR
constexpr int32_t kTsrScopeSubgroup = 3;           // VK_SCOPE_SUBGROUP_KHR
struct TsrCoopMatrixFeatures {                     // VkPhysicalDeviceCooperativeMatrixFeaturesKHR
  VkStructureType sType = kTsrStypeCoopFeatures;
  void* pNext = nullptr;
  VkBool32 cooperativeMatrix = VK_FALSE;
  VkBool32 cooperativeMatrixRobustBufferAccess = VK_FALSE;
};
struct TsrBf16Features {  // VkPhysicalDeviceShaderBfloat16FeaturesKHR
  VkStructureType sType = kTsrStypeBf16Features;
  void* pNext = nullptr;
  VkBool32 shaderBFloat16Type = VK_FALSE;
  VkBool32 shaderBFloat16DotProduct = VK_FALSE;
  VkBool32 shaderBFloat16CooperativeMatrix = VK_FALSE;
};
struct TsrCoopMatrixProperties {  // VkCooperativeMatrixPropertiesKHR
  VkStructureType sType = kTsrStypeCoopProperties;
  void* pNext = nullptr;
  uint32_t m = 0, n = 0, k = 0;
  int32_t a = 0, b = 0, c = 0, result = 0;
  VkBool32 saturating = VK_FALSE;
  int32_t scope = 0;
};
using TsrGetCoopProperties = VkResult(VKAPI_PTR*)(VkPhysicalDevice, uint32_t*,
                                                  TsrCoopMatrixProperties*);
constexpr const char* kCoopExtensions[] = {"VK_KHR_cooperative_matrix", "VK_KHR_shader_bfloat16"};

// Whether the device offers what matmul_coop.comp needs; otherwise why not (the description
// says so, and the fp32 GEMM runs).
std::string CheckCoopMatrix(const VkApi& vk, VkInstance instance, VkPhysicalDevice pd,
                            uint32_t subgroup) {
  for (const char* ext : kCoopExtensions) {
    if (!HasExtension(vk, pd, ext)) return std::string("no ") + ext;
  }
  TsrBf16Features bf16;
  TsrCoopMatrixFeatures coop;
  coop.pNext = &bf16;
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                       &coop};
  VkPhysicalDeviceFeatures2 f2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, &f12};
  vk.vkGetPhysicalDeviceFeatures2(pd, &f2);
  if (!coop.cooperativeMatrix || !bf16.shaderBFloat16Type || !bf16.shaderBFloat16CooperativeMatrix)
    return "cooperative-matrix / bf16 features off";
  if (!f12.vulkanMemoryModel) return "no vulkanMemoryModel";
  if (subgroup != 32) return "subgroup " + std::to_string(subgroup) + " (32 needed)";
  auto get = reinterpret_cast<TsrGetCoopProperties>(
      vk.vkGetInstanceProcAddr(instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR"));
  uint32_t n = 0;
  if (get == nullptr || get(pd, &n, nullptr) != VK_SUCCESS || n == 0) return "no matrix shapes";
  std::vector<TsrCoopMatrixProperties> props(n);
  if (get(pd, &n, props.data()) != VK_SUCCESS) return "no matrix shapes";
  for (uint32_t i = 0; i < n; ++i) {
    const TsrCoopMatrixProperties& p = props[i];
    if (p.m == 16 && p.n == 16 && p.k == 16 && p.a == kTsrComponentBf16 &&
        p.b == kTsrComponentBf16 && p.c == kTsrComponentF32 && p.result == kTsrComponentF32 &&
        p.scope == kTsrScopeSubgroup)
      return "";
  }
  return "no bf16 x bf16 -> f32 16x16x16 subgroup shape";
}

// Why `pd` cannot run this backend's shaders, or "" (fills `d` when it can).
std::string CheckDevice(const VkApi& vk, VkInstance instance, VkPhysicalDevice pd, DeviceInfo* d) {
  VkPhysicalDeviceIDProperties id{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES};
  VkPhysicalDeviceSubgroupProperties sg{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES, &id};
  VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &sg};
  vk.vkGetPhysicalDeviceProperties2(pd, &p2);
  const VkPhysicalDeviceProperties& p = p2.properties;
  d->name = p.deviceName;
  std::memcpy(d->uuid, id.deviceUUID, sizeof(d->uuid));
  if (p.apiVersion < VK_API_VERSION_1_2)
    return "Vulkan " + VersionString(p.apiVersion) + " (1.2 needed)";
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, &f12};
  VkPhysicalDeviceFeatures2 f2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, &f11};
  vk.vkGetPhysicalDeviceFeatures2(pd, &f2);
  std::string missing;
  auto need = [&](VkBool32 have, const char* what) {
    if (!have) missing += std::string(missing.empty() ? "" : ", ") + what;
  };
  need(f12.bufferDeviceAddress, "bufferDeviceAddress");
  need(f2.features.shaderInt64, "shaderInt64");
  need(f2.features.shaderInt16, "shaderInt16");
  need(f12.shaderInt8, "shaderInt8");
  need(f11.storageBuffer16BitAccess, "storageBuffer16BitAccess");
  need(f12.storageBuffer8BitAccess, "storageBuffer8BitAccess");
  need((sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) != 0, "compute subgroups");
  need((sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) != 0, "subgroup arithmetic");
  need(sg.subgroupSize >= 4 && sg.subgroupSize <= 128, "subgroup size 4..128");
  if (!missing.empty()) return "lacks " + missing;
  uint32_t nq = 0;
  vk.vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, nullptr);
  std::vector<VkQueueFamilyProperties> qf(nq);
  vk.vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, qf.data());
  bool found = false;
  for (uint32_t i = 0; i < nq && !found; ++i) {
    if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) d->queue_family = i, found = true;
  }
  if (!found) return "no compute queue";
  VkPhysicalDeviceDriverProperties drv{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
  VkPhysicalDeviceProperties2 pd2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &drv};
  vk.vkGetPhysicalDeviceProperties2(pd, &pd2);  // a 1.2 struct: asked only of 1.2 devices
  d->pd = pd;
  // The SM count where the driver reports it (NVIDIA; 0 = unknown elsewhere).
  if (HasExtension(vk, pd, VK_NV_SHADER_SM_BUILTINS_EXTENSION_NAME)) {
    VkPhysicalDeviceShaderSMBuiltinsPropertiesNV sm{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_SM_BUILTINS_PROPERTIES_NV};
    VkPhysicalDeviceProperties2 ps{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &sm};
    vk.vkGetPhysicalDeviceProperties2(pd, &ps);
    d->compute_units = static_cast<int32_t>(sm.shaderSMCount);
  }
  d->timestamps = qf[d->queue_family].timestampValidBits > 0 && p.limits.timestampPeriod > 0;
  d->timestamp_period = p.limits.timestampPeriod;
  d->vendor = p.vendorID;
  d->subgroup = sg.subgroupSize;
  uint32_t max_required = 0;
  d->size_control = SupportsSizeControl(vk, pd, sg.subgroupSize, &max_required);
  // Decode attention's subgroups (attention.comp: subgroup g takes every NSG-th key, the states
  // merge in subgroup order): 32 where the device allows (on the H100 32 beat 16 by 1-2% tg128,
  // 8 lost 7%: results/s6), TESSERA_VULKAN_ATTN_SUBGROUPS overrides (a lab knob). Also bounded
  // by shared memory: the merge keeps NSG rows of 256 floats (+ 2 floats) a subgroup.
  uint32_t nsg = 32;
  if (const char* e = std::getenv("TESSERA_VULKAN_ATTN_SUBGROUPS");
      e != nullptr && std::atoi(e) > 0)
    nsg = static_cast<uint32_t>(std::atoi(e));
  nsg = std::max(1u, std::min(nsg, p.limits.maxComputeSharedMemorySize / (258u * 4u)));
  uint32_t wg = std::min({sg.subgroupSize * nsg, p.limits.maxComputeWorkGroupInvocations,
                          p.limits.maxComputeWorkGroupSize[0]});
  if (d->size_control) wg = std::min(wg, max_required);
  d->attn_workgroup = std::max(wg / sg.subgroupSize * sg.subgroupSize, 128u);
  d->norm_fusable = d->size_control && max_required >= 256;  // rows.comp's 256 invocations
  d->shuffle = (sg.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT) != 0;
  d->tiled_attention = p.limits.maxComputeSharedMemorySize >= 32768 && d->shuffle;
  d->multi_fits =
      p.limits.maxComputeSharedMemorySize >= 32768 && sg.subgroupSize >= 8 && sg.subgroupSize <= 32;
  vk.vkGetPhysicalDeviceMemoryProperties(pd, &d->mem);
  for (uint32_t h = 0; h < d->mem.memoryHeapCount; ++h) {
    if (d->mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
      d->memory_total += d->mem.memoryHeaps[h].size;
  }
  const char* type = "other";
  switch (p.deviceType) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
      d->kind = TSR_DEVICE_GPU_DISCRETE, type = "discrete GPU";
      break;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
      d->kind = TSR_DEVICE_GPU_INTEGRATED, d->unified = true, type = "integrated GPU";
      break;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
      // Not TSR_DEVICE_CPU: the scheduler's CPU fallback must stay the real CPU plugin.
      d->kind = TSR_DEVICE_OTHER, d->unified = true, d->software = true;
      type = "CPU (software Vulkan)";
      break;
    default: d->kind = TSR_DEVICE_OTHER, type = "virtual GPU"; break;
  }
  const std::string coop_why = CheckCoopMatrix(vk, instance, pd, sg.subgroupSize);
  d->coop_bf16 = coop_why.empty();
  d->coop_note = d->coop_bf16 ? "tiled fp32 GEMM; cooperative-matrix GEMM for bf16 weights with "
                                "TESSERA_VULKAN_COOPMAT=1 (KHR bf16 x 3 pieces, f32 accumulate)"
                              : "tiled fp32 GEMM (no cooperative-matrix path: " + coop_why + ")";
  d->description =
      std::string(type) + ", Vulkan " + VersionString(p.apiVersion) + ", " + drv.driverName + " " +
      drv.driverInfo + ", subgroup " + std::to_string(sg.subgroupSize) +
      (d->size_control ? " (required)" : "") + (d->unified ? ", unified memory" : "") +
      ", matmul: subgroup GEMV + " + d->coop_note +
      (d->tiled_attention ? ", attention: tiled prefill" : ", attention: per query row");
  return "";
}

// Whether the user's `device` selector (comma list of indices or name substrings) keeps it.
bool Selected(const std::string& selector, int index, const std::string& name) {
  if (selector.empty()) return true;
  size_t start = 0;
  while (start <= selector.size()) {
    const size_t end = std::min(selector.find(',', start), selector.size());
    const std::string item = selector.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    if (std::all_of(item.begin(), item.end(),
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      if (std::stoi(item) == index) return true;
    } else if (Lower(name).find(Lower(item)) != std::string::npos) {
      return true;
    }
  }
  return false;
}

int KindRank(tsr_device_kind k, bool unified) {
  if (k == TSR_DEVICE_GPU_DISCRETE) return 0;
  if (k == TSR_DEVICE_GPU_INTEGRATED) return 1;
  return unified ? 3 : 2;
}

// TESSERA_VULKAN_PROBE=1: logs whether the device offers cooperative matrices (and with which
// types) and bf16 shaders, for the cooperative-matrix GEMM that this build's headers and glslc
// cannot express yet. The KHR structure and enum values are spelled out here because Debian
// 12's Vulkan headers (1.3.239) predate VK_KHR_cooperative_matrix.
void ProbeCooperativeMatrix(const tsr_plugin_ctx& ctx, VkPhysicalDevice pd,
                            const std::string& name) {
  struct CoopProps {  // VkCooperativeMatrixPropertiesKHR
    VkStructureType sType;
    void* pNext;
    uint32_t m, n, k;
    int32_t a, b, c, result;
    VkBool32 saturating;
    int32_t scope;
  };
  using GetProps = VkResult(VKAPI_PTR*)(VkPhysicalDevice, uint32_t*, CoopProps*);
  std::string msg = "vulkan backend probe: " + name + ":";
  for (const char* ext :
       {"VK_KHR_cooperative_matrix", "VK_NV_cooperative_matrix", "VK_NV_cooperative_matrix2",
        "VK_KHR_shader_bfloat16", "VK_KHR_shader_float16_int8", "VK_EXT_shader_subgroup_ballot"})
    msg += std::string(" ") + ext + "=" + (HasExtension(ctx.vk, pd, ext) ? "yes" : "no");
  auto get = reinterpret_cast<GetProps>(ctx.vk.vkGetInstanceProcAddr(
      ctx.instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR"));
  uint32_t n = 0;
  if (get != nullptr && HasExtension(ctx.vk, pd, "VK_KHR_cooperative_matrix") &&
      get(pd, &n, nullptr) == VK_SUCCESS && n > 0) {
    // Component types: 0 f16, 1 f32, 2 f64, 3..6 s8..s64, 7..10 u8..u64, 1000141000 bf16.
    std::vector<CoopProps> props(n);
    for (CoopProps& p : props) p = CoopProps{static_cast<VkStructureType>(1000506001), nullptr};
    if (get(pd, &n, props.data()) == VK_SUCCESS) {
      msg += "; KHR cooperative matrix shapes (M x N x K A/B/C/R types, scope):";
      for (uint32_t i = 0; i < n; ++i) {
        const CoopProps& p = props[i];
        msg += " " + std::to_string(p.m) + "x" + std::to_string(p.n) + "x" + std::to_string(p.k) +
               " " + std::to_string(p.a) + "/" + std::to_string(p.b) + "/" + std::to_string(p.c) +
               "/" + std::to_string(p.result) + " s" + std::to_string(p.scope) + ";";
      }
    }
  }
  Log(TSR_LOG_INFO, msg);
}

void DiscoverDevices(tsr_plugin_ctx* ctx, const std::string& selector) {
  AddKnownDriverManifests();
  if (std::string e = LoadVulkanLoader(&ctx->vk); !e.empty()) {
    ctx->absence = e;
    return;
  }
  uint32_t inst_version = VK_API_VERSION_1_0;
  if (ctx->vk.vkEnumerateInstanceVersion) ctx->vk.vkEnumerateInstanceVersion(&inst_version);
  if (inst_version < VK_API_VERSION_1_2) {
    ctx->absence = "the Vulkan loader is version " + VersionString(inst_version) + " (1.2 needed)";
    return;
  }
  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "tessera";
  app.pEngineName = "tessera";
  app.apiVersion = VK_API_VERSION_1_2;
  VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  ci.pApplicationInfo = &app;
  VkResult r = ctx->vk.vkCreateInstance(&ci, nullptr, &ctx->instance);
  if (r != VK_SUCCESS) {
    ctx->instance = VK_NULL_HANDLE;
    ctx->absence = std::string("vkCreateInstance: ") + VkResultName(r) +
                   (r == VK_ERROR_INCOMPATIBLE_DRIVER
                        ? " (no Vulkan driver (ICD) could be loaded: none is installed, or its "
                          "libraries are missing, e.g. NVIDIA's libGLX_nvidia.so.0 needs glvnd "
                          "(libglvnd0, libglx0, libegl1); VK_LOADER_DEBUG=driver says which)"
                        : "");
    return;
  }
  if (std::string e = LoadInstanceFunctions(&ctx->vk, ctx->instance); !e.empty()) {
    ctx->absence = e;
    return;
  }
  uint32_t n = 0;
  ctx->vk.vkEnumeratePhysicalDevices(ctx->instance, &n, nullptr);
  std::vector<VkPhysicalDevice> pds(n);
  if (n > 0) ctx->vk.vkEnumeratePhysicalDevices(ctx->instance, &n, pds.data());
  if (n == 0) {
    ctx->absence = "no Vulkan device (the loader found no driver (ICD) with a device)";
    return;
  }
  std::string skipped;
  for (uint32_t i = 0; i < n; ++i) {
    DeviceInfo d;
    d.vk_index = static_cast<int>(i);
    const std::string why = CheckDevice(ctx->vk, ctx->instance, pds[i], &d);
    if (const char* probe = std::getenv("TESSERA_VULKAN_PROBE"); probe != nullptr && *probe == '1')
      ProbeCooperativeMatrix(*ctx, pds[i], d.name);
    // Two manifests naming one driver (a container's mount plus the distribution's copy) list
    // each GPU twice: keep the first.
    const bool duplicate =
        why.empty() &&
        std::any_of(ctx->devices.begin(), ctx->devices.end(), [&](const DeviceInfo& o) {
          return std::memcmp(o.uuid, d.uuid, sizeof(d.uuid)) == 0;
        });
    if (!why.empty()) {
      skipped += "; device " + std::to_string(i) + " (" + d.name + "): " + why;
    } else if (duplicate) {
      skipped += "; device " + std::to_string(i) + " (" + d.name +
                 "): the same device as an earlier one (a second manifest of its driver)";
    } else if (selector.empty() && d.software) {
      // Hosts list every non-CPU plugin's devices before the CPU plugin's, so a software Vulkan
      // (lavapipe, SwiftShader) would silently replace the much faster CPU backend. Tests and
      // users who want it name it.
      skipped += "; device " + std::to_string(i) + " (" + d.name +
                 "): a software (CPU) Vulkan implementation, used only when selected "
                 "(option device=" +
                 std::to_string(i) + " or TESSERA_VULKAN_DEVICE)";
    } else if (!Selected(selector, static_cast<int>(i), d.name)) {
      skipped +=
          "; device " + std::to_string(i) + " (" + d.name + "): not selected by device=" + selector;
    } else {
      ctx->devices.push_back(std::move(d));
    }
  }
  // Real GPUs first: index 0 is what `--backend=vulkan` runs on.
  std::stable_sort(ctx->devices.begin(), ctx->devices.end(),
                   [](const DeviceInfo& a, const DeviceInfo& b) {
                     return KindRank(a.kind, a.unified) < KindRank(b.kind, b.unified);
                   });
  if (ctx->devices.empty()) ctx->absence = "no usable Vulkan device" + skipped;
  if (!skipped.empty() && !ctx->devices.empty())
    Log(TSR_LOG_DEBUG, "vulkan backend: skipped" + skipped);
}

tsr_status CreateContext(const tsr_option* options, size_t n_options, tsr_plugin_ctx** out,
                         tsr_error* err) {
  if (tsr_status s = backend::CheckCreateContextArgs(options, n_options, out, err); s != TSR_OK)
    return s;
  std::string selector;
  if (const char* env = std::getenv("TESSERA_VULKAN_DEVICE")) selector = env;
  for (size_t i = 0; i < n_options; ++i) {
    const char* key = options[i].key != nullptr ? options[i].key : "";
    const char* value = options[i].value != nullptr ? options[i].value : "";
    if (std::strcmp(key, "device") == 0) {
      // Which Vulkan devices to expose: a comma list of indices (vkEnumeratePhysicalDevices
      // order) or case-insensitive name substrings, e.g. device=0 or device=nvidia,llvmpipe.
      selector = value;
    } else {
      return Fail(err, TSR_ERR_INVALID_ARGUMENT,
                  std::string("vulkan backend: unknown option \"") + key + "\" (known: device)");
    }
  }
  auto ctx = std::make_unique<tsr_plugin_ctx>();
  DiscoverDevices(ctx.get(), selector);
  backend::LogDiscovery(kBackend, *ctx);
  *out = ctx.release();
  return TSR_OK;
}

constexpr auto DestroyContext = backend::DestroyContext<tsr_plugin_ctx>;
constexpr auto AbsenceReason = backend::AbsenceReason<tsr_plugin_ctx>;
constexpr auto DeviceCount = backend::DeviceCount<tsr_plugin_ctx>;

tsr_status DeviceProps(tsr_plugin_ctx* ctx, int32_t index, tsr_device_props* out, tsr_error* err) {
  if (tsr_status s = backend::CheckDeviceIndex(ctx, index, out, "device_props", "Vulkan", err);
      s != TSR_OK)
    return s;
  const DeviceInfo& d = ctx->devices[static_cast<size_t>(index)];
  tsr_device_props p = backend::KernelDeviceProps(d);
  p.kind = d.kind;
  p.caps = TSR_CAP_F16 | TSR_CAP_BF16 | TSR_CAP_Q8 | TSR_CAP_Q4 | TSR_CAP_ASYNC |
           (d.unified ? TSR_CAP_UNIFIED_MEMORY : 0u);
  p.memory_total = d.memory_total;
  p.compute_units = d.compute_units;
  CopyOut(p, out);
  return TSR_OK;
}

// ---------------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------------

// The first memory type allowed by `bits` that has all of `want` and none of `avoid`.
int FindMemoryType(const VkPhysicalDeviceMemoryProperties& mem, uint32_t bits,
                   VkMemoryPropertyFlags want, VkMemoryPropertyFlags avoid) {
  for (uint32_t i = 0; i < mem.memoryTypeCount; ++i) {
    const VkMemoryPropertyFlags f = mem.memoryTypes[i].propertyFlags;
    if ((bits & (1u << i)) && (f & want) == want && (f & avoid) == 0) return static_cast<int>(i);
  }
  return -1;
}

// kHostToDevice: written by the host, read by shaders (the parameter ring).
enum class MemUse { kDevice, kHost, kHostToDevice };

// Memory types in order of preference for `use` on this device.
int ChooseMemoryType(const DeviceInfo& d, uint32_t bits, MemUse use, bool unified) {
  constexpr VkMemoryPropertyFlags kLocal = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
  constexpr VkMemoryPropertyFlags kHost =
      VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  constexpr VkMemoryPropertyFlags kCached = VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
  int t = -1;
  // Discrete: the host-visible VRAM (the BAR heap), so every dispatch's first loads (its
  // parameter block) are not PCIe round trips to system memory; the host only writes it.
  if (use == MemUse::kHostToDevice && !unified) t = FindMemoryType(d.mem, bits, kLocal | kHost, 0);
  if (t >= 0) return t;
  if (use == MemUse::kHostToDevice) use = MemUse::kHost;
  if (use == MemUse::kHost || unified) {
    // Unified memory: device-local and host-visible are the same RAM; cached for readback.
    if (unified) t = FindMemoryType(d.mem, bits, kLocal | kHost | kCached, 0);
    if (t < 0 && unified) t = FindMemoryType(d.mem, bits, kLocal | kHost, 0);
    if (t < 0) t = FindMemoryType(d.mem, bits, kHost | kCached, 0);
    if (t < 0) t = FindMemoryType(d.mem, bits, kHost, 0);
    return t;
  }
  // Discrete: VRAM, avoiding the small host-visible (BAR) heap where a plain one exists.
  t = FindMemoryType(d.mem, bits, kLocal, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT);
  if (t < 0) t = FindMemoryType(d.mem, bits, kLocal, 0);
  if (t < 0) t = FindMemoryType(d.mem, bits, 0, 0);
  return t;
}

void DestroyBuffer(tsr_device* dev, tsr_buffer* b) {
  if (b->mapped != nullptr) dev->vk->vkUnmapMemory(dev->device, b->mem);
  if (b->buf != VK_NULL_HANDLE) dev->vk->vkDestroyBuffer(dev->device, b->buf, nullptr);
  if (b->mem != VK_NULL_HANDLE) dev->vk->vkFreeMemory(dev->device, b->mem, nullptr);
  b->buf = VK_NULL_HANDLE;
  b->mem = VK_NULL_HANDLE;
  b->mapped = nullptr;
}

StatusOr<std::unique_ptr<tsr_buffer>> CreateBuffer(tsr_device* dev, uint64_t size, MemUse use) {
  const VkApi& vk = *dev->vk;
  auto b = std::make_unique<tsr_buffer>();
  b->dev = dev;
  b->size = size;
  VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bi.size = std::max<uint64_t>(size, 16);  // Vulkan buffers cannot be empty
  bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
             VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT;
  bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  TSR_RETURN_IF_ERROR(
      VkStatus(vk.vkCreateBuffer(dev->device, &bi, nullptr, &b->buf), "vkCreateBuffer"));
  VkMemoryRequirements req{};
  vk.vkGetBufferMemoryRequirements(dev->device, b->buf, &req);
  const int type = ChooseMemoryType(*dev->info, req.memoryTypeBits, use, dev->unified);
  if (type < 0) {
    DestroyBuffer(dev, b.get());
    return Internal("no suitable Vulkan memory type");
  }
  VkMemoryAllocateFlagsInfo flags{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO};
  flags.flags = VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT;
  VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, &flags};
  ai.allocationSize = req.size;
  ai.memoryTypeIndex = static_cast<uint32_t>(type);
  VkResult r = vk.vkAllocateMemory(dev->device, &ai, nullptr, &b->mem);
  if (r != VK_SUCCESS) {
    b->mem = VK_NULL_HANDLE;
    DestroyBuffer(dev, b.get());
    return ResourceExhausted("cannot allocate " + std::to_string(size) + " bytes of " +
                             (use != MemUse::kDevice ? "host-visible" : "device") +
                             " memory: " + VkResultName(r));
  }
  Status s = VkStatus(vk.vkBindBufferMemory(dev->device, b->buf, b->mem, 0), "vkBindBufferMemory");
  const VkMemoryPropertyFlags f = dev->info->mem.memoryTypes[type].propertyFlags;
  b->flags = f;
  // Device buffers are mapped only on unified memory (TESSERA_VULKAN_STAGED=1: not even there).
  if (s.ok() && (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) &&
      (use != MemUse::kDevice || dev->unified)) {
    void* p = nullptr;
    s = VkStatus(vk.vkMapMemory(dev->device, b->mem, 0, VK_WHOLE_SIZE, 0, &p), "vkMapMemory");
    b->mapped = static_cast<uint8_t*>(p);
  }
  if (!s.ok()) {
    DestroyBuffer(dev, b.get());
    return s;
  }
  VkBufferDeviceAddressInfo di{VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO};
  di.buffer = b->buf;
  b->data = reinterpret_cast<uint8_t*>(
      static_cast<uintptr_t>(vk.vkGetBufferDeviceAddress(dev->device, &di)));
  return b;
}

// ---------------------------------------------------------------------------------------------
// Command stream
// ---------------------------------------------------------------------------------------------

// Reads and clears the device error word (after the fence has signalled).
Status TakeDeviceErrors(tsr_device* dev) {
  uint32_t bits = 0;
  std::memcpy(&bits, dev->ring->mapped, sizeof(bits));
  if (bits == 0) return OkStatus();
  std::memset(dev->ring->mapped, 0, sizeof(bits));
  if (bits & 8) {
    return Unsupported(
        "the driver ran attention with a subgroup size other than the one it reports; "
        "outputs were zeroed");
  }
  return backend::DataErrorStatus(static_cast<uint32_t>(bits));
}

Status Begin(tsr_device* dev);

// Adds the finished submission's timestamps to the profile.
void TakeProfile(tsr_device* dev) {
  Profile& pr = *dev->prof;
  if (pr.used < 2) return;
  std::vector<uint64_t> t(pr.used);
  const VkResult r = dev->vk->vkGetQueryPoolResults(
      dev->device, pr.pool, 0, pr.used, t.size() * sizeof(uint64_t), t.data(), sizeof(uint64_t),
      VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
  if (r != VK_SUCCESS) return;
  const double period = dev->info->timestamp_period;
  for (size_t i = 0; i < pr.shader_of.size(); ++i) {
    const int sh = pr.shader_of[i];
    pr.busy_ns[sh] += static_cast<double>(t[2 * i + 1] - t[2 * i]) * period;
    pr.calls[sh] += 1;
  }
  pr.span_ns += static_cast<double>(t[pr.used - 1] - t[0]) * period;
  pr.submissions += 1;
  pr.used = 0;
  pr.shader_of.clear();
}

// Step mode: reads the begin/end timestamps of command buffer slot `i` (its fence has signalled).
void TakeStepSpan(tsr_device* dev, int i) {
  Profile& pr = *dev->prof;
  if (pr.per_dispatch || !pr.slot_live[i]) return;
  pr.slot_live[i] = false;
  uint64_t t[2] = {};
  const VkResult r = dev->vk->vkGetQueryPoolResults(
      dev->device, pr.pool, static_cast<uint32_t>(2 * i), 2, sizeof(t), t, sizeof(uint64_t),
      VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
  if (r == VK_SUCCESS && pr.executes > 0)
    pr.spans.push_back({pr.slot_seq[i], t[0], t[1], pr.slot_kind[i]});
}

using TimePoint = std::chrono::steady_clock::time_point;

double NsSince(TimePoint t0) {
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
}

// Waits for `n` fences: polling them for up to spin_ns (TESSERA_VULKAN_SPIN_US), which keeps a
// host core busy but sees a decode step's fence signal at once (a blocking wait's wake-up cost
// ~55-85 us on the H100 with NVIDIA's driver; vk-idle), then blocking in the driver for
// whatever is left (long prefills).
VkResult WaitFences(tsr_device* dev, uint32_t n, const VkFence* fences) {
  uint32_t done = 0;
  if (dev->spin_ns > 0 && n > 0) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(dev->spin_ns);
    while (done < n) {
      const VkResult r = dev->vk->vkGetFenceStatus(dev->device, fences[done]);
      if (r == VK_SUCCESS) {
        ++done;
      } else if (r != VK_NOT_READY) {
        return r;
      } else if (std::chrono::steady_clock::now() >= until) {
        break;
      }
    }
  }
  if (done == n) return VK_SUCCESS;
  return dev->vk->vkWaitForFences(dev->device, n - done, fences + done, VK_TRUE, UINT64_MAX);
}

// Waits for all submitted work (if any); with `check_data`, reports data errors it flagged.
// Afterwards nothing is in flight: the parameter ring and the barrier bookkeeping start over.
Status Wait(tsr_device* dev, bool check_data) {
  if (dev->pending) {
    VkFence wait[tsr_device::kCmdSlots];
    uint32_t n = 0;
    for (int i = 0; i < tsr_device::kCmdSlots; ++i) {
      if (dev->slot_pending[i]) wait[n++] = dev->fences[i];
    }
    const auto t0 = dev->prof ? std::chrono::steady_clock::now() : TimePoint{};
    VkResult r = WaitFences(dev, n, wait);
    if (r != VK_SUCCESS) return VkStatus(r, "vkWaitForFences");
    if (dev->prof) {
      dev->prof->wait_ns += NsSince(t0);
      for (int i = 0; i < tsr_device::kCmdSlots; ++i) {
        if (dev->slot_pending[i]) TakeStepSpan(dev, i);
      }
    }
    std::fill(std::begin(dev->slot_pending), std::end(dev->slot_pending), false);
    dev->pending = false;
    dev->ring_used = kRingFirst;
    if (!dev->recording) {
      dev->reads_since.clear();
      dev->writes_since.clear();
      dev->barrier_at_begin = false;
    }
    if (dev->prof && dev->prof->per_dispatch) TakeProfile(dev);
  }
  return check_data ? TakeDeviceErrors(dev) : OkStatus();
}

// Ends and submits the recorded commands (if any) with the slot's fence, without waiting. The
// ranges touched since the last barrier stay noted: later command buffers may run while this
// one does, so the next node still gets its barrier when it needs one.
Status Flush(tsr_device* dev) {
  if (!dev->recording) return OkStatus();
  const VkApi& vk = *dev->vk;
  // Make the results visible to host reads of mapped memory after the fence.
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
  vk.vkCmdPipelineBarrier(dev->cmd,
                          VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                          VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, nullptr, 0, nullptr);
  if (dev->prof && !dev->prof->per_dispatch) {
    Profile& pr = *dev->prof;
    vk.vkCmdWriteTimestamp(dev->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, pr.pool,
                           static_cast<uint32_t>(2 * dev->slot + 1));
    pr.slot_seq[dev->slot] = pr.next_seq++;
    pr.slot_kind[dev->slot] = !pr.in_execute ? 0 : (pr.exec_start_pending ? 1 : 2);
    pr.slot_live[dev->slot] = true;
    pr.exec_start_pending = false;
  }
  dev->recording = false;
  TSR_RETURN_IF_ERROR(VkStatus(vk.vkEndCommandBuffer(dev->cmd), "vkEndCommandBuffer"));
  TSR_RETURN_IF_ERROR(VkStatus(vk.vkResetFences(dev->device, 1, &dev->fence), "vkResetFences"));
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &dev->cmd;
  TSR_RETURN_IF_ERROR(VkStatus(vk.vkQueueSubmit(dev->queue, 1, &si, dev->fence), "vkQueueSubmit"));
  ++dev->slot_serial[dev->slot];
  dev->slot_pending[dev->slot] = true;
  dev->pending = true;
  dev->slot = (dev->slot + 1) % tsr_device::kCmdSlots;
  dev->cmd = dev->cmds[dev->slot];
  dev->fence = dev->fences[dev->slot];
  return OkStatus();
}

void RecordBarrierInto(tsr_device* dev, VkCommandBuffer cmd) {
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                     VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  constexpr VkPipelineStageFlags kStages =
      VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
  dev->vk->vkCmdPipelineBarrier(cmd, kStages, kStages, 0, 1, &mb, 0, nullptr, 0, nullptr);
}

void RecordBarrier(tsr_device* dev) {
  if (dev->prof) dev->prof->barriers += 1;
  RecordBarrierInto(dev, dev->cmd);
}

// Starts recording into the next command buffer. With partial submissions on, earlier ones
// may still run (only this slot's own earlier use is waited for); otherwise (and while
// profiling, whose query pool one command buffer owns) everything submitted is waited for.
Status Begin(tsr_device* dev) {
  if (dev->recording) return OkStatus();
  const VkApi& vk = *dev->vk;
  if (dev->eager_ready) {
    // What is recorded from here on may change the eagerly copied range.
    if (!dev->eager_used) dev->eager_confirmed = false;
    dev->eager_ready = false;
  }
  if (dev->submit_every == 0 || (dev->prof && dev->prof->per_dispatch)) {
    TSR_RETURN_IF_ERROR(Wait(dev, /*check_data=*/false));
  } else if (dev->slot_pending[dev->slot]) {
    const auto t0 = dev->prof ? std::chrono::steady_clock::now() : TimePoint{};
    VkResult r = WaitFences(dev, 1, &dev->fence);
    if (r != VK_SUCCESS) return VkStatus(r, "vkWaitForFences");
    dev->slot_pending[dev->slot] = false;
    if (dev->prof) {
      dev->prof->wait_ns += NsSince(t0);
      TakeStepSpan(dev, dev->slot);
    }
  }
  TSR_RETURN_IF_ERROR(VkStatus(vk.vkResetCommandBuffer(dev->cmd, 0), "vkResetCommandBuffer"));
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  TSR_RETURN_IF_ERROR(VkStatus(vk.vkBeginCommandBuffer(dev->cmd, &bi), "vkBeginCommandBuffer"));
  dev->recording = true;
  dev->cmd_dispatches = 0;
  if (dev->barrier_at_begin) {
    // Asked for while nothing was being recorded but work was in flight: a pipeline barrier
    // orders everything earlier in submission order, the other command buffers included.
    RecordBarrier(dev);
    dev->barrier_at_begin = false;
  }
  if (dev->prof && dev->prof->per_dispatch) {
    vk.vkCmdResetQueryPool(dev->cmd, dev->prof->pool, 0, Profile::kQueries);
    dev->prof->used = 0;
    dev->prof->shader_of.clear();
  } else if (dev->prof) {
    const auto q = static_cast<uint32_t>(2 * dev->slot);
    vk.vkCmdResetQueryPool(dev->cmd, dev->prof->pool, q, 2);
    vk.vkCmdWriteTimestamp(dev->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, dev->prof->pool, q);
  }
  return OkStatus();
}

// Orders everything recorded (or submitted) so far before everything recorded next.
void Barrier(tsr_device* dev) {
  dev->reads_since.clear();
  dev->writes_since.clear();
  if (dev->keying) {  // the replay's key pass: a barrier at this place of the command list
    dev->key.push_back(kKeyBarrier);
    return;
  }
  if (!dev->recording) {
    // Nothing in flight: the fence wait ordered the earlier work. Otherwise the next command
    // buffer starts with the barrier.
    dev->barrier_at_begin = dev->pending;
    return;
  }
  RecordBarrier(dev);
}

// TESSERA_VULKAN_PIPELINE_STATS=1: logs the driver's statistics of a new pipeline, one line per
// executable: "vulkan backend: pipeline stats <module> [<executable>]: name=value, ...".
void LogPipelineStats(tsr_device* dev, VkPipeline p, const char* name) {
  const VkDevice d = dev->device;
  auto props = reinterpret_cast<PFN_vkGetPipelineExecutablePropertiesKHR>(
      dev->vk->vkGetDeviceProcAddr(d, "vkGetPipelineExecutablePropertiesKHR"));
  auto stats = reinterpret_cast<PFN_vkGetPipelineExecutableStatisticsKHR>(
      dev->vk->vkGetDeviceProcAddr(d, "vkGetPipelineExecutableStatisticsKHR"));
  if (props == nullptr || stats == nullptr) return;
  VkPipelineInfoKHR pi{VK_STRUCTURE_TYPE_PIPELINE_INFO_KHR, nullptr, p};
  uint32_t n = 0;
  if (props(d, &pi, &n, nullptr) != VK_SUCCESS) return;
  std::vector<VkPipelineExecutablePropertiesKHR> ex(
      n, VkPipelineExecutablePropertiesKHR{VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_PROPERTIES_KHR});
  if (props(d, &pi, &n, ex.data()) != VK_SUCCESS) return;
  for (uint32_t i = 0; i < n; ++i) {
    VkPipelineExecutableInfoKHR ei{VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR, nullptr, p, i};
    uint32_t m = 0;
    if (stats(d, &ei, &m, nullptr) != VK_SUCCESS) continue;
    std::vector<VkPipelineExecutableStatisticKHR> st(
        m, VkPipelineExecutableStatisticKHR{VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR});
    if (stats(d, &ei, &m, st.data()) != VK_SUCCESS) continue;
    std::string msg =
        std::string("vulkan backend: pipeline stats ") + name + " [" + ex[i].name + "]:";
    for (uint32_t j = 0; j < m; ++j) {
      msg += std::string(j == 0 ? " " : ", ") + st[j].name + "=";
      switch (st[j].format) {
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR:
          msg += st[j].value.b32 ? "true" : "false";
          break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR:
          msg += std::to_string(st[j].value.i64);
          break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR:
          msg += std::to_string(st[j].value.u64);
          break;
        default: msg += std::to_string(st[j].value.f64);
      }
    }
    Log(TSR_LOG_INFO, msg);
  }
}

StatusOr<VkPipeline> GetPipeline(tsr_device* dev, Shader shader) {
  VkPipeline& p = dev->pipelines[static_cast<int>(shader)];
  if (p != VK_NULL_HANDLE) return p;
  const VkApi& vk = *dev->vk;
  const SpirvModule& spv = GetSpirv(shader);
  VkShaderModuleCreateInfo mi{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  mi.codeSize = spv.words * sizeof(uint32_t);
  mi.pCode = spv.code;
  VkShaderModule module = VK_NULL_HANDLE;
  TSR_RETURN_IF_ERROR(
      VkStatus(vk.vkCreateShaderModule(dev->device, &mi, nullptr, &module), spv.name));
  // Specialization constants: 0 the subgroup size (attention's lane layout), 1 attention's
  // workgroup size, 2 the skewed decode GEMV's mode (matmul.comp SKEW_MODE), 3 the RMS_NORM
  // prologue's batched loads (NORM_BATCH_ON), 4 the persistent norm-fused groups (PERSIST),
  // 5, 6 attention_split's workgroups a row (PARTS) and their size (WL), 8 the decode_skew_pref
  // modules' PREF_MODE (vk23-pref; 7 is the cooperative-matrix modules' own, not set here).
  const int32_t consts[8] = {static_cast<int32_t>(dev->info->subgroup),
                             static_cast<int32_t>(dev->info->attn_workgroup),
                             std::max(1, dev->decode_skew),
                             dev->norm_batch,
                             dev->decode_persist > 0 ? 1 : 0,
                             dev->attn_parts,
                             static_cast<int32_t>(dev->info->attn_workgroup) / dev->attn_parts,
                             PrefModeOf(*dev, shader)};
  VkSpecializationMapEntry entries[8];
  for (uint32_t i = 0; i < 7; ++i) entries[i] = {i, i * 4u, sizeof(int32_t)};
  entries[7] = {8u, 7u * 4u, sizeof(int32_t)};
  VkSpecializationInfo spec{8, entries, sizeof(consts), consts};
  VkComputePipelineCreateInfo ci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  ci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
  ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  ci.stage.module = module;
  ci.stage.pName = "main";
  ci.stage.pSpecializationInfo = &spec;
  VkPipelineShaderStageRequiredSubgroupSizeCreateInfoEXT required{
      VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO_EXT};
  required.requiredSubgroupSize = dev->info->subgroup;
  // rows.comp and the GEMV with its RMS_NORM prologue must sum a row in the same subgroups.
  const bool norm_pair =
      shader == Shader::kRows || shader == Shader::kDecodeNormF32 ||
      shader == Shader::kDecodeNormF16 || shader == Shader::kDecodeNormBf16 ||
      shader == Shader::kDecodeSplitNormF32 || shader == Shader::kDecodeSplitNormF16 ||
      shader == Shader::kDecodeSplitNormBf16 || shader == Shader::kDecodeSkewNormF32 ||
      shader == Shader::kDecodeSkewNormF16 || shader == Shader::kDecodeSkewNormBf16 ||
      shader == Shader::kDecodeSkewPairF32 || shader == Shader::kDecodeSkewPairF16 ||
      shader == Shader::kDecodeSkewPairBf16;
  if (dev->info->size_control &&
      (shader == Shader::kAttention || shader == Shader::kAttentionTiled ||
       shader == Shader::kAttentionSplit || shader == Shader::kAttentionF32D64 ||
       shader == Shader::kAttentionF32D128 || shader == Shader::kAttentionSplitF32D64 ||
       shader == Shader::kAttentionSplitF32D128 || shader == Shader::kAttentionKvNewF32D64 ||
       shader == Shader::kAttentionKvNewF32D128 || shader == Shader::kAttentionSplitKvNewF32D64 ||
       shader == Shader::kAttentionSplitKvNewF32D128 ||
       (norm_pair && dev->info->norm_fusable && dev->fuse_norm)))
    ci.stage.pNext = &required;
  ci.layout = dev->layout;
  if (dev->pipeline_stats) ci.flags |= VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR;
  VkResult r = vk.vkCreateComputePipelines(dev->device, VK_NULL_HANDLE, 1, &ci, nullptr, &p);
  vk.vkDestroyShaderModule(dev->device, module, nullptr);
  if (r != VK_SUCCESS) {
    p = VK_NULL_HANDLE;
    return VkStatus(r, spv.name);
  }
  if (dev->pipeline_stats) LogPipelineStats(dev, p, spv.name);
  return p;
}

}  // namespace
}  // namespace tessera::vulkan

tessera::Status tsr_device::Dispatch(tessera::vulkan::Shader shader, const void* params,
                                     size_t size, uint32_t gx, uint32_t gy, uint32_t gz) {
  using namespace tessera::vulkan;
  if (gx == 0 || gy == 0 || gz == 0) return tessera::OkStatus();
  TSR_ASSIGN_OR_RETURN(VkPipeline pipeline, GetPipeline(this, shader));
  if (keying) {
    // The replay's key pass: what this dispatch would record, the parameter block as the ring
    // would hold it (the error word's address first), nothing recorded.
    if (node_dispatches++ > 0) Barrier(this);
    key.push_back(kKeyDispatch | static_cast<uint64_t>(shader));
    key.push_back(uint64_t{gx} | (uint64_t{gy} << 32));
    key.push_back(uint64_t{gz} | (static_cast<uint64_t>(size) << 32));
    const size_t at = key.size();
    key.resize(at + KeyParamWords(size), 0);
    auto* bytes = reinterpret_cast<uint8_t*>(key.data() + at);
    std::memcpy(bytes, params, size);
    const uint64_t err_addr = reinterpret_cast<uintptr_t>(ring->data);
    std::memcpy(bytes, &err_addr, sizeof(err_addr));
    return tessera::OkStatus();
  }
  const uint64_t need = ParamBlockBytes(size);
  if (ring_used + need > kRingBytes) {
    // The ring is full: run what is recorded, then reuse it.
    TSR_RETURN_IF_ERROR(Flush(this));
    TSR_RETURN_IF_ERROR(Wait(this, /*check_data=*/false));
  }
  TSR_RETURN_IF_ERROR(Begin(this));
  const uint64_t off = ring_used;
  ring_used += need;
  std::memcpy(ring->mapped + off, params, size);
  const uint64_t err_addr = reinterpret_cast<uintptr_t>(ring->data);
  std::memcpy(ring->mapped + off, &err_addr, sizeof(err_addr));  // every block starts with it
  const uint64_t addr = err_addr + off;
  // A node's dispatches run in order (e.g. KV_WRITE's carry-over copy, then the rows); the
  // barrier before a node's first one is ExecuteNode's call.
  if (node_dispatches++ > 0) Barrier(this);
  const bool timed = prof && prof->per_dispatch && prof->used + 2 <= Profile::kQueries;
  if (timed) {
    vk->vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, prof->pool, prof->used++);
    prof->shader_of.push_back(static_cast<int>(shader));
  }
  vk->vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
  vk->vkCmdPushConstants(cmd, layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(addr), &addr);
  vk->vkCmdDispatch(cmd, gx, gy, gz);
  ++cmd_dispatches;
  if (prof) prof->dispatches += 1;
  if (timed) {
    vk->vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, prof->pool, prof->used++);
  }
  return tessera::OkStatus();
}

// One scratch buffer a device, grown (after everything in flight has finished) when a larger
// one is asked for. Every user writes it first, so it must wait for the dispatches since the
// last barrier that used it: CoopScratchUsed notes the range as written after a user's last
// dispatch (a node's own dispatches are ordered anyway), and the next call sees the overlap
// and records a barrier.
tessera::StatusOr<uint64_t> tsr_device::CoopScratch(uint64_t bytes) {
  using namespace tessera::vulkan;
  if (!coop_scratch || coop_scratch->size < bytes) {
    if (keying) {  // grows only on a direct execute (it waits and records a fill)
      key_broken = true;
      return tessera::Internal("replay key: scratch grows");
    }
    TSR_RETURN_IF_ERROR(Flush(this));
    TSR_RETURN_IF_ERROR(Wait(this, /*check_data=*/false));
    if (coop_scratch) DestroyBuffer(this, coop_scratch.get());
    coop_scratch.reset();
    ++replay_gen;
    TSR_ASSIGN_OR_RETURN(coop_scratch, CreateBuffer(this, bytes, MemUse::kDevice));
  }
  const uint64_t lo = reinterpret_cast<uintptr_t>(coop_scratch->data);
  const Range r{lo, lo + coop_scratch->size};
  auto overlaps = [&](const std::vector<Range>& rs) {
    return std::any_of(rs.begin(), rs.end(),
                       [&](const Range& o) { return o.lo < r.hi && r.lo < o.hi; });
  };
  if (overlaps(writes_since) || overlaps(reads_since)) Barrier(this);
  return lo;
}

// The split decode GEMV's scratch: kXsplitCounterBytes of counters (zeroed once when the
// buffer is made; every split dispatch leaves its counters 0 again), then the partials. Reuse is
// ordered after the earlier users as CoopScratch's.
tessera::StatusOr<uint64_t> tsr_device::SplitScratch(uint64_t bytes) {
  using namespace tessera::vulkan;
  const uint64_t need = kXsplitCounterBytes + bytes;
  if (!split_scratch || split_scratch->size < need) {
    if (keying) {
      key_broken = true;
      return tessera::Internal("replay key: scratch grows");
    }
    TSR_RETURN_IF_ERROR(Flush(this));
    TSR_RETURN_IF_ERROR(Wait(this, /*check_data=*/false));
    if (split_scratch) DestroyBuffer(this, split_scratch.get());
    split_scratch.reset();
    ++replay_gen;
    TSR_ASSIGN_OR_RETURN(split_scratch, CreateBuffer(this, need, MemUse::kDevice));
    TSR_RETURN_IF_ERROR(Begin(this));
    vk->vkCmdFillBuffer(cmd, split_scratch->buf, 0, kXsplitCounterBytes, 0);
    Barrier(this);
  }
  const uint64_t lo = reinterpret_cast<uintptr_t>(split_scratch->data);
  const Range r{lo, lo + split_scratch->size};
  auto overlaps = [&](const std::vector<Range>& rs) {
    return std::any_of(rs.begin(), rs.end(),
                       [&](const Range& o) { return o.lo < r.hi && r.lo < o.hi; });
  };
  if (overlaps(writes_since) || overlaps(reads_since)) Barrier(this);
  return lo;
}

void tsr_device::SplitScratchUsed() {
  const uint64_t lo = reinterpret_cast<uintptr_t>(split_scratch->data);
  writes_since.push_back(tessera::vulkan::Range{lo, lo + split_scratch->size});
}

void tsr_device::CoopScratchUsed() {
  const uint64_t lo = reinterpret_cast<uintptr_t>(coop_scratch->data);
  writes_since.push_back(tessera::vulkan::Range{lo, lo + coop_scratch->size});
}

tsr_device::~tsr_device() {
  using namespace tessera::vulkan;
  if (device == VK_NULL_HANDLE) return;
  vk->vkDeviceWaitIdle(device);
  if (ring) DestroyBuffer(this, ring.get());
  if (staging) DestroyBuffer(this, staging.get());
  if (eager) DestroyBuffer(this, eager.get());
  for (auto& [addr, b] : host_allocs) DestroyBuffer(this, b.get());
  if (coop_scratch) DestroyBuffer(this, coop_scratch.get());
  if (split_scratch) DestroyBuffer(this, split_scratch.get());
  if (l2_sink) DestroyBuffer(this, l2_sink.get());
  for (ReplayEntry& e : replays) {
    if (e.params) DestroyBuffer(this, e.params.get());
  }
  for (VkPipeline p : pipelines)
    if (p != VK_NULL_HANDLE) vk->vkDestroyPipeline(device, p, nullptr);
  if (prof && prof->pool != VK_NULL_HANDLE) vk->vkDestroyQueryPool(device, prof->pool, nullptr);
  if (layout != VK_NULL_HANDLE) vk->vkDestroyPipelineLayout(device, layout, nullptr);
  for (VkFence f : fences)
    if (f != VK_NULL_HANDLE) vk->vkDestroyFence(device, f, nullptr);
  if (pool != VK_NULL_HANDLE) vk->vkDestroyCommandPool(device, pool, nullptr);
  vk->vkDestroyDevice(device, nullptr);
}

namespace tessera::vulkan {
namespace {

// TESSERA_VULKAN_PROFILE=1 (and a queue that writes timestamps): time every dispatch.
Status StartProfile(tsr_device* dev) {
  const char* profile = std::getenv("TESSERA_VULKAN_PROFILE");
  if (profile == nullptr || *profile == '\0' || *profile == '0' || !dev->info->timestamps)
    return OkStatus();
  auto prof = std::make_unique<Profile>();
  prof->per_dispatch = *profile != '2';
  VkQueryPoolCreateInfo pool_info{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
  pool_info.queryType = VK_QUERY_TYPE_TIMESTAMP;
  pool_info.queryCount = Profile::kQueries;
  TSR_RETURN_IF_ERROR(
      VkStatus(dev->vk->vkCreateQueryPool(dev->device, &pool_info, nullptr, &prof->pool),
               "vkCreateQueryPool"));
  dev->prof = std::move(prof);
  return OkStatus();
}

Status CreateLogicalDevice(tsr_device* dev) {
  const VkApi& vk = *dev->vk;
  const float prio = 1.0f;
  VkDeviceQueueCreateInfo qi{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  qi.queueFamilyIndex = dev->info->queue_family;
  qi.queueCount = 1;
  qi.pQueuePriorities = &prio;
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  f12.bufferDeviceAddress = VK_TRUE;
  f12.storageBuffer8BitAccess = VK_TRUE;
  f12.shaderInt8 = VK_TRUE;
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, &f12};
  f11.storageBuffer16BitAccess = VK_TRUE;
  VkPhysicalDeviceFeatures2 f2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, &f11};
  f2.features.shaderInt64 = VK_TRUE;
  f2.features.shaderInt16 = VK_TRUE;
  VkPhysicalDeviceSubgroupSizeControlFeaturesEXT fsc{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT};
  std::vector<const char*> extensions;
  VkDeviceCreateInfo di{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, &f2};
  if (dev->info->size_control) {
    fsc.subgroupSizeControl = VK_TRUE;
    f12.pNext = &fsc;
    extensions.push_back(VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
  }
  VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR fexec{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR};
  if (dev->pipeline_stats) {
    fexec.pipelineExecutableInfo = VK_TRUE;
    fexec.pNext = f12.pNext;
    f12.pNext = &fexec;
    extensions.push_back(VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
  }
  // The cooperative-matrix GEMM's extensions and features, only where it will run (a device
  // that lacks them is created exactly as before).
  TsrCoopMatrixFeatures coop;
  TsrBf16Features bf16;
  if (dev->coop_gemm) {
    coop.cooperativeMatrix = VK_TRUE;
    bf16.shaderBFloat16Type = VK_TRUE;
    bf16.shaderBFloat16CooperativeMatrix = VK_TRUE;
    f12.vulkanMemoryModel = VK_TRUE;  // glslang emits the Vulkan memory model with them
    bf16.pNext = f12.pNext;
    coop.pNext = &bf16;
    f12.pNext = &coop;
    for (const char* e : kCoopExtensions) extensions.push_back(e);
  }
  di.enabledExtensionCount = static_cast<uint32_t>(extensions.size());
  di.ppEnabledExtensionNames = extensions.empty() ? nullptr : extensions.data();
  di.queueCreateInfoCount = 1;
  di.pQueueCreateInfos = &qi;
  TSR_RETURN_IF_ERROR(
      VkStatus(vk.vkCreateDevice(dev->info->pd, &di, nullptr, &dev->device), "vkCreateDevice"));
  vk.vkGetDeviceQueue(dev->device, dev->info->queue_family, 0, &dev->queue);
  VkCommandPoolCreateInfo pi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pi.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pi.queueFamilyIndex = dev->info->queue_family;
  TSR_RETURN_IF_ERROR(VkStatus(vk.vkCreateCommandPool(dev->device, &pi, nullptr, &dev->pool),
                               "vkCreateCommandPool"));
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = dev->pool;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = tsr_device::kCmdSlots;
  TSR_RETURN_IF_ERROR(VkStatus(vk.vkAllocateCommandBuffers(dev->device, &ai, dev->cmds),
                               "vkAllocateCommandBuffers"));
  VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  for (VkFence& f : dev->fences) {
    TSR_RETURN_IF_ERROR(VkStatus(vk.vkCreateFence(dev->device, &fi, nullptr, &f), "vkCreateFence"));
  }
  dev->cmd = dev->cmds[0];
  dev->fence = dev->fences[0];
  VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(uint64_t)};
  VkPipelineLayoutCreateInfo li{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  li.pushConstantRangeCount = 1;
  li.pPushConstantRanges = &range;
  TSR_RETURN_IF_ERROR(VkStatus(vk.vkCreatePipelineLayout(dev->device, &li, nullptr, &dev->layout),
                               "vkCreatePipelineLayout"));
  // The ring in host-visible VRAM where there is such memory (a full BAR heap falls back to
  // system memory): vk19 measured 8B tg128 +10.6%, 1B +14.8% on the H100, every dispatch shorter.
  auto ring = CreateBuffer(dev, kRingBytes, dev->ring_vram ? MemUse::kHostToDevice : MemUse::kHost);
  if (!ring.ok() && dev->ring_vram) ring = CreateBuffer(dev, kRingBytes, MemUse::kHost);
  TSR_ASSIGN_OR_RETURN(dev->ring, std::move(ring));
  TSR_RETURN_IF_ERROR(StartProfile(dev));
  if (dev->prof) {
    Log(TSR_LOG_INFO,
        std::string("vulkan backend: parameter ring in ") +
            ((dev->ring->flags & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) != 0 ? "device-local"
                                                                           : "system") +
            " memory");
  }
  std::memset(dev->ring->mapped, 0, kRingFirst);
  dev->ring_used = kRingFirst;
  return OkStatus();
}

std::string MiB(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

// Step mode, per step: medians, so that one-time costs (pipeline creation, the first steps) do
// not count. The GPU's idle before an execute's first command buffer, inside an execute (before
// its later ones: submission boundaries), before a download's; the host's parts between steps.
// The idle before an execute less the host's parts after the execute's fence (download wait
// and memcpy, download -> next execute, its first submission) is the fence wake-up and the
// driver's submit-to-start latency. `pr.spans` is in submission order.
void LogStepMedians(const Profile& pr, double period) {
  Profile::Samples before, within, before_dl, bounds;
  double in_step = 0, n_bounds = 0;
  bool open = false;
  uint64_t prev_end = 0;
  for (size_t i = 0; i < pr.spans.size(); ++i) {
    const Profile::CmdSpan& c = pr.spans[i];
    const double g =
        i > 0 && c.begin > prev_end ? static_cast<double>(c.begin - prev_end) * period : 0;
    if (c.kind == 1) {
      if (open) within.Add(in_step), bounds.Add(n_bounds * 1e3);
      in_step = n_bounds = 0;
      open = true;
      if (i > 0) before.Add(g);
    } else if (c.kind == 2) {
      in_step += g;
      n_bounds += 1;
    } else {
      before_dl.Add(g);
    }
    prev_end = std::max(prev_end, c.end);
  }
  if (open) within.Add(in_step), bounds.Add(n_bounds * 1e3);
  Profile::Samples ex;
  ex.v = pr.execute_ns;
  char msg[768];
  std::snprintf(msg, sizeof(msg),
                "vulkan backend step medians (us): GPU idle before an execute %.1f, inside one "
                "%.1f (%.0f submission boundaries), before a download %.1f; host: synchronize "
                "%.1f, download %.1f (%zu, %.0f eager, %.0f direct; record + submit %.1f, wait "
                "%.1f, memcpy "
                "%.1f), download -> next execute %.1f (its uploads %.1f), execute start -> first "
                "submission %.1f, execute %.1f; replay: fast path check %.1f, key pass %.1f",
                before.MedianUs(), within.MedianUs(), bounds.MedianUs(), before_dl.MedianUs(),
                pr.sync.MedianUs(), pr.download.MedianUs(), pr.download.v.size(), pr.dl_eager,
                pr.dl_direct, pr.dl_record.MedianUs(), pr.dl_wait.MedianUs(), pr.dl_copy.MedianUs(),
                pr.between.MedianUs(), pr.step_uploads.MedianUs(), pr.first_submit.MedianUs(),
                ex.MedianUs(), pr.fast_check.MedianUs(), pr.key_pass.MedianUs());
  Log(TSR_LOG_INFO, msg);
}

// Step mode: the command buffers from the first execute on, in submission order. GPU busy = the
// union of their [begin, end] spans; a gap = the GPU idle until the next one began, charged to
// that one's kind: before an execute's first command buffer (the host between steps: fence
// wait wake-up, logits download, sampling, the next step's first recording), before an
// execute's later ones (the host's recording fell behind the GPU), before other ones
// (downloads/uploads). Per step = per execute's first command buffer.
void LogStepProfile(const tsr_device& dev) {
  Profile pr = *dev.prof;
  std::sort(pr.spans.begin(), pr.spans.end(),
            [](const Profile::CmdSpan& a, const Profile::CmdSpan& b) { return a.seq < b.seq; });
  const double period = dev.info->timestamp_period;
  double busy = 0, gap[3] = {0, 0, 0}, steps = 0;
  uint64_t prev_end = 0;
  for (size_t i = 0; i < pr.spans.size(); ++i) {
    const Profile::CmdSpan& c = pr.spans[i];
    if (c.kind == 1) steps += 1;
    if (i > 0 && c.begin > prev_end)
      gap[c.kind] += static_cast<double>(c.begin - prev_end) * period;
    const uint64_t from = i > 0 ? std::max(c.begin, prev_end) : c.begin;
    if (c.end > from) busy += static_cast<double>(c.end - from) * period;
    prev_end = std::max(prev_end, c.end);
  }
  const double span =
      pr.spans.empty() ? 0 : static_cast<double>(prev_end - pr.spans.front().begin) * period;
  std::vector<double> ex = pr.execute_ns;
  std::sort(ex.begin(), ex.end());
  const double median_ex = ex.empty() ? 0 : ex[ex.size() / 2];
  const double per = steps > 0 ? 1e3 * steps : 1;  // ns -> us per step
  char msg[768];
  std::snprintf(msg, sizeof(msg),
                "vulkan backend step profile: %.0f executes, %.0f dispatches, %.0f barriers, %zu "
                "command buffers after the first execute; GPU span %.3f ms = busy %.3f + idle "
                "%.3f (between executes) + %.3f (within) + %.3f (before downloads/uploads); per "
                "execute: span %.1f us = busy %.1f + idle %.1f + %.1f + %.1f us; host: execute "
                "median %.1f us (recording + submits), waiting on fences %.3f ms",
                pr.executes, pr.dispatches, pr.barriers, pr.spans.size(), span / 1e6, busy / 1e6,
                gap[1] / 1e6, gap[2] / 1e6, gap[0] / 1e6, span / per, busy / per, gap[1] / per,
                gap[2] / per, gap[0] / per, median_ex / 1e3, pr.wait_ns / 1e6);
  Log(TSR_LOG_INFO, msg);
  LogStepMedians(pr, period);
}

void LogProfile(const tsr_device& dev) {
  if (!dev.prof->per_dispatch) return LogStepProfile(dev);
  const Profile& pr = *dev.prof;
  double busy = 0;
  std::string msg = "vulkan backend profile: " + std::to_string(static_cast<long>(pr.submissions)) +
                    " submissions, " + std::to_string(pr.span_ns / 1e6) + " ms GPU wall time";
  for (int s = 0; s < static_cast<int>(Shader::kCount); ++s) {
    if (pr.calls[s] == 0) continue;
    busy += pr.busy_ns[s];
    char line[160];
    std::snprintf(line, sizeof(line), "\n  %-24s %8.0f calls %10.3f ms %9.2f us/call",
                  GetSpirv(static_cast<Shader>(s)).name, pr.calls[s], pr.busy_ns[s] / 1e6,
                  pr.busy_ns[s] / 1e3 / pr.calls[s]);
    msg += line;
  }
  msg += "\n  sum of dispatch times " + std::to_string(busy / 1e6) +
         " ms (the rest of the wall time: barriers, launch gaps, copies)";
  Log(TSR_LOG_INFO, msg);
}

void DeviceClose(tsr_device* dev) {
  if (dev == nullptr) return;
  if (dev->device != VK_NULL_HANDLE && dev->imported_bytes > 0) {
    // Weights keep their checkpoint dtype on the device (bf16 is not widened, q8/q4 stay
    // packed), so the first number is about the checkpoint's size.
    Log(TSR_LOG_INFO, "vulkan backend: " + dev->info->name + ": weights uploaded " +
                          MiB(dev->imported_bytes) +
                          " (checkpoint dtypes kept), peak device memory " + MiB(dev->peak_bytes) +
                          " in buffers");
  }
  if (dev->device != VK_NULL_HANDLE) {
    (void)Flush(dev);
    (void)Wait(dev, false);
  }
  if (dev->prof) LogProfile(*dev);
  if (dev->replay_hits + dev->replay_direct + dev->replay_pending + dev->replay_skipped > 0) {
    Log(dev->prof ? TSR_LOG_INFO : TSR_LOG_DEBUG,
        "vulkan backend: replay: " + std::to_string(dev->replay_hits) + " executes replayed (" +
            std::to_string(dev->replay_recorded) + " entries recorded, " +
            std::to_string(dev->replay_fast) + " by the view fast path), " +
            std::to_string(dev->replay_direct) + " direct, " + std::to_string(dev->replay_pending) +
            " direct while their entry was pending, " + std::to_string(dev->replay_skipped) +
            " direct without a key pass (backoff)");
  }
  delete dev;
}

tsr_status DeviceOpen(tsr_plugin_ctx* ctx, int32_t index, tsr_device** out, tsr_error* err) {
  if (tsr_status s = backend::CheckDeviceIndex(ctx, index, out, "device_open", "Vulkan", err);
      s != TSR_OK)
    return s;
  std::unique_ptr<tsr_device, void (*)(tsr_device*)> dev(new tsr_device, DeviceClose);
  dev->ctx = ctx;
  dev->info = &ctx->devices[static_cast<size_t>(index)];
  dev->vk = &ctx->vk;
  dev->subgroup_size = dev->info->subgroup;
  // TESSERA_VULKAN_STAGED=1: a unified-memory device (lavapipe) moves data as a discrete GPU
  // does (device buffers not mapped; staging, inline uploads, eager downloads), so CI covers it.
  const char* staged = std::getenv("TESSERA_VULKAN_STAGED");
  dev->unified = dev->info->unified && (staged == nullptr || std::string(staged) != "1");
  const char* tiled = std::getenv("TESSERA_VULKAN_TILED_ATTENTION");
  dev->tiled_attention =
      dev->info->tiled_attention && (tiled == nullptr || std::string(tiled) != "0");
  const char* fuse = std::getenv("TESSERA_VULKAN_FUSE");
  dev->fuse_decode = fuse == nullptr || std::string(fuse) != "0";
  const char* residual = std::getenv("TESSERA_VULKAN_FUSE_RESIDUAL");
  dev->fuse_residual = dev->fuse_decode && (residual == nullptr || std::string(residual) != "0");
  const char* pairs = std::getenv("TESSERA_VULKAN_FUSE_PAIRS");
  dev->fuse_pairs = dev->fuse_decode && (pairs == nullptr || std::string(pairs) != "0");
  const char* frkv = std::getenv("TESSERA_VULKAN_FUSE_ROPE_KV");
  dev->fuse_rope_kv = dev->fuse_decode && (frkv == nullptr || std::string(frkv) != "0");
  const char* fkva = std::getenv("TESSERA_VULKAN_FUSE_KV_ATTN");
  dev->fuse_kv_attn = dev->fuse_decode && (fkva == nullptr || std::string(fkva) != "0");
  const char* fnorm = std::getenv("TESSERA_VULKAN_FUSE_NORM");
  dev->fuse_norm = dev->fuse_decode && (fnorm == nullptr || std::string(fnorm) != "0");
  const char* fglu = std::getenv("TESSERA_VULKAN_FUSE_SWIGLU");
  dev->fuse_swiglu = dev->fuse_decode && (fglu == nullptr || std::string(fglu) != "0");
  const char* fropeq = std::getenv("TESSERA_VULKAN_FUSE_ROPE_Q");
  dev->fuse_rope_q = dev->fuse_decode && (fropeq == nullptr || std::string(fropeq) != "0");
  // Opt-in (TESSERA_VULKAN_COOPMAT=1) while its sums are not in the canonical order: a row's
  // bits would then depend on whether its MATMUL has >= 33 rows (README, vk-coop section).
  const char* coopmat = std::getenv("TESSERA_VULKAN_COOPMAT");
  dev->coop_gemm = dev->info->coop_bf16 && coopmat != nullptr && std::string(coopmat) == "1";
  if (const char* tile = std::getenv("TESSERA_VULKAN_COOPMAT_TILE")) dev->coop_tile = tile;
  if (const char* gemv = std::getenv("TESSERA_VULKAN_COOPGEMV")) dev->coop_gemv = std::atoi(gemv);
  const char* pstats = std::getenv("TESSERA_VULKAN_PIPELINE_STATS");
  dev->pipeline_stats =
      pstats != nullptr && std::string(pstats) == "1" &&
      HasExtension(*dev->vk, dev->info->pd, VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
  const char* coalesce = std::getenv("TESSERA_VULKAN_DECODE_COALESCE");
  dev->decode_coalesce = coalesce == nullptr || std::string(coalesce) != "0";
  // The skewed hand-over (matmul.comp DecodeRowsSkewed; 1 or 2 = its SKEW_MODE) for the
  // norm-fused decode GEMVs, where the device has subgroup shuffles: mode 1 by default (H100,
  // vk-gemv4: tg128 +9% / +1-3% / +7-11% on Llama-3.1-8B / Qwen2.5-0.5B / Llama-3.2-1B, same
  // bits); TESSERA_VULKAN_DECODE_SKEW=0 keeps the coalesced kernel everywhere.
  const char* skew = std::getenv("TESSERA_VULKAN_DECODE_SKEW");
  dev->decode_skew = dev->info->shuffle ? 1 : 0;
  if (dev->info->shuffle && skew != nullptr) dev->decode_skew = std::clamp(std::atoi(skew), 0, 2);
  const char* skew_plain = std::getenv("TESSERA_VULKAN_DECODE_SKEW_PLAIN");
  dev->decode_skew_plain = skew_plain != nullptr && std::string(skew_plain) == "1";
  // The RMS_NORM prologue's batched loads (matmul.comp NORM_BATCH_ON; =0: one at a time) and
  // the long-K plain decode GEMVs' kernel and K split (run_ops.cc KpiecesFor; 0 = by shape,
  // 1 = the coalesced kernel as before, 2 / 4 = that split wherever it fits). Same bits.
  const char* norm_batch = std::getenv("TESSERA_VULKAN_NORM_BATCH");
  dev->norm_batch = norm_batch == nullptr || std::string(norm_batch) != "0" ? 1 : 0;
  if (const char* kp = std::getenv("TESSERA_VULKAN_DECODE_KPIECES"))
    dev->decode_kpieces = std::clamp(std::atoi(kp), 0, 8);
  if (const char* xsplit = std::getenv("TESSERA_VULKAN_DECODE_XSPLIT"))
    dev->decode_xsplit = std::max(0, std::atoi(xsplit));
  if (const char* rows = std::getenv("TESSERA_VULKAN_DECODE_ROWS"))
    dev->decode_rows = std::atoi(rows);
  // MATMULs of 2..32 x rows on matmul.comp's MultiRows (Recorder::multi; same bits): wherever
  // it fits; TESSERA_VULKAN_MULTI=0 keeps MatmulRow (the tree before);
  // TESSERA_VULKAN_MULTI_ROWS=1|2|4 forces its weight rows a subgroup (a lab knob).
  dev->multi = dev->info->multi_fits;
  if (const char* e = std::getenv("TESSERA_VULKAN_MULTI"))
    dev->multi = dev->multi && std::atoi(e) != 0;
  if (const char* e = std::getenv("TESSERA_VULKAN_MULTI_ROWS")) dev->multi_rows = std::atoi(e);
  if (const char* rows = std::getenv("TESSERA_VULKAN_DECODE_ROWS_LONGK"))
    dev->decode_rows_longk = std::atoi(rows);
  const char* split = std::getenv("TESSERA_VULKAN_DECODE_SPLIT");
  if (split != nullptr) dev->decode_split = std::atoi(split);
  if (const char* blocks = std::getenv("TESSERA_VULKAN_SPLIT_BLOCKS"))
    dev->split_blocks = std::atoi(blocks);
  if (const char* every = std::getenv("TESSERA_VULKAN_SUBMIT_EVERY"))
    dev->submit_every = std::max(0, std::atoi(every));
  if (const char* first = std::getenv("TESSERA_VULKAN_FIRST_SUBMIT"))
    dev->first_submit = std::max(1, std::atoi(first));
  if (const char* ramp = std::getenv("TESSERA_VULKAN_SUBMIT_RAMP"))
    dev->submit_ramp = std::clamp(std::atoi(ramp), 1, 64);
  // Fence waits poll for up to 20 ms (a decode step) on discrete GPUs, as CUDA's default
  // synchronization spins; not on CPU devices, whose work needs the host cores, nor on
  // integrated GPUs, which share the CPU's power budget.
  const char* spin = std::getenv("TESSERA_VULKAN_SPIN_US");
  dev->spin_ns = dev->info->kind == TSR_DEVICE_GPU_DISCRETE ? 20'000'000 : 0;
  if (spin != nullptr) dev->spin_ns = std::max<int64_t>(0, std::atoll(spin)) * 1000;
  const char* eager = std::getenv("TESSERA_VULKAN_EAGER_DOWNLOAD");
  dev->eager_on = !dev->unified && (eager == nullptr || std::string(eager) != "0");
  const char* direct = std::getenv("TESSERA_VULKAN_EAGER_DIRECT");
  dev->eager_direct_on = direct == nullptr || std::string(direct) != "0";
  // The decode defaults measured on the H100 (L2 warm-up, persistent norm-fused groups, split
  // decode attention: vk-l2, vk-dec17, vk19b) apply to every GPU of its class, told by what the
  // driver reports rather than by the product name (which kept them off the H200 until vk23-dec):
  // an NVIDIA discrete GPU with at least 100 SMs (VK_NV_shader_sm_builtins; 0 where absent) and
  // at least 64 GiB of device-local memory, i.e. the HBM datacenter parts: H100 PCIe / SXM / NVL
  // (114-132 SMs, 80-94 GB: on as before), H200 (132 SMs, 141 GB; README vk23-dec: 8B tg128
  // 146.5 -> 151.2 t/s, +3.2%, same bits); A100 80GB (108 SMs) and later parts qualify too,
  // unmeasured. Workstation and consumer cards (<= 48 GB) keep them off.
  // TESSERA_VULKAN_HBM_CLASS=0: off on every device (the tree before vk23-dec on a non-H100),
  // 1: on (the persistent groups only where the SM count is known).
  bool hbm_class = dev->info->kind == TSR_DEVICE_GPU_DISCRETE && dev->info->vendor == 0x10de &&
                   dev->info->compute_units >= 100 &&
                   dev->info->memory_total >= (uint64_t{64} << 30);
  if (const char* e = std::getenv("TESSERA_VULKAN_HBM_CLASS")) hbm_class = std::atoi(e) != 0;
  // L2 warm-up (MaybeWarmL2): after decode attention by default on the HBM class above with
  // under 100 GiB of device memory (the H100's 80-94 GB, 50 MB of L2: 8B tg128 +1.5%, README
  // vk-l2); off on the larger parts (the H200's 141 GB, 60 MB of L2: off was ahead in each of
  // four calls, +0.3 to +0.8%; README vk27) and elsewhere, unless TESSERA_VULKAN_L2_WARM=MASK
  // (0 = off) asks. _MB, _SMALL_MB, _MIN_MB, _GROUPS and _STRIDE are lab knobs
  // (tsr_device::l2_warm).
  dev->l2_warm = hbm_class && dev->info->memory_total < (uint64_t{100} << 30) ? 1 : 0;
  if (const char* w = std::getenv("TESSERA_VULKAN_L2_WARM"))
    dev->l2_warm = std::clamp(std::atoi(w), 0, 15);
  // Persistent norm-fused decode groups (run_ops.cc RunDecodeGroup, matmul.comp NormGroups): on
  // the HBM class (the H100: 8B tg128 +3.0%, vk-dec17) 3 workgroups an SM (the skew+norm
  // modules' occupancy: 168 registers x 128 invocations), the SMs from
  // VK_NV_shader_sm_builtins; elsewhere off. TESSERA_VULKAN_PERSIST=N: at most N (0 = off).
  dev->decode_persist = hbm_class ? 3 * dev->info->compute_units : 0;
  if (const char* persist = std::getenv("TESSERA_VULKAN_PERSIST"))
    dev->decode_persist = std::max(0, std::atoi(persist));
  // Lab bound (vulkan_gemv_lab; WRONG outputs): decode GEMVs become plain reads of their weights
  // (run_ops.cc LabRead; Recorder::lab_read). vk-dec18.
  if (const char* r = std::getenv("TESSERA_VULKAN_LAB_READ"))
    dev->lab_read = std::clamp(std::atoi(r), 0, 65535);
  // The plain skewed decode GEMVs' PREF twin (matmul.comp PREF_MODE; Recorder::decode_pref;
  // vk24-pref): PREF_MODE 10 (the next step's weights and x loaded at the top of this step, 255
  // registers: 2 workgroups an SM where the default module has 3) on the dispatches of at most 2
  // workgroups an SM whose K is not split within the workgroup (SplitWithinGroup), i.e. the 8B o
  // and down (256 workgroups on 132 SMs), the default module elsewhere: the LM head (8,016
  // workgroups; with every plain dispatch on the twin, the LM head's included, the 8B tg128 did
  // not move) and the 1B / 0.5B down (256 / 224 workgroups, K in 2 / 4 pieces; with them on the
  // twin 1B tg128 513.8 -> 499.1 and the 0.5B lower too, while the 8B gained 149.4 -> 152.9:
  // README vk24-pref). By default only on the HBM class with at least 100 GiB of device-local
  // memory (the H200: 141 GB; vulkan_gemv_lab o + down 58.7 -> 53.8 us a layer); the H100 (80-94
  // GB) keeps the default module: the twin was never run there. TESSERA_VULKAN_DECODE_PREF=0:
  // off (the tree before vk24-pref); =M (lab): every plain skewed dispatch on the twin with
  // PREF_MODE M (1 = half, 2 = full, + 8 = x with them, + 4 = LOADS ONLY: a lab bound, WRONG
  // outputs; 16 = the twin with the default order). TESSERA_VULKAN_DECODE_PREF_GROUPS=G (lab):
  // the rule's workgroup limit (0 = never).
  dev->decode_pref_groups = hbm_class && dev->info->memory_total >= (uint64_t{100} << 30)
                                ? 2 * int64_t{dev->info->compute_units}
                                : 0;
  if (const char* pf = std::getenv("TESSERA_VULKAN_DECODE_PREF")) {
    dev->decode_pref = std::clamp(std::atoi(pf), 0, 31);
    if (dev->decode_pref == 0) dev->decode_pref_groups = 0;
  }
  if (const char* pg = std::getenv("TESSERA_VULKAN_DECODE_PREF_GROUPS"))
    dev->decode_pref_groups = std::max(0, std::atoi(pg));
  // Lab bound (WRONG outputs): the k RoPE + KV writes and / or the attention dispatches become
  // empty ones (Recorder::lab_empty). vk19.
  if (const char* e = std::getenv("TESSERA_VULKAN_LAB_EMPTY"))
    dev->lab_empty = std::clamp(std::atoi(e), 0, 3);
  // Decode attention's rows split over workgroups (attention_split; same bits, vk19b): each
  // (query, head)'s NSG subgroups over attn_parts workgroups where the split grid has at most
  // attn_split_groups workgroups. On the HBM class (the H100: 8B us a call at 144 / 512 / 2048
  // keys 29.9 / 84.2 / 324 -> 29.3 / 51.9 / 151) 4 parts, elsewhere off.
  // TESSERA_VULKAN_ATTN_PARTS (dividing NSG; 1 = off), _SPLIT_GROUPS (0 = never).
  dev->attn_parts = hbm_class ? 4 : 1;
  dev->attn_split_groups = 4 * std::max(dev->info->compute_units, 32);
  if (const char* e = std::getenv("TESSERA_VULKAN_ATTN_PARTS")) dev->attn_parts = std::atoi(e);
  if (const char* e = std::getenv("TESSERA_VULKAN_ATTN_SPLIT_GROUPS"))
    dev->attn_split_groups = std::max(0, std::atoi(e));
  const int attn_nsg = static_cast<int>(dev->info->attn_workgroup / dev->info->subgroup);
  if (dev->attn_parts < 1 || attn_nsg % dev->attn_parts != 0) dev->attn_parts = 1;
  dev->attn_nsg = attn_nsg;
  // attention.comp's fixed-shape modules for f32 K/V with D = Dv = 64 / 128 (the same bits; H100
  // 8B head us a call at 16 / 144 / 2048 keys 20.7 / 29.0 / 151 -> 10.8 / 13.1 / 59; vk20-attn).
  // TESSERA_VULKAN_ATTN_FAST=0: the generic modules only (a lab knob).
  if (const char* e = std::getenv("TESSERA_VULKAN_ATTN_FAST")) dev->attn_fast = std::atoi(e) != 0;
  // The RoPE + KV_WRITE dispatch's KVF32 module (rope.comp: f32 caches, 32-bit index math; the
  // same bits; H100 8B us a layer 9.2 -> 6.7; vk20-rope).
  // TESSERA_VULKAN_ROPE_FAST=0: the generic module (a lab knob).
  if (const char* e = std::getenv("TESSERA_VULKAN_ROPE_FAST")) dev->rope_fast = std::atoi(e) != 0;
  // Command-buffer replay (tsr_device::ReplayEntry; README vk25-replay): on unless
  // TESSERA_VULKAN_REPLAY=0; off while TESSERA_VULKAN_PROFILE=1 times every dispatch.
  const char* replay = std::getenv("TESSERA_VULKAN_REPLAY");
  dev->replay_on = replay == nullptr || std::string(replay) != "0";
  dev->replay_fast_on = replay == nullptr || std::string(replay) != "2";
  const char* ring_vram = std::getenv("TESSERA_VULKAN_RING_VRAM");
  dev->ring_vram = ring_vram == nullptr || std::string(ring_vram) != "0";
  auto env_mib = [](const char* name, uint64_t* bytes) {
    if (const char* w = std::getenv(name))
      *bytes = static_cast<uint64_t>(std::clamp(std::atoi(w), 0, 4096)) << 20;
  };
  env_mib("TESSERA_VULKAN_L2_WARM_MB", &dev->l2_warm_bytes);
  env_mib("TESSERA_VULKAN_L2_WARM_MIN_MB", &dev->l2_warm_min_bytes);
  env_mib("TESSERA_VULKAN_L2_WARM_SMALL_MB", &dev->l2_warm_small_bytes);
  if (const char* w = std::getenv("TESSERA_VULKAN_L2_WARM_GROUPS"))
    dev->l2_warm_groups = static_cast<uint32_t>(std::clamp(std::atoi(w), 1, 65535));
  if (const char* w = std::getenv("TESSERA_VULKAN_L2_WARM_STRIDE"))
    dev->l2_warm_stride = static_cast<uint32_t>(std::clamp(std::atoi(w), 1, 1024) * 4);
  if (Status s = CreateLogicalDevice(dev.get()); !s.ok()) return FromStatus(s, err);
  if (dev->prof && dev->prof->per_dispatch) dev->replay_on = false;
  *out = dev.release();
  return TSR_OK;
}

tsr_status DeviceSynchronize(tsr_device* dev, tsr_error* err) {
  if (dev == nullptr) return Fail(err, TSR_ERR_INVALID_ARGUMENT, "device_synchronize: NULL");
  const auto t0 = dev->prof ? std::chrono::steady_clock::now() : TimePoint{};
  Status s = Flush(dev);
  if (s.ok()) s = Wait(dev, /*check_data=*/true);
  if (dev->prof) {
    dev->prof->sync.Add(NsSince(t0));
  }
  return FromStatus(s, err);
}

// ---------------------------------------------------------------------------------------------
// Buffers and events
// ---------------------------------------------------------------------------------------------

constexpr auto BufferTypeCount = backend::SingleBufferTypeCount<tsr_device>;

tsr_status BufferTypeProps(tsr_device* dev, int32_t type, tsr_buffer_type_props* out,
                           tsr_error* err) {
  // Mapped internally on unified memory, but the host never writes it: not host-visible.
  const char* name = dev != nullptr && dev->info->unified ? "vulkan_unified" : "vulkan_device";
  return backend::DeviceBufferTypeProps(dev, type, out, name, kAlignment, 0, err);
}

tsr_status BufferAlloc(tsr_device* dev, int32_t type, uint64_t size, tsr_buffer** out,
                       tsr_error* err) {
  if (tsr_status s = backend::CheckSingleBufferType(dev, type, out, "buffer_alloc", err);
      s != TSR_OK)
    return s;
  StatusOr<std::unique_ptr<tsr_buffer>> b = CreateBuffer(dev, size, MemUse::kDevice);
  if (!b.ok()) return FromStatus(b.status(), err);
  dev->live_bytes += size;
  dev->peak_bytes = std::max(dev->peak_bytes, dev->live_bytes);
  ++dev->live_buffers;
  *out = b->release();
  return TSR_OK;
}

void BufferFree(tsr_buffer* buf) {
  if (buf == nullptr) return;
  tsr_device* dev = buf->dev;
  // Work queued earlier may still use it.
  (void)Flush(dev);
  (void)Wait(dev, false);
  if (dev->eager_src == buf) {
    dev->eager_src = nullptr;
    dev->eager_ready = dev->eager_confirmed = false;
  }
  dev->live_bytes -= buf->size;
  --dev->live_buffers;
  ++dev->replay_gen;
  DestroyBuffer(dev, buf);
  delete buf;
}

// Copies between host memory and a device-local buffer through the staging buffer, in chunks.
// Stream-ordered: each copy is recorded after the work already recorded (the first one joins
// the open command buffer, so an execute and the download of its result are one submission).
// Every chunk is waited for, so the staging buffer is free whenever this starts.
Status StagedCopy(tsr_buffer* buf, uint64_t offset, void* host, uint64_t size, bool upload) {
  tsr_device* dev = buf->dev;
  if (!dev->staging) {
    TSR_ASSIGN_OR_RETURN(dev->staging, CreateBuffer(dev, kStagingBytes, MemUse::kHost));
  }
  auto* bytes = static_cast<uint8_t*>(host);
  Profile* pr = upload ? nullptr : dev->prof.get();  // step mode times a download's parts
  for (uint64_t done = 0; done < size;) {
    const uint64_t n = std::min(kStagingBytes, size - done);
    auto t = pr ? std::chrono::steady_clock::now() : TimePoint{};
    TSR_RETURN_IF_ERROR(Begin(dev));
    if (upload) std::memcpy(dev->staging->mapped, bytes + done, n);
    VkBufferCopy region{upload ? 0 : offset + done, upload ? offset + done : 0, n};
    Barrier(dev);
    dev->vk->vkCmdCopyBuffer(dev->cmd, upload ? dev->staging->buf : buf->buf,
                             upload ? buf->buf : dev->staging->buf, 1, &region);
    Barrier(dev);
    TSR_RETURN_IF_ERROR(Flush(dev));
    if (pr) pr->dl_record.Add(NsSince(t)), t = std::chrono::steady_clock::now();
    TSR_RETURN_IF_ERROR(Wait(dev, false));
    if (pr) pr->dl_wait.Add(NsSince(t)), t = std::chrono::steady_clock::now();
    if (!upload) std::memcpy(bytes + done, dev->staging->mapped, n);
    if (pr) pr->dl_copy.Add(NsSince(t));
    done += n;
  }
  return OkStatus();
}

// ABI 1.2: host-visible memory (host-cached where the device has it: the host reads what the
// device copies into it), one VkBuffer each, so that a download into it is a device copy
// straight into the caller's bytes (BufferDownload, RecordEagerCopy). Never waits.
tsr_status HostAlloc(tsr_device* dev, uint64_t size, void** out_ptr, tsr_error* err) {
  if (dev == nullptr || out_ptr == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "host_alloc: NULL argument");
  StatusOr<std::unique_ptr<tsr_buffer>> b = CreateBuffer(dev, size, MemUse::kHost);
  if (!b.ok()) return FromStatus(b.status(), err);
  uint8_t* p = (*b)->mapped;
  if (p == nullptr || reinterpret_cast<uintptr_t>(p) % 64 != 0) {
    DestroyBuffer(dev, b->get());
    return Fail(err, TSR_ERR_UNSUPPORTED, "host_alloc: no 64-byte aligned host-visible memory");
  }
  std::lock_guard<std::mutex> l(dev->host_mu);
  dev->host_allocs[reinterpret_cast<uintptr_t>(p)] = std::move(*b);
  *out_ptr = p;
  return TSR_OK;
}

// The host_alloc buffer holding all of [p, p + size) (nullptr: none), and p's offset in it.
tsr_buffer* HostAllocAt(tsr_device* dev, const void* p, uint64_t size, uint64_t* offset) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> l(dev->host_mu);
  auto it = dev->host_allocs.upper_bound(a);
  if (it == dev->host_allocs.begin()) return nullptr;
  --it;
  if (a - it->first > it->second->size || size > it->second->size - (a - it->first)) return nullptr;
  *offset = a - it->first;
  return it->second.get();
}

void HostFree(tsr_device* dev, void* ptr) noexcept {
  if (dev == nullptr || ptr == nullptr) return;
  std::unique_ptr<tsr_buffer> b;
  {
    std::lock_guard<std::mutex> l(dev->host_mu);
    auto it = dev->host_allocs.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == dev->host_allocs.end()) return;  // not ours
    b = std::move(it->second);
    dev->host_allocs.erase(it);
  }
  // An eager copy into it may be in flight; none goes there any more.
  (void)Flush(dev);
  (void)Wait(dev, false);
  auto inside = [&](const uint8_t* q) { return q >= b->mapped && q < b->mapped + b->size; };
  if (dev->eager_dst != nullptr && inside(dev->eager_dst)) {
    dev->eager_dst = nullptr;
    dev->eager_direct = false;
  }
  if (dev->eager_into != nullptr && inside(dev->eager_into)) {
    dev->eager_into = nullptr;
    dev->eager_ready = false;
  }
  DestroyBuffer(dev, b.get());
}

// Execute's end: the eager download's copy (tsr_device::eager_on) of the predicted range,
// ordered after the execute's work, into its last command buffer: into `eager`, or straight
// into the predicted destination where that is host_alloc memory and the prediction holds for
// it (eager_direct: the last two downloads of the range went there, each after an execute like
// this one: same graph view arrays and node list; TESSERA_VULKAN_EAGER_DIRECT=0: never).
// Contract (the engine's: TextModel's logits / ids span is valid until its next step, which
// executes first): the host does not read or write those destination bytes from such an
// execute until its download of the range returns; if no such download comes, they hold the
// range's bytes at the execute's end once the work has completed (synchronize / a later wait).
Status RecordEagerCopy(tsr_device* dev) {
  if (!dev->eager_on || !dev->eager_confirmed || dev->eager_src == nullptr) return OkStatus();
  uint64_t into_offset = 0;
  tsr_buffer* into = dev->eager_direct_on && dev->eager_direct && dev->exec_sig == dev->eager_sig
                         ? HostAllocAt(dev, dev->eager_dst, dev->eager_size, &into_offset)
                         : nullptr;
  if (into != nullptr) {
    TSR_RETURN_IF_ERROR(Begin(dev));
    Barrier(dev);
    const VkBufferCopy region{dev->eager_offset, into_offset, dev->eager_size};
    dev->vk->vkCmdCopyBuffer(dev->cmd, dev->eager_src->buf, into->buf, 1, &region);
    Barrier(dev);
    dev->eager_ready = true;
    dev->eager_used = false;
    dev->eager_into = dev->eager_dst;
    return OkStatus();
  }
  if (!dev->eager || dev->eager->size < dev->eager_size) {
    // An earlier eager copy may still be writing the old buffer.
    TSR_RETURN_IF_ERROR(Flush(dev));
    TSR_RETURN_IF_ERROR(Wait(dev, false));
    if (dev->eager) DestroyBuffer(dev, dev->eager.get());
    dev->eager.reset();
    TSR_ASSIGN_OR_RETURN(dev->eager, CreateBuffer(dev, dev->eager_size, MemUse::kHost));
  }
  TSR_RETURN_IF_ERROR(Begin(dev));
  Barrier(dev);
  const VkBufferCopy region{dev->eager_offset, 0, dev->eager_size};
  dev->vk->vkCmdCopyBuffer(dev->cmd, dev->eager_src->buf, dev->eager->buf, 1, &region);
  Barrier(dev);  // later work may overwrite the range (Flush makes the copy visible to the host)
  dev->eager_ready = true;
  dev->eager_used = false;
  dev->eager_into = nullptr;
  return OkStatus();
}

// A download of [offset, offset + size) of `src` into `dst` that the last execute's eager copy
// holds: in `eager`, or already at `dst` (eager_into).
bool EagerHit(const tsr_device& dev, const tsr_buffer* src, uint64_t offset, uint64_t size,
              const void* dst) {
  if (!dev.eager_ready || src != dev.eager_src || offset < dev.eager_offset ||
      offset + size > dev.eager_offset + dev.eager_size)
    return false;
  return dev.eager_into == nullptr || dst == dev.eager_into + (offset - dev.eager_offset);
}

// Notes a download's destination for the direct eager copy: confirmed when the predicted range
// went to the same host_alloc bytes after an execute like the one before the last download.
void PredictDestination(tsr_device* dev, bool whole_range, void* dst) {
  uint64_t unused = 0;
  auto* d = static_cast<uint8_t*>(dst);
  dev->eager_direct = whole_range && d == dev->eager_dst && dev->exec_sig == dev->eager_sig &&
                      HostAllocAt(dev, d, dev->eager_size, &unused) != nullptr;
  dev->eager_dst = whole_range ? d : nullptr;
  dev->eager_sig = dev->exec_sig;
}

// A download the eager copy did not serve: the next executes copy its range if it repeats.
void PredictDownload(tsr_device* dev, const tsr_buffer* src, uint64_t offset, uint64_t size,
                     void* dst) {
  const bool same = src == dev->eager_src && offset == dev->eager_offset && size == dev->eager_size;
  dev->eager_confirmed = same && size <= kStagingBytes;
  dev->eager_src = src;
  dev->eager_offset = offset;
  dev->eager_size = size;
  if (!same) dev->eager_dst = nullptr;
  PredictDestination(dev, true, dst);
}

// A download into host_alloc memory (`host` at `host_offset`): one copy straight into it,
// ordered after the recorded work; one submission and one wait.
Status DirectDownload(tsr_buffer* src, uint64_t offset, tsr_buffer* host, uint64_t host_offset,
                      uint64_t size) {
  tsr_device* dev = src->dev;
  Profile* pr = dev->prof.get();
  auto t = pr ? std::chrono::steady_clock::now() : TimePoint{};
  TSR_RETURN_IF_ERROR(Begin(dev));
  const VkBufferCopy region{offset, host_offset, size};
  Barrier(dev);
  dev->vk->vkCmdCopyBuffer(dev->cmd, src->buf, host->buf, 1, &region);
  Barrier(dev);
  TSR_RETURN_IF_ERROR(Flush(dev));
  if (pr) pr->dl_record.Add(NsSince(t)), t = std::chrono::steady_clock::now();
  TSR_RETURN_IF_ERROR(Wait(dev, false));
  if (pr) pr->dl_wait.Add(NsSince(t)), pr->dl_copy.Add(0), pr->dl_direct += 1;
  return OkStatus();
}

tsr_status BufferUpload(tsr_buffer* dst, uint64_t dst_offset, const void* src, uint64_t size,
                        tsr_event* done, tsr_error* err) {
  if (tsr_status s = backend::CheckTransferArgs(dst, dst_offset, src, size, "buffer_upload", err);
      s != TSR_OK)
    return s;
  if (size == 0) return TSR_OK;
  tsr_device* dev = dst->dev;
  const auto t0 = dev->prof ? std::chrono::steady_clock::now() : TimePoint{};
  Status s;
  if (dst->mapped != nullptr) {
    s = Flush(dev);  // queued work may still read the old bytes
    if (s.ok()) s = Wait(dev, false);
    if (s.ok()) std::memcpy(dst->mapped + dst_offset, src, size);
  } else if (size <= kInlineUploadBytes && size % 4 == 0 && dst_offset % 4 == 0) {
    // Per-step inputs (token ids, positions, slots, block tables): the bytes ride in the
    // command buffer (vkCmdUpdateBuffer copies them when recorded), ordered after the queued
    // work that may still read the old ones. No submission and no wait. Tracked as a node that
    // writes the range (RunTracked): a barrier before it only where work since the last one
    // touches the range, and the nodes that read it get theirs, so a step's uploads share one.
    s = Begin(dev);
    if (s.ok()) {
      const uint64_t lo = reinterpret_cast<uintptr_t>(dst->data) + dst_offset;
      const Range r{lo, lo + size};
      auto overlaps = [&](const std::vector<Range>& rs) {
        return std::any_of(rs.begin(), rs.end(),
                           [&](const Range& o) { return o.lo < r.hi && r.lo < o.hi; });
      };
      if (overlaps(dev->writes_since) || overlaps(dev->reads_since)) Barrier(dev);
      dev->vk->vkCmdUpdateBuffer(dev->cmd, dst->buf, dst_offset, size, src);
      dev->writes_since.push_back(r);
    }
  } else {
    s = StagedCopy(dst, dst_offset, const_cast<void*>(src), size, /*upload=*/true);
  }
  if (dev->prof && dev->prof->after_download) {  // between a step's download and the next
    dev->prof->upload_ns += NsSince(t0);
  }
  return FromStatus(s, err);
}

// Copies the host memory to the device once (weights stay resident in their checkpoint dtype;
// the host's mmap can be dropped after this returns).
tsr_status BufferImportHost(tsr_device* dev, void* ptr, uint64_t size, tsr_buffer** out,
                            tsr_error* err) {
  const tsr_status s =
      backend::ImportHostByCopy<BufferAlloc, BufferUpload, BufferFree>(dev, ptr, size, out, err);
  if (s == TSR_OK) dev->imported_bytes += size;
  return s;
}

tsr_status BufferMap(tsr_buffer* buf, void** out_ptr, tsr_error* err) {
  return backend::MapNotHostVisible(buf, out_ptr, "vulkan backend", err);
}

tsr_status BufferDownload(tsr_buffer* src, uint64_t src_offset, void* dst, uint64_t size,
                          tsr_event* done, tsr_error* err) {
  if (tsr_status s = backend::CheckTransferArgs(src, src_offset, dst, size, "buffer_download", err);
      s != TSR_OK)
    return s;
  tsr_device* dev = src->dev;
  const auto t0 = dev->prof ? std::chrono::steady_clock::now() : TimePoint{};
  Status s;
  if (src->mapped != nullptr || size == 0) {
    s = Flush(dev);
    if (s.ok()) s = Wait(dev, /*check_data=*/true);
    if (s.ok() && size > 0) std::memcpy(dst, src->mapped + src_offset, size);
  } else if (EagerHit(*dev, src, src_offset, size, dst)) {
    // The last execute copied the range (into `eager`, or straight to `dst`): wait for it
    // (nothing was recorded since).
    s = Flush(dev);
    if (s.ok()) s = Wait(dev, /*check_data=*/true);
    const auto t1 = dev->prof ? std::chrono::steady_clock::now() : TimePoint{};
    const bool direct = dev->eager_into != nullptr;
    if (s.ok() && !direct)
      std::memcpy(dst, dev->eager->mapped + (src_offset - dev->eager_offset), size);
    dev->eager_used = true;
    PredictDestination(dev, src_offset == dev->eager_offset && size == dev->eager_size, dst);
    if (dev->prof) {
      dev->prof->dl_wait.Add(std::chrono::duration<double, std::nano>(t1 - t0).count());
      dev->prof->dl_copy.Add(NsSince(t1));
      dev->prof->dl_eager += 1;
      if (direct) dev->prof->dl_direct += 1;
    }
  } else {
    // The copy joins the recorded work: one submission and one wait for execute + download.
    PredictDownload(dev, src, src_offset, size, dst);
    uint64_t host_offset = 0;
    if (tsr_buffer* host = HostAllocAt(dev, dst, size, &host_offset); host != nullptr)
      s = DirectDownload(src, src_offset, host, host_offset, size);
    else
      s = StagedCopy(src, src_offset, dst, size, /*upload=*/false);
    if (s.ok()) s = TakeDeviceErrors(dev);
  }
  if (dev->prof) {
    Profile& pr = *dev->prof;
    pr.download.Add(NsSince(t0));
    if (!pr.after_download) pr.upload_ns = 0;
    pr.after_download = true;
    pr.download_end = std::chrono::steady_clock::now();
  }
  return FromStatus(s, err);
}

tsr_status BufferCopy(tsr_buffer* src, uint64_t src_offset, tsr_buffer* dst, uint64_t dst_offset,
                      uint64_t size, tsr_event* done, tsr_error* err) {
  if (tsr_status s =
          backend::CheckCopyArgs(src, src_offset, dst, dst_offset, size, "vulkan backend", err);
      s != TSR_OK)
    return s;
  if (size == 0) return TSR_OK;
  tsr_device* dev = src->dev;
  // Stream-ordered like an execute: recorded now, run with the next submission.
  Status s = Begin(dev);
  if (s.ok()) {
    VkBufferCopy region{src_offset, dst_offset, size};
    Barrier(dev);
    dev->vk->vkCmdCopyBuffer(dev->cmd, src->buf, dst->buf, 1, &region);
    Barrier(dev);
    if (done != nullptr) s = Flush(dev);
  }
  return FromStatus(s, err);
}

constexpr auto EventCreate = backend::NewDeviceEvent<tsr_event, tsr_device>;

// An event is "everything submitted so far" (all command buffers in flight).
tsr_status EventWait(tsr_event* ev, tsr_error* err) {
  if (ev == nullptr) return Fail(err, TSR_ERR_INVALID_ARGUMENT, "event_wait: NULL event");
  Status s = Flush(ev->dev);
  if (s.ok()) s = Wait(ev->dev, false);
  return FromStatus(s, err);
}

void EventDestroy(tsr_event* ev) {
  delete ev;
}

// ---------------------------------------------------------------------------------------------
// Graph views: supports_op and execute
// ---------------------------------------------------------------------------------------------

using backend::AbiArrayBytes;
using backend::RawEnum;
using backend::SameBytes;
using LoadedNode = backend::LoadedNode<OpArgs>;

Status LoadNode(const tsr_device* dev, const tsr_graph_view& g, int32_t node_index, bool with_data,
                LoadedNode* ln) {
  std::string e = backend::LoadNode<tsr_buffer>(dev, g, node_index, with_data, ln);
  return e.empty() ? OkStatus() : InvalidArgument(std::move(e));
}

using backend::ViewOk;
constexpr auto SupportsOp =
    backend::SupportsOp<LoadedNode, LoadNode, FindRunner, ValidateOp, tsr_device>;

// The bytes a tensor view can touch (everything, for a negative stride).
Range Extent(const TensorRef& t) {
  const uint64_t lo = Addr(t);
  if (t.NumElements() == 0) return {lo, lo};
  const bool quant = backend::IsQuantized(t.dtype);
  const int last = t.ndim - 1;
  uint64_t span = 0;
  for (int d = 0; d < t.ndim; ++d) {
    if (t.nb[d] < 0) return {0, UINT64_MAX};
    if (!(quant && d == last)) span += static_cast<uint64_t>((t.ne[d] - 1) * t.nb[d]);
  }
  const uint64_t tail = quant ? static_cast<uint64_t>(t.dim(-1) / TSR_QBLOCK) *
                                    static_cast<uint64_t>(backend::BlockBytes(t.dtype))
                              : static_cast<uint64_t>(backend::DtypeSize(t.dtype));
  return {lo, lo + span + tail};
}

bool Overlaps(const std::vector<Range>& rs, const Range& r) {
  return std::any_of(rs.begin(), rs.end(),
                     [&](const Range& o) { return o.lo < r.hi && r.lo < o.hi; });
}

// Whether a node reading `reads` and writing `write` must wait for the dispatches recorded since
// the last barrier: it reads what they write, or writes what they read or write. Independent
// nodes (q/k/v projections, gate/up, the two RoPEs) run without a barrier between them.
bool NeedsBarrier(const tsr_device& dev, const std::vector<Range>& reads, const Range& write) {
  if (Overlaps(dev.writes_since, write) || Overlaps(dev.reads_since, write)) return true;
  return std::any_of(reads.begin(), reads.end(),
                     [&](const Range& r) { return Overlaps(dev.writes_since, r); });
}

// Records what `run` dispatches for nodes reading `reads` and writing `writes`, after a barrier
// when they need one, and notes the ranges for the next node's check.
template <typename Fn>
Status RunTracked(tsr_device* dev, const std::vector<Range>& reads,
                  const std::vector<Range>& writes, Fn&& run) {
  if (std::any_of(writes.begin(), writes.end(),
                  [&](const Range& w) { return NeedsBarrier(*dev, reads, w); }))
    Barrier(dev);
  dev->node_dispatches = 0;
  TSR_RETURN_IF_ERROR(run());
  dev->reads_since.insert(dev->reads_since.end(), reads.begin(), reads.end());
  dev->writes_since.insert(dev->writes_since.end(), writes.begin(), writes.end());
  return OkStatus();
}

Status ExecuteNode(tsr_device* dev, const tsr_graph_view& g, int32_t node_index) {
  auto ln = std::make_unique<LoadedNode>();
  TSR_RETURN_IF_ERROR(LoadNode(dev, g, node_index, /*with_data=*/true, ln.get()));
  const OpFn run = FindRunner(RawEnum(ln->node.op));
  if (run == nullptr) return InvalidArgument("unknown op " + std::to_string(RawEnum(ln->node.op)));
  TSR_RETURN_IF_ERROR(ValidateOp(ln->args));
  ln->args.rec = dev;
  std::vector<Range> reads;
  for (int i = 0; i < ln->args.n_in; ++i) {
    if (ln->args.in[i] != nullptr) reads.push_back(Extent(*ln->args.in[i]));
  }
  return RunTracked(dev, reads, {Extent(*ln->args.out)}, [&] { return run(ln->args); });
}

// Decode fusion (Recorder::fuse_decode): up to kMaxDecodeGroup consecutive MATMULs over the same
// single x row (a layer's q/k/v, gate/up) run as one matmul.comp dispatch, which costs one
// dispatch and no barrier between them. No node of the group writes what another reads or
// writes, and each output row is summed exactly as when its node runs alone, so the outputs
// have the same bits. Returns how many nodes ran (0: no group; the caller runs node i alone,
// which also reports any error of it).
// Consecutive decode MATMULs from ids[i] on that can share one dispatch (see below).
struct DecodeGroup {
  std::unique_ptr<LoadedNode[]> ln = std::make_unique<LoadedNode[]>(kMaxDecodeGroup);
  MatmulP parts[kMaxDecodeGroup];
  tsr_dtype wdt = TSR_DTYPE_F32;
  std::vector<Range> reads, writes;
  int count = 0;
};

bool IsOp(const tsr_graph_view& g, const int32_t* ids, int32_t n, int32_t k, int op) {
  return k < n && g.nodes != nullptr && ids[k] >= 0 && ids[k] < g.n_nodes &&
         RawEnum(backend::ReadAbiStruct(g.nodes, ids[k]).op) == op;
}

void CollectDecodeGroup(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n,
                        int32_t i, DecodeGroup* grp) {
  for (int32_t k = i; grp->count < kMaxDecodeGroup && IsOp(g, ids, n, k, TSR_OP_MATMUL); ++k) {
    LoadedNode& l = grp->ln[grp->count];
    if (!LoadNode(dev, g, ids[k], /*with_data=*/true, &l).ok() || !ValidateOp(l.args).ok()) break;
    l.args.rec = dev;
    MatmulP p;
    tsr_dtype dt = TSR_DTYPE_F32;
    if (!DecodeGroupPart(l.args, &p, &dt)) break;
    if (grp->count > 0 && (p.x != grp->parts[0].x || p.K != grp->parts[0].K || dt != grp->wdt))
      break;
    std::vector<Range> r;
    for (int j = 0; j < l.args.n_in; ++j) {
      if (l.args.in[j] != nullptr) r.push_back(Extent(*l.args.in[j]));
    }
    const Range w = Extent(*l.args.out);
    const bool clash =
        Overlaps(r, w) || Overlaps(grp->reads, w) || Overlaps(grp->writes, w) ||
        std::any_of(r.begin(), r.end(), [&](const Range& x) { return Overlaps(grp->writes, x); });
    if (clash) break;
    grp->reads.insert(grp->reads.end(), r.begin(), r.end());
    grp->writes.push_back(w);
    grp->parts[grp->count++] = p;
    grp->wdt = dt;
  }
  if (!dev->fuse_decode) grp->count = std::min(grp->count, 1);
}

StatusOr<int> ExecuteDecodeGroup(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids,
                                 int32_t n, int32_t i) {
  if (!dev->fuse_decode || !IsOp(g, ids, n, i, TSR_OP_MATMUL) ||
      !IsOp(g, ids, n, i + 1, TSR_OP_MATMUL))
    return 0;
  DecodeGroup grp;
  CollectDecodeGroup(dev, g, ids, n, i, &grp);
  if (grp.count < 2) return 0;
  TSR_RETURN_IF_ERROR(RunTracked(dev, grp.reads, grp.writes, [&] {
    return RunDecodeGroup(dev, grp.parts, grp.count, grp.wdt);
  }));
  return grp.count;
}

// Whether t is one f32 row of n values, contiguous and 16-byte aligned (the fused norm's loads).
bool NormRow(const TensorRef& t, int64_t n) {
  return t.dtype == TSR_DTYPE_F32 && t.NumElements() == n && t.IsContiguous() && Addr(t) % 16 == 0;
}

// Moves the RMS_NORM prologue's fields (which RunDecodeGroup reads from part 0) from *from to *to.
void MoveNorm(MatmulP* from, MatmulP* to) {
  to->norm_x = std::exchange(from->norm_x, 0);
  to->norm_w = std::exchange(from->norm_w, 0);
  to->norm_out = std::exchange(from->norm_out, 0);
  to->norm_eps = std::exchange(from->norm_eps, 0.0f);
  to->norm_woff = std::exchange(from->norm_woff, 0.0f);
}

// Decode fusion (tsr_device::fuse_swiglu / fuse_rope_q): node ids[k], right after a norm-fused
// decode group (grp, its prologue set; ro = the norm output's range), joins the group's
// epilogue (matmul.comp PairedGroup, the decode_skew_pair_* modules): a SWIGLU over a gate/up
// group's two outputs (the parts swapped so that part 0 is its gate), or a ROPE over part 0's
// output (q of q/k/v). Its output E is computed from the same f32 sums with the node's own
// expression (elementwise.comp's, rope_common.glsl's), so it has the bits of the node run alone. E
// may overlap nothing the dispatch reads (the norm's input and weight, weights, biases, the RoPE's
// positions and frequencies; the GEMVs' x, the norm output, is never read: x is normalized on
// load); it may cover the norm output (the engine's planner gives the SWIGLU that dead memory) or
// be exactly a part's output (in place): sequentially E overwrites it, so that store is dropped
// (the workgroups' norm stores would race the other workgroups' E stores). Adds E and the RoPE's
// inputs to *writes / *reads; returns 1 when fused, else 0 (grp untouched).
int FuseEpilogue(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n, int32_t k,
                 const Range& ro, DecodeGroup* grp, std::vector<Range>* reads,
                 std::vector<Range>* writes) {
  const bool glu = dev->fuse_swiglu && grp->count == 2 && IsOp(g, ids, n, k, TSR_OP_SWIGLU);
  const bool rope = dev->fuse_rope_q && IsOp(g, ids, n, k, TSR_OP_ROPE);
  if (!glu && !rope) return 0;
  auto ln = std::make_unique<LoadedNode>();
  if (!LoadNode(dev, g, ids[k], /*with_data=*/true, ln.get()).ok() || !ValidateOp(ln->args).ok())
    return 0;
  ln->args.rec = dev;
  const OpArgs& a = ln->args;
  MatmulP parts[kMaxDecodeGroup];
  std::copy(grp->parts, grp->parts + grp->count, parts);
  std::vector<Range> node_reads;  // the RoPE's positions and frequencies
  bool swap = false;
  if (glu) {
    const int32_t o0 = grp->ln[0].node.output, o1 = grp->ln[1].node.output;
    if (ln->node.n_inputs != 2 || a.n_in != 2 || o0 == o1) return 0;
    swap = ln->node.inputs[0] == o1 && ln->node.inputs[1] == o0;
    if (!swap && (ln->node.inputs[0] != o0 || ln->node.inputs[1] != o1)) return 0;
    for (const TensorRef* t : {a.in[0], a.in[1], a.out}) {
      if (t->dtype != TSR_DTYPE_F32 || t->NumElements() != parts[0].N || !t->IsContiguous())
        return 0;
    }
    if (swap) {
      std::swap(parts[0], parts[1]);
      MoveNorm(&parts[1], &parts[0]);
    }
    parts[0].glu_out = Addr(*a.out);
  } else {
    // Its input is a view of q's output (the engine reshapes it into heads): matched by
    // address and layout (DecodeRopeFill).
    if (ln->node.n_inputs < 3 || !DecodeRopeFill(a, &parts[0])) return 0;
    node_reads = {Extent(*a.in[1]), Extent(*a.in[2])};
  }
  if (!DecodePairFits(*dev, parts[0], parts, grp->count, grp->wdt)) return 0;
  const Range re = Extent(*a.out);
  std::vector<Range> real = node_reads;
  for (const Range& r : *reads) {
    if (r.lo != ro.lo || r.hi != ro.hi) real.push_back(r);
  }
  if (Overlaps(real, re) || std::any_of(node_reads.begin(), node_reads.end(),
                                        [&](const Range& r) { return Overlaps(*writes, r); }))
    return 0;
  auto covers = [&](const Range& w) { return re.lo <= w.lo && w.hi <= re.hi; };
  if (Overlaps({ro}, re)) {
    if (!covers(ro)) return 0;
    parts[0].norm_out = 0;  // matmul.comp skips WriteNormed
  }
  for (int j = 0; j < grp->count; ++j) {
    const Range rj = grp->writes[j];  // node j's output; part (swap ? 1 - j : j) now
    if (!Overlaps({rj}, re)) continue;
    const int pj = swap ? 1 - j : j;
    // Element for element the same place: the SWIGLU's contiguous output over a contiguous
    // part output; the RoPE's (h, d) over q row h D + d.
    const bool exact = rj.lo == re.lo && rj.hi == re.hi;
    const bool layout = glu || (pj == 0 && parts[0].rope_o_el == 4 &&
                                parts[0].rope_o_head == int64_t{parts[0].rope_D} * 4);
    if (!exact || !layout) return 0;
    parts[pj].out = 0;  // matmul.comp skips this part's store
  }
  std::copy(parts, parts + grp->count, grp->parts);
  reads->insert(reads->end(), node_reads.begin(), node_reads.end());
  writes->push_back(re);
  return 1;
}

// Decode fusion (Recorder::fuse_decode): an RMS_NORM of one row followed by the decode GEMVs that
// read its output (a layer's q/k/v or gate/up group, the LM head) runs as one dispatch:
// matmul.comp computes the norm's scale in every workgroup exactly as rows.comp sums the row
// (both pipelines require the device's subgroup size), normalizes x on load, and the workgroups
// write the norm's output (a share each), so both nodes' outputs have their unfused bits
// (NormFusedIntoDecodeGemvMatchesSeparateNodes). Needs a GEMV module with the prologue
// (DecodeNormFusable); returns how many nodes ran (0: no pattern).
StatusOr<int> ExecuteNormGemv(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids,
                              int32_t n, int32_t i) {
  if (!dev->fuse_norm || !dev->info->norm_fusable || !IsOp(g, ids, n, i, TSR_OP_RMS_NORM) ||
      !IsOp(g, ids, n, i + 1, TSR_OP_MATMUL))
    return 0;
  auto norm = std::make_unique<LoadedNode>();
  if (!LoadNode(dev, g, ids[i], /*with_data=*/true, norm.get()).ok() ||
      !ValidateOp(norm->args).ok())
    return 0;
  const OpArgs& na = norm->args;
  DecodeGroup grp;
  CollectDecodeGroup(dev, g, ids, n, i + 1, &grp);
  if (grp.count < 1) return 0;
  const int64_t K = grp.parts[0].K;
  if (!DecodeNormFusable(*dev, K, grp.wdt)) return 0;
  const TensorRef* w = na.input(1);
  if (na.input(2) != nullptr || !NormRow(*na.in[0], K) || !NormRow(*na.out, K) ||
      (w != nullptr && !NormRow(*w, K)) || Addr(*na.out) != grp.parts[0].x)
    return 0;
  // The norm's x and weight are read by every workgroup while the workgroups write its output,
  // and the GEMVs' outputs are written meanwhile: none of these may overlap.
  const Range rx = Extent(*na.in[0]), ro = Extent(*na.out);
  std::vector<Range> norm_reads = {rx};
  if (w != nullptr) norm_reads.push_back(Extent(*w));
  if (Overlaps(norm_reads, ro) || Overlaps(grp.writes, ro) ||
      std::any_of(norm_reads.begin(), norm_reads.end(),
                  [&](const Range& r) { return Overlaps(grp.writes, r); }))
    return 0;
  MatmulP& p0 = grp.parts[0];
  p0.norm_x = Addr(*na.in[0]);
  p0.norm_w = Addr(w);
  p0.norm_out = Addr(*na.out);
  p0.norm_eps = na.fp(0);
  p0.norm_woff = w != nullptr ? na.fp(1) : 0.0f;
  std::vector<Range> reads = grp.reads, writes = grp.writes;
  reads.insert(reads.end(), norm_reads.begin(), norm_reads.end());
  writes.push_back(ro);
  const int epi = FuseEpilogue(dev, g, ids, n, i + 1 + grp.count, ro, &grp, &reads, &writes);
  TSR_RETURN_IF_ERROR(RunTracked(
      dev, reads, writes, [&] { return RunDecodeGroup(dev, grp.parts, grp.count, grp.wdt); }));
  return 1 + grp.count + epi;
}

// Decode fusion (Recorder::fuse_decode): a MATMUL that takes the decode GEMV followed by the ADD
// of its output and a residual (o/down projection + residual) runs as one dispatch that writes
// both outputs: the GEMV's row sum, then sum + residual, the ADD's own f32 addition, so both
// tensors have the bits of the two nodes run apart. The ADD must not broadcast, and write
// neither the GEMV's x, weight or output; the residual must not be the GEMV's output. Returns
// how many nodes ran (0: no pattern).
StatusOr<int> ExecuteDecodeResidual(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids,
                                    int32_t n, int32_t i) {
  auto op_is = [&](int32_t k, int op) {
    return k < n && g.nodes != nullptr && ids[k] >= 0 && ids[k] < g.n_nodes &&
           RawEnum(backend::ReadAbiStruct(g.nodes, ids[k]).op) == op;
  };
  if (!dev->fuse_residual || !op_is(i, TSR_OP_MATMUL) || !op_is(i + 1, TSR_OP_ADD)) return 0;
  auto ln = std::make_unique<LoadedNode[]>(2);
  for (int j = 0; j < 2; ++j) {
    if (!LoadNode(dev, g, ids[i + j], /*with_data=*/true, &ln[j]).ok() ||
        !ValidateOp(ln[j].args).ok())
      return 0;
    ln[j].args.rec = dev;
  }
  MatmulP p;
  tsr_dtype wdt = TSR_DTYPE_F32;
  if (!DecodeGroupPart(ln[0].args, &p, &wdt)) return 0;
  const LoadedNode& add = ln[1];
  const int32_t h = ln[0].node.output;
  if (add.node.n_inputs != 2 || add.args.n_in != 2) return 0;
  const int which = add.node.inputs[0] == h ? 0 : (add.node.inputs[1] == h ? 1 : -1);
  if (which < 0 || add.node.inputs[1 - which] == h) return 0;
  const TensorRef& res = *add.args.in[1 - which];
  const TensorRef& out = *add.args.out;
  const TensorRef& mo = *ln[0].args.out;
  if (mo.dtype != TSR_DTYPE_F32 || p.out_col != 4) return 0;
  for (const TensorRef* t : {&res, &out}) {
    if (t->dtype != TSR_DTYPE_F32 || !backend::SameShape(*t, mo) || !t->IsContiguous()) return 0;
  }
  std::vector<Range> reads;
  for (int j = 0; j < ln[0].args.n_in; ++j) {
    if (ln[0].args.in[j] != nullptr) reads.push_back(Extent(*ln[0].args.in[j]));
  }
  const Range ro = Extent(out), rm = Extent(mo), rr = Extent(res);
  if (Overlaps(reads, ro) || Overlaps({rm}, ro) || Overlaps({rm}, rr)) return 0;
  reads.push_back(rr);
  p.res = Addr(res);
  p.res_out = Addr(out);
  TSR_RETURN_IF_ERROR(
      RunTracked(dev, reads, {rm, ro}, [&] { return RunDecodeGroup(dev, &p, 1, wdt); }));
  return 2;
}

// Decode pairs (Recorder::fuse_decode): two consecutive ROPE nodes (a layer's q and k) or two
// KV_WRITE nodes writing their caches in place (k and v) run as one dispatch (run_ops.cc
// RunPair) when neither writes what the other reads or writes; each output element is computed
// as when its node runs alone. Returns how many nodes ran (0: no pair).
StatusOr<int> ExecuteDecodePair(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids,
                                int32_t n, int32_t i) {
  auto op_of = [&](int32_t k) {
    return k < n && g.nodes != nullptr && ids[k] >= 0 && ids[k] < g.n_nodes
               ? RawEnum(backend::ReadAbiStruct(g.nodes, ids[k]).op)
               : -1;
  };
  const int op = op_of(i);
  if (!dev->fuse_pairs || (op != TSR_OP_ROPE && op != TSR_OP_KV_WRITE) || op_of(i + 1) != op)
    return 0;
  auto ln = std::make_unique<LoadedNode[]>(2);
  std::vector<Range> reads[2];
  Range writes[2];
  for (int j = 0; j < 2; ++j) {
    if (!LoadNode(dev, g, ids[i + j], /*with_data=*/true, &ln[j]).ok() ||
        !ValidateOp(ln[j].args).ok())
      return 0;
    ln[j].args.rec = dev;
    for (int k = 0; k < ln[j].args.n_in; ++k) {
      if (ln[j].args.in[k] != nullptr) reads[j].push_back(Extent(*ln[j].args.in[k]));
    }
    writes[j] = Extent(*ln[j].args.out);
  }
  const bool clash = Overlaps(reads[0], writes[1]) || Overlaps(reads[1], writes[0]) ||
                     Overlaps({writes[0]}, writes[1]);
  if (clash || !PairableOps(ln[0].args, ln[1].args)) return 0;
  // A KV_WRITE reads its own cache (in place), which overlaps what it writes: fine within
  // one node, as when it runs alone.
  std::vector<Range> all = reads[0];
  all.insert(all.end(), reads[1].begin(), reads[1].end());
  TSR_RETURN_IF_ERROR(RunTracked(dev, all, {writes[0], writes[1]},
                                 [&] { return RunPair(ln[0].args, ln[1].args); }));
  return 2;
}

// A decode step's k ROPE, its KV_WRITE, the v KV_WRITE and the PAGED_ATTENTION after them as one
// attention dispatch (run_ops.cc RunRopeKvAttention; vk27-kv): 4 when it ran, 0 when the nodes do
// not fit it (ExecuteRopeKv and the attention then run as before).
StatusOr<int> ExecuteRopeKvAttention(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids,
                                     int32_t n, int32_t i) {
  if (!dev->fuse_kv_attn || !dev->fuse_rope_kv || !IsOp(g, ids, n, i, TSR_OP_ROPE) ||
      !IsOp(g, ids, n, i + 1, TSR_OP_KV_WRITE) || !IsOp(g, ids, n, i + 2, TSR_OP_KV_WRITE) ||
      !IsOp(g, ids, n, i + 3, TSR_OP_PAGED_ATTENTION))
    return 0;
  auto ln = std::make_unique<LoadedNode[]>(4);
  for (int j = 0; j < 4; ++j) {
    if (!LoadNode(dev, g, ids[i + j], /*with_data=*/true, &ln[j]).ok() ||
        !ValidateOp(ln[j].args).ok())
      return 0;
    ln[j].args.rec = dev;
  }
  const OpArgs &r = ln[0].args, &kk = ln[1].args, &kv = ln[2].args, &at = ln[3].args;
  if (!RopeKvAttentionFusable(r, kk, kv, at)) return 0;
  // What it reads besides the caches, what it writes: neither may overlap the other, and the
  // caches overlap neither (the kernel writes one slot of each and reads the others).
  std::vector<Range> small = {Extent(*r.in[0]),  Extent(*r.in[1]),  Extent(*r.in[2]),
                              Extent(*kk.in[2]), Extent(*kv.in[1]), Extent(*kv.in[2])};
  for (int j = 0; j < at.n_in; ++j)
    if (j != 1 && j != 2) small.push_back(Extent(*at.in[j]));
  const Range ck = Extent(*kk.out), cv = Extent(*kv.out), ro = Extent(*r.out), ao = Extent(*at.out);
  if (Overlaps(small, ck) || Overlaps(small, cv) || Overlaps(small, ro) || Overlaps(small, ao) ||
      Overlaps({ck, cv}, ro) || Overlaps({ck, cv}, ao) || Overlaps({ck}, cv))
    return 0;
  // The RoPE's output is written only where it is not the attention output's memory: there the
  // plan has it dead once the KV_WRITE has read it (the attention overwrites it), and the fused
  // dispatch writes both at once.
  const bool rope_out = !Overlaps({ro}, ao);
  std::vector<Range> reads = small, writes = {ck, cv, ao};
  if (rope_out) writes.push_back(ro);
  reads.insert(reads.end(), {ck, cv});
  TSR_RETURN_IF_ERROR(
      RunTracked(dev, reads, writes, [&] { return RunRopeKvAttention(r, kk, kv, at, rope_out); }));
  return 4;
}

// Decode fusion (Recorder::fuse_decode): a ROPE (a layer's k), the in-place KV_WRITE of its
// output into the k cache and, when it follows, the v cache's KV_WRITE run as one rope.comp
// dispatch (run_ops.cc RunRopeKv): the RoPE stores each rotated value to its output and to the
// cache, so both have the bits of the nodes run apart. No part may write what another reads or
// writes (the RoPE's own in-place input and a cache's in-place read aside). Returns how many
// nodes ran (0: no pattern).
StatusOr<int> ExecuteRopeKv(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n,
                            int32_t i) {
  if (!dev->fuse_rope_kv || !IsOp(g, ids, n, i, TSR_OP_ROPE) ||
      !IsOp(g, ids, n, i + 1, TSR_OP_KV_WRITE))
    return 0;
  const int count = IsOp(g, ids, n, i + 2, TSR_OP_KV_WRITE) ? 3 : 2;
  auto ln = std::make_unique<LoadedNode[]>(3);
  for (int j = 0; j < count; ++j) {
    if (!LoadNode(dev, g, ids[i + j], /*with_data=*/true, &ln[j]).ok() ||
        !ValidateOp(ln[j].args).ok())
      return 0;
    ln[j].args.rec = dev;
  }
  const OpArgs* kv2 = count == 3 ? &ln[2].args : nullptr;
  if (!RopeKvFusable(ln[0].args, ln[1].args, kv2)) return 0;
  const OpArgs& r = ln[0].args;
  const Range x = Extent(*r.in[0]), out = Extent(*r.out), ck = Extent(*ln[1].args.out);
  std::vector<Range> small = {Extent(*r.in[1]), Extent(*r.in[2]), Extent(*ln[1].args.in[2])};
  std::vector<Range> reads = small, writes = {out, ck};
  reads.push_back(x);
  reads.push_back(ck);
  bool clash = Overlaps(small, out) || Overlaps(small, ck) || Overlaps({x, out}, ck);
  if (kv2 != nullptr) {
    const Range cv = Extent(*kv2->out), rv = Extent(*kv2->in[1]), sv = Extent(*kv2->in[2]);
    clash = clash || Overlaps({rv, sv, cv}, out) || Overlaps({rv, sv, cv}, ck) ||
            Overlaps(reads, cv) || Overlaps({out}, cv);
    reads.insert(reads.end(), {rv, sv, cv});
    writes.push_back(cv);
  }
  if (clash) return 0;
  TSR_RETURN_IF_ERROR(
      RunTracked(dev, reads, writes, [&] { return RunRopeKv(r, ln[1].args, kv2); }));
  return count;
}

// L2 warm-up (tsr_device::l2_warm): after the nodes [i, i + ran) were recorded, records
// l2_warm.comp over the weights of the next decode MATMUL(s) (up to kMaxWarmRanges consecutive
// ones, found within kWarmLookahead nodes, l2_warm_min_bytes together) with no barrier before it,
// so it runs beside those nodes' dispatch and the MATMUL (after its own barrier, which waits for
// all earlier work) reads them from L2. A hint only: it reads memory no node between writes (the
// weights of MATMULs whose x is at most 32 rows: decode) and writes only the sink, which nothing
// reads, so every node's output keeps its bits. Returns OK without recording where nothing
// qualifies.
Status MaybeWarmL2(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n,
                   int32_t i, int32_t ran) {
  constexpr int kWarmLookahead = 4, kMaxWarmRanges = 4;
  bool has_matmul = false;
  for (int32_t k = i; k < i + ran; ++k)
    has_matmul = has_matmul || IsOp(g, ids, n, k, TSR_OP_MATMUL);
  bool attention = false;  // (ExecuteRopeKvAttention's group ends with the attention)
  for (int32_t k = i; k < i + ran; ++k)
    attention = attention || IsOp(g, ids, n, k, TSR_OP_ATTENTION) ||
                IsOp(g, ids, n, k, TSR_OP_PAGED_ATTENTION);
  // A lone GEMV (o, down; with its residual ADD): bit 8; other groups with a MATMUL: bit 4.
  const bool lone = IsOp(g, ids, n, i, TSR_OP_MATMUL) &&
                    (ran == 1 || (ran == 2 && IsOp(g, ids, n, i + 1, TSR_OP_ADD)));
  const int bit = has_matmul ? (lone ? 8 : 4) : (attention ? 1 : 2);
  if (has_matmul) dev->l2_warm_target = 0;  // a GEMV ran: the next warm starts afresh
  if ((dev->l2_warm & bit) == 0) return OkStatus();
  // Outputs of the nodes before the target: the weights must not be among them (nor among
  // what the dispatches since the last barrier write: they may still be running).
  std::vector<Range> written = dev->writes_since;
  auto ln = std::make_unique<LoadedNode>();
  int32_t k = i + ran;
  for (; k < n && k < i + ran + kWarmLookahead && !IsOp(g, ids, n, k, TSR_OP_MATMUL); ++k) {
    if (!LoadNode(dev, g, ids[k], /*with_data=*/true, ln.get()).ok() || ln->args.out == nullptr)
      return OkStatus();
    written.push_back(Extent(*ln->args.out));
  }
  Range ranges[kMaxWarmRanges];
  int nr = 0;
  for (; nr < kMaxWarmRanges && IsOp(g, ids, n, k + nr, TSR_OP_MATMUL); ++nr) {
    if (!LoadNode(dev, g, ids[k + nr], /*with_data=*/true, ln.get()).ok()) break;
    const OpArgs& a = ln->args;
    if (a.n_in < 2 || a.in[0] == nullptr || a.in[1] == nullptr || a.out == nullptr ||
        a.in[0]->Rows() > 32)
      break;
    const Range w = Extent(*a.in[1]);
    if (w.hi == UINT64_MAX || w.hi <= w.lo || Overlaps(written, w)) break;
    ranges[nr] = w;
    written.push_back(Extent(*a.out));
  }
  uint64_t target_bytes = 0;
  for (int j = 0; j < nr; ++j) target_bytes += ranges[j].hi - ranges[j].lo;
  if (nr == 0 || target_bytes < dev->l2_warm_min_bytes) return OkStatus();
  // A later trigger before the same target continues where the last warm stopped.
  uint64_t skip = 0;
  if (ranges[0].lo == dev->l2_warm_target) skip = dev->l2_warm_done;
  uint64_t budget = bit == 2 ? dev->l2_warm_small_bytes : dev->l2_warm_bytes;
  L2WarmP p;
  p.stride = dev->l2_warm_stride;
  uint64_t covered = skip;
  for (int j = 0; j < nr && budget > 0; ++j) {
    uint64_t lo = ranges[j].lo, hi = ranges[j].hi;
    const uint64_t drop = std::min(skip, hi - lo);
    skip -= drop;
    lo += drop;
    hi = std::min(hi, lo + budget);
    if (hi <= lo) continue;
    budget -= hi - lo;
    covered += hi - lo;
    const uint64_t lo4 = lo & ~uint64_t{3};  // buffers start aligned: still inside this one
    if (hi - lo4 < 4) continue;
    p.base[p.n] = lo4;
    p.words[p.n] = (hi - lo4 - 4) / p.stride + 1;
    ++p.n;
  }
  dev->l2_warm_target = ranges[0].lo;
  dev->l2_warm_done = covered;
  if (p.n == 0) return OkStatus();
  if (!dev->l2_sink) {
    ++dev->replay_gen;
    TSR_ASSIGN_OR_RETURN(dev->l2_sink, CreateBuffer(dev, 4096 * 4, MemUse::kDevice));
  }
  p.sink = reinterpret_cast<uintptr_t>(dev->l2_sink->data);
  p.sink_mask = 4095;
  p.magic = 0x5eed1e55u;
  dev->node_dispatches = 0;  // no barrier: it runs beside the dispatch just recorded
  TSR_RETURN_IF_ERROR(dev->Dispatch(Shader::kL2Warm, &p, sizeof(p), dev->l2_warm_groups, 1, 1));
  // Noted as read, so a node that writes the weights (none does) would wait for it.
  for (int j = 0; j < nr; ++j) dev->reads_since.push_back(ranges[j]);
  return OkStatus();
}

// An execute's node loop: recorded directly (with partial submissions: the GPU starts on the
// first nodes while the rest are recorded; the first one comes early, so the GPU waits little
// for the host; later periods grow, since the host records ~8x faster than the GPU runs a
// decode step's dispatches and every submission costs the GPU some idle), or the replay's key
// pass (dev->keying: nothing recorded or submitted).
Status RunNodes(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n,
                TimePoint t0) {
  int period = dev->first_submit;
  for (int32_t i = 0; i < n;) {
    if (!dev->keying && dev->submit_every > 0 && !(dev->prof && dev->prof->per_dispatch) &&
        dev->recording && dev->cmd_dispatches >= period) {
      TSR_RETURN_IF_ERROR(Flush(dev));
      if (dev->prof && dev->execute_submits == 0) {
        dev->prof->first_submit.Add(NsSince(t0));
      }
      period = dev->execute_submits == 0
                   ? dev->submit_every
                   : static_cast<int>(std::min<int64_t>(int64_t{period} * dev->submit_ramp,
                                                        std::numeric_limits<int>::max()));
      ++dev->execute_submits;
    }
    StatusOr<int> grouped = ExecuteNormGemv(dev, g, ids, n, i);
    if (grouped.ok() && *grouped == 0) grouped = ExecuteDecodeGroup(dev, g, ids, n, i);
    if (grouped.ok() && *grouped == 0) grouped = ExecuteDecodeResidual(dev, g, ids, n, i);
    if (grouped.ok() && *grouped == 0) grouped = ExecuteDecodePair(dev, g, ids, n, i);
    if (grouped.ok() && *grouped == 0) grouped = ExecuteRopeKvAttention(dev, g, ids, n, i);
    if (grouped.ok() && *grouped == 0) grouped = ExecuteRopeKv(dev, g, ids, n, i);
    Status s = grouped.status();
    int ran = s.ok() ? *grouped : 0;
    if (s.ok() && ran == 0) s = ExecuteNode(dev, g, ids[i]), ran = 1;
    if (s.ok() && dev->l2_warm != 0) s = MaybeWarmL2(dev, g, ids, n, i, ran);
    if (!s.ok()) {
      // What was recorded before the failing node still runs, in order.
      if (!dev->keying) (void)Flush(dev);
      return backend::NodeFailure(g, ids[i], s);
    }
    i += ran;
  }
  return OkStatus();
}

// Replay (tsr_device::ReplayEntry): whether `e` may still run on the GPU (its submission's fence
// not yet waited for, or not yet submitted).
bool ReplayPending(const tsr_device& dev, const tsr_device::ReplayEntry& e) {
  if (e.slot < 0) return false;
  const uint64_t done = dev.slot_serial[e.slot];
  return (dev.slot_pending[e.slot] && e.serial == done) ||
         (dev.recording && e.slot == dev.slot && e.serial == done + 1);
}

void DestroyReplay(tsr_device* dev, tsr_device::ReplayEntry* e) {
  if (e->cmd != VK_NULL_HANDLE) dev->vk->vkFreeCommandBuffers(dev->device, dev->pool, 1, &e->cmd);
  e->cmd = VK_NULL_HANDLE;
  if (e->params) DestroyBuffer(dev, e->params.get());
  e->params.reset();
}

// Whether dev->key missed before recently (remembered by hash; records it): only a key that
// comes back (a decode step) gets an entry.
bool ReplayMissedBefore(tsr_device* dev) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the words
  for (uint64_t w : dev->key) h = (h ^ w) * 1099511628211ull;
  h |= 1;  // 0 marks an empty slot
  for (uint64_t m : dev->replay_misses)
    if (m == h) return true;
  dev->replay_misses[dev->replay_next_miss] = h;
  dev->replay_next_miss = (dev->replay_next_miss + 1) % tsr_device::kReplayMissHistory;
  return false;
}

// Records dev->key's commands into a new entry's secondary command buffer, the parameter blocks
// in the entry's own host-visible buffer (device-local where the ring is). Replaces the least
// recently used entry when full (none that may still run: then nothing is added).
StatusOr<tsr_device::ReplayEntry*> AddReplay(tsr_device* dev) {
  const std::vector<uint64_t>& key = dev->key;
  uint64_t bytes = 0;
  for (size_t i = 0; i < key.size();) {
    if (key[i] == kKeyBarrier) {
      ++i;
      continue;
    }
    const uint64_t size = key[i + 2] >> 32;
    bytes += ParamBlockBytes(size);
    i += 3 + KeyParamWords(size);
  }
  if (dev->replays.size() >= tsr_device::kMaxReplays) {
    auto lru =
        std::min_element(dev->replays.begin(), dev->replays.end(),
                         [](const tsr_device::ReplayEntry& a, const tsr_device::ReplayEntry& b) {
                           return a.last_used < b.last_used;
                         });
    if (ReplayPending(*dev, *lru)) return Internal("replay: every entry may still run");
    DestroyReplay(dev, &*lru);
    dev->replays.erase(lru);
    dev->replay_last = -1;
  }
  tsr_device::ReplayEntry e;
  const VkApi& vk = *dev->vk;
  auto fail = [&](Status s) {
    DestroyReplay(dev, &e);
    return s;
  };
  const bool vram = (dev->ring->flags & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) != 0;
  auto params = CreateBuffer(dev, std::max<uint64_t>(bytes, 64),
                             vram ? MemUse::kHostToDevice : MemUse::kHost);
  if (!params.ok() && vram)
    params = CreateBuffer(dev, std::max<uint64_t>(bytes, 64), MemUse::kHost);
  if (!params.ok()) return params.status();
  e.params = std::move(*params);
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = dev->pool;
  ai.level = VK_COMMAND_BUFFER_LEVEL_SECONDARY;
  ai.commandBufferCount = 1;
  if (Status s = VkStatus(vk.vkAllocateCommandBuffers(dev->device, &ai, &e.cmd),
                          "vkAllocateCommandBuffers");
      !s.ok()) {
    e.cmd = VK_NULL_HANDLE;
    return fail(s);
  }
  VkCommandBufferInheritanceInfo inherit{VK_STRUCTURE_TYPE_COMMAND_BUFFER_INHERITANCE_INFO};
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  bi.pInheritanceInfo = &inherit;
  if (Status s = VkStatus(vk.vkBeginCommandBuffer(e.cmd, &bi), "vkBeginCommandBuffer"); !s.ok())
    return fail(s);
  uint64_t off = 0;
  for (size_t i = 0; i < key.size();) {
    if (key[i] == kKeyBarrier) {
      RecordBarrierInto(dev, e.cmd);
      e.barriers += 1;
      ++i;
      continue;
    }
    const auto shader = static_cast<Shader>(key[i] & 0xffffffffu);
    const auto gx = static_cast<uint32_t>(key[i + 1]), gy = static_cast<uint32_t>(key[i + 1] >> 32);
    const auto gz = static_cast<uint32_t>(key[i + 2]);
    const uint64_t size = key[i + 2] >> 32;
    StatusOr<VkPipeline> pipeline = GetPipeline(dev, shader);
    if (!pipeline.ok()) return fail(pipeline.status());
    // As Dispatch fills the ring: the block's bytes, at least the error word's address.
    std::memcpy(e.params->mapped + off, key.data() + i + 3, std::max<uint64_t>(size, 8));
    const uint64_t addr = reinterpret_cast<uintptr_t>(e.params->data) + off;
    off += ParamBlockBytes(size);
    vk.vkCmdBindPipeline(e.cmd, VK_PIPELINE_BIND_POINT_COMPUTE, *pipeline);
    vk.vkCmdPushConstants(e.cmd, dev->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(addr), &addr);
    vk.vkCmdDispatch(e.cmd, gx, gy, gz);
    e.dispatches += 1;
    i += 3 + KeyParamWords(size);
  }
  if (Status s = VkStatus(vk.vkEndCommandBuffer(e.cmd), "vkEndCommandBuffer"); !s.ok())
    return fail(s);
  e.key = key;
  dev->replays.push_back(std::move(e));
  return &dev->replays.back();
}

// Whether this execute is, byte for byte, the one entry `e` was keyed from, from the same
// tracking state and buffer generation (ReplayEntry::fast).
bool SameAsKeyed(const tsr_device& dev, const tsr_device::ReplayEntry& e, const tsr_graph_view& g,
                 const int32_t* ids, int32_t n) {
  return e.fast && e.gen == dev.replay_gen && e.ids.size() == static_cast<size_t>(n) &&
         e.l2_target0 == dev.l2_warm_target && e.l2_done0 == dev.l2_warm_done &&
         std::memcmp(e.ids.data(), ids, sizeof(int32_t) * static_cast<size_t>(n)) == 0 &&
         e.reads0 == dev.reads_since && e.writes0 == dev.writes_since &&
         SameBytes(e.nodes, g.nodes, AbiArrayBytes(g.nodes, g.n_nodes)) &&
         SameBytes(e.tensors, g.tensors, AbiArrayBytes(g.tensors, g.n_tensors));
}

// The tracking state an execute starts from and leaves (what the key pass reads and changes
// besides the key).
struct TrackState {
  std::vector<Range> reads, writes;
  uint64_t l2_target = 0, l2_done = 0;
};

TrackState SaveTrack(const tsr_device& dev) {
  return {dev.reads_since, dev.writes_since, dev.l2_warm_target, dev.l2_warm_done};
}

void LoadTrack(tsr_device* dev, TrackState t) {
  dev->reads_since = std::move(t.reads);
  dev->writes_since = std::move(t.writes);
  dev->l2_warm_target = t.l2_target;
  dev->l2_warm_done = t.l2_done;
}

// The key pass from the current tracking state: dev->key, and the state after it. Whether the
// key is usable (every node keyed, no scratch growth on the way).
bool KeyPass(tsr_device* dev, const tsr_graph_view& g, const int32_t* ids, int32_t n) {
  const auto t0 = dev->prof ? std::chrono::steady_clock::now() : TimePoint{};
  dev->key.clear();
  dev->key_broken = false;
  dev->keying = true;
  const Status keyed = RunNodes(dev, g, ids, n, t0);
  dev->keying = false;
  if (dev->prof) dev->prof->key_pass.Add(NsSince(t0));
  return keyed.ok() && !dev->key_broken && !dev->key.empty();
}

// The entry of dev->key: found, or recorded now where the key missed before (ReplayMissedBefore);
// nullptr otherwise (also where every entry may still run and none can be replaced).
tsr_device::ReplayEntry* EntryForKey(tsr_device* dev) {
  for (tsr_device::ReplayEntry& c : dev->replays) {
    if (c.key.size() == dev->key.size() &&
        std::memcmp(c.key.data(), dev->key.data(), dev->key.size() * sizeof(uint64_t)) == 0)
      return &c;
  }
  if (!ReplayMissedBefore(dev)) return nullptr;
  StatusOr<tsr_device::ReplayEntry*> made = AddReplay(dev);
  if (!made.ok()) return nullptr;
  ++dev->replay_recorded;
  return *made;
}

// Makes `e` the fast path's entry for this view from state s0 (leaving s1).
void SetFast(tsr_device* dev, tsr_device::ReplayEntry* e, const tsr_graph_view& g,
             const int32_t* ids, int32_t n, TrackState s0, TrackState s1) {
  const auto* nb = reinterpret_cast<const uint8_t*>(g.nodes);
  const auto* tb = reinterpret_cast<const uint8_t*>(g.tensors);
  e->nodes.assign(nb, nb + AbiArrayBytes(g.nodes, g.n_nodes));
  e->tensors.assign(tb, tb + AbiArrayBytes(g.tensors, g.n_tensors));
  e->ids.assign(ids, ids + n);
  e->reads0 = std::move(s0.reads), e->writes0 = std::move(s0.writes);
  e->l2_target0 = s0.l2_target, e->l2_done0 = s0.l2_done;
  e->reads1 = std::move(s1.reads), e->writes1 = std::move(s1.writes);
  e->l2_target1 = s1.l2_target, e->l2_done1 = s1.l2_done;
  e->gen = dev->replay_gen;
  e->fast = true;
}

// A key pass that found no entry (a key that may not come back): from 4 in a row on, the next
// 2^(n - 4) (at most 64) executes skip it.
void KeyFailed(tsr_device* dev) {
  ++dev->replay_direct;
  if (++dev->replay_fails >= 4) dev->replay_backoff = 1 << std::min(dev->replay_fails - 4, 6);
}

// Executes entry `e` in the live command buffer, leaving the tracking state `after`.
Status ReplayEntryNow(tsr_device* dev, tsr_device::ReplayEntry* e, TrackState after) {
  TSR_RETURN_IF_ERROR(Begin(dev));  // open since the execute's start: a no-op
  dev->vk->vkCmdExecuteCommands(dev->cmd, 1, &e->cmd);
  LoadTrack(dev, std::move(after));
  e->slot = dev->slot;
  e->serial = dev->slot_serial[dev->slot] + 1;  // the live buffer's coming submission
  e->last_used = ++dev->replay_clock;
  dev->replay_last = static_cast<int>(e - dev->replays.data());
  dev->replay_fails = 0;
  ++dev->replay_hits;
  if (dev->prof) {
    dev->prof->dispatches += e->dispatches;
    dev->prof->barriers += e->barriers;
  }
  return OkStatus();
}

tsr_status Execute(tsr_device* dev, const tsr_graph_view* graph, const int32_t* node_ids,
                   int32_t n_node_ids, tsr_event* done, tsr_error* err) {
  if (dev == nullptr || !ViewOk(graph) || (node_ids == nullptr && n_node_ids > 0))
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "execute: NULL or malformed argument");
  dev->execute_submits = 0;
  dev->exec_sig = {graph->tensors, graph->nodes, node_ids, n_node_ids};
  const auto t0 = dev->prof ? std::chrono::steady_clock::now() : TimePoint{};
  if (dev->prof) {
    Profile& pr = *dev->prof;
    pr.exec_start_pending = pr.in_execute = true;
    pr.executes += 1;
    if (pr.after_download) {
      pr.between.Add(std::chrono::duration<double, std::nano>(t0 - pr.download_end).count());
      pr.step_uploads.Add(pr.upload_ns);
      pr.after_download = false;
    }
  }
  // Replay (tsr_device::ReplayEntry). The fast path: an entry keyed from this very view, state
  // and generation replays at once. Otherwise the execute runs directly (the GPU starts on its
  // first nodes at once) and its key pass follows the last submission, from the state the
  // execute started in, while the GPU runs: the entry found or recorded for that key takes the
  // fast path from then on. TESSERA_VULKAN_REPLAY=2 (a test knob): no fast path; the key pass
  // comes first and a found key replays.
  bool replayed = false, key_after = false;
  TrackState s0;
  if (dev->replay_on && n_node_ids > 0) {
    if (Status s = Begin(dev); !s.ok()) return FromStatus(s, err);
    s0 = SaveTrack(*dev);
    tsr_device::ReplayEntry* e = nullptr;
    if (dev->replay_fast_on) {
      const auto tf = dev->prof ? std::chrono::steady_clock::now() : TimePoint{};
      const int last = dev->replay_last;
      if (last >= 0 &&
          SameAsKeyed(*dev, dev->replays[static_cast<size_t>(last)], *graph, node_ids, n_node_ids))
        e = &dev->replays[static_cast<size_t>(last)];
      for (size_t k = 0; e == nullptr && k < dev->replays.size(); ++k) {
        if (static_cast<int>(k) != last &&
            SameAsKeyed(*dev, dev->replays[k], *graph, node_ids, n_node_ids))
          e = &dev->replays[k];
      }
      if (dev->prof) dev->prof->fast_check.Add(NsSince(tf));
      if (e != nullptr && ReplayPending(*dev, *e)) {
        ++dev->replay_pending;  // direct; its key is e's already
      } else if (e != nullptr) {
        TrackState s1{e->reads1, e->writes1, e->l2_target1, e->l2_done1};
        if (Status s = ReplayEntryNow(dev, e, std::move(s1)); !s.ok()) return FromStatus(s, err);
        ++dev->replay_fast;
        replayed = true;
      } else if (dev->replay_backoff > 0) {
        --dev->replay_backoff;
        ++dev->replay_skipped;
      } else {
        key_after = true;
      }
    } else if (KeyPass(dev, *graph, node_ids, n_node_ids)) {
      e = EntryForKey(dev);
      if (e != nullptr && ReplayPending(*dev, *e)) e = nullptr, ++dev->replay_pending;
      if (e != nullptr) {
        if (Status s = ReplayEntryNow(dev, e, SaveTrack(*dev)); !s.ok()) return FromStatus(s, err);
        replayed = true;
      } else {
        LoadTrack(dev, s0);
        ++dev->replay_direct;
      }
    } else {
      LoadTrack(dev, s0);
      KeyFailed(dev);
    }
  }
  if (!replayed) {
    if (Status s = RunNodes(dev, *graph, node_ids, n_node_ids, t0); !s.ok())
      return FromStatus(s, err);
  }
  Status flushed = RecordEagerCopy(dev);
  if (flushed.ok()) flushed = Flush(dev);
  if (dev->prof) {
    Profile& pr = *dev->prof;
    pr.execute_ns.push_back(NsSince(t0));
    pr.in_execute = false;
    if (dev->execute_submits == 0) {
      pr.first_submit.Add(pr.execute_ns.back());
    }
  }
  if (flushed.ok() && key_after) {
    // The key pass from the execute's starting state, after its last submission.
    TrackState now = SaveTrack(*dev);
    LoadTrack(dev, s0);
    const bool keyed = KeyPass(dev, *graph, node_ids, n_node_ids);
    TrackState s1 = SaveTrack(*dev);
    LoadTrack(dev, std::move(now));
    tsr_device::ReplayEntry* e = keyed ? EntryForKey(dev) : nullptr;
    if (e != nullptr) {
      SetFast(dev, e, *graph, node_ids, n_node_ids, std::move(s0), std::move(s1));
      dev->replay_fails = 0;
    } else {
      KeyFailed(dev);
    }
  }
  return FromStatus(flushed, err);
}

tsr_plugin_api MakeApi() {
  tsr_plugin_api api = backend::NewApiTable("vulkan", "Tessera Vulkan backend", "0.1.0");
  TESSERA_BACKEND_FILL_DEVICE_API(api, Guarded);
  api.host_alloc = Guarded<HostAlloc>::Call;
  api.host_free = HostFree;
  return api;
}

const tsr_plugin_api kApi = MakeApi();

}  // namespace
}  // namespace tessera::vulkan

// Touches no device and loads no driver: whether a GPU is usable is answered by device_count and
// absence_reason, which `engine devices -v` prints.
TESSERA_BACKEND_PLUGIN_ENTRY_POINTS(tessera::vulkan::kBackend, tessera::vulkan::kApi, 100)
