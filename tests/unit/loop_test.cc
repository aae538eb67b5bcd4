#include "core/loop/loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using hmq::core::loop::event_loop;
using hmq::core::loop::manual_scheduler;
using hmq::core::loop::timer_handle;

// Timers fire in due-time order, only when simulated time reaches them.
TEST(manual_scheduler, fires_timers_in_time_order_only_when_due) {
  manual_scheduler s;
  std::vector<int> fired;
  auto t2 = s.call_after(200ms, [&] { fired.push_back(2); });
  auto t1 = s.call_after(100ms, [&] { fired.push_back(1); });
  s.advance(99ms);
  EXPECT_TRUE(fired.empty());
  s.advance(1ms);
  EXPECT_EQ(fired, (std::vector<int>{1}));
  s.advance(500ms);
  EXPECT_EQ(fired, (std::vector<int>{1, 2}));
  EXPECT_FALSE(t1.active());
}

// A cancelled or destroyed handle means the callback never runs.
TEST(manual_scheduler, cancelled_and_destroyed_timers_never_fire) {
  manual_scheduler s;
  int fired = 0;
  auto t = s.call_after(10ms, [&] { ++fired; });
  t.cancel();
  {
    auto scoped = s.call_after(10ms, [&] { ++fired; });
  }
  s.advance(1s);
  EXPECT_EQ(fired, 0);
  EXPECT_EQ(s.pending_timers(), 0u);
}

// The clock seen inside a timer callback equals its due time (not the advance target).
TEST(manual_scheduler, clock_reads_due_time_inside_callback) {
  manual_scheduler s;
  const int64_t start = s.time().now_ms();
  int64_t seen = 0;
  auto t = s.call_after(250ms, [&] { seen = s.time().now_ms(); });
  s.advance(1s);
  EXPECT_EQ(seen, start + 250);
  EXPECT_EQ(s.time().now_ms(), start + 1000);
}

// Work posted from a timer (and work posted by posted work) runs before advance returns.
TEST(manual_scheduler, runs_nested_posts) {
  manual_scheduler s;
  int n = 0;
  s.post([&] {
    s.post([&] { ++n; });
    ++n;
  });
  EXPECT_EQ(s.run_pending(), 2u);
  EXPECT_EQ(n, 2);
}

// Posts from other threads run on the loop thread; stop() from another thread ends run().
TEST(event_loop, post_from_other_thread_runs_on_loop_thread_and_stop_ends_run) {
  event_loop loop;
  std::atomic<bool> on_loop{false};
  std::thread other([&] {
    loop.post([&] {
      on_loop = loop.in_loop_thread();
      loop.stop();
    });
  });
  loop.run();
  other.join();
  EXPECT_TRUE(on_loop);
}

// A real timer fires once; a cancelled one does not.
TEST(event_loop, timer_fires_and_cancel_prevents_firing) {
  event_loop loop;
  int fired = 0, cancelled_fired = 0;
  timer_handle keep;
  auto cancelled = loop.call_after(1ms, [&] { ++cancelled_fired; });
  cancelled.cancel();
  keep = loop.call_after(5ms, [&] {
    ++fired;
    loop.stop();
  });
  loop.run();
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(cancelled_fired, 0);
}

// SIGTERM delivered to the process reaches the handler on the loop thread.
TEST(event_loop, sigterm_reaches_handler) {
  event_loop loop;
  int got = 0;
  loop.on_signals([&](int sig) {
    got = sig;
    loop.stop();
  });
  loop.post([] { ::raise(SIGTERM); });
  loop.run();
  EXPECT_EQ(got, SIGTERM);
}
