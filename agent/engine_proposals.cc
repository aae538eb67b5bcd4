// A Proposal, from its arrival to the agent's Reply (docs/protocol.md step 3): is the sender the
// agbot it names (the exchange's key for it, cached), and does the node take it (pattern, arch,
// signatures, trust store, sharing, user inputs, agreement limit)? An accepted agreement is
// persisted before the Reply goes out.
#include <algorithm>

#include "agent/engine.h"
#include "agent/engine_internal.h"
#include "agent/reasons.h"
#include "exchange_client/ids.h"

namespace hmq::agent {
using namespace engine_internal;  // the engine files' shared helpers
namespace {

// The top-level service of a proposal (the one the exchange record names).
const fb::Service* top_level(const fb::Proposal& p) {
  if (!p.services()) return nullptr;
  for (const auto* s : *p.services())
    if (s && s->is_top_level() && s->service()) return s->service();
  return nullptr;
}

bool same_service(const fb::Service& a, const fb::Service& b) {
  return str(a.org()) == str(b.org()) && str(a.url()) == str(b.url());
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
  if (pending_proposals_.size() >= opts_.max_pending_proposals) {
    ++stats_.dropped_busy;  // no Reply: the agbot retries after its reply timeout
    lg()->warn("agreement {}: dropped proposal, {} lookups in flight", id,
               pending_proposals_.size());
    return;
  }
  // The sender must be the agbot it claims to be: its key is the one the exchange holds for it.
  // A key the exchange confirmed recently is trusted without asking again; any other sender key
  // is looked up (the agbot's key may have rotated) and dropped unless the exchange agrees.
  const std::string name = agbot->str();
  if (auto c = agbot_keys_.find(name); c != agbot_keys_.end()) {
    if (c->second.until_ms > loop_.time().now_ms() && crypto::equal(c->second.key, m.sender))
      return decide(m);
    agbot_keys_.erase(c);
  }
  pending_proposals_.insert(id);
  ++stats_.agbot_key_lookups;
  auto msg = std::make_shared<core::wire::opened>(m);
  x_.get_agbot_key((*reg)->node, agbot->org, agbot->name,
                   [this, msg, id, name, alive = alive_](result<crypto::public_key> k) {
                     if (!*alive) return;
                     pending_proposals_.erase(id);
                     if (k) remember_agbot_key(name, *k);
                     if (!k) {
                       ++stats_.dropped_bad_agbot;
                       lg()->warn("agreement {}: dropped proposal, key of agbot {} unavailable: {}",
                                  id, name, k.err().message());
                       return;
                     }
                     if (!crypto::equal(*k, msg->sender)) {
                       ++stats_.dropped_bad_agbot;
                       lg()->warn("agreement {}: dropped proposal, sender is not agbot {}", id,
                                  name);
                       return;
                     }
                     decide(*msg);
                   });
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
  agbot_keys_[name] = cached_key{k, now + opts_.agbot_key_ttl.count()};
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
  if (auto why = evaluate(*p, **reg)) {
    ++stats_.rejected;
    lg()->info("agreement {}: rejected proposal from {}: {} ({}): {}", id, str(p->agbot()),
               why->first, reason_text(why->first), why->second);
    events_.add("agreement_rejected", id, "", why->first, why->second);
    send_reply(m.sender, id, false, why->first, why->second);
    return;
  }
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

    // Signature over the exact bytes received, by a key this node trusts.
    if (!s->deployment() || s->deployment()->size() == 0 || !s->deployment_signature() ||
        !s->publisher_key())
      return reject_reason{reason_code(R::image_sig_verif_failure),
                           "service " + name + " has no signed deployment"};
    std::span<const uint8_t> dep(s->deployment()->data(), s->deployment()->size());
    std::span<const uint8_t> sig(s->deployment_signature()->data(),
                                 s->deployment_signature()->size());
    std::span<const uint8_t> pub(s->publisher_key()->data(), s->publisher_key()->size());
    if (pub.size() != crypto::public_key_size)
      return reject_reason{reason_code(R::image_sig_verif_failure),
                           "service " + name + " has a malformed publisher key"};
    if (auto v = crypto::verify_detached(dep, sig, pub); !v)
      return reject_reason{reason_code(R::image_sig_verif_failure),
                           "deployment signature of service " + name + " does not verify"};
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

    // Every input without a default needs a value.
    if (s->user_inputs()) {
      for (const auto* def : *s->user_inputs()) {
        if (!def || def->has_default()) continue;
        bool found = false;
        if (ps->user_inputs())
          for (const auto* v : *ps->user_inputs())
            if (v && v->value() && str(v->name()) == str(def->name())) found = true;
        if (!found)
          return reject_reason{
              reason_code(R::node_userinput_changed),
              "required user input " + str(def->name()) + " of service " + name + " has no value"};
      }
    }
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
