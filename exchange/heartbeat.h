#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/common/result.h"
#include "core/crypto/crypto.h"
#include "core/loop/loop.h"
#include "core/wire/heartbeat.h"
#include "exchange/db.h"
#include "exchange/events.h"

// Node liveness in the exchange (docs/exchange.md, "Heartbeats and presence").
//
// Heartbeat and presence frames (core/wire/heartbeat.h) arrive on hb/{mailbox} and
// presence/{mailbox}. The tracker finds the node by mailbox (one SELECT the first time, then
// memory), opens the frame with the session key shared with that node, refuses counters it has
// seen (replay) and records the time in memory only. flush() writes every change since the last
// flush in ONE transaction (last_heartbeat_ms, counters) and, in the same transaction, addresses
// the `node_stale` / `node_online` events: 10,000 nodes heartbeating every second cost one
// write transaction per flush interval, not 10,000.
//
// A node is stale when its last heartbeat is older than its pattern's missing_heartbeat_interval
// (the smallest one of the pattern's services; default_missing_s when none is set): `node_stale`.
// Its "offline" presence frame (the MQTT last will) gives `node_offline` at once; it does not
// make the node stale by itself, so an agent restart or a short network cut does not cost the
// node its agreements (docs/exchange.md). Its next heartbeat or "online" frame after either
// gives `node_online`.
//
// Thread contract: loop thread only (owns no db connection of its own: uses the exchange's).
namespace hmq::exchange {

struct heartbeat_options {
  int64_t default_missing_s = 600;  // Horizon's default missing_heartbeat_interval
  size_t max_unknown = 10'000;      // remembered unknown mailboxes (no SELECT for each frame)
  std::chrono::milliseconds pattern_ttl{5'000};  // cached thresholds are re-read after this
};

struct heartbeat_stats {
  uint64_t accepted = 0;         // heartbeat frames taken
  uint64_t presence = 0;         // presence frames taken
  uint64_t rejected_replay = 0;  // counter not above the last one seen
  uint64_t rejected_frame = 0;   // size, kind or MAC
  uint64_t unknown_node = 0;     // no registered node with this mailbox
  uint64_t transactions = 0;     // write transactions made by flush()
  uint64_t rows_written = 0;
  uint64_t stale_events = 0;    // node_stale transitions
  uint64_t online_events = 0;   // node_online transitions
  uint64_t offline_events = 0;  // node_offline (last will) transitions
};

class heartbeat_tracker {
 public:
  heartbeat_tracker(db& d, const core::crypto::box_keypair& self, const core::loop::clock& clock,
                    heartbeat_options o = {});

  // Tracks every registered node, as if each had just heartbeaten (a grace period of one
  // threshold after an exchange restart, instead of declaring the whole fleet stale at once).
  result<void> load();

  void on_heartbeat(std::string_view mailbox, std::span<const uint8_t> frame);
  void on_presence(std::string_view mailbox, std::span<const uint8_t> frame);
  // The node with this mailbox registered again or went away: look it up afresh next time.
  void forget(const std::string& mailbox);

  // Marks nodes past their threshold stale, then writes all changes and addresses the events
  // in one transaction (none when nothing changed). Returns the events to publish after it.
  result<std::vector<addressed_event>> flush();

  struct node_view {
    int64_t last_heartbeat_ms = 0;
    bool online = false;
    uint16_t running_agreements = 0;
  };
  // What the tracker knows of node org/id (nullopt: never heard of since start).
  std::optional<node_view> node(std::string_view org, std::string_view id) const;

  const heartbeat_stats& stats() const { return stats_; }
  size_t tracked() const { return entries_.size(); }

 private:
  struct entry {
    fb::NodeT node;                // org, id, pattern, public_key, mailbox, arch
    core::crypto::shared_key key;  // computed on the first frame
    uint64_t last_counter = 0;     // heartbeat and online frames
    uint64_t last_offline = 0;     // offline frames (the will) have their own counter mark
    int64_t last_ms = 0;
    uint16_t running = 0;
    bool stale = false;
    bool offline = false;  // its last will arrived and nothing since
    bool heard = false;    // a frame arrived since this exchange started
    bool dirty = false;
  };
  enum class transition { stale, offline, online };

  entry* find(std::string_view mailbox);
  std::optional<core::wire::opened_frame> open(entry& e, std::span<const uint8_t> frame);
  int64_t threshold_ms(const std::string& pattern);
  void mark(entry& e, transition t);

  db& db_;
  const core::crypto::box_keypair& self_;
  const core::loop::clock& clock_;
  heartbeat_options opts_;
  heartbeat_stats stats_;
  std::unordered_map<std::string, entry> entries_;  // by mailbox
  std::unordered_set<std::string> unknown_;
  std::vector<std::pair<std::string, transition>> pending_;  // in the order they happened
  struct threshold {
    int64_t ms = 0;
    int64_t read_ms = 0;
  };
  std::unordered_map<std::string, threshold> thresholds_;  // by "org/pattern"
  bool schema_ready_ = false;
};

}  // namespace hmq::exchange
