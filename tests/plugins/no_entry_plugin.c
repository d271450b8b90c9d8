/* A shared library that is not a Tessera plugin: it has no tsr_plugin_init. */
__attribute__((visibility("default"))) int some_unrelated_function(void) { return 42; }
