#pragma once

#include <bitset>
#include <cstdint>
#include <optional>

#include "core/common/result.h"
#include "core/crypto/crypto.h"
#include "core/store/store.h"

// Which of the exchange's events this agbot has acted on, by the per-agbot sequence number the
// exchange stamps on each (docs/protocol.md "Events"). The codec's replay memory lives in RAM
// and is gone after a restart; this window lives in agbot.db, so an event replayed after a
// restart is still recognised. Loop thread only.
namespace hmq::agbot {

class event_window {
 public:
  // Sequence numbers remembered below the highest one seen. Events arrive in order from one
  // publisher; out of order only when replicas or a resent outbox interleave, by a few.
  static constexpr uint64_t width = 1024;

  enum class verdict {
    fresh,     // not seen: act on it (it is now marked seen)
    replayed,  // seen before: drop it
    too_old,   // below the window: a replay, or the exchange's numbers restarted; resync
  };

  verdict accept(uint64_t seq);
  // Numbers below the highest seen that never arrived (a gap), within the window.
  uint64_t missing() const;
  // Gives up on the missing numbers (a resync replaced them): they count as seen.
  void forget_gaps();
  // Starts over at `high` (the exchange's own counter after its database was restored or
  // replaced): everything up to it counts as seen.
  void restart_at(uint64_t high);
  uint64_t high() const { return high_; }
  bool empty() const { return high_ == 0; }

  // Persistence in agbot.db, keyed by the exchange's key (another exchange, another count).
  static core::result<void> create_table(core::store::database& db);
  static core::result<event_window> load(core::store::database& db,
                                         const core::crypto::public_key& exchange);
  core::result<void> save(core::store::database& db,
                          const core::crypto::public_key& exchange) const;

 private:
  bool seen(uint64_t seq) const { return seen_[seq % width]; }
  uint64_t high_ = 0;        // highest number seen; 0: none yet
  std::bitset<width> seen_;  // bit seq % width, for seq in (high_ - width, high_]
};

}  // namespace hmq::agbot
