#include <gtest/gtest.h>

#include "tests/support/secure_broker.h"

// Attack: claim somebody else's mailbox (docs/security.md "Mailbox ownership"). The victim is
// an agbot that proved its mailbox with a sealed AgbotHello, or an agent still waiting for its
// enrolment; the attacker holds ordinary credentials (and has read the victim's log) and asks
// the exchange to provision a node with the victim's mailbox and a token of its choice, which
// would make it the broker identity of that mailbox. Each case asserts the refusal (RPC error,
// nothing stored, the broker refuses the attacker's password) and that the victim keeps its
// session and keeps working (tests/support/secure_broker.h).
namespace hmq::test {
namespace {

// The attacker's token opens nothing on the victim's mailbox.
void expect_refused_by_broker(victim_agbot& v, const std::string& token) {
  auto r = v.s.sub(v.mailbox, secure_setup::machine_password(v.mailbox, token),
                   {"hmq/v1/mb/" + v.mailbox});
  EXPECT_NE(r.out.find("Not authorized"), std::string::npos) << r.out;
}

TEST(attack_mailbox, org_user_claiming_an_agbots_mailbox_is_refused_and_the_agbot_keeps_it) {
  victim_agbot v;
  ASSERT_FALSE(v.mailbox.empty());
  ASSERT_EQ(v.s.hmq({"--org", "acme", "user", "create", "bob", "bobpw"}).exit, 0);
  const std::string bob = "acme/bob:bobpw";

  // Without a claim, and with the agbot's own claim copied from its log: that one names the
  // agbot's token, not bob's.
  auto r = v.s.hmq({"node", "create", "evil:evilpw", "--mailbox", v.mailbox}, bob);
  EXPECT_NE(r.exit, 0);
  EXPECT_NE((r.out + r.err).find("--mailbox requires --claim"), std::string::npos)
      << r.out << r.err;
  r = v.s.hmq_enrol({"node", "create", "evil:evilpw"}, v.enrolment, bob);
  EXPECT_NE(r.exit, 0);
  EXPECT_NE((r.out + r.err).find("mailbox " + v.mailbox + ": the claim was made for another token"),
            std::string::npos)
      << r.out << r.err;
  auto get = v.s.hmq({"--org", "acme", "node", "get", "evil"});
  EXPECT_NE(get.exit, 0) << "nothing may be stored: " << get.out;
  expect_refused_by_broker(v, "evilpw");
  v.expect_still_works();

  // Not a blanket refusal: bob still enrols his own node with its key holder's claim.
  r = v.s.hmq_enrol({"node", "create", "mine:minepw"}, v.s.new_enrolment("minepw"), bob);
  EXPECT_EQ(r.exit, 0) << r.out << r.err;
}

TEST(attack_mailbox, admin_of_another_org_cannot_claim_it_and_learns_no_names) {
  victim_agbot v;
  ASSERT_FALSE(v.mailbox.empty());
  ASSERT_EQ(v.s.hmq({"org", "create", "evilcorp"}).exit, 0);
  ASSERT_EQ(v.s.hmq({"--org", "evilcorp", "user", "create", "mallory", "mpw", "--admin"}).exit, 0);
  const std::string mallory = "evilcorp/mallory:mpw";

  for (const char* kind : {"node", "agbot"}) {
    auto r = v.s.hmq_enrol({kind, "create", "evil:evilpw"}, v.enrolment, mallory);
    EXPECT_NE(r.exit, 0) << kind;
    const std::string out = r.out + r.err;
    EXPECT_NE(out.find("the claim was made for another token"), std::string::npos)
        << kind << ": " << out;
    EXPECT_EQ(out.find("acme"), std::string::npos) << "another org's names leaked: " << out;
    EXPECT_NE(v.s.hmq({"--org", "evilcorp", kind, "get", "evil"}).exit, 0) << kind;
  }
  expect_refused_by_broker(v, "evilpw");
  v.expect_still_works();
}

// The squatter: an agent waits for its enrolment and prints its mailbox and claim. An org user
// who read both tries to bind that mailbox to a node of its own first; the agent would then be
// locked out. Refused, and the admin's enrolment with the agent's claim lets the agent in.
TEST(attack_mailbox, squatter_cannot_preclaim_the_mailbox_of_an_agent_not_enrolled_yet) {
  secure_setup s;
  ASSERT_FALSE(s.key.empty());
  ASSERT_EQ(s.hmq({"org", "create", "acme"}).exit, 0);
  ASSERT_EQ(s.hmq({"--org", "acme", "user", "create", "bob", "bobpw"}).exit, 0);
  const std::string bob = "acme/bob:bobpw";
  secure_setup::enrolment agent_e;
  auto agent = s.start_unprovisioned_agent("realtok", agent_e);
  ASSERT_FALSE(agent_e.claim.empty()) << read_file(s.agent_dir() / "agent.log");

  auto r = s.hmq_enrol({"node", "create", "squat:squatpw"}, agent_e, bob);
  EXPECT_NE(r.exit, 0);
  EXPECT_NE((r.out + r.err).find("the claim was made for another token"), std::string::npos)
      << r.out << r.err;
  // A claim bob made with a key of his own names bob's mailbox, not the agent's.
  auto own = s.new_enrolment("squatpw");
  r = s.hmq({"node", "create", "squat:squatpw", "--mailbox", agent_e.mailbox, "--claim", own.claim},
            bob);
  EXPECT_NE(r.exit, 0);
  EXPECT_NE((r.out + r.err).find("another key than mailbox " + agent_e.mailbox), std::string::npos)
      << r.out << r.err;
  EXPECT_NE(s.hmq({"--org", "acme", "node", "get", "squat"}).exit, 0) << "nothing may be stored";
  auto probe = s.sub(agent_e.mailbox, secure_setup::machine_password(agent_e.mailbox, "squatpw"),
                     {"hmq/v1/mb/" + agent_e.mailbox});
  EXPECT_NE(probe.out.find("Not authorized"), std::string::npos) << probe.out;

  // The victim is not locked out: its admin enrols it, and it connects.
  r = s.hmq_enrol({"--org", "acme", "node", "create", "n1:realtok"}, agent_e);
  ASSERT_EQ(r.exit, 0) << r.out << r.err;
  EXPECT_TRUE(wait_for_log(s.agent_dir() / "agent.log", "connected to", 1, 30s))
      << read_file(s.agent_dir() / "agent.log");
  EXPECT_TRUE(agent.is_running());
}

}  // namespace
}  // namespace hmq::test
