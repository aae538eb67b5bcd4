#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/bus/client.h"

// What the client has subscribed to, independent of any MQTT connection: each filter's QoS,
// handler, MQTT v5 subscription identifier and SUBACK state, the callers waiting for its SUBACK,
// and the routing of an inbound message to handlers. No Paho, no sockets: unit tests drive it
// alone (tests/unit/bus_subscription_table_test.cc).
//
// Lifecycle: owned by the client for its whole life; filters stay across reconnects (after a
// session loss they are re-sent from here). Thread contract: loop thread only, not thread-safe.
namespace hmq::core::bus {

class subscription_table {
 public:
  struct entry {
    int qos = 1;
    handler h;
    uint32_t id = 0;                  // MQTT v5 subscription identifier, fixed for its lifetime
    bool confirmed = false;           // the broker holds it in the current session
    uint64_t in_flight = 0;           // op id of the SUBSCRIBE on the wire, 0 when none
    std::vector<completion> waiting;  // subscribe() callers waiting for the SUBACK
  };

  // How a SUBSCRIBE ended.
  enum class suback {
    granted,  // the broker holds the subscription
    refused,  // reason code >= 0x80: final, the waiters get an error
    lost,     // no SUBACK (the connection dropped): re-sent on the next connect, waiters kept
  };

  // Adds `filter` or replaces its handler and QoS. A new filter takes a fresh subscription
  // identifier; a changed QoS makes it unconfirmed (it must be sent again).
  entry& add(const std::string& filter, int qos, handler h);
  // Forgets `filter`; returns its waiters (nullopt if it was not there).
  std::optional<std::vector<completion>> remove(const std::string& filter);
  entry* find(const std::string& filter);

  // The SUBSCRIBE `op` for `filter` ended with `outcome`. Returns the waiters to answer now;
  // nullopt when the filter is gone, `op` was superseded by a later SUBSCRIBE, or it was lost.
  std::optional<std::vector<completion>> settle(const std::string& filter, uint64_t op,
                                                suback outcome);

  // After every (re)connect: every filter, to be sent again (in_flight cleared). Without a
  // session (session_present false) none is confirmed any more. Re-sending even when the
  // session survived covers a broker that lost a subscription between its SUBACK and its next
  // autosave but still reports the session.
  std::vector<std::string> resubscribe_after_connect(bool session_present);

  // The handlers `in` goes to, in order. Copies carrying subscription identifiers go to the
  // subscriptions they name (one copy per overlapping subscription, mosquitto 2); a copy
  // without known identifiers goes to every matching filter.
  std::vector<handler> route(const inbound& in) const;

  // stop(): every waiter of every filter, taken out.
  std::vector<completion> take_all_waiters();

  size_t size() const { return subs_.size(); }

  // True for filters that can match more than their own text (wildcards, shared subscriptions).
  static bool is_pattern(std::string_view filter);

 private:
  uint32_t take_id();

  std::map<std::string, entry> subs_;
  // The keys of subs_ that are patterns: a filter without wildcards matches only its own topic,
  // one lookup instead of a scan, so a client holding thousands of mailbox subscriptions
  // (hmq-fleetsim) routes in O(log n).
  std::set<std::string> patterns_;
  std::unordered_map<uint32_t, std::string> filter_of_id_;  // identifier -> key of subs_
  uint32_t next_id_ = 0;
};

}  // namespace hmq::core::bus
