#pragma once

#include <string>
#include <system_error>

// Expected failures of the agbot (house style: one errc per module).
namespace hmq::agbot {

enum class errc {
  ok = 0,
  exchange_unavailable = 1,   // RPC timed out or the client was stopped
  not_found = 2,              // the exchange has no such resource
  exchange_rejected = 3,      // the exchange answered with an error status
  bad_response = 4,           // the exchange answered with something we did not ask for
  bad_version = 5,            // not a Horizon version string ("1.2.3")
  bad_version_range = 6,      // not a Horizon versionRange ("1.0.0", "[1.0.0,2.0.0)")
  no_matching_version = 7,    // nothing published for that arch matches the range
  dependency_cycle = 8,       // requiredServices loop back on themselves
  too_many_dependencies = 9,  // bound on the dependency tree
  bad_config = 10,
  store_failed = 11,
};
const std::error_category& category();
std::error_code make_error_code(errc e);

}  // namespace hmq::agbot

template <>
struct std::is_error_code_enum<hmq::agbot::errc> : std::true_type {};
