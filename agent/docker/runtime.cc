#include "agent/docker/runtime.h"

#include <algorithm>

#include "agent/docker/steps.h"
#include "core/log/log.h"

namespace hmq::agent::docker {
namespace {

using R = fb::CancelReason;

std::shared_ptr<spdlog::logger> lg() {
  static auto l = core::log::get("docker");
  return l;
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
  *alive_ = false;
  ops_.clear();
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
    std::function<void()> on_wait = [this, alive = alive_] {
      if (*alive) ++stats_.engine_waits;
    };
    docker_.submit<steps::deploy_outcome>(
        steps::deploy(docker_.engine(), std::move(images), std::move(snapshot), opts_, alive_,
                      std::move(on_wait)),
        [this, id, cb = std::move(cb), next](result<steps::deploy_outcome> r) mutable {
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
  docker_.submit<void>(steps::prepare(docker_.engine(), std::move(p->images), opts_),
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
  docker_.submit<void>(steps::remove_images(docker_.engine(), std::move(unused)),
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
  docker_.submit<void>(steps::cleanup(docker_.engine(), std::move(gone), std::move(images), grace),
                       [then = std::move(then)](result<void>) { then(); });
}

void docker_runtime::resumed() {
  enqueue([this](std::function<void()> next) {
    std::set<std::string> live;
    for (const auto& [k, inst] : instances_) live.insert(k);
    docker_.submit<int>(steps::sweep_orphans(docker_.engine(), std::move(live), opts_.owner),
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
    docker_.submit<container_info>(api::inspect_container(docker_.engine(), name),
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
  docker_.submit<void>(api::start_container(docker_.engine(), name),
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
