#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/secure_broker.h"

// Org boundaries (issue 15, attack 4; docs/security.md "Org boundaries"), with a real agent, real
// agbots and real broker identities: a vendor org's agbot told by its own admin to serve the
// vendor's public pattern "for the nodes of acme" finds none of acme's nodes and reaches none of
// them until an admin of acme consents.
namespace hmq::test {
namespace {

const std::string eve = "evil/eve:evepw";

// `hmq exchange` as eve publishes `json` (a service or a pattern) in org evil.
void publish(secure_setup& s, const std::string& what, const std::string& json) {
  const auto f = s.dir.path() / (what + "-evil.json");
  std::ofstream(f) << json;
  auto r = s.hmq({"--org", "evil", what, "publish", "-f", f.string()}, eve);
  ASSERT_EQ(r.exit, 0) << r.out << r.err;
}

TEST(attack_org, agbot_of_another_org_reaches_no_node_without_the_node_orgs_consent) {
  victim_agbot v;
  secure_setup& s = v.s;
  // The vendor: org evil, its admin eve, a public service and pattern, agbot eb1 serving it
  // for the nodes of acme (its own admin's say-so only).
  ASSERT_EQ(s.hmq({"org", "create", "evil"}).exit, 0);
  ASSERT_EQ(s.hmq({"--org", "evil", "user", "create", "eve", "evepw", "-A"}).exit, 0);
  publish(s, "service",
          R"({"org": "evil", "url": "https://evil.com/spy", "version": "1.0.0",
      "arch": "amd64", "sharable": "multiple", "public": true, "deployment": {"services": {"spy":
      {"image": "127.0.0.1:1/spy@sha256:)" +
              std::string(64, 'b') + R"("}}}})");
  publish(s, "pattern", R"({"org": "evil", "name": "spy", "public": true, "services": [{
      "serviceUrl": "https://evil.com/spy", "serviceOrgid": "evil", "serviceArch": "amd64",
      "serviceVersions": [{"version": "1.0.0"}]}]})");
  secure_setup::enrolment eb;
  {
    auto probe = s.start_unprovisioned_agbot("evil", "eb1", "ebtok", eb);
    probe.kill(SIGTERM);
    ASSERT_TRUE(probe.wait_for(10s));
  }
  auto r = s.hmq_enrol({"--org", "evil", "agbot", "create", "eb1:ebtok"}, eb, eve);
  ASSERT_EQ(r.exit, 0) << r.out << r.err;
  r = s.hmq({"--org", "evil", "agbot", "addpattern", "eb1", "evil", "spy", "acme"}, eve);
  ASSERT_EQ(r.exit, 0) << r.out << r.err;
  auto eb1 = s.start_agbot("evil", "eb1", "ebtok");
  ASSERT_TRUE(wait_for_log(s.agbot_log("eb1"), "serving 1 pattern(s)", 1, 30s))
      << read_file(s.agbot_log("eb1"));

  // acme's node, a real agent on its own broker identity, registers with the vendor's pattern.
  const auto agdir = s.agent_dir();
  secure_setup::enrolment node;
  auto agent = s.start_unprovisioned_agent("n1tok", node);
  ASSERT_FALSE(node.mailbox.empty());
  r = s.hmq_enrol({"--org", "acme", "node", "create", "n1:n1tok"}, node);
  ASSERT_EQ(r.exit, 0) << r.out << r.err;
  ASSERT_TRUE(wait_for_log(agdir / "agent.log", "connected to", 1, 30s))
      << read_file(agdir / "agent.log");
  r = s.raw_hmq({"register", "--node", "acme/n1", "--token", "n1tok", "--pattern", "evil/spy",
                 "--agent-socket", (agdir / "agent.sock").string()});
  ASSERT_EQ(r.exit, 0) << r.out << r.err;

  // Refused: eb1 cannot search acme's nodes (the exchange says forbidden, again on every retry)
  // and proposes nothing to n1.
  EXPECT_TRUE(wait_for_log(s.agbot_log("eb1"), "node search failed", 2, 30s))
      << read_file(s.agbot_log("eb1"));
  EXPECT_NE(read_file(s.agbot_log("eb1")).find("forbidden"), std::string::npos)
      << read_file(s.agbot_log("eb1"));
  EXPECT_EQ(read_file(agdir / "agent.log").find("proposal from evil/eb1"), std::string::npos)
      << read_file(agdir / "agent.log");
  // eve may not grant herself acme's consent.
  r = s.hmq({"--org", "acme", "org", "allow-agbot", "evil/eb1"}, eve);
  EXPECT_NE(r.exit, 0) << r.out << r.err;
  v.expect_still_works();
  EXPECT_TRUE(agent.is_running());

  // The control: once acme's admin consents, eb1's next search finds n1 and its proposal reaches
  // the agent (which decides on it by its own rules).
  r = s.hmq({"--org", "acme", "org", "allow-agbot", "evil/eb1"});
  ASSERT_EQ(r.exit, 0) << r.out << r.err;
  EXPECT_TRUE(wait_for_log(agdir / "agent.log", "proposal from evil/eb1", 1, 60s))
      << read_file(agdir / "agent.log") << read_file(s.agbot_log("eb1"));
  EXPECT_TRUE(eb1.is_running());
}

}  // namespace
}  // namespace hmq::test
