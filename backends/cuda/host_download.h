// Large synchronous downloads through pinned memory, copied out by a few host threads.
//
// Why: a decode step of B sequences downloads B rows of logits (64 x 152k floats = 37 MiB on
// Qwen2.5-0.5B) into the engine's pageable std::vector, which the driver stages at ~17 GB/s
// (H100 host, measured: 2.2 ms for 37 MiB) while a copy into pinned memory runs at ~54 GB/s
// (0.72 ms) and one host thread's memcpy at ~14 GB/s. So: the device copies the range into a
// pinned buffer in chunks, one event behind each, and the calling thread plus `workers` helper
// threads copy each chunk out as soon as its event completed: ~ the DMA time plus one chunk.
//
// Only the calling thread touches CUDA (copies, events); helpers only memcpy the chunks the
// caller has published as landed. One download at a time (the device's calls are serialized by
// the host, plugin_api.h). Plain bytes: the destination gets exactly the device's bytes.
// A destination from the plugin's own host_alloc (ABI 1.2; the engine keeps a step's logits in
// one) is already pinned: BufferDownload copies into it directly and skips this staging.
#ifndef TESSERA_BACKENDS_CUDA_HOST_DOWNLOAD_H_
#define TESSERA_BACKENDS_CUDA_HOST_DOWNLOAD_H_

#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace tessera::cuda {

class HostDownload {
 public:
  static constexpr uint64_t kDefaultChunk = uint64_t{2} << 20;
  static constexpr uint64_t kMinBytes = uint64_t{4} << 20;    // smaller: the direct copy
  static constexpr uint64_t kMaxBytes = uint64_t{256} << 20;  // larger: the direct copy

  // workers: helper threads besides the caller; chunk: bytes a copy/event (>= 64 KiB).
  HostDownload(int workers, uint64_t chunk)
      : n_workers_(std::max(0, workers)), chunk_(std::max<uint64_t>(chunk, 64 << 10)) {}
  HostDownload(const HostDownload&) = delete;
  HostDownload& operator=(const HostDownload&) = delete;
  ~HostDownload() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
    if (pinned_ != nullptr) cudaFreeHost(pinned_);
  }

  static bool Wants(uint64_t size) { return size >= kMinBytes && size <= kMaxBytes; }

  // dst <- src[0, size) after the work queued on `stream`; returns when dst holds the bytes.
  // Leaves the stream drained up to the copies (the caller still reads its error word).
  cudaError_t Run(cudaStream_t stream, void* dst, const uint8_t* src, uint64_t size) {
    const int n = static_cast<int>((size + chunk_ - 1) / chunk_);
    cudaError_t e = Reserve(size, n);
    if (e != cudaSuccess) return e;
    for (int i = 0; i < n; ++i) {
      const uint64_t off = static_cast<uint64_t>(i) * chunk_, len = std::min(chunk_, size - off);
      e = cudaMemcpyAsync(pinned_ + off, src + off, len, cudaMemcpyDeviceToHost, stream);
      if (e == cudaSuccess) e = cudaEventRecord(events_[i], stream);
      if (e != cudaSuccess) {
        cudaStreamSynchronize(stream);  // nothing of ours stays in flight into pinned_
        return e;
      }
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      dst_ = static_cast<uint8_t*>(dst);
      size_ = size;
      n_chunks_ = n;
      next_.store(0);
      landed_.store(0);
      busy_ = n_workers_;
      ++generation_;
    }
    cv_.notify_all();
    // Publish chunks in order as they land; a failed wait publishes the rest (their bytes are
    // not used: the error is returned) so the helpers finish.
    for (int i = 0; i < n; ++i) {
      const cudaError_t w = cudaEventSynchronize(events_[i]);
      if (w != cudaSuccess && e == cudaSuccess) e = w;
      landed_.store(i + 1, std::memory_order_release);
    }
    CopyChunks();
    std::unique_lock<std::mutex> l(mu_);
    done_cv_.wait(l, [&] { return busy_ == 0; });
    return e;
  }

 private:
  // Pinned room for `size` bytes, `n` events, the helper threads (first use).
  cudaError_t Reserve(uint64_t size, int n) {
    if (size > capacity_) {
      if (pinned_ != nullptr) cudaFreeHost(pinned_);
      pinned_ = nullptr;
      capacity_ = 0;
      const uint64_t want = (size + chunk_ - 1) / chunk_ * chunk_;
      cudaError_t e = cudaHostAlloc(reinterpret_cast<void**>(&pinned_), want, 0);
      if (e != cudaSuccess) return e;
      capacity_ = want;
    }
    while (static_cast<int>(events_.size()) < n) {
      cudaEvent_t ev = nullptr;
      cudaError_t e = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
      if (e != cudaSuccess) return e;
      events_.push_back(ev);
    }
    while (static_cast<int>(threads_.size()) < n_workers_)
      threads_.emplace_back([this] { Loop(); });
    return cudaSuccess;
  }

  // Takes chunks in order; each is copied once it has landed.
  void CopyChunks() {
    for (int i = next_.fetch_add(1); i < n_chunks_; i = next_.fetch_add(1)) {
      while (landed_.load(std::memory_order_acquire) <= i) std::this_thread::yield();
      const uint64_t off = static_cast<uint64_t>(i) * chunk_;
      std::memcpy(dst_ + off, pinned_ + off, std::min(chunk_, size_ - off));
    }
  }

  void Loop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      CopyChunks();
      {
        std::lock_guard<std::mutex> l(mu_);
        --busy_;
      }
      done_cv_.notify_all();
    }
  }

  const int n_workers_;
  const uint64_t chunk_;
  uint8_t* pinned_ = nullptr;  // cudaHostAlloc, capacity_ bytes
  uint64_t capacity_ = 0;
  std::vector<cudaEvent_t> events_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  bool stop_ = false;
  uint64_t generation_ = 0;  // one per Run: wakes the helpers
  int busy_ = 0;             // helpers still copying this Run's chunks
  // The current Run (written under mu_ before the helpers wake).
  uint8_t* dst_ = nullptr;
  uint64_t size_ = 0;
  int n_chunks_ = 0;
  std::atomic<int> next_{0}, landed_{0};
};

}  // namespace tessera::cuda

#endif  // TESSERA_BACKENDS_CUDA_HOST_DOWNLOAD_H_
