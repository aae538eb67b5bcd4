#pragma once

#include <system_error>

// Error codes of the Docker Engine client (agent/docker/client.h) and its HTTP transport
// (agent/docker/http.h).
namespace hmq::agent::docker {

enum class errc {
  ok = 0,
  transport = 1,     // socket missing, connection refused, I/O error, timeout
  api = 2,           // Docker answered with an error status (detail: status and message)
  not_found = 3,     // 404
  conflict = 4,      // 409 (name in use, ...)
  auth_failed = 5,   // registry refused the credentials
  pull_failed = 6,   // registry or image problem other than auth
  bad_response = 7,  // Docker's answer is not what the API (or HTTP/1.1) promises
  too_large = 8,     // answer exceeds a size bound
  stopped = 9,       // client stopped before or while the call ran
  bad_request = 10,  // the request itself cannot be sent (control character in a name, ...)
};
const std::error_category& category();
std::error_code make_error_code(errc e);

}  // namespace hmq::agent::docker

template <>
struct std::is_error_code_enum<hmq::agent::docker::errc> : std::true_type {};
