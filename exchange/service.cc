#include "exchange/service.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <set>

#include "core/log/log.h"
#include "exchange_client/ids.h"

namespace hmq::exchange {

using exchange_client::service_id;
using exchange_client::split_qualified;

namespace crypto = core::crypto;
using rpc_error = service::rpc_error;
// nullopt = go on; an error = stop and answer it.
using step = std::optional<rpc_error>;

std::string principal::str() const {
  return org + "/" + id;
}

namespace {

constexpr size_t max_id = 128;
constexpr size_t max_name = 256;
constexpr size_t max_text = 4096;
constexpr size_t max_url = 1024;
constexpr size_t max_secret = 1024;
constexpr size_t max_items = 256;
constexpr size_t max_deployment = 128 * 1024;
constexpr std::string_view sealed_prefix = "sealed:";

rpc_error invalid(const std::string& field, const std::string& why) {
  return {fb::RpcStatus::invalid_argument, "invalid field '" + field + "': " + why, field};
}
rpc_error not_found(std::string_view what, std::string_view key) {
  return {
      fb::RpcStatus::not_found, std::string(what) + " '" + std::string(key) + "' not found", {}};
}
rpc_error already_exists(std::string_view what, std::string_view key) {
  return {fb::RpcStatus::already_exists,
          std::string(what) + " '" + std::string(key) + "' already exists",
          {}};
}
rpc_error forbidden(std::string msg) {
  return {fb::RpcStatus::forbidden, std::move(msg), {}};
}
rpc_error internal(const core::error& e) {
  if (e.code == make_error_code(core::store::errc::busy))
    return {fb::RpcStatus::unavailable, "store busy, retry", {}};
  return {fb::RpcStatus::internal, "internal error: " + e.message(), {}};
}

bool id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '@' || c == '-';
}
bool digit(char c) {
  return c >= '0' && c <= '9';
}

step check_id(const std::string& field, std::string_view s) {
  if (s.empty()) return invalid(field, "required");
  if (s.size() > max_id)
    return invalid(field, "longer than " + std::to_string(max_id) + " characters");
  if (!std::all_of(s.begin(), s.end(), id_char))
    return invalid(field, "only letters, digits and . _ @ - are allowed");
  return {};
}
step check_text(const std::string& field, std::string_view s, size_t max, bool required = false) {
  if (required && s.empty()) return invalid(field, "required");
  if (s.size() > max) return invalid(field, "longer than " + std::to_string(max) + " characters");
  if (s.find('\0') != std::string_view::npos) return invalid(field, "contains a NUL character");
  return {};
}
step check_url(const std::string& field, std::string_view s) {
  if (s.empty()) return invalid(field, "required");
  if (s.size() > max_url)
    return invalid(field, "longer than " + std::to_string(max_url) + " characters");
  for (char c : s)
    if (c <= ' ' || c == 0x7f)
      return invalid(field, "must not contain spaces or control characters");
  return {};
}
bool version_ok(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  size_t i = 0;
  int parts = 0;
  for (;;) {
    size_t start = i;
    while (i < s.size() && digit(s[i])) ++i;
    if (i == start) return false;
    ++parts;
    if (i < s.size() && s[i] == '.' && parts < 4) {
      ++i;
      continue;
    }
    break;
  }
  if (i == s.size()) return true;
  if (s[i] != '-' && s[i] != '+') return false;
  if (i + 1 == s.size()) return false;
  for (++i; i < s.size(); ++i)
    if (!(id_char(s[i]) || s[i] == '+') || s[i] == '@') return false;
  return true;
}
step check_version(const std::string& field, std::string_view s) {
  if (s.empty()) return invalid(field, "required");
  if (!version_ok(s))
    return invalid(field, "'" + std::string(s.substr(0, 64)) + "' is not a version like 1.2.3");
  return {};
}
// Horizon's versionRange: "" (any), "1.0.0" (at least), "[1.0.0,2.0.0)", "[1.0.0,INFINITY)".
step check_version_range(const std::string& field, std::string_view s) {
  if (s.empty()) return {};
  if (s.front() != '[' && s.front() != '(') {
    if (!version_ok(s))
      return invalid(field, "'" + std::string(s.substr(0, 64)) + "' is not a version or range");
    return {};
  }
  auto comma = s.find(',');
  if (s.size() < 4 || (s.back() != ']' && s.back() != ')') || comma == std::string_view::npos)
    return invalid(field, "a range looks like [1.0.0,2.0.0)");
  auto lo = s.substr(1, comma - 1);
  auto hi = s.substr(comma + 1, s.size() - comma - 2);
  if (!version_ok(lo) || !(hi == "INFINITY" || hi == "infinity" || version_ok(hi)))
    return invalid(field, "a range looks like [1.0.0,2.0.0)");
  return {};
}
step check_arch(const std::string& field, std::string_view s, bool allow_any = false) {
  if (allow_any && s == "*") return {};
  if (s.empty()) return invalid(field, "required");
  if (s.size() > 32 || !std::all_of(s.begin(), s.end(), id_char))
    return invalid(field, "an architecture like amd64, arm64 or arm");
  return {};
}
step check_count(const std::string& field, size_t n, size_t max = max_items) {
  if (n > max) return invalid(field, "more than " + std::to_string(max) + " entries");
  return {};
}
step check_secret(const std::string& field, std::string_view s, bool required) {
  if (required && s.empty()) return invalid(field, "required");
  if (s.size() > max_secret)
    return invalid(field, "longer than " + std::to_string(max_secret) + " characters");
  return {};
}
step check_qualified(const std::string& field, std::string_view s) {
  auto q = split_qualified(s);
  if (!q) return invalid(field, "must be org/name");
  if (auto e = check_id(field, q->org)) return e;
  return check_id(field, q->name);
}

#define HMQ_CHECK(expr)              \
  do {                               \
    if (auto e_ = (expr)) return e_; \
  } while (0)

step check_service_user_inputs(const std::string& field,
                               const std::vector<std::unique_ptr<fb::ServiceUserInputT>>& v) {
  HMQ_CHECK(check_count(field, v.size()));
  for (size_t i = 0; i < v.size(); ++i) {
    std::string f = field + "[" + std::to_string(i) + "]";
    if (!v[i]) return invalid(f, "empty entry");
    const auto& u = *v[i];
    if (!u.service_org.empty()) HMQ_CHECK(check_id(f + ".service_org", u.service_org));
    if (!u.service_url.empty()) HMQ_CHECK(check_url(f + ".service_url", u.service_url));
    if (!u.service_arch.empty()) HMQ_CHECK(check_arch(f + ".service_arch", u.service_arch, true));
    HMQ_CHECK(check_version_range(f + ".service_version_range", u.service_version_range));
    HMQ_CHECK(check_count(f + ".inputs", u.inputs.size()));
    for (size_t j = 0; j < u.inputs.size(); ++j) {
      std::string g = f + ".inputs[" + std::to_string(j) + "]";
      if (!u.inputs[j]) return invalid(g, "empty entry");
      HMQ_CHECK(check_text(g + ".name", u.inputs[j]->name, max_name, true));
      HMQ_CHECK(check_text(g + ".value", u.inputs[j]->value, max_text));
    }
  }
  return {};
}

bool digest_ok(std::string_view d) {
  constexpr std::string_view prefix = "sha256:";
  if (d.substr(0, prefix.size()) != prefix || d.size() != prefix.size() + 64) return false;
  return std::all_of(d.begin() + prefix.size(), d.end(),
                     [](char c) { return digit(c) || (c >= 'a' && c <= 'f'); });
}

step check_strings(const std::string& field, const std::vector<std::string>& v) {
  HMQ_CHECK(check_count(field, v.size()));
  for (size_t i = 0; i < v.size(); ++i)
    HMQ_CHECK(check_text(field + "[" + std::to_string(i) + "]", v[i], max_text));
  return {};
}

// The deployment is verified as a Deployment buffer, then its signature against publisher_key.
step check_deployment(const fb::ServiceT& s) {
  if (s.deployment.empty()) return invalid("deployment", "required: a signed deployment");
  if (s.deployment.size() > max_deployment) return invalid("deployment", "larger than 128 KiB");
  flatbuffers::Verifier v(s.deployment.data(), s.deployment.size());
  if (!v.VerifyBuffer<fb::Deployment>(nullptr))
    return invalid("deployment", "not a valid Deployment buffer");
  if (s.publisher_key.size() != crypto::public_key_size)
    return invalid("publisher_key", "required: a 32-byte Ed25519 public key");
  if (s.deployment_signature.size() != crypto::signature_size)
    return invalid("deployment_signature", "required: a 64-byte Ed25519 signature");
  if (!crypto::verify_detached(s.deployment, s.deployment_signature, s.publisher_key))
    return invalid("deployment_signature", "does not verify against publisher_key");
  fb::DeploymentT d;
  flatbuffers::GetRoot<fb::Deployment>(s.deployment.data())->UnPackTo(&d);
  if (d.containers.empty())
    return invalid("deployment.containers", "at least one container is required");
  HMQ_CHECK(check_count("deployment.containers", d.containers.size(), 64));
  for (size_t i = 0; i < d.containers.size(); ++i) {
    std::string f = "deployment.containers[" + std::to_string(i) + "]";
    if (!d.containers[i]) return invalid(f, "empty entry");
    const auto& c = *d.containers[i];
    HMQ_CHECK(check_id(f + ".name", c.name));
    HMQ_CHECK(check_text(f + ".image", c.image, 512, true));
    if (!c.image_digest.empty() && !digest_ok(c.image_digest))
      return invalid(f + ".image_digest", "must be sha256:<64 lowercase hex digits>");
    HMQ_CHECK(check_strings(f + ".environment", c.environment));
    HMQ_CHECK(check_strings(f + ".command", c.command));
    HMQ_CHECK(check_strings(f + ".entrypoint", c.entrypoint));
    HMQ_CHECK(check_strings(f + ".binds", c.binds));
    HMQ_CHECK(check_strings(f + ".devices", c.devices));
    HMQ_CHECK(check_strings(f + ".cap_add", c.cap_add));
    HMQ_CHECK(check_count(f + ".ports", c.ports.size()));
    if (!c.network.empty() && c.network != "host")
      return invalid(f + ".network", "must be empty or host");
  }
  return {};
}

step check_service(const fb::ServiceT& s) {
  HMQ_CHECK(check_id("org", s.org));
  HMQ_CHECK(check_url("url", s.url));
  HMQ_CHECK(check_version("version", s.version));
  HMQ_CHECK(check_arch("arch", s.arch));
  HMQ_CHECK(check_text("label", s.label, max_name));
  HMQ_CHECK(check_text("description", s.description, max_text));
  if (s.sharable != fb::Sharing::exclusive && s.sharable != fb::Sharing::singleton &&
      s.sharable != fb::Sharing::multiple)
    return invalid("sharable", "must be one of exclusive, singleton, multiple");
  HMQ_CHECK(check_count("required_services", s.required_services.size()));
  for (size_t i = 0; i < s.required_services.size(); ++i) {
    std::string f = "required_services[" + std::to_string(i) + "]";
    if (!s.required_services[i]) return invalid(f, "empty entry");
    const auto& r = *s.required_services[i];
    HMQ_CHECK(check_id(f + ".org", r.org));
    HMQ_CHECK(check_url(f + ".url", r.url));
    HMQ_CHECK(check_version_range(f + ".version_range", r.version_range));
    HMQ_CHECK(check_arch(f + ".arch", r.arch, true));
  }
  HMQ_CHECK(check_count("user_inputs", s.user_inputs.size()));
  for (size_t i = 0; i < s.user_inputs.size(); ++i) {
    std::string f = "user_inputs[" + std::to_string(i) + "]";
    if (!s.user_inputs[i]) return invalid(f, "empty entry");
    const auto& u = *s.user_inputs[i];
    HMQ_CHECK(check_text(f + ".name", u.name, max_name, true));
    HMQ_CHECK(check_text(f + ".label", u.label, max_name));
    if (u.type != "string" && u.type != "int" && u.type != "float" && u.type != "boolean" &&
        u.type != "list of strings")
      return invalid(f + ".type", "must be one of string, int, float, boolean, list of strings");
    HMQ_CHECK(check_text(f + ".default_value", u.default_value, max_text));
  }
  HMQ_CHECK(check_count("dockauths", s.dockauths.size(), 16));
  for (size_t i = 0; i < s.dockauths.size(); ++i) {
    std::string f = "dockauths[" + std::to_string(i) + "]";
    if (!s.dockauths[i]) return invalid(f, "empty entry");
    HMQ_CHECK(check_text(f + ".registry", s.dockauths[i]->registry, max_name, true));
    HMQ_CHECK(check_text(f + ".username", s.dockauths[i]->username, max_name));
    HMQ_CHECK(check_secret(f + ".token", s.dockauths[i]->token, false));
  }
  return check_deployment(s);
}

step check_pattern(const fb::PatternT& p) {
  HMQ_CHECK(check_id("org", p.org));
  HMQ_CHECK(check_id("name", p.name));
  HMQ_CHECK(check_text("label", p.label, max_name));
  HMQ_CHECK(check_text("description", p.description, max_text));
  if (p.services.empty()) return invalid("services", "at least one service is required");
  HMQ_CHECK(check_count("services", p.services.size(), 64));
  for (size_t i = 0; i < p.services.size(); ++i) {
    std::string f = "services[" + std::to_string(i) + "]";
    if (!p.services[i]) return invalid(f, "empty entry");
    const auto& s = *p.services[i];
    HMQ_CHECK(check_url(f + ".service_url", s.service_url));
    HMQ_CHECK(check_id(f + ".service_org", s.service_org));
    HMQ_CHECK(check_arch(f + ".service_arch", s.service_arch, true));
    if (s.service_versions.empty())
      return invalid(f + ".service_versions", "at least one version is required");
    HMQ_CHECK(check_count(f + ".service_versions", s.service_versions.size(), 16));
    for (size_t j = 0; j < s.service_versions.size(); ++j) {
      std::string g = f + ".service_versions[" + std::to_string(j) + "]";
      if (!s.service_versions[j]) return invalid(g, "empty entry");
      HMQ_CHECK(check_version(g + ".version", s.service_versions[j]->version));
      if (const auto& pr = s.service_versions[j]->priority) {
        if (pr->retries < 0 || pr->retry_durations < 0 || pr->verified_durations < 0)
          return invalid(g + ".priority", "retries and durations must not be negative");
      }
    }
    if (s.node_health && (s.node_health->missing_heartbeat_interval < 0 ||
                          s.node_health->check_agreement_status < 0))
      return invalid(f + ".node_health", "intervals must not be negative");
  }
  return check_service_user_inputs("user_inputs", p.user_inputs);
}

step check_agbot_pattern(const std::string& field, const fb::AgbotPatternT& p) {
  HMQ_CHECK(check_id(field + ".pattern_org", p.pattern_org));
  HMQ_CHECK(check_id(field + ".pattern", p.pattern));
  if (!p.node_org.empty()) HMQ_CHECK(check_id(field + ".node_org", p.node_org));
  return {};
}

std::string_view kind_name(fb::ResourceKind k) {
  switch (k) {
    case fb::ResourceKind::org:
      return "org";
    case fb::ResourceKind::user:
      return "user";
    case fb::ResourceKind::node:
      return "node";
    case fb::ResourceKind::agbot:
      return "agbot";
    case fb::ResourceKind::service:
      return "service";
    case fb::ResourceKind::pattern:
      return "pattern";
    default:
      return "resource";
  }
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
std::string str(const flatbuffers::String* s) {
  return s ? s->str() : std::string();
}

}  // namespace

// ---------------------------------------------------------------------------------------------

service::service(db& d, const crypto::box_keypair& self, const core::loop::clock& clock,
                 service_options o)
    : db_(d), self_(self), clock_(clock), opts_(o), cache_key_(32) {
  crypto::random_bytes({cache_key_.data(), cache_key_.size()});
}

result<std::string> service::hash(std::string_view secret) {
  return crypto::hash_password(secret, opts_.strength);
}

bool service::verify_cached(const std::string& key, const std::string& stored_hash,
                            std::string_view secret) {
  auto mac = crypto::generic_hash({reinterpret_cast<const uint8_t*>(secret.data()), secret.size()},
                                  32, cache_key_.view());
  if (auto it = cache_.find(key); it != cache_.end() && it->second.stored_hash == stored_hash &&
                                  crypto::equal(it->second.mac, mac)) {
    ++cache_hits_;
    return true;
  }
  ++cache_misses_;
  if (!crypto::verify_password(stored_hash, secret)) return false;
  if (cache_.size() >= opts_.credential_cache_max) cache_.clear();
  cache_[key] = {stored_hash, std::move(mac)};
  return true;
}

result<void> service::bootstrap_root(std::string_view root_password) {
  auto existing = db_.credential_of(fb::AuthKind::user, "root", "root");
  if (!existing) return existing.err();
  if (root_password.empty()) {
    if (*existing) return {};
    return core::error{
        make_error_code(core::store::errc::sql_error),
        "no root password given and no root user exists: set --root-password or HMQ_ROOT_PASSWORD"};
  }
  auto h = hash(root_password);
  if (!h) return h.err();
  auto r = db_.transaction([&]() -> result<void> {
    auto org = db_.org_get("root");
    if (!org) return org.err();
    if (!*org) {
      fb::OrgT o;
      o.name = "root";
      o.label = "root";
      o.description = "The exchange's own organization";
      if (auto e = db_.org_insert(o); !e) return e;
    }
    fb::UserT u;
    u.org = "root";
    u.username = "root";
    u.admin = true;
    if (*existing) return db_.user_update(u, *h);
    return db_.user_insert(u, *h);
  });
  forget(cache_key_of(fb::AuthKind::user, "root", "root"));
  return r;
}

// One request: holds the caller and what the request produced. Short-lived.
class handler {
 public:
  handler(service& s, const crypto::public_key& sender) : s_(s), db_(s.db_), sender_(sender) {}

  outcome run(const fb::RpcRequest& req) {
    if (auto e = authenticate(req.auth())) return fail(*e);
    if (auto e = check_bound_key(req.op_type())) {
      ++s_.identity_mismatches_;
      return fail(*e);
    }
    step e = dispatch(req);
    if (e) return fail(*e);
    out_.response.status = fb::RpcStatus::ok;
    out_.events = std::move(events_);
    out_.broker = std::move(broker_);
    return std::move(out_);
  }

 private:
  outcome fail(const rpc_error& e) {
    outcome o;
    o.response.status = e.status;
    o.response.error_message = e.message;
    o.response.error_field = e.field;
    return o;
  }

  // ---- authentication

  step authenticate(const fb::Auth* a) {
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
    if (!s_.verify_cached(cache_key_of(kind, org, id), (*cred)->hash, secret)) return bad;
    p_.kind = kind;
    p_.org = org;
    p_.id = id;
    secret_ = secret;
    p_.admin = kind == fb::AuthKind::user && (*cred)->admin;
    p_.root = kind == fb::AuthKind::user && org == "root" && id == "root";
    return {};
  }

  // A node or agbot token is bound to the key that registered it (RegisterNode, AgbotHello):
  // the sealed envelope's sender key is authenticated by crypto_box, the token inside is only a
  // claim. A request carrying the token from any other key is refused, so a leaked token alone
  // cannot act in the name of a registered party; only a new registration (which the token
  // allows, as in Horizon) re-binds it, and that is visible (node_registered event, new mailbox).
  step check_bound_key(fb::RpcOp op) {
    std::vector<uint8_t> bound;
    if (p_.kind == fb::AuthKind::node && op != fb::RpcOp::RegisterNode) {
      auto n = load<fb::Node>(table::nodes, p_.org, p_.id);
      if (n) bound = n->public_key;
    } else if (p_.kind == fb::AuthKind::agbot && op != fb::RpcOp::AgbotHello) {
      auto a = load<fb::Agbot>(table::agbots, p_.org, p_.id);
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

  // ---- broker identities (applied by the app after the commit)

  void broker_ensure(fb::AuthKind kind, const std::string& user, const std::string& password) {
    if (user.empty() || password.empty()) return;
    broker_.push_back({broker_change::action::ensure, kind, user, password});
  }
  void broker_remove(fb::AuthKind kind, const std::string& user) {
    if (!user.empty()) broker_.push_back({broker_change::action::remove, kind, user, {}});
  }
  void broker_password(fb::AuthKind kind, const std::string& user, const std::string& password) {
    if (!user.empty() && !password.empty())
      broker_.push_back({broker_change::action::set_password, kind, user, password});
  }
  // A mailbox id as crypto::mailbox_id makes them: 16 characters of lowercase base32.
  static bool valid_mailbox(std::string_view m) {
    return m.size() == 16 && std::all_of(m.begin(), m.end(), [](char c) {
             return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
           });
  }

  // ---- authorization

  bool is_user() const { return p_.kind == fb::AuthKind::user; }
  bool can_admin(std::string_view org) const {
    return p_.root || (is_user() && p_.admin && p_.org == org);
  }
  bool can_write(std::string_view org) const { return p_.root || (is_user() && p_.org == org); }
  bool is_node(std::string_view org, std::string_view id) const {
    return p_.kind == fb::AuthKind::node && p_.org == org && p_.id == id;
  }
  bool is_agbot(std::string_view org, std::string_view id) const {
    return p_.kind == fb::AuthKind::agbot && p_.org == org && p_.id == id;
  }
  rpc_error denied(std::string_view verb, std::string_view org) const {
    return forbidden(std::string(auth_name(p_.kind)) + " " + p_.str() + " may not " +
                     std::string(verb) + " org " + std::string(org));
  }
  rpc_error denied_on(std::string_view verb, std::string_view what, std::string_view key) const {
    return forbidden(std::string(auth_name(p_.kind)) + " " + p_.str() + " may not " +
                     std::string(verb) + " " + std::string(what) + " " + std::string(key));
  }

  // The registered pattern of the calling node ("" when the caller is not a registered node).
  std::string caller_node_pattern() {
    if (p_.kind != fb::AuthKind::node) return {};
    auto n = load<fb::Node>(table::nodes, p_.org, p_.id);
    return n ? n->pattern : std::string();
  }

  template <typename Table>
  std::optional<typename Table::NativeTableType> load(table t, std::string_view org,
                                                      std::string_view id) {
    auto b = db_.blob_get(t, org, id);
    if (!b || !*b) return std::nullopt;
    return from_blob<Table>(**b);
  }

  // Can the caller read node org/id (whose registered pattern is `pattern`)?
  result<bool> may_read_node(std::string_view org, std::string_view id, std::string_view pattern) {
    if (can_write(org) || is_node(org, id)) return true;
    if (p_.kind == fb::AuthKind::agbot) {
      auto q = split_qualified(pattern);
      if (!q) return false;
      return db_.agbot_serves(p_.org, p_.id, q->org, q->name, org);
    }
    return false;
  }

  result<bool> may_read_pattern(const fb::PatternT& p) {
    if (p.public_ || can_write(p.org)) return true;
    if (p_.kind == fb::AuthKind::node)
      return caller_node_pattern() == p.org + "/" + p.name || p_.org == p.org;
    if (p_.kind == fb::AuthKind::agbot) {
      if (p_.org == p.org) return true;
      return db_.agbot_serves(p_.org, p_.id, p.org, p.name, "");
    }
    return false;
  }

  result<bool> may_read_service(const fb::ServiceT& s) {
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
  result<bool> may_see_dockauth_tokens(const fb::ServiceT& s) {
    if (can_write(s.org)) return true;
    if (p_.kind != fb::AuthKind::agbot) return false;
    auto direct = db_.agbot_serves_service(p_.org, p_.id, s.org, s.url);
    if (!direct || *direct) return direct;
    return agbot_serves_dependency(s.org, s.url);
  }

  // Walks requiredServices from the services of every pattern the calling agbot serves (all
  // versions, bounded) looking for org/url.
  result<bool> agbot_serves_dependency(std::string_view org, std::string_view url) {
    auto pats = db_.agbot_patterns(p_.org, p_.id);
    if (!pats) return pats.err();
    std::set<std::pair<std::string, std::string>> seen;
    std::vector<std::pair<std::string, std::string>> todo;
    for (const auto& ap : *pats) {
      auto pat = load<fb::Pattern>(table::patterns, ap.pattern_org, ap.pattern);
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

  // ---- secrets at rest

  std::string seal_token(std::string_view token) {
    if (token.empty()) return {};
    auto n = crypto::random_nonce();
    auto boxed = crypto::box_seal({reinterpret_cast<const uint8_t*>(token.data()), token.size()}, n,
                                  s_.self_.pk, s_.self_.sk);
    std::vector<uint8_t> all(n.begin(), n.end());
    all.insert(all.end(), boxed.begin(), boxed.end());
    return std::string(sealed_prefix) + crypto::to_base64(all);
  }
  std::string open_token(std::string_view stored) {
    if (stored.substr(0, sealed_prefix.size()) != sealed_prefix) return {};
    auto raw = crypto::from_base64(stored.substr(sealed_prefix.size()));
    if (!raw || raw->size() < crypto::nonce_size + crypto::mac_size) return {};
    crypto::nonce n;
    std::copy_n(raw->begin(), crypto::nonce_size, n.begin());
    auto plain =
        crypto::box_open(std::span(*raw).subspan(crypto::nonce_size), n, s_.self_.pk, s_.self_.sk);
    if (!plain) return {};
    return std::string(plain->begin(), plain->end());
  }

  // Service as returned to the caller: registry tokens opened or removed.
  result<fb::ServiceT> present_service(fb::ServiceT s) {
    auto see = may_see_dockauth_tokens(s);
    if (!see) return see.err();
    for (auto& d : s.dockauths)
      if (d) d->token = *see ? open_token(d->token) : std::string();
    return s;
  }

  // ---- transactions

  // Runs fn in one write transaction; any error (refusal or store failure) rolls everything back,
  // including the events fn addressed.
  step tx(const std::function<step()>& fn) {
    step refused;
    auto r = db_.transaction([&]() -> result<void> {
      refused = fn();
      if (refused) return core::error{make_error_code(core::store::errc::constraint), "refused"};
      return {};
    });
    if (refused) {
      events_.clear();
      broker_.clear();
      return refused;
    }
    if (!r) {
      events_.clear();
      broker_.clear();
      return internal(r.err());
    }
    return {};
  }

  step add_events(result<std::vector<addressed_event>> ev) {
    if (!ev) return internal(ev.err());
    for (auto& e : *ev) events_.push_back(std::move(e));
    return {};
  }

  template <typename T>
  void set_result(T&& v) {
    out_.response.result.Set(std::forward<T>(v));
  }
  template <typename T>
  void set_item(T&& v) {
    fb::ResourceItemT item;
    item.resource.Set(std::forward<T>(v));
    set_result(std::move(item));
  }
  void set_empty() { set_result(fb::EmptyT{}); }

  // ---- dispatch

  step dispatch(const fb::RpcRequest& req) {
    // The Verifier accepts a union whose type is set but whose table is absent: every op_as_*()
    // below would then be null (found by tests/fuzz/rpc_request_fuzz.cc).
    if (req.op() == nullptr) return invalid("op", "required");
    switch (req.op_type()) {
      case fb::RpcOp::CreateResource:
        return create(*req.op_as_CreateResource());
      case fb::RpcOp::UpdateResource:
        return update(*req.op_as_UpdateResource());
      case fb::RpcOp::GetResource:
        return get(req.op_as_GetResource()->key());
      case fb::RpcOp::DeleteResource:
        return remove(req.op_as_DeleteResource()->key());
      case fb::RpcOp::ListResources:
        return list(*req.op_as_ListResources());
      case fb::RpcOp::RegisterNode:
        return register_node(*req.op_as_RegisterNode());
      case fb::RpcOp::UnregisterNode:
        return unregister_node();
      case fb::RpcOp::PutAgreement:
        return put_agreement(*req.op_as_PutAgreement());
      case fb::RpcOp::ListAgreements:
        return list_agreements(*req.op_as_ListAgreements());
      case fb::RpcOp::DeleteAgreement:
        return delete_agreement(*req.op_as_DeleteAgreement());
      case fb::RpcOp::GetPublicKey:
        return get_public_key(req.op_as_GetPublicKey()->key());
      case fb::RpcOp::SearchPatternNodes:
        return search_pattern_nodes(*req.op_as_SearchPatternNodes());
      case fb::RpcOp::AgbotAddPattern: {
        const auto* op = req.op_as_AgbotAddPattern();
        return agbot_pattern(str(op->agbot_org()), str(op->agbot_id()), op->pattern(), true);
      }
      case fb::RpcOp::AgbotRemovePattern: {
        const auto* op = req.op_as_AgbotRemovePattern();
        return agbot_pattern(str(op->agbot_org()), str(op->agbot_id()), op->pattern(), false);
      }
      case fb::RpcOp::AgbotHello:
        return agbot_hello();
      case fb::RpcOp::PutNodeStatus:
        return put_node_status(*req.op_as_PutNodeStatus());
      case fb::RpcOp::GetNodeStatus:
        return get_node_status(*req.op_as_GetNodeStatus());
      case fb::RpcOp::PutRolloutStatus:
        return put_rollout_status(*req.op_as_PutRolloutStatus());
      case fb::RpcOp::GetRolloutStatus:
        return get_rollout_status(*req.op_as_GetRolloutStatus());
      default:
        return invalid("op", "unknown operation");
    }
  }

  // ---- create / update

  step create(const fb::CreateResource& op) { return put(op.resource_type(), op.resource(), true); }
  step update(const fb::UpdateResource& op) {
    return put(op.resource_type(), op.resource(), false);
  }

  step put(fb::Resource type, const void* r, bool insert) {
    if (!r) return invalid("resource", "required");
    switch (type) {
      case fb::Resource::Org: {
        fb::OrgT o;
        static_cast<const fb::Org*>(r)->UnPackTo(&o);
        return put_org(std::move(o), insert);
      }
      case fb::Resource::User: {
        fb::UserT u;
        static_cast<const fb::User*>(r)->UnPackTo(&u);
        return put_user(std::move(u), insert);
      }
      case fb::Resource::Node: {
        fb::NodeT n;
        static_cast<const fb::Node*>(r)->UnPackTo(&n);
        return put_node(std::move(n), insert);
      }
      case fb::Resource::Agbot: {
        fb::AgbotT a;
        static_cast<const fb::Agbot*>(r)->UnPackTo(&a);
        return put_agbot(std::move(a), insert);
      }
      case fb::Resource::Service: {
        fb::ServiceT s;
        static_cast<const fb::Service*>(r)->UnPackTo(&s);
        return put_service(std::move(s), insert);
      }
      case fb::Resource::Pattern: {
        fb::PatternT p;
        static_cast<const fb::Pattern*>(r)->UnPackTo(&p);
        return put_pattern(std::move(p), insert);
      }
      default:
        return invalid("resource", "required");
    }
  }

  step need_org(std::string_view org) {
    auto o = db_.org_get(org);
    if (!o) return internal(o.err());
    if (!*o) return not_found("org", org);
    return {};
  }

  step put_org(fb::OrgT o, bool insert) {
    HMQ_CHECK(check_id("name", o.name));
    HMQ_CHECK(check_text("label", o.label, max_name));
    HMQ_CHECK(check_text("description", o.description, max_text));
    if (insert ? !p_.root : !can_admin(o.name)) return denied(insert ? "create" : "modify", o.name);
    HMQ_CHECK(tx([&]() -> step {
      auto cur = db_.org_get(o.name);
      if (!cur) return internal(cur.err());
      if (insert && *cur) return already_exists("org", o.name);
      if (!insert && !*cur) return not_found("org", o.name);
      auto r = insert ? db_.org_insert(o) : db_.org_update(o);
      if (!r) return internal(r.err());
      return {};
    }));
    set_item(std::move(o));
    return {};
  }

  step put_user(fb::UserT u, bool insert) {
    HMQ_CHECK(check_id("org", u.org));
    HMQ_CHECK(check_id("username", u.username));
    HMQ_CHECK(check_secret("password", u.password, insert));
    HMQ_CHECK(check_text("email", u.email, max_name));
    std::string key = u.org + "/" + u.username;
    bool self = is_user() && p_.org == u.org && p_.id == u.username;
    if (!can_admin(u.org) && !(self && !insert)) return denied("modify", u.org);
    if (u.org == "root" && u.username == "root" && !p_.root)
      return denied_on("modify", "user", key);
    std::string h;
    if (!u.password.empty()) {
      auto r = s_.hash(u.password);
      if (!r)
        return rpc_error{fb::RpcStatus::internal, "cannot hash password: " + r.err().message(), {}};
      h = std::move(*r);
    }
    u.password.clear();
    HMQ_CHECK(tx([&]() -> step {
      HMQ_CHECK(need_org(u.org));
      auto cur = db_.credential_of(fb::AuthKind::user, u.org, u.username);
      if (!cur) return internal(cur.err());
      if (insert && *cur) return already_exists("user", key);
      if (!insert && !*cur) return not_found("user", key);
      // A user may change its own password and email, not promote itself.
      if (!insert && !can_admin(u.org) && u.admin != (*cur)->admin)
        return denied_on("change the admin flag of", "user", key);
      if (u.org == "root" && u.username == "root") u.admin = true;
      auto r = insert ? db_.user_insert(u, h) : db_.user_update(u, h);
      if (!r) return internal(r.err());
      return {};
    }));
    if (!h.empty()) s_.forget(cache_key_of(fb::AuthKind::user, u.org, u.username));
    set_item(std::move(u));
    return {};
  }

  step put_node(fb::NodeT n, bool insert) {
    HMQ_CHECK(check_id("org", n.org));
    HMQ_CHECK(check_id("id", n.id));
    HMQ_CHECK(check_text("name", n.name, max_name));
    HMQ_CHECK(check_secret("token", n.token, insert));
    if (!n.arch.empty()) HMQ_CHECK(check_arch("arch", n.arch));
    HMQ_CHECK(check_service_user_inputs("user_inputs", n.user_inputs));
    std::string key = n.org + "/" + n.id;
    if (!can_write(n.org) && !(!insert && is_node(n.org, n.id))) return denied("modify", n.org);
    // On create, `mailbox` names the node's broker identity in advance (the agent's mailbox, from
    // `hmq node status`), so the agent can connect before it registers. docs/security.md.
    std::string enrolled, token, h;
    HMQ_CHECK(take_credentials(insert, n.mailbox, n.token, enrolled, token, h));
    fb::NodeT stored;
    HMQ_CHECK(tx([&]() -> step {
      HMQ_CHECK(need_org(n.org));
      auto cur = load<fb::Node>(table::nodes, n.org, n.id);
      if (insert && cur) return already_exists("node", key);
      if (!insert && !cur) return not_found("node", key);
      if (insert) {
        // Registration state is the exchange's: set only by RegisterNode.
        n.pattern.clear();
        n.public_key.clear();
        n.mailbox.clear();
        n.broker_user = enrolled;
        n.last_heartbeat_ms = 0;
        n.registered_ms = 0;
        stored = n;
        auto r = db_.node_insert(stored, h);
        if (!r) return internal(r.err());
      } else {
        stored = std::move(*cur);
        stored.name = n.name;
        if (!n.arch.empty()) stored.arch = n.arch;
        stored.user_inputs = std::move(n.user_inputs);
        auto r = db_.node_update(stored, h);
        if (!r) return internal(r.err());
      }
      return {};
    }));
    if (!h.empty()) s_.forget(cache_key_of(fb::AuthKind::node, stored.org, stored.id));
    if (insert)
      broker_ensure(fb::AuthKind::node, stored.broker_user, token);
    else
      broker_password(fb::AuthKind::node, stored.broker_user, token);
    set_item(std::move(stored));
    return {};
  }

  // Node and agbot create/update: the broker identity named in advance (create only) and the
  // token, taken out of the record (kept in clear only for the broker) and hashed for the store.
  step take_credentials(bool insert, const std::string& mailbox, std::string& token_field,
                        std::string& enrolled, std::string& token, std::string& hash) {
    enrolled = insert ? mailbox : std::string();
    if (!enrolled.empty() && !valid_mailbox(enrolled))
      return invalid("mailbox", "must be a mailbox id: 16 characters a-z, 2-7");
    token = token_field;
    if (!token_field.empty()) {
      auto r = s_.hash(token_field);
      if (!r)
        return rpc_error{fb::RpcStatus::internal, "cannot hash token: " + r.err().message(), {}};
      hash = std::move(*r);
    }
    token_field.clear();
    return {};
  }

  // An agbot may only serve patterns that exist and that it can read (public or its own org).
  step check_servable(const std::string& field, const fb::AgbotPatternT& ap,
                      std::string_view agbot_org) {
    auto pat = load<fb::Pattern>(table::patterns, ap.pattern_org, ap.pattern);
    if (!pat)
      return invalid(field, "pattern '" + ap.pattern_org + "/" + ap.pattern + "' not found");
    if (!pat->public_ && pat->org != agbot_org)
      return invalid(field, "pattern '" + ap.pattern_org + "/" + ap.pattern + "' is not public");
    return {};
  }

  step put_agbot(fb::AgbotT a, bool insert) {
    HMQ_CHECK(check_id("org", a.org));
    HMQ_CHECK(check_id("id", a.id));
    HMQ_CHECK(check_text("name", a.name, max_name));
    HMQ_CHECK(check_secret("token", a.token, insert));
    HMQ_CHECK(check_count("patterns", a.patterns.size()));
    for (size_t i = 0; i < a.patterns.size(); ++i) {
      if (!a.patterns[i]) return invalid("patterns[" + std::to_string(i) + "]", "empty entry");
      HMQ_CHECK(check_agbot_pattern("patterns[" + std::to_string(i) + "]", *a.patterns[i]));
      if (a.patterns[i]->node_org.empty()) a.patterns[i]->node_org = a.patterns[i]->pattern_org;
    }
    std::string key = a.org + "/" + a.id;
    if (!can_admin(a.org)) return denied("modify", a.org);
    std::string enrolled, token, h;
    HMQ_CHECK(take_credentials(insert, a.mailbox, a.token, enrolled, token, h));
    fb::AgbotT stored;
    HMQ_CHECK(tx([&]() -> step {
      HMQ_CHECK(need_org(a.org));
      auto cur = load<fb::Agbot>(table::agbots, a.org, a.id);
      if (insert && cur) return already_exists("agbot", key);
      if (!insert && !cur) return not_found("agbot", key);
      if (insert) {
        a.public_key.clear();
        a.mailbox.clear();
        a.broker_user = enrolled;
        stored = a;
        auto r = db_.agbot_insert(stored, h);
        if (!r) return internal(r.err());
      } else {
        stored = std::move(*cur);
        stored.name = a.name;
        auto r = db_.agbot_update(stored, h);
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
        if (auto e = db_.agbot_add_pattern(a.org, a.id, *a.patterns[i]); !e)
          return internal(e.err());
      }
      auto pats = db_.agbot_patterns(a.org, a.id);
      if (!pats) return internal(pats.err());
      stored.patterns.clear();
      for (auto& p : *pats)
        stored.patterns.push_back(std::make_unique<fb::AgbotPatternT>(std::move(p)));
      return {};
    }));
    if (!h.empty()) s_.forget(cache_key_of(fb::AuthKind::agbot, stored.org, stored.id));
    if (insert)
      broker_ensure(fb::AuthKind::agbot, stored.broker_user, token);
    else
      broker_password(fb::AuthKind::agbot, stored.broker_user, token);
    set_item(std::move(stored));
    return {};
  }

  step put_service(fb::ServiceT s, bool insert) {
    HMQ_CHECK(check_service(s));
    std::string id = service_id(s.url, s.version, s.arch);
    HMQ_CHECK(check_text("url", id, max_url));
    std::string key = s.org + "/" + id;
    if (!can_write(s.org)) return denied("modify", s.org);
    for (auto& d : s.dockauths) d->token = seal_token(d->token);
    HMQ_CHECK(tx([&]() -> step {
      HMQ_CHECK(need_org(s.org));
      auto cur = db_.blob_get(table::services, s.org, id);
      if (!cur) return internal(cur.err());
      if (insert && *cur) return already_exists("service", key);
      if (!insert && !*cur) return not_found("service", key);
      if (auto r = db_.service_put(s, id, insert); !r) return internal(r.err());
      return add_events(
          address_service_event(db_, fb::EventKind::service_changed, s.org, s.url, id));
    }));
    auto shown = present_service(std::move(s));
    if (!shown) return internal(shown.err());
    set_item(std::move(*shown));
    return {};
  }

  step put_pattern(fb::PatternT p, bool insert) {
    HMQ_CHECK(check_pattern(p));
    std::string key = p.org + "/" + p.name;
    if (!can_write(p.org)) return denied("modify", p.org);
    HMQ_CHECK(tx([&]() -> step {
      HMQ_CHECK(need_org(p.org));
      auto cur = db_.blob_get(table::patterns, p.org, p.name);
      if (!cur) return internal(cur.err());
      if (insert && *cur) return already_exists("pattern", key);
      if (!insert && !*cur) return not_found("pattern", key);
      // Every referenced service version must exist and be readable from this org.
      for (size_t i = 0; i < p.services.size(); ++i) {
        const auto& ps = *p.services[i];
        for (size_t j = 0; j < ps.service_versions.size(); ++j) {
          std::string f = "services[" + std::to_string(i) + "].service_versions[" +
                          std::to_string(j) + "].version";
          const auto& v = ps.service_versions[j]->version;
          auto pub = db_.service_public(ps.service_org, ps.service_url, v, ps.service_arch);
          if (!pub) return internal(pub.err());
          std::string sid = ps.service_org + "/" + service_id(ps.service_url, v, ps.service_arch);
          if (!*pub) return invalid(f, "service '" + sid + "' not found");
          if (!**pub && ps.service_org != p.org)
            return invalid(f, "service '" + sid + "' is not public");
        }
      }
      if (auto r = db_.pattern_put(p, insert); !r) return internal(r.err());
      return add_events(address_pattern_event(db_, fb::EventKind::pattern_changed, p.org, p.name));
    }));
    set_item(std::move(p));
    return {};
  }

  // ---- get

  struct key_parts {
    fb::ResourceKind kind;
    std::string org;
    std::string id;
  };

  step parse_key(const fb::ResourceKey* k, key_parts& out) {
    if (!k) return invalid("key", "required");
    out.kind = k->kind();
    out.org = str(k->org());
    out.id = str(k->id());
    if (out.kind == fb::ResourceKind::unspecified || out.kind > fb::ResourceKind::pattern)
      return invalid("key.kind", "must be one of org, user, node, agbot, service, pattern");
    HMQ_CHECK(check_id("key.org", out.org));
    if (out.kind != fb::ResourceKind::org) {
      if (out.id.empty()) return invalid("key.id", "required");
      if (out.id.size() > max_url + 64) return invalid("key.id", "too long");
    }
    return {};
  }

  std::string shown_key(const key_parts& k) const {
    return k.kind == fb::ResourceKind::org ? k.org : k.org + "/" + k.id;
  }

  step get(const fb::ResourceKey* k) {
    key_parts key;
    HMQ_CHECK(parse_key(k, key));
    auto nf = not_found(kind_name(key.kind), shown_key(key));
    switch (key.kind) {
      case fb::ResourceKind::org: {
        if (!can_write(key.org) && p_.org != key.org) return denied("read", key.org);
        auto o = db_.org_get(key.org);
        if (!o) return internal(o.err());
        if (!*o) return nf;
        set_item(std::move(**o));
        return {};
      }
      case fb::ResourceKind::user: {
        bool self = is_user() && p_.org == key.org && p_.id == key.id;
        if (!can_write(key.org) && !self) return denied("read", key.org);
        auto u = load<fb::User>(table::users, key.org, key.id);
        if (!u) return nf;
        set_item(std::move(*u));
        return {};
      }
      case fb::ResourceKind::node: {
        auto n = load<fb::Node>(table::nodes, key.org, key.id);
        if (!n) {
          if (!can_write(key.org)) return denied("read", key.org);
          return nf;
        }
        auto ok = may_read_node(key.org, key.id, n->pattern);
        if (!ok) return internal(ok.err());
        if (!*ok) return denied_on("read", "node", shown_key(key));
        set_item(std::move(*n));
        return {};
      }
      case fb::ResourceKind::agbot: {
        if (!can_write(key.org) && !is_agbot(key.org, key.id)) return denied("read", key.org);
        auto a = load<fb::Agbot>(table::agbots, key.org, key.id);
        if (!a) return nf;
        auto pats = db_.agbot_patterns(key.org, key.id);
        if (!pats) return internal(pats.err());
        for (auto& p : *pats)
          a->patterns.push_back(std::make_unique<fb::AgbotPatternT>(std::move(p)));
        set_item(std::move(*a));
        return {};
      }
      case fb::ResourceKind::service: {
        auto s = load<fb::Service>(table::services, key.org, key.id);
        if (!s) {
          if (!can_write(key.org)) return nf;  // same answer as for a private service
          return nf;
        }
        auto ok = may_read_service(*s);
        if (!ok) return internal(ok.err());
        if (!*ok) return nf;  // private services of other orgs are not revealed
        auto shown = present_service(std::move(*s));
        if (!shown) return internal(shown.err());
        set_item(std::move(*shown));
        return {};
      }
      case fb::ResourceKind::pattern: {
        auto p = load<fb::Pattern>(table::patterns, key.org, key.id);
        if (!p) return nf;
        auto ok = may_read_pattern(*p);
        if (!ok) return internal(ok.err());
        if (!*ok) return nf;
        set_item(std::move(*p));
        return {};
      }
      default:
        return invalid("key.kind", "unknown");
    }
  }

  // ---- delete

  step remove(const fb::ResourceKey* k) {
    key_parts key;
    HMQ_CHECK(parse_key(k, key));
    std::string shown = shown_key(key);
    auto nf = not_found(kind_name(key.kind), shown);
    switch (key.kind) {
      case fb::ResourceKind::org: {
        if (!p_.root) return denied("delete", key.org);
        if (key.org == "root") return forbidden("org root cannot be deleted");
        HMQ_CHECK(tx([&]() -> step {
          // Patterns and services go with the org: tell the agbots that served them.
          auto pats = db_.blob_list(table::patterns, key.org, "", UINT32_MAX);
          if (!pats) return internal(pats.err());
          for (const auto& r : *pats)
            HMQ_CHECK(add_events(
                address_pattern_event(db_, fb::EventKind::pattern_removed, r.org, r.id)));
          // Its registered nodes go too, possibly from patterns of other orgs.
          auto nodes = db_.blob_list(table::nodes, key.org, "", UINT32_MAX);
          if (!nodes) return internal(nodes.err());
          for (const auto& r : *nodes) {
            auto n = from_blob<fb::Node>(r.blob);
            if (n) broker_remove(fb::AuthKind::node, n->broker_user);
            if (!n || n->pattern.empty()) continue;
            HMQ_CHECK(add_events(
                address_node_event(db_, fb::EventKind::node_unregistered, *n, n->pattern)));
          }
          auto bots = db_.blob_list(table::agbots, key.org, "", UINT32_MAX);
          if (!bots) return internal(bots.err());
          for (const auto& r : *bots)
            if (auto a = from_blob<fb::Agbot>(r.blob))
              broker_remove(fb::AuthKind::agbot, a->broker_user);
          auto deleted = db_.org_delete(key.org);
          if (!deleted) return internal(deleted.err());
          if (!*deleted) return nf;
          return {};
        }));
        s_.cache_.clear();  // every principal of the org is gone
        break;
      }
      case fb::ResourceKind::user: {
        if (!can_admin(key.org)) return denied("modify", key.org);
        if (key.org == "root" && key.id == "root")
          return forbidden("user root/root cannot be deleted");
        HMQ_CHECK(tx([&]() -> step {
          auto d = db_.row_delete(table::users, key.org, key.id);
          if (!d) return internal(d.err());
          return *d ? step{} : step{nf};
        }));
        s_.forget(cache_key_of(fb::AuthKind::user, key.org, key.id));
        break;
      }
      case fb::ResourceKind::node: {
        if (!can_write(key.org)) return denied("modify", key.org);
        HMQ_CHECK(tx([&]() -> step {
          auto n = load<fb::Node>(table::nodes, key.org, key.id);
          if (!n) return nf;
          if (!n->pattern.empty())
            HMQ_CHECK(add_events(
                address_node_event(db_, fb::EventKind::node_unregistered, *n, n->pattern)));
          // Its broker client goes too: the broker disconnects it and refuses it from now on.
          broker_remove(fb::AuthKind::node, n->broker_user);
          auto d = db_.row_delete(table::nodes, key.org, key.id);
          if (!d) return internal(d.err());
          return {};
        }));
        s_.forget(cache_key_of(fb::AuthKind::node, key.org, key.id));
        break;
      }
      case fb::ResourceKind::agbot: {
        if (!can_admin(key.org)) return denied("modify", key.org);
        HMQ_CHECK(tx([&]() -> step {
          if (auto a = load<fb::Agbot>(table::agbots, key.org, key.id))
            broker_remove(fb::AuthKind::agbot, a->broker_user);
          auto d = db_.row_delete(table::agbots, key.org, key.id);
          if (!d) return internal(d.err());
          return *d ? step{} : step{nf};
        }));
        s_.forget(cache_key_of(fb::AuthKind::agbot, key.org, key.id));
        break;
      }
      case fb::ResourceKind::service: {
        if (!can_write(key.org)) return denied("modify", key.org);
        HMQ_CHECK(tx([&]() -> step {
          auto s = load<fb::Service>(table::services, key.org, key.id);
          if (!s) return nf;
          HMQ_CHECK(add_events(
              address_service_event(db_, fb::EventKind::service_removed, s->org, s->url, key.id)));
          auto d = db_.row_delete(table::services, key.org, key.id);
          if (!d) return internal(d.err());
          return {};
        }));
        break;
      }
      case fb::ResourceKind::pattern: {
        if (!can_write(key.org)) return denied("modify", key.org);
        HMQ_CHECK(tx([&]() -> step {
          auto exists = db_.blob_get(table::patterns, key.org, key.id);
          if (!exists) return internal(exists.err());
          if (!*exists) return nf;
          HMQ_CHECK(add_events(
              address_pattern_event(db_, fb::EventKind::pattern_removed, key.org, key.id)));
          auto d = db_.row_delete(table::patterns, key.org, key.id);
          if (!d) return internal(d.err());
          return {};
        }));
        break;
      }
      default:
        return invalid("key.kind", "unknown");
    }
    set_empty();
    return {};
  }

  // ---- list

  uint32_t page_limit(uint32_t asked) const {
    if (asked == 0) return s_.opts_.default_page;
    return std::min(asked, s_.opts_.max_page);
  }

  step list(const fb::ListResources& op) {
    auto kind = op.kind();
    std::string org = str(op.org()), after = str(op.page_token());
    uint32_t limit = page_limit(op.limit());
    if (kind == fb::ResourceKind::unspecified || kind > fb::ResourceKind::pattern)
      return invalid("kind", "must be one of org, user, node, agbot, service, pattern");
    if (after.size() > max_url + 64) return invalid("page_token", "too long");
    fb::ResourceListT page;
    if (kind == fb::ResourceKind::org) {
      if (!p_.root) {
        // Everyone else sees only its own org.
        auto o = db_.org_get(p_.org);
        if (!o) return internal(o.err());
        if (*o && p_.org > after) {
          auto item = std::make_unique<fb::ResourceItemT>();
          item->resource.Set(std::move(**o));
          page.items.push_back(std::move(item));
        }
        set_result(std::move(page));
        return {};
      }
      auto rows = db_.org_list(after, limit + 1);
      if (!rows) return internal(rows.err());
      for (auto& o : *rows) {
        if (page.items.size() == limit) {
          page.next_page_token =
              page.items.empty() ? "" : page.items.back()->resource.AsOrg()->name;
          break;
        }
        auto item = std::make_unique<fb::ResourceItemT>();
        item->resource.Set(std::move(o));
        page.items.push_back(std::move(item));
      }
      set_result(std::move(page));
      return {};
    }
    HMQ_CHECK(check_id("org", org));
    bool reader = can_write(org) || (p_.org == org && kind != fb::ResourceKind::user);
    bool public_only = false;
    table t;
    switch (kind) {
      case fb::ResourceKind::user:
        t = table::users;
        break;
      case fb::ResourceKind::node:
        t = table::nodes;
        break;
      case fb::ResourceKind::agbot:
        t = table::agbots;
        break;
      case fb::ResourceKind::service:
        t = table::services;
        public_only = !reader;
        break;
      default:
        t = table::patterns;
        public_only = !reader;
        break;
    }
    if (!reader && !public_only) return denied("list", org);
    if (kind == fb::ResourceKind::user && !can_write(org)) return denied("list users of", org);
    if ((kind == fb::ResourceKind::node || kind == fb::ResourceKind::agbot) && !can_write(org))
      return denied("list", org);
    auto rows = db_.blob_list(t, org, after, limit + 1, public_only);
    if (!rows) return internal(rows.err());
    std::string last;
    for (auto& r : *rows) {
      if (page.items.size() == limit) {
        page.next_page_token = last;
        break;
      }
      auto item = std::make_unique<fb::ResourceItemT>();
      switch (kind) {
        case fb::ResourceKind::user: {
          auto u = from_blob<fb::User>(r.blob);
          if (!u) continue;
          item->resource.Set(std::move(*u));
          break;
        }
        case fb::ResourceKind::node: {
          auto n = from_blob<fb::Node>(r.blob);
          if (!n) continue;
          item->resource.Set(std::move(*n));
          break;
        }
        case fb::ResourceKind::agbot: {
          auto a = from_blob<fb::Agbot>(r.blob);
          if (!a) continue;
          auto pats = db_.agbot_patterns(r.org, r.id);
          if (!pats) return internal(pats.err());
          for (auto& p : *pats)
            a->patterns.push_back(std::make_unique<fb::AgbotPatternT>(std::move(p)));
          item->resource.Set(std::move(*a));
          break;
        }
        case fb::ResourceKind::service: {
          auto s = from_blob<fb::Service>(r.blob);
          if (!s) continue;
          auto shown = present_service(std::move(*s));
          if (!shown) return internal(shown.err());
          item->resource.Set(std::move(*shown));
          break;
        }
        default: {
          auto p = from_blob<fb::Pattern>(r.blob);
          if (!p) continue;
          item->resource.Set(std::move(*p));
          break;
        }
      }
      last = r.id;
      page.items.push_back(std::move(item));
    }
    set_result(std::move(page));
    return {};
  }

  // ---- node registration

  step register_node(const fb::RegisterNode& op) {
    if (p_.kind != fb::AuthKind::node) return forbidden("only a node may register itself");
    if (!crypto::usable_box_key(sender_))
      return invalid("sender_key", "not a usable X25519 public key");
    std::string pattern = str(op.pattern()), arch = str(op.arch()), name = str(op.name());
    HMQ_CHECK(check_qualified("pattern", pattern));
    HMQ_CHECK(check_arch("arch", arch));
    HMQ_CHECK(check_text("name", name, max_name));
    fb::RegisterNodeT full;
    op.UnPackTo(&full);
    HMQ_CHECK(check_service_user_inputs("user_inputs", full.user_inputs));
    auto q = *split_qualified(pattern);
    fb::NodeT stored;
    HMQ_CHECK(tx([&]() -> step {
      auto pat = load<fb::Pattern>(table::patterns, q.org, q.name);
      if (!pat || (!pat->public_ && pat->org != p_.org))
        return invalid("pattern", "pattern '" + pattern + "' not found");
      auto n = load<fb::Node>(table::nodes, p_.org, p_.id);
      if (!n) return not_found("node", p_.str());
      std::string old_pattern = n->pattern;
      if (!old_pattern.empty() && old_pattern != pattern) {
        HMQ_CHECK(
            add_events(address_node_event(db_, fb::EventKind::node_unregistered, *n, old_pattern)));
        if (auto r = db_.agreement_delete_all(n->org, n->id); !r) return internal(r.err());
      }
      n->pattern = pattern;
      n->arch = arch;
      if (!name.empty()) n->name = name;
      n->public_key.assign(sender_.begin(), sender_.end());
      n->mailbox = crypto::mailbox_id(sender_);
      // The broker identity follows the registered key: its mailbox is the username, the token
      // just verified the password. A different earlier identity (another key) is deleted.
      if (n->broker_user != n->mailbox) broker_remove(fb::AuthKind::node, n->broker_user);
      n->broker_user = n->mailbox;
      broker_ensure(fb::AuthKind::node, n->broker_user, secret_);
      n->user_inputs = std::move(full.user_inputs);
      n->registered_ms = s_.clock_.now_ms();
      if (auto r = db_.node_update(*n, ""); !r) return internal(r.err());
      HMQ_CHECK(add_events(address_node_event(db_, fb::EventKind::node_registered, *n, pattern)));
      stored = std::move(*n);
      return {};
    }));
    set_result(std::move(stored));
    return {};
  }

  step unregister_node() {
    if (p_.kind != fb::AuthKind::node) return forbidden("only a node may unregister itself");
    fb::NodeT stored;
    HMQ_CHECK(tx([&]() -> step {
      auto n = load<fb::Node>(table::nodes, p_.org, p_.id);
      if (!n) return not_found("node", p_.str());
      if (!n->pattern.empty())
        HMQ_CHECK(
            add_events(address_node_event(db_, fb::EventKind::node_unregistered, *n, n->pattern)));
      if (auto r = db_.agreement_delete_all(n->org, n->id); !r) return internal(r.err());
      n->pattern.clear();
      n->public_key.clear();
      n->mailbox.clear();
      n->registered_ms = 0;
      if (auto r = db_.node_update(*n, ""); !r) return internal(r.err());
      stored = std::move(*n);
      return {};
    }));
    set_result(std::move(stored));
    return {};
  }

  // ---- agreements

  // Node itself, org writers, or an agbot that serves the node's pattern.
  step may_touch_agreements(std::string_view org, std::string_view id,
                            std::optional<fb::NodeT>& node) {
    node = load<fb::Node>(table::nodes, org, id);
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

  step put_agreement(const fb::PutAgreement& op) {
    if (!op.record()) return invalid("record", "required");
    fb::AgreementRecordT r;
    op.record()->UnPackTo(&r);
    if (r.agreement_id.empty() || r.agreement_id.size() > 128 ||
        !std::all_of(r.agreement_id.begin(), r.agreement_id.end(),
                     [](char c) { return digit(c) || (c >= 'a' && c <= 'f'); }))
      return invalid("record.agreement_id", "must be 1 to 128 lowercase hex digits");
    HMQ_CHECK(check_id("record.node_org", r.node_org));
    HMQ_CHECK(check_id("record.node_id", r.node_id));
    if (!r.pattern.empty()) HMQ_CHECK(check_qualified("record.pattern", r.pattern));
    if (!r.service_url.empty()) HMQ_CHECK(check_url("record.service_url", r.service_url));
    if (!r.service_org.empty()) HMQ_CHECK(check_id("record.service_org", r.service_org));
    if (!r.service_version.empty())
      HMQ_CHECK(check_version("record.service_version", r.service_version));
    if (!r.agbot.empty()) HMQ_CHECK(check_qualified("record.agbot", r.agbot));
    if (r.state == fb::AgreementState::unspecified || r.state > fb::AgreementState::cancelled)
      return invalid("record.state", "must be one of proposed, accepted, finalized, cancelled");
    r.updated_ms = s_.clock_.now_ms();
    HMQ_CHECK(tx([&]() -> step {
      std::optional<fb::NodeT> node;
      HMQ_CHECK(may_touch_agreements(r.node_org, r.node_id, node));
      if (auto e = db_.agreement_put(r); !e) return internal(e.err());
      return {};
    }));
    fb::AgreementListT l;
    l.records.push_back(std::make_unique<fb::AgreementRecordT>(std::move(r)));
    set_result(std::move(l));
    return {};
  }

  // ---- rollouts

  // Only an agbot that serves the pattern publishes its progress, under its own name.
  step put_rollout_status(const fb::PutRolloutStatus& op) {
    if (!op.status()) return invalid("status", "required");
    fb::RolloutStatusT s;
    op.status()->UnPackTo(&s);
    HMQ_CHECK(check_qualified("status.pattern", s.pattern));
    HMQ_CHECK(check_id("status.service_org", s.service_org));
    HMQ_CHECK(check_url("status.service_url", s.service_url));
    if (s.state == fb::RolloutState::unspecified || s.state > fb::RolloutState::halted)
      return invalid("status.state", "must be one of running, paused, complete, halted");
    if (s.versions.size() > 64) return invalid("status.versions", "at most 64 versions");
    for (const auto& v : s.versions) {
      if (!v) return invalid("status.versions", "empty entry");
      HMQ_CHECK(check_version("status.versions.version", v->version));
    }
    if (!s.target_version.empty())
      HMQ_CHECK(check_version("status.target_version", s.target_version));
    if (p_.kind != fb::AuthKind::agbot)
      return denied_on("publish rollouts of", "pattern", s.pattern);
    auto q = split_qualified(s.pattern);
    if (!q) return invalid("status.pattern", "must be org/name");
    auto serves = db_.agbot_serves(p_.org, p_.id, q->org, q->name, "");
    if (!serves) return internal(serves.err());
    if (!*serves) return denied_on("publish rollouts of", "pattern", s.pattern);
    s.agbot = p_.org + "/" + p_.id;
    s.updated_ms = s_.clock_.now_ms();
    HMQ_CHECK(tx([&]() -> step {
      if (auto e = db_.rollout_put(s); !e) return internal(e.err());
      return {};
    }));
    set_empty();
    return {};
  }

  // Whoever may read the pattern may read its rollouts.
  step get_rollout_status(const fb::GetRolloutStatus& op) {
    std::string org = str(op.pattern_org()), name = str(op.pattern());
    HMQ_CHECK(check_id("pattern_org", org));
    HMQ_CHECK(check_id("pattern", name));
    auto p = load<fb::Pattern>(table::patterns, org, name);
    if (!p) return not_found("pattern", org + "/" + name);
    auto ok = may_read_pattern(*p);
    if (!ok) return internal(ok.err());
    if (!*ok) return not_found("pattern", org + "/" + name);
    auto rows = db_.rollout_list(org + "/" + name);
    if (!rows) return internal(rows.err());
    fb::RolloutStatusListT l;
    for (auto& r : *rows) l.statuses.push_back(std::make_unique<fb::RolloutStatusT>(std::move(r)));
    set_result(std::move(l));
    return {};
  }

  step list_agreements(const fb::ListAgreements& op) {
    std::string org = str(op.node_org()), id = str(op.node_id());
    HMQ_CHECK(check_id("node_org", org));
    HMQ_CHECK(check_id("node_id", id));
    std::optional<fb::NodeT> node;
    HMQ_CHECK(may_touch_agreements(org, id, node));
    auto rows = db_.agreement_list(org, id);
    if (!rows) return internal(rows.err());
    fb::AgreementListT l;
    for (auto& r : *rows) l.records.push_back(std::make_unique<fb::AgreementRecordT>(std::move(r)));
    set_result(std::move(l));
    return {};
  }

  // ---- node status

  // Only the node itself stores its status; the report is bounded and re-serialized from the
  // verified object form, so nothing unverified is stored.
  step put_node_status(const fb::PutNodeStatus& op) {
    if (p_.kind != fb::AuthKind::node) return denied_on("report the status of", "node", p_.str());
    if (!op.report()) return invalid("report", "required");
    fb::StatusReportT r;
    op.report()->UnPackTo(&r);
    HMQ_CHECK(check_count("report.services", r.services.size(), 256));
    for (const auto& sv : r.services) {
      if (!sv) return invalid("report.services", "null entry");
      HMQ_CHECK(check_text("report.services.agreement_id", sv->agreement_id, 128));
      HMQ_CHECK(check_text("report.services.service_url", sv->service_url, 512));
      HMQ_CHECK(check_text("report.services.service_version", sv->service_version, 128));
      if (sv->last_error.size() > 1024) sv->last_error.resize(1024);  // keep the head, not refuse
    }
    const int64_t now = s_.clock_.now_ms();
    auto blob = to_blob<fb::StatusReport>(r);
    HMQ_CHECK(tx([&]() -> step {
      auto n = load<fb::Node>(table::nodes, p_.org, p_.id);
      if (!n) return not_found("node", p_.str());
      if (auto e = db_.node_status_put(p_.org, p_.id, blob, now); !e) return internal(e.err());
      return {};
    }));
    set_empty();
    return {};
  }

  // The node, org writers and agbots serving its pattern (as for agreement records).
  step get_node_status(const fb::GetNodeStatus& op) {
    std::string org = str(op.node_org()), id = str(op.node_id());
    HMQ_CHECK(check_id("node_org", org));
    HMQ_CHECK(check_id("node_id", id));
    std::optional<fb::NodeT> node;
    HMQ_CHECK(may_touch_agreements(org, id, node));
    auto row = db_.node_status_get(org, id);
    if (!row) return internal(row.err());
    if (!*row) return not_found("node", org + "/" + id);
    fb::NodeStatusT ns;
    ns.node_org = org;
    ns.node_id = id;
    ns.received_ms = (*row)->received_ms;
    ns.last_heartbeat_ms = (*row)->last_heartbeat_ms;
    if (auto rep = from_blob<fb::StatusReport>((*row)->report))
      ns.report = std::make_unique<fb::StatusReportT>(std::move(*rep));
    set_result(std::move(ns));
    return {};
  }

  step delete_agreement(const fb::DeleteAgreement& op) {
    std::string org = str(op.node_org()), id = str(op.node_id()), aid = str(op.agreement_id());
    HMQ_CHECK(check_id("node_org", org));
    HMQ_CHECK(check_id("node_id", id));
    HMQ_CHECK(check_id("agreement_id", aid));
    HMQ_CHECK(tx([&]() -> step {
      std::optional<fb::NodeT> node;
      HMQ_CHECK(may_touch_agreements(org, id, node));
      auto d = db_.agreement_delete(org, id, aid);
      if (!d) return internal(d.err());
      if (!*d) return not_found("agreement", org + "/" + id + "/" + aid);
      return {};
    }));
    set_empty();
    return {};
  }

  // ---- switchboard

  step get_public_key(const fb::ResourceKey* k) {
    key_parts key;
    HMQ_CHECK(parse_key(k, key));
    std::string shown = shown_key(key);
    fb::KeyInfoT info;
    if (key.kind == fb::ResourceKind::node) {
      auto n = load<fb::Node>(table::nodes, key.org, key.id);
      if (!n)
        return can_write(key.org) ? not_found("node", shown)
                                  : denied_on("read the key of", "node", shown);
      auto ok = may_read_node(key.org, key.id, n->pattern);
      if (!ok) return internal(ok.err());
      if (!*ok) return denied_on("read the key of", "node", shown);
      if (n->public_key.empty()) return not_found("key of node", shown);
      info.public_key = n->public_key;
      info.mailbox = n->mailbox;
    } else if (key.kind == fb::ResourceKind::agbot) {
      auto a = load<fb::Agbot>(table::agbots, key.org, key.id);
      bool ok = can_write(key.org) || is_agbot(key.org, key.id) ||
                (p_.kind == fb::AuthKind::agbot && p_.org == key.org);
      if (!ok && a && p_.kind == fb::AuthKind::node) {
        // A node may look up an agbot that serves the node's pattern.
        auto q = split_qualified(caller_node_pattern());
        if (q) {
          auto serves = db_.agbot_serves(key.org, key.id, q->org, q->name, p_.org);
          if (!serves) return internal(serves.err());
          ok = *serves;
        }
      }
      if (!ok) return denied_on("read the key of", "agbot", shown);
      if (!a) return not_found("agbot", shown);
      if (a->public_key.empty()) return not_found("key of agbot", shown);
      info.public_key = a->public_key;
      info.mailbox = a->mailbox;
    } else {
      return invalid("key.kind", "must be node or agbot");
    }
    set_result(std::move(info));
    return {};
  }

  step search_pattern_nodes(const fb::SearchPatternNodes& op) {
    std::string porg = str(op.pattern_org()), pat = str(op.pattern()), norg = str(op.node_org());
    std::string after = str(op.page_token());
    HMQ_CHECK(check_id("pattern_org", porg));
    HMQ_CHECK(check_id("pattern", pat));
    if (norg.empty()) norg = porg;
    HMQ_CHECK(check_id("node_org", norg));
    if (after.size() > max_id) return invalid("page_token", "too long");
    bool ok = can_write(norg);
    if (!ok && p_.kind == fb::AuthKind::agbot) {
      auto serves = db_.agbot_serves(p_.org, p_.id, porg, pat, norg);
      if (!serves) return internal(serves.err());
      ok = *serves;
    }
    if (!ok) return denied_on("search nodes of", "pattern", porg + "/" + pat);
    uint32_t limit = page_limit(op.limit());
    auto rows = db_.nodes_of_pattern(porg + "/" + pat, norg, after, limit + 1);
    if (!rows) return internal(rows.err());
    fb::NodeListT l;
    for (auto& n : *rows) {
      if (l.nodes.size() == limit) {
        l.next_page_token = l.nodes.back()->id;
        break;
      }
      l.nodes.push_back(std::make_unique<fb::NodeT>(std::move(n)));
    }
    set_result(std::move(l));
    return {};
  }

  step agbot_pattern(const std::string& org, const std::string& id, const fb::AgbotPattern* pat,
                     bool add) {
    HMQ_CHECK(check_id("agbot_org", org));
    HMQ_CHECK(check_id("agbot_id", id));
    if (!pat) return invalid("pattern", "required");
    fb::AgbotPatternT p;
    pat->UnPackTo(&p);
    HMQ_CHECK(check_agbot_pattern("pattern", p));
    if (p.node_org.empty()) p.node_org = p.pattern_org;
    if (!can_admin(org)) return denied("modify", org);
    std::string key = org + "/" + id;
    fb::AgbotT stored;
    HMQ_CHECK(tx([&]() -> step {
      auto a = load<fb::Agbot>(table::agbots, org, id);
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
      auto pats = db_.agbot_patterns(org, id);
      if (!pats) return internal(pats.err());
      for (auto& x : *pats)
        a->patterns.push_back(std::make_unique<fb::AgbotPatternT>(std::move(x)));
      stored = std::move(*a);
      return {};
    }));
    set_item(std::move(stored));
    return {};
  }

  step agbot_hello() {
    if (p_.kind != fb::AuthKind::agbot) return forbidden("only an agbot may say hello");
    if (!crypto::usable_box_key(sender_))
      return invalid("sender_key", "not a usable X25519 public key");
    fb::AgbotT stored;
    HMQ_CHECK(tx([&]() -> step {
      auto a = load<fb::Agbot>(table::agbots, p_.org, p_.id);
      if (!a) return not_found("agbot", p_.str());
      a->public_key.assign(sender_.begin(), sender_.end());
      a->mailbox = crypto::mailbox_id(sender_);
      if (a->broker_user != a->mailbox) broker_remove(fb::AuthKind::agbot, a->broker_user);
      a->broker_user = a->mailbox;
      broker_ensure(fb::AuthKind::agbot, a->broker_user, secret_);
      if (auto r = db_.agbot_update(*a, ""); !r) return internal(r.err());
      auto pats = db_.agbot_patterns(p_.org, p_.id);
      if (!pats) return internal(pats.err());
      for (auto& x : *pats)
        a->patterns.push_back(std::make_unique<fb::AgbotPatternT>(std::move(x)));
      stored = std::move(*a);
      return {};
    }));
    set_item(std::move(stored));
    return {};
  }

  service& s_;
  db& db_;
  const crypto::public_key& sender_;
  principal p_;
  std::string secret_;  // the caller's verified secret: a node/agbot token is its broker password
  outcome out_;
  std::vector<addressed_event> events_;
  std::vector<broker_change> broker_;
};

outcome service::handle(const crypto::public_key& sender, const fb::RpcRequest& req) {
  handler h(*this, sender);
  return h.run(req);
}

void handle_in_group(service& s, core::store::group_commit& group, const crypto::public_key& sender,
                     const fb::RpcRequest& req, std::function<void(outcome&)> answer) {
  auto out = std::make_shared<outcome>();
  group.add([&] { *out = s.handle(sender, req); },
            [out, answer = std::move(answer)](const result<void>& committed) {
              if (!committed) {
                *out = outcome{};
                out->response.status = fb::RpcStatus::internal;
                out->response.error_message = "store commit failed: " + committed.err().message();
              }
              answer(*out);
            });
}

}  // namespace hmq::exchange
