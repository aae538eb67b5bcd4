#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/bus/client.h"
#include "core/bus/topics.h"
#include "core/common/result.h"
#include "core/crypto/crypto.h"
#include "core/loop/loop.h"
#include "core/store/store.h"
#include "core/wire/heartbeat.h"

// The agent's heartbeat and presence (docs/agent.md, "Heartbeats"). Every `interval` it
// publishes one compact frame (core/wire/heartbeat.h) on hb/{mailbox}, QoS 0, sealed with the
// session key shared with the exchange. The topic goes out once per connection: the first frame
// carries it with a topic alias, later ones only the alias. On every connect it publishes a
// retained "online" frame on presence/{mailbox}; the "offline" frame is the MQTT last will.
//
// Nonce safety: the counter is the nonce, so it must never repeat, also across restarts and
// crashes. Counters are reserved in blocks in agent.db (the high-water mark is written before a
// counter of a new block is used); a restart starts after the last reserved block.
//
// Lifecycle: construct, will() before the bus client is built (its options carry the will),
// start(), stop(). Loop thread only.
//
// hmq-fleetsim's simulated nodes use this same sender (tools/fleetsim): many senders on one
// shared connection, so without presence (one will per connection cannot speak for N nodes) and
// without a topic alias (each sender would claim alias 1), with counters in memory
// (memory_counter) and a first beat spread over the interval.
namespace hmq::agent {

struct heartbeat_options {
  std::chrono::milliseconds interval{std::chrono::seconds(60)};
  uint64_t reserve_block = 1000;  // counters reserved per agent.db write
  // The "online" frame on every connect and the "offline" frame as last will. Only for a sender
  // that owns its connection.
  bool presence = true;
  // MQTT v5 topic alias for hb/{mailbox}; 0: the topic goes out with every frame (a connection
  // shared by many senders cannot give each one alias 1).
  uint16_t topic_alias = 1;
  // The first beat after this instead of one interval (fleetsim spreads its nodes evenly).
  std::optional<std::chrono::milliseconds> first_beat = std::nullopt;
};

// Where a sender's counters come from. The counter is the nonce: a source never returns the
// same value twice for the same key, and always more than the last one.
class counter_source {
 public:
  virtual ~counter_source() = default;
  virtual core::result<uint64_t> next() = 0;
};

// Counters in memory only: for an identity that does not outlive the process (a fleetsim node
// gets a fresh key every run). The object must outlive every sender that draws from it, so a
// sender restarted on the same key continues after the last counter instead of at `first`.
class memory_counter final : public counter_source {
 public:
  explicit memory_counter(uint64_t first = 1) : next_(first == 0 ? 1 : first) {}
  core::result<uint64_t> next() override { return next_++; }

 private:
  uint64_t next_;
};

// Persistent counter high-water mark in agent.db (its own table, created if missing).
class counter_reservation final : public counter_source {
 public:
  counter_reservation(core::store::database& db, uint64_t block) : db_(db), block_(block) {}
  // The next unused counter; reserves a new block in the store first when needed.
  core::result<uint64_t> next() override;

 private:
  core::store::database& db_;
  uint64_t block_;
  uint64_t next_ = 0;
  uint64_t reserved_ = 0;  // counters < reserved_ are covered by the stored mark
  bool loaded_ = false;
};

class heartbeat_sender {
 public:
  using body_fn = std::function<core::wire::heartbeat_body()>;

  // The agent: counters reserved in blocks in `db` (agent.db).
  heartbeat_sender(core::loop::scheduler& loop, core::store::database& db,
                   const core::crypto::public_key& exchange_key,
                   const core::crypto::secret& node_sk, std::string mailbox,
                   core::bus::topics topics, body_fn body, heartbeat_options o = {});
  // Counters from `counters` (not owned; must outlive the sender).
  heartbeat_sender(core::loop::scheduler& loop, counter_source& counters,
                   const core::crypto::public_key& exchange_key,
                   const core::crypto::secret& node_sk, std::string mailbox,
                   core::bus::topics topics, body_fn body, heartbeat_options o = {});

  // The last will for the bus client's options: presence/{mailbox}, retained, QoS 1, an
  // "offline" frame with a fresh counter. Empty optional if the counter cannot be reserved.
  std::optional<core::bus::last_will> will();

  // Starts the timer and the "online" publish on every (re)connect of `c`.
  void start(core::bus::client& c);
  void stop();
  // Publish one heartbeat now (the timer calls this). Skipped while disconnected: a heartbeat
  // queued for later would be stale when it arrives, and an alias-only one would be invalid.
  void beat();

  uint64_t sent() const { return sent_; }
  uint64_t skipped() const { return skipped_; }

 private:
  void arm(std::chrono::milliseconds after);
  void on_connection(bool up);

  core::loop::scheduler& loop_;
  std::unique_ptr<counter_reservation> owned_counters_;
  counter_source& counters_;
  core::crypto::shared_key key_;
  std::string mailbox_;
  core::bus::topics topics_;
  body_fn body_;
  heartbeat_options opts_;
  core::bus::client* client_ = nullptr;
  core::loop::timer_handle timer_;
  bool alias_sent_ = false;   // the broker knows alias 1 = our heartbeat topic (this connection)
  int64_t last_beat_ms_ = 0;  // when the last heartbeat went to the client
  uint64_t sent_ = 0;
  uint64_t skipped_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hmq::agent
