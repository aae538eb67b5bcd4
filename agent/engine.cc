// The agent engine's start-up (resume from agent.db), the mailbox's router, status reports, the
// exchange record and agent.db, and registration. The other engine files: engine_proposals.cc,
// engine_lifecycle.cc, engine_workloads.cc.
#include "agent/engine.h"

#include <algorithm>
#include <set>

#include "agent/engine_internal.h"
#include "core/log/log.h"
#include "exchange_client/agreement_record.h"

namespace hmq::agent {
using namespace engine_internal;  // the engine files' shared helpers
namespace {

class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "agent"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::ok:
        return "ok";
      case errc::not_registered:
        return "node is not registered";
      case errc::already_registered:
        return "node is already registered";
      case errc::bad_request:
        return "bad request";
      case errc::store_failed:
        return "agent database error";
    }
    return "unknown";
  }
};

}  // namespace

const std::error_category& category() {
  static const category_impl c;
  return c;
}
std::error_code make_error_code(errc e) {
  return {static_cast<int>(e), category()};
}

bool valid_agreement_id(std::string_view id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

engine::engine(core::loop::scheduler& loop, agent_store& store, exchange_api& x, outbox& out,
               runtime& rt, engine_options o)
    : loop_(loop),
      store_(store),
      x_(x),
      out_(out),
      rt_(rt),
      opts_(o),
      events_(store.db(), loop.time()) {}

void engine::status_changed(const std::string& id, fb::ServiceState st, std::string error) {
  auto& s = service_status_[id];
  if (s.state == fb::ServiceState::running && st == fb::ServiceState::starting) ++s.restarts;
  s.state = st;
  if (!error.empty()) s.last_error = std::move(error);
  // Failed/stopped entries are kept for the report until newer ones push them out.
  if (service_status_.size() > 64)
    for (auto it = service_status_.begin(); it != service_status_.end(); ++it)
      if (it->second.state == fb::ServiceState::failed ||
          it->second.state == fb::ServiceState::stopped) {
        service_status_.erase(it);
        break;
      }
  if (status_timer_.active()) return;  // coalesced into the pending report
  const int64_t wait = std::max<int64_t>(
      0, last_status_ms_ + opts_.status_min_interval.count() - loop_.time().now_ms());
  status_timer_ = loop_.call_after(std::chrono::milliseconds(wait), [this, alive = alive_] {
    if (*alive) send_status();
  });
}

void engine::send_status() {
  auto reg = store_.registration();
  if (!reg || !*reg || !(*reg)->confirmed) return;
  fb::StatusReportT r;
  r.reported_ms = loop_.time().now_ms();
  for (const auto& [id, st] : service_status_) {
    auto s = std::make_unique<fb::ServiceStatusT>();
    s->agreement_id = id;
    if (auto it = agreements_.find(id); it != agreements_.end()) {
      s->service_url = it->second.service_url;
      s->service_version = it->second.service_version;
    }
    s->state = st.state;
    s->restarts = st.restarts;
    s->last_error = st.last_error;
    r.services.push_back(std::move(s));
  }
  last_status_ms_ = r.reported_ms;
  x_.put_node_status((*reg)->node, r, [alive = alive_](result<void> res) {
    if (*alive && !res) lg()->debug("status report not stored: {}", res.err().message());
  });
}

void engine::record(std::string_view kind, const std::string& id, uint16_t reason,
                    std::string_view message) {
  std::string service;
  if (auto it = agreements_.find(id); it != agreements_.end()) service = it->second.service_url;
  events_.add(kind, id, service, reason, message);
}

engine::~engine() {
  stop();
}

result<void> engine::start() {
  *alive_ = true;
  auto all = store_.agreements();
  if (!all) return all.err();
  int64_t now = loop_.time().now_ms();
  for (auto& a : *all) agreements_[a.id] = std::move(a);
  // Runtime failures after a good deploy (crash loop): cancel with the runtime's reason.
  rt_.on_failure([this, alive = alive_](const std::string& id, core::error e) {
    if (!*alive) return;
    auto it = agreements_.find(id);
    if (it == agreements_.end() || it->second.state != agreement_state::finalized) return;
    if (upgrading_.count(id)) {
      lg()->warn("agreement {}: new version failed in its verification window: {}", id,
                 e.message());
      return rollback(id, cancel_reason_of(e, fb::CancelReason::container_failure), e.message(),
                      true);
    }
    lg()->warn("agreement {}: workload failed: {}", id, e.message());
    record("service_failed", id, cancel_reason_of(e, fb::CancelReason::container_failure),
           e.message());
    status_changed(id, fb::ServiceState::failed, e.message());
    cancel_local(id, cancel_reason_of(e, fb::CancelReason::container_failure), e.message(), true);
  });
  // Pulls, starts, crashes and restarts inside a workload go to the event log as they happen.
  rt_.on_event([this, alive = alive_](const std::string& id, std::string_view kind,
                                      const std::string& service, const std::string& message) {
    if (!*alive) return;
    std::string url = service;
    if (url.empty())
      if (auto it = agreements_.find(id); it != agreements_.end()) url = it->second.service_url;
    events_.add(kind, id, url, 0, message);
    // In-place restarts count in the status report (`hmq exchange node status`).
    auto st = service_status_.find(id);
    if (st == service_status_.end()) return;
    if (kind == "container_restarted") {
      ++st->second.restarts;
      status_changed(id, st->second.state, "");
    } else if (kind == "container_crashed" || kind == "container_oom") {
      status_changed(id, st->second.state, message);
    }
  });
  // An upgrade interrupted by a restart is done again from the start (prepare, swap, verify);
  // the agreement it supersedes is not redeployed first.
  std::set<std::string> superseded;
  for (const auto& [id, a] : agreements_)
    if (a.state == agreement_state::finalized)
      if (auto old = superseded_by(a)) superseded.insert(*old);
  for (auto& [id, a] : agreements_) {
    if (a.state == agreement_state::finalized && superseded.count(id)) {
      lg()->info("agreement {}: resumed as finalized, an upgrade replacing it is in progress", id);
    } else if (a.state == agreement_state::finalized && superseded_by(a)) {
      lg()->info("agreement {}: resumed as finalized during its upgrade, swapping again", id);
      upgrade(id, *superseded_by(a));
    } else if (a.state == agreement_state::accepted) {
      // Waits for the ReplyAck the persistent session still delivers, until the deadline.
      int64_t left = a.accepted_ms + opts_.finalize_timeout.count() - now;
      lg()->info("agreement {}: resumed as accepted, finalize deadline in {} ms", id,
                 std::max<int64_t>(left, 0));
      arm_finalize_timer(id, std::chrono::milliseconds(std::max<int64_t>(left, 0)));
    } else if (a.state == agreement_state::finalized) {
      lg()->info("agreement {}: resumed as finalized, handing workload to the runtime", id);
      deploy(id);
    }
    if (!a.exchange_synced) sync_exchange(id);
    // Persisted as cancelled but the Cancel may never have left: send it again.
    if (a.state == agreement_state::cancelled && a.cancel_unsent) {
      lg()->info("agreement {}: re-sending Cancel {}", id, a.reason);
      send_cancel(a);
    }
  }
  rt_.resumed();  // every finalized workload is handed over: the rest of what runs is orphaned
  // A registration the exchange never confirmed (crash in between) is sent again.
  auto reg = store_.registration();
  if (reg && *reg && !(*reg)->confirmed) {
    const auto& r = **reg;
    lg()->info("node {}/{}: re-sending unconfirmed registration", r.node.org, r.node.id);
    node_registration nr{r.node, r.pattern, r.arch, {}};
    x_.register_node(nr, [this, alive = alive_](result<void> res) {
      if (!*alive || !res) return;
      auto cur = store_.registration();
      if (cur && *cur) {
        (*cur)->confirmed = true;
        (void)store_.put_registration(**cur);
      }
    });
  }
  return core::ok();
}

void engine::stop() {
  *alive_ = false;
  finalize_timers_.clear();
  upgrading_.clear();
  resync_timer_.cancel();
}

std::vector<stored_agreement> engine::agreements() const {
  std::vector<stored_agreement> out;
  for (const auto& [id, a] : agreements_) out.push_back(a);
  std::sort(out.begin(), out.end(),
            [](const auto& x, const auto& y) { return x.accepted_ms < y.accepted_ms; });
  return out;
}

size_t engine::live_agreements() const {
  return static_cast<size_t>(
      std::count_if(agreements_.begin(), agreements_.end(),
                    [](const auto& kv) { return is_live(kv.second.state); }));
}

void engine::on_message(const core::wire::opened& m) {
  switch (m.message()->body_type()) {
    case fb::Body::Proposal:
      return on_proposal(m);
    case fb::Body::ReplyAck:
      return on_reply_ack(m);
    case fb::Body::Cancel:
      return on_cancel(m);
    case fb::Body::AgreementVerify:
      return on_verify(m);
    default:
      ++stats_.dropped_unrouted;
      lg()->debug("dropped message with body {}", fb::EnumNameBody(m.message()->body_type()));
  }
}

// ---------------------------------------------------------------------------------------------
// The exchange record and agent.db

void engine::sync_exchange(const std::string& id) {
  auto it = agreements_.find(id);
  if (it == agreements_.end() || it->second.exchange_synced) return;
  auto reg = store_.registration();
  if (!reg || !*reg) {
    // Unregistered: the exchange dropped the node with its agreements.
    it->second.exchange_synced = true;
    (void)persist(it->second);
    return;
  }
  const auto& node = (**reg).node;
  agreement_state want = it->second.state;
  auto done = [this, id, want, alive = alive_](result<void> r) {
    if (!*alive) return;
    auto it = agreements_.find(id);
    if (it == agreements_.end() || it->second.state != want) return;  // a newer change syncs itself
    if (!r) {
      lg()->warn("agreement {}: exchange update failed, retrying later: {}", id, r.err().message());
      return schedule_resync();
    }
    it->second.exchange_synced = true;
    (void)persist(it->second);
    lg()->debug("agreement {}: exchange record {}", id,
                want == agreement_state::finalized ? "put" : "deleted");
  };
  if (want == agreement_state::finalized) {
    const auto& a = it->second;
    x_.put_agreement(
        node,
        exchange_client::finalized_agreement_record(a, node.org, node.id, a.agbot, a.finalized_ms),
        std::move(done));
  } else if (want == agreement_state::cancelled) {
    x_.delete_agreement(node, id, std::move(done));
  }
}

void engine::schedule_resync() {
  if (resync_timer_.active()) return;
  resync_timer_ = loop_.call_after(opts_.exchange_retry, [this] {
    for (const auto& [id, a] : agreements_)
      if (!a.exchange_synced) sync_exchange(id);
  });
}

bool engine::persist(const stored_agreement& a) {
  if (auto r = store_.put_agreement(a); !r) {
    ++stats_.store_errors;
    lg()->error("agreement {}: cannot persist state {}: {}", a.id, state_name(a.state),
                r.err().message());
    return false;
  }
  // Pruning erases from agreements_: never under a caller that may be iterating it.
  if (a.state == agreement_state::cancelled && !std::exchange(prune_posted_, true))
    loop_.post([this, alive = alive_] {
      if (!*alive) return;
      prune_posted_ = false;
      prune_cancelled();
    });
  return true;
}

void engine::prune_cancelled() {
  std::vector<std::pair<int64_t, std::string>> cancelled, eligible;
  std::set<std::string> in_upgrade;
  for (const auto& [id, u] : upgrading_) in_upgrade.insert({id, u.old_id});
  const int64_t cutoff = loop_.time().now_ms() - opts_.prune_after.count();
  for (const auto& [id, a] : agreements_) {
    if (a.state != agreement_state::cancelled) continue;
    cancelled.emplace_back(a.cancelled_ms, id);
    if (a.exchange_synced && !a.cancel_unsent && a.cancelled_ms < cutoff && !in_upgrade.count(id))
      eligible.emplace_back(a.cancelled_ms, id);
  }
  if (cancelled.size() <= opts_.keep_cancelled) return;
  std::sort(eligible.begin(), eligible.end());  // oldest first
  size_t excess = cancelled.size() - opts_.keep_cancelled;
  for (const auto& [ms, id] : eligible) {
    if (excess == 0) break;
    if (auto r = store_.delete_agreement(id); !r) {
      ++stats_.store_errors;
      lg()->error("agreement {}: cannot prune: {}", id, r.err().message());
      return;
    }
    agreements_.erase(id);
    service_status_.erase(id);
    ++stats_.pruned;
    --excess;
  }
}

// ---------------------------------------------------------------------------------------------
// Registration and trust store

void engine::register_node(node_registration r, std::string user_input_json, done_fn cb) {
  auto cur = store_.registration();
  if (!cur) return cb(cur.err());
  bool was_confirmed = false;
  if (*cur) {
    const auto& c = **cur;
    if (c.node.org != r.node.org || c.node.id != r.node.id || c.pattern != r.pattern)
      return cb(core::error{make_error_code(errc::already_registered),
                            "registered as " + c.node.org + "/" + c.node.id + " for " + c.pattern +
                                "; run hmq unregister first"});
    was_confirmed = c.confirmed;
  }
  stored_registration s{
      r.node, r.pattern, r.arch, std::move(user_input_json), loop_.time().now_ms(), was_confirmed};
  // Written first: a proposal can arrive before the exchange's answer does (the exchange emits
  // node_registered as it commits), and it is judged against this registration.
  if (auto w = store_.put_registration(s); !w) return cb(w.err());
  lg()->info("node {}/{}: registering for pattern {} ({})", r.node.org, r.node.id, r.pattern,
             r.arch);
  x_.register_node(
      r, [this, s, was_confirmed, cb = std::move(cb), alive = alive_](result<void> res) mutable {
        if (!*alive) return;
        if (!res) {
          lg()->warn("node {}/{}: registration refused: {}", s.node.org, s.node.id,
                     res.err().message());
          if (!was_confirmed) (void)store_.clear_registration();
          return cb(res);
        }
        s.confirmed = true;
        if (auto w = store_.put_registration(s); !w) return cb(w.err());
        lg()->info("node {}/{}: registered", s.node.org, s.node.id);
        cb(core::ok());
      });
}

void engine::unregister_node(done_fn cb) {
  auto cur = store_.registration();
  if (!cur) return cb(cur.err());
  if (!*cur) return cb(core::error{make_error_code(errc::not_registered), ""});
  node_identity node = (**cur).node;
  std::vector<std::string> live;
  for (const auto& [id, a] : agreements_)
    if (is_live(a.state)) live.push_back(id);
  for (const auto& id : live)
    cancel_local(id, reason_code(fb::CancelReason::user_requested), "node unregistered by its user",
                 true);
  lg()->info("node {}/{}: unregistering ({} agreements cancelled)", node.org, node.id, live.size());
  x_.unregister_node(node, [this, node, cb = std::move(cb), alive = alive_](result<void> res) {
    if (!*alive) return;
    if (!res) {
      lg()->warn("node {}/{}: unregister refused: {}", node.org, node.id, res.err().message());
      return cb(res);
    }
    if (auto w = store_.clear_registration(); !w) return cb(w.err());
    lg()->info("node {}/{}: unregistered", node.org, node.id);
    cb(core::ok());
  });
}

result<void> engine::import_key(const crypto::public_key& k, std::string name) {
  if (auto r = store_.add_trusted_key({k, std::move(name), loop_.time().now_ms()}); !r) return r;
  lg()->info("trusted publisher key {} added", crypto::to_hex(k));
  return core::ok();
}

}  // namespace hmq::agent
