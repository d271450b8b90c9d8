// Machine probes for `engine bench`: how fast this machine can read memory and run the
// arithmetic instructions the CPU kernels use, measured the same way every time so benchmark
// results can be stated as a fraction of what the hardware allows.
//
// Every probe starts its own threads (one per requested thread, the calling thread included),
// so call them between benchmark runs, never while a model step runs. Thread-safe in the sense
// that probes share no state, but concurrent probes disturb each other's numbers.
#ifndef TESSERA_TOOLS_BENCH_PROBES_H_
#define TESSERA_TOOLS_BENCH_PROBES_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace tessera::bench {

// "AMD EPYC ..." from /proc/cpuinfo, or "unknown CPU".
std::string CpuModelName();

// The Highway SIMD target the probes (and, with the same libhwy, the CPU plugin) dispatch to.
std::string SimdTargetName();

// True when the CPU and OS support AVX-512 BF16 (vdpbf16ps on zmm registers).
bool HasAvx512Bf16();

// True when the CPU and OS support AVX-512 VNNI (vpdpbusd on zmm registers), the instruction of
// the CPU plugin's int8 matmuls (--quantize q8|q4).
bool HasAvx512Vnni();

// STREAM-style read bandwidth. Owns a buffer of `bytes` (pick it much larger than the last-level
// cache), touched once at construction so page faults stay out of the timing.
class ReadBandwidthProbe {
 public:
  // REQUIRES: threads >= 1. `bytes` is rounded down to a multiple of 4 KiB per thread.
  ReadBandwidthProbe(size_t bytes, int threads);
  ~ReadBandwidthProbe();
  ReadBandwidthProbe(const ReadBandwidthProbe&) = delete;
  ReadBandwidthProbe& operator=(const ReadBandwidthProbe&) = delete;

  // Reads the whole buffer `passes` times, each thread summing its own contiguous slice with
  // wide loads, and returns the best pass in bytes per second (STREAM reports the best too: the
  // slower passes measure interference, not the memory system).
  double Measure(int passes = 3);
  size_t bytes() const { return bytes_; }
  int threads() const { return threads_; }

 private:
  size_t bytes_;
  int threads_;
  float* data_;  // bytes_ / 4 floats, page aligned
};

// Peak rate of f32 fused multiply-adds through Highway (the widest vector the CPU runs):
// `threads` threads each run independent FMA chains from registers for about `seconds`.
// Returns flop/s counting an FMA as 2 flops.
double MeasurePeakFmaF32(int threads, double seconds = 0.05);

// Peak rate of AVX-512 BF16 dot products (vdpbf16ps: 32 bf16 products summed pairwise into 16
// f32 lanes = 64 flops per instruction). Returns 0 when HasAvx512Bf16() is false.
double MeasurePeakDpbf16(int threads, double seconds = 0.05);

// Peak rate of AVX-512 VNNI int8 dot products (vpdpbusd: 64 byte products summed four at a time
// into 16 int32 lanes). Returns int8 ops/s counting a multiply-add as 2 ops (128 per
// instruction), the unit `engine bench` counts int8 matmul work in. 0 when HasAvx512Vnni() is
// false.
double MeasurePeakVnniInt8(int threads, double seconds = 0.05);

}  // namespace tessera::bench

#endif  // TESSERA_TOOLS_BENCH_PROBES_H_
