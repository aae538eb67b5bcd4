// Fault injection (issue 7, item 5): a fleet of real processes (mosquitto with persistence,
// hmq-exchange, hmq-agbot, 20 hmq-agent) upgrades its pattern 1.0.0 -> 1.1.0 while the script
// kill -9s, in turn, the exchange, the agbot, one agent and the broker, restarting each at once
// (same data dir, same port), and a writer keeps creating nodes in the exchange. The agents use
// the memory runtime except one on the real Docker Engine (skipped, with a message, when there
// is no Engine), so "no duplicate containers" is checked on real containers.
//
// Invariants checked at the end (docs/testing.md "Fault injection"):
//  1. one agreement per node: every node of the pattern has exactly one live agreement, the
//     same id, finalized and on 1.1.0, as seen by the agent, by the agbot and by the exchange;
//     the rollout reports complete with every node upgraded.
//  2. no acknowledged write lost: every `hmq exchange node create` that exited 0 (the exchange
//     answered ok, so it had committed) is listed by the exchange afterwards.
//  3. no duplicate containers: the docker node runs exactly one container per container its
//     agreement declares (gps, cpu, consumer), and nothing is left of any other agreement it
//     ever had (a memory node has no containers: its one live agreement is its one workload).
//  4. store integrity: exchange.db, agbot.db and every agent.db pass PRAGMA integrity_check and
//     foreign_key_check, and hold at most one live agreement per node (app-level check).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
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
using test::run_result;
using test::shell;

constexpr size_t fleet_size = 20;
constexpr size_t docker_node = fleet_size - 1;  // the one agent on the real Docker Engine
constexpr const char* old_version = "1.0.0";
constexpr const char* new_version = "1.1.0";
// Agent upgrade verification window (s): long enough that kills land while upgrades are in
// flight, short enough for the whole run to stay in a few minutes.
constexpr const char* verify_window = "2";
constexpr unsigned max_in_flight = 4;
constexpr unsigned batch_pause_s = 1;

bool is_live(const json& a) {
  auto st = a.value("state", std::string{});
  return st == "accepted" || st == "finalized";
}

std::string version_of(const json& agent_agreement) {
  return agent_agreement.contains("service")
             ? agent_agreement["service"].value("version", std::string{})
             : "";
}

// The version node i runs when its only live agreement is finalized, "" otherwise.
std::string running_version(fleet& f, size_t i) {
  std::string version;
  int live = 0;
  for (const auto& a : f.agent_agreements(i)) {
    if (is_live(a)) ++live;
    if (a.value("state", "") == "finalized") version = version_of(a);
  }
  return live == 1 ? version : std::string{};
}

// Nodes that have seen the upgrade: they hold an agreement (any state) for the new version.
size_t nodes_touched_by_upgrade(fleet& f) {
  size_t n = 0;
  for (size_t i = 0; i < f.agents(); ++i)
    for (const auto& a : f.agent_agreements(i))
      if (version_of(a) == new_version) {
        ++n;
        break;
      }
  return n;
}

// A node whose upgrade is in flight: a live new-version agreement next to a live old one.
std::optional<size_t> node_in_flight(fleet& f, size_t skip) {
  for (size_t i = 0; i < f.agents(); ++i) {
    if (i == skip) continue;
    bool old_live = false, new_live = false;
    for (const auto& a : f.agent_agreements(i)) {
      if (!is_live(a)) continue;
      (version_of(a) == new_version ? new_live : old_live) = true;
    }
    if (old_live && new_live) return i;
  }
  return std::nullopt;
}

// ---- SQLite checks (read-only connections next to the running processes; WAL readers see a
// committed snapshot).

struct sqlite_file {
  explicit sqlite_file(const std::filesystem::path& p) {
    if (sqlite3_open_v2(p.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK)
      error = sqlite3_errmsg(db);
    if (db) sqlite3_busy_timeout(db, 5000);
  }
  ~sqlite_file() { sqlite3_close(db); }
  sqlite_file(const sqlite_file&) = delete;
  sqlite_file& operator=(const sqlite_file&) = delete;

  // Every row of `sql`, columns joined by '|'; {"error: ..."} when it fails.
  std::vector<std::string> rows(const std::string& sql) {
    std::vector<std::string> out;
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
      return {"error: " + std::string(sqlite3_errmsg(db))};
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      std::string row;
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        if (c) row += "|";
        auto t = sqlite3_column_text(st, c);
        row += t ? reinterpret_cast<const char*>(t) : "NULL";
      }
      out.push_back(row);
    }
    if (rc != SQLITE_DONE) out.push_back("error: " + std::string(sqlite3_errmsg(db)));
    sqlite3_finalize(st);
    return out;
  }

  sqlite3* db = nullptr;
  std::string error;
};

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

// Invariant 4 for one file: SQLite's own checks, then `app_sql` (rows = violations) must be empty.
void expect_store_sound(const std::filesystem::path& p, const std::string& app_sql) {
  ASSERT_TRUE(std::filesystem::exists(p)) << p;
  sqlite_file f(p);
  ASSERT_TRUE(f.error.empty()) << p << ": " << f.error;
  EXPECT_EQ(f.rows("PRAGMA integrity_check"), std::vector<std::string>{"ok"}) << p;
  EXPECT_TRUE(f.rows("PRAGMA foreign_key_check").empty())
      << p << ":\n"
      << joined(f.rows("PRAGMA foreign_key_check"));
  if (!app_sql.empty()) {
    EXPECT_TRUE(f.rows(app_sql).empty()) << p << " (" << app_sql << "):\n"
                                         << joined(f.rows(app_sql));
  }
}

// ---- the writer (invariant 2): creates nodes w<k> one after the other with the CLI, through
// every crash, and remembers which ones the exchange acknowledged.
class exchange_writer {
 public:
  exchange_writer(std::string broker_uri, std::string exchange_key, std::filesystem::path home,
                  std::string admin)
      : uri_(std::move(broker_uri)),
        key_(std::move(exchange_key)),
        home_(std::move(home)),
        admin_(std::move(admin)) {
    thread_ = std::thread([this] { run(); });
  }
  ~exchange_writer() { stop(); }

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> acknowledged() {
    std::lock_guard l(mu_);
    return acked_;
  }
  size_t attempts() const { return attempts_; }

 private:
  void run() {
    for (size_t k = 0; !stop_; ++k) {
      const std::string name = "w" + std::to_string(k);
      ++attempts_;
      // --timeout 5: a write that waits for a dead exchange gives up (not acknowledged).
      run_result r = test::run_command(
          {test::hmq_binary(), "exchange", "--timeout", "5", "-u", admin_, "node", "create",
           name + ":wtok" + std::to_string(k), "--arch", "amd64"},
          {{"HMQ_EXCHANGE", uri_}, {"HMQ_EXCHANGE_KEY", key_}, {"HOME", home_.string()}}, home_,
          30s);
      if (r.exit == 0) {
        std::lock_guard l(mu_);
        acked_.push_back(name);
      }
      // Pacing, not waiting for a state: keeps the 2-core machine for the fleet itself.
      std::this_thread::sleep_for(100ms);
    }
  }

  const std::string uri_, key_;
  const std::filesystem::path home_;
  const std::string admin_;
  std::atomic<bool> stop_ = false;
  std::atomic<size_t> attempts_ = 0;
  std::mutex mu_;
  std::vector<std::string> acked_;
  std::thread thread_;
};

class faults_test : public test::example_registry_suite {
 protected:
  void TearDown() override {
    if (!fleet_) return;
    if (docker()) {
      fleet_->kill_agent(docker_node);  // nothing may touch the containers while we remove them
      std::set<std::string> ids;
      for (const auto& a : fleet_->agent_agreements(docker_node)) ids.insert(a.value("id", ""));
      for (const auto& a : fleet_->agbot_agreements_of(docker_node, true))
        ids.insert(a.value("id", ""));
      for (const auto& id : ids) {
        test::remove_agreement_resources(id);
      }
    }
    fleet_.reset();
  }

  bool docker() const { return registry_ready(); }
  std::string admin() const { return fleet_->options().org + "/admin:admin-pw"; }
  std::string top_service() const {
    return docker() ? "hmq-example-consumer" : fleet_->options().service;
  }

  fleet_options options() {
    fleet_options o;
    o.agents = fleet_size;
    o.agent_args = {"--upgrade-verify-window", verify_window};
    o.reply_timeout = "10s";
    if (docker()) {
      o.pattern = "hmq-example";
      o.agent_args_of[docker_node] = {"--runtime", "docker", "--docker-socket",
                                      test::docker_socket};
      o.publish = [](fleet& f) {
        auto e = test::publish_examples(f, *registry_);
        ASSERT_TRUE(e.empty()) << e;
      };
    }
    return o;
  }

  // 1.1.0 of the top-level service (same images, one more environment variable) and the
  // pattern listing 1.1.0 then 1.0.0 with the upgrade policy. Never halts (max_failures 0): a
  // node that fails stays on 1.0.0 and invariant 1 reports it.
  void publish_upgrade() {
    if (!docker()) {
      fleet_->publish_service_version(new_version, {"UPGRADE_MARK=1.1.0"});
      fleet_->publish_pattern_versions({new_version, old_version}, max_in_flight, batch_pause_s, 0);
      return;
    }
    const std::string examples = std::string(HMQ_SOURCE_DIR) + "/examples/";
    const std::map<std::string, std::string> env{{"HZN_ORG_ID", fleet_->options().org},
                                                 {"ARCH", "amd64"},
                                                 {"REGISTRY", registry_->registry_addr()}};
    json svc = json::parse(test::read_file(examples + "consumer/service.definition.json"));
    svc["version"] = new_version;
    svc["deployment"]["services"]["consumer"]["environment"].push_back("UPGRADE_MARK=1.1.0");
    auto sfile = fleet_->dir() / "consumer-1.1.0.json";
    std::ofstream(sfile) << svc.dump(2);
    auto r =
        fleet_->hmq({"exchange", "-u", admin(), "service", "publish", "-f", sfile.string(), "-r",
                     registry_->registry_addr() + ":" + test::example_registry::user + ":" +
                         test::example_registry::password},
                    env);
    ASSERT_EQ(r.exit, 0) << r.out << r.err;
    json pat = json::parse(test::read_file(examples + "pattern.json"));
    json sv = json::array();
    int prio = 1;
    for (const char* v : {new_version, old_version})
      sv.push_back({{"version", v},
                    {"priority",
                     {{"priority_value", prio++},
                      {"retries", 0},
                      {"retry_durations", 3600},
                      {"verified_durations", 1}}}});
    pat["services"][0]["serviceVersions"] = sv;
    pat["upgradePolicy"] = {
        {"max_in_flight", max_in_flight}, {"batch_pause_s", batch_pause_s}, {"max_failures", 0}};
    auto pfile = fleet_->dir() / "pattern-1.1.0.json";
    std::ofstream(pfile) << pat.dump(2);
    r = fleet_->hmq({"exchange", "-u", admin(), "pattern", "publish", "-f", pfile.string()}, env);
    ASSERT_EQ(r.exit, 0) << r.out << r.err;
  }

  json rollout_status() {
    auto r =
        fleet_->hmq({"rollout", "status", fleet_->options().org + "/" + fleet_->options().pattern,
                     "-o", "json", "-u", admin()});
    if (r.exit != 0) return json::array();
    return json::parse(r.out, nullptr, false);
  }

  // Blocks until `n` nodes have seen the upgrade (bounded: a stuck rollout fails here).
  void wait_touched(size_t n, const std::string& before) {
    ASSERT_TRUE(eventually([&] { return nodes_touched_by_upgrade(*fleet_) >= n; }, 180s, 100ms))
        << "fewer than " << n << " nodes got a " << new_version << " agreement before " << before
        << "\n"
        << fleet_->logs();
  }

  std::optional<fleet> fleet_;
};

TEST_F(faults_test,
       rollout_survives_kill_9_of_exchange_agbot_agent_and_broker_with_every_invariant) {
  if (!docker()) {
    std::printf("[  SKIPPED ] the docker node: %s; all %zu agents run the memory runtime\n",
                registry_ ? registry_->error().c_str() : "no Docker Engine at /var/run/docker.sock",
                fleet_size);
  }
  fleet_.emplace(options());
  ASSERT_FALSE(HasFatalFailure()) << "fleet did not start:\n" << fleet_->logs();
  fleet& f = *fleet_;

  // ---- 1.0.0 everywhere.
  for (size_t i = 0; i < fleet_size; ++i) ASSERT_EQ(f.register_node(i).exit, 0) << "register " << i;
  for (size_t i = 0; i < fleet_size; ++i)
    ASSERT_FALSE(f.wait_finalized_everywhere(i, 120s).empty()) << i << f.logs();
  for (size_t i = 0; i < fleet_size; ++i) ASSERT_EQ(running_version(f, i), old_version) << i;

  exchange_writer writer(f.broker().uri(), f.exchange_key(), f.dir(), admin());

  // ---- the rollout, and the kills in turn, each once the rollout has reached a new batch
  // (max_in_flight 4: the 1st, 5th, 9th and 13th node to get the upgrade start batches 1-4),
  // so each crash lands while upgrades are in flight.
  publish_upgrade();
  ASSERT_FALSE(HasFatalFailure());
  std::vector<std::string> kills;

  wait_touched(1, "the exchange kill");
  ASSERT_FALSE(HasFatalFailure());
  f.exchange().kill_hard();
  f.exchange().start();
  ASSERT_FALSE(HasFatalFailure()) << "exchange restart\n" << f.logs();
  kills.push_back("exchange");

  wait_touched(1 + max_in_flight, "the agbot kill");
  ASSERT_FALSE(HasFatalFailure());
  f.kill_agbot();
  f.start_agbot();
  ASSERT_TRUE(f.agbot_running()) << f.logs();
  kills.push_back("agbot");

  wait_touched(1 + 2 * max_in_flight, "the agent kill");
  ASSERT_FALSE(HasFatalFailure());
  // The agent whose upgrade is in flight right now (else any memory node): the hardest moment.
  size_t victim = 0;
  eventually([&] { return node_in_flight(f, docker_node).has_value(); }, 5s, 50ms);
  if (auto n = node_in_flight(f, docker_node)) victim = *n;
  f.kill_agent(victim);
  f.start_agent(victim);
  ASSERT_FALSE(HasFatalFailure()) << "agent restart\n" << f.logs();
  kills.push_back("agent " + std::to_string(victim));

  wait_touched(1 + 3 * max_in_flight, "the broker kill");
  ASSERT_FALSE(HasFatalFailure());
  f.broker().kill_hard();
  f.broker().restart();
  kills.push_back("broker");

  // ---- the end of the rollout: every node runs 1.1.0 on one agreement, and the exchange's
  // rollout status says complete.
  ASSERT_TRUE(eventually(
      [&] {
        for (size_t i = 0; i < fleet_size; ++i)
          if (running_version(f, i) != new_version) return false;
        return true;
      },
      240s, 200ms))
      << [&] {
           std::string s = "nodes not on " + std::string(new_version) + ":";
           for (size_t i = 0; i < fleet_size; ++i)
             if (running_version(f, i) != new_version)
               s += " " + std::to_string(i) + "\n" + f.agent_agreements(i).dump();
           return s + "\n" + rollout_status().dump(2) + "\n" + f.logs();
         }();
  writer.stop();
  json st;
  EXPECT_TRUE(eventually(
      [&] {
        st = rollout_status();
        if (!st.is_array() || st.size() != 1 || st[0].value("state", "") != "complete")
          return false;
        for (const auto& v : st[0]["versions"])
          if (v.value("version", "") == new_version)
            return v.value("running", 0) == int(fleet_size);
        return false;
      },
      60s, 200ms))
      << st.dump(2) << f.logs();

  // ---- invariant 1: exactly one agreement per node, the same on all three sides.
  std::set<std::string> final_ids;
  for (size_t i = 0; i < fleet_size; ++i) {
    SCOPED_TRACE("node " + std::to_string(i));
    const std::string id = f.wait_finalized_everywhere(i, 60s);
    ASSERT_FALSE(id.empty()) << "agent:\n"
                             << f.agent_agreements(i).dump(2) << "\nagbot:\n"
                             << f.agbot_agreements_of(i, true).dump(2) << "\nexchange:\n"
                             << f.exchange_agreements(i).dump(2) << f.logs();
    final_ids.insert(id);
    json live = json::array();
    for (const auto& a : f.agent_agreements(i))
      if (is_live(a)) live.push_back(a);
    ASSERT_EQ(live.size(), 1u) << live.dump(2);
    EXPECT_EQ(version_of(live[0]), new_version);
    auto ab = f.agbot_agreements_of(i);
    ASSERT_EQ(ab.size(), 1u) << ab.dump(2);
    EXPECT_EQ(ab[0].value("version", ""), new_version) << ab.dump(2);
    EXPECT_EQ(f.exchange_agreements(i).size(), 1u) << f.exchange_agreements(i).dump(2);
    EXPECT_EQ(f.agent_call(i, {{"op", "node_status"}}).value("live_agreements", -1), 1);
  }
  EXPECT_EQ(final_ids.size(), fleet_size) << "two nodes share an agreement id";
  // No live agreement on the agbot for anything but these (a node counted twice, a ghost node).
  EXPECT_EQ(f.agbot_agreements().size(), fleet_size) << f.agbot_agreements().dump(2);

  // ---- invariant 2: no acknowledged exchange write is missing.
  const auto acked = writer.acknowledged();
  auto list = f.admin({"node", "list", "-o", "json"});
  ASSERT_EQ(list.exit, 0) << list.out << list.err;
  std::set<std::string> listed;
  for (const auto& n : json::parse(list.out, nullptr, false)) {
    std::string id = n.value("id", std::string{});
    listed.insert(id.substr(id.find('/') + 1));
  }
  std::vector<std::string> missing;
  for (const auto& name : acked)
    if (!listed.count(name)) missing.push_back(name);
  EXPECT_TRUE(missing.empty()) << missing.size()
                               << " acknowledged node creates are missing, first: "
                               << (missing.empty() ? "" : missing.front()) << "\nlisted:\n"
                               << list.out;
  EXPECT_GT(acked.size(), 0u) << "the writer never got a write acknowledged";

  // ---- invariant 3: no duplicate containers.
  size_t docker_containers = 0;
  if (docker()) {
    const std::string live_id = f.wait_agent_finalized(docker_node, 10s);
    ASSERT_FALSE(live_id.empty());
    const std::string org = f.options().org;
    EXPECT_TRUE(eventually([&] { return containers_of(live_id, "", true).size() == 3; }, 60s))
        << f.logs();
    for (const std::string svc : {"hmq-example-consumer", "hmq-example-gps", "hmq-example-cpu"})
      EXPECT_EQ(containers_of(live_id, org + "/" + svc).size(), 1u) << svc;
    docker_containers = containers_of(live_id).size();
    EXPECT_EQ(docker_containers, 3u);
    std::set<std::string> others;
    for (const auto& a : f.agbot_agreements_of(docker_node, true)) others.insert(a.value("id", ""));
    for (const auto& a : f.agent_agreements(docker_node)) others.insert(a.value("id", ""));
    others.erase(live_id);
    EXPECT_TRUE(eventually(
        [&] {
          for (const auto& id : others)
            if (!id.empty() && !containers_of(id).empty()) return false;
          return true;
        },
        30s))
        << "containers of an old agreement of the docker node are left";
  }

  // ---- invariant 4: store integrity, SQLite's and the app's (one live agreement per node).
  expect_store_sound(f.dir() / "exchange" / "exchange.db",
                     "SELECT node_org, node_id, count(*) FROM agreements GROUP BY node_org, "
                     "node_id HAVING count(*) > 1");
  expect_store_sound(
      f.dir() / "agbot" / "agbot.db",
      "SELECT node_org, node_id, count(*) FROM agreements WHERE state IN (1, 3) "
      "GROUP BY node_org, node_id, pattern, service_org, service_url HAVING count(*) > 1");
  for (size_t i = 0; i < fleet_size; ++i)
    expect_store_sound(
        f.dir() / ("agent" + std::to_string(i)) / "agent.db",
        "SELECT count(*) FROM agreements WHERE state IN (2, 3) HAVING count(*) <> 1");

  std::printf("faults summary: kills (kill -9 + restart): %zu [", kills.size());
  for (size_t k = 0; k < kills.size(); ++k) std::printf("%s%s", k ? ", " : "", kills[k].c_str());
  std::printf(
      "]; exchange writes acknowledged: %zu of %zu, missing: %zu; nodes on %s with one agreement: "
      "%zu of %zu; "
      "docker node containers: %s\n",
      acked.size(), writer.attempts(), missing.size(), new_version, final_ids.size(), fleet_size,
      docker() ? std::to_string(docker_containers).c_str() : "skipped");
}

}  // namespace
}  // namespace hmq::e2e
