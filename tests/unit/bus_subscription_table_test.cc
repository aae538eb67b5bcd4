#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/bus/subscription_table.h"

namespace hmq::core::bus {
namespace {

using suback = subscription_table::suback;

// Handlers that write their name into a shared log, so a test sees who got a message.
struct recorder {
  std::vector<std::string> got;
  handler make(std::string name) {
    return [this, name](const inbound&) { got.push_back(name); };
  }
};

inbound message(std::string topic, std::vector<uint32_t> ids = {}) {
  inbound in;
  in.topic = std::move(topic);
  in.subscription_ids = std::move(ids);
  return in;
}

std::vector<std::string> deliver(const subscription_table& t, const inbound& in, recorder& r) {
  r.got.clear();
  for (const auto& h : t.route(in)) h(in);
  return r.got;
}

// A copy that names its subscription goes to that handler only, so two overlapping filters
// (mosquitto 2 sends one copy per matching subscription) each see the message once.
TEST(bus_subscription_table, routes_each_overlapping_copy_by_its_subscription_id) {
  subscription_table t;
  recorder r;
  const uint32_t exact = t.add("hmq/v1/mb/abc", 1, r.make("exact")).id;
  const uint32_t wild = t.add("hmq/v1/mb/+", 1, r.make("wild")).id;
  const uint32_t all = t.add("hmq/v1/#", 0, r.make("all")).id;
  EXPECT_NE(exact, wild);
  EXPECT_NE(wild, all);
  EXPECT_EQ(deliver(t, message("hmq/v1/mb/abc", {exact}), r), std::vector<std::string>{"exact"});
  EXPECT_EQ(deliver(t, message("hmq/v1/mb/abc", {wild}), r), std::vector<std::string>{"wild"});
  EXPECT_EQ(deliver(t, message("hmq/v1/mb/abc", {all}), r), std::vector<std::string>{"all"});
  // One copy for two subscriptions (a broker may merge them): both handlers, once each.
  EXPECT_EQ(deliver(t, message("hmq/v1/mb/abc", {exact, all}), r),
            (std::vector<std::string>{"exact", "all"}));
}

// Without identifiers (a broker without them, or a copy queued for an earlier process's
// session) every matching filter gets the message: exact ones by lookup, patterns by matching.
TEST(bus_subscription_table, falls_back_to_filter_matching_without_ids) {
  subscription_table t;
  recorder r;
  t.add("hmq/v1/mb/abc", 1, r.make("exact"));
  t.add("hmq/v1/mb/+", 1, r.make("wild"));
  t.add("hmq/v1/hb/#", 1, r.make("hb"));
  t.add("$share/exchange/hmq/v1/x/rpc", 1, r.make("shared"));
  EXPECT_EQ(deliver(t, message("hmq/v1/mb/abc"), r), (std::vector<std::string>{"exact", "wild"}));
  EXPECT_EQ(deliver(t, message("hmq/v1/mb/xyz"), r), std::vector<std::string>{"wild"});
  EXPECT_EQ(deliver(t, message("hmq/v1/hb/n1/x"), r), std::vector<std::string>{"hb"});
  EXPECT_EQ(deliver(t, message("hmq/v1/x/rpc"), r), std::vector<std::string>{"shared"});
  EXPECT_TRUE(deliver(t, message("hmq/v1/ev/o"), r).empty());
}

// An identifier that no longer names a live filter, or names one the topic does not match, is
// ignored and the copy is routed by matching instead.
TEST(bus_subscription_table, unknown_or_mismatched_ids_fall_back_to_matching) {
  subscription_table t;
  recorder r;
  const uint32_t gone = t.add("hmq/v1/mb/old", 1, r.make("old")).id;
  const uint32_t other = t.add("hmq/v1/hb/+", 1, r.make("hb")).id;
  t.add("hmq/v1/mb/+", 1, r.make("wild"));
  ASSERT_TRUE(t.remove("hmq/v1/mb/old"));
  EXPECT_EQ(deliver(t, message("hmq/v1/mb/old", {gone}), r), std::vector<std::string>{"wild"});
  EXPECT_EQ(deliver(t, message("hmq/v1/mb/old", {other}), r), std::vector<std::string>{"wild"});
}

// Identifiers are fixed for a filter's life, unique among live filters, never 0.
TEST(bus_subscription_table, ids_are_stable_and_unique_while_the_filter_lives) {
  subscription_table t;
  recorder r;
  const uint32_t a = t.add("a", 1, r.make("a")).id;
  EXPECT_NE(a, 0u);
  EXPECT_EQ(t.add("a", 1, r.make("a2")).id, a);  // new handler, same subscription
  EXPECT_EQ(t.add("a", 2, r.make("a3")).id, a);  // new QoS, same subscription
  const uint32_t b = t.add("b", 1, r.make("b")).id;
  EXPECT_NE(a, b);
  ASSERT_TRUE(t.remove("a"));
  EXPECT_FALSE(t.remove("a"));
  const uint32_t c = t.add("c", 1, r.make("c")).id;
  EXPECT_NE(c, b);
  EXPECT_EQ(t.size(), 2u);
  // The replaced handler is the one that runs.
  EXPECT_EQ(deliver(t, message("b", {b}), r), std::vector<std::string>{"b"});
}

// The SUBACK answers the callers waiting for it; a lost SUBSCRIBE keeps them for the next
// connect; a superseded one is ignored.
TEST(bus_subscription_table, settle_answers_waiters_once) {
  subscription_table t;
  recorder r;
  int answered = 0;
  auto& e = t.add("a", 1, r.make("a"));
  e.waiting.push_back([&](result<void>) { ++answered; });
  e.in_flight = 7;
  EXPECT_FALSE(t.settle("a", 7, suback::lost));  // connection dropped: keep waiting
  EXPECT_EQ(t.find("a")->in_flight, 0u);
  EXPECT_EQ(t.find("a")->waiting.size(), 1u);
  t.find("a")->in_flight = 8;
  EXPECT_FALSE(t.settle("a", 7, suback::granted));  // an older SUBSCRIBE
  auto w = t.settle("a", 8, suback::granted);
  ASSERT_TRUE(w);
  ASSERT_EQ(w->size(), 1u);
  (*w)[0](ok());
  EXPECT_EQ(answered, 1);
  EXPECT_TRUE(t.find("a")->confirmed);
  EXPECT_FALSE(t.settle("gone", 8, suback::granted));

  auto& f = t.add("f", 1, r.make("f"));
  f.waiting.push_back([](result<void>) {});
  f.in_flight = 9;
  auto refused = t.settle("f", 9, suback::refused);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->size(), 1u);
  EXPECT_FALSE(t.find("f")->confirmed);
}

// After a session loss every filter is sent again and none counts as held; with the session
// kept every filter is still re-sent (a broker may have lost one since its last autosave) but
// stays confirmed. A changed QoS makes a filter unconfirmed.
TEST(bus_subscription_table, resubscribe_list_after_a_connect) {
  subscription_table t;
  recorder r;
  for (const char* f : {"a", "b/+", "c/#"}) {
    auto& e = t.add(f, 1, r.make(f));
    e.confirmed = true;
    e.in_flight = 3;
  }
  auto kept = t.resubscribe_after_connect(true);
  EXPECT_EQ(kept, (std::vector<std::string>{"a", "b/+", "c/#"}));
  EXPECT_TRUE(t.find("a")->confirmed);
  EXPECT_EQ(t.find("a")->in_flight, 0u);
  auto lost = t.resubscribe_after_connect(false);
  EXPECT_EQ(lost.size(), 3u);
  for (const char* f : {"a", "b/+", "c/#"}) EXPECT_FALSE(t.find(f)->confirmed) << f;

  t.find("a")->confirmed = true;
  t.add("a", 1, r.make("a"));
  EXPECT_TRUE(t.find("a")->confirmed);  // same QoS: still held
  t.add("a", 0, r.make("a"));
  EXPECT_FALSE(t.find("a")->confirmed);  // new QoS: must be sent again
}

// Removing a filter hands back its waiters; stop() takes every waiter of every filter.
TEST(bus_subscription_table, remove_and_stop_hand_back_waiters) {
  subscription_table t;
  recorder r;
  t.add("a", 1, r.make("a")).waiting.push_back([](result<void>) {});
  t.add("b", 1, r.make("b")).waiting.push_back([](result<void>) {});
  t.add("c", 1, r.make("c")).waiting.push_back([](result<void>) {});
  auto w = t.remove("a");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->size(), 1u);
  EXPECT_EQ(t.take_all_waiters().size(), 2u);
  EXPECT_TRUE(t.take_all_waiters().empty());
  EXPECT_TRUE(deliver(t, message("a"), r).empty());  // a removed filter routes nothing
}

}  // namespace
}  // namespace hmq::core::bus
