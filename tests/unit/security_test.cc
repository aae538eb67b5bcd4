#include <gtest/gtest.h>

#include "core/bus/credentials.h"
#include "core/bus/messenger.h"
#include "core/common/token_bucket.h"
#include "core/loop/loop.h"
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

// A messenger on an unstarted client: messages are handed in with deliver(), as hmq-fleetsim's
// shared connection does, so the checks run exactly as for the own subscription.
struct messenger_rig {
  core::loop::manual_scheduler loop;
  core::crypto::box_keypair self = core::crypto::box_keypair::generate();
  core::bus::client client{loop, rig_options()};
  core::wire::codec codec;
  core::bus::messenger m;
  size_t handled = 0;
  static core::bus::options rig_options() {
    core::bus::options o;
    o.broker_uri = "tcp://127.0.0.1:1";
    o.client_id = "rig";
    return o;
  }
  explicit messenger_rig(core::wire::limits l)
      : codec(self, loop.time(), l), m(loop, client, codec) {
    m.on(wire::fb::Body::Cancel, [this](const core::wire::opened&) { ++handled; });
    m.start();
  }
  ~messenger_rig() { client.stop(); }
  // A Cancel sealed by `from` to this messenger, as it arrives on the own mailbox.
  core::bus::inbound from(const core::crypto::box_keypair& k) {
    core::wire::codec c(k, loop.time());
    auto msg = core::wire::build_message({}, loop.time(), wire::fb::Body::Cancel, [](auto& b) {
      return wire::fb::CreateCancelDirect(b, "0123456789abcdef0123456789abcdef",
                                          wire::fb::CancelReason::ab_user_requested)
          .Union();
    });
    core::bus::inbound in;
    in.topic = m.mailbox_topic();
    in.payload = c.seal(msg, self.pk);
    return in;
  }
};

TEST(messenger, a_flood_over_the_rate_limit_takes_no_replay_memory) {
  // Issue 16: the replay memory records a message only once its sender passed the rate limit,
  // so a sender over its limit cannot push an honest id out and replay it afterwards.
  messenger_rig r({.max_remembered_ids = 4});
  r.m.limit_senders({.rate = 0.001, .burst = 2});
  const auto honest = core::crypto::box_keypair::generate();
  const auto flooder = core::crypto::box_keypair::generate();
  const auto kept = r.from(honest);
  r.m.deliver(kept);
  ASSERT_EQ(r.handled, 1u);
  for (int i = 0; i < 100; ++i) r.m.deliver(r.from(flooder));
  EXPECT_EQ(r.handled, 3u);  // the flooder's burst, nothing more
  EXPECT_EQ(r.m.dropped_rate_limited(), 98u);
  EXPECT_EQ(r.codec.window_shortened(), 0u);  // the dropped 98 took no memory
  r.m.deliver(kept);                          // the replay
  EXPECT_EQ(r.handled, 3u);
  EXPECT_EQ(r.codec.stats().get(core::wire::errc::duplicate), 1u);
  r.m.deliver(r.from(honest));  // and the honest sender goes on
  EXPECT_EQ(r.handled, 4u);
}

TEST(messenger, a_replay_does_not_spend_the_victims_rate_budget) {
  // The duplicate check comes before the rate limit: replaying someone's message many times
  // must not exhaust that sender's budget.
  messenger_rig r({});
  r.m.limit_senders({.rate = 0.001, .burst = 2});
  const auto honest = core::crypto::box_keypair::generate();
  const auto kept = r.from(honest);
  for (int i = 0; i < 50; ++i) r.m.deliver(kept);
  EXPECT_EQ(r.handled, 1u);
  EXPECT_EQ(r.m.dropped_rate_limited(), 0u);
  r.m.deliver(r.from(honest));
  EXPECT_EQ(r.handled, 2u);
}

TEST(size_caps, heartbeat_small_proposal_large) {
  using B = wire::fb::Body;
  EXPECT_LT(core::wire::max_message_bytes(B::Heartbeat), core::wire::max_message_bytes(B::Reply));
  EXPECT_LT(core::wire::max_message_bytes(B::Reply), core::wire::max_message_bytes(B::Proposal));
}

// What an agent prints to be enrolled (docs/security.md "Mailbox ownership"): a claim only for
// its own identity with a derived password, opened only by that exchange, tamper-evident.
TEST(mailbox_claim, is_made_for_the_partys_own_identity_and_opens_only_at_its_exchange) {
  namespace crypto = core::crypto;
  const auto mine = crypto::box_keypair::generate(), exchange = crypto::box_keypair::generate();
  core::bus::options o;
  o.username = crypto::mailbox_id(mine.pk);
  o.password = *core::bus::derive_machine_password(o.username, "tok");
  const auto claim = core::bus::own_mailbox_claim(o, mine, exchange.pk);
  ASSERT_FALSE(claim.empty());
  EXPECT_TRUE(core::bus::open_mailbox_claim(claim, o.username, exchange.sk, o.password));
  EXPECT_EQ(core::bus::enrolment_command("node", o.username, claim),
            "hmq exchange node create ID:TOKEN --mailbox " + o.username + " --claim " + claim);
  // A flipped byte anywhere is refused.
  auto raw = *crypto::from_base64(claim);
  for (size_t i : {size_t{0}, size_t{40}, raw.size() - 1}) {
    auto bad = raw;
    bad[i] ^= 1;
    EXPECT_FALSE(
        core::bus::open_mailbox_claim(crypto::to_base64(bad), o.username, exchange.sk, o.password))
        << "byte " << i;
  }
  // No claim for another username (a hand-made identity) or without a password.
  auto other = o;
  other.username = "hmq-node";
  EXPECT_TRUE(core::bus::own_mailbox_claim(other, mine, exchange.pk).empty());
  other = o;
  other.password.clear();
  EXPECT_TRUE(core::bus::own_mailbox_claim(other, mine, exchange.pk).empty());
  EXPECT_EQ(core::bus::enrolment_command("agbot", o.username, ""),
            "hmq exchange agbot create ID:TOKEN --mailbox " + o.username);
}

TEST(broker_admin, ensure_creates_literal_mailbox_acls_and_remove_deletes) {
  // Mosquitto 2.0.11 dynsec has no %u substitution (checked against the real broker), so the
  // per-identity role must name the mailbox literally.
  // The broker password is derived from the token (what the agent derives), never the token.
  auto want = core::bus::derive_machine_password("abcdefghijklmnop", "tok");
  ASSERT_TRUE(want);
  EXPECT_NE(*want, "tok");
  EXPECT_NE(*want, *core::bus::derive_machine_password("abcdefghijklmnoq", "tok"));
  auto add = exchange::party_broker_change(exchange::broker_change::action::ensure,
                                           wire::fb::AuthKind::node, "abcdefghijklmnop");
  add.password = *want;
  auto j = exchange::dynsec_commands({add}, "hmq/v1");
  const auto& c = j["commands"];
  ASSERT_GE(c.size(), 2u);
  EXPECT_EQ(c[0]["command"], "createRole");
  EXPECT_EQ(c[0]["rolename"], "hmq-mb-abcdefghijklmnop");
  EXPECT_EQ(c[0]["acls"][0]["topic"], "hmq/v1/mb/abcdefghijklmnop");
  EXPECT_EQ(c[1]["command"], "createClient");
  EXPECT_EQ(c[1]["password"], *want);
  EXPECT_EQ(c[1]["roles"][1]["rolename"], "hmq-node");
  // An agbot's own role also reads its uplink, added to a role made before uplinks too.
  auto ab = add;
  ab.kind = wire::fb::AuthKind::agbot;
  const auto a = exchange::dynsec_commands({ab}, "hmq/v1")["commands"];
  EXPECT_EQ(a[0]["acls"].back()["topic"], "hmq/v1/up/abcdefghijklmnop");
  EXPECT_EQ(a[1]["command"], "addRoleACL");
  EXPECT_EQ(a[1]["topic"], "hmq/v1/up/abcdefghijklmnop");
  EXPECT_EQ(a[2]["roles"][1]["rolename"], "hmq-agbot");
  for (const auto& acl : c[0]["acls"])
    EXPECT_EQ(acl["topic"].get<std::string>().find("/up/"), std::string::npos);
  auto rm = exchange::party_broker_change(exchange::broker_change::action::remove,
                                          wire::fb::AuthKind::node, "abcdefghijklmnop");
  auto r = exchange::dynsec_commands({rm}, "hmq/v1");
  EXPECT_EQ(r["commands"][0]["command"], "deleteClient");
  EXPECT_EQ(r["commands"][1]["command"], "deleteRole");
}

// An exchange user's identity (docs/security.md "Operator identities"): a secret derived from
// the password, never the password; its role reads only its inbox (moved when the password
// changes); the recorder role follows the flag.
TEST(broker_admin, user_identity_reads_only_its_inbox) {
  auto id = core::bus::derive_user_identity("acme", "bob", "bobpw");
  ASSERT_TRUE(id) << id.err().message();
  EXPECT_EQ(id->username, "acme/bob");
  EXPECT_NE(id->password.find_first_not_of(' '), std::string::npos);
  EXPECT_EQ(id->password.find("bobpw"), std::string::npos);
  EXPECT_EQ(id->inbox.size(), 32u);
  // Deterministic for the same credentials, different for another password or user.
  auto again = core::bus::derive_user_identity("acme", "bob", "bobpw");
  auto other = core::bus::derive_user_identity("acme", "bob", "bobpw2");
  auto alice = core::bus::derive_user_identity("acme", "alice", "bobpw");
  ASSERT_TRUE(again && other && alice);
  EXPECT_EQ(again->password, id->password);
  EXPECT_EQ(again->inbox, id->inbox);
  EXPECT_NE(other->password, id->password);
  EXPECT_NE(other->inbox, id->inbox);
  EXPECT_NE(alice->password, id->password);

  auto j = exchange::dynsec_commands({exchange::user_broker_change(*id, false, "")}, "hmq/v1");
  const auto& c = j["commands"];
  ASSERT_GE(c.size(), 4u);
  EXPECT_EQ(c[0]["command"], "createRole");
  EXPECT_EQ(c[0]["rolename"], "hmq-user-acme/bob");
  ASSERT_EQ(c[0]["acls"].size(), 1u);
  EXPECT_EQ(c[0]["acls"][0]["topic"], "hmq/v1/r/" + id->inbox + "/+");
  EXPECT_EQ(c[1]["command"], "addRoleACL");
  EXPECT_EQ(c[2]["password"], id->password);
  EXPECT_EQ(c[2]["roles"][1]["rolename"], "hmq-user");
  EXPECT_EQ(c.back()["command"], "removeClientRole");
  EXPECT_EQ(c.back()["rolename"], "hmq-recorder");
  // A new password: the role's ACL moves from the old inbox to the new one.
  auto moved =
      exchange::dynsec_commands({exchange::user_broker_change(*id, false, "oldinbox")}, "hmq/v1");
  EXPECT_EQ(moved["commands"][1]["command"], "removeRoleACL");
  EXPECT_EQ(moved["commands"][1]["topic"], "hmq/v1/r/oldinbox/+");
  EXPECT_EQ(moved["commands"][2]["command"], "addRoleACL");
  EXPECT_EQ(moved["commands"][2]["topic"], "hmq/v1/r/" + id->inbox + "/+");
  auto rec = exchange::dynsec_commands({exchange::user_broker_change(*id, true, "")}, "hmq/v1");
  EXPECT_EQ(rec["commands"].back()["command"], "addClientRole");
  EXPECT_EQ(rec["commands"].back()["rolename"], "hmq-recorder");
}

}  // namespace
}  // namespace hmq
