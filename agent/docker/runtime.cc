#include "agent/docker/runtime.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "core/crypto/crypto.h"
#include "core/log/log.h"

namespace hmq::agent::docker {
namespace {

using R = fb::CancelReason;

std::shared_ptr<spdlog::logger> lg() {
  static auto l = core::log::get("docker");
  return l;
}

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

std::map<std::string, std::string> base_labels(const std::string& owner,
                                               const std::string& agreement,
                                               const std::string& service,
                                               const std::string& instance) {
  return {{"hmq.managed", "1"},
          {"hmq.owner", owner},
          {"hmq.agreement", agreement},
          {"hmq.service", service},
          {"hmq.instance", instance}};
}

bool owned_by(const std::map<std::string, std::string>& labels, const std::string& owner) {
  auto it = labels.find("hmq.owner");
  return it != labels.end() && it->second == owner;
}

struct deploy_outcome {
  int started = 0;
  int adopted = 0;
  std::vector<std::string> pulled;  // repo@digest, cached ones not listed
  std::vector<std::pair<std::string, std::string>> started_by;  // (service, container name)
};

// Worker thread: pulls and verifies one image; true when it was pulled, false when it was
// cached already. Errors carry 113/114/115.
result<bool> ensure_image(client& d, const docker_runtime::planned_image& img,
                          const runtime_options& o) {
  const std::string pinned = img.ref.repository + "@" + img.digest;
  if (auto cached = d.inspect_image(pinned); cached) {
    auto& rd = cached->repo_digests;
    if (std::find(rd.begin(), rd.end(), pinned) != rd.end()) return false;
  }
  auto wait = o.pull_backoff;
  result<void> pulled = core::ok();
  for (int attempt = 1; attempt <= std::max(1, o.pull_attempts); ++attempt) {
    pulled = d.pull(img.ref, img.auth);
    if (pulled) break;
    if (pulled.code() == errc::auth_failed)
      return runtime_failure(R::image_fetch_auth_failure, pulled.err().detail);
    if (pulled.code() == errc::transport) break;  // the Engine is gone: retrying here will not help
    if (attempt < o.pull_attempts) {
      lg()->warn("pull {} failed (attempt {}): {}; retrying in {} ms", pinned, attempt,
                 pulled.err().detail, wait.count());
      std::this_thread::sleep_for(wait);
      wait *= 2;
    }
  }
  if (!pulled) return runtime_failure(R::image_fetch_failure, pulled.err().message());
  std::string pulled_name =
      img.ref.digest.empty() ? img.ref.repository + ":" + img.ref.tag : pinned;
  auto info = d.inspect_image(pulled_name);
  if (!info) return runtime_failure(R::image_fetch_failure, info.err().message());
  auto& rd = info->repo_digests;
  if (std::find(rd.begin(), rd.end(), pinned) == rd.end()) {
    std::string got = rd.empty() ? "none" : rd.front();
    return runtime_failure(R::image_sig_verif_failure, "pulled " + pulled_name + " is " + got +
                                                           ", the signed digest is " + img.digest);
  }
  return true;
}

// Worker thread: makes one container exist and run as planned; adopts a matching one.
result<bool> ensure_container(client& d, const docker_runtime::planned_container& c) {
  auto existing = d.inspect_container(c.name);
  if (existing) {
    auto h = existing->labels.find("hmq.deployment_hash");
    if (h != existing->labels.end() && h->second == c.hash) {
      if (existing->running) return false;  // adopted as it is
      if (auto s = d.start_container(existing->id); !s) return s.err();
      return true;
    }
    lg()->info("container {}: deployment changed, replacing it", c.name);
    if (auto r = d.remove_container(existing->id, true); !r) return r.err();
  } else if (existing.code() != errc::not_found) {
    return existing.err();
  }
  auto id = d.create_container(c.spec);
  if (!id) return id.err();
  if (auto s = d.start_container(*id); !s) return s.err();
  return true;
}

result<deploy_outcome> run_deploy_once(client& d,
                                       const std::vector<docker_runtime::planned_image>& images,
                                       const std::vector<docker_runtime::instance>& instances,
                                       const runtime_options& o) {
  deploy_outcome out;
  for (const auto& img : images) {
    auto r = ensure_image(d, img, o);
    if (!r) return r.err();
    if (*r) out.pulled.push_back(img.ref.repository + "@" + img.digest);
  }
  for (const auto& inst : instances) {
    if (inst.needs_network) {
      auto labels = base_labels(o.owner, inst.users.empty() ? "" : *inst.users.begin(),
                                inst.service, inst.key);
      if (auto n = d.create_network(inst.key, labels); !n)
        return runtime_failure(R::container_failure, n.err().message());
    }
    for (const auto& c : inst.containers) {
      auto r = ensure_container(d, c);
      if (!r) return runtime_failure(R::container_failure, r.err().message());
      (*r ? out.started : out.adopted)++;
      if (*r) out.started_by.emplace_back(inst.service, c.name);
    }
  }
  return out;
}

// Worker thread: returns once the Engine answers a ping (true), or false when `deadline` passed
// or the runtime stopped. Refused connections are retried with doubling back-off; on_wait runs
// once, when the first ping failed.
template <typename Stop>
bool wait_for_engine(client& d, std::chrono::steady_clock::time_point deadline,
                     const runtime_options& o, Stop& stop, const std::function<void()>& on_wait) {
  auto r = d.ping();
  if (r) return true;
  if (r.code() != errc::transport)
    return true;  // it answers, if not happily: let the calls say why
  lg()->warn(
      "waiting for Docker Engine at {} (up to {} s): {}", d.socket_path(),
      std::chrono::ceil<std::chrono::seconds>(deadline - std::chrono::steady_clock::now()).count(),
      r.err().detail);
  if (on_wait) on_wait();
  auto backoff = std::max(o.engine_retry_min, std::chrono::milliseconds(1));
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    {
      std::unique_lock lock(stop.mu);
      if (stop.cv.wait_until(lock, std::min(deadline, now + backoff), [&] { return stop.stopped; }))
        return false;
    }
    if (auto p = d.ping(); p || p.code() != errc::transport) {
      lg()->info("Docker Engine at {} answers again", d.socket_path());
      return true;
    }
    backoff = std::min(backoff * 2, std::max(o.engine_retry_max, o.engine_retry_min));
  }
}

// Worker thread: one deploy, waiting (bounded by o.engine_wait in all) for an Engine that does
// not answer, before the first call and again when it went away in the middle.
template <typename Stop>
result<deploy_outcome> run_deploy(client& d,
                                  const std::vector<docker_runtime::planned_image>& images,
                                  const std::vector<docker_runtime::instance>& instances,
                                  const runtime_options& o, Stop& stop,
                                  const std::function<void()>& on_wait) {
  const auto deadline = std::chrono::steady_clock::now() + o.engine_wait;
  for (;;) {
    if (!wait_for_engine(d, deadline, o, stop, on_wait))
      return runtime_failure(
          R::container_failure,
          "Docker Engine at " + d.socket_path() + " did not answer within " +
              std::to_string(
                  std::chrono::duration_cast<std::chrono::seconds>(o.engine_wait).count()) +
              " s");
    auto r = run_deploy_once(d, images, instances, o);
    if (r) return r;
    // A failure with the Engine up is the deploy's own; one with the Engine gone is waited out.
    if (auto p = d.ping(); p || p.code() != errc::transport) return r;
    if (std::chrono::steady_clock::now() >= deadline) return r;
  }
}

}  // namespace

docker_runtime::docker_runtime(core::loop::scheduler& loop, client& c, runtime_options o)
    : loop_(loop), docker_(c), opts_(std::move(o)) {}

docker_runtime::~docker_runtime() {
  stop();
}

void docker_runtime::start() {
  if (started_) return;
  started_ = true;
  docker_.watch_events(
      [this, alive = alive_](event e) {
        if (*alive) on_docker_event(e);
      },
      [this, alive = alive_] {
        if (*alive) on_stream_lost();
      });
}

void docker_runtime::stop() {
  {
    std::lock_guard lock(stop_signal_->mu);
    stop_signal_->stopped = true;
  }
  stop_signal_->cv.notify_all();
  *alive_ = false;
  ops_.clear();
}

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
      for (const auto& in : sv.ps->user_inputs)
        if (in && !in->name.empty()) set_env(sp.env, in->name, in->value);
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
      sp.labels = base_labels(o.owner, inst.shared ? "" : w.agreement_id, k, inst.key);
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

void docker_runtime::enqueue(std::function<void(std::function<void()>)> op) {
  ops_.push_back(std::move(op));
  if (!op_running_) run_next();
}

void docker_runtime::run_next() {
  if (ops_.empty() || !*alive_) {
    op_running_ = false;
    return;
  }
  op_running_ = true;
  auto op = std::move(ops_.front());
  ops_.pop_front();
  op([this, alive = alive_] {
    if (*alive)
      loop_.post([this, alive] {
        if (*alive) run_next();
      });
  });
}

void docker_runtime::deploy(const workload& w, done_fn cb) {
  ++stats_.deploys;
  auto p = make_plan(w, opts_);
  if (!p) {
    ++stats_.deploy_failures;
    lg()->warn("agreement {}: cannot deploy: {}", w.agreement_id, p.err().message());
    loop_.post([cb = std::move(cb), e = p.err(), alive = alive_] {
      if (*alive && cb) cb(e);
    });
    return;
  }
  const std::string id = w.agreement_id;
  auto& a = agreements_[id];
  a.instances.clear();
  a.state = phase::deploying;
  a.failure.reset();
  std::vector<instance> snapshot;
  for (auto& inst : p->instances) {
    a.instances.push_back(inst.key);
    // A live shared instance is used as it runs (its plan was made for its first agreement).
    auto [it, inserted] = instances_.try_emplace(inst.key, inst);
    it->second.users.insert(id);
    if (inst.top_level_for.count(id)) it->second.top_level_for.insert(id);
    for (const auto& c : it->second.containers)
      supervised_.try_emplace(c.name, supervised{inst.key, c.hash, {}});
    snapshot.push_back(it->second);
  }
  lg()->info("agreement {}: deploying {} service(s), {} image(s)", id, snapshot.size(),
             p->images.size());
  enqueue([this, id, snapshot = std::move(snapshot), images = std::move(p->images),
           cb = std::move(cb)](std::function<void()> next) mutable {
    docker_.submit<deploy_outcome>(
        [this, images, snapshot, stop = stop_signal_] {
          // The counter is the loop's: the worker only posts the increment.
          std::function<void()> on_wait = [&loop = loop_, this, alive = alive_] {
            loop.post([this, alive] {
              if (*alive) ++stats_.engine_waits;
            });
          };
          return run_deploy(docker_, images, snapshot, opts_, *stop, on_wait);
        },
        [this, id, cb = std::move(cb), next](result<deploy_outcome> r) mutable {
          auto it = agreements_.find(id);
          if (it == agreements_.end()) {  // removed meanwhile
            if (cb) cb(r ? result<void>() : result<void>(r.err()));
            return next();
          }
          std::optional<core::error> failure = it->second.failure;
          if (!r) failure = r.err();
          if (failure) {
            ++stats_.deploy_failures;
            lg()->warn("agreement {}: deploy failed: {}", id, failure->message());
            cleanup(release(id), [cb = std::move(cb), e = *failure, next] {
              if (cb) cb(e);
              next();
            });
            return;
          }
          it->second.state = phase::running;
          stats_.containers_started += r->started;
          stats_.containers_adopted += r->adopted;
          lg()->info("agreement {}: running ({} started, {} adopted)", id, r->started, r->adopted);
          for (const auto& img : r->pulled) emit(id, "image_pulled", "", img);
          for (const auto& [service, name] : r->started_by)
            emit(id, "container_started", service, name);
          if (cb) cb(core::ok());
          next();
        });
  });
}

void docker_runtime::prepare(const workload& w, done_fn cb) {
  auto p = make_plan(w, opts_);
  if (!p) {
    loop_.post([cb = std::move(cb), e = p.err(), alive = alive_] {
      if (*alive && cb) cb(e);
    });
    return;
  }
  lg()->info("agreement {}: fetching {} image(s) before the swap", w.agreement_id,
             p->images.size());
  docker_.submit<void>(
      [this, images = std::move(p->images)]() -> result<void> {
        for (const auto& img : images)
          if (auto r = ensure_image(docker_, img, opts_); !r) return r.err();
        return core::ok();
      },
      [cb = std::move(cb), alive = alive_](result<void> r) {
        if (*alive && cb) cb(std::move(r));
      });
}

void docker_runtime::retain_images(const std::string& agreement_id, bool retain) {
  if (retain) {
    auto it = agreements_.find(agreement_id);
    if (it == agreements_.end()) return;
    auto& imgs = retained_[agreement_id];
    for (const auto& key : it->second.instances)
      if (auto inst = instances_.find(key); inst != instances_.end())
        imgs.insert(imgs.end(), inst->second.images.begin(), inst->second.images.end());
    return;
  }
  auto it = retained_.find(agreement_id);
  if (it == retained_.end()) return;
  std::vector<std::string> imgs = std::move(it->second);
  retained_.erase(it);
  if (opts_.keep_images) return;
  std::set<std::string> still_used;
  for (const auto& [k, inst] : instances_)
    still_used.insert(inst.images.begin(), inst.images.end());
  for (const auto& [id, other] : retained_) still_used.insert(other.begin(), other.end());
  std::vector<std::string> unused;
  for (const auto& i : imgs)
    if (!still_used.count(i)) unused.push_back(i);
  if (unused.empty()) return;
  docker_.submit<void>(
      [this, unused]() -> result<void> {
        for (const auto& img : unused)
          if (auto r = docker_.remove_image(img); !r)
            lg()->info("image {} kept: {}", img, r.err().message());
        return core::ok();
      },
      [](result<void>) {});
}

void docker_runtime::remove(const std::string& agreement_id, done_fn cb) {
  ++stats_.removes;
  enqueue([this, agreement_id, cb = std::move(cb)](std::function<void()> next) mutable {
    if (!agreements_.count(agreement_id)) {
      if (cb) cb(core::ok());
      return next();
    }
    lg()->info("agreement {}: removing its containers", agreement_id);
    cleanup(release(agreement_id), [cb = std::move(cb), next] {
      if (cb) cb(core::ok());
      next();
    });
  });
}

std::vector<docker_runtime::instance> docker_runtime::release(const std::string& agreement_id) {
  std::vector<instance> gone;
  auto it = agreements_.find(agreement_id);
  if (it == agreements_.end()) return gone;
  // Consumers first: their containers hold endpoints on the producers' networks.
  for (auto k = it->second.instances.rbegin(); k != it->second.instances.rend(); ++k) {
    auto inst = instances_.find(*k);
    if (inst == instances_.end()) continue;
    inst->second.users.erase(agreement_id);
    inst->second.top_level_for.erase(agreement_id);
    if (!inst->second.users.empty()) continue;
    for (const auto& c : inst->second.containers) supervised_.erase(c.name);
    gone.push_back(std::move(inst->second));
    instances_.erase(inst);
  }
  agreements_.erase(it);
  return gone;
}

void docker_runtime::cleanup(std::vector<instance> gone, std::function<void()> then) {
  std::vector<std::string> images;
  if (!opts_.keep_images) {
    std::set<std::string> still_used;
    for (const auto& [k, inst] : instances_)
      still_used.insert(inst.images.begin(), inst.images.end());
    for (const auto& [id, imgs] : retained_) still_used.insert(imgs.begin(), imgs.end());
    std::set<std::string> candidates;
    for (const auto& inst : gone)
      for (const auto& i : inst.images)
        if (!still_used.count(i)) candidates.insert(i);
    images.assign(candidates.begin(), candidates.end());
  }
  int grace = opts_.stop_timeout_s;
  docker_.submit<void>(
      [this, gone = std::move(gone), images, grace]() -> result<void> {
        for (const auto& inst : gone)
          for (const auto& c : inst.containers) {
            if (auto s = docker_.stop_container(c.name, grace); !s)
              lg()->warn("{}", s.err().message());
            if (auto r = docker_.remove_container(c.name, true); !r)
              lg()->warn("{}", r.err().message());
          }
        for (const auto& inst : gone)
          if (inst.needs_network)
            if (auto r = docker_.remove_network(inst.key); !r) lg()->warn("{}", r.err().message());
        for (const auto& img : images)
          if (auto r = docker_.remove_image(img); !r)
            lg()->info("image {} kept: {}", img, r.err().message());
        return core::ok();
      },
      [then = std::move(then)](result<void>) { then(); });
}

void docker_runtime::resumed() {
  enqueue([this](std::function<void()> next) {
    std::set<std::string> live;
    for (const auto& [k, inst] : instances_) live.insert(k);
    docker_.submit<int>(
        [this, live]() -> result<int> {
          int removed = 0;
          auto cs = docker_.list_containers("hmq.instance");
          if (!cs) return cs.err();
          for (const auto& c : *cs) {
            auto it = c.labels.find("hmq.instance");
            if (it == c.labels.end() || live.count(it->second) || !owned_by(c.labels, opts_.owner))
              continue;
            lg()->info("removing orphaned container {} (instance {})", c.name, it->second);
            if (docker_.remove_container(c.id, true)) ++removed;
          }
          auto ns = docker_.list_networks("hmq.instance");
          if (!ns) return ns.err();
          for (const auto& n : *ns) {
            auto it = n.labels.find("hmq.instance");
            if (it == n.labels.end() || live.count(it->second) || !owned_by(n.labels, opts_.owner))
              continue;
            lg()->info("removing orphaned network {}", n.name);
            if (docker_.remove_network(n.id)) ++removed;
          }
          return removed;
        },
        [this, next](result<int> r) {
          if (r)
            stats_.orphans_removed += *r;
          else
            lg()->warn("orphan sweep failed: {}", r.err().message());
          next();
        });
  });
}

void docker_runtime::on_docker_event(const event& e) {
  ++stats_.events;
  if (e.action == "oom") {
    lg()->warn("container {} ran out of memory", e.name);
    if (auto it = supervised_.find(e.name); it != supervised_.end())
      emit_instance(it->second.instance, "container_oom", e.name + " ran out of memory");
    return;
  }
  if (e.action != "die") return;
  auto it = supervised_.find(e.name);
  if (it == supervised_.end()) return;  // not ours, or we are stopping it
  auto h = e.labels.find("hmq.deployment_hash");
  if (h != e.labels.end() && h->second != it->second.hash) return;  // the old one we are replacing
  crashed(e.name);
}

void docker_runtime::on_stream_lost() {
  // Deaths may have gone unseen while the stream was down: look at every supervised container.
  for (const auto& [name, s] : supervised_) {
    docker_.submit<container_info>([this, name = name] { return docker_.inspect_container(name); },
                                   [this, name = name](result<container_info> r) {
                                     if (r && !r->running && supervised_.count(name)) crashed(name);
                                   });
  }
}

void docker_runtime::crashed(const std::string& name) {
  auto it = supervised_.find(name);
  if (it == supervised_.end()) return;
  auto& s = it->second;
  int64_t now = loop_.time().now_ms();
  s.crashes.push_back(now);
  while (!s.crashes.empty() && s.crashes.front() <= now - opts_.crash_window.count())
    s.crashes.pop_front();
  ++stats_.crashes;
  const std::string window = std::to_string(opts_.crash_window.count() / 1000) + " s";
  emit_instance(
      s.instance, "container_crashed",
      name + " exited (" + std::to_string(s.crashes.size()) + " in the last " + window + ")");
  if (static_cast<int>(s.crashes.size()) > opts_.crash_limit) return give_up(s.instance, name);
  ++stats_.restarts;
  lg()->warn("container {} died ({} in the last {}); restarting it", name, s.crashes.size(),
             window);
  docker_.submit<void>([this, name] { return docker_.start_container(name); },
                       [this, name, instance = s.instance, alive = alive_](result<void> r) {
                         if (!r) lg()->warn("restart of {} failed: {}", name, r.err().message());
                         if (*alive)
                           emit_instance(instance, r ? "container_restarted" : "restart_failed",
                                         r ? name : name + ": " + r.err().message());
                       });
}

void docker_runtime::emit(const std::string& agreement_id, std::string_view kind,
                          const std::string& service, const std::string& message) {
  if (on_event_) on_event_(agreement_id, kind, service, message);
}

void docker_runtime::emit_instance(const std::string& instance_key, std::string_view kind,
                                   const std::string& message) {
  auto inst = instances_.find(instance_key);
  if (inst == instances_.end()) return;
  for (const auto& u : inst->second.users) emit(u, kind, inst->second.service, message);
}

void docker_runtime::give_up(const std::string& instance_key, const std::string& name) {
  ++stats_.gave_up;
  auto inst = instances_.find(instance_key);
  if (inst == instances_.end()) return;
  for (const auto& c : inst->second.containers) supervised_.erase(c.name);
  std::string detail = "container " + name + " of " + inst->second.service + " crashed more than " +
                       std::to_string(opts_.crash_limit) + " times within " +
                       std::to_string(opts_.crash_window.count() / 1000) + " s";
  std::vector<std::pair<std::string, core::error>> failed;
  for (const auto& u : inst->second.users) {
    auto reason =
        inst->second.top_level_for.count(u) ? R::container_failure : R::microservice_failure;
    failed.emplace_back(u, runtime_failure(reason, detail));
  }
  for (auto& [u, e] : failed) {
    auto a = agreements_.find(u);
    if (a == agreements_.end()) continue;
    lg()->warn("agreement {}: giving up: {}", u, detail);
    if (a->second.state == phase::deploying) {
      a->second.failure = e;  // the deploy's completion cleans up and reports
      continue;
    }
    a->second.state = phase::removing;
    enqueue([this, u = u, e = e](std::function<void()> next) {
      if (!agreements_.count(u)) return next();
      cleanup(release(u), [this, u, e, next, alive = alive_] {
        if (*alive && on_failure_) on_failure_(u, e);
        next();
      });
    });
  }
}

std::vector<std::string> docker_runtime::container_names(const std::string& agreement_id) const {
  std::vector<std::string> out;
  auto a = agreements_.find(agreement_id);
  if (a == agreements_.end()) return out;
  for (const auto& k : a->second.instances)
    if (auto i = instances_.find(k); i != instances_.end())
      for (const auto& c : i->second.containers) out.push_back(c.name);
  return out;
}

std::vector<std::string> docker_runtime::network_names(const std::string& agreement_id) const {
  std::vector<std::string> out;
  auto a = agreements_.find(agreement_id);
  if (a == agreements_.end()) return out;
  for (const auto& k : a->second.instances)
    if (auto i = instances_.find(k); i != instances_.end() && i->second.needs_network)
      out.push_back(k);
  return out;
}

}  // namespace hmq::agent::docker
