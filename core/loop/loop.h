#pragma once

#include <asio/io_context.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <thread>

namespace hmq::core::loop {

// Wall-clock source (unix milliseconds). Injected everywhere time matters so unit tests can
// move time by hand (manual_clock) instead of sleeping.
class clock {
 public:
  virtual ~clock() = default;
  virtual int64_t now_ms() const = 0;
};

class system_clock final : public clock {
 public:
  int64_t now_ms() const override;
};

// Test clock: time moves only when told. Thread-safe.
class manual_clock final : public clock {
 public:
  explicit manual_clock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  int64_t now_ms() const override;
  void set_ms(int64_t t);
  void advance(std::chrono::milliseconds d);

 private:
  mutable std::mutex mu_;
  int64_t now_;
};

// Cancels its timer when cancelled or destroyed. Move-only; a default one is inert.
class timer_handle {
 public:
  timer_handle() = default;
  explicit timer_handle(std::shared_ptr<bool> cancelled) : cancelled_(std::move(cancelled)) {}
  timer_handle(timer_handle&&) noexcept = default;
  timer_handle& operator=(timer_handle&& o) noexcept {
    cancel();
    cancelled_ = std::move(o.cancelled_);
    return *this;
  }
  timer_handle(const timer_handle&) = delete;
  timer_handle& operator=(const timer_handle&) = delete;
  ~timer_handle() { cancel(); }

  void cancel() {
    if (cancelled_) *cancelled_ = true;
    cancelled_.reset();
  }
  // The timer is pending (neither fired nor cancelled)? Firing also sets the flag.
  bool active() const { return cancelled_ && !*cancelled_; }

 private:
  std::shared_ptr<bool> cancelled_;
};

// What components need from a loop: the time, deferred work and timers. The real event_loop
// and the unit tests' manual_scheduler both implement it. All callbacks run on the loop thread.
class scheduler {
 public:
  virtual ~scheduler() = default;
  virtual const clock& time() const = 0;
  // Run fn on the loop thread soon. Thread-safe: this is how other threads hand work in.
  virtual void post(std::function<void()> fn) = 0;
  // Run fn on the loop thread after d (relative, monotonic). Call from the loop thread.
  [[nodiscard]] virtual timer_handle call_after(std::chrono::milliseconds d,
                                                std::function<void()> fn) = 0;
};

// One per daemon: an Asio io_context run by the thread that calls run(). Owns all component
// state by convention (only the loop thread touches it). stop() is thread-safe and lets run()
// return after the current handler; SIGINT/SIGTERM call the handler given to on_signals.
class event_loop final : public scheduler {
 public:
  event_loop();
  explicit event_loop(const clock& c);  // c must outlive the loop
  ~event_loop() override;

  const clock& time() const override { return *clock_; }
  void post(std::function<void()> fn) override;
  [[nodiscard]] timer_handle call_after(std::chrono::milliseconds d,
                                        std::function<void()> fn) override;

  // Runs handlers until stop(). Returns at once if stopped before.
  void run();
  // Thread-safe.
  void stop();
  // Install handlers for the given signals (default SIGINT, SIGTERM); fn runs on the loop thread.
  void on_signals(std::function<void(int)> fn,
                  std::initializer_list<int> signals = {SIGINT, SIGTERM});
  // True on the thread currently inside run().
  bool in_loop_thread() const;

  asio::io_context& io() { return io_; }

 private:
  struct impl;
  system_clock default_clock_;
  const clock* clock_;
  asio::io_context io_;
  std::unique_ptr<impl> impl_;
  std::shared_ptr<void> keep_alive_;  // signal re-arm closure
};

// Unit-test scheduler: nothing runs until the test says so. post() queues; advance() moves the
// manual clock and fires due timers in time order; run_pending() drains posted work.
class manual_scheduler final : public scheduler {
 public:
  manual_scheduler();
  ~manual_scheduler() override;
  const clock& time() const override;
  void post(std::function<void()> fn) override;
  [[nodiscard]] timer_handle call_after(std::chrono::milliseconds d,
                                        std::function<void()> fn) override;

  // Runs posted work (including work posted by that work) until none is left. Returns count.
  size_t run_pending();
  // Advance time by d, firing due timers (and posted work) in order.
  void advance(std::chrono::milliseconds d);
  manual_clock& clock_ref();
  size_t pending_timers() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace hmq::core::loop
