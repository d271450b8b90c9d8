/* A kernel-style test plugin written in C (proves the ABI headers work from C). It claims to be a
 * discrete GPU that runs only ADD, MUL and SCALE on contiguous f32 tensors, so the scheduler must
 * split graphs and fall back to the CPU for everything else. Compile-time knobs make variants for
 * the loader tests: TP_ID (plugin id), TP_SCORE (probe score), TP_ABI_MAJOR. */
#include <stdio.h>

#include "host_buffers.h"

#ifndef TP_ID
#define TP_ID "testgpu"
#endif
#ifndef TP_SCORE
#define TP_SCORE 10
#endif
#ifndef TP_ABI_MAJOR
#define TP_ABI_MAJOR TSR_ABI_MAJOR
#endif

struct tsr_plugin_ctx { int unused; };
struct tsr_device { int unused; };
static struct tsr_plugin_ctx g_ctx;
static struct tsr_device g_dev;
static tsr_host_api g_host;

static tsr_status create_context(const tsr_option* o, size_t n, tsr_plugin_ctx** out, tsr_error* err) {
  for (size_t i = 0; i < n; ++i) {
    char msg[256];
    snprintf(msg, sizeof msg, "unknown option '%s'", o[i].key);
    tp_set_error(err, TSR_ERR_INVALID_ARGUMENT, msg);
    return TSR_ERR_INVALID_ARGUMENT;
  }
  if (g_host.log) g_host.log(g_host.user, TSR_LOG_DEBUG, "test kernel plugin context created");
  *out = &g_ctx;
  return TSR_OK;
}
static void destroy_context(tsr_plugin_ctx* c) { (void)c; }
static const char* absence_reason(tsr_plugin_ctx* c) { (void)c; return ""; }
static tsr_status device_count(tsr_plugin_ctx* c, int32_t* n, tsr_error* e) { (void)c; (void)e; *n = 1; return TSR_OK; }
static tsr_status device_props(tsr_plugin_ctx* c, int32_t i, tsr_device_props* p, tsr_error* e) {
  (void)c;
  if (i != 0) { tp_set_error(e, TSR_ERR_NOT_FOUND, "one device"); return TSR_ERR_NOT_FOUND; }
  p->name = "Test GPU";
  p->description = "test plugin: add/mul/scale only";
  p->kind = TSR_DEVICE_GPU_DISCRETE;
  p->caps = 0;
  p->memory_total = 1u << 30;
  p->memory_free = 1u << 30;
  p->compute_units = 1;
  p->exec_styles = TSR_EXEC_KERNEL;
  return TSR_OK;
}
static tsr_status device_open(tsr_plugin_ctx* c, int32_t i, tsr_device** out, tsr_error* e) {
  (void)c; (void)i; (void)e;
  *out = &g_dev;
  return TSR_OK;
}
static void device_close(tsr_device* d) { (void)d; }

static int runs_here(const tsr_graph_view* g, const tsr_node* n) {
  if (n->op != TSR_OP_ADD && n->op != TSR_OP_MUL && n->op != TSR_OP_SCALE) return 0;
  for (int i = 0; i < n->n_inputs; ++i)
    if (n->inputs[i] < 0 || !tp_contiguous_f32(&g->tensors[n->inputs[i]])) return 0;
  if (!tp_contiguous_f32(&g->tensors[n->output])) return 0;
  if (n->op != TSR_OP_SCALE && tp_numel(&g->tensors[n->inputs[0]]) != tp_numel(&g->tensors[n->inputs[1]])) return 0;
  return 1;
}
static tsr_status supports_op(tsr_device* d, const tsr_graph_view* g, int32_t node, tsr_bool* out, tsr_error* e) {
  (void)d; (void)e;
  *out = runs_here(g, &g->nodes[node]);
  return TSR_OK;
}
static tsr_status execute(tsr_device* d, const tsr_graph_view* g, const int32_t* ids, int32_t n, tsr_event* done, tsr_error* e) {
  (void)d; (void)done;
  for (int32_t k = 0; k < n; ++k) {
    const tsr_node* node = &g->nodes[ids[k]];
    if (!runs_here(g, node)) { tp_set_error(e, TSR_ERR_INVALID_ARGUMENT, "unsupported node"); return TSR_ERR_INVALID_ARGUMENT; }
    const tsr_tensor* a = &g->tensors[node->inputs[0]];
    float* y = tp_f32(&g->tensors[node->output]);
    const float* x = tp_f32(a);
    int64_t len = tp_numel(a);
    if (node->op == TSR_OP_SCALE) {
      for (int64_t i = 0; i < len; ++i) y[i] = x[i] * node->fparams[0] + node->fparams[1];
    } else {
      const float* b = tp_f32(&g->tensors[node->inputs[1]]);
      for (int64_t i = 0; i < len; ++i) y[i] = node->op == TSR_OP_ADD ? x[i] + b[i] : x[i] * b[i];
    }
  }
  return TSR_OK;
}

static tsr_plugin_api g_api;

TSR_PLUGIN_EXPORT const tsr_plugin_api* tsr_plugin_init(const tsr_host_api* host, tsr_error* err) {
  (void)err;
  g_host = *host;
  memset(&g_api, 0, sizeof g_api);
  g_api.struct_size = sizeof g_api;
  g_api.abi_major = TP_ABI_MAJOR;
  g_api.abi_minor = TSR_ABI_MINOR;
  g_api.id = TP_ID;
  g_api.name = "Tessera test kernel plugin";
  g_api.version = "test";
  g_api.create_context = create_context;
  g_api.destroy_context = destroy_context;
  g_api.absence_reason = absence_reason;
  g_api.device_count = device_count;
  g_api.device_props = device_props;
  g_api.device_open = device_open;
  g_api.device_close = device_close;
  g_api.buffer_type_count = tp_buffer_type_count;
  g_api.buffer_type_props = tp_buffer_type_props;
  g_api.buffer_alloc = tp_buffer_alloc;
  g_api.buffer_import_host = tp_buffer_import_host;
  g_api.buffer_free = tp_buffer_free;
  g_api.buffer_map = tp_buffer_map;
  g_api.buffer_upload = tp_upload;
  g_api.buffer_download = tp_download;
  g_api.buffer_copy = tp_copy_unsupported;
  g_api.supports_op = supports_op;
  g_api.execute = execute;
  return &g_api;
}

TSR_PLUGIN_EXPORT int32_t tsr_plugin_probe(void) { return TP_SCORE; }
