#include "exchange/validate.h"

#include <algorithm>

#include "core/crypto/crypto.h"
#include "core/wire/service_signature.h"
#include "core/wire/user_input.h"
#include "exchange_client/ids.h"

namespace hmq::exchange {

namespace crypto = core::crypto;
using exchange_client::split_qualified;

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
step check_text(const std::string& field, std::string_view s, size_t max, bool required) {
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
step check_arch(const std::string& field, std::string_view s, bool allow_any) {
  if (allow_any && s == "*") return {};
  if (s.empty()) return invalid(field, "required");
  if (s.size() > 32 || !std::all_of(s.begin(), s.end(), id_char))
    return invalid(field, "an architecture like amd64, arm64 or arm");
  return {};
}
step check_count(const std::string& field, size_t n, size_t max) {
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
  // The whole definition, not only the deployment: agents refuse anything less.
  if (auto v = core::wire::verify_service(s); !v)
    return invalid("service_signature", "the service " + v.err().detail);
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
    if (!core::wire::known_input_type(u.type))
      return invalid(f + ".type", "must be one of string, int, float, boolean, list of strings");
    HMQ_CHECK(check_text(f + ".default_value", u.default_value, max_text));
    if (u.has_default)
      if (auto why = core::wire::typed_value_error(u.type, u.default_value))
        return invalid(f + ".default_value", *why);
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

bool valid_mailbox(std::string_view m) {
  return m.size() == 16 && std::all_of(m.begin(), m.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
         });
}

}  // namespace hmq::exchange
