#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agent/docker/client.h"
#include "agent/docker/runtime.h"

// The Docker steps of the runtime's operations (agent/docker/runtime.h), each a coroutine of
// Docker calls that the runtime submits to the client: pull and verify images, make containers
// and networks exist, wait for an Engine that went away, clean up, sweep orphans. They run on
// the loop but touch none of the runtime's state: they get copies of what they need (the
// session, the options, a snapshot of the plan) and return what the runtime should record, so
// one that outlives its runtime is harmless. Internal to agent/docker.
namespace hmq::agent::docker::steps {

struct deploy_outcome {
  int started = 0;
  int adopted = 0;
  std::vector<std::string> pulled;  // repo@digest, cached ones not listed
  std::vector<std::pair<std::string, std::string>> started_by;  // (service, container name)
};

// The labels every container and network of ours carries (docs/containers.md).
std::map<std::string, std::string> base_labels(const std::string& owner,
                                               const std::string& agreement,
                                               const std::string& service,
                                               const std::string& instance);
bool owned_by(const std::map<std::string, std::string>& labels, const std::string& owner);

// One deploy: images first, then networks and containers, producers first. Waits (bounded by
// o.engine_wait in all) for an Engine that does not answer, before the first call and again when
// it went away in the middle; on_wait runs when a wait begins. `running` false (the runtime
// stopped) ends a wait. Errors carry their cancel reason.
api::call<deploy_outcome> deploy(session s, std::vector<docker_runtime::planned_image> images,
                                 std::vector<docker_runtime::instance> instances, runtime_options o,
                                 std::shared_ptr<bool> running, std::function<void()> on_wait);
// Pulls and verifies every image (upgrade's first half); starts nothing.
api::call<void> prepare(session s, std::vector<docker_runtime::planned_image> images,
                        runtime_options o);
// Stops and removes the instances' containers, then their networks, then `images`.
api::call<void> cleanup(session s, std::vector<docker_runtime::instance> gone,
                        std::vector<std::string> images, int grace_s);
api::call<void> remove_images(session s, std::vector<std::string> images);
// Removes our containers and networks whose instance is not in `live`; how many went.
api::call<int> sweep_orphans(session s, std::set<std::string> live, std::string owner);

}  // namespace hmq::agent::docker::steps
