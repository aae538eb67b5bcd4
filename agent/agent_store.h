#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "agent/seams.h"
#include "core/store/store.h"

// The agent's own SQLite (agent.db): its registration, its agreements and its trust store of
// publisher keys. Every state change of an agreement is written here before the message that
// announces it is sent. Loop thread only.
namespace hmq::agent {

enum class agreement_state : int {
  accepted = 2,
  finalized = 3,
  cancelled = 4
};  // = fb::AgreementState
std::string_view state_name(agreement_state s);

struct stored_registration {
  node_identity node;
  std::string pattern;
  std::string arch;
  std::string user_input_json;  // Horizon userInput array as given, for status and restarts
  int64_t registered_ms = 0;
  bool confirmed = false;  // the exchange acknowledged RegisterNode
};

struct stored_agreement {
  std::string id;
  agreement_state state = agreement_state::accepted;
  std::string agbot;               // "org/id" as proposed (and checked against agbot_key)
  crypto::public_key agbot_key{};  // only this key may ReplyAck, Cancel or Verify
  std::string pattern;
  std::string service_org;  // the top-level service, for the exchange record
  std::string service_url;
  std::string service_version;
  std::vector<uint8_t> proposal;  // the verified Message buffer carrying the Proposal
  int64_t accepted_ms = 0;
  int64_t finalized_ms = 0;
  int64_t cancelled_ms = 0;
  uint16_t reason = 0;  // CancelReason when cancelled
  std::string reason_message;
  bool exchange_synced = false;  // the exchange record matches `state`
  bool cancel_unsent = false;    // our Cancel to the agbot is not yet acknowledged by the broker
};

struct trusted_key {
  crypto::public_key key{};
  std::string name;
  int64_t added_ms = 0;
};

class agent_store {
 public:
  static result<agent_store> open(const std::filesystem::path& db_path);
  static result<agent_store> open_memory();

  result<std::optional<stored_registration>> registration();
  result<void> put_registration(const stored_registration& r);
  result<void> clear_registration();

  result<std::vector<stored_agreement>> agreements();
  // Insert or replace the whole row.
  result<void> put_agreement(const stored_agreement& a);
  result<void> delete_agreement(const std::string& id);

  result<std::vector<trusted_key>> trusted_keys();
  result<bool> is_trusted(const crypto::public_key& k);
  // Adding a key that is already trusted only updates its name.
  result<void> add_trusted_key(const trusted_key& k);

  core::store::database& db() { return db_; }

 private:
  explicit agent_store(core::store::database db) : db_(std::move(db)) {}
  static result<agent_store> init(result<core::store::database> db);
  core::store::database db_;
};

}  // namespace hmq::agent
