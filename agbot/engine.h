#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agbot/agreement_store.h"
#include "agbot/event_window.h"
#include "agbot/rollout.h"
#include "agbot/seams.h"
#include "core/log/log.h"
#include "core/loop/loop.h"
#include "core/wire/codec.h"

// The agreement bot's logic (docs/protocol.md, docs/agbot.md): learns of nodes from the
// exchange (start-up search and events), proposes one agreement per node and top-level pattern
// service, and drives each agreement through proposed -> finalized | cancelled.
//
// Lifecycle: construct, start() (resume from the store, AgbotHello, load patterns, search
// nodes), feed every opened mailbox message to on_message(), stop() before destruction.
// Thread contract: loop thread only; all I/O goes through the exchange_api and outbox seams.
namespace hmq::agbot {

struct engine_config {
  std::string org;  // the agbot's org and id
  std::string id;
  core::crypto::public_key exchange_key{};  // events are accepted only from this key
  std::chrono::milliseconds reply_timeout{30'000};
  std::chrono::milliseconds retry_min{5'000};  // back-off before a node is proposed to again
  std::chrono::milliseconds retry_max{300'000};
  size_t max_concurrent = 256;  // node evaluations + proposals awaiting a reply
  uint32_t page_size = 200;     // SearchPatternNodes page
  // A finalized upgrade agreement the node has not confirmed (Cancel 210 of the agreement it
  // supersedes) within this time is cancelled and counts as a failed upgrade.
  std::chrono::milliseconds upgrade_timeout{600'000};
};

// Counters for tests, logs and the control socket.
struct engine_stats {
  uint64_t proposals_sent = 0;
  uint64_t finalized = 0;
  uint64_t negative_replies = 0;
  uint64_t reply_timeouts = 0;
  uint64_t node_cancels = 0;
  uint64_t duplicates_answered = 0;
  uint64_t dropped_wrong_sender = 0;  // authenticated sender is not the agreement's node
  uint64_t dropped_unknown = 0;       // agreement id we never made
  uint64_t dropped_invalid = 0;       // malformed id, unspecified enum, missing fields
  uint64_t dropped_before_start = 0;  // held messages beyond the bound before start()
  uint64_t nodes_not_eligible = 0;
  uint64_t prepare_failures = 0;  // service resolution or store failed
  uint64_t events = 0;
  uint64_t events_ignored = 0;
  uint64_t events_replayed = 0;  // sequence number seen before, or older than the window
  uint64_t event_gaps = 0;       // sequence numbers that never arrived (each led to a resync)
  uint64_t resyncs = 0;          // served patterns, patterns and nodes read again
  uint64_t exchange_errors = 0;
  // Node health governance (agbot/engine_governance.cc).
  uint64_t heartbeat_cancels = 0;  // 208: node stale
  uint64_t missing_cancels = 0;    // 209: the node no longer has the agreement
  uint64_t verifies_sent = 0;
  uint64_t nodes_back = 0;  // node_online events that led to a new proposal round
  uint64_t upgrades_proposed = 0;
  uint64_t upgrades_succeeded = 0;
  uint64_t upgrades_failed = 0;
};

class engine {
 public:
  using id_source = std::function<std::string()>;

  // `ids` makes agreement ids: random_agreement_id in the daemon, a counter in tests.
  engine(core::loop::scheduler& loop, engine_config cfg, exchange_api& x, outbox& out,
         agreement_store& store, id_source ids);
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  void start();
  void stop();

  // Every opened message from the agbot's mailbox (Event, Reply, Cancel, AgreementVerify).
  // Messages that arrive before start() (a persistent session delivers its queue right after
  // CONNACK) are held (bounded) and handled once the agreements are resumed.
  void on_message(const core::wire::opened& m);
  // The bus connected again after a loss: a broker that crashed may have lost a Proposal or the
  // node's Reply it had acknowledged, so every proposal still waiting is sent again (the agent
  // answers a repeated proposal with the same Reply).
  void on_reconnected();

  const engine_stats& stats() const { return stats_; }
  // Operator cancel (control socket): a live agreement is cancelled with 206
  // `ab_user_requested`, the node is told, and the node is proposed to again after the back-off.
  // False if `id` is not a live agreement.
  bool cancel_agreement(const std::string& id);
  // The reason code the node gave when it rejected agreement `id` (e.g. 115: signature), kept
  // in memory for the last 1024 rejections so operators see why (the agreement itself is
  // cancelled with 202 ab_negative_reply, as in Horizon).
  std::optional<uint16_t> node_reason(const std::string& id) const;
  // Live agreements (proposed or finalized), oldest first.
  std::vector<agreement> live_agreements() const;
  // Patterns loaded and every served pattern's nodes listed once.
  bool initial_search_done() const { return searches_pending_ == 0 && patterns_loaded_; }
  size_t active() const { return evaluating_ + proposed_count_; }
  size_t queued() const { return queue_.size(); }
  // Pattern upgrades (agbot/rollout.h).
  const rollout_controller& rollouts() const { return *rollout_; }

 private:
  struct pattern_entry {
    fb::AgbotPatternT served;
    std::optional<fb::PatternT> pattern;
    uint64_t generation = 0;
    // Resolved service trees by "org/url|version|arch"; dropped on pattern/service change.
    std::map<std::string, std::shared_ptr<const std::vector<fb::ServiceT>>> resolved;
  };
  struct consider_request {
    std::string node_org, node_id, pattern;
    std::optional<fb::NodeT> node;  // from a search: use as is; else fetched
    std::optional<fb::NodeT> hint;  // from an event: used when the fetch fails transiently
  };
  struct backoff_state {
    int attempts = 0;
    core::loop::timer_handle timer;
  };

  // Wraps a callback so it does nothing once the engine is stopped or gone: the exchange client
  // may complete a request after stop(). Here, not in engine.cc: every engine file uses it.
  template <typename F>
  auto guard(F fn) {
    return [w = std::weak_ptr<int>(life_), fn = std::move(fn)](auto&&... args) mutable {
      if (w.expired()) return;
      fn(std::forward<decltype(args)>(args)...);
    };
  }

  void resume();
  void hello();
  void load_agbot();
  void load_pattern(const std::string& key, std::function<void()> done);
  void search(const std::string& key, std::string token);
  void retry_later(std::function<void()> fn);

  void enqueue(consider_request r);
  void pump();
  void begin(consider_request r);
  void evaluate(fb::NodeT node, const std::string& pattern_key);
  void evaluation_done();
  void propose(const std::string& slot, const fb::NodeT& node, const std::string& pattern_key,
               const fb::PatternServiceT& ps, const std::string& version,
               std::function<void()> done, const std::string& supersedes = {});
  void build_and_send(const std::string& slot, const fb::NodeT& node,
                      const std::string& pattern_key, const fb::PatternServiceT& ps,
                      const std::vector<fb::ServiceT>& services,
                      const std::string& supersedes = {});

  // Rollout hooks (agbot/engine_upgrades.cc; the logic is in rollout_controller).
  bool start_upgrade(const std::string& slot, const std::string& version);
  void replan(const std::string& pattern_key, const std::set<std::string>& force_versions = {});
  void upgrade_failed(agreement a, uint16_t reason, bool after_swap);
  void upgrade_succeeded(const std::string& old_id);
  // `old` is over on the node and a finalized upgrade agreement supersedes it: cancels `old`
  // with 210 and promotes the upgrade. False (nothing done) when no such upgrade is live.
  bool finish_upgrade_of(const agreement& old);
  void on_service_changed(const std::string& org, const std::string& id);
  void resume_upgrades();

  // Exchange events and their sequence numbers (agbot/engine_events.cc).
  void on_event(const core::wire::opened& m, const fb::Event& e);
  void load_event_window();
  bool fresh_event(const fb::Event& e);  // false: drop it (counted and logged)
  void save_event_window();
  void resync(const std::string& why);
  // The exchange's own event counter for this agbot (GetAgbot): behind the window means its
  // database was restored, and the window starts over there.
  void check_event_counter(uint64_t exchange_seq);
  void on_reply(const core::wire::opened& m, const fb::Reply& r);
  void on_cancel(const core::wire::opened& m, const fb::Cancel& c);
  void on_verify(const core::wire::opened& m, const fb::AgreementVerify& v);
  void on_timeout(const std::string& id);

  // Node health governance (agbot/engine_governance.cc).
  void on_node_stale(const std::string& org, const std::string& id);
  void on_node_online(consider_request r);
  void on_verify_reply(const core::wire::opened& m, const fb::AgreementVerifyReply& v);
  void arm_verify();
  // The smallest check_agreement_status of the served patterns' services (120 s when none).
  std::chrono::seconds verify_interval() const;
  void verify_agreements();
  void send_verify(const agreement& a);
  bool node_stale(const std::string& org, const std::string& id) const;

  bool persist(agreement& a);
  void cancel(agreement a, fb::CancelReason reason, bool notify_node);
  void finalize(agreement& a, const core::wire::opened& reply);
  void send_proposal(const agreement& a);
  void send_reply_ack(const agreement& a, bool still_valid, const core::wire::opened* reply);
  void send_cancel(const agreement& a);
  void record_in_exchange(const std::string& id, int attempt);
  void delete_in_exchange(agreement a, int attempt);
  void backoff(const std::string& slot, const std::string& node_org, const std::string& node_id,
               const std::string& pattern);
  bool backing_off(const std::string& slot) const;
  std::chrono::milliseconds retry_delay(int attempt) const;
  uint32_t expiry_s() const;

  core::loop::scheduler& loop_;
  engine_config cfg_;
  exchange_api& x_;
  outbox& out_;
  agreement_store& store_;
  id_source ids_;
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
  std::shared_ptr<spdlog::logger> log_;
  engine_stats stats_;
  bool started_ = false;

  std::map<std::string, pattern_entry> patterns_;  // by "org/name"
  bool patterns_loaded_ = false;
  size_t searches_pending_ = 0;
  std::vector<consider_request> early_;           // node events before the patterns were loaded
  std::vector<core::wire::opened> before_start_;  // see on_message(); at most max_before_start
  int hello_attempts_ = 0;
  core::loop::timer_handle start_retry_;

  std::map<std::string, agreement> live_;         // by agreement id
  std::map<std::string, uint16_t> node_reasons_;  // see node_reason(); bounded by the deque
  std::deque<std::string> node_reason_order_;
  std::map<std::string, std::string> live_slots_;     // slot -> agreement id
  std::map<std::string, std::string> upgrade_slots_;  // slot -> live agreement superseding it
  std::set<std::string> upgrade_starting_;  // slots whose upgrade waits for the node's record
  std::map<std::string, core::loop::timer_handle> upgrade_timers_;  // by upgrade agreement id
  std::unique_ptr<rollout_controller> rollout_;
  std::map<std::string, core::loop::timer_handle> reply_timers_;
  std::map<std::string, core::loop::timer_handle> exchange_retries_;
  std::set<std::string> preparing_;                // slots between decision and persist
  std::map<std::string, backoff_state> backoffs_;  // by slot
  std::deque<consider_request> queue_;
  std::set<std::string> queued_;  // "node|pattern" in queue_
  size_t evaluating_ = 0;
  size_t proposed_count_ = 0;
  std::set<std::string> stale_nodes_;  // "org/id" the exchange reported stale (in memory)
  core::loop::timer_handle verify_timer_;
  std::chrono::seconds verify_every_{0};  // the period verify_timer_ was armed with
  event_window events_seen_;
  core::loop::timer_handle gap_timer_;
  core::loop::timer_handle resync_timer_;
  int64_t last_resync_ms_ = std::numeric_limits<int32_t>::min();
};

// 32 lowercase hex characters (docs/protocol.md).
bool valid_agreement_id(std::string_view id);
// 16 random bytes as lowercase hex (agbot/ids.cc, the only user of the RNG here).
std::string random_agreement_id();

}  // namespace hmq::agbot
