#include "tessera/core/device.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

namespace tessera {
namespace {

tsr_error NewError() {
  tsr_error e{};
  e.struct_size = sizeof(e);
  return e;
}

}  // namespace

DeviceBuffer::~DeviceBuffer() {
  const tsr_plugin_api& api = device_->plugin().api();
  if (buf_ && api.buffer_free) api.buffer_free(buf_);
}

Status Device::Check(tsr_status code, const tsr_error& err) const {
  if (code == TSR_OK) return OkStatus();
  return FromPluginError(label_, code, err);
}

StatusOr<std::unique_ptr<Device>> Device::Open(Plugin* plugin, int32_t index) {
  auto d = std::unique_ptr<Device>(new Device());
  d->plugin_ = plugin;
  d->label_ = plugin->id() + ":" + std::to_string(index);
  const tsr_plugin_api& api = plugin->api();
  if (!api.device_props || !api.device_open)
    return Unimplemented(d->label_ + ": plugin has no device_props/device_open");
  tsr_error err = NewError();
  d->props_.struct_size = sizeof(d->props_);
  TSR_RETURN_IF_ERROR(d->Check(api.device_props(plugin->ctx(), index, &d->props_, &err), err));
  TSR_RETURN_IF_ERROR(d->Check(api.device_open(plugin->ctx(), index, &d->dev_, &err), err));
  if (api.buffer_type_props) {
    tsr_buffer_type_props bt{};
    bt.struct_size = sizeof(bt);
    if (api.buffer_type_props(d->dev_, 0, &bt, nullptr) == TSR_OK)
      d->host_visible_ = bt.host_visible != 0;
  }
  return d;
}

Device::~Device() {
  if (dev_ && plugin_->api().device_close) plugin_->api().device_close(dev_);
}

StatusOr<std::unique_ptr<DeviceBuffer>> Device::Alloc(uint64_t size) {
  const tsr_plugin_api& api = plugin_->api();
  if (!api.buffer_alloc) return Unimplemented(label_ + ": no buffer_alloc");
  tsr_error err = NewError();
  tsr_buffer* b = nullptr;
  TSR_RETURN_IF_ERROR(Check(api.buffer_alloc(dev_, 0, size, &b, &err), err));
  alloc_count_.fetch_add(1);
  void* host = nullptr;
  if (host_visible_ && api.buffer_map && api.buffer_map(b, &host, nullptr) != TSR_OK)
    host = nullptr;
  return std::unique_ptr<DeviceBuffer>(new DeviceBuffer(this, b, size, host));
}

StatusOr<std::unique_ptr<DeviceBuffer>> Device::ImportHost(void* ptr, uint64_t size) {
  const tsr_plugin_api& api = plugin_->api();
  if (!api.buffer_import_host) return Unsupported(label_ + ": no host import");
  tsr_error err = NewError();
  tsr_buffer* b = nullptr;
  TSR_RETURN_IF_ERROR(Check(api.buffer_import_host(dev_, ptr, size, &b, &err), err));
  alloc_count_.fetch_add(1);
  void* host = nullptr;
  if (api.buffer_map && api.buffer_map(b, &host, nullptr) != TSR_OK) host = nullptr;
  return std::unique_ptr<DeviceBuffer>(new DeviceBuffer(this, b, size, host));
}

Status Device::Upload(DeviceBuffer& dst, uint64_t offset, const void* src, uint64_t size) {
  if (offset + size > dst.size()) return OutOfRange(label_ + ": upload past the end of a buffer");
  tsr_error err = NewError();
  return Check(plugin_->api().buffer_upload(dst.handle(), offset, src, size, nullptr, &err), err);
}

bool Device::has_host_alloc() const {
  const tsr_plugin_api& api = plugin_->api();
  return api.host_alloc != nullptr && api.host_free != nullptr;
}

StatusOr<void*> Device::HostAlloc(uint64_t size) {
  if (!has_host_alloc()) return Unimplemented(label_ + ": no host_alloc (plugin ABI 1.2)");
  tsr_error err = NewError();
  void* p = nullptr;
  TSR_RETURN_IF_ERROR(Check(plugin_->api().host_alloc(dev_, size, &p, &err), err));
  if (p == nullptr && size > 0) return Internal(label_ + ": host_alloc returned NULL");
  return p;
}

void Device::HostFree(void* ptr) {
  if (ptr != nullptr && has_host_alloc()) plugin_->api().host_free(dev_, ptr);
}

StatusOr<HostBuffer> HostBuffer::Allocate(Device* dev, uint64_t size) {
  HostBuffer b;
  b.size_ = size;
  if (dev != nullptr && dev->has_host_alloc()) {
    StatusOr<void*> p = dev->HostAlloc(size);
    if (p.ok()) {
      b.dev_ = dev;
      b.ptr_ = *p;
      return b;
    }  // e.g. locked-memory limits: ordinary memory still works, only slower to fill
  }
  // 64-byte aligned like the plugin's; at least one byte so data() is never null.
  b.ptr_ = std::aligned_alloc(64, (std::max<uint64_t>(size, 1) + 63) / 64 * 64);
  if (b.ptr_ == nullptr)
    return ResourceExhausted("host buffer of " + std::to_string(size) + " bytes");
  return b;
}

HostBuffer& HostBuffer::operator=(HostBuffer&& o) noexcept {
  if (this != &o) {
    Reset();
    dev_ = std::exchange(o.dev_, nullptr);
    ptr_ = std::exchange(o.ptr_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

void HostBuffer::Reset() {
  if (dev_ != nullptr) {
    dev_->HostFree(ptr_);
  } else {
    std::free(ptr_);
  }
  dev_ = nullptr;
  ptr_ = nullptr;
  size_ = 0;
}

Status Device::Download(const DeviceBuffer& src, uint64_t offset, void* dst, uint64_t size) {
  if (offset + size > src.size()) return OutOfRange(label_ + ": download past the end of a buffer");
  tsr_error err = NewError();
  return Check(plugin_->api().buffer_download(src.handle(), offset, dst, size, nullptr, &err), err);
}

Status Device::Synchronize() {
  if (!plugin_->api().device_synchronize) return OkStatus();
  tsr_error err = NewError();
  return Check(plugin_->api().device_synchronize(dev_, &err), err);
}

StatusOr<bool> Device::SupportsOp(const tsr_graph_view& graph, int32_t node) {
  if (!plugin_->api().supports_op) return false;
  tsr_error err = NewError();
  tsr_bool ok = 0;
  tsr_status st = plugin_->api().supports_op(dev_, &graph, node, &ok, &err);
  if (st == TSR_ERR_UNIMPLEMENTED || st == TSR_ERR_UNSUPPORTED) return false;
  TSR_RETURN_IF_ERROR(Check(st, err));
  return ok != 0;
}

Status Device::Execute(const tsr_graph_view& graph, std::span<const int32_t> nodes) {
  if (!plugin_->api().execute) return Unimplemented(label_ + ": no execute");
  tsr_error err = NewError();
  return Check(plugin_->api().execute(dev_, &graph, nodes.data(),
                                      static_cast<int32_t>(nodes.size()), nullptr, &err),
               err);
}

}  // namespace tessera
