#include <gtest/gtest.h>

#include "core/bus/topic_filter.h"

namespace hmq::core::bus {
namespace {

TEST(bus_topic_filter, plus_matches_exactly_one_level) {
  EXPECT_TRUE(topic_matches("hmq/v1/hb/+", "hmq/v1/hb/abc"));
  EXPECT_TRUE(topic_matches("hmq/v1/hb/+", "hmq/v1/hb/"));  // empty level is a level
  EXPECT_FALSE(topic_matches("hmq/v1/hb/+", "hmq/v1/hb/abc/def"));
  EXPECT_FALSE(topic_matches("hmq/v1/hb/+", "hmq/v1/hb"));
  EXPECT_TRUE(topic_matches("+/+", "a/b"));
}

TEST(bus_topic_filter, hash_matches_parent_and_any_depth) {
  EXPECT_TRUE(topic_matches("hmq/v1/ev/#", "hmq/v1/ev"));
  EXPECT_TRUE(topic_matches("hmq/v1/ev/#", "hmq/v1/ev/x"));
  EXPECT_TRUE(topic_matches("hmq/v1/ev/#", "hmq/v1/ev/x/y/z"));
  EXPECT_FALSE(topic_matches("hmq/v1/ev/#", "hmq/v1/evx"));
  EXPECT_TRUE(topic_matches("#", "a/b/c"));
}

TEST(bus_topic_filter, exact_filter_matches_only_itself) {
  EXPECT_TRUE(topic_matches("hmq/v1/mb/abc", "hmq/v1/mb/abc"));
  EXPECT_FALSE(topic_matches("hmq/v1/mb/abc", "hmq/v1/mb/abcd"));
  EXPECT_FALSE(topic_matches("hmq/v1/mb/abc", "hmq/v1/mb"));
}

TEST(bus_topic_filter, strips_shared_subscription_prefix) {
  EXPECT_TRUE(topic_matches("$share/exchange/hmq/v1/x/rpc", "hmq/v1/x/rpc"));
  EXPECT_TRUE(topic_matches("$share/g/hmq/+/x/rpc", "hmq/v1/x/rpc"));
  EXPECT_FALSE(topic_matches("$share/exchange", "exchange"));
  EXPECT_EQ(strip_shared_prefix("$share/g/a/b"), "a/b");
  EXPECT_EQ(strip_shared_prefix("a/b"), "a/b");
}

TEST(bus_topic_filter, wildcards_do_not_match_dollar_topics) {
  EXPECT_FALSE(topic_matches("#", "$SYS/broker/uptime"));
  EXPECT_FALSE(topic_matches("+/broker/uptime", "$SYS/broker/uptime"));
  EXPECT_TRUE(topic_matches("$SYS/#", "$SYS/broker/uptime"));
}

TEST(bus_topic_filter, malformed_filters_match_nothing) {
  EXPECT_FALSE(topic_matches("a/b#", "a/b"));
  EXPECT_FALSE(topic_matches("#/a", "x/a"));
  EXPECT_FALSE(topic_matches("a+/b", "a+/b"));
  EXPECT_FALSE(topic_matches("", "a"));
  EXPECT_FALSE(topic_matches("a", ""));
}

}  // namespace
}  // namespace hmq::core::bus
