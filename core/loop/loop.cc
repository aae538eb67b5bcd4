#include "core/loop/loop.h"

#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <map>
#include <vector>

namespace hmq::core::loop {

int64_t system_clock::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t manual_clock::now_ms() const {
  std::lock_guard lk(mu_);
  return now_;
}

void manual_clock::set_ms(int64_t t) {
  std::lock_guard lk(mu_);
  now_ = t;
}

void manual_clock::advance(std::chrono::milliseconds d) {
  std::lock_guard lk(mu_);
  now_ += d.count();
}

// ---------------------------------------------------------------------------------------------
// event_loop

struct event_loop::impl {
  explicit impl(asio::io_context& io) : guard(asio::make_work_guard(io)) {}
  asio::executor_work_guard<asio::io_context::executor_type> guard;
  std::unique_ptr<asio::signal_set> signals;
  std::atomic<std::thread::id> loop_thread{};
};

event_loop::event_loop() : clock_(&default_clock_), impl_(std::make_unique<impl>(io_)) {}

event_loop::event_loop(const clock& c) : clock_(&c), impl_(std::make_unique<impl>(io_)) {}

event_loop::~event_loop() {
  if (impl_->signals) {
    asio::error_code ec;
    impl_->signals->cancel(ec);
  }
  io_.stop();
}

void event_loop::post(std::function<void()> fn) {
  asio::post(io_, std::move(fn));
}

timer_handle event_loop::call_after(std::chrono::milliseconds d, std::function<void()> fn) {
  auto cancelled = std::make_shared<bool>(false);
  auto t = std::make_shared<asio::steady_timer>(io_, d);
  // The timer object lives in the handler; cancelling only sets the flag, so a cancelled
  // timer costs nothing but its wake-up.
  t->async_wait([t, cancelled, fn = std::move(fn)](const asio::error_code& ec) {
    if (ec || *cancelled) return;
    *cancelled = true;  // fired: active() is false from now on
    fn();
  });
  return timer_handle(std::move(cancelled));
}

void event_loop::run() {
  impl_->loop_thread = std::this_thread::get_id();
  io_.run();
  impl_->loop_thread = std::thread::id{};
}

void event_loop::stop() {
  impl_->guard.reset();
  io_.stop();
}

void event_loop::on_signals(std::function<void(int)> fn, std::initializer_list<int> signals) {
  impl_->signals = std::make_unique<asio::signal_set>(io_);
  for (int s : signals) impl_->signals->add(s);
  // Re-arm after every signal so a second SIGTERM during shutdown is still handled.
  auto arm = std::make_shared<std::function<void()>>();
  *arm = [this, fn = std::move(fn), arm_weak = std::weak_ptr<std::function<void()>>(arm)]() {
    impl_->signals->async_wait([fn, arm_weak](const asio::error_code& ec, int sig) {
      if (ec) return;
      fn(sig);
      if (auto a = arm_weak.lock()) (*a)();
    });
  };
  // Keep the re-arm closure alive for the loop's life.
  post([arm] { (*arm)(); });
  keep_alive_ = arm;
}

bool event_loop::in_loop_thread() const {
  return impl_->loop_thread.load() == std::this_thread::get_id();
}

// ---------------------------------------------------------------------------------------------
// manual_scheduler

struct manual_scheduler::impl {
  manual_clock clock;
  std::vector<std::function<void()>> posted;
  struct entry {
    std::shared_ptr<bool> cancelled;
    std::function<void()> fn;
  };
  // Due time -> timers in insertion order (multimap keeps FIFO for equal keys).
  std::multimap<int64_t, entry> timers;
  std::mutex mu;  // post() may come from other threads
};

manual_scheduler::manual_scheduler() : impl_(std::make_unique<impl>()) {}
manual_scheduler::~manual_scheduler() = default;

const clock& manual_scheduler::time() const {
  return impl_->clock;
}
manual_clock& manual_scheduler::clock_ref() {
  return impl_->clock;
}

void manual_scheduler::post(std::function<void()> fn) {
  std::lock_guard lk(impl_->mu);
  impl_->posted.push_back(std::move(fn));
}

timer_handle manual_scheduler::call_after(std::chrono::milliseconds d, std::function<void()> fn) {
  auto cancelled = std::make_shared<bool>(false);
  impl_->timers.emplace(impl_->clock.now_ms() + d.count(), impl::entry{cancelled, std::move(fn)});
  return timer_handle(std::move(cancelled));
}

size_t manual_scheduler::run_pending() {
  size_t n = 0;
  for (;;) {
    std::vector<std::function<void()>> batch;
    {
      std::lock_guard lk(impl_->mu);
      batch.swap(impl_->posted);
    }
    if (batch.empty()) return n;
    for (auto& fn : batch) {
      fn();
      ++n;
    }
  }
}

void manual_scheduler::advance(std::chrono::milliseconds d) {
  const int64_t target = impl_->clock.now_ms() + d.count();
  run_pending();
  for (;;) {
    auto it = impl_->timers.begin();
    if (it == impl_->timers.end() || it->first > target) break;
    impl_->clock.set_ms(std::max(impl_->clock.now_ms(), it->first));
    auto e = std::move(it->second);
    impl_->timers.erase(it);
    if (!*e.cancelled) {
      *e.cancelled = true;
      e.fn();
    }
    run_pending();
  }
  impl_->clock.set_ms(target);
}

size_t manual_scheduler::pending_timers() const {
  size_t n = 0;
  for (const auto& [at, e] : impl_->timers) n += *e.cancelled ? 0 : 1;
  return n;
}

}  // namespace hmq::core::loop
