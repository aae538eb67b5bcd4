// The rollout state machine (agbot/rollout.h) on a manual scheduler: batching by max_in_flight,
// the pause between batches, halting at max_failures, Horizon priority fallback and persistence.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "agbot/rollout.h"
#include "core/loop/loop.h"
#include "core/store/store.h"

namespace hmq::agbot {
namespace {

using namespace std::chrono_literals;

const std::string pattern_key = "acme/gps";
const std::string service = "acme/https://acme.example/gps";

std::string slot(int i) {
  return "acme/node" + std::to_string(i) + "|" + pattern_key + "|" + service;
}

fb::PatternT make_pattern(const std::vector<std::string>& versions, uint32_t max_in_flight,
                          uint32_t pause_s, uint32_t max_failures, int retries = 0) {
  fb::PatternT p;
  p.org = "acme";
  p.name = "gps";
  auto ps = std::make_unique<fb::PatternServiceT>();
  ps->service_org = "acme";
  ps->service_url = "https://acme.example/gps";
  ps->service_arch = "amd64";
  int prio = 1;
  for (const auto& v : versions) {
    auto sv = std::make_unique<fb::ServiceVersionT>();
    sv->version = v;
    sv->priority = std::make_unique<fb::PriorityT>();
    sv->priority->priority_value = prio++;
    sv->priority->retries = retries;
    sv->priority->retry_durations = 3600;
    ps->service_versions.push_back(std::move(sv));
  }
  p.services.push_back(std::move(ps));
  p.upgrade_policy = std::make_unique<fb::UpgradePolicyT>();
  p.upgrade_policy->max_in_flight = max_in_flight;
  p.upgrade_policy->batch_pause_s = pause_s;
  p.upgrade_policy->max_failures = max_failures;
  return p;
}

// Records what the controller asks for; the test decides how each upgrade ends.
struct harness {
  core::loop::manual_scheduler loop;
  std::vector<std::pair<std::string, std::string>> started;  // slot, version
  std::set<std::string> flying;
  size_t peak = 0;
  std::vector<fb::RolloutStatusT> published;
  rollout_controller rc;

  explicit harness(core::store::database* db = nullptr)
      : rc(loop, db, "acme/bot1",
           {[this](const std::string& s, const std::string& v) {
              started.emplace_back(s, v);
              flying.insert(s);
              peak = std::max(peak, flying.size());
              return true;
            },
            [this](const fb::RolloutStatusT& st) { published.push_back(st); }}) {}

  void upgraded(int i, const std::string& v) {
    flying.erase(slot(i));
    rc.on_upgraded(slot(i), v);
  }
  void failed(int i, const std::string& v, bool after_swap = true) {
    flying.erase(slot(i));
    rc.on_failed(slot(i), v, 103, after_swap);
  }
  fb::RolloutStatusT status() {
    auto all = rc.status();
    EXPECT_EQ(all.size(), 1u);
    return all.empty() ? fb::RolloutStatusT{} : std::move(all.front());
  }
};

std::vector<slot_version> fleet_on(const std::string& v, int n) {
  std::vector<slot_version> out;
  for (int i = 0; i < n; ++i) out.push_back({slot(i), v, false});
  return out;
}

const fb::RolloutVersionStatusT* entry(const fb::RolloutStatusT& s, const std::string& v) {
  for (const auto& e : s.versions)
    if (e && e->version == v) return e.get();
  return nullptr;
}

TEST(rollout_controller, starts_no_more_than_max_in_flight_per_batch) {
  harness h;
  h.rc.plan(make_pattern({"1.1.0", "1.0.0"}, 2, 0, 0), pattern_key, fleet_on("1.0.0", 5));
  ASSERT_EQ(h.started.size(), 2u);
  EXPECT_EQ(h.started[0].second, "1.1.0");
  // The next batch waits for the whole current one.
  h.upgraded(0, "1.1.0");
  EXPECT_EQ(h.started.size(), 2u);
  h.upgraded(1, "1.1.0");
  EXPECT_EQ(h.started.size(), 4u);
  h.upgraded(2, "1.1.0");
  h.upgraded(3, "1.1.0");
  ASSERT_EQ(h.started.size(), 5u);
  h.upgraded(4, "1.1.0");
  EXPECT_EQ(h.peak, 2u);
  EXPECT_EQ(h.rc.peak_in_flight(), 2u);
  auto st = h.status();
  EXPECT_EQ(st.state, fb::RolloutState::complete);
  ASSERT_NE(entry(st, "1.1.0"), nullptr);
  EXPECT_EQ(entry(st, "1.1.0")->upgraded, 5u);
  EXPECT_EQ(entry(st, "1.1.0")->running, 5u);
  EXPECT_EQ(st.open_nodes, 0u);
}

TEST(rollout_controller, waits_batch_pause_between_batches) {
  harness h;
  h.rc.plan(make_pattern({"1.1.0", "1.0.0"}, 1, 10, 0), pattern_key, fleet_on("1.0.0", 2));
  ASSERT_EQ(h.started.size(), 1u);
  h.upgraded(0, "1.1.0");
  EXPECT_EQ(h.started.size(), 1u);
  EXPECT_EQ(h.status().state, fb::RolloutState::paused);
  h.loop.advance(9s);
  EXPECT_EQ(h.started.size(), 1u);
  h.loop.advance(1s);
  EXPECT_EQ(h.started.size(), 2u);
}

TEST(rollout_controller, halts_at_max_failures_and_leaves_the_rest_where_they_are) {
  harness h;
  h.rc.plan(make_pattern({"1.2.0", "1.1.0"}, 2, 0, 2), pattern_key, fleet_on("1.1.0", 6));
  ASSERT_EQ(h.started.size(), 2u);
  h.failed(0, "1.2.0");
  h.failed(1, "1.2.0");
  EXPECT_EQ(h.started.size(), 2u);  // no second batch
  auto st = h.status();
  EXPECT_EQ(st.state, fb::RolloutState::halted);
  EXPECT_EQ(st.failed_nodes, 2u);
  ASSERT_NE(entry(st, "1.2.0"), nullptr);
  EXPECT_EQ(entry(st, "1.2.0")->failed, 2u);
  EXPECT_EQ(entry(st, "1.2.0")->rolled_back, 2u);
  EXPECT_EQ(entry(st, "1.2.0")->pending, 4u);
  // A node that arrives now gets the working version, not the halted one.
  const auto p = make_pattern({"1.2.0", "1.1.0"}, 2, 0, 2);
  EXPECT_EQ(h.rc.version_for(slot(9), *p.services[0]), "1.1.0");
  // The failed nodes are never offered 1.2.0 again.
  EXPECT_EQ(h.rc.version_for(slot(0), *p.services[0]), "1.1.0");
}

TEST(rollout_controller, failed_version_falls_back_to_the_next_priority) {
  // A node on 1.0.0 that fails 1.2.0 gets 1.1.0 (the next by priority), not 1.0.0.
  harness h;
  h.rc.plan(make_pattern({"1.2.0", "1.1.0", "1.0.0"}, 1, 0, 0), pattern_key, fleet_on("1.0.0", 1));
  ASSERT_EQ(h.started.size(), 1u);
  h.failed(0, "1.2.0", false);
  ASSERT_EQ(h.started.size(), 2u);
  EXPECT_EQ(h.started[1].second, "1.1.0");
  h.upgraded(0, "1.1.0");
  EXPECT_EQ(h.status().state, fb::RolloutState::complete);
}

TEST(rollout_controller, retries_a_version_as_often_as_its_priority_allows) {
  harness h;
  h.rc.plan(make_pattern({"1.1.0", "1.0.0"}, 1, 0, 0, /*retries=*/1), pattern_key,
            fleet_on("1.0.0", 1));
  ASSERT_EQ(h.started.size(), 1u);
  h.failed(0, "1.1.0");
  ASSERT_EQ(h.started.size(), 2u);  // one retry of the same version
  EXPECT_EQ(h.started[1].second, "1.1.0");
  h.failed(0, "1.1.0");
  EXPECT_EQ(h.started.size(), 2u);  // retries used up: stays on 1.0.0
  auto st = h.status();
  EXPECT_EQ(st.state, fb::RolloutState::complete);
  EXPECT_EQ(entry(st, "1.1.0")->failed, 1u);
}

TEST(rollout_controller, a_refused_start_leaves_the_rollout) {
  core::loop::manual_scheduler loop;
  rollout_controller rc(loop, nullptr, "acme/bot1",
                        {[](const std::string&, const std::string&) { return false; }, {}});
  rc.plan(make_pattern({"1.1.0", "1.0.0"}, 3, 0, 0), pattern_key, fleet_on("1.0.0", 2));
  EXPECT_EQ(rc.in_flight(), 0u);
  auto all = rc.status();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].state, fb::RolloutState::complete);
}

TEST(rollout_controller, publishes_coalesced_progress) {
  harness h;
  h.rc.plan(make_pattern({"1.1.0", "1.0.0"}, 4, 0, 0), pattern_key, fleet_on("1.0.0", 4));
  for (int i = 0; i < 4; ++i) h.upgraded(i, "1.1.0");
  EXPECT_TRUE(h.published.empty());  // nothing before the coalescing delay
  h.loop.advance(1s);
  ASSERT_EQ(h.published.size(), 1u);
  EXPECT_EQ(h.published[0].state, fb::RolloutState::complete);
  EXPECT_EQ(h.published[0].agbot, "acme/bot1");
}

TEST(rollout_controller, resumes_from_the_database) {
  auto db = core::store::database::open_memory();
  ASSERT_TRUE(db);
  {
    harness h(&*db);
    h.rc.plan(make_pattern({"1.2.0", "1.1.0"}, 1, 0, 1), pattern_key, fleet_on("1.1.0", 3));
    ASSERT_EQ(h.started.size(), 1u);
  }
  // Restarted: the in-flight node is still in flight; its failure halts the rollout.
  harness h(&*db);
  ASSERT_TRUE(h.rc.load());
  EXPECT_EQ(h.rc.in_flight(), 1u);
  h.rc.plan(make_pattern({"1.2.0", "1.1.0"}, 1, 0, 1), pattern_key,
            {{slot(0), "1.1.0", true}, {slot(1), "1.1.0", false}, {slot(2), "1.1.0", false}});
  EXPECT_TRUE(h.started.empty());
  h.failed(0, "1.2.0");
  EXPECT_TRUE(h.started.empty());
  EXPECT_EQ(h.status().state, fb::RolloutState::halted);
}

TEST(rollout_controller, resumes_a_rollout_stopped_during_its_batch_pause) {
  // Found by tests/e2e/faults: an agbot killed while a rollout paused between batches loaded
  // it as paused with no timer, and the rollout never moved again.
  auto db = core::store::database::open_memory();
  ASSERT_TRUE(db);
  {
    harness h(&*db);
    h.rc.plan(make_pattern({"1.1.0", "1.0.0"}, 1, 10, 0), pattern_key, fleet_on("1.0.0", 2));
    ASSERT_EQ(h.started.size(), 1u);
    h.upgraded(0, "1.1.0");
    ASSERT_EQ(h.status().state, fb::RolloutState::paused);
  }
  harness h(&*db);
  ASSERT_TRUE(h.rc.load());
  h.rc.plan(make_pattern({"1.1.0", "1.0.0"}, 1, 10, 0), pattern_key,
            {{slot(0), "1.1.0", false}, {slot(1), "1.0.0", false}});
  h.loop.advance(10s);
  ASSERT_EQ(h.started.size(), 1u);
  EXPECT_EQ(h.started[0].first, slot(1));
  h.upgraded(1, "1.1.0");
  EXPECT_EQ(h.status().state, fb::RolloutState::complete);
}

TEST(rollout_controller, resumes_the_next_batch_after_a_restart_during_a_paused_rollouts_batch) {
  // The batch after a pause was in flight when the agbot died; once it settles after the
  // restart, the next batch starts (the rollout was stored as paused for the whole batch).
  auto db = core::store::database::open_memory();
  ASSERT_TRUE(db);
  {
    harness h(&*db);
    h.rc.plan(make_pattern({"1.1.0", "1.0.0"}, 1, 10, 0), pattern_key, fleet_on("1.0.0", 3));
    h.upgraded(0, "1.1.0");
    h.loop.advance(10s);
    ASSERT_EQ(h.started.size(), 2u);  // node 1 in flight
  }
  harness h(&*db);
  ASSERT_TRUE(h.rc.load());
  EXPECT_EQ(h.rc.in_flight(), 1u);
  h.rc.plan(make_pattern({"1.1.0", "1.0.0"}, 1, 10, 0), pattern_key,
            {{slot(0), "1.1.0", false}, {slot(1), "1.0.0", true}, {slot(2), "1.0.0", false}});
  EXPECT_TRUE(h.started.empty());
  h.upgraded(1, "1.1.0");
  h.loop.advance(10s);
  ASSERT_EQ(h.started.size(), 1u);
  EXPECT_EQ(h.started[0].first, slot(2));
  h.upgraded(2, "1.1.0");
  EXPECT_EQ(h.status().state, fb::RolloutState::complete);
}

TEST(rollout_controller, forced_version_reproposes_the_same_version) {
  // A republished deployment of the running version is rolled out like a new version.
  harness h;
  h.rc.plan(make_pattern({"1.1.0"}, 5, 0, 0), pattern_key, fleet_on("1.1.0", 2), {"1.1.0"});
  ASSERT_EQ(h.started.size(), 2u);
  EXPECT_EQ(h.started[0].second, "1.1.0");
}

TEST(rollout_controller, orders_versions_by_priority_value) {
  fb::PatternServiceT ps;
  for (auto [v, p] : {std::pair{"1.0.0", 3}, std::pair{"2.0.0", 1}, std::pair{"1.5.0", 2}}) {
    auto sv = std::make_unique<fb::ServiceVersionT>();
    sv->version = v;
    sv->priority = std::make_unique<fb::PriorityT>();
    sv->priority->priority_value = p;
    ps.service_versions.push_back(std::move(sv));
  }
  auto o = versions_by_priority(ps);
  ASSERT_EQ(o.size(), 3u);
  EXPECT_EQ(o[0]->version, "2.0.0");
  EXPECT_EQ(o[1]->version, "1.5.0");
  EXPECT_EQ(o[2]->version, "1.0.0");
}

}  // namespace
}  // namespace hmq::agbot
