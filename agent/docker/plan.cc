#include <algorithm>
#include <cmath>
#include <functional>

#include "agent/docker/runtime.h"
#include "agent/docker/steps.h"
#include "core/crypto/crypto.h"

// docker_runtime::make_plan: from a workload to the images, instances, networks and containers a
// deploy makes (docs/containers.md). Pure: no Docker call.
namespace hmq::agent::docker {
namespace {

using R = fb::CancelReason;

// Docker names allow [a-zA-Z0-9][a-zA-Z0-9_.-]*; anything else becomes '-'.
std::string sanitize(std::string_view s) {
  std::string out;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (std::isalnum(u) || c == '_' || c == '.' || c == '-')
               ? static_cast<char>(std::tolower(u))
               : '-';
  }
  while (!out.empty() && !std::isalnum(static_cast<unsigned char>(out.front()))) out.erase(0, 1);
  if (out.size() > 40) out.resize(40);
  return out.empty() ? "svc" : out;
}

// "https://example.com/services/gps" -> "gps"
std::string short_name(const std::string& url) {
  std::string u = url;
  while (!u.empty() && u.back() == '/') u.pop_back();
  auto slash = u.rfind('/');
  return sanitize(slash == std::string::npos ? u : u.substr(slash + 1));
}

// The first `bytes` bytes of BLAKE2b-128, in hex (libsodium's shortest output is 16 bytes).
std::string hex_hash(std::string_view s, size_t bytes) {
  auto h = crypto::generic_hash({reinterpret_cast<const uint8_t*>(s.data()), s.size()}, 16);
  return crypto::to_hex(h).substr(0, 2 * std::min<size_t>(bytes, 16));
}

std::string service_key(const std::string& org, const std::string& url) {
  return org + "/" + url;
}

// Puts KEY=value into env, replacing an earlier KEY.
void set_env(std::vector<std::string>& env, const std::string& key, const std::string& value) {
  std::string prefix = key + "=";
  for (auto& e : env)
    if (e.compare(0, prefix.size(), prefix) == 0) {
      e = prefix + value;
      return;
    }
  env.push_back(prefix + value);
}

// The service's declared inputs (the signed definition's list; the agent refused proposals
// with others): the proposed value, else the default. Never one that the signed deployment
// sets itself, and never one that is not declared, whatever the proposal carries.
void add_inputs(std::vector<std::string>& env, const fb::ServiceT& s,
                const fb::ProposedServiceT& ps) {
  const size_t signed_vars = env.size();
  auto set_by_deployment = [&](const std::string& name) {
    const std::string prefix = name + "=";
    return std::any_of(
        env.begin(), env.begin() + static_cast<std::ptrdiff_t>(signed_vars),
        [&](const std::string& e) { return e.compare(0, prefix.size(), prefix) == 0; });
  };
  for (const auto& def : s.user_inputs) {
    if (!def || def->name.empty() || set_by_deployment(def->name)) continue;
    const fb::UserInputValueT* value = nullptr;
    for (const auto& in : ps.user_inputs)
      if (in && in->name == def->name) value = in.get();
    if (value)
      set_env(env, def->name, value->value);
    else if (def->has_default)
      set_env(env, def->name, def->default_value);
  }
}

std::optional<registry_auth> auth_for(const fb::ServiceT& s, const std::string& registry) {
  for (const auto& a : s.dockauths) {
    if (!a) continue;
    std::string r = a->registry;
    for (const char* scheme : {"https://", "http://"})
      if (r.rfind(scheme, 0) == 0) r = r.substr(std::string_view(scheme).size());
    while (!r.empty() && r.back() == '/') r.pop_back();
    if (r == registry)
      return registry_auth{a->username.empty() ? "token" : a->username, a->token, registry};
  }
  return std::nullopt;
}

// "8080:80/tcp" -> host 8080, container 80/tcp; "80" -> host 80, container 80/tcp.
port_binding parse_port(const fb::PortBindingT& p) {
  port_binding b;
  b.host_ip = p.host_ip;
  std::string s = p.host_port;
  std::string host = s, cont = s;
  if (auto c = s.find(':'); c != std::string::npos) {
    host = s.substr(0, c);
    cont = s.substr(c + 1);
  }
  if (auto sl = host.find('/'); sl != std::string::npos) host = host.substr(0, sl);
  if (cont.find('/') == std::string::npos) cont += "/tcp";
  b.host_port = host;
  b.container_port = cont;
  return b;
}

}  // namespace

result<docker_runtime::plan> docker_runtime::make_plan(const workload& w,
                                                       const runtime_options& o) {
  plan p;
  if (w.agreement_id.size() < 12 ||
      !std::all_of(w.agreement_id.begin(), w.agreement_id.end(),
                   [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
    return runtime_failure(R::image_data_error, "bad agreement id");
  // Index the services and read their deployments (verified again: this is our own input check).
  struct svc {
    const fb::ProposedServiceT* ps;
    fb::DeploymentT dep;
  };
  std::map<std::string, svc> by_key;
  std::vector<std::string> order_in;
  for (const auto& ps : w.services) {
    if (!ps.service)
      return runtime_failure(R::image_data_error, "proposal service without a service");
    const auto& s = *ps.service;
    fb::DeploymentT dep;
    if (!s.deployment.empty()) {
      flatbuffers::Verifier v(s.deployment.data(), s.deployment.size());
      if (!v.VerifyBuffer<fb::Deployment>(nullptr))
        return runtime_failure(R::image_data_error, "deployment of " + s.url + " is malformed");
      flatbuffers::GetRoot<fb::Deployment>(s.deployment.data())->UnPackTo(&dep);
    }
    std::string k = service_key(s.org, s.url);
    if (by_key.count(k))
      return runtime_failure(R::image_data_error, "service " + k + " appears twice");
    by_key.emplace(k, svc{&ps, std::move(dep)});
    order_in.push_back(k);
  }
  // Producers before consumers (depth-first over requiredServices; a cycle cannot be run).
  std::vector<std::string> order;
  std::map<std::string, int> mark;  // 1 visiting, 2 done
  std::function<result<void>(const std::string&)> visit =
      [&](const std::string& k) -> result<void> {
    if (mark[k] == 2) return core::ok();
    if (mark[k] == 1) return runtime_failure(R::image_data_error, "dependency cycle through " + k);
    mark[k] = 1;
    for (const auto& ref : by_key.at(k).ps->service->required_services) {
      if (!ref) continue;
      std::string rk = service_key(ref->org, ref->url);
      if (!by_key.count(rk))
        return runtime_failure(R::image_data_error,
                               k + " requires " + rk + ", which is not in the proposal");
      if (auto r = visit(rk); !r) return r;
    }
    mark[k] = 2;
    order.push_back(k);
    return core::ok();
  };
  for (const auto& k : order_in)
    if (auto r = visit(k); !r) return r.err();

  std::map<std::string, std::string> instance_of;  // service key -> instance key
  std::set<std::string> seen_images;
  for (const auto& k : order) {
    const auto& sv = by_key.at(k);
    const auto& s = *sv.ps->service;
    instance inst;
    inst.service = k;
    inst.shared = s.sharable == fb::Sharing::singleton;
    inst.key = inst.shared ? "hmq-s-" + short_name(s.url) + "-" + hex_hash(k, 4)
                           : "hmq-" + w.agreement_id.substr(0, 12) + "-" + short_name(s.url);
    inst.users.insert(w.agreement_id);
    if (sv.ps->is_top_level) inst.top_level_for.insert(w.agreement_id);
    instance_of[k] = inst.key;
    const bool dependency = !sv.ps->is_top_level;
    for (const auto& ct : sv.dep.containers) {
      if (!ct) continue;
      auto ref = parse_image_ref(ct->image);
      if (!ref)
        return runtime_failure(R::image_data_error,
                               "service " + k + ": image '" + ct->image + "' is not a reference");
      if (ct->image_digest.empty())
        return runtime_failure(R::image_sig_verif_failure,
                               "service " + k + ": image " + ct->image + " has no signed digest");
      if (!ref->digest.empty() && ref->digest != ct->image_digest)
        return runtime_failure(R::image_sig_verif_failure,
                               "service " + k + ": image digest differs from the signed digest");
      std::string pinned = ref->repository + "@" + ct->image_digest;
      if (seen_images.insert(pinned).second)
        p.images.push_back({*ref, ct->image_digest, auth_for(s, ref->registry), dependency});
      inst.images.push_back(pinned);

      planned_container pc;
      pc.name = inst.key + "-" + sanitize(ct->name);
      auto& sp = pc.spec;
      sp.name = pc.name;
      sp.image = pinned;
      for (const auto& e : ct->environment) {
        auto eq = e.find('=');
        if (eq == std::string::npos || eq == 0) continue;
        set_env(sp.env, e.substr(0, eq), e.substr(eq + 1));
      }
      add_inputs(sp.env, s, *sv.ps);
      // A shared instance serves several agreements: it carries none of their ids.
      set_env(sp.env, "HZN_AGREEMENTID", inst.shared ? "" : w.agreement_id);
      set_env(sp.env, "HZN_DEVICE_ID", w.node_id);
      set_env(sp.env, "HZN_ORGANIZATION", w.node_org);
      set_env(sp.env, "HZN_PATTERN", w.pattern);
      set_env(sp.env, "HZN_ARCH", w.arch);
      set_env(sp.env, "HZN_EXCHANGE_URL", o.exchange_url);
      sp.cmd = ct->command;
      sp.entrypoint = ct->entrypoint;
      for (const auto& port : ct->ports)
        if (port) sp.ports.push_back(parse_port(*port));
      sp.binds = ct->binds;
      sp.devices = ct->devices;
      sp.cap_add = ct->cap_add;
      sp.privileged = ct->privileged;
      sp.memory_bytes = uint64_t(ct->max_memory_mb) << 20;
      if (std::isfinite(ct->max_cpus) && ct->max_cpus > 0)
        sp.nano_cpus = static_cast<int64_t>(ct->max_cpus * 1e9);
      if (ct->network == "host") {
        sp.host_network = true;
      } else {
        inst.needs_network = true;
        sp.networks.push_back({inst.key, {sanitize(ct->name)}});
        for (const auto& ref2 : s.required_services) {
          if (!ref2) continue;
          sp.networks.push_back({instance_of.at(service_key(ref2->org, ref2->url)), {}});
        }
      }
      pc.hash = hex_hash(client::container_create_body(sp).dump(), 16);
      sp.labels = steps::base_labels(o.owner, inst.shared ? "" : w.agreement_id, k, inst.key);
      sp.labels["hmq.deployment_hash"] = pc.hash;
      inst.containers.push_back(std::move(pc));
    }
    p.instances.push_back(std::move(inst));
  }
  // A producer declared with network "host" has no private network to join.
  for (auto& inst : p.instances)
    for (auto& c : inst.containers) {
      auto& nets = c.spec.networks;
      nets.erase(std::remove_if(nets.begin(), nets.end(),
                                [&](const network_attachment& n) {
                                  for (const auto& i : p.instances)
                                    if (i.key == n.network) return !i.needs_network;
                                  return false;
                                }),
                 nets.end());
    }
  return p;
}

}  // namespace hmq::agent::docker
