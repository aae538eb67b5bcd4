#include <gtest/gtest.h>

#include "core/bus/reconnect_policy.h"

namespace hmq::core::bus {
namespace {

using std::chrono::milliseconds;

constexpr int not_authorized = 135;
constexpr int bad_user_name_or_password = 134;
constexpr int banned = 138;
constexpr int server_unavailable = 136;

// Waits grow from min_retry to max_retry with +-25 % jitter and start over after a connect.
TEST(bus_reconnect_policy, backs_off_with_jitter_and_resets_on_connect) {
  reconnect_policy p(milliseconds(100), milliseconds(800), false, 7);
  const int64_t bases[] = {100, 200, 400, 800, 800};
  for (int64_t base : bases) {
    auto d = p.next_delay();
    ASSERT_TRUE(d);
    EXPECT_GE(d->count(), base * 3 / 4) << base;
    EXPECT_LE(d->count(), base * 5 / 4) << base;
  }
  p.on_connected();
  auto d = p.next_delay();
  ASSERT_TRUE(d);
  EXPECT_LE(d->count(), 125);
}

// A broker that is down or says "unavailable" is retried forever.
TEST(bus_reconnect_policy, keeps_retrying_when_the_broker_is_unreachable) {
  reconnect_policy p(milliseconds(10), milliseconds(40), false, 1);
  auto v = p.on_connect_failed(-1, 0, true);
  EXPECT_FALSE(v.refused_credentials);
  EXPECT_FALSE(v.give_up);
  v = p.on_connect_failed(server_unavailable, 0, false);
  EXPECT_FALSE(v.refused_credentials);
  EXPECT_FALSE(p.terminal());
  EXPECT_TRUE(p.next_delay());
}

// Refused credentials on the first attempt end the client: a mistyped password fails fast.
TEST(bus_reconnect_policy, refused_first_connect_gives_up) {
  // Paho reports a v5 refusal as rc = reason code, or in the reason; 3.1.1 says rc 5.
  const std::pair<int, int> refusals[] = {
      {not_authorized, 0}, {0, bad_user_name_or_password}, {banned, 0}, {5, 0}};
  for (auto [rc, reason] : refusals) {
    reconnect_policy p(milliseconds(10), milliseconds(40), false, 1);
    auto v = p.on_connect_failed(rc, reason, true);
    EXPECT_TRUE(v.refused_credentials) << rc << "/" << reason;
    EXPECT_TRUE(v.give_up) << rc << "/" << reason;
    EXPECT_TRUE(p.terminal());
    EXPECT_FALSE(p.next_delay());
  }
}

// A daemon that waits for its broker identity (retry_refused_credentials) keeps trying, and so
// does any client refused after its first attempt (e.g. rc 135 while reconnecting): neither
// exits because the identity is missing for a while.
TEST(bus_reconnect_policy, refused_credentials_do_not_end_a_waiting_or_reconnecting_client) {
  reconnect_policy waiting(milliseconds(10), milliseconds(40), true, 1);
  auto v = waiting.on_connect_failed(not_authorized, 0, true);
  EXPECT_TRUE(v.refused_credentials);
  EXPECT_FALSE(v.give_up);
  EXPECT_TRUE(waiting.next_delay());

  reconnect_policy reconnecting(milliseconds(10), milliseconds(40), false, 1);
  v = reconnecting.on_connect_failed(not_authorized, 0, false);
  EXPECT_TRUE(v.refused_credentials);
  EXPECT_FALSE(v.give_up);
  EXPECT_TRUE(reconnecting.next_delay());
}

// A client that cannot be created never tries.
TEST(bus_reconnect_policy, give_up_stops_every_attempt) {
  reconnect_policy p(milliseconds(10), milliseconds(40), true, 1);
  p.give_up();
  EXPECT_TRUE(p.terminal());
  EXPECT_FALSE(p.next_delay());
}

TEST(bus_reconnect_policy, auth_failure_codes_are_the_v5_refusals) {
  EXPECT_TRUE(is_auth_failure(134));
  EXPECT_TRUE(is_auth_failure(135));
  EXPECT_TRUE(is_auth_failure(138));
  EXPECT_FALSE(is_auth_failure(0));
  EXPECT_FALSE(is_auth_failure(136));
  EXPECT_FALSE(is_auth_failure(0x80));
}

}  // namespace
}  // namespace hmq::core::bus
