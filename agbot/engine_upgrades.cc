// The engine's side of pattern upgrades (docs/agbot.md "Rollouts"): the hooks the rollout
// controller (agbot/rollout.h) calls to start an upgrade, and what the engine tells it when an
// upgrade agreement ends. The rollout logic itself is in the controller.
#include "agbot/engine.h"
#include "exchange_client/ids.h"

namespace hmq::agbot {
namespace {

using fb::AgreementState;

// The publisher's signature of the top-level service of a stored Proposal: over its whole
// definition (service_signature), so a re-publish that changes only user inputs or required
// services counts as a change too.
std::vector<uint8_t> proposal_signature(const std::vector<uint8_t>& bytes) {
  flatbuffers::Verifier v(bytes.data(), bytes.size());
  if (bytes.empty() || !v.VerifyBuffer<fb::Proposal>(nullptr)) return {};
  const auto* p = flatbuffers::GetRoot<fb::Proposal>(bytes.data());
  if (!p->services()) return {};
  for (const auto* s : *p->services())
    if (s && s->is_top_level() && s->service() && s->service()->service_signature())
      return {s->service()->service_signature()->begin(), s->service()->service_signature()->end()};
  return {};
}

}  // namespace

bool engine::start_upgrade(const std::string& slot, const std::string& version) {
  if (!life_) return false;
  auto cur = live_slots_.find(slot);
  if (cur == live_slots_.end() || upgrade_slots_.count(slot) || preparing_.count(slot))
    return false;
  auto it = live_.find(cur->second);
  if (it == live_.end() || it->second.state != AgreementState::finalized) return false;
  const agreement old = it->second;
  auto pit = patterns_.find(old.pattern);
  if (pit == patterns_.end() || !pit->second.pattern) return false;
  const fb::PatternServiceT* ps = nullptr;
  for (const auto& s : pit->second.pattern->services)
    if (s && s->service_org == old.service_org && s->service_url == old.service_url) ps = s.get();
  if (!ps) return false;
  // The node's current user inputs belong in the new proposal: read the node once.
  upgrade_starting_.insert(slot);
  x_.get_node(old.node_org, old.node_id,
              [this, w = std::weak_ptr<int>(life_), slot, version, old,
               ps = *ps](core::result<fb::NodeT> n) {
                if (w.expired()) return;
                upgrade_starting_.erase(slot);
                auto cur = live_slots_.find(slot);
                if (!n || cur == live_slots_.end() || cur->second != old.id ||
                    upgrade_slots_.count(slot) || n->pattern != old.pattern) {
                  if (!n) ++stats_.exchange_errors;
                  log_->info("agreement {} node {}: upgrade to {} not started ({})", old.id,
                             old.node(), version,
                             n ? "agreement or registration changed" : n.err().message());
                  return rollout_->on_abandoned(slot);
                }
                fb::NodeT node = std::move(*n);
                if (node.public_key.size() != core::crypto::public_key_size)
                  node.public_key.assign(old.node_key.begin(), old.node_key.end());
                if (node.arch.empty()) node.arch = old.arch;
                log_->info("agreement {} node {}: upgrading {} {} -> {}", old.id, old.node(),
                           old.service_url, old.service_version, version);
                propose(
                    slot, node, old.pattern, ps, version, [] {}, old.id);
              });
  return true;
}

// After a restart: an upgrade agreement whose superseded agreement is no longer live finished
// (the node's Cancel 210 was handled but the agbot stopped before it promoted the new one).
void engine::resume_upgrades() {
  std::vector<std::string> done;
  for (const auto& [slot, up_id] : upgrade_slots_)
    if (!live_slots_.count(slot)) done.push_back(slot);
  for (const auto& slot : done) {
    auto up_id = upgrade_slots_[slot];
    auto it = live_.find(up_id);
    if (it == live_.end()) continue;
    log_->info(
        "agreement {} node {}: resumed upgrade whose old agreement {} is over; it is the node's "
        "agreement now",
        up_id, it->second.node(), it->second.supersedes);
    upgrade_succeeded(it->second.supersedes);
  }
}

bool engine::finish_upgrade_of(const agreement& old) {
  auto up = upgrade_slots_.find(old.slot());
  if (up == upgrade_slots_.end()) return false;
  auto u = live_.find(up->second);
  if (u == live_.end() || u->second.state != AgreementState::finalized ||
      u->second.supersedes != old.id)
    return false;
  cancel(old, fb::CancelReason::ab_upgrade_superseded, false);
  upgrade_succeeded(old.id);
  return true;
}

void engine::replan(const std::string& pattern_key, const std::set<std::string>& force_versions) {
  auto pit = patterns_.find(pattern_key);
  if (pit == patterns_.end() || !pit->second.pattern) return;
  std::vector<slot_version> current;
  for (const auto& [id, a] : live_) {
    if (a.pattern != pattern_key || !a.supersedes.empty() || a.state != AgreementState::finalized)
      continue;
    const auto s = a.slot();
    current.push_back(
        {s, a.service_version,
         upgrade_slots_.count(s) || preparing_.count(s) || upgrade_starting_.count(s)});
  }
  rollout_->plan(*pit->second.pattern, pattern_key, current, force_versions);
}

void engine::upgrade_failed(agreement a, uint16_t reason, bool after_swap) {
  ++stats_.upgrades_failed;
  log_->info("agreement {} node {}: upgrade to {} {} failed ({} {}){}", a.id, a.node(),
             a.service_url, a.service_version, reason,
             fb::EnumNameCancelReason(static_cast<fb::CancelReason>(reason)),
             after_swap ? ", node restored the previous version" : "");
  rollout_->on_failed(a.slot(), a.service_version, reason, after_swap);
}

void engine::upgrade_succeeded(const std::string& old_id) {
  for (auto& [slot, up_id] : upgrade_slots_) {
    auto it = live_.find(up_id);
    if (it == live_.end() || it->second.supersedes != old_id) continue;
    auto& a = it->second;
    const std::string s = slot;
    a.supersedes.clear();
    if (auto r = store_.set_supersedes(a.id, ""); !r)
      log_->error("agreement {} node {}: cannot persist upgrade: {}", a.id, a.node(),
                  r.err().message());
    live_slots_[s] = a.id;
    upgrade_timers_.erase(a.id);
    ++stats_.upgrades_succeeded;
    log_->info("agreement {} node {}: upgrade to {} {} verified, replaces {}", a.id, a.node(),
               a.service_url, a.service_version, old_id);
    const std::string version = a.service_version;
    upgrade_slots_.erase(s);
    rollout_->on_upgraded(s, version);
    return;
  }
}

// A republished service version (same version, new deployment or signature) is rolled out to the
// nodes that run the old bytes, like a new version.
void engine::on_service_changed(const std::string& org, const std::string& id) {
  std::map<std::string, const agreement*> affected;  // agreement id -> agreement
  for (const auto& [aid, a] : live_)
    if (a.supersedes.empty() && a.state == AgreementState::finalized && a.service_org == org &&
        exchange_client::service_id(a.service_url, a.service_version, a.arch) == id)
      affected[aid] = &a;
  if (affected.empty()) return;
  const agreement& first = *affected.begin()->second;
  x_.get_service(
      org, first.service_url, first.service_version, first.arch,
      [this, w = std::weak_ptr<int>(life_), org, id](core::result<fb::ServiceT> s) {
        if (w.expired() || !s) return;
        std::map<std::string, std::set<std::string>> force;  // pattern -> versions
        for (const auto& [aid, a] : live_) {
          if (!a.supersedes.empty() || a.state != AgreementState::finalized ||
              a.service_org != org ||
              exchange_client::service_id(a.service_url, a.service_version, a.arch) != id)
            continue;
          if (proposal_signature(a.proposal) != s->service_signature)
            force[a.pattern].insert(a.service_version);
        }
        for (const auto& [pattern, versions] : force) {
          log_->info("pattern {}: {} was published again with changes, rolling it out again",
                     pattern, id);
          replan(pattern, versions);
        }
      });
}

}  // namespace hmq::agbot
