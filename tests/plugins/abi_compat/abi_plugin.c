/* ABI test plugins built from test_kernel_plugin.c against the LIVE header. Its tsr_plugin_init is
 * renamed and wrapped, so the kernels are exactly those of the 1.0 build (test_kernel_plugin.c
 * compiled against tests/plugins/abi_v1_0), and only the table differs:
 *   default          a plugin of the current minor that provides the 1.1 entry device_memory_info
 *                    and the 1.2 entries host_alloc / host_free (plain aligned heap memory)
 *   TP_FUTURE_MINOR  a plugin of a minor newer than the host's: a larger table (struct_size) with
 *                    a trailing entry the host does not know and must neither read nor call */
#define tsr_plugin_init tp_kernel_plugin_init
#include "../test_kernel_plugin.c"
#undef tsr_plugin_init

#if TSR_ABI_MAJOR != 1 || TSR_ABI_MINOR < 1
#error "abi_plugin.c must compile against the live plugin_api.h (ABI 1.1 or later)"
#endif

/* Distinct from device_props' snapshot (1 GiB free) so a test can tell which one it got. */
#define TP_LIVE_FREE (768ull << 20)
#define TP_LIVE_TOTAL (1ull << 30)

static tsr_status device_memory_info(tsr_device* d, uint64_t* out_free, uint64_t* out_total,
                                     tsr_error* e) {
  if (d != &g_dev || !out_free || !out_total) {
    tp_set_error(e, TSR_ERR_INVALID_ARGUMENT, "device_memory_info: bad device or NULL output");
    return TSR_ERR_INVALID_ARGUMENT;
  }
  *out_free = TP_LIVE_FREE;
  *out_total = TP_LIVE_TOTAL;
  return TSR_OK;
}

/* 1.2: host memory of the device (here ordinary memory; a GPU plugin gives page-locked memory).
 * Live allocations are counted so a test can see the host free what it allocated. */
static int g_host_live;
static tsr_status host_alloc(tsr_device* d, uint64_t size, void** out_ptr, tsr_error* e) {
  if (d != &g_dev || !out_ptr) {
    tp_set_error(e, TSR_ERR_INVALID_ARGUMENT, "host_alloc: bad device or NULL output");
    return TSR_ERR_INVALID_ARGUMENT;
  }
  *out_ptr = aligned_alloc(64, (size + 64) / 64 * 64);
  if (!*out_ptr) {
    tp_set_error(e, TSR_ERR_OUT_OF_MEMORY, "host_alloc: out of memory");
    return TSR_ERR_OUT_OF_MEMORY;
  }
  ++g_host_live;
  return TSR_OK;
}
static void host_free(tsr_device* d, void* ptr) {
  if (d != &g_dev || !ptr) return;
  --g_host_live;
  free(ptr);
}
/* The live count, for the test (found with dlsym). */
TSR_PLUGIN_EXPORT int tp_host_live(void) {
  return g_host_live;
}

#ifdef TP_FUTURE_MINOR
typedef struct tp_future_table {
  tsr_plugin_api known;                /* everything up to the host's minor */
  tsr_status (*from_the_future)(void); /* an entry of a minor the host has never heard of */
} tp_future_table;
static tp_future_table g_future;
/* A host calling it is a failed test. */
static tsr_status from_the_future(void) {
  abort();
}
#endif

TSR_PLUGIN_EXPORT const tsr_plugin_api* tsr_plugin_init(const tsr_host_api* host, tsr_error* err) {
  if (!tp_kernel_plugin_init(host, err)) return NULL;
  g_api.device_memory_info = device_memory_info;
  g_api.host_alloc = host_alloc;
  g_api.host_free = host_free;
#ifdef TP_FUTURE_MINOR
  g_future.known = g_api;
  g_future.known.struct_size = sizeof g_future;
  g_future.known.abi_minor = TSR_ABI_MINOR + 1;
  g_future.from_the_future = from_the_future;
  return &g_future.known;
#else
  return &g_api;
#endif
}
