#include <gtest/gtest.h>

#include "core/bus/broker_uri.h"
#include "core/bus/client.h"

namespace hmq::core::bus {
namespace {

// Every scheme an operator may write maps to the one Paho speaks, with the right default port.
TEST(bus_broker_uri, maps_each_scheme_to_paho_with_its_default_port) {
  struct {
    const char* uri;
    const char* paho;
    int port;
    bool tls;
  } cases[] = {
      {"tcp://broker.example", "tcp://broker.example:1883", 1883, false},
      {"mqtt://broker.example", "tcp://broker.example:1883", 1883, false},
      {"ssl://broker.example", "ssl://broker.example:8883", 8883, true},
      {"mqtts://broker.example", "ssl://broker.example:8883", 8883, true},
  };
  for (const auto& c : cases) {
    auto a = parse_broker_uri(c.uri);
    ASSERT_TRUE(a) << c.uri;
    EXPECT_EQ(a->paho_uri, c.paho) << c.uri;
    EXPECT_EQ(a->host, "broker.example") << c.uri;
    EXPECT_EQ(a->port, c.port) << c.uri;
    EXPECT_EQ(a->tls, c.tls) << c.uri;
  }
}

// An explicit port wins; one trailing slash is tolerated.
TEST(bus_broker_uri, takes_an_explicit_port_and_a_trailing_slash) {
  auto a = parse_broker_uri("mqtts://10.0.0.5:18883/");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "10.0.0.5");
  EXPECT_EQ(a->port, 18883);
  EXPECT_TRUE(a->tls);
  EXPECT_EQ(a->paho_uri, "ssl://10.0.0.5:18883");
}

// IPv6 literals keep their brackets for Paho and lose them for name resolution.
TEST(bus_broker_uri, handles_bracketed_ipv6_literals) {
  auto a = parse_broker_uri("tcp://[::1]:1884");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 1884);
  EXPECT_EQ(a->paho_uri, "tcp://[::1]:1884");
  auto b = parse_broker_uri("ssl://[fe80::2]");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "fe80::2");
  EXPECT_EQ(b->port, 8883);
  EXPECT_EQ(b->paho_uri, "ssl://[fe80::2]:8883");
}

// Anything else is a bad URI, reported with the URI, never a crash.
TEST(bus_broker_uri, rejects_bad_uris) {
  const char* bad[] = {
      "",
      "127.0.0.1:1883",
      "http://127.0.0.1:1883",
      "ws://broker:8080",
      "tcp://",
      "tcp:///",
      "tcp://:1883",
      "tcp://host/path",
      "tcp://host:0",
      "tcp://host:65536",
      "tcp://host:-1",
      "tcp://host:12ab",
      "tcp://[::1",
      "tcp://[::1]x",
      "tcp://[]:1883",
  };
  for (const char* uri : bad) {
    auto a = parse_broker_uri(uri);
    ASSERT_FALSE(a) << uri;
    EXPECT_EQ(a.code(), errc::bad_uri) << uri;
    EXPECT_FALSE(a.err().detail.empty()) << uri;
  }
}

}  // namespace
}  // namespace hmq::core::bus
