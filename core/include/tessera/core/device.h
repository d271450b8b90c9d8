// A C++ face on one plugin device: RAII buffers, Status errors, and counters the tests read.
#ifndef TESSERA_CORE_DEVICE_H_
#define TESSERA_CORE_DEVICE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tessera/core/plugin_loader.h"
#include "tessera/core/status.h"

namespace tessera {

class Device;

// Device memory. Freed on destruction; the Device must outlive it.
class DeviceBuffer {
 public:
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  tsr_buffer* handle() const { return buf_; }
  uint64_t size() const { return size_; }
  Device& device() const { return *device_; }
  // Host pointer for host-visible buffers (CPU plugin, unified memory); nullptr otherwise.
  void* host_ptr() const { return host_ptr_; }

 private:
  friend class Device;
  DeviceBuffer(Device* d, tsr_buffer* b, uint64_t size, void* host)
      : device_(d), buf_(b), size_(size), host_ptr_(host) {}
  Device* device_;
  tsr_buffer* buf_;
  uint64_t size_;
  void* host_ptr_;
};

// Host memory for a device's large downloads / uploads (a step's logits): allocated through the
// plugin's host_alloc (ABI 1.2; page-locked on CUDA, so buffer_download goes straight by DMA)
// where the device offers it, else ordinary heap memory. Move-only; freed on destruction (the
// Device must outlive it).
class HostBuffer {
 public:
  HostBuffer() = default;
  // `size` bytes (contents undefined). `dev` may be null: heap memory. Falls back to heap memory
  // when the plugin has no host_alloc or it fails (the transfer then only runs slower).
  static StatusOr<HostBuffer> Allocate(Device* dev, uint64_t size);
  ~HostBuffer() { Reset(); }
  HostBuffer(HostBuffer&& o) noexcept { *this = std::move(o); }
  HostBuffer& operator=(HostBuffer&& o) noexcept;
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  void* data() const { return ptr_; }
  uint64_t size() const { return size_; }
  // True when the memory came from the device's host_alloc.
  bool device_host_memory() const { return dev_ != nullptr; }
  void Reset();

 private:
  Device* dev_ = nullptr;  // the allocating device (null: heap memory, freed with free)
  void* ptr_ = nullptr;
  uint64_t size_ = 0;
};

class Device {
 public:
  // Opens device `index` of `plugin`. The plugin must outlive the device.
  static StatusOr<std::unique_ptr<Device>> Open(Plugin* plugin, int32_t index);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  Plugin& plugin() const { return *plugin_; }
  tsr_device* handle() const { return dev_; }
  const tsr_device_props& props() const { return props_; }
  // "cpu:0", "cuda:1"
  const std::string& label() const { return label_; }
  bool compile_style() const { return (props_.exec_styles & TSR_EXEC_COMPILE) != 0; }

  StatusOr<std::unique_ptr<DeviceBuffer>> Alloc(uint64_t size);
  // Zero-copy import of host memory (mmap'd weights); Unsupported when the device can't.
  StatusOr<std::unique_ptr<DeviceBuffer>> ImportHost(void* ptr, uint64_t size);
  Status Upload(DeviceBuffer& dst, uint64_t offset, const void* src, uint64_t size);
  Status Download(const DeviceBuffer& src, uint64_t offset, void* dst, uint64_t size);
  Status Synchronize();
  // Host memory through the plugin's host_alloc (ABI 1.2): Unimplemented when the plugin lacks
  // it. Prefer HostBuffer::Allocate, which falls back to heap memory and frees it.
  bool has_host_alloc() const;
  StatusOr<void*> HostAlloc(uint64_t size);
  void HostFree(void* ptr);

  StatusOr<bool> SupportsOp(const tsr_graph_view& graph, int32_t node);
  Status Execute(const tsr_graph_view& graph, std::span<const int32_t> nodes);

  // Converts a plugin error into a Status prefixed with this device's label.
  Status Check(tsr_status code, const tsr_error& err) const;

  // Buffers allocated through this device so far (imports included). Thread-safe.
  int64_t alloc_count() const { return alloc_count_.load(); }

 private:
  Device() = default;
  Plugin* plugin_ = nullptr;
  tsr_device* dev_ = nullptr;
  tsr_device_props props_{};
  bool host_visible_ = false;
  std::string label_;
  std::atomic<int64_t> alloc_count_{0};
};

}  // namespace tessera

#endif  // TESSERA_CORE_DEVICE_H_
