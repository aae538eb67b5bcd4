#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "agent/agent_store.h"
#include "agent/event_log.h"
#include "agent/seams.h"
#include "core/loop/loop.h"
#include "core/wire/codec.h"

// The agent's side of the agreement protocol (docs/protocol.md) and its registration. Receives
// opened messages from the node's mailbox, decides, persists, answers through the outbox, records
// finalized agreements in the exchange and hands their workloads to the runtime.
//
// Lifecycle: construct, start() (resumes from the store: timers of accepted agreements,
// re-deploys finalized ones, re-sends exchange updates that did not complete), stop() cancels
// timers and ignores callbacks still in flight. Loop thread only.
namespace hmq::agent {

enum class errc {
  ok = 0,
  not_registered = 1,
  already_registered = 2,  // registered as another node/pattern: unregister first
  bad_request = 3,         // control input that cannot be used (bad name, bad key, bad user input)
  store_failed = 4,
};
const std::error_category& category();
std::error_code make_error_code(errc e);

struct engine_options {
  // No ReplyAck this long after accepting -> Cancel 107.
  std::chrono::milliseconds finalize_timeout{std::chrono::seconds(60)};
  // Status reports to the exchange: at most one per this interval (changes in between are
  // coalesced into the next one).
  std::chrono::milliseconds status_min_interval{std::chrono::seconds(5)};
  // A failed exchange update (PutAgreement/DeleteAgreement) is retried after this.
  std::chrono::milliseconds exchange_retry{std::chrono::seconds(30)};
  // Live (accepted + finalized) agreements a node takes at most; more proposals are rejected.
  size_t max_live_agreements = 64;
  // Proposals whose agbot key lookup is in flight, for agbots the node has never dealt with;
  // more are dropped so a flood of proposals with fresh agreement ids and agbot names cannot
  // turn the agent into an RPC amplifier against the exchange. Agbots the node knows (a cached
  // key or an agreement) have a lane of their own of the same size, which that flood cannot
  // fill. Proposals naming one agbot share one lookup.
  size_t max_pending_proposals = 32;
  // A cached pattern is trusted this long; then the next proposal reads it again, so a version
  // removed from the pattern stops being accepted.
  std::chrono::milliseconds pattern_ttl{std::chrono::minutes(10)};
  // Agbot keys the exchange confirmed are remembered this long, so a proposal from a known agbot
  // needs no lookup. A proposal from any other key is looked up again (the key may have rotated);
  // the TTL bounds how long a replaced key is still believed when nobody proposes with the new one.
  std::chrono::milliseconds agbot_key_ttl{std::chrono::minutes(10)};
  size_t max_cached_agbot_keys = 64;
  // A proposal whose sender is not the cached key of the agbot it names is dropped without a
  // lookup when that agbot's key was looked up less than this long ago: a flood of fresh keys
  // naming a known agbot costs the exchange one lookup per interval and never evicts the key.
  std::chrono::milliseconds agbot_key_recheck{std::chrono::seconds(30)};
  // Upgrade (a Proposal that supersedes a running agreement): the new version must run this long
  // without failing before the old agreement is given up; a failure inside it restores the old
  // version (docs/agent.md "Upgrades").
  std::chrono::milliseconds upgrade_verify_window{std::chrono::seconds(30)};
  // Cancelled agreements are history (`hmq agreement list`); the newest keep_cancelled stay,
  // older ones are deleted from agent.db once the exchange knows of the cancel and the cancel
  // is older than prune_after (far beyond the envelope's skew window, so a re-delivered old
  // Proposal is refused by the codec, not re-accepted). The event log keeps their story.
  size_t keep_cancelled = 100;
  std::chrono::milliseconds prune_after{std::chrono::hours(1)};
};

// Every drop is counted here (and logged); tests assert on these, not on log text.
struct engine_counters {
  uint64_t proposals = 0;
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  uint64_t duplicates = 0;  // re-delivered Proposal/ReplyAck/Cancel answered or ignored
  uint64_t finalized = 0;
  uint64_t cancelled = 0;
  uint64_t dropped_malformed = 0;  // missing or badly formed agreement id / agbot name
  uint64_t dropped_not_owner = 0;  // message about an agreement from a key that did not propose it
  uint64_t dropped_unknown = 0;    // ReplyAck/Cancel for an agreement this node does not have
  uint64_t dropped_bad_agbot = 0;  // proposal sender is not the exchange's key for its agbot
  uint64_t dropped_unrouted = 0;   // body type the agent does not handle
  uint64_t dropped_busy = 0;       // too many proposals awaiting their agbot key lookup
  uint64_t agbot_key_lookups = 0;  // GetPublicKey calls for a proposing agbot (cache misses)
  uint64_t pattern_reads = 0;      // the registered pattern read from the exchange
  uint64_t store_errors = 0;
  uint64_t pruned = 0;     // old cancelled agreements deleted from agent.db (keep_cancelled)
  uint64_t upgrades = 0;   // swaps verified: the new version replaced the old one
  uint64_t rollbacks = 0;  // swaps undone: the previous version was restored
};

class engine {
 public:
  engine(core::loop::scheduler& loop, agent_store& store, exchange_api& x, outbox& out, runtime& rt,
         engine_options o = {});
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  result<void> start();
  void stop();

  // An opened message from the node's mailbox (any body type).
  void on_message(const core::wire::opened& m);

  // Control API.
  void register_node(node_registration r, std::string user_input_json, done_fn cb);
  void unregister_node(done_fn cb);
  result<void> import_key(const crypto::public_key& k, std::string name);

  result<std::optional<stored_registration>> registration() { return store_.registration(); }
  result<std::vector<trusted_key>> trusted_keys() { return store_.trusted_keys(); }
  // All known agreements (cancelled ones included), oldest first.
  std::vector<stored_agreement> agreements() const;
  size_t live_agreements() const;
  const engine_counters& stats() const { return stats_; }
  // The event log (`hmq eventlog list`); the engine appends to it.
  event_log& events() { return events_; }

 private:
  using reject_reason = std::pair<uint16_t, std::string>;

  void on_proposal(const core::wire::opened& m);
  void decide(const core::wire::opened& m);
  std::optional<reject_reason> evaluate(const fb::Proposal& p, const stored_registration& reg);
  // The proposal's top-level service and version must be in the registered pattern as the
  // exchange holds it (engine_patterns.cc); `done` gets the rejection, if any.
  void check_pattern(const fb::Proposal& p, const stored_registration& reg,
                     std::function<void(std::optional<reject_reason>)> done);
  void accept(const core::wire::opened& m);
  void on_reply_ack(const core::wire::opened& m);
  void on_cancel(const core::wire::opened& m);
  void on_verify(const core::wire::opened& m);

  void finalize(stored_agreement& a);
  void cancel_local(const std::string& id, uint16_t reason, std::string message, bool notify_agbot,
                    bool remove_workload = true);
  void arm_finalize_timer(const std::string& id, std::chrono::milliseconds after);
  void deploy(const std::string& id);
  std::optional<workload> workload_of(const std::string& id);
  // Download-then-swap from `old_id` to the finalized `id` (engine_workloads.cc).
  void upgrade(const std::string& id, const std::string& old_id);
  void rollback(const std::string& id, uint16_t reason, std::string message, bool notify_agbot);
  void upgrade_verified(const std::string& id);
  // The live agreement a finalized agreement's proposal supersedes, if this node holds it.
  std::optional<std::string> superseded_by(const stored_agreement& a) const;
  void sync_exchange(const std::string& id);
  void schedule_resync();
  bool persist(const stored_agreement& a);
  void prune_cancelled();

  void send_reply(const crypto::public_key& to, const std::string& id, bool accept, uint16_t reason,
                  const std::string& message);
  void send_cancel(const stored_agreement& a);
  // The agreement if it exists and `sender` proposed it; counts the drop otherwise.
  stored_agreement* owned(const flatbuffers::String* id, const crypto::public_key& sender);

  core::loop::scheduler& loop_;
  agent_store& store_;
  exchange_api& x_;
  outbox& out_;
  runtime& rt_;
  engine_options opts_;
  engine_counters stats_;
  std::map<std::string, stored_agreement> agreements_;
  std::map<std::string, core::loop::timer_handle> finalize_timers_;
  std::set<std::string> pending_proposals_;  // agbot key lookup in flight
  // Lookups in flight by agbot "org/id", with the proposals waiting for each.
  struct key_lookup {
    bool known = false;  // the agbot's lane (see engine_options::max_pending_proposals)
    std::vector<std::shared_ptr<const core::wire::opened>> waiting;
  };
  std::map<std::string, key_lookup> lookups_;
  std::array<size_t, 2> waiting_in_lane_{};  // [known]
  void look_up_agbot(const std::string& name, const node_identity& node,
                     const core::wire::opened& m, bool known);
  void agbot_key_arrived(const std::string& name, const result<crypto::public_key>& k);
  bool dealt_with(const std::string& agbot) const;
  struct cached_key {
    crypto::public_key key;
    int64_t until_ms = 0;
    int64_t checked_ms = 0;  // when the exchange last gave it
  };
  // "org/id" -> the key the exchange last gave for that agbot; in memory only (a restart costs
  // one lookup per agbot).
  std::map<std::string, cached_key> agbot_keys_;
  // The registered pattern as last read from the exchange (engine_patterns.cc).
  std::optional<fb::PatternT> pattern_;
  std::string pattern_key_;  // "org/name" of pattern_
  int64_t pattern_read_ms_ = 0;
  void remember_agbot_key(const std::string& name, const crypto::public_key& k);
  core::loop::timer_handle resync_timer_;
  bool prune_posted_ = false;
  event_log events_;
  // Status report (`hmq exchange node status`): per agreement what the runtime last said.
  struct service_status {
    fb::ServiceState state = fb::ServiceState::starting;
    uint32_t restarts = 0;
    std::string last_error;
  };
  std::map<std::string, service_status> service_status_;
  core::loop::timer_handle status_timer_;
  int64_t last_status_ms_ = 0;
  void status_changed(const std::string& id, fb::ServiceState st, std::string error);
  void send_status();
  // Appends to the event log with the agreement's top-level service.
  void record(std::string_view kind, const std::string& id, uint16_t reason,
              std::string_view message);
  struct upgrade_state {
    std::string old_id;
    bool swapped = false;  // the old workload is stopped (a rollback has to restart it)
    core::loop::timer_handle verify;
  };
  std::map<std::string, upgrade_state> upgrading_;  // by the new agreement's id
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// 32 lowercase hex characters.
bool valid_agreement_id(std::string_view id);

}  // namespace hmq::agent

template <>
struct std::is_error_code_enum<hmq::agent::errc> : std::true_type {};
