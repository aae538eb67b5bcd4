// Node health governance of the agbot (docs/agbot.md, "Node health"): the engine's hooks for
// node_stale / node_online events and the periodic agreement verification. Kept apart from
// engine.cc because it is one concern with its own timers.
#include <algorithm>

#include "agbot/engine.h"

namespace hmq::agbot {
namespace {

constexpr std::chrono::seconds default_check{120};  // Horizon's check_agreement_status default

}  // namespace

bool engine::node_stale(const std::string& org, const std::string& id) const {
  return stale_nodes_.count(org + "/" + id) > 0;
}

// The exchange saw no heartbeat within the pattern's missing_heartbeat_interval (or the broker
// published the node's offline will): cancel its agreements with 208, persisted first; the
// Cancel reaches the node through its persistent session when it returns (best effort). No
// back-off proposal: the node is proposed to again when it is back (node_online).
void engine::on_node_stale(const std::string& org, const std::string& id) {
  stale_nodes_.insert(org + "/" + id);
  std::vector<agreement> gone;
  for (const auto& [aid, a] : live_)
    if (a.node_org == org && a.node_id == id) gone.push_back(a);
  log_->info("node {}/{}: stale, cancelling {} agreement(s)", org, id, gone.size());
  for (auto& a : gone) {
    ++stats_.heartbeat_cancels;
    a.exchange_synced = a.state != fb::AgreementState::finalized;
    cancel(std::move(a), fb::CancelReason::ab_node_heartbeat, true);
  }
  const std::string prefix = org + "/" + id + "|";
  std::erase_if(backoffs_, [&](const auto& kv) { return kv.first.starts_with(prefix); });
}

void engine::on_node_online(consider_request r) {
  const bool was_stale = stale_nodes_.erase(r.node_org + "/" + r.node_id) > 0;
  log_->info("node {}/{}: heartbeating again{}", r.node_org, r.node_id,
             was_stale ? ", proposing again" : "");
  ++stats_.nodes_back;
  if (!patterns_loaded_) return early_.push_back(std::move(r));
  enqueue(std::move(r));
}

// Every check_agreement_status (the smallest one of the served patterns' services), ask each
// node with a finalized agreement whether it still has it (AgreementVerify). A node that says
// no lost it (e.g. its agent.db was reset): cancel 209 and propose again after the back-off.
std::chrono::seconds engine::verify_interval() const {
  std::chrono::seconds every{0};
  for (const auto& [key, pe] : patterns_) {
    if (!pe.pattern) continue;
    for (const auto& ps : pe.pattern->services)
      if (ps && ps->node_health && ps->node_health->check_agreement_status > 0) {
        std::chrono::seconds s{ps->node_health->check_agreement_status};
        every = every.count() == 0 ? s : std::min(every, s);
      }
  }
  return every.count() == 0 ? default_check : every;
}

void engine::arm_verify() {
  if (!life_) return;
  verify_every_ = verify_interval();
  verify_timer_ = loop_.call_after(verify_every_, [this, w = std::weak_ptr<int>(life_)] {
    if (w.expired()) return;
    verify_agreements();
    arm_verify();
  });
}

void engine::verify_agreements() {
  for (const auto& [id, a] : live_)
    if (a.state == fb::AgreementState::finalized && !node_stale(a.node_org, a.node_id))
      send_verify(a);
}

void engine::send_verify(const agreement& a) {
  ++stats_.verifies_sent;
  out_.send(a.node_key, fb::Body::AgreementVerify,
            [aid = a.id](flatbuffers::FlatBufferBuilder& b) {
              return fb::CreateAgreementVerifyDirect(b, aid.c_str()).Union();
            },
            expiry_s(), {});
}

void engine::on_verify_reply(const core::wire::opened& m, const fb::AgreementVerifyReply& v) {
  const std::string id = v.agreement_id() ? v.agreement_id()->str() : std::string{};
  if (!valid_agreement_id(id)) {
    ++stats_.dropped_invalid;
    return;
  }
  auto it = live_.find(id);
  if (it == live_.end()) return;  // cancelled meanwhile: nothing to do
  if (it->second.node_key != m.sender) {
    ++stats_.dropped_wrong_sender;
    return;
  }
  if (v.exists() || it->second.state != fb::AgreementState::finalized) return;
  agreement a = it->second;
  // The node's Cancel 210 (upgrade verified) or its Cancel of the upgrade (rolled back) can be
  // lost when the agbot stops before the group that handled it committed: the answer to a
  // verify settles the upgrade the same way.
  if (finish_upgrade_of(a)) {
    log_->info("agreement {} node {}: the node no longer has it, its upgrade replaced it", a.id,
               a.node());
    return;
  }
  if (!a.supersedes.empty()) {
    log_->info("agreement {} node {}: the node no longer has this upgrade, it stays on {}", a.id,
               a.node(), a.supersedes);
    agreement copy = a;
    cancel(a, fb::CancelReason::ab_ag_missing, false);
    return upgrade_failed(copy, static_cast<uint16_t>(fb::CancelReason::ab_ag_missing), true);
  }
  ++stats_.missing_cancels;
  log_->info("agreement {} node {}: the node no longer has it, cancelling (209)", a.id, a.node());
  auto slot = a.slot();
  cancel(a, fb::CancelReason::ab_ag_missing, true);
  backoff(slot, a.node_org, a.node_id, a.pattern);
}

}  // namespace hmq::agbot
