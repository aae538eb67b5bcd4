#include <gtest/gtest.h>

#include "tests/support/secure_broker.h"

// Attack: claim somebody else's mailbox (docs/security.md "Mailbox ownership"). The victim is
// an agbot that proved its mailbox with a sealed AgbotHello; the attacker holds ordinary
// credentials and asks the exchange to provision a node with the victim's mailbox and a token
// of its choice, which would make it the broker identity of that mailbox. Each case asserts
// the refusal (RPC error, nothing stored, the broker refuses the attacker's password) and that
// the victim keeps its session and keeps working (tests/support/secure_broker.h).
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

  auto r = v.s.hmq({"node", "create", "evil:evilpw", "--mailbox", v.mailbox}, bob);
  EXPECT_NE(r.exit, 0);
  EXPECT_NE((r.out + r.err).find("mailbox " + v.mailbox + " is already bound to agbot acme/ab1"),
            std::string::npos)
      << r.out << r.err;
  auto get = v.s.hmq({"--org", "acme", "node", "get", "evil"});
  EXPECT_NE(get.exit, 0) << "nothing may be stored: " << get.out;
  expect_refused_by_broker(v, "evilpw");
  v.expect_still_works();

  // Not a blanket refusal: bob still creates his own node with a mailbox nobody holds.
  r = v.s.hmq({"node", "create", "mine:minepw", "--mailbox", "qrstuvwxyz234567"}, bob);
  EXPECT_EQ(r.exit, 0) << r.out << r.err;
}

TEST(attack_mailbox, admin_of_another_org_cannot_claim_it_and_learns_no_names) {
  victim_agbot v;
  ASSERT_FALSE(v.mailbox.empty());
  ASSERT_EQ(v.s.hmq({"org", "create", "evilcorp"}).exit, 0);
  ASSERT_EQ(v.s.hmq({"--org", "evilcorp", "user", "create", "mallory", "mpw", "--admin"}).exit, 0);
  const std::string mallory = "evilcorp/mallory:mpw";

  for (const char* kind : {"node", "agbot"}) {
    auto r = v.s.hmq({kind, "create", "evil:evilpw", "--mailbox", v.mailbox}, mallory);
    EXPECT_NE(r.exit, 0) << kind;
    const std::string out = r.out + r.err;
    EXPECT_NE(out.find("already bound to a node or agbot of another org"), std::string::npos)
        << kind << ": " << out;
    EXPECT_EQ(out.find("acme"), std::string::npos) << "another org's names leaked: " << out;
    EXPECT_NE(v.s.hmq({"--org", "evilcorp", kind, "get", "evil"}).exit, 0) << kind;
  }
  expect_refused_by_broker(v, "evilpw");
  v.expect_still_works();
}

}  // namespace
}  // namespace hmq::test
