// The engine's side of upgrades (agbot/rollout.h): the hooks the rollout controller calls and
// how an upgrade agreement ends, also across an agbot restart.
#include <set>

#include "tests/unit/agbot_engine_fixture.h"

namespace hmq::agbot {
namespace {

class agbot_upgrade_test : public agbot_engine_test {
 protected:
  // n1 runs 1.0.0 (the pattern lists only it), then the pattern is bumped to prefer 1.1.0.
  void bump(std::string& old_id) {
    auto& versions = x_.patterns["acme/gps"].services[0]->service_versions;
    auto v11 = std::move(versions[1]);
    versions.erase(versions.begin() + 1);
    add_node("n1", 1);
    start();
    ASSERT_EQ(proposals().size(), 1u);
    old_id = proposals()[0]->agreement_id()->str();
    deliver(reply(1, old_id, fb::ReplyDecision::accept));
    x_.patterns["acme/gps"].services[0]->service_versions.push_back(std::move(v11));
    deliver(inbound(exchange_key, fb::Body::Event, [this](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateEventDirect(b, fb::EventKind::pattern_changed, next_seq(), "acme", "gps")
          .Union();
    }));
    loop_.run_pending();
  }
  core::wire::opened verify_reply(uint8_t from, const std::string& id, bool exists) {
    return inbound(key_of(from), fb::Body::AgreementVerifyReply,
                   [&](flatbuffers::FlatBufferBuilder& b) {
                     return fb::CreateAgreementVerifyReplyDirect(b, id.c_str(), exists).Union();
                   });
  }
  core::wire::opened node_cancel(const std::string& id, fb::CancelReason r) {
    return inbound(key_of(1), fb::Body::Cancel, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateCancelDirect(b, id.c_str(), r).Union();
    });
  }
};

TEST_F(agbot_upgrade_test, pattern_bump_proposes_a_superseding_agreement_and_swaps_on_210) {
  std::string old_id;
  bump(old_id);
  ASSERT_EQ(proposals().size(), 2u);
  const auto* up = proposals()[1];
  ASSERT_NE(up->supersedes(), nullptr);
  EXPECT_EQ(up->supersedes()->str(), old_id);
  EXPECT_EQ(up->services()->Get(0)->service()->version()->str(), "1.1.0");
  const auto up_id = up->agreement_id()->str();
  deliver(reply(1, up_id, fb::ReplyDecision::accept));
  EXPECT_EQ(engine_->live_agreements().size(), 2u);  // the old one lives until the node confirms
  deliver(node_cancel(old_id, fb::CancelReason::ab_upgrade_superseded));
  auto live = engine_->live_agreements();
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].id, up_id);
  EXPECT_TRUE(live[0].supersedes.empty());
  EXPECT_TRUE((*store_->get(up_id))->supersedes.empty());
  EXPECT_EQ(engine_->stats().upgrades_succeeded, 1u);
  auto st = engine_->rollouts().status();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].state, fb::RolloutState::complete);
  // A later event for the node proposes nothing new: the slot is taken by the new agreement.
  node_registered("n1", 1, "acme/gps");
  EXPECT_EQ(proposals().size(), 2u);
}

TEST_F(agbot_upgrade_test, failed_upgrade_keeps_the_old_agreement_and_never_retries_that_version) {
  std::string old_id;
  bump(old_id);
  ASSERT_EQ(proposals().size(), 2u);
  const auto up_id = proposals()[1]->agreement_id()->str();
  deliver(reply(1, up_id, fb::ReplyDecision::accept));
  deliver(node_cancel(up_id, fb::CancelReason::container_failure));  // crash loop, node rolled back
  auto live = engine_->live_agreements();
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].id, old_id);
  EXPECT_EQ(engine_->stats().upgrades_failed, 1u);
  auto st = engine_->rollouts().status();
  ASSERT_EQ(st.size(), 1u);
  for (const auto& v : st[0].versions)
    if (v->version == "1.1.0") {
      EXPECT_EQ(v->failed, 1u);
      EXPECT_EQ(v->rolled_back, 1u);
    }
  loop_.advance(120s);
  EXPECT_EQ(proposals().size(), 2u);
}

// The node's Cancel 210 reached an agbot that died before its group committed (found by
// rollout.resumes_after_an_agbot_restart in CI): the restarted agbot asks the node about both
// agreements at once, and "no longer have the old one" finishes the upgrade.
TEST_F(agbot_upgrade_test, restart_that_lost_the_nodes_210_finishes_the_upgrade_on_verify) {
  std::string old_id;
  bump(old_id);
  const auto up_id = proposals()[1]->agreement_id()->str();
  deliver(reply(1, up_id, fb::ReplyDecision::accept));
  engine_.reset();  // "kill": the node's Cancel 210 for old_id is lost with the process
  start();
  std::set<std::string> asked;
  for (const auto* m : out_.of(fb::Body::AgreementVerify)) {
    EXPECT_EQ(m->to, key_of(1));
    asked.insert(m->msg()->body_as_AgreementVerify()->agreement_id()->str());
  }
  EXPECT_EQ(asked, (std::set<std::string>{old_id, up_id}));
  deliver(verify_reply(9, old_id, false));  // only the node may say so
  EXPECT_EQ(engine_->live_agreements().size(), 2u);
  deliver(verify_reply(1, up_id, true));
  deliver(verify_reply(1, old_id, false));
  auto live = engine_->live_agreements();
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].id, up_id);
  EXPECT_TRUE((*store_->get(up_id))->supersedes.empty());
  EXPECT_EQ((*store_->get(old_id))->reason,
            static_cast<uint16_t>(fb::CancelReason::ab_upgrade_superseded));
  EXPECT_EQ(engine_->stats().upgrades_succeeded, 1u);
  EXPECT_EQ(engine_->stats().missing_cancels, 0u);
  EXPECT_TRUE(out_.of(fb::Body::Cancel).empty());  // the node cancelled it itself
}

// The node's Cancel of the upgrade (it rolled back) was lost the same way: the node no longer
// has the upgrade agreement, so the old one stays and that version counts as failed.
TEST_F(agbot_upgrade_test, restart_that_lost_the_nodes_rollback_keeps_the_old_agreement) {
  std::string old_id;
  bump(old_id);
  const auto up_id = proposals()[1]->agreement_id()->str();
  deliver(reply(1, up_id, fb::ReplyDecision::accept));
  engine_.reset();
  start();
  deliver(verify_reply(1, old_id, true));
  deliver(verify_reply(1, up_id, false));
  auto live = engine_->live_agreements();
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].id, old_id);
  EXPECT_EQ(engine_->stats().upgrades_failed, 1u);
  EXPECT_EQ((*store_->get(up_id))->state, fb::AgreementState::cancelled);
  loop_.advance(120s);  // no new proposal of the failed version
  EXPECT_EQ(proposals().size(), 2u);
}

}  // namespace
}  // namespace hmq::agbot
