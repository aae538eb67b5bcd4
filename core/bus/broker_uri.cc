#include "core/bus/broker_uri.h"

#include <cstdlib>

#include "core/bus/client.h"

namespace hmq::core::bus {

namespace {

error bad_uri(std::string detail) {
  return error{make_error_code(errc::bad_uri), std::move(detail)};
}

}  // namespace

// mqtt:// and mqtts:// are the names operators know; Paho only speaks tcp:// and ssl://.
result<broker_address> parse_broker_uri(std::string_view uri_view) {
  const std::string uri(uri_view);
  broker_address a;
  std::string rest;
  auto take = [&](std::string_view scheme, bool tls) {
    if (uri.rfind(scheme, 0) != 0) return false;
    rest = uri.substr(scheme.size());
    a.tls = tls;
    return true;
  };
  if (!take("tcp://", false) && !take("mqtt://", false) && !take("ssl://", true) &&
      !take("mqtts://", true)) {
    return bad_uri("scheme must be tcp://, mqtt://, ssl:// or mqtts://: " + uri);
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find('/') != std::string::npos) return bad_uri(uri);
  int port = a.tls ? 8883 : 1883;
  std::string host = rest;
  // [v6::addr]:port, host:port or host.
  if (rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) return bad_uri(uri);
    host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return bad_uri(uri);
    rest = rest.empty() ? "" : rest.substr(1);
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    host = rest.substr(0, colon);
    rest = rest.substr(colon + 1);
  } else {
    rest.clear();
  }
  if (!rest.empty()) {
    char* end = nullptr;
    long p = std::strtol(rest.c_str(), &end, 10);
    if (*end != '\0' || p <= 0 || p > 65535) return bad_uri("bad port: " + uri);
    port = static_cast<int>(p);
  }
  if (host.empty()) return bad_uri(uri);
  a.host = host;
  a.port = port;
  const bool v6 = host.find(':') != std::string::npos;
  a.paho_uri = std::string(a.tls ? "ssl://" : "tcp://") + (v6 ? "[" + host + "]" : host) + ":" +
               std::to_string(port);
  return a;
}

}  // namespace hmq::core::bus
