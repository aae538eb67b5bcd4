#include "agbot/engine.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "agbot/errc.h"
#include "agbot/resolver.h"

namespace hmq::agbot {
namespace {

using fb::AgreementState;

// Messages held until start() (engine::on_message); beyond this they are dropped and counted.
constexpr size_t max_before_start = 10000;

std::string node_pattern_key(const std::string& org, const std::string& id,
                             const std::string& pattern) {
  return org + "/" + id + "|" + pattern;
}

std::string slot_of(const std::string& node_org, const std::string& node_id,
                    const std::string& pattern, const std::string& service_org,
                    const std::string& service_url) {
  return node_org + "/" + node_id + "|" + pattern + "|" + service_org + "/" + service_url;
}

// Public keys are not secret: a plain comparison is fine.
bool same_key(const core::crypto::public_key& a, const core::crypto::public_key& b) {
  return a == b;
}

std::string str(const flatbuffers::String* s) {
  return s ? s->str() : std::string{};
}

}  // namespace

bool valid_agreement_id(std::string_view id) {
  if (id.size() != 32) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Wraps a callback so it does nothing once the engine is stopped or gone: the exchange client
// may complete a request after stop().
template <typename F>
auto engine::guard(F fn) {
  return [w = std::weak_ptr<int>(life_), fn = std::move(fn)](auto&&... args) mutable {
    if (w.expired()) return;
    fn(std::forward<decltype(args)>(args)...);
  };
}

engine::engine(core::loop::scheduler& loop, engine_config cfg, exchange_api& x, outbox& out,
               agreement_store& store, id_source ids)
    : loop_(loop),
      cfg_(std::move(cfg)),
      x_(x),
      out_(out),
      store_(store),
      ids_(std::move(ids)),
      log_(core::log::get("agbot")) {
  assert(ids_);
  rollout_controller::hooks h;
  h.start_upgrade = [this](const std::string& slot, const std::string& version) {
    return start_upgrade(slot, version);
  };
  h.publish = [this](const fb::RolloutStatusT& st) {
    x_.put_rollout_status(st, guard([this, p = st.pattern](core::result<void> r) {
                            if (!r) {
                              ++stats_.exchange_errors;
                              log_->warn("rollout {}: PutRolloutStatus failed ({})", p,
                                         r.err().message());
                            }
                          }));
  };
  rollout_ = std::make_unique<rollout_controller>(loop_, &store_.db(), cfg_.org + "/" + cfg_.id,
                                                  std::move(h));
}

engine::~engine() {
  stop();
}

void engine::start() {
  if (started_) return;
  started_ = true;
  if (auto r = rollout_->load(); !r) log_->error("cannot load rollouts: {}", r.err().message());
  resume();
  // Held by on_message(): a Reply among them now finds its resumed agreement instead of being
  // answered as if the agreement were over.
  auto held = std::move(before_start_);
  before_start_.clear();
  for (const auto& m : held) on_message(m);
  hello();
  arm_verify();
}

void engine::stop() {
  if (!life_) return;
  life_.reset();
  reply_timers_.clear();
  upgrade_timers_.clear();
  exchange_retries_.clear();
  backoffs_.clear();
  start_retry_.cancel();
  verify_timer_.cancel();
  queue_.clear();
  queued_.clear();
}

// ---------------------------------------------------------------------------------------------
// Start-up: resume from the store, then hello, patterns, search.

void engine::resume() {
  auto rows = store_.load_unsettled();
  if (!rows) {
    log_->error("cannot load agreements: {}", rows.err().message());
    return;
  }
  const int64_t now = loop_.time().now_ms();
  std::vector<std::string> expired;
  for (auto& a : *rows) {
    if (a.state == AgreementState::cancelled) {
      if (!a.message_confirmed) send_cancel(a);
      if (!a.exchange_synced) delete_in_exchange(a, 0);
      continue;
    }
    if (a.supersedes.empty())
      live_slots_[a.slot()] = a.id;
    else
      upgrade_slots_[a.slot()] = a.id;
    auto& stored = live_[a.id] = a;
    if (a.state == AgreementState::proposed) {
      ++proposed_count_;
      if (a.deadline_ms <= now) {
        expired.push_back(a.id);
        continue;
      }
      log_->info("agreement {} node {}: resumed as proposed, {} ms left", a.id, a.node(),
                 a.deadline_ms - now);
      reply_timers_[a.id] = loop_.call_after(std::chrono::milliseconds(a.deadline_ms - now),
                                             guard([this, id = a.id] { on_timeout(id); }));
      // Sent again even when the broker had confirmed it: the node's Reply may have reached the
      // process that died (acknowledged to the broker, never handled). The agent answers a
      // repeated proposal with the same Reply.
      send_proposal(stored);
    } else {
      log_->info("agreement {} node {}: resumed as finalized", a.id, a.node());
      if (!a.message_confirmed) send_reply_ack(stored, true, nullptr);
      if (!a.exchange_synced) record_in_exchange(a.id, 0);
      if (!a.supersedes.empty()) {
        // An upgrade the node has not confirmed yet: give it the full time again.
        upgrade_timers_[a.id] = loop_.call_after(
            cfg_.upgrade_timeout, guard([this, id = a.id] {
              auto it = live_.find(id);
              if (it == live_.end() || it->second.supersedes.empty()) return;
              log_->warn("agreement {} node {}: upgrade not confirmed in time", id,
                         it->second.node());
              agreement u = it->second;
              cancel(u, fb::CancelReason::ab_no_data_received, true);
              upgrade_failed(u, static_cast<uint16_t>(fb::CancelReason::ab_no_data_received), true);
            }));
      }
    }
  }
  resume_upgrades();
  // The reply timeout passed while we were down: cancel (201) and retry after back-off.
  for (const auto& id : expired) on_timeout(id);
}

void engine::on_reconnected() {
  if (!started_ || !life_) return;
  size_t n = 0;
  for (const auto& [id, a] : live_)
    if (a.state == AgreementState::proposed) {
      send_proposal(a);
      ++n;
    }
  if (n)
    log_->info("broker connection back: {} proposal(s) still waiting for a reply sent again", n);
}

void engine::retry_later(std::function<void()> fn) {
  start_retry_ = loop_.call_after(retry_delay(++hello_attempts_), guard(std::move(fn)));
}

void engine::hello() {
  x_.hello(guard([this](core::result<void> r) {
    if (!r) {
      ++stats_.exchange_errors;
      log_->warn("AgbotHello failed ({}), retrying", r.err().message());
      return retry_later([this] { hello(); });
    }
    load_agbot();
  }));
}

void engine::load_agbot() {
  x_.get_agbot(guard([this](core::result<fb::AgbotT> a) {
    if (!a) {
      ++stats_.exchange_errors;
      log_->warn("cannot read agbot {}/{} ({}), retrying", cfg_.org, cfg_.id, a.err().message());
      return retry_later([this] { load_agbot(); });
    }
    hello_attempts_ = 0;
    for (const auto& p : a->patterns) {
      if (!p) continue;
      auto key = p->pattern_org + "/" + p->pattern;
      patterns_[key].served = *p;
    }
    log_->info("serving {} pattern(s)", patterns_.size());
    auto remaining = std::make_shared<size_t>(patterns_.size() + 1);
    auto one_done = [this, remaining] {
      if (--*remaining > 0) return;
      patterns_loaded_ = true;
      auto early = std::move(early_);
      early_.clear();
      for (auto& r : early) enqueue(std::move(r));
      for (auto& [key, pe] : patterns_)
        if (pe.pattern) {
          ++searches_pending_;
          search(key, {});
        }
    };
    for (auto& [key, pe] : patterns_) load_pattern(key, one_done);
    one_done();
  }));
}

void engine::load_pattern(const std::string& key, std::function<void()> done) {
  auto& served = patterns_[key].served;
  x_.get_pattern(
      served.pattern_org, served.pattern,
      guard([this, key, done = std::move(done)](core::result<fb::PatternT> p) {
        auto& pe = patterns_[key];
        if (!p) {
          ++stats_.exchange_errors;
          log_->warn("pattern {}: cannot load ({}); its nodes are ignored", key, p.err().message());
        } else {
          pe.pattern = std::move(*p);
          ++pe.generation;
          pe.resolved.clear();
          log_->info("pattern {}: loaded, {} service(s)", key, pe.pattern->services.size());
          replan(key);
        }
        if (done) done();
      }));
}

void engine::search(const std::string& key, std::string token) {
  auto& served = patterns_[key].served;
  x_.search_pattern_nodes(
      served, token, cfg_.page_size, guard([this, key, token](core::result<node_page> page) {
        if (!page) {
          ++stats_.exchange_errors;
          log_->warn("pattern {}: node search failed ({}), retrying", key, page.err().message());
          start_retry_ =
              loop_.call_after(retry_delay(1), guard([this, key, token] { search(key, token); }));
          return;
        }
        log_->debug("pattern {}: {} node(s) in page", key, page->nodes.size());
        for (auto& n : page->nodes) {
          consider_request r{n.org, n.id, key, std::move(n), {}};
          enqueue(std::move(r));
        }
        if (!page->next_page_token.empty() && page->next_page_token != token)
          return search(key, page->next_page_token);
        if (searches_pending_ > 0) --searches_pending_;
        log_->info("pattern {}: initial node search done", key);
      }));
}

// ---------------------------------------------------------------------------------------------
// Node evaluation, bounded by max_concurrent.

void engine::enqueue(consider_request r) {
  if (!life_) return;
  auto key = node_pattern_key(r.node_org, r.node_id, r.pattern);
  if (queued_.count(key)) {
    // Already waiting: keep the newer copy of the node (an event's inputs are a snapshot).
    for (auto& q : queue_)
      if (q.node_org == r.node_org && q.node_id == r.node_id && q.pattern == r.pattern && r.node)
        q = std::move(r);
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

// ---------------------------------------------------------------------------------------------
// Messages.

void engine::send_proposal(const agreement& a) {
  auto bytes = a.proposal;
  flatbuffers::Verifier v(bytes.data(), bytes.size());
  if (bytes.empty() || !v.VerifyBuffer<fb::Proposal>(nullptr)) {
    log_->error("agreement {} node {}: stored proposal unreadable", a.id, a.node());
    return;
  }
  out_.send(
      a.node_key, fb::Body::Proposal,
      [bytes](flatbuffers::FlatBufferBuilder& b) {
        std::unique_ptr<fb::ProposalT> obj(
            flatbuffers::GetRoot<fb::Proposal>(bytes.data())->UnPack());
        return fb::Proposal::Pack(b, obj.get()).Union();
      },
      expiry_s(), guard([this, id = a.id](bool ok) {
        if (ok) (void)store_.set_message_confirmed(id);
      }));
}

void engine::send_reply_ack(const agreement& a, bool still_valid, const core::wire::opened* reply) {
  auto body = [id = a.id, still_valid](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateReplyAckDirect(b, id.c_str(), still_valid).Union();
  };
  if (reply) return out_.reply(*reply, fb::Body::ReplyAck, body);
  out_.send(a.node_key, fb::Body::ReplyAck, body, 0, guard([this, id = a.id](bool ok) {
              if (ok) (void)store_.set_message_confirmed(id);
            }));
}

void engine::send_cancel(const agreement& a) {
  out_.send(
      a.node_key, fb::Body::Cancel,
      [id = a.id, reason = a.reason](flatbuffers::FlatBufferBuilder& b) {
        return fb::CreateCancelDirect(
                   b, id.c_str(), static_cast<fb::CancelReason>(reason),
                   fb::EnumNameCancelReason(static_cast<fb::CancelReason>(reason)))
            .Union();
      },
      0, guard([this, id = a.id](bool ok) {
        if (ok) (void)store_.set_message_confirmed(id);
      }));
}

void engine::on_message(const core::wire::opened& m) {
  if (!life_) return;
  if (!started_) {
    if (before_start_.size() < max_before_start) {
      before_start_.push_back(m);
    } else {
      ++stats_.dropped_before_start;  // a flood before start-up: the senders retry
    }
    return;
  }
  const auto* msg = m.message();
  switch (msg->body_type()) {
    case fb::Body::Event:
      return on_event(m, *msg->body_as_Event());
    case fb::Body::Reply:
      return on_reply(m, *msg->body_as_Reply());
    case fb::Body::Cancel:
      return on_cancel(m, *msg->body_as_Cancel());
    case fb::Body::AgreementVerify:
      return on_verify(m, *msg->body_as_AgreementVerify());
    case fb::Body::AgreementVerifyReply:
      return on_verify_reply(m, *msg->body_as_AgreementVerifyReply());
    default:
      ++stats_.dropped_invalid;
      log_->debug("dropped message with body {}", fb::EnumNameBody(msg->body_type()));
  }
}

void engine::on_event(const core::wire::opened& m, const fb::Event& e) {
  if (!same_key(m.sender, cfg_.exchange_key)) {
    ++stats_.dropped_wrong_sender;
    log_->warn("dropped event not sent by the exchange");
    return;
  }
  ++stats_.events;
  const std::string org = str(e.org()), id = str(e.id()), pattern = str(e.pattern());
  switch (e.kind()) {
    case fb::EventKind::node_registered: {
      fb::NodeT hint;
      hint.org = org;
      hint.id = id;
      hint.pattern = pattern;
      hint.arch = str(e.node_arch());
      hint.mailbox = str(e.node_mailbox());
      if (e.node_public_key())
        hint.public_key.assign(e.node_public_key()->begin(), e.node_public_key()->end());
      consider_request r{org, id, pattern, {}, {}};
      if (e.has_node_user_inputs()) {
        // The event carries all evaluate() needs: propose without fetching the node (one bus
        // round trip less between registration and agreement).
        if (e.node_user_inputs())
          for (const auto* ui : *e.node_user_inputs())
            if (ui)
              hint.user_inputs.push_back(std::unique_ptr<fb::ServiceUserInputT>(ui->UnPack()));
        r.node = std::move(hint);
      } else {
        r.hint = std::move(hint);  // from an older exchange: look the node up for its inputs
      }
      log_->info("node {}/{}: registered for {}", org, id, pattern);
      if (!patterns_loaded_) return early_.push_back(std::move(r));
      if (!patterns_.count(pattern)) {
        ++stats_.events_ignored;
        return;
      }
      return enqueue(std::move(r));
    }
    case fb::EventKind::node_unregistered: {
      // The node is gone: cancel locally, nobody to tell; the exchange dropped its records.
      std::vector<agreement> gone;
      for (const auto& [aid, a] : live_)
        if (a.node_org == org && a.node_id == id) gone.push_back(a);
      for (auto& a : gone) {
        a.exchange_synced = true;
        log_->info("agreement {} node {}: node unregistered", a.id, a.node());
        auto slot = a.slot();
        cancel(std::move(a), fb::CancelReason::user_requested, false);
        rollout_->on_abandoned(slot);
      }
      const std::string prefix = org + "/" + id + "|";
      std::erase_if(backoffs_, [&](const auto& kv) { return kv.first.starts_with(prefix); });
      return;
    }
    case fb::EventKind::pattern_changed: {
      auto key = org + "/" + id;
      if (!patterns_.count(key)) {
        ++stats_.events_ignored;
        return;
      }
      log_->info("pattern {}: changed, reloading", key);
      return load_pattern(key, {});
    }
    case fb::EventKind::node_offline:
      // Its last will: the node may only be restarting. Agreements stay until it is stale.
      log_->info("node {}/{}: offline (last will), waiting for its heartbeat", org, id);
      return;
    case fb::EventKind::node_stale:
      if (!patterns_.count(pattern)) {
        ++stats_.events_ignored;
        return;
      }
      return on_node_stale(org, id);
    case fb::EventKind::node_online: {
      if (!patterns_.count(pattern)) {
        ++stats_.events_ignored;
        return;
      }
      fb::NodeT hint;
      hint.org = org;
      hint.id = id;
      hint.pattern = pattern;
      hint.arch = str(e.node_arch());
      hint.mailbox = str(e.node_mailbox());
      if (e.node_public_key())
        hint.public_key.assign(e.node_public_key()->begin(), e.node_public_key()->end());
      return on_node_online(consider_request{org, id, pattern, {}, std::move(hint)});
    }
    case fb::EventKind::service_changed:
    case fb::EventKind::service_removed:
      for (auto& [key, pe] : patterns_) {
        pe.resolved.clear();
        ++pe.generation;
      }
      if (e.kind() == fb::EventKind::service_changed) on_service_changed(org, id);
      return;
    default:
      ++stats_.events_ignored;
  }
}

void engine::on_reply(const core::wire::opened& m, const fb::Reply& r) {
  const std::string id = str(r.agreement_id());
  if (!valid_agreement_id(id) || r.decision() == fb::ReplyDecision::unspecified ||
      (r.decision() != fb::ReplyDecision::accept && r.decision() != fb::ReplyDecision::reject)) {
    ++stats_.dropped_invalid;
    return;
  }
  const bool accept = r.decision() == fb::ReplyDecision::accept;
  auto it = live_.find(id);
  if (it == live_.end()) {
    auto stored = store_.get(id);
    if (!stored || !*stored) {
      ++stats_.dropped_unknown;
      return;
    }
    if (!same_key(m.sender, (*stored)->node_key)) {
      ++stats_.dropped_wrong_sender;
      log_->warn("agreement {} node {}: reply from another key dropped", id, (*stored)->node());
      return;
    }
    // A late or repeated reply for an agreement that is over: tell an accepting node so.
    if (accept) {
      ++stats_.duplicates_answered;
      log_->info("agreement {} node {}: reply after cancel, answering still_valid=false", id,
                 (*stored)->node());
      send_reply_ack(**stored, false, &m);
    }
    return;
  }
  agreement& a = it->second;
  if (!same_key(m.sender, a.node_key)) {
    ++stats_.dropped_wrong_sender;
    log_->warn("agreement {} node {}: reply from another key dropped", id, a.node());
    return;
  }
  if (a.state == AgreementState::finalized) {
    if (accept) {
      ++stats_.duplicates_answered;
      send_reply_ack(a, true, &m);
    }
    return;
  }
  if (accept) return finalize(a, m);
  ++stats_.negative_replies;
  log_->info("agreement {} node {}: rejected ({} {}: {})", id, a.node(),
             static_cast<int>(r.reason()), fb::EnumNameCancelReason(r.reason()), str(r.message()));
  if (node_reasons_.emplace(id, static_cast<uint16_t>(r.reason())).second) {
    node_reason_order_.push_back(id);
    if (node_reason_order_.size() > 1024) {
      node_reasons_.erase(node_reason_order_.front());
      node_reason_order_.pop_front();
    }
  }
  auto slot = a.slot();
  auto node_org = a.node_org, node_id = a.node_id, pattern = a.pattern;
  a.exchange_synced = true;
  agreement copy = a;
  cancel(a, fb::CancelReason::ab_negative_reply, false);
  if (!copy.supersedes.empty())
    return upgrade_failed(copy, static_cast<uint16_t>(r.reason()), false);
  backoff(slot, node_org, node_id, pattern);
}

void engine::finalize(agreement& a, const core::wire::opened& reply) {
  a.state = AgreementState::finalized;
  a.updated_ms = loop_.time().now_ms();
  a.deadline_ms = 0;
  a.message_confirmed = false;
  a.exchange_synced = false;
  if (!persist(a)) return;  // stays proposed in memory; the timeout will clean up
  reply_timers_.erase(a.id);
  if (proposed_count_ > 0) --proposed_count_;
  backoffs_.erase(a.slot());
  ++stats_.finalized;
  log_->info("agreement {} node {}: finalized{}", a.id, a.node(),
             a.supersedes.empty() ? "" : " (upgrade)");
  if (a.supersedes.empty()) {
    rollout_->on_running(a.slot(), a.service_version);
  } else {
    upgrade_timers_[a.id] = loop_.call_after(
        cfg_.upgrade_timeout, guard([this, id = a.id] {
          auto it = live_.find(id);
          if (it == live_.end() || it->second.supersedes.empty()) return;
          log_->warn("agreement {} node {}: upgrade not confirmed within {} ms, cancelling", id,
                     it->second.node(), cfg_.upgrade_timeout.count());
          agreement u = it->second;
          cancel(u, fb::CancelReason::ab_no_data_received, true);
          upgrade_failed(u, static_cast<uint16_t>(fb::CancelReason::ab_no_data_received), true);
        }));
  }
  send_reply_ack(a, true, nullptr);
  // The reply() path has no completion; send() above confirms. Duplicates use reply().
  (void)reply;
  record_in_exchange(a.id, 0);
  pump();
}

void engine::on_cancel(const core::wire::opened& m, const fb::Cancel& c) {
  const std::string id = str(c.agreement_id());
  if (!valid_agreement_id(id) || c.reason() == fb::CancelReason::unspecified) {
    ++stats_.dropped_invalid;
    return;
  }
  auto it = live_.find(id);
  if (it == live_.end()) {
    auto stored = store_.get(id);
    if (!stored || !*stored)
      ++stats_.dropped_unknown;
    else
      ++stats_.duplicates_answered;  // already cancelled: nothing changes
    return;
  }
  agreement a = it->second;
  if (!same_key(m.sender, a.node_key)) {
    ++stats_.dropped_wrong_sender;
    log_->warn("agreement {} node {}: cancel from another key dropped", id, a.node());
    return;
  }
  ++stats_.node_cancels;
  log_->info("agreement {} node {}: cancelled by node ({} {}: {})", id, a.node(),
             static_cast<int>(c.reason()), fb::EnumNameCancelReason(c.reason()), str(c.message()));
  a.exchange_synced = a.state != AgreementState::finalized;
  auto slot = a.slot();
  if (!a.supersedes.empty()) {
    // The node gave up on the upgrade (reject after accept, crash loop in the verification
    // window): it restored the agreement this one superseded.
    const bool after_swap = a.state == AgreementState::finalized;
    agreement copy = a;
    cancel(a, c.reason(), false);
    return upgrade_failed(copy, static_cast<uint16_t>(c.reason()), after_swap);
  }
  if (c.reason() == fb::CancelReason::ab_upgrade_superseded) {
    auto up = upgrade_slots_.find(slot);
    if (up != upgrade_slots_.end()) {
      auto u = live_.find(up->second);
      if (u != live_.end() && u->second.state == AgreementState::finalized &&
          u->second.supersedes == a.id) {
        cancel(a, c.reason(), false);
        return upgrade_succeeded(id);
      }
    }
  }
  cancel(a, c.reason(), false);
  rollout_->on_running(slot, {});
  backoff(slot, a.node_org, a.node_id, a.pattern);
}

void engine::on_verify(const core::wire::opened& m, const fb::AgreementVerify& v) {
  const std::string id = str(v.agreement_id());
  if (!valid_agreement_id(id)) {
    ++stats_.dropped_invalid;
    return;
  }
  bool exists = false;
  if (auto it = live_.find(id); it != live_.end()) {
    if (!same_key(m.sender, it->second.node_key)) {
      ++stats_.dropped_wrong_sender;
      return;
    }
    exists = true;
  } else if (auto stored = store_.get(id);
             stored && *stored && !same_key(m.sender, (*stored)->node_key)) {
    ++stats_.dropped_wrong_sender;
    return;
  }
  out_.reply(m, fb::Body::AgreementVerifyReply, [id, exists](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateAgreementVerifyReplyDirect(b, id.c_str(), exists).Union();
  });
}

void engine::on_timeout(const std::string& id) {
  auto it = live_.find(id);
  if (it == live_.end() || it->second.state != AgreementState::proposed) return;
  agreement a = it->second;
  ++stats_.reply_timeouts;
  log_->info("agreement {} node {}: no reply within {} ms, cancelling", a.id, a.node(),
             cfg_.reply_timeout.count());
  auto slot = a.slot();
  a.exchange_synced = true;  // never recorded in the exchange
  agreement copy = a;
  cancel(a, fb::CancelReason::ab_no_reply, true);
  if (!copy.supersedes.empty())
    return upgrade_failed(copy, static_cast<uint16_t>(fb::CancelReason::ab_no_reply), false);
  backoff(slot, a.node_org, a.node_id, a.pattern);
}

// ---------------------------------------------------------------------------------------------
// State changes.

bool engine::persist(agreement& a) {
  if (auto r = store_.update(a); !r) {
    log_->error("agreement {} node {}: cannot persist state {}: {}", a.id, a.node(),
                fb::EnumNameAgreementState(a.state), r.err().message());
    return false;
  }
  return true;
}

// `a.exchange_synced` says on entry whether the exchange needs no DeleteAgreement.
void engine::cancel(agreement a, fb::CancelReason reason, bool notify_node) {
  const bool was_proposed = a.state == AgreementState::proposed;
  a.state = AgreementState::cancelled;
  a.reason = static_cast<uint16_t>(reason);
  a.updated_ms = loop_.time().now_ms();
  a.deadline_ms = 0;
  a.message_confirmed = !notify_node;
  if (!persist(a)) return;
  live_.erase(a.id);
  if (auto s = live_slots_.find(a.slot()); s != live_slots_.end() && s->second == a.id)
    live_slots_.erase(s);
  if (auto s = upgrade_slots_.find(a.slot()); s != upgrade_slots_.end() && s->second == a.id)
    upgrade_slots_.erase(s);
  upgrade_timers_.erase(a.id);
  reply_timers_.erase(a.id);
  exchange_retries_.erase(a.id);
  if (was_proposed && proposed_count_ > 0) --proposed_count_;
  log_->info("agreement {} node {}: cancelled ({} {})", a.id, a.node(), static_cast<int>(reason),
             fb::EnumNameCancelReason(reason));
  if (notify_node) send_cancel(a);
  if (!a.exchange_synced) delete_in_exchange(a, 0);
  pump();
}

void engine::record_in_exchange(const std::string& id, int attempt) {
  auto it = live_.find(id);
  if (it == live_.end() || it->second.state != AgreementState::finalized) return;
  const auto& a = it->second;
  fb::AgreementRecordT rec;
  rec.agreement_id = a.id;
  rec.node_org = a.node_org;
  rec.node_id = a.node_id;
  rec.pattern = a.pattern;
  rec.service_url = a.service_url;
  rec.service_org = a.service_org;
  rec.service_version = a.service_version;
  rec.agbot = cfg_.org + "/" + cfg_.id;
  rec.state = AgreementState::finalized;
  rec.updated_ms = a.updated_ms;
  x_.put_agreement(
      rec, guard([this, id, attempt](core::result<void> r) {
        if (r) {
          (void)store_.set_exchange_synced(id);
          if (auto it = live_.find(id); it != live_.end()) it->second.exchange_synced = true;
          return;
        }
        ++stats_.exchange_errors;
        log_->warn("agreement {}: PutAgreement failed ({}), retrying", id, r.err().message());
        exchange_retries_[id] =
            loop_.call_after(retry_delay(attempt + 1),
                             guard([this, id, attempt] { record_in_exchange(id, attempt + 1); }));
      }));
}

void engine::delete_in_exchange(agreement a, int attempt) {
  x_.delete_agreement(a.node_org, a.node_id, a.id, guard([this, a, attempt](core::result<void> r) {
                        if (r || r.code() == make_error_code(errc::not_found)) {
                          (void)store_.set_exchange_synced(a.id);
                          return;
                        }
                        ++stats_.exchange_errors;
                        log_->warn("agreement {} node {}: DeleteAgreement failed ({}), retrying",
                                   a.id, a.node(), r.err().message());
                        exchange_retries_[a.id] = loop_.call_after(
                            retry_delay(attempt + 1),
                            guard([this, a, attempt] { delete_in_exchange(a, attempt + 1); }));
                      }));
}

std::chrono::milliseconds engine::retry_delay(int attempt) const {
  auto d = cfg_.retry_min;
  for (int i = 1; i < attempt && d < cfg_.retry_max; ++i) d *= 2;
  return std::min(d, cfg_.retry_max);
}

void engine::backoff(const std::string& slot, const std::string& node_org,
                     const std::string& node_id, const std::string& pattern) {
  if (!life_) return;
  auto& b = backoffs_[slot];
  ++b.attempts;
  auto delay = retry_delay(b.attempts);
  log_->info("node {}/{}: next proposal for {} in {} ms (attempt {})", node_org, node_id, pattern,
             delay.count(), b.attempts + 1);
  b.timer = loop_.call_after(delay, guard([this, node_org, node_id, pattern] {
                               enqueue({node_org, node_id, pattern, {}, {}});
                             }));
}

bool engine::backing_off(const std::string& slot) const {
  auto it = backoffs_.find(slot);
  return it != backoffs_.end() && it->second.timer.active();
}

uint32_t engine::expiry_s() const {
  auto s = (cfg_.reply_timeout.count() + 999) / 1000;
  return static_cast<uint32_t>(std::max<int64_t>(s, 1));
}

std::optional<uint16_t> engine::node_reason(const std::string& id) const {
  auto it = node_reasons_.find(id);
  if (it == node_reasons_.end()) return std::nullopt;
  return it->second;
}

bool engine::cancel_agreement(const std::string& id) {
  auto it = live_.find(id);
  if (it == live_.end()) return false;
  agreement a = it->second;
  log_->info("agreement {} node {}: cancel requested by the operator", a.id, a.node());
  cancel(a, fb::CancelReason::ab_user_requested, true);
  backoff(a.slot(), a.node_org, a.node_id, a.pattern);
  return true;
}

std::vector<agreement> engine::live_agreements() const {
  std::vector<agreement> out;
  for (const auto& [id, a] : live_) out.push_back(a);
  std::sort(out.begin(), out.end(),
            [](const auto& x, const auto& y) { return x.created_ms < y.created_ms; });
  return out;
}

}  // namespace hmq::agbot
