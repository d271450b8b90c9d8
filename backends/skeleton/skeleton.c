/*
 * The skeleton backend plugin: the starting point for a vendor's own backend.
 *
 * Copy this folder out of the Tessera tree, rename "skeleton" (the id, the names below and the
 * target in CMakeLists.txt) and fill in the entry points marked FILL IN. As shipped it loads,
 * reports zero devices with a reason, and answers TSR_ERR_UNIMPLEMENTED everywhere else, so the
 * engine lists it (`engine devices -v --backend-path libtessera_backend_skeleton.so`) and never
 * schedules work on it. docs/plugin-guide.md explains the ABI rules and both execution styles.
 *
 * Pure C against tessera/plugin_api.h only. A C++ plugin may instead reuse the helpers of
 * Tessera::PluginSDK (tessera/backend/abi.h: error filling, exception guards, the init checks;
 * tessera/backend/validate.h: the per-op shape/dtype rules the conformance suite expects).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/plugin_api.h"

#define SKELETON_ID "skeleton"
#define SKELETON_NAME "Skeleton backend (template, no device)"
#define SKELETON_VERSION "0.1.0"

/* FILL IN: say why there is no device (no driver, driver too old, no card). The engine prints
 * it under the plugin in `engine devices`, so make it something a user can act on. */
static const char kAbsenceReason[] =
    "the skeleton plugin drives no hardware: fill in device_count/device_open in skeleton.c";

/* The host's services, kept from tsr_plugin_init. Plugins log only through host.log. */
static tsr_host_api g_host;

static void LogMessage(tsr_log_level level, const char* message) {
  if (g_host.log != NULL) g_host.log(g_host.user, level, message);
}

/* Fills `err` (may be NULL) without writing past the struct_size the host compiled. */
static tsr_status Fail(tsr_error* err, tsr_status code, const char* message) {
  if (err == NULL) return code;
  const size_t have = err->struct_size ? err->struct_size : sizeof(tsr_error);
  if (have >= offsetof(tsr_error, code) + sizeof(err->code)) err->code = code;
  if (have > offsetof(tsr_error, message)) {
    size_t room = have - offsetof(tsr_error, message);
    if (room > sizeof(err->message)) room = sizeof(err->message);
    snprintf(err->message, room, "%s", message);
  }
  return code;
}

#define SKELETON_UNIMPLEMENTED(fn) \
  Fail(err, TSR_ERR_UNIMPLEMENTED, SKELETON_ID " backend: " fn " is not implemented")

/* ---- Context ------------------------------------------------------------------------------ */

/* FILL IN: the per-plugin state: driver handles, the device list, option values. */
struct tsr_plugin_ctx {
  int32_t n_devices;
};

static tsr_status CreateContext(const tsr_option* options, size_t n_options, tsr_plugin_ctx** out,
                                tsr_error* err) {
  /* FILL IN: accept your own keys (from `--backend-opt skeleton.key=value`). The ABI wants an
   * unknown key to be an error that names it. */
  for (size_t i = 0; i < n_options; ++i) {
    char msg[TSR_ERROR_MESSAGE_SIZE];
    snprintf(msg, sizeof(msg), SKELETON_ID " backend: unknown option '%s'",
             options[i].key ? options[i].key : "");
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, msg);
  }
  tsr_plugin_ctx* ctx = (tsr_plugin_ctx*)calloc(1, sizeof(tsr_plugin_ctx));
  if (ctx == NULL) return Fail(err, TSR_ERR_OUT_OF_MEMORY, SKELETON_ID " backend: out of memory");
  /* FILL IN: open the driver here and enumerate devices; keep going with zero devices when
   * the driver is missing (the reason goes to AbsenceReason), never fail the whole context. */
  ctx->n_devices = 0;
  *out = ctx;
  return TSR_OK;
}

static void DestroyContext(tsr_plugin_ctx* ctx) {
  free(ctx);
}

static const char* AbsenceReason(tsr_plugin_ctx* ctx) {
  return (ctx != NULL && ctx->n_devices > 0) ? "" : kAbsenceReason;
}

/* ---- Devices ------------------------------------------------------------------------------ */

static tsr_status DeviceCount(tsr_plugin_ctx* ctx, int32_t* out_count, tsr_error* err) {
  *out_count = ctx->n_devices;
  return TSR_OK;
}

/* FILL IN: name, kind, TSR_CAP_* bits, memory, and exec_styles (TSR_EXEC_KERNEL and/or
 * TSR_EXEC_COMPILE: the host picks the execution style from these bits). */
static tsr_status DeviceProps(tsr_plugin_ctx* ctx, int32_t index, tsr_device_props* out,
                              tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("device_props");
}
static tsr_status DeviceOpen(tsr_plugin_ctx* ctx, int32_t index, tsr_device** out, tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("device_open");
}
static void DeviceClose(tsr_device* dev) {}
static tsr_status DeviceSynchronize(tsr_device* dev, tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("device_synchronize");
}

/* ---- Buffers (FILL IN: device memory; buffer_import_host may answer TSR_ERR_UNSUPPORTED) -- */

static tsr_status BufferTypeCount(tsr_device* dev, int32_t* out_count, tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("buffer_type_count");
}
static tsr_status BufferTypeProps(tsr_device* dev, int32_t type, tsr_buffer_type_props* out,
                                  tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("buffer_type_props");
}
static tsr_status BufferAlloc(tsr_device* dev, int32_t type, uint64_t size, tsr_buffer** out,
                              tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("buffer_alloc");
}
static tsr_status BufferImportHost(tsr_device* dev, void* ptr, uint64_t size, tsr_buffer** out,
                                   tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("buffer_import_host");
}
static void BufferFree(tsr_buffer* buf) {}
static tsr_status BufferMap(tsr_buffer* buf, void** out_ptr, tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("buffer_map");
}
static tsr_status BufferUpload(tsr_buffer* dst, uint64_t dst_offset, const void* src, uint64_t size,
                               tsr_event* done, tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("buffer_upload");
}
static tsr_status BufferDownload(tsr_buffer* src, uint64_t src_offset, void* dst, uint64_t size,
                                 tsr_event* done, tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("buffer_download");
}
static tsr_status BufferCopy(tsr_buffer* src, uint64_t src_offset, tsr_buffer* dst,
                             uint64_t dst_offset, uint64_t size, tsr_event* done, tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("buffer_copy");
}

/* ---- Events (FILL IN only if the device runs asynchronously: TSR_CAP_ASYNC) --------------- */

static tsr_status EventCreate(tsr_device* dev, tsr_event** out, tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("event_create");
}
static tsr_status EventWait(tsr_event* ev, tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("event_wait");
}
static void EventDestroy(tsr_event* ev) {}

/* ---- Kernel style (FILL IN for GPUs/CPUs: one op at a time) ------------------------------- */

static tsr_status SupportsOp(tsr_device* dev, const tsr_graph_view* graph, int32_t node,
                             tsr_bool* out_supported, tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("supports_op");
}
static tsr_status Execute(tsr_device* dev, const tsr_graph_view* graph, const int32_t* node_ids,
                          int32_t n_node_ids, tsr_event* done, tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("execute");
}

/* ---- Compile style (FILL IN for NPUs: claim subgraphs, compile GraphProto bytes) ---------- */

static tsr_status Claim(tsr_device* dev, const tsr_graph_view* graph, tsr_claim_result* result,
                        tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("claim");
}
static tsr_status Compile(tsr_device* dev, const void* graph_proto, size_t graph_proto_size,
                          tsr_buffer* const* weights, int32_t n_weights, tsr_executable** out,
                          tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("compile");
}
static tsr_status RunExecutable(tsr_executable* exe, const tsr_tensor* inputs, int32_t n_inputs,
                                const tsr_tensor* outputs, int32_t n_outputs, tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("run_executable");
}
static void ExecutableFree(tsr_executable* exe) {}
/* FILL IN: device + driver + plugin version; a cached blob is reused only on an exact match. */
static const char* CompatString(tsr_device* dev) {
  return SKELETON_ID "/unimplemented";
}
static tsr_status SerializeExecutable(tsr_executable* exe, void** out_blob, size_t* out_size,
                                      tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("serialize_executable");
}
static void FreeBlob(void* blob) {
  free(blob);
}
static tsr_status DeserializeExecutable(tsr_device* dev, const void* blob, size_t size,
                                        tsr_buffer* const* weights, int32_t n_weights,
                                        tsr_executable** out, tsr_error* err) {
  return SKELETON_UNIMPLEMENTED("deserialize_executable");
}

/* ---- Entry points ------------------------------------------------------------------------- */

/* The table follows the ABI of the headers this plugin was built against: struct_size tells the
 * host which trailing entries exist (an older host ignores newer ones, a newer host reads the
 * missing ones as NULL). */
static const tsr_plugin_api kApi = {
    .struct_size = sizeof(tsr_plugin_api),
    .abi_major = TSR_ABI_MAJOR,
    .abi_minor = TSR_ABI_MINOR,
    .id = SKELETON_ID,
    .name = SKELETON_NAME,
    .version = SKELETON_VERSION,
    .create_context = CreateContext,
    .destroy_context = DestroyContext,
    .absence_reason = AbsenceReason,
    .device_count = DeviceCount,
    .device_props = DeviceProps,
    .device_open = DeviceOpen,
    .device_close = DeviceClose,
    .device_synchronize = DeviceSynchronize,
    .buffer_type_count = BufferTypeCount,
    .buffer_type_props = BufferTypeProps,
    .buffer_alloc = BufferAlloc,
    .buffer_import_host = BufferImportHost,
    .buffer_free = BufferFree,
    .buffer_map = BufferMap,
    .buffer_upload = BufferUpload,
    .buffer_download = BufferDownload,
    .buffer_copy = BufferCopy,
    .event_create = EventCreate,
    .event_wait = EventWait,
    .event_destroy = EventDestroy,
    .supports_op = SupportsOp,
    .execute = Execute,
    .claim = Claim,
    .compile = Compile,
    .run_executable = RunExecutable,
    .executable_free = ExecutableFree,
    .compat_string = CompatString,
    .serialize_executable = SerializeExecutable,
    .free_blob = FreeBlob,
    .deserialize_executable = DeserializeExecutable,
    /* ABI 1.1, optional (NULL: the host keeps the device_props snapshot): FILL IN
     * .device_memory_info = DeviceMemoryInfo, the free/total memory of an open device now. */
};

TSR_PLUGIN_EXPORT const tsr_plugin_api* tsr_plugin_init(const tsr_host_api* host, tsr_error* err) {
  if (host == NULL || host->abi_major != TSR_ABI_MAJOR) {
    char msg[TSR_ERROR_MESSAGE_SIZE];
    snprintf(msg, sizeof(msg),
             SKELETON_ID " backend: built for plugin ABI %d.x, the host speaks %d.x", TSR_ABI_MAJOR,
             host ? (int)host->abi_major : -1);
    Fail(err, TSR_ERR_UNSUPPORTED, msg);
    return NULL;
  }
  /* Keep only the fields the host's struct has (it may be an older, shorter one). */
  memset(&g_host, 0, sizeof(g_host));
  const size_t n = host->struct_size < sizeof(g_host) ? host->struct_size : sizeof(g_host);
  memcpy(&g_host, host, n);
  LogMessage(TSR_LOG_DEBUG, SKELETON_ID " backend: initialized (no device support yet)");
  return &kApi;
}

/* Optional: a score >= 0 says this build can run here (higher wins among builds sharing an id).
 * FILL IN a cheap check (CPU features, an environment variable); touch no device here. */
TSR_PLUGIN_EXPORT int32_t tsr_plugin_probe(void) {
  return 0;
}
