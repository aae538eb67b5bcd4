// A real hmq-agent on the Docker Engine (issue 5): mosquitto, hmq-exchange, hmq-agbot and the
// agent as processes, the example pattern (consumer requiring gps and cpu) pulled from a
// password-protected registry. What an agent restart must and must not do to the containers.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tests/support/docker_query.h"
#include "tests/support/example_registry.h"
#include "tests/support/fleet.h"

namespace hmq::e2e {
namespace {

using namespace std::chrono_literals;
using test::eventually;
using test::fleet;
using test::fleet_options;
using test::json;
using test::networks_of;
using test::shell;

// Container id -> "name started_at" of everything carrying label hmq.agreement=<id>, running or
// not.
std::map<std::string, std::string> container_states(const std::string& agreement) {
  std::map<std::string, std::string> out;
  auto ids = test::containers_of(agreement);
  if (ids.empty()) return out;
  std::string list;
  for (const auto& id : ids) list += " " + id;
  auto r =
      shell("docker inspect -f '{{.Id}} {{.Name}} {{.State.Running}} {{.State.StartedAt}}'" + list);
  for (const auto& line : test::output_lines(r.out)) {
    auto sp = line.find(' ');
    if (sp == std::string::npos || line.rfind("Error", 0) == 0) continue;
    out[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return out;
}

size_t running_of(const std::string& agreement) {
  size_t n = 0;
  for (const auto& [id, desc] : container_states(agreement))
    if (desc.find(" true ") != std::string::npos) ++n;
  return n;
}

class docker_agent_test : public test::example_registry_suite {
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
    o.agent_args = {"--docker-socket", test::docker_socket};
    o.publish = [](fleet& f) {
      auto e = test::publish_examples(f, *registry_);
      ASSERT_TRUE(e.empty()) << e;
    };
    fleet_.emplace(o);
    if (HasFatalFailure()) GTEST_FAIL() << "fleet did not start:\n" << fleet_->logs();
  }

  void TearDown() override {
    if (!fleet_) return;
    fleet_->kill_agent(0);  // nothing may touch the containers while we remove them
    for (const auto& id : agreements_) {
      test::remove_agreement_resources(id);
    }
    fleet_.reset();
  }

  // Registers the node and waits until the agreement is finalized everywhere and its three
  // containers run. Returns its id ("" on failure, with a gtest failure).
  std::string deployed() {
    auto r = fleet_->register_node(0);
    EXPECT_EQ(r.exit, 0) << r.out << r.err;
    return wait_deployed("");
  }

  // A finalized agreement other than `not_this`, with its containers running.
  std::string wait_deployed(const std::string& not_this) {
    std::string id;
    EXPECT_TRUE(eventually(
        [&] {
          id = fleet_->wait_agent_finalized(0, 1s);
          return !id.empty() && id != not_this;
        },
        120s))
        << fleet_->logs();
    if (id.empty() || id == not_this) return "";
    agreements_.push_back(id);
    EXPECT_TRUE(fleet_->wait_agbot_finalized(0, id, 30s)) << fleet_->logs();
    EXPECT_TRUE(eventually([&] { return running_of(id) == 3; }, 120s)) << fleet_->logs();
    return id;
  }

  std::optional<fleet> fleet_;
  std::vector<std::string> agreements_;
};

TEST_F(docker_agent_test, agent_killed_and_restarted_restarts_no_running_container) {
  const std::string id = deployed();
  ASSERT_FALSE(id.empty());
  auto before = container_states(id);
  ASSERT_EQ(before.size(), 3u);

  fleet_->kill_agent(0);
  fleet_->start_agent(0);
  // The agent has handed the stored agreement to the runtime again, which found it running.
  ASSERT_TRUE(test::wait_for_log(fleet_->agent_log(0),
                                 "agreement " + id + ": running (0 started, 3 adopted)", 1, 60s))
      << fleet_->logs();

  // Same containers (ids), never restarted (StartedAt unchanged), all still running.
  EXPECT_EQ(container_states(id), before);
  EXPECT_EQ(running_of(id), 3u);
  // The agreement is still there on both sides.
  auto list = fleet_->agent_agreements(0);
  ASSERT_EQ(list.size(), 1u) << list.dump();
  EXPECT_EQ(list[0].value("id", ""), id);
  EXPECT_EQ(list[0].value("state", ""), "finalized");
  EXPECT_TRUE(fleet_->wait_agbot_finalized(0, id, 10s)) << fleet_->logs();
}

TEST_F(docker_agent_test,
       agreement_cancelled_while_agent_was_down_is_removed_at_restart_and_replaced) {
  const std::string old_id = deployed();
  ASSERT_FALSE(old_id.empty());
  auto old_networks = networks_of(old_id);
  ASSERT_EQ(old_networks.size(), 3u) << "one private network per service instance";

  fleet_->kill_agent(0);
  auto c = fleet_->hmq(
      {"agbot", "agreement", "cancel", old_id, "--agbot-socket", fleet_->agbot_socket().string()});
  ASSERT_EQ(c.exit, 0) << c.out << c.err;
  // Nothing touches the containers while the agent is down.
  EXPECT_EQ(running_of(old_id), 3u);

  fleet_->start_agent(0);
  // The cancelled agreement's containers and networks are gone...
  EXPECT_TRUE(eventually(
      [&] { return test::containers_of(old_id).empty() && networks_of(old_id).empty(); }, 60s))
      << "containers left: " << test::containers_of(old_id).size() << "\n"
      << fleet_->logs();
  // ...and the agbot's next proposal formed a new agreement that runs.
  const std::string new_id = wait_deployed(old_id);
  ASSERT_FALSE(new_id.empty());
  for (const auto& a : fleet_->agent_agreements(0)) {
    if (a.value("id", "") == old_id) {
      EXPECT_EQ(a.value("state", ""), "cancelled");
    }
  }
}

}  // namespace
}  // namespace hmq::e2e
