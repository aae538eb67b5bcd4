#include <gtest/gtest.h>

#include <regex>

#include "tests/support/secure_broker.h"

// Attacks on the broker itself by parties holding real broker credentials (issue 15, attacks 2
// and 3): taking over another party's MQTT session by its client id, and parking a retained
// message in another party's mailbox. broker-config/mosquitto-secure.conf sets
// use_username_as_clientid and retain_available false; secure_setup mirrors it.
namespace hmq::test {
namespace {

// mosquitto_pub / mosquitto_sub against the test broker; stdout and stderr together.
run_result mosq(secure_setup& s, const std::string& tool, std::vector<std::string> args) {
  args.insert(args.begin(),
              {"/usr/bin/" + tool, "-h", "127.0.0.1", "-p", std::to_string(s.broker->port())});
  auto r = run_command(args, {}, s.dir.path(), 15s);
  r.out += r.err;
  return r;
}

// What mosquitto logs when a client id is taken over.
constexpr const char* takeover = "already connected, closing old connection";

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (auto p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

// An operator: org user acme/mallory (org "acme" must exist), with the broker identity the
// exchange provisioned for it.
core::bus::user_identity operator_of_acme(secure_setup& s) {
  auto r = s.hmq({"--org", "acme", "user", "create", "mallory", "mallorypw"});
  EXPECT_EQ(r.exit, 0) << r.out << r.err;
  return secure_setup::user_identity("acme", "mallory", "mallorypw");
}

// The attack of the issue: an operator's broker credentials with the victim's (guessable) client
// id and a persistent session. The broker names the connection after its username instead.
TEST(attack_session, operator_using_an_agbots_client_id_does_not_take_its_session) {
  victim_agbot v;
  ASSERT_FALSE(v.mailbox.empty());
  const auto op = operator_of_acme(v.s);
  auto r = mosq(v.s, "mosquitto_sub",
                {"-u", op.username, "-P", op.password, "-i", "hmq-agbot-" + v.mailbox, "-c", "-V",
                 "mqttv5", "-t", "hmq/v1/r/" + op.inbox + "/+", "-W", "2", "-d"});
  EXPECT_NE(r.out.find("received CONNACK (0)"), std::string::npos) << r.out;
  EXPECT_NE(v.s.broker->log().find("as acme/mallory"), std::string::npos) << v.s.broker->log();
  EXPECT_EQ(v.s.broker->log().find(takeover), std::string::npos) << v.s.broker->log();
  v.expect_still_works();
}

// Same against the exchange's client id (hmq-x-<mailbox>): its RPC service stays up.
TEST(attack_session, operator_using_the_exchanges_client_id_does_not_take_its_session) {
  secure_setup s;
  ASSERT_FALSE(s.key.empty());
  const auto xlog = s.dir.path() / "exchange" / "exchange.log";
  std::smatch m;
  std::string text = read_file(xlog);
  ASSERT_TRUE(std::regex_search(text, m, std::regex("mailbox=([a-z2-7]{16})"))) << text;
  auto org = s.hmq({"org", "create", "acme"});
  EXPECT_EQ(org.exit, 0) << org.out << org.err;
  const auto op = operator_of_acme(s);
  auto r = mosq(s, "mosquitto_sub",
                {"-u", op.username, "-P", op.password, "-i", "hmq-x-" + std::string(m[1]), "-c",
                 "-V", "mqttv5", "-t", "hmq/v1/x/rpc", "-W", "2", "-d"});
  EXPECT_NE(r.out.find("received CONNACK (0)"), std::string::npos) << r.out;
  org = s.hmq({"org", "create", "beta"});
  EXPECT_EQ(org.exit, 0) << org.out << org.err;
  EXPECT_TRUE(s.exchange->is_running());
  text = read_file(xlog);
  EXPECT_EQ(count_of(text, "connected to"), 1u) << "the exchange lost its session:\n" << text;
  EXPECT_EQ(s.broker->log().find(takeover), std::string::npos) << s.broker->log();
}

// A node may publish to agbots' uplinks (that is how it answers them), so the ACLs cannot stop
// the topic; the broker keeps no retained message from anyone.
TEST(attack_retained, node_cannot_park_a_retained_message_in_an_agbots_uplink) {
  victim_agbot v;
  ASSERT_FALSE(v.mailbox.empty());
  const auto node = v.s.new_enrolment("evilpw");
  const std::string& node_mb = node.mailbox;
  auto c = v.s.hmq_enrol({"--org", "acme", "node", "create", "evil:evilpw"}, node);
  ASSERT_EQ(c.exit, 0) << c.out << c.err;
  // MQTT 3.1.1, so the client sends the retain flag whatever the broker announces.
  auto r = mosq(v.s, "mosquitto_pub",
                {"-u", node_mb, "-P", secure_setup::machine_password(node_mb, "evilpw"), "-V",
                 "mqttv311", "-q", "1", "-r", "-t", "hmq/v1/up/" + v.mailbox, "-m", "parked-junk"});
  // A later subscriber of that uplink (a user root let record the bus) gets nothing.
  const auto rec = operator_of_acme(v.s);
  auto grant = v.s.hmq({"user", "allow-record", "acme/mallory"});
  ASSERT_EQ(grant.exit, 0) << grant.out << grant.err;
  auto later = mosq(v.s, "mosquitto_sub",
                    {"-u", rec.username, "-P", rec.password, "-V", "mqttv5", "-t",
                     "hmq/v1/up/" + v.mailbox, "-W", "2", "-d", "-v"});
  EXPECT_NE(later.out.find("Subscribed (mid: 1): 0"), std::string::npos) << later.out;
  EXPECT_EQ(later.out.find("parked-junk"), std::string::npos) << later.out;
  v.expect_still_works();
}

// A node writes only to agbots' uplinks, never to a mailbox: it cannot fill another node's
// offline queue and so make the broker drop what the exchange or an agbot sends that node. The
// broker's queue here holds 20 messages; the attacker sends 50 to the victim's mailbox and 50
// to the victim's uplink while the victim is offline.
TEST(attack_queue, node_cannot_fill_another_nodes_offline_queue) {
  secure_setup s({"max_queued_messages 20"});
  ASSERT_FALSE(s.key.empty());
  ASSERT_EQ(s.hmq({"org", "create", "acme"}).exit, 0);
  const auto victim_e = s.new_enrolment("tok1"), evil_e = s.new_enrolment("evilpw"),
             ab_e = s.new_enrolment("abtok");
  const std::string &victim = victim_e.mailbox, &evil = evil_e.mailbox, &ab = ab_e.mailbox;
  for (const auto& [who, e] : {std::pair{"n1:tok1", victim_e}, std::pair{"evil:evilpw", evil_e}}) {
    auto c = s.hmq_enrol({"--org", "acme", "node", "create", who}, e);
    ASSERT_EQ(c.exit, 0) << c.out << c.err;
  }
  auto c = s.hmq_enrol({"--org", "acme", "agbot", "create", "ab1:abtok"}, ab_e);
  ASSERT_EQ(c.exit, 0) << c.out << c.err;
  const auto victim_pw = secure_setup::machine_password(victim, "tok1");
  const auto evil_pw = secure_setup::machine_password(evil, "evilpw");
  // Who reads what: the node neither its uplink nor another's; the agbot its mailbox and uplink.
  auto r = s.sub(victim, victim_pw, {"hmq/v1/mb/" + victim, "hmq/v1/up/" + victim});
  EXPECT_NE(r.out.find("Subscribed (mid: 1): 0, 135"), std::string::npos) << r.out;
  r = s.sub(ab, secure_setup::machine_password(ab, "abtok"),
            {"hmq/v1/mb/" + ab, "hmq/v1/up/" + ab, "hmq/v1/up/" + victim});
  EXPECT_NE(r.out.find("Subscribed (mid: 1): 0, 0, 135"), std::string::npos) << r.out;

  // The victim's persistent session (client id = username), then it goes offline.
  const std::vector<std::string> victim_session{
      "-u",   victim, "-P",     victim_pw, "-i",
      victim, "-V",   "mqttv5", "-c",      "-x",
      "600",  "-q",   "1",      "-t",      "hmq/v1/mb/" + victim,
      "-v"};
  auto first = victim_session;
  first.insert(first.end(), {"-W", "1"});
  r = mosq(s, "mosquitto_sub", first);
  ASSERT_EQ(r.out.find("rror"), std::string::npos) << r.out;

  // 50 to the mailbox: every PUBACK says "not authorized"; 50 to the uplink: accepted, and read
  // by nobody (only agbots subscribe uplinks).
  r = mosq(s, "mosquitto_pub",
           {"-u", evil, "-P", evil_pw, "-V", "mqttv5", "-q", "1", "-t", "hmq/v1/mb/" + victim, "-m",
            "junk", "--repeat", "50"});
  EXPECT_NE(r.out.find("Not authorized"), std::string::npos) << r.out;
  r = mosq(s, "mosquitto_pub",
           {"-u", evil, "-P", evil_pw, "-V", "mqttv5", "-q", "1", "-t", "hmq/v1/up/" + victim, "-m",
            "junk", "--repeat", "50"});
  EXPECT_EQ(r.exit, 0) << r.out;

  // What the victim is owed arrives: one message from the exchange's identity.
  const auto xpw = read_file(s.dir.path() / "hmq-exchange.password");
  r = mosq(s, "mosquitto_pub",
           {"-u", "hmq-exchange", "-P", xpw.substr(0, xpw.find_first_of("\r\n")), "-V", "mqttv5",
            "-q", "1", "-t", "hmq/v1/mb/" + victim, "-m", "owed"});
  ASSERT_EQ(r.exit, 0) << r.out;
  auto again = victim_session;
  again.insert(again.end(), {"-W", "2"});
  r = mosq(s, "mosquitto_sub", again);
  EXPECT_NE(r.out.find("owed"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("junk"), std::string::npos) << r.out;
  EXPECT_EQ(s.broker->log().find("Outgoing messages are being dropped"), std::string::npos)
      << s.broker->log();
}

}  // namespace
}  // namespace hmq::test
