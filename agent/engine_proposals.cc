// A Proposal, from its arrival to the agent's Reply (docs/protocol.md step 3): is the sender the
// agbot it names (the exchange's key for it, cached), and does the node take it (pattern, arch,
// signatures, trust store, sharing, user inputs, agreement limit)? An accepted agreement is
// persisted before the Reply goes out.
#include <algorithm>

#include "agent/engine.h"
#include "agent/engine_internal.h"
#include "agent/reasons.h"
#include "core/wire/service_signature.h"
#include "core/wire/user_input.h"
#include "exchange_client/ids.h"

namespace hmq::agent {
using namespace engine_internal;  // the engine files' shared helpers
namespace {

bool same_service(const fb::Service& a, const fb::Service& b) {
  return str(a.org()) == str(b.org()) && str(a.url()) == str(b.url());
}

const fb::UserInputDef* declared(const fb::Service& s, std::string_view input) {
  if (s.user_inputs())
    for (const auto* d : *s.user_inputs())
      if (d && d->name() && d->name()->string_view() == input) return d;
  return nullptr;
}

// The proposed values of a service's inputs against what its signed definition declares: only
// declared inputs, each of its declared type, and a value for every input without a default.
// Anything else (LD_PRELOAD, PATH, a word for an int) is refused: the values become the
// containers' environment.
std::optional<std::string> check_inputs(const fb::ProposedService& ps, const fb::Service& s,
                                        const std::string& name) {
  if (ps.user_inputs())
    for (const auto* v : *ps.user_inputs()) {
      if (!v) continue;
      const std::string input = str(v->name());
      const auto* def = declared(s, input);
      if (!def) return "user input " + input.substr(0, 64) + " is not declared by service " + name;
      if (auto why = core::wire::typed_value_error(str(def->type()), str(v->value())))
        return "user input " + input + " of service " + name + " " + *why;
    }
  // Every input without a default needs a value.
  if (s.user_inputs())
    for (const auto* def : *s.user_inputs()) {
      if (!def || def->has_default()) continue;
      bool found = false;
      if (ps.user_inputs())
        for (const auto* v : *ps.user_inputs())
          if (v && v->value() && str(v->name()) == str(def->name())) found = true;
      if (!found)
        return "required user input " + str(def->name()) + " of service " + name + " has no value";
    }
  return std::nullopt;
}

}  // namespace

void engine::on_proposal(const core::wire::opened& m) {
  ++stats_.proposals;
  const auto* p = m.message()->body_as_Proposal();
  if (!p || !p->agreement_id() || !valid_agreement_id(p->agreement_id()->string_view())) {
    ++stats_.dropped_malformed;
    lg()->warn("dropped proposal without a valid agreement id");
    return;
  }
  std::string id = p->agreement_id()->str();
  if (auto it = agreements_.find(id); it != agreements_.end()) {
    auto& a = it->second;
    if (!crypto::equal(a.agbot_key, m.sender)) {
      ++stats_.dropped_not_owner;
      lg()->warn("agreement {}: dropped proposal from a key that did not propose it", id);
      return;
    }
    // Answered, not re-processed: the agbot gets the same Reply it got (or should have got).
    ++stats_.duplicates;
    if (is_live(a.state)) {
      lg()->info("agreement {}: re-delivered proposal, replying accept again", id);
      send_reply(m.sender, id, true, 0, "");
    } else {
      uint16_t r = a.reason ? a.reason : reason_code(fb::CancelReason::policy_changed);
      lg()->info("agreement {}: proposal for a cancelled agreement, replying reject {}", id, r);
      send_reply(m.sender, id, false, r, "agreement was cancelled: " + std::string(reason_text(r)));
    }
    return;
  }
  if (pending_proposals_.count(id)) {
    ++stats_.duplicates;  // the lookup in flight answers it
    return;
  }
  auto agbot = exchange_client::split_qualified(str(p->agbot()));
  if (!agbot) {
    ++stats_.dropped_malformed;
    lg()->warn("agreement {}: dropped proposal with a bad agbot name", id);
    return;
  }
  auto reg = store_.registration();
  if (!reg) {
    ++stats_.store_errors;
    lg()->error("agreement {}: cannot read registration: {}", id, reg.err().message());
    return;
  }
  if (!*reg) {
    ++stats_.rejected;
    lg()->info("agreement {}: rejected, node is not registered", id);
    send_reply(m.sender, id, false, reason_code(fb::CancelReason::node_pattern_changed),
               "node is not registered");
    return;
  }
  // The sender must be the agbot it claims to be: its key is the one the exchange holds for it.
  // A key the exchange confirmed recently is trusted without asking again. Another key is
  // looked up (the agbot's key may have rotated), but at most once per agbot_key_recheck: a
  // flood of fresh keys naming a known agbot is dropped here and cannot evict its key.
  const std::string name = agbot->str();
  const int64_t now = loop_.time().now_ms();
  bool known = false;
  if (auto c = agbot_keys_.find(name); c != agbot_keys_.end()) {
    known = true;
    const bool same = crypto::equal(c->second.key, m.sender);
    if (same && c->second.until_ms > now) return decide(m);
    if (!same && now - c->second.checked_ms < opts_.agbot_key_recheck.count()) {
      ++stats_.dropped_bad_agbot;  // debug: fresh keys are free, a flood must not fill the log
      lg()->debug(
          "agreement {}: dropped proposal, sender is not agbot {} (its key was checked {} s "
          "ago)",
          id, name, (now - c->second.checked_ms) / 1000);
      return;
    }
  }
  look_up_agbot(name, (*reg)->node, m, known || dealt_with(name));
}

bool engine::dealt_with(const std::string& agbot) const {
  return std::any_of(agreements_.begin(), agreements_.end(),
                     [&](const auto& kv) { return kv.second.agbot == agbot; });
}

void engine::look_up_agbot(const std::string& name, const node_identity& node,
                           const core::wire::opened& m, bool known) {
  const std::string id = str(m.message()->body_as_Proposal()->agreement_id());
  auto it = lookups_.find(name);
  const bool in_known_lane = it != lookups_.end() ? it->second.known : known;
  const size_t lane = in_known_lane ? 1 : 0;
  if (waiting_in_lane_[lane] >= opts_.max_pending_proposals) {
    ++stats_.dropped_busy;  // no Reply: the agbot retries after its reply timeout
    lg()->warn("agreement {}: dropped proposal, {} lookups in flight for {} agbots", id,
               waiting_in_lane_[lane], in_known_lane ? "known" : "unknown");
    return;
  }
  pending_proposals_.insert(id);
  ++waiting_in_lane_[lane];
  if (it != lookups_.end()) {  // a lookup for this agbot is in flight: it answers this one too
    it->second.waiting.push_back(std::make_shared<const core::wire::opened>(m));
    return;
  }
  auto& l = lookups_[name];
  l.known = in_known_lane;
  l.waiting.push_back(std::make_shared<const core::wire::opened>(m));
  ++stats_.agbot_key_lookups;
  auto agbot = exchange_client::split_qualified(name);
  x_.get_agbot_key(node, agbot->org, agbot->name,
                   [this, name, alive = alive_](result<crypto::public_key> k) {
                     if (*alive) agbot_key_arrived(name, k);
                   });
}

void engine::agbot_key_arrived(const std::string& name, const result<crypto::public_key>& k) {
  auto node = lookups_.extract(name);
  if (node.empty()) return;
  auto& l = node.mapped();
  const size_t lane = l.known ? 1 : 0;
  waiting_in_lane_[lane] -= std::min(waiting_in_lane_[lane], l.waiting.size());
  if (k) remember_agbot_key(name, *k);
  for (const auto& msg : l.waiting) {
    const std::string id = str(msg->message()->body_as_Proposal()->agreement_id());
    pending_proposals_.erase(id);
    if (!k) {
      ++stats_.dropped_bad_agbot;
      lg()->warn("agreement {}: dropped proposal, key of agbot {} unavailable: {}", id, name,
                 k.err().message());
    } else if (!crypto::equal(*k, msg->sender)) {
      ++stats_.dropped_bad_agbot;
      lg()->warn("agreement {}: dropped proposal, sender is not agbot {}", id, name);
    } else {
      decide(*msg);
    }
  }
}

void engine::remember_agbot_key(const std::string& name, const crypto::public_key& k) {
  int64_t now = loop_.time().now_ms();
  if (!agbot_keys_.count(name) &&
      agbot_keys_.size() >= std::max<size_t>(opts_.max_cached_agbot_keys, 1)) {
    // Full: drop expired entries, else the one expiring soonest.
    std::erase_if(agbot_keys_, [&](const auto& kv) { return kv.second.until_ms <= now; });
    if (agbot_keys_.size() >= std::max<size_t>(opts_.max_cached_agbot_keys, 1))
      agbot_keys_.erase(std::min_element(
          agbot_keys_.begin(), agbot_keys_.end(),
          [](const auto& a, const auto& b) { return a.second.until_ms < b.second.until_ms; }));
  }
  agbot_keys_[name] = cached_key{k, now + opts_.agbot_key_ttl.count(), now};
}

void engine::decide(const core::wire::opened& m) {
  const auto* p = m.message()->body_as_Proposal();
  std::string id = p->agreement_id()->str();
  if (agreements_.count(id)) return;  // decided while the lookup was in flight
  auto reg = store_.registration();
  if (!reg || !*reg) {
    ++stats_.rejected;
    send_reply(m.sender, id, false, reason_code(fb::CancelReason::node_pattern_changed),
               "node is not registered");
    return;
  }
  auto reject = [this, sender = m.sender, id, agbot = str(p->agbot())](const reject_reason& why) {
    ++stats_.rejected;
    lg()->info("agreement {}: rejected proposal from {}: {} ({}): {}", id, agbot, why.first,
               reason_text(why.first), why.second);
    events_.add("agreement_rejected", id, "", why.first, why.second);
    send_reply(sender, id, false, why.first, why.second);
  };
  // Signatures, inputs and the node's own state first (a forged proposal costs no pattern
  // read), then the pattern; once the pattern is known, the rest is judged again on the state
  // of that moment.
  if (auto why = evaluate(*p, **reg)) return reject(*why);
  // Held while the pattern is read: a re-delivered copy is a duplicate meanwhile.
  pending_proposals_.insert(id);
  auto msg = std::make_shared<const core::wire::opened>(m);
  check_pattern(
      *p, **reg, [this, msg, id, reject, alive = alive_](std::optional<reject_reason> why) {
        if (!*alive) return;
        pending_proposals_.erase(id);
        if (agreements_.count(id)) return;
        if (why) return reject(*why);
        auto now_reg = store_.registration();
        if (!now_reg || !*now_reg)
          return reject(
              {reason_code(fb::CancelReason::node_pattern_changed), "node is not registered"});
        const auto* proposal = msg->message()->body_as_Proposal();
        if (auto bad = evaluate(*proposal, **now_reg)) return reject(*bad);
        accept(*msg);
      });
}

void engine::accept(const core::wire::opened& m) {
  const auto* p = m.message()->body_as_Proposal();
  const std::string id = p->agreement_id()->str();
  stored_agreement a;
  a.id = id;
  a.state = agreement_state::accepted;
  a.agbot = str(p->agbot());
  a.agbot_key = m.sender;
  a.pattern = str(p->pattern());
  if (const auto* top = top_level(*p)) {
    a.service_org = str(top->org());
    a.service_url = str(top->url());
    a.service_version = str(top->version());
  }
  a.proposal = m.bytes;
  a.accepted_ms = loop_.time().now_ms();
  a.exchange_synced = true;  // nothing in the exchange until finalized
  // Persist before the Reply: after a crash the agent still knows what it promised.
  if (!persist(a)) return;  // no answer: the agbot times out and proposes again
  agreements_[id] = a;
  ++stats_.accepted;
  lg()->info("agreement {}: accepted proposal from {} for {}", id, a.agbot, a.pattern);
  record("agreement_accepted", id, 0, "proposal from " + a.agbot + " for " + a.pattern);
  send_reply(m.sender, id, true, 0, "");
  arm_finalize_timer(id, opts_.finalize_timeout);
}

std::optional<engine::reject_reason> engine::evaluate(const fb::Proposal& p,
                                                      const stored_registration& reg) {
  using R = fb::CancelReason;
  if (str(p.pattern()) != reg.pattern)
    return reject_reason{
        reason_code(R::node_pattern_changed),
        "node is registered for pattern " + reg.pattern + ", not " + str(p.pattern())};
  if (str(p.arch()) != reg.arch)
    return reject_reason{reason_code(R::policy_changed),
                         "node arch is " + reg.arch + ", not " + str(p.arch())};
  if (!p.services() || p.services()->size() == 0 || !top_level(p))
    return reject_reason{reason_code(R::policy_changed), "proposal has no top-level service"};
  // An upgrade replaces a live agreement of the same agbot: that one does not count against
  // sharing or the agreement limit.
  std::string replaced;
  if (p.supersedes() && p.supersedes()->size() > 0) {
    auto it = agreements_.find(p.supersedes()->str());
    if (it != agreements_.end() && it->second.state == agreement_state::finalized &&
        it->second.agbot == str(p.agbot()))
      replaced = it->first;
  }
  if (live_agreements() - (replaced.empty() ? 0 : 1) >= opts_.max_live_agreements)
    return reject_reason{reason_code(R::policy_changed),
                         "node runs its maximum number of agreements"};

  // Services of live agreements, for the exclusive-sharing check.
  std::vector<const fb::Service*> in_use;
  for (const auto& [oid, other] : agreements_) {
    if (!is_live(other.state) || oid == replaced) continue;
    if (const auto* op = proposal_of(other.proposal); op && op->services())
      for (const auto* s : *op->services())
        if (s && s->service()) in_use.push_back(s->service());
  }

  for (const auto* ps : *p.services()) {
    const fb::Service* s = ps ? ps->service() : nullptr;
    if (!s) return reject_reason{reason_code(R::image_data_error), "proposal has an empty service"};
    std::string name = str(s->org()) + "/" + str(s->url()) + "@" + str(s->version());
    if (!str(s->arch()).empty() && str(s->arch()) != reg.arch)
      return reject_reason{reason_code(R::policy_changed),
                           "service " + name + " is built for " + str(s->arch())};

    // The publisher's signature over everything the agent acts on (identity, sharing, required
    // services, declared inputs, deployment), by a key this node trusts.
    if (!s->deployment() || s->deployment()->size() == 0)
      return reject_reason{reason_code(R::image_sig_verif_failure),
                           "service " + name + " has no signed deployment"};
    if (auto v = core::wire::verify_service(*s); !v)
      return reject_reason{reason_code(R::image_sig_verif_failure),
                           "service " + name + " " + v.err().detail};
    std::span<const uint8_t> dep(s->deployment()->data(), s->deployment()->size());
    std::span<const uint8_t> pub(s->publisher_key()->data(), s->publisher_key()->size());
    crypto::public_key pk{};
    std::copy(pub.begin(), pub.end(), pk.begin());
    auto trusted = store_.is_trusted(pk);
    if (!trusted) {
      ++stats_.store_errors;
      return reject_reason{reason_code(R::image_sig_verif_failure), "trust store unreadable"};
    }
    if (!*trusted)
      return reject_reason{
          reason_code(R::image_sig_verif_failure),
          "publisher key of service " + name + " is not in the trust store (hmq key import)"};
    flatbuffers::Verifier dv(dep.data(), dep.size());
    if (!dv.VerifyBuffer<fb::Deployment>(nullptr))
      return reject_reason{reason_code(R::image_data_error),
                           "deployment of service " + name + " is malformed"};

    // Exclusive services are used by one agreement at a time, whichever side declares it.
    for (const auto* other : in_use) {
      if (!same_service(*s, *other)) continue;
      if (s->sharable() == fb::Sharing::exclusive || other->sharable() == fb::Sharing::exclusive)
        return reject_reason{
            reason_code(R::policy_changed),
            "service " + name + " is exclusive and already used by another agreement"};
    }

    if (auto why = check_inputs(*ps, *s, name))
      return reject_reason{reason_code(R::node_userinput_changed), *why};
  }
  return std::nullopt;
}

void engine::send_reply(const crypto::public_key& to, const std::string& id, bool accept,
                        uint16_t reason, const std::string& message) {
  out_.send(to, fb::Body::Reply, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateReplyDirect(b, id.c_str(),
                                 accept ? fb::ReplyDecision::accept : fb::ReplyDecision::reject,
                                 static_cast<fb::CancelReason>(reason), message.c_str())
        .Union();
  });
}

}  // namespace hmq::agent
