// A per-op time table for the CPU device, switched on with TESSERA_CPU_PROFILE=1 (read once per
// process) and printed to stderr when the device closes. It answers "where does a decode step's
// time go": wall time per op kind (MATMUL per weight shape and dtype, so the LM head stands
// apart), the bytes the op's inputs span (for MATMUL: the weights) and so the rate it read them
// at, and the host's time between execute calls. Each line also gives its first call's time and
// the rate without it: a weight's first call pays the page faults of its mapping (the LM head's
// 66k minor faults took ~250 ms of the pp warm-up call, so its per-call average over the 4-5
// calls of `engine bench -p 512 -r 3` read 2-10 GB/s against 16-37 in decode, where 128+ calls
// dilute it). Off, it costs one predictable branch per node.
#ifndef TESSERA_BACKENDS_CPU_OP_PROFILE_H_
#define TESSERA_BACKENDS_CPU_OP_PROFILE_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "backends/cpu/ops.h"
#include "backends/cpu/thread_pool.h"

namespace tessera::cpu {

class OpProfile {
 public:
  using Clock = std::chrono::steady_clock;

  // TESSERA_CPU_PROFILE set to anything but "" or "0".
  static bool Enabled() {
    static const bool on = [] {
      const char* e = std::getenv("TESSERA_CPU_PROFILE");
      return e != nullptr && *e != '\0' && std::string(e) != "0";
    }();
    return on;
  }

  // Brackets one execute call (the host's time between calls counts as "host gap").
  void BeginExecute() {
    const Clock::time_point now = Clock::now();
    if (executes_ > 0) gap_s_ += Seconds(last_end_, now);
    ++executes_;
    begin_ = now;
    ops_at_begin_ = ops_s_;
  }
  void EndExecute() {
    last_end_ = Clock::now();
    execute_s_ += Seconds(begin_, last_end_);
    calls_s_.push_back(Seconds(begin_, last_end_));
    outside_s_.push_back(Seconds(begin_, last_end_) - (ops_s_ - ops_at_begin_));
  }

  // One node that ran for `seconds`; `pool_share` of the pool's stats between before and after
  // (the share of a group's time that is this node's) adds to the line's idle share.
  void Record(const OpArgs& a, double seconds, const ThreadPool::Stats* before = nullptr,
              const ThreadPool::Stats* after = nullptr, double pool_share = 1.0) {
    Entry& e = entries_[Key(a)];
    if (before != nullptr && after != nullptr) {
      e.pool_wall += pool_share * (after->wall_s - before->wall_s);
      e.pool_busy += pool_share * (after->caller_busy_s - before->caller_busy_s +
                                   after->worker_busy_s - before->worker_busy_s);
      e.pool_join += pool_share * (after->join_s - before->join_s);
      e.pool_drain += pool_share * (after->drain_s - before->drain_s);
    }
    if (e.calls == 0) e.first_seconds = seconds;
    ++e.calls;
    e.seconds += seconds;
    ops_s_ += seconds;
    e.bytes += static_cast<double>(ReadBytes(a));
  }

  void Print(const ThreadPool& pool) const {
    if (executes_ == 0) return;
    double total = 0;
    for (const auto& [key, e] : entries_) total += e.seconds;
    std::vector<std::pair<std::string, Entry>> rows(entries_.begin(), entries_.end());
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
    // Inside execute but outside the ops: loading, validating and grouping the nodes.
    std::fprintf(stderr,
                 "cpu profile: %lld execute calls, ops %.3f s, execute outside ops %.3f s, host "
                 "gaps between calls %.3f s\n",
                 static_cast<long long>(executes_), total, execute_s_ - total, gap_s_);
    // Each call's wall and its part outside the ops (the first use of a weight packs it there).
    std::fprintf(stderr, "cpu profile: calls (ms, outside ops ms):");
    for (size_t i = 0; i < calls_s_.size() && i < 8; ++i)
      std::fprintf(stderr, " %.1f/%.1f", calls_s_[i] * 1e3, outside_s_[i] * 1e3);
    std::fprintf(stderr, "\n");
    // Decode: one execute call a token. The calls' mean over their median is what
    // interruptions cost the steps: another tenant, or under SCHED_FIFO the kernel's RT
    // throttling (each CPU stopped ~50 ms a second; a step whose other thread is stopped waits).
    // Calls under half the median (not steps) are left out; so are failed calls.
    std::vector<double> steps = calls_s_;
    std::sort(steps.begin(), steps.end());
    if (!steps.empty()) {
      const double half = 0.5 * steps[steps.size() / 2];
      steps.erase(steps.begin(), std::lower_bound(steps.begin(), steps.end(), half));
    }
    if (!steps.empty()) {
      double mean = 0;
      for (double c : steps) mean += c / static_cast<double>(steps.size());
      const double med = steps[steps.size() / 2];
      std::fprintf(stderr,
                   "cpu profile: %zu execute calls of >= half the median: median %.3f ms, mean "
                   "%.3f ms (mean / median %.3f), max %.3f ms\n",
                   steps.size(), med * 1e3, mean * 1e3, mean / med, steps.back() * 1e3);
    }
    std::fprintf(stderr, "%-44s %9s %10s %6s %10s %9s %10s %9s %6s %6s %6s\n", "op", "calls", "ms",
                 "share", "us/call", "GB/s in", "1st ms", "GB/s rest", "idle", "join", "drain");
    for (const auto& [key, e] : rows) {
      // The calls after the first (each call of a line reads the same bytes).
      const double rest_s = e.seconds - e.first_seconds;
      const double rest_bytes = e.bytes * static_cast<double>(e.calls - 1) / e.calls;
      // idle: the pool's idle share in this line's jobs (2 threads x their wall).
      const double idle =
          e.pool_wall > 0 ? 100.0 * (1.0 - e.pool_busy / (pool.num_threads() * e.pool_wall)) : 0;
      // join: the workers' delay from publish to joining; drain: the caller's wait after its
      // last task; both as shares of 2 threads x the line's pool wall.
      const double tw = pool.num_threads() * e.pool_wall;
      std::fprintf(stderr,
                   "%-44s %9lld %10.2f %5.1f%% %10.2f %9.2f %10.2f %9.2f %5.1f%% %5.1f%% %5.1f%%\n",
                   key.c_str(), static_cast<long long>(e.calls), e.seconds * 1e3,
                   100 * e.seconds / total, e.seconds / static_cast<double>(e.calls) * 1e6,
                   e.seconds > 0 ? e.bytes / e.seconds / 1e9 : 0.0, e.first_seconds * 1e3,
                   rest_s > 0 ? rest_bytes / rest_s / 1e9 : 0.0, idle,
                   tw > 0 ? 100 * e.pool_join / tw : 0.0, tw > 0 ? 100 * e.pool_drain / tw : 0.0);
    }
    // The pool's jobs (every op that split across threads): how much of the threads' time in
    // them was spent waiting (a worker joining late, one thread still on its last task).
    const ThreadPool::Stats ps = pool.stats();
    if (ps.jobs > 0) {
      const double busy = ps.caller_busy_s + ps.worker_busy_s;
      std::fprintf(stderr,
                   "cpu profile: pool %lld jobs, %lld tasks, %.3f s wall; in tasks: caller %.3f s, "
                   "workers %.3f s; idle %.1f%% of %d threads x wall (caller waiting for "
                   "workers %.3f s)\n",
                   static_cast<long long>(ps.jobs), static_cast<long long>(ps.tasks), ps.wall_s,
                   ps.caller_busy_s, ps.worker_busy_s,
                   100.0 * (1.0 - busy / (pool.num_threads() * ps.wall_s)), pool.num_threads(),
                   ps.drain_s);
    }
  }

 private:
  struct Entry {
    int64_t calls = 0;
    double seconds = 0, bytes = 0, first_seconds = 0, pool_wall = 0, pool_busy = 0, pool_join = 0,
           pool_drain = 0;
  };

  static double Seconds(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  }

  // The op's name; MATMUL adds "M=rows NxK dtype" so each weight shape (the LM head too) and
  // decode (M = 1) versus prefill get their own line.
  static std::string Key(const OpArgs& a) {
    std::string key = OpName(a.node->op);
    if (a.node->op == TSR_OP_MATMUL && a.n_in >= 2 && a.in[0] != nullptr && a.in[1] != nullptr) {
      const TensorRef& x = *a.in[0];
      const TensorRef& w = *a.in[1];
      key += " M=" + std::to_string(x.dim(-2)) + " " + std::to_string(w.dim(-2)) + "x" +
             std::to_string(w.dim(-1)) + " " + DtypeName(w.dtype);
    } else if (a.out != nullptr) {
      key += a.out->Rows() <= 64 ? " small" : " large";  // rough decode / prefill split
    }
    return key;
  }

  // MATMUL: the weights' bytes; GET_ROWS: the rows it gathers (not the whole table); other
  // ops: every input's extent.
  static int64_t ReadBytes(const OpArgs& a) {
    if (a.node->op == TSR_OP_MATMUL && a.n_in >= 2 && a.in[1] != nullptr) return a.in[1]->Extent();
    if (a.node->op == TSR_OP_GET_ROWS && a.n_in >= 2 && a.in[0] != nullptr && a.in[1] != nullptr)
      return a.in[1]->ne[0] * a.in[0]->nb[0] + a.in[1]->Extent();
    int64_t bytes = 0;
    for (int i = 0; i < a.n_in; ++i) {
      if (a.in[i] != nullptr) bytes += a.in[i]->Extent();
    }
    return bytes;
  }

  std::map<std::string, Entry> entries_;
  int64_t executes_ = 0;
  double gap_s_ = 0, execute_s_ = 0;
  std::vector<double> calls_s_;    // each execute call's seconds
  std::vector<double> outside_s_;  // each execute call's seconds outside the ops
  double ops_s_ = 0, ops_at_begin_ = 0;
  Clock::time_point last_end_, begin_;
};

}  // namespace tessera::cpu

#endif  // TESSERA_BACKENDS_CPU_OP_PROFILE_H_
