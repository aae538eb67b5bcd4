#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/common/result.h"
#include "core/store/store.h"
#include "schema/message_generated.h"

// The rollouts' tables in agbot.db (rollouts, rollout_nodes, rollout_failures), next to the
// agreements: what a rollout_controller (agbot/rollout.h) needs to resume after a restart. The
// only code that knows their SQL. Writes are autocommit statements on the agreement store's
// connection, so they join its open group commit like every other write. Loop thread only.
namespace hmq::agbot {

namespace fb = ::hmq::wire::fb;

// Where a slot stands within its rollout.
enum class rollout_node_state : int {
  pending = 1,
  in_flight = 2,
  upgraded = 3,
  failed = 4,
  rolled_back = 5
};

// One rollout of one service of one pattern: a row of `rollouts`.
struct rollout_record {
  std::string pattern;  // "org/name"
  std::string service;  // "org/url"
  std::string target;   // version being rolled out
  fb::RolloutState state = fb::RolloutState::running;
  uint32_t max_in_flight = 1;
  uint32_t batch_pause_s = 0;
  uint32_t max_failures = 0;  // 0: never halt
  int64_t started_ms = 0;
  int64_t updated_ms = 0;
};

// One slot within a rollout: a row of `rollout_nodes`.
struct rollout_node_record {
  std::string from_version;
  std::string target;
  rollout_node_state state = rollout_node_state::pending;
  int64_t updated_ms = 0;
};

// How often a slot failed a version: a row of `rollout_failures`. Kept per slot, not per
// rollout, so a new rollout does not offer a node a version it already gave up on.
struct rollout_failure_record {
  int attempts = 0;
  int64_t first_ms = 0;
  bool failed = false;  // retries used up: never proposed again in this rollout's life
};

class rollout_store {
 public:
  // Creates the tables if missing: not as numbered migrations, because the agreement store
  // owns agbot.db's user_version and these tables are independent of its schema.
  static core::result<rollout_store> open(core::store::database& db);

  struct stored_rollout {
    std::string key;
    rollout_record rollout;
  };
  struct stored_node {
    std::string key;  // the rollout's
    std::string slot;
    rollout_node_record node;
  };
  struct stored_failure {
    std::string slot;
    std::string version;
    rollout_failure_record failure;
  };
  core::result<std::vector<stored_rollout>> rollouts();
  core::result<std::vector<stored_node>> nodes();
  core::result<std::vector<stored_failure>> failures();

  // Insert or replace.
  core::result<void> put_rollout(const std::string& key, const rollout_record& r);
  core::result<void> put_node(const std::string& key, const std::string& slot,
                              const rollout_node_record& n);
  core::result<void> put_failure(const std::string& slot, const std::string& version,
                                 const rollout_failure_record& f);
  core::result<void> delete_node(const std::string& key, const std::string& slot);
  // The rollout and its nodes; failures stay, they belong to the slot.
  core::result<void> delete_rollout(const std::string& key);

 private:
  explicit rollout_store(core::store::database& db) : db_(&db) {}
  core::store::database* db_;
};

}  // namespace hmq::agbot
