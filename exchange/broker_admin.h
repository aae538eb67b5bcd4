#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
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
//
// Reconcile (docs/security.md "Crash-safe broker administration"): a change is committed before
// its command is sent, so a crash in between leaves the broker behind the registry. reconcile()
// lists the broker's clients page by page, keeps those holding the shared role hmq-node or
// hmq-agbot (only the exchange hands them out) and compares them with the mailboxes the registry
// binds (`registered`, read before and after the listing). A listed client the registry does not
// bind after the listing is removed: its node or agbot is gone (an identity is created only after
// its COMMIT, so one created while the listing ran is in the second read). A mailbox bound in
// both reads but not listed is missing: it is created again from the secret the exchange kept
// (`kept`, schema v6), or reported when none was kept (provisioned before v6), and then its
// owner's admin provisions it again.
namespace hmq::exchange {

// The dynamic-security commands for `changes` ({"commands": [...]}), topic prefix `prefix`;
// passwords as given (the service derived them). Per identity: role "hmq-mb-<user>" (its own
// mailbox and presence to subscribe, an agbot's uplink too; its heartbeat and presence to
// publish) plus the shared role hmq-node or hmq-agbot (RPC topic; agbots' uplinks or nodes'
// mailboxes), both created by init-dynsec.sh.
nlohmann::json dynsec_commands(const std::vector<broker_change>& changes,
                               const std::string& prefix);

class broker_admin {
 public:
  static constexpr const char* control_topic = "$CONTROL/dynamic-security/v1";
  static constexpr const char* response_topic = "$CONTROL/dynamic-security/v1/response";

  using registry_fn = std::function<core::result<std::set<std::string>>()>;
  // The ensures that create again those of the given usernames whose secret was kept.
  using kept_fn =
      std::function<core::result<std::vector<broker_change>>(const std::set<std::string>&)>;
  struct reconcile_stats {
    uint64_t listed = 0;     // clients of ours on the broker
    uint64_t removed = 0;    // of them, not in the registry: removed
    uint64_t recreated = 0;  // registered identities with no client, created again
    uint64_t missing = 0;    // registered identities with no client and no kept secret
  };

  broker_admin(core::bus::client& c, std::string topic_prefix);
  // Subscribes to the responses; `ready` runs once the broker confirmed that subscription.
  // `failed` runs instead when the broker refuses it (not the admin identity).
  void start(std::function<void()> ready = nullptr,
             std::function<void(const core::error&)> failed = nullptr);
  // `sent` (optional) runs once the broker took the commands (or at once when there are none).
  void apply(const std::vector<broker_change>& changes, std::function<void()> sent = nullptr);
  // Needs start()'s subscription confirmed. One run at a time; a second call while one runs is
  // ignored.
  void reconcile(registry_fn registered, kept_fn kept = nullptr);

  const reconcile_stats& reconciled() const { return rec_; }

  uint64_t sent() const { return sent_; }
  uint64_t failed() const { return failed_; }
  uint64_t unchanged() const { return unchanged_; }

 private:
  void on_response(const core::bus::inbound& in);
  void send(const nlohmann::json& cmds, std::function<void()> sent = nullptr);
  void list_page(uint64_t offset);
  void on_list_page(const nlohmann::json& response);
  void finish_reconcile();
  // Ends the run without changing anything, saying why.
  void abandon(const std::string& why);

  core::bus::client& client_;
  std::string prefix_;
  // username -> BLAKE2b(kind, inbox, recorder, password) of the last ensure sent (never the
  // password itself).
  std::map<std::string, std::vector<uint8_t>> applied_;
  uint64_t sent_ = 0;
  uint64_t failed_ = 0;
  uint64_t unchanged_ = 0;
  // The reconcile under way: the listing so far and where the registry comes from.
  registry_fn registered_;
  kept_fn kept_;
  std::set<std::string> before_;  // the registry when the listing began
  std::set<std::string> listed_;
  uint64_t offset_ = 0;  // of the page asked for (one connection: answers come in order)
  bool listing_ = false;
  reconcile_stats rec_;
};

}  // namespace hmq::exchange
