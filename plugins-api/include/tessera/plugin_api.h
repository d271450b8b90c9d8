/*
 * Tessera backend plugin ABI.
 *
 * The one boundary between the engine (host) and a backend plugin (a shared library). Pure C:
 * opaque handles, plain-data views, an error struct. No C++ type, exception or core struct
 * layout crosses it.
 *
 * Versioning (stable since 1.0; docs/plugin-guide.md section 3)
 *   Every struct starts with `struct_size` (bytes, as the writer compiled it). Fields are only
 *   appended within a major version, never removed, moved or retyped; a reader never reads past
 *   the `struct_size` it was handed and treats missing trailing fields as zero/NULL.
 *   A host loads a plugin whose table has the host's major and any minor >= TSR_ABI_MINOR_FLOOR
 *   (0: every 1.x), older or newer than its own: an older plugin's newer entries read as NULL
 *   (the host then does without them), a newer plugin's extra entries are not read. Another
 *   major is rejected with a readable reason. Which optional entries exist is decided by
 *   `struct_size` and NULL, not by comparing minors. tests/plugins/abi_compat keeps a plugin
 *   built against the frozen 1.0 header loading and running.
 *   1.0  the first stable ABI (the 0.x table, unchanged).
 *   1.1  tsr_plugin_api.device_memory_info: live free/total memory of an open device.
 *   1.2  tsr_plugin_api.host_alloc / host_free: host memory the device transfers fastest
 *        (page-locked), for the host's large download/upload destinations.
 *   1.3  TSR_OP_ARGMAX (a new op; older plugins decline it in supports_op, and the host runs it
 *        elsewhere).
 *
 * Entry points (exported with default visibility; everything else in a plugin is hidden)
 *   tsr_plugin_init   (required) host API in, function table out. See tsr_plugin_init_fn.
 *   tsr_plugin_probe  (optional) cheap score, touches no device and runs no ISA-specific code:
 *                     the loader uses it to pick the best of several builds sharing one id.
 *
 * Threading
 *   Unless a function says otherwise, calls on one tsr_device are serialized by the host;
 *   different devices may be driven from different threads at once. The host log callback is
 *   thread-safe.
 *
 * Memory
 *   Strings and arrays a plugin returns through the table (ids, names, props) stay valid until
 *   the object they describe is destroyed. Blobs returned by serialize are freed with free_blob.
 *
 * Tensor layout
 *   Row-major: ne[0] is the outermost dimension and ne[ndim-1] the innermost. nb[i] is the stride
 *   of dimension i in BYTES. A tensor is contiguous when nb[ndim-1] == element size and
 *   nb[i] == nb[i+1] * ne[i+1]. Block-quantized tensors (TSR_DTYPE_Q8_B32, TSR_DTYPE_Q4_B32)
 *   are always contiguous along the innermost dimension, whose length is a multiple of 32; their
 *   nb[ndim-1] is 0 and nb[ndim-2] is the byte size of one row of blocks.
 */
#ifndef TESSERA_PLUGIN_API_H_
#define TESSERA_PLUGIN_API_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TSR_ABI_MAJOR 1
#define TSR_ABI_MINOR 3
/* The oldest minor of this major the host still accepts: every 1.x. */
#define TSR_ABI_MINOR_FLOOR 0

#if defined(_WIN32)
#define TSR_PLUGIN_EXPORT __declspec(dllexport)
#else
#define TSR_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

#define TSR_MAX_DIMS 6
#define TSR_MAX_INPUTS 8
#define TSR_MAX_PARAMS 8
#define TSR_ERROR_MESSAGE_SIZE 512

typedef int32_t tsr_bool;

/* ---------------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------------- */

typedef enum tsr_status {
  TSR_OK = 0,
  TSR_ERR_UNIMPLEMENTED = 1,    /* this plugin does not implement the function */
  TSR_ERR_UNSUPPORTED = 2,      /* valid, but not on this device: the host falls back */
  TSR_ERR_INVALID_ARGUMENT = 3, /* the host passed something malformed */
  TSR_ERR_OUT_OF_MEMORY = 4,    /* device or host allocation failed */
  TSR_ERR_DEVICE = 5,           /* the driver or device failed */
  TSR_ERR_NOT_FOUND = 6,        /* index or key out of range */
  TSR_ERR_INTERNAL = 7          /* a bug in the plugin */
} tsr_status;

/* Filled by the plugin when a call fails. Owned by the caller; may be NULL (then the plugin
 * only returns the code). */
typedef struct tsr_error {
  uint32_t struct_size;
  tsr_status code;
  char message[TSR_ERROR_MESSAGE_SIZE]; /* NUL-terminated, human-readable, no trailing newline */
} tsr_error;

/* ---------------------------------------------------------------------------------------------
 * Data types
 * ------------------------------------------------------------------------------------------- */

typedef enum tsr_dtype {
  TSR_DTYPE_F32 = 0,
  TSR_DTYPE_F16 = 1,  /* IEEE 754 binary16 */
  TSR_DTYPE_BF16 = 2, /* upper 16 bits of an IEEE binary32 */
  TSR_DTYPE_I32 = 3,
  TSR_DTYPE_I64 = 4,
  TSR_DTYPE_I8 = 5,
  TSR_DTYPE_U8 = 6,
  TSR_DTYPE_Q8_B32 = 7, /* 8-bit blocks of 32 values: see tessera/quant_formats.h */
  TSR_DTYPE_Q4_B32 = 8, /* 4-bit blocks of 32 values: see tessera/quant_formats.h */
  TSR_DTYPE_COUNT = 9
} tsr_dtype;

/* ---------------------------------------------------------------------------------------------
 * Opaque handles. Each is created and destroyed by the plugin.
 * ------------------------------------------------------------------------------------------- */

typedef struct tsr_plugin_ctx tsr_plugin_ctx; /* one per loaded plugin */
typedef struct tsr_device tsr_device;         /* an opened device */
typedef struct tsr_buffer tsr_buffer;         /* device memory (or imported host memory) */
typedef struct tsr_event tsr_event;           /* completion of queued work */
typedef struct tsr_executable tsr_executable; /* a compiled subgraph (compile style) */

/* ---------------------------------------------------------------------------------------------
 * Host services and options
 * ------------------------------------------------------------------------------------------- */

typedef enum tsr_log_level {
  TSR_LOG_TRACE = 0,
  TSR_LOG_DEBUG = 1,
  TSR_LOG_INFO = 2,
  TSR_LOG_WARN = 3,
  TSR_LOG_ERROR = 4
} tsr_log_level;

/* What the host gives a plugin at init. Plugins log only through `log`: no private logging. */
typedef struct tsr_host_api {
  uint32_t struct_size;
  uint16_t abi_major; /* the host's ABI */
  uint16_t abi_minor;
  void* user; /* passed back to every callback */
  /* Thread-safe. `message` is copied before return. */
  void (*log)(void* user, tsr_log_level level, const char* message);
} tsr_host_api;

/* One key/value setting passed to a plugin (from `--backend-opt`, config files, settings).
 * Both strings are owned by the host and valid only during the call that receives them. */
typedef struct tsr_option {
  uint32_t struct_size;
  const char* key;
  const char* value;
} tsr_option;

/* ---------------------------------------------------------------------------------------------
 * Devices
 * ------------------------------------------------------------------------------------------- */

typedef enum tsr_device_kind {
  TSR_DEVICE_CPU = 0,
  TSR_DEVICE_GPU_DISCRETE = 1,
  TSR_DEVICE_GPU_INTEGRATED = 2,
  TSR_DEVICE_NPU = 3,
  TSR_DEVICE_OTHER = 4
} tsr_device_kind;

/* Capability bits in tsr_device_props.caps. */
#define TSR_CAP_F16 (1u << 0)         /* f16 arithmetic / storage */
#define TSR_CAP_BF16 (1u << 1)        /* bf16 storage used in kernels */
#define TSR_CAP_Q8 (1u << 2)          /* TSR_DTYPE_Q8_B32 weights */
#define TSR_CAP_Q4 (1u << 3)          /* TSR_DTYPE_Q4_B32 weights */
#define TSR_CAP_HOST_IMPORT (1u << 4) /* buffer_import_host works (zero-copy mmap'd weights) */
#define TSR_CAP_UNIFIED_MEMORY (1u << 5)
#define TSR_CAP_STATIC_SHAPES (1u << 6) /* compiled executables need fixed shapes (buckets) */
#define TSR_CAP_ASYNC (1u << 7)         /* uploads/executions may complete after return */
/* Compile style: the device computes in f16/int8 only. The host stores every f32 (and bf16)
 * tensor it places there as f16, converts at the boundary (copies, inputs, outputs, weights) and
 * serializes such tensors as DT_F16; block-quantized weights keep their dtype. */
#define TSR_CAP_NO_F32 (1u << 8)

typedef struct tsr_device_props {
  uint32_t struct_size;
  const char* name;        /* e.g. "AMD EPYC 9B14 (AVX-512)"; valid while the context lives */
  const char* description; /* free text: driver, ISA, compute capability */
  tsr_device_kind kind;
  uint32_t caps;         /* TSR_CAP_* bits */
  uint64_t memory_total; /* bytes; 0 if unknown */
  uint64_t memory_free;  /* bytes at the time of the call; 0 if unknown */
  int32_t compute_units; /* cores / SMs / EUs; 0 if unknown */
  uint32_t exec_styles;  /* TSR_EXEC_* bits this device accepts */
} tsr_device_props;

#define TSR_EXEC_KERNEL (1u << 0)  /* supports_op + execute */
#define TSR_EXEC_COMPILE (1u << 1) /* claim + compile + run_executable */

/* ---------------------------------------------------------------------------------------------
 * Buffers
 * ------------------------------------------------------------------------------------------- */

typedef struct tsr_buffer_type_props {
  uint32_t struct_size;
  const char* name;
  uint64_t alignment;    /* of offsets the host may place tensors at */
  uint64_t max_size;     /* largest single allocation; 0 = no limit known */
  tsr_bool host_visible; /* buffer_map returns a host pointer */
} tsr_buffer_type_props;

/* ---------------------------------------------------------------------------------------------
 * Graph view (kernel style): what a plugin is asked to run.
 * ------------------------------------------------------------------------------------------- */

typedef enum tsr_op {
  TSR_OP_NONE = 0,
  /* out[M.., N] f32 = in0[M.., K] (f32) x in1[N, K]^T (+ in2[N] f32 if given).
   * in1 may be F32, F16, BF16, Q8_B32 or Q4_B32 (a weight as stored by nn.Linear).
   * If in1 has 3 dims [B, N, K] then in0 is [B, M, K] (batched). */
  TSR_OP_MATMUL = 1,
  /* Elementwise, f32. in1 broadcasts to in0's shape (numpy rules, trailing dims aligned). */
  TSR_OP_ADD = 2,
  TSR_OP_SUB = 3,
  TSR_OP_MUL = 4,
  TSR_OP_DIV = 5,
  /* out = in0 * fparams[0] + fparams[1] */
  TSR_OP_SCALE = 6,
  /* Unary activations, f32. */
  TSR_OP_SILU = 7,
  TSR_OP_GELU = 8,      /* exact (erf) */
  TSR_OP_GELU_TANH = 9, /* tanh approximation */
  TSR_OP_RELU = 10,
  TSR_OP_TANH = 11,
  TSR_OP_SIGMOID = 12,
  TSR_OP_SOFTCAP = 13, /* out = fparams[0] * tanh(in0 / fparams[0]) */
  /* Gated units (fused; reference decomposition: MUL(act(in0), in1)). */
  TSR_OP_SWIGLU = 14, /* silu(in0) * in1 */
  TSR_OP_GEGLU = 15,  /* gelu_tanh(in0) * in1 */
  /* Normalization over the innermost dim. in1 = weight [D] (optional), in2 = bias [D].
   * RMS_NORM:   out = x / sqrt(mean(x^2) + fparams[0]) * (w + fparams[1])   (fparams[1]=1: Gemma)
   * LAYER_NORM: out = (x - mean) / sqrt(var + fparams[0]) * w + b */
  TSR_OP_RMS_NORM = 16,
  TSR_OP_LAYER_NORM = 17,
  /* in0 x[T, H, D] f32, in1 positions[T] i32, in2 inv_freq[R/2] f32 (R = iparams[1] rotated
   * dims, R <= D, the rest passes through). angle = pos * inv_freq[i];
   * iparams[0] = 0: "neox"/rotate_half pairs (i, i + R/2) as in HF Llama;
   *              1: interleaved pairs (2i, 2i+1) as in GPT-J.
   * cos/sin are multiplied by fparams[0] (attention scaling; 1.0 for plain RoPE). */
  TSR_OP_ROPE = 18,
  /* Softmax over the innermost dim of in0 * fparams[0] (+ in1 mask, broadcast) */
  TSR_OP_SOFTMAX = 19,
  /* Dense variable-length attention (encoders, prefill without cache).
   * in0 q[T, Hq, D], in1 k[Tk, Hkv, D], in2 v[Tk, Hkv, Dv], in3 cu_q[S+1] i32, in4 cu_k[S+1] i32.
   * out[T, Hq, Dv]. Hq % Hkv == 0 (grouped-query). iparams[0] causal (queries aligned to the end
   * of their keys), iparams[1] sliding window (0 = none; key j visible from query position p iff
   * p - j < window), fparams[0] scale, fparams[1] logit soft-cap (0 = none). */
  TSR_OP_ATTENTION = 20,
  /* Writes new rows into a paged cache, in place. in0 cache[NB, BS, Hkv, D], in1 rows[T, Hkv, D],
   * in2 slots[T] i32 (slot = block * BS + offset; -1 = skip). out aliases in0. */
  TSR_OP_KV_WRITE = 21,
  /* Causal attention over a paged KV cache. in0 q[T, Hq, D], in1 k_cache[NB, BS, Hkv, D],
   * in2 v_cache[NB, BS, Hkv, Dv], in3 block_table[S, MB] i32, in4 kv_lens[S] i32 (tokens in
   * the cache for each sequence, new ones included), in5 cu_q[S+1] i32. Query i of sequence s
   * sits at position kv_lens[s] - q_len(s) + i. Params as TSR_OP_ATTENTION. out[T, Hq, Dv]. */
  TSR_OP_PAGED_ATTENTION = 22,
  /* out[T, D] f32 = rows of in0 table[V, D] (any dtype) picked by in1 ids[T] i32. */
  TSR_OP_GET_ROWS = 23,
  /* out = in0 converted to out's dtype and layout (cast, dequantize, quantize, make contiguous). */
  TSR_OP_COPY = 24,
  /* out = concat(in0, in1) along iparams[0]. */
  TSR_OP_CONCAT = 25,
  /* in0 x[B, Cin, L], in1 w[Cout, Cin/groups, K], in2 bias[Cout] optional -> out[B, Cout, Lout].
   * iparams: 0 stride, 1 padding (both sides), 2 dilation, 3 groups. */
  TSR_OP_CONV1D = 26,
  /* in0 x[B, Cin, H, W], in1 w[Cout, Cin/groups, KH, KW], in2 bias optional -> out[B, Cout, Ho,
   * Wo]. iparams: 0 stride_h, 1 stride_w, 2 pad_h, 3 pad_w, 4 dilation_h, 5 dilation_w, 6 groups.
   */
  TSR_OP_CONV2D = 27,
  /* Reductions over the innermost dim, keeping it as size 1: out[..., 1]. */
  TSR_OP_SUM = 28,
  TSR_OP_MEAN = 29,
  TSR_OP_MAX = 30,
  /* out[..., 1] i32 = index of the largest f32 in0[..., N] value (N >= 1) over the innermost dim:
   * lowest index on ties, NaN skipped, 0 for a row with none above -inf (the host sampler's greedy
   * pick). ABI 1.3: a host sends it only where supports_op accepts it. */
  TSR_OP_ARGMAX = 31,
  TSR_OP_COUNT = 32
} tsr_op;

/* A tensor as the plugin sees it. */
typedef struct tsr_tensor {
  uint32_t struct_size;
  tsr_dtype dtype;
  int32_t ndim;             /* 0..TSR_MAX_DIMS */
  int64_t ne[TSR_MAX_DIMS]; /* shape, outermost first */
  int64_t nb[TSR_MAX_DIMS]; /* strides in bytes (see the layout note above) */
  tsr_buffer* buffer;       /* where the data lives; NULL when not materialized (claim) */
  uint64_t offset;          /* byte offset of element [0,...,0] in buffer */
  const char* name;         /* for logs; may be NULL */
} tsr_tensor;

typedef struct tsr_node {
  uint32_t struct_size;
  tsr_op op;
  int32_t n_inputs;
  int32_t inputs[TSR_MAX_INPUTS];  /* indices into tsr_graph_view.tensors; -1 = optional absent */
  int32_t output;                  /* index into tensors */
  int64_t iparams[TSR_MAX_PARAMS]; /* op-specific, see tsr_op */
  float fparams[TSR_MAX_PARAMS];   /* op-specific, see tsr_op */
} tsr_node;

typedef struct tsr_graph_view {
  uint32_t struct_size;
  int32_t n_tensors;
  const tsr_tensor* tensors;
  int32_t n_nodes;
  const tsr_node* nodes; /* topologically ordered */
} tsr_graph_view;

/* ---------------------------------------------------------------------------------------------
 * Compile style (NPUs): claim groups of nodes, receive each as serialized tessera.GraphProto
 * bytes (plugins-api/graph.proto), compile, run, cache.
 * ------------------------------------------------------------------------------------------- */

typedef struct tsr_claim_result {
  uint32_t struct_size;
  /* group_of_node[i] for each node of the view: -1 = not claimed, otherwise a group id; nodes of
   * one group are fused into one executable. Array owned by the host, n_nodes long. */
  int32_t* group_of_node;
  int32_t n_groups; /* set by the plugin */
} tsr_claim_result;

/* ---------------------------------------------------------------------------------------------
 * The function table. Entries a plugin does not implement are NULL or return
 * TSR_ERR_UNIMPLEMENTED. `err` may be NULL everywhere.
 * ------------------------------------------------------------------------------------------- */

typedef struct tsr_plugin_api {
  uint32_t struct_size;
  uint16_t abi_major; /* the ABI this table follows */
  uint16_t abi_minor;
  const char* id;      /* stable lower-case identifier: "cpu", "cuda", ... (the --backend name) */
  const char* name;    /* human-readable */
  const char* version; /* plugin build version */

  /* Context: created once after init; options are the plugin's key/value settings. Unknown
   * keys are an error naming the key. */
  tsr_status (*create_context)(const tsr_option* options, size_t n_options, tsr_plugin_ctx** out,
                               tsr_error* err);
  void (*destroy_context)(tsr_plugin_ctx* ctx);
  /* Why no device is present (no driver, no GPU...), or "" when devices exist. Valid while ctx. */
  const char* (*absence_reason)(tsr_plugin_ctx* ctx);

  /* Devices. */
  tsr_status (*device_count)(tsr_plugin_ctx* ctx, int32_t* out_count, tsr_error* err);
  tsr_status (*device_props)(tsr_plugin_ctx* ctx, int32_t index, tsr_device_props* out,
                             tsr_error* err);
  tsr_status (*device_open)(tsr_plugin_ctx* ctx, int32_t index, tsr_device** out, tsr_error* err);
  void (*device_close)(tsr_device* dev);
  /* Blocks until all work queued on the device is done. */
  tsr_status (*device_synchronize)(tsr_device* dev, tsr_error* err);

  /* Buffers. Index 0 is the device's default buffer type. */
  tsr_status (*buffer_type_count)(tsr_device* dev, int32_t* out_count, tsr_error* err);
  tsr_status (*buffer_type_props)(tsr_device* dev, int32_t type, tsr_buffer_type_props* out,
                                  tsr_error* err);
  tsr_status (*buffer_alloc)(tsr_device* dev, int32_t type, uint64_t size, tsr_buffer** out,
                             tsr_error* err);
  /* Wraps host memory (e.g. mmap'd weights) without copying; may answer TSR_ERR_UNSUPPORTED.
   * The host keeps `ptr` valid and unchanged until buffer_free. */
  tsr_status (*buffer_import_host)(tsr_device* dev, void* ptr, uint64_t size, tsr_buffer** out,
                                   tsr_error* err);
  void (*buffer_free)(tsr_buffer* buf);
  /* Host pointer to a host-visible buffer's byte 0; TSR_ERR_UNSUPPORTED otherwise. */
  tsr_status (*buffer_map)(tsr_buffer* buf, void** out_ptr, tsr_error* err);
  /* Copies between host and buffer. If `done` is non-NULL the call may return before the copy
   * completes and signals `done`; the host keeps `src`/`dst` alive until then. */
  tsr_status (*buffer_upload)(tsr_buffer* dst, uint64_t dst_offset, const void* src, uint64_t size,
                              tsr_event* done, tsr_error* err);
  tsr_status (*buffer_download)(tsr_buffer* src, uint64_t src_offset, void* dst, uint64_t size,
                                tsr_event* done, tsr_error* err);
  /* Buffer-to-buffer copy on one device; may answer TSR_ERR_UNSUPPORTED (the host stages
   * through host memory). */
  tsr_status (*buffer_copy)(tsr_buffer* src, uint64_t src_offset, tsr_buffer* dst,
                            uint64_t dst_offset, uint64_t size, tsr_event* done, tsr_error* err);

  /* Events. */
  tsr_status (*event_create)(tsr_device* dev, tsr_event** out, tsr_error* err);
  tsr_status (*event_wait)(tsr_event* ev, tsr_error* err);
  void (*event_destroy)(tsr_event* ev);

  /* Kernel style. supports_op looks only at shapes/dtypes/params (buffers may be NULL). */
  tsr_status (*supports_op)(tsr_device* dev, const tsr_graph_view* graph, int32_t node,
                            tsr_bool* out_supported, tsr_error* err);
  /* Runs nodes node_ids[0..n) of graph in order. Every tensor they touch is materialized in a
   * buffer of this device. If `done` is non-NULL the call may return early and signal it. */
  tsr_status (*execute)(tsr_device* dev, const tsr_graph_view* graph, const int32_t* node_ids,
                        int32_t n_node_ids, tsr_event* done, tsr_error* err);

  /* Compile style. */
  tsr_status (*claim)(tsr_device* dev, const tsr_graph_view* graph, tsr_claim_result* result,
                      tsr_error* err);
  /* `graph_proto` is a serialized tessera.GraphProto. Weights it names arrive in `weights`
   * (buffers of this device, matched to GraphProto.weights by index). */
  tsr_status (*compile)(tsr_device* dev, const void* graph_proto, size_t graph_proto_size,
                        tsr_buffer* const* weights, int32_t n_weights, tsr_executable** out,
                        tsr_error* err);
  /* Runs an executable: inputs/outputs in GraphProto order, each a materialized tensor. */
  tsr_status (*run_executable)(tsr_executable* exe, const tsr_tensor* inputs, int32_t n_inputs,
                               const tsr_tensor* outputs, int32_t n_outputs, tsr_error* err);
  void (*executable_free)(tsr_executable* exe);
  /* The string a cached blob must match to be reused (device, driver, plugin version). */
  const char* (*compat_string)(tsr_device* dev);
  tsr_status (*serialize_executable)(tsr_executable* exe, void** out_blob, size_t* out_size,
                                     tsr_error* err);
  void (*free_blob)(void* blob);
  /* Rebuilds an executable from a blob; TSR_ERR_INVALID_ARGUMENT if it is not one of ours. */
  tsr_status (*deserialize_executable)(tsr_device* dev, const void* blob, size_t size,
                                       tsr_buffer* const* weights, int32_t n_weights,
                                       tsr_executable** out, tsr_error* err);

  /* ---- ABI 1.1 (NULL in tables built against 1.0) ---- */

  /* Memory of an open device now: bytes free and in total (0 = unknown). tsr_device_props is a
   * snapshot the host takes once, when it opens the device; this is the live figure for a
   * long-running host deciding whether another model or a larger KV pool fits. Cheap, never
   * blocks on queued work, no side effect. NULL: the host only knows the snapshot. */
  tsr_status (*device_memory_info)(tsr_device* dev, uint64_t* out_free, uint64_t* out_total,
                                   tsr_error* err);

  /* ---- ABI 1.2 (NULL in tables built against 1.0 / 1.1) ---- */

  /* Host memory the device copies to and from fastest (e.g. page-locked), `size` bytes, aligned
   * to at least 64; buffer_download / buffer_upload may move data straight between it and the
   * device (no staging). The host uses it like any memory and frees it with host_free on the
   * same device before device_close. May answer TSR_ERR_OUT_OF_MEMORY / TSR_ERR_UNSUPPORTED;
   * NULL: the host uses ordinary memory. Never waits for queued work.
   * Where the host downloads the same buffer range into the same host_alloc bytes after each
   * execute of the same graph view and node list (a decode step's logits), a plugin may copy
   * that range there at the end of the next such execute, ahead of the download (the Vulkan
   * plugin does): from such an execute until that download returns, the host neither reads nor
   * writes those bytes; if no such download comes, they hold the range's bytes at the execute's
   * end once its work has completed. */
  tsr_status (*host_alloc)(tsr_device* dev, uint64_t size, void** out_ptr, tsr_error* err);
  void (*host_free)(tsr_device* dev, void* ptr);
} tsr_plugin_api;

/* sizeof(tsr_plugin_api) as ABI 1.0 defined it: a table whose struct_size is this has no 1.1
 * entry. */
#define TSR_PLUGIN_API_SIZE_1_0 offsetof(tsr_plugin_api, device_memory_info)
/* sizeof(tsr_plugin_api) as ABI 1.1 defined it: no 1.2 entry (host_alloc / host_free). */
#define TSR_PLUGIN_API_SIZE_1_1 offsetof(tsr_plugin_api, host_alloc)

/* Required export. Returns the plugin's table for the newest ABI it shares with `host`, or NULL
 * with `err` filled (e.g. the host's major is not one the plugin speaks). The table is static:
 * valid until the library is unloaded. */
typedef const tsr_plugin_api* (*tsr_plugin_init_fn)(const tsr_host_api* host, tsr_error* err);
#define TSR_PLUGIN_INIT_SYMBOL "tsr_plugin_init"

/* Optional export. A score >= 0 means "this build can run here" (higher = better, e.g. a wider
 * SIMD build); < 0 means it cannot. Must not touch devices or run ISA-specific code. */
typedef int32_t (*tsr_plugin_probe_fn)(void);
#define TSR_PLUGIN_PROBE_SYMBOL "tsr_plugin_probe"

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TESSERA_PLUGIN_API_H_ */
