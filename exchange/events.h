#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/bus/messenger.h"
#include "core/common/result.h"
#include "core/crypto/crypto.h"
#include "core/loop/loop.h"
#include "core/store/group_commit.h"
#include "exchange/db.h"

// Change events (docs/exchange.md, "Event addressing"). An event is addressed to the mailbox of
// every agbot that serves the affected pattern and sealed to that agbot's key, so no topic ever
// carries an org name and only the agbots concerned learn that anything changed.
//
// Addressing runs inside the write transaction that made the change (so the recipients and their
// sequence numbers commit together with the change); publishing runs after COMMIT.
namespace hmq::exchange {

struct addressed_event {
  core::crypto::public_key recipient{};
  std::string mailbox;
  fb::EventT event;
  int64_t outbox_id = 0;  // its row in event_outbox, deleted once the broker has it
};

// Inside a transaction: the events for agbots that serve `pattern` ("org/name") for nodes of
// node.org. Each event gets the recipient's next sequence number.
result<std::vector<addressed_event>> address_node_event(db& d, fb::EventKind kind,
                                                        const fb::NodeT& node,
                                                        std::string_view pattern);
// Inside a transaction: events for agbots serving pattern org/name.
result<std::vector<addressed_event>> address_pattern_event(db& d, fb::EventKind kind,
                                                           std::string_view org,
                                                           std::string_view name);
// Inside a transaction: events for agbots serving a pattern that references service org+url.
result<std::vector<addressed_event>> address_service_event(db& d, fb::EventKind kind,
                                                           std::string_view org,
                                                           std::string_view url,
                                                           std::string_view id);

// Seals and publishes addressed events (QoS 1) to each recipient's mailbox and deletes each
// from the outbox once the broker acknowledged it. Loop thread only.
class event_publisher {
 public:
  event_publisher(core::bus::messenger& m, db& d, const core::loop::clock& clock)
      : messenger_(m), db_(d), clock_(clock) {}
  void publish(const std::vector<addressed_event>& events);
  // Publishes what a previous run (or a replica) left in the outbox. Recipients may see an
  // event twice (same seq) if another replica is publishing it at the same moment.
  void publish_pending();
  // Outbox deletes (one per acknowledged event) join `g`'s groups instead of committing one
  // by one. Losing one to a crash only sends that event again (same seq), which agbots accept.
  void group_deletes(core::store::group_commit* g) { group_ = g; }
  uint64_t published() const { return published_; }

 private:
  void send(const addressed_event& ev);

  core::bus::messenger& messenger_;
  db& db_;
  const core::loop::clock& clock_;
  core::store::group_commit* group_ = nullptr;
  uint64_t published_ = 0;
};

// The finished Message buffer carrying `e` (exposed for tests and the agbot's own tests).
std::vector<uint8_t> event_message(const fb::EventT& e, const core::loop::clock& clock);

}  // namespace hmq::exchange
