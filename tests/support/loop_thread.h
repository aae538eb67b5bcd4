#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "core/loop/loop.h"

namespace hmq::test {

// A real event_loop running on its own thread, for integration tests. Components that live on
// the loop are created, used and destroyed through call(), which runs a function on the loop
// thread and returns its result (exceptions propagate to the caller). The destructor stops the
// loop and joins; destroy loop-owned components before that.
class loop_thread {
 public:
  loop_thread() : thread_([this] { loop_.run(); }) {}
  ~loop_thread() {
    loop_.stop();
    thread_.join();
  }
  loop_thread(const loop_thread&) = delete;
  loop_thread& operator=(const loop_thread&) = delete;

  core::loop::event_loop& loop() { return loop_; }

  template <typename F>
  auto call(F&& f) -> decltype(f()) {
    using R = decltype(f());
    std::packaged_task<R()> task(std::forward<F>(f));
    auto fut = task.get_future();
    loop_.post([&task] { task(); });
    return fut.get();
  }

 private:
  core::loop::event_loop loop_;
  std::thread thread_;
};

// A condition any thread can signal and a test thread can wait for with a deadline: the only
// way integration tests wait (never a fixed sleep).
class waiter {
 public:
  // Run `change` under the lock and wake waiters.
  template <typename F>
  void update(F&& change) {
    {
      std::lock_guard lk(mu_);
      change();
    }
    cv_.notify_all();
  }
  // Wait until pred() holds (checked under the lock) or the deadline passes; returns pred().
  template <typename P>
  bool wait(P pred, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, pred);
  }
  // Read state under the lock.
  template <typename F>
  auto read(F&& f) -> decltype(f()) {
    std::lock_guard lk(mu_);
    return f();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace hmq::test
