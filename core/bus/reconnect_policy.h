#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "core/common/backoff.h"

// When the client tries the broker again, and when it stops trying. Reconnects are the
// client's, not Paho's automatic_reconnect: Paho's back-off has one-second granularity, does
// not retry a failed first connect, and does not say whether the broker kept the session (the
// client needs session_present to know what to re-subscribe).
//
// Rules:
// - after a lost connection or a failed attempt, wait backoff.next() (jittered, doubling up to
//   max_retry); a successful connect starts again from min_retry;
// - a broker that refused the credentials on the FIRST attempt ends the client (a typo in a
//   password should fail fast), unless retry_refused_credentials is set (daemons whose broker
//   identity the exchange creates after they start); later refusals never end it, so a daemon
//   that was connected keeps waiting for its identity to come back;
// - a client that could not be created (bad URI) never tries.
//
// Pure: no clock, no loop; the client schedules next_delay() on its loop, and unit tests call it
// directly. Thread contract: one owner (the client's loop thread).
namespace hmq::core::bus {

// MQTT v5 reason codes that mean "these credentials will not do" (CONNACK) or "this identity
// may not" (SUBACK, PUBACK): 134, 135, 138.
bool is_auth_failure(int reason);

class reconnect_policy {
 public:
  reconnect_policy(std::chrono::milliseconds min_retry, std::chrono::milliseconds max_retry,
                   bool retry_refused_credentials, uint32_t seed = 0);

  // What a failed connect means. `rc` and `reason` as Paho reported them (Paho C reports a v5
  // CONNACK refusal as rc = the reason code, reason 0; some failures the other way round).
  struct verdict {
    bool refused_credentials = false;
    bool give_up = false;  // no more attempts (terminal() is now true)
  };
  verdict on_connect_failed(int rc, int reason, bool first_attempt);
  void on_connected() { backoff_.reset(); }
  // Never try again (the client cannot be created).
  void give_up() { terminal_ = true; }
  bool terminal() const { return terminal_; }

  // The wait before the next attempt; nullopt once terminal.
  std::optional<std::chrono::milliseconds> next_delay();

 private:
  core::backoff backoff_;
  bool retry_refused_credentials_;
  bool terminal_ = false;
};

}  // namespace hmq::core::bus
