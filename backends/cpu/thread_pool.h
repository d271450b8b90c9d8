// The one worker pool of a CPU device. Every multi-threaded kernel goes through ParallelFor;
// kernels never start threads of their own.
//
// Wake-up latency matters more than anything else here: a decode step of a 24-layer model is a
// few hundred ParallelFor calls of 10-300 us each, and a futex wake-up costs several
// microseconds (tens in a VM). So idle workers spin for a short while (kSpinSeconds) before
// they sleep on a condition variable. And the caller never waits for a worker that has not
// started on the job: workers join a job while it is open, the caller closes it once every
// task is claimed and waits only for the workers that joined. On an oversubscribed machine a
// descheduled worker then costs nothing instead of a scheduler slice per call.
#ifndef TESSERA_BACKENDS_CPU_THREAD_POOL_H_
#define TESSERA_BACKENDS_CPU_THREAD_POOL_H_

#include <atomic>
#include <chrono>
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

  // Where the jobs that had workers spent their threads' time (TESSERA_CPU_PROFILE): wall from
  // publishing to the last worker leaving, each participant's time inside its tasks, and the
  // caller's wait for the workers after its last task. 1 - busy / (threads x wall) is the
  // share the threads sat idle in jobs: a late join, or one thread still on its last task.
  struct Stats {
    int64_t jobs = 0, tasks = 0;
    double wall_s = 0, caller_busy_s = 0, worker_busy_s = 0, drain_s = 0;
    double join_s = 0;  // from publishing to each joining worker's first claim, summed
  };
  // Off by default (then a job costs one predictable branch more); call before any job.
  void EnableStats() { stats_on_ = true; }
  Stats stats() const;

  // Runs fn(task, thread) for every task in [0, n_tasks) and returns when all are done. `thread`
  // is in [0, num_threads()) and unique among concurrently running calls, so it can index
  // per-thread scratch. Tasks are handed out dynamically: which thread runs a task is
  // unspecified, so a task's result must not depend on `thread`. An exception thrown by a task
  // is rethrown here (the first one; the remaining tasks still run).
  // Not reentrant: calls on one pool are serialized by the owner (the host serializes calls
  // on a device) and fn must not call ParallelFor.
  void ParallelFor(int64_t n_tasks, const std::function<void(int64_t task, int thread)>& fn);

  // How long an idle worker (or the caller waiting for workers) spins before it sleeps: long
  // enough to bridge the serial gaps between the ops of a step, short enough that a spinning
  // thread rarely runs out its scheduler slice on a busy machine.
  static constexpr double kSpinSeconds = 1e-4;

 private:
  // state_ layout: job generation (high 32 bits), open flag, number of joined workers.
  static constexpr uint64_t kOpen = uint64_t{1} << 31;
  static constexpr uint64_t kJoinedMask = kOpen - 1;

  void WorkerLoop(int thread);
  void RunTasks(int thread);
  // Waits until the generation differs from `seen` or stop_; false on stop.
  bool AwaitJob(uint32_t seen);
  // Joins the open job of generation `gen`; false if it is closed or superseded.
  bool TryJoin(uint32_t gen);
  void Leave();

  const int num_threads_;
  std::vector<std::thread> workers_;

  // The caller writes the job (fn_, n_tasks_, next_task_) and then publishes it by storing a
  // new generation with kOpen in state_; workers read the job only after joining with a CAS on
  // state_ while it is open, and the caller rewrites the job only after closing it and seeing
  // zero joined workers. sleepers_ / caller_waiting_ with seq_cst accesses tell the other side
  // to take mu_ and notify, without lost wake-ups.
  std::atomic<uint64_t> state_{0};
  uint32_t generation_ = 0;  // the caller's last published generation
  std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_waiting_{false};
  std::atomic<bool> stop_{false};

  std::mutex mu_;
  std::condition_variable wake_;  // sleeping workers wait for a new generation
  std::condition_variable done_;  // the caller waits for the joined workers to leave
  std::exception_ptr error_;      // GUARDED_BY(mu_)

  const std::function<void(int64_t, int)>* fn_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};

  bool stats_on_ = false;
  Stats stats_;                             // the caller's fields (worker_busy_s below)
  std::atomic<int64_t> worker_busy_ns_{0};  // workers add their time inside tasks
  std::atomic<int64_t> join_ns_{0};         // workers add their delay from publish to join
  // The open job's publish time (stats on only); workers read it after joining.
  std::chrono::steady_clock::time_point published_;
};

}  // namespace tessera::cpu

#endif  // TESSERA_BACKENDS_CPU_THREAD_POOL_H_
