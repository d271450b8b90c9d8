// The one worker pool of a CPU device. Every multi-threaded kernel goes through ParallelFor;
// kernels never start threads of their own.
#ifndef TESSERA_BACKENDS_CPU_THREAD_POOL_H_
#define TESSERA_BACKENDS_CPU_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tessera::cpu {

class ThreadPool {
 public:
  // Starts num_threads - 1 workers; the thread calling ParallelFor is the last participant.
  // REQUIRES: num_threads >= 1.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();  // joins the workers
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Runs fn(task, thread) for every task in [0, n_tasks) and returns when all are done. `thread`
  // is in [0, num_threads()) and unique among concurrently running calls, so it can index
  // per-thread scratch. Tasks are handed out dynamically: which thread runs a task is
  // unspecified, so a task's result must not depend on `thread`. An exception thrown by a task
  // is rethrown here (the first one; the remaining tasks still run).
  // Not reentrant: calls on one pool are serialized by the owner (the host serializes calls
  // on a device) and fn must not call ParallelFor.
  void ParallelFor(int64_t n_tasks, const std::function<void(int64_t task, int thread)>& fn);

 private:
  void WorkerLoop(int thread);
  void RunTasks(int thread);

  const int num_threads_;
  std::vector<std::thread> workers_;

  std::mutex mu_;
  std::condition_variable wake_;  // workers wait for a new generation
  std::condition_variable done_;  // the caller waits for workers to finish one
  uint64_t generation_ = 0;       // GUARDED_BY(mu_)
  int active_workers_ = 0;        // GUARDED_BY(mu_): workers still inside the generation
  bool stop_ = false;             // GUARDED_BY(mu_)
  std::exception_ptr error_;      // GUARDED_BY(mu_)

  // The current job. Written by the caller before the generation is published under mu_.
  const std::function<void(int64_t, int)>* fn_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
};

}  // namespace tessera::cpu

#endif  // TESSERA_BACKENDS_CPU_THREAD_POOL_H_
