#include "cli/resource_view.h"

#include <algorithm>

#include "cli/format.h"
#include "cli/horizon_json.h"
#include "core/crypto/crypto.h"
#include "core/wire/service_signature.h"
#include "exchange_client/ids.h"

namespace hmq::cli {

namespace crypto = core::crypto;
namespace xc = ::hmq::exchange_client;
using json = nlohmann::json;

namespace {

void print_fields(std::ostream& out,
                  const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t w = 0;
  for (const auto& [k, v] : fields) w = std::max(w, k.size());
  for (const auto& [k, v] : fields)
    out << k << ":" << std::string(w - k.size() + 1, ' ') << v << "\n";
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

std::string key_text(const std::vector<uint8_t>& k) {
  return k.empty() ? "" : crypto::to_base64(k);
}

json to_json(const fb::OrgT& o) {
  return {
      {"org", o.name}, {"label", o.label}, {"description", o.description}, {"agbots", o.agbots}};
}

json to_json(const fb::UserT& u) {
  return {{"org", u.org},
          {"username", u.username},
          {"admin", u.admin},
          {"email", u.email},
          {"recorder", u.recorder}};
}

json to_json(const fb::NodeT& n) {
  return {{"org", n.org},
          {"id", n.id},
          {"name", n.name},
          {"arch", n.arch},
          {"pattern", n.pattern},
          {"publicKey", key_text(n.public_key)},
          {"mailbox", n.mailbox},
          {"userInput", user_inputs_to_json(n.user_inputs)},
          {"lastHeartbeat", n.last_heartbeat_ms},
          {"registered", n.registered_ms}};
}

json to_json(const fb::AgbotT& a) {
  json ps = json::array();
  for (const auto& p : a.patterns) {
    ps.push_back(
        {{"patternOrgid", p->pattern_org}, {"pattern", p->pattern}, {"nodeOrgid", p->node_org}});
  }
  return {{"org", a.org},         {"id", a.id},
          {"name", a.name},       {"publicKey", key_text(a.public_key)},
          {"mailbox", a.mailbox}, {"patterns", ps}};
}

json to_json(const fb::ServiceT& s) {
  auto d = parse_deployment_buffer(s.deployment);
  return service_to_json(s, d.ok() ? &*d : nullptr);
}

json to_json(const fb::PatternT& p) {
  return pattern_to_json(p);
}

std::string sig_status(const fb::ServiceT& s) {
  if (s.service_signature.empty() && s.deployment_signature.empty()) return "none";
  if (s.service_signature.empty()) return "OLD FORMAT (deployment only): re-publish";
  auto v = core::wire::verify_service(s);
  return v ? "valid (" + key_text(s.publisher_key) + ")" : "INVALID";
}

}  // namespace

void print_table(std::ostream& out, const std::vector<std::string>& head,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::vector<std::string>> all;
  all.reserve(rows.size() + 1);
  all.push_back(head);
  all.insert(all.end(), rows.begin(), rows.end());
  ::hmq::cli::print_table(out, all);
}

json agreement_record_json(const fb::AgreementRecordT& r) {
  return {
      {"id", r.agreement_id},
      {"node", r.node_org + "/" + r.node_id},
      {"pattern", r.pattern},
      {"service", {{"org", r.service_org}, {"url", r.service_url}, {"version", r.service_version}}},
      {"agbot", r.agbot},
      {"state", fb::EnumNameAgreementState(r.state)},
      {"updated_ms", r.updated_ms}};
}

json resource_json(const fb::ResourceUnion& r) {
  switch (r.type) {
    case fb::Resource::Org:
      return to_json(*r.AsOrg());
    case fb::Resource::User:
      return to_json(*r.AsUser());
    case fb::Resource::Node:
      return to_json(*r.AsNode());
    case fb::Resource::Agbot:
      return to_json(*r.AsAgbot());
    case fb::Resource::Service:
      return to_json(*r.AsService());
    case fb::Resource::Pattern:
      return to_json(*r.AsPattern());
    default:
      return json();
  }
}

void print_resource_detail(std::ostream& out, const fb::ResourceUnion& r) {
  switch (r.type) {
    case fb::Resource::Org: {
      const auto& o = *r.AsOrg();
      std::string agbots;
      for (const auto& a : o.agbots) agbots += (agbots.empty() ? "" : ", ") + a;
      print_fields(out, {{"org", o.name},
                         {"label", o.label},
                         {"description", o.description},
                         {"agbots of other orgs", agbots.empty() ? "-" : agbots}});
      break;
    }
    case fb::Resource::User: {
      const auto& u = *r.AsUser();
      print_fields(out, {{"user", u.org + "/" + u.username},
                         {"admin", u.admin ? "yes" : "no"},
                         {"email", u.email},
                         {"may record the bus", u.recorder ? "yes" : "no"}});
      break;
    }
    case fb::Resource::Node: {
      const auto& n = *r.AsNode();
      print_fields(out, {{"node", n.org + "/" + n.id},
                         {"name", n.name},
                         {"arch", n.arch},
                         {"pattern", n.pattern},
                         {"public key", key_text(n.public_key)},
                         {"mailbox", n.mailbox},
                         {"last heartbeat ms", std::to_string(n.last_heartbeat_ms)}});
      break;
    }
    case fb::Resource::Agbot: {
      const auto& a = *r.AsAgbot();
      std::vector<std::string> ps;
      for (const auto& p : a.patterns)
        ps.push_back(p->pattern_org + "/" + p->pattern + " (nodes of " + p->node_org + ")");
      print_fields(out, {{"agbot", a.org + "/" + a.id},
                         {"name", a.name},
                         {"public key", key_text(a.public_key)},
                         {"patterns", join(ps, ", ")}});
      break;
    }
    case fb::Resource::Service: {
      const auto& s = *r.AsService();
      print_fields(out, {{"service", s.org + "/" + xc::service_id(s.url, s.version, s.arch)},
                         {"url", s.url},
                         {"version", s.version},
                         {"arch", s.arch},
                         {"sharable", std::string(sharing_name(s.sharable))},
                         {"label", s.label},
                         {"public", s.public_ ? "yes" : "no"},
                         {"signature", sig_status(s)}});
      if (auto d = parse_deployment_buffer(s.deployment); d.ok()) {
        std::vector<std::vector<std::string>> rows;
        for (const auto& c : d->containers) rows.push_back({c->name, c->image, c->image_digest});
        out << "\n";
        print_table(out, {"CONTAINER", "IMAGE", "DIGEST"}, rows);
      }
      break;
    }
    case fb::Resource::Pattern: {
      const auto& p = *r.AsPattern();
      print_fields(out, {{"pattern", p.org + "/" + p.name},
                         {"label", p.label},
                         {"public", p.public_ ? "yes" : "no"}});
      std::vector<std::vector<std::string>> rows;
      for (const auto& s : p.services) {
        std::vector<std::string> vs;
        for (const auto& v : s->service_versions) vs.push_back(v->version);
        rows.push_back({s->service_org + "/" + s->service_url, s->service_arch, join(vs, ",")});
      }
      out << "\n";
      print_table(out, {"SERVICE", "ARCH", "VERSIONS"}, rows);
      break;
    }
    default:
      out << "(unknown resource)\n";
  }
}

std::vector<std::string> row_of(const fb::ResourceUnion& r) {
  switch (r.type) {
    case fb::Resource::Org:
      return {r.AsOrg()->name, r.AsOrg()->label, r.AsOrg()->description};
    case fb::Resource::User:
      return {r.AsUser()->org + "/" + r.AsUser()->username, r.AsUser()->admin ? "yes" : "no",
              r.AsUser()->email};
    case fb::Resource::Node: {
      const auto& n = *r.AsNode();
      return {n.org + "/" + n.id, n.arch, n.pattern, n.public_key.empty() ? "no" : "yes"};
    }
    case fb::Resource::Agbot:
      return {r.AsAgbot()->org + "/" + r.AsAgbot()->id,
              std::to_string(r.AsAgbot()->patterns.size())};
    case fb::Resource::Service: {
      const auto& s = *r.AsService();
      return {s.org + "/" + xc::service_id(s.url, s.version, s.arch), s.url, s.version, s.arch,
              std::string(sharing_name(s.sharable))};
    }
    case fb::Resource::Pattern:
      return {r.AsPattern()->org + "/" + r.AsPattern()->name, r.AsPattern()->label,
              std::to_string(r.AsPattern()->services.size())};
    default:
      return {};
  }
}

std::vector<std::string> head_of(fb::ResourceKind k) {
  switch (k) {
    case fb::ResourceKind::org:
      return {"ORG", "LABEL", "DESCRIPTION"};
    case fb::ResourceKind::user:
      return {"USER", "ADMIN", "EMAIL"};
    case fb::ResourceKind::node:
      return {"NODE", "ARCH", "PATTERN", "REGISTERED"};
    case fb::ResourceKind::agbot:
      return {"AGBOT", "PATTERNS"};
    case fb::ResourceKind::service:
      return {"SERVICE", "URL", "VERSION", "ARCH", "SHARABLE"};
    case fb::ResourceKind::pattern:
      return {"PATTERN", "LABEL", "SERVICES"};
    default:
      return {};
  }
}

}  // namespace hmq::cli
