#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/engine.h"
#include "core/control/control.h"

// The agent's control API (docs/agent.md): the ops `hmq register|unregister|agreement list|node
// status|key import` send over the control socket, mapped onto the engine. Socket-free so unit
// tests call handle() directly. Loop thread only.
namespace hmq::agent {

using json = nlohmann::json;

// Horizon's userInput, either the exchange's array form
//   [{"serviceOrgid", "serviceUrl", "serviceArch"?, "serviceVersionRange"?, "inputs":
//   [{"name","value"}]}]
// or `hzn register --input-file`'s {"services": [{"org","url","versionRange"?,"variables": {...}}]}
// (an object with "userInput": [...] is accepted too). Values become their canonical text:
// strings as they are, booleans true/false, numbers as JSON writes them, lists as JSON arrays.
result<std::vector<fb::ServiceUserInputT>> parse_user_input(const json& j);

// uname's machine name mapped to Horizon's arch names (x86_64 -> amd64, aarch64 -> arm64, ...).
std::string host_arch();

// Facts the engine does not own.
struct node_facts {
  std::string mailbox;
  std::string public_key_b64;
  std::string claim;  // the mailbox claim for this node's token, "" without one (credentials.h)
  std::function<bool()> broker_connected;
  // What the mailbox dropped before the engine saw it (envelope rejects per reason, size caps,
  // unrouted): shown as node_status "wire" so floods and replays are visible (docs/security.md).
  std::function<json()> wire_counters;
};

class control_api {
 public:
  control_api(engine& e, node_facts facts) : engine_(e), facts_(std::move(facts)) {}
  void handle(const json& request, core::control::reply_fn reply);

 private:
  void do_register(const json& req, core::control::reply_fn reply);
  json agreement_list();
  json node_status();

  engine& engine_;
  node_facts facts_;
};

}  // namespace hmq::agent
