// Probe drivers: threads, timing, buffers and CPU identification. The SIMD loops live in
// probes_simd.cc (Highway dispatch) and probes_bf16.cc (AVX-512 BF16 and VNNI intrinsics).
#include "tessera/bench/probes.h"

#include <cpuid.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <thread>
#include <vector>

#include "hwy/targets.h"
#include "probes_internal.h"

namespace tessera::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Runs fn(thread) on `threads` threads (the caller is thread 0) after all have started, and
// returns the seconds from the common start to the last one finishing. Thread start-up stays
// out of the timing: workers spin on `go` until everyone is ready.
double TimeOnThreads(int threads, const std::function<void(int)>& fn) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(threads - 1));
  for (int t = 1; t < threads; ++t) {
    workers.emplace_back([&, t] {
      ready.fetch_add(1, std::memory_order_acq_rel);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      fn(t);
    });
  }
  while (ready.load(std::memory_order_acquire) < threads - 1) std::this_thread::yield();
  const auto t0 = Clock::now();
  go.store(true, std::memory_order_release);
  fn(0);
  for (std::thread& w : workers) w.join();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

constexpr size_t kPage = 4096;

}  // namespace

std::string CpuModelName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) break;
    const size_t start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? "unknown CPU" : line.substr(start);
  }
  return "unknown CPU";
}

std::string SimdTargetName() {
  return hwy::TargetName(internal::ChosenTarget());
}

bool HasAvx512Bf16() {
  // Highway's AVX3 bit already checks that the OS saves zmm state (XGETBV); AVX512_BF16 is
  // CPUID leaf 7, sub-leaf 1, EAX bit 5.
  if ((hwy::SupportedTargets() & HWY_AVX3) == 0) return false;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (eax >> 5) & 1;
}

bool HasAvx512Vnni() {
  // AVX512_VNNI is CPUID leaf 7, sub-leaf 0, ECX bit 11 (zmm state: Highway's AVX3 bit).
  if ((hwy::SupportedTargets() & HWY_AVX3) == 0) return false;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (ecx >> 11) & 1;
}

ReadBandwidthProbe::ReadBandwidthProbe(size_t bytes, int threads)
    : threads_(std::max(1, threads)), data_(nullptr) {
  const size_t per_thread = std::max(kPage, bytes / threads_ / kPage * kPage);
  bytes_ = per_thread * threads_;
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  TSR_CHECK(p != MAP_FAILED);
  data_ = static_cast<float*>(p);
  // Each thread touches its own slice so pages land where that thread runs (first touch).
  const size_t floats = per_thread / 4;
  TimeOnThreads(threads_, [&](int t) {
    float* s = data_ + static_cast<size_t>(t) * floats;
    for (size_t i = 0; i < floats; ++i) s[i] = 1.0f;
  });
}

ReadBandwidthProbe::~ReadBandwidthProbe() {
  munmap(data_, bytes_);
}

double ReadBandwidthProbe::Measure(int passes) {
  const size_t floats = bytes_ / 4 / static_cast<size_t>(threads_);
  std::vector<float> sinks(static_cast<size_t>(threads_) * 16);
  double best = 0;
  for (int pass = 0; pass < std::max(1, passes); ++pass) {
    const double s = TimeOnThreads(threads_, [&](int t) {
      sinks[static_cast<size_t>(t) * 16] =
          internal::SumFloats(data_ + static_cast<size_t>(t) * floats, floats);
    });
    best = std::max(best, static_cast<double>(bytes_) / s);
  }
  internal::Consume(sinks[0]);
  return best;
}

namespace {

// Peak rate of a register-only loop: calibrates `chains(iters)`'s iteration count on one thread
// to about `seconds`, then times all threads running it together. Returns ops/s.
double MeasurePeak(int threads, double seconds, float (*chains)(int64_t), double ops_per_iter) {
  threads = std::max(1, threads);
  int64_t iters = 1 << 16;
  for (;;) {
    const double s = TimeOnThreads(1, [&](int) { internal::Consume(chains(iters)); });
    if (s >= seconds / 4 || iters > (int64_t{1} << 40)) {
      iters = static_cast<int64_t>(static_cast<double>(iters) * seconds / std::max(s, 1e-9));
      break;
    }
    iters *= 4;
  }
  iters = std::max<int64_t>(iters, 1024);
  const double s = TimeOnThreads(threads, [&](int) { internal::Consume(chains(iters)); });
  return ops_per_iter * static_cast<double>(iters) * threads / s;
}

}  // namespace

double MeasurePeakFmaF32(int threads, double seconds) {
  return MeasurePeak(threads, seconds, internal::FmaChains,
                     static_cast<double>(internal::FmaFlopsPerIteration()));
}

double MeasurePeakDpbf16(int threads, double seconds) {
  if (!HasAvx512Bf16()) return 0;
  return MeasurePeak(threads, seconds, internal::Dpbf16Chains,
                     static_cast<double>(internal::kDpbf16FlopsPerIteration));
}

double MeasurePeakVnniInt8(int threads, double seconds) {
  if (!HasAvx512Vnni()) return 0;
  return MeasurePeak(threads, seconds, internal::VnniChains,
                     static_cast<double>(internal::kVnniOpsPerIteration));
}

}  // namespace tessera::bench
