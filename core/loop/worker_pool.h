#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/loop/loop.h"

namespace hmq::core::loop {

// CPU-heavy work off the loop thread (Argon2id verifications): a fixed set of threads and a
// bounded queue. A job runs on a worker and returns the continuation that then runs on the
// loop (scheduler::post), so the daemon's state is still touched by the loop thread only.
//
// submit() refuses when `max_queued` jobs already wait: the caller answers "busy" instead of
// queueing without end. Destroying the pool (on the loop thread) drops queued jobs, waits for
// running ones and makes sure no continuation of it runs afterwards.
class worker_pool {
 public:
  using job = std::function<std::function<void()>()>;

  worker_pool(scheduler& loop, size_t threads, size_t max_queued);
  ~worker_pool();
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  // Call from the loop thread. False (and `j` is dropped) when the queue is full.
  bool submit(job j);

  // Jobs waiting for a worker (not counting the running ones).
  size_t queued() const;
  size_t threads() const { return threads_.size(); }

 private:
  void work();

  scheduler& loop_;
  const size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<job> jobs_;
  bool stopping_ = false;
  // Read and cleared on the loop thread only: continuations posted before the pool died check it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::vector<std::thread> threads_;
};

}  // namespace hmq::core::loop
