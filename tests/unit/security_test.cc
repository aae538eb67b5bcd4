#include <gtest/gtest.h>

#include "core/common/token_bucket.h"
#include "core/wire/size_caps.h"
#include "exchange/broker_admin.h"

namespace hmq {
namespace {

TEST(token_bucket, rejects_over_burst_and_reports_once_per_window) {
  // Protects the flood defence: a sender gets `burst` at once, then `rate` a second, and the
  // caller is told about a rejection once per exhausted window, not once per message.
  core::token_buckets<int> b({.rate = 10, .burst = 3});
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(b.take(1, 0).allowed);
  auto d = b.take(1, 0);
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(d.first_in_window);
  d = b.take(1, 0);
  EXPECT_FALSE(d.allowed);
  EXPECT_FALSE(d.first_in_window);
  EXPECT_TRUE(b.take(2, 0).allowed);    // another sender is unaffected
  EXPECT_TRUE(b.take(1, 100).allowed);  // 100 ms at 10/s refills one token
  EXPECT_EQ(b.rejected(), 2u);
}

TEST(token_bucket, bounded_memory_forgets_idle_senders) {
  core::token_buckets<int> b({.rate = 1, .burst = 1, .max_keys = 4});
  for (int k = 0; k < 100; ++k) b.take(k, 0);
  EXPECT_LE(b.keys(), 4u);
}

TEST(size_caps, heartbeat_small_proposal_large) {
  using B = wire::fb::Body;
  EXPECT_LT(core::wire::max_message_bytes(B::Heartbeat), core::wire::max_message_bytes(B::Reply));
  EXPECT_LT(core::wire::max_message_bytes(B::Reply), core::wire::max_message_bytes(B::Proposal));
}

TEST(broker_admin, ensure_creates_literal_mailbox_acls_and_remove_deletes) {
  // Mosquitto 2.0.11 dynsec has no %u substitution (checked against the real broker), so the
  // per-identity role must name the mailbox literally.
  exchange::broker_change add{exchange::broker_change::action::ensure, wire::fb::AuthKind::node,
                              "abcdefghijklmnop", "tok"};
  auto j = exchange::dynsec_commands({add}, "hmq/v1");
  const auto& c = j["commands"];
  ASSERT_GE(c.size(), 2u);
  EXPECT_EQ(c[0]["command"], "createRole");
  EXPECT_EQ(c[0]["rolename"], "hmq-mb-abcdefghijklmnop");
  EXPECT_EQ(c[0]["acls"][0]["topic"], "hmq/v1/mb/abcdefghijklmnop");
  EXPECT_EQ(c[1]["command"], "createClient");
  EXPECT_EQ(c[1]["password"], "tok");
  EXPECT_EQ(c[1]["roles"][1]["rolename"], "hmq-node");
  exchange::broker_change rm{exchange::broker_change::action::remove, wire::fb::AuthKind::node,
                             "abcdefghijklmnop", ""};
  auto r = exchange::dynsec_commands({rm}, "hmq/v1");
  EXPECT_EQ(r["commands"][0]["command"], "deleteClient");
  EXPECT_EQ(r["commands"][1]["command"], "deleteRole");
}

}  // namespace
}  // namespace hmq
