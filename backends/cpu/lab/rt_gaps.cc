// rt_gaps: how long the threads of a run are stopped. T threads spin reading the clock for S
// seconds; each sums the gaps over 200 us in its own timeline (time it did not run) and prints
// their count, total and longest, then the union over the threads (time at least one was
// stopped: what a job split across all of them can lose) and their overlap.
//
//   g++ -O2 -std=c++20 -pthread -o /tmp/rt_gaps backends/cpu/lab/rt_gaps.cc
//   chrt -f 10 /tmp/rt_gaps 2 4      # the quiet-box method's runs (SCHED_FIFO)
//   nice -n -19 /tmp/rt_gaps 2 4     # the nice method
//
// Under SCHED_FIFO the kernel's RT throttling (sched_rt_runtime_us 950000 of
// sched_rt_period_us 1000000) stops each CPU's RT tasks ~50 ms a second: on the dev box (cpu-tg15,
// 15:10 UTC, load 3.2) each of 2 threads lost 4.9% / 5.3% of 4 s in 14 gaps, the longest 44 /
// 59 ms. A decode step whose other thread is stopped mid-task waits for it (the pool's jobs
// end when their last task does), so a whole-model run under chrt pays for both CPUs' windows
// where they do not overlap. cpu-tg15, 2026-11-27: docs/benchmarks.md.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const double seconds = argc > 2 ? std::atof(argv[2]) : 3;
  using Clock = std::chrono::steady_clock;
  std::vector<double> total(threads), longest(threads);
  std::vector<int> count(threads);
  std::vector<std::vector<std::pair<double, double>>> gaps(threads);  // [from, to) seconds
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const Clock::time_point start = Clock::now();
      Clock::time_point last = start;
      for (;;) {
        const Clock::time_point now = Clock::now();
        const double d = std::chrono::duration<double>(now - last).count();
        if (d > 200e-6) {
          total[t] += d;
          ++count[t];
          if (d > longest[t]) longest[t] = d;
          gaps[t].emplace_back(std::chrono::duration<double>(last - start).count(),
                               std::chrono::duration<double>(now - start).count());
        }
        last = now;
        if (std::chrono::duration<double>(now - start).count() > seconds) break;
      }
    });
  }
  for (std::thread& p : pool) p.join();
  std::vector<std::pair<double, double>> all;
  double sum = 0;
  for (const auto& g : gaps) {
    all.insert(all.end(), g.begin(), g.end());
    for (const auto& [a, b] : g) sum += b - a;
  }
  std::sort(all.begin(), all.end());
  double any = 0, from = -1, to = -1;
  for (const auto& [a, b] : all) {
    if (a > to) {
      any += to - from;
      from = a;
      to = b;
    } else {
      to = std::max(to, b);
    }
  }
  any += to - from;
  for (int t = 0; t < threads; ++t) {
    std::printf("thread %d: %d gaps > 200 us, %.1f ms in all (%.1f%% of %.1f s), longest %.1f ms\n",
                t, count[t], total[t] * 1e3, 100 * total[t] / seconds, seconds, longest[t] * 1e3);
  }
  std::printf("any thread stopped: %.1f ms (%.1f%%); several at once: %.1f ms\n", any * 1e3,
              100 * any / seconds, (sum - any) * 1e3);
  return 0;
}
