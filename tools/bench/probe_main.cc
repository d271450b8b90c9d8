// machine_probe: prints what tessera_probes measures on this machine (read bandwidth, f32 FMA,
// AVX-512 BF16 and AVX-512 VNNI int8 peaks) for 1..N threads, the numbers `engine bench` compares
// runs against.
//   build/perf/bin/machine_probe [--threads N] [--mib 512] [--reps 5]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "tessera/bench/probes.h"

int main(int argc, char** argv) {
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  size_t mib = 512;
  int reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--threads")
      threads = std::atoi(argv[i + 1]);
    else if (a == "--mib")
      mib = static_cast<size_t>(std::atoll(argv[i + 1]));
    else if (a == "--reps")
      reps = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: machine_probe [--threads N] [--mib MiB] [--reps R]\n");
      return 2;
    }
  }
  using namespace tessera::bench;
  std::printf("cpu: %s, simd: %s, avx512_bf16: %s, avx512_vnni: %s\n", CpuModelName().c_str(),
              SimdTargetName().c_str(), HasAvx512Bf16() ? "yes" : "no",
              HasAvx512Vnni() ? "yes" : "no");
  for (int t = 1; t <= threads; ++t) {
    ReadBandwidthProbe bw(mib << 20, t);
    std::vector<double> b, f, d, vn;
    for (int r = 0; r < reps; ++r) {
      b.push_back(bw.Measure());
      f.push_back(MeasurePeakFmaF32(t));
      d.push_back(MeasurePeakDpbf16(t));
      vn.push_back(MeasurePeakVnniInt8(t));
    }
    auto med = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    std::printf(
        "threads %d: read %.2f GB/s, f32 fma %.1f GFLOP/s, vdpbf16ps %.1f GFLOP/s, vpdpbusd %.1f "
        "int8 GOP/s (medians of %d)\n",
        t, med(b) / 1e9, med(f) / 1e9, med(d) / 1e9, med(vn) / 1e9, reps);
  }
  return 0;
}
