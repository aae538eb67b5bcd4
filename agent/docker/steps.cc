#include "agent/docker/steps.h"

#include <algorithm>
#include <chrono>

#include "core/log/log.h"

namespace hmq::agent::docker::steps {
namespace {

using R = fb::CancelReason;
using steady = std::chrono::steady_clock;

std::shared_ptr<spdlog::logger> lg() {
  static auto l = core::log::get("docker");
  return l;
}

// Pulls and verifies one image; true when it was pulled, false when it was cached already.
// Errors carry 113/114/115. Retries wait on the loop's timers.
api::call<bool> ensure_image(session d, docker_runtime::planned_image img, runtime_options o) {
  const std::string pinned = img.ref.repository + "@" + img.digest;
  if (auto cached = co_await api::inspect_image(d, pinned); cached) {
    auto& rd = cached->repo_digests;
    if (std::find(rd.begin(), rd.end(), pinned) != rd.end()) co_return false;
  }
  auto wait = o.pull_backoff;
  result<void> pulled = core::ok();
  for (int attempt = 1; attempt <= std::max(1, o.pull_attempts); ++attempt) {
    pulled = co_await api::pull(d, img.ref, img.auth);
    if (pulled) break;
    if (pulled.code() == errc::auth_failed)
      co_return runtime_failure(R::image_fetch_auth_failure, pulled.err().detail);
    if (pulled.code() == errc::transport || pulled.code() == errc::stopped)
      break;  // the Engine is gone (or we stop): retrying here will not help
    if (attempt < o.pull_attempts) {
      lg()->warn("pull {} failed (attempt {}): {}; retrying in {} ms", pinned, attempt,
                 pulled.err().detail, wait.count());
      if (auto w = co_await api::sleep(d, wait); !w) {
        pulled = w.err();
        break;
      }
      wait *= 2;
    }
  }
  if (!pulled) co_return runtime_failure(R::image_fetch_failure, pulled.err().message());
  std::string pulled_name =
      img.ref.digest.empty() ? img.ref.repository + ":" + img.ref.tag : pinned;
  auto info = co_await api::inspect_image(d, pulled_name);
  if (!info) co_return runtime_failure(R::image_fetch_failure, info.err().message());
  auto& rd = info->repo_digests;
  if (std::find(rd.begin(), rd.end(), pinned) == rd.end()) {
    std::string got = rd.empty() ? "none" : rd.front();
    co_return runtime_failure(
        R::image_sig_verif_failure,
        "pulled " + pulled_name + " is " + got + ", the signed digest is " + img.digest);
  }
  co_return true;
}

// Makes one container exist and run as planned; adopts a matching one.
api::call<bool> ensure_container(session d, docker_runtime::planned_container c) {
  auto existing = co_await api::inspect_container(d, c.name);
  if (existing) {
    auto h = existing->labels.find("hmq.deployment_hash");
    if (h != existing->labels.end() && h->second == c.hash) {
      if (existing->running) co_return false;  // adopted as it is
      if (auto s = co_await api::start_container(d, existing->id); !s) co_return s.err();
      co_return true;
    }
    lg()->info("container {}: deployment changed, replacing it", c.name);
    if (auto r = co_await api::remove_container(d, existing->id, true); !r) co_return r.err();
  } else if (existing.code() != errc::not_found) {
    co_return existing.err();
  }
  auto id = co_await api::create_container(d, c.spec);
  if (!id) co_return id.err();
  if (auto s = co_await api::start_container(d, *id); !s) co_return s.err();
  co_return true;
}

api::call<deploy_outcome> deploy_once(session d,
                                      const std::vector<docker_runtime::planned_image>& images,
                                      const std::vector<docker_runtime::instance>& instances,
                                      const runtime_options& o) {
  deploy_outcome out;
  for (const auto& img : images) {
    auto r = co_await ensure_image(d, img, o);
    if (!r) co_return r.err();
    if (*r) out.pulled.push_back(img.ref.repository + "@" + img.digest);
  }
  for (const auto& inst : instances) {
    if (inst.needs_network) {
      auto labels = base_labels(o.owner, inst.users.empty() ? "" : *inst.users.begin(),
                                inst.service, inst.key);
      if (auto n = co_await api::create_network(d, inst.key, labels); !n)
        co_return runtime_failure(R::container_failure, n.err().message());
    }
    for (const auto& c : inst.containers) {
      auto r = co_await ensure_container(d, c);
      if (!r) co_return runtime_failure(R::container_failure, r.err().message());
      (*r ? out.started : out.adopted)++;
      if (*r) out.started_by.emplace_back(inst.service, c.name);
    }
  }
  co_return out;
}

// Ends once the Engine answers a ping (true), or false when `deadline` passed or the runtime or
// client stopped. Refused connections are retried with doubling back-off on the loop's timers;
// on_wait runs once, when the first ping failed.
asio::awaitable<bool> wait_for_engine(session d, steady::time_point deadline,
                                      const runtime_options& o,
                                      const std::shared_ptr<bool>& running,
                                      const std::function<void()>& on_wait) {
  auto r = co_await api::ping(d);
  if (r) co_return true;
  if (r.code() != errc::transport)
    co_return true;  // it answers, if not happily: let the calls say why
  lg()->warn("waiting for Docker Engine at {} (up to {} s): {}", d.socket_path(),
             std::chrono::ceil<std::chrono::seconds>(deadline - steady::now()).count(),
             r.err().detail);
  if (on_wait) on_wait();
  auto backoff = std::max(o.engine_retry_min, std::chrono::milliseconds(1));
  for (;;) {
    auto now = steady::now();
    if (now >= deadline) co_return false;
    auto wait = std::min(backoff, std::chrono::ceil<std::chrono::milliseconds>(deadline - now));
    if (!co_await api::sleep(d, wait) || !*running) co_return false;
    if (auto p = co_await api::ping(d); p || p.code() != errc::transport) {
      lg()->info("Docker Engine at {} answers again", d.socket_path());
      co_return true;
    }
    backoff = std::min(backoff * 2, std::max(o.engine_retry_max, o.engine_retry_min));
  }
}

}  // namespace

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

api::call<deploy_outcome> deploy(session d, std::vector<docker_runtime::planned_image> images,
                                 std::vector<docker_runtime::instance> instances, runtime_options o,
                                 std::shared_ptr<bool> running, std::function<void()> on_wait) {
  const auto deadline = steady::now() + o.engine_wait;
  for (;;) {
    if (!co_await wait_for_engine(d, deadline, o, running, on_wait))
      co_return runtime_failure(
          R::container_failure,
          "Docker Engine at " + d.socket_path() + " did not answer within " +
              std::to_string(
                  std::chrono::duration_cast<std::chrono::seconds>(o.engine_wait).count()) +
              " s");
    auto r = co_await deploy_once(d, images, instances, o);
    if (r) co_return r;
    // A failure with the Engine up is the deploy's own; one with the Engine gone is waited out.
    if (auto p = co_await api::ping(d); p || p.code() != errc::transport) co_return r;
    if (steady::now() >= deadline) co_return r;
  }
}

api::call<void> prepare(session d, std::vector<docker_runtime::planned_image> images,
                        runtime_options o) {
  for (const auto& img : images)
    if (auto r = co_await ensure_image(d, img, o); !r) co_return r.err();
  co_return core::ok();
}

api::call<void> cleanup(session d, std::vector<docker_runtime::instance> gone,
                        std::vector<std::string> images, int grace_s) {
  for (const auto& inst : gone)
    for (const auto& c : inst.containers) {
      if (auto s = co_await api::stop_container(d, c.name, grace_s); !s)
        lg()->warn("{}", s.err().message());
      if (auto r = co_await api::remove_container(d, c.name, true); !r)
        lg()->warn("{}", r.err().message());
    }
  for (const auto& inst : gone)
    if (inst.needs_network)
      if (auto r = co_await api::remove_network(d, inst.key); !r)
        lg()->warn("{}", r.err().message());
  co_return co_await remove_images(d, std::move(images));
}

api::call<void> remove_images(session d, std::vector<std::string> images) {
  for (const auto& img : images)
    if (auto r = co_await api::remove_image(d, img); !r)
      lg()->info("image {} kept: {}", img, r.err().message());
  co_return core::ok();
}

api::call<int> sweep_orphans(session d, std::set<std::string> live, std::string owner) {
  int removed = 0;
  auto cs = co_await api::list_containers(d, "hmq.instance");
  if (!cs) co_return cs.err();
  for (const auto& c : *cs) {
    auto it = c.labels.find("hmq.instance");
    if (it == c.labels.end() || live.count(it->second) || !owned_by(c.labels, owner)) continue;
    lg()->info("removing orphaned container {} (instance {})", c.name, it->second);
    if (co_await api::remove_container(d, c.id, true)) ++removed;
  }
  auto ns = co_await api::list_networks(d, "hmq.instance");
  if (!ns) co_return ns.err();
  for (const auto& n : *ns) {
    auto it = n.labels.find("hmq.instance");
    if (it == n.labels.end() || live.count(it->second) || !owned_by(n.labels, owner)) continue;
    lg()->info("removing orphaned network {}", n.name);
    if (co_await api::remove_network(d, n.id)) ++removed;
  }
  co_return removed;
}

}  // namespace hmq::agent::docker::steps
