#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agbot/rollout_store.h"
#include "core/common/result.h"
#include "core/log/log.h"
#include "core/loop/loop.h"
#include "core/store/store.h"
#include "schema/message_generated.h"

// Pattern upgrades (docs/agbot.md "Rollouts"): when a served pattern prefers another version of
// a service than some nodes run, the agbot replaces their agreements with new ones (a Proposal
// whose `supersedes` names the running agreement), in batches of at most max_in_flight nodes,
// batch_pause_s apart, and halts once max_failures nodes failed. A node that fails a version
// (reject, no reply, cancel during the agent's verification window) is retried per the version's
// Horizon priority (`retries` within `retry_durations`) and then marked failed for that version;
// it then gets the next lower-priority version, unless it already runs it (rolled back).
//
// The controller is a state machine over slots ("node|pattern|service", as in agreement::slot):
// the engine tells it what runs where and how each upgrade ended; it asks the engine to start
// upgrades and publishes progress. Its state lives in agbot.db (agbot/rollout_store.h) so an
// agbot restart resumes the rollout. Loop thread only.
namespace hmq::agbot {

namespace fb = ::hmq::wire::fb;

// One service of one pattern on one node, as the engine sees it.
struct slot_version {
  std::string slot;
  std::string version;     // version of the live agreement
  bool upgrading = false;  // an upgrade agreement for this slot is live
};

class rollout_controller {
 public:
  struct hooks {
    // Start the upgrade of `slot` to `version`. False when it cannot start now (no live
    // agreement anymore, node unknown): the slot leaves the rollout.
    std::function<bool(const std::string& slot, const std::string& version)> start_upgrade;
    // Progress for the exchange (RolloutStatus); may be empty.
    std::function<void(const fb::RolloutStatusT&)> publish;
  };

  // `db` may be null (no persistence, tests); else the tables are created if missing.
  rollout_controller(core::loop::scheduler& loop, core::store::database* db, std::string agbot,
                     hooks h);
  ~rollout_controller();
  rollout_controller(const rollout_controller&) = delete;
  rollout_controller& operator=(const rollout_controller&) = delete;

  // Loads persisted rollouts. Slots that were in flight stay in flight: the engine reports how
  // their upgrade agreement ends (or calls on_abandoned when it has none).
  core::result<void> load();

  // The pattern (re)loaded or the set of agreements changed in a way that may need upgrades:
  // compares what runs (`current`, every live agreement of the pattern) with the preferred
  // version per slot and starts, changes or continues the rollout of each service.
  // `force_versions` lists versions whose deployment changed: slots on them are re-proposed.
  void plan(const fb::PatternT& pattern, const std::string& pattern_key,
            const std::vector<slot_version>& current,
            const std::set<std::string>& force_versions = {});

  // The version a new agreement for `slot` should use: the best-priority version of `ps` the
  // slot has not failed and whose rollout has not halted. Empty when none is left.
  std::string version_for(const std::string& slot, const fb::PatternServiceT& ps) const;

  // Outcomes reported by the engine.
  void on_upgraded(const std::string& slot, const std::string& version);
  // `after_swap`: the agent ran the version and restored the previous one (verification failed).
  void on_failed(const std::string& slot, const std::string& version, uint16_t reason,
                 bool after_swap);
  // The slot's upgrade can no longer finish (node unregistered, agreement cancelled).
  void on_abandoned(const std::string& slot);
  // What a slot runs changed outside an upgrade (new agreement finalized, or gone: empty), so
  // the per-version counts stay true.
  void on_running(const std::string& slot, const std::string& version);

  // Status of every rollout (for the control socket and tests).
  std::vector<fb::RolloutStatusT> status() const;
  // Largest number of upgrades that were in flight at once, over the process lifetime.
  size_t peak_in_flight() const { return peak_in_flight_; }
  size_t in_flight() const;

 private:
  using node_entry = rollout_node_record;
  struct rollout : rollout_record {
    std::map<std::string, node_entry> nodes;     // by slot
    std::map<std::string, std::string> running;  // slot -> version now running (for counts)
    std::set<std::string> failed_slots;  // slots that failed at least once (halting counts these)
    uint64_t batches = 0;
    core::loop::timer_handle pause;
  };
  using failure = rollout_failure_record;

  static std::string rollout_key(const std::string& pattern, const std::string& service) {
    return pattern + "|" + service;
  }
  rollout* find_by_slot(const std::string& slot, std::string* key_out = nullptr);
  void pump(const std::string& key);
  void settle(const std::string& key);
  void publish(const std::string& key);
  void save_rollout(const rollout& r);
  void save_node(const rollout& r, const std::string& slot, const node_entry& n);
  void save_failure(const std::string& slot, const std::string& version, const failure& f);
  void delete_node(const std::string& key, const std::string& slot);
  void delete_rollout(const std::string& key);
  fb::RolloutStatusT status_of(const rollout& r) const;
  const fb::PatternServiceT* service_of(const std::string& pattern,
                                        const std::string& service) const;

  core::loop::scheduler& loop_;
  std::optional<rollout_store> store_;  // none: not persisted
  std::string agbot_;
  hooks hooks_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
  std::map<std::string, rollout> rollouts_;                         // by rollout_key
  std::map<std::string, std::map<std::string, failure>> failures_;  // slot -> version -> failure
  std::map<std::string, fb::PatternT> patterns_;                    // last planned, by key
  std::map<std::string, core::loop::timer_handle> publish_timers_;  // by rollout_key
  size_t peak_in_flight_ = 0;
};

// "org/url" of a pattern service.
inline std::string service_key(const fb::PatternServiceT& ps) {
  return ps.service_org + "/" + ps.service_url;
}
// Versions of `ps` from most to least preferred (priority_value ascending, unprioritised last,
// ties in listed order).
std::vector<const fb::ServiceVersionT*> versions_by_priority(const fb::PatternServiceT& ps);

}  // namespace hmq::agbot
