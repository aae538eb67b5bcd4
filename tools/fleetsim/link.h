#pragma once

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>

#include "core/loop/loop.h"

// The simulated link between the broker and the nodes of hmq-fleetsim (--link-latency): the
// routing layer of fleetsim.cc pushes every message through one of these.
namespace hmq::fleetsim {

// A link with a constant one-way delay: order is kept, so one timer for the oldest entry is
// enough however many messages are in flight. Owned by the sim and used on its loop thread only
// (push, and the timer it arms); messages still in flight when it dies are dropped with it.
class delay_line {
 public:
  delay_line(core::loop::scheduler& loop, std::chrono::microseconds d) : loop_(loop), delay_(d) {}

  void push(std::function<void()> fn) {
    if (delay_.count() <= 0) return fn();
    q_.push_back({std::chrono::steady_clock::now() + delay_, std::move(fn)});
    if (q_.size() == 1) arm();
  }

 private:
  struct entry {
    std::chrono::steady_clock::time_point due;
    std::function<void()> fn;
  };
  void arm() {
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(q_.front().due -
                                                             std::chrono::steady_clock::now());
    timer_ = loop_.call_after(std::max(wait, std::chrono::milliseconds(0)), [this] { fire(); });
  }
  void fire() {
    const auto now = std::chrono::steady_clock::now();
    while (!q_.empty() && q_.front().due <= now) {
      auto fn = std::move(q_.front().fn);
      q_.pop_front();
      fn();
    }
    if (!q_.empty()) arm();
  }

  core::loop::scheduler& loop_;
  std::chrono::microseconds delay_;
  std::deque<entry> q_;
  core::loop::timer_handle timer_;
};

}  // namespace hmq::fleetsim
