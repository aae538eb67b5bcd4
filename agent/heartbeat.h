#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
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
// Lifecycle: construct, will_frame() before the bus client is built (its options carry the
// will), start(), stop(). Loop thread only.
namespace hmq::agent {

struct heartbeat_options {
  std::chrono::milliseconds interval{std::chrono::seconds(60)};
  uint64_t reserve_block = 1000;  // counters reserved per agent.db write
};

// Persistent counter high-water mark in agent.db (its own table, created if missing).
class counter_reservation {
 public:
  counter_reservation(core::store::database& db, uint64_t block) : db_(db), block_(block) {}
  // The next unused counter; reserves a new block in the store first when needed.
  core::result<uint64_t> next();

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

  heartbeat_sender(core::loop::scheduler& loop, core::store::database& db,
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
  void arm();
  void on_connection(bool up);

  core::loop::scheduler& loop_;
  counter_reservation counters_;
  core::crypto::shared_key key_;
  std::string mailbox_;
  core::bus::topics topics_;
  body_fn body_;
  heartbeat_options opts_;
  core::bus::client* client_ = nullptr;
  core::loop::timer_handle timer_;
  bool alias_sent_ = false;  // the broker knows alias 1 = our heartbeat topic (this connection)
  int64_t last_beat_ms_ = 0;  // when the last heartbeat went to the client
  uint64_t sent_ = 0;
  uint64_t skipped_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hmq::agent
