// The context and device-list entries that every device-style plugin writes the same way. A
// plugin's context (its tsr_plugin_ctx) holds `absence` (why there are no devices; "" when there
// are) and `devices` (a vector of the plugin's device descriptions, each with `name` and
// `description` strings); these templates work on any such struct. Header-only and ABI-only, so
// out-of-tree plugins built against the SDK can use them too.
#ifndef TESSERA_BACKEND_DEVICE_CTX_H_
#define TESSERA_BACKEND_DEVICE_CTX_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "tessera/backend/abi.h"
#include "tessera/plugin_api.h"

namespace tessera::backend {

// Copies an ABI out-struct (tsr_device_props, tsr_buffer_type_props, ...) to the host's, never
// writing past the host's struct_size (an older minor may have a shorter one; 0 = the full one).
template <typename T>
void CopyOut(const T& value, T* out) {
  const size_t n =
      out->struct_size == 0 ? sizeof(T) : std::min<size_t>(out->struct_size, sizeof(T));
  T v = value;
  v.struct_size = static_cast<uint32_t>(n);
  std::memcpy(out, &v, n);
}

// The argument checks that open create_context.
inline tsr_status CheckCreateContextArgs(const tsr_option* options, size_t n_options,
                                         const void* out, tsr_error* err) {
  if (out == nullptr) return Fail(err, TSR_ERR_INVALID_ARGUMENT, "create_context: out is NULL");
  if (n_options > 0 && options == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "create_context: options is NULL");
  return TSR_OK;
}

// Logs (debug) what discovery found: each device, or why there is none. `backend` ("cuda
// backend") starts every line.
template <typename Ctx>
void LogDiscovery(const char* backend, const Ctx& ctx) {
  if (ctx.devices.empty()) {
    Log(TSR_LOG_DEBUG, std::string(backend) + ": no devices: " + ctx.absence);
    return;
  }
  for (const auto& d : ctx.devices)
    Log(TSR_LOG_DEBUG, std::string(backend) + ": " + d.name + " (" + d.description + ")");
}

// destroy_context, absence_reason and device_count for a context of the shape above; a plugin
// binds them by name (`constexpr auto DeviceCount = backend::DeviceCount<tsr_plugin_ctx>;`).
template <typename Ctx>
void DestroyContext(Ctx* ctx) {
  delete ctx;
}

template <typename Ctx>
const char* AbsenceReason(Ctx* ctx) {
  return ctx != nullptr ? ctx->absence.c_str() : "";
}

template <typename Ctx>
tsr_status DeviceCount(Ctx* ctx, int32_t* out_count, tsr_error* err) {
  if (ctx == nullptr || out_count == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "device_count: NULL argument");
  *out_count = static_cast<int32_t>(ctx->devices.size());
  return TSR_OK;
}

// The checks that open device_props and device_open: `ctx` and `out` set and `index` a device of
// ctx. `call` names the entry ("device_props"), `api` the device family in the not-found message
// ("CUDA" gives "device_props: no CUDA device 3").
template <typename Ctx>
tsr_status CheckDeviceIndex(const Ctx* ctx, int32_t index, const void* out, const char* call,
                            const char* api, tsr_error* err) {
  if (ctx == nullptr || out == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, std::string(call) + ": NULL argument");
  if (index < 0 || index >= static_cast<int32_t>(ctx->devices.size())) {
    return Fail(err, TSR_ERR_NOT_FOUND,
                std::string(call) + ": no " + api + " device " + std::to_string(index));
  }
  return TSR_OK;
}

// The device_props every kernel-style device starts from: its name and description (owned by
// the context, so valid while it lives) and TSR_EXEC_KERNEL; the plugin fills the rest.
template <typename Info>
tsr_device_props KernelDeviceProps(const Info& d) {
  tsr_device_props p{};
  p.struct_size = sizeof(p);
  p.name = d.name.c_str();
  p.description = d.description.c_str();
  p.exec_styles = TSR_EXEC_KERNEL;
  return p;
}

// buffer_type_count for a device with one buffer type (type 0).
template <typename Device>
tsr_status SingleBufferTypeCount(Device* dev, int32_t* out_count, tsr_error* err) {
  if (dev == nullptr || out_count == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_type_count: NULL argument");
  *out_count = 1;
  return TSR_OK;
}

// The checks that open buffer_type_props and buffer_alloc on such a device: `dev` and `out` set
// and `type` 0. `call` names the entry ("buffer_alloc").
inline tsr_status CheckSingleBufferType(const void* dev, int32_t type, const void* out,
                                        const char* call, tsr_error* err) {
  if (dev == nullptr || out == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, std::string(call) + ": NULL argument");
  if (type != 0)
    return Fail(err, TSR_ERR_NOT_FOUND,
                std::string(call) + ": no buffer type " + std::to_string(type));
  return TSR_OK;
}

// buffer_import_host by copy, for devices whose buffers the host cannot address: allocates a
// buffer of type 0 with Alloc and uploads `ptr` into it with Upload (the plugin's buffer_alloc
// and buffer_upload; Free releases it on failure). A copy, so such a plugin does not set
// TSR_CAP_HOST_IMPORT.
template <auto Alloc, auto Upload, auto Free, typename Device, typename Buffer>
tsr_status ImportHostByCopy(Device* dev, void* ptr, uint64_t size, Buffer** out, tsr_error* err) {
  if (dev == nullptr || out == nullptr || (ptr == nullptr && size > 0))
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_import_host: NULL argument");
  Buffer* buf = nullptr;
  if (tsr_status s = Alloc(dev, 0, size, &buf, err); s != TSR_OK) return s;
  if (tsr_status s = Upload(buf, 0, ptr, size, nullptr, err); s != TSR_OK) {
    Free(buf);
    return s;
  }
  *out = buf;
  return TSR_OK;
}

// buffer_type_props of a device whose one buffer type (type 0) the host cannot address.
template <typename Device>
tsr_status DeviceBufferTypeProps(Device* dev, int32_t type, tsr_buffer_type_props* out,
                                 const char* name, uint64_t alignment, uint64_t max_size,
                                 tsr_error* err) {
  if (tsr_status s = CheckSingleBufferType(dev, type, out, "buffer_type_props", err); s != TSR_OK)
    return s;
  tsr_buffer_type_props p{};
  p.struct_size = sizeof(p);
  p.name = name;
  p.alignment = alignment;
  p.max_size = max_size;
  p.host_visible = 0;
  CopyOut(p, out);
  return TSR_OK;
}

// The checks that open buffer_upload and buffer_download: the buffer set, the host pointer set
// unless no bytes move, and [offset, offset + size) inside the buffer. `call` names the entry.
template <typename Buffer>
tsr_status CheckTransferArgs(const Buffer* buf, uint64_t offset, const void* host, uint64_t size,
                             const char* call, tsr_error* err) {
  if (buf == nullptr || (host == nullptr && size > 0))
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, std::string(call) + ": NULL argument");
  return CheckRange(buf, offset, size, call, err);
}

// The checks that open buffer_copy on a plugin that copies within one device (buffers with a
// `dev` member): both buffers set, on one device, both ranges inside. `backend` ("opencl
// backend") starts the cross-device message.
template <typename Buffer>
tsr_status CheckCopyArgs(const Buffer* src, uint64_t src_offset, const Buffer* dst,
                         uint64_t dst_offset, uint64_t size, const char* backend, tsr_error* err) {
  if (src == nullptr || dst == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_copy: NULL buffer");
  if (src->dev != dst->dev)
    return Fail(err, TSR_ERR_UNSUPPORTED, std::string(backend) + ": buffer_copy across devices");
  if (tsr_status s = CheckRange(src, src_offset, size, "buffer_copy (source)", err); s != TSR_OK)
    return s;
  return CheckRange(dst, dst_offset, size, "buffer_copy (destination)", err);
}

// buffer_map for devices whose buffers the host cannot address.
inline tsr_status MapNotHostVisible(const void* buf, void** out_ptr, const char* backend,
                                    tsr_error* err) {
  if (buf == nullptr || out_ptr == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "buffer_map: NULL argument");
  return Fail(err, TSR_ERR_UNSUPPORTED,
              std::string(backend) + ": device buffers are not host-visible");
}

// event_create for plugins whose event starts as a bare struct bound to its device (`dev`).
template <typename Event, typename Device>
tsr_status NewDeviceEvent(Device* dev, Event** out, tsr_error* err) {
  if (dev == nullptr || out == nullptr)
    return Fail(err, TSR_ERR_INVALID_ARGUMENT, "event_create: NULL argument");
  Event* ev = new Event{};
  ev->dev = dev;
  *out = ev;
  return TSR_OK;
}

}  // namespace tessera::backend

#endif  // TESSERA_BACKEND_DEVICE_CTX_H_
