#include "backends/cpu/thread_pool.h"

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TSR_CPU_RELAX() _mm_pause()
#else
#define TSR_CPU_RELAX() std::this_thread::yield()
#endif

namespace tessera::cpu {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Spins until pred() or `seconds` pass; returns pred()'s last value. The clock is read every
// 64 spins only.
template <class Pred>
bool SpinUntil(Pred pred, double seconds) {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(seconds));
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      TSR_CPU_RELAX();
    }
    if (Clock::now() >= deadline) return pred();
  }
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) : num_threads_(num_threads < 1 ? 1 : num_threads) {
  workers_.reserve(num_threads_ - 1);
  for (int t = 1; t < num_threads_; ++t) workers_.emplace_back([this, t] { WorkerLoop(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (std::thread& w : workers_) w.join();
}

void ThreadPool::RunTasks(int thread) {
  for (;;) {
    const int64_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) return;
    try {
      (*fn_)(task, thread);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
    }
  }
}

bool ThreadPool::AwaitJob(uint32_t seen) {
  auto ready = [&] { return stop_.load() || static_cast<uint32_t>(state_.load() >> 32) != seen; };
  if (!SpinUntil(ready, kSpinSeconds)) {
    std::unique_lock<std::mutex> lock(mu_);
    sleepers_.fetch_add(1);
    wake_.wait(lock, ready);
    sleepers_.fetch_sub(1);
  }
  return !stop_.load();
}

bool ThreadPool::TryJoin(uint32_t gen) {
  uint64_t s = state_.load();
  while (static_cast<uint32_t>(s >> 32) == gen && (s & kOpen) != 0) {
    if (state_.compare_exchange_weak(s, s + 1)) return true;
  }
  return false;
}

void ThreadPool::Leave() {
  const uint64_t before = state_.fetch_sub(1);
  // The last worker out of a closed job wakes the caller if it went to sleep.
  if ((before & kJoinedMask) == 1 && (before & kOpen) == 0 && caller_waiting_.load()) {
    { std::lock_guard<std::mutex> lock(mu_); }
    done_.notify_one();
  }
}

void ThreadPool::WorkerLoop(int thread) {
  uint32_t seen = 0;
  for (;;) {
    if (!AwaitJob(seen)) return;
    seen = static_cast<uint32_t>(state_.load() >> 32);
    if (!TryJoin(seen)) continue;  // closed already: every task was taken
    if (stats_on_) {
      const Clock::time_point t0 = Clock::now();
      join_ns_.fetch_add(
          std::chrono::duration_cast<std::chrono::nanoseconds>(t0 - published_).count(),
          std::memory_order_relaxed);
      RunTasks(thread);
      worker_busy_ns_.fetch_add(
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count(),
          std::memory_order_relaxed);
    } else {
      RunTasks(thread);
    }
    Leave();
  }
}

void ThreadPool::ParallelFor(int64_t n_tasks,
                             const std::function<void(int64_t task, int thread)>& fn) {
  if (n_tasks <= 0) return;
  // One task or one thread: run inline, no wake-up cost (the common decode-step case for
  // small ops).
  if (n_tasks == 1 || workers_.empty()) {
    for (int64_t t = 0; t < n_tasks; ++t) fn(t, 0);
    return;
  }
  Clock::time_point t0, t1;
  if (stats_on_) t0 = published_ = Clock::now();
  fn_ = &fn;
  n_tasks_ = n_tasks;
  next_task_.store(0, std::memory_order_relaxed);
  ++generation_;
  state_.store((static_cast<uint64_t>(generation_) << 32) | kOpen);  // publish (seq_cst)
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lock(mu_); }  // orders the notify after a sleeper's check
    wake_.notify_all();
  }
  RunTasks(0);
  if (stats_on_) t1 = Clock::now();
  // Every task is claimed: close the job and wait for the workers that joined it.
  auto drained = [&] { return (state_.load() & kJoinedMask) == 0; };
  state_.fetch_and(~kOpen);
  if (!SpinUntil(drained, kSpinSeconds)) {
    std::unique_lock<std::mutex> lock(mu_);
    caller_waiting_.store(true);
    done_.wait(lock, drained);
    caller_waiting_.store(false);
  }
  if (stats_on_) {
    const Clock::time_point t2 = Clock::now();
    ++stats_.jobs;
    stats_.tasks += n_tasks;
    stats_.wall_s += Seconds(t0, t2);
    stats_.caller_busy_s += Seconds(t0, t1);
    stats_.drain_s += Seconds(t1, t2);
  }
  fn_ = nullptr;
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lock(mu_);
    error = error_;
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

ThreadPool::Stats ThreadPool::stats() const {
  Stats s = stats_;
  s.worker_busy_s = 1e-9 * static_cast<double>(worker_busy_ns_.load());
  s.join_s = 1e-9 * static_cast<double>(join_ns_.load());
  return s;
}

}  // namespace tessera::cpu
