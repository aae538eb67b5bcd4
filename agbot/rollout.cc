#include "agbot/rollout.h"

#include <algorithm>
#include <limits>

namespace hmq::agbot {
namespace {

constexpr uint32_t default_max_in_flight = 10;
constexpr auto publish_delay = std::chrono::milliseconds(200);

// "node|pattern|service" -> its parts.
struct slot_parts {
  std::string node, pattern, service;
};
std::optional<slot_parts> split_slot(const std::string& slot) {
  auto a = slot.find('|');
  if (a == std::string::npos) return std::nullopt;
  auto b = slot.find('|', a + 1);
  if (b == std::string::npos) return std::nullopt;
  return slot_parts{slot.substr(0, a), slot.substr(a + 1, b - a - 1), slot.substr(b + 1)};
}

// Rank of `version` in `ps` (0 = most preferred); max when the pattern does not list it.
size_t rank_of(const fb::PatternServiceT& ps, const std::string& version) {
  auto v = versions_by_priority(ps);
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i]->version == version) return i;
  return std::numeric_limits<size_t>::max();
}

const fb::PriorityT* priority_of(const fb::PatternServiceT& ps, const std::string& version) {
  for (const auto& sv : ps.service_versions)
    if (sv && sv->version == version) return sv->priority.get();
  return nullptr;
}

}  // namespace

std::vector<const fb::ServiceVersionT*> versions_by_priority(const fb::PatternServiceT& ps) {
  std::vector<const fb::ServiceVersionT*> out;
  for (const auto& sv : ps.service_versions)
    if (sv && !sv->version.empty()) out.push_back(sv.get());
  std::stable_sort(out.begin(), out.end(), [](const auto* a, const auto* b) {
    int64_t pa = a->priority ? a->priority->priority_value : std::numeric_limits<int64_t>::max();
    int64_t pb = b->priority ? b->priority->priority_value : std::numeric_limits<int64_t>::max();
    return pa < pb;
  });
  return out;
}

rollout_controller::rollout_controller(core::loop::scheduler& loop, core::store::database* db,
                                       std::string agbot, hooks h)
    : loop_(loop), agbot_(std::move(agbot)), hooks_(std::move(h)), log_(core::log::get("rollout")) {
  if (!db) return;
  if (auto s = rollout_store::open(*db))
    store_ = std::move(*s);
  else
    log_->error("cannot create rollout tables: {}; rollouts are not persisted", s.err().message());
}

rollout_controller::~rollout_controller() {
  life_.reset();
  for (auto& [k, r] : rollouts_) r.pause.cancel();
  publish_timers_.clear();
}

core::result<void> rollout_controller::load() {
  if (!store_) return core::ok();
  auto rollouts = store_->rollouts();
  if (!rollouts) return rollouts.err();
  auto nodes = store_->nodes();
  if (!nodes) return nodes.err();
  auto failures = store_->failures();
  if (!failures) return failures.err();
  for (auto& [key, r] : *rollouts) {
    rollout entry;
    static_cast<rollout_record&>(entry) = std::move(r);
    rollouts_.emplace(key, std::move(entry));
  }
  for (auto& [key, slot, n] : *nodes)
    if (auto it = rollouts_.find(key); it != rollouts_.end()) it->second.nodes[slot] = n;
  for (const auto& [slot, version, f] : *failures) failures_[slot][version] = f;
  // Failures since a rollout started count against its limit again.
  for (auto& [k, r] : rollouts_)
    for (const auto& [slot, n] : r.nodes) {
      bool failed =
          n.state == rollout_node_state::failed || n.state == rollout_node_state::rolled_back;
      if (auto f = failures_.find(slot); f != failures_.end())
        for (const auto& [v, fl] : f->second) failed = failed || fl.first_ms >= r.started_ms;
      if (failed) r.failed_slots.insert(slot);
    }
  for (const auto& [k, r] : rollouts_)
    log_->info("rollout {} {} -> {}: resumed ({}, {} node(s), {} in flight)", r.pattern, r.service,
               r.target, fb::EnumNameRolloutState(r.state), r.nodes.size(),
               std::count_if(r.nodes.begin(), r.nodes.end(), [](const auto& kv) {
                 return kv.second.state == rollout_node_state::in_flight;
               }));
  return core::ok();
}

const fb::PatternServiceT* rollout_controller::service_of(const std::string& pattern,
                                                          const std::string& service) const {
  auto it = patterns_.find(pattern);
  if (it == patterns_.end()) return nullptr;
  for (const auto& ps : it->second.services)
    if (ps && service_key(*ps) == service) return ps.get();
  return nullptr;
}

std::string rollout_controller::version_for(const std::string& slot,
                                            const fb::PatternServiceT& ps) const {
  auto parts = split_slot(slot);
  const rollout* r = nullptr;
  if (parts)
    if (auto it = rollouts_.find(rollout_key(parts->pattern, parts->service));
        it != rollouts_.end())
      r = &it->second;
  auto f = failures_.find(slot);
  for (const auto* sv : versions_by_priority(ps)) {
    if (f != failures_.end()) {
      auto v = f->second.find(sv->version);
      if (v != f->second.end() && v->second.failed) continue;
    }
    // A halted rollout's version goes to no new node.
    if (r && r->state == fb::RolloutState::halted && r->target == sv->version) continue;
    return sv->version;
  }
  return {};
}

void rollout_controller::plan(const fb::PatternT& pattern, const std::string& pattern_key,
                              const std::vector<slot_version>& current,
                              const std::set<std::string>& force_versions) {
  patterns_[pattern_key] = pattern;
  const int64_t now = loop_.time().now_ms();
  for (const auto& ps : pattern.services) {
    if (!ps || ps->agreement_less) continue;
    const std::string skey = service_key(*ps);
    const std::string rk = rollout_key(pattern_key, skey);
    auto ordered = versions_by_priority(*ps);
    if (ordered.empty()) continue;
    const std::string preferred = ordered.front()->version;

    // What needs to move: slots whose best available version ranks above what they run.
    std::vector<std::pair<const slot_version*, std::string>> moves;
    std::map<std::string, std::string> running;
    for (const auto& c : current) {
      auto parts = split_slot(c.slot);
      if (!parts || parts->pattern != pattern_key || parts->service != skey) continue;
      running[c.slot] = c.version;
      auto target = version_for(c.slot, *ps);
      if (target.empty()) continue;
      bool better = rank_of(*ps, target) < rank_of(*ps, c.version);
      bool forced = target == c.version && force_versions.count(c.version);
      if (better || forced) moves.emplace_back(&c, target);
    }

    auto it = rollouts_.find(rk);
    if (it == rollouts_.end() && moves.empty()) continue;
    if (it == rollouts_.end() || it->second.target != preferred ||
        (!force_versions.empty() && it->second.state != fb::RolloutState::running)) {
      // A new rollout: in-flight upgrades of an older one still report into it.
      rollout fresh;
      fresh.pattern = pattern_key;
      fresh.service = skey;
      fresh.target = preferred;
      fresh.started_ms = now;
      if (it != rollouts_.end()) {
        for (auto& [slot, n] : it->second.nodes)
          if (n.state == rollout_node_state::in_flight) fresh.nodes[slot] = n;
        it->second.pause.cancel();
        delete_rollout(rk);
      }
      it = rollouts_.insert_or_assign(rk, std::move(fresh)).first;
      for (const auto& [slot, n] : it->second.nodes) save_node(it->second, slot, n);
      log_->info("rollout {} {} -> {}: started, {} node(s) to upgrade", pattern_key, skey,
                 preferred, moves.size());
    }
    auto& r = it->second;
    r.running = std::move(running);
    const auto* up = pattern.upgrade_policy.get();
    r.max_in_flight = up && up->max_in_flight > 0 ? up->max_in_flight : default_max_in_flight;
    r.batch_pause_s = up ? up->batch_pause_s : 0;
    r.max_failures = up ? up->max_failures : 0;
    r.updated_ms = now;
    // In flight for a slot that has no live agreement any more: it cannot finish.
    for (auto n = r.nodes.begin(); n != r.nodes.end();) {
      if (n->second.state == rollout_node_state::in_flight && !r.running.count(n->first)) {
        log_->info("rollout {} {}: {} has no live agreement, leaves the rollout", pattern_key, skey,
                   n->first);
        delete_node(rk, n->first);
        n = r.nodes.erase(n);
      } else {
        ++n;
      }
    }
    // In flight here but nothing under way in the engine (the agbot stopped between the two):
    // start that node again.
    for (const auto& c : current)
      if (auto n = r.nodes.find(c.slot);
          n != r.nodes.end() && n->second.state == rollout_node_state::in_flight && !c.upgrading) {
        log_->info("rollout {} {}: {} was in flight without an upgrade agreement, pending again",
                   pattern_key, skey, c.slot);
        n->second.state = rollout_node_state::pending;
        save_node(r, c.slot, n->second);
      }
    for (const auto& [c, target] : moves) {
      auto n = r.nodes.find(c->slot);
      if (n != r.nodes.end() && n->second.state == rollout_node_state::in_flight) continue;
      if (c->upgrading) continue;  // an upgrade agreement is live: its outcome decides
      node_entry e;
      e.from_version = c->version;
      e.target = target;
      e.state = rollout_node_state::pending;
      e.updated_ms = now;
      r.nodes[c->slot] = e;
      save_node(r, c->slot, e);
    }
    if (r.state == fb::RolloutState::complete &&
        std::any_of(r.nodes.begin(), r.nodes.end(),
                    [](const auto& kv) { return kv.second.state == rollout_node_state::pending; }))
      r.state = fb::RolloutState::running;
    save_rollout(r);
    settle(rk);
  }
}

rollout_controller::rollout* rollout_controller::find_by_slot(const std::string& slot,
                                                              std::string* key_out) {
  auto parts = split_slot(slot);
  if (!parts) return nullptr;
  auto rk = rollout_key(parts->pattern, parts->service);
  auto it = rollouts_.find(rk);
  if (it == rollouts_.end()) return nullptr;
  if (key_out) *key_out = rk;
  return &it->second;
}

size_t rollout_controller::in_flight() const {
  size_t n = 0;
  for (const auto& [k, r] : rollouts_)
    for (const auto& [s, e] : r.nodes) n += e.state == rollout_node_state::in_flight;
  return n;
}

void rollout_controller::on_running(const std::string& slot, const std::string& version) {
  auto* r = find_by_slot(slot);
  if (!r) return;
  if (version.empty())
    r->running.erase(slot);
  else
    r->running[slot] = version;
}

void rollout_controller::on_upgraded(const std::string& slot, const std::string& version) {
  std::string rk;
  auto* r = find_by_slot(slot, &rk);
  if (!r) return;
  r->running[slot] = version;
  auto n = r->nodes.find(slot);
  if (n == r->nodes.end()) return;
  n->second.state = rollout_node_state::upgraded;
  n->second.updated_ms = loop_.time().now_ms();
  // Upgraded to an older rollout's target: the node still has to move on to this one's.
  if (const auto* ps = service_of(r->pattern, r->service);
      ps && version != r->target && rank_of(*ps, r->target) < rank_of(*ps, version) &&
      version_for(slot, *ps) == r->target) {
    n->second.from_version = version;
    n->second.target = r->target;
    n->second.state = rollout_node_state::pending;
  }
  log_->info("rollout {} {}: {} upgraded to {}", r->pattern, r->service, slot, version);
  save_node(*r, slot, n->second);
  settle(rk);
}

void rollout_controller::on_failed(const std::string& slot, const std::string& version,
                                   uint16_t reason, bool after_swap) {
  std::string rk;
  auto* r = find_by_slot(slot, &rk);
  const int64_t now = loop_.time().now_ms();
  auto parts = split_slot(slot);
  const fb::PatternServiceT* ps = parts ? service_of(parts->pattern, parts->service) : nullptr;
  const fb::PriorityT* prio = ps ? priority_of(*ps, version) : nullptr;
  auto& f = failures_[slot][version];
  // Horizon: `retries` further attempts within `retry_durations` seconds; older failures are
  // forgotten when the window has passed.
  const int64_t window_ms = prio ? int64_t{prio->retry_durations} * 1000 : 0;
  if (f.attempts == 0 || (window_ms > 0 && now - f.first_ms > window_ms)) {
    f.attempts = 0;
    f.first_ms = now;
  }
  ++f.attempts;
  const int retries = prio ? std::max(prio->retries, 0) : 0;
  f.failed = f.attempts > retries;
  save_failure(slot, version, f);
  if (!r) return;
  auto n = r->nodes.find(slot);
  if (n == r->nodes.end()) return;
  auto& e = n->second;
  e.updated_ms = now;
  r->failed_slots.insert(slot);
  if (!f.failed) {
    log_->info("rollout {} {}: {} failed {} (reason {}), retry {} of {}", r->pattern, r->service,
               slot, version, reason, f.attempts, retries);
    e.state = rollout_node_state::pending;
  } else {
    std::string next = ps ? version_for(slot, *ps) : std::string{};
    if (!next.empty() && ps && rank_of(*ps, next) < rank_of(*ps, e.from_version)) {
      log_->info("rollout {} {}: {} failed {} (reason {}), next by priority: {}", r->pattern,
                 r->service, slot, version, reason, next);
      e.target = next;
      e.state = rollout_node_state::pending;
    } else {
      log_->info("rollout {} {}: {} failed {} (reason {}), stays on {}", r->pattern, r->service,
                 slot, version, reason, e.from_version);
      e.target = version;
      e.state = after_swap ? rollout_node_state::rolled_back : rollout_node_state::failed;
    }
  }
  save_node(*r, slot, e);
  settle(rk);
}

void rollout_controller::on_abandoned(const std::string& slot) {
  std::string rk;
  auto* r = find_by_slot(slot, &rk);
  if (!r) return;
  r->running.erase(slot);
  if (r->nodes.erase(slot) == 0) return;
  delete_node(rk, slot);
  settle(rk);
}

void rollout_controller::settle(const std::string& key) {
  auto it = rollouts_.find(key);
  if (it == rollouts_.end()) return;
  auto& r = it->second;
  size_t flying = 0, pending = 0;
  for (const auto& [s, n] : r.nodes) {
    flying += n.state == rollout_node_state::in_flight;
    pending += n.state == rollout_node_state::pending;
  }
  auto prev = r.state;
  if (r.state == fb::RolloutState::running && r.max_failures > 0 &&
      r.failed_slots.size() >= r.max_failures) {
    r.state = fb::RolloutState::halted;
    log_->warn(
        "rollout {} {} -> {}: halted, {} node(s) failed (limit {}); {} node(s) stay where they are",
        r.pattern, r.service, r.target, r.failed_slots.size(), r.max_failures, pending);
  }
  if (r.state == fb::RolloutState::running || r.state == fb::RolloutState::paused) {
    if (flying == 0 && pending == 0) {
      r.state = fb::RolloutState::complete;
      log_->info("rollout {} {} -> {}: complete", r.pattern, r.service, r.target);
    } else if (flying == 0 && !r.pause.active()) {
      if (r.batches > 0 && r.batch_pause_s > 0) {
        r.state = fb::RolloutState::paused;
        r.pause = loop_.call_after(
            std::chrono::seconds(r.batch_pause_s), [this, key, w = std::weak_ptr<int>(life_)] {
              if (w.expired()) return;
              auto it = rollouts_.find(key);
              if (it == rollouts_.end() || it->second.state != fb::RolloutState::paused) return;
              it->second.state = fb::RolloutState::running;
              save_rollout(it->second);  // else a restart during this batch resumes it as paused
              pump(key);
            });
      } else {
        // Also a rollout loaded as paused: its pause timer died with the previous process
        // (and `batches` starts at 0 again), so the next batch starts now; pump() only runs a
        // running rollout, and a paused one would otherwise never move again.
        r.state = fb::RolloutState::running;
        if (prev != r.state) save_rollout(r);
        pump(key);
        return;  // pump settles again
      }
    }
  }
  if (prev != r.state) save_rollout(r);
  publish(key);
}

void rollout_controller::pump(const std::string& key) {
  auto it = rollouts_.find(key);
  if (it == rollouts_.end() || it->second.state != fb::RolloutState::running) return;
  auto& r = it->second;
  std::vector<std::pair<std::string, std::string>> batch;
  for (auto& [slot, n] : r.nodes) {
    if (batch.size() >= r.max_in_flight) break;
    if (n.state != rollout_node_state::pending) continue;
    n.state = rollout_node_state::in_flight;
    n.updated_ms = loop_.time().now_ms();
    save_node(r, slot, n);
    batch.emplace_back(slot, n.target);
  }
  if (batch.empty()) return settle(key);
  ++r.batches;
  peak_in_flight_ = std::max(peak_in_flight_, in_flight());
  log_->info("rollout {} {} -> {}: batch {} of {} node(s)", r.pattern, r.service, r.target,
             r.batches, batch.size());
  std::vector<std::string> refused;
  for (const auto& [slot, version] : batch)
    if (!hooks_.start_upgrade || !hooks_.start_upgrade(slot, version)) refused.push_back(slot);
  // The hooks may have re-entered (a fake that answers at once): look the rollout up again.
  for (const auto& slot : refused) on_abandoned(slot);
  publish(key);
}

void rollout_controller::publish(const std::string& key) {
  if (!hooks_.publish) return;
  auto& t = publish_timers_[key];
  if (t.active()) return;
  // Coalesced: one RPC per rollout at most every publish_delay, whatever the node count.
  t = loop_.call_after(publish_delay, [this, key, w = std::weak_ptr<int>(life_)] {
    if (w.expired()) return;
    auto it = rollouts_.find(key);
    if (it != rollouts_.end()) hooks_.publish(status_of(it->second));
  });
}

fb::RolloutStatusT rollout_controller::status_of(const rollout& r) const {
  fb::RolloutStatusT s;
  s.pattern = r.pattern;
  auto slash = r.service.find('/');
  s.service_org = r.service.substr(0, slash);
  s.service_url = slash == std::string::npos ? std::string{} : r.service.substr(slash + 1);
  s.agbot = agbot_;
  s.state = r.state;
  s.target_version = r.target;
  s.max_in_flight = r.max_in_flight;
  s.batch_pause_s = r.batch_pause_s;
  s.max_failures = r.max_failures;
  s.total_nodes = static_cast<uint32_t>(r.running.size());
  s.failed_nodes = static_cast<uint32_t>(r.failed_slots.size());
  s.rollout_nodes = static_cast<uint32_t>(r.nodes.size());
  // A halted rollout's pending nodes will not move: only its in-flight ones are still open.
  const bool halted = r.state == fb::RolloutState::halted;
  s.open_nodes =
      static_cast<uint32_t>(std::count_if(r.nodes.begin(), r.nodes.end(), [halted](const auto& kv) {
        return kv.second.state == rollout_node_state::in_flight ||
               (!halted && kv.second.state == rollout_node_state::pending);
      }));
  s.started_ms = r.started_ms;
  s.updated_ms = loop_.time().now_ms();
  std::map<std::string, fb::RolloutVersionStatusT> by;
  auto at = [&](const std::string& v) -> fb::RolloutVersionStatusT& {
    auto& e = by[v];
    e.version = v;
    return e;
  };
  if (const auto* ps = service_of(r.pattern, r.service))
    for (const auto* sv : versions_by_priority(*ps)) at(sv->version);
  for (const auto& [slot, v] : r.running) ++at(v).running;
  for (const auto& [slot, n] : r.nodes) {
    auto& e = at(n.target);
    switch (n.state) {
      case rollout_node_state::pending:
        ++e.pending;
        break;
      case rollout_node_state::in_flight:
        ++e.in_progress;
        break;
      case rollout_node_state::upgraded:
        ++e.upgraded;
        break;
      case rollout_node_state::failed:
        break;
      case rollout_node_state::rolled_back:
        ++e.rolled_back;
        break;
    }
  }
  for (const auto& [slot, versions] : failures_) {
    if (!r.nodes.count(slot)) continue;
    for (const auto& [v, f] : versions)
      if (f.failed) ++at(v).failed;
  }
  for (auto& [v, e] : by)
    s.versions.push_back(std::make_unique<fb::RolloutVersionStatusT>(std::move(e)));
  return s;
}

std::vector<fb::RolloutStatusT> rollout_controller::status() const {
  std::vector<fb::RolloutStatusT> out;
  for (const auto& [k, r] : rollouts_) out.push_back(status_of(r));
  return out;
}

void rollout_controller::save_rollout(const rollout& r) {
  if (!store_) return;
  rollout_record rec = r;
  rec.updated_ms = loop_.time().now_ms();
  if (auto e = store_->put_rollout(rollout_key(r.pattern, r.service), rec); !e)
    log_->error("rollout {}: not persisted: {}", r.pattern, e.err().message());
}

void rollout_controller::save_node(const rollout& r, const std::string& slot, const node_entry& n) {
  if (!store_) return;
  if (auto e = store_->put_node(rollout_key(r.pattern, r.service), slot, n); !e)
    log_->error("rollout {}: node {} not persisted: {}", r.pattern, slot, e.err().message());
}

void rollout_controller::save_failure(const std::string& slot, const std::string& version,
                                      const failure& f) {
  if (!store_) return;
  if (auto e = store_->put_failure(slot, version, f); !e)
    log_->error("rollout: failure of {} not persisted: {}", slot, e.err().message());
}

void rollout_controller::delete_node(const std::string& key, const std::string& slot) {
  if (store_) (void)store_->delete_node(key, slot);
}

void rollout_controller::delete_rollout(const std::string& key) {
  if (store_) (void)store_->delete_rollout(key);
}

}  // namespace hmq::agbot
