// `hmq rollout status` formats (cli/rollout_view.h).
#include <gtest/gtest.h>

#include "cli/rollout_view.h"

namespace hmq::cli {
namespace {

fb::RolloutStatusT halted_rollout() {
  fb::RolloutStatusT s;
  s.pattern = "acme/gps";
  s.service_org = "acme";
  s.service_url = "https://acme.example/gps";
  s.agbot = "acme/bot1";
  s.state = fb::RolloutState::halted;
  s.target_version = "1.2.0";
  s.max_in_flight = 2;
  s.max_failures = 2;
  s.failed_nodes = 2;
  s.rollout_nodes = 6;
  s.open_nodes = 0;
  auto v = std::make_unique<fb::RolloutVersionStatusT>();
  v->version = "1.2.0";
  v->failed = 2;
  v->rolled_back = 2;
  v->pending = 4;
  s.versions.push_back(std::move(v));
  return s;
}

TEST(rollout_view, json_has_per_version_counts_in_camel_case) {
  std::vector<fb::RolloutStatusT> all;
  all.push_back(halted_rollout());
  auto j = rollout_json(all);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["state"], "halted");
  EXPECT_EQ(j[0]["targetVersion"], "1.2.0");
  EXPECT_EQ(j[0]["versions"][0]["rolledBack"], 2);
  EXPECT_EQ(j[0]["versions"][0]["pending"], 4);
}

TEST(rollout_view, settles_only_when_every_rollout_completed_or_halted) {
  std::vector<fb::RolloutStatusT> all;
  EXPECT_FALSE(rollouts_settled(all));  // nothing published yet: keep watching
  all.push_back(halted_rollout());
  EXPECT_TRUE(rollouts_settled(all));
  EXPECT_TRUE(any_halted(all));
  all.push_back(halted_rollout());
  all.back().state = fb::RolloutState::running;
  EXPECT_FALSE(rollouts_settled(all));
}

TEST(rollout_view, progress_bar_counts_settled_nodes) {
  auto s = halted_rollout();
  s.state = fb::RolloutState::running;
  s.open_nodes = 3;
  auto line = rollout_progress_line(s, 10);
  EXPECT_EQ(line.rfind("[#####-----]  50%", 0), 0u) << line;
  EXPECT_NE(line.find("2 rolled back"), std::string::npos) << line;
}

TEST(rollout_view, table_names_every_version_column) {
  std::vector<fb::RolloutStatusT> all;
  all.push_back(halted_rollout());
  auto t = rollout_table(all);
  EXPECT_NE(t.find("ROLLED BACK"), std::string::npos);
  EXPECT_NE(t.find("target 1.2.0  halted"), std::string::npos) << t;
}

}  // namespace
}  // namespace hmq::cli
