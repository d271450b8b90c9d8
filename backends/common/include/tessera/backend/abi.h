// The C ABI boilerplate every backend plugin shares: filling tsr_error, keeping exceptions from
// crossing the boundary, the host's logging service, tsr_plugin_init's checks and the device-style
// function table. Only the plugin ABI headers are used here: plugins never depend on the core.
#ifndef TESSERA_BACKEND_ABI_H_
#define TESSERA_BACKEND_ABI_H_

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <tuple>

#include "tessera/plugin_api.h"

namespace tessera::backend {

// Fills `err` without writing past the struct_size the host gave it (0 = the full struct).
// Never allocates or throws, so it is safe inside catch handlers. Returns `code`.
tsr_status Fail(tsr_error* err, tsr_status code, std::string_view message) noexcept;

// TSR_OK when [offset, offset + size) lies inside a buffer of `buffer_size` bytes (checked so it
// cannot overflow); otherwise an invalid-argument error naming `what`.
tsr_status CheckBufferRange(uint64_t buffer_size, uint64_t offset, uint64_t size, const char* what,
                            tsr_error* err);
// The same for a plugin's buffer handle (a template: each plugin defines tsr_buffer, with `size`).
template <typename Buffer>
tsr_status CheckRange(const Buffer* buf, uint64_t offset, uint64_t size, const char* what,
                      tsr_error* err) {
  return CheckBufferRange(buf->size, offset, size, what, err);
}

// The error status for an exception caught at the boundary (`e` null: not a std::exception);
// `backend` ("cpu backend") starts the message.
tsr_status FailCaught(tsr_error* err, const char* backend, const std::exception* e) noexcept;

// Runs fn() and converts any escaping exception into an error status.
template <const char* Backend, typename Fn>
tsr_status Guard(tsr_error* err, Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const std::exception& e) {
    return FailCaught(err, Backend, &e);
  } catch (...) {
    return FailCaught(err, Backend, nullptr);
  }
}

// Guarded<Backend, F>::Call is F behind Guard: the form every status-returning table entry takes,
// so no exception can cross the ABI whatever F does. `err` is the last parameter of every such
// entry.
template <const char* Backend, auto F>
struct Guarded;
template <const char* Backend, typename... A, tsr_status (*F)(A...)>
struct Guarded<Backend, F> {
  static tsr_status Call(A... args) noexcept {
    tsr_error* err = std::get<sizeof...(A) - 1>(std::tie(args...));
    return Guard<Backend>(err, [&] { return F(args...); });
  }
};

// Sends a message to the host's log callback, if it gave one (see PluginInit).
void Log(tsr_log_level level, const std::string& message);

// The body of tsr_plugin_init: checks the host's ABI, keeps its services (this library is linked
// into each plugin, so each plugin keeps its own) and returns `api`; nullptr and `err` filled on
// failure. `backend` ("cpu backend") starts every message.
const tsr_plugin_api* PluginInit(const char* backend, const tsr_host_api* host,
                                 const tsr_plugin_api* api, tsr_error* err) noexcept;

// A function table of this ABI version with the plugin's identity and every entry NULL.
tsr_plugin_api NewApiTable(const char* id, const char* name, const char* version);

// Fills the device-style entries of `api` (contexts, devices, buffers, events, supports_op,
// execute; the NPU compile style stays NULL) from the plugin's functions of the same names
// (CreateContext, DestroyContext, ...). `Wrap<F>::Call` guards the status-returning ones.
#define TESSERA_BACKEND_FILL_DEVICE_API(api, Wrap)            \
  do {                                                        \
    (api).create_context = Wrap<CreateContext>::Call;         \
    (api).destroy_context = DestroyContext;                   \
    (api).absence_reason = AbsenceReason;                     \
    (api).device_count = Wrap<DeviceCount>::Call;             \
    (api).device_props = Wrap<DeviceProps>::Call;             \
    (api).device_open = Wrap<DeviceOpen>::Call;               \
    (api).device_close = DeviceClose;                         \
    (api).device_synchronize = Wrap<DeviceSynchronize>::Call; \
    (api).buffer_type_count = Wrap<BufferTypeCount>::Call;    \
    (api).buffer_type_props = Wrap<BufferTypeProps>::Call;    \
    (api).buffer_alloc = Wrap<BufferAlloc>::Call;             \
    (api).buffer_import_host = Wrap<BufferImportHost>::Call;  \
    (api).buffer_free = BufferFree;                           \
    (api).buffer_map = Wrap<BufferMap>::Call;                 \
    (api).buffer_upload = Wrap<BufferUpload>::Call;           \
    (api).buffer_download = Wrap<BufferDownload>::Call;       \
    (api).buffer_copy = Wrap<BufferCopy>::Call;               \
    (api).event_create = Wrap<EventCreate>::Call;             \
    (api).event_wait = Wrap<EventWait>::Call;                 \
    (api).event_destroy = EventDestroy;                       \
    (api).supports_op = Wrap<SupportsOp>::Call;               \
    (api).execute = Wrap<Execute>::Call;                      \
  } while (0)

}  // namespace tessera::backend

// The two exported entry points of a plugin, written once at global scope: tsr_plugin_init
// returns `api_table` (a tsr_plugin_api object) after PluginInit's checks, `backend_name` starting
// its messages; tsr_plugin_probe returns the score `probe` and must touch no device or driver.
#define TESSERA_BACKEND_PLUGIN_ENTRY_POINTS(backend_name, api_table, probe)                    \
  extern "C" TSR_PLUGIN_EXPORT const tsr_plugin_api* tsr_plugin_init(const tsr_host_api* host, \
                                                                     tsr_error* err) {         \
    return ::tessera::backend::PluginInit((backend_name), host, &(api_table), err);            \
  }                                                                                            \
  extern "C" TSR_PLUGIN_EXPORT int32_t tsr_plugin_probe(void) {                                \
    return (probe);                                                                            \
  }

#endif  // TESSERA_BACKEND_ABI_H_
