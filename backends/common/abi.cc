// tsr_error filling, exception conversion, the host's log service and tsr_plugin_init's checks.
#include "tessera/backend/abi.h"

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <new>

namespace tessera::backend {
namespace {

// The host's services, copied at init (the host struct need not outlive the call).
struct HostServices {
  void* user = nullptr;
  void (*log)(void* user, tsr_log_level level, const char* message) = nullptr;
};
HostServices g_host;

}  // namespace

tsr_status Fail(tsr_error* err, tsr_status code, std::string_view message) noexcept {
  if (err == nullptr) return code;
  const size_t have = err->struct_size == 0 ? sizeof(tsr_error) : err->struct_size;
  if (have >= offsetof(tsr_error, code) + sizeof(err->code)) err->code = code;
  if (have > offsetof(tsr_error, message)) {
    const size_t cap =
        std::min<size_t>(TSR_ERROR_MESSAGE_SIZE, have - offsetof(tsr_error, message));
    const size_t n = std::min(cap - 1, message.size());
    std::memcpy(err->message, message.data(), n);
    err->message[n] = '\0';
  }
  return code;
}

tsr_status CheckBufferRange(uint64_t buffer_size, uint64_t offset, uint64_t size, const char* what,
                            tsr_error* err) {
  if (offset > buffer_size || size > buffer_size - offset) {
    return Fail(err, TSR_ERR_INVALID_ARGUMENT,
                std::string(what) + ": range [" + std::to_string(offset) + ", +" +
                    std::to_string(size) + ") exceeds the buffer size " +
                    std::to_string(buffer_size));
  }
  return TSR_OK;
}

tsr_status FailCaught(tsr_error* err, const char* backend, const std::exception* e) noexcept {
  // snprintf into a stack buffer: the handler must not allocate (it may be handling bad_alloc).
  char buf[TSR_ERROR_MESSAGE_SIZE];
  if (e != nullptr && dynamic_cast<const std::bad_alloc*>(e) != nullptr) {
    std::snprintf(buf, sizeof(buf), "%s: out of host memory", backend);
    return Fail(err, TSR_ERR_OUT_OF_MEMORY, buf);
  }
  if (e != nullptr) {
    std::snprintf(buf, sizeof(buf), "%s: internal error: %s", backend, e->what());
  } else {
    std::snprintf(buf, sizeof(buf), "%s: internal error (unknown exception)", backend);
  }
  return Fail(err, TSR_ERR_INTERNAL, buf);
}

void Log(tsr_log_level level, const std::string& message) {
  if (g_host.log != nullptr) g_host.log(g_host.user, level, message.c_str());
}

tsr_plugin_api NewApiTable(const char* id, const char* name, const char* version) {
  tsr_plugin_api api{};
  api.struct_size = sizeof(api);
  api.abi_major = TSR_ABI_MAJOR;
  api.abi_minor = TSR_ABI_MINOR;
  api.id = id;
  api.name = name;
  api.version = version;
  return api;
}

const tsr_plugin_api* PluginInit(const char* backend, const tsr_host_api* host,
                                 const tsr_plugin_api* api, tsr_error* err) noexcept {
  try {
    if (host == nullptr) {
      Fail(err, TSR_ERR_INVALID_ARGUMENT, std::string(backend) + ": host API is NULL");
      return nullptr;
    }
    if (host->abi_major != TSR_ABI_MAJOR) {
      Fail(err, TSR_ERR_INVALID_ARGUMENT,
           std::string(backend) + " speaks plugin ABI " + std::to_string(TSR_ABI_MAJOR) +
               ".x; the host speaks " + std::to_string(host->abi_major) + "." +
               std::to_string(host->abi_minor));
      return nullptr;
    }
    g_host = {};
    // `log` sits past the fixed header: read it only if the host's struct contains it.
    if (host->struct_size == 0 ||
        host->struct_size >= offsetof(tsr_host_api, log) + sizeof(host->log)) {
      g_host.user = host->user;
      g_host.log = host->log;
    }
    return api;
  } catch (...) {
    char buf[TSR_ERROR_MESSAGE_SIZE];
    std::snprintf(buf, sizeof(buf), "%s: internal error in tsr_plugin_init", backend);
    Fail(err, TSR_ERR_INTERNAL, buf);
    return nullptr;
  }
}

}  // namespace tessera::backend
