// From the exchange's form back to Horizon's JSON (`get -o json`), and a deployment to and from
// the bytes that are signed and stored. Parsing Horizon's files is horizon_json.cc.
#include "cli/horizon_json.h"

namespace hmq::cli {

using json = nlohmann::json;

nlohmann::json deployment_to_json(const fb::DeploymentT& d) {
  json services = json::object();
  for (const auto& c : d.containers) {
    if (!c) continue;
    json o;
    o["image"] = c->image;
    if (!c->environment.empty()) o["environment"] = c->environment;
    if (!c->command.empty()) o["command"] = c->command;
    if (!c->entrypoint.empty()) o["entrypoint"] = c->entrypoint;
    if (!c->ports.empty()) {
      json ports = json::array();
      for (const auto& p : c->ports) {
        json po{{"HostPort", p->host_port}};
        if (!p->host_ip.empty()) po["HostIP"] = p->host_ip;
        ports.push_back(po);
      }
      o["ports"] = ports;
    }
    if (!c->binds.empty()) o["binds"] = c->binds;
    if (c->privileged) o["privileged"] = true;
    if (!c->devices.empty()) o["devices"] = c->devices;
    if (!c->cap_add.empty()) o["cap_add"] = c->cap_add;
    if (c->max_memory_mb) o["max_memory_mb"] = c->max_memory_mb;
    if (c->max_cpus != 0) o["max_cpus"] = c->max_cpus;
    if (!c->network.empty()) o["network"] = c->network;
    services[c->name] = o;
  }
  return json{{"services", services}};
}

nlohmann::json service_to_json(const fb::ServiceT& s, const fb::DeploymentT* deployment) {
  json j;
  j["org"] = s.org;
  j["label"] = s.label;
  j["description"] = s.description;
  j["public"] = s.public_;
  j["url"] = s.url;
  j["version"] = s.version;
  j["arch"] = s.arch;
  j["sharable"] = std::string(sharing_name(s.sharable));
  json req = json::array();
  for (const auto& r : s.required_services) {
    req.push_back(
        {{"url", r->url}, {"org", r->org}, {"versionRange", r->version_range}, {"arch", r->arch}});
  }
  j["requiredServices"] = req;
  json inputs = json::array();
  for (const auto& u : s.user_inputs) {
    inputs.push_back({{"name", u->name},
                      {"label", u->label},
                      {"type", u->type},
                      {"defaultValue", u->default_value}});
  }
  j["userInput"] = inputs;
  j["deployment"] = deployment ? deployment_to_json(*deployment) : json::object();
  return j;
}

nlohmann::json user_inputs_to_json(
    const std::vector<std::unique_ptr<fb::ServiceUserInputT>>& inputs) {
  json out = json::array();
  for (const auto& u : inputs) {
    json vals = json::array();
    for (const auto& v : u->inputs) vals.push_back({{"name", v->name}, {"value", v->value}});
    out.push_back({{"serviceOrgid", u->service_org},
                   {"serviceUrl", u->service_url},
                   {"serviceArch", u->service_arch},
                   {"serviceVersionRange", u->service_version_range},
                   {"inputs", vals}});
  }
  return out;
}

nlohmann::json pattern_to_json(const fb::PatternT& p) {
  json j;
  j["org"] = p.org;
  j["name"] = p.name;
  j["label"] = p.label;
  j["description"] = p.description;
  j["public"] = p.public_;
  json services = json::array();
  for (const auto& s : p.services) {
    json o{{"serviceUrl", s->service_url},
           {"serviceOrgid", s->service_org},
           {"serviceArch", s->service_arch},
           {"agreementLess", s->agreement_less}};
    json versions = json::array();
    for (const auto& v : s->service_versions) {
      json vo{{"version", v->version}};
      if (v->priority) {
        vo["priority"] = {{"priority_value", v->priority->priority_value},
                          {"retries", v->priority->retries},
                          {"retry_durations", v->priority->retry_durations},
                          {"verified_durations", v->priority->verified_durations}};
      }
      versions.push_back(vo);
    }
    o["serviceVersions"] = versions;
    if (s->node_health) {
      o["nodeHealth"] = {{"missing_heartbeat_interval", s->node_health->missing_heartbeat_interval},
                         {"check_agreement_status", s->node_health->check_agreement_status}};
    }
    services.push_back(o);
  }
  j["services"] = services;
  j["userInput"] = user_inputs_to_json(p.user_inputs);
  if (p.upgrade_policy) {
    j["upgradePolicy"] = {{"max_in_flight", p.upgrade_policy->max_in_flight},
                          {"batch_pause_s", p.upgrade_policy->batch_pause_s},
                          {"max_failures", p.upgrade_policy->max_failures}};
  }
  return j;
}

std::vector<uint8_t> serialize_deployment(const fb::DeploymentT& d) {
  flatbuffers::FlatBufferBuilder b(1024);
  b.Finish(fb::Deployment::Pack(b, &d));
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

result<fb::DeploymentT> parse_deployment_buffer(std::span<const uint8_t> bytes) {
  flatbuffers::Verifier v(bytes.data(), bytes.size());
  if (bytes.empty() || !v.VerifyBuffer<fb::Deployment>(nullptr)) {
    return core::error{make_error_code(horizon_errc::invalid_field),
                       "deployment: not a valid Deployment buffer"};
  }
  fb::DeploymentT d;
  flatbuffers::GetRoot<fb::Deployment>(bytes.data())->UnPackTo(&d);
  return d;
}

}  // namespace hmq::cli
