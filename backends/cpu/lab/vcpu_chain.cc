// vcpu_chain: whether this VM's two vCPUs run on two host cores right now (cpu-q20, 2026-11-28,
// issue 8). One dependent multiply-add chain (latency-bound: it leaves the core's pipes idle)
// pinned to each vCPU, alone and then both at once. On two cores (or SMT siblings) each keeps its
// rate; where the host time-slices both vCPUs on one core each drops to half. In those minutes
// the two-thread vpdpbusd probe reads what the one-thread probe reads (~880 int8 GOP/s instead
// of ~1760) and every two-thread fraction compares with one core.
//   g++ -O2 -o /tmp/vcpu_chain backends/cpu/lab/vcpu_chain.cc
//   nice -n -19 taskset -c 0 /tmp/vcpu_chain                  # alone: ~0.84 G links/s
//   (nice -n -19 taskset -c 0 /tmp/vcpu_chain & nice -n -19 taskset -c 1 /tmp/vcpu_chain; wait)
#include <time.h>

#include <cstdint>
#include <cstdio>

int main() {
  timespec a, b;
  uint64_t x = 12345;
  constexpr long kLinks = 400000000L;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < kLinks; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    __asm__ volatile("" : "+r"(x));  // keeps the chain in the loop
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  const double s =
      static_cast<double>(b.tv_sec - a.tv_sec) + 1e-9 * static_cast<double>(b.tv_nsec - a.tv_nsec);
  std::printf("%.3f s, %.2f G links/s (x %llu)\n", s, 1e-9 * kLinks / s,
              static_cast<unsigned long long>(x & 0xff));
  return 0;
}
