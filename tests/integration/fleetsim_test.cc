// hmq-fleetsim against the real system (mosquitto, hmq-exchange, hmq-agbot as processes): a small
// simulated fleet creates its nodes, registers them all at once and every node ends with a
// finalized agreement that the agbot knows too. Big fleets belong in bench/ (scripts/bench.sh).
#include <gtest/gtest.h>

#include <csignal>
#include <cstdint>
#include <string>

#include "tests/support/fleet.h"

namespace {

using hmq::test::json;

std::string fleetsim_binary() {
  return std::string(HMQ_BINARY_DIR) + "/tools/fleetsim/hmq-fleetsim";
}

std::vector<std::string> fleetsim_argv(hmq::test::fleet& f, std::vector<std::string> extra) {
  std::vector<std::string> argv{fleetsim_binary(),
                                "--broker",
                                f.broker().uri(),
                                "--exchange-key",
                                f.exchange_key(),
                                "--org",
                                f.options().org,
                                "--pattern",
                                f.options().pattern,
                                "-u",
                                f.options().org + "/admin:admin-pw",
                                "--create-nodes",
                                "--trust",
                                f.signing_public_key().string(),
                                "--timeout",
                                "120",
                                "--progress",
                                "0",
                                "-o",
                                "json"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

hmq::test::run_result run_fleetsim(hmq::test::fleet& f, std::vector<std::string> extra) {
  return hmq::test::run_command(fleetsim_argv(f, std::move(extra)), {}, f.dir(),
                                std::chrono::seconds(180));
}

// `hmq exchange node status ORG/ID -o json` (null when it fails).
json node_status(hmq::test::fleet& f, const std::string& node) {
  auto r = f.admin({"node", "status", node, "-o", "json"});
  if (r.exit != 0) return nullptr;
  return json::parse(r.out, nullptr, false);
}

TEST(fleetsim, every_simulated_node_reaches_an_agreement_the_agbot_knows) {
  hmq::test::fleet_options fo;
  fo.agents = 0;
  hmq::test::fleet f(fo);
  auto r = run_fleetsim(f, {"--nodes", "50", "--connections", "2"});
  ASSERT_EQ(r.exit, 0) << r.err << "\n" << f.logs();
  auto s = json::parse(r.out);
  EXPECT_EQ(s["registered"], 50);
  EXPECT_EQ(s["agreed"], 50);
  EXPECT_EQ(s["engine"]["finalized"], 50);
  EXPECT_EQ(s["agreed_at_s"].size(), 50u);
  // The agbot's side: one finalized agreement per simulated node.
  EXPECT_TRUE(hmq::test::eventually([&] { return f.agbot_agreements().size() == 50; }))
      << f.agbot_agreements().dump();
}

TEST(fleetsim, nodes_agree_despite_link_loss_and_latency) {
  hmq::test::fleet_options fo;
  fo.agents = 0;
  // A lost Cancel leaves the agbot with an agreement the node dropped; the agreement check (209)
  // is what repairs that, so it must run within the test's time.
  fo.check_agreement_status_s = 3;
  hmq::test::fleet f(fo);
  auto r = run_fleetsim(f, {"--nodes", "10", "--link-latency", "20", "--link-loss", "10",
                            "--rpc-timeout", "3", "--finalize-timeout", "5"});
  ASSERT_EQ(r.exit, 0) << r.err << "\n" << f.logs();
  auto s = json::parse(r.out);
  EXPECT_EQ(s["agreed"], 10);
  EXPECT_GT(s["messages_routed"].get<uint64_t>(), 0u);
}

// Crash injection goes through the runtime seam: the engine cancels the crashed agreement and
// the agbot proposes again, so a node deploys more than once.
TEST(fleetsim, injected_crashes_cancel_agreements_and_nodes_get_new_ones) {
  hmq::test::fleet_options fo;
  fo.agents = 0;
  hmq::test::fleet f(fo);
  auto r = run_fleetsim(f, {"--nodes", "5", "--crash-probability", "1", "--duration", "12"});
  ASSERT_EQ(r.exit, 0) << r.err << "\n" << f.logs();
  auto s = json::parse(r.out);
  EXPECT_EQ(s["agreed"], 5);
  EXPECT_GT(s["crashes_injected"].get<uint64_t>(), 0u);
  EXPECT_GT(s["engine"]["cancelled"].get<uint64_t>(), 0u);
  EXPECT_GT(s["deploys"].get<uint64_t>(), 5u);
}

// Simulated nodes heartbeat with the agent's own sender: the exchange accepts every node's
// frames (node status: online, a last heartbeat after the fleet started, the running agreement
// from the frame's body). A node stopped with --stop-nodes goes silent: past the pattern's
// missing_heartbeat_interval the exchange marks it stale (not online), its node_stale event makes
// the agbot cancel its agreement with 208, and the other nodes stay online.
TEST(fleetsim, simulated_nodes_heartbeat_and_a_stopped_node_goes_stale) {
  hmq::test::fleet_options fo;
  fo.agents = 0;
  fo.missing_heartbeat_interval_s = 3;
  hmq::test::fleet f(fo);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const int64_t t0_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  constexpr size_t nodes = 20;
  const auto log = f.dir() / "fleetsim.log";
  auto sim = hmq::test::process::start(
      {fleetsim_argv(
           f, {"--nodes", std::to_string(nodes), "--connections", "2", "--heartbeat-interval", "1",
               "--stop-nodes", "1", "--stop-after", "2", "--duration", "120"}),
       {},
       log});
  const std::string org = f.options().org;
  // Every node but the stopped sim0: online, heartbeating, one running agreement in its frames.
  for (size_t i = 1; i < nodes; ++i) {
    const std::string id = org + "/sim" + std::to_string(i);
    json st;
    EXPECT_TRUE(hmq::test::eventually(
        [&] {
          st = node_status(f, id);
          return st.is_object() && st.value("online", false) &&
                 st.value("last_heartbeat_ms", int64_t{0}) > t0_ms &&
                 st.value("running_agreements", 0) == 1;
        },
        std::chrono::seconds(90), std::chrono::milliseconds(200)))
        << id << ": " << st.dump() << "\n"
        << hmq::test::read_file(log) << f.logs();
  }
  // sim0 heartbeated before it stopped, then went stale.
  json st0;
  EXPECT_TRUE(hmq::test::eventually(
      [&] {
        st0 = node_status(f, org + "/sim0");
        return st0.is_object() && st0.value("last_heartbeat_ms", int64_t{0}) > t0_ms &&
               !st0.value("online", true);
      },
      std::chrono::seconds(60), std::chrono::milliseconds(200)))
      << st0.dump() << "\n"
      << hmq::test::read_file(log) << f.logs();
  auto cancelled_208 = [&] {
    for (const auto& a : f.agbot_agreements(true))
      if (a.value("node", "") == org + "/sim0" && a.value("state", "") == "cancelled")
        return a.value("reason", 0) == 208;
    return false;
  };
  EXPECT_TRUE(hmq::test::eventually(cancelled_208, std::chrono::seconds(60),
                                    std::chrono::milliseconds(200)))
      << f.agbot_agreements(true).dump(2);
  // The others are still heard from after sim0 went stale.
  const json later = node_status(f, org + "/sim" + std::to_string(nodes - 1));
  EXPECT_TRUE(later.is_object() && later.value("online", false)) << later.dump();

  sim.kill(SIGTERM);
  EXPECT_TRUE(sim.wait_for(std::chrono::seconds(30)).has_value());
  json s;
  const std::string text = hmq::test::read_file(log);
  for (size_t pos = 0, nl; pos < text.size(); pos = nl + 1) {
    nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    if (text[pos] == '{') s = json::parse(text.substr(pos, nl - pos), nullptr, false);
  }
  ASSERT_TRUE(s.is_object()) << text;
  EXPECT_EQ(s["stopped_nodes"], 1);
  EXPECT_GE(s["heartbeats"]["sent"].get<uint64_t>(), nodes);
  EXPECT_EQ(s["heartbeats"]["interval_s"], 1.0);
}

}  // namespace
