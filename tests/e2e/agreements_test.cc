// The agreement protocol end to end (issue 4): real mosquitto, hmq-exchange, hmq-agbot and
// several hmq-agent processes, driven only through the hmq CLI and the control sockets.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/bus/client.h"
#include "exchange/db.h"
#include "exchange_client/ids.h"
#include "tests/support/fleet.h"
#include "tests/support/loop_thread.h"

namespace hmq::e2e {
namespace {

using namespace std::chrono_literals;
using test::eventually;
using test::fleet;
using test::fleet_options;
using test::json;

fleet_options with_agents(size_t n) {
  fleet_options o;
  o.agents = n;
  return o;
}

// Agreements of a list that are not cancelled.
json live_of(const json& list) {
  json out = json::array();
  for (const auto& a : list)
    if (a.value("state", "") != "cancelled") out.push_back(a);
  return out;
}

#define ASSERT_FLEET_UP(f) \
  if (::testing::Test::HasFatalFailure()) GTEST_FAIL() << "fleet did not start:\n" << (f).logs()

TEST(e2e_agreements, registered_nodes_get_finalized_agreements_on_both_sides_and_in_the_exchange) {
  fleet f(with_agents(3));
  ASSERT_FLEET_UP(f);
  for (size_t i = 0; i < f.agents(); ++i) {
    auto r = f.register_node(i);
    ASSERT_EQ(r.exit, 0) << r.out << r.err;
  }
  std::vector<std::string> ids;
  for (size_t i = 0; i < f.agents(); ++i) {
    auto id = f.wait_finalized_everywhere(i);
    ASSERT_FALSE(id.empty()) << "node " << i << "\n" << f.logs();
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end()) << "agreement ids must differ";

  // The people's views show the same agreement: agent, agbot and exchange tables.
  auto agent_table = f.hmq({"agreement", "list", "--agent-socket", f.agent_socket(0).string()});
  EXPECT_EQ(agent_table.exit, 0) << agent_table.err;
  auto agbot_table =
      f.hmq({"agbot", "agreement", "list", "--agbot-socket", f.agbot_socket().string()});
  EXPECT_EQ(agbot_table.exit, 0) << agbot_table.err;
  auto exchange_table = f.admin({"node", "agreements", f.qualified_node(0)});
  EXPECT_EQ(exchange_table.exit, 0) << exchange_table.err;
  const std::string id0 = f.agent_agreements(0)[0]["id"];
  for (const auto* out : {&agent_table.out, &agbot_table.out, &exchange_table.out}) {
    EXPECT_NE(out->find(id0), std::string::npos) << *out;
    EXPECT_NE(out->find("finalized"), std::string::npos) << *out;
  }
  // The agbot's JSON names the node and the pattern.
  auto agbot_json = f.hmq(
      {"agbot", "agreement", "list", "-o", "json", "--agbot-socket", f.agbot_socket().string()});
  ASSERT_EQ(agbot_json.exit, 0) << agbot_json.err;
  auto list = json::parse(agbot_json.out);
  EXPECT_EQ(list.size(), 3u);
  for (const auto& a : list) EXPECT_EQ(a["pattern"], "acme/gps");
}

TEST(e2e_agreements, agbot_started_after_the_nodes_registered_finds_them_all) {
  fleet_options o = with_agents(3);
  o.start_agbot = false;
  fleet f(o);
  ASSERT_FLEET_UP(f);
  for (size_t i = 0; i < f.agents(); ++i) ASSERT_EQ(f.register_node(i).exit, 0);
  // Nobody proposed yet: no agbot runs.
  for (size_t i = 0; i < f.agents(); ++i) EXPECT_TRUE(f.agent_agreements(i).empty());
  f.start_agbot();
  for (size_t i = 0; i < f.agents(); ++i)
    ASSERT_FALSE(f.wait_finalized_everywhere(i).empty()) << i << "\n" << f.logs();
}

TEST(e2e_agreements, node_that_does_not_trust_the_signing_key_rejects_with_115_and_keeps_nothing) {
  // The exchange checks each signature against the key published with it, so a forged
  // signature cannot get in; what the agent can meet is a deployment signed by a key it does
  // not trust (115 image_sig_verif_failure). Agent 0 trusts the publisher and is the control.
  fleet f(with_agents(1));
  ASSERT_FLEET_UP(f);
  size_t stranger = f.add_agent(/*trust_publisher=*/false);
  // It trusts another publisher's key instead.
  auto other = f.dir() / "other-keys";
  ASSERT_EQ(f.hmq({"key", "create", "-d", other.string()}).exit, 0);
  auto imp = f.hmq({"key", "import", "-k", (other / "hmq-signing.public.key").string(),
                    "--agent-socket", f.agent_socket(stranger).string()});
  ASSERT_EQ(imp.exit, 0) << imp.err;

  ASSERT_EQ(f.register_node(stranger).exit, 0);
  ASSERT_EQ(f.register_node(0).exit, 0);
  ASSERT_FALSE(f.wait_finalized_everywhere(0).empty()) << f.logs();

  // The agbot shows the rejection with the node's code.
  json rejected;
  ASSERT_TRUE(eventually([&] {
    for (const auto& a : f.agbot_agreements_of(stranger, true))
      if (a.value("reason", 0) == 202 && a.value("node_reason", 0) == 115) rejected = a;
    return !rejected.is_null();
  })) << f.logs();
  EXPECT_EQ(rejected["node_reason_text"], "image_sig_verif_failure");
  auto table =
      f.hmq({"agbot", "agreement", "list", "--all", "--agbot-socket", f.agbot_socket().string()});
  EXPECT_NE(table.out.find("115 image_sig_verif_failure"), std::string::npos) << table.out;

  // The node keeps no agreement, counted the rejection, and the exchange has no record.
  EXPECT_TRUE(f.agent_agreements(stranger).empty()) << f.agent_agreements(stranger).dump();
  json st = f.agent_call(stranger, {{"op", "node_status"}});
  EXPECT_GE(st["counters"].value("rejected", 0), 1) << st.dump();
  EXPECT_EQ(st.value("live_agreements", -1), 0);
  EXPECT_TRUE(f.exchange_agreements(stranger).empty());
  // The agbot may be proposing again after its back-off, but never finalized anything.
  for (const auto& a : f.agbot_agreements_of(stranger, true))
    EXPECT_NE(a["state"], "finalized") << a.dump();
}

TEST(e2e_agreements, node_rejects_a_deployment_whose_signature_was_tampered_with_at_rest_with_115) {
  // True tampering: the exchange accepted a correctly signed service, then its stored copy is
  // changed behind its back (one bit of the signature in exchange.db). The agent trusts the
  // publisher's key, so only the signature check itself can catch it.
  fleet_options o = with_agents(1);
  o.start_agbot = false;
  fleet f(o);
  ASSERT_FLEET_UP(f);
  f.exchange().stop();
  {
    auto d = exchange::db::open(f.dir() / "exchange" / "exchange.db");
    ASSERT_TRUE(d) << d.err().message();
    const auto id = exchange_client::service_id("https://acme.example/gps", "1.0.0", "amd64");
    auto blob = d->blob_get(exchange::table::services, "acme", id);
    ASSERT_TRUE(blob && *blob) << "service " << id << " not in exchange.db";
    ::hmq::wire::fb::ServiceT svc;
    flatbuffers::GetRoot<::hmq::wire::fb::Service>((*blob)->data())->UnPackTo(&svc);
    ASSERT_EQ(svc.service_signature.size(), 64u);
    svc.service_signature[10] ^= 0x01;
    ASSERT_TRUE(d->service_put(svc, id, false));
  }
  f.exchange().start();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  ASSERT_EQ(f.register_node(0).exit, 0);
  f.start_agbot();
  json rejected;
  ASSERT_TRUE(eventually([&] {
    for (const auto& a : f.agbot_agreements_of(0, true))
      if (a.value("reason", 0) == 202 && a.value("node_reason", 0) == 115) rejected = a;
    return !rejected.is_null();
  })) << f.logs();
  EXPECT_TRUE(f.agent_agreements(0).empty()) << f.agent_agreements(0).dump();
  EXPECT_EQ(f.agent_call(0, {{"op", "node_status"}}).value("live_agreements", -1), 0);
  EXPECT_TRUE(f.exchange_agreements(0).empty());
}

TEST(e2e_agreements, node_registered_for_another_pattern_gets_no_proposal) {
  fleet f(with_agents(2));
  ASSERT_FLEET_UP(f);
  f.publish_pattern("other", "othersvc", "otherimage");
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  ASSERT_EQ(f.register_node(1, "other").exit, 0);
  // Then a node of the served pattern: once its agreement is final, the agbot has processed
  // the earlier registration event too (events from the exchange arrive in order).
  ASSERT_EQ(f.register_node(0).exit, 0);
  ASSERT_FALSE(f.wait_finalized_everywhere(0).empty()) << f.logs();

  json st = f.agent_call(1, {{"op", "node_status"}});
  EXPECT_EQ(st["counters"].value("proposals", -1), 0) << st.dump();
  EXPECT_TRUE(f.agent_agreements(1).empty());
  EXPECT_TRUE(f.agbot_agreements_of(1, true).empty());
  EXPECT_TRUE(f.exchange_agreements(1).empty());
}

TEST(e2e_agreements, cancel_by_the_agent_frees_the_node_and_a_new_agreement_forms) {
  fleet f(with_agents(1));
  ASSERT_FLEET_UP(f);
  ASSERT_EQ(f.register_node(0).exit, 0);
  auto first = f.wait_finalized_everywhere(0);
  ASSERT_FALSE(first.empty()) << f.logs();

  auto r = f.unregister_node(0);
  ASSERT_EQ(r.exit, 0) << r.err;
  ASSERT_TRUE(eventually([&] { return f.agbot_agreements_of(0).empty(); })) << f.logs();
  json old = f.agent_agreements(0);
  ASSERT_EQ(old.size(), 1u);
  EXPECT_EQ(old[0]["reason"], 105);

  ASSERT_EQ(f.register_node(0).exit, 0);
  auto second = f.wait_finalized_everywhere(0);
  ASSERT_FALSE(second.empty()) << f.logs();
  EXPECT_NE(second, first);
}

TEST(e2e_agreements, cancel_by_the_agbot_frees_the_node_and_a_new_agreement_forms) {
  fleet f(with_agents(1));
  ASSERT_FLEET_UP(f);
  ASSERT_EQ(f.register_node(0).exit, 0);
  auto first = f.wait_finalized_everywhere(0);
  ASSERT_FALSE(first.empty()) << f.logs();

  auto r =
      f.hmq({"agbot", "agreement", "cancel", first, "--agbot-socket", f.agbot_socket().string()});
  ASSERT_EQ(r.exit, 0) << r.out << r.err;
  // The node hears of it (206) and the agbot proposes again after its back-off.
  ASSERT_TRUE(eventually([&] {
    for (const auto& a : f.agent_agreements(0))
      if (a["id"] == first)
        return a.value("state", "") == "cancelled" && a.value("reason", 0) == 206;
    return false;
  })) << f.agent_agreements(0).dump()
      << f.logs();
  auto second = f.wait_finalized_everywhere(0);
  ASSERT_FALSE(second.empty()) << f.logs();
  EXPECT_NE(second, first);
  // Unknown ids are refused.
  EXPECT_EQ(
      f.hmq({"agbot", "agreement", "cancel", first, "--agbot-socket", f.agbot_socket().string()})
          .exit,
      2);
}

// One agreement, on every side, for node i, and never a second live one.
void expect_exactly_one_agreement(fleet& f, size_t i) {
  auto id = f.wait_finalized_everywhere(i);
  ASSERT_FALSE(id.empty()) << f.logs();
  EXPECT_EQ(live_of(f.agent_agreements(i)).size(), 1u) << f.agent_agreements(i).dump();
  EXPECT_EQ(f.agbot_agreements_of(i).size(), 1u) << f.agbot_agreements_of(i, true).dump();
  EXPECT_EQ(f.exchange_agreements(i).size(), 1u) << f.exchange_agreements(i).dump();
}

TEST(e2e_agreements, agbot_killed_between_proposal_and_reply_ack_ends_with_one_agreement) {
  fleet_options o = with_agents(1);
  o.reply_timeout = "60s";  // the proposal stays valid across the restart
  fleet f(o);
  ASSERT_FLEET_UP(f);
  // Hold the agent so the agbot's Proposal waits for it; the agbot dies while proposed.
  ASSERT_TRUE(f.agbot_process().kill(SIGSTOP));
  ASSERT_EQ(f.register_node(0).exit, 0);
  ASSERT_TRUE(f.agent_process(0).kill(SIGSTOP));
  ASSERT_TRUE(f.agbot_process().kill(SIGCONT));
  ASSERT_TRUE(eventually([&] {
    auto l = f.agbot_agreements_of(0);
    return l.size() == 1 && l[0]["state"] == "proposed";
  })) << f.logs();
  f.kill_agbot();
  // The agent answers into the dead agbot's persistent session.
  ASSERT_TRUE(f.agent_process(0).kill(SIGCONT));
  ASSERT_TRUE(eventually([&] {
    auto l = f.agent_agreements(0);
    return l.size() == 1 && l[0]["state"] == "accepted";
  })) << f.logs();
  f.start_agbot();
  expect_exactly_one_agreement(f, 0);
  EXPECT_EQ(f.agent_agreements(0).size(), 1u) << "the node saw a second proposal";
}

TEST(e2e_agreements, agent_killed_between_proposal_and_reply_ack_ends_with_one_agreement) {
  fleet_options o = with_agents(1);
  o.reply_timeout = "60s";
  fleet f(o);
  ASSERT_FLEET_UP(f);
  ASSERT_TRUE(f.agbot_process().kill(SIGSTOP));
  ASSERT_EQ(f.register_node(0).exit, 0);
  ASSERT_TRUE(f.agent_process(0).kill(SIGSTOP));
  ASSERT_TRUE(f.agbot_process().kill(SIGCONT));
  ASSERT_TRUE(eventually([&] {
    auto l = f.agbot_agreements_of(0);
    return l.size() == 1 && l[0]["state"] == "proposed";
  })) << f.logs();
  // Hold the agbot, let the agent accept, and kill the agent before any ReplyAck can come.
  ASSERT_TRUE(f.agbot_process().kill(SIGSTOP));
  ASSERT_TRUE(f.agent_process(0).kill(SIGCONT));
  ASSERT_TRUE(eventually([&] {
    auto l = f.agent_agreements(0);
    return l.size() == 1 && l[0]["state"] == "accepted";
  })) << f.logs();
  f.kill_agent(0);
  ASSERT_TRUE(f.agbot_process().kill(SIGCONT));
  // The agbot finalizes; its ReplyAck waits in the node's persistent session.
  ASSERT_TRUE(eventually([&] {
    auto l = f.agbot_agreements_of(0);
    return l.size() == 1 && l[0]["state"] == "finalized";
  })) << f.logs();
  f.start_agent(0);
  expect_exactly_one_agreement(f, 0);
  EXPECT_EQ(f.agent_agreements(0).size(), 1u);
}

TEST(e2e_agreements, kill_at_random_points_of_the_protocol_never_leaves_two_agreements) {
  fleet_options o = with_agents(1);
  // Short: a kill between "accepted" persisted and the Reply sent is healed by the agbot's
  // reply timeout (201, Cancel, proposal again), which the wait below must cover.
  o.reply_timeout = "4s";
  fleet f(o);
  ASSERT_FLEET_UP(f);
  std::mt19937 rng(std::random_device{}());
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const bool kill_agbot = round % 2 == 0;
    auto delay = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 40)(rng));
    ASSERT_EQ(f.register_node(0).exit, 0);
    std::this_thread::sleep_for(delay);  // where to kill, not an assertion
    if (kill_agbot) {
      f.kill_agbot();
      f.start_agbot();
    } else {
      f.kill_agent(0);
      f.start_agent(0);
    }
    expect_exactly_one_agreement(f, 0);
    if (::testing::Test::HasFatalFailure()) return;
    ASSERT_EQ(f.unregister_node(0).exit, 0);
    ASSERT_TRUE(eventually([&] { return f.agbot_agreements_of(0).empty(); })) << f.logs();
  }
}

// Everything the broker saw, recorded by a plain subscriber on `<prefix>/#`.
class wire_recorder {
 public:
  explicit wire_recorder(const std::string& uri) {
    lt_.call([&] {
      core::bus::options o;
      o.broker_uri = uri;
      o.client_id = "e2e-wire-recorder";
      o.clean_start = true;
      o.session_expiry_s = 0;
      bus_ = std::make_unique<core::bus::client>(lt_.loop(), o);
      bus_->subscribe(
          "hmq/#", 1,
          [this](const core::bus::inbound& in) { w_.update([&] { seen_.push_back(in); }); },
          [this](core::result<void> r) { w_.update([&] { subscribed_ = r.ok(); }); });
      bus_->start();
    });
  }
  ~wire_recorder() {
    lt_.call([&] {
      bus_->stop();
      bus_.reset();
    });
  }
  bool wait_subscribed() {
    return w_.wait([&] { return subscribed_; });
  }
  std::vector<core::bus::inbound> seen() {
    return w_.read([&] { return seen_; });
  }

 private:
  test::loop_thread lt_;
  test::waiter w_;
  std::unique_ptr<core::bus::client> bus_;
  std::vector<core::bus::inbound> seen_;
  bool subscribed_ = false;
};

TEST(e2e_agreements, the_wire_reveals_no_name_image_credential_or_token) {
  fleet_options o = with_agents(2);
  o.start_agbot = false;
  o.org = "privacyorgq";
  o.pattern = "secretpatternq";
  o.service = "hiddenserviceq";
  o.image = "concealedimageq";
  o.node_prefix = "privatenodeq";
  o.token_prefix = "nodetokenq";
  o.agbot_token = "agbottokenq";
  o.registry_auth = "registryhostq.example:reguserq:regpasswordq";
  fleet f(o);
  ASSERT_FLEET_UP(f);
  wire_recorder rec(f.broker().uri());
  ASSERT_TRUE(rec.wait_subscribed());
  // Agbot start-up, registration, proposal, reply, ack and the exchange records, all recorded.
  f.start_agbot();
  for (size_t i = 0; i < f.agents(); ++i) ASSERT_EQ(f.register_node(i).exit, 0);
  for (size_t i = 0; i < f.agents(); ++i)
    ASSERT_FALSE(f.wait_finalized_everywhere(i).empty()) << f.logs();
  auto seen = rec.seen();
  ASSERT_GT(seen.size(), 10u) << "the recorder saw too little to prove anything";

  const std::vector<std::string> secrets = {o.org,
                                            o.pattern,
                                            o.service,
                                            o.image,
                                            "privacyorgq.example/hiddenserviceq",
                                            o.node_prefix,
                                            o.token_prefix,
                                            o.agbot_token,
                                            "registryhostq",
                                            "reguserq",
                                            "regpasswordq",
                                            "admin-pw",
                                            "amd64",
                                            "bot1"};
  size_t bytes = 0;
  for (const auto& m : seen) {
    bytes += m.payload.size();
    const std::string payload(m.payload.begin(), m.payload.end());
    for (const auto& s : secrets) {
      EXPECT_EQ(m.topic.find(s), std::string::npos) << "topic " << m.topic << " contains " << s;
      EXPECT_EQ(payload.find(s), std::string::npos)
          << "payload on " << m.topic << " contains " << s;
    }
  }
  RecordProperty("messages", static_cast<int>(seen.size()));
  RecordProperty("bytes", static_cast<int>(bytes));
  // The recorder really saw the agreement messages: every payload of a mailbox is sealed, but
  // the node's and the agbot's mailboxes must have carried traffic.
  auto mb = f.agent_call(0, {{"op", "node_status"}}).value("mailbox", "");
  EXPECT_TRUE(std::any_of(seen.begin(), seen.end(),
                          [&](const auto& m) { return m.topic.find(mb) != std::string::npos; }))
      << "no message to the node's mailbox " << mb;
}

}  // namespace
}  // namespace hmq::e2e
