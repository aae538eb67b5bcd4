#include "exchange/auth.h"

#include <set>
#include <span>
#include <vector>

#include "exchange/validate.h"
#include "exchange_client/ids.h"

namespace hmq::exchange {

namespace crypto = core::crypto;
using exchange_client::split_qualified;

std::string principal::str() const {
  return org + "/" + id;
}

std::string_view auth_name(fb::AuthKind k) {
  switch (k) {
    case fb::AuthKind::user:
      return "user";
    case fb::AuthKind::node:
      return "node";
    case fb::AuthKind::agbot:
      return "agbot";
    default:
      return "principal";
  }
}
std::string cache_key_of(fb::AuthKind k, std::string_view org, std::string_view id) {
  return std::string(auth_name(k)) + ":" + std::string(org) + "/" + std::string(id);
}

credential_cache::credential_cache(size_t max) : max_(max), key_(32) {
  crypto::random_bytes({key_.data(), key_.size()});
}

std::string credential_cache::key_of(fb::AuthKind k, std::string_view org, std::string_view id) {
  return std::string(auth_name(k)) + ":" + std::string(org) + "/" + std::string(id);
}

crypto::bytes credential_cache::mac_of(std::string_view secret) const {
  return crypto::generic_hash({reinterpret_cast<const uint8_t*>(secret.data()), secret.size()}, 32,
                              key_.view());
}

bool credential_cache::hit(const std::string& key, const std::string& stored_hash,
                           std::string_view secret) {
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.stored_hash != stored_hash) return false;
  return crypto::equal(it->second.mac, mac_of(secret));
}

void credential_cache::remember(const std::string& key, const std::string& stored_hash,
                                std::string_view secret) {
  if (entries_.size() >= max_ && !entries_.count(key)) entries_.clear();
  entries_[key] = {stored_hash, mac_of(secret)};
}

bool credential_cache::verify(const std::string& key, const std::string& stored_hash,
                              std::string_view secret) {
  if (hit(key, stored_hash, secret)) {
    ++hits_;
    return true;
  }
  ++misses_;
  if (!crypto::verify_password(stored_hash, secret)) return false;
  remember(key, stored_hash, secret);
  return true;
}

// ---- authentication

step authority::authenticate(const fb::Auth* a) {
  if (!a) return rpc_error{fb::RpcStatus::unauthorized, "missing credentials", {}};
  std::string org = str(a->org()), id = str(a->id()), secret = str(a->secret());
  auto kind = a->kind();
  if (kind != fb::AuthKind::user && kind != fb::AuthKind::node && kind != fb::AuthKind::agbot)
    return rpc_error{fb::RpcStatus::unauthorized, "unknown credential kind", {}};
  std::string who = std::string(auth_name(kind)) + " " + org + "/" + id;
  rpc_error bad{fb::RpcStatus::unauthorized, "bad credentials for " + who, {}};
  if (org.size() > max_id || id.size() > max_id || secret.size() > max_secret || org.empty() ||
      id.empty() || secret.empty())
    return bad;
  auto cred = db_.credential_of(kind, org, id);
  if (!cred) return internal(cred.err());
  if (!*cred) return bad;
  if (!cache_.verify(credential_cache::key_of(kind, org, id), (*cred)->hash, secret)) return bad;
  p_.kind = kind;
  p_.org = org;
  p_.id = id;
  secret_ = secret;
  p_.admin = kind == fb::AuthKind::user && (*cred)->admin;
  p_.root = kind == fb::AuthKind::user && org == "root" && id == "root";
  if (kind == fb::AuthKind::user) p_.inbox = (*cred)->inbox;
  return {};
}

// A node or agbot token is bound to the key that registered it (RegisterNode, AgbotHello):
// the sealed envelope's sender key is authenticated by crypto_box, the token inside is only a
// claim. A request carrying the token from any other key is refused, so a leaked token alone
// cannot act in the name of a registered party; only a new registration (which the token
// allows, as in Horizon) re-binds it, and that is visible (node_registered event, new mailbox).
step authority::check_bound_key(fb::RpcOp op) {
  std::vector<uint8_t> bound;
  if (p_.kind == fb::AuthKind::node && op != fb::RpcOp::RegisterNode) {
    auto n = db_.load<fb::Node>(table::nodes, p_.org, p_.id);
    if (n) bound = n->public_key;
  } else if (p_.kind == fb::AuthKind::agbot && op != fb::RpcOp::AgbotHello) {
    auto a = db_.load<fb::Agbot>(table::agbots, p_.org, p_.id);
    if (a) bound = a->public_key;
  }
  if (bound.empty() ||
      (bound.size() == sender_.size() &&
       crypto::equal(std::span<const uint8_t>(bound), std::span<const uint8_t>(sender_))))
    return {};
  return rpc_error{fb::RpcStatus::unauthorized,
                   std::string(auth_name(p_.kind)) + " " + p_.str() +
                       ": credentials sent from a key other than the registered one",
                   {}};
}

// ---- authorisation

bool authority::can_admin(std::string_view org) const {
  return p_.root || (is_user() && p_.admin && p_.org == org);
}
bool authority::can_write(std::string_view org) const {
  return p_.root || (is_user() && p_.org == org);
}
bool authority::is_node(std::string_view org, std::string_view id) const {
  return p_.kind == fb::AuthKind::node && p_.org == org && p_.id == id;
}
bool authority::is_agbot(std::string_view org, std::string_view id) const {
  return p_.kind == fb::AuthKind::agbot && p_.org == org && p_.id == id;
}
bool authority::is_self(fb::ResourceKind k, std::string_view org, std::string_view id) const {
  switch (k) {
    case fb::ResourceKind::user:
      return is_user() && p_.org == org && p_.id == id;
    case fb::ResourceKind::node:
      return is_node(org, id);
    case fb::ResourceKind::agbot:
      return is_agbot(org, id);
    default:
      return false;
  }
}

bool authority::allowed(access r, fb::ResourceKind k, std::string_view org,
                        std::string_view id) const {
  switch (r) {
    case access::root:
      return p_.root;
    case access::org_admin:
      return can_admin(org);
    case access::org_writer:
      return can_write(org);
    case access::org_member:
      return can_write(org) || p_.org == org;
    case access::admin_or_self:
      return can_admin(org) || is_self(k, org, id);
    case access::writer_or_self:
      return can_write(org) || is_self(k, org, id);
    case access::by_record:
      return false;
  }
  return false;
}

step authority::require(const rule& r, fb::ResourceKind k, std::string_view org,
                        std::string_view id) const {
  if (allowed(r.who, k, org, id)) return {};
  return denied(r.verb, org);
}
rpc_error authority::denied(std::string_view verb, std::string_view org) const {
  return forbidden(std::string(auth_name(p_.kind)) + " " + p_.str() + " may not " +
                   std::string(verb) + " org " + std::string(org));
}
rpc_error authority::denied_on(std::string_view verb, std::string_view what,
                               std::string_view key) const {
  return forbidden(std::string(auth_name(p_.kind)) + " " + p_.str() + " may not " +
                   std::string(verb) + " " + std::string(what) + " " + std::string(key));
}

// The registered pattern of the calling node ("" when the caller is not a registered node).
std::string authority::caller_node_pattern() {
  if (p_.kind != fb::AuthKind::node) return {};
  auto n = db_.load<fb::Node>(table::nodes, p_.org, p_.id);
  return n ? n->pattern : std::string();
}

// Can the caller read node org/id (whose registered pattern is `pattern`)?
result<bool> authority::may_read_node(std::string_view org, std::string_view id,
                                      std::string_view pattern) {
  if (can_write(org) || is_node(org, id)) return true;
  if (p_.kind == fb::AuthKind::agbot) {
    auto q = split_qualified(pattern);
    if (!q) return false;
    return db_.agbot_serves(p_.org, p_.id, q->org, q->name, org);
  }
  return false;
}

result<bool> authority::may_read_pattern(const fb::PatternT& p) {
  if (p.public_ || can_write(p.org)) return true;
  if (p_.kind == fb::AuthKind::node)
    return caller_node_pattern() == p.org + "/" + p.name || p_.org == p.org;
  if (p_.kind == fb::AuthKind::agbot) {
    if (p_.org == p.org) return true;
    return db_.agbot_serves(p_.org, p_.id, p.org, p.name, "");
  }
  return false;
}

result<bool> authority::may_read_service(const fb::ServiceT& s) {
  if (s.public_ || can_write(s.org)) return true;
  if (p_.kind == fb::AuthKind::node) {
    if (p_.org == s.org) return true;
    auto q = split_qualified(caller_node_pattern());
    if (!q) return false;
    return db_.pattern_references(q->org, q->name, s.org, s.url);
  }
  if (p_.kind == fb::AuthKind::agbot) {
    if (p_.org == s.org) return true;
    return db_.agbot_serves_service(p_.org, p_.id, s.org, s.url);
  }
  return false;
}

// Registry tokens are given to org writers and the agbots that put them in proposals: those
// serving a pattern with the service, or with a service that requires it (a dependency's
// images are pulled with its own credentials, so the proposal must carry them too).
result<bool> authority::may_see_dockauth_tokens(const fb::ServiceT& s) {
  if (can_write(s.org)) return true;
  if (p_.kind != fb::AuthKind::agbot) return false;
  auto direct = db_.agbot_serves_service(p_.org, p_.id, s.org, s.url);
  if (!direct || *direct) return direct;
  return agbot_serves_dependency(s.org, s.url);
}

// Walks requiredServices from the services of every pattern the calling agbot serves (all
// versions, bounded) looking for org/url.
result<bool> authority::agbot_serves_dependency(std::string_view org, std::string_view url) {
  auto pats = db_.agbot_patterns(p_.org, p_.id);
  if (!pats) return pats.err();
  std::set<std::pair<std::string, std::string>> seen;
  std::vector<std::pair<std::string, std::string>> todo;
  for (const auto& ap : *pats) {
    auto pat = db_.load<fb::Pattern>(table::patterns, ap.pattern_org, ap.pattern);
    if (!pat) continue;
    for (const auto& ps : pat->services)
      if (ps && seen.emplace(ps->service_org, ps->service_url).second)
        todo.emplace_back(ps->service_org, ps->service_url);
  }
  constexpr size_t max_services = 256;
  while (!todo.empty() && seen.size() <= max_services) {
    auto [sorg, surl] = todo.back();
    todo.pop_back();
    // Every version of sorg/surl: the org's services, read a page at a time.
    std::string after;
    for (;;) {
      auto rows = db_.blob_list(table::services, sorg, after, 500);
      if (!rows) return rows.err();
      for (const auto& r : *rows) {
        auto svc = from_blob<fb::Service>(r.blob);
        if (!svc || svc->url != surl) continue;
        for (const auto& req : svc->required_services) {
          if (!req) continue;
          if (req->org == org && req->url == url) return true;
          if (seen.emplace(req->org, req->url).second) todo.emplace_back(req->org, req->url);
        }
      }
      if (rows->size() < 500) break;
      after = rows->back().id;
    }
  }
  return false;
}

// Node itself, org writers, or an agbot that serves the node's pattern.
step authority::may_touch_agreements(std::string_view org, std::string_view id,
                                     std::optional<fb::NodeT>& node) {
  node = db_.load<fb::Node>(table::nodes, org, id);
  std::string key = std::string(org) + "/" + std::string(id);
  if (is_node(org, id) || can_write(org)) {
    if (!node) return not_found("node", key);
    return {};
  }
  if (p_.kind == fb::AuthKind::agbot && node) {
    auto ok = may_read_node(org, id, node->pattern);
    if (!ok) return internal(ok.err());
    if (*ok) return {};
  }
  return denied_on("touch agreements of", "node", key);
}

}  // namespace hmq::exchange
