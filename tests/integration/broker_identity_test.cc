#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "tests/support/secure_broker.h"

// Broker identities with the real mosquitto dynamic-security plugin: the exchange provisions a
// client per node (docs/security.md) and the broker enforces its ACLs.
namespace hmq::test {
namespace {

using namespace std::chrono_literals;

TEST(broker_identity, node_reads_only_its_own_mailbox_and_removed_node_is_refused) {
  secure_setup s;
  ASSERT_FALSE(s.key.empty());
  ASSERT_EQ(s.hmq({"org", "create", "acme"}).exit, 0);
  const auto e = s.new_enrolment("tok1");
  const std::string& mb = e.mailbox;
  auto c = s.hmq_enrol({"--org", "acme", "node", "create", "n1:tok1"}, e);
  ASSERT_EQ(c.exit, 0) << c.out << c.err;
  // Own mailbox granted (0), another mailbox and # refused (135 = not authorized).
  const std::string pw = secure_setup::machine_password(mb, "tok1");
  auto r = s.sub(mb, pw, {std::string("hmq/v1/mb/") + mb, "hmq/v1/mb/zzzzzzzzzzzzzzzz", "#"});
  EXPECT_NE(r.out.find("Subscribed (mid: 1): 0, 135, 135"), std::string::npos) << r.out;
  // The token itself is not a broker password (the broker holds nothing that logs in to the
  // exchange).
  r = s.sub(mb, "tok1", {std::string("hmq/v1/mb/") + mb});
  EXPECT_NE(r.out.find("Not authorized"), std::string::npos) << r.out;
  // Wrong password refused.
  r = s.sub(mb, "wrong", {std::string("hmq/v1/mb/") + mb});
  EXPECT_NE(r.out.find("Not authorized"), std::string::npos) << r.out;
  // Anonymous refused.
  r = run_command({"/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p",
                   std::to_string(s.broker->port()), "-t", "#", "-W", "1"},
                  {}, s.dir.path(), 10s);
  EXPECT_NE((r.out + r.err).find("not authorised"), std::string::npos) << r.out << r.err;
  // Removing the node removes its broker client.
  ASSERT_EQ(s.hmq({"--org", "acme", "node", "remove", "n1"}).exit, 0);
  r = s.sub(mb, pw, {std::string("hmq/v1/mb/") + mb});
  EXPECT_NE(r.out.find("Not authorized"), std::string::npos) << r.out;
}

// The bootstrap of docs/security.md: an agbot and an agent started before the exchange knows
// their mailbox are refused by the broker, keep knocking, and get in once `agbot create` /
// `node create --mailbox` provisions them (what scripts/quickstart.sh relies on).
TEST(broker_identity, agbot_and_agent_wait_for_their_provisioning_and_then_connect) {
  secure_setup s;
  ASSERT_FALSE(s.key.empty());
  ASSERT_EQ(s.hmq({"org", "create", "acme"}).exit, 0);
  const auto abdir = s.dir.path() / "agbot";
  const auto agdir = s.agent_dir();
  std::filesystem::create_directories(abdir);
  auto agbot = process::start(
      {{agbot_binary(), "--broker", s.broker->uri(), "--exchange-key", s.key, "--org", "acme",
        "--id", "ab1", "--token", "abtok", "--data-dir", abdir.string(), "--control-socket",
        (abdir / "agbot.sock").string(), "--mqtt-token-auth"},
       {},
       abdir / "agbot.log"});
  secure_setup::enrolment node;
  auto agent = s.start_unprovisioned_agent("ntok", node);
  const std::string& node_mailbox = node.mailbox;
  ASSERT_FALSE(node_mailbox.empty());
  ASSERT_TRUE(wait_for_log(abdir / "agbot.log", "waiting for the exchange to provision it", 1, 20s))
      << read_file(abdir / "agbot.log");
  const auto ab = secure_setup::enrolment_in(read_file(abdir / "agbot.log"));
  const std::string& ab_mailbox = ab.mailbox;
  ASSERT_FALSE(ab.claim.empty()) << read_file(abdir / "agbot.log");
  EXPECT_TRUE(agbot.is_running()) << "a refusal must not stop the agbot";
  EXPECT_TRUE(agent.is_running()) << "a refusal must not stop the agent";

  auto c = s.hmq_enrol({"--org", "acme", "agbot", "create", "ab1:abtok"}, ab);
  ASSERT_EQ(c.exit, 0) << c.out << c.err;
  c = s.hmq_enrol({"--org", "acme", "node", "create", "n1:ntok"}, node);
  ASSERT_EQ(c.exit, 0) << c.out << c.err;
  EXPECT_TRUE(wait_for_log(abdir / "agbot.log", "agbot acme/ab1 up", 1, 30s))
      << read_file(abdir / "agbot.log");
  EXPECT_TRUE(wait_for_log(agdir / "agent.log", "as hmq-agent-" + node_mailbox, 1, 30s))
      << read_file(agdir / "agent.log");
  // The agbot's AgbotHello asks the exchange to ensure its identity again; re-sending the same
  // password/roles would make dynsec kick it ("disconnected by administrative action").
  ASSERT_TRUE(wait_for_log(s.dir.path() / "exchange" / "exchange.log",
                           "broker identity ensure " + ab_mailbox, 1, 10s));
  std::this_thread::sleep_for(
      2s);  // room for a wrong kick to happen; the assertion is on the log, not on time
  EXPECT_EQ(s.broker->log().find("administrative action"), std::string::npos) << s.broker->log();
}

// A broker-initiated DISCONNECT (here: the identity's password changed) is a lost connection:
// the client reconnects, refused until the new password is configured.
TEST(broker_identity, client_kicked_by_the_broker_reconnects) {
  secure_setup s;
  ASSERT_FALSE(s.key.empty());
  ASSERT_EQ(s.hmq({"org", "create", "acme"}).exit, 0);
  const auto abdir = s.dir.path() / "agbot";
  std::filesystem::create_directories(abdir);
  auto agbot = process::start(
      {{agbot_binary(), "--broker", s.broker->uri(), "--exchange-key", s.key, "--org", "acme",
        "--id", "ab1", "--token", "abtok", "--data-dir", abdir.string(), "--control-socket",
        (abdir / "agbot.sock").string(), "--mqtt-token-auth"},
       {},
       abdir / "agbot.log"});
  ASSERT_TRUE(wait_for_log(abdir / "agbot.log", "--claim", 1, 20s))
      << read_file(abdir / "agbot.log");
  const auto ab = secure_setup::enrolment_in(read_file(abdir / "agbot.log"));
  ASSERT_EQ(s.hmq_enrol({"--org", "acme", "agbot", "create", "ab1:abtok"}, ab).exit, 0);
  ASSERT_TRUE(wait_for_log(abdir / "agbot.log", "agbot acme/ab1 up", 1, 30s))
      << read_file(abdir / "agbot.log");
  // Kick it the way dynsec does: setClientPassword to the same value disconnects the client.
  auto r = run_command(
      {"/usr/bin/mosquitto_ctrl", "-h", "127.0.0.1", "-p", std::to_string(s.broker->port()), "-u",
       "hmq-exchange", "-P", read_file(s.dir.path() / "hmq-exchange.password"), "dynsec",
       "setClientPassword", ab.mailbox, secure_setup::machine_password(ab.mailbox, "abtok")},
      {}, s.dir.path(), 10s);
  ASSERT_EQ(r.exit, 0) << r.out << r.err;
  ASSERT_TRUE(wait_for_log(s.broker->log_file(), "administrative action", 1, 10s))
      << s.broker->log();
  EXPECT_TRUE(wait_for_log(abdir / "agbot.log", "broker sent DISCONNECT", 1, 10s))
      << read_file(abdir / "agbot.log");
  EXPECT_TRUE(wait_for_log(abdir / "agbot.log", "connected to", 2, 30s))
      << "no reconnect:\n"
      << read_file(abdir / "agbot.log");
}

}  // namespace
}  // namespace hmq::test
