/* Compiled into the 1.0 compatibility plugin next to test_kernel_plugin.c: fails the build if
 * <tessera/plugin_api.h> resolved to anything but the frozen copy in tests/plugins/abi_v1_0 (the
 * live header is 1.1 or later and defines TSR_PLUGIN_API_SIZE_1_0). */
#include <tessera/plugin_api.h>

#if TSR_ABI_MAJOR != 1 || TSR_ABI_MINOR != 0 || defined(TSR_PLUGIN_API_SIZE_1_0)
#error "the 1.0 compatibility plugin must compile against tests/plugins/abi_v1_0 only"
#endif

/* Something to compile: an empty translation unit is not ISO C. */
int tp_abi_v1_0_guard(void) {
  return TSR_ABI_MINOR;
}
