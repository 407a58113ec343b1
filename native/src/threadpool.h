// A small persistent thread pool. The calling thread takes part as worker 0, so a pool of n runs
// n − 1 extra threads. Tasks are handed out by an atomic counter; which worker runs a task never
// matters for results (every task writes complete output elements).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace amnesia {

class ThreadPool {
 public:
  explicit ThreadPool(int nthreads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(threads_.size()) + 1; }
  // Runs fn(task, worker) for every task in [0, ntasks) and returns when all are done. worker is in
  // [0, size()). One run at a time (the engine serialises steps). Rethrows the first exception.
  void run(int ntasks, const std::function<void(int, int)>& fn);

 private:
  void loop(int id);
  void work(int id);

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  std::atomic<uint64_t> gen_{0};
  bool stop_ = false;
  const std::function<void(int, int)>* fn_ = nullptr;
  int ntasks_ = 0;
  std::atomic<int> next_{0};
  std::atomic<int> active_{0};
  std::mutex err_mu_;
  std::exception_ptr err_;
};

}  // namespace amnesia
