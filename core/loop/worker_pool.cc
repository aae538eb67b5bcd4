#include "core/loop/worker_pool.h"

#include <utility>

namespace hmq::core::loop {

worker_pool::worker_pool(scheduler& loop, size_t threads, size_t max_queued)
    : loop_(loop), max_queued_(max_queued) {
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

worker_pool::~worker_pool() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    jobs_.clear();
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  *alive_ = false;
}

bool worker_pool::submit(job j) {
  {
    std::lock_guard lk(mu_);
    if (stopping_ || jobs_.size() >= max_queued_) return false;
    jobs_.push_back(std::move(j));
  }
  cv_.notify_one();
  return true;
}

size_t worker_pool::queued() const {
  std::lock_guard lk(mu_);
  return jobs_.size();
}

void worker_pool::work() {
  for (;;) {
    job j;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      j = std::move(jobs_.front());
      jobs_.pop_front();
    }
    auto then = j();
    if (!then) continue;
    loop_.post([alive = alive_, then = std::move(then)] {
      if (*alive) then();
    });
  }
}

}  // namespace hmq::core::loop
