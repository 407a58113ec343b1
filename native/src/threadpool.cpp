#include "threadpool.h"

#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AMNESIA_PAUSE() _mm_pause()
#else
#define AMNESIA_PAUSE() std::this_thread::yield()
#endif

namespace amnesia {

namespace {
const int kSpin = std::getenv("AMNESIA_SPIN") ? std::atoi(std::getenv("AMNESIA_SPIN")) : 0;  // spinning (PAUSE) is very costly in VMs
}

ThreadPool::ThreadPool(int nthreads) {
  if (nthreads < 1) nthreads = 1;
  threads_.reserve(static_cast<size_t>(nthreads - 1));
  for (int i = 1; i < nthreads; ++i) threads_.emplace_back([this, i] { loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    gen_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::work(int id) {
  const int n = ntasks_;
  for (;;) {
    const int i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= n) break;
    try {
      (*fn_)(i, id);
    } catch (...) {
      std::lock_guard<std::mutex> lk(err_mu_);
      if (!err_) err_ = std::current_exception();
    }
  }
}

void ThreadPool::loop(int id) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = gen_.load(std::memory_order_acquire);
    for (int s = 0; g == seen && s < kSpin; ++s) {
      AMNESIA_PAUSE();
      g = gen_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return gen_.load(std::memory_order_acquire) != seen; });
      g = gen_.load(std::memory_order_acquire);
    }
    seen = g;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_) return;
    }
    work(id);
    if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lk(mu_);
      done_cv_.notify_one();
    }
  }
}

void ThreadPool::run(int ntasks, const std::function<void(int, int)>& fn) {
  if (ntasks <= 0) return;
  if (threads_.empty() || ntasks == 1) {
    for (int i = 0; i < ntasks; ++i) fn(i, 0);
    return;
  }
  err_ = nullptr;
  {
    std::lock_guard<std::mutex> lk(mu_);
    fn_ = &fn;
    ntasks_ = ntasks;
    next_.store(0, std::memory_order_relaxed);
    active_.store(static_cast<int>(threads_.size()), std::memory_order_relaxed);
    gen_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  work(0);
  for (int s = 0; active_.load(std::memory_order_acquire) != 0 && s < kSpin * 4; ++s) AMNESIA_PAUSE();
  if (active_.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return active_.load(std::memory_order_acquire) == 0; });
  }
  fn_ = nullptr;
  if (err_) {
    std::exception_ptr e = err_;
    err_ = nullptr;
    std::rethrow_exception(e);
  }
}

}  // namespace amnesia
