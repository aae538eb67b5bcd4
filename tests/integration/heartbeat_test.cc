// Heartbeats on the wire and node health governance with the real daemons.
#include "core/wire/heartbeat.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <thread>

#include "core/crypto/crypto.h"
#include "tests/support/fleet.h"

namespace {

using namespace std::chrono_literals;
using hmq::test::eventually;
using hmq::test::json;

// What one client->broker PUBLISH looked like on the wire.
struct seen_publish {
  std::string topic;        // as sent ("" when only a topic alias is sent)
  size_t packet_bytes = 0;  // the whole MQTT packet: fixed header + variable header + payload
  size_t payload_bytes = 0;
  bool has_alias = false;
};

// A TCP relay between one client and the broker that parses the client's MQTT v5 packets: the
// test sees the exact bytes Paho puts on the wire, not what the API was given.
class mqtt_tap {
 public:
  explicit mqtt_tap(int broker_port) : broker_port_(broker_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    EXPECT_EQ(::listen(listen_fd_, 8), 0);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~mqtt_tap() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    std::lock_guard l(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    for (auto& t : pumps_) t.detach();  // they end when their sockets close
  }
  std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  std::vector<seen_publish> publishes() {
    std::lock_guard l(mu_);
    return publishes_;
  }
  size_t pingreqs() {
    std::lock_guard l(mu_);
    return pingreqs_;
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      int c = ::accept(listen_fd_, nullptr, nullptr);
      if (c < 0) return;
      int b = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(broker_port_));
      if (::connect(b, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(c);
        ::close(b);
        continue;
      }
      std::lock_guard l(mu_);
      fds_.push_back(c);
      fds_.push_back(b);
      pumps_.emplace_back([this, c, b] { pump(c, b, true); });
      pumps_.emplace_back([this, c, b] { pump(b, c, false); });
    }
  }
  void pump(int from, int to, bool parse) {
    std::vector<uint8_t> buf;
    uint8_t chunk[4096];
    for (;;) {
      ssize_t n = ::read(from, chunk, sizeof chunk);
      if (n <= 0) break;
      if (::write(to, chunk, static_cast<size_t>(n)) != n) break;
      if (!parse) continue;
      buf.insert(buf.end(), chunk, chunk + n);
      parse_packets(buf);
    }
    ::shutdown(to, SHUT_RDWR);
    ::shutdown(from, SHUT_RDWR);
  }
  static bool varint(const std::vector<uint8_t>& b, size_t& pos, size_t& value) {
    value = 0;
    for (int shift = 0; shift < 28; shift += 7) {
      if (pos >= b.size()) return false;
      uint8_t x = b[pos++];
      value |= size_t{x & 0x7fu} << shift;
      if (!(x & 0x80)) return true;
    }
    return false;
  }
  void parse_packets(std::vector<uint8_t>& b) {
    for (;;) {
      size_t pos = 1, rem = 0;
      if (b.empty() || !varint(b, pos, rem) || b.size() < pos + rem) return;
      const size_t total = pos + rem;
      const uint8_t type = b[0] >> 4;
      if (type == 12) {
        std::lock_guard l(mu_);
        ++pingreqs_;
      } else if (type == 3) {
        const int qos = (b[0] >> 1) & 3;
        seen_publish p;
        p.packet_bytes = total;
        size_t q = pos;
        const size_t tlen = (size_t{b[q]} << 8) | b[q + 1];
        q += 2;
        p.topic.assign(reinterpret_cast<const char*>(&b[q]), tlen);
        q += tlen;
        if (qos > 0) q += 2;
        size_t plen = 0;
        size_t props_start = q;
        varint(b, q, plen);
        const size_t props_end = q + plen;
        // Property 0x23 = Topic Alias (2-byte value). Walk only the ones we know the size of.
        for (size_t r = q; r < props_end;) {
          uint8_t id = b[r++];
          if (id == 0x23) {
            p.has_alias = true;
            r += 2;
          } else if (id == 0x02) {
            r += 4;  // message expiry
          } else {
            break;
          }
        }
        (void)props_start;
        p.payload_bytes = total - props_end;
        std::lock_guard l(mu_);
        publishes_.push_back(p);
      }
      b.erase(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(total));
    }
  }

  int broker_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> pumps_;
  std::vector<seen_publish> publishes_;
  size_t pingreqs_ = 0;
};

// The heartbeat is a size contract on metered links: the whole PUBLISH is measured on the wire
// and the payload (crypto included) must stay within 64 bytes; after the first one the topic is
// replaced by its alias.
TEST(heartbeat_wire, publish_packet_fits_the_byte_budget_and_uses_a_topic_alias) {
  hmq::test::mosquitto_broker broker;
  mqtt_tap tap(broker.port());
  hmq::test::temp_dir dir{"hmq-hb-wire"};
  auto xkey = hmq::core::crypto::box_keypair::generate();
  auto agent = hmq::test::process::start(
      {{hmq::test::agent_binary(), "--broker", tap.uri(), "--exchange-key",
        hmq::core::crypto::to_base64(xkey.pk), "--data-dir", (dir.path() / "agent").string(),
        "--runtime", "memory", "--heartbeat-interval", "1"},
       {},
       dir.path() / "agent.log"});
  auto hb_publishes = [&] {
    std::vector<seen_publish> out;
    for (auto& p : tap.publishes())
      if (p.has_alias) out.push_back(p);
    return out;
  };
  ASSERT_TRUE(eventually([&] { return hb_publishes().size() >= 4; }, 30s))
      << hmq::test::read_file(dir.path() / "agent.log");
  auto hbs = hb_publishes();
  EXPECT_NE(hbs[0].topic.find("/hb/"), std::string::npos) << "first heartbeat carries the topic";
  for (size_t i = 0; i < hbs.size(); ++i) {
    std::printf("heartbeat %zu: topic '%s' (%zu B), payload %zu B, whole PUBLISH %zu B\n", i,
                hbs[i].topic.c_str(), hbs[i].topic.size(), hbs[i].payload_bytes,
                hbs[i].packet_bytes);
    EXPECT_LE(hbs[i].payload_bytes, hmq::core::wire::max_heartbeat_frame_bytes);
    if (i > 0) {
      EXPECT_TRUE(hbs[i].topic.empty()) << "heartbeat " << i << " resent its topic";
    }
  }
  size_t presence = 0;
  for (auto& p : tap.publishes())
    if (p.topic.find("/presence/") != std::string::npos) {
      ++presence;
      std::printf("presence online: payload %zu B, whole PUBLISH %zu B\n", p.payload_bytes,
                  p.packet_bytes);
      EXPECT_LE(p.payload_bytes, hmq::core::wire::max_heartbeat_frame_bytes);
    }
  EXPECT_EQ(presence, 1u);
  std::printf("PINGREQs seen with keep-alive = heartbeat interval: %zu over %zu heartbeats\n",
              tap.pingreqs(), hbs.size());
  agent.kill(SIGTERM);
  agent.wait_for(10s);
}

// A node whose agent stops is cancelled with 208 once its pattern's missing_heartbeat_interval
// has passed (or its last will arrived), and gets a new agreement when it is back.
TEST(node_health, stopped_agent_is_cancelled_208_and_re_agreed_when_back) {
  hmq::test::fleet_options fo;
  fo.agents = 1;
  fo.missing_heartbeat_interval_s = 3;
  fo.agent_args = {"--heartbeat-interval", "0.5"};
  hmq::test::fleet f(fo);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  ASSERT_EQ(f.register_node(0).exit, 0);
  auto first = f.wait_finalized_everywhere(0);
  ASSERT_FALSE(first.empty()) << f.logs();

  f.agent_process(0).kill(SIGSTOP);
  auto cancelled_208 = [&] {
    for (const auto& a : f.agbot_agreements_of(0, true))
      if (a.value("id", "") == first && a.value("state", "") == "cancelled")
        return a.value("reason", 0) == 208;
    return false;
  };
  bool ok = eventually(cancelled_208, 60s, 100ms);
  f.agent_process(0).kill(SIGCONT);
  ASSERT_TRUE(ok) << f.agbot_agreements_of(0, true).dump(2) << f.logs();

  std::string second;
  ASSERT_TRUE(eventually(
      [&] {
        for (const auto& a : f.agbot_agreements_of(0))
          if (a.value("state", "") == "finalized" && a.value("id", "") != first) {
            second = a.value("id", "");
            return true;
          }
        return false;
      },
      60s, 100ms))
      << f.agbot_agreements_of(0, true).dump(2) << f.logs();
  EXPECT_TRUE(f.wait_exchange_finalized(0, second)) << f.logs();
  // The agent dropped the old agreement (the agbot's Cancel reached it after SIGCONT).
  EXPECT_TRUE(eventually([&] {
    for (const auto& a : f.agent_agreements(0))
      if (a.value("id", "") == first) return a.value("state", "") == "cancelled";
    return false;
  })) << f.agent_agreements(0).dump(2);

  // The agent's event log tells the story, through the CLI as an operator would read it.
  auto r = f.hmq(
      {"eventlog", "list", "--all", "-o", "json", "--agent-socket", f.agent_socket(0).string()});
  ASSERT_EQ(r.exit, 0) << r.out << r.err;
  json events = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(events.is_array()) << r.out;
  auto has = [&](const std::string& kind, const std::string& id, int reason) {
    for (const auto& e : events)
      if (e.value("kind", "") == kind && e.value("agreement", "") == id &&
          e.value("reason", 0) == reason)
        return true;
    return false;
  };
  EXPECT_TRUE(has("agreement_accepted", first, 0)) << events.dump(2);
  EXPECT_TRUE(has("agreement_finalized", first, 0)) << events.dump(2);
  EXPECT_TRUE(has("deploy_done", first, 0)) << events.dump(2);
  EXPECT_TRUE(has("agreement_cancelled", first, 208)) << events.dump(2);
  EXPECT_TRUE(eventually([&] {
    auto again = f.hmq({"eventlog", "list", "-o", "json", "--agreement", second, "--agent-socket",
                        f.agent_socket(0).string()});
    json ev = json::parse(again.out, nullptr, false);
    if (!ev.is_array()) return false;
    for (const auto& e : ev)
      if (e.value("kind", "") == "deploy_done") return true;
    return false;
  })) << "the new agreement's deploy is logged";
  auto table = f.hmq({"eventlog", "list", "--agent-socket", f.agent_socket(0).string()});
  EXPECT_EQ(table.exit, 0);
  EXPECT_NE(table.out.find("208 "), std::string::npos) << table.out;
}

}  // namespace

namespace {

// `hmq exchange node status` shows what an operator needs without logging in to the node:
// liveness from heartbeats and the services of the agent's latest status report.
TEST(node_status, exchange_node_status_shows_liveness_and_running_services) {
  hmq::test::fleet_options fo;
  fo.agents = 1;
  fo.agent_args = {"--heartbeat-interval", "0.5"};
  hmq::test::fleet f(fo);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  ASSERT_EQ(f.register_node(0).exit, 0);
  auto id = f.wait_finalized_everywhere(0);
  ASSERT_FALSE(id.empty()) << f.logs();
  json st;
  ASSERT_TRUE(eventually([&] {
    auto r = f.admin({"node", "status", f.node(0), "-o", "json"});
    if (r.exit != 0) return false;
    st = json::parse(r.out, nullptr, false);
    if (!st.is_object() || !st.value("online", false) || st.value("running_agreements", 0) != 1)
      return false;
    for (const auto& s : st["services"])
      if (s.value("agreement_id", "") == id && s.value("state", "") == "running") return true;
    return false;
  })) << st.dump(2)
      << f.logs();
  EXPECT_GT(st.value("last_heartbeat_ms", int64_t{0}), 0);
  EXPECT_GT(st.value("received_ms", int64_t{0}), 0);
  auto table = f.admin({"node", "status", f.node(0)});
  ASSERT_EQ(table.exit, 0) << table.err;
  std::printf("%s", table.out.c_str());
  EXPECT_NE(table.out.find(": online"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("running"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(id), std::string::npos) << table.out;
  // A node that is not there is a clear error, not an empty status.
  auto missing = f.admin({"node", "status", "nosuchnode"});
  EXPECT_NE(missing.exit, 0);
}

}  // namespace
