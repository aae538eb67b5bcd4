// Agbots: create, update, get, delete, the patterns each serves, and hello (binds the agbot's
// key and mailbox).
#include "core/crypto/crypto.h"
#include "exchange/handler.h"
#include "exchange/validate.h"

namespace hmq::exchange {

namespace crypto = core::crypto;

step handler::put_agbot(const void* in, bool insert) {
  auto a = unpack<fb::Agbot>(in);
  HMQ_CHECK(check_party(a.org, a.id, a.name, a.token, insert));
  HMQ_CHECK(check_count("patterns", a.patterns.size()));
  for (size_t i = 0; i < a.patterns.size(); ++i) {
    if (!a.patterns[i]) return invalid("patterns[" + std::to_string(i) + "]", "empty entry");
    HMQ_CHECK(check_agbot_pattern("patterns[" + std::to_string(i) + "]", *a.patterns[i]));
    if (a.patterns[i]->node_org.empty()) a.patterns[i]->node_org = a.patterns[i]->pattern_org;
  }
  std::string key = a.org + "/" + a.id;
  HMQ_CHECK(may_put(fb::ResourceKind::agbot, insert, a.org, a.id));
  party_credentials cred;
  HMQ_CHECK(take_credentials(insert, a.mailbox, a.claim, a.token, cred));
  a.claim.clear();
  fb::AgbotT stored;
  HMQ_CHECK(tx([&]() -> step {
    HMQ_CHECK(need_org(a.org));
    auto cur = db_.load<fb::Agbot>(table::agbots, a.org, a.id);
    HMQ_CHECK(expect_existing(insert, cur.has_value(), "agbot", key));
    if (insert) {
      if (!cred.enrolled.empty())
        HMQ_CHECK(claim_mailbox(fb::AuthKind::agbot, a.org, a.id, cred.enrolled, true));
      a.public_key.clear();
      a.mailbox.clear();
      a.broker_user = cred.enrolled;
      stored = a;
      auto r = db_.agbot_insert(stored, cred.hash);
      if (!r) return internal(r.err());
    } else {
      stored = std::move(*cur);
      stored.name = a.name;
      auto r = db_.agbot_update(stored, cred.hash);
      if (!r) return internal(r.err());
      // An update replaces the served patterns when it names any.
      if (!a.patterns.empty()) {
        auto old = db_.agbot_patterns(a.org, a.id);
        if (!old) return internal(old.err());
        for (const auto& p : *old)
          if (auto e = db_.agbot_remove_pattern(a.org, a.id, p); !e) return internal(e.err());
      }
    }
    // Checked as they are added: a refusal at entry i relies on the rollback to undo the agbot
    // row and entries 0..i-1.
    for (size_t i = 0; i < a.patterns.size(); ++i) {
      HMQ_CHECK(check_servable("patterns[" + std::to_string(i) + "]", *a.patterns[i], a.org));
      if (auto e = db_.agbot_add_pattern(a.org, a.id, *a.patterns[i]); !e) return internal(e.err());
    }
    stored.patterns.clear();
    return attach_patterns(stored);
  }));
  credentials_changed(fb::AuthKind::agbot, insert, stored.org, stored.id, stored.broker_user, cred);
  set_item(std::move(stored));
  return {};
}
// An agbot may only serve patterns that exist and that it can read (public or its own org).
step handler::check_servable(const std::string& field, const fb::AgbotPatternT& ap,
                             std::string_view agbot_org) {
  auto pat = db_.load<fb::Pattern>(table::patterns, ap.pattern_org, ap.pattern);
  if (!pat) return invalid(field, "pattern '" + ap.pattern_org + "/" + ap.pattern + "' not found");
  if (!pat->public_ && pat->org != agbot_org)
    return invalid(field, "pattern '" + ap.pattern_org + "/" + ap.pattern + "' is not public");
  return {};
}
step handler::get_agbot(const key_parts& k) {
  auto a = db_.load<fb::Agbot>(table::agbots, k.org, k.id);
  if (!a) return missing(k);
  HMQ_CHECK(attach_patterns(*a));
  // The agbot compares it with the last event it saw (a restored exchange counts anew).
  auto seq = db_.event_seq(k.org, k.id);
  if (!seq) return internal(seq.err());
  a->event_seq = *seq;
  set_item(std::move(*a));
  return {};
}

step handler::present_agbot(blob_row& r, fb::ResourceItemT& item) {
  auto a = from_blob<fb::Agbot>(r.blob);
  if (!a) return {};
  HMQ_CHECK(attach_patterns(*a));
  item.resource.Set(std::move(*a));
  return {};
}

step handler::attach_patterns(fb::AgbotT& a) {
  auto pats = db_.agbot_patterns(a.org, a.id);
  if (!pats) return internal(pats.err());
  for (auto& p : *pats) a.patterns.push_back(std::make_unique<fb::AgbotPatternT>(std::move(p)));
  return {};
}

// Its broker client goes too.
step handler::remove_agbot(const key_parts& k) {
  HMQ_CHECK(tx([&]() -> step {
    if (auto a = db_.load<fb::Agbot>(table::agbots, k.org, k.id))
      HMQ_CHECK(release_broker_user(fb::AuthKind::agbot, a->org, a->id, a->broker_user));
    auto d = db_.row_delete(table::agbots, k.org, k.id);
    if (!d) return internal(d.err());
    return *d ? step{} : step{missing(k)};
  }));
  s_.cache_.forget(fb::AuthKind::agbot, k.org, k.id);
  return {};
}

step handler::agbot_pattern(const std::string& org, const std::string& id,
                            const fb::AgbotPattern* pat, bool add) {
  HMQ_CHECK(check_id("agbot_org", org));
  HMQ_CHECK(check_id("agbot_id", id));
  if (!pat) return invalid("pattern", "required");
  fb::AgbotPatternT p;
  pat->UnPackTo(&p);
  HMQ_CHECK(check_agbot_pattern("pattern", p));
  if (p.node_org.empty()) p.node_org = p.pattern_org;
  if (!auth_.can_admin(org)) return auth_.denied("modify", org);
  std::string key = org + "/" + id;
  fb::AgbotT stored;
  HMQ_CHECK(tx([&]() -> step {
    auto a = db_.load<fb::Agbot>(table::agbots, org, id);
    if (!a) return not_found("agbot", key);
    if (add) {
      HMQ_CHECK(check_servable("pattern", p, org));
      auto r = db_.agbot_add_pattern(org, id, p);
      if (!r) return internal(r.err());
      if (!*r)
        return already_exists("pattern of agbot " + key,
                              p.pattern_org + "/" + p.pattern + " for " + p.node_org);
    } else {
      auto r = db_.agbot_remove_pattern(org, id, p);
      if (!r) return internal(r.err());
      if (!*r)
        return not_found("pattern of agbot " + key,
                         p.pattern_org + "/" + p.pattern + " for " + p.node_org);
    }
    HMQ_CHECK(attach_patterns(*a));
    stored = std::move(*a);
    return {};
  }));
  set_item(std::move(stored));
  return {};
}

step handler::agbot_hello() {
  if (p_.kind != fb::AuthKind::agbot) return forbidden("only an agbot may say hello");
  if (!crypto::usable_box_key(sender_))
    return invalid("sender_key", "not a usable X25519 public key");
  fb::AgbotT stored;
  HMQ_CHECK(tx([&]() -> step {
    auto a = db_.load<fb::Agbot>(table::agbots, p_.org, p_.id);
    if (!a) return not_found("agbot", p_.str());
    a->public_key.assign(sender_.begin(), sender_.end());
    a->mailbox = crypto::mailbox_id(sender_);
    if (a->broker_user != a->mailbox)
      HMQ_CHECK(release_broker_user(fb::AuthKind::agbot, a->org, a->id, a->broker_user));
    HMQ_CHECK(claim_mailbox(fb::AuthKind::agbot, a->org, a->id, a->mailbox, true));
    a->broker_user = a->mailbox;
    HMQ_CHECK(broker_ensure_self(fb::AuthKind::agbot, a->org, a->id, a->broker_user));
    if (auto r = db_.agbot_update(*a, ""); !r) return internal(r.err());
    HMQ_CHECK(attach_patterns(*a));
    stored = std::move(*a);
    return {};
  }));
  set_item(std::move(stored));
  return {};
}

}  // namespace hmq::exchange
