#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/common/result.h"
#include "core/crypto/crypto.h"
#include "core/store/group_commit.h"
#include "core/store/store.h"
#include "schema/types_generated.h"

// The agbot's agreements in SQLite (agbot.db). Every state change is written here before the
// message that announces it is sent (docs/protocol.md); on restart the engine resumes from it.
// A partial UNIQUE index makes "two live agreements for one node and service" impossible even
// if the logic above had a bug. Loop thread only.
namespace hmq::agbot {

namespace fb = ::hmq::wire::fb;

struct agreement {
  std::string id;
  std::string node_org;
  std::string node_id;
  std::string pattern;  // "org/name"
  std::string service_org;
  std::string service_url;
  std::string service_version;
  std::string arch;
  core::crypto::public_key node_key{};
  fb::AgreementState state = fb::AgreementState::unspecified;
  uint16_t reason = 0;  // CancelReason once cancelled
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  int64_t deadline_ms = 0;  // proposed: when the reply timeout fires
  // The broker acknowledged the message announcing the current state (Proposal, ReplyAck or
  // Cancel). On restart an unconfirmed one is sent again; the node treats repeats as duplicates.
  bool message_confirmed = false;
  // The exchange has caught up with the current state (finalized: PutAgreement done;
  // cancelled: DeleteAgreement done).
  bool exchange_synced = false;
  std::vector<uint8_t> proposal;  // the Proposal table, finished on its own, for a resend
  // Upgrade: the live agreement this one replaces once the node verified it; empty otherwise
  // (and cleared when the upgrade succeeded and this became the slot's agreement).
  std::string supersedes;

  // "node_org/node_id|pattern|service_org/service_url": at most one live agreement per slot.
  std::string slot() const;
  std::string node() const { return node_org + "/" + node_id; }
  bool live() const {
    return state == fb::AgreementState::proposed || state == fb::AgreementState::finalized;
  }
};

class agreement_store {
 public:
  static core::result<agreement_store> open(const std::filesystem::path& path);
  static core::result<agreement_store> open_memory();

  // Group commit (docs/PERFORMANCE.md): every write below joins `g`'s open group (opening one)
  // instead of committing on its own. Whoever announces a write must then wait for the group's
  // COMMIT: agbot/group_seams.h defers the engine's messages and exchange writes. Null: each
  // write commits at once.
  void use_group(core::store::group_commit* g) { group_ = g; }

  core::result<void> insert(const agreement& a);
  // Writes state, reason, updated/deadline times and the two sync flags of `a`.
  core::result<void> update(const agreement& a);
  core::result<void> set_message_confirmed(const std::string& id);
  core::result<void> set_exchange_synced(const std::string& id);
  core::result<void> set_supersedes(const std::string& id, const std::string& supersedes);
  // agbot.db itself, for tables other modules keep next to the agreements (rollouts).
  core::store::database& db() { return db_; }
  core::result<std::optional<agreement>> get(const std::string& id);
  // Live agreements plus cancelled ones the exchange or node still has to hear about.
  core::result<std::vector<agreement>> load_unsettled();
  // Newest first, at most `limit` (for `agreement list`).
  core::result<std::vector<agreement>> list(size_t limit);

 private:
  explicit agreement_store(core::store::database db) : db_(std::move(db)) {}
  core::result<void> init();
  core::result<void> write(const std::function<core::result<void>()>& fn);
  core::store::database db_;
  core::store::group_commit* group_ = nullptr;
};

}  // namespace hmq::agbot
