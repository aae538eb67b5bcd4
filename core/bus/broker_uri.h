#pragma once

#include <string>
#include <string_view>

#include "core/common/result.h"

// The broker URI an operator writes (tcp://, mqtt://, ssl://, mqtts://) turned into what Paho
// and the TCP_NODELAY helper need. Pure: no sockets, no name resolution.
namespace hmq::core::bus {

struct broker_address {
  std::string paho_uri;  // tcp://host:port or ssl://host:port ([v6]:port for IPv6 literals)
  std::string host;      // without brackets
  int port = 0;
  bool tls = false;
};

// Accepts <scheme>://host, <scheme>://host:port, <scheme>://[v6addr]:port, with one optional
// trailing '/'. The port defaults to 1883 (tcp://, mqtt://) or 8883 (ssl://, mqtts://).
// Anything else (other schemes, a path, an empty host, a port outside 1..65535) is
// errc::bad_uri with the URI in the detail.
result<broker_address> parse_broker_uri(std::string_view uri);

}  // namespace hmq::core::bus
