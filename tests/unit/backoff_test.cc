#include "core/common/backoff.h"

#include <gtest/gtest.h>

namespace hmq::core {
namespace {

using std::chrono::milliseconds;

// Reconnect delays grow to the cap, stay within +-25 % of the base, and start over after reset.
TEST(backoff, doubles_with_jitter_up_to_the_cap_and_resets) {
  backoff b(milliseconds(100), milliseconds(1000), 42);
  const int64_t bases[] = {100, 200, 400, 800, 1000, 1000};
  for (int64_t base : bases) {
    const auto d = b.next().count();
    EXPECT_GE(d, base * 3 / 4) << base;
    EXPECT_LE(d, base * 5 / 4) << base;
  }
  b.reset();
  EXPECT_EQ(b.base(), milliseconds(100));
  EXPECT_LE(b.next().count(), 125);
}

// Two clients seeded differently do not retry in lock-step.
TEST(backoff, jitter_spreads_clients_apart) {
  backoff a(milliseconds(1000), milliseconds(1000), 1);
  backoff c(milliseconds(1000), milliseconds(1000), 2);
  int differ = 0;
  for (int i = 0; i < 20; ++i) differ += a.next() != c.next();
  EXPECT_GT(differ, 10);
}

// A zero or inverted configuration still waits, never spins.
TEST(backoff, never_returns_zero) {
  backoff b(milliseconds(0), milliseconds(0), 7);
  for (int i = 0; i < 5; ++i) EXPECT_GE(b.next().count(), 1);
}

}  // namespace
}  // namespace hmq::core
