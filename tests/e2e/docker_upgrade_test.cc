// Pattern upgrades on the real Docker Engine (issue 6, item 3, "real Docker for one node"): one
// hmq-agent on the docker runtime runs the example pattern (consumer requiring gps and cpu, one
// agreement = three containers, each service on its own private network); the pattern then
// gets a new consumer version and the agbot rolls it out (docs/agbot.md "Rollouts"). What the
// download-then-swap (docs/agent.md "Upgrades") must leave on the Engine when the new version
// runs, and when it crash-loops inside the verification window and is rolled back.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/support/docker_query.h"
#include "tests/support/example_registry.h"
#include "tests/support/fleet.h"

namespace hmq::e2e {
namespace {

using namespace std::chrono_literals;
using test::containers_of;
using test::eventually;
using test::fleet;
using test::fleet_options;
using test::json;
using test::networks_of;
using test::shell;

constexpr const char* consumer_url = "hmq-example-consumer";

// The environment of one container, one KEY=value per entry.
std::set<std::string> env_of(const std::string& container) {
  auto r = shell("docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' " + container);
  auto l = test::output_lines(r.out);
  return {l.begin(), l.end()};
}

std::string label_of(const std::string& container, const std::string& label) {
  auto r = shell("docker inspect -f '{{index .Config.Labels \"" + label + "\"}}' " + container);
  auto l = test::output_lines(r.out);
  return l.empty() ? "" : l.front();
}

json agreement_on_agent(fleet& f, const std::string& id) {
  for (const auto& a : f.agent_agreements(0))
    if (a.value("id", "") == id) return a;
  return json::object();
}

// The finalized agreement of node 0 when it is its only live one, else "".
std::string only_live(fleet& f) {
  std::string id;
  int live = 0;
  for (const auto& a : f.agent_agreements(0)) {
    auto st = a.value("state", std::string{});
    if (st == "accepted" || st == "finalized") ++live;
    if (st == "finalized") id = a.value("id", "");
  }
  return live == 1 ? id : "";
}

class docker_upgrade_test : public test::example_registry_suite {
 protected:
  void SetUp() override {
    if (!registry_)
      GTEST_SKIP() << "no Docker Engine at " << test::docker_socket
                   << " (start dockerd to run these tests)";
    ASSERT_TRUE(registry_->error().empty()) << registry_->error();
    fleet_options o;
    o.agents = 1;
    o.pattern = "hmq-example";
    o.agent_runtime = "docker";
    // A short verification window, and a crash loop = a second death within a minute.
    o.agent_args = {"--docker-socket",         test::docker_socket,
                    "--upgrade-verify-window", "4",
                    "--crash-limit",           "1",
                    "--crash-window",          "60"};
    o.publish = [](fleet& f) {
      auto e = test::publish_examples(f, *registry_);
      ASSERT_TRUE(e.empty()) << e;
    };
    fleet_.emplace(o);
    if (HasFatalFailure()) GTEST_FAIL() << "fleet did not start:\n" << fleet_->logs();
    service_ = o.org + "/" + consumer_url;
  }

  void TearDown() override {
    if (!fleet_) return;
    fleet_->kill_agent(0);  // nothing may touch the containers while we remove them
    for (const auto& a : fleet_->agent_agreements(0)) agreements_.insert(a.value("id", ""));
    for (const auto& id : agreements_) {
      if (id.size() < 12) continue;
      test::remove_agreement_resources(id);
    }
    fleet_.reset();
  }

  // `hmq exchange service publish` of the example consumer as `version`, the same image, with
  // `extra_env` appended to its environment and, when not empty, another entrypoint.
  void publish_consumer(const std::string& version, const std::vector<std::string>& extra_env,
                        const std::vector<std::string>& entrypoint = {}) {
    const std::string examples = std::string(HMQ_SOURCE_DIR) + "/examples/";
    json svc = json::parse(test::read_file(examples + "consumer/service.definition.json"));
    svc["version"] = version;
    auto& c = svc["deployment"]["services"]["consumer"];
    for (const auto& e : extra_env) c["environment"].push_back(e);
    if (!entrypoint.empty()) c["entrypoint"] = entrypoint;
    auto file = fleet_->dir() / ("consumer-" + version + ".json");
    std::ofstream(file) << svc.dump(2);
    auto r =
        fleet_->hmq({"exchange", "-u", admin(), "service", "publish", "-f", file.string(), "-r",
                     registry_->registry_addr() + ":" + test::example_registry::user + ":" +
                         test::example_registry::password},
                    env());
    ASSERT_EQ(r.exit, 0) << r.out << r.err;
  }

  // Republishes the example pattern listing `versions` of the consumer, most preferred first
  // (priority 1, 2, ...; a version fails on a node at its first failure), one node at a time,
  // halting at the first failed node.
  void publish_pattern(const std::vector<std::string>& versions) {
    json pat = json::parse(test::read_file(std::string(HMQ_SOURCE_DIR) + "/examples/pattern.json"));
    json sv = json::array();
    int prio = 1;
    for (const auto& v : versions)
      sv.push_back({{"version", v},
                    {"priority",
                     {{"priority_value", prio++},
                      {"retries", 0},
                      {"retry_durations", 3600},
                      {"verified_durations", 1}}}});
    pat["services"][0]["serviceVersions"] = sv;
    pat["upgradePolicy"] = {{"max_in_flight", 1}, {"batch_pause_s", 0}, {"max_failures", 1}};
    auto file = fleet_->dir() / ("pattern-" + versions.front() + ".json");
    std::ofstream(file) << pat.dump(2);
    auto r =
        fleet_->hmq({"exchange", "-u", admin(), "pattern", "publish", "-f", file.string()}, env());
    ASSERT_EQ(r.exit, 0) << r.out << r.err;
  }

  // Registers the node and waits until its agreement is finalized on both sides and the three
  // containers run. Its id, or "" (with a gtest failure).
  std::string deployed() {
    auto r = fleet_->register_node(0);
    EXPECT_EQ(r.exit, 0) << r.out << r.err;
    std::string id = fleet_->wait_agent_finalized(0, 120s);
    EXPECT_FALSE(id.empty()) << fleet_->logs();
    if (id.empty()) return "";
    agreements_.insert(id);
    EXPECT_TRUE(fleet_->wait_agbot_finalized(0, id, 30s)) << fleet_->logs();
    EXPECT_TRUE(eventually([&] { return containers_of(id, "", true).size() == 3; }, 120s))
        << fleet_->logs();
    return id;
  }

  std::string admin() const { return fleet_->options().org + "/admin:admin-pw"; }
  std::map<std::string, std::string> env() const {
    return {{"HZN_ORG_ID", fleet_->options().org},
            {"ARCH", "amd64"},
            {"REGISTRY", registry_->registry_addr()}};
  }

  std::optional<fleet> fleet_;
  std::set<std::string> agreements_;
  std::string service_;
};

TEST_F(docker_upgrade_test, new_version_replaces_the_old_agreements_containers_and_networks) {
  const std::string old_id = deployed();
  ASSERT_FALSE(old_id.empty());
  ASSERT_EQ(networks_of(old_id).size(), 3u) << "one private network per service instance";
  auto old_consumer = containers_of(old_id, service_);
  ASSERT_EQ(old_consumer.size(), 1u);
  EXPECT_EQ(env_of(old_consumer[0]).count("UPGRADE_MARK=1.1.0"), 0u);

  // 1.1.0: the same images, one more environment variable.
  publish_consumer("1.1.0", {"UPGRADE_MARK=1.1.0"});
  publish_pattern({"1.1.0", "1.0.0"});

  // The upgrade agreement finalizes, is verified, and is then the node's only live agreement.
  std::string new_id;
  ASSERT_TRUE(eventually(
      [&] {
        new_id = only_live(*fleet_);
        return !new_id.empty() && new_id != old_id;
      },
      180s))
      << fleet_->logs();
  agreements_.insert(new_id);
  auto a = agreement_on_agent(*fleet_, new_id);
  EXPECT_EQ(a["service"].value("version", ""), "1.1.0") << a.dump();
  EXPECT_TRUE(fleet_->wait_agbot_finalized(0, new_id, 30s)) << fleet_->logs();
  EXPECT_TRUE(fleet_->wait_exchange_finalized(0, new_id, 30s)) << fleet_->logs();

  // The old agreement was superseded: cancelled with 210 on the node...
  auto old = agreement_on_agent(*fleet_, old_id);
  EXPECT_EQ(old.value("state", ""), "cancelled") << old.dump();
  EXPECT_EQ(old.value("reason", 0), 210) << old.dump();
  // ...and on the agbot.
  bool agbot_cancelled = false;
  for (const auto& b : fleet_->agbot_agreements_of(0, true))
    if (b.value("id", "") == old_id)
      agbot_cancelled = b.value("state", "") == "cancelled" && b.value("reason", 0) == 210;
  EXPECT_TRUE(agbot_cancelled) << fleet_->agbot_agreements_of(0, true).dump(2);

  // On the Engine: the new agreement's three containers run with its labels and the new
  // environment; nothing of the old agreement is left, containers nor networks.
  EXPECT_TRUE(eventually([&] { return containers_of(new_id, "", true).size() == 3; }, 60s))
      << fleet_->logs();
  auto consumer = containers_of(new_id, service_, true);
  ASSERT_EQ(consumer.size(), 1u) << fleet_->logs();
  auto e = env_of(consumer[0]);
  EXPECT_EQ(e.count("UPGRADE_MARK=1.1.0"), 1u);
  EXPECT_EQ(e.count("HZN_AGREEMENTID=" + new_id), 1u);
  EXPECT_EQ(label_of(consumer[0], "hmq.agreement"), new_id);
  EXPECT_TRUE(
      eventually([&] { return containers_of(old_id).empty() && networks_of(old_id).empty(); }, 30s))
      << "left of the old agreement: " << containers_of(old_id).size() << " containers, "
      << networks_of(old_id).size() << " networks\n"
      << fleet_->logs();
  EXPECT_EQ(networks_of(new_id).size(), 3u);
}

TEST_F(docker_upgrade_test, version_that_crash_loops_is_rolled_back_to_the_old_containers) {
  const std::string old_id = deployed();
  ASSERT_FALSE(old_id.empty());

  // 1.2.0: the same consumer image, but its entrypoint exits at once.
  publish_consumer("1.2.0", {"UPGRADE_MARK=1.2.0"}, {"/bin/sh", "-c", "exit 1"});
  publish_pattern({"1.2.0", "1.0.0"});

  // The node got the upgrade agreement, swapped, saw the crash loop, and cancelled it.
  std::string new_id;
  json failed;
  ASSERT_TRUE(eventually(
      [&] {
        for (const auto& a : fleet_->agent_agreements(0))
          if (a["service"].value("version", "") == "1.2.0" && a.value("state", "") == "cancelled") {
            new_id = a.value("id", "");
            failed = a;
            return true;
          }
        return false;
      },
      180s))
      << fleet_->logs();
  agreements_.insert(new_id);
  const int reason = failed.value("reason", 0);
  EXPECT_TRUE(reason == 103 || reason == 108) << failed.dump();
  ASSERT_TRUE(
      test::wait_for_log(fleet_->agent_log(0), "agreement " + new_id + ": upgrade failed", 1, 30s))
      << fleet_->logs();

  // The old agreement runs again: still finalized everywhere, its three containers running,
  // nothing of the new one left.
  EXPECT_TRUE(eventually([&] { return only_live(*fleet_) == old_id; }, 30s)) << fleet_->logs();
  EXPECT_EQ(agreement_on_agent(*fleet_, old_id)["service"].value("version", ""), "1.0.0");
  EXPECT_TRUE(eventually([&] { return containers_of(old_id, "", true).size() == 3; }, 60s))
      << fleet_->logs();
  auto consumer = containers_of(old_id, service_, true);
  ASSERT_EQ(consumer.size(), 1u);
  EXPECT_EQ(env_of(consumer[0]).count("UPGRADE_MARK=1.2.0"), 0u);
  EXPECT_TRUE(
      eventually([&] { return containers_of(new_id).empty() && networks_of(new_id).empty(); }, 30s))
      << "left of the failed agreement: " << containers_of(new_id).size() << " containers, "
      << networks_of(new_id).size() << " networks\n"
      << fleet_->logs();
  EXPECT_EQ(networks_of(old_id).size(), 3u);
  EXPECT_TRUE(fleet_->wait_agbot_finalized(0, old_id, 30s)) << fleet_->logs();
  EXPECT_TRUE(fleet_->wait_exchange_finalized(0, old_id, 30s)) << fleet_->logs();
}

}  // namespace
}  // namespace hmq::e2e
