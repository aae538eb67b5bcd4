// The agent's workloads (docs/agent.md): a finalized agreement's services handed to the runtime,
// and upgrades, download-then-swap with a verification window (docs/agent.md "Upgrades"): the
// new version is fetched first, the old one stopped, the new one started and watched; a failure
// inside the window restores the old version.
#include "agent/engine.h"
#include "agent/engine_internal.h"
#include "agent/reasons.h"

namespace hmq::agent {
using namespace engine_internal;  // the engine files' shared helpers

std::optional<workload> engine::workload_of(const std::string& id) {
  auto it = agreements_.find(id);
  if (it == agreements_.end()) return std::nullopt;
  const auto* p = proposal_of(it->second.proposal);
  if (!p) {
    lg()->error("agreement {}: stored proposal unreadable", id);
    cancel_local(id, reason_code(fb::CancelReason::image_data_error), "stored proposal unreadable",
                 true);
    return std::nullopt;
  }
  workload w;
  w.agreement_id = id;
  w.node_org = str(p->node_org());
  w.node_id = str(p->node_id());
  w.pattern = str(p->pattern());
  w.arch = str(p->arch());
  if (p->services())
    for (const auto* s : *p->services())
      if (s) {
        fb::ProposedServiceT t;  // UnPackTo, not UnPack: the latter returns an owning raw pointer
        s->UnPackTo(&t);
        w.services.push_back(std::move(t));
      }
  return w;
}

void engine::deploy(const std::string& id) {
  auto w = workload_of(id);
  if (!w) return;
  record("deploy_started", id, 0, "pull, verify and start");
  status_changed(id, fb::ServiceState::starting, "");
  rt_.deploy(*w, [this, id, alive = alive_](result<void> r) {
    if (!*alive) return;
    auto it = agreements_.find(id);
    if (it == agreements_.end() || it->second.state != agreement_state::finalized) return;
    if (r) {
      lg()->info("agreement {}: workload running", id);
      record("deploy_done", id, 0, "workload running");
      status_changed(id, fb::ServiceState::running, "");
      return;
    }
    lg()->warn("agreement {}: runtime failed: {}", id, r.err().message());
    record("deploy_failed", id, cancel_reason_of(r.err(), fb::CancelReason::container_failure),
           r.err().message());
    status_changed(id, fb::ServiceState::failed, r.err().message());
    cancel_local(id, cancel_reason_of(r.err(), fb::CancelReason::container_failure),
                 r.err().message(), true);
  });
}

std::optional<std::string> engine::superseded_by(const stored_agreement& a) const {
  const auto* p = proposal_of(a.proposal);
  if (!p || !p->supersedes() || p->supersedes()->size() == 0) return std::nullopt;
  auto it = agreements_.find(p->supersedes()->str());
  if (it == agreements_.end() || it->second.state != agreement_state::finalized ||
      it->first == a.id || !crypto::equal(it->second.agbot_key, a.agbot_key))
    return std::nullopt;
  return it->first;
}

void engine::upgrade(const std::string& id, const std::string& old_id) {
  auto w = workload_of(id);
  if (!w) return;
  const auto& from = agreements_[old_id];
  const auto& to = agreements_[id];
  lg()->info(
      "agreement {}: upgrade of {} from {} to {} (replaces agreement {}): fetching the new images "
      "first",
      id, to.service_url, from.service_version, to.service_version, old_id);
  upgrading_[id].old_id = old_id;
  record("upgrade_started", id, 0,
         from.service_version + " -> " + to.service_version + ", replaces agreement " + old_id);
  rt_.prepare(*w, [this, id, alive = alive_](result<void> r) {
    if (!*alive) return;
    auto u = upgrading_.find(id);
    if (u == upgrading_.end()) return;  // cancelled meanwhile
    if (!r) {
      lg()->warn("agreement {}: new version cannot be fetched: {}", id, r.err().message());
      return rollback(id, cancel_reason_of(r.err(), fb::CancelReason::image_fetch_failure),
                      r.err().message(), true);
    }
    // Everything is local and verified: swap. The old images stay until the new version is
    // verified.
    u->second.swapped = true;
    const std::string old_id = u->second.old_id;
    rt_.retain_images(old_id, true);
    lg()->info("agreement {}: new version fetched, stopping agreement {}", id, old_id);
    rt_.remove(old_id, [this, id, old_id, alive](result<void> r) {
      if (!*alive || !upgrading_.count(id)) return;
      if (!r)
        lg()->warn("agreement {}: stopping the old version failed: {}", old_id, r.err().message());
      auto w = workload_of(id);
      if (!w) return;
      rt_.deploy(*w, [this, id, alive](result<void> r) {
        if (!*alive) return;
        auto u = upgrading_.find(id);
        if (u == upgrading_.end()) return;
        if (!r) {
          lg()->warn("agreement {}: new version failed to start: {}", id, r.err().message());
          return rollback(id, cancel_reason_of(r.err(), fb::CancelReason::container_failure),
                          r.err().message(), true);
        }
        lg()->info("agreement {}: new version running, verifying for {} ms", id,
                   opts_.upgrade_verify_window.count());
        record("upgrade_swapped", id, 0,
               "new version running, verifying for " +
                   std::to_string(opts_.upgrade_verify_window.count()) + " ms");
        u->second.verify = loop_.call_after(opts_.upgrade_verify_window, [this, id, alive] {
          if (*alive) upgrade_verified(id);
        });
      });
    });
  });
}

void engine::rollback(const std::string& id, uint16_t reason, std::string message,
                      bool notify_agbot) {
  auto u = upgrading_.find(id);
  if (u == upgrading_.end()) return;
  upgrade_state st = std::move(u->second);
  upgrading_.erase(u);
  ++stats_.rollbacks;
  auto old = agreements_.find(st.old_id);
  lg()->warn("agreement {}: upgrade failed with {} ({}); restoring agreement {} ({})", id, reason,
             reason_text(reason), st.old_id,
             old != agreements_.end() ? old->second.service_version : std::string("?"));
  record("upgrade_rolled_back", id, reason, "agreement " + st.old_id + " restored: " + message);
  cancel_local(id, reason, "upgrade failed, previous version restored: " + message, notify_agbot,
               st.swapped);
  if (st.swapped && old != agreements_.end() && old->second.state == agreement_state::finalized)
    deploy(st.old_id);
  rt_.retain_images(st.old_id, false);
}

void engine::upgrade_verified(const std::string& id) {
  auto u = upgrading_.find(id);
  if (u == upgrading_.end()) return;
  const std::string old_id = u->second.old_id;
  upgrading_.erase(u);
  auto it = agreements_.find(id);
  if (it == agreements_.end() || it->second.state != agreement_state::finalized) return;
  ++stats_.upgrades;
  lg()->info("agreement {}: upgrade verified, {} {} runs; agreement {} is superseded", id,
             it->second.service_url, it->second.service_version, old_id);
  record("upgrade_verified", id, 0,
         it->second.service_version + " verified, supersedes agreement " + old_id);
  // The agbot takes Cancel 210 of the old agreement as "upgrade done" (docs/protocol.md).
  cancel_local(old_id, reason_code(fb::CancelReason::ab_upgrade_superseded),
               "superseded by agreement " + id, true, false);
  rt_.retain_images(old_id, false);
}

}  // namespace hmq::agent
