#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/bus/client.h"
#include "exchange/service.h"

// Provisions broker identities in Mosquitto's dynamic-security plugin for the nodes and agbots
// the exchange creates, registers and deletes (docs/security.md has the trust model and the ACL
// table). Commands are JSON published to $CONTROL/dynamic-security/v1 over the exchange's own
// bus connection, which must be the admin identity made by broker-config/init-dynsec.sh.
//
// Every change is idempotent (create what is missing, then set the password and roles), so a
// command that arrives twice, or after the client already exists, converges. The broker answers
// on .../response; errors other than "already exists"/"not found" are logged and counted.
//
// Lifecycle: construct, start() (subscribes to the responses) before the client connects; then
// apply() from the loop thread. An ensure identical to one this process already sent (same
// kind and password; every RegisterNode / AgbotHello asks again) is skipped: dynsec disconnects
// a client whose password or roles are set, even to the same values. After an exchange restart
// the first ensure of each identity is sent again (one reconnect of that client). Publishing before
// the RPC response keeps the order: the broker handles one connection's messages in order, so the
// identity exists when the caller hears "ok".
namespace hmq::exchange {

// The dynamic-security commands for `changes` ({"commands": [...]}), topic prefix `prefix`.
// Per identity: role "hmq-mb-<user>" (its own mailbox and presence to subscribe; its heartbeat
// and presence to publish) plus the shared role hmq-node or hmq-agbot (RPC topic, other
// mailboxes), both created by init-dynsec.sh.
nlohmann::json dynsec_commands(const std::vector<broker_change>& changes,
                               const std::string& prefix);

class broker_admin {
 public:
  static constexpr const char* control_topic = "$CONTROL/dynamic-security/v1";
  static constexpr const char* response_topic = "$CONTROL/dynamic-security/v1/response";

  broker_admin(core::bus::client& c, std::string topic_prefix);
  void start();
  void apply(const std::vector<broker_change>& changes);

  uint64_t sent() const { return sent_; }
  uint64_t failed() const { return failed_; }
  uint64_t unchanged() const { return unchanged_; }

 private:
  void on_response(const core::bus::inbound& in);

  core::bus::client& client_;
  std::string prefix_;
  // username -> BLAKE2b(kind, password) of the last ensure sent (never the password itself).
  std::map<std::string, std::vector<uint8_t>> applied_;
  uint64_t sent_ = 0;
  uint64_t failed_ = 0;
  uint64_t unchanged_ = 0;
};

}  // namespace hmq::exchange
