#include "core/bus/reconnect_policy.h"

namespace hmq::core::bus {

namespace {

// MQTT v5 reason codes (section 2.4).
constexpr int reason_bad_user_name_or_password = 134;
constexpr int reason_not_authorized = 135;
constexpr int reason_banned = 138;
// MQTT 3.1.1 CONNACK return code 5.
constexpr int v311_not_authorized = 5;

}  // namespace

bool is_auth_failure(int reason) {
  return reason == reason_not_authorized || reason == reason_bad_user_name_or_password ||
         reason == reason_banned;
}

reconnect_policy::reconnect_policy(std::chrono::milliseconds min_retry,
                                   std::chrono::milliseconds max_retry,
                                   bool retry_refused_credentials, uint32_t seed)
    : backoff_(min_retry, max_retry, seed), retry_refused_credentials_(retry_refused_credentials) {}

reconnect_policy::verdict reconnect_policy::on_connect_failed(int rc, int reason,
                                                              bool first_attempt) {
  verdict v;
  v.refused_credentials =
      is_auth_failure(reason) || is_auth_failure(rc) || rc == v311_not_authorized;
  // Retrying cannot help a refused first attempt, unless the identity may appear later.
  if (first_attempt && v.refused_credentials && !retry_refused_credentials_) terminal_ = true;
  v.give_up = terminal_;
  return v;
}

std::optional<std::chrono::milliseconds> reconnect_policy::next_delay() {
  if (terminal_) return std::nullopt;
  return backoff_.next();
}

}  // namespace hmq::core::bus
