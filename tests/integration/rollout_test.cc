// Pattern upgrades across a fleet (issue 6, items 3 and 4): real mosquitto, hmq-exchange,
// hmq-agbot and six hmq-agent processes on the memory runtime. A version that crash-loops is
// published with the memory runtime's TEST-ONLY HMQ_TEST_CRASH=1 container environment.
#include <gtest/gtest.h>

#include <string>

#include "tests/support/fleet.h"

namespace hmq::test {
namespace {

using namespace std::chrono_literals;

constexpr size_t fleet_size = 6;

fleet_options rollout_fleet() {
  fleet_options o;
  o.agents = fleet_size;
  o.agent_args = {"--upgrade-verify-window", "0.5"};
  return o;
}

// The version agent i runs: its only live agreement must be finalized. "" otherwise.
std::string running_version(fleet& f, size_t i) {
  std::string version;
  int live = 0;
  for (const auto& a : f.agent_agreements(i)) {
    auto st = a.value("state", std::string{});
    if (st == "accepted" || st == "finalized") ++live;
    if (st == "finalized") version = a["service"].value("version", std::string{});
  }
  return live == 1 ? version : std::string{};
}

bool all_run(fleet& f, const std::string& version) {
  for (size_t i = 0; i < f.agents(); ++i)
    if (running_version(f, i) != version) return false;
  return true;
}

json rollout_status(fleet& f) {
  auto r = f.hmq({"rollout", "status", f.options().org + "/" + f.options().pattern, "-o", "json",
                  "-u", f.options().org + "/admin:admin-pw"});
  if (r.exit != 0) return json::array();
  return json::parse(r.out, nullptr, false);
}

json version_entry(const json& rollout, const std::string& v) {
  for (const auto& e : rollout["versions"])
    if (e.value("version", "") == v) return e;
  return json::object();
}

TEST(rollout, upgrades_every_node_within_max_in_flight_and_halts_a_crashing_version) {
  fleet f(rollout_fleet());
  ASSERT_FALSE(::testing::Test::HasFatalFailure()) << f.logs();
  for (size_t i = 0; i < fleet_size; ++i) ASSERT_EQ(f.register_node(i).exit, 0);
  for (size_t i = 0; i < fleet_size; ++i)
    ASSERT_FALSE(f.wait_finalized_everywhere(i).empty()) << f.logs();
  ASSERT_TRUE(all_run(f, "1.0.0"));

  // 1.0.0 -> 1.1.0, two nodes at a time.
  f.publish_service_version("1.1.0");
  f.publish_pattern_versions({"1.1.0", "1.0.0"}, 2, 0, 2);
  ASSERT_TRUE(eventually([&] { return all_run(f, "1.1.0"); }, 90s)) << f.logs();
  auto ab = f.agbot_call({{"op", "rollout.status"}});
  ASSERT_TRUE(ab.value("ok", false)) << ab.dump();
  EXPECT_LE(ab["peak_in_flight"].get<size_t>(), 2u);
  EXPECT_GE(ab["peak_in_flight"].get<size_t>(), 1u);
  json st;
  ASSERT_TRUE(eventually(
      [&] {
        st = rollout_status(f);
        return st.is_array() && st.size() == 1 && st[0].value("state", "") == "complete" &&
               version_entry(st[0], "1.1.0").value("upgraded", 0) == int(fleet_size);
      },
      30s))
      << st.dump(2) << f.logs();
  EXPECT_EQ(st[0].value("targetVersion", ""), "1.1.0");
  EXPECT_EQ(version_entry(st[0], "1.1.0").value("running", 0), int(fleet_size));
  EXPECT_EQ(version_entry(st[0], "1.1.0").value("failed", -1), 0);

  // 1.2.0 crash-loops: the first batch (2 nodes) fails inside the verification window, the
  // agents restore 1.1.0, the rollout halts at 2 failures and nobody else gets 1.2.0.
  f.publish_service_version("1.2.0", {"HMQ_TEST_CRASH=1"});
  f.publish_pattern_versions({"1.2.0", "1.1.0", "1.0.0"}, 2, 0, 2);
  // --watch follows the rollout to its end and exits 4 because it halted.
  auto watch =
      f.hmq({"rollout", "status", f.options().org + "/" + f.options().pattern, "--watch",
             "--target", "1.2.0", "--interval", "0.2", "-u", f.options().org + "/admin:admin-pw"});
  EXPECT_EQ(watch.exit, 4) << watch.out << watch.err << f.logs();
  EXPECT_NE(watch.out.find("halted"), std::string::npos) << watch.out;
  EXPECT_NE(watch.out.find("1.2.0"), std::string::npos) << watch.out;

  ASSERT_TRUE(eventually(
      [&] {
        st = rollout_status(f);
        return st.is_array() && st.size() == 1 && st[0].value("state", "") == "halted" &&
               st[0].value("openNodes", -1) == 0;
      },
      60s))
      << st.dump(2) << f.logs();
  auto v12 = version_entry(st[0], "1.2.0");
  EXPECT_EQ(v12.value("failed", -1), 2) << st.dump(2);
  EXPECT_EQ(v12.value("rolledBack", -1), 2) << st.dump(2);
  EXPECT_EQ(v12.value("upgraded", -1), 0) << st.dump(2);
  EXPECT_EQ(v12.value("pending", -1), int(fleet_size) - 2) << st.dump(2);
  EXPECT_EQ(st[0].value("failedNodes", -1), 2);
  ASSERT_TRUE(eventually([&] { return all_run(f, "1.1.0"); }, 30s)) << f.logs();

  // The two nodes that tried 1.2.0 hold its agreement as cancelled with 103 (crash), and
  // still their original 1.1.0 agreement.
  size_t tried = 0;
  for (size_t i = 0; i < fleet_size; ++i)
    for (const auto& a : f.agent_agreements(i))
      if (a["service"].value("version", "") == "1.2.0") {
        ++tried;
        EXPECT_EQ(a.value("state", ""), "cancelled");
        EXPECT_EQ(a.value("reason", 0), 103) << a.dump();
      }
  EXPECT_EQ(tried, 2u);
  ab = f.agbot_call({{"op", "rollout.status"}});
  EXPECT_LE(ab["peak_in_flight"].get<size_t>(), 2u);
}

TEST(rollout, resumes_after_an_agbot_restart) {
  // Property: rollout state survives the agbot: restarted mid-rollout, it finishes the job.
  fleet_options o = rollout_fleet();
  o.agents = 3;
  fleet f(o);
  ASSERT_FALSE(::testing::Test::HasFatalFailure()) << f.logs();
  for (size_t i = 0; i < o.agents; ++i) ASSERT_EQ(f.register_node(i).exit, 0);
  for (size_t i = 0; i < o.agents; ++i)
    ASSERT_FALSE(f.wait_finalized_everywhere(i).empty()) << f.logs();
  f.publish_service_version("1.1.0");
  f.publish_pattern_versions({"1.1.0", "1.0.0"}, 1, 0, 0);
  // Kill the agbot as soon as the first node upgraded.
  ASSERT_TRUE(eventually(
      [&] {
        for (size_t i = 0; i < o.agents; ++i)
          if (running_version(f, i) == "1.1.0") return true;
        return false;
      },
      60s))
      << f.logs();
  f.kill_agbot();
  f.start_agbot();
  ASSERT_TRUE(eventually([&] { return all_run(f, "1.1.0"); }, 90s)) << f.logs();
}

}  // namespace
}  // namespace hmq::test
