// hmq-fleetsim against the real system (mosquitto, hmq-exchange, hmq-agbot as processes): a small
// simulated fleet creates its nodes, registers them all at once and every node ends with a
// finalized agreement that the agbot knows too. Big fleets belong in bench/ (scripts/bench.sh).
#include <gtest/gtest.h>

#include <string>

#include "tests/support/fleet.h"

namespace {

using hmq::test::json;

std::string fleetsim_binary() { return std::string(HMQ_BINARY_DIR) + "/tools/fleetsim/hmq-fleetsim"; }

hmq::test::run_result run_fleetsim(hmq::test::fleet& f, std::vector<std::string> extra) {
  std::vector<std::string> argv{fleetsim_binary(), "--broker", f.broker().uri(), "--exchange-key", f.exchange_key(),
                                "--org", f.options().org, "--pattern", f.options().pattern, "-u",
                                f.options().org + "/admin:admin-pw", "--create-nodes", "--trust",
                                f.signing_public_key().string(), "--timeout", "120", "--progress", "0", "-o",
                                "json"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return hmq::test::run_command(argv, {}, f.dir(), std::chrono::seconds(180));
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
  EXPECT_TRUE(hmq::test::eventually([&] { return f.agbot_agreements().size() == 50; })) << f.agbot_agreements().dump();
}

TEST(fleetsim, nodes_agree_despite_link_loss_and_latency) {
  hmq::test::fleet_options fo;
  fo.agents = 0;
  // A lost Cancel leaves the agbot with an agreement the node dropped; the agreement check (209)
  // is what repairs that, so it must run within the test's time.
  fo.check_agreement_status_s = 3;
  hmq::test::fleet f(fo);
  auto r = run_fleetsim(f, {"--nodes", "10", "--link-latency", "20", "--link-loss", "10", "--rpc-timeout", "3",
                            "--finalize-timeout", "5"});
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

}  // namespace
