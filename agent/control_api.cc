#include "agent/control_api.h"

#include <sys/utsname.h>

#include "agent/reasons.h"
#include "exchange_client/ids.h"

namespace hmq::agent {
namespace {

using core::control::error_response;
using core::control::ok_response;

core::error bad(std::string detail) {
  return core::error{make_error_code(errc::bad_request), std::move(detail)};
}

std::string value_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump();
}

std::string text_field(const json& o, const char* name) {
  auto it = o.find(name);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string error_text(const core::error& e) {
  // Operators need the detail first ("registered as ..."), the category second.
  return e.detail.empty() ? e.message() : e.detail + " (" + e.code.message() + ")";
}

}  // namespace

result<std::vector<fb::ServiceUserInputT>> parse_user_input(const json& in) {
  std::vector<fb::ServiceUserInputT> out;
  if (in.is_null()) return out;
  const json* arr = &in;
  if (in.is_object() && in.contains("userInput")) arr = &in["userInput"];
  if (in.is_object() && in.contains("services")) {
    const json& svcs = in["services"];
    if (!svcs.is_array()) return bad("user input: 'services' must be an array");
    for (const auto& s : svcs) {
      if (!s.is_object()) return bad("user input: each service must be an object");
      fb::ServiceUserInputT u;
      u.service_org = text_field(s, "org");
      u.service_url = text_field(s, "url");
      u.service_arch = text_field(s, "arch");
      u.service_version_range = text_field(s, "versionRange");
      if (u.service_url.empty()) return bad("user input: service without 'url'");
      auto vars = s.find("variables");
      if (vars != s.end()) {
        if (!vars->is_object())
          return bad("user input: 'variables' of " + u.service_url + " must be an object");
        for (const auto& [k, v] : vars->items()) {
          auto iv = std::make_unique<fb::UserInputValueT>();
          iv->name = k;
          iv->value = value_text(v);
          u.inputs.push_back(std::move(iv));
        }
      }
      out.push_back(std::move(u));
    }
    return out;
  }
  if (!arr->is_array()) return bad("user input: expected Horizon's userInput array");
  for (const auto& s : *arr) {
    if (!s.is_object()) return bad("user input: each entry must be an object");
    fb::ServiceUserInputT u;
    u.service_org = text_field(s, "serviceOrgid");
    u.service_url = text_field(s, "serviceUrl");
    u.service_arch = text_field(s, "serviceArch");
    u.service_version_range = text_field(s, "serviceVersionRange");
    if (u.service_url.empty()) return bad("user input: entry without 'serviceUrl'");
    auto inputs = s.find("inputs");
    if (inputs != s.end()) {
      if (!inputs->is_array())
        return bad("user input: 'inputs' of " + u.service_url + " must be an array");
      for (const auto& i : *inputs) {
        if (!i.is_object() || !i.contains("name") || !i["name"].is_string() || !i.contains("value"))
          return bad("user input: each input of " + u.service_url + " needs 'name' and 'value'");
        auto iv = std::make_unique<fb::UserInputValueT>();
        iv->name = i["name"].get<std::string>();
        iv->value = value_text(i["value"]);
        u.inputs.push_back(std::move(iv));
      }
    }
    out.push_back(std::move(u));
  }
  return out;
}

std::string host_arch() {
  utsname u{};
  if (::uname(&u) != 0) return "amd64";
  std::string m = u.machine;
  if (m == "x86_64" || m == "amd64") return "amd64";
  if (m == "aarch64" || m == "arm64") return "arm64";
  if (m.rfind("arm", 0) == 0) return "arm";
  if (m == "ppc64le") return "ppc64el";
  if (m == "i386" || m == "i686") return "386";
  return m;  // s390x, riscv64: Horizon uses the kernel's name
}

void control_api::handle(const json& req, core::control::reply_fn reply) {
  const std::string op = req.at("op").get<std::string>();
  if (op == "register") return do_register(req, std::move(reply));
  if (op == "unregister") {
    return engine_.unregister_node([reply](result<void> r) {
      reply(r ? ok_response() : error_response(error_text(r.err())));
    });
  }
  if (op == "agreement_list") return reply(agreement_list());
  if (op == "node_status") return reply(node_status());
  if (op == "eventlog_list") {
    // Default: the last 100 events; "all": every kept one (bounded by the log's retention).
    const bool all = req.contains("all") && req["all"].is_boolean() && req["all"].get<bool>();
    auto evs = engine_.events().list(text_field(req, "agreement"), all ? 0 : 100);
    if (!evs) return reply(error_response(error_text(evs.err())));
    json arr = json::array();
    for (const auto& e : *evs)
      arr.push_back({{"seq", e.seq},
                     {"time_ms", e.time_ms},
                     {"kind", e.kind},
                     {"agreement", e.agreement},
                     {"service", e.service},
                     {"reason", e.reason},
                     {"reason_text", e.reason ? std::string(reason_text(e.reason)) : std::string()},
                     {"message", e.message}});
    return reply(ok_response({{"events", arr}}));
  }
  if (op == "key_import") {
    auto key = crypto::parse_public_key(text_field(req, "key"));
    if (!key)
      return reply(error_response("key_import: 'key' must be a base64 or hex Ed25519 public key"));
    std::string name = text_field(req, "name");
    if (auto r = engine_.import_key(*key, name.empty() ? crypto::to_hex(*key).substr(0, 16) : name);
        !r)
      return reply(error_response(error_text(r.err())));
    return reply(ok_response({{"key", crypto::to_base64(*key)}}));
  }
  if (op == "key_list") {
    auto keys = engine_.trusted_keys();
    if (!keys) return reply(error_response(error_text(keys.err())));
    json arr = json::array();
    for (const auto& k : *keys)
      arr.push_back(
          {{"key", crypto::to_base64(k.key)}, {"name", k.name}, {"added_ms", k.added_ms}});
    return reply(ok_response({{"keys", arr}}));
  }
  reply(error_response("unknown op '" + op + "'"));
}

void control_api::do_register(const json& req, core::control::reply_fn reply) {
  auto node = exchange_client::split_qualified(text_field(req, "node"));
  if (!node) return reply(error_response("register: 'node' must be ORG/NODE"));
  auto pattern = exchange_client::split_qualified(text_field(req, "pattern"));
  if (!pattern) return reply(error_response("register: 'pattern' must be ORG/PATTERN"));
  std::string token = text_field(req, "token");
  if (token.empty()) return reply(error_response("register: 'token' is required"));
  std::string arch = text_field(req, "arch");
  if (arch.empty()) arch = host_arch();
  json ui = req.contains("user_input") ? req["user_input"] : json();
  auto inputs = parse_user_input(ui);
  if (!inputs) return reply(error_response(error_text(inputs.err())));
  node_registration r{{node->org, node->name, token}, pattern->str(), arch, std::move(*inputs)};
  engine_.register_node(std::move(r), ui.is_null() ? "[]" : ui.dump(), [reply](result<void> res) {
    reply(res ? ok_response() : error_response(error_text(res.err())));
  });
}

json control_api::agreement_list() {
  json arr = json::array();
  for (const auto& a : engine_.agreements()) {
    arr.push_back(
        {{"id", a.id},
         {"state", state_name(a.state)},
         {"agbot", a.agbot},
         {"pattern", a.pattern},
         {"service",
          {{"org", a.service_org}, {"url", a.service_url}, {"version", a.service_version}}},
         {"reason", a.reason},
         {"reason_text", std::string(reason_text(a.reason))},
         {"reason_message", a.reason_message},
         {"accepted_ms", a.accepted_ms},
         {"finalized_ms", a.finalized_ms},
         {"cancelled_ms", a.cancelled_ms},
         {"exchange_synced", a.exchange_synced}});
  }
  return ok_response({{"agreements", arr}});
}

json control_api::node_status() {
  json out = json::object();
  auto reg = engine_.registration();
  if (!reg) return error_response(error_text(reg.err()));
  out["registered"] = reg->has_value();
  if (*reg) {
    const auto& r = **reg;
    out["node"] = r.node.org + "/" + r.node.id;
    out["pattern"] = r.pattern;
    out["arch"] = r.arch;
    out["registered_ms"] = r.registered_ms;
    out["confirmed"] = r.confirmed;
    out["user_input"] = json::parse(r.user_input_json, nullptr, false);
  }
  out["mailbox"] = facts_.mailbox;
  out["public_key"] = facts_.public_key_b64;
  if (!facts_.claim.empty()) out["claim"] = facts_.claim;
  out["broker_connected"] = facts_.broker_connected ? facts_.broker_connected() : false;
  out["live_agreements"] = engine_.live_agreements();
  auto keys = engine_.trusted_keys();
  out["trusted_keys"] = keys ? keys->size() : 0;
  const auto& s = engine_.stats();
  out["counters"] = {{"proposals", s.proposals},
                     {"accepted", s.accepted},
                     {"rejected", s.rejected},
                     {"duplicates", s.duplicates},
                     {"finalized", s.finalized},
                     {"cancelled", s.cancelled},
                     {"dropped_malformed", s.dropped_malformed},
                     {"dropped_not_owner", s.dropped_not_owner},
                     {"dropped_unknown", s.dropped_unknown},
                     {"dropped_bad_agbot", s.dropped_bad_agbot},
                     {"dropped_unrouted", s.dropped_unrouted},
                     {"dropped_busy", s.dropped_busy},
                     {"agbot_key_lookups", s.agbot_key_lookups},
                     {"pattern_reads", s.pattern_reads},
                     {"store_errors", s.store_errors},
                     {"pruned", s.pruned},
                     {"upgrades", s.upgrades},
                     {"rollbacks", s.rollbacks}};
  if (facts_.wire_counters) out["wire"] = facts_.wire_counters();
  return ok_response(out);
}

}  // namespace hmq::agent
