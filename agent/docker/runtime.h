#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/docker/client.h"
#include "agent/seams.h"
#include "core/loop/loop.h"

// The agent's workload runtime on the Docker Engine (docs/containers.md).
//
// deploy(): orders the services so producers start before consumers, pulls every image with its
// service's registry credentials and refuses one whose pulled digest is not the signed digest,
// gives each service instance its own bridge network (the producer's containers carry their
// deployment names as DNS aliases there), attaches each consumer to the networks of the
// producers it declared, and starts the containers with the deployment environment, user input
// and HZN_* variables. Containers that already run with the same deployment hash are adopted,
// not restarted (agent restart). Sharing: multiple = one instance per agreement, singleton = one
// instance shared and reference counted; exclusive is refused by the engine at proposal time.
//
// Supervision: a container that dies without us stopping it is started again at once (same
// name, networks, aliases); more than crash_limit deaths within crash_window stop the agreement's
// containers and report the failure (103, or 108 when a dependency crashed) through on_failure.
//
// Thread contract: loop thread only. Docker calls are coroutines on the loop (client.h, steps.h);
// waits (pull retries, an Engine that went away) are the loop's timers. Deploys and removals run
// one at a time in arrival order (they share networks and singleton instances); restarts do not
// wait for them. stop() forgets everything and leaves the containers running; a deploy waiting
// for the Engine gives up at its next tick.
namespace hmq::agent::docker {

struct runtime_options {
  bool keep_images = false;  // keep images nobody uses any more after remove()
  int crash_limit = 5;       // deaths tolerated within crash_window; one more gives up
  std::chrono::milliseconds crash_window{std::chrono::seconds(60)};
  int pull_attempts = 3;  // per image; an auth failure is never retried
  std::chrono::milliseconds pull_backoff{std::chrono::seconds(1)};  // doubles per attempt
  int stop_timeout_s = 5;  // SIGTERM -> SIGKILL grace on remove
  // A deploy that finds the Engine's socket refusing (dockerd restarting, not yet up at boot)
  // waits for it this long, retrying with back-off from engine_retry_min to engine_retry_max,
  // before it fails with 103. Zero: fail at once.
  std::chrono::milliseconds engine_wait{std::chrono::seconds(60)};
  std::chrono::milliseconds engine_retry_min{std::chrono::milliseconds(250)};
  std::chrono::milliseconds engine_retry_max{std::chrono::seconds(5)};
  std::string exchange_url;  // HZN_EXCHANGE_URL
  // This agent's id (its mailbox), labelled hmq.owner on everything it creates: an agent adopts
  // and sweeps only its own containers and networks, never another agent's on the same Engine.
  std::string owner;
};

struct runtime_counters {
  uint64_t deploys = 0;
  uint64_t deploy_failures = 0;
  uint64_t containers_started = 0;  // created or started by a deploy
  uint64_t containers_adopted = 0;  // found running with the same deployment hash
  uint64_t crashes = 0;
  uint64_t restarts = 0;
  uint64_t gave_up = 0;
  uint64_t removes = 0;
  uint64_t orphans_removed = 0;  // containers + networks of no known agreement
  uint64_t events = 0;
  uint64_t engine_waits = 0;  // deploys that found the Engine down and waited for it
};

class docker_runtime final : public agent::runtime {
 public:
  docker_runtime(core::loop::scheduler& loop, client& c, runtime_options o = {});
  ~docker_runtime() override;
  docker_runtime(const docker_runtime&) = delete;
  docker_runtime& operator=(const docker_runtime&) = delete;

  // Starts watching container events. Call once, on the loop thread.
  void start();
  void stop();

  void deploy(const workload& w, done_fn cb) override;
  void remove(const std::string& agreement_id, done_fn cb) override;
  // Pulls and verifies every image of `w` (digest = signed digest), starts nothing.
  void prepare(const workload& w, done_fn cb) override;
  void retain_images(const std::string& agreement_id, bool retain) override;
  void on_failure(failure_fn f) override { on_failure_ = std::move(f); }
  void on_event(event_fn f) override { on_event_ = std::move(f); }
  void resumed() override;

  const runtime_counters& stats() const { return stats_; }
  // Docker container names of an agreement's services (empty when unknown), for tests and status.
  std::vector<std::string> container_names(const std::string& agreement_id) const;
  std::vector<std::string> network_names(const std::string& agreement_id) const;

  // One container as the runtime will create it (exposed for unit tests of the planning).
  struct planned_container {
    std::string name;  // docker name
    container_spec spec;
    std::string hash;
  };
  struct planned_image {
    image_ref ref;
    std::string digest;  // signed
    std::optional<registry_auth> auth;
    bool dependency = false;
  };
  struct instance {
    std::string key;      // == its network's name
    std::string service;  // org/url
    bool shared = false;
    bool needs_network = false;
    std::vector<planned_container> containers;
    std::vector<std::string> images;  // repo@digest
    std::set<std::string> users;      // agreement ids
    std::set<std::string> top_level_for;
  };
  struct plan {
    std::vector<planned_image> images;
    std::vector<instance> instances;  // producers first
  };
  // Builds the plan of a workload; an error carries its cancel reason.
  static result<plan> make_plan(const workload& w, const runtime_options& o);

 private:
  enum class phase { deploying, running, removing };
  struct agreement {
    std::vector<std::string> instances;  // keys, producers first
    phase state = phase::deploying;
    std::optional<core::error> failure;  // gave up while deploying
  };
  struct supervised {
    std::string instance;
    std::string hash;
    std::deque<int64_t> crashes;  // ms
  };

  void enqueue(std::function<void(std::function<void()>)> op);
  void run_next();
  void on_docker_event(const event& e);
  void on_stream_lost();
  void crashed(const std::string& name);
  // To the engine's event log: one agreement, or every agreement using an instance.
  void emit(const std::string& agreement_id, std::string_view kind, const std::string& service,
            const std::string& message);
  void emit_instance(const std::string& instance_key, std::string_view kind,
                     const std::string& message);
  void give_up(const std::string& instance_key, const std::string& name);
  // Drops the agreement's use of its instances; returns what nobody uses any more.
  std::vector<instance> release(const std::string& agreement_id);
  void cleanup(std::vector<instance> gone, std::function<void()> then);

  core::loop::scheduler& loop_;
  client& docker_;
  runtime_options opts_;
  runtime_counters stats_;
  failure_fn on_failure_;
  event_fn on_event_;
  // Images of agreements being upgraded away from (retain_images): never removed meanwhile.
  std::map<std::string, std::vector<std::string>> retained_;
  std::map<std::string, agreement> agreements_;
  std::map<std::string, instance> instances_;
  std::map<std::string, supervised> supervised_;  // container name ->
  std::deque<std::function<void(std::function<void()>)>> ops_;
  bool op_running_ = false;
  bool started_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hmq::agent::docker
