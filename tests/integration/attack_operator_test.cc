#include <gtest/gtest.h>

#include <future>
#include <vector>

#include "tests/support/secure_broker.h"

// Operators attacking with their own broker identity (issue 15, "Operators have their own broker
// identities"; docs/security.md "Operator identities"): an org user reads only its own inbox,
// loses its identity with its removal, and records the bus only once root granted it. The
// victims (root's and another user's hmq commands) keep working throughout.
namespace hmq::test {
namespace {

std::string replay_binary() {
  return std::string(HMQ_BINARY_DIR) + "/tools/replay/hmq-replay";
}

struct two_users {
  secure_setup s;
  core::bus::user_identity bob, carol;

  two_users() {
    EXPECT_FALSE(s.key.empty());
    EXPECT_EQ(s.hmq({"org", "create", "acme"}).exit, 0);
    for (const auto* u : {"bob", "carol"}) {
      auto r = s.hmq({"--org", "acme", "user", "create", u, std::string(u) + "pw"});
      EXPECT_EQ(r.exit, 0) << r.out << r.err;
    }
    bob = secure_setup::user_identity("acme", "bob", "bobpw");
    carol = secure_setup::user_identity("acme", "carol", "carolpw");
  }
  // carol (the victim) lists acme's users through her own inbox.
  void expect_carol_works() {
    auto r = s.hmq({"--org", "acme", "user", "list"}, "acme/carol:carolpw");
    EXPECT_EQ(r.exit, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("acme/carol"), std::string::npos) << r.out;
  }
};

TEST(attack_operator, a_user_reads_only_its_own_inbox_and_leaves_with_its_removal) {
  two_users t;
  t.expect_carol_works();
  // bob's own inbox is granted (0); carol's inbox, every inbox, node and agbot mailboxes, the
  // RPC topic and the whole bus are refused (135).
  auto r = t.s.sub(t.bob.username, t.bob.password,
                   {"hmq/v1/r/" + t.bob.inbox + "/+", "hmq/v1/r/" + t.carol.inbox + "/+",
                    "hmq/v1/r/+/+", "hmq/v1/mb/+", "hmq/v1/x/rpc", "hmq/v1/#"});
  EXPECT_NE(r.out.find("Subscribed (mid: 1): 0, 135, 135, 135, 135, 135"), std::string::npos)
      << r.out;
  // The exchange password is not the broker password.
  r = t.s.sub("acme/bob", "bobpw", {"hmq/v1/r/" + t.bob.inbox + "/+"});
  EXPECT_NE(r.out.find("Not authorized"), std::string::npos) << r.out;
  t.expect_carol_works();
  // bob's own commands work through his inbox.
  auto own = t.s.hmq({"--org", "acme", "user", "get", "bob"}, "acme/bob:bobpw");
  EXPECT_EQ(own.exit, 0) << own.out << own.err;
  // Removed, bob's broker identity is gone too.
  auto rm = t.s.hmq({"--org", "acme", "user", "remove", "bob"});
  ASSERT_EQ(rm.exit, 0) << rm.out << rm.err;
  r = t.s.sub(t.bob.username, t.bob.password, {"hmq/v1/r/" + t.bob.inbox + "/+"});
  EXPECT_NE(r.out.find("Not authorized"), std::string::npos) << r.out;
  own = t.s.hmq({"--org", "acme", "user", "get", "bob"}, "acme/bob:bobpw");
  EXPECT_NE(own.exit, 0);
  EXPECT_NE(own.err.find("the broker refused acme/bob"), std::string::npos) << own.err;
  t.expect_carol_works();
}

TEST(attack_operator, recording_the_bus_needs_roots_grant) {
  two_users t;
  auto r = t.s.hmq({"--org", "acme", "user", "create", "ann", "annpw", "--admin"});
  ASSERT_EQ(r.exit, 0) << r.out << r.err;
  const auto file = t.s.dir.path() / "bus.hmqrec";
  auto record = [&](const std::string& who) {
    return run_command({replay_binary(), "record", "-t", "hmq/v1/#", "-o", file.string(),
                        "--broker", t.s.broker->uri(), "--exchange-user", who, "--duration", "1"},
                       {}, t.s.dir.path(), 20s);
  };
  // Without the grant the broker refuses the subscription; an org admin cannot grant it.
  auto rec = record("acme/bob:bobpw");
  EXPECT_EQ(rec.exit, 2) << rec.out << rec.err;
  auto grant = t.s.hmq({"--org", "acme", "user", "allow-record", "bob"}, "acme/ann:annpw");
  EXPECT_NE(grant.exit, 0) << grant.out;
  EXPECT_NE(grant.err.find("may not grant bus recording"), std::string::npos) << grant.err;
  rec = record("acme/bob:bobpw");
  EXPECT_EQ(rec.exit, 2) << rec.out << rec.err;
  t.expect_carol_works();
  // Root grants it: bob records carol's traffic (sealed envelopes he cannot open).
  grant = t.s.hmq({"user", "allow-record", "acme/bob"});
  ASSERT_EQ(grant.exit, 0) << grant.out << grant.err;
  auto show = t.s.hmq({"--org", "acme", "user", "get", "bob"});
  EXPECT_NE(show.out.find("may record the bus: yes"), std::string::npos) << show.out;
  auto recorder = process::start(
      {{replay_binary(), "-v", "record", "-t", "hmq/v1/#", "-o", file.string(), "--broker",
        t.s.broker->uri(), "--exchange-user", "acme/bob:bobpw", "--count", "2"},
       {},
       t.s.dir.path() / "record.log"});
  ASSERT_TRUE(wait_for_log(t.s.dir.path() / "record.log", "hmq-replay: recording", 1, 20s))
      << read_file(t.s.dir.path() / "record.log");
  t.expect_carol_works();  // her request and its answer: two messages
  auto st = recorder.wait_for(20s);
  ASSERT_TRUE(st) << read_file(t.s.dir.path() / "record.log");
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << read_file(t.s.dir.path() / "record.log");
  // And loses it again.
  ASSERT_EQ(t.s.hmq({"user", "disallow-record", "acme/bob"}).exit, 0);
  rec = record("acme/bob:bobpw");
  EXPECT_EQ(rec.exit, 2) << rec.out << rec.err;
  t.expect_carol_works();
}

// The broker makes the username the client id, so two sessions of one user take each other
// over. Four commands of bob started at once on one machine take turns (a lock in ~/.hmq/run)
// and all get their answers.
TEST(attack_operator, the_same_users_concurrent_commands_take_turns_instead_of_taking_over) {
  two_users u;
  std::vector<std::future<run_result>> runs;
  for (int i = 0; i < 4; ++i)
    runs.push_back(std::async(std::launch::async, [&u] {
      return u.s.hmq({"--org", "acme", "user", "list"}, "acme/bob:bobpw");
    }));
  for (auto& f : runs) {
    auto r = f.get();
    EXPECT_EQ(r.exit, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("carol"), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace hmq::test
