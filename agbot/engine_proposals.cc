// Node evaluation and proposals (docs/protocol.md steps 1-2): which node gets a proposal for
// which service and version, bounded by engine_config::max_concurrent, and how the Proposal is
// built and persisted before it is sent.
#include <algorithm>

#include "agbot/engine.h"
#include "agbot/errc.h"
#include "agbot/resolver.h"

namespace hmq::agbot {
namespace {

using fb::AgreementState;

std::string node_pattern_key(const std::string& org, const std::string& id,
                             const std::string& pattern) {
  return org + "/" + id + "|" + pattern;
}

std::string slot_of(const std::string& node_org, const std::string& node_id,
                    const std::string& pattern, const std::string& service_org,
                    const std::string& service_url) {
  return node_org + "/" + node_id + "|" + pattern + "|" + service_org + "/" + service_url;
}

}  // namespace

void engine::enqueue(consider_request r) {
  if (!life_) return;
  auto key = node_pattern_key(r.node_org, r.node_id, r.pattern);
  if (queued_.count(key)) {
    // Already waiting: keep the newer copy of the node (an event's inputs are a snapshot).
    for (auto& q : queue_)
      if (q.node_org == r.node_org && q.node_id == r.node_id && q.pattern == r.pattern && r.node) {
        q = std::move(r);
        break;  // queued_ holds one entry per key; r is moved-from now
      }
    return;
  }
  queued_.insert(key);
  queue_.push_back(std::move(r));
  pump();
}

void engine::pump() {
  while (life_ && !queue_.empty() && active() < std::max<size_t>(cfg_.max_concurrent, 1)) {
    auto r = std::move(queue_.front());
    queue_.pop_front();
    queued_.erase(node_pattern_key(r.node_org, r.node_id, r.pattern));
    begin(std::move(r));
  }
}

void engine::begin(consider_request r) {
  ++evaluating_;
  if (r.node) return evaluate(std::move(*r.node), r.pattern);
  x_.get_node(r.node_org, r.node_id, guard([this, r](core::result<fb::NodeT> n) mutable {
                if (n) return evaluate(std::move(*n), r.pattern);
                if (n.code() != make_error_code(errc::not_found) && r.hint) {
                  ++stats_.exchange_errors;
                  return evaluate(std::move(*r.hint), r.pattern);
                }
                log_->info("node {}/{}: not proposed to ({})", r.node_org, r.node_id,
                           n.err().message());
                ++stats_.nodes_not_eligible;
                evaluation_done();
              }));
}

void engine::evaluation_done() {
  if (evaluating_ > 0) --evaluating_;
  pump();
}

void engine::evaluate(fb::NodeT node, const std::string& pattern_key) {
  const std::string who = node.org + "/" + node.id;
  auto it = patterns_.find(pattern_key);
  auto not_eligible = [&](const char* why) {
    log_->debug("node {}: not eligible for {}: {}", who, pattern_key, why);
    ++stats_.nodes_not_eligible;
    evaluation_done();
  };
  if (it == patterns_.end() || !it->second.pattern) return not_eligible("pattern not served");
  if (node_stale(node.org, node.id)) return not_eligible("stale: waiting for its heartbeat");
  if (node.pattern != pattern_key) return not_eligible("registered for another pattern");
  const auto& served = it->second.served;
  if (!served.node_org.empty() && served.node_org != node.org)
    return not_eligible("node org not served");
  if (node.arch.empty()) return not_eligible("no arch");
  if (node.public_key.size() != core::crypto::public_key_size) {
    // The node resource carries no key (yet): ask the switchboard once.
    return x_.get_node_key(node.org, node.id, guard([this, node, pattern_key](auto k) mutable {
                             if (!k) {
                               ++stats_.nodes_not_eligible;
                               log_->info("node {}/{}: no public key ({})", node.org, node.id,
                                          k.err().message());
                               return evaluation_done();
                             }
                             node.public_key.assign(k->begin(), k->end());
                             evaluate(std::move(node), pattern_key);
                           }));
  }

  // One agreement per top-level service of the pattern that runs on this arch.
  auto pending = std::make_shared<size_t>(1);
  auto one_done = [this, pending] {
    if (--*pending == 0) evaluation_done();
  };
  size_t candidates = 0;
  for (const auto& ps : it->second.pattern->services) {
    if (!ps || ps->agreement_less || !arch_matches(ps->service_arch, node.arch)) continue;
    ++candidates;
    auto slot = slot_of(node.org, node.id, pattern_key, ps->service_org, ps->service_url);
    if (live_slots_.count(slot) || preparing_.count(slot) || backing_off(slot)) continue;
    auto version = rollout_->version_for(slot, *ps);
    if (version.empty()) version = preferred_version(*ps);
    if (version.empty()) {
      log_->warn("pattern {}: service {} lists no version", pattern_key, ps->service_url);
      continue;
    }
    ++*pending;
    propose(slot, node, pattern_key, *ps, version, one_done);
  }
  if (candidates == 0) {
    ++stats_.nodes_not_eligible;
    log_->info("node {}: no service of {} for arch {}", who, pattern_key, node.arch);
  }
  one_done();
}

void engine::propose(const std::string& slot, const fb::NodeT& node, const std::string& pattern_key,
                     const fb::PatternServiceT& ps, const std::string& version,
                     std::function<void()> done, const std::string& supersedes) {
  preparing_.insert(slot);
  auto& pe = patterns_[pattern_key];
  auto cache_key = ps.service_org + "/" + ps.service_url + "|" + version + "|" + node.arch;
  if (auto c = pe.resolved.find(cache_key); c != pe.resolved.end()) {
    preparing_.erase(slot);
    build_and_send(slot, node, pattern_key, ps, *c->second, supersedes);
    return done();
  }
  resolve_services(
      x_, ps.service_org, ps.service_url, version, node.arch,
      guard([this, slot, node, pattern_key, ps, cache_key, gen = pe.generation, supersedes, version,
             done = std::move(done)](core::result<std::vector<fb::ServiceT>> services) {
        preparing_.erase(slot);
        auto& pe = patterns_[pattern_key];
        if (!services) {
          ++stats_.prepare_failures;
          log_->warn("node {}/{}: cannot build proposal for {} {}: {}", node.org, node.id,
                     pattern_key, ps.service_url, services.err().message());
          if (!supersedes.empty()) {
            rollout_->on_failed(slot, version, 0, false);
            return done();
          }
          backoff(slot, node.org, node.id, pattern_key);
          return done();
        }
        auto shared = std::make_shared<const std::vector<fb::ServiceT>>(std::move(*services));
        if (gen == pe.generation) pe.resolved[cache_key] = shared;
        // The slot may have been taken while we were resolving (another event for the node).
        if (supersedes.empty() && !live_slots_.count(slot) && !backing_off(slot))
          build_and_send(slot, node, pattern_key, ps, *shared);
        else if (!supersedes.empty()) {
          auto cur = live_slots_.find(slot);
          if (cur != live_slots_.end() && cur->second == supersedes && !upgrade_slots_.count(slot))
            build_and_send(slot, node, pattern_key, ps, *shared, supersedes);
          else
            rollout_->on_abandoned(slot);
        }
        done();
      }));
}

void engine::build_and_send(const std::string& slot, const fb::NodeT& node,
                            const std::string& pattern_key, const fb::PatternServiceT& ps,
                            const std::vector<fb::ServiceT>& services,
                            const std::string& supersedes) {
  const auto& pattern = *patterns_[pattern_key].pattern;
  const int64_t now = loop_.time().now_ms();
  agreement a;
  a.id = ids_();
  a.node_org = node.org;
  a.node_id = node.id;
  a.pattern = pattern_key;
  a.service_org = ps.service_org;
  a.service_url = ps.service_url;
  a.service_version = services.front().version;
  a.arch = node.arch;
  std::copy(node.public_key.begin(), node.public_key.end(), a.node_key.begin());
  a.state = AgreementState::proposed;
  a.created_ms = a.updated_ms = now;
  a.deadline_ms = now + cfg_.reply_timeout.count();
  a.supersedes = supersedes;

  fb::ProposalT p;
  p.supersedes = supersedes;
  p.agreement_id = a.id;
  p.pattern = pattern_key;
  p.node_org = node.org;
  p.node_id = node.id;
  p.arch = node.arch;
  p.agbot = cfg_.org + "/" + cfg_.id;
  p.node_health =
      std::make_unique<fb::NodeHealthT>(ps.node_health ? *ps.node_health : fb::NodeHealthT{});
  for (size_t i = 0; i < services.size(); ++i) {
    auto s = std::make_unique<fb::ProposedServiceT>();
    s->service = std::make_unique<fb::ServiceT>(services[i]);
    for (auto& v : resolve_user_inputs(services[i], pattern, node))
      s->user_inputs.push_back(std::make_unique<fb::UserInputValueT>(std::move(v)));
    s->is_top_level = i == 0;
    p.services.push_back(std::move(s));
  }
  flatbuffers::FlatBufferBuilder b;
  b.Finish(fb::Proposal::Pack(b, &p));
  a.proposal.assign(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  // The Verifier also checks each nested Deployment: never propose bytes no agent can read.
  flatbuffers::Verifier v(a.proposal.data(), a.proposal.size());
  if (!v.VerifyBuffer<fb::Proposal>(nullptr)) {
    ++stats_.prepare_failures;
    log_->warn("agreement {} node {}: a service of {} has an unreadable deployment; not proposed",
               a.id, a.node(), pattern_key);
    if (!supersedes.empty()) return rollout_->on_failed(slot, a.service_version, 0, false);
    backoff(slot, a.node_org, a.node_id, pattern_key);
    return;
  }

  // Persist before sending (docs/protocol.md): a crash after this line resumes the proposal.
  if (auto r = store_.insert(a); !r) {
    ++stats_.prepare_failures;
    log_->error("agreement {} node {}: not persisted, not proposed: {}", a.id, a.node(),
                r.err().message());
    if (!supersedes.empty()) rollout_->on_abandoned(slot);
    return;
  }
  if (supersedes.empty()) {
    live_slots_[slot] = a.id;
  } else {
    upgrade_slots_[slot] = a.id;
    ++stats_.upgrades_proposed;
  }
  auto& stored = live_[a.id] = std::move(a);
  ++proposed_count_;
  reply_timers_[stored.id] =
      loop_.call_after(cfg_.reply_timeout, guard([this, id = stored.id] { on_timeout(id); }));
  log_->info("agreement {} node {}: proposing {} {} ({} service(s)){}{}", stored.id, stored.node(),
             stored.service_url, stored.service_version, services.size(),
             supersedes.empty() ? "" : ", superseding ", supersedes);
  send_proposal(stored);
  ++stats_.proposals_sent;
}

}  // namespace hmq::agbot
